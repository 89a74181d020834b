//! The app-owned handler executors against real servers and processes: an in-test axum server
//! that answers from a script (and records every request), and `sh` scripts as command
//! handlers. They check the request (signed bytes, headers, idempotency key), the retry and
//! backoff classification, the receipt checks and the mapping to the runner's receipt.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use synapsor_core::context::{Clock, SystemClock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use synapsor_core::capability::{Capability, Provenance, TrustedContext, compile};
use synapsor_core::changeset::{ChangeSet, ChangeSetInput, EvidenceRef};
use synapsor_core::config::{Mode, RunnerConfig, parse_config};
use synapsor_executor::{
    ApplyRequest, Approval, CommandHandlerExecutor, Executor, HttpHandlerExecutor, Receipt, ReceiptStatus, RetryPolicy,
    select_executor,
};
use synapsor_handler::{HandlerRequest, KeyRing};

const SECRET: &str = "executor-test-secret-0123456789abcdef";
const KID: &str = "exec-2026";
const TOKEN: &str = "tok-executor-test";

fn now_unix() -> i64 {
    SystemClock.now_ms().div_euclid(1000)
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

// ------------------------------------------------------------------------------------------------
// Config, capability and change set (no database: the row is given)

fn config(executor: Value) -> RunnerConfig {
    let doc = json!({
        "version": 1, "mode": "review",
        // A read-only source: the runner never writes it; the app-owned handler does.
        "sources": {"support": {"engine": "postgres", "read_url_env": "TEST_READ_URL", "read_only": true}},
        "trusted_context": {"provider": "environment"},
        "executors": {"support_app": executor},
        "capabilities": [{
            "name": "support.propose_ticket_priority", "kind": "proposal", "source": "support",
            "description": "Propose a ticket priority.",
            "target": {"schema": "public", "table": "support_tickets", "primary_key": "id", "tenant_key": "tenant_id"},
            "args": {"ticket_id": {"type": "string"}, "priority": {"type": "string"}},
            "lookup": {"id_from_arg": "ticket_id"},
            "visible_columns": ["id", "subject", "priority", "status", "updated_at"],
            "patch": {"priority": {"from_arg": "priority"}},
            "allowed_columns": ["priority"],
            "conflict_guard": {"column": "updated_at"},
            "executor": "support_app"
        }]
    });
    parse_config(&doc.to_string())
        .unwrap_or_else(|r| panic!("{:?}", r.errors))
        .0
}

fn http_executor(extra: Value) -> Value {
    let mut e = json!({
        "type": "http_handler", "url_env": "HANDLER_URL",
        "signing_secret_env": "HANDLER_SECRET", "signing_key_id": KID,
        "auth": {"type": "bearer_env", "token_env": "HANDLER_TOKEN"},
        "timeout_ms": 2000
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            e.as_object_mut().unwrap().remove(k);
        } else {
            e[k] = v.clone();
        }
    }
    e
}

struct Fixture {
    cfg: RunnerConfig,
    cap: Capability,
    cs: ChangeSet,
    env: HashMap<String, String>,
}

impl Fixture {
    fn new(executor: Value) -> Fixture {
        let cfg = config(executor);
        let cap = compile(&cfg).unwrap().remove(0);
        let checked = cap
            .check_args(&json!({"ticket_id": "tkt_acme_301", "priority": "high"}))
            .unwrap();
        let row: Map<String, Value> = serde_json::from_value(json!({
            "id": "tkt_acme_301", "tenant_id": "acme", "subject": "Invoice PDF will not download",
            "priority": "normal", "status": "open", "updated_at": "2025-03-03T09:00:00+00:00"
        }))
        .unwrap();
        let built = cap.build_patch(&checked, &row).unwrap();
        let cs = ChangeSet::build(ChangeSetInput {
            capability: &cap,
            mode: Mode::Review,
            context: &TrustedContext {
                tenant_id: "acme".into(),
                principal: "agent.test".into(),
                provenance: Provenance::Environment,
                identity: None,
            },
            object_id: &checked.lookup_id,
            built,
            evidence: EvidenceRef {
                bundle_id: "ev_test".into(),
                query_fingerprint: "fp".into(),
            },
            proposal_id: format!("wrp_exec_{}", std::process::id()),
            created_at: "2026-06-23T09:00:00.000Z".into(),
        });
        let env = HashMap::from([
            ("HANDLER_SECRET".to_owned(), SECRET.to_owned()),
            ("HANDLER_TOKEN".to_owned(), TOKEN.to_owned()),
        ]);
        Fixture { cfg, cap, cs, env }
    }

    fn set(mut self, k: &str, v: &str) -> Fixture {
        self.env.insert(k.to_owned(), v.to_owned());
        self
    }

    fn unset(mut self, k: &str) -> Fixture {
        self.env.remove(k);
        self
    }

    fn http(&self) -> HttpHandlerExecutor {
        HttpHandlerExecutor::from_config("support_app", &self.cfg.executors["support_app"])
            .unwrap()
            // Short backoffs keep the suite fast; the ratio (x2) is the production one.
            .with_retry(RetryPolicy {
                attempts: 3,
                initial_backoff: Duration::from_millis(60),
            })
    }

    fn command(&self) -> CommandHandlerExecutor {
        CommandHandlerExecutor::from_config("support_app", &self.cfg.executors["support_app"]).unwrap()
    }

    async fn run(&self, executor: &dyn Executor, dry_run: bool) -> Receipt {
        let r = executor
            .apply(ApplyRequest {
                change_set: &self.cs,
                capability: &self.cap,
                source_name: "support",
                source: &self.cfg.sources["support"],
                env: &self.env,
                executed_at: "2026-06-23T10:00:00.000Z".into(),
                dry_run,
                approvals: vec![Approval {
                    approver: "dana@acme.example".into(),
                    approved_at: "2026-06-23T09:30:00.000Z".into(),
                }],
            })
            .await;
        assert!(r.hash_is_intact(), "{r:?}");
        assert_eq!(r.dry_run, dry_run);
        assert_eq!(r.executor, "support_app");
        assert_eq!(r.idempotency_key, synapsor_executor::idempotency_key(&self.cs));
        // Secrets never reach a receipt.
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
        r
    }
}

fn code(r: &Receipt) -> &str {
    r.safe_error_code.as_deref().unwrap_or("-")
}

fn outcome(r: &Receipt) -> (ReceiptStatus, &str, u32, bool) {
    (r.status, code(r), r.rows_affected, r.source_database_mutated)
}

// ------------------------------------------------------------------------------------------------
// A scripted HTTP handler

#[derive(Debug, Clone)]
enum Reply {
    /// Status and raw body.
    Answer(u16, String),
    /// Wait, then answer.
    Slow(Duration, u16, String),
    /// `302 Location: /elsewhere`.
    Redirect,
}

fn answer(status: u16, body: Value) -> Reply {
    Reply::Answer(status, body.to_string())
}

fn receipt_json(status: &str, rows: u32, code: Option<&str>) -> Value {
    let mut r = json!({"schema_version": "synapsor.handler-receipt.v1", "status": status, "rows_affected": rows});
    if let Some(c) = code {
        r["error_code"] = json!(c);
    }
    r
}

fn applied() -> Reply {
    let mut r = receipt_json("applied", 1, None);
    r["new_version"] = json!("2026-06-23T10:00:01.000000Z");
    answer(200, r)
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request, verified exactly as a handler verifies it.
    fn verified(&self) -> HandlerRequest {
        let keys = KeyRing::single(KID, SECRET).unwrap();
        synapsor_handler::verify(self.header("x-synapsor-signature"), &self.body, &keys, now_unix(), 300)
            .unwrap_or_else(|e| panic!("request does not verify: {e}"))
    }
}

#[derive(Debug)]
struct Script {
    replies: VecDeque<Reply>,
    then: Reply,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Script>>;

async fn handle(State(st): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut s = st.lock().unwrap();
        s.seen.push(Seen {
            method,
            path: uri.path().to_owned(),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        });
        let then = s.then.clone();
        s.replies.pop_front().unwrap_or(then)
    };
    let (status, body) = match reply {
        Reply::Answer(s, b) => (s, b),
        Reply::Slow(d, s, b) => {
            tokio::time::sleep(d).await;
            (s, b)
        }
        Reply::Redirect => {
            return (StatusCode::FOUND, [("location", "/elsewhere")], "").into_response();
        }
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

struct Server {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Answers `replies` in order, then `then` forever.
    async fn start(replies: Vec<Reply>, then: Reply) -> Server {
        let state: Shared = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            then,
            seen: Vec::new(),
        }));
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/synapsor/apply", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One apply against a server answering `replies` then `then`.
async fn http_run(extra: Value, replies: Vec<Reply>, then: Reply, dry_run: bool) -> (Receipt, Vec<Seen>) {
    install_crypto();
    let server = Server::start(replies, then).await;
    let f = Fixture::new(http_executor(extra)).set("HANDLER_URL", &server.url());
    let r = f.run(&f.http(), dry_run).await;
    (r, server.seen())
}

// ------------------------------------------------------------------------------------------------
// HTTP

#[tokio::test]
async fn a_signed_request_is_applied_once() {
    install_crypto();
    let server = Server::start(vec![applied()], answer(500, json!({}))).await;
    let f = Fixture::new(http_executor(json!({"method": "PUT"}))).set("HANDLER_URL", &server.url());
    let ex = select_executor(&f.cfg, &f.cap).unwrap();
    assert_eq!(ex.name(), "support_app");
    let r = f.run(ex.as_ref(), false).await;
    assert_eq!(outcome(&r), (ReceiptStatus::Applied, "-", 1, true), "{r:?}");
    assert_eq!(r.new_version, Some(json!("2026-06-23T10:00:01.000000Z")));
    assert_eq!(r.version_column, "updated_at");

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, Method::PUT);
    assert_eq!(s.path, "/synapsor/apply");
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(s.header("idempotency-key"), Some(r.idempotency_key.as_str()));
    assert_eq!(s.header("x-synapsor-proposal-id"), Some(f.cs.proposal_id.as_str()));
    let sig = s.header("x-synapsor-signature").unwrap();
    assert!(sig.contains(&format!(",kid={KID},")), "{sig}");

    // The body is exactly the documented request, and it verifies (t and body both signed).
    let req = s.verified();
    assert_eq!(req.idempotency_key, r.idempotency_key);
    assert_eq!(req.proposal_id, f.cs.proposal_id);
    assert_eq!(req.digest, f.cs.digest);
    assert_eq!(req.executor, "support_app");
    assert_eq!(req.action, "support.propose_ticket_priority");
    assert!(!req.dry_run);
    assert_eq!(req.tenant.column.as_deref(), Some("tenant_id"));
    assert_eq!(req.tenant.value, "acme");
    assert_eq!(req.principal, "agent.test");
    assert_eq!(req.target.source, "support");
    assert_eq!(req.target.table, "support_tickets");
    assert_eq!(req.target.primary_key.value, json!("tkt_acme_301"));
    assert_eq!(req.allowed_columns, vec!["priority".to_owned()]);
    assert_eq!(Value::Object(req.patch.clone()), json!({"priority": "high"}));
    assert_eq!(req.before["priority"], "normal");
    assert_eq!(req.after["priority"], "high");
    assert_eq!(req.expected_version.column, "updated_at");
    assert_eq!(req.approvals.len(), 1);
    assert_eq!(req.approvals[0].approver, "dana@acme.example");
    let raw: Value = serde_json::from_slice(&s.body).unwrap();
    let schema = synapsor_handler::schema::request_schema();
    assert!(jsonschema::is_valid(&schema, &raw), "{raw}");

    // A body changed after signing, or the same body under another timestamp, does not verify.
    let keys = KeyRing::single(KID, SECRET).unwrap();
    let mut tampered = s.body.clone();
    let at = tampered.iter().position(|b| *b == b'h').unwrap();
    tampered[at] = b'H';
    assert!(synapsor_handler::verify(Some(sig), &tampered, &keys, now_unix(), 300).is_err());
    let moved = sig.replacen(&format!("t={}", req.issued_at), &format!("t={}", req.issued_at + 1), 1);
    assert!(synapsor_handler::verify(Some(&moved), &s.body, &keys, now_unix(), 300).is_err());
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_key_and_backoff() {
    let (r, seen) = http_run(
        json!({}),
        vec![
            answer(503, json!({})),
            Reply::Answer(502, "<html>bad gateway</html>".into()),
        ],
        applied(),
        false,
    )
    .await;
    assert_eq!(outcome(&r), (ReceiptStatus::Applied, "-", 1, true), "{r:?}");
    assert_eq!(seen.len(), 3);
    let keys: Vec<_> = seen
        .iter()
        .map(|s| s.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert!(keys.iter().all(|k| k == &r.idempotency_key), "{keys:?}");
    // Every attempt is signed afresh and verifies on its own.
    for s in &seen {
        assert_eq!(s.verified().idempotency_key, r.idempotency_key);
    }
    // 60 ms, then 120 ms.
    let gap1 = seen[1].at - seen[0].at;
    let gap2 = seen[2].at - seen[1].at;
    assert!(gap1 >= Duration::from_millis(60), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(120), "{gap2:?}");
    let calls: Vec<_> = r.checks.iter().filter(|c| c.name == "handler_call").collect();
    assert_eq!(calls.len(), 3, "{:?}", r.checks);
    assert!(calls[0].detail.contains("HTTP 503") && calls[0].detail.contains("retrying in 60 ms"));
    assert!(calls[1].detail.contains("HTTP 502") && calls[1].detail.contains("retrying in 120 ms"));
    assert!(calls[2].passed);

    for status in [429, 504, 408] {
        let (r, seen) = http_run(json!({}), vec![answer(status, json!({}))], applied(), false).await;
        assert_eq!(outcome(&r), (ReceiptStatus::Applied, "-", 1, true), "{status}: {r:?}");
        assert_eq!(seen.len(), 2, "{status}");
    }
}

#[tokio::test]
async fn exhausted_retries_fail_and_say_so() {
    // A 500 without a receipt is transient; after three it is HANDLER_UNAVAILABLE.
    let (r, seen) = http_run(json!({}), vec![], Reply::Answer(500, "oops".into()), false).await;
    assert_eq!(
        outcome(&r),
        (ReceiptStatus::Failed, "HANDLER_UNAVAILABLE", 0, false),
        "{r:?}"
    );
    assert_eq!(seen.len(), 3);
    assert!(r.message.contains("3 attempts"), "{}", r.message);

    // A failed receipt on 503 is retried too, and its code is what is reported at the end.
    let (r, seen) = http_run(
        json!({}),
        vec![],
        answer(503, receipt_json("failed", 0, Some("APP_DB_UNAVAILABLE"))),
        false,
    )
    .await;
    assert_eq!(outcome(&r), (ReceiptStatus::Failed, "APP_DB_UNAVAILABLE", 0, false));
    assert_eq!(seen.len(), 3);

    // Nobody listens: connection errors are retried, then HANDLER_UNAVAILABLE.
    install_crypto();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = Fixture::new(http_executor(json!({}))).set("HANDLER_URL", &format!("http://127.0.0.1:{port}/apply"));
    let r = f.run(&f.http(), false).await;
    assert_eq!(outcome(&r), (ReceiptStatus::Failed, "HANDLER_UNAVAILABLE", 0, false));
    assert_eq!(r.checks.iter().filter(|c| c.name == "handler_call").count(), 3);
}

#[tokio::test]
async fn timeouts_are_retried_and_then_reported() {
    let extra = json!({"timeout_ms": 300});
    let slow = Reply::Slow(
        Duration::from_secs(3),
        200,
        receipt_json("applied", 1, None).to_string(),
    );
    // The first attempt times out, the second is answered.
    let started = Instant::now();
    let (r, seen) = http_run(extra.clone(), vec![slow.clone()], applied(), false).await;
    assert_eq!(outcome(&r), (ReceiptStatus::Applied, "-", 1, true), "{r:?}");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("idempotency-key"), seen[1].header("idempotency-key"));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // Always too slow: HANDLER_TIMEOUT after three attempts of 300 ms each.
    let started = Instant::now();
    let (r, seen) = http_run(extra, vec![], slow, false).await;
    assert_eq!(
        outcome(&r),
        (ReceiptStatus::Failed, "HANDLER_TIMEOUT", 0, false),
        "{r:?}"
    );
    assert_eq!(seen.len(), 3);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn non_transient_answers_fail_at_once() {
    let cases = [
        (answer(401, json!({"error": "no"})), "HANDLER_UNAUTHORIZED"),
        (answer(403, json!({})), "HANDLER_UNAUTHORIZED"),
        // The templates' answer to a wrong secret: 401 with a receipt.
        (
            answer(401, receipt_json("failed", 0, Some("SIGNATURE_MISMATCH"))),
            "HANDLER_UNAUTHORIZED",
        ),
        (answer(400, json!({})), "HANDLER_REJECTED"),
        (answer(422, json!({"detail": "bad"})), "HANDLER_REJECTED"),
        (answer(404, json!({})), "HANDLER_REJECTED"),
        (Reply::Redirect, "HANDLER_REJECTED"),
        // A receipt decides whatever the status, and is not retried (500 included).
        (
            answer(422, receipt_json("failed", 0, Some("UNSUPPORTED_ACTION"))),
            "UNSUPPORTED_ACTION",
        ),
        (
            answer(500, receipt_json("failed", 0, Some("HANDLER_ERROR"))),
            "HANDLER_ERROR",
        ),
        (answer(200, receipt_json("failed", 0, None)), "HANDLER_FAILED"),
    ];
    for (reply, want) in cases {
        let shown = format!("{reply:?}");
        let (r, seen) = http_run(json!({}), vec![reply], applied(), false).await;
        assert_eq!(outcome(&r), (ReceiptStatus::Failed, want, 0, false), "{shown}: {r:?}");
        assert_eq!(seen.len(), 1, "{shown}: a redirect is not followed, nothing is retried");
    }
}

#[tokio::test]
async fn receipts_map_to_statuses_and_bad_receipts_are_refused() {
    let ok = [
        (
            answer(200, receipt_json("already_applied", 0, None)),
            (ReceiptStatus::AlreadyApplied, "-", 0, false),
        ),
        (
            answer(200, receipt_json("conflict", 0, Some("VERSION_CONFLICT"))),
            (ReceiptStatus::Conflict, "VERSION_CONFLICT", 0, false),
        ),
        (
            answer(409, receipt_json("conflict", 0, Some("ROW_NOT_FOUND"))),
            (ReceiptStatus::Conflict, "ROW_NOT_FOUND", 0, false),
        ),
        (
            answer(200, receipt_json("conflict", 0, None)),
            (ReceiptStatus::Conflict, "HANDLER_CONFLICT", 0, false),
        ),
    ];
    for (reply, want) in ok {
        let shown = format!("{reply:?}");
        let (r, seen) = http_run(json!({}), vec![reply], applied(), false).await;
        assert_eq!(outcome(&r), want, "{shown}: {r:?}");
        assert_eq!(seen.len(), 1);
    }

    let mut extra_field = receipt_json("applied", 1, None);
    extra_field["source_database_mutated"] = json!(true);
    let mut object_version = receipt_json("applied", 1, None);
    object_version["new_version"] = json!({"v": 2});
    let bad = [
        answer(200, receipt_json("applied", 0, None)),
        answer(200, receipt_json("applied", 2, None)),
        answer(200, receipt_json("already_applied", 1, None)),
        answer(200, receipt_json("conflict", 1, Some("VERSION_CONFLICT"))),
        answer(200, receipt_json("failed", 0, Some("not upper"))),
        answer(200, receipt_json("failed", 0, Some(&"X".repeat(65)))),
        answer(
            200,
            json!({"schema_version": "synapsor.handler-receipt.v0", "status": "applied", "rows_affected": 1}),
        ),
        answer(200, object_version),
        // Not receipts at all on a 2xx: the outcome is unknown, so no retry inside this apply.
        answer(200, extra_field),
        answer(200, json!({"status": "ok"})),
        Reply::Answer(200, String::new()),
        Reply::Answer(200, "not json".into()),
        Reply::Answer(200, "x".repeat(70 * 1024)),
        // A receipt that breaks its rules is refused whatever the status.
        answer(500, receipt_json("applied", 3, None)),
    ];
    for reply in bad {
        let shown: String = format!("{reply:?}").chars().take(200).collect();
        let (r, seen) = http_run(json!({}), vec![reply], applied(), false).await;
        assert_eq!(
            outcome(&r),
            (ReceiptStatus::Failed, "HANDLER_RECEIPT_INVALID", 0, false),
            "{shown}: {r:?}"
        );
        assert_eq!(seen.len(), 1, "{shown}");
    }
}

#[tokio::test]
async fn dry_runs_send_dry_run_and_report_would_apply() {
    let (r, seen) = http_run(
        json!({}),
        vec![answer(200, receipt_json("applied", 0, None))],
        applied(),
        true,
    )
    .await;
    assert_eq!(outcome(&r), (ReceiptStatus::WouldApply, "-", 0, false), "{r:?}");
    assert_eq!(r.new_version, None);
    assert!(seen[0].verified().dry_run);
    // A handler claiming to have written a row during a dry run is not believed.
    let (r, _) = http_run(json!({}), vec![applied()], applied(), true).await;
    assert_eq!(
        outcome(&r),
        (ReceiptStatus::Failed, "HANDLER_RECEIPT_INVALID", 0, false)
    );
    // Conflicts are reported as they are.
    let (r, _) = http_run(
        json!({}),
        vec![answer(200, receipt_json("conflict", 0, Some("VERSION_CONFLICT")))],
        applied(),
        true,
    )
    .await;
    assert_eq!(outcome(&r), (ReceiptStatus::Conflict, "VERSION_CONFLICT", 0, false));
}

#[tokio::test]
async fn environment_problems_fail_before_anything_is_sent() {
    install_crypto();
    let server = Server::start(vec![], applied()).await;
    let url = server.url();
    let base = || Fixture::new(http_executor(json!({}))).set("HANDLER_URL", &url);
    let cases = [
        (base().unset("HANDLER_URL"), "HANDLER_URL_MISSING"),
        (
            base().set("HANDLER_URL", "ftp://handler.example/apply"),
            "HANDLER_URL_INVALID",
        ),
        (base().set("HANDLER_URL", "not a url"), "HANDLER_URL_INVALID"),
        (base().unset("HANDLER_SECRET"), "HANDLER_SECRET_MISSING"),
        (base().set("HANDLER_SECRET", ""), "HANDLER_SECRET_MISSING"),
        (base().set("HANDLER_SECRET", "too-short"), "HANDLER_SECRET_INVALID"),
        (base().unset("HANDLER_TOKEN"), "HANDLER_TOKEN_MISSING"),
    ];
    for (f, want) in cases {
        let r = f.run(&f.http(), false).await;
        assert_eq!(outcome(&r), (ReceiptStatus::Failed, want, 0, false), "{r:?}");
        assert!(!r.message.contains("too-short"), "{}", r.message);
    }
    assert!(server.seen().is_empty());

    // A change set modified after approval is refused before any IO.
    let mut f = base();
    f.cs.patch.insert("priority".into(), json!("urgent"));
    let r = f.run(&f.http(), false).await;
    assert_eq!(code(&r), "CHANGE_SET_DIGEST_MISMATCH");
    // So is a patch outside the current reviewed policy.
    let mut f = base();
    f.cs.patch.insert("status".into(), json!("closed"));
    f.cs.guards.allowed_columns.push("status".into());
    f.cs.digest = f.cs.compute_digest();
    let r = f.run(&f.http(), false).await;
    assert_eq!(code(&r), "PATCH_COLUMN_NOT_ALLOWED");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn unsigned_executors_send_no_signature_and_the_key_id_defaults() {
    // No signing_secret_env: sent without a signature header (doctor and config warn).
    let (r, seen) = http_run(
        json!({"signing_secret_env": null, "signing_key_id": null, "auth": null}),
        vec![],
        applied(),
        false,
    )
    .await;
    assert_eq!(r.status, ReceiptStatus::Applied);
    assert!(seen[0].header("x-synapsor-signature").is_none());
    assert!(seen[0].header("authorization").is_none());
    assert_eq!(seen[0].method, Method::POST);
    assert!(r.checks.iter().any(|c| c.detail.contains("unsigned")));

    // A secret without a key id signs as `default`.
    let (_, seen) = http_run(json!({"signing_key_id": null}), vec![], applied(), false).await;
    let sig = seen[0].header("x-synapsor-signature").unwrap();
    assert!(sig.contains(",kid=default,"), "{sig}");
    let keys = KeyRing::single("default", SECRET).unwrap();
    synapsor_handler::verify(Some(sig), &seen[0].body, &keys, now_unix(), 300).unwrap();
}

#[tokio::test]
async fn urls_secrets_and_tokens_stay_out_of_receipts() {
    install_crypto();
    let server = Server::start(vec![], answer(503, json!({}))).await;
    let url = format!("{}?access_token=url-s3cret", server.url());
    let f = Fixture::new(http_executor(json!({}))).set("HANDLER_URL", &url);
    let ex = f.http();
    assert!(!format!("{ex:?}").contains(SECRET));
    let r = f.run(&ex, false).await;
    assert_eq!(code(&r), "HANDLER_UNAVAILABLE");
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("url-s3cret"), "{text}");
    assert!(text.contains("/synapsor/apply"), "{text}");
}

// ------------------------------------------------------------------------------------------------
// Commands

fn command_executor(extra: Value) -> Value {
    let mut e = json!({
        "type": "command_handler", "command_env": "HANDLER_COMMAND",
        "signing_secret_env": "HANDLER_SECRET", "signing_key_id": KID, "timeout_ms": 10000
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            e.as_object_mut().unwrap().remove(k);
        } else {
            e[k] = v.clone();
        }
    }
    e
}

/// A `sh` handler in `dir` that saves what it got and prints `stdout`, then exits `exit`.
fn script(dir: &std::path::Path, stdout: &str, exit: i32) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = dir.display();
    let path = dir.join(format!("handler{n}.sh"));
    std::fs::write(
        &path,
        format!(
            "cat > {d}/stdin.bin\n\
             printf '%s' \"$SYNAPSOR_SIGNATURE\" > {d}/signature\n\
             printf '%s' \"$SYNAPSOR_IDEMPOTENCY_KEY\" > {d}/key\n\
             printf '%s' \"$SYNAPSOR_PROPOSAL_ID\" > {d}/proposal\n\
             echo 'a line on stderr' >&2\n\
             printf '%s\\n' '{stdout}'\n\
             exit {exit}\n"
        ),
    )
    .unwrap();
    format!("sh {}", path.display())
}

#[tokio::test]
async fn a_command_gets_exactly_the_signed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let line = script(
        dir.path(),
        r#"{"schema_version":"synapsor.handler-receipt.v1","status":"applied","rows_affected":1,"new_version":"v2"}"#,
        0,
    );
    let f = Fixture::new(command_executor(json!({}))).set("HANDLER_COMMAND", &line);
    let ex = select_executor(&f.cfg, &f.cap).unwrap();
    let r = f.run(ex.as_ref(), false).await;
    assert_eq!(outcome(&r), (ReceiptStatus::Applied, "-", 1, true), "{r:?}");
    assert_eq!(r.new_version, Some(json!("v2")));

    let stdin = std::fs::read(dir.path().join("stdin.bin")).unwrap();
    let signature = std::fs::read_to_string(dir.path().join("signature")).unwrap();
    // stdin is the signed bytes, nothing more: they verify as they are.
    let keys = KeyRing::single(KID, SECRET).unwrap();
    let req = synapsor_handler::verify(Some(&signature), &stdin, &keys, now_unix(), 300).unwrap();
    assert_eq!(req.idempotency_key, r.idempotency_key);
    assert!(!stdin.ends_with(b"\n"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("key")).unwrap(),
        r.idempotency_key
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("proposal")).unwrap(),
        f.cs.proposal_id
    );

    // Dry run: dry_run in the request, would_apply out.
    let line = script(
        dir.path(),
        r#"{"schema_version":"synapsor.handler-receipt.v1","status":"applied","rows_affected":0}"#,
        0,
    );
    let f = f.set("HANDLER_COMMAND", &line);
    let r = f.run(&f.command(), true).await;
    assert_eq!(outcome(&r), (ReceiptStatus::WouldApply, "-", 0, false), "{r:?}");
    let stdin = std::fs::read(dir.path().join("stdin.bin")).unwrap();
    assert!(serde_json::from_slice::<HandlerRequest>(&stdin).unwrap().dry_run);

    // Without signing, SYNAPSOR_SIGNATURE is not set for the command.
    let f = Fixture::new(command_executor(
        json!({"signing_secret_env": null, "signing_key_id": null}),
    ))
    .set("HANDLER_COMMAND", &line);
    let r = f.run(&f.command(), false).await;
    assert_eq!(code(&r), "HANDLER_RECEIPT_INVALID", "rows 0 is not an apply: {r:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("signature")).unwrap(), "");
}

#[tokio::test]
async fn command_failures_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = |status: &str, rows: u32, code: Option<&str>| receipt_json(status, rows, code).to_string();
    let cases = [
        // A receipt decides, whatever the exit status.
        (
            script(dir.path(), &receipt("failed", 0, Some("UNSUPPORTED_ACTION")), 3),
            (ReceiptStatus::Failed, "UNSUPPORTED_ACTION"),
        ),
        (
            script(dir.path(), &receipt("conflict", 0, Some("VERSION_CONFLICT")), 0),
            (ReceiptStatus::Conflict, "VERSION_CONFLICT"),
        ),
        (
            script(dir.path(), &receipt("already_applied", 0, None), 0),
            (ReceiptStatus::AlreadyApplied, "-"),
        ),
        (
            script(dir.path(), &receipt("failed", 0, Some("SIGNATURE_MISMATCH")), 0),
            (ReceiptStatus::Failed, "HANDLER_UNAUTHORIZED"),
        ),
        // No receipt: exit 0 is an invalid receipt, non-zero a failed command.
        (
            script(dir.path(), "", 0),
            (ReceiptStatus::Failed, "HANDLER_RECEIPT_INVALID"),
        ),
        (
            script(dir.path(), &receipt("applied", 2, None), 0),
            (ReceiptStatus::Failed, "HANDLER_RECEIPT_INVALID"),
        ),
        (
            script(dir.path(), "", 2),
            (ReceiptStatus::Failed, "HANDLER_COMMAND_FAILED"),
        ),
        (
            script(dir.path(), &receipt("applied", 2, None), 1),
            (ReceiptStatus::Failed, "HANDLER_COMMAND_FAILED"),
        ),
        ("false".to_owned(), (ReceiptStatus::Failed, "HANDLER_COMMAND_FAILED")),
        (
            "/nonexistent/synapsor-handler --flag".to_owned(),
            (ReceiptStatus::Failed, "HANDLER_COMMAND_NOT_FOUND"),
        ),
        ("   ".to_owned(), (ReceiptStatus::Failed, "HANDLER_COMMAND_MISSING")),
    ];
    for (line, want) in cases {
        let f = Fixture::new(command_executor(json!({}))).set("HANDLER_COMMAND", &line);
        let r = f.run(&f.command(), false).await;
        assert_eq!((r.status, code(&r)), want, "{line}: {r:?}");
        assert_eq!(r.rows_affected, 0);
    }
    let f = Fixture::new(command_executor(json!({})));
    let r = f.run(&f.command(), false).await;
    assert_eq!(code(&r), "HANDLER_COMMAND_MISSING");
    let f = Fixture::new(command_executor(json!({})))
        .set("HANDLER_COMMAND", "true")
        .unset("HANDLER_SECRET");
    let r = f.run(&f.command(), false).await;
    assert_eq!(code(&r), "HANDLER_SECRET_MISSING");
}

#[tokio::test]
async fn a_slow_command_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("finished");
    let path = dir.path().join("slow.sh");
    std::fs::write(&path, format!("sleep 3\ntouch {}\n", marker.display())).unwrap();
    let f = Fixture::new(command_executor(json!({"timeout_ms": 300})))
        .set("HANDLER_COMMAND", &format!("sh {}", path.display()));
    let started = Instant::now();
    let r = f.run(&f.command(), false).await;
    let took = started.elapsed();
    assert_eq!(
        outcome(&r),
        (ReceiptStatus::Failed, "HANDLER_TIMEOUT", 0, false),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Killed: it never got to finish.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!marker.exists());
}
