//! From a selection and the inspected catalog to a reviewed config: every choice checked against
//! the table, every default taken from an unambiguous suggestion, and the result run through the
//! config validator before anyone writes it.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;
use synapsor_core::catalog::{Catalog, TableInfo, TableKind};
use synapsor_core::config::validate::{is_reserved_arg_name, looks_like_connection_url};
use synapsor_core::config::{
    ApprovalMode, ApprovalPolicy, ArgSpec, ArgType, Capability, CapabilityKind, ConfigIssue, ConflictGuard,
    ContextProvider, ContextValues, Engine, EvidencePolicy, Executor, ExecutorAuth, Lookup, Mode, NumericBound,
    PatchBinding, ResultFormat, RunnerConfig, Severity, Source, Storage, Target, TransitionGuard, TrustedContext,
    parse_config_value,
};
use synapsor_core::ident::{is_capability_name, is_env_name, is_safe_identifier};

use crate::classify::{ColumnTag, KeySuggestion, TableSuggestions, identifies_one_row, is_numeric_type, suggest};
use crate::error::{Field, OnboardError};
use crate::selection::{Binding, Selection, Writeback, one_of};

pub const DEFAULT_READ_URL_ENV: &str = "SYNAPSOR_DATABASE_READ_URL";
pub const DEFAULT_WRITE_URL_ENV: &str = "SYNAPSOR_DATABASE_WRITE_URL";
pub const DEFAULT_TENANT_ENV: &str = "SYNAPSOR_TENANT_ID";
pub const DEFAULT_PRINCIPAL_ENV: &str = "SYNAPSOR_PRINCIPAL";
pub const DEFAULT_HANDLER_URL_ENV: &str = "SYNAPSOR_APP_WRITEBACK_URL";
pub const DEFAULT_HANDLER_COMMAND_ENV: &str = "SYNAPSOR_APP_WRITEBACK_COMMAND";
pub const DEFAULT_EXECUTOR_NAME: &str = "app_handler";

/// An environment variable the generated config reads, for `.env.example` and the next steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    /// What it holds.
    pub purpose: &'static str,
    /// The placeholder written to `.env.example` (never a real value).
    pub placeholder: String,
}

/// A column the model does not see, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HiddenColumn {
    pub name: String,
    pub reason: &'static str,
}

/// The reviewed result of onboarding, ready to be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Onboarding {
    pub config: RunnerConfig,
    pub engine: Engine,
    pub mode: Mode,
    pub schema: String,
    pub table: String,
    pub primary_key: String,
    pub tenant_column: Option<String>,
    pub conflict_column: Option<String>,
    pub read_tool: String,
    pub proposal_tool: Option<String>,
    pub id_arg: String,
    pub visible_columns: Vec<String>,
    pub hidden_columns: Vec<HiddenColumn>,
    pub writeback: Option<Writeback>,
    /// Choices taken from suggestions, to show the user what was decided for them.
    pub inferred: Vec<String>,
    /// The config validator's warnings on the generated config.
    pub warnings: Vec<ConfigIssue>,
    pub env: Vec<EnvVar>,
    pub smoke_id: Option<String>,
}

/// Builds the reviewed config for `sel` over `catalog`.
pub fn plan(sel: &Selection, catalog: &Catalog) -> Result<Onboarding, OnboardError> {
    Planner::new(sel, catalog)?.run()
}

struct Planner<'a> {
    sel: &'a Selection,
    catalog: &'a Catalog,
    table: &'a TableInfo,
    sugg: TableSuggestions,
    inferred: Vec<String>,
}

fn unknown_column(field: Field, table: &TableInfo, col: &str) -> OnboardError {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    OnboardError::field(
        "ONBOARD_UNKNOWN_COLUMN",
        field,
        format!(
            "table {} has no column {col} (columns: {})",
            table.name,
            names.join(", ")
        ),
    )
}

/// An environment variable *name*; a URL or secret given inline is refused without echoing it.
fn env_name(value: &Option<String>, field: Field) -> Result<Option<String>, OnboardError> {
    let Some(v) = value else { return Ok(None) };
    if looks_like_connection_url(v) || v.contains("://") || v.contains('@') {
        return Err(OnboardError::field(
            "ONBOARD_URL_NOT_ENV",
            field,
            "takes the NAME of an environment variable that holds the URL, not the URL itself (the value was not stored)",
        ));
    }
    if !is_env_name(v) {
        return Err(OnboardError::field(
            "ONBOARD_ENV_NAME_INVALID",
            field,
            format!("{v:?} is not an environment variable name (A-Z, 0-9 and _, not starting with a digit)"),
        ));
    }
    Ok(Some(v.clone()))
}

/// Checks every environment-variable field of `sel` (no database needed): a URL pasted where a
/// name belongs is refused before anything connects.
pub fn check_env_names(sel: &Selection) -> Result<(), OnboardError> {
    for (v, f) in [
        (&sel.read_url_env, Field::ReadUrlEnv),
        (&sel.database_url_env, Field::ReadUrlEnv),
        (&sel.write_url_env, Field::WriteUrlEnv),
        (&sel.tenant_env, Field::TenantEnv),
        (&sel.principal_env, Field::PrincipalEnv),
        (&sel.handler_url_env, Field::HandlerUrlEnv),
        (&sel.handler_token_env, Field::HandlerTokenEnv),
        (&sel.handler_signing_secret_env, Field::HandlerSigningSecretEnv),
        (&sel.handler_command_env, Field::HandlerCommandEnv),
    ] {
        env_name(v, f)?;
    }
    Ok(())
}

