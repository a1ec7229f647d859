//! The read side: filters and the result rows every binding returns, plus the
//! values derived after reading (lost flag, percent, ETA). The SQL that fills
//! these rows lives in the store; nothing here touches a database.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Status;

/// Filters of `task_status` (latest run of every registered task).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusFilter {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub status: Option<Status>,
    pub limit: Option<usize>,
}

/// Filters of `history` (runs, newest first). `limit` defaults to 100.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryFilter {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
    /// Only runs on this host.
    pub host: Option<String>,
}

pub const DEFAULT_HISTORY_LIMIT: usize = 100;

/// A page of runs in any order with how many match (the dashboard's History):
/// sorted and paged by the database, so a page never reads every run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunPageQuery {
    /// Runs of these tasks (ids); None: of every task.
    pub task_ids: Option<Vec<i64>>,
    /// Runs in any of these statuses; empty: in any status.
    pub statuses: Vec<Status>,
    pub host: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
    pub sort: RunSort,
    pub ascending: bool,
    pub offset: usize,
    pub limit: usize,
}

/// The column a page of runs is sorted by; ties go by start time, then id, in
/// the same direction. Missing values (no host, no start) come lowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunSort {
    #[default]
    Start,
    /// End (or now, for a run not ended) minus start.
    Duration,
    /// Stage name, then task name.
    Stage,
    /// Task name, then stage name.
    Task,
    Status,
    Host,
}

/// One run (or, in `task_status`, a registered task that never ran: then every
/// run field is empty and `status` is NOT_STARTED). Column names follow the
/// existing R package so data frames keep their shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: Option<String>,
    pub stage_name: String,
    pub stage_order: Option<i64>,
    pub task_name: String,
    pub task_type: Option<String>,
    pub task_order: Option<i64>,
    pub status: Status,
    pub hostname: Option<String>,
    pub process_id: Option<i64>,
    pub parent_pid: Option<i64>,
    pub process_start_time: Option<DateTime<Utc>>,
    pub user_name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub last_update: Option<DateTime<Utc>>,
    pub heartbeat_time: Option<DateTime<Utc>>,
    pub total_subtasks: Option<i64>,
    pub current_subtask: Option<i64>,
    /// Given by the run, else derived from its subtasks (100 once COMPLETED).
    pub overall_percent_complete: Option<f64>,
    pub overall_progress_message: Option<String>,
    pub version: Option<String>,
    pub git_commit: Option<String>,
    pub script_path: Option<String>,
    pub script_filename: Option<String>,
    pub log_path: Option<String>,
    pub log_filename: Option<String>,
    pub error_message: Option<String>,
    pub error_detail: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// 1 for a first try; n for the n-th attempt of one logical run.
    pub attempt: Option<i64>,
    /// The run this one retries (the previous attempt).
    pub retry_of: Option<String>,
    /// The command line that started the process.
    pub command_line: Option<String>,
    /// Whether the script's repository had uncommitted changes (None: unknown).
    pub git_dirty: Option<bool>,
    /// The language runtime ("R 4.2.2", "Python 3.11.7"); None for native programs.
    pub runtime: Option<String>,
    /// The tasker version that tracked the run.
    pub tasker_version: Option<String>,
    /// Seconds from the moment the last of its task's dependencies finished to
    /// its start (None without dependencies, or when one had not finished).
    pub wait_seconds: Option<f64>,
    /// Subtasks of this run that reached COMPLETED or SKIPPED.
    pub subtasks_completed: i64,
    /// Derived: an active run whose process is gone or whose heartbeat is too old.
    pub lost: bool,
    /// Seconds from start to end (or to now while active; a lost run's stop at
    /// its last heartbeat).
    pub duration_seconds: Option<f64>,
    /// Seconds left while active and not lost: the core's one estimate from its
    /// subtasks' rates and the task's history, with an 80% interval
    /// [`eta_low`, `eta_high`] and what it rests on (`rate`, `history`, `blend`).
    pub eta_seconds: Option<f64>,
    pub eta_low: Option<f64>,
    pub eta_high: Option<f64>,
    pub eta_basis: Option<crate::estimate::Basis>,
    /// Percent given explicitly with `task_update` (before derivation).
    #[serde(skip)]
    pub explicit_percent: Option<f64>,
    /// Sum over subtasks of their done fraction (0..=1 each), for derivation.
    #[serde(skip)]
    pub subtask_fraction_sum: f64,
    #[serde(skip)]
    pub subtask_count: i64,
}

