//! The ledger schema and its versioned migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the version bump, so a crash leaves the store at a
//! whole version, and two processes opening a fresh store at once apply each step exactly once
//! (the second re-reads the version under the write lock and skips). Migrations are append-only:
//! never edit a released entry, add a new one.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{LedgerError, Result};

/// Migration `i` moves the store from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
CREATE TABLE proposals (
    proposal_id      TEXT PRIMARY KEY NOT NULL,
    digest           TEXT NOT NULL,
    state            TEXT NOT NULL,
    capability       TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    principal        TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    business_object  TEXT NOT NULL,
    mode             TEXT NOT NULL,
    change_set_json  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

-- Identical proposals (same digest) dedupe while one is open for review. Terminal and in-flight
-- proposals do not block a new proposal with the same digest.
CREATE UNIQUE INDEX proposals_open_digest ON proposals(digest)
    WHERE state IN ('pending_review', 'shadow');
CREATE INDEX proposals_created ON proposals(created_at);
CREATE INDEX proposals_tenant_created ON proposals(tenant_id, created_at);
CREATE INDEX proposals_capability_created ON proposals(capability, created_at);
CREATE INDEX proposals_state_created ON proposals(state, created_at);

-- A recorded change set is immutable: only state and updated_at ever change.
CREATE TRIGGER proposals_immutable
BEFORE UPDATE OF proposal_id, digest, change_set_json, capability, tenant_id, principal,
                 object_id, business_object, mode, created_at ON proposals
BEGIN
    SELECT RAISE(ABORT, 'proposals are immutable except for state and updated_at');
END;

CREATE TABLE proposal_events (
    event_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id   TEXT NOT NULL REFERENCES proposals(proposal_id),
    kind          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX proposal_events_proposal ON proposal_events(proposal_id, event_id);
CREATE INDEX proposal_events_kind ON proposal_events(kind, event_id);
CREATE TRIGGER proposal_events_append_only
BEFORE UPDATE ON proposal_events
BEGIN
    SELECT RAISE(ABORT, 'proposal_events is append-only');
END;

CREATE TABLE approvals (
    approval_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id  TEXT NOT NULL REFERENCES proposals(proposal_id),
    approver     TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    digest       TEXT NOT NULL,
    reason       TEXT,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX approvals_proposal ON approvals(proposal_id, approval_id);
CREATE UNIQUE INDEX approvals_one_per_approver ON approvals(proposal_id, approver)
    WHERE decision = 'approved';
CREATE TRIGGER approvals_append_only
BEFORE UPDATE ON approvals
BEGIN
    SELECT RAISE(ABORT, 'approvals is append-only');
END;

CREATE TABLE evidence_bundles (
    evidence_bundle_id  TEXT PRIMARY KEY NOT NULL,
    proposal_id         TEXT REFERENCES proposals(proposal_id),
    capability          TEXT NOT NULL,
    tenant_id           TEXT NOT NULL,
    principal           TEXT NOT NULL,
    source_id           TEXT NOT NULL,
    target              TEXT NOT NULL,
    object_id           TEXT NOT NULL,
    query_fingerprint   TEXT NOT NULL,
    items_json          TEXT NOT NULL,
    created_at          TEXT NOT NULL
) STRICT;
CREATE INDEX evidence_bundles_proposal ON evidence_bundles(proposal_id, created_at);
CREATE INDEX evidence_bundles_created ON evidence_bundles(created_at);
CREATE INDEX evidence_bundles_tenant_created ON evidence_bundles(tenant_id, created_at);
CREATE INDEX evidence_bundles_capability_created ON evidence_bundles(capability, created_at);

CREATE TABLE query_audit (
    audit_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    evidence_bundle_id  TEXT REFERENCES evidence_bundles(evidence_bundle_id),
    proposal_id         TEXT REFERENCES proposals(proposal_id),
    capability          TEXT NOT NULL,
    tenant_id           TEXT NOT NULL,
    principal           TEXT NOT NULL,
    source_id           TEXT NOT NULL,
    query_fingerprint   TEXT NOT NULL,
    statement_template  TEXT NOT NULL,
    row_count           INTEGER NOT NULL,
    duration_ms         REAL NOT NULL,
    outcome             TEXT NOT NULL,
    created_at          TEXT NOT NULL
) STRICT;
CREATE INDEX query_audit_bundle ON query_audit(evidence_bundle_id);
CREATE INDEX query_audit_proposal ON query_audit(proposal_id);
CREATE INDEX query_audit_created ON query_audit(created_at);
CREATE INDEX query_audit_tenant_created ON query_audit(tenant_id, created_at);
CREATE INDEX query_audit_capability_created ON query_audit(capability, created_at);

CREATE TABLE receipts (
    receipt_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id      TEXT NOT NULL REFERENCES proposals(proposal_id),
    idempotency_key  TEXT NOT NULL,
    status           TEXT NOT NULL,
    rows_affected    INTEGER NOT NULL,
    safe_error_code  TEXT,
    receipt_json     TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (proposal_id, idempotency_key)
) STRICT;
CREATE INDEX receipts_created ON receipts(created_at);
CREATE TRIGGER receipts_append_only
BEFORE UPDATE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts is append-only');
END;
"#,
    // 2: proposals published to another store of record (a Kubernetes `Proposal`): the ledger
    // keeps a mirror whose approvals and state come from there, never from local commands.
    r#"
ALTER TABLE proposals ADD COLUMN managed_by TEXT;
"#,
    // 3: no query filters evidence or query audit by tenant or capability (listings by tenant
    // and capability are of proposals), and each of these indexes cost every read tool call one
    // more 4 KiB page in the WAL.
    r#"
DROP INDEX IF EXISTS evidence_bundles_tenant_created;
DROP INDEX IF EXISTS evidence_bundles_capability_created;
DROP INDEX IF EXISTS query_audit_tenant_created;
DROP INDEX IF EXISTS query_audit_capability_created;
"#,
    // 4: who decided, as a verified token said (issuer, subject, jti as JSON); NULL when the
    // name was only given (`--actor`, $USER) and nothing verified it.
    r#"
ALTER TABLE approvals ADD COLUMN verified_json TEXT;
"#,
];

/// The schema version this binary writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?)
}

/// Brings the store to [`current_version`], refusing a store written by a newer binary.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = current_version();
    let found = user_version(conn)?;
    if found > supported {
        return Err(LedgerError::SchemaTooNew { found, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let target = i as i64 + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our first read and taking the write lock.
        let now = user_version(&tx)?;
        if now > supported {
            return Err(LedgerError::SchemaTooNew { found: now, supported });
        }
        if now >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_is_idempotent_and_refuses_newer_stores() {
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        migrate(&mut conn).expect("first migrate");
        assert_eq!(user_version(&conn).expect("version"), current_version());
        migrate(&mut conn).expect("second migrate is a no-op");
        assert_eq!(user_version(&conn).expect("version"), current_version());
        conn.pragma_update(None, "user_version", current_version() + 1)
            .expect("bump");
        let err = migrate(&mut conn).expect_err("newer store");
        assert_eq!(err.code(), "STORE_SCHEMA_TOO_NEW");
    }
}
