//! The review model: what a person sees before deciding on a proposal, the same whether the
//! proposal lives in the local ledger or as a Kubernetes `Proposal`.
//!
//! What it is: [`Review::from_change_set`] turns a change set into the before/after rows and the
//! guards that apply will check; callers (the review UI, `kubectl synapsor`, `proposals show`) add
//! the phase, decisions, evidence, receipt and timeline they hold. [`render_text`] prints it for a
//! terminal. What it is not: it decides nothing (approval rules are [`crate::approval`]'s) and does
//! no IO.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::changeset::ChangeSet;

/// One column of the target row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    pub column: String,
    /// As read when the proposal was made (`null` when the column was not read).
    pub before: Value,
    /// After the change; equals `before` for columns the change leaves alone.
    pub after: Value,
    pub changed: bool,
}

/// One guard that apply re-checks against the current row, in words and as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardLine {
    /// `tenant`, `principal`, `expected_version`, `allowed_columns`, `numeric_bound`,
    /// `transition`, `one_row`, `idempotency`.
    pub kind: &'static str,
    pub text: String,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// `approved` or `rejected`.
    pub decision: String,
    pub actor: String,
    /// Who vouched for the actor's identity (`kubernetes`, a token issuer), when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One step of a proposal's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything a reviewer sees about one proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// The proposal id (`wrp_...`); on Kubernetes also the object's name in `name`.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub capability: String,
    /// `review_required` or `shadow`.
    pub mode: String,
    /// The lifecycle phase as its store names it (`pending_review`, `Approved`, `applied`, ...).
    pub phase: String,
    pub tenant: String,
    pub proposer: String,
    /// `schema.table` and the key of the one row.
    pub target: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Decisions bind to this digest.
    pub digest: String,
    pub executor: String,
    pub required_approvals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    pub diff: Vec<DiffRow>,
    pub guards: Vec<GuardLine>,
    pub decisions: Vec<Decision>,
    /// The evidence bundle the proposal was built from, when the store has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    /// The execution receipt, once applied or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Value>,
    pub timeline: Vec<TimelineEntry>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Before and after, column by column: the changed columns first (in patch order), then the
/// others as read.
pub fn diff_rows(cs: &ChangeSet) -> Vec<DiffRow> {
    let mut rows: Vec<DiffRow> = cs
        .patch
        .iter()
        .map(|(col, after)| {
            let before = cs.before.get(col).cloned().unwrap_or(Value::Null);
            DiffRow {
                column: col.clone(),
                changed: &before != after,
                before,
                after: after.clone(),
            }
        })
        .collect();
    for (col, before) in &cs.before {
        if !cs.patch.contains_key(col) {
            rows.push(DiffRow {
                column: col.clone(),
                before: before.clone(),
                after: cs.after.get(col).cloned().unwrap_or_else(|| before.clone()),
                changed: false,
            });
        }
    }
    rows
}

fn bound_text(col: &str, b: &Value) -> String {
    match (b.get("minimum"), b.get("maximum")) {
        (Some(min), Some(max)) => format!("{col} stays between {} and {}", scalar(min), scalar(max)),
        (Some(min), None) => format!("{col} stays at least {}", scalar(min)),
        (None, Some(max)) => format!("{col} stays at most {}", scalar(max)),
        (None, None) => format!("{col} is bounded"),
    }
}

fn transition_text(col: &str, g: &Value) -> String {
    let allowed = g
        .get("allowed")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    let parts: Vec<String> = allowed
        .iter()
        .map(|(from, tos)| {
            let tos: Vec<String> = tos.as_array().into_iter().flatten().map(scalar).collect();
            format!("{from} -> {}", tos.join(" | "))
        })
        .collect();
    format!("{col} may only move {}", parts.join("; "))
}

