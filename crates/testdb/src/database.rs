//! A fresh database per test, so tests run in parallel and each privilege is proven: a seed, a
//! SELECT-only read role and, for the writeback tests, a least-privilege writer (SELECT and
//! UPDATE on the business tables) and the runner's receipts table.

use std::sync::Arc;

use serde::de::{DeserializeOwned, IntoDeserializer, value::StrDeserializer};

use crate::{Engine, SEEDED_TABLES, Server, with_user};

/// The table the executor keeps its receipts in (its DDL comes from [`Runner::receipts_ddl`]).
pub const RECEIPTS_TABLE: &str = "synapsor_writeback_receipts";

/// A MySQL test user exists at both hosts: a login over loopback can be taken for `localhost`,
/// where an anonymous `''@'localhost'` account would otherwise win over `'%'`.
const MYSQL_HOSTS: [&str; 2] = ["%", "localhost"];

/// What the runner's test suites supply, because this crate must not depend on `synapsor-core`
/// or `synapsor-executor` (both have it as a dev-dependency; the cycle would compile two copies
/// of them): the receipts table's DDL and GRANTs, in terms of their engine type `E` (the
/// runner's `config::Engine`), which [`TestDb::engine`] holds. `E` is deserialized from the
/// engine's config name ([`Engine::as_str`]).
#[derive(Debug, Clone, Copy)]
pub struct Runner<E> {
    /// `CREATE TABLE` of the receipts table in a schema (the database on MySQL, `main` on
    /// SQLite).
    pub receipts_ddl: fn(E, &str) -> String,
    /// The GRANTs that let a writer use the receipts table in a schema, for (engine, schema,
    /// writer). On MySQL they name the writer's `'%'` account (as `receipts_grants` prints them)
    /// and are repeated for its `localhost` one. Never called for SQLite, which has no roles.
    pub receipts_grants: fn(E, &str, &str) -> String,
}

/// A test database and its logins. An admin created it and runs [`TestDb::exec`]; the runner
/// under test connects as the read role and the writer.
#[derive(Debug, Clone)]
pub struct TestDb<E = Engine> {
    /// The engine in the suite's type (see [`Runner`]).
    pub engine: E,
    /// The engine in this crate's type.
    pub kind: Engine,
    /// Schema (PostgreSQL), database (MySQL) or `main` (SQLite).
    pub schema: String,
    /// An admin on this database, to change rows behind the runner's back.
    pub admin_url: String,
    /// The SELECT-only read role.
    pub read_url: String,
    /// The least-privilege writer; empty without one. SQLite has no roles: every URL is the file.
    pub write_url: String,
    /// The writer's role (PostgreSQL) or user (MySQL); empty without one and for SQLite.
    pub writer: String,
    /// Keeps a SQLite file until the last clone is dropped.
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestDb {
    /// A fresh database on `server` with `seed` and the read role (no writer); `None` when the
    /// server's admin URL is not set (see [`crate::admin_url`]).
    pub async fn with_seed(server: Server, seed: &str) -> Option<TestDb> {
        create(server, seed, None).await
    }
}

impl<E: Copy + DeserializeOwned> Runner<E> {
    /// A fresh PostgreSQL database with [`Engine::seed`], the read role and the writer; with
    /// `receipts`, the receipts table (created by the admin, granted to the writer).
    pub async fn postgres(&self, receipts: bool) -> Option<TestDb<E>> {
        self.seeded(Server::Postgres, receipts).await
    }

    /// A fresh MariaDB/MySQL database, as [`Runner::postgres`].
    pub async fn mysql(&self, receipts: bool) -> Option<TestDb<E>> {
        self.seeded(Server::Mysql, receipts).await
    }

    /// A fresh SQLite file with [`Engine::seed`]; with `receipts`, the receipts table.
    pub fn sqlite(&self, receipts: bool) -> TestDb<E> {
        let ddl = receipts.then(|| (self.receipts_ddl)(engine_as(Engine::Sqlite), "main"));
        self.wrap(sqlite_file(&Engine::Sqlite.seed(), ddl.as_deref()))
    }

    async fn seeded(&self, server: Server, receipts: bool) -> Option<TestDb<E>> {
        let seed = Engine::from(server).seed();
        self.create(server, &seed, &SEEDED_TABLES, receipts).await
    }

    /// A fresh database on `server` with `seed`, the read role and a writer that may SELECT and
    /// UPDATE `tables`; with `receipts`, the receipts table, granted to the writer. `None` when
    /// the server's admin URL is not set.
    ///
    /// # Panics
    /// When the database cannot be created or a statement of its setup fails.
    pub async fn create(&self, server: Server, seed: &str, tables: &[&str], receipts: bool) -> Option<TestDb<E>> {
        let engine = engine_as(server.into());
        let receipts_sql = |schema: &str, writer: &str| {
            let ddl = (self.receipts_ddl)(engine, schema);
            (ddl, (self.receipts_grants)(engine, schema, writer))
        };
        let writer = Writer {
            tables,
            receipts: receipts.then_some(&receipts_sql as &ReceiptsSql),
        };
        Some(self.wrap(create(server, seed, Some(writer)).await?))
    }

