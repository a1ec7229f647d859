//! Statistics per task from stored history: how often it runs and succeeds, how
//! long it takes, how fast it goes, when it last succeeded and failed. One pass
//! over the run summaries the store reads (`Store::run_summaries`); every skin
//! shows these numbers.
//!
//! Attempts of one logical run count once: a run and the retries that follow it
//! (`retry_of`) are one logical run whose outcome is that of its last attempt, so
//! a task that failed twice and then succeeded counts one success with three
//! attempts. Durations are those of completed attempts (the time the work took).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::estimate::percentile;
use crate::model::Status;
use crate::query::{LostRule, RunSummary};

/// What the history of one task says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    pub stage_name: String,
    pub task_name: String,
    /// Runs in the window, every attempt counted.
    pub runs: i64,
    /// Logical runs: a run and its retries count once.
    pub logical_runs: i64,
    /// Logical runs by the outcome of their last attempt.
    pub completed: i64,
    pub failed: i64,
    pub lost: i64,
    pub cancelled: i64,
    pub skipped: i64,
    pub active: i64,
    /// Completed logical runs over those that ended (completed, failed, lost,
    /// cancelled); skipped and active ones are left out.
    pub success_rate: Option<f64>,
    /// Logical runs that took more than one attempt.
    pub retried: i64,
    /// Mean attempts per ended logical run.
    pub mean_attempts: Option<f64>,
    /// Seconds taken by completed runs: percentiles (linear interpolation),
    /// mean and longest.
    pub duration_p50: Option<f64>,
    pub duration_p90: Option<f64>,
    pub duration_p95: Option<f64>,
    pub duration_mean: Option<f64>,
    pub duration_max: Option<f64>,
    /// Items per second of the latest completed runs that counted items (up to
    /// `store::ITEMS_RUNS_PER_TASK` of them): their items over their seconds.
    pub items_per_second: Option<f64>,
    pub last_start: Option<DateTime<Utc>>,
    /// When the latest completed run ended.
    pub last_success: Option<DateTime<Utc>>,
    /// When the latest failed or lost run ended (a lost one: its last heartbeat).
    pub last_failure: Option<DateTime<Utc>>,
    /// Wait of its runs (from the end of the last upstream to the start; tasks
    /// with dependencies only): median and 95th percentile.
    #[serde(default)]
    pub wait_p50: Option<f64>,
    #[serde(default)]
    pub wait_p95: Option<f64>,
}

/// Statistics of every task among `runs`, ordered by stage and task name.
pub fn task_stats(runs: &[RunSummary], rule: &LostRule) -> Vec<TaskStats> {
    let mut tasks = group_by_task(runs.iter().enumerate());
    tasks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    tasks
        .into_iter()
        .map(|((stage, task), group)| {
            let runs: Vec<&RunSummary> = group.into_iter().map(|i| &runs[i]).collect();
            one_task(stage, task, &runs, rule)
        })
        .collect()
}

/// The given `(index, run)` pairs grouped by task: `((stage, task), indices)`, tasks
/// in the order first seen. Stores read runs task by task, so a run of the same
/// task as the one before joins its group without hashing names; in any other
/// order, tasks are hashed (a tree keyed by two names would compare strings for
/// each of 100,000 runs).
pub(crate) fn group_by_task<'a>(
    runs: impl Iterator<Item = (usize, &'a RunSummary)>,
) -> Vec<((&'a str, &'a str), Vec<usize>)> {
    let mut groups: Vec<((&'a str, &'a str), Vec<usize>)> = Vec::new();
    let mut seen: HashMap<(&'a str, &'a str), usize> = HashMap::new();
    let mut last: Option<usize> = None;
    for (i, r) in runs {
        let key = (&*r.stage_name, &*r.task_name);
        // Runs of one task read by a store share their names' allocations.
        let same =
            |k: &(&str, &str)| (std::ptr::eq(k.0, key.0) && std::ptr::eq(k.1, key.1)) || *k == key;
        let g = match last {
            Some(g) if same(&groups[g].0) => g,
            _ => *seen.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            }),
        };
        groups[g].1.push(i);
        last = Some(g);
    }
    groups
}

/// The seconds of each completed run, for estimates from history.
pub fn completed_durations(runs: &[RunSummary]) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.status == Status::Completed)
        .filter_map(seconds)
        .collect()
}

fn seconds(r: &RunSummary) -> Option<f64> {
    r.millis().map(|ms| ms as f64 / 1000.0)
}

