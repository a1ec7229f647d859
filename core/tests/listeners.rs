//! Listeners get exactly what the database stored: every event of this process's
//! writes (the implicit STARTED -> RUNNING of progress included) once, in commit
//! order, equal to what the events query returns. On a real SQLite file, through
//! a real outage (another connection holding the write lock), and on PostgreSQL
//! when `TASKER_PG_URL` names a server (`scripts/test-postgres.sh`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sqlite_config, state_home, wait_for_replay, SqliteOutage};
use tasker::{Config, EventRow, RunOptions, RunProgress, Status, SubtaskOptions, Tracker};

struct Db {
    config: Config,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        config: sqlite_config(&dir.path().join("events.db")),
        _dir: dir,
    }
}

fn postgres(test: &str) -> Db {
    Db {
        config: common::postgres_config("listen", test),
        _dir: tempfile::tempdir().unwrap(),
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(super::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] #[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"] fn $name() {
                super::$name(super::postgres(stringify!($name)));
            } )*
        }
    };
}

suite!(listeners_get_the_stored_events_with_their_ids);

type Seen = Arc<Mutex<Vec<EventRow>>>;

fn listen(t: &Tracker) -> Seen {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    t.add_listener(Arc::new(move |e: &EventRow| {
        sink.lock().unwrap().push(e.clone())
    }));
    seen
}

/// What the events query returns for these runs, in event order.
fn stored_events(t: &Tracker, runs: &[&str]) -> Vec<EventRow> {
    let mut all: Vec<EventRow> = runs
        .iter()
        .flat_map(|r| t.events_after(0, Some(r), 1000).unwrap())
        .collect();
    all.sort_by_key(|e| e.event_id);
    all
}

/// What the listener saw once it has as many events as were stored (the events
/// of a write go out on another thread when that one was giving out earlier
/// events at the time), and what was stored.
fn settled(seen: &Seen, t: &Tracker, runs: &[&str]) -> (Vec<EventRow>, Vec<EventRow>) {
    let stored = stored_events(t, runs);
    let until = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < stored.len() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.lock().unwrap().clone();
    (seen, stored)
}

type Shape = (Option<i64>, Option<Status>, Status);

fn shape(events: &[EventRow], run: &str) -> Vec<Shape> {
    events
        .iter()
        .filter(|e| e.run_id == run)
        .map(|e| (e.subtask_number, e.old_status, e.new_status))
        .collect()
}

use Status::*;

fn listeners_get_the_stored_events_with_their_ids(db: Db) {
    let t = Tracker::open(db.config.clone()).unwrap();
    let seen = listen(&t);

    // A run whose first progress moves it to RUNNING.
    let a = t
        .task_start("events", "plain", RunOptions::default())
        .unwrap();
    a.update(&RunProgress {
        overall_percent: Some(50.0),
        ..Default::default()
    })
    .unwrap();
    t.flush().unwrap();
    a.complete(Some("done")).unwrap();

    // A subtask whose first progress moves it to RUNNING.
    let b = t
        .task_start("events", "parts", RunOptions::default())
        .unwrap();
    let n = b.subtask_start("part", SubtaskOptions::default()).unwrap();
    b.subtask_increment(n, 3).unwrap();
    t.flush().unwrap();
    b.subtask_complete(n, None).unwrap();
    b.complete(None).unwrap();

    // A run that fails with a subtask open closes it.
    let c = t
        .task_start("events", "fails", RunOptions::default())
        .unwrap();
    c.subtask_start("open", SubtaskOptions::default()).unwrap();
    c.fail("boom", None).unwrap();

    let (seen, stored) = settled(&seen, &t, &[a.run_id(), b.run_id(), c.run_id()]);
    assert_eq!(seen, stored, "exactly the stored events, in order");
    assert!(seen.windows(2).all(|w| w[0].event_id < w[1].event_id));
    let (started, running) = (Some(Started), Some(Running));
    assert_eq!(
        shape(&seen, a.run_id()),
        [
            (None, Some(NotStarted), Started),
            (None, started, Running),
            (None, running, Completed),
        ]
    );
    assert_eq!(
        shape(&seen, b.run_id()),
        [
            (None, Some(NotStarted), Started),
            (Some(1), Some(NotStarted), Started),
            (None, started, Running),
            (Some(1), started, Running),
            (Some(1), running, Completed),
            (None, running, Completed),
        ]
    );
    assert_eq!(
        shape(&seen, c.run_id()),
        [
            (None, Some(NotStarted), Started),
            (Some(1), Some(NotStarted), Started),
            (None, started, Running),
            (Some(1), started, Failed),
            (None, running, Failed),
        ]
    );
    let implicit = seen
        .iter()
        .find(|e| e.run_id == a.run_id() && e.new_status == Running)
        .unwrap();
    assert_eq!(
        (implicit.kind.as_str(), implicit.message.as_deref()),
        ("run", None)
    );
    assert!(seen.iter().all(|e| e.stage_name == "events"));
}

#[test]
fn events_written_during_an_outage_come_once_after_the_replay() {
    state_home();
    let db = sqlite();
    let path = db._dir.path().join("events.db");
    let t = Tracker::open(db.config.clone()).unwrap();
    let seen = listen(&t);
    let run = t
        .task_start("outage", "late", RunOptions::default())
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);

    let outage = SqliteOutage::start(&path);
    let n = run
        .subtask_start("dark", SubtaskOptions::default())
        .unwrap();
    run.subtask_increment(n, 5).unwrap();
    t.flush().unwrap();
    run.subtask_complete(n, None).unwrap();
    run.complete(Some("finished in the dark")).unwrap();
    let h = t.health();
    assert!(h.pending_writes > 0, "{h:?}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing stored, nothing said"
    );

    outage.end();
    let health = wait_for_replay(&t);
    assert_eq!(health.pending_writes, 0, "{health:?}");
    t.flush().unwrap();
    let (seen, stored) = settled(&seen, &t, &[run.run_id()]);
    assert_eq!(seen, stored, "each once, in order");
    assert_eq!(
        shape(&seen, run.run_id()),
        [
            (None, Some(NotStarted), Started),
            (Some(1), Some(NotStarted), Started),
            (None, Some(Started), Running),
            (Some(1), Some(Started), Running),
            (Some(1), Some(Running), Completed),
            (None, Some(Running), Completed),
        ]
    );
}

#[test]
fn a_listener_may_call_the_tracker_and_its_events_follow() {
    let db = sqlite();
    let t = Tracker::open(db.config.clone()).unwrap();
    let seen = listen(&t);
    let inner = t.clone();
    // On every run start of "first", start and complete a run of "second".
    t.add_listener(Arc::new(move |e: &EventRow| {
        if e.task_name == "first" && e.new_status == Started && e.subtask_number.is_none() {
            let r = inner
                .task_start("s", "second", RunOptions::default())
                .unwrap();
            r.complete(None).unwrap();
        }
    }));
    let first = t.task_start("s", "first", RunOptions::default()).unwrap();
    let names: Vec<(String, Status)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.task_name.clone(), e.new_status))
        .collect();
    assert_eq!(
        names,
        [
            ("first".to_string(), Started),
            ("second".to_string(), Started),
            ("second".to_string(), Completed),
        ]
    );
    first.complete(None).unwrap();
}
