//! The cost of OpenTelemetry export to the caller: a subtask's and a run's
//! terminal transitions (`subtask_complete` and `complete`, which queue the
//! subtask's span and the run's trace for export) with export configured (to a
//! local collector that answers 200) next to the same transition without,
//! interleaved call by call so that both see the same machine. The export itself
//! runs on the writer thread; this shows it stays off the caller's path.
//!
//! `cargo bench -p tasker-core --features otlp --bench otlp`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasker::{Config, RunOptions, Tracker};

/// A minimal OTLP/HTTP collector: reads each request and answers 200.
fn collector(requests: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let requests = Arc::clone(&requests);
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn percentiles(v: &mut [Duration]) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = v.iter().sum::<Duration>().as_secs_f64() * 1e6 / v.len() as f64;
    (at(0.5), at(0.99), mean)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Tracker::open(Config::sqlite(dir.path().join("plain.db"))).unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let port = collector(Arc::clone(&requests));
    // The exporter reads the environment when a tracker opens (edition 2021: safe here,
    // before any other thread of this program reads the environment).
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{port}"),
    );
    let exported = Tracker::open(Config::sqlite(dir.path().join("exported.db"))).unwrap();
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");

    let n = 3_000;
    let mut with = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut without = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (t, out) in [(&exported, &mut with), (&plain, &mut without)] {
            let run = t
                .task_start("bench", "otlp", RunOptions::default())
                .unwrap();
            let sub = run.subtask_start("part", Default::default()).unwrap();
            // A subtask's end queues its span, a run's end its trace.
            let start = Instant::now();
            run.subtask_complete(sub, None).unwrap();
            out[0].push(start.elapsed());
            let start = Instant::now();
            run.complete(None).unwrap();
            out[1].push(start.elapsed());
        }
    }
    exported.close().unwrap();
    for (i, call) in ["subtask_complete", "complete"].iter().enumerate() {
        let (w, p) = (percentiles(&mut with[i]), percentiles(&mut without[i]));
        for (state, s) in [("OTLP export on", w), ("export off", p)] {
            println!(
                "{:>34}: p50 {:7.1} µs  p99 {:7.1} µs  mean {:7.1} µs",
                format!("{call}, {state}"),
                s.0,
                s.1,
                s.2
            );
        }
        println!(
            "{call} export on / off: {:.2}x at the median, {:.2}x in the mean",
            w.0 / p.0,
            w.2 / p.2,
        );
    }
    println!(
        "{n} runs of one subtask exported in {} requests",
        requests.load(Ordering::Relaxed)
    );
}
