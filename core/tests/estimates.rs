//! Statistics and ETA on a generated history with known durations, written at
//! chosen times through the store and read through the tracker, as every skin
//! reads them: percentiles exact, the ETA's interval holding the known remaining
//! time, run and subtask ETA consistent, a lost run without ETA and with a
//! frozen duration.

use chrono::{DateTime, Duration, Utc};
use tasker::process::ProcessFacts;
use tasker::store::{self, NewRun, Op, ProgressUpdate, Store};
use tasker::{Config, RunOptions, StatsFilter, Status, SubtaskOptions, Tracker, TransitionInfo};

fn facts() -> ProcessFacts {
    // Another host: liveness comes from the heartbeat alone.
    ProcessFacts {
        hostname: "worker-7".into(),
        pid: 4_000_000,
        parent_pid: None,
        process_start: None,
        user: Some("alice".into()),
    }
}

fn start(s: &mut dyn Store, id: &str, at: DateTime<Utc>, total: Option<i64>) {
    s.start_run(&NewRun {
        run_id: id.into(),
        stage: "etl".into(),
        task: "load".into(),
        facts: facts(),
        options: RunOptions {
            total_subtasks: total,
            ..RunOptions::default()
        },
        start_time: at,
        lost_before: at,
        known_lost: None,
    })
    .unwrap();
}

fn subtask(s: &mut dyn Store, id: &str, items: Option<u64>, at: DateTime<Utc>) -> u32 {
    let opts = SubtaskOptions {
        items_total: items,
        ..SubtaskOptions::default()
    };
    s.subtask_start(id, "part", &opts, at).unwrap()
}

fn progress(s: &mut dyn Store, id: &str, n: u32, items: u64, at: DateTime<Utc>, beat: bool) {
    s.apply(
        &Op::Progress {
            updates: vec![ProgressUpdate {
                run_id: id.into(),
                subtask: Some(n),
                items_delta: items,
                ..ProgressUpdate::default()
            }],
            heartbeats: if beat { vec![id.into()] } else { vec![] },
            samples: vec![],
            logs: Default::default(),
            at,
        },
        None,
    )
    .unwrap();
}

fn done(s: &mut dyn Store, id: &str, n: u32, at: DateTime<Utc>) {
    s.subtask_transition(id, n, Status::Completed, &TransitionInfo::default(), at)
        .unwrap();
}

/// 20 completed runs of 4 sequential subtasks of 25 s (+0..3 s): runs of 100 to
/// 112 s, known exactly.
fn history(s: &mut dyn Store, now: DateTime<Utc>) -> Vec<f64> {
    let mut durations = Vec::new();
    for i in 0..20i64 {
        let id = format!("past-{i:02}");
        let t0 = now - Duration::days(1) + Duration::minutes(10 * i);
        start(s, &id, t0, Some(4));
        let mut t = t0;
        for _ in 0..4 {
            let n = subtask(s, &id, Some(100), t);
            t += Duration::seconds(25 + i % 4);
            progress(s, &id, n, 100, t, false);
            done(s, &id, n, t);
        }
        s.run_transition(&id, Status::Completed, &TransitionInfo::default(), t)
            .unwrap();
        durations.push((t - t0).num_milliseconds() as f64 / 1000.0);
    }
    durations
}

