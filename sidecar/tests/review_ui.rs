//! `synapsor-runner ui`, the review web UI, end to end: proposals made through the real binary
//! (`smoke call` of a proposal tool over a SQLite source with a writer), the real `ui` process,
//! and a real headless Chromium driven through chromedriver (WebDriver) for list, open, approve,
//! apply, reject and a stale page; raw HTTP for the defences (token, cookie, `Host`, CSRF,
//! `Origin`, bind address) and the operator-role rule.
//!
//! Browser tests skip when Chromium or chromedriver is missing, unless SYNAPSOR_REQUIRE_BROWSER=1
//! (as `scripts/test.sh` sets), which makes them fail instead. With SYNAPSOR_UPDATE_SCREENSHOTS=1
//! the list and proposal pages are saved to `docs/review/` for the docs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "writeback_support/mod.rs"]
mod writeback_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use synapsor_core::context::{Clock, SystemClock};
use synapsor_testdb::browser::Browser;
use thirtyfour::prelude::*;
use writeback_support::{RUNNER, Setup, text};

const TOOL: &str = "billing.propose_late_fee";

// ------------------------------------------------------------------ setup

/// The writeback tests' SQLite source, with a capability that shows more of the row and patches
/// two columns (the fee and a note), so the pages have something to show.
fn setup() -> Setup {
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let mut doc = s.doc.clone();
    let cap = &mut doc["capabilities"][0];
    cap["description"] = json!("Propose a late fee for one invoice, with a note.");
    cap["args"]["reason"] = json!({"type": "string", "max_length": 200});
    cap["visible_columns"] = json!(["id", "tenant_id", "status", "late_fee_cents", "note", "updated_at"]);
    cap["patch"]["note"] = json!({"from_arg": "reason"});
    cap["allowed_columns"] = json!(["late_fee_cents", "note"]);
    write_config(&s, &doc);
    s
}

fn write_config(s: &Setup, doc: &Value) {
    std::fs::write(&s.config_path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
}

/// A proposal made through the real binary (`smoke call`), as an agent of tenant acme.
fn propose(s: &Setup, invoice: &str, fee: i64, reason: &str) -> String {
    let args = json!({"invoice_id": invoice, "late_fee_cents": fee, "reason": reason}).to_string();
    let out = s.run(
        &["smoke", "call", TOOL, "--args", &args],
        &[("SYNAPSOR_TENANT_ID", "acme"), ("SYNAPSOR_PRINCIPAL", "agent.test")],
    );
    assert!(out.status.success(), "smoke call failed: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["result"]["proposal"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no proposal id in {v}"))
        .to_owned()
}

/// The `synapsor-runner ui` process, killed on drop.
struct Ui {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    token: String,
    /// Kept open: the UI must never see its stdout closed.
    _stdout: BufReader<ChildStdout>,
}

