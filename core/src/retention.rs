//! Retention by the long-running commands (`tasker serve`, `tasker watch`):
//! finished runs older than the configured `retention:` are deleted at start
//! and then hourly, in small batches on a thread of their own, and what happened
//! is shown (dashboard footer, `/metrics`, the foot of `tasker watch`). A
//! pipeline's own calls never do this.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;

use crate::periodic::Periodic;
use crate::Tracker;

/// How often retention is applied while a long-running command runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// What the last application of retention did, and in all since the start.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionStatus {
    pub days: u32,
    pub keep_failed_days: Option<u32>,
    pub last_applied: Option<DateTime<Utc>>,
    /// Runs deleted by the last application (failed ones included).
    pub last_deleted: usize,
    /// Runs deleted since the command started.
    pub deleted_total: u64,
    /// Why the last application failed, if it did (it is tried again next time).
    pub last_error: Option<String>,
}

impl RetentionStatus {
    /// One line for a footer: "retention 90 d (failed 365 d): 12 run(s) deleted, last applied ...".
    pub fn describe(&self) -> String {
        let failed = match self.keep_failed_days {
            Some(f) if f != self.days => format!(" (failed {f} d)"),
            _ => String::new(),
        };
        let last = match (&self.last_error, self.last_applied) {
            (Some(e), _) => format!(": failing ({e})"),
            (None, Some(t)) => format!(
                ": {} run(s) deleted, last applied {}",
                self.deleted_total,
                t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S")
            ),
            (None, None) => ": not applied yet".into(),
        };
        format!("retention {} d{failed}{last}", self.days)
    }
}

/// The status shared between the thread that applies retention and readers.
pub type SharedRetention = Arc<Mutex<Option<RetentionStatus>>>;

pub fn lock(m: &Mutex<Option<RetentionStatus>>) -> MutexGuard<'_, Option<RetentionStatus>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A status for the configured retention, or `None` when there is none.
pub fn configured(t: &Tracker) -> SharedRetention {
    let status = t.config().retention.map(|r| RetentionStatus {
        days: r.days,
        keep_failed_days: r.keep_failed_days,
        ..RetentionStatus::default()
    });
    Arc::new(Mutex::new(status))
}

/// Applies retention once and records the outcome in `shared`.
pub fn apply_once(t: &Tracker, shared: &SharedRetention) {
    let result = t.apply_retention();
    let mut guard = lock(shared);
    let Some(status) = guard.as_mut() else {
        return;
    };
    status.last_applied = Some(Utc::now());
    match result {
        Ok(Some(report)) => {
            let n = report.deleted_runs + report.deleted_failed_runs;
            status.last_deleted = n;
            status.deleted_total += n as u64;
            status.last_error = None;
        }
        Ok(None) => {}
        Err(e) => status.last_error = Some(e.to_string()),
    }
}

/// Applies retention now and every `every` on a thread of its own, while the
/// process lives; does nothing when no retention is configured.
pub fn start_thread(t: Tracker, every: Duration) -> SharedRetention {
    let (shared, thread) = start_stoppable(t, every);
    // The thread lives as long as the process (`tasker watch`).
    std::mem::forget(thread);
    shared
}

/// Stops the retention thread of [`start_stoppable`] when dropped (a dashboard
/// started and stopped inside a Python or R session leaves no thread behind).
pub type RetentionThread = Option<Periodic>;

/// Like [`start_thread`], with a handle that stops the thread (after the batch it is
/// deleting, if any) when dropped.
pub fn start_stoppable(t: Tracker, every: Duration) -> (SharedRetention, RetentionThread) {
    let shared = configured(&t);
    if lock(&shared).is_none() {
        return (shared, None);
    }
    let out = Arc::clone(&shared);
    match Periodic::spawn("tasker-retention", every, move || apply_once(&t, &out)) {
        Ok(thread) => (shared, Some(thread)),
        Err(e) => {
            if let Some(s) = lock(&shared).as_mut() {
                s.last_error = Some(format!("cannot start the retention thread: {e}"));
            }
            (shared, None)
        }
    }
}
