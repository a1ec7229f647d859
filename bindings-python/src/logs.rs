//! Run logs and item outcomes for Python: level arguments and the rows of
//! `get_run_logs` / `get_item_outcomes` (see the core's `logs.rs`).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tasker::logs::{ItemOutcomeRow, LogLevel, LogRow, OutcomeCount};

use crate::convert::{int_arg, py_time};
use crate::errors::{argument_error, OrRaise};

/// A level by name (`"info"`, any case, `"warning"` too) or by number: Python's
/// `logging` levels (10, 20, 30, 40, 50) map onto debug, info, warn, error.
pub(crate) fn level_arg(obj: &Bound<'_, PyAny>) -> PyResult<LogLevel> {
    if let Ok(s) = obj.extract::<String>() {
        return s.parse::<LogLevel>().or_raise();
    }
    match int_arg(obj, "level") {
        Ok(n) if n >= 0 => Ok(LogLevel::from_code(n)),
        _ => Err(argument_error(format!(
            "invalid level {}: not a log level (debug, info, warn, error, or a logging level number)",
            obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into())
        ))),
    }
}

macro_rules! dict {
    ($py:expr; $($k:literal => $v:expr),* $(,)?) => {{
        let d = PyDict::new($py);
        $( d.set_item($k, $v)?; )*
        d
    }};
}

pub(crate) fn log_row<'py>(py: Python<'py>, r: &LogRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "log_id" => r.log_id,
        "run_id" => &r.run_id,
        "time" => py_time(py, &r.time)?,
        "level" => r.level.as_str(),
        "subtask_number" => r.subtask_number,
        "hostname" => &r.hostname,
        "process_id" => r.process_id,
        "message" => &r.message,
        "dropped_lines" => r.dropped_lines,
    ))
}

pub(crate) fn outcome_row<'py>(py: Python<'py>, r: &ItemOutcomeRow) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "outcome_id" => r.outcome_id,
        "run_id" => &r.run_id,
        "subtask_number" => r.subtask_number,
        "outcome" => r.outcome.as_str(),
        "item_key" => &r.item_key,
        "reason" => &r.reason,
        "time" => py_time(py, &r.time)?,
        "hostname" => &r.hostname,
        "process_id" => r.process_id,
    ))
}

pub(crate) fn outcome_count<'py>(py: Python<'py>, r: &OutcomeCount) -> PyResult<Bound<'py, PyDict>> {
    Ok(dict!(py;
        "run_id" => &r.run_id,
        "subtask_number" => r.subtask_number,
        "outcome" => r.outcome.as_str(),
        "total" => r.total,
        "kept" => r.kept,
    ))
}
