//! The typed model of `synapsor.runner.json` version 1.
//!
//! These types are what the rest of the runner uses *after* [`super::validate`] accepted a
//! document: deserializing alone checks shapes, not the safety rules. The JSON Schema in
//! `schemas/synapsor.runner.schema.json` is generated from these types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Synapsor Runner config (synapsor.runner.json)")]
#[schemars(extend(
    "if" = {"properties": {"mode": {"const": "read_only"}}, "required": ["mode"]},
    "then" = {"properties": {"executors": {"maxProperties": 0}}}
))]
pub struct RunnerConfig {
    /// Config schema version; only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// `read_only` exposes only read tools; `shadow` records proposals that are never applied;
    /// `review` records proposals that a human approves and a privileged component applies.
    pub mode: Mode,
    /// Result envelope format returned by tools: `1` (legacy) or `2`. When omitted, `1`, as in
    /// the original; configs this runner generates write `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_format: Option<ResultFormat>,
    /// When true (the default), unknown keys anywhere are errors (`UNKNOWN_FIELD`).
    #[serde(default = "default_true")]
    pub strict: bool,
    /// Where the local ledger lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Source databases by name (names are safe identifiers).
    #[schemars(extend("minProperties" = 1, "propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 63}))]
    pub sources: IndexMap<String, Source>,
    /// The default trusted context: where tenant and principal come from. Never from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_context: Option<TrustedContext>,
    /// Named trusted contexts that capabilities can select with `context`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$", "maxLength": 128}))]
    pub contexts: IndexMap<String, TrustedContext>,
    /// Named writeback executors that proposal capabilities can select with `executor`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$", "maxLength": 128, "not": {"const": "sql_update"}}))]
    pub executors: IndexMap<String, Executor>,
    /// How bearer tokens are verified: for `jwt` contexts (each Streamable HTTP session runs as
    /// the tenant and principal of its token) and for operator tokens on local decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Token-bucket limits on tool calls, per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    /// The reviewed capabilities; each becomes one MCP tool.
    #[schemars(length(min = 1))]
    pub capabilities: Vec<Capability>,
}

fn default_true() -> bool {
    true
}

/// Schema for a JSON scalar (string, number, boolean or null): fixed patch values.
fn scalar_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": ["string", "number", "boolean", "null"] })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    ReadOnly,
    Shadow,
    Review,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read_only",
            Mode::Shadow => "shadow",
            Mode::Review => "review",
        }
    }
}

/// Result envelope version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "u8", into = "u8")]
#[schemars(schema_with = "result_format_schema")]
pub enum ResultFormat {
    V1,
    V2,
}

fn result_format_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "integer", "enum": [1, 2]})
}

/// A `result_format` other than 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("result_format must be 1 or 2, got {0}")]
pub struct ResultFormatInvalid(pub u8);

impl TryFrom<u8> for ResultFormat {
    type Error = ResultFormatInvalid;
    fn try_from(v: u8) -> Result<Self, ResultFormatInvalid> {
        match v {
            1 => Ok(ResultFormat::V1),
            2 => Ok(ResultFormat::V2),
            _ => Err(ResultFormatInvalid(v)),
        }
    }
}

impl From<ResultFormat> for u8 {
    fn from(v: ResultFormat) -> u8 {
        match v {
            ResultFormat::V1 => 1,
            ResultFormat::V2 => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Storage {
    /// Path of the SQLite ledger, relative to the working directory. Default `./.synapsor/local.db`.
    #[schemars(length(min = 1))]
    pub sqlite_path: String,
}

/// A source database. Credentials are never inline: only the *name* of an environment variable
/// holding the URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend(
    "if" = {"properties": {"engine": {"const": "sqlite"}}, "required": ["engine"]},
    "then" = {"not": {"required": ["ssl"]}}
))]
pub struct Source {
    pub engine: Engine,
    /// Environment variable holding the read-only connection URL.
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
    pub read_url_env: String,
    /// Environment variable holding the writer URL used only by guarded writeback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
    pub write_url_env: Option<String>,
    /// Marks the source as never written by direct SQL writeback.
    #[serde(default)]
    pub read_only: bool,
    /// Per-statement timeout for reads, in milliseconds. Default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub statement_timeout_ms: Option<u64>,
    /// TLS for PostgreSQL and MySQL connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<SslConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    Mysql,
    /// A local SQLite file (the embedded engine; used by the demo and for development).
    Sqlite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
}

