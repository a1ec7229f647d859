//! The dashboard's accept loop: plain HTTP or TLS (rustls), a cap on open
//! connections, and deadlines for a client to finish its TLS handshake and its
//! request headers.
//!
//! `axum::serve` has neither a header deadline nor a connection cap: 2,000
//! connections that sent half a request line stayed open for 35 s and more. Here
//! each connection holds a permit of a semaphore; past the cap a new connection is
//! closed at once (the listener keeps accepting, so the kernel's backlog never
//! fills with them). hyper's header-read timeout closes a connection that has not
//! sent complete headers in time, and it also runs between the requests of a
//! kept-alive connection, so idle connections are bounded by it too.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::{Error, Result};

/// How long a stopping server waits for requests in progress (live streams end
/// at once) before it closes what is left.
const DRAIN: Duration = Duration::from_secs(10);

pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Reads a PEM certificate chain and private key into a rustls configuration.
/// Errors name the file and what is wrong with it (never the key's contents).
pub(crate) fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let bad =
        |what: &str, p: &Path, why: String| Error::invalid(what, p.display().to_string(), &why);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("TLS certificate file", cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("TLS certificate file", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "TLS certificate file",
            cert,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let pkey = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        bad(
            "TLS key file",
            key,
            format!("{e} (a PEM private key: PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, pkey)
        .map_err(|e| {
            bad(
                "TLS key file",
                key,
                format!("does not go with the certificate {}: {e}", cert.display()),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` until `stop` turns true, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let acceptor = limits.tls.map(tokio_rustls::TlsAcceptor::from);
    let header_timeout = limits.header_timeout;
    loop {
        let (tcp, _) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(_) => {
                    // Out of file descriptors, or a connection reset before accept:
                    // wait a little rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(tcp); // over the cap: closed at once
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => {
                    let conn = http.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    // The handshake has the headers' deadline too.
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let conn = http.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
