//! Run logs and item outcomes on SQLite (see `crate::logs`): the write of a
//! flush's `LogBatch`, inside the flush's transaction, and the reads.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::logs::{
    ItemOutcomeRow, LogBatch, LogFilter, LogLevel, LogRow, LogState, OutcomeCount, OutcomeFilter,
    MAX_ITEM_OUTCOMES,
};

use super::{db_err, limit_param, parse_ts, ts};

/// The stored number of a subtask named by identity (else by `number`).
const SUBTASK_NUMBER: &str = "COALESCE((SELECT subtask_number FROM subtasks
    WHERE run_id = ?1 AND subtask_uid = ?2), ?3)";

/// Writes a flush's lines and outcomes; lines and outcomes of runs that do not
/// exist (deleted meanwhile) are dropped.
pub(super) fn apply_logs(tx: &Connection, b: &LogBatch) -> Result<()> {
    for l in &b.lines {
        tx.prepare_cached(&format!(
            "INSERT INTO run_logs(run_id, time, level, subtask_number, hostname, process_id, message)
             SELECT ?1, ?4, ?5, {SUBTASK_NUMBER}, ?6, ?7, ?8
              WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)"
        ))
        .and_then(|mut st| {
            st.execute(params![
                &*l.run_id,
                l.subtask_uid.as_deref(),
                l.subtask,
                ts(l.time),
                l.level.code(),
                b.host,
                b.pid,
                l.message,
            ])
        })
        .map_err(db_err)?;
    }
    for (run_id, added, dropped) in b.lines_per_run() {
        bound_lines(tx, run_id, added, dropped, b.max_lines)?;
    }
    for o in &b.outcomes {
        let kept = count_outcomes(
            tx,
            &o.run_id,
            o.subtask_uid.as_deref(),
            o.subtask,
            o.outcome.as_str(),
            1,
        )?;
        if kept.is_some_and(|k| k < i64::from(MAX_ITEM_OUTCOMES)) {
            tx.prepare_cached(&format!(
                "INSERT INTO item_outcomes(run_id, subtask_number, outcome, item_key, reason,
                    time, hostname, process_id)
                 VALUES (?1, {SUBTASK_NUMBER}, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    &*o.run_id,
                    o.subtask_uid.as_deref(),
                    o.subtask,
                    o.outcome.as_str(),
                    o.key,
                    o.reason,
                    ts(o.time),
                    b.host,
                    b.pid,
                ])
            })
            .map_err(db_err)?;
            tx.prepare_cached(&format!(
                "UPDATE item_outcome_counts SET kept = kept + 1
                  WHERE run_id = ?1 AND subtask_number = {SUBTASK_NUMBER} AND outcome = ?4"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    &*o.run_id,
                    o.subtask_uid.as_deref(),
                    o.subtask,
                    o.outcome.as_str()
                ])
            })
            .map_err(db_err)?;
        }
    }
    for c in &b.counted {
        count_outcomes(
            tx,
            &c.run_id,
            c.subtask_uid.as_deref(),
            c.subtask,
            c.outcome.as_str(),
            c.count,
        )?;
    }
    Ok(())
}

/// Adds `added` lines (and `dropped` in memory) to what a run keeps; drops its
/// oldest lines beyond `max`, counting them.
fn bound_lines(tx: &Connection, run_id: &str, added: u64, dropped: u64, max: u32) -> Result<()> {
    let kept: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO run_log_state(run_id, kept, dropped)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)
             ON CONFLICT(run_id) DO UPDATE SET kept = kept + excluded.kept,
                dropped = dropped + excluded.dropped
             RETURNING kept",
        )
        .and_then(|mut st| {
            st.query_row(params![run_id, added as i64, dropped as i64], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?;
    let excess = kept.unwrap_or(0) - i64::from(max.max(1));
    if excess > 0 {
        tx.prepare_cached(
            "DELETE FROM run_logs WHERE log_id IN (
                SELECT log_id FROM run_logs WHERE run_id = ?1 ORDER BY log_id LIMIT ?2)",
        )
        .and_then(|mut st| st.execute(params![run_id, excess]))
        .map_err(db_err)?;
        tx.prepare_cached(
            "UPDATE run_log_state SET kept = kept - ?2, dropped = dropped + ?2 WHERE run_id = ?1",
        )
        .and_then(|mut st| st.execute(params![run_id, excess]))
        .map_err(db_err)?;
    }
    Ok(())
}

/// Counts `n` outcomes of a subtask; how many rows it kept before them (`None`
/// when the run does not exist).
fn count_outcomes(
    tx: &Connection,
    run_id: &str,
    uid: Option<&str>,
    number: u32,
    outcome: &str,
    n: u64,
) -> Result<Option<i64>> {
    tx.prepare_cached(&format!(
        "INSERT INTO item_outcome_counts(run_id, subtask_number, outcome, total, kept)
         SELECT ?1, {SUBTASK_NUMBER}, ?4, ?5, 0 WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)
         ON CONFLICT(run_id, subtask_number, outcome) DO UPDATE SET total = total + excluded.total
         RETURNING kept"
    ))
    .and_then(|mut st| {
        st.query_row(params![run_id, uid, number, outcome, n as i64], |r| {
            r.get(0)
        })
        .optional()
    })
    .map_err(db_err)
}

