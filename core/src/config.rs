//! Where the database is, and how tracking behaves.
//!
//! Resolution, first match wins field by field: explicit arguments ->
//! `TASKER_DB_URL` / `TASKER_DB_*` -> `.tasker.yml` found walking up from the
//! working directory -> `$XDG_CONFIG_HOME/tasker/config.yml` -> the embedded
//! default, SQLite at `$XDG_DATA_HOME/tasker/tasker.db`. A URL at one level
//! replaces every database field of the levels below it.
//!
//! Passwords are kept in [`Secret`], whose `Debug` and `Display` never show them,
//! and [`redact`] scrubs them from any text that could reach a message or a log.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::TaskSpec;

/// A value that must never be printed (a password, a URL that holds one).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it (opening a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which database to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        /// A libpq-style connection string (URL or `key=value` pairs); may hold a password.
        conninfo: Secret,
        /// Schema that holds tasker's tables (default `tasker`).
        schema: String,
    },
}

impl Location {
    pub fn backend(&self) -> &'static str {
        match self {
            Location::Sqlite { .. } => "sqlite",
            Location::Postgres { .. } => "postgresql",
        }
    }

    /// A description safe to show a user: the file, or the server without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite { path } => format!("sqlite:{}", path.display()),
            Location::Postgres { conninfo, schema } => {
                let shown = redact(conninfo.expose());
                if shown.starts_with("postgres://") || shown.starts_with("postgresql://") {
                    format!("{shown} (schema {schema})")
                } else {
                    format!("postgresql:{shown} (schema {schema})")
                }
            }
        }
    }

    /// A stable, secret-free name of the database (spool files are keyed by it, so
    /// it never changes between versions).
    pub fn identity(&self) -> String {
        match self {
            Location::Sqlite { path } => format!("sqlite:{}", path.display()),
            Location::Postgres { conninfo, schema } => {
                format!("postgresql:{} (schema {schema})", redact(conninfo.expose()))
            }
        }
    }
}

/// Everything the tracker needs to open a database and run its writer.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub location: Location,
    /// How often the background writer flushes progress (default 200 ms).
    pub flush_interval: Duration,
    /// How often the writer refreshes the heartbeat of this process's active runs.
    pub heartbeat_interval: Duration,
    /// A run whose heartbeat is older than this is reported lost.
    pub lost_after: Duration,
    /// How long SQLite waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Recorded as the run's host (default: this machine's name).
    pub hostname: Option<String>,
    /// A connection unused this long is closed (reopened on demand), so that
    /// processes that have nothing to write hold no server connection.
    pub idle_disconnect: Duration,
    /// How often the writer samples this process's resource use (CPU, memory,
    /// I/O, children) for the runs it started; `None`: never. Samples are
    /// written with progress and heartbeats, never in transactions of their own.
    pub sample_interval: Option<Duration>,
    /// At most this many log lines are kept per run (default 10,000): older ones
    /// are dropped, and one marker line counts them (see `logs.rs`).
    pub max_log_lines: u32,
    /// How long finished runs are kept, when set (applied by long-running tasker
    /// processes and `tasker purge --apply-retention`, never by a pipeline's calls).
    pub retention: Option<Retention>,
    /// Alert rules and destinations (`alerts:` of the nearest file that has it);
    /// `None` when no rule is configured.
    pub alerts: Option<std::sync::Arc<crate::alerts::AlertConfig>>,
    /// The pipeline declared under `tasks:` in the nearest configuration file that
    /// declares one (`declared.rs`), registered by a process's first write.
    pub tasks: Vec<TaskSpec>,
    /// `otlp:` of the nearest configuration file that has it: OpenTelemetry
    /// export settings under the standard `OTEL_*` variables (`otlp_settings.rs`).
    pub otlp: Option<std::sync::Arc<crate::otlp_settings::OtlpSettings>>,
    /// Where the database location came from (for `tasker status` and error messages).
    pub source: String,
}

