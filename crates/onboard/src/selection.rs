//! The onboarding selection: one table and one safe business action, as the answers file
//! (`--answers file.json`, schema `schemas/onboarding-selection.v1.schema.json`) or the flags of
//! `init` and `onboard db` give it. Keys and flag names are the original's, aliases included.
//!
//! This is input, not yet checked against the database: [`crate::plan`] does that. The compact
//! CLI spellings (`col=fixed:V`, `col=min:max`, `col=from:to|to;from:to`) parse here, so an answers
//! file may use them too.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use synapsor_core::config::{Engine, Mode};

use crate::error::{Field, OnboardError};

/// An onboarding selection (answers file version 1). Every key is optional: what is missing is
/// taken from the inspected catalog when it is unambiguous, and named as an error when not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Synapsor Runner onboarding selection (answers file)")]
pub struct Selection {
    /// Answers file version; only `1` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub version: Option<u32>,
    /// `read_only` (a read tool only), `shadow` or `review` (a read tool and a proposal tool).
    /// Default: `review` when a patch mapping is given, else `read_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `postgres`, `mysql` or `sqlite`; default: from the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// The table or view the capabilities read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// PostgreSQL schema (default `public`), MySQL database (default: the URL's), SQLite `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The column that identifies one row (with the tenant). Default: the primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    /// The tenant column. Default: the one tenant-named column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_column: Option<String>,
    /// Alias of `tenant_column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_key: Option<String>,
    /// Development only: the table has no tenant column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_tenant_dev: Option<bool>,
    /// The version column compared at apply time. Default: the first of `updated_at`,
    /// `modified_at`, `row_version`, `version`, `lock_version`, `etag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_column: Option<String>,
    /// No version column: compare a hash of the whole row instead (weaker; warned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_conflict_guard: Option<bool>,
    /// Capability namespace. Default: the first word of the object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name in tool names. Default: the table name in the singular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// Read tool name. Default `<namespace>.inspect_<object>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_tool: Option<String>,
    /// Alias of `read_tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect_tool_name: Option<String>,
    /// Proposal tool name. Default `<namespace>.propose_<object>_update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_tool: Option<String>,
    /// Alias of `proposal_tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_tool_name: Option<String>,
    /// The argument carrying the row's id. Default `<object>_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_arg: Option<String>,
    /// Alias of `id_arg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_arg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_returns_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_returns_hint: Option<String>,
    /// Result envelope: 1 or 2 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2))]
    pub result_format: Option<u8>,
    /// Columns shown to the model. Default: neither sensitive, large, nor the tenant column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_columns: Option<Vec<String>>,
    /// Columns a proposal may change. Default: the patched columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_columns: Option<Vec<String>>,
    /// Allow a sensitive-named column in `visible_columns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_sensitive: Option<bool>,
    /// The change a proposal records: column to `fixed:VALUE` / `arg:NAME` (or
    /// `{"fixed": V}` / `{"from_arg": NAME}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<IndexMap<String, PatchValue>>,
    /// Inclusive numeric bounds: column to `min:max` (either side may be empty) or
    /// `{"minimum": N, "maximum": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_bounds: Option<IndexMap<String, BoundValue>>,
    /// Alias of `patch_bounds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_bounds: Option<IndexMap<String, BoundValue>>,
    /// Allowed status transitions: column to `from:to|to;from2:to` or `{"from": ["to", ...]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_guards: Option<IndexMap<String, GuardValue>>,
    /// Alias of `status_guards`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_guards: Option<IndexMap<String, GuardValue>>,
    /// Environment variable with the trusted tenant. Default `SYNAPSOR_TENANT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_env: Option<String>,
    /// Environment variable with the trusted principal. Default `SYNAPSOR_PRINCIPAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_env: Option<String>,
    /// A role approvers must hold (then local decisions need a verified operator token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_role: Option<String>,
    /// Environment variable with the read-only database URL. Default
    /// `SYNAPSOR_DATABASE_READ_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_url_env: Option<String>,
    /// Alias of `read_url_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url_env: Option<String>,
    /// Environment variable with the writer URL (direct SQL writeback). Default
    /// `SYNAPSOR_DATABASE_WRITE_URL` for `sql_update`; none for handlers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_url_env: Option<String>,
    /// Source name. Default `local_<engine>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// How an approved proposal is written. Default `sql_update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writeback: Option<Writeback>,
    /// Executor name for handler writeback. Default `app_handler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_name: Option<String>,
    /// `http_handler`: environment variable with the handler URL. Default
    /// `SYNAPSOR_APP_WRITEBACK_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_url_env: Option<String>,
    /// `http_handler`: environment variable with a bearer token for the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_token_env: Option<String>,
    /// Environment variable with the HMAC secret that signs handler requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_signing_secret_env: Option<String>,
    /// `command_handler`: environment variable with the command. Default
    /// `SYNAPSOR_APP_WRITEBACK_COMMAND`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_command_env: Option<String>,
    /// Handler timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub handler_timeout_ms: Option<u64>,
    /// An object id for a first smoke call (written to `.synapsor/smoke-input.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_id: Option<String>,
}

