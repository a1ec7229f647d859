//! Alerts end to end: rules read from a `.tasker.yml`, a real HTTP receiver
//! (a `TcpListener` in this test), real processes. Each incident is delivered
//! exactly once, even with two evaluators at once; a receiver that is down gets
//! the alert when it is back; the webhook's secret is never shown.
//!
//! The LOST case kills a child process: this test binary run again with
//! `TASKER_TEST_CHILD` set (the `child` test then does the child's work).
//! Webhooks need the `alerts` feature (`cargo test -p tasker-core --all-features`).
#![cfg(feature = "alerts")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tasker::{AlertFilter, Config, ConfigArgs, RunOptions, SubtaskOptions, Tracker};

const SECRET: &str = "s3cret-T0KEN";

/// What the receiver got: one request's path, headers (lowercase names) and body.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

type Got = Arc<Mutex<Vec<Request>>>;

/// Answers every POST with 200 after recording it (so a delivery that returned
/// is already recorded).
fn serve(listener: TcpListener) -> Got {
    let got: Got = Arc::default();
    let mine = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if let Some(req) = read_request(&conn) {
                mine.lock().unwrap().push(req);
            }
            let _ = (&conn)
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    got
}

/// A receiver on a free local port, and what it got.
fn receiver() -> (u16, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, serve(listener))
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body: serde_json::from_slice(&body).ok()?,
    })
}

/// A `.tasker.yml` in `dir` with a webhook to `port` (its path holds the secret)
/// and the given rules.
fn config(dir: &Path, port: u16, rules: &str) -> Config {
    config_on(dir, "database:\n  path: t.db\n", port, rules)
}

/// As `config`, with the `database:` section given.
fn config_on(dir: &Path, database: &str, port: u16, rules: &str) -> Config {
    let yml = format!(
        "{database}tracking:\n  flush_interval_ms: 20\n\
         alerts:\n  destinations:\n    hook:\n      webhook: http://127.0.0.1:{port}/hook/{SECRET}\n      headers: {{Authorization: Bearer {SECRET}}}\n      timeout_s: 2\n\
         \x20   chat:\n      webhook: http://127.0.0.1:{port}/chat/{SECRET}\n      format: slack\n  rules:\n{rules}"
    );
    let file = dir.join(".tasker.yml");
    std::fs::write(&file, yml).unwrap();
    Config::resolve(&ConfigArgs {
        config_file: Some(file),
        ..ConfigArgs::default()
    })
    .unwrap()
}

fn by_rule(got: &Got, rule: &str) -> Vec<Request> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.body["rule"] == rule || r.path.starts_with("/chat") && rule == "chat")
        .cloned()
        .collect()
}

