//! The native module `tasker._tasker`: a thin skin over the core. The public,
//! idiomatic API (context managers, records, the functional API) lives in the
//! pure-Python package `tasker`, which subclasses `Run` and `Subtask` from here.
//!
//! Rules kept here:
//! - progress calls (`Subtask.increment`, `update`) only touch the core's in-memory
//!   cells and keep the GIL (releasing it would cost more than the call);
//! - every call that may block on the database (open, transitions, flushes,
//!   queries) releases the GIL with `py.detach`;
//! - listeners (Python callables) run on the thread that made the transition and
//!   take the GIL themselves; the core never holds its store lock while calling them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tasker::config::{DbSettings, Location, Secret, TrackingSettings};
use tasker::{
    Config, ConfigArgs, Direction, HistoryFilter, IoRecord, RunHandle, RunOptions, RunProgress,
    RunSelector, StatsFilter, StatusFilter, SubtaskOptions, SubtaskProgress, TaskSpec,
    TransitionInfo,
};

#[cfg(feature = "server")]
mod cli;
mod convert;
mod errors;
mod logs;
#[cfg(feature = "server")]
mod serve;

use convert::{count_arg, limit_arg, number_arg, opt_text, status_arg, Text};
use errors::{argument_error, OrRaise};

// ---------------------------------------------------------------------------
// Core log messages (database trouble) are queued here and handed to Python's
// `logging` by the facade: a writer thread must never wait for the GIL.

static LOG_QUEUE: Mutex<VecDeque<(u8, String)>> = Mutex::new(VecDeque::new());
const LOG_QUEUE_MAX: usize = 1000;

struct QueueLogger;

impl log::Log for QueueLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => 40,
            _ => 30,
        };
        let mut q = LOG_QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= LOG_QUEUE_MAX {
            q.pop_front();
        }
        q.push_back((level, r.args().to_string()));
    }
    fn flush(&self) {}
}

static LOGGER: QueueLogger = QueueLogger;

/// Takes the queued core log messages as `(level, message)` pairs (logging levels).
#[pyfunction]
fn _drain_log() -> Vec<(u8, String)> {
    let mut q = LOG_QUEUE.lock().unwrap_or_else(|p| p.into_inner());
    q.drain(..).collect()
}

// ---------------------------------------------------------------------------

/// What reopens the same database in another process: (backend, path or
/// connection string, schema, flush ms, heartbeat ms, lost-after ms, busy ms,
/// hostname, source). It holds the password of a PostgreSQL connection string.
type State = (
    String,
    String,
    Option<String>,
    u64,
    u64,
    u64,
    u64,
    Option<String>,
    String,
);

fn config_state(c: &Config) -> State {
    let ms = |d: Duration| d.as_millis() as u64;
    let (backend, loc, schema) = match &c.location {
        Location::Sqlite { path } => ("sqlite", path.display().to_string(), None),
        Location::Postgres { conninfo, schema } => (
            "postgresql",
            conninfo.expose().to_string(),
            Some(schema.clone()),
        ),
    };
    (
        backend.to_string(),
        loc,
        schema,
        ms(c.flush_interval),
        ms(c.heartbeat_interval),
        ms(c.lost_after),
        ms(c.busy_timeout),
        c.hostname.clone(),
        c.source.clone(),
    )
}

fn state_config(s: State) -> PyResult<Config> {
    let (backend, loc, schema, flush, beat, lost, busy, hostname, source) = s;
    let location = match backend.as_str() {
        "sqlite" => Location::Sqlite {
            path: PathBuf::from(loc),
        },
        "postgresql" => Location::Postgres {
            conninfo: Secret::new(loc),
            schema: schema.unwrap_or_else(|| "tasker".into()),
        },
        other => {
            return Err(argument_error(format!(
                "invalid backend {other:?}: must be sqlite or postgresql"
            )))
        }
    };
    let mut c = Config::sqlite(PathBuf::new());
    c.location = location;
    c.flush_interval = Duration::from_millis(flush.max(1));
    c.heartbeat_interval = Duration::from_millis(beat.max(1));
    c.lost_after = Duration::from_millis(lost.max(1));
    c.busy_timeout = Duration::from_millis(busy);
    c.hostname = hostname;
    c.source = source;
    Ok(c)
}

/// An open tracking database (the native half of `tasker.Tracker`).
#[pyclass(frozen, weakref, module = "tasker._tasker", name = "NativeTracker")]
struct NativeTracker {
    inner: tasker::Tracker,
}

fn open(py: Python<'_>, mut config: Config) -> PyResult<NativeTracker> {
    // A relative SQLite path is fixed now, so a later chdir or another process
    // (which gets this location by pickling) opens the same file.
    if let Location::Sqlite { path } = &mut config.location {
        if path.is_relative() {
            if let Ok(cwd) = std::env::current_dir() {
                *path = cwd.join(&*path);
            }
        }
    }
    let inner = io(py, || tasker::Tracker::open(config)).or_raise()?;
    Ok(NativeTracker { inner })
}

