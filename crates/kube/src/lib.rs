//! The `Proposal` custom resource of Synapsor Runner's Kubernetes mode.
//!
//! What it is: the Rust types the CRD `proposals.runner.synapsor.ai` (`v1alpha1`) is generated
//! from ([`crd_yaml`], committed under `crds/`), the annotation names of the approval protocol,
//! and the lossless mapping between a [`ProposalSpec`] and the core [`ChangeSet`] whose digest
//! an approval binds to. The sidecar creates `Proposal`s from change sets; the controller turns
//! them back into change sets, re-checks the digest and applies them.
//!
//! Beside the types, two modules serve the reviewer's side: [`review`] turns a `Proposal` into the
//! shared review model and builds the patch of a decision, and [`reviewer`] connects with a
//! person's own kubeconfig, as kubectl does. `kubectl synapsor` and `synapsor-runner ui
//! --kubernetes` both use them.
//!
//! What it is not: no reconcile and no admission decisions (those live in the sidecar and
//! `synapsor-controller`). The spec is immutable after create, but a CRD cannot say
//! so on Kubernetes 1.20 (CEL rules are dropped there): the controller's admission webhook
//! enforces it.

pub mod review;
pub mod reviewer;

use kube::CustomResource;
use kube::core::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use synapsor_core::ProposalState;
use synapsor_core::capability::VerifiedIdentity;
use synapsor_core::changeset::{self, ChangeSet};

/// The API group of every Synapsor resource and the prefix of its annotations.
pub const GROUP: &str = "runner.synapsor.ai";
pub const VERSION: &str = "v1alpha1";

/// Set by a human to approve: `kubectl annotate proposal/<name> runner.synapsor.ai/approve=true`.
/// The admission webhook consumes it (removes it) and records a verified approval instead.
pub const ANNOTATION_APPROVE: &str = "runner.synapsor.ai/approve";
/// Set by a human to reject, the value being the reason. Consumed by the webhook like approve.
pub const ANNOTATION_REJECT: &str = "runner.synapsor.ai/reject";
/// Written only by the webhook: the JSON list of verified, signed approvals.
pub const ANNOTATION_APPROVALS: &str = "runner.synapsor.ai/approvals";
/// Written only by the webhook: the verified, signed rejection.
pub const ANNOTATION_REJECTION: &str = "runner.synapsor.ai/rejection";
/// Written only by the webhook on create: the Kubernetes user that created the proposal.
pub const ANNOTATION_PROPOSER: &str = "runner.synapsor.ai/proposer";
/// The annotations only the webhook may write.
pub const WEBHOOK_OWNED: [&str; 3] = [ANNOTATION_APPROVALS, ANNOTATION_REJECTION, ANNOTATION_PROPOSER];
/// Label holding the capability name (for `kubectl get proposals -l`).
pub const LABEL_CAPABILITY: &str = "runner.synapsor.ai/capability";
/// The Lease the controller replicas elect their leader with.
pub const DEFAULT_LEASE_NAME: &str = "synapsor-controller";
/// Label every sidecar-created proposal carries; the sidecar watches by it.
pub const LABEL_MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "synapsor-runner");

/// The ledger's `managed_by` of a proposal object: `kubernetes:<namespace>/Proposal/<name>`.
pub fn managed_by(namespace: &str, name: &str) -> String {
    format!("kubernetes:{namespace}/Proposal/{name}")
}

