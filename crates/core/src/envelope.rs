//! Result envelopes returned by tools: v1 (legacy shape) and v2 (the default for new configs).
//!
//! v2 rules: callers branch on `ok`; `summary` is always present; on success exactly one of
//! `data`/`proposal` is set, on failure neither; `source_database_changed` is always present and
//! false (a tool call never writes the source); errors carry only a [`SafeCode`] and its fixed
//! message, and are flagged as tool errors (MCP `isError`).
//!
//! Neither version shows the trusted tenant or principal: the model learns where its context came
//! from (`provenance`), never whose it is (the original put both in every envelope).

use serde_json::{Map, Value, json};

use crate::capability::TrustedContext;
use crate::changeset::ChangeSet;
use crate::config::{CapabilityKind, ResultFormat};
use crate::error::{SafeCode, ToolError};

pub const EVIDENCE_NOTE: &str = "audit/replay handle; you do not need to act on it during this turn";
pub const PROPOSAL_NEXT: &str = "A human must approve outside this tool surface; nothing is committed yet.";

/// What a tool call produced, before it is shaped into an envelope.
#[derive(Debug, Clone)]
pub enum ToolOutcome {
    Read {
        capability: String,
        table: String,
        object_id: String,
        data: Map<String, Value>,
        context: TrustedContext,
        evidence_bundle_id: String,
    },
    Proposal {
        change_set: Box<ChangeSet>,
        /// The identical pending proposal already existed and is returned again.
        existing: bool,
        context: TrustedContext,
        evidence_bundle_id: String,
        /// `direct_update` or `app_handler`.
        writeback_mode: &'static str,
    },
    Error {
        capability: String,
        kind: Option<CapabilityKind>,
        error: ToolError,
        context: Option<TrustedContext>,
    },
}

impl ToolOutcome {
    pub fn is_error(&self) -> bool {
        matches!(self, ToolOutcome::Error { .. })
    }

    /// The envelope, and whether it is a tool error.
    pub fn render(&self, format: ResultFormat) -> (Value, bool) {
        let v = match format {
            ResultFormat::V1 => self.render_v1(),
            ResultFormat::V2 => self.render_v2(),
        };
        (v, self.is_error())
    }

    fn render_v2(&self) -> Value {
        match self {
            ToolOutcome::Read {
                capability,
                table,
                object_id,
                data,
                context,
                evidence_bundle_id,
            } => json!({
                "ok": true,
                "summary": format!("Read {table} {object_id} through {capability}. Source database changed: no."),
                "action": capability,
                "kind": "read",
                "data": data,
                "proposal": null,
                "error": null,
                "evidence": {"bundle_id": evidence_bundle_id, "note": EVIDENCE_NOTE},
                "source_database_changed": false,
                "_meta": meta(capability, Some(context)),
            }),
            ToolOutcome::Proposal {
                change_set: cs,
                existing,
                context,
                evidence_bundle_id,
                writeback_mode,
            } => {
                let verb = if *existing {
                    "Returned the pending proposal"
                } else {
                    "Created proposal"
                };
                json!({
                    "ok": true,
                    "summary": format!(
                        "{verb} {} for {} {}. Source database changed: no.",
                        cs.proposal_id, cs.scope.business_object, cs.scope.object_id
                    ),
                    "action": cs.action,
                    "kind": "proposal",
                    "data": null,
                    "proposal": {
                        "id": cs.proposal_id,
                        "state": if cs.mode == "shadow" { "shadow_proposal_created" } else { "review_required" },
                        "existing": existing,
                        "target": format!("{}:{}", cs.scope.business_object, cs.scope.object_id),
                        "diff": cs.diff(),
                        "digest": cs.digest,
                        "approval_required": true,
                        "writeback": {"mode": writeback_mode, "applied": false},
                        "next": PROPOSAL_NEXT,
                    },
                    "error": null,
                    "evidence": {"bundle_id": evidence_bundle_id, "note": EVIDENCE_NOTE},
                    "source_database_changed": false,
                    "_meta": meta(&cs.action, Some(context)),
                })
            }
            ToolOutcome::Error {
                capability,
                kind,
                error,
                context,
            } => {
                let safe: SafeCode = error.code.safe_code();
                let message = error.code.safe_message();
                json!({
                    "ok": false,
                    "summary": format!("{capability} failed: {message}"),
                    "action": capability,
                    "kind": kind.map(CapabilityKind::as_str),
                    "data": null,
                    "proposal": null,
                    "error": match error.retry_after_ms {
                        Some(ms) => json!({"code": safe.as_str(), "message": message, "retryable": true, "retry_after_ms": ms}),
                        None => json!({"code": safe.as_str(), "message": message, "retryable": safe.retryable()}),
                    },
                    "evidence": null,
                    "source_database_changed": false,
                    "_meta": meta(capability, context.as_ref()),
                })
            }
        }
    }