#[pymethods]
impl NativeTracker {
    /// Resolves the configuration (arguments > TASKER_* > .tasker.yml > default) and opens it.
    #[staticmethod]
    #[pyo3(signature = (url=None, *, config_file=None, start_dir=None, driver=None, path=None,
        host=None, port=None, dbname=None, user=None, password=None, schema=None, sslmode=None,
        sslrootcert=None, flush_interval_ms=None, heartbeat_interval_s=None, lost_after_s=None,
        busy_timeout_ms=None, hostname=None, idle_disconnect_s=None, sample_interval_s=None,
        max_log_lines=None))]
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the keyword arguments of connect()"
    )]
    fn connect(
        py: Python<'_>,
        url: Option<Text>,
        config_file: Option<PathBuf>,
        start_dir: Option<PathBuf>,
        driver: Option<Text>,
        path: Option<Text>,
        host: Option<Text>,
        port: Option<u16>,
        dbname: Option<Text>,
        user: Option<Text>,
        password: Option<Text>,
        schema: Option<Text>,
        sslmode: Option<Text>,
        sslrootcert: Option<Text>,
        flush_interval_ms: Option<u64>,
        heartbeat_interval_s: Option<u64>,
        lost_after_s: Option<u64>,
        busy_timeout_ms: Option<u64>,
        hostname: Option<Text>,
        idle_disconnect_s: Option<u64>,
        sample_interval_s: Option<u64>,
        max_log_lines: Option<u64>,
    ) -> PyResult<NativeTracker> {
        let args = ConfigArgs {
            db: DbSettings {
                url: url.map(|u| Secret::new(u.0)),
                driver: opt_text(driver),
                path: opt_text(path),
                host: opt_text(host),
                port,
                dbname: opt_text(dbname),
                user: opt_text(user),
                password: password.map(|p| Secret::new(p.0)),
                schema: opt_text(schema),
                sslmode: opt_text(sslmode),
                sslrootcert: opt_text(sslrootcert),
            },
            tracking: TrackingSettings {
                flush_interval_ms,
                heartbeat_interval_s,
                lost_after_s,
                busy_timeout_ms,
                hostname: opt_text(hostname),
                idle_disconnect_s,
                sample_interval_s,
                max_log_lines,
            },
            config_file,
            start_dir,
            ..ConfigArgs::default()
        };
        let config = io(py, || Config::resolve(&args)).or_raise()?;
        open(py, config)
    }

    /// Reopens a database from `state()` (used when a handle is unpickled).
    #[staticmethod]
    fn from_state(py: Python<'_>, state: State) -> PyResult<NativeTracker> {
        open(py, state_config(state)?)
    }

    fn state(&self) -> State {
        config_state(self.inner.config())
    }

    /// Where the database is, without any password.
    #[getter]
    fn location(&self) -> String {
        self.inner.config().location.describe()
    }

    #[getter]
    fn backend(&self) -> &'static str {
        self.inner.backend_name()
    }

    #[getter]
    fn source(&self) -> String {
        self.inner.config().source.clone()
    }

    #[getter]
    fn hostname(&self) -> String {
        self.inner.hostname().to_string()
    }

    /// Registers tasks given as dicts (stage, name, type, description, stage_order,
    /// task_order, script_path, script_filename, log_path, log_filename) in one transaction.
    fn register_tasks(&self, py: Python<'_>, specs: &Bound<'_, PyList>) -> PyResult<Vec<i64>> {
        let mut out = Vec::with_capacity(specs.len());
        for item in specs.iter() {
            let d = item.cast::<PyDict>().map_err(PyErr::from)?;
            out.push(task_spec(d)?);
        }
        io(py, || self.inner.register_tasks(&out)).or_raise()
    }

    #[pyo3(signature = (stage, task, *, total_subtasks=None, message=None, version=None,
        git_commit=None, script_path=None, script_filename=None, log_path=None,
        log_filename=None, metadata_json=None, attempt=None, retry=false))]
    #[allow(clippy::too_many_arguments, reason = "the fields of RunOptions")]
    fn task_start(
        &self,
        py: Python<'_>,
        stage: Text,
        task: Text,
        total_subtasks: Option<&Bound<'_, PyAny>>,
        message: Option<Text>,
        version: Option<Text>,
        git_commit: Option<Text>,
        script_path: Option<Text>,
        script_filename: Option<Text>,
        log_path: Option<Text>,
        log_filename: Option<Text>,
        metadata_json: Option<Text>,
        attempt: Option<&Bound<'_, PyAny>>,
        retry: bool,
    ) -> PyResult<RunCore> {
        let metadata = match metadata_json {
            Some(j) => Some(
                serde_json::from_str::<serde_json::Value>(&j.0)
                    .map_err(|e| argument_error(format!("invalid metadata {:?}: {e}", j.0)))?,
            ),
            None => None,
        };
        let options = RunOptions {
            total_subtasks: count_arg(total_subtasks, "total_subtasks")?.map(|v| v as i64),
            message: opt_text(message),
            version: opt_text(version),
            git_commit: opt_text(git_commit),
            script_path: opt_text(script_path),
            script_filename: opt_text(script_filename),
            log_path: opt_text(log_path),
            log_filename: opt_text(log_filename),
            metadata,
            runtime: Some(python_runtime(py)),
            attempt: number_arg(attempt, "attempt")?,
            retry,
            ..RunOptions::default()
        };
        let handle = io(py, || self.inner.task_start(&stage.0, &task.0, options)).or_raise()?;
        Ok(RunCore {
            handle: std::sync::Arc::new(Handle(handle)),
        })
    }

    /// A handle on an existing run (for example one started by another process).
    fn attach_run(&self, py: Python<'_>, run_id: Text) -> PyResult<RunCore> {
        let handle = io(py, || self.inner.attach_run(&run_id.0)).or_raise()?;
        Ok(RunCore {
            handle: std::sync::Arc::new(Handle(handle)),
        })
    }

    /// Makes this process's pending progress durable now.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        io(py, || self.inner.flush()).or_raise()
    }

    /// Flushes and stops the writer thread (reopened on demand).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        io(py, || self.inner.close()).or_raise()
    }

    /// Calls `callback(event_dict)` with every event this tracker's writes store
    /// (the dict of `events`).
    fn add_listener(&self, callback: Py<PyAny>) -> u64 {
        let f = move |ev: &tasker::EventRow| {
            Python::attach(|py| {
                let result = convert::event_row(py, ev)
                    .and_then(|d| callback.bind(py).call1((d,)).map(drop));
                if let Err(e) = result {
                    e.write_unraisable(py, None);
                }
            })
        };
        self.inner.add_listener(std::sync::Arc::new(f))
    }

    fn remove_listener(&self, id: u64) {
        self.inner.remove_listener(id)
    }

    /// (progress commits, transitions) made by this tracker in this process.
    fn stats(&self) -> (u64, u64) {
        let s = self.inner.stats();
        (s.progress_commits, s.transitions)
    }

    #[pyo3(signature = (stage=None, task=None, status=None, limit=None))]
    fn task_status<'py>(
        &self,
        py: Python<'py>,
        stage: Option<Text>,
        task: Option<Text>,
        status: Option<Text>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let filter = StatusFilter {
            stage: opt_text(stage),
            task: opt_text(task),
            status: status.map(|s| status_arg(&s.0)).transpose()?,
            limit: limit_arg(limit)?,
        };
        let rows = io(py, || self.inner.task_status(&filter)).or_raise()?;
        rows.iter().map(|r| convert::run_row(py, r)).collect()
    }

    fn active_runs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.active_runs()).or_raise()?;
        rows.iter().map(|r| convert::run_row(py, r)).collect()
    }

    #[pyo3(signature = (stage=None, task=None, status=None, since_us=None, limit=None))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        stage: Option<Text>,
        task: Option<Text>,
        status: Option<Text>,
        since_us: Option<i64>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let since = since_us.map(time_arg).transpose()?;
        let filter = HistoryFilter {
            stage: opt_text(stage),
            task: opt_text(task),
            status: status.map(|s| status_arg(&s.0)).transpose()?,
            since,
            limit: limit_arg(limit)?,
            ..HistoryFilter::default()
        };
        let rows = io(py, || self.inner.history(&filter)).or_raise()?;
        rows.iter().map(|r| convert::run_row(py, r)).collect()
    }

    fn run<'py>(&self, py: Python<'py>, run_id: Text) -> PyResult<Bound<'py, PyDict>> {
        let row = io(py, || self.inner.run(&run_id.0)).or_raise()?;
        convert::run_row(py, &row)
    }

    fn subtasks<'py>(&self, py: Python<'py>, run_id: Text) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.subtasks(&run_id.0)).or_raise()?;
        rows.iter().map(|r| convert::subtask_row(py, r)).collect()
    }

    #[pyo3(signature = (stage=None, name=None))]
    fn registered_tasks<'py>(
        &self,
        py: Python<'py>,
        stage: Option<Text>,
        name: Option<Text>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || {
            self.inner.registered_tasks(
                stage.as_ref().map(|s| s.0.as_str()),
                name.as_ref().map(|s| s.0.as_str()),
            )
        })
        .or_raise()?;
        rows.iter().map(|r| convert::task_row(py, r)).collect()
    }

    fn stages<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.stages()).or_raise()?;
        rows.iter().map(|r| convert::stage_row(py, r)).collect()
    }

    /// Whether the database is reachable and how many writes wait for it (a dict
    /// with the fields of `tasker.Health`). Never waits for the database.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        convert::health(py, &self.inner.health())
    }

    /// Statistics per task over its stored runs (dicts with the fields of
    /// `tasker.TaskStatsRecord`), ordered by stage and task.
    #[pyo3(signature = (stage=None, task=None, since_us=None, limit=None))]
    fn task_stats<'py>(
        &self,
        py: Python<'py>,
        stage: Option<Text>,
        task: Option<Text>,
        since_us: Option<i64>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let filter = StatsFilter {
            stage: opt_text(stage),
            task: opt_text(task),
            since: since_us.map(time_arg).transpose()?,
            limit: limit_arg(limit)?,
        };
        let rows = io(py, || self.inner.task_stats(&filter)).or_raise()?;
        rows.iter().map(|r| convert::task_stats(py, r)).collect()
    }

    /// The pipeline graph with live state (`Tracker::dag`), as the core's JSON
    /// (the facade makes records of it and keeps it for `_render_dag`).
    fn dag_json(&self, py: Python<'_>) -> PyResult<String> {
        let dag = io(py, || self.inner.dag()).or_raise()?;
        serde_json::to_string(&dag).map_err(|e| argument_error(e.to_string()))
    }

    /// A run's resource samples, oldest first.
    fn samples<'py>(&self, py: Python<'py>, run_id: Text) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.samples(&run_id.0)).or_raise()?;
        rows.iter()
            .map(|r| convert::sample(py, &run_id.0, r))
            .collect()
    }

    /// A run's recorded inputs, then its outputs, each by name.
    fn run_io<'py>(&self, py: Python<'py>, run_id: Text) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.run_io(&run_id.0)).or_raise()?;
        rows.iter().map(|r| convert::io_row(py, r)).collect()
    }

    /// Deletes runs (with their subtasks and events) that match every filter
    /// given; returns how many. `finished_only` never deletes an active run.
    #[pyo3(signature = (*, stage=None, task=None, run_id=None, before_us=None, keep_failed=false,
        finished_only=false))]
    #[allow(clippy::too_many_arguments, reason = "the fields of RunSelector")]
    fn delete_runs(
        &self,
        py: Python<'_>,
        stage: Option<Text>,
        task: Option<Text>,
        run_id: Option<Text>,
        before_us: Option<i64>,
        keep_failed: bool,
        finished_only: bool,
    ) -> PyResult<usize> {
        let which = RunSelector {
            stage: opt_text(stage),
            task: opt_text(task),
            run_id: opt_text(run_id),
            before: before_us.map(time_arg).transpose()?,
            keep_failed,
            finished_only,
            ..RunSelector::default()
        };
        io(py, || self.inner.delete_runs(&which)).or_raise()
    }

    /// Deletes finished runs that ended before `cutoff_us` (as `tasker purge`):
    /// never an active one, FAILED ones kept with `keep_failed`. Returns (runs
    /// matching, runs deleted, old runs kept because they are active); with
    /// `dry_run` nothing is deleted.
    #[pyo3(signature = (cutoff_us, *, stage=None, task=None, keep_failed=false, dry_run=false))]
    fn purge(
        &self,
        py: Python<'_>,
        cutoff_us: i64,
        stage: Option<Text>,
        task: Option<Text>,
        keep_failed: bool,
        dry_run: bool,
    ) -> PyResult<(usize, usize, usize)> {
        let cutoff = time_arg(cutoff_us)?;
        let (stage, task) = (opt_text(stage), opt_text(task));
        io(py, || -> tasker::Result<(usize, usize, usize)> {
            let runs = self.inner.history(&HistoryFilter {
                stage: stage.clone(),
                task: task.clone(),
                limit: Some(usize::MAX),
                ..HistoryFilter::default()
            })?;
            let (mut matching, mut active) = (0, 0);
            for r in runs.iter().filter(|r| {
                r.end_time.or(r.start_time).is_some_and(|t| t < cutoff)
                    && !(keep_failed && r.status == tasker::Status::Failed)
            }) {
                if r.status.is_active() {
                    active += 1;
                } else {
                    matching += 1;
                }
            }
            let deleted = if dry_run || matching == 0 {
                0
            } else {
                self.inner.delete_runs(&RunSelector {
                    stage,
                    task,
                    before: Some(cutoff),
                    keep_failed,
                    finished_only: true,
                    ..RunSelector::default()
                })?
            };
            Ok((matching, deleted, active))
        })
        .or_raise()
    }

    #[pyo3(signature = (after=0, run_id=None, limit=None))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        after: i64,
        run_id: Option<Text>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let limit = limit_arg(limit)?.unwrap_or(1000);
        let rows = io(py, || {
            self.inner
                .events_after(after, run_id.as_ref().map(|r| r.0.as_str()), limit)
        })
        .or_raise()?;
        rows.iter().map(|r| convert::event_row(py, r)).collect()
    }

    /// A run's log lines, oldest first (dicts with the fields of `tasker.LogRecord`).
    #[pyo3(signature = (run_id, level=None, since_us=None, after=None, limit=None))]
    fn run_logs<'py>(
        &self,
        py: Python<'py>,
        run_id: Text,
        level: Option<&Bound<'py, PyAny>>,
        since_us: Option<i64>,
        after: Option<i64>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let filter = tasker::LogFilter {
            min_level: level
                .filter(|l| !l.is_none())
                .map(logs::level_arg)
                .transpose()?,
            since: since_us.map(time_arg).transpose()?,
            after_id: after,
            limit: limit_arg(limit)?,
        };
        let rows = io(py, || self.inner.run_logs(&run_id.0, &filter)).or_raise()?;
        rows.iter().map(|r| logs::log_row(py, r)).collect()
    }

    /// A run's kept item outcomes (dicts with the fields of `tasker.ItemOutcomeRecord`).
    #[pyo3(signature = (run_id, subtask=None, outcome=None, limit=None))]
    fn item_outcomes<'py>(
        &self,
        py: Python<'py>,
        run_id: Text,
        subtask: Option<&Bound<'py, PyAny>>,
        outcome: Option<Text>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let filter = tasker::OutcomeFilter {
            subtask: number_arg(subtask, "subtask_number")?,
            outcome: outcome.map(|o| o.0.parse()).transpose().or_raise()?,
            limit: limit_arg(limit)?,
        };
        let rows = io(py, || self.inner.item_outcomes(&run_id.0, &filter)).or_raise()?;
        rows.iter().map(|r| logs::outcome_row(py, r)).collect()
    }

    /// How many items of each subtask of a run failed or were skipped (exact).
    fn item_outcome_counts<'py>(
        &self,
        py: Python<'py>,
        run_id: Text,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let rows = io(py, || self.inner.item_outcome_counts(&run_id.0)).or_raise()?;
        rows.iter().map(|r| logs::outcome_count(py, r)).collect()
    }
}