#[test]
fn a_failed_run_is_sent_once_by_the_failing_process() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = receiver();
    let cfg = config(
        dir.path(),
        port,
        "    - {name: failures, on: failed, stage: etl, to: hook}\n    - {name: chat, on: failed, to: chat}\n",
    );
    assert!(!format!("{cfg:?}").contains(SECRET));
    let t = Tracker::open(cfg).unwrap();
    let run = t.task_start("etl", "load", RunOptions::default()).unwrap();
    run.fail("disk full\nTraceback ...", Some("detail"))
        .unwrap();
    // Another stage: the etl rule does not cover it, the chat rule does.
    let other = t
        .task_start("report", "pdf", RunOptions::default())
        .unwrap();
    other.complete(None).unwrap();
    t.close().unwrap(); // the writer's last turn sends what is queued

    let failures = by_rule(&got, "failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    let a = &failures[0];
    assert_eq!(a.path, format!("/hook/{SECRET}"));
    assert!(a
        .headers
        .contains(&("authorization".into(), format!("Bearer {SECRET}"))));
    assert_eq!(a.body["kind"], "failed");
    assert_eq!(a.body["run_id"], run.run_id());
    assert_eq!(
        (a.body["stage"].as_str(), a.body["task"].as_str()),
        (Some("etl"), Some("load"))
    );
    assert_eq!(a.body["message"], "disk full\nTraceback ...");
    assert_eq!(a.body["summary"], "tasker: etl/load FAILED: disk full");
    let chat = by_rule(&got, "chat");
    assert_eq!(chat.len(), 1);
    assert_eq!(
        chat[0].body,
        serde_json::json!({"text": "tasker: etl/load FAILED: disk full"})
    );

    let t = Tracker::open(t.config().clone()).unwrap();
    let rows = t.alerts(&AlertFilter::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.state() == "delivered" && r.attempts == 1));
    // An evaluator finds nothing left to send.
    let pass = t
        .evaluate_alerts(Utc::now() + chrono::Duration::hours(3))
        .unwrap();
    assert_eq!((pass.fired, pass.delivered), (0, 0));
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[test]
fn an_evaluator_sends_the_failed_alerts_a_process_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = receiver();
    let cfg = config(
        dir.path(),
        port,
        "    - {name: failures, on: failed, to: hook}\n",
    );
    // A process that sends nothing (as one killed right after failing its run).
    let mut quiet = cfg.clone();
    quiet.alerts = None;
    let t = Tracker::open(quiet).unwrap();
    let run = t.task_start("etl", "load", RunOptions::default()).unwrap();
    run.fail("disk full", None).unwrap();
    t.close().unwrap();
    assert!(by_rule(&got, "failures").is_empty());

    // Two evaluators at once: one delivery; and none for a failure over an hour old.
    let t = Tracker::open(cfg).unwrap();
    let passes: Vec<_> = std::thread::scope(|s| {
        let a = s.spawn(|| t.evaluate_alerts(Utc::now()).unwrap());
        let b = s.spawn(|| t.evaluate_alerts(Utc::now()).unwrap());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(passes.iter().map(|p| p.fired).sum::<usize>(), 1);
    let sent = by_rule(&got, "failures");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].body["run_id"], run.run_id());
    assert_eq!(sent[0].body["message"], "disk full");
    let later = t
        .evaluate_alerts(Utc::now() + chrono::Duration::hours(2))
        .unwrap();
    assert_eq!(later.fired, 0);
}

#[test]
fn time_based_rules_fire_once_each_with_two_evaluators_at_once() {
    time_based_rules(None);
}

/// The same on PostgreSQL (scripts/test-postgres.sh), in a schema of its own; the
/// LOST case is SQLite's (its child opens a file).
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn time_based_rules_fire_once_each_with_two_evaluators_at_once_on_postgres() {
    let url = std::env::var("TASKER_PG_URL").expect(
        "TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test",
    );
    let mut db = String::from("database:\n  driver: postgresql\n");
    for pair in url.split_whitespace() {
        let (k, v) = pair.split_once('=').unwrap();
        db.push_str(&format!("  {k}: {v}\n"));
    }
    db.push_str(&format!("  schema: alerts_{}\n", std::process::id()));
    time_based_rules(Some(&db));
}

