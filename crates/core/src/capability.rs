//! Capabilities compiled from a validated config: what a tool call may do, checked in order.
//!
//! A [`Capability`] is built once at startup. At call time it checks the model's arguments
//! ([`Capability::check_args`]), says what to read ([`ReadSpec`]), filters the row down to the
//! visible columns, and for proposals builds the exact patch and checks its guards
//! ([`Capability::build_patch`]). Tenant and principal come from [`TrustedContext`], resolved from
//! the runner's environment or from the verified token of the caller's session ([`Caller`]), never
//! from arguments.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{
    self, ArgSpec, ArgType, CapabilityKind, ContextProvider, Engine, PatchBinding, RunnerConfig, TokenBucket,
};
use crate::context::Env;
use crate::error::{ToolCode, ToolError};
use crate::ident::SafeIdent;

/// Argument names a model may never send, whatever the capability says: they carry trust or
/// identifiers. The same list the config validator refuses in `args`, compared the same way.
pub use crate::config::validate::RESERVED_ARG_NAMES;

/// True when `name` is a reserved model-facing argument name.
pub fn is_reserved_arg(name: &str) -> bool {
    crate::config::validate::is_reserved_arg_name(name)
}

/// Where the trusted tenant and principal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    Environment,
    StaticDev,
    Kubernetes,
    /// The claims of a verified bearer token.
    Jwt,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Environment => "environment",
            Provenance::StaticDev => "static_dev",
            Provenance::Kubernetes => "kubernetes",
            Provenance::Jwt => "jwt",
        }
    }
}

/// Who a verified token says the caller is, as recorded in the ledger and on a `Proposal`:
/// issuer, subject and token id. Never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// The token's `jti`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A caller whose bearer token was verified: the tenant and principal its claims name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    pub tenant_id: String,
    pub principal: String,
    pub identity: VerifiedIdentity,
    /// `exp` of the token, in seconds since the epoch.
    pub expires_at: u64,
}

/// Who is calling a tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Caller {
    /// The runner's own process: stdio, Streamable HTTP with the static shared token, the CLI.
    /// Contexts read the environment.
    #[default]
    Process,
    /// A Streamable HTTP session opened with a verified token. Only `jwt` contexts serve it.
    Verified(Arc<VerifiedCaller>),
}

/// The tenant and principal a call runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedContext {
    pub tenant_id: String,
    pub principal: String,
    pub provenance: Provenance,
    /// The verified token's identity, for `jwt` contexts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<VerifiedIdentity>,
}

/// The environment variable holding the tenant when a context does not name one.
pub const DEFAULT_TENANT_ENV: &str = "SYNAPSOR_TENANT_ID";
/// The environment variable holding the principal when a context does not name one.
pub const DEFAULT_PRINCIPAL_ENV: &str = "SYNAPSOR_PRINCIPAL";

/// The environment variables a context reads the tenant and principal from, in that order
/// (none for `static_dev`, whose values are in the config, and for unsupported providers).
pub fn context_env_names(ctx: &config::TrustedContext) -> Vec<&str> {
    match ctx.provider {
        ContextProvider::Environment => vec![
            ctx.values.tenant_id_env.as_deref().unwrap_or(DEFAULT_TENANT_ENV),
            ctx.values.principal_env.as_deref().unwrap_or(DEFAULT_PRINCIPAL_ENV),
        ],
        ContextProvider::StaticDev | ContextProvider::Jwt | ContextProvider::CloudSession => vec![],
    }
}