/// A time given as microseconds since the epoch (the facade converts datetimes).
fn time_arg(us: i64) -> PyResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_micros(us).ok_or_else(|| {
        argument_error(format!(
            "invalid time {us} (microseconds since 1970): out of range"
        ))
    })
}

fn task_spec(d: &Bound<'_, PyDict>) -> PyResult<TaskSpec> {
    let text = |key: &str| -> PyResult<Option<String>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => Ok(Some(
                v.extract::<Text>()
                    .inspect_err(|e| {
                        let note = format!("in the task field {key:?}");
                        let _ = e.value(d.py()).call_method1("add_note", (note,));
                    })?
                    .0,
            )),
            _ => Ok(None),
        }
    };
    let int = |key: &str| -> PyResult<Option<i64>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => Ok(Some(convert::int_arg(&v, key)?)),
            _ => Ok(None),
        }
    };
    let name = text("name")?
        .or(text("task")?)
        .or(text("task_name")?)
        .ok_or_else(|| {
            argument_error(format!(
                "invalid task {}: it has no name",
                convert::short_repr(d)
            ))
        })?;
    let stage = text("stage")?.or(text("stage_name")?).ok_or_else(|| {
        argument_error(format!(
            "invalid task {}: it has no stage",
            convert::short_repr(d)
        ))
    })?;
    Ok(TaskSpec {
        stage,
        name,
        task_type: text("type")?.or(text("task_type")?),
        description: text("description")?,
        stage_order: int("stage_order")?,
        task_order: int("task_order")?,
        script_path: text("script_path")?,
        script_filename: text("script_filename")?,
        log_path: text("log_path")?,
        log_filename: text("log_filename")?,
        depends_on: depends_on(d)?,
    })
}

