//! The C ABI of libtasker: the only `extern "C"` surface of the project.
//!
//! Conventions (also in the header):
//! - every function returns a [`tasker_status`]; out-parameters are written only on
//!   `TASKER_STATUS_OK`;
//! - the message of the last error on the calling thread is read with
//!   [`tasker_last_error_message`] (or [`tasker_last_error`]);
//! - strings returned by the library are freed with [`tasker_string_free`], once;
//! - input strings are NUL-terminated UTF-8; NULL where a string is required gives
//!   `TASKER_STATUS_NULL_POINTER`, bad UTF-8 gives `TASKER_STATUS_INVALID_UTF8`;
//! - no panic crosses the boundary: it becomes `TASKER_STATUS_PANIC`.
//!
//! ABI stability: `TASKER_ABI_VERSION` changes whenever an existing function's
//! signature or an existing status value changes. Status values are never renumbered.
#![allow(
    non_camel_case_types,
    reason = "C type names follow C conventions (tasker_status)"
)]
#![allow(
    clippy::missing_safety_doc,
    reason = "each function documents its contract in prose"
)]

mod logs;
pub(crate) mod os;
mod serve;

pub use logs::{tasker_item_failed, tasker_item_skipped, tasker_log, tasker_log_subtask};
pub use serve::{tasker_serve_start, tasker_serve_stop, tasker_serve_url, tasker_server};

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::config::ConfigArgs;
use crate::error::{Error, ErrorKind};
use crate::io_record::{Direction, IoRecord};
use crate::model::{
    RunOptions, RunProgress, Status, SubtaskOptions, SubtaskProgress, TaskSpec, TransitionInfo,
};
use crate::query::{HistoryFilter, StatusFilter};
use crate::run::RunHandle;
use crate::tracker::Tracker;

/// Version of the C ABI described by this header. Changes when an existing
/// function's signature or meaning changes; additions keep it.
pub const TASKER_ABI_VERSION: u32 = 1;
// TASKER_VERSION_MAJOR/MINOR/PATCH are written into the header by tools/gen-header from
// the workspace version (the one place it is written); a test below checks they match.

/// Result of every call. The numbers are fixed forever; retired values are never reused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tasker_status {
    Ok = 0,
    /// A value is out of range or malformed (the message names it).
    InvalidArgument = 1,
    /// No such run, subtask or task.
    NotFound = 2,
    /// The status change is not allowed (e.g. out of a finished state).
    InvalidTransition = 3,
    /// A subtask with that number already exists.
    AlreadyExists = 4,
    /// The configuration could not be resolved or is invalid.
    Config = 5,
    /// The database could not be reached or refused a write.
    Storage = 6,
    /// A required pointer argument was NULL.
    NullPointer = 7,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 8,
    /// A bug inside libtasker was caught before it could cross into C.
    Panic = 9,
    /// This build of libtasker leaves the feature out (e.g. the dashboard server:
    /// the Cargo feature `server`); the message says which.
    Unsupported = 10,
}

/// Statuses of runs and subtasks, for `tasker_task_set_status` (values fixed).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tasker_state {
    NotStarted = 0,
    Started = 1,
    Running = 2,
    Paused = 3,
    Completed = 4,
    Failed = 5,
    Skipped = 6,
    Cancelled = 7,
}

/// An open tracking database (opaque). Thread-safe.
#[derive(Debug)]
pub struct tasker_tracker {
    _private: [u8; 0],
}

/// One run (opaque). Thread-safe: many threads may report progress on one run.
#[derive(Debug)]
pub struct tasker_run {
    _private: [u8; 0],
}

/// Options for `tasker_task_start` (opaque). Not thread-safe: build it on one thread.
#[derive(Debug)]
pub struct tasker_run_options {
    _private: [u8; 0],
}

/// Called after each transition made through a tracker, with the event as a JSON
/// object (valid only during the call) and the `user_data` given at registration.
/// It may be called from any thread that makes a transition.
pub type tasker_listener = Option<extern "C" fn(event_json: *const c_char, user_data: *mut c_void)>;

struct FfiRun {
    handle: RunHandle,
    id: CString,
}

/// Maps the opaque C types to the Rust values behind them, in one place.
trait Castable {
    type Rust;
    fn boxed(value: Self::Rust) -> *mut Self
    where
        Self: Sized,
    {
        Box::into_raw(Box::new(value)).cast()
    }
    /// # Safety
    /// `ptr` is NULL or came from `boxed` and has not been freed.
    unsafe fn borrow<'a>(ptr: *const Self, what: &'static str) -> Result<&'a Self::Rust, FfiError>
    where
        Self: Sized,
    {
        // SAFETY: per this function's contract.
        unsafe { ptr.cast::<Self::Rust>().as_ref() }.ok_or(FfiError::Null(what))
    }
    /// # Safety
    /// As `borrow`, and nobody else uses the value meanwhile.
    unsafe fn borrow_mut<'a>(
        ptr: *mut Self,
        what: &'static str,
    ) -> Result<&'a mut Self::Rust, FfiError>
    where
        Self: Sized,
    {
        // SAFETY: per this function's contract.
        unsafe { ptr.cast::<Self::Rust>().as_mut() }.ok_or(FfiError::Null(what))
    }
    /// # Safety
    /// `ptr` is NULL or came from `boxed`; it is not used afterwards.
    unsafe fn free(ptr: *mut Self)
    where
        Self: Sized,
    {
        if !ptr.is_null() {
            // SAFETY: per this function's contract, the box is ours to drop.
            drop(unsafe { Box::from_raw(ptr.cast::<Self::Rust>()) });
        }
    }
}

