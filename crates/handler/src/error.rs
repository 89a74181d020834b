//! The crate's errors, each with a stable `code()`.

use thiserror::Error;

use crate::wire::{HandlerReceipt, ReceiptStatus};

/// Why a signed request (or event envelope) was refused before any business logic ran.
///
/// [`VerifyError::code`] is stable and safe to return to the caller; the `Display` text is for
/// your logs and never contains the secret or the expected MAC.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// No `X-Synapsor-Signature` header (or an empty one).
    #[error("the X-Synapsor-Signature header is missing")]
    SignatureMissing,
    /// The header is not `t=<unix seconds>,kid=<key id>,v1=<64 hex>`.
    #[error("the X-Synapsor-Signature header is malformed: {0}")]
    SignatureMalformed(&'static str),
    /// The header names a key id this handler does not hold.
    #[error("unknown signing key id {0:?}")]
    UnknownKeyId(String),
    /// The MAC does not match: the body or timestamp was changed, or the wrong secret was used.
    #[error("the signature does not match the body and timestamp")]
    SignatureMismatch,
    /// `t` is further than the skew window from the handler's clock (stale or from the future).
    #[error("signature timestamp {t} is outside the {skew_secs}s window around {now}")]
    TimestampOutOfWindow { t: i64, now: i64, skew_secs: u64 },
    /// The signed body is not a valid request (not JSON, unknown or missing fields, wrong
    /// `schema_version`, `issued_at` different from the signature's `t`, too large).
    #[error("invalid request: {0}")]
    RequestInvalid(String),
    /// The idempotency key was already applied.
    #[error("idempotency key {0:?} was already used")]
    Replayed(String),
}

impl VerifyError {
    /// The stable UPPER_SNAKE code.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::SignatureMissing => "SIGNATURE_MISSING",
            VerifyError::SignatureMalformed(_) => "SIGNATURE_MALFORMED",
            VerifyError::UnknownKeyId(_) => "UNKNOWN_KEY_ID",
            VerifyError::SignatureMismatch => "SIGNATURE_MISMATCH",
            VerifyError::TimestampOutOfWindow { .. } => "TIMESTAMP_OUT_OF_WINDOW",
            VerifyError::RequestInvalid(_) => "REQUEST_INVALID",
            VerifyError::Replayed(_) => "REPLAYED",
        }
    }

    /// The HTTP status a handler should answer with: 401 for anything about the signature or
    /// its timestamp, 400 for a bad body, 409 for a replay (when you reject replays instead of
    /// answering [`HandlerReceipt::already_applied`]).
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::RequestInvalid(_) => 400,
            VerifyError::Replayed(_) => 409,
            _ => 401,
        }
    }

    /// A `failed` receipt carrying [`VerifyError::code`], to send as the response body.
    pub fn receipt(&self) -> HandlerReceipt {
        HandlerReceipt::failed(self.code())
    }
}

/// A signing key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("signing secrets must be at least {min} bytes (got {got})")]
    SecretTooShort { got: usize, min: usize },
    #[error("key id {0:?} must be 1-64 characters of A-Z a-z 0-9 . _ -")]
    InvalidKeyId(String),
}

impl KeyError {
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::SecretTooShort { .. } => "SIGNING_SECRET_TOO_SHORT",
            KeyError::InvalidKeyId(_) => "SIGNING_KEY_ID_INVALID",
        }
    }
}

/// A guard that refused the change: the handler must not write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardError {
    /// The row is missing or belongs to another tenant. The two are deliberately not told
    /// apart, so a caller cannot probe for other tenants' ids.
    #[error("no such row in this tenant")]
    RowNotFound,
    /// The row's version is not the one the human approved: it changed after the proposal.
    #[error("the row changed after the proposal (expected version {expected}, found {found})")]
    VersionConflict { expected: String, found: String },
    /// The request uses the `__row_hash` weak guard, which these helpers do not evaluate.
    #[error("the request has no version column (weak row-hash guard); add a conflict_guard column")]
    VersionGuardUnsupported,
    /// A patch column is not in `allowed_columns`, or is one the handler never lets change.
    #[error("column {0:?} may not be changed")]
    PatchColumnNotAllowed(String),
    /// The patch is empty.
    #[error("the patch is empty")]
    EmptyPatch,
}

impl GuardError {
    pub fn code(&self) -> &'static str {
        match self {
            GuardError::RowNotFound => "ROW_NOT_FOUND",
            GuardError::VersionConflict { .. } => "VERSION_CONFLICT",
            GuardError::VersionGuardUnsupported => "VERSION_GUARD_UNSUPPORTED",
            GuardError::PatchColumnNotAllowed(_) => "PATCH_COLUMN_NOT_ALLOWED",
            GuardError::EmptyPatch => "PATCH_EMPTY",
        }
    }

    /// `conflict` when the data moved under the proposal (row gone, other tenant, new
    /// version); `failed` when the request itself is not acceptable to this handler.
    pub fn status(&self) -> ReceiptStatus {
        match self {
            GuardError::RowNotFound | GuardError::VersionConflict { .. } => ReceiptStatus::Conflict,
            _ => ReceiptStatus::Failed,
        }
    }

    /// The receipt to answer with.
    pub fn receipt(&self) -> HandlerReceipt {
        match self.status() {
            ReceiptStatus::Conflict => HandlerReceipt::conflict(self.code()),
            _ => HandlerReceipt::failed(self.code()),
        }
    }
}