/// How an approved proposal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Writeback {
    SqlUpdate,
    HttpHandler,
    CommandHandler,
}

impl Writeback {
    pub fn as_str(self) -> &'static str {
        match self {
            Writeback::SqlUpdate => "sql_update",
            Writeback::HttpHandler => "http_handler",
            Writeback::CommandHandler => "command_handler",
        }
    }
}

/// One patch column's value, in either spelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PatchValue {
    /// `fixed:VALUE` or `arg:NAME`.
    Compact(String),
    /// A reviewed constant (string, number, boolean or null).
    Fixed { fixed: Value },
    /// The value of a model argument.
    FromArg { from_arg: String },
}

/// One column's bounds, in either spelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BoundValue {
    /// `min:max`, either side may be empty.
    Compact(String),
    Range {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minimum: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        maximum: Option<f64>,
    },
}

/// One column's transitions, in either spelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GuardValue {
    /// `from:to|to;from2:to`.
    Compact(String),
    /// From state to the states it may become.
    Map(IndexMap<String, Vec<String>>),
}

/// A patch binding after parsing: what the config's `patch` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    Fixed(Value),
    Arg(String),
}

impl PatchValue {
    pub fn binding(&self, column: &str) -> Result<Binding, OnboardError> {
        match self {
            PatchValue::Fixed { fixed } => match fixed {
                Value::Array(_) | Value::Object(_) => Err(OnboardError::field(
                    "ONBOARD_PATCH_INVALID",
                    Field::Patch,
                    format!("{column}: a fixed value is a string, number, boolean or null"),
                )),
                v => Ok(Binding::Fixed(v.clone())),
            },
            PatchValue::FromArg { from_arg } => Ok(Binding::Arg(from_arg.clone())),
            PatchValue::Compact(s) => {
                if let Some(v) = s.strip_prefix("fixed:") {
                    Ok(Binding::Fixed(fixed_value(v)))
                } else if let Some(a) = s.strip_prefix("arg:") {
                    Ok(Binding::Arg(a.trim().to_owned()))
                } else {
                    Err(OnboardError::field(
                        "ONBOARD_PATCH_INVALID",
                        Field::Patch,
                        format!("{column}={s}: expected {column}=fixed:VALUE or {column}=arg:NAME"),
                    ))
                }
            }
        }
    }
}

/// `null`, `true`, `false` and decimal numbers are parsed; anything else stays a string.
pub fn fixed_value(v: &str) -> Value {
    match v {
        "null" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => {
            let digits = v.strip_prefix('-').unwrap_or(v);
            let numeric = !digits.is_empty()
                && digits.split('.').count() <= 2
                && digits
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if numeric {
                if let Ok(i) = v.parse::<i64>() {
                    return Value::from(i);
                }
                if let Ok(f) = v.parse::<f64>()
                    && let Some(n) = serde_json::Number::from_f64(f)
                {
                    return Value::Number(n);
                }
            }
            Value::String(v.to_owned())
        }
    }
}

impl BoundValue {
    /// `(minimum, maximum)`; at least one side.
    pub fn range(&self, column: &str) -> Result<(Option<f64>, Option<f64>), OnboardError> {
        let bad = |why: &str| {
            OnboardError::field(
                "ONBOARD_BOUNDS_INVALID",
                Field::PatchBounds,
                format!("{column}: {why} (expected {column}=MIN:MAX, either side may be empty)"),
            )
        };
        let (min, max) = match self {
            BoundValue::Range { minimum, maximum } => (*minimum, *maximum),
            BoundValue::Compact(s) => {
                let (a, b) = s.split_once(':').ok_or_else(|| bad(&format!("{s:?} has no ':'")))?;
                let num = |x: &str| -> Result<Option<f64>, OnboardError> {
                    let x = x.trim();
                    if x.is_empty() {
                        return Ok(None);
                    }
                    x.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(Some)
                        .ok_or_else(|| bad(&format!("{x:?} is not a number")))
                };
                (num(a)?, num(b)?)
            }
        };
        match (min, max) {
            (None, None) => Err(bad("no bound given")),
            (Some(a), Some(b)) if a > b => Err(bad(&format!("minimum {a} is above maximum {b}"))),
            r => Ok(r),
        }
    }
}

