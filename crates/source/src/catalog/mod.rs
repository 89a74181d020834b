//! What a database's catalog says about its tables: the input of onboarding (`inspect`, `init`,
//! `onboard db`).
//!
//! What it is: one metadata read per engine (PostgreSQL `pg_catalog`, MySQL/MariaDB
//! `information_schema`, SQLite `sqlite_schema` and its pragmas) into one engine-neutral
//! [`Catalog`] (its types live in `synapsor_core::catalog`, so that onboarding's rules stay in the
//! pure layer): tables and views, columns with their declared types, primary and unique keys,
//! foreign keys and indexes.
//!
//! What it is not: it never reads a row of table data, never writes, and makes no suggestion
//! (classifying columns as tenant, version or sensitive is the onboarding crate's job). Errors are
//! [`CatalogError`]s with stable codes; driver text is redacted and never carries a URL.

mod mysql;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::time::Duration;

pub use synapsor_core::catalog::{Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, TableKind};
use synapsor_core::config::Engine;

use crate::redact;

/// How long connecting may take, and how long each catalog statement may run (PostgreSQL
/// `statement_timeout`, MariaDB `max_statement_time`, MySQL `max_execution_time`; for SQLite the
/// whole read, which has no server to time it).
pub const CATALOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the catalog could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The URL does not parse for the engine (the message never quotes it).
    #[error("the database URL is not a valid {engine} URL")]
    UrlInvalid { engine: &'static str },
    /// Connecting failed: unreachable, refused, authentication, TLS.
    #[error("could not connect to the database: {reason}")]
    Unavailable { reason: String },
    /// The schema (PostgreSQL) or database (MySQL) does not exist or is not visible to this role.
    #[error("schema {schema} does not exist or this role cannot see it")]
    SchemaNotFound { schema: String },
    /// A catalog query failed (redacted driver text).
    #[error("reading the catalog failed: {reason}")]
    Query { reason: String },
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::UrlInvalid { .. } => "INSPECT_URL_INVALID",
            CatalogError::Unavailable { .. } => "INSPECT_DATABASE_UNAVAILABLE",
            CatalogError::SchemaNotFound { .. } => "INSPECT_SCHEMA_NOT_FOUND",
            CatalogError::Query { .. } => "INSPECT_CATALOG_FAILED",
        }
    }
}

/// The engine a database URL is for, from its scheme: `postgres://`/`postgresql://`,
/// `mysql://`/`mariadb://`, `sqlite:`/`sqlite://`, or a plain path ending `.db`, `.sqlite` or
/// `.sqlite3` (SQLite). `None` for anything else: the caller then asks for the engine.
pub fn engine_from_url(url: &str) -> Option<Engine> {
    let url = url.trim();
    let has_scheme = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    };
    if has_scheme("postgres://") || has_scheme("postgresql://") {
        Some(Engine::Postgres)
    } else if has_scheme("mysql://") || has_scheme("mariadb://") {
        Some(Engine::Mysql)
    } else if has_scheme("sqlite:") {
        Some(Engine::Sqlite)
    } else if url.contains("://") {
        None
    } else {
        let path = url.split('?').next().unwrap_or_default().to_ascii_lowercase();
        [".db", ".sqlite", ".sqlite3"]
            .iter()
            .any(|ext| path.len() > ext.len() && path.ends_with(ext))
            .then_some(Engine::Sqlite)
    }
}

/// Reads the catalog of one schema: `public` by default on PostgreSQL, the URL's database on
/// MySQL/MariaDB, `main` on SQLite (`schema` overrides it; empty means the default).
///
/// One connection, opened read-only where the engine allows it (PostgreSQL
/// `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite
/// `SQLITE_OPEN_READ_ONLY`: a missing file is [`CatalogError::Unavailable`] and is never
/// created), with [`CATALOG_TIMEOUT`] on connecting and on each statement. Only catalog
/// metadata is queried, with the schema and table names bound as values, so a role that may not
/// SELECT from the tables can still inspect them.
pub async fn read_catalog(engine: Engine, url: &str, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    let schema = schema.filter(|s| !s.is_empty());
    // A URL of another engine would otherwise reach a driver that may parse it loosely.
    match engine_from_url(url) {
        Some(found) if found != engine => return Err(url_invalid(engine)),
        None if engine != Engine::Sqlite => return Err(url_invalid(engine)),
        _ => {}
    }
    match engine {
        Engine::Postgres => postgres::read(url, schema).await,
        Engine::Mysql => mysql::read(url, schema).await,
        Engine::Sqlite => sqlite::read(url, schema).await,
    }
}

fn url_invalid(engine: Engine) -> CatalogError {
    CatalogError::UrlInvalid {
        engine: engine.as_str(),
    }
}

/// The tables of a catalog while it is being read, by name (so they come out sorted).
#[derive(Debug, Default)]
struct Tables(BTreeMap<String, TableInfo>);

impl Tables {
    fn add(&mut self, name: String, kind: TableKind) {
        self.0.insert(
            name.clone(),
            TableInfo {
                name,
                kind,
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique_keys: Vec::new(),
                foreign_keys: Vec::new(),
                indexes: Vec::new(),
            },
        );
    }

    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The table `name`; `None` for relations that were not listed (a partition, another kind),
    /// whose rows from the other catalog queries are ignored.
    fn get(&mut self, name: &str) -> Option<&mut TableInfo> {
        self.0.get_mut(name)
    }

    /// Adds an index (and, by its flags, the primary key or a unique key) to `table`.
    fn add_index(&mut self, table: &str, index: IndexInfo, primary: bool, enforces_unique_key: bool) {
        let Some(t) = self.get(table) else { return };
        if primary {
            t.primary_key = index.columns.clone();
        } else if index.unique && enforces_unique_key {
            t.unique_keys.push(index.columns.clone());
        }
        t.indexes.push(index);
    }

