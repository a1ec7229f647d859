//! Helpers shared by the core's integration tests: a private spool directory,
//! a database held locked (a real SQLite outage), child processes (this test
//! binary run again), and a capture of what tasker logs.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the helpers"
)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tasker::config::{Location, Secret};
use tasker::{Config, Health, Tracker};

/// Spool files go to a private state directory shared by the tests of one binary.
pub fn state_home() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        // Set once, before any tracker of this binary opens (edition 2021: safe).
        std::env::set_var("XDG_STATE_HOME", d.path());
        d
    })
    .path()
}

/// A SQLite config with a short busy timeout, so that a held lock is an outage.
pub fn sqlite_config(db: &Path) -> Config {
    let mut c = Config::sqlite(db);
    c.busy_timeout = Duration::from_millis(50);
    c.flush_interval = Duration::from_millis(50);
    c
}

/// The test server `TASKER_PG_URL` names. PostgreSQL tests are `#[ignore]`d
/// (reported as skipped) unless a test script that starts a server runs them
/// (`--include-ignored`): run without one, they fail here rather than pass.
pub fn pg_url() -> String {
    std::env::var("TASKER_PG_URL").expect(
        "TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test",
    )
}

/// A PostgreSQL config in a schema of its own (`{prefix}_{test}_{pid}_{n}`) on the
/// test server (`pg_url`).
pub fn postgres_config(prefix: &str, test: &str) -> Config {
    static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
    let url = pg_url();
    let mut config = Config::sqlite("");
    config.location = Location::Postgres {
        conninfo: Secret::new(url),
        schema: format!(
            "{prefix}_{}_{}_{}",
            &test[..test.len().min(30)],
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        ),
    };
    config
}

/// Holds the write lock of a SQLite database until dropped or ended.
pub struct SqliteOutage(Option<rusqlite::Connection>);

impl SqliteOutage {
    pub fn start(db: &Path) -> SqliteOutage {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        SqliteOutage(Some(c))
    }

    pub fn end(mut self) {
        if let Some(c) = self.0.take() {
            c.execute_batch("COMMIT").unwrap();
        }
    }
}

impl Drop for SqliteOutage {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = c.execute_batch("COMMIT");
        }
    }
}

/// This test binary run again as a child: the test named `child` does the work
/// for `role` (read from `TASKER_TEST_CHILD`).
pub fn child_command(role: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("TASKER_TEST_CHILD", role)
        .env("XDG_STATE_HOME", state_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Kills the child if the test fails before it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 60 s) until everything queued during an outage is written.
pub fn wait_for_replay(t: &Tracker) -> Health {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let h = t.health();
        if (h.reachable && h.pending_writes == 0) || Instant::now() > until {
            return h;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What tasker logged in this process (warnings and above), for tests that count
/// or read its messages.
pub struct LogCapture;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for LogCapture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{}", r.args());
            eprintln!("[log] {line}");
            LINES.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

impl LogCapture {
    /// Installs the capture (once per process).
    pub fn install() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            log::set_logger(&LogCapture).unwrap();
            log::set_max_level(log::LevelFilter::Warn);
        });
    }

    /// The lines logged so far that contain `needle`.
    pub fn lines_with(needle: &str) -> Vec<String> {
        LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// The prefix of the spool files of a SQLite database: FNV-1a of its identity.
/// Stable across versions (a spool file must be found by the next version).
pub fn spool_key(db: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("sqlite:{}", db.display()).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