/// How long finished runs are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// Finished runs older than this many days go (with their subtasks and events).
    pub days: u32,
    /// Failed runs are kept this long instead (default: as long as the others).
    pub keep_failed_days: Option<u32>,
}

impl Config {
    /// A config for an SQLite file with default tracking settings.
    pub fn sqlite(path: impl Into<PathBuf>) -> Config {
        Config {
            location: Location::Sqlite { path: path.into() },
            flush_interval: Duration::from_millis(200),
            heartbeat_interval: Duration::from_secs(10),
            lost_after: Duration::from_secs(120),
            busy_timeout: Duration::from_secs(30),
            hostname: None,
            idle_disconnect: Duration::from_secs(30),
            sample_interval: Some(Duration::from_secs(10)),
            max_log_lines: crate::logs::DEFAULT_MAX_LOG_LINES,
            retention: None,
            alerts: None,
            tasks: Vec::new(),
            otlp: None,
            source: "argument".into(),
        }
    }

    /// Resolves the configuration from arguments, environment and files.
    pub fn resolve(args: &ConfigArgs) -> Result<Config> {
        let env: HashMap<String, String> = std::env::vars().collect();
        resolve_with(args, &env)
    }
}

/// Explicit settings (the highest level). Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbSettings {
    pub url: Option<Secret>,
    pub driver: Option<String>,
    /// SQLite file (also accepted as `dbname` when the driver is sqlite).
    pub path: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub schema: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Tracking behaviour settings, by the same levels as the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingSettings {
    pub flush_interval_ms: Option<u64>,
    pub heartbeat_interval_s: Option<u64>,
    pub lost_after_s: Option<u64>,
    pub busy_timeout_ms: Option<u64>,
    pub hostname: Option<String>,
    pub idle_disconnect_s: Option<u64>,
    /// 0 turns sampling off.
    pub sample_interval_s: Option<u64>,
    /// Log lines kept per run (at least 1).
    pub max_log_lines: Option<u64>,
}

/// `retention:` in a configuration file (and `TASKER_RETENTION_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    pub days: Option<u32>,
    pub keep_failed_days: Option<u32>,
}

