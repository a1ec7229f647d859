//! One store test suite, two backends. Every scenario below runs on SQLite (always,
//! in a temporary file) and on PostgreSQL when `TASKER_PG_URL` names a server
//! (`scripts/test-postgres.sh` starts a throwaway one); each PostgreSQL test uses
//! a schema of its own. Times are fixed, so the rows of both backends can be
//! compared for equality, field by field.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tasker::config::{Config, Location, Secret};
use tasker::process::ProcessFacts;
use tasker::query::LostRule;
use tasker::store::{
    self, NewRun, Op, OpId, Output, ProgressUpdate, Queued, RunSelector, Store, SubtaskRef,
};
use tasker::{
    ErrorKind, HistoryFilter, RunOptions, RunPageQuery, RunRow, RunSort, StatsFilter, Status,
    StatusFilter, SubtaskOptions, TaskSelector, TaskSpec, TasksWithRuns, TransitionInfo,
};

struct Db {
    s: Box<dyn Store>,
    backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let s = store::open(&Config::sqlite(dir.path().join("suite.db"))).unwrap();
    Db {
        s,
        backend: "sqlite",
        _dir: Some(dir),
    }
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

/// The test server `TASKER_PG_URL` names. PostgreSQL tests are `#[ignore]`d
/// (reported as skipped) unless scripts/test-postgres.sh, which starts a server,
/// runs them (`--include-ignored`): run without one, they fail here.
fn pg_url() -> String {
    std::env::var("TASKER_PG_URL").expect(
        "TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test",
    )
}

/// A store on the test server in a fresh schema.
fn postgres(test: &str) -> Db {
    let url = pg_url();
    let schema = format!(
        "suite_{}_{}_{}",
        &test[..test.len().min(30)],
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed)
    );
    let mut config = Config::sqlite("");
    config.location = Location::Postgres {
        conninfo: Secret::new(url),
        schema,
    };
    Db {
        s: store::open(&config).unwrap(),
        backend: "postgresql",
        _dir: None,
    }
}

/// Defines each scenario as two tests: `on_sqlite::NAME` and `on_postgres::NAME`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(&mut super::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] #[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"] fn $name() {
                super::$name(&mut super::postgres(stringify!($name)));
            } )*
        }
    };
}

suite!(
    registration_upserts_and_null_never_clears,
    a_run_registers_its_stage_and_task_and_records_its_facts,
    run_transitions_are_checked_and_reset_is_explicit,
    subtasks_are_numbered_and_never_silently_overwritten,
    progress_adds_deltas_and_moves_started_to_running_once,
    run_progress_moves_a_started_run_to_running,
    a_terminal_run_closes_its_open_subtasks,
    task_status_lists_never_run_tasks_and_the_latest_run,
    several_active_runs_of_one_task_are_all_listed,
    history_is_newest_first_and_filters,
    events_after_pages_through_transitions,
    delete_runs_cascades_and_honours_its_selector,
    hostile_strings_come_back_verbatim,
    store_errors_name_what_is_wrong,
    a_failed_subtask_keeps_its_error_detail_until_restarted,
    a_write_sent_again_under_its_id_is_applied_once,
    same_status_transitions_change_nothing_and_write_no_event,
    progress_for_a_finished_subtask_counts_items_and_sets_nothing,
    queued_writes_reach_their_subtask_by_identity_whatever_its_number,
    a_batch_goes_on_past_a_refused_write,
    retention_deletes_finished_runs_in_batches_never_active_ones,
    progress_then_a_transition_in_one_transaction,
    deleting_tasks_keeps_or_refuses_those_with_history,
    a_retry_counts_attempts_on_from_a_failed_or_lost_run,
    inputs_and_outputs_are_recorded_once_per_name,
    run_summaries_window_each_task_and_sum_items,
    samples_are_stored_with_progress_and_thinned_to_a_bound,
    runs_by_host_by_prefix_counted_and_streamed,
    alerts_are_claimed_once_and_leased_once,
    writes_report_the_events_they_stored,
    runs_are_sorted_filtered_and_paged_in_sql,
);

fn t(sec: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
        + Duration::seconds(sec)
        + Duration::microseconds(123_456)
}

fn facts(host: &str) -> ProcessFacts {
    ProcessFacts {
        hostname: host.into(),
        pid: 4_000_000,
        parent_pid: Some(1),
        process_start: Some(t(-100)),
        user: Some("alice".into()),
    }
}

fn new_run(id: &str, stage: &str, task: &str, at: i64) -> NewRun {
    NewRun {
        run_id: id.into(),
        stage: stage.into(),
        task: task.into(),
        facts: facts("host-a"),
        options: RunOptions::default(),
        start_time: t(at),
        lost_before: t(at - 120),
        known_lost: None,
    }
}

fn none() -> TransitionInfo {
    TransitionInfo::default()
}

fn inc(run: &str, n: u32, delta: u64) -> ProgressUpdate {
    ProgressUpdate {
        run_id: Arc::from(run),
        subtask: Some(n),
        items_delta: delta,
        ..ProgressUpdate::default()
    }
}

fn sub(number: Option<u32>, total: Option<u64>) -> SubtaskOptions {
    SubtaskOptions {
        number,
        items_total: total,
        ..SubtaskOptions::default()
    }
}

fn rule() -> LostRule {
    LostRule {
        now: t(100_000),
        this_host: "no-such-host-here".into(),
        lost_after: Duration::seconds(60),
    }
}

fn derived(mut rows: Vec<RunRow>) -> Vec<RunRow> {
    for r in &mut rows {
        r.derive(&rule());
    }
    rows
}

fn kind_of<T: std::fmt::Debug>(r: tasker::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

fn registration_upserts_and_null_never_clears(db: &mut Db) {
    let s = &mut db.s;
    let mut full = TaskSpec::new("ingest", "download");
    full.task_type = Some("python".into());
    full.description = Some("fetch files".into());
    full.stage_order = Some(1);
    full.task_order = Some(2);
    full.script_path = Some("/pipe/download.py".into());
    full.log_path = Some("/logs/download.log".into());
    let other = TaskSpec::new("ingest", "unpack");
    let ids = s.register_tasks(&[full.clone(), other], t(0)).unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    // Registering again with nothing set changes nothing but updated_at.
    let again = s
        .register_tasks(&[TaskSpec::new("ingest", "download")], t(5))
        .unwrap();
    assert_eq!(again, vec![ids[0]]);
    let row = &s
        .registered_tasks(Some("ingest"), Some("download"))
        .unwrap()[0];
    assert_eq!(row.task_id, ids[0]);
    assert_eq!(row.task_type.as_deref(), Some("python"));
    assert_eq!(row.description.as_deref(), Some("fetch files"));
    assert_eq!(row.stage_order, Some(1));
    assert_eq!(row.task_order, Some(2));
    assert_eq!(row.script_filename.as_deref(), Some("download.py"));
    assert_eq!(row.log_filename.as_deref(), Some("download.log"));
    assert_eq!(row.created_at, t(0));
    assert_eq!(row.updated_at, t(5));

    // New values replace old ones.
    let mut changed = TaskSpec::new("ingest", "download");
    changed.description = Some("fetch more files".into());
    changed.stage_order = Some(7);
    s.register_tasks(&[changed], t(6)).unwrap();
    let row = &s.registered_tasks(None, Some("download")).unwrap()[0];
    assert_eq!(row.description.as_deref(), Some("fetch more files"));
    assert_eq!(row.task_type.as_deref(), Some("python"));
    assert_eq!(row.stage_order, Some(7));

    let stages = s.stages().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0].stage_name, "ingest");
    assert_eq!(stages[0].stage_order, Some(7));
    assert_eq!(stages[0].created_at, t(0));
    assert_eq!(stages[0].updated_at, t(6));
    // Ordered by task_order (NULL last), then name.
    let names: Vec<String> = s
        .registered_tasks(Some("ingest"), None)
        .unwrap()
        .into_iter()
        .map(|r| r.task_name)
        .collect();
    assert_eq!(names, ["download", "unpack"]);
    assert!(s.registered_tasks(Some("nope"), None).unwrap().is_empty());
}

fn a_run_registers_its_stage_and_task_and_records_its_facts(db: &mut Db) {
    let s = &mut db.s;
    let mut run = new_run("r1", "fresh stage", "fresh task", 10);
    run.options = RunOptions {
        total_subtasks: Some(3),
        message: Some("go".into()),
        version: Some("1.2.3".into()),
        git_commit: Some("abc123".into()),
        script_path: Some("/x/y/run.R".into()),
        log_path: Some("/var/log/run.log".into()),
        metadata: Some(
            serde_json::json!({"n": 3, "f": 0.25, "tags": ["a", "b"], "nested": {"ok": true, "none": null}}),
        ),
        command_line: Some("Rscript /x/y/run.R --day 2026-03-01".into()),
        runtime: Some("R 4.2.2".into()),
        git_dirty: Some(true),
        ..RunOptions::default()
    };
    s.start_run(&run).unwrap();
    assert_eq!(
        kind_of(s.start_run(&run)),
        ErrorKind::AlreadyExists,
        "a run id is never reused"
    );
    assert_eq!(s.run_status("r1").unwrap(), Some(Status::Started));
    assert_eq!(s.run_status("nope").unwrap(), None);
    let r = s.run("r1").unwrap().unwrap();
    assert_eq!(r.run_id.as_deref(), Some("r1"));
    assert_eq!(r.stage_name, "fresh stage");
    assert_eq!(r.task_name, "fresh task");
    assert_eq!(r.status, Status::Started);
    assert_eq!(r.hostname.as_deref(), Some("host-a"));
    assert_eq!(r.process_id, Some(4_000_000));
    assert_eq!(r.parent_pid, Some(1));
    assert_eq!(r.process_start_time, Some(t(-100)));
    assert_eq!(r.user_name.as_deref(), Some("alice"));
    assert_eq!(r.start_time, Some(t(10)));
    assert_eq!(r.last_update, Some(t(10)));
    assert_eq!(r.heartbeat_time, Some(t(10)));
    assert_eq!(r.end_time, None);
    assert_eq!(r.total_subtasks, Some(3));
    assert_eq!(r.overall_progress_message.as_deref(), Some("go"));
    assert_eq!(r.version.as_deref(), Some("1.2.3"));
    assert_eq!(r.git_commit.as_deref(), Some("abc123"));
    assert_eq!(r.script_filename.as_deref(), Some("run.R"));
    assert_eq!(r.log_filename.as_deref(), Some("run.log"));
    assert_eq!(r.metadata, run.options.metadata);
    assert_eq!(
        r.command_line.as_deref(),
        Some("Rscript /x/y/run.R --day 2026-03-01")
    );
    assert_eq!(r.runtime.as_deref(), Some("R 4.2.2"));
    assert_eq!(r.git_dirty, Some(true));
    assert_eq!(r.tasker_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!((r.attempt, r.retry_of.as_deref()), (Some(1), None));
    assert_eq!(r.subtask_count, 0);
    assert!(s.run("nope").unwrap().is_none());
    let tasks = s.registered_tasks(Some("fresh stage"), None).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].script_filename, None,
        "a run's script is its own, not the task's"
    );
    let ev = s.events_after(0, Some("r1"), 100).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].old_status, ev[0].new_status, ev[0].kind.as_str()),
        (Some(Status::NotStarted), Status::Started, "run")
    );
    assert_eq!(ev[0].message.as_deref(), Some("go"));
    assert_eq!(ev[0].time, t(10));

    // A registered script is what a run without its own shows.
    let mut spec = TaskSpec::new("fresh stage", "fresh task");
    spec.script_path = Some("/registered/job.py".into());
    s.register_tasks(&[spec], t(11)).unwrap();
    s.start_run(&new_run("r2", "fresh stage", "fresh task", 12))
        .unwrap();
    let r2 = s.run("r2").unwrap().unwrap();
    assert_eq!(r2.script_filename.as_deref(), Some("job.py"));
    assert_eq!(r2.script_path.as_deref(), Some("/registered/job.py"));
    assert_eq!(r2.metadata, None);
}

