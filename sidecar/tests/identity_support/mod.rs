//! Per-session identity fixtures: tokens signed with the identity crate's test keys (RSA and EC
//! P-256) or an app-held HMAC secret, a JWKS served by a local HTTP server, and the MCP test
//! config turned into one whose capabilities take tenant and principal from those tokens.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::mcp_common::{Fixture, HttpServer, free_port};

pub const ISSUER: &str = "https://idp.test/";
pub const AUDIENCE: &str = "synapsor-runner-test";

/// Seconds since the epoch, as the server's clock reads them.
pub fn now() -> u64 {
    use synapsor_core::context::Clock;
    synapsor_core::context::SystemClock.now_secs()
}

pub fn rsa_a() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!(
        "../../../crates/identity/tests/keys/rsa-a.test-only.der"
    ))
}
pub fn rsa_b() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!(
        "../../../crates/identity/tests/keys/rsa-b.test-only.der"
    ))
}
pub fn ec_a() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../../../crates/identity/tests/keys/ec-a.test-only.der"))
}
pub fn jwk(name: &str) -> Value {
    let text = match name {
        "rsa-a" => include_str!("../../../crates/identity/tests/keys/rsa-a.jwk.json"),
        "rsa-b" => include_str!("../../../crates/identity/tests/keys/rsa-b.jwk.json"),
        _ => include_str!("../../../crates/identity/tests/keys/ec-a.jwk.json"),
    };
    serde_json::from_str(text).unwrap()
}

/// Claims of a session token for `principal` of `tenant`, valid for `ttl` seconds from now.
pub fn claims(tenant: &str, principal: &str, ttl: u64) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal,
        "jti": format!("jti-{tenant}-{principal}-{now}-{}", NEXT_JTI.fetch_add(1, Ordering::SeqCst)),
        "iat": now,
        "exp": now + ttl,
        "org": {"id": tenant},
    })
}

static NEXT_JTI: AtomicU64 = AtomicU64::new(0);

pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// An RS256 session token (key `rsa-a`).
pub fn token(tenant: &str, principal: &str) -> String {
    sign(Algorithm::RS256, "rsa-a", &rsa_a(), &claims(tenant, principal, 600))
}

/// An ES256 session token (key `ec-a`).
pub fn ec_token(tenant: &str, principal: &str) -> String {
    sign(Algorithm::ES256, "ec-a", &ec_a(), &claims(tenant, principal, 600))
}

/// A JWKS served over HTTP, counting its fetches; its body can be changed mid-run.
#[derive(Clone)]
pub struct JwksServer {
    pub body: Arc<Mutex<String>>,
    pub hits: Arc<AtomicU64>,
    pub addr: SocketAddr,
}

impl JwksServer {
    pub async fn start(keys: &[&str]) -> JwksServer {
        let body = Arc::new(Mutex::new(
            json!({"keys": keys.iter().map(|k| jwk(k)).collect::<Vec<_>>()}).to_string(),
        ));
        let hits = Arc::new(AtomicU64::new(0));
        let state = (body.clone(), hits.clone());
        let app = Router::new()
            .route(
                "/jwks",
                axum::routing::get(
                    |State((body, hits)): State<(Arc<Mutex<String>>, Arc<AtomicU64>)>| async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let b = body.lock().unwrap().clone();
                        ([("content-type", "application/json")], b)
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer { body, hits, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }
}

/// The MCP test config with every capability on a `jwt` context, verified against `jwks_url`.
/// `extra` is merged into `identity`.
pub fn jwt_config(jwks_url: &str, extra_identity: Value) -> Value {
    let mut cfg = crate::mcp_common::config_json();
    let mut identity = json!({
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "keys": {"jwks_url": jwks_url},
        "algorithms": ["RS256", "ES256"],
        "tenant_claim": "org.id",
        "jwks_refresh_min_seconds": 1,
        "operator": {"audience": "synapsor-operator-test"},
    });
    if let (Some(id), Value::Object(extra)) = (identity.as_object_mut(), extra_identity) {
        id.extend(extra);
    }
    cfg["identity"] = identity;
    cfg["trusted_context"] = json!({"provider": "jwt"});
    cfg
}

impl Fixture {
    /// Rewrites the fixture's config file.
    pub fn write_config(&self, cfg: &Value) {
        std::fs::write(&self.config, serde_json::to_string_pretty(cfg).unwrap()).unwrap();
    }

    /// `mcp serve-streamable-http` on a free port with no static token and no trusted tenant
    /// in the environment: every session brings its own.
    pub async fn jwt_server(&self, extra: &[&str]) -> HttpServer {
        let port = free_port();
        let port_s = port.to_string();
        let mut args = vec!["mcp", "serve-streamable-http", "--port", &port_s];
        args.extend_from_slice(extra);
        let mut cmd = self.command("unused", &args);
        cmd.env_remove("SYNAPSOR_TENANT_ID").env_remove("SYNAPSOR_PRINCIPAL");
        HttpServer::spawn(cmd, port).await
    }
}
