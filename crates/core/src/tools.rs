//! How capabilities appear to a model as MCP tools.
//!
//! What it is: the exposed tool names (canonical `namespace.name`, OpenAI-safe aliases, or both),
//! the tool definitions a `tools/list` returns (description, a real JSON Schema for the arguments,
//! annotations, `_meta`), and the operator preview of what a model sees and what it never sees.
//!
//! What it is not: it does not decide *which* capabilities are listed (the runtime drops proposal
//! tools in `read_only` mode before calling in here) and it does no IO. Everything is a pure
//! function of the compiled capabilities and the alias mode, so two processes serving the same
//! config always expose the same names.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::capability::Capability;
use crate::config::{ArgSpec, ArgType, CapabilityKind, ContextProvider};
use crate::digest::sha256_hex;

/// The longest tool name OpenAI function calling accepts.
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// The last line of every tool description.
pub const EVIDENCE_NOTE: &str =
    "Evidence handles in the result are audit and replay handles; you do not need to act on them.";

/// Which names tools are exposed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AliasMode {
    /// The capability name as configured (`billing.inspect_invoice`).
    #[default]
    Canonical,
    /// Only OpenAI-safe aliases (`billing__inspect_invoice`).
    Openai,
    /// Both: each capability is listed under its canonical name and then under its alias.
    Both,
}

impl AliasMode {
    pub const ALL: [AliasMode; 3] = [AliasMode::Canonical, AliasMode::Openai, AliasMode::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            AliasMode::Canonical => "canonical",
            AliasMode::Openai => "openai",
            AliasMode::Both => "both",
        }
    }
}

impl fmt::Display for AliasMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alias mode that is not `canonical`, `openai` or `both`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alias mode {0:?}: expected canonical, openai or both")]
pub struct ParseAliasModeError(pub String);

impl FromStr for AliasMode {
    type Err = ParseAliasModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "canonical" => Ok(AliasMode::Canonical),
            "openai" => Ok(AliasMode::Openai),
            "both" => Ok(AliasMode::Both),
            _ => Err(ParseAliasModeError(s.chars().take(32).collect())),
        }
    }
}

/// True when `name` matches `^[a-zA-Z0-9_-]{1,64}$`, the OpenAI function-name rule.
pub fn is_openai_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_alias_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// First 8 hex digits of the SHA-256 of `s`.
fn hash8(s: &str) -> String {
    let mut h = sha256_hex(s.as_bytes());
    h.truncate(8);
    h
}

/// `base` cut so that `<base>_<tag>` fits in 64 characters, trailing `_` dropped, then `_<tag>`.
/// `base` is ASCII (alias characters only), so byte slicing is safe.
fn with_suffix(base: &str, tag: &str) -> String {
    let keep = MAX_TOOL_NAME_LEN - 1 - tag.len();
    let head = base[..base.len().min(keep)].trim_end_matches('_');
    if head.is_empty() {
        format!("tool_{tag}")
    } else {
        format!("{head}_{tag}")
    }
}

/// The OpenAI-safe alias of a canonical capability name (OpenAI function names cannot contain
/// dots). Deterministic, and always matches `^[a-zA-Z0-9_-]{1,64}$`:
///
/// 1. every run of characters outside `[A-Za-z0-9_-]` becomes `__`;
/// 2. runs of three or more `_` become `__`;
/// 3. leading and trailing `_` are trimmed;
/// 4. an empty result becomes `tool_<hash8>`;
/// 5. a result longer than 64 keeps its first 55 characters (trailing `_` dropped) plus `_<hash8>`,
///
/// where `hash8` is the first 8 hex digits of the SHA-256 of the canonical name.
///
/// ```
/// assert_eq!(synapsor_core::tools::openai_alias("billing.inspect_invoice"), "billing__inspect_invoice");
/// ```
pub fn openai_alias(canonical: &str) -> String {
    let mut replaced = String::with_capacity(canonical.len() + 2);
    let mut in_run = false;
    for c in canonical.chars() {
        if is_alias_char(c) {
            replaced.push(c);
            in_run = false;
        } else if !in_run {
            replaced.push_str("__");
            in_run = true;
        }
    }
    let mut collapsed = String::with_capacity(replaced.len());
    let mut underscores = 0usize;
    for c in replaced.chars() {
        if c == '_' {
            underscores += 1;
            if underscores <= 2 {
                collapsed.push(c);
            }
        } else {
            underscores = 0;
            collapsed.push(c);
        }
    }
    let trimmed = collapsed.trim_matches('_');
    if trimmed.is_empty() {
        format!("tool_{}", hash8(canonical))
    } else if trimmed.len() > MAX_TOOL_NAME_LEN {
        with_suffix(trimmed, &hash8(canonical))
    } else {
        trimmed.to_owned()
    }
}

