//! Human output: durations, times, colours (only on a terminal, never with
//! NO_COLOR), progress bars, aligned tables, ETA with its confidence interval.

use chrono::{DateTime, Local, Utc};
use tasker::{RunRow, Status, SubtaskRow};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Whether to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when asked, or (auto) when stdout is a terminal and NO_COLOR is unset.
    pub fn detect(choice: crate::ColorChoice) -> Style {
        use std::io::IsTerminal;
        let color = match choice {
            crate::ColorChoice::Always => true,
            crate::ColorChoice::Never => false,
            crate::ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
                    && std::io::stdout().is_terminal()
            }
        };
        Style { color }
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn status(&self, status: Status, lost: bool) -> String {
        self.paint(status_color(status, lost), &status_label(status, lost))
    }
}

pub fn status_label(status: Status, lost: bool) -> String {
    if lost {
        format!("{status} (LOST)")
    } else {
        status.to_string()
    }
}

pub fn status_color(status: Status, lost: bool) -> &'static str {
    if lost {
        return "1;31";
    }
    match status {
        Status::Completed => "32",
        Status::Failed => "1;31",
        Status::Running | Status::Started => "36",
        Status::Paused => "33",
        Status::Cancelled => "35",
        Status::Skipped => "2",
        Status::NotStarted => "2",
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`, `0.4s`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let secs = secs.abs(); // -0.0 (an empty sum) reads as 0
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Local time for people: `2026-11-22 21:05:03`.
pub fn local_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => "-".into(),
    }
}

/// A bar like `[#######-------------]  35%`.
pub fn bar(style: &Style, percent: Option<f64>, width: usize) -> String {
    let Some(p) = percent.filter(|p| p.is_finite()) else {
        return format!("[{}]    -", " ".repeat(width));
    };
    let p = p.clamp(0.0, 100.0);
    let filled = ((p / 100.0) * width as f64).round() as usize;
    let done = "#".repeat(filled);
    let rest = "-".repeat(width - filled);
    format!(
        "[{}{}] {:>3.0}%",
        style.paint("32", &done),
        style.dim(&rest),
        p.floor()
    )
}

/// `1.2k`, `3.4M` for item counts.
pub fn count(n: i64) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    if a < 10_000.0 {
        format!("{n}")
    } else if a < 1e6 {
        format!("{sign}{:.1}k", a / 1e3)
    } else if a < 1e9 {
        format!("{sign}{:.1}M", a / 1e6)
    } else {
        format!("{sign}{:.1}G", a / 1e9)
    }
}

/// `512 B`, `3.4 MiB`, `1.2 GiB` for memory and file sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds of CPU and the like: `0.42`, `12.3`, `4512`.
pub fn decimal(x: f64) -> String {
    match x.abs() {
        a if a < 10.0 => format!("{x:.2}"),
        a if a < 1000.0 => format!("{x:.1}"),
        _ => format!("{x:.0}"),
    }
}

/// The items of a subtask: `1200/5000`, or `1200` when the total is unknown.
pub fn items(s: &SubtaskRow) -> String {
    match s.items_total {
        Some(t) => format!("{}/{}", count(s.items_complete), count(t)),
        None if s.items_complete > 0 => count(s.items_complete),
        None => "-".into(),
    }
}

/// The core's ETA with its interval: "4m 10s (3m 50s–4m 40s)".
pub fn eta_text(seconds: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (seconds, low, high) {
        (None, _, _) => String::new(),
        (Some(0.0), _, _) => "0s".into(),
        (Some(s), Some(lo), Some(hi)) if hi > lo => {
            format!("{} ({}–{})", duration(s), duration(lo), duration(hi))
        }
        (Some(s), _, _) => duration(s),
    }
}

/// A run's ETA and interval.
pub fn run_eta_text(r: &RunRow) -> String {
    eta_text(r.eta_seconds, r.eta_low, r.eta_high)
}

/// A subtask's ETA and interval.
pub fn subtask_eta_text(s: &SubtaskRow) -> String {
    eta_text(s.eta_seconds, s.eta_low, s.eta_high)
}

/// Removes control characters (a stored name must not drive the terminal).
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Shortens to `max` display columns with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    let s = clean(s);
    if s.width() <= max {
        return s;
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// Display width without ANSI colour codes.
pub fn visible_width(s: &str) -> usize {
    let mut w = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            w += c.width().unwrap_or(0);
        }
    }
    w
}

/// An aligned table: a header row and cells that may carry colour codes.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            right: vec![false; header.len()],
        }
    }

    pub fn align_right(mut self, col: usize) -> Table {
        self.right[col] = true;
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, style: &Style) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(visible_width(c));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String, header: bool| {
            let mut parts = Vec::with_capacity(n);
            for (i, c) in cells.iter().enumerate().take(n) {
                let pad = widths[i].saturating_sub(visible_width(c));
                let last = i + 1 == n;
                let cell = if header { style.bold(c) } else { c.clone() };
                if self.right[i] {
                    parts.push(format!("{}{cell}", " ".repeat(pad)));
                } else if last {
                    parts.push(cell);
                } else {
                    parts.push(format!("{cell}{}", " ".repeat(pad)));
                }
            }
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        line(&self.header, &mut out, true);
        for r in &self.rows {
            line(r, &mut out, false);
        }
        out
    }
}

// Shared with the dashboard server (tasker::views).
pub use tasker::views::{parse_age, parse_since};

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(250.0), "4m 10s");
        assert_eq!(duration(7500.0), "2h 05m");
        assert_eq!(duration(3.0 * 86400.0 + 4.0 * 3600.0), "3d 4h");
    }

    #[test]
    fn tables_align_with_colour_codes() {
        let style = Style { color: true };
        let mut t = Table::new(&["A", "B"]);
        t.push(vec![style.paint("31", "red"), "x".into()]);
        t.push(vec!["longer".into(), "y".into()]);
        let plain = Style { color: false };
        assert_eq!(
            t.render(&plain),
            "A       B\n\x1b[31mred\x1b[0m     x\nlonger  y\n",
            "colour codes take no width"
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\n"), "a [2Jb ");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
