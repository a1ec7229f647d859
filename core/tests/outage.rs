//! A database that cannot be written must not break the pipeline: calls return
//! normally, writes are kept (in memory, then in a spool file) and replayed in order
//! when it is back, and a process that exits meanwhile leaves its writes for the next.
//!
//! The outage here is real: another connection holds SQLite's write lock longer than
//! the tracker's busy timeout. (tests/pg has the same with a stopped PostgreSQL server.)

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{sqlite_config as config, state_home, wait_for_replay, LogCapture};
use tasker::{Config, RunOptions, Status, SubtaskOptions, Tracker};

type Outage = common::SqliteOutage;

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

/// While a backlog of queued writes is replayed, pipeline calls queue behind it
/// and return at once: none waits for the replay (a generous bound here; the
/// benchmark reports the real figures).
#[test]
fn no_tracking_call_waits_for_the_replay_of_a_backlog() {
    state_home();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = Tracker::open(config(&db)).unwrap();
    let run = t
        .task_start("replay", "backlog", RunOptions::default())
        .unwrap();
    t.flush().unwrap();
    let outage = Outage::start(&db);
    for i in 0..600 {
        let n = run
            .subtask_start(&format!("queued {i}"), SubtaskOptions::default())
            .unwrap();
        run.subtask_increment(n, 3).unwrap();
        run.subtask_complete(n, None).unwrap();
    }
    assert!(t.health().pending_writes >= 1_200, "{:?}", t.health());
    outage.end();

    let mut worst = Duration::ZERO;
    let mut during_replay = 0;
    let until = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        let h = t.health();
        if h.reachable && h.pending_writes == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the backlog is never replayed: {h:?}"
        );
        if h.replaying {
            during_replay += 1;
        }
        let started = Instant::now();
        let n = run
            .subtask_start(&format!("during {i}"), SubtaskOptions::default())
            .unwrap();
        run.subtask_increment(n, 1).unwrap();
        run.subtask_complete(n, None).unwrap();
        worst = worst.max(started.elapsed());
        i += 1;
        // A pipeline does some work between transitions (a tight loop of them
        // could outrun any replay).
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        during_replay > 0,
        "no call was made while the backlog was replayed"
    );
    assert!(
        worst < Duration::from_millis(50),
        "a tracking call waited {worst:?} during the replay"
    );
    let subs = t.subtasks(run.run_id()).unwrap();
    assert_eq!(subs.len(), 600 + i);
    assert!(subs.iter().all(|s| s.status == Status::Completed));
}

/// One warning when an outage begins, one line when everything queued during it
/// is written, each naming the database once (no doubled prefixes).
#[test]
fn an_outage_is_said_once_and_its_end_once() {
    state_home();
    LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warned.db");
    let t = Tracker::open(config(&db)).unwrap();
    let run = t.task_start("warn", "once", RunOptions::default()).unwrap();
    let outage = Outage::start(&db);
    for i in 0..50 {
        let n = run
            .subtask_start(&format!("s{i}"), SubtaskOptions::default())
            .unwrap();
        run.subtask_increment(n, 1).unwrap();
        std::thread::sleep(Duration::from_millis(10)); // the writer retries meanwhile
        run.subtask_complete(n, None).unwrap();
    }
    outage.end();
    let h = wait_for_replay(&t);
    assert_eq!(h.pending_writes, 0, "{h:?}");
    let mine = |needle: &str| {
        LogCapture::lines_with(&db.display().to_string())
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect::<Vec<_>>()
    };
    let down = mine("cannot write to");
    let back = mine("is reachable again");
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(
        back[0].contains("queued write(s) replayed in"),
        "{}",
        back[0]
    );
    for line in down.iter().chain(&back) {
        assert!(!line.contains("storage (sqlite): storage"), "{line}");
        assert!(!line.contains("sqlite:sqlite:"), "{line}");
        assert_eq!(line.matches(&db.display().to_string()).count(), 1, "{line}");
    }
}

