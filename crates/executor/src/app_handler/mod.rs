//! App-owned handler executors: `http_handler` and `command_handler`.
//!
//! What it is: the runner's side of the handler contract in `docs/handlers.md`. After the same
//! pre-checks as `sql_update` (digest intact, capability unchanged, patch inside the current
//! reviewed policy), the executor builds one [`HandlerRequest`] from the approved change set,
//! serializes it, signs exactly those bytes (`X-Synapsor-Signature: t=..,kid=..,v1=..` over
//! `"<t>." + body`) and hands them to the application:
//!
//! - [`HttpHandlerExecutor`] sends them to the URL in `url_env` with `Idempotency-Key`,
//!   `X-Synapsor-Proposal-Id` and an optional bearer token, each attempt bounded by
//!   `timeout_ms`. Transient failures (connection errors, timeouts, 408/429/500/502/503/504
//!   without a usable receipt) are retried with exponential backoff ([`RetryPolicy`]), always
//!   with the same idempotency key and a fresh signature timestamp; everything else is final.
//! - [`CommandHandlerExecutor`] runs the command line in `command_env` (split on whitespace, no
//!   shell) with the signed bytes on stdin and `SYNAPSOR_SIGNATURE`,
//!   `SYNAPSOR_IDEMPOTENCY_KEY` and `SYNAPSOR_PROPOSAL_ID` in its environment, kills it after
//!   `timeout_ms`, and reads the receipt from stdout.
//!
//! The handler's [`HandlerReceipt`] is read from the body whatever the HTTP status, parsed
//! strictly and checked ([`parse_receipt`]); then `applied` → applied, `already_applied` →
//! already applied, `conflict` → conflict with the handler's code, `failed` → failed (the
//! proposal stays retryable). A dry run sends `dry_run: true`, and an `applied` answer becomes
//! `would_apply`.
//!
//! What it is not: it never writes the source database and cannot see the handler's
//! transaction. **The handler owns the final write** and must re-check tenant, version and
//! idempotency key in it. Secrets, tokens and URL queries are never logged or put in receipts;
//! handler codes are only recorded after [`HandlerCode`] checked their shape, and handler
//! messages are shortened and stripped of control characters.
//!
//! The HTTP client uses rustls without a built-in crypto provider: the binary installs one
//! (`rustls::crypto::ring::default_provider().install_default()`), as `synapsor-runner` does in
//! `main`. Without it, an apply fails with `HANDLER_CLIENT_UNAVAILABLE` instead of panicking.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use synapsor_core::config::{self, ExecutorAuth, HttpMethod};
use synapsor_core::secrets::is_secret_value;
use synapsor_handler::{
    ColumnValue, DEFAULT_KEY_ID, HandlerReceipt, HandlerRequest, IDEMPOTENCY_HEADER, PROPOSAL_HEADER, RECEIPT_SCHEMA,
    REQUEST_SCHEMA, SIGNATURE_HEADER, SigningKey, Target, TenantGuard,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::guards::{self, truncate};
use crate::receipt::{HandlerCode, Receipt, ReceiptStatus, WritebackCode};
use crate::{ApplyRequest, BoxFuture, EnvLookup, Executor};
use synapsor_source::redact;

type HandlerStatus = synapsor_handler::ReceiptStatus;

/// Per-attempt timeout when the executor has no `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Largest receipt body (HTTP) or stdout (command) read; a bigger answer is not a receipt.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;
/// Longest handler `message` kept in a receipt, in characters.
pub const MAX_HANDLER_MESSAGE_CHARS: usize = 300;
/// Longest `new_version` accepted from a handler, as JSON text.
pub const MAX_NEW_VERSION_CHARS: usize = 256;
/// Environment variable carrying the `X-Synapsor-Signature` value to a command handler.
pub const SIGNATURE_ENV: &str = "SYNAPSOR_SIGNATURE";
/// Environment variable carrying the idempotency key to a command handler.
pub const IDEMPOTENCY_ENV: &str = "SYNAPSOR_IDEMPOTENCY_KEY";
/// Environment variable carrying the proposal id to a command handler.
pub const PROPOSAL_ENV: &str = "SYNAPSOR_PROPOSAL_ID";

/// Receipt `failed` codes of the signature and token checks (`docs/handlers.md`, steps 2-7):
/// they mean the runner's credentials do not match the handler's, reported as
/// `HANDLER_UNAUTHORIZED`.
const AUTH_CODES: &[&str] = &[
    "UNAUTHORIZED",
    "FORBIDDEN",
    "SIGNATURE_MISSING",
    "SIGNATURE_MALFORMED",
    "UNKNOWN_KEY_ID",
    "SIGNATURE_MISMATCH",
    "TIMESTAMP_OUT_OF_WINDOW",
];

/// How an HTTP handler call is retried: `attempts` in all, waiting `initial_backoff`, then twice
/// as long before each further attempt (capped at 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms apart.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed + 1`, after `failed` failed attempts (1, 2, ...).
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32 << failed.saturating_sub(1).min(16);
        self.initial_backoff.saturating_mul(factor).min(Duration::from_secs(30))
    }
}

/// `signing_secret_env` and the key id to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signing {
    secret_env: String,
    key_id: String,
}

impl Signing {
    fn from_config(secret_env: &Option<String>, key_id: &Option<String>) -> Option<Signing> {
        secret_env.as_ref().map(|env| Signing {
            secret_env: env.clone(),
            key_id: key_id.clone().unwrap_or_else(|| DEFAULT_KEY_ID.to_owned()),
        })
    }
}

/// A refusal before anything is sent: the code and a sentence for the operator.
type Refused = (WritebackCode, String);

