//! One error type for the whole core. Each variant is a kind every binding maps to
//! its own language's error (a C status code, a Python exception class, an R
//! condition class), and each message names the bad value.

use std::fmt::Display;

use crate::model::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of error, stable across bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    InvalidTransition,
    AlreadyExists,
    Config,
    Storage,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidTransition => "invalid_transition",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Config => "config",
            ErrorKind::Storage => "storage",
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} {value}: {reason}")]
    InvalidArgument {
        what: String,
        value: String,
        reason: String,
    },
    #[error("{what} not found: {key}")]
    NotFound { what: String, key: String },
    #[error("{what} cannot go from {from} to {to}{hint}", hint = transition_hint(*.from))]
    InvalidTransition {
        what: String,
        from: Status,
        to: Status,
    },
    #[error("{what} already exists: {key}")]
    AlreadyExists { what: String, key: String },
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be reached or refused a statement. The message
    /// never carries a password (see `config::redact`).
    #[error("storage ({backend}): {message}")]
    Storage {
        backend: String,
        message: String,
        /// Waiting may cure it (the database is down, busy or unreachable), as opposed
        /// to a refusal that retrying cannot change (a permission, a constraint).
        transient: bool,
    },
}

fn transition_hint(from: Status) -> &'static str {
    if from.is_terminal() {
        " (it has finished; a reset is needed to change it)"
    } else {
        ""
    }
}

/// Longest rendering of a bad value inside a message: the rest is elided.
const MAX_VALUE_IN_MESSAGE: usize = 200;

/// Renders a value for an error message: quoted if it is a string, shortened if huge.
fn show_value(value: String, quote: bool) -> String {
    let mut shown: String = if value.len() > MAX_VALUE_IN_MESSAGE {
        let mut cut = MAX_VALUE_IN_MESSAGE;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} bytes)", &value[..cut], value.len())
    } else {
        value
    };
    if quote {
        shown = format!("{shown:?}");
    }
    shown
}

/// Anything that can be shown as the bad value of an argument.
pub trait BadValue {
    fn show(&self) -> String;
}

impl BadValue for str {
    fn show(&self) -> String {
        show_value(self.to_string(), true)
    }
}
impl BadValue for String {
    fn show(&self) -> String {
        self.as_str().show()
    }
}
impl<T: BadValue + ?Sized> BadValue for &T {
    fn show(&self) -> String {
        (**self).show()
    }
}
macro_rules! bad_value_display {
    ($($t:ty),*) => {$(
        impl BadValue for $t {
            fn show(&self) -> String { show_value(self.to_string(), false) }
        }
    )*};
}
bad_value_display!(i32, i64, u32, u64, usize, f64, serde_json::Value);

impl Error {
    pub fn invalid(what: &str, value: impl BadValue, reason: &str) -> Error {
        Error::InvalidArgument {
            what: what.to_string(),
            value: value.show(),
            reason: reason.to_string(),
        }
    }

    pub fn not_found(what: &str, key: impl Display) -> Error {
        Error::NotFound {
            what: what.to_string(),
            key: key.to_string(),
        }
    }

    /// The database cannot be reached or is busy: waiting may cure it, so tracking
    /// keeps the write and retries. Only for errors about reaching the database;
    /// anything else (a refused value, an encoding error) is `storage_refused`.
    pub fn unavailable(backend: &str, err: impl Display) -> Error {
        Error::Storage {
            backend: backend.to_string(),
            message: crate::config::redact(&err.to_string()),
            transient: true,
        }
    }

    /// A storage error that retrying will not cure: raised to the caller.
    pub fn storage_refused(backend: &str, err: impl Display) -> Error {
        Error::Storage {
            backend: backend.to_string(),
            message: crate::config::redact(&err.to_string()),
            transient: false,
        }
    }

    /// The same error with a note appended to its message (for a storage error: the
    /// message inside, so the prefix is never doubled).
    pub fn with_note(&self, note: &str) -> Error {
        match self {
            Error::Storage {
                backend,
                message,
                transient,
            } => Error::Storage {
                backend: backend.clone(),
                message: format!("{message} ({note})"),
                transient: *transient,
            },
            other => other.clone(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidTransition { .. } => ErrorKind::InvalidTransition,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Config(_) => ErrorKind::Config,
            Error::Storage { .. } => ErrorKind::Storage,
        }
    }

    /// A storage error that retrying later may cure (the database is down or busy),
    /// as opposed to a programming error that must be raised at once.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Storage {
                transient: true,
                ..
            }
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn huge_values_are_shortened_in_messages() {
        let big = "x".repeat(1 << 20);
        let msg = Error::invalid("message", big.as_str(), "is too long").to_string();
        assert!(msg.len() < 400, "{}", msg.len());
        assert!(msg.contains("1048576 bytes"));
    }

    #[test]
    fn transition_errors_name_both_ends() {
        let msg = Status::Completed
            .check_transition(Status::Running, "run 42")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("COMPLETED") && msg.contains("RUNNING") && msg.contains("run 42"));
        assert!(msg.contains("reset"));
    }
}