/// Resolves a configured context for a caller: a `jwt` context takes the verified caller's
/// claims; the others read the runner's environment (`env` looks a name up) and serve only the
/// runner's own process, so a session token can never run as the process's tenant.
pub fn resolve_context(
    ctx: &config::TrustedContext,
    env: &dyn Env,
    caller: &Caller,
) -> Result<TrustedContext, ToolError> {
    match (ctx.provider, caller) {
        (ContextProvider::Jwt, Caller::Verified(c)) => {
            return Ok(TrustedContext {
                tenant_id: c.tenant_id.clone(),
                principal: c.principal.clone(),
                provenance: Provenance::Jwt,
                identity: Some(c.identity.clone()),
            });
        }
        (ContextProvider::Jwt, Caller::Process) => {
            return Err(ToolError::new(
                ToolCode::TrustedBindingMissing,
                "this capability takes tenant and principal from a verified session token: call it over Streamable HTTP with a bearer token",
            ));
        }
        (_, Caller::Verified(_)) => {
            return Err(ToolError::new(
                ToolCode::TrustedContextUnsupported,
                format!(
                    "a capability with a {} context cannot serve a token-verified session",
                    ctx.provider.as_str()
                ),
            ));
        }
        (_, Caller::Process) => {}
    }
    let v = &ctx.values;
    let tenant_env = v.tenant_id_env.as_deref().unwrap_or(DEFAULT_TENANT_ENV);
    let principal_env = v.principal_env.as_deref().unwrap_or(DEFAULT_PRINCIPAL_ENV);
    let (tenant, principal, provenance) = match ctx.provider {
        ContextProvider::Environment => (env.var(tenant_env), env.var(principal_env), Provenance::Environment),
        ContextProvider::StaticDev => (
            env.var(tenant_env).or_else(|| v.tenant_id.clone()),
            env.var(principal_env).or_else(|| v.principal.clone()),
            Provenance::StaticDev,
        ),
        ContextProvider::Jwt | ContextProvider::CloudSession => {
            return Err(ToolError::new(
                ToolCode::TrustedContextUnsupported,
                format!(
                    "trusted context provider {} is not supported here",
                    ctx.provider.as_str()
                ),
            ));
        }
    };
    match (tenant, principal) {
        (Some(tenant_id), Some(principal)) => Ok(TrustedContext {
            tenant_id,
            principal,
            provenance,
            identity: None,
        }),
        (t, _) => Err(ToolError::new(
            ToolCode::TrustedBindingMissing,
            format!(
                "trusted {} is not set: set the environment variable {}",
                if t.is_none() { "tenant" } else { "principal" },
                if t.is_none() { tenant_env } else { principal_env }
            ),
        )),
    }
}

/// What a scoped read selects. Identifiers are checked; values are always bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSpec {
    pub schema: SafeIdent,
    pub table: SafeIdent,
    pub primary_key: SafeIdent,
    /// `None` only for `single_tenant_dev` targets.
    pub tenant_key: Option<SafeIdent>,
    /// The row owner's column, when reads and proposals are scoped to the principal too.
    pub principal_key: Option<SafeIdent>,
    /// Every column read: visible columns plus the keys, version and transition-source columns
    /// the runner needs for evidence and guards. Only `visible_columns` reach the model.
    pub columns: Vec<SafeIdent>,
}

impl ReadSpec {
    /// The statement shape recorded in the query audit (no values, `?` placeholders).
    pub fn statement_template(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(SafeIdent::as_str).collect();
        let mut tenant = match &self.tenant_key {
            Some(t) => format!(" AND {t} = ?"),
            None => String::new(),
        };
        if let Some(p) = &self.principal_key {
            tenant.push_str(&format!(" AND {p} = ?"));
        }
        format!(
            "SELECT {} FROM {}.{} WHERE {} = ?{tenant} LIMIT 1",
            cols.join(", "),
            self.schema,
            self.table,
            self.primary_key
        )
    }
}

/// Validated arguments of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedArgs {
    pub values: Map<String, Value>,
    /// The primary key value, as text (what the read binds).
    pub lookup_id: String,
}

/// A patch with its before/after diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuiltPatch {
    pub patch: Map<String, Value>,
    pub before: Map<String, Value>,
    pub after: Map<String, Value>,
    /// `{column, value}` of the version guard; `__row_hash` with a digest for weak guards.
    pub expected_version: (String, Value),
}

/// One capability, ready to serve calls.
#[derive(Debug, Clone)]
pub struct Capability {
    pub name: String,
    pub kind: CapabilityKind,
    pub description: Option<String>,
    pub returns_hint: Option<String>,
    pub source: String,
    pub engine: Engine,
    pub context: config::TrustedContext,
    pub args: IndexMap<String, ArgSpec>,
    pub lookup_arg: String,
    pub read: ReadSpec,
    pub visible_columns: Vec<String>,
    pub patch: IndexMap<String, PatchBinding>,
    pub allowed_columns: Vec<String>,
    pub numeric_bounds: IndexMap<String, config::NumericBound>,
    pub transition_guards: IndexMap<String, config::TransitionGuard>,
    pub conflict_column: Option<String>,
    pub weak_guard_ack: bool,
    /// `conflict_guard.advance`: how apply moves the version column.
    pub version_advance: Option<config::VersionAdvance>,
    /// `sql_update` or an executor name.
    pub executor: String,
    pub required_approvals: u32,
    pub required_role: Option<String>,
    /// A token bucket per tenant for this capability's calls.
    pub rate_limit: Option<TokenBucket>,
    /// For `jwt` contexts: the claims holding tenant and principal (shown by `tools preview`).
    pub token_claims: Option<(String, String)>,
}

