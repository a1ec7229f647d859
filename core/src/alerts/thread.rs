//! The evaluator of long-running commands (`tasker serve`, `tasker watch`): one
//! pass of the time-based rules now and every [`EVERY`], on a thread of its own
//! (deliveries block for up to their timeout), while the command runs.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;

use crate::Tracker;

/// How often a long-running command evaluates the alert rules.
pub const EVERY: Duration = Duration::from_secs(60);

/// Stops the evaluator thread when dropped (after the pass it is making).
#[derive(Debug)]
pub struct EvaluatorThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for EvaluatorThread {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts evaluating the configured alert rules every `every`; `None` when the
/// configuration has none.
pub fn start_evaluator(t: Tracker, every: Duration) -> Option<EvaluatorThread> {
    let config = t.config().alerts.clone()?;
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let flags = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("tasker-alerts".into())
        .spawn(move || {
            let (flag, wake) = &*flags;
            loop {
                if let Err(e) = super::evaluate(&t, &config, Utc::now()) {
                    log::warn!("tasker: alert rules not evaluated this time: {e}");
                }
                let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
                let (guard, _) = wake
                    .wait_timeout_while(guard, every, |stopped| !*stopped)
                    .unwrap_or_else(PoisonError::into_inner);
                if *guard {
                    return;
                }
            }
        });
    match spawned {
        Ok(h) => Some(EvaluatorThread {
            stop,
            handle: Some(h),
        }),
        Err(e) => {
            log::warn!("tasker: cannot start the alert evaluator: {e}");
            None
        }
    }
}
