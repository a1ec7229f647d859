//! Native side of the R package `tasker`.
//!
//! Two kinds of entry points:
//! - `#[extendr]` functions (`tk_*`) for everything that is not in a tight loop; their
//!   R wrappers are generated into `R/extendr-wrappers.R` and stay internal.
//! - plain `.Call` routines (`tk_inc`, `tk_prog`, and the no-op `tk_noop`) for progress
//!   calls and for the four transitions (`tk_task_start`, `tk_run_status`,
//!   `tk_subtask_start`, `tk_subtask_status`), registered next to the extendr ones in
//!   [`R_init_tasker_rs`]. They avoid the wrapper's per-argument bookkeeping, which
//!   costs more than a progress call's own work and a large part of a transition's.
//!
//! Errors never unwind into R: a failing function returns a character vector
//! `c(kind, message)` of class `tasker_native_error`, and the R layer signals a
//! condition of class `tasker_<kind>` from it.
//!
//! State (the open tracker, the runs this process touched, the current run) lives in
//! a thread-local: R calls arrive on its main thread only. A forked child (mclapply)
//! inherits a copy, and the core takes care of connections and pending progress.

mod bench;
mod events;
mod logs;
mod monitor;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::mem::ManuallyDrop;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use extendr_api::metadata::{Arg, Func};
use extendr_api::prelude::*;
use extendr_ffi as ffi;
use extendr_ffi::{SEXP, SEXPTYPE};

use tasker::config::{Location, Secret};
use tasker::estimate::{Basis, SubtaskFacts};
use tasker::sampler::{Sample, Sampler, Unavailable};
use tasker::{
    Config, ConfigArgs, Direction, Error as TkError, EventRow, HistoryFilter, IoRecord, IoRow,
    RunHandle, RunOptions, RunProgress, RunRow, RunSelector, StageRow, StatsFilter, Status,
    StatusFilter, SubtaskOptions, SubtaskProgress, SubtaskRow, TaskRow, TaskSelector, TaskSpec,
    TaskStats, TasksWithRuns, Tracker, TransitionInfo,
};

type TkResult<T> = std::result::Result<T, TkError>;

/// At most one progress note per run and second: loops do not flood the console.
const NOTE_EVERY_MS: u64 = 1000;

struct RunEntry {
    handle: RunHandle,
    /// The subtask that implicit progress calls go to (the last one started here).
    current: Cell<Option<u32>>,
    /// When the last progress note was due ([`coarse_ms`]).
    last_note: Cell<Option<u64>>,
}

impl RunEntry {
    /// True when a progress note is due (first call, then once per `NOTE_EVERY_MS`).
    #[inline]
    fn note_due(&self) -> bool {
        let now = coarse_ms();
        match self.last_note.get() {
            Some(t) if now.saturating_sub(t) < NOTE_EVERY_MS => false,
            _ => {
                self.last_note.set(Some(now));
                true
            }
        }
    }
}

/// Milliseconds of a monotonic clock, read cheaply. Every progress call asks it, and
/// `Instant::now()` (about 25 ns) was a third of the native part of an increment;
/// Linux's coarse clock costs a few ns and its few-ms resolution is plenty for a
/// once-a-second note.
#[inline]
fn coarse_ms() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes into the timespec it is given.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
            return (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000;
        }
        0
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::time::Instant;
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_millis() as u64
    }
}

#[derive(Default)]
struct State {
    tracker: Option<Tracker>,
    runs: HashMap<String, Rc<RunEntry>>,
    context: Option<Rc<RunEntry>>,
    /// R has status-change callbacks: every tracker opened gets the queueing listener.
    listening: bool,
    /// The id of that listener on `tracker`.
    listener: Option<u64>,
}

/// Starts or stops queueing transition events for R (see events.rs).
fn set_listening(on: bool) {
    ST.with(|s| {
        let mut s = s.borrow_mut();
        s.listening = on;
        if let Some(t) = s.tracker.clone() {
            match (on, s.listener) {
                (true, None) => s.listener = Some(events::listen(&t)),
                (false, Some(id)) => {
                    t.remove_listener(id);
                    s.listener = None;
                }
                _ => {}
            }
        }
    });
    if !on {
        events::clear();
    }
}

thread_local! {
    // Never dropped: at exit R's finalizer has flushed already, and dropping a
    // PostgreSQL store while thread-locals are torn down panics inside tokio.
    static ST: ManuallyDrop<RefCell<State>> = ManuallyDrop::new(RefCell::new(State::default()));
}

pub(crate) fn tracker() -> TkResult<Tracker> {
    ST.with(|s| s.borrow().tracker.clone()).ok_or_else(|| {
        TkError::Config("tasker is not configured: call tasker_config() first".into())
    })
}

/// The entry of a run: the current one when `run_id` is `None`, else attached on first use.
fn entry(run_id: Option<&str>) -> TkResult<Rc<RunEntry>> {
    match run_id {
        None => ST.with(|s| s.borrow().context.clone()).ok_or_else(|| {
            TkError::not_found(
                "active run",
                "none in this R session: call task_start() or tasker_context(run_id), or pass run_id",
            )
        }),
        Some(id) => {
            if let Some(e) = ST.with(|s| s.borrow().runs.get(id).cloned()) {
                return Ok(e);
            }
            let t = tracker()?;
            let handle = t.attach_run(id)?;
            let current = t.run(id)?.current_subtask.and_then(|n| u32::try_from(n).ok());
            Ok(insert_entry(id, handle, current))
        }
    }
}

/// Lets go of a finished run's handle (the current run keeps its own). The core visits
/// every live handle of the process on each flush and transition, so handles kept for
/// every run a long session ever started would make each call slower than the last.
/// A later call about the run attaches it again.
fn forget_run(run_id: &str) {
    ST.with(|s| s.borrow_mut().runs.remove(run_id));
}

fn insert_entry(id: &str, handle: RunHandle, current: Option<u32>) -> Rc<RunEntry> {
    let e = Rc::new(RunEntry {
        handle,
        current: Cell::new(current),
        last_note: Cell::new(None),
    });
    ST.with(|s| s.borrow_mut().runs.insert(id.to_string(), Rc::clone(&e)));
    e
}

