//! One Streamable HTTP server for every tenant: each session runs as the tenant and principal of
//! the verified token that opened it. Real tokens (RS256, ES256) from the identity crate's test
//! keys, a JWKS served by a local HTTP server, the real binary, rmcp's client and raw HTTP,
//! against real PostgreSQL.

#![allow(clippy::unwrap_used)]

#[path = "identity_support/mod.rs"]
mod identity_support;
#[path = "mcp_common/mod.rs"]
mod mcp_common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleClient, ServiceExt};
use serde_json::{Value, json};

use identity_support::*;
use mcp_common::*;

type Client = RunningService<RoleClient, ()>;

fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn client(url: &str, token: &str) -> Client {
    crypto();
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn call(client: &Peer<RoleClient>, name: &str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
        .unwrap();
    serde_json::to_value(result).unwrap()
}

fn ledger(fx: &Fixture) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(&fx.store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(fx: &Fixture, sql: &str) -> i64 {
    ledger(fx).query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

/// `POST /mcp` with `token` (and a session id), as a client would send it.
async fn post(port: u16, token: Option<&str>, session: Option<&str>, body: &str) -> RawResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id", s));
        headers.push(("Mcp-Protocol-Version", "2025-06-18"));
    }
    raw_http(port, "POST", "/mcp", &headers, body).await
}

#[tokio::test]
async fn two_tenants_on_one_server_never_see_each_other() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a", "ec-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({})));
    let server = fx.jwt_server(&[]).await;
    // acme's agent signs with RSA, globex's with EC: both verified against one JWKS.
    let acme = client(&server.url(), &token("acme", "u-acme")).await;
    let globex = client(&server.url(), &ec_token("globex", "u-globex")).await;

    let rounds = 1500;
    let work = |c: Peer<RoleClient>, own: &'static str, other: &'static str| {
        async move {
            let mut seen: HashMap<&'static str, usize> = HashMap::new();
            for i in 0..rounds {
                let id = if i % 2 == 0 { own } else { other };
                let r = call(&c, "billing.inspect_invoice", json!({"invoice_id": id})).await;
                let env = &r["structuredContent"];
                if env["ok"] == true {
                    let got = env["data"]["id"].as_str().unwrap().to_owned();
                    *seen.entry(if got == own { "own" } else { "cross" }).or_default() += 1;
                } else {
                    assert_eq!(env["error"]["code"], "NOT_FOUND_IN_TENANT", "{env}");
                    *seen
                        .entry(if id == other { "refused_other" } else { "refused_own" })
                        .or_default() += 1;
                }
                // The model never sees the tenant it runs as.
                assert!(!r.to_string().contains("\"acme\"") && !r.to_string().contains("\"globex\""));
            }
            seen
        }
    };
    let started = Instant::now();
    let (a, g) = tokio::join!(
        work(acme.peer().clone(), "INV-1", "INV-9"),
        work(globex.peer().clone(), "INV-9", "INV-1")
    );
    let elapsed = started.elapsed();
    for (label, seen) in [("acme", &a), ("globex", &g)] {
        assert_eq!(
            seen.get("cross"),
            None,
            "{label}: a row of the other tenant came back: {seen:?}"
        );
        assert_eq!(seen.get("refused_own"), None, "{label}: {seen:?}");
        assert_eq!(seen.get("own"), Some(&(rounds / 2)), "{label}: {seen:?}");
        assert_eq!(seen.get("refused_other"), Some(&(rounds / 2)), "{label}: {seen:?}");
    }
    eprintln!("{} interleaved calls in {elapsed:?}", 2 * rounds);

    // The ledger agrees: every evidence row is its own tenant's, with the verified identity.
    assert_eq!(
        count(
            &fx,
            "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'acme' AND object_id = 'INV-1' AND principal = 'u-acme'"
        ),
        (rounds / 2) as i64
    );
    assert_eq!(
        count(
            &fx,
            "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'globex' AND object_id = 'INV-9' AND principal = 'u-globex'"
        ),
        (rounds / 2) as i64
    );
    assert_eq!(
        count(
            &fx,
            "SELECT count(*) FROM evidence_bundles WHERE (tenant_id = 'acme') <> (object_id = 'INV-1')"
        ),
        0
    );
    let items: String = ledger(&fx)
        .query_row(
            "SELECT items_json FROM evidence_bundles WHERE tenant_id = 'globex' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let items: Value = serde_json::from_str(&items).unwrap();
    assert_eq!(items[0]["identity"]["issuer"], ISSUER);
    assert_eq!(items[0]["identity"]["subject"], "u-globex");
    assert!(items[0]["identity"]["jti"].as_str().unwrap().starts_with("jti-globex-"));
    assert_eq!(items[0]["binding_provenance"], "jwt");
    assert!(!items.to_string().contains("eyJ"), "a token was recorded");

    // A proposal records the proposer's verified identity, never the token.
    let p = call(&acme, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})).await;
    let id = p["structuredContent"]["proposal"]["id"].as_str().unwrap().to_owned();
    let cs: String = ledger(&fx)
        .query_row(
            "SELECT change_set_json FROM proposals WHERE proposal_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let cs: Value = serde_json::from_str(&cs).unwrap();
    assert_eq!(cs["identity"]["subject"], "u-acme");
    assert_eq!(cs["principal"]["source"], "jwt");
    assert_eq!(cs["scope"]["tenant_id"], "acme");
    assert!(!cs.to_string().contains("eyJ"));
    // globex cannot read acme's proposal as a resource.
    let r = globex
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "synapsor://proposals/{id}"
        )))
        .await;
    assert!(r.is_err(), "{r:?}");
    acme.cancel().await.unwrap();
    globex.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_tokens_are_401_with_their_reason_and_leave_nothing() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({"clock_skew_seconds": 0})));
    let server = fx.jwt_server(&[]).await;
    let port = server.port;
    let good = claims("acme", "u-1", 600);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        sign(Algorithm::RS256, "rsa-a", &rsa_a(), &c)
    };
    let b64 = |s: &str| {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&good.to_string()));
    let confused = sign(
        Algorithm::HS256,
        "rsa-a",
        &jsonwebtoken::EncodingKey::from_secret(jwk("rsa-a").to_string().as_bytes()),
        &good,
    );
    let cases: Vec<(&str, Option<String>, Option<&str>)> = vec![
        ("no token", None, None),
        ("the static token", Some(TOKEN.to_owned()), Some("TOKEN_MALFORMED")),
        ("alg none", Some(none), Some("TOKEN_ALGORITHM_NOT_ALLOWED")),
        (
            "algorithm confusion",
            Some(confused),
            Some("TOKEN_ALGORITHM_NOT_ALLOWED"),
        ),
        (
            "bad signature",
            Some(sign(Algorithm::RS256, "rsa-a", &rsa_b(), &good)),
            Some("TOKEN_SIGNATURE_INVALID"),
        ),
        (
            "expired",
            Some(with(&|c| c["exp"] = json!(now() - 5))),
            Some("TOKEN_EXPIRED"),
        ),
        (
            "not yet valid",
            Some(with(&|c| c["nbf"] = json!(now() + 300))),
            Some("TOKEN_NOT_YET_VALID"),
        ),
        (
            "wrong issuer",
            Some(with(&|c| c["iss"] = json!("https://evil.test/"))),
            Some("TOKEN_ISSUER_MISMATCH"),
        ),
        (
            "wrong audience",
            Some(with(&|c| c["aud"] = json!("another-service"))),
            Some("TOKEN_AUDIENCE_MISMATCH"),
        ),
        (
            "no tenant claim",
            Some(with(&|c| c["org"] = json!({"name": "acme"}))),
            Some("TOKEN_CLAIM_MISSING"),
        ),
        (
            "tenant claim not a string",
            Some(with(&|c| c["org"]["id"] = json!(["acme"]))),
            Some("TOKEN_CLAIM_INVALID"),
        ),
        (
            "oversized",
            Some(with(&|c| c["pad"] = json!("x".repeat(9000)))),
            Some("TOKEN_TOO_LARGE"),
        ),
        (
            "kid not in the set",
            Some(sign(Algorithm::RS256, "rsa-b", &rsa_b(), &good)),
            Some("TOKEN_KEY_UNKNOWN"),
        ),
    ];
    let started = Instant::now();
    for (label, token, code) in &cases {
        let r = post(port, token.as_deref(), None, INIT).await;
        assert_eq!(r.status, 401, "{label}: {r:?}");
        let challenge = r
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("{label}: no challenge"));
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains(&format!(
                    "resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\""
                )),
            "{label}: {challenge}"
        );
        match code {
            Some(code) => {
                assert!(challenge.contains("error=\"invalid_token\""), "{label}: {challenge}");
                assert!(challenge.contains(code), "{label}: {challenge}");
                assert_eq!(r.json()["code"], *code, "{label}");
            }
            // No token: no error code (RFC 6750 3.1), only where to learn how to get one.
            None => assert!(!challenge.contains("error="), "{label}: {challenge}"),
        }
        if let Some(t) = token {
            assert!(
                !challenge.contains(t.as_str()) && !r.body.contains(t.as_str()),
                "{label}: echoed"
            );
        }
    }
    // Thirteen refusals, none of them slow (the unknown kid costs at most one JWKS fetch).
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(jwks.hits.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    // Nothing reached the ledger.
    for table in ["evidence_bundles", "query_audit", "proposals"] {
        assert_eq!(count(&fx, &format!("SELECT count(*) FROM {table}")), 0, "{table}");
    }

    // The metadata names the authorization server; /healthz and a good session still work.
    let meta = raw_http(port, "GET", "/.well-known/oauth-protected-resource/mcp", &[], "").await;
    assert_eq!(meta.status, 200);
    assert_eq!(
        meta.json(),
        json!({
            "resource": format!("http://127.0.0.1:{port}/mcp"),
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
            "resource_name": "Synapsor Runner MCP"
        })
    );
    assert_eq!(
        raw_http(port, "GET", "/.well-known/oauth-protected-resource", &[], "")
            .await
            .status,
        200
    );
    assert_eq!(raw_http(port, "GET", "/healthz", &[], "").await.status, 200);
    let c = client(&server.url(), &token("acme", "u-1")).await;
    let r = call(&c, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
    assert_eq!(r["structuredContent"]["ok"], true, "{r}");
    c.cancel().await.unwrap();
}

/// One verified identity cannot take every session: it has its own cap, where its own least
/// recently used idle session gives way; at the total cap the identity holding the most gives
/// way first, so another identity still gets in.
#[tokio::test]
async fn one_identity_cannot_take_every_session() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a", "ec-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({})));
    let server = fx
        .jwt_server(&["--max-sessions", "3", "--max-sessions-per-client", "2"])
        .await;
    let port = server.port;
    let (a, b, c) = (token("acme", "u-1"), token("acme", "u-2"), token("acme", "u-3"));
    let open = |t: &str| {
        let t = t.to_owned();
        async move { post(port, Some(&t), None, INIT).await }
    };
    let sid = |r: &RawResponse| r.header("mcp-session-id").unwrap().to_owned();
    let a1 = open(&a).await;
    let a2 = open(&a).await;
    assert_eq!((a1.status, a2.status), (200, 200));
    // At its own cap, with nothing idle: refused, and the others are not affected.
    let r = open(&a).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["error"], "too_many_sessions_for_client");
    let b1 = open(&b).await;
    assert_eq!(b1.status, 200, "{b1:?}");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(port, Some(&b), Some(&sid(&b1)), initialized).await.status, 202);

    // Idle: a's third session replaces a's own oldest, never b's.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let a3 = open(&a).await;
    assert_eq!(a3.status, 200, "{a3:?}");
    assert_eq!(post(port, Some(&a), Some(&sid(&a1)), list).await.status, 404);
    assert_eq!(post(port, Some(&b), Some(&sid(&b1)), list).await.status, 200);

    // At the total cap, a newcomer takes the place of an idle session of a (who holds two).
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let c1 = open(&c).await;
    assert_eq!(c1.status, 200, "{c1:?}");
    assert_eq!(post(port, Some(&a), Some(&sid(&a2)), list).await.status, 404);
    assert_eq!(post(port, Some(&b), Some(&sid(&b1)), list).await.status, 200);
}

