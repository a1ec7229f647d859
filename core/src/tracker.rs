//! The handle users hold on an open database: a [`Tracker`]. It starts runs
//! (see `run.rs` for the [`RunHandle`]), registers tasks, answers queries, and
//! hands every write to this process's connection supervisor
//! (`supervisor.rs`), which decides whether it goes to the database now or
//! waits in the queue.
//!
//! Fork safety: every call first compares the process's fork generation (bumped
//! by a `pthread_atfork` child hook) with the tracker's. A forked child drops
//! the progress it inherited (the parent writes that), never touches the
//! parent's connection or threads, and opens its own on first use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use serde::Serialize;

use crate::alerts::{
    AlertFilter, AlertOutcome, AlertRow, FailedQueue, FailedRun, NewAlert, PassReport,
};
use crate::config::{Config, ConfigArgs};
use crate::error::{Error, Result};
use crate::ffi::os::{fork_generation, install_fork_hook};
use crate::forecast::{self, HistoryCache};
use crate::model::{check_name, RunOptions, Status, TaskSpec, TransitionInfo};
use crate::process::ProcessFacts;
use crate::query::{
    EventRow, HistoryFilter, IoRow, LostRule, RunRow, StageRow, StatsFilter, StatusFilter,
    SubtaskRow, TaskRow,
};
use crate::run::{RunHandle, RunShared};
use crate::sampler::{Sample, Sampler};
use crate::stats::TaskStats;
use crate::store::{
    self, NewRun, Op, Output, ProgressUpdate, RunSelector, Store, TaskSelector, TasksDeleted,
};
use crate::supervisor::{Answer, Counters, Cx, Health, RunRegistry, Supervisor};
use crate::sync::lock;
use crate::writer::Writer;

/// How long closing a tracker (or the process exiting) replays writes still
/// queued after an outage before it leaves the rest in a spool file.
const DRAIN_AT_CLOSE: Duration = Duration::from_secs(10);

/// Called with each event a write of this tracker stored (see `Tracker::add_listener`).
pub type Listener = Arc<dyn Fn(&EventRow) + Send + Sync>;

/// Events stored by this process's writes and not yet given out, in commit
/// order, and whether a thread is giving events out (`TrackerInner::deliver_events`).
#[derive(Default)]
struct EventsOut {
    pending: Vec<EventRow>,
    delivering: bool,
}

/// An open tracking database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<TrackerInner>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("location", &self.inner.config.location.describe())
            .finish()
    }
}

pub(crate) struct TrackerInner {
    pub(crate) config: Config,
    pub(crate) this_host: String,
    generation: AtomicU64,
    supervisor: ArcSwap<Supervisor>,
    runs: ArcSwap<Vec<Weak<RunShared>>>,
    listeners: ArcSwap<Vec<(u64, Listener)>>,
    next_listener: AtomicU64,
    /// Staged with the connection held (so in commit order), given out after it
    /// is released; `events_waiting` says whether `events_out` has any.
    events_out: Mutex<EventsOut>,
    events_waiting: AtomicBool,
    fork_lock: Mutex<()>,
    me: OnceLock<Weak<TrackerInner>>,
    counters: Counters,
    histories: HistoryCache,
    /// Milliseconds between resource samples, 0 for none: `config.sample_interval`
    /// until `set_sample_interval` changes it (the writer thread reads it each turn).
    sample_every_ms: AtomicU64,
    /// The newest sample taken for this process's runs.
    last_sample: Mutex<Option<Sample>>,
    /// Runs that failed here, waiting for the writer thread to send their alerts.
    failed_alerts: FailedQueue,
    /// OpenTelemetry export of the runs that end in this process, when the
    /// environment configures it (`otlp/`).
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::Exporter>,
    /// The pipeline declared in the configuration (`config.tasks`) was registered.
    declared_registered: AtomicBool,
}

/// What a tracker wrote so far in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerStats {
    /// Transactions the writer committed for progress and heartbeats.
    pub progress_commits: u64,
    /// Transitions committed (starts, completions, failures, ...).
    pub transitions: u64,
}

/// What one application of the retention deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub days: u32,
    pub keep_failed_days: Option<u32>,
    /// Finished runs (not failed) deleted, with their subtasks and events.
    pub deleted_runs: usize,
    /// Failed runs deleted.
    pub deleted_failed_runs: usize,
}

/// Runs deleted per transaction when applying retention.
const RETENTION_BATCH: usize = 500;

/// Trackers alive in this process, for `flush_all` at exit.
static TRACKERS: Mutex<Vec<Weak<TrackerInner>>> = Mutex::new(Vec::new());

impl Tracker {
    pub(crate) fn from_inner(inner: Arc<TrackerInner>) -> Tracker {
        Tracker { inner }
    }