/// The subtask a progress call means: the given number, else the run's current one.
#[inline]
fn subtask_of(e: &RunEntry, number: Option<u32>) -> TkResult<u32> {
    if let Some(n) = number {
        return Ok(n);
    }
    if let Some(n) = e.current.get() {
        return Ok(n);
    }
    // Another process may have started it (a worker of a cluster): ask the database.
    let row = tracker()?.run(e.handle.run_id())?;
    match row.current_subtask.and_then(|n| u32::try_from(n).ok()) {
        Some(n) => {
            e.current.set(Some(n));
            Ok(n)
        }
        None => Err(TkError::not_found(
            "current subtask",
            format!(
                "none for run {}: call subtask_start() first or pass subtask_number",
                e.handle.run_id()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------
// Reading R values (raw SEXP, so the hot path and extendr functions share it).

#[allow(improper_ctypes, reason = "SEXP is an opaque pointer owned by R")]
extern "C" {
    fn Rf_translateCharUTF8(x: SEXP) -> *const c_char;
    fn Rf_ScalarLogical(x: i32) -> SEXP;
}

fn bad(what: &str, value: &str, reason: &str) -> TkError {
    TkError::invalid(what, value, reason)
}

/// A single string, `None` for NULL or NA. Always converted to UTF-8.
fn sx_str(what: &str, x: SEXP) -> TkResult<Option<String>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe {
        match ffi::TYPEOF(x) {
            SEXPTYPE::NILSXP => Ok(None),
            SEXPTYPE::STRSXP => {
                if ffi::Rf_xlength(x) != 1 {
                    return Err(bad(
                        what,
                        &format!("of length {}", ffi::Rf_xlength(x)),
                        "must be a single string",
                    ));
                }
                let c = ffi::STRING_ELT(x, 0);
                if c == ffi::R_NaString {
                    return Ok(None);
                }
                let p = Rf_translateCharUTF8(c);
                Ok(Some(CStr::from_ptr(p).to_string_lossy().into_owned()))
            }
            _ => Err(bad(what, &describe_sexp(x), "must be a single string")),
        }
    }
}

/// Like `sx_str` without copying (run ids on the hot path): borrowed from R's string.
/// The result lives as long as `x` is protected, i.e. for the duration of the call.
fn sx_str_ref<'a>(what: &str, x: SEXP) -> TkResult<Option<std::borrow::Cow<'a, str>>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe {
        if ffi::TYPEOF(x) == SEXPTYPE::STRSXP && ffi::Rf_xlength(x) == 1 {
            let c = ffi::STRING_ELT(x, 0);
            if c == ffi::R_NaString {
                return Ok(None);
            }
            // Already UTF-8 or ASCII: R returns the string itself, nothing is allocated.
            let p = Rf_translateCharUTF8(c);
            return Ok(Some(CStr::from_ptr(p).to_string_lossy()));
        }
        sx_str(what, x).map(|o| o.map(std::borrow::Cow::Owned))
    }
}

fn describe_sexp(x: SEXP) -> String {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe {
        let n = ffi::Rf_xlength(x);
        let t = match ffi::TYPEOF(x) {
            SEXPTYPE::LGLSXP => "logical",
            SEXPTYPE::INTSXP => "integer",
            SEXPTYPE::REALSXP => "numeric",
            SEXPTYPE::STRSXP => "character",
            SEXPTYPE::VECSXP => "list",
            SEXPTYPE::NILSXP => "NULL",
            _ => "object",
        };
        if n == 1 {
            match ffi::TYPEOF(x) {
                SEXPTYPE::REALSXP => return format!("{}", *ffi::REAL(x)),
                SEXPTYPE::INTSXP if *ffi::INTEGER(x) != ffi::R_NaInt => {
                    return format!("{}", *ffi::INTEGER(x))
                }
                SEXPTYPE::LGLSXP => {
                    let v = *ffi::LOGICAL(x);
                    return if v == ffi::R_NaInt {
                        "NA".into()
                    } else if v != 0 {
                        "TRUE".into()
                    } else {
                        "FALSE".into()
                    };
                }
                SEXPTYPE::STRSXP => {
                    let c = ffi::STRING_ELT(x, 0);
                    if c != ffi::R_NaString {
                        let s = CStr::from_ptr(Rf_translateCharUTF8(c)).to_string_lossy();
                        return format!("{s:?}");
                    }
                    return "NA".into();
                }
                _ => {}
            }
        }
        format!("a {t} vector of length {n}")
    }
}

/// A single number, `None` for NULL. NA and NaN are refused.
#[inline]
fn sx_num(what: &str, x: SEXP) -> TkResult<Option<f64>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe {
        let v = match ffi::TYPEOF(x) {
            SEXPTYPE::NILSXP => return Ok(None),
            SEXPTYPE::REALSXP if ffi::Rf_xlength(x) == 1 => *ffi::REAL(x),
            SEXPTYPE::INTSXP if ffi::Rf_xlength(x) == 1 => {
                let i = *ffi::INTEGER(x);
                if i == ffi::R_NaInt {
                    f64::NAN
                } else {
                    f64::from(i)
                }
            }
            _ => return Err(bad(what, &describe_sexp(x), "must be a single number")),
        };
        if v.is_nan() {
            return Err(bad(what, "NA", "must be a number, not NA or NaN"));
        }
        Ok(Some(v))
    }
}

/// A whole count >= `min` (0 or 1).
#[inline]
fn sx_count(what: &str, x: SEXP, min: f64) -> TkResult<Option<u64>> {
    match sx_num(what, x)? {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= min && v.fract() == 0.0 && v <= 9.0e15 => {
            Ok(Some(v as u64))
        }
        Some(v) => Err(TkError::invalid(
            what,
            v,
            if min >= 1.0 {
                "must be a whole number of at least 1"
            } else {
                "must be a whole number, zero or more"
            },
        )),
    }
}

fn sx_number(what: &str, x: SEXP) -> TkResult<Option<u32>> {
    match sx_count(what, x, 1.0)? {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| TkError::invalid(what, v, "is too large")),
    }
}

fn sx_flag(what: &str, x: SEXP) -> TkResult<bool> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe {
        match ffi::TYPEOF(x) {
            SEXPTYPE::NILSXP => Ok(false),
            SEXPTYPE::LGLSXP if ffi::Rf_xlength(x) == 1 && *ffi::LOGICAL(x) != ffi::R_NaInt => {
                Ok(*ffi::LOGICAL(x) != 0)
            }
            _ => Err(bad(what, &describe_sexp(x), "must be TRUE or FALSE")),
        }
    }
}

fn r_str(what: &str, x: &Robj) -> TkResult<Option<String>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    sx_str(what, unsafe { x.get() })
}
fn r_num(what: &str, x: &Robj) -> TkResult<Option<f64>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    sx_num(what, unsafe { x.get() })
}
fn r_count(what: &str, x: &Robj) -> TkResult<Option<u64>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    sx_count(what, unsafe { x.get() }, 0.0)
}
fn r_number(what: &str, x: &Robj) -> TkResult<Option<u32>> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    sx_number(what, unsafe { x.get() })
}
fn r_int(what: &str, x: &Robj) -> TkResult<Option<i64>> {
    match r_num(what, x)? {
        None => Ok(None),
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9.0e15 => Ok(Some(v as i64)),
        Some(v) => Err(TkError::invalid(what, v, "must be a whole number")),
    }
}
fn r_flag(what: &str, x: &Robj) -> TkResult<bool> {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    sx_flag(what, unsafe { x.get() })
}
fn r_status(what: &str, x: &Robj) -> TkResult<Option<Status>> {
    r_str(what, x)?.map(|s| s.parse::<Status>()).transpose()
}

// ---------------------------------------------------------------------------------
// Results.

fn kind_name(e: &TkError) -> &'static str {
    e.kind().as_str()
}

fn err_robj(e: &TkError) -> Robj {
    let mut r = Robj::from(vec![kind_name(e).to_string(), e.to_string()]);
    let _ = r.set_class(["tasker_native_error"]);
    r
}

pub(crate) fn out<T: Into<Robj>>(r: TkResult<T>) -> Robj {
    match r {
        Ok(v) => v.into(),
        Err(e) => err_robj(&e),
    }
}

/// Same for the raw routines.
unsafe fn err_sexp(e: &TkError) -> SEXP {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    unsafe { err_sexp_inner(e) }
}

unsafe fn err_sexp_inner(e: &TkError) -> SEXP {
    // SAFETY: plain R API calls on the R thread; both vectors are protected while used.
    unsafe {
        let v = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, 2));
        for (i, s) in [kind_name(e).to_string(), e.to_string()].iter().enumerate() {
            let c = ffi::Rf_mkCharLenCE(
                s.as_ptr() as *const c_char,
                s.len() as i32,
                ffi::cetype_t::CE_UTF8,
            );
            ffi::SET_STRING_ELT(v, i as isize, c);
        }
        let cls = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, 1));
        let name = "tasker_native_error";
        ffi::SET_STRING_ELT(
            cls,
            0,
            ffi::Rf_mkCharLenCE(
                name.as_ptr() as *const c_char,
                name.len() as i32,
                ffi::cetype_t::CE_UTF8,
            ),
        );
        ffi::Rf_setAttrib(v, ffi::Rf_install(c"class".as_ptr()), cls);
        ffi::Rf_unprotect(2);
        v
    }
}

