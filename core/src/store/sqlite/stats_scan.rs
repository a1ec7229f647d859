//! `tasker stats` on SQLite: statistics task by task from the covering index
//! `runs_stats`, without building a `RunSummary` per run. Each row is read in
//! place (its id copied into one buffer per task, no allocation per run; times
//! kept as the integer microseconds they are stored as), one task's runs are kept
//! at a time, and `stats::one_task` computes the figures, so they are those of
//! `stats::task_stats` over `run_summaries`. Items of the runs that count towards
//! items per second are read afterwards, for all tasks in one query.

use super::*;
use crate::stats::StatsRun;

/// One run as the index gives it.
struct IndexRun {
    status: Status,
    /// Microseconds since 1970, none outside chrono's range (see `in_range`).
    start_us: Option<i64>,
    end_us: Option<i64>,
    attempt: i64,
    /// Where its id and the id it retries sit in the task's id buffer.
    id: (usize, usize),
    retry_of: Option<(usize, usize)>,
    /// Of an active run that is lost: its last heartbeat.
    lost: Option<Option<DateTime<Utc>>>,
}

/// An `IndexRun` with the buffer its ids are in.
struct IndexRunRef<'a> {
    run: &'a IndexRun,
    ids: &'a str,
}

/// The stored microseconds `v` when chrono can hold them (as `RunSummary` reads
/// them: a time outside its range is none there too).
fn in_range(v: Option<i64>) -> Option<i64> {
    static RANGE: std::sync::LazyLock<std::ops::RangeInclusive<i64>> =
        std::sync::LazyLock::new(|| {
            DateTime::<Utc>::MIN_UTC.timestamp_micros()
                ..=DateTime::<Utc>::MAX_UTC.timestamp_micros()
        });
    v.filter(|us| RANGE.contains(us))
}

/// As `RunSummary`'s: whole milliseconds of the exact microseconds, none below
/// zero (i128: the span between two times in range overflows i64 microseconds).
fn millis(r: &IndexRun) -> Option<i64> {
    let (start, end) = (r.start_us?, r.end_us?);
    Some(((i128::from(end) - i128::from(start)) / 1000).max(0) as i64)
}

impl StatsRun for IndexRunRef<'_> {
    type Time = i64;
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
    fn start(&self) -> Option<i64> {
        self.run.start_us
    }
    fn end(&self) -> Option<i64> {
        self.run.end_us
    }
    fn utc(us: i64) -> DateTime<Utc> {
        // In range: checked when read.
        DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default()
    }
    fn millis(&self) -> Option<i64> {
        millis(self.run)
    }
    /// Read afterwards (see `fill_item_rates`).
    fn items_complete(&self) -> i64 {
        0
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

/// The runs of the tasks `tasks` (an SQL condition on `r`, over `?1`) started at or
/// after `?2` (microseconds, or NULL), in task order, read from the covering index
/// `runs_stats`: with `windowed`, only the latest `?3` of each task; without, `?3`
/// must be negative. INDEXED BY: a plan that read the table instead would be an
/// error here, not a silent slowdown; the index gives task order without a sort.
pub(super) fn runs_stats_sql(columns: &str, tasks: &str, windowed: bool) -> String {
    if windowed {
        format!(
            "SELECT * FROM (SELECT {columns}, ROW_NUMBER() OVER (
                PARTITION BY r.task_id ORDER BY r.start_us DESC, r.run_id DESC) AS n
               FROM runs r INDEXED BY runs_stats
              WHERE {tasks} AND (?2 IS NULL OR r.start_us >= ?2))
              WHERE n <= ?3 ORDER BY task_id"
        )
    } else {
        format!(
            "SELECT {columns} FROM runs r INDEXED BY runs_stats
              WHERE {tasks} AND (?2 IS NULL OR r.start_us >= ?2) AND ?3 < 0
              ORDER BY r.task_id"
        )
    }
}

