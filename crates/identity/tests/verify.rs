//! Real tokens signed with test keys (RSA, EC P-256, HMAC) through `jsonwebtoken`, checked by the
//! verifier against a JWK-set file, an HMAC secret, and a JWKS served by a local HTTP server that
//! rotates its keys mid-run, goes away, and serves garbage.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use synapsor_core::config::{Identity, IdentityKeys, JwtAlgorithm, OperatorIdentity};
use synapsor_identity::{Audience, AuthError, Verifier};

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "synapsor-runner";
const HMAC_SECRET: &str = "an-app-held-secret-of-at-least-32-bytes!";

fn rsa_a() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("keys/rsa-a.test-only.der"))
}
fn rsa_b() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("keys/rsa-b.test-only.der"))
}
fn ec_a() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("keys/ec-a.test-only.der"))
}
fn jwk(name: &str) -> Value {
    let text = match name {
        "rsa-a" => include_str!("keys/rsa-a.jwk.json"),
        "rsa-b" => include_str!("keys/rsa-b.jwk.json"),
        _ => include_str!("keys/ec-a.jwk.json"),
    };
    serde_json::from_str(text).unwrap()
}

fn claims(tenant: &str, principal: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal,
        "jti": format!("t-{tenant}-{principal}"),
        "iat": NOW - 10,
        "exp": NOW + 300,
        "org": {"id": tenant},
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn identity(keys: IdentityKeys, algorithms: &[JwtAlgorithm]) -> Identity {
    Identity {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys,
        algorithms: algorithms.to_vec(),
        tenant_claim: "org.id".into(),
        principal_claim: None,
        max_token_age_seconds: Some(600),
        clock_skew_seconds: Some(5),
        jwks_refresh_min_seconds: Some(1),
        authorization_servers: vec![],
        resource: None,
        operator: Some(OperatorIdentity {
            audience: "synapsor-operator".into(),
            roles_claim: None,
        }),
    }
}

fn env() -> HashMap<String, String> {
    [("APP_TOKEN_SECRET".to_owned(), HMAC_SECRET.to_owned())]
        .into_iter()
        .collect()
}

/// A verifier over a JWK-set file holding `rsa-a` and `ec-a`.
fn file_verifier(dir: &std::path::Path) -> Verifier {
    std::fs::write(
        dir.join("jwks.json"),
        json!({"keys": [jwk("rsa-a"), jwk("ec-a")]}).to_string(),
    )
    .unwrap();
    let keys = IdentityKeys {
        jwks_url: None,
        jwks_file: Some("jwks.json".into()),
        hmac_secret_env: None,
    };
    Verifier::new(
        &identity(keys, &[JwtAlgorithm::RS256, JwtAlgorithm::ES256]),
        &env(),
        dir,
    )
    .unwrap()
}

fn hmac_verifier() -> Verifier {
    let keys = IdentityKeys {
        jwks_url: None,
        jwks_file: None,
        hmac_secret_env: Some("APP_TOKEN_SECRET".into()),
    };
    Verifier::new(
        &identity(keys, &[JwtAlgorithm::HS256]),
        &env(),
        std::path::Path::new("."),
    )
    .unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("synapsor-identity-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn rsa_ec_and_hmac_tokens_name_tenant_and_principal() {
    let dir = tempdir("ok");
    let v = file_verifier(&dir);
    for token in [
        sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &claims("acme", "u-1")),
        sign(Algorithm::ES256, Some("ec-a"), &ec_a(), &claims("acme", "u-1")),
        // Without kid: exactly one key of the family fits.
        sign(Algorithm::ES256, None, &ec_a(), &claims("acme", "u-1")),
    ] {
        let c = v.session(&token, NOW).await.unwrap();
        assert_eq!((c.tenant_id.as_str(), c.principal.as_str()), ("acme", "u-1"));
        assert_eq!(c.identity.issuer, ISSUER);
        assert_eq!(c.identity.subject, "u-1");
        assert_eq!(c.identity.jti.as_deref(), Some("t-acme-u-1"));
        assert_eq!(c.expires_at, NOW + 300);
    }
    let h = hmac_verifier();
    let token = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
        &claims("globex", "u-2"),
    );
    let c = h.session(&token, NOW).await.unwrap();
    assert_eq!((c.tenant_id.as_str(), c.principal.as_str()), ("globex", "u-2"));
    // An audience array naming ours is fine.
    let mut c2 = claims("acme", "u-1");
    c2["aud"] = json!(["other", AUDIENCE]);
    assert!(
        v.session(&sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &c2), NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason() {
    let dir = tempdir("bad");
    let v = file_verifier(&dir);
    let h = hmac_verifier();
    let good = claims("acme", "u-1");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &c)
    };
    let payload = b64(good.to_string().as_bytes());
    // alg none: no signature at all.
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let rsa_public = jwk("rsa-a").to_string();
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-a"),
        &EncodingKey::from_secret(rsa_public.as_bytes()),
        &good,
    );
    // A valid signature by a key that is not the one named.
    let forged = sign(Algorithm::RS256, Some("rsa-a"), &rsa_b(), &good);
    let mut tampered = with(&|_| {});
    let body_start = tampered.find('.').unwrap() + 1;
    tampered.replace_range(body_start..body_start + 4, &b64(b"{\"x\""));
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "TOKEN_ALGORITHM_NOT_ALLOWED"),
        ("HMAC with the RSA key", confused.clone(), "TOKEN_ALGORITHM_NOT_ALLOWED"),
        (
            "RS384 not listed",
            sign(Algorithm::RS384, Some("rsa-a"), &rsa_a(), &good),
            "TOKEN_ALGORITHM_NOT_ALLOWED",
        ),
        ("bad signature", forged, "TOKEN_SIGNATURE_INVALID"),
        ("tampered payload", tampered, "TOKEN_SIGNATURE_INVALID"),
        ("expired", with(&|c| c["exp"] = json!(NOW - 6)), "TOKEN_EXPIRED"),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(NOW + 60)),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(NOW + 60)),
            "TOKEN_NOT_YET_VALID",
        ),
        ("too old", with(&|c| c["iat"] = json!(NOW - 606)), "TOKEN_TOO_OLD"),
        (
            "no exp",
            with(&|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap_or(())),
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.test/")),
            "TOKEN_ISSUER_MISMATCH",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("someone-else")),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        (
            "no audience",
            with(&|c| c.as_object_mut().unwrap().remove("aud").map(drop).unwrap_or(())),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        (
            "no tenant claim",
            with(&|c| c["org"] = json!({})),
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "tenant claim not a string",
            with(&|c| c["org"]["id"] = json!(42)),
            "TOKEN_CLAIM_INVALID",
        ),
        (
            "empty tenant claim",
            with(&|c| c["org"]["id"] = json!("")),
            "TOKEN_CLAIM_INVALID",
        ),
        (
            "no subject",
            with(&|c| c.as_object_mut().unwrap().remove("sub").map(drop).unwrap_or(())),
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "exp not a number",
            with(&|c| c["exp"] = json!("tomorrow")),
            "TOKEN_CLAIM_INVALID",
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-b"), &rsa_b(), &good),
            "TOKEN_KEY_UNKNOWN",
        ),
        (
            "oversized",
            format!("{}.{}.x", b64(br#"{"alg":"RS256"}"#), "A".repeat(9000)),
            "TOKEN_TOO_LARGE",
        ),
        ("not a JWT", "not-a-token".into(), "TOKEN_MALFORMED"),
        ("garbage segments", "a.b.c".into(), "TOKEN_MALFORMED"),
        ("empty", String::new(), "TOKEN_MISSING"),
    ];
    for (label, token, code) in &cases {
        let err = v.session(token, NOW).await.expect_err(label);
        assert_eq!(err.code(), *code, "{label}: {err}");
        let message = err.to_string();
        if token.len() > 10 {
            assert!(!message.contains(token.as_str()), "{label}: the token is echoed");
        }
    }
    // The HMAC verifier refuses public-key tokens, and the confused token too (wrong secret).
    let rs = sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &good);
    assert_eq!(
        h.session(&rs, NOW).await.unwrap_err().code(),
        "TOKEN_ALGORITHM_NOT_ALLOWED"
    );
    assert_eq!(
        h.session(&confused, NOW).await.unwrap_err().code(),
        "TOKEN_SIGNATURE_INVALID"
    );
    // A session token is not an operator token, and the other way round.
    let session_token = sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &good);
    assert_eq!(
        v.verify(&session_token, Audience::Operator, NOW).await.unwrap_err(),
        AuthError::AudienceMismatch
    );
}

