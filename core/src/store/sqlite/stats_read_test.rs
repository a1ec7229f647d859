//! Statistics read runs from the covering index (numeric times, migration 6); the
//! table's text times are the reference. On a randomized history both readings
//! must give the same runs and the same statistics, for every kind of filter.

use chrono::TimeZone;

use super::*;
use crate::query::LostRule;
use crate::stats::task_stats;

/// A small deterministic generator (xorshift64*): the same history on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.db");
    let s = SqliteStore::open(&path, &Config::sqlite(&path)).unwrap();
    (dir, s)
}

/// Fills `s` with `n` runs over 3 stages x 4 tasks: every status, times with
/// microseconds (some before 1970, some equal within a task, some ending before
/// they start), retries of earlier runs, active runs here and elsewhere with fresh
/// and stale heartbeats, items on two subtasks.
fn random_history(s: &SqliteStore, rng: &mut Rng, n: usize) {
    let c = &s.conn;
    let at = ts(base());
    let mut tasks = Vec::new();
    for stage in 0..3 {
        c.execute(
            "INSERT INTO stages(stage_name, created_at, updated_at) VALUES (?1, ?2, ?2)",
            params![format!("stage{stage}"), at],
        )
        .unwrap();
        let stage_id = c.last_insert_rowid();
        for task in 0..4 {
            c.execute(
                "INSERT INTO tasks(stage_id, task_name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?3)",
                params![stage_id, format!("task{task}"), at],
            )
            .unwrap();
            tasks.push((c.last_insert_rowid(), Vec::<(String, i64)>::new()));
        }
    }
    let here = crate::process::ProcessFacts::current(None).hostname;
    for i in 0..n {
        let t = rng.below(tasks.len() as u64) as usize;
        let id = format!("run{:05}-{}", i, rng.below(1000));
        // Starts over about ten days; one in ten shares an earlier run's start,
        // one in a hundred is before 1970.
        let start_us = if rng.below(100) == 0 {
            -(rng.below(1_000_000_000_000) as i64)
        } else if rng.below(10) == 0 && !tasks[t].1.is_empty() {
            let k = rng.below(tasks[t].1.len() as u64) as usize;
            tasks[t].1[k].1
        } else {
            base().timestamp_micros() + rng.below(864_000_000_000) as i64
        };
        let start = DateTime::<Utc>::from_timestamp_micros(start_us).unwrap();
        let status = Status::ALL[rng.below(Status::ALL.len() as u64) as usize];
        let secs = rng.below(7_200_000_000) as i64 - 100_000_000;
        let end = (!status.is_active() && status != Status::NotStarted)
            .then(|| start + chrono::Duration::microseconds(secs));
        let beat = start
            + chrono::Duration::microseconds(if rng.below(2) == 0 {
                rng.below(60_000_000) as i64
            } else {
                rng.below(864_000_000_000) as i64
            });
        let host = if rng.below(3) == 0 {
            here.as_str()
        } else {
            "elsewhere"
        };
        // A retry of an earlier run of the task, one in five.
        let (attempt, retry_of) = if rng.below(5) == 0 && !tasks[t].1.is_empty() {
            let k = rng.below(tasks[t].1.len() as u64) as usize;
            (2 + rng.below(3) as i64, Some(tasks[t].1[k].0.clone()))
        } else {
            (1, None)
        };
        c.execute(
            "INSERT INTO runs(run_id, task_id, hostname, process_id, process_start_time,
                              status, start_time, end_time, last_update, heartbeat_time,
                              attempt, retry_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)",
            params![
                id,
                tasks[t].0,
                host,
                // A pid that is not running (beyond pid_max), so the lost check
                // of a run here is decided by its process being gone.
                if host == "elsewhere" {
                    1
                } else {
                    4_194_304 + i as i64
                },
                ts(start),
                status.as_str(),
                ts(start),
                end.map(ts),
                ts(beat),
                attempt,
                retry_of,
            ],
        )
        .unwrap();
        for number in 1..=rng.below(3) as i64 {
            c.execute(
                "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status,
                                      last_update, items_complete)
                 VALUES (?1, ?2, 'part', 'COMPLETED', ?3, ?4)",
                params![id, number, ts(start), rng.below(10_000) as i64],
            )
            .unwrap();
        }
        tasks[t].1.push((id, start_us));
    }
}