impl Castable for tasker_tracker {
    type Rust = Tracker;
}
impl Castable for tasker_run {
    type Rust = FfiRun;
}
impl Castable for tasker_run_options {
    type Rust = RunOptions;
}

enum FfiError {
    Core(Error),
    Null(&'static str),
    Utf8(&'static str),
    /// A feature this build leaves out (its Cargo feature is named).
    #[cfg_attr(
        feature = "server",
        allow(dead_code, reason = "only builds without a feature")
    )]
    Unsupported(&'static str),
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        FfiError::Core(e)
    }
}

impl FfiError {
    fn status(&self) -> tasker_status {
        match self {
            FfiError::Null(_) => tasker_status::NullPointer,
            FfiError::Utf8(_) => tasker_status::InvalidUtf8,
            FfiError::Unsupported(_) => tasker_status::Unsupported,
            FfiError::Core(e) => match e.kind() {
                ErrorKind::InvalidArgument => tasker_status::InvalidArgument,
                ErrorKind::NotFound => tasker_status::NotFound,
                ErrorKind::InvalidTransition => tasker_status::InvalidTransition,
                ErrorKind::AlreadyExists => tasker_status::AlreadyExists,
                ErrorKind::Config => tasker_status::Config,
                ErrorKind::Storage => tasker_status::Storage,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            FfiError::Null(what) => format!("{what} must not be NULL"),
            FfiError::Utf8(what) => format!("{what} is not valid UTF-8"),
            FfiError::Unsupported(feature) => format!(
                "this build of libtasker leaves out {feature} (rebuild tasker-core with that Cargo feature)"
            ),
            FfiError::Core(e) => e.to_string(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Runs an entry point's body: converts errors to a status (recording the message)
/// and stops any panic at the boundary.
fn guard(body: impl FnOnce() -> Result<(), FfiError>) -> tasker_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => tasker_status::Ok,
        Ok(Err(e)) => {
            set_last_error(e.message());
            e.status()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!(
                "internal error in libtasker (please report): {what}"
            ));
            tasker_status::Panic
        }
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
unsafe fn opt_str<'a>(p: *const c_char, what: &'static str) -> Result<Option<&'a str>, FfiError> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: per this function's contract.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map(Some).map_err(|_| FfiError::Utf8(what))
}

/// # Safety
/// As `opt_str`.
unsafe fn req_str<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, FfiError> {
    // SAFETY: per this function's contract.
    unsafe { opt_str(p, what) }?.ok_or(FfiError::Null(what))
}

/// # Safety
/// `out` is NULL or valid for one write.
unsafe fn write_out<T>(out: *mut T, value: T, what: &'static str) -> Result<(), FfiError> {
    if out.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: checked non-NULL; valid for writes per this function's contract.
    unsafe { out.write(value) };
    Ok(())
}

fn to_c_string(s: String) -> *mut c_char {
    CString::new(s.replace('\0', "\\u0000"))
        .unwrap_or_default()
        .into_raw()
}

/// The library version, e.g. "0.1.0". Static storage: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn tasker_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version this library implements (compare with `TASKER_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn tasker_abi_version() -> u32 {
    TASKER_ABI_VERSION
}

/// A static name for a status code ("OK", "NOT_FOUND", ...); "UNKNOWN" for other values.
#[no_mangle]
pub extern "C" fn tasker_status_name(code: i32) -> *const c_char {
    let name: &'static str = match code {
        0 => "OK\0",
        1 => "INVALID_ARGUMENT\0",
        2 => "NOT_FOUND\0",
        3 => "INVALID_TRANSITION\0",
        4 => "ALREADY_EXISTS\0",
        5 => "CONFIG\0",
        6 => "STORAGE\0",
        7 => "NULL_POINTER\0",
        8 => "INVALID_UTF8\0",
        9 => "PANIC\0",
        10 => "UNSUPPORTED\0",
        _ => "UNKNOWN\0",
    };
    name.as_ptr().cast()
}

/// The message of the last failed call on this thread, or "" if none. The pointer
/// stays valid until the next failing call on this thread; do not free it.
#[no_mangle]
pub extern "C" fn tasker_last_error() -> *const c_char {
    LAST_ERROR.with(|e| match &*e.borrow() {
        Some(c) => c.as_ptr(),
        None => c"".as_ptr(),
    })
}

/// Copies the last error message of this thread into `buf` (at most `len` bytes,
/// always NUL-terminated when `len > 0`). Returns the message length without the
/// NUL, so a return value `>= len` means it was truncated. `buf` may be NULL when `len` is 0.
///
/// # Safety
/// `buf` is valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn tasker_last_error_message(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR.with(|e| {
        let msg = e.borrow();
        let bytes = msg.as_ref().map(|c| c.as_bytes()).unwrap_or(b"");
        if !buf.is_null() && len > 0 {
            let n = bytes.len().min(len - 1);
            // SAFETY: `buf` has room for `len` bytes and `n < len`.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, n);
                *buf.add(n) = 0;
            }
        }
        bytes.len()
    })
}

