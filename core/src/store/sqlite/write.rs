//! Every write of the SQLite store, one function per `Op`, each run inside a
//! transaction the caller opened (one op, or a batch of queued ops with a
//! savepoint each). Transitions are checked against the stored status inside
//! that transaction, because other processes change the same rows.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::io_record::IoRecord;
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::store::{
    new_uid, NewRun, Op, OpId, Output, ProgressUpdate, RunSample, SubtaskRef, TASKER_VERSION,
};

use super::{db_err, file_name, ts};

/// Writers not heard of for this long are forgotten (their ids are never reused).
const FORGET_WRITERS_AFTER_DAYS: i64 = 30;

const TERMINAL: &str = "('COMPLETED','FAILED','SKIPPED','CANCELLED')";

/// Applies `op` at most once for `id` (see `Store::apply`).
pub(super) fn apply_once(tx: &Connection, op: &Op, id: Option<&OpId>) -> Result<Output> {
    if let Some(id) = id {
        if !writer_step(tx, id, op.at())? {
            return duplicate(tx, op);
        }
    }
    match apply(tx, op) {
        // A queued run start whose run exists: it was this start, applied before.
        Err(Error::AlreadyExists { .. }) if id.is_some() && matches!(op, Op::StartRun(_)) => {
            Ok(Output::Duplicate)
        }
        other => other,
    }
}

fn apply(tx: &Connection, op: &Op) -> Result<Output> {
    match op {
        Op::Register { specs, at } => register(tx, specs, *at).map(Output::Registered),
        Op::StartRun(run) => start_run(tx, run).map(|()| Output::RunStarted),
        Op::RunTransition {
            run_id,
            to,
            info,
            at,
        } => run_transition(tx, run_id, *to, info, *at),
        Op::SubtaskStart {
            run_id,
            uid,
            name,
            options,
            at,
            renumber_if_taken,
        } => {
            let uid = uid.clone().unwrap_or_else(new_uid);
            subtask_start(tx, run_id, &uid, name, options, *at, *renumber_if_taken)
                .map(|number| Output::SubtaskStarted { number })
        }
        Op::SubtaskTransition {
            run_id,
            subtask,
            to,
            info,
            at,
        } => subtask_transition(tx, run_id, subtask, *to, info, *at),
        Op::Progress {
            updates,
            heartbeats,
            samples,
            logs,
            at,
        } => {
            let out = progress(tx, updates, heartbeats, *at)?;
            insert_samples(tx, samples)?;
            if !logs.is_empty() {
                super::logs::apply_logs(tx, logs)?;
            }
            Ok(out)
        }
        Op::RecordIo { run_id, record, at } => record_io(tx, run_id, record, *at),
    }
}

fn record_io(tx: &Connection, run_id: &str, r: &IoRecord, at: DateTime<Utc>) -> Result<Output> {
    stored_run_status(tx, run_id)?;
    tx.prepare_cached(
        "INSERT INTO run_io(run_id, direction, name, value, path, size_bytes, modified, sha256,
            recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(run_id, direction, name) DO UPDATE SET value = excluded.value,
            path = excluded.path, size_bytes = excluded.size_bytes,
            modified = excluded.modified, sha256 = excluded.sha256,
            recorded_at = excluded.recorded_at",
    )
    .and_then(|mut st| {
        st.execute(params![
            run_id,
            r.direction.as_str(),
            r.name,
            r.value,
            r.path,
            r.size_bytes,
            r.modified.map(ts),
            r.sha256,
            ts(at)
        ])
    })
    .map_err(db_err)?;
    Ok(Output::Recorded)
}