fn run_transitions_are_checked_and_reset_is_explicit(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    assert_eq!(
        s.run_transition("r", Status::Running, &none(), t(1))
            .unwrap(),
        Status::Started
    );
    assert_eq!(
        kind_of(s.run_transition("r", Status::Started, &none(), t(2))),
        ErrorKind::InvalidTransition
    );
    s.run_transition(
        "r",
        Status::Paused,
        &TransitionInfo::message(Some("coffee")),
        t(3),
    )
    .unwrap();
    s.run_transition("r", Status::Running, &none(), t(4))
        .unwrap();
    s.run_transition(
        "r",
        Status::Failed,
        &TransitionInfo::error("boom", Some("trace\nline 2")),
        t(5),
    )
    .unwrap();
    let r = s.run("r").unwrap().unwrap();
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.end_time, Some(t(5)));
    assert_eq!(r.error_message.as_deref(), Some("boom"));
    assert_eq!(r.error_detail.as_deref(), Some("trace\nline 2"));
    assert_eq!(r.overall_progress_message.as_deref(), Some("coffee"));
    // Out of a terminal state only with a reset (FAILED again is a no-op).
    for to in [Status::Running, Status::Completed, Status::Paused] {
        let e = s.run_transition("r", to, &none(), t(6)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTransition, "{to}");
        assert!(e.to_string().contains("FAILED"), "{e}");
    }
    // A reset leaves a terminal state, clears the error and is recorded as such.
    let reset = TransitionInfo {
        reset: true,
        ..TransitionInfo::default()
    };
    assert_eq!(
        kind_of(s.run_transition("r", Status::NotStarted, &reset, t(7))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        s.run_transition("r", Status::Running, &reset, t(8))
            .unwrap(),
        Status::Failed
    );
    let r = s.run("r").unwrap().unwrap();
    assert_eq!(r.status, Status::Running);
    assert_eq!(r.end_time, None);
    assert_eq!(r.error_message, None);
    assert_eq!(r.error_detail, None);
    s.run_transition("r", Status::Completed, &none(), t(9))
        .unwrap();
    assert_eq!(
        kind_of(s.run_transition("nope", Status::Running, &none(), t(9))),
        ErrorKind::NotFound
    );
    let kinds: Vec<(String, Option<Status>, Status)> = s
        .events_after(0, Some("r"), 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.old_status, e.new_status))
        .collect();
    use Status::*;
    assert_eq!(
        kinds,
        vec![
            ("run".into(), Some(NotStarted), Started),
            ("run".into(), Some(Started), Running),
            ("run".into(), Some(Running), Paused),
            ("run".into(), Some(Paused), Running),
            ("run".into(), Some(Running), Failed),
            ("reset".into(), Some(Failed), Running),
            ("run".into(), Some(Running), Completed),
        ]
    );
}

fn subtasks_are_numbered_and_never_silently_overwritten(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    assert_eq!(
        s.subtask_start("r", "one", &sub(None, Some(10)), t(1))
            .unwrap(),
        1
    );
    // The first subtask moves the run to RUNNING, with an event.
    assert_eq!(s.run_status("r").unwrap(), Some(Status::Running));
    assert_eq!(
        s.subtask_start("r", "two", &sub(None, None), t(2)).unwrap(),
        2
    );
    assert_eq!(
        s.subtask_start("r", "five", &sub(Some(5), None), t(3))
            .unwrap(),
        5
    );
    assert_eq!(
        s.subtask_start("r", "six", &sub(None, None), t(4)).unwrap(),
        6
    );
    let e = s
        .subtask_start("r", "again", &sub(Some(1), None), t(5))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("restart"), "{e}");
    s.apply_progress(&[inc("r", 1, 7)], &[], t(6)).unwrap();
    s.subtask_transition(
        "r",
        1,
        Status::Failed,
        &TransitionInfo::error("bad row", None),
        t(7),
    )
    .unwrap();
    // Restart: same number, progress and error cleared, recorded as a reset.
    let restart = SubtaskOptions {
        number: Some(1),
        items_total: Some(20),
        message: Some("second try".into()),
        restart: true,
    };
    assert_eq!(
        s.subtask_start("r", "one again", &restart, t(8)).unwrap(),
        1
    );
    let st = &s.subtasks("r").unwrap()[0];
    assert_eq!(st.subtask_name, "one again");
    assert_eq!(st.status, Status::Started);
    assert_eq!(st.items_complete, 0);
    assert_eq!(st.items_total, Some(20));
    assert_eq!(st.error_message, None);
    assert_eq!(st.end_time, None);
    assert_eq!(st.start_time, Some(t(8)));
    assert_eq!(st.progress_message.as_deref(), Some("second try"));
    assert_eq!(
        s.subtask_state("r", 1)
            .unwrap()
            .map(|x| (x.status, x.items_total)),
        Some((Status::Started, Some(20)))
    );
    assert_eq!(s.subtask_state("r", 3).unwrap(), None);
    let numbers: Vec<i64> = s
        .subtasks("r")
        .unwrap()
        .iter()
        .map(|x| x.subtask_number)
        .collect();
    assert_eq!(numbers, [1, 2, 5, 6]);
    assert_eq!(s.run("r").unwrap().unwrap().current_subtask, Some(1));
    // Subtask transitions are checked too.
    s.subtask_transition("r", 2, Status::Completed, &none(), t(9))
        .unwrap();
    assert_eq!(
        kind_of(s.subtask_transition("r", 2, Status::Running, &none(), t(10))),
        ErrorKind::InvalidTransition
    );
    assert_eq!(
        kind_of(s.subtask_transition("r", 9, Status::Running, &none(), t(10))),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind_of(s.subtask_transition("nope", 1, Status::Running, &none(), t(10))),
        ErrorKind::NotFound
    );
    // No subtask starts in a finished run.
    s.run_transition("r", Status::Completed, &none(), t(11))
        .unwrap();
    assert_eq!(
        kind_of(s.subtask_start("r", "late", &sub(None, None), t(12))),
        ErrorKind::InvalidTransition
    );
    assert_eq!(
        kind_of(s.subtask_start("nope", "x", &sub(None, None), t(12))),
        ErrorKind::NotFound
    );
    let reset_events: Vec<_> = s
        .events_after(0, Some("r"), 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "reset")
        .collect();
    assert_eq!(reset_events.len(), 1);
    assert_eq!(reset_events[0].subtask_number, Some(1));
    assert_eq!(reset_events[0].old_status, Some(Status::Failed));
    assert_eq!(reset_events[0].message.as_deref(), Some("one again"));
}

fn progress_adds_deltas_and_moves_started_to_running_once(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    s.subtask_start("r", "items", &sub(None, Some(100)), t(1))
        .unwrap();
    let before = s.events_after(0, Some("r"), 100).unwrap().len();
    s.apply_progress(&[inc("r", 1, 5)], &[], t(2)).unwrap();
    s.apply_progress(&[inc("r", 1, 7), inc("r", 1, 1)], &[], t(3))
        .unwrap();
    let st = &s.subtasks("r").unwrap()[0];
    assert_eq!(st.items_complete, 13);
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.last_update, Some(t(3)));
    let ev = s.events_after(0, Some("r"), 100).unwrap();
    assert_eq!(ev.len(), before + 1, "STARTED -> RUNNING is recorded once");
    let last = ev.last().unwrap();
    assert_eq!(
        (
            last.subtask_number,
            last.old_status,
            last.new_status,
            last.kind.as_str()
        ),
        (Some(1), Some(Status::Started), Status::Running, "subtask")
    );
    // An absolute value replaces the count, and a delta in the same update adds to it.
    let set = ProgressUpdate {
        run_id: Arc::from("r"),
        subtask: Some(1),
        items_set: Some(50),
        items_delta: 2,
        items_total: Some(200),
        percent: Some(12.5),
        message: Some("half".into()),
        current_subtask: None,
        subtask_uid: None,
    };
    s.apply_progress(&[set], &[], t(4)).unwrap();
    let st = &s.subtasks("r").unwrap()[0];
    assert_eq!(st.items_complete, 52);
    assert_eq!(st.items_total, Some(200));
    assert_eq!(st.stored_percent, Some(12.5));
    assert_eq!(st.progress_message.as_deref(), Some("half"));
    // Progress never changes a terminal or paused status.
    s.subtask_transition("r", 1, Status::Paused, &none(), t(5))
        .unwrap();
    s.apply_progress(&[inc("r", 1, 1)], &[], t(6)).unwrap();
    assert_eq!(s.subtasks("r").unwrap()[0].status, Status::Paused);
    assert_eq!(s.subtasks("r").unwrap()[0].items_complete, 53);
    // Heartbeats refresh only the heartbeat.
    s.apply_progress(&[], &[Arc::from("r")], t(30)).unwrap();
    let r = s.run("r").unwrap().unwrap();
    assert_eq!(r.heartbeat_time, Some(t(30)));
    assert_eq!(r.last_update, Some(t(6)));
    assert_eq!(r.subtask_count, 1);
    assert!((r.subtask_fraction_sum - 53.0 / 200.0).abs() < 1e-12);
    // An empty flush is a no-op; progress of an unknown run or subtask is ignored.
    s.apply_progress(&[], &[], t(31)).unwrap();
    s.apply_progress(&[inc("nope", 1, 1), inc("r", 9, 1)], &[], t(32))
        .unwrap();
    assert_eq!(s.subtasks("r").unwrap().len(), 1);
}

