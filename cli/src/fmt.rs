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

/// A rate with sensible precision: `1.2k/s`, `12/s`, `1.5/s`, `0.04/s`, and
/// per minute or hour when slower (`0.24/min`, `1.3/h`), never a rounded `0/s`.
pub fn rate(per_second: f64) -> String {
    let r = per_second;
    if !r.is_finite() || r < 0.0 {
        return "-".into();
    }
    let short = |x: f64| match x {
        x if x >= 10.0 => format!("{x:.0}"),
        x if x >= 1.0 => format!("{x:.1}"),
        x => format!("{x:.2}"),
    };
    match r {
        0.0 => "0/s".into(),
        r if r >= 100.0 => format!("{}/s", count(r.round() as i64)),
        r if r >= 0.01 => format!("{}/s", short(r)),
        r if r * 60.0 >= 0.01 => format!("{}/min", short(r * 60.0)),
        r => format!("{}/h", short(r * 3600.0)),
    }
}

/// A refresh interval: seconds (`5`, `0.5`) or a duration (`5s`, `500ms`, `2m`).
pub fn parse_interval(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds or a duration such as 5s"))?;
    let secs = n * scale;
    if !(secs.is_finite() && (0.05..=3600.0).contains(&secs)) {
        return Err(format!("{s:?} is out of range (0.05 s to 1 hour)"));
    }
    Ok(secs)
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

/// The narrowest width output is fitted to (below it, lines are simply cut).
pub const MIN_WIDTH: usize = 40;

/// The width to fit human output to: `$COLUMNS` when it is a positive number
/// (as `ls` reads it), else the terminal's width when stdout is a terminal;
/// None (no limit) when output goes to a file or a pipe.
pub fn term_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0);
    columns.or_else(tty_width).map(|w| w.max(MIN_WIDTH))
}

fn tty_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points
    // at a live, writable one; fd 1 is only queried.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// Shortens text that may carry colour codes to `max` display columns with an
/// ellipsis (the codes take no width; a cut colour is reset).
pub fn truncate_visible(s: &str, max: usize) -> String {
    if visible_width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    let mut coloured = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            coloured = true;
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == 'm' {
                    break;
                }
            }
            continue;
        }
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

