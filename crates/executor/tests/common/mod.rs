//! Test databases for the executor: a fresh database per test with a SELECT-only read role and
//! a least-privilege writer (SELECT, UPDATE on the business tables; SELECT, INSERT, UPDATE on the
//! receipts table, which an admin creates). Servers come from `scripts/dev-db.sh`.
#![allow(dead_code, clippy::unwrap_used)]

use synapsor_core::config::Engine;
pub use synapsor_testdb::{Server, unique, with_user};

#[derive(Debug, Clone)]
pub struct Db {
    pub engine: Engine,
    /// Schema (PostgreSQL), database (MySQL) or `main` (SQLite).
    pub schema: String,
    pub admin_url: String,
    pub read_url: String,
    pub write_url: String,
    /// The writer's role (PostgreSQL) or user (MySQL).
    pub writer: String,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// The business tables every executor test uses. `apply_count` is bumped by a trigger on every
/// UPDATE, so a test can tell how many times a row was written.
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
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status text NOT NULL, total_cents bigint NOT NULL, apply_count integer NOT NULL DEFAULT 0);
INSERT INTO orders (id, tenant_id, status, total_cents) VALUES (1001, 'acme', 'pending', 5000), (1002, 'globex', 'pending', 7000);
CREATE FUNCTION bump_apply_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.apply_count := OLD.apply_count + 1; RETURN NEW; END $$;
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
CREATE TRIGGER orders_apply_count BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
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
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status varchar(32) NOT NULL, total_cents bigint NOT NULL, apply_count int NOT NULL DEFAULT 0);
INSERT INTO orders (id, tenant_id, status, total_cents) VALUES (1001, 'acme', 'pending', 5000), (1002, 'globex', 'pending', 7000);
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW SET NEW.apply_count = OLD.apply_count + 1;
CREATE TRIGGER orders_apply_count BEFORE UPDATE ON orders FOR EACH ROW SET NEW.apply_count = OLD.apply_count + 1;
"#;

pub fn sqlite_seed() -> String {
    r#"
CREATE TABLE invoices (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, late_fee_cents INTEGER NOT NULL, status TEXT NOT NULL,
  note TEXT, updated_at TEXT NOT NULL, apply_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES
  ('INV-1', 'acme', 5500, 'open', 'n1', '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-3', 'acme', 700, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-4', 'acme', 800, 'open', NULL, '2026-06-21T10:00:00Z'),
  ('INV-9', 'globex', 9900, 'open', 'globex', '2026-06-21T11:15:00Z');
CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, total_cents INTEGER NOT NULL, apply_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO orders (id, tenant_id, status, total_cents) VALUES (1001, 'acme', 'pending', 5000), (1002, 'globex', 'pending', 7000);
CREATE TRIGGER invoices_apply_count AFTER UPDATE OF late_fee_cents, status, note ON invoices
BEGIN UPDATE invoices SET apply_count = apply_count + 1 WHERE id = NEW.id; END;
CREATE TRIGGER orders_apply_count AFTER UPDATE OF status, total_cents ON orders
BEGIN UPDATE orders SET apply_count = apply_count + 1 WHERE id = NEW.id; END;
"#
    .to_owned()
}

/// A fresh PostgreSQL database: seed, read role, writer role; the receipts table when
/// `receipts` (created by the admin, granted to the writer).
pub async fn postgres(receipts: bool) -> Option<Db> {
    let (db, db_admin) = Server::Postgres.create_database("synx").await?;
    let (read, write) = (format!("{db}_r"), format!("{db}_w"));
    let mut setup = format!(
        "{PG_SEED}
         CREATE ROLE {read} LOGIN PASSWORD 'read_pw';
         GRANT CONNECT ON DATABASE {db} TO {read};
         GRANT USAGE ON SCHEMA public TO {read};
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {read};
         CREATE ROLE {write} LOGIN PASSWORD 'write_pw';
         GRANT CONNECT ON DATABASE {db} TO {write};
         GRANT USAGE ON SCHEMA public TO {write};
         GRANT SELECT, UPDATE ON invoices, orders TO {write};"
    );
    if receipts {
        setup.push_str(&synapsor_executor::receipts_ddl(Engine::Postgres, "public").unwrap());
        setup.push_str(&synapsor_executor::receipts_grants(Engine::Postgres, &write, "public", &[]).unwrap());
    }
    Server::Postgres.exec(&db_admin, &setup).await;
    Some(Db {
        engine: Engine::Postgres,
        schema: "public".into(),
        read_url: with_user(&db_admin, &read, "read_pw"),
        write_url: with_user(&db_admin, &write, "write_pw"),
        admin_url: db_admin,
        writer: write,
        _dir: None,
    })
}

/// A fresh MariaDB/MySQL database, as [`postgres`].
pub async fn mysql(receipts: bool) -> Option<Db> {
    let (db, db_admin) = Server::Mysql.create_database("synx").await?;
    let tag = &db[db.len().saturating_sub(20)..];
    let (read, write) = (format!("r{tag}"), format!("w{tag}"));
    let mut setup = MYSQL_SEED.to_owned();
    if receipts {
        setup.push_str(&synapsor_executor::receipts_ddl(Engine::Mysql, &db).unwrap());
    }
    for host in ["%", "localhost"] {
        setup.push_str(&format!(
            "CREATE USER '{read}'@'{host}' IDENTIFIED BY 'read_pw';
             GRANT SELECT ON {db}.* TO '{read}'@'{host}';
             CREATE USER '{write}'@'{host}' IDENTIFIED BY 'write_pw';
             GRANT SELECT, UPDATE ON {db}.invoices TO '{write}'@'{host}';
             GRANT SELECT, UPDATE ON {db}.orders TO '{write}'@'{host}';"
        ));
        if receipts {
            setup.push_str(&format!(
                "GRANT SELECT, INSERT, UPDATE ON {db}.synapsor_writeback_receipts TO '{write}'@'{host}';"
            ));
        }
    }
    Server::Mysql.exec(&db_admin, &setup).await;
    Some(Db {
        engine: Engine::Mysql,
        schema: db.clone(),
        read_url: with_user(&db_admin, &read, "read_pw"),
        write_url: with_user(&db_admin, &write, "write_pw"),
        admin_url: db_admin,
        writer: write,
        _dir: None,
    })
}

/// A fresh SQLite file (no roles: every URL is the file).
pub fn sqlite(receipts: bool) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&sqlite_seed()).unwrap();
    if receipts {
        conn.execute_batch(&synapsor_executor::receipts_ddl(Engine::Sqlite, "main").unwrap())
            .unwrap();
    }
    drop(conn);
    let url = format!("sqlite://{}", path.display());
    Db {
        engine: Engine::Sqlite,
        schema: "main".into(),
        admin_url: url.clone(),
        read_url: url.clone(),
        write_url: url,
        writer: String::new(),
        _dir: Some(std::sync::Arc::new(dir)),
    }
}