fn run_progress_moves_a_started_run_to_running(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let p = ProgressUpdate {
        run_id: Arc::from("r"),
        subtask: None,
        percent: Some(40.0),
        message: Some("warming up".into()),
        current_subtask: Some(2),
        ..ProgressUpdate::default()
    };
    s.apply_progress(&[p], &[], t(1)).unwrap();
    let r = s.run("r").unwrap().unwrap();
    assert_eq!(r.status, Status::Running);
    assert_eq!(r.explicit_percent, Some(40.0));
    assert_eq!(r.current_subtask, Some(2));
    assert_eq!(r.overall_progress_message.as_deref(), Some("warming up"));
    assert_eq!(r.last_update, Some(t(1)));
    let ev = s.events_after(0, Some("r"), 100).unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[1].old_status, ev[1].new_status, ev[1].subtask_number),
        (Some(Status::Started), Status::Running, None)
    );
    let mut rows = derived(vec![r]);
    assert_eq!(rows[0].overall_percent_complete, Some(40.0));
    assert!(rows[0].lost, "no heartbeat for a day: lost");
    rows[0].status = Status::Completed;
    rows[0].derive(&rule());
    assert!(!rows[0].lost);
}

fn a_terminal_run_closes_its_open_subtasks(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    for name in ["a", "b", "c"] {
        s.subtask_start("r", name, &sub(None, None), t(1)).unwrap();
    }
    s.subtask_transition("r", 1, Status::Completed, &none(), t(2))
        .unwrap();
    s.subtask_transition("r", 3, Status::Paused, &none(), t(3))
        .unwrap();
    let last = s
        .events_after(0, None, 1000)
        .unwrap()
        .last()
        .unwrap()
        .event_id;
    s.run_transition(
        "r",
        Status::Failed,
        &TransitionInfo::error("disk full", None),
        t(4),
    )
    .unwrap();
    let subs = s.subtasks("r").unwrap();
    let st: Vec<(Status, Option<&str>)> = subs
        .iter()
        .map(|x| (x.status, x.error_message.as_deref()))
        .collect();
    assert_eq!(
        st,
        vec![
            (Status::Completed, None),
            (Status::Failed, Some("task failed - subtask terminated")),
            (Status::Failed, Some("task failed - subtask terminated")),
        ]
    );
    assert_eq!(subs[1].end_time, Some(t(4)));
    assert_eq!(subs[0].end_time, Some(t(2)));
    let ev = s.events_after(last, None, 100).unwrap();
    let seen: Vec<(Option<i64>, Option<Status>, Status)> = ev
        .iter()
        .map(|e| (e.subtask_number, e.old_status, e.new_status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some(2), Some(Status::Started), Status::Failed),
            (Some(3), Some(Status::Paused), Status::Failed),
            (None, Some(Status::Running), Status::Failed),
        ]
    );
    let r = s.run("r").unwrap().unwrap();
    assert_eq!(r.subtasks_completed, 1);
    assert_eq!(r.subtask_count, 3);
    // Cancel closes with CANCELLED and no message.
    s.start_run(&new_run("q", "st", "tk", 10)).unwrap();
    s.subtask_start("q", "x", &sub(None, None), t(11)).unwrap();
    s.run_transition("q", Status::Cancelled, &none(), t(12))
        .unwrap();
    let x = &s.subtasks("q").unwrap()[0];
    assert_eq!(
        (x.status, x.error_message.as_deref()),
        (Status::Cancelled, None)
    );
}

fn task_status_lists_never_run_tasks_and_the_latest_run(db: &mut Db) {
    let s = &mut db.s;
    let mut a = TaskSpec::new("s1", "a");
    a.stage_order = Some(1);
    a.task_order = Some(1);
    let mut b = TaskSpec::new("s1", "b");
    b.task_order = Some(2);
    let mut c = TaskSpec::new("s2", "c");
    c.stage_order = Some(2);
    s.register_tasks(&[c, b, a], t(0)).unwrap();
    s.start_run(&new_run("a-old", "s1", "a", 1)).unwrap();
    s.run_transition("a-old", Status::Completed, &none(), t(2))
        .unwrap();
    s.start_run(&new_run("a-new", "s1", "a", 3)).unwrap();
    s.subtask_start("a-new", "x", &sub(None, Some(4)), t(4))
        .unwrap();
    s.apply_progress(&[inc("a-new", 1, 1)], &[], t(5)).unwrap();
    let rows = derived(s.task_status(&StatusFilter::default()).unwrap());
    let seen: Vec<(&str, &str, Status, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.stage_name.as_str(),
                r.task_name.as_str(),
                r.status,
                r.run_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("s1", "a", Status::Running, Some("a-new")),
            ("s1", "b", Status::NotStarted, None),
            ("s2", "c", Status::NotStarted, None),
        ]
    );
    assert_eq!(rows[0].overall_percent_complete, Some(25.0));
    assert_eq!(rows[1].overall_percent_complete, None);
    assert_eq!(rows[1].start_time, None);
    assert!(!rows[1].lost);
    let only = |f: StatusFilter, s: &mut Box<dyn Store>| -> Vec<String> {
        s.task_status(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.task_name)
            .collect()
    };
    assert_eq!(
        only(
            StatusFilter {
                status: Some(Status::NotStarted),
                ..Default::default()
            },
            s
        ),
        ["b", "c"]
    );
    assert_eq!(
        only(
            StatusFilter {
                stage: Some("s2".into()),
                ..Default::default()
            },
            s
        ),
        ["c"]
    );
    assert_eq!(
        only(
            StatusFilter {
                task: Some("a".into()),
                ..Default::default()
            },
            s
        ),
        ["a"]
    );
    assert_eq!(
        only(
            StatusFilter {
                limit: Some(2),
                ..Default::default()
            },
            s
        ),
        ["a", "b"]
    );
    assert!(only(
        StatusFilter {
            status: Some(Status::Failed),
            ..Default::default()
        },
        s
    )
    .is_empty());
}

fn several_active_runs_of_one_task_are_all_listed(db: &mut Db) {
    let s = &mut db.s;
    for (i, host) in ["h1", "h2", "h3", "h4"].iter().enumerate() {
        let mut run = new_run(&format!("run-{i}"), "par", "shard", i as i64);
        run.facts = facts(host);
        run.facts.pid = 100 + i as u32;
        s.start_run(&run).unwrap();
    }
    s.run_transition("run-1", Status::Paused, &none(), t(10))
        .unwrap();
    s.run_transition("run-3", Status::Completed, &none(), t(10))
        .unwrap();
    s.start_run(&new_run("other", "par", "another", 20))
        .unwrap();
    let active = s.active_runs().unwrap();
    let seen: Vec<(&str, &str, Status, Option<&str>)> = active
        .iter()
        .map(|r| {
            (
                r.task_name.as_str(),
                r.run_id.as_deref().unwrap(),
                r.status,
                r.hostname.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("another", "other", Status::Started, Some("host-a")),
            ("shard", "run-0", Status::Started, Some("h1")),
            ("shard", "run-1", Status::Paused, Some("h2")),
            ("shard", "run-2", Status::Started, Some("h3")),
        ]
    );
    // task_status shows the latest run only.
    let latest = s
        .task_status(&StatusFilter {
            task: Some("shard".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].run_id.as_deref(), Some("run-3"));
}

fn history_is_newest_first_and_filters(db: &mut Db) {
    let s = &mut db.s;
    for i in 0..5 {
        s.start_run(&new_run(
            &format!("h{i}"),
            "st",
            if i % 2 == 0 { "even" } else { "odd" },
            i,
        ))
        .unwrap();
    }
    s.run_transition(
        "h1",
        Status::Failed,
        &TransitionInfo::error("x", None),
        t(9),
    )
    .unwrap();
    let ids = |f: HistoryFilter, s: &mut Box<dyn Store>| -> Vec<String> {
        s.history(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id.unwrap())
            .collect()
    };
    assert_eq!(
        ids(HistoryFilter::default(), s),
        ["h4", "h3", "h2", "h1", "h0"]
    );
    assert_eq!(
        ids(
            HistoryFilter {
                task: Some("even".into()),
                ..Default::default()
            },
            s
        ),
        ["h4", "h2", "h0"]
    );
    assert_eq!(
        ids(
            HistoryFilter {
                status: Some(Status::Failed),
                ..Default::default()
            },
            s
        ),
        ["h1"]
    );
    assert_eq!(
        ids(
            HistoryFilter {
                since: Some(t(3)),
                ..Default::default()
            },
            s
        ),
        ["h4", "h3"]
    );
    assert_eq!(
        ids(
            HistoryFilter {
                limit: Some(2),
                stage: Some("st".into()),
                ..Default::default()
            },
            s
        ),
        ["h4", "h3"]
    );
    assert!(ids(
        HistoryFilter {
            stage: Some("none".into()),
            ..Default::default()
        },
        s
    )
    .is_empty());
}

fn events_after_pages_through_transitions(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("a", "st", "tk", 0)).unwrap();
    s.start_run(&new_run("b", "st", "tk2", 1)).unwrap();
    s.subtask_start("a", "one", &sub(None, None), t(2)).unwrap();
    s.run_transition(
        "b",
        Status::Completed,
        &TransitionInfo::message(Some("fine")),
        t(3),
    )
    .unwrap();
    let all = s.events_after(0, None, 100).unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert_eq!(all[0].run_id, "a");
    assert_eq!(all[0].stage_name, "st");
    assert_eq!(all[0].task_name, "tk");
    let page1 = s.events_after(0, None, 2).unwrap();
    let page2 = s.events_after(page1[1].event_id, None, 2).unwrap();
    let page3 = s.events_after(page2[1].event_id, None, 2).unwrap();
    assert_eq!(page3.len(), 1);
    let paged: Vec<i64> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|e| e.event_id)
        .collect();
    assert_eq!(paged, all.iter().map(|e| e.event_id).collect::<Vec<_>>());
    let b = s.events_after(0, Some("b"), 100).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].message.as_deref(), Some("fine"));
    assert_eq!(b[1].time, t(3));
    assert!(s
        .events_after(all.last().unwrap().event_id, None, 100)
        .unwrap()
        .is_empty());
}

