//! Task dependencies and the pipeline graph with live state.
//!
//! A registered task may depend on other registered tasks (`TaskSpec::depends_on`,
//! `stage/task` names, any stage). The stores keep the edges in one table and call
//! [`plan_dependencies`] inside the registration's transaction: every name must be
//! a registered task (or one registered by the same call) and the graph must stay
//! acyclic, else the whole registration is refused and nothing is stored.
//!
//! [`Dag::build`] puts the latest run of every task on the graph and derives, for
//! each task, what its upstreams say about its next run:
//!
//! - **blocked**: an upstream's latest run FAILED, was CANCELLED or was lost, or
//!   an upstream that has not succeeded is itself blocked (so a failure blocks
//!   everything below it);
//! - **waiting**: not blocked, and an upstream's latest run has not COMPLETED (or
//!   been SKIPPED) yet.
//!
//! tasker never schedules anything: these flags describe, they do not gate.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Status, TaskSpec};
use crate::query::RunRow;

/// One dependency as stored: `stage/task` depends on `upstream_stage/upstream_task`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyRow {
    pub stage_name: String,
    pub task_name: String,
    pub upstream_stage: String,
    pub upstream_task: String,
}

/// A run's recorded wait, for statistics: stage, task, start and seconds.
pub type WaitRow = (String, String, DateTime<Utc>, f64);

/// The name of a task in dependencies, edges and messages: `stage/task`.
pub fn task_key(stage: &str, task: &str) -> String {
    format!("{stage}/{task}")
}

/// Resolves every `depends_on` of `specs` (whose stored ids are `ids`, in order)
/// against the registered `tasks` (id, stage, name) and checks that the graph,
/// `edges` (task, upstream) with the dependencies of these specs replaced, has no
/// cycle. Returns, per spec that declares dependencies, its id and its upstream
/// ids (each once). The error names the unknown task or the cycle.
pub(crate) fn plan_dependencies(
    specs: &[TaskSpec],
    ids: &[i64],
    tasks: &[(i64, String, String)],
    edges: &[(i64, i64)],
) -> Result<Vec<(i64, Vec<i64>)>> {
    let by_name: HashMap<(&str, &str), i64> = tasks
        .iter()
        .map(|(id, s, t)| ((s.as_str(), t.as_str()), *id))
        .collect();
    let mut plan: Vec<(i64, Vec<i64>)> = Vec::new();
    for (spec, &id) in specs.iter().zip(ids) {
        let Some(names) = &spec.depends_on else {
            continue;
        };
        let mut ups = Vec::with_capacity(names.len());
        for name in names {
            let up = resolve(name, &spec.stage, &by_name)?;
            if !ups.contains(&up) {
                ups.push(up);
            }
        }
        // A later spec of the same task in one call wins, as for its other fields.
        plan.retain(|(t, _)| *t != id);
        plan.push((id, ups));
    }
    if plan.is_empty() {
        return Ok(plan);
    }
    let replaced: HashSet<i64> = plan.iter().map(|(t, _)| *t).collect();
    let mut graph: HashMap<i64, Vec<i64>> = HashMap::new();
    for &(t, u) in edges.iter().filter(|(t, _)| !replaced.contains(t)) {
        graph.entry(t).or_default().push(u);
    }
    for (t, ups) in &plan {
        graph.entry(*t).or_default().extend(ups);
    }
    if let Some(cycle) = find_cycle(&graph) {
        let names: HashMap<i64, String> = tasks
            .iter()
            .map(|(id, s, t)| (*id, task_key(s, t)))
            .collect();
        let shown: Vec<&str> = cycle
            .iter()
            .map(|id| names.get(id).map_or("?", String::as_str))
            .collect();
        return Err(Error::invalid(
            "depends_on",
            shown.join(" -> "),
            "is a cycle: a task cannot depend on itself, directly or through others",
        ));
    }
    Ok(plan)
}

/// A `stage/task` name (or a bare task name, in `own_stage`) to a task id. A stage
/// or task name may itself contain `/`: every split that names a registered task
/// is a candidate, and exactly one must.
fn resolve(name: &str, own_stage: &str, by_name: &HashMap<(&str, &str), i64>) -> Result<i64> {
    let mut found: Vec<i64> = name
        .match_indices('/')
        .filter_map(|(i, _)| by_name.get(&(&name[..i], &name[i + 1..])).copied())
        .collect();
    if !name.contains('/') {
        found.extend(by_name.get(&(own_stage, name)).copied());
    }
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err(Error::invalid(
            "depends_on",
            name,
            "is not a registered task (register it first, or in the same call; \
             names are stage/task)",
        )),
        _ => Err(Error::invalid(
            "depends_on",
            name,
            "names more than one registered task (a stage or task name contains '/')",
        )),
    }
}

