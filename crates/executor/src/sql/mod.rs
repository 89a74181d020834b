//! The `sql_update` executor: one guarded single-row UPDATE in one transaction, with an
//! idempotency receipt row in the source database.
//!
//! The flow ([`run`]) is written once over [`WriteTxn`]; the engines only supply statements:
//!
//! 1. claim the receipt row (`in_progress`) for the idempotency key, inside the transaction; an
//!    `applied` row means a previous apply committed: report `already_applied`, touch nothing;
//! 2. lock the row by primary key AND tenant (`FOR UPDATE`; SQLite holds the write lock from
//!    `BEGIN IMMEDIATE`) and read it as JSON the way reads do; re-check key and tenant exactly;
//! 3. compare the expected version (timestamps normalized to UTC, numbers by value) or the row
//!    hash, and check that the patched columns still hold the `before` values that were approved;
//! 4. check transition guards against the locked row (patch columns and bounds were checked
//!    against the current config before connecting);
//! 5. `UPDATE ... WHERE pk AND tenant AND version`; exactly one row or roll back;
//! 6. mark the receipt row `applied` with the receipt hash; COMMIT.
//!
//! Every refusal and failure rolls everything back, the claim included: the source's receipts
//! table only ever holds committed `applied` rows, so a conflict is never remembered there and a
//! failed attempt can be retried. A dry run runs steps 1-5 and rolls back.

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::time::Duration;

use serde_json::{Map, Value};
use synapsor_core::config::{Engine, Source, SslMode};
use synapsor_core::{Capability, ChangeSet};

use crate::guards::{self, Plan, Refusal, VersionGuard};
use crate::receipt::{Receipt, ReceiptStatus, WritebackCode};
use crate::{ApplyRequest, BoxFuture, Executor};
use synapsor_source::redact;

/// Name of the receipts table, created once by an admin in each target schema (database).
pub const RECEIPTS_TABLE: &str = "synapsor_writeback_receipts";

/// The built-in direct SQL executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlUpdateExecutor;

impl Executor for SqlUpdateExecutor {
    fn name(&self) -> &str {
        "sql_update"
    }

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt> {
        Box::pin(apply_sql(req))
    }
}

/// Connection settings of the writer, from the source's config.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Statement and lock-wait limit.
    pub statement_timeout: Duration,
    pub connect_timeout: Duration,
    pub ssl: Option<SslMode>,
}

impl WriterSettings {
    pub fn for_source(source: &Source) -> Self {
        WriterSettings {
            statement_timeout: Duration::from_millis(source.statement_timeout_ms.unwrap_or(5000)),
            connect_timeout: Duration::from_secs(10),
            ssl: source.ssl.as_ref().map(|s| s.mode),
        }
    }
}

