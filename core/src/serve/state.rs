//! The live state behind the dashboard: one poller reads the database (on a
//! blocking thread: the store clients are synchronous) every `poll` interval and
//! publishes a snapshot when anything changed. Every browser, API call and
//! /metrics scrape reads that snapshot, so the database load does not grow
//! with the number of viewers (the old Shiny monitor made N+1 queries per viewer).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::metrics::MetricsState;
use crate::retention::{self, RetentionStatus, SharedRetention};
use crate::views::{run_views, run_views_cached, RunView};
use crate::{EventRow, RunRow, Status, StatusFilter, SubtaskRow, Tracker};

/// Round-robin over a few open trackers (each holds one connection).
#[derive(Debug)]
pub struct Pool {
    trackers: Vec<Tracker>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(trackers: Vec<Tracker>) -> Pool {
        assert!(!trackers.is_empty());
        Pool {
            trackers,
            next: AtomicUsize::new(0),
        }
    }

    pub fn get(&self) -> Tracker {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.trackers.len();
        self.trackers[i].clone()
    }
}

/// A stage with the status of its tasks' latest runs.
#[derive(Clone, Debug, Serialize)]
pub struct StageSummary {
    pub stage_name: String,
    pub stage_order: Option<i64>,
    /// RUNNING if any task runs, else FAILED if any failed, else COMPLETED when all
    /// are done, NOT_STARTED when none ran, PARTIAL otherwise.
    pub status: String,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub percent_complete: f64,
    pub counts: BTreeMap<String, usize>,
    pub lost: usize,
}

/// What `/api/v1/status` returns and the dashboard draws.
#[derive(Clone, Debug, Serialize)]
pub struct StatusPayload {
    pub generated_at: DateTime<Utc>,
    pub backend: &'static str,
    pub database: String,
    /// The tasker version serving it (the dashboard's footer shows it).
    pub version: &'static str,
    pub stages: Vec<StageSummary>,
    /// The latest run of every registered task, with its current subtask and ETA.
    pub tasks: Vec<RunView>,
    /// Every active run (several per task included), with all its subtasks.
    pub active: Vec<RunView>,
    pub hosts: Vec<String>,
    pub last_event_id: i64,
    /// The newest events, oldest first.
    pub recent_events: Vec<EventRow>,
    /// Retention as configured and last applied (none configured: `null`).
    pub retention: Option<RetentionStatus>,
    /// Whether the last read of the database worked. When false, everything
    /// else is the last good read, taken at `stale_since`.
    pub db_ok: bool,
    /// When the data shown was read, while the database cannot be read (else null).
    pub stale_since: Option<DateTime<Utc>>,
    /// Why the database cannot be read (else null).
    pub db_error: Option<String>,
}

/// A published state: the payload and its JSON, made once for every reader.
#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    pub payload: StatusPayload,
    pub json: String,
    /// The last poll failed (the payload is the last good one).
    pub error: Option<String>,
    pub taken: Instant,
}

pub fn summarize(tasks: &[RunView]) -> Vec<StageSummary> {
    let mut out: Vec<StageSummary> = Vec::new();
    for v in tasks {
        let r = &v.run;
        if out.last().is_none_or(|s| s.stage_name != r.stage_name) {
            out.push(StageSummary {
                stage_name: r.stage_name.clone(),
                stage_order: r.stage_order,
                status: String::new(),
                tasks_total: 0,
                tasks_done: 0,
                percent_complete: 0.0,
                counts: BTreeMap::new(),
                lost: 0,
            });
        }
        let s = out.last_mut().expect("pushed above");
        s.tasks_total += 1;
        if matches!(r.status, Status::Completed | Status::Skipped) {
            s.tasks_done += 1;
        }
        if r.lost {
            s.lost += 1;
        }
        *s.counts.entry(r.status.to_string()).or_default() += 1;
    }
    for s in &mut out {
        let has = |st: Status| s.counts.contains_key(st.as_str());
        s.status = if has(Status::Running) || has(Status::Started) || has(Status::Paused) {
            "RUNNING"
        } else if has(Status::Failed) {
            "FAILED"
        } else if s.tasks_done == s.tasks_total {
            "COMPLETED"
        } else if s.counts.get("NOT_STARTED") == Some(&s.tasks_total) {
            "NOT_STARTED"
        } else {
            "PARTIAL"
        }
        .to_string();
        s.percent_complete = if s.tasks_total > 0 {
            100.0 * s.tasks_done as f64 / s.tasks_total as f64
        } else {
            0.0
        };
    }
    out
}

