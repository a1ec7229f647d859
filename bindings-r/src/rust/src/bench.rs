//! The Rust baseline of bench/r/bench_progress.R: the same four transitions the R bench
//! times (task_start, subtask_start, subtask_complete, task_complete), made directly on
//! the core from inside the R process, on the same open database. Measuring both in one
//! process and one run keeps the ratio honest (same build, disk and load).

use std::time::Instant;

use extendr_api::prelude::*;
use tasker::{RunOptions, SubtaskOptions};

/// `n` rounds of the four transitions; returns a list of four numeric vectors of
/// microseconds per call (task_start, subtask_start, subtask_complete, task_complete).
/// @keywords internal
#[extendr]
fn tk_bench_transitions(n: i32, stage: &str, task: &str) -> Robj {
    crate::out((|| {
        let t = crate::tracker()?;
        let n = n.max(0) as usize;
        let mut us: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        let micros = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        for _ in 0..n {
            let t0 = Instant::now();
            let run = t.task_start(stage, task, RunOptions::default())?;
            let t1 = Instant::now();
            let number = run.subtask_start("rust", SubtaskOptions::default())?;
            let t2 = Instant::now();
            run.subtask_complete(number, None)?;
            let t3 = Instant::now();
            run.complete(None)?;
            let t4 = Instant::now();
            us[0].push(micros(t0, t1));
            us[1].push(micros(t1, t2));
            us[2].push(micros(t2, t3));
            us[3].push(micros(t3, t4));
        }
        let [a, b, c, d] = us;
        Ok(Robj::from(list!(
            task_start = a,
            subtask_start = b,
            subtask_complete = c,
            task_complete = d
        )))
    })())
}

extendr_module! {
    mod bench;
    fn tk_bench_transitions;
}
