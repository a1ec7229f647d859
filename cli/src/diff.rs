//! `tasker diff RUN1 RUN2`: what changed between two runs (usually of one
//! task): inputs, outputs, status and duration, and the captured metadata.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;
use tasker::{Direction, IoRecord, RunRow, Tracker};

use crate::cmd::print_json;
use crate::fmt::{self, Style};
use crate::{CliResult, Global};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run (as printed by `tasker history`).
    pub run1: String,
    /// The later run.
    pub run2: String,
    /// Print the changes as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One field that differs: its value in each run (`None`: absent there).
#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunDiff {
    pub run1: String,
    pub run2: String,
    pub same_task: bool,
    pub duration_seconds: [Option<f64>; 2],
    /// Run 2's duration over run 1's.
    pub duration_ratio: Option<f64>,
    pub run: Vec<Change>,
    pub inputs: Vec<Change>,
    pub outputs: Vec<Change>,
}

pub fn diff(g: &Global, a: &DiffArgs) -> CliResult {
    let t = g.open(false)?;
    let (id1, id2) = (
        crate::cmd::resolve_run(&t, &a.run1)?,
        crate::cmd::resolve_run(&t, &a.run2)?,
    );
    let d = run_diff(&t, &id1, &id2)?;
    if a.json {
        return print_json(&d);
    }
    print!("{}", render(&Style::detect(g.color), &d));
    Ok(())
}

pub fn run_diff(t: &Tracker, id1: &str, id2: &str) -> tasker::Result<RunDiff> {
    let (r1, r2) = (t.run(id1)?, t.run(id2)?);
    let (io1, io2) = (t.run_io(id1)?, t.run_io(id2)?);
    let records = |rows: &[tasker::IoRow], dir| -> BTreeMap<String, IoRecord> {
        rows.iter()
            .filter(|r| r.record.direction == dir)
            .map(|r| (r.record.name.clone(), r.record.clone()))
            .collect()
    };
    let duration_ratio = match (r1.duration_seconds, r2.duration_seconds) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    Ok(RunDiff {
        run1: id1.to_string(),
        run2: id2.to_string(),
        same_task: r1.stage_name == r2.stage_name && r1.task_name == r2.task_name,
        duration_seconds: [r1.duration_seconds, r2.duration_seconds],
        duration_ratio,
        run: run_changes(&r1, &r2),
        inputs: io_changes(
            &records(&io1, Direction::Input),
            &records(&io2, Direction::Input),
        ),
        outputs: io_changes(
            &records(&io1, Direction::Output),
            &records(&io2, Direction::Output),
        ),
    })
}

/// The facts of a run worth comparing, by name.
fn facts(r: &RunRow) -> Vec<(&'static str, Option<String>)> {
    let s = |v: &Option<String>| v.clone();
    let n = |v: Option<i64>| v.map(|v| v.to_string());
    vec![
        ("stage", Some(r.stage_name.clone())),
        ("task", Some(r.task_name.clone())),
        ("status", Some(r.status.to_string())),
        ("attempt", n(r.attempt)),
        ("error", s(&r.error_message)),
        ("total subtasks", n(r.total_subtasks)),
        ("subtasks completed", Some(r.subtasks_completed.to_string())),
        ("host", s(&r.hostname)),
        ("user", s(&r.user_name)),
        ("version", s(&r.version)),
        ("git commit", s(&r.git_commit)),
        ("git dirty", r.git_dirty.map(|d| d.to_string())),
        (
            "script",
            s(&r.script_path).or_else(|| s(&r.script_filename)),
        ),
        ("command line", s(&r.command_line)),
        ("runtime", s(&r.runtime)),
        ("tasker", s(&r.tasker_version)),
        ("log", s(&r.log_path).or_else(|| s(&r.log_filename))),
    ]
}

fn run_changes(r1: &RunRow, r2: &RunRow) -> Vec<Change> {
    let mut out: Vec<Change> = facts(r1)
        .into_iter()
        .zip(facts(r2))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, before), (_, after))| Change {
            field: field.to_string(),
            before,
            after,
        })
        .collect();
    // Metadata: key by key, so that one changed key reads as one change.
    let keys = |r: &RunRow| -> BTreeMap<String, String> {
        match &r.metadata {
            Some(serde_json::Value::Object(m)) => {
                m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
            }
            Some(other) => BTreeMap::from([(String::new(), other.to_string())]),
            None => BTreeMap::new(),
        }
    };
    let (m1, m2) = (keys(r1), keys(r2));
    for k in m1.keys().chain(m2.keys().filter(|k| !m1.contains_key(*k))) {
        let (a, b) = (m1.get(k).cloned(), m2.get(k).cloned());
        if a != b {
            let field = if k.is_empty() {
                "metadata".into()
            } else {
                format!("metadata.{k}")
            };
            out.push(Change {
                field,
                before: a,
                after: b,
            });
        }
    }
    out
}

/// What an input or output is, as one comparable text.
fn io_text(r: &IoRecord) -> String {
    match (&r.value, &r.path) {
        (Some(v), _) => v.clone(),
        (None, Some(p)) => {
            let mut s = p.clone();
            if let Some(b) = r.size_bytes {
                s.push_str(&format!(", {}", fmt::bytes(b.max(0) as u64)));
            }
            if let Some(h) = &r.sha256 {
                s.push_str(&format!(", sha256 {}", &h[..h.len().min(12)]));
            } else if let Some(m) = r.modified {
                s.push_str(&format!(", modified {}", fmt::local_time(Some(m))));
            }
            s
        }
        (None, None) => String::new(),
    }
}

fn io_changes(a: &BTreeMap<String, IoRecord>, b: &BTreeMap<String, IoRecord>) -> Vec<Change> {
    let mut out = Vec::new();
    for name in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        let (x, y) = (a.get(name).map(io_text), b.get(name).map(io_text));
        if x != y {
            out.push(Change {
                field: name.clone(),
                before: x,
                after: y,
            });
        }
    }
    out
}

fn render(style: &Style, d: &RunDiff) -> String {
    let mut out = format!("{} → {}\n", d.run1, d.run2);
    if !d.same_task {
        out.push_str(&style.dim("(runs of different tasks)\n"));
    }
    let secs = |v: Option<f64>| v.map(fmt::duration).unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "{} {} → {}{}\n",
        style.bold("duration:"),
        secs(d.duration_seconds[0]),
        secs(d.duration_seconds[1]),
        d.duration_ratio
            .map(|r| format!(" ({r:.2}×)"))
            .unwrap_or_default()
    ));
    for (title, changes) in [
        ("Run", &d.run),
        ("Inputs", &d.inputs),
        ("Outputs", &d.outputs),
    ] {
        out.push_str(&format!("\n{}\n", style.bold(title)));
        if changes.is_empty() {
            out.push_str(&style.dim("  no change\n"));
        }
        for c in changes {
            let side = |v: &Option<String>| match v {
                Some(v) => fmt::clean(&fmt::truncate(v, 80)),
                None => "(none)".into(),
            };
            out.push_str(&format!(
                "  {}: {} → {}\n",
                fmt::clean(&c.field),
                side(&c.before),
                side(&c.after)
            ));
        }
    }
    out
}
