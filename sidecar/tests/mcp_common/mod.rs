//! Shared fixtures for the MCP integration tests (`mcp_rmcp_client`, `mcp_ts_client`, `mcp_cli`):
//! a real PostgreSQL database with a read-only role, a config file in a temporary directory, the
//! real `synapsor-runner` binary started over stdio or Streamable HTTP, and the assertions every
//! MCP client must see, written against the wire JSON so that the rmcp client and the official
//! TypeScript SDK client are held to exactly the same contract.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use synapsor_testdb::{Server, TestDb};

pub const PG_SEED: &str = r#"
CREATE TABLE invoices (
  id text PRIMARY KEY, tenant_id text NOT NULL, customer_name text NOT NULL,
  amount_cents bigint NOT NULL, late_fee_cents bigint NOT NULL, status text NOT NULL,
  internal_note text, updated_at timestamptz NOT NULL);
INSERT INTO invoices VALUES
  ('INV-1', 'acme', 'Acme Corp', 125000, 5500, 'open', 'secret acme note', '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 'Acme Corp', 48000, 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-9', 'globex', 'Globex', 310000, 9900, 'open', 'globex note', '2026-06-21T11:15:00Z');
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status text NOT NULL, total_cents bigint NOT NULL, version integer NOT NULL);
INSERT INTO orders VALUES (1001, 'acme', 'pending', 5000, 3), (1002, 'globex', 'pending', 7000, 1);
"#;

/// The canonical tool names the config exposes, in config order.
pub const TOOLS: [&str; 3] = [
    "billing.inspect_invoice",
    "billing.propose_late_fee_waiver",
    "orders.inspect_order",
];

/// The visible columns of `billing.inspect_invoice`, in config order.
pub const INVOICE_COLUMNS: [&str; 6] = [
    "id",
    "customer_name",
    "amount_cents",
    "late_fee_cents",
    "status",
    "updated_at",
];

pub const PRINCIPAL: &str = "agent.test";

/// A long enough bearer token (the server refuses tokens under 16 characters).
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// The runner config used by every MCP test.
pub fn config_json() -> Value {
    let invoices = json!({"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "sources": {"main": {"engine": "postgres", "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 2000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.inspect_invoice", "kind": "read", "source": "main",
                "description": "Read one invoice.",
                "target": invoices,
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": INVOICE_COLUMNS
            },
            {
                "name": "billing.propose_late_fee_waiver", "kind": "proposal", "source": "main",
                "description": "Propose waiving a late fee.",
                "target": invoices,
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"fixed": 0}},
                "allowed_columns": ["late_fee_cents"],
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "orders.inspect_order", "kind": "read", "source": "main",
                "description": "Read one order.",
                "target": {"schema": "public", "table": "orders", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"order_id": {"type": "number", "minimum": 1}},
                "lookup": {"id_from_arg": "order_id"},
                "visible_columns": ["id", "status", "total_cents"]
            }
        ]
    })
}

/// A test database, a config file and a ledger path in a temporary directory.
#[derive(Debug)]
pub struct Fixture {
    pub db: TestDb,
    pub config: PathBuf,
    pub store: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A fresh fixture; `None` (test skipped) when no PostgreSQL is configured, unless
/// `SYNAPSOR_REQUIRE_DBS=1`, where that fails the test.
pub async fn fixture() -> Option<Fixture> {
    let db = TestDb::with_seed(Server::Postgres, PG_SEED).await?;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("synapsor.runner.json");
    std::fs::write(&config, serde_json::to_string_pretty(&config_json()).unwrap()).unwrap();
    let store = dir.path().join("ledger.db");
    Some(Fixture { db, config, store, dir })
}

/// The binary under test.
pub fn bin_path() -> &'static str {
    env!("CARGO_BIN_EXE_synapsor-runner")
}