/// `invoices` -> `invoice`, `categories` -> `category`, `support_tickets` -> `support_ticket`.
pub fn object_name_of(table: &str) -> String {
    let safe: String = table
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    let singular = if let Some(stem) = safe.strip_suffix("ies").filter(|s| !s.is_empty()) {
        format!("{stem}y")
    } else if let Some(stem) = safe
        .strip_suffix('s')
        .filter(|s| !s.is_empty() && !s.ends_with('s') && !s.ends_with('u') && !s.ends_with('i'))
    {
        // `invoices`, not `address`, `status` or `analysis`.
        stem.to_owned()
    } else {
        safe
    };
    if singular.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{singular}")
    } else {
        singular
    }
}

/// The namespace derived from an object name: its first `_` word.
pub fn namespace_of(object: &str) -> String {
    object.split('_').find(|w| !w.is_empty()).unwrap_or(object).to_owned()
}

impl<'a> Planner<'a> {
    fn new(sel: &'a Selection, catalog: &'a Catalog) -> Result<Self, OnboardError> {
        let Some(name) = sel.table.as_deref() else {
            return Err(OnboardError::field(
                "ONBOARD_TABLE_REQUIRED",
                Field::Table,
                format!("choose the table or view to expose ({})", list_tables(catalog)),
            ));
        };
        let Some(table) = catalog.table(name) else {
            return Err(OnboardError::field(
                "ONBOARD_UNKNOWN_TABLE",
                Field::Table,
                format!(
                    "schema {} has no table or view {name} ({})",
                    catalog.schema,
                    list_tables(catalog)
                ),
            ));
        };
        if !is_safe_identifier(&table.name) || !is_safe_identifier(&catalog.schema) {
            return Err(OnboardError::field(
                "ONBOARD_IDENTIFIER_UNSUPPORTED",
                Field::Table,
                format!(
                    "{}.{} is not a plain identifier (letters, digits and _): the runner only quotes those",
                    catalog.schema, table.name
                ),
            ));
        }
        Ok(Planner {
            sel,
            catalog,
            table,
            sugg: suggest(table),
            inferred: Vec::new(),
        })
    }

    fn column_exists(&self, field: Field, col: &str) -> Result<(), OnboardError> {
        if self.table.column(col).is_none() {
            return Err(unknown_column(field, self.table, col));
        }
        if !is_safe_identifier(col) {
            return Err(OnboardError::field(
                "ONBOARD_IDENTIFIER_UNSUPPORTED",
                field,
                format!("column {col:?} is not a plain identifier (letters, digits and _)"),
            ));
        }
        Ok(())
    }

    fn tenant(&mut self) -> Result<Option<String>, OnboardError> {
        let given = one_of(
            &self.sel.tenant_column,
            &self.sel.tenant_key,
            Field::TenantColumn,
            "tenant_key",
        )?;
        if self.sel.single_tenant_dev == Some(true) {
            if let Some(t) = given {
                return Err(OnboardError::field(
                    "ONBOARD_TENANT_CONFLICT",
                    Field::SingleTenantDev,
                    format!("a tenant column ({t}) and --single-tenant-dev exclude each other"),
                ));
            }
            return Ok(None);
        }
        if let Some(t) = given {
            self.column_exists(Field::TenantColumn, &t)?;
            return Ok(Some(t));
        }
        match self.sugg.tenant_candidates.as_slice() {
            [one] => {
                self.inferred.push(format!("tenant column {one} (its name)"));
                Ok(Some(one.clone()))
            }
            [] => Err(OnboardError::field(
                "ONBOARD_TENANT_COLUMN_REQUIRED",
                Field::TenantColumn,
                format!(
                    "table {} has no tenant-named column: pass --tenant-column COLUMN, or --single-tenant-dev for a development database with one tenant",
                    self.table.name
                ),
            )),
            many => Err(OnboardError::field(
                "ONBOARD_TENANT_COLUMN_AMBIGUOUS",
                Field::TenantColumn,
                format!(
                    "table {} has several tenant-named columns ({}): pass --tenant-column with the one that holds the tenant",
                    self.table.name,
                    many.join(", ")
                ),
            )),
        }
    }

