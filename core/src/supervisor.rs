//! The connection supervisor: the one place that talks to the database for a
//! tracker in one process. It owns the connection, the queue of writes that
//! wait for it, and the outage state; the public handles (`tracker.rs`) only
//! say what to write.
//!
//! The write path, as one story:
//!
//! 1. A progress call touches memory only (`progress.rs`). The writer thread
//!    (`writer.rs`) calls `tick` every flush interval: all pending progress goes
//!    in one transaction.
//! 2. A transition (`transition`) is committed on the caller's thread, after the
//!    progress it must follow (that of its subtask, or of its run), and is
//!    durable when the call returns.
//! 3. When the database cannot be reached (`went_down`) the call still returns:
//!    the write is queued in order (`outbox.rs`: memory, then spool files), one
//!    warning is logged, and from then on every write is queued at once. No
//!    pipeline call opens a connection while the database is away.
//! 4. The writer thread reconnects when the backoff allows (without holding
//!    anything a pipeline call needs), then replays the queue in batches, many
//!    writes per transaction. Until the queue is empty, new transitions queue
//!    behind it and return at once; queries are answered by the database
//!    between batches. When it is empty, one line says how long the outage was
//!    and how many writes were replayed.
//! 5. Every write carries an id (`OpId`): one whose answer was lost with the
//!    connection may have been applied, and is sent again under the same id,
//!    which the database then skips.
//!
//! Lock order: `conn` before `queue`; `orphans` and `owned` are leaves; the run
//! registry (cells, `RunShared` maps) may be called with `queue` held. A pipeline
//! call takes `conn` only when nothing is queued and the database is up, so it
//! never waits for a reconnect or a replay (at most for one replay batch, in the
//! instant the queue empties).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log_time;
use crate::logs::{LogBatch, LogBuffer, NewItemOutcome, PendingLine};
use crate::outbox::{location_key, Orphans, Outbox};
use crate::query::EventRow;
use crate::sampler::Sample;
use crate::store::{self, Op, OpId, Output, ProgressUpdate, Queued, RunSample, Store};
use crate::sync::lock;
use crate::writer::Writer;

/// Waits between attempts to reach a database that is down: doubling up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Samples kept for the next write (6 minutes of one run at the default interval
/// per 36 runs; an outage keeps the latest).
const MAX_PENDING_SAMPLES: usize = 360;
/// How often a process thins the stored samples of its runs.
const THIN_EVERY: Duration = Duration::from_secs(3600);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Queued writes per replay transaction: adapted so that one batch takes about
/// `REPLAY_SLICE` (a query waiting behind it, or another process waiting for
/// SQLite's write lock, waits no longer).
const FIRST_BATCH: usize = 64;
const MAX_BATCH: usize = 4096;
const REPLAY_SLICE: Duration = Duration::from_millis(10);

/// What the supervisor needs of the tracker's runs in this process.
pub(crate) trait RunRegistry {
    /// Takes the pending progress of every run.
    fn take_all(&self, out: &mut Vec<ProgressUpdate>);
    /// A queued or flushed write was applied: learn from the answer (the number a
    /// subtask got, which subtasks had finished).
    fn applied(&self, op: &Op, out: &Output);
    /// The events a write stored (`Store::take_events`), in commit order: called
    /// with `conn` held, after every write, so that they are staged in that order.
    fn stored(&self, events: Vec<EventRow>);
    /// Whether anything consumes the stored events (when nothing does, the
    /// store need not read them back).
    fn wants_events(&self) -> bool;
}

/// What a tracker shares with its supervisor for one call.
pub(crate) struct Cx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) runs: &'a dyn RunRegistry,
    pub(crate) counters: &'a Counters,
}

/// What a tracker wrote so far in this process.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) progress_commits: std::sync::atomic::AtomicU64,
    pub(crate) transitions: std::sync::atomic::AtomicU64,
}

