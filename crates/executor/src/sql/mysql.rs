//! MySQL and MariaDB statements of the `sql_update` flow. One connection per apply, session time
//! zone UTC, the InnoDB lock wait bounded by the statement timeout. Values are bound by their
//! JSON type (strings as text, integers as BIGINT, ...), so keys compare as the column's type.
//! (sqlx sets CLIENT_FOUND_ROWS, so "rows affected" counts matched rows, also when a value does
//! not change.)

use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Transaction};
use synapsor_core::config::{SslMode, VersionAdvance};
use synapsor_core::ident::{Dialect, SafeIdent};

use super::{
    Bind, Claim, DbFail, FailKind, Job, RECEIPTS_TABLE, Step, WriteTxn, WriterSettings, classify_sqlx, db_failure,
    parse_row, run,
};
use crate::guards::Plan;
use crate::receipt::Receipt;

pub(crate) fn connect_options(url: &str, settings: &WriterSettings) -> Result<MySqlConnectOptions, DbFail> {
    let url = url
        .strip_prefix("mariadb://")
        .map(|rest| format!("mysql://{rest}"))
        .unwrap_or_else(|| url.to_owned());
    let mut opts = MySqlConnectOptions::from_str(&url).map_err(|_| DbFail::new(FailKind::BadConfig, "invalid URL"))?;
    if let Some(mode) = settings.ssl {
        opts = opts.ssl_mode(match mode {
            SslMode::Disable => MySqlSslMode::Disabled,
            SslMode::Prefer => MySqlSslMode::Preferred,
            SslMode::Require => MySqlSslMode::Required,
            SslMode::VerifyCa => MySqlSslMode::VerifyCa,
            SslMode::VerifyFull => MySqlSslMode::VerifyIdentity,
        });
    }
    Ok(opts.timezone(Some("+00:00".to_owned())).disable_statement_logging())
}

pub(crate) async fn connect(url: &str, settings: &WriterSettings) -> Result<MySqlConnection, DbFail> {
    let opts = connect_options(url, settings)?;
    let mut conn = match tokio::time::timeout(settings.connect_timeout, MySqlConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(classify_sqlx(&e)),
        Err(_) => return Err(DbFail::new(FailKind::Unavailable, "connect timed out")),
    };
    let secs = settings.statement_timeout.as_secs().max(1);
    sqlx::query(AssertSqlSafe(format!("SET SESSION innodb_lock_wait_timeout = {secs}")))
        .execute(&mut conn)
        .await
        .map_err(|e| classify_sqlx(&e))?;
    Ok(conn)
}