async fn apply_sql(req: ApplyRequest<'_>) -> Receipt {
    let cs = req.change_set;
    let cap = req.capability;
    let mut receipt = Receipt::new(cs, "sql_update", &req.executed_at, req.dry_run);
    let plan = match checked_plan(&mut receipt, cs, cap) {
        Ok(p) => p,
        Err(r) => return receipt.refuse(r.code, r.message),
    };
    receipt.check(
        "capability",
        true,
        format!(
            "{} still targets {}.{} by {} and tenant key {}",
            cap.name,
            plan.schema,
            plan.table,
            plan.primary_key,
            plan.tenant
                .as_ref()
                .map(|t| t.0.as_str())
                .unwrap_or("(single-tenant dev)")
        ),
    );
    receipt.check(
        "policy",
        true,
        format!(
            "patch columns {} are allowed; numeric bounds hold",
            plan.patch
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if req.source.read_only {
        return receipt.refuse(
            WritebackCode::SourceReadOnly,
            format!("source {} is marked read_only in the config", req.source_name),
        );
    }
    let Some(env_name) = req.source.write_url_env.as_deref() else {
        return receipt.refuse(
            WritebackCode::WriterCredentialMissing,
            format!(
                "source {} has no write_url_env in the config; add one naming the variable that holds the writer URL",
                req.source_name
            ),
        );
    };
    let Some(url) = req.env.var(env_name) else {
        return receipt.refuse(
            WritebackCode::WriterCredentialMissing,
            format!(
                "the environment variable {env_name} (writer URL of source {}) is not set",
                req.source_name
            ),
        );
    };
    let job = Job {
        change_set: cs.clone(),
        capability: cap.clone(),
        plan,
        receipt,
        source_name: req.source_name.to_owned(),
    };
    let settings = WriterSettings::for_source(req.source);
    match req.source.engine {
        Engine::Postgres => postgres::apply(&url, &settings, job).await,
        Engine::Mysql => mysql::apply(&url, &settings, job).await,
        Engine::Sqlite => sqlite::apply(&url, &settings, job).await,
    }
}

/// The first checks of every executor, before any IO: the change set still matches its digest,
/// and [`guards::plan`] accepts it against the current reviewed capability. A failure is
/// recorded on `receipt` as the failed check (`digest`, `capability` or `policy`) and returned
/// for the caller to seal. App-owned handlers make the same checks, so both refuse alike.
pub(crate) fn checked_plan(receipt: &mut Receipt, cs: &ChangeSet, cap: &Capability) -> Result<Plan, Refusal> {
    if !cs.digest_is_intact() {
        receipt.check("digest", false, "the change set does not match its digest");
        return Err(Refusal::new(
            WritebackCode::ChangeSetDigestMismatch,
            "the change set does not match its digest; it was modified after approval",
        ));
    }
    guards::plan(cs, cap).inspect_err(|r| {
        let name = if r.code == WritebackCode::CapabilityChanged {
            "capability"
        } else {
            "policy"
        };
        receipt.check(name, false, r.message.clone());
    })
}

/// What one apply works on; owned so the SQLite path can move it to a blocking thread.
#[derive(Debug)]
pub(crate) struct Job {
    pub change_set: synapsor_core::ChangeSet,
    pub capability: synapsor_core::Capability,
    pub plan: Plan,
    pub receipt: Receipt,
    pub source_name: String,
}

/// How a database call failed, independent of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailKind {
    /// A table, column or schema does not exist (or is invisible to the writer).
    MissingObject,
    PermissionDenied,
    /// Lock wait or statement timeout, deadlock, serialization failure, busy SQLite file.
    Busy,
    DataInvalid,
    Constraint,
    Unavailable,
    BadConfig,
    Other,
}

/// A failed database call: its kind, and the (unredacted) driver text for the log only.
#[derive(Debug)]
pub(crate) struct DbFail {
    pub kind: FailKind,
    pub detail: String,
}

impl DbFail {
    pub fn new(kind: FailKind, detail: impl Into<String>) -> Self {
        DbFail {
            kind,
            detail: detail.into(),
        }
    }
}

/// The receipt row found for a key that was already claimed and committed.
#[derive(Debug)]
pub(crate) enum Claim {
    New,
    Existing {
        status: String,
        digest: String,
        result_hash: Option<String>,
        /// The rows the apply that committed this row changed.
        rows_affected: i64,
    },
}

/// Where in the flow a database call failed (decides the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Connect,
    Prepare,
    Claim,
    Lock,
    Update,
    Mark,
    Commit,
}

/// One open transaction on the source, as the writer.
pub(crate) trait WriteTxn {
    /// Inserts the `in_progress` receipt row unless the key exists; returns the existing row.
    async fn claim(&mut self, key: &str, proposal_id: &str, digest: &str) -> Result<Claim, DbFail>;
    /// Locks and reads the row by primary key and tenant: at most two rows, as JSON objects.
    async fn lock_row(&mut self) -> Result<Vec<Map<String, Value>>, DbFail>;
    /// The guarded UPDATE; `version` is the current version value read under the lock.
    async fn update(&mut self, version: Option<&Value>) -> Result<u64, DbFail>;
    /// Marks the claimed receipt row `applied`; returns the rows affected.
    async fn mark_applied(&mut self, key: &str, rows: u64, result_hash: &str) -> Result<u64, DbFail>;
    /// COMMIT (`true`) or ROLLBACK.
    async fn finish(self, commit: bool) -> Result<(), DbFail>;
}

