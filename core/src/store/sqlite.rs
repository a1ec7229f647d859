//! The embedded default: one SQLite file that many processes on one host share.
//! WAL so readers never block the writer, a busy timeout so writers queue
//! instead of failing, foreign keys on, synchronous=NORMAL (a commit survives a
//! process crash; a power cut may lose the last commits but never corrupts).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::io_record::IoRecord;
use crate::model::Status;
use crate::query::{
    EventRow, HistoryFilter, IoRow, LostRule, RunPageQuery, RunRow, RunSummary, StageRow,
    StatsFilter, StatusFilter, SubtaskRow, TaskRow, DEFAULT_HISTORY_LIMIT,
};
use crate::sampler::Sample;
use crate::stats::TaskStats;

use super::{
    refuse_tasks_with_runs, Op, OpId, Output, Queued, RunCount, RunSelector, Store, SubtaskState,
    TaskSelector, TasksDeleted, TasksWithRuns,
};

mod alerts;
mod logs;
mod write;

#[cfg(test)]
mod stats_read_test;
mod stats_scan;

/// Migrations in order; index + 1 is the schema version.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "initial schema",
        include_str!("migrations/sqlite/0001_initial.sql"),
    ),
    (
        "error detail of subtasks",
        include_str!("migrations/sqlite/0002_subtask_error_detail.sql"),
    ),
    (
        "subtask identities, writes applied once per writer",
        include_str!("migrations/sqlite/0003_subtask_identity_and_writers.sql"),
    ),
    (
        "process samples, attempts, captured metadata, inputs and outputs",
        include_str!("migrations/sqlite/0004_samples_attempts_metadata_io.sql"),
    ),
    (
        "run logs and item outcomes",
        include_str!("migrations/sqlite/0005_run_logs_and_item_outcomes.sql"),
    ),
    (
        "run times as numbers, for statistics",
        include_str!("migrations/sqlite/0006_run_times_for_statistics.sql"),
    ),
    (
        "task dependencies, wait time of runs",
        include_str!("migrations/sqlite/0007_task_dependencies.sql"),
    ),
    (
        "runs by host",
        include_str!("migrations/sqlite/0008_runs_by_host.sql"),
    ),
    ("alerts", include_str!("migrations/sqlite/0009_alerts.sql")),
];

/// Timestamps are stored as fixed-width UTC text so that text order is time order.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format(TS_FORMAT).to_string()
}

/// Parses a stored time. The times this store writes (`TS_FORMAT`) are read at
/// fixed positions: the general RFC 3339 parser costs more than the row it is read
/// from when statistics read every run. Anything else goes to that parser.
fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let fixed = b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z';
    if fixed {
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se), Some(us)) = (
            digits(0, 4),
            digits(5, 7),
            digits(8, 10),
            digits(11, 13),
            digits(14, 16),
            digits(17, 19),
            digits(20, 26),
        ) {
            let t = chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)
                .and_then(|date| date.and_hms_micro_opt(h, mi, se, us));
            if let Some(t) = t {
                return Ok(t.and_utc());
            }
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<String>>(idx)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn status_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Status> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_status_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Status>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => status_col(row, idx).map(Some),
    }
}

/// Busy, locked, unopenable or failing I/O may pass; anything else is a refusal.
fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::CannotOpen
            | C::SystemIoFailure
            | C::DiskFull
            | C::OutOfMemory
            | C::FileLockingProtocolFailed,
        ) => Error::unavailable("sqlite", e),
        _ => Error::storage_refused("sqlite", e),
    }
}

pub struct SqliteStore {
    conn: Connection,
    /// What the last write appended to the events table (`Store::take_events`).
    events: Vec<EventRow>,
    /// Whether writes read back the events they append (`Store::collect_events`).
    collect_events: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file.
    pub fn open(path: &Path, config: &Config) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                let msg = format!("cannot create directory {}: {e}", dir.display());
                // A missing permission stays missing; anything else (a mount not
                // there yet, a full disk) may pass.
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    Error::storage_refused("sqlite", msg)
                } else {
                    Error::unavailable("sqlite", msg)
                }
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::unavailable("sqlite", format!("cannot open {}: {e}", path.display()))
        })?;
        let mut store = SqliteStore {
            conn,
            events: Vec::new(),
            collect_events: true,
        };
        store.configure(config.busy_timeout)?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&mut self, busy_timeout: Duration) -> Result<()> {
        self.conn.busy_timeout(busy_timeout).map_err(db_err)?;
        self.conn.set_prepared_statement_cache_capacity(64);
        // Plans fixed at prepare time. Without this, the bundled SQLite (built with
        // STAT4) re-prepares a cached statement on every call whose bound values
        // might change its plan (our lookups by run id and subtask number): a
        // parse and plan per transition, for plans that never change here.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(db_err)?;
        // Switching to WAL needs a moment of exclusive access; when many processes
        // open a new file at once, the busy handler does not cover it, so retry.
        let mut tries = 0;
        loop {
            let mode: rusqlite::Result<String> =
                self.conn
                    .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0));
            match mode {
                Ok(m) if m.eq_ignore_ascii_case("wal") => break,
                Ok(m) => {
                    return Err(Error::storage_refused(
                        "sqlite",
                        format!("cannot use WAL (journal mode stays {m})"),
                    ))
                }
                Err(e) if tries < 200 && is_busy(&e) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5 + tries));
                }
                Err(e) => return Err(db_err(e)),
            }
        }
        self.conn
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(db_err)
    }

    /// Applies missing migrations inside one IMMEDIATE transaction, so two
    /// processes opening a new file at once cannot both apply one.
    fn migrate(&mut self) -> Result<()> {
        // Fast path, without the write lock (which busy writers may hold for a
        // while): the schema is there and up to date.
        let current: Option<i64> = self
            .conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .ok()
            .flatten()
            .flatten();
        if current == Some(MIGRATIONS.len() as i64) {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version INTEGER PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
        )
        .map_err(db_err)?;
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if current > MIGRATIONS.len() as i64 {
            return Err(Error::Config(
                format!(
                    "database schema version {current} is newer than this tasker understands ({}); upgrade tasker",
                    MIGRATIONS.len()
                ),
            ));
        }
        for (i, (description, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql).map_err(db_err)?;
            tx.execute(
                "INSERT INTO schema_version(version, description, applied_at) VALUES (?1, ?2, ?3)",
                params![i as i64 + 1, description, ts(Utc::now())],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn write_tx(&mut self) -> Result<WriteTx<'_>> {
        WriteTx::begin(&self.conn)
    }

    /// Runs `read` with the file memory-mapped. Statistics read megabytes of index
    /// pages: mapped, rather than copied page by page (thousands of read calls).
    /// Only for these reads, so that the store's writes never touch a mapping.
    fn mapped<T>(&self, read: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.conn
            .pragma_update(None, "mmap_size", STATS_MMAP_BYTES)
            .map_err(db_err)?;
        let out = read(self);
        self.conn
            .pragma_update(None, "mmap_size", 0)
            .map_err(db_err)?;
        out
    }

    fn read_summaries(&self, f: &StatsFilter, names: &TaskNames) -> Result<Vec<RunSummary>> {
        let mut runs = if has_odd_times(&self.conn)? {
            summaries_from_text(&self.conn, f, names)?
        } else {
            summaries_from_index(&self.conn, f, names)?
        };
        let window = super::items_window(&runs);
        let ids: Vec<&str> = window.iter().map(|&i| runs[i].run_id.as_str()).collect();
        let items = items_of_runs(&self.conn, &ids)?;
        super::fill_items(&mut runs, &window, &items);
        Ok(runs)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .map_err(db_err)
    }
}

/// An IMMEDIATE transaction (the write lock taken at once, so the busy timeout
/// applies and no read lock must be upgraded), rolled back unless committed.
/// BEGIN and COMMIT are cached statements: on a transition, parsing them anew
/// each time was a visible share of the cost.
struct WriteTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> WriteTx<'c> {
    fn begin(conn: &'c Connection) -> Result<WriteTx<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]))
            .map_err(db_err)?;
        Ok(WriteTx { conn, open: true })
    }

    fn commit(mut self) -> Result<()> {
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]))
            .map_err(db_err)?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        // Not committed, or the COMMIT failed (SQLITE_BUSY leaves it open): end it.
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(drop)
        .map_err(db_err)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Columns of a run row, in the order `map_run` reads them. `r` may be NULL
