//! Validation of a `synapsor.runner.json` document.
//!
//! The validator works on the raw [`serde_json::Value`], not on the typed model, so that one run
//! reports *every* problem at once, each with a stable `UPPER_SNAKE` code and the JSON path of the
//! offending field (`$.capabilities[1].target.tenant_key`, `$.sources.main.read_url_env`). Only a
//! document without errors is deserialized into [`RunnerConfig`]; the property tests check that
//! such a document always deserializes.
//!
//! It enforces the original's config rules (same code names), the "protocol layer" rules the
//! original only checked at call or apply time, and our stance on fields the original accepted but
//! ignored: they are either made to work elsewhere, rejected, or flagged with a warning.
//!
//! Messages never echo a value that could be a secret: only identifier-like names are quoted.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::RunnerConfig;
use crate::ident::{is_arg_name, is_capability_name, is_context_name, is_env_name, is_safe_identifier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, with a stable code and the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    pub code: &'static str,
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.path, self.message)
    }
}

/// Every error and warning of one validation run, each list in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub errors: Vec<ConfigIssue>,
    pub warnings: Vec<ConfigIssue>,
}

impl ValidationReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether an issue (error or warning) with `code` at exactly `path` was reported.
    pub fn has(&self, code: &str, path: &str) -> bool {
        self.errors
            .iter()
            .chain(&self.warnings)
            .any(|i| i.code == code && i.path == path)
    }
}

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

const TOP_LEVEL_KEYS: &[&str] = &[
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
];
const STORAGE_KEYS: &[&str] = &["sqlite_path"];
const SOURCE_KEYS: &[&str] = &[
    "engine",
    "read_url_env",
    "write_url_env",
    "read_only",
    "statement_timeout_ms",
    "ssl",
];
const SSL_KEYS: &[&str] = &["mode"];
const CONTEXT_KEYS: &[&str] = &["provider", "values"];
const CONTEXT_VALUE_KEYS: &[&str] = &["tenant_id", "principal", "tenant_id_env", "principal_env"];
const EXECUTOR_KEYS_ANY: &[&str] = &[
    "type",
    "url_env",
    "method",
    "auth",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
    "command_env",
];
const SQL_UPDATE_KEYS: &[&str] = &["type"];
const HTTP_HANDLER_KEYS: &[&str] = &[
    "type",
    "url_env",
    "method",
    "auth",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
];
const COMMAND_HANDLER_KEYS: &[&str] = &[
    "type",
    "command_env",
    "signing_secret_env",
    "signing_key_id",
    "timeout_ms",
];
const AUTH_KEYS: &[&str] = &["type", "token_env"];
const CAPABILITY_KEYS: &[&str] = &[
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
];
/// Fields only a proposal capability may carry.
const WRITE_FIELDS: &[&str] = &[
    "patch",
    "allowed_columns",
    "numeric_bounds",
    "transition_guards",
    "conflict_guard",
    "executor",
    "approval",
];
const TARGET_KEYS: &[&str] = &["schema", "table", "primary_key", "tenant_key", "single_tenant_dev"];
const ARG_KEYS: &[&str] = &[
    "type",
    "description",
    "required",
    "max_length",
    "minimum",
    "maximum",
    "enum",
];
const LOOKUP_KEYS: &[&str] = &["id_from_arg"];
const PATCH_BINDING_KEYS: &[&str] = &["fixed", "from_arg"];
const NUMERIC_BOUND_KEYS: &[&str] = &["minimum", "maximum"];
const TRANSITION_GUARD_KEYS: &[&str] = &["from_column", "allowed"];
const CONFLICT_GUARD_KEYS: &[&str] = &["column", "weak_guard_ack"];
const APPROVAL_KEYS: &[&str] = &["mode", "required_role", "required_approvals"];

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
    ("CONFLICT_COLUMN_PATCHED", Severity::Error),
    ("WEAK_CONFLICT_GUARD", Severity::Warning),
    ("INVALID_APPROVAL", Severity::Error),
    ("INVALID_APPROVAL_MODE", Severity::Error),
    ("APPROVAL_POLICY_NOT_AUTOMATIC", Severity::Warning),
    ("INVALID_REQUIRED_ROLE", Severity::Error),
    ("APPROVAL_ROLE_NOT_ENFORCED_LOCALLY", Severity::Warning),
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

/// Validates a whole document and returns every error and warning.
pub fn validate_value(doc: &Value) -> ValidationReport {
    let mut v = Validator::new();
    v.document(doc);
    v.finish(doc)
}

/// Parses and validates; the typed config and its warnings, or every error at once.
pub fn parse_config(text: &str) -> Result<(RunnerConfig, Vec<ConfigIssue>), ValidationReport> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ValidationReport {
        errors: vec![ConfigIssue {
            code: "INVALID_JSON",
            path: "$".into(),
            // serde_json's message names the line and column and quotes no input.
            message: format!("the file is not valid JSON ({e}); fix the syntax and run validation again"),
            severity: Severity::Error,
        }],
        warnings: vec![],
    })?;
    parse_config_value(doc)
}

/// [`parse_config`] for an already parsed document.
pub fn parse_config_value(doc: Value) -> Result<(RunnerConfig, Vec<ConfigIssue>), ValidationReport> {
    let report = validate_value(&doc);
    if !report.errors.is_empty() {
        return Err(report);
    }
    let cfg: RunnerConfig = serde_json::from_value(doc).map_err(|e| ValidationReport {
        errors: vec![ConfigIssue {
            code: "INVALID_CONFIG_SHAPE",
            path: "$".into(),
            message: format!("the config passed validation but does not match the model ({e}); please report this"),
            severity: Severity::Error,
        }],
        warnings: vec![],
    })?;
    Ok((cfg, report.warnings))
}

// ---------------------------------------------------------------------------------------------
// Paths

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A JSON path from the document root, rendered as `$.a.b[3]["odd key"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Path(Vec<Seg>);

impl Path {
    fn root() -> Path {
        Path(Vec::new())
    }

    fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    fn idx(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn render(&self) -> String {
        render_segs(&self.0)
    }
}

fn render_segs(segs: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in segs {
        match seg {
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
            Seg::Key(k) if is_plain_key(k) => {
                s.push('.');
                s.push_str(k);
            }
            // A key holding a connection URL would leak its credentials into the path.
            Seg::Key(k) if looks_like_connection_url(k) => s.push_str("[<redacted>]"),
            Seg::Key(k) => {
                s.push('[');
                s.push_str(&Value::String(k.clone()).to_string());
                s.push(']');
            }
        }
    }
    s
}

fn is_plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// Lowercase with `_` and `-` removed: `tenantId`, `TENANT_ID` and `tenant-id` compare equal.
fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn in_normalized_list(list: &[&str], s: &str) -> bool {
    let n = normalize_name(s);
    list.iter().any(|k| normalize_name(k) == n)
}

/// Whether a model-facing argument name is reserved (case-insensitive, `_` ignored).
pub fn is_reserved_arg_name(name: &str) -> bool {
    in_normalized_list(RESERVED_ARG_NAMES, name)
}

fn is_forbidden_url_key(k: &str) -> bool {
    in_normalized_list(FORBIDDEN_URL_KEYS, k)
}

fn is_forbidden_sql_key(k: &str) -> bool {
    in_normalized_list(FORBIDDEN_SQL_KEYS, k)
}

fn is_forbidden_key(k: &str) -> bool {
    is_forbidden_url_key(k) || is_forbidden_sql_key(k)
}

/// Whether a string contains a database connection URL (`postgres://`, `mysql://`, ...).
pub fn looks_like_connection_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    CONNECTION_URL_SCHEMES.iter().any(|scheme| lower.contains(scheme))
}

