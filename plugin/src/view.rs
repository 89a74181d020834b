//! What `kubectl synapsor` prints: the review as text, list rows and the table.
//!
//! What it is: pure functions over the `Proposal` types of `synapsor-kube`, with the time passed
//! in, so they are tested without a cluster. The review model comes from
//! `synapsor_kube::review`, the same the review UI's Kubernetes pages show. What it is not: no
//! API calls and no decisions.

use serde::Serialize;
use synapsor_core::review::Review;
use synapsor_core::time::{format_rfc3339_ms, parse_rfc3339_ms};
use synapsor_kube::Proposal;
use synapsor_kube::review::{digest_is_intact, effective_phase, reason, recorded_approvals};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use synapsor_core::changeset::ChangeSet;
    use synapsor_kube::ProposalSpec;

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
    fn the_review_as_text() {
        let p = proposal();
        let r = synapsor_kube::review::review(&p, &[]);
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
        let r = synapsor_kube::review::review(&p, &[]);
        assert!(review_text(&p, &r, false).contains("WARNING"));
    }
}
