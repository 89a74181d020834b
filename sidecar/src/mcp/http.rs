//! Streamable HTTP transport: `POST/GET/DELETE /mcp` (rmcp) behind a bearer token, `GET /healthz`
//! and, with verified tokens, the protected-resource metadata of RFC 9728.
//!
//! Defences, in order: the bind address (loopback unless `--allow-remote`), the `Host` header
//! against an allow-list (DNS rebinding: a browser page on another origin cannot reach a loopback
//! server through a name it controls), `Origin` when a browser sends one, the bearer token, the
//! body (at most 1 MiB of JSON: anything else is answered with a JSON-RPC error before a session
//! is looked at), one request per JSON-RPC id in flight on a session, and the session cap
//! ([`Admission`]): a cap in all and one per verified identity, where a new session takes the
//! place of the least recently used idle one (of the client holding the most) instead of being
//! refused, so one client cannot lock the others out. Idle sessions also expire.
//!
//! With `--stateless` ([`HttpOptions::stateless`]) there are no sessions: each POST is served on
//! its own and answered with plain `application/json` instead of an SSE stream, which saves the
//! session worker's hop and the SSE framing on every call. A plain `ping` or `tools/call` is
//! answered directly ([`super::direct`]); rmcp serves every other request. The session checks
//! then have nothing to hold; the token, `Host`, `Origin` and body checks stay.
//!
//! The token is either one static shared secret (compared in constant time; the runner's
//! process context serves every call) or, for `jwt` contexts, a JWT verified on every request
//! ([`HttpAuth::Verified`]). A verified session is bound to the token that opened it: a request
//! of that session with any other token is refused, and once the token expires the session can
//! no longer call. The verified caller reaches the tool call through the request's extensions.
//! Refusals are 401 with `WWW-Authenticate: Bearer` naming the metadata URL and, when a token was
//! presented, `error="invalid_token"` and the reason's code; the token is never echoed.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use sha2::{Digest, Sha256};
use synapsor_core::capability::{Caller, VerifiedCaller};
use synapsor_core::context::{Clock, SystemClock};
use synapsor_identity::{AuthError, Verifier};
use tokio_util::sync::CancellationToken;

use super::McpServer;

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// No token (`--dev-no-auth`, loopback only).
    None,
    /// One shared token; calls run as the runner's process context.
    Static(String),
    /// Per-session JWTs, verified on every request; calls run as the token's tenant and principal.
    Verified(Verifier),
}

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub bind: SocketAddr,
    pub auth: HttpAuth,
    /// Extra `Host` values accepted (service DNS names, pod IP) besides loopback names.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; requests without `Origin` (non-browser clients) are fine.
    pub allowed_origins: Vec<String>,
    pub max_sessions: usize,
    /// Sessions one verified identity may hold (tenant and principal of its tokens). A shared
    /// static token is one client: only `max_sessions` bounds it.
    pub max_sessions_per_client: usize,
    pub session_idle: Duration,
    /// No sessions: each POST is served on its own and answered with plain JSON.
    pub stateless: bool,
}

/// The largest request body read (the same bound rmcp applies).
const MAX_BODY: usize = 1024 * 1024;

/// A session counts as idle, and may give its place to a new one, once no request of it is in
/// flight and none came for this long.
const IDLE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Guard {
    auth: HttpAuth,
    sessions: Arc<LocalSessionManager>,
    admission: Arc<Admission>,
    /// Verified sessions: the digest of the token that opened each, and its caller.
    bindings: Mutex<HashMap<String, Binding>>,
    /// `identity.resource`, when configured.
    resource: Option<String>,
    /// JSON-RPC ids of requests in flight, per session.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// No sessions: every request stands alone (no admission, no binding, no id tracking).
    stateless: bool,
    /// Stateless only: the server that answers plain `ping` and `tools/call` directly
    /// ([`super::direct`]).
    direct: Option<McpServer>,
}