/// Arguments a binding passes in (R's `tasker_config(...)`, Python's `connect(...)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigArgs {
    pub db: DbSettings,
    pub tracking: TrackingSettings,
    pub retention: RetentionSettings,
    /// Use this file instead of searching for `.tasker.yml`.
    pub config_file: Option<PathBuf>,
    /// Where the search for `.tasker.yml` starts (default: the working directory).
    pub start_dir: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn url(url: &str) -> ConfigArgs {
        ConfigArgs {
            db: DbSettings {
                url: Some(Secret::new(url)),
                ..DbSettings::default()
            },
            ..ConfigArgs::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileConfig {
    database: DbSettings,
    tracking: TrackingSettings,
    retention: RetentionSettings,
    alerts: Option<crate::alerts::AlertSettings>,
    tasks: Option<serde_yaml_ng::Value>,
    otlp: Option<crate::otlp_settings::OtlpSettings>,
    // Keys other tools keep in the same file (the R package writes these).
    #[allow(dead_code, reason = "accepted so older .tasker.yml files still load")]
    logging: Option<serde_yaml_ng::Value>,
    #[allow(dead_code, reason = "accepted so older .tasker.yml files still load")]
    pipeline: Option<serde_yaml_ng::Value>,
    #[allow(dead_code, reason = "accepted so older .tasker.yml files still load")]
    environment: Option<serde_yaml_ng::Value>,
}

/// One level of settings and where it came from.
struct Level {
    db: DbSettings,
    tracking: TrackingSettings,
    retention: RetentionSettings,
    /// Only files have alert rules; a nearer file's `alerts:` replaces a farther one's.
    alerts: Option<crate::alerts::AlertSettings>,
    /// `tasks:` of a file, when it has the key.
    tasks: Option<Vec<TaskSpec>>,
    /// Only files have `otlp:`; a nearer file's replaces a farther one's.
    otlp: Option<crate::otlp_settings::OtlpSettings>,
    source: String,
    /// Relative SQLite paths in a file are relative to the file's directory.
    base_dir: Option<PathBuf>,
}

pub(crate) fn resolve_with(args: &ConfigArgs, env: &HashMap<String, String>) -> Result<Config> {
    let mut levels = vec![Level {
        db: args.db.clone(),
        tracking: args.tracking.clone(),
        retention: args.retention.clone(),
        alerts: None,
        tasks: None,
        otlp: None,
        source: "arguments".into(),
        base_dir: None,
    }];
    levels.push(env_level(env)?);
    let project_file = match &args.config_file {
        Some(f) => {
            if !f.is_file() {
                return Err(Error::Config(format!(
                    "config file {} does not exist",
                    f.display()
                )));
            }
            Some(f.clone())
        }
        None => {
            let start = match &args.start_dir {
                Some(d) => d.clone(),
                None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            };
            find_config_file(&start)
        }
    };
    if let Some(f) = project_file {
        levels.push(file_level(&f, env)?);
    }
    if let Some(user) = user_config_file(env) {
        if user.is_file() {
            levels.push(file_level(&user, env)?);
        }
    }
    build(levels, env)
}

/// Walks up from `start` to the filesystem root looking for `.tasker.yml`.
pub fn find_config_file(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .map(|d| d.join(".tasker.yml"))
        .find(|f| f.is_file())
}

fn user_config_file(env: &HashMap<String, String>) -> Option<PathBuf> {
    xdg_dir(env, "XDG_CONFIG_HOME", ".config").map(|d| d.join("tasker").join("config.yml"))
}

/// The embedded default: `$XDG_DATA_HOME/tasker/tasker.db`.
pub fn default_sqlite_path(env: &HashMap<String, String>) -> PathBuf {
    xdg_dir(env, "XDG_DATA_HOME", ".local/share")
        .unwrap_or_else(|| PathBuf::from("."))
        .join("tasker")
        .join("tasker.db")
}

/// `$XDG_STATE_HOME/tasker` (default `~/.local/state/tasker`): spool files live here.
pub fn state_dir() -> PathBuf {
    let env: HashMap<String, String> = std::env::vars().collect();
    xdg_dir(&env, "XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join("tasker")
}

fn xdg_dir(env: &HashMap<String, String>, var: &str, fallback: &str) -> Option<PathBuf> {
    match env.get(var) {
        Some(v) if Path::new(v).is_absolute() => Some(PathBuf::from(v)),
        _ => env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(h).join(fallback)),
    }
}

fn env_level(env: &HashMap<String, String>) -> Result<Level> {
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    let num = |k: &str| -> Result<Option<u64>> {
        get(k)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::Config(format!("{k}={v:?} is not a whole number")))
            })
            .transpose()
    };
    let port = get("TASKER_DB_PORT")
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| Error::Config(format!("TASKER_DB_PORT={p:?} is not a port number")))
        })
        .transpose()?;
    Ok(Level {
        db: DbSettings {
            url: get("TASKER_DB_URL").map(Secret),
            driver: get("TASKER_DB_DRIVER"),
            path: get("TASKER_DB_PATH"),
            host: get("TASKER_DB_HOST"),
            port,
            dbname: get("TASKER_DB_NAME"),
            user: get("TASKER_DB_USER"),
            password: get("TASKER_DB_PASSWORD").map(Secret),
            schema: get("TASKER_DB_SCHEMA"),
            sslmode: get("TASKER_DB_SSLMODE"),
            sslrootcert: get("TASKER_DB_SSLROOTCERT"),
        },
        tracking: TrackingSettings {
            flush_interval_ms: num("TASKER_FLUSH_INTERVAL_MS")?,
            heartbeat_interval_s: num("TASKER_HEARTBEAT_INTERVAL_S")?,
            lost_after_s: num("TASKER_LOST_AFTER_S")?,
            busy_timeout_ms: num("TASKER_BUSY_TIMEOUT_MS")?,
            hostname: get("TASKER_HOSTNAME"),
            idle_disconnect_s: num("TASKER_IDLE_DISCONNECT_S")?,
            sample_interval_s: num("TASKER_SAMPLE_INTERVAL_S")?,
            max_log_lines: num("TASKER_MAX_LOG_LINES")?,
        },
        retention: RetentionSettings {
            days: num("TASKER_RETENTION_DAYS")?.map(clamp_days),
            keep_failed_days: num("TASKER_RETENTION_KEEP_FAILED_DAYS")?.map(clamp_days),
        },
        alerts: None,
        tasks: None,
        otlp: None,
        source: "environment (TASKER_DB_*)".into(),
        base_dir: None,
    })
}

