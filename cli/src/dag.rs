//! `tasker dag`: the pipeline as a graph with live state (one core query,
//! `Tracker::dag`), as text, Graphviz DOT, a Mermaid flowchart or JSON. The
//! renderings live in the core (`tasker::dag`) so every language prints the same.

use clap::{Args, ValueEnum};
use tasker::dag::DagFormat;

use crate::{CliResult, Global};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per task, by rank, with what blocks it or what it waits for.
    Text,
    /// Graphviz DOT: `tasker dag --format dot | dot -Tsvg > dag.svg`.
    Dot,
    /// A Mermaid flowchart (renders in GitHub/GitLab Markdown).
    Mermaid,
    /// Nodes (tasks with their latest run, blocked/waiting, rank) and edges.
    Json,
}

#[derive(Debug, Args)]
pub struct DagArgs {
    /// How to print the graph: text, dot (Graphviz), mermaid or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only the tasks of this stage and the edges between them.
    #[arg(long)]
    pub stage: Option<String>,
}

pub fn dag(g: &Global, a: &DagArgs) -> CliResult {
    let t = g.open(false)?;
    let mut dag = t.dag()?;
    if let Some(stage) = &a.stage {
        dag.nodes.retain(|n| &n.stage_name == stage);
        let keep: std::collections::HashSet<&str> =
            dag.nodes.iter().map(|n| n.id.as_str()).collect();
        let edges = std::mem::take(&mut dag.edges);
        dag.edges = edges
            .into_iter()
            .filter(|e| keep.contains(e.from.as_str()) && keep.contains(e.to.as_str()))
            .collect();
    }
    let format = match a.format {
        Format::Text => DagFormat::Text,
        Format::Dot => DagFormat::Dot,
        Format::Mermaid => DagFormat::Mermaid,
        Format::Json => DagFormat::Json,
    };
    let mut out = dag.render(format);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}