/// `depends_on`: a list (or tuple) of `stage/task` names, or one name; None or
/// absent keeps the stored dependencies.
fn depends_on(d: &Bound<'_, PyDict>) -> PyResult<Option<Vec<String>>> {
    let Some(v) = d.get_item("depends_on")? else {
        return Ok(None);
    };
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(one) = v.extract::<Text>() {
        return Ok(Some(vec![one.0]));
    }
    let bad = || {
        argument_error(format!(
            "invalid depends_on {}: must be a list of \"stage/task\" names",
            convert::short_repr(&v)
        ))
    };
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<pyo3::types::PyTuple>()) {
        return Err(bad());
    }
    v.try_iter()?
        .map(|item| item?.extract::<Text>().map(|t| t.0).map_err(|_| bad()))
        .collect::<PyResult<Vec<String>>>()
        .map(Some)
}

/// The binding's reference to a core run handle. When the last one goes, the
/// tracker is flushed: the core would keep the handle's pending progress for its
/// next flush, but a worker's unpickled copy often goes at the end of the worker's
/// last task, and a pool worker can be ended before that flush comes.
#[derive(Debug)]
struct Handle(RunHandle);

impl Drop for Handle {
    fn drop(&mut self) {
        let tracker = self.0.tracker();
        let flush = || tracker.flush();
        let result = Python::try_attach(|py| py.detach(flush)).unwrap_or_else(flush);
        if let Err(e) = result {
            log::warn!("tasker: progress not written when its run handle was dropped: {e}");
        }
    }
}

impl std::ops::Deref for Handle {
    type Target = RunHandle;
    fn deref(&self) -> &RunHandle {
        &self.0
    }
}

type SharedHandle = std::sync::Arc<Handle>;

/// Releases the GIL around a call that may wait on the database. (Threads the
/// core starts meanwhile block the asynchronous signals themselves, so Python's
/// main thread keeps getting SIGINT and SIGTERM: see `tasker::with_signals_blocked`.)
fn io<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(f)
}

/// A run handle on its way from the native tracker to `tasker.Run(...)`.
#[pyclass(frozen, module = "tasker._tasker", name = "RunCore")]
struct RunCore {
    handle: SharedHandle,
}

#[pymethods]
impl RunCore {
    /// Makes a forked child start its own writer thread now (which blocks the
    /// asynchronous signals itself).
    fn _after_fork(&self) -> PyResult<()> {
        self.handle.update(&RunProgress::default()).or_raise()
    }
}

fn info(
    message: Option<Text>,
    error_message: Option<Text>,
    error_detail: Option<Text>,
    reset: bool,
) -> TransitionInfo {
    TransitionInfo {
        message: opt_text(message),
        error_message: opt_text(error_message),
        error_detail: opt_text(error_detail),
        reset,
    }
}