/// One subtask of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtaskRow {
    pub run_id: String,
    pub subtask_number: i64,
    pub subtask_name: String,
    pub status: Status,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub last_update: Option<DateTime<Utc>>,
    pub items_total: Option<i64>,
    pub items_complete: i64,
    /// Derived from the items when `items_total` is known, else as last set.
    pub percent_complete: Option<f64>,
    pub progress_message: Option<String>,
    pub error_message: Option<String>,
    /// What `subtask_fail` was given besides the message (a traceback, say).
    pub error_detail: Option<String>,
    /// Items per second since the subtask started (none once its run is lost).
    pub rate_per_second: Option<f64>,
    /// Seconds left, while active: the core's one estimate (see `estimate`),
    /// from its item rate and the history of subtasks of the same name, with an
    /// 80% interval [`eta_low`, `eta_high`].
    pub eta_seconds: Option<f64>,
    pub eta_low: Option<f64>,
    pub eta_high: Option<f64>,
    #[serde(skip)]
    pub stored_percent: Option<f64>,
}

/// A registered task with its stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub stage_id: i64,
    pub stage_name: String,
    pub stage_order: Option<i64>,
    pub task_id: i64,
    pub task_name: String,
    pub task_type: Option<String>,
    pub task_order: Option<i64>,
    pub description: Option<String>,
    pub script_path: Option<String>,
    pub script_filename: Option<String>,
    pub log_path: Option<String>,
    pub log_filename: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRow {
    pub stage_id: i64,
    pub stage_name: String,
    pub stage_order: Option<i64>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One transition, as appended to the events table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: i64,
    pub time: DateTime<Utc>,
    pub run_id: String,
    pub stage_name: String,
    pub task_name: String,
    /// `None` for an event of the run itself.
    pub subtask_number: Option<i64>,
    /// `run`, `subtask` or `reset`.
    pub kind: String,
    pub old_status: Option<Status>,
    pub new_status: Status,
    pub message: Option<String>,
}

/// Which runs statistics are computed over: per task, the runs that started
/// `since` (all by default), at most the latest `limit` of each task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsFilter {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

/// One run as statistics and estimates need it: small, so that 100,000 of them
/// read quickly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Shared by the runs of one task (100,000 runs need not mean 200,000 names).
    pub stage_name: Arc<str>,
    pub task_name: Arc<str>,
    pub run_id: String,
    pub status: Status,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// The heartbeat, else the last update.
    pub heartbeat_time: Option<DateTime<Utc>>,
    pub hostname: Option<String>,
    pub process_id: Option<i64>,
    pub process_start_time: Option<DateTime<Utc>>,
    pub attempt: i64,
    pub retry_of: Option<String>,
    /// Items completed over all its subtasks, read for the latest
    /// `store::ITEMS_RUNS_PER_TASK` completed runs of each task (0 for the others:
    /// summing every subtask of 100,000 runs would cost more than the rest).
    pub items_complete: i64,
}

/// An input or output of a run (see `IoRecord`), as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IoRow {
    pub run_id: String,
    #[serde(flatten)]
    pub record: crate::io_record::IoRecord,
    pub recorded_at: DateTime<Utc>,
}

/// What the lost check needs to know about where it runs.
#[derive(Clone, Debug)]
pub struct LostRule {
    pub now: DateTime<Utc>,
    pub this_host: String,
    pub lost_after: chrono::Duration,
}

impl RunRow {
    /// Fills the derived fields: percent, duration and the lost flag.
    pub fn derive(&mut self, rule: &LostRule) {
        self.overall_percent_complete = self.derived_percent();
        self.lost = self.is_lost(rule);
        self.duration_seconds = self.start_time.map(|s| {
            let end = self.end_time.unwrap_or_else(|| self.clock_stop(rule.now));
            ((end - s).num_milliseconds() as f64 / 1000.0).max(0.0)
        });
    }

    /// When an unfinished run's clock stops: now while it is alive; for a lost
    /// run, its last sign of life (its elapsed time stops growing).
    pub fn clock_stop(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match (self.lost, self.heartbeat_time.or(self.last_update)) {
            (true, Some(beat)) => beat,
            _ => now,
        }
    }

    fn derived_percent(&self) -> Option<f64> {
        self.run_id.as_ref()?;
        if self.status == Status::Completed {
            return Some(100.0);
        }
        if let Some(p) = self.explicit_percent {
            return Some(p);
        }
        let denominator = match self.total_subtasks {
            Some(t) if t > 0 => t.max(self.subtask_count) as f64,
            _ if self.subtask_count > 0 => self.subtask_count as f64,
            _ => return None,
        };
        Some((100.0 * self.subtask_fraction_sum / denominator).clamp(0.0, 100.0))
    }

    fn is_lost(&self, rule: &LostRule) -> bool {
        rule.is_lost(
            self.status,
            self.hostname.as_deref(),
            self.process_id,
            self.process_start_time,
            self.heartbeat_time.or(self.last_update),
        )
    }
}