/// The runs as the table's text times give them, with their items.
fn from_text(s: &SqliteStore, f: &StatsFilter) -> Vec<RunSummary> {
    let names = task_names(&s.conn, f).unwrap();
    let mut runs = summaries_from_text(&s.conn, f, &names).unwrap();
    let window = super::super::items_window(&runs);
    let ids: Vec<&str> = window.iter().map(|&i| runs[i].run_id.as_str()).collect();
    let items = items_of_runs(&s.conn, &ids).unwrap();
    super::super::fill_items(&mut runs, &window, &items);
    runs
}

fn sorted(mut runs: Vec<RunSummary>) -> Vec<RunSummary> {
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    runs
}

fn filters() -> Vec<StatsFilter> {
    let since = Some(base() + chrono::Duration::days(4));
    let f = |stage: Option<&str>, task: Option<&str>, since, limit| StatsFilter {
        stage: stage.map(String::from),
        task: task.map(String::from),
        since,
        limit,
    };
    vec![
        f(None, None, None, None),
        f(None, None, None, Some(1)),
        f(None, None, None, Some(7)),
        f(None, None, since, None),
        f(None, None, since, Some(3)),
        f(Some("stage1"), None, None, None),
        f(None, Some("task2"), None, Some(5)),
        f(Some("stage2"), Some("task3"), since, None),
        f(Some("nope"), None, None, None),
    ]
}

#[test]
fn the_index_gives_the_runs_and_statistics_the_text_times_give() {
    let (_dir, mut s) = store();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    random_history(&s, &mut rng, 3000);
    assert!(!has_odd_times(&s.conn).unwrap());
    let rule = LostRule {
        now: base() + chrono::Duration::days(5),
        this_host: crate::process::ProcessFacts::current(None).hostname,
        lost_after: chrono::Duration::seconds(120),
    };
    for f in filters() {
        let fast = s.run_summaries(&f).unwrap();
        let text = from_text(&s, &f);
        assert!(
            f.stage.as_deref() == Some("nope") || fast.len() > 10,
            "{f:?}: {} runs",
            fast.len()
        );
        let stats = task_stats(&fast, &rule);
        assert_eq!(stats, task_stats(&text, &rule), "{f:?}");
        // Task by task, as `tasker stats` computes them.
        assert_eq!(s.task_stats(&f, &rule).unwrap(), stats, "{f:?}");
        assert_eq!(sorted(fast), sorted(text), "{f:?}");
        // The history has what the comparison is about.
        if f == StatsFilter::default() {
            let some = |what: &str, v: i64| assert!(v > 0, "no {what} in the history");
            some("retries", stats.iter().map(|x| x.retried).sum());
            some("lost runs", stats.iter().map(|x| x.lost).sum());
            some("active runs", stats.iter().map(|x| x.active).sum());
            assert!(stats.iter().any(|x| x.items_per_second.is_some()));
        }
    }
}

#[test]
fn a_time_not_in_the_fixed_form_is_read_from_the_text() {
    let (_dir, mut s) = store();
    random_history(&s, &mut Rng(42), 50);
    // Written by hand or by another program: an offset instead of Z.
    s.conn
        .execute(
            "UPDATE runs SET status = 'COMPLETED', start_time = '2026-03-01T01:00:00+01:00',
                             end_time = '2026-03-01T00:00:30.5Z'
              WHERE run_id = (SELECT MIN(run_id) FROM runs)",
            [],
        )
        .unwrap();
    assert!(has_odd_times(&s.conn).unwrap());
    let runs = s.run_summaries(&StatsFilter::default()).unwrap();
    let odd = runs.iter().min_by(|a, b| a.run_id.cmp(&b.run_id)).unwrap();
    assert_eq!(odd.start_time, Some(base()));
    assert_eq!(
        odd.end_time,
        Some(base() + chrono::Duration::milliseconds(30_500))
    );
    let rule = LostRule {
        now: base(),
        this_host: "here".into(),
        lost_after: chrono::Duration::seconds(120),
    };
    assert_eq!(
        s.task_stats(&StatsFilter::default(), &rule).unwrap(),
        task_stats(&runs, &rule)
    );
    assert_eq!(sorted(runs), sorted(from_text(&s, &StatsFilter::default())));
}

