//! PostgreSQL benchmark (not a timed test: it is `#[ignore]`d and only prints).
//! Run it with `bench/postgres/run.sh`, which starts a throwaway server and
//! builds in release mode. Measured in one run against the same server:
//!
//! 1. a transition through tasker (pause / resume of a run) next to a raw
//!    `UPDATE` round trip with the `postgres` crate, and a `SELECT 1`;
//! 2. progress calls per second and database transactions per second with 16
//!    processes (4 simulated hosts) incrementing one subtask as fast as they can.
//!    Transactions are counted three ways: the trackers' own counters, the
//!    server's write transactions (xid advance) and `pg_stat_database.xact_commit`.
//!
//! Child processes are this binary run again with `TASKER_BENCH_CHILD` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tasker::config::{Config, Location, Secret};
use tasker::{RunOptions, SubtaskOptions, Tracker};

fn config(url: &str, schema: &str, host: Option<String>) -> Config {
    let mut c = Config::sqlite("");
    // The raw client below speaks without TLS: so does tasker here (its default,
    // like libpq's, is sslmode=prefer, and the test server offers TLS).
    // TASKER_BENCH_POOLER=transaction measures the statements tasker sends through
    // a transaction pooler (unnamed, typed), here on a direct connection.
    let pooler = std::env::var("TASKER_BENCH_POOLER")
        .map(|p| format!(" pooler={p}"))
        .unwrap_or_default();
    c.location = Location::Postgres {
        conninfo: Secret::new(format!("{url} sslmode=disable{pooler}")),
        schema: schema.to_string(),
    };
    c.hostname = host;
    c
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The body of a child process; a no-op in a normal run.
#[test]
fn child() {
    let Ok(role) = std::env::var("TASKER_BENCH_CHILD") else {
        return;
    };
    assert_eq!(role, "increment");
    let url = std::env::var("TASKER_PG_URL").unwrap();
    let schema = std::env::var("TASKER_BENCH_SCHEMA").unwrap();
    let run_id = std::env::var("TASKER_BENCH_RUN").unwrap();
    let seconds = env_num("TASKER_BENCH_SECONDS", 5);
    let host = std::env::var("TASKER_HOSTNAME").ok();
    let t = Tracker::open(config(&url, &schema, host)).unwrap();
    let run = t.attach_run(&run_id).unwrap();
    run.subtask_increment(1, 1).unwrap();
    t.flush().unwrap();
    let before = t.stats();
    println!("ready");
    let mut stdin = BufReader::new(std::io::stdin());
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut calls: u64 = 0;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            run.subtask_increment(1, 1).unwrap();
        }
        calls += 1000;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = t.stats();
    println!(
        "done calls={calls} secs={elapsed:.3} progress_commits={} transitions={}",
        after.progress_commits - before.progress_commits,
        after.transitions - before.transitions
    );
    while stdin.read_line(&mut line).unwrap() > 0 {}
    t.close().unwrap();
}

