//! The one wire format between the runner and an app-owned handler.
//!
//! Request: `POST` (or the configured method) with a JSON body [`HandlerRequest`] and headers
//! `Content-Type: application/json`, `Idempotency-Key: <idempotency_key>`,
//! `X-Synapsor-Proposal-Id: <proposal_id>`, optional `Authorization: Bearer <token>`, and, when a
//! signing secret is configured, `X-Synapsor-Signature: t=<unix seconds>,kid=<key id>,v1=<hex>`
//! where `v1 = HMAC-SHA256(secret, "<t>." + raw body bytes)`. The signature covers the timestamp
//! and the exact body, so neither can be replayed with the other changed; handlers reject
//! timestamps outside a skew window (default 300 s) and repeated idempotency keys.
//!
//! Response: a JSON body [`HandlerReceipt`], read whatever the HTTP status (`2xx` for
//! applied). A command handler gets the same body on stdin (and the signature header value in
//! the environment variable `SYNAPSOR_SIGNATURE`) and writes the receipt on stdout.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const REQUEST_SCHEMA: &str = "synapsor.handler-request.v1";
pub const RECEIPT_SCHEMA: &str = "synapsor.handler-receipt.v1";
pub const SIGNATURE_HEADER: &str = "X-Synapsor-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
pub const PROPOSAL_HEADER: &str = "X-Synapsor-Proposal-Id";
pub const DEFAULT_SKEW_SECS: u64 = 300;

/// What the runner asks the handler to do: apply exactly this change, or refuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlerRequest {
    /// Always `synapsor.handler-request.v1`.
    #[schemars(extend("const" = REQUEST_SCHEMA))]
    pub schema_version: String,
    /// The approved proposal's id.
    pub proposal_id: String,
    /// Stable for the proposal: the handler must apply at most once per key.
    pub idempotency_key: String,
    /// Unix seconds; equal to the `t=` of the signature.
    #[schemars(range(min = 0))]
    pub issued_at: i64,
    /// When true, check everything and report what would happen, but write nothing.
    pub dry_run: bool,
    /// Executor name from the config.
    pub executor: String,
    /// The capability name.
    pub action: String,
    /// Change-set digest the human approved (`sha256:...`).
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: String,
    pub tenant: TenantGuard,
    /// Who (which agent or user) proposed the change.
    pub principal: String,
    pub target: Target,
    /// Columns the handler may change; every `patch` key is one of them.
    pub allowed_columns: Vec<String>,
    /// The row as the agent saw it (reviewed columns only).
    pub before: Map<String, Value>,
    /// The exact new values.
    pub patch: Map<String, Value>,
    /// `before` with `patch` applied.
    pub after: Map<String, Value>,
    /// The handler must refuse (status `conflict`) when the row's version differs.
    pub expected_version: ColumnValue,
    /// Who approved, and when (RFC 3339).
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantGuard {
    /// The tenant column, or `null` for single-tenant development targets.
    pub column: Option<String>,
    /// The trusted tenant id the proposal was made in.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Source name from the config.
    pub source: String,
    pub schema: String,
    pub table: String,
    /// The one row to change.
    pub primary_key: ColumnValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnValue {
    /// A column name.
    pub column: String,
    /// Its value as read from the source (string, number, ...).
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver's identity as the runner verified it.
    pub approver: String,
    /// RFC 3339 UTC.
    pub approved_at: String,
}

/// What the handler did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlerReceipt {
    /// Always `synapsor.handler-receipt.v1`.
    #[schemars(extend("const" = RECEIPT_SCHEMA))]
    pub schema_version: String,
    pub status: ReceiptStatus,
    /// Rows written: 1 when applied (0 for a dry run), 0 otherwise.
    pub rows_affected: u32,
    /// A stable UPPER_SNAKE code when not applied (e.g. `VERSION_CONFLICT`, `ROW_NOT_FOUND`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z][A-Z0-9_]*$"))]
    pub error_code: Option<String>,
    /// Optional short human message (no secrets, no driver text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Optional new value of the version column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The change was written now.
    Applied,
    /// The idempotency key was applied before; nothing was written now.
    AlreadyApplied,
    /// The row moved (gone, other tenant, new version); nothing was written. Final.
    Conflict,
    /// The handler refused or could not write; nothing was written.
    Failed,
}
