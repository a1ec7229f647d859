//! Every write of the PostgreSQL store: one server function call per `Op`
//! (see `migrations/postgres/functions.sql`), on a plain connection (its own
//! transaction: one round trip) or inside a batch transaction. Refusals come back
//! as answer codes, never as server errors, so a batch goes on past them.

use std::sync::Arc;

use ::postgres::types::Json;
use ::postgres::GenericClient;
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::store::{new_uid, NewRun, Op, OpId, Output, ProgressUpdate, SubtaskRef};

use ::postgres::types::Type;

use super::{
    allowed_from, check_metadata, file_name, i64_of, ts, Fail, Statements, Typed, BACKEND, R,
};

/// Advisory lock of the events table (namespace, key of the schema).
pub(super) type EventsKey = (i32, i32);

/// Applies `op` on `c` (a connection: one transaction per function call; or an
/// open transaction). Registrations take several statements: give them a transaction.
pub(super) fn apply_on(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    op: &Op,
    id: Option<&OpId>,
) -> R<Output> {
    let writer = id.map(|i| &*i.writer);
    let seq = id.map(|i| i64_of(i.seq));
    match op {
        Op::Register { specs, at } => register(c, st, specs, *at).map(Output::Registered),
        Op::StartRun(run) => match start_run(c, st, key, run)? {
            true => Ok(Output::RunStarted),
            // A queued start of a run that exists: it was this start, applied before.
            false if id.is_some() => Ok(Output::Duplicate),
            false => Err(Fail::App(Error::AlreadyExists {
                what: "run".into(),
                key: run.run_id.clone(),
            })),
        },
        Op::RunTransition {
            run_id,
            to,
            info,
            at,
        } => run_transition(c, st, key, run_id, *to, info, *at, (writer, seq)),
        Op::SubtaskStart {
            run_id,
            uid,
            name,
            options,
            at,
            renumber_if_taken,
        } => {
            let uid = uid.clone().unwrap_or_else(new_uid);
            subtask_start(
                c,
                st,
                key,
                run_id,
                &uid,
                name,
                options,
                *at,
                *renumber_if_taken,
            )
            .map(|number| Output::SubtaskStarted { number })
        }
        Op::SubtaskTransition {
            run_id,
            subtask,
            to,
            info,
            at,
        } => subtask_transition(c, st, key, run_id, subtask, *to, info, *at, (writer, seq)),
        Op::Progress {
            updates,
            heartbeats,
            at,
        } => progress(c, st, key, updates, heartbeats, *at, (writer, seq)),
    }
}

