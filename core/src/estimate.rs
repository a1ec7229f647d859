//! One ETA estimator for every skin. The query layer, the CLI and the R
//! package each computed their own ETA and disagreed; these are pure functions
//! over plain facts (a subtask's counts and times, durations of past runs), no
//! database, so the query layer can call them on the rows it read and every
//! skin shows the same numbers.
//!
//! An [`Eta`] holds three quantiles of what we believe about the seconds left:
//! `low` (10th percentile), `seconds` (median), `high` (90th): an 80% interval.
//!
//! # The model
//!
//! **Live rate** (a subtask): n of N items done in t seconds gives the point
//! estimate T = (N - n)·t/n. Its relative error r adds three sources in
//! quadrature: counting (items arrive like a Poisson count, so the rate is
//! known to `Z80`/√n), drift (rates change within a subtask: `DRIFT` = 0.15 that
//! no number of items removes) and warm-up (a rate seen for a few seconds says
//! little: `WARMUP_SECONDS`/t, 10 s). The interval is [T/(1+r), T·(1+r)]:
//! finite whatever r, wide on little evidence, narrowing as the end nears (T
//! shrinks while n and t grow). A subtask with only a percent counts percent
//! points as its items (N = 100).
//!
//! **History** (durations of past successful runs, or of past subtasks of the
//! same name), conditioned on the elapsed time e: only durations longer than e
//! are still possible, so the estimate is their p10/p50/p90 minus e. Once e is
//! past the whole history's p90 the history says little and is not used. A
//! sample of k durations is widened to at least ×/÷ (1 + `SAMPLE_FLOOR`/√k)
//! around its median (0.3): a few past runs understate the spread, and one run
//! is not certainty.
//!
//! **Blend**: with both, our belief is a mixture, weight f (the done fraction)
//! on the live rate and 1 - f on history. Each estimate stands for a
//! piecewise-linear distribution through its quantiles (`knots`); the blend
//! reports the mixture's quantiles, so when the two disagree the interval spans
//! both instead of settling between them.
//!
//! **Run**: remaining = active subtasks + pending ones.
//! - An active subtask: its own estimate (rate and history by name), else this
//!   run's completed durations conditioned on its elapsed time.
//! - A pending subtask (known but not started: history by name; plus
//!   `total_subtasks` - known, unnamed): the mean duration of this run's
//!   completed subtasks (interval: their p10/p90, widened as above), else the
//!   run history's median shared out among the subtasks.
//! - Overlap: c = the most subtasks seen running at once in this run. c = 1
//!   (sequential) adds everything; c ≥ 2 (parallel) takes the longer of the
//!   longest active subtask and all the work divided by c. Sums add quantile
//!   by quantile (subtasks of one run tend to be slow together): conservative.
//! - When the pending work cannot be estimated (nothing completed, no history)
//!   the run's own pace stands in: the live-rate model with subtasks as items.
//!
//! This is blended with run history by the run's done fraction (sum of
//! subtask fractions over the total). With no total, the subtasks known so far
//! are a lower bound, so each quantile is the larger of the two (without
//! history they are all there is). A run never ends before its active
//! subtasks: each quantile is at least theirs.
//!
//! **Edges**: a done subtask gets `Some` zero (nothing left is an answer; `None`
//! means we do not know); one that ended without finishing (failed, cancelled)
//! gets `None`. Paused time counts as elapsed; skipped subtasks count as
//! completed in their (short) time. Every output is finite, in
//! [0, `MAX_SECONDS`] and ordered, whatever the input.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// z of the central 80% of a normal distribution (10th to 90th percentile).
const Z80: f64 = 1.281_551_565_544_600_4;
/// Relative error of a rate that more items do not remove: rates drift.
const DRIFT: f64 = 0.15;
/// Relative error of a rate seen for t seconds, from start-up effects:
/// WARMUP_SECONDS / t (1 after 10 s, 0.1 after 100 s).
const WARMUP_SECONDS: f64 = 10.0;
/// A sample of k durations spans at least ×/÷ (1 + SAMPLE_FLOOR/√k).
const SAMPLE_FLOOR: f64 = 0.3;
/// Tails of the distribution behind an estimate, as a share of the half-width
/// next to them (a normal's density at p10 kept out to where it reaches 0).
const TAIL: f64 = 0.25;
/// Cap on any duration read or returned (about 31,700 years): keeps sums finite.
const MAX_SECONDS: f64 = 1e12;
/// Cap on the relative error of a rate, so T/(1+r) stays a number.
const MAX_RELATIVE_ERROR: f64 = 1e6;

/// An estimate of the seconds left, with an interval (about 80%: low = 10th,
/// high = 90th percentile of what we believe).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    pub seconds: f64,
    pub low: f64,
    pub high: f64,
    pub basis: Basis,
}