fn secs(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<f64> {
    t.map(|t| t.timestamp_micros() as f64 / 1e6)
}
fn int(v: Option<i64>) -> Option<i32> {
    v.and_then(|v| i32::try_from(v).ok())
}

/// Columns of a data frame, finished in R (`.tk_df`).
pub(crate) struct Cols {
    names: Vec<&'static str>,
    values: Vec<Robj>,
}

impl Cols {
    pub(crate) fn new() -> Cols {
        Cols {
            names: Vec::new(),
            values: Vec::new(),
        }
    }
    pub(crate) fn add(&mut self, name: &'static str, v: Robj) {
        self.names.push(name);
        self.values.push(v);
    }
    pub(crate) fn s<'a, I: Iterator<Item = Option<&'a str>>>(&mut self, name: &'static str, it: I) {
        self.add(
            name,
            Robj::from(
                it.map(|s| s.map(str::to_string))
                    .collect::<Vec<Option<String>>>(),
            ),
        );
    }
    pub(crate) fn d<I: Iterator<Item = Option<f64>>>(&mut self, name: &'static str, it: I) {
        self.add(name, Robj::from(it.collect::<Vec<Option<f64>>>()));
    }
    pub(crate) fn i<I: Iterator<Item = Option<i64>>>(&mut self, name: &'static str, it: I) {
        self.add(name, Robj::from(it.map(int).collect::<Vec<Option<i32>>>()));
    }
    pub(crate) fn b<I: Iterator<Item = bool>>(&mut self, name: &'static str, it: I) {
        self.add(
            name,
            Robj::from(it.map(Some).collect::<Vec<Option<bool>>>()),
        );
    }
    /// Optional logicals (`NA` for unknown).
    pub(crate) fn l<I: Iterator<Item = Option<bool>>>(&mut self, name: &'static str, it: I) {
        self.add(name, Robj::from(it.collect::<Vec<Option<bool>>>()));
    }
    pub(crate) fn done(self) -> Robj {
        List::from_names_and_values(self.names, self.values)
            .map(Robj::from)
            .unwrap_or_else(|e| err_robj(&TkError::Config(e.to_string())))
    }
}

fn run_cols(rows: &[RunRow]) -> Robj {
    let mut c = Cols::new();
    c.s("run_id", rows.iter().map(|r| r.run_id.as_deref()));
    c.s(
        "stage_name",
        rows.iter().map(|r| Some(r.stage_name.as_str())),
    );
    c.i("stage_order", rows.iter().map(|r| r.stage_order));
    c.s("task_name", rows.iter().map(|r| Some(r.task_name.as_str())));
    c.s("task_type", rows.iter().map(|r| r.task_type.as_deref()));
    c.i("task_order", rows.iter().map(|r| r.task_order));
    c.s("status", rows.iter().map(|r| Some(r.status.as_str())));
    c.b("lost", rows.iter().map(|r| r.lost));
    c.s("hostname", rows.iter().map(|r| r.hostname.as_deref()));
    c.i("process_id", rows.iter().map(|r| r.process_id));
    c.i("parent_pid", rows.iter().map(|r| r.parent_pid));
    c.s("user_name", rows.iter().map(|r| r.user_name.as_deref()));
    c.d("start_time", rows.iter().map(|r| secs(r.start_time)));
    c.d("end_time", rows.iter().map(|r| secs(r.end_time)));
    c.d("last_update", rows.iter().map(|r| secs(r.last_update)));
    c.d(
        "heartbeat_time",
        rows.iter().map(|r| secs(r.heartbeat_time)),
    );
    c.d("duration_seconds", rows.iter().map(|r| r.duration_seconds));
    c.i("total_subtasks", rows.iter().map(|r| r.total_subtasks));
    c.i("current_subtask", rows.iter().map(|r| r.current_subtask));
    c.i(
        "subtasks_completed",
        rows.iter().map(|r| Some(r.subtasks_completed)),
    );
    c.d(
        "overall_percent_complete",
        rows.iter().map(|r| r.overall_percent_complete),
    );
    c.s(
        "overall_progress_message",
        rows.iter().map(|r| r.overall_progress_message.as_deref()),
    );
    c.s("version", rows.iter().map(|r| r.version.as_deref()));
    c.s("git_commit", rows.iter().map(|r| r.git_commit.as_deref()));
    c.s("script_path", rows.iter().map(|r| r.script_path.as_deref()));
    c.s(
        "script_filename",
        rows.iter().map(|r| r.script_filename.as_deref()),
    );
    c.s("log_path", rows.iter().map(|r| r.log_path.as_deref()));
    c.s(
        "log_filename",
        rows.iter().map(|r| r.log_filename.as_deref()),
    );
    c.s(
        "error_message",
        rows.iter().map(|r| r.error_message.as_deref()),
    );
    c.s(
        "error_detail",
        rows.iter().map(|r| r.error_detail.as_deref()),
    );
    let meta: Vec<Option<String>> = rows
        .iter()
        .map(|r| r.metadata.as_ref().map(|m| m.to_string()))
        .collect();
    c.s("metadata", meta.iter().map(|m| m.as_deref()));
    // Added with attempts, captured metadata and the core's ETA: after the columns
    // scripts already index by position.
    c.i("attempt", rows.iter().map(|r| r.attempt));
    c.s("retry_of", rows.iter().map(|r| r.retry_of.as_deref()));
    c.s(
        "command_line",
        rows.iter().map(|r| r.command_line.as_deref()),
    );
    c.l("git_dirty", rows.iter().map(|r| r.git_dirty));
    c.s("runtime", rows.iter().map(|r| r.runtime.as_deref()));
    c.s(
        "tasker_version",
        rows.iter().map(|r| r.tasker_version.as_deref()),
    );
    c.d("eta_seconds", rows.iter().map(|r| r.eta_seconds));
    c.d("eta_low", rows.iter().map(|r| r.eta_low));
    c.d("eta_high", rows.iter().map(|r| r.eta_high));
    c.s(
        "eta_basis",
        rows.iter().map(|r| r.eta_basis.map(basis_name)),
    );
    c.done()
}

fn basis_name(b: Basis) -> &'static str {
    match b {
        Basis::Rate => "rate",
        Basis::History => "history",
        Basis::Blend => "blend",
    }
}

fn subtask_cols(rows: &[SubtaskRow]) -> Robj {
    let mut c = Cols::new();
    c.s("run_id", rows.iter().map(|r| Some(r.run_id.as_str())));
    c.i(
        "subtask_number",
        rows.iter().map(|r| Some(r.subtask_number)),
    );
    c.s(
        "subtask_name",
        rows.iter().map(|r| Some(r.subtask_name.as_str())),
    );
    c.s("status", rows.iter().map(|r| Some(r.status.as_str())));
    c.d("start_time", rows.iter().map(|r| secs(r.start_time)));
    c.d("end_time", rows.iter().map(|r| secs(r.end_time)));
    c.d("last_update", rows.iter().map(|r| secs(r.last_update)));
    c.d("percent_complete", rows.iter().map(|r| r.percent_complete));
    c.s(
        "progress_message",
        rows.iter().map(|r| r.progress_message.as_deref()),
    );
    c.d(
        "items_total",
        rows.iter().map(|r| r.items_total.map(|v| v as f64)),
    );
    c.d(
        "items_complete",
        rows.iter().map(|r| Some(r.items_complete as f64)),
    );
    c.s(
        "error_message",
        rows.iter().map(|r| r.error_message.as_deref()),
    );
    c.s(
        "error_detail",
        rows.iter().map(|r| r.error_detail.as_deref()),
    );
    c.d("rate_per_second", rows.iter().map(|r| r.rate_per_second));
    c.d("eta_seconds", rows.iter().map(|r| r.eta_seconds));
    c.d("eta_low", rows.iter().map(|r| r.eta_low));
    c.d("eta_high", rows.iter().map(|r| r.eta_high));
    c.done()
}

fn stats_cols(rows: &[TaskStats]) -> Robj {
    let mut c = Cols::new();
    c.s(
        "stage_name",
        rows.iter().map(|r| Some(r.stage_name.as_str())),
    );
    c.s("task_name", rows.iter().map(|r| Some(r.task_name.as_str())));
    c.i("runs", rows.iter().map(|r| Some(r.runs)));
    c.i("logical_runs", rows.iter().map(|r| Some(r.logical_runs)));
    c.i("completed", rows.iter().map(|r| Some(r.completed)));
    c.i("failed", rows.iter().map(|r| Some(r.failed)));
    c.i("lost", rows.iter().map(|r| Some(r.lost)));
    c.i("cancelled", rows.iter().map(|r| Some(r.cancelled)));
    c.i("skipped", rows.iter().map(|r| Some(r.skipped)));
    c.i("active", rows.iter().map(|r| Some(r.active)));
    c.d("success_rate", rows.iter().map(|r| r.success_rate));
    c.i("retried", rows.iter().map(|r| Some(r.retried)));
    c.d("mean_attempts", rows.iter().map(|r| r.mean_attempts));
    c.d("duration_p50", rows.iter().map(|r| r.duration_p50));
    c.d("duration_p90", rows.iter().map(|r| r.duration_p90));
    c.d("duration_p95", rows.iter().map(|r| r.duration_p95));
    c.d("duration_mean", rows.iter().map(|r| r.duration_mean));
    c.d("duration_max", rows.iter().map(|r| r.duration_max));
    c.d("items_per_second", rows.iter().map(|r| r.items_per_second));
    c.d("last_start", rows.iter().map(|r| secs(r.last_start)));
    c.d("last_success", rows.iter().map(|r| secs(r.last_success)));
    c.d("last_failure", rows.iter().map(|r| secs(r.last_failure)));
    c.done()
}

/// Byte counts as doubles: R's integers stop at 2 GiB.
fn bytes(v: Option<u64>) -> Option<f64> {
    v.map(|b| b as f64)
}

fn sample_cols(rows: &[Sample]) -> Robj {
    let mut c = Cols::new();
    c.d("time", rows.iter().map(|r| secs(Some(r.time))));
    c.i("pid", rows.iter().map(|r| Some(i64::from(r.pid))));
    c.d("cpu_seconds", rows.iter().map(|r| Some(r.cpu_seconds)));
    c.d("cpu_percent", rows.iter().map(|r| r.cpu_percent));
    c.d("rss_bytes", rows.iter().map(|r| bytes(Some(r.rss_bytes))));
    c.d(
        "peak_rss_bytes",
        rows.iter().map(|r| bytes(r.peak_rss_bytes)),
    );
    c.d("read_bytes", rows.iter().map(|r| bytes(r.read_bytes)));
    c.d("write_bytes", rows.iter().map(|r| bytes(r.write_bytes)));
    c.i("threads", rows.iter().map(|r| r.threads.map(i64::from)));
    c.i("open_fds", rows.iter().map(|r| r.open_fds.map(i64::from)));
    c.i("children", rows.iter().map(|r| Some(i64::from(r.children))));
    c.d(
        "children_cpu_seconds",
        rows.iter().map(|r| Some(r.children_cpu_seconds)),
    );
    c.d(
        "children_rss_bytes",
        rows.iter().map(|r| bytes(Some(r.children_rss_bytes))),
    );
    c.done()
}

fn io_cols(rows: &[IoRow]) -> Robj {
    let mut c = Cols::new();
    c.s("run_id", rows.iter().map(|r| Some(r.run_id.as_str())));
    c.s(
        "direction",
        rows.iter().map(|r| Some(r.record.direction.as_str())),
    );
    c.s("name", rows.iter().map(|r| Some(r.record.name.as_str())));
    c.s("value", rows.iter().map(|r| r.record.value.as_deref()));
    c.s("path", rows.iter().map(|r| r.record.path.as_deref()));
    c.d(
        "size_bytes",
        rows.iter().map(|r| r.record.size_bytes.map(|b| b as f64)),
    );
    c.d("modified", rows.iter().map(|r| secs(r.record.modified)));
    c.s("sha256", rows.iter().map(|r| r.record.sha256.as_deref()));
    c.d(
        "recorded_at",
        rows.iter().map(|r| secs(Some(r.recorded_at))),
    );
    c.done()
}