fn register(
    c: &mut impl GenericClient,
    st: &mut Statements,
    specs: &[TaskSpec],
    at: DateTime<Utc>,
) -> R<Vec<i64>> {
    let now = ts(at);
    let mut ids = Vec::with_capacity(specs.len());
    for spec in specs {
        // Update first, insert only when new: no identity value is burnt.
        let stage_id: i64 = match st.opt(
            c,
            "UPDATE @.stages SET stage_order = COALESCE($2, stage_order), updated_at = $3
             WHERE stage_name = $1 RETURNING stage_id",
            &[
                (&spec.stage, Type::TEXT),
                (&spec.stage_order, Type::INT8),
                (&now, Type::TIMESTAMPTZ),
            ],
        )? {
            Some(r) => r.try_get(0)?,
            None => st
                .one(
                    c,
                    "INSERT INTO @.stages AS x (stage_name, stage_order, created_at, updated_at)
                     VALUES ($1, $2, $3, $3)
                     ON CONFLICT (stage_name) DO UPDATE SET
                        stage_order = COALESCE(EXCLUDED.stage_order, x.stage_order),
                        updated_at = EXCLUDED.updated_at
                     RETURNING stage_id",
                    &[
                        (&spec.stage, Type::TEXT),
                        (&spec.stage_order, Type::INT8),
                        (&now, Type::TIMESTAMPTZ),
                    ],
                )?
                .try_get(0)?,
        };
        let script_filename = spec.effective_script_filename();
        let log_filename = spec.effective_log_filename();
        let params: [Typed<'_>; 10] = [
            (&stage_id, Type::INT8),
            (&spec.name, Type::TEXT),
            (&spec.task_type, Type::TEXT),
            (&spec.task_order, Type::INT8),
            (&spec.description, Type::TEXT),
            (&spec.script_path, Type::TEXT),
            (&script_filename, Type::TEXT),
            (&spec.log_path, Type::TEXT),
            (&log_filename, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
        ];
        let task_id: i64 = match st.opt(
            c,
            "UPDATE @.tasks SET
                task_type = COALESCE($3, task_type),
                task_order = COALESCE($4, task_order),
                description = COALESCE($5, description),
                script_path = COALESCE($6, script_path),
                script_filename = COALESCE($7, script_filename),
                log_path = COALESCE($8, log_path),
                log_filename = COALESCE($9, log_filename),
                updated_at = $10
             WHERE stage_id = $1 AND task_name = $2 RETURNING task_id",
            &params,
        )? {
            Some(r) => r.try_get(0)?,
            None => st
                .one(
                    c,
                    "INSERT INTO @.tasks AS x (stage_id, task_name, task_type, task_order, description,
                        script_path, script_filename, log_path, log_filename, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                     ON CONFLICT (stage_id, task_name) DO UPDATE SET
                        task_type = COALESCE(EXCLUDED.task_type, x.task_type),
                        task_order = COALESCE(EXCLUDED.task_order, x.task_order),
                        description = COALESCE(EXCLUDED.description, x.description),
                        script_path = COALESCE(EXCLUDED.script_path, x.script_path),
                        script_filename = COALESCE(EXCLUDED.script_filename, x.script_filename),
                        log_path = COALESCE(EXCLUDED.log_path, x.log_path),
                        log_filename = COALESCE(EXCLUDED.log_filename, x.log_filename),
                        updated_at = EXCLUDED.updated_at
                     RETURNING task_id",
                    &params,
                )?
                .try_get(0)?,
        };
        ids.push(task_id);
    }
    Ok(ids)
}

/// True when inserted, false when a run with this id exists.
fn start_run(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    run: &NewRun,
) -> R<bool> {
    if let Some(m) = &run.options.metadata {
        check_metadata(m)?;
    }
    let now = ts(run.start_time);
    let o = &run.options;
    let script_filename = o
        .script_filename
        .clone()
        .or_else(|| o.script_path.as_deref().and_then(file_name));
    let log_filename = o
        .log_filename
        .clone()
        .or_else(|| o.log_path.as_deref().and_then(file_name));
    let metadata = o.metadata.as_ref().map(Json);
    let pid = i64::from(run.facts.pid);
    let ppid = run.facts.parent_pid.map(i64::from);
    let pstart = run.facts.process_start.map(ts);
    let row = st.one(
        c,
        "SELECT @.start_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
            $16, $17, $18, $19, $20)",
        &[
            (&run.run_id, Type::TEXT),
            (&run.stage, Type::TEXT),
            (&run.task, Type::TEXT),
            (&run.facts.hostname, Type::TEXT),
            (&pid, Type::INT8),
            (&ppid, Type::INT8),
            (&pstart, Type::TIMESTAMPTZ),
            (&run.facts.user, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
            (&o.total_subtasks, Type::INT8),
            (&o.message, Type::TEXT),
            (&o.version, Type::TEXT),
            (&o.git_commit, Type::TEXT),
            (&o.script_path, Type::TEXT),
            (&script_filename, Type::TEXT),
            (&o.log_path, Type::TEXT),
            (&log_filename, Type::TEXT),
            (&metadata, Type::JSONB),
            (&key.0, Type::INT4),
            (&key.1, Type::INT4),
        ],
    )?;
    Ok(row.try_get(0)?)
}

type WriteName<'a> = (Option<&'a str>, Option<i64>);

