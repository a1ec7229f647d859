//! What can be written: every write of the model as one value (`Op`), its id
//! (`OpId`), and what the database answered (`Output`).
//!
//! A write made while the database is away is queued as an `Op` and applied
//! later, maybe by another process (a spool file left behind), so an op carries
//! everything it needs: the time it happened and, for subtasks, the identity the
//! client gave them (`SubtaskRef`), never a number that only meant something
//! in the process that made it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::io_record::IoRecord;
use crate::logs::LogBatch;
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::sampler::Sample;

use super::NewRun;

/// Names one write of one writer (a tracker in one process). The writes of a
/// writer are numbered in the order they are applied, so that a write whose
/// COMMIT reached the server but whose answer was lost can be sent again
/// without being applied twice: the database keeps the highest number applied
/// per writer and skips anything at or below it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpId {
    pub writer: Arc<str>,
    pub seq: u64,
}

/// Which subtask a write is about. A subtask started by a tracker has an
/// identity made by that tracker (`uid`, a UUID); a store finds it by that
/// identity whatever number the database gave it. Without a `uid` (a subtask
/// another process started, reached by its number) the number is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Arc<str>>,
    /// The stored number when `uid` is `None`; otherwise only for messages.
    pub number: u32,
}

impl SubtaskRef {
    pub fn number(number: u32) -> SubtaskRef {
        SubtaskRef { uid: None, number }
    }

    /// How messages name it: "subtask 3 of run R".
    pub fn describe(&self, run_id: &str) -> String {
        format!("subtask {} of run {run_id}", self.number)
    }
}

/// What one flush writes for a run or one of its subtasks. Deltas add to the
/// stored count so that many processes can increment one subtask exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressUpdate {
    pub run_id: Arc<str>,
    /// `None`: run-level progress (current subtask, overall percent, message).
    pub subtask: Option<u32>,
    /// The subtask's identity when known (see `SubtaskRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_uid: Option<Arc<str>>,
    pub items_set: Option<u64>,
    pub items_delta: u64,
    pub items_total: Option<u64>,
    pub percent: Option<f64>,
    pub message: Option<String>,
    pub current_subtask: Option<u32>,
}

impl ProgressUpdate {
    /// Whether it sets anything besides adding items (what a finished subtask refuses).
    pub fn sets_something(&self) -> bool {
        self.items_set.is_some()
            || self.items_total.is_some()
            || self.percent.is_some()
            || self.message.is_some()
    }
}

/// A resource sample of the process running a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSample {
    pub run_id: Arc<str>,
    #[serde(flatten)]
    pub sample: Sample,
}

/// One write, with the time it happened (stored as that time when applied later).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Op {
    Register {
        specs: Vec<TaskSpec>,
        at: DateTime<Utc>,
    },
    StartRun(Box<NewRun>),
    RunTransition {
        run_id: String,
        to: Status,
        info: TransitionInfo,
        at: DateTime<Utc>,
    },
    SubtaskStart {
        run_id: String,
        /// The identity the starting tracker gave it (absent in spool files of
        /// versions before it existed: a new one is made when applied).
        #[serde(default)]
        uid: Option<Arc<str>>,
        name: String,
        options: SubtaskOptions,
        at: DateTime<Utc>,
        /// Queued while the database was away: an explicit number that another
        /// process took meanwhile is replaced by the next free one (the subtask
        /// is still stored as its own) instead of refusing the start.
        #[serde(default)]
        renumber_if_taken: bool,
    },
    SubtaskTransition {
        run_id: String,
        #[serde(alias = "number", with = "subtask_ref_compat")]
        subtask: SubtaskRef,
        to: Status,
        info: TransitionInfo,
        at: DateTime<Utc>,
    },
    Progress {
        updates: Vec<ProgressUpdate>,
        /// Runs whose heartbeat this write refreshes (never queued: a late
        /// heartbeat says nothing).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        heartbeats: Vec<Arc<str>>,
        /// Resource samples of this process for the runs it started (written
        /// with the progress: never a transaction of their own).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        samples: Vec<RunSample>,
        /// Log lines and item outcomes logged since the last flush (written
        /// with the progress: never a transaction of their own).
        #[serde(default, skip_serializing_if = "LogBatch::is_empty")]
        logs: LogBatch,
        at: DateTime<Utc>,
    },
    /// Records an input or output of a run, replacing its earlier record of the
    /// same name (so applying it twice is harmless).
    RecordIo {
        run_id: String,
        record: IoRecord,
        at: DateTime<Utc>,
    },
}

impl Op {
    /// When the write happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Op::Register { at, .. }
            | Op::RunTransition { at, .. }
            | Op::SubtaskStart { at, .. }
            | Op::SubtaskTransition { at, .. }
            | Op::Progress { at, .. }
            | Op::RecordIo { at, .. } => *at,
            Op::StartRun(run) => run.start_time,
        }
    }

    /// The run it is about (`None` for registrations and multi-run progress).
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Op::StartRun(run) => Some(&run.run_id),
            Op::RunTransition { run_id, .. }
            | Op::SubtaskStart { run_id, .. }
            | Op::SubtaskTransition { run_id, .. }
            | Op::RecordIo { run_id, .. } => Some(run_id),
            Op::Register { .. } | Op::Progress { .. } => None,
        }
    }

    /// The op as queued while the database was away: a subtask start whose
    /// explicit number another process took meanwhile gets the next free one.
    pub fn into_queued(self) -> Op {
        match self {
            Op::SubtaskStart {
                run_id,
                uid,
                name,
                options,
                at,
                ..
            } => Op::SubtaskStart {
                run_id,
                uid,
                name,
                options,
                at,
                renumber_if_taken: true,
            },
            other => other,
        }
    }

    /// A short name for messages ("subtask start").
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Register { .. } => "task registration",
            Op::StartRun(_) => "run start",
            Op::RunTransition { .. } => "run status change",
            Op::SubtaskStart { .. } => "subtask start",
            Op::SubtaskTransition { .. } => "subtask status change",
            Op::Progress { .. } => "progress",
            Op::RecordIo { .. } => "input or output record",
        }
    }
}

/// Spool files written before subtasks had identities say `"number": 3`.
mod subtask_ref_compat {
    use super::SubtaskRef;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Ref(SubtaskRef),
        Number(u32),
    }

    pub fn serialize<S: Serializer>(r: &SubtaskRef, s: S) -> Result<S::Ok, S::Error> {
        r.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SubtaskRef, D::Error> {
        Ok(match Either::deserialize(d)? {
            Either::Ref(r) => r,
            Either::Number(n) => SubtaskRef::number(n),
        })
    }
}

/// A write waiting for the database, with its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Queued {
    /// Absent in spool files of versions before writes had ids.
    #[serde(default)]
    pub id: Option<OpId>,
    pub op: Op,
}

/// What the database did with a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Task ids, in the order of the specs.
    Registered(Vec<i64>),
    RunStarted,
    /// The number the database gave the subtask (also when it was started before
    /// under the same identity: a start is applied once).
    SubtaskStarted {
        number: u32,
    },
    /// The status before; `changed` is false when it already had the new status
    /// (nothing was written: finishing twice is not an error).
    Transition {
        from: Status,
        changed: bool,
    },
    /// The updates whose subtask had already finished (index, its status): their
    /// added items were counted, anything they set was not.
    Progress {
        finished: Vec<(usize, Status)>,
    },
    /// Applied before under the same id (its answer was lost): skipped.
    Duplicate,
    /// An input or output was recorded.
    Recorded,
}
