//! Persistence behind one trait. Every SQL statement of the project lives under
//! this folder; each backend has its own migrations in `migrations/<dialect>/`.
//!
//! A store validates transitions inside the same transaction that writes them,
//! because other processes change the same rows.

// Helpers the backends share are unused in a build with no backend (it compiles, and
// opening a database says which feature is missing).
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Location};
use crate::error::{Error, Result};
use crate::model::{RunOptions, Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::process::ProcessFacts;
use crate::query::{
    EventRow, HistoryFilter, IoRow, RunRow, RunSummary, StageRow, StatsFilter, StatusFilter,
    SubtaskRow, TaskRow,
};
use crate::sampler::Sample;

pub mod op;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use op::{Op, OpId, Output, ProgressUpdate, Queued, RunSample, SubtaskRef};

/// A new run, with its client-generated id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewRun {
    pub run_id: String,
    pub stage: String,
    pub task: String,
    pub facts: ProcessFacts,
    pub options: RunOptions,
    pub start_time: DateTime<Utc>,
    /// With `options.retry`: an active run whose heartbeat is older than this was
    /// lost, and this run is its next attempt.
    pub lost_before: DateTime<Utc>,
    /// With `options.retry`: the task's latest run, when the tracker saw it lost
    /// (its process gone) before its heartbeat aged.
    pub known_lost: Option<String>,
}

/// The tasker version a run records as the one that tracked it.
pub const TASKER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a tracker needs to know of a subtask it reaches by number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtaskState {
    pub status: Status,
    pub items_total: Option<i64>,
    /// Its identity, when it was started by a version that gives one.
    pub uid: Option<Arc<str>>,
}

/// A new subtask identity: a UUID v7 (time-ordered, so its index stays compact).
pub fn new_uid() -> Arc<str> {
    Arc::from(uuid::Uuid::now_v7().to_string())
}

/// The error of `delete_tasks` when tasks to delete have runs.
pub(crate) fn refuse_tasks_with_runs(names: &[String]) -> Error {
    let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    Error::invalid(
        "tasks",
        shown.join(", ")
            + &if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
        "have runs: keep them, or delete their runs with them",
    )
}

fn unexpected(op: &Op, out: Output) -> Error {
    Error::storage_refused(
        "tasker",
        format!("unexpected answer {out:?} to a {}", op.kind()),
    )
}

/// Which registered tasks `delete_tasks` removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSelector {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub runs: TasksWithRuns,
}

/// What `delete_tasks` does with a task that has runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TasksWithRuns {
    /// Refuse (nothing is deleted), naming them.
    #[default]
    Refuse,
    /// Keep them (their history needs them) and delete the others.
    Keep,
    /// Delete them with their runs, subtasks and events.
    Delete,
}

/// Runs of one task in one status, counted in the database (`/metrics` loads
/// these instead of reading every run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCount {
    pub stage_name: String,
    pub task_name: String,
    pub status: Option<Status>,
    pub runs: i64,
    /// COMPLETED runs only: how many took at most each bucket's seconds, the sum of
    /// their seconds, and the newest end.
    pub at_most: Vec<i64>,
    pub seconds: f64,
    pub last_end: Option<DateTime<Utc>>,
}

/// The SQL sum counting durations `d` of at most each bucket (`SUM(d <= b)`).
pub(crate) fn bucket_sums(buckets: &[f64], d: &str, as_int: &str) -> String {
    buckets
        .iter()
        .map(|b| format!(", SUM(({d} <= {b:?}){as_int})"))
        .collect()
}

/// What `delete_tasks` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TasksDeleted {
    pub tasks: usize,
    pub stages: usize,
    pub runs: usize,
    /// `stage/task` names kept because they have runs (`TasksWithRuns::Keep`).
    pub kept: Vec<String>,
}

/// Which runs `delete_runs` removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSelector {
    pub stage: Option<String>,
    pub task: Option<String>,
    pub run_id: Option<String>,
    /// Only runs that ended (or, for active ones, started) before this time.
    pub before: Option<DateTime<Utc>>,
    /// Leave FAILED runs alone.
    pub keep_failed: bool,
    /// Only FAILED runs.
    pub failed_only: bool,
    /// Only runs that have finished: never an active one.
    pub finished_only: bool,
    /// At most this many runs, the oldest first (deletes in small batches).
    pub limit: Option<usize>,
}

