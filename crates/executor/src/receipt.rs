//! What an apply reports: the [`Receipt`], its statuses and its stable error codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synapsor_core::ChangeSet;
use synapsor_core::digest::digest_value;

/// Schema name of a receipt.
pub const RECEIPT_SCHEMA: &str = "synapsor.execution-receipt.v1";

/// The outcome of one apply attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The row was updated and the idempotency receipt committed in the same transaction.
    Applied,
    /// The source's receipts table already holds `applied` for this idempotency key; nothing was
    /// touched.
    AlreadyApplied,
    /// The row is gone (for this tenant) or changed since the proposal. Nothing was written; the
    /// proposal must be proposed again.
    Conflict,
    /// Nothing was written (everything rolled back); the apply may be retried.
    Failed,
    /// Dry run: every check passed and the update matched exactly one row, then it was rolled back.
    WouldApply,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Applied => "applied",
            ReceiptStatus::AlreadyApplied => "already_applied",
            ReceiptStatus::Conflict => "conflict",
            ReceiptStatus::Failed => "failed",
            ReceiptStatus::WouldApply => "would_apply",
        }
    }

    /// Applied, already applied, or a dry run that would apply.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ReceiptStatus::Applied | ReceiptStatus::AlreadyApplied | ReceiptStatus::WouldApply
        )
    }
}

impl std::fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable codes of a receipt that is not `applied` (`safe_error_code`). They never carry driver
/// text; the detail goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WritebackCode {
    // -- conflicts (terminal for the proposal)
    /// No row with this primary key in this tenant.
    RowNotFound,
    /// The version column (or row hash) differs from the one the proposal was made on, or the
    /// guarded UPDATE matched no row.
    VersionConflict,
    // -- policy (the current reviewed config refuses the change)
    PatchEmpty,
    PatchColumnNotAllowed,
    PatchNumericBoundTypeInvalid,
    PatchBelowMinimum,
    PatchAboveMaximum,
    TransitionTypeInvalid,
    TransitionNotAllowed,
    /// The change set's tenant guard does not name the proposal's tenant and the reviewed tenant key.
    TenantGuardMismatch,
    /// The capability now targets another source, table, key, tenant key, executor or guard.
    CapabilityChanged,
    /// Shadow proposals are never applied (also the code of a config that is in shadow mode).
    /// Receipts written before the code was unified say `SHADOW_PROPOSAL`.
    #[serde(rename = "SHADOW_WRITEBACK_DISABLED", alias = "SHADOW_PROPOSAL")]
    ShadowProposal,
    /// The change set no longer matches its digest (it was modified after approval).
    ChangeSetDigestMismatch,
    /// The source is marked `read_only`.
    SourceReadOnly,
    // -- setup
    WriterCredentialMissing,
    WriterUrlInvalid,
    DatabaseUnavailable,
    ReceiptsTableMissing,
    ReceiptsTableNotWritable,
    /// The receipts table holds a row for this key that this runner never commits.
    IdempotencyReceiptInvalid,
    /// Marking the claimed receipt `applied` did not affect exactly one row.
    IdempotencyReceiptUnavailable,
    UnsafeIdentifier,
    /// A table or column of the reviewed config does not exist for the writer.
    SourceSchemaMismatch,
    /// The writer may not lock or update the business table.
    WritePermissionDenied,
    /// The database refused a bound value for the column's type.
    ValueTypeInvalid,
    /// The database refused the change (check, unique, foreign key or not-null constraint).
    ConstraintViolation,
    /// A lock could not be taken in time, or a deadlock was resolved against this apply.
    LockTimeout,
    /// The key or the guarded UPDATE matched more than one row.
    MultiRowWriteBlocked,
    /// The row hash guard could not be computed from the current row.
    ConflictGuardUnavailable,
    /// No executor of this kind is available in this build (not produced any more; kept so
    /// receipts recorded by older builds still parse).
    HandlerExecutorNotAvailable,
    UnknownExecutor,
    /// Any other database failure (logged, redacted).
    TransactionFailed,
    // -- app-owned handlers (`http_handler`, `command_handler`); nothing was written by the runner
    /// The environment variable named by `url_env` is not set.
    HandlerUrlMissing,
    /// The handler URL is not an `http://` or `https://` URL with a host.
    HandlerUrlInvalid,
    /// `signing_secret_env` is configured but its variable is not set: never sent unsigned.
    HandlerSecretMissing,
    /// The signing secret is shorter than 32 bytes, or the key id is not valid.
    HandlerSecretInvalid,
    /// `auth.token_env` is configured but its variable is not set.
    HandlerTokenMissing,
    /// The environment variable named by `command_env` is not set or empty.
    HandlerCommandMissing,
    /// The command could not be started (not found, not executable).
    HandlerCommandNotFound,
    /// The command exited non-zero (or was killed) without writing a valid receipt.
    HandlerCommandFailed,
    /// The process installed no TLS crypto provider, so no HTTP client could be built.
    HandlerClientUnavailable,
    /// The handler refused the request's credentials: HTTP 401/403, or a signature code
    /// (`SIGNATURE_MISMATCH`, `UNKNOWN_KEY_ID`, ...) in its receipt.
    HandlerUnauthorized,
    /// The handler answered 4xx (or a redirect) without a receipt.
    HandlerRejected,
    /// The handler's answer parsed as a receipt but broke its rules, or a 2xx (exit 0) answer
    /// carried no receipt.
    HandlerReceiptInvalid,
    /// The handler could not be reached, or kept answering 5xx/429 without a receipt.
    HandlerUnavailable,
    /// The handler did not answer within `timeout_ms` (every attempt, for HTTP).
    HandlerTimeout,
    /// The handler answered `conflict` without an error code.
    HandlerConflict,
    /// The handler answered `failed` without an error code.
    HandlerFailed,
}

