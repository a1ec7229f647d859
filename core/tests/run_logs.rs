//! Run logs and item outcomes through the tracker, on a real SQLite file and,
//! when `TASKER_PG_URL` names a server (`scripts/test-postgres.sh`), on
//! PostgreSQL in a schema of its own: order, filters, the bound with its marker
//! line, cut lines, and outcomes counted exactly beyond what is kept.

mod common;

use tasker::logs::MAX_ITEM_OUTCOMES;
use tasker::{
    Config, ErrorKind, LogFilter, LogLevel, Outcome, OutcomeFilter, RunOptions, SubtaskOptions,
    Tracker,
};

struct Db {
    config: Config,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        config: Config::sqlite(dir.path().join("logs.db")),
        _dir: dir,
    }
}

fn postgres(test: &str) -> Db {
    Db {
        config: common::postgres_config("logs", test),
        _dir: tempfile::tempdir().unwrap(),
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(super::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] #[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"] fn $name() {
                super::$name(super::postgres(stringify!($name)));
            } )*
        }
    };
}

suite!(
    lines_keep_their_order_level_subtask_and_process,
    a_run_keeps_its_newest_lines_and_one_marker_counts_the_rest,
    long_lines_are_cut_and_any_content_is_kept_as_text,
    item_outcomes_are_kept_up_to_the_bound_and_counted_exactly,
);

fn messages(rows: &[tasker::LogRow]) -> Vec<&str> {
    rows.iter().map(|r| r.message.as_str()).collect()
}