pub trait Store: Send {
    /// `sqlite` or `postgresql`.
    fn backend(&self) -> &'static str;

    /// Whether a write that failed may still have been applied: a COMMIT sent to a
    /// server whose answer was lost. Writes to such a store carry their `OpId`, so
    /// that sending one again is harmless. (A failed SQLite COMMIT did not happen.)
    fn outcome_may_be_unknown(&self) -> bool;

    /// Whether one writer at a time holds the whole database (SQLite): a replay
    /// then pauses longer between batches, so that other processes get their turn.
    fn one_writer_at_a_time(&self) -> bool {
        false
    }

    /// Applies one write in its own transaction. With `id`, at most once for it:
    /// a write at or below the highest id applied for its writer answers
    /// `Output::Duplicate` (a subtask start answers its number). A refusal (an
    /// invalid transition, an unknown run) changes nothing.
    fn apply(&mut self, op: &Op, id: Option<&OpId>) -> Result<Output>;

    /// Applies `first` (the progress a transition must follow) and then `op` in one
    /// transaction where the store can: one commit, the progress first. A refusal
    /// of `op` is its answer and leaves `first` applied; a transient error means
    /// neither is known to be applied. The default applies one after the other.
    fn apply_after(
        &mut self,
        first: (&Op, Option<&OpId>),
        op: (&Op, Option<&OpId>),
    ) -> Result<(Output, Result<Output>)> {
        let progressed = self.apply(first.0, first.1)?;
        match self.apply(op.0, op.1) {
            Err(e) if e.is_transient() => Err(e),
            answer => Ok((progressed, answer)),
        }
    }

    /// Applies queued writes in order, in one transaction, each at most once for
    /// its id. A write the database refuses for good is answered with its error
    /// and does not stop the others; a transient error stops the batch (none of
    /// it applied) and is returned.
    fn apply_batch(&mut self, ops: &[Queued]) -> Result<Vec<Result<Output>>>;

    /// The events the last `apply`, `apply_after` or `apply_batch` appended and
    /// committed (transitions, and the implicit STARTED -> RUNNING of progress),
    /// as the events query returns them, oldest first; taken, so that a second
    /// call answers none. A failed write reports nothing.
    fn take_events(&mut self) -> Vec<EventRow>;

    /// Whether the next writes report their events (`take_events`): off when
    /// nothing consumes them, so a store that must read them back saves the reads.
    fn collect_events(&mut self, on: bool) {
        let _ = on;
    }

    /// Upserts tasks (and their stages) in one transaction; `None` fields never
    /// clear stored values. Returns the task ids in input order.
    fn register_tasks(&mut self, specs: &[TaskSpec], now: DateTime<Utc>) -> Result<Vec<i64>> {
        let op = Op::Register {
            specs: specs.to_vec(),
            at: now,
        };
        match self.apply(&op, None)? {
            Output::Registered(ids) => Ok(ids),
            other => Err(unexpected(&op, other)),
        }
    }

    /// Inserts a STARTED run, registering its stage and task if they are new.
    fn start_run(&mut self, run: &NewRun) -> Result<()> {
        self.apply(&Op::StartRun(Box::new(run.clone())), None)
            .map(drop)
    }

