//! The dashboard server (`tasker serve`, `tasker.serve()` in Python, `run_monitor()`
//! in R, `tasker_serve_start` in C): a read-only dashboard, a JSON API under
//! /api/v1/, live updates by server-sent events, /metrics (Prometheus) and
//! /healthz, on tokio + axum. Built with the `server` feature.
//!
//! [`Server::start`] binds, then serves on a runtime of its own (two worker
//! threads) until [`Server::stop`]; the caller's thread is free meanwhile.
//! The store clients are synchronous (and the PostgreSQL one panics inside a
//! tokio runtime), so every database call runs in `spawn_blocking`.

mod alerts;
mod dag;
mod listen;
mod logs;
mod metrics;
mod pages;
mod session;
pub(crate) mod state;

use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde::Deserialize;

use crate::views::{self, StatusSel};
use crate::{Config, Error, Result, Tracker};
use metrics::MetricsState;
use state::{Filter, Live, Pool};
// The stage summary `tasker status` prints above its table, as the dashboard draws it.
pub use state::{summarize, StageSummary};

/// How a dashboard is served. `ServeOptions::default()` is `tasker serve` without
/// options: 127.0.0.1:8750, no token, polls every 500 ms.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// `HOST:PORT` to listen on (port 0: any free port; [`Server::url`] says which).
    /// Anything but loopback needs a token, or `no_auth`.
    pub bind: String,
    /// Require `Authorization: Bearer TOKEN` (browsers: open /?token=TOKEN once; a
    /// cookie keeps it). `None`: the `TASKER_SERVE_TOKEN` environment variable, if set.
    pub token: Option<String>,
    /// Serve a non-loopback address without authentication (a trusted network, or a
    /// proxy that authenticates).
    pub no_auth: bool,
    /// Milliseconds between database polls for live updates (100..=1000).
    pub poll_ms: u64,
    /// Seconds between full re-reads of the run counts behind /metrics (they also
    /// follow events; at least 10).
    pub metrics_rescan_s: u64,
    /// Title shown on the dashboard.
    pub title: String,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Milliseconds a client has to send a request's headers (and, with TLS, to
    /// finish the handshake) before its connection is closed; idle kept-alive
    /// connections close after it too (100..=600000).
    pub header_timeout_ms: u64,
    /// Connections open at once; past it a new connection is closed at once (1..=100000).
    pub max_connections: usize,
    /// Show the tail of a run's log file on its page (`/api/v1/runs/{id}/log`): the
    /// file named by the run's `log_path` in the database, read on this host.
    pub show_logs: bool,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            bind: "127.0.0.1:8750".into(),
            token: None,
            no_auth: false,
            poll_ms: 500,
            metrics_rescan_s: 600,
            title: "tasker".into(),
            tls_cert: None,
            tls_key: None,
            header_timeout_ms: 10_000,
            max_connections: 512,
            show_logs: false,
        }
    }
}

struct App {
    pool: Pool,
    /// `/healthz`'s own connection: health never waits behind the pool's queries.
    health: Tracker,
    live: Live,
    metrics: Arc<Mutex<MetricsState>>,
    token: Option<String>,
    /// Signs and checks the browser's session cookie (token mode).
    sessions: Option<session::Sessions>,
    /// Loopback without a token: only accept Host headers naming this machine
    /// (a page elsewhere cannot read the dashboard through DNS rebinding).
    check_host: bool,
    backend: &'static str,
    title: String,
    show_logs: bool,
    /// Served over TLS: the session cookie is then `Secure`.
    tls: bool,
    /// Becomes true at shutdown, so that live streams end and the server can stop.
    stopping: tokio::sync::watch::Receiver<bool>,
}

type Shared = Arc<App>;

fn resolve(bind: &str) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = bind
        .to_socket_addrs()
        .map_err(|e| Error::invalid("bind address", bind, &format!("{e} (use HOST:PORT)")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::invalid("bind address", bind, "names no address"));
    }
    Ok(addrs)
}

/// Shorter tokens are refused: a bearer token is the only thing between the
/// network and the dashboard.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