/// Variables the runner reads that must not leak in from the developer's shell.
const SCRUBBED_ENV: [&str; 7] = [
    "SYNAPSOR_CONFIG",
    "SYNAPSOR_MCP_CONFIG",
    "SYNAPSOR_LOCAL_STORE",
    "SYNAPSOR_APPROVER",
    "SYNAPSOR_RUNNER_HTTP_TOKEN",
    "SYNAPSOR_TENANT_ID",
    "SYNAPSOR_PRINCIPAL",
];

impl Fixture {
    /// The environment a server of `tenant` runs with (read URL and trusted context).
    pub fn env(&self, tenant: &str) -> Vec<(String, String)> {
        self.env_as(tenant, PRINCIPAL)
    }

    pub fn env_as(&self, tenant: &str, principal: &str) -> Vec<(String, String)> {
        vec![
            ("TEST_READ_URL".into(), self.db.read_url.clone()),
            ("SYNAPSOR_TENANT_ID".into(), tenant.into()),
            ("SYNAPSOR_PRINCIPAL".into(), principal.into()),
        ]
    }

    /// `synapsor-runner --config <cfg> --store <store> <args>` as `principal` of `tenant`.
    pub fn command_as(&self, tenant: &str, principal: &str, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(bin_path());
        for v in SCRUBBED_ENV {
            c.env_remove(v);
        }
        c.envs(self.env_as(tenant, principal))
            .arg("--config")
            .arg(&self.config)
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    pub fn command(&self, tenant: &str, args: &[&str]) -> tokio::process::Command {
        self.command_as(tenant, PRINCIPAL, args)
    }

    /// The same, as a blocking `std::process::Command` (for one-shot CLI commands).
    pub fn std_command(&self, tenant: &str, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(bin_path());
        for v in SCRUBBED_ENV {
            c.env_remove(v);
        }
        c.envs(self.env(tenant))
            .arg("--config")
            .arg(&self.config)
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// Starts `mcp serve-streamable-http` for `tenant` on a free loopback port with [`TOKEN`].
    pub async fn http_server(&self, tenant: &str, extra: &[&str]) -> HttpServer {
        let port = free_port();
        let port_s = port.to_string();
        let mut args = vec!["mcp", "serve-streamable-http", "--port", &port_s];
        args.extend_from_slice(extra);
        let mut cmd = self.command(tenant, &args);
        cmd.env("SYNAPSOR_RUNNER_HTTP_TOKEN", TOKEN);
        HttpServer::spawn(cmd, port).await
    }
}

/// A port that was free a moment ago (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `mcp serve-streamable-http`; killed when dropped.
#[derive(Debug)]
pub struct HttpServer {
    pub child: tokio::process::Child,
    pub port: u16,
}

impl HttpServer {
    /// Spawns `cmd` and waits until the port accepts connections (or the process exits).
    pub async fn spawn(mut cmd: tokio::process::Command, port: u16) -> HttpServer {
        let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the HTTP server exited before listening: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return HttpServer { child, port };
            }
            assert!(Instant::now() < deadline, "the HTTP server did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Sends SIGTERM and waits for the exit; returns the status and how long it took.
    pub async fn terminate(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -TERM failed");
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit within {within:?} of SIGTERM"))
            .unwrap();
        (status, started.elapsed())
    }
}

/// A response read off a raw HTTP/1.1 connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body when the server sent a `Content-Length`; empty for streams.
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one request over a fresh TCP connection, byte for byte as given (so the `Host` header
/// is exactly what a hostile page or client would send), and reads the status, the headers and a
/// `Content-Length` body. Streams (SSE) are not read: the connection is dropped after the headers.
pub async fn raw_http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();

    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the response headers");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut body = buf[head_end + 4..].to_vec();
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        if let Some(len) = len {
            while body.len() < len {
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.clear();
        }
        RawResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no HTTP response within 10 s")
}

/// `POST /mcp` with `body`, read to the first JSON-RPC message of the answer (a JSON body, or
/// the first `data:` event of an SSE stream that carries one): the status and that message.
/// Panics after 10 s without one.
#[allow(dead_code)]
pub async fn raw_exchange(port: u16, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(req.as_bytes()).await.unwrap();
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let sse = head.to_ascii_lowercase().contains("text/event-stream");
                if !sse {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if len.is_some_and(|n| rest.len() >= n) {
                        return (status, rest.to_owned());
                    }
                } else if let Some(data) = rest
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .find(|d| d.contains("\"jsonrpc\""))
                {
                    return (status, data.to_owned());
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the connection closed before a JSON-RPC message: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no JSON-RPC answer within 10 s")
}

/// A JSON-RPC `initialize` request body, as any MCP client sends first.
pub fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}
    })
    .to_string()
}

/// `POST /mcp` with an initialize body and the given extra headers.
pub async fn raw_initialize(port: u16, extra: &[(&str, &str)]) -> RawResponse {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    headers.extend_from_slice(extra);
    raw_http(port, "POST", "/mcp", &headers, &initialize_body()).await
}

// ---------------------------------------------------------------------------------------------
// Ground truth from PostgreSQL, read directly as the admin (not through the runner).

async fn admin_conn(db: &TestDb) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&db.admin_url).await.unwrap()
}