/// A cycle of `graph` (task -> its upstreams) as a path that ends where it
/// starts, if there is one. Iterative depth-first search: no recursion limit.
fn find_cycle(graph: &HashMap<i64, Vec<i64>>) -> Option<Vec<i64>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut mark: HashMap<i64, Mark> = HashMap::new();
    let mut roots: Vec<i64> = graph.keys().copied().collect();
    roots.sort_unstable(); // the same cycle reported for the same graph
    for root in roots {
        if mark.contains_key(&root) {
            continue;
        }
        // (node, index of the next upstream to visit); the stack is the path.
        let mut stack: Vec<(i64, usize)> = vec![(root, 0)];
        mark.insert(root, Mark::Open);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let ups = graph.get(&node).map_or(&[][..], Vec::as_slice);
            if let Some(&up) = ups.get(*next) {
                *next += 1;
                match mark.get(&up) {
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == up).unwrap_or(0);
                        let mut cycle: Vec<i64> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(up);
                        // Shown in the direction of the flow: upstream first.
                        cycle.reverse();
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        mark.insert(up, Mark::Open);
                        stack.push((up, 0));
                    }
                }
            } else {
                mark.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}

/// The pipeline as a graph: every registered task with its latest run, and the
/// dependencies between them (`from` is the upstream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    pub nodes: Vec<DagNode>,
    pub edges: Vec<DagEdge>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagEdge {
    /// The upstream task (`stage/task`).
    pub from: String,
    /// The task that depends on it.
    pub to: String,
}

/// A task on the graph, with its latest run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DagNode {
    /// `stage/task`: the name edges use.
    pub id: String,
    pub stage_name: String,
    pub task_name: String,
    pub stage_order: Option<i64>,
    pub task_order: Option<i64>,
    /// The latest run's status (NOT_STARTED for a task that never ran).
    pub status: Status,
    pub run_id: Option<String>,
    pub percent: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub lost: bool,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// The latest run's wait time (see `RunRow::wait_seconds`).
    pub wait_seconds: Option<f64>,
    /// The length of the longest path from a task without dependencies (0 for
    /// those): the column the graph draws it in.
    pub rank: usize,
    /// An upstream failed, was cancelled or lost, or is blocked itself.
    pub blocked: bool,
    /// Not blocked, and an upstream has not finished.
    pub waiting: bool,
    /// The direct upstreams that block it.
    pub blocked_by: Vec<String>,
    /// The direct upstreams it waits for.
    pub waiting_for: Vec<String>,
}

impl DagNode {
    fn succeeded(&self) -> bool {
        matches!(self.status, Status::Completed | Status::Skipped)
    }

    /// Whether a task below this one cannot expect it to succeed as things stand.
    fn broken(&self) -> bool {
        self.lost
            || matches!(self.status, Status::Failed | Status::Cancelled)
            || (self.blocked && !self.succeeded() && !self.status.is_active())
    }
}

