//! PostgreSQL with many processes on several (simulated) hosts, TLS, and the
//! errors a user sees for bad credentials, an unknown host or a missing
//! permission. Needs `TASKER_PG_URL` (see `scripts/test-postgres.sh`, which starts
//! a throwaway server with TLS and password authentication); without it every
//! test here returns at once.
//!
//! Child processes are this test binary run again with `TASKER_TEST_CHILD` set:
//! the `child` test then does the child's work. A child finds the database the
//! way a user's program does: `TASKER_DB_URL`, `TASKER_DB_SCHEMA` and
//! `TASKER_HOSTNAME` in its environment.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use tasker::config::{Config, ConfigArgs, DbSettings, Location, Secret};
use tasker::{ErrorKind, RunOptions, Status, StatusFilter, SubtaskOptions, Tracker};

/// The test server. These tests are `#[ignore]`d (reported as skipped) unless
/// scripts/test-postgres.sh, which starts a server, runs them: run without one,
/// they fail here rather than pass.
fn pg_url() -> String {
    std::env::var("TASKER_PG_URL").expect("TASKER_PG_URL names no test server: scripts/test-postgres.sh starts one and runs this test")
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

fn fresh_schema(tag: &str) -> String {
    format!(
        "mh_{tag}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed)
    )
}

fn pg_config(conninfo: &str, schema: &str) -> Config {
    let mut c = Config::sqlite("");
    c.location = Location::Postgres {
        conninfo: Secret::new(conninfo),
        schema: schema.to_string(),
    };
    c.flush_interval = std::time::Duration::from_millis(50);
    c
}

/// The test server's parts (from the key=value string in TASKER_PG_URL).
struct Server {
    host: String,
    port: u16,
    user: String,
    dbname: String,
}

fn server(url: &str) -> Server {
    let c: postgres::Config = url.parse().unwrap();
    let host = match &c.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    Server {
        host,
        port: c.get_ports().first().copied().unwrap_or(5432),
        user: c.get_user().unwrap_or("postgres").to_string(),
        dbname: c.get_dbname().unwrap_or("postgres").to_string(),
    }
}

impl Server {
    fn url(&self) -> String {
        format!(
            "postgresql://{}@{}:{}/{}",
            self.user, self.host, self.port, self.dbname
        )
    }

    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host={} port={} user={} dbname={}",
                self.host, self.port, self.user, self.dbname
            ),
            postgres::NoTls,
        )
        .unwrap()
    }
}

fn spawn_child(role: &str, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("TASKER_TEST_CHILD", role)
        .env("TASKER_TEST_ARGS", args.join(" "))
        .env_remove("TASKER_DB_PATH")
        .env_remove("TASKER_DB_DRIVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The body of a child process; a no-op in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var("TASKER_TEST_CHILD") else {
        return;
    };
    let args: Vec<String> = std::env::var("TASKER_TEST_ARGS")
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    let start_dir = tempfile::tempdir().unwrap();
    // Resolved like a user's program: TASKER_DB_URL / TASKER_DB_SCHEMA / TASKER_HOSTNAME.
    let t = Tracker::connect(&ConfigArgs {
        start_dir: Some(start_dir.path().to_path_buf()),
        ..ConfigArgs::default()
    })
    .unwrap();
    assert_eq!(t.backend_name(), "postgresql");
    assert_eq!(t.hostname(), std::env::var("TASKER_HOSTNAME").unwrap());
    match role.as_str() {
        "increment" => {
            let run = t.attach_run(&args[0]).unwrap();
            let n: u32 = args[1].parse().unwrap();
            let count: u64 = args[2].parse().unwrap();
            for _ in 0..count {
                run.subtask_increment(n, 1).unwrap();
            }
            t.close().unwrap();
        }
        "start" => {
            // Open (migrating a new schema at the same time as the others), then
            // start the same task at the parent's signal and hold the run until
            // stdin closes.
            println!("ready");
            let mut stdin = BufReader::new(std::io::stdin());
            let mut line = String::new();
            stdin.read_line(&mut line).unwrap();
            let run = t
                .task_start(&args[0], &args[1], RunOptions::default())
                .unwrap();
            println!("started {}", run.run_id());
            while stdin.read_line(&mut line).unwrap() > 0 {}
            run.complete(Some("done")).unwrap();
            t.close().unwrap();
        }
        other => panic!("unknown child role {other}"),
    }
}