    fn render_v1(&self) -> Value {
        match self {
            ToolOutcome::Read {
                capability,
                table,
                object_id,
                data,
                context,
                evidence_bundle_id,
            } => json!({
                "status": "ok",
                "action": capability,
                "mode": "read",
                "business_object": {"type": table, "id": object_id},
                "data": data,
                "trusted_context": {"provenance": context.provenance.as_str()},
                "evidence_bundle_id": evidence_bundle_id,
                "evidence_resource": format!("synapsor://evidence/{evidence_bundle_id}"),
                "source_database_changed": false,
                "source_database_mutated": false,
            }),
            ToolOutcome::Proposal {
                change_set: cs,
                existing,
                evidence_bundle_id,
                writeback_mode,
                ..
            } => json!({
                "status": if cs.mode == "shadow" { "shadow_proposal_created" } else { "review_required" },
                "action": cs.action,
                "proposal_id": cs.proposal_id,
                "proposal_version": 1,
                "proposal_hash": cs.digest,
                "existing": existing,
                "target": {"type": cs.scope.business_object, "id": cs.scope.object_id},
                "diff": cs.patch.iter().map(|(c, after)| (c.clone(), json!({
                    "before": cs.before.get(c).cloned().unwrap_or(Value::Null),
                    "proposed": after,
                }))).collect::<Map<String, Value>>(),
                "evidence_bundle_id": evidence_bundle_id,
                "evidence_resource": format!("synapsor://evidence/{evidence_bundle_id}"),
                "proposal_resource": format!("synapsor://proposals/{}", cs.proposal_id),
                "replay_resource": format!("synapsor://replay/replay_{}", cs.proposal_id),
                "approval_required": true,
                "writeback": {"status": "not_applied", "mode": writeback_mode, "executor": cs.writeback.executor},
                "source_database_changed": false,
                "source_database_mutated": false,
            }),
            // v1 errors carry the runtime code and the runner's own message; never driver text.
            ToolOutcome::Error { error, .. } => {
                let mut v = json!({
                    "ok": false,
                    "code": error.code.as_str(),
                    "error": error.message,
                });
                if let Some(ms) = error.retry_after_ms {
                    v["retry_after_ms"] = json!(ms);
                }
                v
            }
        }
    }
}

