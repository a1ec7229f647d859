//! `tasker stats` on SQLite: statistics task by task from the covering index
//! `runs_stats`, without building a `RunSummary` per run. Each row is read in
//! place (its id copied into one buffer per task, no allocation per run), one
//! task's runs are kept at a time, and `stats::one_task` computes the figures, so
//! they are those of `stats::task_stats` over `run_summaries`.

use super::*;
use crate::stats::StatsRun;

/// One run as the index gives it.
struct IndexRun {
    status: Status,
    start_us: Option<i64>,
    end_us: Option<i64>,
    attempt: i64,
    /// Where its id and the id it retries sit in the task's id buffer.
    id: (usize, usize),
    retry_of: Option<(usize, usize)>,
    items_complete: i64,
    /// Of an active run that is lost: its last heartbeat.
    lost: Option<Option<DateTime<Utc>>>,
}

/// An `IndexRun` with the buffer its ids are in.
struct IndexRunRef<'a> {
    run: &'a IndexRun,
    ids: &'a str,
}

fn micros(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(DateTime::<Utc>::from_timestamp_micros)
}

impl StatsRun for IndexRunRef<'_> {
    fn run_id(&self) -> &str {
        &self.ids[self.run.id.0..self.run.id.1]
    }
    fn retry_of(&self) -> Option<&str> {
        self.run.retry_of.map(|(a, b)| &self.ids[a..b])
    }
    fn attempt(&self) -> i64 {
        self.run.attempt
    }
    fn status(&self) -> Status {
        self.run.status
    }
    fn start_time(&self) -> Option<DateTime<Utc>> {
        micros(self.run.start_us)
    }
    fn end_time(&self) -> Option<DateTime<Utc>> {
        micros(self.run.end_us)
    }
    fn millis(&self) -> Option<i64> {
        // As `RunSummary::millis`: whole milliseconds of the exact microseconds
        // (times outside chrono's range are none, as they read as none there).
        let (start, end) = (self.start_time()?, self.end_time()?);
        Some((end - start).num_milliseconds().max(0))
    }
    fn items_complete(&self) -> i64 {
        self.run.items_complete
    }
    fn lost(&self, _: &LostRule) -> Option<Option<DateTime<Utc>>> {
        self.run.lost
    }
}

/// The runs of the task being read, and their ids in one buffer.
#[derive(Default)]
struct TaskRuns {
    runs: Vec<IndexRun>,
    ids: String,
}

impl TaskRuns {
    fn push_id(&mut self, id: &str) -> (usize, usize) {
        let start = self.ids.len();
        self.ids.push_str(id);
        (start, self.ids.len())
    }

    fn id(&self, r: &IndexRun) -> &str {
        &self.ids[r.id.0..r.id.1]
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.ids.clear();
    }
}

/// Statistics of the tasks in `names` over the window of `f`, from the covering
/// index (a database whose run times are all in the fixed form).
pub(super) fn stats_from_index(
    conn: &Connection,
    f: &StatsFilter,
    names: &TaskNames,
    rule: &LostRule,
) -> Result<Vec<TaskStats>> {
    let (tasks, ids) = task_filter(f, names)?;
    // Index order: STATS_COLUMNS are runs_stats's columns, in its order. The
    // window only when a limit asks for it.
    let sql = match f.limit {
        None => format!(
            "SELECT {STATS_COLUMNS} FROM runs r INDEXED BY runs_stats
              WHERE {tasks} AND (?2 IS NULL OR r.start_us >= ?2) AND ?3 < 0
              ORDER BY r.task_id"
        ),
        Some(_) => format!(
            "SELECT * FROM (SELECT {STATS_COLUMNS}, ROW_NUMBER() OVER (
                PARTITION BY r.task_id ORDER BY r.start_us DESC, r.run_id DESC) AS n
               FROM runs r INDEXED BY runs_stats
              WHERE {tasks} AND (?2 IS NULL OR r.start_us >= ?2))
              WHERE n <= ?3 ORDER BY task_id"
        ),
    };
    let since = f.since.map(|t| t.timestamp_micros());
    let mut st = conn.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = st
        .query(params![ids, since, limit_param(f.limit)])
        .map_err(db_err)?;
    let mut out = Vec::new();
    let mut task = TaskRuns::default();
    let mut current: Option<&StageTask> = None;
    let mut current_id = None;
    while let Some(row) = rows.next().map_err(db_err)? {
        let task_id: i64 = row.get(0).map_err(db_err)?;
        if current_id != Some(task_id) {
            if let Some((stage, name)) = current {
                out.push(one_task(conn, stage, name, &mut task, rule)?);
            }
            task.clear();
            current_id = Some(task_id);
            current = names.get(&task_id);
        }
        if current.is_none() {
            continue;
        }
        let read = |task: &mut TaskRuns| -> rusqlite::Result<IndexRun> {
            let retry_of = row.get_ref(5)?.as_str_or_null()?;
            Ok(IndexRun {
                start_us: row.get(1)?,
                end_us: row.get(2)?,
                status: status_of(row.get_ref(3)?.as_str_or_null()?, 3)?,
                attempt: row.get(4)?,
                retry_of: retry_of.map(|id| task.push_id(id)),
                id: task.push_id(row.get_ref(6)?.as_str()?),
                items_complete: 0,
                lost: None,
            })
        };
        let run = read(&mut task).map_err(db_err)?;
        task.runs.push(run);
    }
    if let Some((stage, name)) = current {
        out.push(one_task(conn, stage, name, &mut task, rule)?);
    }
    out.sort_unstable_by(|a, b| (&a.stage_name, &a.task_name).cmp(&(&b.stage_name, &b.task_name)));
    Ok(out)
}

