//! The handles users hold: a [`Tracker`] (an open database) and a [`RunHandle`]
//! (one run). Progress calls on a run touch only in-memory atomics; transitions
//! flush this process's pending progress and commit before they return.
//!
//! Fork safety: every call first compares the process's fork generation (bumped
//! by a `pthread_atfork` child hook) with the tracker's. A forked child drops
//! the progress it inherited (the parent writes that), never touches the
//! parent's connection or threads, and opens its own on first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use arc_swap::ArcSwap;
use chrono::Utc;
use serde::Serialize;

use crate::config::{Config, ConfigArgs};
use crate::error::{Error, Result};
use crate::ffi::os::{fork_generation, install_fork_hook};
use crate::model::{
    check_name, check_percent, check_text, RunOptions, RunProgress, Status, SubtaskOptions,
    SubtaskProgress, TaskSpec, TransitionInfo,
};
use crate::process::ProcessFacts;
use crate::progress::RunCells;
use crate::query::{
    EventRow, HistoryFilter, LostRule, RunRow, StageRow, StatusFilter, SubtaskRow, TaskRow,
};
use crate::store::{self, NewRun, ProgressUpdate, RunSelector, Store};
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

/// The per-process side of a tracker: a connection and a writer thread.
/// A forked child builds a new one and leaks the parent's.
struct Backend {
    generation: u64,
    store: Mutex<Option<Box<dyn Store>>>,
    writer: Mutex<Option<Writer>>,
    /// Runs started by this process: the writer keeps their heartbeat fresh.
    owned: Mutex<Vec<Arc<str>>>,
    /// Set while the database is failing, so an outage warns once.
    failing: std::sync::atomic::AtomicBool,
}

impl Backend {
    fn new(generation: u64, store: Option<Box<dyn Store>>) -> Backend {
        Backend {
            generation,
            store: Mutex::new(store),
            writer: Mutex::new(None),
            owned: Mutex::new(Vec::new()),
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }
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
        let store = store::open(&config)?;
        let generation = fork_generation();
        let this_host = config
            .hostname
            .clone()
            .unwrap_or_else(crate::process::hostname);
        let inner = Arc::new(TrackerInner {
            config,
            this_host,
            generation: AtomicU64::new(generation),
            backend: ArcSwap::from_pointee(Backend::new(generation, Some(store))),
            runs: ArcSwap::from_pointee(Vec::new()),
            listeners: ArcSwap::from_pointee(Vec::new()),
            next_listener: AtomicU64::new(1),
            fork_lock: Mutex::new(()),
            me: OnceLock::new(),
            progress_commits: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
        });
        let _ = inner.me.set(Arc::downgrade(&inner));
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
        self.inner
            .with_store(|st| st.register_tasks(specs, Utc::now()))
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
        self.inner.transition(|st| st.start_run(&run))?;
        let run_id: Arc<str> = Arc::from(run.run_id.as_str());
        lock(&self.inner.backend.load().owned).push(Arc::clone(&run_id));
        let handle = self.inner.handle(run_id, stage, task);
        handle
            .shared
            .notify(None, Status::NotStarted, Status::Started, message);
        Ok(handle)
    }

    /// A handle on an existing run (for example in a worker process).
    pub fn attach_run(&self, run_id: &str) -> Result<RunHandle> {
        let row = self.run(run_id)?;
        Ok(self
            .inner
            .handle(Arc::from(run_id), &row.stage_name, &row.task_name))
    }

    /// Makes all pending progress of this process durable now.
    pub fn flush(&self) -> Result<()> {
        self.inner
            .with_store(|st| self.inner.flush_locked(st, false))
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
        self.inner.after_flush(f)
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
        let fresh = Arc::new(Backend::new(g, None));
        self.spawn_writer(&fresh);
        // The parent's connection and writer belong to the parent: never close or join
        // them here (closing a SQLite connection after fork can corrupt its locks).
        std::mem::forget(self.backend.swap(fresh));
        self.generation.store(g, Ordering::Release);
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.check_fork();
        let backend = self.backend.load_full();
        let mut guard = lock(&backend.store);
        if guard.is_none() {
            *guard = Some(store::open(&self.config)?);
        }
        let st = guard.as_deref_mut().expect("opened above");
        f(st)
    }

