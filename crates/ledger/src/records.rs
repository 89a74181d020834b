//! Rows the ledger stores and returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synapsor_core::capability::VerifiedIdentity;
use synapsor_core::{ChangeSet, ProposalState};

/// Evidence of one scoped read: what was read, for whom, and the visible row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    pub evidence_bundle_id: String,
    /// Set when the read belongs to a proposal.
    pub proposal_id: Option<String>,
    pub capability: String,
    pub tenant_id: String,
    pub principal: String,
    pub source_id: String,
    /// `schema.table`.
    pub target: String,
    pub object_id: String,
    pub query_fingerprint: String,
    /// Items: `{kind: "external_row", ...}`, `{kind: "proposal_diff", ...}`.
    pub items: Vec<Value>,
    pub created_at: String,
}

/// One executed query (no values, only its shape and outcome).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryAuditRecord {
    pub evidence_bundle_id: Option<String>,
    pub proposal_id: Option<String>,
    pub capability: String,
    pub tenant_id: String,
    pub principal: String,
    pub source_id: String,
    pub query_fingerprint: String,
    pub statement_template: String,
    pub row_count: u32,
    pub duration_ms: f64,
    /// `ok` or a runtime error code.
    pub outcome: String,
    pub created_at: String,
}

/// A stored proposal with its current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub change_set: ChangeSet,
    pub state: ProposalState,
    pub created_at: String,
    pub updated_at: String,
    pub approvals: Vec<ApprovalRecord>,
    /// Set when the proposal was published to another store of record (for example
    /// `kubernetes:<namespace>/Proposal/<name>`); the ledger row is then a mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// What `record_proposal` did.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposalInsert {
    Created(Box<ProposalRecord>),
    /// An identical pending proposal (same digest) existed; it is returned unchanged.
    Existing(Box<ProposalRecord>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub approver: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The change-set digest the decision was bound to.
    pub digest: String,
    pub reason: Option<String>,
    pub created_at: String,
    /// Who a verified token (an operator token, or the Kubernetes API server) said the approver
    /// was; `null` when the name was only given, not verified.
    #[serde(default)]
    pub verified_identity: Option<VerifiedIdentity>,
}

/// Who decides a proposal: a name, and the verified identity behind it when there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decider<'a> {
    pub name: &'a str,
    pub verified: Option<&'a VerifiedIdentity>,
}

impl<'a> Decider<'a> {
    /// A name nothing verified (`--actor`, `$USER`): recorded with `verified_identity: null`.
    pub fn unverified(name: &'a str) -> Self {
        Decider { name, verified: None }
    }
}

/// An append-only lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: i64,
    pub proposal_id: String,
    pub kind: String,
    pub actor: String,
    pub payload: Value,
    pub created_at: String,
}

/// A writeback receipt (written by apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub proposal_id: String,
    pub idempotency_key: String,
    /// `applied`, `already_applied`, `conflict` or `failed`.
    pub status: String,
    pub rows_affected: u32,
    pub safe_error_code: Option<String>,
    pub receipt: Value,
    pub created_at: String,
}

/// Filters for `list_proposals`; all optional, AND-ed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposalFilter {
    pub state: Option<ProposalState>,
    pub tenant_id: Option<String>,
    pub capability: Option<String>,
    pub limit: Option<u32>,
}

/// A short listing row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalSummary {
    pub proposal_id: String,
    pub state: ProposalState,
    pub capability: String,
    pub tenant_id: String,
    pub principal: String,
    pub object: String,
    pub digest: String,
    pub created_at: String,
}

/// An evidence bundle with its query audit rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceBundle {
    pub evidence: EvidenceRecord,
    pub query_audit: Vec<QueryAuditRecord>,
}

/// Everything the ledger knows about one proposal, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    pub replay_id: String,
    pub proposal: ProposalRecord,
    pub events: Vec<EventRecord>,
    pub evidence: Vec<EvidenceBundle>,
    pub receipts: Vec<ReceiptRecord>,
    /// True when the stored digest matched the change set on read.
    pub digest_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    pub path: String,
    pub schema_version: i64,
    pub proposals: i64,
    pub proposals_by_state: std::collections::BTreeMap<String, i64>,
    pub proposal_events: i64,
    pub approvals: i64,
    pub evidence_bundles: i64,
    pub query_audit: i64,
    pub receipts: i64,
    pub page_count: i64,
    pub page_size: i64,
    pub approx_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneReport {
    pub cutoff: String,
    pub dry_run: bool,
    pub proposals: i64,
    pub proposal_events: i64,
    pub approvals: i64,
    pub evidence_bundles: i64,
    pub query_audit: i64,
    pub receipts: i64,
}
