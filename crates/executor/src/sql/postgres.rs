//! PostgreSQL statements of the `sql_update` flow. One connection per apply (no pool: an apply is
//! a rare, privileged act), in UTC, with statement and lock timeouts set at connect.
//!
//! Values are bound as text and CAST to the column's catalog type, as reads do, so a key or a
//! patch value compares and stores exactly as the column's own type.

use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Postgres, Transaction};
use synapsor_core::config::{SslMode, VersionAdvance};
use synapsor_core::ident::{Dialect, SafeIdent};
use synapsor_source::pg_catalog;

use super::{
    Bind, Claim, DbFail, FailKind, Job, RECEIPTS_TABLE, Step, WriteTxn, WriterSettings, classify_sqlx, db_failure,
    parse_row, run,
};
use crate::guards::Plan;
use crate::receipt::Receipt;

pub(crate) fn connect_options(url: &str, settings: &WriterSettings) -> Result<PgConnectOptions, DbFail> {
    let mut opts = PgConnectOptions::from_str(url).map_err(|_| DbFail::new(FailKind::BadConfig, "invalid URL"))?;
    if let Some(mode) = settings.ssl {
        opts = opts.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        });
    }
    let ms = settings.statement_timeout.as_millis().to_string();
    Ok(opts
        .application_name("synapsor-runner-writeback")
        .options([
            ("statement_timeout", ms.clone()),
            ("lock_timeout", ms),
            ("TimeZone", "UTC".to_owned()),
        ])
        .disable_statement_logging())
}

pub(crate) async fn connect(url: &str, settings: &WriterSettings) -> Result<PgConnection, DbFail> {
    let opts = connect_options(url, settings)?;
    match tokio::time::timeout(settings.connect_timeout, PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify_sqlx(&e)),
        Err(_) => Err(DbFail::new(FailKind::Unavailable, "connect timed out")),
    }
}

pub(crate) async fn apply(url: &str, settings: &WriterSettings, job: Job) -> Receipt {
    let mut conn = match connect(url, settings).await {
        Ok(c) => c,
        Err(f) => return db_failure(job, Step::Connect, f),
    };
    let statements = match prepare(&mut conn, &job.plan).await {
        Ok(s) => s,
        Err(f) => {
            let _ = conn.close().await;
            return db_failure(job, Step::Prepare, f);
        }
    };
    let receipt = match conn.begin().await {
        Ok(tx) => {
            run(
                PgTxn {
                    tx,
                    statements: &statements,
                },
                job,
            )
            .await
        }
        Err(e) => db_failure(job, Step::Prepare, classify_sqlx(&e)),
    };
    let _ = conn.close().await;
    receipt
}

/// The statements of one apply, with their bound values in order.
#[derive(Debug)]
struct Statements {
    receipts: String,
    lock_sql: String,
    lock_args: Vec<Option<String>>,
    update_sql: String,
    update_args: Vec<Option<String>>,
    /// Whether `update_sql` ends with the version guard (its value is bound last).
    has_version: bool,
}

async fn prepare(conn: &mut PgConnection, plan: &Plan) -> Result<Statements, DbFail> {
    let types = pg_catalog::column_types(conn, plan.schema.as_str(), plan.table.as_str())
        .await
        .map_err(|e| classify_sqlx(&e))?;
    if types.is_empty() {
        return Err(DbFail::new(FailKind::MissingObject, "target table not visible"));
    }
    let param = |n: usize, col: &SafeIdent| -> Result<String, DbFail> {
        let ty = types
            .get(col.as_str())
            .ok_or_else(|| DbFail::new(FailKind::MissingObject, format!("column {col} does not exist")))?;
        pg_catalog::param(n, ty)
            .ok_or_else(|| DbFail::new(FailKind::Other, format!("column {col} has an unbindable type")))
    };
    let q = |i: &SafeIdent| i.quoted(Dialect::Ansi);
    for c in &plan.read_columns {
        if !types.contains_key(c.as_str()) {
            return Err(DbFail::new(
                FailKind::MissingObject,
                format!("column {c} does not exist"),
            ));
        }
    }
    let table = format!("{}.{}", q(&plan.schema), q(&plan.table));

    // WHERE pk AND tenant, shared by the lock and the update (numbered from `first`).
    let key_where = |first: usize, args: &mut Vec<Option<String>>| -> Result<String, DbFail> {
        let mut w = format!("{} = {}", q(&plan.primary_key), param(first, &plan.primary_key)?);
        args.push(Bind::from_json(&plan.primary_key_value).as_text());
        for (i, (col, value)) in plan.scope().enumerate() {
            w.push_str(&format!(" AND {} = {}", q(col), param(first + 1 + i, col)?));
            args.push(Bind::from_json(value).as_text());
        }
        Ok(w)
    };

    let mut lock_args = Vec::new();
    let cols: Vec<String> = plan.read_columns.iter().map(q).collect();
    let lock_sql = format!(
        "SELECT row_to_json(t)::text FROM (SELECT {} FROM {table} WHERE {} LIMIT 2 FOR UPDATE) t",
        cols.join(", "),
        key_where(1, &mut lock_args)?
    );

    let mut update_args = Vec::new();
    let mut sets = Vec::new();
    for (i, (col, value)) in plan.patch.iter().enumerate() {
        sets.push(format!("{} = {}", q(col), param(i + 1, col)?));
        update_args.push(Bind::from_json(value).as_text());
    }
    if let (Some(advance), Some(v)) = (plan.advance, plan.version_column()) {
        let ty = types
            .get(v.as_str())
            .ok_or_else(|| DbFail::new(FailKind::MissingObject, format!("column {v} does not exist")))?;
        sets.push(format!("{} = {}", q(v), advanced(advance, &q(v), v, ty)?));
    }
    let mut update_sql = format!(
        "UPDATE {table} SET {} WHERE {}",
        sets.join(", "),
        key_where(plan.patch.len() + 1, &mut update_args)?
    );
    let has_version = if let Some(v) = plan.version_column() {
        update_sql.push_str(&format!(" AND {} = {}", q(v), param(update_args.len() + 1, v)?));
        true
    } else {
        false
    };

    Ok(Statements {
        receipts: format!("{}.{}", q(&plan.schema), RECEIPTS_TABLE),
        lock_sql,
        lock_args,
        update_sql,
        update_args,
        has_version,
    })
}

