//! `synapsor-runner apply` through app-owned handlers, end to end: proposals made through the
//! runtime on a real PostgreSQL source (marked `read_only`: the runner never writes it),
//! approved in the ledger, applied by the binary through
//!
//! - an `http_handler` executor pointing at the Node template (`templates/http-node`) and at
//!   the FastAPI template (`templates/fastapi`), each run as a real server with its demo data,
//!   behind a small recording proxy written here that can also answer 5xx, lose an answer, or
//!   stall past `timeout_ms` instead of forwarding;
//! - a `command_handler` executor running the command template (`templates/command`) with
//!   python3 and its SQLite demo database.
//!
//! Each checks: applied once (the handler's data changes once), apply again is
//! `already_applied`, transient failures are retried with the same idempotency key, failures
//! leave the proposal retryable and a later apply succeeds once, a wrong secret or token is
//! `HANDLER_UNAUTHORIZED` with nothing applied, a dry run records nothing, a conflict closes the
//! proposal.
//!
//! Without PostgreSQL, node or python3 (+ fastapi, uvicorn) the tests are skipped with a message,
//! unless `SYNAPSOR_REQUIRE_DBS=1`, where they fail.
#![allow(clippy::unwrap_used)]

mod writeback_support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use synapsor_testdb::TestDb;
use writeback_support::{RUNNER, Setup, WDb, apply_json, code, status};

const SECRET: &str = "handler-flow-secret-0123456789abcdef";
const OTHER_SECRET: &str = "not-the-handler-secret-0123456789abcdef";
const KID: &str = "flow-2026";
const TOKEN: &str = "tok-handler-flow";
const CAPABILITY: &str = "support.propose_ticket_priority";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether a tool works; when it does not: skip (message) or, under SYNAPSOR_REQUIRE_DBS=1, fail.
fn available(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var("SYNAPSOR_REQUIRE_DBS").as_deref() == Ok("1") {
        panic!("{what} is missing but SYNAPSOR_REQUIRE_DBS=1: run through scripts/test.sh");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh installs it; SYNAPSOR_REQUIRE_DBS=1 makes this fail)");
    false
}

/// The python3 interpreter itself (not a version-manager shim, which needs more environment
/// than the runner's cleared one).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

// ------------------------------------------------------------------------------------------------
// The source and the app's data

