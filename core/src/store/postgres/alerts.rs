//! Alerts on PostgreSQL (see `crate::alerts`): the claim of an incident, the
//! lease of due retries, outcomes and the list. Each write is one statement;
//! the lease skips rows another evaluator has locked, so two evaluators never
//! take the same one.

use ::postgres::types::Type;
use ::postgres::{Client, Row};
use chrono::{DateTime, Utc};

use crate::alerts::{AlertFilter, AlertOutcome, AlertRow, NewAlert};

use super::{limit_param, ts, Statements, R};

const COLUMNS: &str = "id, rule, incident_key, kind, destination, run_id, stage_name,
    task_name, fired_at, payload, attempts, delivered_at, last_error, next_attempt_at";

pub(super) fn claim(c: &mut Client, st: &mut Statements, new: &NewAlert) -> R<Option<i64>> {
    let payload = serde_json::to_value(&new.alert).unwrap_or(serde_json::Value::Null);
    let fired = ts(new.alert.fired_at);
    let lease = ts(new.lease_until);
    let row = st.opt(
        c,
        "INSERT INTO @.alerts(rule, incident_key, kind, destination, run_id, stage_name,
             task_name, fired_at, payload, attempts, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10)
         ON CONFLICT (rule, incident_key) DO NOTHING RETURNING id",
        &[
            (&new.rule, Type::TEXT),
            (&new.incident_key, Type::TEXT),
            (&new.alert.kind, Type::TEXT),
            (&new.destination, Type::TEXT),
            (&new.alert.run_id, Type::TEXT),
            (&new.alert.stage, Type::TEXT),
            (&new.alert.task, Type::TEXT),
            (&fired, Type::TIMESTAMPTZ),
            (&payload, Type::JSONB),
            (&lease, Type::TIMESTAMPTZ),
        ],
    )?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub(super) fn due(
    c: &mut Client,
    st: &mut Statements,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_attempts: u32,
    only: Option<i64>,
    limit: usize,
) -> R<Vec<AlertRow>> {
    let now = ts(now);
    let lease = ts(lease_until);
    let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let limit = limit_param(Some(limit));
    st.all(
        c,
        &format!(
            "UPDATE @.alerts SET attempts = attempts + 1, next_attempt_at = $2
              WHERE id IN (SELECT id FROM @.alerts
                            WHERE delivered_at IS NULL AND next_attempt_at <= $1
                              AND attempts < $3 AND ($4::int8 IS NULL OR id = $4)
                            ORDER BY next_attempt_at LIMIT $5
                            FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        ),
        &[
            (&now, Type::TIMESTAMPTZ),
            (&lease, Type::TIMESTAMPTZ),
            (&max, Type::INT4),
            (&only, Type::INT8),
            (&limit, Type::INT8),
        ],
    )?
    .iter()
    .map(row)
    .collect()
}

pub(super) fn outcome(
    c: &mut Client,
    st: &mut Statements,
    id: i64,
    outcome: &AlertOutcome,
) -> R<()> {
    let (delivered, error, next) = match outcome {
        AlertOutcome::Delivered { at } => (Some(ts(*at)), None, None),
        AlertOutcome::Failed { error, retry_at } => (None, Some(error.clone()), retry_at.map(ts)),
    };
    st.exec(
        c,
        "UPDATE @.alerts SET delivered_at = $2, last_error = COALESCE($3, last_error),
                next_attempt_at = $4
          WHERE id = $1",
        &[
            (&id, Type::INT8),
            (&delivered, Type::TIMESTAMPTZ),
            (&error, Type::TEXT),
            (&next, Type::TIMESTAMPTZ),
        ],
    )?;
    Ok(())
}

pub(super) fn list(c: &mut Client, st: &mut Statements, f: &AlertFilter) -> R<Vec<AlertRow>> {
    let limit = limit_param(Some(f.limit.unwrap_or(crate::query::DEFAULT_HISTORY_LIMIT)));
    st.all(
        c,
        &format!(
            "SELECT {COLUMNS} FROM @.alerts
              WHERE ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR run_id = $2)
                AND (NOT $3 OR delivered_at IS NULL)
              ORDER BY fired_at DESC, id DESC LIMIT $4"
        ),
        &[
            (&f.rule, Type::TEXT),
            (&f.run_id, Type::TEXT),
            (&f.undelivered, Type::BOOL),
            (&limit, Type::INT8),
        ],
    )?
    .iter()
    .map(row)
    .collect()
}

fn row(r: &Row) -> R<AlertRow> {
    let attempts: i32 = r.try_get(10)?;
    Ok(AlertRow {
        id: r.try_get(0)?,
        rule: r.try_get(1)?,
        incident_key: r.try_get(2)?,
        kind: r.try_get(3)?,
        destination: r.try_get(4)?,
        run_id: r.try_get(5)?,
        stage: r.try_get(6)?,
        task: r.try_get(7)?,
        fired_at: r.try_get(8)?,
        payload: r.try_get(9)?,
        attempts: i64::from(attempts),
        delivered_at: r.try_get(11)?,
        last_error: r.try_get(12)?,
        next_attempt_at: r.try_get(13)?,
    })
}
