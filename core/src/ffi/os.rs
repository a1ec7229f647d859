//! The calls into the C library that the core needs besides the C ABI itself.
//! Kept here, next to the ABI, so that `unsafe` lives in one module tree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Bumped in every forked child by the `pthread_atfork` hook below.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The fork generation of this process: 0 in the original process, n after n forks.
#[inline]
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

#[cfg(unix)]
extern "C" fn in_forked_child() {
    // Only an atomic add: async-signal-safe, as a fork hook must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Registers the fork hook once per process.
pub(crate) fn install_fork_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        #[cfg(unix)]
        // SAFETY: pthread_atfork only records the function pointers; the child
        // handler is a plain `extern "C" fn` that touches one static atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_forked_child));
        }
    });
}

/// Runs `spawn` with the asynchronous signals blocked, so that the thread it starts
/// inherits that mask: a process-directed signal (SIGINT, SIGTERM, SIGCHLD, ...) then
/// reaches one of the program's own threads, as R, Python and C programs with
/// handlers expect, never tasker's writer. Faults (SIGSEGV, ...) stay deliverable.
pub(crate) fn with_signals_blocked<T>(spawn: impl FnOnce() -> T) -> T {
    #[cfg(unix)]
    // SAFETY: sigset_t is plain data that sigfillset/sigdelset initialise;
    // pthread_sigmask only changes the calling thread's mask, restored below.
    unsafe {
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut blocked);
        for fault in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut blocked, fault);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut before);
        let spawned = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        spawned
    }
    #[cfg(not(unix))]
    spawn()
}