/// `^[A-Za-z0-9_.-]{1,64}$`: the handler signing key id.
pub fn is_signing_key_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Quotes a name for a message when it cannot be a secret (identifier-like, at most 64 bytes).
fn show(s: &str) -> String {
    if is_signing_key_id(s) {
        format!("`{s}`")
    } else {
        "the given name".to_owned()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_empty_str(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

// ---------------------------------------------------------------------------------------------
// What later checks need to know about earlier parts

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeV {
    ReadOnly,
    Shadow,
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineV {
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecType {
    SqlUpdate,
    HttpHandler,
    CommandHandler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgTypeV {
    String,
    Number,
    Boolean,
}

impl ArgTypeV {
    fn name(self) -> &'static str {
        match self {
            ArgTypeV::String => "string",
            ArgTypeV::Number => "number",
            ArgTypeV::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct SourceInfo {
    read_only: bool,
    has_write_url: bool,
}

#[derive(Debug, Clone)]
struct ArgInfo {
    ty: Option<ArgTypeV>,
    required: bool,
}

#[derive(Debug, Clone)]
enum BindingInfo {
    Fixed(Value),
    FromArg(String),
    Invalid,
}

// ---------------------------------------------------------------------------------------------
// The validator

struct Issue {
    path: Path,
    issue: ConfigIssue,
}

struct Validator {
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    strict: bool,
    mode: Option<ModeV>,
    sources: HashMap<String, SourceInfo>,
    /// False when `sources` itself is missing or malformed: capabilities then skip
    /// `UNKNOWN_SOURCE`, which would only repeat `SOURCES_REQUIRED`.
    sources_ok: bool,
    contexts: HashSet<String>,
    executors: HashMap<String, Option<ExecType>>,
}

impl Validator {
    fn new() -> Self {
        Validator {
            errors: Vec::new(),
            warnings: Vec::new(),
            strict: true,
            mode: None,
            sources: HashMap::new(),
            sources_ok: false,
            contexts: HashSet::new(),
            executors: HashMap::new(),
        }
    }

    fn error(&mut self, code: &'static str, path: &Path, message: impl Into<String>) {
        self.errors.push(Issue {
            path: path.clone(),
            issue: ConfigIssue {
                code,
                path: path.render(),
                message: message.into(),
                severity: Severity::Error,
            },
        });
    }

    fn warn(&mut self, code: &'static str, path: &Path, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.clone(),
            issue: ConfigIssue {
                code,
                path: path.render(),
                message: message.into(),
                severity: Severity::Warning,
            },
        });
    }

    /// Unknown keys: errors when `strict`, warnings otherwise. Forbidden keys are left to the
    /// recursive scan, which reports them with their own code.
    fn known_keys(&mut self, obj: &Map<String, Value>, allowed: &[&str], path: &Path, what: &str) {
        for key in obj.keys() {
            if allowed.contains(&key.as_str()) || is_forbidden_key(key) {
                continue;
            }
            let p = path.key(key);
            let shown = if is_plain_key(key) && key.len() <= 64 {
                format!("`{key}`")
            } else {
                "this field".to_owned()
            };
            if self.strict {
                self.error(
                    "UNKNOWN_FIELD",
                    &p,
                    format!(
                        "{shown} is not a known field of {what}; remove it or fix its spelling (allowed: {})",
                        allowed
                            .iter()
                            .filter(|k| **k != "cloud")
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            } else {
                self.warn(
                    "UNKNOWN_FIELD_IGNORED",
                    &p,
                    format!("{shown} is not a known field of {what} and is ignored because strict is false; remove it or fix its spelling"),
                );
            }
        }
    }

    fn finish(mut self, doc: &Value) -> ValidationReport {
        let order = document_order(doc);
        ValidationReport {
            errors: sort_dedup(std::mem::take(&mut self.errors), &order),
            warnings: sort_dedup(std::mem::take(&mut self.warnings), &order),
        }
    }

    // -- top level --------------------------------------------------------------------------

    fn document(&mut self, doc: &Value) {
        let root = Path::root();
        let Some(obj) = doc.as_object() else {
            self.error(
                "CONFIG_NOT_OBJECT",
                &root,
                format!(
                    "the config must be a JSON object, got {}; start from an example in examples/",
                    type_name(doc)
                ),
            );
            self.scan(doc);
            return;
        };

        match obj.get("strict") {
            None => {}
            Some(Value::Bool(b)) => self.strict = *b,
            Some(other) => self.error(
                "INVALID_STRICT",
                &root.key("strict"),
                format!(
                    "strict must be true or false, got {}; remove it to keep the default (true)",
                    type_name(other)
                ),
            ),
        }
        self.known_keys(obj, TOP_LEVEL_KEYS, &root, "the config");

        match obj.get("version") {
            Some(v) if v.as_u64() == Some(1) => {}
            None => self.error(
                "UNSUPPORTED_CONFIG_VERSION",
                &root.key("version"),
                "version is required; add \"version\": 1",
            ),
            Some(_) => self.error(
                "UNSUPPORTED_CONFIG_VERSION",
                &root.key("version"),
                "only config version 1 is supported; set \"version\": 1",
            ),
        }

        let mode_path = root.key("mode");
        self.mode = match obj.get("mode").and_then(Value::as_str) {
            Some("read_only") => Some(ModeV::ReadOnly),
            Some("shadow") => Some(ModeV::Shadow),
            Some("review") => Some(ModeV::Review),
            Some("cloud") => {
                self.error(
                    "CLOUD_MODE_UNSUPPORTED",
                    &mode_path,
                    "cloud mode is not supported by this runner; use read_only, shadow or review",
                );
                None
            }
            _ if obj.get("mode").is_none() => {
                self.error(
                    "INVALID_MODE",
                    &mode_path,
                    "mode is required; set it to read_only, shadow or review",
                );
                None
            }
            _ => {
                self.error("INVALID_MODE", &mode_path, "mode must be read_only, shadow or review");
                None
            }
        };
        if obj.contains_key("cloud") {
            self.error(
                "CLOUD_MODE_UNSUPPORTED",
                &root.key("cloud"),
                "the cloud section is not supported by this runner; remove it",
            );
        }

        match obj.get("result_format") {
            None => self.warn(
                "RESULT_FORMAT_DEFAULTS_TO_V1",
                &root.key("result_format"),
                "result_format is not set, so tools return the legacy v1 envelope; add \"result_format\": 2 for the current envelope",
            ),
            Some(v) if matches!(v.as_u64(), Some(1 | 2)) => {}
            Some(_) => self.error(
                "INVALID_RESULT_FORMAT",
                &root.key("result_format"),
                "result_format must be 1 or 2; use 2 unless a client needs the legacy envelope",
            ),
        }

        if let Some(storage) = obj.get("storage") {
            self.storage(storage, &root.key("storage"));
        }

        self.sources(obj.get("sources"), &root.key("sources"));

        if let Some(tc) = obj.get("trusted_context") {
            self.trusted_context(tc, &root.key("trusted_context"));
        }
        if let Some(ctxs) = obj.get("contexts") {
            self.contexts(ctxs, &root.key("contexts"));
        }
        if let Some(execs) = obj.get("executors") {
            self.executors(execs, &root.key("executors"));
        }

        self.capabilities(obj.get("capabilities"), &root.key("capabilities"));

        if !obj.contains_key("trusted_context") {
            let caps = obj.get("capabilities").and_then(Value::as_array);
            let uncovered = caps.map_or(0, |caps| caps.iter().filter(|c| c.get("context").is_none()).count());
            if uncovered > 0 {
                self.error(
                    "TRUSTED_CONTEXT_REQUIRED",
                    &root.key("trusted_context"),
                    format!(
                        "{uncovered} capability(ies) name no context, so a default trusted_context is required; add trusted_context (e.g. provider environment) or set context on every capability"
                    ),
                );
            }
        }

        self.scan(doc);
    }

    fn storage(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "STORAGE_NOT_OBJECT",
                path,
                format!(
                    "storage must be an object like {{\"sqlite_path\": \"./.synapsor/local.db\"}}, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        self.known_keys(obj, STORAGE_KEYS, path, "storage");
        match obj.get("sqlite_path") {
            Some(Value::String(s)) if !s.trim().is_empty() && !s.contains('\0') => {}
            _ => self.error(
                "INVALID_SQLITE_PATH",
                &path.key("sqlite_path"),
                "storage.sqlite_path must be a non-empty file path such as ./.synapsor/local.db",
            ),
        }
    }

    // -- sources ------------------------------------------------------------------------------

    fn sources(&mut self, v: Option<&Value>, path: &Path) {
        let obj = match v {
            Some(Value::Object(o)) if !o.is_empty() => o,
            Some(Value::Object(_)) | None => {
                self.error(
                    "SOURCES_REQUIRED",
                    path,
                    "at least one source is required; add sources.<name> with engine and read_url_env",
                );
                return;
            }
            Some(other) => {
                self.error(
                    "SOURCES_REQUIRED",
                    path,
                    format!(
                        "sources must be an object mapping names to sources, got {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        self.sources_ok = true;
        for (name, src) in obj {
            let p = path.key(name);
            if !is_safe_identifier(name) {
                self.error(
                    "UNSAFE_SOURCE_NAME",
                    &p,
                    "source names must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters); rename the source",
                );
            }
            let info = self.source(src, &p);
            self.sources.insert(name.clone(), info);
        }
    }

    fn source(&mut self, v: &Value, path: &Path) -> SourceInfo {
        let mut info = SourceInfo::default();
        let Some(obj) = v.as_object() else {
            self.error(
                "SOURCE_NOT_OBJECT",
                path,
                format!(
                    "a source must be an object with engine and read_url_env, got {}",
                    type_name(v)
                ),
            );
            return info;
        };
        self.known_keys(obj, SOURCE_KEYS, path, "a source");

        let engine = match obj.get("engine").and_then(Value::as_str) {
            Some("postgres") => Some(EngineV::Postgres),
            Some("mysql") => Some(EngineV::Mysql),
            Some("sqlite") => Some(EngineV::Sqlite),
            _ => {
                self.error(
                    "INVALID_SOURCE_ENGINE",
                    &path.key("engine"),
                    "engine must be postgres, mysql (also for MariaDB) or sqlite",
                );
                None
            }
        };

        let read_env = obj.get("read_url_env");
        match read_env {
            Some(Value::String(s)) if is_env_name(s) => {}
            None => self.error(
                "READ_URL_ENV_REQUIRED",
                &path.key("read_url_env"),
                "read_url_env is required; set it to the name of the environment variable that holds the read-only connection URL",
            ),
            Some(_) => self.error(
                "READ_URL_ENV_REQUIRED",
                &path.key("read_url_env"),
                "read_url_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the URL itself)",
            ),
        }

        if let Some(w) = obj.get("write_url_env") {
            match w {
                Value::String(s) if is_env_name(s) => {
                    info.has_write_url = true;
                    if read_env.and_then(Value::as_str) == Some(s.as_str()) {
                        self.warn(
                            "SHARED_READ_WRITE_URL_ENV",
                            &path.key("write_url_env"),
                            "write_url_env names the same variable as read_url_env, so tool calls run with write credentials; give writeback its own variable and role",
                        );
                    }
                }
                _ => self.error(
                    "INVALID_WRITE_URL_ENV",
                    &path.key("write_url_env"),
                    "write_url_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the URL itself)",
                ),
            }
        }

        if let Some(ro) = obj.get("read_only") {
            match ro {
                Value::Bool(b) => info.read_only = *b,
                other => self.error(
                    "INVALID_SOURCE_READ_ONLY",
                    &path.key("read_only"),
                    format!("read_only must be true or false, got {}", type_name(other)),
                ),
            }
        }

        if let Some(t) = obj.get("statement_timeout_ms")
            && !matches!(t.as_u64(), Some(1..=MAX_TIMEOUT_MS))
        {
            self.error(
                "INVALID_TIMEOUT",
                &path.key("statement_timeout_ms"),
                format!(
                    "statement_timeout_ms must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}, e.g. 3000"
                ),
            );
        }

        if let Some(ssl) = obj.get("ssl") {
            let sp = path.key("ssl");
            match ssl.as_object() {
                None => self.error(
                    "INVALID_SSL",
                    &sp,
                    "ssl must be an object like {\"mode\": \"verify-full\"}",
                ),
                Some(_) if engine == Some(EngineV::Sqlite) => self.error(
                    "INVALID_SSL",
                    &sp,
                    "sqlite sources are local files without TLS; remove ssl",
                ),
                Some(so) => {
                    self.known_keys(so, SSL_KEYS, &sp, "ssl");
                    let ok = matches!(
                        so.get("mode").and_then(Value::as_str),
                        Some("disable" | "prefer" | "require" | "verify-ca" | "verify-full")
                    );
                    if !ok {
                        self.error(
                            "INVALID_SSL",
                            &sp.key("mode"),
                            "ssl.mode must be disable, prefer, require, verify-ca or verify-full",
                        );
                    }
                }
            }
        }
        info
    }

    // -- trusted contexts ---------------------------------------------------------------------

    fn trusted_context(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_TRUSTED_CONTEXT",
                path,
                format!(
                    "a trusted context must be an object like {{\"provider\": \"environment\"}}, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        self.known_keys(obj, CONTEXT_KEYS, path, "a trusted context");

        let pp = path.key("provider");
        // Some(true): literals allowed (static_dev); Some(false): not; None: unknown provider.
        let literals_allowed = match obj.get("provider").and_then(Value::as_str) {
            Some("environment") => Some(false),
            Some("static_dev") => {
                self.warn(
                    "STATIC_DEV_CONTEXT",
                    &pp,
                    "static_dev takes tenant and principal from the config and is for local development only; use environment in production",
                );
                Some(true)
            }
            Some("http_claims" | "cloud_session") => {
                self.error(
                    "TRUSTED_CONTEXT_UNSUPPORTED",
                    &pp,
                    "this provider is not supported by this runner; use environment (or static_dev for local development)",
                );
                None
            }
            _ => {
                self.error(
                    "INVALID_CONTEXT_PROVIDER",
                    &pp,
                    "provider must be environment or static_dev",
                );
                None
            }
        };

        let Some(values) = obj.get("values") else { return };
        let vp = path.key("values");
        let Some(vo) = values.as_object() else {
            self.error(
                "INVALID_CONTEXT_VALUES",
                &vp,
                format!("values must be an object, got {}", type_name(values)),
            );
            return;
        };
        self.known_keys(vo, CONTEXT_VALUE_KEYS, &vp, "trusted context values");
        for key in ["tenant_id_env", "principal_env"] {
            if let Some(e) = vo.get(key)
                && !e.as_str().is_some_and(is_env_name)
            {
                self.error(
                    "INVALID_CONTEXT_ENV",
                    &vp.key(key),
                    format!("{key} must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$"),
                );
            }
        }
        for key in ["tenant_id", "principal"] {
            if let Some(lit) = vo.get(key) {
                if non_empty_str(lit).is_none() {
                    self.error(
                        "INVALID_CONTEXT_VALUE",
                        &vp.key(key),
                        format!("{key} must be a non-empty string"),
                    );
                } else if literals_allowed == Some(false) {
                    self.error(
                        "CONTEXT_LITERAL_NOT_STATIC_DEV",
                        &vp.key(key),
                        format!("a literal {key} is only used by the static_dev provider; remove it or use {key}_env"),
                    );
                }
            }
        }
    }

    fn contexts(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "CONTEXTS_NOT_OBJECT",
                path,
                format!(
                    "contexts must be an object mapping names to trusted contexts, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        for (name, ctx) in obj {
            let p = path.key(name);
            if !is_context_name(name) {
                self.error(
                    "INVALID_CONTEXT_NAME",
                    &p,
                    "context names must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (at most 128 characters); rename the context",
                );
            }
            self.contexts.insert(name.clone());
            self.trusted_context(ctx, &p);
        }
    }

    // -- executors ----------------------------------------------------------------------------

    fn executors(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTORS_NOT_OBJECT",
                path,
                format!(
                    "executors must be an object mapping names to executors, got {}",
                    type_name(v)
                ),
            );
            return;
        };
        for (name, ex) in obj {
            let p = path.key(name);
            if name == "sql_update" {
                self.error(
                    "INVALID_EXECUTOR_NAME",
                    &p,
                    "sql_update is the built-in executor and cannot be redefined; choose another name",
                );
            } else if !is_context_name(name) {
                self.error(
                    "INVALID_EXECUTOR_NAME",
                    &p,
                    "executor names must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (at most 128 characters); rename the executor",
                );
            }
            if self.mode == Some(ModeV::ReadOnly) {
                self.error(
                    "EXECUTOR_INVALID_IN_READ_ONLY",
                    &p,
                    "read_only mode applies no writes, so executors are not allowed; remove executors or change mode to review",
                );
            }
            let ty = self.executor(ex, &p);
            self.executors.insert(name.clone(), ty);
        }
    }

    fn executor(&mut self, v: &Value, path: &Path) -> Option<ExecType> {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTOR_NOT_OBJECT",
                path,
                format!("an executor must be an object with a type, got {}", type_name(v)),
            );
            return None;
        };
        let ty = match obj.get("type").and_then(Value::as_str) {
            Some("sql_update") => Some(ExecType::SqlUpdate),
            Some("http_handler") => Some(ExecType::HttpHandler),
            Some("command_handler") => Some(ExecType::CommandHandler),
            _ => {
                self.error(
                    "INVALID_EXECUTOR_TYPE",
                    &path.key("type"),
                    "executor type must be sql_update, http_handler or command_handler",
                );
                None
            }
        };
        let allowed = match ty {
            Some(ExecType::SqlUpdate) => SQL_UPDATE_KEYS,
            Some(ExecType::HttpHandler) => HTTP_HANDLER_KEYS,
            Some(ExecType::CommandHandler) => COMMAND_HANDLER_KEYS,
            None => EXECUTOR_KEYS_ANY,
        };
        let what = match ty {
            Some(ExecType::SqlUpdate) => "a sql_update executor",
            Some(ExecType::HttpHandler) => "an http_handler executor",
            Some(ExecType::CommandHandler) => "a command_handler executor",
            None => "an executor",
        };
        self.known_keys(obj, allowed, path, what);

        let timeout = |s: &mut Self| {
            if let Some(t) = obj.get("timeout_ms")
                && !matches!(t.as_u64(), Some(1..=MAX_TIMEOUT_MS))
            {
                s.error(
                    "INVALID_HANDLER_TIMEOUT",
                    &path.key("timeout_ms"),
                    format!("timeout_ms must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}; the default is 5000"),
                );
            }
        };

        match ty {
            Some(ExecType::HttpHandler) => {
                if !obj.get("url_env").and_then(Value::as_str).is_some_and(is_env_name) {
                    self.error(
                        "HANDLER_URL_ENV_REQUIRED",
                        &path.key("url_env"),
                        "url_env is required; set it to the name of the environment variable that holds the handler URL",
                    );
                }
                if let Some(m) = obj.get("method")
                    && !matches!(m.as_str(), Some("POST" | "PUT" | "PATCH"))
                {
                    self.error(
                        "INVALID_HANDLER_METHOD",
                        &path.key("method"),
                        "method must be POST, PUT or PATCH (default POST)",
                    );
                }
                if let Some(auth) = obj.get("auth") {
                    self.executor_auth(auth, &path.key("auth"));
                }
                self.executor_signing(obj, path);
                timeout(self);
            }
            Some(ExecType::CommandHandler) => {
                if !obj.get("command_env").and_then(Value::as_str).is_some_and(is_env_name) {
                    self.error(
                        "COMMAND_ENV_REQUIRED",
                        &path.key("command_env"),
                        "command_env is required; set it to the name of the environment variable that holds the handler command",
                    );
                }
                self.executor_signing(obj, path);
                timeout(self);
            }
            Some(ExecType::SqlUpdate) | None => {}
        }
        ty
    }

    /// `signing_secret_env` and `signing_key_id` of a handler executor (HTTP or command).
    fn executor_signing(&mut self, obj: &Map<String, Value>, path: &Path) {
        let has_secret = match obj.get("signing_secret_env") {
            None => {
                self.warn(
                    "HANDLER_UNSIGNED",
                    &path.key("signing_secret_env"),
                    "requests to this handler are not signed; set signing_secret_env so the handler can verify they come from the runner",
                );
                false
            }
            Some(s) if s.as_str().is_some_and(is_env_name) => true,
            Some(_) => {
                self.error(
                    "HANDLER_SIGNING_SECRET_ENV_INVALID",
                    &path.key("signing_secret_env"),
                    "signing_secret_env must be an environment variable name matching ^[A-Z_][A-Z0-9_]*$ (the name, never the secret)",
                );
                true
            }
        };
        if let Some(k) = obj.get("signing_key_id") {
            if !k.as_str().is_some_and(is_signing_key_id) {
                self.error(
                    "INVALID_SIGNING_KEY_ID",
                    &path.key("signing_key_id"),
                    "signing_key_id must match ^[A-Za-z0-9_.-]{1,64}$, e.g. billing-2025-01",
                );
            } else if !has_secret {
                self.error(
                    "SIGNING_KEY_ID_WITHOUT_SECRET",
                    &path.key("signing_key_id"),
                    "signing_key_id has no effect without signing_secret_env; add signing_secret_env or remove signing_key_id",
                );
            }
        }
    }

    fn executor_auth(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "EXECUTOR_AUTH_NOT_OBJECT",
                path,
                "auth must be an object like {\"type\": \"bearer_env\", \"token_env\": \"HANDLER_TOKEN\"}",
            );
            return;
        };
        self.known_keys(obj, AUTH_KEYS, path, "executor auth");
        if obj.get("type").and_then(Value::as_str) != Some("bearer_env") {
            self.error(
                "INVALID_EXECUTOR_AUTH",
                &path.key("type"),
                "only auth type bearer_env is supported; set \"type\": \"bearer_env\"",
            );
        }
        if !obj.get("token_env").and_then(Value::as_str).is_some_and(is_env_name) {
            self.error(
                "EXECUTOR_TOKEN_ENV_REQUIRED",
                &path.key("token_env"),
                "token_env is required; set it to the name of the environment variable that holds the bearer token",
            );
        }
    }

    // -- capabilities -------------------------------------------------------------------------

    fn capabilities(&mut self, v: Option<&Value>, path: &Path) {
        let arr = match v {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None => {
                self.error(
                    "CAPABILITIES_REQUIRED",
                    path,
                    "at least one capability is required; add a read capability to capabilities",
                );
                return;
            }
            Some(other) => {
                self.error(
                    "CAPABILITIES_REQUIRED",
                    path,
                    format!("capabilities must be an array, got {}", type_name(other)),
                );
                return;
            }
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, cap) in arr.iter().enumerate() {
            let p = path.idx(i);
            if let Some(name) = self.capability(cap, &p) {
                if let Some(first) = seen.get(&name) {
                    self.error(
                        "DUPLICATE_CAPABILITY_NAME",
                        &p.key("name"),
                        format!(
                            "{} is already used by capabilities[{first}]; capability names must be unique",
                            show(&name)
                        ),
                    );
                } else {
                    seen.insert(name, i);
                }
            }
        }
    }

    /// Validates one capability; returns its name when the name is valid.
    fn capability(&mut self, v: &Value, path: &Path) -> Option<String> {
        let Some(obj) = v.as_object() else {
            self.error(
                "CAPABILITY_NOT_OBJECT",
                path,
                format!("a capability must be an object, got {}", type_name(v)),
            );
            return None;
        };
        self.known_keys(obj, CAPABILITY_KEYS, path, "a capability");

        let name = match obj.get("name").and_then(Value::as_str) {
            Some(n) if is_capability_name(n) => Some(n.to_owned()),
            _ => {
                self.error(
                    "INVALID_CAPABILITY_NAME",
                    &path.key("name"),
                    "name must be exactly namespace.name, both parts matching ^[A-Za-z_][A-Za-z0-9_]*$, e.g. billing.inspect_invoice",
                );
                None
            }
        };

        let kind = match obj.get("kind").and_then(Value::as_str) {
            Some("read") => Some(false),
            Some("proposal") => Some(true),
            _ => {
                self.error(
                    "INVALID_CAPABILITY_KIND",
                    &path.key("kind"),
                    "kind must be read or proposal",
                );
                None
            }
        };

        if let Some(d) = obj.get("description")
            && non_empty_str(d).is_none()
        {
            self.error(
                "INVALID_CAPABILITY_DESCRIPTION",
                &path.key("description"),
                "description must be a non-empty string that says what the tool does; remove it to use the default",
            );
        }
        if let Some(d) = obj.get("returns_hint")
            && non_empty_str(d).is_none()
        {
            self.error(
                "INVALID_RETURNS_HINT",
                &path.key("returns_hint"),
                "returns_hint must be a non-empty string that says what the result contains; remove it if not needed",
            );
        }

        let source = match obj.get("source").and_then(Value::as_str) {
            Some(s) if self.sources.contains_key(s) => self.sources.get(s).cloned(),
            Some(_) if !self.sources_ok => None,
            Some(s) => {
                self.error(
                    "UNKNOWN_SOURCE",
                    &path.key("source"),
                    format!("source {} is not defined; name an entry of sources", show(s)),
                );
                None
            }
            None => {
                self.error(
                    "UNKNOWN_SOURCE",
                    &path.key("source"),
                    "source is required; set it to the name of an entry of sources",
                );
                None
            }
        };

        if let Some(c) = obj.get("context") {
            match c.as_str() {
                Some(s) if self.contexts.contains(s) => {}
                Some(s) => self.error(
                    "UNKNOWN_CONTEXT",
                    &path.key("context"),
                    format!(
                        "context {} is not defined; name an entry of contexts or remove context to use trusted_context",
                        show(s)
                    ),
                ),
                None => self.error(
                    "UNKNOWN_CONTEXT",
                    &path.key("context"),
                    "context must be the name of an entry of contexts",
                ),
            }
        }

        let ack = match obj.get("single_tenant_dev_ack") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(
                    "INVALID_SINGLE_TENANT_DEV_ACK",
                    &path.key("single_tenant_dev_ack"),
                    "single_tenant_dev_ack must be true or false",
                );
                false
            }
        };
        let target = self.target(obj.get("target"), &path.key("target"), ack);
        let args = self.args(obj.get("args"), &path.key("args"));
        let lookup_arg = self.lookup(obj.get("lookup"), &path.key("lookup"), args.as_ref());
        let visible = self.visible_columns(obj.get("visible_columns"), &path.key("visible_columns"));

        if let Some(e) = obj.get("evidence") {
            match e.as_str() {
                Some("required") => {}
                Some("optional") => self.warn(
                    "EVIDENCE_ALWAYS_RECORDED",
                    &path.key("evidence"),
                    "evidence is always recorded for every call; set evidence to required or remove it",
                ),
                _ => self.error(
                    "INVALID_EVIDENCE_POLICY",
                    &path.key("evidence"),
                    "evidence must be required (evidence is always recorded)",
                ),
            }
        }
        if let Some(m) = obj.get("max_rows") {
            match m.as_u64() {
                Some(1) => {}
                Some(n) if n > 1 => self.error(
                    "MAX_ROWS_UNSUPPORTED",
                    &path.key("max_rows"),
                    "reads return exactly one row by primary key, so max_rows can only be 1; remove max_rows",
                ),
                _ => self.error(
                    "INVALID_MAX_ROWS",
                    &path.key("max_rows"),
                    "max_rows must be 1 (reads are by primary key); remove max_rows",
                ),
            }
        }

        match kind {
            Some(false) => {
                for field in WRITE_FIELDS {
                    if obj.contains_key(*field) {
                        self.error(
                            "READ_CAPABILITY_HAS_WRITE_FIELDS",
                            &path.key(field),
                            format!(
                                "{field} only applies to proposal capabilities; remove it or change kind to proposal"
                            ),
                        );
                    }
                }
            }
            Some(true) => {
                if self.mode == Some(ModeV::ReadOnly) {
                    self.warn(
                        "PROPOSAL_HIDDEN_IN_READ_ONLY",
                        &path.key("kind"),
                        "read_only mode lists only read tools, so this proposal capability is not exposed; change mode to shadow or review to use it",
                    );
                }
                let ctx = ProposalCtx {
                    target: &target,
                    args: args.as_ref(),
                    lookup_arg: lookup_arg.as_deref(),
                    visible: &visible,
                };
                self.proposal(obj, path, &ctx, source.as_ref());
            }
            None => {}
        }

        name
    }

    fn target(&mut self, v: Option<&Value>, path: &Path, ack: bool) -> TargetInfo {
        let mut info = TargetInfo::default();
        let Some(obj) = v.and_then(Value::as_object) else {
            self.error(
                "TARGET_REQUIRED",
                path,
                "target is required; set it to {\"schema\", \"table\", \"primary_key\", \"tenant_key\"}",
            );
            return info;
        };
        self.known_keys(obj, TARGET_KEYS, path, "a target");
        for key in ["schema", "table", "primary_key"] {
            match obj.get(key).and_then(Value::as_str) {
                Some(s) if is_safe_identifier(s) => {
                    if key == "primary_key" {
                        info.primary_key = Some(s.to_owned());
                    }
                }
                _ => self.error(
                    "INVALID_TARGET_IDENTIFIER",
                    &path.key(key),
                    format!("target.{key} must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)"),
                ),
            }
        }
        let tenant_present = obj.contains_key("tenant_key");
        if let Some(t) = obj.get("tenant_key") {
            match t.as_str() {
                Some(s) if is_safe_identifier(s) => info.tenant_key = Some(s.to_owned()),
                _ => self.error(
                    "INVALID_TARGET_IDENTIFIER",
                    &path.key("tenant_key"),
                    "target.tenant_key must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                ),
            }
        }
        let single_tenant_dev = match obj.get("single_tenant_dev") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(
                    "INVALID_SINGLE_TENANT_DEV",
                    &path.key("single_tenant_dev"),
                    "single_tenant_dev must be true or false",
                );
                false
            }
        };
        if single_tenant_dev && tenant_present {
            self.error(
                "SINGLE_TENANT_DEV_CONFLICT",
                &path.key("single_tenant_dev"),
                "single_tenant_dev and tenant_key contradict each other; keep tenant_key and remove single_tenant_dev",
            );
        } else if !single_tenant_dev && !tenant_present {
            self.error(
                "TENANT_GUARD_REQUIRED",
                &path.key("tenant_key"),
                "tenant_key is required so every query is scoped to the trusted tenant; set it to the tenant column",
            );
        }
        if single_tenant_dev && !tenant_present && !ack {
            self.warn(
                "SINGLE_TENANT_DEV_EXCEPTION",
                &path.key("single_tenant_dev"),
                "this capability has no tenant guard and can read any row of the table; use it for development only, or set single_tenant_dev_ack: true on the capability to acknowledge",
            );
        }
        if let (Some(pk), Some(tk)) = (&info.primary_key, &info.tenant_key)
            && eq_ci(pk, tk)
        {
            self.error(
                "TENANT_KEY_IS_PRIMARY_KEY",
                &path.key("tenant_key"),
                "tenant_key must be the tenant column, not the primary key",
            );
        }
        info
    }

    fn args(&mut self, v: Option<&Value>, path: &Path) -> Option<HashMap<String, ArgInfo>> {
        let obj = match v {
            Some(Value::Object(o)) if !o.is_empty() => o,
            _ => {
                self.error(
                    "ARGS_REQUIRED",
                    path,
                    "args must be an object with at least one argument, e.g. {\"invoice_id\": {\"type\": \"string\", \"max_length\": 64}}",
                );
                return None;
            }
        };
        let mut out = HashMap::new();
        for (name, spec) in obj {
            let p = path.key(name);
            if !is_arg_name(name) {
                self.error(
                    "INVALID_ARG_NAME",
                    &p,
                    "argument names must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters); rename the argument",
                );
            } else if is_reserved_arg_name(name) {
                self.error(
                    "MODEL_CONTROLLED_RESERVED_ARG",
                    &p,
                    format!("{} is reserved: tenant, principal, version and identifier values come from trusted context and config, never from the model; rename or remove the argument", show(name)),
                );
            }
            let info = self.arg(spec, &p);
            out.insert(name.clone(), info);
        }
        Some(out)
    }

    fn arg(&mut self, v: &Value, path: &Path) -> ArgInfo {
        let mut info = ArgInfo {
            ty: None,
            required: true,
        };
        let Some(obj) = v.as_object() else {
            self.error(
                "ARG_NOT_OBJECT",
                path,
                format!(
                    "an argument must be an object like {{\"type\": \"string\"}}, got {}",
                    type_name(v)
                ),
            );
            return info;
        };
        self.known_keys(obj, ARG_KEYS, path, "an argument");
        info.ty = match obj.get("type").and_then(Value::as_str) {
            Some("string") => Some(ArgTypeV::String),
            Some("number") => Some(ArgTypeV::Number),
            Some("boolean") => Some(ArgTypeV::Boolean),
            _ => {
                self.error(
                    "INVALID_ARG_TYPE",
                    &path.key("type"),
                    "type must be string, number or boolean",
                );
                None
            }
        };
        if let Some(d) = obj.get("description")
            && non_empty_str(d).is_none()
        {
            self.error(
                "INVALID_ARG_DESCRIPTION",
                &path.key("description"),
                "description must be a non-empty string; remove it to use the default",
            );
        }
        if let Some(r) = obj.get("required") {
            match r {
                Value::Bool(b) => info.required = *b,
                _ => self.error(
                    "INVALID_ARG_REQUIRED",
                    &path.key("required"),
                    "required must be true or false",
                ),
            }
        }
        let mut max_length = None;
        if let Some(m) = obj.get("max_length") {
            match m.as_u64() {
                Some(n) if n >= 1 => {
                    if info.ty.is_some_and(|t| t != ArgTypeV::String) {
                        self.error(
                            "INVALID_MAX_LENGTH",
                            &path.key("max_length"),
                            "max_length only applies to string arguments; remove it",
                        );
                    } else {
                        max_length = Some(n);
                    }
                }
                _ => self.error(
                    "INVALID_MAX_LENGTH",
                    &path.key("max_length"),
                    "max_length must be a whole number of characters, at least 1",
                ),
            }
        }
        let mut bounds = [None, None];
        for (slot, (key, code)) in [("minimum", "INVALID_MINIMUM"), ("maximum", "INVALID_MAXIMUM")]
            .into_iter()
            .enumerate()
        {
            if let Some(m) = obj.get(key) {
                match m.as_f64() {
                    Some(n) if m.is_number() => {
                        if info.ty.is_some_and(|t| t != ArgTypeV::Number) {
                            self.error(
                                "NUMERIC_BOUNDS_REQUIRE_NUMBER",
                                &path.key(key),
                                format!("{key} only applies to number arguments; remove it or change type to number"),
                            );
                        } else {
                            bounds[slot] = Some(n);
                        }
                    }
                    _ => self.error(code, &path.key(key), format!("{key} must be a number")),
                }
            }
        }
        if let [Some(lo), Some(hi)] = bounds
            && lo > hi
        {
            self.error(
                "INVALID_NUMERIC_RANGE",
                &path.key("minimum"),
                "minimum is greater than maximum; swap or fix them",
            );
        }
        if let Some(e) = obj.get("enum") {
            let ep = path.key("enum");
            match e.as_array() {
                Some(items) if !items.is_empty() => {
                    let mut seen: Vec<&Value> = Vec::new();
                    for (k, item) in items.iter().enumerate() {
                        let ip = ep.idx(k);
                        let problem = enum_value_problem(item, info.ty, max_length, bounds);
                        if let Some(problem) = problem {
                            self.error("INVALID_ENUM_VALUE", &ip, problem);
                        } else if seen.contains(&item) {
                            self.error(
                                "INVALID_ENUM_VALUE",
                                &ip,
                                "this value is listed twice; remove the duplicate",
                            );
                        }
                        seen.push(item);
                    }
                }
                _ => self.error(
                    "INVALID_ENUM",
                    &ep,
                    "enum must be a non-empty array of the allowed values",
                ),
            }
        }
        info
    }

    fn lookup(&mut self, v: Option<&Value>, path: &Path, args: Option<&HashMap<String, ArgInfo>>) -> Option<String> {
        let Some(obj) = v.and_then(Value::as_object) else {
            self.error(
                "LOOKUP_REQUIRED",
                path,
                "lookup is required; set it to {\"id_from_arg\": \"<argument holding the primary key>\"}",
            );
            return None;
        };
        self.known_keys(obj, LOOKUP_KEYS, path, "lookup");
        let p = path.key("id_from_arg");
        let Some(arg) = obj.get("id_from_arg").and_then(non_empty_str) else {
            self.error(
                "LOOKUP_ARG_REQUIRED",
                &p,
                "lookup.id_from_arg is required; set it to the argument that holds the primary key",
            );
            return None;
        };
        if let Some(args) = args {
            match args.get(arg) {
                None => self.error(
                    "LOOKUP_ARG_UNKNOWN",
                    &p,
                    format!("lookup.id_from_arg names {} which is not in args; add the argument or fix the name", show(arg)),
                ),
                Some(info) if !info.required => self.error(
                    "LOOKUP_ARG_OPTIONAL",
                    &p,
                    "the lookup argument must be required, since every call reads one row by primary key; remove required: false",
                ),
                Some(_) => {}
            }
        }
        Some(arg.to_owned())
    }

    fn visible_columns(&mut self, v: Option<&Value>, path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let items = match v {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => {
                self.error(
                    "VISIBLE_COLUMNS_REQUIRED",
                    path,
                    "visible_columns must be a non-empty array of the columns returned to the model",
                );
                return out;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let p = path.idx(i);
            match item.as_str() {
                Some(s) if is_safe_identifier(s) => {
                    if out.iter().any(|c: &String| c == s) {
                        self.error(
                            "INVALID_VISIBLE_COLUMN",
                            &p,
                            "this column is listed twice; remove the duplicate",
                        );
                    } else {
                        out.push(s.to_owned());
                    }
                }
                _ => self.error(
                    "INVALID_VISIBLE_COLUMN",
                    &p,
                    "visible columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                ),
            }
        }
        out
    }

    // -- proposals ----------------------------------------------------------------------------

    fn proposal(&mut self, obj: &Map<String, Value>, path: &Path, ctx: &ProposalCtx<'_>, source: Option<&SourceInfo>) {
        let patch = self.patch(obj.get("patch"), &path.key("patch"), ctx);
        let allowed = self.allowed_columns(obj.get("allowed_columns"), &path.key("allowed_columns"), ctx);
        let conflict_column = self.conflict_guard(obj.get("conflict_guard"), &path.key("conflict_guard"));

        if let Some(allowed) = &allowed {
            for (col, _) in patch.iter() {
                if !allowed.iter().any(|a| a == col) {
                    self.error(
                        "PATCH_COLUMN_NOT_ALLOWED",
                        &path.key("patch").key(col),
                        format!("patch column {} is not in allowed_columns; add it to allowed_columns or remove it from patch", show(col)),
                    );
                }
            }
        }
        if let Some(cc) = &conflict_column {
            let in_allowed = allowed.as_ref().is_some_and(|a| a.iter().any(|c| eq_ci(c, cc)));
            let in_patch = patch.iter().any(|(c, _)| eq_ci(c, cc));
            if in_allowed || in_patch {
                self.error(
                    "CONFLICT_COLUMN_PATCHED",
                    &path.key("conflict_guard").key("column"),
                    "the conflict guard column is compared at apply time and must not be patched; remove it from patch and allowed_columns",
                );
            }
        }

        if let Some(nb) = obj.get("numeric_bounds") {
            self.numeric_bounds(nb, &path.key("numeric_bounds"), &patch, ctx);
        }
        if let Some(tg) = obj.get("transition_guards") {
            self.transition_guards(
                tg,
                &path.key("transition_guards"),
                &patch,
                ctx,
                conflict_column.as_deref(),
            );
        }
        if let Some(ap) = obj.get("approval") {
            self.approval(ap, &path.key("approval"));
        }

        // Which executor applies this proposal.
        let exec = match obj.get("executor") {
            None => Some(ExecType::SqlUpdate),
            Some(Value::String(s)) if s == "sql_update" => Some(ExecType::SqlUpdate),
            Some(Value::String(s)) => match self.executors.get(s) {
                Some(ty) => *ty,
                None => {
                    self.error(
                        "UNKNOWN_EXECUTOR",
                        &path.key("executor"),
                        format!(
                            "executor {} is not defined; use sql_update or name an entry of executors",
                            show(s)
                        ),
                    );
                    None
                }
            },
            Some(_) => {
                self.error(
                    "INVALID_EXECUTOR_REFERENCE",
                    &path.key("executor"),
                    "executor must be a string: sql_update or the name of an entry of executors",
                );
                None
            }
        };
        if self.mode == Some(ModeV::Review)
            && exec == Some(ExecType::SqlUpdate)
            && let Some(src) = source
        {
            if src.read_only {
                self.error(
                    "READ_ONLY_SOURCE_DIRECT_WRITEBACK",
                    &path.key("source"),
                    "this proposal is applied with sql_update but its source is read_only; use an app-owned executor or set read_only: false and a write_url_env on the source",
                );
            } else if !src.has_write_url {
                self.warn(
                    "WRITEBACK_DISABLED",
                    &path.key("source"),
                    "the source has no write_url_env, so approved proposals cannot be applied with sql_update; add write_url_env or use an app-owned executor",
                );
            }
        }
    }

    fn patch(&mut self, v: Option<&Value>, path: &Path, ctx: &ProposalCtx<'_>) -> Vec<(String, BindingInfo)> {
        let mut out = Vec::new();
        let obj = match v {
            Some(Value::Object(o)) if !o.is_empty() => o,
            _ => {
                self.error(
                    "PATCH_REQUIRED",
                    path,
                    "a proposal needs a patch: an object mapping each changed column to {\"fixed\": value} or {\"from_arg\": \"arg\"}",
                );
                return out;
            }
        };
        for (col, binding) in obj {
            let p = path.key(col);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_PATCH_COLUMN",
                    &p,
                    "patch columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                );
            }
            let info = self.patch_binding(binding, &p, ctx);
            out.push((col.clone(), info));
        }
        out
    }

    fn patch_binding(&mut self, v: &Value, path: &Path, ctx: &ProposalCtx<'_>) -> BindingInfo {
        let Some(obj) = v.as_object() else {
            self.error(
                "PATCH_BINDING_NOT_OBJECT",
                path,
                format!(
                    "a patch entry must be {{\"fixed\": value}} or {{\"from_arg\": \"arg\"}}, got {}",
                    type_name(v)
                ),
            );
            return BindingInfo::Invalid;
        };
        self.known_keys(obj, PATCH_BINDING_KEYS, path, "a patch entry");
        match (obj.get("fixed"), obj.get("from_arg")) {
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    "INVALID_PATCH_BINDING",
                    path,
                    "a patch entry needs exactly one of fixed or from_arg",
                );
                BindingInfo::Invalid
            }
            (Some(fixed), None) => {
                if is_scalar(fixed) {
                    BindingInfo::Fixed(fixed.clone())
                } else {
                    self.error(
                        "INVALID_FIXED_VALUE",
                        &path.key("fixed"),
                        format!(
                            "fixed values must be a string, number, boolean or null, got {}",
                            type_name(fixed)
                        ),
                    );
                    BindingInfo::Invalid
                }
            }
            (None, Some(arg)) => {
                let ap = path.key("from_arg");
                let Some(name) = arg.as_str() else {
                    self.error(
                        "INVALID_PATCH_ARG",
                        &ap,
                        "from_arg must be the name of an argument in args",
                    );
                    return BindingInfo::Invalid;
                };
                let Some(args) = ctx.args else {
                    return BindingInfo::FromArg(name.to_owned());
                };
                match args.get(name) {
                    None => {
                        self.error(
                            "INVALID_PATCH_ARG",
                            &ap,
                            format!(
                                "from_arg names {} which is not in args; add the argument or fix the name",
                                show(name)
                            ),
                        );
                        BindingInfo::Invalid
                    }
                    Some(_) if ctx.lookup_arg == Some(name) => {
                        self.error(
                            "PATCH_FROM_LOOKUP_ARG",
                            &ap,
                            "from_arg names the lookup argument, which would write the primary key value into a column; use a separate argument",
                        );
                        BindingInfo::Invalid
                    }
                    Some(info) if !info.required => {
                        self.error(
                            "PATCH_ARG_OPTIONAL",
                            &ap,
                            "arguments used by patch must be required, or the proposed change would be incomplete; remove required: false",
                        );
                        BindingInfo::FromArg(name.to_owned())
                    }
                    Some(_) => BindingInfo::FromArg(name.to_owned()),
                }
            }
        }
    }

    fn allowed_columns(&mut self, v: Option<&Value>, path: &Path, ctx: &ProposalCtx<'_>) -> Option<Vec<String>> {
        let items = match v {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => {
                self.error(
                    "ALLOWED_COLUMNS_REQUIRED",
                    path,
                    "a proposal needs allowed_columns: a non-empty array of the only columns writeback may change",
                );
                return None;
            }
        };
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = path.idx(i);
            let Some(col) = item.as_str().filter(|s| is_safe_identifier(s)) else {
                self.error(
                    "INVALID_ALLOWED_COLUMN",
                    &p,
                    "allowed columns must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                );
                continue;
            };
            if out.iter().any(|c| c == col) {
                self.error(
                    "INVALID_ALLOWED_COLUMN",
                    &p,
                    "this column is listed twice; remove the duplicate",
                );
                continue;
            }
            let is_pk = ctx.target.primary_key.as_deref().is_some_and(|pk| eq_ci(pk, col));
            let is_tenant = ctx.target.tenant_key.as_deref().is_some_and(|tk| eq_ci(tk, col));
            if is_pk || is_tenant {
                self.error(
                    "ALLOWED_COLUMN_IS_KEY",
                    &p,
                    format!(
                        "the {} column can never be changed by a proposal; remove it from allowed_columns",
                        if is_pk { "primary key" } else { "tenant key" }
                    ),
                );
            }
            out.push(col.to_owned());
        }
        Some(out)
    }

    fn conflict_guard(&mut self, v: Option<&Value>, path: &Path) -> Option<String> {
        let Some(obj) = v.and_then(Value::as_object) else {
            self.error(
                "CONFLICT_GUARD_REQUIRED",
                path,
                "a proposal needs conflict_guard, e.g. {\"column\": \"updated_at\"}, so apply fails when the row changed after review",
            );
            return None;
        };
        self.known_keys(obj, CONFLICT_GUARD_KEYS, path, "conflict_guard");
        let column = match obj.get("column") {
            None => None,
            Some(c) => match c.as_str() {
                Some(s) if is_safe_identifier(s) => Some(s.to_owned()),
                _ => {
                    self.error(
                        "INVALID_CONFLICT_COLUMN",
                        &path.key("column"),
                        "conflict_guard.column must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters)",
                    );
                    None
                }
            },
        };
        let ack = match obj.get("weak_guard_ack") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(
                    "INVALID_WEAK_GUARD_ACK",
                    &path.key("weak_guard_ack"),
                    "weak_guard_ack must be true or false",
                );
                false
            }
        };
        if !obj.contains_key("column") {
            if ack {
                self.warn(
                    "WEAK_CONFLICT_GUARD",
                    &path.key("weak_guard_ack"),
                    "without a version column the guard compares a hash of the row as read; prefer a version or updated_at column",
                );
            } else {
                self.error(
                    "CONFLICT_GUARD_COLUMN_REQUIRED",
                    &path.key("column"),
                    "conflict_guard needs a version column (e.g. updated_at or version), or weak_guard_ack: true to accept a row-hash guard",
                );
            }
        }
        column
    }

    fn numeric_bounds(&mut self, v: &Value, path: &Path, patch: &[(String, BindingInfo)], ctx: &ProposalCtx<'_>) {
        let Some(obj) = v.as_object() else {
            self.error(
                "NUMERIC_BOUND_NOT_OBJECT",
                path,
                "numeric_bounds must be an object mapping patched columns to {\"minimum\", \"maximum\"}",
            );
            return;
        };
        for (col, bound) in obj {
            let p = path.key(col);
            let binding = patch.iter().find(|(c, _)| c == col).map(|(_, b)| b);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_NUMERIC_BOUND_COLUMN",
                    &p,
                    "numeric_bounds keys must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$",
                );
            } else if binding.is_none() {
                self.error(
                    "NUMERIC_BOUND_PATCH_COLUMN_REQUIRED",
                    &p,
                    format!(
                        "{} is not patched, so its bound would never apply; add it to patch or remove the bound",
                        show(col)
                    ),
                );
            }
            let Some(bo) = bound.as_object() else {
                self.error(
                    "NUMERIC_BOUND_NOT_OBJECT",
                    &p,
                    "a numeric bound must be an object like {\"minimum\": 0, \"maximum\": 10000}",
                );
                continue;
            };
            self.known_keys(bo, NUMERIC_BOUND_KEYS, &p, "a numeric bound");
            let mut lim = [None, None];
            for (slot, (key, code)) in [("minimum", "INVALID_MINIMUM"), ("maximum", "INVALID_MAXIMUM")]
                .into_iter()
                .enumerate()
            {
                if let Some(x) = bo.get(key) {
                    match x.as_f64() {
                        Some(n) if x.is_number() => lim[slot] = Some(n),
                        _ => self.error(code, &p.key(key), format!("{key} must be a number")),
                    }
                }
            }
            if !bo.contains_key("minimum") && !bo.contains_key("maximum") {
                self.error(
                    "NUMERIC_BOUND_EMPTY",
                    &p,
                    "a numeric bound needs minimum, maximum or both",
                );
            }
            if let [Some(lo), Some(hi)] = lim
                && lo > hi
            {
                self.error(
                    "INVALID_NUMERIC_RANGE",
                    &p.key("minimum"),
                    "minimum is greater than maximum; swap or fix them",
                );
            }
            match binding {
                Some(BindingInfo::Fixed(value)) => {
                    let ok = value.as_f64().is_some_and(|n| {
                        value.is_number() && lim[0].is_none_or(|lo| n >= lo) && lim[1].is_none_or(|hi| n <= hi)
                    });
                    if !ok {
                        self.error(
                            "FIXED_VALUE_OUT_OF_BOUNDS",
                            &p,
                            "the fixed patch value of this column is not a number within its bounds; fix the value or the bound",
                        );
                    }
                }
                Some(BindingInfo::FromArg(arg)) => {
                    let ty = ctx.args.and_then(|a| a.get(arg)).and_then(|a| a.ty);
                    if ty.is_some_and(|t| t != ArgTypeV::Number) {
                        self.error(
                            "NUMERIC_BOUND_REQUIRES_NUMBER_ARG",
                            &p,
                            format!("this column is bounded but takes argument {} which is not a number; change the argument type to number", show(arg)),
                        );
                    }
                }
                Some(BindingInfo::Invalid) | None => {}
            }
        }
    }

    fn transition_guards(
        &mut self,
        v: &Value,
        path: &Path,
        patch: &[(String, BindingInfo)],
        ctx: &ProposalCtx<'_>,
        conflict_column: Option<&str>,
    ) {
        let Some(obj) = v.as_object() else {
            self.error(
                "TRANSITION_GUARD_NOT_OBJECT",
                path,
                "transition_guards must be an object mapping patched columns to {\"allowed\": {from: [to, ...]}}",
            );
            return;
        };
        for (col, guard) in obj {
            let p = path.key(col);
            let binding = patch.iter().find(|(c, _)| c == col).map(|(_, b)| b);
            if !is_safe_identifier(col) {
                self.error(
                    "INVALID_TRANSITION_COLUMN",
                    &p,
                    "transition_guards keys must be SQL identifiers matching ^[A-Za-z_][A-Za-z0-9_]*$",
                );
            } else if binding.is_none() {
                self.error(
                    "TRANSITION_PATCH_COLUMN_REQUIRED",
                    &p,
                    format!("{} is not patched, so its transition guard would never apply; add it to patch or remove the guard", show(col)),
                );
            }
            let Some(go) = guard.as_object() else {
                self.error(
                    "TRANSITION_GUARD_NOT_OBJECT",
                    &p,
                    "a transition guard must be an object like {\"allowed\": {\"open\": [\"paid\", \"void\"]}}",
                );
                continue;
            };
            self.known_keys(go, TRANSITION_GUARD_KEYS, &p, "a transition guard");
            if let Some(fc) = go.get("from_column") {
                let fp = p.key("from_column");
                match fc.as_str() {
                    Some(s) if is_safe_identifier(s) => {
                        let readable = ctx.visible.iter().any(|c| c == s)
                            || ctx.target.primary_key.as_deref() == Some(s)
                            || ctx.target.tenant_key.as_deref() == Some(s)
                            || conflict_column == Some(s);
                        if !readable {
                            self.error(
                                "TRANSITION_FROM_COLUMN_NOT_VISIBLE",
                                &fp,
                                "from_column must be a visible column, the primary key, the tenant key or the conflict column; add it to visible_columns",
                            );
                        }
                    }
                    _ => self.error(
                        "INVALID_TRANSITION_FROM_COLUMN",
                        &fp,
                        "from_column must be an SQL identifier matching ^[A-Za-z_][A-Za-z0-9_]*$",
                    ),
                }
            }
            let ap = p.key("allowed");
            let mut targets: Vec<&str> = Vec::new();
            match go.get("allowed").and_then(Value::as_object) {
                Some(allowed) if !allowed.is_empty() => {
                    for (from, tos) in allowed {
                        let fp = ap.key(from);
                        if from.trim().is_empty() {
                            self.error(
                                "TRANSITION_FROM_REQUIRED",
                                &fp,
                                "a transition needs a non-empty from state",
                            );
                        }
                        let list = tos.as_array().filter(|a| !a.is_empty());
                        let valid = list.is_some_and(|a| a.iter().all(|t| non_empty_str(t).is_some()));
                        if valid {
                            targets.extend(list.into_iter().flatten().filter_map(Value::as_str));
                        } else {
                            self.error(
                                "TRANSITION_TO_VALUES_REQUIRED",
                                &fp,
                                "each from state needs a non-empty array of non-empty to states",
                            );
                        }
                    }
                }
                _ => self.error(
                    "TRANSITION_ALLOWED_REQUIRED",
                    &ap,
                    "allowed must be a non-empty object mapping each from state to its allowed to states",
                ),
            }
            match binding {
                Some(BindingInfo::Fixed(value))
                    if !targets.is_empty() && !value.as_str().is_some_and(|s| targets.contains(&s)) =>
                {
                    self.error(
                        "TRANSITION_TARGET_UNREACHABLE",
                        &p,
                        "the fixed patch value of this column is not a to state of any allowed transition, so every proposal would be refused; fix the value or the guard",
                    );
                }
                Some(BindingInfo::FromArg(arg)) => {
                    let ty = ctx.args.and_then(|a| a.get(arg)).and_then(|a| a.ty);
                    if ty.is_some_and(|t| t != ArgTypeV::String) {
                        self.error(
                            "TRANSITION_REQUIRES_STRING_ARG",
                            &p,
                            format!("states are strings, but this column takes argument {} which is not a string; change the argument type to string", show(arg)),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn approval(&mut self, v: &Value, path: &Path) {
        let Some(obj) = v.as_object() else {
            self.error(
                "INVALID_APPROVAL",
                path,
                "approval must be an object like {\"mode\": \"human\", \"required_approvals\": 1}",
            );
            return;
        };
        self.known_keys(obj, APPROVAL_KEYS, path, "approval");
        if let Some(m) = obj.get("mode") {
            match m.as_str() {
                Some("human") => {}
                Some("policy") => self.warn(
                    "APPROVAL_POLICY_NOT_AUTOMATIC",
                    &path.key("mode"),
                    "policy approval is not automatic here: every proposal still needs a human approval; set mode to human",
                ),
                _ => self.error(
                    "INVALID_APPROVAL_MODE",
                    &path.key("mode"),
                    "approval.mode must be human (or policy, which behaves as human)",
                ),
            }
        }
        if let Some(r) = obj.get("required_role") {
            if non_empty_str(r).is_some() {
                self.warn(
                    "APPROVAL_ROLE_NOT_ENFORCED_LOCALLY",
                    &path.key("required_role"),
                    "required_role is enforced in Kubernetes mode only (the approver must be in this Kubernetes group); local CLI approvals do not check it",
                );
            } else {
                self.error(
                    "INVALID_REQUIRED_ROLE",
                    &path.key("required_role"),
                    "required_role must be a non-empty role name",
                );
            }
        }
        if let Some(n) = obj.get("required_approvals")
            && !matches!(n.as_u64(), Some(1..=MAX_REQUIRED_APPROVALS))
        {
            self.error(
                "INVALID_REQUIRED_APPROVALS",
                &path.key("required_approvals"),
                format!("required_approvals must be a whole number from 1 to {MAX_REQUIRED_APPROVALS}"),
            );
        }
    }

    // -- recursive scan -----------------------------------------------------------------------

    /// Forbidden keys and inline connection URLs anywhere in the document, whatever `strict` says.
    fn scan(&mut self, doc: &Value) {
        let mut stack: Vec<(Path, &Value)> = vec![(Path::root(), doc)];
        while let Some((path, v)) = stack.pop() {
            match v {
                Value::Object(m) => {
                    for (k, child) in m {
                        let p = path.key(k);
                        if is_forbidden_url_key(k) || looks_like_connection_url(k) {
                            self.error(
                                "INLINE_DATABASE_URL_FORBIDDEN",
                                &p,
                                "connection URLs never go in the config; remove this field and name an environment variable in read_url_env or write_url_env",
                            );
                        }
                        if is_forbidden_sql_key(k) {
                            self.error(
                                "ARBITRARY_SQL_FORBIDDEN",
                                &p,
                                "SQL text is not accepted in the config; describe the read or change with target, visible_columns and patch instead",
                            );
                        }
                        stack.push((p, child));
                    }
                }
                Value::Array(a) => {
                    for (i, child) in a.iter().enumerate() {
                        stack.push((path.idx(i), child));
                    }
                }
                Value::String(s) if looks_like_connection_url(s) => self.error(
                    "INLINE_DATABASE_URL_FORBIDDEN",
                    &path,
                    "this value looks like a database connection URL; put the URL in an environment variable and name that variable (read_url_env or write_url_env) instead",
                ),
                _ => {}
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct TargetInfo {
    primary_key: Option<String>,
    tenant_key: Option<String>,
}

struct ProposalCtx<'a> {
    target: &'a TargetInfo,
    args: Option<&'a HashMap<String, ArgInfo>>,
    lookup_arg: Option<&'a str>,
    visible: &'a [String],
}

/// Why an enum member does not fit its argument, if it does not.
fn enum_value_problem(
    item: &Value,
    ty: Option<ArgTypeV>,
    max_length: Option<u64>,
    bounds: [Option<f64>; 2],
) -> Option<String> {
    let Some(ty) = ty else {
        return (!matches!(item, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .then(|| "enum values must be strings, numbers or booleans".to_owned());
    };
    let matches_type = match ty {
        ArgTypeV::String => item.is_string(),
        ArgTypeV::Number => item.is_number(),
        ArgTypeV::Boolean => item.is_boolean(),
    };
    if !matches_type {
        return Some(format!(
            "enum values of a {} argument must be {}s, got {}",
            ty.name(),
            ty.name(),
            type_name(item)
        ));
    }
    if let (Some(s), Some(max)) = (item.as_str(), max_length)
        && s.chars().count() as u64 > max
    {
        return Some(format!(
            "this value is longer than max_length ({max}); shorten it or raise max_length"
        ));
    }
    if let Some(n) = item.as_f64().filter(|_| item.is_number())
        && (bounds[0].is_some_and(|lo| n < lo) || bounds[1].is_some_and(|hi| n > hi))
    {
        return Some(
            "this value is outside the argument's minimum and maximum; fix the value or the bounds".to_owned(),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Ordering

/// Pre-order index of every path present in the document.
fn document_order(doc: &Value) -> HashMap<String, usize> {
    let mut order = HashMap::new();
    let mut stack: Vec<(Path, &Value)> = vec![(Path::root(), doc)];
    while let Some((path, v)) = stack.pop() {
        let n = order.len();
        order.entry(path.render()).or_insert(n);
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter().rev() {
                    stack.push((path.key(k), child));
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate().rev() {
                    stack.push((path.idx(i), child));
                }
            }
            _ => {}
        }
    }
    order
}

/// Sorts issues in document order (a missing field sorts right after its parent) and drops
/// repeats of the same code at the same path. The sort is stable, so ties keep check order.
fn sort_dedup(issues: Vec<Issue>, order: &HashMap<String, usize>) -> Vec<ConfigIssue> {
    let mut keyed: Vec<((usize, usize), Issue)> = issues
        .into_iter()
        .map(|issue| {
            let segs = &issue.path.0;
            let mut key = (0, 0);
            for depth in (0..=segs.len()).rev() {
                if let Some(&n) = order.get(&render_segs(&segs[..depth])) {
                    key = (n, segs.len() - depth);
                    break;
                }
            }
            (key, issue)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let mut seen = HashSet::new();
    keyed
        .into_iter()
        .filter(|(_, i)| seen.insert((i.issue.code, i.issue.path.clone())))
        .map(|(_, i)| i.issue)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "version": 1,
            "mode": "review",
            "result_format": 2,
            "sources": {"main": {"engine": "postgres", "read_url_env": "MAIN_READ_URL", "write_url_env": "MAIN_WRITE_URL"}},
            "trusted_context": {"provider": "environment"},
            "capabilities": [
                {
                    "name": "billing.inspect_invoice",
                    "kind": "read",
                    "source": "main",
                    "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                    "args": {"invoice_id": {"type": "string", "max_length": 64}},
                    "lookup": {"id_from_arg": "invoice_id"},
                    "visible_columns": ["id", "status"]
                },
                {
                    "name": "billing.propose_status",
                    "kind": "proposal",
                    "source": "main",
                    "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                    "args": {
                        "invoice_id": {"type": "string", "max_length": 64},
                        "status": {"type": "string", "enum": ["paid", "void"]}
                    },
                    "lookup": {"id_from_arg": "invoice_id"},
                    "visible_columns": ["id", "status"],
                    "patch": {"status": {"from_arg": "status"}},
                    "allowed_columns": ["status"],
                    "transition_guards": {"status": {"allowed": {"open": ["paid", "void"]}}},
                    "conflict_guard": {"column": "updated_at"}
                }
            ]
        })
    }

    fn codes(r: &ValidationReport) -> Vec<(&'static str, String)> {
        r.errors.iter().map(|i| (i.code, i.path.clone())).collect()
    }

    #[test]
    fn minimal_config_is_clean_and_parses() {
        let r = validate_value(&minimal());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let (cfg, warnings) = parse_config(&minimal().to_string()).expect("parses");
        assert!(warnings.is_empty());
        assert_eq!(cfg.capabilities.len(), 2);
        assert!(cfg.strict);
    }

    #[test]
    fn paths_render_like_json_path() {
        let p = Path::root().key("capabilities").idx(1).key("target").key("tenant_key");
        assert_eq!(p.render(), "$.capabilities[1].target.tenant_key");
        assert_eq!(
            Path::root().key("contexts").key("local.op-1").render(),
            "$.contexts[\"local.op-1\"]"
        );
        assert_eq!(
            Path::root().key("sources").key("postgres://u:pw@h/db").render(),
            "$.sources[<redacted>]"
        );
    }

    #[test]
    fn reserved_names_compare_case_insensitively() {
        for n in [
            "tenant_id",
            "TENANT_ID",
            "TenantId",
            "tenantid",
            "Schema",
            "COLUMN_NAME",
            "expectedVersion",
            "tenant",
            "Approved_By",
        ] {
            assert!(is_reserved_arg_name(n), "{n}");
        }
        for n in ["invoice_id", "status", "reason", "tenant_name"] {
            assert!(!is_reserved_arg_name(n), "{n}");
        }
    }

    #[test]
    fn collects_all_errors_at_once() {
        let mut doc = minimal();
        doc["version"] = json!(2);
        doc["sources"]["main"]["read_url_env"] = json!("lower-case");
        doc["capabilities"][1]["target"]["tenant_key"] = json!("tenant id");
        doc["capabilities"][0]["args"]["tenant_id"] = json!({"type": "string"});
        let r = validate_value(&doc);
        let c = codes(&r);
        assert!(c.contains(&("UNSUPPORTED_CONFIG_VERSION", "$.version".into())), "{c:?}");
        assert!(
            c.contains(&("READ_URL_ENV_REQUIRED", "$.sources.main.read_url_env".into())),
            "{c:?}"
        );
        assert!(
            c.contains(&(
                "INVALID_TARGET_IDENTIFIER",
                "$.capabilities[1].target.tenant_key".into()
            )),
            "{c:?}"
        );
        assert!(
            c.contains(&(
                "MODEL_CONTROLLED_RESERVED_ARG",
                "$.capabilities[0].args.tenant_id".into()
            )),
            "{c:?}"
        );
        // Document order.
        let pos = |code: &str| c.iter().position(|(k, _)| *k == code).expect("present");
        assert!(pos("UNSUPPORTED_CONFIG_VERSION") < pos("READ_URL_ENV_REQUIRED"));
        assert!(pos("MODEL_CONTROLLED_RESERVED_ARG") < pos("INVALID_TARGET_IDENTIFIER"));
    }

    #[test]
    fn unknown_fields_follow_strict() {
        let mut doc = minimal();
        doc["capabilities"][0]["target"]["colour"] = json!("blue");
        let r = validate_value(&doc);
        assert!(r.has("UNKNOWN_FIELD", "$.capabilities[0].target.colour"));
        doc["strict"] = json!(false);
        let r = validate_value(&doc);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.has("UNKNOWN_FIELD_IGNORED", "$.capabilities[0].target.colour"));
        assert!(parse_config(&doc.to_string()).is_ok());
    }

    #[test]
    fn url_values_are_rejected_without_echo() {
        let mut doc = minimal();
        doc["capabilities"][0]["description"] = json!("Reads from POSTGRES://admin:hunter2@db/prod");
        doc["sources"]["main"]["read_url_env"] = json!("mysql://root:s3cret@x/y");
        let r = validate_value(&doc);
        assert!(r.has("INLINE_DATABASE_URL_FORBIDDEN", "$.capabilities[0].description"));
        assert!(r.has("INLINE_DATABASE_URL_FORBIDDEN", "$.sources.main.read_url_env"));
        for i in &r.errors {
            assert!(!i.message.contains("hunter2") && !i.message.contains("s3cret"), "{i}");
        }
    }

    #[test]
    fn forbidden_keys_anywhere() {
        let mut doc = minimal();
        doc["sources"]["main"]["DATABASE_URL"] = json!("x");
        doc["capabilities"][0]["target"]["rawSql"] = json!("select 1");
        doc["capabilities"][0]["args"]["sql"] = json!({"type": "string"});
        let r = validate_value(&doc);
        assert!(r.has("INLINE_DATABASE_URL_FORBIDDEN", "$.sources.main.DATABASE_URL"));
        assert!(r.has("ARBITRARY_SQL_FORBIDDEN", "$.capabilities[0].target.rawSql"));
        assert!(r.has("ARBITRARY_SQL_FORBIDDEN", "$.capabilities[0].args.sql"));
        // Reported with their own code, not also as unknown fields.
        assert!(!r.has("UNKNOWN_FIELD", "$.sources.main.DATABASE_URL"));
    }

    #[test]
    fn protocol_rules() {
        let mut doc = minimal();
        let cap = &mut doc["capabilities"][1];
        cap["allowed_columns"] = json!(["status", "tenant_id", "updated_at"]);
        cap["patch"]["note"] = json!({"from_arg": "invoice_id"});
        cap["patch"]["flag"] = json!({"fixed": {"nested": true}});
        cap["lookup"]["id_from_arg"] = json!("missing");
        let r = validate_value(&doc);
        let p = "$.capabilities[1]";
        assert!(r.has("ALLOWED_COLUMN_IS_KEY", &format!("{p}.allowed_columns[1]")));
        assert!(r.has("CONFLICT_COLUMN_PATCHED", &format!("{p}.conflict_guard.column")));
        assert!(r.has("PATCH_COLUMN_NOT_ALLOWED", &format!("{p}.patch.note")));
        assert!(r.has("INVALID_FIXED_VALUE", &format!("{p}.patch.flag.fixed")));
        assert!(r.has("LOOKUP_ARG_UNKNOWN", &format!("{p}.lookup.id_from_arg")));

        let mut doc = minimal();
        doc["capabilities"][1]["patch"]["status"] = json!({"from_arg": "invoice_id"});
        let r = validate_value(&doc);
        assert!(r.has("PATCH_FROM_LOOKUP_ARG", "$.capabilities[1].patch.status.from_arg"));
    }

    #[test]
    fn read_capability_write_fields() {
        let mut doc = minimal();
        doc["capabilities"][0]["patch"] = json!({"status": {"fixed": "void"}});
        doc["capabilities"][0]["executor"] = json!("sql_update");
        let r = validate_value(&doc);
        assert!(r.has("READ_CAPABILITY_HAS_WRITE_FIELDS", "$.capabilities[0].patch"));
        assert!(r.has("READ_CAPABILITY_HAS_WRITE_FIELDS", "$.capabilities[0].executor"));
    }

    #[test]
    fn inert_fields_stance() {
        let mut doc = minimal();
        doc.as_object_mut().expect("object").remove("result_format");
        let cap = &mut doc["capabilities"][1];
        cap["evidence"] = json!("optional");
        cap["max_rows"] = json!(5);
        cap["approval"] = json!({"mode": "policy", "required_role": "billing_lead", "required_approvals": 11});
        doc["sources"]["main"]["ssl"] = json!({"mode": "sometimes"});
        let r = validate_value(&doc);
        assert!(r.has("RESULT_FORMAT_DEFAULTS_TO_V1", "$.result_format"));
        assert!(r.has("EVIDENCE_ALWAYS_RECORDED", "$.capabilities[1].evidence"));
        assert!(r.has("MAX_ROWS_UNSUPPORTED", "$.capabilities[1].max_rows"));
        assert!(r.has("APPROVAL_POLICY_NOT_AUTOMATIC", "$.capabilities[1].approval.mode"));
        assert!(r.has(
            "APPROVAL_ROLE_NOT_ENFORCED_LOCALLY",
            "$.capabilities[1].approval.required_role"
        ));
        assert!(r.has(
            "INVALID_REQUIRED_APPROVALS",
            "$.capabilities[1].approval.required_approvals"
        ));
        assert!(r.has("INVALID_SSL", "$.sources.main.ssl.mode"));
    }

    #[test]
    fn writeback_readiness() {
        let mut doc = minimal();
        doc["sources"]["main"]
            .as_object_mut()
            .expect("object")
            .remove("write_url_env");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty());
        assert!(r.has("WRITEBACK_DISABLED", "$.capabilities[1].source"));
        doc["sources"]["main"]["read_only"] = json!(true);
        let r = validate_value(&doc);
        assert!(r.has("READ_ONLY_SOURCE_DIRECT_WRITEBACK", "$.capabilities[1].source"));
        // Shadow mode never applies, so neither rule fires.
        doc["mode"] = json!("shadow");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
    }

    #[test]
    fn trusted_context_rules() {
        let mut doc = minimal();
        doc.as_object_mut().expect("object").remove("trusted_context");
        assert!(validate_value(&doc).has("TRUSTED_CONTEXT_REQUIRED", "$.trusted_context"));
        doc["contexts"] =
            json!({"local.operator": {"provider": "static_dev", "values": {"tenant_id": "acme", "principal": "dev"}}});
        doc["capabilities"][0]["context"] = json!("local.operator");
        doc["capabilities"][1]["context"] = json!("local.operator");
        let r = validate_value(&doc);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.has("STATIC_DEV_CONTEXT", "$.contexts[\"local.operator\"].provider"));
        doc["capabilities"][1]["context"] = json!("other");
        doc["contexts"]["x"] = json!({"provider": "http_claims"});
        let r = validate_value(&doc);
        assert!(r.has("UNKNOWN_CONTEXT", "$.capabilities[1].context"));
        assert!(r.has("TRUSTED_CONTEXT_UNSUPPORTED", "$.contexts.x.provider"));
    }

    #[test]
    fn cloud_is_refused() {
        let mut doc = minimal();
        doc["mode"] = json!("cloud");
        doc["cloud"] = json!({"adapter_id": "a"});
        let r = validate_value(&doc);
        assert!(r.has("CLOUD_MODE_UNSUPPORTED", "$.mode"));
        assert!(r.has("CLOUD_MODE_UNSUPPORTED", "$.cloud"));
    }

    #[test]
    fn duplicate_names_and_single_tenant_dev() {
        let mut doc = minimal();
        doc["capabilities"][1]["name"] = json!("billing.inspect_invoice");
        let t = &mut doc["capabilities"][0]["target"];
        t.as_object_mut().expect("object").remove("tenant_key");
        t["single_tenant_dev"] = json!(true);
        let r = validate_value(&doc);
        assert!(r.has("DUPLICATE_CAPABILITY_NAME", "$.capabilities[1].name"));
        assert!(r.has(
            "SINGLE_TENANT_DEV_EXCEPTION",
            "$.capabilities[0].target.single_tenant_dev"
        ));
        doc["capabilities"][0]["single_tenant_dev_ack"] = json!(true);
        let r = validate_value(&doc);
        assert!(!r.has(
            "SINGLE_TENANT_DEV_EXCEPTION",
            "$.capabilities[0].target.single_tenant_dev"
        ));
    }

    #[test]
    fn fixed_null_and_from_arg_deserialize_to_the_right_variant() {
        let mut doc = minimal();
        doc["capabilities"][1]["patch"]["note"] = json!({"fixed": null});
        doc["capabilities"][1]["allowed_columns"] = json!(["status", "note"]);
        let (cfg, _) = parse_config(&doc.to_string()).expect("parses");
        let patch = &cfg.capabilities[1].patch;
        assert!(matches!(
            &patch["note"],
            crate::config::PatchBinding::Fixed { fixed: Value::Null }
        ));
        assert!(matches!(&patch["status"], crate::config::PatchBinding::FromArg { from_arg } if from_arg == "status"));
    }

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

    #[test]
    fn non_object_documents() {
        for doc in [json!(null), json!([]), json!("postgres://a:b@c/d"), json!(3)] {
            let r = validate_value(&doc);
            assert!(r.has("CONFIG_NOT_OBJECT", "$"), "{doc}");
        }
        let r = parse_config("{ not json").expect_err("invalid");
        assert_eq!(r.errors[0].code, "INVALID_JSON");
    }
}