/// Who may open a session, and whose idle session gives way when the caps are reached.
#[derive(Debug)]
struct Admission {
    max: usize,
    per_client: usize,
    /// Held while a session is admitted and opened, so two openings never both see room for
    /// one (the count never exceeds the cap).
    opening: tokio::sync::Mutex<()>,
    usage: Mutex<HashMap<String, SessionUse>>,
}

#[derive(Debug, Clone)]
struct SessionUse {
    /// The verified identity that opened it; `None` for the static token (one client).
    client: Option<String>,
    last_used: Instant,
    /// POSTs of it whose response has not ended.
    in_flight: usize,
}

impl SessionUse {
    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0 && now.duration_since(self.last_used) >= IDLE_GRACE
    }
}

impl Admission {
    fn usage(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionUse>> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one more session of `client`, or the session to close to make it: this
    /// client's least recently used idle one when it is at its own cap; else, at the total cap,
    /// the least recently used idle session of the client holding the most. `Err` when nothing
    /// is idle.
    fn victim(&self, live: &HashSet<String>, client: Option<&str>) -> Result<Option<String>, &'static str> {
        let now = Instant::now();
        let mut usage = self.usage();
        usage.retain(|id, _| live.contains(id));
        let lru = |pick: &dyn Fn(&SessionUse) -> bool| {
            usage
                .iter()
                .filter(|(_, u)| u.idle(now) && pick(u))
                .min_by_key(|(_, u)| u.last_used)
                .map(|(id, _)| id.clone())
        };
        if let Some(c) = client {
            let mine = usage.values().filter(|u| u.client.as_deref() == Some(c)).count();
            if mine >= self.per_client {
                return lru(&|u| u.client.as_deref() == Some(c))
                    .map(Some)
                    .ok_or("too_many_sessions_for_client");
            }
        }
        if live.len() < self.max {
            return Ok(None);
        }
        let mut held: HashMap<Option<&str>, usize> = HashMap::new();
        for u in usage.values() {
            *held.entry(u.client.as_deref()).or_default() += 1;
        }
        let most = usage
            .iter()
            .filter(|(_, u)| u.idle(now))
            .map(|(_, u)| held[&u.client.as_deref()])
            .max();
        match most {
            Some(most) => Ok(lru(&|u| held[&u.client.as_deref()] == most)),
            None => Err("too_many_sessions"),
        }
    }

    fn opened(&self, id: &str, client: Option<String>) {
        self.usage().insert(
            id.to_owned(),
            SessionUse {
                client,
                last_used: Instant::now(),
                in_flight: 0,
            },
        );
    }

    /// Marks a request of session `id`; the returned value ends it when dropped.
    fn begin(self: &Arc<Self>, id: &str, counts: bool) -> Option<InUse> {
        let mut usage = self.usage();
        let u = usage.get_mut(id)?;
        u.last_used = Instant::now();
        if !counts {
            return None;
        }
        u.in_flight += 1;
        Some(InUse {
            admission: Arc::clone(self),
            id: id.to_owned(),
        })
    }
}

/// One POST of a session in flight, until its response ends.
#[derive(Debug)]
struct InUse {
    admission: Arc<Admission>,
    id: String,
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(u) = self.admission.usage().get_mut(&self.id) {
            u.in_flight = u.in_flight.saturating_sub(1);
            u.last_used = Instant::now();
        }
    }
}

/// A JSON-RPC id in flight on a session, until its response ends.
#[derive(Debug)]
struct IdInFlight {
    guard: Arc<Guard>,
    key: (String, String),
}

