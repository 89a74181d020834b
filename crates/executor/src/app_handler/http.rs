//! [`HttpHandlerExecutor`]: sends the signed request to the handler's URL, one bounded attempt
//! at a time, and retries transient failures with the same idempotency key ([`RetryPolicy`]).
//! What an HTTP answer means is decided here (`classify`): a valid receipt in the body always
//! wins; the status only decides when there is none.
//!
//! The client uses rustls without a built-in crypto provider; the binary installs one (see the
//! module doc of `app_handler`).

use std::time::Duration;

use synapsor_core::config::{self, ExecutorAuth, HttpMethod};
use synapsor_handler::{IDEMPOTENCY_HEADER, PROPOSAL_HEADER, SIGNATURE_HEADER};

use super::{
    HandlerStatus, MAX_RECEIPT_BYTES, ParsedReceipt, RetryPolicy, Signing, Verdict, attempt_timeout, build_request,
    finish, parse_receipt, precheck, sign_request, signed_text, signing_key, unix_now, verdict_from_receipt,
};
use crate::receipt::{Receipt, WritebackCode};
use crate::url::shown_url;
use crate::{ApplyRequest, BoxFuture, Executor};

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
        ParsedReceipt::Invalid(why) => Step::Final(Verdict::receipt_unusable(
            &format!("the handler answered HTTP {status} with an invalid receipt ({why})"),
            format!("HTTP {status}, invalid receipt: {why}"),
        )),
        ParsedReceipt::NotAReceipt => {
            let detail = format!("HTTP {status} without a receipt");
            match status {
                200..=299 => Step::Final(Verdict::receipt_unusable(
                    &format!("the handler answered HTTP {status} without a valid synapsor.handler-receipt.v1 body"),
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
            timeout: attempt_timeout(*timeout_ms),
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
        let Some(raw_url) = req.env.var(&self.url_env) else {
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
            Some(env) => match req.env.var(env) {
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

impl Executor for HttpHandlerExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt> {
        Box::pin(self.apply_http(req))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app_handler::tests::{receipt, valid};
    use crate::receipt::ReceiptStatus;
    use serde_json::{Value, json};
    use synapsor_core::secrets::is_secret_value;
    use synapsor_handler::RECEIPT_SCHEMA;

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
    fn http_failure_messages_can_be_stored() {
        // Every message the executor writes itself can be stored.
        let t = Duration::from_millis(5);
        for status in [200, 302, 400, 401, 403, 404, 429, 500, 501, 503] {
            let (Step::Final(v) | Step::Retry(v)) = classify(http(status, json!({})), false, t);
            assert!(!is_secret_value(&v.message), "{status}: {}", v.message);
        }
    }
}
