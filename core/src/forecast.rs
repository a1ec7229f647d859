//! Puts the one estimator (`estimate`) on the rows queries return: the ETA of
//! each active run and subtask, from live rates and the task's history. History
//! (durations of the task's latest completed runs, and of their subtasks by
//! name) changes slowly, so each task's is read at most once a minute per
//! process and shared by every query meanwhile.
//!
//! A lost run gets no ETA and its subtasks no rate: its process is gone, so
//! nothing is coming.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::estimate::{run_eta, subtask_eta, History};
use crate::query::{RunRow, StatsFilter, SubtaskRow};
use crate::stats::completed_durations;
use crate::store::Store;
use crate::sync::lock;

/// How long a task's history is reused before it is read again.
const HISTORY_TTL: Duration = Duration::from_secs(60);
/// Completed runs of a task whose durations make its history.
const HISTORY_RUNS: usize = 50;
/// Completed runs whose subtasks make the history by subtask name.
const SUBTASK_HISTORY_RUNS: usize = 20;

type Key = (String, String);

/// Each task's history, as last read.
#[derive(Debug, Default)]
pub(crate) struct HistoryCache {
    map: Mutex<HashMap<Key, (Instant, Arc<History>)>>,
}

impl HistoryCache {
    fn get(&self, st: &mut dyn Store, stage: &str, task: &str) -> Result<Arc<History>> {
        let key = (stage.to_string(), task.to_string());
        if let Some((read, h)) = lock(&self.map).get(&key) {
            if read.elapsed() < HISTORY_TTL {
                return Ok(Arc::clone(h));
            }
        }
        let runs = st.run_summaries(&StatsFilter {
            stage: Some(stage.to_string()),
            task: Some(task.to_string()),
            since: None,
            limit: Some(HISTORY_RUNS),
        })?;
        let mut subtask_seconds: HashMap<String, Vec<f64>> = HashMap::new();
        for (name, secs) in st.subtask_durations(stage, task, SUBTASK_HISTORY_RUNS)? {
            subtask_seconds.entry(name).or_default().push(secs);
        }
        let h = Arc::new(History {
            run_seconds: completed_durations(&runs),
            subtask_seconds,
        });
        let mut map = lock(&self.map);
        if map.len() > 10_000 {
            map.clear(); // a bound, for processes that look at very many tasks
        }
        map.insert(key, (Instant::now(), Arc::clone(&h)));
        Ok(h)
    }
}

/// Fills the ETA of every active, not lost run among `rows` (derived already).
pub(crate) fn estimate_runs(
    cache: &HistoryCache,
    st: &mut dyn Store,
    rows: &mut [RunRow],
    now: DateTime<Utc>,
) -> Result<()> {
    let wanted: Vec<&str> = rows
        .iter()
        .filter(|r| r.status.is_active() && !r.lost)
        .filter_map(|r| r.run_id.as_deref())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut subtasks: HashMap<String, Vec<SubtaskRow>> = HashMap::new();
    for s in st.subtasks_of_runs(&wanted)? {
        subtasks.entry(s.run_id.clone()).or_default().push(s);
    }
    for r in rows.iter_mut() {
        let (Some(id), Some(started)) = (r.run_id.as_deref(), r.start_time) else {
            continue;
        };
        if !r.status.is_active() || r.lost {
            continue;
        }
        let history = cache.get(st, &r.stage_name, &r.task_name)?;
        let subs = subtasks.get(id).map(Vec::as_slice).unwrap_or_default();
        let facts: Vec<_> = subs.iter().map(SubtaskRow::facts).collect();
        let eta = run_eta(started, r.total_subtasks, &facts, &history, now);
        r.eta_seconds = eta.map(|e| e.seconds);
        r.eta_low = eta.map(|e| e.low);
        r.eta_high = eta.map(|e| e.high);
        r.eta_basis = eta.map(|e| e.basis);
    }
    Ok(())
}

/// Fills the ETA of a run's subtasks (derived already); `run` is their run.
pub(crate) fn estimate_subtasks(
    cache: &HistoryCache,
    st: &mut dyn Store,
    run: &RunRow,
    rows: &mut [SubtaskRow],
    now: DateTime<Utc>,
) -> Result<()> {
    if run.lost {
        for s in rows.iter_mut() {
            s.rate_per_second = None;
            s.set_eta(None);
        }
        return Ok(());
    }
    if !rows.iter().any(|s| s.status.is_active()) {
        return Ok(());
    }
    let history = cache.get(st, &run.stage_name, &run.task_name)?;
    for s in rows.iter_mut().filter(|s| s.status.is_active()) {
        let past = history
            .subtask_seconds
            .get(&s.subtask_name)
            .map(Vec::as_slice);
        let eta = subtask_eta(&s.facts(), past, now);
        s.set_eta(eta);
    }
    Ok(())
}