fn file_level(path: &Path, env: &HashMap<String, String>) -> Result<Level> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    let raw: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::Config(format!("{} is not valid YAML: {e}", path.display())))?;
    let expanded =
        expand_value(raw, env).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let parsed: FileConfig = serde_yaml_ng::from_value(expanded)
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), redact(&e.to_string()))))?;
    let tasks = parsed
        .tasks
        .map(crate::declared::parse)
        .transpose()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(Level {
        db: parsed.database,
        tracking: parsed.tracking,
        retention: parsed.retention,
        alerts: parsed.alerts,
        tasks,
        otlp: parsed.otlp,
        source: path.display().to_string(),
        base_dir: path.parent().map(Path::to_path_buf),
    })
}

fn expand_value(
    v: serde_yaml_ng::Value,
    env: &HashMap<String, String>,
) -> Result<serde_yaml_ng::Value, String> {
    use serde_yaml_ng::Value;
    Ok(match v {
        Value::String(s) => {
            let expanded = expand_vars(&s, env)?;
            // A whole-value expansion like `port: ${PGPORT}` should still read as a number.
            if s.trim_start().starts_with("${") && expanded.parse::<i64>().is_ok() {
                Value::Number(expanded.parse::<i64>().expect("checked").into())
            } else {
                Value::String(expanded)
            }
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|i| expand_value(i, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, v) in m {
                out.insert(k, expand_value(v, env)?);
            }
            Value::Mapping(out)
        }
        other => other,
    })
}