/// Logs a database failure (redacted) and turns it into a failed or conflict receipt.
pub(crate) fn db_failure(job: Job, step: Step, fail: DbFail) -> Receipt {
    tracing::warn!(
        source = %job.source_name,
        proposal = %job.change_set.proposal_id,
        step = ?step,
        kind = ?fail.kind,
        error = %redact(&fail.detail),
        "writeback database call failed"
    );
    let schema = job.plan.schema.as_str().to_owned();
    let table = format!("{}.{}", job.plan.schema, job.plan.table);
    let (code, message) = match (step, fail.kind) {
        (Step::Connect, FailKind::BadConfig) => (
            WritebackCode::WriterUrlInvalid,
            "the writer URL is not valid for this engine".to_owned(),
        ),
        (Step::Connect, _) => (
            WritebackCode::DatabaseUnavailable,
            "the writer could not connect to the source database".to_owned(),
        ),
        (_, FailKind::Busy) => (
            WritebackCode::LockTimeout,
            "a lock could not be taken in time (another transaction holds the row); retry".to_owned(),
        ),
        (_, FailKind::Unavailable) => (
            WritebackCode::DatabaseUnavailable,
            "the connection to the source database was lost; nothing was committed, retry".to_owned(),
        ),
        (Step::Claim | Step::Mark, FailKind::MissingObject) => (
            WritebackCode::ReceiptsTableMissing,
            format!(
                "the receipts table {schema}.{RECEIPTS_TABLE} does not exist; apply never creates tables: have an admin run `synapsor-runner db init-receipts --source {}` (or `--print` for the SQL and grants), then check with `synapsor-runner doctor`",
                job.source_name
            ),
        ),
        // MySQL checks privileges before existence: a writer without a grant on a table that
        // does not exist is told "command denied", so both cases get the one hint that fixes both.
        (Step::Claim | Step::Mark, FailKind::PermissionDenied) if job.capability.engine == Engine::Mysql => (
            WritebackCode::ReceiptsTableMissing,
            format!(
                "the receipts table {schema}.{RECEIPTS_TABLE} does not exist or the writer has no grant on it (MySQL does not say which); apply never creates tables: have an admin run `synapsor-runner db init-receipts --source {}` (it creates the table and grants the writer SELECT, INSERT, UPDATE; `--print` shows the SQL), then check with `synapsor-runner doctor`",
                job.source_name
            ),
        ),
        (Step::Claim | Step::Mark, FailKind::PermissionDenied) => (
            WritebackCode::ReceiptsTableNotWritable,
            format!(
                "the writer may not use {schema}.{RECEIPTS_TABLE}: grant it SELECT, INSERT, UPDATE (see `synapsor-runner db init-receipts --print`, check with `synapsor-runner doctor`)"
            ),
        ),
        (Step::Claim | Step::Mark, FailKind::Constraint | FailKind::DataInvalid | FailKind::Other) => (
            WritebackCode::ReceiptsTableNotWritable,
            format!(
                "{schema}.{RECEIPTS_TABLE} refused the receipt row; it may have another shape (for example one created by another tool): compare it with `synapsor-runner db init-receipts --print`"
            ),
        ),
        (Step::Prepare | Step::Lock | Step::Update, FailKind::MissingObject) => (
            WritebackCode::SourceSchemaMismatch,
            format!("{table} or one of its reviewed columns does not exist for the writer"),
        ),
        (_, FailKind::PermissionDenied) => (
            WritebackCode::WritePermissionDenied,
            format!("the writer may not lock or update {table}: grant it SELECT, UPDATE on the table"),
        ),
        (_, FailKind::DataInvalid) => (
            WritebackCode::ValueTypeInvalid,
            format!("the database refused a value of the patch or guard for the column types of {table}"),
        ),
        (_, FailKind::Constraint) => (
            WritebackCode::ConstraintViolation,
            format!("the database refused the change to {table} (a constraint failed)"),
        ),
        (Step::Commit, _) => (
            WritebackCode::TransactionFailed,
            "the COMMIT did not complete; retrying is safe: if it did commit, the receipts table makes the retry report already_applied".to_owned(),
        ),
        _ => (
            WritebackCode::TransactionFailed,
            "the database refused the transaction; nothing was committed (details in the runner log)".to_owned(),
        ),
    };
    job.receipt.refuse(code, message)
}

