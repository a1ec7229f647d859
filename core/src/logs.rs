//! Run logs and item outcomes: what a run says about itself besides progress.
//!
//! `RunHandle::log` and `item_failed`/`item_skipped` keep a line in this
//! process's `LogBuffer` (a short lock, no I/O); the writer thread takes the
//! buffer with the progress of the same flush and writes both in one
//! transaction (`Op::Progress { logs, .. }`), so logging adds no transaction and
//! a caller never waits for the database. Through an outage the batch is queued
//! with the progress and replayed once like every other write.
//!
//! Bounds. A run keeps at most `tracking.max_log_lines` lines: older ones are
//! dropped (in memory while they wait, in the database after they are stored)
//! and counted, and readers see one marker line with that count before the
//! lines kept. A line over `MAX_LINE_BYTES` is cut at a character boundary and
//! says how long it was. Item outcomes keep the first `MAX_ITEM_OUTCOMES` per
//! subtask and kind, and count every one exactly.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::log_time::{self, LineClock};
use crate::run::RunHandle;
use crate::tracker::Tracker;

/// Log lines kept per run unless `tracking.max_log_lines` says otherwise.
pub const DEFAULT_MAX_LOG_LINES: u32 = 10_000;

/// A longer line (or item key, or reason) is cut to this many bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Item outcomes kept per subtask and kind; more are counted, not kept.
pub const MAX_ITEM_OUTCOMES: u32 = 1_000;

/// How important a log line is. Stored as its number, so that "this level or
/// more" is one comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug = 10,
    Info = 20,
    Warn = 30,
    Error = 40,
}

impl LogLevel {
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// The stored number (10, 20, 30, 40).
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The level of a stored number; a number between levels counts as the one below.
    pub fn from_code(code: i64) -> LogLevel {
        match code {
            i64::MIN..=19 => LogLevel::Debug,
            20..=29 => LogLevel::Info,
            30..=39 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = Error;

    /// `debug`, `info`, `warn` (or `warning`), `error`, in any case. (No
    /// allocation: C and R pass the level on every call.)
    fn from_str(s: &str) -> Result<LogLevel> {
        let t = s.trim();
        let is = |name: &str| t.eq_ignore_ascii_case(name);
        if is("info") {
            Ok(LogLevel::Info)
        } else if is("debug") {
            Ok(LogLevel::Debug)
        } else if is("warn") || is("warning") {
            Ok(LogLevel::Warn)
        } else if is("error") {
            Ok(LogLevel::Error)
        } else {
            Err(Error::invalid(
                "level",
                s,
                "is not a log level (debug, info, warn, error)",
            ))
        }
    }
}

impl Serialize for LogLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<LogLevel, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happened to one item of a subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = Error;

    fn from_str(s: &str) -> Result<Outcome> {
        match s.trim().to_ascii_lowercase().as_str() {
            "failed" => Ok(Outcome::Failed),
            "skipped" => Ok(Outcome::Skipped),
            _ => Err(Error::invalid(
                "outcome",
                s,
                "is not an item outcome (failed, skipped)",
            )),
        }
    }
}

/// Text as stored: NUL (which PostgreSQL text cannot hold) becomes U+FFFD, and
/// more than `MAX_LINE_BYTES` is cut at a character boundary with a note saying
/// how long it was. Never fails: a log call does not refuse its content.
/// Text that needs neither is returned as it is (the log buffer copies it
/// into a line's storage, reused once lines are dropped).
pub fn clean_text(text: &str) -> Cow<'_, str> {
    let has_nul = text.as_bytes().contains(&0);
    if !has_nul && text.len() <= MAX_LINE_BYTES {
        return Cow::Borrowed(text);
    }
    let mut s = if has_nul {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_string()
    };
    if s.len() > MAX_LINE_BYTES {
        let total = s.len();
        let mut end = MAX_LINE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(&format!(" [cut: {total} bytes, {MAX_LINE_BYTES} kept]"));
    }
    Cow::Owned(s)
}

/// One log line waiting to be written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewLogLine {
    pub run_id: Arc<str>,
    pub time: DateTime<Utc>,
    pub level: LogLevel,
    /// The subtask number this process uses, when the line is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask: Option<u32>,
    /// The subtask's identity when known: the store records the number it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_uid: Option<Arc<str>>,
    pub message: String,
}

/// One item outcome waiting to be written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewItemOutcome {
    pub run_id: Arc<str>,
    pub time: DateTime<Utc>,
    pub subtask: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_uid: Option<Arc<str>>,
    pub outcome: Outcome,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcomes counted in memory beyond what could ever be kept (a subtask's
/// outcomes of one kind beyond `MAX_ITEM_OUTCOMES` in one flush).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutcomesCounted {
    pub run_id: Arc<str>,
    pub subtask: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_uid: Option<Arc<str>>,
    pub outcome: Outcome,
    pub count: u64,
}

