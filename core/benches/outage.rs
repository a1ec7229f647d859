//! The write path around an outage (SQLite held locked past its busy timeout),
//! each figure next to its baseline in the same run:
//!
//! - `subtask_start` + `subtask_complete` with 1, 1,000 and 10,000 other
//!   subtasks open in the run (the 10,000 : 1 ratio should be close to 1);
//! - replay throughput: queued writes applied per second once the database is
//!   back, next to a raw batched INSERT rate on the same kind of file;
//! - tracking-call latency (p50/p99/max) of 4 writers before, during and after a
//!   5 s outage, next to the same writers with no outage.
//!
//! `cargo bench -p tasker-core --bench outage` (set `TASKER_BENCH_QUICK=1` for a
//! short run).

use std::time::{Duration, Instant};

use tasker::{Config, RunOptions, SubtaskOptions, Tracker};

fn quick() -> bool {
    std::env::var("TASKER_BENCH_QUICK").is_ok()
}

fn config(db: &std::path::Path) -> Config {
    let mut c = Config::sqlite(db);
    c.busy_timeout = Duration::from_millis(100);
    c
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Start + complete pairs with `open` other subtasks open, interleaved by round so
/// that every size sees the same machine.
fn start_complete_vs_open_subtasks() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [1usize, 1_000, 10_000];
    let mut runs = Vec::new();
    for (i, &open) in sizes.iter().enumerate() {
        let t = Tracker::open(config(&dir.path().join(format!("open{i}.db")))).unwrap();
        let run = t
            .task_start("bench", "open", RunOptions::default())
            .unwrap();
        for k in 0..open {
            run.subtask_start(&format!("open {k}"), SubtaskOptions::default())
                .unwrap();
        }
        runs.push((t, run, Vec::new()));
    }
    let rounds = if quick() { 5 } else { 20 };
    let pairs = 200;
    for _ in 0..rounds {
        for (_, run, times) in runs.iter_mut() {
            let start = Instant::now();
            for _ in 0..pairs {
                let n = run
                    .subtask_start("pair", SubtaskOptions::default())
                    .unwrap();
                run.subtask_complete(n, None).unwrap();
            }
            times.push(start.elapsed().as_secs_f64() * 1e6 / pairs as f64);
        }
    }
    let base = median(&mut runs[0].2.clone());
    println!("subtask_start + subtask_complete, median of {rounds} rounds of {pairs}:");
    for (open, (_, _, times)) in sizes.iter().zip(runs.iter_mut()) {
        let m = median(times);
        println!(
            "  {open:>6} open: {m:8.1} µs per pair   ratio to 1 open: {:.2}",
            m / base
        );
    }
}

/// Queued writes replayed per second, next to a raw batched insert.
fn replay_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replay.db");
    let t = Tracker::open(config(&db)).unwrap();
    let run = t
        .task_start("bench", "replay", RunOptions::default())
        .unwrap();
    t.flush().unwrap();
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let subtasks = if quick() { 2_000 } else { 10_000 };
    for i in 0..subtasks {
        let n = run
            .subtask_start(&format!("s{i}"), SubtaskOptions::default())
            .unwrap();
        run.subtask_increment(n, 5).unwrap();
        run.subtask_complete(n, None).unwrap();
    }
    let queued = t.health().pending_writes;
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let start = Instant::now();
    t.flush().unwrap(); // reconnects now instead of after the backoff
    while t.health().pending_writes > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let ours = queued as f64 / start.elapsed().as_secs_f64();

    // Baseline: rows inserted in transactions of 1,000 on a raw connection.
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    raw.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, run TEXT, name TEXT, n INTEGER, at TEXT)",
    )
    .unwrap();
    let rows = queued;
    let start = Instant::now();
    for chunk in 0..rows.div_ceil(1_000) {
        let tx = raw.unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO t(run, name, n, at) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for k in 0..1_000.min(rows - chunk * 1_000) {
                st.execute(rusqlite::params![
                    run.run_id(),
                    format!("s{k}"),
                    k as i64,
                    "2026-01-01"
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let raw_rate = rows as f64 / start.elapsed().as_secs_f64();
    println!(
        "replay: {queued} queued writes at {ours:.0} writes/s; raw batched INSERT {raw_rate:.0} rows/s; ratio {:.2}",
        ours / raw_rate
    );
}

#[derive(Default)]
struct Latencies(Vec<f64>);

impl Latencies {
    fn summary(&mut self) -> (f64, f64, f64) {
        self.0.sort_by(f64::total_cmp);
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q) as usize];
        (at(0.5), at(0.99), *self.0.last().unwrap())
    }
}

/// 4 writers (each its own tracker, as 4 processes would be), calls timed one by
/// one and sorted into phases; `outage` holds the write lock for 5 s in the middle.
fn latency_around_an_outage(outage: bool) -> [Latencies; 3] {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latency.db");
    let owner = Tracker::open(config(&db)).unwrap();
    let run = owner
        .task_start("bench", "latency", RunOptions::default())
        .unwrap();
    owner.flush().unwrap();
    let (before, during) = if quick() { (1.0, 2.0) } else { (2.0, 5.0) };
    let t0 = Instant::now();
    let phases = std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                let run_id = run.run_id().to_string();
                s.spawn(move || {
                    let t = Tracker::open(config(&db)).unwrap();
                    let run = t.attach_run(&run_id).unwrap();
                    let mut phases: [Latencies; 3] = Default::default();
                    let end = before + during + before;
                    let mut i = 0;
                    while t0.elapsed().as_secs_f64() < end {
                        let at = t0.elapsed().as_secs_f64();
                        let phase = if at < before {
                            0
                        } else if at < before + during {
                            1
                        } else {
                            2
                        };
                        let mut time = |f: &mut dyn FnMut()| {
                            let start = Instant::now();
                            f();
                            phases[phase].0.push(start.elapsed().as_secs_f64() * 1e6);
                        };
                        let mut n = 0;
                        time(&mut || {
                            n = run
                                .subtask_start(&format!("w{w}-{i}"), SubtaskOptions::default())
                                .unwrap()
                        });
                        for _ in 0..10 {
                            time(&mut || run.subtask_increment(n, 1).unwrap());
                        }
                        time(&mut || run.subtask_complete(n, None).unwrap());
                        i += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    t.close().unwrap();
                    phases
                })
            })
            .collect();
        if outage {
            std::thread::sleep(Duration::from_secs_f64(before));
            let lock = rusqlite::Connection::open(&db).unwrap();
            lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::sleep(Duration::from_secs_f64(during));
            lock.execute_batch("COMMIT").unwrap();
        }
        let mut all: [Latencies; 3] = Default::default();
        for w in writers {
            for (into, from) in all.iter_mut().zip(w.join().unwrap()) {
                into.0.extend(from.0);
            }
        }
        all
    });
    phases
}

fn main() {
    start_complete_vs_open_subtasks();
    replay_throughput();
    let mut with = latency_around_an_outage(true);
    let mut without = latency_around_an_outage(false);
    println!("tracking-call latency, 4 writers (µs; p50 / p99 / max), outage vs none:");
    for (i, name) in ["before", "during", "after"].iter().enumerate() {
        let (a50, a99, amax) = with[i].summary();
        let (b50, b99, bmax) = without[i].summary();
        println!(
            "  {name:>6}: outage {a50:7.1} / {a99:8.1} / {amax:9.1}   none {b50:7.1} / {b99:8.1} / {bmax:9.1}   p99 ratio {:.2}",
            a99 / b99
        );
    }
}