/// Frees a string returned by libtasker. NULL is ignored. Freeing twice, or freeing
/// a string from elsewhere, is undefined behaviour.
///
/// # Safety
/// `s` is NULL or a string returned by libtasker that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn tasker_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per the contract, `s` came from `CString::into_raw`.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Opens the tracking database. `url` may be NULL: the configuration is then resolved
/// from TASKER_DB_URL / TASKER_DB_*, `.tasker.yml`, the user config file, or the
/// default SQLite file. Accepted URLs: `sqlite:///path/file.db`, a plain file path,
/// `postgresql://...`. On success `*out` receives a tracker to release with
/// `tasker_close`. Thread-safe.
///
/// # Safety
/// `url` is NULL or a NUL-terminated string; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_open(
    url: *const c_char,
    out: *mut *mut tasker_tracker,
) -> tasker_status {
    guard(|| {
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        // SAFETY: caller contract.
        let url = unsafe { opt_str(url, "url") }?;
        let args = url.map(ConfigArgs::url).unwrap_or_default();
        let tracker = Tracker::connect(&args)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out, tasker_tracker::boxed(tracker), "out") }
    })
}

/// Flushes pending progress, stops the writer thread and frees the tracker. NULL is
/// ignored. Run handles from this tracker stay usable until freed. Returns the status
/// of the final flush. The tracker must not be used afterwards (nor freed twice).
///
/// # Safety
/// `tracker` is NULL or from `tasker_open`, not yet closed, and not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn tasker_close(tracker: *mut tasker_tracker) -> tasker_status {
    guard(|| {
        if tracker.is_null() {
            return Ok(());
        }
        // SAFETY: caller contract.
        let result = unsafe { tasker_tracker::borrow(tracker, "tracker") }?.close();
        // SAFETY: caller contract; not used after this.
        unsafe { tasker_tracker::free(tracker) };
        result.map_err(FfiError::from)
    })
}

/// Makes all pending progress of this process durable now. Thread-safe.
///
/// # Safety
/// `tracker` is NULL or a live tracker.
#[no_mangle]
pub unsafe extern "C" fn tasker_flush(tracker: *const tasker_tracker) -> tasker_status {
    // SAFETY: caller contract.
    guard(|| Ok(unsafe { tasker_tracker::borrow(tracker, "tracker") }?.flush()?))
}

/// Flushes every tracker of this process (e.g. from an atexit handler). Thread-safe.
#[no_mangle]
pub extern "C" fn tasker_flush_all() {
    let _ = catch_unwind(crate::tracker::flush_all);
}

/// Registers (or updates) a task and its stage. `type` and `description` may be NULL
/// (NULL never clears a stored value). Thread-safe.
///
/// # Safety
/// `tracker` is a live tracker; strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_register_task(
    tracker: *const tasker_tracker,
    stage: *const c_char,
    task: *const c_char,
    task_type: *const c_char,
    description: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let mut spec = TaskSpec::new(unsafe { req_str(stage, "stage") }?, unsafe {
            req_str(task, "task")
        }?);
        // SAFETY: the caller upholds this function's `# Safety` contract.
        spec.task_type = unsafe { opt_str(task_type, "type") }?.map(str::to_string);
        // SAFETY: the caller upholds this function's `# Safety` contract.
        spec.description = unsafe { opt_str(description, "description") }?.map(str::to_string);
        t.register_task(&spec)?;
        Ok(())
    })
}

/// Registers (or updates) a task and sets the tasks it depends on: `count` names
/// `stage/task` (a bare name is a task of the same stage) in `depends_on` (NULL
/// when `count` is 0, which clears them). An unknown task or a cycle is
/// `TASKER_STATUS_INVALID_ARGUMENT` with a message naming it; nothing is stored.
/// Thread-safe.
///
/// # Safety
/// `tracker` is a live tracker; strings are NUL-terminated; `depends_on` points to
/// `count` string pointers (or is NULL when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn tasker_register_task_depends(
    tracker: *const tasker_tracker,
    stage: *const c_char,
    task: *const c_char,
    depends_on: *const *const c_char,
    count: usize,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let mut spec = TaskSpec::new(unsafe { req_str(stage, "stage") }?, unsafe {
            req_str(task, "task")
        }?);
        if count > 0 && depends_on.is_null() {
            return Err(FfiError::Null("depends_on"));
        }
        let mut names = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: `depends_on` holds `count` pointers (caller contract).
            let p = unsafe { *depends_on.add(i) };
            // SAFETY: each is NUL-terminated (caller contract).
            names.push(unsafe { req_str(p, "depends_on") }?.to_string());
        }
        spec.depends_on = Some(names);
        t.register_task(&spec)?;
        Ok(())
    })
}

/// Registers many tasks in one transaction from a JSON array of objects with the keys
/// `stage`, `name`, and optionally `type`, `description`, `stage_order`, `task_order`,
/// `script_path`, `script_filename`, `log_path`, `log_filename`, `depends_on` (an
/// array of `stage/task` names, which may name tasks of the same array). All or
/// none: an unknown dependency or a cycle stores nothing. Thread-safe.
///
/// # Safety
/// `tracker` is a live tracker; `json` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_register_tasks_json(
    tracker: *const tasker_tracker,
    json: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: caller contract.
        let json = unsafe { req_str(json, "json") }?;
        let specs: Vec<TaskSpec> = serde_json::from_str(json)
            .map_err(|e| Error::invalid("task list JSON", json, &e.to_string()))?;
        t.register_tasks(&specs)?;
        Ok(())
    })
}

