//! The event webhook envelope (`synapsor-runner events webhook`).
//!
//! One ledger event per `POST`, body [`EventEnvelope`], signed exactly like handler requests
//! (`X-Synapsor-Signature` over `"<t>." + body`), with the event id in `X-Synapsor-Event-Id`.
//! Receivers check the signature with [`crate::verify_signature`], then deduplicate by
//! `event.event_id` (a delivery can repeat after a timeout; ids only grow).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const EVENT_WEBHOOK_SCHEMA: &str = "synapsor.event-webhook.v1";
pub const EVENT_ID_HEADER: &str = "X-Synapsor-Event-Id";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    /// Always [`EVENT_WEBHOOK_SCHEMA`].
    #[schemars(extend("const" = EVENT_WEBHOOK_SCHEMA))]
    pub schema_version: String,
    /// When this delivery attempt was made (RFC 3339 UTC).
    pub delivered_at: String,
    pub event: WebhookEvent,
}

/// One lifecycle event as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// Grows with every event; never reused.
    pub event_id: i64,
    pub proposal_id: String,
    /// e.g. `proposal_created`, `proposal_approved`, `writeback_applied`.
    pub kind: String,
    pub actor: String,
    pub payload: Value,
    /// RFC 3339 UTC.
    pub created_at: String,
}
