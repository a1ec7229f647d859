//! Tracking through a PostgreSQL outage, end to end: the server is stopped with
//! `pg_ctl stop -m immediate` while four processes increment one subtask; they go on,
//! exit during the outage (leaving spool files), the run completes during the outage,
//! the server comes back, and every transition and the exact total are stored, with no
//! call having raised. Needs the throwaway server of tests/pg.sh (scripts/test-postgres.sh).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tasker::config::{Config, Location, Secret};
use tasker::{RunOptions, Status, SubtaskOptions, Tracker};

fn config(url: &str, schema: &str) -> Config {
    let mut c = Config::sqlite("unused");
    c.location = Location::Postgres {
        conninfo: Secret::new(url),
        schema: schema.into(),
    };
    c.flush_interval = Duration::from_millis(50);
    c.busy_timeout = Duration::from_millis(500);
    c
}

fn pg_ctl(args: &[&str]) {
    let bin = std::env::var("PG_BIN").unwrap();
    let dir = std::env::var("TASKER_PG_DIR").unwrap();
    let runas = std::env::var("TASKER_PG_RUNAS").unwrap_or_default();
    let pg_ctl = format!("{bin}/pg_ctl");
    let mut cmd = if runas.is_empty() {
        Command::new(&pg_ctl)
    } else {
        let mut c = Command::new("runuser");
        c.args(["-u", &runas, "--", &pg_ctl]);
        c
    };
    let data = format!("{dir}/data");
    let status = cmd
        .args(["-D", &data])
        .args(args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {args:?} failed");
}

/// A child: increments subtask 1 of the run for `secs` seconds, flushes (to the spool
/// while the server is down), prints how many increments it made, and exits.
#[test]
fn child() {
    let Ok(run_id) = std::env::var("TASKER_TEST_RUN") else {
        return;
    };
    let url = std::env::var("TASKER_PG_URL").unwrap();
    let schema = std::env::var("TASKER_TEST_SCHEMA").unwrap();
    let secs: u64 = std::env::var("TASKER_TEST_SECS").unwrap().parse().unwrap();
    let t = Tracker::open(config(&url, &schema)).unwrap();
    let run = t.attach_run(&run_id).unwrap();
    println!("attached");
    let start = Instant::now();
    let mut count: u64 = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        for _ in 0..1000 {
            run.subtask_increment(1, 1).unwrap();
        }
        count += 1000;
    }
    t.flush().unwrap();
    println!("count {count} spooled {}", t.health().spooled_writes);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn an_outage_loses_nothing_and_breaks_nothing() {
    let url = std::env::var("TASKER_PG_URL").expect("TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test");
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_STATE_HOME", state.path());
    let schema = format!("outage_{}", std::process::id());
    let t = Tracker::open(config(&url, &schema)).unwrap();
    let run = t
        .task_start(
            "outage",
            "pg",
            RunOptions {
                total_subtasks: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    assert_eq!(n, 1);

    let mut children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture", "--test-threads=1"])
                .env("TASKER_TEST_RUN", run.run_id())
                .env("TASKER_TEST_SCHEMA", &schema)
                .env("TASKER_TEST_SECS", "4")
                .env("XDG_STATE_HOME", state.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for out in &mut outputs {
        for line in out.by_ref() {
            if line.unwrap().ends_with("attached") {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    pg_ctl(&["stop", "-m", "immediate", "-w"]);
    let outage_started = Instant::now();

    // The children go on, and exit during the outage; so does our own work.
    let mut total = 0u64;
    for (mut c, out) in children.into_iter().zip(outputs) {
        for line in out {
            let line = line.unwrap();
            if let Some(rest) = line.split("count ").nth(1) {
                total += rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
                assert!(
                    line.contains("spooled") && !line.ends_with("spooled 0"),
                    "child spooled its writes: {line}"
                );
            }
        }
        assert!(
            c.wait().unwrap().success(),
            "a child raised during the outage"
        );
    }
    assert!(total > 0);
    while outage_started.elapsed() < Duration::from_secs(5) {
        run.subtask_increment(n, 1).unwrap();
        total += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    run.subtask_complete(n, Some("completed during the outage"))
        .unwrap();
    let m = run
        .subtask_start("after", SubtaskOptions::default())
        .unwrap();
    run.subtask_increment(m, 3).unwrap();
    run.complete(Some("run completed during the outage"))
        .unwrap();
    assert!(!t.health().reachable);
    assert!(t.health().pending_writes > 0);

    pg_ctl(&[
        "-l",
        &format!("{}/server.log", std::env::var("TASKER_PG_DIR").unwrap()),
        "-w",
        "-t",
        "60",
        "-o",
        &std::env::var("TASKER_PG_OPTS").unwrap(),
        "start",
    ]);
    // Replayed in the background by the writer thread; meanwhile an explicit flush
    // keeps the rest durable (a spool file), without waiting for the replay.
    t.flush().unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while t.health().pending_writes > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(t.health().pending_writes, 0, "{:?}", t.health());

    // A later process on this host replays the spool files the children left.
    let later = Tracker::open(config(&url, &schema)).unwrap();
    let subs = later.subtasks(run.run_id()).unwrap();
    assert_eq!(
        (subs[0].status, subs[0].items_complete),
        (Status::Completed, total as i64),
        "exact total"
    );
    assert_eq!(
        subs[0].progress_message.as_deref(),
        Some("completed during the outage")
    );
    assert_eq!(
        (subs[1].status, subs[1].items_complete),
        (Status::Completed, 3)
    );
    let row = later.run(run.run_id()).unwrap();
    assert_eq!(row.status, Status::Completed);
    assert_eq!(
        row.overall_progress_message.as_deref(),
        Some("run completed during the outage")
    );
    let left = std::fs::read_dir(state.path().join("tasker/spool"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "every spool file was replayed");
}
