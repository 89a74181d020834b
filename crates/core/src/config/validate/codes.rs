//! The issue codes with their severities, and the lists of names the checks compare against:
//! the known fields of each object, the reserved argument names, the forbidden keys and URL
//! schemes, and the numeric limits.

use super::Severity;

/// Model-facing argument names that are refused (`MODEL_CONTROLLED_RESERVED_ARG`): trust fields
/// and identifier fields. They are compared case-insensitively and ignoring `_`, so `TENANT_ID`,
/// `TenantId` and `tenantid` are refused too.
pub const RESERVED_ARG_NAMES: &[&str] = &[
    // trust fields
    "tenant_id",
    "tenantId",
    "principal",
    "principal_id",
    "principalId",
    "project_id",
    "projectId",
    "source_id",
    "sourceId",
    "allowed_columns",
    "allowedColumns",
    "row_version",
    "rowVersion",
    "current_version",
    "currentVersion",
    "expected_version",
    "expectedVersion",
    "approval_identity",
    "approvalIdentity",
    // identifier fields
    "table",
    "table_name",
    "tableName",
    "schema",
    "schema_name",
    "schemaName",
    "column",
    "columns",
    "column_name",
    "columnName",
    "database",
    "database_name",
    "databaseName",
    // Our additions: approval identity and raw SQL have no business being model arguments.
    "tenant",
    "approver",
    "approved_by",
    "sql",
];

/// Keys refused anywhere in the document (`INLINE_DATABASE_URL_FORBIDDEN`): a config names the
/// environment variable holding a URL, never the URL. Compared like reserved arg names.
pub const FORBIDDEN_URL_KEYS: &[&str] = &[
    "url",
    "database_url",
    "databaseUrl",
    "read_url",
    "readUrl",
    "write_url",
    "writeUrl",
    "connection_string",
    "connectionString",
];

/// Keys refused anywhere in the document (`ARBITRARY_SQL_FORBIDDEN`): capabilities are built from
/// reviewed identifiers only, never from SQL text.
pub const FORBIDDEN_SQL_KEYS: &[&str] = &["sql", "raw_sql", "rawSql", "statement", "query_sql", "querySql"];

/// URL schemes that mark a string as an inline connection URL (case-insensitive, anywhere in it).
pub const CONNECTION_URL_SCHEMES: &[&str] = &["postgres://", "postgresql://", "mysql://", "mariadb://"];

pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "mode",
    "storage",
    "sources",
    "trusted_context",
    "contexts",
    "executors",
    "capabilities",
    "cloud",
    "strict",
    "result_format",
    "identity",
    "rate_limits",
];
pub(super) const STORAGE_KEYS: &[&str] = &["sqlite_path"];
pub(super) const SOURCE_KEYS: &[&str] = &[
    "engine",
    "read_url_env",
    "write_url_env",
    "read_only",
    "statement_timeout_ms",
    "ssl",
];
pub(super) const SSL_KEYS: &[&str] = &["mode"];
pub(super) const CONTEXT_KEYS: &[&str] = &["provider", "values"];
pub(super) const IDENTITY_KEYS: &[&str] = &[
    "issuer",
    "audience",
    "keys",
    "algorithms",
    "tenant_claim",
    "principal_claim",
    "max_token_age_seconds",
    "clock_skew_seconds",
    "jwks_refresh_min_seconds",
    "authorization_servers",
    "resource",
    "operator",
];
pub(super) const IDENTITY_KEY_SOURCE_KEYS: &[&str] = &["jwks_url", "jwks_file", "hmac_secret_env"];
pub(super) const OPERATOR_KEYS: &[&str] = &["audience", "roles_claim"];
pub(super) const RATE_LIMITS_KEYS: &[&str] = &["per_tenant"];
pub(super) const TOKEN_BUCKET_KEYS: &[&str] = &["capacity", "refill_per_second"];
pub(super) const CONTEXT_VALUE_KEYS: &[&str] = &["tenant_id", "principal", "tenant_id_env", "principal_env"];
pub(super) const EXECUTOR_KEYS_ANY: &[&str] = &[
    "type",
    "url_env",
    "method",
    "auth",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
    "command_env",
];
pub(super) const SQL_UPDATE_KEYS: &[&str] = &["type"];
pub(super) const HTTP_HANDLER_KEYS: &[&str] = &[
    "type",
    "url_env",
    "method",
    "auth",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
];
pub(super) const COMMAND_HANDLER_KEYS: &[&str] = &[
    "type",
    "command_env",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
];
pub(super) const AUTH_KEYS: &[&str] = &["type", "token_env"];
pub(super) const CAPABILITY_KEYS: &[&str] = &[
    "name",
    "kind",
    "description",
    "returns_hint",
    "source",
    "context",
    "executor",
    "target",
    "args",
    "lookup",
    "visible_columns",
    "evidence",
    "max_rows",
    "patch",
    "allowed_columns",
    "numeric_bounds",
    "transition_guards",
    "conflict_guard",
    "approval",
    "single_tenant_dev_ack",
    "rate_limit",
];
/// Fields only a proposal capability may carry.
pub(super) const WRITE_FIELDS: &[&str] = &[
    "patch",
    "allowed_columns",
    "numeric_bounds",
    "transition_guards",
    "conflict_guard",
    "executor",
    "approval",
];
pub(super) const TARGET_KEYS: &[&str] = &[
    "schema",
    "table",
    "primary_key",
    "tenant_key",
    "single_tenant_dev",
    "principal_key",
];
pub(super) const ARG_KEYS: &[&str] = &[
    "type",
    "description",
    "required",
    "max_length",
    "minimum",
    "maximum",
    "enum",
];
pub(super) const LOOKUP_KEYS: &[&str] = &["id_from_arg"];
pub(super) const PATCH_BINDING_KEYS: &[&str] = &["fixed", "from_arg"];
pub(super) const NUMERIC_BOUND_KEYS: &[&str] = &["minimum", "maximum"];
pub(super) const TRANSITION_GUARD_KEYS: &[&str] = &["from_column", "allowed"];
pub(super) const CONFLICT_GUARD_KEYS: &[&str] = &["column", "weak_guard_ack", "advance"];
pub(super) const APPROVAL_KEYS: &[&str] = &["mode", "required_role", "required_approvals"];

/// Upper bound for every millisecond timeout (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Upper bound for `approval.required_approvals`.
pub const MAX_REQUIRED_APPROVALS: u64 = 10;

