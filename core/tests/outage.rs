//! A database that cannot be written must not break the pipeline: calls return
//! normally, writes are kept (in memory, then in a spool file) and replayed in order
//! when it is back, and a process that exits meanwhile leaves its writes for the next.
//!
//! The outage here is real: another connection holds SQLite's write lock longer than
//! the tracker's busy timeout. (tests/pg has the same with a stopped PostgreSQL server.)

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tasker::{Config, RunOptions, Status, SubtaskOptions, Tracker};

/// Spool files go to a private state directory shared by the tests of this binary.
fn state_home() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        // SAFETY (edition 2021 has no unsafe here): set once, before any tracker opens.
        std::env::set_var("XDG_STATE_HOME", d.path());
        d
    })
    .path()
}

fn config(db: &std::path::Path) -> Config {
    let mut c = Config::sqlite(db);
    c.busy_timeout = Duration::from_millis(50);
    c.flush_interval = Duration::from_millis(50);
    c
}

/// Holds the write lock of the database until dropped.
struct Outage(rusqlite::Connection);

impl Outage {
    fn start(db: &std::path::Path) -> Outage {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        Outage(c)
    }
    fn end(self) {
        self.0.execute_batch("COMMIT").unwrap();
    }
}

#[test]
fn child() {
    if std::env::var("TASKER_TEST_CHILD").is_err() {
        return;
    }
    // XDG_STATE_HOME comes from the parent: the spool must land where it looks.
    let db = std::env::var("TASKER_TEST_DB").unwrap();
    let run_id = std::env::var("TASKER_TEST_RUN").unwrap();
    // Opens while the database is locked: tracking starts in outage mode.
    let t = Tracker::open(config(db.as_ref())).unwrap();
    let run = t.attach_run(&run_id).unwrap();
    for _ in 0..5_000 {
        run.subtask_increment(1, 1).unwrap();
    }
    run.subtask_complete(1, Some("finished during the outage"))
        .unwrap();
    assert!(!t.health().reachable);
    t.flush().unwrap(); // to the spool file
    assert!(t.health().spooled_writes > 0);
}