    /// Moves a run to `to`, checked against its stored status; a terminal status
    /// closes the run's open subtasks with the same status. Returns the old status.
    fn run_transition(
        &mut self,
        run_id: &str,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status> {
        let op = Op::RunTransition {
            run_id: run_id.to_string(),
            to,
            info: info.clone(),
            at: now,
        };
        match self.apply(&op, None)? {
            Output::Transition { from, .. } => Ok(from),
            other => Err(unexpected(&op, other)),
        }
    }

    /// Starts a subtask (under a new identity): an explicit number, or the run's
    /// next free number. An existing number is an error unless `opts.restart`.
    /// Returns the number.
    fn subtask_start(
        &mut self,
        run_id: &str,
        name: &str,
        opts: &SubtaskOptions,
        now: DateTime<Utc>,
    ) -> Result<u32> {
        let op = Op::SubtaskStart {
            run_id: run_id.to_string(),
            uid: Some(new_uid()),
            name: name.to_string(),
            options: opts.clone(),
            at: now,
            renumber_if_taken: false,
        };
        match self.apply(&op, None)? {
            Output::SubtaskStarted { number } => Ok(number),
            other => Err(unexpected(&op, other)),
        }
    }

    /// Moves subtask `number` to `to`, checked against its stored status.
    fn subtask_transition(
        &mut self,
        run_id: &str,
        number: u32,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status> {
        let op = Op::SubtaskTransition {
            run_id: run_id.to_string(),
            subtask: SubtaskRef::number(number),
            to,
            info: info.clone(),
            at: now,
        };
        match self.apply(&op, None)? {
            Output::Transition { from, .. } => Ok(from),
            other => Err(unexpected(&op, other)),
        }
    }

    /// Writes a batch of progress and refreshes the heartbeat of `heartbeats`,
    /// all in one transaction.
    fn apply_progress(
        &mut self,
        batch: &[ProgressUpdate],
        heartbeats: &[Arc<str>],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.apply(
            &Op::Progress {
                updates: batch.to_vec(),
                heartbeats: heartbeats.to_vec(),
                samples: Vec::new(),
                logs: Default::default(),
                at: now,
            },
            None,
        )
        .map(drop)
    }

    /// The stored status of a run, `None` when there is no such run.
    fn run_status(&mut self, run_id: &str) -> Result<Option<Status>>;

    /// The stored status and identity of subtask `number`, `None` when absent.
    fn subtask_state(&mut self, run_id: &str, number: u32) -> Result<Option<SubtaskState>>;

    /// Deletes runs (with their subtasks and events). Returns how many.
    fn delete_runs(&mut self, which: &RunSelector) -> Result<usize>;

    /// Deletes registered tasks (all, a stage's, or one) in one transaction, and
    /// the stages left without tasks. What happens to tasks that have runs is
    /// `which.runs`' choice.
    fn delete_tasks(&mut self, which: &TaskSelector) -> Result<TasksDeleted>;

    fn task_status(&mut self, filter: &StatusFilter) -> Result<Vec<RunRow>>;
    /// Every active run (STARTED, RUNNING, PAUSED), several per task included.
    fn active_runs(&mut self) -> Result<Vec<RunRow>>;
    fn history(&mut self, filter: &HistoryFilter) -> Result<Vec<RunRow>>;
    /// The runs `history` returns, handed to `f` one at a time as they are read
    /// (`f` returns false to stop): exports stream instead of holding every run.
    fn for_each_run(
        &mut self,
        filter: &HistoryFilter,
        f: &mut dyn FnMut(RunRow) -> Result<bool>,
    ) -> Result<()> {
        for r in self.history(filter)? {
            if !f(r)? {
                break;
            }
        }
        Ok(())
    }
    fn run(&mut self, run_id: &str) -> Result<Option<RunRow>>;
    /// A page of runs sorted and paged in SQL, and how many runs match. `now`
    /// ends the duration of runs not ended.
    fn run_page(
        &mut self,
        q: &crate::query::RunPageQuery,
        now: DateTime<Utc>,
    ) -> Result<(Vec<RunRow>, usize)>;
    /// Runs by stage, task and status, with COMPLETED runs' durations in `buckets`
    /// (seconds, ascending): one aggregate query.
    fn run_counts(&mut self, buckets: &[f64]) -> Result<Vec<RunCount>>;
    /// Ids of runs that start with `prefix`, in order, at most `limit` (an
    /// index range, not a scan: `tasker show <prefix>` and short ids).
    fn run_ids_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    fn subtasks(&mut self, run_id: &str) -> Result<Vec<SubtaskRow>>;
    /// The subtasks of several runs at once, by run and number.
    fn subtasks_of_runs(&mut self, run_ids: &[&str]) -> Result<Vec<SubtaskRow>>;
    /// Per task, its runs in the window of `filter` (the latest `limit` of each),
    /// summarised, in no particular order.
    fn run_summaries(&mut self, filter: &StatsFilter) -> Result<Vec<RunSummary>>;
    /// Statistics per task over the runs of `filter` (see `stats::task_stats`),
    /// ordered by stage and task. A store may compute them without holding every
    /// run at once; the numbers are those of `task_stats` over `run_summaries`.
    fn task_stats(
        &mut self,
        filter: &StatsFilter,
        rule: &crate::query::LostRule,
    ) -> Result<Vec<crate::stats::TaskStats>> {
        Ok(crate::stats::task_stats(&self.run_summaries(filter)?, rule))
    }
    /// Name and seconds of the completed subtasks of the task's latest `runs`
    /// completed runs (for estimates by subtask name).
    fn subtask_durations(
        &mut self,
        stage: &str,
        task: &str,
        runs: usize,
    ) -> Result<Vec<(String, f64)>>;
    /// A run's resource samples, oldest first.
    fn samples(&mut self, run_id: &str) -> Result<Vec<Sample>>;
    /// The newest sample of each of these runs that has one.
    fn latest_samples(&mut self, run_ids: &[&str]) -> Result<Vec<(String, Sample)>>;
    /// Downsamples a run's stored samples (`sampler::thin`); returns how many went.
    fn thin_samples(&mut self, run_id: &str, now: DateTime<Utc>) -> Result<usize>;
    /// A run's inputs, then its outputs, each by name.
    fn run_io(&mut self, run_id: &str) -> Result<Vec<IoRow>>;
    /// What is stored of a run's log lines (`None`: no such run). See `crate::logs`.
    fn log_state(&mut self, run_id: &str) -> Result<Option<crate::logs::LogState>>;
    /// A run's log lines as the filter says, oldest first.
    fn run_logs(
        &mut self,
        run_id: &str,
        filter: &crate::logs::LogFilter,
    ) -> Result<Vec<crate::logs::LogRow>>;
    /// A run's kept item outcomes, by subtask and then as stored.
    fn item_outcomes(
        &mut self,
        run_id: &str,
        filter: &crate::logs::OutcomeFilter,
    ) -> Result<Vec<crate::logs::ItemOutcomeRow>>;
    /// How many items of each subtask of a run failed or were skipped (exact).
    fn item_outcome_counts(&mut self, run_id: &str) -> Result<Vec<crate::logs::OutcomeCount>>;
    fn registered_tasks(&mut self, stage: Option<&str>, name: Option<&str>)
        -> Result<Vec<TaskRow>>;
    fn stages(&mut self) -> Result<Vec<StageRow>>;
    /// Stage, task, start and wait of the runs in the window of `filter` (its
    /// `limit` aside) that recorded a wait, in no particular order.
    fn wait_times(&mut self, filter: &StatsFilter) -> Result<Vec<crate::dag::WaitRow>>;
    /// Every task dependency (see `dag.rs`), in no particular order.
    fn task_dependencies(&mut self) -> Result<Vec<crate::dag::DependencyRow>>;
    /// Records an alert's incident unless `(rule, incident_key)` is recorded
    /// already: `Some(id)` when this call recorded it (one attempt counted, held
    /// by the caller until `lease_until`), `None` when someone else had.
    fn alert_claim(&mut self, new: &crate::alerts::NewAlert) -> Result<Option<i64>>;
    /// Leases up to `limit` undelivered alerts whose next attempt is due at `now`
    /// and that have attempts left (`only`: just that alert): each gets one more
    /// attempt counted and its next attempt moved to `lease_until`, in one
    /// transaction, so two evaluators never take the same one.
    fn alerts_due(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
        only: Option<i64>,
        limit: usize,
    ) -> Result<Vec<crate::alerts::AlertRow>>;
    /// Records how a delivery attempt ended.
    fn alert_outcome(&mut self, id: i64, outcome: &crate::alerts::AlertOutcome) -> Result<()>;
    /// Recorded alerts, newest first.
    fn alerts(
        &mut self,
        filter: &crate::alerts::AlertFilter,
    ) -> Result<Vec<crate::alerts::AlertRow>>;
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
        #[cfg(feature = "sqlite")]
        Location::Sqlite { path } => Ok(Box::new(sqlite::SqliteStore::open(path, config)?)),
        #[cfg(feature = "postgres")]
        Location::Postgres { conninfo, schema } => Ok(Box::new(
            self::postgres::PostgresStore::open(conninfo, schema, config)?,
        )),
        #[allow(unreachable_patterns, reason = "reached when a backend feature is off")]
        other => Err(missing_backend(other)),
    }
}

/// The ORDER BY of a page of runs (`Store::run_page`): the sort column's keys,
/// then start time and id, all in the page's direction. `duration`, `start` and
/// `id` are the dialect's expressions; `nulls` what puts missing values lowest.
pub(crate) fn run_page_order(
    q: &crate::query::RunPageQuery,
    duration: &str,
    start: &str,
    id: &str,
    nulls: &str,
) -> String {
    use crate::query::RunSort;
    let dir = if q.ascending { "ASC" } else { "DESC" };
    let keys: &[&str] = match q.sort {
        RunSort::Start => &[],
        RunSort::Duration => &[duration],
        RunSort::Stage => &["s.stage_name", "t.task_name"],
        RunSort::Task => &["t.task_name", "s.stage_name"],
        RunSort::Status => &["r.status"],
        RunSort::Host => &["r.hostname"],
    };
    keys.iter()
        .chain(&[start, id])
        .map(|k| format!("{k} {dir}{nulls}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a page's order needs the stage and task names (a join).
pub(crate) fn run_page_needs_names(q: &crate::query::RunPageQuery) -> bool {
    use crate::query::RunSort;
    matches!(q.sort, RunSort::Stage | RunSort::Task)
}

/// The smallest string above every string that starts with `prefix` (None: none
/// exists): with it, a prefix is an index range in byte (code point) order.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The error for a database whose backend this build left out (a Cargo feature of
/// tasker-core): say which one, so that the fix is obvious.
#[cfg_attr(
    all(feature = "sqlite", feature = "postgres"),
    allow(dead_code, reason = "used only when a backend feature is off")
)]
fn missing_backend(location: &Location) -> Error {
    let (feature, what) = match location {
        Location::Sqlite { .. } => ("sqlite", "SQLite"),
        Location::Postgres { .. } => ("postgres", "PostgreSQL"),
    };
    Error::Config(format!(
        "{} needs {what} support, which this build of tasker leaves out \
         (rebuild tasker-core with the Cargo feature \"{feature}\")",
        location.describe()
    ))
}

/// How many of a task's latest completed runs count towards its items per
/// second: enough for a stable mean, few enough that statistics over 100,000
/// runs need not add up every subtask of every run.
pub(crate) const ITEMS_RUNS_PER_TASK: usize = 20;

fn start_key(r: &RunSummary) -> i64 {
    r.start_time.map_or(i64::MIN, |t| t.timestamp_micros())
}

/// The latest `ITEMS_RUNS_PER_TASK` completed runs of each task among `runs`
/// (in any order): the indices of the ones whose items are read.
pub(crate) fn items_window(runs: &[RunSummary]) -> Vec<usize> {
    let done = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == Status::Completed);
    let mut out = Vec::new();
    for (_, group) in crate::stats::group_by_task(done) {
        let mut group: Vec<(i64, usize)> = group
            .into_iter()
            .map(|i| (start_key(&runs[i]), i))
            .collect();
        // The newest first, without sorting all of them; run ids break ties, as
        // the stores' windows do.
        let newest_first = |a: &(i64, usize), b: &(i64, usize)| {
            (b.0, &runs[b.1].run_id).cmp(&(a.0, &runs[a.1].run_id))
        };
        if group.len() > ITEMS_RUNS_PER_TASK {
            group.select_nth_unstable_by(ITEMS_RUNS_PER_TASK - 1, newest_first);
            group.truncate(ITEMS_RUNS_PER_TASK);
        }
        out.extend(group.into_iter().map(|(_, i)| i));
    }
    out
}

/// Sets the items of the runs at `window` (indices into `runs`) from `items`, by run id.
pub(crate) fn fill_items(runs: &mut [RunSummary], window: &[usize], items: &HashMap<String, i64>) {
    for &i in window {
        if let Some(n) = items.get(&runs[i].run_id) {
            runs[i].items_complete = *n;
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_backend_left_out_of_the_build_is_named_with_its_feature() {
        let pg = Config::resolve(&crate::ConfigArgs::url(
            "postgresql://me:secret@db.example/pipelines",
        ))
        .unwrap();
        let msg = missing_backend(&pg.location).to_string();
        assert!(msg.contains("PostgreSQL support"), "{msg}");
        assert!(msg.contains("feature \"postgres\""), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        if !cfg!(feature = "postgres") {
            // This build has no PostgreSQL client: opening says so instead of connecting.
            let err = open(&pg).err().expect("no PostgreSQL in this build");
            assert_eq!(err.to_string(), msg);
        }
        let lite = Config::sqlite("/tmp/x.db");
        let msg = missing_backend(&lite.location).to_string();
        assert!(
            msg.contains("SQLite support") && msg.contains("feature \"sqlite\""),
            "{msg}"
        );
    }
}