/// Every code the validator can report, with its severity. `docs/config.md` documents each one
/// (a test keeps the two in step).
pub const ALL_CODES: &[(&str, Severity)] = &[
    ("INVALID_JSON", Severity::Error),
    ("INVALID_CONFIG_SHAPE", Severity::Error),
    ("CONFIG_NOT_OBJECT", Severity::Error),
    ("UNKNOWN_FIELD", Severity::Error),
    ("UNKNOWN_FIELD_IGNORED", Severity::Warning),
    ("INVALID_STRICT", Severity::Error),
    ("UNSUPPORTED_CONFIG_VERSION", Severity::Error),
    ("INVALID_MODE", Severity::Error),
    ("CLOUD_MODE_UNSUPPORTED", Severity::Error),
    ("INVALID_RESULT_FORMAT", Severity::Error),
    ("RESULT_FORMAT_DEFAULTS_TO_V1", Severity::Warning),
    ("STORAGE_NOT_OBJECT", Severity::Error),
    ("INVALID_SQLITE_PATH", Severity::Error),
    ("SOURCES_REQUIRED", Severity::Error),
    ("UNSAFE_SOURCE_NAME", Severity::Error),
    ("SOURCE_NOT_OBJECT", Severity::Error),
    ("INVALID_SOURCE_ENGINE", Severity::Error),
    ("READ_URL_ENV_REQUIRED", Severity::Error),
    ("INVALID_WRITE_URL_ENV", Severity::Error),
    ("SHARED_READ_WRITE_URL_ENV", Severity::Warning),
    ("INVALID_SOURCE_READ_ONLY", Severity::Error),
    ("INVALID_TIMEOUT", Severity::Error),
    ("INVALID_SSL", Severity::Error),
    ("TRUSTED_CONTEXT_REQUIRED", Severity::Error),
    ("INVALID_TRUSTED_CONTEXT", Severity::Error),
    ("INVALID_CONTEXT_PROVIDER", Severity::Error),
    ("TRUSTED_CONTEXT_UNSUPPORTED", Severity::Error),
    ("STATIC_DEV_CONTEXT", Severity::Warning),
    ("INVALID_CONTEXT_VALUES", Severity::Error),
    ("INVALID_CONTEXT_ENV", Severity::Error),
    ("INVALID_CONTEXT_VALUE", Severity::Error),
    ("CONTEXT_LITERAL_NOT_STATIC_DEV", Severity::Error),
    ("CONTEXTS_NOT_OBJECT", Severity::Error),
    ("INVALID_CONTEXT_NAME", Severity::Error),
    ("IDENTITY_REQUIRED", Severity::Error),
    ("CONTEXT_VALUES_NOT_USED", Severity::Error),
    ("INVALID_IDENTITY", Severity::Error),
    ("INVALID_IDENTITY_ISSUER", Severity::Error),
    ("INVALID_IDENTITY_AUDIENCE", Severity::Error),
    ("INVALID_IDENTITY_KEYS", Severity::Error),
    ("INVALID_JWKS_URL", Severity::Error),
    ("INVALID_JWKS_FILE", Severity::Error),
    ("INVALID_HMAC_SECRET_ENV", Severity::Error),
    ("INVALID_JWT_ALGORITHM", Severity::Error),
    ("JWT_ALGORITHM_NONE", Severity::Error),
    ("JWT_ALGORITHM_KEY_MISMATCH", Severity::Error),
    ("INVALID_CLAIM_PATH", Severity::Error),
    ("INVALID_IDENTITY_LIMIT", Severity::Error),
    ("INVALID_AUTHORIZATION_SERVER", Severity::Error),
    ("INVALID_IDENTITY_RESOURCE", Severity::Error),
    ("INVALID_OPERATOR_IDENTITY", Severity::Error),
    ("OPERATOR_AUDIENCE_REUSED", Severity::Error),
    ("INVALID_RATE_LIMIT", Severity::Error),
    ("EXECUTORS_NOT_OBJECT", Severity::Error),
    ("INVALID_EXECUTOR_NAME", Severity::Error),
    ("EXECUTOR_NOT_OBJECT", Severity::Error),
    ("EXECUTOR_INVALID_IN_READ_ONLY", Severity::Error),
    ("INVALID_EXECUTOR_TYPE", Severity::Error),
    ("HANDLER_URL_ENV_REQUIRED", Severity::Error),
    ("INVALID_HANDLER_METHOD", Severity::Error),
    ("EXECUTOR_AUTH_NOT_OBJECT", Severity::Error),
    ("INVALID_EXECUTOR_AUTH", Severity::Error),
    ("EXECUTOR_TOKEN_ENV_REQUIRED", Severity::Error),
    ("HANDLER_SIGNING_SECRET_ENV_INVALID", Severity::Error),
    ("HANDLER_UNSIGNED", Severity::Warning),
    ("INVALID_SIGNING_KEY_ID", Severity::Error),
    ("SIGNING_KEY_ID_WITHOUT_SECRET", Severity::Error),
    ("INVALID_HANDLER_TIMEOUT", Severity::Error),
    ("COMMAND_ENV_REQUIRED", Severity::Error),
    ("CAPABILITIES_REQUIRED", Severity::Error),
    ("CAPABILITY_NOT_OBJECT", Severity::Error),
    ("INVALID_CAPABILITY_NAME", Severity::Error),
    ("DUPLICATE_CAPABILITY_NAME", Severity::Error),
    ("INVALID_CAPABILITY_KIND", Severity::Error),
    ("INVALID_CAPABILITY_DESCRIPTION", Severity::Error),
    ("INVALID_RETURNS_HINT", Severity::Error),
    ("UNKNOWN_SOURCE", Severity::Error),
    ("UNKNOWN_CONTEXT", Severity::Error),
    ("INVALID_EXECUTOR_REFERENCE", Severity::Error),
    ("UNKNOWN_EXECUTOR", Severity::Error),
    ("TARGET_REQUIRED", Severity::Error),
    ("INVALID_TARGET_IDENTIFIER", Severity::Error),
    ("TENANT_GUARD_REQUIRED", Severity::Error),
    ("TENANT_KEY_IS_PRIMARY_KEY", Severity::Error),
    ("PRINCIPAL_KEY_IS_KEY", Severity::Error),
    ("PRINCIPAL_KEY_NEEDS_SQL_UPDATE", Severity::Error),
    ("INVALID_SINGLE_TENANT_DEV", Severity::Error),
    ("SINGLE_TENANT_DEV_CONFLICT", Severity::Error),
    ("SINGLE_TENANT_DEV_EXCEPTION", Severity::Warning),
    ("INVALID_SINGLE_TENANT_DEV_ACK", Severity::Error),
    ("ARGS_REQUIRED", Severity::Error),
    ("INVALID_ARG_NAME", Severity::Error),
    ("MODEL_CONTROLLED_RESERVED_ARG", Severity::Error),
    ("ARG_NOT_OBJECT", Severity::Error),
    ("INVALID_ARG_TYPE", Severity::Error),
    ("INVALID_ARG_DESCRIPTION", Severity::Error),
    ("INVALID_ARG_REQUIRED", Severity::Error),
    ("INVALID_MAX_LENGTH", Severity::Error),
    ("NUMERIC_BOUNDS_REQUIRE_NUMBER", Severity::Error),
    ("INVALID_MINIMUM", Severity::Error),
    ("INVALID_MAXIMUM", Severity::Error),
    ("INVALID_NUMERIC_RANGE", Severity::Error),
    ("INVALID_ENUM", Severity::Error),
    ("INVALID_ENUM_VALUE", Severity::Error),
    ("LOOKUP_REQUIRED", Severity::Error),
    ("LOOKUP_ARG_REQUIRED", Severity::Error),
    ("LOOKUP_ARG_UNKNOWN", Severity::Error),
    ("LOOKUP_ARG_OPTIONAL", Severity::Error),
    ("VISIBLE_COLUMNS_REQUIRED", Severity::Error),
    ("INVALID_VISIBLE_COLUMN", Severity::Error),
    ("INVALID_EVIDENCE_POLICY", Severity::Error),
    ("EVIDENCE_ALWAYS_RECORDED", Severity::Warning),
    ("INVALID_MAX_ROWS", Severity::Error),
    ("MAX_ROWS_UNSUPPORTED", Severity::Error),
    ("READ_CAPABILITY_HAS_WRITE_FIELDS", Severity::Error),
    ("PROPOSAL_HIDDEN_IN_READ_ONLY", Severity::Warning),
    ("PATCH_REQUIRED", Severity::Error),
    ("INVALID_PATCH_COLUMN", Severity::Error),
    ("PATCH_BINDING_NOT_OBJECT", Severity::Error),
    ("INVALID_PATCH_BINDING", Severity::Error),
    ("INVALID_FIXED_VALUE", Severity::Error),
    ("INVALID_PATCH_ARG", Severity::Error),
    ("PATCH_FROM_LOOKUP_ARG", Severity::Error),
    ("PATCH_ARG_OPTIONAL", Severity::Error),
    ("PATCH_COLUMN_NOT_ALLOWED", Severity::Error),
    ("ALLOWED_COLUMNS_REQUIRED", Severity::Error),
    ("INVALID_ALLOWED_COLUMN", Severity::Error),
    ("ALLOWED_COLUMN_IS_KEY", Severity::Error),
    ("NUMERIC_BOUND_NOT_OBJECT", Severity::Error),
    ("INVALID_NUMERIC_BOUND_COLUMN", Severity::Error),
    ("NUMERIC_BOUND_PATCH_COLUMN_REQUIRED", Severity::Error),
    ("NUMERIC_BOUND_EMPTY", Severity::Error),
    ("NUMERIC_BOUND_REQUIRES_NUMBER_ARG", Severity::Error),
    ("FIXED_VALUE_OUT_OF_BOUNDS", Severity::Error),
    ("TRANSITION_GUARD_NOT_OBJECT", Severity::Error),
    ("INVALID_TRANSITION_COLUMN", Severity::Error),
    ("TRANSITION_PATCH_COLUMN_REQUIRED", Severity::Error),
    ("INVALID_TRANSITION_FROM_COLUMN", Severity::Error),
    ("TRANSITION_FROM_COLUMN_NOT_VISIBLE", Severity::Error),
    ("TRANSITION_ALLOWED_REQUIRED", Severity::Error),
    ("TRANSITION_FROM_REQUIRED", Severity::Error),
    ("TRANSITION_TO_VALUES_REQUIRED", Severity::Error),
    ("TRANSITION_REQUIRES_STRING_ARG", Severity::Error),
    ("TRANSITION_TARGET_UNREACHABLE", Severity::Error),
    ("CONFLICT_GUARD_REQUIRED", Severity::Error),
    ("CONFLICT_GUARD_COLUMN_REQUIRED", Severity::Error),
    ("INVALID_CONFLICT_COLUMN", Severity::Error),
    ("INVALID_WEAK_GUARD_ACK", Severity::Error),
    ("INVALID_VERSION_ADVANCE", Severity::Error),
    ("VERSION_ADVANCE_NEEDS_COLUMN", Severity::Error),
    ("CONFLICT_COLUMN_PATCHED", Severity::Error),
    ("WEAK_CONFLICT_GUARD", Severity::Warning),
    ("INVALID_APPROVAL", Severity::Error),
    ("INVALID_APPROVAL_MODE", Severity::Error),
    ("APPROVAL_POLICY_NOT_AUTOMATIC", Severity::Warning),
    ("INVALID_REQUIRED_ROLE", Severity::Error),
    ("APPROVAL_ROLE_NEEDS_OPERATOR_IDENTITY", Severity::Warning),
    ("INVALID_REQUIRED_APPROVALS", Severity::Error),
    ("READ_ONLY_SOURCE_DIRECT_WRITEBACK", Severity::Error),
    ("WRITEBACK_DISABLED", Severity::Warning),
    ("INLINE_DATABASE_URL_FORBIDDEN", Severity::Error),
    ("ARBITRARY_SQL_FORBIDDEN", Severity::Error),
];