/// The key to sign with: `None` when signing is not configured; an error when it is configured
/// but the secret is missing or unusable (never send unsigned then).
fn signing_key(signing: &Option<Signing>, env: EnvLookup<'_>, executor: &str) -> Result<Option<SigningKey>, Refused> {
    let Some(s) = signing else { return Ok(None) };
    let Some(secret) = env(&s.secret_env).filter(|v| !v.is_empty()) else {
        return Err((
            WritebackCode::HandlerSecretMissing,
            format!(
                "the environment variable {} (signing secret of executor {executor}) is not set; requests are never sent unsigned when a secret is configured",
                s.secret_env
            ),
        ));
    };
    SigningKey::new(s.key_id.clone(), secret.as_bytes())
        .map(Some)
        .map_err(|e| {
            // KeyError's text names lengths and the key id, never the secret.
            (
                WritebackCode::HandlerSecretInvalid,
                format!(
                    "the signing secret in {} of executor {executor} cannot be used: {e}",
                    s.secret_env
                ),
            )
        })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The same pre-checks as `sql_update` makes before connecting: the change set matches its
/// digest and the current reviewed capability, its patch is inside the current policy, and the
/// transition guards allow the move from the state the proposal was made on (the handler
/// re-checks the current row). `Err` is the sealed refusal.
fn precheck(req: &ApplyRequest<'_>, executor: &str) -> Result<Receipt, Box<Receipt>> {
    let cs = req.change_set;
    let cap = req.capability;
    let mut receipt = Receipt::new(cs, executor, &req.executed_at, req.dry_run);
    if !cs.digest_is_intact() {
        receipt.check("digest", false, "the change set does not match its digest");
        return Err(Box::new(receipt.refuse(
            WritebackCode::ChangeSetDigestMismatch,
            "the change set does not match its digest; it was modified after approval",
        )));
    }
    let plan = match guards::plan(cs, cap) {
        Ok(p) => p,
        Err(r) => {
            let name = if r.code == WritebackCode::CapabilityChanged {
                "capability"
            } else {
                "policy"
            };
            receipt.check(name, false, r.message.clone());
            return Err(Box::new(receipt.refuse(r.code, r.message)));
        }
    };
    receipt.check(
        "capability",
        true,
        format!(
            "{} still targets {}.{} by {} and tenant key {}, through executor {executor}",
            cap.name,
            plan.schema,
            plan.table,
            plan.primary_key,
            plan.tenant
                .as_ref()
                .map(|t| t.0.as_str())
                .unwrap_or("(single-tenant dev)")
        ),
    );
    if let Err(r) = guards::check_transitions(cs, cap, &cs.before) {
        receipt.check("policy", false, r.message.clone());
        return Err(Box::new(receipt.refuse(r.code, r.message)));
    }
    receipt.check(
        "policy",
        true,
        format!(
            "patch columns {} are allowed; numeric bounds and transition guards hold for the row as proposed",
            plan.patch
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(receipt)
}

/// The request for `req`, issued at `issued_at` (Unix seconds).
fn build_request(req: &ApplyRequest<'_>, executor: &str, issued_at: i64) -> HandlerRequest {
    let cs = req.change_set;
    let cap = req.capability;
    HandlerRequest {
        schema_version: REQUEST_SCHEMA.to_owned(),
        proposal_id: cs.proposal_id.clone(),
        idempotency_key: crate::receipt::idempotency_key(cs),
        issued_at,
        dry_run: req.dry_run,
        executor: executor.to_owned(),
        action: cs.action.clone(),
        digest: cs.digest.clone(),
        tenant: TenantGuard {
            column: cs.guards.tenant.as_ref().map(|t| t.column.clone()),
            value: cs.scope.tenant_id.clone(),
        },
        principal: cs.principal.id.clone(),
        target: Target {
            source: cs.source.source_id.clone(),
            schema: cs.source.schema.clone(),
            table: cs.source.table.clone(),
            primary_key: ColumnValue {
                column: cs.source.primary_key.column.clone(),
                value: cs.source.primary_key.value.clone(),
            },
        },
        // Allowed by both the approved change set and the current reviewed capability.
        allowed_columns: cs
            .guards
            .allowed_columns
            .iter()
            .filter(|c| cap.allowed_columns.contains(c))
            .cloned()
            .collect(),
        before: cs.before.clone(),
        patch: cs.patch.clone(),
        after: cs.after.clone(),
        expected_version: ColumnValue {
            column: cs.guards.expected_version.column.clone(),
            value: cs.guards.expected_version.value.clone(),
        },
        approvals: req.approvals.clone(),
    }
}

/// The exact bytes to send for `request` at Unix time `t`, and their signature.
fn sign_request(
    request: &mut HandlerRequest,
    key: Option<&SigningKey>,
    t: i64,
) -> Result<(Vec<u8>, Option<String>), Refused> {
    // `issued_at` must equal the signature's `t`, so a fresh timestamp means fresh bytes.
    request.issued_at = t;
    let body = serde_json::to_vec(request).map_err(|_| {
        (
            WritebackCode::HandlerFailed,
            "the handler request could not be encoded".to_owned(),
        )
    })?;
    let signature = key.map(|k| k.sign(t, &body));
    Ok((body, signature))
}

fn signed_text(key: Option<&SigningKey>) -> String {
    match key {
        Some(k) => format!("signed with key id {} (HMAC-SHA256 over t.body)", k.key_id()),
        None => "unsigned (the executor has no signing_secret_env)".to_owned(),
    }
}

// ------------------------------------------------------------------------------------------------
// Receipts

/// What an answer body is, read strictly.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedReceipt {
    /// A `synapsor.handler-receipt.v1` that keeps its rules.
    Valid(HandlerReceipt),
    /// It parses as a handler receipt (no unknown fields) but breaks a rule: the reason.
    Invalid(String),
    /// Empty, not JSON, or not shaped like a receipt (a proxy's error page, say).
    NotAReceipt,
}

/// Parses an answer body (or a command's stdout) as a handler receipt, strictly, and checks it:
/// `schema_version` is `synapsor.handler-receipt.v1`; `applied` has `rows_affected` 1 (0 for a
/// dry run) and every other status 0; `error_code` matches `^[A-Z][A-Z0-9_]{0,63}$`;
/// `new_version` is a string, number or null of at most 256 characters of JSON.
pub fn parse_receipt(body: &[u8], dry_run: bool) -> ParsedReceipt {
    let body = body.trim_ascii();
    if body.is_empty() {
        return ParsedReceipt::NotAReceipt;
    }
    let receipt: HandlerReceipt = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => return ParsedReceipt::NotAReceipt,
    };
    match check_receipt(&receipt, dry_run) {
        Ok(()) => ParsedReceipt::Valid(receipt),
        Err(why) => ParsedReceipt::Invalid(why),
    }
}

fn check_receipt(r: &HandlerReceipt, dry_run: bool) -> Result<(), String> {
    if r.schema_version != RECEIPT_SCHEMA {
        return Err(format!("schema_version is not {RECEIPT_SCHEMA}"));
    }
    if let Some(code) = &r.error_code
        && HandlerCode::new(code).is_none()
    {
        return Err("error_code is not an UPPER_SNAKE code of at most 64 characters".into());
    }
    let expected_rows = match r.status {
        HandlerStatus::Applied if !dry_run => 1,
        _ => 0,
    };
    if r.rows_affected != expected_rows {
        return Err(format!(
            "status {} with rows_affected {} (expected {expected_rows}{})",
            r.status,
            r.rows_affected,
            if dry_run { " for a dry run" } else { "" }
        ));
    }
    if let Some(v) = &r.new_version {
        let scalar = v.is_string() || v.is_number() || v.is_null();
        let stored = v.as_str().is_some_and(is_secret_value);
        if !scalar || stored || v.to_string().chars().count() > MAX_NEW_VERSION_CHARS {
            return Err(format!(
                "new_version must be a string or number of at most {MAX_NEW_VERSION_CHARS} characters"
            ));
        }
    }
    Ok(())
}

/// A handler message fit for a receipt: one line, no control characters, no URLs with
/// credentials, at most [`MAX_HANDLER_MESSAGE_CHARS`] characters.
fn safe_message(m: &str) -> String {
    let one_line: String = m.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let short = truncate(&redact(&one_line), MAX_HANDLER_MESSAGE_CHARS);
    // The ledger refuses to store credential-looking text; a handler's words must never block
    // the record of what it did.
    if is_secret_value(&short) {
        return "[withheld: it looked like a credential]".to_owned();
    }
    short
}

fn is_auth_code(code: &str) -> bool {
    AUTH_CODES.contains(&code)
}

/// What the executor makes of one answer.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    status: ReceiptStatus,
    code: Option<String>,
    /// The receipt's message.
    message: String,
    new_version: Option<Value>,
    /// One line for the attempt's check.
    detail: String,
}