    /// `db` with its engine in the suite's type.
    pub fn wrap(&self, db: TestDb) -> TestDb<E> {
        TestDb {
            engine: engine_as(db.kind),
            kind: db.kind,
            schema: db.schema,
            admin_url: db.admin_url,
            read_url: db.read_url,
            write_url: db.write_url,
            writer: db.writer,
            _dir: db._dir,
        }
    }

    /// A database that is never connected to (its URLs only), for tests of the config and of
    /// what the CLI prints.
    ///
    /// # Panics
    /// When no [`Engine`] maps to `engine`.
    pub fn fake(&self, engine: E, schema: &str, read_url: &str, write_url: &str) -> TestDb<E>
    where
        E: PartialEq,
    {
        let kind = Engine::ALL.into_iter().find(|k| engine_as::<E>(*k) == engine);
        TestDb {
            engine,
            kind: kind.expect("the suite's engine is one of this crate's"),
            schema: schema.to_owned(),
            admin_url: String::new(),
            read_url: read_url.to_owned(),
            write_url: write_url.to_owned(),
            writer: String::new(),
            _dir: None,
        }
    }
}

/// `engine` in the suite's type, by its config name.
///
/// # Panics
/// When the type has no engine of that name.
fn engine_as<E: DeserializeOwned>(engine: Engine) -> E {
    let name: StrDeserializer<'_, serde::de::value::Error> = engine.as_str().into_deserializer();
    E::deserialize(name).unwrap_or_else(|e| panic!("no engine {:?} in the suite's type: {e}", engine.as_str()))
}

/// The receipts table's (DDL, GRANTs) for (schema, writer).
type ReceiptsSql<'a> = dyn Fn(&str, &str) -> (String, String) + 'a;

/// The writer of a fresh database: the tables it may SELECT and UPDATE, and the receipts table
/// when one is wanted.
struct Writer<'a> {
    tables: &'a [&'a str],
    receipts: Option<&'a ReceiptsSql<'a>>,
}

/// A PostgreSQL role that may log in to `db` and use its public schema.
fn pg_login(db: &str, role: &str, password: &str) -> String {
    format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}';
         GRANT CONNECT ON DATABASE {db} TO {role};
         GRANT USAGE ON SCHEMA public TO {role};"
    )
}