/// Expands `${VAR}` (empty when unset) and `${VAR:-default}` (default when unset or empty).
pub fn expand_vars(s: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name {name:?} in {s:?}"));
        }
        let value = env.get(name).filter(|v| !v.is_empty());
        match (value, default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {}
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Merges the levels field by field (highest first) and builds the config.
fn build(levels: Vec<Level>, env: &HashMap<String, String>) -> Result<Config> {
    // The first level that says where the database is (url, driver, path, dbname or
    // host) decides it; higher levels may still add credentials or a schema.
    let mut db = DbSettings::default();
    let mut db_source: Option<String> = None;
    let mut sqlite_base: Option<PathBuf> = None;
    let mut tracking = TrackingSettings::default();
    let mut retention = RetentionSettings::default();
    let alerts = levels
        .iter()
        .find_map(|l| l.alerts.as_ref().map(|a| (a, &l.source)));
    // The nearest file that declares a pipeline declares all of it (no merging).
    let tasks = levels
        .iter()
        .find_map(|l| l.tasks.clone())
        .unwrap_or_default();
    for level in &levels {
        let d = &level.db;
        let names_location = d.url.is_some()
            || d.driver.is_some()
            || d.path.is_some()
            || d.dbname.is_some()
            || d.host.is_some();
        if db_source.is_none() {
            macro_rules! fill {
                ($($f:ident),*) => {$( if db.$f.is_none() { db.$f = d.$f.clone(); } )*};
            }
            fill!(
                url,
                driver,
                path,
                host,
                port,
                dbname,
                user,
                password,
                schema,
                sslmode,
                sslrootcert
            );
            if names_location {
                db_source = Some(level.source.clone());
                sqlite_base = level.base_dir.clone();
            }
        }
        let t = &level.tracking;
        macro_rules! fill_t {
            ($($f:ident),*) => {$( if tracking.$f.is_none() { tracking.$f = t.$f.clone(); } )*};
        }
        fill_t!(
            flush_interval_ms,
            heartbeat_interval_s,
            lost_after_s,
            busy_timeout_ms,
            hostname,
            idle_disconnect_s,
            sample_interval_s,
            max_log_lines
        );
        if retention.days.is_none() {
            retention.days = level.retention.days;
        }
        if retention.keep_failed_days.is_none() {
            retention.keep_failed_days = level.retention.keep_failed_days;
        }
    }
    let location = match db_source {
        None => Location::Sqlite {
            path: default_sqlite_path(env),
        },
        Some(_) => location_from(&db, sqlite_base.as_deref())?,
    };
    let mut cfg = Config::sqlite(PathBuf::new());
    cfg.location = location;
    if let Some((settings, source)) = alerts {
        let checked = settings
            .build()
            .map_err(|e| Error::Config(format!("{source}: {}", redact(&e))))?;
        cfg.alerts = (!checked.rules.is_empty()).then(|| std::sync::Arc::new(checked));
    }
    if let Some(level) = levels.iter().find(|l| l.otlp.is_some()) {
        let settings = level.otlp.clone().unwrap_or_default();
        settings
            .check()
            .map_err(|e| Error::Config(format!("{}: {e}", level.source)))?;
        cfg.otlp = Some(std::sync::Arc::new(settings));
    }
    cfg.source = db_source.unwrap_or_else(|| "default (embedded SQLite)".into());
    cfg.tasks = tasks;
    if let Some(ms) = tracking.flush_interval_ms {
        if ms == 0 {
            return Err(Error::Config("flush_interval_ms must be at least 1".into()));
        }
        cfg.flush_interval = Duration::from_millis(ms);
    }
    if let Some(s) = tracking.heartbeat_interval_s {
        cfg.heartbeat_interval = Duration::from_secs(s.max(1));
    }
    if let Some(s) = tracking.lost_after_s {
        cfg.lost_after = Duration::from_secs(s.max(1));
    }
    if let Some(ms) = tracking.busy_timeout_ms {
        cfg.busy_timeout = Duration::from_millis(ms);
    }
    cfg.hostname = tracking.hostname.filter(|h| !h.trim().is_empty());
    if let Some(s) = tracking.idle_disconnect_s {
        cfg.idle_disconnect = Duration::from_secs(s.max(1));
    }
    if let Some(s) = tracking.sample_interval_s {
        cfg.sample_interval = (s > 0).then(|| Duration::from_secs(s));
    }
    if let Some(n) = tracking.max_log_lines {
        cfg.max_log_lines = match u32::try_from(n) {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(Error::Config(format!(
                    "max_log_lines must be between 1 and {}, not {n}",
                    u32::MAX
                )))
            }
        };
    }
    cfg.retention = match (retention.days, retention.keep_failed_days) {
        (Some(0), _) | (_, Some(0)) => {
            return Err(Error::Config(
                "retention days must be at least 1 (leave retention out to keep every run)".into(),
            ))
        }
        (Some(d), _) | (_, Some(d)) if d > MAX_RETENTION_DAYS => {
            return Err(Error::Config(format!(
                "retention of {d} days is more than {MAX_RETENTION_DAYS} (a century)"
            )))
        }
        (Some(days), keep_failed_days) => Some(Retention {
            days,
            keep_failed_days,
        }),
        (None, Some(_)) => return Err(Error::Config(
            "retention.keep_failed_days needs retention.days (how long the other runs are kept)"
                .into(),
        )),
        (None, None) => None,
    };
    Ok(cfg)
}