/// What changes when something really happened (not merely time passing).
fn fingerprint(p: &StatusPayload) -> u64 {
    let mut h = DefaultHasher::new();
    let run = |v: &RunView, h: &mut DefaultHasher| {
        let r = &v.run;
        (&r.run_id, r.status, r.lost, &r.last_update, &r.end_time).hash(h);
        (
            &r.overall_progress_message,
            r.subtasks_completed,
            r.current_subtask,
        )
            .hash(h);
        r.overall_percent_complete.map(f64::to_bits).hash(h);
        let subs = v.subtasks.iter().flatten().chain(v.current.iter());
        for s in subs {
            (s.subtask_number, s.status, s.items_complete, s.items_total).hash(h);
            (&s.progress_message, &s.last_update).hash(h);
            s.percent_complete.map(f64::to_bits).hash(h);
        }
    };
    for v in &p.tasks {
        run(v, &mut h);
    }
    for v in &p.active {
        run(v, &mut h);
    }
    p.last_event_id.hash(&mut h);
    h.finish()
}

/// Where the poller is in the events table. Events are read again from a little
/// before the newest one seen, because on PostgreSQL ids can commit out of order.
#[derive(Debug, Default)]
pub struct Cursor {
    started: bool,
    max: i64,
    seen: BTreeSet<i64>,
    recent: VecDeque<EventRow>,
}

const OVERLAP: i64 = 200;

impl Cursor {
    fn read(&mut self, t: &Tracker) -> crate::Result<Vec<EventRow>> {
        let from = if self.started {
            (self.max - OVERLAP).max(0)
        } else {
            self.started = true;
            (crate::views::last_event_id(t)? - 100).max(0)
        };
        let mut fresh = Vec::new();
        let mut after = from;
        loop {
            let page = t.events_after(after, None, 5000)?;
            let full = page.len() == 5000;
            if let Some(l) = page.last() {
                after = l.event_id;
            }
            fresh.extend(page.into_iter().filter(|e| self.seen.insert(e.event_id)));
            if !full {
                break;
            }
        }
        fresh.sort_by_key(|e| e.event_id);
        if let Some(l) = fresh.last() {
            self.max = self.max.max(l.event_id);
        }
        self.seen = self.seen.split_off(&(self.max - OVERLAP));
        self.recent.extend(fresh.iter().cloned());
        while self.recent.len() > 50 {
            self.recent.pop_front();
        }
        Ok(fresh)
    }
}

/// Longest message kept in the live payload; the run page reads the whole run.
const MAX_LIVE_TEXT: usize = 2000;

