//! Task dependencies and the DAG, on SQLite (always, in a temporary file) and on
//! PostgreSQL when `TASKER_PG_URL` names a server (a schema per test): refused
//! cycles and unknown names store nothing, edges cross stages, wait times are
//! recorded, and a scripted pipeline where one upstream fails derives blocked and
//! waiting tasks.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tasker::config::{Config, Location, Secret};
use tasker::dag::{Dag, DependencyRow};
use tasker::process::ProcessFacts;
use tasker::query::LostRule;
use tasker::store::{self, NewRun, Store};
use tasker::{
    ErrorKind, RunOptions, RunRow, Status, StatusFilter, TaskSpec, Tracker, TransitionInfo,
};

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

fn sqlite(dir: &tempfile::TempDir) -> Config {
    Config::sqlite(dir.path().join("dag.db"))
}

/// A config on the test server in a fresh schema. PostgreSQL tests are
/// `#[ignore]`d (reported as skipped) unless scripts/test-postgres.sh, which
/// starts a server, runs them: run without one, they fail here.
fn postgres(test: &str) -> Config {
    let url = std::env::var("TASKER_PG_URL").expect(
        "TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test",
    );
    let mut config = Config::sqlite("");
    config.location = Location::Postgres {
        conninfo: Secret::new(url),
        schema: format!(
            "dag_{}_{}_{}",
            &test[..test.len().min(30)],
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        ),
    };
    config
}

/// Defines each scenario as two tests: `on_sqlite::NAME` and `on_postgres::NAME`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(&super::sqlite(&dir));
            } )*
        }
        mod on_postgres {
            $( #[test] #[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"] fn $name() {
                super::$name(&super::postgres(stringify!($name)));
            } )*
        }
    };
}

on_both!(
    dependencies_cross_stages_and_bad_ones_store_nothing,
    a_run_records_its_wait_from_the_last_upstream_to_finish,
    a_failed_upstream_blocks_everything_below_and_others_wait,
);

fn t(sec: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::seconds(sec)
}

fn dep(stage: &str, name: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        depends_on: Some(deps.iter().map(|d| d.to_string()).collect()),
        ..TaskSpec::new(stage, name)
    }
}

fn edges(s: &mut dyn Store) -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = s
        .task_dependencies()
        .unwrap()
        .into_iter()
        .map(|d: DependencyRow| {
            (
                format!("{}/{}", d.upstream_stage, d.upstream_task),
                format!("{}/{}", d.stage_name, d.task_name),
            )
        })
        .collect();
    e.sort();
    e
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn task_names(s: &mut dyn Store) -> Vec<String> {
    let mut names: Vec<String> = s
        .registered_tasks(None, None)
        .unwrap()
        .into_iter()
        .map(|r| format!("{}/{}", r.stage_name, r.task_name))
        .collect();
    names.sort();
    names
}