fn meta(capability: &str, ctx: Option<&TrustedContext>) -> Value {
    let mut m = Map::new();
    if let Some(c) = ctx {
        m.insert("provenance".into(), json!(c.provenance.as_str()));
    }
    m.insert("canonical_capability".into(), json!(capability));
    Value::Object(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::capability::Provenance;
    use crate::error::ToolCode;

    fn ctx() -> TrustedContext {
        TrustedContext {
            tenant_id: "acme".into(),
            principal: "agent".into(),
            provenance: Provenance::Environment,
            identity: None,
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("\\PC{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        // The default config, so PROPTEST_CASES sets the count (scripts/reliability.sh).
        #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]

        /// Whatever a row holds (any JSON, any text), both envelope versions serialize to JSON
        /// that reads back the same, keep their fixed fields, and never carry the trusted tenant
        /// or principal, and an error never carries its operator detail.
        #[test]
        fn envelopes_never_panic_and_always_serialize(
            data in proptest::collection::btree_map("\\PC{1,12}", json_value(), 0..6),
            object_id in "\\PC{0,40}",
            detail in "\\PC{0,60}",
        ) {
            let data: Map<String, Value> = data.into_iter().collect();
            let tenant = "tenant-\u{1F512}-acme";
            let principal = "principal-\u{1F511}";
            let context = TrustedContext { tenant_id: tenant.into(), principal: principal.into(), ..ctx() };
            let read = ToolOutcome::Read {
                capability: "billing.inspect_invoice".into(),
                table: "invoices".into(),
                object_id,
                data,
                context: context.clone(),
                evidence_bundle_id: "ev_1".into(),
            };
            let error = ToolOutcome::Error {
                capability: "billing.inspect_invoice".into(),
                kind: Some(CapabilityKind::Read),
                error: ToolError::new(ToolCode::SourceUnavailable, format!("OPERATOR-ONLY {detail}")),
                context: Some(context),
            };
            for outcome in [&read, &error] {
                for format in [ResultFormat::V1, ResultFormat::V2] {
                    let (v, is_error) = outcome.render(format);
                    let text = serde_json::to_string(&v).unwrap();
                    let back: Value = serde_json::from_str(&text).unwrap();
                    proptest::prop_assert_eq!(&back, &v);
                    proptest::prop_assert_eq!(is_error, outcome.is_error());
                    let leaked = text.contains(tenant) || text.contains(principal);
                    proptest::prop_assert!(!leaked, "the trusted context leaked: {}", text);
                    if format == ResultFormat::V2 {
                        proptest::prop_assert!(v["summary"].is_string());
                        proptest::prop_assert_eq!(&v["source_database_changed"], &json!(false));
                        if is_error {
                            proptest::prop_assert!(!text.contains("OPERATOR-ONLY"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn v2_errors_carry_only_the_safe_code_and_are_tool_errors() {
        let driver_text = "ERROR: relation \"invoices\" does not exist at character 15; host=db.internal";
        let outcome = ToolOutcome::Error {
            capability: "billing.inspect_invoice".into(),
            kind: Some(CapabilityKind::Read),
            error: ToolError::new(ToolCode::SourceSchemaMismatch, driver_text),
            context: Some(ctx()),
        };
        let (v, is_error) = outcome.render(ResultFormat::V2);
        assert!(is_error);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "INTERNAL");
        assert_eq!(v["data"], Value::Null);
        assert_eq!(v["proposal"], Value::Null);
        assert_eq!(v["source_database_changed"], false);
        assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(!v.to_string().contains("relation"), "driver text leaked: {v}");
        assert!(!v.to_string().contains("db.internal"));
    }

    #[test]
    fn v2_read_has_data_and_no_proposal() {
        let mut data = Map::new();
        data.insert("id".into(), json!("INV-1"));
        let outcome = ToolOutcome::Read {
            capability: "billing.inspect_invoice".into(),
            table: "invoices".into(),
            object_id: "INV-1".into(),
            data,
            context: ctx(),
            evidence_bundle_id: "ev_1".into(),
        };
        let (v, is_error) = outcome.render(ResultFormat::V2);
        assert!(!is_error);
        assert_eq!(v["ok"], true);
        assert_eq!(v["data"]["id"], "INV-1");
        assert_eq!(v["proposal"], Value::Null);
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["_meta"]["canonical_capability"], "billing.inspect_invoice");
        assert_eq!(v["evidence"]["bundle_id"], "ev_1");
        let (v1, _) = outcome.render(ResultFormat::V1);
        assert_eq!(v1["status"], "ok");
        assert_eq!(v1["evidence_resource"], "synapsor://evidence/ev_1");
        // The model never sees its tenant or principal, in either version.
        assert_eq!(v1["trusted_context"], json!({"provenance": "environment"}));
        let (v2, _) = outcome.render(ResultFormat::V2);
        assert_eq!(v2["_meta"]["provenance"], "environment");
        for v in [&v1, &v2] {
            let text = v.to_string();
            assert!(!text.contains("acme") && !text.contains("\"agent\""), "{text}");
        }
    }

    #[test]
    fn every_runtime_code_maps_to_a_fixed_safe_message() {
        use ToolCode::*;
        for code in [
            CapabilityNotFound,
            ArgumentsNotObject,
            ArgumentRequired,
            ArgumentTypeInvalid,
            ArgumentTooLong,
            ArgumentBelowMinimum,
            ArgumentAboveMaximum,
            ArgumentNotAllowed,
            ArgumentUnknown,
            ArgumentSecretMaterial,
            ModelCannotOverrideBinding,
            TrustedBindingMissing,
            TrustedContextUnsupported,
            ProposalsDisabled,
            RowNotFound,
            MultiRowBlocked,
            PatchNumericBoundTypeInvalid,
            PatchBelowMinimum,
            PatchAboveMaximum,
            PatchTransitionTypeInvalid,
            PatchTransitionNotAllowed,
            ConflictGuardMissing,
            SourceCredentialMissing,
            SourceUnavailable,
            SourceTimeout,
            SourceSchemaMismatch,
            LocalStoreUnavailable,
            ProposalStoreUnavailable,
            SecretMaterialRejected,
            UnsafeIdentifier,
            Internal,
        ] {
            let outcome = ToolOutcome::Error {
                capability: "x.y".into(),
                kind: None,
                error: ToolError::new(code, "operator detail"),
                context: None,
            };
            let (v, is_error) = outcome.render(ResultFormat::V2);
            assert!(is_error);
            assert_eq!(v["error"]["message"], code.safe_message());
            if code == ProposalStoreUnavailable {
                assert!(code.safe_message().contains("proposal store"));
            } else {
                assert_eq!(code.safe_message(), code.safe_code().message());
            }
            assert!(!v.to_string().contains("operator detail"));
            let (v1, _) = outcome.render(ResultFormat::V1);
            assert_eq!(v1["code"], code.as_str());
        }
    }
}