impl LostRule {
    /// Whether an active run is lost: on this host, its process is gone (checked
    /// directly); elsewhere, its heartbeat is older than the limit.
    pub fn is_lost(
        &self,
        status: Status,
        hostname: Option<&str>,
        process_id: Option<i64>,
        process_start: Option<DateTime<Utc>>,
        beat: Option<DateTime<Utc>>,
    ) -> bool {
        if !status.is_active() {
            return false;
        }
        if hostname == Some(self.this_host.as_str()) {
            if let Some(pid) = process_id.and_then(|p| u32::try_from(p).ok()) {
                if let Some(alive) = crate::process::is_alive(pid, process_start) {
                    return !alive;
                }
            }
        }
        match beat {
            Some(beat) => self.now - beat > self.lost_after,
            None => false,
        }
    }
}

impl RunSummary {
    pub fn is_lost(&self, rule: &LostRule) -> bool {
        rule.is_lost(
            self.status,
            self.hostname.as_deref(),
            self.process_id,
            self.process_start_time,
            self.heartbeat_time,
        )
    }
}

impl SubtaskRow {
    pub fn derive(&mut self, now: DateTime<Utc>) {
        self.percent_complete = match self.items_total {
            Some(t) if t > 0 => Some((100.0 * self.items_complete as f64 / t as f64).min(100.0)),
            _ if self.status == Status::Completed => Some(100.0),
            _ => self.stored_percent,
        };
        let elapsed = self
            .start_time
            .map(|s| (self.end_time.unwrap_or(now) - s).num_milliseconds() as f64 / 1000.0);
        self.rate_per_second = match elapsed {
            Some(e) if e > 0.0 && self.items_complete > 0 => Some(self.items_complete as f64 / e),
            _ => None,
        };
        // The estimate needs history: `Tracker` fills it (see `forecast`).
    }

    /// What the estimator needs of this subtask.
    pub fn facts(&self) -> crate::estimate::SubtaskFacts<'_> {
        crate::estimate::SubtaskFacts {
            name: &self.subtask_name,
            active: self.status.is_active(),
            done: matches!(self.status, Status::Completed | Status::Skipped),
            items_total: self.items_total,
            items_complete: self.items_complete,
            percent: self.stored_percent,
            started: self.start_time,
            ended: self.end_time,
        }
    }

    /// Sets the estimate (or clears it).
    pub fn set_eta(&mut self, eta: Option<crate::estimate::Eta>) {
        self.eta_seconds = eta.map(|e| e.seconds);
        self.eta_low = eta.map(|e| e.low);
        self.eta_high = eta.map(|e| e.high);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn run(status: Status) -> RunRow {
        RunRow {
            run_id: Some("r".into()),
            stage_name: "s".into(),
            stage_order: None,
            task_name: "t".into(),
            task_type: None,
            task_order: None,
            status,
            hostname: Some("elsewhere".into()),
            process_id: Some(1),
            parent_pid: None,
            process_start_time: None,
            user_name: None,
            start_time: Some(Utc::now()),
            end_time: None,
            last_update: Some(Utc::now()),
            heartbeat_time: Some(Utc::now()),
            total_subtasks: Some(4),
            current_subtask: None,
            overall_percent_complete: None,
            overall_progress_message: None,
            version: None,
            git_commit: None,
            script_path: None,
            script_filename: None,
            log_path: None,
            log_filename: None,
            error_message: None,
            error_detail: None,
            metadata: None,
            attempt: Some(1),
            retry_of: None,
            command_line: None,
            git_dirty: None,
            runtime: None,
            tasker_version: None,
            wait_seconds: None,
            subtasks_completed: 0,
            lost: false,
            duration_seconds: None,
            eta_seconds: None,
            eta_low: None,
            eta_high: None,
            eta_basis: None,
            explicit_percent: None,
            subtask_fraction_sum: 1.5,
            subtask_count: 2,
        }
    }

    #[test]
    fn percent_is_derived_from_subtasks_over_the_announced_total() {
        let rule = LostRule {
            now: Utc::now(),
            this_host: "here".into(),
            lost_after: chrono::Duration::seconds(60),
        };
        let mut r = run(Status::Running);
        r.derive(&rule);
        assert_eq!(r.overall_percent_complete, Some(37.5));
        assert!(!r.lost);
    }

    #[test]
    fn an_old_heartbeat_on_another_host_is_lost() {
        let rule = LostRule {
            now: Utc::now(),
            this_host: "here".into(),
            lost_after: chrono::Duration::seconds(60),
        };
        let mut r = run(Status::Running);
        r.heartbeat_time = Some(Utc::now() - chrono::Duration::seconds(61));
        r.derive(&rule);
        assert!(r.lost);
        let mut done = run(Status::Completed);
        done.heartbeat_time = r.heartbeat_time;
        done.derive(&rule);
        assert!(!done.lost);
        assert_eq!(done.overall_percent_complete, Some(100.0));
    }
}
