//! Every write of the PostgreSQL store: one server function call per `Op`
//! (see `migrations/postgres/functions.sql`), on a plain connection (its own
//! transaction: one round trip) or inside a batch transaction. Refusals come back
//! as answer codes, never as server errors, so a batch goes on past them.

use ::postgres::types::{Json, Type};
use ::postgres::{GenericClient, Row};
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::io_record::IoRecord;
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::query::EventRow;
use crate::store::{new_uid, NewRun, Op, OpId, Output, RunSample, SubtaskRef, TASKER_VERSION};

use super::{
    allowed_from, check_metadata, file_name, i64_of, ts, Fail, Statements, Typed, BACKEND, R,
};

/// Advisory lock of the events table (namespace, key of the schema).
pub(super) type EventsKey = (i32, i32);

/// Applies `op` on `c` (a connection: one transaction per function call; or an
/// open transaction), adding the events it appended to `events`. Registrations
/// take several statements: give them a transaction.
pub(super) fn apply_on(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    op: &Op,
    id: Option<&OpId>,
    events: &mut Vec<EventRow>,
) -> R<Output> {
    match op {
        Op::Register { specs, at } => register(c, st, specs, *at).map(Output::Registered),
        Op::StartRun(run) => match start_run(c, st, key, run, events)? {
            true => Ok(Output::RunStarted),
            // A queued start of a run that exists: it was this start, applied before.
            false if id.is_some() => Ok(Output::Duplicate),
            false => Err(Fail::App(Error::AlreadyExists {
                what: "run".into(),
                key: run.run_id.clone(),
            })),
        },
        Op::RunTransition { .. } => call_alone(
            c,
            st,
            &Call::RunTransition(RunTransitionArgs::of(op, key, id).expect("a run transition")),
            events,
        ),
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
                events,
            )
            .map(|number| Output::SubtaskStarted { number })
        }
        Op::SubtaskTransition { .. } => call_alone(
            c,
            st,
            &Call::SubtaskTransition(
                SubtaskTransitionArgs::of(op, key, id).expect("a subtask transition"),
            ),
            events,
        ),
        Op::RecordIo { run_id, record, at } => record_io(c, st, run_id, record, *at),
        Op::Progress { .. } => {
            let args = ProgressArgs::of(op, key, id).expect("a progress write");
            if args.is_empty() {
                return Ok(Output::Progress { finished: vec![] });
            }
            call_alone(c, st, &Call::Progress(args), events)
        }
    }
}

fn register(
    c: &mut impl GenericClient,
    st: &mut Statements,
    specs: &[TaskSpec],
    at: DateTime<Utc>,
) -> R<Vec<i64>> {
    if specs.iter().all(|s| s.depends_on.is_none()) {
        return upsert_tasks(c, st, specs, at);
    }
    // A savepoint: a refused dependency leaves nothing behind, also inside a
    // batch of queued writes (whose transaction goes on past a refusal).
    let mut tx = c.transaction()?;
    let ids = upsert_tasks(&mut tx, st, specs, at)?;
    write_dependencies(&mut tx, st, specs, &ids)?;
    tx.commit()?;
    Ok(ids)
}