/// A century: longer retention is a mistake (and would overflow dates).
const MAX_RETENTION_DAYS: u32 = 36_500;

/// Days from the environment, as a number the check above can name.
fn clamp_days(d: u64) -> u32 {
    d.min(u64::from(u32::MAX)) as u32
}

fn location_from(db: &DbSettings, base: Option<&Path>) -> Result<Location> {
    if let Some(url) = &db.url {
        return parse_url(url.expose(), db.schema.as_deref());
    }
    let driver = db
        .driver
        .as_deref()
        .map(|d| d.trim().to_ascii_lowercase())
        .unwrap_or_else(|| {
            if db.host.is_some() {
                "postgresql".into()
            } else {
                "sqlite".into()
            }
        });
    match driver.as_str() {
        "sqlite" | "sqlite3" => {
            let p = db
                .path
                .clone()
                .or_else(|| db.dbname.clone())
                .ok_or_else(|| {
                    Error::Config("driver sqlite needs a path (the database file)".into())
                })?;
            Ok(Location::Sqlite {
                path: sqlite_path(&p, base),
            })
        }
        "postgresql" | "postgres" | "pg" => {
            let mut parts: Vec<String> = Vec::new();
            let mut push = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    parts.push(format!("{k}={}", quote_conninfo(&v)));
                }
            };
            push("host", db.host.clone());
            push("port", db.port.map(|p| p.to_string()));
            push("dbname", db.dbname.clone());
            push("user", db.user.clone());
            push(
                "password",
                db.password.as_ref().map(|p| p.expose().to_string()),
            );
            push("sslmode", db.sslmode.clone());
            push("sslrootcert", db.sslrootcert.clone());
            if db.host.is_none() {
                return Err(Error::Config(
                    "driver postgresql needs a host (TASKER_DB_HOST or database.host)".into(),
                ));
            }
            Ok(Location::Postgres {
                conninfo: Secret(parts.join(" ")),
                schema: db.schema.clone().unwrap_or_else(|| "tasker".into()),
            })
        }
        other => Err(Error::Config(format!(
            "unknown driver {other:?}: use sqlite or postgresql"
        ))),
    }
}

fn quote_conninfo(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn sqlite_path(p: &str, base: Option<&Path>) -> PathBuf {
    let p = if let Some(rest) = p.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p))
    } else {
        PathBuf::from(p)
    };
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// Parses `sqlite:///abs.db`, `sqlite://rel.db`, `sqlite:rel.db`, a plain file path,
/// or `postgres[ql]://...` (query parameter `schema` picks the schema).
pub fn parse_url(url: &str, schema: Option<&str>) -> Result<Location> {
    let u = url.trim();
    if let Some(rest) = u
        .strip_prefix("postgresql://")
        .or_else(|| u.strip_prefix("postgres://"))
    {
        let _ = rest;
        let (base, schema_param) = split_schema_param(u);
        return Ok(Location::Postgres {
            conninfo: Secret(base),
            schema: schema
                .map(str::to_string)
                .or(schema_param)
                .unwrap_or_else(|| "tasker".into()),
        });
    }
    if let Some(rest) = u
        .strip_prefix("sqlite://")
        .or_else(|| u.strip_prefix("sqlite:"))
    {
        if rest.is_empty() {
            return Err(Error::Config(format!("{u:?} names no database file")));
        }
        return Ok(Location::Sqlite {
            path: sqlite_path(rest, None),
        });
    }
    if u.contains("://") {
        return Err(Error::Config(format!(
            "unsupported database URL {:?}: use sqlite:///path/to/file.db or postgresql://host/db",
            redact(u)
        )));
    }
    if u.is_empty() {
        return Err(Error::Config("the database URL is empty".into()));
    }
    Ok(Location::Sqlite {
        path: sqlite_path(u, None),
    })
}

/// Removes `schema=...` from a URL's query string (it is ours, not libpq's).
fn split_schema_param(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("schema", v)) => {
                schema = Some(v.to_string());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    let out = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (out, schema)
}

