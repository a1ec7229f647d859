//! Writes that could not reach the database, kept in order until it is back.
//!
//! While the database is unreachable, transitions are queued here instead of
//! failing the user's program; progress stays in its in-memory cells. The queue
//! lives in memory up to a bound, then spills to a spool file (JSON lines) under
//! `$XDG_STATE_HOME/tasker/spool/`. A process that exits during an outage leaves
//! its spool file behind; the next tasker process on the host that opens the same
//! database replays it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Status, SubtaskOptions, TaskSpec, TransitionInfo};
use crate::store::{NewRun, ProgressUpdate, Store, WriterSeq};

/// Operations kept in memory before the rest goes to the spool file.
pub(crate) const MEMORY_BOUND: usize = 10_000;

/// One write, with the time it happened (stored as that time when replayed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Op {
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
        name: String,
        options: SubtaskOptions,
        at: DateTime<Utc>,
    },
    SubtaskTransition {
        run_id: String,
        number: u32,
        to: Status,
        info: TransitionInfo,
        at: DateTime<Utc>,
    },
    Progress {
        updates: Vec<ProgressUpdate>,
        at: DateTime<Utc>,
        /// Applied at most once under this id (absent in spool files of older versions).
        #[serde(default)]
        batch_id: Option<WriterSeq>,
    },
}

impl Op {
    /// When the write happened.
    pub(crate) fn at(&self) -> DateTime<Utc> {
        match self {
            Op::Register { at, .. }
            | Op::RunTransition { at, .. }
            | Op::SubtaskStart { at, .. }
            | Op::SubtaskTransition { at, .. }
            | Op::Progress { at, .. } => *at,
            Op::StartRun(run) => run.start_time,
        }
    }

    pub(crate) fn apply(&self, st: &mut dyn Store) -> Result<()> {
        match self {
            Op::Register { specs, at } => st.register_tasks(specs, *at).map(drop),
            Op::StartRun(run) => st.start_run(run),
            Op::RunTransition {
                run_id,
                to,
                info,
                at,
            } => st.run_transition(run_id, *to, info, *at).map(drop),
            Op::SubtaskStart {
                run_id,
                name,
                options,
                at,
            } => st.subtask_start(run_id, name, options, *at).map(drop),
            Op::SubtaskTransition {
                run_id,
                number,
                to,
                info,
                at,
            } => st
                .subtask_transition(run_id, *number, *to, info, *at)
                .map(drop),
            Op::Progress {
                updates,
                at,
                batch_id,
            } => st.apply_progress_once(updates, &[], *at, batch_id.as_ref()),
        }
    }
}

/// The queue of one process for one database.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Ops older than `memory`, spilled to this process's spool file.
    spool: Option<PathBuf>,
    spooled: usize,
    memory: VecDeque<Op>,
    spool_dir: PathBuf,
    /// Identifies the database in spool file names (no secrets).
    key: String,
}