/// One run (base class of `tasker.Run`). Safe to share between threads.
#[pyclass(frozen, subclass, weakref, module = "tasker._tasker", name = "Run")]
struct Run {
    handle: SharedHandle,
    tracker: Py<PyAny>,
    /// The id as a Python string, made once (the functional API reads it often).
    run_id: Py<pyo3::types::PyString>,
}

#[pymethods]
impl Run {
    #[new]
    fn new(py: Python<'_>, tracker: Py<PyAny>, core: PyRef<'_, RunCore>) -> Run {
        Run {
            handle: core.handle.clone(),
            tracker,
            run_id: pyo3::types::PyString::new(py, core.handle.run_id()).unbind(),
        }
    }

    /// The run's id (a UUID): what queries, `attach()` and other processes use.
    #[getter]
    fn run_id(&self, py: Python<'_>) -> Py<pyo3::types::PyString> {
        self.run_id.clone_ref(py)
    }

    /// The stage the run's task belongs to.
    #[getter]
    fn stage(&self) -> &str {
        self.handle.stage()
    }

    /// The name of the run's task.
    #[getter]
    fn task(&self) -> &str {
        self.handle.task()
    }

    /// The `tasker.Tracker` this run was started or attached through.
    #[getter]
    fn tracker(&self, py: Python<'_>) -> Py<PyAny> {
        self.tracker.clone_ref(py)
    }

    /// Starts a subtask and returns its number (the next free one unless `number` is given).
    #[pyo3(signature = (name, items_total=None, *, message=None, number=None, restart=false))]
    fn subtask_start(
        &self,
        py: Python<'_>,
        name: Text,
        items_total: Option<&Bound<'_, PyAny>>,
        message: Option<Text>,
        number: Option<&Bound<'_, PyAny>>,
        restart: bool,
    ) -> PyResult<u32> {
        let options = SubtaskOptions {
            number: number_arg(number, "subtask_number")?,
            items_total: count_arg(items_total, "items_total")?,
            message: opt_text(message),
            restart,
        };
        io(py, || self.handle.subtask_start(&name.0, options)).or_raise()
    }

    /// The number the database stored subtask `number` under: the same, unless it
    /// was started while the database was away and another process took that
    /// number meanwhile (until the queued start is applied, `number` itself).
    fn subtask_number(&self, number: &Bound<'_, PyAny>) -> PyResult<u32> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        Ok(self.handle.subtask_number(number))
    }

    /// The identity of the subtask this process reaches as `number` (None when it
    /// did not start it); see `_adopt`.
    fn subtask_uid(&self, number: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        Ok(self.handle.subtask_uid(number))
    }

    /// Makes `number` in this process reach the subtask with identity `uid`
    /// (used when a subtask handle is unpickled in a worker).
    fn _adopt(&self, number: &Bound<'_, PyAny>, uid: &str) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        self.handle.adopt_subtask(number, uid).or_raise()
    }

    /// Logs a line on the run (about subtask `subtask` when given). Memory only:
    /// written with the next progress write. `level`: debug, info, warn, error
    /// (any case) or a `logging` level number.
    #[pyo3(signature = (level, message, subtask=None))]
    fn log(
        &self,
        level: &Bound<'_, PyAny>,
        message: Text,
        subtask: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let level = logs::level_arg(level)?;
        let subtask = number_arg(subtask, "subtask_number")?;
        self.handle.log(level, &message.0, subtask).or_raise()
    }

    /// Adds `n` (default 1) items to subtask `number`. Memory only.
    #[pyo3(signature = (number, n=None))]
    fn subtask_increment(
        &self,
        number: &Bound<'_, PyAny>,
        n: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        increment(&self.handle, number, n)
    }

    /// Sets progress of subtask `number`. Memory only; never changes its status.
    #[pyo3(signature = (number, items_complete=None, percent=None, message=None, items_total=None))]
    fn subtask_update(
        &self,
        number: &Bound<'_, PyAny>,
        items_complete: Option<&Bound<'_, PyAny>>,
        percent: Option<f64>,
        message: Option<Text>,
        items_total: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        update(
            &self.handle,
            number,
            items_complete,
            percent,
            message,
            items_total,
        )
    }