/// `--stateless`: no session to bind, so every request runs as its own verified token.
#[tokio::test]
async fn stateless_requests_run_as_their_own_token() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a", "ec-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({"clock_skew_seconds": 0})));
    let server = fx.jwt_server(&["--stateless"]).await;
    let port = server.port;
    let acme = token("acme", "u-acme");
    let globex = ec_token("globex", "u-globex");
    let init = post(port, Some(&acme), None, INIT).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.header("mcp-session-id"), None, "{init:?}");
    let call_body = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"billing.inspect_invoice","arguments":{{"invoice_id":"{id}"}}}}}}"#
        )
    };
    // Interleaved on one server: each request sees its own tenant's row and not the other's.
    for (tok, own, other) in [
        (&acme, "INV-1", "INV-9"),
        (&globex, "INV-9", "INV-1"),
        (&acme, "INV-1", "INV-9"),
    ] {
        let r = post(port, Some(tok), None, &call_body(own)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["result"]["structuredContent"]["data"]["id"], own, "{r:?}");
        let r = post(port, Some(tok), None, &call_body(other)).await;
        assert_eq!(
            r.json()["result"]["structuredContent"]["error"]["code"],
            "NOT_FOUND_IN_TENANT",
            "{r:?}"
        );
        assert!(!r.body.contains("\"acme\"") && !r.body.contains("\"globex\""), "{r:?}");
    }
    assert_eq!(
        count(
            &fx,
            "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'globex' AND principal = 'u-globex'"
        ),
        1
    );
    // A bad or expired token is refused on any request, with its reason.
    let r = post(port, Some("not-a-jwt"), None, &call_body("INV-1")).await;
    assert_eq!(r.status, 401, "{r:?}");
    let short = sign(Algorithm::RS256, "rsa-a", &rsa_a(), &claims("acme", "u-1", 1));
    assert_eq!(post(port, Some(&short), None, &call_body("INV-1")).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = post(port, Some(&short), None, &call_body("INV-1")).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["code"], "TOKEN_EXPIRED");
}