/// A proposed change to one row, exactly as reviewed: created by the sidecar, immutable after
/// create, approved with annotations, applied by the controller.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "runner.synapsor.ai",
    version = "v1alpha1",
    kind = "Proposal",
    plural = "proposals",
    singular = "proposal",
    shortname = "sprop",
    category = "synapsor",
    namespaced,
    status = "ProposalStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Capability","type":"string","jsonPath":".spec.capability"}"#,
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"Approvals","type":"string","jsonPath":".status.approvalsSummary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProposalSpec {
    /// The runner's proposal id (`wrp_...`), also the ledger key.
    pub proposal_id: String,
    /// The capability (tool) the change was proposed through.
    pub capability: String,
    /// `review_required`, or `shadow` (recorded for review, never applied).
    pub mode: String,
    /// The trusted tenant the change is scoped to.
    pub tenant: String,
    /// Who proposed it (the agent principal), and where that identity came from.
    pub principal: PrincipalRef,
    /// The one row the change targets.
    pub target: Target,
    /// The row's values when proposed (the visible and guarded columns).
    #[schemars(schema_with = "free_form_object")]
    pub before: Map<String, Value>,
    /// The exact new values.
    #[schemars(schema_with = "free_form_object")]
    pub patch: Map<String, Value>,
    /// `before` with `patch` applied.
    #[schemars(schema_with = "free_form_object")]
    pub after: Map<String, Value>,
    /// The version column and the value it must still hold when the change is applied.
    pub expected_version: ColumnValue,
    /// The guards the executor re-checks: tenant column, allowed columns, bounds, transitions.
    pub guards: GuardsSpec,
    /// `sql_update` or the name of a configured app handler executor.
    pub executor: String,
    /// Distinct verified approvals needed before the controller applies.
    pub required_approvals: u32,
    /// Recorded from the config; approvers are authorized by the RBAC verb `approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    /// The evidence bundle the proposal was built from (in the sidecar's ledger).
    pub evidence: EvidenceRef,
    /// That evidence bundle itself (what the agent read: the visible row, and the diff), so
    /// that it outlives the sidecar's pod and its ledger: the controller and a restarted
    /// sidecar record it again from here. Not covered by the digest (the diff in it is the
    /// change set's own); like the rest of the spec it cannot change after create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object_opt")]
    pub evidence_bundle: Option<Value>,
    /// Change-set schema version (`synapsor.change-set.v1`).
    pub schema_version: String,
    /// RFC 3339 UTC time the runner built the change set.
    pub created_at: String,
    /// RFC 3339 UTC time after which the proposal can no longer be approved or applied.
    pub expires_at: String,
    /// `sha256:<hex>` of the change set; approvals bind to it.
    pub digest: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    pub id: String,
    /// Where the runner took the principal from (`environment`, `jwt`, ...), never from the model.
    pub source: String,
    /// For a `jwt` context: the verified token's issuer, subject and token id. Never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifiedIdentityRef>,
}

