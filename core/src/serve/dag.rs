//! `/api/v1/dag`: the pipeline graph with live state (`Tracker::dag`), read on a
//! blocking thread per request. The dashboard's DAG page reads it when the event
//! stream says something changed (at most about once a second).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{blocking, ApiError, Shared};

pub(super) async fn api_dag(State(app): State<Shared>) -> Result<Response, ApiError> {
    let dag = blocking(&app, |t| Ok(t.dag()?)).await?;
    Ok(Json(dag).into_response())
}
