//! The ledger's one error type and its stable codes.
//!
//! Messages are one sentence, written here, and never carry stored values: a secret refusal names
//! the JSON path, a corrupt row names its table and id, and SQLite's own text is only passed on
//! for IO-level failures (it names files and conditions such as "database is locked", not data).

use std::path::PathBuf;

use crate::lease::LeaseInfo;

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("the ledger store {} does not exist", path.display())]
    StoreNotFound { path: PathBuf },

    /// IO or SQLite failure (busy, locked, disk full, permissions ...). `retryable` is true for
    /// busy/locked, which clear once the other writer finishes.
    #[error("the ledger store is unavailable: {detail}")]
    StoreUnavailable { detail: String, retryable: bool },

    /// A stored row could not be decoded. Reported with the STORE_UNAVAILABLE code: the store
    /// is damaged, and nothing the caller passes can fix it.
    #[error("the ledger store holds a corrupt {table} row {row} ({detail})")]
    CorruptRow {
        table: &'static str,
        row: String,
        detail: String,
    },

    #[error(
        "the ledger store has schema version {found}, newer than this binary supports ({supported}); upgrade synapsor-runner"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    #[error("proposal {id} was not found")]
    ProposalNotFound { id: String },

    /// The stored change set no longer matches its digest (or the digest column): it was changed
    /// after it was recorded.
    #[error("proposal {id} failed its digest check: its stored change set was modified after it was recorded")]
    ProposalDigestMismatch { id: String },

    /// An approval was bound to a digest other than the proposal's.
    #[error("the approval was bound to digest {expected}, but proposal {id} has digest {actual}")]
    DigestMismatch {
        id: String,
        expected: String,
        actual: String,
    },

    #[error(
        "proposal {id} is {current}{}, so it cannot move to {requested}",
        expected.map(|e| format!(" (expected {e})")).unwrap_or_default()
    )]
    InvalidTransition {
        id: String,
        current: synapsor_core::ProposalState,
        requested: synapsor_core::ProposalState,
        /// Set when a compare-and-set found another state than the caller expected.
        expected: Option<synapsor_core::ProposalState>,
    },

    #[error("{approver} has already approved proposal {id}")]
    AlreadyDecided { id: String, approver: String },

    #[error("{approver} proposed {id} and cannot approve it")]
    SelfApprovalForbidden { id: String, approver: String },

    /// The proposal was published to another store of record (`by`, e.g.
    /// `kubernetes:ns/Proposal/name`): it is approved and applied there, not with local commands.
    #[error("{id} is managed by {by}: approve, reject and apply it there")]
    ManagedExternally { id: String, by: String },

    /// `path` is the JSON path of the first secret-looking key or value; the value is never kept.
    #[error("refused to store secret-looking material in the {what} at {path}")]
    SecretMaterialRejected { what: &'static str, path: String },

    #[error(
        "the ledger store is leased by a running server ({}); stop it first",
        holder_text(holder)
    )]
    StoreLeased { holder: Option<LeaseInfo> },

    #[error("evidence bundle {id} was not found")]
    EvidenceNotFound { id: String },

    #[error("invalid ledger input: {0}")]
    InvalidInput(String),
}

fn holder_text(holder: &Option<LeaseInfo>) -> String {
    match holder {
        Some(h) => format!(
            "pid {}, mode {}, transport {}, started {}",
            h.pid, h.mode, h.transport, h.started_at
        ),
        None => "holder details unavailable".to_owned(),
    }
}

