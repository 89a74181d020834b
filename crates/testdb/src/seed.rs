//! The engines of the test databases and the business tables the writeback tests start from.
//!
//! One list of rows serves every engine, so a test asserts the same numbers on each; only the
//! column types and the `apply_count` triggers are written per engine.

use crate::Server;

/// The engine of a test database: the two servers, and SQLite files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
    Sqlite,
}

impl From<Server> for Engine {
    fn from(server: Server) -> Engine {
        match server {
            Server::Postgres => Engine::Postgres,
            Server::Mysql => Engine::Mysql,
        }
    }
}

/// The tables of [`Engine::seed`], which the writer may SELECT and UPDATE.
pub const SEEDED_TABLES: [&str; 2] = ["invoices", "orders"];

/// An invoice: (id, tenant, late fee in cents, status, note, updated_at in UTC).
type Invoice = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    Option<&'static str>,
    &'static str,
);

/// INV-2's microseconds let a test move its version by 1 µs; INV-9 belongs to another tenant.
/// Every invoice's `owner` is `agent.test`, the principal the tests run as (for capabilities
/// scoped to their principal).
const INVOICES: [Invoice; 5] = [
    ("INV-1", "acme", 5500, "open", Some("n1"), "2026-06-23T09:00:00Z"),
    ("INV-2", "acme", 0, "paid", None, "2026-06-20T14:31:08.123456Z"),
    ("INV-3", "acme", 700, "open", None, "2026-06-21T10:00:00Z"),
    ("INV-4", "acme", 800, "open", None, "2026-06-21T10:00:00Z"),
    ("INV-9", "globex", 9900, "open", Some("globex"), "2026-06-21T11:15:00Z"),
];

/// (id, tenant, status, total in cents): rows without a version column.
const ORDERS: [(i64, &str, &str, i64); 2] = [(1001, "acme", "pending", 5000), (1002, "globex", "pending", 7000)];

const PG_TABLES: &str = "
CREATE TABLE invoices (
  id text PRIMARY KEY, tenant_id text NOT NULL, late_fee_cents bigint NOT NULL, status text NOT NULL,
  note text, updated_at timestamptz NOT NULL, apply_count integer NOT NULL DEFAULT 0,
  owner text NOT NULL DEFAULT 'agent.test');
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status text NOT NULL, total_cents bigint NOT NULL, apply_count integer NOT NULL DEFAULT 0);
";

const PG_TRIGGERS: &str = "
CREATE FUNCTION bump_apply_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.apply_count := OLD.apply_count + 1; RETURN NEW; END $$;
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
CREATE TRIGGER orders_apply_count BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
";

const MYSQL_TABLES: &str = "
CREATE TABLE invoices (
  id varchar(32) PRIMARY KEY, tenant_id varchar(32) NOT NULL, late_fee_cents bigint NOT NULL, status varchar(32) NOT NULL,
  note text, updated_at datetime(6) NOT NULL, apply_count int NOT NULL DEFAULT 0,
  owner varchar(64) NOT NULL DEFAULT 'agent.test');
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id varchar(32) NOT NULL, status varchar(32) NOT NULL, total_cents bigint NOT NULL, apply_count int NOT NULL DEFAULT 0);
";

const MYSQL_TRIGGERS: &str = "
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW SET NEW.apply_count = OLD.apply_count + 1;
CREATE TRIGGER orders_apply_count BEFORE UPDATE ON orders FOR EACH ROW SET NEW.apply_count = OLD.apply_count + 1;
";

const SQLITE_TABLES: &str = "
CREATE TABLE invoices (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, late_fee_cents INTEGER NOT NULL, status TEXT NOT NULL,
  note TEXT, updated_at TEXT NOT NULL, apply_count INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT 'agent.test');
CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, total_cents INTEGER NOT NULL, apply_count INTEGER NOT NULL DEFAULT 0);
";

/// SQLite cannot assign to NEW: the count is bumped after the update, by UPDATEs that set one of
/// the named columns (not by the trigger's own UPDATE of `apply_count`).
const SQLITE_TRIGGERS: &str = "
CREATE TRIGGER invoices_apply_count AFTER UPDATE OF late_fee_cents, status, note ON invoices
BEGIN UPDATE invoices SET apply_count = apply_count + 1 WHERE id = NEW.id; END;
CREATE TRIGGER orders_apply_count AFTER UPDATE OF status, total_cents ON orders
BEGIN UPDATE orders SET apply_count = apply_count + 1 WHERE id = NEW.id; END;
";

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Postgres, Engine::Mysql, Engine::Sqlite];

    /// The server of this engine; `None` for SQLite.
    pub fn server(self) -> Option<Server> {
        match self {
            Engine::Postgres => Some(Server::Postgres),
            Engine::Mysql => Some(Server::Mysql),
            Engine::Sqlite => None,
        }
    }

    /// The name the runner's config gives the engine.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }

    /// The current time as a SQL expression with microseconds (SQLite: milliseconds, as text in
    /// the format of the seed).
    pub fn now_sql(self) -> &'static str {
        match self {
            Engine::Postgres => "now()",
            Engine::Mysql => "NOW(6)",
            Engine::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        }
    }

    /// The business tables [`SEEDED_TABLES`] with their rows and `apply_count` triggers: a
    /// trigger bumps a row's `apply_count` on every UPDATE of it, so a test can tell how many
    /// times the row was written.
    pub fn seed(self) -> String {
        let (tables, triggers) = match self {
            Engine::Postgres => (PG_TABLES, PG_TRIGGERS),
            Engine::Mysql => (MYSQL_TABLES, MYSQL_TRIGGERS),
            Engine::Sqlite => (SQLITE_TABLES, SQLITE_TRIGGERS),
        };
        let invoices: Vec<String> = INVOICES
            .iter()
            .map(|(id, tenant, fee, status, note, at)| {
                let note = note.map_or("NULL".to_owned(), |n| format!("'{n}'"));
                format!(
                    "('{id}', '{tenant}', {fee}, '{status}', {note}, '{}')",
                    self.timestamp(at)
                )
            })
            .collect();
        let orders: Vec<String> = ORDERS
            .iter()
            .map(|(id, tenant, status, total)| format!("({id}, '{tenant}', '{status}', {total})"))
            .collect();
        format!(
            "{tables}INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES\n  {};\n\
             INSERT INTO orders (id, tenant_id, status, total_cents) VALUES {};\n{triggers}",
            invoices.join(",\n  "),
            orders.join(", ")
        )
    }

    /// A UTC time of the seed as this engine's literal: MySQL's `datetime` takes it without the
    /// `T` and the zone.
    fn timestamp(self, utc: &str) -> String {
        match self {
            Engine::Mysql => utc.replace('T', " ").trim_end_matches('Z').to_owned(),
            Engine::Postgres | Engine::Sqlite => utc.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_the_same_rows_in_each_engines_format() {
        let pg = Engine::Postgres.seed();
        assert!(
            pg.contains("('INV-2', 'acme', 0, 'paid', NULL, '2026-06-20T14:31:08.123456Z')"),
            "{pg}"
        );
        assert!(
            pg.contains("(1001, 'acme', 'pending', 5000), (1002, 'globex', 'pending', 7000);"),
            "{pg}"
        );
        let my = Engine::Mysql.seed();
        assert!(
            my.contains("('INV-1', 'acme', 5500, 'open', 'n1', '2026-06-23 09:00:00')"),
            "{my}"
        );
        assert!(Engine::Sqlite.seed().contains("'2026-06-21T11:15:00Z')"));
    }
}
