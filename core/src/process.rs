//! Facts about this process and host that a run records by itself, and the
//! liveness check behind the derived `lost` flag. Linux facts come from /proc;
//! elsewhere the fields stay empty and liveness falls back to the heartbeat.

use chrono::{DateTime, TimeZone, Utc};

/// What a new run records about the process that started it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessFacts {
    pub hostname: String,
    pub pid: u32,
    pub parent_pid: Option<u32>,
    pub process_start: Option<DateTime<Utc>>,
    pub user: Option<String>,
}

impl ProcessFacts {
    pub fn current(hostname_override: Option<&str>) -> ProcessFacts {
        let pid = std::process::id();
        let stat = read_stat(pid);
        ProcessFacts {
            hostname: hostname_override
                .map(str::to_string)
                .unwrap_or_else(hostname),
            pid,
            parent_pid: stat.as_ref().map(|s| s.ppid),
            process_start: stat.and_then(|s| start_time_from_ticks(s.start_ticks)),
            user: current_user(),
        }
    }
}

pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn current_user() -> Option<String> {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return Some(u);
            }
        }
    }
    // No variable (daemons, cron, containers): the password database, then the
    // numeric uid.
    if let Some(name) = crate::ffi::os::current_user_name() {
        return Some(name);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|uid| format!("uid {uid}"))
}

struct Stat {
    ppid: u32,
    start_ticks: u64,
}

/// Parses /proc/PID/stat. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last ')'.
fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ')' : state(3) ppid(4) ... starttime(22) => indexes 0,1,...,19
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None; // a zombie has finished: treat it as gone
    }
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Clock ticks per second for /proc times: 100 on every Linux ABI we build for.
const CLOCK_TICKS: u64 = 100;

fn boot_time() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn start_time_from_ticks(ticks: u64) -> Option<DateTime<Utc>> {
    let boot = boot_time()?;
    let ms = boot * 1000 + (ticks * 1000 / CLOCK_TICKS) as i64;
    Utc.timestamp_millis_opt(ms).single()
}

/// Whether process `pid` on this host is alive and, when known, is the same
/// process that started at `started` (not a later process that reused the pid).
/// `None` when this platform cannot tell.
pub fn is_alive(pid: u32, started: Option<DateTime<Utc>>) -> Option<bool> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    let Some(stat) = read_stat(pid) else {
        return Some(false);
    };
    match (started, start_time_from_ticks(stat.start_ticks)) {
        // Tick rounding and boot-time rounding allow a second or two of slack.
        (Some(a), Some(b)) => Some((a - b).num_milliseconds().abs() <= 2_000),
        _ => Some(true),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_user_comes_from_the_password_database_when_the_environment_is_silent() {
        let Ok(out) = std::process::Command::new("id").arg("-un").output() else {
            eprintln!("`id` is not installed: skipped");
            return;
        };
        let expected = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(crate::ffi::os::current_user_name(), Some(expected));
    }

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_not() {
        let me = ProcessFacts::current(None);
        assert_eq!(me.pid, std::process::id());
        assert!(!me.hostname.is_empty());
        assert_eq!(is_alive(me.pid, me.process_start), Some(true));
        // Same pid but a different start time: the pid was reused.
        let earlier = me.process_start.unwrap() - chrono::Duration::hours(1);
        assert_eq!(is_alive(me.pid, Some(earlier)), Some(false));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(is_alive(pid, None), Some(false));
    }

    #[test]
    fn hostname_override() {
        assert_eq!(ProcessFacts::current(Some("node-7")).hostname, "node-7");
    }
}
