//! OpenTelemetry export: runs that end in this process are sent as traces to an
//! OTLP/HTTP collector (protobuf) by the writer thread (see `spans.rs` for the
//! mapping, `config.rs` for the environment variables, `send.rs` for the POST).
//!
//! A pipeline call that ends a run only pushes its id on a bounded queue (no I/O).
//! The writer thread, on its turn, takes what is queued, reads those runs with
//! their subtasks and events from the store and sends them in one request. A
//! collector that cannot be reached degrades as the database does: the runs stay
//! queued (the oldest dropped, and counted, beyond `MAX_QUEUED_RUNS`), one warning
//! per outage, retries with a growing backoff during which no export is tried,
//! and one line when it is back.

pub mod config;
mod send;
pub mod spans;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use prost::Message;

pub use config::OtlpConfig;
pub use spans::{ResourceInfo, RunTrace};

use crate::error::Result;
use crate::query::{LostRule, RunRow};
use crate::store::Store;
use crate::sync::lock;
use send::{Delivery, Sender};

/// Ended runs waiting for export, at most; beyond, the oldest are dropped.
pub(crate) const MAX_QUEUED_RUNS: usize = 10_000;
/// Runs sent in one request at most (a backlog goes out over several turns).
const MAX_RUNS_PER_REQUEST: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The exporter of one tracker.
#[derive(Debug)]
pub(crate) struct Exporter {
    resource: ResourceInfo,
    /// A leaf lock, held only to push or take ids.
    queue: Mutex<Pending>,
    /// Held while exporting: one export at a time (the writer's turn, or a close).
    sending: Mutex<SendState>,
}

#[derive(Debug, Default)]
struct Pending {
    runs: VecDeque<Arc<str>>,
    /// Runs dropped from a full queue since the last delivery.
    dropped: u64,
}

#[derive(Debug)]
struct SendState {
    sender: Sender,
    /// While the collector is away: when to try again, and the next pause.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Exporter {
    /// The exporter the environment asks for, if any (see `config.rs`).
    pub(crate) fn from_env() -> Option<Exporter> {
        OtlpConfig::from_env().map(|c| Exporter::new(&c))
    }

    pub(crate) fn new(c: &OtlpConfig) -> Exporter {
        Exporter {
            resource: ResourceInfo::from_config(c),
            queue: Mutex::new(Pending::default()),
            sending: Mutex::new(SendState {
                sender: Sender::new(c),
                retry_at: None,
                backoff: FIRST_BACKOFF,
            }),
        }
    }

    /// A run of this process ended: export it on the writer's next turn.
    pub(crate) fn run_ended(&self, run_id: &Arc<str>) {
        let mut q = lock(&self.queue);
        q.push_back(Arc::clone(run_id));
    }

    /// A forked child exports its own runs, not the parent's queue.
    pub(crate) fn forget_queued(&self) {
        *lock(&self.queue) = Pending::default();
    }

    /// Sends what is queued (unless the collector is in backoff, or another
    /// thread is already sending). `read` reads the runs' traces from the store;
    /// when it fails the runs stay queued for the next turn.
    pub(crate) fn export(&self, read: impl FnOnce(&[Arc<str>]) -> Result<Vec<RunTrace>>) {
        let Ok(mut state) = self.sending.try_lock() else {
            return;
        };
        if state.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let batch = lock(&self.queue).take(MAX_RUNS_PER_REQUEST);
        if batch.is_empty() {
            return;
        }
        let traces = match read(&batch) {
            Ok(t) => t,
            Err(e) => {
                log::debug!("tasker: runs not exported yet (cannot read them: {e})");
                lock(&self.queue).put_back(batch);
                return;
            }
        };
        let body = spans::request(&traces, &self.resource, Utc::now()).encode_to_vec();
        match state.sender.post(&body) {
            Delivery::Delivered => {
                let dropped = std::mem::take(&mut lock(&self.queue).dropped);
                if state.retry_at.take().is_some() {
                    let lost = if dropped > 0 {
                        format!(" ({dropped} runs were dropped from the full queue)")
                    } else {
                        String::new()
                    };
                    log::warn!(
                        "tasker: the OpenTelemetry collector at {} is back; queued runs are exported{lost}",
                        state.sender.url()
                    );
                }
                state.backoff = FIRST_BACKOFF;
            }
            Delivery::Refused(why) => {
                // Retrying what a collector refuses would refuse again: drop it.
                log::warn!(
                    "tasker: the OpenTelemetry collector at {} refused {} runs: {why}",
                    state.sender.url(),
                    batch.len()
                );
            }
            Delivery::Unreachable(why) => {
                if state.retry_at.is_none() {
                    log::warn!(
                        "tasker: the OpenTelemetry collector at {} cannot be reached ({why}); \
                         ended runs are queued (up to {MAX_QUEUED_RUNS}) and exported when it is back",
                        state.sender.url()
                    );
                }
                lock(&self.queue).put_back(batch);
                state.retry_at = Some(Instant::now() + state.backoff);
                state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    #[cfg(test)]
    fn queued(&self) -> (usize, u64) {
        let q = lock(&self.queue);
        (q.runs.len(), q.dropped)
    }
}

impl Pending {
    fn push_back(&mut self, run: Arc<str>) {
        if self.runs.len() >= MAX_QUEUED_RUNS {
            self.runs.pop_front();
            self.dropped += 1;
        }
        self.runs.push_back(run);
    }

    fn take(&mut self, at_most: usize) -> Vec<Arc<str>> {
        let n = self.runs.len().min(at_most);
        self.runs.drain(..n).collect()
    }

    /// Puts runs taken back at the front, in their order (ahead of newer ones),
    /// dropping the oldest if runs ended meanwhile filled the queue.
    fn put_back(&mut self, batch: Vec<Arc<str>>) {
        for run in batch.into_iter().rev() {
            self.runs.push_front(run);
        }
        while self.runs.len() > MAX_QUEUED_RUNS {
            self.runs.pop_front();
            self.dropped += 1;
        }
    }
}

/// Reads the traces of these runs in one store session (a run deleted meanwhile
/// is left out).
pub(crate) fn read_traces<S: AsRef<str>>(
    st: &mut dyn Store,
    run_ids: &[S],
    rule: &LostRule,
) -> Result<Vec<RunTrace>> {
    let mut out = Vec::with_capacity(run_ids.len());
    for id in run_ids {
        let id = id.as_ref();
        let Some(mut run) = st.run(id)? else {
            continue;
        };
        run.derive(rule);
        out.push(RunTrace {
            subtasks: st.subtasks(id)?,
            events: st.events_after(0, Some(id), usize::MAX)?,
            run,
        });
    }
    Ok(out)
}

/// The OTLP JSON encoding (the specification's: hex ids, camelCase keys, 64-bit
/// integers as strings) of these runs' traces, as one `TracesData` document.
pub fn traces_json(traces: &[RunTrace], resource: &ResourceInfo) -> serde_json::Value {
    let request = spans::request(traces, resource, Utc::now());
    serde_json::to_value(&request).unwrap_or(serde_json::Value::Null)
}

/// The rows of runs that can be exported (an id and a start time).
pub fn exportable(runs: &[RunRow]) -> impl Iterator<Item = &str> {
    runs.iter()
        .filter(|r| r.start_time.is_some())
        .filter_map(|r| r.run_id.as_deref())
}

#[cfg(test)]
mod tests;