#[test]
fn the_numeric_times_are_the_text_times_or_null() {
    let (_dir, s) = store();
    random_history(&s, &mut Rng(7), 200);
    let c = &s.conn;
    let mut st = c
        .prepare("SELECT start_time, start_us, end_time, end_us FROM runs")
        .unwrap();
    // Start as text and number, end as text and number.
    type Times = (String, Option<i64>, Option<String>, Option<i64>);
    let rows: Vec<Times> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (start, start_us, end, end_us) in rows {
        assert_eq!(start_us, Some(parse_ts(&start).unwrap().timestamp_micros()));
        assert_eq!(
            end_us,
            end.map(|e| parse_ts(&e).unwrap().timestamp_micros())
        );
    }
    // Forms the fixed reading refuses, SQLite's date functions would take or roll over.
    for bad in [
        "2026-02-30T00:00:00.000000Z",
        "2026-03-01T24:00:00.000000Z",
        "2026-03-01T00:00:0x.000000Z",
        "2026-03-01T00:00:00.00000xZ",
        "2026-03-01T00:00:00.000000+",
        "2026-03-01 00:00:00.000000Z",
        "2026-03-01T00:00:00Z",
    ] {
        c.execute("UPDATE runs SET end_time = ?1 WHERE rowid = 1", [bad])
            .unwrap();
        let v: Option<i64> = c
            .query_row("SELECT end_us FROM runs WHERE rowid = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, None, "{bad}");
    }
    // A time mended by hand is followed.
    c.execute(
        "UPDATE runs SET start_time = '2026-03-01T00:00:01.000002Z' WHERE rowid = 1",
        [],
    )
    .unwrap();
    let v: Option<i64> = c
        .query_row("SELECT start_us FROM runs WHERE rowid = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(v, Some(base().timestamp_micros() + 1_000_002));
}

#[test]
fn statistics_read_only_the_covering_index_in_task_order() {
    let (_dir, s) = store();
    let plan = |sql: &str| -> String {
        let mut st = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows: Vec<String> = st
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.join("\n")
    };
    let p = plan(&format!(
        "SELECT {INDEX_COLUMNS} FROM runs r INDEXED BY runs_stats ORDER BY r.task_id"
    ));
    assert!(p.contains("COVERING INDEX runs_stats"), "{p}");
    assert!(!p.contains("TEMP B-TREE"), "{p}");
}

#[test]
fn a_version_4_file_gets_numeric_times_for_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                                          applied_at TEXT NOT NULL);",
        )
        .unwrap();
        for (i, (description, sql)) in MIGRATIONS[..4].iter().enumerate() {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO schema_version VALUES (?1, ?2, '2026-03-01T12:00:00.000000Z')",
                params![i as i64 + 1, description],
            )
            .unwrap();
        }
        // Rows as version 4 wrote them: a finished run, a running one, a retry.
        c.execute_batch(
            "INSERT INTO stages(stage_id, stage_name, created_at, updated_at)
                 VALUES (1, 'load', '2026-03-01T12:00:00.000000Z', '2026-03-01T12:00:00.000000Z');
             INSERT INTO tasks(task_id, stage_id, task_name, created_at, updated_at)
                 VALUES (1, 1, 'fetch', '2026-03-01T12:00:00.000000Z', '2026-03-01T12:00:00.000000Z');
             INSERT INTO runs(run_id, task_id, hostname, process_id, status, start_time, end_time,
                              last_update, heartbeat_time, attempt, retry_of)
                 VALUES ('a', 1, 'h', 1, 'FAILED', '2026-03-01T00:00:00.000000Z',
                         '2026-03-01T00:00:10.250000Z', '2026-03-01T00:00:10.250000Z',
                         '2026-03-01T00:00:10.250000Z', 1, NULL),
                        ('b', 1, 'h', 1, 'COMPLETED', '2026-03-01T00:01:00.000001Z',
                         '2026-03-01T00:02:00.000000Z', '2026-03-01T00:02:00.000000Z',
                         '2026-03-01T00:02:00.000000Z', 2, 'a'),
                        ('c', 1, 'h', 1, 'RUNNING', '2026-03-01T00:03:00.000000Z', NULL,
                         '2026-03-01T00:03:30.000000Z', '2026-03-01T00:03:30.000000Z', 1, NULL);",
        )
        .unwrap();
    }
    let mut s = SqliteStore::open(&path, &Config::sqlite(&path)).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let times: Vec<(String, Option<i64>, Option<i64>)> = s
        .conn
        .prepare("SELECT run_id, start_us, end_us FROM runs ORDER BY run_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let us = base().timestamp_micros();
    assert_eq!(
        times,
        [
            ("a".to_string(), Some(us), Some(us + 10_250_000)),
            (
                "b".to_string(),
                Some(us + 60_000_001),
                Some(us + 120_000_000)
            ),
            ("c".to_string(), Some(us + 180_000_000), None),
        ]
    );
    assert!(!has_odd_times(&s.conn).unwrap());
    let runs = s.run_summaries(&StatsFilter::default()).unwrap();
    assert_eq!(
        sorted(runs.clone()),
        sorted(from_text(&s, &StatsFilter::default()))
    );
    let c = runs.iter().find(|r| r.run_id == "c").unwrap();
    assert_eq!(
        c.heartbeat_time,
        Some(base() + chrono::Duration::seconds(210))
    );
    // Runs written after the migration get them too.
    s.conn
        .execute(
            "INSERT INTO runs(run_id, task_id, hostname, process_id, status, start_time,
                              last_update, heartbeat_time)
             VALUES ('d', 1, 'h', 1, 'RUNNING', '2026-03-01T00:04:00.000000Z', 'x', 'x')",
            [],
        )
        .unwrap();
    let d: Option<i64> = s
        .conn
        .query_row("SELECT start_us FROM runs WHERE run_id = 'd'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(d, Some(us + 240_000_000));
}

