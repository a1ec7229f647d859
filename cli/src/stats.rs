//! `tasker stats`: per task, from stored history, by one core query: runs and
//! attempts, success rate, duration percentiles of successful runs, item rate,
//! last success and last failure.

use chrono::Utc;
use clap::Args;
use tasker::{StatsFilter, TaskStats};

use crate::cmd::print_json;
use crate::fmt::{self, Style, Table};
use crate::{CliResult, Failure, Global};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only tasks in this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only runs started since: an age (30d, 12h) or a date (2026-11-01, RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the latest N runs of each task.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    /// Print one JSON object per task.
    #[arg(long)]
    pub json: bool,
}

pub fn stats(g: &Global, a: &StatsArgs) -> CliResult {
    if a.limit == Some(0) {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let since = a
        .since
        .as_deref()
        .map(|s| fmt::parse_since(s, Utc::now()))
        .transpose()
        .map_err(Failure::usage)?;
    let t = g.open(false)?;
    let rows = t.task_stats(&StatsFilter {
        stage: a.stage.clone(),
        task: a.task.clone(),
        since,
        limit: a.limit,
    })?;
    if a.json {
        return print_json(&rows);
    }
    let style = Style::detect(g.color);
    if rows.is_empty() {
        println!("No runs match.");
        return Ok(());
    }
    print!("{}", render(&style, &rows));
    Ok(())
}

fn render(style: &Style, rows: &[TaskStats]) -> String {
    let mut table = Table::new(&[
        "STAGE",
        "TASK",
        "RUNS",
        "OK",
        "FAILED",
        "SUCCESS",
        "P50",
        "P90",
        "P95",
        "MAX",
        "ITEM RATE",
        "LAST SUCCESS",
        "LAST FAILURE",
        "WAIT P50",
        "WAIT P95",
    ]);
    for i in (2..11).chain(13..15) {
        table = table.align_right(i);
    }
    let secs = |v: Option<f64>| v.map(fmt::duration).unwrap_or_default();
    for s in rows {
        // Attempts of one logical run count once; say so when there were retries.
        let runs = if s.runs != s.logical_runs {
            format!("{} ({} tries)", s.logical_runs, s.runs)
        } else {
            s.runs.to_string()
        };
        table.push(vec![
            fmt::truncate(&s.stage_name, 24),
            fmt::truncate(&s.task_name, 32),
            runs,
            s.completed.to_string(),
            (s.failed + s.lost).to_string(),
            s.success_rate
                .map(|r| format!("{:.0}%", r * 100.0))
                .unwrap_or_default(),
            secs(s.duration_p50),
            secs(s.duration_p90),
            secs(s.duration_p95),
            secs(s.duration_max),
            s.items_per_second.map(fmt::rate).unwrap_or_default(),
            fmt::local_time(s.last_success),
            fmt::local_time(s.last_failure),
            secs(s.wait_p50),
            secs(s.wait_p95),
        ]);
    }
    table.render(style)
}
