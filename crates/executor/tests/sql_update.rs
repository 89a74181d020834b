//! The `sql_update` executor against real PostgreSQL, MariaDB and SQLite, with a least-privilege
//! writer. Proposals are built the way the runtime builds them: a scoped read through the source
//! crate, then `build_patch` and `ChangeSet::build`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, RUNNER};
use serde_json::{Value, json};
use synapsor_core::capability::{Capability, Provenance, TrustedContext, compile};
use synapsor_core::changeset::{ChangeSet, ChangeSetInput, EvidenceRef};
use synapsor_core::config::{Mode, RunnerConfig, parse_config};
use synapsor_executor::{
    ApplyRequest, Executor, Receipt, ReceiptStatus, SqlUpdateExecutor, WriterSettings, check_receipts, init_receipts,
};
use synapsor_source::{LookupValue, ScopedRead, open_source};

fn config(db: &Db) -> RunnerConfig {
    let inv = json!({"schema": db.schema, "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    let doc = json!({
        "version": 1, "mode": "review",
        "sources": {"main": {"engine": db.engine_name(), "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 4000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.propose_late_fee", "kind": "proposal", "source": "main",
                "description": "Propose a late fee.", "target": inv,
                "args": {"invoice_id": {"type": "string"}, "late_fee_cents": {"type": "number"}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
                "allowed_columns": ["late_fee_cents"],
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "billing.propose_status", "kind": "proposal", "source": "main",
                "description": "Propose a status.", "target": inv,
                "args": {"invoice_id": {"type": "string"}, "status": {"type": "string"}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "status"],
                "patch": {"status": {"from_arg": "status"}},
                "allowed_columns": ["status"],
                "transition_guards": {"status": {"allowed": {"open": ["paid", "void"], "paid": ["refunded"]}}},
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "orders.ship", "kind": "proposal", "source": "main",
                "description": "Ship an order.",
                "target": {"schema": db.schema, "table": "orders", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"order_id": {"type": "number"}},
                "lookup": {"id_from_arg": "order_id"},
                "visible_columns": ["id", "status", "total_cents"],
                "patch": {"status": {"fixed": "shipped"}},
                "allowed_columns": ["status"],
                "conflict_guard": {"weak_guard_ack": true}
            }
        ]
    });
    parse_config(&doc.to_string())
        .unwrap_or_else(|r| panic!("{:?}", r.errors))
        .0
}

struct H {
    db: Db,
    cfg: RunnerConfig,
    caps: Vec<Capability>,
}

impl H {
    fn new(db: Db) -> H {
        let cfg = config(&db);
        let caps = compile(&cfg).unwrap();
        H { db, cfg, caps }
    }

    fn cap(&self, name: &str) -> &Capability {
        self.caps.iter().find(|c| c.name == name).unwrap()
    }

    /// A proposal as the runtime would record it, for tenant `acme`.
    async fn propose(&self, cap: &str, args: Value) -> ChangeSet {
        let cap = self.cap(cap);
        let env = std::collections::HashMap::from([("TEST_READ_URL".to_owned(), self.db.read_url.clone())]);
        let src = open_source("main", &self.cfg.sources["main"], &env).unwrap();
        let checked = cap.check_args(&args).unwrap();
        let id = LookupValue::from_json(&checked.values[&cap.lookup_arg]).unwrap();
        let row = src
            .read_scoped(&ScopedRead {
                spec: &cap.read,
                id,
                tenant: Some("acme"),
                principal: Some("agent.test"),
            })
            .await
            .unwrap()
            .expect("row in tenant");
        let built = cap.build_patch(&checked, &row).unwrap();
        ChangeSet::build(ChangeSetInput {
            capability: cap,
            mode: Mode::Review,
            context: &TrustedContext {
                tenant_id: "acme".into(),
                principal: "agent.test".into(),
                provenance: Provenance::Environment,
                identity: None,
            },
            object_id: &checked.lookup_id,
            built,
            evidence: EvidenceRef {
                bundle_id: "ev_test".into(),
                query_fingerprint: "fp".into(),
            },
            proposal_id: common::unique("wrp"),
            created_at: "2026-06-23T09:00:00.000Z".into(),
        })
    }

    async fn apply_with(&self, cap: &Capability, cs: &ChangeSet, dry_run: bool, writer: Option<&str>) -> Receipt {
        let env: std::collections::HashMap<String, String> = writer
            .map(|w| ("TEST_WRITE_URL".to_owned(), w.to_owned()))
            .into_iter()
            .collect();
        let r = SqlUpdateExecutor
            .apply(ApplyRequest {
                change_set: cs,
                capability: cap,
                source_name: "main",
                source: &self.cfg.sources["main"],
                env: &env,
                executed_at: "2026-06-23T10:00:00.000Z".into(),
                dry_run,
                approvals: Vec::new(),
            })
            .await;
        assert!(r.hash_is_intact(), "{r:?}");
        assert_eq!(r.dry_run, dry_run);
        r
    }

    async fn apply(&self, cs: &ChangeSet) -> Receipt {
        self.apply_with(self.cap(&cs.action), cs, false, Some(&self.db.write_url))
            .await
    }

    async fn int(&self, sql: &str) -> i64 {
        self.db.int(sql).await
    }

    async fn count(&self, id: &str) -> i64 {
        self.db.writes(id).await
    }
}

fn code(r: &Receipt) -> &str {
    r.safe_error_code.as_deref().unwrap_or("-")
}

async fn contract(h: &H) {
    let e = h.db.engine_name();

    // Apply: exactly one row, once.
    let cs = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 2500}),
        )
        .await;
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-1'").await,
        5500
    );
    let r = h.apply(&cs).await;
    assert_eq!(r.status, ReceiptStatus::Applied, "{e}: {r:?}");
    assert_eq!((r.rows_affected, r.source_database_mutated), (1, true));
    assert!(r.receipt_hash.starts_with("sha256:"));
    assert_eq!(r.idempotency_key, synapsor_executor::idempotency_key(&cs));
    assert!(r.new_version.is_some(), "{e}: {r:?}");
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-1'").await,
        2500
    );
    assert_eq!(h.count("INV-1").await, 1, "{e}");
    assert_eq!(
        h.int("SELECT sum(apply_count) FROM invoices").await,
        1,
        "{e}: one row only"
    );
    assert_eq!(h.db.source_receipts().await, 1);
    assert_eq!(
        h.int("SELECT count(*) FROM synapsor_writeback_receipts WHERE status = 'applied'")
            .await,
        1
    );

    // Again: already applied, nothing touched (the version guard alone would pass: the patch
    // does not move updated_at).
    let again = h.apply(&cs).await;
    assert_eq!(again.status, ReceiptStatus::AlreadyApplied, "{e}: {again:?}");
    assert_eq!(again.rows_affected, 0);
    assert_eq!(again.applied_receipt_hash.as_deref(), Some(r.receipt_hash.as_str()));
    assert_eq!(h.count("INV-1").await, 1, "{e}: not written twice");
    let dry_again = h.apply_with(h.cap(&cs.action), &cs, true, Some(&h.db.write_url)).await;
    assert_eq!(dry_again.status, ReceiptStatus::AlreadyApplied);

    // Dry run: would apply, changes nothing, records nothing.
    let cs3 = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-3", "late_fee_cents": 100}),
        )
        .await;
    let dry = h
        .apply_with(h.cap(&cs3.action), &cs3, true, Some(&h.db.write_url))
        .await;
    assert_eq!(dry.status, ReceiptStatus::WouldApply, "{e}: {dry:?}");
    assert_eq!((dry.rows_affected, dry.source_database_mutated), (0, false));
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3'").await,
        700
    );
    assert_eq!(h.count("INV-3").await, 0);
    assert_eq!(h.db.source_receipts().await, 1);

    // Missing writer credential: failed, nothing written; retry with it applies.
    let missing = h.apply_with(h.cap(&cs3.action), &cs3, false, None).await;
    assert_eq!(missing.status, ReceiptStatus::Failed);
    assert_eq!(code(&missing), "WRITER_CREDENTIAL_MISSING");
    assert!(missing.message.contains("TEST_WRITE_URL"), "{}", missing.message);
    assert!(h.apply(&cs3).await.status == ReceiptStatus::Applied);
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3'").await,
        100
    );

    // The row changed after the proposal: conflict, rolled back, and no conflict is remembered
    // in the receipts table; a fresh proposal on the new row applies.
    let cs4 = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-4", "late_fee_cents": 10}),
        )
        .await;
    h.db.exec(&h.db.touch_sql("INV-4")).await;
    let c = h.apply(&cs4).await;
    assert_eq!(
        (c.status, code(&c)),
        (ReceiptStatus::Conflict, "VERSION_CONFLICT"),
        "{e}: {c:?}"
    );
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-4'").await,
        800
    );
    assert_eq!(h.count("INV-4").await, 1, "{e}: only the admin's change");
    assert_eq!(
        h.db.source_receipts().await,
        2,
        "{e}: conflicts are not stored in the source"
    );
    let fresh = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-4", "late_fee_cents": 10}),
        )
        .await;
    assert_ne!(fresh.digest, cs4.digest);
    assert_eq!(h.apply(&fresh).await.status, ReceiptStatus::Applied);
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-4'").await,
        10
    );

    // Another tenant's row: a crafted change set (intact digest) pointing at globex's INV-9
    // under acme's tenant guard finds no row.
    let mut cross = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1}),
        )
        .await;
    cross.source.primary_key.value = json!("INV-9");
    cross.scope.object_id = "INV-9".into();
    cross.digest = cross.compute_digest();
    let x = h.apply(&cross).await;
    assert_eq!(
        (x.status, code(&x)),
        (ReceiptStatus::Conflict, "ROW_NOT_FOUND"),
        "{e}: {x:?}"
    );
    // ... and one whose tenant guard names globex is refused before any IO.
    let mut tampered = cross.clone();
    tampered.guards.tenant.as_mut().unwrap().value = json!("globex");
    tampered.digest = tampered.compute_digest();
    let t = h.apply(&tampered).await;
    assert_eq!((t.status, code(&t)), (ReceiptStatus::Failed, "TENANT_GUARD_MISMATCH"));
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-9'").await,
        9900
    );
    assert_eq!(h.count("INV-9").await, 0);

    // The current config is enforced: a tightened bound refuses an approved change set.
    let big = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 9000}),
        )
        .await;
    let mut tightened = h.cap("billing.propose_late_fee").clone();
    tightened.numeric_bounds["late_fee_cents"].maximum = Some(5000.0);
    let p = h.apply_with(&tightened, &big, false, Some(&h.db.write_url)).await;
    assert_eq!((p.status, code(&p)), (ReceiptStatus::Failed, "PATCH_ABOVE_MAXIMUM"));
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-1'").await,
        2500
    );

    // The status moved under the same version (nobody bumped updated_at): the approved
    // "before" no longer holds, so it is a conflict, not a blind overwrite.
    let pay = h
        .propose(
            "billing.propose_status",
            json!({"invoice_id": "INV-3", "status": "paid"}),
        )
        .await;
    h.db.exec("UPDATE invoices SET status = 'void' WHERE id = 'INV-3'")
        .await;
    let tr = h.apply(&pay).await;
    assert_eq!(
        (tr.status, code(&tr)),
        (ReceiptStatus::Conflict, "VERSION_CONFLICT"),
        "{e}: {tr:?}"
    );
    // Transition guards of the current config are checked against the locked row.
    h.db.exec("UPDATE invoices SET status = 'open' WHERE id = 'INV-3'")
        .await;
    let pay = h
        .propose(
            "billing.propose_status",
            json!({"invoice_id": "INV-3", "status": "paid"}),
        )
        .await;
    let mut stricter = h.cap("billing.propose_status").clone();
    stricter.transition_guards["status"]
        .allowed
        .insert("open".into(), vec!["void".into()]);
    let tr = h.apply_with(&stricter, &pay, false, Some(&h.db.write_url)).await;
    assert_eq!(
        (tr.status, code(&tr)),
        (ReceiptStatus::Failed, "TRANSITION_NOT_ALLOWED"),
        "{e}: {tr:?}"
    );
    assert_eq!(
        h.int("SELECT count(*) FROM invoices WHERE id = 'INV-3' AND status = 'open'")
            .await,
        1
    );
    let refund = h
        .propose(
            "billing.propose_status",
            json!({"invoice_id": "INV-2", "status": "refunded"}),
        )
        .await;
    assert_eq!(h.apply(&refund).await.status, ReceiptStatus::Applied);

    // Weak (row hash) guard: applies on an unchanged row, conflicts on a changed one.
    let ship = h.propose("orders.ship", json!({"order_id": 1001})).await;
    assert_eq!(ship.guards.expected_version.column, "__row_hash");
    let s = h.apply(&ship).await;
    assert_eq!(s.status, ReceiptStatus::Applied, "{e}: {s:?}");
    let ship2 = h.propose("orders.ship", json!({"order_id": 1001})).await;
    h.db.exec("UPDATE orders SET total_cents = 5001 WHERE id = 1001").await;
    let s2 = h.apply(&ship2).await;
    assert_eq!(
        (s2.status, code(&s2)),
        (ReceiptStatus::Conflict, "VERSION_CONFLICT"),
        "{e}: {s2:?}"
    );
    assert_eq!(h.int("SELECT apply_count FROM orders WHERE id = 1001").await, 2);

    // Timestamps at microsecond precision: a 1 µs newer row is a conflict; a proposal on it applies.
    let micro = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-2", "late_fee_cents": 42}),
        )
        .await;
    h.db.exec(&h.db.bump_micro_sql("INV-2")).await;
    let m = h.apply(&micro).await;
    assert_eq!(
        (m.status, code(&m)),
        (ReceiptStatus::Conflict, "VERSION_CONFLICT"),
        "{e}: {m:?}"
    );
    let micro2 = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-2", "late_fee_cents": 42}),
        )
        .await;
    let m2 = h.apply(&micro2).await;
    assert_eq!(m2.status, ReceiptStatus::Applied, "{e}: {m2:?}");
    let v = m2.previous_version.as_str().unwrap();
    assert!(v.contains(".123457"), "{e}: microseconds kept: {v}");

    // Two executors on separate connections at once: one writes, the other sees the receipt.
    for (n, id) in ["INV-1", "INV-3", "INV-4"].iter().enumerate() {
        let cs = h
            .propose(
                "billing.propose_late_fee",
                json!({"invoice_id": id, "late_fee_cents": 3000 + n}),
            )
            .await;
        let before = h.count(id).await;
        let (a, b) = tokio::join!(h.apply(&cs), h.apply(&cs));
        let mut statuses = [a.status.as_str(), b.status.as_str()];
        statuses.sort();
        assert_eq!(statuses, ["already_applied", "applied"], "{e}: {a:?} {b:?}");
        assert_eq!(h.count(id).await, before + 1, "{e}: written once");
    }

    // The writer passes doctor's check; the read role cannot write receipts.
    let settings = WriterSettings::for_source(&h.cfg.sources["main"]);
    let ok = check_receipts(h.db.engine, &h.db.write_url, &h.db.schema, &settings)
        .await
        .unwrap();
    assert!(ok.present && ok.writable == Some(true), "{e}: {ok:?}");
    if h.db.engine != synapsor_core::config::Engine::Sqlite {
        let ro = check_receipts(h.db.engine, &h.db.read_url, &h.db.schema, &settings)
            .await
            .unwrap();
        assert_eq!(ro.writable, Some(false), "{e}: {ro:?}");
    }
}

