//! The handle on one run: [`RunHandle`]. Progress calls touch only the in-memory
//! cells of the run (`progress.rs`); transitions go through the tracker's
//! supervisor and are durable when they return (or queued during an outage).
//!
//! Subtask numbers. A subtask started here gets an identity (a UUID) and a
//! number. The number comes from the database when it is reachable; while
//! writes wait for it (an outage, or its replay), the start is queued and the
//! number given out is provisional: the next after the highest this process has
//! seen. Other processes may give out the same one meanwhile, so when the start
//! is applied the database may store the subtask under another number. Calls
//! from this process with the provisional number keep reaching *its* subtask
//! (they go by identity), and [`RunHandle::subtask_number`] tells the stored
//! number once it is known. Another process that reaches the subtask by number
//! must use the stored one.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;

use crate::error::{Error, Result};
use crate::ffi::os::fork_generation;
use crate::io_record::{Direction, IoRecord};
use crate::model::{
    check_name, check_percent, check_text, RunProgress, Status, SubtaskOptions, SubtaskProgress,
    TransitionInfo,
};
use crate::progress::{Cell, RunCells};
use crate::store::{new_uid, Op, Output, ProgressUpdate, SubtaskRef};
use crate::supervisor::Answer;
use crate::sync::lock;
use crate::tracker::{Tracker, TrackerInner};

pub(crate) struct RunShared {
    run_id: Arc<str>,
    stage: String,
    task: String,
    tracker: Arc<TrackerInner>,
    pub(crate) cells: RunCells,
    /// Last status known to this process (the old status of a queued transition).
    status: AtomicI32,
    /// Highest subtask number seen here (numbers given out while writes wait).
    max_subtask: AtomicU32,
    /// Subtasks started while writes waited, by the number given out then: found
    /// by it even after the cell table dropped them.
    provisional: Mutex<Vec<(u32, Arc<Cell>)>>,
}

impl Drop for RunShared {
    /// Progress still pending when the last handle of a run goes (a C program's
    /// `tasker_run_free`, a handle out of scope) is kept for the next flush.
    fn drop(&mut self) {
        let sup = self.tracker.supervisor();
        if sup.generation != fork_generation() {
            return; // a forked child's copy: what is pending is the parent's to write
        }
        let mut pending = Vec::new();
        self.cells.take_all(&self.run_id, &mut pending);
        if !pending.is_empty() {
            sup.orphan(pending);
        }
    }
}