/// Codes reported when a configured identifier or name has the wrong shape.
pub const IDENTIFIER_CODES: &[&str] = &[
    "UNSAFE_SOURCE_NAME",
    "INVALID_CONTEXT_NAME",
    "INVALID_EXECUTOR_NAME",
    "INVALID_CAPABILITY_NAME",
    "INVALID_TARGET_IDENTIFIER",
    "INVALID_ARG_NAME",
    "INVALID_VISIBLE_COLUMN",
    "INVALID_PATCH_COLUMN",
    "INVALID_ALLOWED_COLUMN",
    "INVALID_NUMERIC_BOUND_COLUMN",
    "INVALID_TRANSITION_COLUMN",
    "INVALID_TRANSITION_FROM_COLUMN",
    "INVALID_CONFLICT_COLUMN",
    "READ_URL_ENV_REQUIRED",
    "INVALID_WRITE_URL_ENV",
    "INVALID_CONTEXT_ENV",
    "INVALID_HMAC_SECRET_ENV",
    "HANDLER_URL_ENV_REQUIRED",
    "EXECUTOR_TOKEN_ENV_REQUIRED",
    "HANDLER_SIGNING_SECRET_ENV_INVALID",
    "INVALID_SIGNING_KEY_ID",
    "COMMAND_ENV_REQUIRED",
    "LOOKUP_ARG_REQUIRED",
    "LOOKUP_ARG_UNKNOWN",
    "INVALID_PATCH_ARG",
    "UNKNOWN_SOURCE",
    "UNKNOWN_CONTEXT",
    "UNKNOWN_EXECUTOR",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let mut seen = HashSet::new();
        for (code, _) in ALL_CODES {
            assert!(seen.insert(*code), "{code} listed twice");
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            );
        }
        for code in IDENTIFIER_CODES {
            assert!(seen.contains(code), "{code}");
        }
    }
}