impl Dag {
    /// Puts `rows` (the latest run of every task, derived) on the graph of `deps`
    /// and derives ranks and the blocked and waiting flags. Nodes keep the order of
    /// `rows`; edges are sorted.
    pub fn build(rows: Vec<RunRow>, deps: Vec<DependencyRow>) -> Dag {
        let mut nodes: Vec<DagNode> = rows.into_iter().map(node_of).collect();
        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let mut edges: Vec<DagEdge> = deps
            .into_iter()
            .map(|d| DagEdge {
                from: task_key(&d.upstream_stage, &d.upstream_task),
                to: task_key(&d.stage_name, &d.task_name),
            })
            .filter(|e| index.contains_key(&e.from) && index.contains_key(&e.to))
            .collect();
        edges.sort_by(|a, b| (&a.to, &a.from).cmp(&(&b.to, &b.from)));
        edges.dedup();
        let mut ups: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        let mut downs: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for e in &edges {
            let (f, t) = (index[&e.from], index[&e.to]);
            ups[t].push(f);
            downs[f].push(t);
        }
        // Kahn's order: every node after its upstreams.
        let mut pending: Vec<usize> = ups.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..nodes.len()).filter(|&i| pending[i] == 0).collect();
        let mut k = 0;
        while k < order.len() {
            let n = order[k];
            k += 1;
            for &d in &downs[n] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    order.push(d);
                }
            }
        }
        // The stores refuse cycles; should one reach the database anyway (written
        // by hand, say), its nodes go last instead of making this loop forever.
        if order.len() < nodes.len() {
            let placed: HashSet<usize> = order.iter().copied().collect();
            order.extend((0..nodes.len()).filter(|i| !placed.contains(i)));
        }
        for &n in &order {
            let mut rank = 0;
            let (mut blocked_by, mut waiting_for) = (Vec::new(), Vec::new());
            for &u in &ups[n] {
                let up = &nodes[u];
                rank = rank.max(up.rank + 1);
                if up.broken() {
                    blocked_by.push(up.id.clone());
                } else if !up.succeeded() {
                    waiting_for.push(up.id.clone());
                }
            }
            let node = &mut nodes[n];
            node.rank = rank;
            node.blocked = !blocked_by.is_empty();
            node.waiting = !node.blocked && !waiting_for.is_empty();
            node.blocked_by = blocked_by;
            node.waiting_for = waiting_for;
        }
        Dag { nodes, edges }
    }
}

/// Output formats of [`Dag::render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DagFormat {
    /// One line per task, by rank.
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub and GitLab Markdown).
    Mermaid,
    Json,
}

impl std::str::FromStr for DagFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<DagFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(DagFormat::Text),
            "dot" => Ok(DagFormat::Dot),
            "mermaid" => Ok(DagFormat::Mermaid),
            "json" => Ok(DagFormat::Json),
            _ => Err(Error::invalid(
                "format",
                s,
                "must be one of text, dot, mermaid, json",
            )),
        }
    }
}

/// The fill colour of a node: by status, lost in orange. The dashboard's
/// stylesheet uses the same colours.
pub fn status_colour(node: &DagNode) -> &'static str {
    if node.lost {
        return "#ffcc80";
    }
    match node.status {
        Status::NotStarted => "#ffffff",
        Status::Started | Status::Running => "#90caf9",
        Status::Paused => "#fff59d",
        Status::Completed => "#a5d6a7",
        Status::Failed => "#ef9a9a",
        Status::Skipped => "#e0e0e0",
        Status::Cancelled => "#bcaaa4",
    }
}

impl DagNode {
    /// The status as shown: LOST for a lost run.
    pub fn shown_status(&self) -> &'static str {
        if self.lost {
            "LOST"
        } else {
            self.status.as_str()
        }
    }

    /// "blocked by x, y", "waiting for x" or "".
    pub fn state_note(&self) -> String {
        if self.blocked {
            format!("blocked by {}", self.blocked_by.join(", "))
        } else if self.waiting {
            format!("waiting for {}", self.waiting_for.join(", "))
        } else {
            String::new()
        }
    }
}

impl Dag {
    /// The graph in `format` (JSON pretty-printed).
    pub fn render(&self, format: DagFormat) -> String {
        match format {
            DagFormat::Text => self.to_text(),
            DagFormat::Dot => self.to_dot(),
            DagFormat::Mermaid => self.to_mermaid(),
            DagFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default(),
        }
    }

    /// Each task's upstreams, by name (one pass over the edges).
    fn upstreams(&self) -> HashMap<&str, Vec<&str>> {
        let mut ups: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &self.edges {
            ups.entry(e.to.as_str()).or_default().push(e.from.as_str());
        }
        ups
    }

    /// Nodes by rank, in their order within a rank.
    fn by_rank(&self) -> Vec<&DagNode> {
        let mut nodes: Vec<&DagNode> = self.nodes.iter().collect();
        nodes.sort_by_key(|n| n.rank); // stable: keeps stage and task order
        nodes
    }

