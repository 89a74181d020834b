//! The real `synapsor-runner` binary driven by rmcp's MCP client over both transports (stdio
//! through `TokioChildProcess`, Streamable HTTP with a bearer token), with every answer checked
//! against a real PostgreSQL database. Also the HTTP edge: tokens, `Host`, session cap, health,
//! startup refusals, SIGTERM, and the store lease.
#![allow(clippy::unwrap_used)]

mod mcp_common;

use std::time::Duration;

use mcp_common::*;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ErrorData, ServiceExt};
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ()>;

/// reqwest 0.13 is built without a default crypto provider in this workspace.
fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn stdio_client(fx: &Fixture, tenant: &str, principal: &str, extra: &[&str]) -> Client {
    let mut args = vec!["mcp", "serve"];
    args.extend_from_slice(extra);
    let cmd = fx.command_as(tenant, principal, &args);
    let transport = TokioChildProcess::new(cmd).unwrap();
    ().serve(transport).await.unwrap()
}

async fn http_client(url: &str, token: &str) -> Result<Client, rmcp::service::ClientInitializeError> {
    crypto();
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    ().serve(StreamableHttpClientTransport::from_config(config)).await
}

async fn call(client: &Client, name: &str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("tools/call {name} failed at the protocol level: {e}"));
    serde_json::to_value(result).unwrap()
}

async fn read_resource(client: &Client, uri: &str) -> Result<Value, ErrorData> {
    match client.read_resource(ReadResourceRequestParams::new(uri)).await {
        Ok(r) => {
            let text = match serde_json::to_value(&r.contents[0]).unwrap()["text"].as_str() {
                Some(t) => t.to_owned(),
                None => panic!("resource {uri} has no text"),
            };
            Ok(serde_json::from_str(&text).unwrap())
        }
        Err(ServiceError::McpError(e)) => Err(e),
        Err(e) => panic!("resources/read {uri}: unexpected error {e}"),
    }
}

/// Asserts `RESOURCE_NOT_FOUND` (-32002), the answer for any record this caller may not see.
fn assert_resource_not_found(r: Result<Value, ErrorData>, label: &str) -> ErrorData {
    let e = r.expect_err(label);
    assert_eq!(e.code.0, -32002, "{label}: {e:?}");
    assert_eq!(e.message, "RESOURCE_NOT_FOUND", "{label}: {e:?}");
    e
}

