//! Conversions between Python values and the core's: checked text and counts in,
//! query rows out (as dicts the facade turns into records; times as aware datetimes).

use chrono::{DateTime, Datelike, Timelike, Utc};
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use tasker::sampler::Sample;
use tasker::{EventRow, Health, IoRow, RunRow, StageRow, SubtaskRow, TaskRow, TaskStats};

use crate::errors::argument_error;

/// A `str` argument. A string Rust cannot hold (a lone surrogate) is an
/// `ArgumentError` naming the value, not a `UnicodeEncodeError`.
#[derive(Debug, Clone)]
pub(crate) struct Text(pub String);

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let s = obj.cast::<PyString>().map_err(PyErr::from)?;
        match s.to_cow() {
            Ok(v) => Ok(Text(v.into_owned())),
            Err(_) => Err(argument_error(format!(
                "invalid text {}: is not valid Unicode (it holds a lone surrogate)",
                short_repr(&obj)
            ))),
        }
    }
}

pub(crate) fn opt_text(t: Option<Text>) -> Option<String> {
    t.map(|t| t.0)
}

/// `repr(obj)`, shortened when huge.
pub(crate) fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "<?>".into());
    if r.len() > 200 {
        let mut cut = 200;
        while !r.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} characters)", &r[..cut], r.chars().count())
    } else {
        r
    }
}

/// An integer argument; one too large for 64 bits is an `ArgumentError`.
pub(crate) fn int_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(argument_error(format!(
            "invalid {what} {}: is too large",
            short_repr(obj)
        ))),
        Err(e) => Err(e),
    }
}

/// A count that must be zero or more.
pub(crate) fn count_arg(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<u64>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let v = int_arg(obj, what)?;
    u64::try_from(v)
        .map(Some)
        .map_err(|_| argument_error(format!("invalid {what} {v}: must be zero or more")))
}

/// A positive number (subtask numbers, current_subtask).
pub(crate) fn number_arg(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<u32>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let v = int_arg(obj, what)?;
    if v < 1 {
        return Err(argument_error(format!(
            "invalid {what} {v}: numbers start at 1"
        )));
    }
    u32::try_from(v)
        .map(Some)
        .map_err(|_| argument_error(format!("invalid {what} {v}: is too large")))
}

pub(crate) fn limit_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let v = int_arg(obj, "limit")?;
    if v < 1 {
        return Err(argument_error(format!(
            "invalid limit {v}: must be at least 1"
        )));
    }
    Ok(Some(v as usize))
}

pub(crate) fn status_arg(s: &str) -> PyResult<tasker::Status> {
    s.parse::<tasker::Status>()
        .map_err(|e| crate::errors::CoreError(e).into())
}

struct PyTime {
    datetime: Py<PyAny>,
    utc: Py<PyAny>,
    json_loads: Py<PyAny>,
}

static PYTIME: PyOnceLock<PyTime> = PyOnceLock::new();

fn pytime(py: Python<'_>) -> PyResult<&PyTime> {
    PYTIME.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        Ok(PyTime {
            datetime: dt.getattr("datetime")?.unbind(),
            utc: dt.getattr("timezone")?.getattr("utc")?.unbind(),
            json_loads: py.import("json")?.getattr("loads")?.unbind(),
        })
    })
}

/// A UTC time as an aware `datetime` (microsecond precision).
pub(crate) fn py_time<'py>(py: Python<'py>, t: &DateTime<Utc>) -> PyResult<Bound<'py, PyAny>> {
    let p = pytime(py)?;
    p.datetime.bind(py).call1((
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond().min(999_999_999) / 1000,
        p.utc.bind(py),
    ))
}

fn opt_time<'py>(py: Python<'py>, t: &Option<DateTime<Utc>>) -> PyResult<Bound<'py, PyAny>> {
    match t {
        Some(t) => py_time(py, t),
        None => Ok(py.None().into_bound(py)),
    }
}