impl RunShared {
    pub(crate) fn new(
        run_id: Arc<str>,
        stage: &str,
        task: &str,
        tracker: Arc<TrackerInner>,
        status: Status,
    ) -> RunShared {
        RunShared {
            run_id,
            stage: stage.to_string(),
            task: task.to_string(),
            tracker,
            cells: RunCells::new(),
            status: AtomicI32::new(status as i32),
            max_subtask: AtomicU32::new(0),
            provisional: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    pub(crate) fn run_id_arc(&self) -> &Arc<str> {
        &self.run_id
    }

    pub(crate) fn tracker_inner(&self) -> &Arc<TrackerInner> {
        &self.tracker
    }

    fn last_status(&self) -> Status {
        Status::from_code(self.status.load(Ordering::Relaxed)).unwrap_or(Status::Running)
    }

    /// A queued start of subtask `uid` was applied: it is stored as `number`.
    pub(crate) fn learn_number(&self, uid: &str, number: u32) {
        let cell = lock(&self.provisional)
            .iter()
            .find(|(_, c)| c.uid().is_some_and(|u| &**u == uid))
            .map(|(_, c)| Arc::clone(c))
            .or_else(|| self.cells.find_uid(uid));
        let Some(cell) = cell else {
            return;
        };
        cell.set_stored_number(number);
        self.max_subtask.fetch_max(number, Ordering::Relaxed);
        // Its stored number reaches it too, unless this process already uses that
        // number for another process's subtask (then the provisional one is kept).
        if self.cells.with(number, |_| ()).is_none() {
            self.cells.insert(number, cell);
        }
    }

    /// A flush found that the subtask of `u` had finished (in another process).
    pub(crate) fn learn_finished(&self, u: &ProgressUpdate, status: Status) {
        let cell = match (&u.subtask_uid, u.subtask) {
            (Some(uid), _) => self.cells.find_uid(uid),
            (None, Some(n)) => self.cells.with(n, Arc::clone),
            (None, None) => None,
        };
        if let Some(c) = cell {
            c.finish(status);
        }
    }

    /// The cell for calls with `number`: the one this process has, or (the slow
    /// path of the first progress call for a subtask) one made after checking
    /// that the subtask exists and has not finished.
    #[cold]
    fn attach_subtask(&self, number: u32) -> Result<Arc<Cell>> {
        let provisional = lock(&self.provisional)
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, c)| Arc::clone(c));
        if let Some(c) = provisional {
            if let Some(status) = c.finished_status() {
                return Err(self.late(number, status));
            }
            self.cells.insert(number, Arc::clone(&c));
            return Ok(c);
        }
        let finished_here = self.cells.with(number, |c| c.finished_status()).flatten();
        let on_trust = || {
            let c = Arc::new(Cell::new(Some(number), None, Some(number)));
            self.cells.insert(number, Arc::clone(&c));
            c
        };
        if self.tracker.writes_wait() {
            // The database cannot be asked now: the number is taken on trust.
            return match finished_here {
                Some(status) => Err(self.late(number, status)),
                None => Ok(on_trust()),
            };
        }
        match self
            .tracker
            .read(|st| st.subtask_state(&self.run_id, number))
        {
            Ok(Some(state)) if state.status.is_terminal() => Err(self.late(number, state.status)),
            Ok(Some(state)) => {
                let c = Arc::new(Cell::new(Some(number), state.uid, Some(number)));
                self.cells.insert(number, Arc::clone(&c));
                Ok(c)
            }
            Ok(None) => Err(Error::not_found(
                "subtask",
                format!(
                    "{number} of run {} (start it with subtask_start first)",
                    self.run_id
                ),
            )),
            Err(e) if e.is_transient() => match finished_here {
                Some(status) => Err(self.late(number, status)),
                None => Ok(on_trust()),
            },
            Err(e) => Err(e),
        }
    }

    /// The error of a progress call for a subtask that has finished.
    fn late(&self, number: u32, status: Status) -> Error {
        Error::InvalidTransition {
            what: format!(
                "subtask {number} of run {} (progress after it finished is refused)",
                self.run_id
            ),
            from: status,
            to: Status::Running,
        }
    }

    /// What a transition of subtask `number` is about, and its cell if this
    /// process has one.
    pub(crate) fn subtask_ref(&self, number: u32) -> (SubtaskRef, Option<Arc<Cell>>) {
        let cell = self.cells.with(number, Arc::clone).or_else(|| {
            lock(&self.provisional)
                .iter()
                .find(|(n, _)| *n == number)
                .map(|(_, c)| Arc::clone(c))
        });
        let sub = match &cell {
            Some(c) => SubtaskRef {
                uid: c.uid().cloned(),
                number: c.stored_number().unwrap_or(number),
            },
            None => SubtaskRef::number(number),
        };
        (sub, cell)
    }
}

/// One run. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct RunHandle {
    shared: Arc<RunShared>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &&*self.shared.run_id)
            .finish()
    }
}

impl RunHandle {
    pub(crate) fn from_shared(shared: Arc<RunShared>) -> RunHandle {
        RunHandle { shared }
    }

    pub(crate) fn shared(&self) -> &RunShared {
        &self.shared
    }

    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    pub fn stage(&self) -> &str {
        &self.shared.stage
    }

    pub fn task(&self) -> &str {
        &self.shared.task
    }

    pub fn tracker(&self) -> Tracker {
        Tracker::from_inner(Arc::clone(&self.shared.tracker))
    }

