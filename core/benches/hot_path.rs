//! The write path, each next to its baseline in the same run:
//! - progress calls (Rust API and C ABI) next to an `AtomicU64::fetch_add` and next to a
//!   raw rusqlite UPDATE committed per call (WAL, synchronous=NORMAL);
//! - a transition (`subtask_complete`) next to that raw commit;
//! - the latency distribution of that transition and of the raw commit, call by call
//!   (criterion reports means, which the commits that run an automatic WAL checkpoint
//!   dominate);
//! - database transactions per second while one thread increments flat out;
//! - progress calls and a transition with one listener next to none (a listener
//!   gets every stored event, so the store reports them and a thread gives them out).
//!
//! `cargo bench -p tasker-core --bench hot_path`; ratios are printed at the end.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion};
use tasker::ffi::{tasker_run, tasker_subtask_increment};
use tasker::{Config, EventRow, RunOptions, SubtaskOptions, SubtaskProgress, Tracker};

fn tracker(dir: &tempfile::TempDir) -> Tracker {
    Tracker::open(Config::sqlite(dir.path().join("bench.db"))).unwrap()
}

fn raw_connection(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    c.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
         INSERT OR IGNORE INTO t VALUES (1, 0);",
    )
    .unwrap();
    c
}

fn progress(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir);
    let run = t
        .task_start("bench", "progress", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    // The C ABI's run handle, built the way tasker_task_start builds it.
    let c_run = tasker_attach(&t, run.run_id());

    let mut g = c.benchmark_group("progress");
    let counter = AtomicU64::new(0);
    g.bench_function("baseline: AtomicU64::fetch_add", |b| {
        b.iter(|| black_box(&counter).fetch_add(1, Ordering::Relaxed))
    });
    g.bench_function("subtask_increment (Rust)", |b| {
        b.iter(|| run.subtask_increment(black_box(n), 1).unwrap())
    });
    g.bench_function("tasker_subtask_increment (C ABI)", |b| {
        // SAFETY: c_run is a live handle from tasker_run_attach.
        b.iter(|| unsafe { tasker_subtask_increment(black_box(c_run), n, 1) })
    });
    let mut i = 0u64;
    g.bench_function("subtask_update items_complete (Rust)", |b| {
        b.iter(|| {
            i += 1;
            run.subtask_update(
                n,
                &SubtaskProgress {
                    items_complete: Some(i),
                    ..Default::default()
                },
            )
            .unwrap()
        })
    });
    let raw = raw_connection(&dir);
    g.bench_function("baseline: raw SQLite UPDATE + commit", |b| {
        b.iter(|| {
            raw.execute("UPDATE t SET n = n + 1 WHERE id = 1", [])
                .unwrap()
        })
    });
    g.finish();
    // SAFETY: from tasker_run_attach, freed once.
    unsafe { tasker::ffi::tasker_run_free(c_run) };
}

fn tasker_attach(t: &Tracker, run_id: &str) -> *mut tasker_run {
    let mut tracker = std::ptr::null_mut();
    let url = std::ffi::CString::new(format!(
        "sqlite://{}",
        match &t.config().location {
            tasker::Location::Sqlite { path } => path.display().to_string(),
            _ => unreachable!(),
        }
    ))
    .unwrap();
    let id = std::ffi::CString::new(run_id).unwrap();
    let mut run = std::ptr::null_mut();
    // SAFETY: valid strings and out-pointers; the tracker is leaked for the bench's life.
    unsafe {
        assert_eq!(
            tasker::ffi::tasker_open(url.as_ptr(), &mut tracker),
            tasker::ffi::tasker_status::Ok
        );
        assert_eq!(
            tasker::ffi::tasker_run_attach(tracker, id.as_ptr(), &mut run),
            tasker::ffi::tasker_status::Ok
        );
    }
    run
}