/// What became of a transition.
#[derive(Debug)]
pub(crate) enum Answer {
    Applied(Output),
    /// Queued: applied in order when the database is reachable again.
    Queued,
}

/// Whether tracking reaches its database, and what waits to be written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// Where the database is (never with a password).
    pub location: String,
    pub reachable: bool,
    /// The last error, while the database is unreachable.
    pub last_error: Option<String>,
    /// Writes waiting for the database (memory and spool): transitions and
    /// progress batches queued during an outage and not replayed yet.
    pub pending_writes: usize,
    /// Of those, how many are in spool files.
    pub spooled_writes: usize,
    /// The database is back and the queued writes are being replayed.
    pub replaying: bool,
}

/// The per-process side of a tracker: a forked child builds a new one (and leaks
/// the parent's, whose connection and threads belong to the parent).
pub(crate) struct Supervisor {
    pub(crate) generation: u64,
    conn: Mutex<Option<Box<dyn Store>>>,
    queue: Mutex<Queue>,
    pub(crate) writer: Mutex<Option<Writer>>,
    /// Runs started by this process: the writer keeps their heartbeat fresh.
    owned: Mutex<Vec<Arc<str>>>,
    /// Progress of runs whose last handle was dropped before it was written.
    orphans: Mutex<Vec<ProgressUpdate>>,
    /// Resource samples waiting for the next progress or heartbeat write.
    samples: Mutex<Vec<RunSample>>,
    /// Log lines and item outcomes waiting for the next write (`logs.rs`).
    logs: Mutex<LogBuffer>,
    /// When samples of this process's runs were last thinned.
    thinned: Mutex<Instant>,
    /// Names this process's writes (with a sequence number).
    writer_id: Arc<str>,
    /// When the connection was last used (ms since `born`): an idle one is closed.
    last_used: std::sync::atomic::AtomicU64,
    born: Instant,
}

struct Queue {
    outbox: Outbox,
    next_seq: u64,
    /// Set while the database cannot be reached.
    down: Option<Down>,
    /// From the first failure until everything queued meanwhile was applied.
    episode: Option<Episode>,
    batch: usize,
    /// A refusal to reconnect already reported (said once, not every retry).
    refusal_said: Option<String>,
}

struct Down {
    error: Error,
    retry_at: Instant,
    backoff: Duration,
}

struct Episode {
    began: Instant,
    back_at: Option<Instant>,
    replayed: usize,
    refused: usize,
    first_refusal: Option<String>,
}

impl Queue {
    fn must_queue(&self) -> bool {
        self.down.is_some() || !self.outbox.is_empty()
    }

    fn next_id(&mut self, writer: &Arc<str>) -> OpId {
        self.next_seq += 1;
        OpId {
            writer: Arc::clone(writer),
            seq: self.next_seq,
        }
    }

    fn push(&mut self, writer: &Arc<str>, op: Op) {
        let id = self.next_id(writer);
        self.outbox.push(Queued { id: Some(id), op });
    }
}

/// Sends a write's id only to a store where a failed write may have been applied.
fn apply_direct(store: &mut dyn Store, op: &Op, id: &OpId) -> Result<Output> {
    let id = store.outcome_may_be_unknown().then_some(id);
    store.apply(op, id)
}