fn ident(s: &str) -> Result<SafeIdent, ToolError> {
    SafeIdent::new(s).ok_or_else(|| {
        ToolError::new(
            ToolCode::UnsafeIdentifier,
            format!("unsafe identifier in config: {s:?}"),
        )
    })
}

/// Compiles every capability of a validated config.
pub fn compile(cfg: &RunnerConfig) -> Result<Vec<Capability>, ToolError> {
    cfg.capabilities.iter().map(|c| compile_one(cfg, c)).collect()
}

fn compile_one(cfg: &RunnerConfig, c: &config::Capability) -> Result<Capability, ToolError> {
    let internal = |m: String| ToolError::new(ToolCode::Internal, m);
    let source = cfg
        .sources
        .get(&c.source)
        .ok_or_else(|| internal(format!("capability {} names unknown source {}", c.name, c.source)))?;
    let context = match &c.context {
        Some(name) => cfg.contexts.get(name).cloned(),
        None => cfg.trusted_context.clone(),
    }
    .ok_or_else(|| internal(format!("capability {} has no trusted context", c.name)))?;

    let t = &c.target;
    let tenant_key = if t.single_tenant_dev {
        None
    } else {
        t.tenant_key.as_deref()
    };
    let conflict_column = c.conflict_guard.as_ref().and_then(|g| g.column.clone());
    let mut columns: Vec<SafeIdent> = Vec::new();
    let mut push = |name: &str| -> Result<(), ToolError> {
        let id = ident(name)?;
        if !columns.contains(&id) {
            columns.push(id);
        }
        Ok(())
    };
    push(&t.primary_key)?;
    if let Some(tk) = tenant_key {
        push(tk)?;
    }
    if let Some(pk) = &t.principal_key {
        push(pk)?;
    }
    for col in &c.visible_columns {
        push(col)?;
    }
    if let Some(col) = &conflict_column {
        push(col)?;
    }
    for (col, guard) in &c.transition_guards {
        push(guard.from_column.as_deref().unwrap_or(col))?;
    }
    for col in c.patch.keys() {
        push(col)?;
    }
    let read = ReadSpec {
        schema: ident(&t.schema)?,
        table: ident(&t.table)?,
        primary_key: ident(&t.primary_key)?,
        tenant_key: tenant_key.map(ident).transpose()?,
        principal_key: t.principal_key.as_deref().map(ident).transpose()?,
        columns,
    };
    let token_claims = match (context.provider, &cfg.identity) {
        (ContextProvider::Jwt, Some(id)) => Some((id.tenant_claim.clone(), id.principal_claim().to_owned())),
        _ => None,
    };
    Ok(Capability {
        name: c.name.clone(),
        kind: c.kind,
        description: c.description.clone(),
        returns_hint: c.returns_hint.clone(),
        source: c.source.clone(),
        engine: source.engine,
        context,
        args: c.args.clone(),
        lookup_arg: c.lookup.id_from_arg.clone(),
        read,
        visible_columns: c.visible_columns.clone(),
        patch: c.patch.clone(),
        allowed_columns: if c.allowed_columns.is_empty() {
            c.patch.keys().cloned().collect()
        } else {
            c.allowed_columns.clone()
        },
        numeric_bounds: c.numeric_bounds.clone(),
        transition_guards: c.transition_guards.clone(),
        conflict_column,
        weak_guard_ack: c.conflict_guard.as_ref().is_some_and(|g| g.weak_guard_ack),
        version_advance: c.conflict_guard.as_ref().and_then(|g| g.advance),
        executor: c.executor.clone().unwrap_or_else(|| "sql_update".into()),
        required_approvals: c.approval.as_ref().and_then(|a| a.required_approvals).unwrap_or(1),
        required_role: c.approval.as_ref().and_then(|a| a.required_role.clone()),
        rate_limit: c.rate_limit,
        token_claims,
    })
}