/// Replaces the dependencies of the specs that declare them, after checking
/// names and cycles against the whole graph (`dag::plan_dependencies`). The
/// table lock makes concurrent registrations check one after the other, so two
/// of them cannot close a cycle together; registrations without dependencies
/// do not take it.
fn write_dependencies(
    c: &mut impl GenericClient,
    st: &mut Statements,
    specs: &[TaskSpec],
    ids: &[i64],
) -> R<()> {
    st.exec(
        c,
        "LOCK TABLE @.task_dependencies IN SHARE ROW EXCLUSIVE MODE",
        &[],
    )?;
    let tasks = st
        .all(
            c,
            "SELECT t.task_id, s.stage_name, t.task_name
               FROM @.tasks t JOIN @.stages s ON s.stage_id = t.stage_id",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<R<Vec<(i64, String, String)>>>()?;
    let edges = st
        .all(
            c,
            "SELECT task_id, depends_on FROM @.task_dependencies",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<R<Vec<(i64, i64)>>>()?;
    for (task, ups) in crate::dag::plan_dependencies(specs, ids, &tasks, &edges)? {
        st.exec(
            c,
            "DELETE FROM @.task_dependencies WHERE task_id = $1",
            &[(&task, Type::INT8)],
        )?;
        if !ups.is_empty() {
            st.exec(
                c,
                "INSERT INTO @.task_dependencies(task_id, depends_on)
                 SELECT $1, u FROM unnest($2::int8[]) AS u",
                &[(&task, Type::INT8), (&ups, Type::INT8_ARRAY)],
            )?;
        }
    }
    Ok(())
}

fn upsert_tasks(
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

/// Upserts one input or output; a run that does not exist is refused.
fn record_io(
    c: &mut impl GenericClient,
    st: &mut Statements,
    run_id: &str,
    r: &IoRecord,
    at: DateTime<Utc>,
) -> R<Output> {
    let size = r.size_bytes;
    let modified = r.modified.map(ts);
    let now = ts(at);
    let written = st.exec(
        c,
        "INSERT INTO @.run_io(run_id, direction, name, value, path, size_bytes, modified, sha256,
            recorded_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM @.runs WHERE run_id = $1)
         ON CONFLICT (run_id, direction, name) DO UPDATE SET value = excluded.value,
            path = excluded.path, size_bytes = excluded.size_bytes,
            modified = excluded.modified, sha256 = excluded.sha256,
            recorded_at = excluded.recorded_at",
        &[
            (&run_id, Type::TEXT),
            (&r.direction.as_str(), Type::TEXT),
            (&r.name, Type::TEXT),
            (&r.value, Type::TEXT),
            (&r.path, Type::TEXT),
            (&size, Type::INT8),
            (&modified, Type::TIMESTAMPTZ),
            (&r.sha256, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
        ],
    )?;
    if written == 0 {
        return Err(Fail::App(Error::not_found("run", run_id)));
    }
    Ok(Output::Recorded)
}

/// True when inserted (its events added to `events`), false when a run with
/// this id exists.
fn start_run(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    run: &NewRun,
    events: &mut Vec<EventRow>,
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
    let attempt = o.attempt.map(i64::from);
    let lost_before = ts(run.lost_before);
    let row = st.one(
        c,
        "SELECT o_started, o_events FROM @.start_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
            $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27,
            $28)",
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
            (&o.command_line, Type::TEXT),
            (&o.git_dirty, Type::BOOL),
            (&o.runtime, Type::TEXT),
            (&TASKER_VERSION, Type::TEXT),
            (&attempt, Type::INT8),
            (&o.retry, Type::BOOL),
            (&run.known_lost, Type::TEXT),
            (&lost_before, Type::TIMESTAMPTZ),
        ],
    )?;
    add_events(&row, 1, events)?;
    Ok(row.try_get(0)?)
}

/// Adds the events in column `col` (a JSON array, NULL for none) to `events`.
fn add_events(row: &Row, col: usize, events: &mut Vec<EventRow>) -> R<()> {
    let appended: Option<Json<Vec<EventRow>>> = row.try_get(col)?;
    if let Some(Json(mut appended)) = appended {
        events.append(&mut appended);
    }
    Ok(())
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
    events: &mut Vec<EventRow>,
) -> R<u32> {
    let now = ts(at);
    let items_total = opts.items_total.map(i64_of);
    let number = opts.number.map(i64::from);
    // The run's row lock (inside the function) makes "next free number"
    // race-free across hosts.
    let row = st.one(
        c,
        "SELECT o_code, o_status, o_number, o_events FROM @.subtask_start($1, $2, $3, $4, $5,
            $6, $7, $8, $9, $10, $11)",
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
    add_events(&row, 3, events)?;
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

/// A call of one of the server functions that may follow a progress write in the
/// same statement (a transition): its arguments, derived once.
#[allow(
    clippy::large_enum_variant,
    reason = "one short-lived value per statement, on the stack"
)]
enum Call<'a> {
    Progress(ProgressArgs<'a>),
    RunTransition(RunTransitionArgs<'a>),
    SubtaskTransition(SubtaskTransitionArgs<'a>),
}

impl<'a> Call<'a> {
    /// The function call as a FROM item, its parameters numbered from `$first`.
    /// With `after`, its first argument refers to that earlier item's answer, so
    /// that PostgreSQL runs that one first (LATERAL), in the same statement.
    fn sql_call(&self, first: usize, after: Option<&str>) -> String {
        let function = match self {
            Call::Progress(_) => "apply_progress",
            Call::RunTransition(_) => "run_transition",
            Call::SubtaskTransition(_) => "subtask_transition",
        };
        let arity = self.params().len();
        let mut args: Vec<String> = (first..first + arity).map(|i| format!("${i}")).collect();
        if let Some(earlier) = after {
            args[0] = format!("CASE WHEN {earlier}.o_dup THEN ${first} ELSE ${first} END");
        }
        format!("@.{function}({})", args.join(", "))
    }

    fn columns(&self, alias: &str) -> String {
        let cols: &[&str] = match self {
            Call::Progress(_) => &["o_dup", "o_finished", "o_status", "o_events"],
            Call::RunTransition(_) => &["o_code", "o_status", "o_events"],
            Call::SubtaskTransition(_) => &["o_code", "o_status", "o_number", "o_events"],
        };
        cols.iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn width(&self) -> usize {
        match self {
            Call::Progress(_) => 4,
            Call::RunTransition(_) => 3,
            Call::SubtaskTransition(_) => 4,
        }
    }

    fn params(&self) -> Vec<Typed<'_>> {
        match self {
            Call::Progress(a) => a.params(),
            Call::RunTransition(a) => a.params(),
            Call::SubtaskTransition(a) => a.params(),
        }
    }

    /// Its answer in the row from column `col`; the events it appended go to `events`.
    fn decode(&self, row: &Row, col: usize, events: &mut Vec<EventRow>) -> R<Output> {
        add_events(row, col + self.width() - 1, events)?;
        match self {
            Call::Progress(a) => a.decode(row, col),
            Call::RunTransition(a) => a.decode(row, col),
            Call::SubtaskTransition(a) => a.decode(row, col),
        }
    }
}

/// Runs one call on its own: one statement, one round trip.
fn call_alone(
    c: &mut impl GenericClient,
    st: &mut Statements,
    call: &Call<'_>,
    events: &mut Vec<EventRow>,
) -> R<Output> {
    let sql = format!(
        "SELECT {} FROM {} x",
        call.columns("x"),
        call.sql_call(1, None)
    );
    let row = st.one(c, &sql, &call.params())?;
    call.decode(&row, 0, events)
}

/// Runs a progress write and then a transition in one statement: one round trip
/// and one transaction, the progress first. A refused transition (an answer code,
/// not a server error) leaves the progress written.
pub(super) fn progress_then(
    c: &mut impl GenericClient,
    st: &mut Statements,
    key: EventsKey,
    (progress, progress_id): (&Op, Option<&OpId>),
    (op, id): (&Op, Option<&OpId>),
    events: &mut Vec<EventRow>,
) -> Option<R<(Output, crate::error::Result<Output>)>> {
    let first = Call::Progress(ProgressArgs::of(progress, key, progress_id)?);
    let then = match op {
        Op::RunTransition { .. } => Call::RunTransition(RunTransitionArgs::of(op, key, id)?),
        Op::SubtaskTransition { .. } => {
            Call::SubtaskTransition(SubtaskTransitionArgs::of(op, key, id)?)
        }
        _ => return None,
    };
    let sql = format!(
        "SELECT {}, {} FROM {} p CROSS JOIN LATERAL {} t",
        first.columns("p"),
        then.columns("t"),
        first.sql_call(1, None),
        then.sql_call(1 + first.params().len(), Some("p"))
    );
    let mut params = first.params();
    params.extend(then.params());
    Some((|| {
        let row = st.one(c, &sql, &params)?;
        let progressed = first.decode(&row, 0, events)?;
        let answer = match then.decode(&row, first.width(), events) {
            Ok(out) => Ok(out),
            Err(Fail::App(e)) => Err(e),
            Err(db) => return Err(db),
        };
        Ok((progressed, answer))
    })())
}

type WriteName<'a> = (Option<&'a str>, Option<i64>);

fn write_name(id: Option<&OpId>) -> WriteName<'_> {
    (id.map(|i| &*i.writer), id.map(|i| i64_of(i.seq)))
}