/// `None` when the run does not exist.
pub(super) fn log_state(c: &Connection, run_id: &str) -> Result<Option<LogState>> {
    let found: Option<(i64, Option<i64>, Option<String>)> = c
        .prepare_cached(
            "SELECT COALESCE(s.dropped, 0), f.log_id, f.time FROM runs r
               LEFT JOIN run_log_state s ON s.run_id = r.run_id
               LEFT JOIN (SELECT log_id, time FROM run_logs WHERE run_id = ?1
                          ORDER BY log_id LIMIT 1) f ON 1
              WHERE r.run_id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db_err)?;
    let Some((dropped, id, time)) = found else {
        return Ok(None);
    };
    let first_kept = match (id, time) {
        (Some(id), Some(t)) => Some((id, parse_ts(&t).map_err(db_err)?)),
        _ => None,
    };
    Ok(Some(LogState {
        dropped,
        first_kept,
    }))
}

fn map_log(r: &Row<'_>) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        log_id: r.get(0)?,
        run_id: r.get(1)?,
        time: parse_ts(&r.get::<_, String>(2)?)?,
        level: LogLevel::from_code(r.get(3)?),
        subtask_number: r.get(4)?,
        hostname: r.get(5)?,
        process_id: r.get(6)?,
        message: r.get(7)?,
        dropped_lines: None,
    })
}

pub(super) fn run_logs(c: &Connection, run_id: &str, f: &LogFilter) -> Result<Vec<LogRow>> {
    let level = f.min_level.map(LogLevel::code);
    let since = f.since.map(ts);
    let limit = limit_param(f.limit);
    let cols = "log_id, run_id, time, level, subtask_number, hostname, process_id, message";
    let filter = "run_id = ?1 AND (?2 IS NULL OR level >= ?2) AND (?3 IS NULL OR time >= ?3)";
    let rows: Vec<LogRow> = match f.after_id {
        // A follower pages forward from where it is.
        Some(after) => c
            .prepare_cached(&format!(
                "SELECT {cols} FROM run_logs WHERE {filter} AND log_id > ?4
                  ORDER BY log_id LIMIT ?5"
            ))
            .and_then(|mut st| {
                st.query_map(params![run_id, level, since, after, limit], map_log)?
                    .collect()
            }),
        // The newest lines, oldest first.
        None => c
            .prepare_cached(&format!(
                "SELECT * FROM (SELECT {cols} FROM run_logs WHERE {filter}
                  ORDER BY log_id DESC LIMIT ?4) ORDER BY log_id"
            ))
            .and_then(|mut st| {
                st.query_map(params![run_id, level, since, limit], map_log)?
                    .collect()
            }),
    }
    .map_err(db_err)?;
    Ok(rows)
}

pub(super) fn item_outcomes(
    c: &Connection,
    run_id: &str,
    f: &OutcomeFilter,
) -> Result<Vec<ItemOutcomeRow>> {
    c.prepare_cached(
        "SELECT outcome_id, run_id, subtask_number, outcome, item_key, reason, time, hostname,
            process_id
         FROM item_outcomes
         WHERE run_id = ?1 AND (?2 IS NULL OR subtask_number = ?2) AND (?3 IS NULL OR outcome = ?3)
         ORDER BY subtask_number, outcome_id LIMIT ?4",
    )
    .and_then(|mut st| {
        st.query_map(
            params![
                run_id,
                f.subtask,
                f.outcome.map(|o| o.as_str()),
                limit_param(f.limit)
            ],
            |r| {
                Ok(ItemOutcomeRow {
                    outcome_id: r.get(0)?,
                    run_id: r.get(1)?,
                    subtask_number: r.get(2)?,
                    outcome: outcome_col(r, 3)?,
                    item_key: r.get(4)?,
                    reason: r.get(5)?,
                    time: parse_ts(&r.get::<_, String>(6)?)?,
                    hostname: r.get(7)?,
                    process_id: r.get(8)?,
                })
            },
        )?
        .collect()
    })
    .map_err(db_err)
}

pub(super) fn item_outcome_counts(c: &Connection, run_id: &str) -> Result<Vec<OutcomeCount>> {
    c.prepare_cached(
        "SELECT run_id, subtask_number, outcome, total, kept FROM item_outcome_counts
          WHERE run_id = ?1 ORDER BY subtask_number, outcome",
    )
    .and_then(|mut st| {
        st.query_map([run_id], |r| {
            Ok(OutcomeCount {
                run_id: r.get(0)?,
                subtask_number: r.get(1)?,
                outcome: outcome_col(r, 2)?,
                total: r.get(3)?,
                kept: r.get(4)?,
            })
        })?
        .collect()
    })
    .map_err(db_err)
}

fn outcome_col(r: &Row<'_>, i: usize) -> rusqlite::Result<crate::logs::Outcome> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: crate::error::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}
