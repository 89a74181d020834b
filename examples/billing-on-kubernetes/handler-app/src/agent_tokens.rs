//! The app's side of per-user agent sessions: for each of its signed-in users, the app mints a
//! short-lived token naming the user and the user's tenant, and hands it to the agent's MCP
//! client, which sends it to the `synapsor-runner` sidecar as `Authorization: Bearer`. The
//! sidecar verifies it with the same HMAC secret (`identity.keys.hmac_secret_env`) and runs that
//! MCP session as that user, in that tenant: one sidecar serves every customer of the app.
//!
//! An example, not a product. A real app mints tokens only for the user its own login says is
//! signed in; here `POST /agent/session {"user": ...}` takes the name, which is why it listens
//! on the pod's loopback only (`127.0.0.1:8081`): the agent runs beside the app, and nothing
//! outside the pod can ask for a token.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// How long a token is valid: an agent session asks again for a new one.
const TOKEN_SECONDS: u64 = 300;
/// What the sidecar's `identity` expects.
const ISSUER: &str = "billing-app";
const AUDIENCE: &str = "synapsor-runner";

struct Minter {
    key: EncodingKey,
    /// user → tenant: the app's own user directory.
    users: HashMap<String, String>,
    next: AtomicU64,
}

/// `AGENT_USERS` is `user=tenant,user=tenant`; the secret is `BILLING_AGENT_TOKEN_SECRET`.
fn minter() -> Result<Minter, String> {
    let secret =
        std::env::var("BILLING_AGENT_TOKEN_SECRET").map_err(|_| "BILLING_AGENT_TOKEN_SECRET is not set".to_owned())?;
    let users = std::env::var("AGENT_USERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(u, t)| (u.trim().to_owned(), t.trim().to_owned()))
        .collect();
    Ok(Minter {
        key: EncodingKey::from_secret(secret.as_bytes()),
        users,
        next: AtomicU64::new(0),
    })
}

// The example app reads its own clock.
#[allow(clippy::disallowed_methods)]
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn session(State(m): State<Arc<Minter>>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let user = body.get("user").and_then(Value::as_str).unwrap_or("");
    let Some(tenant) = m.users.get(user) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "unknown user"})));
    };
    let iat = now();
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "tenant": tenant,
        "iat": iat,
        "exp": iat + TOKEN_SECONDS,
        "jti": format!("{iat}-{}", m.next.fetch_add(1, Ordering::Relaxed)),
    });
    match jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &m.key) {
        Ok(token) => (
            StatusCode::OK,
            Json(json!({"token": token, "expires_in": TOKEN_SECONDS})),
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "cannot sign"}))),
    }
}

/// Serves `POST /agent/session` on 127.0.0.1:8081 on its own thread; not started without the
/// secret.
pub fn spawn() {
    let m = match minter() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("agent sessions disabled: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return eprintln!("agent sessions: {e}"),
        };
        rt.block_on(async move {
            let app = axum::Router::new().route("/agent/session", post(session)).with_state(m);
            match tokio::net::TcpListener::bind("127.0.0.1:8081").await {
                Ok(l) => {
                    let _ = axum::serve(l, app).await;
                }
                Err(e) => eprintln!("agent sessions: cannot listen on 127.0.0.1:8081: {e}"),
            }
        });
    });
}