/// Records `id` as the writer's latest applied write; false if it was applied before.
fn writer_step(tx: &Connection, id: &OpId, at: DateTime<Utc>) -> Result<bool> {
    let now = ts(at);
    let fresh = tx
        .prepare_cached(
            "INSERT INTO writers(writer_id, seq, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT(writer_id) DO UPDATE SET seq = excluded.seq, last_seen = excluded.last_seen
                WHERE seq < excluded.seq",
        )
        .and_then(|mut st| st.execute(params![&*id.writer, id.seq as i64, now]))
        .map_err(db_err)?
        > 0;
    if fresh && id.seq == 1 {
        let cutoff = ts(at - chrono::Duration::days(FORGET_WRITERS_AFTER_DAYS));
        tx.prepare_cached("DELETE FROM writers WHERE last_seen < ?1")
            .and_then(|mut st| st.execute([cutoff]))
            .map_err(db_err)?;
    }
    Ok(fresh)
}

/// What a write applied before answers now: a subtask start still tells its number.
fn duplicate(tx: &Connection, op: &Op) -> Result<Output> {
    if let Op::SubtaskStart {
        run_id,
        uid: Some(uid),
        ..
    } = op
    {
        if let Some(number) = number_of_uid(tx, run_id, uid)? {
            return Ok(Output::SubtaskStarted { number });
        }
    }
    Ok(Output::Duplicate)
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

fn number_of_uid(tx: &Connection, run_id: &str, uid: &str) -> Result<Option<u32>> {
    tx.prepare_cached("SELECT subtask_number FROM subtasks WHERE subtask_uid = ?1 AND run_id = ?2")
        .and_then(|mut st| st.query_row(params![uid, run_id], |r| r.get(0)).optional())
        .map_err(db_err)
}

/// The stored number and status of the subtask a write is about.
fn find_subtask(tx: &Connection, run_id: &str, sub: &SubtaskRef) -> Result<(u32, Status)> {
    let found = match &sub.uid {
        Some(uid) => match number_of_uid(tx, run_id, uid)? {
            Some(n) => stored_subtask_status(tx, run_id, n)?.map(|s| (n, s)),
            None => None,
        },
        None => stored_subtask_status(tx, run_id, sub.number)?.map(|s| (sub.number, s)),
    };
    found.ok_or_else(|| Error::not_found("subtask", format!("{} of run {run_id}", sub.number)))
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

fn register(tx: &Connection, specs: &[TaskSpec], at: DateTime<Utc>) -> Result<Vec<i64>> {
    let now = ts(at);
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
    Ok(ids)
}

fn start_run(tx: &Connection, run: &NewRun) -> Result<()> {
    let now = ts(run.start_time);
    let task_id = ensure_task(tx, &run.stage, &run.task, &now)?;
    let o = &run.options;
    let (attempt, retry_of) = attempt_of(tx, task_id, run)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, process_start_time,
                user_name, status, start_time, last_update, heartbeat_time, total_subtasks,
                message, version, git_commit, script_path, script_filename, log_path,
                log_filename, metadata, command_line, git_dirty, runtime, tasker_version,
                attempt, retry_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'STARTED', ?8, ?8, ?8, ?9, ?10, ?11, ?12,
                ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
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
                o.script_filename
                    .clone()
                    .or_else(|| o.script_path.as_deref().and_then(file_name)),
                o.log_path,
                o.log_filename
                    .clone()
                    .or_else(|| o.log_path.as_deref().and_then(file_name)),
                o.metadata.as_ref().map(|m| m.to_string()),
                o.command_line,
                o.git_dirty,
                o.runtime,
                TASKER_VERSION,
                attempt,
                retry_of,
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
        tx,
        &now,
        &run.run_id,
        None,
        "run",
        Some(Status::NotStarted),
        Status::Started,
        o.message.as_deref(),
    )
}

/// The attempt number of a new run and the run it retries (the same rule as the
/// PostgreSQL store's `start_run`): an explicit attempt above 1 retries the task's
/// latest run; `retry` counts on from the latest run when it failed or was lost.
fn attempt_of(tx: &Connection, task_id: i64, run: &NewRun) -> Result<(i64, Option<String>)> {
    let o = &run.options;
    let explicit = o.attempt.map(i64::from);
    if !o.retry && explicit.is_none_or(|a| a <= 1) {
        return Ok((explicit.unwrap_or(1), None));
    }
    let latest = tx
        .prepare_cached(
            "SELECT run_id, status, attempt, COALESCE(heartbeat_time, last_update) FROM runs
              WHERE task_id = ?1 AND run_id <> ?2
              ORDER BY start_time DESC, run_id DESC LIMIT 1",
        )
        .and_then(|mut st| {
            st.query_row(params![task_id, run.run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()
        })
        .map_err(db_err)?;
    let Some((prev, status, prev_attempt, beat)) = latest else {
        return Ok((explicit.unwrap_or(1), None));
    };
    if let Some(a) = explicit {
        return Ok((a, (a > 1).then_some(prev)));
    }
    let lost_before = ts(run.lost_before);
    let lost = run.known_lost.as_deref() == Some(prev.as_str())
        || (matches!(status.as_str(), "STARTED" | "RUNNING" | "PAUSED")
            && beat.is_some_and(|b| b < lost_before));
    if status == "FAILED" || lost {
        Ok((prev_attempt + 1, Some(prev)))
    } else {
        Ok((1, None))
    }
}

fn run_transition(
    tx: &Connection,
    run_id: &str,
    to: Status,
    info: &TransitionInfo,
    at: DateTime<Utc>,
) -> Result<Output> {
    let now = ts(at);
    let from = stored_run_status(tx, run_id)?;
    if from == to && !info.reset {
        keep_status(tx, "runs", run_id, None, to, info, &now)?;
        return Ok(Output::Transition {
            from,
            changed: false,
        });
    }
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
    let end_time = to.is_terminal().then_some(now.as_str());
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
    insert_event(tx, &now, run_id, None, kind, Some(from), to, msg)?;
    Ok(Output::Transition {
        from,
        changed: true,
    })
}

/// A transition to the status it already has writes no event and changes
/// nothing; only an unfinished one takes a new message (a progress note).
fn keep_status(
    tx: &Connection,
    table: &str,
    run_id: &str,
    number: Option<u32>,
    status: Status,
    info: &TransitionInfo,
    now: &str,
) -> Result<()> {
    let Some(message) = info.message.as_deref().filter(|_| !status.is_terminal()) else {
        return Ok(());
    };
    let sql = match table {
        "runs" => "UPDATE runs SET message = ?2, last_update = ?3 WHERE run_id = ?1",
        _ => {
            "UPDATE subtasks SET message = ?2, last_update = ?3
             WHERE run_id = ?1 AND subtask_number = ?4"
        }
    };
    tx.prepare_cached(sql)
        .and_then(|mut st| match number {
            None => st.execute(params![run_id, message, now]),
            Some(n) => st.execute(params![run_id, message, now, n]),
        })
        .map_err(db_err)?;
    Ok(())
}

fn next_free_number(tx: &Connection, run_id: &str) -> Result<u32> {
    let n: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(subtask_number), 0) + 1 FROM subtasks WHERE run_id = ?1",
        )
        .and_then(|mut st| st.query_row([run_id], |r| r.get(0)))
        .map_err(db_err)?;
    u32::try_from(n).map_err(|_| Error::invalid("subtask_number", n, "is out of range"))
}

fn subtask_start(
    tx: &Connection,
    run_id: &str,
    uid: &str,
    name: &str,
    opts: &SubtaskOptions,
    at: DateTime<Utc>,
    renumber_if_taken: bool,
) -> Result<u32> {
    let now = ts(at);
    let run_status = stored_run_status(tx, run_id)?;
    if let Some(number) = number_of_uid(tx, run_id, uid)? {
        return Ok(number); // this start, applied before
    }
    if run_status.is_terminal() {
        return Err(Error::InvalidTransition {
            what: format!("run {run_id} (starting subtask {name:?})"),
            from: run_status,
            to: Status::Running,
        });
    }
    let (number, previous) = match opts.number {
        Some(n) => match stored_subtask_status(tx, run_id, n)? {
            Some(_) if !opts.restart && renumber_if_taken => (next_free_number(tx, run_id)?, None),
            Some(_) if !opts.restart => {
                return Err(Error::AlreadyExists {
                    what: "subtask".into(),
                    key: format!("{n} of run {run_id} (pass restart to start it again from zero)"),
                })
            }
            previous => (n, previous),
        },
        None => (next_free_number(tx, run_id)?, None),
    };
    let items_total = opts.items_total.map(|t| t as i64);
    if previous.is_some() {
        tx.prepare_cached(
            "UPDATE subtasks SET subtask_name = ?3, status = 'STARTED', start_time = ?4,
                end_time = NULL, last_update = ?4, items_total = ?5, items_complete = 0,
                percent = NULL, message = ?6, error_message = NULL, error_detail = NULL,
                subtask_uid = ?7
             WHERE run_id = ?1 AND subtask_number = ?2",
        )
        .and_then(|mut st| {
            st.execute(params![
                run_id,
                number,
                name,
                now,
                items_total,
                opts.message,
                uid
            ])
        })
        .map_err(db_err)?;
    } else {
        tx.prepare_cached(
            "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time,
                last_update, items_total, message, subtask_uid)
             VALUES (?1, ?2, ?3, 'STARTED', ?4, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                run_id,
                number,
                name,
                now,
                items_total,
                opts.message,
                uid
            ])
        })
        .map_err(db_err)?;
    }
    let kind = if previous.is_some() {
        "reset"
    } else {
        "subtask"
    };
    insert_event(
        tx,
        &now,
        run_id,
        Some(number),
        kind,
        Some(previous.unwrap_or(Status::NotStarted)),
        Status::Started,
        Some(name),
    )?;
    tx.prepare_cached("UPDATE runs SET current_subtask = ?2, last_update = ?3 WHERE run_id = ?1")
        .and_then(|mut st| st.execute(params![run_id, number, now]))
        .map_err(db_err)?;
    if run_status == Status::Started {
        tx.prepare_cached("UPDATE runs SET status = 'RUNNING' WHERE run_id = ?1")
            .and_then(|mut st| st.execute([run_id]))
            .map_err(db_err)?;
        insert_event(
            tx,
            &now,
            run_id,
            None,
            "run",
            Some(Status::Started),
            Status::Running,
            None,
        )?;
    }
    Ok(number)
}

