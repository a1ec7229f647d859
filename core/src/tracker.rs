//! The handles users hold: a [`Tracker`] (an open database) and a [`RunHandle`]
//! (one run). Progress calls on a run touch only in-memory atomics; transitions
//! flush this process's pending progress and commit before they return.
//!
//! Fork safety: every call first compares the process's fork generation (bumped
//! by a `pthread_atfork` child hook) with the tracker's. A forked child drops
//! the progress it inherited (the parent writes that), never touches the
//! parent's connection or threads, and opens its own on first use.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, ConfigArgs};
use crate::error::{Error, Result};
use crate::ffi::os::{fork_generation, install_fork_hook};
use crate::model::{
    check_name, check_percent, check_text, RunOptions, RunProgress, Status, SubtaskOptions,
    SubtaskProgress, TaskSpec, TransitionInfo,
};
use crate::outbox::{location_key, Op, Outbox};
use crate::process::ProcessFacts;
use crate::progress::RunCells;
use crate::query::{
    EventRow, HistoryFilter, LostRule, RunRow, StageRow, StatusFilter, SubtaskRow, TaskRow,
};
use crate::store::{self, NewRun, ProgressUpdate, RunSelector, Store, WriterSeq};
use crate::writer::Writer;

/// A transition made through this tracker, as given to listeners.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransitionEvent {
    pub run_id: String,
    pub stage_name: String,
    pub task_name: String,
    /// `None` for the run itself.
    pub subtask_number: Option<u32>,
    pub old_status: Status,
    pub new_status: Status,
    pub message: Option<String>,
}

pub type Listener = Arc<dyn Fn(&TransitionEvent) + Send + Sync>;

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

/// The per-process side of a tracker: a connection, the writes waiting for the
/// database, and a writer thread. A forked child builds a new one and leaks the parent's.
struct Backend {
    generation: u64,
    slot: Mutex<Slot>,
    writer: Mutex<Option<Writer>>,
    /// Runs started by this process: the writer keeps their heartbeat fresh.
    owned: Mutex<Vec<Arc<str>>>,
    /// Progress of runs whose last handle was dropped before it was written: the
    /// next flush writes it first.
    orphans: Mutex<Vec<ProgressUpdate>>,
    /// This process's progress batches are numbered under this id, so that the
    /// database applies each once even when one is sent twice.
    writer_id: String,
    next_batch: AtomicU64,
    /// A batch that failed on its way to the database, for `attempt` to queue in
    /// the outbox: it may have been committed, so it is sent again as it was, under
    /// its number, never merged back into newer progress.
    in_doubt: Mutex<Vec<Op>>,
}

/// The connection and what could not be written yet, behind one lock so that writes
/// keep their order.
struct Slot {
    store: Option<Box<dyn Store>>,
    outbox: Outbox,
    /// During an outage: no new attempt to reach the database before this time.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: Option<String>,
}

/// Waits between attempts to reach a database that is down: doubling up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Backend {
    fn new(generation: u64, store: Option<Box<dyn Store>>, config: &Config) -> Backend {
        let key = location_key(&config.location.describe());
        Backend {
            generation,
            slot: Mutex::new(Slot {
                store,
                outbox: Outbox::new(crate::config::state_dir().join("spool"), key),
                retry_at: None,
                backoff: Duration::ZERO,
                last_error: None,
            }),
            writer: Mutex::new(None),
            owned: Mutex::new(Vec::new()),
            orphans: Mutex::new(Vec::new()),
            writer_id: uuid::Uuid::now_v7().to_string(),
            next_batch: AtomicU64::new(1),
            in_doubt: Mutex::new(Vec::new()),
        }
    }

    fn next_batch_id(&self) -> WriterSeq {
        WriterSeq {
            writer: self.writer_id.clone(),
            seq: self.next_batch.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Whether tracking reaches its database, and what waits to be written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// Where the database is (never with a password).
    pub location: String,
    pub reachable: bool,
    /// The last error, while the database is unreachable.
    pub last_error: Option<String>,
    /// Transitions and progress batches waiting for the database (memory and spool).
    pub pending_writes: usize,
    /// Of those, how many are in this process's spool file.
    pub spooled_writes: usize,
}

pub(crate) struct TrackerInner {
    config: Config,
    this_host: String,
    generation: AtomicU64,
    backend: ArcSwap<Backend>,
    runs: ArcSwap<Vec<Weak<RunShared>>>,
    listeners: ArcSwap<Vec<(u64, Listener)>>,
    next_listener: AtomicU64,
    fork_lock: Mutex<()>,
    me: OnceLock<Weak<TrackerInner>>,
    progress_commits: AtomicU64,
    transitions: AtomicU64,
    /// Set while the database is unreachable, so an outage warns once.
    failing: AtomicBool,
}

/// What a tracker wrote so far in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerStats {
    /// Transactions the writer committed for progress and heartbeats.
    pub progress_commits: u64,
    /// Transitions committed (starts, completions, failures, ...).
    pub transitions: u64,
}

