//! The handler templates, run for real and driven with requests signed by
//! `synapsor_handler::sign`: the Node template with `node`, the FastAPI template with
//! `python3 -m uvicorn`, the command template with `python3` (stdin → stdout), and the axum
//! template compiled into this test and served in-process.
//!
//! Each gets the same scenarios: a valid request is applied once; its replay (same or re-signed)
//! is `already_applied`; tampered, wrong-key, unknown-key, stale and future requests are refused
//! with 401; a moved version and another tenant are `conflict`; a column outside the app's policy
//! is refused; a dry run writes nothing and does not burn the idempotency key.
//!
//! Without node / python3 (or fastapi + uvicorn) the affected tests are skipped with a message,
//! unless `SYNAPSOR_REQUIRE_DBS=1` (set by scripts/test.sh and CI), where they fail.
#![allow(clippy::unwrap_used)]

// The template is an app's own code: it reads its own clock, not the runner's.
#[allow(dead_code, clippy::disallowed_methods)]
#[path = "../../templates/axum/main.rs"]
mod axum_template;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use synapsor_core::context::{Clock, SystemClock};

use serde_json::{Value, json};
use synapsor_handler::{KeyRing, sign};

const SECRET: &str = "template-test-secret-0123456789abcdef";
const KID: &str = "test-2026";
const PREVIOUS_SECRET: &str = "previous-test-secret-0123456789abcdef";
const PREVIOUS_KID: &str = "test-2025";
const OTHER_SECRET: &str = "not-the-handler-secret-0123456789abcdef";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn now() -> i64 {
    SystemClock.now_ms().div_euclid(1000)
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

/// The app's table, in a few of the spellings real databases use for timestamps.
fn demo_data() -> Value {
    json!({"support_tickets": [
        {"id": "tkt_acme_301", "tenant_id": "acme", "subject": "Invoice PDF will not download",
         "priority": "normal", "status": "open", "assignee": "dana", "updated_at": "2025-03-03 09:00:00+00"},
        {"id": "tkt_glbx_401", "tenant_id": "globex", "subject": "API returns 500 on bulk export",
         "priority": "urgent", "status": "open", "assignee": "sam", "updated_at": "2025-03-02T08:45:00Z"},
        {"id": "tkt_glbx_402", "tenant_id": "globex", "subject": "Add a second admin to the account",
         "priority": "normal", "status": "open", "assignee": null, "updated_at": "2025-03-07T10:05:00+00:00"}
    ]})
}

fn write_demo_data(dir: &Path) -> PathBuf {
    let path = dir.join("demo.json");
    std::fs::write(&path, serde_json::to_vec(&demo_data()).unwrap()).unwrap();
    path
}

/// A request built from the documented fixture.
fn request(t: i64, key: &str, pk: &str, tenant: &str, patch: Value, expected_version: &str) -> Value {
    let mut r: Value = serde_json::from_str(include_str!("../../crates/handler/tests/fixtures/request.json")).unwrap();
    let column = patch.as_object().unwrap().keys().next().cloned().unwrap_or_default();
    r["issued_at"] = json!(t);
    r["proposal_id"] = json!(format!("prop_{key}"));
    r["idempotency_key"] = json!(format!("prop_{key}:{pk}"));
    r["action"] = json!(if column == "status" {
        "support.propose_ticket_resolution"
    } else {
        "support.propose_ticket_priority"
    });
    r["tenant"]["value"] = json!(tenant);
    r["target"]["primary_key"]["value"] = json!(pk);
    r["allowed_columns"] = json!([column]);
    r["patch"] = patch;
    r["expected_version"]["value"] = json!(expected_version);
    r
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn signed(v: &Value) -> (Vec<u8>, Option<String>) {
    let b = body(v);
    let t = v["issued_at"].as_i64().unwrap();
    let s = sign(SECRET.as_bytes(), KID, t, &b);
    (b, Some(s))
}

/// How a scenario reaches a handler.
enum Target {
    Http { client: reqwest::Client, url: String },
    Command { dir: PathBuf, data: PathBuf },
}

impl Target {
    fn http(url: String) -> Target {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Target::Http {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            url,
        }
    }

    /// (HTTP status, or None for a command; the receipt).
    async fn send(&self, body: Vec<u8>, signature: Option<String>) -> (Option<u16>, Value) {
        match self {
            Target::Http { client, url } => {
                let mut req = client.post(url).header("content-type", "application/json").body(body);
                if let Some(s) = signature {
                    req = req.header("X-Synapsor-Signature", s);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap();
                let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
                (Some(status), v)
            }
            Target::Command { dir, data } => {
                let mut cmd = Command::new("python3");
                cmd.arg(repo().join("templates/command/handler.py"))
                    .current_dir(dir)
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .env("SYNAPSOR_HANDLER_SIGNING_SECRET", SECRET)
                    .env("SYNAPSOR_HANDLER_KEY_ID", KID)
                    .env("SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET", PREVIOUS_SECRET)
                    .env("SYNAPSOR_HANDLER_PREVIOUS_KEY_ID", PREVIOUS_KID)
                    .env("SYNAPSOR_HANDLER_DB", dir.join("app.db"))
                    .env("SYNAPSOR_HANDLER_DEMO_DATA", data)
                    .env_remove("SYNAPSOR_HANDLER_SKEW_SECS")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                match signature {
                    Some(s) => cmd.env("SYNAPSOR_SIGNATURE", s),
                    None => cmd.env_remove("SYNAPSOR_SIGNATURE"),
                };
                let mut child = cmd.spawn().unwrap();
                // The body, then one newline (not part of the signed bytes).
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(&body).unwrap();
                stdin.write_all(b"\n").unwrap();
                drop(stdin);
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "command handler exited {:?}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8_lossy(&out.stdout);
                let v = serde_json::from_str(text.trim())
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", String::from_utf8_lossy(&out.stderr)));
                (None, v)
            }
        }
    }
}

fn assert_receipt(
    name: &str,
    case: &str,
    got: &(Option<u16>, Value),
    http: u16,
    status: &str,
    rows: u64,
    code: Option<&str>,
) {
    let (got_http, r) = got;
    if let Some(h) = got_http {
        assert_eq!(*h, http, "{name}: {case}: HTTP status; receipt {r}");
    }
    assert_eq!(
        r["schema_version"], "synapsor.handler-receipt.v1",
        "{name}: {case}: {r}"
    );
    assert_eq!(r["status"], status, "{name}: {case}: {r}");
    assert_eq!(r["rows_affected"], rows, "{name}: {case}: {r}");
    assert_eq!(r["error_code"].as_str(), code, "{name}: {case}: {r}");
    // Every answer is a valid receipt, by the published schema and the Rust type.
    let schema = synapsor_handler::schema::receipt_schema();
    assert!(
        jsonschema::is_valid(&schema, r),
        "{name}: {case}: not a valid receipt: {r}"
    );
    serde_json::from_value::<synapsor_handler::HandlerReceipt>(r.clone()).unwrap();
}

async fn scenarios(name: &str, target: &Target) {
    let t = now();

    // A valid request is applied once, with a new version.
    let valid = request(
        t,
        "a1",
        "tkt_glbx_402",
        "globex",
        json!({"priority": "high"}),
        "2025-03-07T10:05:00+00:00",
    );
    let (b, s) = signed(&valid);
    let first = target.send(b.clone(), s.clone()).await;
    assert_receipt(name, "valid", &first, 200, "applied", 1, None);
    assert!(first.1["new_version"].is_string(), "{name}: {}", first.1);

    // The very same signed request again: nothing is written twice.
    let again = target.send(b, s).await;
    assert_receipt(name, "exact replay", &again, 200, "already_applied", 0, None);
    // Re-signed later with the same idempotency key: still already applied.
    let mut later = valid.clone();
    later["issued_at"] = json!(t + 1);
    let (b, s) = signed(&later);
    assert_receipt(
        name,
        "re-signed replay",
        &target.send(b, s).await,
        200,
        "already_applied",
        0,
        None,
    );
    // Another proposal for the same row, read before the write: the version moved.
    let stale = request(
        t,
        "a2",
        "tkt_glbx_402",
        "globex",
        json!({"priority": "low"}),
        "2025-03-07T10:05:00+00:00",
    );
    let (b, s) = signed(&stale);
    assert_receipt(
        name,
        "version moved by the write",
        &target.send(b, s).await,
        200,
        "conflict",
        0,
        Some("VERSION_CONFLICT"),
    );

    // A stale expected version.
    let old = request(
        t,
        "b1",
        "tkt_glbx_401",
        "globex",
        json!({"priority": "high"}),
        "2025-03-01T00:00:00Z",
    );
    let (b, s) = signed(&old);
    assert_receipt(
        name,
        "stale version",
        &target.send(b, s).await,
        200,
        "conflict",
        0,
        Some("VERSION_CONFLICT"),
    );

    // Another tenant's row is not found, exactly like a missing row.
    let other = request(
        t,
        "c1",
        "tkt_glbx_401",
        "acme",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    let (b, s) = signed(&other);
    let other_tenant = target.send(b, s).await;
    assert_receipt(
        name,
        "other tenant",
        &other_tenant,
        200,
        "conflict",
        0,
        Some("ROW_NOT_FOUND"),
    );
    let missing = request(
        t,
        "c2",
        "tkt_nope_999",
        "globex",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    let (b, s) = signed(&missing);
    let missing = target.send(b, s).await;
    assert_receipt(name, "missing row", &missing, 200, "conflict", 0, Some("ROW_NOT_FOUND"));

    // Columns outside the app's policy, even when the request allows them.
    for (case, patch) in [
        ("column not allowed", json!({"assignee": "eve"})),
        ("tenant column", json!({"tenant_id": "acme"})),
    ] {
        let bad = request(t, "d1", "tkt_glbx_401", "globex", patch, "2025-03-02T08:45:00Z");
        let (b, s) = signed(&bad);
        assert_receipt(
            name,
            case,
            &target.send(b, s).await,
            422,
            "failed",
            0,
            Some("PATCH_COLUMN_NOT_ALLOWED"),
        );
    }
    let mut mismatch = request(
        t,
        "d2",
        "tkt_glbx_401",
        "globex",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    mismatch["allowed_columns"] = json!(["status"]);
    let (b, s) = signed(&mismatch);
    assert_receipt(
        name,
        "patch outside allowed_columns",
        &target.send(b, s).await,
        422,
        "failed",
        0,
        Some("PATCH_COLUMN_NOT_ALLOWED"),
    );
    let mut unknown_action = request(
        t,
        "d3",
        "tkt_glbx_401",
        "globex",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    unknown_action["action"] = json!("support.delete_ticket");
    let (b, s) = signed(&unknown_action);
    assert_receipt(
        name,
        "unknown action",
        &target.send(b, s).await,
        422,
        "failed",
        0,
        Some("UNSUPPORTED_ACTION"),
    );

    // Signature and timestamp failures.
    let fresh = request(
        t,
        "e1",
        "tkt_glbx_401",
        "globex",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    let (b, s) = signed(&fresh);
    let tampered = String::from_utf8(b.clone())
        .unwrap()
        .replace("\"low\"", "\"high\"")
        .into_bytes();
    assert_receipt(
        name,
        "tampered body",
        &target.send(tampered, s.clone()).await,
        401,
        "failed",
        0,
        Some("SIGNATURE_MISMATCH"),
    );
    let wrong_key = sign(OTHER_SECRET.as_bytes(), KID, t, &b);
    assert_receipt(
        name,
        "wrong key",
        &target.send(b.clone(), Some(wrong_key)).await,
        401,
        "failed",
        0,
        Some("SIGNATURE_MISMATCH"),
    );
    let unknown_kid = sign(SECRET.as_bytes(), "someone-else", t, &b);
    assert_receipt(
        name,
        "unknown kid",
        &target.send(b.clone(), Some(unknown_kid)).await,
        401,
        "failed",
        0,
        Some("UNKNOWN_KEY_ID"),
    );
    assert_receipt(
        name,
        "no signature",
        &target.send(b.clone(), None).await,
        401,
        "failed",
        0,
        Some("SIGNATURE_MISSING"),
    );
    let upstream_style = format!("sha256={}", "0".repeat(64));
    assert_receipt(
        name,
        "body-only signature",
        &target.send(b, Some(upstream_style)).await,
        401,
        "failed",
        0,
        Some("SIGNATURE_MALFORMED"),
    );
    for (case, when) in [("stale timestamp", t - 3600), ("future timestamp", t + 3600)] {
        let mut r = fresh.clone();
        r["issued_at"] = json!(when);
        let (b, s) = signed(&r);
        assert_receipt(
            name,
            case,
            &target.send(b, s).await,
            401,
            "failed",
            0,
            Some("TIMESTAMP_OUT_OF_WINDOW"),
        );
    }

    // Bodies that are signed but not a valid request.
    let b = body(&fresh);
    let off_by_one = sign(SECRET.as_bytes(), KID, t + 1, &b);
    assert_receipt(
        name,
        "issued_at != t",
        &target.send(b, Some(off_by_one)).await,
        400,
        "failed",
        0,
        Some("REQUEST_INVALID"),
    );
    let mut extra = fresh.clone();
    extra["change_set"] = json!({});
    let (b, s) = signed(&extra);
    assert_receipt(
        name,
        "unknown field",
        &target.send(b, s).await,
        400,
        "failed",
        0,
        Some("REQUEST_INVALID"),
    );

    // A dry run writes nothing and does not burn the key; the version compares across spellings
    // (stored `2025-03-03 09:00:00+00`, expected `...T09:00:00.000Z`).
    let mut dry = request(
        t,
        "f1",
        "tkt_acme_301",
        "acme",
        json!({"status": "resolved"}),
        "2025-03-03T09:00:00.000Z",
    );
    dry["dry_run"] = json!(true);
    let (b, s) = signed(&dry);
    assert_receipt(name, "dry run", &target.send(b, s).await, 200, "applied", 0, None);
    dry["dry_run"] = json!(false);
    let (b, s) = signed(&dry);
    assert_receipt(
        name,
        "after a dry run",
        &target.send(b, s).await,
        200,
        "applied",
        1,
        None,
    );

    // Rotation: the previous key id still verifies.
    let rotated = request(
        t,
        "g1",
        "tkt_glbx_401",
        "globex",
        json!({"status": "resolved"}),
        "2025-03-02 08:45:00+00",
    );
    let b = body(&rotated);
    let s = sign(PREVIOUS_SECRET.as_bytes(), PREVIOUS_KID, t, &b);
    assert_receipt(
        name,
        "previous key",
        &target.send(b, Some(s)).await,
        200,
        "applied",
        1,
        None,
    );
}

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
        .env("SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET", PREVIOUS_SECRET)
        .env("SYNAPSOR_HANDLER_PREVIOUS_KEY_ID", PREVIOUS_KID)
        .env("SYNAPSOR_HANDLER_DEMO_DATA", data)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("SYNAPSOR_HANDLER_TOKEN")
        .env_remove("SYNAPSOR_HANDLER_SKEW_SECS");
}

fn wait_for_port(addr: SocketAddr, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("handler exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "handler did not listen on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_http_template() {
    if !available("node", "node", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = write_demo_data(dir.path());
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("templates/http-node/handler.mjs"))
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    handler_env(&mut cmd, &data);
    let mut server = Server(cmd.spawn().unwrap());
    // It prints its URL once it listens (PORT=0: the OS picks the port).
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
    scenarios("node", &Target::http(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_template() {
    if !available(
        "python3 with fastapi and uvicorn",
        "python3",
        &["-c", "import fastapi, uvicorn"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = write_demo_data(dir.path());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new("python3");
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
    .current_dir(dir.path())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    handler_env(&mut cmd, &data);
    let mut server = Server(cmd.spawn().unwrap());
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), &mut server);
    scenarios(
        "fastapi",
        &Target::http(format!("http://127.0.0.1:{port}/synapsor/apply")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_template() {
    if !available("python3", "python3", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = write_demo_data(dir.path());
    let target = Target::Command {
        dir: dir.path().to_owned(),
        data,
    };
    scenarios("command", &target).await;
    // Its idempotency record and the write live in the same SQLite transaction.
    let v = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); \
             print(json.dumps([c.execute('select count(*) from synapsor_handler_receipts').fetchone()[0], \
             c.execute(\"select priority from support_tickets where id='tkt_glbx_402'\").fetchone()[0]]))",
        ])
        .arg(dir.path().join("app.db"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v, json!([3, "high"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_template() {
    let mut keys = KeyRing::single(KID, SECRET).unwrap();
    keys.insert(PREVIOUS_KID, PREVIOUS_SECRET).unwrap();
    let state = axum_template::AppState::new(keys, None, synapsor_handler::DEFAULT_SKEW_SECS, &demo_data());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, axum_template::router(Arc::new(state)))
            .await
            .unwrap();
    });
    scenarios("axum", &Target::http(format!("http://{addr}{}", axum_template::PATH))).await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_templates_require_the_bearer_token_when_set() {
    let keys = KeyRing::single(KID, SECRET).unwrap();
    let state = axum_template::AppState::new(keys, Some("tok-123".into()), 300, &demo_data());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, axum_template::router(Arc::new(state)))
            .await
            .unwrap();
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let r = request(
        now(),
        "h1",
        "tkt_glbx_401",
        "globex",
        json!({"priority": "low"}),
        "2025-03-02T08:45:00Z",
    );
    let (b, s) = signed(&r);
    let url = format!("http://{addr}{}", axum_template::PATH);
    let send = |auth: Option<&'static str>| {
        let mut req = client
            .post(&url)
            .header("X-Synapsor-Signature", s.clone().unwrap())
            .body(b.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("Bearer wrong")).await.unwrap().status(), 401);
    assert_eq!(send(Some("Bearer tok-123")).await.unwrap().status(), 200);
    server.abort();
}