fn json_value<'py>(py: Python<'py>, v: &Option<serde_json::Value>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Some(v) => pytime(py)?.json_loads.bind(py).call1((v.to_string(),)),
        None => Ok(py.None().into_bound(py)),
    }
}

macro_rules! dict {
    ($py:expr; $($k:literal => $v:expr),* $(,)?) => {{
        let d = PyDict::new($py);
        $( d.set_item($k, $v)?; )*
        d
    }};
}

pub(crate) fn run_row<'py>(py: Python<'py>, r: &RunRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "run_id" => &r.run_id,
        "stage_name" => &r.stage_name,
        "stage_order" => r.stage_order,
        "task_name" => &r.task_name,
        "task_type" => &r.task_type,
        "task_order" => r.task_order,
        "status" => r.status.as_str(),
        "hostname" => &r.hostname,
        "process_id" => r.process_id,
        "parent_pid" => r.parent_pid,
        "process_start_time" => opt_time(py, &r.process_start_time)?,
        "user_name" => &r.user_name,
        "start_time" => opt_time(py, &r.start_time)?,
        "end_time" => opt_time(py, &r.end_time)?,
        "last_update" => opt_time(py, &r.last_update)?,
        "heartbeat_time" => opt_time(py, &r.heartbeat_time)?,
        "total_subtasks" => r.total_subtasks,
        "current_subtask" => r.current_subtask,
        "overall_percent_complete" => r.overall_percent_complete,
        "overall_progress_message" => &r.overall_progress_message,
        "version" => &r.version,
        "git_commit" => &r.git_commit,
        "script_path" => &r.script_path,
        "script_filename" => &r.script_filename,
        "log_path" => &r.log_path,
        "log_filename" => &r.log_filename,
        "error_message" => &r.error_message,
        "error_detail" => &r.error_detail,
        "metadata" => json_value(py, &r.metadata)?,
        "attempt" => r.attempt,
        "retry_of" => &r.retry_of,
        "command_line" => &r.command_line,
        "git_dirty" => r.git_dirty,
        "runtime" => &r.runtime,
        "tasker_version" => &r.tasker_version,
        "wait_seconds" => r.wait_seconds,
        "subtasks_completed" => r.subtasks_completed,
        "lost" => r.lost,
        "duration_seconds" => r.duration_seconds,
        "eta_seconds" => r.eta_seconds,
        "eta_low" => r.eta_low,
        "eta_high" => r.eta_high,
        "eta_basis" => r.eta_basis.map(basis_name),
    ))
}

pub(crate) fn subtask_row<'py>(py: Python<'py>, r: &SubtaskRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "run_id" => &r.run_id,
        "subtask_number" => r.subtask_number,
        "subtask_name" => &r.subtask_name,
        "status" => r.status.as_str(),
        "start_time" => opt_time(py, &r.start_time)?,
        "end_time" => opt_time(py, &r.end_time)?,
        "last_update" => opt_time(py, &r.last_update)?,
        "items_total" => r.items_total,
        "items_complete" => r.items_complete,
        "percent_complete" => r.percent_complete,
        "progress_message" => &r.progress_message,
        "error_message" => &r.error_message,
        "error_detail" => &r.error_detail,
        "rate_per_second" => r.rate_per_second,
        "eta_seconds" => r.eta_seconds,
        "eta_low" => r.eta_low,
        "eta_high" => r.eta_high,
    ))
}

pub(crate) fn task_row<'py>(py: Python<'py>, r: &TaskRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "stage_id" => r.stage_id,
        "stage_name" => &r.stage_name,
        "stage_order" => r.stage_order,
        "task_id" => r.task_id,
        "task_name" => &r.task_name,
        "task_type" => &r.task_type,
        "task_order" => r.task_order,
        "description" => &r.description,
        "script_path" => &r.script_path,
        "script_filename" => &r.script_filename,
        "log_path" => &r.log_path,
        "log_filename" => &r.log_filename,
        "created_at" => py_time(py, &r.created_at)?,
        "updated_at" => py_time(py, &r.updated_at)?,
    ))
}

