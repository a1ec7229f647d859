//! `tasker dag` on a real SQLite file written through the core API: every format,
//! blocked and waiting tasks of a pipeline where one upstream failed, hostile names,
//! and the DOT output accepted by Graphviz `dot` (installed by scripts/setup.sh;
//! its absence fails the test).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tasker::{Config, RunOptions, TaskSpec, Tracker};

fn tasker(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasker"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tasker")
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = tasker(db, args);
    assert!(
        out.status.success(),
        "tasker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

const HOSTILE: &str = "<img src=x onerror=alert(1)> \"q\" \\ #1";

fn dep(stage: &str, name: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        depends_on: Some(deps.iter().map(|d| d.to_string()).collect()),
        ..TaskSpec::new(stage, name)
    }
}

/// ingest/download -> prep/clean (FAILED) -> model/fit -> report/<hostile>;
/// ingest/download -> prep/stats (running).
fn pipeline(dir: &Path) -> PathBuf {
    let db = dir.join("dag.db");
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    t.register_tasks(&[
        TaskSpec::new("ingest", "download"),
        dep("prep", "clean", &["ingest/download"]),
        dep("prep", "stats", &["ingest/download"]),
        dep("model", "fit", &["prep/clean", "prep/stats"]),
        dep("report", HOSTILE, &["model/fit"]),
    ])
    .unwrap();
    t.task_start("ingest", "download", RunOptions::default())
        .unwrap()
        .complete(None)
        .unwrap();
    t.task_start("prep", "clean", RunOptions::default())
        .unwrap()
        .fail("bad rows", None)
        .unwrap();
    let stats = t
        .task_start("prep", "stats", RunOptions::default())
        .unwrap();
    std::mem::forget(stats); // still running when the command reads it
    t.flush().unwrap();
    db
}

#[test]
fn json_has_nodes_edges_and_derived_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let v: Value = serde_json::from_str(&ok(&db, &["dag", "--format", "json"])).unwrap();
    assert_eq!(v["edges"].as_array().unwrap().len(), 5);
    let node = |id: &str| -> Value {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}"))
            .clone()
    };
    assert_eq!(node("prep/clean")["status"], "FAILED");
    assert_eq!(node("model/fit")["blocked"], true);
    assert_eq!(node("model/fit")["blocked_by"][0], "prep/clean");
    let hostile = node(&format!("report/{HOSTILE}"));
    assert_eq!(hostile["blocked"], true);
    assert_eq!(hostile["rank"], 3);
    // prep/stats waits for nothing (download completed); it is running.
    assert_eq!(node("prep/stats")["status"], "STARTED");
    assert_eq!(node("prep/stats")["waiting"], false);
}

#[test]
fn text_and_mermaid_show_ranks_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let text = ok(&db, &["dag"]);
    assert!(text.starts_with("rank 0\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("model/fit") && l.contains("[blocked by prep/clean]")),
        "{text}"
    );
    let mermaid = ok(&db, &["dag", "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(!mermaid.contains("<img"), "{mermaid}");
    assert!(mermaid.contains("#lt;img src=x"), "{mermaid}");
    let only = ok(&db, &["dag", "--stage", "prep", "--format", "json"]);
    let v: Value = serde_json::from_str(&only).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(v["edges"].as_array().unwrap().len(), 0);
    let bad = tasker(&db, &["dag", "--format", "svg"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("svg"));
}

#[test]
fn dot_output_is_accepted_by_graphviz() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let dot_src = ok(&db, &["dag", "--format", "dot"]);
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "Graphviz `dot` is needed by this test ({e}): install the Debian package \
             graphviz (scripts/setup.sh does)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot_src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "dot refused the output: {}\n{dot_src}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    // Five nodes and five edges drawn; the hostile name escaped in the SVG text.
    assert_eq!(svg.matches("class=\"node\"").count(), 5, "{svg}");
    assert_eq!(svg.matches("class=\"edge\"").count(), 5, "{svg}");
    assert!(svg.contains("&lt;img src=x"), "{svg}");
    assert!(!svg.contains("<img"), "{svg}");
}
