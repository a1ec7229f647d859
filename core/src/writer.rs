//! The one background writer thread of an open database in a process. Every
//! `flush_interval` it writes all dirty progress in one transaction, every
//! `heartbeat_interval` it refreshes the heartbeat of the runs this process
//! started, and every sample interval (`Tracker::set_sample_interval`, which may
//! change while it runs) it samples this process's resource use for them
//! (written with the next progress or heartbeat); after an outage it reconnects and replays the queued writes
//! (`supervisor.rs`). When OpenTelemetry export is configured it then sends the
//! runs that ended since its last turn (`otlp/`). Transitions do not wait for it: they are committed on the
//! caller's thread. The thread blocks asynchronous signals: they are the
//! program's, not tasker's.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ffi::os::with_signals_blocked;
use crate::sampler::Sampler;
use crate::tracker::TrackerInner;

/// Handle to a running writer; dropping it does not stop the thread, `stop` does.
#[derive(Debug)]
pub(crate) struct Writer {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn spawn(
        tracker: Weak<TrackerInner>,
        flush_interval: Duration,
        heartbeat_interval: Duration,
    ) -> Writer {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = Intervals {
            flush: flush_interval,
            heartbeat: heartbeat_interval,
        };
        let thread = with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("tasker-writer".into())
                .spawn(move || run(tracker, stopped, every))
                .expect("the OS refused to start the tasker writer thread")
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread and waits for it (it makes one last flush on its way out).
    pub(crate) fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

struct Intervals {
    flush: Duration,
    heartbeat: Duration,
}

fn run(tracker: Weak<TrackerInner>, stopped: mpsc::Receiver<()>, every: Intervals) {
    let mut next_heartbeat = Instant::now() + every.heartbeat;
    let mut sampler = Sampler::new();
    // The sample interval is read on every turn: a program may turn sampling on,
    // off or change its pace while runs go on.
    let mut sampling = tracker.upgrade().and_then(|t| t.sample_interval());
    let mut next_sample = sampling.map(|s| Instant::now() + s);
    let mut more: Option<Duration> = None;
    loop {
        // While queued writes are replayed, batch after batch with a short pause
        // (so that pipeline calls, queries and other processes get their turn).
        let wait = more.unwrap_or(every.flush);
        let stop = match stopped.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        let Some(t) = tracker.upgrade() else { return };
        let interval_now = t.sample_interval();
        if interval_now != sampling {
            // A new interval starts with a sample now, so that whoever changed it
            // sees one at once.
            sampling = interval_now;
            next_sample = sampling.map(|_| Instant::now());
        }
        if let (Some(due), Some(interval)) = (next_sample, sampling) {
            if Instant::now() >= due {
                next_sample = Some(Instant::now() + interval);
                t.sample_owned_runs(&mut sampler);
            }
        }
        let beat = Instant::now() >= next_heartbeat;
        if beat {
            next_heartbeat = Instant::now() + every.heartbeat;
        }
        // Errors are reported (once per outage) and the writes kept by the supervisor.
        more = t.flush_in_background(beat);
        // Alerts of runs that failed in this process: delivered here, never on
        // the pipeline's thread (a slow webhook delays flushes, not calls).
        t.alert_turn();
        if more.is_none() {
            t.export_ended_runs(stop);
        }
        if stop {
            return;
        }
    }
}