impl GuardValue {
    /// From state to allowed target states.
    pub fn transitions(&self, column: &str) -> Result<IndexMap<String, Vec<String>>, OnboardError> {
        let bad = |why: String| {
            OnboardError::field(
                "ONBOARD_STATUS_GUARD_INVALID",
                Field::StatusGuards,
                format!("{column}: {why} (expected {column}=FROM:TO|TO;FROM2:TO)"),
            )
        };
        let map = match self {
            GuardValue::Map(m) => m.clone(),
            GuardValue::Compact(s) => {
                let mut m: IndexMap<String, Vec<String>> = IndexMap::new();
                for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                    let (from, tos) = part
                        .split_once(':')
                        .ok_or_else(|| bad(format!("{part:?} has no ':'")))?;
                    let entry = m.entry(from.trim().to_owned()).or_default();
                    for to in tos.split('|').map(str::trim) {
                        if !to.is_empty() && !entry.iter().any(|t| t == to) {
                            entry.push(to.to_owned());
                        }
                    }
                }
                m
            }
        };
        if map.is_empty() {
            return Err(bad("no transition given".into()));
        }
        for (from, tos) in &map {
            if from.is_empty() || tos.is_empty() || tos.iter().any(String::is_empty) {
                return Err(bad(format!("{from:?} needs at least one target state")));
            }
        }
        Ok(map)
    }
}

/// One `COLUMN=SPEC` flag family: its field, its error code, the shape it expects, and whether
/// a value may hold several comma-separated mappings.
struct MappingFlag {
    field: Field,
    code: &'static str,
    expected: &'static str,
    comma_lists: bool,
}

impl MappingFlag {
    /// Parses repeated values into `out`, each `SPEC` turned into a value by `make` (which
    /// checks it).
    fn parse_into<V>(
        &self,
        values: &[String],
        out: &mut IndexMap<String, V>,
        make: impl Fn(&str, &str) -> Result<V, OnboardError>,
    ) -> Result<(), OnboardError> {
        let items: Vec<&str> = if self.comma_lists {
            values.iter().flat_map(|v| v.split(',')).collect()
        } else {
            values.iter().map(String::as_str).collect()
        };
        for item in items.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
            let (col, spec) = item.split_once('=').ok_or_else(|| {
                OnboardError::field(self.code, self.field, format!("{item:?}: expected {}", self.expected))
            })?;
            let value = make(col.trim(), spec)?;
            insert_once(out, col.trim(), value, self.field)?;
        }
        Ok(())
    }
}

/// Parses repeated `--patch` values: each `col=fixed:V|col=arg:NAME`, comma-separated lists
/// allowed. A fixed value may not contain a comma.
pub fn parse_patch_flags(values: &[String]) -> Result<IndexMap<String, PatchValue>, OnboardError> {
    let mut out = IndexMap::new();
    MappingFlag {
        field: Field::Patch,
        code: "ONBOARD_PATCH_INVALID",
        expected: "COLUMN=fixed:VALUE or COLUMN=arg:NAME",
        comma_lists: true,
    }
    .parse_into(values, &mut out, |col, spec| {
        let value = PatchValue::Compact(spec.to_owned());
        value.binding(col)?;
        Ok(value)
    })?;
    Ok(out)
}

/// The older `--patch-fixed col=value` and `--patch-from-arg col=arg` flags, in the same map.
pub fn add_legacy_patch_flags(
    out: &mut IndexMap<String, PatchValue>,
    fixed: &[String],
    from_arg: &[String],
) -> Result<(), OnboardError> {
    for (values, field, prefix) in [
        (fixed, Field::PatchFixed, "fixed:"),
        (from_arg, Field::PatchFromArg, "arg:"),
    ] {
        MappingFlag {
            field,
            code: "ONBOARD_PATCH_INVALID",
            expected: "COLUMN=VALUE",
            comma_lists: true,
        }
        .parse_into(values, out, |_, v| {
            Ok(PatchValue::Compact(format!("{prefix}{}", v.trim())))
        })?;
    }
    Ok(())
}