/// One exposed tool name and the capability it calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolName {
    /// The name the model sees and calls.
    pub exposed: String,
    /// The capability name (`namespace.name`).
    pub canonical: String,
}

impl ToolName {
    /// True when the model sees a name other than the capability name.
    pub fn is_alias(&self) -> bool {
        self.exposed != self.canonical
    }
}

/// The exposed tool names of a set of capabilities, and the way back from an exposed name to
/// its capability.
///
/// Guarantees, for any input: exposed names are unique, every exposed name resolves to the
/// capability it was built from, and the same input gives the same names. A canonical name that
/// appears twice in the input is one capability and is listed once.
///
/// Collisions (two capabilities whose aliases come out alike, such as `a.b` and `a._b`, or in
/// `both` mode an alias equal to another capability's canonical name) are resolved in input
/// order: the first keeps the plain alias, later ones get `_<hash8>` of their canonical name
/// (rehashed with a counter in the astronomically unlikely case that is taken too). In `both`
/// mode every canonical name is reserved before any alias is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolNames {
    mode: AliasMode,
    tools: Vec<ToolName>,
    index: HashMap<String, usize>,
}

impl ToolNames {
    pub fn build(canonical_names: &[&str], mode: AliasMode) -> ToolNames {
        let mut seen = HashSet::new();
        let canon: Vec<&str> = canonical_names.iter().copied().filter(|n| seen.insert(*n)).collect();

        let mut taken: HashSet<String> = HashSet::new();
        if mode != AliasMode::Openai {
            taken.extend(canon.iter().map(|c| (*c).to_owned()));
        }
        let mut tools = Vec::with_capacity(canon.len() * 2);
        for c in &canon {
            if mode != AliasMode::Openai {
                tools.push(ToolName {
                    exposed: (*c).to_owned(),
                    canonical: (*c).to_owned(),
                });
            }
            if mode == AliasMode::Canonical {
                continue;
            }
            let plain = openai_alias(c);
            // A canonical name that is already OpenAI-safe is its own alias: listing it a second
            // time under the same name would be a duplicate, so `both` lists it once.
            if mode == AliasMode::Both && plain == *c {
                continue;
            }
            let mut candidate = plain.clone();
            let mut attempt = 0u32;
            while taken.contains(&candidate) {
                attempt += 1;
                let tag = if attempt == 1 {
                    hash8(c)
                } else {
                    hash8(&format!("{c}\u{0}{attempt}"))
                };
                candidate = with_suffix(&plain, &tag);
            }
            taken.insert(candidate.clone());
            tools.push(ToolName {
                exposed: candidate,
                canonical: (*c).to_owned(),
            });
        }
        let index = tools.iter().enumerate().map(|(i, t)| (t.exposed.clone(), i)).collect();
        ToolNames { mode, tools, index }
    }

    pub fn mode(&self) -> AliasMode {
        self.mode
    }

    /// Every exposed tool, in listing order.
    pub fn tools(&self) -> &[ToolName] {
        &self.tools
    }

    /// The exposed names, in listing order.
    pub fn exposed_names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| t.exposed.as_str())
    }

    /// Exposed name → canonical capability name, in listing order.
    pub fn map(&self) -> IndexMap<&str, &str> {
        self.tools
            .iter()
            .map(|t| (t.exposed.as_str(), t.canonical.as_str()))
            .collect()
    }

    /// The capability a call under `exposed` is for; `None` for a name that is not listed.
    pub fn resolve(&self, exposed: &str) -> Option<&str> {
        self.index.get(exposed).map(|&i| self.tools[i].canonical.as_str())
    }

    /// The alias listed for `canonical`, if it has one other than its canonical name.
    pub fn alias_of(&self, canonical: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|t| t.canonical == canonical && t.is_alias())
            .map(|t| t.exposed.as_str())
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// MCP tool annotations (hints for clients; the runner enforces the real rules itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    pub read_only_hint: bool,
    pub destructive_hint: bool,
    pub idempotent_hint: bool,
    pub open_world_hint: bool,
}