/// The new value of version column `col` (quoted `quoted`, catalog type `ty`) for `advance`:
/// never equal to the old one, so a proposal made on the old version conflicts.
fn advanced(advance: VersionAdvance, quoted: &str, col: &SafeIdent, ty: &str) -> Result<String, DbFail> {
    let unsupported = |what: &str| {
        DbFail::new(
            FailKind::Other,
            format!(
                "conflict_guard.advance {} needs {what}; column {col} is {ty}",
                advance.as_str()
            ),
        )
    };
    match advance {
        VersionAdvance::Increment if matches!(ty, "smallint" | "integer" | "bigint" | "numeric") => {
            Ok(format!("{quoted} + 1"))
        }
        VersionAdvance::Increment => Err(unsupported("an integer column")),
        VersionAdvance::Timestamp if ty.starts_with("timestamp") => Ok(format!(
            "GREATEST(CAST(now() AS {ty}), {quoted} + interval '1 microsecond')"
        )),
        VersionAdvance::Timestamp if ty == "text" || ty.starts_with("character varying") => {
            Ok("to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')".to_owned())
        }
        VersionAdvance::Timestamp => Err(unsupported("a timestamp or text column")),
    }
}

struct PgTxn<'c> {
    tx: Transaction<'c, Postgres>,
    statements: &'c Statements,
}

impl WriteTxn for PgTxn<'_> {
    async fn claim(&mut self, key: &str, proposal_id: &str, digest: &str) -> Result<Claim, DbFail> {
        let s = self.statements;
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (idempotency_key, proposal_id, proposal_digest, status) \
             VALUES ($1, $2, $3, 'in_progress') ON CONFLICT (idempotency_key) DO NOTHING",
            s.receipts
        )))
        .bind(key.to_owned())
        .bind(proposal_id.to_owned())
        .bind(digest.to_owned())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify_sqlx(&e))?
        .rows_affected();
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT status, proposal_digest, result_hash, rows_affected::bigint FROM {} WHERE idempotency_key = $1",
            s.receipts
        )))
        .bind(key.to_owned())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(|e| classify_sqlx(&e))?;
        let (status, digest, result_hash, rows_affected) =
            row.ok_or_else(|| DbFail::new(FailKind::Other, "claimed receipt row vanished"))?;
        Ok(Claim::Existing {
            status,
            digest,
            result_hash,
            rows_affected,
        })
    }

    async fn lock_row(&mut self) -> Result<Vec<Map<String, Value>>, DbFail> {
        let s = self.statements;
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(s.lock_sql.clone()));
        for a in &s.lock_args {
            q = q.bind(a.clone());
        }
        let rows = q.fetch_all(&mut *self.tx).await.map_err(|e| classify_sqlx(&e))?;
        rows.iter().map(|r| parse_row(r)).collect()
    }

    async fn update(&mut self, version: Option<&Value>) -> Result<u64, DbFail> {
        let s = self.statements;
        let mut q = sqlx::query(AssertSqlSafe(s.update_sql.clone()));
        for a in &s.update_args {
            q = q.bind(a.clone());
        }
        if s.has_version {
            q = q.bind(version.map(Bind::from_json).and_then(|b| b.as_text()));
        }
        Ok(q.execute(&mut *self.tx)
            .await
            .map_err(|e| classify_sqlx(&e))?
            .rows_affected())
    }

    async fn mark_applied(&mut self, key: &str, rows: u64, result_hash: &str) -> Result<u64, DbFail> {
        Ok(sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET status = 'applied', rows_affected = $2, result_hash = $3, completed_at = now() \
             WHERE idempotency_key = $1 AND status = 'in_progress'",
            self.statements.receipts
        )))
        .bind(key.to_owned())
        .bind(i32::try_from(rows).unwrap_or(i32::MAX))
        .bind(result_hash.to_owned())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify_sqlx(&e))?
        .rows_affected())
    }

    async fn finish(self, commit: bool) -> Result<(), DbFail> {
        let r = if commit {
            self.tx.commit().await
        } else {
            self.tx.rollback().await
        };
        r.map_err(|e| classify_sqlx(&e))
    }
}
