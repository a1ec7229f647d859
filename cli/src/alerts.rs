//! `tasker alerts`: the alerts recorded (fired, delivered, pending, given up),
//! and `tasker alerts run`: one pass of the time-based rules (LOST, stall, too
//! long, dead-man) with the retry of due deliveries, for cron or a systemd
//! timer, or every INTERVAL with `--loop`. Webhook URLs and tokens are never
//! printed: only destination names and errors already stripped of them.

use chrono::Utc;
use clap::{Args, Subcommand};
use tasker::{AlertFilter, AlertRow};

use crate::cmd::print_json;
use crate::fmt::{self, Style, Table};
use crate::{CliResult, Failure, Global};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub action: Option<AlertsAction>,
    /// Only alerts of this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only alerts not delivered (pending or given up).
    #[arg(long)]
    pub undelivered: bool,
    /// At most N alerts, newest first.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    /// Print the alerts as JSON (with the payload sent).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Evaluate the time-based rules once and retry due deliveries (for cron or systemd).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Evaluate every INTERVAL until stopped: seconds (60) or a duration (30s, 5m).
    #[arg(long = "loop", value_name = "INTERVAL")]
    pub every: Option<String>,
    /// Print what each pass did as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn alerts(g: &Global, a: &AlertsArgs) -> CliResult {
    if let Some(AlertsAction::Run(r)) = &a.action {
        return run(g, r);
    }
    if a.limit == 0 {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let t = g.open(false)?;
    let rows = t.alerts(&AlertFilter {
        rule: a.rule.clone(),
        run_id: None,
        undelivered: a.undelivered,
        limit: Some(a.limit),
    })?;
    if a.json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No alerts recorded.");
    } else {
        print!("{}", render(&Style::detect(g.color), &rows));
    }
    if t.config().alerts.is_none() {
        println!("No alert rules are configured (alerts: in .tasker.yml or the user config).");
    }
    Ok(())
}

fn run(g: &Global, a: &RunArgs) -> CliResult {
    let every = a
        .every
        .as_deref()
        .map(fmt::parse_interval)
        .transpose()
        .map_err(|e| Failure::usage(format!("--loop: {e}")))?;
    let t = g.open(true)?;
    loop {
        let pass = t.evaluate_alerts(Utc::now())?;
        if a.json {
            print_json(&pass)?;
        } else {
            println!(
                "alerts: {} fired, {} delivered, {} delivery failure(s)",
                pass.fired, pass.delivered, pass.failed
            );
        }
        let Some(secs) = every else {
            // For cron: a delivery that failed (it is retried next time) is worth a status.
            return if pass.failed > 0 {
                Err(Failure::new(
                    "some alerts were not delivered: see `tasker alerts --undelivered`",
                ))
            } else {
                Ok(())
            };
        };
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
}

fn render(style: &Style, rows: &[AlertRow]) -> String {
    let mut table = Table::new(&[
        "ID",
        "FIRED",
        "RULE",
        "KIND",
        "STAGE",
        "TASK",
        "RUN",
        "TO",
        "STATE",
        "TRIES",
        "LAST ERROR",
    ]);
    table = table.align_right(0).align_right(9);
    for r in rows {
        let state = match r.state() {
            "delivered" => style.paint("32", "delivered"),
            "pending" => style.paint("33", "pending"),
            other => style.paint("31", other),
        };
        table.push(vec![
            r.id.to_string(),
            fmt::local_time(Some(r.fired_at)),
            fmt::truncate(&r.rule, 24),
            r.kind.clone(),
            fmt::truncate(&r.stage, 24),
            fmt::truncate(&r.task, 32),
            r.run_id
                .as_deref()
                .map(|id| fmt::truncate(id, 13))
                .unwrap_or_default(),
            fmt::truncate(&r.destination, 16),
            state,
            r.attempts.to_string(),
            fmt::truncate(r.last_error.as_deref().unwrap_or(""), 60),
        ]);
    }
    table.render(style)
}