    /// Starts a subtask; returns its number (provisional while writes wait for
    /// the database: see the module documentation and `subtask_number`).
    pub fn subtask_start(&self, name: &str, options: SubtaskOptions) -> Result<u32> {
        check_name("subtask name", name)?;
        if let Some(m) = &options.message {
            check_text("message", m)?;
        }
        if options.number == Some(0) {
            return Err(Error::invalid("subtask_number", 0u32, "numbers start at 1"));
        }
        if let Some(t) = options.items_total {
            if t > i64::MAX as u64 {
                return Err(Error::invalid("items_total", t, "is too large"));
            }
        }
        let s = &*self.shared;
        let uid = new_uid();
        let op = Op::SubtaskStart {
            run_id: s.run_id.to_string(),
            uid: Some(Arc::clone(&uid)),
            name: name.to_string(),
            options: options.clone(),
            at: Utc::now(),
            renumber_if_taken: false,
        };
        let (number, stored) = match s.tracker.transition(op, Vec::new)? {
            Answer::Applied(Output::SubtaskStarted { number }) => (number, Some(number)),
            Answer::Applied(other) => {
                return Err(Error::storage_refused(
                    "tasker",
                    format!("unexpected answer {other:?} to a subtask start"),
                ))
            }
            Answer::Queued => {
                let local = options
                    .number
                    .unwrap_or_else(|| s.max_subtask.load(Ordering::Relaxed) + 1);
                (local, None)
            }
        };
        s.max_subtask.fetch_max(number, Ordering::Relaxed);
        if s.status.load(Ordering::Relaxed) == Status::Started as i32 {
            s.status.store(Status::Running as i32, Ordering::Relaxed);
        }
        let cell = Arc::new(Cell::new(Some(number), Some(uid), stored));
        if stored.is_none() {
            lock(&s.provisional).push((number, Arc::clone(&cell)));
        }
        s.cells.insert(number, cell);
        Ok(number)
    }

    /// The number the database stored subtask `number` under: the same, unless it
    /// was started while the database was away and another process took that
    /// number meanwhile. Until the queued start is applied, `number` itself.
    pub fn subtask_number(&self, number: u32) -> u32 {
        self.shared
            .subtask_ref(number)
            .1
            .and_then(|c| c.stored_number())
            .unwrap_or(number)
    }

    /// The identity of the subtask this process reaches as `number`, when it has
    /// one: hand it to another process with the number (`adopt_subtask`), so that
    /// its progress reaches this subtask even if it was started during an outage.
    pub fn subtask_uid(&self, number: u32) -> Option<String> {
        let (sub, _) = self.shared.subtask_ref(number);
        sub.uid.map(|u| u.to_string())
    }

    /// Makes `number` in this process reach the subtask with identity `uid` (given
    /// by the process that started it, see `subtask_uid`), whatever number the
    /// database gave it. Memory only.
    pub fn adopt_subtask(&self, number: u32, uid: &str) -> Result<()> {
        if number == 0 {
            return Err(Error::invalid("subtask_number", 0u32, "numbers start at 1"));
        }
        uuid::Uuid::parse_str(uid).map_err(|_| {
            Error::invalid("subtask_uid", uid, "is not a subtask identity (a UUID)")
        })?;
        let s = &*self.shared;
        let known = s
            .cells
            .with(number, |c| c.uid().is_some_and(|u| &**u == uid));
        if known != Some(true) {
            let cell = Arc::new(Cell::new(Some(number), Some(Arc::from(uid)), None));
            s.cells.insert(number, cell);
        }
        Ok(())
    }

