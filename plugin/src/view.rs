//! What `kubectl synapsor` shows: a `Proposal` turned into the shared review model, list rows,
//! the table, and the phase rules `wait` uses.
//!
//! What it is: pure functions over the `Proposal` types of `synapsor-kube` (and the Events of
//! one proposal), with the time passed in, so they are tested without a cluster. The review is
//! `synapsor_core::review`'s, the same the review UI and `proposals show` print. What it is not:
//! no API calls and no decisions; it never verifies the webhook's signatures (only the
//! controller holds that key): a decision the controller has not yet counted is shown as
//! recorded, not as verified.

use k8s_openapi::api::core::v1::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;
use synapsor_core::approval::same_person;
use synapsor_core::review::{Decision, Review, TimelineEntry};
use synapsor_core::time::{format_rfc3339_ms, parse_rfc3339_ms};
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_PROPOSER, ANNOTATION_REJECTION, KUBERNETES_ISSUER, Phase, Proposal,
};

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
struct RecordedDecision {
    user: String,
    at: String,
    #[serde(default)]
    reason: Option<String>,
}

fn recorded_approvals(p: &Proposal) -> Vec<RecordedDecision> {
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

/// The review for a terminal: the shared rendering, then what only Kubernetes has (the
/// Kubernetes proposer, the reason of the phase, the timeline).
pub fn review_text(p: &Proposal, r: &Review, color: bool) -> String {
    use std::fmt::Write as _;
    let mut out = synapsor_core::review::render_text(r, color);
    if !digest_is_intact(p) {
        let _ = writeln!(
            out,
            "\nWARNING: the spec does not match its digest {}: it was altered and cannot be approved",
            r.digest
        );
    }
    if let Some(why) = reason(p) {
        let _ = writeln!(out, "\nStatus {}: {why}", r.phase);
    }
    if !r.timeline.is_empty() {
        let _ = writeln!(out, "\nTimeline");
        for e in &r.timeline {
            let actor = e.actor.as_deref().map(|a| format!(" {a}")).unwrap_or_default();
            let detail = e.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            let _ = writeln!(out, "  {}  {}{actor}{detail}", e.at, e.kind);
        }
    }
    out
}

/// One line of `kubectl synapsor list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListRow {
    pub namespace: String,
    pub name: String,
    pub capability: String,
    pub tenant: String,
    pub phase: String,
    /// `<verified>/<required>`.
    pub approvals: String,
    pub created_at: String,
    /// Like kubectl's AGE: `45s`, `12m`, `3h`, `2d`.
    pub age: String,
    /// The columns the change sets, `column: before -> after`.
    pub change: String,
}

/// The list row of a proposal at `now_ms`.
pub fn list_row(p: &Proposal, now_ms: i64) -> ListRow {
    let created_ms = p
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .or_else(|| parse_rfc3339_ms(&p.spec.created_at));
    let approvals = p
        .status
        .as_ref()
        .and_then(|s| s.approvals_summary.clone())
        .unwrap_or_else(|| format!("{}/{}", recorded_approvals(p).len(), p.spec.required_approvals));
    ListRow {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        capability: p.spec.capability.clone(),
        tenant: p.spec.tenant.clone(),
        phase: effective_phase(p).to_string(),
        approvals,
        created_at: created_ms.map(format_rfc3339_ms).unwrap_or_default(),
        age: created_ms
            .map(|c| age(now_ms - c))
            .unwrap_or_else(|| "<unknown>".into()),
        change: Review::from_change_set(&p.spec.to_change_set()).change_summary(),
    }
}

/// A duration the way kubectl prints ages: the largest unit, whole.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The rows as a table with a header; a NAMESPACE column when listing all namespaces.
pub fn table(rows: &[ListRow], all_namespaces: bool) -> String {
    let mut lines: Vec<Vec<&str>> = Vec::new();
    let mut header = vec!["NAME", "CAPABILITY", "TENANT", "PHASE", "APPROVALS", "AGE", "CHANGE"];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    lines.push(header);
    for r in rows {
        let mut l = vec![
            r.name.as_str(),
            r.capability.as_str(),
            r.tenant.as_str(),
            r.phase.as_str(),
            r.approvals.as_str(),
            r.age.as_str(),
            r.change.as_str(),
        ];
        if all_namespaces {
            l.insert(0, r.namespace.as_str());
        }
        lines.push(l);
    }
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The phases `--phase` and `wait --for` accept (case-insensitive).
pub fn parse_phase(s: &str) -> Option<Phase> {
    [
        Phase::Pending,
        Phase::Approved,
        Phase::Applying,
        Phase::Applied,
        Phase::Conflict,
        Phase::Failed,
        Phase::Rejected,
        Phase::Expired,
    ]
    .into_iter()
    .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use synapsor_core::changeset::ChangeSet;
    use synapsor_kube::{ApprovalStatus, ProposalSpec, ProposalStatus};

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
        let text = review_text(&p, &r, false);
        assert!(text.contains("late_fee_cents  5500 -> 2500"), "{text}");
        assert!(text.contains("Timeline"), "{text}");
        assert!(!text.contains("WARNING"), "{text}");
    }

    #[test]
    fn rows_ages_and_table() {
        let p = proposal();
        let now = parse_rfc3339_ms("2026-11-25T13:00:00Z").unwrap();
        let row = list_row(&p, now);
        assert_eq!(row.age, "3h");
        assert_eq!(row.approvals, "0/2");
        assert_eq!(row.change, "late_fee_cents: 5500 -> 2500");
        let t = table(&[row], true);
        let header: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAMESPACE",
                "NAME",
                "CAPABILITY",
                "TENANT",
                "PHASE",
                "APPROVALS",
                "AGE",
                "CHANGE"
            ]
        );
        assert!(t.lines().nth(1).unwrap().starts_with("apps"), "{t}");
        assert_eq!(age(59_000), "59s");
        assert_eq!(age(600_000), "10m");
        assert_eq!(age(3 * 86_400_000), "3d");
    }

    #[test]
    fn an_altered_spec_is_flagged() {
        let mut p = proposal();
        p.spec.patch.insert("late_fee_cents".into(), json!(0));
        assert!(!digest_is_intact(&p));
        let r = review(&p, &[]);
        assert!(review_text(&p, &r, false).contains("WARNING"));
    }
}
