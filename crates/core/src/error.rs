//! Stable error codes of tool calls, and their safe (v2) mapping.
//!
//! A [`ToolError`] carries a runtime code and a message written by this crate or by the runner:
//! never a database driver's text. The v2 envelope shows only the [`SafeCode`] and its fixed
//! message; v1 shows the runtime code and the message.

use serde::Serialize;

/// Runtime error codes (v1 `code`, logs, metrics labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolCode {
    CapabilityNotFound,
    ArgumentsNotObject,
    ArgumentRequired,
    ArgumentTypeInvalid,
    ArgumentTooLong,
    ArgumentBelowMinimum,
    ArgumentAboveMaximum,
    ArgumentNotAllowed,
    ArgumentUnknown,
    /// A string argument looks like a credential (`secrets::is_secret_value`).
    ArgumentSecretMaterial,
    ModelCannotOverrideBinding,
    TrustedBindingMissing,
    TrustedContextUnsupported,
    ProposalsDisabled,
    RowNotFound,
    MultiRowBlocked,
    PatchNumericBoundTypeInvalid,
    PatchBelowMinimum,
    PatchAboveMaximum,
    PatchTransitionTypeInvalid,
    PatchTransitionNotAllowed,
    ConflictGuardMissing,
    SourceCredentialMissing,
    SourceUnavailable,
    SourceTimeout,
    SourceSchemaMismatch,
    LocalStoreUnavailable,
    /// The proposal was recorded locally but could not be published to the Kubernetes API.
    ProposalStoreUnavailable,
    SecretMaterialRejected,
    UnsafeIdentifier,
    /// A token bucket of `rate_limits` or the capability's `rate_limit` is empty.
    RateLimited,
    Internal,
}

impl ToolCode {
    pub fn as_str(self) -> &'static str {
        use ToolCode::*;
        match self {
            CapabilityNotFound => "CAPABILITY_NOT_FOUND",
            ArgumentsNotObject => "ARGUMENTS_NOT_OBJECT",
            ArgumentRequired => "ARGUMENT_REQUIRED",
            ArgumentTypeInvalid => "ARGUMENT_TYPE_INVALID",
            ArgumentTooLong => "ARGUMENT_TOO_LONG",
            ArgumentBelowMinimum => "ARGUMENT_BELOW_MINIMUM",
            ArgumentAboveMaximum => "ARGUMENT_ABOVE_MAXIMUM",
            ArgumentNotAllowed => "ARGUMENT_NOT_ALLOWED",
            ArgumentUnknown => "ARGUMENT_UNKNOWN",
            ArgumentSecretMaterial => "ARGUMENT_SECRET_MATERIAL",
            ModelCannotOverrideBinding => "MODEL_CANNOT_OVERRIDE_BINDING",
            TrustedBindingMissing => "TRUSTED_BINDING_MISSING",
            TrustedContextUnsupported => "TRUSTED_CONTEXT_UNSUPPORTED",
            ProposalsDisabled => "PROPOSALS_DISABLED",
            RowNotFound => "ROW_NOT_FOUND",
            MultiRowBlocked => "MULTI_ROW_BLOCKED",
            PatchNumericBoundTypeInvalid => "PATCH_NUMERIC_BOUND_TYPE_INVALID",
            PatchBelowMinimum => "PATCH_BELOW_MINIMUM",
            PatchAboveMaximum => "PATCH_ABOVE_MAXIMUM",
            PatchTransitionTypeInvalid => "PATCH_TRANSITION_TYPE_INVALID",
            PatchTransitionNotAllowed => "PATCH_TRANSITION_NOT_ALLOWED",
            ConflictGuardMissing => "CONFLICT_GUARD_MISSING",
            SourceCredentialMissing => "SOURCE_CREDENTIAL_MISSING",
            SourceUnavailable => "SOURCE_UNAVAILABLE",
            SourceTimeout => "SOURCE_TIMEOUT",
            SourceSchemaMismatch => "SOURCE_SCHEMA_MISMATCH",
            LocalStoreUnavailable => "LOCAL_STORE_UNAVAILABLE",
            ProposalStoreUnavailable => "PROPOSAL_STORE_UNAVAILABLE",
            SecretMaterialRejected => "SECRET_MATERIAL_REJECTED",
            UnsafeIdentifier => "UNSAFE_IDENTIFIER",
            RateLimited => "RATE_LIMITED",
            Internal => "INTERNAL",
        }
    }

    /// The fixed message the model sees in a v2 envelope: the safe code's, except where the
    /// safe code is shared by causes the model should tell apart. A proposal that the proposal
    /// store (Kubernetes) refused or could not take is not a database being down.
    pub fn safe_message(self) -> &'static str {
        match self {
            ToolCode::ProposalStoreUnavailable => {
                "The proposal could not be submitted for review: the proposal store is temporarily unavailable. Nothing was changed. Retry later."
            }
            other => other.safe_code().message(),
        }
    }

    /// The code the model sees in a v2 envelope.
    pub fn safe_code(self) -> SafeCode {
        use ToolCode::*;
        match self {
            RowNotFound => SafeCode::NotFoundInTenant,
            CapabilityNotFound => SafeCode::CapabilityNotFound,
            ProposalsDisabled => SafeCode::ApprovalRequired,
            ArgumentsNotObject
            | ArgumentRequired
            | ArgumentTypeInvalid
            | ArgumentTooLong
            | ArgumentBelowMinimum
            | ArgumentAboveMaximum
            | ArgumentNotAllowed
            | ArgumentUnknown
            | ArgumentSecretMaterial
            | ModelCannotOverrideBinding
            | TrustedBindingMissing
            | TrustedContextUnsupported => SafeCode::InvalidArgument,
            PatchNumericBoundTypeInvalid
            | PatchBelowMinimum
            | PatchAboveMaximum
            | PatchTransitionTypeInvalid
            | PatchTransitionNotAllowed
            | ConflictGuardMissing => SafeCode::PolicyViolation,
            MultiRowBlocked => SafeCode::MultiRowBlocked,
            RateLimited => SafeCode::RateLimited,
            SourceCredentialMissing
            | SourceUnavailable
            | SourceTimeout
            | LocalStoreUnavailable
            | ProposalStoreUnavailable => SafeCode::TemporarilyUnavailable,
            SourceSchemaMismatch | SecretMaterialRejected | UnsafeIdentifier | Internal => SafeCode::Internal,
        }
    }
}