#[test]
fn runs_starting_together_are_picked_for_items_by_run_id() {
    // 30 completed runs of one task, all started at once: which 20 count towards
    // items per second is decided by run id alone, as `store::items_window` does.
    let (_dir, mut s) = store();
    random_history(&s, &mut Rng(3), 1);
    let at = ts(base());
    for i in 0..30i64 {
        let id = format!("tie{:02}", (i * 7) % 30);
        s.conn
            .execute(
                "INSERT INTO runs(run_id, task_id, hostname, process_id, status, start_time,
                                  end_time, last_update, heartbeat_time)
                 SELECT ?1, task_id, 'h', 1, 'COMPLETED', ?2, ?3, ?3, ?3 FROM runs LIMIT 1",
                params![id, at, ts(base() + chrono::Duration::seconds(10 + i))],
            )
            .unwrap();
        s.conn
            .execute(
                "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, last_update,
                                      items_complete)
                 VALUES (?1, 1, 'part', 'COMPLETED', ?2, ?3)",
                params![id, at, 100 + i * i],
            )
            .unwrap();
    }
    let rule = LostRule {
        now: base(),
        this_host: "here".into(),
        lost_after: chrono::Duration::seconds(120),
    };
    let f = StatsFilter::default();
    let expected = task_stats(&from_text(&s, &f), &rule);
    assert!(expected.iter().any(|t| t.items_per_second.is_some()));
    assert_eq!(s.task_stats(&f, &rule).unwrap(), expected);
}
