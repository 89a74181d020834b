//! SQLite statements of the `sql_update` flow. `BEGIN IMMEDIATE` takes the database's write
//! lock up front, which is SQLite's row lock: no other writer can change the row between the
//! check and the update. rusqlite is synchronous, so the whole flow runs on a blocking thread.

use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};
use synapsor_core::config::VersionAdvance;
use synapsor_core::ident::{Dialect, SafeIdent};

use super::{
    Bind, Claim, DbFail, FailKind, Job, RECEIPTS_TABLE, Step, WriteTxn, WriterSettings, db_failure, parse_row, run,
};
use crate::guards::Plan;
use crate::receipt::{Receipt, WritebackCode};

/// The file path of `sqlite://PATH`, `sqlite:PATH` or a plain path (query dropped).
pub(crate) fn sqlite_path(url: &str) -> Option<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
        .split('?')
        .next()
        .unwrap_or_default();
    (!path.is_empty()).then(|| path.to_owned())
}

pub(crate) fn classify(e: &rusqlite::Error) -> DbFail {
    use rusqlite::ErrorCode as C;
    let msg = e.to_string();
    let kind = match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy | C::DatabaseLocked => FailKind::Busy,
            C::ConstraintViolation => FailKind::Constraint,
            C::TypeMismatch => FailKind::DataInvalid,
            C::ReadOnly | C::PermissionDenied | C::AuthorizationForStatementDenied => FailKind::PermissionDenied,
            C::CannotOpen | C::NotADatabase | C::DatabaseCorrupt => FailKind::Unavailable,
            _ if msg.contains("no such table") || msg.contains("no such column") => FailKind::MissingObject,
            _ => FailKind::Other,
        },
        _ if msg.contains("no such table") || msg.contains("no such column") => FailKind::MissingObject,
        _ => FailKind::Other,
    };
    DbFail::new(kind, msg)
}

/// Opens the existing file read-write (never creates it), with the busy timeout.
pub(crate) fn open(path: &str, busy: Duration) -> Result<Connection, DbFail> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| DbFail::new(FailKind::Unavailable, e.to_string()))?;
    conn.busy_timeout(busy).map_err(|e| classify(&e))?;
    Ok(conn)
}

pub(crate) async fn apply(url: &str, settings: &WriterSettings, job: Job) -> Receipt {
    let Some(path) = sqlite_path(url) else {
        return job.receipt.refuse(
            WritebackCode::WriterUrlInvalid,
            "the writer URL has no SQLite file path",
        );
    };
    let busy = settings.statement_timeout;
    let handle = tokio::runtime::Handle::current();
    let fallback = job.receipt.clone();
    let task = tokio::task::spawn_blocking(move || {
        let conn = match open(&path, busy) {
            Ok(c) => c,
            Err(f) => return db_failure(job, Step::Connect, f),
        };
        let statements = build(&job.plan);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return db_failure(job, Step::Prepare, classify(&e));
        }
        // The futures of `SqliteTxn` never wait on IO or timers, so driving them from this
        // blocking thread with the runtime handle is fine.
        handle.block_on(run(
            SqliteTxn {
                conn,
                statements,
                open: true,
            },
            job,
        ))
    });
    match task.await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("sqlite writeback task panicked or was cancelled");
            fallback.refuse(
                WritebackCode::TransactionFailed,
                "the SQLite writeback task failed; nothing was committed",
            )
        }
    }
}

#[derive(Debug)]
struct Statements {
    lock_sql: String,
    lock_args: Vec<SqlValue>,
    update_sql: String,
    update_args: Vec<SqlValue>,
    has_version: bool,
}

fn to_sql(b: Bind) -> SqlValue {
    match b {
        Bind::Null => SqlValue::Null,
        Bind::Text(s) => SqlValue::Text(s),
        Bind::Int(i) => SqlValue::Integer(i),
        Bind::Float(f) => SqlValue::Real(f),
        Bind::Bool(b) => SqlValue::Integer(i64::from(b)),
    }
}