fn child_env(srv: &Server, schema: &str, host: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TASKER_DB_URL", srv.url()),
        ("TASKER_DB_SCHEMA", schema.to_string()),
        ("TASKER_HOSTNAME", host.to_string()),
        ("TASKER_FLUSH_INTERVAL_MS", "20".to_string()),
    ]
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn sixteen_processes_on_four_hosts_increment_one_subtask_exactly() {
    let url = pg_url();
    let srv = server(&url);
    let schema = fresh_schema("inc");
    let t = Tracker::open(pg_config(&url, &schema)).unwrap();
    let run = t
        .task_start("load", "parallel", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start(
            "items",
            SubtaskOptions {
                items_total: Some(800_000),
                ..Default::default()
            },
        )
        .unwrap();
    let n_arg = n.to_string();
    let children: Vec<Child> = (0..16)
        .map(|i| {
            spawn_child(
                "increment",
                &child_env(&srv, &schema, &format!("host-{}", i % 4)),
                &[run.run_id(), &n_arg, "50000"],
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let sub = &t.subtasks(run.run_id()).unwrap()[0];
    assert_eq!(sub.items_complete, 800_000);
    assert_eq!(sub.status, Status::Running);
    assert_eq!(sub.percent_complete, Some(100.0));
    let to_running: Vec<_> = t
        .events_after(0, Some(run.run_id()), 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.subtask_number == Some(i64::from(n)) && e.new_status == Status::Running)
        .collect();
    assert_eq!(to_running.len(), 1, "STARTED -> RUNNING is recorded once");
    run.subtask_complete(n, None).unwrap();
    run.complete(None).unwrap();
    let r = t.run(run.run_id()).unwrap();
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.overall_percent_complete, Some(100.0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn concurrent_task_starts_on_different_hosts_are_all_active() {
    let url = pg_url();
    let srv = server(&url);
    // A schema nobody opened yet: the children create and migrate it together.
    let schema = fresh_schema("start");
    let mut children: Vec<Child> = (0..8)
        .map(|i| {
            spawn_child(
                "start",
                &child_env(&srv, &schema, &format!("node-{}", i % 4)),
                &["multi", "same_task"],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    // The harness may print "test child ... " on the same line before the word.
    let read_word = |out: &mut BufReader<std::process::ChildStdout>, word: &str| loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if let Some(at) = line.find(word) {
            return line[at + word.len()..].trim().to_string();
        }
    };
    for out in &mut outs {
        read_word(out, "ready");
    }
    for c in &mut children {
        writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let ids: BTreeSet<String> = outs.iter_mut().map(|o| read_word(o, "started")).collect();
    assert_eq!(ids.len(), 8);

    let t = Tracker::open(pg_config(&url, &schema)).unwrap();
    let active: Vec<_> = t
        .active_runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.task_name == "same_task")
        .collect();
    assert_eq!(active.len(), 8, "{active:#?}");
    let seen: BTreeSet<String> = active.iter().map(|r| r.run_id.clone().unwrap()).collect();
    assert_eq!(seen, ids);
    let hosts: BTreeSet<&str> = active
        .iter()
        .map(|r| r.hostname.as_deref().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["node-0", "node-1", "node-2", "node-3"]
            .into_iter()
            .collect()
    );
    assert!(active
        .iter()
        .all(|r| r.status == Status::Started && !r.lost));
    assert_eq!(t.registered_tasks(Some("multi"), None).unwrap().len(), 1);

    for mut c in children {
        drop(c.stdin.take());
        assert!(c.wait().unwrap().success());
    }
    assert!(t
        .active_runs()
        .unwrap()
        .iter()
        .all(|r| r.task_name != "same_task"));
    let status = t
        .task_status(&StatusFilter {
            task: Some("same_task".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].status, Status::Completed);
    // Eight processes opened a new schema at once: it was migrated exactly once.
    let mut admin = srv.admin();
    let row = admin
        .query_one(
            &format!("SELECT COUNT(*), COUNT(DISTINCT version) FROM \"{schema}\".schema_version"),
            &[],
        )
        .unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(rows, distinct, "each migration was applied exactly once");
    assert!(rows >= 2, "every migration was applied");
}

const TEST_PASSWORDS: [&str; 4] = ["Wrong-Pass-9", "Hidden-Pw-3", "Perm-Pass-5", "Right-Pass-1"];

/// Opening fails: the store's error, after checking that a tracker says the same
/// (it either refuses to open, or opens in outage mode with that error in its
/// health) and that no password shows anywhere.
fn open_err(conninfo: &str, schema: &str) -> tasker::Error {
    let config = pg_config(conninfo, schema);
    let Err(e) = tasker::store::open(&config) else {
        panic!("opening should fail");
    };
    let msg = e.to_string();
    let via_tracker = match Tracker::open(config) {
        Err(te) => te.to_string(),
        Ok(t) => {
            let h = t.health();
            assert!(!h.reachable, "{h:?}");
            let shown = format!("{h:?}");
            for p in TEST_PASSWORDS {
                assert!(!shown.contains(p), "the password leaked: {shown}");
            }
            h.last_error.expect("an unreachable tracker tells why")
        }
    };
    assert!(
        via_tracker.contains(&msg) || msg.contains(&via_tracker),
        "the tracker says {via_tracker:?}, the store {msg:?}"
    );
    for p in TEST_PASSWORDS {
        assert!(
            !via_tracker.contains(p),
            "the password leaked: {via_tracker}"
        );
    }
    e
}

fn assert_secret_hidden(e: &tasker::Error, secret: &str) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(secret), "the password leaked: {shown}");
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn wrong_password_is_named_and_never_shown() {
    let url = pg_url();
    let srv = server(&url);
    let role = format!("pw_user_{}", std::process::id());
    let mut admin = srv.admin();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'Right-Pass-1'"
        ))
        .unwrap();
    let schema = fresh_schema("pw");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema} AUTHORIZATION {role}"))
        .unwrap();
    let base = format!(
        "host={} port={} dbname={} user={role}",
        srv.host, srv.port, srv.dbname
    );
    let e = open_err(&format!("{base} password=Wrong-Pass-9"), &schema);
    // Retrying will not cure it: a configuration error, reported at once.
    assert_eq!(e.kind(), ErrorKind::Config);
    let msg = e.to_string();
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(msg.contains(&role), "{msg}");
    assert!(msg.contains("wrong password"), "{msg}");
    assert_secret_hidden(&e, "Wrong-Pass-9");
    // The same through a URL, as TASKER_DB_URL would give it.
    let e = Tracker::connect(&ConfigArgs {
        db: DbSettings {
            url: Some(Secret::new(format!(
                "postgresql://{role}:Wrong-Pass-9@{}:{}/{}?schema={schema}",
                srv.host, srv.port, srv.dbname
            ))),
            ..DbSettings::default()
        },
        start_dir: Some(std::env::temp_dir()),
        ..ConfigArgs::default()
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    assert_secret_hidden(&e, "Wrong-Pass-9");
    // No password at all.
    let e = open_err(&base, &schema);
    assert!(e.to_string().contains("password"), "{e}");
    // The right one works.
    let t = Tracker::open(pg_config(&format!("{base} password=Right-Pass-1"), &schema)).unwrap();
    t.task_start("s", "t", RunOptions::default()).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn unknown_host_and_closed_port_are_named() {
    pg_url();
    let e = open_err(
        "host=no-such-host.invalid port=5432 user=u dbname=d password=Hidden-Pw-3 connect_timeout=5",
        "tasker",
    );
    assert_eq!(e.kind(), ErrorKind::Storage);
    let msg = e.to_string();
    assert!(msg.contains("no-such-host.invalid"), "{msg}");
    assert!(msg.contains("unknown host"), "{msg}");
    assert_secret_hidden(&e, "Hidden-Pw-3");
    // A port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = open_err(
        &format!("host=127.0.0.1 port={port} user=u password=Hidden-Pw-3"),
        "tasker",
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&port.to_string()) && msg.contains("no server listening"),
        "{msg}"
    );
    assert_secret_hidden(&e, "Hidden-Pw-3");
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn missing_schema_permissions_are_named() {
    let url = pg_url();
    let srv = server(&url);
    let role = format!("noperm_{}", std::process::id());
    let mut admin = srv.admin();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'Perm-Pass-5'"
        ))
        .unwrap();
    let conn = format!(
        "host={} port={} dbname={} user={role} password=Perm-Pass-5",
        srv.host, srv.port, srv.dbname
    );
    // 1. The schema does not exist and the user may not create schemas.
    let missing = fresh_schema("missing");
    let e = open_err(&conn, &missing);
    let msg = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(msg.contains(&missing) && msg.contains(&role), "{msg}");
    assert!(msg.contains("CREATE SCHEMA"), "{msg}");
    assert_secret_hidden(&e, "Perm-Pass-5");
    // 2. The schema exists, owned by someone else, without USAGE for the user.
    let closed = fresh_schema("closed");
    admin
        .batch_execute(&format!("CREATE SCHEMA {closed}"))
        .unwrap();
    let msg = open_err(&conn, &closed).to_string();
    assert!(
        msg.contains("may not use schema") && msg.contains(&closed),
        "{msg}"
    );
    assert!(msg.contains("GRANT USAGE"), "{msg}");
    // 3. USAGE but not CREATE on a schema that was never set up.
    admin
        .batch_execute(&format!("GRANT USAGE ON SCHEMA {closed} TO {role}"))
        .unwrap();
    let msg = open_err(&conn, &closed).to_string();
    assert!(
        msg.contains("may not create tasker's tables") && msg.contains(&closed),
        "{msg}"
    );
    // 4. Once an owner set the schema up, the user may read it (writes need grants).
    Tracker::open(pg_config(&url, &closed)).unwrap();
    admin
        .batch_execute(&format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA {closed} TO {role}"
        ))
        .unwrap();
    let t = Tracker::open(pg_config(&conn, &closed)).unwrap();
    assert!(t.active_runs().unwrap().is_empty());
    drop(t);
    // A write without the grant is refused by the server, with its reason.
    let mut store = tasker::store::open(&pg_config(&conn, &closed)).unwrap();
    let e = store
        .start_run(&tasker::store::NewRun {
            run_id: "no-grant".into(),
            stage: "s".into(),
            task: "t".into(),
            facts: tasker::process::ProcessFacts::current(None),
            options: RunOptions::default(),
            start_time: chrono::Utc::now(),
            lost_before: chrono::Utc::now(),
            known_lost: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("permission denied"), "{e}");
}

fn ssl_in_use(srv: &Server, app: &str) -> bool {
    srv.admin()
        .query_one(
            "SELECT COALESCE(bool_and(s.ssl), false) FROM pg_stat_ssl s
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0)
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn tls_require_verify_ca_and_verify_full() {
    let url = pg_url();
    let Ok(ca) = std::env::var("TASKER_PG_CA") else {
        eprintln!("TASKER_PG_CA is not set (the server has no TLS): skipped");
        return;
    };
    let other_ca = std::env::var("TASKER_PG_OTHER_CA").unwrap();
    let srv = server(&url);
    let schema = fresh_schema("tls");
    let base = |host: &str, app: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user={} dbname={} application_name={app}",
            srv.port, srv.user, srv.dbname
        )
    };
    // require: encrypted, certificate not checked.
    let t = Tracker::open(pg_config(
        &format!("{} sslmode=require", base("127.0.0.1", "tls_require")),
        &schema,
    ))
    .unwrap();
    assert!(ssl_in_use(&srv, "tls_require"));
    drop(t);
    // verify-full: the certificate is for localhost, signed by our CA.
    let t = Tracker::open(pg_config(
        &format!(
            "{} sslmode=verify-full sslrootcert={ca}",
            base("localhost", "tls_full")
        ),
        &schema,
    ))
    .unwrap();
    t.task_start("tls", "full", RunOptions::default()).unwrap();
    assert!(ssl_in_use(&srv, "tls_full"));
    drop(t);
    // verify-full with a name the certificate does not hold fails, naming the reason.
    let e = open_err(
        &format!(
            "{} sslmode=verify-full sslrootcert={ca}",
            base("127.0.0.1", "tls_badname")
        ),
        &schema,
    );
    let msg = e.to_string().to_lowercase();
    assert!(msg.contains("certificate") && msg.contains("tls"), "{msg}");
    // verify-ca does not check the name.
    let t = Tracker::open(pg_config(
        &format!(
            "{} sslmode=verify-ca sslrootcert={ca}",
            base("127.0.0.1", "tls_ca")
        ),
        &schema,
    ))
    .unwrap();
    assert!(ssl_in_use(&srv, "tls_ca"));
    drop(t);
    // A CA that did not sign the server's certificate is refused.
    let e = open_err(
        &format!(
            "{} sslmode=verify-full sslrootcert={other_ca}",
            base("localhost", "tls_other")
        ),
        &schema,
    );
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // verify-full without a CA file is a configuration error naming sslrootcert.
    if !std::path::Path::new(&std::env::var("HOME").unwrap_or_default())
        .join(".postgresql/root.crt")
        .exists()
    {
        let e = open_err(
            &format!("{} sslmode=verify-full", base("localhost", "tls_noca")),
            &schema,
        );
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }
    // The same settings as a user writes them: driver parts (as in .tasker.yml) and a URL.
    let t = Tracker::connect(&ConfigArgs {
        db: DbSettings {
            driver: Some("postgresql".into()),
            host: Some("localhost".into()),
            port: Some(srv.port),
            dbname: Some(srv.dbname.clone()),
            user: Some(srv.user.clone()),
            schema: Some(schema.clone()),
            sslmode: Some("verify-full".into()),
            sslrootcert: Some(ca.clone()),
            ..DbSettings::default()
        },
        start_dir: Some(std::env::temp_dir()),
        ..ConfigArgs::default()
    })
    .unwrap();
    assert_eq!(t.active_runs().unwrap().len(), 1);
    drop(t);
    let t = Tracker::connect(&ConfigArgs {
        db: DbSettings {
            url: Some(Secret::new(format!(
                "postgresql://{}@localhost:{}/{}?sslmode=verify-full&sslrootcert={ca}&schema={schema}&application_name=tls_url",
                srv.user, srv.port, srv.dbname
            ))),
            ..DbSettings::default()
        },
        start_dir: Some(std::env::temp_dir()),
        ..ConfigArgs::default()
    })
    .unwrap();
    assert_eq!(t.active_runs().unwrap().len(), 1);
    assert!(ssl_in_use(&srv, "tls_url"));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn unix_socket_connections_work() {
    let url = std::env::var("TASKER_PG_SOCKET_URL")
        .expect("TASKER_PG_SOCKET_URL names the test server's socket (scripts/test-postgres.sh)");
    let t = Tracker::open(pg_config(&url, &fresh_schema("sock"))).unwrap();
    let run = t.task_start("s", "t", RunOptions::default()).unwrap();
    run.complete(None).unwrap();
    assert_eq!(t.run(run.run_id()).unwrap().status, Status::Completed);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn a_tasker_yml_with_driver_parts_selects_postgres() {
    let url = pg_url();
    if std::env::vars().any(|(k, _)| k.starts_with("TASKER_DB_")) {
        eprintln!("TASKER_DB_* set in the environment: it would win over .tasker.yml; skipped");
        return;
    }
    let srv = server(&url);
    let schema = fresh_schema("yml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".tasker.yml"),
        format!(
            "database:\n  driver: postgresql\n  host: {}\n  port: {}\n  dbname: {}\n  user: {}\n  schema: {schema}\n  sslmode: disable\n",
            srv.host, srv.port, srv.dbname, srv.user
        ),
    )
    .unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let t = Tracker::connect(&ConfigArgs {
        start_dir: Some(nested),
        ..ConfigArgs::default()
    })
    .unwrap();
    assert_eq!(t.backend_name(), "postgresql");
    let run = t.task_start("yml", "task", RunOptions::default()).unwrap();
    run.complete(None).unwrap();
    // It went to the schema the file names.
    let n: i64 = srv
        .admin()
        .query_one(&format!("SELECT COUNT(*) FROM \"{schema}\".runs"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// Event ids are handed out in commit order, so a reader that follows
/// `events_after(last id seen)` while many connections write never skips one.
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn events_after_never_skips_an_event_under_concurrent_writers() {
    let url = pg_url();
    let config = pg_config(&url, &fresh_schema("events"));
    let mut setup = tasker::store::open(&config).unwrap();
    let writers = 6;
    let per_writer = 150;
    for w in 0..writers {
        setup
            .start_run(&tasker::store::NewRun {
                run_id: format!("w{w}"),
                stage: "ev".into(),
                task: format!("t{w}"),
                facts: tasker::process::ProcessFacts::current(None),
                options: RunOptions::default(),
                start_time: chrono::Utc::now(),
                lost_before: chrono::Utc::now(),
                known_lost: None,
            })
            .unwrap();
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let config = config.clone();
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut s = tasker::store::open(&config).unwrap();
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                for e in s.events_after(last, None, 10_000).unwrap() {
                    last = e.event_id;
                    seen.push(e.event_id);
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut s = tasker::store::open(&config).unwrap();
                let run = format!("w{w}");
                for i in 0..per_writer {
                    let to = if i % 2 == 0 {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    s.run_transition(&run, to, &Default::default(), chrono::Utc::now())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let all: Vec<i64> = setup
        .events_after(0, None, 100_000)
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(all.len(), writers * (per_writer + 1));
    let first_seen = seen.first().copied().unwrap_or(i64::MAX);
    let expected: Vec<i64> = all.iter().copied().filter(|id| *id >= first_seen).collect();
    assert_eq!(seen, expected, "the reader skipped events");
}

/// A row lock held by another session (say, of a host that froze mid-transaction)
/// fails a call after the config's busy_timeout, as in SQLite, instead of hanging it.
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn a_lock_held_elsewhere_fails_a_call_after_busy_timeout() {
    let url = pg_url();
    let srv = server(&url);
    let schema = fresh_schema("lock");
    let mut config = pg_config(&url, &schema);
    config.busy_timeout = std::time::Duration::from_millis(200);
    let mut s = tasker::store::open(&config).unwrap();
    s.start_run(&tasker::store::NewRun {
        run_id: "locked".into(),
        stage: "s".into(),
        task: "t".into(),
        facts: tasker::process::ProcessFacts::current(None),
        options: RunOptions::default(),
        start_time: chrono::Utc::now(),
        lost_before: chrono::Utc::now(),
        known_lost: None,
    })
    .unwrap();
    let mut admin = srv.admin();
    let mut tx = admin.transaction().unwrap();
    tx.query(
        &format!("SELECT 1 FROM \"{schema}\".runs WHERE run_id = 'locked' FOR UPDATE"),
        &[],
    )
    .unwrap();
    let e = s
        .run_transition(
            "locked",
            Status::Paused,
            &Default::default(),
            chrono::Utc::now(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.to_string().contains("lock timeout"), "{e}");
    tx.commit().unwrap();
    assert_eq!(
        s.run_transition(
            "locked",
            Status::Paused,
            &Default::default(),
            chrono::Utc::now()
        )
        .unwrap(),
        Status::Started
    );
}

/// Many connections (as from many hosts) asking for the next free subtask number
/// of one run at once each get a different one, with no gap.
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn next_free_subtask_numbers_are_unique_across_connections() {
    let url = pg_url();
    let config = pg_config(&url, &fresh_schema("numbers"));
    let mut setup = tasker::store::open(&config).unwrap();
    setup
        .start_run(&tasker::store::NewRun {
            run_id: "shared".into(),
            stage: "s".into(),
            task: "t".into(),
            facts: tasker::process::ProcessFacts::current(None),
            options: RunOptions::default(),
            start_time: chrono::Utc::now(),
            lost_before: chrono::Utc::now(),
            known_lost: None,
        })
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut s = tasker::store::open(&config).unwrap();
                (0..25)
                    .map(|i| {
                        s.subtask_start(
                            "shared",
                            &format!("w{w}-{i}"),
                            &SubtaskOptions::default(),
                            chrono::Utc::now(),
                        )
                        .unwrap()
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut all: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u32>>());
    assert_eq!(setup.subtasks("shared").unwrap().len(), 200);
}

/// A process with nothing to write holds no server connection: an idle one is
/// closed after `idle_disconnect`, and the next write opens one again.
#[test]
#[ignore = "needs PostgreSQL: scripts/test-postgres.sh runs it"]
fn an_idle_tracker_closes_its_connection_and_reopens_on_demand() {
    let url = pg_url();
    let app = format!("tasker_idle_{}", std::process::id());
    let mut c = pg_config(
        &format!("{url} application_name={app}"),
        &fresh_schema("idle"),
    );
    c.idle_disconnect = std::time::Duration::from_millis(300);
    c.heartbeat_interval = std::time::Duration::from_secs(3600);
    let t = Tracker::open(c).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let sessions = |admin: &mut postgres::Client| -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0)
    };
    let run = t
        .task_start("idle", "disconnect", RunOptions::default())
        .unwrap();
    assert_eq!(sessions(&mut admin), 1);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sessions(&mut admin) > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the idle connection stays open"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run.complete(Some("after the pause")).unwrap();
    assert_eq!(sessions(&mut admin), 1, "the next write opens one again");
    assert_eq!(
        t.run(run.run_id()).unwrap().status,
        tasker::Status::Completed
    );
}