fn delete_runs_cascades_and_honours_its_selector(db: &mut Db) {
    let s = &mut db.s;
    for (id, task, at) in [
        ("d1", "x", 0),
        ("d2", "x", 10),
        ("d3", "y", 20),
        ("d4", "y", 30),
    ] {
        s.start_run(&new_run(id, "st", task, at)).unwrap();
        s.subtask_start(id, "sub", &sub(None, None), t(at + 1))
            .unwrap();
    }
    s.run_transition(
        "d1",
        Status::Failed,
        &TransitionInfo::error("e", None),
        t(2),
    )
    .unwrap();
    s.run_transition("d2", Status::Completed, &none(), t(12))
        .unwrap();
    // Before t(15), keeping failed runs: only d2 (ended at 12) goes.
    let n = s
        .delete_runs(&RunSelector {
            before: Some(t(15)),
            keep_failed: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(n, 1);
    assert!(s.run("d2").unwrap().is_none());
    assert!(s.subtasks("d2").unwrap().is_empty());
    assert!(s.events_after(0, Some("d2"), 100).unwrap().is_empty());
    assert_eq!(
        s.delete_runs(&RunSelector {
            run_id: Some("d1".into()),
            ..Default::default()
        })
        .unwrap(),
        1
    );
    assert_eq!(
        s.delete_runs(&RunSelector {
            stage: Some("st".into()),
            task: Some("y".into()),
            ..Default::default()
        })
        .unwrap(),
        2
    );
    assert!(s.history(&HistoryFilter::default()).unwrap().is_empty());
    assert!(s.events_after(0, None, 100).unwrap().is_empty());
    // Tasks stay registered.
    assert_eq!(s.registered_tasks(None, None).unwrap().len(), 2);
    assert_eq!(
        s.delete_runs(&RunSelector {
            run_id: Some("nope".into()),
            ..Default::default()
        })
        .unwrap(),
        0
    );
}

fn hostile_strings_come_back_verbatim(db: &mut Db) {
    let s = &mut db.s;
    let hostile = [
        "'; DROP TABLE runs; --",
        "Robert'); DELETE FROM tasks WHERE ('1'='1",
        "\"double\" `back` \\backslash\\ $1 ?1 %s %_ @.runs",
        "<script>alert('x')</script> &amp; <b>",
        "ünïcödé — 漢字 — 🚀 — \u{202e}rtl",
        "line1\nline2\r\n\ttab",
        "   leading and trailing spaces   ",
    ];
    for (i, h) in hostile.iter().enumerate() {
        let mut spec = TaskSpec::new(*h, *h);
        spec.description = Some(h.to_string());
        spec.script_path = Some(format!("/tmp/{h}"));
        s.register_tasks(&[spec], t(0)).unwrap();
        let id = format!("run {h} {i}");
        let mut run = new_run(&id, h, h, i as i64);
        run.facts.hostname = h.to_string();
        run.facts.user = Some(h.to_string());
        run.options.message = Some(h.to_string());
        run.options.version = Some(h.to_string());
        run.options.metadata = Some(serde_json::json!({ *h: [h, {"k": h}], "n": -1.5e-7 }));
        s.start_run(&run).unwrap();
        assert_eq!(s.subtask_start(&id, h, &sub(None, None), t(1)).unwrap(), 1);
        s.apply_progress(
            &[ProgressUpdate {
                message: Some(h.to_string()),
                ..inc(&id, 1, 1)
            }],
            &[],
            t(2),
        )
        .unwrap();
        s.run_transition(
            &id,
            Status::Failed,
            &TransitionInfo::error(h, Some(h)),
            t(3),
        )
        .unwrap();
        let r = s.run(&id).unwrap().unwrap();
        assert_eq!(r.run_id.as_deref(), Some(id.as_str()));
        assert_eq!(r.stage_name, *h);
        assert_eq!(r.task_name, *h);
        assert_eq!(r.hostname.as_deref(), Some(*h));
        assert_eq!(r.user_name.as_deref(), Some(*h));
        assert_eq!(r.version.as_deref(), Some(*h));
        assert_eq!(r.error_message.as_deref(), Some(*h));
        assert_eq!(r.error_detail.as_deref(), Some(*h));
        assert_eq!(r.metadata, run.options.metadata);
        let st = &s.subtasks(&id).unwrap()[0];
        assert_eq!(st.subtask_name, *h);
        assert_eq!(st.progress_message.as_deref(), Some(*h));
        let task = &s.registered_tasks(Some(h), Some(h)).unwrap()[0];
        assert_eq!(task.description.as_deref(), Some(*h));
        let ev = s.events_after(0, Some(&id), 100).unwrap();
        assert_eq!(ev.last().unwrap().message.as_deref(), Some(*h));
        assert_eq!(ev[0].stage_name, *h);
    }
    // Wildcards are not wildcards.
    assert!(s.registered_tasks(Some("%"), None).unwrap().is_empty());
    assert!(s.registered_tasks(Some("_"), None).unwrap().is_empty());
    // A huge message (4 MiB) comes back whole.
    let huge = "x\u{e9}".repeat(2 << 20);
    let mut run = new_run("huge", "st", "tk", 0);
    run.options.message = Some(huge.clone());
    s.start_run(&run).unwrap();
    assert_eq!(
        s.run("huge")
            .unwrap()
            .unwrap()
            .overall_progress_message
            .as_deref(),
        Some(huge.as_str())
    );
    assert_eq!(
        s.registered_tasks(None, None).unwrap().len(),
        hostile.len() + 1
    );
}

fn a_failed_subtask_keeps_its_error_detail_until_restarted(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let n = s
        .subtask_start("r", "load", &sub(None, None), t(1))
        .unwrap();
    let trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: 'bad'";
    s.subtask_transition(
        "r",
        n,
        Status::Failed,
        &TransitionInfo::error("cannot parse", Some(trace)),
        t(2),
    )
    .unwrap();
    let row = &s.subtasks("r").unwrap()[0];
    assert_eq!(row.error_message.as_deref(), Some("cannot parse"));
    assert_eq!(row.error_detail.as_deref(), Some(trace));
    // A restart starts from nothing: no error left behind.
    let restart = SubtaskOptions {
        number: Some(n),
        restart: true,
        ..SubtaskOptions::default()
    };
    s.subtask_start("r", "load", &restart, t(3)).unwrap();
    let row = &s.subtasks("r").unwrap()[0];
    assert_eq!(
        (row.error_message.as_deref(), row.error_detail.as_deref()),
        (None, None)
    );
}

fn store_errors_name_what_is_wrong(db: &mut Db) {
    let s = &mut db.s;
    let e = s
        .run_transition("missing-run", Status::Completed, &none(), t(0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("missing-run"), "{e}");
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let e = s.start_run(&new_run("r", "st", "tk", 0)).unwrap_err();
    assert!(e.to_string().contains("run already exists: r"), "{e}");
    assert_eq!(s.backend(), db.backend);
}

/// The same scenario on both backends gives equal rows (derived values included)
/// and equal JSON renderings (the column names and value types bindings see).
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn both_backends_return_identical_rows() {
    let mut pg = postgres("identical");
    let mut lite = sqlite();
    let a = scenario(&mut *lite.s);
    let b = scenario(&mut *pg.s);
    assert_eq!(a.len(), b.len());
    for ((what, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "{what} differs between SQLite and PostgreSQL");
    }
}

fn scenario(s: &mut dyn Store) -> Vec<(&'static str, serde_json::Value)> {
    let mut spec = TaskSpec::new("prep", "clean");
    spec.stage_order = Some(1);
    spec.task_order = Some(1);
    spec.task_type = Some("R".into());
    spec.script_path = Some("/p/clean.R".into());
    s.register_tasks(&[spec, TaskSpec::new("prep", "never run")], t(0))
        .unwrap();
    let mut run = new_run("run-1", "prep", "clean", 1);
    run.options.total_subtasks = Some(4);
    run.options.metadata = Some(serde_json::json!({"rows": 120000, "ratio": 0.75, "who": "ü"}));
    s.start_run(&run).unwrap();
    s.subtask_start("run-1", "load", &sub(None, Some(3)), t(2))
        .unwrap();
    s.subtask_start("run-1", "fit", &sub(None, None), t(3))
        .unwrap();
    s.apply_progress(
        &[
            inc("run-1", 1, 1),
            ProgressUpdate {
                percent: Some(30.0),
                ..inc("run-1", 2, 0)
            },
        ],
        &[Arc::from("run-1")],
        t(4),
    )
    .unwrap();
    s.subtask_transition("run-1", 1, Status::Completed, &none(), t(5))
        .unwrap();
    let mut other = new_run("run-2", "model", "fit", 6);
    other.facts = facts("host-b");
    s.start_run(&other).unwrap();
    s.run_transition(
        "run-2",
        Status::Failed,
        &TransitionInfo::error("oom", Some("killed")),
        t(7),
    )
    .unwrap();
    let j = |v: &dyn AsJson| v.json();
    vec![
        (
            "task_status",
            j(&derived(s.task_status(&StatusFilter::default()).unwrap())),
        ),
        ("active_runs", j(&derived(s.active_runs().unwrap()))),
        (
            "history",
            j(&derived(s.history(&HistoryFilter::default()).unwrap())),
        ),
        ("run", j(&derived(vec![s.run("run-1").unwrap().unwrap()]))),
        (
            "raw rows",
            serde_json::Value::String(format!(
                "{:?}",
                s.history(&HistoryFilter::default()).unwrap()
            )),
        ),
        (
            "subtasks",
            j(&{
                let mut v = s.subtasks("run-1").unwrap();
                v.iter_mut().for_each(|x| x.derive(t(10)));
                v
            }),
        ),
        (
            "registered_tasks",
            j(&s.registered_tasks(None, None).unwrap()),
        ),
        ("stages", j(&s.stages().unwrap())),
        ("events", j(&s.events_after(0, None, 1000).unwrap())),
        ("run_status", j(&s.run_status("run-2").unwrap())),
        (
            "subtask_state",
            j(&s.subtask_state("run-1", 1)
                .unwrap()
                .map(|x| (x.status, x.items_total))),
        ),
    ]
}

/// Serializes any query result for comparison.
trait AsJson {
    fn json(&self) -> serde_json::Value;
}

impl<T: serde::Serialize> AsJson for T {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap()
    }
}

/// Rows written by a tasker of schema version 1, as that version wrote them.
const V1_ROWS: &str = "
    INSERT INTO stages(stage_id, stage_name, created_at, updated_at)
        VALUES (1, 'load', '2026-03-01T12:00:00.000000Z', '2026-03-01T12:00:00.000000Z');
    INSERT INTO tasks(task_id, stage_id, task_name, created_at, updated_at)
        VALUES (1, 1, 'fetch', '2026-03-01T12:00:00.000000Z', '2026-03-01T12:00:00.000000Z');
    INSERT INTO runs(run_id, task_id, hostname, process_id, status, start_time, last_update,
                     heartbeat_time, error_message)
        VALUES ('old', 1, 'h', 1, 'FAILED', '2026-03-01T12:00:00.000000Z',
                '2026-03-01T12:00:01.000000Z', '2026-03-01T12:00:01.000000Z', 'boom');
    INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, last_update,
                         items_complete, error_message)
        VALUES ('old', 1, 'part', 'FAILED', '2026-03-01T12:00:01.000000Z', 7, 'bad row');";

/// Checks a database that was at version 1 after this tasker opened it.
fn check_migrated_from_v1(s: &mut dyn Store) {
    let old = &s.subtasks("old").unwrap()[0];
    assert_eq!(
        (
            old.items_complete,
            old.error_message.as_deref(),
            old.error_detail.as_deref()
        ),
        (7, Some("bad row"), None)
    );
    assert_eq!(
        s.run("old").unwrap().unwrap().error_message.as_deref(),
        Some("boom")
    );
    // And the new column is written through the new statements.
    s.start_run(&new_run("new", "load", "fetch", 10)).unwrap();
    let n = s
        .subtask_start("new", "part", &sub(None, None), t(11))
        .unwrap();
    s.subtask_transition(
        "new",
        n,
        Status::Failed,
        &TransitionInfo::error("x", Some("why")),
        t(12),
    )
    .unwrap();
    assert_eq!(
        s.subtasks("new").unwrap()[0].error_detail.as_deref(),
        Some("why")
    );
}

#[test]
fn a_version_1_sqlite_database_is_migrated_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!(
            "../src/store/migrations/sqlite/0001_initial.sql"
        ))
        .unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                                          applied_at TEXT NOT NULL);
             INSERT INTO schema_version VALUES (1, 'initial schema', '2026-03-01T12:00:00.000000Z');",
        )
        .unwrap();
        c.execute_batch(V1_ROWS).unwrap();
    }
    let mut s = store::open(&Config::sqlite(&path)).unwrap();
    check_migrated_from_v1(&mut *s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = c
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn a_version_1_postgres_schema_is_migrated_keeping_its_rows() {
    let url = pg_url();
    let schema = format!("v1_{}", std::process::id());
    let mut c =
        postgres::Client::connect(&format!("{url} sslmode=disable"), postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema}; SET search_path TO {schema};
         CREATE TABLE schema_version (version bigint PRIMARY KEY, description text NOT NULL,
                                      applied_at timestamptz NOT NULL);
         INSERT INTO schema_version VALUES (1, 'initial schema', now());"
    ))
    .unwrap();
    c.batch_execute(include_str!(
        "../src/store/migrations/postgres/0001_initial.sql"
    ))
    .unwrap();
    c.batch_execute(V1_ROWS).unwrap();
    let mut config = Config::sqlite("");
    config.location = Location::Postgres {
        conninfo: Secret::new(url),
        schema: schema.clone(),
    };
    let mut s = store::open(&config).unwrap();
    check_migrated_from_v1(&mut *s);
    let version: i64 = c
        .query_one(
            &format!("SELECT MAX(version) FROM {schema}.schema_version"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, 10);
}