/// Lines of a run dropped in memory before they reached the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinesDropped {
    pub run_id: Arc<str>,
    pub count: u64,
}

/// What one flush writes besides progress: the lines and outcomes of every
/// run of this process since the last flush, with who wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub host: String,
    pub pid: u32,
    /// The writing process's `tracking.max_log_lines` (a replay by another
    /// process applies the bound of the one that logged).
    pub max_lines: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<NewLogLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<LinesDropped>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<NewItemOutcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted: Vec<OutcomesCounted>,
}

impl LogBatch {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
            && self.dropped.is_empty()
            && self.outcomes.is_empty()
            && self.counted.is_empty()
    }

    /// Every run the batch is about, sorted and once each.
    pub fn runs(&self) -> Vec<&str> {
        let mut runs: Vec<&str> = self
            .lines
            .iter()
            .map(|l| &*l.run_id)
            .chain(self.dropped.iter().map(|d| &*d.run_id))
            .chain(self.outcomes.iter().map(|o| &*o.run_id))
            .chain(self.counted.iter().map(|c| &*c.run_id))
            .collect();
        runs.sort_unstable();
        runs.dedup();
        runs
    }

    /// Lines per run in this batch (the store adds them to what it keeps).
    pub fn lines_per_run(&self) -> Vec<(&str, u64, u64)> {
        let mut per: Vec<(&str, u64, u64)> = Vec::new();
        for l in &self.lines {
            match per.iter_mut().find(|(r, _, _)| *r == &*l.run_id) {
                Some(p) => p.1 += 1,
                None => per.push((&l.run_id, 1, 0)),
            }
        }
        for d in &self.dropped {
            match per.iter_mut().find(|(r, _, _)| *r == &*d.run_id) {
                Some(p) => p.2 += d.count,
                None => per.push((&d.run_id, 0, d.count)),
            }
        }
        per
    }
}

/// A subtask as the buffer tells them apart (its identity, else its number).
type SubtaskKey = (Arc<str>, Option<Arc<str>>, u32, Outcome);

/// Lines and outcomes of this process waiting for the next flush.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    host: String,
    /// Per run (a process logs on few runs: a list, found by pointer first).
    lines: Vec<(Arc<str>, RunLines)>,
    outcomes: Vec<NewItemOutcome>,
    /// Outcomes pending per subtask and kind (to count the excess instead).
    pending_per_subtask: HashMap<SubtaskKey, u64>,
    counted: Vec<OutcomesCounted>,
    /// Times the lines in the order they are kept.
    clock: LineClock,
}

#[derive(Debug, Default)]
struct RunLines {
    lines: VecDeque<PendingLine>,
    dropped: u64,
}

/// A log line as the buffer keeps it until the flush: its run is the key it
/// is kept under and its time a stamp (`log_time`), so that a call clones no
/// `Arc` and converts no time; `LogBuffer::take` makes it a `NewLogLine`.
#[derive(Debug)]
pub(crate) struct PendingLine {
    pub(crate) level: LogLevel,
    pub(crate) subtask: Option<u32>,
    pub(crate) subtask_uid: Option<Arc<str>>,
    pub(crate) message: String,
    time: i64,
}

impl PendingLine {
    /// A line whose text `LogBuffer::push_line` fills in.
    pub(crate) fn new(
        level: LogLevel,
        subtask: Option<u32>,
        subtask_uid: Option<Arc<str>>,
    ) -> PendingLine {
        PendingLine {
            level,
            subtask,
            subtask_uid,
            message: String::new(),
            time: 0,
        }
    }
}