fn transitions(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir);
    let run = t
        .task_start("bench", "transitions", RunOptions::default())
        .unwrap();
    let mut g = c.benchmark_group("transition");
    let raw = raw_connection(&dir);
    g.bench_function("baseline: raw SQLite UPDATE + commit", |b| {
        b.iter(|| {
            raw.execute("UPDATE t SET n = n + 1 WHERE id = 1", [])
                .unwrap()
        })
    });
    // The same statements a subtask transition runs, hand-written on a raw connection:
    // what SQLite itself costs for a checked status change plus an event row.
    let same = rusqlite::Connection::open(dir.path().join("bench.db")).unwrap();
    same.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
    let mut k = 1_000_000u32;
    g.bench_function("baseline: raw SQLite, same statements as subtask_complete", |b| {
        b.iter(|| {
            k += 1;
            let tx = same.unchecked_transaction().unwrap();
            tx.execute(
                "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, last_update) VALUES (?1, ?2, 's', 'RUNNING', 'x')",
                rusqlite::params![run.run_id(), k],
            )
            .unwrap();
            tx.commit().unwrap();
            let tx = same.unchecked_transaction().unwrap();
            let _: String = tx
                .query_row("SELECT status FROM runs WHERE run_id = ?1", [run.run_id()], |r| r.get(0))
                .unwrap();
            let _: String = tx
                .query_row(
                    "SELECT status FROM subtasks WHERE run_id = ?1 AND subtask_number = ?2",
                    rusqlite::params![run.run_id(), k],
                    |r| r.get(0),
                )
                .unwrap();
            tx.execute(
                "UPDATE subtasks SET status = 'COMPLETED', end_time = 'y', last_update = 'y' WHERE run_id = ?1 AND subtask_number = ?2",
                rusqlite::params![run.run_id(), k],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status) VALUES ('y', ?1, ?2, 'subtask', 'RUNNING', 'COMPLETED')",
                rusqlite::params![run.run_id(), k],
            )
            .unwrap();
            tx.commit().unwrap();
        })
    });
    g.bench_function("subtask_complete", |b| {
        b.iter_batched(
            || run.subtask_start("s", SubtaskOptions::default()).unwrap(),
            |n| run.subtask_complete(n, None).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = progress, transitions
}

/// Transactions per second the database sees while one thread increments flat out.
fn commits_while_incrementing() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir);
    let run = t
        .task_start("bench", "commits", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    let before = t.stats();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..10_000 {
            run.subtask_increment(n, 1).unwrap();
        }
        calls += 10_000;
    }
    let secs = start.elapsed().as_secs_f64();
    let after = t.stats();
    t.flush().unwrap();
    let stored = t.subtasks(run.run_id()).unwrap()[0].items_complete as u64;
    assert_eq!(stored, calls, "every increment stored exactly once");
    let commits = (after.progress_commits - before.progress_commits) as f64 / secs;
    let bound = 1.0 / t.config().flush_interval.as_secs_f64();
    println!(
        "commits while incrementing: {:.0} calls/s, {commits:.1} progress transactions/s (bound 1/flush_interval = {bound:.1}/s)",
        calls as f64 / secs
    );
}

/// Latency percentiles of single calls: a transition and the raw commit, interleaved
/// so that both see the same machine.
fn transition_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir);
    let run = t
        .task_start("bench", "percentiles", RunOptions::default())
        .unwrap();
    let raw = raw_connection(&dir);
    let n = 20_000;
    let (mut ours, mut base) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let k = run.subtask_start("s", SubtaskOptions::default()).unwrap();
        let start = Instant::now();
        run.subtask_complete(k, None).unwrap();
        ours.push(start.elapsed());
        let start = Instant::now();
        raw.execute("UPDATE t SET n = n + 1 WHERE id = 1", [])
            .unwrap();
        base.push(start.elapsed());
    }
    let summary = |v: &mut Vec<Duration>| {
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        let mean = v.iter().sum::<Duration>().as_secs_f64() * 1e6 / v.len() as f64;
        (at(0.5), at(0.99), at(0.999), mean)
    };
    let (o, b) = (summary(&mut ours), summary(&mut base));
    for (name, s) in [("subtask_complete", o), ("raw UPDATE + commit", b)] {
        println!(
            "{name:>20}: p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs  mean {:7.1} µs",
            s.0, s.1, s.2, s.3
        );
    }
    println!(
        "transition / raw commit: {:.2}x at the median, {:.2}x in the mean",
        o.0 / b.0,
        o.3 / b.3
    );
}

/// What one listener costs: the mean time of progress calls and of transitions
/// (a subtask start and its completion: three events) with one listener that
/// counts events, next to none, in alternating rounds on one database; the
/// median round of each is reported.
fn listener_cost() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir);
    let run = t
        .task_start("bench", "listeners", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    let events = Arc::new(AtomicU64::new(0));
    let mean_ns = |calls: u32, f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(calls)
    };
    let (mut progress, mut transition) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _round in 0..7 {
        for listening in [false, true] {
            let id = listening.then(|| {
                let events = Arc::clone(&events);
                t.add_listener(Arc::new(move |_: &EventRow| {
                    events.fetch_add(1, Ordering::Relaxed);
                }))
            });
            let i = usize::from(listening);
            progress[i].push(mean_ns(1_000_000, &mut || {
                run.subtask_increment(black_box(n), 1).unwrap()
            }));
            transition[i].push(mean_ns(500, &mut || {
                let k = run.subtask_start("s", SubtaskOptions::default()).unwrap();
                run.subtask_complete(k, None).unwrap();
            }));
            if let Some(id) = id {
                t.remove_listener(id);
            }
        }
    }
    assert!(
        events.load(Ordering::Relaxed) >= 7 * 500 * 2,
        "the listener heard them"
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (what, [none, one]) in [
        ("subtask_increment", &mut progress),
        ("subtask start + complete", &mut transition),
    ] {
        let (none, one) = (median(none), median(one));
        println!(
            "{what:>24}: {none:10.1} ns with no listener, {one:10.1} ns with one: {:.3}x",
            one / none
        );
    }
}

fn main() {
    benches();
    transition_percentiles();
    commits_while_incrementing();
    listener_cost();
    Criterion::default().configure_from_args().final_summary();
}