fn id(writer: &str, seq: u64) -> OpId {
    OpId {
        writer: Arc::from(writer),
        seq,
    }
}

fn events_of(s: &mut Box<dyn Store>, run: &str) -> usize {
    s.events_after(0, Some(run), 10_000).unwrap().len()
}

/// A write whose COMMIT went through but whose answer was lost is sent again under
/// the same id: it is applied once, and never after a later write of its writer.
fn a_write_sent_again_under_its_id_is_applied_once(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let uid: Arc<str> = Arc::from("0194-uid-a");
    let start = Op::SubtaskStart {
        run_id: "r".into(),
        uid: Some(Arc::clone(&uid)),
        name: "items".into(),
        options: sub(None, None),
        at: t(1),
        renumber_if_taken: true,
    };
    let n = match s.apply(&start, Some(&id("w", 1))).unwrap() {
        Output::SubtaskStarted { number } => number,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        s.apply(&start, Some(&id("w", 1))).unwrap(),
        Output::SubtaskStarted { number: n },
        "a start sent again answers the same number"
    );
    assert_eq!(
        s.apply(&start, None).unwrap(),
        Output::SubtaskStarted { number: n },
        "a start is applied once by identity, with or without an id"
    );
    assert_eq!(s.subtasks("r").unwrap().len(), 1);
    let progress = |delta| Op::Progress {
        updates: vec![ProgressUpdate {
            subtask_uid: Some(Arc::clone(&uid)),
            ..inc("r", n, delta)
        }],
        heartbeats: vec![],
        samples: vec![],
        logs: Default::default(),
        at: t(2),
    };
    let count = |s: &mut Box<dyn Store>| s.subtasks("r").unwrap()[0].items_complete;
    s.apply(&progress(5), Some(&id("w", 2))).unwrap();
    assert_eq!(
        s.apply(&progress(5), Some(&id("w", 2))).unwrap(),
        Output::Duplicate
    );
    assert_eq!(count(s), 5, "the same batch twice counts once");
    s.apply(&progress(7), Some(&id("w", 4))).unwrap();
    assert_eq!(
        s.apply(&progress(100), Some(&id("w", 3))).unwrap(),
        Output::Duplicate
    );
    assert_eq!(
        count(s),
        12,
        "an older write after a newer one is not applied"
    );
    s.apply(&progress(1), Some(&id("other", 1))).unwrap();
    assert_eq!(count(s), 13, "another writer has its own numbers");
    s.apply(&progress(1), None).unwrap();
    assert_eq!(count(s), 14, "without an id a write is always applied");
    // A transition: a reset sent twice would record two resets and could undo
    // what happened in between; under its id it is applied once.
    let pause = Op::SubtaskTransition {
        run_id: "r".into(),
        subtask: SubtaskRef {
            uid: Some(Arc::clone(&uid)),
            number: 99,
        },
        to: Status::Paused,
        info: none(),
        at: t(3),
    };
    let events = events_of(s, "r");
    s.apply(&pause, Some(&id("w", 5))).unwrap();
    s.subtask_transition("r", n, Status::Running, &none(), t(4))
        .unwrap();
    assert_eq!(
        s.apply(&pause, Some(&id("w", 5))).unwrap(),
        Output::Duplicate
    );
    assert_eq!(s.subtasks("r").unwrap()[0].status, Status::Running);
    assert_eq!(events_of(s, "r"), events + 2);
    let complete = Op::RunTransition {
        run_id: "r".into(),
        to: Status::Completed,
        info: none(),
        at: t(5),
    };
    s.apply(&complete, Some(&id("w", 6))).unwrap();
    assert_eq!(
        s.apply(&complete, Some(&id("w", 6))).unwrap(),
        Output::Duplicate
    );
    // A queued run start whose run exists was that start.
    let again = Op::StartRun(Box::new(new_run("r", "st", "tk", 0)));
    assert_eq!(
        s.apply(&again, Some(&id("w", 7))).unwrap(),
        Output::Duplicate
    );
    assert_eq!(kind_of(s.apply(&again, None)), ErrorKind::AlreadyExists);
}

/// Finishing what is finished is not an error: it answers success and writes
/// nothing. Leaving a terminal status for another still needs a reset.
fn same_status_transitions_change_nothing_and_write_no_event(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let n = s.subtask_start("r", "a", &sub(None, None), t(1)).unwrap();
    s.subtask_transition(
        "r",
        n,
        Status::Completed,
        &TransitionInfo::message(Some("done")),
        t(2),
    )
    .unwrap();
    let events = events_of(s, "r");
    let before = s.subtasks("r").unwrap();
    let again = Op::SubtaskTransition {
        run_id: "r".into(),
        subtask: SubtaskRef::number(n),
        to: Status::Completed,
        info: TransitionInfo::message(Some("other message")),
        at: t(3),
    };
    assert_eq!(
        s.apply(&again, None).unwrap(),
        Output::Transition {
            from: Status::Completed,
            changed: false
        }
    );
    assert_eq!(s.subtasks("r").unwrap(), before, "nothing changed");
    assert_eq!(events_of(s, "r"), events, "no event");
    assert_eq!(
        kind_of(s.subtask_transition("r", n, Status::Failed, &none(), t(4))),
        ErrorKind::InvalidTransition
    );
    // The run: same, and a running run asked to run takes the message only.
    s.run_transition(
        "r",
        Status::Running,
        &TransitionInfo::message(Some("note")),
        t(5),
    )
    .unwrap();
    assert_eq!(events_of(s, "r"), events, "no event for RUNNING -> RUNNING");
    assert_eq!(
        s.run("r")
            .unwrap()
            .unwrap()
            .overall_progress_message
            .as_deref(),
        Some("note")
    );
    s.run_transition(
        "r",
        Status::Failed,
        &TransitionInfo::error("boom", None),
        t(6),
    )
    .unwrap();
    let events = events_of(s, "r");
    let row = s.run("r").unwrap().unwrap();
    assert_eq!(
        s.run_transition(
            "r",
            Status::Failed,
            &TransitionInfo::error("other", None),
            t(7)
        )
        .unwrap(),
        Status::Failed
    );
    assert_eq!(events_of(s, "r"), events);
    assert_eq!(s.run("r").unwrap().unwrap(), row, "the first error stays");
    assert_eq!(
        kind_of(s.run_transition("r", Status::Completed, &none(), t(8))),
        ErrorKind::InvalidTransition
    );
}

/// Increments made before a subtask finished and flushed after it (another
/// process's pending batch) still count; values set after it are not stored.
fn progress_for_a_finished_subtask_counts_items_and_sets_nothing(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let n = s
        .subtask_start("r", "a", &sub(None, Some(10)), t(1))
        .unwrap();
    s.apply_progress(&[inc("r", n, 3)], &[], t(2)).unwrap();
    s.subtask_transition("r", n, Status::Completed, &none(), t(3))
        .unwrap();
    let before = s.subtasks("r").unwrap()[0].clone();
    let late = Op::Progress {
        updates: vec![
            inc("r", n, 4),
            ProgressUpdate {
                items_set: Some(1),
                items_total: Some(99),
                percent: Some(50.0),
                message: Some("late".into()),
                ..inc("r", n, 0)
            },
        ],
        heartbeats: vec![],
        samples: vec![],
        logs: Default::default(),
        at: t(4),
    };
    assert_eq!(
        s.apply(&late, None).unwrap(),
        Output::Progress {
            finished: vec![(0, Status::Completed), (1, Status::Completed)]
        }
    );
    let after = &s.subtasks("r").unwrap()[0];
    assert_eq!(after.items_complete, 7, "late increments count");
    assert_eq!(after.status, Status::Completed);
    assert_eq!(
        (
            after.items_total,
            &after.progress_message,
            after.last_update
        ),
        (
            before.items_total,
            &before.progress_message,
            before.last_update
        ),
        "nothing set after it finished is stored"
    );
}

