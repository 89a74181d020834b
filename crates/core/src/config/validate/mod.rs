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
//!
//! The checks follow the sections of the document. This module holds the public types, the entry
//! points, the validator's shared state and helpers, the top-level fields, the recursive scan for
//! forbidden keys and inline URLs, and the document-order sorting of the report. `codes` lists
//! every issue code with its severity, and the known, reserved and forbidden names; `sources`,
//! `contexts`, `executors`, `capabilities` and `proposals` check their sections (`capabilities`
//! covers what every capability has: target, args, lookup and visible columns; `proposals` the
//! write fields only a proposal capability carries).

mod capabilities;
mod codes;
mod contexts;
mod executors;
mod identity;
mod proposals;
mod sources;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::RunnerConfig;
use crate::ident::{is_env_name, is_safe_identifier};

pub use codes::{
    ALL_CODES, CONNECTION_URL_SCHEMES, FORBIDDEN_SQL_KEYS, FORBIDDEN_URL_KEYS, IDENTIFIER_CODES,
    MAX_REQUIRED_APPROVALS, MAX_TIMEOUT_MS, RESERVED_ARG_NAMES,
};
use codes::{STORAGE_KEYS, TOP_LEVEL_KEYS};

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

/// Validates a whole document and returns every error and warning.
pub fn validate_value(doc: &Value) -> ValidationReport {
    let mut v = Validator::new();
    v.document(doc);
    v.finish(doc)
}

/// Parses and validates; the typed config and its warnings, or every error at once.
pub fn parse_config(text: &str) -> Result<(RunnerConfig, Vec<ConfigIssue>), ValidationReport> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message names the line and column and quotes no input.
        root_error(
            "INVALID_JSON",
            format!("the file is not valid JSON ({e}); fix the syntax and run validation again"),
        )
    })?;
    parse_config_value(doc)
}

/// [`parse_config`] for an already parsed document.
pub fn parse_config_value(doc: Value) -> Result<(RunnerConfig, Vec<ConfigIssue>), ValidationReport> {
    let report = validate_value(&doc);
    if !report.errors.is_empty() {
        return Err(report);
    }
    let cfg: RunnerConfig = serde_json::from_value(doc).map_err(|e| {
        root_error(
            "INVALID_CONFIG_SHAPE",
            format!("the config passed validation but does not match the model ({e}); please report this"),
        )
    })?;
    Ok((cfg, report.warnings))
}

/// A report of one error about the document as a whole.
fn root_error(code: &'static str, message: String) -> ValidationReport {
    ValidationReport {
        errors: vec![ConfigIssue {
            code,
            path: "$".into(),
            message,
            severity: Severity::Error,
        }],
        warnings: vec![],
    }
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

/// The string, when it is an environment variable name.
fn env_name(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| is_env_name(s))
}

/// The string, when it is an SQL identifier.
fn sql_identifier(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| is_safe_identifier(s))
}

/// The number, when it is a whole number of milliseconds allowed for a timeout.
fn timeout_ms(v: &Value) -> Option<u64> {
    v.as_u64().filter(|n| (1..=MAX_TIMEOUT_MS).contains(n))
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
    identity_info: identity::IdentityInfo,
}

/// One field of an object as [`Validator::field`] checks it: its key, the code reported when it
/// is wrong, and the messages for a missing and for an unacceptable value.
#[derive(Clone, Copy)]
struct Field<'a> {
    key: &'a str,
    code: &'static str,
    /// The message when the field is absent; `None` when it may be left out.
    missing: Option<&'a str>,
    /// The message when the field is present but not acceptable.
    invalid: &'a str,
}

impl<'a> Field<'a> {
    /// A field that must be present, with one message for a missing and an unacceptable value.
    fn required(key: &'a str, code: &'static str, message: &'a str) -> Self {
        Field {
            key,
            code,
            missing: Some(message),
            invalid: message,
        }
    }

    /// A field that may be left out, but must be acceptable when present.
    fn optional(key: &'a str, code: &'static str, message: &'a str) -> Self {
        Field {
            key,
            code,
            missing: None,
            invalid: message,
        }
    }

    /// The same field with its own message for when it is missing, which also makes it required.
    fn or_missing(self, message: &'a str) -> Self {
        Field {
            missing: Some(message),
            ..self
        }
    }
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
            identity_info: identity::IdentityInfo::default(),
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

