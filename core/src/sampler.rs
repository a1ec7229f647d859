//! Resource samples (CPU, memory, I/O, threads, descriptors) of a tracked process
//! and everything it started, taken by the process itself.
//!
//! Why in-process: a run already has a writer thread that wakes up regularly, so
//! sampling there needs no daemon, no extra thread and no privileges (a process
//! may always read its own /proc entries and those of its children). Why the
//! descendants: pipelines shell out (`Rscript`, `samtools`, a Python worker pool),
//! and the cost of a step is mostly in those children.
//!
//! Cost: one sample reads four entries of the process and the `stat` file of
//! every process on the host, to find descendants by parent pid (the cheaper
//! /proc/PID/task/TID/children lists can omit children while others exit).
//! The kernel's formatting of those stat files dominates: about 1.1 ms of CPU
//! with 80 processes on a 2-core VM, 0.01% of a core at the default 10 s
//! interval. `cargo bench -p tasker-core --bench sampling` measures it.
//!
//! Linux only (procfs). Elsewhere [`available`] is false and [`Sampler::sample`]
//! returns [`Unavailable`]; it never panics.
//!
//! [`thin`] is the downsampling policy that keeps a long run's sample rows to a
//! few thousand.

use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Utc};

/// One sample of a process and its descendants.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub time: DateTime<Utc>,
    pub pid: u32,
    /// User + system CPU of the process itself so far (all its threads).
    pub cpu_seconds: f64,
    /// CPU of the process since the previous sample by the same [`Sampler`]
    /// (100 = one core busy); `None` on the first sample.
    pub cpu_percent: Option<f64>,
    /// Resident set size now.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_bytes: Option<u64>,
    /// Bytes the process caused to be read from storage (`read_bytes` of
    /// /proc/PID/io: page-cache hits do not count). `None` when not readable.
    pub read_bytes: Option<u64>,
    /// Bytes the process caused to be written to storage (`write_bytes`).
    pub write_bytes: Option<u64>,
    pub threads: Option<u32>,
    /// Open file descriptors; `None` when /proc/PID/fd is not readable.
    pub open_fds: Option<u32>,
    /// Live descendants (children, grandchildren, ...); zombies do not count.
    pub children: u32,
    /// CPU of all descendants so far: the live ones (including what they reaped)
    /// plus the children this process has reaped (its cutime + cstime).
    /// Descendants that were orphaned (re-parented away) drop out.
    pub children_cpu_seconds: f64,
    /// Summed resident set size of live descendants (shared pages count once
    /// per process, as `ps` shows them).
    pub children_rss_bytes: u64,
}

/// Why no sample could be taken: no /proc on this platform, or the process is
/// gone (or its pid now belongs to another process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process sampling unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Whether sampling works here (Linux with /proc mounted).
pub fn available() -> bool {
    cfg!(target_os = "linux") && std::path::Path::new("/proc/self/stat").exists()
}

/// Takes [`Sample`]s of one process; keeps what the next sample needs for
/// `cpu_percent`. Cheap to create; not shared between threads.
#[derive(Debug)]
pub struct Sampler {
    target: Target,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    previous: Option<Previous>,
    #[cfg(target_os = "linux")]
    units: linux::Units,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// Whatever `std::process::id()` is at each sample, so that a forked child
    /// samples itself (and starts over for `cpu_percent`).
    Current,
    Pid(u32),
}