/// A start queued while the database was away is stored as its own subtask: an
/// explicit number taken meanwhile gives the next free one, and later writes
/// that name its identity reach it, never the subtask that has the number.
fn queued_writes_reach_their_subtask_by_identity_whatever_its_number(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    // Another process took numbers 1 and 2 while this one was cut off.
    s.subtask_start("r", "theirs 1", &sub(None, None), t(1))
        .unwrap();
    s.subtask_start("r", "theirs 2", &sub(None, None), t(1))
        .unwrap();
    let mine = |uid: &str, name: &str, number: Option<u32>| Queued {
        id: None,
        op: Op::SubtaskStart {
            run_id: "r".into(),
            uid: Some(Arc::from(uid)),
            name: name.into(),
            options: sub(number, Some(5)),
            at: t(2),
            renumber_if_taken: true,
        },
    };
    let by_uid = |uid: &str, delta: u64| ProgressUpdate {
        subtask_uid: Some(Arc::from(uid)),
        ..inc("r", 1, delta)
    };
    let answers = s
        .apply_batch(&[
            mine("u-auto", "mine auto", None),
            mine("u-explicit", "mine explicit", Some(2)),
            Queued {
                id: None,
                op: Op::Progress {
                    updates: vec![by_uid("u-auto", 5), by_uid("u-explicit", 3)],
                    heartbeats: vec![],
                    samples: Vec::new(),
                    logs: Default::default(),
                    at: t(3),
                },
            },
            Queued {
                id: None,
                op: Op::SubtaskTransition {
                    run_id: "r".into(),
                    subtask: SubtaskRef {
                        uid: Some(Arc::from("u-explicit")),
                        number: 2,
                    },
                    to: Status::Completed,
                    info: none(),
                    at: t(4),
                },
            },
        ])
        .unwrap();
    assert_eq!(
        answers[0].as_ref().ok(),
        Some(&Output::SubtaskStarted { number: 3 })
    );
    assert_eq!(
        answers[1].as_ref().ok(),
        Some(&Output::SubtaskStarted { number: 4 })
    );
    let rows: Vec<(i64, String, Status, i64)> = s
        .subtasks("r")
        .unwrap()
        .into_iter()
        .map(|x| (x.subtask_number, x.subtask_name, x.status, x.items_complete))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "theirs 1".into(), Status::Started, 0),
            (2, "theirs 2".into(), Status::Started, 0),
            (3, "mine auto".into(), Status::Running, 5),
            (4, "mine explicit".into(), Status::Completed, 3),
        ]
    );
    // Without renumbering (a direct call), a taken number is refused.
    let direct = Op::SubtaskStart {
        run_id: "r".into(),
        uid: Some(Arc::from("u-direct")),
        name: "direct".into(),
        options: sub(Some(1), None),
        at: t(5),
        renumber_if_taken: false,
    };
    assert_eq!(kind_of(s.apply(&direct, None)), ErrorKind::AlreadyExists);
    let state = s.subtask_state("r", 3).unwrap().unwrap();
    assert_eq!(state.uid.as_deref(), Some("u-auto"));
}

/// One refused write (a transition made impossible meanwhile) does not stop the
/// writes queued with it, nor leave a trace.
fn a_batch_goes_on_past_a_refused_write(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let n = s.subtask_start("r", "a", &sub(None, None), t(1)).unwrap();
    let q = |op| Queued { id: None, op };
    let answers = s
        .apply_batch(&[
            q(Op::Progress {
                updates: vec![inc("r", n, 2)],
                heartbeats: vec![],
                samples: Vec::new(),
                logs: Default::default(),
                at: t(2),
            }),
            q(Op::RunTransition {
                run_id: "r".into(),
                to: Status::Started, // RUNNING -> STARTED is refused
                info: none(),
                at: t(3),
            }),
            q(Op::RunTransition {
                run_id: "nope".into(),
                to: Status::Completed,
                info: none(),
                at: t(3),
            }),
            q(Op::Progress {
                updates: vec![inc("r", n, 3)],
                heartbeats: vec![],
                samples: Vec::new(),
                logs: Default::default(),
                at: t(4),
            }),
        ])
        .unwrap();
    assert!(answers[0].is_ok() && answers[3].is_ok(), "{answers:?}");
    assert_eq!(
        answers[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    assert_eq!(answers[2].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(s.subtasks("r").unwrap()[0].items_complete, 5);
    assert_eq!(s.run("r").unwrap().unwrap().status, Status::Running);
}

/// What retention relies on: only finished runs, failed ones separately, the oldest
/// first, at most `limit` per call.
fn retention_deletes_finished_runs_in_batches_never_active_ones(db: &mut Db) {
    let s = &mut db.s;
    // r0..r4 finished long ago (r1 failed), r5 started long ago and still runs.
    for i in 0..6 {
        let id = format!("r{i}");
        s.start_run(&new_run(&id, "st", "tk", i)).unwrap();
        match i {
            1 => s
                .run_transition(
                    &id,
                    Status::Failed,
                    &TransitionInfo::error("e", None),
                    t(i + 1),
                )
                .map(drop)
                .unwrap(),
            5 => {}
            _ => s
                .run_transition(&id, Status::Completed, &none(), t(i + 1))
                .map(drop)
                .unwrap(),
        }
    }
    let old = |failed: bool, limit| RunSelector {
        before: Some(t(100)),
        finished_only: true,
        keep_failed: !failed,
        failed_only: failed,
        limit: Some(limit),
        ..Default::default()
    };
    assert_eq!(s.delete_runs(&old(false, 2)).unwrap(), 2);
    let left = |s: &mut Box<dyn Store>| {
        let mut ids: Vec<String> = s
            .history(&HistoryFilter::default())
            .unwrap()
            .into_iter()
            .filter_map(|r| r.run_id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        left(s),
        vec!["r1", "r3", "r4", "r5"],
        "the two oldest, failed kept"
    );
    assert_eq!(s.delete_runs(&old(false, 10)).unwrap(), 2);
    assert_eq!(left(s), vec!["r1", "r5"]);
    assert_eq!(s.delete_runs(&old(true, 10)).unwrap(), 1);
    assert_eq!(left(s), vec!["r5"], "the active run is never deleted");
}

/// A transition and the progress it must follow go in one transaction; a refused
/// transition leaves the progress written.
fn progress_then_a_transition_in_one_transaction(db: &mut Db) {
    let s = &mut db.s;
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    let n = s
        .subtask_start("r", "a", &sub(None, Some(10)), t(1))
        .unwrap();
    let progress = |items| Op::Progress {
        updates: vec![ProgressUpdate {
            items_set: Some(items),
            message: Some(format!("{items} done")),
            ..inc("r", n, 0)
        }],
        heartbeats: vec![],
        samples: vec![],
        logs: Default::default(),
        at: t(2),
    };
    let complete = Op::SubtaskTransition {
        run_id: "r".into(),
        subtask: SubtaskRef::number(n),
        to: Status::Completed,
        info: none(),
        at: t(3),
    };
    let (progressed, answer) = s
        .apply_after(
            (&progress(10), Some(&id("w", 1))),
            (&complete, Some(&id("w", 2))),
        )
        .unwrap();
    assert_eq!(progressed, Output::Progress { finished: vec![] });
    assert_eq!(
        answer.unwrap(),
        Output::Transition {
            from: Status::Running,
            changed: true
        }
    );
    let st = &s.subtasks("r").unwrap()[0];
    assert_eq!(
        (st.status, st.items_complete, st.progress_message.as_deref()),
        (Status::Completed, 10, Some("10 done")),
        "set before the completion, in the same transaction"
    );
    // Sent again under the same ids: skipped, both.
    let (again, answer) = s
        .apply_after(
            (&progress(10), Some(&id("w", 1))),
            (&complete, Some(&id("w", 2))),
        )
        .unwrap();
    assert_eq!(
        (again, answer.unwrap()),
        (Output::Duplicate, Output::Duplicate)
    );
    // A refused transition leaves the progress written.
    let m = s
        .subtask_start("r", "b", &sub(None, Some(10)), t(4))
        .unwrap();
    let bad = Op::SubtaskTransition {
        run_id: "r".into(),
        subtask: SubtaskRef::number(m),
        to: Status::NotStarted,
        info: none(),
        at: t(5),
    };
    let more = Op::Progress {
        updates: vec![inc("r", m, 4)],
        heartbeats: vec![],
        samples: Vec::new(),
        logs: Default::default(),
        at: t(5),
    };
    let (_, answer) = s.apply_after((&more, None), (&bad, None)).unwrap();
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::InvalidTransition);
    let b = &s.subtasks("r").unwrap()[1];
    assert_eq!((b.status, b.items_complete), (Status::Running, 4));
}

/// Registrations can be cleared; a task with runs is refused, kept or deleted with
/// its runs, as asked, and stages left without tasks go.
fn deleting_tasks_keeps_or_refuses_those_with_history(db: &mut Db) {
    let s = &mut db.s;
    s.register_tasks(
        &[
            TaskSpec::new("a", "idle"),
            TaskSpec::new("a", "ran"),
            TaskSpec::new("b", "idle"),
        ],
        t(0),
    )
    .unwrap();
    s.start_run(&new_run("r", "a", "ran", 1)).unwrap();
    let all = |runs| TaskSelector {
        runs,
        ..Default::default()
    };
    let e = s.delete_tasks(&all(TasksWithRuns::Refuse)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("a/ran"), "{e}");
    assert_eq!(
        s.registered_tasks(None, None).unwrap().len(),
        3,
        "nothing deleted"
    );
    let done = s.delete_tasks(&all(TasksWithRuns::Keep)).unwrap();
    assert_eq!((done.tasks, done.stages, done.runs), (2, 1, 0));
    assert_eq!(done.kept, vec!["a/ran".to_string()]);
    assert!(s.run("r").unwrap().is_some(), "history kept");
    let one = TaskSelector {
        stage: Some("a".into()),
        task: Some("ran".into()),
        runs: TasksWithRuns::Delete,
    };
    let done = s.delete_tasks(&one).unwrap();
    assert_eq!((done.tasks, done.stages, done.runs), (1, 1, 1));
    assert!(s.run("r").unwrap().is_none());
    assert!(s.events_after(0, None, 100).unwrap().is_empty());
    assert!(s.registered_tasks(None, None).unwrap().is_empty());
    assert!(s.stages().unwrap().is_empty());
}

fn a_retry_counts_attempts_on_from_a_failed_or_lost_run(db: &mut Db) {
    let s = &mut db.s;
    let retry = |id: &str, at: i64| {
        let mut r = new_run(id, "s", "t", at);
        r.options.retry = true;
        r
    };
    let attempt = |s: &mut Box<dyn Store>, id: &str| {
        let r = s.run(id).unwrap().unwrap();
        (r.attempt, r.retry_of)
    };
    // A retry of nothing is a first attempt.
    s.start_run(&retry("a1", 10)).unwrap();
    assert_eq!(attempt(s, "a1"), (Some(1), None));
    s.run_transition("a1", Status::Failed, &none(), t(11))
        .unwrap();
    // After a failure: attempt 2, retrying a1; after its failure, attempt 3.
    s.start_run(&retry("a2", 20)).unwrap();
    assert_eq!(attempt(s, "a2"), (Some(2), Some("a1".into())));
    s.run_transition("a2", Status::Failed, &none(), t(21))
        .unwrap();
    s.start_run(&retry("a3", 30)).unwrap();
    assert_eq!(attempt(s, "a3"), (Some(3), Some("a2".into())));
    s.run_transition("a3", Status::Completed, &none(), t(31))
        .unwrap();
    // After a success, a retry starts a new logical run.
    s.start_run(&retry("b1", 40)).unwrap();
    assert_eq!(attempt(s, "b1"), (Some(1), None));
    // b1 still runs with a fresh heartbeat: a retry is a new logical run...
    s.start_run(&retry("c1", 50)).unwrap();
    assert_eq!(attempt(s, "c1"), (Some(1), None));
    // ... but one whose heartbeat is older than the lost limit is lost.
    let mut late = retry("c2", 500);
    late.lost_before = t(400);
    s.start_run(&late).unwrap();
    assert_eq!(attempt(s, "c2"), (Some(2), Some("c1".into())));
    // A run the tracker saw lost (its process gone) counts even with a fresh beat.
    let mut seen = retry("c3", 510);
    seen.known_lost = Some("c2".into());
    s.start_run(&seen).unwrap();
    assert_eq!(attempt(s, "c3"), (Some(3), Some("c2".into())));
    // Without `retry`, a new run is a first attempt whatever came before.
    s.run_transition("c3", Status::Failed, &none(), t(511))
        .unwrap();
    s.start_run(&new_run("d1", "s", "t", 520)).unwrap();
    assert_eq!(attempt(s, "d1"), (Some(1), None));
    // An explicit attempt is stored as given; above 1 it retries the latest run.
    let mut explicit = new_run("d2", "s", "t", 530);
    explicit.options.attempt = Some(5);
    s.start_run(&explicit).unwrap();
    assert_eq!(attempt(s, "d2"), (Some(5), Some("d1".into())));
    let mut first = new_run("e1", "s", "other", 540);
    first.options.attempt = Some(1);
    first.options.retry = true;
    s.start_run(&first).unwrap();
    assert_eq!(attempt(s, "e1"), (Some(1), None));
}

fn inputs_and_outputs_are_recorded_once_per_name(db: &mut Db) {
    use tasker::{Direction, IoRecord};
    let s = &mut db.s;
    s.start_run(&new_run("r", "s", "t", 10)).unwrap();
    let record = |s: &mut Box<dyn Store>, run: &str, r: IoRecord, at: i64| {
        s.apply(
            &Op::RecordIo {
                run_id: run.into(),
                record: r,
                at: t(at),
            },
            None,
        )
    };
    let date = IoRecord::value(Direction::Input, "date", "2026-03-01").unwrap();
    assert_eq!(record(s, "r", date, 11).unwrap(), Output::Recorded);
    let file = IoRecord {
        direction: Direction::Output,
        name: "table".into(),
        value: None,
        path: Some("/data/out/table.parquet".into()),
        size_bytes: Some(12_345_678_901),
        modified: Some(t(12)),
        sha256: Some("ab".repeat(32)),
    };
    record(s, "r", file.clone(), 13).unwrap();
    // The same name again replaces it; the same name as an output is another record.
    let later = IoRecord::value(Direction::Input, "date", "2026-03-02").unwrap();
    record(s, "r", later, 14).unwrap();
    let out = IoRecord::value(Direction::Output, "date", "x").unwrap();
    record(s, "r", out, 15).unwrap();
    let rows = s.run_io("r").unwrap();
    let seen: Vec<(Direction, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.record.direction,
                r.record.name.as_str(),
                r.record.value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (Direction::Input, "date", Some("2026-03-02")),
            (Direction::Output, "date", Some("x")),
            (Direction::Output, "table", None),
        ]
    );
    assert_eq!(rows[0].recorded_at, t(14));
    assert_eq!(rows[2].record, file);
    // A record for a run that does not exist is refused, naming it.
    let orphan = IoRecord::value(Direction::Input, "a", "b").unwrap();
    let err = record(s, "no-such-run", orphan, 16).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("no-such-run"), "{err}");
    assert!(s.run_io("no-such-run").unwrap().is_empty());
    // Deleting the run deletes its records.
    s.delete_runs(&RunSelector {
        run_id: Some("r".into()),
        ..RunSelector::default()
    })
    .unwrap();
    assert!(s.run_io("r").unwrap().is_empty());
}

fn run_summaries_window_each_task_and_sum_items(db: &mut Db) {
    let s = &mut db.s;
    for (i, task) in ["a", "a", "a", "b"].iter().enumerate() {
        let id = format!("{task}{i}");
        let at = 10 * i as i64;
        s.start_run(&new_run(&id, "s", task, at)).unwrap();
        let n = s
            .subtask_start(&id, "part", &sub(None, None), t(at))
            .unwrap();
        s.apply(
            &Op::Progress {
                updates: vec![inc(&id, n, 5 + i as u64)],
                heartbeats: vec![],
                samples: Vec::new(),
                logs: Default::default(),
                at: t(at + 1),
            },
            None,
        )
        .unwrap();
        s.run_transition(&id, Status::Completed, &none(), t(at + 2 + i as i64))
            .unwrap();
    }
    // In no particular order: newest first here.
    let newest_first = |mut v: Vec<tasker::query::RunSummary>| {
        v.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        v
    };
    let all = newest_first(s.run_summaries(&StatsFilter::default()).unwrap());
    let ids: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["b3", "a2", "a1", "a0"]);
    assert_eq!(all[1].items_complete, 7);
    assert_eq!(all[1].end_time, Some(t(24)));
    assert_eq!(all[1].attempt, 1);
    // At most the latest 2 of each task; since a time; one task.
    let latest = newest_first(
        s.run_summaries(&StatsFilter {
            limit: Some(2),
            ..StatsFilter::default()
        })
        .unwrap(),
    );
    let ids: Vec<&str> = latest.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["b3", "a2", "a1"]);
    let since = s
        .run_summaries(&StatsFilter {
            task: Some("a".into()),
            since: Some(t(10)),
            ..StatsFilter::default()
        })
        .unwrap();
    assert_eq!(since.len(), 2);
    let both = s.subtasks_of_runs(&["b3", "a0", "nope"]).unwrap();
    let runs: Vec<&str> = both.iter().map(|x| x.run_id.as_str()).collect();
    assert_eq!(runs, ["a0", "b3"]);
    assert!(s.subtasks_of_runs(&[]).unwrap().is_empty());
    let by_name = s.subtask_durations("s", "a", 2).unwrap();
    assert_eq!(by_name.len(), 2);
    assert!(by_name
        .iter()
        .all(|(name, secs)| name == "part" && *secs > 0.0));
}

