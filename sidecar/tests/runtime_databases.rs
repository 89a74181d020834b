//! Reads and proposals through the real runtime against real PostgreSQL, MariaDB and SQLite.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use synapsor_core::capability::Caller;

use serde_json::{Value, json};
use synapsor_core::config::{self, ResultFormat};
use synapsor_core::context::{OverlayEnv, ProcessEnv, SystemClock};
use synapsor_ledger::{Ledger, LedgerStore};
use synapsor_runner::ids::SequentialIds;
use synapsor_runner::runtime::{Runtime, RuntimeDeps};
use synapsor_testdb::{Server, TestDb};

const PG_SEED: &str = r#"
CREATE TABLE invoices (
  id text PRIMARY KEY, tenant_id text NOT NULL, customer_name text NOT NULL,
  amount_cents bigint NOT NULL, late_fee_cents bigint NOT NULL, status text NOT NULL,
  internal_note text, updated_at timestamptz NOT NULL);
INSERT INTO invoices VALUES
  ('INV-1', 'acme', 'Acme Corp', 125000, 5500, 'open', 'secret acme note', '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 'Acme Corp', 48000, 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-9', 'globex', 'Globex', 310000, 9900, 'open', 'globex note', '2026-06-21T11:15:00Z'),
  ('INV-C', 'ACME', 'Case Twin', 1, 1, 'open', NULL, '2026-06-21T11:15:00Z');
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status text NOT NULL, total_cents bigint NOT NULL, version integer NOT NULL);
INSERT INTO orders VALUES (1001, 'acme', 'pending', 5000, 3), (1002, 'globex', 'pending', 7000, 1);
CREATE FUNCTION slow_true() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT pg_sleep(3); SELECT true $$;
CREATE VIEW slow_invoices AS SELECT * FROM invoices WHERE slow_true();
"#;

const MYSQL_SEED: &str = r#"
CREATE TABLE invoices (
  id varchar(32) PRIMARY KEY, tenant_id varchar(32) NOT NULL, customer_name varchar(100) NOT NULL,
  amount_cents bigint NOT NULL, late_fee_cents bigint NOT NULL, status varchar(32) NOT NULL,
  internal_note text, updated_at datetime(6) NOT NULL);
INSERT INTO invoices VALUES
  ('INV-1', 'acme', 'Acme Corp', 125000, 5500, 'open', 'secret acme note', '2026-06-23 09:00:00'),
  ('INV-2', 'acme', 'Acme Corp', 48000, 0, 'paid', NULL, '2026-06-20 14:31:08.123456'),
  ('INV-9', 'globex', 'Globex', 310000, 9900, 'open', 'globex note', '2026-06-21 11:15:00'),
  ('INV-C', 'ACME', 'Case Twin', 1, 1, 'open', NULL, '2026-06-21 11:15:00');
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status varchar(32) NOT NULL, total_cents bigint NOT NULL, version int NOT NULL);
INSERT INTO orders VALUES (1001, 'acme', 'pending', 5000, 3), (1002, 'globex', 'pending', 7000, 1);
CREATE VIEW slow_invoices AS SELECT * FROM invoices WHERE SLEEP(3) = 0;
"#;

fn sqlite_seed() -> String {
    PG_SEED
        .replace("bigint", "INTEGER")
        .replace("timestamptz", "TEXT")
        .replace("varchar(32)", "TEXT")
        .split("CREATE FUNCTION")
        .next()
        .unwrap()
        .to_owned()
}

fn config_for(engine: &str, schema: &str) -> config::RunnerConfig {
    let invoice_target = json!({"schema": schema, "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    let doc = json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "sources": {"main": {"engine": engine, "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 500}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.inspect_invoice", "kind": "read", "source": "main",
                "description": "Read one invoice.",
                "target": invoice_target,
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "customer_name", "amount_cents", "late_fee_cents", "status", "updated_at"]
            },
            {
                "name": "billing.inspect_slow_invoice", "kind": "read", "source": "main",
                "description": "Read one invoice through a slow view.",
                "target": {"schema": schema, "table": "slow_invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "status"]
            },
            {
                "name": "billing.propose_late_fee_waiver", "kind": "proposal", "source": "main",
                "description": "Propose waiving a late fee.",
                "target": invoice_target,
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"fixed": 0}},
                "allowed_columns": ["late_fee_cents"],
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "billing.propose_late_fee", "kind": "proposal", "source": "main",
                "description": "Propose a new late fee.",
                "target": invoice_target,
                "args": {"invoice_id": {"type": "string", "max_length": 64}, "late_fee_cents": {"type": "number", "minimum": -1000000, "maximum": 1000000}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
                "allowed_columns": ["late_fee_cents"],
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "billing.propose_status", "kind": "proposal", "source": "main",
                "description": "Propose an invoice status change.",
                "target": invoice_target,
                "args": {"invoice_id": {"type": "string", "max_length": 64}, "status": {"type": "string", "enum": ["paid", "void", "refunded"]}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "status"],
                "patch": {"status": {"from_arg": "status"}},
                "allowed_columns": ["status"],
                "transition_guards": {"status": {"allowed": {"open": ["paid", "void"], "paid": ["refunded"]}}},
                "conflict_guard": {"column": "updated_at"}
            },
            {
                "name": "orders.inspect_order", "kind": "read", "source": "main",
                "description": "Read one order.",
                "target": {"schema": schema, "table": "orders", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"order_id": {"type": "number", "minimum": 1}},
                "lookup": {"id_from_arg": "order_id"},
                "visible_columns": ["id", "status", "total_cents"]
            }
        ]
    });
    let (cfg, _) =
        config::parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("test config invalid: {:?}", r.errors));
    cfg
}

