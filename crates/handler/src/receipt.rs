//! Building receipts.

use serde_json::Value;

use crate::wire::{HandlerReceipt, RECEIPT_SCHEMA, ReceiptStatus};

impl HandlerReceipt {
    fn with_status(status: ReceiptStatus, rows_affected: u32, error_code: Option<String>) -> Self {
        HandlerReceipt {
            schema_version: RECEIPT_SCHEMA.to_owned(),
            status,
            rows_affected,
            error_code,
            message: None,
            new_version: None,
        }
    }

    /// The change was written: `rows` rows (1 for a single-row proposal; 0 for a dry run).
    pub fn applied(rows: u32) -> Self {
        Self::with_status(ReceiptStatus::Applied, rows, None)
    }

    /// This idempotency key was applied before; nothing was written now.
    pub fn already_applied() -> Self {
        Self::with_status(ReceiptStatus::AlreadyApplied, 0, None)
    }

    /// The data moved under the proposal (`VERSION_CONFLICT`, `ROW_NOT_FOUND`, ...); nothing was
    /// written. Final: the proposal must be made again on the current row.
    pub fn conflict(code: impl Into<String>) -> Self {
        Self::with_status(ReceiptStatus::Conflict, 0, Some(code.into()))
    }

    /// The handler refused or could not write; nothing was written.
    pub fn failed(code: impl Into<String>) -> Self {
        Self::with_status(ReceiptStatus::Failed, 0, Some(code.into()))
    }

    /// Adds a short human message (no secrets, no driver text).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Adds the version column's new value.
    pub fn with_new_version(mut self, version: impl Into<Value>) -> Self {
        self.new_version = Some(version.into());
        self
    }

    /// The HTTP status to answer with: 200 for every receipt except `failed`, which is 422
    /// (the request was understood and refused). The runner reads the receipt body for any
    /// status, so the code travels either way.
    pub fn http_status(&self) -> u16 {
        match self.status {
            ReceiptStatus::Failed => 422,
            _ => 200,
        }
    }

    /// Whether the proposal's change is in the database (now or from an earlier call).
    pub fn is_success(&self) -> bool {
        matches!(self.status, ReceiptStatus::Applied | ReceiptStatus::AlreadyApplied)
    }
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Applied => "applied",
            ReceiptStatus::AlreadyApplied => "already_applied",
            ReceiptStatus::Conflict => "conflict",
            ReceiptStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
