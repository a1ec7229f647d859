//! The tracker on real SQLite files: the state machine, progress semantics, subtask
//! numbering, queries, events, listeners and bad input.

use std::sync::{Arc, Mutex};

use tasker::{
    Config, ErrorKind, HistoryFilter, RunHandle, RunOptions, RunProgress, RunSelector, Status,
    StatusFilter, SubtaskOptions, SubtaskProgress, TaskSpec, Tracker, TransitionInfo,
};

fn open(dir: &tempfile::TempDir) -> Tracker {
    Tracker::open(Config::sqlite(dir.path().join("t.db"))).unwrap()
}

fn status_of(t: &Tracker, run: &RunHandle) -> Status {
    t.run(run.run_id()).unwrap().status
}

/// Puts a fresh run into `state` through public calls.
fn run_in(t: &Tracker, state: Status) -> RunHandle {
    let run = t
        .task_start("stage", "task", RunOptions::default())
        .unwrap();
    match state {
        Status::Started => {}
        Status::Running => {
            run.subtask_start("s", SubtaskOptions::default()).unwrap();
        }
        Status::Paused => run.pause(None).unwrap(),
        Status::Completed => run.complete(None).unwrap(),
        Status::Failed => run.fail("boom", None).unwrap(),
        Status::Skipped => run.skip(None).unwrap(),
        Status::Cancelled => run.cancel(None).unwrap(),
        Status::NotStarted => unreachable!("runs never are NOT_STARTED"),
    }
    assert_eq!(status_of(t, &run), state);
    run
}

#[test]
fn every_run_transition_is_allowed_or_refused_as_the_state_machine_says() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    for from in Status::ALL.into_iter().filter(|s| *s != Status::NotStarted) {
        for to in Status::ALL {
            let run = run_in(&t, from);
            let events = t.events_after(0, Some(run.run_id()), 100).unwrap().len();
            let result = run.set_status(to, TransitionInfo::default());
            if from == to {
                // Finishing twice (or pausing a paused run) is not an error: a no-op.
                assert_eq!(result.unwrap(), from, "{from} -> {to}");
                assert_eq!(status_of(&t, &run), from);
                let after = t.events_after(0, Some(run.run_id()), 100).unwrap().len();
                assert_eq!(after, events, "{from} -> {to} wrote no event");
            } else if from.can_become(to) {
                assert_eq!(result.unwrap(), from, "{from} -> {to}");
                assert_eq!(status_of(&t, &run), to);
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(
                        err.kind(),
                        ErrorKind::InvalidTransition | ErrorKind::InvalidArgument
                    ),
                    "{from} -> {to}: {err}"
                );
                assert_eq!(
                    status_of(&t, &run),
                    from,
                    "a refused {from} -> {to} changed nothing"
                );
            }
        }
    }
}

#[test]
fn every_subtask_transition_is_allowed_or_refused_as_the_state_machine_says() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t
        .task_start("stage", "task", RunOptions::default())
        .unwrap();
    for from in [
        Status::Started,
        Status::Running,
        Status::Paused,
        Status::Completed,
        Status::Failed,
        Status::Skipped,
        Status::Cancelled,
    ] {
        for to in Status::ALL {
            let n = run.subtask_start("s", SubtaskOptions::default()).unwrap();
            match from {
                Status::Started => {}
                Status::Running => {
                    run.subtask_increment(n, 1).unwrap();
                    t.flush().unwrap();
                }
                other => {
                    run.subtask_set_status(n, other, TransitionInfo::default())
                        .unwrap();
                }
            }
            let stored = |t: &Tracker| t.subtasks(run.run_id()).unwrap()[n as usize - 1].status;
            assert_eq!(stored(&t), from);
            let result = run.subtask_set_status(n, to, TransitionInfo::default());
            if from == to {
                assert_eq!(result.unwrap(), from, "{from} -> {to} is a no-op");
                assert_eq!(stored(&t), from);
            } else if from.can_become(to) {
                result.unwrap();
                assert_eq!(stored(&t), to);
            } else {
                assert_eq!(
                    result.unwrap_err().kind(),
                    ErrorKind::InvalidTransition,
                    "{from} -> {to}"
                );
                assert_eq!(stored(&t), from);
            }
        }
    }
}