impl Verdict {
    fn failed(code: WritebackCode, message: impl Into<String>, detail: impl Into<String>) -> Verdict {
        Verdict {
            status: code.status(),
            code: Some(code.as_str().to_owned()),
            message: message.into(),
            new_version: None,
            detail: detail.into(),
        }
    }

    fn accepted(&self) -> bool {
        self.status.is_success()
    }
}

/// The verdict for a valid handler receipt. `how` says where it came from (`HTTP 200`,
/// `exit 0`).
fn verdict_from_receipt(r: &HandlerReceipt, dry_run: bool, how: &str) -> Verdict {
    let said = r
        .message
        .as_deref()
        .map(safe_message)
        .filter(|m| !m.trim().is_empty())
        .map(|m| format!(" The handler said: {m}"))
        .unwrap_or_default();
    let code = r.error_code.clone();
    let shown_code = code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
    let detail = format!("{how}, receipt {}{shown_code} (rows {})", r.status, r.rows_affected);
    let mut v = match r.status {
        HandlerStatus::Applied if dry_run => Verdict {
            status: ReceiptStatus::WouldApply,
            code: None,
            message: "dry run: the handler checked the request and would apply it; nothing was written or recorded".into(),
            new_version: None,
            detail,
        },
        HandlerStatus::Applied => Verdict {
            status: ReceiptStatus::Applied,
            code: None,
            message: "the handler applied the change and recorded the idempotency key with it".into(),
            new_version: r.new_version.clone(),
            detail,
        },
        HandlerStatus::AlreadyApplied => Verdict {
            status: ReceiptStatus::AlreadyApplied,
            code: None,
            message: "the handler had already applied this idempotency key; nothing was written twice".into(),
            new_version: None,
            detail,
        },
        HandlerStatus::Conflict => Verdict {
            status: ReceiptStatus::Conflict,
            code: Some(code.unwrap_or_else(|| WritebackCode::HandlerConflict.as_str().to_owned())),
            message: "the handler refused with a conflict: the row is gone from this tenant or changed after the proposal; propose again".into(),
            new_version: None,
            detail,
        },
        HandlerStatus::Failed => match code {
            Some(c) if is_auth_code(&c) => Verdict::failed(
                WritebackCode::HandlerUnauthorized,
                format!(
                    "the handler refused the request's authentication ({c}): check the signing secret, key id, auth token and both clocks; nothing was written"
                ),
                detail,
            ),
            c => Verdict {
                status: ReceiptStatus::Failed,
                code: Some(c.unwrap_or_else(|| WritebackCode::HandlerFailed.as_str().to_owned())),
                message: "the handler refused or could not write; nothing was written, and the proposal can be applied again".into(),
                new_version: None,
                detail,
            },
        },
    };
    v.message.push_str(&said);
    v
}

