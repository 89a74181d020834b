//! Fixtures shared by the ledger's integration tests: fixed timestamps, change sets built
//! directly (digest from `compute_digest`), evidence and audit rows.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use synapsor_core::ChangeSet;
use synapsor_core::changeset::{
    ApprovalRequirement, CHANGE_SET_SCHEMA, ColumnValue, EvidenceRef, Guards, Principal, Scope, SourceRef, Writeback,
};
use synapsor_core::time::format_rfc3339_ms;
use synapsor_ledger::{EvidenceRecord, LedgerError, LedgerStore, QueryAuditRecord};

/// 2026-06-23T09:00:00.000Z
pub const BASE_MS: i64 = 1_782_205_200_000;

/// `BASE + secs` seconds, in the ledger's timestamp form.
pub fn ts(secs: i64) -> String {
    format_rfc3339_ms(BASE_MS + secs * 1000)
}

pub const TENANT: &str = "acme";
pub const PRINCIPAL: &str = "agent-7";

pub fn temp_store() -> (tempfile::TempDir, PathBuf, LedgerStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger").join("local.db");
    let store = LedgerStore::open(&path).unwrap();
    (dir, path, store)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("fixture is an object"),
    }
}

/// A late-fee waiver on invoice INV-3001 setting `late_fee_cents` to `new_fee`.
pub fn change_set(id: &str, new_fee: i64) -> ChangeSet {
    let mut cs = ChangeSet {
        schema_version: CHANGE_SET_SCHEMA.into(),
        proposal_id: id.into(),
        mode: "review_required".into(),
        action: "billing.propose_late_fee_waiver".into(),
        principal: Principal {
            id: PRINCIPAL.into(),
            source: "environment".into(),
        },
        scope: Scope {
            tenant_id: TENANT.into(),
            business_object: "invoices".into(),
            object_id: "INV-3001".into(),
        },
        source: SourceRef {
            source_id: "billing".into(),
            engine: "external_postgres".into(),
            schema: "public".into(),
            table: "invoices".into(),
            primary_key: ColumnValue {
                column: "id".into(),
                value: json!("INV-3001"),
            },
        },
        before: obj(json!({"id": "INV-3001", "tenant_id": TENANT, "late_fee_cents": 5500, "version": 3})),
        patch: obj(json!({"late_fee_cents": new_fee})),
        after: obj(json!({"id": "INV-3001", "tenant_id": TENANT, "late_fee_cents": new_fee, "version": 3})),
        guards: Guards {
            principal: None,
            tenant: Some(ColumnValue {
                column: "tenant_id".into(),
                value: json!(TENANT),
            }),
            allowed_columns: vec!["late_fee_cents".into()],
            expected_version: ColumnValue {
                column: "version".into(),
                value: json!(3),
            },
            numeric_bounds: Map::new(),
            transition_guards: Map::new(),
        },
        writeback: Writeback {
            executor: "billing_sql".into(),
        },
        approval: ApprovalRequirement {
            required_approvals: 1,
            required_role: None,
        },
        evidence: EvidenceRef {
            bundle_id: format!("ev_{id}"),
            query_fingerprint: "fp_invoice_by_id".into(),
        },
        created_at: ts(0),
        digest: String::new(),
        identity: None,
    };
    cs.digest = cs.compute_digest();
    cs
}

/// Recomputes the digest after a fixture was changed.
pub fn seal(mut cs: ChangeSet) -> ChangeSet {
    cs.digest = cs.compute_digest();
    cs
}

pub fn evidence(bundle_id: &str, at: &str) -> EvidenceRecord {
    EvidenceRecord {
        evidence_bundle_id: bundle_id.into(),
        proposal_id: None,
        capability: "billing.propose_late_fee_waiver".into(),
        tenant_id: TENANT.into(),
        principal: PRINCIPAL.into(),
        source_id: "billing".into(),
        target: "public.invoices".into(),
        object_id: "INV-3001".into(),
        query_fingerprint: "fp_invoice_by_id".into(),
        items: vec![json!({"kind": "external_row", "row": {"id": "INV-3001", "late_fee_cents": 5500}})],
        created_at: at.into(),
    }
}

pub fn audit(at: &str) -> QueryAuditRecord {
    QueryAuditRecord {
        evidence_bundle_id: None,
        proposal_id: None,
        capability: "billing.propose_late_fee_waiver".into(),
        tenant_id: TENANT.into(),
        principal: PRINCIPAL.into(),
        source_id: "billing".into(),
        query_fingerprint: "fp_invoice_by_id".into(),
        statement_template: "SELECT id, late_fee_cents FROM public.invoices WHERE tenant_id = $1 AND id = $2".into(),
        row_count: 1,
        duration_ms: 1.25,
        outcome: "ok".into(),
        created_at: at.into(),
    }
}

/// The error code of a result that must be an error.
pub fn code<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> &'static str {
    r.expect_err("expected an error").code()
}