/// What an [`Eta`] rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// This run's own progress only (item rate, its completed subtasks).
    Rate,
    /// Past runs only.
    History,
    /// Both.
    Blend,
}

/// What the estimator needs of a subtask.
#[derive(Clone, Debug, PartialEq)]
pub struct SubtaskFacts<'a> {
    pub name: &'a str,
    /// STARTED, RUNNING or PAUSED.
    pub active: bool,
    /// COMPLETED or SKIPPED.
    pub done: bool,
    pub items_total: Option<i64>,
    pub items_complete: i64,
    /// Set explicitly when there are no item counts.
    pub percent: Option<f64>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
}

/// Durations (seconds) of past successful runs of the task, and of past
/// completed subtasks by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub run_seconds: Vec<f64>,
    pub subtask_seconds: HashMap<String, Vec<f64>>,
}

/// The seconds left of one subtask, from its item rate (or percent) and the
/// durations of past subtasks of its name. `Some` zero when it is done; `None`
/// when it ended without finishing, or when there is nothing to go on.
pub fn subtask_eta(s: &SubtaskFacts, history: Option<&[f64]>, now: DateTime<Utc>) -> Option<Eta> {
    if s.done {
        return Some(Eta::zero(Basis::Rate));
    }
    if !s.active && s.ended.is_some() {
        return None;
    }
    // A subtask that has not started has nothing elapsed and no rate.
    let elapsed = match (s.active, s.started) {
        (true, Some(t)) => seconds_between(t, now),
        _ => 0.0,
    };
    let progress = progress(s).filter(|_| s.active);
    let live = progress.and_then(|(done, total)| from_rate(done, total, elapsed));
    let past = history.and_then(|h| from_history(h, elapsed, Basis::History));
    let fraction = progress.map_or(0.0, |(done, total)| done / total);
    match (live, past) {
        (Some(l), Some(p)) => Some(mix(l, p, fraction)),
        (l, p) => l.or(p),
    }
}

/// The seconds left of a run that started at `started`, from its subtasks
/// (`total_subtasks` announced, `subtasks` known so far) and its history; see
/// the module documentation. `None` when there is nothing to go on.
pub fn run_eta(
    started: DateTime<Utc>,
    total_subtasks: Option<i64>,
    subtasks: &[SubtaskFacts],
    history: &History,
    now: DateTime<Utc>,
) -> Option<Eta> {
    let elapsed = seconds_between(started, now);
    let by_name = |s: &SubtaskFacts| history.subtask_seconds.get(s.name).map(Vec::as_slice);
    let completed: Vec<f64> = subtasks
        .iter()
        .filter(|s| s.done)
        .filter_map(|s| Some(seconds_between(s.started?, s.ended?)))
        .collect();
    let known = i64::try_from(subtasks.len()).unwrap_or(i64::MAX);
    let total = total_subtasks.filter(|&t| t > 0);
    let units = total.map_or(known, |t| t.max(known));
    let concurrency = concurrency(subtasks, now);

    let active: Vec<Option<Eta>> = subtasks
        .iter()
        .filter(|s| s.active)
        .map(|s| {
            subtask_eta(s, by_name(s), now).or_else(|| {
                let elapsed = s.started.map_or(0.0, |t| seconds_between(t, now));
                from_history(&completed, elapsed, Basis::Rate)
            })
        })
        .collect();
    let longest_active = active.iter().flatten().copied().reduce(Eta::max);

    let unit = from_mean(&completed).or_else(|| {
        let share = concurrency as f64 / units.max(1) as f64;
        from_history(&history.run_seconds, 0.0, Basis::History).map(|r| r.times(share))
    });
    let mut pending: Vec<Option<Eta>> = subtasks
        .iter()
        .filter(|s| !s.active && !s.done && s.ended.is_none())
        .map(|s| subtask_eta(s, by_name(s), now).or(unit))
        .collect();
    let unnamed = total.map_or(0, |t| t - known).max(0);
    if unnamed > 0 {
        pending.push(unit.map(|u| u.times(unnamed as f64)));
    }

    let fraction_sum: f64 = subtasks.iter().map(done_fraction).sum();
    let composed = if units > 0 {
        compose(&active, &pending, concurrency)
            .or_else(|| total.and_then(|_| from_rate(fraction_sum, units as f64, elapsed)))
    } else {
        None
    };
    let past = from_history(&history.run_seconds, elapsed, Basis::History);
    let estimate = match (composed, past) {
        (Some(a), Some(b)) => match total {
            Some(_) => mix(a, b, fraction_sum / units as f64),
            None => a.max(b),
        },
        (a, b) => a.or(b)?,
    };
    Some(match longest_active {
        Some(l) => estimate.at_least(l),
        None => estimate,
    })
}

