//! The embedded default: one SQLite file that many processes on one host share.
//! WAL so readers never block the writer, a busy timeout so writers queue
//! instead of failing, foreign keys on, synchronous=NORMAL (a commit survives a
//! process crash; a power cut may lose the last commits but never corrupts).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::query::{
    EventRow, HistoryFilter, RunRow, StageRow, StatusFilter, SubtaskRow, TaskRow,
    DEFAULT_HISTORY_LIMIT,
};

use super::{NewRun, ProgressUpdate, RunSelector, Store};

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
];

/// Timestamps are stored as fixed-width UTC text so that text order is time order.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format(TS_FORMAT).to_string()
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
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
        ) => Error::storage("sqlite", e),
        _ => Error::storage_refused("sqlite", e),
    }
}

pub struct SqliteStore {
    conn: Connection,
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
                Error::storage(
                    "sqlite",
                    format!("cannot create directory {}: {e}", dir.display()),
                )
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::storage("sqlite", format!("cannot open {}: {e}", path.display()))
        })?;
        let mut store = SqliteStore { conn };
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
                    return Err(Error::storage(
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

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per column of the events table"
)]
fn insert_event(
    tx: &Connection,
    now: &str,
    run_id: &str,
    subtask: Option<u32>,
    kind: &str,
    old: Option<Status>,
    new: Status,
    message: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            now,
            run_id,
            subtask,
            kind,
            old.map(Status::as_str),
            new.as_str(),
            message
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

fn stored_run_status(tx: &Connection, run_id: &str) -> Result<Status> {
    let s: Option<String> = tx
        .prepare_cached("SELECT status FROM runs WHERE run_id = ?1")
        .and_then(|mut st| st.query_row([run_id], |r| r.get(0)).optional())
        .map_err(db_err)?;
    s.ok_or_else(|| Error::not_found("run", run_id))?.parse()
}

fn stored_subtask_status(tx: &Connection, run_id: &str, number: u32) -> Result<Option<Status>> {
    let s: Option<String> = tx
        .prepare_cached("SELECT status FROM subtasks WHERE run_id = ?1 AND subtask_number = ?2")
        .and_then(|mut st| {
            st.query_row(params![run_id, number], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?;
    s.map(|s| s.parse()).transpose()
}

/// Finds or creates the stage and task of a run (names only; nothing else changes).
fn ensure_task(tx: &Connection, stage: &str, task: &str, now: &str) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO stages(stage_name, created_at, updated_at) VALUES (?1, ?2, ?2)
         ON CONFLICT(stage_name) DO NOTHING",
    )
    .and_then(|mut st| st.execute(params![stage, now]))
    .map_err(db_err)?;
    tx.prepare_cached(
        "INSERT INTO tasks(stage_id, task_name, created_at, updated_at)
         SELECT stage_id, ?2, ?3, ?3 FROM stages WHERE stage_name = ?1
         ON CONFLICT(stage_id, task_name) DO NOTHING",
    )
    .and_then(|mut st| st.execute(params![stage, task, now]))
    .map_err(db_err)?;
    tx.prepare_cached(
        "SELECT t.task_id FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
         WHERE s.stage_name = ?1 AND t.task_name = ?2",
    )
    .and_then(|mut st| st.query_row(params![stage, task], |r| r.get(0)))
    .map_err(db_err)
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
    (SELECT COUNT(*) FROM subtasks x WHERE x.run_id = r.run_id)";

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
        lost: false,
        duration_seconds: None,
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
    })
}

