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
/// Every thread the core starts is started this way; bindings use it for theirs.
pub fn with_signals_blocked<T>(spawn: impl FnOnce() -> T) -> T {
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

/// The login name of this process's real user from the password database (NSS:
/// files, LDAP, ...), for when the environment names no user.
pub(crate) fn current_user_name() -> Option<String> {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail. getpwuid_r writes only into `entry` and
        // `buf`, which outlive the call; `found` is NULL or points at `entry`,
        // whose strings point into `buf`, read before `buf` is dropped.
        unsafe {
            let uid = libc::getuid();
            let mut entry: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let mut buf = vec![0 as libc::c_char; 4096];
            loop {
                let rc = libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found);
                if rc == libc::ERANGE && buf.len() < 1 << 20 {
                    buf.resize(buf.len() * 4, 0);
                    continue;
                }
                if rc != 0 || found.is_null() || entry.pw_name.is_null() {
                    return None;
                }
                let name = std::ffi::CStr::from_ptr(entry.pw_name)
                    .to_string_lossy()
                    .into_owned();
                return (!name.is_empty()).then_some(name);
            }
        }
    }
    #[cfg(not(unix))]
    None
}
