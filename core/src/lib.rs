//! tasker: see what a data pipeline is doing.
//!
//! Programs report stages, tasks (runs) and subtasks with their progress through a
//! [`Tracker`]; anyone can query the same database for status, history and progress.
//! Progress calls cost nanoseconds (memory only, written by a background thread);
//! transitions are durable when they return. ARCHITECTURE.md at the repository
//! root describes the write path, storage and locks.
//!
//! ```no_run
//! use tasker::{Tracker, Config, RunOptions, SubtaskOptions};
//! let tracker = Tracker::open(Config::sqlite("pipeline.db"))?;
//! let run = tracker.task_start("ingest", "download", RunOptions::default())?;
//! let n = run.subtask_start("files", SubtaskOptions { items_total: Some(100), ..Default::default() })?;
//! for _ in 0..100 {
//!     run.subtask_increment(n, 1)?;
//! }
//! run.subtask_complete(n, None)?;
//! run.complete(Some("done"))?;
//! # Ok::<(), tasker::Error>(())
//! ```

pub mod alerts;
mod capture;
pub mod config;
pub mod dag;
mod declared;
pub mod error;
pub mod estimate;
pub mod ffi;
mod forecast;
pub mod io_record;
mod log_time;
pub mod logs;
pub mod model;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod otlp_settings;
mod outbox;
mod periodic;
pub mod process;
mod progress;
pub mod query;
pub mod retention;
mod run;
pub mod run_ids;
pub mod sampler;
#[cfg(feature = "server")]
pub mod serve;
pub mod stats;
pub mod store;
mod supervisor;
mod sync;
mod tracker;
pub mod views;
mod writer;

pub use alerts::{AlertConfig, AlertFilter, AlertRow, PassReport};
pub use config::{Config, ConfigArgs, Location, Retention};
pub use dag::{Dag, DagEdge, DagNode};
pub use error::{Error, ErrorKind, Result};
pub use estimate::{Basis, Eta};
pub use ffi::os::with_signals_blocked;
pub use io_record::{Direction, IoRecord};
pub use logs::{ItemOutcomeRow, LogFilter, LogLevel, LogRow, Outcome, OutcomeCount, OutcomeFilter};
pub use model::{
    RunOptions, RunProgress, Status, SubtaskOptions, SubtaskProgress, TaskSpec, TransitionInfo,
};
pub use query::{
    EventRow, HistoryFilter, IoRow, RunPageQuery, RunRow, RunSort, StageRow, StatsFilter,
    StatusFilter, SubtaskRow, TaskRow,
};
pub use run::RunHandle;
pub use sampler::Sample;
pub use stats::TaskStats;
pub use store::{RunSelector, TaskSelector, TasksDeleted, TasksWithRuns};
pub use supervisor::Health;
pub use tracker::{flush_all, Listener, RetentionReport, Tracker, TrackerStats};

/// The library version: the workspace version in the repository's `Cargo.toml`, the one
/// place it is written (the C header, the Python and R packages and the CLI report it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
