//! A `Proposal` as the reviewer sees it: its phase, decisions and timeline turned into the shared
//! review model (`synapsor_core::review`), and the JSON patch that records a reviewer's decision.
//!
//! What it is: pure functions over [`Proposal`] (and the Events of one proposal), used by
//! `kubectl synapsor` and by the review UI's Kubernetes source, so both show and decide the
//! same way. What it is not: no API calls, and no verification of the webhook's signatures (only
//! the controller holds that key): a decision the controller has not yet counted is shown as
//! recorded, not as verified.

use k8s_openapi::api::core::v1::Event;
use serde::Deserialize;
use serde_json::{Value, json};
use synapsor_core::approval::same_person;
use synapsor_core::review::{Decision, Review, TimelineEntry};
use synapsor_core::time::{format_rfc3339_ms, parse_rfc3339_ms};

use crate::{ANNOTATION_APPROVALS, ANNOTATION_PROPOSER, ANNOTATION_REJECTION, KUBERNETES_ISSUER, Phase, Proposal};

/// The phase of a proposal as the admission webhook sees it: `Pending` until the controller
/// first writes the status.
pub fn effective_phase(p: &Proposal) -> Phase {
    p.status.as_ref().and_then(|s| s.phase).unwrap_or(Phase::Pending)
}

/// True once nothing more will happen to the proposal: `Applied`, `Conflict`, `Rejected`,
/// `Expired`, or `Failed` with no further attempt scheduled.
pub fn is_terminal(p: &Proposal) -> bool {
    match effective_phase(p) {
        Phase::Applied | Phase::Conflict | Phase::Rejected | Phase::Expired => true,
        Phase::Failed => p.status.as_ref().is_none_or(|s| s.next_attempt_at.is_none()),
        Phase::Pending | Phase::Approved | Phase::Applying => false,
    }
}

/// Why the proposal is where it is: `.status.message`, else the rejection's reason.
pub fn reason(p: &Proposal) -> Option<String> {
    let st = p.status.as_ref()?;
    st.message.clone().filter(|m| !m.is_empty()).or_else(|| {
        st.rejection
            .as_ref()
            .map(|r| format!("rejected by {}: {}", r.user, r.reason))
    })
}

/// One decision as the webhook records it in its annotations (the signature is not checked
/// here; only the controller can).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedDecision {
    pub user: String,
    pub at: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub fn recorded_approvals(p: &Proposal) -> Vec<RecordedDecision> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_APPROVALS))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn recorded_rejection(p: &Proposal) -> Option<RecordedDecision> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REJECTION))
        .and_then(|v| serde_json::from_str(v).ok())
}

/// The Kubernetes user the webhook stamped as the creator of the proposal.
pub fn proposer(p: &Proposal) -> Option<String> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_PROPOSER))
        .cloned()
}

/// The decisions on a proposal: the approvals and rejection the webhook recorded, marked
/// verified (`verified_by: kubernetes`) once the controller counted them in the status.
pub fn decisions(p: &Proposal) -> Vec<Decision> {
    let status = p.status.clone().unwrap_or_default();
    let verified = |user: &str| {
        status
            .approvals
            .iter()
            .any(|a| a.verified && same_person(&a.user, user))
            .then(|| KUBERNETES_ISSUER.to_owned())
    };
    let mut out: Vec<Decision> = recorded_approvals(p)
        .into_iter()
        .map(|d| Decision {
            decision: "approved".into(),
            verified_by: verified(&d.user),
            actor: d.user,
            at: d.at,
            reason: None,
        })
        .collect();
    // Counted by the controller but no longer in the annotation (it never removes them; kept
    // for a status written by another tool).
    for a in &status.approvals {
        if a.verified && !out.iter().any(|d| same_person(&d.actor, &a.user)) {
            out.push(Decision {
                decision: "approved".into(),
                actor: a.user.clone(),
                verified_by: Some(KUBERNETES_ISSUER.to_owned()),
                at: a.at.clone(),
                reason: None,
            });
        }
    }
    match (status.rejection, recorded_rejection(p)) {
        (Some(r), _) => out.push(Decision {
            decision: "rejected".into(),
            actor: r.user,
            verified_by: Some(KUBERNETES_ISSUER.to_owned()),
            at: r.at,
            reason: Some(r.reason),
        }),
        (None, Some(r)) => out.push(Decision {
            decision: "rejected".into(),
            actor: r.user,
            verified_by: None,
            at: r.at,
            reason: r.reason,
        }),
        (None, None) => {}
    }
    out
}

fn time_of(t: &k8s_openapi::jiff::Timestamp) -> String {
    format_rfc3339_ms(t.as_millisecond())
}