/// Everything a client sees in one session of tenant `acme`. Returns the proposal id.
async fn contract(client: &Client, fx: &Fixture, label: &str) -> String {
    let info = client.peer_info().expect("initialized");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "synapsor-runner", "{label}");
    assert!(info.capabilities.tools.is_some(), "{label}");
    assert!(info.capabilities.resources.is_some(), "{label}");

    let tools = client.list_all_tools().await.unwrap();
    assert_tools(&serde_json::to_value(&tools).unwrap(), label);

    let read = call(client, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
    assert_read(&fx.db, &read, label).await;

    let proposal = call(
        client,
        "billing.propose_late_fee_waiver",
        json!({"invoice_id": "INV-1"}),
    )
    .await;
    let id = assert_proposal(&fx.db, &proposal, label).await;
    // The identical call returns the same pending proposal.
    let again = call(
        client,
        "billing.propose_late_fee_waiver",
        json!({"invoice_id": "INV-1"}),
    )
    .await;
    assert_eq!(again["structuredContent"]["proposal"]["id"], json!(id), "{label}");
    assert_eq!(again["structuredContent"]["proposal"]["existing"], true, "{label}");

    let tenant_arg = call(
        client,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-9", "tenant_id": "globex"}),
    )
    .await;
    assert_tenant_arg_rejected(&tenant_arg, label);

    let other = call(client, "billing.inspect_invoice", json!({"invoice_id": "INV-9"})).await;
    let missing = call(client, "billing.inspect_invoice", json!({"invoice_id": "INV-404"})).await;
    assert_not_found_alike(&other, &missing, label);
    let other_order = call(client, "orders.inspect_order", json!({"order_id": 1002})).await;
    let missing_order = call(client, "orders.inspect_order", json!({"order_id": 4040})).await;
    assert_not_found_alike(&other_order, &missing_order, label);
    let own_order = call(client, "orders.inspect_order", json!({"order_id": 1001})).await;
    assert_eq!(
        own_order["structuredContent"]["data"],
        json!({"id": 1001, "status": "pending", "total_cents": 5000}),
        "{label}"
    );

    // A tool that is not listed is an error result, not a way in.
    let sql = call(client, "execute_sql", json!({"sql": "DELETE FROM invoices"})).await;
    assert!(is_error(&sql), "{label}");
    assert_eq!(err_code(&sql), "CAPABILITY_NOT_FOUND", "{label}: {sql}");

    // Resources of this tenant and principal are readable.
    let p = read_resource(client, &format!("synapsor://proposals/{id}"))
        .await
        .unwrap();
    assert_eq!(p["proposal"]["change_set"]["proposal_id"], json!(id), "{label}");
    assert_eq!(p["diff"]["late_fee_cents"]["before"], 5500, "{label}: {p}");
    let ev = proposal["structuredContent"]["evidence"]["bundle_id"].as_str().unwrap();
    let e = read_resource(client, &format!("synapsor://evidence/{ev}"))
        .await
        .unwrap();
    assert_eq!(
        e["evidence"]["evidence"]["capability"], "billing.propose_late_fee_waiver",
        "{label}: {e}"
    );
    let r = read_resource(client, &format!("synapsor://replay/replay_{id}"))
        .await
        .unwrap();
    assert!(
        r["replay"]["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{label}: {r}"
    );
    // The trusted tenant and principal are redacted wherever they appear.
    for resource in [&p, &e, &r] {
        let text = resource.to_string();
        assert!(
            !text.contains("\"acme\"") && !text.contains(&format!("\"{PRINCIPAL}\"")),
            "{label}: the trusted context leaked: {text}"
        );
    }
    assert_eq!(
        p["proposal"]["change_set"]["scope"]["tenant_id"], "[trusted context]",
        "{label}"
    );
    assert_resource_not_found(read_resource(client, "synapsor://proposals/prop_made_up").await, label);
    assert_resource_not_found(read_resource(client, "file:///etc/passwd").await, label);
    id
}

/// A server of another tenant, or another principal of the same tenant, sharing the same store,
/// cannot read the proposal: the answer is the one a made-up id gets.
async fn assert_proposal_hidden_from_others(fx: &Fixture, id: &str) {
    for (tenant, principal) in [("globex", PRINCIPAL), ("acme", "agent.other")] {
        let label = format!("{tenant}/{principal}");
        let client = stdio_client(fx, tenant, principal, &[]).await;
        let theirs = assert_resource_not_found(
            read_resource(&client, &format!("synapsor://proposals/{id}")).await,
            &label,
        );
        let made_up = assert_resource_not_found(
            read_resource(&client, "synapsor://proposals/prop_made_up").await,
            &label,
        );
        assert_eq!(
            (theirs.code, &theirs.message),
            (made_up.code, &made_up.message),
            "{label}"
        );
        assert!(!format!("{theirs:?}").contains("acme") || tenant == "acme", "{label}");
        client.cancel().await.unwrap();
    }
    // Sanity: the globex server works for globex's own rows.
    let client = stdio_client(fx, "globex", PRINCIPAL, &[]).await;
    let v = call(&client, "billing.inspect_invoice", json!({"invoice_id": "INV-9"})).await;
    assert!(!is_error(&v), "{v}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_contract_against_postgres() {
    let Some(fx) = fixture().await else { return };
    let client = stdio_client(&fx, "acme", PRINCIPAL, &[]).await;
    let id = contract(&client, &fx, "stdio").await;
    client.cancel().await.unwrap();
    assert_proposal_hidden_from_others(&fx, &id).await;
    assert_eq!(db_late_fee(&fx.db, "INV-1").await, 5500);
}

#[tokio::test]
async fn streamable_http_contract_against_postgres() {
    let Some(fx) = fixture().await else { return };
    let mut server = fx.http_server("acme", &[]).await;
    let client = http_client(&server.url(), TOKEN).await.unwrap();
    let id = contract(&client, &fx, "http").await;

    // A wrong token cannot even initialize: rmcp sees the 401's `WWW-Authenticate: Bearer`.
    let err = http_client(&server.url(), "wrong-token-0123456789").await.unwrap_err();
    assert_eq!(err.auth_challenge(), Some("Bearer"), "{err:?}");

    // SIGTERM ends the server promptly even with this session (and its SSE stream) open.
    let (status, took) = server.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(client);

    // Another tenant's HTTP server on the same store cannot read the proposal. (`localhost` is
    // accepted for --host and binds 127.0.0.1.)
    let server = fx.http_server("globex", &["--host", "localhost"]).await;
    let client = http_client(&server.url(), TOKEN).await.unwrap();
    let theirs = assert_resource_not_found(
        read_resource(&client, &format!("synapsor://proposals/{id}")).await,
        "http globex",
    );
    let made_up = assert_resource_not_found(
        read_resource(&client, "synapsor://proposals/prop_made_up").await,
        "http globex",
    );
    assert_eq!(theirs.message, made_up.message);
    client.cancel().await.unwrap();
}

/// `--stateless`: no sessions, plain JSON answers. rmcp's client runs the whole contract on it
/// unchanged; raw requests show what differs on the wire.
#[tokio::test]
async fn stateless_http_contract_against_postgres() {
    let Some(fx) = fixture().await else { return };
    let server = fx.http_server("acme", &["--stateless"]).await;
    let client = http_client(&server.url(), TOKEN).await.unwrap();
    contract(&client, &fx, "http stateless").await;
    client.cancel().await.unwrap();

    let port = server.port;
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    // initialize is answered as JSON, and opens no session.
    let init = raw_initialize(port, &auth).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.header("content-type"), Some("application/json"), "{init:?}");
    assert_eq!(init.header("mcp-session-id"), None, "{init:?}");
    assert_eq!(init.json()["result"]["serverInfo"]["name"], "synapsor-runner");
    // A tool call needs no session: one POST, one JSON answer.
    let call_body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"billing.inspect_invoice","arguments":{"invoice_id":"INV-1"}}}"#;
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Protocol-Version", "2025-06-18"),
        ("Authorization", bearer.as_str()),
    ];
    let r = raw_http(port, "POST", "/mcp", &headers, call_body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    let answer = r.json();
    assert_eq!(answer["id"], 7, "{answer}");
    assert_read(&fx.db, &answer["result"], "raw stateless call").await;
    // A made-up session id changes nothing: there are no sessions to find or to hijack.
    let mut with_sid = headers.to_vec();
    with_sid.push(("Mcp-Session-Id", "made-up-session"));
    let r = raw_http(port, "POST", "/mcp", &with_sid, call_body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"]["structuredContent"]["ok"], true, "{r:?}");
    // The token is still required on every request, and the other checks stay.
    let r = raw_http(port, "POST", "/mcp", &headers[..3], call_body).await;
    assert_eq!(r.status, 401, "{r:?}");
    let mut foreign = headers.to_vec();
    foreign.push(("Host", "evil.example"));
    assert_eq!(raw_http(port, "POST", "/mcp", &foreign, call_body).await.status, 403);
    let r = raw_http(port, "POST", "/mcp", &headers, "{not json").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"]["code"], -32700, "{r:?}");
    // Plain pings and tool calls are answered by the runner directly, everything else by rmcp:
    // the same request made to go to rmcp (an empty `_meta`) gets the same answer.
    let ping = r#"{"jsonrpc":"2.0","id":"p-1","method":"ping"}"#;
    let r = raw_http(port, "POST", "/mcp", &headers, ping).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, r#"{"jsonrpc":"2.0","id":"p-1","result":{}}"#);
    let via_rmcp = r#"{"jsonrpc":"2.0","id":"p-1","method":"ping","params":{"_meta":{}}}"#;
    let r = raw_http(port, "POST", "/mcp", &headers, via_rmcp).await;
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "id": "p-1", "result": {}}), "{r:?}");
    let unknown = |meta: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"execute_sql","arguments":{{"sql":"DELETE FROM invoices"}}{meta}}}}}"#
        )
    };
    let direct = raw_http(port, "POST", "/mcp", &headers, &unknown("")).await;
    let rmcp_answer = raw_http(port, "POST", "/mcp", &headers, &unknown(r#","_meta":{}"#)).await;
    assert_eq!(direct.status, 200, "{direct:?}");
    assert_eq!(err_code(&direct.json()["result"]), "CAPABILITY_NOT_FOUND", "{direct:?}");
    assert_eq!(direct.json(), rmcp_answer.json());
    assert_eq!(direct.header("content-type"), rmcp_answer.header("content-type"));
    // What rmcp refuses is still refused: a client that does not accept SSE, an unknown protocol
    // version.
    let json_only = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    assert_eq!(raw_http(port, "POST", "/mcp", &json_only, ping).await.status, 406);
    let mut future = headers[..2].to_vec();
    future.extend([
        ("Authorization", bearer.as_str()),
        ("Mcp-Protocol-Version", "1999-01-01"),
    ]);
    assert_eq!(raw_http(port, "POST", "/mcp", &future, ping).await.status, 400);
    // No server-initiated stream and nothing to delete.
    assert_eq!(raw_http(port, "GET", "/mcp", &auth, "").await.status, 405);
    assert_eq!(raw_http(port, "DELETE", "/mcp", &auth, "").await.status, 405);
    let health = raw_http(port, "GET", "/healthz", &[], "").await.json();
    assert_eq!(health["stateless"], true, "{health}");
    assert_eq!(health["sessions"], 0, "{health}");
}

#[tokio::test]
async fn http_requires_the_token_and_a_local_host_header() {
    let Some(fx) = fixture().await else { return };
    let server = fx.http_server("acme", &[]).await;
    let port = server.port;
    let bearer = format!("Bearer {TOKEN}");

    let r = raw_initialize(port, &[]).await;
    assert_eq!(r.status, 401, "no token: {r:?}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = raw_initialize(port, &[("Authorization", "Bearer wrong-token-0123456789")]).await;
    assert_eq!(r.status, 401, "wrong token: {r:?}");
    let r = raw_initialize(port, &[("Authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(r.status, 401, "not a bearer token: {r:?}");
    let r = raw_initialize(port, &[("Authorization", &format!("Bearer {TOKEN}x"))]).await;
    assert_eq!(r.status, 401, "a longer token: {r:?}");

    // DNS rebinding: a name the attacker controls, pointed at 127.0.0.1, is refused even with
    // the right token.
    for host in ["evil.example", "evil.example:80", "127.0.0.1.nip.io"] {
        let r = raw_initialize(port, &[("Host", host), ("Authorization", &bearer)]).await;
        assert_eq!(r.status, 403, "Host {host}: {r:?}");
    }
    // The same request with a loopback Host works.
    let host = format!("localhost:{port}");
    let r = raw_initialize(port, &[("Host", &host), ("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("mcp-session-id").is_some(), "{r:?}");

    let r = raw_http(port, "GET", "/healthz", &[], "").await;
    assert_eq!(r.status, 200);
    let health = r.json();
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["tools"], TOOLS.len(), "{health}");
    assert!(!r.body.contains(TOKEN));

    let r = raw_http(port, "GET", "/nope", &[], "").await;
    assert_eq!(r.status, 404);
    // The health endpoint answers a probe from any Host (the kubelet sends the pod IP), but a
    // foreign Host learns only that the server is up (DNS rebinding learns nothing).
    let r = raw_http(port, "GET", "/healthz", &[("Host", "10.244.0.7:8766")], "").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"ok": true}), "{r:?}");
    assert!(!r.body.contains("tools"), "{r:?}");
    // Everything else keeps the Host check.
    let r = raw_http(port, "GET", "/nope", &[("Host", "evil.example")], "").await;
    assert_eq!(r.status, 403, "{r:?}");

    // `mcp health` is the exec probe of a sidecar bound to the pod's loopback.
    let health = |port: u16| {
        std::process::Command::new(mcp_common::bin_path())
            .args(["mcp", "health", "--port", &port.to_string(), "--timeout-ms", "1000"])
            .output()
            .unwrap()
    };
    let up = health(port);
    assert_eq!(
        (up.status.code(), String::from_utf8_lossy(&up.stdout).trim()),
        (Some(0), "ok")
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = health(closed);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("error[MCP_UNHEALTHY]"),
        "{down:?}"
    );
}

#[tokio::test]
async fn http_caps_open_sessions_and_idle_ones_give_way() {
    let Some(fx) = fixture().await else { return };
    let server = fx.http_server("acme", &["--max-sessions", "2"]).await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let first = raw_initialize(server.port, &auth).await;
    let second = raw_initialize(server.port, &auth).await;
    assert_eq!((first.status, second.status), (200, 200), "{first:?} {second:?}");
    // Both were used just now: nothing is idle, so a third is refused.
    let third = raw_initialize(server.port, &auth).await;
    assert_eq!(third.status, 429, "{third:?}");
    assert_eq!(third.header("retry-after"), Some("2"), "{third:?}");
    assert_eq!(third.json()["error"], "too_many_sessions");
    let health = raw_http(server.port, "GET", "/healthz", &[], "").await.json();
    assert_eq!(health["sessions"], 2, "{health}");

    // A malformed body is answered with a JSON-RPC parse error, before the cap is looked at,
    // and never with the parser's own text.
    let json = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let r = raw_http(server.port, "POST", "/mcp", &json, "{\"jsonrpc\": \"2.0\", \"id\": 1, ").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"]["code"], -32700, "{r:?}");
    assert_eq!(r.json()["error"]["message"], "Parse error", "{r:?}");
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let r = raw_http(server.port, "POST", "/mcp", &json, &big).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"]["code"], -32600, "{r:?}");

    // Many openings at once never take the count past the cap.
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let bearer = bearer.clone();
            let port = server.port;
            tokio::spawn(async move { raw_initialize(port, &[("Authorization", bearer.as_str())]).await.status })
        })
        .collect();
    for b in burst {
        assert_eq!(b.await.unwrap(), 429);
    }
    let health = raw_http(server.port, "GET", "/healthz", &[], "").await.json();
    assert_eq!(health["sessions"], 2, "{health}");

    // Once idle, the least recently used session gives its place to a new one: the second
    // was used last, so the first is closed.
    let sid1 = first.header("mcp-session-id").unwrap().to_owned();
    let sid2 = second.header("mcp-session-id").unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(ping_status(server.port, &bearer, &sid2).await, 200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let fourth = raw_initialize(server.port, &auth).await;
    assert_eq!(fourth.status, 200, "{fourth:?}");
    assert_eq!(
        ping_status(server.port, &bearer, &sid1).await,
        404,
        "the first gave way"
    );
    assert_eq!(ping_status(server.port, &bearer, &sid2).await, 200, "the second stays");
    let health = raw_http(server.port, "GET", "/healthz", &[], "").await.json();
    assert_eq!(health["sessions"], 2, "{health}");

    // Closing a session frees a slot at once.
    let r = raw_http(
        server.port,
        "DELETE",
        "/mcp",
        &[("Authorization", &bearer), ("Mcp-Session-Id", &sid2)],
        "",
    )
    .await;
    assert!(r.status < 300, "DELETE session: {r:?}");
    let fifth = raw_initialize(server.port, &auth).await;
    assert_eq!(fifth.status, 200, "{fifth:?}");

    // An rmcp client is refused while the cap is reached and nothing is idle.
    let client = http_client(&server.url(), TOKEN).await;
    let Err(err) = client else {
        panic!("a third session must be refused")
    };
    assert!(format!("{err:?}").contains("429"), "{err:?}");
}

/// The headers of a JSON-RPC POST in session `sid`.
fn session_headers(bearer: &str, sid: &str) -> Vec<(String, String)> {
    [
        ("Authorization", bearer),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

/// The HTTP status of a `ping` in session `sid`.
async fn ping_status(port: u16, bearer: &str, sid: &str) -> u16 {
    let headers = session_headers(bearer, sid);
    let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    raw_http(port, "POST", "/mcp", &h, r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)
        .await
        .status
}

/// Requests that reuse one JSON-RPC id on one session, all at once: each gets an answer (the
/// tool's result, or an immediate JSON-RPC error for an id already in flight); none hangs.
#[tokio::test]
async fn a_reused_request_id_is_answered_not_left_hanging() {
    let Some(fx) = fixture().await else { return };
    let server = fx.http_server("acme", &[]).await;
    let bearer = format!("Bearer {TOKEN}");
    let init = raw_initialize(server.port, &[("Authorization", bearer.as_str())]).await;
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let headers = session_headers(&bearer, &sid);
    let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(raw_http(server.port, "POST", "/mcp", &h, initialized).await.status, 202);
    let call = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"billing.inspect_invoice","arguments":{"invoice_id":"INV-1"}}}"#;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let headers = headers.clone();
            let port = server.port;
            tokio::spawn(async move {
                let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                raw_exchange(port, &h, call).await
            })
        })
        .collect();
    let mut answered = 0;
    let mut refused = 0;
    for c in calls {
        let (status, message) = c.await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&message).unwrap_or_else(|_| panic!("{status}: {message}"));
        assert_eq!(v["id"], 42, "{message}");
        match status {
            200 => {
                assert!(v["result"].is_object(), "{message}");
                answered += 1;
            }
            409 => {
                assert_eq!(v["error"]["code"], -32600, "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {message}"),
        }
    }
    eprintln!("{answered} answered, {refused} refused");
    assert!(answered >= 1, "{answered} answered, {refused} refused");
    assert_eq!(answered + refused, 50);
}
/// The process must refuse unsafe HTTP setups before binding anything: the port is held by the
/// test itself, so a server that tried to bind first would fail differently.
#[tokio::test]
async fn http_refuses_unsafe_setups_before_binding() {
    let Some(fx) = fixture().await else { return };
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let cases: [(&[&str], Option<&str>, &[&str]); 5] = [
        // No token in the environment.
        (&["--port", &port], None, &["HTTP_AUTH_TOKEN_MISSING"]),
        // A token in another variable than the one named.
        (
            &["--port", &port, "--auth-token-env", "MY_TOKEN"],
            Some(TOKEN),
            &["HTTP_AUTH_TOKEN_MISSING"],
        ),
        // Non-loopback without --allow-remote.
        (
            &["--host", "0.0.0.0", "--port", &port],
            Some(TOKEN),
            &["HTTP_REMOTE_BIND_REFUSED"],
        ),
        // --dev-no-auth on a wildcard address, with or without --allow-remote.
        (
            &["--host", "0.0.0.0", "--port", &port, "--dev-no-auth", "--allow-remote"],
            None,
            &["HTTP_DEV_NO_AUTH_UNSAFE_HOST"],
        ),
        (
            &["--host", "0.0.0.0", "--port", &port, "--dev-no-auth"],
            None,
            &["HTTP_DEV_NO_AUTH_UNSAFE_HOST"],
        ),
    ];
    for (extra, token, codes) in cases {
        let mut args = vec!["mcp", "serve-streamable-http"];
        args.extend_from_slice(extra);
        let mut cmd = fx.command("acme", &args);
        if let Some(t) = token {
            cmd.env("SYNAPSOR_RUNNER_HTTP_TOKEN", t);
        }
        let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{extra:?}: still running; it should have refused"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(
            codes.iter().any(|c| stderr.contains(c)),
            "{extra:?}: want {codes:?}: {stderr}"
        );
        assert!(!stderr.contains(TOKEN), "the token must not be echoed");
        assert!(!stderr.to_lowercase().contains("address in use"), "{stderr}");
    }
    drop(held);
}