fn build(plan: &Plan) -> Statements {
    let q = |i: &SafeIdent| i.quoted(Dialect::Ansi);
    // One schema per file, as reads do: the configured schema names the main database.
    let table = q(&plan.table);
    let mut key_args = vec![to_sql(Bind::from_json(&plan.primary_key_value))];
    let mut key_where = format!("{} = ?", q(&plan.primary_key));
    for (col, value) in plan.scope() {
        key_where.push_str(&format!(" AND {} = ?", q(col)));
        key_args.push(to_sql(Bind::from_json(value)));
    }
    let pairs: Vec<String> = plan
        .read_columns
        .iter()
        .map(|c| format!("{}, {}", c.literal(), q(c)))
        .collect();
    let lock_sql = format!(
        "SELECT json_object({}) FROM {table} WHERE {key_where} LIMIT 2",
        pairs.join(", ")
    );
    let mut sets: Vec<String> = plan.patch.iter().map(|(c, _)| format!("{} = ?", q(c))).collect();
    if let (Some(advance), Some(v)) = (plan.advance, plan.version_column()) {
        sets.push(match advance {
            // ISO-8601 text in UTC with milliseconds; a later proposal needs a read and an
            // approval, so it never lands in the same millisecond.
            VersionAdvance::Timestamp => format!("{} = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", q(v)),
            VersionAdvance::Increment => format!("{0} = {0} + 1", q(v)),
        });
    }
    let mut update_sql = format!("UPDATE {table} SET {} WHERE {key_where}", sets.join(", "));
    let mut update_args: Vec<SqlValue> = plan.patch.iter().map(|(_, v)| to_sql(Bind::from_json(v))).collect();
    update_args.extend(key_args.iter().cloned());
    let has_version = if let Some(v) = plan.version_column() {
        update_sql.push_str(&format!(" AND {} = ?", q(v)));
        true
    } else {
        false
    };
    Statements {
        lock_sql,
        lock_args: key_args,
        update_sql,
        update_args,
        has_version,
    }
}

struct SqliteTxn {
    conn: Connection,
    statements: Statements,
    open: bool,
}

impl SqliteTxn {
    fn end(&mut self, commit: bool) -> Result<(), DbFail> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        self.conn
            .execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
            .map_err(|e| classify(&e))
    }
}

impl Drop for SqliteTxn {
    fn drop(&mut self) {
        let _ = self.end(false);
    }
}

impl WriteTxn for SqliteTxn {
    async fn claim(&mut self, key: &str, proposal_id: &str, digest: &str) -> Result<Claim, DbFail> {
        let inserted = self
            .conn
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO {RECEIPTS_TABLE} (idempotency_key, proposal_id, proposal_digest, status) \
                     VALUES (?1, ?2, ?3, 'in_progress')"
                ),
                [key, proposal_id, digest],
            )
            .map_err(|e| classify(&e))?;
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let row: Option<(String, String, Option<String>, i64)> = self
            .conn
            .query_row(
                &format!(
                    "SELECT status, proposal_digest, result_hash, rows_affected FROM {RECEIPTS_TABLE} WHERE idempotency_key = ?1"
                ),
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| classify(&e))?;
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
        let mut stmt = self.conn.prepare(&self.statements.lock_sql).map_err(|e| classify(&e))?;
        let rows = stmt
            .query_map(params_from_iter(self.statements.lock_args.iter()), |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| classify(&e))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| classify(&e))?;
        rows.iter().map(|r| parse_row(r)).collect()
    }

    async fn update(&mut self, version: Option<&Value>) -> Result<u64, DbFail> {
        let mut args = self.statements.update_args.clone();
        if self.statements.has_version {
            args.push(to_sql(version.map(Bind::from_json).unwrap_or(Bind::Null)));
        }
        let n = self
            .conn
            .execute(&self.statements.update_sql, params_from_iter(args.iter()))
            .map_err(|e| classify(&e))?;
        Ok(n as u64)
    }

    async fn mark_applied(&mut self, key: &str, rows: u64, result_hash: &str) -> Result<u64, DbFail> {
        let n = self
            .conn
            .execute(
                &format!(
                    "UPDATE {RECEIPTS_TABLE} SET status = 'applied', rows_affected = ?2, result_hash = ?3, \
                     completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                     WHERE idempotency_key = ?1 AND status = 'in_progress'"
                ),
                rusqlite::params![key, i64::try_from(rows).unwrap_or(i64::MAX), result_hash],
            )
            .map_err(|e| classify(&e))?;
        Ok(n as u64)
    }

    async fn finish(mut self, commit: bool) -> Result<(), DbFail> {
        self.end(commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db").as_deref(), Some("/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite:a.db?mode=rw").as_deref(), Some("a.db"));
        assert_eq!(sqlite_path("/x/y.db").as_deref(), Some("/x/y.db"));
        assert_eq!(sqlite_path("sqlite://"), None);
    }
}
