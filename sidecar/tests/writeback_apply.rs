//! `synapsor-runner apply` end to end against real PostgreSQL, MariaDB and SQLite: proposals made
//! through the runtime, approved in the ledger, applied by the binary with a least-privilege
//! writer. The same contract runs on every engine.
#![allow(clippy::unwrap_used)]

mod writeback_support;

use serde_json::{Value, json};
use synapsor_core::capability::Caller;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_ledger::{EvidenceRecord, QueryAuditRecord};
use writeback_support::{RUNNER, Setup, WDb, code, status, text};

fn now() -> String {
    SystemClock.now_rfc3339()
}

async fn fee_proposal(s: &Setup, id: &str, fee: i64) -> String {
    s.propose(
        "billing.propose_late_fee",
        json!({"invoice_id": id, "late_fee_cents": fee}),
    )
    .await
}

/// Records a proposal built by hand: a copy of `base` retargeted at `pk` (another tenant's row)
/// under the same tenant guard, with a correct digest. The runtime cannot create such a
/// proposal; a tampered or imported ledger could.
fn record_crafted(s: &Setup, base: &str, pk: &str) -> String {
    let mut cs = s.proposal(base).change_set;
    cs.proposal_id = format!("wrp_crafted_{pk}");
    cs.source.primary_key.value = json!(pk);
    cs.scope.object_id = pk.to_owned();
    cs.digest = cs.compute_digest();
    let at = now();
    let evidence = EvidenceRecord {
        evidence_bundle_id: format!("ev_crafted_{pk}"),
        proposal_id: None,
        capability: cs.action.clone(),
        tenant_id: cs.scope.tenant_id.clone(),
        principal: cs.principal.id.clone(),
        source_id: cs.source.source_id.clone(),
        target: format!("{}.{}", cs.source.schema, cs.source.table),
        object_id: pk.to_owned(),
        query_fingerprint: "crafted".into(),
        items: vec![],
        created_at: at.clone(),
    };
    let audit = QueryAuditRecord {
        evidence_bundle_id: None,
        proposal_id: None,
        capability: cs.action.clone(),
        tenant_id: cs.scope.tenant_id.clone(),
        principal: cs.principal.id.clone(),
        source_id: cs.source.source_id.clone(),
        query_fingerprint: "crafted".into(),
        statement_template: "crafted".into(),
        row_count: 1,
        duration_ms: 0.0,
        outcome: "ok".into(),
        created_at: at,
    };
    s.store().record_proposal(&evidence, &audit, &cs).unwrap();
    cs.proposal_id
}

