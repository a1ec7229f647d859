//! Alerts without a daemon: rules in the configuration (`rules.rs`), incidents
//! recorded once per rule in the database's `alerts` table, delivered to a
//! webhook or a command (`deliver.rs`) with retries.
//!
//! Who sends what:
//! - **FAILED** is sent by the failing process. The transition pushes a small
//!   item into this tracker's bounded [`FailedQueue`] (no I/O on the caller's
//!   thread); the writer thread drains it (`TrackerInner::alert_turn`): claims
//!   the incident, delivers, records the outcome.
//! - **LOST, stall, too long, dead-man** are time-based: evaluated by
//!   long-running processes that are configured to (`tasker serve`, `tasker
//!   watch`, `tasker alerts run`), see `evaluate.rs`.
//!
//! Exactly once per incident: an incident has a key per rule (the run, the
//! subtask and its last progress, the task and its last success); the first
//! process to insert `(rule, incident_key)` owns it and holds its first
//! delivery; the others' inserts do nothing. A failed delivery is retried with
//! backoff by whoever finds it due (leased the same way, so two evaluators never
//! send one alert twice) until it is delivered or `max_attempts` is reached.

mod deliver;
mod evaluate;
mod rules;
mod thread;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use deliver::deliver;
pub(crate) use evaluate::send_failed;
pub use evaluate::{evaluate, retry_due, PassReport};
pub use rules::{
    AlertConfig, AlertSettings, BodyFormat, Destination, DestinationSettings, Rule, RuleSettings,
    Trigger,
};
pub use thread::{start_evaluator, EvaluatorThread, EVERY};

use crate::sync::lock;

/// How long a claimed delivery is held by the process that claimed it before
/// another may try it (longer than the longest destination timeout).
pub const LEASE: Duration = Duration::from_secs(60);

/// FAILED transitions waiting for the writer thread, at most this many: a
/// pipeline that fails faster than alerts can be claimed loses the excess
/// (counted, reported once per turn), never waits.
const FAILED_QUEUE_CAPACITY: usize = 256;

/// Failed runs whose alerts one writer turn sends at most: each delivery may
/// take up to its timeout, and the writer also keeps heartbeats and progress
/// going (the rest wait for the next turn, 200 ms later).
const FAILED_PER_TURN: usize = 4;

/// What is sent: the incident, as JSON (the `json` body and a command's stdin).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    /// `failed`, `lost`, `stall`, `too_long` or `dead_man`.
    pub kind: String,
    /// One line for people (the Slack body's `text`).
    pub summary: String,
    pub stage: String,
    pub task: String,
    pub run_id: Option<String>,
    pub subtask_number: Option<i64>,
    pub host: Option<String>,
    /// The run's error message (failed), the subtask's progress message (stall).
    pub message: Option<String>,
    pub fired_at: DateTime<Utc>,
    /// What the rule measured: seconds without progress, duration and limit, ...
    pub details: serde_json::Value,
}

/// An incident about to be claimed.
#[derive(Clone, Debug)]
pub struct NewAlert {
    pub rule: String,
    pub incident_key: String,
    pub destination: String,
    pub alert: Alert,
    /// Until when the claimer holds its first delivery.
    pub lease_until: DateTime<Utc>,
}