struct RunTransitionArgs<'a> {
    run_id: &'a str,
    to: Status,
    to_name: &'static str,
    allowed: Vec<&'static str>,
    info: &'a TransitionInfo,
    bad_reset: bool,
    sub_message: Option<&'static str>,
    now: DateTime<Utc>,
    key: EventsKey,
    name: WriteName<'a>,
}

impl<'a> RunTransitionArgs<'a> {
    fn of(op: &'a Op, key: EventsKey, id: Option<&'a OpId>) -> Option<Self> {
        let Op::RunTransition {
            run_id,
            to,
            info,
            at,
        } = op
        else {
            return None;
        };
        // A reset may leave any status, but never to NOT_STARTED (checked once the
        // run is known to exist, as the SQLite store does).
        let bad_reset = info.reset && *to == Status::NotStarted;
        Some(RunTransitionArgs {
            run_id,
            to: *to,
            to_name: to.as_str(),
            allowed: allowed_from(*to, info.reset && !bad_reset),
            info,
            bad_reset,
            sub_message: (*to == Status::Failed).then_some("task failed - subtask terminated"),
            now: ts(*at),
            key,
            name: write_name(id),
        })
    }

    fn params(&self) -> Vec<Typed<'_>> {
        vec![
            (&self.run_id, Type::TEXT),
            (&self.to_name, Type::TEXT),
            (&self.allowed, Type::TEXT_ARRAY),
            (&self.info.message, Type::TEXT),
            (&self.info.error_message, Type::TEXT),
            (&self.info.error_detail, Type::TEXT),
            (&self.info.reset, Type::BOOL),
            (&self.sub_message, Type::TEXT),
            (&self.now, Type::TIMESTAMPTZ),
            (&self.key.0, Type::INT4),
            (&self.key.1, Type::INT4),
            (&self.name.0, Type::TEXT),
            (&self.name.1, Type::INT8),
        ]
    }

    fn decode(&self, row: &Row, col: usize) -> R<Output> {
        let code: String = row.try_get(col)?;
        let from: Option<String> = row.try_get(col + 1)?;
        let from =
            || -> R<Status> { Ok(from.as_deref().unwrap_or("NOT_STARTED").parse::<Status>()?) };
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
            "no_run" => Err(Fail::App(Error::not_found("run", self.run_id))),
            "invalid" if self.bad_reset => Err(Fail::App(Error::invalid(
                "status",
                self.to_name,
                "a run can be reset to STARTED or RUNNING, not NOT_STARTED",
            ))),
            "invalid" => Err(Fail::App(Error::InvalidTransition {
                what: format!("run {}", self.run_id),
                from: from()?,
                to: self.to,
            })),
            other => Err(unexpected(other, "run_transition")),
        }
    }
}

