//! Alerts on SQLite (see `crate::alerts`): the claim of an incident, the lease
//! of due retries, outcomes and the list. Each write is one statement, atomic
//! under SQLite's write lock, so two evaluators never claim or lease one row.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::alerts::{AlertFilter, AlertOutcome, AlertRow, NewAlert};
use crate::error::{Error, Result};

use super::{db_err, limit_param, parse_ts, ts};

const COLUMNS: &str = "id, rule, incident_key, kind, destination, run_id, stage_name,
    task_name, fired_at, payload, attempts, delivered_at, last_error, next_attempt_at";

pub(super) fn claim(conn: &Connection, new: &NewAlert) -> Result<Option<i64>> {
    let payload =
        serde_json::to_string(&new.alert).map_err(|e| Error::storage_refused("sqlite", e))?;
    conn.prepare_cached(
        "INSERT INTO alerts(rule, incident_key, kind, destination, run_id, stage_name,
             task_name, fired_at, payload, attempts, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10)
         ON CONFLICT (rule, incident_key) DO NOTHING RETURNING id",
    )
    .and_then(|mut st| {
        st.query_row(
            params![
                new.rule,
                new.incident_key,
                new.alert.kind,
                new.destination,
                new.alert.run_id,
                new.alert.stage,
                new.alert.task,
                ts(new.alert.fired_at),
                payload,
                ts(new.lease_until),
            ],
            |r| r.get(0),
        )
        .optional()
    })
    .map_err(db_err)
}

pub(super) fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_attempts: u32,
    only: Option<i64>,
    limit: usize,
) -> Result<Vec<AlertRow>> {
    conn.prepare_cached(&format!(
        "UPDATE alerts SET attempts = attempts + 1, next_attempt_at = ?2
          WHERE id IN (SELECT id FROM alerts
                        WHERE delivered_at IS NULL AND next_attempt_at <= ?1
                          AND attempts < ?3 AND (?4 IS NULL OR id = ?4)
                        ORDER BY next_attempt_at LIMIT ?5)
         RETURNING {COLUMNS}"
    ))
    .and_then(|mut st| {
        st.query_map(
            params![
                ts(now),
                ts(lease_until),
                max_attempts,
                only,
                limit_param(Some(limit))
            ],
            row,
        )?
        .collect()
    })
    .map_err(db_err)
}

pub(super) fn outcome(conn: &Connection, id: i64, outcome: &AlertOutcome) -> Result<()> {
    let (delivered, error, next) = match outcome {
        AlertOutcome::Delivered { at } => (Some(ts(*at)), None, None),
        AlertOutcome::Failed { error, retry_at } => (None, Some(error.as_str()), retry_at.map(ts)),
    };
    conn.prepare_cached(
        "UPDATE alerts SET delivered_at = ?2, last_error = COALESCE(?3, last_error),
                next_attempt_at = ?4
          WHERE id = ?1",
    )
    .and_then(|mut st| st.execute(params![id, delivered, error, next]))
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn list(conn: &Connection, f: &AlertFilter) -> Result<Vec<AlertRow>> {
    let limit = f.limit.unwrap_or(crate::query::DEFAULT_HISTORY_LIMIT);
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts
          WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR run_id = ?2)
            AND (NOT ?3 OR delivered_at IS NULL)
          ORDER BY fired_at DESC, id DESC LIMIT ?4"
    ))
    .and_then(|mut st| {
        st.query_map(
            params![f.rule, f.run_id, f.undelivered, limit_param(Some(limit))],
            row,
        )?
        .collect()
    })
    .map_err(db_err)
}

fn row(r: &Row) -> rusqlite::Result<AlertRow> {
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        r.get::<_, Option<String>>(i)?
            .map(|s| parse_ts(&s))
            .transpose()
    };
    let payload: String = r.get(9)?;
    Ok(AlertRow {
        id: r.get(0)?,
        rule: r.get(1)?,
        incident_key: r.get(2)?,
        kind: r.get(3)?,
        destination: r.get(4)?,
        run_id: r.get(5)?,
        stage: r.get(6)?,
        task: r.get(7)?,
        fired_at: parse_ts(&r.get::<_, String>(8)?)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        attempts: r.get(10)?,
        delivered_at: time(11)?,
        last_error: r.get(12)?,
        next_attempt_at: time(13)?,
    })
}