pub(crate) fn stage_row<'py>(py: Python<'py>, r: &StageRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "stage_id" => r.stage_id,
        "stage_name" => &r.stage_name,
        "stage_order" => r.stage_order,
        "description" => &r.description,
        "created_at" => py_time(py, &r.created_at)?,
        "updated_at" => py_time(py, &r.updated_at)?,
    ))
}

pub(crate) fn event_row<'py>(py: Python<'py>, r: &EventRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "event_id" => r.event_id,
        "time" => py_time(py, &r.time)?,
        "run_id" => &r.run_id,
        "stage_name" => &r.stage_name,
        "task_name" => &r.task_name,
        "subtask_number" => r.subtask_number,
        "kind" => &r.kind,
        "old_status" => r.old_status.map(|s| s.as_str()),
        "new_status" => r.new_status.as_str(),
        "message" => &r.message,
    ))
}

/// What an ETA rests on, as the core names it in JSON.
fn basis_name(b: tasker::estimate::Basis) -> &'static str {
    match b {
        tasker::estimate::Basis::Rate => "rate",
        tasker::estimate::Basis::History => "history",
        tasker::estimate::Basis::Blend => "blend",
    }
}

pub(crate) fn health<'py>(py: Python<'py>, h: &Health) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "backend" => h.backend,
        "location" => &h.location,
        "reachable" => h.reachable,
        "last_error" => &h.last_error,
        "pending_writes" => h.pending_writes,
        "spooled_writes" => h.spooled_writes,
        "replaying" => h.replaying,
    ))
}

pub(crate) fn task_stats<'py>(py: Python<'py>, s: &TaskStats) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "stage_name" => &s.stage_name,
        "task_name" => &s.task_name,
        "runs" => s.runs,
        "logical_runs" => s.logical_runs,
        "completed" => s.completed,
        "failed" => s.failed,
        "lost" => s.lost,
        "cancelled" => s.cancelled,
        "skipped" => s.skipped,
        "active" => s.active,
        "success_rate" => s.success_rate,
        "retried" => s.retried,
        "mean_attempts" => s.mean_attempts,
        "duration_p50" => s.duration_p50,
        "duration_p90" => s.duration_p90,
        "duration_p95" => s.duration_p95,
        "duration_mean" => s.duration_mean,
        "duration_max" => s.duration_max,
        "items_per_second" => s.items_per_second,
        "last_start" => opt_time(py, &s.last_start)?,
        "last_success" => opt_time(py, &s.last_success)?,
        "last_failure" => opt_time(py, &s.last_failure)?,
        "wait_p50" => s.wait_p50,
        "wait_p95" => s.wait_p95,
    ))
}

pub(crate) fn sample<'py>(
    py: Python<'py>,
    run_id: &str,
    s: &Sample,
) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "run_id" => run_id,
        "time" => py_time(py, &s.time)?,
        "pid" => s.pid,
        "cpu_seconds" => s.cpu_seconds,
        "cpu_percent" => s.cpu_percent,
        "rss_bytes" => s.rss_bytes,
        "peak_rss_bytes" => s.peak_rss_bytes,
        "read_bytes" => s.read_bytes,
        "write_bytes" => s.write_bytes,
        "threads" => s.threads,
        "open_fds" => s.open_fds,
        "children" => s.children,
        "children_cpu_seconds" => s.children_cpu_seconds,
        "children_rss_bytes" => s.children_rss_bytes,
    ))
}

pub(crate) fn io_row<'py>(py: Python<'py>, r: &IoRow) -> PyResult<Bound<'py, PyDict>> {
    let io = &r.record;
    Ok(dict!(py;
        "run_id" => &r.run_id,
        "direction" => io.direction.as_str(),
        "name" => &io.name,
        "value" => &io.value,
        "path" => &io.path,
        "size_bytes" => io.size_bytes,
        "modified" => opt_time(py, &io.modified)?,
        "sha256" => &io.sha256,
        "recorded_at" => py_time(py, &r.recorded_at)?,
    ))
}
