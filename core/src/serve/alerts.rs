//! `/api/v1/alerts`: the recorded alerts, newest first (`Tracker::alerts`), as
//! `tasker alerts --json`: destination names only, errors without secrets.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{blocking, ApiError, Shared};

#[derive(Debug, Deserialize)]
pub(super) struct AlertsQuery {
    rule: Option<String>,
    run_id: Option<String>,
    undelivered: Option<bool>,
    limit: Option<usize>,
}

pub(super) async fn api_alerts(
    State(app): State<Shared>,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let blank = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = crate::AlertFilter {
        rule: blank(q.rule),
        run_id: blank(q.run_id),
        undelivered: q.undelivered.unwrap_or(false),
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
    };
    let rows = blocking(&app, move |t| Ok(t.alerts(&filter)?)).await?;
    Ok(Json(rows).into_response())
}
