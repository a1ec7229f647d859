//! The terminal commands: status, watch, history, show, export, reap, purge.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration as StdDuration;

use chrono::Utc;
use clap::{Args, ValueEnum};
use serde::Serialize;
use tasker::{
    Basis, Direction, EventRow, HistoryFilter, IoRow, RunRow, RunSelector, Sample, Status,
    StatusFilter, SubtaskRow, Tracker, TransitionInfo,
};

use crate::csv;
use crate::fmt::{self, Style, Table};
use crate::{CliResult, Failure, Global};

// ---------------------------------------------------------------- shared views

// RunView, run_views, StatusSel, run_detail, ...: the core's (tasker::views), which the
// dashboard server reads too.
pub use tasker::views::{last_event_id, run_detail, run_views, RunView, StatusSel};

fn host_pid(r: &RunRow) -> String {
    match (&r.hostname, r.process_id) {
        (Some(h), Some(p)) => format!("{}:{p}", fmt::truncate(h, 24)),
        (Some(h), None) => fmt::truncate(h, 24),
        _ => "-".into(),
    }
}

pub fn print_json<T: Serialize + ?Sized>(v: &T) -> CliResult {
    // Buffered: stdout alone writes each line of the pretty output by itself (a
    // system call per line: thousands for `tasker stats --json`).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Short ids (unique prefixes) of these runs, by full id.
fn short_ids(t: &Tracker, rows: &[&RunRow]) -> CliResult<HashMap<String, String>> {
    Ok(tasker::run_ids::short_ids(
        t,
        rows.iter().filter_map(|r| r.run_id.as_deref()),
    )?)
}

/// A run's id as printed for people: its short id when known.
fn id_text<'a>(shorts: &'a HashMap<String, String>, r: &'a RunRow) -> &'a str {
    match r.run_id.as_deref() {
        Some(id) => shorts.get(id).map(String::as_str).unwrap_or(id),
        None => "-",
    }
}

fn lost_footer(style: &Style, lost: &[&RunRow], shorts: &HashMap<String, String>) -> String {
    if lost.is_empty() {
        return String::new();
    }
    let mut s = style.paint(
        "1;31",
        &format!(
            "{} lost run{} (process gone or heartbeat too old):",
            lost.len(),
            if lost.len() == 1 { "" } else { "s" }
        ),
    );
    s.push('\n');
    for r in lost {
        s.push_str(&format!(
            "  {}/{} run {} on {} (last heartbeat {})\n",
            fmt::truncate(&r.stage_name, 30),
            fmt::truncate(&r.task_name, 40),
            id_text(shorts, r),
            host_pid(r),
            fmt::local_time(r.heartbeat_time.or(r.last_update)),
        ));
    }
    s.push_str("  `tasker reap` marks them FAILED.\n");
    s
}

// ---------------------------------------------------------------- status

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only these statuses (comma separated), or `active`, or `lost`.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Print JSON (one object per task: its latest run, current subtask and ETA).
    #[arg(long)]
    pub json: bool,
}

pub fn status(g: &Global, a: &StatusArgs) -> CliResult {
    let sel = StatusSel::parse(&a.status).map_err(Failure::usage)?;
    let t = g.open(false)?;
    let rows = t.task_status(&StatusFilter {
        stage: a.stage.clone(),
        task: a.task.clone(),
        status: sel.single(),
        limit: None,
    })?;
    let rows: Vec<RunRow> = rows.into_iter().filter(|r| sel.keeps(r)).collect();
    let views = run_views(&t, rows, false)?;
    if a.json {
        return print_json(&views);
    }
    let style = Style::detect(g.color);
    let width = fmt::term_width();
    let named: Vec<&RunRow> = views
        .iter()
        .map(|v| &v.run)
        .filter(|r| r.lost || r.status == Status::Failed)
        .collect();
    let shorts = short_ids(&t, &named)?;
    print!(
        "{}",
        fmt::fit_lines(&render_status(&t, &style, &views, width, &shorts), width)
    );
    Ok(())
}

/// Whether output this wide (None: unlimited) has room for full bars and intervals.
fn roomy(width: Option<usize>) -> bool {
    width.is_none_or(|w| w >= 140)
}