/// What `cpu_percent` of the next sample is computed from.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Previous {
    pid: u32,
    /// Start time in clock ticks after boot: tells a reused pid apart.
    start_ticks: u64,
    cpu_seconds: f64,
    at: Instant,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// Samples this process (after a fork, the child).
    pub fn new() -> Sampler {
        Sampler::with_target(Target::Current)
    }

    /// Samples process `pid`. Once that process has exited, every sample is
    /// `Err(Unavailable)`, also when its pid is reused by a new process.
    pub fn for_pid(pid: u32) -> Sampler {
        Sampler::with_target(Target::Pid(pid))
    }

    fn with_target(target: Target) -> Sampler {
        Sampler {
            target,
            previous: None,
            #[cfg(target_os = "linux")]
            units: linux::Units::get(),
        }
    }

    /// Samples the process and its descendants now.
    pub fn sample(&mut self) -> Result<Sample, Unavailable> {
        let pid = match self.target {
            Target::Current => std::process::id(),
            Target::Pid(pid) => pid,
        };
        self.sample_pid(pid)
    }

    #[cfg(target_os = "linux")]
    fn sample_pid(&mut self, pid: u32) -> Result<Sample, Unavailable> {
        let at = Instant::now();
        let read = linux::read(pid, &self.units)?;
        let previous = self.previous.filter(|p| p.pid == pid);
        if let Some(p) = previous {
            if p.start_ticks != read.start_ticks {
                // Only a `for_pid` target can get here: our own pid is never reused.
                return Err(Unavailable(format!(
                    "process {pid} exited (the pid now belongs to another process)"
                )));
            }
        }
        let cpu_percent = previous.and_then(|p| {
            let seconds = at.duration_since(p.at).as_secs_f64();
            (seconds > 0.0).then(|| (read.sample.cpu_seconds - p.cpu_seconds) / seconds * 100.0)
        });
        self.previous = Some(Previous {
            pid,
            start_ticks: read.start_ticks,
            cpu_seconds: read.sample.cpu_seconds,
            at,
        });
        Ok(Sample {
            cpu_percent,
            ..read.sample
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn sample_pid(&mut self, _pid: u32) -> Result<Sample, Unavailable> {
        Err(Unavailable("needs Linux /proc".to_string()))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;

    use procfs::process::{all_processes, Process, Stat};
    use procfs::ProcError;

    use super::{Sample, Unavailable, Utc};

    /// Units of /proc numbers, read once per sampler.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Units {
        ticks_per_second: f64,
        page_size: u64,
    }

    impl Units {
        /// From libc's sysconf, not procfs's helpers: those read the auxiliary
        /// vector through rustix, which checks the vDSO's ELF header, and under
        /// valgrind (no vDSO mapped there) that read crashes the process.
        pub(super) fn get() -> Units {
            // SAFETY: sysconf has no preconditions; -1 (unknown) falls back below.
            let (ticks, page) = unsafe {
                (
                    libc::sysconf(libc::_SC_CLK_TCK),
                    libc::sysconf(libc::_SC_PAGESIZE),
                )
            };
            Units {
                ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
                page_size: if page > 0 { page as u64 } else { 4096 },
            }
        }
    }

    pub(super) struct Read {
        pub(super) sample: Sample,
        pub(super) start_ticks: u64,
    }

    fn gone(pid: u32, e: ProcError) -> Unavailable {
        match e {
            ProcError::NotFound(_) => Unavailable(format!("process {pid} has exited")),
            e => Unavailable(format!("cannot read /proc/{pid}: {e}")),
        }
    }

    fn exited(stat: &Stat) -> bool {
        stat.state == 'Z' || stat.state == 'X'
    }

    /// Reads process `pid` and its descendants; `cpu_percent` is left `None`.
    pub(super) fn read(pid: u32, units: &Units) -> Result<Read, Unavailable> {
        let process = i32::try_from(pid)
            .map_err(|_| Unavailable(format!("no process {pid}")))
            .and_then(|p| Process::new(p).map_err(|e| gone(pid, e)))?;
        let stat = process.stat().map_err(|e| gone(pid, e))?;
        if exited(&stat) {
            return Err(Unavailable(format!("process {pid} has exited")));
        }
        let time = Utc::now();
        // These files can be unreadable (another user's process, hardened
        // /proc) while stat is not: they become None, not an error.
        let peak_rss_bytes = process
            .status()
            .ok()
            .and_then(|s| s.vmhwm)
            .map(|kib| kib * 1024);
        let io = process.io().ok();
        let open_fds = process.fd_count().ok().map(saturate);
        let tree = descendants(stat.pid);
        let ticks = |t: u64| t as f64 / units.ticks_per_second;
        let reaped = stat.cutime.max(0) as u64 + stat.cstime.max(0) as u64;
        Ok(Read {
            start_ticks: stat.starttime,
            sample: Sample {
                time,
                pid,
                cpu_seconds: ticks(stat.utime + stat.stime),
                cpu_percent: None,
                rss_bytes: stat.rss * units.page_size,
                peak_rss_bytes,
                read_bytes: io.as_ref().map(|io| io.read_bytes),
                write_bytes: io.as_ref().map(|io| io.write_bytes),
                threads: u32::try_from(stat.num_threads).ok(),
                open_fds,
                children: tree.live,
                children_cpu_seconds: ticks(reaped + tree.cpu_ticks),
                children_rss_bytes: tree.rss_pages * units.page_size,
            },
        })
    }

    fn saturate(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    #[derive(Default)]
    struct Tree {
        live: u32,
        cpu_ticks: u64,
        rss_pages: u64,
    }

    /// One pass over /proc: the stat of every process, then a walk down the
    /// parent-pid links from `root`. Processes that vanish or cannot be read
    /// mid-scan are skipped. Every process has one parent in the snapshot and
    /// `root` itself is left out, so the walk visits each process at most once
    /// even if pids were reused while scanning.
    fn descendants(root: i32) -> Tree {
        struct Proc {
            pid: i32,
            cpu_ticks: u64,
            rss_pages: u64,
            zombie: bool,
        }
        let mut by_parent: HashMap<i32, Vec<Proc>> = HashMap::new();
        let Ok(all) = all_processes() else {
            return Tree::default();
        };
        for process in all.flatten() {
            if process.pid == root {
                continue;
            }
            let Ok(s) = process.stat() else { continue };
            // A live descendant's cutime/cstime holds what it reaped; once it is
            // reaped itself, all of it moves to its parent's cutime.
            let reaped = s.cutime.max(0) as u64 + s.cstime.max(0) as u64;
            by_parent.entry(s.ppid).or_default().push(Proc {
                pid: s.pid,
                cpu_ticks: s.utime + s.stime + reaped,
                rss_pages: s.rss,
                zombie: exited(&s),
            });
        }
        let mut tree = Tree::default();
        let mut stack = vec![root];
        while let Some(parent) = stack.pop() {
            for p in by_parent.remove(&parent).unwrap_or_default() {
                // A zombie's CPU is not in its parent's cutime until it is reaped.
                tree.cpu_ticks += p.cpu_ticks;
                if !p.zombie {
                    tree.live += 1;
                    tree.rss_pages += p.rss_pages;
                }
                stack.push(p.pid);
            }
        }
        tree
    }
}

/// Samples younger than this are all kept.
pub(crate) const KEEP_ALL_YOUNGER_THAN_S: i64 = 2 * 3600;
/// Samples younger than this (and at least [`KEEP_ALL_YOUNGER_THAN_S`] old) keep
/// one per [`FINE_BUCKET_S`]; older ones keep one per [`COARSE_BUCKET_S`].
pub(crate) const FINE_YOUNGER_THAN_S: i64 = 2 * 86_400;
/// Bucket width between 2 hours and 2 days: 5 minutes.
pub(crate) const FINE_BUCKET_S: i64 = 300;
/// Bucket width after 2 days: 1 hour. A multiple of [`FINE_BUCKET_S`], so the
/// first sample of an hour is also the first of a 5-minute bucket.
pub(crate) const COARSE_BUCKET_S: i64 = 3600;
const _: () = assert!(COARSE_BUCKET_S % FINE_BUCKET_S == 0);

/// Downsampling policy so that a week-long run keeps at most a few thousand rows:
/// keep every sample younger than 2 hours; between 2 hours and 2 days keep the
/// first sample of each 5-minute bucket; older, the first of each 1-hour bucket.
/// Input: (sample_id, time) of one run, in any order; returns the ids to delete,
/// ascending.
///
/// Buckets are aligned to the epoch (`time.timestamp() / bucket seconds`), and
/// the two tier edges are rounded down to a bucket edge (the 2-hour edge to 5
/// minutes, the 2-day edge to an hour), so no bucket is split between tiers.
/// Hence thinning the survivors again deletes nothing, and thinning them at a
/// later `now` deletes exactly what thinning the whole series then would: the
/// first sample of any bucket was kept at every earlier thinning. Of samples
/// with the same time in one bucket, the smallest id is kept.
///
/// Bound: a 7-day run sampled every 10 s keeps 720 + 552 + 120 = 1,392 rows
/// (2 h at 10 s, 46 h of 5-minute buckets, 120 hour buckets) when `now` is on
/// the hour; rounding the edges adds at most 30 + 11 + 1 at other times (up to
/// 5 more minutes at 10 s, 11 more 5-minute buckets, the oldest partial hour),
/// so at most 1,434. Each further day of the run adds 24.
pub fn thin(samples: &[(i64, DateTime<Utc>)], now: DateTime<Utc>) -> Vec<i64> {
    let floor = |t: i64, width: i64| t.div_euclid(width) * width;
    let keep_all_from = floor(now.timestamp() - KEEP_ALL_YOUNGER_THAN_S, FINE_BUCKET_S);
    let fine_from = floor(now.timestamp() - FINE_YOUNGER_THAN_S, COARSE_BUCKET_S);
    let mut by_time: Vec<(DateTime<Utc>, i64)> = samples.iter().map(|&(id, t)| (t, id)).collect();
    by_time.sort_unstable();
    // Sorted by time, the tiers come oldest first and buckets in order, so the
    // first sample of a bucket is the one whose bucket differs from the last.
    let mut last_bucket = None;
    let mut delete = Vec::new();
    for (time, id) in by_time {
        let t = time.timestamp();
        if t >= keep_all_from {
            break;
        }
        let width = if t >= fine_from {
            FINE_BUCKET_S
        } else {
            COARSE_BUCKET_S
        };
        let bucket = Some((width, t.div_euclid(width)));
        if bucket == last_bucket {
            delete.push(id);
        }
        last_bucket = bucket;
    }
    delete.sort_unstable();
    delete
}

#[cfg(test)]
mod test {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    /// Midnight; a multiple of every bucket width.
    const NOW: i64 = 1_704_672_000;

    /// Sample i at NOW - 7 days + 10 s * i, up to 10 s before NOW.
    fn week_at_10s() -> Vec<(i64, DateTime<Utc>)> {
        (0..7 * 8640)
            .map(|i| (i, at(NOW - 7 * 86_400 + 10 * i)))
            .collect()
    }

    fn survivors(samples: &[(i64, DateTime<Utc>)], now: i64) -> Vec<(i64, DateTime<Utc>)> {
        let delete: std::collections::HashSet<i64> = thin(samples, at(now)).into_iter().collect();
        samples
            .iter()
            .filter(|(id, _)| !delete.contains(id))
            .copied()
            .collect()
    }

    #[test]
    fn thin_keeps_a_week_at_10s_under_two_thousand_rows() {
        let week = week_at_10s();
        let kept = survivors(&week, NOW);
        assert_eq!(kept.len(), 720 + 552 + 120);
        let age = |t: &DateTime<Utc>| NOW - t.timestamp();
        assert_eq!(kept.iter().filter(|(_, t)| age(t) <= 7200).count(), 720);
        // Older than 2 h, every survivor starts its bucket.
        for (_, t) in kept.iter().filter(|(_, t)| age(t) > 7200) {
            let width = if age(t) <= 2 * 86_400 { 300 } else { 3600 };
            assert_eq!(t.timestamp() % width, 0, "{t}");
        }
        // At any time of day the bound holds and the last 2 h are all kept.
        for offset in [1, 9, 299, 301, 3299, 3301, 3599, 3601, 43_210] {
            let now = NOW + offset;
            let week: Vec<_> = week
                .iter()
                .map(|&(id, t)| (id, t + chrono::Duration::seconds(offset)))
                .collect();
            let kept = survivors(&week, now);
            assert!(
                (1392..=1434).contains(&kept.len()),
                "{offset}: {}",
                kept.len()
            );
            let young = |(_, t): &&(i64, DateTime<Utc>)| now - t.timestamp() < 7200;
            assert_eq!(
                kept.iter().filter(young).count(),
                week.iter().filter(young).count()
            );
        }
    }

    #[test]
    fn thin_at_bucket_edges() {
        let week = week_at_10s();
        let delete: std::collections::HashSet<i64> = thin(&week, at(NOW)).into_iter().collect();
        let id = |age: i64| (7 * 86_400 - age) / 10;
        let kept = |age: i64| !delete.contains(&id(age));
        assert!(kept(10)); // youngest
        assert!(kept(7200)); // exactly 2 h: still kept
        assert!(!kept(7210)); // in the 5-minute bucket that starts at 7500
        assert!(kept(7500));
        assert!(!kept(7490));
        assert!(kept(172_500)); // starts a 5-minute bucket
        assert!(!kept(172_510));
        assert!(kept(172_800)); // exactly 2 days: starts a 5-minute bucket
        assert!(!kept(172_790));
        assert!(!kept(172_810)); // in the hour that starts at 176_400
        assert!(kept(176_400));
        assert!(!kept(176_390));
        assert!(kept(7 * 86_400)); // oldest
    }

    #[test]
    fn thin_is_idempotent_and_agrees_with_thinning_later() {
        let week = week_at_10s();
        let kept = survivors(&week, NOW);
        assert!(thin(&kept, at(NOW)).is_empty());
        for later in [1, 10, 299, 300, 3601, 86_410, 3 * 86_400 + 7] {
            let later = NOW + later;
            let again = survivors(&kept, later);
            assert_eq!(again, survivors(&week, later), "{later}");
            assert!(thin(&again, at(later)).is_empty());
        }
    }

    #[test]
    fn thin_takes_any_order_and_empty_input() {
        assert!(thin(&[], at(NOW)).is_empty());
        let week = week_at_10s();
        let n = week.len();
        // A fixed permutation: 7919 is prime and does not divide n.
        let shuffled: Vec<_> = (0..n).map(|i| week[i * 7919 % n]).collect();
        assert_ne!(shuffled[..10], week[..10]);
        assert_eq!(thin(&shuffled, at(NOW)), thin(&week, at(NOW)));
        // Same time in one bucket: the smallest id stays.
        let tie = [
            (9, at(NOW - 86_400)),
            (4, at(NOW - 86_400)),
            (7, at(NOW - 3600)),
        ];
        assert_eq!(thin(&tie, at(NOW)), vec![9]);
    }

    /// A process group started by a test, killed (all of it) and reaped on drop,
    /// also when the test panics.
    #[cfg(target_os = "linux")]
    struct Group(std::process::Child);

    #[cfg(target_os = "linux")]
    impl Group {
        fn sh(script: &str) -> Group {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new("sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap();
            Group(child)
        }

        /// User + system CPU of the whole group (read independently of the
        /// sampler: by process group, not by parent pid).
        fn cpu_seconds(&self) -> f64 {
            let group = self.0.id().to_string();
            let mut ticks = 0;
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                let Some(close) = stat.rfind(')') else {
                    continue;
                };
                // After the command: state ppid pgrp ... utime(14) stime(15).
                let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
                if f.get(2) == Some(&group.as_str()) {
                    ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
                }
            }
            ticks as f64 / procfs::ticks_per_second() as f64
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Group {
        fn drop(&mut self) {
            // dash's kill takes `-9 -PGID` (not `-KILL -- -PGID`).
            let group = format!("kill -9 -{}", self.0.id());
            let _ = std::process::Command::new("sh")
                .args(["-c", &group])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn descendants_show_their_memory_and_cpu() {
        use std::time::Duration;
        const MIB_200: u64 = 200 * 1024 * 1024;
        // sh spins a core; its children are dd, holding a 200 MiB buffer it
        // filled (blocked writing into a pipe nobody reads), and sleep.
        let group = Group::sh(
            "dd if=/dev/zero bs=200M count=1 iflag=fullblock status=none | sleep 3600 &
             while :; do :; done",
        );
        let mut me = Sampler::new();
        let mut of_sh = Sampler::for_pid(group.0.id());
        // Two samples 1 s apart, each between two independent readings.
        let mut take = || {
            std::thread::sleep(Duration::from_secs(1));
            let before = group.cpu_seconds();
            let sample = me.sample().unwrap();
            let of_sh = of_sh.sample().unwrap();
            (before, sample, of_sh, group.cpu_seconds())
        };
        let (before_1, first, _, after_1) = take();
        let (before_2, second, sh, after_2) = take();
        assert!(second.children >= 3, "{second:?}");
        assert!(second.children_rss_bytes >= MIB_200, "{second:?}");
        let seconds = (second.time - first.time).num_milliseconds() as f64 / 1000.0;
        let percent = |cpu: f64| cpu / seconds * 100.0;
        let children = percent(second.children_cpu_seconds - first.children_cpu_seconds);
        let (low, high) = (percent(before_2 - after_1), percent(after_2 - before_1));
        eprintln!("children CPU {children:.0}%, the group used {low:.0}% to {high:.0}%");
        // 100% on an idle core; less when other work shares the machine.
        assert!(
            high > 10.0,
            "the spinner did not run: {low:.0}%..{high:.0}%"
        );
        assert!(
            (low - 5.0..=high + 5.0).contains(&children),
            "children CPU {children:.0}%, the group used {low:.0}% to {high:.0}% \
             ({first:?} then {second:?})"
        );
        // Seen from sh: itself spins, its descendants hold the memory.
        let sh_percent = sh.cpu_percent.unwrap();
        assert!((low - 5.0..=high + 5.0).contains(&sh_percent), "{sh:?}");
        assert_eq!(sh.children, 2, "{sh:?}");
        assert!(sh.children_rss_bytes >= MIB_200, "{sh:?}");
        assert!(sh.rss_bytes < MIB_200, "{sh:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process() {
        assert!(available());
        let mut sampler = Sampler::new();
        let first = sampler.sample().unwrap();
        assert_eq!(first.pid, std::process::id());
        assert!(first.rss_bytes > 0);
        assert!(first.peak_rss_bytes.unwrap() >= first.rss_bytes);
        assert!(first.threads.unwrap() >= 1);
        assert!(first.open_fds.unwrap() >= 3);
        assert!(first.read_bytes.is_some() && first.write_bytes.is_some());
        assert_eq!(first.cpu_percent, None);
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 50 {
            std::hint::black_box(spin.elapsed());
        }
        let second = sampler.sample().unwrap();
        assert!(second.cpu_percent.unwrap() >= 0.0, "{second:?}");
        assert!(second.cpu_seconds >= first.cpu_seconds);
        assert!(second.time >= first.time);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_exited_process_is_unavailable() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut sampler = Sampler::for_pid(pid);
        // Before it is reaped it is a zombie; after, it is gone.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let zombie = sampler.sample().unwrap_err();
        child.wait().unwrap();
        let gone = sampler.sample().unwrap_err();
        assert!(zombie.0.contains("exited"), "{zombie}");
        assert!(gone.to_string().contains(&pid.to_string()), "{gone}");
        assert!(Sampler::for_pid(u32::MAX).sample().is_err());
    }
}