/// The source: the rows the agent reads and proposes on. Nothing here is ever written.
const PG_SEED: &str = r#"
CREATE TABLE support_tickets (
  id text PRIMARY KEY, tenant_id text NOT NULL, subject text NOT NULL, priority text NOT NULL,
  status text NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO support_tickets (id, tenant_id, subject, priority, status, updated_at)
SELECT 'tkt_acme_3' || lpad(n::text, 2, '0'), 'acme', 'Ticket ' || n, 'normal', 'open', '2025-03-03 09:00:00+00'
FROM generate_series(1, 12) AS n;
INSERT INTO support_tickets VALUES
  ('tkt_acme_399', 'acme', 'Moved by the app', 'normal', 'open', '2025-03-03 09:00:00+00'),
  ('tkt_glbx_401', 'globex', 'Other tenant', 'normal', 'open', '2025-03-03 09:00:00+00');
"#;

/// The handler's own table: the same tickets (its demo "database"), except tkt_acme_399, which
/// the app changed after the agent read it.
fn demo_data(dir: &Path) -> PathBuf {
    let mut rows: Vec<Value> = (1..=12)
        .map(|n| {
            json!({"id": format!("tkt_acme_3{n:02}"), "tenant_id": "acme", "subject": format!("Ticket {n}"),
                   "priority": "normal", "status": "open", "assignee": null, "updated_at": "2025-03-03T09:00:00Z"})
        })
        .collect();
    rows.push(
        json!({"id": "tkt_acme_399", "tenant_id": "acme", "subject": "Moved by the app",
                     "priority": "urgent", "status": "open", "assignee": null, "updated_at": "2025-03-05T12:00:00Z"}),
    );
    let path = dir.join("demo.json");
    std::fs::write(&path, json!({"support_tickets": rows}).to_string()).unwrap();
    path
}

async fn source() -> Option<WDb> {
    let db = TestDb::with_seed(synapsor_testdb::Server::Postgres, PG_SEED).await?;
    Some(RUNNER.wrap(db))
}

/// The reviewed config: one proposal capability on a read-only source, through `executor`.
fn extra(executor: Value) -> Value {
    json!({
        "sources": {"main": {"engine": "postgres", "read_url_env": "TEST_READ_URL", "read_only": true, "statement_timeout_ms": 4000}},
        "executors": {"support_app": executor},
        "capabilities": [{
            "name": CAPABILITY, "kind": "proposal", "source": "main",
            "description": "Propose a ticket priority.",
            "target": {"schema": "public", "table": "support_tickets", "primary_key": "id", "tenant_key": "tenant_id"},
            "args": {"ticket_id": {"type": "string", "max_length": 64},
                     "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]}},
            "lookup": {"id_from_arg": "ticket_id"},
            "visible_columns": ["id", "subject", "priority", "status", "updated_at"],
            "patch": {"priority": {"from_arg": "priority"}},
            "allowed_columns": ["priority"],
            "conflict_guard": {"column": "updated_at"},
            "executor": "support_app"
        }]
    })
}

async fn approved(s: &Setup, ticket: &str, priority: &str) -> String {
    let p = s
        .propose(CAPABILITY, json!({"ticket_id": ticket, "priority": priority}))
        .await;
    s.approve(&p);
    p
}

/// `apply <id> --json [extra]` run off the async workers (the proxy serves meanwhile).
async fn apply(s: &Setup, id: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut cmd = s.apply_command(id, extra, env);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    apply_json(&out)
}

/// An `applied` receipt for a write an earlier attempt made: its row, and the `recovered` check.
fn assert_recovered(v: &Value) {
    assert_eq!(v["receipt"]["rows_affected"], 1, "{v}");
    let checks = v["receipt"]["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["name"] == "recovered"), "{v}");
}

fn key(v: &Value) -> String {
    v["receipt"]["idempotency_key"].as_str().unwrap().to_owned()
}

fn ledger_receipts(s: &Setup, id: &str) -> Vec<String> {
    s.store()
        .receipts_for(id)
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.status, r.safe_error_code.unwrap_or_default()))
        .collect()
}

/// The source is never written by a handler executor.
async fn source_untouched(s: &Setup) {
    assert_eq!(
        s.db.int("SELECT count(*) FROM support_tickets WHERE priority <> 'normal'")
            .await,
        0
    );
}

// ------------------------------------------------------------------------------------------------
// Real handler processes

/// A child process killed (by its handle) when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn handler_env(cmd: &mut Command, data: &Path) {
    cmd.env("SYNAPSOR_HANDLER_SIGNING_SECRET", SECRET)
        .env("SYNAPSOR_HANDLER_KEY_ID", KID)
        .env("SYNAPSOR_HANDLER_TOKEN", TOKEN)
        .env("SYNAPSOR_HANDLER_DEMO_DATA", data)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET")
        .env_remove("SYNAPSOR_HANDLER_SKEW_SECS");
}

/// The Node template on a free port; returns it and its URL.
fn start_node(dir: &Path) -> (Server, String) {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("templates/http-node/handler.mjs"))
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    handler_env(&mut cmd, &demo_data(dir));
    let mut server = Server(cmd.spawn().unwrap());
    // It prints its URL once it listens.
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (server, url)
}

/// The FastAPI template under uvicorn on a free port.
fn start_fastapi(dir: &Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        "127.0.0.1",
        "--log-level",
        "warning",
    ])
    .arg("--port")
    .arg(port.to_string())
    .arg("--app-dir")
    .arg(repo().join("templates/fastapi"))
    .current_dir(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    handler_env(&mut cmd, &demo_data(dir));
    let mut server = Server(cmd.spawn().unwrap());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("uvicorn exited early with {status}");
        }
        assert!(Instant::now() < deadline, "uvicorn did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://127.0.0.1:{port}/synapsor/apply"))
}

// ------------------------------------------------------------------------------------------------
// The recording proxy between the runner and the HTTP handler

#[derive(Debug, Clone)]
enum Mode {
    /// Forward to the handler and return its answer.
    Forward,
    /// Answer this status with an empty body; the handler never sees the request.
    Status(u16),
    /// Forward (the handler applies), then answer this status without the receipt: a lost answer.
    LoseAnswer(u16),
    /// Answer 503 only after this long (past the runner's timeout); the handler never sees it.
    Stall(Duration),
    /// Forward (the handler applies), then answer 200 with this body instead of the receipt.
    Garbage(Vec<u8>),
}