/// Spool files are never trusted: unreadable lines (garbage, a line cut inside a
/// UTF-8 character, a torn last line) are moved aside with one warning naming the
/// file, a file from a newer version is set aside whole, and the rest is replayed.
#[test]
fn corrupt_spool_files_are_replayed_around_and_said_once() {
    let state = state_home();
    LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spool.db");
    let run_id = {
        let t = Tracker::open(config(&db)).unwrap();
        let run = t
            .task_start("spool", "corrupt", RunOptions::default())
            .unwrap();
        t.flush().unwrap();
        run.run_id().to_string()
    };
    let spool_dir = state.join("tasker/spool");
    let key = common::spool_key(&db);
    {
        // A process that works through an outage and exits, leaving a spool file.
        let outage = Outage::start(&db);
        let t = Tracker::open(config(&db)).unwrap();
        let run = t.attach_run(&run_id).unwrap();
        for i in 0..10 {
            let n = run
                .subtask_start(&format!("s{i}"), SubtaskOptions::default())
                .unwrap();
            run.subtask_increment(n, 10).unwrap();
            run.subtask_update(
                n,
                &tasker::SubtaskProgress {
                    message: Some(format!("café {i}")),
                    ..Default::default()
                },
            )
            .unwrap();
            run.subtask_complete(n, None).unwrap();
        }
        // Exits while the database is still locked (as at process exit: the
        // writer thread stops, what waits goes to a spool file).
        t.close().unwrap();
        assert!(t.health().spooled_writes > 0, "{:?}", t.health());
        drop(run);
        drop(t);
        outage.end();
    }
    let file = std::fs::read_dir(&spool_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{key}.")) && name.ends_with(".jsonl")
        })
        .expect("the exiting process left a spool file");
    let text = std::fs::read(&file).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    lines.pop(); // after the last newline
    let find = |lines: &Vec<Vec<u8>>, needle: &str| {
        lines
            .iter()
            .position(|l| String::from_utf8_lossy(l).contains(needle))
            .unwrap()
    };
    let s3 = find(&lines, "café 3");
    lines[s3] = b"\xff\xfe{not json at all".to_vec();
    let s5 = find(&lines, "café 5");
    let cut = lines[s5]
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .unwrap()
        + 1;
    lines[s5].truncate(cut); // inside the two bytes of "é"
    let mut corrupt = lines.join(&b'\n');
    corrupt.push(b'\n');
    let last = lines.last().unwrap().len();
    corrupt.truncate(corrupt.len() - 1 - last / 2); // the last line torn by a crash
    std::fs::write(&file, &corrupt).unwrap();
    // And a spool file of a newer version, left by a process long gone.
    let newer = spool_dir.join(format!("{key}.999999999.1.jsonl"));
    std::fs::write(&newer, "{\"tasker_spool\":99}\n{\"Teleport\":{}}\n").unwrap();

    // The next process replays around all of it.
    let t = Tracker::open(config(&db)).unwrap();
    assert_eq!(t.health().pending_writes, 0, "{:?}", t.health());
    let subs: std::collections::BTreeMap<String, (Status, i64)> = t
        .subtasks(&run_id)
        .unwrap()
        .into_iter()
        .map(|s| (s.subtask_name, (s.status, s.items_complete)))
        .collect();
    assert_eq!(subs.len(), 10, "{subs:?}");
    for (name, (status, items)) in &subs {
        let want = match name.as_str() {
            "s3" | "s5" => (Status::Completed, 0), // their progress line was unreadable
            "s9" => (Status::Running, 10),         // its completion was torn off
            _ => (Status::Completed, 10),
        };
        assert_eq!((*status, *items), want, "{name}");
    }
    let aside = |p: &std::path::Path| {
        let mut n = p.as_os_str().to_owned();
        n.push(".bad");
        std::path::PathBuf::from(n)
    };
    let moved = std::fs::read(aside(&file)).unwrap();
    assert_eq!(
        moved.iter().filter(|b| **b == b'\n').count(),
        3,
        "three lines moved aside"
    );
    assert!(!file.exists() && !newer.exists());
    let about = |p: &std::path::Path| LogCapture::lines_with(&p.display().to_string());
    assert_eq!(about(&file).len(), 1, "{:?}", about(&file));
    assert!(
        about(&file)[0].contains("3 unreadable line(s)"),
        "{:?}",
        about(&file)
    );
    // The newer file was claimed (renamed to this process) before it was read.
    let claimed = spool_dir.join(format!("{key}.{}.1.jsonl", std::process::id()));
    assert!(aside(&claimed).exists());
    let said = about(&claimed);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("newer tasker"), "{said:?}");
}
