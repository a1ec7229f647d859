//! The JSON API of run logs and item outcomes: `/api/v1/runs/{id}/logs` (a
//! run's lines, oldest first; `after` pages forward, so the dashboard polls it
//! for the live tail) and `/api/v1/runs/{id}/items` (failed and skipped items
//! with their exact counts). Messages are returned as stored: the dashboard
//! puts them in the page as text, never as markup.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{bad, blocking, when, ApiError, Shared};
use crate::logs::{LogFilter, LogLevel, Outcome, OutcomeFilter};

/// Lines per answer at most (a follower asks again from the last one).
const MAX_LINES: usize = 10_000;

#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    level: Option<String>,
    after: Option<i64>,
    since: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn api_run_logs(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let min_level = match q.level.as_deref().filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => Some(l.parse::<LogLevel>().map_err(|e| bad(e.to_string()))?),
    };
    let filter = LogFilter {
        min_level,
        since: when(&q.since, "since")?,
        after_id: q.after,
        limit: Some(q.limit.unwrap_or(1000).clamp(1, MAX_LINES)),
    };
    let rows = blocking(&app, move |t| Ok(t.run_logs(&id, &filter)?)).await?;
    Ok(Json(rows).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ItemsQuery {
    outcome: Option<String>,
    subtask: Option<u32>,
    limit: Option<usize>,
}

pub(super) async fn api_run_items(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Result<Response, ApiError> {
    let outcome = match q.outcome.as_deref().filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(o.parse::<Outcome>().map_err(|e| bad(e.to_string()))?),
    };
    let filter = OutcomeFilter {
        subtask: q.subtask,
        outcome,
        limit: Some(q.limit.unwrap_or(1000).clamp(1, MAX_LINES)),
    };
    let (counts, items) = blocking(&app, move |t| {
        Ok((t.item_outcome_counts(&id)?, t.item_outcomes(&id, &filter)?))
    })
    .await?;
    Ok(Json(serde_json::json!({ "counts": counts, "items": items })).into_response())
}
