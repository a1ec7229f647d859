//! The command line as people use it all day: output fitted to the terminal width,
//! run ids given by a unique prefix or `--last`, lost runs without live figures,
//! `watch --interval` in seconds or durations, and the missing-database hint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use tasker::{Config, RunOptions, SubtaskOptions, Tracker};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tasker"))
}

fn fixture() -> PathBuf {
    bin()
        .parent()
        .unwrap()
        .join("examples")
        .join("tasker-fixture")
}

fn run_with(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.arg("--db").arg(db).args(args).env_remove("COLUMNS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run tasker")
}

fn ok_with(db: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run_with(db, args, env);
    assert!(
        out.status.success(),
        "tasker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok(db: &Path, args: &[&str]) -> String {
    ok_with(db, args, &[])
}

const LONG: &str =
    "a-task-with-a-name-far-too-long-for-any-terminal-column-that-goes-on-and-on-and-on";

/// Three runs of one task, one of another (with a long name), all started within
/// a few milliseconds: their ids share their timestamp prefix.
fn db_with_runs(dir: &Path) -> (PathBuf, Vec<String>) {
    let db = dir.join("t.db");
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    let mut ids = Vec::new();
    for task in ["fit", "fit", "fit", LONG] {
        let r = t.task_start("model", task, RunOptions::default()).unwrap();
        let n = r.subtask_start("rows", SubtaskOptions::default()).unwrap();
        r.subtask_complete(n, None).unwrap();
        r.complete(None).unwrap();
        ids.push(r.run_id().to_string());
    }
    t.close().unwrap();
    (db, ids)
}

#[test]
fn output_fits_columns_by_cutting_names_and_dropping_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = db_with_runs(dir.path());
    for cmd in [&["status"][..], &["history"][..]] {
        let narrow = ok_with(&db, cmd, &[("COLUMNS", "80")]);
        let widest = narrow.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 80, "{cmd:?} at 80 columns:\n{narrow}");
        assert!(narrow.contains('…'), "the long name is cut:\n{narrow}");
        let wide = ok_with(&db, cmd, &[("COLUMNS", "200")]);
        assert!(wide.lines().all(|l| l.chars().count() <= 200), "{wide}");
        // Whole table at 200 columns; some columns dropped at 80.
        let header = |s: &str, h: &str| s.lines().any(|l| l.contains(h));
        if cmd == ["history"] {
            assert!(
                header(&wide, "HOST:PID") && !header(&narrow, "HOST:PID"),
                "{narrow}"
            );
        }
    }
}

#[test]
fn history_prints_short_ids_that_show_takes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = db_with_runs(dir.path());
    let out = ok(&db, &["history"]);
    for id in &ids {
        let short = out
            .split_whitespace()
            .find(|w| id.starts_with(*w) && w.len() >= 8)
            .unwrap_or_else(|| panic!("no prefix of {id} in\n{out}"));
        // Runs started together share their first 13 characters (the timestamp):
        // a short id must go past them to tell them apart.
        assert!(short.len() < id.len() || ids.iter().filter(|x| x.starts_with(short)).count() == 1);
        assert_eq!(
            ids.iter().filter(|x| x.starts_with(short)).count(),
            1,
            "{short} is unique"
        );
        let shown: Value = serde_json::from_str(&ok(&db, &["show", short, "--json"])).unwrap();
        assert_eq!(shown["run"]["run_id"], id.as_str());
    }
}