/// The guards apply re-checks, in the order it checks them.
pub fn guard_lines(cs: &ChangeSet) -> Vec<GuardLine> {
    let mut out = Vec::new();
    match &cs.guards.tenant {
        Some(t) => out.push(GuardLine {
            kind: "tenant",
            text: format!("the row's {} is still {}", t.column, scalar(&t.value)),
        }),
        None => out.push(GuardLine {
            kind: "tenant",
            text: "none: a single-tenant development target".into(),
        }),
    }
    if let Some(p) = &cs.guards.principal {
        out.push(GuardLine {
            kind: "principal",
            text: format!("the row's {} is still {}", p.column, scalar(&p.value)),
        });
    }
    let v = &cs.guards.expected_version;
    out.push(GuardLine {
        kind: "expected_version",
        text: format!(
            "{} is still {} (else: conflict, nothing written)",
            v.column,
            scalar(&v.value)
        ),
    });
    out.push(GuardLine {
        kind: "allowed_columns",
        text: format!("only {} may change", cs.guards.allowed_columns.join(", ")),
    });
    for (col, b) in &cs.guards.numeric_bounds {
        out.push(GuardLine {
            kind: "numeric_bound",
            text: bound_text(col, b),
        });
    }
    for (col, g) in &cs.guards.transition_guards {
        out.push(GuardLine {
            kind: "transition",
            text: transition_text(col, g),
        });
    }
    out.push(GuardLine {
        kind: "one_row",
        text: format!(
            "exactly one row: {}.{} where {} = {}",
            cs.source.schema,
            cs.source.table,
            cs.source.primary_key.column,
            scalar(&cs.source.primary_key.value)
        ),
    });
    out.push(GuardLine {
        kind: "idempotency",
        text: format!("applied at most once (receipt keyed by {})", cs.proposal_id),
    });
    out
}

impl Review {
    /// The parts a change set holds; phase, decisions, evidence, receipt and timeline are the
    /// caller's (empty here).
    pub fn from_change_set(cs: &ChangeSet) -> Review {
        Review {
            id: cs.proposal_id.clone(),
            name: None,
            capability: cs.action.clone(),
            mode: cs.mode.clone(),
            phase: String::new(),
            tenant: cs.scope.tenant_id.clone(),
            proposer: cs.principal.id.clone(),
            target: format!(
                "{}.{} {} = {}",
                cs.source.schema,
                cs.source.table,
                cs.source.primary_key.column,
                scalar(&cs.source.primary_key.value)
            ),
            created_at: cs.created_at.clone(),
            expires_at: None,
            digest: cs.digest.clone(),
            executor: cs.writeback.executor.clone(),
            required_approvals: cs.approval.required_approvals,
            required_role: cs.approval.required_role.clone(),
            diff: diff_rows(cs),
            guards: guard_lines(cs),
            decisions: Vec::new(),
            evidence: None,
            receipt: None,
            timeline: Vec::new(),
        }
    }