/// Creates empty run options; free them with `tasker_run_options_free`.
///
/// # Safety
/// `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_new(
    out: *mut *mut tasker_run_options,
) -> tasker_status {
    // SAFETY: caller contract.
    guard(|| unsafe { write_out(out, tasker_run_options::boxed(RunOptions::default()), "out") })
}

/// Frees run options. NULL is ignored; freeing twice is undefined behaviour.
///
/// # Safety
/// `options` is NULL or from `tasker_run_options_new`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_free(options: *mut tasker_run_options) {
    // SAFETY: caller contract.
    let _ = catch_unwind(|| unsafe { tasker_run_options::free(options) });
}

/// Sets how many subtasks the run will have (used to derive its percent).
///
/// # Safety
/// `options` is live and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_set_total_subtasks(
    options: *mut tasker_run_options,
    total: i64,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let o = unsafe { tasker_run_options::borrow_mut(options, "options") }?;
        if total < 0 {
            return Err(Error::invalid("total_subtasks", total, "must be zero or more").into());
        }
        o.total_subtasks = Some(total);
        Ok(())
    })
}

/// Sets a text option: `message`, `version`, `git_commit`, `script_path`,
/// `script_filename`, `log_path`, `log_filename`, `command_line`, `runtime`, or
/// `metadata` (a JSON object). Unset, the command line, the program (this
/// executable) and the git commit and dirty flag of its repository are captured
/// by `tasker_task_start`. A `runtime` names an interpreter running a script
/// (`script_path`): the executable is then not taken for the program.
///
/// # Safety
/// `options` is live and not used by another thread meanwhile; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_set(
    options: *mut tasker_run_options,
    key: *const c_char,
    value: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let o = unsafe { tasker_run_options::borrow_mut(options, "options") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let key = unsafe { req_str(key, "key") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let value = unsafe { req_str(value, "value") }?.to_string();
        let slot = match key {
            "message" => &mut o.message,
            "version" => &mut o.version,
            "git_commit" => &mut o.git_commit,
            "script_path" => &mut o.script_path,
            "script_filename" => &mut o.script_filename,
            "log_path" => &mut o.log_path,
            "log_filename" => &mut o.log_filename,
            "command_line" => &mut o.command_line,
            "runtime" => &mut o.runtime,
            "metadata" => {
                let v: serde_json::Value = serde_json::from_str(&value)
                    .map_err(|e| Error::invalid("metadata", value.as_str(), &format!("is not JSON: {e}")))?;
                o.metadata = Some(v);
                return Ok(o.validate()?);
            }
            other => {
                return Err(Error::invalid(
                    "option name",
                    other,
                    "must be one of message, version, git_commit, script_path, script_filename, log_path, log_filename, command_line, runtime, metadata",
                )
                .into())
            }
        };
        *slot = Some(value);
        Ok(o.validate()?)
    })
}

/// Marks the run to start as a retry: when the task's latest run FAILED or was
/// lost, the new run records the next attempt number and the run it retries;
/// otherwise it is a first attempt (`retry` false: always a first attempt).
///
/// # Safety
/// `options` is live and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_set_retry(
    options: *mut tasker_run_options,
    retry: bool,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let o = unsafe { tasker_run_options::borrow_mut(options, "options") }?;
        o.retry = retry;
        Ok(())
    })
}

/// Sets the attempt number of the run to start (1 for a first try; above 1 it
/// retries the task's latest run). 0 is refused.
///
/// # Safety
/// `options` is live and not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_options_set_attempt(
    options: *mut tasker_run_options,
    attempt: u32,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let o = unsafe { tasker_run_options::borrow_mut(options, "options") }?;
        if attempt == 0 {
            return Err(Error::invalid("attempt", 0u32, "attempts are counted from 1").into());
        }
        o.attempt = Some(attempt);
        Ok(())
    })
}

/// Starts a run of `stage`/`task` (registering them if new). `options` may be NULL.
/// On success `*out` receives the run, to release with `tasker_run_free`. Durable on
/// return. Thread-safe.
///
/// # Safety
/// `tracker` is live; strings are NUL-terminated; `options` is NULL or live; `out` is
/// valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_start(
    tracker: *const tasker_tracker,
    stage: *const c_char,
    task: *const c_char,
    options: *const tasker_run_options,
    out: *mut *mut tasker_run,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let stage = unsafe { req_str(stage, "stage") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let task = unsafe { req_str(task, "task") }?;
        let opts = if options.is_null() {
            RunOptions::default()
        } else {
            // SAFETY: caller contract.
            unsafe { tasker_run_options::borrow(options, "options") }?.clone()
        };
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        let handle = t.task_start(stage, task, opts)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out, new_run(handle), "out") }
    })
}

fn new_run(handle: RunHandle) -> *mut tasker_run {
    let id = CString::new(handle.run_id()).unwrap_or_default();
    tasker_run::boxed(FfiRun { handle, id })
}

/// A handle on an existing run by id (e.g. in a worker process). Thread-safe.
///
/// # Safety
/// `tracker` is live; `run_id` is NUL-terminated; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_attach(
    tracker: *const tasker_tracker,
    run_id: *const c_char,
    out: *mut *mut tasker_run,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let run_id = unsafe { req_str(run_id, "run_id") }?;
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        let handle = t.attach_run(run_id)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out, new_run(handle), "out") }
    })
}

