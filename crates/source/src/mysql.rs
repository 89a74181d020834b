//! MySQL and MariaDB source: a lazy pool ([`crate::pool`]); each connection is set read-only
//! with a statement time limit once, at connect (MySQL's `max_execution_time`, MariaDB's
//! `max_statement_time`).

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Executor};
use synapsor_core::config::{Engine, SslMode};
use synapsor_core::context::BoxFuture;
use synapsor_core::ident::Dialect;
use synapsor_core::{ToolCode, ToolError};

use crate::pool::ConnPool;
use crate::{LookupValue, PoolSettings, ReadResult, ScopedRead, SourceDb, map_sqlx_error, one_row};

#[derive(Debug)]
pub struct MySqlSource {
    name: String,
    pool: ConnPool<MySqlConnection>,
}

impl MySqlSource {
    pub fn open(name: &str, url: &str, settings: &PoolSettings) -> Result<Self, ToolError> {
        // Accept mariadb:// as an alias of mysql://.
        let url = url
            .strip_prefix("mariadb://")
            .map(|rest| format!("mysql://{rest}"))
            .unwrap_or_else(|| url.to_owned());
        let mut opts = MySqlConnectOptions::from_str(&url).map_err(|_| {
            ToolError::new(
                ToolCode::SourceUnavailable,
                format!("source {name}: the read URL is not a valid MySQL URL"),
            )
        })?;
        if let Some(mode) = settings.ssl {
            opts = opts.ssl_mode(match mode {
                SslMode::Disable => MySqlSslMode::Disabled,
                SslMode::Prefer => MySqlSslMode::Preferred,
                SslMode::Require => MySqlSslMode::Required,
                SslMode::VerifyCa => MySqlSslMode::VerifyCa,
                SslMode::VerifyFull => MySqlSslMode::VerifyIdentity,
            });
        }
        let opts = opts.timezone(Some("+00:00".to_owned())).disable_statement_logging();
        let timeout_ms = settings.statement_timeout.as_millis() as u64;
        let pool = ConnPool::new(
            settings.max_connections,
            settings.acquire_timeout,
            Box::new(move || {
                let opts = opts.clone();
                Box::pin(async move {
                    let mut conn = opts.connect().await?;
                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                    // MariaDB names the limit max_statement_time (seconds); MySQL
                    // max_execution_time (milliseconds). Try MariaDB's first.
                    let mariadb = format!("SET SESSION max_statement_time = {}", timeout_ms as f64 / 1000.0);
                    if conn.execute(AssertSqlSafe(mariadb)).await.is_err() {
                        conn.execute(AssertSqlSafe(format!("SET SESSION max_execution_time = {timeout_ms}")))
                            .await?;
                    }
                    Ok(conn)
                })
            }),
        );
        Ok(MySqlSource {
            name: name.to_owned(),
            pool,
        })
    }
}

impl SourceDb for MySqlSource {
    fn engine(&self) -> Engine {
        Engine::Mysql
    }

    fn read_scoped<'a>(&'a self, read: &'a ScopedRead<'a>) -> BoxFuture<'a, Result<ReadResult, ToolError>> {
        Box::pin(async move {
            let spec = read.spec;
            let pairs: Vec<String> = spec
                .columns
                .iter()
                .map(|c| format!("{}, {}", c.literal(), c.quoted(Dialect::MySql)))
                .collect();
            let mut sql = format!(
                "SELECT CAST(JSON_OBJECT({}) AS CHAR) FROM {}.{} WHERE {} = ?",
                pairs.join(", "),
                spec.schema.quoted(Dialect::MySql),
                spec.table.quoted(Dialect::MySql),
                spec.primary_key.quoted(Dialect::MySql),
            );
            if let Some(tk) = &spec.tenant_key {
                sql.push_str(&format!(" AND {} = ?", tk.quoted(Dialect::MySql)));
            }
            if let Some(pk) = &spec.principal_key {
                sql.push_str(&format!(" AND {} = ?", pk.quoted(Dialect::MySql)));
            }
            sql.push_str(" LIMIT 2");
            let rows = self
                .pool
                .run(|mut conn| {
                    let q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.clone()));
                    let mut q = match &read.id {
                        LookupValue::Text(s) => q.bind(s.clone()),
                        LookupValue::Integer(i) => q.bind(*i),
                        LookupValue::Float(f) => q.bind(*f),
                    };
                    if spec.tenant_key.is_some() {
                        q = q.bind(read.tenant.unwrap_or_default().to_owned());
                    }
                    if spec.principal_key.is_some() {
                        q = q.bind(read.principal.unwrap_or_default().to_owned());
                    }
                    async move {
                        let rows = q.fetch_all(&mut conn).await;
                        (conn, rows)
                    }
                })
                .await
                .map_err(|e| map_sqlx_error(&self.name, &e))?;
            one_row(rows, &self.name)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), ToolError>> {
        Box::pin(async move {
            self.pool
                .run(|mut conn| async move {
                    let done = sqlx::query("SELECT 1").execute(&mut conn).await;
                    (conn, done)
                })
                .await
                .map_err(|e| map_sqlx_error(&self.name, &e))?;
            Ok(())
        })
    }
}
