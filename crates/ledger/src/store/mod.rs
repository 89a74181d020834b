//! [`LedgerStore`]: the synchronous SQLite ledger over one connection.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so checks
//! made inside the transaction (is it still pending? is this digest already open?) cannot be
//! invalidated by another writer before the transaction commits, and a busy store waits
//! `busy_timeout` instead of failing half-way. The one exception is group commit (`batch`):
//! several record writes share one such transaction, each in a savepoint of its own.
//!
//! The methods are spread over submodules, one `impl LedgerStore` block each:
//! - `lifecycle`: recording reads and proposals, approve, reject and state transitions;
//! - `batch`: group commit of record writes, for [`crate::Ledger`]'s thread;
//! - `mirror`: mirrors of proposals managed elsewhere (a Kubernetes `Proposal`);
//! - `receipts`: writeback receipts;
//! - `queries`: the read side: proposals, evidence bundles, replay and events;
//! - `maintenance`: stats, vacuum and prune.
//!
//! This file holds the struct, opening and migration, the transaction helper, and the validation
//! and row helpers that several submodules share. Those helpers stay private: child modules can
//! reach their parent's private items, and nothing outside the store should call them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};
use synapsor_core::time::{format_rfc3339_ms, parse_rfc3339_ms};
use synapsor_core::{ChangeSet, ProposalState};

use crate::error::{LedgerError, Result};
use crate::records::{ApprovalRecord, Decider, ProposalRecord, ReceiptRecord};
use crate::schema;

mod batch;
mod lifecycle;
mod maintenance;
mod mirror;
mod queries;
mod receipts;

pub(crate) use lifecycle::{RecordJob, Recorded};

/// How long a statement waits for another connection's write lock before `STORE_UNAVAILABLE`.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Default and maximum page sizes of listings.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Receipt statuses a writeback may report.
pub const RECEIPT_STATUSES: [&str; 4] = ["applied", "already_applied", "conflict", "failed"];

/// The SQLite ledger. Synchronous: use [`crate::Ledger`] from async code.
pub struct LedgerStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LedgerStore {
    /// Opens the store at `path`, creating it (and missing parent folders, owner-only) if needed,
    /// and migrates it to the current schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), true)
    }

    /// Opens an existing store; `STORE_NOT_FOUND` when the file does not exist. For commands that
    /// only look at a store and should not leave an empty one behind.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), false)
    }

    fn open_inner(path: &Path, create: bool) -> Result<Self> {
        if create {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)?;
            }
            create_private_file(path)?;
        } else {
            match std::fs::metadata(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(LedgerError::StoreNotFound {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) => return Err(LedgerError::io("could not inspect", path, &e)),
            }
        }
        // The file exists now, so no CREATE flag: a store removed meanwhile is an error rather
        // than a silently recreated empty store.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers (CLI `proposals list`, `replay`) never block the server's writer and vice
        // versa, and a commit is one append to the -wal file.
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::unavailable(format!(
                "the store could not switch to WAL journal mode (got {mode})"
            )));
        }
        // In WAL mode, NORMAL syncs the WAL only at checkpoints, not at every commit. A committed
        // transaction is already written to the -wal file (in the OS page cache) when COMMIT
        // returns, so it survives the process dying in any way, including kill -9; only an OS
        // crash or power loss can lose the last few commits, and never corrupts the store.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Savepoints (group commit gives each record of a batch one) keep a statement journal,
        // which SQLite writes to a temporary file in /tmp or the working folder by default. A
        // sidecar runs with a read-only root filesystem, where that file cannot be created and
        // every batch failed with a disk I/O error: temporary files stay in memory instead.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(LedgerStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets this connection's `wal_autocheckpoint` (pages; 0 turns it off).
    pub(crate) fn set_wal_autocheckpoint(&self, pages: u32) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        Ok(())
    }

    /// The store's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        schema::user_version(&self.conn)
    }

    fn immediate(&mut self) -> Result<Transaction<'_>> {
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

// -------------------------------------------------------------------- files

/// Creates `dir` and missing parents, owner-only (0700) on Unix. An existing folder is left as is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| LedgerError::io("could not create the folder", dir, &e))
}

/// Creates the store file owner-only (0600) on Unix if it does not exist. SQLite gives the
/// `-wal` and `-shm` files the same permissions as the database file.
fn create_private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(drop)
        .map_err(|e| LedgerError::io("could not create", path, &e))
}

// -------------------------------------------------------------------- validation

