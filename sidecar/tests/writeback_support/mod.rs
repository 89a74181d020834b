//! Support for the writeback CLI tests: test databases with a least-privilege writer next to the
//! read role of `support`, a config file and ledger in a temp folder, proposals made through the
//! real runtime, and the `synapsor-runner` binary run as a child process.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use synapsor_core::config::{self, Engine, ResultFormat};
use synapsor_core::context::{Clock, SystemClock};
use synapsor_ledger::{Ledger, LedgerStore, ProposalRecord};
use synapsor_runner::ids::SequentialIds;
use synapsor_runner::runtime::{Runtime, RuntimeDeps};

use crate::support;
use synapsor_testdb::with_user;

/// Business tables. `apply_count` is bumped by a trigger on every UPDATE of the row, so a test
/// can tell how many times the row was written.
pub const PG_SEED: &str = r#"
CREATE TABLE invoices (
  id text PRIMARY KEY, tenant_id text NOT NULL, late_fee_cents bigint NOT NULL, status text NOT NULL,
  note text, updated_at timestamptz NOT NULL, apply_count integer NOT NULL DEFAULT 0);
INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES
  ('INV-1', 'acme', 5500, 'open', 'n1', '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-3', 'acme', 700, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-4', 'acme', 800, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-9', 'globex', 9900, 'open', 'globex', '2026-06-21T11:15:00Z');
CREATE FUNCTION bump_apply_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.apply_count := OLD.apply_count + 1; RETURN NEW; END $$;
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
"#;

pub const MYSQL_SEED: &str = r#"
CREATE TABLE invoices (
  id varchar(32) PRIMARY KEY, tenant_id varchar(32) NOT NULL, late_fee_cents bigint NOT NULL, status varchar(32) NOT NULL,
  note text, updated_at datetime(6) NOT NULL, apply_count int NOT NULL DEFAULT 0);
INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES
  ('INV-1', 'acme', 5500, 'open', 'n1', '2026-06-23 09:00:00'),
  ('INV-2', 'acme', 0, 'paid', NULL, '2026-06-20 14:31:08.123456'),
  ('INV-3', 'acme', 700, 'open', NULL, '2026-06-21 10:00:00'),
  ('INV-4', 'acme', 800, 'open', NULL, '2026-06-21 10:00:00'),
  ('INV-9', 'globex', 9900, 'open', 'globex', '2026-06-21 11:15:00');
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW SET NEW.apply_count = OLD.apply_count + 1;
"#;