/// Frees a run handle (the run itself is not changed). NULL is ignored.
///
/// # Safety
/// `run` is NULL or from libtasker, not freed yet, and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_free(run: *mut tasker_run) {
    // SAFETY: caller contract.
    let _ = catch_unwind(|| unsafe { tasker_run::free(run) });
}

/// The run's id (a UUID). Valid while the handle lives; do not free. NULL if `run` is NULL.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_id(run: *const tasker_run) -> *const c_char {
    // SAFETY: caller contract.
    match unsafe { tasker_run::borrow(run, "run") } {
        Ok(r) => r.id.as_ptr(),
        Err(_) => std::ptr::null(),
    }
}

/// # Safety
/// `run` is NULL or live.
unsafe fn run_ref<'a>(run: *const tasker_run) -> Result<&'a RunHandle, FfiError> {
    // SAFETY: caller contract.
    Ok(&unsafe { tasker_run::borrow(run, "run") }?.handle)
}

fn items_total(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// Starts the run's next subtask (number allocated by the database) and writes its
/// number to `*out_number` (may be NULL). `items_total < 0` means unknown.
/// Durable on return. Thread-safe.
///
/// # Safety
/// `run` is live; `name` is NUL-terminated; `out_number` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_start(
    run: *const tasker_run,
    name: *const c_char,
    items_total_or_negative: i64,
    out_number: *mut u32,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let name = unsafe { req_str(name, "name") }?;
        let opts = SubtaskOptions {
            items_total: items_total(items_total_or_negative),
            ..SubtaskOptions::default()
        };
        let n = r.subtask_start(name, opts)?;
        if !out_number.is_null() {
            // SAFETY: checked non-NULL; caller contract.
            unsafe { out_number.write(n) };
        }
        Ok(())
    })
}

/// Starts subtask `number` explicitly. An existing number gives
/// `TASKER_STATUS_ALREADY_EXISTS` unless `restart` (which clears its progress).
///
/// # Safety
/// `run` is live; `name` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_start_at(
    run: *const tasker_run,
    number: u32,
    name: *const c_char,
    items_total_or_negative: i64,
    restart: bool,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let name = unsafe { req_str(name, "name") }?;
        let opts = SubtaskOptions {
            number: Some(number),
            items_total: items_total(items_total_or_negative),
            restart,
            ..SubtaskOptions::default()
        };
        r.subtask_start(name, opts)?;
        Ok(())
    })
}

/// Writes to `*out_number` the number the database stored subtask `number` under:
/// the same, unless it was started while the database was away and another
/// process took that number meanwhile (until the queued start is applied,
/// `number` itself). Calls with `number` keep reaching this process's subtask
/// either way. Memory only. Thread-safe.
///
/// # Safety
/// `run` is NULL or live; `out_number` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_number(
    run: *const tasker_run,
    number: u32,
    out_number: *mut u32,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let r = unsafe { run_ref(run) }?;
        if out_number.is_null() {
            return Err(FfiError::Null("out_number"));
        }
        // SAFETY: checked non-NULL; caller contract.
        unsafe { out_number.write(r.subtask_number(number)) };
        Ok(())
    })
}

/// Writes to `*out_uid` the identity (a UUID) of the subtask this process reaches
/// as `number`, to hand to another process with the number (see
/// `tasker_subtask_adopt`). Free it with `tasker_string_free`.
/// `TASKER_STATUS_NOT_FOUND` when this process did not start it.
///
/// # Safety
/// `run` is NULL or live; `out_uid` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_uid(
    run: *const tasker_run,
    number: u32,
    out_uid: *mut *mut c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let r = unsafe { run_ref(run) }?;
        if out_uid.is_null() {
            return Err(FfiError::Null("out_uid"));
        }
        let uid = r.subtask_uid(number).ok_or_else(|| {
            Error::not_found(
                "subtask",
                format!("{number} started by this process in run {}", r.run_id()),
            )
        })?;
        // SAFETY: checked non-NULL; caller contract.
        unsafe { out_uid.write(to_c_string(uid)) };
        Ok(())
    })
}

/// Makes `number` in this process reach the subtask with identity `uid` (from
/// `tasker_subtask_uid` in the process that started it), whatever number the
/// database gave it. Memory only. Thread-safe.
///
/// # Safety
/// `run` is NULL or live; `uid` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_adopt(
    run: *const tasker_run,
    number: u32,
    uid: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let uid = unsafe { req_str(uid, "uid") }?;
        Ok(r.adopt_subtask(number, uid)?)
    })
}

/// Adds `n` (>= 1) items to subtask `number`. The hot path: memory only, a few
/// nanoseconds; the writer thread stores it. `TASKER_STATUS_INVALID_TRANSITION`
/// once this process knows the subtask finished. Thread-safe and
/// async-signal-unsafe.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_increment(
    run: *const tasker_run,
    number: u32,
    n: u64,
) -> tasker_status {
    // SAFETY: caller contract.
    guard(|| Ok(unsafe { run_ref(run) }?.subtask_increment(number, n)?))
}

/// Sets the number of items done (absolute). Memory only. Thread-safe.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_set_items(
    run: *const tasker_run,
    number: u32,
    items_complete: u64,
) -> tasker_status {
    guard(|| {
        let p = SubtaskProgress {
            items_complete: Some(items_complete),
            ..SubtaskProgress::default()
        };
        // SAFETY: caller contract.
        Ok(unsafe { run_ref(run) }?.subtask_update(number, &p)?)
    })
}