fn limit_param(limit: Option<usize>) -> i64 {
    limit.map(|l| l.min(i64::MAX as usize) as i64).unwrap_or(-1)
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn register_tasks(&mut self, specs: &[TaskSpec], now: DateTime<Utc>) -> Result<Vec<i64>> {
        let now = ts(now);
        let tx = self.write_tx()?;
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            let stage_id: i64 = tx
                .prepare_cached(
                    "INSERT INTO stages(stage_name, stage_order, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT(stage_name) DO UPDATE SET
                        stage_order = COALESCE(excluded.stage_order, stage_order),
                        updated_at = excluded.updated_at
                     RETURNING stage_id",
                )
                .and_then(|mut st| {
                    st.query_row(params![spec.stage, spec.stage_order, now], |r| r.get(0))
                })
                .map_err(db_err)?;
            let task_id: i64 = tx
                .prepare_cached(
                    "INSERT INTO tasks(stage_id, task_name, task_type, task_order, description,
                        script_path, script_filename, log_path, log_filename, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                     ON CONFLICT(stage_id, task_name) DO UPDATE SET
                        task_type = COALESCE(excluded.task_type, task_type),
                        task_order = COALESCE(excluded.task_order, task_order),
                        description = COALESCE(excluded.description, description),
                        script_path = COALESCE(excluded.script_path, script_path),
                        script_filename = COALESCE(excluded.script_filename, script_filename),
                        log_path = COALESCE(excluded.log_path, log_path),
                        log_filename = COALESCE(excluded.log_filename, log_filename),
                        updated_at = excluded.updated_at
                     RETURNING task_id",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            stage_id,
                            spec.name,
                            spec.task_type,
                            spec.task_order,
                            spec.description,
                            spec.script_path,
                            spec.effective_script_filename(),
                            spec.log_path,
                            spec.effective_log_filename(),
                            now
                        ],
                        |r| r.get(0),
                    )
                })
                .map_err(db_err)?;
            ids.push(task_id);
        }
        tx.commit()?;
        Ok(ids)
    }

    fn start_run(&mut self, run: &NewRun) -> Result<()> {
        let now = ts(run.start_time);
        let tx = self.write_tx()?;
        let task_id = ensure_task(&tx, &run.stage, &run.task, &now)?;
        let o = &run.options;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, process_start_time,
                    user_name, status, start_time, last_update, heartbeat_time, total_subtasks,
                    message, version, git_commit, script_path, script_filename, log_path,
                    log_filename, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'STARTED', ?8, ?8, ?8, ?9, ?10, ?11, ?12,
                    ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT(run_id) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run.run_id,
                    task_id,
                    run.facts.hostname,
                    run.facts.pid,
                    run.facts.parent_pid,
                    run.facts.process_start.map(ts),
                    run.facts.user,
                    now,
                    o.total_subtasks,
                    o.message,
                    o.version,
                    o.git_commit,
                    o.script_path,
                    o.script_filename.clone().or_else(|| o.script_path.as_deref().and_then(file_name)),
                    o.log_path,
                    o.log_filename.clone().or_else(|| o.log_path.as_deref().and_then(file_name)),
                    o.metadata.as_ref().map(|m| m.to_string()),
                ])
            })
            .map_err(db_err)?;
        if inserted == 0 {
            return Err(Error::AlreadyExists {
                what: "run".into(),
                key: run.run_id.clone(),
            });
        }
        insert_event(
            &tx,
            &now,
            &run.run_id,
            None,
            "run",
            Some(Status::NotStarted),
            Status::Started,
            o.message.as_deref(),
        )?;
        tx.commit()
    }

    fn run_transition(
        &mut self,
        run_id: &str,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status> {
        let now = ts(now);
        let tx = self.write_tx()?;
        let from = stored_run_status(&tx, run_id)?;
        if !info.reset {
            from.check_transition(to, &format!("run {run_id}"))?;
        } else if to == Status::NotStarted {
            return Err(Error::invalid(
                "status",
                to.as_str(),
                "a run can be reset to STARTED or RUNNING, not NOT_STARTED",
            ));
        }
        if to.is_terminal() {
            // Close the run's open subtasks with the same status, recording each.
            let sub_message = match to {
                Status::Failed => Some("task failed - subtask terminated"),
                _ => None,
            };
            tx.prepare_cached(
                "INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
                 SELECT ?1, run_id, subtask_number, 'subtask', status, ?3, ?4 FROM subtasks
                 WHERE run_id = ?2 AND status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED')
                 ORDER BY subtask_number",
            )
            .and_then(|mut st| st.execute(params![now, run_id, to.as_str(), sub_message]))
            .map_err(db_err)?;
            tx.prepare_cached(
                "UPDATE subtasks SET status = ?3, end_time = ?1, last_update = ?1,
                    error_message = COALESCE(error_message, ?4)
                 WHERE run_id = ?2 AND status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED')",
            )
            .and_then(|mut st| st.execute(params![now, run_id, to.as_str(), sub_message]))
            .map_err(db_err)?;
        }
        let end_time = if to.is_terminal() {
            Some(now.as_str())
        } else {
            None
        };
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, last_update = ?3, heartbeat_time = ?3, end_time = ?4,
                message = COALESCE(?5, message),
                error_message = CASE WHEN ?8 THEN ?6 ELSE COALESCE(?6, error_message) END,
                error_detail = CASE WHEN ?8 THEN ?7 ELSE COALESCE(?7, error_detail) END
             WHERE run_id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                run_id,
                to.as_str(),
                now,
                end_time,
                info.message,
                info.error_message,
                info.error_detail,
                info.reset
            ])
        })
        .map_err(db_err)?;
        let kind = if info.reset { "reset" } else { "run" };
        let msg = info.error_message.as_deref().or(info.message.as_deref());
        insert_event(&tx, &now, run_id, None, kind, Some(from), to, msg)?;
        tx.commit()?;
        Ok(from)
    }

    fn subtask_start(
        &mut self,
        run_id: &str,
        name: &str,
        opts: &SubtaskOptions,
        now: DateTime<Utc>,
    ) -> Result<u32> {
        let now = ts(now);
        let tx = self.write_tx()?;
        let run_status = stored_run_status(&tx, run_id)?;
        if run_status.is_terminal() {
            return Err(Error::InvalidTransition {
                what: format!("run {run_id} (starting subtask {name:?})"),
                from: run_status,
                to: Status::Running,
            });
        }
        let (number, previous) = match opts.number {
            Some(n) => (n, stored_subtask_status(&tx, run_id, n)?),
            None => {
                let n: i64 = tx
                    .prepare_cached("SELECT COALESCE(MAX(subtask_number), 0) + 1 FROM subtasks WHERE run_id = ?1")
                    .and_then(|mut st| st.query_row([run_id], |r| r.get(0)))
                    .map_err(db_err)?;
                let n = u32::try_from(n)
                    .map_err(|_| Error::invalid("subtask_number", n, "is out of range"))?;
                (n, None)
            }
        };
        match previous {
            Some(_) if !opts.restart => {
                return Err(Error::AlreadyExists {
                    what: "subtask".into(),
                    key: format!(
                        "{number} of run {run_id} (pass restart to start it again from zero)"
                    ),
                })
            }
            Some(_) => {
                tx.prepare_cached(
                    "UPDATE subtasks SET subtask_name = ?3, status = 'STARTED', start_time = ?4,
                        end_time = NULL, last_update = ?4, items_total = ?5, items_complete = 0,
                        percent = NULL, message = ?6, error_message = NULL, error_detail = NULL
                     WHERE run_id = ?1 AND subtask_number = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        run_id,
                        number,
                        name,
                        now,
                        opts.items_total.map(|t| t as i64),
                        opts.message
                    ])
                })
                .map_err(db_err)?;
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time,
                        last_update, items_total, message)
                     VALUES (?1, ?2, ?3, 'STARTED', ?4, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        run_id,
                        number,
                        name,
                        now,
                        opts.items_total.map(|t| t as i64),
                        opts.message
                    ])
                })
                .map_err(db_err)?;
            }
        }
        let kind = if previous.is_some() {
            "reset"
        } else {
            "subtask"
        };
        insert_event(
            &tx,
            &now,
            run_id,
            Some(number),
            kind,
            Some(previous.unwrap_or(Status::NotStarted)),
            Status::Started,
            Some(name),
        )?;
        tx.prepare_cached(
            "UPDATE runs SET current_subtask = ?2, last_update = ?3 WHERE run_id = ?1",
        )
        .and_then(|mut st| st.execute(params![run_id, number, now]))
        .map_err(db_err)?;
        if run_status == Status::Started {
            tx.prepare_cached("UPDATE runs SET status = 'RUNNING' WHERE run_id = ?1")
                .and_then(|mut st| st.execute([run_id]))
                .map_err(db_err)?;
            insert_event(
                &tx,
                &now,
                run_id,
                None,
                "run",
                Some(Status::Started),
                Status::Running,
                None,
            )?;
        }
        tx.commit()?;
        Ok(number)
    }

    fn subtask_transition(
        &mut self,
        run_id: &str,
        number: u32,
        to: Status,
        info: &TransitionInfo,
        now: DateTime<Utc>,
    ) -> Result<Status> {
        let now = ts(now);
        let tx = self.write_tx()?;
        stored_run_status(&tx, run_id)?;
        let from = stored_subtask_status(&tx, run_id, number)?
            .ok_or_else(|| Error::not_found("subtask", format!("{number} of run {run_id}")))?;
        if !info.reset {
            from.check_transition(to, &format!("subtask {number} of run {run_id}"))?;
        }
        let end_time = if to.is_terminal() {
            Some(now.as_str())
        } else {
            None
        };
        tx.prepare_cached(
            "UPDATE subtasks SET status = ?3, last_update = ?4, end_time = ?5,
                message = COALESCE(?6, message),
                error_message = CASE WHEN ?8 THEN ?7 ELSE COALESCE(?7, error_message) END,
                error_detail = CASE WHEN ?8 THEN ?9 ELSE COALESCE(?9, error_detail) END
             WHERE run_id = ?1 AND subtask_number = ?2",
        )
        .and_then(|mut st| {
            st.execute(params![
                run_id,
                number,
                to.as_str(),
                now,
                end_time,
                info.message,
                info.error_message,
                info.reset,
                info.error_detail
            ])
        })
        .map_err(db_err)?;
        let kind = if info.reset { "reset" } else { "subtask" };
        let msg = info.error_message.as_deref().or(info.message.as_deref());
        insert_event(&tx, &now, run_id, Some(number), kind, Some(from), to, msg)?;
        tx.commit()?;
        Ok(from)
    }

    fn apply_progress(
        &mut self,
        batch: &[ProgressUpdate],
        heartbeats: &[Arc<str>],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if batch.is_empty() && heartbeats.is_empty() {
            return Ok(());
        }
        let now = ts(now);
        let tx = self.write_tx()?;
        for u in batch {
            let run_id: &str = &u.run_id;
            match u.subtask {
                Some(number) => {
                    tx.prepare_cached(
                        "UPDATE subtasks SET
                            items_complete = COALESCE(?3, items_complete) + ?4,
                            items_total = COALESCE(?5, items_total),
                            percent = COALESCE(?6, percent),
                            message = COALESCE(?7, message),
                            last_update = ?8
                         WHERE run_id = ?1 AND subtask_number = ?2",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            run_id,
                            number,
                            u.items_set.map(|v| v as i64),
                            u.items_delta as i64,
                            u.items_total.map(|v| v as i64),
                            u.percent,
                            u.message,
                            now
                        ])
                    })
                    .map_err(db_err)?;
                    let moved = tx
                        .prepare_cached(
                            "UPDATE subtasks SET status = 'RUNNING'
                             WHERE run_id = ?1 AND subtask_number = ?2 AND status = 'STARTED'",
                        )
                        .and_then(|mut st| st.execute(params![run_id, number]))
                        .map_err(db_err)?;
                    if moved > 0 {
                        insert_event(
                            &tx,
                            &now,
                            run_id,
                            Some(number),
                            "subtask",
                            Some(Status::Started),
                            Status::Running,
                            None,
                        )?;
                    }
                    tx.prepare_cached("UPDATE runs SET last_update = ?2 WHERE run_id = ?1")
                        .and_then(|mut st| st.execute(params![run_id, now]))
                        .map_err(db_err)?;
                }
                None => {
                    tx.prepare_cached(
                        "UPDATE runs SET
                            current_subtask = COALESCE(?2, current_subtask),
                            overall_percent = COALESCE(?3, overall_percent),
                            message = COALESCE(?4, message),
                            last_update = ?5
                         WHERE run_id = ?1",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            run_id,
                            u.current_subtask,
                            u.percent,
                            u.message,
                            now
                        ])
                    })
                    .map_err(db_err)?;
                }
            }
            let moved = tx
                .prepare_cached(
                    "UPDATE runs SET status = 'RUNNING' WHERE run_id = ?1 AND status = 'STARTED'",
                )
                .and_then(|mut st| st.execute([run_id]))
                .map_err(db_err)?;
            if moved > 0 {
                insert_event(
                    &tx,
                    &now,
                    run_id,
                    None,
                    "run",
                    Some(Status::Started),
                    Status::Running,
                    None,
                )?;
            }
        }
        for run_id in heartbeats {
            tx.prepare_cached("UPDATE runs SET heartbeat_time = ?2 WHERE run_id = ?1")
                .and_then(|mut st| st.execute(params![&**run_id, now]))
                .map_err(db_err)?;
        }
        tx.commit()
    }

    fn run_status(&mut self, run_id: &str) -> Result<Option<Status>> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM runs WHERE run_id = ?1")
            .and_then(|mut st| st.query_row([run_id], |r| r.get(0)).optional())
            .map_err(db_err)?;
        s.map(|s| s.parse()).transpose()
    }

    fn subtask_state(
        &mut self,
        run_id: &str,
        number: u32,
    ) -> Result<Option<(Status, Option<i64>)>> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT status, items_total FROM subtasks WHERE run_id = ?1 AND subtask_number = ?2")
            .and_then(|mut st| st.query_row(params![run_id, number], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(db_err)?;
        row.map(|(s, t)| Ok((s.parse()?, t))).transpose()
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
                      AND (NOT ?5 OR r.status <> 'FAILED'))",
                params![
                    which.stage,
                    which.task,
                    which.run_id,
                    which.before.map(ts),
                    which.keep_failed
                ],
            )
            .map_err(db_err)?;
        tx.commit()?;
        Ok(n)
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

    fn history(&mut self, filter: &HistoryFilter) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE (?1 IS NULL OR s.stage_name = ?1) AND (?2 IS NULL OR t.task_name = ?2)
               AND (?3 IS NULL OR r.status = ?3) AND (?4 IS NULL OR r.start_time >= ?4)
             ORDER BY r.start_time DESC, r.run_id DESC
             LIMIT ?5"
        );
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
                        limit_param(Some(limit))
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

    fn events_after(
        &mut self,
        after: i64,
        run_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>> {
        self.conn
            .prepare_cached(
                "SELECT e.event_id, e.time, e.run_id, s.stage_name, t.task_name, e.subtask_number,
                    e.kind, e.old_status, e.new_status, e.message
                 FROM events e JOIN runs r ON r.run_id = e.run_id
                 JOIN tasks t ON t.task_id = r.task_id JOIN stages s ON s.stage_id = t.stage_id
                 WHERE e.event_id > ?1 AND (?2 IS NULL OR e.run_id = ?2)
                 ORDER BY e.event_id LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![after, run_id, limit_param(Some(limit))], |r| {
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
                })?
                .collect()
            })
            .map_err(db_err)
    }
}

fn file_name(path: &str) -> Option<String> {
    Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
}