    fn primary_key(&mut self, tenant: Option<&str>) -> Result<String, OnboardError> {
        if let Some(pk) = &self.sel.primary_key {
            self.column_exists(Field::PrimaryKey, pk)?;
            if tenant == Some(pk.as_str()) {
                return Err(OnboardError::field(
                    "ONBOARD_KEY_IS_TENANT",
                    Field::PrimaryKey,
                    format!("{pk} is the tenant column; the key must identify one row inside a tenant"),
                ));
            }
            if self.table.kind == TableKind::Table && !identifies_one_row(self.table, pk, tenant) {
                return Err(OnboardError::field(
                    "ONBOARD_KEY_NOT_UNIQUE",
                    Field::PrimaryKey,
                    format!(
                        "{pk} is not a primary or unique key of {} (alone or with the tenant column), so it may match several rows",
                        self.table.name
                    ),
                ));
            }
            if self.table.kind == TableKind::View {
                self.inferred.push(format!(
                    "{pk} as the key of view {}: the catalog cannot prove it unique; a lookup that matches more than one row is refused (MULTI_ROW_BLOCKED)",
                    self.table.name
                ));
            }
            return Ok(pk.clone());
        }
        match &self.sugg.primary_key {
            KeySuggestion::Single { column } if identifies_one_row(self.table, column, tenant) => {
                self.inferred.push(format!("key {column} (the primary key)"));
                Ok(column.clone())
            }
            KeySuggestion::Single { .. } | KeySuggestion::Composite { .. } => Err(OnboardError::field(
                "ONBOARD_PRIMARY_KEY_AMBIGUOUS",
                Field::PrimaryKey,
                format!(
                    "the primary key of {} is ({}): pass --primary-key with one column that identifies a row inside a tenant",
                    self.table.name,
                    self.table.primary_key.join(", ")
                ),
            )),
            KeySuggestion::Missing => Err(OnboardError::field(
                "ONBOARD_PRIMARY_KEY_REQUIRED",
                Field::PrimaryKey,
                format!(
                    "{} {} has no primary key in the catalog: pass --primary-key with a column that identifies one row",
                    if self.table.kind == TableKind::View {
                        "view"
                    } else {
                        "table"
                    },
                    self.table.name
                ),
            )),
        }
    }