/// Trackers alive in this process, for `flush_all` at exit.
static TRACKERS: Mutex<Vec<Weak<TrackerInner>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tracker {
    /// Opens (creating and migrating if needed) the database a config names and
    /// starts the writer thread.
    pub fn open(config: Config) -> Result<Tracker> {
        install_fork_hook();
        // An unreachable database must not stop the pipeline: start in outage mode
        // (writes are kept and replayed). A wrong configuration still fails here.
        let (store, open_error) = match store::open(&config) {
            Ok(st) => (Some(st), None),
            Err(e) if e.is_transient() => (None, Some(e)),
            Err(e) => return Err(e),
        };
        let generation = fork_generation();
        let backend = Backend::new(generation, store, &config);
        let this_host = config
            .hostname
            .clone()
            .unwrap_or_else(crate::process::hostname);
        let inner = Arc::new(TrackerInner {
            config,
            this_host,
            generation: AtomicU64::new(generation),
            backend: ArcSwap::from_pointee(backend),
            runs: ArcSwap::from_pointee(Vec::new()),
            listeners: ArcSwap::from_pointee(Vec::new()),
            next_listener: AtomicU64::new(1),
            fork_lock: Mutex::new(()),
            me: OnceLock::new(),
            progress_commits: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        });
        let _ = inner.me.set(Arc::downgrade(&inner));
        {
            let backend = inner.backend.load_full();
            let mut slot = lock(&backend.slot);
            match open_error {
                Some(e) => {
                    inner.outage(&mut slot, e);
                }
                // Writes left by processes that exited during an outage.
                None if slot.outbox.adopt_orphans() > 0 => {
                    let _ = inner.attempt(&mut slot, |_| Ok(()));
                }
                None => {}
            }
        }
        inner.spawn_writer(&inner.backend.load());
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

    pub fn backend_name(&self) -> &'static str {
        self.inner.config.location.backend()
    }

    /// Registers (or updates) one task; returns its id.
    pub fn register_task(&self, spec: &TaskSpec) -> Result<i64> {
        Ok(self.register_tasks(std::slice::from_ref(spec))?[0])
    }

    /// Registers many tasks in one transaction: all or none.
    pub fn register_tasks(&self, specs: &[TaskSpec]) -> Result<Vec<i64>> {
        for s in specs {
            s.validate()?;
        }
        let now = Utc::now();
        let op = Op::Register {
            specs: specs.to_vec(),
            at: now,
        };
        let (ids, _) = self.inner.transition(
            op,
            |st| st.register_tasks(specs, now),
            || vec![0; specs.len()],
        )?;
        Ok(ids)
    }

    /// Starts a run of `stage`/`task` (registering them if new) and returns its handle.
    pub fn task_start(&self, stage: &str, task: &str, options: RunOptions) -> Result<RunHandle> {
        check_name("stage", stage)?;
        check_name("task name", task)?;
        options.validate()?;
        let run = NewRun {
            run_id: uuid::Uuid::now_v7().to_string(),
            stage: stage.to_string(),
            task: task.to_string(),
            facts: ProcessFacts::current(self.inner.config.hostname.as_deref()),
            start_time: Utc::now(),
            options,
        };
        let message = run.options.message.clone();
        self.inner.transition(
            Op::StartRun(Box::new(run.clone())),
            |st| st.start_run(&run),
            || (),
        )?;
        let run_id: Arc<str> = Arc::from(run.run_id.as_str());
        lock(&self.inner.backend.load().owned).push(Arc::clone(&run_id));
        let handle = self.inner.handle(run_id, stage, task, Status::Started);
        handle
            .shared
            .notify(None, Status::NotStarted, Status::Started, message);
        Ok(handle)
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
    /// while it is unreachable, in this process's spool file (replayed later).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_or_spool()
    }

    /// Whether the database is reachable, and how many writes wait for it.
    pub fn health(&self) -> Health {
        self.inner.check_fork();
        let backend = self.inner.backend.load_full();
        let slot = lock(&backend.slot);
        Health {
            backend: self.inner.config.location.backend(),
            location: self.inner.config.location.describe(),
            reachable: slot.retry_at.is_none() && slot.store.is_some(),
            last_error: slot.last_error.clone(),
            pending_writes: slot.outbox.len(),
            spooled_writes: slot.outbox.spooled(),
        }
    }

    /// Flushes, then stops the writer thread. Later calls reopen on demand.
    pub fn close(&self) -> Result<()> {
        let result = self.flush();
        self.inner.stop_writer();
        result
    }

    /// Calls `f` after every transition made through this tracker. Returns an id for
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

    fn lost_rule(&self) -> LostRule {
        LostRule {
            now: Utc::now(),
            this_host: self.inner.this_host.clone(),
            lost_after: chrono::Duration::from_std(self.inner.config.lost_after)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    fn derived(&self, mut rows: Vec<RunRow>) -> Vec<RunRow> {
        let rule = self.lost_rule();
        rows.iter_mut().for_each(|r| r.derive(&rule));
        rows
    }

    /// Reads after making this process's own pending progress visible.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.inner.read(f)
    }

    /// Counters of this tracker's writes in this process (for benchmarks and health).
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            progress_commits: self.inner.progress_commits.load(Ordering::Relaxed),
            transitions: self.inner.transitions.load(Ordering::Relaxed),
        }
    }

    /// The latest run of every registered task; tasks never run show as NOT_STARTED.
    pub fn task_status(&self, filter: &StatusFilter) -> Result<Vec<RunRow>> {
        check_limit(filter.limit)?;
        self.read(|st| st.task_status(filter))
            .map(|r| self.derived(r))
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

    /// One run by id.
    pub fn run(&self, run_id: &str) -> Result<RunRow> {
        let row = self
            .read(|st| st.run(run_id))?
            .ok_or_else(|| Error::not_found("run", run_id))?;
        Ok(self.derived(vec![row]).remove(0))
    }

    /// The subtasks of a run, by number.
    pub fn subtasks(&self, run_id: &str) -> Result<Vec<SubtaskRow>> {
        let mut rows = self.read(|st| {
            if st.run_status(run_id)?.is_none() {
                return Err(Error::not_found("run", run_id));
            }
            st.subtasks(run_id)
        })?;
        let now = Utc::now();
        rows.iter_mut().for_each(|r| r.derive(now));
        Ok(rows)
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

    /// Deletes runs with their subtasks and events; returns how many runs.
    pub fn delete_runs(&self, which: &RunSelector) -> Result<usize> {
        self.read(|st| st.delete_runs(which))
    }

    /// Sets the status of any run by id (an operator action); `info.reset` leaves a
    /// terminal status.
    pub fn set_run_status(&self, run_id: &str, to: Status, info: TransitionInfo) -> Result<Status> {
        self.attach_run(run_id)?.set_status(to, info)
    }
}

fn check_limit(limit: Option<usize>) -> Result<()> {
    match limit {
        Some(0) => Err(Error::invalid("limit", 0usize, "must be at least 1")),
        _ => Ok(()),
    }
}

impl TrackerInner {
    fn spawn_writer(&self, backend: &Backend) {
        let me = self.me.get().cloned().unwrap_or_default();
        let w = Writer::spawn(
            me,
            self.config.flush_interval,
            self.config.heartbeat_interval,
        );
        *lock(&backend.writer) = Some(w);
    }

    fn stop_writer(&self) {
        if let Some(w) = lock(&self.backend.load().writer).take() {
            w.stop();
        }
    }

    /// Called at the top of every operation: cheap unless this is a forked child.
    #[inline]
    fn check_fork(&self) {
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
        for run in self.runs.load().iter().filter_map(Weak::upgrade) {
            run.cells.reset_all();
        }
        let fresh = Arc::new(Backend::new(g, None, &self.config));
        self.spawn_writer(&fresh);
        // The parent's connection and writer belong to the parent: never close or join
        // them here (closing a SQLite connection after fork can corrupt its locks).
        std::mem::forget(self.backend.swap(fresh));
        self.generation.store(g, Ordering::Release);
    }

    /// Runs `f` on a usable store: opened if needed, with the writes queued during an
    /// outage replayed first. A storage error starts (or extends) an outage.
    fn attempt<T>(
        &self,
        slot: &mut Slot,
        f: impl FnOnce(&mut dyn Store) -> Result<T>,
    ) -> Result<T> {
        if let Some(at) = slot.retry_at {
            if Instant::now() < at {
                let why = slot
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "unreachable".into());
                return Err(Error::storage(
                    self.config.location.backend(),
                    format!("{why} (retrying)"),
                ));
            }
        }
        let result = (|| {
            if slot.store.is_none() {
                slot.store = Some(store::open(&self.config)?);
            }
            let st = slot.store.as_deref_mut().expect("opened above");
            if !slot.outbox.is_empty() {
                slot.outbox.replay(st)?;
            }
            f(st)
        })();
        match result {
            Err(e) if e.is_transient() => {
                for op in std::mem::take(&mut *lock(&self.backend.load().in_doubt)) {
                    slot.outbox.push(op);
                }
                Err(self.outage(slot, e))
            }
            other => {
                if slot.retry_at.take().is_some() || self.failing.load(Ordering::Relaxed) {
                    slot.backoff = Duration::ZERO;
                    slot.last_error = None;
                    if self.failing.swap(false, Ordering::Relaxed) {
                        log::warn!(
                            "tasker: {} is reachable again; kept writes were replayed",
                            self.config.location.describe()
                        );
                    }
                }
                other
            }
        }
    }

    /// Records a storage error: reconnect later, with backoff; warn once per outage.
    fn outage(&self, slot: &mut Slot, e: Error) -> Error {
        slot.store = None;
        slot.backoff = (slot.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        slot.retry_at = Some(Instant::now() + slot.backoff);
        slot.last_error = Some(e.to_string());
        if !self.failing.swap(true, Ordering::Relaxed) {
            log::warn!("tasker: cannot write to the database ({e}); tracking goes on, writes are kept and replayed when it is back");
        }
        e
    }

    /// Runs `f` with the store after writing this process's pending progress (so that
    /// reads see it and writes keep their order).
    fn read<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.check_fork();
        let backend = self.backend.load_full();
        let mut slot = lock(&backend.slot);
        if let Some(e) = self.reconnecting(&slot) {
            return Err(e);
        }
        self.attempt(&mut slot, |st| {
            self.flush_locked(st, false)?;
            f(st)
        })
    }

    /// During an outage a pipeline's own call never opens a connection (that can take
    /// the whole connect timeout): it is answered at once, and the writer thread
    /// reconnects without holding the store lock (`reconnect_in_background`).
    fn reconnecting(&self, slot: &Slot) -> Option<Error> {
        let why = slot.last_error.as_deref()?;
        slot.store.is_none().then(|| {
            Error::storage(
                self.config.location.backend(),
                format!("{why} (reconnecting in the background)"),
            )
        })
    }

    /// The writer thread's reconnection during an outage, once the backoff allows:
    /// the connection is opened without the store lock, so that pipeline calls and
    /// `health()` meanwhile get their answer at once, then installed; the next
    /// `attempt` replays what waited.
    fn reconnect_in_background(&self, backend: &Backend) {
        let due = {
            let slot = lock(&backend.slot);
            slot.store.is_none()
                && slot.last_error.is_some()
                && slot.retry_at.is_none_or(|at| Instant::now() >= at)
        };
        if !due {
            return;
        }
        let opened = store::open(&self.config);
        let mut slot = lock(&backend.slot);
        match opened {
            Ok(st) if slot.store.is_none() => slot.store = Some(st),
            Ok(_) => {}
            Err(e) if e.is_transient() => {
                self.outage(&mut slot, e);
            }
            // A refusal (permissions, a newer schema) is reported by the flush that
            // follows, which opens again on its own.
            Err(_) => {}
        }
    }

    /// A transition, durable when this returns. While the database is unreachable the
    /// operation is queued instead (after this process's pending progress, to keep the
    /// order) and `queued()` gives the value to return. The flag says whether it was queued.
    fn transition<T>(
        &self,
        op: Op,
        direct: impl FnOnce(&mut dyn Store) -> Result<T>,
        queued: impl FnOnce() -> T,
    ) -> Result<(T, bool)> {
        self.check_fork();
        let backend = self.backend.load_full();
        let mut slot = lock(&backend.slot);
        let result = match self.reconnecting(&slot) {
            Some(e) => Err(e),
            None => self.attempt(&mut slot, |st| {
                self.flush_locked(st, false)?;
                direct(st)
            }),
        };
        match result {
            Ok(v) => {
                self.transitions.fetch_add(1, Ordering::Relaxed);
                Ok((v, false))
            }
            Err(e) if e.is_transient() => {
                // Progress made before this transition is stored as of its time.
                self.queue_progress(&mut slot, op.at());
                slot.outbox.push(op);
                Ok((queued(), true))
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every run's pending progress into the outbox as one batch.
    fn queue_progress(&self, slot: &mut Slot, at: DateTime<Utc>) {
        let mut updates = std::mem::take(&mut *lock(&self.backend.load().orphans));
        for run in self.runs.load().iter().filter_map(Weak::upgrade) {
            run.cells.take_all(&run.run_id, &mut updates);
        }
        if !updates.is_empty() {
            slot.outbox.push(Op::Progress {
                updates,
                at,
                batch_id: Some(self.backend.load().next_batch_id()),
            });
        }
    }

    /// Writes pending progress now; while the database is unreachable, moves it (and
    /// the queued transitions) to the spool file so that it survives this process.
    fn flush_or_spool(&self) -> Result<()> {
        self.check_fork();
        let backend = self.backend.load_full();
        let mut slot = lock(&backend.slot);
        // An explicit flush tries the database now, whatever the backoff says.
        slot.retry_at = None;
        match self.attempt(&mut slot, |st| self.flush_locked(st, false)) {
            Err(e) if e.is_transient() => {
                self.queue_progress(&mut slot, Utc::now());
                slot.outbox.spill().map_err(|io| {
                    Error::storage("spool", format!("cannot keep writes for later ({io}) while the database is unreachable: {e}"))
                })
            }
            other => other,
        }
    }

    fn handle(&self, run_id: Arc<str>, stage: &str, task: &str, status: Status) -> RunHandle {
        let me = self
            .me
            .get()
            .and_then(Weak::upgrade)
            .expect("a tracker in use is alive");
        let shared = Arc::new(RunShared {
            run_id,
            stage: stage.to_string(),
            task: task.to_string(),
            tracker: me,
            cells: RunCells::new(),
            status: AtomicI32::new(status as i32),
            max_subtask: AtomicU32::new(0),
        });
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
        RunHandle { shared }
    }

    /// Writes all pending progress (and heartbeats when asked) in one transaction.
    /// When the database is unreachable the batch may still have been committed, so it
    /// is kept whole for the outbox (`in_doubt`); when it was refused, its progress is
    /// put back to be written by a later flush.
    fn flush_locked(&self, st: &mut dyn Store, heartbeat: bool) -> Result<()> {
        let backend = self.backend.load();
        // Orphans first: they are older than anything a live handle holds.
        let mut batch: Vec<ProgressUpdate> = std::mem::take(&mut *lock(&backend.orphans));
        let orphaned = batch.len();
        let mut owners: Vec<(usize, Arc<RunShared>)> = Vec::new();
        for run in self.runs.load().iter().filter_map(Weak::upgrade) {
            let before = batch.len();
            run.cells.take_all(&run.run_id, &mut batch);
            if batch.len() > before {
                owners.push((batch.len(), run));
            }
        }
        let beats: Vec<Arc<str>> = if heartbeat {
            lock(&backend.owned).clone()
        } else {
            Vec::new()
        };
        let wrote = !batch.is_empty() || !beats.is_empty();
        let now = Utc::now();
        let batch_id = (!batch.is_empty()).then(|| backend.next_batch_id());
        let result = st.apply_progress_once(&batch, &beats, now, batch_id.as_ref());
        match &result {
            Ok(()) if wrote => {
                self.progress_commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) if e.is_transient() && batch_id.is_some() => {
                lock(&backend.in_doubt).push(Op::Progress {
                    updates: batch,
                    at: now,
                    batch_id,
                });
            }
            Err(_) => {
                let mut updates = batch.into_iter();
                let old: Vec<ProgressUpdate> = updates.by_ref().take(orphaned).collect();
                let mut orphans = lock(&backend.orphans);
                let newer = std::mem::replace(&mut *orphans, old);
                orphans.extend(newer);
                drop(orphans);
                let mut done = orphaned;
                for (end, run) in owners {
                    for u in updates.by_ref().take(end - done) {
                        run.cells.restore(u);
                    }
                    done = end;
                }
            }
        }
        result
    }

    pub(crate) fn flush_in_background(&self, heartbeat: bool) -> Result<()> {
        // A writer left over in a forked child belongs to the parent: do nothing.
        let backend = self.backend.load_full();
        if backend.generation != fork_generation() {
            return Ok(());
        }
        self.reconnect_in_background(&backend);
        let mut slot = lock(&backend.slot);
        self.attempt(&mut slot, |st| self.flush_locked(st, heartbeat))
    }

    fn forget_owned(&self, run_id: &str) {
        lock(&self.backend.load().owned).retain(|r| &**r != run_id);
    }

    fn notify(&self, event: &TransitionEvent) {
        for (_, f) in self.listeners.load().iter() {
            let f = Arc::clone(f);
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event))).is_err() {
                log::error!("tasker: a transition listener panicked; tracking goes on");
            }
        }
    }
}

