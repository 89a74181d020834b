//! Human-readable rendering shared by the commands.

use serde_json::Value;
use synapsor_ledger::{EventRecord, EvidenceBundle, ProposalRecord, ProposalSummary, Replay};

/// A JSON value as a short scalar string.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

pub fn proposal_table(rows: &[ProposalSummary]) -> String {
    if rows.is_empty() {
        return "No proposals.\n".into();
    }
    let mut out = format!(
        "{:<28} {:<15} {:<36} {:<12} {}\n",
        "PROPOSAL", "STATE", "CAPABILITY", "TENANT", "OBJECT"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<28} {:<15} {:<36} {:<12} {}\n",
            r.proposal_id,
            r.state.as_str(),
            r.capability,
            r.tenant_id,
            r.object
        ));
    }
    out
}

pub fn proposal_detail(p: &ProposalRecord) -> String {
    let cs = &p.change_set;
    let mut out = String::new();
    out.push_str(&format!("Proposal   {}\n", cs.proposal_id));
    out.push_str(&format!("State      {}\n", p.state.as_str()));
    out.push_str(&format!("Capability {}\n", cs.action));
    out.push_str(&format!(
        "Tenant     {}   Principal {} ({})\n",
        cs.scope.tenant_id, cs.principal.id, cs.principal.source
    ));
    out.push_str(&format!(
        "Target     {}.{} where {} = {}\n",
        cs.source.schema,
        cs.source.table,
        cs.source.primary_key.column,
        scalar(&cs.source.primary_key.value)
    ));
    out.push_str("Change\n");
    for (col, after) in &cs.patch {
        let before = cs.before.get(col).map(scalar).unwrap_or_else(|| "null".into());
        out.push_str(&format!("  {col}: {before} -> {}\n", scalar(after)));
    }
    out.push_str("Guards\n");
    if let Some(t) = &cs.guards.tenant {
        out.push_str(&format!("  tenant        {} = {}\n", t.column, scalar(&t.value)));
    }
    out.push_str(&format!("  allowed       {}\n", cs.guards.allowed_columns.join(", ")));
    out.push_str(&format!(
        "  version       {} = {}\n",
        cs.guards.expected_version.column,
        scalar(&cs.guards.expected_version.value)
    ));
    out.push_str(&format!("  executor      {}\n", cs.writeback.executor));
    out.push_str(&format!("Digest     {}\n", cs.digest));
    out.push_str(&format!("Evidence   {}\n", cs.evidence.bundle_id));
    out.push_str(&format!(
        "Approvals  {} of {} required\n",
        p.approvals.iter().filter(|a| a.decision == "approved").count(),
        cs.approval.required_approvals
    ));
    for a in &p.approvals {
        out.push_str(&format!(
            "  {} by {} at {}{}\n",
            a.decision,
            a.approver,
            a.created_at,
            a.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    out.push_str(&format!("Created    {}\n", p.created_at));
    if let Some(by) = &p.managed_by {
        out.push_str(&format!(
            "Managed by {by} (decided and applied there; this ledger mirrors it)\n"
        ));
    }
    out
}

pub fn event_line(e: &EventRecord) -> String {
    format!(
        "#{:<5} {}  {:<26} {:<28} by {}",
        e.event_id, e.created_at, e.kind, e.proposal_id, e.actor
    )
}

pub fn evidence_detail(b: &EvidenceBundle) -> String {
    let e = &b.evidence;
    let mut out = format!(
        "Evidence   {}\nCapability {}\nTenant     {}   Principal {}\nSource     {} ({})\nObject     {}\nRecorded   {}\n",
        e.evidence_bundle_id, e.capability, e.tenant_id, e.principal, e.source_id, e.target, e.object_id, e.created_at
    );
    if let Some(p) = &e.proposal_id {
        out.push_str(&format!("Proposal   {p}\n"));
    }
    out.push_str("Items\n");
    for item in &e.items {
        out.push_str(&format!("  {}\n", item));
    }
    out.push_str("Query audit\n");
    for q in &b.query_audit {
        out.push_str(&format!(
            "  {} rows={} {:.2}ms {}\n    {}\n",
            q.created_at, q.row_count, q.duration_ms, q.outcome, q.statement_template
        ));
    }
    out
}

pub fn replay_detail(r: &Replay) -> String {
    let cs = &r.proposal.change_set;
    let mut out = format!(
        "Replay {} ({})\n\n",
        r.replay_id,
        if r.digest_verified {
            "digest verified"
        } else {
            "DIGEST MISMATCH"
        }
    );
    out.push_str("What happened\n");
    out.push_str(&format!(
        "  1. {} called {} for {} {} in tenant {}.\n",
        cs.principal.id, cs.action, cs.scope.business_object, cs.scope.object_id, cs.scope.tenant_id
    ));
    out.push_str(&format!(
        "  2. The runner read the row under the trusted tenant; evidence {}.\n",
        cs.evidence.bundle_id
    ));
    out.push_str(&format!(
        "  3. It recorded proposal {} (digest {}).\n",
        cs.proposal_id, cs.digest
    ));
    out.push_str("  4. The source database was not changed by the tool call.\n");
    out.push_str(&format!("  5. Current state: {}.\n\n", r.proposal.state.as_str()));
    out.push_str("Events\n");
    for e in &r.events {
        out.push_str(&format!("  {}\n", event_line(e)));
    }
    out.push_str(&format!("\nEvidence bundles: {}\n", r.evidence.len()));
    for b in &r.evidence {
        out.push_str(&format!(
            "  {} ({} items, {} queries)\n",
            b.evidence.evidence_bundle_id,
            b.evidence.items.len(),
            b.query_audit.len()
        ));
    }
    out.push_str(&format!("Receipts: {}\n", r.receipts.len()));
    for rc in &r.receipts {
        out.push_str(&format!(
            "  {} rows={} at {}\n",
            rc.status, rc.rows_affected, rc.created_at
        ));
    }
    out
}