impl Drop for IdInFlight {
    fn drop(&mut self) {
        self.guard
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// A JSON-RPC error as a whole HTTP answer (the body is never the parser's or rmcp's text).
fn rpc_error(status: StatusCode, id: serde_json::Value, code: i64, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

/// What the body check needs of a JSON-RPC message; every other member is validated and skipped.
#[derive(serde::Deserialize)]
struct RpcProbe {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

/// Reads a POST body whole, at most [`MAX_BODY`].
async fn read_body(req: Request<Body>) -> Result<(axum::http::request::Parts, axum::body::Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(_) => Err(rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::Value::Null,
            -32600,
            "Invalid Request: the body is larger than 1 MiB",
        )),
    }
}

/// A POST body that is not JSON.
struct NotJson;

/// Checks that a body is JSON and returns the JSON-RPC id of a request in it (not of a
/// notification or a response).
fn probe_id(bytes: &[u8]) -> Result<Option<String>, NotJson> {
    // One validating pass that builds nothing but the id: rmcp parses the message itself.
    match serde_json::from_slice::<RpcProbe>(bytes) {
        Ok(probe) => Ok(probe
            .method
            .and(probe.id)
            .filter(|id| !id.is_null())
            .map(|id| id.to_string())),
        // Valid JSON that is not one object (a batch, a scalar) is rmcp's to answer.
        Err(e) if e.is_data() => Ok(None),
        Err(_) => Err(NotJson),
    }
}

#[derive(Debug, Clone)]
struct Binding {
    token_digest: [u8; 32],
    caller: Arc<VerifiedCaller>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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

fn bearer(req: &Request<Body>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The public URL of the MCP endpoint: `identity.resource`, else built from the request's
/// (allow-listed) `Host`.
fn resource_url(configured: Option<&str>, req_host: Option<&str>) -> String {
    match configured {
        Some(r) => r.to_owned(),
        None => format!("http://{}/mcp", req_host.unwrap_or("localhost")),
    }
}

/// RFC 9728 path insertion: the metadata of `https://h/mcp` is at
/// `https://h/.well-known/oauth-protected-resource/mcp`.
fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("http", resource));
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    format!("{scheme}://{host}/.well-known/oauth-protected-resource{path}")
}

/// A 401 for a verified-token server: `WWW-Authenticate` names the metadata and, when a token
/// was presented, the RFC 6750 error and our code. Quoted values never contain the token.
fn unauthorized(resource: &str, err: &AuthError) -> Response {
    let mut challenge = format!("Bearer resource_metadata=\"{}\"", metadata_url(resource));
    if let Some(e) = err.bearer_error() {
        challenge.push_str(&format!(
            ", error=\"{e}\", error_description=\"{}: {}\"",
            err.code(),
            err.to_string().replace('"', "'")
        ));
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, "application/json".to_owned()),
        ],
        json!({"ok": false, "error": "unauthorized", "code": err.code(), "message": err.to_string()}).to_string(),
    )
        .into_response()
}

