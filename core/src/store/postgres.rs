//! PostgreSQL: one server that the workers of many hosts report to.
//!
//! Everything lives in one schema (default `tasker`), created on first use.
//! Behaviour mirrors the SQLite store statement for statement: the same
//! validation inside the same transaction, the same events, the same rows
//! (`core/tests/store_suite.rs` runs one suite on both and compares them).
//! What differs is how concurrency is made safe across hosts:
//!
//! - migrations run inside a transaction holding an advisory lock, so many
//!   processes opening a new database at once apply each migration once;
//! - every write locks the rows of the runs it touches (`SELECT ... FOR
//!   UPDATE`, in run-id order) before anything else, so a transition is checked
//!   against a status nobody else can change meanwhile, the next free subtask
//!   number is race-free, and writers never deadlock;
//! - writers take an advisory lock before appending events, so event ids are
//!   handed out in commit order and `events_after` never skips one;
//! - increments are deltas (`items_complete = items_complete + $n`).
//!
//! Transitions and progress flushes are PL/pgSQL functions of the schema (see
//! the migration): one round trip each. The state machine's rules stay in Rust,
//! which passes the statuses a transition may start from.
//!
//! The `postgres` crate is synchronous (it runs a small tokio runtime of its
//! own): do not call this store on a tokio worker thread (use `spawn_blocking`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, GenericClient, NoTls, Row, Statement};
use chrono::{DateTime, SubsecRound, Utc};

use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::ffi::os::with_signals_blocked;
use crate::io_record::IoRecord;
use crate::model::Status;
use crate::query::{
    EventRow, HistoryFilter, IoRow, RunPageQuery, RunRow, RunSummary, StageRow, StatsFilter,
    StatusFilter, SubtaskRow, TaskRow, DEFAULT_HISTORY_LIMIT,
};
use crate::sampler::Sample;

use super::{
    refuse_tasks_with_runs, Op, OpId, Output, Queued, RunCount, RunSelector, Store, SubtaskState,
    TaskSelector, TasksDeleted, TasksWithRuns,
};

mod alerts;
mod logs;
mod write;

/// Migrations in order; index + 1 is the schema version.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "initial schema",
        include_str!("migrations/postgres/0001_initial.sql"),
    ),
    (
        "error detail of subtasks, progress batches applied exactly once",
        include_str!("migrations/postgres/0002_error_detail_and_exact_replay.sql"),
    ),
    // Changes the server functions: re-applies their one definition.
    (
        "subtask identities, every write applied once per writer",
        concat!(
            include_str!("migrations/postgres/0003_subtask_identity_and_writers.sql"),
            include_str!("migrations/postgres/functions.sql")
        ),
    ),
    (
        "process samples, attempts, captured metadata, inputs and outputs",
        concat!(
            include_str!("migrations/postgres/0004_samples_attempts_metadata_io.sql"),
            include_str!("migrations/postgres/functions.sql")
        ),
    ),
    (
        "run logs and item outcomes",
        concat!(
            include_str!("migrations/postgres/0005_run_logs_and_item_outcomes.sql"),
            include_str!("migrations/postgres/functions.sql")
        ),
    ),
    (
        "task dependencies, wait time of runs",
        include_str!("migrations/postgres/0006_task_dependencies.sql"),
    ),
    (
        "runs by host",
        include_str!("migrations/postgres/0007_runs_by_host.sql"),
    ),
    (
        "run-id prefixes in byte order",
        include_str!("migrations/postgres/0008_run_id_prefixes.sql"),
    ),
    (
        "alerts",
        include_str!("migrations/postgres/0009_alerts.sql"),
    ),
    (
        "writes answer the events they appended",
        concat!(
            include_str!("migrations/postgres/0010_events_of_writes.sql"),
            include_str!("migrations/postgres/functions.sql")
        ),
    ),
];

const BACKEND: &str = "postgresql";

/// Used when the connection string sets no `connect_timeout`, so that an
/// unreachable server fails a call instead of hanging it for minutes.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection attempts of this process that passed their deadline and still wait for
/// a server's answer, and how many may: a server that accepts and never answers
/// cannot collect one thread per retry.
static OVERDUE_HANDSHAKES: AtomicUsize = AtomicUsize::new(0);
const MAX_OVERDUE_HANDSHAKES: usize = 4;

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

/// Runs `connect` with a deadline on the whole connection establishment (TCP, TLS,
/// startup, authentication), as libpq's `connect_timeout` has. tokio-postgres's
/// covers the TCP connect only, so a server that accepts and never answers would
/// hold the caller forever. The attempt runs on a helper thread, left to finish on
/// its own once the deadline has passed (its connection is then dropped, unused).
fn within_deadline<T: Send + 'static>(
    limit: Duration,
    connect: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, &'static str> {
    if OVERDUE_HANDSHAKES.load(Ordering::SeqCst) >= MAX_OVERDUE_HANDSHAKES {
        return Err("earlier connection attempts are still waiting for the server's answer");
    }
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (done, answer) = mpsc::sync_channel(1);
    let spawned = {
        let state = Arc::clone(&state);
        with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("tasker-connect".into())
                .spawn(move || {
                    let result = connect();
                    if state.swap(FINISHED, Ordering::SeqCst) == ABANDONED {
                        OVERDUE_HANDSHAKES.fetch_sub(1, Ordering::SeqCst);
                    }
                    let _ = done.send(result);
                })
        })
    };
    if spawned.is_err() {
        return Err("the OS refused a thread for the connection attempt");
    }
    match answer.recv_timeout(limit) {
        Ok(result) => Ok(result),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the connection attempt broke off"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before it is marked, so the helper's decrement comes after.
            OVERDUE_HANDSHAKES.fetch_add(1, Ordering::SeqCst);
            match state.compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => Err("no answer from the server within connect_timeout"),
                Err(_) => {
                    // It finished just now after all.
                    OVERDUE_HANDSHAKES.fetch_sub(1, Ordering::SeqCst);
                    answer
                        .recv()
                        .map_err(|_| "the connection attempt ended without an answer")
                }
            }
        }
    }
}

/// A session idle inside a transaction this long is ended by the server.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a transaction aborted by a deadlock or serialization failure is retried.
const MAX_RETRIES: u32 = 10;

/// Timestamps are stored with microsecond precision; truncating first makes a
/// value read back equal to the value written (and to what SQLite stores).
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

type Param<'a> = &'a (dyn ToSql + Sync);

/// An error inside a store operation: from the database (maybe worth a retry)
/// or from tasker's own checks (never retried).
#[derive(Debug)]
enum Fail {
    Db(::postgres::Error),
    App(Error),
}

impl From<::postgres::Error> for Fail {
    fn from(e: ::postgres::Error) -> Fail {
        Fail::Db(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::App(e)
    }
}

type R<T> = std::result::Result<T, Fail>;

impl Fail {
    fn retriable(&self) -> bool {
        match self {
            Fail::Db(e) => matches!(
                e.code(),
                Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
            ),
            Fail::App(_) => false,
        }
    }