/// Without the receipts table: failed with the hint and nothing written; an admin creates it
/// (and grants the writer), and the retry applies.
async fn missing_receipts_table(h: &H, admin_url: &str) {
    let e = h.db.engine_name();
    assert_eq!(h.db.source_receipts().await, -1);
    let cs = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1234}),
        )
        .await;
    let r = h.apply(&cs).await;
    assert_eq!(
        (r.status, code(&r)),
        (ReceiptStatus::Failed, "RECEIPTS_TABLE_MISSING"),
        "{e}: {r:?}"
    );
    assert!(r.message.contains("db init-receipts"), "{}", r.message);
    assert!(r.message.contains("doctor"), "{}", r.message);
    assert_eq!(
        h.int("SELECT late_fee_cents FROM invoices WHERE id = 'INV-1'").await,
        5500
    );
    assert_eq!(h.count("INV-1").await, 0);
    assert_eq!(h.db.source_receipts().await, -1, "{e}: apply never creates tables");

    let settings = WriterSettings::for_source(&h.cfg.sources["main"]);
    let writer = (!h.db.writer.is_empty()).then_some(h.db.writer.as_str());
    let report = init_receipts(h.db.engine, admin_url, &h.db.schema, writer, &settings)
        .await
        .unwrap();
    assert!(report.created);
    let again = init_receipts(h.db.engine, admin_url, &h.db.schema, writer, &settings)
        .await
        .unwrap();
    assert!(!again.created, "idempotent");
    let r = h.apply(&cs).await;
    assert_eq!(r.status, ReceiptStatus::Applied, "{e}: {r:?}");
    assert_eq!(h.count("INV-1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sql_update() {
    let Some(db) = RUNNER.postgres(true).await else { return };
    contract(&H::new(db)).await;
    let Some(db) = RUNNER.postgres(false).await else {
        return;
    };
    let admin = db.admin_url.clone();
    missing_receipts_table(&H::new(db), &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_sql_update() {
    let Some(db) = RUNNER.mysql(true).await else { return };
    contract(&H::new(db)).await;
    let Some(db) = RUNNER.mysql(false).await else { return };
    let admin = db.admin_url.clone();
    missing_receipts_table(&H::new(db), &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sql_update() {
    contract(&H::new(RUNNER.sqlite(true))).await;
    let db = RUNNER.sqlite(false);
    let admin = db.admin_url.clone();
    missing_receipts_table(&H::new(db), &admin).await;
}

#[tokio::test]
async fn unreachable_or_invalid_writer_fails_safely() {
    let db = RUNNER.sqlite(true);
    let h = H::new(db);
    let cs = h
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1}),
        )
        .await;
    let r = h
        .apply_with(h.cap(&cs.action), &cs, false, Some("sqlite:///nonexistent/dir/x.db"))
        .await;
    assert_eq!((r.status, code(&r)), (ReceiptStatus::Failed, "DATABASE_UNAVAILABLE"));
    assert!(!r.message.contains("nonexistent"), "no driver text: {}", r.message);
}