impl WritebackCode {
    pub fn as_str(self) -> &'static str {
        use WritebackCode::*;
        match self {
            RowNotFound => "ROW_NOT_FOUND",
            VersionConflict => "VERSION_CONFLICT",
            PatchEmpty => "PATCH_EMPTY",
            PatchColumnNotAllowed => "PATCH_COLUMN_NOT_ALLOWED",
            PatchNumericBoundTypeInvalid => "PATCH_NUMERIC_BOUND_TYPE_INVALID",
            PatchBelowMinimum => "PATCH_BELOW_MINIMUM",
            PatchAboveMaximum => "PATCH_ABOVE_MAXIMUM",
            TransitionTypeInvalid => "TRANSITION_TYPE_INVALID",
            TransitionNotAllowed => "TRANSITION_NOT_ALLOWED",
            TenantGuardMismatch => "TENANT_GUARD_MISMATCH",
            CapabilityChanged => "CAPABILITY_CHANGED",
            ShadowProposal => "SHADOW_WRITEBACK_DISABLED",
            ChangeSetDigestMismatch => "CHANGE_SET_DIGEST_MISMATCH",
            SourceReadOnly => "SOURCE_READ_ONLY",
            WriterCredentialMissing => "WRITER_CREDENTIAL_MISSING",
            WriterUrlInvalid => "WRITER_URL_INVALID",
            DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            ReceiptsTableMissing => "RECEIPTS_TABLE_MISSING",
            ReceiptsTableNotWritable => "RECEIPTS_TABLE_NOT_WRITABLE",
            IdempotencyReceiptInvalid => "IDEMPOTENCY_RECEIPT_INVALID",
            IdempotencyReceiptUnavailable => "IDEMPOTENCY_RECEIPT_UNAVAILABLE",
            UnsafeIdentifier => "UNSAFE_IDENTIFIER",
            SourceSchemaMismatch => "SOURCE_SCHEMA_MISMATCH",
            WritePermissionDenied => "WRITE_PERMISSION_DENIED",
            ValueTypeInvalid => "VALUE_TYPE_INVALID",
            ConstraintViolation => "CONSTRAINT_VIOLATION",
            LockTimeout => "LOCK_TIMEOUT",
            MultiRowWriteBlocked => "MULTI_ROW_WRITE_BLOCKED",
            ConflictGuardUnavailable => "CONFLICT_GUARD_UNAVAILABLE",
            HandlerExecutorNotAvailable => "HANDLER_EXECUTOR_NOT_AVAILABLE",
            UnknownExecutor => "UNKNOWN_EXECUTOR",
            TransactionFailed => "TRANSACTION_FAILED",
            HandlerUrlMissing => "HANDLER_URL_MISSING",
            HandlerUrlInvalid => "HANDLER_URL_INVALID",
            HandlerSecretMissing => "HANDLER_SECRET_MISSING",
            HandlerSecretInvalid => "HANDLER_SECRET_INVALID",
            HandlerTokenMissing => "HANDLER_TOKEN_MISSING",
            HandlerCommandMissing => "HANDLER_COMMAND_MISSING",
            HandlerCommandNotFound => "HANDLER_COMMAND_NOT_FOUND",
            HandlerCommandFailed => "HANDLER_COMMAND_FAILED",
            HandlerClientUnavailable => "HANDLER_CLIENT_UNAVAILABLE",
            HandlerUnauthorized => "HANDLER_UNAUTHORIZED",
            HandlerRejected => "HANDLER_REJECTED",
            HandlerReceiptInvalid => "HANDLER_RECEIPT_INVALID",
            HandlerUnavailable => "HANDLER_UNAVAILABLE",
            HandlerTimeout => "HANDLER_TIMEOUT",
            HandlerConflict => "HANDLER_CONFLICT",
            HandlerFailed => "HANDLER_FAILED",
        }
    }

    /// True for the codes that mean "outside the reviewed policy" (the v2 `POLICY_VIOLATION`
    /// family).
    pub fn is_policy_violation(self) -> bool {
        use WritebackCode::*;
        matches!(
            self,
            PatchEmpty
                | PatchColumnNotAllowed
                | PatchNumericBoundTypeInvalid
                | PatchBelowMinimum
                | PatchAboveMaximum
                | TransitionTypeInvalid
                | TransitionNotAllowed
                | TenantGuardMismatch
        )
    }

    /// The receipt status this code is reported with.
    pub fn status(self) -> ReceiptStatus {
        match self {
            WritebackCode::RowNotFound | WritebackCode::VersionConflict | WritebackCode::HandlerConflict => {
                ReceiptStatus::Conflict
            }
            _ => ReceiptStatus::Failed,
        }
    }
}

