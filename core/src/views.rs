//! What the command line and the dashboard show, read the same way for both: a run
//! with the subtask it is working on and its newest resource sample, a run's whole
//! record, history with the command line's filters, and the parsing of those
//! filters (`tasker status`, `watch`, `history`, `show` and `tasker serve`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Local, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::query::{EventRow, HistoryFilter, IoRow, RunRow, SubtaskRow};
use crate::sampler::Sample;
use crate::{Status, Tracker};

/// A run with the subtask it is working on. Its ETA and interval, and those of
/// its subtasks, are the core's (`RunRow::eta_*`, `SubtaskRow::eta_*`).
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: RunRow,
    /// The subtask being worked on (active runs only).
    pub current: Option<SubtaskRow>,
    /// Every subtask (only where asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtasks: Option<Vec<SubtaskRow>>,
    /// The newest resource sample of an active run's process (CPU, memory).
    pub resources: Option<Sample>,
}

/// Adds the current subtask to active runs: the subtasks of all of them in one
/// query, whatever their number (a dashboard polls this twice a second).
pub fn run_views(t: &Tracker, rows: Vec<RunRow>, keep_subtasks: bool) -> Result<Vec<RunView>> {
    run_views_cached(t, rows, keep_subtasks, &HashMap::new())
}

/// Like `run_views`, using subtasks already read (by run id) where it has them.
pub fn run_views_cached(
    t: &Tracker,
    rows: Vec<RunRow>,
    keep_subtasks: bool,
    known: &HashMap<String, Vec<SubtaskRow>>,
) -> Result<Vec<RunView>> {
    let to_read: Vec<RunRow> = rows
        .iter()
        .filter(|r| r.status.is_active())
        .filter(|r| r.run_id.as_ref().is_some_and(|id| !known.contains_key(id)))
        .cloned()
        .collect();
    // A run deleted between the two reads simply has no subtasks here.
    let mut read = t.subtasks_of(&to_read)?;
    let active: Vec<&str> = rows
        .iter()
        .filter(|r| r.status.is_active())
        .filter_map(|r| r.run_id.as_deref())
        .collect();
    let mut resources = t.latest_samples(&active)?;
    let mut out = Vec::with_capacity(rows.len());
    for run in rows {
        let subs: Vec<SubtaskRow> = match run.run_id.as_ref() {
            Some(id) => match known.get(id) {
                Some(c) => c.clone(),
                None => read.remove(id).unwrap_or_default(),
            },
            None => Vec::new(),
        };
        let current = current_subtask(&run, &subs).cloned();
        out.push(RunView {
            current,
            subtasks: keep_subtasks.then_some(subs),
            resources: run.run_id.as_ref().and_then(|id| resources.remove(id)),
            run,
        });
    }
    Ok(out)
}

/// The subtask a run is working on: the announced current one, else the last active one.
pub fn current_subtask<'a>(r: &RunRow, subs: &'a [SubtaskRow]) -> Option<&'a SubtaskRow> {
    r.current_subtask
        .and_then(|n| subs.iter().find(|s| s.subtask_number == n))
        .filter(|s| s.status.is_active())
        .or_else(|| subs.iter().rev().find(|s| s.status.is_active()))
        .or_else(|| {
            r.current_subtask
                .and_then(|n| subs.iter().find(|s| s.subtask_number == n))
        })
}

/// Which statuses to keep: names, plus `active` (STARTED/RUNNING/PAUSED) and `lost`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusSel {
    pub statuses: Vec<Status>,
    pub active: bool,
    pub lost: bool,
}

impl StatusSel {
    /// Status names (any case, comma separated), `active` and `lost`. The error says
    /// which value is not a status.
    pub fn parse(values: &[String]) -> std::result::Result<StatusSel, String> {
        let mut sel = StatusSel::default();
        for v in values.iter().flat_map(|v| v.split(',')) {
            let v = v.trim();
            match v.to_ascii_lowercase().as_str() {
                "" => {}
                "active" => sel.active = true,
                "lost" => sel.lost = true,
                _ => sel
                    .statuses
                    .push(v.parse().map_err(|e: crate::Error| e.to_string())?),
            }
        }
        Ok(sel)
    }

    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty() && !self.active && !self.lost
    }

    /// A single status the store can filter on by itself.
    pub fn single(&self) -> Option<Status> {
        match (&self.statuses[..], self.active, self.lost) {
            ([s], false, false) => Some(*s),
            _ => None,
        }
    }

    /// The statuses named, with STARTED, RUNNING and PAUSED for `active` (not `lost`,
    /// which is known only once a run is read).
    pub fn statuses_with_active(&self) -> Vec<Status> {
        let mut all = self.statuses.clone();
        if self.active {
            for s in [Status::Started, Status::Running, Status::Paused] {
                if !all.contains(&s) {
                    all.push(s);
                }
            }
        }
        all
    }

    pub fn keeps(&self, r: &RunRow) -> bool {
        self.is_empty()
            || self.statuses.contains(&r.status)
            || (self.active && r.status.is_active())
            || (self.lost && r.lost)
    }
}