impl LedgerError {
    /// The stable code used in envelopes, CLI output and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::StoreNotFound { .. } => "STORE_NOT_FOUND",
            LedgerError::StoreUnavailable { .. } | LedgerError::CorruptRow { .. } => "STORE_UNAVAILABLE",
            LedgerError::SchemaTooNew { .. } => "STORE_SCHEMA_TOO_NEW",
            LedgerError::ProposalNotFound { .. } => "PROPOSAL_NOT_FOUND",
            LedgerError::ProposalDigestMismatch { .. } => "PROPOSAL_DIGEST_MISMATCH",
            LedgerError::DigestMismatch { .. } => "DIGEST_MISMATCH",
            LedgerError::InvalidTransition { .. } => "INVALID_TRANSITION",
            LedgerError::AlreadyDecided { .. } => "ALREADY_DECIDED",
            LedgerError::SelfApprovalForbidden { .. } => "SELF_APPROVAL_FORBIDDEN",
            LedgerError::ManagedExternally { .. } => "PROPOSAL_MANAGED_EXTERNALLY",
            LedgerError::SecretMaterialRejected { .. } => "SECRET_MATERIAL_REJECTED",
            LedgerError::StoreLeased { .. } => "STORE_LEASED",
            LedgerError::EvidenceNotFound { .. } => "EVIDENCE_NOT_FOUND",
            LedgerError::InvalidInput(_) => "INVALID_INPUT",
        }
    }

    /// True when the same call may succeed later without any change (a busy store, a lease
    /// that is released when its server stops).
    pub fn retryable(&self) -> bool {
        match self {
            LedgerError::StoreUnavailable { retryable, .. } => *retryable,
            LedgerError::StoreLeased { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        LedgerError::StoreUnavailable {
            detail: detail.into(),
            retryable: false,
        }
    }

    pub(crate) fn io(what: &str, path: &std::path::Path, e: &std::io::Error) -> Self {
        LedgerError::StoreUnavailable {
            detail: format!("{what} {}: {}", path.display(), e.kind()),
            retryable: false,
        }
    }

    pub(crate) fn corrupt_json(table: &'static str, row: impl Into<String>, e: &serde_json::Error) -> Self {
        // serde's message can quote the offending value; keep only its category and position.
        LedgerError::CorruptRow {
            table,
            row: row.into(),
            detail: format!("{:?} JSON at line {} column {}", e.classify(), e.line(), e.column()),
        }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, msg) => {
                let retryable = matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked);
                let detail = match msg {
                    Some(m) => format!("{m} ({:?})", f.code),
                    None => format!("{:?}", f.code),
                };
                LedgerError::StoreUnavailable { detail, retryable }
            }
            // Type conversion errors can name a value; report only the kind.
            rusqlite::Error::FromSqlConversionFailure(idx, ty, _) | rusqlite::Error::InvalidColumnType(idx, _, ty) => {
                LedgerError::CorruptRow {
                    table: "unknown",
                    row: "?".into(),
                    detail: format!("column {idx} has unexpected type {ty}"),
                }
            }
            other => LedgerError::unavailable(format!("sqlite: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_are_one_sentence() {
        let cases: Vec<(LedgerError, &str)> = vec![
            (
                LedgerError::StoreNotFound {
                    path: "/x/local.db".into(),
                },
                "STORE_NOT_FOUND",
            ),
            (LedgerError::unavailable("disk I/O error"), "STORE_UNAVAILABLE"),
            (
                LedgerError::CorruptRow {
                    table: "proposals",
                    row: "p1".into(),
                    detail: "Syntax JSON".into(),
                },
                "STORE_UNAVAILABLE",
            ),
            (
                LedgerError::SchemaTooNew { found: 9, supported: 1 },
                "STORE_SCHEMA_TOO_NEW",
            ),
            (LedgerError::ProposalNotFound { id: "p1".into() }, "PROPOSAL_NOT_FOUND"),
            (
                LedgerError::ProposalDigestMismatch { id: "p1".into() },
                "PROPOSAL_DIGEST_MISMATCH",
            ),
            (
                LedgerError::DigestMismatch {
                    id: "p1".into(),
                    expected: "sha256:a".into(),
                    actual: "sha256:b".into(),
                },
                "DIGEST_MISMATCH",
            ),
            (
                LedgerError::InvalidTransition {
                    id: "p1".into(),
                    current: synapsor_core::ProposalState::Applying,
                    requested: synapsor_core::ProposalState::Applying,
                    expected: Some(synapsor_core::ProposalState::Approved),
                },
                "INVALID_TRANSITION",
            ),
            (
                LedgerError::AlreadyDecided {
                    id: "p1".into(),
                    approver: "a".into(),
                },
                "ALREADY_DECIDED",
            ),
            (
                LedgerError::SelfApprovalForbidden {
                    id: "p1".into(),
                    approver: "a".into(),
                },
                "SELF_APPROVAL_FORBIDDEN",
            ),
            (
                LedgerError::SecretMaterialRejected {
                    what: "evidence",
                    path: "$.items[0].password".into(),
                },
                "SECRET_MATERIAL_REJECTED",
            ),
            (LedgerError::StoreLeased { holder: None }, "STORE_LEASED"),
            (LedgerError::EvidenceNotFound { id: "e1".into() }, "EVIDENCE_NOT_FOUND"),
            (LedgerError::InvalidInput("x must not be empty".into()), "INVALID_INPUT"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            let msg = err.to_string();
            assert!(!msg.contains('\n') && !msg.ends_with('.'), "{msg}");
        }
        let t = LedgerError::InvalidTransition {
            id: "p1".into(),
            current: synapsor_core::ProposalState::Applying,
            requested: synapsor_core::ProposalState::Applying,
            expected: Some(synapsor_core::ProposalState::Approved),
        };
        assert_eq!(
            t.to_string(),
            "proposal p1 is applying (expected approved), so it cannot move to applying"
        );
    }

    #[test]
    fn busy_is_retryable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let e = LedgerError::from(busy);
        assert_eq!(e.code(), "STORE_UNAVAILABLE");
        assert!(e.retryable());
        assert!(!LedgerError::ProposalNotFound { id: "p".into() }.retryable());
    }
}