impl LogBuffer {
    /// Keeps a line of run `run_id` with text `text` (as `clean_text` made
    /// it), timed from `read` (`log_time::line_clock_now` read before the
    /// lock). The oldest waiting line of the run goes when the run has `max`
    /// waiting (only the newest `max` could be kept anyway), and its storage
    /// takes the new text: a run logging past its bound allocates nothing.
    pub(crate) fn push_line(
        &mut self,
        host: &str,
        run_id: &Arc<str>,
        read: i64,
        mut line: PendingLine,
        text: &str,
        max: u32,
    ) {
        if self.host.is_empty() {
            self.host = host.to_string();
        }
        let at = match self
            .lines
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, run_id) || r == run_id)
        {
            Some(i) => i,
            None => {
                self.lines.push((Arc::clone(run_id), RunLines::default()));
                self.lines.len() - 1
            }
        };
        line.time = self.clock.stamp(read);
        let run = &mut self.lines[at].1;
        let dropped = if run.lines.len() >= max.max(1) as usize {
            run.dropped += 1;
            run.lines.pop_front()
        } else {
            None
        };
        line.message = match dropped {
            Some(old) => {
                let mut storage = old.message;
                storage.clear();
                storage.push_str(text);
                storage
            }
            None => text.to_owned(),
        };
        run.lines.push_back(line);
    }

    /// Keeps an outcome, or only counts it when its subtask already has as
    /// many waiting as could be kept.
    pub(crate) fn push_outcome(&mut self, host: &str, o: NewItemOutcome) {
        if self.host.is_empty() {
            self.host = host.to_string();
        }
        let key = (
            Arc::clone(&o.run_id),
            o.subtask_uid.clone(),
            o.subtask,
            o.outcome,
        );
        let waiting = self.pending_per_subtask.entry(key).or_insert(0);
        if *waiting < u64::from(MAX_ITEM_OUTCOMES) {
            *waiting += 1;
            self.outcomes.push(o);
            return;
        }
        match self.counted.iter_mut().find(|c| {
            c.run_id == o.run_id
                && c.subtask_uid == o.subtask_uid
                && c.subtask == o.subtask
                && c.outcome == o.outcome
        }) {
            Some(c) => c.count += 1,
            None => self.counted.push(OutcomesCounted {
                run_id: o.run_id,
                subtask: o.subtask,
                subtask_uid: o.subtask_uid,
                outcome: o.outcome,
                count: 1,
            }),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.outcomes.is_empty() && self.counted.is_empty()
    }

    /// Everything waiting, as one batch (empty when nothing waits).
    pub(crate) fn take(&mut self, max_lines: u32) -> LogBatch {
        if self.is_empty() {
            return LogBatch::default();
        }
        let mut batch = LogBatch {
            host: self.host.clone(),
            pid: std::process::id(),
            max_lines,
            ..LogBatch::default()
        };
        for (run_id, run) in self.lines.drain(..) {
            batch
                .lines
                .extend(run.lines.into_iter().map(|l| NewLogLine {
                    run_id: Arc::clone(&run_id),
                    time: log_time::to_time(l.time),
                    level: l.level,
                    subtask: l.subtask,
                    subtask_uid: l.subtask_uid,
                    message: l.message,
                }));
            if run.dropped > 0 {
                batch.dropped.push(LinesDropped {
                    run_id,
                    count: run.dropped,
                });
            }
        }
        batch.outcomes = std::mem::take(&mut self.outcomes);
        batch.counted = std::mem::take(&mut self.counted);
        self.pending_per_subtask.clear();
        batch
    }
}

/// Which lines of a run `get_run_logs` returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogFilter {
    /// Only lines of this level or more important.
    pub min_level: Option<LogLevel>,
    /// Only lines logged at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only lines stored after the line with this id (a follower's position).
    pub after_id: Option<i64>,
    /// At most this many lines: the newest ones, or with `after_id` the first
    /// ones after it (so that a follower pages forward).
    pub limit: Option<usize>,
}

/// One stored log line of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Increases in the order lines were stored (per run: in the order each
    /// process logged them); a follower asks for lines after the last it saw.
    pub log_id: i64,
    pub run_id: String,
    pub time: DateTime<Utc>,
    pub level: LogLevel,
    pub subtask_number: Option<i64>,
    pub hostname: Option<String>,
    pub process_id: Option<i64>,
    pub message: String,
    /// Set on the marker line only: how many older lines were dropped.
    pub dropped_lines: Option<i64>,
}

/// What a store knows of a run's lines: whether the run exists, how many
/// lines were dropped, and the first line kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogState {
    pub dropped: i64,
    pub first_kept: Option<(i64, DateTime<Utc>)>,
}

/// The marker line readers see before the lines kept, when lines were dropped
/// and the reader asked for lines from before the first one kept.
pub(crate) fn with_marker(
    run_id: &str,
    mut rows: Vec<LogRow>,
    state: &LogState,
    filter: &LogFilter,
) -> Vec<LogRow> {
    let Some((first_id, first_time)) = state.first_kept else {
        return rows;
    };
    let wanted = state.dropped > 0
        && filter.after_id.is_none_or(|a| a < first_id - 1)
        && filter.min_level.is_none_or(|l| l <= LogLevel::Warn)
        // A tail that does not reach the first kept line starts later.
        && rows.first().is_none_or(|r| r.log_id == first_id || filter.min_level.is_some())
        && filter.since.is_none_or(|s| s <= first_time);
    if wanted {
        rows.insert(
            0,
            LogRow {
                // Just before the first line kept: a follower that saw the
                // marker asks for lines after it and gets that line next.
                log_id: first_id - 1,
                run_id: run_id.to_string(),
                time: first_time,
                level: LogLevel::Warn,
                subtask_number: None,
                hostname: None,
                process_id: None,
                message: format!(
                    "[{} earlier log line(s) dropped: a run keeps at most tracking.max_log_lines]",
                    state.dropped
                ),
                dropped_lines: Some(state.dropped),
            },
        );
    }
    rows
}

