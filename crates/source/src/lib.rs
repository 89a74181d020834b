//! Source databases: one pooled, tenant-scoped, read-only lookup per call.
//!
//! What it is: the [`SourceDb`] trait and its implementations for PostgreSQL and MySQL/MariaDB
//! (sqlx connections in a small pool of its own, see `pool`) and SQLite (rusqlite, read-only).
//! Each runs one parameterized SELECT of reviewed columns by primary key AND tenant, on a pooled
//! connection with a statement timeout, and returns
//! the row as a JSON object built by the database itself (so every column type maps to JSON the
//! same way on every call).
//!
//! What it is not: it never writes (connections are opened read-only where the engine allows),
//! never sees a model-controlled identifier (only [`ReadSpec`] identifiers, checked by the core),
//! and never returns driver text to callers: errors become [`ToolError`]s with stable codes, and
//! details go to the log.

pub mod catalog;
mod mysql;
pub mod pg_catalog;
mod pool;
mod postgres;
mod sqlite;

use std::time::Duration;

use serde_json::{Map, Value};
use synapsor_core::capability::ReadSpec;
use synapsor_core::config::{Engine, Source, SslMode};
use synapsor_core::context::{BoxFuture, Env};
use synapsor_core::{ToolCode, ToolError};

pub use mysql::MySqlSource;
pub use pool::PING_IDLE_AFTER;
pub use postgres::PgSource;
pub use sqlite::SqliteSource;

/// The value the primary key is looked up by. Tenants are always text.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupValue {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl LookupValue {
    /// From a checked argument: numbers stay numbers so engines that compare loosely (MySQL)
    /// compare numerically.
    pub fn from_json(v: &Value) -> Option<LookupValue> {
        match v {
            Value::String(s) => Some(LookupValue::Text(s.clone())),
            Value::Number(n) => n
                .as_i64()
                .map(LookupValue::Integer)
                .or_else(|| n.as_f64().map(LookupValue::Float)),
            Value::Bool(b) => Some(LookupValue::Text(b.to_string())),
            _ => None,
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            LookupValue::Text(s) => s.clone(),
            LookupValue::Integer(i) => i.to_string(),
            LookupValue::Float(f) => f.to_string(),
        }
    }
}

/// One scoped read.
#[derive(Debug)]
pub struct ScopedRead<'a> {
    pub spec: &'a ReadSpec,
    pub id: LookupValue,
    /// The trusted tenant; `None` only for single-tenant development targets.
    pub tenant: Option<&'a str>,
    /// The trusted principal, bound when the spec has a `principal_key`.
    pub principal: Option<&'a str>,
}

/// What a read found: no row, or exactly one (more than one is an error, `MULTI_ROW_BLOCKED`).
pub type ReadResult = Option<Map<String, Value>>;

/// A source database that can do scoped reads.
pub trait SourceDb: Send + Sync + std::fmt::Debug {
    fn engine(&self) -> Engine;

    /// Reads at most one row by primary key and tenant.
    fn read_scoped<'a>(&'a self, read: &'a ScopedRead<'a>) -> BoxFuture<'a, Result<ReadResult, ToolError>>;

    /// Checks that the database answers (used by `up` and `doctor`).
    fn ping(&self) -> BoxFuture<'_, Result<(), ToolError>>;
}

/// Pool settings shared by the engines.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub ssl: Option<SslMode>,
}

impl PoolSettings {
    pub fn for_source(source: &Source) -> Self {
        PoolSettings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_millis(source.statement_timeout_ms.unwrap_or(5000)),
            ssl: source.ssl.as_ref().map(|s| s.mode),
        }
    }
}

/// Opens a source from its config and the URL read from its `read_url_env`. Connections are made
/// lazily, so this does no IO for PostgreSQL and MySQL.
pub fn open_source(name: &str, source: &Source, env: &dyn Env) -> Result<Box<dyn SourceDb>, ToolError> {
    let url = env.var(&source.read_url_env).ok_or_else(|| {
        ToolError::new(
            ToolCode::SourceCredentialMissing,
            format!("source {name}: environment variable {} is not set", source.read_url_env),
        )
    })?;
    let settings = PoolSettings::for_source(source);
    Ok(match source.engine {
        Engine::Postgres => Box::new(PgSource::open(name, &url, &settings)?),
        Engine::Mysql => Box::new(MySqlSource::open(name, &url, &settings)?),
        Engine::Sqlite => Box::new(SqliteSource::open(name, &url, &settings)?),
    })
}

/// Maps a sqlx error to a stable code, logging the detail (never returned to callers).
pub(crate) fn map_sqlx_error(source: &str, err: &sqlx::Error) -> ToolError {
    use sqlx::Error as E;
    let (code, what) = match err {
        E::Database(_) if pool::connection_lost(err) => {
            (ToolCode::SourceUnavailable, "the database closed the connection")
        }
        E::Database(db) => {
            let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match state.as_str() {
                // PostgreSQL: statement timeout; MySQL 3024 / MariaDB 1969: max execution time.
                "57014" | "3024" | "1969" | "70100" => (ToolCode::SourceTimeout, "statement timed out"),
                // Undefined table/column (PostgreSQL 42P01/42703, MySQL 1146/1054).
                "42P01" | "42703" | "42S02" | "42S22" | "1146" | "1054" => (
                    ToolCode::SourceSchemaMismatch,
                    "table or column in the config does not exist in the source",
                ),
                // Data exceptions: the id cannot be a value of the key's type, so no row has it.
                s if s.starts_with("22") => (ToolCode::RowNotFound, "lookup value does not fit the key type"),
                s if s.starts_with("28") || s.starts_with("08") => {
                    (ToolCode::SourceUnavailable, "connection refused by the database")
                }
                _ => (ToolCode::Internal, "database error"),
            }
        }
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
            (ToolCode::SourceUnavailable, "database unreachable")
        }
        E::Configuration(_) => (ToolCode::SourceUnavailable, "database URL or options are invalid"),
        _ => (ToolCode::Internal, "database error"),
    };
    tracing::warn!(source, code = code.as_str(), error = %redact(&err.to_string()), "source query failed");
    ToolError::new(code, format!("source {source}: {what}"))
}

/// Removes anything URL-shaped with credentials from a log line (driver and handler messages
/// can quote a connection string). Used by the executor too.
pub fn redact(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            if w.contains("://") && w.contains('@') {
                "[redacted-url]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses the single JSON object a read returns and checks for a second row.
pub(crate) fn one_row(rows: Vec<String>, source: &str) -> Result<ReadResult, ToolError> {
    if rows.len() > 1 {
        return Err(ToolError::new(
            ToolCode::MultiRowBlocked,
            format!("source {source}: the key matched more than one row"),
        ));
    }
    match rows.into_iter().next() {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => Err(ToolError::new(
                ToolCode::Internal,
                format!("source {source}: row did not decode"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_urls() {
        assert_eq!(
            redact("error connecting to postgres://u:secret@h:5432/db: refused"),
            "error connecting to [redacted-url] refused"
        );
    }

    #[test]
    fn lookup_values() {
        assert_eq!(
            LookupValue::from_json(&serde_json::json!(42)),
            Some(LookupValue::Integer(42))
        );
        assert_eq!(
            LookupValue::from_json(&serde_json::json!("x")),
            Some(LookupValue::Text("x".into()))
        );
        assert_eq!(LookupValue::from_json(&serde_json::json!(null)), None);
    }
}