    /// The columns the change sets, as `column: before -> after`.
    pub fn change_summary(&self) -> String {
        self.diff
            .iter()
            .filter(|r| r.changed)
            .map(|r| format!("{}: {} -> {}", r.column, scalar(&r.before), scalar(&r.after)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The review for a terminal; `color` adds ANSI colours (red before, green after).
pub fn render_text(r: &Review, color: bool) -> String {
    use std::fmt::Write as _;
    let (red, green, bold, dim, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "", "")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{bold}{}{reset}  {}  [{}]",
        r.name.as_deref().unwrap_or(&r.id),
        r.capability,
        r.phase
    );
    let _ = writeln!(
        out,
        "  tenant {}   proposed by {}   at {}",
        r.tenant, r.proposer, r.created_at
    );
    let _ = writeln!(out, "  target {}   via {}", r.target, r.executor);
    if let Some(e) = &r.expires_at {
        let _ = writeln!(out, "  expires {e}");
    }
    let _ = writeln!(out, "  digest {dim}{}{reset}", r.digest);
    let _ = writeln!(out, "\n{bold}Change{reset}");
    let width = r.diff.iter().map(|d| d.column.len()).max().unwrap_or(0);
    for d in &r.diff {
        if d.changed {
            let _ = writeln!(
                out,
                "  {:<width$}  {red}{}{reset} -> {green}{}{reset}",
                d.column,
                scalar(&d.before),
                scalar(&d.after)
            );
        } else {
            let _ = writeln!(out, "  {dim}{:<width$}  {}{reset}", d.column, scalar(&d.before));
        }
    }
    let _ = writeln!(out, "\n{bold}Checked again at apply{reset}");
    for g in &r.guards {
        let _ = writeln!(out, "  - {}", g.text);
    }
    let role = r
        .required_role
        .as_deref()
        .map(|x| format!(", role {x}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n{bold}Decisions{reset} ({} approval(s) needed{role})",
        r.required_approvals
    );
    if r.decisions.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for d in &r.decisions {
        let by = d
            .verified_by
            .as_deref()
            .map(|v| format!(" (verified by {v})"))
            .unwrap_or_default();
        let why = d.reason.as_deref().map(|v| format!(": {v}")).unwrap_or_default();
        let _ = writeln!(out, "  {} by {}{by} at {}{why}", d.decision, d.actor, d.at);
    }
    if let Some(ev) = &r.evidence {
        let id = ev
            .get("bundle_id")
            .or_else(|| ev.get("id"))
            .map(scalar)
            .unwrap_or_default();
        let _ = writeln!(out, "\n{bold}Evidence{reset} {id}");
    }
    if let Some(rc) = &r.receipt {
        let status = rc.get("status").map(scalar).unwrap_or_default();
        let _ = writeln!(out, "\n{bold}Receipt{reset} {status}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cs() -> ChangeSet {
        serde_json::from_value(json!({
            "schema_version": "synapsor.change-set.v1",
            "proposal_id": "wrp_1",
            "mode": "review_required",
            "action": "billing.propose_late_fee_waiver",
            "principal": {"id": "agent.one", "source": "environment"},
            "scope": {"tenant_id": "acme", "business_object": "invoice", "object_id": "inv_1"},
            "source": {"source_id": "billing", "engine": "postgres", "schema": "public", "table": "invoices",
                       "primary_key": {"column": "id", "value": "inv_1"}},
            "before": {"id": "inv_1", "late_fee_cents": 500, "status": "open", "updated_at": "t1"},
            "patch": {"late_fee_cents": 0},
            "after": {"id": "inv_1", "late_fee_cents": 0, "status": "open", "updated_at": "t1"},
            "guards": {"tenant": {"column": "tenant_id", "value": "acme"},
                       "allowed_columns": ["late_fee_cents"],
                       "expected_version": {"column": "updated_at", "value": "t1"},
                       "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                       "transition_guards": {"status": {"allowed": {"open": ["paid", "void"]}}}},
            "writeback": {"executor": "sql_update"},
            "approval": {"required_approvals": 1},
            "evidence": {"bundle_id": "ev_1", "query_fingerprint": "q"},
            "created_at": "2026-01-01T00:00:00Z",
            "digest": "sha256:abc"
        }))
        .unwrap()
    }

    #[test]
    fn diff_puts_changes_first() {
        let r = Review::from_change_set(&cs());
        assert_eq!(r.diff[0].column, "late_fee_cents");
        assert!(r.diff[0].changed);
        assert!(r.diff[1..].iter().all(|d| !d.changed));
        assert_eq!(r.change_summary(), "late_fee_cents: 500 -> 0");
        assert_eq!(r.target, "public.invoices id = inv_1");
    }

    #[test]
    fn guards_in_apply_order() {
        let kinds: Vec<&str> = guard_lines(&cs()).iter().map(|g| g.kind).collect();
        assert_eq!(
            kinds,
            [
                "tenant",
                "expected_version",
                "allowed_columns",
                "numeric_bound",
                "transition",
                "one_row",
                "idempotency"
            ]
        );
        let text: Vec<String> = guard_lines(&cs()).into_iter().map(|g| g.text).collect();
        assert!(
            text.contains(&"late_fee_cents stays between 0 and 10000".to_owned()),
            "{text:?}"
        );
        assert!(
            text.contains(&"status may only move open -> paid | void".to_owned()),
            "{text:?}"
        );
    }

    #[test]
    fn text_has_colour_only_when_asked() {
        let r = Review::from_change_set(&cs());
        assert!(!render_text(&r, false).contains('\x1b'));
        let c = render_text(&r, true);
        assert!(c.contains("\x1b[31m500\x1b[0m -> \x1b[32m0\x1b[0m"), "{c}");
    }
}
