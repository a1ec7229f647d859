//! Persistence behind one trait. Every SQL statement of the project lives under
//! this folder; each backend has its own migrations in `migrations/<dialect>/`.
//!
//! A store validates transitions inside the same transaction that writes them,
//! because other processes change the same rows.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Location};
use crate::error::Result;
use crate::model::{RunOptions, Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::process::ProcessFacts;
use crate::query::{EventRow, HistoryFilter, RunRow, StageRow, StatusFilter, SubtaskRow, TaskRow};

pub mod postgres;
pub mod sqlite;

/// A new run, with its client-generated id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewRun {
    pub run_id: String,
    pub stage: String,
    pub task: String,
    pub facts: ProcessFacts,
    pub options: RunOptions,
    pub start_time: DateTime<Utc>,
}

/// What one flush writes for a run or one of its subtasks. Deltas add to the
/// stored count so that many processes can increment one subtask exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressUpdate {
    pub run_id: Arc<str>,
    /// `None`: run-level progress (current subtask, overall percent, message).
    pub subtask: Option<u32>,
    pub items_set: Option<u64>,
    pub items_delta: u64,
    pub items_total: Option<u64>,
    pub percent: Option<f64>,
    pub message: Option<String>,
    pub current_subtask: Option<u32>,
}

/// Names one progress batch of one writer (a tracker in one process): batches of a
/// writer are numbered in the order they are written, so that a batch whose COMMIT
/// was sent but never acknowledged (the connection dropped) can be sent again
/// without being counted twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSeq {
    pub writer: String,
    pub seq: u64,
}

/// Which runs `delete_runs` removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSelector {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub run_id: Option<String>,
    /// Only runs that ended (or, for active ones, started) before this time.
    pub before: Option<DateTime<Utc>>,
    pub keep_failed: bool,
}

pub trait Store: Send {
    /// `sqlite` or `postgresql`.
    fn backend(&self) -> &'static str;

    /// Upserts tasks (and their stages) in one transaction; `None` fields never
    /// clear stored values. Returns the task ids in input order.
    fn register_tasks(&mut self, specs: &[TaskSpec], now: DateTime<Utc>) -> Result<Vec<i64>>;

    /// Inserts a STARTED run, registering its stage and task if they are new.
    fn start_run(&mut self, run: &NewRun) -> Result<()>;

    /// Moves a run to `to`, checked against its stored status; a terminal status
    /// closes the run's open subtasks with the same status. Returns the old status.
    fn run_transition(
        &mut self,
        run_id: &str,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status>;

    /// Starts a subtask: an explicit number, or the run's next free number.
    /// An existing number is an error unless `opts.restart`. Returns the number.
    fn subtask_start(
        &mut self,
        run_id: &str,
        name: &str,
        opts: &SubtaskOptions,
        now: DateTime<Utc>,
    ) -> Result<u32>;

    fn subtask_transition(
        &mut self,
        run_id: &str,
        number: u32,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status>;

    /// Writes a batch of progress and refreshes the heartbeat of `heartbeats`,
    /// all in one transaction.
    fn apply_progress(
        &mut self,
        batch: &[ProgressUpdate],
        heartbeats: &[Arc<str>],
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// `apply_progress`; with a `batch_id`, at most once for it and never after a
    /// later batch of the same writer. The default suits stores whose commit outcome
    /// is never in doubt (SQLite: a failed COMMIT did not happen).
    fn apply_progress_once(
        &mut self,
        batch: &[ProgressUpdate],
        heartbeats: &[Arc<str>],
        now: DateTime<Utc>,
        batch_id: Option<&WriterSeq>,
    ) -> Result<()> {
        let _ = batch_id;
        self.apply_progress(batch, heartbeats, now)
    }

    /// The stored status of a run, `None` when there is no such run.
    fn run_status(&mut self, run_id: &str) -> Result<Option<Status>>;

    /// The stored status and `items_total` of a subtask, `None` when absent.
    fn subtask_state(&mut self, run_id: &str, number: u32)
        -> Result<Option<(Status, Option<i64>)>>;

    /// Deletes runs (with their subtasks and events). Returns how many.
    fn delete_runs(&mut self, which: &RunSelector) -> Result<usize>;

    fn task_status(&mut self, filter: &StatusFilter) -> Result<Vec<RunRow>>;
    /// Every active run (STARTED, RUNNING, PAUSED), several per task included.
    fn active_runs(&mut self) -> Result<Vec<RunRow>>;
    fn history(&mut self, filter: &HistoryFilter) -> Result<Vec<RunRow>>;
    fn run(&mut self, run_id: &str) -> Result<Option<RunRow>>;
    fn subtasks(&mut self, run_id: &str) -> Result<Vec<SubtaskRow>>;
    fn registered_tasks(&mut self, stage: Option<&str>, name: Option<&str>)
        -> Result<Vec<TaskRow>>;
    fn stages(&mut self) -> Result<Vec<StageRow>>;
    /// Events with an id greater than `after`, oldest first.
    fn events_after(
        &mut self,
        after: i64,
        run_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>>;
}

/// Opens the store a config names, creating and migrating the database if needed.
pub fn open(config: &Config) -> Result<Box<dyn Store>> {
    match &config.location {
        Location::Sqlite { path } => Ok(Box::new(sqlite::SqliteStore::open(path, config)?)),
        Location::Postgres { conninfo, schema } => Ok(Box::new(
            self::postgres::PostgresStore::open(conninfo, schema, config)?,
        )),
    }
}