/// Who a verified token said the proposer was.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedIdentityRef {
    pub issuer: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The config's source name.
    pub source_id: String,
    /// `external_postgres`, `external_mysql` or `external_sqlite`.
    pub engine: String,
    pub schema: String,
    pub table: String,
    pub business_object: String,
    /// The object id the agent named.
    pub object_id: String,
    pub primary_key: ColumnValue,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnValue {
    pub column: String,
    #[schemars(schema_with = "any_value")]
    pub value: Value,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardsSpec {
    /// The tenant column and value the row must still have; absent only for single-tenant dev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<ColumnValue>,
    /// The owner column and the proposing principal, for capabilities with a `principal_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<ColumnValue>,
    pub allowed_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub numeric_bounds: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub transition_guards: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRef {
    pub bundle_id: String,
    pub query_fingerprint: String,
}

/// Where a proposal is in its life. Only the controller writes it (status subresource).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Waiting for verified approvals.
    Pending,
    /// Quorum reached; the controller is about to apply.
    Approved,
    /// Written before any side effect; an apply is running or was interrupted.
    Applying,
    Applied,
    /// The row changed after the proposal (version, tenant or guard): nothing was written.
    Conflict,
    /// The apply could not run (setup, executor or validation failure): nothing was written.
    /// The controller tries again (`status.attempts`, `status.nextAttemptAt`) up to 5 times.
    Failed,
    Rejected,
    /// Not approved and applied before `spec.expiresAt`.
    Expired,
}

impl Phase {
    /// Every phase, in the order of a proposal's life.
    pub const ALL: [Phase; 8] = [
        Phase::Pending,
        Phase::Approved,
        Phase::Applying,
        Phase::Applied,
        Phase::Conflict,
        Phase::Failed,
        Phase::Rejected,
        Phase::Expired,
    ];

    /// The ledger state a mirror of a proposal in this phase has.
    pub fn ledger_state(self) -> ProposalState {
        match self {
            Phase::Pending => ProposalState::PendingReview,
            Phase::Approved => ProposalState::Approved,
            Phase::Applying => ProposalState::Applying,
            Phase::Applied => ProposalState::Applied,
            Phase::Conflict => ProposalState::Conflict,
            Phase::Failed => ProposalState::Failed,
            Phase::Rejected => ProposalState::Rejected,
            Phase::Expired => ProposalState::Expired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Approved => "Approved",
            Phase::Applying => "Applying",
            Phase::Applied => "Applied",
            Phase::Conflict => "Conflict",
            Phase::Failed => "Failed",
            Phase::Rejected => "Rejected",
            Phase::Expired => "Expired",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposalStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Human-readable reason for the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The verified approvals the controller counted (from the webhook's signed records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalStatus>,
    /// `<verified>/<required>`, for `kubectl get proposals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<RejectionStatus>,
    /// The executor's receipt (status, rows affected, checks, safe error code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object_opt")]
    pub receipt: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Applies that ended `Failed` (nothing written); the controller retries up to 5.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// RFC 3339 UTC time of the next attempt after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStatus {
    /// The Kubernetes user the webhook authenticated and authorized (verb `approve`).
    pub user: String,
    /// RFC 3339 UTC time the webhook admitted the approval.
    pub at: String,
    /// The webhook's signature over the record checked out.
    pub verified: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectionStatus {
    pub user: String,
    pub at: String,
    pub reason: String,
}

/// A status condition (the usual Kubernetes shape).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Approved`, `Applied` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn free_form_object_opt(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
}

fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}

/// The Kubernetes object name of a runner proposal id: `wrp_ab12` → `wrp-ab12` (names are DNS
/// labels: lowercase alphanumerics and `-`). Ids only ever hold `[a-z0-9_-]`.
pub fn object_name(proposal_id: &str) -> String {
    proposal_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl ProposalSpec {
    /// The spec of a change set, expiring at `expires_at` (RFC 3339 UTC).
    pub fn from_change_set(cs: &ChangeSet, expires_at: String) -> ProposalSpec {
        let cv = |c: &changeset::ColumnValue| ColumnValue {
            column: c.column.clone(),
            value: c.value.clone(),
        };
        ProposalSpec {
            proposal_id: cs.proposal_id.clone(),
            capability: cs.action.clone(),
            mode: cs.mode.clone(),
            tenant: cs.scope.tenant_id.clone(),
            principal: PrincipalRef {
                id: cs.principal.id.clone(),
                source: cs.principal.source.clone(),
                verified: cs.identity.as_ref().map(|i| VerifiedIdentityRef {
                    issuer: i.issuer.clone(),
                    subject: i.subject.clone(),
                    jti: i.jti.clone(),
                }),
            },
            target: Target {
                source_id: cs.source.source_id.clone(),
                engine: cs.source.engine.clone(),
                schema: cs.source.schema.clone(),
                table: cs.source.table.clone(),
                business_object: cs.scope.business_object.clone(),
                object_id: cs.scope.object_id.clone(),
                primary_key: cv(&cs.source.primary_key),
            },
            before: cs.before.clone(),
            patch: cs.patch.clone(),
            after: cs.after.clone(),
            expected_version: cv(&cs.guards.expected_version),
            guards: GuardsSpec {
                tenant: cs.guards.tenant.as_ref().map(cv),
                principal: cs.guards.principal.as_ref().map(cv),
                allowed_columns: cs.guards.allowed_columns.clone(),
                numeric_bounds: cs.guards.numeric_bounds.clone(),
                transition_guards: cs.guards.transition_guards.clone(),
            },
            executor: cs.writeback.executor.clone(),
            required_approvals: cs.approval.required_approvals,
            required_role: cs.approval.required_role.clone(),
            evidence: EvidenceRef {
                bundle_id: cs.evidence.bundle_id.clone(),
                query_fingerprint: cs.evidence.query_fingerprint.clone(),
            },
            evidence_bundle: None,
            schema_version: cs.schema_version.clone(),
            created_at: cs.created_at.clone(),
            expires_at,
            digest: cs.digest.clone(),
        }
    }

    /// The change set this spec describes, with the digest the spec *claims*: check it with
    /// [`ChangeSet::digest_is_intact`] before trusting anything in it.
    pub fn to_change_set(&self) -> ChangeSet {
        let cv = |c: &ColumnValue| changeset::ColumnValue {
            column: c.column.clone(),
            value: c.value.clone(),
        };
        ChangeSet {
            schema_version: self.schema_version.clone(),
            proposal_id: self.proposal_id.clone(),
            mode: self.mode.clone(),
            action: self.capability.clone(),
            principal: changeset::Principal {
                id: self.principal.id.clone(),
                source: self.principal.source.clone(),
            },
            scope: changeset::Scope {
                tenant_id: self.tenant.clone(),
                business_object: self.target.business_object.clone(),
                object_id: self.target.object_id.clone(),
            },
            source: changeset::SourceRef {
                source_id: self.target.source_id.clone(),
                engine: self.target.engine.clone(),
                schema: self.target.schema.clone(),
                table: self.target.table.clone(),
                primary_key: cv(&self.target.primary_key),
            },
            before: self.before.clone(),
            patch: self.patch.clone(),
            after: self.after.clone(),
            guards: changeset::Guards {
                tenant: self.guards.tenant.as_ref().map(cv),
                principal: self.guards.principal.as_ref().map(cv),
                allowed_columns: self.guards.allowed_columns.clone(),
                expected_version: cv(&self.expected_version),
                numeric_bounds: self.guards.numeric_bounds.clone(),
                transition_guards: self.guards.transition_guards.clone(),
            },
            writeback: changeset::Writeback {
                executor: self.executor.clone(),
            },
            approval: changeset::ApprovalRequirement {
                required_approvals: self.required_approvals,
                required_role: self.required_role.clone(),
            },
            evidence: changeset::EvidenceRef {
                bundle_id: self.evidence.bundle_id.clone(),
                query_fingerprint: self.evidence.query_fingerprint.clone(),
            },
            created_at: self.created_at.clone(),
            digest: self.digest.clone(),
            identity: self.principal.verified.as_ref().map(|v| VerifiedIdentity {
                issuer: v.issuer.clone(),
                subject: v.subject.clone(),
                jti: v.jti.clone(),
            }),
        }
    }
}

/// The issuer recorded for decisions the Kubernetes API server authenticated (the admission
/// webhook stamps the user it saw).
pub const KUBERNETES_ISSUER: &str = "kubernetes";

/// The verified identity of a Kubernetes user who decided a proposal.
pub fn kubernetes_identity(user: &str) -> VerifiedIdentity {
    VerifiedIdentity {
        issuer: KUBERNETES_ISSUER.to_owned(),
        subject: user.to_owned(),
        jti: None,
    }
}

/// The CRD as YAML, exactly as committed in `crds/proposals.runner.synapsor.ai.yaml`.
pub fn crd_yaml() -> String {
    let crd = Proposal::crd();
    let body = serde_yaml::to_string(&crd).unwrap_or_else(|e| format!("# CRD could not be encoded: {e}\n"));
    format!("# Generated from the Rust types in crates/kube (synapsor-controller crd). Do not edit.\n{body}")
}

/// The CRD's file name under `crds/` (and the chart's `crds/`).
pub const CRD_FILE: &str = "proposals.runner.synapsor.ai.yaml";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ChangeSet {
        let mut cs: ChangeSet = serde_json::from_value(json!({
            "schema_version": "synapsor.change-set.v1",
            "proposal_id": "wrp_0123456789abcdef0123",
            "mode": "review_required",
            "action": "billing.propose_invoice_discount",
            "principal": {"id": "agent-7", "source": "env"},
            "scope": {"tenant_id": "acme", "business_object": "invoices", "object_id": "inv_1"},
            "source": {"source_id": "billing", "engine": "external_postgres", "schema": "public",
                        "table": "invoices", "primary_key": {"column": "id", "value": "inv_1"}},
            "before": {"id": "inv_1", "discount_cents": 0, "version": 3},
            "patch": {"discount_cents": 500},
            "after": {"id": "inv_1", "discount_cents": 500, "version": 3},
            "guards": {"tenant": {"column": "tenant_id", "value": "acme"}, "allowed_columns": ["discount_cents"],
                        "expected_version": {"column": "version", "value": 3},
                        "numeric_bounds": {"discount_cents": {"minimum": 0, "maximum": 1000}}},
            "writeback": {"executor": "sql_update"},
            "approval": {"required_approvals": 2},
            "evidence": {"bundle_id": "ev_1", "query_fingerprint": "fp"},
            "created_at": "2026-11-25T10:00:00Z",
            "digest": ""
        }))
        .unwrap();
        cs.digest = cs.compute_digest();
        cs
    }

    #[test]
    fn spec_round_trips_to_the_same_change_set_and_digest() {
        let cs = sample();
        let spec = ProposalSpec::from_change_set(&cs, "2026-11-26T10:00:00Z".into());
        // Through JSON, as the API server stores it.
        let stored: ProposalSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        let back = stored.to_change_set();
        assert_eq!(back, cs);
        assert!(back.digest_is_intact());
    }

    /// The API server re-encodes numbers (`0.0` is stored as `0`); change sets are built with
    /// integral numbers, so their digest survives that.
    #[test]
    fn built_change_sets_survive_the_api_servers_number_encoding() {
        let mut cs = sample();
        cs.guards
            .numeric_bounds
            .insert("discount_cents".into(), json!({"minimum": 0.0, "maximum": 1000.0}));
        cs.digest = cs.compute_digest();
        let spec = ProposalSpec::from_change_set(&cs, "2026-11-26T10:00:00Z".into());
        let text = serde_json::to_string(&spec).unwrap();
        assert!(
            text.contains("1000.0"),
            "this fixture keeps a float, as a stale builder would"
        );
        let mut stored: Value = serde_json::to_value(&spec).unwrap();
        synapsor_core::digest::canonical_numbers(&mut stored);
        let stored: ProposalSpec = serde_json::from_value(stored).unwrap();
        assert!(
            !stored.to_change_set().digest_is_intact(),
            "a float digest breaks on the API server"
        );

        // What ChangeSet::build does: integral numbers before the digest.
        cs.canonicalize_numbers();
        cs.digest = cs.compute_digest();
        let mut stored =
            serde_json::to_value(ProposalSpec::from_change_set(&cs, "2026-11-26T10:00:00Z".into())).unwrap();
        synapsor_core::digest::canonical_numbers(&mut stored);
        let stored: ProposalSpec = serde_json::from_value(stored).unwrap();
        assert!(stored.to_change_set().digest_is_intact());
    }

    #[test]
    fn an_edited_spec_no_longer_matches_its_digest() {
        let mut spec = ProposalSpec::from_change_set(&sample(), "2026-11-26T10:00:00Z".into());
        spec.patch.insert("discount_cents".into(), json!(900));
        assert!(!spec.to_change_set().digest_is_intact());
        let mut spec = ProposalSpec::from_change_set(&sample(), "2026-11-26T10:00:00Z".into());
        spec.tenant = "globex".into();
        assert!(!spec.to_change_set().digest_is_intact());
    }

    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(object_name("wrp_AB12-2"), "wrp-ab12-2");
    }

    #[test]
    fn crd_has_printer_columns_and_status() {
        let y = crd_yaml();
        for needle in [
            "name: proposals.runner.synapsor.ai",
            "jsonPath: .status.phase",
            "jsonPath: .status.approvalsSummary",
            "status: {}",
            "x-kubernetes-preserve-unknown-fields: true",
        ] {
            assert!(y.contains(needle), "missing {needle}:\n{y}");
        }
    }
}
