//! Run logs and item outcomes on PostgreSQL (see `crate::logs`): the reads.
//! The write is `apply_logs` in `migrations/postgres/functions.sql`, called by
//! `apply_progress` with the flush's `LogBatch` as JSON.

use ::postgres::types::Type;
use ::postgres::{Client, Row};
use chrono::{DateTime, Utc};

use crate::logs::{
    ItemOutcomeRow, LogFilter, LogLevel, LogRow, LogState, Outcome, OutcomeCount, OutcomeFilter,
};

use super::{limit_param, ts, Fail, Statements, R};

pub(super) fn log_state(c: &mut Client, st: &mut Statements, run_id: &str) -> R<Option<LogState>> {
    let Some(row) = st.opt(
        c,
        "SELECT COALESCE(s.dropped, 0), f.log_id, f.time FROM @.runs r
           LEFT JOIN @.run_log_state s ON s.run_id = r.run_id
           LEFT JOIN LATERAL (SELECT log_id, time FROM @.run_logs WHERE run_id = r.run_id
                               ORDER BY log_id LIMIT 1) f ON true
          WHERE r.run_id = $1",
        &[(&run_id, Type::TEXT)],
    )?
    else {
        return Ok(None);
    };
    let id: Option<i64> = row.try_get(1)?;
    let time: Option<DateTime<Utc>> = row.try_get(2)?;
    Ok(Some(LogState {
        dropped: row.try_get(0)?,
        first_kept: id.zip(time),
    }))
}

fn log_at(r: &Row) -> R<LogRow> {
    let level: i32 = r.try_get(3)?;
    Ok(LogRow {
        log_id: r.try_get(0)?,
        run_id: r.try_get(1)?,
        time: r.try_get(2)?,
        level: LogLevel::from_code(i64::from(level)),
        subtask_number: r.try_get(4)?,
        hostname: r.try_get(5)?,
        process_id: r.try_get(6)?,
        message: r.try_get(7)?,
        dropped_lines: None,
    })
}

pub(super) fn run_logs(
    c: &mut Client,
    st: &mut Statements,
    run_id: &str,
    f: &LogFilter,
) -> R<Vec<LogRow>> {
    let level = f.min_level.map(|l| l.code() as i32);
    let since = f.since.map(ts);
    let limit = limit_param(f.limit);
    let after = f.after_id;
    let params = [
        (
            &run_id as &(dyn ::postgres::types::ToSql + Sync),
            Type::TEXT,
        ),
        (&level, Type::INT4),
        (&since, Type::TIMESTAMPTZ),
        (&limit, Type::INT8),
        (&after, Type::INT8),
    ];
    let cols = "log_id, run_id, time, level, subtask_number, hostname, process_id, message";
    let filter = "run_id = $1 AND ($2::int4 IS NULL OR level >= $2)
        AND ($3::timestamptz IS NULL OR time >= $3)";
    let sql = match after {
        // A follower pages forward from where it is.
        Some(_) => format!(
            "SELECT {cols} FROM @.run_logs WHERE {filter} AND log_id > $5
              ORDER BY log_id LIMIT $4"
        ),
        // The newest lines, oldest first ($5 is NULL here).
        None => format!(
            "SELECT * FROM (SELECT {cols} FROM @.run_logs WHERE {filter} AND $5::int8 IS NULL
              ORDER BY log_id DESC LIMIT $4) x ORDER BY log_id"
        ),
    };
    st.all(c, &sql, &params)?.iter().map(log_at).collect()
}

fn outcome_of(s: String) -> R<Outcome> {
    s.parse().map_err(Fail::App)
}

pub(super) fn item_outcomes(
    c: &mut Client,
    st: &mut Statements,
    run_id: &str,
    f: &OutcomeFilter,
) -> R<Vec<ItemOutcomeRow>> {
    let subtask = f.subtask.map(i64::from);
    let outcome = f.outcome.map(|o| o.as_str());
    let limit = limit_param(f.limit);
    st.all(
        c,
        "SELECT outcome_id, run_id, subtask_number, outcome, item_key, reason, time, hostname,
            process_id
         FROM @.item_outcomes
         WHERE run_id = $1 AND ($2::int8 IS NULL OR subtask_number = $2)
           AND ($3::text IS NULL OR outcome = $3)
         ORDER BY subtask_number, outcome_id LIMIT $4",
        &[
            (&run_id, Type::TEXT),
            (&subtask, Type::INT8),
            (&outcome, Type::TEXT),
            (&limit, Type::INT8),
        ],
    )?
    .iter()
    .map(|r| {
        Ok(ItemOutcomeRow {
            outcome_id: r.try_get(0)?,
            run_id: r.try_get(1)?,
            subtask_number: r.try_get(2)?,
            outcome: outcome_of(r.try_get(3)?)?,
            item_key: r.try_get(4)?,
            reason: r.try_get(5)?,
            time: r.try_get(6)?,
            hostname: r.try_get(7)?,
            process_id: r.try_get(8)?,
        })
    })
    .collect()
}

pub(super) fn item_outcome_counts(
    c: &mut Client,
    st: &mut Statements,
    run_id: &str,
) -> R<Vec<OutcomeCount>> {
    st.all(
        c,
        "SELECT run_id, subtask_number, outcome, total, kept FROM @.item_outcome_counts
          WHERE run_id = $1 ORDER BY subtask_number, outcome COLLATE \"C\"",
        &[(&run_id, Type::TEXT)],
    )?
    .iter()
    .map(|r| {
        Ok(OutcomeCount {
            run_id: r.try_get(0)?,
            subtask_number: r.try_get(1)?,
            outcome: outcome_of(r.try_get(2)?)?,
            total: r.try_get(3)?,
            kept: r.try_get(4)?,
        })
    })
    .collect()
}