/// Timestamps must be `YYYY-MM-DDTHH:MM:SS.mmmZ` exactly (what `format_rfc3339_ms` writes): the
/// ledger orders and compares them as strings, which is only correct for one fixed-width form.
fn check_ts(field: &str, s: &str) -> Result<()> {
    if parse_rfc3339_ms(s).map(format_rfc3339_ms).as_deref() == Some(s) {
        Ok(())
    } else {
        Err(LedgerError::InvalidInput(format!(
            "{field} must be a UTC timestamp in the form YYYY-MM-DDTHH:MM:SS.mmmZ"
        )))
    }
}

fn non_empty<'a>(field: &str, s: &'a str) -> Result<&'a str> {
    let t = s.trim();
    if t.is_empty() {
        Err(LedgerError::InvalidInput(format!("{field} must not be empty")))
    } else {
        Ok(t)
    }
}

fn validate_change_set(cs: &ChangeSet) -> Result<()> {
    non_empty("proposal_id", &cs.proposal_id)?;
    check_ts("change set created_at", &cs.created_at)?;
    if !cs.digest_is_intact() {
        return Err(LedgerError::InvalidInput(
            "the change set's digest does not match its content".into(),
        ));
    }
    if cs.mode != "shadow" && cs.mode != "review_required" {
        return Err(LedgerError::InvalidInput(
            "change set mode must be shadow or review_required".into(),
        ));
    }
    if cs.approval.required_approvals == 0 {
        return Err(LedgerError::InvalidInput(
            "required_approvals must be at least 1".into(),
        ));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|_| LedgerError::InvalidInput("a record could not be encoded as JSON".into()))
}

fn reject_secrets(what: &'static str, v: &Value) -> Result<()> {
    match synapsor_core::secrets::find_secret(v) {
        Some(path) => Err(LedgerError::SecretMaterialRejected { what, path }),
        None => Ok(()),
    }
}

// -------------------------------------------------------------------- row helpers

fn proposal_exists(conn: &Connection, id: &str) -> Result<bool> {
    // Cached statements here and below: every read that names a proposal and every proposal
    // runs them, and parsing the SQL again each time was a tenth of a proposal's ledger time.
    Ok(conn
        .prepare_cached("SELECT 1 FROM proposals WHERE proposal_id = ?1")?
        .query_row([id], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some())
}

fn require_proposal(conn: &Connection, id: &str) -> Result<()> {
    if proposal_exists(conn, id)? {
        Ok(())
    } else {
        Err(LedgerError::ProposalNotFound { id: id.to_owned() })
    }
}

fn parse_state(id: &str, s: &str) -> Result<ProposalState> {
    ProposalState::parse(s).ok_or_else(|| LedgerError::CorruptRow {
        table: "proposals",
        row: id.to_owned(),
        detail: "unknown state".into(),
    })
}

/// Loads a proposal and reports whether its digest check passed: the change set's digest matches
/// its content, and the digest and id columns match the change set.
fn load(conn: &Connection, id: &str) -> Result<(ProposalRecord, bool)> {
    type Row = (String, String, String, String, String, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT digest, state, change_set_json, created_at, updated_at, managed_by
             FROM proposals WHERE proposal_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    let Some((digest, state, cs_json, created_at, updated_at, managed_by)) = row else {
        return Err(LedgerError::ProposalNotFound { id: id.to_owned() });
    };
    let change_set: ChangeSet =
        serde_json::from_str(&cs_json).map_err(|e| LedgerError::corrupt_json("proposals", id, &e))?;
    let state = parse_state(id, &state)?;
    let intact = change_set.digest_is_intact() && change_set.digest == digest && change_set.proposal_id == id;
    let approvals = query_rows(
        conn,
        "SELECT approver, decision, digest, reason, created_at, verified_json FROM approvals
         WHERE proposal_id = ?1 ORDER BY approval_id",
        [id],
        |r| {
            let verified: Option<String> = r.get(5)?;
            Ok(ApprovalRecord {
                approver: r.get(0)?,
                decision: r.get(1)?,
                digest: r.get(2)?,
                reason: r.get(3)?,
                created_at: r.get(4)?,
                verified_identity: verified.and_then(|v| serde_json::from_str(&v).ok()),
            })
        },
    )?;
    Ok((
        ProposalRecord {
            change_set,
            state,
            created_at,
            updated_at,
            approvals,
            managed_by,
        },
        intact,
    ))
}

/// A transition payload: a JSON object, or null for none.
fn payload_object(payload: Value) -> Result<Map<String, Value>> {
    match payload {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(LedgerError::InvalidInput(
            "a transition payload must be a JSON object".into(),
        )),
    }
}

/// Inserts a proposal row in `state` (its change set already validated and with its final id;
/// `cs_json` is its encoding, made by the caller, which usually had it already).
fn insert_proposal_row(
    conn: &Connection,
    cs: &ChangeSet,
    cs_json: &str,
    state: ProposalState,
    updated_at: &str,
    managed_by: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO proposals (proposal_id, digest, state, capability, tenant_id, principal,
             object_id, business_object, mode, change_set_json, created_at, updated_at, managed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        cs.proposal_id,
        cs.digest,
        state.as_str(),
        cs.action,
        cs.scope.tenant_id,
        cs.principal.id,
        cs.scope.object_id,
        cs.scope.business_object,
        cs.mode,
        cs_json,
        cs.created_at,
        updated_at,
        managed_by,
    ])?;
    Ok(())
}

fn load_verified(conn: &Connection, id: &str) -> Result<ProposalRecord> {
    match load(conn, id)? {
        (rec, true) => Ok(rec),
        (_, false) => Err(LedgerError::ProposalDigestMismatch { id: id.to_owned() }),
    }
}

/// Compare-and-set of the state column.
fn set_state(conn: &Connection, id: &str, from: ProposalState, to: ProposalState, now: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE proposals SET state = ?3, updated_at = ?4 WHERE proposal_id = ?1 AND state = ?2",
        params![id, from.as_str(), to.as_str(), now],
    )?;
    if n == 1 {
        return Ok(());
    }
    let current: Option<String> = conn
        .query_row("SELECT state FROM proposals WHERE proposal_id = ?1", [id], |r| r.get(0))
        .optional()?;
    match current {
        None => Err(LedgerError::ProposalNotFound { id: id.to_owned() }),
        Some(s) => Err(LedgerError::InvalidTransition {
            id: id.to_owned(),
            current: parse_state(id, &s)?,
            requested: to,
            expected: Some(from),
        }),
    }
}