/// Linear-interpolation percentile (R's type 7, numpy's default) of unsorted
/// values; `None` when there are no finite values or `q` is NaN. Non-finite
/// values are ignored; `q` is clamped to [0, 1]. O(n): selection, not a sort.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| quantile(&mut v, q))
}

impl Basis {
    fn and(self, other: Basis) -> Basis {
        if self == other {
            self
        } else {
            Basis::Blend
        }
    }
}

impl Eta {
    /// Tidied: each value clamped to [0, MAX_SECONDS] and the three ordered.
    fn new(low: f64, seconds: f64, high: f64, basis: Basis) -> Eta {
        let mut v = [low, seconds, high].map(tidy);
        v.sort_by(f64::total_cmp);
        Eta {
            low: v[0],
            seconds: v[1],
            high: v[2],
            basis,
        }
    }

    fn zero(basis: Basis) -> Eta {
        Eta::new(0.0, 0.0, 0.0, basis)
    }

    fn plus(self, o: Eta) -> Eta {
        Eta::new(
            self.low + o.low,
            self.seconds + o.seconds,
            self.high + o.high,
            self.basis.and(o.basis),
        )
    }

    fn times(self, k: f64) -> Eta {
        Eta::new(self.low * k, self.seconds * k, self.high * k, self.basis)
    }

    /// Quantile by quantile, the larger.
    fn max(self, o: Eta) -> Eta {
        Eta::new(
            self.low.max(o.low),
            self.seconds.max(o.seconds),
            self.high.max(o.high),
            self.basis.and(o.basis),
        )
    }

    /// Raised to `floor` quantile by quantile; the basis changes only if it did.
    fn at_least(self, floor: Eta) -> Eta {
        let raised = self.max(floor);
        if (raised.low, raised.seconds, raised.high) == (self.low, self.seconds, self.high) {
            self
        } else {
            raised
        }
    }
}

fn tidy(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, MAX_SECONDS)
    }
}

/// Seconds from `from` to `to`, never negative.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    tidy((to - from).num_milliseconds() as f64 / 1000.0)
}

/// Units done and in all: items when the total is known, else percent points.
fn progress(s: &SubtaskFacts) -> Option<(f64, f64)> {
    match s.items_total {
        Some(total) if total > 0 => Some((s.items_complete.clamp(0, total) as f64, total as f64)),
        _ => s
            .percent
            .filter(|p| p.is_finite())
            .map(|p| (p.clamp(0.0, 100.0), 100.0)),
    }
}

/// How much of a subtask is done, 0 to 1.
fn done_fraction(s: &SubtaskFacts) -> f64 {
    if s.done {
        1.0
    } else if s.active {
        progress(s).map_or(0.0, |(done, total)| done / total)
    } else {
        0.0
    }
}

/// The live-rate estimate: `done` of `total` units in `elapsed` seconds.
fn from_rate(done: f64, total: f64, elapsed: f64) -> Option<Eta> {
    if done >= total {
        return Some(Eta::zero(Basis::Rate));
    }
    if done <= 0.0 || elapsed <= 0.0 {
        return None;
    }
    let t = ((total - done) * elapsed / done).min(MAX_SECONDS);
    let counting = Z80 * Z80 / done;
    let warmup = (WARMUP_SECONDS / elapsed).powi(2);
    let r = (counting + DRIFT * DRIFT + warmup)
        .sqrt()
        .min(MAX_RELATIVE_ERROR);
    Some(Eta::new(t / (1.0 + r), t, t * (1.0 + r), Basis::Rate))
}

/// Past durations conditioned on `elapsed`: the quantiles of those longer than
/// it, minus it. `None` when `elapsed` is past the p90 of them all.
fn from_history(durations: &[f64], elapsed: f64, basis: Basis) -> Option<Eta> {
    let mut longer = clean(durations);
    if longer.is_empty() || elapsed > quantile(&mut longer, 0.9) {
        return None;
    }
    longer.retain(|&d| d > elapsed);
    if longer.is_empty() {
        return None;
    }
    let median = quantile(&mut longer, 0.5);
    let (low, high) = widen(
        quantile(&mut longer, 0.1),
        median,
        quantile(&mut longer, 0.9),
        longer.len(),
    );
    Some(Eta::new(
        low - elapsed,
        median - elapsed,
        high - elapsed,
        basis,
    ))
}

/// One more subtask like those completed in this run: their mean, with their
/// p10 and p90 (widened for a small sample) as the interval.
fn from_mean(durations: &[f64]) -> Option<Eta> {
    let mut v = clean(durations);
    if v.is_empty() {
        return None;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let (low, high) = widen(quantile(&mut v, 0.1), mean, quantile(&mut v, 0.9), v.len());
    Some(Eta::new(low, mean, high, Basis::Rate))
}

/// The interval of a sample of `k`, at least ×/÷ (1 + SAMPLE_FLOOR/√k) around `mid`.
fn widen(low: f64, mid: f64, high: f64, k: usize) -> (f64, f64) {
    let factor = 1.0 + SAMPLE_FLOOR / (k.max(1) as f64).sqrt();
    (low.min(mid / factor), high.max(mid * factor))
}

/// Durations that can be used: finite, not negative, capped.
fn clean(durations: &[f64]) -> Vec<f64> {
    durations
        .iter()
        .copied()
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| d.min(MAX_SECONDS))
        .collect()
}

