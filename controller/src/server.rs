//! The controller's two listeners: plain HTTP for `/metrics`, `/healthz` and `/readyz`, and
//! TLS for the admission webhook (`POST /mutate-proposals`), which the API server calls.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use synapsor_core::context::Clock;

use crate::decisions::DecisionKey;
use crate::error::{StartError, TlsError};
use crate::metrics::Metrics;

/// Whether this replica can do its job: the Kubernetes API answered and the CRD is served, and
/// the writeback setup every approval relies on is in place (writer URLs, receipts tables). A
/// replica that could only fail an apply reports not ready, so that nothing is approved into a
/// `Failed` proposal; the reason is the body of `/readyz` and a warning in the log.
#[derive(Debug, Default)]
pub struct Readiness {
    api: AtomicBool,
    setup: std::sync::RwLock<Option<String>>,
}

impl Readiness {
    pub fn set_api_ready(&self) {
        self.api.store(true, Ordering::Relaxed);
    }

    /// `Some(reason)` while writeback setup is missing.
    pub fn set_setup_gap(&self, gap: Option<String>) {
        if let Ok(mut g) = self.setup.write() {
            *g = gap;
        }
    }

    /// Why this replica is not ready, or `None` when it is.
    pub fn not_ready_because(&self) -> Option<String> {
        if !self.api.load(Ordering::Relaxed) {
            return Some("the Kubernetes API has not answered yet".into());
        }
        self.setup.read().ok().and_then(|g| g.clone())
    }
}

/// Shared by the handlers.
#[derive(Clone)]
pub struct ServerState {
    pub client: kube::Client,
    /// The webhook's clock: expiry checks and the time of a decision.
    pub clock: Arc<dyn Clock>,
    pub key: DecisionKey,
    pub metrics: Metrics,
    /// What `/readyz` answers.
    pub readiness: Arc<Readiness>,
    /// The sidecar injector's settings; `None`: pods pass unchanged.
    pub inject: Option<Arc<crate::inject::InjectConfig>>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").finish_non_exhaustive()
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
pub fn http_router(state: ServerState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<ServerState>| async move { s.metrics.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<ServerState>| async move {
                match s.readiness.not_ready_because() {
                    None => (StatusCode::OK, "ok".to_owned()),
                    Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
                }
            }),
        )
        .with_state(state)
}

/// The webhook routes.
pub fn webhook_router(state: ServerState) -> Router {
    Router::new()
        .route(
            "/mutate-proposals",
            post(|State(s): State<ServerState>, body: axum::Json<Value>| async move {
                let now_ms = s.clock.now_ms();
                let (review, verdict) = crate::admission::review(&s.client, &s.key, body.0, now_ms).await;
                s.metrics.admissions.with_label_values(&[verdict.as_str()]).inc();
                axum::Json(review)
            }),
        )
        .route(
            "/inject-pods",
            post(|State(s): State<ServerState>, body: axum::Json<Value>| async move {
                let (review, outcome) = crate::inject::review(&s.client, s.inject.as_deref(), body.0).await;
                s.metrics.injections.with_label_values(&[outcome.as_str()]).inc();
                axum::Json(review)
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves plain HTTP until `shutdown`.
pub async fn serve_http(listener: TcpListener, router: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Loads a PEM certificate chain and private key into a TLS server config (HTTP/1.1).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let unreadable = |e: rustls::pki_types::pem::Error| TlsError::CertUnreadable {
        path: cert.to_owned(),
        detail: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_owned() });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::KeyUnreadable {
        path: key.to_owned(),
        detail: e.to_string(),
    })?;
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Mismatch)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves `router` over TLS until `shutdown`; each connection runs in its own task.
pub async fn serve_tls(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

/// Binds an address, with the address in the error.
pub async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, what, source })
}