/// Sets the subtask's total number of items. Memory only. Thread-safe.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_set_total(
    run: *const tasker_run,
    number: u32,
    items_total: u64,
) -> tasker_status {
    guard(|| {
        let p = SubtaskProgress {
            items_total: Some(items_total),
            ..SubtaskProgress::default()
        };
        // SAFETY: caller contract.
        Ok(unsafe { run_ref(run) }?.subtask_update(number, &p)?)
    })
}

/// Sets the subtask's percent (0..100) when it has no item counts. Memory only.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_set_percent(
    run: *const tasker_run,
    number: u32,
    percent: f64,
) -> tasker_status {
    guard(|| {
        let p = SubtaskProgress {
            percent: Some(percent),
            ..SubtaskProgress::default()
        };
        // SAFETY: caller contract.
        Ok(unsafe { run_ref(run) }?.subtask_update(number, &p)?)
    })
}

/// Sets the subtask's progress message. Memory only. Thread-safe.
///
/// # Safety
/// `run` is NULL or live; `message` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_set_message(
    run: *const tasker_run,
    number: u32,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let m = unsafe { req_str(message, "message") }?;
        let p = SubtaskProgress {
            message: Some(m.to_string()),
            ..SubtaskProgress::default()
        };
        Ok(r.subtask_update(number, &p)?)
    })
}

/// Marks subtask `number` COMPLETED. `message` may be NULL. Durable on return.
/// Completing a completed subtask changes nothing and returns OK.
///
/// # Safety
/// `run` is NULL or live; `message` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_complete(
    run: *const tasker_run,
    number: u32,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        Ok(r.subtask_complete(number, unsafe { opt_str(message, "message") }?)?)
    })
}

/// Marks subtask `number` FAILED with an error message (required) and detail (may be NULL).
///
/// # Safety
/// `run` is NULL or live; strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_fail(
    run: *const tasker_run,
    number: u32,
    error_message: *const c_char,
    error_detail: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let msg = unsafe { req_str(error_message, "error_message") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let detail = unsafe { opt_str(error_detail, "error_detail") }?;
        Ok(r.subtask_fail(number, msg, detail)?)
    })
}

/// Marks subtask `number` SKIPPED. `message` may be NULL.
///
/// # Safety
/// `run` is NULL or live; `message` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_subtask_skip(
    run: *const tasker_run,
    number: u32,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        Ok(r.subtask_skip(number, unsafe { opt_str(message, "message") }?)?)
    })
}

/// Sets the run's overall percent (0..100), overriding the one derived from subtasks.
/// Memory only.
///
/// # Safety
/// `run` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_set_percent(
    run: *const tasker_run,
    percent: f64,
) -> tasker_status {
    guard(|| {
        let p = RunProgress {
            overall_percent: Some(percent),
            ..RunProgress::default()
        };
        // SAFETY: caller contract.
        Ok(unsafe { run_ref(run) }?.update(&p)?)
    })
}

/// Sets the run's progress message. Memory only.
///
/// # Safety
/// `run` is NULL or live; `message` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_set_message(
    run: *const tasker_run,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let m = unsafe { req_str(message, "message") }?;
        Ok(r.update(&RunProgress {
            message: Some(m.to_string()),
            ..RunProgress::default()
        })?)
    })
}

/// Moves the run to `state` (a `tasker_state` value). `message` may be NULL. Leaving a
/// finished state gives `TASKER_STATUS_INVALID_TRANSITION`. Durable on return.
///
/// # Safety
/// `run` is NULL or live; `message` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_set_status(
    run: *const tasker_run,
    state: i32,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        let to = Status::from_code(state)
            .ok_or_else(|| Error::invalid("state", state, "must be a tasker_state value (0..7)"))?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let m = unsafe { opt_str(message, "message") }?;
        r.set_status(to, TransitionInfo::message(m))?;
        Ok(())
    })
}

/// Records a named input (`output` false) or output (`output` true) value of the
/// run, replacing an earlier record of that name. Durable on return.
///
/// # Safety
/// `run` is NULL or live; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_add_value(
    run: *const tasker_run,
    output: bool,
    name: *const c_char,
    value: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let name = unsafe { req_str(name, "name") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let value = unsafe { req_str(value, "value") }?;
        let direction = if output {
            Direction::Output
        } else {
            Direction::Input
        };
        Ok(r.record_io(IoRecord::value(direction, name, value)?)?)
    })
}

/// Records an input (`output` false) or output (`output` true) file of the run:
/// its path, size and modification time, and with `hash` the SHA-256 of its
/// content. A file that cannot be read is refused, naming it.
///
/// # Safety
/// `run` is NULL or live; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_run_add_file(
    run: *const tasker_run,
    output: bool,
    name: *const c_char,
    path: *const c_char,
    hash: bool,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let name = unsafe { req_str(name, "name") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let path = unsafe { req_str(path, "path") }?;
        let direction = if output {
            Direction::Output
        } else {
            Direction::Input
        };
        Ok(r.record_io(IoRecord::file(direction, name, path, hash)?)?)
    })
}

/// Marks the run COMPLETED (and its open subtasks). `message` may be NULL.
///
/// # Safety
/// `run` is NULL or live; `message` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_complete(
    run: *const tasker_run,
    message: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        Ok(r.complete(unsafe { opt_str(message, "message") }?)?)
    })
}