async fn rollback<T: WriteTxn>(tx: T, job: &Job) {
    if let Err(e) = tx.finish(false).await {
        tracing::warn!(
            source = %job.source_name,
            kind = ?e.kind,
            error = %redact(&e.detail),
            "writeback rollback failed (the connection is dropped, which also rolls back)"
        );
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => guards::truncate(s, 64),
        other => guards::truncate(&other.to_string(), 64),
    }
}

/// The whole guarded flow on one open transaction.
pub(crate) async fn run<T: WriteTxn>(mut tx: T, mut job: Job) -> Receipt {
    let key = job.receipt.idempotency_key.clone();
    let dry_run = job.receipt.dry_run;

    // (a) Claim the idempotency receipt in this transaction.
    match tx
        .claim(&key, &job.change_set.proposal_id, &job.change_set.digest)
        .await
    {
        Err(f) => {
            rollback(tx, &job).await;
            return db_failure(job, Step::Claim, f);
        }
        Ok(Claim::Existing {
            status,
            digest,
            result_hash,
            rows_affected,
        }) => {
            rollback(tx, &job).await;
            if status == "applied" && digest == job.change_set.digest {
                let mut r = job.receipt;
                r.check(
                    "receipt_claim",
                    true,
                    format!("{key} is already applied in the source's receipts table; nothing was touched"),
                );
                r.status = ReceiptStatus::AlreadyApplied;
                r.message = "this change was already applied; the source was not touched again".into();
                r.applied_receipt_hash = result_hash;
                r.applied_rows_affected = Some(u32::try_from(rows_affected).unwrap_or(0));
                return r.seal();
            }
            job.receipt.check(
                "receipt_claim",
                false,
                format!(
                    "the receipts table holds {key} with status {}",
                    guards::truncate(&status, 32)
                ),
            );
            return job.receipt.refuse(
                WritebackCode::IdempotencyReceiptInvalid,
                format!(
                    "the receipts table holds a row for {key} that this runner never commits (status {:?}); inspect it before retrying",
                    guards::truncate(&status, 32)
                ),
            );
        }
        Ok(Claim::New) => {
            job.receipt.check(
                "receipt_claim",
                true,
                format!("claimed {key} as in_progress inside the transaction"),
            );
        }
    }

    // (b) Lock the row by primary key and tenant.
    let rows = match tx.lock_row().await {
        Ok(rows) => rows,
        Err(f) => {
            rollback(tx, &job).await;
            return db_failure(job, Step::Lock, f);
        }
    };
    if rows.len() > 1 {
        rollback(tx, &job).await;
        job.receipt
            .check("row_lock", false, "the primary key matched more than one row");
        return job.receipt.refuse(
            WritebackCode::MultiRowWriteBlocked,
            "the primary key matched more than one row; nothing was written",
        );
    }
    let identity = match rows.first() {
        None => Err(Refusal::new(
            WritebackCode::RowNotFound,
            "no row with this primary key exists in the proposal's tenant",
        )),
        Some(row) => guards::check_row_identity(&job.plan, row),
    };
    if let Err(r) = identity {
        rollback(tx, &job).await;
        job.receipt.check("row_lock", false, r.message.clone());
        return job.receipt.refuse(
            r.code,
            format!(
                "{}; nothing was written (the proposal cannot be applied: propose again)",
                r.message
            ),
        );
    }
    let row = rows.into_iter().next().unwrap_or_default();
    job.receipt.check(
        "row_lock",
        true,
        format!(
            "locked {}.{} where {} = {}",
            job.plan.schema,
            job.plan.table,
            job.plan.primary_key,
            describe(&job.plan.primary_key_value)
        ),
    );
    match &job.plan.tenant {
        Some((col, value)) => job
            .receipt
            .check("tenant_guard", true, format!("{col} = {} (exact)", describe(value))),
        None => job.receipt.check(
            "tenant_guard",
            true,
            "single-tenant development target (no tenant column)",
        ),
    }
    if let Some((col, value)) = &job.plan.principal {
        job.receipt
            .check("principal_guard", true, format!("{col} = {} (exact)", describe(value)));
    }

    // (c) Expected version against the locked row.
    let current_version = match guards::check_version(&job.plan, &row)
        .and_then(|v| guards::check_patched_unchanged(&job.change_set, &row).map(|()| v))
    {
        Ok(v) => v,
        Err(r) => {
            rollback(tx, &job).await;
            job.receipt.check("version_guard", false, r.message.clone());
            return job.receipt.refuse(r.code, r.message);
        }
    };
    job.receipt.check(
        "version_guard",
        true,
        match &job.plan.version {
            VersionGuard::Column { column, expected } => format!(
                "{column} = {} as proposed; the patched columns still hold the approved before values",
                describe(expected)
            ),
            VersionGuard::RowHash { .. } => "row hash unchanged since the proposal".to_owned(),
        },
    );

    // (d) Transition guards against the locked current row.
    if let Err(r) = guards::check_transitions(&job.change_set, &job.capability, &row) {
        rollback(tx, &job).await;
        job.receipt.check("transition_guards", false, r.message.clone());
        return job.receipt.refuse(r.code, r.message);
    }
    if !job.capability.transition_guards.is_empty() || !job.change_set.guards.transition_guards.is_empty() {
        job.receipt.check(
            "transition_guards",
            true,
            "the state moves are allowed from the row's current state",
        );
    }

    // (e) The guarded UPDATE: exactly one row.
    let n = match tx.update(current_version.as_ref()).await {
        Ok(n) => n,
        Err(f) => {
            rollback(tx, &job).await;
            return db_failure(job, Step::Update, f);
        }
    };
    if n != 1 {
        rollback(tx, &job).await;
        let (code, msg) = if n == 0 {
            (
                WritebackCode::VersionConflict,
                "the guarded UPDATE matched no row (the row changed); rolled back".to_owned(),
            )
        } else {
            (
                WritebackCode::MultiRowWriteBlocked,
                format!("the guarded UPDATE matched {n} rows; rolled back"),
            )
        };
        job.receipt.check("single_row_update", false, msg.clone());
        return job.receipt.refuse(code, msg);
    }
    job.receipt
        .check("single_row_update", true, "the guarded UPDATE matched exactly 1 row");

    // The version after the write, as the database reports it (a trigger may have moved it).
    job.receipt.new_version = match tx.lock_row().await {
        Ok(rows) => rows.first().and_then(|r| match &job.plan.version {
            VersionGuard::Column { column, .. } => r.get(column.as_str()).cloned(),
            VersionGuard::RowHash { columns, .. } => guards::row_hash(r, columns).map(Value::String),
        }),
        Err(f) => {
            rollback(tx, &job).await;
            return db_failure(job, Step::Lock, f);
        }
    };

    if dry_run {
        rollback(tx, &job).await;
        let mut r = job.receipt;
        r.status = ReceiptStatus::WouldApply;
        r.rows_affected = 0;
        r.message =
            "dry run: every guard passed and the update matched exactly 1 row; rolled back, nothing recorded".into();
        return r.seal();
    }

    // (f) Mark the receipt applied with this receipt's hash, then COMMIT.
    let mut r = job.receipt;
    r.status = ReceiptStatus::Applied;
    r.rows_affected = 1;
    r.source_database_mutated = true;
    r.message = "applied: 1 row updated and the idempotency receipt committed in the same transaction".into();
    r.check(
        "receipt_marked",
        true,
        format!("{key} marked applied in the source's receipts table"),
    );
    let r = r.seal();
    let mut job = Job { receipt: r, ..job };
    match tx.mark_applied(&key, 1, &job.receipt.receipt_hash).await {
        Ok(1) => {}
        Ok(_) => {
            rollback(tx, &job).await;
            job.receipt.checks.pop();
            job.receipt
                .check("receipt_marked", false, "the claimed receipt row was not found");
            return unapplied(job.receipt).refuse(
                WritebackCode::IdempotencyReceiptUnavailable,
                "the claimed receipt row could not be marked applied; rolled back",
            );
        }
        Err(f) => {
            rollback(tx, &job).await;
            job.receipt = unapplied(job.receipt);
            return db_failure(job, Step::Mark, f);
        }
    }
    if let Err(f) = tx.finish(true).await {
        job.receipt = unapplied(job.receipt);
        return db_failure(job, Step::Commit, f);
    }
    job.receipt
}