fn task_cols(rows: &[TaskRow]) -> Robj {
    let mut c = Cols::new();
    c.i("stage_id", rows.iter().map(|r| Some(r.stage_id)));
    c.s(
        "stage_name",
        rows.iter().map(|r| Some(r.stage_name.as_str())),
    );
    c.i("stage_order", rows.iter().map(|r| r.stage_order));
    c.i("task_id", rows.iter().map(|r| Some(r.task_id)));
    c.s("task_name", rows.iter().map(|r| Some(r.task_name.as_str())));
    c.s("task_type", rows.iter().map(|r| r.task_type.as_deref()));
    c.i("task_order", rows.iter().map(|r| r.task_order));
    c.s("description", rows.iter().map(|r| r.description.as_deref()));
    c.s("script_path", rows.iter().map(|r| r.script_path.as_deref()));
    c.s(
        "script_filename",
        rows.iter().map(|r| r.script_filename.as_deref()),
    );
    c.s("log_path", rows.iter().map(|r| r.log_path.as_deref()));
    c.s(
        "log_filename",
        rows.iter().map(|r| r.log_filename.as_deref()),
    );
    c.d("created_at", rows.iter().map(|r| secs(Some(r.created_at))));
    c.d("updated_at", rows.iter().map(|r| secs(Some(r.updated_at))));
    c.done()
}

fn stage_cols(rows: &[StageRow]) -> Robj {
    let mut c = Cols::new();
    c.i("stage_id", rows.iter().map(|r| Some(r.stage_id)));
    c.s(
        "stage_name",
        rows.iter().map(|r| Some(r.stage_name.as_str())),
    );
    c.i("stage_order", rows.iter().map(|r| r.stage_order));
    c.s("description", rows.iter().map(|r| r.description.as_deref()));
    c.d("created_at", rows.iter().map(|r| secs(Some(r.created_at))));
    c.d("updated_at", rows.iter().map(|r| secs(Some(r.updated_at))));
    c.done()
}

fn event_cols(rows: &[EventRow]) -> Robj {
    let mut c = Cols::new();
    c.d("event_id", rows.iter().map(|r| Some(r.event_id as f64)));
    c.d("time", rows.iter().map(|r| secs(Some(r.time))));
    c.s("run_id", rows.iter().map(|r| Some(r.run_id.as_str())));
    c.s(
        "stage_name",
        rows.iter().map(|r| Some(r.stage_name.as_str())),
    );
    c.s("task_name", rows.iter().map(|r| Some(r.task_name.as_str())));
    c.i("subtask_number", rows.iter().map(|r| r.subtask_number));
    c.s("kind", rows.iter().map(|r| Some(r.kind.as_str())));
    c.s(
        "old_status",
        rows.iter().map(|r| r.old_status.map(Status::as_str)),
    );
    c.s(
        "new_status",
        rows.iter().map(|r| Some(r.new_status.as_str())),
    );
    c.s("message", rows.iter().map(|r| r.message.as_deref()));
    c.done()
}

// ---------------------------------------------------------------------------------
// Configuration.

fn describe(t: &Tracker) -> Robj {
    let cfg = t.config();
    let (path, schema): (Option<String>, Option<String>) = match &cfg.location {
        Location::Sqlite { path } => (Some(path.display().to_string()), None),
        Location::Postgres { schema, .. } => (None, Some(schema.clone())),
    };
    list!(
        driver = t.backend_name(),
        location = cfg.location.describe(),
        path = path,
        schema = schema,
        source = cfg.source.clone(),
        hostname = t.hostname().to_string(),
        flush_interval_ms = cfg.flush_interval.as_millis() as f64,
        lost_after_s = cfg.lost_after.as_secs_f64(),
        sample_interval_s = t.sample_interval().map_or(0.0, |d| d.as_secs_f64())
    )
    .into()
}

fn open(cfg: Config) -> TkResult<Robj> {
    let t = Tracker::open(cfg)?;
    let d = describe(&t);
    ST.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(old) = s.tracker.take() {
            let _ = old.flush();
            if let Some(id) = s.listener.take() {
                old.remove_listener(id);
            }
        }
        s.runs.clear();
        s.context = None;
        if s.listening {
            s.listener = Some(events::listen(&t));
        }
        s.tracker = Some(t);
    });
    Ok(d)
}

/// Opens the database the arguments (a named list) and the usual sources name.
/// @keywords internal
#[extendr]
fn tk_open(args: List) -> Robj {
    out((|| {
        let mut a = ConfigArgs::default();
        for (name, v) in args.iter() {
            match name {
                "url" => a.db.url = r_str(name, &v)?.map(Secret::new),
                "driver" => a.db.driver = r_str(name, &v)?,
                "path" => a.db.path = r_str(name, &v)?,
                "host" => a.db.host = r_str(name, &v)?,
                "port" => {
                    a.db.port = match r_int(name, &v)? {
                        None => None,
                        Some(p) => {
                            Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                                TkError::invalid("port", p, "must be between 1 and 65535")
                            })?)
                        }
                    }
                }
                "dbname" => a.db.dbname = r_str(name, &v)?,
                "user" => a.db.user = r_str(name, &v)?,
                "password" => a.db.password = r_str(name, &v)?.map(Secret::new),
                "schema" => a.db.schema = r_str(name, &v)?,
                "sslmode" => a.db.sslmode = r_str(name, &v)?,
                "config_file" => a.config_file = r_str(name, &v)?.map(PathBuf::from),
                "start_dir" => a.start_dir = r_str(name, &v)?.map(PathBuf::from),
                "flush_interval_ms" => a.tracking.flush_interval_ms = r_count(name, &v)?,
                "heartbeat_interval_s" => a.tracking.heartbeat_interval_s = r_count(name, &v)?,
                "lost_after_s" => a.tracking.lost_after_s = r_count(name, &v)?,
                "busy_timeout_ms" => a.tracking.busy_timeout_ms = r_count(name, &v)?,
                "sample_interval_s" => a.tracking.sample_interval_s = r_count(name, &v)?,
                "hostname" => a.tracking.hostname = r_str(name, &v)?,
                other => {
                    return Err(TkError::invalid(
                        "argument",
                        other,
                        "is not a tasker_config() setting",
                    ))
                }
            }
        }
        open(Config::resolve(&a)?)
    })())
}

/// The open configuration, for workers (holds the password: never print it).
/// @keywords internal
#[extendr]
fn tk_export_config() -> Robj {
    out((|| {
        let t = tracker()?;
        let c = t.config();
        let (kind, target, schema) = match &c.location {
            Location::Sqlite { path } => ("sqlite", path.display().to_string(), String::new()),
            Location::Postgres { conninfo, schema } => {
                ("postgresql", conninfo.expose().to_string(), schema.clone())
            }
        };
        Ok(Robj::from(list!(
            kind = kind,
            target = target,
            schema = schema,
            flush_interval_ms = c.flush_interval.as_millis() as f64,
            heartbeat_interval_ms = c.heartbeat_interval.as_millis() as f64,
            lost_after_ms = c.lost_after.as_millis() as f64,
            busy_timeout_ms = c.busy_timeout.as_millis() as f64,
            // As it is now (start_reporter() may have changed it), not as configured.
            sample_interval_ms = t.sample_interval().map_or(0.0, |d| d.as_millis() as f64),
            hostname = c.hostname.clone(),
            source = c.source.clone()
        )))
    })())
}

/// Opens what `tk_export_config` described (in a worker).
/// @keywords internal
#[extendr]
fn tk_import_config(cfg: List) -> Robj {
    out((|| {
        let get = |k: &str| {
            cfg.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v)
                .unwrap_or(Robj::from(()))
        };
        let ms = |k: &str| -> TkResult<Duration> {
            Ok(Duration::from_millis(r_count(k, &get(k))?.unwrap_or(0)))
        };
        let target = r_str("target", &get("target"))?.unwrap_or_default();
        let mut c = Config::sqlite(PathBuf::new());
        c.location = match r_str("kind", &get("kind"))?.as_deref() {
            Some("sqlite") => Location::Sqlite {
                path: PathBuf::from(target),
            },
            Some("postgresql") => Location::Postgres {
                conninfo: Secret::new(target),
                schema: r_str("schema", &get("schema"))?.unwrap_or_else(|| "tasker".into()),
            },
            other => {
                return Err(TkError::Config(format!(
                    "unknown exported configuration {other:?}"
                )))
            }
        };
        c.flush_interval = ms("flush_interval_ms")?.max(Duration::from_millis(1));
        c.heartbeat_interval = ms("heartbeat_interval_ms")?.max(Duration::from_secs(1));
        c.lost_after = ms("lost_after_ms")?.max(Duration::from_secs(1));
        c.busy_timeout = ms("busy_timeout_ms")?;
        // Absent (a parent with an older tasker) keeps the default; 0 is off.
        if !get("sample_interval_ms").is_null() {
            let every = ms("sample_interval_ms")?;
            c.sample_interval = (!every.is_zero()).then_some(every);
        }
        c.hostname = r_str("hostname", &get("hostname"))?;
        c.source = r_str("source", &get("source"))?.unwrap_or_else(|| "parent process".into());
        open(c)
    })())
}