pub const SQLITE_SEED: &str = r#"
CREATE TABLE invoices (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, late_fee_cents INTEGER NOT NULL, status TEXT NOT NULL,
  note TEXT, updated_at TEXT NOT NULL, apply_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES
  ('INV-1', 'acme', 5500, 'open', 'n1', '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-3', 'acme', 700, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-4', 'acme', 800, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-9', 'globex', 9900, 'open', 'globex', '2026-06-21T11:15:00Z');
CREATE TRIGGER invoices_apply_count AFTER UPDATE OF late_fee_cents, status, note ON invoices
BEGIN UPDATE invoices SET apply_count = apply_count + 1 WHERE id = NEW.id; END;
"#;

/// A source database with a read role and a least-privilege writer.
#[derive(Debug, Clone)]
pub struct WDb {
    pub engine: Engine,
    pub schema: String,
    pub admin_url: String,
    pub read_url: String,
    pub write_url: String,
    /// Writer role (PostgreSQL) or user (MySQL); empty for SQLite.
    pub writer: String,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// PostgreSQL: `support::postgres` (SELECT-only read role) plus a writer with SELECT, UPDATE on
/// the business table and, when `receipts`, the receipts table created by the admin and granted
/// SELECT, INSERT, UPDATE.
pub async fn postgres(receipts: bool) -> Option<WDb> {
    let db = support::postgres(PG_SEED).await?;
    let writer = format!("{}_w", db.database);
    let mut sql = format!(
        "CREATE ROLE {writer} LOGIN PASSWORD 'write_pw';
         GRANT CONNECT ON DATABASE {d} TO {writer};
         GRANT USAGE ON SCHEMA public TO {writer};
         GRANT SELECT, UPDATE ON invoices TO {writer};",
        d = db.database
    );
    if receipts {
        sql.push_str(&synapsor_executor::receipts_ddl(Engine::Postgres, "public").unwrap());
        sql.push_str(&synapsor_executor::receipts_grants(Engine::Postgres, &writer, "public", &[]).unwrap());
    }
    support::pg_exec(&db, &sql).await;
    Some(WDb {
        engine: Engine::Postgres,
        schema: "public".into(),
        write_url: with_user(&db.admin_url, &writer, "write_pw"),
        read_url: db.read_url,
        admin_url: db.admin_url,
        writer,
        _dir: None,
    })
}

/// MariaDB/MySQL, as [`postgres`].
pub async fn mysql(receipts: bool) -> Option<WDb> {
    let db = support::mysql(MYSQL_SEED).await?;
    let writer = format!("w{}", &db.database[db.database.len().saturating_sub(20)..]);
    let d = &db.database;
    let mut sql = String::new();
    if receipts {
        sql.push_str(&synapsor_executor::receipts_ddl(Engine::Mysql, d).unwrap());
    }
    for host in ["%", "localhost"] {
        sql.push_str(&format!(
            "CREATE USER '{writer}'@'{host}' IDENTIFIED BY 'write_pw';
             GRANT SELECT, UPDATE ON {d}.invoices TO '{writer}'@'{host}';"
        ));
        if receipts {
            sql.push_str(&format!(
                "GRANT SELECT, INSERT, UPDATE ON {d}.synapsor_writeback_receipts TO '{writer}'@'{host}';"
            ));
        }
    }
    support::mysql_exec(&db, &sql).await;
    Some(WDb {
        engine: Engine::Mysql,
        schema: d.clone(),
        write_url: with_user(&db.admin_url, &writer, "write_pw"),
        read_url: db.read_url,
        admin_url: db.admin_url,
        writer,
        _dir: None,
    })
}

/// SQLite: one file (no roles).
pub fn sqlite(receipts: bool) -> WDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SQLITE_SEED).unwrap();
    if receipts {
        conn.execute_batch(&synapsor_executor::receipts_ddl(Engine::Sqlite, "main").unwrap())
            .unwrap();
    }
    drop(conn);
    let url = format!("sqlite://{}", path.display());
    WDb {
        engine: Engine::Sqlite,
        schema: "main".into(),
        admin_url: url.clone(),
        read_url: url.clone(),
        write_url: url,
        writer: String::new(),
        _dir: Some(Arc::new(dir)),
    }
}

impl WDb {
    /// A database that is never connected to (URLs only), for config-level tests.
    pub fn fake(engine: Engine, schema: &str, read_url: &str, write_url: &str) -> WDb {
        WDb {
            engine,
            schema: schema.to_owned(),
            admin_url: String::new(),
            read_url: read_url.to_owned(),
            write_url: write_url.to_owned(),
            writer: String::new(),
            _dir: None,
        }
    }

    pub async fn exec(&self, sql: &str) {
        match self.engine {
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Engine::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&self.admin_url).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Engine::Sqlite => {
                rusqlite::Connection::open(self.admin_url.trim_start_matches("sqlite://"))
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
        }
    }

    /// One integer from a scalar query run as the admin (NULL as -1).
    pub async fn int(&self, sql: &str) -> i64 {
        let v: Option<i64> = match self.engine {
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
                let v = sqlx::query_scalar(AssertSqlSafe(format!("SELECT ({sql})::int8")))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                v
            }
            Engine::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&self.admin_url).await.unwrap();
                let v = sqlx::query_scalar(AssertSqlSafe(format!("SELECT CAST(({sql}) AS SIGNED)")))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                v
            }
            Engine::Sqlite => rusqlite::Connection::open(self.admin_url.trim_start_matches("sqlite://"))
                .unwrap()
                .query_row(&format!("SELECT ({sql})"), [], |r| r.get(0))
                .unwrap(),
        };
        v.unwrap_or(-1)
    }

    pub async fn fee(&self, id: &str) -> i64 {
        self.int(&format!("SELECT late_fee_cents FROM invoices WHERE id = '{id}'"))
            .await
    }

    pub async fn writes(&self, id: &str) -> i64 {
        self.int(&format!("SELECT apply_count FROM invoices WHERE id = '{id}'"))
            .await
    }

    pub async fn total_writes(&self) -> i64 {
        self.int("SELECT sum(apply_count) FROM invoices").await
    }

    /// Rows in the source's receipts table.
    pub async fn source_receipts(&self) -> i64 {
        self.int("SELECT count(*) FROM synapsor_writeback_receipts").await
    }

    pub fn touch_sql(&self, id: &str) -> String {
        let now = match self.engine {
            Engine::Postgres => "now()",
            Engine::Mysql => "NOW(6)",
            Engine::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        };
        format!("UPDATE invoices SET updated_at = {now}, note = 'changed' WHERE id = '{id}'")
    }

    pub fn bump_micro_sql(&self, id: &str) -> String {
        let v = match self.engine {
            Engine::Postgres => "updated_at + interval '1 microsecond'",
            Engine::Mysql => "updated_at + INTERVAL 1 MICROSECOND",
            Engine::Sqlite => "'2026-06-20T14:31:08.123457Z'",
        };
        format!("UPDATE invoices SET updated_at = {v} WHERE id = '{id}'")
    }
}