impl std::fmt::Display for WritebackCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error code chosen by an app-owned handler (the `error_code` of its receipt), such as
/// `VERSION_CONFLICT`, `ROW_NOT_FOUND` or `UNSUPPORTED_ACTION`. It is recorded verbatim in
/// [`Receipt::safe_error_code`] only after this check, `^[A-Z][A-Z0-9_]{0,63}$`, so whatever a
/// handler answers, the ledger, metrics labels and envelopes only ever see a short UPPER_SNAKE
/// token. [`WritebackCode`] stays the closed set of the runner's own codes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandlerCode(String);

impl HandlerCode {
    /// Longest accepted code.
    pub const MAX_LEN: usize = 64;

    /// The code, when it has the safe shape.
    pub fn new(code: &str) -> Option<HandlerCode> {
        let b = code.as_bytes();
        let ok = (1..=Self::MAX_LEN).contains(&b.len())
            && b[0].is_ascii_uppercase()
            && b.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
        ok.then(|| HandlerCode(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The runner's code of the same name, when there is one (`VERSION_CONFLICT`, ...).
    pub fn known(&self) -> Option<WritebackCode> {
        serde_json::from_value(Value::String(self.0.clone())).ok()
    }
}

impl std::fmt::Display for HandlerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One guard or step the executor checked, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `capability`, `policy`, `receipt_claim`, `row_lock`, `tenant_guard`, `version_guard`,
    /// `transition_guards`, `single_row_update`, `receipt_marked`.
    pub name: String,
    pub passed: bool,
    /// One line written by the executor (never driver text, never row data beyond the key).
    pub detail: String,
}

/// The receipt of one apply attempt (also of a dry run, which is never recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// Always [`RECEIPT_SCHEMA`].
    pub schema_version: String,
    pub proposal_id: String,
    /// `sql_update` or the executor name.
    pub executor: String,
    pub status: ReceiptStatus,
    /// Rows this attempt changed: 1 for `applied`, 0 otherwise (also for dry runs).
    pub rows_affected: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_error_code: Option<String>,
    /// One sentence for the operator, written by the executor.
    pub message: String,
    /// `<proposal_id>:<first 16 hex of the digest>`; the source's receipts table is keyed by it.
    pub idempotency_key: String,
    /// The change-set digest the approval was bound to.
    pub digest: String,
    /// RFC 3339 UTC (the caller's clock).
    pub executed_at: String,
    /// The version column (`__row_hash` for the weak guard).
    pub version_column: String,
    /// The version the proposal was made on.
    pub previous_version: Value,
    /// The version after the write (`applied` and dry runs), as the database reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<Value>,
    /// True only for `applied`.
    pub source_database_mutated: bool,
    pub dry_run: bool,
    pub checks: Vec<Check>,
    /// For `already_applied`: the hash stored in the source's receipts table by the apply that
    /// wrote the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_receipt_hash: Option<String>,
    /// For `already_applied` from the source's receipts table: the rows the apply that wrote the
    /// row changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_rows_affected: Option<u32>,
    /// `sha256:` of the canonical JSON of this receipt without this field. For `applied` it is
    /// also stored as `result_hash` in the source's receipts table.
    pub receipt_hash: String,
}

impl Receipt {
    /// A receipt skeleton for `cs` with status `failed` and no checks yet.
    pub fn new(cs: &ChangeSet, executor: &str, executed_at: &str, dry_run: bool) -> Receipt {
        Receipt {
            schema_version: RECEIPT_SCHEMA.into(),
            proposal_id: cs.proposal_id.clone(),
            executor: executor.to_owned(),
            status: ReceiptStatus::Failed,
            rows_affected: 0,
            safe_error_code: None,
            message: String::new(),
            idempotency_key: idempotency_key(cs),
            digest: cs.digest.clone(),
            executed_at: executed_at.to_owned(),
            version_column: cs.guards.expected_version.column.clone(),
            previous_version: cs.guards.expected_version.value.clone(),
            new_version: None,
            source_database_mutated: false,
            dry_run,
            checks: Vec::new(),
            applied_receipt_hash: None,
            applied_rows_affected: None,
            receipt_hash: String::new(),
        }
    }