/// TLS settings; they override any `sslmode`/`ssl-mode` in the URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SslConfig {
    pub mode: SslMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where tenant and principal come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrustedContext {
    pub provider: ContextProvider,
    #[serde(default)]
    pub values: ContextValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = accept_provider_alias)]
pub enum ContextProvider {
    /// Tenant and principal from environment variables of the runner process.
    Environment,
    /// Literal values for local development (warning `STATIC_DEV_CONTEXT`).
    StaticDev,
    /// Tenant and principal from the claims of the verified bearer token that opened the
    /// Streamable HTTP session (`identity` says how tokens are verified and which claims to read).
    /// `http_claims`, the original's name for per-session claims, is accepted as an alias.
    #[serde(alias = "http_claims")]
    Jwt,
    /// Reserved for the hosted service; not supported by this runner (the validator rejects it
    /// with `TRUSTED_CONTEXT_UNSUPPORTED`, and the schema leaves it out).
    #[schemars(skip)]
    CloudSession,
}

/// The schema of `ContextProvider` accepts the alias `http_claims` beside `jwt`, as serde does.
fn accept_provider_alias(schema: &mut schemars::Schema) {
    let Some(Value::Array(variants)) = schema.get_mut("oneOf") else {
        return;
    };
    for v in variants {
        if let Some(obj) = v.as_object_mut()
            && obj.get("const").and_then(Value::as_str) == Some("jwt")
        {
            obj.remove("const");
            obj.insert("enum".into(), serde_json::json!(["jwt", "http_claims"]));
        }
    }
}

impl ContextProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextProvider::Environment => "environment",
            ContextProvider::StaticDev => "static_dev",
            ContextProvider::Jwt => "jwt",
            ContextProvider::CloudSession => "cloud_session",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextValues {
    /// Literal tenant (static_dev only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub tenant_id: Option<String>,
    /// Literal principal (static_dev only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub principal: Option<String>,
    /// Environment variable with the tenant. Default `SYNAPSOR_TENANT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
    pub tenant_id_env: Option<String>,
    /// Environment variable with the principal. Default `SYNAPSOR_PRINCIPAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
    pub principal_env: Option<String>,
}

/// How an approved proposal is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Executor {
    /// Guarded single-row UPDATE through the source's writer URL.
    SqlUpdate {},
    /// A signed HTTP call to an app-owned handler that performs the write.
    #[schemars(extend("dependentRequired" = {"signing_key_id": ["signing_secret_env"]}))]
    HttpHandler {
        #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
        url_env: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<HttpMethod>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<ExecutorAuth>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
        signing_secret_env: Option<String>,
        /// Key id sent with the signature so handlers can rotate secrets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
        signing_key_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 600000))]
        timeout_ms: Option<u64>,
    },
    /// A local command that reads the request on stdin and writes the receipt on stdout.
    CommandHandler {
        #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
        command_env: String,
        /// Environment variable holding the HMAC secret; the signature is passed to the command
        /// in the environment variable `SYNAPSOR_SIGNATURE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
        signing_secret_env: Option<String>,
        /// Key id sent with the signature so handlers can rotate secrets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
        signing_key_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 600000))]
        timeout_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Post,
    Put,
    Patch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutorAuth {
    /// `Authorization: Bearer <env[token_env]>`.
    BearerEnv {
        #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
        token_env: String,
    },
}