fn time_based_rules(postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = receiver();
    let lost_rule = if postgres.is_none() {
        "    - {name: lost, on: lost, to: hook}\n"
    } else {
        ""
    };
    let rules = format!(
        "{lost_rule}\
         \x20   - {{name: stall, on: stall, minutes: 30, stage: etl, to: hook}}\n\
         \x20   - {{name: slow, on: too_long, max_minutes: 60, p95_factor: 3, stage: etl, to: hook}}\n\
         \x20   - {{name: nightly, on: dead_man, stage: etl, task: load, hours: 1, to: hook}}\n"
    );
    let cfg = match postgres {
        None => config(dir.path(), port, &rules),
        Some(db) => config_on(dir.path(), db, port, &rules),
    };
    let t = Tracker::open(cfg.clone()).unwrap();
    let run = t.task_start("etl", "load", RunOptions::default()).unwrap();
    let n = run
        .subtask_start(
            "rows",
            SubtaskOptions {
                items_total: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    run.subtask_increment(n, 3).unwrap();
    t.flush().unwrap();
    let victim = postgres
        .is_none()
        .then(|| killed_child_run(&dir.path().join("t.db")));
    if let Some(v) = &victim {
        assert!(t.run(v).unwrap().lost);
    }
    let expected = if victim.is_some() { 4 } else { 3 };

    // Two hours on: the subtask has stalled, the run is too long, etl/load has
    // not succeeded for an hour (never), and the killed child's run is lost.
    let later = Utc::now() + chrono::Duration::hours(2);
    let evaluators: Vec<_> = (0..2)
        .map(|_| {
            let cfg = cfg.clone();
            std::thread::spawn(move || Tracker::open(cfg).unwrap().evaluate_alerts(later).unwrap())
        })
        .collect();
    let fired: usize = evaluators
        .into_iter()
        .map(|e| e.join().unwrap().fired)
        .sum();
    assert_eq!(fired, expected);
    for rule in ["stall", "slow", "nightly"] {
        assert_eq!(
            by_rule(&got, rule).len(),
            1,
            "{rule}: {:?}",
            got.lock().unwrap()
        );
    }
    if let Some(victim) = &victim {
        let lost = by_rule(&got, "lost");
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (
                lost[0].body["kind"].as_str(),
                lost[0].body["run_id"].as_str()
            ),
            (Some("lost"), Some(victim.as_str()))
        );
    }
    let stall = &by_rule(&got, "stall")[0].body;
    assert_eq!(stall["subtask_number"], n);
    assert_eq!(stall["details"]["items_complete"], 3);
    assert_eq!(stall["run_id"], run.run_id());
    let slow = &by_rule(&got, "slow")[0].body;
    assert_eq!(slow["details"]["limit_seconds"], 3600.0);
    let nightly = &by_rule(&got, "nightly")[0].body;
    assert_eq!(nightly["details"]["last_success"], serde_json::Value::Null);

    // Later passes find the same incidents claimed: nothing new.
    let again = t
        .evaluate_alerts(later + chrono::Duration::minutes(5))
        .unwrap();
    assert_eq!(again.fired, 0);
    assert_eq!(got.lock().unwrap().len(), expected);
    // A success ends the silence; the next silence is a new incident.
    run.subtask_complete(n, None).unwrap();
    run.complete(None).unwrap();
    let next = t
        .evaluate_alerts(Utc::now() + chrono::Duration::hours(2))
        .unwrap();
    assert_eq!(next.fired, 1);
    assert_eq!(by_rule(&got, "nightly").len(), 2);
}

#[test]
fn a_receiver_that_is_down_gets_the_alert_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nobody listening, for now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(
        dir.path(),
        port,
        "    - {name: nightly, on: dead_man, stage: etl, task: load, hours: 1, to: hook}\n",
    );
    let t = Tracker::open(cfg).unwrap();
    let now = Utc::now();
    let first = t.evaluate_alerts(now).unwrap();
    assert_eq!((first.fired, first.delivered, first.failed), (1, 0, 1));
    let row = &t.alerts(&AlertFilter::default()).unwrap()[0];
    assert_eq!(row.state(), "pending");
    let error = row.last_error.clone().unwrap();
    assert!(!error.contains(SECRET), "{error}");
    assert!(!format!("{row:?}").contains(SECRET));

    let got = serve(TcpListener::bind(("127.0.0.1", port)).unwrap());
    // Not due yet: backoff.
    assert_eq!(t.evaluate_alerts(now).unwrap().delivered, 0);
    let retry = t
        .evaluate_alerts(now + chrono::Duration::minutes(5))
        .unwrap();
    assert_eq!((retry.fired, retry.delivered), (0, 1));
    assert_eq!(got.lock().unwrap().len(), 1);
    let row = &t.alerts(&AlertFilter::default()).unwrap()[0];
    assert_eq!((row.state(), row.attempts), ("delivered", 2));
    assert_eq!(got.lock().unwrap()[0].body["kind"], "dead_man");
}

/// Starts a run in a child process, kills it (SIGKILL) and returns the run's id.
fn killed_child_run(db: &Path) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("TASKER_TEST_CHILD", db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run_id = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("started ") {
            run_id = line[at + "started ".len()..].trim().to_string();
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run_id.is_empty());
    run_id
}

/// The child's work: start a run, say so, wait to be killed.
#[test]
fn child() {
    let Ok(db) = std::env::var("TASKER_TEST_CHILD") else {
        return;
    };
    let t = Tracker::open(Config::sqlite(db)).unwrap();
    let run = t
        .task_start("crash", "victim", RunOptions::default())
        .unwrap();
    println!("started {}", run.run_id());
    std::thread::sleep(std::time::Duration::from_secs(600));
}