fn samples_are_stored_with_progress_and_thinned_to_a_bound(db: &mut Db) {
    use tasker::sampler::Sample;
    use tasker::store::RunSample;
    let s = &mut db.s;
    let now = t(7 * 86_400);
    s.start_run(&new_run("long", "s", "t", 0)).unwrap();
    let sample = |at: DateTime<Utc>| Sample {
        time: at,
        pid: 42,
        cpu_seconds: 1.5,
        cpu_percent: Some(99.5),
        rss_bytes: 3 << 30,
        peak_rss_bytes: Some(4 << 30),
        read_bytes: None,
        write_bytes: Some(10),
        threads: Some(8),
        open_fds: Some(12),
        children: 3,
        children_cpu_seconds: 7.25,
        children_rss_bytes: 200 << 20,
    };
    // A week sampled every minute, written with progress in batches of a day.
    for day in 0..7 {
        let samples = (0..1440)
            .map(|m| RunSample {
                run_id: "long".into(),
                sample: sample(t(day * 86_400 + m * 60)),
            })
            .chain(std::iter::once(RunSample {
                run_id: "no-such-run".into(),
                sample: sample(t(day * 86_400)),
            }))
            .collect();
        s.apply(
            &Op::Progress {
                updates: vec![],
                heartbeats: vec!["long".into()],
                samples,
                logs: Default::default(),
                at: t(day * 86_400 + 86_399),
            },
            None,
        )
        .unwrap();
    }
    let all = s.samples("long").unwrap();
    assert_eq!(all.len(), 7 * 1440, "samples of an unknown run are dropped");
    assert_eq!(all[0], sample(t(0)));
    let gone = s.thin_samples("long", now).unwrap();
    let kept = s.samples("long").unwrap();
    assert_eq!(gone + kept.len(), 7 * 1440);
    // 2 h at 1/min, 46 h of 5-minute buckets, the rest hourly.
    assert!(kept.len() <= 120 + 552 + 120 + 3, "{} kept", kept.len());
    assert!(kept.windows(2).all(|w| w[0].time <= w[1].time));
    assert_eq!(
        s.thin_samples("long", now).unwrap(),
        0,
        "thinning twice deletes nothing"
    );
    // Deleting the run deletes its samples.
    s.delete_runs(&RunSelector {
        run_id: Some("long".into()),
        ..RunSelector::default()
    })
    .unwrap();
    assert!(s.samples("long").unwrap().is_empty());
}

fn runs_by_host_by_prefix_counted_and_streamed(db: &mut Db) {
    let s = &mut db.s;
    for i in 0..4 {
        let mut r = new_run(&format!("p{i}"), "st", "job", i * 10);
        if i % 2 == 1 {
            r.facts = facts("host-b");
        }
        s.start_run(&r).unwrap();
    }
    s.start_run(&new_run("q0", "st", "other", 50)).unwrap();
    // p0 took 5 s, p1 took 20 s; p2 failed; p3 and q0 are still running.
    s.run_transition("p0", Status::Completed, &none(), t(5))
        .unwrap();
    s.run_transition("p1", Status::Completed, &none(), t(30))
        .unwrap();
    s.run_transition(
        "p2",
        Status::Failed,
        &TransitionInfo::error("x", None),
        t(21),
    )
    .unwrap();

    // History of one host (index), and the same runs streamed; stopping early.
    let on_b = HistoryFilter {
        host: Some("host-b".into()),
        ..HistoryFilter::default()
    };
    let ids: Vec<String> = s
        .history(&on_b)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id.unwrap())
        .collect();
    assert_eq!(ids, ["p3", "p1"]);
    let mut streamed = Vec::new();
    s.for_each_run(&on_b, &mut |r| {
        streamed.push(r.run_id.unwrap());
        Ok(true)
    })
    .unwrap();
    assert_eq!(streamed, ids);
    let mut first = Vec::new();
    s.for_each_run(&HistoryFilter::default(), &mut |r| {
        first.push(r.run_id.unwrap());
        Ok(false)
    })
    .unwrap();
    assert_eq!(first, ["q0"], "newest first, and `false` stops");

    // Ids by prefix: in order, limited, exact.
    assert_eq!(
        s.run_ids_with_prefix("p", 10).unwrap(),
        ["p0", "p1", "p2", "p3"]
    );
    assert_eq!(s.run_ids_with_prefix("p", 2).unwrap(), ["p0", "p1"]);
    assert_eq!(s.run_ids_with_prefix("p2", 10).unwrap(), ["p2"]);
    assert!(s.run_ids_with_prefix("z", 10).unwrap().is_empty());

    // Counts by task and status, COMPLETED durations in buckets of 10 s and 60 s.
    let mut counts = s.run_counts(&[10.0, 60.0]).unwrap();
    counts.sort_by(|a, b| {
        (&a.task_name, a.status.map(|x| x.as_str()))
            .cmp(&(&b.task_name, b.status.map(|x| x.as_str())))
    });
    let brief: Vec<(String, &str, i64)> = counts
        .iter()
        .map(|c| (c.task_name.clone(), c.status.unwrap().as_str(), c.runs))
        .collect();
    assert_eq!(
        brief,
        [
            ("job".to_string(), "COMPLETED", 2),
            ("job".to_string(), "FAILED", 1),
            ("job".to_string(), "STARTED", 1),
            ("other".to_string(), "STARTED", 1),
        ]
    );
    let done = &counts[0];
    assert_eq!(done.at_most, [1, 2], "5 s <= 10 s; both <= 60 s");
    assert!((done.seconds - 25.0).abs() < 0.01, "{}", done.seconds);
    assert_eq!(done.last_end, Some(t(30)));
    assert_eq!(
        counts[1].at_most,
        [0, 0],
        "only COMPLETED runs have durations"
    );
}