/// One reviewed capability: one MCP tool.
///
/// The schema encodes the kind split: proposals need `patch`, `allowed_columns` and
/// `conflict_guard`; reads may not carry any write field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend(
    "if" = {"properties": {"kind": {"const": "proposal"}}, "required": ["kind"]},
    "then" = {"required": ["patch", "allowed_columns", "conflict_guard"]},
    "else" = {"not": {"anyOf": [
        {"required": ["patch"]}, {"required": ["allowed_columns"]}, {"required": ["numeric_bounds"]},
        {"required": ["transition_guards"]}, {"required": ["conflict_guard"]},
        {"required": ["executor"]}, {"required": ["approval"]}
    ]}}
))]
pub struct Capability {
    /// `namespace.name`, e.g. `billing.inspect_invoice`.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    pub kind: CapabilityKind,
    /// What the tool does, in business terms; shown to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub description: Option<String>,
    /// What the result contains; shown to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub returns_hint: Option<String>,
    /// Name of a configured source.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub source: String,
    /// Name of a `contexts` entry; the global `trusted_context` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.-]*$"), length(max = 128))]
    pub context: Option<String>,
    /// `sql_update` (default) or the name of an `executors` entry. Proposal capabilities only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.-]*$"), length(max = 128))]
    pub executor: Option<String>,
    pub target: Target,
    /// Model-facing arguments. Reserved names (tenant, principal, identifiers, versions) are refused.
    #[schemars(extend("minProperties" = 1, "propertyNames" = {
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
        "maxLength": 63,
        "not": {"enum": crate::config::validate::RESERVED_ARG_NAMES}
    }))]
    pub args: IndexMap<String, ArgSpec>,
    pub lookup: Lookup,
    /// The only columns returned to the model.
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))
    )]
    #[schemars(extend("uniqueItems" = true))]
    pub visible_columns: Vec<String>,
    /// Evidence is always recorded; `required` is the only meaningful value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidencePolicy>,
    /// Rows a read may return. Reads are by primary key, so only `1` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub max_rows: Option<u32>,
    /// Proposal: the exact change, column by column.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("minProperties" = 1, "propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 63}))]
    pub patch: IndexMap<String, PatchBinding>,
    /// Proposal: the only columns writeback may change (never the primary or tenant key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))
    )]
    #[schemars(extend("uniqueItems" = true))]
    pub allowed_columns: Vec<String>,
    /// Proposal: inclusive numeric bounds for patched columns.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 63}))]
    pub numeric_bounds: IndexMap<String, NumericBound>,
    /// Proposal: allowed state transitions for patched status columns.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 63}))]
    pub transition_guards: IndexMap<String, TransitionGuard>,
    /// Proposal: the version column compared at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_guard: Option<ConflictGuard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
    /// Acknowledges `target.single_tenant_dev` and silences its warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_tenant_dev_ack: Option<bool>,
    /// A token bucket per tenant for this capability's calls (besides `rate_limits.per_tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<TokenBucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityKind {
    Read,
    Proposal,
}

impl CapabilityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityKind::Read => "read",
            CapabilityKind::Proposal => "proposal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidencePolicy {
    Required,
    Optional,
}

/// The one table a capability reads (and proposes changes to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend(
    "if" = {"properties": {"single_tenant_dev": {"const": true}}, "required": ["single_tenant_dev"]},
    "then" = {"not": {"required": ["tenant_key"]}},
    "else" = {"required": ["tenant_key"]}
))]
pub struct Target {
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub schema: String,
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub table: String,
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub primary_key: String,
    /// The tenant column; required unless `single_tenant_dev` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub tenant_key: Option<String>,
    /// Development only: no tenant column (warning `SINGLE_TENANT_DEV_EXCEPTION`).
    #[serde(default)]
    pub single_tenant_dev: bool,
    /// The column holding the row's owner: reads and proposals are then scoped to the trusted
    /// tenant *and* principal, and writeback checks both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub principal_key: Option<String>,
}