async fn lifecycle(db: WDb) {
    let e = db.engine.as_str();
    let s = Setup::new(db, json!({}));
    let db = &s.db;

    // A proposal changes nothing; apply before approval is refused and changes nothing.
    let p1 = fee_proposal(&s, "INV-1", 2500).await;
    assert_eq!(db.fee("INV-1").await, 5500);
    let (rc, v) = s.apply(&p1, &[], true);
    assert_eq!((rc, code(&v)), (1, "PROPOSAL_NOT_APPROVED"), "{e}: {v}");
    assert_eq!(s.state(&p1), "pending_review");
    assert_eq!(db.total_writes().await, 0);

    // Approved; a dry run reports would_apply, writes nothing, records nothing.
    s.approve(&p1);
    let (rc, v) = s.apply(&p1, &["--dry-run"], true);
    assert_eq!((rc, status(&v)), (0, "would_apply"), "{e}: {v}");
    assert_eq!(v["receipt"]["dry_run"], true);
    assert_eq!(s.state(&p1), "approved");
    assert!(s.store().receipts_for(&p1).unwrap().is_empty());
    assert_eq!(db.fee("INV-1").await, 5500);
    assert_eq!(db.source_receipts().await, 0);

    // No writer credential: failed, nothing written; the proposal may be retried.
    let (rc, v) = s.apply(&p1, &[], false);
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "failed", "WRITER_CREDENTIAL_MISSING"),
        "{e}: {v}"
    );
    assert_eq!(s.state(&p1), "failed");
    assert_eq!(db.total_writes().await, 0);

    // Retry with the writer: exactly one row changes, once.
    let (rc, v) = s.apply(&p1, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert_eq!(v["state"], "applied");
    assert_eq!(v["receipt"]["rows_affected"], 1);
    assert!(v["receipt"]["receipt_hash"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(s.state(&p1), "applied");
    assert_eq!(db.fee("INV-1").await, 2500);
    assert_eq!((db.writes("INV-1").await, db.total_writes().await), (1, 1), "{e}");
    assert_eq!(db.source_receipts().await, 1);
    let receipts = s.store().receipts_for(&p1).unwrap();
    let statuses: Vec<&str> = receipts.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "applied"], "{e}");
    assert_eq!(receipts[1].receipt["receipt_hash"], v["receipt"]["receipt_hash"]);

    // Again: already applied, nothing changes.
    let (rc, v) = s.apply(&p1, &[], true);
    assert_eq!((rc, status(&v)), (0, "already_applied"), "{e}: {v}");
    assert_eq!(db.writes("INV-1").await, 1);
    assert_eq!(s.store().receipts_for(&p1).unwrap().len(), 2);

    // Human output: the checklist and the replay command.
    let out = s.run(&["apply", &p1], &[("TEST_WRITE_URL", &db.write_url)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("approved by alice") && t.contains(&format!("replay {p1}")),
        "{t}"
    );
    assert!(!t.contains("write_pw") && !t.contains("read_pw"), "{t}");

    // The row changed after the proposal: conflict, the proposal is closed, nothing written.
    let p4 = fee_proposal(&s, "INV-4", 10).await;
    s.approve(&p4);
    db.exec(&db.touch_sql("INV-4")).await;
    let (rc, v) = s.apply(&p4, &[], true);
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "conflict", "VERSION_CONFLICT"),
        "{e}: {v}"
    );
    assert_eq!(s.state(&p4), "conflict");
    assert_eq!(db.fee("INV-4").await, 800);
    assert_eq!(db.writes("INV-4").await, 1, "{e}: only the admin's change");
    assert_eq!(db.source_receipts().await, 1, "{e}: no conflict stored in the source");
    let out = s.run(&["apply", &p4], &[("TEST_WRITE_URL", &db.write_url)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("propose again"), "{}", text(&out));
    // ... and a fresh proposal on the new row is approved and applied.
    let p4b = fee_proposal(&s, "INV-4", 10).await;
    assert_ne!(p4b, p4);
    s.approve(&p4b);
    let (rc, v) = s.apply(&p4b, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert_eq!(db.fee("INV-4").await, 10);

    // Another tenant's row: the runtime cannot propose it, and a crafted ledger proposal that
    // points at it under this tenant's guard finds no row.
    let (v, is_error) = s
        .runtime
        .call_envelope(
            "billing.propose_late_fee",
            &json!({"invoice_id": "INV-9", "late_fee_cents": 1}),
            &Caller::Process,
        )
        .await;
    assert!(is_error);
    assert_eq!(v["error"]["code"], "NOT_FOUND_IN_TENANT");
    let p3 = fee_proposal(&s, "INV-3", 1).await;
    let crafted = record_crafted(&s, &p3, "INV-9");
    s.approve(&crafted);
    let (rc, v) = s.apply(&crafted, &[], true);
    assert_eq!((rc, status(&v), code(&v)), (1, "conflict", "ROW_NOT_FOUND"), "{e}: {v}");
    assert_eq!(s.state(&crafted), "conflict");
    assert_eq!((db.fee("INV-9").await, db.writes("INV-9").await), (9900, 0), "{e}");

    // Two processes apply the same proposal at once: the row is written once.
    s.approve(&p3);
    let writes = db.writes("INV-3").await;
    let a = s
        .command(&["apply", &p3, "--json"], &[("TEST_WRITE_URL", &db.write_url)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = s
        .command(&["apply", &p3, "--json"], &[("TEST_WRITE_URL", &db.write_url)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(db.writes("INV-3").await, writes + 1, "{e}: {} / {}", text(&a), text(&b));
    assert_eq!(db.fee("INV-3").await, 1);
    assert!(a.status.success() || b.status.success(), "{} / {}", text(&a), text(&b));
    let outcomes: Vec<String> = [&a, &b]
        .iter()
        .map(|o| {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            v["receipt"]["status"]
                .as_str()
                .or_else(|| v["error"]["code"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{e}: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| ["applied", "already_applied", "APPLY_IN_PROGRESS"].contains(&o.as_str())),
        "{e}: {outcomes:?}"
    );
    assert_eq!(s.state(&p3), "applied");

    // Microsecond timestamps: a row 1 µs newer is a conflict; a fresh proposal applies.
    let p2 = fee_proposal(&s, "INV-2", 42).await;
    s.approve(&p2);
    db.exec(&db.bump_micro_sql("INV-2")).await;
    let (rc, v) = s.apply(&p2, &[], true);
    assert_eq!((rc, code(&v)), (1, "VERSION_CONFLICT"), "{e}: {v}");
    let p2b = fee_proposal(&s, "INV-2", 42).await;
    s.approve(&p2b);
    let (rc, v) = s.apply(&p2b, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert!(
        v["receipt"]["previous_version"].as_str().unwrap().contains(".123457"),
        "{e}: {v}"
    );
    assert_eq!(db.fee("INV-2").await, 42);

    // Replay shows the receipts.
    let out = s.run(&["replay", &p1, "--json"], &[]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["replay"]["receipts"].as_array().unwrap().len(), 2);
}

/// No receipts table: apply fails with the hint and writes nothing; an admin runs
/// `db init-receipts`, and the retry applies.
/// A capability scoped to its principal (`target.principal_key: owner`): a row owned by another
/// principal of the same tenant cannot be proposed on, and a row whose owner changed after the
/// proposal is not written.
async fn principal_scope(db: WDb) {
    let e = db.engine.as_str();
    let scoped = json!({"schema": db.schema, "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id", "principal_key": "owner"});
    let s = Setup::new(
        db,
        json!({"capabilities": [{
            "name": "billing.propose_own_fee", "kind": "proposal", "source": "main",
            "description": "Propose a late fee on one of my invoices.", "target": scoped,
            "args": {"invoice_id": {"type": "string", "max_length": 64}, "late_fee_cents": {"type": "number", "minimum": 0, "maximum": 100000}},
            "lookup": {"id_from_arg": "invoice_id"},
            "visible_columns": ["id", "late_fee_cents"],
            "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
            "allowed_columns": ["late_fee_cents"],
            "conflict_guard": {"column": "updated_at"}
        }]}),
    );
    let db = &s.db;
    db.exec("UPDATE invoices SET owner = 'other.agent' WHERE id = 'INV-4'")
        .await;

    // Another principal's row of the same tenant looks like no row at all.
    let (v, is_error) = s
        .runtime
        .call_envelope(
            "billing.propose_own_fee",
            &json!({"invoice_id": "INV-4", "late_fee_cents": 1}),
            &Caller::Process,
        )
        .await;
    assert!(is_error, "{e}: {v}");
    assert_eq!(v["error"]["code"], "NOT_FOUND_IN_TENANT", "{e}: {v}");

    // Its own row: proposed with the principal guard, applied where tenant and owner still hold.
    let own = s
        .propose(
            "billing.propose_own_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1200}),
        )
        .await;
    let cs = s.proposal(&own).change_set;
    assert_eq!(cs.guards.principal.as_ref().map(|p| p.column.as_str()), Some("owner"));
    assert_eq!(
        cs.guards.principal.as_ref().map(|p| p.value.clone()),
        Some(json!("agent.test"))
    );
    s.approve(&own);
    let (rc, v) = s.apply(&own, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert!(v["receipt"].to_string().contains("principal_guard"), "{e}: {v}");
    assert_eq!(db.fee("INV-1").await, 1200);

    // Reassigned between approval and apply: nothing is written.
    let moved = s
        .propose(
            "billing.propose_own_fee",
            json!({"invoice_id": "INV-3", "late_fee_cents": 1300}),
        )
        .await;
    s.approve(&moved);
    db.exec("UPDATE invoices SET owner = 'other.agent' WHERE id = 'INV-3'")
        .await;
    let writes_mid = db.total_writes().await;
    let (rc, v) = s.apply(&moved, &[], true);
    assert_eq!(rc, 1, "{e}: {v}");
    assert_ne!(status(&v), "applied", "{e}: {v}");
    assert_eq!(code(&v), "ROW_NOT_FOUND", "{e}: {v}");
    assert_eq!(db.fee("INV-3").await, 700);
    assert_eq!(db.total_writes().await, writes_mid, "{e}");
    assert_eq!(db.fee("INV-4").await, 800, "{e}");
}

async fn missing_receipts_table(db: WDb) {
    let e = db.engine.as_str();
    let admin = db.admin_url.clone();
    let s = Setup::new(db, json!({}));
    let db = &s.db;
    let p = fee_proposal(&s, "INV-1", 1234).await;
    s.approve(&p);
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, status(&v), code(&v)),
        (1, "failed", "RECEIPTS_TABLE_MISSING"),
        "{e}: {v}"
    );
    let msg = v["receipt"]["message"].as_str().unwrap();
    assert!(msg.contains("db init-receipts") && msg.contains("doctor"), "{msg}");
    assert_eq!(s.state(&p), "failed");
    assert_eq!((db.fee("INV-1").await, db.total_writes().await), (5500, 0));

    // Doctor sees it too.
    let out = s.run(&["doctor"], &[("TEST_WRITE_URL", &db.write_url)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("init-receipts"), "{}", text(&out));

    // The writer may not create it (least privilege) ...
    if db.engine != synapsor_core::config::Engine::Sqlite {
        let out = s.run(
            &["db", "init-receipts", "--source", "main"],
            &[("TEST_WRITE_URL", &db.write_url)],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("--admin-url-env"), "{}", text(&out));
    }
    // ... an admin does, and grants the writer.
    let out = s.run(
        &[
            "db",
            "init-receipts",
            "--source",
            "main",
            "--admin-url-env",
            "TEST_ADMIN_URL",
        ],
        &[("TEST_WRITE_URL", &db.write_url), ("TEST_ADMIN_URL", &admin)],
    );
    let t = text(&out);
    assert!(out.status.success(), "{e}: {t}");
    assert!(t.contains("Created"), "{t}");
    assert!(!t.contains("write_pw"), "{t}");
    if let Some((userinfo, _)) = admin.split_once('@') {
        assert!(!t.contains(userinfo), "{t}");
    }

    let out = s.run(&["doctor", "--json"], &[("TEST_WRITE_URL", &db.write_url)]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["ok"], true, "{e}: {d}");

    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert_eq!((db.fee("INV-1").await, db.writes("INV-1").await), (1234, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_apply_lifecycle() {
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    lifecycle(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_missing_receipts_table() {
    let Some(db) = RUNNER.postgres(false).await else {
        return;
    };
    missing_receipts_table(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_apply_lifecycle() {
    let Some(db) = RUNNER.mysql(true).await else {
        return;
    };
    lifecycle(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_missing_receipts_table() {
    let Some(db) = RUNNER.mysql(false).await else {
        return;
    };
    missing_receipts_table(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_apply_lifecycle() {
    lifecycle(RUNNER.sqlite(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_missing_receipts_table() {
    missing_receipts_table(RUNNER.sqlite(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_principal_scope() {
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    principal_scope(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_principal_scope() {
    let Some(db) = RUNNER.mysql(true).await else {
        return;
    };
    principal_scope(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_principal_scope() {
    principal_scope(RUNNER.sqlite(true)).await;
}