    /// Flushes this process's pending progress (so writes keep their order), then runs `f`.
    fn after_flush<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        self.with_store(|st| {
            self.flush_locked(st, false)?;
            f(st)
        })
    }

    /// A transition: durable when this returns.
    fn transition<T>(&self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        let out = self.after_flush(f)?;
        self.transitions.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    fn handle(&self, run_id: Arc<str>, stage: &str, task: &str) -> RunHandle {
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
    /// On failure the progress is put back, to be written by a later flush.
    fn flush_locked(&self, st: &mut dyn Store, heartbeat: bool) -> Result<()> {
        let mut batch: Vec<ProgressUpdate> = Vec::new();
        let mut owners: Vec<(usize, Arc<RunShared>)> = Vec::new();
        for run in self.runs.load().iter().filter_map(Weak::upgrade) {
            let before = batch.len();
            run.cells.take_all(&run.run_id, &mut batch);
            if batch.len() > before {
                owners.push((batch.len(), run));
            }
        }
        let backend = self.backend.load();
        let beats: Vec<Arc<str>> = if heartbeat {
            lock(&backend.owned).clone()
        } else {
            Vec::new()
        };
        let wrote = !batch.is_empty() || !beats.is_empty();
        match st.apply_progress(&batch, &beats, Utc::now()) {
            Ok(()) => {
                if wrote {
                    self.progress_commits.fetch_add(1, Ordering::Relaxed);
                }
                if backend.failing.swap(false, Ordering::Relaxed) {
                    log::warn!(
                        "tasker: {} is reachable again; pending progress written",
                        self.config.location.describe()
                    );
                }
                Ok(())
            }
            Err(e) => {
                let mut updates = batch.into_iter();
                let mut done = 0;
                for (end, run) in owners {
                    for u in updates.by_ref().take(end - done) {
                        run.cells.restore(u);
                    }
                    done = end;
                }
                if !backend.failing.swap(true, Ordering::Relaxed) {
                    log::warn!("tasker: could not write progress ({e}); it is kept and retried");
                }
                Err(e)
            }
        }
    }

    pub(crate) fn flush_in_background(&self, heartbeat: bool) -> Result<()> {
        // A writer left over in a forked child belongs to the parent: do nothing.
        if self.backend.load().generation != fork_generation() {
            return Ok(());
        }
        self.with_store(|st| self.flush_locked(st, heartbeat))
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
        let backend = self.backend.load_full();
        if let Some(st) = lock(&backend.store).as_deref_mut() {
            if let Err(e) = self.flush_locked(st, false) {
                log::warn!("tasker: progress not written at close: {e}");
            }
        }
        let writer = lock(&backend.writer).take();
        if let Some(w) = writer {
            w.stop();
        }
    }
}

/// Flushes every tracker of this process (for exit hooks of bindings).
pub fn flush_all() {
    let trackers: Vec<Arc<TrackerInner>> =
        lock(&TRACKERS).iter().filter_map(Weak::upgrade).collect();
    for t in trackers {
        if let Err(e) = t.with_store(|st| t.flush_locked(st, false)) {
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
}

impl RunShared {
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
        let exists = self
            .tracker
            .with_store(|st| st.subtask_state(&self.run_id, number))?;
        if exists.is_none() {
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
        let number = s
            .tracker
            .transition(|st| st.subtask_start(&s.run_id, name, &options, Utc::now()))?;
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
        let old = s
            .tracker
            .transition(|st| st.subtask_transition(&s.run_id, number, to, &info, Utc::now()))?;
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
        let old = s
            .tracker
            .transition(|st| st.run_transition(&s.run_id, to, &info, Utc::now()))?;
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