impl Drop for TrackerInner {
    fn drop(&mut self) {
        if self.generation.load(Ordering::Relaxed) != fork_generation() {
            return; // a forked child's copy of the parent's tracker: leave it alone
        }
        if let Err(e) = self.flush_or_spool() {
            log::warn!("tasker: progress not written at close: {e}");
        }
        let writer = lock(&self.backend.load().writer).take();
        if let Some(w) = writer {
            w.stop();
        }
    }
}

/// Flushes every tracker of this process (for exit hooks of bindings); while a
/// database is unreachable its writes go to the spool file.
pub fn flush_all() {
    let trackers: Vec<Arc<TrackerInner>> =
        lock(&TRACKERS).iter().filter_map(Weak::upgrade).collect();
    for t in trackers {
        if let Err(e) = t.flush_or_spool() {
            log::warn!("tasker: progress not written at exit: {e}");
        }
    }
}

pub(crate) struct RunShared {
    run_id: Arc<str>,
    stage: String,
    task: String,
    tracker: Arc<TrackerInner>,
    cells: RunCells,
    /// Last status known to this process (the old status of a queued transition).
    status: AtomicI32,
    /// Highest subtask number seen here (numbers allocated during an outage).
    max_subtask: AtomicU32,
}

impl Drop for RunShared {
    /// Progress still pending when the last handle of a run goes (a C program's
    /// `tasker_run_free`, a handle out of scope) is kept for the next flush.
    fn drop(&mut self) {
        let backend = self.tracker.backend.load();
        if backend.generation != fork_generation() {
            return; // a forked child's copy: what is pending is the parent's to write
        }
        let mut pending = Vec::new();
        self.cells.take_all(&self.run_id, &mut pending);
        if !pending.is_empty() {
            lock(&backend.orphans).extend(pending);
        }
    }
}