// ------------------------------------------------------------------------------------------------
// HTTP

/// What one HTTP attempt produced.
#[derive(Debug)]
enum Answer {
    /// The status and the body (`None` when larger than [`MAX_RECEIPT_BYTES`] or unreadable).
    Http {
        status: u16,
        body: Option<Vec<u8>>,
    },
    Timeout,
    /// No HTTP answer: a short reason (never the URL).
    Unreachable(String),
}

/// Final, or worth another attempt (with what to report if it was the last).
#[derive(Debug)]
enum Step {
    Final(Verdict),
    Retry(Verdict),
}

fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Classifies one attempt. The receipt in the body decides whenever there is a valid one; the
/// HTTP status only decides when there is not (and makes 401/403 `HANDLER_UNAUTHORIZED`, and a
/// `failed` receipt on 408/429/502/503/504 retryable).
fn classify(answer: Answer, dry_run: bool, timeout: Duration) -> Step {
    let (status, body) = match answer {
        Answer::Timeout => {
            let ms = timeout.as_millis();
            return Step::Retry(Verdict::failed(
                WritebackCode::HandlerTimeout,
                format!("the handler did not answer within {ms} ms"),
                format!("no answer within {ms} ms"),
            ));
        }
        Answer::Unreachable(why) => {
            return Step::Retry(Verdict::failed(
                WritebackCode::HandlerUnavailable,
                format!("the handler could not be reached ({why})"),
                why,
            ));
        }
        Answer::Http { status, body } => (status, body),
    };
    let parsed = body
        .as_deref()
        .map(|b| parse_receipt(b, dry_run))
        .unwrap_or(ParsedReceipt::NotAReceipt);
    match parsed {
        ParsedReceipt::Valid(r) => {
            let v = verdict_from_receipt(&r, dry_run, &format!("HTTP {status}"));
            if r.status != HandlerStatus::Failed {
                return Step::Final(v);
            }
            if matches!(status, 401 | 403) && v.code.as_deref() != Some(WritebackCode::HandlerUnauthorized.as_str()) {
                let c = r.error_code.as_deref().unwrap_or("no code");
                return Step::Final(Verdict::failed(
                    WritebackCode::HandlerUnauthorized,
                    format!(
                        "the handler refused the request's credentials (HTTP {status}, {c}): check the auth token and signing secret; nothing was written"
                    ),
                    v.detail,
                ));
            }
            if status != 500 && transient_status(status) {
                return Step::Retry(v);
            }
            Step::Final(v)
        }
        ParsedReceipt::Invalid(why) => Step::Final(Verdict::failed(
            WritebackCode::HandlerReceiptInvalid,
            format!(
                "the handler answered HTTP {status} with an invalid receipt ({why}); its outcome is unknown: fix the handler, then apply again (its idempotency key keeps it from writing twice)"
            ),
            format!("HTTP {status}, invalid receipt: {why}"),
        )),
        ParsedReceipt::NotAReceipt => {
            let detail = format!("HTTP {status} without a receipt");
            match status {
                200..=299 => Step::Final(Verdict::failed(
                    WritebackCode::HandlerReceiptInvalid,
                    format!(
                        "the handler answered HTTP {status} without a valid synapsor.handler-receipt.v1 body; its outcome is unknown: fix the handler, then apply again (its idempotency key keeps it from writing twice)"
                    ),
                    detail,
                )),
                401 | 403 => Step::Final(Verdict::failed(
                    WritebackCode::HandlerUnauthorized,
                    format!(
                        "the handler refused the request's credentials (HTTP {status}): check the auth token and signing secret; nothing was written"
                    ),
                    detail,
                )),
                s if transient_status(s) => Step::Retry(Verdict::failed(
                    WritebackCode::HandlerUnavailable,
                    format!("the handler answered HTTP {status} without a receipt"),
                    detail,
                )),
                300..=399 => Step::Final(Verdict::failed(
                    WritebackCode::HandlerRejected,
                    format!(
                        "the handler answered with a redirect (HTTP {status}); redirects are not followed: set the handler's final URL"
                    ),
                    detail,
                )),
                400..=499 => Step::Final(Verdict::failed(
                    WritebackCode::HandlerRejected,
                    format!(
                        "the handler rejected the request (HTTP {status}) without a receipt; nothing is known to be written"
                    ),
                    detail,
                )),
                _ => Step::Final(Verdict::failed(
                    WritebackCode::HandlerUnavailable,
                    format!("the handler answered HTTP {status} without a receipt"),
                    detail,
                )),
            }
        }
    }
}