/// Whether tracking reaches its database and what waits to be written (opens the
/// configured database first if needed, like any other call).
/// @keywords internal
#[extendr]
fn tk_health() -> Robj {
    out(tracker().map(|t| {
        let h = t.health();
        Robj::from(list!(
            backend = h.backend,
            location = h.location,
            reachable = h.reachable,
            last_error = h.last_error,
            pending_writes = h.pending_writes as f64,
            spooled_writes = h.spooled_writes as f64
        ))
    }))
}

/// A description of the open database, or NULL.
/// @keywords internal
#[extendr]
fn tk_info() -> Robj {
    match ST.with(|s| s.borrow().tracker.clone()) {
        Some(t) => describe(&t),
        None => Robj::from(()),
    }
}

// ---------------------------------------------------------------------------------
// Registration and queries.

/// Registers tasks given as a list of equally long columns; returns their ids.
/// @keywords internal
#[extendr]
fn tk_register(cols: List, n: i32) -> Robj {
    out((|| {
        let n = n.max(0) as usize;
        let col = |k: &str| cols.iter().find(|(name, _)| *name == k).map(|(_, v)| v);
        // Columns come from R already as character / double vectors of length n.
        let str_at = |k: &'static str, i: usize| -> TkResult<Option<String>> {
            match col(k) {
                None => Ok(None),
                // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
                Some(v) => unsafe {
                    let x = v.get();
                    if ffi::TYPEOF(x) != SEXPTYPE::STRSXP || ffi::Rf_xlength(x) as usize != n {
                        return Err(TkError::invalid(k, "column", "must be character"));
                    }
                    let c = ffi::STRING_ELT(x, i as isize);
                    if c == ffi::R_NaString {
                        return Ok(None);
                    }
                    Ok(Some(
                        CStr::from_ptr(Rf_translateCharUTF8(c))
                            .to_string_lossy()
                            .into_owned(),
                    ))
                },
            }
        };
        let int_at = |k: &'static str, i: usize| -> TkResult<Option<i64>> {
            match col(k) {
                None => Ok(None),
                // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
                Some(v) => unsafe {
                    let x = v.get();
                    if ffi::TYPEOF(x) != SEXPTYPE::REALSXP || ffi::Rf_xlength(x) as usize != n {
                        return Err(TkError::invalid(k, "column", "must be numeric"));
                    }
                    let d = *ffi::REAL(x).add(i);
                    if d.is_nan() {
                        return Ok(None);
                    }
                    if !d.is_finite() || d.fract() != 0.0 {
                        return Err(TkError::invalid(k, d, "must be a whole number"));
                    }
                    Ok(Some(d as i64))
                },
            }
        };
        let mut specs = Vec::with_capacity(n);
        for i in 0..n {
            specs.push(TaskSpec {
                stage: str_at("stage", i)?.unwrap_or_default(),
                name: str_at("name", i)?.unwrap_or_default(),
                task_type: str_at("type", i)?,
                description: str_at("description", i)?,
                stage_order: int_at("stage_order", i)?,
                task_order: int_at("task_order", i)?,
                script_path: str_at("script_path", i)?,
                script_filename: str_at("script_filename", i)?,
                log_path: str_at("log_path", i)?,
                log_filename: str_at("log_filename", i)?,
            });
        }
        let ids = tracker()?.register_tasks(&specs)?;
        Ok(Robj::from(
            ids.into_iter().map(|i| i as f64).collect::<Vec<f64>>(),
        ))
    })())
}

/// @keywords internal
#[extendr]
fn tk_tasks(stage: Robj, name: Robj) -> Robj {
    out((|| {
        let rows = tracker()?.registered_tasks(
            r_str("stage", &stage)?.as_deref(),
            r_str("name", &name)?.as_deref(),
        )?;
        Ok(task_cols(&rows))
    })())
}

/// @keywords internal
#[extendr]
fn tk_stages() -> Robj {
    out(tracker().and_then(|t| t.stages()).map(|r| stage_cols(&r)))
}

fn limit(x: &Robj) -> TkResult<Option<usize>> {
    Ok(r_count("limit", x)?.map(|v| v as usize))
}

/// @keywords internal
#[extendr]
fn tk_task_status(stage: Robj, task: Robj, status: Robj, limit_: Robj) -> Robj {
    out((|| {
        let f = StatusFilter {
            stage: r_str("stage", &stage)?,
            task: r_str("task", &task)?,
            status: r_status("status", &status)?,
            limit: limit(&limit_)?,
        };
        Ok(run_cols(&tracker()?.task_status(&f)?))
    })())
}

/// @keywords internal
#[extendr]
fn tk_active() -> Robj {
    out(tracker()
        .and_then(|t| t.active_runs())
        .map(|r| run_cols(&r)))
}

/// @keywords internal
#[extendr]
fn tk_history(stage: Robj, task: Robj, status: Robj, since: Robj, limit_: Robj) -> Robj {
    out((|| {
        let since = r_time("since", &since)?;
        let f = HistoryFilter {
            stage: r_str("stage", &stage)?,
            task: r_str("task", &task)?,
            status: r_status("status", &status)?,
            since,
            limit: limit(&limit_)?,
        };
        Ok(run_cols(&tracker()?.history(&f)?))
    })())
}

/// @keywords internal
#[extendr]
fn tk_run(run_id: Robj) -> Robj {
    out((|| {
        let id = match r_str("run_id", &run_id)? {
            Some(id) => id,
            None => entry(None)?.handle.run_id().to_string(),
        };
        Ok(run_cols(&[tracker()?.run(&id)?]))
    })())
}

/// Statistics per task from stored history (see `TaskStats`).
/// @keywords internal
#[extendr]
fn tk_task_stats(stage: Robj, task: Robj, since: Robj, limit_: Robj) -> Robj {
    out((|| {
        let f = StatsFilter {
            stage: r_str("stage", &stage)?,
            task: r_str("task", &task)?,
            since: r_time("since", &since)?,
            limit: limit(&limit_)?,
        };
        if f.limit == Some(0) {
            return Err(TkError::invalid("limit", 0, "must be at least 1"));
        }
        Ok(stats_cols(&tracker()?.task_stats(&f)?))
    })())
}

/// The run a query means: `run_id`, else the current run.
fn run_id_or_current(run_id: &Robj) -> TkResult<String> {
    match r_str("run_id", run_id)? {
        Some(id) => Ok(id),
        None => Ok(entry(None)?.handle.run_id().to_string()),
    }
}

/// A run's resource samples, oldest first. An unknown run is an error.
/// @keywords internal
#[extendr]
fn tk_samples(run_id: Robj) -> Robj {
    out((|| {
        let id = run_id_or_current(&run_id)?;
        let t = tracker()?;
        t.run(&id)?;
        Ok(sample_cols(&t.samples(&id)?))
    })())
}

/// This process's resource sampling (the earlier package's "reporter"): sets the
/// interval first when `every_s` is given (whole seconds, 0 for off); returns
/// list(interval_s, available, hostname, last = the newest sample's columns or NULL).
/// @keywords internal
#[extendr]
fn tk_sampling(every_s: Robj) -> Robj {
    out((|| {
        let t = tracker()?;
        if let Some(s) = r_count("collection_interval", &every_s)? {
            t.set_sample_interval((s > 0).then(|| Duration::from_secs(s)));
        }
        let last = match t.last_sample() {
            Some(s) => sample_cols(&[s]),
            None => Robj::from(()),
        };
        Ok(Robj::from(list!(
            interval_s = t.sample_interval().map_or(0.0, |d| d.as_secs_f64()),
            available = tasker::sampler::available(),
            hostname = t.hostname().to_string(),
            last = last
        )))
    })())
}

thread_local! {
    /// One sampler per process id sampled on request, so that a second sample of a
    /// process has its CPU percentage and a reused pid is noticed.
    static SAMPLERS: RefCell<HashMap<u32, Sampler>> = RefCell::new(HashMap::new());
}

/// Samples process `pid` (and its descendants) now, without the database: returns
/// list(sample = the columns of one sample or NULL, error, error_type, duration_ms).
/// @keywords internal
#[extendr]
fn tk_collect_sample(pid: Robj) -> Robj {
    out((|| {
        let pid = r_count("process_id", &pid)?
            .ok_or_else(|| TkError::invalid("process_id", "NULL", "is required"))?;
        let pid = u32::try_from(pid)
            .map_err(|_| TkError::invalid("process_id", pid, "is not a process id"))?;
        let started = std::time::Instant::now();
        let taken = SAMPLERS.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= 1024 && !m.contains_key(&pid) {
                m.clear(); // a bound for sessions that sample many short-lived processes
            }
            let r = m
                .entry(pid)
                .or_insert_with(|| Sampler::for_pid(pid))
                .sample();
            if r.is_err() {
                // Gone (or its pid reused): a later request starts over.
                m.remove(&pid);
            }
            r
        });
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Robj::from(match taken {
            Ok(sample) => list!(
                sample = sample_cols(&[sample]),
                error = (),
                error_type = (),
                duration_ms = ms
            ),
            Err(e) => list!(
                sample = (),
                error = e.to_string(),
                error_type = unavailable_kind(pid, &e),
                duration_ms = ms
            ),
        }))
    })())
}