/// (a registered task that never ran) in `task_status`.
const RUN_COLUMNS: &str = "
    r.run_id, s.stage_name, s.stage_order, t.task_name, t.task_type, t.task_order,
    COALESCE(r.status, 'NOT_STARTED'), r.hostname, r.process_id, r.parent_pid,
    r.process_start_time, r.user_name, r.start_time, r.end_time, r.last_update,
    r.heartbeat_time, r.total_subtasks, r.current_subtask, r.overall_percent, r.message,
    r.version, r.git_commit,
    COALESCE(r.script_path, t.script_path), COALESCE(r.script_filename, t.script_filename),
    COALESCE(r.log_path, t.log_path), COALESCE(r.log_filename, t.log_filename),
    r.error_message, r.error_detail, r.metadata,
    (SELECT COUNT(*) FROM subtasks x WHERE x.run_id = r.run_id AND x.status IN ('COMPLETED','SKIPPED')),
    (SELECT COALESCE(SUM(CASE
        WHEN x.status IN ('COMPLETED','SKIPPED') THEN 1.0
        WHEN x.items_total > 0 THEN MIN(1.0, x.items_complete * 1.0 / x.items_total)
        WHEN x.percent IS NOT NULL THEN x.percent / 100.0
        ELSE 0.0 END), 0.0) FROM subtasks x WHERE x.run_id = r.run_id),
    (SELECT COUNT(*) FROM subtasks x WHERE x.run_id = r.run_id),
    r.attempt, r.retry_of, r.command_line, r.git_dirty, r.runtime, r.tasker_version,
    r.wait_seconds";

const RUN_FROM: &str =
    "FROM runs r JOIN tasks t ON t.task_id = r.task_id JOIN stages s ON s.stage_id = t.stage_id";

const STAGE_TASK_ORDER: &str = "COALESCE(s.stage_order, 2147483647), s.stage_name, COALESCE(t.task_order, 2147483647), t.task_name";

fn map_run(row: &Row<'_>) -> rusqlite::Result<RunRow> {
    let metadata: Option<String> = row.get(28)?;
    Ok(RunRow {
        run_id: row.get(0)?,
        stage_name: row.get(1)?,
        stage_order: row.get(2)?,
        task_name: row.get(3)?,
        task_type: row.get(4)?,
        task_order: row.get(5)?,
        status: status_col(row, 6)?,
        hostname: row.get(7)?,
        process_id: row.get(8)?,
        parent_pid: row.get(9)?,
        process_start_time: opt_ts(row, 10)?,
        user_name: row.get(11)?,
        start_time: opt_ts(row, 12)?,
        end_time: opt_ts(row, 13)?,
        last_update: opt_ts(row, 14)?,
        heartbeat_time: opt_ts(row, 15)?,
        total_subtasks: row.get(16)?,
        current_subtask: row.get(17)?,
        overall_percent_complete: None,
        explicit_percent: row.get(18)?,
        overall_progress_message: row.get(19)?,
        version: row.get(20)?,
        git_commit: row.get(21)?,
        script_path: row.get(22)?,
        script_filename: row.get(23)?,
        log_path: row.get(24)?,
        log_filename: row.get(25)?,
        error_message: row.get(26)?,
        error_detail: row.get(27)?,
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        subtasks_completed: row.get(29)?,
        subtask_fraction_sum: row.get(30)?,
        subtask_count: row.get(31)?,
        attempt: row.get(32)?,
        retry_of: row.get(33)?,
        command_line: row.get(34)?,
        git_dirty: row.get(35)?,
        runtime: row.get(36)?,
        tasker_version: row.get(37)?,
        wait_seconds: row.get(38)?,
        lost: false,
        duration_seconds: None,
        eta_seconds: None,
        eta_low: None,
        eta_high: None,
        eta_basis: None,
    })
}

fn map_subtask(row: &Row<'_>) -> rusqlite::Result<SubtaskRow> {
    Ok(SubtaskRow {
        run_id: row.get(0)?,
        subtask_number: row.get(1)?,
        subtask_name: row.get(2)?,
        status: status_col(row, 3)?,
        start_time: opt_ts(row, 4)?,
        end_time: opt_ts(row, 5)?,
        last_update: opt_ts(row, 6)?,
        items_total: row.get(7)?,
        items_complete: row.get(8)?,
        stored_percent: row.get(9)?,
        percent_complete: None,
        progress_message: row.get(10)?,
        error_message: row.get(11)?,
        error_detail: row.get(12)?,
        rate_per_second: None,
        eta_seconds: None,
        eta_low: None,
        eta_high: None,
    })
}