struct SubtaskTransitionArgs<'a> {
    run_id: &'a str,
    sub: &'a SubtaskRef,
    uid: Option<&'a str>,
    number: i64,
    to: Status,
    to_name: &'static str,
    allowed: Vec<&'static str>,
    info: &'a TransitionInfo,
    now: DateTime<Utc>,
    key: EventsKey,
    name: WriteName<'a>,
}

impl<'a> SubtaskTransitionArgs<'a> {
    fn of(op: &'a Op, key: EventsKey, id: Option<&'a OpId>) -> Option<Self> {
        let Op::SubtaskTransition {
            run_id,
            subtask,
            to,
            info,
            at,
        } = op
        else {
            return None;
        };
        Some(SubtaskTransitionArgs {
            run_id,
            sub: subtask,
            uid: subtask.uid.as_deref(),
            number: i64::from(subtask.number),
            to: *to,
            to_name: to.as_str(),
            allowed: allowed_from(*to, info.reset),
            info,
            now: ts(*at),
            key,
            name: write_name(id),
        })
    }

    fn params(&self) -> Vec<Typed<'_>> {
        vec![
            (&self.run_id, Type::TEXT),
            (&self.uid, Type::TEXT),
            (&self.number, Type::INT8),
            (&self.to_name, Type::TEXT),
            (&self.allowed, Type::TEXT_ARRAY),
            (&self.info.message, Type::TEXT),
            (&self.info.error_message, Type::TEXT),
            (&self.info.error_detail, Type::TEXT),
            (&self.info.reset, Type::BOOL),
            (&self.now, Type::TIMESTAMPTZ),
            (&self.key.0, Type::INT4),
            (&self.key.1, Type::INT4),
            (&self.name.0, Type::TEXT),
            (&self.name.1, Type::INT8),
        ]
    }

    fn decode(&self, row: &Row, col: usize) -> R<Output> {
        let code: String = row.try_get(col)?;
        let from: Option<String> = row.try_get(col + 1)?;
        let stored: Option<i64> = row.try_get(col + 2)?;
        let from =
            || -> R<Status> { Ok(from.as_deref().unwrap_or("NOT_STARTED").parse::<Status>()?) };
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
            "no_run" => Err(Fail::App(Error::not_found("run", self.run_id))),
            "no_subtask" => Err(Fail::App(Error::not_found(
                "subtask",
                format!("{} of run {}", self.sub.number, self.run_id),
            ))),
            "invalid" => Err(Fail::App(Error::InvalidTransition {
                what: format!(
                    "subtask {} of run {}",
                    stored.unwrap_or(self.number),
                    self.run_id
                ),
                from: from()?,
                to: self.to,
            })),
            other => Err(unexpected(other, "subtask_transition")),
        }
    }
}