#[tokio::test]
async fn a_session_is_bound_to_its_token_until_it_expires() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a", "ec-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({"clock_skew_seconds": 0})));
    let server = fx.jwt_server(&[]).await;
    let port = server.port;
    // A token that expires in two seconds opens the session.
    let short = sign(Algorithm::RS256, "rsa-a", &rsa_a(), &claims("acme", "u-1", 2));
    let init = post(port, Some(&short), None, INIT).await;
    assert_eq!(init.status, 200, "{init:?}");
    let session = init.header("mcp-session-id").unwrap().to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(port, Some(&short), Some(&session), initialized).await.status, 202);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    assert_eq!(post(port, Some(&short), Some(&session), list).await.status, 200);

    // Another tenant's valid token, and even the same user's fresh token, cannot use the session.
    for (label, other) in [
        ("another tenant", ec_token("globex", "u-9")),
        ("the same user, a new token", token("acme", "u-1")),
    ] {
        let r = post(port, Some(&other), Some(&session), list).await;
        assert_eq!(r.status, 403, "{label}: {r:?}");
        assert_eq!(r.json()["code"], "SESSION_TOKEN_MISMATCH", "{label}");
    }
    let call_body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"billing.inspect_invoice","arguments":{"invoice_id":"INV-9"}}}"#;
    let r = post(port, Some(&ec_token("globex", "u-9")), Some(&session), call_body).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        count(&fx, "SELECT count(*) FROM query_audit"),
        0,
        "the refused call reached the database"
    );

    // Once the token expires, the session can no longer call.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = post(port, Some(&short), Some(&session), list).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["code"], "TOKEN_EXPIRED");
    // A new session with a fresh token works.
    let fresh = token("acme", "u-1");
    let init = post(port, Some(&fresh), None, INIT).await;
    assert_eq!(init.status, 200);
}