/// Waits (up to 30 s) until everything queued during an outage is written.
fn wait_for_replay(t: &Tracker) -> tasker::Health {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = t.health();
        if (h.reachable && h.pending_writes == 0) || std::time::Instant::now() > until {
            return h;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn calls_return_during_an_outage_and_the_state_is_exact_afterwards() {
    state_home();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = Tracker::open(config(&db)).unwrap();
    let run = t
        .task_start(
            "outage",
            "steady",
            RunOptions {
                total_subtasks: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let a = run
        .subtask_start("before", SubtaskOptions::default())
        .unwrap();
    run.subtask_increment(a, 10).unwrap();
    t.flush().unwrap();

    let outage = Outage::start(&db);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2_500 {
                    run.subtask_increment(a, 1).unwrap();
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(200)); // the writer fails and backs off
    run.subtask_complete(a, Some("done in the dark")).unwrap();
    let b = run
        .subtask_start(
            "during",
            SubtaskOptions {
                items_total: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(b, 2, "numbered here while the database is away");
    for _ in 0..300 {
        run.subtask_increment(b, 1).unwrap();
    }
    run.subtask_complete(b, None).unwrap();
    run.complete(Some("finished during the outage")).unwrap();
    let h = t.health();
    assert!(
        !h.reachable && h.pending_writes > 0 && h.last_error.is_some(),
        "{h:?}"
    );
    assert!(
        t.task_status(&Default::default()).is_err(),
        "queries say the database is away"
    );
    outage.end();

    // The writer reconnects and replays in the background; an explicit flush makes
    // the rest durable meanwhile (in the database, or a spool file while replaying).
    t.flush().unwrap();
    let h = wait_for_replay(&t);
    assert!(h.reachable && h.pending_writes == 0, "{h:?}");
    let subs = t.subtasks(run.run_id()).unwrap();
    assert_eq!(
        (subs[0].status, subs[0].items_complete),
        (Status::Completed, 10_010)
    );
    assert_eq!(
        subs[0].progress_message.as_deref(),
        Some("done in the dark")
    );
    assert_eq!(
        (subs[1].status, subs[1].items_complete, subs[1].items_total),
        (Status::Completed, 300, Some(300))
    );
    let row = t.run(run.run_id()).unwrap();
    assert_eq!(row.status, Status::Completed);
    assert_eq!(
        row.overall_progress_message.as_deref(),
        Some("finished during the outage")
    );
    // Stored with the time they happened, in order.
    let events = t.events_after(0, Some(run.run_id()), 100).unwrap();
    let times: Vec<_> = events.iter().map(|e| e.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{events:?}");
    assert_eq!(events.last().unwrap().new_status, Status::Completed);
}

#[test]
fn a_process_that_exits_during_an_outage_is_replayed_by_the_next_one() {
    let state = state_home();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = Tracker::open(config(&db)).unwrap();
    let run = t
        .task_start("outage", "worker", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    assert_eq!(n, 1);
    drop(t);

    let outage = Outage::start(&db);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("TASKER_TEST_CHILD", "1")
        .env("TASKER_TEST_DB", &db)
        .env("TASKER_TEST_RUN", run.run_id())
        .env("XDG_STATE_HOME", state)
        .status()
        .unwrap();
    assert!(status.success());
    outage.end();

    // The next tasker process on this host (here: a new tracker) replays the spool.
    let t = Tracker::open(config(&db)).unwrap();
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!((sub.status, sub.items_complete), (Status::Completed, 5_000));
    assert_eq!(
        sub.progress_message.as_deref(),
        Some("finished during the outage")
    );
    let left: Vec<_> = std::fs::read_dir(state.join("tasker/spool"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "the spool file was consumed: {left:?}");
}

/// A PostgreSQL config for a local port where a test plays a server that never answers.
fn postgres_on_port(port: u16, connect_timeout_s: u32) -> Config {
    let mut c = Config::sqlite("");
    c.location = tasker::config::Location::Postgres {
        conninfo: tasker::config::Secret::new(format!(
            "host=127.0.0.1 port={port} user=nobody dbname=none sslmode=disable \
             connect_timeout={connect_timeout_s}"
        )),
        schema: "tasker".into(),
    };
    c
}

/// A server that accepts connections and never answers (a hung PostgreSQL, a proxy
/// in front of a dead one): the writer thread's reconnect waits on it, and the
/// pipeline's own calls must not wait with it.
#[test]
fn calls_during_an_outage_never_wait_for_a_reconnect() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};

    let _ = state_home();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = postgres_on_port(port, 2);
    c.flush_interval = Duration::from_millis(50);
    // Nothing listens yet: tracking starts in outage mode.
    let t = Tracker::open(c).unwrap();
    let run = t
        .task_start("s", "hung server", RunOptions::default())
        .unwrap();

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let (accepted_tx, accepted) = mpsc::channel();
    let hold = {
        let released = Arc::clone(&released);
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            accepted_tx.send(()).unwrap();
            // Never answers; lets go only long after a correct test is done.
            std::thread::sleep(Duration::from_secs(20));
            released.store(true, Ordering::SeqCst);
            drop(socket);
        })
    };
    accepted
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer thread tries to reconnect");

    // The writer is now stuck in the connection's handshake. These return at once:
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    run.subtask_increment(n, 5).unwrap();
    run.complete(None).unwrap();
    let h = t.health();
    assert!(
        !released.load(Ordering::SeqCst),
        "a call waited for the writer's reconnect"
    );
    assert!(!h.reachable && h.pending_writes >= 3, "{h:?}");
    drop(hold); // detached: the listener thread ends on its own
}

/// The whole connection establishment has a deadline (connect_timeout), as with
/// libpq: opening a tracker and an explicit flush against a server that accepts and
/// never answers return (the tracker starts in outage mode, the flush spools).
#[test]
fn a_server_that_never_answers_holds_no_call_past_connect_timeout() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let _ = state_home();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let released = Arc::new(AtomicBool::new(false));
    {
        let released = Arc::clone(&released);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            listener.set_nonblocking(true).unwrap();
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if let Ok((socket, _)) = listener.accept() {
                    held.push(socket); // accepted, never answered
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            released.store(true, Ordering::SeqCst);
        });
    }
    let t = Tracker::open(postgres_on_port(port, 1)).unwrap();
    let run = t
        .task_start("s", "silent server", RunOptions::default())
        .unwrap();
    run.complete(None).unwrap();
    t.flush().unwrap();
    let h = t.health();
    assert!(
        !released.load(Ordering::SeqCst),
        "a call waited for the server to let go"
    );
    assert!(!h.reachable && h.spooled_writes >= 2, "{h:?}");
    assert!(
        h.last_error.as_deref().unwrap_or("").contains("no answer"),
        "{h:?}"
    );
}