/// Statistics of the tasks in `names` over the window of `f`, from the covering
/// index (a database whose run times are all in the fixed form).
pub(super) fn stats_from_index(
    store: &SqliteStore,
    f: &StatsFilter,
    names: &TaskNames,
    rule: &LostRule,
) -> Result<Vec<TaskStats>> {
    let mut tasks = store.mapped(|st| scan(&st.conn, f, names, rule))?;
    // Outside the mapping: a lookup by id visits few pages of each of many
    // B-trees, which SQLite re-reads on every visit when they are mapped.
    fill_item_rates(&store.conn, &mut tasks)?;
    let mut out: Vec<TaskStats> = tasks.into_iter().map(|t| t.stats).collect();
    out.sort_unstable_by(|a, b| (&a.stage_name, &a.task_name).cmp(&(&b.stage_name, &b.task_name)));
    Ok(out)
}

/// A task's statistics, and the runs its items per second are taken from: their
/// ids and milliseconds.
struct TaskResult {
    stats: TaskStats,
    item_runs: Vec<(String, i64)>,
}

fn scan(
    conn: &Connection,
    f: &StatsFilter,
    names: &TaskNames,
    rule: &LostRule,
) -> Result<Vec<TaskResult>> {
    let (tasks, ids) = task_filter(f, names)?;
    // Index order: STATS_COLUMNS are runs_stats's columns, in its order.
    let sql = runs_stats_sql(STATS_COLUMNS, tasks, f.limit.is_some());
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
                start_us: in_range(row.get(1)?),
                end_us: in_range(row.get(2)?),
                status: status_of(row.get_ref(3)?.as_str_or_null()?, 3)?,
                attempt: row.get(4)?,
                retry_of: retry_of.map(|id| task.push_id(id)),
                id: task.push_id(row.get_ref(6)?.as_str()?),
                lost: None,
            })
        };
        let run = read(&mut task).map_err(db_err)?;
        task.runs.push(run);
    }
    if let Some((stage, name)) = current {
        out.push(one_task(conn, stage, name, &mut task, rule)?);
    }
    Ok(out)
}

/// The columns `scan` reads: those of `runs_stats`, in its order.
const STATS_COLUMNS: &str =
    "r.task_id, r.start_us, r.end_us, r.status, r.attempt, r.retry_of, r.run_id";

fn one_task(
    conn: &Connection,
    stage: &str,
    name: &str,
    task: &mut TaskRuns,
    rule: &LostRule,
) -> Result<TaskResult> {
    mark_lost(conn, task, rule)?;
    let runs: Vec<IndexRunRef<'_>> = task
        .runs
        .iter()
        .map(|run| IndexRunRef {
            run,
            ids: &task.ids,
        })
        .collect();
    Ok(TaskResult {
        stats: crate::stats::one_task(stage, name, &runs, rule),
        item_runs: item_runs(task),
    })
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

/// The task's latest `ITEMS_RUNS_PER_TASK` completed runs (newest start first,
/// run ids breaking ties, as `store::items_window` picks them) that have a
/// duration: their ids and milliseconds.
fn item_runs(task: &TaskRuns) -> Vec<(String, i64)> {
    let start_key = |r: &IndexRun| r.start_us.unwrap_or(i64::MIN);
    let mut window: Vec<&IndexRun> = task
        .runs
        .iter()
        .filter(|r| r.status == Status::Completed)
        .collect();
    let newest_first =
        |a: &&IndexRun, b: &&IndexRun| (start_key(b), task.id(b)).cmp(&(start_key(a), task.id(a)));
    let n = crate::store::ITEMS_RUNS_PER_TASK;
    if window.len() > n {
        window.select_nth_unstable_by(n - 1, newest_first);
        window.truncate(n);
    }
    window
        .into_iter()
        .filter_map(|r| Some((task.id(r).to_string(), millis(r)?)))
        .collect()
}

/// Sets each task's items per second from the items of its `item_runs`, read
/// for all tasks at once (in id order, so that the lookups walk the index of
/// subtasks in order).
fn fill_item_rates(conn: &Connection, tasks: &mut [TaskResult]) -> Result<()> {
    let mut ids: Vec<&str> = tasks
        .iter()
        .flat_map(|t| t.item_runs.iter().map(|(id, _)| id.as_str()))
        .collect();
    ids.sort_unstable();
    let items = items_of_runs(conn, &ids)?;
    for t in tasks {
        let runs = t
            .item_runs
            .iter()
            .map(|(id, ms)| (items.get(id).copied().unwrap_or(0), *ms));
        t.stats.items_per_second = crate::stats::items_per_second(runs);
    }
    Ok(())
}