    fn run(mut self) -> Result<Onboarding, OnboardError> {
        let sel = self.sel;
        // Environment names first: a URL pasted into one is refused before anything else.
        let read_url_env = env_name(
            &one_of(
                &sel.read_url_env,
                &sel.database_url_env,
                Field::ReadUrlEnv,
                "database_url_env",
            )?,
            Field::ReadUrlEnv,
        )?
        .unwrap_or_else(|| DEFAULT_READ_URL_ENV.to_owned());
        let write_url_given = env_name(&sel.write_url_env, Field::WriteUrlEnv)?;
        let tenant_env = env_name(&sel.tenant_env, Field::TenantEnv)?.unwrap_or_else(|| DEFAULT_TENANT_ENV.into());
        let principal_env =
            env_name(&sel.principal_env, Field::PrincipalEnv)?.unwrap_or_else(|| DEFAULT_PRINCIPAL_ENV.into());
        let handler_url_env = env_name(&sel.handler_url_env, Field::HandlerUrlEnv)?;
        let handler_token_env = env_name(&sel.handler_token_env, Field::HandlerTokenEnv)?;
        let handler_secret_env = env_name(&sel.handler_signing_secret_env, Field::HandlerSigningSecretEnv)?;
        let handler_command_env = env_name(&sel.handler_command_env, Field::HandlerCommandEnv)?;
        if let Some(e) = sel.engine
            && e != self.catalog.engine
        {
            return Err(OnboardError::field(
                "ONBOARD_ENGINE_MISMATCH",
                Field::Engine,
                format!(
                    "{} was asked for, but the database is {}",
                    e.as_str(),
                    self.catalog.engine.as_str()
                ),
            ));
        }

        let tenant = self.tenant()?;
        let pk = self.primary_key(tenant.as_deref())?;

        // The change a proposal records.
        let mut patch: IndexMap<String, Binding> = IndexMap::new();
        for (col, v) in sel.patch.iter().flatten() {
            patch.insert(col.clone(), v.binding(col)?);
        }
        let bounds_in = one_of(
            &sel.patch_bounds,
            &sel.numeric_bounds,
            Field::PatchBounds,
            "numeric_bounds",
        )?;
        let mut bounds: IndexMap<String, (Option<f64>, Option<f64>)> = IndexMap::new();
        for (col, v) in bounds_in.iter().flatten() {
            bounds.insert(col.clone(), v.range(col)?);
        }
        let guards_in = one_of(
            &sel.status_guards,
            &sel.transition_guards,
            Field::StatusGuards,
            "transition_guards",
        )?;
        let mut guards: IndexMap<String, IndexMap<String, Vec<String>>> = IndexMap::new();
        for (col, v) in guards_in.iter().flatten() {
            guards.insert(col.clone(), v.transitions(col)?);
        }

        let mode = match sel.mode {
            Some(m) => m,
            None if !patch.is_empty() => {
                self.inferred.push("mode review (a patch mapping was given)".into());
                Mode::Review
            }
            None => {
                self.inferred
                    .push("mode read_only (no patch mapping: a read tool only)".into());
                Mode::ReadOnly
            }
        };
        let proposes = mode != Mode::ReadOnly;
        if proposes && patch.is_empty() {
            return Err(OnboardError::field(
                "ONBOARD_PATCH_REQUIRED",
                Field::Patch,
                format!(
                    "{} mode needs at least one patch mapping, e.g. --patch status=fixed:closed or --patch note=arg:note (or --mode read_only for a read tool only)",
                    mode.as_str()
                ),
            ));
        }
        if !proposes && (!patch.is_empty() || !bounds.is_empty() || !guards.is_empty()) {
            return Err(OnboardError::field(
                "ONBOARD_PATCH_IN_READ_ONLY",
                Field::Mode,
                "read_only mode exposes no proposal tool: drop the patch, bounds and status guards, or choose --mode review",
            ));
        }
        let writeback = proposes.then(|| sel.writeback.unwrap_or(Writeback::SqlUpdate));
        if writeback != Some(Writeback::HttpHandler) && (handler_url_env.is_some() || handler_token_env.is_some()) {
            let field = if handler_url_env.is_some() {
                Field::HandlerUrlEnv
            } else {
                Field::HandlerTokenEnv
            };
            return Err(OnboardError::field(
                "ONBOARD_HANDLER_FLAG_UNUSED",
                field,
                "only used with --writeback http_handler",
            ));
        }
        if writeback != Some(Writeback::CommandHandler) && handler_command_env.is_some() {
            return Err(OnboardError::field(
                "ONBOARD_HANDLER_FLAG_UNUSED",
                Field::HandlerCommandEnv,
                "only used with --writeback command_handler",
            ));
        }
        if !matches!(writeback, Some(Writeback::HttpHandler | Writeback::CommandHandler))
            && (handler_secret_env.is_some() || sel.executor_name.is_some())
        {
            let field = if handler_secret_env.is_some() {
                Field::HandlerSigningSecretEnv
            } else {
                Field::ExecutorName
            };
            return Err(OnboardError::field(
                "ONBOARD_HANDLER_FLAG_UNUSED",
                field,
                "only used with --writeback http_handler or command_handler",
            ));
        }

        let keys: Vec<&str> = std::iter::once(pk.as_str()).chain(tenant.as_deref()).collect();
        for col in patch.keys() {
            self.column_exists(Field::Patch, col)?;
            if keys.contains(&col.as_str()) {
                return Err(OnboardError::field(
                    "ONBOARD_KEY_COLUMN_PATCHED",
                    Field::Patch,
                    format!("{col} is the key or tenant column of the row: a proposal may never change it"),
                ));
            }
        }
        let allowed = match &sel.allowed_columns {
            Some(cols) => {
                for col in cols {
                    self.column_exists(Field::AllowedColumns, col)?;
                    if keys.contains(&col.as_str()) {
                        return Err(OnboardError::field(
                            "ONBOARD_KEY_COLUMN_ALLOWED",
                            Field::AllowedColumns,
                            format!("{col} is the key or tenant column: writeback may never change it"),
                        ));
                    }
                }
                if let Some(col) = patch.keys().find(|c| !cols.contains(c)) {
                    return Err(OnboardError::field(
                        "ONBOARD_PATCH_COLUMN_NOT_ALLOWED",
                        Field::Patch,
                        format!("{col} is patched but not in --allowed-columns ({})", cols.join(", ")),
                    ));
                }
                if !proposes && !cols.is_empty() {
                    return Err(OnboardError::field(
                        "ONBOARD_PATCH_IN_READ_ONLY",
                        Field::AllowedColumns,
                        "read_only mode writes nothing: drop --allowed-columns, or choose --mode review",
                    ));
                }
                cols.clone()
            }
            None => patch.keys().cloned().collect(),
        };
        for col in bounds.keys() {
            self.column_exists(Field::PatchBounds, col)?;
            if !patch.contains_key(col) {
                return Err(OnboardError::field(
                    "ONBOARD_BOUNDS_INVALID",
                    Field::PatchBounds,
                    format!("{col} has bounds but no patch mapping"),
                ));
            }
        }
        for col in guards.keys() {
            self.column_exists(Field::StatusGuards, col)?;
            match patch.get(col) {
                Some(Binding::Arg(_)) | Some(Binding::Fixed(Value::String(_))) => {}
                Some(_) => {
                    return Err(OnboardError::field(
                        "ONBOARD_STATUS_GUARD_INVALID",
                        Field::StatusGuards,
                        format!("{col} is guarded but its patch value is not a status string"),
                    ));
                }
                None => {
                    return Err(OnboardError::field(
                        "ONBOARD_STATUS_GUARD_INVALID",
                        Field::StatusGuards,
                        format!("{col} has a status guard but no patch mapping"),
                    ));
                }
            }
        }

        let conflict = if !proposes {
            None
        } else if sel.weak_conflict_guard == Some(true) {
            if sel.conflict_column.is_some() {
                return Err(OnboardError::field(
                    "ONBOARD_CONFLICT_GUARD_CONFLICT",
                    Field::ConflictColumn,
                    "a conflict column and --weak-conflict-guard exclude each other",
                ));
            }
            None
        } else if let Some(c) = &sel.conflict_column {
            self.column_exists(Field::ConflictColumn, c)?;
            Some(c.clone())
        } else if let Some(c) = self.sugg.conflict().map(str::to_owned) {
            self.inferred.push(format!("conflict column {c} (its name)"));
            Some(c)
        } else {
            return Err(OnboardError::field(
                "ONBOARD_CONFLICT_COLUMN_REQUIRED",
                Field::ConflictColumn,
                format!(
                    "table {} has no version column (updated_at, modified_at, row_version, version, lock_version, etag): pass --conflict-column COLUMN, or --weak-conflict-guard to compare a hash of the row instead",
                    self.table.name
                ),
            ));
        };
        if let Some(c) = &conflict
            && patch.contains_key(c)
        {
            return Err(OnboardError::field(
                "ONBOARD_CONFLICT_COLUMN_PATCHED",
                Field::ConflictColumn,
                format!("{c} is the version compared at apply time; a proposal cannot also set it"),
            ));
        }

        // What the model sees.
        let allow_sensitive = sel.allow_sensitive == Some(true);
        let mut visible: Vec<String> = match &sel.visible_columns {
            Some(cols) => {
                for col in cols {
                    self.column_exists(Field::VisibleColumns, col)?;
                    if tenant.as_deref() == Some(col.as_str()) {
                        return Err(OnboardError::field(
                            "ONBOARD_TENANT_COLUMN_VISIBLE",
                            Field::VisibleColumns,
                            format!("{col} is the tenant column: the model never sees its own tenant"),
                        ));
                    }
                    let tags = self.sugg.column(col).map(|c| c.tags.clone()).unwrap_or_default();
                    if tags.contains(&ColumnTag::Sensitive) && !allow_sensitive {
                        return Err(OnboardError::field(
                            "ONBOARD_SENSITIVE_COLUMN",
                            Field::VisibleColumns,
                            format!(
                                "{col} looks sensitive (a secret or personal data): leave it out, or pass --allow-sensitive if the model may see it"
                            ),
                        ));
                    }
                }
                cols.clone()
            }
            // Neither sensitive nor large; of the tenant candidates only the chosen tenant is
            // hidden (another `account_id` is then an ordinary column).
            None => self
                .sugg
                .columns
                .iter()
                .filter(|c| !c.tags.contains(&ColumnTag::Sensitive) && !c.tags.contains(&ColumnTag::Large))
                .filter(|c| tenant.as_deref() != Some(c.name.as_str()) && is_safe_identifier(&c.name))
                .map(|c| c.name.clone())
                .collect(),
        };
        // The key, the version and the patched columns are always shown: the model names the
        // row, and a reviewer compares the proposal with what it read.
        let must_show: Vec<String> = std::iter::once(pk.clone())
            .chain(conflict.clone())
            .chain(patch.keys().cloned())
            .collect();
        for col in must_show {
            if !visible.contains(&col) {
                let sensitive = self
                    .sugg
                    .column(&col)
                    .is_some_and(|c| c.tags.contains(&ColumnTag::Sensitive));
                if sensitive && !allow_sensitive {
                    return Err(OnboardError::field(
                        "ONBOARD_SENSITIVE_COLUMN",
                        Field::Patch,
                        format!(
                            "{col} looks sensitive, and a key, version or patched column is shown to the model: pass --allow-sensitive if it may see it"
                        ),
                    ));
                }
                visible.push(col);
            }
        }
        let order: Vec<&str> = self.table.columns.iter().map(|c| c.name.as_str()).collect();
        visible.sort_by_key(|c| (c != &pk, order.iter().position(|o| o == c)));
        visible.dedup();
        let hidden = self
            .table
            .columns
            .iter()
            .filter(|c| !visible.contains(&c.name))
            .map(|c| {
                let tags = self.sugg.column(&c.name).map(|s| s.tags.clone()).unwrap_or_default();
                let reason = if tenant.as_deref() == Some(c.name.as_str()) {
                    "tenant column (trusted context)"
                } else if tags.contains(&ColumnTag::Sensitive) {
                    "sensitive"
                } else if tags.contains(&ColumnTag::Large) {
                    "large or binary"
                } else if !is_safe_identifier(&c.name) {
                    "not a plain identifier"
                } else {
                    "not selected"
                };
                HiddenColumn {
                    name: c.name.clone(),
                    reason,
                }
            })
            .collect();

        // Names.
        let object = match &sel.object_name {
            Some(o) => o.clone(),
            None => object_name_of(&self.table.name),
        };
        if !is_safe_identifier(&object) {
            return Err(OnboardError::field(
                "ONBOARD_NAME_INVALID",
                Field::ObjectName,
                format!("{object:?} must be letters, digits and _ (not starting with a digit)"),
            ));
        }
        let namespace = match &sel.namespace {
            Some(n) => n.clone(),
            None => namespace_of(&object),
        };
        if !is_safe_identifier(&namespace) {
            return Err(OnboardError::field(
                "ONBOARD_NAME_INVALID",
                Field::Namespace,
                format!("{namespace:?} must be letters, digits and _ (not starting with a digit)"),
            ));
        }
        let read_tool = one_of(
            &sel.read_tool,
            &sel.inspect_tool_name,
            Field::ReadTool,
            "inspect_tool_name",
        )?
        .unwrap_or_else(|| format!("{namespace}.inspect_{object}"));
        let proposal_tool = one_of(
            &sel.proposal_tool,
            &sel.proposal_tool_name,
            Field::ProposalTool,
            "proposal_tool_name",
        )?
        .unwrap_or_else(|| format!("{namespace}.propose_{object}_update"));
        for (name, field) in [(&read_tool, Field::ReadTool), (&proposal_tool, Field::ProposalTool)] {
            if !is_capability_name(name) {
                return Err(OnboardError::field(
                    "ONBOARD_NAME_INVALID",
                    field,
                    format!("{name:?} must be namespace.name, each part letters, digits and _"),
                ));
            }
        }
        if proposes && read_tool == proposal_tool {
            return Err(OnboardError::field(
                "ONBOARD_NAME_INVALID",
                Field::ProposalTool,
                format!("the read and proposal tools are both named {read_tool}"),
            ));
        }
        let id_arg =
            one_of(&sel.id_arg, &sel.lookup_arg, Field::IdArg, "lookup_arg")?.unwrap_or_else(|| format!("{object}_id"));
        check_arg_name(&id_arg, Field::IdArg)?;

        // Arguments: the id, then one per `arg:` patch binding.
        let id_spec = ArgSpec {
            arg_type: ArgType::String,
            description: Some(format!("The {object}'s {pk}.")),
            required: true,
            max_length: Some(128),
            minimum: None,
            maximum: None,
            allowed: None,
        };
        let mut proposal_args: IndexMap<String, ArgSpec> = IndexMap::new();
        proposal_args.insert(id_arg.clone(), id_spec.clone());
        for (col, b) in &patch {
            let Binding::Arg(arg) = b else { continue };
            check_arg_name(arg, Field::Patch)?;
            if *arg == id_arg {
                return Err(OnboardError::field(
                    "ONBOARD_PATCH_INVALID",
                    Field::Patch,
                    format!("{col}=arg:{arg}: {arg} is the lookup argument; a patch takes its own argument"),
                ));
            }
            let spec = arg_spec(col, bounds.get(col), guards.get(col), self.table);
            if let Some(prev) = proposal_args.get(arg)
                && prev.arg_type != spec.arg_type
            {
                return Err(OnboardError::field(
                    "ONBOARD_PATCH_INVALID",
                    Field::Patch,
                    format!("argument {arg} sets columns of different types"),
                ));
            }
            proposal_args.insert(arg.clone(), spec);
        }

        // The config.
        let engine = self.catalog.engine;
        let source_name = sel
            .source_name
            .clone()
            .unwrap_or_else(|| format!("local_{}", engine.as_str()));
        if !is_safe_identifier(&source_name) {
            return Err(OnboardError::field(
                "ONBOARD_NAME_INVALID",
                Field::SourceName,
                format!("{source_name:?} must be letters, digits and _"),
            ));
        }
        let handler = matches!(writeback, Some(Writeback::HttpHandler | Writeback::CommandHandler));
        let write_url_env = match (writeback, write_url_given) {
            (Some(Writeback::SqlUpdate), given) if mode == Mode::Review => {
                Some(given.unwrap_or_else(|| DEFAULT_WRITE_URL_ENV.to_owned()))
            }
            (_, Some(given)) if handler => Some(given),
            (_, Some(_)) => {
                return Err(OnboardError::field(
                    "ONBOARD_WRITE_URL_UNUSED",
                    Field::WriteUrlEnv,
                    format!(
                        "{} mode never writes to the database: drop --write-url-env",
                        mode.as_str()
                    ),
                ));
            }
            (_, None) => None,
        };
        let source = Source {
            engine,
            read_url_env: read_url_env.clone(),
            write_url_env: write_url_env.clone(),
            // A handler owns the write: the runner's SQL path stays off unless a writer is named.
            read_only: handler && write_url_env.is_none(),
            statement_timeout_ms: Some(3000),
            ssl: None,
        };
        let executor_name = sel
            .executor_name
            .clone()
            .unwrap_or_else(|| DEFAULT_EXECUTOR_NAME.to_owned());
        let mut executors = IndexMap::new();
        let mut env = vec![EnvVar {
            name: read_url_env.clone(),
            purpose: "read-only database URL (a role with SELECT on the table)",
            placeholder: format!("<{}-read-url>", engine.as_str()),
        }];
        if let Some(w) = &write_url_env {
            env.push(EnvVar {
                name: w.clone(),
                purpose: "writer database URL, used only to apply approved proposals",
                placeholder: format!("<{}-write-url>", engine.as_str()),
            });
        }
        env.push(EnvVar {
            name: tenant_env.clone(),
            purpose: "the trusted tenant this runner serves",
            placeholder: "acme".into(),
        });
        env.push(EnvVar {
            name: principal_env.clone(),
            purpose: "who the agent acts for (recorded with every call)",
            placeholder: "local_operator".into(),
        });
        match writeback {
            Some(Writeback::HttpHandler) => {
                let url_env = handler_url_env.unwrap_or_else(|| DEFAULT_HANDLER_URL_ENV.to_owned());
                env.push(EnvVar {
                    name: url_env.clone(),
                    purpose: "URL of the app's writeback handler",
                    placeholder: "http://127.0.0.1:8787/synapsor/writeback".into(),
                });
                executors.insert(
                    executor_name.clone(),
                    Executor::HttpHandler {
                        url_env,
                        method: None,
                        auth: handler_token_env
                            .clone()
                            .map(|token_env| ExecutorAuth::BearerEnv { token_env }),
                        signing_secret_env: handler_secret_env.clone(),
                        signing_key_id: None,
                        timeout_ms: sel.handler_timeout_ms,
                    },
                );
            }
            Some(Writeback::CommandHandler) => {
                let command_env = handler_command_env.unwrap_or_else(|| DEFAULT_HANDLER_COMMAND_ENV.to_owned());
                env.push(EnvVar {
                    name: command_env.clone(),
                    purpose: "the app's writeback command (reads the request on stdin)",
                    placeholder: "<command>".into(),
                });
                executors.insert(
                    executor_name.clone(),
                    Executor::CommandHandler {
                        command_env,
                        signing_secret_env: handler_secret_env.clone(),
                        signing_key_id: None,
                        timeout_ms: sel.handler_timeout_ms,
                    },
                );
            }
            _ => {}
        }
        if let Some(t) = &handler_token_env {
            env.push(EnvVar {
                name: t.clone(),
                purpose: "bearer token the handler expects",
                placeholder: "<handler-token>".into(),
            });
        }
        if let Some(s) = &handler_secret_env {
            env.push(EnvVar {
                name: s.clone(),
                purpose: "HMAC secret that signs handler requests (32+ random bytes)",
                placeholder: "<signing-secret>".into(),
            });
        }
        if handler && !executors.contains_key(&executor_name) {
            return Err(OnboardError::field(
                "ONBOARD_NAME_INVALID",
                Field::ExecutorName,
                "the executor name is not usable",
            ));
        }

        let target = Target {
            schema: self.catalog.schema.clone(),
            table: self.table.name.clone(),
            primary_key: pk.clone(),
            tenant_key: tenant.clone(),
            single_tenant_dev: tenant.is_none(),
            principal_key: None,
        };
        let visible_list = visible.join(", ");
        let read = Capability {
            name: read_tool.clone(),
            kind: CapabilityKind::Read,
            description: Some(
                sel.read_description
                    .clone()
                    .unwrap_or_else(|| format!("Look up one {object} of the current tenant by its {pk}.")),
            ),
            returns_hint: Some(
                sel.read_returns_hint
                    .clone()
                    .unwrap_or_else(|| format!("The {object}'s {visible_list}.")),
            ),
            source: source_name.clone(),
            context: None,
            executor: None,
            target: target.clone(),
            args: IndexMap::from([(id_arg.clone(), id_spec)]),
            lookup: Lookup {
                id_from_arg: id_arg.clone(),
            },
            visible_columns: visible.clone(),
            evidence: Some(EvidencePolicy::Required),
            max_rows: None,
            patch: IndexMap::new(),
            allowed_columns: vec![],
            numeric_bounds: IndexMap::new(),
            transition_guards: IndexMap::new(),
            conflict_guard: None,
            approval: None,
            single_tenant_dev_ack: tenant.is_none().then_some(true),
            rate_limit: None,
        };
        let mut capabilities = vec![read];
        if proposes {
            let changes: Vec<String> = patch
                .iter()
                .map(|(c, b)| match b {
                    Binding::Fixed(v) => format!("{c} to {v}"),
                    Binding::Arg(a) => format!("{c} to the given {a}"),
                })
                .collect();
            let cols: Vec<&str> = patch.keys().map(String::as_str).collect();
            capabilities.push(Capability {
                name: proposal_tool.clone(),
                kind: CapabilityKind::Proposal,
                description: Some(sel.proposal_description.clone().unwrap_or_else(|| {
                    format!(
                        "Propose changing one {object}: set {}. A human reviewer approves or rejects it; nothing changes until then.",
                        changes.join(", ")
                    )
                })),
                returns_hint: Some(sel.proposal_returns_hint.clone().unwrap_or_else(|| {
                    format!("The proposal id and the exact before/after change of {}.", cols.join(", "))
                })),
                source: source_name.clone(),
                context: None,
                executor: handler.then(|| executor_name.clone()),
                target,
                args: proposal_args,
                lookup: Lookup {
                    id_from_arg: id_arg.clone(),
                },
                visible_columns: visible.clone(),
                evidence: Some(EvidencePolicy::Required),
                max_rows: None,
                patch: patch
                    .iter()
                    .map(|(c, b)| {
                        let binding = match b {
                            Binding::Fixed(v) => PatchBinding::Fixed { fixed: v.clone() },
                            Binding::Arg(a) => PatchBinding::FromArg { from_arg: a.clone() },
                        };
                        (c.clone(), binding)
                    })
                    .collect(),
                allowed_columns: allowed,
                numeric_bounds: bounds
                    .iter()
                    .map(|(c, (minimum, maximum))| {
                        (
                            c.clone(),
                            NumericBound {
                                minimum: *minimum,
                                maximum: *maximum,
                            },
                        )
                    })
                    .collect(),
                transition_guards: guards
                    .iter()
                    .map(|(c, allowed)| {
                        (
                            c.clone(),
                            TransitionGuard {
                                from_column: None,
                                allowed: allowed.clone(),
                            },
                        )
                    })
                    .collect(),
                conflict_guard: Some(ConflictGuard {
                    column: conflict.clone(),
                    weak_guard_ack: conflict.is_none(),
                    advance: None,
                }),
                approval: Some(ApprovalPolicy {
                    mode: Some(ApprovalMode::Human),
                    required_role: sel.approval_role.clone(),
                    required_approvals: Some(1),
                }),
                single_tenant_dev_ack: tenant.is_none().then_some(true),
                rate_limit: None,
            });
        }
        let result_format = match sel.result_format {
            None | Some(2) => ResultFormat::V2,
            Some(1) => ResultFormat::V1,
            Some(n) => {
                return Err(OnboardError::field(
                    "ONBOARD_RESULT_FORMAT_INVALID",
                    Field::ResultFormat,
                    format!("{n}: the result envelope is 1 or 2"),
                ));
            }
        };
        let config = RunnerConfig {
            version: 1,
            mode,
            result_format: Some(result_format),
            strict: true,
            storage: Some(Storage {
                sqlite_path: "./.synapsor/local.db".into(),
            }),
            sources: IndexMap::from([(source_name, source)]),
            trusted_context: Some(TrustedContext {
                provider: ContextProvider::Environment,
                values: ContextValues {
                    tenant_id: None,
                    principal: None,
                    tenant_id_env: Some(tenant_env),
                    principal_env: Some(principal_env),
                },
            }),
            contexts: IndexMap::new(),
            executors,
            identity: None,
            rate_limits: None,
            capabilities,
        };
        let warnings = validate_generated(&config)?;
        Ok(Onboarding {
            config,
            engine,
            mode,
            schema: self.catalog.schema.clone(),
            table: self.table.name.clone(),
            primary_key: pk,
            tenant_column: tenant,
            conflict_column: conflict,
            read_tool,
            proposal_tool: proposes.then_some(proposal_tool),
            id_arg,
            visible_columns: visible,
            hidden_columns: hidden,
            writeback,
            inferred: self.inferred,
            warnings,
            env,
            smoke_id: sel.smoke_id.clone(),
        })
    }
}

