//! The tracking model: statuses and the state machine, plus the plain data that
//! callers hand to the tracker (task registrations, run and subtask options).
//! Rows that come back from queries live in `query.rs`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Status of a run or a subtask. The numeric values are part of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    NotStarted = 0,
    Started = 1,
    Running = 2,
    Paused = 3,
    Completed = 4,
    Failed = 5,
    Skipped = 6,
    Cancelled = 7,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::NotStarted,
        Status::Started,
        Status::Running,
        Status::Paused,
        Status::Completed,
        Status::Failed,
        Status::Skipped,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "NOT_STARTED",
            Status::Started => "STARTED",
            Status::Running => "RUNNING",
            Status::Paused => "PAUSED",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// COMPLETED, FAILED, SKIPPED and CANCELLED: leaving one needs an explicit reset.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Failed | Status::Skipped | Status::Cancelled
        )
    }

    /// STARTED, RUNNING and PAUSED: a process is (or should be) working on it.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Started | Status::Running | Status::Paused)
    }

    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as i32 == code)
    }

    /// Whether `self -> to` is allowed without a reset. Staying in the same
    /// non-terminal status is allowed (a no-op); nothing enters NOT_STARTED.
    pub fn can_become(self, to: Status) -> bool {
        if self.is_terminal() || to == Status::NotStarted {
            return false;
        }
        match (self, to) {
            (Status::NotStarted, _) => true,
            (Status::Started, _) => true,
            (Status::Running, Status::Started) => false,
            (Status::Running, _) => true,
            (Status::Paused, Status::Started) => false,
            (Status::Paused, _) => true,
            _ => false,
        }
    }

    /// Checks a transition, naming both ends when it is refused.
    pub fn check_transition(self, to: Status, what: &str) -> Result<()> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(Error::InvalidTransition {
                what: what.to_string(),
                from: self,
                to,
            })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    /// Accepts the names in any case, with `-` or space for `_` ("completed", "not started").
    fn from_str(s: &str) -> Result<Status> {
        // Stored names are exact: no allocation for them (statistics read many).
        if let Some(st) = Status::ALL.into_iter().find(|st| st.as_str() == s) {
            return Ok(st);
        }
        let norm = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    s,
                    "must be one of NOT_STARTED, STARTED, RUNNING, PAUSED, COMPLETED, FAILED, SKIPPED, CANCELLED",
                )
            })
    }
}

/// A task to register (or update). `None` fields never clear a stored value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskSpec {
    pub stage: String,
    #[serde(alias = "task", alias = "task_name")]
    pub name: String,
    #[serde(rename = "type", alias = "task_type")]
    pub task_type: Option<String>,
    pub description: Option<String>,
    pub stage_order: Option<i64>,
    pub task_order: Option<i64>,
    pub script_path: Option<String>,
    pub script_filename: Option<String>,
    pub log_path: Option<String>,
    pub log_filename: Option<String>,
    /// The tasks this one depends on, as `stage/task` names (a name without a
    /// `/` is a task of the same stage). `None` keeps the stored dependencies;
    /// `Some` replaces them (`Some(vec![])` clears them). See `dag.rs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
}

impl TaskSpec {
    pub fn new(stage: impl Into<String>, name: impl Into<String>) -> TaskSpec {
        TaskSpec {
            stage: stage.into(),
            name: name.into(),
            ..TaskSpec::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_name("stage", &self.stage)?;
        check_name("task name", &self.name)?;
        for (what, v) in [
            ("type", &self.task_type),
            ("description", &self.description),
            ("script_path", &self.script_path),
            ("script_filename", &self.script_filename),
            ("log_path", &self.log_path),
            ("log_filename", &self.log_filename),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        for name in self.depends_on.iter().flatten() {
            check_name("depends_on", name)?;
        }
        Ok(())
    }

    /// The script filename as stored: given, or the last part of `script_path`.
    pub fn effective_script_filename(&self) -> Option<String> {
        self.script_filename
            .clone()
            .or_else(|| self.script_path.as_deref().and_then(basename))
    }

    pub fn effective_log_filename(&self) -> Option<String> {
        self.log_filename
            .clone()
            .or_else(|| self.log_path.as_deref().and_then(basename))
    }
}

fn basename(path: &str) -> Option<String> {
    std::path::Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
}

/// Optional facts recorded with a new run (the process facts are recorded by themselves).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    pub total_subtasks: Option<i64>,
    pub message: Option<String>,
    pub version: Option<String>,
    pub git_commit: Option<String>,
    pub script_path: Option<String>,
    pub script_filename: Option<String>,
    pub log_path: Option<String>,
    pub log_filename: Option<String>,
    /// Custom metadata: any JSON object.
    pub metadata: Option<serde_json::Value>,
    /// The command line that started the process (default: read from the OS).
    pub command_line: Option<String>,
    /// The language and its version ("R 4.2.2", "Python 3.11.7"); bindings fill it.
    pub runtime: Option<String>,
    /// Whether the repository holding the script had uncommitted changes
    /// (default: asked of git, with `git_commit`).
    pub git_dirty: Option<bool>,
    /// The attempt number (1 for a first try). With `retry` it is counted from
    /// the task's latest run.
    pub attempt: Option<u32>,
    /// This run retries the task's latest run if that one failed or was lost:
    /// it records the next attempt number and the run it retries.
    pub retry: bool,
}

impl RunOptions {
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.total_subtasks {
            if n < 0 {
                return Err(Error::invalid("total_subtasks", n, "must be zero or more"));
            }
        }
        if self.attempt == Some(0) {
            return Err(Error::invalid(
                "attempt",
                0u32,
                "attempts are counted from 1",
            ));
        }
        for (what, v) in [
            ("message", &self.message),
            ("version", &self.version),
            ("git_commit", &self.git_commit),
            ("script_path", &self.script_path),
            ("script_filename", &self.script_filename),
            ("log_path", &self.log_path),
            ("log_filename", &self.log_filename),
            ("command_line", &self.command_line),
            ("runtime", &self.runtime),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        if let Some(m) = &self.metadata {
            // PostgreSQL's JSONB cannot hold NUL; refuse it on every backend alike.
            if m.to_string().contains("\\u0000") {
                return Err(Error::invalid(
                    "metadata",
                    m,
                    "must not contain NUL characters",
                ));
            }
            if !m.is_object() {
                return Err(Error::invalid(
                    "metadata",
                    m,
                    "must be a JSON object (key/value pairs)",
                ));
            }
        }
        Ok(())
    }
}

/// How a subtask starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubtaskOptions {
    /// An explicit number (1, 2, ...); `None` takes the next free number of the run.
    pub number: Option<u32>,
    pub items_total: Option<u64>,
    pub message: Option<String>,
    /// Start again a subtask number that already exists, clearing its progress.
    /// Without it, an existing number is an error: rows are never silently overwritten.
    pub restart: bool,
}

