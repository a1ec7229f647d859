//! Several processes working on one shared run through an outage (SQLite held
//! locked past the busy timeout). Each process starts auto-numbered subtasks,
//! increments and completes them; one exits during the outage, leaving its
//! writes in a spool file for the next tasker process on the host. Afterwards
//! every subtask started anywhere is stored once, with its own name, exact
//! items, final status and events; no call raised; one warning per outage.
//!
//! (`scripts/test-outage.sh` runs the same with Python, R and C processes against
//! a PostgreSQL server that is stopped and started again.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{child_command, sqlite_config, state_home, KillOnDrop, LogCapture, SqliteOutage};
use tasker::{Config, RunOptions, Status, SubtaskOptions, Tracker};

const ITEMS: u64 = 40;

fn worker_config(db: &Path) -> Config {
    let mut c = sqlite_config(db);
    // Long enough that four busy processes never look like an outage to each
    // other; far shorter than the outage below.
    c.busy_timeout = Duration::from_millis(400);
    c
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap()
}

/// A worker process: starts subtasks of the shared run until told to stop (or,
/// for the one that exits during the outage, a fixed number once it began).
#[test]
fn child() {
    let Ok(role) = std::env::var("TASKER_TEST_CHILD") else {
        return;
    };
    LogCapture::install();
    let db = PathBuf::from(env("TASKER_TEST_DB"));
    let signals = PathBuf::from(env("TASKER_TEST_SIGNALS"));
    let tag = env("TASKER_TEST_TAG");
    let t = Tracker::open(worker_config(&db)).unwrap();
    let run = t.attach_run(&env("TASKER_TEST_RUN")).unwrap();
    let exits_in_outage = role == "exits-in-outage";
    if exits_in_outage {
        while !signals.join("locked").exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut i = 0;
    loop {
        let done = if exits_in_outage {
            i == 20
        } else {
            signals.join("stop").exists()
        };
        if done {
            break;
        }
        let name = format!("{tag}-{i}");
        let n = run
            .subtask_start(
                &name,
                SubtaskOptions {
                    items_total: Some(ITEMS),
                    ..Default::default()
                },
            )
            .unwrap();
        for k in 0..ITEMS {
            run.subtask_increment(n, 1).unwrap();
            if k % 10 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        run.subtask_complete(n, Some("done")).unwrap();
        println!("SUBTASK {name} {n}");
        i += 1;
    }
    if exits_in_outage {
        // Exits while the database is still locked: its writes go to a spool file.
        assert!(!t.health().reachable, "{:?}", t.health());
        t.flush().unwrap();
        assert!(t.health().spooled_writes > 0);
    } else {
        t.close().unwrap();
        assert_eq!(t.health().pending_writes, 0, "{:?}", t.health());
    }
    let down = LogCapture::lines_with("cannot write to").len();
    let back = LogCapture::lines_with("is reachable again").len();
    println!("WARNINGS {down} {back}");
    println!("DONE");
}

struct Worker {
    tag: String,
    child: KillOnDrop,
}

impl Worker {
    fn spawn(role: &str, tag: &str, db: &Path, run_id: &str, signals: &Path) -> Worker {
        let child = child_command(
            role,
            &[
                ("TASKER_TEST_DB", db.display().to_string()),
                ("TASKER_TEST_RUN", run_id.to_string()),
                ("TASKER_TEST_TAG", tag.to_string()),
                ("TASKER_TEST_SIGNALS", signals.display().to_string()),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        Worker {
            tag: tag.to_string(),
            child: KillOnDrop(child),
        }
    }

    /// Waits for the end; the subtasks it started and its warning counts.
    fn finish(mut self) -> (Vec<(String, i64)>, (usize, usize)) {
        let out = self.child.0.stdout.take().unwrap();
        let mut names = Vec::new();
        let mut warnings = None;
        let mut done = false;
        for line in BufReader::new(out).lines() {
            let line = line.unwrap();
            // The test harness may print "test child ... " ahead of the first line.
            let from = ["SUBTASK ", "WARNINGS ", "DONE"]
                .iter()
                .filter_map(|w| line.find(w))
                .min()
                .unwrap_or(0);
            let words: Vec<&str> = line[from..].split_whitespace().collect();
            match words.as_slice() {
                ["SUBTASK", name, number] => {
                    names.push((name.to_string(), number.parse().unwrap()))
                }
                ["WARNINGS", down, back] => {
                    warnings = Some((down.parse().unwrap(), back.parse().unwrap()))
                }
                ["DONE"] => done = true,
                _ => {}
            }
        }
        let status = self.child.0.wait().unwrap();
        assert!(
            status.success() && done,
            "worker {} failed: {status}",
            self.tag
        );
        (names, warnings.unwrap())
    }
}

#[test]
fn processes_sharing_a_run_through_an_outage_lose_and_misattribute_nothing() {
    if std::env::var("TASKER_TEST_CHILD").is_ok() {
        return;
    }
    state_home();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let signals = dir.path().join("signals");
    std::fs::create_dir(&signals).unwrap();
    let owner = Tracker::open(worker_config(&db)).unwrap();
    let run = owner
        .task_start("outage", "shared run", RunOptions::default())
        .unwrap();
    owner.flush().unwrap();

    let steady: Vec<Worker> = (0..3)
        .map(|k| Worker::spawn("steady", &format!("w{k}"), &db, run.run_id(), &signals))
        .collect();
    let mut exiter = Worker::spawn("exits-in-outage", "x", &db, run.run_id(), &signals);
    std::thread::sleep(Duration::from_millis(800)); // work while the database is up

    let outage = SqliteOutage::start(&db);
    std::fs::write(signals.join("locked"), "").unwrap();
    let began = Instant::now();
    // The exiter does its work and exits while the database is away.
    while exiter.child.0.try_wait().unwrap().is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the exiter hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (exiter_names, exiter_warnings) = exiter.finish();
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(began.elapsed()));
    outage.end();
    std::thread::sleep(Duration::from_millis(1000)); // work after it is back
    std::fs::write(signals.join("stop"), "").unwrap();

    let mut started: Vec<(String, i64)> = exiter_names.clone();
    assert_eq!(
        exiter_warnings,
        (1, 0),
        "the exiter warned once, saw no end"
    );
    for w in steady {
        let (names, (down, back)) = w.finish();
        assert!(!names.is_empty());
        assert_eq!(
            (down, back),
            (1, 1),
            "one warning per outage, one line when it ends"
        );
        started.extend(names);
    }

    // The next tasker process on this host: it replays whatever spool is left.
    let later = Tracker::open(worker_config(&db)).unwrap();
    let subs = later.subtasks(run.run_id()).unwrap();
    let stored: BTreeMap<String, (i64, Status, i64)> = subs
        .iter()
        .map(|s| {
            (
                s.subtask_name.clone(),
                (s.subtask_number, s.status, s.items_complete),
            )
        })
        .collect();
    assert_eq!(subs.len(), stored.len(), "every name stored once");
    let expected: BTreeSet<&String> = started.iter().map(|(name, _)| name).collect();
    let got: BTreeSet<&String> = stored.keys().collect();
    assert_eq!(expected.len(), started.len(), "names are unique");
    assert!(
        got == expected,
        "every subtask started anywhere is stored, and nothing else: missing {:?}, unexpected {:?}",
        expected.difference(&got).collect::<Vec<_>>(),
        got.difference(&expected).collect::<Vec<_>>()
    );
    for (name, (number, status, items)) in &stored {
        assert_eq!(
            (*status, *items),
            (Status::Completed, ITEMS as i64),
            "subtask {number} {name}"
        );
    }
    let events = later.events_after(0, Some(run.run_id()), 100_000).unwrap();
    for (name, (number, _, _)) in &stored {
        let mine: Vec<(Status, Status)> = events
            .iter()
            .filter(|e| e.subtask_number == Some(*number))
            .map(|e| (e.old_status.unwrap(), e.new_status))
            .collect();
        assert_eq!(
            mine,
            vec![
                (Status::NotStarted, Status::Started),
                (Status::Started, Status::Running),
                (Status::Running, Status::Completed),
            ],
            "events of {name}"
        );
    }
    // The scenario of the bug: numbers given out during the outage collided, and
    // the database stored those subtasks under other numbers.
    let renumbered = started
        .iter()
        .filter(|(name, given)| stored[name].0 != *given)
        .count();
    assert!(
        renumbered > 0,
        "no number given out during the outage was taken"
    );
    eprintln!(
        "{renumbered} of {} subtasks stored under another number than the one given out",
        started.len()
    );
    // The owner completes the run as it would any day.
    run.complete(Some("all workers done")).unwrap();
    assert_eq!(later.run(run.run_id()).unwrap().status, Status::Completed);
    let spool = state_home().join("tasker/spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|n| n.to_string_lossy().ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "every spool file was replayed: {left:?}");
}