/// Type 7 quantile of a non-empty slice without NaN (reorders it).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let i = (h.floor() as usize).min(v.len() - 1);
    let frac = h - i as f64;
    let (_, a, above) = v.select_nth_unstable_by(i, f64::total_cmp);
    let a = *a;
    if frac <= 0.0 || above.is_empty() {
        return a;
    }
    let b = above.iter().copied().fold(f64::INFINITY, f64::min);
    let x = a + (b - a) * frac;
    // b - a overflows only for values near ±f64::MAX of opposite signs.
    let x = if x.is_finite() {
        x
    } else {
        a * (1.0 - frac) + b * frac
    };
    x.clamp(a, b)
}

/// The distribution an estimate stands for: a piecewise-linear CDF through
/// (low, 0.1), (seconds, 0.5), (high, 0.9), with tails out to 0 and 1.
fn knots(e: &Eta) -> [(f64, f64); 5] {
    [
        ((e.low - TAIL * (e.seconds - e.low)).max(0.0), 0.0),
        (e.low, 0.1),
        (e.seconds, 0.5),
        (e.high, 0.9),
        (e.high + TAIL * (e.high - e.seconds), 1.0),
    ]
}

fn cdf(knots: &[(f64, f64); 5], x: f64) -> f64 {
    if x < knots[0].0 {
        return 0.0;
    }
    for w in knots.windows(2) {
        let ((x0, p0), (x1, p1)) = (w[0], w[1]);
        // Here x >= x0, so x < x1 means a segment of positive length.
        if x < x1 {
            return p0 + (p1 - p0) * (x - x0) / (x1 - x0);
        }
    }
    1.0
}