    /// Opens (creating and migrating if needed) the database a config names and
    /// starts the writer thread.
    pub fn open(config: Config) -> Result<Tracker> {
        install_fork_hook();
        // An unreachable database must not stop the pipeline: start in outage mode
        // (writes are kept and replayed). A wrong configuration still fails here.
        let store = match store::open(&config) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => return Err(e),
        };
        let generation = fork_generation();
        let supervisor = Supervisor::new(generation, store, &config);
        let config_sample_interval = config.sample_interval;
        let this_host = config
            .hostname
            .clone()
            .unwrap_or_else(crate::process::hostname);
        #[cfg(feature = "otlp")]
        let otlp = crate::otlp::Exporter::from_env(config.otlp.as_deref());
        let inner = Arc::new(TrackerInner {
            config,
            this_host,
            generation: AtomicU64::new(generation),
            supervisor: ArcSwap::from_pointee(supervisor),
            runs: ArcSwap::from_pointee(Vec::new()),
            listeners: ArcSwap::from_pointee(Vec::new()),
            next_listener: AtomicU64::new(1),
            events_out: Mutex::new(EventsOut::default()),
            events_waiting: AtomicBool::new(false),
            histories: HistoryCache::default(),
            fork_lock: Mutex::new(()),
            me: OnceLock::new(),
            counters: Counters::default(),
            sample_every_ms: AtomicU64::new(interval_ms(config_sample_interval)),
            last_sample: Mutex::new(None),
            failed_alerts: FailedQueue::default(),
            #[cfg(feature = "otlp")]
            otlp,
            declared_registered: AtomicBool::new(false),
        });
        let _ = inner.me.set(Arc::downgrade(&inner));
        // Writes left by processes that exited during an outage are replayed before
        // the first call (bounded, as at close), so that it sees them.
        if inner.supervisor().writes_wait() && inner.supervisor().health(&inner.config).reachable {
            if let Err(e) = inner.flush(Some(DRAIN_AT_CLOSE)) {
                log::warn!("tasker: writes left by an earlier process are not replayed yet: {e}");
            }
        }
        inner.spawn_writer(&inner.supervisor.load());
        let mut all = lock(&TRACKERS);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&inner));
        Ok(Tracker { inner })
    }

    /// Resolves the configuration (arguments, environment, files, default) and opens it.
    pub fn connect(args: &ConfigArgs) -> Result<Tracker> {
        Tracker::open(Config::resolve(args)?)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The host name runs of this process record (after any override).
    pub fn hostname(&self) -> &str {
        &self.inner.this_host
    }

    /// How often this process samples its resource use for the runs it started
    /// (`None`: it does not). Starts as `Config::sample_interval`.
    pub fn sample_interval(&self) -> Option<Duration> {
        self.inner.sample_interval()
    }

    /// Changes how often this process samples its resource use for the runs it
    /// started, from now on (`None` or zero: stop sampling). A new interval starts
    /// with a sample within one flush interval. Processes forked later inherit it.
    pub fn set_sample_interval(&self, every: Option<Duration>) {
        self.inner
            .sample_every_ms
            .store(interval_ms(every), Ordering::Relaxed);
    }

    /// The newest sample this process took for the runs it started (also before
    /// it is written), if it took one.
    pub fn last_sample(&self) -> Option<Sample> {
        self.inner.check_fork();
        lock(&self.inner.last_sample).clone()
    }

    pub fn backend_name(&self) -> &'static str {
        self.inner.config.location.backend()
    }

    /// Registers (or updates) one task; returns its id.
    pub fn register_task(&self, spec: &TaskSpec) -> Result<i64> {
        Ok(self.register_tasks(std::slice::from_ref(spec))?[0])
    }

    /// Registers many tasks in one transaction: all or none. While the database is
    /// away the registration is queued and the ids returned are 0.
    pub fn register_tasks(&self, specs: &[TaskSpec]) -> Result<Vec<i64>> {
        self.register_declared()?;
        self.register_specs(specs)
    }

    /// Registers the pipeline declared under `tasks:` in the configuration file
    /// (`declared.rs`), once per tracker: called before this process's first
    /// registration or run start, so that the program's own `register_task` calls
    /// come after it (and win where they differ). Returns how many tasks it
    /// registered now (0 when there is no declaration or it was done).
    pub fn register_declared(&self) -> Result<usize> {
        let specs = &self.inner.config.tasks;
        if specs.is_empty() || self.inner.declared_registered.load(Ordering::Acquire) {
            return Ok(0);
        }
        self.register_specs(specs).map_err(|e| {
            if e.is_transient() {
                e
            } else {
                Error::Config(format!(
                    "the tasks declared in the configuration file cannot be registered: {e}"
                ))
            }
        })?;
        self.inner
            .declared_registered
            .store(true, Ordering::Release);
        Ok(specs.len())
    }

    fn register_specs(&self, specs: &[TaskSpec]) -> Result<Vec<i64>> {
        for s in specs {
            s.validate()?;
        }
        let op = Op::Register {
            specs: specs.to_vec(),
            at: Utc::now(),
        };
        match self.inner.transition(op, Vec::new)? {
            Answer::Applied(Output::Registered(ids)) => Ok(ids),
            _ => Ok(vec![0; specs.len()]),
        }
    }

    /// Starts a run of `stage`/`task` (registering them if new) and returns its handle.
    pub fn task_start(&self, stage: &str, task: &str, options: RunOptions) -> Result<RunHandle> {
        check_name("stage", stage)?;
        check_name("task name", task)?;
        self.register_declared()?;
        let mut options = options;
        options.validate()?;
        crate::capture::fill(&mut options);
        let now = Utc::now();
        let known_lost = if options.retry && options.attempt.is_none() {
            self.latest_lost_run(stage, task)
        } else {
            None
        };
        let run = NewRun {
            run_id: uuid::Uuid::now_v7().to_string(),
            stage: stage.to_string(),
            task: task.to_string(),
            facts: ProcessFacts::current(self.inner.config.hostname.as_deref()),
            start_time: now,
            lost_before: now - self.lost_rule().lost_after,
            known_lost,
            options,
        };
        let run_id: Arc<str> = Arc::from(run.run_id.as_str());
        self.inner
            .transition(Op::StartRun(Box::new(run)), Vec::new)?;
        self.inner.supervisor().own(Arc::clone(&run_id));
        Ok(self.inner.handle(run_id, stage, task, Status::Started))
    }

    /// The task's latest run when it is active but lost (its process is gone),
    /// which a heartbeat cannot tell yet. Unknown while the database is away.
    fn latest_lost_run(&self, stage: &str, task: &str) -> Option<String> {
        let filter = HistoryFilter {
            stage: Some(stage.to_string()),
            task: Some(task.to_string()),
            limit: Some(1),
            ..HistoryFilter::default()
        };
        let latest = self.history(&filter).ok()?.into_iter().next()?;
        latest.lost.then_some(latest.run_id).flatten()
    }

    /// A handle on an existing run (for example in a worker process). While the
    /// database is unreachable the run cannot be checked and is taken on trust.
    pub fn attach_run(&self, run_id: &str) -> Result<RunHandle> {
        match self.run(run_id) {
            Ok(row) => Ok(self.inner.handle(
                Arc::from(run_id),
                &row.stage_name,
                &row.task_name,
                row.status,
            )),
            Err(e) if e.is_transient() => {
                uuid::Uuid::parse_str(run_id)
                    .map_err(|_| Error::invalid("run_id", run_id, "is not a run id (a UUID)"))?;
                Ok(self
                    .inner
                    .handle(Arc::from(run_id), "", "", Status::Running))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes all pending progress of this process durable now: in the database or,
    /// while it is unreachable (or writes queued during an outage are still being
    /// replayed), in a spool file, replayed by this process or the next one.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush(None)
    }

    /// Whether the database is reachable, and how many writes wait for it. Never
    /// waits for the database.
    pub fn health(&self) -> Health {
        self.inner.check_fork();
        self.inner.supervisor().health(&self.inner.config)
    }

    /// Writes what is pending (replaying what an outage queued, for up to 10 s,
    /// then spooling the rest), then stops the writer thread. Later calls reopen
    /// on demand.
    pub fn close(&self) -> Result<()> {
        let result = self.inner.flush(Some(DRAIN_AT_CLOSE));
        self.inner.stop_writer();
        result
    }

    /// Calls `f` with every event this tracker's writes store (in this process):
    /// transitions, starts, the implicit STARTED -> RUNNING of the first progress
    /// of a run or subtask, and the subtasks a finishing run closes, each once, in
    /// commit order, as `events_after` reads them (with their id and time). The
    /// events of a write are given out after its commit by the thread that made
    /// it (a transition: the caller, before it returns; progress: the writer
    /// thread, or a call that flushed first), unless another thread is giving
    /// out earlier events at that moment: then that thread gives these too, right
    /// after. While the database is away nothing is reported: a queued write's
    /// events come when it is replayed. A listener may call the tracker (the
    /// events of what it writes follow once it returns). Returns an id for
    /// `remove_listener`. A panicking listener is logged and never breaks tracking.
    pub fn add_listener(&self, f: Listener) -> u64 {
        let id = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        self.inner.listeners.rcu(|ls| {
            let mut next = Vec::clone(ls);
            next.push((id, Arc::clone(&f)));
            next
        });
        id
    }

    pub fn remove_listener(&self, id: u64) {
        self.inner.listeners.rcu(|ls| {
            ls.iter()
                .filter(|(i, _)| *i != id)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Recorded alerts, newest first (see `alerts/mod.rs`).
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRow>> {
        check_limit(filter.limit)?;
        self.read(|st| st.alerts(filter))
    }

    /// One pass of the configured time-based alert rules at `now` (LOST, stall,
    /// too long, dead-man), then the retry of due deliveries. Refused when the
    /// configuration has no alert rules.
    pub fn evaluate_alerts(&self, now: chrono::DateTime<Utc>) -> Result<PassReport> {
        let Some(config) = self.inner.config.alerts.clone() else {
            return Err(Error::Config(
                "no alert rules are configured (alerts: in .tasker.yml or the user config)".into(),
            ));
        };
        crate::alerts::evaluate(self, &config, now)
    }

    /// Records an incident unless it is already recorded; `Some(id)` when this
    /// call recorded it (and holds its first delivery).
    pub(crate) fn alert_claim(&self, new: &NewAlert) -> Result<Option<i64>> {
        self.read(|st| st.alert_claim(new))
    }

    /// Leases the undelivered alerts due at `now` (see `Store::alerts_due`).
    pub(crate) fn alerts_due(
        &self,
        now: chrono::DateTime<Utc>,
        lease_until: chrono::DateTime<Utc>,
        max_attempts: u32,
        only: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AlertRow>> {
        self.read(|st| st.alerts_due(now, lease_until, max_attempts, only, limit))
    }

    pub(crate) fn alert_outcome(&self, id: i64, outcome: &AlertOutcome) -> Result<()> {
        self.read(|st| st.alert_outcome(id, outcome))
    }

    /// The writer thread's part of alerting: sends the alerts of runs that failed
    /// in this process and retries those of them whose delivery failed.
    fn alert_turn(&self) {
        let Some(config) = self.inner.config.alerts.as_deref() else {
            return;
        };
        let queue = &self.inner.failed_alerts;
        if queue.is_idle() {
            return;
        }
        let dropped = queue.take_dropped();
        if dropped > 0 {
            log::warn!("tasker: {dropped} failed runs got no alert (too many failures at once)");
        }
        let unclaimed = crate::alerts::send_failed(self, config, queue.take(), &|id, at| {
            queue.retry_later(id, at)
        });
        queue.put_back(unclaimed);
        let now = Utc::now();
        for id in queue.due_retries(now) {
            if let Err(e) = crate::alerts::retry_due(self, config, now, Some(id)) {
                log::warn!("tasker: alert {id} is not retried now: {e}");
                queue.retry_later(id, now + chrono::Duration::seconds(30));
            }
        }
    }

    fn lost_rule(&self) -> LostRule {
        self.inner.lost_rule()
    }

    /// Fills the derived fields of rows read: percent, lost, duration, and the
    /// ETA of active runs. An estimate that cannot be made (the database went
    /// away meanwhile) leaves the ETA empty rather than failing the query.
    fn derived(&self, mut rows: Vec<RunRow>) -> Vec<RunRow> {
        let rule = self.lost_rule();
        rows.iter_mut().for_each(|r| r.derive(&rule));
        if rows.iter().any(|r| r.status.is_active() && !r.lost) {
            let cache = &self.inner.histories;
            if let Err(e) = self.read(|st| forecast::estimate_runs(cache, st, &mut rows, rule.now))
            {
                log::debug!("tasker: no estimates this time: {e}");
            }
        }
        rows
    }

    /// Reads after making this process's own pending progress visible.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.inner.read(f)
    }

    /// Counters of this tracker's writes in this process (for benchmarks and health).
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            progress_commits: self.inner.counters.progress_commits.load(Ordering::Relaxed),
            transitions: self.inner.counters.transitions.load(Ordering::Relaxed),
        }
    }

    /// The latest run of every registered task; tasks never run show as NOT_STARTED.
    pub fn task_status(&self, filter: &StatusFilter) -> Result<Vec<RunRow>> {
        check_limit(filter.limit)?;
        self.read(|st| st.task_status(filter))
            .map(|r| self.derived(r))
    }

    /// The pipeline as a graph: every registered task with its latest run (status,
    /// progress, ETA, lost flag, wait time), the dependencies between them, and
    /// whether each task is blocked or waiting (see `dag.rs`). One read.
    pub fn dag(&self) -> Result<crate::dag::Dag> {
        let (rows, deps) = self.read(|st| {
            Ok((
                st.task_status(&StatusFilter::default())?,
                st.task_dependencies()?,
            ))
        })?;
        Ok(crate::dag::Dag::build(self.derived(rows), deps))
    }

    /// Every active run (STARTED, RUNNING, PAUSED), including concurrent runs of one task.
    pub fn active_runs(&self) -> Result<Vec<RunRow>> {
        self.read(|st| st.active_runs()).map(|r| self.derived(r))
    }

    /// Runs, newest first.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<RunRow>> {
        check_limit(filter.limit)?;
        self.read(|st| st.history(filter)).map(|r| self.derived(r))
    }

    /// A page of runs in any order, and how many match: sorted and paged by the
    /// database (the dashboard's History sorted by a column).
    pub fn run_page(&self, q: &crate::query::RunPageQuery) -> Result<(Vec<RunRow>, usize)> {
        check_limit(Some(q.limit))?;
        let now = Utc::now();
        let (rows, total) = self.read(|st| st.run_page(q, now))?;
        Ok((self.derived(rows), total))
    }

    /// The runs `history` returns, newest first, handed to `f` one at a time as
    /// they are read (with percent, lost flag and duration; no ETA): an export of
    /// every run without holding them all. `f` returns false to stop.
    pub fn for_each_run(
        &self,
        filter: &HistoryFilter,
        mut f: impl FnMut(RunRow) -> Result<bool>,
    ) -> Result<()> {
        check_limit(filter.limit)?;
        let rule = self.lost_rule();
        self.read(|st| {
            st.for_each_run(filter, &mut |mut r| {
                r.derive(&rule);
                f(r)
            })
        })
    }

    /// The runs with these ids as OpenTelemetry traces would show them: each
    /// run (derived) with its subtasks and events, read in one session. Ids not
    /// found are left out.
    #[cfg(feature = "otlp")]
    pub fn run_traces(&self, run_ids: &[&str]) -> Result<Vec<crate::otlp::RunTrace>> {
        let rule = self.lost_rule();
        self.read(|st| crate::otlp::read_traces(st, run_ids, &rule))
    }

    /// Runs by stage, task and status, with COMPLETED runs' durations counted in
    /// `buckets` (seconds): one aggregate query (`/metrics` at start).
    pub fn run_counts(&self, buckets: &[f64]) -> Result<Vec<crate::store::RunCount>> {
        self.read(|st| st.run_counts(buckets))
    }

    /// One run by id.
    pub fn run(&self, run_id: &str) -> Result<RunRow> {
        let row = self
            .read(|st| st.run(run_id))?
            .ok_or_else(|| Error::not_found("run", run_id))?;
        Ok(self.derived(vec![row]).remove(0))
    }

    /// Ids of runs starting with `prefix`, in order, at most `limit` (see
    /// `run_ids::resolve` and `run_ids::short_ids`).
    pub fn run_ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        self.read(|st| st.run_ids_with_prefix(prefix, limit))
    }

    /// The subtasks of a run, by number.
    /// Statistics per task over its stored runs (see `TaskStats`), ordered by
    /// stage and task.
    pub fn task_stats(&self, filter: &StatsFilter) -> Result<Vec<TaskStats>> {
        if filter.limit == Some(0) {
            return Err(Error::invalid("limit", 0usize, "must be at least 1"));
        }
        let rule = self.lost_rule();
        let (mut stats, waits) =
            self.read(|st| Ok((st.task_stats(filter, &rule)?, st.wait_times(filter)?)))?;
        crate::stats::fill_waits(&mut stats, waits, filter.limit);
        Ok(stats)
    }

    /// A run's resource samples (its process and children), oldest first.
    pub fn samples(&self, run_id: &str) -> Result<Vec<Sample>> {
        self.read(|st| st.samples(run_id))
    }

    /// A run's recorded inputs, then its outputs, each by name.
    /// The newest resource sample of each run that has one, by run id (one
    /// query, for views of many active runs).
    pub fn latest_samples(&self, run_ids: &[&str]) -> Result<HashMap<String, Sample>> {
        if run_ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.read(|st| Ok(st.latest_samples(run_ids)?.into_iter().collect()))
    }

    pub fn run_io(&self, run_id: &str) -> Result<Vec<IoRow>> {
        self.read(|st| st.run_io(run_id))
    }

    pub fn subtasks(&self, run_id: &str) -> Result<Vec<SubtaskRow>> {
        let rule = self.lost_rule();
        let cache = &self.inner.histories;
        self.read(|st| {
            let mut run = st
                .run(run_id)?
                .ok_or_else(|| Error::not_found("run", run_id))?;
            run.derive(&rule);
            let mut rows = st.subtasks(run_id)?;
            rows.iter_mut()
                .for_each(|r| r.derive(run.clock_stop(rule.now)));
            forecast::estimate_subtasks(cache, st, &run, &mut rows, rule.now)?;
            Ok(rows)
        })
    }

    /// The subtasks of many runs in one query (derived, with their ETA), by
    /// run id: what a view of many active runs needs. `runs` are rows read
    /// before (their lost flag decides whether subtasks get a rate and ETA).
    pub fn subtasks_of(&self, runs: &[RunRow]) -> Result<HashMap<String, Vec<SubtaskRow>>> {
        let ids: Vec<&str> = runs.iter().filter_map(|r| r.run_id.as_deref()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rule = self.lost_rule();
        let cache = &self.inner.histories;
        self.read(|st| {
            let mut by_run: HashMap<String, Vec<SubtaskRow>> = HashMap::new();
            for s in st.subtasks_of_runs(&ids)? {
                by_run.entry(s.run_id.clone()).or_default().push(s);
            }
            for run in runs {
                let Some(rows) = run.run_id.as_ref().and_then(|id| by_run.get_mut(id)) else {
                    continue;
                };
                rows.iter_mut()
                    .for_each(|r| r.derive(run.clock_stop(rule.now)));
                forecast::estimate_subtasks(cache, st, run, rows, rule.now)?;
            }
            Ok(by_run)
        })
    }

    pub fn registered_tasks(
        &self,
        stage: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<TaskRow>> {
        self.read(|st| st.registered_tasks(stage, name))
    }

    pub fn stages(&self) -> Result<Vec<StageRow>> {
        self.read(|st| st.stages())
    }

    /// Transitions recorded after event `after` (0 for all), oldest first.
    pub fn events_after(
        &self,
        after: i64,
        run_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>> {
        self.read(|st| st.events_after(after, run_id, limit))
    }

    /// Deletes registered tasks (and stages left without any) in one transaction;
    /// `which.runs` says what happens to tasks that have runs.
    pub fn delete_tasks(&self, which: &TaskSelector) -> Result<TasksDeleted> {
        self.read(|st| st.delete_tasks(which))
    }

    /// Deletes runs with their subtasks and events; returns how many runs.
    pub fn delete_runs(&self, which: &RunSelector) -> Result<usize> {
        self.read(|st| st.delete_runs(which))
    }

    /// Deletes finished runs older than the configured retention (`retention:`),
    /// in small batches (one transaction each), never an active run. Failed runs
    /// are kept for `keep_failed_days` when set. `None` when no retention is
    /// configured. For long-running tasker processes and `tasker purge
    /// --apply-retention`; a pipeline's own calls never do this.
    pub fn apply_retention(&self) -> Result<Option<RetentionReport>> {
        let Some(r) = self.inner.config.retention else {
            return Ok(None);
        };
        let now = Utc::now();
        let days = |d: u32| now - chrono::Duration::days(i64::from(d));
        let mut report = RetentionReport {
            days: r.days,
            keep_failed_days: r.keep_failed_days,
            ..RetentionReport::default()
        };
        let batch = |failed: bool, before| {
            let mut deleted = 0;
            loop {
                let n = self.delete_runs(&RunSelector {
                    before: Some(before),
                    finished_only: true,
                    keep_failed: !failed,
                    failed_only: failed,
                    limit: Some(RETENTION_BATCH),
                    ..RunSelector::default()
                })?;
                deleted += n;
                if n < RETENTION_BATCH {
                    return Ok::<usize, Error>(deleted);
                }
            }
        };
        report.deleted_runs = batch(false, days(r.days))?;
        report.deleted_failed_runs = batch(true, days(r.keep_failed_days.unwrap_or(r.days)))?;
        Ok(Some(report))
    }

    /// Sets the status of any run by id (an operator action); `info.reset` leaves a
    /// terminal status.
    pub fn set_run_status(&self, run_id: &str, to: Status, info: TransitionInfo) -> Result<Status> {
        self.attach_run(run_id)?.set_status(to, info)
    }

    /// Marks a lost run FAILED, ending it at its last sign of life (so its
    /// duration is the time it ran, not the time until someone noticed).
    /// Refuses a run that is not lost.
    pub fn reap_run(&self, run_id: &str, info: TransitionInfo) -> Result<Status> {
        let row = self.run(run_id)?;
        if !row.lost {
            return Err(Error::invalid(
                "run_id",
                run_id,
                &format!("is not lost (it is {})", row.status),
            ));
        }
        let end = row.clock_stop(Utc::now());
        self.attach_run(run_id)?
            .set_status_at(Status::Failed, info, end)
    }
}

/// A sample interval in milliseconds (0: none; at least 1 ms otherwise).
fn interval_ms(every: Option<Duration>) -> u64 {
    every.map_or(0, |d| {
        u64::try_from(d.as_millis())
            .unwrap_or(u64::MAX)
            .max(u64::from(!d.is_zero()))
    })
}

fn check_limit(limit: Option<usize>) -> Result<()> {
    match limit {
        Some(0) => Err(Error::invalid("limit", 0usize, "must be at least 1")),
        _ => Ok(()),
    }
}

impl TrackerInner {
    fn lost_rule(&self) -> LostRule {
        LostRule {
            now: Utc::now(),
            this_host: self.this_host.clone(),
            lost_after: chrono::Duration::from_std(self.config.lost_after)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            config: &self.config,
            runs: self,
            counters: &self.counters,
        }
    }

    /// This process's supervisor (after a fork: the child's own).
    pub(crate) fn supervisor(&self) -> arc_swap::Guard<Arc<Supervisor>> {
        self.supervisor.load()
    }

    fn spawn_writer(&self, sup: &Supervisor) {
        let me = self.me.get().cloned().unwrap_or_default();
        let w = Writer::spawn(
            me,
            self.config.flush_interval,
            self.config.heartbeat_interval,
        );
        *lock(&sup.writer) = Some(w);
    }

    fn stop_writer(&self) {
        if let Some(w) = lock(&self.supervisor().writer).take() {
            w.stop();
        }
    }

    /// Called at the top of every operation: cheap unless this is a forked child.
    #[inline]
    pub(crate) fn check_fork(&self) {
        if self.generation.load(Ordering::Relaxed) != fork_generation() {
            self.after_fork();
        }
    }

    #[cold]
    fn after_fork(&self) {
        let _guard = lock(&self.fork_lock);
        let g = fork_generation();
        if self.generation.load(Ordering::Acquire) == g {
            return;
        }
        for run in self.live_runs() {
            run.cells.reset_all();
        }
        // The parent's sample is not this process's, nor are its alerts, its
        // events and the runs it ended.
        self.failed_alerts.clear();
        *lock(&self.last_sample) = None;
        *lock(&self.events_out) = EventsOut::default();
        self.events_waiting.store(false, Ordering::Release);
        #[cfg(feature = "otlp")]
        if let Some(x) = &self.otlp {
            x.forget_queued();
        }
        let fresh = Arc::new(Supervisor::new(g, Ok(None), &self.config));
        self.spawn_writer(&fresh);
        // The parent's connection and writer belong to the parent: never close or join
        // them here (closing a SQLite connection after fork can corrupt its locks).
        std::mem::forget(self.supervisor.swap(fresh));
        self.generation.store(g, Ordering::Release);
    }

    fn live_runs(&self) -> impl Iterator<Item = Arc<RunShared>> + '_ {
        self.runs
            .load_full()
            .iter()
            .filter_map(Weak::upgrade)
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// A transition through this process's supervisor (see `Supervisor::transition`).
    pub(crate) fn transition(
        &self,
        op: Op,
        first: impl FnOnce() -> Vec<ProgressUpdate>,
    ) -> Result<Answer> {
        self.check_fork();
        let answer = self.supervisor().transition(&self.cx(), op, first);
        self.deliver_events();
        answer
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.check_fork();
        let out = self.supervisor().read(&self.cx(), f);
        self.deliver_events(); // of the progress written first
        out
    }

    /// Whether writes wait for the database (an outage or its replay).
    pub(crate) fn writes_wait(&self) -> bool {
        self.supervisor().writes_wait()
    }

    fn flush(&self, drain: Option<Duration>) -> Result<()> {
        self.check_fork();
        let flushed = self.supervisor().flush(&self.cx(), drain);
        self.deliver_events();
        if drain.is_some() {
            // Closing or exiting: runs that just ended are exported now, since the
            // writer may not get another turn (skipped while the collector is away).
            self.export_ended_runs(true);
        }
        flushed
    }

    /// A run of this process reached a terminal status: queue it for export (no
    /// I/O; nothing when export is off).
    pub(crate) fn run_ended(&self, run_id: &Arc<str>) {
        #[cfg(feature = "otlp")]
        if let Some(x) = &self.otlp {
            x.run_ended(run_id);
        }
        #[cfg(not(feature = "otlp"))]
        let _ = run_id;
    }

    /// A subtask of a run reached a terminal status: queue its span for export
    /// (no I/O; nothing when export is off).
    pub(crate) fn subtask_ended(&self, run_id: &Arc<str>) {
        #[cfg(feature = "otlp")]
        if let Some(x) = &self.otlp {
            x.subtask_ended(run_id);
        }
        #[cfg(not(feature = "otlp"))]
        let _ = run_id;
    }

    /// Exports the runs and subtasks that ended since the last call (see
    /// `otlp/`): called by the writer thread on its turn (`closing`: at close,
    /// when subtask spans no longer wait for a batch), never while writes wait
    /// for the database (the ends may not be stored yet).
    pub(crate) fn export_ended_runs(&self, closing: bool) {
        #[cfg(feature = "otlp")]
        if let Some(x) = &self.otlp {
            if self.supervisor().generation != fork_generation() || self.writes_wait() {
                return;
            }
            let rule = self.lost_rule();
            x.export(closing, |ids| {
                self.read(|st| crate::otlp::read_traces(st, ids, &rule))
            });
        }
        #[cfg(not(feature = "otlp"))]
        let _ = closing;
    }

    /// Samples this process for the runs it started (nothing when it started
    /// none, or on a platform without sampling). Called by the writer thread.
    pub(crate) fn sample_owned_runs(&self, sampler: &mut Sampler) {
        let sup = self.supervisor();
        if sup.generation != fork_generation() || !sup.owns_runs() {
            return;
        }
        if let Ok(sample) = sampler.sample() {
            sup.add_sample(sample.clone());
            *lock(&self.last_sample) = Some(sample);
        }
    }

    /// See `Tracker::sample_interval`.
    pub(crate) fn sample_interval(&self) -> Option<Duration> {
        match self.sample_every_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The writer thread's turn (see `Supervisor::tick`); when queued writes wait,
    /// how soon it should come back.
    pub(crate) fn flush_in_background(&self, heartbeat: bool) -> Option<Duration> {
        // A writer left over in a forked child belongs to the parent: do nothing.
        let sup = self.supervisor();
        if sup.generation != fork_generation() {
            return None;
        }
        let again = sup.tick(&self.cx(), heartbeat);
        self.deliver_events();
        again
    }

    pub(crate) fn handle(
        &self,
        run_id: Arc<str>,
        stage: &str,
        task: &str,
        status: Status,
    ) -> RunHandle {
        let me = self
            .me
            .get()
            .and_then(Weak::upgrade)
            .expect("a tracker in use is alive");
        let shared = Arc::new(RunShared::new(run_id, stage, task, me, status));
        let weak = Arc::downgrade(&shared);
        self.runs.rcu(|runs| {
            let mut next: Vec<Weak<RunShared>> = runs
                .iter()
                .filter(|w| w.strong_count() > 0)
                .cloned()
                .collect();
            next.push(weak.clone());
            next
        });
        RunHandle::from_shared(shared)
    }

    /// A run of this process became FAILED: queue its alert for the writer thread
    /// (only when a rule could want it; a short lock, no I/O).
    pub(crate) fn run_failed(&self, run_id: &str, stage: &str, task: &str, message: Option<&str>) {
        let Some(config) = self.config.alerts.as_deref() else {
            return;
        };
        if config
            .rules
            .iter()
            .any(|r| r.trigger == crate::alerts::Trigger::Failed && r.covers(stage, task))
        {
            self.failed_alerts.push(FailedRun {
                run_id: run_id.to_string(),
                stage: stage.to_string(),
                task: task.to_string(),
                message: message.map(str::to_string),
                at: Utc::now(),
            });
        }
    }

    /// See `Tracker::alert_turn` (called by the writer thread after each flush).
    pub(crate) fn alert_turn(self: &Arc<Self>) {
        if self.config.alerts.is_some() && !self.failed_alerts.is_idle() {
            Tracker::from_inner(Arc::clone(self)).alert_turn();
        }
    }

    /// Gives the staged events out, oldest first, one thread at a time. When
    /// another thread (or a listener up this thread's stack) is giving events
    /// out, it returns at once: that one gives these too, after its own, so that
    /// each goes out once and in commit order, and no thread ever waits for a
    /// listener running on another (a binding's listener may need a lock, such
    /// as Python's GIL, that the waiting thread holds). Called after every
    /// supervisor call, with no lock held.
    fn deliver_events(&self) {
        if !self.events_waiting.load(Ordering::Acquire) {
            return;
        }
        let mut batch = {
            let mut out = lock(&self.events_out);
            if out.delivering || out.pending.is_empty() {
                return;
            }
            out.delivering = true;
            self.events_waiting.store(false, Ordering::Release);
            std::mem::take(&mut out.pending)
        };
        loop {
            self.events_stored(&batch);
            let mut out = lock(&self.events_out);
            if out.pending.is_empty() {
                out.delivering = false;
                return;
            }
            self.events_waiting.store(false, Ordering::Release);
            batch = std::mem::take(&mut out.pending);
        }
    }

    /// The one place stored events go out from: every event a write of this
    /// tracker stored, once, in commit order, with no lock held. Whatever
    /// follows events (listeners today) subscribes here.
    pub(crate) fn events_stored(&self, events: &[EventRow]) {
        let listeners = self.listeners.load();
        for event in events {
            for (_, f) in listeners.iter() {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event))).is_err() {
                    log::error!("tasker: an event listener panicked; tracking goes on");
                }
            }
        }
    }

    fn runs_with_id<'a>(&'a self, run_id: &'a str) -> impl Iterator<Item = Arc<RunShared>> + 'a {
        self.live_runs().filter(move |r| r.run_id() == run_id)
    }
}

impl RunRegistry for TrackerInner {
    fn take_all(&self, out: &mut Vec<ProgressUpdate>) {
        for run in self.live_runs() {
            run.cells.take_all(run.run_id_arc(), out);
        }
    }

    /// Whether anything consumes stored events (`events_stored`); when nothing
    /// does, the store does not read them back.
    fn wants_events(&self) -> bool {
        !self.listeners.load().is_empty()
    }

    fn stored(&self, mut events: Vec<EventRow>) {
        if events.is_empty() || !self.wants_events() {
            return;
        }
        let mut out = lock(&self.events_out);
        out.pending.append(&mut events);
        self.events_waiting.store(true, Ordering::Release);
    }

    fn applied(&self, op: &Op, out: &Output) {
        match (op, out) {
            (
                Op::SubtaskStart {
                    run_id,
                    uid: Some(uid),
                    ..
                },
                Output::SubtaskStarted { number },
            ) => {
                for run in self.runs_with_id(run_id) {
                    run.learn_number(uid, *number);
                }
            }
            (Op::Progress { updates, .. }, Output::Progress { finished }) => {
                for (i, status) in finished {
                    if let Some(u) = updates.get(*i) {
                        for run in self.runs_with_id(&u.run_id) {
                            run.learn_finished(u, *status);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for TrackerInner {
    fn drop(&mut self) {
        if self.generation.load(Ordering::Relaxed) != fork_generation() {
            return; // a forked child's copy of the parent's tracker: leave it alone
        }
        if let Err(e) = self.supervisor().flush(&self.cx(), Some(DRAIN_AT_CLOSE)) {
            log::warn!("tasker: progress not written at close: {e}");
        }
        self.deliver_events();
        // The writer's last turn cannot reach a tracker being dropped.
        self.export_ended_runs(true);
        self.stop_writer();
    }
}

/// Flushes every tracker of this process (for exit hooks of bindings): writes
/// queued during an outage are replayed for up to 10 s; while a database is
/// unreachable its writes go to a spool file.
pub fn flush_all() {
    let trackers: Vec<Arc<TrackerInner>> =
        lock(&TRACKERS).iter().filter_map(Weak::upgrade).collect();
    for t in trackers {
        if let Err(e) = t.flush(Some(DRAIN_AT_CLOSE)) {
            log::warn!("tasker: progress not written at exit: {e}");
        }
        // Alerts of runs that failed just before exit are sent now (one attempt).
        t.alert_turn();
    }
}
