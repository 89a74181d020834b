//! Change sets: the exact, immutable description of a proposed change, and its digest.
//!
//! The digest covers everything that decides what a writeback would do (capability, tenant,
//! principal, target row, before, patch, after, guards, executor, approvals needed) and nothing
//! that varies between identical calls (ids, timestamps, evidence handles). So an identical call
//! on an unchanged row yields the same digest, and the runner returns the pending proposal instead
//! of failing (the original's hash included `created_at`, pitfall 7). An approval binds to the
//! digest; the ledger re-checks it on every read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::capability::{BuiltPatch, Capability, TrustedContext, VerifiedIdentity};
use crate::config::{Engine, Mode};
use crate::digest::{canonical_numbers, digest_value};

pub const CHANGE_SET_SCHEMA: &str = "synapsor.change-set.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub schema_version: String,
    pub proposal_id: String,
    /// `review_required` or `shadow` (shadow proposals are never applied).
    pub mode: String,
    /// The capability name.
    pub action: String,
    pub principal: Principal,
    pub scope: Scope,
    pub source: SourceRef,
    pub before: Map<String, Value>,
    pub patch: Map<String, Value>,
    pub after: Map<String, Value>,
    pub guards: Guards,
    pub writeback: Writeback,
    pub approval: ApprovalRequirement,
    pub evidence: EvidenceRef,
    pub created_at: String,
    /// `sha256:<hex>` of [`ChangeSet::digest_input`].
    pub digest: String,
    /// The verified token identity of the caller that proposed it (issuer, subject, token id),
    /// for `jwt` contexts. A record of who asked, outside the digest: the same change asked for
    /// again with a fresh token is the same proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<VerifiedIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub tenant_id: String,
    pub business_object: String,
    pub object_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    pub source_id: String,
    pub engine: String,
    pub schema: String,
    pub table: String,
    pub primary_key: ColumnValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnValue {
    pub column: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guards {
    /// `None` only for `single_tenant_dev` targets.
    pub tenant: Option<ColumnValue>,
    /// The row owner's column and the trusted principal, when the capability has a
    /// `principal_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<ColumnValue>,
    pub allowed_columns: Vec<String>,
    pub expected_version: ColumnValue,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub numeric_bounds: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub transition_guards: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Writeback {
    pub executor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequirement {
    pub required_approvals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub bundle_id: String,
    pub query_fingerprint: String,
}

/// Everything needed to build a change set.
#[derive(Debug)]
pub struct ChangeSetInput<'a> {
    pub capability: &'a Capability,
    pub mode: Mode,
    pub context: &'a TrustedContext,
    pub object_id: &'a str,
    pub built: BuiltPatch,
    pub evidence: EvidenceRef,
    pub proposal_id: String,
    pub created_at: String,
}

impl ChangeSet {
    pub fn build(input: ChangeSetInput<'_>) -> ChangeSet {
        let cap = input.capability;
        let pk_value = input
            .built
            .before
            .get(cap.read.primary_key.as_str())
            .cloned()
            .unwrap_or_else(|| Value::String(input.object_id.to_owned()));
        // A scoping column and the value the row holds there (the trusted value when the read
        // did not return the column).
        let scoped = |key: &str, trusted: &str| ColumnValue {
            column: key.to_owned(),
            value: input
                .built
                .before
                .get(key)
                .cloned()
                .unwrap_or_else(|| Value::String(trusted.to_owned())),
        };
        let tenant = cap
            .read
            .tenant_key
            .as_ref()
            .map(|k| scoped(k.as_str(), &input.context.tenant_id));
        let principal = cap
            .read
            .principal_key
            .as_ref()
            .map(|k| scoped(k.as_str(), &input.context.principal));
        let mut cs = ChangeSet {
            schema_version: CHANGE_SET_SCHEMA.into(),
            proposal_id: input.proposal_id,
            mode: if input.mode == Mode::Shadow {
                "shadow"
            } else {
                "review_required"
            }
            .into(),
            action: cap.name.clone(),
            principal: Principal {
                id: input.context.principal.clone(),
                source: input.context.provenance.as_str().into(),
            },
            scope: Scope {
                tenant_id: input.context.tenant_id.clone(),
                business_object: cap.read.table.as_str().into(),
                object_id: input.object_id.into(),
            },
            source: SourceRef {
                source_id: cap.source.clone(),
                engine: engine_kind(cap.engine).into(),
                schema: cap.read.schema.as_str().into(),
                table: cap.read.table.as_str().into(),
                primary_key: ColumnValue {
                    column: cap.read.primary_key.as_str().into(),
                    value: pk_value,
                },
            },
            before: input.built.before,
            patch: input.built.patch,
            after: input.built.after,
            guards: Guards {
                tenant,
                principal,
                allowed_columns: cap.allowed_columns.clone(),
                expected_version: ColumnValue {
                    column: input.built.expected_version.0,
                    value: input.built.expected_version.1,
                },
                numeric_bounds: cap
                    .numeric_bounds
                    .iter()
                    .map(|(k, b)| (k.clone(), json!({"minimum": b.minimum, "maximum": b.maximum})))
                    .collect(),
                transition_guards: cap
                    .transition_guards
                    .iter()
                    .map(|(k, g)| (k.clone(), json!({"from_column": g.from_column, "allowed": g.allowed})))
                    .collect(),
            },
            writeback: Writeback {
                executor: cap.executor.clone(),
            },
            approval: ApprovalRequirement {
                required_approvals: cap.required_approvals,
                required_role: cap.required_role.clone(),
            },
            evidence: input.evidence,
            created_at: input.created_at,
            digest: String::new(),
            identity: input.context.identity.clone(),
        };
        cs.canonicalize_numbers();
        cs.digest = cs.compute_digest();
        cs
    }

    /// Integral floats as integers everywhere the digest looks ([`canonical_numbers`]), so the
    /// digest survives a round trip through stores that drop the difference.
    pub fn canonicalize_numbers(&mut self) {
        let maps = [
            &mut self.before,
            &mut self.patch,
            &mut self.after,
            &mut self.guards.numeric_bounds,
            &mut self.guards.transition_guards,
        ];
        for map in maps {
            map.values_mut().for_each(canonical_numbers);
        }
        canonical_numbers(&mut self.source.primary_key.value);
        canonical_numbers(&mut self.guards.expected_version.value);
        for g in [&mut self.guards.tenant, &mut self.guards.principal]
            .into_iter()
            .flatten()
        {
            canonical_numbers(&mut g.value);
        }
    }

    /// The part of the change set the digest covers.
    pub fn digest_input(&self) -> Value {
        json!({
            "schema_version": self.schema_version,
            "mode": self.mode,
            "action": self.action,
            "principal": self.principal,
            "scope": self.scope,
            "source": self.source,
            "before": self.before,
            "patch": self.patch,
            "after": self.after,
            "guards": self.guards,
            "writeback": self.writeback,
            "approval": self.approval,
        })
    }

    pub fn compute_digest(&self) -> String {
        digest_value(&self.digest_input())
    }

    /// True when the stored digest still matches the content.
    pub fn digest_is_intact(&self) -> bool {
        self.digest == self.compute_digest()
    }

    /// `{column: {before, after}}` for the patched columns.
    pub fn diff(&self) -> Map<String, Value> {
        self.patch
            .iter()
            .map(|(col, after)| {
                let before = self.before.get(col).cloned().unwrap_or(Value::Null);
                (col.clone(), json!({"before": before, "after": after}))
            })
            .collect()
    }
}

fn engine_kind(e: Engine) -> &'static str {
    match e {
        Engine::Postgres => "external_postgres",
        Engine::Mysql => "external_mysql",
        Engine::Sqlite => "external_sqlite",
    }
}