#[tokio::test]
async fn rate_limits_hold_across_concurrent_sessions_and_record_nothing() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a"]).await;
    let mut cfg = jwt_config(&jwks.url(), json!({}));
    // 20 calls per tenant, refilled one per 1000 s: nothing comes back during the test.
    cfg["rate_limits"] = json!({"per_tenant": {"capacity": 20, "refill_per_second": 0.001}});
    cfg["capabilities"][2]["rate_limit"] = json!({"capacity": 3, "refill_per_second": 0.001});
    fx.write_config(&cfg);
    let server = fx.jwt_server(&[]).await;
    // Four acme users at once, 10 calls each: 40 calls share acme's 20 tokens.
    let mut sessions = Vec::new();
    for i in 0..4 {
        sessions.push(client(&server.url(), &token("acme", &format!("u-{i}"))).await);
    }
    let globex = client(&server.url(), &token("globex", "g-1")).await;
    let tasks: Vec<_> = sessions
        .iter()
        .map(|c| {
            let c = c.peer().clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..10 {
                    let r = call(&c, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
                    outcomes.push(r["structuredContent"].clone());
                }
                outcomes
            })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        for env in t.await.unwrap() {
            if env["ok"] == true {
                ok += 1;
            } else {
                assert_eq!(env["error"]["code"], "RATE_LIMITED", "{env}");
                assert_eq!(env["error"]["retryable"], true);
                assert!(env["error"]["retry_after_ms"].as_u64().unwrap() > 0, "{env}");
                limited += 1;
            }
        }
    }
    assert_eq!((ok, limited), (20, 20));
    // globex has its own bucket.
    for _ in 0..5 {
        let r = call(&globex, "billing.inspect_invoice", json!({"invoice_id": "INV-9"})).await;
        assert_eq!(r["structuredContent"]["ok"], true, "{r}");
    }
    // The capability bucket: 3 orders reads for globex, then RATE_LIMITED.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = call(&globex, "orders.inspect_order", json!({"order_id": 1002})).await;
        codes.push(
            r["structuredContent"]["error"]["code"]
                .as_str()
                .unwrap_or("ok")
                .to_owned(),
        );
    }
    assert_eq!(codes, ["ok", "ok", "ok", "RATE_LIMITED"]);
    // Refused calls left no evidence and no query audit.
    assert_eq!(
        count(&fx, "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'acme'"),
        20
    );
    assert_eq!(
        count(&fx, "SELECT count(*) FROM query_audit WHERE tenant_id = 'acme'"),
        20
    );
    assert_eq!(
        count(&fx, "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'globex'"),
        8
    );
}

