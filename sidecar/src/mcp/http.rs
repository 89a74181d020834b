//! Streamable HTTP transport: `POST/GET/DELETE /mcp` (rmcp) behind a bearer token, and
//! `GET /healthz`.
//!
//! Defences, in order: the bind address (loopback unless `--allow-remote`), the `Host` header
//! against an allow-list (DNS rebinding: a browser page on another origin cannot reach a loopback
//! server through a name it controls), `Origin` when a browser sends one, the bearer token
//! compared in constant time, and a cap on open sessions (idle ones expire).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::McpServer;

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub bind: SocketAddr,
    /// `None` only with `--dev-no-auth` on loopback.
    pub token: Option<String>,
    /// Extra `Host` values accepted (service DNS names, pod IP) besides loopback names.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; requests without `Origin` (non-browser clients) are fine.
    pub allowed_origins: Vec<String>,
    pub max_sessions: usize,
    pub session_idle: Duration,
}

#[derive(Debug)]
struct Guard {
    token: Option<Vec<u8>>,
    sessions: Arc<LocalSessionManager>,
    max_sessions: usize,
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"ok": false, "error": code}).to_string(),
    )
        .into_response()
}

/// Whether the request's `Host` is one this server answers fully.
#[derive(Debug, Clone, Copy)]
struct HostAllowed(bool);

/// The `Host` check for routes outside rmcp's service (unknown paths too), so a DNS-rebinding
/// page learns nothing from them either. `/healthz` answers every `Host`: the kubelet probes
/// with `Host: <pod IP>:<port>`, which no allow-list can know in advance; to a foreign `Host` it
/// says only that the server is up.
async fn host_guard(State(hosts): State<Arc<Vec<String>>>, mut req: Request<Body>, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let allowed = hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
    if !allowed && req.uri().path() != "/healthz" {
        return json_error(StatusCode::FORBIDDEN, "host_not_allowed");
    }
    req.extensions_mut().insert(HostAllowed(allowed));
    next.run(req).await
}

async fn guard(State(g): State<Arc<Guard>>, req: Request<Body>, next: Next) -> Response {
    if let Some(expected) = &g.token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::as_bytes);
        if !presented.is_some_and(|p| constant_time_eq(p, expected)) {
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, "Bearer"),
                    (header::CONTENT_TYPE, "application/json"),
                ],
                json!({"ok": false, "error": "unauthorized"}).to_string(),
            )
                .into_response();
        }
    }
    // A request without a session id opens a session: refuse when the cap is reached.
    if !req.headers().contains_key("mcp-session-id") && req.method() == axum::http::Method::POST {
        let open = g.sessions.sessions.read().await.len();
        if open >= g.max_sessions {
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "too_many_sessions");
        }
    }
    next.run(req).await
}

/// True for addresses only this machine can reach.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Runs until `shutdown` is cancelled (SIGINT/SIGTERM in the CLI); open SSE streams are closed.
pub async fn serve(server: McpServer, opts: HttpOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), "[::1]".into()];
    hosts.extend(opts.allowed_hosts.iter().cloned());
    if !opts.bind.ip().is_unspecified() {
        hosts.push(opts.bind.ip().to_string());
    }
    let host_list = Arc::new(hosts.clone());
    let mut session_config = SessionConfig::default();
    session_config.keep_alive = Some(opts.session_idle);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config = session_config;
    let sessions = Arc::new(sessions);
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_cancellation_token(shutdown.child_token())
        .with_max_request_body_bytes(1024 * 1024);
    if !opts.allowed_origins.is_empty() {
        config = config.with_allowed_origins(opts.allowed_origins.clone());
    }
    let factory_server = server.clone();
    let service = StreamableHttpService::new(move || Ok(factory_server.clone()), sessions.clone(), config);
    let guard_state = Arc::new(Guard {
        token: opts.token.as_ref().map(|t| t.as_bytes().to_vec()),
        sessions: sessions.clone(),
        max_sessions: opts.max_sessions,
    });
    let tools = server.tools().len();
    let mode = server.runtime().config().mode.as_str();
    let health_sessions = sessions.clone();
    let app = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(guard_state, guard))
        .route(
            "/healthz",
            axum::routing::get(move |Extension(HostAllowed(allowed)): Extension<HostAllowed>| {
                let sessions = health_sessions.clone();
                async move {
                    if !allowed {
                        return axum::Json(json!({"ok": true}));
                    }
                    let open = sessions.sessions.read().await.len();
                    axum::Json(json!({"ok": true, "transport": "streamable-http", "sessions": open, "tools": tools, "mode": mode}))
                }
            }),
        )
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found") })
        .layer(middleware::from_fn_with_state(host_list, host_guard));
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    // The bound address (useful with --port 0) on stderr; stdout stays clean.
    eprintln!(
        "synapsor-runner: serving {tools} tool(s) over Streamable HTTP at http://{}/mcp{} (health: /healthz)",
        listener.local_addr()?,
        if opts.token.is_none() {
            " WITHOUT AUTH (--dev-no-auth)"
        } else {
            ""
        }
    );
    // Responses are small and streamed (SSE): without TCP_NODELAY, Nagle's algorithm and the
    // client's delayed ACK add ~40 ms to every call.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