/// Marks the run FAILED (and its open subtasks) with an error message (required) and
/// detail (may be NULL).
///
/// # Safety
/// `run` is NULL or live; strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_task_fail(
    run: *const tasker_run,
    error_message: *const c_char,
    error_detail: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let msg = unsafe { req_str(error_message, "error_message") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        Ok(r.fail(msg, unsafe { opt_str(error_detail, "error_detail") }?)?)
    })
}

/// Runs a query and writes its result as a JSON array (or object, for `run`) to
/// `*out_json`, to free with `tasker_string_free`. `query` is one of `task_status`,
/// `active_runs`, `history`, `run`, `subtasks`, `run_io` (inputs and outputs),
/// `samples` (resource use), `task_stats` (per task: runs, success rate,
/// duration percentiles, items/s), `registered_tasks`, `stages`, `events`,
/// `run_logs` (a run's log lines, oldest first), `item_outcomes` (items that
/// failed or were skipped), `item_outcome_counts` (their exact counts) and `dag`
/// (an object: `nodes`, the tasks with their latest run, rank, `blocked` and
/// `waiting`; `edges`, `{from, to}` by `stage/task` name).
/// `params_json` (may be NULL) is a JSON object of filters: `stage`, `task`, `status`,
/// `limit`, `since` (RFC 3339), `run_id`, `name`, `after` (event id; for `run_logs`
/// a `log_id`), `level` (`run_logs`: that level or more important), `subtask` and
/// `outcome` (`item_outcomes`). Thread-safe.
///
/// # Safety
/// `tracker` is live; strings are NULL or NUL-terminated; `out_json` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_query_json(
    tracker: *const tasker_tracker,
    query: *const c_char,
    params_json: *const c_char,
    out_json: *mut *mut c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let query = unsafe { req_str(query, "query") }?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let params = unsafe { opt_str(params_json, "params_json") }?.unwrap_or("{}");
        if out_json.is_null() {
            return Err(FfiError::Null("out_json"));
        }
        let json = run_query(t, query, params)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_json, to_c_string(json), "out_json") }
    })
}

/// Writes whether the database is reachable and how many writes wait for it, as a
/// JSON object (`backend`, `location`, `reachable`, `last_error`, `pending_writes`,
/// `spooled_writes`), to `*out_json`; free it with `tasker_string_free`. While the
/// database is unreachable, tracking calls still return `TASKER_STATUS_OK`: their writes
/// are kept and replayed. Thread-safe.
///
/// # Safety
/// `tracker` is live; `out_json` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_health_json(
    tracker: *const tasker_tracker,
    out_json: *mut *mut c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: the caller upholds this function's `# Safety` contract.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        let json =
            serde_json::to_string(&t.health()).map_err(|e| Error::storage_refused("json", e))?;
        // SAFETY: the caller upholds this function's `# Safety` contract.
        unsafe { write_out(out_json, to_c_string(json), "out_json") }
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct QueryParams {
    stage: Option<String>,
    task: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    run_id: Option<String>,
    name: Option<String>,
    after: Option<i64>,
    /// `run_logs`: the least important level wanted.
    level: Option<String>,
    /// `item_outcomes`: one subtask's items.
    subtask: Option<u32>,
    /// `item_outcomes`: `failed` or `skipped`.
    outcome: Option<String>,
}

/// Shared by the C ABI and any binding that wants JSON results.
pub fn run_query(t: &Tracker, query: &str, params: &str) -> Result<String, Error> {
    let p: QueryParams = serde_json::from_str(params)
        .map_err(|e| Error::invalid("query parameters", params, &e.to_string()))?;
    let status = p.status.as_deref().map(str::parse::<Status>).transpose()?;
    let need_run = |p: &QueryParams| {
        p.run_id
            .clone()
            .ok_or_else(|| Error::invalid("query parameters", params, "need a run_id"))
    };
    let json = match query {
        "task_status" => serde_json::to_string(&t.task_status(&StatusFilter {
            stage: p.stage,
            task: p.task,
            status,
            limit: p.limit,
        })?),
        "active_runs" => serde_json::to_string(&t.active_runs()?),
        "history" => serde_json::to_string(&t.history(&HistoryFilter {
            stage: p.stage,
            task: p.task,
            status,
            since: p.since,
            limit: p.limit,
            ..HistoryFilter::default()
        })?),
        "run" => serde_json::to_string(&t.run(&need_run(&p)?)?),
        "subtasks" => serde_json::to_string(&t.subtasks(&need_run(&p)?)?),
        "run_io" => serde_json::to_string(&t.run_io(&need_run(&p)?)?),
        "samples" => serde_json::to_string(&t.samples(&need_run(&p)?)?),
        "task_stats" => serde_json::to_string(&t.task_stats(&crate::query::StatsFilter {
            stage: p.stage,
            task: p.task,
            since: p.since,
            limit: p.limit,
        })?),
        "registered_tasks" => {
            serde_json::to_string(&t.registered_tasks(p.stage.as_deref(), p.name.as_deref().or(p.task.as_deref()))?)
        }
        "stages" => serde_json::to_string(&t.stages()?),
        "run_logs" => serde_json::to_string(&t.run_logs(
            &need_run(&p)?,
            &crate::logs::LogFilter {
                min_level: p.level.as_deref().map(str::parse).transpose()?,
                since: p.since,
                after_id: p.after,
                limit: p.limit,
            },
        )?),
        "item_outcomes" => serde_json::to_string(&t.item_outcomes(
            &need_run(&p)?,
            &crate::logs::OutcomeFilter {
                subtask: p.subtask,
                outcome: p.outcome.as_deref().map(str::parse).transpose()?,
                limit: p.limit,
            },
        )?),
        "item_outcome_counts" => serde_json::to_string(&t.item_outcome_counts(&need_run(&p)?)?),
        "dag" => serde_json::to_string(&t.dag()?),
        "events" => serde_json::to_string(&t.events_after(
            p.after.unwrap_or(0),
            p.run_id.as_deref(),
            p.limit.unwrap_or(1000),
        )?),
        other => {
            return Err(Error::invalid(
                "query",
                other,
                "must be one of task_status, active_runs, history, run, subtasks, run_io, samples, task_stats, registered_tasks, stages, events, run_logs, item_outcomes, item_outcome_counts, dag",
            ))
        }
    };
    json.map_err(|e| Error::storage_refused("json", e))
}