    /// Moves subtask `number` to `status`; returns the status it had.
    #[pyo3(signature = (number, status, *, message=None, error_message=None, error_detail=None, reset=false))]
    #[allow(clippy::too_many_arguments, reason = "the fields of TransitionInfo")]
    fn subtask_set_status(
        &self,
        py: Python<'_>,
        number: &Bound<'_, PyAny>,
        status: Text,
        message: Option<Text>,
        error_message: Option<Text>,
        error_detail: Option<Text>,
        reset: bool,
    ) -> PyResult<&'static str> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        let to = status_arg(&status.0)?;
        let i = info(message, error_message, error_detail, reset);
        io(py, || self.handle.subtask_set_status(number, to, i))
            .or_raise()
            .map(|s| s.as_str())
    }

    /// Sets run-level progress. Memory only; never changes the status.
    #[pyo3(signature = (current_subtask=None, overall_percent=None, message=None))]
    fn update(
        &self,
        current_subtask: Option<&Bound<'_, PyAny>>,
        overall_percent: Option<f64>,
        message: Option<Text>,
    ) -> PyResult<()> {
        let p = RunProgress {
            current_subtask: number_arg(current_subtask, "current_subtask")?,
            overall_percent,
            message: opt_text(message),
        };
        self.handle.update(&p).or_raise()
    }

    /// Moves the run to `status`; returns the status it had. A terminal status
    /// closes the run's open subtasks with the same status.
    #[pyo3(signature = (status, *, message=None, error_message=None, error_detail=None, reset=false))]
    fn set_status(
        &self,
        py: Python<'_>,
        status: Text,
        message: Option<Text>,
        error_message: Option<Text>,
        error_detail: Option<Text>,
        reset: bool,
    ) -> PyResult<&'static str> {
        let to = status_arg(&status.0)?;
        let i = info(message, error_message, error_detail, reset);
        io(py, || self.handle.set_status(to, i))
            .or_raise()
            .map(|s| s.as_str())
    }

    /// Completes subtask `number` (durable on return). Completing a COMPLETED
    /// subtask again changes nothing; another finished status needs `reset`
    /// (see `subtask_set_status`).
    #[pyo3(signature = (number, message=None))]
    fn subtask_complete(
        &self,
        py: Python<'_>,
        number: &Bound<'_, PyAny>,
        message: Option<Text>,
    ) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        let m = opt_text(message);
        io(py, || self.handle.subtask_complete(number, m.as_deref())).or_raise()
    }

    /// Marks subtask `number` FAILED with a message and optional detail (a
    /// traceback, say); the run goes on.
    #[pyo3(signature = (number, error_message, error_detail=None))]
    fn subtask_fail(
        &self,
        py: Python<'_>,
        number: &Bound<'_, PyAny>,
        error_message: Text,
        error_detail: Option<Text>,
    ) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        let d = opt_text(error_detail);
        io(py, || {
            self.handle
                .subtask_fail(number, &error_message.0, d.as_deref())
        })
        .or_raise()
    }

    /// Marks subtask `number` SKIPPED (it counts as done for the run's percent).
    #[pyo3(signature = (number, message=None))]
    fn subtask_skip(
        &self,
        py: Python<'_>,
        number: &Bound<'_, PyAny>,
        message: Option<Text>,
    ) -> PyResult<()> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        let m = opt_text(message);
        io(py, || self.handle.subtask_skip(number, m.as_deref())).or_raise()
    }

    /// Records an input or output of this run, replacing an earlier record of
    /// the same name and direction: a `value` (text), or the file at `path` with
    /// its size, modification time and, with `hash`, the SHA-256 of its content
    /// (read now). Durable on return. `tasker.Run.add_input` / `add_output`
    /// choose between the two from the value given.
    #[pyo3(signature = (direction, name, *, value=None, path=None, hash=false))]
    fn record_io(
        &self,
        py: Python<'_>,
        direction: Text,
        name: Text,
        value: Option<Text>,
        path: Option<Text>,
        hash: bool,
    ) -> PyResult<()> {
        let direction: Direction = direction.0.parse().or_raise()?;
        let record = match (value, path) {
            (Some(v), None) => {
                if hash {
                    return Err(argument_error(format!(
                        "invalid hash True for the value {:?}: only a file is hashed (pass a pathlib.Path)",
                        v.0
                    )));
                }
                IoRecord::value(direction, &name.0, &v.0)
            }
            (None, Some(p)) => {
                // Hashing reads the whole file: without the GIL.
                io(py, || IoRecord::file(direction, &name.0, &p.0, hash))
            }
            _ => {
                return Err(argument_error(format!(
                    "invalid input/output {:?}: give exactly one of value= and path=",
                    name.0
                )))
            }
        }
        .or_raise()?;
        io(py, || self.handle.record_io(record)).or_raise()
    }

    /// Completes the run (durable on return); its open subtasks complete too.
    /// Completing a COMPLETED run again changes nothing; leaving another
    /// finished status needs `set_status(..., reset=True)`.
    #[pyo3(signature = (message=None))]
    fn complete(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.complete(m.as_deref())).or_raise()
    }

    /// Marks the run FAILED with a message and an optional detail (a traceback,
    /// say); its open subtasks fail too. Durable on return.
    #[pyo3(signature = (error_message, error_detail=None))]
    fn fail(
        &self,
        py: Python<'_>,
        error_message: Text,
        error_detail: Option<Text>,
    ) -> PyResult<()> {
        let d = opt_text(error_detail);
        io(py, || self.handle.fail(&error_message.0, d.as_deref())).or_raise()
    }

    /// Marks the run CANCELLED (stopped on purpose; a `with` block does this on
    /// KeyboardInterrupt); its open subtasks are cancelled too.
    #[pyo3(signature = (message=None))]
    fn cancel(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.cancel(m.as_deref())).or_raise()
    }

    /// Marks the run SKIPPED (there was nothing to do); its open subtasks too.
    #[pyo3(signature = (message=None))]
    fn skip(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.skip(m.as_deref())).or_raise()
    }

    /// Marks the run PAUSED (waiting, for example for a resource); `resume()`
    /// makes it RUNNING again. A paused run is still active.
    #[pyo3(signature = (message=None))]
    fn pause(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.pause(m.as_deref())).or_raise()
    }

    /// Makes a PAUSED (or STARTED) run RUNNING.
    #[pyo3(signature = (message=None))]
    fn resume(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.resume(m.as_deref())).or_raise()
    }
}

#[inline]
fn increment(handle: &RunHandle, number: u32, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let n = match n {
        None => 1,
        Some(obj) => {
            let v = convert::int_arg(obj, "increment")?;
            u64::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                argument_error(format!("invalid increment {v}: must be at least 1"))
            })?
        }
    };
    handle.subtask_increment(number, n).or_raise()
}

fn update(
    handle: &RunHandle,
    number: u32,
    items_complete: Option<&Bound<'_, PyAny>>,
    percent: Option<f64>,
    message: Option<Text>,
    items_total: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let p = SubtaskProgress {
        items_complete: count_arg(items_complete, "items_complete")?,
        items_total: count_arg(items_total, "items_total")?,
        percent,
        message: opt_text(message),
    };
    handle.subtask_update(number, &p).or_raise()
}

/// One subtask of a run (base class of `tasker.Subtask`). Safe to share between threads.
#[pyclass(frozen, subclass, weakref, module = "tasker._tasker", name = "Subtask")]
struct Subtask {
    handle: SharedHandle,
    number: u32,
    run: Py<PyAny>,
    run_id: Py<pyo3::types::PyString>,
}

#[pymethods]
impl Subtask {
    #[new]
    fn new(run: &Bound<'_, Run>, number: &Bound<'_, PyAny>) -> PyResult<Subtask> {
        let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
        let r = run.get();
        Ok(Subtask {
            handle: r.handle.clone(),
            number,
            run: run.clone().into_any().unbind(),
            run_id: r.run_id.clone_ref(run.py()),
        })
    }

    /// The subtask's number: the one it was given, or, if it was started while
    /// the database was away and stored under another, that one once known.
    #[getter]
    fn number(&self) -> u32 {
        self.handle.subtask_number(self.number)
    }

    /// Its identity (a UUID) when this process started it: progress sent with it
    /// reaches this subtask whatever its number.
    #[getter]
    fn uid(&self) -> Option<String> {
        self.handle.subtask_uid(self.number)
    }

    /// The number this process's calls use for it (given when it was started).
    fn _local_number(&self) -> u32 {
        self.number
    }

    /// The run this subtask belongs to.
    #[getter]
    fn run(&self, py: Python<'_>) -> Py<PyAny> {
        self.run.clone_ref(py)
    }