/// One model-facing argument. The schema ties `max_length` to strings, `minimum`/`maximum` to
/// numbers, and `enum` members to the argument's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("allOf" = [
    {
        "if": {"properties": {"type": {"const": "string"}}, "required": ["type"]},
        "then": {"properties": {"enum": {"items": {"type": "string"}}}},
        "else": {"not": {"required": ["max_length"]}}
    },
    {
        "if": {"properties": {"type": {"const": "number"}}, "required": ["type"]},
        "then": {"properties": {"enum": {"items": {"type": "number"}}}},
        "else": {"not": {"anyOf": [{"required": ["minimum"]}, {"required": ["maximum"]}]}}
    },
    {
        "if": {"properties": {"type": {"const": "boolean"}}, "required": ["type"]},
        "then": {"properties": {"enum": {"items": {"type": "boolean"}}}}
    }
]))]
pub struct ArgSpec {
    #[serde(rename = "type")]
    pub arg_type: ArgType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub description: Option<String>,
    /// Default true.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Strings: maximum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_length: Option<u64>,
    /// Numbers: inclusive minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Numbers: inclusive maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The only allowed values: scalars of the argument's type.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("items" = {"type": ["string", "number", "boolean"]}, "uniqueItems" = true))]
    pub allowed: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    String,
    Number,
    Boolean,
}

impl ArgType {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Number => "number",
            ArgType::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lookup {
    /// The argument that holds the primary key value.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub id_from_arg: String,
}

/// A patch column's value: a reviewed constant or a model argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PatchBinding {
    /// A reviewed constant: a string, number, boolean or null.
    Fixed {
        #[schemars(schema_with = "scalar_schema")]
        fixed: Value,
    },
    /// The value of a model argument.
    FromArg {
        #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
        from_arg: String,
    },
}

/// Inclusive bounds; at least one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("minProperties" = 1))]
pub struct NumericBound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransitionGuard {
    /// Column holding the current state; the patched column itself when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub from_column: Option<String>,
    /// `from state -> [allowed to states]`.
    #[schemars(extend(
        "minProperties" = 1,
        "propertyNames" = {"minLength": 1},
        "additionalProperties" = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
    ))]
    pub allowed: IndexMap<String, Vec<String>>,
}

/// A version column, or an explicit acknowledgement of the weaker row-hash guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("anyOf" = [
    {"required": ["column"]},
    {"required": ["weak_guard_ack"], "properties": {"weak_guard_ack": {"const": true}}}
]))]
pub struct ConflictGuard {
    /// Version column (e.g. `updated_at`, `version`) compared at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 63))]
    pub column: Option<String>,
    /// Accept a weaker guard: a hash of the whole row as read (no version column).
    #[serde(default)]
    pub weak_guard_ack: bool,
    /// Advance the version column in the guarded UPDATE, for apps that do not do it themselves:
    /// `timestamp` (the database's current time, never earlier than the old value) or
    /// `increment` (+1). Without it a later proposal made on the old version would apply over a
    /// change it never saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance: Option<VersionAdvance>,
}

/// How apply advances a version column (`conflict_guard.advance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionAdvance {
    /// The database's current time (timestamp, datetime or ISO-8601 text columns).
    Timestamp,
    /// The old value plus one (integer columns).
    Increment,
}

impl VersionAdvance {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionAdvance::Timestamp => "timestamp",
            VersionAdvance::Increment => "increment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalPolicy {
    /// `human` (default) or `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ApprovalMode>,
    /// In Kubernetes mode the approver must belong to this Kubernetes group (as the API server
    /// authenticated them) besides being allowed the RBAC verb `approve`. Local approve, reject
    /// and apply then need a verified operator token (`identity.operator`) carrying this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub required_role: Option<String>,
    /// Distinct approvers needed before apply. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub required_approvals: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    Human,
    Policy,
}