/// The mixture of `a` (weight `weight_a`) and `b`, by its quantiles.
fn mix(a: Eta, b: Eta, weight_a: f64) -> Eta {
    let w = if weight_a.is_nan() {
        0.5
    } else {
        weight_a.clamp(0.0, 1.0)
    };
    if w >= 1.0 {
        return a;
    }
    if w <= 0.0 {
        return b;
    }
    let (ka, kb) = (knots(&a), knots(&b));
    let (from, to) = (ka[0].0.min(kb[0].0), ka[4].0.max(kb[4].0));
    let at = |q: f64| {
        // Bisection for the smallest x with F(x) >= q; F is monotone.
        let (mut lo, mut hi) = (from, to);
        for _ in 0..64 {
            let mid = lo + (hi - lo) / 2.0;
            if w * cdf(&ka, mid) + (1.0 - w) * cdf(&kb, mid) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    Eta::new(at(0.1), at(0.5), at(0.9), a.basis.and(b.basis))
}

/// The most subtasks of the run seen running at the same moment (at least 1).
fn concurrency(subtasks: &[SubtaskFacts], now: DateTime<Utc>) -> usize {
    let mut events: Vec<(DateTime<Utc>, i32)> = Vec::with_capacity(2 * subtasks.len());
    for s in subtasks {
        let Some(start) = s.started else { continue };
        let end = match (s.active, s.ended) {
            (true, _) => now,
            (false, Some(end)) => end,
            (false, None) => continue,
        };
        if end > start {
            events.push((start, 1));
            events.push((end, -1));
        }
    }
    // At equal times an end sorts before a start: back to back is not overlap.
    events.sort_unstable();
    let (mut running, mut most) = (0i32, 1i32);
    for (_, step) in events {
        running += step;
        most = most.max(running);
    }
    most as usize
}

/// Combines the estimates of the active and pending subtasks (`None` if any
/// is unknown) for a run whose subtasks run `concurrency` at a time.
fn compose(active: &[Option<Eta>], pending: &[Option<Eta>], concurrency: usize) -> Option<Eta> {
    let active: Vec<Eta> = active.iter().copied().collect::<Option<_>>()?;
    let pending: Vec<Eta> = pending.iter().copied().collect::<Option<_>>()?;
    let work = active
        .iter()
        .chain(&pending)
        .copied()
        .reduce(Eta::plus)
        .unwrap_or(Eta::zero(Basis::Rate));
    if concurrency <= 1 {
        return Some(work);
    }
    let spread = work.times(1.0 / concurrency as f64);
    Some(active.into_iter().fold(spread, Eta::max))
}

#[cfg(test)]
mod test {
    use super::*;

    /// splitmix64: seeded, enough for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }

        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[(self.next() % xs.len() as u64) as usize]
        }

        /// Exponential with mean 1 / rate.
        fn exponential(&mut self, rate: f64) -> f64 {
            -(1.0 - self.unit()).ln() / rate
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    /// `s` seconds after `t0()`, to the millisecond.
    fn at(s: f64) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds((s * 1000.0).round() as i64)
    }

    fn pending(name: &str) -> SubtaskFacts<'_> {
        SubtaskFacts {
            name,
            active: false,
            done: false,
            items_total: None,
            items_complete: 0,
            percent: None,
            started: None,
            ended: None,
        }
    }

    /// Active since `t0()`, `complete` of `total` items.
    fn active(name: &str, complete: i64, total: i64) -> SubtaskFacts<'_> {
        SubtaskFacts {
            active: true,
            items_total: Some(total),
            items_complete: complete,
            started: Some(t0()),
            ..pending(name)
        }
    }

    fn contains(e: &Eta, x: f64) -> bool {
        e.low - 1e-6 <= x && x <= e.high + 1e-6
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    fn sound(e: &Eta) -> bool {
        [e.low, e.seconds, e.high].iter().all(|x| x.is_finite())
            && 0.0 <= e.low
            && e.low <= e.seconds
            && e.seconds <= e.high
    }

    #[test]
    fn percentile_is_type_7() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[f64::NAN, f64::INFINITY], 0.5), None);
        for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
            assert_eq!(percentile(&[7.0], q), Some(7.0));
        }
        // Two values: h = q, so the value is 1 + 2q.
        for (q, want) in [
            (0.0, 1.0),
            (0.1, 1.2),
            (0.25, 1.5),
            (0.5, 2.0),
            (0.9, 2.8),
            (1.0, 3.0),
        ] {
            assert!(close(percentile(&[3.0, 1.0], q).unwrap(), want), "q {q}");
        }
        // Sorted: 1 1 2 3 4 5 6 9; h = 7q.
        let v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        for (q, want) in [
            (0.0, 1.0),
            (0.1, 1.0),   // h 0.7: 1 + 0.7 (1 - 1)
            (0.25, 1.75), // h 1.75: 1 + 0.75 (2 - 1)
            (0.5, 3.5),   // h 3.5: 3 + 0.5 (4 - 3)
            (0.9, 6.9),   // h 6.3: 6 + 0.3 (9 - 6)
            (1.0, 9.0),
        ] {
            assert!(close(percentile(&v, q).unwrap(), want), "q {q}");
        }
        // q is clamped, NaN q has no answer, non-finite values are ignored.
        assert_eq!(percentile(&v, -3.0), Some(1.0));
        assert_eq!(percentile(&v, 7.0), Some(9.0));
        assert_eq!(percentile(&v, f64::NAN), None);
        let with_junk = [f64::NAN, 3.0, f64::NEG_INFINITY, 1.0, f64::INFINITY];
        assert!(close(percentile(&with_junk, 0.5).unwrap(), 2.0));
        // Values near the ends of f64 stay finite.
        let p = percentile(&[-f64::MAX, f64::MAX], 0.5).unwrap();
        assert!(p.is_finite());
    }

    #[test]
    fn a_steady_rate_is_inside_an_interval_that_narrows() {
        // 1,000 items at 4 items/s: 250 s in all.
        let mut widths = vec![];
        for p in [0.1, 0.5, 0.9] {
            let elapsed = 250.0 * p;
            let s = active("load", (1000.0 * p) as i64, 1000);
            let e = subtask_eta(&s, None, at(elapsed)).unwrap();
            assert_eq!(e.basis, Basis::Rate);
            assert!(sound(&e));
            assert!(close(e.seconds, 250.0 - elapsed), "{p}: {e:?}");
            assert!(contains(&e, 250.0 - elapsed), "{p}: {e:?}");
            widths.push(e.high - e.low);
        }
        assert!(widths[0] > widths[1] && widths[1] > widths[2], "{widths:?}");
    }

    #[test]
    fn poisson_arrivals_fall_inside_the_interval_at_least_80_percent_of_the_time() {
        let mut rng = Rng(7);
        let fractions = [0.1, 0.5, 0.9];
        let mut hits = [0usize; 3];
        let trials = 400;
        for _ in 0..trials {
            let rate = rng.range(0.5, 50.0);
            let n = rng.range(200.0, 5000.0) as usize;
            let mut arrivals = Vec::with_capacity(n);
            let mut t = 0.0;
            for _ in 0..n {
                t += rng.exponential(rate);
                arrivals.push(t);
            }
            for (k, p) in fractions.iter().enumerate() {
                let done = (n as f64 * p) as usize;
                let now = arrivals[done - 1] + 0.001;
                let s = active("x", done as i64, n as i64);
                let e = subtask_eta(&s, None, at(now)).unwrap();
                hits[k] += usize::from(contains(&e, arrivals[n - 1] - now));
            }
        }
        for (k, h) in hits.iter().enumerate() {
            let coverage = *h as f64 / trials as f64;
            assert!(coverage >= 0.8, "at {}: {coverage}", fractions[k]);
        }
    }

    #[test]
    fn little_evidence_gives_a_wide_interval() {
        // Both 10% done at the same rate: 2 items in 1 s, or 2,000 in 1,000 s.
        let few = subtask_eta(&active("a", 2, 20), None, at(1.0)).unwrap();
        let many = subtask_eta(&active("a", 2000, 20000), None, at(1000.0)).unwrap();
        let ratio = |e: &Eta| e.high / e.low;
        assert!(ratio(&few) > 10.0, "{few:?}");
        assert!(ratio(&many) < 1.5, "{many:?}");
        // A percent is counted as that many items out of 100.
        let mut pct = active("p", 0, 0);
        pct.items_total = None;
        pct.percent = Some(25.0);
        let e = subtask_eta(&pct, None, at(100.0)).unwrap();
        assert_eq!(e.basis, Basis::Rate);
        assert!(close(e.seconds, 300.0));
        assert!(ratio(&e) > ratio(&many));
    }

    #[test]
    fn subtask_history_is_blended_in_and_dropped_once_overrun() {
        // Past runs of "load": 200, 202, ..., 238 s (p10 203.8, p50 219, p90 234.2).
        let past: Vec<f64> = (0..20).map(|i| 200.0 + 2.0 * i as f64).collect();
        // No items yet: history alone, conditioned on 30 s elapsed.
        let none = active("load", 0, 1000);
        let e = subtask_eta(&none, Some(&past), at(30.0)).unwrap();
        assert_eq!(e.basis, Basis::History);
        assert!(close(e.seconds, 219.0 - 30.0) && close(e.low, 203.8 - 30.0));
        assert!(close(e.high, 234.2 - 30.0));
        // Conditioning: after 225 s only 226..238 remain possible.
        let e = subtask_eta(&none, Some(&past), at(225.0)).unwrap();
        assert!(close(e.seconds, 232.0 - 225.0), "{e:?}");
        // Past the history's p90 the history is not used.
        assert_eq!(subtask_eta(&none, Some(&past), at(235.0)), None);
        let half = active("load", 500, 1000);
        let rate_only = subtask_eta(&half, None, at(235.0)).unwrap();
        assert_eq!(subtask_eta(&half, Some(&past), at(235.0)), Some(rate_only));

        // Live rate says 50 s are left, history about 119: the blend spans both.
        let live = subtask_eta(&half, None, at(50.0)).unwrap();
        let hist = subtask_eta(&none, Some(&past), at(50.0)).unwrap();
        let e = subtask_eta(&half, Some(&past), at(50.0)).unwrap();
        assert_eq!(e.basis, Basis::Blend);
        assert!(sound(&e));
        assert!(e.low <= live.seconds && hist.seconds <= e.high, "{e:?}");
        assert!(
            live.seconds < e.seconds && e.seconds < hist.seconds,
            "{e:?}"
        );
        // The live rate weighs more as the subtask nears its end: where the
        // blend lies between the live rate (0) and history (1), 50 s in.
        let later: Vec<f64> = past.iter().map(|d| d + 1000.0).collect();
        let position = |p: f64| {
            let now = at(50.0);
            let s = active("load", (1000.0 * p) as i64, 1000);
            let live = subtask_eta(&s, None, now).unwrap().seconds;
            let hist = subtask_eta(&none, Some(&later), now).unwrap().seconds;
            let blend = subtask_eta(&s, Some(&later), now).unwrap().seconds;
            (blend - live) / (hist - live)
        };
        let (early, late) = (position(0.2), position(0.8));
        assert!(0.0 < late && late < early && early < 1.0, "{early} {late}");
    }

    #[test]
    fn done_stopped_and_unknown_subtasks() {
        let mut s = active("a", 10, 10);
        s.done = true;
        s.active = false;
        s.ended = Some(at(10.0));
        let zero = Eta {
            seconds: 0.0,
            low: 0.0,
            high: 0.0,
            basis: Basis::Rate,
        };
        assert_eq!(subtask_eta(&s, None, at(20.0)), Some(zero));
        // Ended without finishing (failed, cancelled): it will not finish.
        s.done = false;
        assert_eq!(subtask_eta(&s, Some(&[5.0]), at(20.0)), None);
        // More items than the total: nothing left.
        assert_eq!(subtask_eta(&active("a", 12, 10), None, at(5.0)), Some(zero));
        // No items, no percent, no history: nothing to go on.
        let mut bare = active("a", 0, 0);
        bare.items_total = None;
        assert_eq!(subtask_eta(&bare, None, at(5.0)), None);
        bare.items_complete = 40;
        assert_eq!(subtask_eta(&bare, None, at(5.0)), None);
        // Not started yet: its whole duration, from history.
        let e = subtask_eta(&pending("a"), Some(&[10.0, 20.0, 30.0]), at(5.0)).unwrap();
        assert_eq!(e.basis, Basis::History);
        assert!(close(e.seconds, 20.0));
        assert_eq!(subtask_eta(&pending("a"), None, at(5.0)), None);
        // Zero elapsed: no rate yet.
        assert_eq!(subtask_eta(&active("a", 3, 10), None, t0()), None);
    }

    #[test]
    fn history_alone_is_p50_minus_elapsed_within_p10_and_p90() {
        let mut rng = Rng(11);
        let history = History {
            run_seconds: (0..20).map(|_| rng.range(100.0, 300.0)).collect(),
            ..History::default()
        };
        let q = |p| percentile(&history.run_seconds, p).unwrap();
        let e = run_eta(t0(), None, &[], &history, at(40.0)).unwrap();
        assert_eq!(e.basis, Basis::History);
        assert!(close(e.seconds, q(0.5) - 40.0), "{e:?}");
        assert!(close(e.low, q(0.1) - 40.0), "{e:?}");
        assert!(close(e.high, q(0.9) - 40.0), "{e:?}");
        // Past the p90 of every past run: nothing to go on.
        assert_eq!(run_eta(t0(), None, &[], &history, at(q(0.9) + 1.0)), None);
        // No history either.
        assert_eq!(
            run_eta(t0(), None, &[], &History::default(), at(40.0)),
            None
        );
    }

    const NAMES: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
    const ITEMS: i64 = 200;

    /// Sequential subtasks of the given durations, each at a steady item rate,
    /// as known at `t`: those started, plus the rest as pending when registered.
    fn sequential(durations: &[f64], t: f64, registered: bool) -> Vec<SubtaskFacts<'static>> {
        let mut out = vec![];
        let mut start = 0.0;
        for (i, d) in durations.iter().enumerate() {
            let end = start + d;
            let mut s = pending(NAMES[i]);
            s.items_total = Some(ITEMS);
            if t >= end {
                s.done = true;
                s.items_complete = ITEMS;
                (s.started, s.ended) = (Some(at(start)), Some(at(end)));
            } else if t >= start {
                s.active = true;
                s.items_complete = (ITEMS as f64 * (t - start) / d).floor() as i64;
                s.started = Some(at(start));
            } else if !registered {
                break;
            }
            out.push(s);
            start = end;
        }
        out
    }

    /// 20 past runs and, by name, 20 past subtasks: each ±10% of the truth.
    fn noisy_history(durations: &[f64], rng: &mut Rng) -> History {
        let total: f64 = durations.iter().sum();
        History {
            run_seconds: (0..20).map(|_| total * rng.range(0.9, 1.1)).collect(),
            subtask_seconds: durations
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let past = (0..20).map(|_| d * rng.range(0.9, 1.1)).collect();
                    (NAMES[i].to_string(), past)
                })
                .collect(),
        }
    }

    #[test]
    fn a_sequential_run_is_covered_and_outlasts_its_active_subtask() {
        let durations = [40.0, 80.0, 60.0, 120.0, 50.0, 90.0, 70.0, 100.0];
        let total: f64 = durations.iter().sum();
        let mut rng = Rng(3);
        let full = noisy_history(&durations, &mut rng);
        let runs_only = History {
            run_seconds: full.run_seconds.clone(),
            ..History::default()
        };
        for history in [&full, &runs_only] {
            for registered in [false, true] {
                let mut t = 5.0;
                while t < total {
                    let subs = sequential(&durations, t, registered);
                    let e = run_eta(t0(), Some(8), &subs, history, at(t)).unwrap();
                    assert!(sound(&e));
                    let what = format!("t {t}, registered {registered}: {e:?}");
                    assert!(contains(&e, total - t), "{what}");
                    for s in subs.iter().filter(|s| s.active) {
                        let names = &history.subtask_seconds;
                        let own = subtask_eta(s, names.get(s.name).map(Vec::as_slice), at(t));
                        if let Some(own) = own {
                            assert!(e.seconds >= own.seconds, "{what}");
                        }
                    }
                    t += 25.0;
                }
            }
        }
    }

    #[test]
    fn parallel_subtasks_take_the_longest_not_the_sum() {
        // Three at once since t0, 30 s in: 10, 20 and 60 s to go.
        let subs = [
            active("a", 75, 100),
            active("b", 60, 100),
            active("c", 100, 300),
        ];
        let now = at(30.0);
        let each: Vec<Eta> = subs
            .iter()
            .map(|s| subtask_eta(s, None, now).unwrap())
            .collect();
        let e = run_eta(t0(), Some(3), &subs, &History::default(), now).unwrap();
        assert!(close(e.seconds, 60.0), "{e:?}");
        assert_eq!(e, each[2]);
        // Sequential, the same work would add up.
        let mut one = active("a", 75, 100);
        one.started = Some(at(-1.0));
        let mut before = active("z", 100, 100);
        (before.active, before.done) = (false, true);
        (before.started, before.ended) = (Some(at(-50.0)), Some(at(-1.0)));
        let pending_one = pending("b");
        let e = run_eta(
            at(-50.0),
            Some(3),
            &[before, one, pending_one],
            &History::default(),
            now,
        );
        // 25 items at 75 per 31 s for "a", then one more like "z" (49 s).
        assert!(
            close(e.unwrap().seconds, 25.0 * 31.0 / 75.0 + 49.0),
            "{e:?}"
        );
    }

    #[test]
    fn a_parallel_run_shares_pending_work_among_workers() {
        // 12 subtasks, 4 at a time, 100 s each: 4 done, 4 half-way, 4 to go.
        let mut subs = vec![];
        for name in &NAMES[..4] {
            let mut s = active(name, 10, 10);
            (s.active, s.done) = (false, true);
            (s.started, s.ended) = (Some(t0()), Some(at(100.0)));
            subs.push(s);
        }
        for name in &NAMES[4..8] {
            let mut s = active(name, 50, 100);
            s.started = Some(at(100.0));
            subs.push(s);
        }
        let e = run_eta(t0(), Some(12), &subs, &History::default(), at(150.0)).unwrap();
        // 50 s for the active four, then 100 s for the last four at once.
        assert!(close(e.seconds, 150.0), "{e:?}");
        assert!(contains(&e, 150.0));
        assert_eq!(e.basis, Basis::Rate);
    }

    #[test]
    fn a_run_without_history_or_completed_subtasks_goes_at_its_own_pace() {
        // First of four subtasks, half done after 60 s: about 7 more minutes.
        let mut s = active("a", 50, 100);
        s.started = Some(t0());
        let e = run_eta(t0(), Some(4), &[s], &History::default(), at(60.0)).unwrap();
        assert!(close(e.seconds, 420.0), "{e:?}");
        // Without a total, the known subtask is all we can speak for.
        let e = run_eta(
            t0(),
            None,
            &[active("a", 50, 100)],
            &History::default(),
            at(60.0),
        );
        assert!(close(e.unwrap().seconds, 60.0));
    }

    #[test]
    fn absurd_inputs_give_finite_ordered_estimates() {
        let mut rng = Rng(42);
        let times = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            t0(),
            at(-5.0),
            at(0.001),
            at(1e9),
        ];
        let counts = [i64::MIN, -5, 0, 1, 7, 1000, i64::MAX];
        let floats = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1e-300,
            5e-324,
            0.5,
            50.0,
            150.0,
            1e300,
            f64::MAX,
        ];
        let names = ["a", "b", "c"];
        for _ in 0..20_000 {
            let n = (rng.next() % 6) as usize;
            let subs: Vec<SubtaskFacts> = (0..n)
                .map(|_| SubtaskFacts {
                    name: rng.pick(&names),
                    active: rng.unit() < 0.5,
                    done: rng.unit() < 0.3,
                    items_total: (rng.unit() < 0.7).then(|| rng.pick(&counts)),
                    items_complete: rng.pick(&counts),
                    percent: (rng.unit() < 0.4).then(|| rng.pick(&floats)),
                    started: (rng.unit() < 0.8).then(|| rng.pick(&times)),
                    ended: (rng.unit() < 0.4).then(|| rng.pick(&times)),
                })
                .collect();
            let sample = |rng: &mut Rng| -> Vec<f64> {
                let k = (rng.next() % 5) as usize;
                (0..k)
                    .map(|_| {
                        if rng.unit() < 0.5 {
                            rng.pick(&floats)
                        } else {
                            rng.range(0.0, 1e4)
                        }
                    })
                    .collect()
            };
            let history = History {
                run_seconds: sample(&mut rng),
                subtask_seconds: names
                    .iter()
                    .map(|n| (n.to_string(), sample(&mut rng)))
                    .collect(),
            };
            let now = rng.pick(&times);
            for s in &subs {
                let h = history.subtask_seconds.get(s.name).map(Vec::as_slice);
                if let Some(e) = subtask_eta(s, h, now) {
                    assert!(sound(&e), "{s:?} {h:?}: {e:?}");
                }
            }
            let total = (rng.unit() < 0.7).then(|| rng.pick(&counts));
            let started = rng.pick(&times);
            if let Some(e) = run_eta(started, total, &subs, &history, now) {
                assert!(sound(&e), "{subs:?} {history:?}: {e:?}");
            }
            let q = rng.pick(&floats);
            if let Some(p) = percentile(&history.run_seconds, q) {
                assert!(p.is_finite());
            }
        }
    }
}