    /// One line per task by rank: its status, progress, what blocks it or what it
    /// waits for, and its upstreams.
    pub fn to_text(&self) -> String {
        if self.nodes.is_empty() {
            return "no registered tasks\n".into();
        }
        let width = self
            .nodes
            .iter()
            .map(|n| n.id.chars().count())
            .max()
            .unwrap_or(0);
        let upstreams = self.upstreams();
        let mut out = String::new();
        let mut rank = usize::MAX;
        for n in self.by_rank() {
            if n.rank != rank {
                rank = n.rank;
                out += &format!("rank {rank}\n");
            }
            let pct = match (n.status.is_active(), n.percent) {
                (true, Some(p)) => format!(" {p:.0}%"),
                _ => String::new(),
            };
            let mut line = format!(
                "  {:<width$}  {:<11}{pct}",
                n.id,
                n.shown_status(),
                width = width
            );
            let note = n.state_note();
            if !note.is_empty() {
                line += &format!("  [{note}]");
            }
            if let Some(ups) = upstreams.get(n.id.as_str()) {
                line += &format!("  <- {}", ups.join(", "));
            }
            out += line.trim_end();
            out.push('\n');
        }
        out
    }

    /// Graphviz DOT: a cluster per stage, nodes filled by status, blocked tasks
    /// with a red dashed border and waiting ones with a grey dashed border.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph tasker {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
        );
        let mut stages: Vec<&str> = Vec::new();
        for n in &self.nodes {
            if !stages.contains(&n.stage_name.as_str()) {
                stages.push(&n.stage_name);
            }
        }
        for (i, stage) in stages.iter().enumerate() {
            out += &format!(
                "  subgraph cluster_{i} {{\n    label={};\n    style=dashed;\n",
                dot_str(stage)
            );
            for n in self.nodes.iter().filter(|n| n.stage_name == *stage) {
                let mut label = format!("{}\n{}", n.task_name, n.shown_status());
                if let (true, Some(p)) = (n.status.is_active(), n.percent) {
                    label += &format!(" {p:.0}%");
                }
                let note = n.state_note();
                if !note.is_empty() {
                    label += &format!("\n{note}");
                }
                let border = if n.blocked {
                    ", color=\"#c62828\", style=\"rounded,filled,dashed\""
                } else if n.waiting {
                    ", color=\"#757575\", style=\"rounded,filled,dashed\""
                } else {
                    ""
                };
                out += &format!(
                    "    {} [label={}, fillcolor=\"{}\"{border}];\n",
                    dot_str(&n.id),
                    dot_str(&label),
                    status_colour(n)
                );
            }
            out += "  }\n";
        }
        for e in &self.edges {
            out += &format!("  {} -> {};\n", dot_str(&e.from), dot_str(&e.to));
        }
        out += "}\n";
        out
    }

    /// A Mermaid flowchart. Node ids are generated (`n0`, `n1`, ...): task names
    /// may hold anything, so they only appear in escaped labels.
    pub fn to_mermaid(&self) -> String {
        let id: HashMap<&str, String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
            .collect();
        let mut out = String::from("flowchart LR\n");
        for n in &self.nodes {
            let mut label = format!("{}<br/>{}", mermaid_str(&n.id), n.shown_status());
            let note = n.state_note();
            if !note.is_empty() {
                label += &format!("<br/>{}", mermaid_str(&note));
            }
            out += &format!("  {}[\"{label}\"]\n", id[n.id.as_str()]);
        }
        for e in &self.edges {
            out += &format!("  {} --> {}\n", id[e.from.as_str()], id[e.to.as_str()]);
        }
        for n in &self.nodes {
            let stroke = if n.blocked {
                ",stroke:#c62828,stroke-dasharray:4"
            } else if n.waiting {
                ",stroke:#757575,stroke-dasharray:4"
            } else {
                ""
            };
            out += &format!(
                "  style {} fill:{}{stroke}\n",
                id[n.id.as_str()],
                status_colour(n)
            );
        }
        out
    }
}

