//! `tasker stats`, `tasker diff`, what `tasker show` says of attempts, inputs,
//! outputs and resources, and `tasker purge --apply-retention`, on databases
//! written through the core API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tasker::process::ProcessFacts;
use tasker::store::NewRun;
use tasker::{Config, RunOptions, Status, SubtaskOptions, Tracker, TransitionInfo};

fn tasker(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasker"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("TASKER_RETENTION_DAYS")
        .env_remove("TASKER_RETENTION_KEEP_FAILED_DAYS")
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

/// A task that failed once and then succeeded on its retry, with inputs and
/// outputs (a value that changes, a file that changes), sampled every 200 ms.
fn retried_task(dir: &Path) -> (PathBuf, String, String) {
    let db = dir.join("h.db");
    let mut config = Config::sqlite(&db);
    config.sample_interval = Some(Duration::from_millis(200));
    let t = Tracker::open(config).unwrap();
    let data = dir.join("input.csv");
    std::fs::write(&data, "a,b\n1,2\n").unwrap();

    let first = t.task_start("etl", "load", RunOptions::default()).unwrap();
    first.add_input("rows", "1000").unwrap();
    first
        .add_input_file("data", data.to_str().unwrap(), true)
        .unwrap();
    first.fail("the source was not there yet", None).unwrap();

    std::fs::write(&data, "a,b\n1,2\n3,4\n").unwrap();
    let second = t
        .task_start(
            "etl",
            "load",
            RunOptions {
                retry: true,
                ..RunOptions::default()
            },
        )
        .unwrap();
    second.add_input("rows", "2000").unwrap();
    second
        .add_input_file("data", data.to_str().unwrap(), true)
        .unwrap();
    second.add_output("loaded", "2000").unwrap();
    second
        .subtask_start("read", SubtaskOptions::default())
        .unwrap();
    // Long enough for a few samples of this process.
    std::thread::sleep(Duration::from_millis(900));
    second.subtask_complete(1, None).unwrap();
    second.complete(None).unwrap();
    let ids = (first.run_id().to_string(), second.run_id().to_string());
    t.close().unwrap();
    (db, ids.0, ids.1)
}

#[test]
fn stats_count_a_retried_success_once_with_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = retried_task(dir.path());
    let rows = json(&db, &["stats", "--json"]);
    let s = &rows.as_array().expect("a list")[0];
    assert_eq!(
        (s["stage_name"].as_str(), s["task_name"].as_str()),
        (Some("etl"), Some("load"))
    );
    assert_eq!(s["runs"], 2, "{s}");
    assert_eq!(s["logical_runs"], 1, "{s}");
    assert_eq!(s["completed"], 1, "{s}");
    assert_eq!(s["failed"], 0, "the failure was retried: {s}");
    assert_eq!(s["success_rate"], 1.0, "{s}");
    assert_eq!(s["retried"], 1, "{s}");

    let history = ok(&db, &["history"]);
    assert!(history.contains("COMPLETED (try 2)"), "{history}");
    let text = ok(&db, &["stats"]);
    assert!(text.contains("1 (2 tries)"), "{text}");
    assert!(text.contains("100%"), "{text}");
    assert!(ok(&db, &["stats", "--task", "nothing"]).contains("No runs match"));
    let bad = tasker(&db, &["stats", "--since", "yesterday-ish"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("yesterday-ish"));
}

#[test]
fn show_tells_the_attempt_inputs_outputs_and_resources() {
    let dir = tempfile::tempdir().unwrap();
    let (db, first, second) = retried_task(dir.path());
    let text = ok(&db, &["show", &second]);
    assert!(
        text.contains(&format!("attempt:         2 (retries {first})")),
        "{text}"
    );
    assert!(
        text.contains("Inputs") && text.contains("Outputs"),
        "{text}"
    );
    assert!(text.contains("input.csv"), "{text}");
    assert!(text.contains("loaded"), "{text}");
    assert!(text.contains("tasker:"), "the tasker version: {text}");
    assert!(text.contains("command line:"), "{text}");

    let detail = json(&db, &["show", &second, "--json"]);
    let io = detail["io"].as_array().unwrap();
    assert_eq!(io.len(), 3, "{io:?}");
    let data = io.iter().find(|x| x["name"] == "data").unwrap();
    assert_eq!(data["size_bytes"], 12);
    assert_eq!(data["sha256"].as_str().map(str::len), Some(64));

    if tasker::sampler::available() {
        assert!(text.contains("Resources"), "{text}");
        let samples = detail["samples"].as_array().unwrap();
        assert!(
            !samples.is_empty(),
            "samples of a 0.9 s run sampled every 0.2 s"
        );
        assert!(samples[0]["rss_bytes"].as_u64().unwrap() > 0);
        let table = ok(&db, &["show", &second, "--samples"]);
        assert!(table.starts_with("TIME"), "{table}");
        assert_eq!(table.lines().count(), samples.len() + 1, "{table}");
    } else {
        eprintln!("process sampling is not available here: resources not checked");
    }
    let none = ok(&db, &["show", &first, "--samples"]);
    assert!(none.contains("No resource samples"), "{none}");
}

#[test]
fn diff_names_what_changed_between_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, first, second) = retried_task(dir.path());
    let d = json(&db, &["diff", &first, &second, "--json"]);
    assert_eq!(d["same_task"], true);
    let field = |list: &str, name: &str| -> Option<Value> {
        d[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == name)
            .cloned()
    };
    let rows = field("inputs", "rows").expect("the changed value");
    assert_eq!(
        (rows["before"].as_str(), rows["after"].as_str()),
        (Some("1000"), Some("2000"))
    );
    let data = field("inputs", "data").expect("the file changed: size and hash");
    assert!(data["before"].as_str().unwrap().contains("8 B"), "{data}");
    assert!(data["after"].as_str().unwrap().contains("12 B"), "{data}");
    let loaded = field("outputs", "loaded").expect("a new output");
    assert_eq!(loaded["before"], Value::Null);
    let status = field("run", "status").expect("the status changed");
    assert_eq!(
        (status["before"].as_str(), status["after"].as_str()),
        (Some("FAILED"), Some("COMPLETED"))
    );
    assert!(field("run", "host").is_none(), "the same host is no change");

    let text = ok(&db, &["diff", &first, &second]);
    assert!(text.contains("rows: 1000 → 2000"), "{text}");
    assert!(text.contains("loaded: (none) → 2000"), "{text}");
    let same = ok(&db, &["diff", &second, &second]);
    assert_eq!(same.matches("no change").count(), 3, "{same}");
    let missing = tasker(&db, &["diff", &first, "no-such-run"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-run"));
}

#[test]
fn purge_applies_the_configured_retention_and_never_an_active_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let days_ago = |d: i64| chrono::Utc::now() - chrono::Duration::days(d);
    {
        let mut st = tasker::store::open(&Config::sqlite(&db)).unwrap();
        for (id, age, end) in [
            ("old done", 40, Some(Status::Completed)),
            ("old failed", 40, Some(Status::Failed)),
            ("older failed", 400, Some(Status::Failed)),
            ("old running", 40, None),
            ("recent done", 2, Some(Status::Completed)),
        ] {
            st.start_run(&NewRun {
                run_id: id.into(),
                stage: "s".into(),
                task: "t".into(),
                facts: ProcessFacts::current(None),
                options: RunOptions::default(),
                start_time: days_ago(age),
                lost_before: days_ago(age),
                known_lost: None,
            })
            .unwrap();
            if let Some(to) = end {
                let info = TransitionInfo::error("e", None);
                st.run_transition(id, to, &info, days_ago(age - 1)).unwrap();
            }
        }
    }
    // No retention configured: a clear refusal, nothing deleted.
    let none = tasker(&db, &["purge", "--apply-retention"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no retention is configured"));
    let conflict = tasker(&db, &["purge", "--apply-retention", "--older-than", "3d"]);
    assert_eq!(conflict.status.code(), Some(2));

    let yml = dir.path().join("tasker.yml");
    std::fs::write(
        &yml,
        format!(
            "database:\n  driver: sqlite\n  path: {}\nretention:\n  days: 30\n  keep_failed_days: 365\n",
            db.display()
        ),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        let mut all = vec!["--config", yml.to_str().unwrap()];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_tasker"))
            .args(&all)
            .env_remove("TASKER_DB_URL")
            .output()
            .unwrap()
    };
    let dry = with_config(&["purge", "--apply-retention", "--dry-run", "--json"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (
            dry["matching_runs"].as_u64(),
            dry["matching_failed_runs"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(dry["deleted_runs"], 0);

    let done = with_config(&["purge", "--apply-retention"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(said.contains("Deleted 1 finished run(s) older than 30 day(s) and 1 failed run(s) older than 365 day(s)"), "{said}");
    let mut left: Vec<String> = json(&db, &["history", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    left.sort();
    assert_eq!(left, ["old failed", "old running", "recent done"]);
}

#[test]
fn ages_out_of_range_are_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = retried_task(dir.path());
    for args in [
        &["history", "--since", "100000000d"][..],
        &["history", "--since", "9999999999999999s"],
        &["stats", "--since", "99999999999999999999d"],
        &["purge", "--older-than", "9999999999999999s", "--dry-run"],
        &["report", "--html", "/dev/null", "--since", "100000000d"],
    ] {
        let out = tasker(&db, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("too long ago"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A long but sane age still works.
    assert!(ok(&db, &["history", "--since", "36500d"]).contains("etl"));
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    {
        // Enough runs that the output outlasts the pipe's buffer (64 KiB).
        let mut st = tasker::store::open(&Config::sqlite(&db)).unwrap();
        let now = chrono::Utc::now();
        for i in 0..1500 {
            st.start_run(&NewRun {
                run_id: format!("run-{i:05}"),
                stage: "s".into(),
                task: "t".into(),
                facts: ProcessFacts::current(None),
                options: RunOptions::default(),
                start_time: now,
                lost_before: now,
                known_lost: None,
            })
            .unwrap();
        }
    }
    let script = format!(
        "'{bin}' --db '{db}' export --format json --table runs | head -c 10 >/dev/null; \
         '{bin}' --db '{db}' history -n 100000 --json | head -c 10 >/dev/null",
        bin = env!("CARGO_BIN_EXE_tasker"),
        db = db.display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}