struct Harness {
    runtime: Runtime,
    store_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn harness(engine: &str, schema: &str, read_url: &str, tenant: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("ledger.db");
    let ledger = Ledger::new(LedgerStore::open(&store_path).unwrap());
    let env = OverlayEnv {
        values: HashMap::from([
            ("TEST_READ_URL".to_owned(), read_url.to_owned()),
            ("SYNAPSOR_TENANT_ID".to_owned(), tenant.to_owned()),
            ("SYNAPSOR_PRINCIPAL".to_owned(), "agent.test".to_owned()),
        ]),
        fallback: ProcessEnv,
    };
    let runtime = Runtime::new(
        config_for(engine, schema),
        RuntimeDeps {
            ledger,
            env: Arc::new(env),
            clock: Arc::new(SystemClock),
            ids: Arc::new(SequentialIds::default()),
            result_format: Some(ResultFormat::V2),
            publisher: None,
        },
    )
    .unwrap();
    Harness {
        runtime,
        store_path,
        _dir: dir,
    }
}

async fn call(h: &Harness, tool: &str, args: Value) -> (Value, bool) {
    h.runtime.call_envelope(tool, &args, &Caller::Process).await
}

fn err_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// The whole behavioural contract, run the same way on every engine.
async fn contract(h: &Harness, engine: &str) {
    // Scoped read: only visible columns.
    let (v, is_error) = call(h, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
    assert!(!is_error, "{engine}: {v}");
    assert_eq!(v["ok"], true);
    let data = v["data"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "customer_name",
            "amount_cents",
            "late_fee_cents",
            "status",
            "updated_at"
        ],
        "{engine}"
    );
    assert_eq!(data["late_fee_cents"], json!(5500));
    assert!(
        !v.to_string().contains("secret acme note"),
        "{engine}: hidden column leaked"
    );
    assert_eq!(v["source_database_changed"], false);
    // The model never sees its own tenant.
    assert!(v["_meta"].get("tenant_id").is_none(), "{engine}: {v}");
    assert!(!v.to_string().contains("\"acme\""), "{engine}: the tenant leaked: {v}");

    // Another tenant's row and a missing row give the same answer.
    let (other, other_err) = call(h, "billing.inspect_invoice", json!({"invoice_id": "INV-9"})).await;
    let (missing, _) = call(h, "billing.inspect_invoice", json!({"invoice_id": "NOPE"})).await;
    assert!(other_err);
    assert_eq!(err_code(&other), "NOT_FOUND_IN_TENANT", "{engine}: {other}");
    assert_eq!(other["error"], missing["error"]);
    assert!(
        !other.to_string().contains("globex"),
        "{engine}: cross-tenant data leaked: {other}"
    );

    // A tenant that differs only in case is another tenant (MySQL collations compare loosely).
    let (case, _) = call(h, "billing.inspect_invoice", json!({"invoice_id": "INV-C"})).await;
    assert_eq!(err_code(&case), "NOT_FOUND_IN_TENANT", "{engine}: {case}");

    // The model cannot pass a tenant, unknown arguments, or oversized / mistyped values.
    for (args, want) in [
        (
            json!({"invoice_id": "INV-9", "tenant_id": "globex"}),
            "INVALID_ARGUMENT",
        ),
        (json!({"invoice_id": "INV-9", "TenantId": "globex"}), "INVALID_ARGUMENT"),
        (json!({"invoice_id": "INV-1", "extra": 1}), "INVALID_ARGUMENT"),
        (json!({"invoice_id": "x".repeat(65)}), "INVALID_ARGUMENT"),
        (json!({"invoice_id": 12}), "INVALID_ARGUMENT"),
        (json!({}), "INVALID_ARGUMENT"),
        (json!("INV-1"), "INVALID_ARGUMENT"),
    ] {
        let (v, is_error) = call(h, "billing.inspect_invoice", args.clone()).await;
        assert!(is_error, "{engine}: {args}");
        assert_eq!(err_code(&v), want, "{engine}: {args} -> {v}");
    }

    // A credential as an argument is refused before anything is read, one way whether it is a
    // connection URL or a key, and never echoed.
    for secret in ["postgres://app:pw@db/billing", "sk-live-4eC39HqLyjWDarjtT1zdp7dc"] {
        for (tool, args) in [
            ("billing.inspect_invoice", json!({"invoice_id": secret})),
            (
                "billing.propose_status",
                json!({"invoice_id": "INV-1", "status": secret}),
            ),
        ] {
            let (v, is_error) = call(h, tool, args).await;
            assert!(is_error, "{engine}: {tool} {secret}");
            assert_eq!(err_code(&v), "INVALID_ARGUMENT", "{engine}: {tool} {secret} -> {v}");
            assert!(!v.to_string().contains(secret), "{engine}: echoed: {v}");
        }
    }

    // SQL injection strings are values, never SQL.
    for evil in [
        "INV-1' OR '1'='1",
        "INV-1'; DROP TABLE invoices; --",
        "\" OR 1=1 --",
        "INV-1\\'",
        "%",
        // Not the key, though MariaDB's collations find INV-1 for them: reads compare exactly.
        "inv-1",
        "INV-1 ",
        "INV-\u{FF11}",
    ] {
        let (v, _) = call(h, "billing.inspect_invoice", json!({"invoice_id": evil})).await;
        assert_eq!(err_code(&v), "NOT_FOUND_IN_TENANT", "{engine}: {evil} -> {v}");
    }
    let (v, _) = call(h, "billing.inspect_invoice", json!({"invoice_id": "INV-2"})).await;
    assert_eq!(v["ok"], true, "{engine}: table still there");

    // Numeric keys bind as numbers; another tenant's order is not found.
    let (v, _) = call(h, "orders.inspect_order", json!({"order_id": 1001})).await;
    assert_eq!(v["data"]["total_cents"], json!(5000), "{engine}: {v}");
    let (v, _) = call(h, "orders.inspect_order", json!({"order_id": 1002})).await;
    assert_eq!(err_code(&v), "NOT_FOUND_IN_TENANT", "{engine}");
    let (v, _) = call(h, "orders.inspect_order", json!({"order_id": 0})).await;
    assert_eq!(err_code(&v), "INVALID_ARGUMENT", "{engine}");

    // Unknown tools.
    let (v, _) = call(h, "billing.execute_sql", json!({"sql": "select 1"})).await;
    assert_eq!(err_code(&v), "CAPABILITY_NOT_FOUND");

    // Proposal: exact diff, version from the conflict column, no write.
    let (p, is_error) = call(h, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})).await;
    assert!(!is_error, "{engine}: {p}");
    assert_eq!(
        p["proposal"]["diff"],
        json!({"late_fee_cents": {"before": 5500, "after": 0}}),
        "{engine}"
    );
    assert_eq!(p["proposal"]["existing"], false);
    assert_eq!(p["data"], Value::Null);
    let id = p["proposal"]["id"].as_str().unwrap().to_owned();
    let store = LedgerStore::open_existing(&h.store_path).unwrap();
    let rec = store.get_proposal(&id).unwrap();
    assert_eq!(rec.change_set.guards.expected_version.column, "updated_at");
    assert!(!rec.change_set.guards.expected_version.value.is_null());
    assert_eq!(rec.change_set.scope.tenant_id, "acme");
    assert_eq!(rec.change_set.guards.tenant.as_ref().unwrap().value, json!("acme"));
    assert_eq!(rec.state.as_str(), "pending_review");

    // The identical call returns the same pending proposal.
    let (again, _) = call(h, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})).await;
    assert_eq!(again["proposal"]["id"], json!(id), "{engine}");
    assert_eq!(again["proposal"]["existing"], true);
    assert_eq!(store.list_proposals(&Default::default()).unwrap().len(), 1);

    // Proposals on other tenants' rows are impossible.
    let (v, _) = call(h, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-9"})).await;
    assert_eq!(err_code(&v), "NOT_FOUND_IN_TENANT");

    // Guards.
    let (v, _) = call(
        h,
        "billing.propose_late_fee",
        json!({"invoice_id": "INV-1", "late_fee_cents": 20000}),
    )
    .await;
    assert_eq!(err_code(&v), "POLICY_VIOLATION", "{engine}: {v}");
    let (v, _) = call(
        h,
        "billing.propose_late_fee",
        json!({"invoice_id": "INV-1", "late_fee_cents": -1}),
    )
    .await;
    assert_eq!(err_code(&v), "POLICY_VIOLATION");
    let (v, _) = call(
        h,
        "billing.propose_late_fee",
        json!({"invoice_id": "INV-1", "late_fee_cents": 2500}),
    )
    .await;
    assert_eq!(
        v["proposal"]["diff"]["late_fee_cents"],
        json!({"before": 5500, "after": 2500}),
        "{engine}"
    );
    let (v, _) = call(
        h,
        "billing.propose_status",
        json!({"invoice_id": "INV-1", "status": "refunded"}),
    )
    .await;
    assert_eq!(
        err_code(&v),
        "POLICY_VIOLATION",
        "{engine}: open -> refunded is not allowed"
    );
    let (v, _) = call(
        h,
        "billing.propose_status",
        json!({"invoice_id": "INV-2", "status": "refunded"}),
    )
    .await;
    assert_eq!(v["ok"], true, "{engine}: paid -> refunded: {v}");
    let (v, _) = call(
        h,
        "billing.propose_status",
        json!({"invoice_id": "INV-1", "status": "deleted"}),
    )
    .await;
    assert_eq!(err_code(&v), "INVALID_ARGUMENT");

    // The statement timeout holds.
    let (v, is_error) = call(h, "billing.inspect_slow_invoice", json!({"invoice_id": "INV-1"})).await;
    assert!(is_error, "{engine}: {v}");
    assert_eq!(err_code(&v), "TEMPORARILY_UNAVAILABLE", "{engine}: {v}");
    assert_eq!(v["error"]["retryable"], true);

    // Evidence and query audit were recorded.
    let stats = store.stats().unwrap();
    assert!(stats.evidence_bundles >= 5, "{engine}: {stats:?}");
    assert!(
        stats.query_audit > stats.evidence_bundles,
        "{engine}: failed lookups are audited too"
    );
}

