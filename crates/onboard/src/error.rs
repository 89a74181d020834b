//! Onboarding errors: a stable code, and the flag and answers-file key the user has to change.

use std::fmt;

/// An input of onboarding: its command-line flag and its answers-file key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Version,
    Mode,
    Engine,
    Table,
    Schema,
    PrimaryKey,
    TenantColumn,
    SingleTenantDev,
    ConflictColumn,
    Namespace,
    ObjectName,
    ReadTool,
    ProposalTool,
    IdArg,
    ReadDescription,
    ReadReturnsHint,
    ProposalDescription,
    ProposalReturnsHint,
    ResultFormat,
    VisibleColumns,
    AllowedColumns,
    Patch,
    PatchFixed,
    PatchFromArg,
    PatchBounds,
    StatusGuards,
    TenantEnv,
    PrincipalEnv,
    ApprovalRole,
    ReadUrlEnv,
    WriteUrlEnv,
    SourceName,
    Writeback,
    ExecutorName,
    HandlerUrlEnv,
    HandlerTokenEnv,
    HandlerSigningSecretEnv,
    HandlerCommandEnv,
    SmokeId,
}

impl Field {
    /// The command-line flag.
    pub fn flag(self) -> &'static str {
        match self {
            Field::Version => "--answers",
            Field::Mode => "--mode",
            Field::Engine => "--engine",
            Field::Table => "--table",
            Field::Schema => "--schema",
            Field::PrimaryKey => "--primary-key",
            Field::TenantColumn => "--tenant-column",
            Field::SingleTenantDev => "--single-tenant-dev",
            Field::ConflictColumn => "--conflict-column",
            Field::Namespace => "--namespace",
            Field::ObjectName => "--object-name",
            Field::ReadTool => "--read-tool",
            Field::ProposalTool => "--proposal-tool",
            Field::IdArg => "--id-arg",
            Field::ReadDescription => "--read-description",
            Field::ReadReturnsHint => "--read-returns-hint",
            Field::ProposalDescription => "--proposal-description",
            Field::ProposalReturnsHint => "--proposal-returns-hint",
            Field::ResultFormat => "--result-format",
            Field::VisibleColumns => "--visible-columns",
            Field::AllowedColumns => "--allowed-columns",
            Field::Patch => "--patch",
            Field::PatchFixed => "--patch-fixed",
            Field::PatchFromArg => "--patch-from-arg",
            Field::PatchBounds => "--patch-bounds",
            Field::StatusGuards => "--status-guards",
            Field::TenantEnv => "--tenant-env",
            Field::PrincipalEnv => "--principal-env",
            Field::ApprovalRole => "--approval-role",
            Field::ReadUrlEnv => "--read-url-env",
            Field::WriteUrlEnv => "--write-url-env",
            Field::SourceName => "--source-name",
            Field::Writeback => "--writeback",
            Field::ExecutorName => "--executor-name",
            Field::HandlerUrlEnv => "--handler-url-env",
            Field::HandlerTokenEnv => "--handler-token-env",
            Field::HandlerSigningSecretEnv => "--handler-signing-secret-env",
            Field::HandlerCommandEnv => "--handler-command-env",
            Field::SmokeId => "--smoke-id",
        }
    }

    /// The answers-file key.
    pub fn key(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::PatchFixed | Field::PatchFromArg => "patch",
            Field::PatchBounds => "patch_bounds",
            f => key_of(f.flag().trim_start_matches("--")),
        }
    }
}

/// The answers-file key of a flag (without its `--`): the flag with `_` for `-`, listed so that
/// keys are `'static`.
fn key_of(flag: &'static str) -> &'static str {
    {
        const KEYS: &[(&str, &str)] = &[
            ("mode", "mode"),
            ("engine", "engine"),
            ("table", "table"),
            ("schema", "schema"),
            ("primary-key", "primary_key"),
            ("tenant-column", "tenant_column"),
            ("single-tenant-dev", "single_tenant_dev"),
            ("conflict-column", "conflict_column"),
            ("namespace", "namespace"),
            ("object-name", "object_name"),
            ("read-tool", "read_tool"),
            ("proposal-tool", "proposal_tool"),
            ("id-arg", "id_arg"),
            ("read-description", "read_description"),
            ("read-returns-hint", "read_returns_hint"),
            ("proposal-description", "proposal_description"),
            ("proposal-returns-hint", "proposal_returns_hint"),
            ("result-format", "result_format"),
            ("visible-columns", "visible_columns"),
            ("allowed-columns", "allowed_columns"),
            ("patch", "patch"),
            ("status-guards", "status_guards"),
            ("tenant-env", "tenant_env"),
            ("principal-env", "principal_env"),
            ("approval-role", "approval_role"),
            ("read-url-env", "read_url_env"),
            ("write-url-env", "write_url_env"),
            ("source-name", "source_name"),
            ("writeback", "writeback"),
            ("executor-name", "executor_name"),
            ("handler-url-env", "handler_url_env"),
            ("handler-token-env", "handler_token_env"),
            ("handler-signing-secret-env", "handler_signing_secret_env"),
            ("handler-command-env", "handler_command_env"),
            ("smoke-id", "smoke_id"),
        ];
        KEYS.iter().find(|(f, _)| *f == flag).map_or(flag, |(_, k)| k)
    }
}

/// Why onboarding cannot go on. Displayed as `--flag (answers key \`key\`): message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardError {
    pub code: &'static str,
    pub field: Option<Field>,
    pub message: String,
}

impl OnboardError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        OnboardError {
            code,
            field: None,
            message: message.into(),
        }
    }

    pub fn field(code: &'static str, field: Field, message: impl Into<String>) -> Self {
        OnboardError {
            code,
            field: Some(field),
            message: message.into(),
        }
    }
}

impl fmt::Display for OnboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{} (answers key `{}`): {}", field.flag(), field.key(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for OnboardError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_flags() {
        assert_eq!(Field::TenantColumn.key(), "tenant_column");
        assert_eq!(Field::HandlerSigningSecretEnv.key(), "handler_signing_secret_env");
        assert_eq!(Field::PatchFromArg.key(), "patch");
        let e = OnboardError::field("X", Field::PrimaryKey, "no such column");
        assert_eq!(
            e.to_string(),
            "--primary-key (answers key `primary_key`): no such column"
        );
    }
}