    /// Appends a check.
    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        });
    }

    /// Sets status, code and message from `code`, and seals the receipt.
    pub fn refuse(mut self, code: WritebackCode, message: impl Into<String>) -> Receipt {
        self.status = code.status();
        self.rows_affected = 0;
        self.source_database_mutated = false;
        self.safe_error_code = Some(code.as_str().to_owned());
        self.message = message.into();
        self.seal()
    }

    /// The receipt of an attempt that found this proposal's write already committed by an
    /// earlier one that never recorded it (killed, crashed, lost power, lost the answer): the
    /// write under the proposal's idempotency key (the source's receipts table, or the handler's
    /// own record) is this proposal's, so the receipt says so too (`applied`, with the rows that
    /// attempt changed) instead of `already_applied` with none. Nothing was written again. For
    /// callers that hold no `applied` receipt of the proposal. Any other receipt is returned
    /// unchanged.
    pub fn into_recovered_write(mut self) -> Receipt {
        let Some(rows) = self
            .applied_rows_affected
            .filter(|_| self.status == ReceiptStatus::AlreadyApplied)
        else {
            return self;
        };
        self.status = ReceiptStatus::Applied;
        self.rows_affected = rows;
        self.source_database_mutated = true;
        self.message = "applied by an earlier attempt that stopped before recording it; recovered from the write under this proposal's idempotency key (nothing was written again)".into();
        self.check(
            "recovered",
            true,
            "the write under this proposal's idempotency key had committed; no receipt of this proposal recorded it",
        );
        self.seal()
    }

    /// The hash over everything but `receipt_hash`.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("receipt_hash");
        }
        digest_value(&v)
    }

    /// Fills `receipt_hash`.
    pub fn seal(mut self) -> Receipt {
        self.receipt_hash = self.compute_hash();
        self
    }

    /// True when `receipt_hash` matches the content.
    pub fn hash_is_intact(&self) -> bool {
        self.receipt_hash == self.compute_hash()
    }

    /// The typed code, when the code is one of ours (a handler's own code, see [`HandlerCode`],
    /// gives `None`).
    pub fn code(&self) -> Option<WritebackCode> {
        let code = self.safe_error_code.as_deref()?;
        serde_json::from_value(Value::String(code.to_owned())).ok()
    }
}