    /// The id of the run this subtask belongs to.
    #[getter]
    fn run_id(&self, py: Python<'_>) -> Py<pyo3::types::PyString> {
        self.run_id.clone_ref(py)
    }

    /// Adds `n` (default 1) items. Memory only: costs about as much as any method call.
    #[pyo3(signature = (n=None))]
    fn increment(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        increment(&self.handle, self.number, n)
    }

    /// Logs a line on the run, about this subtask. Memory only.
    fn log(&self, level: &Bound<'_, PyAny>, message: Text) -> PyResult<()> {
        let level = logs::level_arg(level)?;
        self.handle
            .log(level, &message.0, Some(self.number))
            .or_raise()
    }

    /// Records that item `key` (its text: `str(key)`) failed, and why. Memory only.
    fn item_failed(&self, key: &Bound<'_, PyAny>, error: Text) -> PyResult<()> {
        let key = key.str()?.to_string();
        self.handle
            .item_failed(self.number, &key, &error.0)
            .or_raise()
    }

    /// Records that item `key` was skipped (and why, when given). Memory only.
    #[pyo3(signature = (key, reason=None))]
    fn item_skipped(&self, key: &Bound<'_, PyAny>, reason: Option<Text>) -> PyResult<()> {
        let key = key.str()?.to_string();
        self.handle
            .item_skipped(self.number, &key, reason.as_ref().map(|r| r.0.as_str()))
            .or_raise()
    }

    /// Sets progress (absolute items done, percent, message, total). Memory only.
    #[pyo3(signature = (items_complete=None, percent=None, message=None, items_total=None))]
    fn update(
        &self,
        items_complete: Option<&Bound<'_, PyAny>>,
        percent: Option<f64>,
        message: Option<Text>,
        items_total: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        update(
            &self.handle,
            self.number,
            items_complete,
            percent,
            message,
            items_total,
        )
    }

    /// Moves the subtask to `status`; returns the status it had.
    #[pyo3(signature = (status, *, message=None, error_message=None, error_detail=None, reset=false))]
    fn set_status(
        &self,
        py: Python<'_>,
        status: Text,
        message: Option<Text>,
        error_message: Option<Text>,
        error_detail: Option<Text>,
        reset: bool,
    ) -> PyResult<&'static str> {
        let to = status_arg(&status.0)?;
        let i = info(message, error_message, error_detail, reset);
        io(py, || self.handle.subtask_set_status(self.number, to, i))
            .or_raise()
            .map(|s| s.as_str())
    }

    /// Completes the subtask (durable on return). Completing it again changes nothing.
    #[pyo3(signature = (message=None))]
    fn complete(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || {
            self.handle.subtask_complete(self.number, m.as_deref())
        })
        .or_raise()
    }

    /// Marks the subtask FAILED with a message and optional detail; the run goes on.
    #[pyo3(signature = (error_message, error_detail=None))]
    fn fail(
        &self,
        py: Python<'_>,
        error_message: Text,
        error_detail: Option<Text>,
    ) -> PyResult<()> {
        let d = opt_text(error_detail);
        io(py, || {
            self.handle
                .subtask_fail(self.number, &error_message.0, d.as_deref())
        })
        .or_raise()
    }

    /// Marks the subtask SKIPPED (counts as done for the run's percent).
    #[pyo3(signature = (message=None))]
    fn skip(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let m = opt_text(message);
        io(py, || self.handle.subtask_skip(self.number, m.as_deref())).or_raise()
    }

    /// Marks the subtask CANCELLED.
    #[pyo3(signature = (message=None))]
    fn cancel(&self, py: Python<'_>, message: Option<Text>) -> PyResult<()> {
        let i = TransitionInfo::message(opt_text(message).as_deref());
        io(py, || {
            self.handle
                .subtask_set_status(self.number, tasker::Status::Cancelled, i)
        })
        .or_raise()
        .map(drop)
    }
}

// ---------------------------------------------------------------------------
// The functional `subtask_increment()` (R's name), called in tight loops. Its
// common form (no arguments: the last subtask started for the current run) is
// answered here, reading the facade's own state (the context variable of the
// current run, `_core._active`, `_LAST_SUBTASK`) so there is one truth; a
// Python function in between would cost more than the increment itself.
// Anything else goes to the facade's `_subtask_increment_slow`.

struct Functional {
    /// `_core._current.get`: the run of the innermost `with` block, or None.
    current_get: Py<PyAny>,
    /// `_core.__dict__`, where `_active` (the run `task_start()` made active) lives.
    core_dict: Py<PyDict>,
    /// `_core._LAST_SUBTASK`: the last subtask started in this process, by run id.
    last_subtask: Py<PyDict>,
    /// `_functional._RUNS`: runs the functional API started or attached, by id.
    runs: Py<PyDict>,
    slow: Py<PyAny>,
}

static FUNCTIONAL: std::sync::OnceLock<Functional> = std::sync::OnceLock::new();

/// Called once by `tasker._functional` at import.
#[pyfunction]
fn _register_functional(
    current_get: Py<PyAny>,
    core_dict: Py<PyDict>,
    last_subtask: Py<PyDict>,
    runs: Py<PyDict>,
    slow: Py<PyAny>,
) {
    let _ = FUNCTIONAL.set(Functional {
        current_get,
        core_dict,
        last_subtask,
        runs,
        slow,
    });
}

/// Adds `increment` items to a subtask: by default the last one started in
/// this process for the current run (the innermost `with tasker.task(...)`,
/// else the run `task_start()` made active). Memory only; a background thread
/// writes it, and increments from many processes add up exactly. `quiet` is
/// accepted for the R package's signature and ignored.
#[pyfunction]
#[pyo3(signature = (increment=None, quiet=None, *, run_id=None, subtask_number=None, tracker=None),
    text_signature = "(increment=1, quiet=True, *, run_id=None, subtask_number=None, tracker=None)")]