/// One request the runner sent.
#[derive(Debug, Clone)]
struct Hit {
    idempotency_key: String,
    request: Value,
    /// What the real handler answered, when the request was forwarded.
    upstream: Option<(u16, Value)>,
}

#[derive(Debug)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    modes: VecDeque<Mode>,
    hits: Vec<Hit>,
}

type Shared = Arc<Mutex<ProxyState>>;

async fn proxy(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (mode, upstream, client, index) = {
        let mut s = st.lock().unwrap();
        let mode = s.modes.pop_front().unwrap_or(Mode::Forward);
        s.hits.push(Hit {
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            request: serde_json::from_slice(&body).unwrap_or(Value::Null),
            upstream: None,
        });
        (mode, s.upstream.clone(), s.client.clone(), s.hits.len() - 1)
    };
    let empty = |status: u16| StatusCode::from_u16(status).unwrap().into_response();
    match mode {
        Mode::Status(status) => empty(status),
        Mode::Stall(d) => {
            tokio::time::sleep(d).await;
            empty(503)
        }
        Mode::Forward | Mode::LoseAnswer(_) | Mode::Garbage(_) => {
            let mut req = client.post(&upstream).body(body);
            for name in [
                "content-type",
                "authorization",
                "idempotency-key",
                "x-synapsor-proposal-id",
                "x-synapsor-signature",
            ] {
                if let Some(v) = headers.get(name) {
                    req = req.header(name, v.clone());
                }
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            let receipt: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            st.lock().unwrap().hits[index].upstream = Some((status, receipt));
            match mode {
                Mode::LoseAnswer(s) => empty(s),
                Mode::Garbage(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
                _ => (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    text,
                )
                    .into_response(),
            }
        }
    }
}

struct Proxy {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state: Shared = Arc::new(Mutex::new(ProxyState {
            upstream,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            modes: VecDeque::new(),
            hits: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/synapsor/apply", axum::routing::any(proxy))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Proxy { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/synapsor/apply?ignored=query-s3cret", self.addr)
    }

    fn then(&self, modes: &[Mode]) {
        self.state.lock().unwrap().modes.extend(modes.iter().cloned());
    }

    fn hits(&self, key: &str) -> Vec<Hit> {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.idempotency_key == key)
            .cloned()
            .collect()
    }

    fn total(&self) -> usize {
        self.state.lock().unwrap().hits.len()
    }

    /// How many times the real handler wrote for `key` (answered `applied`, 1 row).
    fn writes(&self, key: &str) -> usize {
        self.hits(key)
            .iter()
            .filter(|h| {
                h.upstream
                    .as_ref()
                    .is_some_and(|(_, r)| r["status"] == "applied" && r["rows_affected"] == 1)
            })
            .count()
    }

    fn upstream_answers(&self, key: &str) -> Vec<String> {
        self.hits(key)
            .iter()
            .filter_map(|h| h.upstream.as_ref())
            .map(|(s, r)| {
                format!(
                    "{s} {} {}",
                    r["status"].as_str().unwrap_or("?"),
                    r["error_code"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------------------------------------------
// The HTTP flow, run against the Node and the FastAPI template

async fn http_flow(name: &str, upstream: String) {
    let Some(db) = source().await else { return };
    let proxy = Proxy::start(upstream).await;
    let s = Setup::new(
        db,
        extra(json!({
            "type": "http_handler", "url_env": "HANDLER_URL",
            "auth": {"type": "bearer_env", "token_env": "HANDLER_TOKEN"},
            "signing_secret_env": "HANDLER_SECRET", "signing_key_id": KID,
            "timeout_ms": 1500
        })),
    );
    let url = proxy.url();
    let ok: Vec<(&str, &str)> = vec![
        ("HANDLER_URL", &url),
        ("HANDLER_SECRET", SECRET),
        ("HANDLER_TOKEN", TOKEN),
    ];

    // 1. Approved → apply → applied; the handler wrote once, with the approval in the request.
    let p1 = approved(&s, "tkt_acme_301", "high").await;
    let (rc, v) = apply(&s, &p1, &[], &ok).await;
    assert_eq!((rc, status(&v), code(&v)), (0, "applied", "-"), "{name}: {v}");
    assert_eq!(v["state"], "applied");
    assert_eq!(v["receipt"]["rows_affected"], 1);
    assert_eq!(v["receipt"]["executor"], "support_app");
    assert!(v["receipt"]["new_version"].is_string(), "{name}: {v}");
    let k1 = key(&v);
    assert_eq!(proxy.writes(&k1), 1, "{name}");
    let hit = &proxy.hits(&k1)[0];
    assert_eq!(hit.request["approvals"][0]["approver"], "alice", "{name}");
    assert_eq!(hit.request["tenant"]["value"], "acme");
    assert_eq!(hit.request["dry_run"], false);
    assert_eq!(ledger_receipts(&s, &p1), vec!["applied "]);
    assert!(!v.to_string().contains("query-s3cret"), "{name}: {v}");

    // 2. Apply again: already_applied from the ledger; the handler is not called again.
    let (rc, v) = apply(&s, &p1, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "already_applied"), "{name}: {v}");
    assert_eq!(proxy.hits(&k1).len(), 1, "{name}");

    // 3. The handler applies but its answer is lost (502): the retry, with the same key, is
    //    already_applied at the handler, and that write is recorded as the proposal's. One write.
    let p2 = approved(&s, "tkt_acme_302", "high").await;
    proxy.then(&[Mode::LoseAnswer(502)]);
    let (rc, v) = apply(&s, &p2, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    assert_recovered(&v);
    assert_eq!(v["state"], "applied");
    let k2 = key(&v);
    assert_eq!(proxy.hits(&k2).len(), 2, "{name}");
    assert_eq!(proxy.writes(&k2), 1, "{name}");
    assert_eq!(
        proxy.upstream_answers(&k2),
        vec!["200 applied -", "200 already_applied -"],
        "{name}"
    );

    // 3b. The handler applies but answers 200 with something that is no receipt: a proxy's
    //     error page, a truncated receipt, a receipt breaking its rules, 2 MB of noise. The
    //     outcome is unknown, so each is HANDLER_RECEIPT_INVALID and stays retryable; the retry
    //     carries the same key, is already_applied at the handler, and is recorded as the
    //     proposal's write. One write each.
    let garbage: Vec<Vec<u8>> = vec![
        b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        br#"{"schema_version":"synapsor.handler-receipt.v1","status":"appl"#.to_vec(),
        br#"{"schema_version":"synapsor.handler-receipt.v1","status":"applied","rows_affected":7}"#.to_vec(),
        vec![b'{'; 2 << 20],
    ];
    for (i, body) in garbage.into_iter().enumerate() {
        let p = approved(&s, &format!("tkt_acme_3{:02}", 9 + i), "high").await;
        proxy.then(&[Mode::Garbage(body)]);
        let (rc, v) = apply(&s, &p, &[], &ok).await;
        assert_eq!(
            (rc, status(&v), code(&v)),
            (1, "failed", "HANDLER_RECEIPT_INVALID"),
            "{name}: garbage {i}: {v}"
        );
        let k = key(&v);
        assert_eq!((proxy.hits(&k).len(), proxy.writes(&k)), (1, 1), "{name}: garbage {i}");
        assert_eq!(s.state(&p), "failed");
        let (rc, v) = apply(&s, &p, &[], &ok).await;
        assert_eq!((rc, status(&v)), (0, "applied"), "{name}: garbage {i}: {v}");
        assert_recovered(&v);
        assert_eq!(s.state(&p), "applied");
        assert_eq!((proxy.hits(&k).len(), proxy.writes(&k)), (2, 1), "{name}: garbage {i}");
        assert_eq!(
            ledger_receipts(&s, &p),
            vec!["failed HANDLER_RECEIPT_INVALID", "applied "]
        );
    }

    // 4. 503 twice, then the handler: applied in one apply, three requests, one key, one write.
    let p3 = approved(&s, "tkt_acme_303", "urgent").await;
    let before = proxy.total();
    proxy.then(&[Mode::Status(503), Mode::Status(503)]);
    let (rc, v) = apply(&s, &p3, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    let k3 = key(&v);
    assert_eq!(proxy.total() - before, 3, "{name}");
    assert_eq!(proxy.hits(&k3).len(), 3, "{name}: every attempt carries the same key");
    assert_eq!(proxy.writes(&k3), 1, "{name}");
    let calls = v["receipt"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "handler_call")
        .count();
    assert_eq!(calls, 3, "{name}: {v}");

    // 5. A handler that keeps failing (500): failed after the retries, nothing written, the
    //    proposal stays retryable; a later apply succeeds once, still with the same key.
    let p4 = approved(&s, "tkt_acme_304", "low").await;
    proxy.then(&[Mode::Status(500), Mode::Status(500), Mode::Status(500)]);
    let (rc, v) = apply(&s, &p4, &[], &ok).await;
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "failed", "HANDLER_UNAVAILABLE"),
        "{name}: {v}"
    );
    assert_eq!(v["state"], "failed");
    let k4 = key(&v);
    assert_eq!((proxy.hits(&k4).len(), proxy.writes(&k4)), (3, 0), "{name}");
    assert_eq!(ledger_receipts(&s, &p4), vec!["failed HANDLER_UNAVAILABLE"]);
    let (rc, v) = apply(&s, &p4, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    assert_eq!(key(&v), k4);
    assert_eq!((proxy.hits(&k4).len(), proxy.writes(&k4)), (4, 1), "{name}");
    assert_eq!(s.state(&p4), "applied");

    // 6. A handler slower than timeout_ms: HANDLER_TIMEOUT after the retries; then it succeeds.
    let p5 = approved(&s, "tkt_acme_305", "high").await;
    let stall = Mode::Stall(Duration::from_secs(4));
    proxy.then(&[stall.clone(), stall.clone(), stall]);
    let started = Instant::now();
    let (rc, v) = apply(&s, &p5, &[], &ok).await;
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "failed", "HANDLER_TIMEOUT"),
        "{name}: {v}"
    );
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    assert_eq!(s.state(&p5), "failed");
    let k5 = key(&v);
    assert_eq!(proxy.writes(&k5), 0);
    let (rc, v) = apply(&s, &p5, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    assert_eq!(proxy.writes(&k5), 1, "{name}");

    // 7. Wrong secret, wrong token: the template answers 401; HANDLER_UNAUTHORIZED, nothing
    //    applied. A missing token is caught before sending. Then the right secret applies.
    let p6 = approved(&s, "tkt_acme_306", "urgent").await;
    let wrong_secret: Vec<(&str, &str)> = vec![
        ("HANDLER_URL", &url),
        ("HANDLER_SECRET", OTHER_SECRET),
        ("HANDLER_TOKEN", TOKEN),
    ];
    let (rc, v) = apply(&s, &p6, &[], &wrong_secret).await;
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "failed", "HANDLER_UNAUTHORIZED"),
        "{name}: {v}"
    );
    assert!(
        v["receipt"]["message"].as_str().unwrap().contains("SIGNATURE_MISMATCH"),
        "{v}"
    );
    let k6 = key(&v);
    assert_eq!(
        proxy.upstream_answers(&k6),
        vec!["401 failed SIGNATURE_MISMATCH"],
        "{name}"
    );
    let wrong_token: Vec<(&str, &str)> = vec![
        ("HANDLER_URL", &url),
        ("HANDLER_SECRET", SECRET),
        ("HANDLER_TOKEN", "tok-wrong"),
    ];
    let (rc, v) = apply(&s, &p6, &[], &wrong_token).await;
    assert_eq!((rc, code(&v)), (1, "HANDLER_UNAUTHORIZED"), "{name}: {v}");
    assert_eq!(proxy.hits(&k6).len(), 2);
    let (rc, v) = apply(&s, &p6, &[], &[("HANDLER_URL", &url), ("HANDLER_SECRET", SECRET)]).await;
    assert_eq!((rc, code(&v)), (1, "HANDLER_TOKEN_MISSING"), "{name}: {v}");
    assert_eq!(proxy.hits(&k6).len(), 2, "{name}: nothing sent without the token");
    assert_eq!(proxy.writes(&k6), 0);
    assert_eq!(s.state(&p6), "failed");
    let (rc, v) = apply(&s, &p6, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    assert_eq!(proxy.writes(&k6), 1);

    // 8. A dry run: the handler checks and answers, nothing is recorded and the key is not burned.
    let p7 = approved(&s, "tkt_acme_307", "low").await;
    let (rc, v) = apply(&s, &p7, &["--dry-run"], &ok).await;
    assert_eq!((rc, status(&v)), (0, "would_apply"), "{name}: {v}");
    assert_eq!(v["receipt"]["rows_affected"], 0);
    assert_eq!(v["receipt"]["source_database_mutated"], false);
    let k7 = key(&v);
    assert_eq!(proxy.hits(&k7)[0].request["dry_run"], true);
    assert_eq!(proxy.upstream_answers(&k7), vec!["200 applied -"]);
    assert_eq!(proxy.writes(&k7), 0);
    assert_eq!(s.state(&p7), "approved");
    assert!(ledger_receipts(&s, &p7).is_empty());
    let (rc, v) = apply(&s, &p7, &[], &ok).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{name}: {v}");
    assert_eq!(proxy.writes(&k7), 1);

    // 9. The app's row moved after the agent read it: conflict, final.
    let p8 = approved(&s, "tkt_acme_399", "low").await;
    let (rc, v) = apply(&s, &p8, &[], &ok).await;
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "conflict", "VERSION_CONFLICT"),
        "{name}: {v}"
    );
    assert_eq!(s.state(&p8), "conflict");
    let (rc, v) = apply(&s, &p8, &[], &ok).await;
    assert_eq!((rc, code(&v)), (1, "PROPOSAL_CONFLICT"), "{name}: {v}");

    // A missing URL: failed before anything is sent, retryable.
    let p9 = approved(&s, "tkt_acme_308", "high").await;
    let sent = proxy.total();
    let (rc, v) = apply(&s, &p9, &[], &[("HANDLER_SECRET", SECRET), ("HANDLER_TOKEN", TOKEN)]).await;
    assert_eq!((rc, code(&v)), (1, "HANDLER_URL_MISSING"), "{name}: {v}");
    assert_eq!(proxy.total(), sent);
    assert_eq!(s.state(&p9), "failed");

    // The figure for the reliability report: every proposal's row written at most once, however
    // its handler failed on the way.
    let keys: std::collections::BTreeSet<String> = proxy
        .state
        .lock()
        .unwrap()
        .hits
        .iter()
        .map(|h| h.idempotency_key.clone())
        .collect();
    let most = keys.iter().map(|k| proxy.writes(k)).max().unwrap_or(0);
    assert!(most <= 1, "{name}: a row written {most} times");
    println!(
        "handler faults ({name}): {} proposals through 5xx, lost answers, hangs past timeout_ms, garbage and bad credentials: {} requests, {} writes, no row written twice",
        keys.len(),
        proxy.total(),
        keys.iter().map(|k| proxy.writes(k)).sum::<usize>()
    );
    source_untouched(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_http_handler() {
    if !available("node", "node", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start_node(dir.path());
    http_flow("node", url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_http_handler() {
    if !available(
        "python3 with fastapi and uvicorn",
        "python3",
        &["-c", "import fastapi, uvicorn"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start_fastapi(dir.path());
    http_flow("fastapi", url).await;
}

// ------------------------------------------------------------------------------------------------
// The command template

/// `[count of recorded keys, priority of ticket]` from the command template's SQLite database.
fn app_db(db: &Path, ticket: &str) -> Value {
    if !db.exists() {
        return json!([0, "normal"]);
    }
    let out = Command::new(python())
        .args([
            "-c",
            "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); \
             print(json.dumps([c.execute('select count(*) from synapsor_handler_receipts').fetchone()[0], \
             c.execute('select priority from support_tickets where id=?', (sys.argv[2],)).fetchone()[0]]))",
        ])
        .arg(db)
        .arg(ticket)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_handler() {
    if !available("python3", "python3", &["--version"]) {
        return;
    }
    let Some(db) = source().await else { return };
    let s = Setup::new(
        db,
        extra(json!({
            "type": "command_handler", "command_env": "HANDLER_COMMAND",
            "signing_secret_env": "HANDLER_SECRET", "signing_key_id": KID, "timeout_ms": 20000
        })),
    );
    let app = tempfile::tempdir().unwrap();
    let data = demo_data(app.path());
    let app_db_path = app.path().join("app.db");
    let command = format!("{} {}", python(), repo().join("templates/command/handler.py").display());
    let data_s = data.display().to_string();
    let db_s = app_db_path.display().to_string();
    let env = |secret: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("HANDLER_COMMAND", command.clone()),
            ("HANDLER_SECRET", secret.to_owned()),
            // The command's own settings (it inherits the runner's environment).
            ("SYNAPSOR_HANDLER_SIGNING_SECRET", SECRET.to_owned()),
            ("SYNAPSOR_HANDLER_KEY_ID", KID.to_owned()),
            ("SYNAPSOR_HANDLER_DB", db_s.clone()),
            ("SYNAPSOR_HANDLER_DEMO_DATA", data_s.clone()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ]
    };
    let run = async |id: &str, extra: &[&str], secret: &'static str| {
        let e = env(secret);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        apply(&s, id, extra, &e).await
    };

    // A dry run first: the command checks, writes nothing, the ledger records nothing.
    let p1 = approved(&s, "tkt_acme_301", "high").await;
    let (rc, v) = run(&p1, &["--dry-run"], SECRET).await;
    assert_eq!((rc, status(&v)), (0, "would_apply"), "{v}");
    assert_eq!(s.state(&p1), "approved");
    assert!(ledger_receipts(&s, &p1).is_empty());
    assert_eq!(app_db(&app_db_path, "tkt_acme_301"), json!([0, "normal"]));

    // Applied once; the app's row and its idempotency record change together.
    let (rc, v) = run(&p1, &[], SECRET).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{v}");
    assert_eq!(v["receipt"]["rows_affected"], 1);
    assert_eq!(app_db(&app_db_path, "tkt_acme_301"), json!([1, "high"]));
    let (rc, v) = run(&p1, &[], SECRET).await;
    assert_eq!((rc, status(&v)), (0, "already_applied"), "{v}");
    assert_eq!(app_db(&app_db_path, "tkt_acme_301"), json!([1, "high"]));

    // The wrong secret: the command refuses the signature; nothing applied; retryable.
    let p2 = approved(&s, "tkt_acme_302", "urgent").await;
    let (rc, v) = run(&p2, &[], OTHER_SECRET).await;
    assert_eq!((rc, status(&v), code(&v)), (1, "failed", "HANDLER_UNAUTHORIZED"), "{v}");
    assert_eq!(s.state(&p2), "failed");
    assert_eq!(app_db(&app_db_path, "tkt_acme_302"), json!([1, "normal"]));
    let (rc, v) = run(&p2, &[], SECRET).await;
    assert_eq!((rc, status(&v)), (0, "applied"), "{v}");
    assert_eq!(app_db(&app_db_path, "tkt_acme_302"), json!([2, "urgent"]));

    // The app's row moved: conflict.
    let p3 = approved(&s, "tkt_acme_399", "low").await;
    let (rc, v) = run(&p3, &[], SECRET).await;
    assert_eq!((rc, status(&v), code(&v)), (1, "conflict", "VERSION_CONFLICT"), "{v}");
    assert_eq!(s.state(&p3), "conflict");

    // A command that cannot be started: failed, retryable.
    let p4 = approved(&s, "tkt_acme_303", "low").await;
    let (rc, v) = apply(
        &s,
        &p4,
        &[],
        &[("HANDLER_COMMAND", "/nonexistent/handler"), ("HANDLER_SECRET", SECRET)],
    )
    .await;
    assert_eq!((rc, code(&v)), (1, "HANDLER_COMMAND_NOT_FOUND"), "{v}");
    assert_eq!(s.state(&p4), "failed");

    // Fixed, it applies; the human checklist shows the handler's steps.
    let e = env(SECRET);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = s.run(&["apply", &p4], &e);
    let text = writeback_support::text(&out);
    assert!(out.status.success(), "{text}");
    for want in [
        "via support_app",
        "handler request: command ",
        "signed with key id flow-2026",
        "handler answer: exit 0, receipt applied (rows 1)",
        "Result  applied",
        "The handler reported a write in this run: yes",
        "State   applied",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(app_db(&app_db_path, "tkt_acme_303"), json!([3, "low"]));

    source_untouched(&s).await;
}