/// The earlier package's `error_type` for a process that could not be sampled.
fn unavailable_kind(pid: u32, e: &Unavailable) -> &'static str {
    if !tasker::sampler::available() {
        "UNAVAILABLE"
    } else if e.0.contains("another process") {
        "PID_REUSED"
    } else if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // Still listed: a zombie (exited, not yet reaped) or unreadable.
        if e.0.contains("exited") {
            "ZOMBIE_PROCESS"
        } else {
            "PS_ERROR"
        }
    } else {
        "PROCESS_DIED"
    }
}

/// A run's inputs, then its outputs, by name. An unknown run is an error.
/// @keywords internal
#[extendr]
fn tk_run_io(run_id: Robj) -> Robj {
    out((|| {
        let id = run_id_or_current(&run_id)?;
        let t = tracker()?;
        t.run(&id)?;
        Ok(io_cols(&t.run_io(&id)?))
    })())
}

/// Records an input or output of a run: a file (`path`, read now: size, time and,
/// with `hash`, SHA-256) or a value. Returns the run id.
/// @keywords internal
#[extendr]
fn tk_record_io(
    run_id: Robj,
    direction: Robj,
    name: Robj,
    value: Robj,
    path: Robj,
    hash: Robj,
) -> Robj {
    out((|| {
        let direction: Direction = r_str("direction", &direction)?
            .ok_or_else(|| TkError::invalid("direction", "NULL", "is required"))?
            .parse()?;
        let name =
            r_str("name", &name)?.ok_or_else(|| TkError::invalid("name", "NA", "is required"))?;
        let hash = r_flag("hash", &hash)?;
        // The file is read before the run is looked up: a missing file is the
        // caller's error whatever the database says.
        let record = match r_str("path", &path)? {
            Some(p) => IoRecord::file(direction, &name, &p, hash)?,
            None => {
                let v = r_str("value", &value)?
                    .ok_or_else(|| TkError::invalid("value", "NA", "is required"))?;
                IoRecord::value(direction, &name, &v)?
            }
        };
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        e.handle.record_io(record)?;
        Ok(e.handle.run_id().to_string())
    })())
}

/// The core's estimate for `done` of `total` items in `elapsed` seconds (the live
/// rate alone): list(eta, low, high, basis), or NULL when there is nothing to go on.
/// @keywords internal
#[extendr]
fn tk_rate_eta(done: Robj, total: Robj, elapsed: Robj) -> Robj {
    out((|| {
        let done = r_count("done", &done)?.unwrap_or(0);
        let total = r_count("total", &total)?;
        let elapsed = r_num("elapsed", &elapsed)?.unwrap_or(0.0);
        if !elapsed.is_finite() || elapsed < 0.0 {
            return Err(TkError::invalid(
                "elapsed",
                elapsed,
                "must be zero or more seconds",
            ));
        }
        let now = chrono::Utc::now();
        let started = now - chrono::Duration::microseconds((elapsed * 1e6) as i64);
        let facts = SubtaskFacts {
            name: "",
            active: true,
            done: total.is_some_and(|t| done >= t),
            items_total: total.map(|t| t.min(i64::MAX as u64) as i64),
            items_complete: done.min(i64::MAX as u64) as i64,
            percent: None,
            started: Some(started),
            ended: None,
        };
        Ok(match tasker::estimate::subtask_eta(&facts, None, now) {
            None => Robj::from(()),
            Some(e) => Robj::from(list!(
                eta = e.seconds,
                low = e.low,
                high = e.high,
                basis = basis_name(e.basis)
            )),
        })
    })())
}

/// A time given from R as seconds since the epoch.
fn r_time(what: &str, x: &Robj) -> TkResult<Option<chrono::DateTime<chrono::Utc>>> {
    match r_num(what, x)? {
        None => Ok(None),
        Some(s) => chrono::DateTime::from_timestamp_micros((s * 1e6) as i64)
            .map(Some)
            .ok_or_else(|| TkError::invalid(what, s, "is not a time")),
    }
}

/// @keywords internal
#[extendr]
fn tk_subtasks(run_id: Robj) -> Robj {
    out((|| {
        let id = r_str("run_id", &run_id)?
            .ok_or_else(|| TkError::invalid("run_id", "NULL", "is required"))?;
        Ok(subtask_cols(&tracker()?.subtasks(&id)?))
    })())
}

/// @keywords internal
#[extendr]
fn tk_events(run_id: Robj, after: Robj, limit_: Robj) -> Robj {
    out((|| {
        let after = r_int("after", &after)?.unwrap_or(0);
        let lim = limit(&limit_)?.unwrap_or(10_000);
        let id = r_str("run_id", &run_id)?;
        Ok(event_cols(&tracker()?.events_after(
            after,
            id.as_deref(),
            lim,
        )?))
    })())
}

/// @keywords internal
#[extendr]
fn tk_delete_runs(stage: Robj, task: Robj, run_id: Robj) -> Robj {
    out((|| {
        let sel = RunSelector {
            stage: r_str("stage", &stage)?,
            task: r_str("task", &task)?,
            run_id: r_str("run_id", &run_id)?,
            ..RunSelector::default()
        };
        Ok(tracker()?.delete_runs(&sel)? as f64)
    })())
}

/// Deletes registered tasks (`runs`: "refuse", "keep" or "delete" what tasks
/// with runs do); returns list(tasks, stages, runs, kept).
/// @keywords internal
#[extendr]
fn tk_delete_tasks(stage: Robj, task: Robj, runs: Robj) -> Robj {
    out((|| {
        let runs = match r_str("runs", &runs)?.as_deref() {
            Some("refuse") | None => TasksWithRuns::Refuse,
            Some("keep") => TasksWithRuns::Keep,
            Some("delete") => TasksWithRuns::Delete,
            Some(other) => {
                return Err(TkError::invalid(
                    "runs",
                    other,
                    "must be refuse, keep or delete",
                ))
            }
        };
        let done = tracker()?.delete_tasks(&TaskSelector {
            stage: r_str("stage", &stage)?,
            task: r_str("task", &task)?,
            runs,
        })?;
        Ok(list!(
            tasks = done.tasks as f64,
            stages = done.stages as f64,
            runs = done.runs as f64,
            kept = done.kept
        ))
    })())
}

/// Makes this process's pending progress durable.
/// @keywords internal
#[extendr]
fn tk_flush() -> Robj {
    match ST.with(|s| s.borrow().tracker.clone()) {
        None => Robj::from(true),
        Some(t) => out(t.flush().map(|_| true)),
    }
}

/// At exit: writes what is pending, replaying writes queued during an outage for
/// up to 10 s (then a spool file keeps the rest for the next process).
/// @keywords internal
#[extendr]
fn tk_flush_at_exit() -> Robj {
    tasker::flush_all();
    Robj::from(true)
}

// ---------------------------------------------------------------------------------
// Runs and subtasks.

/// Sets (when `set`) and returns the current run of this R session.
/// @keywords internal
#[extendr]
fn tk_context(set: bool, run_id: Robj) -> Robj {
    out((|| {
        if set {
            match r_str("run_id", &run_id)? {
                None => ST.with(|s| s.borrow_mut().context = None),
                Some(id) => {
                    let e = entry(Some(&id))?;
                    ST.with(|s| s.borrow_mut().context = Some(e));
                }
            }
        }
        Ok(ST.with(|s| match s.borrow().context.as_ref() {
            Some(e) => Robj::from(e.handle.run_id()),
            None => Robj::from(()),
        }))
    })())
}

/// The run a call means (the current one for NULL), checked to exist.
/// @keywords internal
#[extendr]
fn tk_resolve(run_id: Robj) -> Robj {
    out((|| {
        let id = r_str("run_id", &run_id)?;
        let e = entry(id.as_deref())?;
        Ok(list!(
            run_id = e.handle.run_id(),
            stage = e.handle.stage(),
            task = e.handle.task(),
            current = e.current.get().map(|n| n as i32)
        ))
    })())
}

/// Sets the current subtask of a run (NULL clears it).
/// @keywords internal
#[extendr]
fn tk_set_current(run_id: Robj, number: Robj) -> Robj {
    out((|| {
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        e.current.set(r_number("subtask_number", &number)?);
        Ok(true)
    })())
}

/// The current subtask of a run (asking the database if this process started none).
/// @keywords internal
#[extendr]
fn tk_get_current(run_id: Robj) -> Robj {
    out((|| {
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        Ok(subtask_of(&e, None)? as i32)
    })())
}

/// Run-level progress (never changes the status).
/// @keywords internal
#[extendr]
fn tk_run_progress(
    run_id: Robj,
    current_subtask: Robj,
    overall_percent: Robj,
    message: Robj,
) -> Robj {
    out((|| {
        let p = RunProgress {
            current_subtask: r_number("current_subtask", &current_subtask)?,
            overall_percent: r_num("overall_percent", &overall_percent)?,
            message: r_str("message", &message)?,
        };
        let e = entry(r_str("run_id", &run_id)?.as_deref())?;
        e.handle.update(&p)?;
        Ok(e.handle.run_id().to_string())
    })())
}

/// @keywords internal
#[extendr]
fn tk_native_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

// ---------------------------------------------------------------------------------
// The hot path: plain .Call routines. Each returns NULL when done with nothing more to
// say, which is almost always; otherwise TRUE, and what is left for R (a progress note
// is due, or an error, or a `conn` argument to note) waits in `LEFT` for
// `tk_progress_left`. Returning the error itself would be simpler, but R would then
// have to keep the result in a variable on every call, which costs more than the
// native part of an increment.