    /// Adds `n` items to a subtask's count. Memory only; the writer stores it.
    /// Refused (invalid transition) once the subtask is known to have finished.
    #[inline]
    pub fn subtask_increment(&self, number: u32, n: u64) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if n == 0 || n > i64::MAX as u64 {
            return Err(Error::invalid("increment", n, "must be at least 1"));
        }
        if s.cells.with(number, |c| c.try_increment(n)) == Some(true) {
            return Ok(());
        }
        self.increment_slow(number, n)
    }

    #[cold]
    fn increment_slow(&self, number: u32, n: u64) -> Result<()> {
        let s = &*self.shared;
        let cell = s.attach_subtask(number)?;
        match cell.try_increment(n) {
            true => Ok(()),
            false => Err(s.late(number, cell.finished_status().unwrap_or(Status::Completed))),
        }
    }

    /// Sets a subtask's progress (absolute items, total, percent, message). Memory
    /// only; never changes the status except STARTED -> RUNNING when stored.
    /// Refused (invalid transition) once the subtask is known to have finished.
    pub fn subtask_update(&self, number: u32, p: &SubtaskProgress) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if let Some(pct) = p.percent {
            check_percent("percent", pct)?;
        }
        for (what, v) in [
            ("items_complete", p.items_complete),
            ("items_total", p.items_total),
        ] {
            if let Some(v) = v {
                if v > i64::MAX as u64 {
                    return Err(Error::invalid(what, v, "is too large"));
                }
            }
        }
        if let Some(m) = &p.message {
            check_text("message", m)?;
        }
        let apply = |c: &Arc<Cell>| {
            if c.is_finished() {
                return false;
            }
            if let Some(v) = p.items_complete {
                c.set_items(v);
            }
            if let Some(v) = p.items_total {
                c.set_items_total(v);
            }
            if let Some(v) = p.percent {
                c.set_percent(v);
            }
            if let Some(m) = &p.message {
                c.set_message(m.clone());
            }
            true
        };
        if s.cells.with(number, apply) == Some(true) {
            return Ok(());
        }
        let cell = s.attach_subtask(number)?;
        match apply(&cell) {
            true => Ok(()),
            false => Err(s.late(number, cell.finished_status().unwrap_or(Status::Completed))),
        }
    }

    /// Sets run-level progress; never changes the status. Memory only.
    pub fn update(&self, p: &RunProgress) -> Result<()> {
        let s = &*self.shared;
        s.tracker.check_fork();
        if let Some(pct) = p.overall_percent {
            check_percent("overall_percent", pct)?;
        }
        if p.current_subtask == Some(0) {
            return Err(Error::invalid(
                "current_subtask",
                0u32,
                "numbers start at 1",
            ));
        }
        if let Some(m) = &p.message {
            check_text("message", m)?;
        }
        let cell = s.cells.run.load();
        if let Some(n) = p.current_subtask {
            cell.set_current_subtask(n);
        }
        if let Some(v) = p.overall_percent {
            cell.set_percent(v);
        }
        if let Some(m) = &p.message {
            cell.set_message(m.clone());
        }
        Ok(())
    }

    /// Moves a subtask to `to` (checked against its stored status). Durable on
    /// return. Moving it to the status it has is a no-op (nothing is written).
    /// Returns the status it had.
    pub fn subtask_set_status(
        &self,
        number: u32,
        to: Status,
        info: TransitionInfo,
    ) -> Result<Status> {
        info.validate()?;
        let s = &*self.shared;
        let (sub, cell) = s.subtask_ref(number);
        let op = Op::SubtaskTransition {
            run_id: s.run_id.to_string(),
            subtask: sub.clone(),
            to,
            info,
            at: Utc::now(),
        };
        // Its own pending progress goes first (a count set just before completing).
        let first = || {
            cell.as_ref()
                .and_then(|c| c.take(&s.run_id))
                .into_iter()
                .collect()
        };
        let (old, changed) = match s.tracker.transition(op, first)? {
            Answer::Applied(Output::Transition { from, changed }) => (from, changed),
            Answer::Applied(_) | Answer::Queued => (Status::Running, true),
        };
        if changed && to.is_terminal() {
            s.tracker.subtask_ended(&s.run_id);
        }
        if let Some(c) = &cell {
            if to.is_terminal() {
                c.finish(to);
            } else if c.is_finished() {
                // Reset to an unfinished status: progress is taken again.
                let fresh = Arc::new(Cell::new(Some(number), c.uid().cloned(), c.stored_number()));
                s.cells.insert(number, fresh);
            }
        }
        Ok(old)
    }

    pub fn subtask_complete(&self, number: u32, message: Option<&str>) -> Result<()> {
        self.subtask_set_status(number, Status::Completed, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn subtask_fail(
        &self,
        number: u32,
        error_message: &str,
        error_detail: Option<&str>,
    ) -> Result<()> {
        self.subtask_set_status(
            number,
            Status::Failed,
            TransitionInfo::error(error_message, error_detail),
        )
        .map(drop)
    }

    pub fn subtask_skip(&self, number: u32, message: Option<&str>) -> Result<()> {
        self.subtask_set_status(number, Status::Skipped, TransitionInfo::message(message))
            .map(drop)
    }

    /// Moves the run to `to` (checked against its stored status). A terminal status
    /// also closes the run's open subtasks. Durable on return. Moving it to the
    /// status it has is a no-op (nothing is written). Returns the status it had.
    pub fn set_status(&self, to: Status, info: TransitionInfo) -> Result<Status> {
        self.set_status_at(to, info, Utc::now())
    }

    /// `set_status`, stored as made at `at` (a lost run ends at its last heartbeat).
    pub(crate) fn set_status_at(
        &self,
        to: Status,
        info: TransitionInfo,
        at: chrono::DateTime<Utc>,
    ) -> Result<Status> {
        info.validate()?;
        let s = &*self.shared;
        // For the FAILED alert (the writer thread sends it, see `alerts`).
        let error_message = (to == Status::Failed)
            .then(|| info.error_message.clone())
            .flatten();
        let op = Op::RunTransition {
            run_id: s.run_id.to_string(),
            to,
            info,
            at,
        };
        let first = || {
            let mut pending = Vec::new();
            s.cells.take_all(&s.run_id, &mut pending);
            pending
        };
        let (old, changed) = match s.tracker.transition(op, first)? {
            Answer::Applied(Output::Transition { from, changed }) => (from, changed),
            Answer::Applied(_) | Answer::Queued => (s.last_status(), s.last_status() != to),
        };
        s.status.store(to as i32, Ordering::Relaxed);
        if to.is_terminal() {
            s.tracker.supervisor().forget_owned(&s.run_id);
            s.cells.finish_all(to);
        }
        if changed && to == Status::Failed {
            s.tracker
                .run_failed(&s.run_id, &s.stage, &s.task, error_message.as_deref());
        }
        if changed && to.is_terminal() {
            s.tracker.run_ended(&s.run_id);
        }
        Ok(old)
    }

    /// Records an input or output of this run (`IoRecord::value` or
    /// `IoRecord::file`), replacing an earlier record of the same name and
    /// direction. Durable on return (queued while the database is away).
    pub fn record_io(&self, record: IoRecord) -> Result<()> {
        let s = &*self.shared;
        let op = Op::RecordIo {
            run_id: s.run_id.to_string(),
            record,
            at: Utc::now(),
        };
        s.tracker.transition(op, Vec::new).map(drop)
    }

    /// Records a named input value (`record_io` with `IoRecord::value`).
    pub fn add_input(&self, name: &str, value: &str) -> Result<()> {
        self.record_io(IoRecord::value(Direction::Input, name, value)?)
    }

    /// Records a named output value (`record_io` with `IoRecord::value`).
    pub fn add_output(&self, name: &str, value: &str) -> Result<()> {
        self.record_io(IoRecord::value(Direction::Output, name, value)?)
    }

    /// Records an input file: its path, size, modification time and, with `hash`,
    /// the SHA-256 of its content.
    pub fn add_input_file(&self, name: &str, path: &str, hash: bool) -> Result<()> {
        self.record_io(IoRecord::file(Direction::Input, name, path, hash)?)
    }

    /// Records an output file, as `add_input_file`.
    pub fn add_output_file(&self, name: &str, path: &str, hash: bool) -> Result<()> {
        self.record_io(IoRecord::file(Direction::Output, name, path, hash)?)
    }

    pub fn complete(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Completed, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn fail(&self, error_message: &str, error_detail: Option<&str>) -> Result<()> {
        self.set_status(
            Status::Failed,
            TransitionInfo::error(error_message, error_detail),
        )
        .map(drop)
    }

    pub fn cancel(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Cancelled, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn skip(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Skipped, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn pause(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Paused, TransitionInfo::message(message))
            .map(drop)
    }

    pub fn resume(&self, message: Option<&str>) -> Result<()> {
        self.set_status(Status::Running, TransitionInfo::message(message))
            .map(drop)
    }
}