/// Parses repeated `--patch-bounds col=min:max` values.
pub fn parse_bound_flags(values: &[String]) -> Result<IndexMap<String, BoundValue>, OnboardError> {
    let mut out = IndexMap::new();
    MappingFlag {
        field: Field::PatchBounds,
        code: "ONBOARD_BOUNDS_INVALID",
        expected: "COLUMN=MIN:MAX",
        comma_lists: true,
    }
    .parse_into(values, &mut out, |col, spec| {
        let value = BoundValue::Compact(spec.to_owned());
        value.range(col)?;
        Ok(value)
    })?;
    Ok(out)
}

/// Parses repeated `--status-guards "col=from:to|to;from2:to"` values (one column each: the
/// spec itself has no commas).
pub fn parse_guard_flags(values: &[String]) -> Result<IndexMap<String, GuardValue>, OnboardError> {
    let mut out = IndexMap::new();
    MappingFlag {
        field: Field::StatusGuards,
        code: "ONBOARD_STATUS_GUARD_INVALID",
        expected: "COLUMN=FROM:TO|TO;FROM2:TO",
        comma_lists: false,
    }
    .parse_into(values, &mut out, |col, spec| {
        let value = GuardValue::Compact(spec.to_owned());
        value.transitions(col)?;
        Ok(value)
    })?;
    Ok(out)
}

fn insert_once<V>(out: &mut IndexMap<String, V>, col: &str, v: V, field: Field) -> Result<(), OnboardError> {
    if col.is_empty() {
        return Err(OnboardError::field(
            "ONBOARD_COLUMN_REQUIRED",
            field,
            "a mapping has no column name",
        ));
    }
    if out.insert(col.to_owned(), v).is_some() {
        return Err(OnboardError::field(
            "ONBOARD_DUPLICATE_COLUMN",
            field,
            format!("column {col} is given twice"),
        ));
    }
    Ok(())
}

/// Picks a value given under a key or its alias; both with different values is an error.
pub(crate) fn one_of<T: PartialEq + Clone>(
    main: &Option<T>,
    alias: &Option<T>,
    field: Field,
    alias_key: &str,
) -> Result<Option<T>, OnboardError> {
    match (main, alias) {
        (Some(a), Some(b)) if a != b => Err(OnboardError::field(
            "ONBOARD_ALIAS_CONFLICT",
            field,
            format!("given twice with different values (also as `{alias_key}`)"),
        )),
        (Some(a), _) => Ok(Some(a.clone())),
        (None, b) => Ok(b.clone()),
    }
}