async fn guard(State(g): State<Arc<Guard>>, mut req: Request<Body>, next: Next) -> Response {
    let mut client: Option<String> = None;
    // Stateless, a session id means nothing (rmcp ignores it too): every request stands alone.
    let session_id = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|_| !g.stateless)
        .map(str::to_owned);
    let opening = !g.stateless && session_id.is_none() && req.method() == axum::http::Method::POST;
    let mut opened_by: Option<Binding> = None;
    match &g.auth {
        HttpAuth::None => {}
        HttpAuth::Static(expected) => {
            if !bearer(&req).is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes())) {
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
        HttpAuth::Verified(verifier) => {
            let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
            let resource = resource_url(g.resource.as_deref(), host);
            let token = bearer(&req).unwrap_or("");
            let caller = match verifier.session(token, SystemClock.now_secs()).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(code = e.code(), "bearer token refused");
                    return unauthorized(&resource, &e);
                }
            };
            let token_digest = digest(token);
            let binding = match &session_id {
                Some(id) => {
                    let bound = g.bindings.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
                    match bound {
                        // An unknown session: rmcp answers it (404), with no caller attached.
                        None => None,
                        Some(b) if constant_time_eq(&b.token_digest, &token_digest) => Some(b),
                        Some(_) => {
                            tracing::info!("a session was called with another token than the one that opened it");
                            return (
                                StatusCode::FORBIDDEN,
                                [(header::CONTENT_TYPE, "application/json")],
                                json!({
                                    "ok": false,
                                    "error": "forbidden",
                                    "code": "SESSION_TOKEN_MISMATCH",
                                    "message": "this session was opened with another token; open a new session with this one"
                                })
                                .to_string(),
                            )
                                .into_response();
                        }
                    }
                }
                None => {
                    let b = Binding {
                        token_digest,
                        caller: Arc::new(caller),
                    };
                    if opening {
                        opened_by = Some(b.clone());
                    }
                    Some(b)
                }
            };
            if let Some(b) = binding {
                client = Some(format!("{}\u{0}{}", b.caller.tenant_id, b.caller.principal));
                req.extensions_mut().insert(Caller::Verified(b.caller));
            }
        }
    }
    // The body is JSON, or the answer is a JSON-RPC error now, before any session is touched.
    let is_post = req.method() == axum::http::Method::POST;
    let mut rpc_id = None;
    if is_post {
        let (parts, body) = match read_body(req).await {
            Ok(read) => read,
            Err(resp) => return resp,
        };
        // Stateless: a plain ping or tool call is answered here, its body parsed once; whatever
        // the direct path does not take (malformed JSON too) goes on to the checks below.
        if let Some(server) = &g.direct {
            let caller = parts.extensions.get::<Caller>().cloned().unwrap_or_default();
            if let Some(answer) = super::direct::answer(server, &parts.headers, &body, &caller).await {
                return answer;
            }
        }
        rpc_id = match probe_id(&body) {
            Ok(id) => id,
            Err(NotJson) => return rpc_error(StatusCode::BAD_REQUEST, serde_json::Value::Null, -32700, "Parse error"),
        };
        req = Request::from_parts(parts, Body::from(body));
    }
    // One request per id in flight on a session: a second would never be answered.
    let id_in_flight = match (&session_id, rpc_id) {
        (Some(sid), Some(id)) => {
            let key = (sid.clone(), id);
            if !g
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.clone())
            {
                let id: serde_json::Value = serde_json::from_str(&key.1).unwrap_or(serde_json::Value::Null);
                return rpc_error(
                    StatusCode::CONFLICT,
                    id,
                    -32600,
                    "Invalid Request: a request with this id is already in progress on this session",
                );
            }
            Some(IdInFlight {
                guard: Arc::clone(&g),
                key,
            })
        }
        _ => None,
    };
    // A request without a session id opens a session; admitted one at a time.
    let mut admitting = None;
    if opening {
        let lock = g.admission.opening.lock().await;
        let live: HashSet<String> = g.sessions.sessions.read().await.keys().map(|k| k.to_string()).collect();
        match g.admission.victim(&live, client.as_deref()) {
            Ok(None) => {}
            Ok(Some(victim)) => {
                tracing::info!("session cap reached: closing the least recently used idle session");
                g.bindings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&victim);
                g.admission.usage().remove(&victim);
                let _ = g.sessions.close_session(&victim.as_str().into()).await;
            }
            Err(code) => {
                // The client's load, not a server fault: 429, and when an idle place can appear.
                let mut refused = json_error(StatusCode::TOO_MANY_REQUESTS, code);
                refused
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(IDLE_GRACE.as_secs()));
                return refused;
            }
        }
        admitting = Some(lock);
    }
    let in_use = session_id.as_deref().and_then(|sid| g.admission.begin(sid, is_post));
    let closing = req.method() == axum::http::Method::DELETE;
    let response = next.run(req).await;
    if let Some(id) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok())
        && opening
    {
        g.admission.opened(id, client);
        if let Some(binding) = opened_by {
            // Forget sessions rmcp has closed or expired, then bind the new one.
            let live: HashSet<String> = g.sessions.sessions.read().await.keys().map(|k| k.to_string()).collect();
            let mut bindings = g.bindings.lock().unwrap_or_else(PoisonError::into_inner);
            bindings.retain(|k, _| live.contains(k));
            bindings.insert(id.to_owned(), binding);
        }
    }
    drop(admitting);
    if closing && let Some(id) = session_id {
        g.bindings.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        g.admission.usage().remove(&id);
    }
    if id_in_flight.is_none() && in_use.is_none() {
        return response;
    }
    // The id and the session stay in use until the response (an SSE stream) has ended.
    let (parts, body) = response.into_parts();
    let held = (id_in_flight, in_use);
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _ = &held;
        chunk
    }));
    Response::from_parts(parts, body)
}