fn dependencies_cross_stages_and_bad_ones_store_nothing(config: &Config) {
    let mut s = store::open(config).unwrap();
    let s = &mut *s;
    // Bulk: names declared later in the same call resolve; edges cross stages.
    s.register_tasks(
        &[
            dep("report", "render", &["model/fit", "ingest/download"]),
            dep("model", "fit", &["ingest/download", "clean"]),
            dep("model", "clean", &["ingest/download"]),
            TaskSpec::new("ingest", "download"),
        ],
        t(0),
    )
    .unwrap();
    let wanted = pairs(&[
        ("ingest/download", "model/clean"),
        ("ingest/download", "model/fit"),
        ("ingest/download", "report/render"),
        ("model/clean", "model/fit"),
        ("model/fit", "report/render"),
    ]);
    assert_eq!(edges(s), wanted);
    let before = task_names(s);

    // A cycle through three tasks and two stages: refused by its path.
    let err = s
        .register_tasks(&[dep("ingest", "download", &["report/render"])], t(1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let msg = err.to_string();
    assert!(msg.contains("cycle"), "{msg}");
    assert!(msg.contains("ingest/download"), "{msg}");
    assert!(msg.contains("report/render"), "{msg}");
    // A task depending on itself.
    let err = s
        .register_tasks(&[dep("model", "fit", &["model/fit"])], t(1))
        .unwrap_err();
    assert!(err.to_string().contains("model/fit -> model/fit"), "{err}");
    // An unknown name, next to a new task: neither the task nor any edge is stored.
    let err = s
        .register_tasks(
            &[
                TaskSpec::new("extra", "new task"),
                dep("extra", "other", &["model/fit", "model/nope"]),
            ],
            t(1),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("model/nope"), "{err}");
    assert_eq!(task_names(s), before, "{}", config.location.backend());
    assert_eq!(edges(s), wanted);

    // Registering without depends_on keeps the edges; an empty list clears them.
    s.register_tasks(&[TaskSpec::new("model", "fit")], t(2))
        .unwrap();
    assert_eq!(edges(s), wanted);
    s.register_tasks(&[dep("model", "fit", &[])], t(3)).unwrap();
    assert_eq!(edges(s).len(), 3);
    // Deleting a task drops its edges both ways.
    s.register_tasks(&[dep("model", "fit", &["clean"])], t(4))
        .unwrap();
    s.delete_tasks(&tasker::TaskSelector {
        stage: Some("model".into()),
        task: Some("clean".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        edges(s),
        pairs(&[
            ("ingest/download", "report/render"),
            ("model/fit", "report/render"),
        ])
    );
}

fn facts() -> ProcessFacts {
    ProcessFacts {
        hostname: "elsewhere".into(),
        pid: 4_000_000,
        parent_pid: None,
        process_start: None,
        user: None,
    }
}

fn start(s: &mut dyn Store, id: &str, stage: &str, task: &str, at: i64) {
    s.start_run(&NewRun {
        run_id: id.into(),
        stage: stage.into(),
        task: task.into(),
        facts: facts(),
        options: RunOptions::default(),
        start_time: t(at),
        lost_before: t(at - 120),
        known_lost: None,
    })
    .unwrap();
}

fn finish(s: &mut dyn Store, id: &str, to: Status, at: i64) {
    s.run_transition(id, to, &TransitionInfo::default(), t(at))
        .unwrap();
}

fn wait_of(s: &mut dyn Store, id: &str) -> Option<f64> {
    s.run(id).unwrap().unwrap().wait_seconds
}

fn a_run_records_its_wait_from_the_last_upstream_to_finish(config: &Config) {
    let mut s = store::open(config).unwrap();
    let s = &mut *s;
    s.register_tasks(
        &[
            TaskSpec::new("a", "one"),
            TaskSpec::new("a", "two"),
            dep("b", "join", &["a/one", "a/two"]),
        ],
        t(0),
    )
    .unwrap();
    // No upstream finished yet: no wait time.
    start(s, "early", "b", "join", 1);
    assert_eq!(wait_of(s, "early"), None);
    finish(s, "early", Status::Cancelled, 2);
    start(s, "one", "a", "one", 10);
    finish(s, "one", Status::Completed, 20);
    start(s, "two", "a", "two", 10);
    finish(s, "two", Status::Completed, 35);
    start(s, "join", "b", "join", 47);
    let w = wait_of(s, "join").expect("a wait time");
    assert!((w - 12.0).abs() < 0.01, "{w}");
    // A failed upstream run is not a finish: the last success counts.
    start(s, "two-again", "a", "two", 50);
    finish(s, "two-again", Status::Failed, 60);
    start(s, "join-2", "b", "join", 70);
    let w = wait_of(s, "join-2").expect("a wait time");
    assert!((w - 35.0).abs() < 0.01, "{w}");
    // A task without dependencies has none.
    assert_eq!(wait_of(s, "one"), None);
    let mut waits = s
        .wait_times(&tasker::StatsFilter::default())
        .unwrap()
        .into_iter()
        .map(|(st, t, _, w)| (st, t, w.round() as i64))
        .collect::<Vec<_>>();
    waits.sort();
    assert_eq!(
        waits,
        vec![
            ("b".into(), "join".into(), 12),
            ("b".into(), "join".into(), 35)
        ]
    );
}

fn rule() -> LostRule {
    LostRule {
        now: t(1_000),
        this_host: "here".into(),
        lost_after: Duration::seconds(60),
    }
}

fn dag_of(s: &mut dyn Store) -> Dag {
    let mut rows: Vec<RunRow> = s.task_status(&StatusFilter::default()).unwrap();
    rows.iter_mut().for_each(|r| r.derive(&rule()));
    Dag::build(rows, s.task_dependencies().unwrap())
}

fn a_failed_upstream_blocks_everything_below_and_others_wait(config: &Config) {
    let mut s = store::open(config).unwrap();
    let s = &mut *s;
    //   ingest/a ──> prep/b ──> model/d ──> report/e
    //   ingest/c ──────────────────^
    //   ingest/f ──> prep/g   (f is lost, so g is blocked)
    //   ingest/h ──> prep/i   (h runs, so i waits)
    s.register_tasks(
        &[
            TaskSpec::new("ingest", "a"),
            TaskSpec::new("ingest", "c"),
            TaskSpec::new("ingest", "f"),
            TaskSpec::new("ingest", "h"),
            dep("prep", "b", &["ingest/a"]),
            dep("prep", "g", &["ingest/f"]),
            dep("prep", "i", &["ingest/h"]),
            dep("model", "d", &["prep/b", "ingest/c"]),
            dep("report", "e", &["model/d"]),
        ],
        t(0),
    )
    .unwrap();
    start(s, "a", "ingest", "a", 900);
    finish(s, "a", Status::Completed, 910);
    start(s, "b", "prep", "b", 920);
    finish(s, "b", Status::Failed, 930);
    start(s, "c", "ingest", "c", 900);
    finish(s, "c", Status::Completed, 905);
    // f's heartbeat is older than the lost limit: lost.
    start(s, "f", "ingest", "f", 100);
    start(s, "h", "ingest", "h", 990);

    let dag = dag_of(s);
    let node = |id: &str| dag.nodes.iter().find(|n| n.id == id).unwrap().clone();
    assert_eq!(dag.edges.len(), 6);
    assert!(node("ingest/f").lost);
    let b = node("prep/b");
    assert_eq!(b.status, Status::Failed);
    assert!(!b.blocked && !b.waiting, "{b:?}");
    let d = node("model/d");
    assert!(d.blocked && !d.waiting, "{d:?}");
    assert_eq!(d.blocked_by, vec!["prep/b".to_string()]);
    // Blocked propagates: e's upstream never succeeded and is blocked.
    let e = node("report/e");
    assert!(e.blocked, "{e:?}");
    assert_eq!(e.blocked_by, vec!["model/d".to_string()]);
    let g = node("prep/g");
    assert!(g.blocked, "{g:?}");
    let i = node("prep/i");
    assert!(i.waiting && !i.blocked, "{i:?}");
    assert_eq!(i.waiting_for, vec!["ingest/h".to_string()]);
    assert!(!node("ingest/a").blocked && !node("ingest/a").waiting);
    // Ranks: the longest path from a root.
    assert_eq!(
        ["ingest/a", "prep/b", "model/d", "report/e", "ingest/c"].map(|n| node(n).rank),
        [0, 1, 2, 3, 0]
    );

    // The failed task succeeds on a retry: d is no longer blocked, it waits
    // for nothing (both upstreams done), and e waits for d.
    start(s, "b2", "prep", "b", 940);
    finish(s, "b2", Status::Completed, 950);
    let dag = dag_of(s);
    let node = |id: &str| dag.nodes.iter().find(|n| n.id == id).unwrap().clone();
    let d = node("model/d");
    assert!(!d.blocked && !d.waiting, "{d:?}");
    let e = node("report/e");
    assert!(e.waiting && !e.blocked, "{e:?}");
}

#[test]
fn the_tracker_refuses_bad_names_before_the_store_and_returns_the_dag() {
    let dir = tempfile::tempdir().unwrap();
    let tr = Tracker::open(sqlite(&dir)).unwrap();
    let err = tr
        .register_task(&dep("s", "t", &["bad\0name"]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    tr.register_tasks(&[TaskSpec::new("s", "up"), dep("s", "down", &["up"])])
        .unwrap();
    let run = tr.task_start("s", "up", RunOptions::default()).unwrap();
    let dag = tr.dag().unwrap();
    let down = dag.nodes.iter().find(|n| n.id == "s/down").unwrap();
    assert!(down.waiting, "{down:?}");
    run.complete(None).unwrap();
    let dag = tr.dag().unwrap();
    let up = dag.nodes.iter().find(|n| n.id == "s/up").unwrap();
    assert_eq!(up.status, Status::Completed);
    assert_eq!(up.percent, Some(100.0));
    let down = dag.nodes.iter().find(|n| n.id == "s/down").unwrap();
    assert!(!down.waiting && !down.blocked, "{down:?}");
}