impl ToolAnnotations {
    pub fn for_kind(kind: CapabilityKind) -> ToolAnnotations {
        match kind {
            CapabilityKind::Read => ToolAnnotations {
                read_only_hint: true,
                destructive_hint: false,
                idempotent_hint: true,
                open_world_hint: false,
            },
            // Not read-only (it records a proposal in the ledger), never destructive (the source
            // is not changed), idempotent (an identical call returns the same pending proposal).
            CapabilityKind::Proposal => ToolAnnotations {
                read_only_hint: false,
                destructive_hint: false,
                idempotent_hint: true,
                open_world_hint: false,
            },
        }
    }
}

/// One entry of `tools/list`. Serializes in the MCP wire form (`inputSchema`, `_meta`, camelCase
/// annotation hints).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDef {
    pub name: String,
    /// The canonical capability name.
    pub title: String,
    pub description: String,
    pub input_schema: Value,
    pub annotations: ToolAnnotations,
    #[serde(rename = "_meta")]
    pub meta: Map<String, Value>,
}

/// The description a model reads, line by line: the alias line (when aliased), the configured
/// description or a default, the returns hint, and the evidence note.
pub fn tool_description(cap: &Capability, exposed: &ToolName) -> String {
    let mut lines = Vec::with_capacity(4);
    if exposed.is_alias() {
        lines.push(format!("Canonical capability: {}.", cap.name));
    }
    match cap.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => lines.push(d.to_owned()),
        None => lines.push(default_description(cap)),
    }
    if let Some(hint) = cap.returns_hint.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        lines.push(hint.to_owned());
    }
    lines.push(EVIDENCE_NOTE.to_owned());
    lines.join("\n")
}

fn default_description(cap: &Capability) -> String {
    let table = cap.read.table.as_str();
    match cap.kind {
        CapabilityKind::Read => {
            format!("Read one {table} row of the current tenant through a reviewed capability.")
        }
        CapabilityKind::Proposal => format!(
            "Propose an exact change to one {table} row of the current tenant. Nothing is written: a human approves it outside this tool."
        ),
    }
}

/// A JSON number for a configured bound: integral values as integers (`5000`, not `5000.0`).
fn bound(f: f64) -> Option<Value> {
    // 2^53: every integer below it is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < EXACT {
        Some(Value::from(f as i64))
    } else {
        serde_json::Number::from_f64(f).map(Value::Number)
    }
}

fn arg_description(name: &str, spec: &ArgSpec) -> String {
    match spec.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_owned(),
        None => format!("{name} business argument"),
    }
}

/// The JSON Schema of one argument.
pub fn arg_schema(name: &str, spec: &ArgSpec) -> Value {
    let mut s = Map::new();
    s.insert("type".into(), Value::from(spec.arg_type.as_str()));
    s.insert("description".into(), Value::from(arg_description(name, spec)));
    match spec.arg_type {
        ArgType::String => {
            if let Some(n) = spec.max_length {
                s.insert("maxLength".into(), Value::from(n));
            }
        }
        ArgType::Number => {
            if let Some(v) = spec.minimum.and_then(bound) {
                s.insert("minimum".into(), v);
            }
            if let Some(v) = spec.maximum.and_then(bound) {
                s.insert("maximum".into(), v);
            }
        }
        ArgType::Boolean => {}
    }
    if let Some(allowed) = &spec.allowed {
        s.insert("enum".into(), Value::Array(allowed.clone()));
    }
    Value::Object(s)
}