impl Db {
    /// Runs statements as the admin.
    pub async fn exec(&self, sql: &str) {
        match self.engine {
            Engine::Postgres => Server::Postgres.exec(&self.admin_url, sql).await,
            Engine::Mysql => Server::Mysql.exec(&self.admin_url, sql).await,
            Engine::Sqlite => {
                let path = self.admin_url.trim_start_matches("sqlite://");
                rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
            }
        }
    }

    /// One integer (or NULL as -1) from a query run as the admin.
    pub async fn int(&self, sql: &str) -> i64 {
        match self.engine {
            Engine::Postgres => Server::Postgres.int(&self.admin_url, sql).await,
            Engine::Mysql => Server::Mysql.int(&self.admin_url, sql).await,
            Engine::Sqlite => {
                let path = self.admin_url.trim_start_matches("sqlite://");
                let v: Option<i64> = rusqlite::Connection::open(path)
                    .unwrap()
                    .query_row(&format!("SELECT ({sql})"), [], |r| r.get(0))
                    .unwrap();
                v.unwrap_or(-1)
            }
        }
    }

    /// Rows in the receipts table (-1 when it does not exist).
    pub async fn receipts(&self) -> i64 {
        let exists = match self.engine {
            Engine::Postgres => {
                self.int("SELECT count(*) FROM pg_tables WHERE tablename = 'synapsor_writeback_receipts'")
                    .await
            }
            Engine::Mysql => {
                self.int(&format!(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'synapsor_writeback_receipts'",
                    self.schema
                ))
                .await
            }
            Engine::Sqlite => {
                self.int("SELECT count(*) FROM sqlite_master WHERE name = 'synapsor_writeback_receipts'")
                    .await
            }
        };
        if exists == 0 {
            return -1;
        }
        self.int("SELECT count(*) FROM synapsor_writeback_receipts").await
    }

    /// The current time as a SQL expression with microseconds, for touching `updated_at`.
    pub fn now_expr(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => "now()",
            Engine::Mysql => "NOW(6)",
            Engine::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        }
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.as_str()
    }
}