/// The proposal's history: created, decisions, status conditions and its Events, oldest first.
pub fn timeline(p: &Proposal, events: &[Event]) -> Vec<TimelineEntry> {
    let mut out = Vec::new();
    let created = p
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| time_of(&t.0))
        .unwrap_or_else(|| p.spec.created_at.clone());
    out.push(TimelineEntry {
        at: created,
        kind: "proposed".into(),
        actor: Some(p.spec.principal.id.clone()),
        detail: Some(match proposer(p) {
            Some(u) => format!("created by {u}"),
            None => "created without a verified proposer".into(),
        }),
    });
    for d in decisions(p) {
        let detail = match (&d.reason, &d.verified_by) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(_)) => Some("verified by the controller".into()),
            (None, None) => Some("recorded by the admission webhook".into()),
        };
        out.push(TimelineEntry {
            at: d.at.clone(),
            kind: d.decision.clone(),
            actor: Some(d.actor.clone()),
            detail,
        });
    }
    if let Some(st) = &p.status {
        for c in &st.conditions {
            let detail = [c.reason.as_str(), c.message.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            out.push(TimelineEntry {
                at: c.last_transition_time.clone(),
                kind: format!("condition {}={}", c.type_, c.status),
                actor: None,
                detail: (!detail.is_empty()).then_some(detail),
            });
        }
    }
    for e in events {
        let at = e
            .event_time
            .as_ref()
            .map(|t| time_of(&t.0))
            .or_else(|| e.last_timestamp.as_ref().map(|t| time_of(&t.0)))
            .or_else(|| e.first_timestamp.as_ref().map(|t| time_of(&t.0)))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| time_of(&t.0)))
            .unwrap_or_default();
        let actor = e
            .reporting_component
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()));
        out.push(TimelineEntry {
            at,
            kind: format!("event {}", e.reason.as_deref().unwrap_or("")),
            actor,
            detail: e.message.clone().filter(|m| !m.is_empty()),
        });
    }
    // Stable: entries of the same instant keep the order above.
    out.sort_by_key(|e| parse_rfc3339_ms(&e.at).unwrap_or(i64::MAX));
    out
}

/// The review of a proposal, with its Kubernetes phase, name, expiry, decisions, evidence,
/// receipt and timeline.
pub fn review(p: &Proposal, events: &[Event]) -> Review {
    let mut r = Review::from_change_set(&p.spec.to_change_set());
    r.name = p.metadata.name.clone();
    r.phase = effective_phase(p).to_string();
    r.expires_at = Some(p.spec.expires_at.clone());
    r.decisions = decisions(p);
    r.evidence = Some(p.spec.evidence_bundle.clone().unwrap_or_else(
        || json!({"bundle_id": p.spec.evidence.bundle_id, "query_fingerprint": p.spec.evidence.query_fingerprint}),
    ));
    r.receipt = p.status.as_ref().and_then(|s| s.receipt.clone());
    r.timeline = timeline(p, events);
    r
}

/// True when the spec still matches the digest approvals bind to.
pub fn digest_is_intact(p: &Proposal) -> bool {
    p.spec.to_change_set().digest_is_intact()
}

/// A JSON pointer to an annotation (`/` in keys is `~1`).
pub fn annotation_pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The patch of a decision on `p`: test that the object is still the one reviewed (uid and
/// digest), then set the request annotation, as `kubectl annotate` would.
pub fn decision_patch(p: &Proposal, key: &str, value: &str) -> Value {
    let mut ops = Vec::new();
    if let Some(uid) = &p.metadata.uid {
        ops.push(json!({"op": "test", "path": "/metadata/uid", "value": uid}));
    }
    ops.push(json!({"op": "test", "path": "/spec/digest", "value": p.spec.digest}));
    if p.metadata.annotations.is_some() {
        ops.push(json!({"op": "add", "path": annotation_pointer(key), "value": value}));
    } else {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}}));
    }
    Value::Array(ops)
}