/// The JSON Schema of a capability's arguments: an object with exactly the reviewed arguments
/// (`additionalProperties: false`, so tenant, principal and other bindings have no place in it).
pub fn input_schema(args: &IndexMap<String, ArgSpec>) -> Value {
    let properties: Map<String, Value> = args.iter().map(|(n, s)| (n.clone(), arg_schema(n, s))).collect();
    let required: Vec<Value> = args
        .iter()
        .filter(|(_, s)| s.required)
        .map(|(n, _)| Value::from(n.as_str()))
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The `_meta` of a tool.
pub fn tool_meta(cap: &Capability, exposed: &ToolName, mode: AliasMode) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("synapsor.kind".into(), Value::from(cap.kind.as_str()));
    m.insert("synapsor.source".into(), Value::from(cap.source.as_str()));
    m.insert("synapsor.target".into(), Value::from(cap.target_name()));
    m.insert("synapsor.canonical_tool_name".into(), Value::from(cap.name.as_str()));
    m.insert(
        "synapsor.exposed_tool_name".into(),
        Value::from(exposed.exposed.as_str()),
    );
    m.insert("synapsor.tool_name_style".into(), Value::from(mode.as_str()));
    m.insert("synapsor.raw_sql_exposed".into(), Value::Bool(false));
    m.insert("synapsor.approval_tool".into(), Value::Bool(false));
    m
}

/// The definition of `cap` listed under `exposed`.
pub fn tool_def(cap: &Capability, exposed: &ToolName, mode: AliasMode) -> ToolDef {
    ToolDef {
        name: exposed.exposed.clone(),
        title: cap.name.clone(),
        description: tool_description(cap, exposed),
        input_schema: input_schema(&cap.args),
        annotations: ToolAnnotations::for_kind(cap.kind),
        meta: tool_meta(cap, exposed, mode),
    }
}

fn names_of(caps: &[&Capability], mode: AliasMode) -> ToolNames {
    let names: Vec<&str> = caps.iter().map(|c| c.name.as_str()).collect();
    ToolNames::build(&names, mode)
}

/// Pairs each exposed name with its capability (the first one of that name).
fn exposed_pairs<'a>(caps: &[&'a Capability], names: &'a ToolNames) -> Vec<(&'a Capability, &'a ToolName)> {
    let by_name: HashMap<&str, &Capability> = caps.iter().rev().map(|c| (c.name.as_str(), *c)).collect();
    names
        .tools()
        .iter()
        .filter_map(|t| by_name.get(t.canonical.as_str()).map(|c| (*c, t)))
        .collect()
}

/// The tool list for `caps` (already filtered for the mode: reads only in `read_only`), in the
/// order of [`ToolNames::build`] over their names.
pub fn tool_defs(caps: &[&Capability], mode: AliasMode) -> Vec<ToolDef> {
    let names = names_of(caps, mode);
    exposed_pairs(caps, &names)
        .into_iter()
        .map(|(cap, t)| tool_def(cap, t, mode))
        .collect()
}

/// One argument as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgPreview {
    pub name: String,
    #[serde(rename = "type")]
    pub arg_type: &'static str,
    pub required: bool,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Value>,
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
}

/// Where a trusted binding comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingPreview {
    /// `environment` or `static_dev` (the providers the local runner supports).
    pub provider: &'static str,
    /// Human wording of the origin, e.g. `environment variable SYNAPSOR_TENANT_ID`.
    pub from: String,
    /// The tenant column the value is bound to (tenant only; `None` for single-tenant dev).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// What a proposal tool leaves to others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposalPreview {
    /// `sql_update` or the executor name, used only after approval.
    pub executor: String,
    pub required_approvals: u32,
    /// Always false: a proposal call records a proposal and never writes the source.
    pub source_database_changed_by_call: bool,
}

/// What the model does not see for one tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotExposed {
    /// Columns the runner reads (keys, version, guard inputs) that are not returned to the model.
    pub hidden_columns: Vec<String>,
    pub tenant: BindingPreview,
    pub principal: BindingPreview,
    /// The statement shape the runner builds from reviewed identifiers (values are bound).
    pub sql: String,
    pub credentials: String,
    pub approval_tools: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ProposalPreview>,
}

/// One exposed tool: what the model sees, and what stays with the runner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolPreview {
    pub exposed_name: String,
    pub canonical_name: String,
    pub kind: &'static str,
    pub description: String,
    pub arguments: Vec<ArgPreview>,
    pub annotations: ToolAnnotations,
    pub not_exposed: NotExposed,
}