/// The checks every caller gets, whatever its language: the token (given, or from
/// `TASKER_SERVE_TOKEN`) is not empty, a non-loopback address has a token or
/// `no_auth`, the poll interval is in range. Returns the addresses and the token.
fn check(o: &ServeOptions) -> Result<(Vec<SocketAddr>, Option<String>)> {
    let addrs = resolve(&o.bind)?;
    let loopback = addrs.iter().all(|s| s.ip().is_loopback());
    let token = match &o.token {
        Some(t) => Some(t.trim().to_string()),
        None if o.no_auth => None,
        None => std::env::var("TASKER_SERVE_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    };
    if token.as_deref() == Some("") {
        return Err(Error::invalid("token", "", "the token is empty"));
    }
    // The token itself never appears in the message (it may be in a log).
    if let Some(n) = token.as_deref().map(|t| t.chars().count()) {
        if n < MIN_TOKEN_CHARS {
            return Err(Error::invalid(
                "token",
                format!("({n} characters)"),
                &format!(
                    "is too short: a token needs at least {MIN_TOKEN_CHARS} characters \
                     (for example `openssl rand -hex 24`)"
                ),
            ));
        }
    }
    if o.tls_cert.is_some() != o.tls_key.is_some() {
        return Err(Error::invalid(
            "TLS option",
            if o.tls_cert.is_some() {
                "--tls-cert"
            } else {
                "--tls-key"
            },
            "needs the other one too: --tls-cert CERT.pem --tls-key KEY.pem",
        ));
    }
    if !(100..=600_000).contains(&o.header_timeout_ms) {
        return Err(Error::invalid(
            "header timeout (ms)",
            o.header_timeout_ms,
            "must be between 100 and 600000",
        ));
    }
    if !(1..=100_000).contains(&o.max_connections) {
        return Err(Error::invalid(
            "connection limit",
            o.max_connections,
            "must be between 1 and 100000",
        ));
    }
    if !loopback && token.is_none() && !o.no_auth {
        return Err(Error::invalid(
            "bind address",
            &o.bind,
            "refusing to serve it without authentication: it is not a loopback address. \
             Pass --token (or --token-file, or TASKER_SERVE_TOKEN; token= from Python and R) \
             to require a bearer token, or --no-auth (no_auth=) if something else protects it",
        ));
    }
    if !(100..=1000).contains(&o.poll_ms) {
        return Err(Error::invalid(
            "poll interval (ms)",
            o.poll_ms,
            "must be between 100 and 1000",
        ));
    }
    Ok((addrs, token))
}

/// A running dashboard. Dropping it stops it, as [`Server::stop`] does.
#[derive(Debug)]
pub struct Server {
    url: String,
    local: SocketAddr,
    database: String,
    auth: &'static str,
    warning: Option<String>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Server {
    /// Opens the database `config` names (four connections: the poller, the
    /// /metrics loader and two for API calls), reads it once, binds, and serves on
    /// threads of its own. Errors (a refused address, a database that cannot be
    /// read, an address in use) are returned here, before anything is served.
    pub fn start(config: &Config, o: &ServeOptions) -> Result<Server> {
        let (addrs, token) = check(o)?;
        // Every thread the server starts (runtime workers, blocking pool, retention)
        // inherits this mask: SIGINT, SIGTERM, ... keep reaching the program's own
        // threads (R's console, Python's main thread, `tasker serve`'s handler).
        crate::ffi::os::with_signals_blocked(|| Server::start_blocked(config, o, addrs, token))
    }

    fn start_blocked(
        config: &Config,
        o: &ServeOptions,
        addrs: Vec<SocketAddr>,
        token: Option<String>,
    ) -> Result<Server> {
        let loopback = addrs.iter().all(|s| s.ip().is_loopback());
        let tls = match (&o.tls_cert, &o.tls_key) {
            (Some(c), Some(k)) => Some(listen::tls_config(c, k)?),
            _ => None,
        };
        let warning = (token.is_some() && tls.is_none() && !loopback).then(|| {
            format!(
                "warning: serving {} over plain HTTP with a bearer token: anyone on the network \
                 path can read the token. Use --tls-cert/--tls-key, or bind 127.0.0.1 behind a \
                 reverse proxy that terminates TLS (README: \"Serving on a network\")",
                o.bind
            )
        });
        if let Some(w) = &warning {
            log::warn!("{w}");
        }
        let limits = listen::Limits {
            header_timeout: Duration::from_millis(o.header_timeout_ms),
            max_connections: o.max_connections,
            tls,
        };
        let scheme = if limits.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut trackers = Vec::new();
        // The poller, the /metrics loader, two for API queries and one for /healthz.
        for _ in 0..5 {
            trackers.push(Tracker::open(config.clone())?);
        }
        let backend = trackers[0].backend_name();
        let database = trackers[0].config().location.describe();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tasker-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the dashboard's runtime: {e}")))?;
        let (stop_tx, stopping) = tokio::sync::watch::channel(false);
        let poll = Duration::from_millis(o.poll_ms);
        let rescan = Duration::from_secs(o.metrics_rescan_s.max(10));
        let title = o.title.clone();
        let show_logs = o.show_logs;
        let tls = limits.tls.is_some();
        let t = trackers.clone();
        let db = database.clone();
        let started = rt.block_on(async move {
            let metrics = Arc::new(Mutex::new(MetricsState::default()));
            // Retention shares the /metrics loader's connection: both are occasional.
            let (retention, retention_thread) =
                crate::retention::start_stoppable(t[1].clone(), crate::retention::EVERY);
            // The time-based alert rules, when configured: evaluated by the dashboard
            // too, once a minute (claims in the database keep it from double-sending).
            let alerts_thread = crate::alerts::start_evaluator(t[1].clone(), crate::alerts::EVERY);
            let live = state::start(
                t[0].clone(),
                poll,
                Arc::clone(&metrics),
                t[1].clone(),
                rescan,
                retention,
            )
            .await
            .map_err(|e| Error::unavailable(backend, format!("cannot read {db}: {e}")))?;
            let app = Arc::new(App {
                stopping,
                pool: Pool::new(t[2..4].to_vec()),
                health: t[4].clone(),
                live,
                metrics,
                check_host: loopback && token.is_none(),
                sessions: token.as_deref().map(session::Sessions::new),
                token,
                backend,
                title,
                show_logs,
                tls,
            });
            let listener = tokio::net::TcpListener::bind(&addrs[..])
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {addrs:?}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::Config(format!("cannot listen on {addrs:?}: {e}")))?;
            Ok::<_, Error>((app, listener, local, (retention_thread, alerts_thread)))
        });
        let (app, listener, local, retention_thread) = match started {
            Ok(s) => s,
            Err(e) => {
                // Closing a store (the synchronous PostgreSQL client) must not happen on
                // a runtime thread: the runtime goes first.
                drop(rt);
                drop(trackers);
                return Err(e);
            }
        };
        let auth = if app.token.is_some() {
            "bearer token required"
        } else if loopback {
            "loopback only, no authentication"
        } else {
            "NO AUTHENTICATION (no_auth)"
        };
        let stop_rx = stop_tx.subscribe();
        let thread = std::thread::Builder::new()
            .name("tasker-serve".into())
            .spawn(move || {
                let router = router(app);
                rt.block_on(listen::serve(listener, router, limits, stop_rx));
                // The runtime first, then the store handles (see above), then the
                // retention and alert threads (each ends the batch or pass it is in).
                drop(rt);
                drop(trackers);
                drop(retention_thread);
                Ok(())
            })
            .map_err(|e| Error::Config(format!("cannot start the dashboard's thread: {e}")))?;
        let host = match local {
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
            SocketAddr::V4(a) => a.ip().to_string(),
        };
        Ok(Server {
            url: format!("{scheme}://{host}:{}/", local.port()),
            local,
            database,
            auth,
            warning,
            stop: stop_tx,
            thread: Some(thread),
        })
    }

    /// `http://HOST:PORT/` (`https://` with TLS), with the port actually bound.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The database served, as `Location::describe` shows it (no password).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// "bearer token required", "loopback only, no authentication" or "NO AUTHENTICATION (no_auth)".
    pub fn auth(&self) -> &'static str {
        self.auth
    }

    /// What the caller should tell the user before serving (a bearer token over
    /// plain HTTP on a non-loopback address), if anything.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Whether it still serves (false once stopped, or if it stopped by itself).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Finishes the requests in progress, ends live streams, closes the
    /// connections and joins the server's threads. Stopping twice is a no-op.
    pub fn stop(&mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(Error::Config("the dashboard server panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn router(app: Shared) -> Router {
    let guarded = Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/stages", get(api_stages))
        .route("/api/v1/tasks", get(api_tasks))
        .route("/api/v1/active", get(api_active))
        .route("/api/v1/runs", get(api_runs))
        .route("/api/v1/runs/{id}", get(api_run))
        .route("/api/v1/runs/{id}/logs", get(logs::api_run_logs))
        .route("/api/v1/runs/{id}/items", get(logs::api_run_items))
        .route("/api/v1/runs/{id}/log", get(pages::api_run_log))
        .route("/api/v1/stats", get(api_stats))
        .route("/api/v1/dag", get(dag::api_dag))
        .route("/api/v1/alerts", get(alerts::api_alerts))
        .route("/api/v1/events", get(api_events))
        .route("/api/v1/timeline", get(pages::api_timeline))
        .route("/api/v1/history", get(pages::api_history))
        .route("/api/v1/grid", get(pages::api_grid))
        .route("/api/v1/stream", get(api_stream))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/favicon.svg", get(favicon))
        .merge(guarded)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), host_check))
        .layer(middleware::from_fn(catch_panics))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

// ---------------------------------------------------------------- security

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (*x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == session::COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The credentials of an `Authorization` header: the scheme is case-insensitive
/// (RFC 9110 §11.1), the token after it is taken as sent, less surrounding blanks.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, rest) = v.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim())
}

/// Whether the request carries the token or a valid session (always true without a token).
fn authorized(app: &App, headers: &HeaderMap) -> bool {
    let (Some(token), Some(sessions)) = (app.token.as_deref(), app.sessions.as_ref()) else {
        return true;
    };
    bearer(headers).is_some_and(|b| same(b.as_bytes(), token.as_bytes()))
        || cookie_session(headers).is_some_and(|c| sessions.valid(&c, Utc::now().timestamp()))
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let (Some(token), Some(sessions)) = (app.token.as_deref(), app.sessions.as_ref()) else {
        return next.run(req).await;
    };
    if authorized(&app, req.headers()) {
        return next.run(req).await;
    }
    // A browser opens /?token=... once: it gets a signed session in a cookie (not the
    // token) and the token leaves the URL.
    if req.uri().path() == "/" {
        if let Some(q) = query_token(req.uri()) {
            if same(q.trim().as_bytes(), token.as_bytes()) {
                let value = sessions.issue(Utc::now().timestamp());
                let cookie = format!(
                    "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                    session::COOKIE,
                    session::LIFETIME_S,
                    if app.tls { "; Secure" } else { "" }
                );
                let mut res = (StatusCode::SEE_OTHER, "").into_response();
                res.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/"));
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    res.headers_mut().insert(header::SET_COOKIE, v);
                }
                return res;
            }
        }
    }
    let mut res = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "authentication required: send Authorization: Bearer <token> (in a browser, open /?token=<token> once)"
        })),
    )
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tasker\""),
    );
    res
}