fn cut(s: &mut Option<String>) {
    if let Some(text) = s {
        if text.len() > MAX_LIVE_TEXT {
            let mut end = MAX_LIVE_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
    }
}

/// The live payload goes to every browser twice a second: error details (up to
/// 16 MiB each) stay on the run page (`/api/v1/runs/{id}`), long messages are cut.
pub fn slim(r: &mut RunRow) {
    r.error_detail = None;
    cut(&mut r.error_message);
    cut(&mut r.overall_progress_message);
}

/// Reads the state once.
fn poll_once(t: &Tracker, cursor: &mut Cursor) -> crate::Result<(StatusPayload, Vec<EventRow>)> {
    // Active runs before the latest runs: a run that starts between the two reads
    // is then in neither or in the latest runs too, never on the page as a card
    // without its row in the stage table.
    let active = t.active_runs()?;
    let latest = t.task_status(&StatusFilter::default())?;
    // Active runs first (with all their subtasks); the latest runs reuse those subtasks.
    let active = run_views(t, active, true)?;
    let known: HashMap<String, Vec<SubtaskRow>> = active
        .iter()
        .filter_map(|v| {
            let subs = v.subtasks.clone()?;
            Some((v.run.run_id.clone()?, subs))
        })
        .collect();
    let tasks = run_views_cached(t, latest, false, &known)?;
    let mut tasks = tasks;
    let mut active = active;
    for v in tasks.iter_mut().chain(active.iter_mut()) {
        slim(&mut v.run);
    }
    let fresh = cursor.read(t)?;
    let hosts: BTreeSet<String> = tasks
        .iter()
        .chain(active.iter())
        .filter_map(|v| v.run.hostname.clone())
        .collect();
    let payload = StatusPayload {
        generated_at: Utc::now(),
        backend: t.backend_name(),
        database: t.config().location.describe(),
        version: crate::VERSION,
        stages: summarize(&tasks),
        tasks,
        active,
        hosts: hosts.into_iter().collect(),
        last_event_id: cursor.max,
        recent_events: cursor.recent.iter().cloned().collect(),
        retention: None,
        db_ok: true,
        stale_since: None,
        db_error: None,
    };
    Ok((payload, fresh))
}

/// Channels the poller publishes on.
#[derive(Debug)]
pub struct Live {
    /// How long the last poll of the database took, in microseconds.
    pub poll_micros: Arc<std::sync::atomic::AtomicU64>,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub events: broadcast::Sender<Arc<Vec<EventRow>>>,
}

/// Runs the first poll (so the server starts with data), then polls forever in the background.
pub async fn start(
    tracker: Tracker,
    poll: Duration,
    metrics: Arc<Mutex<MetricsState>>,
    metrics_tracker: Tracker,
    rescan: Duration,
    retention: SharedRetention,
) -> Result<Live, String> {
    let mut poller = Cursor::default();
    let t0 = tracker.clone();
    let (first, poller_back) = tokio::task::spawn_blocking(move || {
        let r = poll_once(&t0, &mut poller);
        (r, poller)
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut poller = poller_back;
    let (mut payload, _) = first.map_err(|e| e.to_string())?;
    payload.retention = retention::lock(&retention).clone();
    let json = serde_json::to_string(&payload).map_err(|e| e.to_string())?;
    let mut print = fingerprint(&payload);
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        version: 1,
        payload,
        json,
        error: None,
        taken: Instant::now(),
    }));
    let (etx, _) = broadcast::channel(256);
    let events = etx.clone();
    let poll_micros = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let poll_micros_w = Arc::clone(&poll_micros);

    // Metrics: one full load now (in the background), then updates from events.
    {
        let m = Arc::clone(&metrics);
        let t = metrics_tracker.clone();
        tokio::task::spawn_blocking(move || MetricsState::reload(&m, &t));
    }

    tokio::spawn(async move {
        let mut version = 1;
        let mut published = Instant::now();
        let mut last_rescan = Instant::now();
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let t = tracker.clone();
            let began = Instant::now();
            let res = tokio::task::spawn_blocking(move || {
                let r = poll_once(&t, &mut poller);
                (r, poller)
            })
            .await;
            poll_micros_w.store(began.elapsed().as_micros() as u64, Ordering::Relaxed);
            let (result, back) = match res {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("tasker serve: poller crashed: {e}");
                    return;
                }
            };
            poller = back;
            match result {
                Ok((mut payload, fresh)) => {
                    payload.retention = retention::lock(&retention).clone();
                    let now_print = fingerprint(&payload);
                    let was_error = tx.borrow().error.is_some();
                    if !fresh.is_empty() {
                        // Runs that changed status: refresh their metrics.
                        let changes: Vec<EventRow> = fresh
                            .iter()
                            .filter(|e| e.kind != "subtask")
                            .cloned()
                            .collect();
                        if !changes.is_empty() {
                            let m = Arc::clone(&metrics);
                            let t = metrics_tracker.clone();
                            tokio::task::spawn_blocking(move || {
                                MetricsState::refresh(&m, &t, &changes)
                            });
                        }
                        let _ = etx.send(Arc::new(fresh));
                    }
                    if last_rescan.elapsed() >= rescan {
                        last_rescan = Instant::now();
                        let m = Arc::clone(&metrics);
                        let t = metrics_tracker.clone();
                        tokio::task::spawn_blocking(move || MetricsState::reload(&m, &t));
                    }
                    // Publish on change, and every 5 s anyway (elapsed times, ETAs, lost flags).
                    if now_print != print
                        || was_error
                        || published.elapsed() >= Duration::from_secs(5)
                    {
                        print = now_print;
                        version += 1;
                        published = Instant::now();
                        let json = serde_json::to_string(&payload).unwrap_or_default();
                        let _ = tx.send(Arc::new(Snapshot {
                            version,
                            payload,
                            json,
                            error: None,
                            taken: Instant::now(),
                        }));
                    }
                }
                Err(e) => {
                    let old = tx.borrow().clone();
                    if old.error.is_none() {
                        eprintln!("tasker serve: cannot read the database: {e}");
                        version += 1;
                        // The last good data, saying that it is stale and why.
                        let mut payload = old.payload.clone();
                        payload.db_ok = false;
                        payload.stale_since = Some(old.payload.generated_at);
                        payload.db_error = Some(crate::config::redact(&e.to_string()));
                        let json = serde_json::to_string(&payload).unwrap_or_default();
                        let _ = tx.send(Arc::new(Snapshot {
                            version,
                            payload,
                            json,
                            error: Some(e.to_string()),
                            taken: old.taken,
                        }));
                    }
                }
            }
        }
    });
    Ok(Live {
        poll_micros,
        snapshot: rx,
        events,
    })
}