/// Clears what an `applied` draft claimed before the transaction rolled back.
fn unapplied(mut r: Receipt) -> Receipt {
    r.status = ReceiptStatus::Failed;
    r.rows_affected = 0;
    r.source_database_mutated = false;
    r.new_version = None;
    r
}

/// A JSON scalar to bind: the engines bind by type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Bind {
    pub fn from_json(v: &Value) -> Bind {
        match v {
            Value::Null => Bind::Null,
            Value::Bool(b) => Bind::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Bind::Int(i),
                None => match n.as_f64() {
                    Some(f) => Bind::Float(f),
                    None => Bind::Text(n.to_string()),
                },
            },
            Value::String(s) => Bind::Text(s.clone()),
            other => Bind::Text(other.to_string()),
        }
    }

    /// As text, for engines that bind text and CAST (PostgreSQL).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Bind::Null => None,
            Bind::Text(s) => Some(s.clone()),
            Bind::Int(i) => Some(i.to_string()),
            Bind::Float(f) => Some(f.to_string()),
            Bind::Bool(b) => Some(b.to_string()),
        }
    }
}

/// Parses the JSON object a row read returns.
pub(crate) fn parse_row(text: &str) -> Result<Map<String, Value>, DbFail> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(DbFail::new(FailKind::Other, "row did not decode as a JSON object")),
    }
}