#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one transition, as the server function takes them"
)]
fn run_transition(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    run_id: &str,
    to: Status,
    info: &TransitionInfo,
    at: DateTime<Utc>,
    (writer, seq): WriteName<'_>,
) -> R<Output> {
    let now = ts(at);
    // A reset may leave any status, but never to NOT_STARTED (checked once the
    // run is known to exist, as the SQLite store does).
    let bad_reset = info.reset && to == Status::NotStarted;
    let allowed = allowed_from(to, info.reset && !bad_reset);
    let sub_message = match to {
        Status::Failed => Some("task failed - subtask terminated"),
        _ => None,
    };
    let to_name = to.as_str();
    let row = st.one(
        c,
        "SELECT o_code, o_status FROM @.run_transition($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
            $11, $12, $13)",
        &[
            (&run_id, Type::TEXT),
            (&to_name, Type::TEXT),
            (&allowed, Type::TEXT_ARRAY),
            (&info.message, Type::TEXT),
            (&info.error_message, Type::TEXT),
            (&info.error_detail, Type::TEXT),
            (&info.reset, Type::BOOL),
            (&sub_message, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
            (&key.0, Type::INT4),
            (&key.1, Type::INT4),
            (&writer, Type::TEXT),
            (&seq, Type::INT8),
        ],
    )?;
    let code: String = row.try_get(0)?;
    let from: Option<String> = row.try_get(1)?;
    let from = || -> R<Status> { Ok(from.as_deref().unwrap_or("NOT_STARTED").parse::<Status>()?) };
    match code.as_str() {
        "ok" => Ok(Output::Transition {
            from: from()?,
            changed: true,
        }),
        "same" => Ok(Output::Transition {
            from: from()?,
            changed: false,
        }),
        "dup" => Ok(Output::Duplicate),
        "no_run" => Err(Fail::App(Error::not_found("run", run_id))),
        "invalid" if bad_reset => Err(Fail::App(Error::invalid(
            "status",
            to.as_str(),
            "a run can be reset to STARTED or RUNNING, not NOT_STARTED",
        ))),
        "invalid" => Err(Fail::App(Error::InvalidTransition {
            what: format!("run {run_id}"),
            from: from()?,
            to,
        })),
        other => Err(unexpected(other, "run_transition")),
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one subtask start, as the server function takes them"
)]
fn subtask_start(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    run_id: &str,
    uid: &str,
    name: &str,
    opts: &SubtaskOptions,
    at: DateTime<Utc>,
    renumber_if_taken: bool,
) -> R<u32> {
    let now = ts(at);
    let items_total = opts.items_total.map(i64_of);
    let number = opts.number.map(i64::from);
    // The run's row lock (inside the function) makes "next free number"
    // race-free across hosts.
    let row = st.one(
        c,
        "SELECT o_code, o_status, o_number FROM @.subtask_start($1, $2, $3, $4, $5, $6, $7, $8,
            $9, $10, $11)",
        &[
            (&run_id, Type::TEXT),
            (&uid, Type::TEXT),
            (&name, Type::TEXT),
            (&number, Type::INT8),
            (&items_total, Type::INT8),
            (&opts.message, Type::TEXT),
            (&opts.restart, Type::BOOL),
            (&renumber_if_taken, Type::BOOL),
            (&now, Type::TIMESTAMPTZ),
            (&key.0, Type::INT4),
            (&key.1, Type::INT4),
        ],
    )?;
    let code: String = row.try_get(0)?;
    let status: Option<String> = row.try_get(1)?;
    let n: Option<i64> = row.try_get(2)?;
    match code.as_str() {
        "ok" => {
            let n = n.unwrap_or_default();
            u32::try_from(n)
                .map_err(|_| Fail::App(Error::invalid("subtask_number", n, "is out of range")))
        }
        "no_run" => Err(Fail::App(Error::not_found("run", run_id))),
        "run_done" => Err(Fail::App(Error::InvalidTransition {
            what: format!("run {run_id} (starting subtask {name:?})"),
            from: status.as_deref().unwrap_or("COMPLETED").parse::<Status>()?,
            to: Status::Running,
        })),
        "exists" => Err(Fail::App(Error::AlreadyExists {
            what: "subtask".into(),
            key: format!(
                "{} of run {run_id} (pass restart to start it again from zero)",
                n.unwrap_or_default()
            ),
        })),
        other => Err(unexpected(other, "subtask_start")),
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one transition, as the server function takes them"
)]
fn subtask_transition(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    run_id: &str,
    sub: &SubtaskRef,
    to: Status,
    info: &TransitionInfo,
    at: DateTime<Utc>,
    (writer, seq): WriteName<'_>,
) -> R<Output> {
    let now = ts(at);
    let allowed = allowed_from(to, info.reset);
    let uid = sub.uid.as_deref();
    let number = i64::from(sub.number);
    let to_name = to.as_str();
    let row = st.one(
        c,
        "SELECT o_code, o_status, o_number FROM @.subtask_transition($1, $2, $3, $4, $5, $6, $7,
            $8, $9, $10, $11, $12, $13, $14)",
        &[
            (&run_id, Type::TEXT),
            (&uid, Type::TEXT),
            (&number, Type::INT8),
            (&to_name, Type::TEXT),
            (&allowed, Type::TEXT_ARRAY),
            (&info.message, Type::TEXT),
            (&info.error_message, Type::TEXT),
            (&info.error_detail, Type::TEXT),
            (&info.reset, Type::BOOL),
            (&now, Type::TIMESTAMPTZ),
            (&key.0, Type::INT4),
            (&key.1, Type::INT4),
            (&writer, Type::TEXT),
            (&seq, Type::INT8),
        ],
    )?;
    let code: String = row.try_get(0)?;
    let from: Option<String> = row.try_get(1)?;
    let stored: Option<i64> = row.try_get(2)?;
    let from = || -> R<Status> { Ok(from.as_deref().unwrap_or("NOT_STARTED").parse::<Status>()?) };
    match code.as_str() {
        "ok" => Ok(Output::Transition {
            from: from()?,
            changed: true,
        }),
        "same" => Ok(Output::Transition {
            from: from()?,
            changed: false,
        }),
        "dup" => Ok(Output::Duplicate),
        "no_run" => Err(Fail::App(Error::not_found("run", run_id))),
        "no_subtask" => Err(Fail::App(Error::not_found(
            "subtask",
            format!("{} of run {run_id}", sub.number),
        ))),
        "invalid" => Err(Fail::App(Error::InvalidTransition {
            what: format!("subtask {} of run {run_id}", stored.unwrap_or(number)),
            from: from()?,
            to,
        })),
        other => Err(unexpected(other, "subtask_transition")),
    }
}

