//! The real `synapsor-runner` binary driven by the official MCP TypeScript SDK client
//! (`tests/mcp-clients/client.mjs`, run with `node`) over stdio and Streamable HTTP, with every
//! answer checked against a real PostgreSQL database by the same assertions as the rmcp tests.
//!
//! Needs `node` and `npm ci --prefix tests/mcp-clients` (scripts/test.sh does both). Without them
//! the tests are skipped with a message, unless `SYNAPSOR_REQUIRE_DBS=1`, where they fail.
#![allow(clippy::unwrap_used)]

#[path = "identity_support/mod.rs"]
mod identity_support;
mod mcp_common;

use std::process::Stdio;
use std::time::Duration;

use mcp_common::*;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// True when node and the SDK are installed; otherwise skips (or fails under
/// `SYNAPSOR_REQUIRE_DBS=1`).
fn ts_client_ready() -> bool {
    let dir = ts_client_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let sdk = dir.join("node_modules/@modelcontextprotocol/sdk/package.json").exists();
    let problem = match (node, sdk) {
        (true, true) => return true,
        (false, _) => "`node` is not on PATH".to_owned(),
        (true, false) => format!(
            "the TypeScript SDK is not installed: run `npm ci --prefix {}`",
            dir.display()
        ),
    };
    if std::env::var("SYNAPSOR_REQUIRE_DBS").as_deref() == Ok("1") {
        panic!("{problem} but SYNAPSOR_REQUIRE_DBS=1: run through scripts/test.sh");
    }
    eprintln!("skipping: {problem}");
    false
}

/// Runs `client.mjs` with `plan` on stdin and returns the JSON document it prints.
async fn run_ts(plan: &Value) -> Value {
    let dir = ts_client_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("client.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(plan.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("client.mjs did not finish within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client.mjs failed ({}): {stdout}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client.mjs printed no JSON ({e}): {stdout}"))
}

fn stdio_plan(fx: &Fixture, tenant: &str, calls: Value) -> Value {
    let env: serde_json::Map<String, Value> = fx.env(tenant).into_iter().map(|(k, v)| (k, Value::from(v))).collect();
    json!({
        "transport": "stdio",
        "command": bin_path(),
        "args": ["--config", fx.config, "--store", fx.store, "mcp", "serve"],
        "env": env,
        "cwd": fx.dir.path(),
        "calls": calls,
    })
}

fn http_plan(url: &str, token: Option<&str>, calls: Value) -> Value {
    json!({"transport": "http", "url": url, "token": token, "terminate_session": true, "calls": calls})
}

fn tool(name: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": name, "arguments": arguments})
}

/// The calls of one session of tenant `acme`; indexes are used by [`check`].
fn contract_calls() -> Value {
    json!([
        {"op": "list_tools"},
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-1"})),
        tool("billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})),
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-9", "tenant_id": "globex"})),
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-9"})),
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-404"})),
        {"op": "read_resource", "uri": "synapsor://proposals/{{2.structuredContent.proposal.id}}"},
        {"op": "read_resource", "uri": "synapsor://proposals/prop_made_up"},
        {"op": "list_resource_templates"},
    ])
}

fn result(doc: &Value, i: usize, label: &str) -> Value {
    let r = &doc["results"][i];
    assert_eq!(r["ok"], true, "{label}: call {i} failed: {r}");
    r["result"].clone()
}

/// Asserts the whole contract on the client's document; returns the proposal id.
async fn check(fx: &Fixture, doc: &Value, label: &str) -> String {
    assert!(doc.get("connect_error").is_none(), "{label}: {doc}");
    assert_eq!(doc["server"]["name"], "synapsor-runner", "{label}: {doc}");
    assert!(doc["capabilities"]["tools"].is_object(), "{label}");
    assert!(doc["capabilities"]["resources"].is_object(), "{label}");
    assert!(
        doc["instructions"]
            .as_str()
            .is_some_and(|s| s.contains("NOT_FOUND_IN_TENANT"))
    );

    assert_tools(&result(doc, 0, label), label);
    assert_read(&fx.db, &result(doc, 1, label), label).await;
    let id = assert_proposal(&fx.db, &result(doc, 2, label), label).await;
    assert_tenant_arg_rejected(&result(doc, 3, label), label);
    assert_not_found_alike(&result(doc, 4, label), &result(doc, 5, label), label);

    let res = result(doc, 6, label);
    let text = res["contents"][0]["text"].as_str().unwrap();
    let p: Value = serde_json::from_str(text).unwrap();
    assert_eq!(p["proposal"]["change_set"]["proposal_id"], json!(id), "{label}");
    assert_eq!(res["contents"][0]["mimeType"], "application/json");
    let missing = &doc["results"][7];
    assert_eq!(missing["ok"], false, "{label}: {missing}");
    assert_eq!(missing["error"]["code"], -32002, "{label}: {missing}");

    let templates = result(doc, 8, label);
    let uris: Vec<&str> = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&"synapsor://proposals/{proposal_id}"),
        "{label}: {uris:?}"
    );
    id
}