impl Selection {
    /// Reads an answers file's JSON. Unknown keys and wrong types are errors that name the key.
    pub fn from_answers(text: &str) -> Result<Selection, OnboardError> {
        let sel: Selection = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            OnboardError::new("ONBOARD_ANSWERS_INVALID", format!("answers file: {msg}"))
        })?;
        if let Some(v) = sel.version
            && v != 1
        {
            return Err(OnboardError::field(
                "ONBOARD_ANSWERS_INVALID",
                Field::Version,
                format!("answers file version {v} is not supported (only 1)"),
            ));
        }
        Ok(sel)
    }

    /// `self` with every value `over` sets replacing this one's (flags over an answers file).
    pub fn overlay(mut self, over: Selection) -> Selection {
        macro_rules! take {
            ($($f:ident),* $(,)?) => {
                $( if over.$f.is_some() { self.$f = over.$f; } )*
            };
        }
        take!(
            version,
            mode,
            engine,
            table,
            schema,
            primary_key,
            tenant_column,
            tenant_key,
            single_tenant_dev,
            conflict_column,
            weak_conflict_guard,
            namespace,
            object_name,
            read_tool,
            inspect_tool_name,
            proposal_tool,
            proposal_tool_name,
            id_arg,
            lookup_arg,
            read_description,
            read_returns_hint,
            proposal_description,
            proposal_returns_hint,
            result_format,
            visible_columns,
            allowed_columns,
            allow_sensitive,
            patch,
            patch_bounds,
            numeric_bounds,
            status_guards,
            transition_guards,
            tenant_env,
            principal_env,
            approval_role,
            read_url_env,
            database_url_env,
            write_url_env,
            source_name,
            writeback,
            executor_name,
            handler_url_env,
            handler_token_env,
            handler_signing_secret_env,
            handler_command_env,
            handler_timeout_ms,
            smoke_id,
        );
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ANSWER_KEYS: [&str; 12] = [
        "version",
        "mode",
        "engine",
        "table",
        "schema",
        "primary_key",
        "tenant_column",
        "conflict_column",
        "visible_columns",
        "patch",
        "numeric_bounds",
        "status_guards",
    ];

    fn answer_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,16}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // The default config, so PROPTEST_CASES sets the count (scripts/reliability.sh).
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Any answers file, well-formed or not, gives a selection or an error with its code;
        /// never a panic.
        #[test]
        fn answers_files_never_panic(
            raw in "\\PC{0,120}",
            doc in proptest::collection::btree_map(proptest::sample::select(ANSWER_KEYS.to_vec()), answer_value(), 0..6),
        ) {
            if let Err(e) = Selection::from_answers(&raw) {
                prop_assert!(e.code.starts_with("ONBOARD_"), "{}", e.code);
            }
            let text = serde_json::Value::Object(doc.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string();
            if let Err(e) = Selection::from_answers(&text) {
                prop_assert!(e.code.starts_with("ONBOARD_"), "{}", e.code);
            }
        }
    }

    #[test]
    fn patch_flags_parse_both_forms() {
        let m = parse_patch_flags(&["late_fee_cents=fixed:0,waiver_reason=arg:reason".into()]).unwrap();
        assert_eq!(m["late_fee_cents"].binding("x").unwrap(), Binding::Fixed(json!(0)));
        assert_eq!(m["waiver_reason"].binding("x").unwrap(), Binding::Arg("reason".into()));
        let mut m = IndexMap::new();
        add_legacy_patch_flags(&mut m, &["status=closed".into()], &["note=why".into()]).unwrap();
        assert_eq!(m["status"].binding("x").unwrap(), Binding::Fixed(json!("closed")));
        assert_eq!(m["note"].binding("x").unwrap(), Binding::Arg("why".into()));
        for bad in ["late_fee_cents", "x=zero", "=fixed:1"] {
            assert!(parse_patch_flags(&[bad.into()]).is_err(), "{bad}");
        }
        let e = parse_patch_flags(&["a=fixed:1,a=fixed:2".into()]).unwrap_err();
        assert_eq!(e.code, "ONBOARD_DUPLICATE_COLUMN");
    }

    #[test]
    fn fixed_values() {
        assert_eq!(fixed_value("null"), json!(null));
        assert_eq!(fixed_value("-12"), json!(-12));
        assert_eq!(fixed_value("1.5"), json!(1.5));
        assert_eq!(fixed_value("1.2.3"), json!("1.2.3"));
        assert_eq!(fixed_value("1e5"), json!("1e5"));
        assert_eq!(fixed_value(""), json!(""));
        assert_eq!(fixed_value("-"), json!("-"));
    }

    #[test]
    fn bounds_and_guards() {
        let b = parse_bound_flags(&["credit_cents=0:10000".into(), "fee=:50".into()]).unwrap();
        assert_eq!(b["credit_cents"].range("c").unwrap(), (Some(0.0), Some(10000.0)));
        assert_eq!(b["fee"].range("c").unwrap(), (None, Some(50.0)));
        for bad in ["x=5:1", "x=:", "x=a:b", "x=5", "x"] {
            let e = parse_bound_flags(&[bad.into()]).unwrap_err();
            assert_eq!(e.code, "ONBOARD_BOUNDS_INVALID", "{bad}");
        }
        let g = parse_guard_flags(&["status=open:pending|resolved;pending:resolved".into()]).unwrap();
        let t = g["status"].transitions("status").unwrap();
        assert_eq!(t["open"], ["pending", "resolved"]);
        assert_eq!(t["pending"], ["resolved"]);
        for bad in ["status=open", "status=open:", "status=", "status"] {
            assert!(parse_guard_flags(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_file_keys_and_aliases() {
        let s = Selection::from_answers(
            r#"{"version": 1, "mode": "review", "table": "invoices", "tenant_key": "tenant_id",
                "patch": {"late_fee_cents": "fixed:0", "waiver_reason": {"from_arg": "reason"}},
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 100}},
                "transition_guards": {"status": {"open": ["paid"]}}}"#,
        )
        .unwrap();
        assert_eq!(s.tenant_key.as_deref(), Some("tenant_id"));
        let e = Selection::from_answers(r#"{"tabel": "x"}"#).unwrap_err();
        assert_eq!(e.code, "ONBOARD_ANSWERS_INVALID");
        assert!(e.to_string().contains("tabel"), "{e}");
        let e = Selection::from_answers(r#"{"version": 2}"#).unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let over = Selection {
            table: Some("orders".into()),
            ..Default::default()
        };
        assert_eq!(s.overlay(over).table.as_deref(), Some("orders"));
    }
}