fn progress(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    batch: &[ProgressUpdate],
    heartbeats: &[Arc<str>],
    at: DateTime<Utc>,
    (writer, seq): WriteName<'_>,
) -> R<Output> {
    if batch.is_empty() && heartbeats.is_empty() && writer.is_none() {
        return Ok(Output::Progress { finished: vec![] });
    }
    let now = ts(at);
    // Every run this flush touches, locked in one order by every process.
    let mut lock_runs: Vec<&str> = batch
        .iter()
        .map(|u| &*u.run_id)
        .chain(heartbeats.iter().map(|h| &**h))
        .collect();
    lock_runs.sort_unstable();
    lock_runs.dedup();
    let runs: Vec<&str> = batch.iter().map(|u| &*u.run_id).collect();
    let subtasks: Vec<Option<i64>> = batch.iter().map(|u| u.subtask.map(i64::from)).collect();
    let uids: Vec<Option<&str>> = batch.iter().map(|u| u.subtask_uid.as_deref()).collect();
    let set: Vec<Option<i64>> = batch.iter().map(|u| u.items_set.map(i64_of)).collect();
    let delta: Vec<i64> = batch.iter().map(|u| i64_of(u.items_delta)).collect();
    let total: Vec<Option<i64>> = batch.iter().map(|u| u.items_total.map(i64_of)).collect();
    let percent: Vec<Option<f64>> = batch.iter().map(|u| u.percent).collect();
    let message: Vec<Option<&str>> = batch.iter().map(|u| u.message.as_deref()).collect();
    let current: Vec<Option<i64>> = batch
        .iter()
        .map(|u| u.current_subtask.map(i64::from))
        .collect();
    let beats: Vec<&str> = heartbeats.iter().map(|h| &**h).collect();
    let row = st.one(
        c,
        "SELECT o_dup, o_finished, o_status FROM @.apply_progress($1, $2, $3, $4, $5, $6, $7,
            $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            (&runs, Type::TEXT_ARRAY),
            (&subtasks, Type::INT8_ARRAY),
            (&uids, Type::TEXT_ARRAY),
            (&set, Type::INT8_ARRAY),
            (&delta, Type::INT8_ARRAY),
            (&total, Type::INT8_ARRAY),
            (&percent, Type::FLOAT8_ARRAY),
            (&message, Type::TEXT_ARRAY),
            (&current, Type::INT8_ARRAY),
            (&beats, Type::TEXT_ARRAY),
            (&lock_runs, Type::TEXT_ARRAY),
            (&now, Type::TIMESTAMPTZ),
            (&key.0, Type::INT4),
            (&key.1, Type::INT4),
            (&writer, Type::TEXT),
            (&seq, Type::INT8),
        ],
    )?;
    if row.try_get::<_, bool>(0)? {
        return Ok(Output::Duplicate);
    }
    let index: Vec<i32> = row.try_get(1)?;
    let status: Vec<String> = row.try_get(2)?;
    let mut finished = Vec::with_capacity(index.len());
    for (i, s) in index.into_iter().zip(status) {
        if let Ok(i) = usize::try_from(i) {
            finished.push((i, s.parse::<Status>()?));
        }
    }
    Ok(Output::Progress { finished })
}

fn unexpected(code: &str, function: &str) -> Fail {
    Fail::App(Error::storage_refused(
        BACKEND,
        format!("unexpected answer {code:?} from {function}"),
    ))
}