    fn into_error(self) -> Error {
        match self {
            Fail::Db(e) if refused(&e) => Error::storage_refused(BACKEND, pg_message(&e)),
            Fail::Db(e) => Error::unavailable(BACKEND, pg_message(&e)),
            Fail::App(e) => e,
        }
    }
}

/// A readable message for a database error: the server's message with its
/// SQLSTATE, detail and hint, or the client's error with its causes.
fn pg_message(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            m.push_str(&format!("; {d}"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!("; hint: {h}"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !m.contains(&text) {
            m.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    if e.is_closed() && !m.contains("closed") {
        m.push_str(" (the connection to the server was closed)");
    }
    m
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn status_of(s: &str) -> R<Status> {
    Ok(s.parse::<Status>()?)
}

fn i64_of(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// A statement parameter with its PostgreSQL type. Types are given with every
/// call so that a statement can run without being prepared first: through a
/// transaction pooler (PgBouncer in transaction mode) consecutive statements may
/// reach different server sessions, so named prepared statements cannot be used.
type Typed<'a> = (&'a (dyn ToSql + Sync), Type);

/// How statements reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pooler {
    /// A session of its own: statements are prepared once per connection (named)
    /// and sessions settings are set at connect.
    None,
    /// A transaction pooler in front: unnamed statements, parameters typed in the
    /// same round trip, no session state.
    Transaction,
}

/// The statements of one connection, keyed by their template. Templates write
/// tables as `@.name`; `@.` becomes the quoted schema.
struct Statements {
    prefix: String,
    map: HashMap<String, Statement>,
    pooler: Pooler,
}

impl Statements {
    fn sql(&self, template: &str) -> String {
        template.replace("@.", &self.prefix)
    }

    fn prepare(
        &mut self,
        c: &mut impl GenericClient,
        template: &str,
        p: &[Typed<'_>],
    ) -> R<Statement> {
        if let Some(s) = self.map.get(template) {
            return Ok(s.clone());
        }
        let types: Vec<Type> = p.iter().map(|(_, t)| t.clone()).collect();
        let st = c.prepare_typed(&self.sql(template), &types)?;
        self.map.insert(template.to_string(), st.clone());
        Ok(st)
    }

    fn exec(&mut self, c: &mut impl GenericClient, template: &str, p: &[Typed<'_>]) -> R<u64> {
        if self.pooler == Pooler::Transaction {
            return Ok(c.execute_typed(&self.sql(template), p)?);
        }
        let st = self.prepare(c, template, p)?;
        Ok(c.execute(&st, &values(p))?)
    }

    fn one(&mut self, c: &mut impl GenericClient, template: &str, p: &[Typed<'_>]) -> R<Row> {
        if self.pooler == Pooler::Transaction {
            return Ok(c.query_typed_one(&self.sql(template), p)?);
        }
        let st = self.prepare(c, template, p)?;
        Ok(c.query_one(&st, &values(p))?)
    }

    fn opt(
        &mut self,
        c: &mut impl GenericClient,
        template: &str,
        p: &[Typed<'_>],
    ) -> R<Option<Row>> {
        if self.pooler == Pooler::Transaction {
            return Ok(c.query_typed_opt(&self.sql(template), p)?);
        }
        let st = self.prepare(c, template, p)?;
        Ok(c.query_opt(&st, &values(p))?)
    }

    fn all(&mut self, c: &mut impl GenericClient, template: &str, p: &[Typed<'_>]) -> R<Vec<Row>> {
        if self.pooler == Pooler::Transaction {
            return Ok(c.query_typed(&self.sql(template), p)?);
        }
        let st = self.prepare(c, template, p)?;
        Ok(c.query(&st, &values(p))?)
    }
}

fn values<'a>(p: &[Typed<'a>]) -> Vec<Param<'a>> {
    p.iter().map(|(v, _)| *v).collect()
}

/// sslmode values of libpq that tasker understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What `connect` needs: the parsed connection settings and the TLS choice.
struct ConnSpec {
    config: ::postgres::Config,
    ssl: SslMode,
    root_cert: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    /// How long a statement waits for a row lock held by another session (the
    /// config's `busy_timeout`, as for SQLite) before failing with a storage error.
    lock_timeout: Duration,
    /// `pooler=transaction` in the connection string: a transaction pooler
    /// (PgBouncer) is in front, so nothing may rely on session state.
    pooler: Pooler,
}

impl std::fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl ConnSpec {
    /// Parses a libpq connection string (URL or `key=value` pairs). The TLS
    /// settings the client library does not know (`verify-ca`, `verify-full`,
    /// `sslrootcert`, `sslcert`, `sslkey`) are taken out and handled here.
    fn parse(conninfo: &Secret) -> Result<ConnSpec> {
        let (rest, tls) = split_tls_params(conninfo.expose())?;
        let mut config: ::postgres::Config = rest.parse().map_err(|e: ::postgres::Error| {
            Error::Config(format!(
                "invalid PostgreSQL connection string {}: {e}",
                crate::config::redact(conninfo.expose())
            ))
        })?;
        let mut ssl = SslMode::Prefer;
        let mut root_cert = None;
        let (mut cert, mut key) = (None, None);
        let mut pooler = Pooler::None;
        for (k, v) in tls {
            match k.as_str() {
                "pooler" => {
                    pooler = match v.as_str() {
                        "transaction" => Pooler::Transaction,
                        "none" | "session" | "" => Pooler::None,
                        other => {
                            return Err(Error::Config(format!(
                                "unknown pooler {other:?}: use pooler=transaction (PgBouncer in transaction mode) or pooler=none"
                            )))
                        }
                    }
                }
                "sslmode" => {
                    ssl = match v.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(Error::Config(format!(
                                "unknown sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
                            )))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(v)),
                "sslcert" => cert = Some(PathBuf::from(v)),
                "sslkey" => key = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        // libpq: with a root certificate given, `require` verifies the chain too.
        if ssl == SslMode::Require && root_cert.is_some() {
            ssl = SslMode::VerifyCa;
        }
        if matches!(ssl, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            let default = std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".postgresql/root.crt"))
                .filter(|p| p.is_file());
            root_cert = Some(default.ok_or_else(|| {
                Error::Config(
                    "sslmode verify-ca / verify-full needs the CA certificate that signed the \
                     server's certificate: set sslrootcert=/path/to/ca.pem"
                        .into(),
                )
            })?);
        }
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "a client certificate needs both sslcert and sslkey".into(),
                ))
            }
        };
        config.ssl_mode(match ssl {
            SslMode::Disable => ::postgres::config::SslMode::Disable,
            SslMode::Prefer => ::postgres::config::SslMode::Prefer,
            _ => ::postgres::config::SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tasker");
        }
        Ok(ConnSpec {
            config,
            ssl,
            root_cert,
            client_cert,
            lock_timeout: Duration::from_secs(30),
            pooler,
        })
    }

    /// Where we connect, without the password.
    fn describe(&self) -> String {
        use ::postgres::config::Host;
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(s) => s.clone(),
                Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        let mut s = format!(
            "host={}",
            if hosts.is_empty() {
                "localhost".into()
            } else {
                hosts.join(",")
            }
        );
        s.push_str(&format!(
            " port={}",
            if ports.is_empty() {
                "5432".into()
            } else {
                ports.join(",")
            }
        ));
        if let Some(d) = self.config.get_dbname() {
            s.push_str(&format!(" dbname={d}"));
        }
        if let Some(u) = self.config.get_user() {
            s.push_str(&format!(" user={u}"));
        }
        s
    }

    /// Connects. With `first` (opening the store), a refusal that waiting will
    /// not cure (authentication, no such database) is a configuration error, so
    /// that it is reported at once instead of being retried as an outage.
    fn connect(&self, first: bool) -> Result<Client> {
        let fail = |e: &::postgres::Error| {
            let msg = format!(
                "cannot connect to PostgreSQL ({}): {}",
                self.describe(),
                connect_message(e)
            );
            if first && refused_for_good(e) {
                Error::Config(crate::config::redact(&msg))
            } else {
                Error::unavailable(BACKEND, msg)
            }
        };
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            + Duration::from_secs(1);
        let config = self.config.clone();
        let res = match self.ssl {
            SslMode::Disable => within_deadline(limit, move || config.connect(NoTls)),
            _ => {
                let tls = tls::connector(self).map_err(|e| {
                    Error::Config(format!("TLS setup for {}: {e}", self.describe()))
                })?;
                within_deadline(limit, move || config.connect(tls))
            }
        };
        let mut client = match res {
            Ok(connected) => connected.map_err(|e| fail(&e))?,
            Err(why) => {
                return Err(Error::unavailable(
                    BACKEND,
                    format!("cannot connect to PostgreSQL ({}): {why}", self.describe()),
                ))
            }
        };
        // A session of a host that vanished mid-transaction must not hold locks
        // for hours (until TCP keepalive notices), and no call waits forever.
        // Through a transaction pooler a session setting would leak to other
        // clients of the server session (or be lost): set them on the role there.
        if self.pooler == Pooler::Transaction {
            return Ok(client);
        }
        client
            .batch_execute(&format!(
                "SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}",
                self.lock_timeout.as_millis().max(1),
                IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
            ))
            .map_err(|e| fail(&e))?;
        Ok(client)
    }
}

/// Whether the server refused a statement for a reason that waiting will not cure.
/// Connection errors (no SQLSTATE) and the classes of unavailability (08 connection,
/// 53 resources, 57 operator intervention, 58 system, 40 rollbacks, 55P03 lock
/// timeout) are transient; every other SQLSTATE is a refusal.
fn refused(e: &::postgres::Error) -> bool {
    match e.code() {
        None => false,
        Some(code) => {
            let c = code.code();
            !(["08", "53", "57", "58", "40"]
                .iter()
                .any(|class| c.starts_with(class))
                || c == "55P03")
        }
    }
}

/// Whether a failed connection is refused for a reason that retrying will not cure.
fn refused_for_good(e: &::postgres::Error) -> bool {
    match e.code() {
        Some(code) => code.code().starts_with("28") || *code == SqlState::INVALID_CATALOG_NAME,
        None => e.to_string().contains("password missing"),
    }
}

/// Explains a failed connection: which part is wrong, never the password.
fn connect_message(e: &::postgres::Error) -> String {
    let m = pg_message(e);
    if let Some(db) = e.as_db_error() {
        let hint = match *db.code() {
            SqlState::INVALID_PASSWORD => " (wrong password for this user)",
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                " (the server refuses this user, host or database: check pg_hba.conf and the user name)"
            }
            SqlState::INVALID_CATALOG_NAME => " (the database does not exist)",
            SqlState::TOO_MANY_CONNECTIONS => {
                " (the server has no connection slot left: put a transaction pooler such as \
                 PgBouncer in front and add pooler=transaction to the connection string, or \
                 raise max_connections; tracking keeps the writes and retries meanwhile)"
            }
            _ => "",
        };
        return format!("{m}{hint}");
    }
    let lower = m.to_ascii_lowercase();
    let hint = if lower.contains("lookup address") || lower.contains("name or service not known") {
        " (unknown host name)"
    } else if lower.contains("connection refused") {
        " (no server listening there: is PostgreSQL running, and are host and port right?)"
    } else if lower.contains("timed out") {
        " (the server did not answer in time)"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        " (TLS: check sslmode, sslrootcert and the host name in the server's certificate)"
    } else if lower.contains("password missing") {
        " (the server asks for a password and none was given)"
    } else {
        ""
    };
    format!("{m}{hint}")
}

/// Takes the parameters tasker handles itself (TLS, `pooler`) out of a connection string
/// (URL query or `key=value` pairs) and returns the rest unchanged.
fn split_tls_params(conninfo: &str) -> Result<(String, Vec<(String, String)>)> {
    const OURS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "pooler"];
    let s = conninfo.trim();
    let mut taken = Vec::new();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let Some((base, query)) = s.split_once('?') else {
            return Ok((s.to_string(), taken));
        };
        let mut kept = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if OURS.contains(&k) {
                taken.push((k.to_string(), percent_decode(v)));
            } else {
                kept.push(kv);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, taken));
    }
    let pairs = parse_keyword_pairs(s)?;
    let mut kept = Vec::new();
    for (k, v) in pairs {
        if OURS.contains(&k.as_str()) {
            taken.push((k, v));
        } else {
            kept.push(format!(
                "{k}='{}'",
                v.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((kept.join(" "), taken))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses libpq `key=value` pairs; values may be single-quoted with `\'` and `\\`.
fn parse_keyword_pairs(s: &str) -> Result<Vec<(String, String)>> {
    let bad = |why: &str| {
        Error::Config(format!(
            "invalid PostgreSQL connection string {}: {why}",
            crate::config::redact(s)
        ))
    };
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad(&format!("expected '=' after {key:?}")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated quoted value")),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad("unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

mod tls {
    //! rustls (with the ring provider) for the libpq sslmodes.

    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
    use tokio_postgres_rustls::MakeRustlsConnect;

    use super::{ConnSpec, SslMode};

    pub(super) fn connector(spec: &ConnSpec) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = match spec.ssl {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                Arc::new(AcceptAny(Arc::clone(&provider)))
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let path = spec.root_cert.as_ref().expect("checked when parsing");
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
                for c in certs {
                    let c =
                        c.map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
                    roots.add(c).map_err(|e| {
                        format!("bad certificate in sslrootcert {}: {e}", path.display())
                    })?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "sslrootcert {} holds no certificate",
                        path.display()
                    ));
                }
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| e.to_string())?;
                if spec.ssl == SslMode::VerifyFull {
                    inner
                } else {
                    Arc::new(AnyName(inner))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &spec.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect())
                    .map_err(|e| format!("cannot read sslcert {}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("cannot read sslkey {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// `require`: encrypt, but trust any certificate (as libpq does).
    #[derive(Debug)]
    struct AcceptAny(Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// `verify-ca`: the chain must lead to the given CA; the host name is not checked.
    #[derive(Debug)]
    struct AnyName(Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

/// A connection to one PostgreSQL server, in one schema.
pub struct PostgresStore {
    /// `None` after the connection broke; the next call connects again.
    client: Option<Client>,
    spec: ConnSpec,
    schema: String,
    stmts: Statements,
    /// Advisory lock keys: (namespace, schema hash) for migrations and events.
    migrate_key: (i32, i32),
    events_key: (i32, i32),
    /// What the last write appended to the events table (`Store::take_events`).
    events: Vec<EventRow>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.spec.describe())
            .field("schema", &self.schema)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

/// A stable 32-bit hash (FNV-1a) of a schema name, for advisory lock keys.
fn key_of(s: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// Advisory lock namespaces ("tkmg", "tkev").
const LOCK_MIGRATE: i32 = 0x746b_6d67;
const LOCK_EVENTS: i32 = 0x746b_6576;

impl PostgresStore {
    /// Connects, creates the schema if it is missing, and applies migrations.
    pub fn open(conninfo: &Secret, schema: &str, config: &Config) -> Result<PostgresStore> {
        if schema.trim().is_empty() || schema.contains('\0') || schema.len() > 63 {
            return Err(Error::Config(format!(
                "invalid PostgreSQL schema name {schema:?}: it must be 1 to 63 bytes, without NUL"
            )));
        }
        let mut spec = ConnSpec::parse(conninfo)?;
        spec.lock_timeout = config.busy_timeout;
        let pooler = spec.pooler;
        let mut store = PostgresStore {
            client: Some(spec.connect(true)?),
            spec,
            schema: schema.to_string(),
            stmts: Statements {
                prefix: format!("{}.", quote_ident(schema)),
                map: HashMap::new(),
                pooler,
            },
            migrate_key: (LOCK_MIGRATE, key_of(schema)),
            events_key: (LOCK_EVENTS, key_of(schema)),
            events: Vec::new(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The schema that holds tasker's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema version of the open database.
    pub fn schema_version(&mut self) -> Result<i64> {
        self.read(|c, st| {
            Ok(st
                .one(c, "SELECT MAX(version) FROM @.schema_version", &[])?
                .try_get(0)?)
        })
    }

    /// Connects again if the last connection broke.
    fn ensure_connected(&mut self) -> Result<()> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let c = self.spec.connect(false)?;
            self.stmts.map.clear();
            self.client = Some(c);
        }
        Ok(())
    }

    /// Drops a connection that failed, so the next call starts afresh.
    fn after_failure(&mut self, f: &Fail) {
        if let Fail::Db(e) = f {
            if e.is_closed() || e.as_db_error().is_none() {
                self.client = None;
                self.stmts.map.clear();
            }
        }
    }

    /// Runs `f` in one transaction and commits, retrying after a deadlock or a
    /// serialization failure (the transaction was rolled back, so it is safe).
    fn write<T>(
        &mut self,
        mut f: impl FnMut(&mut ::postgres::Transaction<'_>, &mut Statements, (i32, i32)) -> R<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            self.ensure_connected()?;
            let events_key = self.events_key;
            let local_lock_timeout = (self.spec.pooler == Pooler::Transaction).then(|| {
                format!(
                    "SET LOCAL lock_timeout = {}",
                    self.spec.lock_timeout.as_millis().max(1)
                )
            });
            let PostgresStore { client, stmts, .. } = self;
            let client = client.as_mut().expect("connected");
            let res = (|| -> R<T> {
                let mut tx = client.transaction()?;
                // Through a pooler the session's own setting is not ours to set.
                if let Some(set) = &local_lock_timeout {
                    tx.batch_execute(set)?;
                }
                let v = f(&mut tx, stmts, events_key)?;
                tx.commit()?;
                Ok(v)
            })();
            match res {
                Ok(v) => return Ok(v),
                Err(e) if self.pooler_detected(&e) => {}
                Err(e) if e.retriable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(
                        u64::from(attempt) * 3 + u64::from(std::process::id() % 7),
                    ));
                }
                Err(e) => {
                    self.after_failure(&e);
                    return Err(e.into_error());
                }
            }
        }
    }

    /// A named prepared statement that the server does not have (or has twice)
    /// means a transaction pooler sends our statements to different server
    /// sessions. Nothing was executed (the statement failed at Parse or Bind), so
    /// the call is tried again in pooler mode, and the user is told once.
    fn pooler_detected(&mut self, e: &Fail) -> bool {
        let code = match e {
            Fail::Db(db) => db.code(),
            Fail::App(_) => None,
        };
        let pooled = matches!(
            code,
            Some(&SqlState::INVALID_SQL_STATEMENT_NAME | &SqlState::DUPLICATE_PSTATEMENT)
        );
        if !pooled || self.stmts.pooler == Pooler::Transaction {
            return false;
        }
        log::warn!(
            "tasker: {} looks like a transaction pooler (PgBouncer): prepared statements do not \
             stay on one server session; using unnamed statements from now on (add \
             pooler=transaction to the connection string to say so, and set lock_timeout on \
             the role)",
            self.spec.describe()
        );
        self.stmts.pooler = Pooler::Transaction;
        self.stmts.map.clear();
        self.spec.pooler = Pooler::Transaction;
        true
    }

    /// Runs `f` on the connection outside any explicit transaction (each statement
    /// its own: one round trip for a function call), retrying after a deadlock or a
    /// serialization failure.
    /// `Store::apply`, adding the events the write appended to `self.events`.
    fn apply_adding_events(&mut self, op: &Op, id: Option<&OpId>) -> Result<Output> {
        let mut events = Vec::new();
        let out = match op {
            Op::Register { .. } => self.write(|tx, st, key| {
                events.clear();
                write::apply_on(tx, st, key, op, id, &mut events)
            }),
            _ => self.autocommit(|c, st, key| {
                events.clear();
                write::apply_on(c, st, key, op, id, &mut events)
            }),
        }?;
        self.events.append(&mut events);
        Ok(out)
    }

    fn autocommit<T>(
        &mut self,
        mut f: impl FnMut(&mut Client, &mut Statements, (i32, i32)) -> R<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            self.ensure_connected()?;
            let events_key = self.events_key;
            let PostgresStore { client, stmts, .. } = self;
            let client = client.as_mut().expect("connected");
            match f(client, stmts, events_key) {
                Ok(v) => return Ok(v),
                Err(e) if self.pooler_detected(&e) => {}
                Err(e) if e.retriable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(
                        u64::from(attempt) * 3 + u64::from(std::process::id() % 7),
                    ));
                }
                Err(e) => {
                    self.after_failure(&e);
                    return Err(e.into_error());
                }
            }
        }
    }

    /// Runs a read outside any explicit transaction.
    fn read<T>(&mut self, mut f: impl FnMut(&mut Client, &mut Statements) -> R<T>) -> Result<T> {
        self.ensure_connected()?;
        let PostgresStore { client, stmts, .. } = self;
        let mut res = f(client.as_mut().expect("connected"), stmts);
        if let Err(e) = &res {
            if self.pooler_detected(e) {
                let PostgresStore { client, stmts, .. } = self;
                res = f(client.as_mut().expect("connected"), stmts);
            }
        }
        res.map_err(|e| {
            self.after_failure(&e);
            e.into_error()
        })
    }

    fn migrate(&mut self) -> Result<()> {
        let schema = self.schema.clone();
        let q = quote_ident(&schema);
        let target = MIGRATIONS.len() as i64;
        let migrate_key = self.migrate_key;
        self.ensure_connected()?;
        let client = self.client.as_mut().expect("connected");
        let fail = |what: &str, e: ::postgres::Error| {
            Error::unavailable(BACKEND, format!("{what}: {}", pg_message(&e)))
        };
        // Fast path: the schema exists, we may use it, and it is up to date.
        // Typed, unnamed statements throughout: they work through a transaction
        // pooler as well as on a session of our own.
        let row = client
            .query_typed_one(
                "SELECT current_user::text, current_database()::text,
                        (SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = $1)",
                &[(&schema, Type::TEXT)],
            )
            .map_err(|e| fail("cannot read the server's catalog", e))?;
        let user: String = row.get(0);
        let database: String = row.get(1);
        let usage: Option<bool> = row.get(2);
        if usage == Some(false) {
            return Err(Error::Config(format!(
                    "permission denied: user {user:?} may not use schema {schema:?} in database {database:?}; \
                     ask an administrator to GRANT USAGE, CREATE ON SCHEMA {q} TO {} \
                     (or choose another schema)",
                    quote_ident(&user)
                ),
            ));
        }
        if usage == Some(true) {
            let exists: bool = client
                .query_typed_one(
                    "SELECT to_regclass($1) IS NOT NULL",
                    &[(&format!("{q}.schema_version"), Type::TEXT)],
                )
                .map_err(|e| fail("cannot read the server's catalog", e))?
                .get(0);
            if exists {
                let v: i64 = client
                    .query_typed_one(
                        &format!("SELECT COALESCE(MAX(version), 0) FROM {q}.schema_version"),
                        &[],
                    )
                    .map_err(|e| {
                        fail(
                            &format!("cannot read the schema version in schema {schema:?}"),
                            e,
                        )
                    })?
                    .get(0);
                if v > target {
                    return Err(newer_schema(v, target));
                }
                if v == target {
                    return Ok(());
                }
            }
        }
        // Slow path: one process at a time creates the schema and migrates.
        let mut tx = client
            .transaction()
            .map_err(|e| fail("cannot begin the migration", e))?;
        tx.execute_typed(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[(&migrate_key.0, Type::INT4), (&migrate_key.1, Type::INT4)],
        )
        .map_err(|e| fail("cannot take the migration lock", e))?;
        if usage.is_none() {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {q}"))
                .map_err(|e| {
                    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                        Error::Config(format!(
                                "permission denied: schema {schema:?} does not exist and user {user:?} may not create it \
                                 in database {database:?} ({}); ask an administrator to run \
                                 CREATE SCHEMA {q} AUTHORIZATION {} (or to GRANT CREATE ON DATABASE {} TO {}), \
                                 or choose a schema you may use",
                                pg_message(&e),
                                quote_ident(&user),
                                quote_ident(&database),
                                quote_ident(&user)
                            ),
                        )
                    } else {
                        fail(&format!("cannot create schema {schema:?}"), e)
                    }
                })?;
        }
        let denied = |e: ::postgres::Error| {
            if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                Error::Config(format!(
                        "permission denied: user {user:?} may not create tasker's tables in schema {schema:?} ({}); \
                         ask an administrator to GRANT CREATE ON SCHEMA {q} TO {}, or to open the database once as its owner",
                        pg_message(&e),
                        quote_ident(&user)
                    ),
                )
            } else {
                fail(&format!("cannot migrate schema {schema:?}"), e)
            }
        };
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {q};
             CREATE TABLE IF NOT EXISTS schema_version (
                 version bigint PRIMARY KEY,
                 description text NOT NULL,
                 applied_at timestamptz NOT NULL)"
        ))
        .map_err(denied)?;
        let current: i64 = tx
            .query_typed_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .map_err(denied)?
            .get(0);
        if current > target {
            return Err(newer_schema(current, target));
        }
        for (i, (description, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).map_err(denied)?;
            tx.execute_typed(
                "INSERT INTO schema_version(version, description, applied_at) VALUES ($1, $2, $3)",
                &[
                    (&(i as i64 + 1), Type::INT8),
                    (description, Type::TEXT),
                    (&ts(Utc::now()), Type::TIMESTAMPTZ),
                ],
            )
            .map_err(denied)?;
        }
        tx.commit()
            .map_err(|e| fail("cannot commit the migration", e))
    }
}

fn newer_schema(v: i64, known: i64) -> Error {
    Error::storage_refused(
        BACKEND,
        format!("database schema version {v} is newer than this tasker understands ({known}); upgrade tasker"),
    )
}

/// Columns of a run row, in the order `map_run` reads them. `r` may be NULL
/// (a registered task that never ran) in `task_status`.
const RUN_COLUMNS: &str = "
    r.run_id, s.stage_name, s.stage_order, t.task_name, t.task_type, t.task_order,
    COALESCE(r.status, 'NOT_STARTED'), r.hostname, r.process_id, r.parent_pid,
    r.process_start_time, r.user_name, r.start_time, r.end_time, r.last_update,
    r.heartbeat_time, r.total_subtasks, r.current_subtask, r.overall_percent, r.message,
    r.version, r.git_commit,
    COALESCE(r.script_path, t.script_path), COALESCE(r.script_filename, t.script_filename),
    COALESCE(r.log_path, t.log_path), COALESCE(r.log_filename, t.log_filename),
    r.error_message, r.error_detail, r.metadata,
    (SELECT COUNT(*) FROM @.subtasks x WHERE x.run_id = r.run_id AND x.status IN ('COMPLETED','SKIPPED')),
    (SELECT COALESCE(SUM(CASE
        WHEN x.status IN ('COMPLETED','SKIPPED') THEN 1.0::float8
        WHEN x.items_total > 0 THEN LEAST(1.0::float8, x.items_complete::float8 / x.items_total::float8)
        WHEN x.percent IS NOT NULL THEN x.percent / 100.0::float8
        ELSE 0.0::float8 END), 0.0::float8) FROM @.subtasks x WHERE x.run_id = r.run_id),
    (SELECT COUNT(*) FROM @.subtasks x WHERE x.run_id = r.run_id),
    r.attempt, r.retry_of, r.command_line, r.git_dirty, r.runtime, r.tasker_version,
    r.wait_seconds";

const RUN_FROM: &str =
    "FROM @.runs r JOIN @.tasks t ON t.task_id = r.task_id JOIN @.stages s ON s.stage_id = t.stage_id";

/// Names sort by bytes, as in SQLite, whatever the database's collation.
const STAGE_TASK_ORDER: &str = "COALESCE(s.stage_order, 2147483647), s.stage_name COLLATE \"C\", COALESCE(t.task_order, 2147483647), t.task_name COLLATE \"C\"";

fn map_run(row: &Row) -> R<RunRow> {
    let metadata: Option<serde_json::Value> = row.try_get(28)?;
    Ok(RunRow {
        run_id: row.try_get(0)?,
        stage_name: row.try_get(1)?,
        stage_order: row.try_get(2)?,
        task_name: row.try_get(3)?,
        task_type: row.try_get(4)?,
        task_order: row.try_get(5)?,
        status: status_of(row.try_get(6)?)?,
        hostname: row.try_get(7)?,
        process_id: row.try_get(8)?,
        parent_pid: row.try_get(9)?,
        process_start_time: row.try_get(10)?,
        user_name: row.try_get(11)?,
        start_time: row.try_get(12)?,
        end_time: row.try_get(13)?,
        last_update: row.try_get(14)?,
        heartbeat_time: row.try_get(15)?,
        total_subtasks: row.try_get(16)?,
        current_subtask: row.try_get(17)?,
        overall_percent_complete: None,
        explicit_percent: row.try_get(18)?,
        overall_progress_message: row.try_get(19)?,
        version: row.try_get(20)?,
        git_commit: row.try_get(21)?,
        script_path: row.try_get(22)?,
        script_filename: row.try_get(23)?,
        log_path: row.try_get(24)?,
        log_filename: row.try_get(25)?,
        error_message: row.try_get(26)?,
        error_detail: row.try_get(27)?,
        metadata,
        subtasks_completed: row.try_get(29)?,
        subtask_fraction_sum: row.try_get(30)?,
        subtask_count: row.try_get(31)?,
        attempt: row.try_get(32)?,
        retry_of: row.try_get(33)?,
        command_line: row.try_get(34)?,
        git_dirty: row.try_get(35)?,
        runtime: row.try_get(36)?,
        tasker_version: row.try_get(37)?,
        wait_seconds: row.try_get(38)?,
        lost: false,
        duration_seconds: None,
        eta_seconds: None,
        eta_low: None,
        eta_high: None,
        eta_basis: None,
    })
}

fn map_subtask(row: &Row) -> R<SubtaskRow> {
    Ok(SubtaskRow {
        run_id: row.try_get(0)?,
        subtask_number: row.try_get(1)?,
        subtask_name: row.try_get(2)?,
        status: status_of(row.try_get(3)?)?,
        start_time: row.try_get(4)?,
        end_time: row.try_get(5)?,
        last_update: row.try_get(6)?,
        items_total: row.try_get(7)?,
        items_complete: row.try_get(8)?,
        stored_percent: row.try_get(9)?,
        percent_complete: None,
        progress_message: row.try_get(10)?,
        error_message: row.try_get(11)?,
        error_detail: row.try_get(12)?,
        rate_per_second: None,
        eta_seconds: None,
        eta_low: None,
        eta_high: None,
    })
}

fn limit_param(limit: Option<usize>) -> Option<i64> {
    limit.map(|l| l.min(i64::MAX as usize) as i64)
}

fn file_name(path: &str) -> Option<String> {
    Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
}

/// JSONB cannot hold the NUL character; say so instead of failing in the server.
fn check_metadata(m: &serde_json::Value) -> Result<()> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(m) {
        return Err(Error::invalid(
            "metadata",
            m,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// The statuses from which `to` may be entered (all of them for a reset).
fn allowed_from(to: Status, reset: bool) -> Vec<&'static str> {
    Status::ALL
        .into_iter()
        .filter(|from| reset || from.can_become(to))
        .map(Status::as_str)
        .collect()
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn outcome_may_be_unknown(&self) -> bool {
        true
    }

    fn apply(&mut self, op: &Op, id: Option<&OpId>) -> Result<Output> {
        self.events.clear();
        self.apply_adding_events(op, id)
    }

    fn apply_after(
        &mut self,
        first: (&Op, Option<&OpId>),
        op: (&Op, Option<&OpId>),
    ) -> Result<(Output, Result<Output>)> {
        self.events.clear();
        let combined = matches!(first.0, Op::Progress { .. })
            && matches!(
                op.0,
                Op::RunTransition { .. } | Op::SubtaskTransition { .. }
            );
        if !combined {
            let progressed = self.apply_adding_events(first.0, first.1)?;
            return match self.apply_adding_events(op.0, op.1) {
                Err(e) if e.is_transient() => Err(e),
                answer => Ok((progressed, answer)),
            };
        }
        // One statement: one round trip and one transaction for both.
        let mut events = Vec::new();
        let out = self.autocommit(|c, st, key| {
            events.clear();
            write::progress_then(c, st, key, first, op, &mut events)
                .expect("a progress write and a transition")
        })?;
        self.events = events;
        Ok(out)
    }

    fn apply_batch(&mut self, ops: &[Queued]) -> Result<Vec<Result<Output>>> {
        self.events.clear();
        let mut events = Vec::new();
        let batch = self.write(|tx, st, key| {
            events.clear();
            let mut outs = Vec::with_capacity(ops.len());
            for q in ops {
                match write::apply_on(tx, st, key, &q.op, q.id.as_ref(), &mut events) {
                    Ok(out) => outs.push(Ok(out)),
                    Err(Fail::App(e)) => outs.push(Err(e)),
                    Err(db) => return Err(db),
                }
            }
            Ok(outs)
        });
        match batch {
            // A server error aborts the whole transaction: apply the writes one at a
            // time, so that only the write it was about is refused. (They carry ids:
            // those applied before a transient error are skipped when sent again.)
            Err(e) if !e.is_transient() && ops.len() > 1 => ops
                .iter()
                .map(|q| match self.apply_adding_events(&q.op, q.id.as_ref()) {
                    Err(e) if e.is_transient() => Err(e),
                    answer => Ok(answer),
                })
                .collect(),
            other => {
                self.events = events;
                other
            }
        }
    }

    fn take_events(&mut self) -> Vec<EventRow> {
        std::mem::take(&mut self.events)
    }

    fn run_status(&mut self, run_id: &str) -> Result<Option<Status>> {
        self.read(|c, st| {
            st.opt(
                c,
                "SELECT status FROM @.runs WHERE run_id = $1",
                &[(&run_id, Type::TEXT)],
            )?
            .map(|r| status_of(r.try_get(0)?))
            .transpose()
        })
    }

    fn subtask_state(&mut self, run_id: &str, number: u32) -> Result<Option<SubtaskState>> {
        self.read(|c, st| {
            st.opt(
                c,
                "SELECT status, items_total, subtask_uid FROM @.subtasks
                 WHERE run_id = $1 AND subtask_number = $2",
                &[(&run_id, Type::TEXT), (&i64::from(number), Type::INT8)],
            )?
            .map(|r| {
                let uid: Option<String> = r.try_get(2)?;
                Ok(SubtaskState {
                    status: status_of(r.try_get(0)?)?,
                    items_total: r.try_get(1)?,
                    uid: uid.map(Arc::from),
                })
            })
            .transpose()
        })
    }

    fn delete_runs(&mut self, which: &RunSelector) -> Result<usize> {
        let before = which.before.map(ts);
        let limit = limit_param(which.limit);
        self.write(|tx, st, _| {
            let n = st.exec(
                tx,
                "DELETE FROM @.runs WHERE run_id IN (
                    SELECT r.run_id FROM @.runs r JOIN @.tasks t ON t.task_id = r.task_id
                    JOIN @.stages s ON s.stage_id = t.stage_id
                    WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)
                      AND ($3::text IS NULL OR r.run_id = $3)
                      AND ($4::timestamptz IS NULL OR COALESCE(r.end_time, r.start_time) < $4)
                      AND (NOT $5::bool OR r.status <> 'FAILED')
                      AND (NOT $6::bool OR r.status = 'FAILED')
                      AND (NOT $7::bool OR r.end_time IS NOT NULL)
                    ORDER BY COALESCE(r.end_time, r.start_time) LIMIT $8)",
                &[
                    (&which.stage, Type::TEXT),
                    (&which.task, Type::TEXT),
                    (&which.run_id, Type::TEXT),
                    (&before, Type::TIMESTAMPTZ),
                    (&which.keep_failed, Type::BOOL),
                    (&which.failed_only, Type::BOOL),
                    (&which.finished_only, Type::BOOL),
                    (&limit, Type::INT8),
                ],
            )?;
            Ok(n as usize)
        })
    }

    fn delete_tasks(&mut self, which: &TaskSelector) -> Result<TasksDeleted> {
        let matching = "SELECT t.task_id FROM @.tasks t JOIN @.stages s ON s.stage_id = t.stage_id
             WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)";
        self.write(|tx, st, _| {
            let p: [Typed<'_>; 2] = [(&which.stage, Type::TEXT), (&which.task, Type::TEXT)];
            let with_runs: Vec<String> = st
                .all(
                    tx,
                    &format!(
                        "SELECT s.stage_name || '/' || t.task_name FROM @.tasks t
                         JOIN @.stages s ON s.stage_id = t.stage_id
                         WHERE t.task_id IN ({matching})
                           AND EXISTS (SELECT 1 FROM @.runs r WHERE r.task_id = t.task_id)
                         ORDER BY (s.stage_name || '/' || t.task_name) COLLATE \"C\""
                    ),
                    &p,
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            let mut done = TasksDeleted::default();
            match which.runs {
                TasksWithRuns::Refuse if !with_runs.is_empty() => {
                    return Err(Fail::App(refuse_tasks_with_runs(&with_runs)));
                }
                TasksWithRuns::Delete => {
                    done.runs = st.exec(
                        tx,
                        &format!("DELETE FROM @.runs WHERE task_id IN ({matching})"),
                        &p,
                    )? as usize;
                }
                TasksWithRuns::Keep => done.kept = with_runs,
                TasksWithRuns::Refuse => {}
            }
            done.tasks = st.exec(
                tx,
                &format!(
                    "DELETE FROM @.tasks x WHERE x.task_id IN ({matching})
                     AND NOT EXISTS (SELECT 1 FROM @.runs r WHERE r.task_id = x.task_id)"
                ),
                &p,
            )? as usize;
            done.stages = st.exec(
                tx,
                "DELETE FROM @.stages x WHERE NOT EXISTS (SELECT 1 FROM @.tasks t WHERE t.stage_id = x.stage_id)",
                &[],
            )? as usize;
            Ok(done)
        })
    }

    fn task_status(&mut self, filter: &StatusFilter) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}
             FROM @.tasks t JOIN @.stages s ON s.stage_id = t.stage_id
             LEFT JOIN @.runs r ON r.run_id = (
                SELECT r2.run_id FROM @.runs r2 WHERE r2.task_id = t.task_id
                ORDER BY r2.start_time DESC, r2.run_id COLLATE \"C\" DESC LIMIT 1)
             WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)
               AND ($3::text IS NULL OR COALESCE(r.status, 'NOT_STARTED') = $3)
             ORDER BY {STAGE_TASK_ORDER}
             LIMIT $4"
        );
        let status = filter.status.map(Status::as_str);
        let limit = limit_param(filter.limit);
        self.read(|c, st| {
            st.all(
                c,
                &sql,
                &[
                    (&filter.stage, Type::TEXT),
                    (&filter.task, Type::TEXT),
                    (&status, Type::TEXT),
                    (&limit, Type::INT8),
                ],
            )?
            .iter()
            .map(map_run)
            .collect()
        })
    }

    fn active_runs(&mut self) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE r.end_time IS NULL AND r.status IN ('STARTED','RUNNING','PAUSED')
             ORDER BY {STAGE_TASK_ORDER}, r.start_time"
        );
        self.read(|c, st| st.all(c, &sql, &[])?.iter().map(map_run).collect())
    }

