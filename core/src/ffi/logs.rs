//! Run logs and item outcomes from C (see `crate::logs`). Each call only
//! touches memory: the writer thread stores the line with the next progress
//! write, so logging never waits for the database.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};

use super::{guard, opt_str, req_str, run_ref, tasker_run, tasker_status, FfiError};
use crate::logs::LogLevel;

/// A message as text: bytes that are not UTF-8 (a Latin-1 file name, a cut
/// multi-byte character) become U+FFFD rather than losing the line.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn lossy<'a>(p: *const c_char, what: &'static str) -> Result<Cow<'a, str>, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: per this function's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    // One validating pass for text that is UTF-8 (the lossy decoder is slower
    // even when it replaces nothing).
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    })
}

/// The level named by `p`: the four names as written in the header without
/// a UTF-8 pass (C callers pass one on every call), anything else as
/// `LogLevel::from_str` reads it.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn level(p: *const c_char) -> Result<LogLevel, FfiError> {
    if !p.is_null() {
        // SAFETY: per this function's contract.
        match unsafe { CStr::from_ptr(p) }.to_bytes() {
            b"info" => return Ok(LogLevel::Info),
            b"debug" => return Ok(LogLevel::Debug),
            b"warn" => return Ok(LogLevel::Warn),
            b"error" => return Ok(LogLevel::Error),
            _ => {}
        }
    }
    // SAFETY: per this function's contract.
    Ok(unsafe { req_str(p, "level") }?.parse()?)
}

/// Logs `message` on the run with `level` (`"debug"`, `"info"`, `"warn"` or
/// `"warning"`, `"error"`, in any case; anything else is
/// `TASKER_STATUS_INVALID_ARGUMENT` naming it). Memory only: the writer thread
/// stores the line (with its time, host and process) with the next progress
/// write. Bytes that are not UTF-8 become U+FFFD; a line over 8 KB is cut and
/// says so; a run keeps its newest `tracking.max_log_lines` lines. Thread-safe.
///
/// # Safety
/// `run` is NULL or live; `level` and `message` are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_log(
    run: *const tasker_run,
    level: *const c_char,
    message: *const c_char,
) -> tasker_status {
    // SAFETY: caller contract.
    guard(|| unsafe { log(run, None, level, message) })
}

/// `tasker_log` about subtask `number` of the run.
///
/// # Safety
/// As `tasker_log`.
#[no_mangle]
pub unsafe extern "C" fn tasker_log_subtask(
    run: *const tasker_run,
    number: u32,
    level: *const c_char,
    message: *const c_char,
) -> tasker_status {
    // SAFETY: caller contract.
    guard(|| unsafe { log(run, Some(number), level, message) })
}

/// # Safety
/// As `tasker_log`.
unsafe fn log(
    run: *const tasker_run,
    number: Option<u32>,
    level: *const c_char,
    message: *const c_char,
) -> Result<(), FfiError> {
    // SAFETY: caller contract for every pointer.
    let r = unsafe { run_ref(run) }?;
    // SAFETY: caller contract.
    let level = unsafe { self::level(level) }?;
    // SAFETY: caller contract.
    let message = unsafe { lossy(message, "message") }?;
    Ok(r.log(level, &message, number)?)
}

/// Records that item `key` of subtask `number` failed, with `error` (may be
/// NULL). Memory only, like `tasker_log`. The first 1,000 per subtask are kept
/// with their key and error; all are counted. Thread-safe.
///
/// # Safety
/// `run` is NULL or live; `key` is NUL-terminated; `error` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tasker_item_failed(
    run: *const tasker_run,
    number: u32,
    key: *const c_char,
    error: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: caller contract.
        let key = unsafe { lossy(key, "key") }?;
        // SAFETY: caller contract.
        let error = unsafe { opt_str(error, "error") }?;
        Ok(r.item_outcome(number, crate::logs::Outcome::Failed, &key, error)?)
    })
}

/// Records that item `key` of subtask `number` was skipped, with `reason` (may
/// be NULL). As `tasker_item_failed`.
///
/// # Safety
/// As `tasker_item_failed`.
#[no_mangle]
pub unsafe extern "C" fn tasker_item_skipped(
    run: *const tasker_run,
    number: u32,
    key: *const c_char,
    reason: *const c_char,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract for every pointer.
        let r = unsafe { run_ref(run) }?;
        // SAFETY: caller contract.
        let key = unsafe { lossy(key, "key") }?;
        // SAFETY: caller contract.
        let reason = unsafe { opt_str(reason, "reason") }?;
        Ok(r.item_skipped(number, &key, reason)?)
    })
}
