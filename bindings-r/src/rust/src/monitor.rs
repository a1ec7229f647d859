//! The dashboard from R: `run_monitor()` starts the core's server (the one `tasker
//! serve` runs) on threads of its own and returns at once, so the R session stays
//! usable; `stop_monitor()` stops it. One monitor per R session.

use std::cell::RefCell;

use extendr_api::prelude::*;
use tasker::serve::{ServeOptions, Server};

use crate::{out, r_flag, r_str, tracker, TkResult};

thread_local! {
    // R calls arrive on its main thread only.
    static MONITOR: RefCell<Option<Server>> = const { RefCell::new(None) };
}

fn describe(s: &Server) -> Robj {
    list!(
        url = s.url(),
        database = s.database(),
        auth = s.auth(),
        running = s.is_running()
    )
    .into()
}

/// Starts the dashboard on `bind` for the open database (a running monitor is
/// stopped first); the checks are those of `tasker serve`.
/// @keywords internal
#[extendr]
fn tk_monitor_start(bind: Robj, token: Robj, no_auth: Robj, title: Robj) -> Robj {
    out((|| -> TkResult<Robj> {
        let t = tracker()?;
        let mut o = ServeOptions::default();
        if let Some(b) = r_str("bind", &bind)? {
            o.bind = b;
        }
        o.token = r_str("token", &token)?;
        o.no_auth = r_flag("no_auth", &no_auth)?;
        if let Some(x) = r_str("title", &title)? {
            o.title = x;
        }
        if let Some(mut old) = MONITOR.with(|m| m.borrow_mut().take()) {
            old.stop()?;
        }
        let server = Server::start(t.config(), &o)?;
        let d = describe(&server);
        MONITOR.with(|m| *m.borrow_mut() = Some(server));
        Ok(d)
    })())
}

/// Stops the monitor; TRUE if one was running.
/// @keywords internal
#[extendr]
fn tk_monitor_stop() -> Robj {
    out((|| -> TkResult<bool> {
        match MONITOR.with(|m| m.borrow_mut().take()) {
            Some(mut s) => {
                s.stop()?;
                Ok(true)
            }
            None => Ok(false),
        }
    })())
}

/// The running monitor (url, database, auth, running), or NULL.
/// @keywords internal
#[extendr]
fn tk_monitor_info() -> Robj {
    MONITOR.with(|m| m.borrow().as_ref().map_or(Robj::from(()), describe))
}

extendr_module! {
    mod monitor;
    fn tk_monitor_start;
    fn tk_monitor_stop;
    fn tk_monitor_info;
}