fn check_arg_name(name: &str, field: Field) -> Result<(), OnboardError> {
    if !is_safe_identifier(name) {
        return Err(OnboardError::field(
            "ONBOARD_ARG_NAME_INVALID",
            field,
            format!("argument {name:?} must be letters, digits and _ (not starting with a digit)"),
        ));
    }
    if is_reserved_arg_name(name) {
        return Err(OnboardError::field(
            "ONBOARD_ARG_NAME_INVALID",
            field,
            format!(
                "argument {name:?} is reserved: tenant, principal, SQL and approval values never come from the model; choose another name"
            ),
        ));
    }
    Ok(())
}

/// The argument that sets `col`: bounded number, enum of target states, number for a numeric
/// column, else a string of at most 500 characters.
fn arg_spec(
    col: &str,
    bound: Option<&(Option<f64>, Option<f64>)>,
    guard: Option<&IndexMap<String, Vec<String>>>,
    table: &TableInfo,
) -> ArgSpec {
    let numeric = table.column(col).is_some_and(|c| is_numeric_type(&c.data_type));
    if let Some((minimum, maximum)) = bound {
        return ArgSpec {
            arg_type: ArgType::Number,
            description: Some(format!("The new {col}{}.", range_text(*minimum, *maximum))),
            required: true,
            max_length: None,
            minimum: *minimum,
            maximum: *maximum,
            allowed: None,
        };
    }
    if let Some(g) = guard {
        let mut targets: Vec<String> = Vec::new();
        for to in g.values().flatten() {
            if !targets.contains(to) {
                targets.push(to.clone());
            }
        }
        return ArgSpec {
            arg_type: ArgType::String,
            description: Some(format!("The new {col}: one of {}.", targets.join(", "))),
            required: true,
            max_length: Some(128),
            minimum: None,
            maximum: None,
            allowed: Some(targets.into_iter().map(Value::String).collect()),
        };
    }
    if numeric {
        return ArgSpec {
            arg_type: ArgType::Number,
            description: Some(format!("The new {col}.")),
            required: true,
            max_length: None,
            minimum: None,
            maximum: None,
            allowed: None,
        };
    }
    ArgSpec {
        arg_type: ArgType::String,
        description: Some(format!("The new {col}.")),
        required: true,
        max_length: Some(500),
        minimum: None,
        maximum: None,
        allowed: None,
    }
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!(", from {a} to {b}"),
        (Some(a), None) => format!(", at least {a}"),
        (None, Some(b)) => format!(", at most {b}"),
        (None, None) => String::new(),
    }
}