fn render_status(
    t: &Tracker,
    style: &Style,
    views: &[RunView],
    width: Option<usize>,
    shorts: &HashMap<String, String>,
) -> String {
    let bar = if roomy(width) { 20 } else { 10 };
    let mut out = format!(
        "{} {}  ({} from {})\n\n",
        style.bold("tasker"),
        fmt::local_time(Some(Utc::now())),
        t.config().location.describe(),
        t.config().source
    );
    if views.is_empty() {
        out.push_str("No tasks match.\n");
        return out;
    }
    let stages = tasker::serve::summarize(views);
    if stages.len() > 1 {
        let any_lost = stages.iter().any(|s| s.lost > 0);
        let header: &[&str] = if any_lost {
            &["STAGE", "STATUS", "TASKS DONE", "", "LOST"]
        } else {
            &["STAGE", "STATUS", "TASKS DONE", ""]
        };
        let mut st = Table::new(header).align_right(2).shrink(0, 10);
        for s in &stages {
            let status: Option<Status> = s.status.parse().ok();
            st.push(vec![
                fmt::truncate(&s.stage_name, 24),
                match status {
                    Some(x) => style.status(x, false),
                    None => style.paint("36", &s.status),
                },
                format!("{}/{}", s.tasks_done, s.tasks_total),
                fmt::bar(style, Some(s.percent_complete), bar),
                if s.lost > 0 {
                    style.paint("1;31", &s.lost.to_string())
                } else {
                    String::new()
                },
            ]);
        }
        out.push_str(&st.render_fit(style, width));
        out.push('\n');
    }
    // In a narrow terminal names are cut first, then the host, the current subtask,
    // its items and the subtask count are left out.
    let mut table = Table::new(&[
        "STAGE", "TASK", "STATUS", "PROGRESS", "SUBTASKS", "CURRENT", "ITEMS", "ELAPSED", "ETA",
        "HOST:PID",
    ])
    .align_right(4)
    .align_right(6)
    .align_right(7)
    .shrink(0, 10)
    .shrink(1, 16)
    .shrink(5, 12)
    .shrink(9, 16)
    .drop_rank(9, 0)
    .drop_rank(5, 1)
    .drop_rank(6, 2)
    .drop_rank(4, 3);
    let mut last_stage = None;
    for v in views {
        let r = &v.run;
        let stage = if last_stage == Some(&r.stage_name) {
            String::new()
        } else {
            fmt::truncate(&r.stage_name, 24)
        };
        last_stage = Some(&r.stage_name);
        let subtasks = match (r.run_id.is_some(), r.total_subtasks) {
            (false, _) => String::new(),
            (true, Some(n)) => format!("{}/{n}", r.subtasks_completed),
            (true, None) => r.subtasks_completed.to_string(),
        };
        let (current, items) = match &v.current {
            Some(c) => (
                format!(
                    "{}. {}",
                    c.subtask_number,
                    fmt::truncate(&c.subtask_name, 28)
                ),
                fmt::items(c),
            ),
            None => (String::new(), String::new()),
        };
        table.push(vec![
            stage,
            fmt::truncate(&r.task_name, 32),
            style.status(r.status, r.lost),
            if r.run_id.is_some() {
                fmt::bar(style, r.overall_percent_complete, bar)
            } else {
                String::new()
            },
            subtasks,
            current,
            items,
            r.duration_seconds.map(fmt::duration).unwrap_or_default(),
            r.eta_seconds.map(fmt::duration).unwrap_or_default(),
            if r.run_id.is_some() {
                host_pid(r)
            } else {
                String::new()
            },
        ]);
    }
    out.push_str(&table.render_fit(style, width));
    let lost: Vec<&RunRow> = views.iter().map(|v| &v.run).filter(|r| r.lost).collect();
    if !lost.is_empty() {
        out.push('\n');
        out.push_str(&lost_footer(style, &lost, shorts));
    }
    let failed: Vec<&RunRow> = views
        .iter()
        .map(|v| &v.run)
        .filter(|r| r.status == Status::Failed)
        .collect();
    if !failed.is_empty() {
        out.push('\n');
        for r in failed {
            // The id before the message: a narrow terminal cuts the end of the line.
            out.push_str(&format!(
                "{} {}/{} (tasker show {}): {}\n",
                style.paint("31", "failed"),
                fmt::truncate(&r.stage_name, 30),
                fmt::truncate(&r.task_name, 40),
                id_text(shorts, r),
                fmt::truncate(r.error_message.as_deref().unwrap_or("no message"), 100),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------- watch

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between refreshes: seconds (5, 0.5) or a duration (5s, 500ms, 1m).
    #[arg(long, default_value = "1", value_name = "SECONDS")]
    pub interval: String,
    /// Leave when no run is active; the exit code is 1 if a run seen active failed.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Only this stage.
    #[arg(long)]
    pub stage: Option<String>,
}

pub fn watch(g: &Global, a: &WatchArgs) -> CliResult {
    let interval =
        fmt::parse_interval(&a.interval).map_err(|e| Failure::usage(format!("--interval: {e}")))?;
    let t = g.open(false)?;
    let style = Style::detect(g.color);
    let tty = {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal()
    };
    let mut seen: HashMap<String, (String, String)> = HashMap::new();
    let mut finished: BTreeMap<String, RunRow> = BTreeMap::new();
    let mut last_event = last_event_id(&t)?;
    let mut recent: Vec<EventRow> = Vec::new();
    let retention = tasker::retention::start_thread(t.clone(), tasker::retention::EVERY);
    // Configured time-based alert rules are evaluated while the view is open.
    let _alerts = tasker::alerts::start_evaluator(t.clone(), tasker::alerts::EVERY);
    loop {
        let active: Vec<RunRow> = t
            .active_runs()?
            .into_iter()
            .filter(|r| a.stage.as_ref().is_none_or(|s| *s == r.stage_name))
            .collect();
        let views = run_views(&t, active, true)?;
        let ids: Vec<String> = views.iter().filter_map(|v| v.run.run_id.clone()).collect();
        for v in &views {
            if let Some(id) = &v.run.run_id {
                seen.insert(
                    id.clone(),
                    (v.run.stage_name.clone(), v.run.task_name.clone()),
                );
            }
        }
        // Runs that left the active set: read how they ended.
        let gone: Vec<String> = seen
            .keys()
            .filter(|id| !ids.contains(id) && !finished.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Ok(r) = t.run(&id) {
                finished.insert(id, r);
            } else {
                seen.remove(&id);
            }
        }
        let events = t.events_after(last_event, None, 1000)?;
        if let Some(e) = events.last() {
            last_event = e.event_id;
        }
        recent.extend(events);
        let keep_from = recent.len().saturating_sub(8);
        recent.drain(..keep_from);
        let lost: Vec<&RunRow> = views.iter().map(|v| &v.run).filter(|r| r.lost).collect();
        let shorts = short_ids(&t, &lost)?;
        // Read each frame: the terminal may have been resized.
        let width = fmt::term_width();
        let mut frame = render_watch(&t, &style, &views, &finished, &recent, width, &shorts);
        if let Some(r) = tasker::retention::lock(&retention).as_ref() {
            frame.push_str(&style.dim(&r.describe()));
            frame.push('\n');
        }
        let frame = fmt::fit_lines(&frame, width);
        let mut out = std::io::stdout().lock();
        if tty {
            // Redraw in place (no flicker): home, each line cleared to its end, then the rest.
            let body: String = frame.lines().map(|l| format!("{l}\x1b[K\n")).collect();
            write!(out, "\x1b[H{body}\x1b[J")?;
        } else {
            writeln!(out, "{frame}")?;
        }
        out.flush()?;
        drop(out);
        if a.exit_when_done && views.is_empty() {
            let bad = finished
                .values()
                .filter(|r| matches!(r.status, Status::Failed | Status::Cancelled))
                .count();
            return if bad > 0 {
                Err(Failure {
                    message: format!("{bad} run(s) did not complete"),
                    code: 1,
                })
            } else {
                Ok(())
            };
        }
        std::thread::sleep(StdDuration::from_secs_f64(interval));
    }
}

fn render_watch(
    t: &Tracker,
    style: &Style,
    views: &[RunView],
    finished: &BTreeMap<String, RunRow>,
    recent: &[EventRow],
    width: Option<usize>,
    shorts: &HashMap<String, String>,
) -> String {
    let now = Utc::now();
    let bar = if roomy(width) { 30 } else { 10 };
    let mut out = format!(
        "{}  {}  {}  {} active\n\n",
        style.bold("tasker watch"),
        fmt::local_time(Some(now)),
        t.config().location.describe(),
        views.len()
    );
    if views.is_empty() {
        out.push_str("No active runs.\n");
    }
    for v in views {
        let r = &v.run;
        // A lost run's clock stopped at its last heartbeat and it has no ETA.
        let rest = format!(
            "  {}  {}  {}{}{}",
            style.status(r.status, r.lost),
            fmt::bar(style, r.overall_percent_complete, bar),
            if r.lost { "stopped after " } else { "elapsed " },
            r.duration_seconds.map(fmt::duration).unwrap_or_default(),
            Some(fmt::run_eta_text(r))
                .filter(|e| !e.is_empty() && !r.lost)
                .map(|e| format!("  ETA {e}"))
                .unwrap_or_default(),
        );
        let host = format!("  {}", style.dim(&host_pid(r)));
        // Names get what the figures leave (the host goes first in a narrow terminal).
        let (names_room, host) = match width {
            Some(w) if w < fmt::visible_width(&rest) + fmt::visible_width(&host) + 40 => (
                w.saturating_sub(fmt::visible_width(&rest) + 3),
                String::new(),
            ),
            _ => (71, host),
        };
        let task_room = names_room.saturating_sub(names_room * 2 / 5).max(8);
        let stage_room = names_room.saturating_sub(task_room + 1).max(6);
        out.push_str(&format!(
            "{} {}/{}{rest}{host}\n",
            style.bold("▸"),
            style.bold(&fmt::truncate(&r.stage_name, stage_room.min(30))),
            style.bold(&fmt::truncate(&r.task_name, task_room.min(40))),
        ));
        if let Some(m) = r
            .overall_progress_message
            .as_deref()
            .filter(|m| !m.is_empty())
        {
            out.push_str(&format!("    {}\n", style.dim(&fmt::truncate(m, 100))));
        }
        let subs = v.subtasks.as_deref().unwrap_or_default();
        let mut table = Table::new(&["", "SUBTASK", "STATUS", "PROGRESS", "ITEMS", "RATE", "ETA"])
            .align_right(0)
            .align_right(4)
            .shrink(1, 12)
            .drop_rank(4, 0)
            .drop_rank(5, 1);
        for s in subs.iter().filter(|s| s.status.is_active()) {
            table.push(vec![
                format!("    {}.", s.subtask_number),
                fmt::truncate(&s.subtask_name, 36),
                style.status(s.status, false),
                fmt::bar(style, s.percent_complete, bar),
                fmt::items(s),
                // None for a lost run's subtasks (nothing is coming): no rate, no ETA.
                s.rate_per_second.map(fmt::rate).unwrap_or_default(),
                fmt::subtask_eta_text(s),
            ]);
        }
        if !table.is_empty() {
            out.push_str(&table.render_fit(style, width));
        }
        let done = subs.iter().filter(|s| s.status.is_terminal()).count();
        if done > 0 {
            out.push_str(&format!(
                "    {}\n",
                style.dim(&format!("{done} subtask(s) finished"))
            ));
        }
        out.push('\n');
    }
    if !finished.is_empty() {
        out.push_str(&style.bold("Finished while watching\n"));
        for r in finished.values() {
            out.push_str(&format!(
                "  {}/{}  {}  {}{}\n",
                fmt::truncate(&r.stage_name, 30),
                fmt::truncate(&r.task_name, 40),
                style.status(r.status, r.lost),
                r.duration_seconds.map(fmt::duration).unwrap_or_default(),
                r.error_message
                    .as_deref()
                    .map(|m| format!("  {}", fmt::truncate(m, 80)))
                    .unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    let lost: Vec<&RunRow> = views.iter().map(|v| &v.run).filter(|r| r.lost).collect();
    out.push_str(&lost_footer(style, &lost, shorts));
    if !recent.is_empty() {
        out.push_str(&style.bold("Recent events\n"));
        for e in recent {
            out.push_str(&format!("  {}\n", event_line(style, e)));
        }
    }
    out
}

fn event_line(style: &Style, e: &EventRow) -> String {
    format!(
        "{}  {}/{}{}  {} → {}{}",
        fmt::local_time(Some(e.time)),
        fmt::truncate(&e.stage_name, 30),
        fmt::truncate(&e.task_name, 40),
        e.subtask_number
            .map(|n| format!(" #{n}"))
            .unwrap_or_default(),
        e.old_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        style.status(e.new_status, false),
        e.message
            .as_deref()
            .map(|m| format!("  {}", fmt::truncate(m, 80)))
            .unwrap_or_default()
    )
}

// ---------------------------------------------------------------- history

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only runs of tasks in this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only runs of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only these statuses (comma separated), or `active`, or `lost`.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only runs on this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only runs started since: an age (2d, 12h) or a date (2026-11-01, RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many runs.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    /// Print the runs as JSON (full ids, every field).
    #[arg(long)]
    pub json: bool,
}

/// `tasker::views::history_rows` with the command line's arguments: a bad status or
/// `--since` is a usage error.
pub fn history_rows(
    t: &Tracker,
    stage: &Option<String>,
    task: &Option<String>,
    status: &[String],
    host: &Option<String>,
    since: &Option<String>,
    limit: Option<usize>,
) -> CliResult<Vec<RunRow>> {
    let sel = StatusSel::parse(status).map_err(Failure::usage)?;
    let since = since
        .as_deref()
        .map(|s| fmt::parse_since(s, Utc::now()))
        .transpose()
        .map_err(Failure::usage)?;
    Ok(tasker::views::history_rows(
        t, stage, task, &sel, host, since, limit,
    )?)
}

pub fn history(g: &Global, a: &HistoryArgs) -> CliResult {
    if a.limit == 0 {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let t = g.open(false)?;
    let rows = history_rows(
        &t,
        &a.stage,
        &a.task,
        &a.status,
        &a.host,
        &a.since,
        Some(a.limit),
    )?;
    if a.json {
        return print_json(&rows);
    }
    let style = Style::detect(g.color);
    if rows.is_empty() {
        println!("No runs match.");
        return Ok(());
    }
    let shorts = short_ids(&t, &rows.iter().collect::<Vec<_>>())?;
    // In a narrow terminal names are cut first, then the host, progress and stage go.
    let mut table = Table::new(&[
        "STARTED", "STAGE", "TASK", "STATUS", "DURATION", "PROGRESS", "HOST:PID", "RUN",
    ])
    .align_right(4)
    .shrink(1, 10)
    .shrink(2, 16)
    .shrink(6, 16)
    .drop_rank(6, 0)
    .drop_rank(5, 1)
    .drop_rank(1, 2);
    for r in &rows {
        table.push(vec![
            fmt::local_time(r.start_time),
            fmt::truncate(&r.stage_name, 24),
            fmt::truncate(&r.task_name, 32),
            // A retry says which attempt of its logical run it is.
            match r.attempt {
                Some(n) if n > 1 => format!("{} (try {n})", style.status(r.status, r.lost)),
                _ => style.status(r.status, r.lost),
            },
            r.duration_seconds.map(fmt::duration).unwrap_or_default(),
            fmt::bar(&style, r.overall_percent_complete, 10),
            host_pid(r),
            id_text(&shorts, r).to_string(),
        ]);
    }
    let width = fmt::term_width();
    print!(
        "{}",
        fmt::fit_lines(&table.render_fit(&style, width), width)
    );
    if rows.len() == a.limit {
        println!(
            "{}",
            style.dim(&format!(
                "(the newest {} runs; --limit shows more)",
                a.limit
            ))
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- show

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id, or any unique start of it (the short ids `tasker history` prints).
    #[arg(required_unless_present = "last", conflicts_with = "last")]
    pub run: Option<String>,
    /// The newest run instead: of all, of a stage (STAGE), or of a task (STAGE/TASK, or
    /// a task name found in one stage only).
    #[arg(long, value_name = "STAGE/TASK", num_args = 0..=1, default_missing_value = "")]
    pub last: Option<String>,
    /// Print the run, its subtasks, events, inputs, outputs and samples as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print every resource sample of the run's process (CPU, memory, I/O).
    #[arg(long, conflicts_with = "json")]
    pub samples: bool,
    /// The items of its subtasks that failed or were skipped, and why.
    #[arg(long, conflicts_with = "samples")]
    pub failed_items: bool,
}

/// A run id as given on the command line: the id, a unique prefix (ambiguous:
/// a usage error listing the candidates), else a "not found" failure.
pub fn resolve_run(t: &Tracker, given: &str) -> CliResult<String> {
    tasker::run_ids::resolve(t, given).map_err(|e| match e.kind() {
        tasker::ErrorKind::InvalidArgument => Failure::usage(e.to_string()),
        _ => e.into(),
    })
}

/// The newest run of everything, of a stage, or of a task (`show --last`).
fn last_run(t: &Tracker, which: &str) -> CliResult<String> {
    let which = which.trim();
    let newest = |stage: Option<&str>, task: Option<&str>| -> CliResult<Option<RunRow>> {
        Ok(t.history(&HistoryFilter {
            stage: stage.map(str::to_string),
            task: task.map(str::to_string),
            limit: Some(1),
            ..HistoryFilter::default()
        })?
        .into_iter()
        .next())
    };
    let mut tries: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    if which.is_empty() {
        tries.push((None, None));
    } else {
        // Names may hold a slash: try each split, then a stage, then a task name.
        for (i, _) in which.match_indices('/') {
            tries.push((Some(&which[..i]), Some(&which[i + 1..])));
        }
        tries.push((Some(which), None));
    }
    for (stage, task) in tries {
        if let Some(r) = newest(stage, task)? {
            return Ok(r.run_id.unwrap_or_default());
        }
    }
    if !which.is_empty() && !which.contains('/') {
        let stages: Vec<String> = t
            .registered_tasks(None, Some(which))?
            .into_iter()
            .map(|x| x.stage_name)
            .collect();
        match &stages[..] {
            [stage] => {
                if let Some(r) = newest(Some(stage), Some(which))? {
                    return Ok(r.run_id.unwrap_or_default());
                }
            }
            [] => {}
            _ => {
                return Err(Failure::usage(format!(
                    "task {which:?} is in several stages ({}): give STAGE/TASK",
                    stages.join(", ")
                )))
            }
        }
    }
    Err(Failure::new(if which.is_empty() {
        "no runs yet".to_string()
    } else {
        format!("no runs of {which:?} (give STAGE, STAGE/TASK or a task name)")
    }))
}

pub fn show(g: &Global, a: &ShowArgs) -> CliResult {
    let t = g.open(false)?;
    let id = match (&a.last, &a.run) {
        (Some(which), _) => last_run(&t, which)?,
        (None, Some(given)) => resolve_run(&t, given)?,
        (None, None) => return Err(Failure::usage("give a run id or --last")),
    };
    if a.failed_items {
        let style = Style::detect(g.color);
        return crate::logs::failed_items(&t, &style, &id, a.json);
    }
    let d = run_detail(&t, &id)?;
    if a.json {
        return print_json(&d);
    }
    let style = Style::detect(g.color);
    if a.samples {
        print!("{}", render_samples(&style, &d.samples));
        return Ok(());
    }
    let r = &d.run;
    let mut out = String::new();
    let mut field = |k: &str, v: String| {
        if !v.is_empty() && v != "-" {
            out.push_str(&format!("{:<16} {}\n", style.bold(&format!("{k}:")), v));
        }
    };
    field("run", r.run_id.clone().unwrap_or_default());
    field("stage", fmt::clean(&r.stage_name));
    field("task", fmt::clean(&r.task_name));
    field("status", style.status(r.status, r.lost));
    field(
        "attempt",
        match (r.attempt, &r.retry_of) {
            (Some(n), Some(prev)) if n > 1 => format!("{n} (retries {prev})"),
            (Some(n), _) if n > 1 => n.to_string(),
            _ => String::new(),
        },
    );
    field("progress", fmt::bar(&style, r.overall_percent_complete, 30));
    field(
        "subtasks",
        match r.total_subtasks {
            Some(n) => format!("{} of {n} done", r.subtasks_completed),
            None => format!("{} done", r.subtasks_completed),
        },
    );
    field("started", fmt::local_time(r.start_time));
    field("ended", fmt::local_time(r.end_time));
    field(
        "duration",
        match r.duration_seconds.map(fmt::duration) {
            Some(d) if r.lost => format!("{d} (stopped at its last heartbeat)"),
            d => d.unwrap_or_default(),
        },
    );
    field(
        "eta",
        match (fmt::run_eta_text(r), r.eta_basis) {
            (e, Some(b)) if !e.is_empty() => format!("{e}, from {}", basis_text(b)),
            (e, _) => e,
        },
    );
    field("last update", fmt::local_time(r.last_update));
    field("heartbeat", fmt::local_time(r.heartbeat_time));
    field(
        "host",
        r.hostname.as_deref().map(fmt::clean).unwrap_or_default(),
    );
    field(
        "pid",
        r.process_id.map(|p| p.to_string()).unwrap_or_default(),
    );
    field(
        "parent pid",
        r.parent_pid.map(|p| p.to_string()).unwrap_or_default(),
    );
    field(
        "user",
        r.user_name.as_deref().map(fmt::clean).unwrap_or_default(),
    );
    field(
        "version",
        r.version.as_deref().map(fmt::clean).unwrap_or_default(),
    );
    field(
        "git commit",
        match (r.git_commit.as_deref().map(fmt::clean), r.git_dirty) {
            (Some(c), Some(true)) => format!("{c} (with uncommitted changes)"),
            (Some(c), _) => c,
            (None, _) => String::new(),
        },
    );
    field(
        "command line",
        r.command_line
            .as_deref()
            .map(fmt::clean)
            .unwrap_or_default(),
    );
    field(
        "runtime",
        r.runtime.as_deref().map(fmt::clean).unwrap_or_default(),
    );
    field(
        "tasker",
        r.tasker_version
            .as_deref()
            .map(fmt::clean)
            .unwrap_or_default(),
    );
    field(
        "script",
        r.script_path
            .as_deref()
            .or(r.script_filename.as_deref())
            .map(fmt::clean)
            .unwrap_or_default(),
    );
    field(
        "log",
        r.log_path
            .as_deref()
            .or(r.log_filename.as_deref())
            .map(fmt::clean)
            .unwrap_or_default(),
    );
    field(
        "message",
        r.overall_progress_message
            .as_deref()
            .map(fmt::clean)
            .unwrap_or_default(),
    );
    field(
        "metadata",
        r.metadata
            .as_ref()
            .map(|m| m.to_string())
            .map(|m| fmt::clean(&m))
            .unwrap_or_default(),
    );
    if let Some(e) = &r.error_message {
        field("error", style.paint("1;31", &fmt::clean(e)));
    }
    if r.lost {
        out.push_str(&style.paint(
            "1;31",
            "\nThis run looks lost: its process is gone or its heartbeat is too old (`tasker reap` marks it FAILED).\n",
        ));
    }
    if let Some(detail) = &r.error_detail {
        out.push_str(&format!("\n{}\n", style.bold("Error detail")));
        push_detail(&mut out, detail);
    }
    if let Some(summary) = resources_summary(&d.samples) {
        out.push_str(&format!("\n{}\n{summary}", style.bold("Resources")));
    }
    for (dir, title) in [(Direction::Input, "Inputs"), (Direction::Output, "Outputs")] {
        let rows: Vec<&IoRow> =
            d.io.iter()
                .filter(|io| io.record.direction == dir)
                .collect();
        if !rows.is_empty() {
            out.push_str(&format!("\n{}\n", style.bold(title)));
            out.push_str(&io_table(&rows).render(&style));
        }
    }
    if !d.subtasks.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("Subtasks")));
        let mut table = Table::new(&[
            "#", "NAME", "STATUS", "PROGRESS", "ITEMS", "DURATION", "ETA", "MESSAGE",
        ])
        .align_right(0)
        .align_right(4);
        for row in &d.subtasks {
            // An unfinished subtask of a lost run stopped with the run's last heartbeat.
            let dur = row.start_time.map(|st| {
                let end = row.end_time.unwrap_or_else(|| r.clock_stop(Utc::now()));
                ((end - st).num_milliseconds() as f64 / 1000.0).max(0.0)
            });
            table.push(vec![
                row.subtask_number.to_string(),
                fmt::truncate(&row.subtask_name, 36),
                style.status(row.status, false),
                fmt::bar(&style, row.percent_complete, 20),
                fmt::items(row),
                dur.map(fmt::duration).unwrap_or_default(),
                fmt::subtask_eta_text(row),
                fmt::truncate(
                    row.error_message
                        .as_deref()
                        .or(row.progress_message.as_deref())
                        .unwrap_or(""),
                    60,
                ),
            ]);
        }
        out.push_str(&table.render(&style));
        for s in d.subtasks.iter().filter(|s| s.error_detail.is_some()) {
            let title = format!("Error detail of subtask {}", s.subtask_number);
            out.push_str(&format!("\n{}\n", style.bold(&title)));
            push_detail(&mut out, s.error_detail.as_deref().unwrap_or_default());
        }
    }
    if !d.events.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("Events")));
        for e in &d.events {
            out.push_str(&format!("  {}\n", event_line(&style, e)));
        }
    }
    print!("{out}");
    Ok(())
}

fn basis_text(b: Basis) -> &'static str {
    match b {
        Basis::Rate => "this run's rate",
        Basis::History => "past runs",
        Basis::Blend => "this run's rate and past runs",
    }
}

/// Latest and peak figures of a run's samples, for `tasker show`.
fn resources_summary(samples: &[Sample]) -> Option<String> {
    let last = samples.last()?;
    let peak_rss = samples
        .iter()
        .filter_map(|s| s.peak_rss_bytes.or(Some(s.rss_bytes)))
        .max()
        .unwrap_or(last.rss_bytes);
    let max_cpu = samples
        .iter()
        .filter_map(|s| s.cpu_percent)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
    let mut out = format!(
        "  {} sample(s), the last at {}\n  cpu: {} s in all{}{}\n  memory: {} resident now, {} at peak\n",
        samples.len(),
        fmt::local_time(Some(last.time)),
        fmt::decimal(last.cpu_seconds),
        last.cpu_percent
            .map(|c| format!(", {c:.0}% now"))
            .unwrap_or_default(),
        max_cpu.map(|c| format!(", {c:.0}% at most")).unwrap_or_default(),
        fmt::bytes(last.rss_bytes),
        fmt::bytes(peak_rss),
    );
    if last.children > 0 || last.children_cpu_seconds > 0.0 {
        out.push_str(&format!(
            "  children: {} now, {} resident, {} s cpu in all\n",
            last.children,
            fmt::bytes(last.children_rss_bytes),
            fmt::decimal(last.children_cpu_seconds),
        ));
    }
    if let (Some(r), Some(w)) = (last.read_bytes, last.write_bytes) {
        out.push_str(&format!(
            "  storage: {} read, {} written\n",
            fmt::bytes(r),
            fmt::bytes(w)
        ));
    }
    Some(out)
}

/// Every sample, for `tasker show --samples`.
fn render_samples(style: &Style, samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "No resource samples for this run (sampling is off or the run was too short).\n"
            .into();
    }
    let mut table = Table::new(&[
        "TIME",
        "CPU %",
        "CPU S",
        "RSS",
        "PEAK RSS",
        "READ",
        "WRITTEN",
        "THREADS",
        "FDS",
        "CHILDREN",
        "CHILD CPU S",
        "CHILD RSS",
    ]);
    for i in 1..12 {
        table = table.align_right(i);
    }
    let opt = |v: Option<u64>| v.map(fmt::bytes).unwrap_or_default();
    for s in samples {
        table.push(vec![
            fmt::local_time(Some(s.time)),
            s.cpu_percent.map(|c| format!("{c:.1}")).unwrap_or_default(),
            fmt::decimal(s.cpu_seconds),
            fmt::bytes(s.rss_bytes),
            opt(s.peak_rss_bytes),
            opt(s.read_bytes),
            opt(s.write_bytes),
            s.threads.map(|t| t.to_string()).unwrap_or_default(),
            s.open_fds.map(|t| t.to_string()).unwrap_or_default(),
            s.children.to_string(),
            fmt::decimal(s.children_cpu_seconds),
            fmt::bytes(s.children_rss_bytes),
        ]);
    }
    table.render(style)
}

/// Inputs or outputs as a table: a value, or a file with its size, time and hash.
fn io_table(rows: &[&IoRow]) -> Table {
    let mut table =
        Table::new(&["NAME", "VALUE OR FILE", "SIZE", "MODIFIED", "SHA-256"]).align_right(2);
    for io in rows {
        let r = &io.record;
        table.push(vec![
            fmt::truncate(&r.name, 32),
            fmt::truncate(r.value.as_deref().or(r.path.as_deref()).unwrap_or(""), 60),
            r.size_bytes
                .map(|b| fmt::bytes(b.max(0) as u64))
                .unwrap_or_default(),
            r.modified
                .map(|m| fmt::local_time(Some(m)))
                .unwrap_or_default(),
            r.sha256
                .as_deref()
                .map(|h| h[..h.len().min(12)].to_string())
                .unwrap_or_default(),
        ]);
    }
    table
}

// ---------------------------------------------------------------- export

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    /// Runs as OpenTelemetry traces (OTLP JSON: one TracesData document per line),
    /// subtasks as child spans, transitions as span events.
    OtlpJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportTable {
    Runs,
    Subtasks,
    Events,
    All,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// JSON (one document) or CSV (one table per file).
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
    /// What to export; CSV holds one table per file, so `all` needs --output-dir.
    #[arg(long, value_enum, default_value_t = ExportTable::All)]
    pub table: ExportTable,
    /// Write here instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<std::path::PathBuf>,
    /// CSV of all tables: write runs.csv, subtasks.csv and events.csv into this folder.
    #[arg(long)]
    pub output_dir: Option<std::path::PathBuf>,
    /// Only runs of tasks in this stage (and their subtasks and events).
    #[arg(long)]
    pub stage: Option<String>,
    /// Only runs of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only these statuses (comma separated), or `active`, or `lost`.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only runs on this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only runs started since: an age (2d) or a date.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many runs (newest first); default all.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// A multi-line error detail, indented, control characters made harmless.
fn push_detail(out: &mut String, detail: &str) {
    for l in detail.lines() {
        out.push_str(&format!(
            "  {}\n",
            l.replace(|c: char| c.is_control() && c != '\t', " ")
        ));
    }
}

const SUBTASK_CSV: &[&str] = &[
    "run_id",
    "subtask_number",
    "subtask_name",
    "status",
    "start_time",
    "end_time",
    "last_update",
    "items_total",
    "items_complete",
    "percent_complete",
    "rate_per_second",
    "eta_seconds",
    "progress_message",
    "error_message",
    "error_detail",
];
const EVENT_CSV: &[&str] = &[
    "event_id",
    "time",
    "run_id",
    "stage_name",
    "task_name",
    "subtask_number",
    "kind",
    "old_status",
    "new_status",
    "message",
];

fn csv_field(v: Option<&serde_json::Value>) -> String {
    let s = match v {
        None | Some(serde_json::Value::Null) => return String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let special = s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if special || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn write_csv<T: Serialize>(out: &mut dyn Write, columns: &[&str], rows: &[T]) -> CliResult {
    writeln!(out, "{}", columns.join(","))?;
    for r in rows {
        write_csv_row(out, columns, r)?;
    }
    Ok(())
}

fn write_runs_csv(out: &mut impl Write, runs: &[RunRow]) -> CliResult {
    writeln!(out, "{}", csv::RUN_COLUMNS.join(","))?;
    for r in runs {
        csv::run(out, r)?;
    }
    Ok(())
}

fn write_csv_row<T: Serialize>(out: &mut dyn Write, columns: &[&str], row: &T) -> CliResult {
    let v = serde_json::to_value(row)?;
    let line: Vec<String> = columns.iter().map(|c| csv_field(v.get(*c))).collect();
    writeln!(out, "{}", line.join(","))?;
    Ok(())
}

/// `export --table runs --format csv` as the runs are read: memory stays flat and
/// the first line comes at once, however many runs there are. None when a filter
/// needs every run first (several statuses, `active`, `lost`).
fn stream_runs_csv(t: &Tracker, a: &ExportArgs, sink: &mut impl Write) -> CliResult<Option<()>> {
    let sel = StatusSel::parse(&a.status).map_err(Failure::usage)?;
    if !(sel.is_empty() || sel.single().is_some()) {
        return Ok(None);
    }
    let since = a
        .since
        .as_deref()
        .map(|s| fmt::parse_since(s, Utc::now()))
        .transpose()
        .map_err(Failure::usage)?;
    let filter = HistoryFilter {
        stage: a.stage.clone(),
        task: a.task.clone(),
        status: sel.single(),
        since,
        limit: Some(a.limit.unwrap_or(usize::MAX)),
        host: a.host.clone(),
    };
    writeln!(sink, "{}", csv::RUN_COLUMNS.join(","))?;
    let mut failed: Option<Failure> = None;
    let res = t.for_each_run(&filter, |r| match csv::run(sink, &r) {
        Ok(()) => Ok(true),
        Err(e) => {
            failed = Some(e.into());
            Ok(false)
        }
    });
    if let Some(f) = failed {
        return Err(f);
    }
    res?;
    Ok(Some(()))
}

/// Every event of the given runs (all events when `runs` is None), oldest first.
fn events_of(t: &Tracker, runs: Option<&[RunRow]>) -> CliResult<Vec<EventRow>> {
    match runs {
        Some(runs) if runs.len() <= 200 => {
            let mut all = Vec::new();
            for r in runs {
                if let Some(id) = &r.run_id {
                    all.extend(t.events_after(0, Some(id), usize::MAX)?);
                }
            }
            all.sort_by_key(|e| e.event_id);
            Ok(all)
        }
        _ => {
            let keep: Option<std::collections::HashSet<&str>> =
                runs.map(|rs| rs.iter().filter_map(|r| r.run_id.as_deref()).collect());
            let mut all = Vec::new();
            let mut after = 0;
            loop {
                let page = t.events_after(after, None, 50_000)?;
                let Some(last) = page.last() else { break };
                after = last.event_id;
                all.extend(
                    page.into_iter()
                        .filter(|e| keep.as_ref().is_none_or(|k| k.contains(e.run_id.as_str()))),
                );
            }
            Ok(all)
        }
    }
}

/// Where an export goes: --output, else stdout; buffered in front of the
/// choice, so that the many small writes of a CSV line are not dynamic calls.
fn export_sink(a: &ExportArgs) -> CliResult<std::io::BufWriter<Box<dyn Write>>> {
    let to: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    Ok(std::io::BufWriter::with_capacity(1 << 16, to))
}

pub fn export(g: &Global, a: &ExportArgs) -> CliResult {
    if a.format == ExportFormat::Csv && a.table == ExportTable::All && a.output_dir.is_none() {
        return Err(Failure::usage(
            "CSV holds one table per file: pass --table runs|subtasks|events, or --output-dir DIR",
        ));
    }
    if a.format == ExportFormat::OtlpJson {
        return export_otlp_json(g, a);
    }
    let t = g.open(false)?;
    if a.format == ExportFormat::Csv && a.table == ExportTable::Runs && a.output_dir.is_none() {
        let mut sink = export_sink(a)?;
        if stream_runs_csv(&t, a, &mut sink)?.is_some() {
            sink.flush()?;
            return Ok(());
        }
    }
    let filtered = a.stage.is_some()
        || a.task.is_some()
        || !a.status.is_empty()
        || a.host.is_some()
        || a.since.is_some()
        || a.limit.is_some();
    let runs = history_rows(&t, &a.stage, &a.task, &a.status, &a.host, &a.since, a.limit)?;
    let want = |x: ExportTable| a.table == x || a.table == ExportTable::All;
    let now = Utc::now();
    let subtasks: Vec<SubtaskRow> = if want(ExportTable::Subtasks) {
        let mut all = Vec::new();
        for r in &runs {
            if let Some(id) = &r.run_id {
                match t.subtasks(id) {
                    Ok(s) => all.extend(s),
                    Err(e) if e.kind() == tasker::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        all
    } else {
        Vec::new()
    };
    let events = if want(ExportTable::Events) {
        events_of(&t, filtered.then_some(&runs[..]))?
    } else {
        Vec::new()
    };
    let _ = now;
    let mut sink = export_sink(a)?;
    match a.format {
        ExportFormat::Json => {
            let v = match a.table {
                ExportTable::Runs => serde_json::to_value(&runs)?,
                ExportTable::Subtasks => serde_json::to_value(&subtasks)?,
                ExportTable::Events => serde_json::to_value(&events)?,
                ExportTable::All => serde_json::json!({
                    "runs": runs, "subtasks": subtasks, "events": events,
                }),
            };
            serde_json::to_writer_pretty(&mut sink, &v)?;
            writeln!(sink)?;
        }
        ExportFormat::Csv => match (&a.output_dir, a.table) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir)?;
                let file = |name: &str| -> CliResult<std::io::BufWriter<std::fs::File>> {
                    let p = dir.join(name);
                    Ok(std::io::BufWriter::new(std::fs::File::create(&p).map_err(
                        |e| Failure::new(format!("cannot write {}: {e}", p.display())),
                    )?))
                };
                if want(ExportTable::Runs) {
                    write_runs_csv(&mut file("runs.csv")?, &runs)?;
                }
                if want(ExportTable::Subtasks) {
                    write_csv(&mut file("subtasks.csv")?, SUBTASK_CSV, &subtasks)?;
                }
                if want(ExportTable::Events) {
                    write_csv(&mut file("events.csv")?, EVENT_CSV, &events)?;
                }
            }
            (None, ExportTable::Runs) => write_runs_csv(&mut sink, &runs)?,
            (None, ExportTable::Subtasks) => write_csv(&mut sink, SUBTASK_CSV, &subtasks)?,
            (None, ExportTable::Events) => write_csv(&mut sink, EVENT_CSV, &events)?,
            (None, ExportTable::All) => unreachable!("refused above"),
        },
        ExportFormat::OtlpJson => unreachable!("exported above"),
    }
    sink.flush()?;
    Ok(())
}

/// Runs read per store session for `--format otlp-json`.
const OTLP_RUNS_PER_READ: usize = 500;

/// The selected runs as one OTLP JSON document (what a collector's file receiver
/// or `otlp-json` tools read), with the service name and resource attributes of
/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (over `otlp:` in the config file).
fn export_otlp_json(g: &Global, a: &ExportArgs) -> CliResult {
    if a.table != ExportTable::All || a.output_dir.is_some() {
        return Err(Failure::usage(
            "--format otlp-json exports runs with their subtasks and events as traces: \
             it takes neither --table nor --output-dir",
        ));
    }
    let t = g.open(false)?;
    let runs = history_rows(&t, &a.stage, &a.task, &a.status, &a.host, &a.since, a.limit)?;
    let resource = tasker::otlp::ResourceInfo::from_env(t.config().otlp.as_deref())?;
    let ids: Vec<&str> = tasker::otlp::exportable(&runs).collect();
    let mut traces = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(OTLP_RUNS_PER_READ) {
        traces.extend(t.run_traces(chunk)?);
    }
    let mut sink = export_sink(a)?;
    serde_json::to_writer(&mut sink, &tasker::otlp::traces_json(&traces, &resource))?;
    writeln!(sink)?;
    sink.flush()?;
    Ok(())
}

// ---------------------------------------------------------------- reap

#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Only list what would be marked FAILED.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the lost runs found (and whether each was marked) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Reaped {
    run_id: String,
    stage_name: String,
    task_name: String,
    hostname: Option<String>,
    process_id: Option<i64>,
    reason: String,
    marked_failed: bool,
}

/// Why a run counts as lost, in words.
fn lost_reason(t: &Tracker, r: &RunRow) -> String {
    let same_host = r.hostname.as_deref() == Some(t.hostname());
    let beat = r.heartbeat_time.or(r.last_update);
    let age = beat
        .map(|b| (Utc::now() - b).num_seconds())
        .map(|s| format!("{s} s ago"))
        .unwrap_or_else(|| "never".into());
    match (same_host, r.process_id) {
        (true, Some(pid)) => format!(
            "process {pid} on host {} is gone (last heartbeat {age})",
            r.hostname.as_deref().unwrap_or("?")
        ),
        _ => format!(
            "no heartbeat from process {} on host {} for longer than {} s (last {age})",
            r.process_id
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into()),
            r.hostname.as_deref().unwrap_or("?"),
            t.config().lost_after.as_secs()
        ),
    }
}

pub fn reap(g: &Global, a: &ReapArgs) -> CliResult {
    let t = g.open(false)?;
    let lost: Vec<RunRow> = t.active_runs()?.into_iter().filter(|r| r.lost).collect();
    let mut done = Vec::new();
    for r in lost {
        let Some(id) = r.run_id.clone() else { continue };
        let reason = lost_reason(&t, &r);
        let mut marked = false;
        if !a.dry_run {
            let info = TransitionInfo::error(
                &format!("lost: {reason}; marked FAILED by tasker reap"),
                Some(&format!(
                    "The run was {} when `tasker reap` found it lost at {} (reaped by user {} on host {}).",
                    r.status,
                    Utc::now().to_rfc3339(),
                    std::env::var("USER").unwrap_or_else(|_| "?".into()),
                    t.hostname()
                )),
            );
            match t.reap_run(&id, info) {
                Ok(_) => marked = true,
                // It finished (or was reaped by someone else) in the meantime.
                Err(e) if e.kind() == tasker::ErrorKind::InvalidTransition => {}
                Err(e) if e.kind() == tasker::ErrorKind::InvalidArgument => {}
                Err(e) if e.kind() == tasker::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        done.push(Reaped {
            run_id: id,
            stage_name: r.stage_name,
            task_name: r.task_name,
            hostname: r.hostname,
            process_id: r.process_id,
            reason,
            marked_failed: marked,
        });
    }
    if a.json {
        return print_json(&done);
    }
    let style = Style::detect(g.color);
    if done.is_empty() {
        println!("No lost runs.");
    }
    let shorts = tasker::run_ids::short_ids(&t, done.iter().map(|d| d.run_id.as_str()))?;
    for d in &done {
        println!(
            "{} {}/{} run {}: {}",
            if d.marked_failed {
                style.paint("1;31", "marked FAILED")
            } else if a.dry_run {
                style.paint("33", "would mark FAILED")
            } else {
                style.dim("already finished")
            },
            fmt::clean(&d.stage_name),
            fmt::clean(&d.task_name),
            shorts.get(&d.run_id).unwrap_or(&d.run_id),
            d.reason
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- purge

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete runs that ended longer ago than this (30d, 12h, 2w). Active runs are never deleted.
    #[arg(long, value_name = "AGE", required_unless_present = "apply_retention")]
    pub older_than: Option<String>,
    /// Apply the configured `retention:` (days, keep_failed_days) in small batches,
    /// as `tasker serve` and `tasker watch` do hourly; for cron.
    #[arg(long, conflicts_with_all = ["older_than", "keep_failed", "stage", "task"])]
    pub apply_retention: bool,
    /// Keep FAILED runs (and their events) whatever their age.
    #[arg(long)]
    pub keep_failed: bool,
    /// Only runs of tasks in this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only runs of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the counts (cutoff, matching, deleted, kept active) as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn purge(g: &Global, a: &PurgeArgs) -> CliResult {
    if a.apply_retention {
        return purge_by_retention(g, a);
    }
    let older_than = a.older_than.as_deref().unwrap_or_default();
    let age = fmt::parse_age(older_than).map_err(Failure::usage)?;
    let cutoff = Utc::now() - age;
    let t = g.open(false)?;
    let all = t.history(&HistoryFilter {
        stage: a.stage.clone(),
        task: a.task.clone(),
        limit: Some(usize::MAX),
        ..HistoryFilter::default()
    })?;
    let old = |r: &RunRow| {
        r.end_time.or(r.start_time).is_some_and(|e| e < cutoff)
            && !(a.keep_failed && r.status == Status::Failed)
    };
    let candidates: Vec<&RunRow> = all.iter().filter(|r| old(r)).collect();
    let active_old = candidates.iter().filter(|r| r.status.is_active()).count();
    let victims: Vec<&RunRow> = candidates
        .iter()
        .copied()
        .filter(|r| !r.status.is_active())
        .collect();
    let mut deleted = 0;
    if !a.dry_run && !victims.is_empty() {
        if active_old == 0 {
            deleted = t.delete_runs(&RunSelector {
                stage: a.stage.clone(),
                task: a.task.clone(),
                run_id: None,
                before: Some(cutoff),
                keep_failed: a.keep_failed,
                ..RunSelector::default()
            })?;
        } else {
            // Never delete a run that is still active: delete the others one by one.
            for r in &victims {
                deleted += t.delete_runs(&RunSelector {
                    run_id: r.run_id.clone(),
                    ..RunSelector::default()
                })?;
            }
        }
    }
    if a.json {
        return print_json(&serde_json::json!({
            "cutoff": cutoff,
            "dry_run": a.dry_run,
            "matching_runs": victims.len(),
            "deleted_runs": deleted,
            "kept_active_runs": active_old,
        }));
    }
    if a.dry_run {
        println!(
            "Would delete {} run(s) that ended before {} (with their subtasks and events).",
            victims.len(),
            fmt::local_time(Some(cutoff))
        );
    } else {
        println!(
            "Deleted {deleted} run(s) that ended before {} (with their subtasks and events).",
            fmt::local_time(Some(cutoff))
        );
    }
    if active_old > 0 {
        println!("Kept {active_old} old run(s) that are still active (see `tasker reap`).");
    }
    Ok(())
}

/// `tasker purge --apply-retention`: the configured retention, in batches.
fn purge_by_retention(g: &Global, a: &PurgeArgs) -> CliResult {
    let t = g.open(false)?;
    let Some(r) = t.config().retention else {
        return Err(Failure::usage(format!(
            "no retention is configured for {} (add `retention: {{days: 90, keep_failed_days: 365}}` \
             to .tasker.yml or set TASKER_RETENTION_DAYS)",
            t.config().location.describe()
        )));
    };
    let now = Utc::now();
    let cutoff = now - chrono::Duration::days(i64::from(r.days));
    let failed_cutoff =
        now - chrono::Duration::days(i64::from(r.keep_failed_days.unwrap_or(r.days)));
    let (runs, failed) = if a.dry_run {
        let all = t.history(&HistoryFilter {
            limit: Some(usize::MAX),
            ..HistoryFilter::default()
        })?;
        let ended_before = |r: &RunRow, c| {
            !r.status.is_active() && r.end_time.or(r.start_time).is_some_and(|e| e < c)
        };
        let failed = all
            .iter()
            .filter(|x| x.status == Status::Failed && ended_before(x, failed_cutoff))
            .count();
        let runs = all
            .iter()
            .filter(|x| x.status != Status::Failed && ended_before(x, cutoff))
            .count();
        (runs, failed)
    } else {
        let report = t.apply_retention()?.unwrap_or_default();
        (report.deleted_runs, report.deleted_failed_runs)
    };
    if a.json {
        return print_json(&serde_json::json!({
            "retention_days": r.days,
            "keep_failed_days": r.keep_failed_days,
            "dry_run": a.dry_run,
            "deleted_runs": if a.dry_run { 0 } else { runs },
            "deleted_failed_runs": if a.dry_run { 0 } else { failed },
            "matching_runs": runs,
            "matching_failed_runs": failed,
        }));
    }
    let verb = if a.dry_run { "Would delete" } else { "Deleted" };
    println!(
        "{verb} {runs} finished run(s) older than {} day(s) and {failed} failed run(s) older than {} day(s) \
         (with their subtasks and events).",
        r.days,
        r.keep_failed_days.unwrap_or(r.days)
    );
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn streamed_run_lines_match_the_generic_csv_writer() {
        let row: RunRow = serde_json::from_str(
            r#"{
            "run_id": "r1", "stage_name": "st, \"1\"", "stage_order": 2, "task_name": " t ",
            "task_type": null, "task_order": null, "status": "FAILED", "hostname": "h",
            "process_id": 42, "parent_pid": 1, "process_start_time": null, "user_name": "u",
            "start_time": "2026-11-30T10:00:00.123456Z", "end_time": "2026-11-30T10:01:00Z",
            "last_update": "2026-11-30T10:01:00Z", "heartbeat_time": "2026-11-30T10:01:00Z",
            "total_subtasks": 3, "current_subtask": 2, "overall_percent_complete": 66.5,
            "overall_progress_message": "line\nbreak", "version": "1", "git_commit": "abc",
            "script_path": null, "script_filename": null, "log_path": null, "log_filename": null,
            "error_message": "boom", "error_detail": "a\r\nb", "metadata": {"k": [1, "x"]},
            "attempt": 1, "retry_of": null, "command_line": null, "git_dirty": null,
            "runtime": null, "tasker_version": null, "subtasks_completed": 1, "lost": false,
            "duration_seconds": 60.5, "eta_seconds": null, "eta_low": null, "eta_high": null,
            "eta_basis": null
        }"#,
        )
        .unwrap();
        let mut fast = Vec::new();
        csv::run(&mut fast, &row).unwrap();
        let mut generic = Vec::new();
        write_csv_row(&mut generic, csv::RUN_COLUMNS, &row).unwrap();
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(generic).unwrap()
        );
    }
}