fn lines_keep_their_order_level_subtask_and_process(db: Db) {
    let t = Tracker::open(db.config).unwrap();
    let run = t.task_start("s", "logs", RunOptions::default()).unwrap();
    let n = run
        .subtask_start("files", SubtaskOptions::default())
        .unwrap();
    run.log(LogLevel::Debug, "one", None).unwrap();
    run.log(LogLevel::Info, "two", Some(n)).unwrap();
    t.flush().unwrap();
    run.log(LogLevel::Warn, "three", None).unwrap();
    run.log(LogLevel::Error, "four", Some(n)).unwrap();
    let all = t.run_logs(run.run_id(), &LogFilter::default()).unwrap();
    assert_eq!(messages(&all), ["one", "two", "three", "four"]);
    assert!(all.windows(2).all(|w| w[0].log_id < w[1].log_id));
    assert_eq!(all[1].subtask_number, Some(i64::from(n)));
    assert_eq!(all[0].subtask_number, None);
    assert_eq!(all[0].process_id, Some(i64::from(std::process::id())));
    assert_eq!(all[0].hostname.as_deref(), Some(t.hostname()));
    assert_eq!(all[3].level, LogLevel::Error);
    assert!(all.iter().all(|r| r.dropped_lines.is_none()));

    let warn = LogFilter {
        min_level: Some(LogLevel::Warn),
        ..LogFilter::default()
    };
    assert_eq!(
        messages(&t.run_logs(run.run_id(), &warn).unwrap()),
        ["three", "four"]
    );
    // A tail: the newest lines, oldest first.
    let tail = LogFilter {
        limit: Some(2),
        ..LogFilter::default()
    };
    assert_eq!(
        messages(&t.run_logs(run.run_id(), &tail).unwrap()),
        ["three", "four"]
    );
    // A follower pages forward from the last line it saw.
    let after = LogFilter {
        after_id: Some(all[1].log_id),
        limit: Some(1),
        ..LogFilter::default()
    };
    assert_eq!(
        messages(&t.run_logs(run.run_id(), &after).unwrap()),
        ["three"]
    );
    let since = LogFilter {
        since: Some(all[2].time),
        ..LogFilter::default()
    };
    assert_eq!(
        messages(&t.run_logs(run.run_id(), &since).unwrap()),
        ["three", "four"]
    );

    let e = t
        .run_logs("no-such-run", &LogFilter::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no-such-run"), "{e}");
    let e = "verbose".parse::<LogLevel>().unwrap_err();
    assert!(e.to_string().contains("verbose"), "{e}");
    run.complete(None).unwrap();
}

fn a_run_keeps_its_newest_lines_and_one_marker_counts_the_rest(mut db: Db) {
    db.config.max_log_lines = 50;
    let t = Tracker::open(db.config).unwrap();
    let run = t.task_start("s", "bounded", RunOptions::default()).unwrap();
    // Some dropped while waiting in memory, some after they were stored.
    for i in 0..30 {
        run.log(LogLevel::Info, &format!("line {i}"), None).unwrap();
    }
    t.flush().unwrap();
    for i in 30..120 {
        run.log(LogLevel::Info, &format!("line {i}"), None).unwrap();
    }
    run.complete(None).unwrap(); // the lines go with the completion
    let rows = t.run_logs(run.run_id(), &LogFilter::default()).unwrap();
    assert_eq!(rows.len(), 51, "50 lines and the marker");
    assert_eq!(rows[0].dropped_lines, Some(70));
    assert!(rows[0].message.contains("70"), "{}", rows[0].message);
    assert_eq!(rows[1].message, "line 70");
    assert_eq!(rows[50].message, "line 119");
    // A follower that saw the marker gets the first kept line next.
    let next = t
        .run_logs(
            run.run_id(),
            &LogFilter {
                after_id: Some(rows[0].log_id),
                limit: Some(1),
                ..LogFilter::default()
            },
        )
        .unwrap();
    assert_eq!(messages(&next), ["line 70"]);
    // Errors only: no marker (it is a warning), no lines.
    let errors = LogFilter {
        min_level: Some(LogLevel::Error),
        ..LogFilter::default()
    };
    assert!(t.run_logs(run.run_id(), &errors).unwrap().is_empty());
}

fn long_lines_are_cut_and_any_content_is_kept_as_text(db: Db) {
    let t = Tracker::open(db.config).unwrap();
    let run = t.task_start("s", "hostile", RunOptions::default()).unwrap();
    let long = "ü".repeat(10_000);
    let hostile = "<script>alert(1)</script>\u{1b}[31mred\u{7}\r\nnext\0end";
    run.log(LogLevel::Info, &long, None).unwrap();
    run.log(LogLevel::Info, hostile, None).unwrap();
    let rows = t.run_logs(run.run_id(), &LogFilter::default()).unwrap();
    assert!(rows[0].message.len() < 8 * 1024 + 100);
    assert!(rows[0].message.starts_with("üüü"));
    assert!(
        rows[0].message.ends_with("[cut: 20000 bytes, 8192 kept]"),
        "{}",
        &rows[0].message[rows[0].message.len() - 60..]
    );
    // Stored as given (NUL aside): showing it inert is each reader's job.
    assert_eq!(rows[1].message, hostile.replace('\0', "\u{FFFD}"));
    run.complete(None).unwrap();
}

fn item_outcomes_are_kept_up_to_the_bound_and_counted_exactly(db: Db) {
    let t = Tracker::open(db.config).unwrap();
    let run = t
        .task_start("s", "counties", RunOptions::default())
        .unwrap();
    let a = run.subtask_start("a", SubtaskOptions::default()).unwrap();
    let b = run.subtask_start("b", SubtaskOptions::default()).unwrap();
    let many = MAX_ITEM_OUTCOMES as usize + 40;
    for i in 0..many {
        run.item_failed(a, &format!("county {i}"), "timeout")
            .unwrap();
        if i == 500 {
            t.flush().unwrap(); // across flushes and past the in-memory bound
        }
    }
    run.item_skipped(b, "county x", None).unwrap();
    run.item_skipped(b, "county y", Some("no data")).unwrap();
    run.item_failed(b, "county z", "bad <b>file</b>").unwrap();
    let counts = t.item_outcome_counts(run.run_id()).unwrap();
    let got: Vec<(i64, Outcome, i64, i64)> = counts
        .iter()
        .map(|c| (c.subtask_number, c.outcome, c.total, c.kept))
        .collect();
    let bound = i64::from(MAX_ITEM_OUTCOMES);
    assert_eq!(
        got,
        [
            (i64::from(a), Outcome::Failed, many as i64, bound),
            (i64::from(b), Outcome::Failed, 1, 1),
            (i64::from(b), Outcome::Skipped, 2, 2),
        ]
    );
    let failed_a = t
        .item_outcomes(
            run.run_id(),
            &OutcomeFilter {
                subtask: Some(a),
                ..OutcomeFilter::default()
            },
        )
        .unwrap();
    assert_eq!(failed_a.len(), MAX_ITEM_OUTCOMES as usize);
    assert_eq!(failed_a[0].item_key, "county 0");
    assert_eq!(failed_a[0].reason.as_deref(), Some("timeout"));
    let skipped = t
        .item_outcomes(
            run.run_id(),
            &OutcomeFilter {
                outcome: Some(Outcome::Skipped),
                ..OutcomeFilter::default()
            },
        )
        .unwrap();
    let keys: Vec<(&str, Option<&str>)> = skipped
        .iter()
        .map(|o| (o.item_key.as_str(), o.reason.as_deref()))
        .collect();
    assert_eq!(keys, [("county x", None), ("county y", Some("no data"))]);
    let e = run.item_failed(0, "k", "e").unwrap_err();
    assert!(e.to_string().contains('0'), "{e}");
    run.complete(None).unwrap();
}