/// `scheme://host:port/path`: without user info, query or fragment, so safe to log.
fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The `http_handler` executor: one signed HTTP request per attempt.
#[derive(Debug, Clone)]
pub struct HttpHandlerExecutor {
    name: String,
    url_env: String,
    method: HttpMethod,
    token_env: Option<String>,
    signing: Option<Signing>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl HttpHandlerExecutor {
    /// The executor named `name` for an `http_handler` config (`None` for another type).
    pub fn from_config(name: &str, executor: &config::Executor) -> Option<HttpHandlerExecutor> {
        let config::Executor::HttpHandler {
            url_env,
            method,
            auth,
            signing_secret_env,
            signing_key_id,
            timeout_ms,
        } = executor
        else {
            return None;
        };
        Some(HttpHandlerExecutor {
            name: name.to_owned(),
            url_env: url_env.clone(),
            method: method.unwrap_or(HttpMethod::Post),
            token_env: auth
                .as_ref()
                .map(|ExecutorAuth::BearerEnv { token_env }| token_env.clone()),
            signing: Signing::from_config(signing_secret_env, signing_key_id),
            timeout: Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1)),
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy (tests use short backoffs).
    pub fn with_retry(mut self, retry: RetryPolicy) -> HttpHandlerExecutor {
        self.retry = retry;
        self
    }

    fn method(&self) -> reqwest::Method {
        match self.method {
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
        }
    }

    async fn send_once(&self, client: &reqwest::Client, url: &reqwest::Url, call: Call<'_>) -> Answer {
        let mut rb = client
            .request(self.method(), url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(IDEMPOTENCY_HEADER, call.idempotency_key)
            .header(PROPOSAL_HEADER, call.proposal_id);
        if let Some(s) = call.signature {
            rb = rb.header(SIGNATURE_HEADER, s);
        }
        if let Some(t) = call.token {
            rb = rb.bearer_auth(t);
        }
        let mut resp = match rb.body(call.body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Answer::Timeout,
            Err(e) if e.is_connect() => return Answer::Unreachable("connection failed".into()),
            Err(e) => return Answer::Unreachable(format!("request failed: {}", e.without_url())),
        };
        let status = resp.status().as_u16();
        // The per-request timeout also bounds reading the body.
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_RECEIPT_BYTES => body.extend_from_slice(&chunk),
                Ok(Some(_)) => return Answer::Http { status, body: None },
                Ok(None) => {
                    return Answer::Http {
                        status,
                        body: Some(body),
                    };
                }
                Err(e) if e.is_timeout() => return Answer::Timeout,
                Err(_) => return Answer::Http { status, body: None },
            }
        }
    }

    async fn apply_http(&self, req: ApplyRequest<'_>) -> Receipt {
        let mut receipt = match precheck(&req, &self.name) {
            Ok(r) => r,
            Err(r) => return *r,
        };
        let cs = req.change_set;
        let Some(raw_url) = (req.env)(&self.url_env).filter(|u| !u.trim().is_empty()) else {
            return receipt.refuse(
                WritebackCode::HandlerUrlMissing,
                format!(
                    "the environment variable {} (URL of handler executor {}) is not set; nothing was sent",
                    self.url_env, self.name
                ),
            );
        };
        let Some(url) = reqwest::Url::parse(raw_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        else {
            return receipt.refuse(
                WritebackCode::HandlerUrlInvalid,
                format!(
                    "the environment variable {} does not hold an http:// or https:// URL; nothing was sent",
                    self.url_env
                ),
            );
        };
        let shown = shown_url(&url);
        let key = match signing_key(&self.signing, req.env, &self.name) {
            Ok(k) => k,
            Err((code, message)) => return receipt.refuse(code, message),
        };
        let token = match &self.token_env {
            None => None,
            Some(env) => match (req.env)(env).filter(|t| !t.is_empty()) {
                Some(t) => Some(t),
                None => {
                    return receipt.refuse(
                        WritebackCode::HandlerTokenMissing,
                        format!(
                            "the environment variable {env} (auth token of executor {}) is not set; nothing was sent",
                            self.name
                        ),
                    );
                }
            },
        };
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return receipt.refuse(
                WritebackCode::HandlerClientUnavailable,
                "no TLS crypto provider is installed in this process, so no HTTP client can be built",
            );
        }
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("synapsor-runner/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(executor = %self.name, error = %e.without_url(), "cannot build the HTTP client");
                return receipt.refuse(
                    WritebackCode::HandlerClientUnavailable,
                    "the HTTP client could not be built; see the log",
                );
            }
        };

        let idempotency_key = receipt.idempotency_key.clone();
        receipt.check(
            "handler_request",
            true,
            format!(
                "{} {shown}, idempotency key {idempotency_key}, {}{}",
                self.method(),
                signed_text(key.as_ref()),
                if req.dry_run { ", dry_run: true" } else { "" }
            ),
        );
        let mut request = build_request(&req, &self.name, 0);
        let attempts = self.retry.attempts.max(1);
        for n in 1..=attempts {
            let (body, signature) = match sign_request(&mut request, key.as_ref(), unix_now()) {
                Ok(b) => b,
                Err((code, message)) => return receipt.refuse(code, message),
            };
            let answer = self
                .send_once(
                    &client,
                    &url,
                    Call {
                        body,
                        signature: signature.as_deref(),
                        token: token.as_deref(),
                        idempotency_key: &idempotency_key,
                        proposal_id: &cs.proposal_id,
                    },
                )
                .await;
            match classify(answer, req.dry_run, self.timeout) {
                Step::Final(v) => {
                    tracing::info!(
                        executor = %self.name, proposal_id = %cs.proposal_id, url = %shown, attempt = n,
                        outcome = %v.detail, "handler answered"
                    );
                    receipt.check("handler_call", v.accepted(), format!("attempt {n}: {}", v.detail));
                    return finish(receipt, v);
                }
                Step::Retry(v) if n < attempts => {
                    let wait = self.retry.backoff(n);
                    tracing::warn!(
                        executor = %self.name, proposal_id = %cs.proposal_id, url = %shown, attempt = n,
                        outcome = %v.detail, retry_in_ms = wait.as_millis() as u64, "handler call failed; retrying with the same idempotency key"
                    );
                    receipt.check(
                        "handler_call",
                        false,
                        format!(
                            "attempt {n}: {}; retrying in {} ms with the same idempotency key",
                            v.detail,
                            wait.as_millis()
                        ),
                    );
                    tokio::time::sleep(wait).await;
                }
                Step::Retry(mut v) => {
                    tracing::warn!(
                        executor = %self.name, proposal_id = %cs.proposal_id, url = %shown, attempt = n,
                        outcome = %v.detail, "handler call failed; giving up"
                    );
                    receipt.check("handler_call", false, format!("attempt {n}: {}", v.detail));
                    v.message = format!(
                        "{} ({attempts} attempt{}); if a request reached the handler its outcome is unknown: apply again, the same idempotency key keeps it from being applied twice",
                        v.message,
                        if attempts == 1 { "" } else { "s" }
                    );
                    return finish(receipt, v);
                }
            }
        }
        // The loop always returns on its last attempt.
        receipt.refuse(WritebackCode::HandlerUnavailable, "the handler was not called")
    }
}

