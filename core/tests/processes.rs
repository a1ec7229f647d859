//! Many OS processes on one SQLite file, and a process killed mid-run.
//!
//! Child processes are this test binary run again with `TASKER_TEST_CHILD` set: the
//! `child` test below then does the child's work instead of nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tasker::{Config, RunOptions, Status, SubtaskOptions, Tracker};

fn spawn_child(role: &str, db: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("TASKER_TEST_CHILD", role)
        .env("TASKER_TEST_DB", db)
        .env("TASKER_TEST_ARGS", args.join(" "));
    cmd
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of a child process; a no-op in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var("TASKER_TEST_CHILD") else {
        return;
    };
    let db = std::env::var("TASKER_TEST_DB").unwrap();
    let args: Vec<String> = std::env::var("TASKER_TEST_ARGS")
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    if role == "open" {
        // Start together: wait for the go file the parent creates.
        let go = std::path::Path::new(&db).with_extension("go");
        while !go.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let t = Tracker::open(Config::sqlite(db)).unwrap();
    match role.as_str() {
        "increment" => {
            let run = t.attach_run(&args[0]).unwrap();
            let n: u32 = args[1].parse().unwrap();
            let count: u64 = args[2].parse().unwrap();
            for _ in 0..count {
                run.subtask_increment(n, 1).unwrap();
            }
            t.close().unwrap();
        }
        "crash" => {
            // Report each transition after it returned, then spin on progress until killed.
            let run = t
                .task_start(
                    "crash",
                    "victim",
                    RunOptions {
                        total_subtasks: Some(3),
                        ..Default::default()
                    },
                )
                .unwrap();
            println!("started {}", run.run_id());
            let a = run
                .subtask_start("first", SubtaskOptions::default())
                .unwrap();
            run.subtask_complete(a, Some("done before the crash"))
                .unwrap();
            let b = run
                .subtask_start(
                    "second",
                    SubtaskOptions {
                        items_total: Some(u64::MAX >> 2),
                        ..Default::default()
                    },
                )
                .unwrap();
            println!("transitions-done");
            loop {
                run.subtask_increment(b, 1).unwrap();
            }
        }
        "open" => {
            // Opened (created and migrated) at the same moment as its siblings.
            let run = t.task_start("open", "race", RunOptions::default()).unwrap();
            run.complete(None).unwrap();
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn eight_processes_incrementing_one_subtask_give_the_exact_total() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    let run = t
        .task_start("load", "parallel", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start(
            "items",
            SubtaskOptions {
                items_total: Some(800_000),
                ..Default::default()
            },
        )
        .unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_child("increment", &db, &[run.run_id(), &n.to_string(), "100000"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(sub.items_complete, 800_000);
    assert_eq!(sub.status, Status::Running);
    assert_eq!(sub.percent_complete, Some(100.0));
}

#[test]
fn a_killed_process_leaves_a_sound_database_its_transitions_and_a_lost_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    let bystander = t
        .task_start("crash", "bystander", RunOptions::default())
        .unwrap();
    let bn = bystander
        .subtask_start("steady", SubtaskOptions::default())
        .unwrap();
    bystander.subtask_increment(bn, 5).unwrap();

    let mut child = KillOnDrop(
        spawn_child("crash", &db, &["-"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut run_id = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // libtest prints "test child ... " before the child's first line.
        if let Some(at) = line.find("started ") {
            run_id = line[at + "started ".len()..].trim().to_string();
        }
        if line.ends_with("transitions-done") {
            break;
        }
    }
    assert!(!run_id.is_empty());
    // Let the writer flush some progress, then kill mid-flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.subtasks(&run_id).unwrap()[1].items_complete == 0 {
        assert!(
            Instant::now() < deadline,
            "the child never flushed progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    let run = t.run(&run_id).unwrap();
    assert_eq!(
        run.status,
        Status::Running,
        "the stored status is what the process last said"
    );
    assert!(run.lost, "its process is gone, so the run is reported lost");
    let subs = t.subtasks(&run_id).unwrap();
    assert_eq!(subs.len(), 2, "every transition that returned is stored");
    assert_eq!(
        (subs[0].status, subs[0].progress_message.as_deref()),
        (Status::Completed, Some("done before the crash"))
    );
    assert!(subs[1].items_complete > 0);
    let lost: Vec<_> = t
        .active_runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.lost)
        .collect();
    assert_eq!(lost.len(), 1);

    // The other run is untouched and not lost.
    let other = t.run(bystander.run_id()).unwrap();
    assert_eq!((other.status, other.lost), (Status::Running, false));
    assert_eq!(t.subtasks(bystander.run_id()).unwrap()[0].items_complete, 5);
    bystander.complete(None).unwrap();
}

#[test]
fn many_processes_creating_one_new_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_child("open", &db, &["-"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(db.with_extension("go"), "").unwrap();
    for mut c in children {
        assert!(
            c.wait().unwrap().success(),
            "a process failed to open the new database"
        );
    }
    let t = Tracker::open(Config::sqlite(&db)).unwrap();
    let runs = t.history(&tasker::HistoryFilter::default()).unwrap();
    assert_eq!(runs.len(), 8);
    assert!(runs.iter().all(|r| r.status == Status::Completed));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rows, distinct, "each migration was applied exactly once");
    assert!(rows >= 2, "every migration was applied");
}

/// The writer thread leaves the program's signals to the program's own threads.
#[test]
fn the_writer_thread_blocks_asynchronous_signals() {
    let dir = tempfile::tempdir().unwrap();
    let _t = Tracker::open(Config::sqlite(dir.path().join("t.db"))).unwrap();
    // The thread names itself once it runs: look until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut writer_mask = None;
    while writer_mask.is_none() && Instant::now() < deadline {
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if name.trim() == "tasker-writer" {
                let status = std::fs::read_to_string(task.join("status")).unwrap();
                writer_mask = status
                    .lines()
                    .find_map(|l| l.strip_prefix("SigBlk:"))
                    .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mask = writer_mask.expect("a tasker-writer thread runs");
    let bit = |signal: i32| 1u64 << (signal - 1);
    for signal in [2, 15, 17, 1] {
        assert_ne!(
            mask & bit(signal),
            0,
            "signal {signal} is blocked in the writer"
        );
    }
    assert_eq!(mask & bit(11), 0, "SIGSEGV stays deliverable");
}
