//! OpenTelemetry export: runs and subtasks that end in this process are sent as
//! traces to an OTLP/HTTP collector (protobuf) by the writer thread (see
//! `spans.rs` for the mapping, `config.rs` for the environment variables,
//! `send.rs` for the POST).
//!
//! A pipeline call that ends a run or a subtask only pushes the run's id on a
//! bounded queue (no I/O). The writer thread, on its turn, takes what is queued,
//! reads those runs with their subtasks and events from the store and sends them
//! in one request: a subtask's span as soon as it ended (batched for up to a
//! second), the run's span with the subtasks not sent yet when the run ends.
//! A collector that cannot be reached degrades as the database does: the ends
//! stay queued (the oldest dropped, and counted, beyond `MAX_QUEUED_RUNS`), one
//! warning per outage, retries with a growing backoff during which no export is
//! tried, and one line when it is back.

pub mod config;
mod send;
pub mod spans;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use prost::Message;

pub use config::OtlpConfig;
pub use spans::{ResourceInfo, RunTrace};

use crate::error::Result;
use crate::query::{LostRule, RunRow, SubtaskRow};
use crate::store::Store;
use crate::sync::lock;
use send::{Delivery, Sender};

/// Ends (of runs or subtasks) waiting for export, at most; beyond, the oldest
/// are dropped.
pub(crate) const MAX_QUEUED_RUNS: usize = 10_000;
/// Ends sent in one request at most (a backlog goes out over several turns).
const MAX_RUNS_PER_REQUEST: usize = 500;
/// Subtask spans wait this long for others (or for their run's end) to share a
/// request, as an OpenTelemetry batch processor would.
const SUBTASK_BATCH_DELAY: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The exporter of one tracker.
#[derive(Debug)]
pub(crate) struct Exporter {
    resource: ResourceInfo,
    /// A leaf lock, held only to push or take ends.
    queue: Mutex<Pending>,
    /// Held while exporting: one export at a time (the writer's turn, or a close).
    sending: Mutex<SendState>,
}

/// A run of this process ended (its whole trace goes), or one of its subtasks
/// did (that subtask's span goes, ahead of its run's).
#[derive(Clone, Debug, PartialEq)]
struct Ended {
    run: Arc<str>,
    run_ended: bool,
}

#[derive(Debug, Default)]
struct Pending {
    ends: VecDeque<Ended>,
    /// Ends dropped from a full queue since the last delivery.
    dropped: u64,
    /// When the oldest queued subtask end was queued.
    subtasks_since: Option<Instant>,
}

#[derive(Debug)]
struct SendState {
    sender: Sender,
    /// While the collector is away: when to try again, and the next pause.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The subtask spans sent ahead of their run's, with the end they were sent
    /// with: the run's export leaves them out unless they changed since.
    sent: HashMap<Arc<str>, HashMap<i64, i64>>,
}

impl Exporter {
    /// The exporter the environment and the file's `otlp:` ask for, if any
    /// (see `config.rs`).
    pub(crate) fn from_env(file: Option<&crate::otlp_settings::OtlpSettings>) -> Option<Exporter> {
        OtlpConfig::from_env(file).map(|c| Exporter::new(&c))
    }

    pub(crate) fn new(c: &OtlpConfig) -> Exporter {
        Exporter {
            resource: ResourceInfo::from_config(c),
            queue: Mutex::new(Pending::default()),
            sending: Mutex::new(SendState {
                sender: Sender::new(c),
                retry_at: None,
                backoff: FIRST_BACKOFF,
                sent: HashMap::new(),
            }),
        }
    }

    /// A run of this process ended: export it on the writer's next turn.
    pub(crate) fn run_ended(&self, run_id: &Arc<str>) {
        lock(&self.queue).push_back(Ended {
            run: Arc::clone(run_id),
            run_ended: true,
        });
    }

    /// A subtask of this run ended: export its span soon (batched).
    pub(crate) fn subtask_ended(&self, run_id: &Arc<str>) {
        let mut q = lock(&self.queue);
        let end = Ended {
            run: Arc::clone(run_id),
            run_ended: false,
        };
        // One read of the run finds every subtask that ended since.
        if !q.ends.contains(&end) {
            q.subtasks_since.get_or_insert_with(Instant::now);
            q.push_back(end);
        }
    }

    /// A forked child exports its own runs, not the parent's queue.
    pub(crate) fn forget_queued(&self) {
        *lock(&self.queue) = Pending::default();
    }