/// What a progress call left for R.
enum Left {
    /// A progress note is due for this subtask.
    Note(u32),
    Error(TkError),
}

thread_local! {
    static LEFT: RefCell<Option<Left>> = const { RefCell::new(None) };
}

/// Whether an R value is NULL.
#[inline]
fn sx_is_null(x: SEXP) -> bool {
    // SAFETY: R API call on the R main thread, on an object R keeps alive during this call.
    unsafe { ffi::TYPEOF(x) == SEXPTYPE::NILSXP }
}

/// The result of a progress routine (see above); `conn_given`: whether the R argument
/// `conn` was not NULL.
#[inline]
unsafe fn progress_result(left: TkResult<Option<u32>>, conn_given: bool) -> SEXP {
    // SAFETY: R API calls on the R main thread.
    unsafe {
        let left = match left {
            Ok(None) if !conn_given => return ffi::R_NilValue,
            Ok(None) => None,
            Ok(Some(n)) => Some(Left::Note(n)),
            Err(e) => Some(Left::Error(e)),
        };
        LEFT.with(|l| *l.borrow_mut() = left);
        Rf_ScalarLogical(1)
    }
}

/// Runs a progress routine's work, also when it panics (then an internal error is left).
fn progress_guard(f: impl FnOnce() -> SEXP) -> SEXP {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(s) => s,
        // SAFETY: R API calls on the R main thread.
        Err(_) => unsafe {
            progress_result(
                Err(TkError::Config("internal error (panic) in tasker".into())),
                false,
            )
        },
    }
}

fn guard(f: impl FnOnce() -> SEXP) -> SEXP {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(s) => s,
        // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
        Err(_) => unsafe { err_sexp(&TkError::Config("internal error (panic) in tasker".into())) },
    }
}

/// `subtask_increment(n, run_id, subtask_number)`; NULLs mean the current ones.
#[no_mangle]
pub extern "C" fn tk_inc(run_id: SEXP, number: SEXP, n: SEXP, conn: SEXP) -> SEXP {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    progress_guard(|| unsafe {
        let left = (|| {
            let by = sx_count("increment", n, 1.0)?.unwrap_or(1);
            let id = sx_str_ref("run_id", run_id)?;
            let e = entry(id.as_deref())?;
            let number = subtask_of(&e, sx_number("subtask_number", number)?)?;
            e.handle.subtask_increment(number, by)?;
            Ok(e.note_due().then_some(number))
        })();
        progress_result(left, !sx_is_null(conn))
    })
}

/// Subtask progress without a status change: items, percent, message, total.
#[no_mangle]
pub extern "C" fn tk_prog(
    run_id: SEXP,
    number: SEXP,
    items_complete: SEXP,
    percent: SEXP,
    message: SEXP,
    items_total: SEXP,
) -> SEXP {
    // SAFETY: R API calls on the R main thread, on objects R keeps alive during this call.
    progress_guard(|| unsafe {
        let left = (|| {
            let p = SubtaskProgress {
                items_complete: sx_count("items_complete", items_complete, 0.0)?,
                items_total: sx_count("items_total", items_total, 0.0)?,
                percent: sx_num("percent", percent)?,
                message: sx_str("message", message)?,
            };
            let id = sx_str_ref("run_id", run_id)?;
            let e = entry(id.as_deref())?;
            let number = subtask_of(&e, sx_number("subtask_number", number)?)?;
            e.handle.subtask_update(number, &p)?;
            Ok(e.note_due().then_some(number))
        })();
        progress_result(left, false)
    })
}

/// What the last progress call left (and forgets it): NULL, the number of the subtask
/// whose progress note is due, or a `tasker_native_error`.
#[no_mangle]
pub extern "C" fn tk_progress_left() -> SEXP {
    guard(|| {
        let left = LEFT.with(|l| l.borrow_mut().take());
        // SAFETY: R API calls on the R main thread.
        unsafe {
            match left {
                None => ffi::R_NilValue,
                Some(Left::Note(n)) => ffi::Rf_ScalarInteger(n as i32),
                Some(Left::Error(e)) => err_sexp(&e),
            }
        }
    })
}

// ---------------------------------------------------------------------------------
// Transitions: plain .Call routines too. They were extendr functions, and extendr's
// bookkeeping (a global protection table touched for every argument and every element
// of the result) cost 5-15 us per transition, half of what R added to the core's own
// work. Arguments are read and results built with R's API directly; nothing here
// calls into R while a `RefCell` of the state is borrowed.

/// A value of a result list.
enum Field<'a> {
    Str(&'a str),
    Int(i32),
}

/// A CHARSXP holding `s` as UTF-8.
unsafe fn mk_char(s: &str) -> SEXP {
    // SAFETY: R API call on the R main thread; `s` is valid for its length.
    unsafe {
        ffi::Rf_mkCharLenCE(
            s.as_ptr() as *const c_char,
            s.len() as i32,
            ffi::cetype_t::CE_UTF8,
        )
    }
}

/// A character vector of length one.
unsafe fn mk_string(s: &str) -> SEXP {
    // SAFETY: R API calls on the R main thread; the vector is protected while its
    // element is allocated.
    unsafe {
        let v = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, 1));
        ffi::SET_STRING_ELT(v, 0, mk_char(s));
        ffi::Rf_unprotect(1);
        v
    }
}

/// A named list (what the R layer reads with `$`).
unsafe fn named_list(fields: &[(&str, Field<'_>)]) -> SEXP {
    // SAFETY: R API calls on the R main thread; the list and its names are protected
    // while elements are allocated, and each element is stored right after it is made.
    unsafe {
        let n = fields.len() as isize;
        let list = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::VECSXP, n));
        let names = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, n));
        for (i, (name, value)) in fields.iter().enumerate() {
            ffi::SET_STRING_ELT(names, i as isize, mk_char(name));
            let v = match value {
                Field::Str(s) => mk_string(s),
                Field::Int(k) => ffi::Rf_ScalarInteger(*k),
            };
            ffi::SET_VECTOR_ELT(list, i as isize, v);
        }
        ffi::Rf_setAttrib(list, ffi::R_NamesSymbol, names);
        ffi::Rf_unprotect(2);
        list
    }
}

/// A status given from R ("COMPLETED", ...); NULL is refused.
fn sx_status(x: SEXP) -> TkResult<Status> {
    sx_str("status", x)?
        .ok_or_else(|| TkError::invalid("status", "NULL", "is required"))?
        .parse::<Status>()
}

/// What a run or subtask transition carries, from its R arguments.
fn sx_transition_info(
    message: SEXP,
    error_message: SEXP,
    error_detail: SEXP,
    reset: SEXP,
) -> TkResult<TransitionInfo> {
    Ok(TransitionInfo {
        message: sx_str("message", message)?,
        error_message: sx_str("error_message", error_message)?,
        error_detail: sx_str("error_detail", error_detail)?,
        reset: sx_flag("reset", reset)?,
    })
}

/// A whole number (R's numeric or integer), `None` for NULL.
fn sx_int(what: &str, x: SEXP) -> TkResult<Option<i64>> {
    match sx_num(what, x)? {
        None => Ok(None),
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9.0e15 => Ok(Some(v as i64)),
        Some(v) => Err(TkError::invalid(what, v, "must be a whole number")),
    }
}

/// Runs `f` and turns its answer into the routine's result.
fn raw_call<T>(f: impl FnOnce() -> TkResult<T>, done: impl FnOnce(T) -> SEXP) -> SEXP {
    guard(|| match f() {
        Ok(v) => done(v),
        // SAFETY: R API calls on the R main thread.
        Err(e) => unsafe { err_sexp(&e) },
    })
}

/// Starts a run; returns its id. Checked in R first (names, counts); here the rest.
#[no_mangle]
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per R argument of task_start()"
)]
pub extern "C" fn tk_task_start(
    stage: SEXP,
    task: SEXP,
    total_subtasks: SEXP,
    message: SEXP,
    version: SEXP,
    git_commit: SEXP,
    metadata: SEXP,
    attempt: SEXP,
    retry: SEXP,
    script_path: SEXP,
    script_filename: SEXP,
    command_line: SEXP,
    active: SEXP,
) -> SEXP {
    raw_call(
        || {
            let stage = sx_str("stage", stage)?
                .ok_or_else(|| TkError::invalid("stage", "NULL", "is required"))?;
            let task = sx_str("task", task)?
                .ok_or_else(|| TkError::invalid("task", "NULL", "is required"))?;
            let mut o = RunOptions {
                total_subtasks: sx_int("total_subtasks", total_subtasks)?,
                message: sx_str("message", message)?,
                version: sx_str("version", version)?,
                git_commit: sx_str("git_commit", git_commit)?,
                script_path: sx_str("script_path", script_path)?,
                script_filename: sx_str("script_filename", script_filename)?,
                command_line: sx_str("command_line", command_line)?,
                retry: sx_flag("retry", retry)?,
                ..RunOptions::default()
            };
            o.attempt = sx_int("attempt", attempt)?
                .map(|a| {
                    u32::try_from(a)
                        .map_err(|_| TkError::invalid("attempt", a, "attempts are counted from 1"))
                })
                .transpose()?;
            if let Some(js) = sx_str("metadata", metadata)? {
                o.metadata = Some(serde_json::from_str(&js).map_err(|e| {
                    TkError::invalid("metadata", js.as_str(), &format!("is not JSON: {e}"))
                })?);
            }
            let active = sx_flag(".active", active)?;
            o.runtime = r_runtime();
            let h = tracker()?.task_start(&stage, &task, o)?;
            let id = h.run_id().to_string();
            let e = insert_entry(&id, h, None);
            if active {
                ST.with(|s| s.borrow_mut().context = Some(e));
            }
            Ok(id)
        },
        // SAFETY: R API call on the R main thread.
        |id| unsafe { mk_string(&id) },
    )
}