/// `<proposal_id>:<first 16 hex digits of the change-set digest>`: stable for one approved change
/// set, different for a re-proposal (whose `before` and so digest differ).
pub fn idempotency_key(cs: &ChangeSet) -> String {
    let hex = cs.digest.strip_prefix("sha256:").unwrap_or(&cs.digest);
    let short: String = hex.chars().take(16).collect();
    format!("{}:{short}", cs.proposal_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_round_trip_and_map_to_statuses() {
        for code in [
            WritebackCode::RowNotFound,
            WritebackCode::VersionConflict,
            WritebackCode::ReceiptsTableMissing,
            WritebackCode::TransitionNotAllowed,
        ] {
            let v = serde_json::to_value(code).unwrap();
            assert_eq!(v, Value::String(code.as_str().to_owned()));
        }
        assert_eq!(WritebackCode::RowNotFound.status(), ReceiptStatus::Conflict);
        assert_eq!(WritebackCode::VersionConflict.status(), ReceiptStatus::Conflict);
        assert_eq!(WritebackCode::LockTimeout.status(), ReceiptStatus::Failed);
        assert!(WritebackCode::PatchBelowMinimum.is_policy_violation());
        assert!(!WritebackCode::VersionConflict.is_policy_violation());
        assert_eq!(ReceiptStatus::AlreadyApplied.as_str(), "already_applied");
        assert!(ReceiptStatus::WouldApply.is_success());
        assert!(!ReceiptStatus::Conflict.is_success());
        assert_eq!(WritebackCode::HandlerConflict.status(), ReceiptStatus::Conflict);
        assert_eq!(WritebackCode::HandlerTimeout.status(), ReceiptStatus::Failed);
        assert_eq!(
            serde_json::to_value(WritebackCode::HandlerReceiptInvalid).unwrap(),
            json!("HANDLER_RECEIPT_INVALID")
        );
    }

    #[test]
    fn handler_codes_are_checked() {
        for ok in [
            "VERSION_CONFLICT",
            "X",
            "UNSUPPORTED_ACTION",
            "E2E_FAILED",
            &"A".repeat(64),
        ] {
            assert_eq!(HandlerCode::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "version_conflict",
            "_LEADING",
            "9LIVES",
            "HAS SPACE",
            "NEW\nLINE",
            "DROP TABLE;",
            "ÉCLAIR",
            &"A".repeat(65),
        ] {
            assert!(HandlerCode::new(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            HandlerCode::new("VERSION_CONFLICT").unwrap().known(),
            Some(WritebackCode::VersionConflict)
        );
        assert_eq!(HandlerCode::new("UNSUPPORTED_ACTION").unwrap().known(), None);
    }
}