#[tokio::test]
async fn operator_tokens_carry_roles() {
    let dir = tempdir("op");
    let v = file_verifier(&dir);
    let mut c = claims("acme", "alice");
    c["aud"] = json!("synapsor-operator");
    c["roles"] = json!(["billing_lead", "viewer"]);
    let op = v
        .operator(&sign(Algorithm::ES256, Some("ec-a"), &ec_a(), &c), NOW)
        .await
        .unwrap();
    assert_eq!(op.identity.subject, "alice");
    assert_eq!(op.roles, ["billing_lead", "viewer"]);
    c["roles"] = json!("auditor");
    let op = v
        .operator(&sign(Algorithm::ES256, Some("ec-a"), &ec_a(), &c), NOW)
        .await
        .unwrap();
    assert_eq!(op.roles, ["auditor"]);
}

// ---------------------------------------------------------------------------------------------
// A JWKS served over HTTP

#[derive(Clone)]
struct Jwks {
    body: Arc<Mutex<(StatusCode, String)>>,
    hits: Arc<AtomicU64>,
}

async fn serve_jwks(State(s): State<Jwks>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let (status, body) = s.body.lock().unwrap().clone();
    (status, [("content-type", "application/json")], body)
}

async fn jwks_server(initial: Value) -> (Jwks, SocketAddr) {
    let state = Jwks {
        body: Arc::new(Mutex::new((StatusCode::OK, initial.to_string()))),
        hits: Arc::new(AtomicU64::new(0)),
    };
    let app = Router::new()
        .route("/jwks", axum::routing::get(serve_jwks))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, addr)
}