/// What statistics read of one run: a `RunSummary`, or a store's lighter row.
pub(crate) trait StatsRun {
    /// A point in time as the store gives it, ordered as the times it stands for
    /// (so that the latest is found without converting every run's times).
    type Time: Copy + Ord;
    fn run_id(&self) -> &str;
    fn retry_of(&self) -> Option<&str>;
    fn attempt(&self) -> i64;
    fn status(&self) -> Status;
    fn start(&self) -> Option<Self::Time>;
    fn end(&self) -> Option<Self::Time>;
    fn utc(t: Self::Time) -> DateTime<Utc>;
    /// Whole milliseconds the run took (none below zero). Sums are taken of
    /// these, so that a mean does not depend on the order the store read the
    /// runs in.
    fn millis(&self) -> Option<i64>;
    fn items_complete(&self) -> i64;
    /// Whether an active run is lost; when it is, its last heartbeat.
    fn lost(&self, rule: &LostRule) -> Option<Option<DateTime<Utc>>>;
}

impl StatsRun for RunSummary {
    type Time = DateTime<Utc>;
    fn run_id(&self) -> &str {
        &self.run_id
    }
    fn retry_of(&self) -> Option<&str> {
        self.retry_of.as_deref()
    }
    fn attempt(&self) -> i64 {
        self.attempt
    }
    fn status(&self) -> Status {
        self.status
    }
    fn start(&self) -> Option<DateTime<Utc>> {
        self.start_time
    }
    fn end(&self) -> Option<DateTime<Utc>> {
        self.end_time
    }
    fn utc(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }
    fn millis(&self) -> Option<i64> {
        let (start, end) = (self.start_time?, self.end_time?);
        Some((end - start).num_milliseconds().max(0))
    }
    fn items_complete(&self) -> i64 {
        self.items_complete
    }
    fn lost(&self, rule: &LostRule) -> Option<Option<DateTime<Utc>>> {
        self.is_lost(rule).then_some(self.heartbeat_time)
    }
}

impl<R: StatsRun> StatsRun for &R {
    type Time = R::Time;
    fn run_id(&self) -> &str {
        (**self).run_id()
    }
    fn retry_of(&self) -> Option<&str> {
        (**self).retry_of()
    }
    fn attempt(&self) -> i64 {
        (**self).attempt()
    }
    fn status(&self) -> Status {
        (**self).status()
    }
    fn start(&self) -> Option<R::Time> {
        (**self).start()
    }
    fn end(&self) -> Option<R::Time> {
        (**self).end()
    }
    fn utc(t: R::Time) -> DateTime<Utc> {
        R::utc(t)
    }
    fn millis(&self) -> Option<i64> {
        (**self).millis()
    }
    fn items_complete(&self) -> i64 {
        (**self).items_complete()
    }
    fn lost(&self, rule: &LostRule) -> Option<Option<DateTime<Utc>>> {
        (**self).lost(rule)
    }
}

enum Outcome {
    Completed,
    Failed,
    /// With the run's last heartbeat.
    Lost(Option<DateTime<Utc>>),
    Cancelled,
    Skipped,
    Active,
}

fn outcome(r: &impl StatsRun, rule: &LostRule) -> Outcome {
    match r.status() {
        Status::Completed => Outcome::Completed,
        Status::Failed => Outcome::Failed,
        Status::Cancelled => Outcome::Cancelled,
        Status::Skipped => Outcome::Skipped,
        _ => match r.lost(rule) {
            Some(beat) => Outcome::Lost(beat),
            None => Outcome::Active,
        },
    }
}