#[test]
fn statistics_and_estimates_on_a_known_history() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::sqlite(dir.path().join("h.db"));
    let now = Utc::now();
    let mut durations = {
        let mut s = store::open(&config).unwrap();
        let d = history(&mut *s, now);
        // The live run: started 60 s ago, two subtasks done in 25 s each, the
        // third 40 of 100 items in its 10 s (4 items/s): 15 s left in it, then
        // about 25 s for the fourth. About 40 s in all.
        let t0 = now - Duration::seconds(60);
        start(&mut *s, "live", t0, Some(4));
        for k in 0..2 {
            let at = t0 + Duration::seconds(25 * k);
            let n = subtask(&mut *s, "live", Some(100), at);
            progress(&mut *s, "live", n, 100, at + Duration::seconds(25), false);
            done(&mut *s, "live", n, at + Duration::seconds(25));
        }
        let n = subtask(&mut *s, "live", Some(100), now - Duration::seconds(10));
        progress(&mut *s, "live", n, 40, now, true);
        // A lost run: last heard of 1,000 s ago, after running for 1,000 s.
        let lost_start = now - Duration::seconds(2000);
        start(&mut *s, "lost", lost_start, Some(4));
        let n = subtask(&mut *s, "lost", Some(100), lost_start);
        progress(&mut *s, "lost", n, 10, now - Duration::seconds(1000), true);
        d
    };
    let t = Tracker::open(config).unwrap();

    // Statistics: percentiles of the known durations, exactly (type 7).
    durations.sort_by(f64::total_cmp);
    let p = |q: f64| {
        let h = q * (durations.len() - 1) as f64;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        durations[lo] + (h - lo as f64) * (durations[hi] - durations[lo])
    };
    let stats = t.task_stats(&StatsFilter::default()).unwrap();
    assert_eq!(stats.len(), 1);
    let st = &stats[0];
    assert_eq!((st.runs, st.completed, st.lost, st.active), (22, 20, 1, 1));
    assert_eq!(st.success_rate, Some(20.0 / 21.0));
    for (got, q) in [
        (st.duration_p50, 0.5),
        (st.duration_p90, 0.9),
        (st.duration_p95, 0.95),
    ] {
        assert!(
            (got.unwrap() - p(q)).abs() < 1e-6,
            "p{q}: {got:?} vs {}",
            p(q)
        );
    }
    assert_eq!(st.duration_max, durations.last().copied());
    assert!((st.items_per_second.unwrap() - 400.0 / st.duration_mean.unwrap()).abs() < 0.5);

    // The live run: its ETA holds the known remaining time, and outlasts its
    // running subtask's.
    let live = t.run("live").unwrap();
    assert!(!live.lost);
    let (eta, low, high) = (
        live.eta_seconds.unwrap(),
        live.eta_low.unwrap(),
        live.eta_high.unwrap(),
    );
    assert!(low <= 40.0 && 40.0 <= high, "run ETA {low}..{eta}..{high}");
    let subs = t.subtasks("live").unwrap();
    let running = subs.iter().find(|s| s.status.is_active()).unwrap();
    let (s_low, s_high) = (running.eta_low.unwrap(), running.eta_high.unwrap());
    assert!(
        s_low <= 15.0 && 15.0 <= s_high,
        "subtask ETA {s_low}..{s_high}"
    );
    assert!(eta >= running.eta_seconds.unwrap());
    // The same figures in every list a skin reads.
    let active = t.active_runs().unwrap();
    let listed = active
        .iter()
        .find(|r| r.run_id.as_deref() == Some("live"))
        .unwrap();
    assert_eq!(listed.eta_basis, live.eta_basis);
    assert!((listed.eta_seconds.unwrap() - eta).abs() < 2.0);

    // The lost run: no ETA, no rate, its duration frozen at its last heartbeat.
    let lost = t.run("lost").unwrap();
    assert!(lost.lost);
    assert_eq!((lost.eta_seconds, lost.eta_low), (None, None));
    assert!(
        (lost.duration_seconds.unwrap() - 1000.0).abs() < 1.0,
        "{lost:?}"
    );
    let again = t.run("lost").unwrap();
    assert_eq!(
        again.duration_seconds, lost.duration_seconds,
        "it does not grow"
    );
    let lost_subs = t.subtasks("lost").unwrap();
    assert_eq!(
        (lost_subs[0].rate_per_second, lost_subs[0].eta_seconds),
        (None, None)
    );

    // Many runs' subtasks in one query: the same figures.
    let many = t.subtasks_of(&[live.clone(), lost.clone()]).unwrap();
    assert_eq!(many["live"].len(), 3);
    let again = many["live"].iter().find(|s| s.status.is_active()).unwrap();
    assert!((again.eta_seconds.unwrap() - running.eta_seconds.unwrap()).abs() < 1.0);
    assert_eq!(many["lost"][0].rate_per_second, None);
}

#[test]
fn a_task_without_item_counts_gets_an_eta_from_history_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::sqlite(dir.path().join("h.db"));
    let now = Utc::now();
    {
        let mut s = store::open(&config).unwrap();
        for i in 0..10i64 {
            let id = format!("r{i}");
            let t0 = now - Duration::hours(2) + Duration::minutes(5 * i);
            start(&mut *s, &id, t0, None);
            s.run_transition(
                &id,
                Status::Completed,
                &TransitionInfo::default(),
                t0 + Duration::seconds(100),
            )
            .unwrap();
        }
        start(&mut *s, "now", now - Duration::seconds(30), None);
        progress_run_heartbeat(&mut *s, "now", now);
    }
    let t = Tracker::open(config).unwrap();
    let r = t.run("now").unwrap();
    assert_eq!(r.eta_basis, Some(tasker::estimate::Basis::History));
    assert!((r.eta_seconds.unwrap() - 70.0).abs() < 1.0, "{r:?}");
}

fn progress_run_heartbeat(s: &mut dyn Store, id: &str, at: DateTime<Utc>) {
    s.apply(
        &Op::Progress {
            updates: vec![],
            heartbeats: vec![id.into()],
            samples: Vec::new(),
            logs: Default::default(),
            at,
        },
        None,
    )
    .unwrap();
}