/// The id of the newest event, found with O(log n) indexed probes (the core
/// reads events oldest first only).
pub fn last_event_id(t: &Tracker) -> Result<i64> {
    let beyond = |x: i64| -> Result<bool> { Ok(t.events_after(x, None, 1)?.is_empty()) };
    if beyond(0)? {
        return Ok(0);
    }
    let mut lo = 0i64; // an event exists after lo
    let mut hi = 1024i64;
    while !beyond(hi)? {
        lo = hi;
        hi = hi.saturating_mul(2);
    }
    // Invariant: an event exists after lo; none after hi.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if beyond(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// Runs, newest first, with filters the store applies where it can (stage, task, one
/// status, since) and the others applied here (several statuses, active, lost, host).
pub fn history_rows(
    t: &Tracker,
    stage: &Option<String>,
    task: &Option<String>,
    sel: &StatusSel,
    host: &Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<usize>,
) -> Result<Vec<RunRow>> {
    if sel.statuses.is_empty() && (sel.active || sel.lost) {
        // Only active (or lost, which are active) runs: no need to read the whole history.
        let mut rows: Vec<RunRow> = t
            .active_runs()?
            .into_iter()
            .filter(|r| stage.as_ref().is_none_or(|s| *s == r.stage_name))
            .filter(|r| task.as_ref().is_none_or(|x| *x == r.task_name))
            .filter(|r| since.is_none_or(|s| r.start_time.is_some_and(|st| st >= s)))
            .filter(|r| sel.keeps(r))
            .filter(|r| host.is_none() || r.hostname == *host)
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.start_time, r.run_id.clone())));
        rows.truncate(limit.unwrap_or(usize::MAX));
        return Ok(rows);
    }
    let client_side = !sel.is_empty() && sel.single().is_none();
    let rows = t.history(&HistoryFilter {
        stage: stage.clone(),
        task: task.clone(),
        status: sel.single(),
        since,
        host: host.clone(),
        // Filters the store cannot apply are applied here, over all matching runs.
        limit: if client_side {
            Some(usize::MAX)
        } else {
            Some(limit.unwrap_or(usize::MAX))
        },
    })?;
    Ok(rows
        .into_iter()
        .filter(|r| sel.keeps(r))
        .filter(|r| host.is_none() || r.hostname == *host)
        .take(limit.unwrap_or(usize::MAX))
        .collect())
}

/// One run and everything recorded about it (`tasker show`, the dashboard's run page).
#[derive(Debug, Serialize)]
pub struct RunDetail {
    /// With the core's ETA and interval (`eta_seconds`, `eta_low`, `eta_high`).
    pub run: RunRow,
    pub subtasks: Vec<SubtaskRow>,
    pub events: Vec<EventRow>,
    /// Inputs and outputs the run recorded.
    pub io: Vec<IoRow>,
    /// Resource samples of its process, oldest first (thinned as they age).
    pub samples: Vec<Sample>,
}

pub fn run_detail(t: &Tracker, run_id: &str) -> Result<RunDetail> {
    let run = t.run(run_id)?;
    let mut subtasks = t.subtasks_of(std::slice::from_ref(&run))?;
    Ok(RunDetail {
        subtasks: subtasks.remove(run_id).unwrap_or_default(),
        events: t.events_after(0, Some(run_id), 10_000)?,
        io: t.run_io(run_id)?,
        samples: t.samples(run_id)?,
        run,
    })
}

/// Parses `30d`, `12h`, `15m`, `45s`, `2w` (or a sum such as `1d12h`).
pub fn parse_age(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::zero();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let too_long = || format!("{s:?} is too long ago (at most {MAX_AGE_DAYS} days)");
        let n: i64 = num.parse().map_err(|_| match num.is_empty() {
            true => format!("{s:?}: expected a number before {c:?}"),
            false => too_long(),
        })?;
        num.clear();
        let unit = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => return Err(format!("{s:?}: unknown unit {c:?} (use s, m, h, d or w)")),
        };
        total = unit
            .and_then(|u| total.checked_add(&u))
            .filter(|t| t.num_days() <= MAX_AGE_DAYS)
            .ok_or_else(too_long)?;
    }
    if !num.is_empty() {
        return Err(format!(
            "{s:?}: a number needs a unit (s, m, h, d or w), e.g. 30d"
        ));
    }
    Ok(total)
}

/// The longest age an argument may give: a millennium (longer ones are typing
/// mistakes, and times before year 1000 are out of what is stored).
const MAX_AGE_DAYS: i64 = 365_250;

/// A point in time: an age (`2d`, meaning that long ago) or an RFC 3339 / `YYYY-MM-DD` date.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(Local).earliest())
            .ok_or_else(|| format!("{s:?} is not a valid local date"))?;
        return Ok(t.with_timezone(&Utc));
    }
    parse_age(s)
        .and_then(|d| {
            now.checked_sub_signed(d)
                .ok_or_else(|| format!("{s:?} is too long ago"))
        })
        .map_err(|e| format!("{e}; or give a date (2026-11-01 or RFC 3339)"))
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("30d").unwrap(), Duration::days(30));
        assert_eq!(
            parse_age("1d12h").unwrap(),
            Duration::hours(36),
            "sums of units"
        );
        assert!(parse_age("30").is_err());
        assert!(parse_age("3x").is_err());
    }

    #[test]
    fn status_selections_name_the_bad_value() {
        let sel = StatusSel::parse(&["failed,active".into()]).unwrap();
        assert_eq!(sel.statuses, vec![Status::Failed]);
        assert!(sel.active && !sel.lost);
        assert!(StatusSel::parse(&["DONE".into()])
            .unwrap_err()
            .contains("DONE"));
    }
}