/// The phases `--phase` and `wait --for` accept (case-insensitive).
pub fn parse_phase(s: &str) -> Option<Phase> {
    Phase::ALL
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ANNOTATION_APPROVE, ANNOTATION_REJECT, ApprovalStatus, ProposalSpec, ProposalStatus};
    use synapsor_core::changeset::ChangeSet;

    fn proposal() -> Proposal {
        let mut cs: ChangeSet = serde_json::from_value(json!({
            "schema_version": "synapsor.change-set.v1",
            "proposal_id": "wrp_1",
            "mode": "review_required",
            "action": "billing.propose_late_fee",
            "principal": {"id": "agent.k8s", "source": "environment"},
            "scope": {"tenant_id": "acme", "business_object": "invoices", "object_id": "INV-1"},
            "source": {"source_id": "main", "engine": "external_postgres", "schema": "public",
                       "table": "invoices", "primary_key": {"column": "id", "value": "INV-1"}},
            "before": {"id": "INV-1", "late_fee_cents": 5500},
            "patch": {"late_fee_cents": 2500},
            "after": {"id": "INV-1", "late_fee_cents": 2500},
            "guards": {"tenant": {"column": "tenant_id", "value": "acme"}, "allowed_columns": ["late_fee_cents"],
                       "expected_version": {"column": "updated_at", "value": "2026-06-23T09:00:00Z"}},
            "writeback": {"executor": "sql_update"},
            "approval": {"required_approvals": 2},
            "evidence": {"bundle_id": "ev_1", "query_fingerprint": "fp"},
            "created_at": "2026-11-25T10:00:00.000Z",
            "digest": ""
        }))
        .unwrap();
        cs.digest = cs.compute_digest();
        let mut p = Proposal::new(
            "wrp-1",
            ProposalSpec::from_change_set(&cs, "2026-11-26T10:00:00Z".into()),
        );
        p.metadata.namespace = Some("apps".into());
        p
    }

    #[test]
    fn phases_and_terminal_states() {
        let mut p = proposal();
        assert_eq!(effective_phase(&p), Phase::Pending);
        assert!(!is_terminal(&p));
        p.status = Some(ProposalStatus {
            phase: Some(Phase::Failed),
            next_attempt_at: Some("2026-11-25T10:00:10Z".into()),
            ..Default::default()
        });
        assert!(!is_terminal(&p), "a failed apply with a retry scheduled is not final");
        p.status.as_mut().unwrap().next_attempt_at = None;
        assert!(is_terminal(&p));
        p.status.as_mut().unwrap().phase = Some(Phase::Applied);
        assert!(is_terminal(&p));
        assert_eq!(parse_phase("applied"), Some(Phase::Applied));
        assert_eq!(parse_phase("nope"), None);
    }

    #[test]
    fn decisions_are_verified_only_once_the_controller_counted_them() {
        let mut p = proposal();
        let recs = json!([{"user": "alice", "at": "2026-11-25T10:01:00Z", "sig": "v1=aa"},
                          {"user": "carol", "at": "2026-11-25T10:02:00Z", "sig": "v1=bb"}]);
        p.metadata.annotations = Some(
            [
                (ANNOTATION_APPROVALS.to_owned(), recs.to_string()),
                (
                    ANNOTATION_PROPOSER.to_owned(),
                    "system:serviceaccount:apps:runner".to_owned(),
                ),
            ]
            .into(),
        );
        p.status = Some(ProposalStatus {
            approvals: vec![ApprovalStatus {
                user: "Alice".into(),
                at: "2026-11-25T10:01:00Z".into(),
                verified: true,
            }],
            ..Default::default()
        });
        let d = decisions(&p);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].verified_by.as_deref(), Some("kubernetes"));
        assert_eq!(d[1].verified_by, None);
        let r = review(&p, &[]);
        assert_eq!(r.phase, "Pending");
        assert_eq!(r.name.as_deref(), Some("wrp-1"));
        assert_eq!(r.evidence.as_ref().unwrap()["bundle_id"], "ev_1");
        let kinds: Vec<&str> = r.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["proposed", "approved", "approved"]);
    }

    #[test]
    fn an_altered_spec_is_flagged() {
        let mut p = proposal();
        p.spec.patch.insert("late_fee_cents".into(), json!(0));
        assert!(!digest_is_intact(&p));
    }

    #[test]
    fn a_decision_patch_tests_uid_and_digest_before_annotating() {
        let spec: ProposalSpec = serde_json::from_value(json!({
            "proposalId": "wrp_1", "capability": "c", "mode": "review_required", "tenant": "acme",
            "principal": {"id": "a", "source": "environment"},
            "target": {"sourceId": "s", "engine": "external_postgres", "schema": "public", "table": "t",
                       "businessObject": "t", "objectId": "1", "primaryKey": {"column": "id", "value": 1}},
            "before": {}, "patch": {}, "after": {},
            "expectedVersion": {"column": "v", "value": 1},
            "guards": {"allowedColumns": []},
            "executor": "sql_update", "requiredApprovals": 1,
            "evidence": {"bundleId": "ev", "queryFingerprint": "fp"},
            "schemaVersion": "synapsor.change-set.v1", "createdAt": "2026-01-01T00:00:00Z",
            "expiresAt": "2026-01-02T00:00:00Z", "digest": "sha256:ab"
        }))
        .unwrap();
        let mut p = Proposal::new("wrp-1", spec);
        p.metadata.uid = Some("uid-1".into());
        let v = decision_patch(&p, ANNOTATION_APPROVE, "true");
        assert_eq!(v[0], json!({"op": "test", "path": "/metadata/uid", "value": "uid-1"}));
        assert_eq!(
            v[1],
            json!({"op": "test", "path": "/spec/digest", "value": "sha256:ab"})
        );
        assert_eq!(
            v[2],
            json!({"op": "add", "path": "/metadata/annotations", "value": {"runner.synapsor.ai/approve": "true"}})
        );
        p.metadata.annotations = Some(Default::default());
        let v = decision_patch(&p, ANNOTATION_REJECT, "no");
        assert_eq!(
            v[2],
            json!({"op": "add", "path": "/metadata/annotations/runner.synapsor.ai~1reject", "value": "no"})
        );
        // The patch applies to the object as the API server would.
        let mut doc = serde_json::to_value(&p).unwrap();
        json_patch::patch(&mut doc, &serde_json::from_value::<json_patch::Patch>(v).unwrap()).unwrap();
        assert_eq!(doc["metadata"]["annotations"]["runner.synapsor.ai/reject"], "no");
    }
}