impl Outbox {
    pub(crate) fn new(spool_dir: PathBuf, key: String) -> Outbox {
        Outbox {
            spool: None,
            spooled: 0,
            memory: VecDeque::new(),
            spool_dir,
            key,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.spooled == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.memory.len() + self.spooled
    }

    pub(crate) fn spooled(&self) -> usize {
        self.spooled
    }

    pub(crate) fn push(&mut self, op: Op) {
        self.memory.push_back(op);
        if self.memory.len() > MEMORY_BOUND {
            if let Err(e) = self.spill() {
                log::warn!(
                    "tasker: cannot write the spool file ({e}); keeping pending writes in memory"
                );
            }
        }
    }

    /// Moves every in-memory op to the end of the spool file.
    pub(crate) fn spill(&mut self) -> std::io::Result<()> {
        if self.memory.is_empty() {
            return Ok(());
        }
        let path = match &self.spool {
            Some(p) => p.clone(),
            None => {
                std::fs::create_dir_all(&self.spool_dir)?;
                let name = format!(
                    "{}.{}.{}.jsonl",
                    self.key,
                    std::process::id(),
                    Utc::now().timestamp_nanos_opt().unwrap_or_default()
                );
                self.spool_dir.join(name)
            }
        };
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut buf = String::new();
        for op in &self.memory {
            buf += &serde_json::to_string(op).map_err(std::io::Error::other)?;
            buf.push('\n');
        }
        f.write_all(buf.as_bytes())?;
        f.sync_data()?;
        self.spooled += self.memory.len();
        self.memory.clear();
        self.spool = Some(path);
        Ok(())
    }

    /// Applies queued ops in order. Stops at the first storage error (the database is
    /// still away) and returns it; ops the database refuses for good (a transition that
    /// another process made impossible meanwhile) are logged and dropped.
    pub(crate) fn replay(&mut self, st: &mut dyn Store) -> Result<usize> {
        let mut done = 0;
        if let Some(path) = self.spool.clone() {
            let ops = read_spool(&path)
                .map_err(|e| Error::storage("spool", format!("{}: {e}", path.display())))?;
            for (i, op) in ops.iter().enumerate() {
                if let Err(e) = apply_or_drop(op, st) {
                    // Keep what is left, in order, for the next attempt.
                    let rest: VecDeque<Op> = ops[i..].iter().cloned().collect();
                    let _ = std::fs::remove_file(&path);
                    self.spool = None;
                    self.spooled = 0;
                    let newer = std::mem::replace(&mut self.memory, rest);
                    self.memory.extend(newer);
                    return Err(e);
                }
                done += 1;
            }
            let _ = std::fs::remove_file(&path);
            self.spool = None;
            self.spooled = 0;
        }
        while let Some(op) = self.memory.front() {
            apply_or_drop(op, st)?;
            self.memory.pop_front();
            done += 1;
        }
        Ok(done)
    }

    /// Takes over the spool files other processes of this host left for this database
    /// (their process is gone), oldest first, ahead of anything queued here.
    pub(crate) fn adopt_orphans(&mut self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.spool_dir) else {
            return 0;
        };
        let prefix = format!("{}.", self.key);
        let mut files: Vec<(u128, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                let rest = name.strip_prefix(&prefix)?.strip_suffix(".jsonl")?;
                let (pid, stamp) = rest.split_once('.')?;
                let pid: u32 = pid.parse().ok()?;
                let alive = pid == std::process::id()
                    || crate::process::is_alive(pid, None).unwrap_or(true);
                (!alive).then(|| (stamp.parse().unwrap_or(0), p))
            })
            .collect();
        files.sort();
        let mut adopted: VecDeque<Op> = VecDeque::new();
        for (_, path) in files {
            // Claim it first so that two processes never replay one file.
            let claimed = path.with_extension(format!("claimed-{}", std::process::id()));
            if std::fs::rename(&path, &claimed).is_err() {
                continue;
            }
            match read_spool(&claimed) {
                Ok(ops) => {
                    adopted.extend(ops);
                    let _ = std::fs::remove_file(&claimed);
                }
                Err(e) => log::warn!("tasker: cannot read spool file {}: {e}", claimed.display()),
            }
        }
        let n = adopted.len();
        if n > 0 {
            let mine = std::mem::replace(&mut self.memory, adopted);
            self.memory.extend(mine);
            log::warn!(
                "tasker: replaying {n} writes left by a process that exited during an outage"
            );
        }
        n
    }
}

fn apply_or_drop(op: &Op, st: &mut dyn Store) -> Result<()> {
    match op.apply(st) {
        Ok(()) => Ok(()),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => {
            log::warn!("tasker: a write queued during an outage was refused when replayed and is dropped: {e}");
            Ok(())
        }
    }
}

fn read_spool(path: &Path) -> std::io::Result<Vec<Op>> {
    let f = File::open(path)?;
    let mut ops = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(op) => ops.push(op),
            // A line cut short by a crash mid-write: everything before it is good.
            Err(e) => {
                log::warn!(
                    "tasker: skipping an unreadable line of {}: {e}",
                    path.display()
                );
            }
        }
    }
    Ok(ops)
}

/// A short, stable, secret-free name for a database location.
pub(crate) fn location_key(describe: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in describe.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