impl std::fmt::Display for ToolCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes a model may see (v2 `error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SafeCode {
    NotFoundInTenant,
    InvalidArgument,
    PolicyViolation,
    CapabilityNotFound,
    VersionConflict,
    MultiRowBlocked,
    ApprovalRequired,
    TemporarilyUnavailable,
    RateLimited,
    Internal,
}

impl SafeCode {
    pub fn as_str(self) -> &'static str {
        match self {
            SafeCode::NotFoundInTenant => "NOT_FOUND_IN_TENANT",
            SafeCode::InvalidArgument => "INVALID_ARGUMENT",
            SafeCode::PolicyViolation => "POLICY_VIOLATION",
            SafeCode::CapabilityNotFound => "CAPABILITY_NOT_FOUND",
            SafeCode::VersionConflict => "VERSION_CONFLICT",
            SafeCode::MultiRowBlocked => "MULTI_ROW_BLOCKED",
            SafeCode::ApprovalRequired => "APPROVAL_REQUIRED",
            SafeCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            SafeCode::RateLimited => "RATE_LIMITED",
            SafeCode::Internal => "INTERNAL",
        }
    }

    /// The fixed message shown with this code; it never carries call-specific text.
    pub fn message(self) -> &'static str {
        match self {
            SafeCode::NotFoundInTenant => "No authorized row was found in the trusted tenant scope.",
            SafeCode::InvalidArgument => "The tool input or trusted context binding is invalid.",
            SafeCode::PolicyViolation => "The requested change is outside the reviewed capability policy.",
            SafeCode::CapabilityNotFound => "No reviewed capability has this name.",
            SafeCode::VersionConflict => "The row changed after it was read. Read it again and propose again.",
            SafeCode::MultiRowBlocked => "The capability matched more than one row and was blocked.",
            SafeCode::ApprovalRequired => "Proposal tools are disabled for this runner mode.",
            SafeCode::TemporarilyUnavailable => "The database or local store is temporarily unavailable. Retry later.",
            SafeCode::RateLimited => {
                "Too many calls for this account right now. Nothing was read or recorded. Retry after retry_after_ms."
            }
            SafeCode::Internal => "The capability failed safely. Check the runner logs for details.",
        }
    }

    pub fn retryable(self) -> bool {
        matches!(self, SafeCode::TemporarilyUnavailable | SafeCode::RateLimited)
    }
}

/// A failed tool call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ToolError {
    pub code: ToolCode,
    /// Written by the runner for the operator; safe to show in v1 envelopes and logs.
    pub message: String,
    /// For `RATE_LIMITED`: how long until the call can succeed.
    pub retry_after_ms: Option<u64>,
}

impl ToolError {
    pub fn new(code: ToolCode, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// `RATE_LIMITED`, retryable after `retry_after_ms`.
    pub fn rate_limited(scope: &str, retry_after_ms: u64) -> Self {
        ToolError {
            code: ToolCode::RateLimited,
            message: format!("the {scope} rate limit is reached; retry after {retry_after_ms} ms"),
            retry_after_ms: Some(retry_after_ms),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn not_found_and_cross_tenant_share_one_safe_code() {
        assert_eq!(ToolCode::RowNotFound.safe_code(), SafeCode::NotFoundInTenant);
        assert!(!SafeCode::NotFoundInTenant.retryable());
        assert!(ToolCode::SourceUnavailable.safe_code().retryable());
        assert_eq!(ToolCode::ArgumentUnknown.safe_code(), SafeCode::InvalidArgument);
        assert_eq!(
            ToolCode::PatchTransitionNotAllowed.safe_code().as_str(),
            "POLICY_VIOLATION"
        );
    }
}