/// The columns `stats_from_index` reads: those of `runs_stats`, in its order.
const STATS_COLUMNS: &str =
    "r.task_id, r.start_us, r.end_us, r.status, r.attempt, r.retry_of, r.run_id";

fn one_task(
    conn: &Connection,
    stage: &str,
    name: &str,
    task: &mut TaskRuns,
    rule: &LostRule,
) -> Result<TaskStats> {
    mark_lost(conn, task, rule)?;
    fill_items(conn, task)?;
    let runs: Vec<IndexRunRef<'_>> = task
        .runs
        .iter()
        .map(|run| IndexRunRef {
            run,
            ids: &task.ids,
        })
        .collect();
    Ok(crate::stats::one_task(stage, name, &runs, rule))
}

/// Decides for each active run whether it is lost, from its host, pid, process
/// start and heartbeat (else last update): one lookup each.
fn mark_lost(conn: &Connection, task: &mut TaskRuns, rule: &LostRule) -> Result<()> {
    if !task.runs.iter().any(|r| r.status.is_active()) {
        return Ok(());
    }
    let mut st = conn
        .prepare_cached(
            "SELECT COALESCE(heartbeat_time, last_update), hostname, process_id,
                    process_start_time
               FROM runs WHERE run_id = ?1",
        )
        .map_err(db_err)?;
    let TaskRuns { runs, ids } = task;
    for r in runs.iter_mut().filter(|r| r.status.is_active()) {
        let id = &ids[r.id.0..r.id.1];
        let (beat, host, pid, started) = st
            .query_row([id], |row| {
                let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                    Ok(row
                        .get_ref(i)?
                        .as_str_or_null()?
                        .and_then(|t| parse_ts(t).ok()))
                };
                let host: Option<String> = row.get(1)?;
                Ok((time(0)?, host, row.get::<_, Option<i64>>(2)?, time(3)?))
            })
            .map_err(db_err)?;
        r.lost = rule
            .is_lost(r.status, host.as_deref(), pid, started, beat)
            .then_some(beat);
    }
    Ok(())
}

/// Items of the task's latest `ITEMS_RUNS_PER_TASK` completed runs (newest start
/// first, run ids breaking ties, as `store::items_window` picks them).
fn fill_items(conn: &Connection, task: &mut TaskRuns) -> Result<()> {
    let start_key = |r: &IndexRun| r.start_us.unwrap_or(i64::MIN);
    let mut window: Vec<usize> = (0..task.runs.len())
        .filter(|&i| task.runs[i].status == Status::Completed)
        .collect();
    let newest_first = |a: &usize, b: &usize| {
        let (a, b) = (&task.runs[*a], &task.runs[*b]);
        (start_key(b), task.id(b)).cmp(&(start_key(a), task.id(a)))
    };
    let n = crate::store::ITEMS_RUNS_PER_TASK;
    if window.len() > n {
        window.select_nth_unstable_by(n - 1, newest_first);
        window.truncate(n);
    }
    if window.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = window.iter().map(|&i| task.id(&task.runs[i])).collect();
    let items = items_of_runs(conn, &ids)?;
    for i in window {
        if let Some(n) = items.get(task.id(&task.runs[i])) {
            task.runs[i].items_complete = *n;
        }
    }
    Ok(())
}