impl RunShared {
    fn last_status(&self) -> Status {
        Status::from_code(self.status.load(Ordering::Relaxed)).unwrap_or(Status::Running)
    }

    fn notify(&self, subtask: Option<u32>, old: Status, new: Status, message: Option<String>) {
        if self.tracker.listeners.load().is_empty() {
            return;
        }
        self.tracker.notify(&TransitionEvent {
            run_id: self.run_id.to_string(),
            stage_name: self.stage.clone(),
            task_name: self.task.clone(),
            subtask_number: subtask,
            old_status: old,
            new_status: new,
            message,
        });
    }

    /// Slow path of a progress call for a subtask this process has not touched yet:
    /// check once that it exists, then keep a cell for it.
    #[cold]
    fn attach_subtask(&self, number: u32) -> Result<()> {
        let exists = match self
            .tracker
            .read(|st| st.subtask_state(&self.run_id, number))
        {
            Ok(state) => state.is_some(),
            // Unreachable database: take the number on trust; the count is kept.
            Err(e) if e.is_transient() => true,
            Err(e) => return Err(e),
        };
        if !exists {
            return Err(Error::not_found(
                "subtask",
                format!(
                    "{number} of run {} (start it with subtask_start first)",
                    self.run_id
                ),
            ));
        }
        self.cells.insert(number);
        Ok(())
    }
}

