//! The dashboard's paged views: the timeline (fit to the data or a window, a page
//! of runs at a time), History (filters, search, sort, pages) and the grid (runs ×
//! tasks). Each answer says whether more runs exist, so the page can say it is
//! paged and offer the next page rather than silently keep the newest N.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{bad, blocking, state, when, ApiError, Shared};
use crate::views::StatusSel;
use crate::{HistoryFilter, RunRow, Tracker};

/// Largest page of any of these views.
const MAX_PAGE: usize = 20_000;

/// The filters every paged view shares, checked once.
struct RunFilter {
    stage: Option<String>,
    tasks: Vec<String>,
    sel: StatusSel,
    host: Option<String>,
    /// Case-insensitive substring of `stage / task`.
    text: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

impl RunFilter {
    fn new(
        stage: &Option<String>,
        task: &Option<String>,
        status: &Option<String>,
        host: &Option<String>,
        q: &Option<String>,
    ) -> Result<RunFilter, ApiError> {
        let tasks = blank(task)
            .map(|t| {
                t.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let status: Vec<String> = blank(status).into_iter().collect();
        Ok(RunFilter {
            stage: blank(stage),
            tasks,
            sel: StatusSel::parse(&status).map_err(|e| bad(format!("status: {e}")))?,
            host: blank(host),
            text: blank(q).map(|s| s.to_lowercase()),
        })
    }

    /// Whether the store's own filters (stage, one task, one status, host) are all of them.
    fn store_only(&self) -> bool {
        self.tasks.len() <= 1
            && (self.sel.is_empty() || self.sel.single().is_some())
            && self.text.is_none()
    }

    fn store_filter(&self, since: Option<DateTime<Utc>>, limit: usize) -> HistoryFilter {
        HistoryFilter {
            stage: self.stage.clone(),
            task: (self.tasks.len() == 1).then(|| self.tasks[0].clone()),
            status: self.sel.single(),
            // Read through the runs-by-host index, not filtered after reading.
            host: self.host.clone(),
            since,
            limit: Some(limit),
        }
    }

    /// The ids of the tasks the name filters (stage, tasks, search) leave; None
    /// when they leave every task. Read from the (small) tasks table, so the runs
    /// are filtered by an id list.
    fn task_ids(&self, t: &Tracker) -> crate::Result<Option<Vec<i64>>> {
        if self.stage.is_none() && self.tasks.is_empty() && self.text.is_none() {
            return Ok(None);
        }
        let tasks = t.registered_tasks(self.stage.as_deref(), None)?;
        Ok(Some(
            tasks
                .into_iter()
                .filter(|x| self.tasks.is_empty() || self.tasks.contains(&x.task_name))
                .filter(|x| {
                    self.text.as_ref().is_none_or(|q| {
                        format!("{} / {}", x.stage_name, x.task_name)
                            .to_lowercase()
                            .contains(q)
                    })
                })
                .map(|x| x.task_id)
                .collect(),
        ))
    }

    fn keeps(&self, r: &RunRow) -> bool {
        self.stage.as_ref().is_none_or(|s| *s == r.stage_name)
            && (self.tasks.is_empty() || self.tasks.contains(&r.task_name))
            && self.sel.keeps(r)
            && self
                .host
                .as_ref()
                .is_none_or(|h| Some(h) == r.hostname.as_ref())
            && self.text.as_ref().is_none_or(|q| {
                format!("{} / {}", r.stage_name, r.task_name)
                    .to_lowercase()
                    .contains(q)
            })
    }
}

/// Runs newest first that pass `f` and `extra`, enough of them for `want` (or all):
/// the store is asked for a few more than needed, four times more each round
/// while the filters applied here leave too few. Each ask reads from the newest,
/// so a filter nothing passes reads the runs about 4/3 times; one that keeps a
/// tenth of them stops after a few thousand rows (a search on 100,000 runs: 0.6 s
/// when the second ask read them all).
fn newest(
    t: &Tracker,
    f: &RunFilter,
    since: Option<DateTime<Utc>>,
    want: usize,
    extra: &dyn Fn(&RunRow) -> bool,
) -> crate::Result<Vec<RunRow>> {
    let mut ask = if f.store_only() { want } else { want * 2 + 100 };
    loop {
        let rows = t.history(&f.store_filter(since, ask))?;
        let got = rows.len();
        let kept: Vec<RunRow> = rows
            .into_iter()
            .filter(|r| f.keeps(r) && extra(r))
            .collect();
        if kept.len() >= want || got < ask {
            return Ok(kept);
        }
        ask = ask.saturating_mul(4);
    }
}

fn slim_json(mut r: RunRow) -> serde_json::Value {
    state::slim(&mut r);
    serde_json::json!({
        "run_id": r.run_id, "stage_name": r.stage_name, "stage_order": r.stage_order,
        "task_name": r.task_name, "task_order": r.task_order, "status": r.status,
        "lost": r.lost, "start_time": r.start_time, "end_time": r.end_time,
        "duration_seconds": r.duration_seconds, "hostname": r.hostname,
        "process_id": r.process_id, "error_message": r.error_message,
        "attempt": r.attempt,
    })
}

// ---------------------------------------------------------------- timeline

#[derive(Debug, Deserialize)]
pub(super) struct TimelineQuery {
    from: Option<String>,
    to: Option<String>,
    stage: Option<String>,
    task: Option<String>,
    status: Option<String>,
    host: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A page of the runs a Gantt chart draws, newest first by start (returned oldest
/// first). Without `from` and `to` the window fits the page's runs (from the first
/// start to the last end, or now while one runs); with them, runs overlapping the
/// window. The first page also holds every active run, whenever it started.
/// `more` says older runs exist (`offset` + `limit` pages on).
pub(super) async fn api_timeline(
    State(app): State<Shared>,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let from = when(&q.from, "from")?;
    let to = when(&q.to, "to")?;
    let fit = from.is_none() && to.is_none();
    let to_bound = to.unwrap_or(now);
    let from_bound = from.unwrap_or(to_bound - chrono::Duration::hours(24));
    if !fit && to_bound <= from_bound {
        return Err(bad("`to` must be after `from`"));
    }
    let limit = q.limit.unwrap_or(2000).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0).min(10_000_000);
    let f = RunFilter::new(&q.stage, &q.task, &q.status, &q.host, &None)?;
    let (rows, more) = blocking(&app, move |t| {
        let want = offset + limit + 1;
        let rows = if fit {
            newest(t, &f, None, want, &|_| true)?
        } else {
            // Runs that started up to one window-length before `from` may still overlap it.
            let since = from_bound - (to_bound - from_bound);
            newest(t, &f, Some(since), want, &|r| {
                r.start_time.is_some_and(|s| s < to_bound)
                    && r.end_time.unwrap_or(now) >= from_bound
            })?
        };
        let more = rows.len() > offset + limit;
        let mut page: Vec<RunRow> = rows.into_iter().skip(offset).take(limit).collect();
        if offset == 0 {
            // A run still going is drawn however long ago it started: the newest
            // starts alone would leave out a long run that began before them.
            let shown: std::collections::HashSet<String> =
                page.iter().filter_map(|r| r.run_id.clone()).collect();
            let older_active: Vec<RunRow> = t
                .active_runs()?
                .into_iter()
                .filter(|r| r.run_id.as_ref().is_some_and(|id| !shown.contains(id)))
                .filter(|r| f.keeps(r))
                .filter(|r| fit || r.start_time.is_some_and(|s| s < to_bound))
                .collect();
            page.extend(older_active);
        }
        page.sort_by(|a, b| (a.start_time, &a.run_id).cmp(&(b.start_time, &b.run_id)));
        Ok((page, more))
    })
    .await?;
    let (from, to) = if fit {
        let first = rows.iter().filter_map(|r| r.start_time).min();
        let last = rows.iter().map(|r| r.end_time.unwrap_or(now)).max();
        match (first, last) {
            (Some(a), Some(b)) => {
                // A little room either side, so the first and last bars are not on the edge.
                let pad = ((b - a) / 40).max(chrono::Duration::seconds(1));
                (a - pad, b + pad)
            }
            _ => (now - chrono::Duration::hours(1), now),
        }
    } else {
        (from_bound, to_bound)
    };
    let runs: Vec<serde_json::Value> = rows.into_iter().map(slim_json).collect();
    Ok(Json(serde_json::json!({
        "from": from, "to": to, "now": now, "fit": fit, "runs": runs,
        "offset": offset, "limit": limit, "more": more,
    }))
    .into_response())
}

// ---------------------------------------------------------------- history

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    stage: Option<String>,
    /// One task or a comma-separated list.
    task: Option<String>,
    /// Statuses (comma-separated), `active`, `lost`.
    status: Option<String>,
    host: Option<String>,
    /// Case-insensitive part of `stage / task`.
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// `start` (default), `duration`, `stage`, `task`, `status`, `host`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    dir: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// A page of runs for the History view: `{rows, offset, limit, more}`.
pub(super) async fn api_history(
    State(app): State<Shared>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let f = RunFilter::new(&q.stage, &q.task, &q.status, &q.host, &q.q)?;
    let since = when(&q.since, "since")?;
    let until = when(&q.until, "until")?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0).min(10_000_000);
    let sort = blank(&q.sort).unwrap_or_else(|| "start".into());
    if !["start", "duration", "stage", "task", "status", "host"].contains(&sort.as_str()) {
        return Err(bad(format!(
            "sort: unknown column {sort:?} (start, duration, stage, task, status, host)"
        )));
    }
    let asc = match blank(&q.dir).as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(d) => return Err(bad(format!("dir: {d:?} is neither asc nor desc"))),
    };
    let (rows, more, total) = blocking(&app, move |t| {
        let in_range = |r: &RunRow| until.is_none_or(|u| r.start_time.is_some_and(|s| s < u));
        let by_start = sort == "start" && !asc;
        if !by_start && !f.sel.lost {
            // Another order: the database sorts and pages (lost is known only after reading).
            let q = crate::RunPageQuery {
                task_ids: f.task_ids(t)?,
                statuses: f.sel.statuses_with_active(),
                host: f.host.clone(),
                since,
                until,
                sort: run_sort(&sort),
                ascending: asc,
                offset,
                limit,
            };
            let (page, total) = t.run_page(&q)?;
            return Ok((page, offset + limit < total, Some(total)));
        }
        let mut rows = if by_start {
            // Newest first is the store's own order: read only up to this page.
            newest(t, &f, since, offset + limit + 1, &in_range)?
        } else {
            // Lost runs in another order: every matching run is read.
            newest(t, &f, since, usize::MAX / 8, &in_range)?
        };
        let total = (!by_start).then_some(rows.len());
        if !by_start {
            let key = |r: &RunRow| -> (String, Option<DateTime<Utc>>) {
                let k = match sort.as_str() {
                    "duration" => format!("{:020.3}", r.duration_seconds.unwrap_or(-1.0) + 1.0),
                    "stage" => format!("{}\u{0}{}", r.stage_name, r.task_name),
                    "task" => format!("{}\u{0}{}", r.task_name, r.stage_name),
                    "status" => r.status.as_str().to_string(),
                    "host" => r.hostname.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                (k, r.start_time)
            };
            rows.sort_by_cached_key(key);
            if !asc {
                rows.reverse();
            }
        }
        let more = rows.len() > offset + limit;
        let page: Vec<RunRow> = rows.into_iter().skip(offset).take(limit).collect();
        Ok((page, more, total))
    })
    .await?;
    Ok(Json(serde_json::json!({
        "rows": rows, "offset": offset, "limit": limit, "more": more, "total": total,
    }))
    .into_response())
}

/// A History sort column (checked by the caller) as the store's.
fn run_sort(column: &str) -> crate::RunSort {
    use crate::RunSort;
    match column {
        "duration" => RunSort::Duration,
        "stage" => RunSort::Stage,
        "task" => RunSort::Task,
        "status" => RunSort::Status,
        "host" => RunSort::Host,
        _ => RunSort::Start,
    }
}

// ---------------------------------------------------------------- grid

#[derive(Debug, Deserialize)]
pub(super) struct GridQuery {
    stage: Option<String>,
    task: Option<String>,
    status: Option<String>,
    host: Option<String>,
    /// Runs per task (1..=200, 25 by default).
    per_task: Option<usize>,
}

/// The grid view: every registered task (in stage and task order) with its runs
/// among the newest `per_task × tasks` that pass the filters (at most `per_task`
/// each, newest first).
pub(super) async fn api_grid(
    State(app): State<Shared>,
    Query(q): Query<GridQuery>,
) -> Result<Response, ApiError> {
    let per_task = q.per_task.unwrap_or(25);
    if !(1..=200).contains(&per_task) {
        return Err(bad(format!(
            "per_task: {per_task} is not between 1 and 200"
        )));
    }
    let f = RunFilter::new(&q.stage, &q.task, &q.status, &q.host, &None)?;
    let tasks = blocking(&app, move |t| {
        let mut tasks = t.registered_tasks(f.stage.as_deref(), None)?;
        tasks.retain(|x| f.tasks.is_empty() || f.tasks.contains(&x.task_name));
        tasks.sort_by(|a, b| {
            (
                a.stage_order.unwrap_or(i64::MAX),
                &a.stage_name,
                a.task_order.unwrap_or(i64::MAX),
                &a.task_name,
            )
                .cmp(&(
                    b.stage_order.unwrap_or(i64::MAX),
                    &b.stage_name,
                    b.task_order.unwrap_or(i64::MAX),
                    &b.task_name,
                ))
        });
        // One read of the newest runs of all tasks (per_task for each, at most
        // MAX_PAGE), grouped here: one query, not one per task. A task with no run
        // among them shows none (it has not run lately).
        let want = (per_task * tasks.len().max(1)).min(MAX_PAGE);
        let mut by_task: std::collections::HashMap<(String, String), Vec<RunRow>> =
            std::collections::HashMap::new();
        for r in newest(t, &f, None, want, &|_| true)? {
            let runs = by_task
                .entry((r.stage_name.clone(), r.task_name.clone()))
                .or_default();
            if runs.len() < per_task {
                runs.push(r);
            }
        }
        let filtered = !(f.sel.is_empty() && f.host.is_none());
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            let runs = by_task
                .remove(&(task.stage_name.clone(), task.task_name.clone()))
                .unwrap_or_default();
            if runs.is_empty() && filtered {
                continue; // filtered out entirely
            }
            let runs: Vec<serde_json::Value> = runs.into_iter().map(slim_json).collect();
            out.push(serde_json::json!({
                "stage_name": task.stage_name, "task_name": task.task_name, "runs": runs,
            }));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(serde_json::json!({ "per_task": per_task, "tasks": tasks })).into_response())
}

// ---------------------------------------------------------------- log tail

#[derive(Debug, Deserialize)]
pub(super) struct LogQuery {
    /// Bytes from the end (64 KiB by default, at most 1 MiB).
    bytes: Option<u64>,
}

const LOG_DEFAULT: u64 = 64 * 1024;
const LOG_MAX: u64 = 1024 * 1024;

/// The tail of a run's log file, when `serve --show-logs` allows it. The path is
/// the one stored with the run (`log_path`), never anything from the request; it
/// must be absolute and a regular file (not a FIFO or device a read could hang on).
/// Read-only, at most `LOG_MAX` bytes.
pub(super) async fn api_run_log(
    State(app): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    use axum::http::StatusCode;
    if !app.show_logs {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "log tails are off: start the server with --show-logs (show_logs=) to show them".into(),
        ));
    }
    let want = q.bytes.unwrap_or(LOG_DEFAULT).clamp(1, LOG_MAX);
    let run = blocking(&app, move |t| Ok(t.run(&id)?)).await?;
    let Some(path) = run.log_path.clone().filter(|p| !p.is_empty()) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "this run has no log_path".into(),
        ));
    };
    let shown = path.clone();
    let read = tokio::task::spawn_blocking(move || tail(std::path::Path::new(&path), want))
        .await
        .map_err(|_| super::internal_error())?;
    match read {
        Ok((size, start, text)) => Ok(Json(serde_json::json!({
            "path": shown, "size": size, "from": start, "truncated": start > 0, "text": text,
        }))
        .into_response()),
        Err(why) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("cannot read the log {shown}: {why}"),
        )),
    }
}

fn tail(path: &std::path::Path, want: u64) -> Result<(u64, u64, String), String> {
    use std::io::{Read, Seek, SeekFrom};
    if !path.is_absolute() {
        return Err("not an absolute path on this host".into());
    }
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let start = size.saturating_sub(want);
    f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        // Start at a line: the first one is likely cut.
        if let Some(nl) = text.find('\n') {
            text.drain(..=nl);
        }
    }
    Ok((size, start, text))
}
