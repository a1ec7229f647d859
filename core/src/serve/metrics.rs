//! `/metrics` in the Prometheus text exposition format (0.0.4).
//!
//! Counts over all runs (by stage/task/status, duration histogram, last success)
//! are kept in memory: loaded once at start (and again every `--metrics-rescan`,
//! which also notices purged runs), then updated from the events the poller
//! reads, so a scrape never scans the runs table. Active runs, lost runs and
//! subtask items come from the poller's latest snapshot.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{EventRow, RunRow, Sample, Status, Tracker};
use chrono::{DateTime, Utc};

use super::state::StatusPayload;

/// Upper bounds of the duration histogram, in seconds.
pub const BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

type Key = (Arc<str>, Arc<str>);

#[derive(Clone, Debug)]
struct Brief {
    key: Key,
    status: Status,
    /// Seconds, for COMPLETED runs.
    completed_in: Option<f64>,
}

#[derive(Clone, Debug, Default)]
struct Hist {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct MetricsState {
    loaded: bool,
    load_error: Option<String>,
    runs: HashMap<String, Brief>,
    counts: BTreeMap<(Key, &'static str), i64>,
    hist: BTreeMap<Key, Hist>,
    last_success: BTreeMap<Key, DateTime<Utc>>,
    names: HashMap<String, Arc<str>>,
    /// While a reload reads, the events that came meanwhile: applied after it.
    reloading: bool,
    touched: Vec<EventRow>,
    /// The newest event whose effect the loaded counts already hold.
    loaded_through: i64,
}

fn lock(m: &Mutex<MetricsState>) -> std::sync::MutexGuard<'_, MetricsState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MetricsState {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(s.to_string(), Arc::clone(&a));
        a
    }

    fn remove(&mut self, run_id: &str) {
        let Some(b) = self.runs.remove(run_id) else {
            return;
        };
        let k = (b.key.clone(), b.status.as_str());
        if let Some(c) = self.counts.get_mut(&k) {
            *c -= 1;
            if *c <= 0 {
                self.counts.remove(&k);
            }
        }
        if let Some(secs) = b.completed_in {
            if let Some(h) = self.hist.get_mut(&b.key) {
                for (i, le) in BUCKETS.iter().enumerate() {
                    if secs <= *le {
                        h.buckets[i] -= 1;
                    }
                }
                h.sum -= secs;
                h.count -= 1;
            }
        }
    }

