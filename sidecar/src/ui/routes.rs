//! The review UI's routes, rendered from any [`ReviewSource`]:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | proposals waiting for a person, and recent ones; filters `phase`, `capability`, `tenant` |
//! | `GET /proposals/{id}` | one proposal: diff, guards, evidence, decisions, receipt, timeline, and the forms |
//! | `POST /proposals/{id}/approve` | approve (confirmation, digest and revision required) |
//! | `POST /proposals/{id}/reject` | reject (a reason too) |
//! | `POST /proposals/{id}/apply` | apply, when the source offers it |
//! | `GET /changes?since=N[&id=ID]` | server-sent `changed` events (the id, or `*`) after change N, when the source watches its store |
//! | `GET /assets/style.css`, `GET /assets/app.js` | the stylesheet and the small script |
//!
//! One middleware ([`guard`]) applies [`super::security`]'s defences to every route, in order:
//! `Host`, token (the first visit's query token becomes a cookie and is redirected away),
//! same-origin for POST, and the security headers on every answer. The CSRF token is checked by
//! the decision handler, before anything else in the form is looked at.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::live::Changes;
use super::security::{self, HostPolicy, Secrets};
use super::view::{self, ProposalView};
use super::{ALL_CHANGED, DecisionRequest, Done, ListFilter, ListItem, ReviewSource, UiError};

/// How many proposals the list shows at most.
const LIST_LIMIT: u32 = 200;

/// Options of one UI server.
#[derive(Debug)]
pub struct UiOptions {
    /// The address the listener is bound to (the `Host` check and the cookie name use it).
    pub bound: std::net::SocketAddr,
    pub secrets: Secrets,
    /// Cancelled when the server stops: open event streams end with it, or a graceful shutdown
    /// would wait for them forever.
    pub stopping: CancellationToken,
}

struct AppState<S> {
    source: S,
    secrets: Secrets,
    hosts: HostPolicy,
    port: u16,
    env: Environment<'static>,
    stopping: CancellationToken,
    /// The source's changes, numbered; `None` when it cannot watch.
    live: Option<Arc<Changes>>,
}

/// The router over `source`, with every defence in place.
pub fn router<S: ReviewSource>(source: S, opts: UiOptions) -> Result<Router, UiError> {
    let live = source.changes().map(Changes::follow);
    let state = Arc::new(AppState {
        live,
        source,
        secrets: opts.secrets,
        hosts: HostPolicy::new(opts.bound),
        port: opts.bound.port(),
        env: view::environment()?,
        stopping: opts.stopping,
    });
    Ok(Router::new()
        .route("/", get(list_page::<S>))
        .route("/proposals/{id}", get(proposal_page::<S>))
        .route("/proposals/{id}/approve", post(approve::<S>))
        .route("/proposals/{id}/reject", post(reject::<S>))
        .route("/proposals/{id}/apply", post(apply::<S>))
        .route("/changes", get(changes::<S>))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .fallback(not_found::<S>)
        .layer(middleware::from_fn_with_state(state.clone(), guard::<S>))
        .with_state(state))
}

/// Serves `source` on `listener` until `shutdown` resolves.
pub async fn serve<S: ReviewSource>(
    listener: tokio::net::TcpListener,
    source: S,
    secrets: Secrets,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    let bound = listener.local_addr().map_err(|e| UiError::Unavailable {
        code: "UI_BIND_FAILED",
        message: format!("the listener has no address: {e}"),
    })?;
    let stopping = CancellationToken::new();
    let app = router(
        source,
        UiOptions {
            bound,
            secrets,
            stopping: stopping.clone(),
        },
    )?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await
        .map_err(|e| UiError::Unavailable {
            code: "UI_SERVE_FAILED",
            message: format!("the review UI stopped: {e}"),
        })
}

// ------------------------------------------------------------------ defences

fn header_str(req: &Request<Body>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn plain(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("error[{code}]: {message}\n"),
    )
        .into_response()
}