/// Classifies a sqlx error (the detail is kept for the log only).
pub(crate) fn classify_sqlx(err: &sqlx::Error) -> DbFail {
    use sqlx::Error as E;
    let kind = match err {
        E::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                classify_mysql_number(my.number())
            } else {
                classify_sqlstate(db.code().as_deref().unwrap_or_default())
            }
        }
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
            FailKind::Unavailable
        }
        E::Configuration(_) => FailKind::BadConfig,
        _ => FailKind::Other,
    };
    DbFail::new(kind, err.to_string())
}

fn classify_sqlstate(state: &str) -> FailKind {
    match state {
        "42P01" | "42703" | "3F000" | "42P02" => FailKind::MissingObject,
        "42501" | "25006" => FailKind::PermissionDenied,
        "55P03" | "57014" | "40001" | "40P01" => FailKind::Busy,
        s if s.starts_with("22") => FailKind::DataInvalid,
        s if s.starts_with("23") => FailKind::Constraint,
        s if s.starts_with("28") || s.starts_with("08") || s.starts_with("57P") => FailKind::Unavailable,
        _ => FailKind::Other,
    }
}

fn classify_mysql_number(n: u16) -> FailKind {
    match n {
        1146 | 1054 | 1049 | 1109 => FailKind::MissingObject,
        1142 | 1143 | 1044 | 1045 | 1227 | 1290 | 1792 => FailKind::PermissionDenied,
        1205 | 1213 | 3024 | 1969 | 3572 => FailKind::Busy,
        1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 => FailKind::DataInvalid,
        1048 | 1062 | 1451 | 1452 | 3819 | 4025 => FailKind::Constraint,
        2002 | 2003 | 2006 | 2013 => FailKind::Unavailable,
        _ => FailKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify_sqlstate("42P01"), FailKind::MissingObject);
        assert_eq!(classify_sqlstate("42501"), FailKind::PermissionDenied);
        assert_eq!(classify_sqlstate("22P02"), FailKind::DataInvalid);
        assert_eq!(classify_sqlstate("23514"), FailKind::Constraint);
        assert_eq!(classify_sqlstate("55P03"), FailKind::Busy);
        assert_eq!(classify_mysql_number(1146), FailKind::MissingObject);
        assert_eq!(classify_mysql_number(1142), FailKind::PermissionDenied);
        assert_eq!(classify_mysql_number(1205), FailKind::Busy);
    }

    #[test]
    fn binds() {
        assert_eq!(Bind::from_json(&serde_json::json!(3)), Bind::Int(3));
        assert_eq!(Bind::from_json(&serde_json::json!(2.5)), Bind::Float(2.5));
        assert_eq!(Bind::from_json(&serde_json::json!("x")).as_text().as_deref(), Some("x"));
        assert_eq!(Bind::from_json(&serde_json::Value::Null).as_text(), None);
        assert_eq!(
            Bind::from_json(&serde_json::json!(true)).as_text().as_deref(),
            Some("true")
        );
    }
}