fn number_of(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

impl Capability {
    /// `schema.table`.
    pub fn target_name(&self) -> String {
        format!("{}.{}", self.read.schema, self.read.table)
    }

    /// Checks the model's arguments: an object, no reserved or unknown names, required present,
    /// types, lengths, ranges and enums as reviewed.
    pub fn check_args(&self, args: &Value) -> Result<CheckedArgs, ToolError> {
        let obj = match args {
            Value::Object(o) => o,
            Value::Null => &Map::new(),
            _ => {
                return Err(ToolError::new(
                    ToolCode::ArgumentsNotObject,
                    "tool arguments must be a JSON object",
                ));
            }
        };
        if let Some(name) = obj.keys().find(|k| is_reserved_arg(k)) {
            return Err(ToolError::new(
                ToolCode::ModelCannotOverrideBinding,
                format!("argument {name:?} is a trusted binding and cannot be set by the caller"),
            ));
        }
        if let Some(name) = obj.keys().find(|k| !self.args.contains_key(*k)) {
            return Err(ToolError::new(
                ToolCode::ArgumentUnknown,
                format!("argument {:?} is not an argument of {}", truncate(name, 64), self.name),
            ));
        }
        let mut values = Map::new();
        for (name, spec) in &self.args {
            match obj.get(name) {
                None | Some(Value::Null) => {
                    if spec.required {
                        return Err(ToolError::new(
                            ToolCode::ArgumentRequired,
                            format!("argument {name} is required"),
                        ));
                    }
                }
                Some(v) => {
                    check_arg(name, spec, v)?;
                    values.insert(name.clone(), v.clone());
                }
            }
        }
        let lookup_id = match values.get(&self.lookup_arg) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => {
                return Err(ToolError::new(
                    ToolCode::ArgumentRequired,
                    format!("argument {} is required", self.lookup_arg),
                ));
            }
        };
        Ok(CheckedArgs { values, lookup_id })
    }

    /// The row with only the reviewed visible columns, in their configured order.
    pub fn visible_row(&self, row: &Map<String, Value>) -> Map<String, Value> {
        self.visible_columns
            .iter()
            .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
            .collect()
    }

    /// Builds the exact patch from fixed values and arguments, and checks bounds and transitions
    /// against the row as read (`before` holds every column of [`ReadSpec::columns`]).
    pub fn build_patch(&self, args: &CheckedArgs, row: &Map<String, Value>) -> Result<BuiltPatch, ToolError> {
        let mut patch = Map::new();
        for (col, binding) in &self.patch {
            let v = match binding {
                PatchBinding::Fixed { fixed } => fixed.clone(),
                PatchBinding::FromArg { from_arg } => args.values.get(from_arg).cloned().unwrap_or(Value::Null),
            };
            patch.insert(col.clone(), v);
        }
        for (col, bound) in &self.numeric_bounds {
            let Some(v) = patch.get(col) else { continue };
            let n = number_of(v).ok_or_else(|| {
                ToolError::new(
                    ToolCode::PatchNumericBoundTypeInvalid,
                    format!("patch value for {col} must be a number"),
                )
            })?;
            if bound.minimum.is_some_and(|m| n < m) {
                return Err(ToolError::new(
                    ToolCode::PatchBelowMinimum,
                    format!("patch value for {col} is below its minimum"),
                ));
            }
            if bound.maximum.is_some_and(|m| n > m) {
                return Err(ToolError::new(
                    ToolCode::PatchAboveMaximum,
                    format!("patch value for {col} is above its maximum"),
                ));
            }
        }
        for (col, guard) in &self.transition_guards {
            let Some(proposed) = patch.get(col) else { continue };
            let from_col = guard.from_column.as_deref().unwrap_or(col);
            let (Some(current), Some(proposed)) = (row.get(from_col).and_then(Value::as_str), proposed.as_str()) else {
                return Err(ToolError::new(
                    ToolCode::PatchTransitionTypeInvalid,
                    format!("transition of {col} needs text states"),
                ));
            };
            let allowed = guard
                .allowed
                .get(current)
                .is_some_and(|to| to.iter().any(|t| t == proposed));
            if !allowed {
                return Err(ToolError::new(
                    ToolCode::PatchTransitionNotAllowed,
                    format!("{col} may not move from {current:?} to {:?}", truncate(proposed, 64)),
                ));
            }
        }
        let before: Map<String, Value> = row.clone();
        let mut after = before.clone();
        for (k, v) in &patch {
            after.insert(k.clone(), v.clone());
        }
        let expected_version = match &self.conflict_column {
            Some(col) => {
                let v = row.get(col).cloned().unwrap_or(Value::Null);
                if v.is_null() {
                    return Err(ToolError::new(
                        ToolCode::ConflictGuardMissing,
                        format!("version column {col} is null on this row, so a stale write could not be detected"),
                    ));
                }
                (col.clone(), v)
            }
            None if self.weak_guard_ack => (
                "__row_hash".to_owned(),
                Value::String(crate::digest::digest_value(&Value::Object(before.clone()))),
            ),
            None => {
                return Err(ToolError::new(
                    ToolCode::ConflictGuardMissing,
                    "capability has no conflict guard",
                ));
            }
        };
        Ok(BuiltPatch {
            patch,
            before,
            after,
            expected_version,
        })
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).chain("…".chars()).collect()
    }
}