/// Runs the generated config through the validator: its errors would be a bug here, so they are
/// reported as one (nothing is written); its warnings go to the user.
fn validate_generated(config: &RunnerConfig) -> Result<Vec<ConfigIssue>, OnboardError> {
    let doc = serde_json::to_value(config)
        .map_err(|e| OnboardError::new("ONBOARD_CONFIG_INVALID", format!("the config did not serialize: {e}")))?;
    match parse_config_value(doc) {
        Ok((_, issues)) => Ok(issues.into_iter().filter(|i| i.severity == Severity::Warning).collect()),
        Err(report) => {
            let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            Err(OnboardError::new(
                "ONBOARD_CONFIG_INVALID",
                format!("the generated config does not validate: {}", errors.join("; ")),
            ))
        }
    }
}

fn list_tables(catalog: &Catalog) -> String {
    if catalog.tables.is_empty() {
        return format!("schema {} has no tables or views this role can see", catalog.schema);
    }
    let names: Vec<&str> = catalog.tables.iter().take(30).map(|t| t.name.as_str()).collect();
    let more = catalog.tables.len().saturating_sub(names.len());
    if more > 0 {
        format!("tables: {}, and {more} more", names.join(", "))
    } else {
        format!("tables: {}", names.join(", "))
    }
}
