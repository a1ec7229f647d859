//! The `tasker` binary on a database written through the core API (and by
//! `tasker-fixture` in other processes): human output, --json, export, report,
//! reap and purge.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tasker::{Config, RunOptions, SubtaskOptions, TaskSpec, Tracker};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tasker"))
}

fn fixture() -> PathBuf {
    bin()
        .parent()
        .expect("target dir")
        .join("examples")
        .join("tasker-fixture")
}

fn tasker(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run tasker")
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = tasker(db, args);
    assert!(
        out.status.success(),
        "tasker {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(db: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(db, args)).expect("valid JSON")
}

/// A pipeline: a completed run, a failed one, a task never run, a hostile name.
fn pipeline(dir: &Path) -> PathBuf {
    let db = dir.join("t.db");
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    t.register_tasks(&[
        TaskSpec {
            stage_order: Some(1),
            task_order: Some(1),
            ..TaskSpec::new("prepare", "download")
        },
        TaskSpec {
            stage_order: Some(1),
            task_order: Some(2),
            ..TaskSpec::new("prepare", "validate")
        },
        TaskSpec {
            stage_order: Some(2),
            ..TaskSpec::new("model", "fit")
        },
        TaskSpec {
            stage_order: Some(2),
            ..TaskSpec::new("model", "<script>alert(1)</script>")
        },
    ])
    .unwrap();
    let run = t
        .task_start(
            "prepare",
            "download",
            RunOptions {
                total_subtasks: Some(2),
                ..RunOptions::default()
            },
        )
        .unwrap();
    let n = run
        .subtask_start(
            "files",
            SubtaskOptions {
                items_total: Some(100),
                ..SubtaskOptions::default()
            },
        )
        .unwrap();
    run.subtask_increment(n, 100).unwrap();
    run.subtask_complete(n, None).unwrap();
    let m = run
        .subtask_start("index, \"quoted\"", SubtaskOptions::default())
        .unwrap();
    run.subtask_complete(m, None).unwrap();
    run.complete(Some("ok")).unwrap();
    let bad = t
        .task_start("prepare", "validate", RunOptions::default())
        .unwrap();
    let rows = bad
        .subtask_start("rows", SubtaskOptions::default())
        .unwrap();
    bad.subtask_fail(rows, "row 7", Some("row 7: expected 3 fields, saw 2"))
        .unwrap();
    bad.fail(
        "row 7 is <broken>",
        Some("Traceback:\n  line 1\nValueError"),
    )
    .unwrap();
    t.close().unwrap();
    db
}

#[test]
fn status_lists_every_task_with_its_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let out = ok(&db, &["status"]);
    assert!(out.contains("download"), "{out}");
    assert!(out.contains("COMPLETED") && out.contains("FAILED") && out.contains("NOT_STARTED"));
    assert!(
        out.contains("row 7 is <broken>"),
        "failures are listed: {out}"
    );
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let coloured = ok(&db, &["--color", "always", "status"]);
    assert!(coloured.contains("\x1b[32mCOMPLETED"), "{coloured}");

    let rows = json(&db, &["status", "--json"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let download = rows.iter().find(|r| r["task_name"] == "download").unwrap();
    assert_eq!(download["status"], "COMPLETED");
    assert_eq!(download["overall_percent_complete"], 100.0);
    assert_eq!(download["subtasks_completed"], 2);
    assert_eq!(download["lost"], false);
    let never = rows.iter().find(|r| r["task_name"] == "fit").unwrap();
    assert_eq!(never["status"], "NOT_STARTED");
    assert!(never["run_id"].is_null());

    let failed = json(&db, &["status", "--json", "--status", "failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["error_message"], "row 7 is <broken>");
    let model = json(&db, &["status", "--json", "--stage", "model"]);
    assert_eq!(model.as_array().unwrap().len(), 2);
    let bad = tasker(&db, &["status", "--status", "DONE"]);
    assert_eq!(bad.status.code(), Some(2), "a bad status is a usage error");
}

#[test]
fn history_show_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let runs = json(&db, &["history", "--json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["task_name"], "validate", "newest first");
    let id = runs[1]["run_id"].as_str().unwrap().to_string();

    let d = json(&db, &["show", &id, "--json"]);
    assert_eq!(d["run"]["task_name"], "download");
    assert_eq!(d["subtasks"].as_array().unwrap().len(), 2);
    assert_eq!(d["subtasks"][0]["items_complete"], 100);
    assert!(d["events"].as_array().unwrap().len() >= 5);
    let text = ok(&db, &["show", &id]);
    assert!(text.contains("Subtasks") && text.contains("files") && text.contains("Events"));
    let failed = runs[0]["run_id"].as_str().unwrap();
    let text = ok(&db, &["show", failed]);
    assert!(text.contains("ValueError"), "error detail is shown: {text}");
    assert!(
        text.contains("Error detail of subtask 1") && text.contains("expected 3 fields, saw 2"),
        "a subtask's error detail is shown: {text}"
    );
    let missing = tasker(&db, &["show", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let all = json(&db, &["export"]);
    assert_eq!(all["runs"].as_array().unwrap().len(), 2);
    assert_eq!(all["subtasks"].as_array().unwrap().len(), 3);
    assert!(all["events"].as_array().unwrap().len() >= 8);
    let csv = ok(&db, &["export", "--format", "csv", "--table", "subtasks"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("run_id,subtask_number,subtask_name,status"));
    assert!(lines[0].ends_with(",error_message,error_detail"));
    assert_eq!(lines.len(), 4);
    assert!(
        csv.contains("\"index, \"\"quoted\"\"\""),
        "CSV quoting: {csv}"
    );
    let usage = tasker(&db, &["export", "--format", "csv"]);
    assert_eq!(usage.status.code(), Some(2));
    let out = dir.path().join("csv");
    ok(
        &db,
        &[
            "export",
            "--format",
            "csv",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    for f in ["runs.csv", "subtasks.csv", "events.csv"] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // OTLP JSON: one trace per run (trace id = run id), subtasks under their run.
    let otlp = json(&db, &["export", "--format", "otlp-json"]);
    let spans: Vec<&Value> = otlp["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), 2 + 3);
    let hex_id = |run: &Value| run["run_id"].as_str().unwrap().replace('-', "");
    // An empty parent may be left out or written as "".
    let parent = |s: &Value| s["parentSpanId"].as_str().unwrap_or_default().to_string();
    for run in runs {
        let trace: Vec<&&Value> = spans
            .iter()
            .filter(|s| s["traceId"] == hex_id(run))
            .collect();
        let root = trace.iter().find(|s| parent(s).is_empty()).unwrap();
        assert_eq!(
            root["name"],
            format!(
                "{}/{}",
                run["stage_name"].as_str().unwrap(),
                run["task_name"].as_str().unwrap()
            )
        );
        assert!(trace
            .iter()
            .filter(|s| !parent(s).is_empty())
            .all(|s| parent(s) == root["spanId"].as_str().unwrap()));
    }
    let usage = tasker(&db, &["export", "--format", "otlp-json", "--table", "runs"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn report_is_one_escaped_html_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let file = dir.path().join("report.html");
    ok(&db, &["report", "--html", file.to_str().unwrap()]);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("<svg"), "a Gantt chart");
    assert!(
        html.contains("row 7 is &lt;broken&gt;"),
        "failures, escaped"
    );
    assert!(html.contains("ValueError"));
    assert!(!html.contains("<broken>"));
    assert!(!html.contains("<script"), "no scripts at all");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
}

#[test]
fn reap_marks_a_run_whose_process_died_failed_and_purge_deletes_old_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let url = format!("sqlite://{}", db.display());
    let mut child = Command::new(fixture())
        .args(["start", &url, "model", "fit", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tasker-fixture (built by cargo test)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line).unwrap();
    let id = started["run_id"].as_str().unwrap().to_string();
    let active = json(&db, &["status", "--json", "--status", "active"]);
    assert_eq!(active[0]["run_id"], id.as_str());
    assert_eq!(active[0]["lost"], false);
    assert_eq!(active[0]["current"]["items_total"], 10);

    child.kill().unwrap(); // SIGKILL: no chance to record anything
    child.wait().unwrap();
    let lost = json(&db, &["status", "--json", "--status", "lost"]);
    assert_eq!(lost[0]["run_id"], id.as_str());
    let text = ok(&db, &["status"]);
    assert!(
        text.contains("RUNNING (LOST)") || text.contains("STARTED (LOST)"),
        "{text}"
    );
    assert!(text.contains("tasker reap"));

    let dry = json(&db, &["reap", "--dry-run", "--json"]);
    assert_eq!(dry[0]["marked_failed"], false);
    // People read the short id the other commands print; --json keeps the full one.
    let said = ok(&db, &["reap", "--dry-run"]);
    let short = &id[..8];
    assert!(said.contains(&format!("run {short}")), "{said}");
    assert!(!said.contains(&id), "{said}");
    let reaped = json(&db, &["reap", "--json"]);
    assert_eq!(reaped[0]["run_id"], id.as_str());
    assert_eq!(reaped[0]["marked_failed"], true);
    let d = json(&db, &["show", &id, "--json"]);
    assert_eq!(d["run"]["status"], "FAILED");
    // It ended when it was last seen alive, not when it was reaped.
    assert_eq!(d["run"]["end_time"], lost[0]["heartbeat_time"], "{d}");
    assert!(d["run"]["error_message"]
        .as_str()
        .unwrap()
        .contains("tasker reap"));
    assert_eq!(json(&db, &["reap", "--json"]), Value::Array(vec![]));

    let dry = json(
        &db,
        &[
            "purge",
            "--older-than",
            "0s",
            "--keep-failed",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry["matching_runs"], 1, "only the completed run: {dry}");
    assert_eq!(dry["deleted_runs"], 0);
    let done = json(
        &db,
        &["purge", "--older-than", "0s", "--keep-failed", "--json"],
    );
    assert_eq!(done["deleted_runs"], 1);
    let left = json(&db, &["history", "--json"]);
    assert!(left
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "FAILED"));
    let bad = tasker(&db, &["purge", "--older-than", "30"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn watch_exits_when_nothing_runs_and_reads_need_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let out = ok(&db, &["watch", "--exit-when-done"]);
    assert!(out.contains("No active runs."), "{out}");
    let missing = dir.path().join("nothing-here.db");
    let out = tasker(&missing, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tasker database"));
    assert!(!missing.exists(), "a read never creates a database");
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let out = tasker(&db, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("--no-auth"),
        "{err}"
    );
    let empty = tasker(&db, &["serve", "--bind", "0.0.0.0:0", "--token", ""]);
    assert_eq!(empty.status.code(), Some(2), "an empty token is refused");
}

#[test]
fn watch_follows_a_run_to_its_end_and_reports_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = pipeline(dir.path());
    let url = format!("sqlite://{}", db.display());
    let mut run = Command::new(fixture())
        .args(["start", &url, "model", "fit", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut watch = Command::new(bin())
        .args([
            "--db",
            db.to_str().unwrap(),
            "watch",
            "--exit-when-done",
            "--interval",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = String::new();
    // Frames come every 0.2 s; wait for one that shows the run and its subtask bar.
    while !seen.contains("model/fit") {
        let mut l = String::new();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "watch ended early: {seen}"
        );
        seen.push_str(&l);
    }
    use std::io::Write as _;
    run.stdin.take().unwrap().write_all(b"fail\n").unwrap();
    run.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = watch.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a watched run failed: {rest}");
    assert!(rest.contains("Finished while watching"), "{rest}");
    assert!(rest.contains("FAILED"), "{rest}");
    let all = format!("{seen}{rest}");
    assert!(all.contains("1.  items"), "a bar per active subtask: {all}");
}

#[test]
fn version_is_the_workspace_version() {
    // The core, and so the libraries every binding wraps, carry the same version.
    let out = Command::new(bin())
        .arg("--version")
        .output()
        .expect("run tasker");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.trim(), format!("tasker {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(env!("CARGO_PKG_VERSION"), tasker::VERSION);
}