fn check_arg(name: &str, spec: &ArgSpec, v: &Value) -> Result<(), ToolError> {
    let type_err = || {
        ToolError::new(
            ToolCode::ArgumentTypeInvalid,
            format!("argument {name} must be a {}", spec.arg_type.as_str()),
        )
    };
    match spec.arg_type {
        ArgType::String => {
            let s = v.as_str().ok_or_else(type_err)?;
            if let Some(max) = spec.max_length
                && s.chars().count() as u64 > max
            {
                return Err(ToolError::new(
                    ToolCode::ArgumentTooLong,
                    format!("argument {name} is longer than {max} characters"),
                ));
            }
            if s.contains('\0') {
                return Err(ToolError::new(
                    ToolCode::ArgumentTypeInvalid,
                    format!("argument {name} contains a NUL character"),
                ));
            }
            // Before anything is read or recorded: a credential in an argument would otherwise
            // reach the ledger, the proposal's diff and the reviewer's screen.
            if crate::secrets::is_secret_value(s) {
                return Err(ToolError::new(
                    ToolCode::ArgumentSecretMaterial,
                    format!(
                        "argument {name} looks like a credential (a connection URL, key, token or private key); credentials are never accepted as tool arguments"
                    ),
                ));
            }
        }
        ArgType::Number => {
            let n = number_of(v).ok_or_else(type_err)?;
            if spec.minimum.is_some_and(|m| n < m) {
                return Err(ToolError::new(
                    ToolCode::ArgumentBelowMinimum,
                    format!("argument {name} is below its minimum"),
                ));
            }
            if spec.maximum.is_some_and(|m| n > m) {
                return Err(ToolError::new(
                    ToolCode::ArgumentAboveMaximum,
                    format!("argument {name} is above its maximum"),
                ));
            }
        }
        ArgType::Boolean => {
            v.as_bool().ok_or_else(type_err)?;
        }
    }
    if let Some(allowed) = &spec.allowed
        && !allowed
            .iter()
            .any(|a| a == v || (number_of(a).is_some() && number_of(a) == number_of(v)))
    {
        return Err(ToolError::new(
            ToolCode::ArgumentNotAllowed,
            format!("argument {name} is not one of the allowed values"),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn cfg() -> RunnerConfig {
        let doc = json!({
            "version": 1, "mode": "review", "result_format": 2,
            "sources": {"main": {"engine": "postgres", "read_url_env": "READ_URL", "write_url_env": "WRITE_URL"}},
            "trusted_context": {"provider": "environment"},
            "capabilities": [{
                "name": "billing.propose_fee", "kind": "proposal", "source": "main",
                "description": "Propose a fee.",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {
                    "invoice_id": {"type": "string", "max_length": 16},
                    "fee": {"type": "number", "minimum": -100000, "maximum": 100000},
                    "status": {"type": "string", "enum": ["paid", "void"], "required": false}
                },
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "fee", "status"],
                "patch": {"fee": {"from_arg": "fee"}, "status": {"fixed": "paid"}},
                "allowed_columns": ["fee", "status"],
                "numeric_bounds": {"fee": {"minimum": 0, "maximum": 5000}},
                "transition_guards": {"status": {"allowed": {"open": ["paid"]}}},
                "conflict_guard": {"column": "updated_at"}
            }]
        });
        let (cfg, _) = crate::config::parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("{:?}", r.errors));
        cfg
    }

    fn cap() -> Capability {
        compile(&cfg()).unwrap().remove(0)
    }

    fn row(status: &str) -> Map<String, Value> {
        json!({"id": "INV-1", "tenant_id": "acme", "fee": 100, "status": status, "updated_at": "2026-01-01T00:00:00Z"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn read_spec_selects_keys_version_and_visible_columns_once() {
        let c = cap();
        let cols: Vec<&str> = c.read.columns.iter().map(SafeIdent::as_str).collect();
        assert_eq!(cols, ["id", "tenant_id", "fee", "status", "updated_at"]);
        assert_eq!(
            c.read.statement_template(),
            "SELECT id, tenant_id, fee, status, updated_at FROM public.invoices WHERE id = ? AND tenant_id = ? LIMIT 1"
        );
    }

    #[test]
    fn visible_row_drops_everything_else() {
        let c = cap();
        let v = c.visible_row(&row("open"));
        assert_eq!(v.keys().collect::<Vec<_>>(), ["id", "fee", "status"]);
    }

    #[test]
    fn patch_diff_and_expected_version() {
        let c = cap();
        let args = c.check_args(&json!({"invoice_id": "INV-1", "fee": 250})).unwrap();
        let built = c.build_patch(&args, &row("open")).unwrap();
        assert_eq!(
            Value::Object(built.patch.clone()),
            json!({"fee": 250, "status": "paid"})
        );
        assert_eq!(built.after["fee"], json!(250));
        assert_eq!(built.before["fee"], json!(100));
        assert_eq!(
            built.expected_version,
            ("updated_at".to_owned(), json!("2026-01-01T00:00:00Z"))
        );
        let err = c.build_patch(&args, &row("paid")).unwrap_err();
        assert_eq!(err.code, ToolCode::PatchTransitionNotAllowed);
        let mut no_version = row("open");
        no_version.insert("updated_at".into(), Value::Null);
        assert_eq!(
            c.build_patch(&args, &no_version).unwrap_err().code,
            ToolCode::ConflictGuardMissing
        );
    }

    #[test]
    fn a_credential_in_any_string_argument_is_refused_one_way_and_not_echoed() {
        let mut c = cap();
        c.args.get_mut("invoice_id").unwrap().max_length = Some(200);
        for secret in [
            "postgres://app:hunter2@db/billing",
            "sk-live-4eC39HqLyjWDarjtT1zdp7dc",
            "AKIAIOSFODNN7EXAMPLE",
            "Bearer abcdefghijklmnopqrstuvwxyz0123",
        ] {
            let err = c.check_args(&json!({"invoice_id": secret, "fee": 1})).unwrap_err();
            assert_eq!(err.code, ToolCode::ArgumentSecretMaterial, "{secret}");
            assert_eq!(err.code.safe_code(), crate::error::SafeCode::InvalidArgument);
            assert!(!err.message.contains(secret), "{}", err.message);
        }
        assert!(c.check_args(&json!({"invoice_id": "INV-1", "fee": 1})).is_ok());
    }

    #[test]
    fn context_comes_from_the_environment_only() {
        let c = cap();
        let env: HashMap<String, String> = [("SYNAPSOR_TENANT_ID", "acme"), ("SYNAPSOR_PRINCIPAL", "agent")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let ctx = resolve_context(&c.context, &env, &Caller::Process).unwrap();
        assert_eq!((ctx.tenant_id.as_str(), ctx.principal.as_str()), ("acme", "agent"));
        let empty: HashMap<String, String> = [("SYNAPSOR_TENANT_ID", "  "), ("SYNAPSOR_PRINCIPAL", "agent")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            resolve_context(&c.context, &empty, &Caller::Process).unwrap_err().code,
            ToolCode::TrustedBindingMissing
        );
    }

    #[test]
    fn a_verified_caller_is_served_by_jwt_contexts_only() {
        let mut c = cap();
        let env: HashMap<String, String> = [("SYNAPSOR_TENANT_ID", "acme"), ("SYNAPSOR_PRINCIPAL", "agent")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let caller = Caller::Verified(Arc::new(VerifiedCaller {
            tenant_id: "globex".into(),
            principal: "u-7".into(),
            identity: VerifiedIdentity {
                issuer: "https://idp".into(),
                subject: "u-7".into(),
                jti: Some("t1".into()),
            },
            expires_at: 0,
        }));
        // An environment context never runs a session as the process's tenant.
        assert_eq!(
            resolve_context(&c.context, &env, &caller).unwrap_err().code,
            ToolCode::TrustedContextUnsupported
        );
        c.context.provider = config::ContextProvider::Jwt;
        let ctx = resolve_context(&c.context, &env, &caller).unwrap();
        assert_eq!((ctx.tenant_id.as_str(), ctx.principal.as_str()), ("globex", "u-7"));
        assert_eq!(ctx.provenance, Provenance::Jwt);
        assert_eq!(ctx.identity.unwrap().jti.as_deref(), Some("t1"));
        // And a jwt context never falls back to the environment.
        assert_eq!(
            resolve_context(&c.context, &env, &Caller::Process).unwrap_err().code,
            ToolCode::TrustedBindingMissing
        );
    }

    #[test]
    fn context_env_names_follow_the_config() {
        let mut c = cap();
        assert_eq!(
            context_env_names(&c.context),
            ["SYNAPSOR_TENANT_ID", "SYNAPSOR_PRINCIPAL"]
        );
        c.context.values.tenant_id_env = Some("APP_TENANT".into());
        c.context.values.principal_env = Some("APP_AGENT".into());
        assert_eq!(context_env_names(&c.context), ["APP_TENANT", "APP_AGENT"]);
        c.context.provider = config::ContextProvider::StaticDev;
        assert!(context_env_names(&c.context).is_empty());
    }

    proptest! {
        #[test]
        fn check_args_never_panics_and_only_accepts_reviewed_shapes(
            args in proptest::collection::btree_map("[a-zA-Z_]{1,12}", prop_oneof![
                Just(Value::Null), any::<bool>().prop_map(Value::from), any::<f64>().prop_map(|f| json!(f)),
                "\\PC{0,24}".prop_map(Value::from),
            ], 0..5)
        ) {
            let c = cap();
            let obj: Map<String, Value> = args.into_iter().collect();
            if let Ok(checked) = c.check_args(&Value::Object(obj.clone())) {
                for k in checked.values.keys() {
                    prop_assert!(c.args.contains_key(k));
                }
                prop_assert!(obj.keys().all(|k| c.args.contains_key(k)));
            }
        }

        #[test]
        fn reserved_names_are_refused_in_any_case(idx in 0..RESERVED_ARG_NAMES.len(), upper in any::<bool>()) {
            let c = cap();
            let name = RESERVED_ARG_NAMES[idx];
            let name = if upper { name.to_uppercase() } else { name.to_owned() };
            let err = c.check_args(&json!({"invoice_id": "INV-1", "fee": 1, name: "x"})).unwrap_err();
            prop_assert_eq!(err.code, ToolCode::ModelCannotOverrideBinding);
        }

        #[test]
        fn numeric_bounds_hold(fee in -100000.0f64..100000.0) {
            let c = cap();
            let args = c.check_args(&json!({"invoice_id": "INV-1", "fee": fee})).unwrap();
            match c.build_patch(&args, &row("open")) {
                Ok(b) => {
                    let v = b.patch["fee"].as_f64().unwrap();
                    prop_assert!((0.0..=5000.0).contains(&v));
                }
                Err(e) => {
                    prop_assert!(!(0.0..=5000.0).contains(&fee));
                    prop_assert!(matches!(e.code, ToolCode::PatchBelowMinimum | ToolCode::PatchAboveMaximum));
                }
            }
        }

        #[test]
        fn string_length_limit_counts_characters(s in "\\PC{0,40}") {
            let c = cap();
            let r = c.check_args(&json!({"invoice_id": s.clone(), "fee": 1}));
            prop_assert_eq!(r.is_ok(), s.chars().count() <= 16 && !s.contains('\0'));
        }
    }
}