/// Hides passwords in any text: `user:secret@host` in URLs and `password=...` pairs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // URLs: scheme://user:password@host
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let auth_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '?')
            .unwrap_or(tail.len());
        let authority = &tail[..auth_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[auth_end..];
    }
    out.push_str(rest);
    redact_pairs(&out)
}

fn redact_pairs(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find("password") {
        let key_start = i + pos;
        let mut j = key_start + "password".len();
        let bytes = text.as_bytes();
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && (bytes[j] == b'=' || bytes[j] == b':') {
            j += 1;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            out.push_str(&text[i..j]);
            let end = if j < bytes.len() && bytes[j] == b'\'' {
                text[j + 1..]
                    .find('\'')
                    .map(|e| j + e + 2)
                    .unwrap_or(text.len())
            } else {
                text[j..]
                    .find(|c: char| c.is_whitespace() || c == '&' || c == ',' || c == '}')
                    .map(|e| j + e)
                    .unwrap_or(text.len())
            };
            out.push_str("***");
            i = end;
        } else {
            out.push_str(&text[i..j]);
            i = j;
        }
    }
    out.push_str(&text[i..]);
    out
}

#[cfg(test)]
mod test {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn isolated(dir: &Path) -> ConfigArgs {
        ConfigArgs {
            start_dir: Some(dir.to_path_buf()),
            ..ConfigArgs::default()
        }
    }