    /// `obj[field.key]` as `accept` reads it. A missing required field, or a present one that
    /// `accept` refuses, is reported as `field.code` at the field's path; a missing optional field
    /// is not reported. Either way the result is `None`.
    fn field<'v, T>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &Path,
        field: Field<'_>,
        accept: impl FnOnce(&'v Value) -> Option<T>,
    ) -> Option<T> {
        let message = match obj.get(field.key) {
            Some(v) => match accept(v) {
                Some(accepted) => return Some(accepted),
                None => field.invalid,
            },
            None => field.missing?,
        };
        self.error(field.code, &path.key(field.key), message);
        None
    }

    /// `minimum` and `maximum` of `obj`, each when it is there and a number; one that is there but
    /// not a number is reported.
    fn number_bounds(&mut self, obj: &Map<String, Value>, path: &Path) -> [Option<f64>; 2] {
        [("minimum", "INVALID_MINIMUM"), ("maximum", "INVALID_MAXIMUM")].map(|(key, code)| {
            let message = format!("{key} must be a number");
            self.field(obj, path, Field::optional(key, code, &message), Value::as_f64)
        })
    }

    /// A `minimum` above its `maximum`, reported at `minimum`.
    fn numeric_range(&mut self, bounds: [Option<f64>; 2], path: &Path) {
        if let [Some(lo), Some(hi)] = bounds
            && lo > hi
        {
            self.error(
                "INVALID_NUMERIC_RANGE",
                &path.key("minimum"),
                "minimum is greater than maximum; swap or fix them",
            );
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

        let version = Field::required(
            "version",
            "UNSUPPORTED_CONFIG_VERSION",
            "only config version 1 is supported; set \"version\": 1",
        )
        .or_missing("version is required; add \"version\": 1");
        self.field(obj, &root, version, |v| (v.as_u64() == Some(1)).then_some(()));

        // Cloud mode is a known mode this runner refuses, not a misspelt one.
        self.mode = if obj.get("mode").and_then(Value::as_str) == Some("cloud") {
            self.error(
                "CLOUD_MODE_UNSUPPORTED",
                &root.key("mode"),
                "cloud mode is not supported by this runner; use read_only, shadow or review",
            );
            None
        } else {
            let mode = Field::required("mode", "INVALID_MODE", "mode must be read_only, shadow or review")
                .or_missing("mode is required; set it to read_only, shadow or review");
            self.field(obj, &root, mode, |v| match v.as_str()? {
                "read_only" => Some(ModeV::ReadOnly),
                "shadow" => Some(ModeV::Shadow),
                "review" => Some(ModeV::Review),
                _ => None,
            })
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

        // Before the contexts and capabilities, which ask whether tokens can be verified.
        if let Some(identity) = obj.get("identity") {
            self.identity(identity, &root.key("identity"));
        }
        if let Some(limits) = obj.get("rate_limits") {
            self.rate_limits(limits, &root.key("rate_limits"));
        }

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
        let sqlite_path = Field::required(
            "sqlite_path",
            "INVALID_SQLITE_PATH",
            "storage.sqlite_path must be a non-empty file path such as ./.synapsor/local.db",
        );
        self.field(obj, path, sqlite_path, |v| {
            v.as_str().filter(|s| !s.trim().is_empty() && !s.contains('\0'))
        });
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
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn minimal() -> Value {
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
            "APPROVAL_ROLE_NEEDS_OPERATOR_IDENTITY",
            "$.capabilities[1].approval.required_role"
        ));
        assert!(r.has(
            "INVALID_REQUIRED_APPROVALS",
            "$.capabilities[1].approval.required_approvals"
        ));
        assert!(r.has("INVALID_SSL", "$.sources.main.ssl.mode"));
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
    fn non_object_documents() {
        for doc in [json!(null), json!([]), json!("postgres://a:b@c/d"), json!(3)] {
            let r = validate_value(&doc);
            assert!(r.has("CONFIG_NOT_OBJECT", "$"), "{doc}");
        }
        let r = parse_config("{ not json").expect_err("invalid");
        assert_eq!(r.errors[0].code, "INVALID_JSON");
    }
}