/// `history`'s query. A plain `hostname = ?6` (not `?6 IS NULL OR ...`), so that
/// the plan fixed at prepare time walks the (hostname, start_time) index.
fn history_sql(filter: &HistoryFilter) -> String {
    let host = if filter.host.is_some() {
        "r.hostname = ?6"
    } else {
        "?6 IS NULL"
    };
    format!(
        "SELECT {RUN_COLUMNS} {RUN_FROM}
         WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
           AND (?3 IS NULL OR r.status = ?3) AND (?4 IS NULL OR r.start_time >= ?4)
           AND {host}
         ORDER BY r.start_time DESC, r.run_id DESC
         LIMIT ?5"
    )
}

fn limit_param(limit: Option<usize>) -> i64 {
    limit.map(|l| l.min(i64::MAX as usize) as i64).unwrap_or(-1)
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn outcome_may_be_unknown(&self) -> bool {
        false
    }

    fn one_writer_at_a_time(&self) -> bool {
        true
    }

    fn apply(&mut self, op: &Op, id: Option<&OpId>) -> Result<Output> {
        self.events.clear();
        if let Op::Progress {
            updates,
            heartbeats,
            logs,
            ..
        } = op
        {
            if updates.is_empty() && heartbeats.is_empty() && logs.is_empty() && id.is_none() {
                return Ok(Output::Progress { finished: vec![] });
            }
        }
        let collect = self.collect_events;
        let tx = self.write_tx()?;
        let before = event_mark(&tx, collect)?;
        let out = write::apply_once(&tx, op, id)?;
        let events = events_after_mark(&tx, before)?;
        tx.commit()?;
        self.events = events;
        Ok(out)
    }

    fn apply_after(
        &mut self,
        first: (&Op, Option<&OpId>),
        op: (&Op, Option<&OpId>),
    ) -> Result<(Output, Result<Output>)> {
        self.events.clear();
        let collect = self.collect_events;
        let tx = self.write_tx()?;
        let before = event_mark(&tx, collect)?;
        let progressed = write::apply_once(&tx, first.0, first.1)?;
        run_cached(&tx, "SAVEPOINT transition")?;
        let answer = match write::apply_once(&tx, op.0, op.1) {
            Ok(out) => {
                run_cached(&tx, "RELEASE transition")?;
                Ok(out)
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                run_cached(&tx, "ROLLBACK TO transition")?;
                run_cached(&tx, "RELEASE transition")?;
                Err(e)
            }
        };
        let events = events_after_mark(&tx, before)?;
        tx.commit()?;
        self.events = events;
        Ok((progressed, answer))
    }

    fn apply_batch(&mut self, ops: &[Queued]) -> Result<Vec<Result<Output>>> {
        self.events.clear();
        let collect = self.collect_events;
        let tx = self.write_tx()?;
        let before = event_mark(&tx, collect)?;
        let mut outs = Vec::with_capacity(ops.len());
        for q in ops {
            // A savepoint per write: one the database refuses leaves no trace and
            // does not undo the others.
            run_cached(&tx, "SAVEPOINT queued_write")?;
            match write::apply_once(&tx, &q.op, q.id.as_ref()) {
                Ok(out) => {
                    run_cached(&tx, "RELEASE queued_write")?;
                    outs.push(Ok(out));
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    run_cached(&tx, "ROLLBACK TO queued_write")?;
                    run_cached(&tx, "RELEASE queued_write")?;
                    outs.push(Err(e));
                }
            }
        }
        let events = events_after_mark(&tx, before)?;
        tx.commit()?;
        self.events = events;
        Ok(outs)
    }

    fn take_events(&mut self) -> Vec<EventRow> {
        std::mem::take(&mut self.events)
    }

    fn collect_events(&mut self, on: bool) {
        self.collect_events = on;
    }

    fn run_status(&mut self, run_id: &str) -> Result<Option<Status>> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM runs WHERE run_id = ?1")
            .and_then(|mut st| st.query_row([run_id], |r| r.get(0)).optional())
            .map_err(db_err)?;
        s.map(|s| s.parse()).transpose()
    }

    fn subtask_state(&mut self, run_id: &str, number: u32) -> Result<Option<SubtaskState>> {
        let row: Option<(String, Option<i64>, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT status, items_total, subtask_uid FROM subtasks
                 WHERE run_id = ?1 AND subtask_number = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![run_id, number], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(db_err)?;
        row.map(|(s, items_total, uid)| {
            Ok(SubtaskState {
                status: s.parse()?,
                items_total,
                uid: uid.map(Arc::from),
            })
        })
        .transpose()
    }

    fn delete_runs(&mut self, which: &RunSelector) -> Result<usize> {
        let tx = self.write_tx()?;
        let n = tx
            .execute(
                "DELETE FROM runs WHERE run_id IN (
                    SELECT r.run_id FROM runs r JOIN tasks t ON t.task_id = r.task_id
                    JOIN stages s ON s.stage_id = t.stage_id
                    WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
                      AND (?3 IS NULL OR r.run_id = ?3)
                      AND (?4 IS NULL OR COALESCE(r.end_time, r.start_time) < ?4)
                      AND (NOT ?5 OR r.status <> 'FAILED')
                      AND (NOT ?6 OR r.status = 'FAILED')
                      AND (NOT ?7 OR r.end_time IS NOT NULL)
                    ORDER BY COALESCE(r.end_time, r.start_time) LIMIT ?8)",
                params![
                    which.stage,
                    which.task,
                    which.run_id,
                    which.before.map(ts),
                    which.keep_failed,
                    which.failed_only,
                    which.finished_only,
                    limit_param(which.limit)
                ],
            )
            .map_err(db_err)?;
        tx.commit()?;
        Ok(n)
    }

    fn delete_tasks(&mut self, which: &TaskSelector) -> Result<TasksDeleted> {
        let tx = self.write_tx()?;
        let matching = "SELECT t.task_id FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
             WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)";
        let with_runs: Vec<String> = tx
            .prepare(&format!(
                "SELECT s.stage_name || '/' || t.task_name FROM tasks t
                 JOIN stages s ON s.stage_id = t.stage_id
                 WHERE t.task_id IN ({matching}) AND EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.task_id)
                 ORDER BY 1"
            ))
            .and_then(|mut st| {
                st.query_map(params![which.stage, which.task], |r| r.get(0))?
                    .collect()
            })
            .map_err(db_err)?;
        let mut done = TasksDeleted::default();
        match which.runs {
            TasksWithRuns::Refuse if !with_runs.is_empty() => {
                return Err(refuse_tasks_with_runs(&with_runs));
            }
            TasksWithRuns::Delete => {
                done.runs = tx
                    .execute(
                        &format!("DELETE FROM runs WHERE task_id IN ({matching})"),
                        params![which.stage, which.task],
                    )
                    .map_err(db_err)?;
            }
            TasksWithRuns::Keep => done.kept = with_runs,
            TasksWithRuns::Refuse => {}
        }
        done.tasks = tx
            .execute(
                &format!(
                    "DELETE FROM tasks WHERE task_id IN ({matching})
                     AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = tasks.task_id)"
                ),
                params![which.stage, which.task],
            )
            .map_err(db_err)?;
        done.stages = tx
            .execute(
                "DELETE FROM stages WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.stage_id = stages.stage_id)",
                [],
            )
            .map_err(db_err)?;
        tx.commit()?;
        Ok(done)
    }

    fn task_status(&mut self, filter: &StatusFilter) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}
             FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
             LEFT JOIN runs r ON r.run_id = (
                SELECT r2.run_id FROM runs r2 WHERE r2.task_id = t.task_id
                ORDER BY r2.start_time DESC, r2.run_id DESC LIMIT 1)
             WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
               AND (?3 IS NULL OR COALESCE(r.status, 'NOT_STARTED') = ?3)
             ORDER BY {STAGE_TASK_ORDER}
             LIMIT ?4"
        );
        let status = filter.status.map(Status::as_str);
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(
                    params![filter.stage, filter.task, status, limit_param(filter.limit)],
                    map_run,
                )?
                .collect()
            })
            .map_err(db_err)
    }

    fn active_runs(&mut self) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE r.status IN ('STARTED','RUNNING','PAUSED')
             ORDER BY {STAGE_TASK_ORDER}, r.start_time"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_map([], map_run)?.collect())
            .map_err(db_err)
    }

    fn for_each_run(
        &mut self,
        filter: &HistoryFilter,
        f: &mut dyn FnMut(RunRow) -> Result<bool>,
    ) -> Result<()> {
        let limit = filter.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        let mut st = self
            .conn
            .prepare_cached(&history_sql(filter))
            .map_err(db_err)?;
        let mut rows = st
            .query(params![
                filter.stage,
                filter.task,
                filter.status.map(Status::as_str),
                filter.since.map(ts),
                limit_param(Some(limit)),
                filter.host,
            ])
            .map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            if !f(map_run(row).map_err(db_err)?)? {
                break;
            }
        }
        Ok(())
    }

    fn history(&mut self, filter: &HistoryFilter) -> Result<Vec<RunRow>> {
        let sql = history_sql(filter);
        let limit = filter.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(
                    params![
                        filter.stage,
                        filter.task,
                        filter.status.map(Status::as_str),
                        filter.since.map(ts),
                        limit_param(Some(limit)),
                        filter.host,
                    ],
                    map_run,
                )?
                .collect()
            })
            .map_err(db_err)
    }

    fn run(&mut self, run_id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} {RUN_FROM} WHERE r.run_id = ?1");
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([run_id], map_run).optional())
            .map_err(db_err)
    }

    fn run_page(&mut self, q: &RunPageQuery, now: DateTime<Utc>) -> Result<(Vec<RunRow>, usize)> {
        // Lists travel as JSON arrays (json_each), so that one statement serves
        // every filter and stays cached. Only run columns filter: no join to count.
        let task_ids = q
            .task_ids
            .as_ref()
            .map(|ids| serde_json::json!(ids).to_string());
        let statuses = (!q.statuses.is_empty()).then(|| {
            let names: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
            serde_json::json!(names).to_string()
        });
        // Host only when given, and times as integer microseconds (`start_us`,
        // `end_us`): then ordering by duration or start and counting read the
        // covering index `runs_stats`, not the table (a third of the time on a
        // million runs). A run with times not in the fixed form (none that tasker
        // writes) has no duration here and sorts lowest.
        let host = if q.host.is_some() {
            "r.hostname = ?3"
        } else {
            "?3 IS NULL"
        };
        let filter = format!(
            "WHERE (?1 IS NULL OR r.task_id IN (SELECT value FROM json_each(?1)))
               AND (?2 IS NULL OR r.status IN (SELECT value FROM json_each(?2)))
               AND {host}
               AND (?4 IS NULL OR r.start_us >= ?4) AND (?5 IS NULL OR r.start_us < ?5)"
        );
        let order = super::run_page_order(
            q,
            "COALESCE(r.end_us, ?6) - r.start_us",
            "r.start_us",
            "r.run_id",
            "",
        );
        let from = if super::run_page_needs_names(q) {
            RUN_FROM
        } else {
            "FROM runs r"
        };
        let since = q.since.map(|t| t.timestamp_micros());
        let until = q.until.map(|t| t.timestamp_micros());
        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM runs r {filter}"))
            .and_then(|mut st| {
                st.query_row(params![task_ids, statuses, q.host, since, until], |r| {
                    r.get(0)
                })
            })
            .map_err(db_err)?;
        // The page's ids are sorted with the run columns alone; the full rows (with
        // their subtask counts) are read for those ids only.
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE r.run_id IN (SELECT r.run_id {from} {filter} ORDER BY {order} LIMIT ?7 OFFSET ?8)
             ORDER BY {order}"
        );
        let rows = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(
                    params![
                        task_ids,
                        statuses,
                        q.host,
                        since,
                        until,
                        now.timestamp_micros(),
                        limit_param(Some(q.limit)),
                        limit_param(Some(q.offset)),
                    ],
                    map_run,
                )?
                .collect()
            })
            .map_err(db_err)?;
        Ok((rows, total as usize))
    }

    fn run_counts(&mut self, buckets: &[f64]) -> Result<Vec<RunCount>> {
        let sums = super::bucket_sums(buckets, "r.d", "");
        let sql = format!(
            "SELECT s.stage_name, t.task_name, r.status, COUNT(*), COALESCE(SUM(r.d), 0.0),
                MAX(CASE WHEN r.status = 'COMPLETED' THEN r.end_time END){sums}
             FROM (SELECT task_id, status, end_time,
                     CASE WHEN status = 'COMPLETED' AND end_time IS NOT NULL THEN
                       MAX(0.0, (julianday(end_time) - julianday(start_time)) * 86400.0) END AS d
                   FROM runs) r
             JOIN tasks t ON t.task_id = r.task_id JOIN stages s ON s.stage_id = t.stage_id
             GROUP BY r.task_id, r.status"
        );
        let n = buckets.len();
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map([], |row| {
                    let mut at_most = Vec::with_capacity(n);
                    for i in 0..n {
                        at_most.push(row.get::<_, Option<i64>>(6 + i)?.unwrap_or(0));
                    }
                    Ok(RunCount {
                        stage_name: row.get(0)?,
                        task_name: row.get(1)?,
                        status: Some(status_col(row, 2)?),
                        runs: row.get(3)?,
                        seconds: row.get(4)?,
                        last_end: opt_ts(row, 5)?,
                        at_most,
                    })
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn run_ids_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        // The primary key's index answers a range; the upper end is the prefix with
        // its last character incremented (ids compare bytewise, as UTF-8 code points do).
        // No `?2 IS NULL OR ...`: the plan is fixed at prepare time and must bound the range.
        let upper = super::prefix_upper_bound(prefix);
        let below = if upper.is_some() {
            "run_id < ?2"
        } else {
            "?2 IS NULL"
        };
        self.conn
            .prepare_cached(&format!(
                "SELECT run_id FROM runs
                 WHERE run_id >= ?1 AND {below}
                   AND substr(run_id, 1, length(?1)) = ?1
                 ORDER BY run_id LIMIT ?3"
            ))
            .and_then(|mut st| {
                st.query_map(params![prefix, upper, limit_param(Some(limit))], |r| {
                    r.get(0)
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn subtasks(&mut self, run_id: &str) -> Result<Vec<SubtaskRow>> {
        self.conn
            .prepare_cached(
                "SELECT run_id, subtask_number, subtask_name, status, start_time, end_time,
                    last_update, items_total, items_complete, percent, message, error_message,
                    error_detail
                 FROM subtasks WHERE run_id = ?1 ORDER BY subtask_number",
            )
            .and_then(|mut st| st.query_map([run_id], map_subtask)?.collect())
            .map_err(db_err)
    }

    fn subtasks_of_runs(&mut self, run_ids: &[&str]) -> Result<Vec<SubtaskRow>> {
        let ids = serde_json::to_string(run_ids).map_err(|e| Error::storage_refused("json", e))?;
        self.conn
            .prepare_cached(
                "SELECT run_id, subtask_number, subtask_name, status, start_time, end_time,
                    last_update, items_total, items_complete, percent, message, error_message,
                    error_detail
                 FROM subtasks WHERE run_id IN (SELECT value FROM json_each(?1))
                 ORDER BY run_id, subtask_number",
            )
            .and_then(|mut st| st.query_map([ids], map_subtask)?.collect())
            .map_err(db_err)
    }

    fn run_summaries(&mut self, f: &StatsFilter) -> Result<Vec<RunSummary>> {
        let names = task_names(&self.conn, f)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.mapped(|st| st.read_summaries(f, &names))
    }

    fn task_stats(&mut self, f: &StatsFilter, rule: &LostRule) -> Result<Vec<TaskStats>> {
        let names = task_names(&self.conn, f)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        if has_odd_times(&self.conn)? {
            let runs = self.mapped(|st| st.read_summaries(f, &names))?;
            return Ok(crate::stats::task_stats(&runs, rule));
        }
        stats_scan::stats_from_index(self, f, &names, rule)
    }

    fn subtask_durations(
        &mut self,
        stage: &str,
        task: &str,
        runs: usize,
    ) -> Result<Vec<(String, f64)>> {
        self.conn
            .prepare_cached(
                "SELECT x.subtask_name,
                        (julianday(x.end_time) - julianday(x.start_time)) * 86400.0
                   FROM subtasks x
                  WHERE x.status = 'COMPLETED' AND x.start_time IS NOT NULL AND x.end_time IS NOT NULL
                    AND x.run_id IN (
                        SELECT r.run_id FROM runs r
                         WHERE r.task_id = (
                                SELECT t.task_id FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
                                 WHERE s.stage_name = ?1 AND t.task_name = ?2)
                           AND r.status = 'COMPLETED'
                         ORDER BY r.start_time DESC LIMIT ?3)",
            )
            .and_then(|mut st| {
                st.query_map(params![stage, task, limit_param(Some(runs))], |row| {
                    Ok((row.get(0)?, row.get::<_, f64>(1)?.max(0.0)))
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn samples(&mut self, run_id: &str) -> Result<Vec<Sample>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples WHERE run_id = ?1 ORDER BY time, sample_id"
            ))
            .and_then(|mut st| st.query_map([run_id], map_sample)?.collect())
            .map_err(db_err)
    }

    fn latest_samples(&mut self, run_ids: &[&str]) -> Result<Vec<(String, Sample)>> {
        let ids = serde_json::to_string(run_ids).map_err(|e| Error::storage_refused("json", e))?;
        // One index probe per run (samples_run_time), newest first.
        self.conn
            .prepare_cached(&format!(
                "SELECT ids.value, {SAMPLE_COLUMNS} FROM json_each(?1) ids
                   JOIN samples ON samples.sample_id = (
                        SELECT x.sample_id FROM samples x WHERE x.run_id = ids.value
                         ORDER BY x.time DESC, x.sample_id DESC LIMIT 1)"
            ))
            .and_then(|mut st| {
                st.query_map([ids], |row| {
                    let run_id: String = row.get(0)?;
                    Ok((run_id, sample_at(row, 1)?))
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn thin_samples(&mut self, run_id: &str, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.write_tx()?;
        let old: Vec<(i64, DateTime<Utc>)> = tx
            .prepare_cached("SELECT sample_id, time FROM samples WHERE run_id = ?1 AND time < ?2")
            .and_then(|mut st| {
                st.query_map(params![run_id, ts(now - chrono::Duration::hours(2))], |r| {
                    Ok((r.get(0)?, parse_ts(&r.get::<_, String>(1)?)?))
                })?
                .collect()
            })
            .map_err(db_err)?;
        let gone = crate::sampler::thin(&old, now);
        for chunk in gone.chunks(500) {
            let ids =
                serde_json::to_string(chunk).map_err(|e| Error::storage_refused("json", e))?;
            tx.execute(
                "DELETE FROM samples WHERE sample_id IN (SELECT value FROM json_each(?1))",
                [ids],
            )
            .map_err(db_err)?;
        }
        tx.commit()?;
        Ok(gone.len())
    }

    fn log_state(&mut self, run_id: &str) -> Result<Option<crate::logs::LogState>> {
        logs::log_state(&self.conn, run_id)
    }

    fn run_logs(
        &mut self,
        run_id: &str,
        filter: &crate::logs::LogFilter,
    ) -> Result<Vec<crate::logs::LogRow>> {
        logs::run_logs(&self.conn, run_id, filter)
    }

    fn item_outcomes(
        &mut self,
        run_id: &str,
        filter: &crate::logs::OutcomeFilter,
    ) -> Result<Vec<crate::logs::ItemOutcomeRow>> {
        logs::item_outcomes(&self.conn, run_id, filter)
    }

    fn item_outcome_counts(&mut self, run_id: &str) -> Result<Vec<crate::logs::OutcomeCount>> {
        logs::item_outcome_counts(&self.conn, run_id)
    }

    fn run_io(&mut self, run_id: &str) -> Result<Vec<IoRow>> {
        self.conn
            .prepare_cached(
                "SELECT run_id, direction, name, value, path, size_bytes, modified, sha256,
                    recorded_at
                 FROM run_io WHERE run_id = ?1 ORDER BY direction, name",
            )
            .and_then(|mut st| {
                st.query_map([run_id], |row| {
                    let direction: String = row.get(1)?;
                    Ok(IoRow {
                        run_id: row.get(0)?,
                        record: IoRecord {
                            direction: direction.parse().map_err(|e: Error| {
                                rusqlite::Error::FromSqlConversionFailure(
                                    1,
                                    rusqlite::types::Type::Text,
                                    Box::new(e),
                                )
                            })?,
                            name: row.get(2)?,
                            value: row.get(3)?,
                            path: row.get(4)?,
                            size_bytes: row.get(5)?,
                            modified: opt_ts(row, 6)?,
                            sha256: row.get(7)?,
                        },
                        recorded_at: parse_ts(&row.get::<_, String>(8)?)?,
                    })
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn registered_tasks(
        &mut self,
        stage: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<TaskRow>> {
        let sql = format!(
            "SELECT s.stage_id, s.stage_name, s.stage_order, t.task_id, t.task_name, t.task_type,
                t.task_order, t.description, t.script_path, t.script_filename, t.log_path,
                t.log_filename, t.created_at, t.updated_at
             FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
             WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
             ORDER BY {STAGE_TASK_ORDER}"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(params![stage, name], |r| {
                    Ok(TaskRow {
                        stage_id: r.get(0)?,
                        stage_name: r.get(1)?,
                        stage_order: r.get(2)?,
                        task_id: r.get(3)?,
                        task_name: r.get(4)?,
                        task_type: r.get(5)?,
                        task_order: r.get(6)?,
                        description: r.get(7)?,
                        script_path: r.get(8)?,
                        script_filename: r.get(9)?,
                        log_path: r.get(10)?,
                        log_filename: r.get(11)?,
                        created_at: parse_ts(&r.get::<_, String>(12)?)?,
                        updated_at: parse_ts(&r.get::<_, String>(13)?)?,
                    })
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn stages(&mut self) -> Result<Vec<StageRow>> {
        self.conn
            .prepare_cached(
                "SELECT stage_id, stage_name, stage_order, description, created_at, updated_at
                 FROM stages ORDER BY COALESCE(stage_order, 2147483647), stage_name",
            )
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok(StageRow {
                        stage_id: r.get(0)?,
                        stage_name: r.get(1)?,
                        stage_order: r.get(2)?,
                        description: r.get(3)?,
                        created_at: parse_ts(&r.get::<_, String>(4)?)?,
                        updated_at: parse_ts(&r.get::<_, String>(5)?)?,
                    })
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn wait_times(&mut self, f: &StatsFilter) -> Result<Vec<crate::dag::WaitRow>> {
        self.conn
            .prepare_cached(
                "SELECT s.stage_name, t.task_name, r.start_time, r.wait_seconds
                   FROM runs r JOIN tasks t ON t.task_id = r.task_id
                   JOIN stages s ON s.stage_id = t.stage_id
                  WHERE r.wait_seconds IS NOT NULL
                    AND (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
                    AND (?3 IS NULL OR r.start_time >= ?3)",
            )
            .and_then(|mut st| {
                st.query_map(params![f.stage, f.task, f.since.map(ts)], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        parse_ts(&r.get::<_, String>(2)?)?,
                        r.get(3)?,
                    ))
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn alert_claim(&mut self, new: &crate::alerts::NewAlert) -> Result<Option<i64>> {
        alerts::claim(&self.conn, new)
    }

    fn alerts_due(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
        only: Option<i64>,
        limit: usize,
    ) -> Result<Vec<crate::alerts::AlertRow>> {
        alerts::due(&self.conn, now, lease_until, max_attempts, only, limit)
    }

    fn alert_outcome(&mut self, id: i64, outcome: &crate::alerts::AlertOutcome) -> Result<()> {
        alerts::outcome(&self.conn, id, outcome)
    }

    fn alerts(
        &mut self,
        filter: &crate::alerts::AlertFilter,
    ) -> Result<Vec<crate::alerts::AlertRow>> {
        alerts::list(&self.conn, filter)
    }

    fn task_dependencies(&mut self) -> Result<Vec<crate::dag::DependencyRow>> {
        self.conn
            .prepare_cached(
                "SELECT s.stage_name, t.task_name, us.stage_name, u.task_name
                   FROM task_dependencies d
                   JOIN tasks t ON t.task_id = d.task_id
                   JOIN stages s ON s.stage_id = t.stage_id
                   JOIN tasks u ON u.task_id = d.depends_on
                   JOIN stages us ON us.stage_id = u.stage_id",
            )
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok(crate::dag::DependencyRow {
                        stage_name: r.get(0)?,
                        task_name: r.get(1)?,
                        upstream_stage: r.get(2)?,
                        upstream_task: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(db_err)
    }

    fn events_after(
        &mut self,
        after: i64,
        run_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>> {
        // One run's events through the (run_id, event_id) index: a plan fixed at
        // prepare time for `?2 IS NULL OR run_id = ?2` would walk every event.
        let which = if run_id.is_some() {
            "e.run_id = ?2"
        } else {
            "?2 IS NULL"
        };
        self.conn
            .prepare_cached(&format!(
                "{EVENT_COLUMNS} WHERE e.event_id > ?1 AND {which} ORDER BY e.event_id LIMIT ?3"
            ))
            .and_then(|mut st| {
                st.query_map(params![after, run_id, limit_param(Some(limit))], event_row)?
                    .collect()
            })
            .map_err(db_err)
    }
}

/// An event as the events query reads it (`event_row` maps one row).
const EVENT_COLUMNS: &str =
    "SELECT e.event_id, e.time, e.run_id, s.stage_name, t.task_name, e.subtask_number,
        e.kind, e.old_status, e.new_status, e.message
     FROM events e JOIN runs r ON r.run_id = e.run_id
     JOIN tasks t ON t.task_id = r.task_id JOIN stages s ON s.stage_id = t.stage_id";

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        event_id: r.get(0)?,
        time: parse_ts(&r.get::<_, String>(1)?)?,
        run_id: r.get(2)?,
        stage_name: r.get(3)?,
        task_name: r.get(4)?,
        subtask_number: r.get(5)?,
        kind: r.get(6)?,
        old_status: opt_status_col(r, 7)?,
        new_status: status_col(r, 8)?,
        message: r.get(9)?,
    })
}

/// Where the events a write appends will start (`None` when they are not collected).
fn event_mark(tx: &Connection, collect: bool) -> Result<Option<i64>> {
    collect.then(|| last_event_id(tx)).transpose()
}

/// The events appended since `mark` (none when they are not collected).
fn events_after_mark(tx: &Connection, mark: Option<i64>) -> Result<Vec<EventRow>> {
    mark.map_or_else(|| Ok(Vec::new()), |after| events_since(tx, after))
}

/// The newest event id, 0 when there is none. A write transaction holds the only
/// write lock, so what it appends comes after this id (and nothing else does).
fn last_event_id(tx: &Connection) -> Result<i64> {
    tx.prepare_cached("SELECT COALESCE(MAX(event_id), 0) FROM events")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(db_err)
}

/// The events appended after `after` (in this transaction), oldest first.
fn events_since(tx: &Connection, after: i64) -> Result<Vec<EventRow>> {
    tx.prepare_cached(&format!(
        "{EVENT_COLUMNS} WHERE e.event_id > ?1 ORDER BY e.event_id"
    ))
    .and_then(|mut st| st.query_map([after], event_row)?.collect())
    .map_err(db_err)
}

fn file_name(path: &str) -> Option<String> {
    Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
}

/// Items completed over all subtasks of each of these runs.
/// How much of the file statistics read through a memory mapping (the rest, if
/// any, is read as usual).
const STATS_MMAP_BYTES: i64 = 1 << 30;

/// Stage and task names by task id, of the tasks a statistics filter selects.
type TaskNames = HashMap<i64, StageTask>;
type StageTask = (Arc<str>, Arc<str>);

fn task_names(conn: &Connection, f: &StatsFilter) -> Result<TaskNames> {
    let mut names = TaskNames::new();
    conn.prepare_cached(
        "SELECT t.task_id, s.stage_name, t.task_name
           FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
          WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)",
    )
    .and_then(|mut st| {
        let mut rows = st.query(params![f.stage, f.task])?;
        while let Some(row) = rows.next()? {
            let (stage, task): (String, String) = (row.get(1)?, row.get(2)?);
            names.insert(row.get(0)?, (stage.into(), task.into()));
        }
        Ok(())
    })
    .map_err(db_err)?;
    Ok(names)
}

/// The task filter of the statistics queries (`?1`): every task, or those in `names`
/// (their runs then come from an index by task).
fn task_filter(f: &StatsFilter, names: &TaskNames) -> Result<(&'static str, Option<String>)> {
    if f.stage.is_none() && f.task.is_none() {
        return Ok(("?1 IS NULL", None));
    }
    let ids = serde_json::to_string(&names.keys().collect::<Vec<_>>())
        .map_err(|e| Error::storage_refused("json", e))?;
    Ok(("r.task_id IN (SELECT value FROM json_each(?1))", Some(ids)))
}

fn status_of(text: Option<&str>, idx: usize) -> rusqlite::Result<Status> {
    text.unwrap_or_default().parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Whether some run has a time not in the fixed form (see migration 6), from an
/// index that is empty unless so.
fn has_odd_times(conn: &Connection) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM runs INDEXED BY runs_odd_times
                         WHERE start_us IS NULL OR (end_us IS NULL AND end_time IS NOT NULL))",
    )
    .and_then(|mut st| st.query_row([], |r| r.get(0)))
    .map_err(db_err)
}

/// The runs statistics read, from the covering index `runs_stats` (numeric times,
/// no table rows): for a database whose run times are all in the fixed form.
/// What only the lost check needs is read afterwards, for active runs only.
fn summaries_from_index(
    conn: &Connection,
    f: &StatsFilter,
    names: &TaskNames,
) -> Result<Vec<RunSummary>> {
    let mut runs = Vec::new();
    scan_index(conn, f, names, |_, r| {
        runs.push(r);
        Ok(())
    })?;
    fill_live(conn, &mut runs)?;
    Ok(runs)
}

/// Reads the runs of the statistics window from the covering index `runs_stats`,
/// task by task (each task's runs together), handing each to `each` with its
/// task id. Host, pid and heartbeat are left empty (see `fill_live`).
fn scan_index(
    conn: &Connection,
    f: &StatsFilter,
    names: &TaskNames,
    mut each: impl FnMut(i64, RunSummary) -> Result<()>,
) -> Result<()> {
    let (tasks, ids) = task_filter(f, names)?;
    let sql = stats_scan::runs_stats_sql(INDEX_COLUMNS, tasks, f.limit.is_some());
    // Text times compare as the microseconds they write (`ts` truncates to them).
    let since = f.since.map(|t| t.timestamp_micros());
    let micros = |v: Option<i64>| v.and_then(DateTime::<Utc>::from_timestamp_micros);
    let mut st = conn.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = st
        .query(params![ids, since, limit_param(f.limit)])
        .map_err(db_err)?;
    // Look a task's names up once per task.
    let mut last: Option<(i64, &StageTask)> = None;
    while let Some(row) = rows.next().map_err(db_err)? {
        let mut read = || -> rusqlite::Result<Option<(i64, RunSummary)>> {
            let task_id: i64 = row.get(0)?;
            let (stage, task) = match last {
                Some((id, names)) if id == task_id => names,
                _ => match names.get(&task_id) {
                    Some(n) => {
                        last = Some((task_id, n));
                        n
                    }
                    None => return Ok(None),
                },
            };
            Ok(Some((
                task_id,
                RunSummary {
                    stage_name: Arc::clone(stage),
                    task_name: Arc::clone(task),
                    run_id: row.get(1)?,
                    status: status_of(row.get_ref(2)?.as_str_or_null()?, 2)?,
                    start_time: micros(row.get(3)?),
                    end_time: micros(row.get(4)?),
                    heartbeat_time: None,
                    hostname: None,
                    process_id: None,
                    process_start_time: None,
                    attempt: row.get(5)?,
                    retry_of: row.get(6)?,
                    items_complete: 0,
                },
            )))
        };
        if let Some((task_id, r)) = read().map_err(db_err)? {
            each(task_id, r)?;
        }
    }
    Ok(())
}

/// The columns `scan_index` reads, all in `runs_stats`.
const INDEX_COLUMNS: &str =
    "r.task_id, r.run_id, r.status, r.start_us, r.end_us, r.attempt, r.retry_of";

/// Host, pid, process start and heartbeat (else last update) of the active runs
/// among `runs`, for the lost check: one lookup each.
fn fill_live(conn: &Connection, runs: &mut [RunSummary]) -> Result<()> {
    let mut st = conn
        .prepare_cached(
            "SELECT COALESCE(heartbeat_time, last_update), hostname, process_id,
                    process_start_time
               FROM runs WHERE run_id = ?1",
        )
        .map_err(db_err)?;
    for r in runs.iter_mut().filter(|r| r.status.is_active()) {
        st.query_row([&r.run_id], |row| {
            let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                Ok(row
                    .get_ref(i)?
                    .as_str_or_null()?
                    .and_then(|t| parse_ts(t).ok()))
            };
            Ok((time(0)?, row.get(1)?, row.get(2)?, time(3)?))
        })
        .map(|(beat, host, pid, started)| {
            r.heartbeat_time = beat;
            r.hostname = host;
            r.process_id = pid;
            r.process_start_time = started;
        })
        .map_err(db_err)?;
    }
    Ok(())
}

/// The runs statistics read, from the table with its text times: for a database
/// with times not in the fixed form (which the index leaves out), and the
/// reference the index's reading is checked against.
fn summaries_from_text(
    conn: &Connection,
    f: &StatsFilter,
    names: &TaskNames,
) -> Result<Vec<RunSummary>> {
    // What only the lost check needs, only for active runs; no ORDER BY
    // (statistics need none); the window only when a limit asks for it.
    const COLUMNS: &str = "r.task_id, r.run_id, r.status, r.start_time, r.end_time,
        r.attempt, r.retry_of, CASE WHEN r.status IN ('STARTED','RUNNING','PAUSED') THEN
          json_array(COALESCE(r.heartbeat_time, r.last_update), r.hostname, r.process_id,
                     r.process_start_time) END";
    let (tasks, ids) = task_filter(f, names)?;
    let sql = match f.limit {
        None => format!(
            "SELECT {COLUMNS} FROM runs r
              WHERE {tasks} AND (?2 IS NULL OR r.start_time >= ?2) AND ?3 < 0"
        ),
        Some(_) => format!(
            "SELECT * FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (
                PARTITION BY r.task_id ORDER BY r.start_time DESC, r.run_id DESC) AS n
               FROM runs r WHERE {tasks} AND (?2 IS NULL OR r.start_time >= ?2))
              WHERE n <= ?3"
        ),
    };
    let mut runs = Vec::new();
    conn.prepare_cached(&sql)
        .and_then(|mut st| {
            let mut rows = st.query(params![ids, f.since.map(ts), limit_param(f.limit)])?;
            while let Some(row) = rows.next()? {
                let Some((stage, task)) = names.get(&row.get::<_, i64>(0)?) else {
                    continue;
                };
                let text = |i: usize| -> rusqlite::Result<Option<&str>> {
                    Ok(row.get_ref(i)?.as_str_or_null()?)
                };
                let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                    text(i)?.map(parse_ts).transpose()
                };
                let mut r = RunSummary {
                    stage_name: Arc::clone(stage),
                    task_name: Arc::clone(task),
                    run_id: row.get(1)?,
                    status: status_of(text(2)?, 2)?,
                    start_time: time(3)?,
                    end_time: time(4)?,
                    heartbeat_time: None,
                    hostname: None,
                    process_id: None,
                    process_start_time: None,
                    attempt: row.get(5)?,
                    retry_of: row.get(6)?,
                    items_complete: 0,
                };
                if let Some(live) = text(7)? {
                    // [beat, host, pid, process start] of an active run.
                    let v: (Option<String>, Option<String>, Option<i64>, Option<String>) =
                        serde_json::from_str(live).unwrap_or_default();
                    r.heartbeat_time = v.0.as_deref().and_then(|t| parse_ts(t).ok());
                    r.hostname = v.1;
                    r.process_id = v.2;
                    r.process_start_time = v.3.as_deref().and_then(|t| parse_ts(t).ok());
                }
                runs.push(r);
            }
            Ok(())
        })
        .map_err(db_err)?;
    Ok(runs)
}

fn items_of_runs(conn: &Connection, run_ids: &[&str]) -> Result<HashMap<String, i64>> {
    if run_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = serde_json::to_string(run_ids).map_err(|e| Error::storage_refused("json", e))?;
    conn.prepare_cached(
        "SELECT x.run_id, SUM(x.items_complete) FROM json_each(?1) ids
           JOIN subtasks x ON x.run_id = ids.value GROUP BY x.run_id",
    )
    .and_then(|mut st| {
        st.query_map([ids], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    })
    .map_err(db_err)
}

/// The columns a [`Sample`] is read from, in `sample_at`'s order.
const SAMPLE_COLUMNS: &str = "time, pid, cpu_seconds, cpu_percent, rss_bytes, peak_rss_bytes, \
    read_bytes, write_bytes, threads, open_fds, children, children_cpu_seconds, children_rss_bytes";

fn map_sample(row: &rusqlite::Row<'_>) -> rusqlite::Result<Sample> {
    sample_at(row, 0)
}

/// A sample from `SAMPLE_COLUMNS`, starting at column `at`.
fn sample_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Sample> {
    let u = |i: usize| row.get::<_, i64>(at + i).map(|v| v.max(0) as u64);
    let ou = |i: usize| {
        row.get::<_, Option<i64>>(at + i)
            .map(|v| v.map(|v| v.max(0) as u64))
    };
    Ok(Sample {
        time: parse_ts(&row.get::<_, String>(at)?)?,
        pid: row.get(at + 1)?,
        cpu_seconds: row.get(at + 2)?,
        cpu_percent: row.get(at + 3)?,
        rss_bytes: u(4)?,
        peak_rss_bytes: ou(5)?,
        read_bytes: ou(6)?,
        write_bytes: ou(7)?,
        threads: row.get(at + 8)?,
        open_fds: row.get(at + 9)?,
        children: row.get(at + 10)?,
        children_cpu_seconds: row.get(at + 11)?,
        children_rss_bytes: u(12)?,
    })
}
