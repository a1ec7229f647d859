//! The dashboard server from C: `tasker_serve_start` serves the database of a tracker
//! on threads of its own (the server of `tasker serve`, `crate::serve`) until
//! `tasker_serve_stop`. These functions exist in every build, so the ABI does not
//! depend on Cargo features; without the `server` feature they answer
//! `TASKER_STATUS_UNSUPPORTED`.

use std::ffi::c_char;

use super::{guard, opt_str, tasker_status, tasker_tracker, Castable, FfiError};
#[cfg(feature = "server")]
use super::{to_c_string, write_out};

/// A running dashboard server (opaque), from `tasker_serve_start`. Thread-safe.
#[derive(Debug)]
pub struct tasker_server {
    _private: [u8; 0],
}

#[cfg(feature = "server")]
impl Castable for tasker_server {
    type Rust = crate::serve::Server;
}

/// Serves the dashboard, its JSON API, `/metrics` and `/healthz` for the database of
/// `tracker` (the server opens connections of its own) and returns at once; it runs
/// until `tasker_serve_stop`. `bind` is `HOST:PORT`, NULL for `127.0.0.1:8750`; port 0
/// takes any free port (`tasker_serve_url` tells which).
///
/// As with `tasker serve`: an address that is not loopback needs a bearer token,
/// taken from the `TASKER_SERVE_TOKEN` environment variable; without one such an
/// address is refused with `TASKER_STATUS_INVALID_ARGUMENT`. An address in use or a
/// database that cannot be read fails here too, before anything is served. A build
/// without the `server` feature returns `TASKER_STATUS_UNSUPPORTED`.
///
/// # Safety
/// `tracker` is a live tracker; `bind` is NULL or a NUL-terminated string; `out` is
/// valid for one write. On success `*out` is released with `tasker_serve_stop`.
#[no_mangle]
pub unsafe extern "C" fn tasker_serve_start(
    tracker: *const tasker_tracker,
    bind: *const c_char,
    out: *mut *mut tasker_server,
) -> tasker_status {
    guard(|| {
        // SAFETY: caller contract.
        let tracker = unsafe { tasker_tracker::borrow(tracker, "tracker") }?;
        // SAFETY: caller contract.
        let bind = unsafe { opt_str(bind, "bind") }?;
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        #[cfg(feature = "server")]
        {
            let mut options = crate::serve::ServeOptions::default();
            if let Some(b) = bind {
                options.bind = b.to_string();
            }
            let server = crate::serve::Server::start(tracker.config(), &options)?;
            // SAFETY: checked non-NULL above.
            unsafe { write_out(out, tasker_server::boxed(server), "out") }
        }
        #[cfg(not(feature = "server"))]
        {
            let _ = (tracker, bind);
            Err(FfiError::Unsupported(
                "the dashboard server (feature \"server\")",
            ))
        }
    })
}

/// The server's address, `http://HOST:PORT/`, with the port actually bound. `*out`
/// is freed with `tasker_string_free`.
///
/// # Safety
/// `server` is a live server from `tasker_serve_start`; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn tasker_serve_url(
    server: *const tasker_server,
    out: *mut *mut c_char,
) -> tasker_status {
    guard(|| {
        #[cfg(feature = "server")]
        {
            // SAFETY: caller contract.
            let server = unsafe { tasker_server::borrow(server, "server") }?;
            // SAFETY: caller contract.
            unsafe { write_out(out, to_c_string(server.url().to_string()), "out") }
        }
        #[cfg(not(feature = "server"))]
        {
            let _ = (server, out);
            Err(FfiError::Unsupported(
                "the dashboard server (feature \"server\")",
            ))
        }
    })
}

/// Stops the server (requests in progress finish, live streams end, its connections
/// close, its threads are joined) and frees it. NULL is ignored. The handle must not
/// be used afterwards.
///
/// # Safety
/// `server` is NULL or from `tasker_serve_start`, not yet stopped.
#[no_mangle]
pub unsafe extern "C" fn tasker_serve_stop(server: *mut tasker_server) -> tasker_status {
    guard(|| {
        if server.is_null() {
            return Ok(());
        }
        #[cfg(feature = "server")]
        {
            // SAFETY: caller contract.
            let result = unsafe { tasker_server::borrow_mut(server, "server") }?.stop();
            // SAFETY: caller contract; not used after this.
            unsafe { tasker_server::free(server) };
            Ok(result?)
        }
        #[cfg(not(feature = "server"))]
        {
            // No build without the server feature hands out a server.
            Err(FfiError::Unsupported(
                "the dashboard server (feature \"server\")",
            ))
        }
    })
}