async fn guard<S: ReviewSource>(State(st): State<Arc<AppState<S>>>, req: Request<Body>, next: Next) -> Response {
    let mut resp = check(&st, req, next).await;
    for (name, value) in security::SECURITY_HEADERS {
        resp.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    resp
}

async fn check<S: ReviewSource>(st: &AppState<S>, req: Request<Body>, next: Next) -> Response {
    let host = header_str(&req, header::HOST).unwrap_or("").to_owned();
    if !st.hosts.allows(&host) {
        // Nothing about this server for a name it was not started under (DNS rebinding).
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "UI_HOST_REFUSED",
            "this server answers only under the address it printed",
        );
    }
    if req.uri().path().starts_with("/assets/") && req.method() == Method::GET {
        return next.run(req).await;
    }
    let (query_token, rest) = security::take_token(req.uri().query().unwrap_or(""));
    if let Some(t) = query_token {
        if req.method() != Method::GET || !st.secrets.token_matches(t) {
            return unauthorized(st);
        }
        // Keep the token in an HttpOnly cookie and take it out of the address bar (and of the
        // history) at once. The path is this server's own, so the redirect stays here.
        let path = req.uri().path();
        let path = if path.starts_with("//") { "/" } else { path };
        let location = if rest.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{rest}")
        };
        let cookie = security::session_cookie(st.port, st.secrets.token());
        return redirect(&location, Some(cookie));
    }
    let by_header = header_str(&req, header::AUTHORIZATION)
        .and_then(security::bearer)
        .is_some_and(|t| st.secrets.token_matches(t));
    let by_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|h| security::cookie_value(h, &security::cookie_name(st.port)))
        .any(|t| st.secrets.token_matches(t));
    if !by_header && !by_cookie {
        return unauthorized(st);
    }
    if req.method() == Method::POST {
        let origin = header_str(&req, header::ORIGIN);
        let site = header_str(&req, header::HeaderName::from_static("sec-fetch-site"));
        if !security::same_origin(&host, origin, site) {
            return message_page(
                st,
                StatusCode::FORBIDDEN,
                "Refused",
                "UI_CROSS_SITE_REFUSED",
                "this form was not sent from this server's own page",
                "/",
            );
        }
    }
    next.run(req).await
}

fn unauthorized<S: ReviewSource>(st: &AppState<S>) -> Response {
    let mut resp = render(
        st,
        StatusCode::UNAUTHORIZED,
        "message.html",
        context! {
            title => "Sign-in link needed",
            code => "UI_TOKEN_REQUIRED",
            message => "Open the address that `synapsor-runner ui` printed (it carries this run's token).",
            back => "",
            source => "",
            csrf => "",
            status => 401,
        },
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

// ------------------------------------------------------------------ rendering

fn render<S: ReviewSource>(st: &AppState<S>, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match st.env.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            // A template bug; the detail goes to the log (it holds no secrets), not to the page.
            tracing::error!("review UI template {name} failed: {e:#}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UI_RENDER_FAILED",
                "the page could not be rendered",
            )
        }
    }
}

fn message_page<S: ReviewSource>(
    st: &AppState<S>,
    status: StatusCode,
    title: &str,
    code: &str,
    message: &str,
    back: &str,
) -> Response {
    render(
        st,
        status,
        "message.html",
        context! {
            title, code, message, back,
            source => st.source.describe(),
            csrf => "",
            status => status.as_u16(),
        },
    )
}

fn error_page<S: ReviewSource>(st: &AppState<S>, e: &UiError, back: &str) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = match e {
        UiError::Stale { .. } => "Changed since you loaded it",
        UiError::Refused { .. } => "Refused",
        UiError::Input { .. } => "Not sent",
        UiError::NotFound { .. } => "Not found",
        _ => "Not available",
    };
    message_page(st, status, title, e.code(), &e.to_string(), back)
}

/// An id as one path segment.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

// ------------------------------------------------------------------ pages

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    phase: Option<String>,
    capability: Option<String>,
    tenant: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

async fn list_page<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let filter = ListFilter {
        phase: non_empty(q.phase),
        capability: non_empty(q.capability),
        tenant: non_empty(q.tenant),
        limit: LIST_LIMIT,
    };
    let filtered = filter.phase.is_some() || filter.capability.is_some() || filter.tenant.is_some();
    // Numbered before the read, so the page's stream starts with anything that changed since.
    let live = st.live.as_ref().map(|c| format!("/changes?since={}", c.current()));
    let items = match st.source.list(filter.clone()).await {
        Ok(items) => items,
        Err(e) => return error_page(&st, &e, "/"),
    };
    let (waiting, recent): (Vec<ListItem>, Vec<ListItem>) = if filtered {
        (Vec::new(), items.clone())
    } else {
        items.iter().cloned().partition(|i| i.needs_attention)
    };
    let mut capabilities: Vec<String> = items.iter().map(|i| i.capability.clone()).collect();
    capabilities.sort_unstable();
    capabilities.dedup();
    let mut tenants: Vec<String> = items.iter().map(|i| i.tenant.clone()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let phases = st.source.phases();
    render(
        &st,
        StatusCode::OK,
        "list.html",
        context! {
            source => st.source.describe(),
            csrf => "",
            filtered,
            waiting => Value::from(Serde(&waiting)),
            recent => Value::from(Serde(&recent)),
            total => items.len(),
            phase => filter.phase.unwrap_or_default(),
            capability => filter.capability.unwrap_or_default(),
            tenant => filter.tenant.unwrap_or_default(),
            phases,
            capabilities,
            tenants,
            live,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct ProposalQuery {
    done: Option<String>,
}

async fn proposal_page<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    q: Result<Query<ProposalQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Only known outcomes become a notice: nothing from the query string reaches the page.
    let done = q.ok().and_then(|Query(q)| q.done).and_then(|d| Done::parse(&d));
    let segment = path_segment(&id);
    let live = st
        .live
        .as_ref()
        .map(|c| format!("/changes?id={segment}&since={}", c.current()));
    match st.source.get(id).await {
        Ok(page) => {
            let link = format!("/proposals/{segment}");
            let view = ProposalView::new(page, done);
            render(
                &st,
                StatusCode::OK,
                "proposal.html",
                context! {
                    source => st.source.describe(),
                    csrf => st.secrets.csrf(),
                    link,
                    live,
                    p => Value::from(Serde(&view)),
                },
            )
        }
        Err(e) => error_page(&st, &e, "/"),
    }
}

// ------------------------------------------------------------------ decisions

#[derive(Debug, Default, Deserialize)]
struct DecisionForm {
    csrf: Option<String>,
    digest: Option<String>,
    revision: Option<String>,
    confirm: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Approve,
    Reject,
    Apply,
}

async fn approve<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    decide(&st, id, form, Kind::Approve).await
}

async fn reject<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    decide(&st, id, form, Kind::Reject).await
}