fn url_verifier(url: String) -> Verifier {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let keys = IdentityKeys {
        jwks_url: Some(url),
        jwks_file: None,
        hmac_secret_env: None,
    };
    Verifier::new(
        &identity(keys, &[JwtAlgorithm::RS256, JwtAlgorithm::ES256]),
        &env(),
        std::path::Path::new("."),
    )
    .unwrap()
}

#[tokio::test]
async fn jwks_rotation_is_picked_up_and_refreshes_are_throttled() {
    let (server, addr) = jwks_server(json!({"keys": [jwk("rsa-a")]})).await;
    let v = url_verifier(format!("http://{addr}/jwks"));
    let token_a = sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &claims("acme", "u-1"));
    let token_b = sign(Algorithm::RS256, Some("rsa-b"), &rsa_b(), &claims("acme", "u-1"));
    assert!(v.session(&token_a, NOW).await.is_ok());
    assert!(v.session(&token_a, NOW).await.is_ok());
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "a known kid needs no fetch");

    // The IdP rotates to rsa-b. Right after the first fetch, a storm of unknown kids (forged or
    // new) costs no fetch at all: at most one per jwks_refresh_min_seconds.
    *server.body.lock().unwrap() = (StatusCode::OK, json!({"keys": [jwk("rsa-b")]}).to_string());
    let started = Instant::now();
    let storm: Vec<_> = (0..200)
        .map(|i| {
            let v = v.clone();
            let t = sign(
                Algorithm::RS256,
                Some(&format!("forged-{i}")),
                &rsa_b(),
                &claims("acme", "u-1"),
            );
            tokio::spawn(async move { v.session(&t, NOW).await })
        })
        .collect();
    for t in storm {
        assert_eq!(t.await.unwrap().unwrap_err().code(), "TOKEN_KEY_UNKNOWN");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the storm was slow: {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // Once the interval has passed, the new key is fetched on first sight, once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let concurrent: Vec<_> = (0..20)
        .map(|_| {
            let (v, t) = (v.clone(), token_b.clone());
            tokio::spawn(async move { v.session(&t, NOW).await })
        })
        .collect();
    for t in concurrent {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // The old key is gone from the set.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(v.session(&token_a, NOW).await.unwrap_err().code(), "TOKEN_KEY_UNKNOWN");

    // The JWKS turns malformed: the keys held are kept, new kids are refused.
    *server.body.lock().unwrap() = (StatusCode::OK, "{\"keys\": 7}".into());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(v.session(&token_a, NOW).await.unwrap_err().code(), "TOKEN_KEY_UNKNOWN");
    assert!(v.session(&token_b, NOW).await.is_ok());
}

#[tokio::test]
async fn unreachable_or_malformed_jwks_refuses_quickly() {
    // Nothing listens on a port just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = url_verifier(format!("http://127.0.0.1:{port}/jwks"));
    let token = sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), &claims("acme", "u-1"));
    let started = Instant::now();
    for _ in 0..50 {
        let err = v.session(&token, NOW).await.unwrap_err();
        assert_eq!(err.code(), "TOKEN_KEYS_UNAVAILABLE", "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    for (status, body) in [
        (StatusCode::OK, "not json".to_owned()),
        (
            StatusCode::OK,
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string(),
        ),
        (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned()),
    ] {
        let (server, addr) = jwks_server(json!({})).await;
        *server.body.lock().unwrap() = (status, body.clone());
        let v = url_verifier(format!("http://{addr}/jwks"));
        let err = v.session(&token, NOW).await.unwrap_err();
        assert_eq!(err.code(), "TOKEN_KEYS_UNAVAILABLE", "{body}: {err}");
    }
}

#[test]
fn setup_errors_name_what_is_missing() {
    let keys = IdentityKeys {
        jwks_url: None,
        jwks_file: None,
        hmac_secret_env: Some("MISSING_SECRET".into()),
    };
    let err = Verifier::new(
        &identity(keys, &[JwtAlgorithm::HS256]),
        &env(),
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert_eq!(err.code(), "IDENTITY_SECRET_MISSING");
    let short: HashMap<String, String> = [("S".to_owned(), "short".to_owned())].into_iter().collect();
    let keys = IdentityKeys {
        jwks_url: None,
        jwks_file: None,
        hmac_secret_env: Some("S".into()),
    };
    let err = Verifier::new(
        &identity(keys, &[JwtAlgorithm::HS256]),
        &short,
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert_eq!(err.code(), "IDENTITY_SECRET_TOO_SHORT");
    assert!(!err.to_string().contains("short\""));
    let keys = IdentityKeys {
        jwks_url: None,
        jwks_file: Some("does-not-exist.json".into()),
        hmac_secret_env: None,
    };
    let err = Verifier::new(
        &identity(keys, &[JwtAlgorithm::RS256]),
        &env(),
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert_eq!(err.code(), "IDENTITY_JWKS_FILE");
}
