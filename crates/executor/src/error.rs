//! The crate's error type for everything that is not an apply (an apply always ends in a
//! [`crate::Receipt`]): executor selection, receipts-table setup and checks.

/// A setup or selection failure with a stable [`code`](ExecutorError::code). Messages are
/// written here; driver text only goes to the log, redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    #[error("executor {name} is not defined in the config")]
    UnknownExecutor { name: String },

    #[error("{what} is not a safe SQL identifier")]
    UnsafeIdentifier { what: String },

    #[error("{what} is not a valid role or user name (letters, digits, _ . - @ $; at most 63)")]
    InvalidRoleName { what: String },

    #[error("the {what} URL is not a valid {engine} URL")]
    UrlInvalid { what: &'static str, engine: &'static str },

    #[error("the database could not be reached ({what})")]
    DatabaseUnavailable { what: String },

    #[error("permission denied: {what}")]
    PermissionDenied { what: String },

    #[error("database error while {what}; see the log for details")]
    Database { what: String },
}

impl ExecutorError {
    pub fn code(&self) -> &'static str {
        match self {
            ExecutorError::UnknownExecutor { .. } => "UNKNOWN_EXECUTOR",
            ExecutorError::UnsafeIdentifier { .. } => "UNSAFE_IDENTIFIER",
            ExecutorError::InvalidRoleName { .. } => "INVALID_ROLE_NAME",
            ExecutorError::UrlInvalid { .. } => "WRITER_URL_INVALID",
            ExecutorError::DatabaseUnavailable { .. } => "DATABASE_UNAVAILABLE",
            ExecutorError::PermissionDenied { .. } => "PERMISSION_DENIED",
            ExecutorError::Database { .. } => "DATABASE_ERROR",
        }
    }
}