    /// Sends what is queued (unless the collector is in backoff, or another
    /// thread is already sending). Subtask spans wait up to
    /// `SUBTASK_BATCH_DELAY` for company unless `now` (closing). `read` reads
    /// the runs' traces from the store; when it fails the ends stay queued.
    pub(crate) fn export(
        &self,
        now: bool,
        read: impl FnOnce(&[Arc<str>]) -> Result<Vec<RunTrace>>,
    ) {
        let Ok(mut state) = self.sending.try_lock() else {
            return;
        };
        if state.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let batch = lock(&self.queue).take(MAX_RUNS_PER_REQUEST, now);
        if batch.is_empty() {
            return;
        }
        let runs = distinct_runs(&batch);
        let ids: Vec<Arc<str>> = runs.iter().map(|(id, _)| Arc::clone(id)).collect();
        let traces = match read(&ids) {
            Ok(t) => t,
            Err(e) => {
                log::debug!("tasker: runs not exported yet (cannot read them: {e})");
                lock(&self.queue).put_back(batch);
                return;
            }
        };
        let run_ended = |rt: &RunTrace| {
            let id = rt.run.run_id.as_deref().unwrap_or_default();
            runs.iter().any(|(r, ended)| *ended && &**r == id)
        };
        let sent = &state.sent;
        let already_sent = |rt: &RunTrace| {
            let of_run = rt.run.run_id.as_deref().and_then(|id| sent.get(id));
            move |s: &SubtaskRow| {
                of_run.and_then(|m| m.get(&s.subtask_number)) == Some(&end_nanos(s))
            }
        };
        let filters: Vec<_> = traces.iter().map(already_sent).collect();
        let parts = traces.iter().zip(&filters).map(|(rt, sent)| {
            let part = if run_ended(rt) {
                spans::Part::WholeExcept(sent)
            } else {
                spans::Part::EndedSubtasks(sent)
            };
            (rt, part)
        });
        let request = spans::request_of(parts, &self.resource, Utc::now());
        let delivery = if request.resource_spans.is_empty() {
            Delivery::Delivered
        } else {
            state.sender.post(&request.encode_to_vec())
        };
        match delivery {
            Delivery::Delivered => {
                state.remember_sent(&traces, run_ended);
                let dropped = std::mem::take(&mut lock(&self.queue).dropped);
                if state.retry_at.take().is_some() {
                    let lost = if dropped > 0 {
                        format!(
                            " ({dropped} ended runs or subtasks were dropped from the full queue)"
                        )
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
                state.remember_sent(&traces, run_ended);
                log::warn!(
                    "tasker: the OpenTelemetry collector at {} refused {} runs: {why}",
                    state.sender.url(),
                    traces.len()
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
        (q.ends.len(), q.dropped)
    }
}

impl SendState {
    /// After a request: a run sent whole is done with; the subtasks sent ahead
    /// are remembered with their ends.
    fn remember_sent(&mut self, traces: &[RunTrace], run_ended: impl Fn(&RunTrace) -> bool) {
        for rt in traces {
            let Some(id) = rt.run.run_id.as_deref() else {
                continue;
            };
            if run_ended(rt) {
                self.sent.remove(id);
                continue;
            }
            if self.sent.len() >= MAX_QUEUED_RUNS && !self.sent.contains_key(id) {
                // Runs that never end here: forgetting them costs at most a
                // subtask span sent twice, with the same ids (an update).
                self.sent.clear();
            }
            let of_run = self.sent.entry(Arc::from(id)).or_default();
            for s in rt.subtasks.iter().filter(|s| s.status.is_terminal()) {
                of_run.insert(s.subtask_number, end_nanos(s));
            }
        }
    }
}

/// A subtask's end as sent (0 while it has none).
fn end_nanos(s: &SubtaskRow) -> i64 {
    s.end_time
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Each run of the batch once, in order, and whether it ended.
fn distinct_runs(batch: &[Ended]) -> Vec<(Arc<str>, bool)> {
    let mut runs: Vec<(Arc<str>, bool)> = Vec::new();
    for e in batch {
        match runs.iter_mut().find(|(r, _)| *r == e.run) {
            Some((_, ended)) => *ended |= e.run_ended,
            None => runs.push((Arc::clone(&e.run), e.run_ended)),
        }
    }
    runs
}

impl Pending {
    fn push_back(&mut self, end: Ended) {
        if self.ends.len() >= MAX_QUEUED_RUNS {
            self.ends.pop_front();
            self.dropped += 1;
        }
        self.ends.push_back(end);
    }

    /// Up to `at_most` ends; nothing while only subtask ends are queued and
    /// the oldest is younger than `SUBTASK_BATCH_DELAY` (unless `now`).
    fn take(&mut self, at_most: usize, now: bool) -> Vec<Ended> {
        let subtasks_wait = self
            .subtasks_since
            .is_some_and(|t| t.elapsed() < SUBTASK_BATCH_DELAY);
        if !now && subtasks_wait && !self.ends.iter().any(|e| e.run_ended) {
            return Vec::new();
        }
        let n = self.ends.len().min(at_most);
        let taken: Vec<Ended> = self.ends.drain(..n).collect();
        self.subtasks_since = (!self.ends.is_empty()).then(Instant::now);
        taken
    }

    /// Puts ends taken back at the front, in their order (ahead of newer ones),
    /// dropping the oldest if ends queued meanwhile filled the queue.
    fn put_back(&mut self, batch: Vec<Ended>) {
        for end in batch.into_iter().rev() {
            self.ends.push_front(end);
        }
        while self.ends.len() > MAX_QUEUED_RUNS {
            self.ends.pop_front();
            self.dropped += 1;
        }
        self.subtasks_since.get_or_insert_with(Instant::now);
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