fn time_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn server_counters(c: &mut postgres::Client) -> (i64, i64) {
    c.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
    let r = c
        .query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                    (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
#[ignore = "a benchmark: run bench/postgres/run.sh"]
fn postgres_benchmark() {
    let url =
        std::env::var("TASKER_PG_URL").expect("TASKER_PG_URL (bench/postgres/run.sh sets it)");
    let schema = format!("bench_{}", std::process::id());
    let n = env_num("TASKER_BENCH_N", 2000) as u32;
    let seconds = env_num("TASKER_BENCH_SECONDS", 5);
    let procs = env_num("TASKER_BENCH_PROCS", 16) as usize;
    let t = Tracker::open(config(&url, &schema, None)).unwrap();
    let flush_ms = t.config().flush_interval.as_millis();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(&format!(
        "CREATE TABLE \"{schema}\".bench_raw (id int PRIMARY KEY, n bigint NOT NULL);
         INSERT INTO \"{schema}\".bench_raw VALUES (1, 0)"
    ))
    .unwrap();
    let update = raw
        .prepare(&format!(
            "UPDATE \"{schema}\".bench_raw SET n = n + 1 WHERE id = 1"
        ))
        .unwrap();
    let select = raw.prepare("SELECT 1").unwrap();

    // 1. Latency of one transition next to one raw round trip (interleaved rounds).
    let run = t
        .task_start("bench", "transitions", RunOptions::default())
        .unwrap();
    let mut paused = false;
    let mut direct = tasker::store::open(&config(&url, &schema, None)).unwrap();
    let direct_run = t
        .task_start("bench", "direct", RunOptions::default())
        .unwrap();
    let mut direct_paused = false;
    let (mut raw_us, mut sel_us, mut tr_us, mut st_us, mut fl_us) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..6 {
        raw_us.push(time_per_op(n / 5, || {
            raw.execute(&update, &[]).unwrap();
        }));
        sel_us.push(time_per_op(n / 5, || {
            raw.query_one(&select, &[]).unwrap();
        }));
        let mut tracker_round = || {
            tr_us.push(time_per_op(n / 5, || {
                if paused {
                    run.resume(None).unwrap();
                } else {
                    run.pause(None).unwrap();
                }
                paused = !paused;
            }));
        };
        let mut store_round = || {
            st_us.push(time_per_op(n / 5, || {
                let to = if direct_paused {
                    tasker::Status::Running
                } else {
                    tasker::Status::Paused
                };
                direct
                    .run_transition(
                        direct_run.run_id(),
                        to,
                        &tasker::TransitionInfo::default(),
                        chrono::Utc::now(),
                    )
                    .unwrap();
                direct_paused = !direct_paused;
            }));
        };
        // Alternate which goes first: the phase right after the raw one was
        // seen to run slower, whichever it was.
        if round % 2 == 0 {
            tracker_round();
            store_round();
        } else {
            store_round();
            tracker_round();
        }
        fl_us.push(time_per_op(n / 5, || t.flush().unwrap()));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw_m, sel_m, tr_m, st_m, fl_m) = (
        median(&mut raw_us),
        median(&mut sel_us),
        median(&mut tr_us),
        median(&mut st_us),
        median(&mut fl_us),
    );
    println!("== transition latency ({n} of each, median of 6 interleaved rounds)");
    println!("raw UPDATE round trip (postgres crate): {raw_m:8.1} us");
    println!("raw SELECT 1 round trip:                {sel_m:8.1} us");
    println!("tasker transition (pause/resume):       {tr_m:8.1} us");
    println!("  the store call alone (no tracker):    {st_m:8.1} us");
    println!("  a tracker flush with nothing pending: {fl_m:8.1} us");
    println!(
        "ratio transition / raw UPDATE:          {:8.2}   (target <= 1.5)",
        tr_m / raw_m
    );

    // 2. Many processes incrementing one subtask as fast as they can.
    let run = t
        .task_start("bench", "increments", RunOptions::default())
        .unwrap();
    let sub = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    assert_eq!(sub, 1);
    let mut children: Vec<Child> = (0..procs)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture", "--test-threads=1"])
                .env("TASKER_BENCH_CHILD", "increment")
                .env("TASKER_BENCH_SCHEMA", &schema)
                .env("TASKER_BENCH_RUN", run.run_id())
                .env("TASKER_HOSTNAME", format!("bench-host-{}", i % 4))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    let read_word = |out: &mut BufReader<std::process::ChildStdout>, word: &str| loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if let Some(at) = line.find(word) {
            return line[at + word.len()..].trim().to_string();
        }
    };
    for o in &mut outs {
        read_word(o, "ready");
    }
    // Let the children's setup statements reach the statistics first.
    std::thread::sleep(Duration::from_millis(1200));
    let mut monitor = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (xid0, commit0) = server_counters(&mut monitor);
    let start = Instant::now();
    for c in &mut children {
        writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut calls = 0u64;
    let mut commits = 0u64;
    let mut transitions = 0u64;
    let mut secs = 0f64;
    for o in &mut outs {
        let line = read_word(o, "done");
        for kv in line.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "calls" => calls += v.parse::<u64>().unwrap(),
                "progress_commits" => commits += v.parse::<u64>().unwrap(),
                "transitions" => transitions += v.parse::<u64>().unwrap(),
                "secs" => secs = secs.max(v.parse::<f64>().unwrap()),
                _ => {}
            }
        }
    }
    let window = start.elapsed().as_secs_f64();
    let (xid1, _) = server_counters(&mut monitor);
    for mut c in children {
        drop(c.stdin.take());
        assert!(c.wait().unwrap().success());
    }
    // Backends flush their statistics when they exit; wait for that to show.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, commit1) = server_counters(&mut monitor);
    let sub_row = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(
        sub_row.items_complete as u64,
        calls + procs as u64,
        "every increment is stored exactly once"
    );
    let per_proc = |x: f64| x / procs as f64 / secs;
    println!(
        "== {procs} processes on 4 simulated hosts incrementing one subtask for {seconds} s (flush_interval {flush_ms} ms)"
    );
    println!(
        "progress calls:            {:12.0} /s in all ({:.0} /s per process)",
        calls as f64 / secs,
        per_proc(calls as f64)
    );
    println!(
        "tracker commits (writer):  {:12.1} /s in all ({:.2} /s per process; target <= {:.1} + transitions/s)",
        commits as f64 / secs,
        per_proc(commits as f64),
        1000.0 / flush_ms as f64
    );
    println!("transitions in the window: {transitions:12}");
    println!(
        "server write transactions: {:12.1} /s (xid advance {} in {window:.2} s)",
        (xid1 - xid0) as f64 / window,
        xid1 - xid0
    );
    println!(
        "server xact_commit delta:  {:12} (pg_stat_database, includes the children's connect/close and this monitor)",
        commit1 - commit0
    );
    println!(
        "stored total:              {:12} (= calls + {procs} warm-up increments)",
        sub_row.items_complete
    );
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
    let status = cmd
        .args(["-D", &format!("{dir}/data")])
        .args(args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {args:?} failed");
}

/// 3. Replay: writes queued while the server is stopped, applied per second once it
///    is back, next to a raw batched INSERT (1,000 rows per transaction) on the same
///    server.
#[test]
#[ignore = "a benchmark: run bench/postgres/run.sh"]
fn postgres_replay_benchmark() {
    let url =
        std::env::var("TASKER_PG_URL").expect("TASKER_PG_URL (bench/postgres/run.sh sets it)");
    let schema = format!("replay_{}", std::process::id());
    let subtasks = env_num("TASKER_BENCH_N", 2000) * 5;
    let t = Tracker::open(config(&url, &schema, None)).unwrap();
    let run = t
        .task_start("bench", "replay", RunOptions::default())
        .unwrap();
    t.flush().unwrap();
    pg_ctl(&["stop", "-m", "fast", "-w"]);
    for i in 0..subtasks {
        let n = run
            .subtask_start(&format!("s{i}"), SubtaskOptions::default())
            .unwrap();
        run.subtask_increment(n, 5).unwrap();
        run.subtask_complete(n, None).unwrap();
    }
    let queued = t.health().pending_writes;
    pg_ctl(&[
        "start",
        "-w",
        "-t",
        "60",
        "-l",
        &format!("{}/server.log", std::env::var("TASKER_PG_DIR").unwrap()),
        "-o",
        &std::env::var("TASKER_PG_OPTS").unwrap(),
    ]);
    let start = Instant::now();
    t.flush().unwrap(); // reconnects now rather than after the backoff
    while t.health().pending_writes > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let ours = queued as f64 / start.elapsed().as_secs_f64();
    let stored = t.subtasks(run.run_id()).unwrap();
    assert_eq!(
        stored.len() as u64,
        subtasks,
        "every queued start applied once"
    );

    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(&format!(
        "CREATE TABLE \"{schema}\".bench_insert (id bigserial PRIMARY KEY, run text, name text, n bigint, at timestamptz)"
    ))
    .unwrap();
    let insert = raw
        .prepare(&format!(
            "INSERT INTO \"{schema}\".bench_insert(run, name, n, at) VALUES ($1, $2, $3, now())"
        ))
        .unwrap();
    let start = Instant::now();
    let mut left = queued;
    while left > 0 {
        let mut tx = raw.transaction().unwrap();
        for k in 0..left.min(1_000) {
            tx.execute(&insert, &[&run.run_id(), &format!("s{k}"), &(k as i64)])
                .unwrap();
        }
        tx.commit().unwrap();
        left -= left.min(1_000);
    }
    let raw_rate = queued as f64 / start.elapsed().as_secs_f64();
    println!("== replay after an outage ({subtasks} subtasks started, incremented, completed while the server was stopped)");
    println!("queued writes:                     {queued:12}");
    println!("replayed:                          {ours:12.0} writes/s");
    println!("raw batched INSERT (1,000 per tx): {raw_rate:12.0} rows/s");
    println!(
        "ratio:                             {:12.2}",
        ours / raw_rate
    );
}
