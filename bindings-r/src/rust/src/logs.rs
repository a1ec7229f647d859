//! Run logs and item outcomes from R (`tasker_log()`, `item_failed()`,
//! `item_skipped()`, `get_run_logs()`, `get_item_outcomes()`): see the core's
//! `logs.rs`. Logging only touches memory; the writer stores the lines.

use extendr_api::prelude::*;
use tasker::{LogFilter, LogLevel, Outcome, OutcomeFilter};

use crate::{
    entry, limit, out, r_int, r_number, r_str, r_time, run_id_or_current, secs, subtask_of,
    tracker, Cols, TkError, TkResult,
};

fn level_of(x: &Robj) -> TkResult<Option<LogLevel>> {
    r_str("level", x)?.map(|l| l.parse()).transpose()
}

/// Logs `message` on a run (the current one for NULL), about `subtask` when given.
/// @keywords internal
#[extendr]
fn tk_log(run_id: Robj, level: Robj, message: Robj, subtask: Robj) -> Robj {
    out((|| {
        let level = level_of(&level)?
            .ok_or_else(|| TkError::invalid("level", "NA", "is required"))?;
        let message = r_str("message", &message)?.unwrap_or_default();
        let subtask = r_number("subtask_number", &subtask)?;
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        e.handle.log(level, &message, subtask)?;
        Ok(true)
    })())
}

/// Records an item outcome ("failed" or "skipped") on a subtask (the run's
/// current one for NULL).
/// @keywords internal
#[extendr]
fn tk_item_outcome(run_id: Robj, subtask: Robj, outcome: Robj, key: Robj, reason: Robj) -> Robj {
    out((|| {
        let outcome: Outcome = r_str("outcome", &outcome)?
            .ok_or_else(|| TkError::invalid("outcome", "NA", "is required"))?
            .parse()?;
        let key = r_str("key", &key)?.ok_or_else(|| TkError::invalid("key", "NA", "is required"))?;
        let reason = r_str("reason", &reason)?;
        let number = r_number("subtask_number", &subtask)?;
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        let n = subtask_of(&e, number)?;
        e.handle
            .item_outcome(n, outcome, &key, reason.as_deref())?;
        Ok(true)
    })())
}

/// A run's log lines as data frame columns.
/// @keywords internal
#[extendr]
fn tk_run_logs(run_id: Robj, level: Robj, since: Robj, after: Robj, limit_: Robj) -> Robj {
    out((|| {
        let f = LogFilter {
            min_level: level_of(&level)?,
            since: r_time("since", &since)?,
            after_id: r_int("after", &after)?,
            limit: limit(&limit_)?,
        };
        let id = run_id_or_current(&run_id)?;
        let rows = tracker()?.run_logs(&id, &f)?;
        let mut c = Cols::new();
        c.d("log_id", rows.iter().map(|r| Some(r.log_id as f64)));
        c.s("run_id", rows.iter().map(|r| Some(r.run_id.as_str())));
        c.d("time", rows.iter().map(|r| secs(Some(r.time))));
        c.s("level", rows.iter().map(|r| Some(r.level.as_str())));
        c.i("subtask_number", rows.iter().map(|r| r.subtask_number));
        c.s("hostname", rows.iter().map(|r| r.hostname.as_deref()));
        c.i("process_id", rows.iter().map(|r| r.process_id));
        c.s("message", rows.iter().map(|r| Some(r.message.as_str())));
        c.d(
            "dropped_lines",
            rows.iter().map(|r| r.dropped_lines.map(|d| d as f64)),
        );
        Ok(c.done())
    })())
}

/// A run's kept item outcomes, with the exact counts per subtask and outcome
/// (`total`, on every row of that subtask and outcome).
/// @keywords internal
#[extendr]
fn tk_item_outcomes(run_id: Robj, subtask: Robj, outcome: Robj, limit_: Robj) -> Robj {
    out((|| {
        let f = OutcomeFilter {
            subtask: r_number("subtask_number", &subtask)?,
            outcome: r_str("outcome", &outcome)?.map(|o| o.parse()).transpose()?,
            limit: limit(&limit_)?,
        };
        let id = run_id_or_current(&run_id)?;
        let t = tracker()?;
        let rows = t.item_outcomes(&id, &f)?;
        let counts = t.item_outcome_counts(&id)?;
        let total = |n: i64, o: Outcome| {
            counts
                .iter()
                .find(|c| c.subtask_number == n && c.outcome == o)
                .map(|c| c.total)
        };
        let mut c = Cols::new();
        c.s("run_id", rows.iter().map(|r| Some(r.run_id.as_str())));
        c.i("subtask_number", rows.iter().map(|r| Some(r.subtask_number)));
        c.s("outcome", rows.iter().map(|r| Some(r.outcome.as_str())));
        c.s("item_key", rows.iter().map(|r| Some(r.item_key.as_str())));
        c.s("reason", rows.iter().map(|r| r.reason.as_deref()));
        c.d("time", rows.iter().map(|r| secs(Some(r.time))));
        c.s("hostname", rows.iter().map(|r| r.hostname.as_deref()));
        c.i("process_id", rows.iter().map(|r| r.process_id));
        c.i(
            "total",
            rows.iter().map(|r| total(r.subtask_number, r.outcome)),
        );
        Ok(c.done())
    })())
}

extendr_module! {
    mod logs;
    fn tk_log;
    fn tk_item_outcome;
    fn tk_run_logs;
    fn tk_item_outcomes;
}