/// One progress flush: element i of each array is update i.
struct ProgressArgs<'a> {
    runs: Vec<&'a str>,
    subtasks: Vec<Option<i64>>,
    uids: Vec<Option<&'a str>>,
    set: Vec<Option<i64>>,
    delta: Vec<i64>,
    total: Vec<Option<i64>>,
    percent: Vec<Option<f64>>,
    message: Vec<Option<&'a str>>,
    current: Vec<Option<i64>>,
    beats: Vec<&'a str>,
    /// Every run this flush touches, locked in one order by every process.
    lock_runs: Vec<&'a str>,
    now: DateTime<Utc>,
    key: EventsKey,
    name: WriteName<'a>,
    /// Process samples of the runs, as one JSON array of records.
    samples: Option<Json<&'a [RunSample]>>,
    /// Log lines and item outcomes (`crate::logs::LogBatch`), as one JSON object.
    logs: Option<Json<&'a crate::logs::LogBatch>>,
}

impl<'a> ProgressArgs<'a> {
    fn of(op: &'a Op, key: EventsKey, id: Option<&'a OpId>) -> Option<Self> {
        let Op::Progress {
            updates: batch,
            heartbeats,
            samples,
            logs,
            at,
        } = op
        else {
            return None;
        };
        let mut lock_runs: Vec<&str> = batch
            .iter()
            .map(|u| &*u.run_id)
            .chain(heartbeats.iter().map(|h| &**h))
            .chain(logs.runs())
            .collect();
        lock_runs.sort_unstable();
        lock_runs.dedup();
        Some(ProgressArgs {
            runs: batch.iter().map(|u| &*u.run_id).collect(),
            subtasks: batch.iter().map(|u| u.subtask.map(i64::from)).collect(),
            uids: batch.iter().map(|u| u.subtask_uid.as_deref()).collect(),
            set: batch.iter().map(|u| u.items_set.map(i64_of)).collect(),
            delta: batch.iter().map(|u| i64_of(u.items_delta)).collect(),
            total: batch.iter().map(|u| u.items_total.map(i64_of)).collect(),
            percent: batch.iter().map(|u| u.percent).collect(),
            message: batch.iter().map(|u| u.message.as_deref()).collect(),
            current: batch
                .iter()
                .map(|u| u.current_subtask.map(i64::from))
                .collect(),
            beats: heartbeats.iter().map(|h| &**h).collect(),
            lock_runs,
            now: ts(*at),
            key,
            name: write_name(id),
            samples: (!samples.is_empty()).then_some(Json(samples.as_slice())),
            logs: (!logs.is_empty()).then_some(Json(logs)),
        })
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.beats.is_empty()
            && self.logs.is_none()
            && self.name.0.is_none()
    }

    fn params(&self) -> Vec<Typed<'_>> {
        vec![
            (&self.runs, Type::TEXT_ARRAY),
            (&self.subtasks, Type::INT8_ARRAY),
            (&self.uids, Type::TEXT_ARRAY),
            (&self.set, Type::INT8_ARRAY),
            (&self.delta, Type::INT8_ARRAY),
            (&self.total, Type::INT8_ARRAY),
            (&self.percent, Type::FLOAT8_ARRAY),
            (&self.message, Type::TEXT_ARRAY),
            (&self.current, Type::INT8_ARRAY),
            (&self.beats, Type::TEXT_ARRAY),
            (&self.lock_runs, Type::TEXT_ARRAY),
            (&self.now, Type::TIMESTAMPTZ),
            (&self.key.0, Type::INT4),
            (&self.key.1, Type::INT4),
            (&self.name.0, Type::TEXT),
            (&self.name.1, Type::INT8),
            (&self.samples, Type::JSONB),
            (&self.logs, Type::JSONB),
        ]
    }

    fn decode(&self, row: &Row, col: usize) -> R<Output> {
        if row.try_get::<_, bool>(col)? {
            return Ok(Output::Duplicate);
        }
        let index: Vec<i32> = row.try_get(col + 1)?;
        let status: Vec<String> = row.try_get(col + 2)?;
        let mut finished = Vec::with_capacity(index.len());
        for (i, s) in index.into_iter().zip(status) {
            if let Ok(i) = usize::try_from(i) {
                finished.push((i, s.parse::<Status>()?));
            }
        }
        Ok(Output::Progress { finished })
    }
}

fn unexpected(code: &str, function: &str) -> Fail {
    Fail::App(Error::storage_refused(
        BACKEND,
        format!("unexpected answer {code:?} from {function}"),
    ))
}