impl Supervisor {
    /// `store` is the connection opened by `Tracker::open`, or `None` with the error
    /// that kept it from opening (tracking then starts in an outage).
    pub(crate) fn new(
        generation: u64,
        store: std::result::Result<Option<Box<dyn Store>>, Error>,
        config: &Config,
    ) -> Supervisor {
        let key = location_key(&config.location.identity());
        let mut queue = Queue {
            outbox: Outbox::new(crate::config::state_dir().join("spool"), key),
            next_seq: 0,
            down: None,
            episode: None,
            batch: FIRST_BATCH,
            refusal_said: None,
        };
        let conn = match store {
            Ok(Some(st)) => {
                // Writes left by processes that exited during an outage.
                queue.outbox.adopt_orphans();
                Some(st)
            }
            Ok(None) => None,
            Err(e) => {
                warn_down(config, &e);
                queue.down = Some(Down {
                    error: e,
                    retry_at: Instant::now() + FIRST_BACKOFF,
                    backoff: FIRST_BACKOFF,
                });
                queue.episode = Some(Episode::new());
                None
            }
        };
        Supervisor {
            generation,
            conn: Mutex::new(conn),
            queue: Mutex::new(queue),
            writer: Mutex::new(None),
            owned: Mutex::new(Vec::new()),
            orphans: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
            logs: Mutex::new(LogBuffer::default()),
            thinned: Mutex::new(Instant::now()),
            writer_id: store::new_uid(),
            last_used: std::sync::atomic::AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    fn used(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_used.store(ms, relaxed());
    }

    /// Closes a connection unused for `idle_disconnect` (nothing waits to be
    /// written), so that a process with nothing to say holds no server slot; the
    /// next write or query opens one again.
    fn disconnect_if_idle(&self, conn: &mut Option<Box<dyn Store>>, config: &Config) {
        let idle = self.born.elapsed().as_millis() as u64 - self.last_used.load(relaxed());
        if conn.is_some() && idle >= config.idle_disconnect.as_millis() as u64 {
            *conn = None;
        }
    }

    pub(crate) fn own(&self, run_id: Arc<str>) {
        lock(&self.owned).push(run_id);
    }

    pub(crate) fn forget_owned(&self, run_id: &str) {
        lock(&self.owned).retain(|r| &**r != run_id);
    }

    /// Whether this process started runs that are still active here.
    pub(crate) fn owns_runs(&self) -> bool {
        !lock(&self.owned).is_empty()
    }

    /// Keeps a sample of this process for each run it started, to be written
    /// with the next progress or heartbeat. Bounded: during a long outage the
    /// oldest go first.
    pub(crate) fn add_sample(&self, sample: Sample) {
        let owned = lock(&self.owned).clone();
        let mut pending = lock(&self.samples);
        for run_id in owned {
            pending.push(RunSample {
                run_id,
                sample: sample.clone(),
            });
        }
        if pending.len() > MAX_PENDING_SAMPLES {
            let excess = pending.len() - MAX_PENDING_SAMPLES;
            pending.drain(..excess);
        }
    }

    /// Progress of a run whose last handle went: written by the next flush.
    pub(crate) fn orphan(&self, updates: Vec<ProgressUpdate>) {
        lock(&self.orphans).extend(updates);
    }

    fn take_pending(&self, cx: &Cx<'_>) -> Vec<ProgressUpdate> {
        // Orphans first: they are older than anything a live handle holds.
        let mut updates = std::mem::take(&mut *lock(&self.orphans));
        cx.runs.take_all(&mut updates);
        updates
    }

    /// A transition: applied now (durable on return), or queued when writes wait
    /// for the database. `first` gives the progress it must follow, taken only
    /// once its place in the order is settled.
    pub(crate) fn transition(
        &self,
        cx: &Cx<'_>,
        op: Op,
        first: impl FnOnce() -> Vec<ProgressUpdate>,
    ) -> Result<Answer> {
        {
            let mut q = lock(&self.queue);
            if q.must_queue() {
                self.enqueue(&mut q, first(), op, cx.config);
                return Ok(Answer::Queued);
            }
        }
        let mut conn = lock(&self.conn);
        if conn.is_none() {
            if let Err(e) = self.open_inline(&mut conn, cx) {
                return match e.is_transient() {
                    true => {
                        self.enqueue(&mut lock(&self.queue), first(), op, cx.config);
                        Ok(Answer::Queued)
                    }
                    false => Err(e),
                };
            }
        }
        let mut q = lock(&self.queue);
        if q.must_queue() {
            self.enqueue(&mut q, first(), op, cx.config);
            return Ok(Answer::Queued);
        }
        let progress = first();
        // Samples waiting for a write ride the transition too: a run that only
        // starts and completes subtasks (no increments, shorter than a
        // heartbeat) still keeps the samples taken while it ran.
        let samples = self.take_samples();
        // So are log lines: what a run logged before it finished is stored with
        // (not after) the transition.
        let logs = self.take_logs(cx.config);
        let progress_id = (!progress.is_empty() || !samples.is_empty() || !logs.is_empty())
            .then(|| q.next_id(&self.writer_id));
        let id = q.next_id(&self.writer_id);
        drop(q);
        let store = conn.as_deref_mut().expect("opened above");
        self.used();
        store.collect_events(cx.runs.wants_events());
        let applied = match progress_id {
            None => {
                let answer = apply_direct(store, &op, &id);
                cx.runs.stored(store.take_events());
                answer
            }
            Some(pid) => {
                // The progress and the transition in one transaction.
                let before = Op::Progress {
                    updates: progress,
                    heartbeats: Vec::new(),
                    samples,
                    logs,
                    at: op.at(),
                };
                let ids = store.outcome_may_be_unknown();
                let answer =
                    store.apply_after((&before, ids.then_some(&pid)), (&op, ids.then_some(&id)));
                cx.runs.stored(store.take_events());
                match answer {
                    Ok((progressed, answer)) => {
                        cx.counters.progress_commits.fetch_add(1, relaxed());
                        cx.runs.applied(&before, &progressed);
                        answer
                    }
                    Err(e) if e.is_transient() => {
                        // Maybe applied: both queued as they were, under their ids.
                        let mut q = lock(&self.queue);
                        q.outbox.push(Queued {
                            id: Some(pid),
                            op: before,
                        });
                        q.outbox.push(Queued {
                            id: Some(id),
                            op: op.into_queued(),
                        });
                        self.went_down(&mut q, &mut conn, &e, cx.config);
                        return Ok(Answer::Queued);
                    }
                    Err(e) => {
                        refused_progress(&e);
                        Err(e)
                    }
                }
            }
        };
        match applied {
            Ok(out) => {
                cx.counters.transitions.fetch_add(1, relaxed());
                Ok(Answer::Applied(out))
            }
            Err(e) if e.is_transient() => {
                // Maybe applied: sent again under its id.
                let mut q = lock(&self.queue);
                q.outbox.push(Queued {
                    id: Some(id),
                    op: op.into_queued(),
                });
                self.went_down(&mut q, &mut conn, &e, cx.config);
                Ok(Answer::Queued)
            }
            Err(e) => Err(e),
        }
    }

    /// Samples waiting for the next write, taken for it.
    /// Keeps a log line for the next write (see `logs.rs`).
    pub(crate) fn add_log_line(
        &self,
        host: &str,
        run_id: &Arc<str>,
        line: PendingLine,
        text: &str,
        config: &Config,
    ) {
        // Read outside the lock; `LineClock` keeps the times in order.
        let read = log_time::line_clock_now();
        lock(&self.logs).push_line(host, run_id, read, line, text, config.max_log_lines);
    }

    /// Keeps an item outcome for the next write.
    pub(crate) fn add_item_outcome(&self, host: &str, outcome: NewItemOutcome) {
        lock(&self.logs).push_outcome(host, outcome);
    }

    fn take_logs(&self, config: &Config) -> LogBatch {
        lock(&self.logs).take(config.max_log_lines)
    }

    fn take_samples(&self) -> Vec<RunSample> {
        std::mem::take(&mut *lock(&self.samples))
    }

    /// Queues `op` behind the progress it must follow (and the waiting samples).
    fn enqueue(&self, q: &mut Queue, progress: Vec<ProgressUpdate>, op: Op, config: &Config) {
        let samples = self.take_samples();
        let logs = self.take_logs(config);
        if !progress.is_empty() || !samples.is_empty() || !logs.is_empty() {
            q.push(
                &self.writer_id,
                Op::Progress {
                    updates: progress,
                    heartbeats: Vec::new(),
                    samples,
                    logs,
                    at: op.at(),
                },
            );
        }
        q.push(&self.writer_id, op.into_queued());
    }

    /// Opens the connection on the caller's thread: only when the database is not
    /// known to be away (a first use, a forked child).
    fn open_inline(&self, conn: &mut Option<Box<dyn Store>>, cx: &Cx<'_>) -> Result<()> {
        match store::open(cx.config) {
            Ok(st) => {
                *conn = Some(st);
                Ok(())
            }
            Err(e) => {
                if e.is_transient() {
                    self.went_down(&mut lock(&self.queue), conn, &e, cx.config);
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on the database. It first writes this process's pending progress
    /// (so the answer includes it), unless queued writes wait, which come first.
    pub(crate) fn read<T>(
        &self,
        cx: &Cx<'_>,
        f: impl FnOnce(&mut dyn Store) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.conn);
        let backlog = {
            let q = lock(&self.queue);
            if let Some(d) = &q.down {
                return Err(d.error.with_note("reconnecting in the background"));
            }
            !q.outbox.is_empty()
        };
        if conn.is_none() {
            self.open_inline(&mut conn, cx)?;
        }
        if !backlog {
            self.flush_on(&mut conn, cx, false)?;
        }
        self.used();
        let store = conn.as_deref_mut().expect("opened above");
        match f(store) {
            Err(e) if e.is_transient() => {
                self.went_down(&mut lock(&self.queue), &mut conn, &e, cx.config);
                Err(e)
            }
            other => other,
        }
    }

    /// Writes all pending progress (and heartbeats when asked) in one transaction.
    /// Called with `conn` held and nothing queued. A write that fails because the
    /// database went away may have been applied: it is queued under its id.
    fn flush_on(
        &self,
        conn: &mut Option<Box<dyn Store>>,
        cx: &Cx<'_>,
        heartbeat: bool,
    ) -> Result<()> {
        let updates = self.take_pending(cx);
        let logs = self.take_logs(cx.config);
        let heartbeats = if heartbeat {
            lock(&self.owned).clone()
        } else {
            Vec::new()
        };
        if updates.is_empty() && heartbeats.is_empty() && logs.is_empty() {
            return Ok(()); // samples wait: never a transaction of their own
        }
        let samples = self.take_samples();
        let id = lock(&self.queue).next_id(&self.writer_id);
        let op = Op::Progress {
            updates,
            heartbeats,
            samples,
            logs,
            at: Utc::now(),
        };
        if conn.is_none() {
            // Closed while idle (or never opened): open it now. (A pipeline call
            // gets here only with the connection open: see `read`, `flush`.)
            if let Err(e) = self.open_inline(conn, cx) {
                self.enqueue_progress(&mut lock(&self.queue), op, id);
                return Err(e);
            }
        }
        let store = conn.as_deref_mut().expect("opened above");
        self.used();
        store.collect_events(cx.runs.wants_events());
        let answer = apply_direct(store, &op, &id);
        cx.runs.stored(store.take_events());
        match answer {
            Ok(out) => {
                cx.counters.progress_commits.fetch_add(1, relaxed());
                cx.runs.applied(&op, &out);
                Ok(())
            }
            Err(e) if e.is_transient() => {
                let mut q = lock(&self.queue);
                self.enqueue_progress(&mut q, op, id);
                self.went_down(&mut q, conn, &e, cx.config);
                Err(e)
            }
            Err(e) => {
                refused_progress(&e);
                Err(e)
            }
        }
    }

    /// Queues a progress write under its id, without its heartbeats (a late
    /// heartbeat says nothing).
    fn enqueue_progress(&self, q: &mut Queue, op: Op, id: OpId) {
        if let Op::Progress {
            updates,
            samples,
            logs,
            at,
            ..
        } = op
        {
            if !updates.is_empty() || !samples.is_empty() || !logs.is_empty() {
                q.outbox.push(Queued {
                    id: Some(id),
                    op: Op::Progress {
                        updates,
                        heartbeats: Vec::new(),
                        samples,
                        logs,
                        at,
                    },
                });
            }
        }
    }

    /// Records that the database went away: later writes queue at once, the writer
    /// reconnects after a backoff, and the first failure of an outage is reported.
    fn went_down(
        &self,
        q: &mut Queue,
        conn: &mut Option<Box<dyn Store>>,
        e: &Error,
        config: &Config,
    ) {
        *conn = None;
        let backoff = q
            .down
            .as_ref()
            .map_or(FIRST_BACKOFF, |d| (d.backoff * 2).min(MAX_BACKOFF));
        q.down = Some(Down {
            error: e.clone(),
            retry_at: Instant::now() + backoff,
            backoff,
        });
        match &mut q.episode {
            Some(ep) => ep.back_at = None, // lost again while replaying: one outage
            None => {
                q.episode = Some(Episode::new());
                warn_down(config, e);
            }
        }
    }

    /// The writer thread's turn: reconnect when due, replay one batch of queued
    /// writes, or write pending progress. When more queued writes wait, how long
    /// to pause before the next batch (the writer then comes back that soon).
    pub(crate) fn tick(&self, cx: &Cx<'_>, heartbeat: bool) -> Option<Duration> {
        let more = self.tick_once(cx, heartbeat);
        more.then(|| {
            match lock(&self.conn)
                .as_ref()
                .map(|st| st.one_writer_at_a_time())
            {
                // Other processes wait for SQLite's one write lock: leave them room.
                Some(true) => Duration::from_millis(5),
                _ => Duration::from_millis(1),
            }
        })
    }

    fn tick_once(&self, cx: &Cx<'_>, heartbeat: bool) -> bool {
        self.reconnect(cx, false);
        if heartbeat {
            // A long-lived process (a dashboard, a pipeline's main process) also
            // replays what processes that exited during an outage left behind.
            self.adopt_orphans();
        }
        let mut conn = lock(&self.conn);
        let q = lock(&self.queue);
        if q.down.is_some() {
            return false;
        }
        let backlog = !q.outbox.is_empty();
        drop(q);
        if backlog && conn.is_none() && self.open_inline(&mut conn, cx).is_err() {
            return false;
        }
        if backlog {
            return self.replay_batch(&mut conn, cx);
        }
        let _ = self.flush_on(&mut conn, cx, heartbeat);
        if heartbeat {
            self.thin_samples_hourly(&mut conn);
        }
        self.disconnect_if_idle(&mut conn, cx.config);
        false
    }

    /// Once an hour, downsamples the stored samples of this process's runs (see
    /// `sampler::thin`), so that a week-long run keeps a few thousand rows.
    fn thin_samples_hourly(&self, conn: &mut Option<Box<dyn Store>>) {
        let mut thinned = lock(&self.thinned);
        if thinned.elapsed() < THIN_EVERY {
            return;
        }
        let Some(store) = conn.as_deref_mut() else {
            return;
        };
        *thinned = Instant::now();
        let owned = lock(&self.owned).clone();
        for run_id in owned {
            if let Err(e) = store.thin_samples(&run_id, Utc::now()) {
                log::debug!("tasker: samples of run {run_id} not thinned this hour: {e}");
            }
        }
        self.used();
    }

    /// Claims spool files of processes that are gone (reading them without the
    /// queue lock) and queues their writes first.
    fn adopt_orphans(&self) {
        let (dir, key) = {
            let q = lock(&self.queue);
            if q.down.is_some() {
                return;
            }
            (
                q.outbox.spool_dir().to_path_buf(),
                q.outbox.key().to_string(),
            )
        };
        let found = Orphans::claim(&dir, &key);
        if !found.is_empty() {
            lock(&self.queue).outbox.adopt(found);
        }
    }

    /// Applies one batch of queued writes in one transaction. True when more wait.
    fn replay_batch(&self, conn: &mut Option<Box<dyn Store>>, cx: &Cx<'_>) -> bool {
        let Some(store) = conn.as_deref_mut() else {
            return false;
        };
        let (batch, size) = {
            let mut q = lock(&self.queue);
            let size = q.batch;
            (q.outbox.peek(size), size)
        };
        if batch.is_empty() {
            return false;
        }
        let started = Instant::now();
        self.used();
        store.collect_events(cx.runs.wants_events());
        let answers = store.apply_batch(&batch);
        let took = started.elapsed();
        cx.runs.stored(store.take_events());
        let mut q = lock(&self.queue);
        let answers = match answers {
            Ok(a) => a,
            Err(e) if e.is_transient() => {
                self.went_down(&mut q, conn, &e, cx.config);
                return false;
            }
            // A refusal of the whole batch (no store does this): each write is refused.
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
        };
        q.outbox.pop(batch.len());
        q.batch = if took < REPLAY_SLICE / 2 {
            (size * 2).min(MAX_BATCH)
        } else if took > REPLAY_SLICE {
            (size / 2).max(1)
        } else {
            size
        };
        let mut refused = 0;
        let mut first_refusal = None;
        for (w, answer) in batch.iter().zip(answers) {
            match answer {
                Ok(out) => cx.runs.applied(&w.op, &out),
                Err(e) => {
                    refused += 1;
                    first_refusal.get_or_insert_with(|| format!("a {}: {e}", w.op.kind()));
                }
            }
        }
        if let Some(ep) = &mut q.episode {
            ep.replayed += batch.len();
            ep.refused += refused;
            if ep.first_refusal.is_none() {
                ep.first_refusal = first_refusal;
            }
        } else if let Some(why) = first_refusal {
            log::warn!("tasker: {refused} queued write(s) refused by the database, first {why}");
        }
        if q.outbox.is_empty() {
            self.episode_ends(&mut q, cx.config);
            return false;
        }
        true
    }

    /// Everything queued during an outage is applied: one line says so.
    fn episode_ends(&self, q: &mut Queue, config: &Config) {
        let Some(ep) = q.episode.take() else {
            return;
        };
        let now = Instant::now();
        let back = ep.back_at.unwrap_or(now);
        let refused = match (&ep.first_refusal, ep.refused) {
            (Some(first), n) => format!("; {n} refused by the database, first {first}"),
            _ => String::new(),
        };
        log::warn!(
            "tasker: {} is reachable again after {:.1} s; {} queued write(s) replayed in {:.2} s{refused}",
            config.location.describe(),
            back.duration_since(ep.began).as_secs_f64(),
            ep.replayed,
            now.duration_since(back).as_secs_f64(),
        );
    }

    /// Reconnects when the backoff allows (or now, when `now`), without holding
    /// anything a pipeline call needs while the connection is made.
    fn reconnect(&self, cx: &Cx<'_>, now: bool) {
        let due = {
            let q = lock(&self.queue);
            q.down
                .as_ref()
                .is_some_and(|d| now || Instant::now() >= d.retry_at)
        };
        if !due {
            return;
        }
        let opened = store::open(cx.config);
        let mut conn = lock(&self.conn);
        let mut q = lock(&self.queue);
        match opened {
            Ok(st) => {
                *conn = Some(st);
                q.down = None;
                q.refusal_said = None;
                if let Some(ep) = &mut q.episode {
                    ep.back_at = Some(Instant::now());
                }
                drop(q);
                drop(conn);
                // Processes that exited during the outage left their writes behind.
                self.adopt_orphans();
            }
            Err(e) if e.is_transient() => self.went_down(&mut q, &mut conn, &e, cx.config),
            Err(e) => {
                // Reachable but refusing (a permission, a newer schema): writes stay
                // queued, retried at the longest backoff; said once.
                let said = e.to_string();
                if q.refusal_said.as_deref() != Some(said.as_str()) {
                    log::warn!("tasker: the database refuses tracking writes ({said}); they are kept and retried");
                    q.refusal_said = Some(said);
                }
                q.down = Some(Down {
                    error: e,
                    retry_at: Instant::now() + MAX_BACKOFF,
                    backoff: MAX_BACKOFF,
                });
            }
        }
    }

    /// Makes pending writes durable: in the database, or while it is away (or
    /// queued writes are still being replayed) in a spool file, which this process
    /// or the next one on this host replays. With `drain`, queued writes are first
    /// replayed on this thread for up to that long (closing, exiting).
    pub(crate) fn flush(&self, cx: &Cx<'_>, drain: Option<Duration>) -> Result<()> {
        // An explicit flush tries the database now, whatever the backoff says.
        self.reconnect(cx, true);
        let deadline = drain.map(|d| Instant::now() + d);
        loop {
            let mut conn = lock(&self.conn);
            let (down, backlog) = {
                let q = lock(&self.queue);
                (q.down.is_some(), !q.outbox.is_empty())
            };
            let may_write = !down && (!backlog || deadline.is_some_and(|d| Instant::now() < d));
            if may_write && conn.is_none() {
                match self.open_inline(&mut conn, cx) {
                    Ok(()) => {}
                    Err(e) if e.is_transient() => continue, // now down: spilled next time
                    Err(e) => return Err(e),
                }
            }
            if may_write && backlog {
                self.replay_batch(&mut conn, cx);
                continue;
            }
            if may_write {
                match self.flush_on(&mut conn, cx, false) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_transient() => {} // queued: spilled below
                    Err(e) => return Err(e),
                }
            }
            let pending = self.take_pending(cx);
            let logs = self.take_logs(cx.config);
            let mut q = lock(&self.queue);
            if !pending.is_empty() || !logs.is_empty() {
                q.push(
                    &self.writer_id,
                    Op::Progress {
                        updates: pending,
                        heartbeats: Vec::new(),
                        samples: Vec::new(),
                        logs,
                        at: Utc::now(),
                    },
                );
            }
            return q.outbox.spill().map_err(|io| {
                Error::storage_refused(
                    "spool",
                    format!("cannot keep writes for later in the spool directory ({io}) while the database cannot be written"),
                )
            });
        }
    }

    pub(crate) fn health(&self, config: &Config) -> Health {
        let q = lock(&self.queue);
        Health {
            backend: config.location.backend(),
            location: config.location.describe(),
            reachable: q.down.is_none(),
            last_error: q.down.as_ref().map(|d| d.error.to_string()),
            pending_writes: q.outbox.len(),
            spooled_writes: q.outbox.spooled(),
            replaying: q.down.is_none() && !q.outbox.is_empty(),
        }
    }

    /// Whether writes wait in the queue (an outage or a replay): a progress call
    /// for a subtask this process has not seen is then taken on trust.
    pub(crate) fn writes_wait(&self) -> bool {
        lock(&self.queue).must_queue()
    }
}

impl Episode {
    fn new() -> Episode {
        Episode {
            began: Instant::now(),
            back_at: None,
            replayed: 0,
            refused: 0,
            first_refusal: None,
        }
    }
}

fn warn_down(config: &Config, e: &Error) {
    log::warn!(
        "tasker: cannot write to {} ({e}); tracking goes on: writes are kept and replayed when it is back",
        config.location.describe()
    );
}

/// Progress the database refuses for good cannot be written by trying again.
fn refused_progress(e: &Error) {
    log::warn!("tasker: progress refused by the database and dropped: {e}");
}

fn relaxed() -> std::sync::atomic::Ordering {
    std::sync::atomic::Ordering::Relaxed
}
