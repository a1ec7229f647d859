//! A transition with alerts configured vs not: `RunHandle::fail` timed call by
//! call on two databases, one whose configuration sends every FAILED run to a
//! webhook (a local receiver answering 200), one without alerts, in alternating
//! rounds of the same run. The alert is claimed and delivered by the writer
//! thread, so the two latencies should be the same within noise.
//!
//! `cargo bench -p tasker-core --features alerts --bench alerts`; prints medians,
//! p95 and ratios.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tasker::{Config, ConfigArgs, RunOptions, Tracker};

const ROUNDS: usize = 6;
const RUNS_PER_ROUND: usize = 150;

/// Answers every request with 200; counts them.
fn receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut r = BufReader::new(&conn);
            let mut len = 0usize;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = (&conn).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (port, count)
}

fn open(dir: &std::path::Path, alerts: Option<u16>) -> Tracker {
    let mut yml = "database:\n  path: bench.db\n".to_string();
    if let Some(port) = alerts {
        yml.push_str(&format!(
            "alerts:\n  destinations:\n    hook: {{webhook: 'http://127.0.0.1:{port}/hook'}}\n  rules:\n    - {{name: failures, on: failed, to: hook}}\n"
        ));
    }
    std::fs::write(dir.join(".tasker.yml"), yml).unwrap();
    Tracker::open(
        Config::resolve(&ConfigArgs {
            config_file: Some(dir.join(".tasker.yml")),
            ..ConfigArgs::default()
        })
        .unwrap(),
    )
    .unwrap()
}

/// Times `fail` on fresh runs: the latencies of one round, in microseconds.
fn round(t: &Tracker, out: &mut Vec<f64>) {
    let runs: Vec<_> = (0..RUNS_PER_ROUND)
        .map(|_| {
            t.task_start("bench", "fail", RunOptions::default())
                .unwrap()
        })
        .collect();
    for run in runs {
        let start = Instant::now();
        run.fail("boom", None).unwrap();
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks
    }
    let (port, delivered) = receiver();
    let plain_dir = tempfile::tempdir().unwrap();
    let alert_dir = tempfile::tempdir().unwrap();
    let plain = open(plain_dir.path(), None);
    let alerting = open(alert_dir.path(), Some(port));
    let (mut base, mut with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        round(&plain, &mut base);
        round(&alerting, &mut with);
    }
    // Let the writer deliver what is queued before counting.
    alerting.close().unwrap();
    let sent = delivered.load(Ordering::Relaxed);
    let (b50, w50) = (quantile(&mut base, 0.5), quantile(&mut with, 0.5));
    let (b95, w95) = (quantile(&mut base, 0.95), quantile(&mut with, 0.95));
    println!(
        "RunHandle::fail, {} calls each, alternating rounds:",
        base.len()
    );
    println!("  baseline (no alerts):      median {b50:8.1} µs   p95 {b95:8.1} µs");
    println!("  FAILED alert to a webhook: median {w50:8.1} µs   p95 {w95:8.1} µs");
    println!("  ratio: median {:.2}, p95 {:.2}", w50 / b50, w95 / b95);
    println!(
        "  alerts delivered by the writer thread: {sent} of {}",
        with.len()
    );
}
