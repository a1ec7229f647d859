//! A background thread that does one thing now and then every interval until its
//! handle is dropped (the retention of long-running commands, the alert
//! evaluator): dropping the handle wakes the thread, which ends after the pass it
//! is making, and waits for it.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Stops the thread when dropped.
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Periodic {
    /// Runs `pass` on a new thread called `name`, now and every `every`.
    pub(crate) fn spawn(
        name: &str,
        every: Duration,
        mut pass: impl FnMut() + Send + 'static,
    ) -> std::io::Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flags = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(name.into());
        // Signals are the program's, never this thread's (see `with_signals_blocked`).
        let handle = crate::ffi::os::with_signals_blocked(|| {
            thread.spawn(move || {
                let (flag, wake) = &*flags;
                loop {
                    pass();
                    let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
                    let (guard, _) = wake
                        .wait_timeout_while(guard, every, |stopped| !*stopped)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *guard {
                        return;
                    }
                }
            })
        })?;
        Ok(Periodic {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