struct ListenerTarget {
    callback: extern "C" fn(*const c_char, *mut c_void),
    user_data: *mut c_void,
}

impl ListenerTarget {
    fn call(&self, event_json: *const c_char) {
        (self.callback)(event_json, self.user_data);
    }
}

// SAFETY: the C caller promises (see `tasker_add_listener`) that the callback and its
// user_data may be used from any thread.
unsafe impl Send for ListenerTarget {}
// SAFETY: as above.
unsafe impl Sync for ListenerTarget {}

/// Calls `callback(event_json, user_data)` with each event this tracker's writes
/// store (in this process), once each and in commit order: transitions, starts,
/// the implicit STARTED -> RUNNING of a run's or subtask's first progress, and the
/// subtasks a finishing run closes. `event_json` is an object with the keys of the
/// events query: `event_id`, `time`, `run_id`, `stage_name`, `task_name`,
/// `subtask_number` (null for the run), `kind` (`run`, `subtask` or `reset`),
/// `old_status`, `new_status`, `message`; valid during the call. The callback runs
/// after the commit on the thread that made it (progress: usually the writer
/// thread) and may call libtasker; while the database is away nothing is reported
/// until the queued writes are stored. Writes an id for `tasker_remove_listener`
/// to `*out_id` (may be NULL).
///
/// # Safety
/// `tracker` is live; `user_data` stays valid until the listener is removed.
#[no_mangle]
pub unsafe extern "C" fn tasker_add_listener(
    tracker: *const tasker_tracker,
    callback: tasker_listener,
    user_data: *mut c_void,
    out_id: *mut u64,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let t = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        let callback = callback.ok_or(FfiError::Null("callback"))?;
        let target = ListenerTarget {
            callback,
            user_data,
        };
        let id = t.add_listener(Arc::new(move |e: &crate::query::EventRow| {
            let json = serde_json::to_string(e).unwrap_or_default();
            if let Ok(c) = CString::new(json) {
                target.call(c.as_ptr());
            }
        }));
        if !out_id.is_null() {
            // SAFETY: checked non-NULL; caller contract.
            unsafe { out_id.write(id) };
        }
        Ok(())
    })
}

/// Removes a listener added with `tasker_add_listener`. Unknown ids are ignored.
///
/// # Safety
/// `tracker` is live.
#[no_mangle]
pub unsafe extern "C" fn tasker_remove_listener(
    tracker: *const tasker_tracker,
    id: u64,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { tasker_tracker::borrow(tracker, "tracker") }?.remove_listener(id);
        Ok(())
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn header_version_matches_cargo() {
        let header = include_str!("../../../include/tasker.h");
        let define = |name: &str| {
            let prefix = format!("#define {name} ");
            header
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("{name} missing from include/tasker.h"))
                .trim()
                .to_string()
        };
        let parts = [
            define("TASKER_VERSION_MAJOR"),
            define("TASKER_VERSION_MINOR"),
            define("TASKER_VERSION_PATCH"),
        ];
        let cargo = [
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR"),
            env!("CARGO_PKG_VERSION_PATCH"),
        ];
        assert_eq!(parts, cargo, "run `cargo run -p gen-header`");
        assert_eq!(
            format!("\"{}\"", env!("CARGO_PKG_VERSION")),
            define("TASKER_VERSION_STRING"),
            "run `cargo run -p gen-header`"
        );
        // SAFETY: tasker_version returns a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(tasker_version()) }
            .to_str()
            .unwrap();
        assert_eq!(s, env!("CARGO_PKG_VERSION"));
        assert!(header.contains(&format!("#define TASKER_ABI_VERSION {TASKER_ABI_VERSION}")));
    }

    #[test]
    fn panics_become_a_status_with_a_message() {
        let st = guard(|| panic!("boom"));
        assert_eq!(st, tasker_status::Panic);
        // SAFETY: tasker_last_error returns a valid thread-local string.
        let msg = unsafe { CStr::from_ptr(tasker_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(msg.contains("boom"), "{msg}");
        let mut buf = [0 as c_char; 8];
        // SAFETY: buf has 8 bytes.
        let n = unsafe { tasker_last_error_message(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, msg.len());
        // SAFETY: always NUL-terminated.
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes().len(), 7);
    }
}