#[test]
fn progress_never_changes_a_status_except_started_to_running() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t
        .task_start(
            "s",
            "t",
            RunOptions {
                total_subtasks: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    // A progress-only run update moves STARTED -> RUNNING once stored.
    run.update(&RunProgress {
        message: Some("warming up".into()),
        ..Default::default()
    })
    .unwrap();
    t.flush().unwrap();
    let row = t.run(run.run_id()).unwrap();
    assert_eq!(row.status, Status::Running);
    assert_eq!(row.overall_progress_message.as_deref(), Some("warming up"));

    let n = run
        .subtask_start(
            "items",
            SubtaskOptions {
                items_total: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(t.subtasks(run.run_id()).unwrap()[0].status, Status::Started);
    run.subtask_increment(n, 4).unwrap();
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!((sub.status, sub.items_complete), (Status::Running, 4));
    assert_eq!(sub.percent_complete, Some(40.0));

    // Paused stays paused under progress.
    run.pause(Some("waiting for disk")).unwrap();
    run.subtask_increment(n, 1).unwrap();
    run.update(&RunProgress {
        overall_percent: Some(55.0),
        ..Default::default()
    })
    .unwrap();
    t.flush().unwrap();
    assert_eq!(status_of(&t, &run), Status::Paused);
    run.resume(None).unwrap();

    // A completed subtask stays completed: a later progress call is refused.
    run.subtask_complete(n, None).unwrap();
    assert_eq!(
        run.subtask_increment(n, 1).unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!((sub.status, sub.items_complete), (Status::Completed, 5));

    let events = t.events_after(0, Some(run.run_id()), 100).unwrap();
    let subtask_running: Vec<_> = events
        .iter()
        .filter(|e| e.subtask_number == Some(i64::from(n)) && e.new_status == Status::Running)
        .collect();
    assert_eq!(
        subtask_running.len(),
        1,
        "one STARTED -> RUNNING event: {events:?}"
    );
}

#[test]
fn a_reset_leaves_a_terminal_state_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = run_in(&t, Status::Failed);
    let reset = TransitionInfo {
        reset: true,
        message: Some("rerun by operator".into()),
        ..Default::default()
    };
    assert_eq!(
        t.set_run_status(run.run_id(), Status::Running, reset)
            .unwrap(),
        Status::Failed
    );
    let row = t.run(run.run_id()).unwrap();
    assert_eq!(row.status, Status::Running);
    assert_eq!(row.end_time, None);
    assert_eq!(row.error_message, None, "a reset clears the old error");
    let last = t
        .events_after(0, Some(run.run_id()), 100)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.kind.as_str(), last.old_status, last.new_status),
        ("reset", Some(Status::Failed), Status::Running)
    );
}

#[test]
fn subtask_numbers_come_from_the_database_and_are_never_silently_reused() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t.task_start("s", "t", RunOptions::default()).unwrap();
    // A second handle on the same run (as another process would have) continues the numbering.
    let other = Tracker::open(Config::sqlite(dir.path().join("t.db"))).unwrap();
    let attached = other.attach_run(run.run_id()).unwrap();
    assert_eq!(
        run.subtask_start("a", SubtaskOptions::default()).unwrap(),
        1
    );
    assert_eq!(
        attached
            .subtask_start("b", SubtaskOptions::default())
            .unwrap(),
        2
    );
    assert_eq!(
        run.subtask_start("c", SubtaskOptions::default()).unwrap(),
        3
    );
    assert_eq!(
        run.subtask_start(
            "x",
            SubtaskOptions {
                number: Some(10),
                ..Default::default()
            }
        )
        .unwrap(),
        10
    );
    assert_eq!(
        run.subtask_start("d", SubtaskOptions::default()).unwrap(),
        11
    );

    run.subtask_increment(1, 7).unwrap();
    run.subtask_complete(1, None).unwrap();
    let err = run
        .subtask_start(
            "a again",
            SubtaskOptions {
                number: Some(1),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let row = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(
        (row.subtask_name.as_str(), row.items_complete, row.status),
        ("a", 7, Status::Completed)
    );

    // An explicit restart starts from zero: no stale progress.
    let opts = SubtaskOptions {
        number: Some(1),
        restart: true,
        items_total: Some(5),
        ..Default::default()
    };
    assert_eq!(run.subtask_start("a again", opts).unwrap(), 1);
    let row = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(
        (row.subtask_name.as_str(), row.items_complete, row.status),
        ("a again", 0, Status::Started)
    );
    assert_eq!((row.end_time, row.items_total), (None, Some(5)));
}

#[test]
fn a_terminal_run_closes_its_open_subtasks_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t.task_start("s", "t", RunOptions::default()).unwrap();
    let a = run.subtask_start("a", SubtaskOptions::default()).unwrap();
    let b = run.subtask_start("b", SubtaskOptions::default()).unwrap();
    run.subtask_complete(a, None).unwrap();
    run.fail("disk full", Some("traceback ...")).unwrap();
    let subs = t.subtasks(run.run_id()).unwrap();
    assert_eq!(subs[0].status, Status::Completed);
    assert_eq!(subs[1].status, Status::Failed);
    assert!(subs[1].end_time.is_some());
    let row = t.run(run.run_id()).unwrap();
    assert_eq!(row.error_message.as_deref(), Some("disk full"));
    assert_eq!(row.error_detail.as_deref(), Some("traceback ..."));
    let err = run
        .subtask_start("c", SubtaskOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    let _ = b;
}

#[test]
fn task_status_lists_every_registered_task_with_its_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let mut specs = vec![
        TaskSpec {
            stage_order: Some(2),
            task_order: Some(1),
            ..TaskSpec::new("model", "fit")
        },
        TaskSpec {
            stage_order: Some(1),
            task_order: Some(2),
            ..TaskSpec::new("prep", "clean")
        },
        TaskSpec {
            stage_order: Some(1),
            task_order: Some(1),
            ..TaskSpec::new("prep", "load")
        },
    ];
    specs[0].description = Some("fit the model".into());
    t.register_tasks(&specs).unwrap();
    // Upsert: NULL never clears a field.
    t.register_task(&TaskSpec {
        task_type: Some("R".into()),
        ..TaskSpec::new("model", "fit")
    })
    .unwrap();
    let tasks = t.registered_tasks(None, None).unwrap();
    let names: Vec<_> = tasks
        .iter()
        .map(|r| format!("{}/{}", r.stage_name, r.task_name))
        .collect();
    assert_eq!(names, ["prep/load", "prep/clean", "model/fit"]);
    assert_eq!(tasks[2].description.as_deref(), Some("fit the model"));
    assert_eq!(tasks[2].task_type.as_deref(), Some("R"));
    assert_eq!(tasks[2].stage_order, Some(2));

    let first = t.task_start("prep", "load", RunOptions::default()).unwrap();
    first.complete(None).unwrap();
    let second = t.task_start("prep", "load", RunOptions::default()).unwrap();
    let status = t.task_status(&StatusFilter::default()).unwrap();
    assert_eq!(status.len(), 3);
    assert_eq!(
        status[0].run_id.as_deref(),
        Some(second.run_id()),
        "the latest run"
    );
    assert_eq!(status[0].status, Status::Started);
    assert_eq!(
        (status[1].status, status[1].run_id.as_deref()),
        (Status::NotStarted, None)
    );
    let only = t
        .task_status(&StatusFilter {
            status: Some(Status::NotStarted),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(only.len(), 2);
    let limited = t
        .task_status(&StatusFilter {
            stage: Some("prep".into()),
            limit: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(
        t.task_status(&StatusFilter {
            limit: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidArgument
    );

    // Both concurrent runs of one task are active.
    let third = t.task_start("prep", "load", RunOptions::default()).unwrap();
    let active = t.active_runs().unwrap();
    let ids: Vec<_> = active.iter().filter_map(|r| r.run_id.clone()).collect();
    assert!(
        ids.contains(&second.run_id().to_string()) && ids.contains(&third.run_id().to_string())
    );
    assert!(
        active.iter().all(|r| !r.lost),
        "runs of this live process are not lost"
    );

    let history = t
        .history(&HistoryFilter {
            task: Some("load".into()),
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<_> = history.iter().map(|r| r.run_id.clone().unwrap()).collect();
    assert_eq!(
        ids,
        [third.run_id(), second.run_id(), first.run_id()],
        "newest first"
    );
    let completed = t
        .history(&HistoryFilter {
            status: Some(Status::Completed),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(completed.len(), 1);
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(t
        .history(&HistoryFilter {
            since: Some(future),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
    assert_eq!(
        t.stages()
            .unwrap()
            .iter()
            .map(|s| s.stage_name.as_str())
            .collect::<Vec<_>>(),
        ["prep", "model"]
    );

    let deleted = t
        .delete_runs(&RunSelector {
            run_id: Some(first.run_id().into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        t.run(first.run_id()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(t
        .events_after(0, Some(first.run_id()), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn run_percent_is_derived_from_subtasks_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t
        .task_start(
            "s",
            "t",
            RunOptions {
                total_subtasks: Some(4),
                ..Default::default()
            },
        )
        .unwrap();
    let a = run
        .subtask_start(
            "a",
            SubtaskOptions {
                items_total: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    run.subtask_update(
        a,
        &SubtaskProgress {
            items_complete: Some(5),
            ..Default::default()
        },
    )
    .unwrap();
    let b = run.subtask_start("b", SubtaskOptions::default()).unwrap();
    run.subtask_complete(b, None).unwrap();
    // (0.5 + 1) / 4 subtasks
    assert_eq!(
        t.run(run.run_id()).unwrap().overall_percent_complete,
        Some(37.5)
    );
    run.update(&RunProgress {
        overall_percent: Some(80.0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        t.run(run.run_id()).unwrap().overall_percent_complete,
        Some(80.0),
        "an explicit percent wins"
    );
    run.complete(None).unwrap();
    assert_eq!(
        t.run(run.run_id()).unwrap().overall_percent_complete,
        Some(100.0)
    );
}

#[test]
fn a_set_after_increments_replaces_them_and_later_increments_add() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t.task_start("s", "t", RunOptions::default()).unwrap();
    let n = run.subtask_start("a", SubtaskOptions::default()).unwrap();
    run.subtask_increment(n, 5).unwrap();
    run.subtask_update(
        n,
        &SubtaskProgress {
            items_complete: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    run.subtask_increment(n, 2).unwrap();
    assert_eq!(t.subtasks(run.run_id()).unwrap()[0].items_complete, 102);
}

#[test]
fn a_panicking_listener_breaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    t.add_listener(Arc::new(move |e: &tasker::EventRow| {
        sink.lock()
            .unwrap()
            .push((e.subtask_number, e.old_status, e.new_status));
    }));
    let id = t.add_listener(Arc::new(|_: &tasker::EventRow| panic!("listener bug")));
    let run = t.task_start("s", "t", RunOptions::default()).unwrap();
    let n = run.subtask_start("a", SubtaskOptions::default()).unwrap();
    run.subtask_complete(n, None).unwrap();
    t.remove_listener(id);
    run.complete(None).unwrap();
    let seen = seen.lock().unwrap().clone();
    let started = Some(Status::Started);
    assert_eq!(
        seen,
        [
            (None, Some(Status::NotStarted), Status::Started),
            (Some(1), Some(Status::NotStarted), Status::Started),
            (None, started, Status::Running),
            (Some(1), started, Status::Completed),
            (None, Some(Status::Running), Status::Completed),
        ]
    );
}

/// Everything a query can read, to compare before and after a refused call.
fn snapshot(t: &Tracker) -> String {
    let runs = t
        .history(&HistoryFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    let mut out = serde_json::to_string(&t.registered_tasks(None, None).unwrap()).unwrap();
    for r in &runs {
        let mut r = r.clone();
        // What changes with the clock alone.
        r.duration_seconds = None;
        (r.eta_seconds, r.eta_low, r.eta_high, r.eta_basis) = (None, None, None, None);
        out += &serde_json::to_string(&r).unwrap();
        out += &serde_json::to_string(
            &t.subtasks(r.run_id.as_deref().unwrap())
                .unwrap()
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    (s.rate_per_second, s.eta_seconds) = (None, None);
                    (s.eta_low, s.eta_high) = (None, None);
                    s
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    out += &serde_json::to_string(&t.events_after(0, None, 100_000).unwrap()).unwrap();
    out
}

#[test]
fn bad_input_gets_a_clear_error_naming_the_value_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let hostile = "Robert'); DROP TABLE runs;-- \"quoted\" `tick` % _ \\ <b>bold</b> ✓";
    t.register_task(&TaskSpec {
        description: Some(hostile.into()),
        ..TaskSpec::new(hostile, hostile)
    })
    .unwrap();
    let run = t
        .task_start(
            hostile,
            hostile,
            RunOptions {
                message: Some(hostile.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let n = run
        .subtask_start(
            hostile,
            SubtaskOptions {
                items_total: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    run.subtask_increment(n, 3).unwrap();
    let big = "m".repeat(1 << 20);
    run.subtask_update(
        n,
        &SubtaskProgress {
            message: Some(big.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    t.flush().unwrap();
    let before = snapshot(&t);
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(sub.subtask_name, hostile, "stored and read back verbatim");
    assert_eq!(sub.progress_message.as_deref(), Some(big.as_str()));
    assert_eq!(t.run(run.run_id()).unwrap().stage_name, hostile);

    let cases: Vec<(&str, tasker::Error)> = vec![
        (
            "\"\"",
            t.task_start("", "x", RunOptions::default()).unwrap_err(),
        ),
        (
            "\"  \"",
            t.task_start("x", "  ", RunOptions::default()).unwrap_err(),
        ),
        (
            "\"a\\0b\"",
            t.task_start("a\0b", "x", RunOptions::default())
                .unwrap_err(),
        ),
        (
            "-1",
            t.task_start(
                "x",
                "y",
                RunOptions {
                    total_subtasks: Some(-1),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        ("0", run.subtask_increment(n, 0).unwrap_err()),
        (
            "NaN",
            run.subtask_update(
                n,
                &SubtaskProgress {
                    percent: Some(f64::NAN),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "100.5",
            run.subtask_update(
                n,
                &SubtaskProgress {
                    percent: Some(100.5),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "-3",
            run.update(&RunProgress {
                overall_percent: Some(-3.0),
                ..Default::default()
            })
            .unwrap_err(),
        ),
        ("no-such-run", t.attach_run("no-such-run").unwrap_err()),
        ("99", run.subtask_increment(99, 1).unwrap_err()),
        ("DONE", "DONE".parse::<Status>().unwrap_err()),
        (
            "[1,2]",
            t.task_start(
                "x",
                "y",
                RunOptions {
                    metadata: Some(serde_json::json!([1, 2])),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
        (
            "bytes",
            t.task_start(&"s".repeat(5000), "y", RunOptions::default())
                .unwrap_err(),
        ),
        (
            "NUL characters",
            t.task_start(
                "x",
                "y",
                RunOptions {
                    metadata: Some(serde_json::json!({"k": "a\0b"})),
                    ..Default::default()
                },
            )
            .unwrap_err(),
        ),
    ];
    for (value, err) in cases {
        let msg = err.to_string();
        assert!(msg.contains(value), "error {msg:?} should name {value:?}");
        assert!(
            matches!(err.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound),
            "{msg}"
        );
    }
    t.flush().unwrap();
    assert_eq!(snapshot(&t), before, "refused calls changed nothing");
}

#[test]
fn a_run_records_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::sqlite(dir.path().join("t.db"));
    config.hostname = Some("node-3".into());
    let t = Tracker::open(config).unwrap();
    let opts = RunOptions {
        version: Some("1.2".into()),
        git_commit: Some("abc123".into()),
        script_path: Some("/pipelines/etl/load.R".into()),
        log_path: Some("/logs/load.log".into()),
        metadata: Some(serde_json::json!({"rows": 5, "source": "s3"})),
        ..Default::default()
    };
    let run = t.task_start("s", "t", opts).unwrap();
    let row = t.run(run.run_id()).unwrap();
    assert_eq!(row.hostname.as_deref(), Some("node-3"));
    assert_eq!(row.process_id, Some(i64::from(std::process::id())));
    assert!(
        row.parent_pid.is_some() && row.process_start_time.is_some() && row.user_name.is_some()
    );
    assert_eq!(row.script_filename.as_deref(), Some("load.R"));
    assert_eq!(row.log_filename.as_deref(), Some("load.log"));
    assert_eq!(row.metadata.unwrap()["source"], "s3");
    assert_eq!(
        uuid::Uuid::parse_str(run.run_id())
            .unwrap()
            .get_version_num(),
        7
    );
}

#[test]
fn progress_pending_when_the_last_handle_is_dropped_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(&dir);
    let run = t
        .task_start("stage", "dropped", RunOptions::default())
        .unwrap();
    let id = run.run_id().to_string();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    run.subtask_increment(n, 41).unwrap();
    run.subtask_increment(n, 1).unwrap();
    drop(run);
    t.flush().unwrap();
    assert_eq!(t.subtasks(&id).unwrap()[0].items_complete, 42);

    // And written in order with what a new handle of the same run adds later.
    let again = t.attach_run(&id).unwrap();
    again.subtask_increment(n, 8).unwrap();
    drop(again);
    let third = t.attach_run(&id).unwrap();
    third.subtask_increment(n, 50).unwrap();
    t.flush().unwrap();
    assert_eq!(t.subtasks(&id).unwrap()[0].items_complete, 100);
}

#[test]
fn retention_deletes_old_finished_runs_and_never_an_active_one() {
    use tasker::process::ProcessFacts;
    use tasker::store::NewRun;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let days_ago = |d: i64| chrono::Utc::now() - chrono::Duration::days(d);
    {
        let mut st = tasker::store::open(&Config::sqlite(&db)).unwrap();
        for (id, started, end) in [
            ("old done", 10, Some(Status::Completed)),
            ("old failed", 10, Some(Status::Failed)),
            ("old running", 10, None),
            ("recent done", 1, Some(Status::Completed)),
        ] {
            st.start_run(&NewRun {
                run_id: id.into(),
                stage: "s".into(),
                task: "t".into(),
                facts: ProcessFacts::current(None),
                options: RunOptions::default(),
                start_time: days_ago(started),
                lost_before: days_ago(started),
                known_lost: None,
            })
            .unwrap();
            if let Some(to) = end {
                let info = TransitionInfo::error("e", None);
                st.run_transition(id, to, &info, days_ago(started - 1))
                    .unwrap();
            }
        }
    }
    let open = |retention| {
        let mut c = Config::sqlite(&db);
        c.retention = retention;
        Tracker::open(c).unwrap()
    };
    assert_eq!(
        open(None).apply_retention().unwrap(),
        None,
        "none configured"
    );
    let ids = |t: &Tracker| {
        let mut v: Vec<String> = t
            .history(&HistoryFilter::default())
            .unwrap()
            .into_iter()
            .filter_map(|r| r.run_id)
            .collect();
        v.sort();
        v
    };
    let t = open(Some(tasker::Retention {
        days: 7,
        keep_failed_days: Some(30),
    }));
    let r = t.apply_retention().unwrap().unwrap();
    assert_eq!((r.deleted_runs, r.deleted_failed_runs), (1, 0));
    assert_eq!(ids(&t), vec!["old failed", "old running", "recent done"]);
    let t = open(Some(tasker::Retention {
        days: 7,
        keep_failed_days: None,
    }));
    let r = t.apply_retention().unwrap().unwrap();
    assert_eq!((r.deleted_runs, r.deleted_failed_runs), (0, 1));
    assert_eq!(ids(&t), vec!["old running", "recent done"]);
}
