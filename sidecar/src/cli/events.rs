//! `events tail` (print lifecycle events, optionally following) and `events webhook` (POST them,
//! signed, to a receiver, resuming from an event id).

use std::io::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use synapsor_core::context::{Clock, SystemClock};

use synapsor_core::context::{Env, ProcessEnv};
use synapsor_core::time::format_rfc3339_ms;
use synapsor_executor::url::shown_url;
use synapsor_handler::{
    EVENT_ID_HEADER, EVENT_WEBHOOK_SCHEMA, EventEnvelope, SIGNATURE_HEADER, SigningKey, WebhookEvent,
};
use synapsor_ledger::EventRecord;

use super::common::{CliError, GlobalArgs, open_store};
use super::output;

/// Why one delivery failed (printed, and retried with `--follow`).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("cannot encode the envelope")]
    Encode,
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("connection failed")]
    Connect,
    #[error("request failed: {0}")]
    Request(String),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print events in order; with --follow, keep printing new ones until interrupted.
    Tail {
        #[arg(long)]
        follow: bool,
        /// Only this event kind (e.g. proposal_created, proposal_approved).
        #[arg(long)]
        kind: Option<String>,
        /// Start after this event id.
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// At most this many past events (the newest ones).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Poll interval for --follow.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..))]
        interval_ms: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// POST lifecycle events to a URL, one signed envelope per request.
    Webhook(WebhookArgs),
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Receiver URL (http:// or https://).
    #[arg(long)]
    pub url: String,
    /// Only this event kind (e.g. proposal_created, proposal_approved).
    #[arg(long)]
    pub kind: Option<String>,
    /// Start after this event id: the last one the receiver got (0 = from the beginning).
    #[arg(long, default_value_t = 0)]
    pub since: i64,
    /// Keep delivering new events until interrupted; retry failed deliveries with backoff.
    #[arg(long)]
    pub follow: bool,
    /// Poll interval for --follow (also the first retry delay).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    pub interval_ms: u64,
    /// Environment variable holding the signing secret (at least 32 bytes). Envelopes are signed
    /// like handler requests: X-Synapsor-Signature: t=..,kid=..,v1=HMAC-SHA256(secret, "t." + body).
    #[arg(long)]
    pub secret_env: Option<String>,
    /// Key id sent in the signature.
    #[arg(long, default_value = synapsor_handler::DEFAULT_KEY_ID)]
    pub key_id: String,
    /// Environment variable holding a bearer token for the receiver.
    #[arg(long)]
    pub auth_token_env: Option<String>,
    /// Timeout of one delivery.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(250..=600_000))]
    pub timeout_ms: u64,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `events tail|webhook`.
pub async fn run(global: &GlobalArgs, cmd: EventsCommand) -> Result<i32, CliError> {
    match cmd {
        EventsCommand::Tail {
            follow,
            kind,
            since,
            limit,
            interval_ms,
            json,
        } => tail(global, follow, kind.as_deref(), since, limit, interval_ms, json).await,
        EventsCommand::Webhook(args) => webhook(global, args).await,
    }
}

async fn tail(
    global: &GlobalArgs,
    follow: bool,
    kind: Option<&str>,
    since: i64,
    limit: u32,
    interval_ms: u64,
    json: bool,
) -> Result<i32, CliError> {
    let store = open_store(global)?;
    // Without --since, show the newest `limit` events, then follow from there.
    let mut cursor = if since == 0 {
        (store.last_event_id()? - i64::from(limit)).max(0)
    } else {
        since
    };
    let mut out = std::io::stdout();
    loop {
        let batch = store.events_after(cursor, kind, 500)?;
        for e in &batch {
            let line = if json {
                serde_json::to_string(e).unwrap_or_default()
            } else {
                output::event_line(e)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // stdout closed (e.g. piped into head)
            }
            cursor = cursor.max(e.event_id);
        }
        let _ = out.flush();
        if !follow {
            return Ok(0);
        }
        if batch.len() < 500 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    }
}

async fn webhook(global: &GlobalArgs, args: WebhookArgs) -> Result<i32, CliError> {
    let url = reqwest::Url::parse(&args.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| CliError::new("WEBHOOK_URL_INVALID", "--url must be an http:// or https:// URL"))?;
    let target = shown_url(&url);
    let env_value = |flag: &str, name: &str| -> Result<String, CliError> {
        ProcessEnv.var(name).ok_or_else(|| {
            CliError::new(
                "WEBHOOK_ENV_MISSING",
                format!("{flag}: environment variable {name} is not set"),
            )
        })
    };
    let key = match &args.secret_env {
        Some(name) => Some(
            SigningKey::new(args.key_id.clone(), env_value("--secret-env", name)?)
                .map_err(|e| CliError::new(e.code(), format!("--secret-env {name}: {e}")))?,
        ),
        None => {
            eprintln!("warning: --secret-env not set; envelopes are sent unsigned and receivers cannot verify them");
            None
        }
    };
    let token = match &args.auth_token_env {
        Some(name) => Some(env_value("--auth-token-env", name)?),
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .user_agent(concat!("synapsor-runner-events-webhook/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            CliError::new(
                "WEBHOOK_CLIENT_FAILED",
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })?;
    let store = open_store(global)?;

    // One delivery attempt: the HTTP status of a 2xx answer, or why it failed.
    let deliver = async |e: &EventRecord| -> Result<u16, DeliveryError> {
        let now_ms = SystemClock.now_ms();
        let envelope = EventEnvelope {
            schema_version: EVENT_WEBHOOK_SCHEMA.to_owned(),
            delivered_at: format_rfc3339_ms(now_ms),
            event: WebhookEvent {
                event_id: e.event_id,
                proposal_id: e.proposal_id.clone(),
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                payload: e.payload.clone(),
                created_at: e.created_at.clone(),
            },
        };
        // The signature covers exactly these bytes.
        let body = serde_json::to_vec(&envelope).map_err(|_| DeliveryError::Encode)?;
        let mut req = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(EVENT_ID_HEADER, e.event_id.to_string());
        if let Some(key) = &key {
            req = req.header(SIGNATURE_HEADER, key.sign(now_ms.div_euclid(1000), &body));
        }
        if let Some(token) = &token {
            req = req.bearer_auth(token);
        }
        match req.body(body).send().await {
            Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
            Ok(resp) => Err(DeliveryError::Status(resp.status())),
            Err(err) if err.is_timeout() => Err(DeliveryError::Timeout(args.timeout_ms)),
            Err(err) if err.is_connect() => Err(DeliveryError::Connect),
            Err(err) => Err(DeliveryError::Request(err.without_url().to_string())),
        }
    };

    let mut cursor = args.since;
    let mut delivered: u64 = 0;
    let mut out = std::io::stdout();
    loop {
        let batch = store.events_after(cursor, args.kind.as_deref(), 100)?;
        for e in &batch {
            let mut attempt: u32 = 0;
            let status = loop {
                match deliver(e).await {
                    Ok(status) => break status,
                    Err(reason) if !args.follow => {
                        return Err(CliError::new(
                            "WEBHOOK_DELIVERY_FAILED",
                            format!(
                                "event #{} ({}) to {target}: {reason}; {delivered} delivered before it. \
                                 Resume with --since {cursor}",
                                e.event_id, e.kind
                            ),
                        ));
                    }
                    Err(reason) => {
                        attempt += 1;
                        // Exponential backoff from --interval-ms, capped at 60 s. The cursor stays
                        // on the failed event: nothing is skipped.
                        let delay = args
                            .interval_ms
                            .saturating_mul(1u64 << (attempt - 1).min(16))
                            .min(60_000);
                        eprintln!(
                            "event #{} to {target}: {reason}; retry {attempt} in {delay} ms",
                            e.event_id
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                            _ = tokio::signal::ctrl_c() => return Ok(0),
                        }
                    }
                }
            };
            cursor = e.event_id;
            delivered += 1;
            let line = if args.json {
                serde_json::json!({"delivered": e.event_id, "kind": e.kind, "proposal_id": e.proposal_id, "status": status})
                    .to_string()
            } else {
                format!("delivered #{} {}", e.event_id, e.kind)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // stdout closed
            }
        }
        let _ = out.flush();
        if batch.len() < 100 {
            if !args.follow {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "delivered": delivered, "cursor": cursor})
        );
    } else {
        println!("{delivered} event(s) delivered to {target}; last event id {cursor}");
    }
    Ok(0)
}