/// Seeds a new database as its admin and adds the logins. PostgreSQL roles are `<db>_r` and
/// `<db>_w`; MySQL users are `r<tag>` and `w<tag>`, the tag being the database name's unique
/// tail (user names have at most 32 characters). The read role's grants come before the
/// receipts table on PostgreSQL, so it cannot read receipts there.
async fn create(server: Server, seed: &str, writer: Option<Writer<'_>>) -> Option<TestDb> {
    let (db, admin_url) = server.create_database("synapsor_t").await?;
    let (read, write, schema) = match server {
        Server::Postgres => (format!("{db}_r"), format!("{db}_w"), "public".to_owned()),
        Server::Mysql => {
            let tag = &db[db.len().saturating_sub(20)..];
            (format!("r{tag}"), format!("w{tag}"), db.clone())
        }
    };
    let mut sql = seed.to_owned();
    match server {
        Server::Postgres => {
            sql.push_str(&pg_login(&db, &read, "read_pw"));
            sql.push_str(&format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {read};"));
            if let Some(w) = &writer {
                sql.push_str(&pg_login(&db, &write, "write_pw"));
                sql.push_str(&format!("GRANT SELECT, UPDATE ON {} TO {write};", w.tables.join(", ")));
            }
        }
        Server::Mysql => {
            for host in MYSQL_HOSTS {
                sql.push_str(&format!(
                    "CREATE USER '{read}'@'{host}' IDENTIFIED BY 'read_pw';
                     GRANT SELECT ON {db}.* TO '{read}'@'{host}';"
                ));
                if let Some(w) = &writer {
                    sql.push_str(&format!("CREATE USER '{write}'@'{host}' IDENTIFIED BY 'write_pw';"));
                    for table in w.tables {
                        sql.push_str(&format!("GRANT SELECT, UPDATE ON {db}.{table} TO '{write}'@'{host}';"));
                    }
                }
            }
        }
    }
    if let Some(receipts) = writer.as_ref().and_then(|w| w.receipts) {
        let (ddl, grants) = receipts(&schema, &write);
        sql.push_str(&ddl);
        sql.push_str(&grants);
        if server == Server::Mysql {
            sql.push_str(&grants.replace("@'%'", "@'localhost'"));
        }
    }
    server.exec(&admin_url, &sql).await;
    let (write_url, writer) = match writer {
        Some(_) => (with_user(&admin_url, &write, "write_pw"), write),
        None => (String::new(), String::new()),
    };
    Some(TestDb {
        engine: server.into(),
        kind: server.into(),
        schema,
        read_url: with_user(&admin_url, &read, "read_pw"),
        write_url,
        writer,
        admin_url,
        _dir: None,
    })
}

/// A SQLite file with `seed` and, when given, the receipts table's DDL, in a new temporary
/// folder.
fn sqlite_file(seed: &str, receipts_ddl: Option<&str>) -> TestDb {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("source.db");
    let conn = rusqlite::Connection::open(&path).expect("create the SQLite test database");
    for sql in [Some(seed), receipts_ddl].into_iter().flatten() {
        if let Err(e) = conn.execute_batch(sql) {
            panic!("statement failed on the test database: {e}");
        }
    }
    drop(conn);
    let url = format!("sqlite://{}", path.display());
    TestDb {
        engine: Engine::Sqlite,
        kind: Engine::Sqlite,
        schema: "main".into(),
        admin_url: url.clone(),
        read_url: url.clone(),
        write_url: url,
        writer: String::new(),
        _dir: Some(Arc::new(dir)),
    }
}

/// Statements and queries as the admin, over a fresh connection each time, and the SQL the
/// writeback tests change rows with. The row helpers assume the tables of [`Engine::seed`].
impl<E> TestDb<E> {
    /// Runs `sql` (one or more statements) as the admin.
    ///
    /// # Panics
    /// When connecting or any statement fails.
    pub async fn exec(&self, sql: &str) {
        match self.kind.server() {
            Some(server) => server.exec(&self.admin_url, sql).await,
            None => {
                if let Err(e) = self.sqlite().execute_batch(sql) {
                    panic!("statement failed on the test database: {e}");
                }
            }
        }
    }

    /// The integer that `sql` (one scalar expression or query) gives as the admin; NULL is -1.
    ///
    /// # Panics
    /// When connecting or the query fails.
    pub async fn int(&self, sql: &str) -> i64 {
        match self.kind.server() {
            Some(server) => server.int(&self.admin_url, sql).await,
            None => {
                let v: Result<Option<i64>, _> = self.sqlite().query_row(&format!("SELECT ({sql})"), [], |r| r.get(0));
                match v {
                    Ok(v) => v.unwrap_or(-1),
                    Err(e) => panic!("query failed on the test database: {e}"),
                }
            }
        }
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let path = self.admin_url.trim_start_matches("sqlite://");
        rusqlite::Connection::open(path).expect("open the SQLite test database")
    }

    /// The engine's name in the runner's config.
    pub fn engine_name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The current time as a SQL expression (see [`Engine::now_sql`]).
    pub fn now_expr(&self) -> &'static str {
        self.kind.now_sql()
    }

    /// Rows in the receipts table; -1 when it does not exist.
    pub async fn source_receipts(&self) -> i64 {
        let exists = match self.kind {
            Engine::Postgres => format!("SELECT count(*) FROM pg_tables WHERE tablename = '{RECEIPTS_TABLE}'"),
            Engine::Mysql => format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = '{RECEIPTS_TABLE}'",
                self.schema
            ),
            Engine::Sqlite => format!("SELECT count(*) FROM sqlite_master WHERE name = '{RECEIPTS_TABLE}'"),
        };
        if self.int(&exists).await == 0 {
            return -1;
        }
        self.int(&format!("SELECT count(*) FROM {RECEIPTS_TABLE}")).await
    }

    /// The late fee of invoice `id`.
    pub async fn fee(&self, id: &str) -> i64 {
        self.int(&format!("SELECT late_fee_cents FROM invoices WHERE id = '{id}'"))
            .await
    }

    /// How many times invoice `id` was updated (a trigger counts).
    pub async fn writes(&self, id: &str) -> i64 {
        self.int(&format!("SELECT apply_count FROM invoices WHERE id = '{id}'"))
            .await
    }

    /// How many times any invoice was updated.
    pub async fn total_writes(&self) -> i64 {
        self.int("SELECT sum(apply_count) FROM invoices").await
    }

    /// An UPDATE that changes invoice `id` the way another writer would: a new `updated_at`
    /// (its version) and a note.
    pub fn touch_sql(&self, id: &str) -> String {
        format!(
            "UPDATE invoices SET updated_at = {}, note = 'changed' WHERE id = '{id}'",
            self.now_expr()
        )
    }

    /// An UPDATE that moves invoice `id`'s `updated_at` 1 µs ahead. SQLite keeps the time as
    /// text and cannot add to it: there the new value is INV-2's seeded time plus 1 µs, so use
    /// it on INV-2.
    pub fn bump_micro_sql(&self, id: &str) -> String {
        let v = match self.kind {
            Engine::Postgres => "updated_at + interval '1 microsecond'",
            Engine::Mysql => "updated_at + INTERVAL 1 MICROSECOND",
            Engine::Sqlite => "'2026-06-20T14:31:08.123457Z'",
        };
        format!("UPDATE invoices SET updated_at = {v} WHERE id = '{id}'")
    }
}