fn subtask_transition(
    tx: &Connection,
    run_id: &str,
    sub: &SubtaskRef,
    to: Status,
    info: &TransitionInfo,
    at: DateTime<Utc>,
) -> Result<Output> {
    let now = ts(at);
    stored_run_status(tx, run_id)?;
    let (number, from) = find_subtask(tx, run_id, sub)?;
    if from == to && !info.reset {
        keep_status(tx, "subtasks", run_id, Some(number), to, info, &now)?;
        return Ok(Output::Transition {
            from,
            changed: false,
        });
    }
    if !info.reset {
        from.check_transition(to, &format!("subtask {number} of run {run_id}"))?;
    }
    let end_time = to.is_terminal().then_some(now.as_str());
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
    insert_event(tx, &now, run_id, Some(number), kind, Some(from), to, msg)?;
    Ok(Output::Transition {
        from,
        changed: true,
    })
}

/// One flush. An update of a finished subtask still adds its items (they were
/// made before it finished, in another process) but sets nothing.
/// Stores resource samples of runs that exist (a run deleted meanwhile: dropped).
fn insert_samples(tx: &Connection, samples: &[RunSample]) -> Result<()> {
    for RunSample { run_id, sample: x } in samples {
        tx.prepare_cached(
            "INSERT INTO samples(run_id, time, pid, cpu_seconds, cpu_percent, rss_bytes,
                peak_rss_bytes, read_bytes, write_bytes, threads, open_fds, children,
                children_cpu_seconds, children_rss_bytes)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
              WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)",
        )
        .and_then(|mut st| {
            st.execute(params![
                &**run_id,
                ts(x.time),
                x.pid,
                x.cpu_seconds,
                x.cpu_percent,
                i64_of(x.rss_bytes),
                x.peak_rss_bytes.map(i64_of),
                x.read_bytes.map(i64_of),
                x.write_bytes.map(i64_of),
                x.threads,
                x.open_fds,
                x.children,
                x.children_cpu_seconds,
                i64_of(x.children_rss_bytes),
            ])
        })
        .map_err(db_err)?;
    }
    Ok(())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn progress(
    tx: &Connection,
    updates: &[ProgressUpdate],
    heartbeats: &[std::sync::Arc<str>],
    at: DateTime<Utc>,
) -> Result<Output> {
    let now = ts(at);
    let mut finished = Vec::new();
    let mut touched: Vec<&str> = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        let run_id: &str = &u.run_id;
        if !touched.contains(&run_id) {
            touched.push(run_id);
        }
        let Some(number) = u.subtask else {
            tx.prepare_cached(
                "UPDATE runs SET
                    current_subtask = COALESCE(?2, current_subtask),
                    overall_percent = COALESCE(?3, overall_percent),
                    message = COALESCE(?4, message)
                 WHERE run_id = ?1",
            )
            .and_then(|mut st| st.execute(params![run_id, u.current_subtask, u.percent, u.message]))
            .map_err(db_err)?;
            continue;
        };
        let set = format!(
            "UPDATE subtasks SET
                items_complete = CASE WHEN status IN {TERMINAL} THEN items_complete
                                      ELSE COALESCE(?3, items_complete) END + ?4,
                items_total = CASE WHEN status IN {TERMINAL} THEN items_total
                                   ELSE COALESCE(?5, items_total) END,
                percent = CASE WHEN status IN {TERMINAL} THEN percent ELSE COALESCE(?6, percent) END,
                message = CASE WHEN status IN {TERMINAL} THEN message ELSE COALESCE(?7, message) END,
                last_update = CASE WHEN status IN {TERMINAL} THEN last_update ELSE ?8 END"
        );
        let sql = match u.subtask_uid {
            Some(_) => format!(
                "{set} WHERE subtask_uid = ?2 AND run_id = ?1 RETURNING subtask_number, status"
            ),
            None => format!(
                "{set} WHERE run_id = ?1 AND subtask_number = ?2 RETURNING subtask_number, status"
            ),
        };
        let key: &dyn rusqlite::ToSql = match &u.subtask_uid {
            Some(uid) => uid,
            None => &number,
        };
        let row: Option<(u32, String)> = tx
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_row(
                    params![
                        run_id,
                        key,
                        u.items_set.map(|v| v as i64),
                        u.items_delta as i64,
                        u.items_total.map(|v| v as i64),
                        u.percent,
                        u.message,
                        now
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .map_err(db_err)?;
        let Some((stored, status)) = row else {
            continue; // no such subtask (any more): nothing to count it on
        };
        let status: Status = status.parse()?;
        if status.is_terminal() {
            finished.push((i, status));
        } else if status == Status::Started {
            tx.prepare_cached(
                "UPDATE subtasks SET status = 'RUNNING' WHERE run_id = ?1 AND subtask_number = ?2",
            )
            .and_then(|mut st| st.execute(params![run_id, stored]))
            .map_err(db_err)?;
            insert_event(
                tx,
                &now,
                run_id,
                Some(stored),
                "subtask",
                Some(Status::Started),
                Status::Running,
                None,
            )?;
        }
    }
    for run_id in touched {
        let moved = tx
            .prepare_cached(
                "UPDATE runs SET status = 'RUNNING' WHERE run_id = ?1 AND status = 'STARTED'",
            )
            .and_then(|mut st| st.execute([run_id]))
            .map_err(db_err)?;
        if moved > 0 {
            insert_event(
                tx,
                &now,
                run_id,
                None,
                "run",
                Some(Status::Started),
                Status::Running,
                None,
            )?;
        }
        tx.prepare_cached("UPDATE runs SET last_update = ?2 WHERE run_id = ?1")
            .and_then(|mut st| st.execute(params![run_id, now]))
            .map_err(db_err)?;
    }
    for run_id in heartbeats {
        tx.prepare_cached("UPDATE runs SET heartbeat_time = ?2 WHERE run_id = ?1")
            .and_then(|mut st| st.execute(params![&**run_id, now]))
            .map_err(db_err)?;
    }
    Ok(Output::Progress { finished })
}