    fn history(&mut self, filter: &HistoryFilter) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)
               AND ($3::text IS NULL OR r.status = $3) AND ($4::timestamptz IS NULL OR r.start_time >= $4)
               AND ($6::text IS NULL OR r.hostname = $6)
             ORDER BY r.start_time DESC, r.run_id COLLATE \"C\" DESC
             LIMIT $5"
        );
        let limit = limit_param(Some(filter.limit.unwrap_or(DEFAULT_HISTORY_LIMIT)));
        let status = filter.status.map(Status::as_str);
        let since = filter.since.map(ts);
        self.read(|c, st| {
            st.all(
                c,
                &sql,
                &[
                    (&filter.stage, Type::TEXT),
                    (&filter.task, Type::TEXT),
                    (&status, Type::TEXT),
                    (&since, Type::TIMESTAMPTZ),
                    (&limit, Type::INT8),
                    (&filter.host, Type::TEXT),
                ],
            )?
            .iter()
            .map(map_run)
            .collect()
        })
    }

    fn run(&mut self, run_id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} {RUN_FROM} WHERE r.run_id = $1");
        self.read(|c, st| {
            st.opt(c, &sql, &[(&run_id, Type::TEXT)])?
                .as_ref()
                .map(map_run)
                .transpose()
        })
    }

    fn run_page(&mut self, q: &RunPageQuery, now: DateTime<Utc>) -> Result<(Vec<RunRow>, usize)> {
        let statuses: Option<Vec<&str>> =
            (!q.statuses.is_empty()).then(|| q.statuses.iter().map(|s| s.as_str()).collect());
        let since = q.since.map(ts);
        let until = q.until.map(ts);
        let filter = "WHERE ($1::int8[] IS NULL OR r.task_id = ANY($1))
               AND ($2::text[] IS NULL OR r.status = ANY($2))
               AND ($3::text IS NULL OR r.hostname = $3)
               AND ($4::timestamptz IS NULL OR r.start_time >= $4)
               AND ($5::timestamptz IS NULL OR r.start_time < $5)";
        // Missing values lowest, as SQLite sorts NULL.
        let nulls = if q.ascending {
            " NULLS FIRST"
        } else {
            " NULLS LAST"
        };
        let order = super::run_page_order(
            q,
            "COALESCE(r.end_time, $6) - r.start_time",
            "r.start_time",
            "r.run_id COLLATE \"C\"",
            nulls,
        );
        let from = if super::run_page_needs_names(q) {
            RUN_FROM
        } else {
            "FROM @.runs r"
        };
        let filters: [Typed<'_>; 5] = [
            (&q.task_ids, Type::INT8_ARRAY),
            (&statuses, Type::TEXT_ARRAY),
            (&q.host, Type::TEXT),
            (&since, Type::TIMESTAMPTZ),
            (&until, Type::TIMESTAMPTZ),
        ];
        let limit = limit_param(Some(q.limit));
        let offset = limit_param(Some(q.offset));
        let now = ts(now);
        let count_sql = format!("SELECT COUNT(*) FROM @.runs r {filter}");
        // The page's ids are sorted with the run columns alone; the full rows (with
        // their subtask counts) are read for those ids only.
        let sql = format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM}
             WHERE r.run_id IN (SELECT r.run_id {from} {filter} ORDER BY {order} LIMIT $7 OFFSET $8)
             ORDER BY {order}"
        );
        self.read(|c, st| {
            let total: i64 = st.one(c, &count_sql, &filters)?.try_get(0)?;
            let mut p = filters.to_vec();
            p.extend([
                (&now as Param<'_>, Type::TIMESTAMPTZ),
                (&limit, Type::INT8),
                (&offset, Type::INT8),
            ]);
            let rows = st
                .all(c, &sql, &p)?
                .iter()
                .map(map_run)
                .collect::<R<Vec<RunRow>>>()?;
            Ok((rows, total as usize))
        })
    }

    fn run_counts(&mut self, buckets: &[f64]) -> Result<Vec<RunCount>> {
        let sums = super::bucket_sums(buckets, "r.d", "::int");
        let sql = format!(
            "SELECT s.stage_name, t.task_name, r.status, COUNT(*)::int8,
                COALESCE(SUM(r.d), 0.0)::float8,
                MAX(CASE WHEN r.status = 'COMPLETED' THEN r.end_time END){sums}
             FROM (SELECT task_id, status, end_time,
                     CASE WHEN status = 'COMPLETED' AND end_time IS NOT NULL THEN
                       GREATEST(0.0, EXTRACT(EPOCH FROM end_time - start_time))::float8 END AS d
                   FROM @.runs) r
             JOIN @.tasks t ON t.task_id = r.task_id JOIN @.stages s ON s.stage_id = t.stage_id
             GROUP BY r.task_id, s.stage_name, t.task_name, r.status"
        );
        let n = buckets.len();
        self.read(|c, st| {
            st.all(c, &sql, &[])?
                .iter()
                .map(|row| {
                    let mut at_most = Vec::with_capacity(n);
                    for i in 0..n {
                        at_most.push(row.try_get::<_, Option<i64>>(6 + i)?.unwrap_or(0));
                    }
                    Ok(RunCount {
                        stage_name: row.try_get(0)?,
                        task_name: row.try_get(1)?,
                        status: Some(status_of(row.try_get(2)?)?),
                        runs: row.try_get(3)?,
                        seconds: row.try_get(4)?,
                        last_end: row.try_get(5)?,
                        at_most,
                    })
                })
                .collect()
        })
    }

    fn run_ids_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        // A range of the byte-ordered index (runs_id_bytes), not a scan: `above` is
        // the smallest string after every string starting with `prefix`. No
        // `$3 IS NULL OR ...`: a generic plan would then scan to the index's end.
        let above = super::prefix_upper_bound(prefix);
        let below = if above.is_some() {
            "run_id COLLATE \"C\" < $3"
        } else {
            "$3::text IS NULL"
        };
        self.read(|c, st| {
            st.all(
                c,
                &format!(
                    "SELECT run_id FROM @.runs
                     WHERE run_id COLLATE \"C\" >= $1 AND {below}
                       AND starts_with(run_id, $1)
                     ORDER BY run_id COLLATE \"C\" LIMIT $2"
                ),
                &[
                    (&prefix, Type::TEXT),
                    (&limit, Type::INT8),
                    (&above, Type::TEXT),
                ],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
        })
    }

    fn subtasks(&mut self, run_id: &str) -> Result<Vec<SubtaskRow>> {
        self.read(|c, st| {
            st.all(
                c,
                "SELECT run_id, subtask_number, subtask_name, status, start_time, end_time,
                    last_update, items_total, items_complete, percent, message, error_message,
                    error_detail
                 FROM @.subtasks WHERE run_id = $1 ORDER BY subtask_number",
                &[(&run_id, Type::TEXT)],
            )?
            .iter()
            .map(map_subtask)
            .collect()
        })
    }

    fn subtasks_of_runs(&mut self, run_ids: &[&str]) -> Result<Vec<SubtaskRow>> {
        self.read(|c, st| {
            st.all(
                c,
                "SELECT run_id, subtask_number, subtask_name, status, start_time, end_time,
                    last_update, items_total, items_complete, percent, message, error_message,
                    error_detail
                 FROM @.subtasks WHERE run_id = ANY($1)
                 ORDER BY run_id COLLATE \"C\", subtask_number",
                &[(&run_ids, Type::TEXT_ARRAY)],
            )?
            .iter()
            .map(map_subtask)
            .collect()
        })
    }

    fn run_summaries(&mut self, f: &StatsFilter) -> Result<Vec<RunSummary>> {
        // No ORDER BY (statistics need none) and the window only when a limit asks for it.
        const COLUMNS: &str = "s.stage_name, t.task_name, r.run_id, r.status, r.start_time,
            r.end_time, COALESCE(r.heartbeat_time, r.last_update), r.hostname, r.process_id,
            r.process_start_time, r.attempt, r.retry_of";
        const FROM: &str = "FROM @.runs r JOIN @.tasks t ON t.task_id = r.task_id
            JOIN @.stages s ON s.stage_id = t.stage_id
           WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)
             AND ($3::timestamptz IS NULL OR r.start_time >= $3)";
        let sql = match f.limit {
            None => format!("SELECT {COLUMNS} {FROM} AND $4::bigint IS NULL"),
            Some(_) => format!(
                "SELECT * FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (
                    PARTITION BY r.task_id ORDER BY r.start_time DESC, r.run_id COLLATE \"C\" DESC) AS n
                  {FROM}) w WHERE w.n <= $4"
            ),
        };
        let since = f.since.map(ts);
        let limit = limit_param(f.limit);
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        let mut intern = |s: &str| -> Arc<str> {
            if let Some(a) = names.get(s) {
                return Arc::clone(a);
            }
            let a: Arc<str> = s.into();
            names.insert(s.to_string(), Arc::clone(&a));
            a
        };
        let mut runs: Vec<RunSummary> = self.read(|c, st| {
            st.all(
                c,
                &sql,
                &[
                    (&f.stage, Type::TEXT),
                    (&f.task, Type::TEXT),
                    (&since, Type::TIMESTAMPTZ),
                    (&limit, Type::INT8),
                ],
            )?
            .iter()
            .map(|row| {
                Ok(RunSummary {
                    stage_name: intern(row.try_get(0)?),
                    task_name: intern(row.try_get(1)?),
                    run_id: row.try_get(2)?,
                    status: status_of(row.try_get(3)?)?,
                    start_time: row.try_get(4)?,
                    end_time: row.try_get(5)?,
                    heartbeat_time: row.try_get(6)?,
                    hostname: row.try_get(7)?,
                    process_id: row.try_get(8)?,
                    process_start_time: row.try_get(9)?,
                    attempt: row.try_get(10)?,
                    retry_of: row.try_get(11)?,
                    items_complete: 0,
                })
            })
            .collect()
        })?;
        let window = super::items_window(&runs);
        let ids: Vec<&str> = window.iter().map(|&i| runs[i].run_id.as_str()).collect();
        if !ids.is_empty() {
            let items: HashMap<String, i64> = self.read(|c, st| {
                st.all(
                    c,
                    "SELECT run_id, SUM(items_complete)::bigint FROM @.subtasks
                      WHERE run_id = ANY($1) GROUP BY run_id",
                    &[(&ids, Type::TEXT_ARRAY)],
                )?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
            })?;
            super::fill_items(&mut runs, &window, &items);
        }
        Ok(runs)
    }

    fn subtask_durations(
        &mut self,
        stage: &str,
        task: &str,
        runs: usize,
    ) -> Result<Vec<(String, f64)>> {
        let runs = limit_param(Some(runs));
        self.read(|c, st| {
            st.all(
                c,
                "SELECT x.subtask_name,
                        GREATEST(EXTRACT(EPOCH FROM (x.end_time - x.start_time))::float8, 0.0::float8)
                   FROM @.subtasks x
                  WHERE x.status = 'COMPLETED' AND x.start_time IS NOT NULL AND x.end_time IS NOT NULL
                    AND x.run_id IN (
                        SELECT r.run_id FROM @.runs r JOIN @.tasks t ON t.task_id = r.task_id
                          JOIN @.stages s ON s.stage_id = t.stage_id
                         WHERE s.stage_name = $1 AND t.task_name = $2 AND r.status = 'COMPLETED'
                         ORDER BY r.start_time DESC LIMIT $3)",
                &[(&stage, Type::TEXT), (&task, Type::TEXT), (&runs, Type::INT8)],
            )?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
        })
    }

    fn samples(&mut self, run_id: &str) -> Result<Vec<Sample>> {
        let sql = format!(
            "SELECT {SAMPLE_COLUMNS} FROM @.samples WHERE run_id = $1 ORDER BY time, sample_id"
        );
        self.read(|c, st| {
            st.all(c, &sql, &[(&run_id, Type::TEXT)])?
                .iter()
                .map(|row| sample_at(row, 0))
                .collect()
        })
    }

    fn latest_samples(&mut self, run_ids: &[&str]) -> Result<Vec<(String, Sample)>> {
        // One index probe per run (samples_run_time), newest first.
        let sql = format!(
            "SELECT ids.run_id, {SAMPLE_COLUMNS} FROM unnest($1::text[]) AS ids(run_id)
               CROSS JOIN LATERAL (
                    SELECT * FROM @.samples x WHERE x.run_id = ids.run_id
                     ORDER BY x.time DESC, x.sample_id DESC LIMIT 1) s"
        );
        self.read(|c, st| {
            st.all(c, &sql, &[(&run_ids, Type::TEXT_ARRAY)])?
                .iter()
                .map(|row| Ok((row.try_get(0)?, sample_at(row, 1)?)))
                .collect()
        })
    }

    fn thin_samples(&mut self, run_id: &str, now: DateTime<Utc>) -> Result<usize> {
        let before = ts(now - chrono::Duration::hours(2));
        self.write(|tx, st, _| {
            let old: Vec<(i64, DateTime<Utc>)> = st
                .all(
                    tx,
                    "SELECT sample_id, time FROM @.samples WHERE run_id = $1 AND time < $2",
                    &[(&run_id, Type::TEXT), (&before, Type::TIMESTAMPTZ)],
                )?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<R<_>>()?;
            let gone = crate::sampler::thin(&old, now);
            st.exec(
                tx,
                "DELETE FROM @.samples WHERE sample_id = ANY($1)",
                &[(&gone, Type::INT8_ARRAY)],
            )?;
            Ok(gone.len())
        })
    }

    fn log_state(&mut self, run_id: &str) -> Result<Option<crate::logs::LogState>> {
        self.read(|c, st| logs::log_state(c, st, run_id))
    }

    fn run_logs(
        &mut self,
        run_id: &str,
        filter: &crate::logs::LogFilter,
    ) -> Result<Vec<crate::logs::LogRow>> {
        self.read(|c, st| logs::run_logs(c, st, run_id, filter))
    }

    fn item_outcomes(
        &mut self,
        run_id: &str,
        filter: &crate::logs::OutcomeFilter,
    ) -> Result<Vec<crate::logs::ItemOutcomeRow>> {
        self.read(|c, st| logs::item_outcomes(c, st, run_id, filter))
    }

    fn item_outcome_counts(&mut self, run_id: &str) -> Result<Vec<crate::logs::OutcomeCount>> {
        self.read(|c, st| logs::item_outcome_counts(c, st, run_id))
    }

    fn run_io(&mut self, run_id: &str) -> Result<Vec<IoRow>> {
        self.read(|c, st| {
            st.all(
                c,
                "SELECT run_id, direction, name, value, path, size_bytes, modified, sha256,
                    recorded_at
                 FROM @.run_io WHERE run_id = $1 ORDER BY direction COLLATE \"C\", name COLLATE \"C\"",
                &[(&run_id, Type::TEXT)],
            )?
            .iter()
            .map(|row| {
                let direction: String = row.try_get(1)?;
                Ok(IoRow {
                    run_id: row.try_get(0)?,
                    record: IoRecord {
                        direction: direction.parse().map_err(Fail::App)?,
                        name: row.try_get(2)?,
                        value: row.try_get(3)?,
                        path: row.try_get(4)?,
                        size_bytes: row.try_get(5)?,
                        modified: row.try_get(6)?,
                        sha256: row.try_get(7)?,
                    },
                    recorded_at: row.try_get(8)?,
                })
            })
            .collect()
        })
    }

    fn registered_tasks(
        &mut self,
        stage: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<TaskRow>> {
        let sql = format!(
            "SELECT s.stage_id, s.stage_name, s.stage_order, t.task_id, t.task_name, t.task_type,
                t.task_order, t.description, t.script_path, t.script_filename, t.log_path,
                t.log_filename, t.created_at, t.updated_at
             FROM @.tasks t JOIN @.stages s ON s.stage_id = t.stage_id
             WHERE ($1::text IS NULL OR s.stage_name = $1) AND ($2::text IS NULL OR t.task_name = $2)
             ORDER BY {STAGE_TASK_ORDER}"
        );
        self.read(|c, st| {
            st.all(c, &sql, &[(&stage, Type::TEXT), (&name, Type::TEXT)])?
                .iter()
                .map(|r| {
                    Ok(TaskRow {
                        stage_id: r.try_get(0)?,
                        stage_name: r.try_get(1)?,
                        stage_order: r.try_get(2)?,
                        task_id: r.try_get(3)?,
                        task_name: r.try_get(4)?,
                        task_type: r.try_get(5)?,
                        task_order: r.try_get(6)?,
                        description: r.try_get(7)?,
                        script_path: r.try_get(8)?,
                        script_filename: r.try_get(9)?,
                        log_path: r.try_get(10)?,
                        log_filename: r.try_get(11)?,
                        created_at: r.try_get(12)?,
                        updated_at: r.try_get(13)?,
                    })
                })
                .collect()
        })
    }

    fn stages(&mut self) -> Result<Vec<StageRow>> {
        self.read(|c, st| {
            st.all(
                c,
                "SELECT stage_id, stage_name, stage_order, description, created_at, updated_at
                 FROM @.stages ORDER BY COALESCE(stage_order, 2147483647), stage_name COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(StageRow {
                    stage_id: r.try_get(0)?,
                    stage_name: r.try_get(1)?,
                    stage_order: r.try_get(2)?,
                    description: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    updated_at: r.try_get(5)?,
                })
            })
            .collect()
        })
    }

    fn wait_times(&mut self, f: &StatsFilter) -> Result<Vec<crate::dag::WaitRow>> {
        let since = f.since.map(ts);
        self.read(|c, st| {
            st.all(
                c,
                "SELECT s.stage_name, t.task_name, r.start_time, r.wait_seconds
                   FROM @.runs r JOIN @.tasks t ON t.task_id = r.task_id
                   JOIN @.stages s ON s.stage_id = t.stage_id
                  WHERE r.wait_seconds IS NOT NULL
                    AND ($1::text IS NULL OR s.stage_name = $1)
                    AND ($2::text IS NULL OR t.task_name = $2)
                    AND ($3::timestamptz IS NULL OR r.start_time >= $3)",
                &[
                    (&f.stage, Type::TEXT),
                    (&f.task, Type::TEXT),
                    (&since, Type::TIMESTAMPTZ),
                ],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
        })
    }

    fn alert_claim(&mut self, new: &crate::alerts::NewAlert) -> Result<Option<i64>> {
        self.read(|c, st| alerts::claim(c, st, new))
    }

    fn alerts_due(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
        only: Option<i64>,
        limit: usize,
    ) -> Result<Vec<crate::alerts::AlertRow>> {
        self.read(|c, st| alerts::due(c, st, now, lease_until, max_attempts, only, limit))
    }

    fn alert_outcome(&mut self, id: i64, outcome: &crate::alerts::AlertOutcome) -> Result<()> {
        self.read(|c, st| alerts::outcome(c, st, id, outcome))
    }

    fn alerts(
        &mut self,
        filter: &crate::alerts::AlertFilter,
    ) -> Result<Vec<crate::alerts::AlertRow>> {
        self.read(|c, st| alerts::list(c, st, filter))
    }

    fn task_dependencies(&mut self) -> Result<Vec<crate::dag::DependencyRow>> {
        self.read(|c, st| {
            st.all(
                c,
                "SELECT s.stage_name, t.task_name, us.stage_name, u.task_name
                   FROM @.task_dependencies d
                   JOIN @.tasks t ON t.task_id = d.task_id
                   JOIN @.stages s ON s.stage_id = t.stage_id
                   JOIN @.tasks u ON u.task_id = d.depends_on
                   JOIN @.stages us ON us.stage_id = u.stage_id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(crate::dag::DependencyRow {
                    stage_name: r.try_get(0)?,
                    task_name: r.try_get(1)?,
                    upstream_stage: r.try_get(2)?,
                    upstream_task: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn events_after(
        &mut self,
        after: i64,
        run_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>> {
        let limit = limit_param(Some(limit));
        // One run's events through its index: a generic plan for
        // `$2 IS NULL OR run_id = $2` would walk every event.
        let which = if run_id.is_some() {
            "e.run_id = $2"
        } else {
            "$2::text IS NULL"
        };
        let sql = format!(
            "SELECT e.event_id, e.time, e.run_id, s.stage_name, t.task_name, e.subtask_number,
                    e.kind, e.old_status, e.new_status, e.message
                 FROM @.events e JOIN @.runs r ON r.run_id = e.run_id
                 JOIN @.tasks t ON t.task_id = r.task_id JOIN @.stages s ON s.stage_id = t.stage_id
                 WHERE e.event_id > $1 AND {which}
                 ORDER BY e.event_id LIMIT $3"
        );
        self.read(|c, st| {
            st.all(
                c,
                &sql,
                &[
                    (&after, Type::INT8),
                    (&run_id, Type::TEXT),
                    (&limit, Type::INT8),
                ],
            )?
            .iter()
            .map(|r| {
                let old: Option<String> = r.try_get(7)?;
                Ok(EventRow {
                    event_id: r.try_get(0)?,
                    time: r.try_get(1)?,
                    run_id: r.try_get(2)?,
                    stage_name: r.try_get(3)?,
                    task_name: r.try_get(4)?,
                    subtask_number: r.try_get(5)?,
                    kind: r.try_get(6)?,
                    old_status: old.as_deref().map(status_of).transpose()?,
                    new_status: status_of(r.try_get(8)?)?,
                    message: r.try_get(9)?,
                })
            })
            .collect()
        })
    }
}

/// The columns a [`Sample`] is read from, in `sample_at`'s order.
const SAMPLE_COLUMNS: &str = "time, pid, cpu_seconds, cpu_percent, rss_bytes, peak_rss_bytes, \
    read_bytes, write_bytes, threads, open_fds, children, children_cpu_seconds, children_rss_bytes";

/// A sample from `SAMPLE_COLUMNS`, starting at column `at`.
fn sample_at(row: &Row, at: usize) -> R<Sample> {
    let u = |i: usize| row.try_get::<_, i64>(at + i).map(|v| v.max(0) as u64);
    let ou = |i: usize| {
        row.try_get::<_, Option<i64>>(at + i)
            .map(|v| v.map(|v| v.max(0) as u64))
    };
    let small = |i: usize| {
        row.try_get::<_, Option<i64>>(at + i)
            .map(|v| v.and_then(|v| u32::try_from(v).ok()))
    };
    Ok(Sample {
        time: row.try_get(at)?,
        pid: u32::try_from(row.try_get::<_, i64>(at + 1)?).unwrap_or(0),
        cpu_seconds: row.try_get(at + 2)?,
        cpu_percent: row.try_get(at + 3)?,
        rss_bytes: u(4)?,
        peak_rss_bytes: ou(5)?,
        read_bytes: ou(6)?,
        write_bytes: ou(7)?,
        threads: small(8)?,
        open_fds: small(9)?,
        children: small(10)?.unwrap_or(0),
        children_cpu_seconds: row.try_get(at + 11)?,
        children_rss_bytes: u(12)?,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_key_value_strings() {
        let (rest, tls) = split_tls_params(
            "host=db port=5433 password='a b\\'c' sslmode=verify-full sslrootcert='/x y/ca.pem'",
        )
        .unwrap();
        assert_eq!(rest, "host='db' port='5433' password='a b\\'c'");
        assert_eq!(
            tls,
            vec![
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/x y/ca.pem".to_string())
            ]
        );
        let c: ::postgres::Config = rest.parse().unwrap();
        assert_eq!(c.get_password(), Some(&b"a b'c"[..]));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (rest, tls) = split_tls_params(
            "postgresql://u:p@db:5433/x?sslmode=require&connect_timeout=3&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u:p@db:5433/x?connect_timeout=3");
        assert_eq!(tls[1], ("sslrootcert".into(), "/tmp/ca.pem".into()));
    }

    #[test]
    fn verify_modes_need_a_ca_and_errors_never_show_the_password() {
        let spec = ConnSpec::parse(&Secret::new(
            "host=db user=u password=hunter2 sslmode=require sslrootcert=/ca.pem",
        ))
        .unwrap();
        assert_eq!(spec.ssl, SslMode::VerifyCa);
        assert!(!format!("{spec:?}").contains("hunter2"));
        let err = ConnSpec::parse(&Secret::new(
            "host=db sslmode=verify-everything password=hunter2",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("verify-everything") && !err.contains("hunter2"),
            "{err}"
        );
        let err = ConnSpec::parse(&Secret::new("host=db bogus=1 password=hunter2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(key_of("tasker"), key_of("tasker"));
        assert_ne!(key_of("tasker"), key_of("tasker2"));
    }
}