/// Which item outcomes `get_item_outcomes` returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutcomeFilter {
    pub subtask: Option<u32>,
    pub outcome: Option<Outcome>,
    pub limit: Option<usize>,
}

/// One stored item outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemOutcomeRow {
    pub outcome_id: i64,
    pub run_id: String,
    pub subtask_number: i64,
    pub outcome: Outcome,
    pub item_key: String,
    pub reason: Option<String>,
    pub time: DateTime<Utc>,
    pub hostname: Option<String>,
    pub process_id: Option<i64>,
}

/// How many items of a subtask had an outcome (`total`, exact) and how many of
/// them are kept as rows (`kept`, at most `MAX_ITEM_OUTCOMES`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutcomeCount {
    pub run_id: String,
    pub subtask_number: i64,
    pub outcome: Outcome,
    pub total: i64,
    pub kept: i64,
}

impl RunHandle {
    /// Logs a line on this run (about subtask `subtask` when given). Memory only:
    /// the writer stores it with the next progress write, so the call never
    /// waits for the database. The text is stored as `clean_text` makes it.
    pub fn log(&self, level: LogLevel, message: &str, subtask: Option<u32>) -> Result<()> {
        let s = self.shared();
        let t = s.tracker_inner();
        t.check_fork();
        let subtask_uid = match subtask {
            Some(0) => return Err(Error::invalid("subtask_number", 0u32, "numbers start at 1")),
            Some(n) => s.subtask_ref(n).0.uid,
            None => None,
        };
        let line = PendingLine::new(level, subtask, subtask_uid);
        t.supervisor().add_log_line(
            &t.this_host,
            s.run_id_arc(),
            line,
            &clean_text(message),
            &t.config,
        );
        Ok(())
    }

    /// Records that item `key` of subtask `subtask` failed, and why. Memory only,
    /// like `log`.
    pub fn item_failed(&self, subtask: u32, key: &str, error: &str) -> Result<()> {
        self.item_outcome(subtask, Outcome::Failed, key, Some(error))
    }

    /// Records that item `key` of subtask `subtask` was skipped, and why.
    pub fn item_skipped(&self, subtask: u32, key: &str, reason: Option<&str>) -> Result<()> {
        self.item_outcome(subtask, Outcome::Skipped, key, reason)
    }

    pub fn item_outcome(
        &self,
        subtask: u32,
        outcome: Outcome,
        key: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        if subtask == 0 {
            return Err(Error::invalid("subtask_number", 0u32, "numbers start at 1"));
        }
        let s = self.shared();
        let t = s.tracker_inner();
        t.check_fork();
        let o = NewItemOutcome {
            run_id: Arc::clone(s.run_id_arc()),
            time: Utc::now(),
            subtask,
            subtask_uid: s.subtask_ref(subtask).0.uid,
            outcome,
            key: clean_text(key).into_owned(),
            reason: reason.map(|r| clean_text(r).into_owned()),
        };
        t.supervisor().add_item_outcome(&t.this_host, o);
        Ok(())
    }
}

impl Tracker {
    /// A run's log lines, oldest first (see `LogFilter`). When older lines were
    /// dropped, a marker line (`dropped_lines` set) comes before the first kept.
    pub fn run_logs(&self, run_id: &str, filter: &LogFilter) -> Result<Vec<LogRow>> {
        if filter.limit == Some(0) {
            return Err(Error::invalid("limit", 0usize, "must be at least 1"));
        }
        let (state, rows) = self.read(|st| {
            let state = st.log_state(run_id)?;
            let rows = match state {
                Some(_) => st.run_logs(run_id, filter)?,
                None => Vec::new(),
            };
            Ok((state, rows))
        })?;
        let state = state.ok_or_else(|| Error::not_found("run", run_id))?;
        Ok(with_marker(run_id, rows, &state, filter))
    }