/// A recorded alert (`tasker alerts`, `/api/v1/alerts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: i64,
    pub rule: String,
    pub incident_key: String,
    pub kind: String,
    pub destination: String,
    pub run_id: Option<String>,
    pub stage: String,
    pub task: String,
    pub fired_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    /// Delivery attempts started so far.
    pub attempts: i64,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (secrets removed).
    pub last_error: Option<String>,
    /// When it is tried next; `None` once delivered or given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl AlertRow {
    /// `delivered`, `pending` (a next attempt is planned) or `given up`.
    pub fn state(&self) -> &'static str {
        match (self.delivered_at, self.next_attempt_at) {
            (Some(_), _) => "delivered",
            (None, Some(_)) => "pending",
            (None, None) => "given up",
        }
    }
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertOutcome {
    Delivered {
        at: DateTime<Utc>,
    },
    /// `retry_at: None`: no attempt left.
    Failed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Filters of `Tracker::alerts` (newest first; `limit` defaults to 100).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertFilter {
    pub rule: Option<String>,
    pub run_id: Option<String>,
    /// Only alerts not delivered (pending or given up).
    pub undelivered: bool,
    pub limit: Option<usize>,
}

/// When the next attempt is due after `attempts` failed ones: 30 s, doubling,
/// at most an hour; `None` when the attempts are used up.
pub fn next_attempt(now: DateTime<Utc>, attempts: i64, max_attempts: u32) -> Option<DateTime<Utc>> {
    if attempts >= i64::from(max_attempts) {
        return None;
    }
    let exp = attempts.clamp(1, 8) - 1;
    let secs = (30i64 << exp).min(3600);
    Some(now + chrono::Duration::seconds(secs))
}

/// A run that became FAILED in this process, for the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct FailedRun {
    pub run_id: String,
    pub stage: String,
    pub task: String,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

/// The bounded queue between FAILED transitions and the writer thread, with the
/// alerts this process claimed and must still deliver.
#[derive(Debug, Default)]
pub(crate) struct FailedQueue {
    pending: Mutex<VecDeque<FailedRun>>,
    /// Alert ids claimed here whose delivery failed, with when to retry.
    retries: Mutex<Vec<(i64, DateTime<Utc>)>>,
    dropped: Mutex<u64>,
}

impl FailedQueue {
    /// Called on the pipeline's thread: a short lock, no I/O.
    pub(crate) fn push(&self, run: FailedRun) {
        let mut q = lock(&self.pending);
        if q.len() >= FAILED_QUEUE_CAPACITY {
            drop(q);
            *lock(&self.dropped) += 1;
            return;
        }
        q.push_back(run);
    }

    pub(crate) fn is_idle(&self) -> bool {
        lock(&self.pending).is_empty() && lock(&self.retries).is_empty()
    }

    /// The oldest runs waiting, at most `FAILED_PER_TURN`.
    pub(crate) fn take(&self) -> Vec<FailedRun> {
        let mut q = lock(&self.pending);
        let n = q.len().min(FAILED_PER_TURN);
        q.drain(..n).collect()
    }

    /// Puts back runs not claimed yet (the database was away), ahead of newer ones.
    pub(crate) fn put_back(&self, runs: Vec<FailedRun>) {
        let mut q = lock(&self.pending);
        for r in runs.into_iter().rev() {
            if q.len() < FAILED_QUEUE_CAPACITY {
                q.push_front(r);
            }
        }
    }

    pub(crate) fn take_dropped(&self) -> u64 {
        std::mem::take(&mut *lock(&self.dropped))
    }

    pub(crate) fn retry_later(&self, id: i64, at: DateTime<Utc>) {
        lock(&self.retries).push((id, at));
    }

    /// The claimed alerts whose retry is due.
    pub(crate) fn due_retries(&self, now: DateTime<Utc>) -> Vec<i64> {
        let mut r = lock(&self.retries);
        let due = r
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(id, _)| *id)
            .collect();
        r.retain(|(_, at)| *at > now);
        due
    }

    /// A forked child's copy: the parent sends these.
    pub(crate) fn clear(&self) {
        lock(&self.pending).clear();
        lock(&self.retries).clear();
    }
}

/// The alert of a FAILED run for one rule.
pub(crate) fn failed_alert(rule: &Rule, run: &FailedRun, host: &str) -> NewAlert {
    let summary = format!(
        "tasker: {}/{} FAILED{}",
        run.stage,
        run.task,
        run.message
            .as_deref()
            .map(|m| format!(": {}", first_line(m)))
            .unwrap_or_default()
    );
    NewAlert {
        rule: rule.name.clone(),
        incident_key: run.run_id.clone(),
        destination: rule.to.clone(),
        alert: Alert {
            rule: rule.name.clone(),
            kind: rule.trigger.kind().into(),
            summary,
            stage: run.stage.clone(),
            task: run.task.clone(),
            run_id: Some(run.run_id.clone()),
            subtask_number: None,
            host: Some(host.to_string()),
            message: run.message.clone(),
            fired_at: run.at,
            details: serde_json::json!({ "status": "FAILED" }),
        },
        lease_until: Utc::now() + chrono::Duration::from_std(LEASE).expect("a minute"),
    }
}

/// The first line of a message, at most 200 characters (summaries are one line).
pub(crate) fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_and_stops_at_max_attempts() {
        let t0 = Utc::now();
        let secs = |n| next_attempt(t0, n, 20).map(|t| (t - t0).num_seconds());
        assert_eq!(secs(1), Some(30));
        assert_eq!(secs(2), Some(60));
        assert_eq!(secs(3), Some(120));
        assert_eq!(secs(12), Some(3600));
        assert_eq!(next_attempt(t0, 3, 3), None);
    }

    #[test]
    fn the_failed_queue_is_bounded_and_counts_what_it_drops() {
        let q = FailedQueue::default();
        let run = FailedRun {
            run_id: "r".into(),
            stage: "s".into(),
            task: "t".into(),
            message: None,
            at: Utc::now(),
        };
        for _ in 0..FAILED_QUEUE_CAPACITY + 3 {
            q.push(run.clone());
        }
        let mut taken = 0;
        while !q.take().is_empty() {
            taken += 1;
        }
        assert_eq!(taken, FAILED_QUEUE_CAPACITY.div_ceil(FAILED_PER_TURN));
        assert_eq!(q.take_dropped(), 3);
        assert!(q.is_idle());
    }
}