/// One run. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct RunHandle {
    shared: Arc<RunShared>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &&*self.shared.run_id)
            .finish()
    }
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    pub fn stage(&self) -> &str {
        &self.shared.stage
    }

    pub fn task(&self) -> &str {
        &self.shared.task
    }

    pub fn tracker(&self) -> Tracker {
        Tracker {
            inner: Arc::clone(&self.shared.tracker),
        }
    }

    /// Starts a subtask; returns its number.
    pub fn subtask_start(&self, name: &str, options: SubtaskOptions) -> Result<u32> {
        check_name("subtask name", name)?;
        if let Some(m) = &options.message {
            check_text("message", m)?;
        }
        if options.number == Some(0) {
            return Err(Error::invalid("subtask_number", 0u32, "numbers start at 1"));
        }
        if let Some(t) = options.items_total {
            if t > i64::MAX as u64 {
                return Err(Error::invalid("items_total", t, "is too large"));
            }
        }
        let s = &*self.shared;
        let now = Utc::now();
        // If the database is away, the number is allocated here: the next after the
        // highest this process has seen.
        let mut queued_options = options.clone();
        let local = options
            .number
            .unwrap_or_else(|| s.max_subtask.load(Ordering::Relaxed) + 1);
        queued_options.number = Some(local);
        let op = Op::SubtaskStart {
            run_id: s.run_id.to_string(),
            name: name.to_string(),
            options: queued_options,
            at: now,
        };
        let (number, _) = s.tracker.transition(
            op,
            |st| st.subtask_start(&s.run_id, name, &options, now),
            || local,
        )?;
        s.max_subtask.fetch_max(number, Ordering::Relaxed);
        if s.status.load(Ordering::Relaxed) == Status::Started as i32 {
            s.status.store(Status::Running as i32, Ordering::Relaxed);
        }
        if options.restart {
            s.cells.clear(number);
        }
        s.cells.insert(number);
        s.notify(
            Some(number),
            Status::NotStarted,
            Status::Started,
            Some(name.to_string()),
        );
        Ok(number)
    }

    /// Adds `n` items to a subtask's count. Memory only; the writer stores it.
    #[inline]
    pub fn subtask_increment(&self, number: u32, n: u64) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if n == 0 || n > i64::MAX as u64 {
            return Err(Error::invalid("increment", n, "must be at least 1"));
        }
        if s.cells.with(number, |c| c.increment(n)).is_some() {
            return Ok(());
        }
        s.attach_subtask(number)?;
        s.cells.with(number, |c| c.increment(n));
        Ok(())
    }

    /// Sets a subtask's progress (absolute items, total, percent, message). Memory
    /// only; never changes the status except STARTED -> RUNNING when stored.
    pub fn subtask_update(&self, number: u32, p: &SubtaskProgress) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if let Some(pct) = p.percent {
            check_percent("percent", pct)?;
        }
        for (what, v) in [
            ("items_complete", p.items_complete),
            ("items_total", p.items_total),
        ] {
            if let Some(v) = v {
                if v > i64::MAX as u64 {
                    return Err(Error::invalid(what, v, "is too large"));
                }
            }
        }
        if let Some(m) = &p.message {
            check_text("message", m)?;
        }
        let apply = |c: &crate::progress::Cell| {
            if let Some(v) = p.items_complete {
                c.set_items(v);
            }
            if let Some(v) = p.items_total {
                c.set_items_total(v);
            }
            if let Some(v) = p.percent {
                c.set_percent(v);
            }
            if let Some(m) = &p.message {
                c.set_message(m.clone());
            }
        };
        if s.cells.with(number, apply).is_some() {
            return Ok(());
        }
        s.attach_subtask(number)?;
        s.cells.with(number, apply);
        Ok(())
    }

    /// Sets run-level progress; never changes the status. Memory only.
    pub fn update(&self, p: &RunProgress) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if let Some(pct) = p.overall_percent {
            check_percent("overall_percent", pct)?;
        }
        if p.current_subtask == Some(0) {
            return Err(Error::invalid(
                "current_subtask",
                0u32,
                "numbers start at 1",
            ));
        }
        if let Some(m) = &p.message {
            check_text("message", m)?;
        }
        let cell = s.cells.run.load();
        if let Some(n) = p.current_subtask {
            cell.set_current_subtask(n);
        }
        if let Some(v) = p.overall_percent {
            cell.set_percent(v);
        }
        if let Some(m) = &p.message {
            cell.set_message(m.clone());
        }
        Ok(())
    }

    /// Moves a subtask to `to` (checked against its stored status). Durable on return.
    pub fn subtask_set_status(
        &self,
        number: u32,
        to: Status,
        info: TransitionInfo,
    ) -> Result<Status> {
        info.validate()?;
        let s = &*self.shared;
        let now = Utc::now();
        let op = Op::SubtaskTransition {
            run_id: s.run_id.to_string(),
            number,
            to,
            info: info.clone(),
            at: now,
        };
        let (old, _) = s.tracker.transition(
            op,
            |st| st.subtask_transition(&s.run_id, number, to, &info, now),
            || Status::Running,
        )?;
        if to.is_terminal() {
            s.cells.remove(number);
        }
        s.notify(Some(number), old, to, info.error_message.or(info.message));
        Ok(old)
    }

    pub fn subtask_complete(&self, number: u32, message: Option<&str>) -> Result<()> {
        self.subtask_set_status(number, Status::Completed, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn subtask_fail(
        &self,
        number: u32,
        error_message: &str,
        error_detail: Option<&str>,
    ) -> Result<()> {
        self.subtask_set_status(
            number,
            Status::Failed,
            TransitionInfo::error(error_message, error_detail),
        )
        .map(drop)
    }

    pub fn subtask_skip(&self, number: u32, message: Option<&str>) -> Result<()> {
        self.subtask_set_status(number, Status::Skipped, TransitionInfo::message(message))
            .map(drop)
    }

    /// Moves the run to `to` (checked against its stored status). A terminal status
    /// also closes the run's open subtasks. Durable on return.
    pub fn set_status(&self, to: Status, info: TransitionInfo) -> Result<Status> {
        info.validate()?;
        let s = &*self.shared;
        let now = Utc::now();
        let op = Op::RunTransition {
            run_id: s.run_id.to_string(),
            to,
            info: info.clone(),
            at: now,
        };
        let (old, _) = s.tracker.transition(
            op,
            |st| st.run_transition(&s.run_id, to, &info, now),
            || s.last_status(),
        )?;
        s.status.store(to as i32, Ordering::Relaxed);
        if to.is_terminal() {
            s.tracker.forget_owned(&s.run_id);
            s.cells.remove_all();
        }
        s.notify(None, old, to, info.error_message.or(info.message));
        Ok(old)
    }

    pub fn complete(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Completed, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn fail(&self, error_message: &str, error_detail: Option<&str>) -> Result<()> {
        self.set_status(
            Status::Failed,
            TransitionInfo::error(error_message, error_detail),
        )
        .map(drop)
    }

    pub fn cancel(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Cancelled, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn skip(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Skipped, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn pause(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Paused, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn resume(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Running, TransitionInfo::message(message))
            .map(drop)
    }
}