/// Statistics of one task from its runs (every run given is of this task).
pub(crate) fn one_task<R: StatsRun>(
    stage: &str,
    task: &str,
    runs: &[R],
    rule: &LostRule,
) -> TaskStats {
    // The last attempt of a logical run is the one no other run retries.
    let retried: HashSet<&str> = runs.iter().filter_map(|r| r.retry_of()).collect();
    let mut s = TaskStats {
        stage_name: stage.to_string(),
        task_name: task.to_string(),
        runs: runs.len() as i64,
        logical_runs: 0,
        completed: 0,
        failed: 0,
        lost: 0,
        cancelled: 0,
        skipped: 0,
        active: 0,
        success_rate: None,
        retried: 0,
        mean_attempts: None,
        duration_p50: None,
        duration_p90: None,
        duration_p95: None,
        duration_mean: None,
        duration_max: None,
        items_per_second: None,
        last_start: runs.iter().filter_map(|r| r.start()).max().map(R::utc),
        last_success: None,
        last_failure: None,
        wait_p50: None,
        wait_p95: None,
    };
    let (mut attempts, mut ended) = (0i64, 0i64);
    // (Most tasks have no retries: then no run id is hashed.)
    let last_attempts = runs
        .iter()
        .filter(|r| retried.is_empty() || !retried.contains(r.run_id()));
    for r in last_attempts {
        s.logical_runs += 1;
        if r.attempt() > 1 {
            s.retried += 1;
        }
        let counted = match outcome(r, rule) {
            Outcome::Completed => {
                s.completed += 1;
                true
            }
            Outcome::Failed => {
                s.failed += 1;
                true
            }
            Outcome::Lost(_) => {
                s.lost += 1;
                true
            }
            Outcome::Cancelled => {
                s.cancelled += 1;
                true
            }
            Outcome::Skipped => {
                s.skipped += 1;
                false
            }
            Outcome::Active => {
                s.active += 1;
                false
            }
        };
        if counted {
            ended += 1;
            attempts += r.attempt().max(1);
        }
    }
    if ended > 0 {
        s.success_rate = Some(s.completed as f64 / ended as f64);
        s.mean_attempts = Some(attempts as f64 / ended as f64);
    }
    // Every attempt's own outcome for the times and durations.
    let mut durations = Vec::new();
    // Whole numbers, summed exactly (i128: no sum of i64 values overflows it).
    let mut total_ms = 0i128;
    let mut items = Vec::new();
    let mut last_success = None;
    for r in runs {
        match outcome(r, rule) {
            Outcome::Completed => {
                last_success = last_success.max(r.end());
                if let Some(ms) = r.millis() {
                    durations.push(ms as f64 / 1000.0);
                    total_ms += i128::from(ms);
                    if r.items_complete() > 0 {
                        items.push((r.items_complete(), ms));
                    }
                }
            }
            Outcome::Failed => s.last_failure = s.last_failure.max(r.end().map(R::utc)),
            Outcome::Lost(beat) => s.last_failure = s.last_failure.max(beat),
            _ => {}
        }
    }
    s.duration_p50 = percentile(&durations, 0.5);
    s.duration_p90 = percentile(&durations, 0.9);
    s.duration_p95 = percentile(&durations, 0.95);
    s.duration_max = durations.iter().copied().reduce(f64::max);
    if !durations.is_empty() {
        s.duration_mean = Some(total_ms as f64 / 1000.0 / durations.len() as f64);
    }
    s.last_success = last_success.map(R::utc);
    s.items_per_second = items_per_second(items);
    s
}

/// Items per second of completed runs, from each run's items and milliseconds:
/// their items over their seconds (runs without items or time left out).
pub(crate) fn items_per_second(runs: impl IntoIterator<Item = (i64, i64)>) -> Option<f64> {
    // Whole numbers, summed exactly (i128: no sum of i64 values overflows it).
    let (mut items, mut item_ms) = (0i128, 0i128);
    for (n, ms) in runs {
        if n > 0 && ms > 0 {
            items += i128::from(n);
            item_ms += i128::from(ms);
        }
    }
    (item_ms > 0).then(|| items as f64 * 1000.0 / item_ms as f64)
}

