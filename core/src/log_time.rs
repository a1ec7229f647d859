//! The time a log line carries.
//!
//! Reading the precise realtime clock is most of what a log call costs in a
//! virtual machine (a TSC read: 40-100 ns, more than writing the line to a
//! file). A log line reads the coarse realtime clock instead (the time of the
//! kernel's last tick: no TSC read) and `LineClock` spreads the lines of one
//! tick over that tick, one microsecond apart (what the stores keep), so that:
//!
//! - a line's time is about one tick from when it was logged (the coarse
//!   clock's resolution: 4 ms at 250 Hz, 1-10 ms on Linux; more when the
//!   kernel's tick runs late on a busy host);
//! - times never go down within a process, in the order lines were logged
//!   (the order of their ids), unless the system clock itself is set back;
//! - lines logged less than one per microsecond get distinct stored times, so
//!   "since this line's time" starts at that line. Faster lines share the
//!   tick's last microsecond rather than run ahead of the clock.
//!
//! Off Linux the precise clock is read and the times are its own.

use chrono::{DateTime, Utc};

/// What the stores keep of a time: microseconds.
const STEP_NS: i64 = 1_000;

/// Nanoseconds since the Unix epoch by the clock log lines read.
pub(crate) fn line_clock_now() -> i64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is valid for one write.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return nanos(&ts);
        }
    }
    precise_now()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn nanos(ts: &libc::timespec) -> i64 {
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn precise_now() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// How far `line_clock_now` can be behind the real time: its resolution.
fn resolution() -> i64 {
    static RESOLUTION: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *RESOLUTION.get_or_init(|| {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is valid for one write.
            if unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
                return nanos(&ts).max(STEP_NS);
            }
        }
        STEP_NS
    })
}

/// The times handed to a process's lines, in the order they are kept.
#[derive(Debug, Default)]
pub(crate) struct LineClock {
    last: i64,
}

impl LineClock {
    /// The time of the next line, read (`line_clock_now`) before it was kept.
    pub(crate) fn stamp(&mut self, read: i64) -> i64 {
        let t = stamp_within(self.last, read, resolution());
        self.last = t;
        t
    }
}

/// One step after `last`, but within the tick that started at `read`: never
/// before it, never at or past its end. A read up to a tick older than `last`
/// (another thread read the clock first, then kept its line first) takes
/// `last`; an older one means the clock was set back, and is followed.
fn stamp_within(last: i64, read: i64, tick: i64) -> i64 {
    if read < last.saturating_sub(tick) {
        return read;
    }
    let tick_end = read.saturating_add(tick - STEP_NS);
    read.max(last.saturating_add(STEP_NS).min(tick_end))
        .max(last)
}

/// A stamp as a time.
pub(crate) fn to_time(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

#[cfg(test)]
mod test {
    use super::*;

    const TICK: i64 = 4_000_000;

    #[test]
    fn lines_of_one_tick_are_a_step_apart_from_its_start() {
        let t0 = 1_700_000_000_000_000_000;
        let a = stamp_within(0, t0, TICK);
        let b = stamp_within(a, t0, TICK);
        let c = stamp_within(b, t0, TICK);
        assert_eq!((a, b, c), (t0, t0 + STEP_NS, t0 + 2 * STEP_NS));
        // The next tick starts at its own time.
        assert_eq!(stamp_within(c, t0 + TICK, TICK), t0 + TICK);
    }

    #[test]
    fn more_lines_than_a_tick_holds_share_its_last_step() {
        let t0 = 1_700_000_000_000_000_000;
        let mut last = 0;
        for _ in 0..10_000 {
            let t = stamp_within(last, t0, TICK);
            assert!(t >= last && t < t0 + TICK);
            last = t;
        }
        assert_eq!(last, t0 + TICK - STEP_NS);
        // A line read late (another thread read the clock first) stays in order.
        assert_eq!(stamp_within(last, t0 - 1, TICK), last);
    }

    #[test]
    fn a_clock_set_back_is_followed() {
        let t0 = 1_700_000_000_000_000_000;
        let back = t0 - 3_600_000_000_000;
        assert_eq!(stamp_within(t0, back, TICK), back);
    }

    #[test]
    fn the_clock_reads_a_time_of_today_and_stamps_it_in_order() {
        // How far behind the coarse clock is depends on when the kernel last
        // ticked (late on a busy host): no bound on it is asserted.
        let read = line_clock_now();
        assert!(read > 1_600_000_000_000_000_000, "{read}");
        let mut clock = LineClock::default();
        let a = clock.stamp(read);
        let b = clock.stamp(read);
        assert!(b > a);
        assert_eq!(to_time(a).timestamp_nanos_opt(), Some(a));
    }
}
