//! The PostgreSQL store after its server went away: calls fail with a storage
//! error naming the server (never hang, never panic), and the store connects
//! again by itself once the server is back. Restarts the throwaway server of
//! `tests/pg.sh`, so it is a test binary of its own (cargo runs test binaries
//! one after another). Needs TASKER_PG_URL, TASKER_PG_DIR, TASKER_PG_OPTS, PG_BIN.

use std::process::Command;

use chrono::Utc;
use tasker::config::{Config, Location, Secret};
use tasker::process::ProcessFacts;
use tasker::store::{self, NewRun, ProgressUpdate, Store};
use tasker::{ErrorKind, RunOptions, Status, SubtaskOptions, TransitionInfo};

struct Server {
    url: String,
    dir: String,
    opts: String,
    bin: String,
    runas: String,
}

fn server() -> Option<Server> {
    let get = |k: &str| std::env::var(k).ok();
    let srv = Server {
        url: get("TASKER_PG_URL")?,
        dir: get("TASKER_PG_DIR")?,
        opts: get("TASKER_PG_OPTS")?,
        bin: get("PG_BIN")?,
        runas: get("TASKER_PG_RUNAS").unwrap_or_default(),
    };
    Some(srv)
}

impl Server {
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = format!("{}/pg_ctl", self.bin);
        let data = format!("{}/data", self.dir);
        let mut cmd = if self.runas.is_empty() {
            Command::new(&pg_ctl)
        } else {
            let mut c = Command::new("runuser");
            c.args(["-u", &self.runas, "--", &pg_ctl]);
            c
        };
        let status = cmd
            .args(["-D", &data])
            .args(args)
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    fn start(&self) {
        let log = format!("{}/server.log", self.dir);
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &self.opts, "start"]);
    }
}

fn inc(run: &str, delta: u64) -> ProgressUpdate {
    ProgressUpdate {
        run_id: run.into(),
        subtask: Some(1),
        items_delta: delta,
        ..ProgressUpdate::default()
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn the_store_reports_a_lost_server_and_reconnects_when_it_is_back() {
    let srv = server().expect(
        "no throwaway server: scripts/test-postgres.sh starts one (TASKER_PG_URL, TASKER_PG_DIR, \
         TASKER_PG_OPTS, PG_BIN) and runs this test",
    );
    let mut config = Config::sqlite("");
    config.location = Location::Postgres {
        conninfo: Secret::new(format!("{} connect_timeout=5", srv.url)),
        schema: format!("reconnect_{}", std::process::id()),
    };
    let mut s: Box<dyn Store> = store::open(&config).unwrap();
    let run = NewRun {
        run_id: "r1".into(),
        stage: "s".into(),
        task: "t".into(),
        facts: ProcessFacts::current(Some("host-x")),
        options: RunOptions::default(),
        start_time: Utc::now(),
        lost_before: Utc::now(),
        known_lost: None,
    };
    s.start_run(&run).unwrap();
    s.subtask_start("r1", "items", &SubtaskOptions::default(), Utc::now())
        .unwrap();
    s.apply_progress(&[inc("r1", 5)], &[], Utc::now()).unwrap();

    // The server dies: every call fails with a storage error, none hangs or panics.
    srv.stop();
    for _ in 0..3 {
        let e = s
            .apply_progress(&[inc("r1", 1)], &[], Utc::now())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.is_transient());
    }
    let e = s.run_status("r1").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cannot connect") && msg.contains("127.0.0.1"),
        "{msg}"
    );

    // Back again: the same store carries on, and nothing failed was applied.
    srv.start();
    assert_eq!(s.run_status("r1").unwrap(), Some(Status::Running));
    s.apply_progress(&[inc("r1", 2)], &[], Utc::now()).unwrap();
    assert_eq!(s.subtasks("r1").unwrap()[0].items_complete, 7);
    s.run_transition(
        "r1",
        Status::Completed,
        &TransitionInfo::default(),
        Utc::now(),
    )
    .unwrap();

    // A restart between two calls: the first call may fail, the next one works.
    srv.pg_ctl(&["restart", "-m", "fast", "-w"]);
    if let Err(e) = s.run_status("r1") {
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    }
    assert_eq!(s.run_status("r1").unwrap(), Some(Status::Completed));
}
