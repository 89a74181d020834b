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

    // Eight processes apply the same proposal at once: the row is written once, one reports
    // applied, the others wait for it and report already_applied; all exit 0.
    s.approve(&p3);
    let writes = db.writes("INV-3").await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            s.command(&["apply", &p3, "--json"], &[("TEST_WRITE_URL", &db.write_url)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = racers.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let all = outs.iter().map(text).collect::<Vec<_>>().join("\n");
    assert_eq!(db.writes("INV-3").await, writes + 1, "{e}: {all}");
    assert_eq!(db.fee("INV-3").await, 1);
    let outcomes: Vec<(i32, String)> = outs
        .iter()
        .map(|o| {
            let (rc, v) = writeback_support::apply_json(o);
            (rc, status(&v).to_owned())
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|(_, st)| st == "applied").count(),
        1,
        "{e}: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|(rc, st)| *rc == 0 && ["applied", "already_applied"].contains(&st.as_str())),
        "{e}: {outcomes:?}"
    );
    assert_eq!(s.state(&p3), "applied");
    let receipts = s.store().receipts_for(&p3).unwrap();
    assert_eq!(receipts.iter().filter(|r| r.status == "applied").count(), 1, "{e}");

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

/// An apply that died (SIGKILL, a crash) leaves its proposal in `applying`. Two instants matter:
/// before the source committed (the resumed apply writes it) and after the commit but before the
/// ledger recorded it, where the resumed apply writes nothing and the ledger still records the
/// write as the proposal's. Either way the next `apply` of any proposal resumes it: nothing waits
/// for a person. The states are made exactly: the CAS to `applying` alone, and a ledger copied
/// from just after that CAS put back over one whose apply then committed.
async fn interrupted_apply(db: WDb) {
    let e = db.engine.as_str();
    let s = Setup::new(db, json!({}));
    let db = &s.db;
    let at = now();
    let to_applying = |id: &str| {
        s.store()
            .transition(
                id,
                synapsor_core::ProposalState::Approved,
                synapsor_core::ProposalState::Applying,
                "operator.test",
                json!({"executor": "sql_update", "retry": false}),
                &at,
            )
            .unwrap();
    };

    // Died before the source was touched: applying it again writes it, once.
    let before = fee_proposal(&s, "INV-1", 2600).await;
    s.approve(&before);
    to_applying(&before);
    let (rc, v) = s.apply(&before, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    assert_eq!((db.fee("INV-1").await, db.writes("INV-1").await), (2600, 1), "{e}");

    // Died after the commit, before the ledger recorded it: the real apply runs against a
    // snapshot of the ledger taken when the proposal was approved (so the source commits, and
    // its receipts table says so), and the live ledger gets only the dead run's CAS.
    let after = fee_proposal(&s, "INV-2", 60).await;
    s.approve(&after);
    let snapshot = s.dir.path().join("ledger-snapshot.db");
    rusqlite::Connection::open(&s.store_path)
        .unwrap()
        .execute("VACUUM INTO ?1", [snapshot.to_str().unwrap()])
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synapsor-runner"))
        .arg("--config")
        .arg(&s.config_path)
        .arg("--store")
        .arg(&snapshot)
        .args(["apply", &after, "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "operator.test")
        .env("TEST_WRITE_URL", &db.write_url)
        .output()
        .unwrap();
    let (rc, v) = writeback_support::apply_json(&out);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {v}");
    to_applying(&after);
    assert_eq!(s.state(&after), "applying");
    assert!(s.store().receipts_for(&after).unwrap().is_empty());
    let writes = db.total_writes().await;

    // The next apply, of another proposal, resumes it first and says so.
    let other = fee_proposal(&s, "INV-3", 70).await;
    s.approve(&other);
    let out = s
        .command(&["apply", &other, "--json"], &[("TEST_WRITE_URL", &db.write_url)])
        .output()
        .unwrap();
    let (rc, v) = writeback_support::apply_json(&out);
    assert_eq!((rc, status(&v)), (0, "applied"), "{e}: {}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "{after} was left in applying by an apply that stopped; resumed: applied"
        )),
        "{e}: {}",
        text(&out)
    );
    assert_eq!(
        db.total_writes().await,
        writes + 1,
        "{e}: only the other proposal's write"
    );
    // The ledger now says the proposal made its write, with the rows that run changed.
    assert_eq!(s.state(&after), "applied");
    let receipts = s.store().receipts_for(&after).unwrap();
    assert_eq!(receipts.len(), 1, "{e}: {receipts:?}");
    assert_eq!((receipts[0].status.as_str(), receipts[0].rows_affected), ("applied", 1));
    let checks = receipts[0].receipt["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["name"] == "recovered"), "{e}: {checks:?}");
    assert_eq!(db.fee("INV-2").await, 60);
    // Applying it again now finds the ledger's receipt and exits 0.
    let (rc, v) = s.apply(&after, &[], true);
    assert_eq!((rc, status(&v)), (0, "already_applied"), "{e}: {v}");
}

/// `conflict_guard.advance`: apply moves the version column itself (these tables' apps do not),
/// so a proposal made before another one applied conflicts, even when it changes another column
/// (the before-value check only covers its own columns). Without it (the control) the second
/// applies over a row it never saw.
async fn version_advance(db: WDb) {
    let e = db.engine.as_str();
    db.exec("ALTER TABLE invoices ADD COLUMN row_version integer NOT NULL DEFAULT 1")
        .await;
    let base = writeback_support::config_doc(&db, std::path::Path::new("x"), json!({}));
    let fee = base["capabilities"][0].clone();
    let mut caps = Vec::new();
    for (mode, guard) in [
        ("control", json!({"column": "updated_at"})),
        ("timed", json!({"column": "updated_at", "advance": "timestamp"})),
        ("counted", json!({"column": "row_version", "advance": "increment"})),
    ] {
        let mut f = fee.clone();
        f["name"] = json!(format!("billing.fee_{mode}"));
        f["conflict_guard"] = guard.clone();
        let mut n = fee.clone();
        n["name"] = json!(format!("billing.note_{mode}"));
        n["conflict_guard"] = guard;
        n["args"] =
            json!({"invoice_id": {"type": "string", "max_length": 64}, "note": {"type": "string", "max_length": 200}});
        n["patch"] = json!({"note": {"from_arg": "note"}});
        n["allowed_columns"] = json!(["note"]);
        n.as_object_mut().unwrap().remove("numeric_bounds");
        caps.push(f);
        caps.push(n);
    }
    let s = Setup::new(db, json!({"capabilities": caps}));
    let db = &s.db;
    let propose = |tool: String, args: serde_json::Value| {
        let s = &s;
        async move {
            let id = s.propose(&tool, args).await;
            s.approve(&id);
            id
        }
    };

    for (mode, invoice) in [("control", "INV-3"), ("timed", "INV-1"), ("counted", "INV-2")] {
        // Two proposals on the same row, made on the same version, changing different columns.
        let first = propose(
            format!("billing.fee_{mode}"),
            json!({"invoice_id": invoice, "late_fee_cents": 11}),
        )
        .await;
        let second = propose(
            format!("billing.note_{mode}"),
            json!({"invoice_id": invoice, "note": "waived: first reminder"}),
        )
        .await;
        let (rc, v) = s.apply(&first, &[], true);
        assert_eq!((rc, status(&v)), (0, "applied"), "{e} {mode}: {v}");
        let (previous, new) = (&v["receipt"]["previous_version"], &v["receipt"]["new_version"]);
        let (rc, v2) = s.apply(&second, &[], true);
        if mode == "control" {
            // Nothing moved the version: the note was written on a row whose fee it never saw.
            assert_eq!(previous, new, "{e}: {v}");
            assert_eq!((rc, status(&v2)), (0, "applied"), "{e}: {v2}");
        } else {
            assert_ne!(previous, new, "{e} {mode}: the version moved: {v}");
            assert_eq!((rc, code(&v2)), (1, "VERSION_CONFLICT"), "{e} {mode}: {v2}");
            assert_eq!(db.writes(invoice).await, 1, "{e} {mode}: only the first wrote");
        }
        if mode == "counted" {
            assert_eq!((previous, new), (&json!(1), &json!(2)), "{e}: {v}");
        }
        assert_eq!(db.fee(invoice).await, 11, "{e} {mode}");
        // A proposal made on the advanced version applies.
        let third = propose(
            format!("billing.note_{mode}"),
            json!({"invoice_id": invoice, "note": "reviewed again"}),
        )
        .await;
        let (rc, v) = s.apply(&third, &[], true);
        assert_eq!((rc, status(&v)), (0, "applied"), "{e} {mode}: {v}");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_interrupted_apply() {
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    interrupted_apply(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_interrupted_apply() {
    let Some(db) = RUNNER.mysql(true).await else {
        return;
    };
    interrupted_apply(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_interrupted_apply() {
    interrupted_apply(RUNNER.sqlite(true)).await;
}

/// `apply` processes SIGKILLed at spread instants (0-40 ms after start; a debug build starts
/// slower than the 10 ms a release apply takes) across many proposals, then recovered with no
/// manual step: the next `apply` resumes what was left in `applying`, and the ones a kill caught
/// before they started are applied again. Every proposal ends `applied` with exactly one
/// `applied` receipt, and every row is written once. SYNAPSOR_KILL_PROPOSALS sets how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_apply_killed_at_random_instants_is_recovered() {
    use std::time::Duration;
    let n: usize = std::env::var("SYNAPSOR_KILL_PROPOSALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let db = &s.db;
    let rows: Vec<String> = (0..n)
        .map(|i| format!("('K-{i}', 'acme', 100, 'open', NULL, '2026-06-23T09:00:00Z')"))
        .collect();
    db.exec(&format!(
        "INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES {}",
        rows.join(", ")
    ))
    .await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = fee_proposal(&s, &format!("K-{i}"), 200 + i64::try_from(i).unwrap()).await;
        s.approve(&id);
        ids.push(id);
    }
    // A deterministic spread of delays over 0-40 ms.
    for (i, id) in ids.iter().enumerate() {
        let mut child = s
            .apply_command(id, &[], &[("TEST_WRITE_URL", &db.write_url)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = u64::try_from((i * 7919) % 40).unwrap();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let _ = child.kill(); // SIGKILL; it may have finished already
        let _ = child.wait();
    }
    let states: Vec<String> = ids.iter().map(|id| s.state(id)).collect();
    eprintln!(
        "after the kills: {} applied, {} applying, {} approved",
        states.iter().filter(|s| *s == "applied").count(),
        states.iter().filter(|s| *s == "applying").count(),
        states.iter().filter(|s| *s == "approved").count()
    );

    // Recovery: one apply of anything resumes what was left in applying.
    let last = fee_proposal(&s, "INV-1", 2500).await;
    s.approve(&last);
    let (rc, v) = s.apply(&last, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{v}");
    for id in &ids {
        assert_ne!(s.state(id), "applying", "{id} still applying after the next apply");
    }
    // Those a kill stopped before the CAS are still approved: applying them is the retry.
    for id in &ids {
        if s.state(id) == "approved" {
            let (rc, v) = s.apply(id, &[], true);
            assert_eq!((rc, status(&v)), (0, "applied"), "{id}: {v}");
        }
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.state(id), "applied", "{id}");
        let receipts = s.store().receipts_for(id).unwrap();
        assert_eq!(
            receipts.iter().filter(|r| r.status == "applied").count(),
            1,
            "{id}: {receipts:?}"
        );
        let row = format!("K-{i}");
        assert_eq!(db.writes(&row).await, 1, "{row} written once");
        assert_eq!(db.fee(&row).await, 200 + i64::try_from(i).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_version_advance() {
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    version_advance(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_version_advance() {
    let Some(db) = RUNNER.mysql(true).await else {
        return;
    };
    version_advance(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_version_advance() {
    version_advance(RUNNER.sqlite(true)).await;
}

/// A setup on `db` with an approved proposal of a 1234 fee on INV-1.
async fn approved_fee_on_inv1(db: WDb) -> (Setup, String) {
    let s = Setup::new(db, json!({}));
    let p = fee_proposal(&s, "INV-1", 1234).await;
    s.approve(&p);
    (s, p)
}

/// The `apply` of `p`, started while INV-1 is locked elsewhere, so the writer waits inside its
/// transaction (after claiming the receipt).
fn blocked_apply(s: &Setup, p: &str) -> std::process::Child {
    s.apply_command(p, &[], &[("TEST_WRITE_URL", &s.db.write_url)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// After the writer's connection was killed and the row lock released: the apply failed
/// retryably with the runner's words (the driver's, `driver_says`, are only in the operator's
/// log on stderr), nothing was written, no claim is left, and the retry applies once.
async fn killed_apply_is_retryable(s: &Setup, p: &str, out: &std::process::Output, driver_says: &str) {
    let db = &s.db;
    let (rc, v) = writeback_support::apply_json(out);
    assert_eq!((rc, status(&v)), (1, "failed"), "{v}");
    assert_eq!(code(&v), "DATABASE_UNAVAILABLE", "{v}");
    assert_eq!(v["receipt"]["source_database_mutated"], false, "{v}");
    let receipt = String::from_utf8_lossy(&out.stdout);
    assert!(!receipt.contains(driver_says), "driver text in the receipt: {receipt}");
    assert_eq!((db.fee("INV-1").await, db.writes("INV-1").await), (5500, 0));
    assert_eq!(db.source_receipts().await, 0, "the claim was rolled back with the rest");
    assert_eq!(s.state(p), "failed");
    let (rc, v) = s.apply(p, &[], true);
    assert_eq!((rc, status(&v)), (0, "applied"), "{v}");
    assert_eq!((db.fee("INV-1").await, db.writes("INV-1").await), (1234, 1));
}

/// Polls `find` until it returns the id of the writer's waiting connection. Every 150 ms:
/// MariaDB refreshes `information_schema.INNODB_TRX` only when it was not read for 100 ms.
async fn wait_for<F, Fut, T>(mut find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(found) = find().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never waited on the row lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

/// PostgreSQL: the writer's backend terminated while it waits on the row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_connection_killed_mid_transaction() {
    use sqlx::{AssertSqlSafe, Connection};
    let Some(db) = RUNNER.postgres(true).await else {
        return;
    };
    let (s, p) = approved_fee_on_inv1(db).await;
    let mut holder = sqlx::PgConnection::connect(&s.db.admin_url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT id FROM invoices WHERE id = 'INV-1' FOR UPDATE;")
        .execute(&mut holder)
        .await
        .unwrap();
    let apply = blocked_apply(&s, &p);
    let admin = std::sync::Arc::new(tokio::sync::Mutex::new(
        sqlx::PgConnection::connect(&s.db.admin_url).await.unwrap(),
    ));
    let waiting = format!(
        "SELECT pid FROM pg_stat_activity WHERE usename = '{}' AND wait_event_type = 'Lock'",
        s.db.writer
    );
    let pid: i32 = wait_for(|| {
        let (admin, sql) = (admin.clone(), waiting.clone());
        async move {
            sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_optional(&mut *admin.lock().await)
                .await
                .unwrap()
        }
    })
    .await;
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut *admin.lock().await)
        .await
        .unwrap();
    assert!(killed);
    let out = apply.wait_with_output().unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    killed_apply_is_retryable(&s, &p, &out, "terminating connection").await;
}

/// MariaDB: the writer's thread killed (`KILL`) while it waits on the row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_writer_connection_killed_mid_transaction() {
    use sqlx::{AssertSqlSafe, Connection};
    let Some(db) = RUNNER.mysql(true).await else {
        return;
    };
    let (s, p) = approved_fee_on_inv1(db).await;
    let mut holder = sqlx::MySqlConnection::connect(&s.db.admin_url).await.unwrap();
    sqlx::raw_sql("START TRANSACTION").execute(&mut holder).await.unwrap();
    sqlx::raw_sql("SELECT id FROM invoices WHERE id = 'INV-1' FOR UPDATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let apply = blocked_apply(&s, &p);
    let admin = std::sync::Arc::new(tokio::sync::Mutex::new(
        sqlx::MySqlConnection::connect(&s.db.admin_url).await.unwrap(),
    ));
    let thread: String = wait_for(|| {
        let admin = admin.clone();
        let writer = s.db.writer.clone();
        async move {
            let mut admin = admin.lock().await;
            let users: Vec<(String, String)> =
                sqlx::query_as("SELECT CAST(ID AS CHAR), USER FROM information_schema.PROCESSLIST")
                    .fetch_all(&mut *admin)
                    .await
                    .unwrap();
            let waits: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(trx_mysql_thread_id AS CHAR), trx_state FROM information_schema.INNODB_TRX",
            )
            .fetch_all(&mut *admin)
            .await
            .unwrap();
            waits
                .into_iter()
                .filter(|(_, state)| state == "LOCK WAIT")
                .map(|(id, _)| id)
                .find(|id| users.iter().any(|(uid, user)| uid == id && *user == writer))
        }
    })
    .await;
    let thread: u64 = thread.parse().unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("KILL {thread}")))
        .execute(&mut *admin.lock().await)
        .await
        .unwrap();
    let out = apply.wait_with_output().unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    killed_apply_is_retryable(&s, &p, &out, "Connection was killed").await;
}