    #[test]
    fn default_is_sqlite_under_xdg_data_home() {
        let d = tempfile::tempdir().unwrap();
        let e = env(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")]);
        let c = resolve_with(&isolated(d.path()), &e).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: "/data/tasker/tasker.db".into()
            }
        );
        let e = env(&[("HOME", "/home/u")]);
        let c = resolve_with(&isolated(d.path()), &e).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: "/home/u/.local/share/tasker/tasker.db".into()
            }
        );
    }

    #[test]
    fn order_is_arguments_env_file_user_file() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        std::fs::create_dir_all(home.join(".config/tasker")).unwrap();
        std::fs::write(
            home.join(".config/tasker/config.yml"),
            "database:\n  path: /user.db\n",
        )
        .unwrap();
        let project = d.path().join("proj/a/b");
        std::fs::create_dir_all(&project).unwrap();
        let e = env(&[("HOME", home.to_str().unwrap())]);
        // user file only
        let c = resolve_with(&isolated(&project), &e).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: "/user.db".into()
            }
        );
        // a .tasker.yml two levels up wins; its relative path is relative to it
        std::fs::write(
            d.path().join("proj/.tasker.yml"),
            "database:\n  driver: sqlite\n  dbname: p.db\n",
        )
        .unwrap();
        let c = resolve_with(&isolated(&project), &e).unwrap();
        let proj = std::fs::canonicalize(d.path().join("proj")).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: proj.join("p.db")
            }
        );
        // env beats the file
        let mut e2 = e.clone();
        e2.insert("TASKER_DB_PATH".into(), "/env.db".into());
        let c = resolve_with(&isolated(&project), &e2).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: "/env.db".into()
            }
        );
        // arguments beat env
        let mut args = isolated(&project);
        args.db.url = Some(Secret::new("sqlite:///arg.db"));
        let c = resolve_with(&args, &e2).unwrap();
        assert_eq!(
            c.location,
            Location::Sqlite {
                path: "/arg.db".into()
            }
        );
        assert_eq!(c.source, "arguments");
    }

    #[test]
    fn variables_are_expanded_in_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(".tasker.yml"),
            "database:\n  driver: postgresql\n  host: ${DBHOST}\n  port: ${DBPORT:-5433}\n  dbname: ${DBNAME:-pipeline}\n  user: me\n  password: ${DBPASS}\ntracking:\n  flush_interval_ms: 50\n",
        )
        .unwrap();
        let e = env(&[("DBHOST", "db.example"), ("DBPASS", "s3cret")]);
        let c = resolve_with(&isolated(d.path()), &e).unwrap();
        let Location::Postgres { conninfo, schema } = &c.location else {
            panic!()
        };
        assert_eq!(
            conninfo.expose(),
            "host=db.example port=5433 dbname=pipeline user=me password=s3cret"
        );
        assert_eq!(schema, "tasker");
        assert_eq!(c.flush_interval, Duration::from_millis(50));
        let shown = format!("{c:?} {}", c.location.describe());
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn expansion_rules() {
        let e = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(expand_vars("x${A}y", &e).unwrap(), "x1y");
        assert_eq!(expand_vars("${MISSING}", &e).unwrap(), "");
        assert_eq!(expand_vars("${MISSING:-d}", &e).unwrap(), "d");
        assert_eq!(expand_vars("${EMPTY:-d}", &e).unwrap(), "d");
        assert!(expand_vars("${A", &e).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://bob:hunter2@db:5432/x?sslmode=require"),
            "postgresql://bob:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact("host=a password=hunter2 user=b"),
            "host=a password=*** user=b"
        );
        assert_eq!(redact("password='a b' user=c"), "password=*** user=c");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
        let loc = parse_url("postgres://bob:hunter2@db/x?schema=s1", None).unwrap();
        assert!(!format!("{loc:?}").contains("hunter2"));
        let Location::Postgres { schema, conninfo } = loc else {
            panic!()
        };
        assert_eq!(schema, "s1");
        assert_eq!(conninfo.expose(), "postgres://bob:hunter2@db/x");
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("sqlite:///a/b.db", None).unwrap(),
            Location::Sqlite {
                path: "/a/b.db".into()
            }
        );
        assert_eq!(
            parse_url("rel.db", None).unwrap(),
            Location::Sqlite {
                path: "rel.db".into()
            }
        );
        assert!(parse_url("mysql://x", None).is_err());
    }

    #[test]
    fn bad_env_numbers_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = env(&[("TASKER_DB_PORT", "fifty")]);
        let err = resolve_with(&isolated(d.path()), &e)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fifty"), "{err}");
    }

    #[test]
    fn retention_and_idle_disconnect_come_from_files_and_the_environment() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(".tasker.yml"),
            "database:\n  path: x.db\nretention:\n  days: 90\n  keep_failed_days: 365\ntracking:\n  idle_disconnect_s: 5\n",
        )
        .unwrap();
        let c = resolve_with(&isolated(d.path()), &env(&[])).unwrap();
        assert_eq!(
            c.retention,
            Some(Retention {
                days: 90,
                keep_failed_days: Some(365)
            })
        );
        assert_eq!(c.idle_disconnect, Duration::from_secs(5));
        // The environment wins over the file, field by field.
        let c = resolve_with(&isolated(d.path()), &env(&[("TASKER_RETENTION_DAYS", "7")])).unwrap();
        assert_eq!(
            c.retention.map(|r| (r.days, r.keep_failed_days)),
            Some((7, Some(365)))
        );
        // None configured: every run is kept.
        let none = resolve_with(&isolated(tempfile::tempdir().unwrap().path()), &env(&[])).unwrap();
        assert_eq!(none.retention, None);
        assert_eq!(none.idle_disconnect, Duration::from_secs(30));
    }

    #[test]
    fn bad_retention_is_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        for (vars, needle) in [
            (vec![("TASKER_RETENTION_DAYS", "0")], "at least 1"),
            (vec![("TASKER_RETENTION_DAYS", "99999999")], "99999999"),
            (
                vec![("TASKER_RETENTION_KEEP_FAILED_DAYS", "10")],
                "needs retention.days",
            ),
            (vec![("TASKER_RETENTION_DAYS", "ninety")], "ninety"),
        ] {
            let err = resolve_with(&isolated(d.path()), &env(&vars))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{vars:?}: {err}");
        }
    }
}
