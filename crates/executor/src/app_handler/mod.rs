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
//!
//! The files: this one holds the contract both executors share, with no network or process IO:
//! the pre-checks, building and signing the [`HandlerRequest`], reading and checking the
//! [`HandlerReceipt`] ([`parse_receipt`]), turning a handler's answer into a [`Receipt`], and
//! [`RetryPolicy`]. `http.rs` holds [`HttpHandlerExecutor`] (sending, retrying, classifying HTTP
//! answers); `command.rs` holds [`CommandHandlerExecutor`] (running the command, feeding its stdin
//! and reading its stdout under the timeout).

mod command;
mod http;

use std::time::Duration;

use serde_json::Value;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_core::secrets::is_secret_value;
use synapsor_handler::{
    ColumnValue, DEFAULT_KEY_ID, HandlerReceipt, HandlerRequest, RECEIPT_SCHEMA, REQUEST_SCHEMA, SigningKey, Target,
    TenantGuard,
};
use synapsor_source::redact;

use crate::guards::{self, truncate};
use crate::receipt::{HandlerCode, Receipt, ReceiptStatus, WritebackCode};
use crate::sql::checked_plan;
use crate::{ApplyRequest, Env};

pub use command::{CommandHandlerExecutor, IDEMPOTENCY_ENV, PROPOSAL_ENV, SIGNATURE_ENV};
pub use http::HttpHandlerExecutor;

type HandlerStatus = synapsor_handler::ReceiptStatus;

/// Per-attempt timeout when the executor has no `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Largest receipt body (HTTP) or stdout (command) read; a bigger answer is not a receipt.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;
/// Longest handler `message` kept in a receipt, in characters.
pub const MAX_HANDLER_MESSAGE_CHARS: usize = 300;
/// Longest `new_version` accepted from a handler, as JSON text.
pub const MAX_NEW_VERSION_CHARS: usize = 256;

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

/// The per-attempt timeout of a handler executor: `timeout_ms`, or [`DEFAULT_TIMEOUT_MS`]; at
/// least 1 ms, since a zero timeout would cut every attempt off at once.
fn attempt_timeout(timeout_ms: Option<u64>) -> Duration {
    Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1))
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
fn signing_key(signing: &Option<Signing>, env: &dyn Env, executor: &str) -> Result<Option<SigningKey>, Refused> {
    let Some(s) = signing else { return Ok(None) };
    let Some(secret) = env.var(&s.secret_env) else {
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
    SystemClock.now_ms().div_euclid(1000)
}

/// The same pre-checks as `sql_update` makes before connecting: the change set matches its
/// digest and the current reviewed capability, its patch is inside the current policy, and the
/// transition guards allow the move from the state the proposal was made on (the handler
/// re-checks the current row). `Err` is the sealed refusal.
fn precheck(req: &ApplyRequest<'_>, executor: &str) -> Result<Receipt, Box<Receipt>> {
    let cs = req.change_set;
    let cap = req.capability;
    let mut receipt = Receipt::new(cs, executor, &req.executed_at, req.dry_run);
    let plan = match checked_plan(&mut receipt, cs, cap) {
        Ok(p) => p,
        Err(r) => return Err(Box::new(receipt.refuse(r.code, r.message))),
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
    /// It parses as a handler receipt (no unknown fields) but breaks a rule: which one.
    Invalid(ReceiptRuleBroken),
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

/// The rule of the receipt contract an answer broke (the receipt is then unusable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptRuleBroken {
    #[error("schema_version is not {RECEIPT_SCHEMA}")]
    SchemaVersion,
    #[error("error_code is not an UPPER_SNAKE code of at most 64 characters")]
    ErrorCode,
    #[error("status {status} with rows_affected {rows} (expected {expected}{})", if *.dry_run { " for a dry run" } else { "" })]
    RowsAffected {
        status: String,
        rows: u32,
        expected: u32,
        dry_run: bool,
    },
    #[error("new_version must be a string or number of at most {MAX_NEW_VERSION_CHARS} characters")]
    NewVersion,
    #[error("stdout is larger than {MAX_RECEIPT_BYTES} bytes")]
    TooLarge,
}

fn check_receipt(r: &HandlerReceipt, dry_run: bool) -> Result<(), ReceiptRuleBroken> {
    if r.schema_version != RECEIPT_SCHEMA {
        return Err(ReceiptRuleBroken::SchemaVersion);
    }
    if let Some(code) = &r.error_code
        && HandlerCode::new(code).is_none()
    {
        return Err(ReceiptRuleBroken::ErrorCode);
    }
    let expected_rows = match r.status {
        HandlerStatus::Applied if !dry_run => 1,
        _ => 0,
    };
    if r.rows_affected != expected_rows {
        return Err(ReceiptRuleBroken::RowsAffected {
            status: r.status.to_string(),
            rows: r.rows_affected,
            expected: expected_rows,
            dry_run,
        });
    }
    if let Some(v) = &r.new_version {
        let scalar = v.is_string() || v.is_number() || v.is_null();
        let stored = v.as_str().is_some_and(is_secret_value);
        if !scalar || stored || v.to_string().chars().count() > MAX_NEW_VERSION_CHARS {
            return Err(ReceiptRuleBroken::NewVersion);
        }
    }
    Ok(())
}

/// A handler message fit for a receipt: one line, no control characters, no URLs with
/// credentials, at most [`MAX_HANDLER_MESSAGE_CHARS`] characters.
fn safe_message(m: &str) -> String {
    let one_line: String = m.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    redacted(&one_line, MAX_HANDLER_MESSAGE_CHARS)
}

/// Text the handler wrote (its message, a command's stderr), fit to record or log: URLs without
/// credentials, at most `max_chars` characters, and withheld whole when it still looks like a
/// credential.
fn redacted(text: &str, max_chars: usize) -> String {
    let short = truncate(&redact(text), max_chars);
    // The ledger refuses to store credential-looking text; a handler's words must never block
    // the record of what it did, nor put a secret in the log.
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

    /// The handler may have run but left no usable receipt (`what` says how): its outcome is
    /// unknown, so the proposal stays retryable and the idempotency key makes the retry safe.
    fn receipt_unusable(what: &str, detail: impl Into<String>) -> Verdict {
        Verdict::failed(
            WritebackCode::HandlerReceiptInvalid,
            format!(
                "{what}; its outcome is unknown: fix the handler, then apply again (its idempotency key keeps it from writing twice)"
            ),
            detail,
        )
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

/// Seals `receipt` with the verdict.
fn finish(mut receipt: Receipt, v: Verdict) -> Receipt {
    receipt.status = v.status;
    receipt.rows_affected = u32::from(v.status == ReceiptStatus::Applied);
    receipt.source_database_mutated = v.status == ReceiptStatus::Applied;
    receipt.safe_error_code = v.code;
    receipt.message = v.message;
    receipt.new_version = v.new_version;
    // A handler applies one row per idempotency key, so its `already_applied` names that
    // write: the runner records it as the proposal's when no receipt of its own says so.
    receipt.applied_rows_affected = (v.status == ReceiptStatus::AlreadyApplied).then_some(1);
    receipt.seal()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn receipt(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    pub(super) fn valid(status: &str, rows: u32) -> Value {
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
}
