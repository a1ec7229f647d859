//! Inputs and outputs of a run: what monitoring users call logging a stage's
//! inputs and outputs (MLflow: params and artifacts). A record is a named value
//! ("date" = "2026-03-01") or a file with its size, modification time and, when
//! asked, a SHA-256 of its content, read when it is recorded. Recording a name
//! again replaces the earlier record of that name, so a retried step does not
//! leave two.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{check_name, check_text};

/// Whether a record is something the run read or something it made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Direction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "input" => Ok(Direction::Input),
            "output" => Ok(Direction::Output),
            _ => Err(Error::invalid(
                "direction",
                s,
                "must be \"input\" or \"output\"",
            )),
        }
    }
}

/// One input or output as a run records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoRecord {
    pub direction: Direction,
    pub name: String,
    /// A value (for a file: `None`).
    pub value: Option<String>,
    /// A file's path, absolute when it could be resolved.
    pub path: Option<String>,
    pub size_bytes: Option<i64>,
    pub modified: Option<DateTime<Utc>>,
    /// Hex SHA-256 of the content, when asked for.
    pub sha256: Option<String>,
}

impl IoRecord {
    /// A named value.
    pub fn value(direction: Direction, name: &str, value: &str) -> Result<IoRecord> {
        check_name("name", name)?;
        check_text("value", value)?;
        Ok(IoRecord {
            direction,
            name: name.to_string(),
            value: Some(value.to_string()),
            path: None,
            size_bytes: None,
            modified: None,
            sha256: None,
        })
    }

    /// A file, read now: its size and modification time, and with `hash` the
    /// SHA-256 of its content. A directory records its own metadata (no hash).
    pub fn file(direction: Direction, name: &str, path: &str, hash: bool) -> Result<IoRecord> {
        check_name("name", name)?;
        check_text("path", path)?;
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(|e| {
            Error::invalid("path", path, &format!("cannot be read ({})", io_reason(&e)))
        })?;
        let absolute = std::fs::canonicalize(p)
            .map(|a| a.display().to_string())
            .unwrap_or_else(|_| path.to_string());
        let sha256 = if hash && meta.is_file() {
            Some(sha256_of(p).map_err(|e| {
                Error::invalid(
                    "path",
                    path,
                    &format!("cannot be hashed ({})", io_reason(&e)),
                )
            })?)
        } else {
            None
        };
        Ok(IoRecord {
            direction,
            name: name.to_string(),
            value: None,
            path: Some(absolute),
            size_bytes: i64::try_from(meta.len()).ok(),
            modified: meta.modified().ok().map(DateTime::<Utc>::from),
            sha256,
        })
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Streams the file through SHA-256 (constant memory, any size).
fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_file_records_its_size_time_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.csv");
        std::fs::write(&f, "abc").unwrap();
        let r = IoRecord::file(Direction::Input, "data", f.to_str().unwrap(), true).unwrap();
        assert_eq!(r.size_bytes, Some(3));
        assert!(r.modified.is_some());
        assert_eq!(
            r.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let unhashed = IoRecord::file(Direction::Output, "data", f.to_str().unwrap(), false);
        assert_eq!(unhashed.unwrap().sha256, None);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = IoRecord::file(Direction::Input, "x", "/no/such/file.csv", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/file.csv"), "{err}");
        assert!(err.contains("no such file"), "{err}");
        assert!(IoRecord::value(Direction::Input, " ", "v").is_err());
        assert!("sideways".parse::<Direction>().is_err());
        assert_eq!("Output".parse::<Direction>().unwrap(), Direction::Output);
    }
}
