//! Resource sampling by a tracked process, end to end: the writer thread samples
//! the process and its children and stores the samples with its heartbeats; a
//! child that holds 200 MB and spins a core shows up within two intervals;
//! sampling off stores nothing; sampling can be switched while runs go on.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tasker::{Config, RunOptions, Tracker};

/// A shell whose child holds 200 MiB while the shell spins a core; the whole
/// process group is killed when dropped (also when a test fails).
struct Busy(Child);

impl Busy {
    fn start() -> Busy {
        use std::os::unix::process::CommandExt;
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                "dd if=/dev/zero bs=200M count=1 iflag=fullblock status=none | sleep 3600 &
                 while :; do :; done",
            )
            .process_group(0)
            .spawn()
            .expect("sh");
        Busy(child)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The shell's own kill signals the group: `kill -9 -PGID`.
        let group = format!("kill -9 -{}", self.0.id());
        let _ = Command::new("sh").args(["-c", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tracker(dir: &tempfile::TempDir, every: Option<Duration>) -> Tracker {
    let mut config = Config::sqlite(dir.path().join("s.db"));
    config.sample_interval = every;
    config.heartbeat_interval = Duration::from_secs(1);
    Tracker::open(config).unwrap()
}

#[test]
fn a_busy_child_shows_up_in_the_samples_within_two_intervals() {
    if !tasker::sampler::available() {
        eprintln!("process sampling is not available on this platform: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir, Some(Duration::from_secs(1)));
    let run = t.task_start("s", "busy", RunOptions::default()).unwrap();
    let busy = Busy::start();
    let started = Instant::now();
    let seen = loop {
        std::thread::sleep(Duration::from_millis(250));
        let samples = t.samples(run.run_id()).unwrap();
        if let Some(s) = samples
            .iter()
            .find(|s| s.children_rss_bytes >= 200 * 1024 * 1024)
        {
            break (s.clone(), samples.len(), started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "no sample showed the child's 200 MB within 4 s: {samples:?}"
        );
    };
    let (sample, n, after) = seen;
    eprintln!("seen after {after:?} in sample {n}: {sample:?}");
    assert_eq!(sample.pid, std::process::id());
    assert!(sample.children >= 2, "{sample:?}");
    assert!(sample.rss_bytes > 0 && sample.threads.unwrap_or(0) >= 2);
    // CPU of the children grows between samples.
    std::thread::sleep(Duration::from_millis(2200));
    let last = t.samples(run.run_id()).unwrap().pop().unwrap();
    assert!(
        last.children_cpu_seconds > sample.children_cpu_seconds,
        "{sample:?} then {last:?}"
    );
    drop(busy);
    run.complete(None).unwrap();
    // A finished run is no longer sampled.
    let count = t.samples(run.run_id()).unwrap().len();
    std::thread::sleep(Duration::from_millis(2200));
    t.flush().unwrap();
    assert_eq!(t.samples(run.run_id()).unwrap().len(), count);
}

#[test]
fn sampling_off_stores_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir, None);
    let run = t.task_start("s", "quiet", RunOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    t.flush().unwrap();
    assert!(t.samples(run.run_id()).unwrap().is_empty());
    run.complete(None).unwrap();
}

#[test]
fn sampling_can_be_turned_on_and_off_while_a_run_goes_on() {
    if !tasker::sampler::available() {
        eprintln!("process sampling is not available on this platform: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(&dir, None);
    let run = t
        .task_start("s", "switched", RunOptions::default())
        .unwrap();
    assert_eq!(t.sample_interval(), None);
    assert!(t.last_sample().is_none());
    // On: a long interval still starts with a sample at once.
    t.set_sample_interval(Some(Duration::from_secs(3600)));
    assert_eq!(t.sample_interval(), Some(Duration::from_secs(3600)));
    let started = Instant::now();
    let first = loop {
        if let Some(s) = t.last_sample() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no sample within 3 s of turning sampling on"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first.pid, std::process::id());
    // Off: no more samples.
    t.set_sample_interval(None);
    assert_eq!(t.sample_interval(), None);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(t.last_sample(), Some(first));
    // A zero interval is off too.
    t.set_sample_interval(Some(Duration::ZERO));
    assert_eq!(t.sample_interval(), None);
    // Samples are written with heartbeats and transitions: the one taken is stored.
    run.complete(None).unwrap();
    assert_eq!(t.samples(run.run_id()).unwrap().len(), 1);
}
