//! One pass of the time-based rules (LOST, stall, too long, dead-man) over the
//! database, a backstop for FAILED runs of the last hour that their own process
//! did not alert, and the retry of deliveries that are due. Called by whatever
//! long-running process is configured to (`tasker serve`, `tasker watch`,
//! `tasker alerts run`), and by the writer thread for the FAILED alerts its
//! process claimed. Several evaluators may run at once: claims and retries go
//! through the database (see `mod.rs`), so each incident is sent once.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rules::{AlertConfig, Rule, Trigger};
use super::{deliver, next_attempt, Alert, AlertOutcome, AlertRow, FailedRun, NewAlert, LEASE};
use crate::error::Result;
use crate::model::Status;
use crate::query::{HistoryFilter, RunRow, StatsFilter};
use crate::tracker::Tracker;

/// Deliveries retried per pass at most (the rest wait for the next pass).
const RETRIES_PER_PASS: usize = 50;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Incidents claimed by this pass (new alerts).
    pub fired: usize,
    /// Deliveries that succeeded (new or retried).
    pub delivered: usize,
    /// Deliveries that failed (retried later, or given up).
    pub failed: usize,
}

impl PassReport {
    fn add(&mut self, delivered: bool) {
        if delivered {
            self.delivered += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// Evaluates the time-based rules at `now`, claims and delivers new incidents,
/// then retries the deliveries that are due.
pub fn evaluate(tracker: &Tracker, config: &AlertConfig, now: DateTime<Utc>) -> Result<PassReport> {
    let mut report = PassReport::default();
    for new in incidents(tracker, config, now)? {
        if let Some(id) = tracker.alert_claim(&new)? {
            report.fired += 1;
            report.add(send(
                tracker,
                config,
                id,
                &new.destination,
                &new.alert,
                1,
                now,
            )?);
        }
    }
    let retried = retry_due(tracker, config, now, None)?;
    report.delivered += retried.delivered;
    report.failed += retried.failed;
    Ok(report)
}

/// Retries the undelivered alerts due at `now` (`only`: just that one).
pub fn retry_due(
    tracker: &Tracker,
    config: &AlertConfig,
    now: DateTime<Utc>,
    only: Option<i64>,
) -> Result<PassReport> {
    let mut report = PassReport::default();
    let lease_until = now + lease();
    for row in tracker.alerts_due(
        now,
        lease_until,
        config.max_attempts,
        only,
        RETRIES_PER_PASS,
    )? {
        let alert: std::result::Result<Alert, _> = serde_json::from_value(row.payload.clone());
        let ok = match alert {
            Ok(alert) => send(
                tracker,
                config,
                row.id,
                &row.destination,
                &alert,
                row.attempts,
                now,
            )?,
            Err(e) => {
                record_failure(
                    tracker,
                    config,
                    &row,
                    format!("the stored alert is unreadable: {e}"),
                    now,
                )?;
                false
            }
        };
        report.add(ok);
    }
    Ok(report)
}

/// The FAILED alerts of runs that failed in this process (the writer thread's
/// part): claims each for every rule that covers it, delivers what it claimed.
/// Returns the runs not claimed because the database could not be reached.
pub(crate) fn send_failed(
    tracker: &Tracker,
    config: &AlertConfig,
    runs: Vec<FailedRun>,
    retry_later: &dyn Fn(i64, DateTime<Utc>),
) -> Vec<FailedRun> {
    let host = tracker.hostname().to_string();
    let mut runs = runs.into_iter();
    while let Some(run) = runs.next() {
        for rule in config
            .rules
            .iter()
            .filter(|r| r.trigger == Trigger::Failed && r.covers(&run.stage, &run.task))
        {
            let new = super::failed_alert(rule, &run, &host);
            let claimed = match tracker.alert_claim(&new) {
                Ok(c) => c,
                Err(e) => {
                    // The outage itself is reported once by the supervisor; this
                    // would repeat every writer turn.
                    log::debug!("tasker: the alert of a failed run waits for the database: {e}");
                    return std::iter::once(run).chain(runs).collect();
                }
            };
            let Some(id) = claimed else { continue };
            let now = Utc::now();
            match send(tracker, config, id, &new.destination, &new.alert, 1, now) {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(at) = next_attempt(now, 1, config.max_attempts) {
                        retry_later(id, at);
                    }
                }
                Err(e) => log::warn!("tasker: the outcome of alert {id} is not recorded: {e}"),
            }
        }
    }
    Vec::new()
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).expect("a minute fits")
}

/// Delivers one claimed alert and records the outcome; whether it was delivered.
fn send(
    tracker: &Tracker,
    config: &AlertConfig,
    id: i64,
    destination: &str,
    alert: &Alert,
    attempts: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let outcome = match config.destinations.get(destination) {
        None => Err(format!(
            "destination {destination:?} is no longer configured"
        )),
        Some(dest) => deliver(dest, alert),
    };
    let recorded = match outcome {
        Ok(()) => AlertOutcome::Delivered { at: Utc::now() },
        Err(error) => {
            log::warn!("tasker: alert {id} ({}) not delivered: {error}", alert.rule);
            AlertOutcome::Failed {
                error,
                retry_at: next_attempt(now, attempts, config.max_attempts),
            }
        }
    };
    let delivered = matches!(recorded, AlertOutcome::Delivered { .. });
    tracker.alert_outcome(id, &recorded)?;
    Ok(delivered)
}

fn record_failure(
    tracker: &Tracker,
    config: &AlertConfig,
    row: &AlertRow,
    error: String,
    now: DateTime<Utc>,
) -> Result<()> {
    let retry_at = next_attempt(now, row.attempts, config.max_attempts);
    tracker.alert_outcome(row.id, &AlertOutcome::Failed { error, retry_at })
}

/// The incidents of every rule at `now`, claimed or not.
fn incidents(tracker: &Tracker, config: &AlertConfig, now: DateTime<Utc>) -> Result<Vec<NewAlert>> {
    let rules: Vec<&Rule> = config.rules.iter().collect();
    let mut out = Vec::new();
    if rules.is_empty() {
        return Ok(out);
    }
    let lease_until = now + lease();
    let host = tracker.hostname().to_string();
    let needs_runs = rules
        .iter()
        .any(|r| !matches!(r.trigger, Trigger::DeadMan { .. }));
    let active = if needs_runs {
        tracker.active_runs()?
    } else {
        Vec::new()
    };
    let needs_subtasks = rules
        .iter()
        .any(|r| matches!(r.trigger, Trigger::Stall { .. }));
    let subtasks = if needs_subtasks {
        let running: Vec<RunRow> = active
            .iter()
            .filter(|r| !r.lost && matches!(r.status, Status::Started | Status::Running))
            .cloned()
            .collect();
        tracker.subtasks_of(&running)?
    } else {
        Default::default()
    };
    let needs_p95 = rules.iter().any(|r| {
        matches!(
            r.trigger,
            Trigger::TooLong {
                p95_factor: Some(_),
                ..
            }
        )
    });
    let stats = if needs_p95 && !active.is_empty() {
        tracker.task_stats(&StatsFilter::default())?
    } else {
        Vec::new()
    };
    let mut push = |rule: &Rule, key: String, alert: Alert| {
        out.push(NewAlert {
            rule: rule.name.clone(),
            incident_key: key,
            destination: rule.to.clone(),
            alert,
            lease_until,
        })
    };
    let base = |rule: &Rule, run: &RunRow, summary: String| Alert {
        rule: rule.name.clone(),
        kind: rule.trigger.kind().into(),
        summary,
        stage: run.stage_name.clone(),
        task: run.task_name.clone(),
        run_id: run.run_id.clone(),
        subtask_number: None,
        host: run.hostname.clone(),
        message: None,
        fired_at: now,
        details: serde_json::Value::Null,
    };
    let recently_failed = if rules.iter().any(|r| r.trigger == Trigger::Failed) {
        recently_failed(tracker, now)?
    } else {
        Vec::new()
    };
    for rule in &rules {
        match &rule.trigger {
            Trigger::Failed => {
                // The failing process sends these itself; an evaluator sends what it
                // could not (it died first, or a burst overflowed its queue). The
                // incident key is the same, so a run is alerted once either way.
                for (run, host) in recently_failed
                    .iter()
                    .filter(|(r, _)| rule.covers(&r.stage, &r.task))
                {
                    let new = super::failed_alert(rule, run, host);
                    push(rule, new.incident_key, new.alert);
                }
            }
            Trigger::Lost => {
                for run in active
                    .iter()
                    .filter(|r| r.lost && rule.covers(&r.stage_name, &r.task_name))
                {
                    let Some(id) = &run.run_id else { continue };
                    let mut a = base(
                        rule,
                        run,
                        format!(
                            "tasker: {}/{} LOST (on {}, no sign of life since {})",
                            run.stage_name,
                            run.task_name,
                            run.hostname.as_deref().unwrap_or("an unknown host"),
                            shown(run.heartbeat_time.or(run.last_update)),
                        ),
                    );
                    a.details = serde_json::json!({
                        "status": run.status,
                        "process_id": run.process_id,
                        "last_heartbeat": run.heartbeat_time.or(run.last_update),
                    });
                    push(rule, id.clone(), a);
                }
            }
            Trigger::Stall { after } => {
                let after = chrono::Duration::from_std(*after).unwrap_or(chrono::Duration::MAX);
                for run in active
                    .iter()
                    .filter(|r| !r.lost && rule.covers(&r.stage_name, &r.task_name))
                {
                    let Some(id) = &run.run_id else { continue };
                    for sub in subtasks.get(id).into_iter().flatten() {
                        let Some(last) = sub.last_update.or(sub.start_time) else {
                            continue;
                        };
                        let running = matches!(sub.status, Status::Started | Status::Running);
                        if !running || now - last < after {
                            continue;
                        }
                        let quiet = (now - last).num_seconds();
                        let mut a = base(
                            rule,
                            run,
                            format!(
                                "tasker: {}/{} subtask {} ({}) has not progressed for {} min",
                                run.stage_name,
                                run.task_name,
                                sub.subtask_number,
                                sub.subtask_name,
                                quiet / 60
                            ),
                        );
                        a.subtask_number = Some(sub.subtask_number);
                        a.message = sub.progress_message.clone();
                        a.details = serde_json::json!({
                            "subtask_name": sub.subtask_name,
                            "last_progress": last,
                            "seconds_without_progress": quiet,
                            "items_complete": sub.items_complete,
                            "items_total": sub.items_total,
                        });
                        // A subtask that moves again and stalls again is a new incident.
                        let key =
                            format!("{id}#{}@{}", sub.subtask_number, last.timestamp_micros());
                        push(rule, key, a);
                    }
                }
            }
            Trigger::TooLong { p95_factor, max } => {
                for run in active
                    .iter()
                    .filter(|r| !r.lost && rule.covers(&r.stage_name, &r.task_name))
                {
                    let (Some(id), Some(start)) = (&run.run_id, run.start_time) else {
                        continue;
                    };
                    let p95 = stats
                        .iter()
                        .find(|s| s.stage_name == run.stage_name && s.task_name == run.task_name)
                        .and_then(|s| s.duration_p95);
                    let from_history = p95.zip(*p95_factor).map(|(p, k)| p * k);
                    let fixed = max.map(|m| m.as_secs_f64());
                    let limit = match (from_history, fixed) {
                        (Some(a), Some(b)) => a.min(b),
                        (a, b) => match a.or(b) {
                            Some(l) => l,
                            None => continue, // no history yet and no fixed limit
                        },
                    };
                    let ran = (now - start).num_milliseconds() as f64 / 1000.0;
                    if ran <= limit {
                        continue;
                    }
                    let mut a = base(
                        rule,
                        run,
                        format!(
                            "tasker: {}/{} has run {:.0} min, longer than its limit of {:.0} min",
                            run.stage_name,
                            run.task_name,
                            ran / 60.0,
                            limit / 60.0
                        ),
                    );
                    a.details = serde_json::json!({
                        "duration_seconds": ran,
                        "limit_seconds": limit,
                        "p95_seconds": p95,
                        "p95_factor": p95_factor,
                    });
                    push(rule, id.clone(), a);
                }
            }
            Trigger::DeadMan { after } => {
                let (Some(stage), Some(task)) = (&rule.stage, &rule.task) else {
                    continue;
                };
                let filter = StatsFilter {
                    stage: Some(stage.clone()),
                    task: Some(task.clone()),
                    ..StatsFilter::default()
                };
                let last = tracker
                    .task_stats(&filter)?
                    .into_iter()
                    .find_map(|s| s.last_success);
                let after = chrono::Duration::from_std(*after).unwrap_or(chrono::Duration::MAX);
                if last.is_some_and(|t| now - t < after) {
                    continue;
                }
                let hours = after.num_minutes() as f64 / 60.0;
                let alert = Alert {
                    rule: rule.name.clone(),
                    kind: rule.trigger.kind().into(),
                    summary: format!(
                        "tasker: {stage}/{task} has not succeeded for {hours} h (last success: {})",
                        last.map_or("never".into(), |t| t.to_rfc3339())
                    ),
                    stage: stage.clone(),
                    task: task.clone(),
                    run_id: None,
                    subtask_number: None,
                    host: Some(host.clone()),
                    message: None,
                    fired_at: now,
                    details: serde_json::json!({ "last_success": last, "hours": hours }),
                };
                // One alert per silence: the next success starts a new one.
                let since = last.map_or("never".into(), |t| t.timestamp_micros().to_string());
                push(rule, format!("{stage}/{task}@{since}"), alert);
            }
        }
    }
    Ok(out)
}

/// How long after its end an evaluator still alerts a FAILED run nobody alerted.
const FAILED_BACKSTOP: chrono::Duration = chrono::Duration::hours(1);

/// FAILED runs that ended within `FAILED_BACKSTOP` (among those started in the
/// last week), with the host each ran on.
fn recently_failed(tracker: &Tracker, now: DateTime<Utc>) -> Result<Vec<(FailedRun, String)>> {
    let filter = HistoryFilter {
        status: Some(Status::Failed),
        since: Some(now - chrono::Duration::days(7)),
        limit: Some(1000),
        ..HistoryFilter::default()
    };
    Ok(tracker
        .history(&filter)?
        .into_iter()
        .filter(|r| r.end_time.is_some_and(|end| now - end <= FAILED_BACKSTOP))
        .filter_map(|r| {
            let run = FailedRun {
                run_id: r.run_id?,
                stage: r.stage_name,
                task: r.task_name,
                message: r.error_message,
                at: r.end_time?,
            };
            Some((run, r.hostname.unwrap_or_default()))
        })
        .collect())
}

fn shown(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "its start".into(), |t| t.to_rfc3339())
}
