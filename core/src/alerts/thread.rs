//! The evaluator of long-running commands (`tasker serve`, `tasker watch`): one
//! pass of the time-based rules now and every [`EVERY`], on a thread of its own
//! (deliveries block for up to their timeout), while the command runs.

use std::time::Duration;

use chrono::Utc;

use crate::periodic::Periodic;
use crate::Tracker;

/// How often a long-running command evaluates the alert rules.
pub const EVERY: Duration = Duration::from_secs(60);

/// Stops the evaluator thread when dropped (after the pass it is making).
pub type EvaluatorThread = Periodic;

/// Starts evaluating the configured alert rules every `every`; `None` when the
/// configuration has none.
pub fn start_evaluator(t: Tracker, every: Duration) -> Option<EvaluatorThread> {
    let config = t.config().alerts.clone()?;
    let pass = move || {
        if let Err(e) = super::evaluate(&t, &config, Utc::now()) {
            log::warn!("tasker: alert rules not evaluated this time: {e}");
        }
    };
    Periodic::spawn("tasker-alerts", every, pass)
        .map_err(|e| log::warn!("tasker: cannot start the alert evaluator: {e}"))
        .ok()
}
