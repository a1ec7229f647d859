//! The pipeline graph from R: `get_dag()` returns the core's graph (`Tracker::dag`)
//! as two data frames (nodes, edges) plus the core's JSON, which the print and
//! format methods hand back to the core's renderings (text, dot, mermaid).

use extendr_api::prelude::*;
use tasker::dag::DagFormat;
use tasker::{Dag, Error as TkError};

use crate::{out, r_str, tracker, Cols, TkResult};

fn secs(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<f64> {
    t.map(|t| t.timestamp_micros() as f64 / 1e6)
}

fn node_cols(dag: &Dag) -> Robj {
    let n = &dag.nodes;
    let mut c = Cols::new();
    c.s("id", n.iter().map(|r| Some(r.id.as_str())));
    c.s("stage_name", n.iter().map(|r| Some(r.stage_name.as_str())));
    c.s("task_name", n.iter().map(|r| Some(r.task_name.as_str())));
    c.s("status", n.iter().map(|r| Some(r.status.as_str())));
    c.s("run_id", n.iter().map(|r| r.run_id.as_deref()));
    c.d("percent", n.iter().map(|r| r.percent));
    c.d("eta_seconds", n.iter().map(|r| r.eta_seconds));
    c.b("lost", n.iter().map(|r| r.lost));
    c.d("start_time", n.iter().map(|r| secs(r.start_time)));
    c.d("end_time", n.iter().map(|r| secs(r.end_time)));
    c.d("duration_seconds", n.iter().map(|r| r.duration_seconds));
    c.d("wait_seconds", n.iter().map(|r| r.wait_seconds));
    c.i("rank", n.iter().map(|r| Some(r.rank as i64)));
    c.b("blocked", n.iter().map(|r| r.blocked));
    c.b("waiting", n.iter().map(|r| r.waiting));
    // Several names per task: one string, comma-separated ("" for none).
    let blocked_by: Vec<String> = n.iter().map(|r| r.blocked_by.join(", ")).collect();
    c.s("blocked_by", blocked_by.iter().map(|s| Some(s.as_str())));
    let waiting_for: Vec<String> = n.iter().map(|r| r.waiting_for.join(", ")).collect();
    c.s("waiting_for", waiting_for.iter().map(|s| Some(s.as_str())));
    c.done()
}

fn edge_cols(dag: &Dag) -> Robj {
    let mut c = Cols::new();
    c.s("from", dag.edges.iter().map(|e| Some(e.from.as_str())));
    c.s("to", dag.edges.iter().map(|e| Some(e.to.as_str())));
    c.done()
}

/// The graph: list(nodes = columns, edges = columns, json = the core's JSON).
/// @keywords internal
#[extendr]
fn tk_dag() -> Robj {
    out((|| -> TkResult<Robj> {
        let dag = tracker()?.dag()?;
        let json = serde_json::to_string(&dag)
            .map_err(|e| TkError::invalid("graph", "json", &e.to_string()))?;
        Ok(list!(
            nodes = node_cols(&dag),
            edges = edge_cols(&dag),
            json = json
        )
        .into())
    })())
}

/// Renders the JSON of `tk_dag` as text, dot, mermaid or json.
/// @keywords internal
#[extendr]
fn tk_render_dag(json: Robj, format: Robj) -> Robj {
    out((|| -> TkResult<Robj> {
        let json = r_str("json", &json)?.unwrap_or_default();
        let format: DagFormat = r_str("format", &format)?
            .unwrap_or_else(|| "text".into())
            .parse()?;
        let dag: Dag = serde_json::from_str(&json)
            .map_err(|e| TkError::invalid("graph", "json", &e.to_string()))?;
        Ok(Robj::from(dag.render(format)))
    })())
}

extendr_module! {
    mod dag;
    fn tk_dag;
    fn tk_render_dag;
}