    fn upsert(&mut self, r: &RunRow) {
        let Some(id) = r.run_id.clone() else { return };
        self.remove(&id);
        let key = (self.intern(&r.stage_name), self.intern(&r.task_name));
        let completed_in = (r.status == Status::Completed)
            .then_some(r.duration_seconds)
            .flatten();
        *self
            .counts
            .entry((key.clone(), r.status.as_str()))
            .or_default() += 1;
        if let Some(secs) = completed_in {
            let h = self.hist.entry(key.clone()).or_insert_with(|| Hist {
                buckets: vec![0; BUCKETS.len()],
                ..Hist::default()
            });
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.buckets[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
            if let Some(end) = r.end_time {
                let e = self.last_success.entry(key.clone()).or_insert(end);
                if end > *e {
                    *e = end;
                }
            }
        }
        self.runs.insert(
            id,
            Brief {
                key,
                status: r.status,
                completed_in,
            },
        );
    }

    /// Loads the counts with one aggregate query (at start, and on each rescan),
    /// plus the active runs one by one (their next transitions then replace them
    /// exactly). Events up to the newest one before the query are in the counts.
    pub fn reload(m: &Mutex<MetricsState>, t: &Tracker) {
        lock(m).reloading = true;
        let loaded = (|| -> crate::Result<MetricsState> {
            let mark = crate::views::last_event_id(t)?;
            let counts = t.run_counts(BUCKETS)?;
            let active = t.active_runs()?;
            let mut fresh = MetricsState::default();
            for c in counts {
                let Some(status) = c.status else { continue };
                let key = (fresh.intern(&c.stage_name), fresh.intern(&c.task_name));
                *fresh
                    .counts
                    .entry((key.clone(), status.as_str()))
                    .or_default() += c.runs;
                if status == Status::Completed {
                    let h = fresh.hist.entry(key.clone()).or_insert_with(|| Hist {
                        buckets: vec![0; BUCKETS.len()],
                        ..Hist::default()
                    });
                    for (i, n) in c.at_most.iter().enumerate().take(BUCKETS.len()) {
                        h.buckets[i] += u64::try_from(*n).unwrap_or(0);
                    }
                    h.sum += c.seconds;
                    h.count += u64::try_from(c.runs).unwrap_or(0);
                    if let Some(end) = c.last_end {
                        fresh.last_success.insert(key, end);
                    }
                }
            }
            for r in &active {
                let Some(id) = r.run_id.clone() else { continue };
                let key = (fresh.intern(&r.stage_name), fresh.intern(&r.task_name));
                fresh.runs.insert(
                    id,
                    Brief {
                        key,
                        status: r.status,
                        completed_in: None,
                    },
                );
            }
            fresh.loaded = true;
            fresh.loaded_through = mark;
            Ok(fresh)
        })();
        match loaded {
            Ok(fresh) => {
                let touched = {
                    let mut st = lock(m);
                    let touched = std::mem::take(&mut st.touched);
                    *st = fresh;
                    touched
                };
                MetricsState::refresh(m, t, &touched);
            }
            Err(e) => {
                eprintln!("tasker serve: cannot load run counts for /metrics: {e}");
                let mut st = lock(m);
                st.load_error = Some(e.to_string());
                st.reloading = false;
                st.touched.clear();
            }
        }
    }

    /// Applies the runs that changed status (from their events): each run is read
    /// again and replaces what it counted before (its brief, or for a run counted
    /// only in the aggregate, the status its first new event left).
    pub fn refresh(m: &Mutex<MetricsState>, t: &Tracker, events: &[EventRow]) {
        let (through, mut first) = {
            let mut st = lock(m);
            if st.reloading {
                st.touched.extend(events.iter().cloned());
                return;
            }
            (st.loaded_through, Vec::<&EventRow>::new())
        };
        // The first event of each run after what the counts hold.
        let mut seen = std::collections::HashSet::new();
        let mut sorted: Vec<&EventRow> = events.iter().filter(|e| e.event_id > through).collect();
        sorted.sort_by_key(|e| e.event_id);
        for e in sorted {
            if seen.insert(e.run_id.as_str()) {
                first.push(e);
            }
        }
        for e in first {
            let read = t.run(&e.run_id);
            let mut st = lock(m);
            if st.runs.contains_key(&e.run_id) {
                st.remove(&e.run_id);
            } else if let Some(old) = e.old_status {
                // Counted by the aggregate under the status before this event.
                let key = (st.intern(&e.stage_name), st.intern(&e.task_name));
                let k = (key, old.as_str());
                if let Some(c) = st.counts.get_mut(&k) {
                    *c -= 1;
                    if *c <= 0 {
                        st.counts.remove(&k);
                    }
                }
            }
            match read {
                Ok(r) => st.upsert(&r),
                Err(err) if err.kind() == crate::ErrorKind::NotFound => {}
                Err(err) => {
                    eprintln!(
                        "tasker serve: cannot read run {} for /metrics: {err}",
                        e.run_id
                    )
                }
            }
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every series. `up` says whether the last poll of the database worked.
pub fn render(
    m: &Mutex<MetricsState>,
    p: &StatusPayload,
    up: bool,
    backend: &str,
    poll_seconds: f64,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    header(
        &mut out,
        "tasker_database_up",
        "gauge",
        "1 when the last read of the tasker database worked.",
    );
    let _ = writeln!(
        out,
        "tasker_database_up{{backend=\"{}\"}} {}",
        label(backend),
        u8::from(up)
    );

    {
        let st = lock(m);
        header(
            &mut out,
            "tasker_metrics_loaded",
            "gauge",
            "1 once the run counts below have been loaded from the database.",
        );
        let _ = writeln!(out, "tasker_metrics_loaded {}", u8::from(st.loaded));
        header(
            &mut out,
            "tasker_runs",
            "gauge",
            "Runs in the database by stage, task and status.",
        );
        for (((stage, task), status), n) in &st.counts {
            let _ = writeln!(
                out,
                "tasker_runs{{stage=\"{}\",task=\"{}\",status=\"{}\"}} {n}",
                label(stage),
                label(task),
                status
            );
        }
        header(
            &mut out,
            "tasker_run_duration_seconds",
            "histogram",
            "Duration of COMPLETED runs by stage and task.",
        );
        for ((stage, task), h) in &st.hist {
            let l = format!("stage=\"{}\",task=\"{}\"", label(stage), label(task));
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tasker_run_duration_seconds_bucket{{{l},le=\"{}\"}} {}",
                    num(*le),
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "tasker_run_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "tasker_run_duration_seconds_sum{{{l}}} {}", num(h.sum));
            let _ = writeln!(out, "tasker_run_duration_seconds_count{{{l}}} {}", h.count);
        }
        header(
            &mut out,
            "tasker_last_success_timestamp_seconds",
            "gauge",
            "End time (Unix seconds) of the latest COMPLETED run by stage and task.",
        );
        for ((stage, task), t) in &st.last_success {
            let _ = writeln!(
                out,
                "tasker_last_success_timestamp_seconds{{stage=\"{}\",task=\"{}\"}} {}",
                label(stage),
                label(task),
                num(t.timestamp_millis() as f64 / 1000.0)
            );
        }
    }

    // Active and lost runs, from the live snapshot.
    let mut active: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for v in &p.active {
        let e = active
            .entry((&v.run.stage_name, &v.run.task_name))
            .or_default();
        e.0 += 1;
        if v.run.lost {
            e.1 += 1;
        }
    }
    header(
        &mut out,
        "tasker_active_runs",
        "gauge",
        "Runs that are STARTED, RUNNING or PAUSED, by stage and task.",
    );
    for ((stage, task), (n, _)) in &active {
        let _ = writeln!(
            out,
            "tasker_active_runs{{stage=\"{}\",task=\"{}\"}} {n}",
            label(stage),
            label(task)
        );
    }
    header(
        &mut out,
        "tasker_lost_runs",
        "gauge",
        "Active runs whose process is gone or whose heartbeat is too old, by stage and task.",
    );
    for ((stage, task), (_, lost)) in &active {
        let _ = writeln!(
            out,
            "tasker_lost_runs{{stage=\"{}\",task=\"{}\"}} {lost}",
            label(stage),
            label(task)
        );
    }
    let total_lost: u64 = active.values().map(|(_, l)| l).sum();
    // A gauge: no `_total` suffix (Prometheus keeps that for counters).
    header(
        &mut out,
        "tasker_lost_runs_all",
        "gauge",
        "All lost runs (see tasker_lost_runs).",
    );
    let _ = writeln!(out, "tasker_lost_runs_all {total_lost}");
    wait_gauge(&mut out, p);

    // Items per task (summed over its active runs' subtasks): labels name the task,
    // not the run, so the number of series stays bounded.
    let mut items: BTreeMap<(&str, &str), (i64, Option<i64>)> = BTreeMap::new();
    for v in &p.active {
        let e = items
            .entry((&v.run.stage_name, &v.run.task_name))
            .or_default();
        for s in v.subtasks.iter().flatten() {
            e.0 += s.items_complete;
            if let Some(t) = s.items_total {
                e.1 = Some(e.1.unwrap_or(0) + t);
            }
        }
    }
    header(
        &mut out,
        "tasker_subtask_items_done",
        "gauge",
        "Items done in the subtasks of the task's active runs.",
    );
    for ((stage, task), (done, _)) in &items {
        let _ = writeln!(
            out,
            "tasker_subtask_items_done{{stage=\"{}\",task=\"{}\"}} {done}",
            label(stage),
            label(task)
        );
    }
    header(
        &mut out,
        "tasker_subtask_items_expected",
        "gauge",
        "Items announced for the subtasks of the task's active runs (where announced).",
    );
    for ((stage, task), (_, expected)) in &items {
        if let Some(n) = expected {
            let _ = writeln!(
                out,
                "tasker_subtask_items_expected{{stage=\"{}\",task=\"{}\"}} {n}",
                label(stage),
                label(task)
            );
        }
    }
    header(
        &mut out,
        "tasker_dashboard_poll_seconds",
        "gauge",
        "How long the dashboard's last read of the database took.",
    );
    let _ = writeln!(out, "tasker_dashboard_poll_seconds {}", num(poll_seconds));
    push_resources(&mut out, p);
    push_retention(&mut out, p);
    out
}

/// Retention, when configured: its setting and what it deleted.
fn push_retention(out: &mut String, p: &StatusPayload) {
    let Some(r) = &p.retention else {
        return;
    };
    header(
        out,
        "tasker_retention_days",
        "gauge",
        "Finished runs older than this many days are deleted.",
    );
    let _ = writeln!(out, "tasker_retention_days {}", r.days);
    header(
        out,
        "tasker_retention_deleted_runs_total",
        "counter",
        "Runs deleted by retention since this server started.",
    );
    let _ = writeln!(
        out,
        "tasker_retention_deleted_runs_total {}",
        r.deleted_total
    );
    if let Some(t) = r.last_applied {
        header(
            out,
            "tasker_retention_last_applied_timestamp_seconds",
            "gauge",
            "When retention was last applied (Unix seconds).",
        );
        let _ = writeln!(
            out,
            "tasker_retention_last_applied_timestamp_seconds {}",
            num(t.timestamp_millis() as f64 / 1000.0)
        );
    }
    header(
        out,
        "tasker_retention_failing",
        "gauge",
        "1 when the last application of retention failed.",
    );
    let _ = writeln!(
        out,
        "tasker_retention_failing {}",
        u8::from(r.last_error.is_some())
    );
}

/// CPU and memory of the active runs' processes (their newest samples), summed
/// per task: labels name the task, not the run, so series do not come and go
/// with every run.
fn push_resources(out: &mut String, p: &StatusPayload) {
    type Pick = fn(&Sample) -> Option<f64>;
    let gauges: [(&str, &str, Pick); 5] = [
        (
            "tasker_active_cpu_percent",
            "CPU of the task's active runs' processes since their previous samples (100 = one core).",
            |s| s.cpu_percent,
        ),
        (
            "tasker_active_cpu_seconds",
            "CPU seconds the task's active runs' processes have used so far.",
            |s| Some(s.cpu_seconds),
        ),
        (
            "tasker_active_resident_bytes",
            "Resident memory of the task's active runs' processes.",
            |s| Some(s.rss_bytes as f64),
        ),
        (
            "tasker_active_children_resident_bytes",
            "Resident memory of the child processes of the task's active runs.",
            |s| Some(s.children_rss_bytes as f64),
        ),
        (
            "tasker_active_children_cpu_seconds",
            "CPU seconds used by the child processes of the task's active runs so far.",
            |s| Some(s.children_cpu_seconds),
        ),
    ];
    for (name, help, pick) in gauges {
        let mut by_task: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for v in &p.active {
            if let Some(value) = v.resources.as_ref().and_then(pick) {
                *by_task
                    .entry((&v.run.stage_name, &v.run.task_name))
                    .or_default() += value;
            }
        }
        header(out, name, "gauge", help);
        for ((stage, task), value) in by_task {
            let _ = writeln!(
                out,
                "{name}{{stage=\"{}\",task=\"{}\"}} {}",
                label(stage),
                label(task),
                num(value)
            );
        }
    }
}

/// The queue time of each task's latest run: seconds from the moment its last
/// upstream finished to its start (tasks with dependencies only; one series per
/// task, so the cardinality is that of the registered tasks).
fn wait_gauge(out: &mut String, p: &StatusPayload) {
    header(
        out,
        "tasker_task_wait_seconds",
        "gauge",
        "Wait of the latest run by stage and task: from its last upstream's end to its start.",
    );
    for v in &p.tasks {
        if let Some(w) = v.run.wait_seconds {
            let _ = writeln!(
                out,
                "tasker_task_wait_seconds{{stage=\"{}\",task=\"{}\"}} {}",
                label(&v.run.stage_name),
                label(&v.run.task_name),
                num(w)
            );
        }
    }
}

#[cfg(test)]
mod test {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