/// One attempt's request.
struct Call<'a> {
    body: Vec<u8>,
    signature: Option<&'a str>,
    token: Option<&'a str>,
    idempotency_key: &'a str,
    proposal_id: &'a str,
}

/// Seals `receipt` with the verdict.
fn finish(mut receipt: Receipt, v: Verdict) -> Receipt {
    receipt.status = v.status;
    receipt.rows_affected = u32::from(v.status == ReceiptStatus::Applied);
    receipt.source_database_mutated = v.status == ReceiptStatus::Applied;
    receipt.safe_error_code = v.code;
    receipt.message = v.message;
    receipt.new_version = v.new_version;
    receipt.seal()
}

impl Executor for HttpHandlerExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt> {
        Box::pin(self.apply_http(req))
    }
}

// ------------------------------------------------------------------------------------------------
// Command

/// Reads at most `cap` bytes, then drains the rest (so the child never blocks on a full pipe).
/// `(bytes, overflowed)`.
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    let mut overflow = false;
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.len() + n <= cap {
                    out.extend_from_slice(&buf[..n]);
                } else {
                    overflow = true;
                }
            }
        }
    }
    (out, overflow)
}

/// The `command_handler` executor: a local command, signed bytes on stdin, receipt on stdout.
#[derive(Debug, Clone)]
pub struct CommandHandlerExecutor {
    name: String,
    command_env: String,
    signing: Option<Signing>,
    timeout: Duration,
}

impl CommandHandlerExecutor {
    /// The executor named `name` for a `command_handler` config (`None` for another type).
    pub fn from_config(name: &str, executor: &config::Executor) -> Option<CommandHandlerExecutor> {
        let config::Executor::CommandHandler {
            command_env,
            signing_secret_env,
            signing_key_id,
            timeout_ms,
        } = executor
        else {
            return None;
        };
        Some(CommandHandlerExecutor {
            name: name.to_owned(),
            command_env: command_env.clone(),
            signing: Signing::from_config(signing_secret_env, signing_key_id),
            timeout: Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1)),
        })
    }

    async fn apply_command(&self, req: ApplyRequest<'_>) -> Receipt {
        let mut receipt = match precheck(&req, &self.name) {
            Ok(r) => r,
            Err(r) => return *r,
        };
        let cs = req.change_set;
        let line = (req.env)(&self.command_env).unwrap_or_default();
        // Split on whitespace and run without a shell: no quoting, globbing or expansion.
        let mut words = line.split_whitespace();
        let Some(program) = words.next().map(str::to_owned) else {
            return receipt.refuse(
                WritebackCode::HandlerCommandMissing,
                format!(
                    "the environment variable {} (command of handler executor {}) is not set; nothing was run",
                    self.command_env, self.name
                ),
            );
        };
        let args: Vec<&str> = words.collect();
        let key = match signing_key(&self.signing, req.env, &self.name) {
            Ok(k) => k,
            Err((code, message)) => return receipt.refuse(code, message),
        };
        let mut request = build_request(&req, &self.name, 0);
        let (body, signature) = match sign_request(&mut request, key.as_ref(), unix_now()) {
            Ok(b) => b,
            Err((code, message)) => return receipt.refuse(code, message),
        };
        // Only the program is shown: its arguments may carry settings the operator keeps private.
        receipt.check(
            "handler_request",
            true,
            format!(
                "command {program} ({} argument(s)), {} bytes on stdin, idempotency key {}, {}{}",
                args.len(),
                body.len(),
                receipt.idempotency_key,
                signed_text(key.as_ref()),
                if req.dry_run { ", dry_run: true" } else { "" }
            ),
        );

        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .env(IDEMPOTENCY_ENV, &receipt.idempotency_key)
            .env(PROPOSAL_ENV, &cs.proposal_id);
        match &signature {
            Some(s) => cmd.env(SIGNATURE_ENV, s),
            None => cmd.env_remove(SIGNATURE_ENV),
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(executor = %self.name, program = %program, error = %e, "cannot start the handler command");
                receipt.check("handler_call", false, format!("cannot start {program}: {}", e.kind()));
                return receipt.refuse(
                    WritebackCode::HandlerCommandNotFound,
                    format!(
                        "the handler command {program} could not be started ({}); check {}; nothing was run",
                        e.kind(),
                        self.command_env
                    ),
                );
            }
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let io = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // Exactly the signed bytes, then EOF. A command that exits without reading
                    // them closes the pipe; its exit status and stdout still decide.
                    let _ = stdin.write_all(&body).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let ((), out, err) = tokio::join!(write, read_capped(stdout, MAX_RECEIPT_BYTES), read_capped(stderr, 4096));
            (out, err, child.wait().await)
        };
        let ms = self.timeout.as_millis();
        let outcome = tokio::time::timeout(self.timeout, io).await;
        let Ok(((stdout, stdout_overflow), (stderr, _), status)) = outcome else {
            let _ = child.kill().await;
            tracing::warn!(executor = %self.name, proposal_id = %cs.proposal_id, program = %program, timeout_ms = ms as u64, "handler command timed out; killed");
            receipt.check("handler_call", false, format!("no receipt within {ms} ms; killed"));
            return receipt.refuse(
                WritebackCode::HandlerTimeout,
                format!(
                    "the handler command did not finish within {ms} ms and was killed; its outcome is unknown: apply again, the same idempotency key keeps it from being applied twice"
                ),
            );
        };
        let stderr_text = String::from_utf8_lossy(&stderr);
        if !stderr_text.trim().is_empty() {
            let mut shown = truncate(&redact(&stderr_text), 500);
            if is_secret_value(&shown) {
                shown = "[withheld: it looked like a credential]".to_owned();
            }
            tracing::info!(
                executor = %self.name, proposal_id = %cs.proposal_id, stderr = %shown, "handler command stderr"
            );
        }
        let exit = match &status {
            Ok(s) => match s.code() {
                Some(c) => format!("exit {c}"),
                None => "ended by a signal".to_owned(),
            },
            Err(_) => "exit status unknown".to_owned(),
        };
        let success = status.as_ref().is_ok_and(|s| s.success());
        let parsed = if stdout_overflow {
            ParsedReceipt::Invalid(format!("stdout is larger than {MAX_RECEIPT_BYTES} bytes"))
        } else {
            parse_receipt(&stdout, req.dry_run)
        };
        let v = match parsed {
            ParsedReceipt::Valid(r) => verdict_from_receipt(&r, req.dry_run, &exit),
            other if !success => {
                let why = match other {
                    ParsedReceipt::Invalid(why) => format!(" and an invalid receipt ({why})"),
                    _ => " without a receipt".to_owned(),
                };
                Verdict::failed(
                    WritebackCode::HandlerCommandFailed,
                    format!(
                        "the handler command ended with {exit}{why}; see the log for its stderr; apply again once it is fixed"
                    ),
                    format!("{exit}{why}"),
                )
            }
            ParsedReceipt::Invalid(why) => Verdict::failed(
                WritebackCode::HandlerReceiptInvalid,
                format!(
                    "the handler command wrote an invalid receipt ({why}); its outcome is unknown: fix the handler, then apply again (its idempotency key keeps it from writing twice)"
                ),
                format!("{exit}, invalid receipt: {why}"),
            ),
            ParsedReceipt::NotAReceipt => Verdict::failed(
                WritebackCode::HandlerReceiptInvalid,
                "the handler command exited 0 without a synapsor.handler-receipt.v1 on stdout; its outcome is unknown: fix the handler, then apply again (its idempotency key keeps it from writing twice)",
                format!("{exit} without a receipt"),
            ),
        };
        tracing::info!(executor = %self.name, proposal_id = %cs.proposal_id, outcome = %v.detail, "handler command finished");
        receipt.check("handler_call", v.accepted(), v.detail.clone());
        finish(receipt, v)
    }
}

