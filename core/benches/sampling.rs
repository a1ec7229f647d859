//! What process sampling (`tasker::sampler`) costs, each next to its baseline in
//! the same run:
//! - one `Sampler::sample()` of this process (criterion, wall time), and its CPU
//!   time, with the number of processes on the host (a sample reads the stat
//!   file of each to find descendants);
//! - the overhead on a busy process: the process CPU time of a fixed amount of
//!   work on the main thread, unsampled (before and after, to show the noise),
//!   and while a second thread samples every 1 s and every 10 s, as a ratio
//!   sampled / unsampled (medians of 3 interleaved rounds). The sampler takes
//!   its first sample at once, as a run's writer does, so a 2-second run at 10 s
//!   holds one sample per 2 s, 5 times the steady rate; the steady
//!   overhead (CPU per sample / interval) is printed next to it. On a shared
//!   machine the unsampled runs alone differ by about 1%, more than sampling
//!   costs; the sampler thread's own CPU share is printed to tell them apart.
//!
//! `cargo bench -p tasker-core --bench sampling` (about 30 s); ratios are printed
//! at the end. CPU times come from the process and thread CPU clocks (ns).

#[cfg(target_os = "linux")]
mod linux {
    use std::hint::black_box;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use criterion::Criterion;
    use rustix::time::{clock_gettime, ClockId};
    use tasker::sampler::Sampler;

    /// Seconds of CPU of the whole process (all threads, also finished ones).
    fn process_cpu() -> f64 {
        seconds(clock_gettime(ClockId::ProcessCPUTime))
    }

    /// Seconds of CPU of the calling thread.
    fn thread_cpu() -> f64 {
        seconds(clock_gettime(ClockId::ThreadCPUTime))
    }

    fn seconds(t: rustix::time::Timespec) -> f64 {
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }

    /// A fixed amount of CPU work: `n` rounds of a multiply-add.
    fn busy(n: u64) -> u64 {
        let mut x = 1u64;
        for i in 0..n {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        x
    }

    /// Rounds of `busy` per CPU second, from a short trial.
    fn calibrate() -> f64 {
        let n = 20_000_000;
        busy(n / 4); // warm up
        let t = thread_cpu();
        busy(n);
        n as f64 / (thread_cpu() - t)
    }

    struct Run {
        process_cpu: f64,
        sampler_cpu: f64,
        samples: u32,
    }

    /// `busy(work)` on this thread while another thread samples this process
    /// every `interval` (none: no sampler thread at all).
    fn run(work: u64, interval: Option<Duration>) -> Run {
        let start_cpu = process_cpu();
        let (stop, stopped) = mpsc::channel::<()>();
        let (sampler_cpu, samples) = std::thread::scope(|s| {
            let sampler = interval.map(|interval| {
                s.spawn(move || {
                    let cpu = thread_cpu();
                    let mut sampler = Sampler::new();
                    let start = Instant::now();
                    let mut samples = 0;
                    loop {
                        black_box(sampler.sample().unwrap());
                        samples += 1;
                        let next = start + interval * samples;
                        let wait = next.saturating_duration_since(Instant::now());
                        if stopped.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
                            break;
                        }
                    }
                    (thread_cpu() - cpu, samples)
                })
            });
            black_box(busy(work));
            drop(stop);
            sampler.map_or((0.0, 0), |t| t.join().unwrap())
        });
        Run {
            process_cpu: process_cpu() - start_cpu,
            sampler_cpu,
            samples,
        }
    }

    fn one_sample(c: &mut Criterion) {
        let mut sampler = Sampler::new();
        c.bench_function("sampler/sample_this_process", |b| {
            b.iter(|| black_box(sampler.sample().unwrap()))
        });
    }

    /// CPU time of one sample, from the thread CPU clock over many samples.
    fn cpu_per_sample() -> f64 {
        let mut sampler = Sampler::new();
        let n = 500;
        let t = thread_cpu();
        for _ in 0..n {
            black_box(sampler.sample().unwrap());
        }
        (thread_cpu() - t) / n as f64
    }

    pub fn main() {
        let mut c = Criterion::default()
            .configure_from_args()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        one_sample(&mut c);
        let processes = procfs::process::all_processes().map_or(0, |p| p.count());
        let per_sample = cpu_per_sample();
        println!(
            "one sample: {:.0} µs of CPU with {processes} processes on the host",
            per_sample * 1e6
        );

        // Rounds interleave the three cases, so that load from elsewhere on the
        // machine spreads over all of them; medians are compared.
        let work = (calibrate() * 2.0) as u64;
        let cases = [None, Some(1), Some(10)];
        let mut runs: Vec<Vec<Run>> = cases.iter().map(|_| Vec::new()).collect();
        for round in 0..3 {
            // Each round starts with another case, so that no case always
            // follows the same one.
            for i in (0..cases.len()).map(|i| (i + round) % cases.len()) {
                runs[i].push(run(work, cases[i].map(Duration::from_secs)));
            }
        }
        let median = |runs: &[Run]| {
            let mut cpu: Vec<f64> = runs.iter().map(|r| r.process_cpu).collect();
            cpu.sort_by(f64::total_cmp);
            cpu[cpu.len() / 2]
        };
        let base = median(&runs[0]);
        let unsampled: Vec<String> = runs[0]
            .iter()
            .map(|r| format!("{:.3}", r.process_cpu))
            .collect();
        println!(
            "busy loop, process CPU (median of {} runs): unsampled {base:.3} s ({} s)",
            runs[0].len(),
            unsampled.join(", ")
        );
        for (interval, runs) in cases.iter().zip(&runs).skip(1) {
            let interval = interval.unwrap();
            let sampler_cpu: f64 = runs.iter().map(|r| r.sampler_cpu).sum();
            let samples: u32 = runs.iter().map(|r| r.samples).sum();
            let run_cpu: f64 = runs.iter().map(|r| r.process_cpu).sum();
            println!(
                "  sampled every {interval:>2} s: {:.3} s, ratio sampled/unsampled {:.4}; \
                 sampler thread {:.3}% of the runs' CPU, {:.0} µs per sample ({samples}); \
                 steady overhead {:.4}% of a core",
                median(runs),
                median(runs) / base,
                sampler_cpu / run_cpu * 100.0,
                sampler_cpu / f64::from(samples) * 1e6,
                per_sample / interval as f64 * 100.0
            );
        }
        c.final_summary();
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    println!("sampling: needs Linux /proc, nothing to measure here");
}