/// The reviewed config of these tests, with `extra` merged at the top level.
pub fn config_doc(db: &WDb, ledger: &std::path::Path, extra: Value) -> Value {
    let inv = json!({"schema": db.schema, "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    let mut doc = json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "storage": {"sqlite_path": ledger.display().to_string()},
        "sources": {"main": {"engine": db.engine.as_str(), "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 4000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.propose_late_fee", "kind": "proposal", "source": "main",
                "description": "Propose a late fee.", "target": inv,
                "args": {"invoice_id": {"type": "string", "max_length": 64}, "late_fee_cents": {"type": "number", "minimum": 0, "maximum": 100000}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
                "allowed_columns": ["late_fee_cents"],
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                "conflict_guard": {"column": "updated_at"}
            }
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

/// A config file, a ledger and the env the CLI runs with.
pub struct Setup {
    pub db: WDb,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub store_path: PathBuf,
    pub doc: Value,
    pub runtime: Runtime,
}

impl Setup {
    pub fn new(db: WDb, extra: Value) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("ledger.db");
        let config_path = dir.path().join("synapsor.runner.json");
        let doc = config_doc(&db, &store_path, extra);
        std::fs::write(&config_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let (cfg, _) =
            config::parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("test config invalid: {:?}", r.errors));
        let ledger = Ledger::new(LedgerStore::open(&store_path).unwrap());
        let env = HashMap::from([
            ("TEST_READ_URL".to_owned(), db.read_url.clone()),
            ("SYNAPSOR_TENANT_ID".to_owned(), "acme".to_owned()),
            ("SYNAPSOR_PRINCIPAL".to_owned(), "agent.test".to_owned()),
        ]);
        let runtime = Runtime::new(
            cfg,
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
        Setup {
            db,
            dir,
            config_path,
            store_path,
            doc,
            runtime,
        }
    }

    /// Calls a proposal tool through the runtime; returns the proposal id.
    pub async fn propose(&self, tool: &str, args: Value) -> String {
        let (v, is_error) = self.runtime.call_envelope(tool, &args).await;
        assert!(!is_error, "{v}");
        v["proposal"]["id"].as_str().unwrap().to_owned()
    }

    pub fn store(&self) -> LedgerStore {
        LedgerStore::open_existing(&self.store_path).unwrap()
    }

    pub fn proposal(&self, id: &str) -> ProposalRecord {
        self.store().get_proposal(id).unwrap()
    }

    pub fn state(&self, id: &str) -> String {
        self.proposal(id).state.as_str().to_owned()
    }

    pub fn approve(&self, id: &str) {
        let p = self.proposal(id);
        let now = SystemClock.now_rfc3339();
        self.store()
            .approve(id, &p.change_set.digest, "alice", Some("reviewed"), &now)
            .unwrap();
    }

    /// The CLI command with the config, the store and a clean environment (plus `env`).
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
        cmd.arg("--config")
            .arg(&self.config_path)
            .arg("--store")
            .arg(&self.store_path)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "operator.test")
            .env("TEST_READ_URL", &self.db.read_url)
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// `apply <id> --json [extra]` with the writer URL set (`writer: false` leaves it unset).
    pub fn apply(&self, id: &str, extra: &[&str], writer: bool) -> (i32, Value) {
        let mut args = vec!["apply", id, "--json"];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = if writer {
            vec![("TEST_WRITE_URL", self.db.write_url.as_str())]
        } else {
            vec![]
        };
        let out = self.run(&args, &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
            panic!(
                "apply printed no JSON: stdout={stdout} stderr={}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