/// Moves a run to `status`; returns list(run_id, old, new, stage, task).
#[no_mangle]
pub extern "C" fn tk_run_status(
    run_id: SEXP,
    status: SEXP,
    message: SEXP,
    error_message: SEXP,
    error_detail: SEXP,
    reset: SEXP,
) -> SEXP {
    raw_call(
        || {
            let to = sx_status(status)?;
            let info = sx_transition_info(message, error_message, error_detail, reset)?;
            let id = sx_str_ref("run_id", run_id)?;
            let e = entry(id.as_deref())?;
            let old = e.handle.set_status(to, info)?;
            if to.is_terminal() {
                forget_run(e.handle.run_id());
            }
            Ok((e, old, to))
        },
        |(e, old, to)| {
            let h = &e.handle;
            // SAFETY: R API calls on the R main thread.
            unsafe {
                named_list(&[
                    ("run_id", Field::Str(h.run_id())),
                    ("old", Field::Str(old.as_str())),
                    ("new", Field::Str(to.as_str())),
                    ("stage", Field::Str(h.stage())),
                    ("task", Field::Str(h.task())),
                ])
            }
        },
    )
}

/// Starts a subtask and makes it the run's current one; returns list(run_id, number, ...).
#[no_mangle]
pub extern "C" fn tk_subtask_start(
    run_id: SEXP,
    name: SEXP,
    items_total: SEXP,
    message: SEXP,
    number: SEXP,
    restart: SEXP,
) -> SEXP {
    raw_call(
        || {
            let name = sx_str("subtask_name", name)?
                .ok_or_else(|| TkError::invalid("subtask_name", "NULL", "is required"))?;
            let opts = SubtaskOptions {
                number: sx_number("subtask_number", number)?,
                items_total: sx_count("items_total", items_total, 0.0)?,
                message: sx_str("message", message)?,
                restart: sx_flag("restart", restart)?,
            };
            let id = sx_str_ref("run_id", run_id)?;
            let e = entry(id.as_deref())?;
            let n = e.handle.subtask_start(&name, opts)?;
            e.current.set(Some(n));
            Ok((e, n))
        },
        |(e, n)| {
            let h = &e.handle;
            // SAFETY: R API calls on the R main thread.
            unsafe {
                named_list(&[
                    ("run_id", Field::Str(h.run_id())),
                    ("number", Field::Int(n as i32)),
                    ("stage", Field::Str(h.stage())),
                    ("task", Field::Str(h.task())),
                ])
            }
        },
    )
}

/// Moves a subtask to `status`; returns list(run_id, number, old, new, stage, task).
#[no_mangle]
pub extern "C" fn tk_subtask_status(
    run_id: SEXP,
    number: SEXP,
    status: SEXP,
    message: SEXP,
    error_message: SEXP,
    error_detail: SEXP,
    reset: SEXP,
) -> SEXP {
    raw_call(
        || {
            let to = sx_status(status)?;
            let info = sx_transition_info(message, error_message, error_detail, reset)?;
            let id = sx_str_ref("run_id", run_id)?;
            let e = entry(id.as_deref())?;
            let n = subtask_of(&e, sx_number("subtask_number", number)?)?;
            let old = e.handle.subtask_set_status(n, to, info)?;
            Ok((e, n, old, to))
        },
        |(e, n, old, to)| {
            let h = &e.handle;
            // SAFETY: R API calls on the R main thread.
            unsafe {
                named_list(&[
                    ("run_id", Field::Str(h.run_id())),
                    ("number", Field::Int(n as i32)),
                    ("old", Field::Str(old.as_str())),
                    ("new", Field::Str(to.as_str())),
                    ("stage", Field::Str(h.stage())),
                    ("task", Field::Str(h.task())),
                ])
            }
        },
    )
}

/// A native routine that does nothing: the `.Call` baseline of bench/r/bench_progress.R.
#[no_mangle]
pub extern "C" fn tk_noop(_x: SEXP) -> SEXP {
    // SAFETY: reading R's NULL constant.
    unsafe { ffi::R_NilValue }
}

/// The same with `tk_inc`'s four arguments: the floor of any `.Call`-based increment
/// (bench/r/bench_progress.R).
#[no_mangle]
pub extern "C" fn tk_noop4(_a: SEXP, _b: SEXP, _c: SEXP, _d: SEXP) -> SEXP {
    // SAFETY: reading R's NULL constant.
    unsafe { ffi::R_NilValue }
}

extendr_module! {
    mod tasker;
    use events;
    use bench;
    use logs;
    use monitor;
    fn tk_health;
    fn tk_open;
    fn tk_export_config;
    fn tk_import_config;
    fn tk_info;
    fn tk_register;
    fn tk_tasks;
    fn tk_stages;
    fn tk_task_status;
    fn tk_active;
    fn tk_history;
    fn tk_run;
    fn tk_subtasks;
    fn tk_task_stats;
    fn tk_samples;
    fn tk_sampling;
    fn tk_collect_sample;
    fn tk_run_io;
    fn tk_record_io;
    fn tk_rate_eta;
    fn tk_events;
    fn tk_delete_runs;
    fn tk_delete_tasks;
    fn tk_flush;
    fn tk_flush_at_exit;
    fn tk_context;
    fn tk_resolve;
    fn tk_set_current;
    fn tk_get_current;
    fn tk_run_progress;
    fn tk_native_version;
}

fn raw(name: &'static str, args: &'static [&'static str], ptr: *const u8) -> Func {
    Func {
        doc: "",
        rust_name: name,
        mod_name: name,
        r_name: name,
        c_name: name,
        args: args
            .iter()
            .map(|a| Arg {
                name: a,
                arg_type: "SEXP",
                default: None,
            })
            .collect(),
        return_type: "SEXP",
        func_ptr: ptr,
        hidden: true,
        invisible: None,
    }
}

/// Registers the extendr routines plus the raw hot-path ones (called by `R_init_tasker`).
///
/// # Safety
/// Called once by R when the package's shared library is loaded.
#[no_mangle]
pub unsafe extern "C" fn R_init_tasker_rs(info: *mut extendr_api::DllInfo) {
    let mut meta = get_tasker_metadata();
    meta.functions.push(raw(
        "tk_inc",
        &["run_id", "number", "n", "conn"],
        tk_inc as *const u8,
    ));
    meta.functions
        .push(raw("tk_progress_left", &[], tk_progress_left as *const u8));
    meta.functions.push(raw(
        "tk_prog",
        &[
            "run_id",
            "number",
            "items_complete",
            "percent",
            "message",
            "items_total",
        ],
        tk_prog as *const u8,
    ));
    meta.functions
        .push(raw("tk_noop", &["x"], tk_noop as *const u8));
    meta.functions.push(raw(
        "tk_noop4",
        &["a", "b", "c", "d"],
        tk_noop4 as *const u8,
    ));
    meta.functions.push(raw(
        "tk_task_start",
        &[
            "stage",
            "task",
            "total_subtasks",
            "message",
            "version",
            "git_commit",
            "metadata",
            "attempt",
            "retry",
            "script_path",
            "script_filename",
            "command_line",
            "active",
        ],
        tk_task_start as *const u8,
    ));
    meta.functions.push(raw(
        "tk_run_status",
        &[
            "run_id",
            "status",
            "message",
            "error_message",
            "error_detail",
            "reset",
        ],
        tk_run_status as *const u8,
    ));
    meta.functions.push(raw(
        "tk_subtask_start",
        &[
            "run_id",
            "name",
            "items_total",
            "message",
            "number",
            "restart",
        ],
        tk_subtask_start as *const u8,
    ));
    meta.functions.push(raw(
        "tk_subtask_status",
        &[
            "run_id",
            "number",
            "status",
            "message",
            "error_message",
            "error_detail",
            "reset",
        ],
        tk_subtask_status as *const u8,
    ));
    // SAFETY: `info` comes from R's loader; the table lists functions of this library.
    unsafe { extendr_api::register_call_methods(info, meta) };
}

/// "R 4.2.2", as a run records its runtime. Asked once per process: evaluating R
/// code from here costs about 40 us, a third of a whole task_start().
fn r_runtime() -> Option<String> {
    thread_local! {
        static RUNTIME: std::cell::OnceCell<Option<String>> = const { std::cell::OnceCell::new() };
    }
    RUNTIME.with(|r| {
        r.get_or_init(|| {
            let v = eval_string("as.character(getRversion())").ok()?;
            v.as_str().map(|v| format!("R {v}"))
        })
        .clone()
    })
}