/// The late fee of an invoice, straight from the database.
pub async fn db_late_fee(db: &TestDb, id: &str) -> i64 {
    let mut conn = admin_conn(db).await;
    sqlx::query_scalar("SELECT late_fee_cents FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Asserts that `data` (the `data` of a read envelope) holds exactly the visible columns of the
/// invoice, with the values a direct SELECT returns. The timestamp is compared as an instant by
/// PostgreSQL itself, so its text form does not matter.
pub async fn assert_invoice_matches_db(db: &TestDb, id: &str, data: &Value, label: &str) {
    let obj = data
        .as_object()
        .unwrap_or_else(|| panic!("{label}: data is not an object: {data}"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, INVOICE_COLUMNS, "{label}: exactly the visible columns, in order");
    let mut conn = admin_conn(db).await;
    let (rid, customer, amount, fee, status): (String, String, i64, i64, String) =
        sqlx::query_as("SELECT id, customer_name, amount_cents, late_fee_cents, status FROM invoices WHERE id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let expected = json!({
        "id": rid,
        "customer_name": customer,
        "amount_cents": amount,
        "late_fee_cents": fee,
        "status": status,
        "updated_at": obj["updated_at"],
    });
    assert_eq!(data, &expected, "{label}: read data differs from PostgreSQL");
    let ts = obj["updated_at"]
        .as_str()
        .unwrap_or_else(|| panic!("{label}: updated_at is not a string: {data}"));
    let same: bool = sqlx::query_scalar("SELECT updated_at = $2::timestamptz FROM invoices WHERE id = $1")
        .bind(id)
        .bind(ts)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        same,
        "{label}: updated_at {ts:?} is not the instant stored in PostgreSQL"
    );
}

// ---------------------------------------------------------------------------------------------
// The contract every MCP client sees, on the wire JSON of the results.

/// The error code of a tool result envelope.
pub fn err_code(result: &Value) -> &str {
    result["structuredContent"]["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

pub fn is_error(result: &Value) -> bool {
    result["isError"].as_bool().unwrap_or(false)
}

/// `tools/list`: exactly the configured tools under canonical names, strict schemas, honest
/// annotations, and nothing that runs SQL, approves or applies.
pub fn assert_tools(tools: &Value, label: &str) {
    let tools = tools
        .as_array()
        .unwrap_or_else(|| panic!("{label}: tools is not an array"));
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let mut want = TOOLS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{label}: exactly the configured tools");
    for t in tools {
        let name = t["name"].as_str().unwrap();
        let lower = name.to_ascii_lowercase();
        for bad in ["sql", "execute", "approve", "apply", "query"] {
            assert!(!lower.contains(bad), "{label}: tool {name} looks like {bad}");
        }
        let schema = &t["inputSchema"];
        assert_eq!(schema["type"], "object", "{label}: {name}");
        assert_eq!(schema["additionalProperties"], false, "{label}: {name}: {schema}");
        let props = schema["properties"].as_object().unwrap();
        for reserved in ["tenant_id", "tenant", "principal"] {
            assert!(!props.contains_key(reserved), "{label}: {name} accepts {reserved}");
        }
        let read = name.contains("inspect");
        assert_eq!(t["annotations"]["readOnlyHint"], read, "{label}: {name}: {t}");
        assert_eq!(t["annotations"]["destructiveHint"], false, "{label}: {name}");
        assert_eq!(t["_meta"]["synapsor.raw_sql_exposed"], false, "{label}: {name}");
        assert_eq!(t["_meta"]["synapsor.canonical_tool_name"], name, "{label}");
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{label}: {name}"
        );
    }
}

/// A read of INV-1: not an error, and `structuredContent.data` equals the database row.
pub async fn assert_read(db: &TestDb, result: &Value, label: &str) {
    assert!(!is_error(result), "{label}: {result}");
    let env = &result["structuredContent"];
    assert_eq!(env["ok"], true, "{label}: {env}");
    assert_eq!(env["source_database_changed"], false, "{label}");
    assert_eq!(env["_meta"]["canonical_capability"], "billing.inspect_invoice");
    assert_eq!(env["_meta"]["provenance"], "environment", "{label}");
    assert!(
        !result.to_string().contains("\"acme\""),
        "{label}: the trusted tenant leaked: {result}"
    );
    assert!(
        !result.to_string().contains("secret acme note"),
        "{label}: a hidden column leaked"
    );
    assert_invoice_matches_db(db, "INV-1", &env["data"], label).await;
    // The text content carries the same envelope for clients that ignore structuredContent.
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let from_text: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    assert_eq!(&from_text, env, "{label}: text content and structuredContent agree");
}

/// A waiver proposal on INV-1: the diff's `before` is the database value, and the database row
/// is unchanged afterwards. Returns the proposal id.
pub async fn assert_proposal(db: &TestDb, result: &Value, label: &str) -> String {
    assert!(!is_error(result), "{label}: {result}");
    let env = &result["structuredContent"];
    assert_eq!(env["ok"], true, "{label}: {env}");
    let before = db_late_fee(db, "INV-1").await;
    assert_eq!(
        env["proposal"]["diff"],
        json!({"late_fee_cents": {"before": before, "after": 0}}),
        "{label}: {env}"
    );
    assert_eq!(env["proposal"]["approval_required"], true);
    assert_eq!(env["source_database_changed"], false);
    assert_eq!(
        db_late_fee(db, "INV-1").await,
        5500,
        "{label}: a proposal must not write the database"
    );
    env["proposal"]["id"].as_str().unwrap().to_owned()
}

/// A read with a model-supplied `tenant_id` is refused as an invalid argument.
pub fn assert_tenant_arg_rejected(result: &Value, label: &str) {
    assert!(is_error(result), "{label}: {result}");
    assert_eq!(err_code(result), "INVALID_ARGUMENT", "{label}: {result}");
    assert!(
        !result.to_string().contains("Globex"),
        "{label}: other tenant's data: {result}"
    );
}

/// Another tenant's id and a missing id give the same NOT_FOUND_IN_TENANT answer.
pub fn assert_not_found_alike(other: &Value, missing: &Value, label: &str) {
    assert!(is_error(other), "{label}: {other}");
    assert_eq!(err_code(other), "NOT_FOUND_IN_TENANT", "{label}: {other}");
    assert_eq!(
        other["structuredContent"]["error"], missing["structuredContent"]["error"],
        "{label}: another tenant's row must look exactly like a missing one"
    );
    assert_eq!(other["isError"], missing["isError"], "{label}");
    let s = other.to_string();
    assert!(
        !s.contains("Globex") && !s.contains("globex"),
        "{label}: cross-tenant data leaked: {s}"
    );
}

/// Where the TypeScript client lives.
pub fn ts_client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tests/mcp-clients")
}
