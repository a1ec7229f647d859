//! A write whose COMMIT reached the server but whose answer was lost (the
//! connection dropped after the server committed) is applied exactly once: the
//! tracker cannot know whether it was applied, queues it under its id, and the
//! server skips it when it comes again.
//!
//! The loss is real: the tracker talks to the throwaway server of tests/pg.sh
//! through a small TCP proxy that, when armed, forwards one execution to the
//! server, lets it commit, and then cuts the connection before the answer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasker::config::{Config, Location, Secret};
use tasker::{RunOptions, Status, SubtaskOptions, Tracker, TransitionInfo};

/// An Execute message of the unnamed portal (all rows), as tokio-postgres sends it.
const EXECUTE: &[u8] = b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00";

struct Proxy {
    port: u16,
    armed: Arc<AtomicBool>,
    fired: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicUsize::new(0));
        {
            let (armed, fired) = (Arc::clone(&armed), Arc::clone(&fired));
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let server = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
                    let (armed, fired) = (Arc::clone(&armed), Arc::clone(&fired));
                    let cut = Arc::new(AtomicBool::new(false));
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let answers_cut = Arc::clone(&cut);
                    std::thread::spawn(move || answers(s2, c2, &answers_cut));
                    std::thread::spawn(move || forward(client, server, &armed, &fired, &cut));
                }
            });
        }
        Proxy { port, armed, fired }
    }

    /// The next execution reaches the server; its answer never comes back.
    fn lose_next_answer(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// The server's answers, passed on until the connection is cut.
fn answers(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    armed: &AtomicBool,
    fired: &AtomicUsize,
    cut: &AtomicBool,
) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let executes = chunk.windows(EXECUTE.len()).any(|w| w == EXECUTE);
        let lose = executes && armed.swap(false, Ordering::SeqCst);
        if lose {
            cut.store(true, Ordering::SeqCst); // no answer passes from now on
            fired.fetch_add(1, Ordering::SeqCst);
        }
        if server.write_all(chunk).is_err() {
            break;
        }
        if lose {
            // The server runs and commits it meanwhile (its answer, cut above,
            // never reaches the client); then the connection is closed.
            std::thread::sleep(Duration::from_millis(500));
            let _ = server.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}

fn through_proxy(proxy: &Proxy, schema: &str) -> Config {
    let mut c = Config::sqlite("unused");
    c.location = Location::Postgres {
        conninfo: Secret::new(format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable connect_timeout=5",
            proxy.port
        )),
        schema: schema.into(),
    };
    c.flush_interval = Duration::from_millis(50);
    // No heartbeat during the test: the only executions are the test's own.
    c.heartbeat_interval = Duration::from_secs(3600);
    c
}

fn wait_until_written(t: &Tracker) {
    let until = Instant::now() + Duration::from_secs(60);
    while !(t.health().reachable && t.health().pending_writes == 0) {
        assert!(Instant::now() < until, "never replayed: {:?}", t.health());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn writes_whose_answer_was_lost_are_applied_once() {
    let port = std::env::var("PGPORT").expect(
        "PGPORT names no test server: scripts/test-postgres.sh starts one and runs this test",
    );
    let proxy = Proxy::start(port.parse().unwrap());
    let schema = format!("lost_answer_{}", std::process::id());
    let t = Tracker::open(through_proxy(&proxy, &schema)).unwrap();
    let run = t
        .task_start("lost", "answers", RunOptions::default())
        .unwrap();
    run.fail("first failure", None).unwrap();
    let resets = |t: &Tracker| {
        t.events_after(0, Some(run.run_id()), 1000)
            .unwrap()
            .iter()
            .filter(|e| e.kind == "reset")
            .count()
    };

    // A reset (not idempotent: applied twice, it would be recorded twice).
    proxy.lose_next_answer();
    run.set_status(
        Status::Running,
        TransitionInfo {
            reset: true,
            message: Some("again".into()),
            ..TransitionInfo::default()
        },
    )
    .unwrap();
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 1, "the answer was lost");
    wait_until_written(&t);
    assert_eq!(resets(&t), 1, "the reset is recorded once");
    assert_eq!(t.run(run.run_id()).unwrap().status, Status::Running);

    // A subtask start: stored once, and its handle learns its number.
    proxy.lose_next_answer();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 2);
    wait_until_written(&t);
    let subs = t.subtasks(run.run_id()).unwrap();
    assert_eq!(subs.len(), 1, "one subtask: {subs:?}");
    assert_eq!(run.subtask_number(n), subs[0].subtask_number as u32);

    // A progress batch (deltas: applied twice, the count would be too high).
    run.subtask_increment(n, 7).unwrap();
    proxy.lose_next_answer();
    t.flush().unwrap();
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 3);
    wait_until_written(&t);
    assert_eq!(t.subtasks(run.run_id()).unwrap()[0].items_complete, 7);

    // A completion: once, with its own event.
    proxy.lose_next_answer();
    run.subtask_complete(n, None).unwrap();
    wait_until_written(&t);
    let completions = t
        .events_after(0, Some(run.run_id()), 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.subtask_number.is_some() && e.new_status == Status::Completed)
        .count();
    assert_eq!(completions, 1);
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 4);
    run.complete(None).unwrap();
    assert_eq!(t.run(run.run_id()).unwrap().status, Status::Completed);
}