impl Executor for CommandHandlerExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt> {
        Box::pin(self.apply_command(req))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receipt(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn valid(status: &str, rows: u32) -> Value {
        json!({"schema_version": RECEIPT_SCHEMA, "status": status, "rows_affected": rows})
    }

    #[test]
    fn receipts_are_parsed_strictly() {
        assert!(matches!(
            parse_receipt(&receipt(valid("applied", 1)), false),
            ParsedReceipt::Valid(_)
        ));
        assert!(matches!(
            parse_receipt(&receipt(valid("applied", 0)), true),
            ParsedReceipt::Valid(_)
        ));
        for (body, dry) in [
            (valid("applied", 0), false),
            (valid("applied", 2), false),
            (valid("applied", 1), true),
            (valid("already_applied", 1), false),
            (valid("conflict", 1), false),
            (
                json!({"schema_version": "synapsor.handler-receipt.v2", "status": "applied", "rows_affected": 1}),
                false,
            ),
            (
                json!({"schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0, "error_code": "lower"}),
                false,
            ),
            (
                json!({"schema_version": RECEIPT_SCHEMA, "status": "applied", "rows_affected": 1, "new_version": {"a": 1}}),
                false,
            ),
            (
                json!({"schema_version": RECEIPT_SCHEMA, "status": "applied", "rows_affected": 1, "new_version": "x".repeat(300)}),
                false,
            ),
        ] {
            assert!(
                matches!(parse_receipt(&receipt(body.clone()), dry), ParsedReceipt::Invalid(_)),
                "{body} dry={dry}"
            );
        }
        for body in [
            b"".to_vec(),
            b"  \n".to_vec(),
            b"<html>bad gateway</html>".to_vec(),
            receipt(json!({"error": "oops"})),
            receipt(json!({"schema_version": RECEIPT_SCHEMA, "status": "done", "rows_affected": 1})),
            receipt(json!({"schema_version": RECEIPT_SCHEMA, "status": "applied", "rows_affected": 1, "extra": true})),
            receipt(json!({"schema_version": RECEIPT_SCHEMA, "status": "applied", "rows_affected": -1})),
        ] {
            assert_eq!(
                parse_receipt(&body, false),
                ParsedReceipt::NotAReceipt,
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    fn http(status: u16, body: Value) -> Answer {
        Answer::Http {
            status,
            body: Some(receipt(body)),
        }
    }

    /// (retry?, status, code)
    type Want<'a> = (bool, ReceiptStatus, Option<&'a str>);

    fn code_of(step: &Step) -> Want<'_> {
        match step {
            Step::Final(v) => (false, v.status, v.code.as_deref()),
            Step::Retry(v) => (true, v.status, v.code.as_deref()),
        }
    }

    #[test]
    fn attempts_are_classified() {
        let t = Duration::from_millis(100);
        let failed = |code: &str| json!({"schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0, "error_code": code});
        let conflict = json!({"schema_version": RECEIPT_SCHEMA, "status": "conflict", "rows_affected": 0, "error_code": "VERSION_CONFLICT"});
        let cases: Vec<(Answer, Want<'_>)> = vec![
            (http(200, valid("applied", 1)), (false, ReceiptStatus::Applied, None)),
            // The receipt decides whatever the status.
            (http(500, valid("applied", 1)), (false, ReceiptStatus::Applied, None)),
            (
                http(409, conflict.clone()),
                (false, ReceiptStatus::Conflict, Some("VERSION_CONFLICT")),
            ),
            (
                http(
                    200,
                    json!({"schema_version": RECEIPT_SCHEMA, "status": "conflict", "rows_affected": 0}),
                ),
                (false, ReceiptStatus::Conflict, Some("HANDLER_CONFLICT")),
            ),
            (
                http(422, failed("UNSUPPORTED_ACTION")),
                (false, ReceiptStatus::Failed, Some("UNSUPPORTED_ACTION")),
            ),
            (
                http(500, failed("HANDLER_ERROR")),
                (false, ReceiptStatus::Failed, Some("HANDLER_ERROR")),
            ),
            (
                http(503, failed("DB_DOWN")),
                (true, ReceiptStatus::Failed, Some("DB_DOWN")),
            ),
            (
                http(401, failed("SIGNATURE_MISMATCH")),
                (false, ReceiptStatus::Failed, Some("HANDLER_UNAUTHORIZED")),
            ),
            (
                http(403, failed("NOPE")),
                (false, ReceiptStatus::Failed, Some("HANDLER_UNAUTHORIZED")),
            ),
            (
                http(200, failed("UNKNOWN_KEY_ID")),
                (false, ReceiptStatus::Failed, Some("HANDLER_UNAUTHORIZED")),
            ),
            (
                http(
                    200,
                    json!({"schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0}),
                ),
                (false, ReceiptStatus::Failed, Some("HANDLER_FAILED")),
            ),
            (
                http(200, valid("applied", 2)),
                (false, ReceiptStatus::Failed, Some("HANDLER_RECEIPT_INVALID")),
            ),
            (
                http(500, valid("applied", 2)),
                (false, ReceiptStatus::Failed, Some("HANDLER_RECEIPT_INVALID")),
            ),
            (
                http(200, json!({"ok": true})),
                (false, ReceiptStatus::Failed, Some("HANDLER_RECEIPT_INVALID")),
            ),
            (
                Answer::Http {
                    status: 200,
                    body: None,
                },
                (false, ReceiptStatus::Failed, Some("HANDLER_RECEIPT_INVALID")),
            ),
            (
                http(401, json!({})),
                (false, ReceiptStatus::Failed, Some("HANDLER_UNAUTHORIZED")),
            ),
            (
                http(400, json!({})),
                (false, ReceiptStatus::Failed, Some("HANDLER_REJECTED")),
            ),
            (
                http(404, json!({})),
                (false, ReceiptStatus::Failed, Some("HANDLER_REJECTED")),
            ),
            (
                http(302, json!({})),
                (false, ReceiptStatus::Failed, Some("HANDLER_REJECTED")),
            ),
            (
                http(501, json!({})),
                (false, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(500, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(502, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(503, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(504, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(429, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (
                http(408, json!({})),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
            (Answer::Timeout, (true, ReceiptStatus::Failed, Some("HANDLER_TIMEOUT"))),
            (
                Answer::Unreachable("connection failed".into()),
                (true, ReceiptStatus::Failed, Some("HANDLER_UNAVAILABLE")),
            ),
        ];
        for (answer, want) in cases {
            let shown = format!("{answer:?}");
            let step = classify(answer, false, t);
            assert_eq!(code_of(&step), want, "{shown}");
        }
        // Dry runs: applied with 0 rows is what the handler would do.
        let step = classify(http(200, valid("applied", 0)), true, t);
        assert_eq!(code_of(&step), (false, ReceiptStatus::WouldApply, None));
    }

    #[test]
    fn handler_messages_are_made_safe() {
        let r: HandlerReceipt = serde_json::from_value(json!({
            "schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0,
            "error_code": "PATCH_COLUMN_NOT_ALLOWED",
            "message": format!("bad\ncolumn https://u:pw@db/x {}", "y".repeat(500))
        }))
        .unwrap();
        let v = verdict_from_receipt(&r, false, "HTTP 422");
        assert!(!v.message.contains('\n'), "{}", v.message);
        assert!(!v.message.contains("pw@"), "{}", v.message);
        assert!(v.message.chars().count() < 600, "{}", v.message);
        assert_eq!(v.code.as_deref(), Some("PATCH_COLUMN_NOT_ALLOWED"));
        // What the ledger would refuse to store is withheld.
        for m in ["see postgres://db/app", "Authorization: Bearer abcdefghijklmnop"] {
            let mut r = r.clone();
            r.message = Some(m.to_owned());
            let v = verdict_from_receipt(&r, false, "HTTP 422");
            assert!(!is_secret_value(&v.message), "{}", v.message);
            assert!(v.message.contains("withheld"), "{}", v.message);
        }
        // Every message the executor writes itself can be stored.
        let t = Duration::from_millis(5);
        for status in [200, 302, 400, 401, 403, 404, 429, 500, 501, 503] {
            let (Step::Final(v) | Step::Retry(v)) = classify(http(status, json!({})), false, t);
            assert!(!is_secret_value(&v.message), "{status}: {}", v.message);
        }
        for (code, dry) in [("SIGNATURE_MISMATCH", false), ("X", false)] {
            let r: HandlerReceipt = serde_json::from_value(
                json!({"schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0, "error_code": code}),
            )
            .unwrap();
            let v = verdict_from_receipt(&r, dry, "exit 0");
            assert!(!is_secret_value(&v.message), "{}", v.message);
        }
    }

    #[test]
    fn backoff_doubles() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let u = reqwest::Url::parse("https://user:pw@handler.example:8443/apply?token=abc#frag").unwrap();
        assert_eq!(shown_url(&u), "https://handler.example:8443/apply");
    }
}
