//! SQLite source: a small set of read-only rusqlite connections used from blocking threads.
//! This is the embedded engine of the demo and of local development.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter, types::Value as SqlValue};
use synapsor_core::config::Engine;
use synapsor_core::context::BoxFuture;
use synapsor_core::ident::Dialect;
use synapsor_core::{ToolCode, ToolError};

use crate::{LookupValue, PoolSettings, ReadResult, ScopedRead, SourceDb, one_row};

#[derive(Debug, Clone)]
pub struct SqliteSource {
    name: String,
    path: String,
    /// Idle connections; at most `max` are kept.
    idle: Arc<Mutex<Vec<Connection>>>,
    max: usize,
    busy_timeout: std::time::Duration,
}

impl SqliteSource {
    /// `url` is `sqlite://PATH`, `sqlite:PATH` or a plain path. The file must exist.
    pub fn open(name: &str, url: &str, settings: &PoolSettings) -> Result<Self, ToolError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        if path.is_empty() {
            return Err(ToolError::new(
                ToolCode::SourceUnavailable,
                format!("source {name}: the SQLite URL has no path"),
            ));
        }
        Ok(SqliteSource {
            name: name.to_owned(),
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            max: settings.max_connections as usize,
            busy_timeout: settings.statement_timeout,
        })
    }

    fn connect(&self) -> Result<Connection, ToolError> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.unavailable(&e))?;
        conn.busy_timeout(self.busy_timeout).map_err(|e| self.unavailable(&e))?;
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < self.max
        {
            v.push(conn);
        }
    }

    fn unavailable(&self, e: &rusqlite::Error) -> ToolError {
        tracing::warn!(source = %self.name, error = %e, "sqlite source unavailable");
        ToolError::new(
            ToolCode::SourceUnavailable,
            format!("source {}: database unreachable", self.name),
        )
    }

    /// Rolls back the hot journal a writer left when it died mid-transaction (killed, crashed,
    /// power lost). A read-only connection cannot, so every read would fail until some writer
    /// opened the file; this opens it read-write once, only for the recovery SQLite does on the
    /// first read, and closes it again. Reads themselves stay on read-only connections.
    fn recover_hot_journal(&self) -> Result<(), rusqlite::Error> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        tracing::warn!(source = %self.name, "rolled back the hot journal of a writer that stopped mid-transaction");
        Ok(())
    }

    /// Runs `sql` on a pooled connection in a blocking thread, interrupting it when the statement
    /// timeout passes (SQLite has no server-side timeout; `sqlite3_interrupt` is its equivalent).
    async fn read(&self, sql: String, params: Vec<SqlValue>) -> Result<Vec<String>, ToolError> {
        let conn = self.connect()?;
        let interrupt = conn.get_interrupt_handle();
        let this = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let run = |conn: &Connection| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<String>, _>>()
            };
            let mut result = run(&conn);
            // A read never writes: "read-only" here means a hot journal is waiting for a writer.
            if let Err(rusqlite::Error::SqliteFailure(e, _)) = &result
                && e.code == rusqlite::ErrorCode::ReadOnly
                && this.recover_hot_journal().is_ok()
            {
                result = run(&conn);
            }
            this.release(conn);
            result
        });
        let result = match tokio::time::timeout(self.busy_timeout, task).await {
            Ok(joined) => joined.map_err(|_| ToolError::new(ToolCode::Internal, "sqlite read task failed"))?,
            Err(_) => {
                interrupt.interrupt();
                tracing::warn!(source = %self.name, "sqlite read interrupted by the statement timeout");
                return Err(ToolError::new(
                    ToolCode::SourceTimeout,
                    format!("source {}: statement timed out", self.name),
                ));
            }
        };
        result.map_err(|e| {
            let msg = e.to_string();
            tracing::warn!(source = %self.name, error = %msg, "sqlite read failed");
            if msg.contains("no such table") || msg.contains("no such column") {
                ToolError::new(
                    ToolCode::SourceSchemaMismatch,
                    format!(
                        "source {}: table or column in the config does not exist in the source",
                        self.name
                    ),
                )
            } else if msg.contains("interrupted") {
                ToolError::new(
                    ToolCode::SourceTimeout,
                    format!("source {}: statement timed out", self.name),
                )
            } else {
                ToolError::new(ToolCode::Internal, format!("source {}: database error", self.name))
            }
        })
    }
}

impl SourceDb for SqliteSource {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn read_scoped<'a>(&'a self, read: &'a ScopedRead<'a>) -> BoxFuture<'a, Result<ReadResult, ToolError>> {
        Box::pin(async move {
            let spec = read.spec;
            let pairs: Vec<String> = spec
                .columns
                .iter()
                .map(|c| format!("{}, {}", c.literal(), c.quoted(Dialect::Ansi)))
                .collect();
            // SQLite has one schema per attached file; `main` and the configured name both mean
            // the main file.
            let mut sql = format!(
                "SELECT json_object({}) FROM {} WHERE {} = ?1",
                pairs.join(", "),
                spec.table.quoted(Dialect::Ansi),
                spec.primary_key.quoted(Dialect::Ansi),
            );
            let mut params = vec![match &read.id {
                LookupValue::Text(s) => SqlValue::Text(s.clone()),
                LookupValue::Integer(i) => SqlValue::Integer(*i),
                LookupValue::Float(f) => SqlValue::Real(*f),
            }];
            if let Some(tk) = &spec.tenant_key {
                sql.push_str(&format!(" AND {} = ?{}", tk.quoted(Dialect::Ansi), params.len() + 1));
                params.push(SqlValue::Text(read.tenant.unwrap_or_default().to_owned()));
            }
            if let Some(pk) = &spec.principal_key {
                sql.push_str(&format!(" AND {} = ?{}", pk.quoted(Dialect::Ansi), params.len() + 1));
                params.push(SqlValue::Text(read.principal.unwrap_or_default().to_owned()));
            }
            sql.push_str(" LIMIT 2");
            let rows = self.read(sql, params).await?;
            one_row(rows, &self.name)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), ToolError>> {
        Box::pin(async move {
            let this = self.clone();
            tokio::task::spawn_blocking(move || {
                let conn = this.connect()?;
                let r = conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).optional();
                this.release(conn);
                r.map(|_| ()).map_err(|e| this.unavailable(&e))
            })
            .await
            .map_err(|_| ToolError::new(ToolCode::Internal, "sqlite ping task failed"))?
        })
    }
}