/// A DOT double-quoted string: quotes and backslashes escaped, line breaks as
/// `\n` (a label's own line breaks come in as real newlines).
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text inside a Mermaid quoted label: its markup characters as entity codes.
fn mermaid_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out += "#quot;",
            '<' => out += "#lt;",
            '>' => out += "#gt;",
            '#' => out += "#35;",
            '&' => out += "#amp;",
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn node_of(r: RunRow) -> DagNode {
    DagNode {
        id: task_key(&r.stage_name, &r.task_name),
        stage_name: r.stage_name,
        task_name: r.task_name,
        stage_order: r.stage_order,
        task_order: r.task_order,
        status: r.status,
        run_id: r.run_id,
        percent: r.overall_percent_complete,
        eta_seconds: r.eta_seconds,
        lost: r.lost,
        start_time: r.start_time,
        end_time: r.end_time,
        duration_seconds: r.duration_seconds,
        wait_seconds: r.wait_seconds,
        rank: 0,
        blocked: false,
        waiting: false,
        blocked_by: Vec::new(),
        waiting_for: Vec::new(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn tasks() -> Vec<(i64, String, String)> {
        [(1, "a", "x"), (2, "a", "y"), (3, "b", "z"), (4, "b/c", "w")]
            .into_iter()
            .map(|(i, s, t)| (i, s.to_string(), t.to_string()))
            .collect()
    }

    fn spec(stage: &str, name: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            depends_on: Some(deps.iter().map(|d| d.to_string()).collect()),
            ..TaskSpec::new(stage, name)
        }
    }

    #[test]
    fn names_resolve_across_stages_and_bare_names_within_the_stage() {
        let plan = plan_dependencies(
            &[spec("b", "z", &["a/x", "a/y", "a/x"])],
            &[3],
            &tasks(),
            &[],
        )
        .unwrap();
        assert_eq!(plan, vec![(3, vec![1, 2])]);
        let plan = plan_dependencies(&[spec("a", "y", &["x"])], &[2], &tasks(), &[]).unwrap();
        assert_eq!(plan, vec![(2, vec![1])]);
        // A stage name with a '/' in it still resolves: only one split names a task.
        let plan = plan_dependencies(&[spec("a", "x", &["b/c/w"])], &[1], &tasks(), &[]).unwrap();
        assert_eq!(plan, vec![(1, vec![4])]);
    }

    #[test]
    fn an_unknown_name_is_refused_by_name() {
        let err = plan_dependencies(&[spec("b", "z", &["a/x", "a/nope"])], &[3], &tasks(), &[])
            .unwrap_err();
        assert!(err.to_string().contains("a/nope"), "{err}");
        assert!(err.to_string().contains("not a registered task"), "{err}");
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        // x <- y <- z exists; x depending on z closes the loop.
        let edges = [(2, 1), (3, 2)];
        let err =
            plan_dependencies(&[spec("a", "x", &["b/z"])], &[1], &tasks(), &edges).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a/x -> a/y -> b/z -> a/x"), "{msg}");
        let err = plan_dependencies(&[spec("a", "x", &["x"])], &[1], &tasks(), &[]).unwrap_err();
        assert!(err.to_string().contains("a/x -> a/x"), "{err}");
        // Replacing the dependencies that made the path breaks the cycle.
        let ok = plan_dependencies(
            &[spec("a", "y", &[]), spec("a", "x", &["b/z"])],
            &[2, 1],
            &tasks(),
            &edges,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    fn hostile() -> Dag {
        let row = |stage: &str, task: &str, status: Status| -> RunRow {
            serde_json::from_value(serde_json::json!({
                "stage_name": stage, "task_name": task, "status": status,
                "subtasks_completed": 0, "lost": false,
            }))
            .unwrap()
        };
        Dag::build(
            vec![
                row("in\"put", "a\\b\n<i>#1", Status::Failed),
                row("out", "c", Status::NotStarted),
            ],
            vec![DependencyRow {
                stage_name: "out".into(),
                task_name: "c".into(),
                upstream_stage: "in\"put".into(),
                upstream_task: "a\\b\n<i>#1".into(),
            }],
        )
    }

    #[test]
    fn renderings_escape_names_and_show_state() {
        let dag = hostile();
        let c = &dag.nodes[1];
        assert!(c.blocked && c.rank == 1, "{c:?}");
        let dot = dag.to_dot();
        assert!(
            dot.contains(r#""in\"put/a\\b\n<i>#1" -> "out/c";"#),
            "{dot}"
        );
        assert!(dot.contains("fillcolor=\"#ef9a9a\""), "{dot}");
        let mermaid = dag.to_mermaid();
        assert!(mermaid.contains("n0 --> n1"), "{mermaid}");
        assert!(
            mermaid.contains("in#quot;put/a\\b #lt;i#gt;#35;1<br/>FAILED"),
            "{mermaid}"
        );
        let text = dag.to_text();
        assert!(text.contains("rank 1"), "{text}");
        assert!(text.contains("[blocked by in\"put/a\\b"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&dag.render(DagFormat::Json)).unwrap();
        assert_eq!(json["edges"][0]["to"], "out/c");
        assert_eq!("MERMAID".parse::<DagFormat>().unwrap(), DagFormat::Mermaid);
        assert!("svg"
            .parse::<DagFormat>()
            .unwrap_err()
            .to_string()
            .contains("svg"));
    }
}