fn subtask_increment(
    py: Python<'_>,
    increment: Option<&Bound<'_, PyAny>>,
    quiet: Option<&Bound<'_, PyAny>>,
    run_id: Option<&Bound<'_, PyAny>>,
    subtask_number: Option<&Bound<'_, PyAny>>,
    tracker: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let _ = quiet;
    let Some(f) = FUNCTIONAL.get() else {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "tasker._functional was not imported",
        ));
    };
    // Both numbers given, for a run this API knows: straight to its handle.
    if let (Some(id), Some(number), None) = (run_id, subtask_number, tracker) {
        if let Some(run) = f.runs.bind(py).get_item(id)? {
            if let Ok(run) = run.cast::<Run>() {
                let number = number_arg(Some(number), "subtask_number")?.unwrap_or(1);
                return self::increment(&run.get().handle, number, increment);
            }
        }
    }
    if run_id.is_none() && subtask_number.is_none() && tracker.is_none() {
        let mut run = f.current_get.bind(py).call0()?;
        if run.is_none() {
            if let Some(active) = f
                .core_dict
                .bind(py)
                .get_item(pyo3::intern!(py, "_active"))?
            {
                run = active;
            }
        }
        if let Ok(run) = run.cast::<Run>() {
            if let Some(st) = f
                .last_subtask
                .bind(py)
                .get_item(run.get().run_id.bind(py))?
            {
                if let Ok(st) = st.cast::<Subtask>() {
                    let st = st.get();
                    return self::increment(&st.handle, st.number, increment);
                }
            }
        }
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("run_id", run_id)?;
    kwargs.set_item("subtask_number", subtask_number)?;
    kwargs.set_item("tracker", tracker)?;
    let n = match increment {
        Some(n) => n.clone(),
        None => 1i64.into_pyobject(py)?.into_any(),
    };
    f.slow.bind(py).call((n,), Some(&kwargs)).map(drop)
}

/// A method that does nothing, for benchmarks (the cost of a PyO3 call itself).
#[pyclass(frozen, module = "tasker._tasker", name = "_Noop")]
struct Noop;

#[pymethods]
impl Noop {
    #[new]
    fn new() -> Noop {
        Noop
    }

    #[pyo3(signature = (n=None))]
    fn call(&self, n: Option<&Bound<'_, PyAny>>) {
        let _ = n;
    }
}

// ---------------------------------------------------------------------------
// SIGTERM in worker processes. A multiprocessing Pool that is terminated (as its
// `with` block does) sends SIGTERM to workers that may still hold progress in
// memory. A Python-level handler cannot be relied on: a worker blocked in a
// multiprocessing lock can miss it (CPython checks signals only after EINTR). So
// the handler is a C-level one that only writes a byte to a pipe; a thread of ours
// wakes, flushes (bounded in time) and ends the process with the default SIGTERM.

static SIGTERM_FD: AtomicI32 = AtomicI32::new(-1);
static SIGTERM_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_sigterm(_sig: libc::c_int) {
    // SAFETY: only async-signal-safe calls (getpid, write, signal, raise).
    unsafe {
        let fd = SIGTERM_FD.load(Ordering::SeqCst);
        if fd < 0 || libc::getpid() != SIGTERM_PID.load(Ordering::SeqCst) {
            // A forked child before it installed its own: behave as before.
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::raise(libc::SIGTERM);
            return;
        }
        let byte = 1u8;
        let _ = libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}

fn sigterm_flusher(read_fd: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a local from a pipe we own.
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n == 0 {
            return;
        }
    }
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let _ = std::thread::Builder::new()
        .name("tasker-sigterm-flush".into())
        .spawn(move || {
            tasker::flush_all();
            let _ = done.send(());
        });
    let _ = wait.recv_timeout(Duration::from_secs(10));
    // SAFETY: restoring the default disposition and re-sending the signal to ourselves.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}

/// In this process, makes SIGTERM flush pending progress before it ends the process
/// (only if SIGTERM has no handler yet, or ours from the parent of a fork).
/// Returns whether it is installed.
#[pyfunction]
fn _install_sigterm_flush() -> PyResult<bool> {
    // SAFETY: sigaction/pipe2/getpid on initialised locals; the handler is AS-safe.
    unsafe {
        let pid = libc::getpid();
        if SIGTERM_PID.load(Ordering::SeqCst) == pid {
            return Ok(true);
        }
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut current) != 0 {
            return Ok(false);
        }
        let ours = current.sa_sigaction == on_sigterm as extern "C" fn(libc::c_int) as usize;
        if current.sa_sigaction != libc::SIG_DFL && !ours {
            return Ok(false);
        }
        let mut fds = [0 as libc::c_int; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Ok(false);
        }
        let read_fd = fds[0];
        let spawned = tasker::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("tasker-sigterm".into())
                .spawn(move || sigterm_flusher(read_fd))
        });
        if spawned.is_err() {
            libc::close(fds[0]);
            libc::close(fds[1]);
            return Ok(false);
        }
        SIGTERM_FD.store(fds[1], Ordering::SeqCst);
        SIGTERM_PID.store(pid, Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        Ok(libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) == 0)
    }
}

/// Renders a graph from `dag_json` as text, dot, mermaid or json (the core's
/// renderings, the same as `tasker dag`).
#[pyfunction]
fn _render_dag(json: Text, format: Text) -> PyResult<String> {
    let format: tasker::dag::DagFormat = format.0.parse().or_raise()?;
    let dag: tasker::Dag =
        serde_json::from_str(&json.0).map_err(|e| argument_error(format!("invalid graph: {e}")))?;
    Ok(dag.render(format))
}

/// Flushes the pending progress of every tracker of this process.
#[pyfunction]
fn flush_all(py: Python<'_>) {
    io(py, tasker::flush_all)
}

#[pymodule]
fn _tasker(m: &Bound<'_, PyModule>) -> PyResult<()> {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::add_to_module(m)?;
    m.add_class::<NativeTracker>()?;
    m.add_class::<RunCore>()?;
    m.add_class::<Run>()?;
    m.add_class::<Subtask>()?;
    m.add_class::<Noop>()?;
    m.add_function(wrap_pyfunction!(flush_all, m)?)?;
    m.add_function(wrap_pyfunction!(_render_dag, m)?)?;
    m.add_function(wrap_pyfunction!(subtask_increment, m)?)?;
    m.add_function(wrap_pyfunction!(_register_functional, m)?)?;
    m.add_function(wrap_pyfunction!(_drain_log, m)?)?;
    m.add_function(wrap_pyfunction!(_install_sigterm_flush, m)?)?;
    #[cfg(feature = "server")]
    {
        m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
        m.add_class::<serve::DashboardServer>()?;
        m.add_function(wrap_pyfunction!(serve::serve_start, m)?)?;
    }
    Ok(())
}

/// "Python 3.11.7", as a run records its runtime.
fn python_runtime(py: Python<'_>) -> String {
    let v = py.version_info();
    format!("Python {}.{}.{}", v.major, v.minor, v.patch)
}