fn insert_event(
    conn: &Connection,
    proposal_id: &str,
    kind: &str,
    actor: &str,
    payload: &Value,
    at: &str,
) -> Result<i64> {
    reject_secrets("event payload", payload)?;
    let payload_json = serde_json::to_string(payload)
        .map_err(|_| LedgerError::InvalidInput("an event payload could not be encoded".into()))?;
    // Cached statements: these inserts run on every tool call, and re-parsing them was a
    // measurable part of a read's latency (docs/benchmarks.md).
    conn.prepare_cached(
        "INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![proposal_id, kind, actor, payload_json, at])?;
    Ok(conn.last_insert_rowid())
}

/// One row of `approvals`: an approval or a rejection, bound to the digest it was made on.
fn insert_decision(
    conn: &Connection,
    proposal_id: &str,
    by: Decider<'_>,
    decision: &str,
    digest: &str,
    reason: Option<&str>,
    at: &str,
) -> Result<()> {
    let verified = by.verified.map(|v| serde_json::to_string(v).unwrap_or_default());
    conn.execute(
        "INSERT INTO approvals (proposal_id, approver, decision, digest, reason, created_at, verified_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![proposal_id, by.name, decision, digest, reason, at, verified],
    )?;
    Ok(())
}

fn u32_col(table: &'static str, row: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| LedgerError::CorruptRow {
        table,
        row: row.to_owned(),
        detail: "count out of range".into(),
    })
}

/// The receipts of a proposal, oldest first (for `receipts_for` and the replay).
fn load_receipts(conn: &Connection, proposal_id: &str) -> Result<Vec<ReceiptRecord>> {
    query_rows(
        conn,
        "SELECT receipt_id, proposal_id, idempotency_key, status, rows_affected, safe_error_code, receipt_json,
                created_at
         FROM receipts WHERE proposal_id = ?1 ORDER BY receipt_id",
        [proposal_id],
        |r| {
            let row = r.get::<_, i64>(0)?.to_string();
            let json: String = r.get(6)?;
            Ok(ReceiptRecord {
                proposal_id: r.get(1)?,
                idempotency_key: r.get(2)?,
                status: r.get(3)?,
                rows_affected: u32_col("receipts", &row, r.get(4)?)?,
                safe_error_code: r.get(5)?,
                receipt: serde_json::from_str(&json).map_err(|e| LedgerError::corrupt_json("receipts", row, &e))?,
                created_at: r.get(7)?,
            })
        },
    )
}

/// Runs `sql` and turns each row into a record with `decode`. Decoding runs here, outside
/// rusqlite's row mapping, because it can fail with ledger errors (corrupt JSON, an unknown
/// state) that a `query_map` closure cannot return.
fn query_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}