/// Whether a run passes the dashboard's filters.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub stage: Option<String>,
    pub status: Option<String>,
    pub host: Option<String>,
}

impl Filter {
    /// Refuses a status that is not one (as `/api/v1/runs` does), naming it.
    pub fn check(&self) -> Result<(), String> {
        let status: Vec<String> = self.status.iter().cloned().collect();
        crate::views::StatusSel::parse(&status).map(|_| ())
    }

    pub fn is_empty(&self) -> bool {
        [&self.stage, &self.status, &self.host]
            .iter()
            .all(|v| v.as_deref().is_none_or(str::is_empty))
    }

    pub fn keeps(&self, r: &RunRow) -> bool {
        let stage_ok = self
            .stage
            .as_deref()
            .is_none_or(|s| s.is_empty() || s == r.stage_name);
        let host_ok = self
            .host
            .as_deref()
            .is_none_or(|h| h.is_empty() || Some(h) == r.hostname.as_deref());
        let status_ok = match self.status.as_deref() {
            None | Some("") => true,
            Some(list) => list.split(',').any(|s| {
                let s = s.trim();
                (s.eq_ignore_ascii_case("active") && r.status.is_active())
                    || (s.eq_ignore_ascii_case("lost") && r.lost)
                    || s.parse::<Status>().is_ok_and(|st| st == r.status)
            }),
        };
        stage_ok && host_ok && status_ok
    }

    pub fn apply(&self, p: &StatusPayload) -> StatusPayload {
        let tasks: Vec<RunView> = p
            .tasks
            .iter()
            .filter(|v| self.keeps(&v.run))
            .cloned()
            .collect();
        StatusPayload {
            stages: summarize(&tasks),
            active: p
                .active
                .iter()
                .filter(|v| self.keeps(&v.run))
                .cloned()
                .collect(),
            tasks,
            ..p.clone()
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn view(stage: &str, task: &str, status: Status, lost: bool, host: &str) -> RunView {
        let row: RunRow = serde_json::from_value(serde_json::json!({
            "run_id": format!("{stage}-{task}"), "stage_name": stage, "stage_order": null,
            "task_name": task, "task_type": null, "task_order": null, "status": status,
            "hostname": host, "process_id": 1, "parent_pid": null, "process_start_time": null,
            "user_name": null, "start_time": null, "end_time": null, "last_update": null,
            "heartbeat_time": null, "total_subtasks": null, "current_subtask": null,
            "overall_percent_complete": null, "overall_progress_message": null, "version": null,
            "git_commit": null, "script_path": null, "script_filename": null, "log_path": null,
            "log_filename": null, "error_message": null, "error_detail": null, "metadata": null,
            "subtasks_completed": 0, "lost": lost, "duration_seconds": null,
        }))
        .expect("a run row");
        RunView {
            run: row,
            current: None,
            subtasks: None,
            resources: None,
        }
    }

    #[test]
    fn stage_status_summarises_its_tasks() {
        let tasks = vec![
            view("a", "1", Status::Completed, false, "h1"),
            view("a", "2", Status::Running, true, "h2"),
            view("b", "1", Status::Completed, false, "h1"),
            view("b", "2", Status::Failed, false, "h1"),
            view("c", "1", Status::NotStarted, false, "h1"),
            view("d", "1", Status::Completed, false, "h1"),
            view("e", "1", Status::Completed, false, "h1"),
            view("e", "2", Status::NotStarted, false, "h1"),
        ];
        let s: Vec<(String, String, usize)> = summarize(&tasks)
            .into_iter()
            .map(|s| (s.stage_name, s.status, s.lost))
            .collect();
        let want = [
            ("a", "RUNNING", 1),
            ("b", "FAILED", 0),
            ("c", "NOT_STARTED", 0),
            ("d", "COMPLETED", 0),
            ("e", "PARTIAL", 0),
        ];
        let want: Vec<(String, String, usize)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect();
        assert_eq!(s, want);
    }

    #[test]
    fn filters_keep_only_what_they_name() {
        let f = Filter {
            stage: Some("a".into()),
            status: Some("lost,FAILED".into()),
            host: None,
        };
        assert!(f.keeps(&view("a", "x", Status::Running, true, "h").run));
        assert!(f.keeps(&view("a", "x", Status::Failed, false, "h").run));
        assert!(!f.keeps(&view("a", "x", Status::Running, false, "h").run));
        assert!(!f.keeps(&view("b", "x", Status::Failed, false, "h").run));
        let h = Filter {
            host: Some("h2".into()),
            ..Filter::default()
        };
        assert!(!h.keeps(&view("a", "x", Status::Running, false, "h1").run));
        assert!(Filter::default().is_empty());
    }
}