/// Fills `wait_p50` and `wait_p95` from `waits` (stage, task, start, seconds): per
/// task, its latest `limit` runs that have a wait.
pub(crate) fn fill_waits(
    stats: &mut [TaskStats],
    mut waits: Vec<crate::dag::WaitRow>,
    limit: Option<usize>,
) {
    waits.sort_by(|a, b| (&a.0, &a.1, b.2).cmp(&(&b.0, &b.1, a.2)));
    let mut by_task: HashMap<(&str, &str), Vec<f64>> = HashMap::new();
    for (stage, task, _, w) in &waits {
        let v = by_task.entry((stage, task)).or_default();
        if limit.is_none_or(|n| v.len() < n) {
            v.push(*w);
        }
    }
    for s in stats {
        if let Some(v) = by_task.get(&(s.stage_name.as_str(), s.task_name.as_str())) {
            s.wait_p50 = percentile(v, 0.5);
            s.wait_p95 = percentile(v, 0.95);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use chrono::TimeZone;

    fn at(sec: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(sec)
    }

    fn run(id: &str, status: Status, start: i64, secs: i64) -> RunSummary {
        RunSummary {
            stage_name: "s".into(),
            task_name: "t".into(),
            run_id: id.into(),
            status,
            start_time: Some(at(start)),
            end_time: (!status.is_active()).then(|| at(start + secs)),
            heartbeat_time: Some(at(start + secs)),
            hostname: Some("elsewhere".into()),
            process_id: Some(1),
            process_start_time: None,
            attempt: 1,
            retry_of: None,
            items_complete: 0,
        }
    }

    fn rule() -> LostRule {
        LostRule {
            now: at(100_000),
            this_host: "here".into(),
            lost_after: chrono::Duration::seconds(60),
        }
    }

    #[test]
    fn percentiles_of_known_durations_are_exact() {
        // Durations 10, 20, ..., 100 s.
        let runs: Vec<RunSummary> = (1..=10)
            .map(|i| run(&format!("r{i}"), Status::Completed, i * 1000, i * 10))
            .collect();
        let s = &task_stats(&runs, &rule())[0];
        assert_eq!(s.runs, 10);
        assert_eq!(s.completed, 10);
        assert_eq!(s.success_rate, Some(1.0));
        assert_eq!(s.duration_p50, Some(55.0));
        assert!((s.duration_p90.unwrap() - 91.0).abs() < 1e-9);
        assert!((s.duration_p95.unwrap() - 95.5).abs() < 1e-9);
        assert_eq!(s.duration_max, Some(100.0));
        assert_eq!(s.duration_mean, Some(55.0));
        assert_eq!(s.last_success, Some(at(10_000 + 100)));
    }

    #[test]
    fn a_retried_success_is_one_success_with_its_attempts() {
        let a1 = run("a1", Status::Failed, 0, 5);
        let mut a2 = run("a2", Status::Failed, 10, 5);
        a2.attempt = 2;
        a2.retry_of = Some("a1".into());
        let mut a3 = run("a3", Status::Completed, 20, 30);
        a3.attempt = 3;
        a3.retry_of = Some("a2".into());
        a3.items_complete = 300;
        let b = run("b", Status::Failed, 100, 1);
        let lost = run("c", Status::Running, 200, 1);
        let s = &task_stats(&[a3, a2, a1, b, lost], &rule())[0];
        assert_eq!((s.runs, s.logical_runs), (5, 3));
        assert_eq!((s.completed, s.failed, s.lost, s.active), (1, 1, 1, 0));
        assert_eq!(s.retried, 1);
        assert!((s.success_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.mean_attempts.unwrap() - 5.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.duration_p50, Some(30.0));
        assert_eq!(s.items_per_second, Some(10.0));
        // The lost run failed last, at its last heartbeat.
        assert_eq!(s.last_failure, Some(at(201)));
    }

    #[test]
    fn runs_in_any_order_give_the_same_statistics() {
        // Three tasks (two in one stage), their runs grouped, interleaved and
        // reversed: each task's statistics are those of its runs alone.
        let mut runs = Vec::new();
        for i in 0..30i64 {
            let mut r = run(
                &format!("r{i}"),
                Status::Completed,
                i * 100,
                10 + i * 7 % 13,
            );
            r.stage_name = (if i % 3 == 2 { "s2" } else { "s" }).into();
            r.task_name = (if i % 3 == 1 { "u" } else { "t" }).into();
            if i % 4 == 0 {
                r.status = Status::Failed;
            }
            runs.push(r);
        }
        let grouped: Vec<RunSummary> = {
            let mut v = runs.clone();
            v.sort_by(|a, b| (&a.stage_name, &a.task_name).cmp(&(&b.stage_name, &b.task_name)));
            v
        };
        let reversed: Vec<RunSummary> = runs.iter().rev().cloned().collect();
        let expected = task_stats(&grouped, &rule());
        assert_eq!(expected.len(), 3);
        assert_eq!(task_stats(&runs, &rule()), expected);
        assert_eq!(task_stats(&reversed, &rule()), expected);
        for s in &expected {
            let alone: Vec<RunSummary> = runs
                .iter()
                .filter(|r| (&*r.stage_name, &*r.task_name) == (&*s.stage_name, &*s.task_name))
                .cloned()
                .collect();
            assert_eq!(task_stats(&alone, &rule()), vec![s.clone()]);
        }
    }

    #[test]
    fn no_runs_ended_means_no_rates() {
        let mut fresh = run("r", Status::Running, 99_990, 5);
        fresh.heartbeat_time = Some(at(99_995));
        let s = &task_stats(&[fresh], &rule())[0];
        assert_eq!((s.active, s.success_rate, s.duration_p50), (1, None, None));
        assert!(task_stats(&[], &rule()).is_empty());
    }
}