    /// A run's kept item outcomes (see `item_outcome_counts` for exact counts).
    pub fn item_outcomes(
        &self,
        run_id: &str,
        filter: &OutcomeFilter,
    ) -> Result<Vec<ItemOutcomeRow>> {
        if filter.limit == Some(0) {
            return Err(Error::invalid("limit", 0usize, "must be at least 1"));
        }
        self.read(|st| match st.log_state(run_id)? {
            Some(_) => st.item_outcomes(run_id, filter),
            None => Err(Error::not_found("run", run_id)),
        })
    }

    /// How many items of each subtask of a run failed or were skipped.
    pub fn item_outcome_counts(&self, run_id: &str) -> Result<Vec<OutcomeCount>> {
        self.read(|st| match st.log_state(run_id)? {
            Some(_) => st.item_outcome_counts(run_id),
            None => Err(Error::not_found("run", run_id)),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_refuse_others_by_name() {
        assert_eq!("INFO".parse::<LogLevel>().unwrap(), LogLevel::Info);
        assert_eq!("Warning".parse::<LogLevel>().unwrap(), LogLevel::Warn);
        assert_eq!(" debug ".parse::<LogLevel>().unwrap(), LogLevel::Debug);
        let e = "loud".parse::<LogLevel>().unwrap_err().to_string();
        assert!(e.contains("loud"), "{e}");
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::from_code(l.code()), l);
            assert_eq!(l.as_str().parse::<LogLevel>().unwrap(), l);
        }
    }

    #[test]
    fn long_lines_are_cut_at_a_char_boundary_and_say_so() {
        let s = "é".repeat(MAX_LINE_BYTES); // 2 bytes each
        let c = clean_text(&s);
        let kept = c.split(" [cut:").next().unwrap();
        assert!(kept.len() <= MAX_LINE_BYTES && kept.chars().all(|ch| ch == 'é'));
        assert!(c.ends_with(&format!("[cut: {} bytes, {MAX_LINE_BYTES} kept]", s.len())));
        assert_eq!(clean_text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(clean_text("a\0b"), Cow::Owned(_)));
        // Clean text is not copied here (the buffer copies it once).
        assert!(matches!(clean_text("short"), Cow::Borrowed("short")));
    }

    fn line() -> PendingLine {
        PendingLine::new(LogLevel::Info, None, None)
    }

    #[test]
    fn the_buffer_keeps_the_newest_lines_of_a_run_and_counts_the_rest() {
        let mut b = LogBuffer::default();
        let (run_a, run_b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let now = log_time::line_clock_now();
        for i in 0..10 {
            b.push_line("h", &run_a, now, line(), &format!("line {i}"), 4);
        }
        // Found by value as well as by pointer.
        b.push_line("h", &Arc::from("b"), now, line(), "line 0", 4);
        b.push_line("h", &run_b, now, line(), "line 1", 4);
        let batch = b.take(4);
        assert!(b.is_empty());
        let a: Vec<&str> = batch
            .lines
            .iter()
            .filter(|l| &*l.run_id == "a")
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(a, ["line 6", "line 7", "line 8", "line 9"]);
        assert_eq!(
            batch.dropped,
            vec![LinesDropped {
                run_id: Arc::from("a"),
                count: 6
            }]
        );
        assert_eq!(batch.host, "h");
        assert_eq!(batch.lines_per_run(), [("a", 4, 6), ("b", 2, 0)]);
        // Times in the order lines were kept, across runs.
        assert!(batch.lines.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn a_dropped_lines_storage_takes_longer_and_shorter_text() {
        let mut b = LogBuffer::default();
        let run: Arc<str> = Arc::from("r");
        let now = log_time::line_clock_now();
        let long = "x".repeat(100);
        for text in ["short", long.as_str(), "s", "é\u{FFFD}"] {
            b.push_line("h", &run, now, line(), text, 1);
        }
        let batch = b.take(1);
        let kept: Vec<&str> = batch.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(kept, ["é\u{FFFD}"]);
        assert_eq!(batch.dropped[0].count, 3);
    }

    #[test]
    fn outcomes_beyond_what_can_be_kept_are_counted() {
        let mut b = LogBuffer::default();
        let n = MAX_ITEM_OUTCOMES as usize + 25;
        for i in 0..n {
            b.push_outcome(
                "h",
                NewItemOutcome {
                    run_id: Arc::from("r"),
                    time: Utc::now(),
                    subtask: 1,
                    subtask_uid: None,
                    outcome: Outcome::Failed,
                    key: format!("item {i}"),
                    reason: None,
                },
            );
        }
        let batch = b.take(10);
        assert_eq!(batch.outcomes.len(), MAX_ITEM_OUTCOMES as usize);
        assert_eq!(batch.counted.len(), 1);
        assert_eq!(batch.counted[0].count, 25);
    }
}
