//! PostgreSQL source: a lazy pool ([`crate::pool`]) whose connections start read-only, in UTC, with the
//! statement timeout set once at connect (no extra round trips per call).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions};
use synapsor_core::capability::ReadSpec;
use synapsor_core::config::{Engine, SslMode};
use synapsor_core::context::BoxFuture;
use synapsor_core::ident::Dialect;
use synapsor_core::{ToolCode, ToolError};

use crate::pg_catalog;
use crate::pool::ConnPool;
use crate::{PoolSettings, ReadResult, ScopedRead, SourceDb, map_sqlx_error, one_row};

#[derive(Debug)]
pub struct PgSource {
    name: String,
    pool: ConnPool<PgConnection>,
    /// SELECT text per `schema.table.columns`, built once from the catalog's column types.
    plans: Mutex<HashMap<String, Arc<str>>>,
}

impl PgSource {
    pub fn open(name: &str, url: &str, settings: &PoolSettings) -> Result<Self, ToolError> {
        let mut opts = PgConnectOptions::from_str(url).map_err(|_| {
            ToolError::new(
                ToolCode::SourceUnavailable,
                format!("source {name}: the read URL is not a valid PostgreSQL URL"),
            )
        })?;
        if let Some(mode) = settings.ssl {
            opts = opts.ssl_mode(match mode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            });
        }
        let opts = opts
            .application_name("synapsor-runner")
            .options([
                ("statement_timeout", settings.statement_timeout.as_millis().to_string()),
                ("default_transaction_read_only", "on".to_owned()),
                ("TimeZone", "UTC".to_owned()),
            ])
            .disable_statement_logging();
        let pool = ConnPool::new(
            settings.max_connections,
            settings.acquire_timeout,
            Box::new(move || {
                let opts = opts.clone();
                Box::pin(async move { opts.connect().await })
            }),
        );
        Ok(PgSource {
            name: name.to_owned(),
            pool,
            plans: Mutex::new(HashMap::new()),
        })
    }

    async fn plan(&self, spec: &ReadSpec) -> Result<Arc<str>, ToolError> {
        // The statement depends on the columns read and on the keys of the WHERE clause.
        let key = format!(
            "{}.{}:{}:{}/{}/{}",
            spec.schema,
            spec.table,
            spec.columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","),
            spec.primary_key,
            spec.tenant_key.as_ref().map_or("", |k| k.as_str()),
            spec.principal_key.as_ref().map_or("", |k| k.as_str()),
        );
        if let Some(p) = self.plans.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let types = self
            .pool
            .run(|mut conn| async move {
                let types = pg_catalog::column_types(&mut conn, spec.schema.as_str(), spec.table.as_str()).await;
                (conn, types)
            })
            .await
            .map_err(|e| map_sqlx_error(&self.name, &e))?;
        if types.is_empty() {
            return Err(self.mismatch(format!(
                "table {}.{} does not exist or is not visible to the read role",
                spec.schema, spec.table
            )));
        }
        for col in &spec.columns {
            if !types.contains_key(col.as_str()) {
                return Err(self.mismatch(format!(
                    "column {} does not exist in {}.{}",
                    col, spec.schema, spec.table
                )));
            }
        }
        let param = |n: usize, col: &str| -> Result<String, ToolError> {
            let ty = &types[col];
            pg_catalog::param(n, ty)
                .ok_or_else(|| self.mismatch(format!("column {col} has a type this runner cannot bind: {ty}")))
        };
        let cols: Vec<String> = spec.columns.iter().map(|c| c.quoted(Dialect::Ansi)).collect();
        let mut sql = format!(
            "SELECT row_to_json(t)::text FROM (SELECT {} FROM {}.{} WHERE {} = {}",
            cols.join(", "),
            spec.schema.quoted(Dialect::Ansi),
            spec.table.quoted(Dialect::Ansi),
            spec.primary_key.quoted(Dialect::Ansi),
            param(1, spec.primary_key.as_str())?,
        );
        for (n, key) in (2..).zip([&spec.tenant_key, &spec.principal_key].into_iter().flatten()) {
            sql.push_str(&format!(
                " AND {} = {}",
                key.quoted(Dialect::Ansi),
                param(n, key.as_str())?
            ));
        }
        sql.push_str(" LIMIT 2) t");
        let plan: Arc<str> = Arc::from(sql);
        if let Ok(mut m) = self.plans.lock() {
            m.insert(key, plan.clone());
        }
        Ok(plan)
    }

    fn mismatch(&self, what: String) -> ToolError {
        tracing::warn!(source = %self.name, "{what}");
        ToolError::new(ToolCode::SourceSchemaMismatch, format!("source {}: {what}", self.name))
    }
}

impl SourceDb for PgSource {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn read_scoped<'a>(&'a self, read: &'a ScopedRead<'a>) -> BoxFuture<'a, Result<ReadResult, ToolError>> {
        Box::pin(async move {
            let sql = self.plan(read.spec).await?;
            let rows = self
                .pool
                .run(|mut conn| {
                    let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.to_string())).bind(read.id.as_text());
                    if read.spec.tenant_key.is_some() {
                        q = q.bind(read.tenant.unwrap_or_default().to_owned());
                    }
                    if read.spec.principal_key.is_some() {
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
