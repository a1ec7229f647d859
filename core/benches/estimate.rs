//! The ETA estimator on large histories: `run_eta` for a run of 20 subtasks
//! (10 done, 1 active, 9 pending by name) with 1,000 and 100,000 past
//! durations of the run and of each subtask name, and `percentile` over
//! 100,000 values. The work is linear in the history (selection, not sorting),
//! so the 100,000 case should cost about 100 times the 1,000 one.
//!
//! `cargo bench -p tasker-core --bench estimate`

use std::collections::HashMap;
use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use tasker::estimate::{percentile, run_eta, History, SubtaskFacts};

/// splitmix64: seeded bench data without a dependency.
fn values(n: usize, seed: u64, around: f64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let unit = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
            around * (0.8 + 0.4 * unit)
        })
        .collect()
}

const NAMES: [&str; 20] = [
    "s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10", "s11", "s12",
    "s13", "s14", "s15", "s16", "s17", "s18", "s19",
];

fn history(n: usize) -> History {
    History {
        run_seconds: values(n, 1, 2000.0),
        subtask_seconds: NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), values(n, 100 + i as u64, 100.0)))
            .collect::<HashMap<_, _>>(),
    }
}

/// 100 s per subtask, sequential; at 1,050 s: 10 done, the 11th half-way.
fn subtasks(start: DateTime<Utc>) -> Vec<SubtaskFacts<'static>> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let begin = start + Duration::seconds(100 * i as i64);
            SubtaskFacts {
                name,
                active: i == 10,
                done: i < 10,
                items_total: Some(1000),
                items_complete: match i {
                    0..10 => 1000,
                    10 => 500,
                    _ => 0,
                },
                percent: None,
                started: (i <= 10).then_some(begin),
                ended: (i < 10).then(|| begin + Duration::seconds(100)),
            }
        })
        .collect()
}

fn estimate(c: &mut Criterion) {
    let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let now = start + Duration::seconds(1050);
    let subs = subtasks(start);
    let mut g = c.benchmark_group("estimate");
    for n in [1_000, 100_000] {
        let h = history(n);
        g.bench_function(format!("run_eta, 20 subtasks, {n} durations each"), |b| {
            b.iter(|| run_eta(start, Some(20), black_box(&subs), black_box(&h), now))
        });
    }
    let v = values(100_000, 7, 100.0);
    g.bench_function("percentile of 100000 values", |b| {
        b.iter(|| percentile(black_box(&v), 0.9))
    });
    g.finish();
}

criterion_group!(benches, estimate);
criterion_main!(benches);