pub(crate) async fn apply(url: &str, settings: &WriterSettings, job: Job) -> Receipt {
    let mut conn = match connect(url, settings).await {
        Ok(c) => c,
        Err(f) => return db_failure(job, Step::Connect, f),
    };
    let statements = build(&job.plan);
    let receipt = match conn.begin().await {
        Ok(tx) => {
            run(
                MyTxn {
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

#[derive(Debug)]
struct Statements {
    receipts: String,
    lock_sql: String,
    lock_args: Vec<Bind>,
    update_sql: String,
    update_args: Vec<Bind>,
    has_version: bool,
}

fn build(plan: &Plan) -> Statements {
    let q = |i: &SafeIdent| i.quoted(Dialect::MySql);
    let table = format!("{}.{}", q(&plan.schema), q(&plan.table));
    let mut key_args = vec![Bind::from_json(&plan.primary_key_value)];
    let mut key_where = format!("{} = ?", q(&plan.primary_key));
    for (col, value) in plan.scope() {
        key_where.push_str(&format!(" AND {} = ?", q(col)));
        key_args.push(Bind::from_json(value));
    }
    let pairs: Vec<String> = plan
        .read_columns
        .iter()
        .map(|c| format!("{}, {}", c.literal(), q(c)))
        .collect();
    let lock_sql = format!(
        "SELECT CAST(JSON_OBJECT({}) AS CHAR) FROM {table} WHERE {key_where} LIMIT 2 FOR UPDATE",
        pairs.join(", ")
    );
    let mut sets: Vec<String> = plan.patch.iter().map(|(c, _)| format!("{} = ?", q(c))).collect();
    if let (Some(advance), Some(v)) = (plan.advance, plan.version_column()) {
        // Never equal to the old value, so a proposal made on it conflicts.
        sets.push(match advance {
            VersionAdvance::Timestamp => format!(
                "{0} = GREATEST(CURRENT_TIMESTAMP(6), {0} + INTERVAL 1 MICROSECOND)",
                q(v)
            ),
            VersionAdvance::Increment => format!("{0} = {0} + 1", q(v)),
        });
    }
    let mut update_sql = format!("UPDATE {table} SET {} WHERE {key_where}", sets.join(", "));
    let mut update_args: Vec<Bind> = plan.patch.iter().map(|(_, v)| Bind::from_json(v)).collect();
    update_args.extend(key_args.iter().cloned());
    let has_version = if let Some(v) = plan.version_column() {
        update_sql.push_str(&format!(" AND {} = ?", q(v)));
        true
    } else {
        false
    };
    Statements {
        receipts: format!("{}.{}", q(&plan.schema), RECEIPTS_TABLE),
        lock_sql,
        lock_args: key_args,
        update_sql,
        update_args,
        has_version,
    }
}

fn bind<'q>(q: Query<'q, MySql, MySqlArguments>, b: &Bind) -> Query<'q, MySql, MySqlArguments> {
    match b {
        Bind::Null => q.bind(Option::<String>::None),
        Bind::Text(s) => q.bind(s.clone()),
        Bind::Int(i) => q.bind(*i),
        Bind::Float(f) => q.bind(*f),
        Bind::Bool(v) => q.bind(*v),
    }
}

struct MyTxn<'c> {
    tx: Transaction<'c, MySql>,
    statements: &'c Statements,
}

impl WriteTxn for MyTxn<'_> {
    async fn claim(&mut self, key: &str, proposal_id: &str, digest: &str) -> Result<Claim, DbFail> {
        let s = self.statements;
        // INSERT IGNORE: the key and ids were length-checked, so only the duplicate key is
        // ignored here. A concurrent claim of the same key waits for this transaction.
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT IGNORE INTO {} (idempotency_key, proposal_id, proposal_digest, status) \
             VALUES (?, ?, ?, 'in_progress')",
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
            "SELECT status, proposal_digest, result_hash, CAST(rows_affected AS SIGNED) FROM {} WHERE idempotency_key = ? FOR UPDATE",
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
        let mut q = sqlx::query(AssertSqlSafe(s.lock_sql.clone()));
        for a in &s.lock_args {
            q = bind(q, a);
        }
        let rows = q.fetch_all(&mut *self.tx).await.map_err(|e| classify_sqlx(&e))?;
        rows.iter()
            .map(|r| {
                let text: String = sqlx::Row::try_get(r, 0).map_err(|e| classify_sqlx(&e))?;
                parse_row(&text)
            })
            .collect()
    }

    async fn update(&mut self, version: Option<&Value>) -> Result<u64, DbFail> {
        let s = self.statements;
        let mut q = sqlx::query(AssertSqlSafe(s.update_sql.clone()));
        for a in &s.update_args {
            q = bind(q, a);
        }
        if s.has_version {
            q = bind(q, &version.map(Bind::from_json).unwrap_or(Bind::Null));
        }
        Ok(q.execute(&mut *self.tx)
            .await
            .map_err(|e| classify_sqlx(&e))?
            .rows_affected())
    }

    async fn mark_applied(&mut self, key: &str, rows: u64, result_hash: &str) -> Result<u64, DbFail> {
        Ok(sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET status = 'applied', rows_affected = ?, result_hash = ?, completed_at = CURRENT_TIMESTAMP(6) \
             WHERE idempotency_key = ? AND status = 'in_progress'",
            self.statements.receipts
        )))
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(result_hash.to_owned())
        .bind(key.to_owned())
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