async fn apply<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    decide(&st, id, form, Kind::Apply).await
}

async fn decide<S: ReviewSource>(
    st: &AppState<S>,
    id: String,
    form: Result<Form<DecisionForm>, FormRejection>,
    kind: Kind,
) -> Response {
    let back = format!("/proposals/{}", path_segment(&id));
    let form = form.map(|Form(f)| f).unwrap_or_default();
    // CSRF first: a forged form learns nothing from the other checks.
    if !form.csrf.as_deref().is_some_and(|c| st.secrets.csrf_matches(c)) {
        return message_page(
            st,
            StatusCode::FORBIDDEN,
            "Refused",
            "UI_CSRF_REFUSED",
            "this form did not come from this run's page; reload the proposal and decide again",
            &back,
        );
    }
    let input = |code: &'static str, message: &str| {
        error_page(
            st,
            &UiError::Input {
                code,
                message: message.to_owned(),
            },
            &back,
        )
    };
    if form.confirm.as_deref() != Some("yes") {
        return input(
            "UI_CONFIRMATION_REQUIRED",
            "tick \u{201c}I reviewed this exact change\u{201d} to confirm; nothing was decided",
        );
    }
    let (Some(digest), Some(revision)) = (non_empty(form.digest), non_empty(form.revision)) else {
        return input(
            "UI_DIGEST_REQUIRED",
            "the form carries no digest: reload the proposal and decide again",
        );
    };
    let reason = non_empty(form.reason);
    if matches!(kind, Kind::Reject) && reason.is_none() {
        return input("UI_REASON_REQUIRED", "a rejection needs a reason; nothing was decided");
    }
    let req = DecisionRequest {
        id,
        digest,
        revision,
        reason,
    };
    let outcome = match kind {
        Kind::Approve => st.source.approve(req).await,
        Kind::Reject => st.source.reject(req).await,
        Kind::Apply => st.source.apply(req).await,
    };
    match outcome {
        Ok(done) => redirect(&format!("{back}?done={}", done.as_str()), None),
        Err(e) => error_page(st, &e, &back),
    }
}

// ------------------------------------------------------------------ live updates

#[derive(Debug, Default, Deserialize)]
struct ChangesQuery {
    id: Option<String>,
    /// The change number the page was rendered at.
    since: Option<u64>,
}

/// Server-sent `changed` events, each carrying the id of a proposal that changed (or `*`), for
/// as long as the page is open and the server runs: first what changed after `since`, then each
/// change as it comes. With `id`, only that proposal's (and `*`).
async fn changes<S: ReviewSource>(
    State(st): State<Arc<AppState<S>>>,
    q: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(live) = &st.live else {
        let e = UiError::Unsupported {
            what: "live updates from this source".into(),
        };
        return error_page(&st, &e, "/");
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let only = non_empty(q.id);
    // Without a number the page cannot know what it missed: it reloads at once.
    let (missed, rx) = live.since(q.since.unwrap_or(0));
    let missed = if q.since.is_none() {
        vec![ALL_CHANGED.to_owned()]
    } else {
        missed
    };
    let later = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(id) => Some((id, rx)),
            // Missed some: the page cannot know which, so it reloads.
            Err(RecvError::Lagged(_)) => Some((ALL_CHANGED.to_owned(), rx)),
            Err(RecvError::Closed) => None,
        }
    });
    let events = futures::stream::iter(missed)
        .chain(later)
        .filter(move |id| std::future::ready(id == ALL_CHANGED || only.as_ref().is_none_or(|o| o == id)))
        .map(|id| Ok::<_, Infallible>(Event::default().event("changed").data(id)))
        .take_until(st.stopping.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

// ------------------------------------------------------------------ assets and 404

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], view::STYLE_CSS).into_response()
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], view::APP_JS).into_response()
}

async fn not_found<S: ReviewSource>(State(st): State<Arc<AppState<S>>>) -> Response {
    message_page(
        &st,
        StatusCode::NOT_FOUND,
        "Not found",
        "UI_NOT_FOUND",
        "there is no such page",
        "/",
    )
}