/// How bearer tokens (JWTs) are verified. One verifier serves the MCP sessions (`audience`) and,
/// with `operator`, the operators' local decisions (`operator.audience`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    /// The exact `iss` every token must carry.
    #[schemars(length(min = 1, max = 512))]
    pub issuer: String,
    /// The `aud` a session token must carry (one of its audiences).
    #[schemars(length(min = 1, max = 512))]
    pub audience: String,
    /// Where the verification keys come from: exactly one of the three.
    pub keys: IdentityKeys,
    /// Accepted `alg` values. Never `none`; HMAC and public-key algorithms are not mixed.
    #[schemars(length(min = 1))]
    #[schemars(extend("uniqueItems" = true))]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Claim holding the tenant: a top-level name, or a dotted path (`org.id`) into nested
    /// objects. The value must be a non-empty string.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[!-~]+$"))]
    pub tenant_claim: String,
    /// Claim holding the principal (same rules). Default `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[!-~]+$"))]
    pub principal_claim: Option<String>,
    /// Tokens whose `iat` is older than this are refused (`iat` is then required). Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub max_token_age_seconds: Option<u64>,
    /// Leeway for `exp`, `nbf` and `iat`. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 300))]
    pub clock_skew_seconds: Option<u64>,
    /// Least time between two fetches of `keys.jwks_url` (a token with an unknown `kid` asks for
    /// a refresh). Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub jwks_refresh_min_seconds: Option<u64>,
    /// Authorization servers named in the protected-resource metadata
    /// (`/.well-known/oauth-protected-resource`). Default: the issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 512), regex(pattern = r"^https?://[^\s@/]+")))]
    pub authorization_servers: Vec<String>,
    /// The public URL of the MCP endpoint, as clients reach it (`resource` in the metadata).
    /// Default: built from the request's `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^https?://[^\s@/]+"))]
    pub resource: Option<String>,
    /// Operator tokens for local approve, reject and apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorIdentity>,
}

impl Identity {
    pub const DEFAULT_PRINCIPAL_CLAIM: &'static str = "sub";
    pub const DEFAULT_MAX_TOKEN_AGE_SECONDS: u64 = 3600;
    pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 30;
    pub const DEFAULT_JWKS_REFRESH_MIN_SECONDS: u64 = 5;

    pub fn principal_claim(&self) -> &str {
        self.principal_claim.as_deref().unwrap_or(Self::DEFAULT_PRINCIPAL_CLAIM)
    }

    /// The authorization servers to advertise: the configured ones, else the issuer.
    pub fn authorization_servers(&self) -> Vec<String> {
        if self.authorization_servers.is_empty() {
            vec![self.issuer.clone()]
        } else {
            self.authorization_servers.clone()
        }
    }
}

/// Exactly one source of verification keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct IdentityKeys {
    /// A JWKS URL (the company IdP's `jwks_uri`): fetched at start, cached, refreshed when a token
    /// names an unknown `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://[^\s@/]+"))]
    pub jwks_url: Option<String>,
    /// A local JWK-set file (static public keys), relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub jwks_file: Option<String>,
    /// Environment variable holding the HMAC secret an app signs its own tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"))]
    pub hmac_secret_env: Option<String>,
}

/// JWS algorithms a verifier may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    /// HMAC algorithms use a shared secret; the others a public key.
    pub fn is_hmac(self) -> bool {
        matches!(self, JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::HS384 => "HS384",
            JwtAlgorithm::HS512 => "HS512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }

    pub const ALL: [JwtAlgorithm; 12] = [
        JwtAlgorithm::HS256,
        JwtAlgorithm::HS384,
        JwtAlgorithm::HS512,
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::EdDSA,
    ];
}

/// Operator tokens: verified like session tokens, but for another audience, and carrying roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorIdentity {
    /// The `aud` an operator token must carry; must differ from the session `audience`.
    #[schemars(length(min = 1, max = 512))]
    pub audience: String,
    /// Claim holding the operator's roles (a string or an array of strings; dotted paths allowed).
    /// Default `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[!-~]+$"))]
    pub roles_claim: Option<String>,
}

impl OperatorIdentity {
    pub const DEFAULT_ROLES_CLAIM: &'static str = "roles";

    pub fn roles_claim(&self) -> &str {
        self.roles_claim.as_deref().unwrap_or(Self::DEFAULT_ROLES_CLAIM)
    }
}

/// Limits on tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimits {
    /// One bucket per tenant, shared by all its sessions and capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_tenant: Option<TokenBucket>,
}

/// A token bucket: up to `capacity` calls at once, refilled at `refill_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenBucket {
    #[schemars(range(min = 1, max = 1000000))]
    pub capacity: u32,
    #[schemars(range(min = 0.001, max = 1000000))]
    pub refill_per_second: f64,
}
