//! `tasker`: the command line and the live web dashboard (see cli/README.md).
//! Every command reads the same configuration as the libraries:
//! `--db URL`, else TASKER_DB_URL / TASKER_DB_*, else `.tasker.yml`, else the
//! user config, else the default SQLite file.
//!
//! A library, so that every package can carry the command: the `tasker` binary
//! (src/main.rs) and the Python wheel's `tasker` script both call [`run`].

mod cmd;
mod csv;
mod dag;
mod diff;
mod fmt;
#[cfg(test)]
mod help_test;
mod logs;
mod register;
mod report;
mod serve;
mod stats;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tasker::{Config, ConfigArgs, Location, Tracker};

#[derive(Debug, Parser)]
#[command(
    name = "tasker",
    version,
    about = "See what your pipelines are doing: status, live view, history, reports, dashboard",
    after_help = "The database comes from --db, else TASKER_DB_URL (or TASKER_DB_*), else .tasker.yml \
                  (searched upwards from the working directory), else ~/.config/tasker/config.yml, \
                  else ~/.local/share/tasker/tasker.db."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Database URL: sqlite:///path/file.db, a file path, or postgresql://user@host/db.
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Read this config file instead of searching for .tasker.yml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stages, tasks and their latest runs: status, progress, elapsed time, ETA, host.
    Status(cmd::StatusArgs),
    /// A live view of every active run (all processes, all hosts), refreshed every second.
    Watch(cmd::WatchArgs),
    /// Runs, newest first.
    History(cmd::HistoryArgs),
    /// One run: its details, metadata, inputs and outputs, resources, subtasks, events and error.
    Show(cmd::ShowArgs),
    /// A run's log lines from every process and host; -f follows new ones.
    Logs(logs::LogsArgs),
    /// Per task from history: runs and attempts, success rate, duration percentiles, item rate.
    Stats(stats::StatsArgs),
    /// What changed between two runs: inputs, outputs, duration, status and metadata.
    Diff(diff::DiffArgs),
    /// The pipeline as a graph of task dependencies with live state (text, dot, mermaid, json).
    Dag(dag::DagArgs),
    /// Runs, subtasks and events as CSV or JSON.
    Export(cmd::ExportArgs),
    /// Register the pipeline declared under `tasks:` in .tasker.yml (stages, tasks, dependencies).
    Register(register::RegisterArgs),
    /// One self-contained HTML report: summary per stage, Gantt timeline, failures.
    Report(report::ReportArgs),
    /// Mark lost runs (process gone, or heartbeat too old) FAILED.
    Reap(cmd::ReapArgs),
    /// Delete old runs with their subtasks and events.
    Purge(cmd::PurgeArgs),
    /// Serve the read-only web dashboard, JSON API, /metrics and /healthz.
    Serve(serve::ServeArgs),
}

/// A failure to report: a message for stderr and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl From<tasker::Error> for Failure {
    fn from(e: tasker::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, Failure>;

impl Global {
    pub fn config(&self) -> CliResult<Config> {
        let mut args = match &self.db {
            Some(url) => ConfigArgs::url(url),
            None => ConfigArgs::default(),
        };
        args.config_file = self.config.clone();
        Ok(Config::resolve(&args)?)
    }

    /// Says what pointed at a database that is not there, and what to change.
    fn missing_db_hint(&self, source: &str) -> String {
        let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if self.db.is_some() {
            "the path came from --db: check it".into()
        } else if source.starts_with("environment") {
            let var = if env_set("TASKER_DB_URL") {
                "TASKER_DB_URL"
            } else {
                "the TASKER_DB_* variables"
            };
            format!("the path came from {var} in the environment: change or unset it, or pass --db")
        } else if source.starts_with("default") {
            "that is the default location (no --db, TASKER_DB_URL or config file named another): \
             pass --db, set TASKER_DB_URL or write .tasker.yml"
                .into()
        } else {
            format!("the path came from the config file {source}: edit it, or pass --db")
        }
    }

    /// Opens the database. Reading commands refuse to create a missing SQLite file.
    pub fn open(&self, create: bool) -> CliResult<Tracker> {
        let config = self.config()?;
        if let Location::Sqlite { path } = &config.location {
            if !create && !path.exists() {
                return Err(Failure::new(format!(
                    "no tasker database at {}: nothing has been tracked there yet; {}",
                    path.display(),
                    self.missing_db_hint(&config.source)
                )));
            }
        }
        Ok(Tracker::open(config)?)
    }
}

/// Runs the command line on `args` (the program name first, as in `std::env::args_os`)
/// and returns the exit status: 0 on success, 1 when a command failed, 2 for a usage
/// error. Messages go to stdout and stderr. Never exits the process, so a host
/// program (the Python package) can call it.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to stdout and succeed.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let result = match cli.command {
        Command::Status(a) => cmd::status(&cli.global, &a),
        Command::Watch(a) => cmd::watch(&cli.global, &a),
        Command::History(a) => cmd::history(&cli.global, &a),
        Command::Show(a) => cmd::show(&cli.global, &a),
        Command::Logs(a) => logs::logs(&cli.global, &a),
        Command::Stats(a) => stats::stats(&cli.global, &a),
        Command::Diff(a) => diff::diff(&cli.global, &a),
        Command::Dag(a) => dag::dag(&cli.global, &a),
        Command::Export(a) => cmd::export(&cli.global, &a),
        Command::Register(a) => register::register(&cli.global, &a),
        Command::Report(a) => report::report(&cli.global, &a),
        Command::Reap(a) => cmd::reap(&cli.global, &a),
        Command::Purge(a) => cmd::purge(&cli.global, &a),
        Command::Serve(a) => serve::serve(&cli.global, a),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("tasker: {}", tasker::config::redact(&f.message));
            }
            f.code
        }
    }
}