#[tokio::test]
async fn transports_and_providers_must_fit() {
    let Some(fx) = fixture().await else { return };
    let jwks = JwksServer::start(&["rsa-a"]).await;
    fx.write_config(&jwt_config(&jwks.url(), json!({})));
    // `up` says which transport the config fits and fetches the keys.
    // (Run asynchronously: the JWKS server answers from this test's runtime.)
    let out = fx
        .command("acme", &["up", "--dry-run", "--json"])
        .output()
        .await
        .unwrap();
    let up: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| {
        up["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {up}"))
    };
    assert_eq!(check("identity")["ok"], true, "{up}");
    assert!(
        check("identity")["detail"]
            .as_str()
            .unwrap()
            .contains("1 key(s) from the JWKS URL"),
        "{up}"
    );
    assert!(
        check("transport")["detail"]
            .as_str()
            .unwrap()
            .contains("verified bearer tokens"),
        "{up}"
    );
    // stdio has no token to read a tenant from.
    let out = fx.std_command("acme", &["mcp", "serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CONTEXT_PROVIDER_TRANSPORT"), "{err}");
    // So client-config gives HTTP by default, and refuses stdio and a stdio-only client.
    let out = fx
        .std_command("acme", &["mcp", "client-config", "--client", "cursor"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snippet: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        snippet["mcpServers"]["synapsor"]["url"], "http://127.0.0.1:8766/mcp",
        "{snippet}"
    );
    assert!(snippet["mcpServers"]["synapsor"].get("command").is_none(), "{snippet}");
    for (args, code) in [
        (
            &["mcp", "client-config", "--client", "cursor", "--transport", "stdio"][..],
            "CONTEXT_PROVIDER_TRANSPORT",
        ),
        (
            &["mcp", "client-config", "--client", "claude-desktop"][..],
            "MCP_CLIENT_TRANSPORT_UNSUPPORTED",
        ),
    ] {
        let out = fx.std_command("acme", args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{args:?}: {err}");
    }
    // --dev-no-auth cannot serve sessions that need a verified tenant.
    let out = fx
        .std_command(
            "acme",
            &["mcp", "serve-streamable-http", "--port", "0", "--dev-no-auth"],
        )
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP_DEV_NO_AUTH_WITH_JWT"));
    // A mix of jwt and environment contexts cannot be served at all.
    let mut cfg = jwt_config(&jwks.url(), json!({}));
    cfg["contexts"] = json!({"ops": {"provider": "environment"}});
    cfg["capabilities"][2]["context"] = json!("ops");
    fx.write_config(&cfg);
    let out = fx
        .std_command("acme", &["mcp", "serve-streamable-http", "--port", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("CONTEXT_PROVIDER_TRANSPORT"));
    let out = fx.std_command("acme", &["config", "validate"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serves over: none:"), "{text}");
    // An HMAC secret that is not set is named at start.
    let mut cfg = jwt_config(&jwks.url(), json!({}));
    cfg["identity"]["keys"] = json!({"hmac_secret_env": "APP_TOKEN_SECRET"});
    cfg["identity"]["algorithms"] = json!(["HS256"]);
    fx.write_config(&cfg);
    let out = fx
        .std_command("acme", &["mcp", "serve-streamable-http", "--port", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("IDENTITY_SECRET_MISSING"));
}

#[tokio::test]
async fn an_unreachable_or_malformed_jwks_is_a_401_and_the_server_stays_up() {
    let Some(fx) = fixture().await else { return };
    // A port nothing listens on.
    let dead = free_port();
    fx.write_config(&jwt_config(&format!("http://127.0.0.1:{dead}/jwks"), json!({})));
    let server = fx.jwt_server(&[]).await;
    let started = Instant::now();
    for _ in 0..20 {
        let r = post(server.port, Some(&token("acme", "u-1")), None, INIT).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.json()["code"], "TOKEN_KEYS_UNAVAILABLE");
        assert!(r.header("www-authenticate").unwrap().contains("TOKEN_KEYS_UNAVAILABLE"));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(raw_http(server.port, "GET", "/healthz", &[], "").await.status, 200);
    drop(server);

    // A JWKS that answers garbage: the same, and it is fetched at most once per interval.
    let jwks = JwksServer::start(&[]).await;
    *jwks.body.lock().unwrap() = "{\"keys\": \"not a list\"}".into();
    fx.write_config(&jwt_config(&jwks.url(), json!({"jwks_refresh_min_seconds": 60})));
    let server = fx.jwt_server(&[]).await;
    for _ in 0..20 {
        let r = post(server.port, Some(&token("acme", "u-1")), None, INIT).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.json()["code"], "TOKEN_KEYS_UNAVAILABLE");
    }
    assert_eq!(jwks.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(count(&fx, "SELECT count(*) FROM query_audit"), 0);
}