/// Cuts every line of `text` to `width` columns (None: unchanged).
pub fn fit_lines(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&truncate_visible(body, width));
        out.push_str(nl);
    }
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
///
/// Fitted to a width ([`Table::render_fit`]): columns marked [`Table::shrink`]
/// (names) are cut with an ellipsis down to their minimum, then columns marked
/// [`Table::drop_rank`] are left out, lowest rank first, then names are cut further.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
    shrink_to: Vec<Option<usize>>,
    drop_rank: Vec<Option<u8>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            right: vec![false; header.len()],
            shrink_to: vec![None; header.len()],
            drop_rank: vec![None; header.len()],
        }
    }

    /// This column (a name) may be cut down to `min` columns to fit.
    pub fn shrink(mut self, col: usize, min: usize) -> Table {
        self.shrink_to[col] = Some(min);
        self
    }

    /// This column may be left out to fit; lower ranks go first.
    pub fn drop_rank(mut self, col: usize, rank: u8) -> Table {
        self.drop_rank[col] = Some(rank);
        self
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
        self.render_fit(style, None)
    }

    /// Renders within `width` columns (None: as wide as the cells need).
    pub fn render_fit(&self, style: &Style, width: Option<usize>) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(visible_width(c));
            }
        }
        let mut shown = vec![true; n];
        if let Some(width) = width {
            self.fit(width, &mut widths, &mut shown);
        }
        let cols: Vec<usize> = (0..n).filter(|i| shown[*i]).collect();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String, header: bool| {
            let mut parts = Vec::with_capacity(n);
            for (k, &i) in cols.iter().enumerate() {
                let Some(c) = cells.get(i) else { continue };
                let c = &truncate_visible(c, widths[i]);
                let pad = widths[i].saturating_sub(visible_width(c));
                let last = k + 1 == cols.len();
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

    /// Chooses column widths and which columns to show so that a line fits `width`.
    fn fit(&self, width: usize, widths: &mut [usize], shown: &mut [bool]) {
        let total = |widths: &[usize], shown: &[bool]| {
            let cols = shown.iter().filter(|s| **s).count();
            (0..widths.len())
                .filter(|i| shown[*i])
                .map(|i| widths[i])
                .sum::<usize>()
                + 2 * cols.saturating_sub(1)
        };
        // Cuts the widest shrinkable column by one until the line fits or none is above `floor`.
        let shrink = |widths: &mut [usize], shown: &[bool], floor: &dyn Fn(usize) -> usize| {
            while total(widths, shown) > width {
                let widest = (0..widths.len())
                    .filter(|i| shown[*i])
                    .filter_map(|i| self.shrink_to[i].map(|m| (i, floor(m))))
                    .filter(|(i, m)| widths[*i] > *m)
                    .max_by_key(|(i, _)| widths[*i]);
                match widest {
                    Some((i, _)) => widths[i] -= 1,
                    None => break,
                }
            }
        };
        shrink(widths, shown, &|m| m);
        let mut ranked: Vec<(u8, usize)> = (0..widths.len())
            .filter_map(|i| self.drop_rank[i].map(|r| (r, i)))
            .collect();
        ranked.sort();
        for (_, i) in ranked {
            if total(widths, shown) <= width {
                break;
            }
            shown[i] = false;
        }
        // Names down to a few characters before lines get cut.
        shrink(widths, shown, &|m| m.min(6));
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
    fn tables_fit_a_width_cutting_names_then_dropping_columns() {
        let plain = Style { color: false };
        let mut t = Table::new(&["NAME", "STATUS", "HOST"])
            .shrink(0, 8)
            .drop_rank(2, 0);
        t.push(vec!["a".repeat(30), "RUNNING".into(), "host-1:42".into()]);
        let wide = t.render_fit(&plain, Some(200));
        assert!(wide.contains(&"a".repeat(30)) && wide.contains("host-1:42"));
        // 30 + 2 + 7 + 2 + 9 = 50: the name is cut to fit 45.
        let cut = t.render_fit(&plain, Some(45));
        assert!(cut.lines().all(|l| visible_width(l) <= 45), "{cut}");
        assert!(cut.contains('…') && cut.contains("host-1:42"), "{cut}");
        // Below 8 + 2 + 7 + 2 + 9 the host goes before the name is cut further.
        let narrow = t.render_fit(&plain, Some(25));
        assert!(narrow.lines().all(|l| visible_width(l) <= 25), "{narrow}");
        assert!(
            !narrow.contains("HOST") && narrow.contains("RUNNING"),
            "{narrow}"
        );
    }

    #[test]
    fn colour_survives_a_cut() {
        let style = Style { color: true };
        let s = style.paint("31", "abcdefgh");
        let cut = truncate_visible(&s, 4);
        assert_eq!(visible_width(&cut), 4);
        assert!(cut.ends_with("\x1b[0m"), "{cut:?}");
        assert_eq!(fit_lines("abcdef\nxy\n", Some(4)), "abc…\nxy\n");
    }

    #[test]
    fn rates_keep_their_precision() {
        assert_eq!(rate(0.04), "0.04/s");
        assert_eq!(rate(1.54), "1.5/s");
        assert_eq!(rate(12.4), "12/s");
        assert_eq!(rate(25_000.0), "25.0k/s");
        assert_eq!(rate(0.004), "0.24/min");
        assert_eq!(rate(0.0001), "0.36/h");
        assert_eq!(rate(0.0), "0/s");
    }

    #[test]
    fn intervals_take_seconds_and_durations() {
        assert_eq!(parse_interval("5").unwrap(), 5.0);
        assert_eq!(parse_interval("0.5").unwrap(), 0.5);
        assert_eq!(parse_interval("5s").unwrap(), 5.0);
        assert_eq!(parse_interval("250ms").unwrap(), 0.25);
        assert_eq!(parse_interval("2m").unwrap(), 120.0);
        assert!(parse_interval("0").unwrap_err().contains("\"0\""));
        assert!(parse_interval("5x").unwrap_err().contains("\"x\""));
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("NaN").is_err());
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\n"), "a [2Jb ");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
