//! The dashboard server from Python (`tasker.serve()`): the core's server, the one
//! `tasker serve` runs, on threads of its own until `stop()`.

use std::sync::Mutex;

use pyo3::prelude::*;
use tasker::serve::{ServeOptions, Server};

use crate::errors::CoreError;
use crate::{io, NativeTracker};

/// A running dashboard (`tasker.Dashboard` wraps it).
#[derive(Debug)]
#[pyclass(frozen, module = "tasker._tasker", name = "DashboardServer")]
pub struct DashboardServer {
    server: Mutex<Option<Server>>,
    url: String,
    database: String,
    auth: &'static str,
}

#[pymethods]
impl DashboardServer {
    /// `http://HOST:PORT/`, with the port actually bound.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The database served (never with a password).
    #[getter]
    fn database(&self) -> &str {
        &self.database
    }

    /// How requests are authenticated.
    #[getter]
    fn auth(&self) -> &'static str {
        self.auth
    }

    /// Whether it still serves.
    #[getter]
    fn running(&self) -> bool {
        self.lock().as_ref().is_some_and(Server::is_running)
    }

    /// Stops serving and joins the server's threads; stopping twice does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let server = self.lock().take();
        match server {
            Some(mut s) => io(py, move || s.stop()).map_err(|e| CoreError(e).into()),
            None => Ok(()),
        }
    }
}

impl DashboardServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Server>> {
        self.server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Serves the dashboard of `tracker`'s database on `bind` (HOST:PORT); the refusals
/// are those of `tasker serve` (a non-loopback address needs a token or `no_auth`).
#[pyfunction]
#[pyo3(signature = (tracker, bind, *, token=None, no_auth=false, poll_ms=500, title="tasker".to_string()))]
pub fn serve_start(
    py: Python<'_>,
    tracker: &NativeTracker,
    bind: String,
    token: Option<String>,
    no_auth: bool,
    poll_ms: u64,
    title: String,
) -> PyResult<DashboardServer> {
    let options = ServeOptions {
        bind,
        token,
        no_auth,
        poll_ms,
        title,
        ..ServeOptions::default()
    };
    let config = tracker.inner.config().clone();
    // Signals stay blocked in the server's threads (started from here): SIGINT and
    // SIGTERM keep reaching Python's main thread.
    let server = io(py, move || Server::start(&config, &options)).map_err(CoreError)?;
    Ok(DashboardServer {
        url: server.url().to_string(),
        database: server.database().to_string(),
        auth: server.auth(),
        server: Mutex::new(Some(server)),
    })
}