/// Progress that never changes a status (except STARTED -> RUNNING).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubtaskProgress {
    pub items_complete: Option<u64>,
    pub items_total: Option<u64>,
    pub percent: Option<f64>,
    pub message: Option<String>,
}

/// Run-level progress that never changes the status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunProgress {
    pub current_subtask: Option<u32>,
    pub overall_percent: Option<f64>,
    pub message: Option<String>,
}

/// What a transition records besides the new status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionInfo {
    pub message: Option<String>,
    pub error_message: Option<String>,
    pub error_detail: Option<String>,
    /// Leave a terminal status (an explicit reset).
    pub reset: bool,
}

impl TransitionInfo {
    pub fn message(m: Option<&str>) -> TransitionInfo {
        TransitionInfo {
            message: m.map(str::to_string),
            ..TransitionInfo::default()
        }
    }

    pub fn error(error_message: &str, error_detail: Option<&str>) -> TransitionInfo {
        TransitionInfo {
            error_message: Some(error_message.to_string()),
            error_detail: error_detail.map(str::to_string),
            ..TransitionInfo::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("message", &self.message),
            ("error_message", &self.error_message),
            ("error_detail", &self.error_detail),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        Ok(())
    }
}

/// Largest string we store (names, messages, error details): 16 MiB.
pub const MAX_TEXT_BYTES: usize = 16 << 20;
/// Names (stages, tasks, subtasks) are labels: 4 KiB is plenty.
pub const MAX_NAME_BYTES: usize = 4096;

/// A stage, task or subtask name: non-empty, not only spaces, no NUL, bounded.
pub fn check_name(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid(what, v, "must not be empty"));
    }
    if v.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(
            what,
            v,
            &format!("is {} bytes; names are at most {MAX_NAME_BYTES}", v.len()),
        ));
    }
    check_text(what, v)
}

pub fn check_text(what: &str, v: &str) -> Result<()> {
    if v.contains('\0') {
        return Err(Error::invalid(what, v, "must not contain NUL characters"));
    }
    if v.len() > MAX_TEXT_BYTES {
        return Err(Error::invalid(
            what,
            v,
            &format!("is {} bytes; the limit is {MAX_TEXT_BYTES}", v.len()),
        ));
    }
    Ok(())
}

pub fn check_percent(what: &str, p: f64) -> Result<()> {
    if !p.is_finite() || !(0.0..=100.0).contains(&p) {
        return Err(Error::invalid(
            what,
            p,
            "must be a number between 0 and 100",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn terminal_states_are_sticky() {
        for from in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in Status::ALL {
                assert!(!from.can_become(to), "{from} -> {to} must be refused");
            }
        }
    }

    #[test]
    fn allowed_transitions() {
        use Status::*;
        let allowed = [
            (NotStarted, Started),
            (Started, Running),
            (Started, Paused),
            (Started, Completed),
            (Started, Failed),
            (Started, Skipped),
            (Started, Cancelled),
            (Running, Running),
            (Running, Paused),
            (Running, Completed),
            (Running, Failed),
            (Running, Skipped),
            (Running, Cancelled),
            (Paused, Running),
            (Paused, Completed),
            (Paused, Failed),
            (Paused, Cancelled),
        ];
        for (a, b) in allowed {
            assert!(a.can_become(b), "{a} -> {b} must be allowed");
        }
        for (a, b) in [(Running, Started), (Paused, Started), (Running, NotStarted)] {
            assert!(!a.can_become(b), "{a} -> {b} must be refused");
        }
    }

    #[test]
    fn status_parsing_names_the_bad_value() {
        assert_eq!("completed".parse::<Status>().unwrap(), Status::Completed);
        assert_eq!("not started".parse::<Status>().unwrap(), Status::NotStarted);
        let err = "DONE".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains("DONE"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("stage", "  ").is_err());
        assert!(check_name("stage", "a\0b").is_err());
        assert!(check_name("stage", "Robert'); DROP TABLE runs;--").is_ok());
        assert!(check_percent("percent", f64::NAN).is_err());
        assert!(check_percent("percent", 100.5).is_err());
        assert!(check_percent("percent", 0.0).is_ok());
    }
}