#[test]
fn an_ambiguous_prefix_lists_its_candidates_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = db_with_runs(dir.path());
    let out = run_with(&db, &["show", &ids[0][..8]], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for id in &ids {
        assert!(err.contains(id.as_str()), "{err}");
    }
    let out = run_with(&db, &["show", "ffffffff"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    // diff takes unique prefixes too, and refuses ambiguous ones alike.
    let a = &ids[0][..ids[0].len() - 2];
    let d: Value = serde_json::from_str(&ok(&db, &["diff", a, &ids[1], "--json"])).unwrap();
    assert_eq!(d["run1"], ids[0].as_str());
    let out = run_with(&db, &["diff", &ids[0][..8], &ids[1]], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn show_last_finds_the_newest_run_of_all_a_stage_or_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = db_with_runs(dir.path());
    let id = |args: &[&str]| -> String {
        let v: Value = serde_json::from_str(&ok(&db, args)).unwrap();
        v["run"]["run_id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&["show", "--last", "--json"]), ids[3]);
    assert_eq!(id(&["show", "--last", "model", "--json"]), ids[3]);
    assert_eq!(id(&["show", "--last", "model/fit", "--json"]), ids[2]);
    assert_eq!(id(&["show", "--last", "fit", "--json"]), ids[2]);
    let out = run_with(&db, &["show", "--last", "model/nothing"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = run_with(&db, &["show"], &[]);
    assert_eq!(out.status.code(), Some(2), "an id or --last is needed");
}

/// A run whose process was killed (SIGKILL): lost.
fn lost_run(db: &Path) -> (String, Child) {
    let url = format!("sqlite://{}", db.display());
    let mut child = Command::new(fixture())
        .args(["start", &url, "model", "lost", "100"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tasker-fixture");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line).unwrap();
    let id = started["run_id"].as_str().unwrap().to_string();
    let n = started["subtask"].to_string();
    let inc = Command::new(fixture())
        .args(["increment", &url, &id, &n, "5"])
        .status()
        .unwrap();
    assert!(inc.success());
    child.kill().unwrap();
    child.wait().unwrap();
    (id, child)
}

#[test]
fn a_lost_run_shows_no_live_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = db_with_runs(dir.path());
    let (id, _child) = lost_run(&db);
    let first = ok(&db, &["show", &id]);
    assert!(first.contains("stopped at its last heartbeat"), "{first}");
    let json1: Value = serde_json::from_str(&ok(&db, &["show", &id, "--json"])).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let second = ok(&db, &["show", &id]);
    let json2: Value = serde_json::from_str(&ok(&db, &["show", &id, "--json"])).unwrap();
    assert_eq!(
        json1["run"]["duration_seconds"], json2["run"]["duration_seconds"],
        "the clock stopped"
    );
    assert!(json2["run"]["eta_seconds"].is_null());
    assert!(json2["subtasks"][0]["rate_per_second"].is_null());
    // The subtask table's duration stopped too: both outputs are the same.
    let subtasks = |s: &str| s[s.find("Subtasks").unwrap()..s.find("Events").unwrap()].to_string();
    assert_eq!(subtasks(&first), subtasks(&second));

    // watch never ends while a run is active (lost or not): read a second of frames.
    let mut child = Command::new(bin())
        .arg("--db")
        .arg(&db)
        .args(["watch", "--interval", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let watch = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        watch.contains("LOST") && watch.contains("stopped after"),
        "{watch}"
    );
    assert!(
        !watch.contains("/s") && !watch.contains("/min") && !watch.contains("/h"),
        "no rate: {watch}"
    );
    assert!(
        watch
            .lines()
            .filter(|l| l.starts_with('▸'))
            .all(|l| !l.contains("ETA")),
        "no ETA: {watch}"
    );
    let _ = run_with(&db, &["reap"], &[]);
}

#[test]
fn watch_interval_takes_seconds_and_durations() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = db_with_runs(dir.path());
    for good in ["5", "0.5", "5s", "250ms"] {
        // No active run: --exit-when-done leaves after the first frame.
        ok(&db, &["watch", "--exit-when-done", "--interval", good]);
    }
    for bad in ["0", "-1", "5x", "soon", "2d"] {
        let out = run_with(&db, &["watch", "--exit-when-done", "--interval", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad), "{bad}");
    }
}

#[test]
fn a_missing_database_says_what_pointed_there() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here.db");
    let out = run_with(&missing, &["status"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--db") && !err.contains("TASKER_DB_URL"),
        "{err}"
    );

    let status = |env: &[(&str, &str)], cwd: &Path| -> String {
        let mut c = Command::new(bin());
        c.arg("status")
            .current_dir(cwd)
            .env_remove("TASKER_DB_URL")
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
            .env("XDG_DATA_HOME", dir.path().join("data"));
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let url = format!("sqlite://{}", missing.display());
    let err = status(&[("TASKER_DB_URL", &url)], dir.path());
    assert!(err.contains("TASKER_DB_URL in the environment"), "{err}");
    let err = status(&[], dir.path());
    assert!(err.contains("default location"), "{err}");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".tasker.yml"),
        format!("database:\n  path: {}\n", missing.display()),
    )
    .unwrap();
    let err = status(&[], &project);
    assert!(
        err.contains("config file") && err.contains(".tasker.yml"),
        "{err}"
    );
}