#[tokio::test]
async fn a_second_server_on_the_same_store_is_refused() {
    let Some(fx) = fixture().await else { return };
    let client = stdio_client(&fx, "acme", PRINCIPAL, &[]).await;
    // Initialized, so it holds the lease.
    client.list_all_tools().await.unwrap();
    for args in [
        vec!["mcp", "serve"],
        vec!["mcp", "serve-streamable-http", "--port", "0"],
    ] {
        let mut cmd = fx.command("acme", &args);
        cmd.env("SYNAPSOR_RUNNER_HTTP_TOKEN", TOKEN);
        let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("STORE_LEASED"), "{args:?}: {stderr}");
    }
    client.cancel().await.unwrap();

    // Once the first server is gone, the store is free again.
    let client = stdio_client(&fx, "acme", PRINCIPAL, &[]).await;
    client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
}

fn openai_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[tokio::test]
async fn openai_alias_mode_over_both_transports() {
    let Some(fx) = fixture().await else { return };
    // One transport after the other: both use the fixture's store, which one server leases.
    for label in ["stdio", "http"] {
        let mut server = None;
        let client = if label == "stdio" {
            stdio_client(&fx, "acme", PRINCIPAL, &["--alias-mode", "openai"]).await
        } else {
            let s = fx.http_server("acme", &["--alias-mode", "openai"]).await;
            let c = http_client(&s.url(), TOKEN).await.unwrap();
            server = Some(s);
            c
        };
        let tools = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names.len(), TOOLS.len(), "{label}: {names:?}");
        for n in &names {
            assert!(openai_name_ok(n), "{label}: {n:?} is not an OpenAI-safe name");
        }
        for t in &tools {
            let meta = serde_json::to_value(&t.meta).unwrap();
            let canonical = meta["synapsor.canonical_tool_name"].as_str().unwrap();
            assert!(TOOLS.contains(&canonical), "{label}: {meta}");
            assert_eq!(meta["synapsor.exposed_tool_name"], t.name.as_ref(), "{label}");
        }
        assert!(names.contains(&"billing__inspect_invoice"), "{label}: {names:?}");

        let read = call(&client, "billing__inspect_invoice", json!({"invoice_id": "INV-1"})).await;
        assert_read(&fx.db, &read, label).await;
        assert_eq!(
            read["structuredContent"]["_meta"]["canonical_capability"], "billing.inspect_invoice",
            "{label}"
        );
        assert_eq!(read["_meta"]["synapsor.canonical_tool_name"], "billing.inspect_invoice");
        assert_eq!(read["_meta"]["synapsor.exposed_tool_name"], "billing__inspect_invoice");
        // Only listed names are callable: the canonical name is not listed in this mode.
        let unlisted = call(&client, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
        assert_eq!(unlisted["isError"], true, "{label}: {unlisted}");
        assert_eq!(
            unlisted["structuredContent"]["error"]["code"], "CAPABILITY_NOT_FOUND",
            "{label}: {unlisted}"
        );

        let p = call(
            &client,
            "billing__propose_late_fee_waiver",
            json!({"invoice_id": "INV-1"}),
        )
        .await;
        assert_proposal(&fx.db, &p, label).await;
        assert_eq!(
            p["structuredContent"]["_meta"]["canonical_capability"], "billing.propose_late_fee_waiver",
            "{label}"
        );
        let t = call(
            &client,
            "billing__inspect_invoice",
            json!({"invoice_id": "INV-1", "tenant_id": "globex"}),
        )
        .await;
        assert_tenant_arg_rejected(&t, label);
        client.cancel().await.unwrap();
        if let Some(mut s) = server {
            s.terminate(Duration::from_secs(5)).await;
        }
    }
}