/// RFC 9728 protected-resource metadata; only servers that verify tokens have any.
async fn protected_resource(metadata: Option<(Vec<String>, Option<String>)>, req: Request<Body>) -> Response {
    let Some((servers, resource)) = metadata else {
        return json_error(StatusCode::NOT_FOUND, "not_found");
    };
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    axum::Json(json!({
        "resource": resource_url(resource.as_deref(), host),
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Synapsor Runner MCP",
    }))
    .into_response()
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
        .with_legacy_session_mode(!opts.stateless)
        .with_json_response(opts.stateless)
        .with_allowed_hosts(hosts)
        .with_cancellation_token(shutdown.child_token())
        .with_max_request_body_bytes(MAX_BODY);
    if !opts.allowed_origins.is_empty() {
        config = config.with_allowed_origins(opts.allowed_origins.clone());
    }
    let factory_server = server.clone();
    let service = StreamableHttpService::new(move || Ok(factory_server.clone()), sessions.clone(), config);
    let resource = match &opts.auth {
        HttpAuth::Verified(v) => v.config().resource.clone(),
        _ => None,
    };
    let metadata = match &opts.auth {
        HttpAuth::Verified(v) => Some((v.config().authorization_servers(), resource.clone())),
        _ => None,
    };
    let guard_state = Arc::new(Guard {
        auth: opts.auth.clone(),
        sessions: sessions.clone(),
        admission: Arc::new(Admission {
            max: opts.max_sessions,
            per_client: opts.max_sessions_per_client.clamp(1, opts.max_sessions.max(1)),
            opening: tokio::sync::Mutex::new(()),
            usage: Mutex::new(HashMap::new()),
        }),
        bindings: Mutex::new(HashMap::new()),
        resource,
        in_flight: Mutex::new(HashSet::new()),
        stateless: opts.stateless,
        direct: opts.stateless.then(|| server.clone()),
    });
    let tools = server.tools().len();
    let mode = server.runtime().config().mode.as_str();
    let health_sessions = sessions.clone();
    let stateless = opts.stateless;
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
                    axum::Json(json!({"ok": true, "transport": "streamable-http", "stateless": stateless, "sessions": open, "tools": tools, "mode": mode}))
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            axum::routing::get({
                let metadata = metadata.clone();
                move |req: Request<Body>| protected_resource(metadata.clone(), req)
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(move |req: Request<Body>| protected_resource(metadata.clone(), req)),
        )
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found") })
        .layer(middleware::from_fn_with_state(host_list, host_guard));
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    // The bound address (useful with --port 0) on stderr; stdout stays clean.
    eprintln!(
        "synapsor-runner: serving {tools} tool(s) over Streamable HTTP{} at http://{}/mcp{} (health: /healthz)",
        if opts.stateless {
            " (stateless, JSON responses)"
        } else {
            ""
        },
        listener.local_addr()?,
        match &opts.auth {
            HttpAuth::None => " WITHOUT AUTH (--dev-no-auth)",
            HttpAuth::Static(_) => "",
            HttpAuth::Verified(_) => " (bearer tokens verified per session)",
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