#[tokio::test]
async fn postgres_reads_and_proposals() {
    let Some(db) = TestDb::with_seed(Server::Postgres, PG_SEED).await else {
        return;
    };
    let h = harness("postgres", "public", &db.read_url, "acme");
    contract(&h, "postgres").await;

    // The source was never written: the row is as seeded.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.admin_url)
        .await
        .unwrap();
    let fee: i64 = sqlx::query_scalar("SELECT late_fee_cents FROM invoices WHERE id = 'INV-1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(fee, 5500);

    // Calls share a bounded pool instead of connecting per call.
    for _ in 0..30 {
        call(&h, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
    }
    let conns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'synapsor-runner' AND datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!((1..=8).contains(&conns), "pooled connections: {conns}");

    // A changed row gives a new proposal, not the old one.
    db.exec("UPDATE invoices SET updated_at = now(), late_fee_cents = 6000 WHERE id = 'INV-1'")
        .await;
    let (v, _) = call(&h, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})).await;
    assert_eq!(v["proposal"]["existing"], false);
    assert_eq!(v["proposal"]["diff"]["late_fee_cents"]["before"], json!(6000));
}

#[tokio::test]
async fn mariadb_reads_and_proposals() {
    let Some(db) = TestDb::with_seed(Server::Mysql, MYSQL_SEED).await else {
        return;
    };
    let h = harness("mysql", &db.schema, &db.read_url, "acme");
    contract(&h, "mysql").await;
    db.exec("UPDATE invoices SET updated_at = NOW(6), late_fee_cents = 6000 WHERE id = 'INV-1'")
        .await;
    let (v, _) = call(&h, "billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})).await;
    assert_eq!(v["proposal"]["existing"], false);
    assert_eq!(v["proposal"]["diff"]["late_fee_cents"]["before"], json!(6000));
}

/// The source pool reuses one connection for sequential calls without pinging it, replaces a
/// connection the server killed without failing the call, and closes (never reuses) the
/// connection of a call that was cancelled mid-query.
async fn connection_lifecycle(
    h: &Harness,
    engine: &str,
    backends: impl AsyncFn() -> Vec<i64>,
    kill: impl AsyncFn(i64),
) {
    let read = async || {
        let (v, is_error) = call(h, "billing.inspect_invoice", json!({"invoice_id": "INV-1"})).await;
        assert!(!is_error && v["ok"] == true, "{engine}: {v}");
        assert_eq!(v["data"]["late_fee_cents"], json!(5500), "{engine}");
    };
    for _ in 0..5 {
        read().await;
    }
    let first = backends().await;
    assert_eq!(
        first.len(),
        1,
        "{engine}: sequential calls share one connection: {first:?}"
    );

    kill(first[0]).await;
    // Wait until the server has really dropped it, so the next call meets a dead connection.
    for _ in 0..100 {
        if !backends().await.contains(&first[0]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    read().await;
    let second = backends().await;
    assert_eq!(second.len(), 1, "{engine}: {second:?}");
    assert_ne!(second, first, "{engine}: the killed connection was replaced");

    // A call dropped while its query runs: its connection must not serve the next call.
    let slow = call(h, "billing.inspect_slow_invoice", json!({"invoice_id": "INV-1"}));
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(150), slow)
            .await
            .is_err(),
        "{engine}: the slow read should still be running"
    );
    read().await;
    // Its server side lives until the statement times out (500 ms) and finds the client gone;
    // a connection kept by the pool would stay.
    let mut remaining = backends().await;
    for _ in 0..250 {
        if !remaining.contains(&second[0]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        remaining = backends().await;
    }
    assert!(
        !remaining.contains(&second[0]),
        "{engine}: the cancelled call's connection was closed: {remaining:?}"
    );
    assert_eq!(remaining.len(), 1, "{engine}: {remaining:?}");
    read().await;
    assert_eq!(backends().await, remaining, "{engine}: the new connection is reused");
}

#[tokio::test]
async fn postgres_source_connections_are_reused_and_replaced() {
    let Some(db) = TestDb::with_seed(Server::Postgres, PG_SEED).await else {
        return;
    };
    let h = harness("postgres", "public", &db.read_url, "acme");
    let admin = db.admin_url.clone();
    let backends = async || {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'synapsor-runner' \
             AND datname = current_database() ORDER BY pid",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        pids.into_iter().map(i64::from).collect()
    };
    let kill = async |pid: i64| {
        db.exec(&format!("SELECT pg_terminate_backend({pid})")).await;
    };
    connection_lifecycle(&h, "postgres", backends, kill).await;
}

#[tokio::test]
async fn mariadb_source_connections_are_reused_and_replaced() {
    let Some(db) = TestDb::with_seed(Server::Mysql, MYSQL_SEED).await else {
        return;
    };
    let h = harness("mysql", &db.schema, &db.read_url, "acme");
    let read_user = db
        .read_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_owned();
    let admin = db.admin_url.clone();
    let backends = async || {
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM information_schema.PROCESSLIST WHERE user = ? AND command <> 'Killed' ORDER BY id",
        )
        .bind(&read_user)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        ids
    };
    let kill = async |id: i64| {
        db.exec(&format!("KILL CONNECTION {id}")).await;
    };
    connection_lifecycle(&h, "mariadb", backends, kill).await;
}

#[tokio::test]
async fn sqlite_reads_and_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("source.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&sqlite_seed()).unwrap();
    // SQLite has no sleep; a view over a huge recursive CTE stands in for a slow query.
    conn.execute_batch(
        "CREATE VIEW slow_invoices AS SELECT i.* FROM invoices i \
         WHERE (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) SELECT max(x) FROM c) > 0;",
    )
    .unwrap();
    drop(conn);
    let h = harness("sqlite", "main", &format!("sqlite://{}", db.display()), "acme");
    contract(&h, "sqlite").await;
}

#[tokio::test]
async fn missing_credentials_and_context_fail_safely() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(LedgerStore::open(dir.path().join("l.db")).unwrap());
    let env: HashMap<String, String> = HashMap::new();
    let runtime = Runtime::new(
        config_for("postgres", "public"),
        RuntimeDeps {
            ledger,
            env: Arc::new(env),
            clock: Arc::new(SystemClock),
            ids: Arc::new(SequentialIds::default()),
            result_format: Some(ResultFormat::V2),
            publisher: None,
        },
    )
    .unwrap();
    let (v, is_error) = runtime
        .call_envelope(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-1"}),
            &Caller::Process,
        )
        .await;
    assert!(is_error);
    // No tenant in the environment: refused before any query.
    assert_eq!(err_code(&v), "INVALID_ARGUMENT", "{v}");
    let (v1, _) = runtime
        .call(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-1"}),
            &Caller::Process,
        )
        .await
        .render(ResultFormat::V1);
    assert_eq!(v1["code"], "TRUSTED_BINDING_MISSING");
}