impl Ui {
    fn start(s: &Setup, extra: &[&str], env: &[(&str, &str)]) -> Ui {
        let mut args = vec!["ui"];
        args.extend_from_slice(extra);
        let mut child = s
            .command(&args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("ui exited ({status}) without printing its address");
            }
            if line.starts_with("http://") {
                break;
            }
        }
        let url = line.trim();
        let rest = url.strip_prefix("http://").unwrap();
        let (addr, query) = rest.split_once("/?token=").unwrap();
        Ui {
            child,
            addr: addr.to_owned(),
            token: query.to_owned(),
            _stdout: stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn start_url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ raw HTTP

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection, with exactly the headers given (plus `Host`
/// unless given, `Connection: close` and the body's length).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    try_http(addr, method, path, headers, body).unwrap()
}

fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {raw:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Resp {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn bearer(ui: &Ui) -> String {
    format!("Bearer {}", ui.token)
}

/// The value of the hidden field `name` in the form of `form_id`.
fn field(html: &str, form_id: &str, name: &str) -> String {
    let form = &html[html
        .find(&format!("id=\"{form_id}\""))
        .unwrap_or_else(|| panic!("no form {form_id} in {html}"))..];
    let at = form.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    form[at..].split('"').next().unwrap().to_owned()
}

fn form_body<V: AsRef<str>>(pairs: &[(&str, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .as_ref()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                    b' ' => "+".to_owned(),
                    o => format!("%{o:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs a decision form as the page would, with `fields` replacing or adding to the page's.
fn post_decision<V: AsRef<str>>(
    ui: &Ui,
    id: &str,
    action: &str,
    fields: &[(&str, V)],
    extra_headers: &[(&str, &str)],
) -> Resp {
    let auth = bearer(ui);
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    headers.extend_from_slice(extra_headers);
    http(
        &ui.addr,
        "POST",
        &format!("/proposals/{id}/{action}"),
        &headers,
        Some(&form_body(fields)),
    )
}

fn page(ui: &Ui, path: &str) -> Resp {
    let auth = bearer(ui);
    http(&ui.addr, "GET", path, &[("Authorization", auth.as_str())], None)
}

// ------------------------------------------------------------------ HTTP-level tests

#[test]
fn ui_refuses_a_non_loopback_bind_and_a_missing_store() {
    let s = setup();
    for host in ["0.0.0.0", "192.0.2.10"] {
        let out = s.run(&["ui", "--host", host], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("error[UI_REMOTE_BIND_REFUSED]"), "{}", text(&out));
    }
    let out = s.run(&["ui", "--host", "example.com"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("error[UI_HOST_INVALID]"), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"))
        .args(["--store", "missing.db", "ui"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error[STORE_NOT_FOUND]"), "{}", text(&out));
}

#[test]
fn ui_kubernetes_refuses_local_flags_and_says_what_is_wrong_with_the_cluster() {
    let s = setup();
    // The local ledger's flags have no meaning on a cluster, and kubectl's none without it.
    for args in [
        &["ui", "--kubernetes", "--allow-apply"][..],
        &["ui", "--kubernetes", "--actor", "me"],
        &["ui", "-n", "apps"],
        &["ui", "--context", "prod"],
    ] {
        let out = s.run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let missing = s.dir.path().join("missing.kubeconfig");
    let out = s.run(&["ui", "--kubernetes", "--kubeconfig", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error[UI_KUBECONFIG]"), "{}", text(&out));
    // A kubeconfig whose server does not answer (a closed loopback port).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kubeconfig = s.dir.path().join("closed.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: http://{closed}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    let out = s.run(
        &["ui", "--kubernetes", "--kubeconfig", kubeconfig.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error[KUBERNETES_UNREACHABLE]"), "{}", text(&out));
    assert!(!text(&out).contains("token: t"), "{}", text(&out));
}

#[test]
fn the_token_cookie_and_host_are_required() {
    let s = setup();
    let id = propose(&s, "INV-1", 2500, "late");
    let ui = Ui::start(&s, &[], &[]);
    assert_eq!(ui.token.len(), 64);

    // No token, a wrong one, a wrong cookie: 401, and nothing of the ledger.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer nope")],
        vec![("Cookie", "synapsor_ui_1=abc")],
    ] {
        let r = http(&ui.addr, "GET", "/", &headers, None);
        assert_eq!(r.status, 401, "{r:?}");
        assert!(r.body.contains("UI_TOKEN_REQUIRED"), "{}", r.body);
        assert!(!r.body.contains(&id), "{}", r.body);
    }
    let r = http(&ui.addr, "GET", &format!("/proposals/{id}?token=wrong"), &[], None);
    assert_eq!(r.status, 401);

    // The printed URL: the token becomes an HttpOnly SameSite=Strict cookie, and the redirect
    // takes it out of the address (keeping the other parameters).
    let r = http(
        &ui.addr,
        "GET",
        &format!("/?phase=pending_review&token={}", ui.token),
        &[],
        None,
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/?phase=pending_review"));
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = http(&ui.addr, "GET", "/?phase=pending_review", &[("Cookie", &pair)], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(&id), "{}", r.body);

    // The bearer header works as well; every answer carries the security headers.
    let r = page(&ui, &format!("/proposals/{id}"));
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // No SQL, no URLs, no secrets on the page.
    for never in [
        "SELECT",
        "UPDATE ",
        "sqlite://",
        "TEST_WRITE_URL",
        "TEST_READ_URL",
        &ui.token,
    ] {
        assert!(!r.body.contains(never), "the page shows {never:?}");
    }

    // DNS rebinding: another name for the same address gets nothing, with or without the token.
    let auth = bearer(&ui);
    let port = ui.addr.rsplit(':').next().unwrap();
    for host in [
        format!("evil.example:{port}"),
        "127.0.0.1:1".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        let r = http(&ui.addr, "GET", "/", &[("Host", &host), ("Authorization", &auth)], None);
        assert_eq!(r.status, 421, "{host}: {r:?}");
        assert!(!r.body.contains(&id));
    }
    let r = http(
        &ui.addr,
        "GET",
        "/",
        &[("Host", &format!("localhost:{port}")), ("Authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The stylesheet and script need no token (they hold none), but the right Host.
    let r = http(&ui.addr, "GET", "/assets/style.css", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/css"));
}

#[test]
fn decisions_need_csrf_same_origin_confirmation_and_the_digest() {
    let s = setup();
    let id = propose(&s, "INV-1", 2500, "late");
    let ui = Ui::start(&s, &[], &[]);
    let html = page(&ui, &format!("/proposals/{id}")).body;
    let csrf = field(&html, "approve-form", "csrf");
    let digest = field(&html, "approve-form", "digest");
    let revision = field(&html, "approve-form", "revision");
    assert!(digest.starts_with("sha256:"));
    let good = [
        ("csrf", csrf.as_str()),
        ("digest", digest.as_str()),
        ("revision", revision.as_str()),
        ("confirm", "yes"),
    ];

    // No CSRF token, a wrong one: 403.
    let r = post_decision(&ui, &id, "approve", &good[1..], &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("UI_CSRF_REFUSED"), "{}", r.body);
    let mut wrong = good;
    wrong[0] = ("csrf", "0000");
    assert_eq!(post_decision(&ui, &id, "approve", &wrong, &[]).status, 403);
    // A cross-site form (Origin or Sec-Fetch-Site): 403 even with the token.
    for h in [("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
        let r = post_decision(&ui, &id, "approve", &good, &[h]);
        assert_eq!(r.status, 403, "{h:?}: {r:?}");
        assert!(r.body.contains("UI_CROSS_SITE_REFUSED"), "{}", r.body);
    }
    // A POST without the token at all: 401.
    let r = http(
        &ui.addr,
        "POST",
        &format!("/proposals/{id}/approve"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form_body(&good)),
    );
    assert_eq!(r.status, 401);
    // No confirmation: 400, nothing decided.
    let r = post_decision(&ui, &id, "approve", &good[..3], &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("UI_CONFIRMATION_REQUIRED"), "{}", r.body);
    // Another digest than the proposal's: the ledger's refusal.
    let mut other = good;
    other[1] = (
        "digest",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    let r = post_decision(&ui, &id, "approve", &other, &[]);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("DIGEST_MISMATCH"), "{}", r.body);
    // A rejection without a reason: 400.
    let r = post_decision(&ui, &id, "reject", &good, &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("UI_REASON_REQUIRED"), "{}", r.body);
    // Apply is not offered without --allow-apply: the page shows the command instead.
    let r = post_decision(&ui, &id, "apply", &good, &[]);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(s.state(&id), "pending_review");
    assert!(s.proposal(&id).approvals.is_empty());

    // The same form, complete and same-origin: approved, as the OS user (like the CLI).
    let origin = format!("http://{}", ui.addr);
    let r = post_decision(
        &ui,
        &id,
        "approve",
        &good,
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("/proposals/{id}?done=approved").as_str())
    );
    assert_eq!(s.state(&id), "approved");
    let p = s.proposal(&id);
    assert_eq!(p.approvals[0].approver, "operator.test");
    assert_eq!(p.approvals[0].digest, digest);
    let html = page(&ui, &format!("/proposals/{id}?done=approved")).body;
    assert!(html.contains(&format!("synapsor-runner apply {id}")), "{html}");
    // The same form again: the proposal changed since, so it is refused.
    let r = post_decision(&ui, &id, "approve", &good, &[]);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("UI_PROPOSAL_CHANGED"), "{}", r.body);
}

/// The approve form's fields as the page filled them, confirmed.
fn approve_fields(html: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", field(html, "approve-form", "csrf")),
        ("digest", field(html, "approve-form", "digest")),
        ("revision", field(html, "approve-form", "revision")),
        ("confirm", "yes".to_owned()),
    ]
}

const ISSUER: &str = "https://idp.test/";
const OPERATOR_AUDIENCE: &str = "synapsor-operator-test";

fn operator_token(subject: &str, roles: &[&str]) -> String {
    let now = SystemClock.now_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-a".into());
    let claims = json!({
        "iss": ISSUER, "aud": OPERATOR_AUDIENCE, "sub": subject, "jti": format!("op-{subject}-{now}"),
        "iat": now - 5, "exp": now + 300, "roles": roles,
    });
    let key = EncodingKey::from_rsa_der(include_bytes!("../../crates/identity/tests/keys/rsa-a.test-only.der"));
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[test]
fn an_approval_role_needs_the_operator_token_as_on_the_cli() {
    let s = setup();
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&s.config_path).unwrap()).unwrap();
    doc["identity"] = json!({
        "issuer": ISSUER, "audience": "synapsor-runner-test", "keys": {"jwks_file": "jwks.json"},
        "algorithms": ["RS256"], "tenant_claim": "tid", "operator": {"audience": OPERATOR_AUDIENCE},
    });
    doc["capabilities"][0]["approval"] = json!({"required_role": "billing_lead"});
    write_config(&s, &doc);
    let jwk: Value = serde_json::from_str(include_str!("../../crates/identity/tests/keys/rsa-a.jwk.json")).unwrap();
    std::fs::write(s.dir.path().join("jwks.json"), json!({"keys": [jwk]}).to_string()).unwrap();
    let id = propose(&s, "INV-1", 2500, "late");

    // Without a token (a name is not enough): the page says so, and the decision is refused
    // with the CLI's code.
    let ui = Ui::start(&s, &["--actor", "alice"], &[]);
    let html = page(&ui, &format!("/proposals/{id}")).body;
    assert!(html.contains("OPERATOR_TOKEN_REQUIRED"), "{html}");
    let r = post_decision(&ui, &id, "approve", &approve_fields(&html), &[]);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("OPERATOR_TOKEN_REQUIRED"), "{}", r.body);
    assert_eq!(s.state(&id), "pending_review");
    drop(ui);

    // With an operator token carrying the role: approved as the token's subject, verified.
    let token_path = s.dir.path().join("operator.jwt");
    std::fs::write(&token_path, operator_token("lead.lee", &["billing_lead"])).unwrap();
    let ui = Ui::start(&s, &["--operator-token-file", token_path.to_str().unwrap()], &[]);
    let html = page(&ui, &format!("/proposals/{id}")).body;
    assert!(
        html.contains("lead.lee (verified by https:&#x2f;&#x2f;idp.test&#x2f;)"),
        "{html}"
    );
    let r = post_decision(&ui, &id, "approve", &approve_fields(&html), &[]);
    assert_eq!(r.status, 303, "{r:?}");
    let p = s.proposal(&id);
    assert_eq!(p.approvals[0].approver, "lead.lee");
    assert_eq!(
        p.approvals[0].verified_identity.as_ref().map(|v| v.issuer.as_str()),
        Some(ISSUER)
    );
}

// ------------------------------------------------------------------ the browser

/// Where screenshots go: `docs/review/` with SYNAPSOR_UPDATE_SCREENSHOTS=1, else the test's
/// temporary folder (they are taken either way, so the step cannot rot).
fn screenshot_dir(s: &Setup) -> PathBuf {
    if std::env::var("SYNAPSOR_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/review")
    } else {
        s.dir.path().join("screenshots")
    }
}

#[tokio::test]
async fn browser_lists_opens_approves_and_applies() {
    let Some(b) = Browser::start().await else { return };
    let s = setup();
    let old = propose(&s, "INV-2", 1200, "paid late in June");
    let rejected = s.run(
        &[
            "proposals",
            "reject",
            &old,
            "--reason",
            "already waived by support",
            "--yes",
        ],
        &[],
    );
    assert!(rejected.status.success(), "{}", text(&rejected));
    let other = propose(&s, "INV-3", 900, "second reminder ignored");
    let id = propose(&s, "INV-1", 2500, "30 days overdue");
    let ui = Ui::start(&s, &["--allow-apply"], &[("TEST_WRITE_URL", s.db.write_url.as_str())]);

    // The printed address: the token moves into a cookie and out of the address bar.
    b.d().goto(ui.start_url()).await.unwrap();
    let here = b.d().current_url().await.unwrap();
    assert_eq!(here.as_str(), ui.url("/"));
    assert!(!here.as_str().contains("token"));
    let waiting = b.text_of("#waiting").await;
    assert!(waiting.contains(&id) && waiting.contains(&other), "{waiting}");
    assert!(waiting.contains("late_fee_cents: 5500 -> 2500"), "{waiting}");
    assert!(b.text_of("#recent").await.contains(&old));

    // Filters by query string (the phase select submits by itself).
    b.d().goto(ui.url("/?phase=rejected")).await.unwrap();
    let matching = b.text_of("#matching").await;
    assert!(matching.contains(&old) && !matching.contains(&id), "{matching}");
    b.d().goto(ui.url("/?tenant=globex")).await.unwrap();
    assert!(b.body().await.contains("No proposal matches these filters"));
    b.d().goto(ui.url("/")).await.unwrap();

    // Open it: the diff, the guards, the evidence, no decision yet.
    b.submit(&format!("a[href='/proposals/{id}']")).await;
    assert_eq!(b.text_of("#proposal-id").await, id);
    let diff = b.text_of("#diff").await;
    assert!(
        diff.contains("late_fee_cents") && diff.contains("5500") && diff.contains("2500"),
        "{diff}"
    );
    assert!(diff.contains("30 days overdue"), "{diff}");
    let changed = b.d().find_all(By::Css("#diff tr.changed")).await.unwrap();
    assert_eq!(changed.len(), 2);
    let guards = b.text_of("#guards").await;
    assert!(guards.contains("the row's tenant_id is still acme"), "{guards}");
    assert!(guards.contains("updated_at is still 2026-06-23T09:00:00Z"), "{guards}");
    assert!(b.text_of("#evidence").await.contains("INV-1"));
    assert!(b.text_of("#decisions").await.contains("None yet"));
    assert_eq!(b.text_of("#acting-as").await, "operator.test (unverified)");
    b.screenshot(&screenshot_dir(&s).join("proposal.png")).await;

    // The approve button waits for the confirmation.
    let approve = b.d().find(By::Css("#approve")).await.unwrap();
    assert!(!approve.is_enabled().await.unwrap());
    b.click("#approve-form input[name=confirm]").await;
    b.submit("#approve").await;
    assert!(b.text_of("#notice").await.starts_with("Approved"));
    assert_eq!(b.text_of("#phase").await, "approved");
    assert!(b.text_of("#decisions").await.contains("approved by operator.test"));
    assert_eq!(s.db.fee("INV-1").await, 5500, "approval writes nothing");

    // Apply from the page: the same guarded path as `synapsor-runner apply`.
    b.click("#apply-form input[name=confirm]").await;
    b.submit("#apply").await;
    assert_eq!(b.text_of("#phase").await, "applied");
    let receipt = b.text_of("#receipt").await;
    assert!(
        receipt.contains("applied") && receipt.contains("receipt hash"),
        "{receipt}"
    );
    assert!(receipt.contains("version guard"), "{receipt}");
    assert!(b.text_of("#timeline").await.contains("writeback applied"));
    assert_eq!(s.db.fee("INV-1").await, 2500);
    assert_eq!(s.state(&id), "applied");
    assert!(b.d().find_all(By::Css("#decide")).await.unwrap().is_empty());

    b.d().goto(ui.url("/")).await.unwrap();
    b.screenshot(&screenshot_dir(&s).join("list.png")).await;
    b.quit().await;
}

#[tokio::test]
async fn browser_rejects_with_a_reason_and_refuses_a_stale_page() {
    let Some(b) = Browser::start().await else { return };
    let s = setup();
    let first = propose(&s, "INV-1", 2500, "overdue");
    let second = propose(&s, "INV-3", 900, "overdue");
    let third = propose(&s, "INV-4", 100, "overdue");
    let ui = Ui::start(&s, &[], &[]);
    b.d().goto(ui.start_url()).await.unwrap();

    // Reject with a reason; markup in it is shown as text.
    b.d().goto(ui.url(&format!("/proposals/{first}"))).await.unwrap();
    let reason = "<b>fee too high</b> for a first reminder";
    b.d()
        .find(By::Css("#reject-form textarea[name=reason]"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
    b.click("#reject-form input[name=confirm]").await;
    b.submit("#reject").await;
    assert_eq!(b.text_of("#notice").await, "Rejected.");
    assert_eq!(b.text_of("#phase").await, "rejected");
    let decisions = b.text_of("#decisions").await;
    assert!(decisions.contains(reason), "{decisions}");
    assert!(b.d().find_all(By::Css("#decisions b")).await.unwrap().is_empty());
    assert_eq!(s.state(&first), "rejected");

    // Approved from the CLI after the page loaded: the page's approval is refused.
    b.d().goto(ui.url(&format!("/proposals/{second}"))).await.unwrap();
    let out = s.run(&["proposals", "approve", &second, "--yes", "--actor", "bob"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    b.click("#approve-form input[name=confirm]").await;
    b.submit("#approve").await;
    assert_eq!(b.text_of("h1").await, "Changed since you loaded it");
    let msg = b.text_of("#message").await;
    assert!(
        msg.contains("UI_PROPOSAL_CHANGED") && msg.contains("it is now approved"),
        "{msg}"
    );
    let p = s.proposal(&second);
    assert_eq!(p.approvals.len(), 1);
    assert_eq!(p.approvals[0].approver, "bob");
    // Back on the proposal, the page now shows what happened and offers only what is left.
    b.submit("#message a").await;
    assert_eq!(b.text_of("#phase").await, "approved");
    assert!(b.d().find_all(By::Css("#approve-form")).await.unwrap().is_empty());
    assert!(
        b.text_of("#apply-command")
            .await
            .contains(&format!("synapsor-runner apply {second}"))
    );

    // Rejected from the CLI after the page loaded: the page's rejection is refused too.
    b.d().goto(ui.url(&format!("/proposals/{third}"))).await.unwrap();
    let out = s.run(&["proposals", "reject", &third, "--reason", "duplicate", "--yes"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    b.d()
        .find(By::Css("#reject-form textarea[name=reason]"))
        .await
        .unwrap()
        .send_keys("too high")
        .await
        .unwrap();
    b.click("#reject-form input[name=confirm]").await;
    b.submit("#reject").await;
    assert!(b.text_of("#message").await.contains("UI_PROPOSAL_CHANGED"));
    let p = s.proposal(&third);
    assert_eq!(p.approvals.len(), 1);
    assert_eq!(p.approvals[0].reason.as_deref(), Some("duplicate"));
    b.quit().await;
}