const TENANT_ENV_DEFAULT: &str = crate::capability::DEFAULT_TENANT_ENV;
const PRINCIPAL_ENV_DEFAULT: &str = crate::capability::DEFAULT_PRINCIPAL_ENV;

fn binding(provider: ContextProvider, env: &str, claim: Option<&str>, column: Option<String>) -> BindingPreview {
    let from = match provider {
        ContextProvider::Jwt => format!(
            "claim {} of the verified bearer token that opened the session",
            claim.unwrap_or("(identity not configured)")
        ),
        ContextProvider::Environment => format!("environment variable {env} of the runner process"),
        ContextProvider::StaticDev => {
            format!("environment variable {env} if set, else a literal value in the config (development only)")
        }
        ContextProvider::CloudSession => {
            format!("{} (not supported by this runner)", provider.as_str())
        }
    };
    BindingPreview {
        provider: provider.as_str(),
        from,
        column,
    }
}

impl ToolPreview {
    pub fn new(cap: &Capability, exposed: &ToolName) -> ToolPreview {
        let arguments = cap
            .args
            .iter()
            .map(|(name, spec)| ArgPreview {
                name: name.clone(),
                arg_type: spec.arg_type.as_str(),
                required: spec.required,
                description: arg_description(name, spec),
                max_length: spec.max_length.filter(|_| spec.arg_type == ArgType::String),
                minimum: spec
                    .minimum
                    .filter(|_| spec.arg_type == ArgType::Number)
                    .and_then(bound),
                maximum: spec
                    .maximum
                    .filter(|_| spec.arg_type == ArgType::Number)
                    .and_then(bound),
                allowed: spec.allowed.clone(),
            })
            .collect();
        let hidden_columns = cap
            .read
            .columns
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !cap.visible_columns.iter().any(|v| v == c))
            .map(str::to_owned)
            .collect();
        let values = &cap.context.values;
        let tenant = binding(
            cap.context.provider,
            values.tenant_id_env.as_deref().unwrap_or(TENANT_ENV_DEFAULT),
            cap.token_claims.as_ref().map(|(t, _)| t.as_str()),
            cap.read.tenant_key.as_ref().map(|k| k.as_str().to_owned()),
        );
        let principal = binding(
            cap.context.provider,
            values.principal_env.as_deref().unwrap_or(PRINCIPAL_ENV_DEFAULT),
            cap.token_claims.as_ref().map(|(_, p)| p.as_str()),
            cap.read.principal_key.as_ref().map(|k| k.as_str().to_owned()),
        );
        let proposal = (cap.kind == CapabilityKind::Proposal).then(|| ProposalPreview {
            executor: cap.executor.clone(),
            required_approvals: cap.required_approvals,
            source_database_changed_by_call: false,
        });
        ToolPreview {
            exposed_name: exposed.exposed.clone(),
            canonical_name: cap.name.clone(),
            kind: cap.kind.as_str(),
            description: tool_description(cap, exposed),
            arguments,
            annotations: ToolAnnotations::for_kind(cap.kind),
            not_exposed: NotExposed {
                hidden_columns,
                tenant,
                principal,
                sql: cap.read.statement_template(),
                credentials: format!(
                    "the connection URL of source {} stays in the runner's environment",
                    cap.source
                ),
                approval_tools: "none: approval and apply happen outside MCP, by a person".to_owned(),
                proposal,
            },
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One preview per exposed tool, in listing order.
pub fn previews(caps: &[&Capability], mode: AliasMode) -> Vec<ToolPreview> {
    let names = names_of(caps, mode);
    exposed_pairs(caps, &names)
        .into_iter()
        .map(|(cap, t)| ToolPreview::new(cap, t))
        .collect()
}

/// Things no tool ever exposes, whatever the config says.
pub const NEVER_EXPOSED: [&str; 5] = [
    "raw SQL or a query tool",
    "database credentials or connection URLs",
    "approve, apply or commit tools",
    "tenant or principal authority (bound by the runner, refused as arguments)",
    "columns outside each capability's visible_columns",
];

/// Tool names a reviewed capability never has: generic SQL, approval and apply.
const FORBIDDEN_TOOL_WORDS: &[&str] = &[
    "execute_sql",
    "run_query",
    "query_database",
    "run_sql",
    "approve",
    "reject",
    "apply",
    "commit",
];

/// The tool boundary check: what the tool list a model receives must not contain. Returns one
/// line per finding (empty when the boundary holds): a generic SQL, approval or apply tool name,
/// or a connection URL anywhere in the tools' metadata.
pub fn boundary_findings(defs: &[ToolDef]) -> Vec<String> {
    let mut out = Vec::new();
    for d in defs {
        // The action part of `namespace.action` (or of an `namespace__action` alias).
        let lower = d.name.to_ascii_lowercase();
        let action = lower
            .split_once('.')
            .or_else(|| lower.split_once("__"))
            .map_or(lower.as_str(), |(_, a)| a);
        if let Some(w) = FORBIDDEN_TOOL_WORDS.iter().find(|w| action.starts_with(*w)) {
            out.push(format!("tool {} looks like a {w} tool", d.name));
        }
        let text = serde_json::to_string(d).unwrap_or_default();
        if crate::config::validate::looks_like_connection_url(&text) {
            out.push(format!("tool {} carries a connection URL in its metadata", d.name));
        }
    }
    out
}

/// The `tools preview` document: `{alias_mode, tool_count, tools: [..], never_exposed: [..]}`.
pub fn preview(caps: &[&Capability], mode: AliasMode) -> Value {
    let tools: Vec<Value> = previews(caps, mode).iter().map(ToolPreview::to_json).collect();
    json!({
        "alias_mode": mode.as_str(),
        "tool_count": tools.len(),
        "tools": tools,
        "never_exposed": NEVER_EXPOSED,
    })
}

fn json_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `tools preview` report for people.
pub fn preview_text(caps: &[&Capability], mode: AliasMode) -> String {
    use std::fmt::Write as _;
    let items = previews(caps, mode);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Tools the model sees (alias mode {}): {}",
        mode.as_str(),
        items.len()
    );
    for p in &items {
        out.push('\n');
        let _ = write!(out, "{}  [{}]", p.exposed_name, p.kind);
        if p.exposed_name != p.canonical_name {
            let _ = write!(out, "  canonical {}", p.canonical_name);
        }
        out.push('\n');
        out.push_str("  description:\n");
        for line in p.description.lines() {
            let _ = writeln!(out, "    {line}");
        }
        out.push_str("  arguments:\n");
        if p.arguments.is_empty() {
            out.push_str("    (none)\n");
        }
        for a in &p.arguments {
            let mut facts = vec![
                a.arg_type.to_owned(),
                if a.required { "required" } else { "optional" }.to_owned(),
            ];
            if let Some(n) = a.max_length {
                facts.push(format!("max length {n}"));
            }
            if let Some(v) = &a.minimum {
                facts.push(format!("minimum {v}"));
            }
            if let Some(v) = &a.maximum {
                facts.push(format!("maximum {v}"));
            }
            if let Some(vals) = &a.allowed {
                let vals: Vec<String> = vals.iter().map(json_scalar).collect();
                facts.push(format!("one of {}", vals.join(", ")));
            }
            let _ = writeln!(out, "    {}: {} ({})", a.name, a.description, facts.join(", "));
        }
        let n = &p.not_exposed;
        out.push_str("  not exposed to the model:\n");
        let hidden = if n.hidden_columns.is_empty() {
            "(none)".to_owned()
        } else {
            n.hidden_columns.join(", ")
        };
        let _ = writeln!(out, "    hidden columns: {hidden}");
        match &n.tenant.column {
            Some(col) => {
                let _ = writeln!(out, "    tenant: column {col}, bound from {}", n.tenant.from);
            }
            None => {
                let _ = writeln!(out, "    tenant: no tenant column (single-tenant development target)");
            }
        }
        let _ = writeln!(out, "    principal: from {}", n.principal.from);
        let _ = writeln!(out, "    SQL (built by the runner, values bound): {}", n.sql);
        let _ = writeln!(out, "    credentials: {}", n.credentials);
        let _ = writeln!(out, "    approval tools: {}", n.approval_tools);
        if let Some(pp) = &n.proposal {
            let _ = writeln!(
                out,
                "    after approval ({} approval{}): executor {}; this call does not change the source database",
                pp.required_approvals,
                if pp.required_approvals == 1 { "" } else { "s" },
                pp.executor
            );
        }
    }
    out.push_str("\nNever exposed by any tool:\n");
    for item in NEVER_EXPOSED {
        let _ = writeln!(out, "  - {item}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn alias_examples() {
        assert_eq!(openai_alias("billing.inspect_invoice"), "billing__inspect_invoice");
        assert_eq!(openai_alias("a..b"), "a__b");
        assert_eq!(openai_alias("a.__b"), "a__b");
        assert_eq!(openai_alias("_a.b_"), "a__b");
        assert_eq!(openai_alias("ns.kebab-name"), "ns__kebab-name");
        assert_eq!(openai_alias("élan.vital"), "lan__vital");
        let empty = openai_alias("...");
        assert!(empty.starts_with("tool_") && empty.len() == 13, "{empty}");
        assert_eq!(openai_alias(""), format!("tool_{}", hash8("")));
    }

    #[test]
    fn long_alias_is_cut_with_hash() {
        let long = format!("ns.{}", "x".repeat(100));
        let a = openai_alias(&long);
        assert_eq!(a.len(), 64);
        assert!(a.ends_with(&format!("_{}", hash8(&long))));
        assert!(a.starts_with("ns__xxx"));
        // A cut that ends on `_` drops it before the suffix.
        let cut_on_underscore = format!("{}.{}", "a".repeat(53), "b".repeat(30));
        let a = openai_alias(&cut_on_underscore);
        assert!(!a.contains("___"), "{a}");
        assert!(is_openai_tool_name(&a), "{a}");
    }

    #[test]
    fn alias_mode_parses() {
        assert_eq!("openai".parse::<AliasMode>().unwrap(), AliasMode::Openai);
        assert_eq!(" Both ".parse::<AliasMode>().unwrap(), AliasMode::Both);
        assert_eq!("canonical".parse::<AliasMode>().unwrap(), AliasMode::Canonical);
        assert!("dots".parse::<AliasMode>().is_err());
        for m in AliasMode::ALL {
            assert_eq!(m.as_str().parse::<AliasMode>().unwrap(), m);
        }
    }

    #[test]
    fn punctuation_twins_get_distinct_aliases() {
        // All three alias to `a__b`; `a.b_c` and `a_b.c` do not collide (`a__b_c`, `a_b__c`).
        let names = ToolNames::build(&["a.b", "a._b", "a_.b", "a.b_c", "a_b.c"], AliasMode::Openai);
        let exposed: Vec<&str> = names.exposed_names().collect();
        assert_eq!(
            exposed,
            [
                "a__b".to_owned(),
                format!("a__b_{}", hash8("a._b")),
                format!("a__b_{}", hash8("a_.b")),
                "a__b_c".to_owned(),
                "a_b__c".to_owned(),
            ]
        );
        assert_eq!(names.resolve(exposed[2]), Some("a_.b"));
    }

    #[test]
    fn both_mode_reserves_canonical_names() {
        // `x__y` is a canonical name here, and also the alias of `x.y`.
        let names = ToolNames::build(&["x.y", "x__y"], AliasMode::Both);
        let exposed: Vec<&str> = names.exposed_names().collect();
        assert_eq!(exposed, ["x.y", &format!("x__y_{}", hash8("x.y")), "x__y"]);
        assert_eq!(names.resolve("x__y"), Some("x__y"));
        assert_eq!(names.alias_of("x.y"), Some(exposed[1]));
        assert_eq!(names.alias_of("x__y"), None);
    }

    #[test]
    fn canonical_mode_lists_names_as_is() {
        let names = ToolNames::build(&["b.one", "a.two", "b.one"], AliasMode::Canonical);
        assert_eq!(names.exposed_names().collect::<Vec<_>>(), ["b.one", "a.two"]);
        assert_eq!(names.resolve("b__one"), None);
        assert_eq!(names.map().get("a.two"), Some(&"a.two"));
    }

    #[test]
    fn bounds_are_integers_when_integral() {
        assert_eq!(bound(5000.0), Some(json!(5000)));
        assert_eq!(bound(-1.5), Some(json!(-1.5)));
        assert_eq!(bound(f64::NAN), None);
    }
}