fn new_alert(rule: &str, key: &str, at: i64) -> tasker::alerts::NewAlert {
    tasker::alerts::NewAlert {
        rule: rule.into(),
        incident_key: key.into(),
        destination: "ops".into(),
        alert: tasker::alerts::Alert {
            rule: rule.into(),
            kind: "lost".into(),
            summary: "tasker: s/t LOST".into(),
            stage: "s".into(),
            task: "t".into(),
            run_id: Some(key.into()),
            subtask_number: None,
            host: Some("h".into()),
            message: Some("it's \"gone\"".into()),
            fired_at: t(at),
            details: serde_json::json!({"n": 1}),
        },
        lease_until: t(at + 60),
    }
}

fn alerts_are_claimed_once_and_leased_once(db: &mut Db) {
    use tasker::alerts::{AlertFilter, AlertOutcome};
    let s = &mut db.s;
    let id = s.alert_claim(&new_alert("lost", "r1", 0)).unwrap();
    assert!(id.is_some());
    // The same incident again: someone has it.
    assert_eq!(s.alert_claim(&new_alert("lost", "r1", 5)).unwrap(), None);
    // Another rule may have its own alert of the same incident.
    let other = s
        .alert_claim(&new_alert("lost2", "r1", 0))
        .unwrap()
        .unwrap();
    let id = id.unwrap();
    // Held by the claimer until its lease ends: not due before.
    assert!(s.alerts_due(t(30), t(90), 5, None, 10).unwrap().is_empty());
    s.alert_outcome(
        id,
        &AlertOutcome::Failed {
            error: "the webhook answered HTTP 503".into(),
            retry_at: Some(t(100)),
        },
    )
    .unwrap();
    s.alert_outcome(other, &AlertOutcome::Delivered { at: t(1) })
        .unwrap();
    // Due at 100: leased once (attempts 2), not again within the lease.
    let due = s.alerts_due(t(100), t(160), 5, None, 10).unwrap();
    assert_eq!(
        due.iter().map(|a| (a.id, a.attempts)).collect::<Vec<_>>(),
        vec![(id, 2)]
    );
    assert_eq!(due[0].payload["message"], "it's \"gone\"");
    assert!(s
        .alerts_due(t(120), t(180), 5, None, 10)
        .unwrap()
        .is_empty());
    // Out of attempts: never due again.
    assert!(s
        .alerts_due(t(200), t(260), 2, None, 10)
        .unwrap()
        .is_empty());
    s.alert_outcome(id, &AlertOutcome::Delivered { at: t(201) })
        .unwrap();
    let all = s.alerts(&AlertFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let row = all.iter().find(|a| a.id == id).unwrap();
    assert_eq!(row.state(), "delivered");
    assert_eq!(row.delivered_at, Some(t(201)));
    assert_eq!(
        row.last_error.as_deref(),
        Some("the webhook answered HTTP 503")
    );
    assert_eq!((row.stage.as_str(), row.task.as_str()), ("s", "t"));
    let pending = s
        .alerts(&AlertFilter {
            undelivered: true,
            ..AlertFilter::default()
        })
        .unwrap();
    assert!(pending.is_empty());
}

/// `take_events` answers what the last write appended, exactly as `events_after`
/// reads it: starts, transitions, the implicit STARTED -> RUNNING of progress,
/// subtasks closed by a finishing run, and the writes of a batch (not a refused one).
fn writes_report_the_events_they_stored(db: &mut Db) {
    let s = &mut db.s;
    let q = |op| Queued { id: None, op };
    let progress = |updates, at| Op::Progress {
        updates,
        heartbeats: vec![],
        samples: Vec::new(),
        logs: Default::default(),
        at: t(at),
    };
    let mut reported = Vec::new();
    s.start_run(&new_run("r", "st", "tk", 0)).unwrap();
    reported.append(&mut s.take_events());
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(s.take_events().is_empty(), "taken once");
    s.apply(
        &progress(
            vec![ProgressUpdate {
                run_id: Arc::from("r"),
                percent: Some(10.0),
                ..ProgressUpdate::default()
            }],
            1,
        ),
        None,
    )
    .unwrap();
    reported.append(&mut s.take_events()); // the run's implicit RUNNING
    let n = s.subtask_start("r", "a", &sub(None, None), t(2)).unwrap();
    reported.append(&mut s.take_events());
    s.apply(&progress(vec![inc("r", n, 1)], 3), None).unwrap();
    reported.append(&mut s.take_events()); // the subtask's implicit RUNNING
    s.apply(&progress(vec![inc("r", n, 1)], 4), None).unwrap();
    assert!(s.take_events().is_empty(), "RUNNING already");
    let m = s.subtask_start("r", "b", &sub(None, None), t(5)).unwrap();
    reported.append(&mut s.take_events());
    let answers = s
        .apply_batch(&[
            q(Op::SubtaskTransition {
                run_id: "r".into(),
                subtask: SubtaskRef::number(n),
                to: Status::Completed,
                info: none(),
                at: t(6),
            }),
            q(Op::RunTransition {
                run_id: "r".into(),
                to: Status::Started, // refused: leaves no event
                info: none(),
                at: t(6),
            }),
            q(Op::RunTransition {
                run_id: "r".into(),
                to: Status::Failed, // closes subtask m
                info: TransitionInfo::error("boom", None),
                at: t(7),
            }),
        ])
        .unwrap();
    assert!(answers[1].is_err(), "{answers:?}");
    reported.append(&mut s.take_events());
    let stored = s.events_after(0, Some("r"), 100).unwrap();
    assert_eq!(reported, stored);
    let shape: Vec<_> = stored
        .iter()
        .map(|e| (e.subtask_number, e.old_status, e.new_status))
        .collect();
    let (m, n) = (Some(i64::from(m)), Some(i64::from(n)));
    use Status::*;
    assert_eq!(
        shape,
        [
            (None, Some(NotStarted), Started),
            (None, Some(Started), Running),
            (n, Some(NotStarted), Started),
            (n, Some(Started), Running),
            (m, Some(NotStarted), Started),
            (n, Some(Running), Completed),
            (m, Some(Started), Failed),
            (None, Some(Running), Failed),
        ]
    );
    assert!(stored
        .iter()
        .all(|e| e.stage_name == "st" && e.task_name == "tk"));
    assert!(stored.windows(2).all(|w| w[0].event_id < w[1].event_id));
    // A refused write reports nothing.
    assert!(s.run_transition("r", Running, &none(), t(8)).is_err());
    assert!(s.take_events().is_empty());
}

fn runs_are_sorted_filtered_and_paged_in_sql(db: &mut Db) {
    let s = &mut db.s;
    for i in 0..4 {
        let mut r = new_run(&format!("p{i}"), "st", "job", i * 10);
        if i % 2 == 1 {
            r.facts = facts("host-b");
        }
        s.start_run(&r).unwrap();
    }
    s.start_run(&new_run("q0", "st", "other", 50)).unwrap();
    // Durations at t(100): p0 5 s, p1 20 s, p2 1 s (failed); p3 70 s and q0 50 s go on.
    s.run_transition("p0", Status::Completed, &none(), t(5))
        .unwrap();
    s.run_transition("p1", Status::Completed, &none(), t(30))
        .unwrap();
    s.run_transition(
        "p2",
        Status::Failed,
        &TransitionInfo::error("x", None),
        t(21),
    )
    .unwrap();
    let job = s
        .registered_tasks(Some("st"), Some("job"))
        .unwrap()
        .remove(0)
        .task_id;
    let mut page = |q: RunPageQuery| -> (Vec<String>, usize) {
        let (rows, total) = s.run_page(&q, t(100)).unwrap();
        (rows.into_iter().map(|r| r.run_id.unwrap()).collect(), total)
    };
    let by = |sort: RunSort, ascending: bool| RunPageQuery {
        sort,
        ascending,
        limit: 10,
        ..RunPageQuery::default()
    };
    assert_eq!(
        page(by(RunSort::Duration, false)),
        (
            vec![
                "p3".into(),
                "q0".into(),
                "p1".into(),
                "p0".into(),
                "p2".into()
            ],
            5
        )
    );
    let (ids, total) = page(RunPageQuery {
        offset: 1,
        limit: 2,
        ..by(RunSort::Duration, true)
    });
    assert_eq!(
        (ids, total),
        (vec!["p0".into(), "p1".into()], 5),
        "a page of the order"
    );
    assert_eq!(
        page(by(RunSort::Host, false)).0,
        ["p3", "p1", "q0", "p2", "p0"],
        "ties by start, in the same direction"
    );
    assert_eq!(
        page(by(RunSort::Task, true)).0,
        ["p0", "p1", "p2", "p3", "q0"]
    );
    assert_eq!(
        page(by(RunSort::Status, true)).0,
        ["p0", "p1", "p2", "p3", "q0"]
    );
    assert_eq!(
        page(by(RunSort::Start, true)).0,
        ["p0", "p1", "p2", "p3", "q0"]
    );
    // Filters: tasks by id, statuses, host, a start range.
    assert_eq!(
        page(RunPageQuery {
            task_ids: Some(vec![job]),
            statuses: vec![Status::Started, Status::Failed],
            ..by(RunSort::Duration, false)
        }),
        (vec!["p3".into(), "p2".into()], 2)
    );
    assert_eq!(
        page(RunPageQuery {
            host: Some("host-b".into()),
            ..by(RunSort::Duration, true)
        })
        .0,
        ["p1", "p3"]
    );
    assert_eq!(
        page(RunPageQuery {
            since: Some(t(10)),
            until: Some(t(30)),
            ..by(RunSort::Stage, true)
        }),
        (vec!["p1".into(), "p2".into()], 2)
    );
    assert_eq!(
        page(RunPageQuery {
            task_ids: Some(vec![]),
            ..by(RunSort::Host, true)
        }),
        (vec![], 0),
        "no task: no run"
    );
}