/// A server of another tenant on the same store answers a read of the proposal exactly as it
/// answers a made-up id.
async fn check_hidden_from_globex(fx: &Fixture, id: &str, label: &str) {
    let doc = run_ts(&stdio_plan(
        fx,
        "globex",
        json!([
            {"op": "read_resource", "uri": format!("synapsor://proposals/{id}")},
            {"op": "read_resource", "uri": "synapsor://proposals/prop_made_up"},
        ]),
    ))
    .await;
    let (theirs, made_up) = (&doc["results"][0], &doc["results"][1]);
    assert_eq!(theirs["ok"], false, "{label}: {doc}");
    assert_eq!(theirs["error"]["code"], -32002, "{label}: {doc}");
    assert_eq!(theirs["error"]["code"], made_up["error"]["code"], "{label}");
    // The SDK puts the JSON-RPC message into its own text; strip the uri-specific data only.
    assert!(
        theirs["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RESOURCE_NOT_FOUND"),
        "{label}: {theirs}"
    );
    assert_eq!(
        theirs["error"]["message"], made_up["error"]["message"],
        "{label}: another tenant's proposal must look like a missing one"
    );
}

#[tokio::test]
async fn ts_sdk_over_stdio() {
    if !ts_client_ready() {
        return;
    }
    let Some(fx) = fixture().await else { return };
    let doc = run_ts(&stdio_plan(&fx, "acme", contract_calls())).await;
    let id = check(&fx, &doc, "ts stdio").await;
    check_hidden_from_globex(&fx, &id, "ts stdio").await;
    assert_eq!(db_late_fee(&fx.db, "INV-1").await, 5500);
}

#[tokio::test]
async fn ts_sdk_over_streamable_http() {
    if !ts_client_ready() {
        return;
    }
    let Some(fx) = fixture().await else { return };
    let mut server = fx.http_server("acme", &[]).await;
    let doc = run_ts(&http_plan(&server.url(), Some(TOKEN), contract_calls())).await;
    let id = check(&fx, &doc, "ts http").await;
    assert!(doc["protocol_version"].is_string(), "{doc}");

    // No token, a wrong token: the SDK's initialize fails with HTTP 401.
    for token in [None, Some("wrong-token-0123456789")] {
        let doc = run_ts(&http_plan(&server.url(), token, json!([{"op": "list_tools"}]))).await;
        let err = &doc["connect_error"];
        assert!(err.is_object(), "{token:?}: {doc}");
        assert_eq!(err["code"], 401, "{token:?}: {err}");
    }
    let (status, _) = server.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    check_hidden_from_globex(&fx, &id, "ts http").await;
}

/// The official SDK's client against `--stateless`: no session id comes back, and the whole
/// contract works request by request.
#[tokio::test]
async fn ts_sdk_over_stateless_http() {
    if !ts_client_ready() {
        return;
    }
    let Some(fx) = fixture().await else { return };
    let mut server = fx.http_server("acme", &["--stateless"]).await;
    let doc = run_ts(&http_plan(&server.url(), Some(TOKEN), contract_calls())).await;
    let id = check(&fx, &doc, "ts http stateless").await;
    let (status, _) = server.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    check_hidden_from_globex(&fx, &id, "ts http stateless").await;
}

/// The SDK client passing a per-user JWT: one server, two tenants, each session sees only its own
/// tenant's rows; an expired token and another issuer's token fail initialize with 401.
#[tokio::test]
async fn ts_sdk_with_per_session_tokens() {
    if !ts_client_ready() {
        return;
    }
    let Some(fx) = fixture().await else { return };
    let jwks = identity_support::JwksServer::start(&["rsa-a", "ec-a"]).await;
    fx.write_config(&identity_support::jwt_config(&jwks.url(), json!({})));
    let server = fx.jwt_server(&[]).await;
    let calls = json!([
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-1"})),
        tool("billing.inspect_invoice", json!({"invoice_id": "INV-9"})),
    ]);
    for (tenant, token, own, other) in [
        ("acme", identity_support::token("acme", "u-1"), 0, 1),
        ("globex", identity_support::ec_token("globex", "u-2"), 1, 0),
    ] {
        let doc = run_ts(&http_plan(&server.url(), Some(&token), calls.clone())).await;
        let own_env = &result(&doc, own, tenant)["structuredContent"];
        assert_eq!(own_env["ok"], true, "{tenant}: {doc}");
        assert_eq!(own_env["_meta"]["provenance"], "jwt", "{tenant}");
        let other_env = &result(&doc, other, tenant)["structuredContent"];
        assert_eq!(other_env["error"]["code"], "NOT_FOUND_IN_TENANT", "{tenant}: {doc}");
        assert!(
            !doc.to_string().contains(&format!("\"{tenant}\"")),
            "{tenant}: the tenant leaked"
        );
    }
    let mut expired = identity_support::claims("acme", "u-1", 600);
    expired["exp"] = json!(identity_support::now() - 120);
    let expired = identity_support::sign(
        jsonwebtoken::Algorithm::RS256,
        "rsa-a",
        &identity_support::rsa_a(),
        &expired,
    );
    for (label, token) in [("expired", expired), ("static token", TOKEN.to_owned())] {
        let doc = run_ts(&http_plan(&server.url(), Some(&token), json!([{"op": "list_tools"}]))).await;
        assert_eq!(doc["connect_error"]["code"], 401, "{label}: {doc}");
    }
}