    /// The catalog, with every list in a stable order whatever order the engine answered in:
    /// indexes by name, unique and foreign keys by their columns (SQLite's have no names). A
    /// unique key equal to the primary key, or repeated (a constraint and an index on the same
    /// columns), is listed once, as the primary key.
    fn finish(self, engine: Engine, schema: String) -> Catalog {
        let tables = self
            .0
            .into_values()
            .map(|mut t| {
                t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
                t.unique_keys.sort();
                t.unique_keys.dedup();
                let pk = t.primary_key.clone();
                t.unique_keys.retain(|k| *k != pk);
                t.foreign_keys.sort_by(|a, b| {
                    (&a.columns, &a.references_table, &a.references_columns).cmp(&(
                        &b.columns,
                        &b.references_table,
                        &b.references_columns,
                    ))
                });
                t
            })
            .collect();
        Catalog { engine, schema, tables }
    }
}

/// Why connecting (or setting up the session) failed, in a few words: never driver text, which
/// can quote the URL, the user or the host.
fn connect_error(err: &sqlx::Error) -> CatalogError {
    use sqlx::Error as E;
    let reason = match err {
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            std::io::ErrorKind::TimedOut => "timed out",
            std::io::ErrorKind::NotFound => "no server at that address",
            _ if io.to_string().contains("lookup") => "host not found",
            _ => "connection failed",
        },
        E::Tls(_) => "TLS failed",
        E::Database(db) => {
            let mysql = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|e| e.number());
            match (db.code().as_deref(), mysql) {
                // MySQL: access denied (1045), to the database (1044); PostgreSQL 28xxx.
                (_, Some(1045)) => "authentication failed",
                (_, Some(1044)) => "access to the database denied",
                (_, Some(1049)) | (Some("3D000"), _) => "the database does not exist",
                (_, Some(1040)) | (Some("53300"), _) => "too many connections",
                (Some(c), _) if c.starts_with("28") => "authentication failed",
                (Some(c), _) if c.starts_with("57P") => "the server is starting up or shutting down",
                _ => "the server refused the connection",
            }
        }
        E::Protocol(_) => "protocol error",
        E::Configuration(_) => "the connection options are not supported",
        _ => "connection failed",
    };
    tracing::debug!(error = %redact(&err.to_string()), reason, "catalog connection failed");
    CatalogError::Unavailable {
        reason: reason.to_owned(),
    }
}

/// A failed catalog statement: a timeout, a lost connection, or the database's own message
/// (redacted; catalog queries quote no URL, but a message may).
fn query_error(err: &sqlx::Error) -> CatalogError {
    use sqlx::Error as E;
    tracing::warn!(error = %redact(&err.to_string()), "catalog query failed");
    let reason = match err {
        E::Database(db) => match db.code().as_deref() {
            // PostgreSQL statement timeout; MySQL 3024 / MariaDB 1969 (both 70100 or HY000).
            Some("57014") => "timed out".to_owned(),
            _ if db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| matches!(e.number(), 3024 | 1969)) =>
            {
                "timed out".to_owned()
            }
            _ => redact(db.message()),
        },
        E::Io(_) | E::Tls(_) | E::Protocol(_) => "the connection was lost".to_owned(),
        E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::TypeNotFound { .. } => {
            "the catalog answered in an unexpected shape".to_owned()
        }
        _ => "database error".to_owned(),
    };
    CatalogError::Query { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_by_scheme_and_extension() {
        assert_eq!(engine_from_url("postgres://u:p@h/db"), Some(Engine::Postgres));
        assert_eq!(engine_from_url("PostgreSQL://h/db"), Some(Engine::Postgres));
        assert_eq!(engine_from_url("mysql://h/db"), Some(Engine::Mysql));
        assert_eq!(engine_from_url("mariadb://h/db"), Some(Engine::Mysql));
        assert_eq!(engine_from_url("sqlite:app.db"), Some(Engine::Sqlite));
        assert_eq!(engine_from_url("sqlite:///tmp/x"), Some(Engine::Sqlite));
        assert_eq!(engine_from_url("./data/app.SQLITE3"), Some(Engine::Sqlite));
        assert_eq!(engine_from_url("app.sqlite?mode=ro"), Some(Engine::Sqlite));
        assert_eq!(engine_from_url(".db"), None);
        assert_eq!(engine_from_url("app.txt"), None);
        assert_eq!(engine_from_url("http://h/app.db"), None);
        assert_eq!(engine_from_url(""), None);
        assert_eq!(engine_from_url("é"), None);
    }

    #[test]
    fn finish_orders_and_dedups() {
        let mut t = Tables::default();
        t.add("b".into(), TableKind::Table);
        t.add("a".into(), TableKind::View);
        let idx = |name: &str, cols: &[&str], unique| IndexInfo {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            unique,
        };
        t.add_index("b", idx("z", &["x", "y"], true), false, true);
        t.add_index("b", idx("pk", &["id"], true), true, true);
        t.add_index("b", idx("also_pk", &["id"], true), false, true);
        t.add_index("b", idx("dup", &["x", "y"], true), false, true);
        t.add_index("b", idx("partial", &["w"], true), false, false);
        t.add_index("gone", idx("i", &["id"], true), true, true);
        let c = t.finish(Engine::Sqlite, "main".into());
        assert_eq!(c.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let b = &c.tables[1];
        assert_eq!(b.primary_key, ["id"]);
        assert_eq!(b.unique_keys, [["x", "y"]]);
        assert_eq!(
            b.indexes.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["also_pk", "dup", "partial", "pk", "z"]
        );
    }
}