async fn host_check(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if app.check_host {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        let ok = name.is_empty()
            || name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !ok {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this dashboard only answers to localhost (bind elsewhere with --token)",
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if api {
        // Run data must not linger in a browser's or a proxy's cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

// ---------------------------------------------------------------- errors

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let code = match e.kind() {
            crate::ErrorKind::NotFound => StatusCode::NOT_FOUND,
            crate::ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            crate::ErrorKind::Storage => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, crate::config::redact(&e.to_string()))
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// Runs a database call on a blocking thread with one of the pool's trackers.
async fn blocking<T, F>(app: &App, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Tracker) -> Result<T, ApiError> + Send + 'static,
{
    let t = app.pool.get();
    tokio::task::spawn_blocking(move || f(&t))
        .await
        .map_err(|_| internal_error())?
}

/// What a client sees when a handler panics: no panic text (it may hold paths or
/// data), which goes to the server's log instead.
fn internal_error() -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (details are in the server's log)".into(),
    )
}

/// Turns a panic in a handler into a 500 without its text (hyper would otherwise
/// drop the connection).
async fn catch_panics(req: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res,
        Err(_) => internal_error().into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page".into())
}

// ---------------------------------------------------------------- pages

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

async fn index(State(app): State<Shared>) -> Response {
    let title = views::html_escape(&app.title);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX_HTML.replace("{{TITLE}}", &title),
    )
        .into_response()
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../../assets/favicon.svg"),
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

// ---------------------------------------------------------------- API

fn json_text(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn api_status(
    State(app): State<Shared>,
    Query(f): Query<Filter>,
) -> Result<Response, ApiError> {
    f.check().map_err(bad)?;
    let snap = app.live.snapshot.borrow().clone();
    if f.is_empty() {
        return Ok(json_text(snap.json.clone()));
    }
    Ok(Json(f.apply(&snap.payload)).into_response())
}

async fn api_stages(
    State(app): State<Shared>,
    Query(f): Query<Filter>,
) -> Result<Response, ApiError> {
    f.check().map_err(bad)?;
    let snap = app.live.snapshot.borrow().clone();
    Ok(Json(f.apply(&snap.payload).stages).into_response())
}

async fn api_active(
    State(app): State<Shared>,
    Query(f): Query<Filter>,
) -> Result<Response, ApiError> {
    f.check().map_err(bad)?;
    let snap = app.live.snapshot.borrow().clone();
    Ok(Json(f.apply(&snap.payload).active).into_response())
}

#[derive(Debug, Deserialize)]
struct TasksQuery {
    stage: Option<String>,
}

async fn api_tasks(
    State(app): State<Shared>,
    Query(q): Query<TasksQuery>,
) -> Result<Response, ApiError> {
    let rows = blocking(&app, move |t| {
        Ok(t.registered_tasks(q.stage.as_deref().filter(|s| !s.is_empty()), None)?)
    })
    .await?;
    Ok(Json(rows).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct RunsQuery {
    stage: Option<String>,
    task: Option<String>,
    status: Option<String>,
    host: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

fn when(s: &Option<String>, what: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match s.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => views::parse_since(v, Utc::now())
            .map(Some)
            .map_err(|e| bad(format!("{what}: {e}"))),
    }
}

async fn api_runs(
    State(app): State<Shared>,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let blank = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (stage, task, host, since) = (blank(q.stage), blank(q.task), blank(q.host), blank(q.since));
    let status: Vec<String> = blank(q.status).into_iter().collect();
    let sel = StatusSel::parse(&status).map_err(bad)?;
    let since = when(&since, "since")?;
    let rows = blocking(&app, move |t| {
        Ok(views::history_rows(
            t,
            &stage,
            &task,
            &sel,
            &host,
            since,
            Some(limit),
        )?)
    })
    .await?;
    Ok(Json(rows).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct StatsQuery {
    stage: Option<String>,
    task: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// Per task statistics from history (the task page), as `tasker stats --json`.
async fn api_stats(
    State(app): State<Shared>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let blank = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = crate::StatsFilter {
        since: when(&q.since, "since")?,
        stage: blank(q.stage),
        task: blank(q.task),
        limit: q.limit.filter(|n| *n > 0),
    };
    let rows = blocking(&app, move |t| Ok(t.task_stats(&filter)?)).await?;
    Ok(Json(rows).into_response())
}

async fn api_run(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let d = blocking(&app, move |t| Ok(views::run_detail(t, &id)?)).await?;
    Ok(Json(d).into_response())
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<i64>,
    run_id: Option<String>,
    limit: Option<usize>,
}

async fn api_events(
    State(app): State<Shared>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows = blocking(&app, move |t| {
        Ok(t.events_after(q.after.unwrap_or(0), q.run_id.as_deref(), limit)?)
    })
    .await?;
    Ok(Json(rows).into_response())
}

async fn api_stream(State(app): State<Shared>) -> impl IntoResponse {
    // Proxies (nginx) must pass events on at once rather than buffer them.
    (
        [(
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        event_stream(&app),
    )
}

fn event_stream(app: &App) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let snap_rx = app.live.snapshot.clone();
    let ev_rx = app.live.events.subscribe();
    let stop = app.stopping.clone();
    let s = stream::unfold(
        (snap_rx, ev_rx, stop, true),
        |(mut snap_rx, mut ev_rx, mut stop, first)| async move {
            if first {
                let snap = snap_rx.borrow_and_update().clone();
                let ev = status_event(&snap);
                return Some((Ok(ev), (snap_rx, ev_rx, stop, false)));
            }
            loop {
                if *stop.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = stop.changed() => return None,
                    changed = snap_rx.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        let snap = snap_rx.borrow_and_update().clone();
                        return Some((Ok(status_event(&snap)), (snap_rx, ev_rx, stop, false)));
                    }
                    ev = ev_rx.recv() => {
                        match ev {
                            Ok(list) => {
                                let data = serde_json::to_string(&*list).unwrap_or_default();
                                let e = Event::default().event("events").data(data);
                                return Some((Ok(e), (snap_rx, ev_rx, stop, false)));
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return None,
                        }
                    }
                }
            }
        },
    );
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn status_event(snap: &state::Snapshot) -> Event {
    match &snap.error {
        Some(e) => Event::default()
            .event("db_error")
            .data(serde_json::json!({ "error": crate::config::redact(e) }).to_string()),
        None => Event::default()
            .event("status")
            .id(snap.version.to_string())
            .data(snap.json.clone()),
    }
}

async fn metrics_text(State(app): State<Shared>) -> Response {
    let snap = app.live.snapshot.borrow().clone();
    let poll_seconds = app
        .live
        .poll_micros
        .load(std::sync::atomic::Ordering::Relaxed) as f64
        / 1e6;
    let body = metrics::render(
        &app.metrics,
        &snap.payload,
        snap.error.is_none(),
        app.backend,
        poll_seconds,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let backend = app.backend;
    // In token mode a caller without it learns only up or down: where the database
    // is and which version runs are details for those who may read the dashboard.
    let details = authorized(&app, &headers);
    let t = app.health.clone();
    let res = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        t.stages()?;
        Ok((
            t.config().location.describe(),
            started.elapsed().as_secs_f64() * 1000.0,
        ))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    .and_then(|r: Result<_>| r.map_err(ApiError::from));
    let snap_age = app.live.snapshot.borrow().taken.elapsed().as_secs_f64();
    let poll_ms = app
        .live
        .poll_micros
        .load(std::sync::atomic::Ordering::Relaxed) as f64
        / 1000.0;
    match res {
        Ok(_) if !details => {
            (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))).into_response()
        }
        Err(_) if !details => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable" })),
        )
            .into_response(),
        Ok((db, ms)) => (
            StatusCode::OK,
            Json(serde_json::json!({
                "status": "ok", "reachable": true, "backend": backend, "database": db,
                "query_ms": ms, "snapshot_age_seconds": snap_age, "last_poll_ms": poll_ms,
                "version": env!("CARGO_PKG_VERSION"),
            })),
        )
            .into_response(),
        Err(ApiError(_, e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable", "reachable": false, "backend": backend, "error": e,
                "snapshot_age_seconds": snap_age,
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn non_loopback_needs_a_token() {
        assert!(resolve("127.0.0.1:0").unwrap()[0].ip().is_loopback());
        assert!(!resolve("0.0.0.0:0").unwrap()[0].ip().is_loopback());
        assert_eq!(percent_decode("a%2Bb+c"), "a+b c");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&h("BEARER abc")), Some("abc"));
        assert_eq!(bearer(&h("Bearerabc")), None);
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bear")), None);
    }

    #[test]
    fn short_tokens_are_refused_without_showing_them() {
        let o = |t: &str| ServeOptions {
            token: Some(t.into()),
            ..ServeOptions::default()
        };
        let e = check(&o("short-secret")).unwrap_err().to_string();
        assert!(e.contains("too short") && e.contains("16"), "{e}");
        assert!(
            !e.contains("short-secret"),
            "the token is not in the message: {e}"
        );
        assert!(check(&o("sixteen-chars-ok")).is_ok());
    }
}
