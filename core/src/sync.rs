//! Small helpers for the core's locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, also after a thread panicked while holding it: tracking state is
/// plain data that stays consistent (every update is a single assignment), and
/// a panic elsewhere must never turn tracking calls into panics.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
