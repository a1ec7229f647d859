//! `tasker logs RUN`: a run's log lines (from every process and host that
//! logged on it), `-f` to follow new ones as `tail -f` does, and `tasker show
//! RUN --failed-items`. Log text is shown inert: control characters (escape
//! sequences, carriage returns, bells) are printed as visible escapes, and the
//! lines of a multi-line message are indented under their first.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use tasker::{LogFilter, LogLevel, LogRow, OutcomeFilter, Tracker};

use crate::fmt::{self, Style};
use crate::{CliResult, Failure, Global};

/// How often `-f` asks the database for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Lines read per query while following (more are read on the next turn at once).
const FOLLOW_PAGE: usize = 1000;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run id (as printed by `tasker history`).
    pub run: String,
    /// Only lines of this level or more important: debug, info, warn, error.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Only lines logged since then: an age (30m, 2h, 1d) or a date.
    #[arg(long, value_name = "AGE")]
    pub since: Option<String>,
    /// Only the last N lines (before following).
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Keep printing new lines as they are stored (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn logs(g: &Global, a: &LogsArgs) -> CliResult {
    let min_level = a
        .level
        .as_deref()
        .map(str::parse::<LogLevel>)
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let since = a
        .since
        .as_deref()
        .map(|s| fmt::parse_since(s, Utc::now()))
        .transpose()
        .map_err(Failure::usage)?;
    if a.lines == Some(0) {
        return Err(Failure::usage("--lines must be at least 1"));
    }
    let t = g.open(false)?;
    let run = a.run.trim();
    let style = Style::detect(g.color);
    let mut filter = LogFilter {
        min_level,
        since,
        after_id: None,
        limit: a.lines,
    };
    let rows = t.run_logs(run, &filter)?;
    let mut last = rows.last().map(|r| r.log_id);
    if !print_rows(&style, &rows, a.json)? || !a.follow {
        return Ok(());
    }
    filter.limit = Some(FOLLOW_PAGE);
    loop {
        filter.after_id = Some(last.unwrap_or(0));
        let rows = follow_page(&t, run, &filter)?;
        if rows.is_empty() {
            std::thread::sleep(FOLLOW_EVERY);
            continue;
        }
        last = rows.last().map(|r| r.log_id);
        if !print_rows(&style, &rows, a.json)? {
            return Ok(());
        }
    }
}

/// One page of new lines; a database that is away for a moment is waited for.
fn follow_page(t: &Tracker, run: &str, filter: &LogFilter) -> CliResult<Vec<LogRow>> {
    match t.run_logs(run, filter) {
        Ok(rows) => Ok(rows),
        Err(e) if e.is_transient() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Prints rows; false when the reader went away (a closed pipe ends quietly).
fn print_rows(style: &Style, rows: &[LogRow], json: bool) -> CliResult<bool> {
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    for r in rows {
        if json {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        } else {
            text.push_str(&render_line(style, r));
        }
    }
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `12:00:01.123 WARN  host:pid #3 message`, the message made inert.
pub fn render_line(style: &Style, r: &LogRow) -> String {
    let time = r
        .time
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S%.3f");
    let level = format!("{:<5}", r.level.as_str().to_uppercase());
    let level = match r.level {
        LogLevel::Error => style.paint("1;31", &level),
        LogLevel::Warn => style.paint("33", &level),
        LogLevel::Info => level,
        LogLevel::Debug => style.dim(&level),
    };
    let origin = match (&r.hostname, r.process_id) {
        (Some(h), Some(p)) => format!("{}:{p}", inert(h)),
        (Some(h), None) => inert(h),
        (None, Some(p)) => p.to_string(),
        (None, None) => "-".into(),
    };
    let subtask = r
        .subtask_number
        .map(|n| format!(" #{n}"))
        .unwrap_or_default();
    let message = inert(&r.message).replace('\n', "\n    ");
    let message = if r.dropped_lines.is_some() {
        style.dim(&message)
    } else {
        message
    };
    format!(
        "{} {level} {}{subtask} {message}\n",
        style.dim(&time.to_string()),
        style.dim(&origin)
    )
}

/// Text a terminal shows as it is: newlines stay (the caller indents them);
/// every other control character (ESC, CR, BEL, DEL, C1) becomes a visible
/// escape such as `\x1b`, so a log line cannot move the cursor, recolour or
/// retitle the terminal.
pub fn inert(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            // Bidirectional overrides can reorder what is shown.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

/// `tasker show RUN --failed-items`: the items of each subtask that failed or
/// were skipped, with how many there were in all.
pub fn failed_items(t: &Tracker, style: &Style, run: &str, json: bool) -> CliResult {
    let counts = t.item_outcome_counts(run)?;
    let rows = t.item_outcomes(run, &OutcomeFilter::default())?;
    if json {
        return crate::cmd::print_json(&serde_json::json!({
            "counts": counts,
            "items": rows,
        }));
    }
    let mut out = String::new();
    if counts.is_empty() {
        out.push_str("no failed or skipped items recorded\n");
    }
    for c in &counts {
        let shown = if c.kept < c.total {
            format!(" (the first {} kept)", c.kept)
        } else {
            String::new()
        };
        out.push_str(&style.bold(&format!(
            "subtask {}: {} {}{shown}\n",
            c.subtask_number, c.total, c.outcome
        )));
        for r in rows
            .iter()
            .filter(|r| r.subtask_number == c.subtask_number && r.outcome == c.outcome)
        {
            let reason = r
                .reason
                .as_deref()
                .map(|x| format!("  {}", fmt::clean(x)))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{}\n",
                fmt::clean(&r.item_key),
                style.dim(&reason)
            ));
        }
    }
    let mut o = std::io::stdout().lock();
    match o.write_all(out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(inert("a\x1b[31mred\x07\rb"), "a\\x1b[31mred\\x07\\x0db");
        assert_eq!(inert("one\ntwo\tx"), "one\ntwo    x");
        assert_eq!(inert("\u{202e}abc"), "\\u{202e}abc");
        assert_eq!(inert("\u{9b}2J"), "\\x9b2J");
    }
}
