//! `tasker serve`: the core's dashboard server (`tasker::serve`, the one the Python,
//! R and C packages start too) until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Args;
use tasker::serve::{ServeOptions, Server};

use crate::{CliResult, Failure, Global};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token or --no-auth.
    #[arg(long, default_value = "127.0.0.1:8750")]
    pub bind: String,
    /// Require `Authorization: Bearer TOKEN` (browsers: open /?token=TOKEN once; a cookie keeps it).
    #[arg(long, env = "TASKER_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from this file (keeps it out of the process list).
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Serve a non-loopback address without authentication (for a trusted network or a proxy that authenticates).
    #[arg(long, conflicts_with_all = ["token", "token_file"])]
    pub no_auth: bool,
    /// Milliseconds between database polls for live updates (100..=1000).
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Seconds between full re-reads of the run counts behind /metrics (they also follow events).
    #[arg(long, default_value_t = 600)]
    pub metrics_rescan: u64,
    /// Title shown on the dashboard.
    #[arg(long, default_value = "tasker")]
    pub title: String,
    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send its request headers (and finish a TLS handshake) before it is cut off.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Connections served at once; more are closed on arrival.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Show the tail of each run's log file on its page (the file its log_path names, on this host; read-only).
    #[arg(long)]
    pub show_logs: bool,
}

pub fn serve(g: &Global, a: ServeArgs) -> CliResult {
    let token = match (&a.token, &a.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| Failure::usage(format!("--token-file {}: {e}", f.display())))?,
        ),
        _ => None,
    };
    if !(a.header_timeout.is_finite() && (0.1..=600.0).contains(&a.header_timeout)) {
        return Err(Failure::usage(format!(
            "--header-timeout {}: must be between 0.1 and 600 seconds",
            a.header_timeout
        )));
    }
    let options = ServeOptions {
        bind: a.bind,
        token,
        no_auth: a.no_auth,
        poll_ms: a.poll_ms,
        metrics_rescan_s: a.metrics_rescan,
        title: a.title,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        header_timeout_ms: (a.header_timeout * 1000.0).round() as u64,
        max_connections: a.max_connections,
        show_logs: a.show_logs,
    };
    let config = g.config()?;
    let mut server = Server::start(&config, &options).map_err(|e| {
        if e.kind() == tasker::ErrorKind::InvalidArgument {
            Failure::usage(e.to_string())
        } else {
            Failure::from(e)
        }
    })?;
    // Ctrl-C or SIGTERM (systemd, docker stop, kill): finish requests, then leave.
    // The handlers are in place before the address is printed: whoever read it
    // may signal at once, and a signal before them would kill the process.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = {
        let _in_runtime = rt.enter();
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    if let Some(w) = server.warning() {
        eprintln!("{w}");
    }
    println!(
        "tasker dashboard on {}  ({}; {})",
        server.url(),
        server.database(),
        server.auth()
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    rt.block_on(async {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    });
    server.stop()?;
    Ok(())
}
