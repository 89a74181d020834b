//! `inspect`, `init` and `onboard db`: from a live database to a reviewed config.
//!
//! `inspect` reads the catalog (never table data) and prints it with suggestions. `init` turns a
//! selection (flags, an answers file, or the wizard on a terminal) into `synapsor.runner.json`,
//! `.env.example`, MCP client snippets and an optional handler template. `onboard db` is `init`
//! followed by the checks a first run needs: config validation, the tool boundary, `doctor`,
//! and a first smoke call when it can.
//!
//! The rules (what is suggested, what is refused, what the config becomes) live in
//! `synapsor-onboard`; this module does the IO around them.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use synapsor_core::config::{Engine, Mode};
use synapsor_core::context::{Env, ProcessEnv};
use synapsor_onboard::report::{env_example, inspection_json, inspection_text, next_steps, preview_text};
use synapsor_onboard::selection::{add_legacy_patch_flags, parse_bound_flags, parse_guard_flags, parse_patch_flags};
use synapsor_onboard::{OnboardError, Onboarding, Selection, Writeback, plan};
use synapsor_source::catalog::{Catalog, engine_from_url, read_catalog};

use synapsor_core::capability::Caller;
use synapsor_core::tools::{AliasMode, boundary_findings, tool_defs};

use super::common::{CliError, GlobalArgs, load_config, print_json};
use super::mcp::{AliasArg, LedgerCalls, ProposalStoreArg, ServeArgs, build_runtime};
use crate::client_config::{ClientConfigOptions, ClientKind, client_config};
use crate::mcp::McpServer;

/// Shown under `init --help` and `onboard db --help`.
pub const INIT_EXAMPLES: &str = "\
Examples:
  export APP_DATABASE_URL='postgres://readonly@db.internal/app'   (never on the command line)
  synapsor-runner inspect --from-env APP_DATABASE_URL
  synapsor-runner onboard db --from-env APP_DATABASE_URL           the wizard, on a terminal
  synapsor-runner onboard db --from-env APP_DATABASE_URL --yes --table invoices \\
    --patch late_fee_cents=fixed:0,waiver_reason=arg:reason
  synapsor-runner init --answers onboarding-selection.json --dry-run

Without --yes, --answers or --table (or with --wizard), a terminal gets the wizard; without a
terminal the command refuses and names these flags. Ambiguous suggestions (two tenant columns, no primary key, no
version column) are named as the flag to pass. Bad input exits 2 and writes nothing.
See docs/onboarding.md.";

/// Where the database URL comes from when no flag names a variable.
const DEFAULT_URL_ENV: &str = synapsor_onboard::plan::DEFAULT_READ_URL_ENV;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Auto,
    Postgres,
    Mysql,
    Sqlite,
}

impl EngineArg {
    fn engine(self) -> Option<Engine> {
        match self {
            EngineArg::Auto => None,
            EngineArg::Postgres => Some(Engine::Postgres),
            EngineArg::Mysql => Some(Engine::Mysql),
            EngineArg::Sqlite => Some(Engine::Sqlite),
        }
    }
}

/// How to reach the database: the name of the variable holding its URL, never the URL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Environment variable holding the database URL (a read-only role is enough). Default
    /// SYNAPSOR_DATABASE_READ_URL.
    #[arg(
        long = "from-env",
        visible_alias = "url-env",
        alias = "database-url-env",
        value_name = "ENV"
    )]
    pub from_env: Option<String>,
    /// postgres | mysql | sqlite, or auto (from the URL's scheme).
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineArg,
    /// PostgreSQL schema (default public), MySQL database (default: the URL's), SQLite main.
    #[arg(long)]
    pub schema: Option<String>,
    /// A URL given here is refused: pass the name of the variable that holds it.
    #[arg(hide = true)]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum OnboardCommand {
    /// Onboard one table of your database: init, then validate, check the tool boundary, doctor,
    /// and print the next commands.
    #[command(after_help = INIT_EXAMPLES)]
    Db(Box<InitArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ModeArg {
    ReadOnly,
    Shadow,
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum WritebackArg {
    SqlUpdate,
    HttpHandler,
    CommandHandler,
}

/// The flags of `init` and `onboard db`: every key of the answers file, plus what to write.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Answers file (JSON, schemas/onboarding-selection.v1.schema.json); flags override it.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Ask with the wizard even when --table or --answers gave some choices (they become its
    /// defaults). Needs a terminal.
    #[arg(long, conflicts_with_all = ["yes", "non_interactive", "dry_run"])]
    pub wizard: bool,
    /// Do not prompt: take the flags, the answers file and unambiguous suggestions.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Same as --yes.
    #[arg(long)]
    pub non_interactive: bool,
    /// Print the preview and the config; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Config file to write.
    #[arg(long, visible_alias = "output", default_value = "synapsor.runner.json")]
    pub out: PathBuf,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,

    /// The table or view to expose.
    #[arg(long)]
    pub table: Option<String>,
    /// The column that identifies one row (default: the primary key).
    #[arg(long)]
    pub primary_key: Option<String>,
    /// The tenant column (default: the one tenant-named column).
    #[arg(long, visible_alias = "tenant-key")]
    pub tenant_column: Option<String>,
    /// Development only: the table has no tenant column.
    #[arg(long)]
    pub single_tenant_dev: bool,
    /// The version column compared at apply time (default: updated_at, version, ...).
    #[arg(long)]
    pub conflict_column: Option<String>,
    /// No version column: compare a hash of the whole row instead (weaker).
    #[arg(long)]
    pub weak_conflict_guard: bool,
    /// Columns the model sees, comma-separated (default: neither sensitive, large nor the tenant).
    #[arg(long, value_delimiter = ',')]
    pub visible_columns: Option<Vec<String>>,
    /// Columns a proposal may change, comma-separated (default: the patched ones).
    #[arg(long, value_delimiter = ',')]
    pub allowed_columns: Option<Vec<String>>,
    /// Allow a sensitive-named column in --visible-columns.
    #[arg(long)]
    pub allow_sensitive: bool,
    /// read_only (a read tool), shadow or review (a read tool and a proposal tool). Default:
    /// review with a --patch, else read_only.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Capability namespace (default: the first word of the object name).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Object name in tool names (default: the table in the singular).
    #[arg(long)]
    pub object_name: Option<String>,
    /// The argument that carries the row id (default <object>_id).
    #[arg(long, visible_alias = "lookup-arg")]
    pub id_arg: Option<String>,
    /// Read tool name (default <namespace>.inspect_<object>).
    #[arg(long, visible_alias = "inspect-tool-name")]
    pub read_tool: Option<String>,
    /// Proposal tool name (default <namespace>.propose_<object>_update).
    #[arg(long, visible_alias = "proposal-tool-name")]
    pub proposal_tool: Option<String>,
    /// What the read tool does, for the model.
    #[arg(long, visible_alias = "inspect-description")]
    pub read_description: Option<String>,
    /// What the read tool returns, for the model.
    #[arg(long)]
    pub read_returns_hint: Option<String>,
    /// What the proposal tool does, for the model.
    #[arg(long)]
    pub proposal_description: Option<String>,
    /// What the proposal tool returns, for the model.
    #[arg(long)]
    pub proposal_returns_hint: Option<String>,
    /// The change a proposal records: COLUMN=fixed:VALUE or COLUMN=arg:NAME (repeatable,
    /// comma-separated lists allowed).
    #[arg(long)]
    pub patch: Vec<String>,
    /// Older form: COLUMN=VALUE, a fixed value.
    #[arg(long)]
    pub patch_fixed: Vec<String>,
    /// Older form: COLUMN=ARG, the value of a model argument.
    #[arg(long)]
    pub patch_from_arg: Vec<String>,
    /// Inclusive bounds of a patched number: COLUMN=MIN:MAX (either side may be empty).
    #[arg(long, visible_alias = "numeric-bound")]
    pub patch_bounds: Vec<String>,
    /// Allowed status transitions: COLUMN=FROM:TO|TO;FROM2:TO.
    #[arg(long, visible_alias = "transition-guard")]
    pub status_guards: Vec<String>,
    /// Environment variable with the trusted tenant (default SYNAPSOR_TENANT_ID).
    #[arg(long)]
    pub tenant_env: Option<String>,
    /// Environment variable with the trusted principal (default SYNAPSOR_PRINCIPAL).
    #[arg(long)]
    pub principal_env: Option<String>,
    /// A role approvers must hold.
    #[arg(long)]
    pub approval_role: Option<String>,
    /// Source name in the config (default local_<engine>).
    #[arg(long)]
    pub source_name: Option<String>,
    /// Result envelope: 1 or 2 (default 2).
    #[arg(long, value_parser = parse_result_format)]
    pub result_format: Option<u8>,
    /// Environment variable the config reads the read URL from (default: --from-env's).
    #[arg(long)]
    pub read_url_env: Option<String>,
    /// Environment variable with the writer URL (default SYNAPSOR_DATABASE_WRITE_URL for sql_update).
    #[arg(long)]
    pub write_url_env: Option<String>,
    /// How an approved proposal is written (default sql_update).
    #[arg(long, value_enum)]
    pub writeback: Option<WritebackArg>,
    /// Executor name for handler writeback (default app_handler).
    #[arg(long)]
    pub executor_name: Option<String>,
    /// http_handler: environment variable with the handler URL (default SYNAPSOR_APP_WRITEBACK_URL).
    #[arg(long)]
    pub handler_url_env: Option<String>,
    /// http_handler: environment variable with a bearer token for the handler.
    #[arg(long)]
    pub handler_token_env: Option<String>,
    /// Environment variable with the HMAC secret that signs handler requests.
    #[arg(long)]
    pub handler_signing_secret_env: Option<String>,
    /// command_handler: environment variable with the command (default SYNAPSOR_APP_WRITEBACK_COMMAND).
    #[arg(long)]
    pub handler_command_env: Option<String>,
    /// Handler timeout in milliseconds.
    #[arg(long)]
    pub handler_timeout_ms: Option<u64>,
    /// Also write a starter handler (http_handler: http; command_handler: command).
    #[arg(long)]
    pub emit_handler: bool,
    /// Write no handler template (the default; the original's flag, also --skip-handler-template).
    #[arg(long, alias = "skip-handler-template", conflicts_with_all = ["emit_handler", "handler_template"])]
    pub no_emit_handler: bool,
    /// The handler template to write: http, command, fastapi or axum.
    #[arg(long)]
    pub handler_template: Option<String>,
    /// Where to write the handler (default beside the config).
    #[arg(long)]
    pub handler_output: Option<PathBuf>,
    /// An object id for a first smoke call.
    #[arg(long)]
    pub smoke_id: Option<String>,
}

fn parse_result_format(s: &str) -> Result<u8, String> {
    match s {
        "1" | "v1" => Ok(1),
        "2" | "v2" => Ok(2),
        _ => Err("expected 1 or 2".into()),
    }
}

fn usage(e: OnboardError) -> CliError {
    CliError::usage(e.code, e.to_string())
}

impl InitArgs {
    /// The selection the flags make (only what was given).
    fn selection(&self) -> Result<Selection, CliError> {
        let mut patch = parse_patch_flags(&self.patch).map_err(usage)?;
        add_legacy_patch_flags(&mut patch, &self.patch_fixed, &self.patch_from_arg).map_err(usage)?;
        let bounds = parse_bound_flags(&self.patch_bounds).map_err(usage)?;
        let guards = parse_guard_flags(&self.status_guards).map_err(usage)?;
        let some = |b: bool| b.then_some(true);
        Ok(Selection {
            mode: self.mode.map(|m| match m {
                ModeArg::ReadOnly => Mode::ReadOnly,
                ModeArg::Shadow => Mode::Shadow,
                ModeArg::Review => Mode::Review,
            }),
            engine: self.db.engine.engine(),
            table: self.table.clone(),
            schema: self.db.schema.clone(),
            primary_key: self.primary_key.clone(),
            tenant_column: self.tenant_column.clone(),
            single_tenant_dev: some(self.single_tenant_dev),
            conflict_column: self.conflict_column.clone(),
            weak_conflict_guard: some(self.weak_conflict_guard),
            namespace: self.namespace.clone(),
            object_name: self.object_name.clone(),
            read_tool: self.read_tool.clone(),
            proposal_tool: self.proposal_tool.clone(),
            id_arg: self.id_arg.clone(),
            read_description: self.read_description.clone(),
            read_returns_hint: self.read_returns_hint.clone(),
            proposal_description: self.proposal_description.clone(),
            proposal_returns_hint: self.proposal_returns_hint.clone(),
            result_format: self.result_format,
            visible_columns: self.visible_columns.clone(),
            allowed_columns: self.allowed_columns.clone(),
            allow_sensitive: some(self.allow_sensitive),
            patch: (!patch.is_empty()).then_some(patch),
            patch_bounds: (!bounds.is_empty()).then_some(bounds),
            status_guards: (!guards.is_empty()).then_some(guards),
            tenant_env: self.tenant_env.clone(),
            principal_env: self.principal_env.clone(),
            approval_role: self.approval_role.clone(),
            read_url_env: self.read_url_env.clone(),
            write_url_env: self.write_url_env.clone(),
            source_name: self.source_name.clone(),
            writeback: self.writeback.map(|w| match w {
                WritebackArg::SqlUpdate => Writeback::SqlUpdate,
                WritebackArg::HttpHandler => Writeback::HttpHandler,
                WritebackArg::CommandHandler => Writeback::CommandHandler,
            }),
            executor_name: self.executor_name.clone(),
            handler_url_env: self.handler_url_env.clone(),
            handler_token_env: self.handler_token_env.clone(),
            handler_signing_secret_env: self.handler_signing_secret_env.clone(),
            handler_command_env: self.handler_command_env.clone(),
            handler_timeout_ms: self.handler_timeout_ms,
            smoke_id: self.smoke_id.clone(),
            ..Default::default()
        })
    }

    /// Scripted (no prompts) when asked, or when an answers file or a table was given.
    fn scripted(&self) -> bool {
        !self.wizard
            && (self.yes || self.non_interactive || self.answers.is_some() || self.table.is_some() || self.dry_run)
    }
}

/// The variable holding the database URL, checked to be a name (a URL pasted here is refused
/// without being echoed).
fn url_env_name(db: &DatabaseArgs, sel: &Selection) -> Result<String, CliError> {
    if db.url.is_some() {
        return Err(CliError::usage(
            "ONBOARD_URL_NOT_ENV",
            "a database URL was given on the command line: put it in an environment variable and pass --from-env NAME (the URL was not stored)",
        ));
    }
    let name = db
        .from_env
        .clone()
        .or_else(|| sel.read_url_env.clone())
        .or_else(|| sel.database_url_env.clone())
        .unwrap_or_else(|| DEFAULT_URL_ENV.to_owned());
    if name.contains("://") || name.contains('@') {
        return Err(CliError::usage(
            "ONBOARD_URL_NOT_ENV",
            "--from-env takes the NAME of an environment variable that holds the URL, not the URL (it was not stored)",
        ));
    }
    if !synapsor_core::ident::is_env_name(&name) {
        return Err(CliError::usage(
            "ONBOARD_ENV_NAME_INVALID",
            format!("--from-env {name:?} is not an environment variable name (A-Z, 0-9 and _)"),
        ));
    }
    Ok(name)
}

/// Reads the catalog of the database whose URL is in `env_name`.
async fn inspect_database(
    env_name: &str,
    engine: Option<Engine>,
    schema: Option<&str>,
    env: &dyn Env,
) -> Result<Catalog, CliError> {
    let Some(url) = env.var(env_name) else {
        return Err(CliError::usage(
            "ONBOARD_DATABASE_ENV_MISSING",
            format!("{env_name} is not set: export the database URL there, or pass --from-env NAME"),
        ));
    };
    let Some(engine) = engine.or_else(|| engine_from_url(&url)) else {
        return Err(CliError::usage(
            "INSPECT_ENGINE_UNKNOWN",
            format!("cannot tell the engine from the URL in {env_name}: pass --engine postgres|mysql|sqlite"),
        ));
    };
    read_catalog(engine, &url, schema)
        .await
        .map_err(|e| CliError::new(e.code(), format!("{env_name}: {e}")))
}

/// `inspect`.
pub async fn inspect(_global: &GlobalArgs, args: InspectArgs) -> Result<i32, CliError> {
    let env_name = url_env_name(&args.db, &Selection::default())?;
    let catalog = inspect_database(
        &env_name,
        args.db.engine.engine(),
        args.db.schema.as_deref(),
        &ProcessEnv,
    )
    .await?;
    if args.json {
        print_json(&inspection_json(&catalog));
    } else {
        out!("{}", inspection_text(&catalog));
    }
    Ok(0)
}

/// The files `init` writes, in order.
#[derive(Debug)]
struct PlannedFile {
    path: PathBuf,
    text: String,
    what: &'static str,
    executable: bool,
}

fn sibling(config: &Path, name: &str) -> PathBuf {
    match config.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

fn files_for(o: &Onboarding, args: &InitArgs) -> Result<Vec<PlannedFile>, CliError> {
    let config_text = format!(
        "{}\n",
        serde_json::to_string_pretty(&o.config)
            .map_err(|e| CliError::new("ONBOARD_CONFIG_INVALID", format!("the config did not serialize: {e}")))?
    );
    let mut files = vec![
        PlannedFile {
            path: args.out.clone(),
            text: config_text,
            what: "config",
            executable: false,
        },
        PlannedFile {
            path: sibling(&args.out, ".env.example"),
            text: env_example(o),
            what: "environment placeholders",
            executable: false,
        },
    ];
    // MCP client snippets. Clients start the server from a directory of their own: the config's
    // path is absolute, and the env block names what the server reads (placeholders only).
    let config_path = std::path::absolute(&args.out)
        .unwrap_or_else(|_| args.out.clone())
        .display()
        .to_string();
    let caps = super::mcp::exposed(&o.config)?;
    let server_env = super::mcp::server_env(&o.config, &caps);
    for client in [ClientKind::ClaudeDesktop, ClientKind::Cursor, ClientKind::Vscode] {
        let mut opts = ClientConfigOptions::new(client, config_path.clone());
        opts.tool_names = caps.iter().map(|c| c.name.clone()).collect();
        opts.server_env = server_env.clone();
        let snippet = client_config(&opts)?;
        files.push(PlannedFile {
            path: sibling(&args.out, &format!(".synapsor/mcp/{}.json", client.as_str())),
            text: format!("{}\n", serde_json::to_string_pretty(&snippet).unwrap_or_default()),
            what: "MCP client snippet",
            executable: false,
        });
    }
    if let Some(id) = &o.smoke_id {
        files.push(PlannedFile {
            path: sibling(&args.out, ".synapsor/smoke-input.json"),
            text: format!("{}\n", json!({ o.id_arg.clone(): id })),
            what: "smoke call input",
            executable: false,
        });
    }
    let handler_kind = match (&args.handler_template, args.emit_handler, o.writeback) {
        (Some(kind), _, _) => Some(kind.as_str()),
        (None, true, Some(Writeback::HttpHandler)) => Some("http"),
        (None, true, Some(Writeback::CommandHandler)) => Some("command"),
        (None, true, _) => {
            return Err(CliError::usage(
                "ONBOARD_HANDLER_FLAG_UNUSED",
                "--emit-handler (answers key `writeback`): a handler template is for --writeback http_handler or command_handler",
            ));
        }
        (None, false, _) => None,
    };
    if let Some(kind) = handler_kind {
        if !matches!(o.writeback, Some(Writeback::HttpHandler | Writeback::CommandHandler)) {
            return Err(CliError::usage(
                "ONBOARD_HANDLER_FLAG_UNUSED",
                "--handler-template: a handler template is for --writeback http_handler or command_handler",
            ));
        }
        let t = super::handler::template(kind).map_err(|e| CliError::usage(e.code(), e.to_string()))?;
        files.push(PlannedFile {
            path: args
                .handler_output
                .clone()
                .unwrap_or_else(|| sibling(&args.out, t.file)),
            text: t.text.to_owned(),
            what: "handler template",
            executable: matches!(t.file, "handler.mjs" | "handler.py"),
        });
    }
    Ok(files)
}

/// Writes every file, or none: existing ones are refused (without --force) before any write.
fn write_files(files: &[PlannedFile], force: bool) -> Result<(), CliError> {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|f| f.path.exists())
            .map(|f| f.path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::usage(
                "ONBOARD_FILE_EXISTS",
                format!(
                    "{} already exist(s); nothing was written. Pass --force to overwrite, or --out another path",
                    existing.join(", ")
                ),
            ));
        }
    }
    for f in files {
        if let Some(dir) = f.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::new("ONBOARD_WRITE_FAILED", format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&f.path, &f.text).map_err(|e| {
            CliError::new(
                "ONBOARD_WRITE_FAILED",
                format!("cannot write {}: {e}", f.path.display()),
            )
        })?;
        #[cfg(unix)]
        if f.executable {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(())
}

/// What `init` and `onboard db` do before their checks: the selection, the plan, the files.
struct Initialized {
    onboarding: Onboarding,
    files: Vec<PlannedFile>,
}

async fn initialize(args: &InitArgs, env: &dyn Env) -> Result<Option<Initialized>, CliError> {
    let mut sel = match &args.answers {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(
                    "ONBOARD_ANSWERS_UNREADABLE",
                    format!("--answers {}: {e}", path.display()),
                )
            })?;
            Selection::from_answers(&text).map_err(|e| {
                let mut e = e;
                e.message = format!("{} ({})", e.message, path.display());
                usage(e)
            })?
        }
        None => Selection::default(),
    };
    sel = sel.overlay(args.selection()?);
    synapsor_onboard::plan::check_env_names(&sel).map_err(usage)?;
    let env_name = url_env_name(&args.db, &sel)?;
    // The config reads the URL from the same variable unless told otherwise.
    if sel.read_url_env.is_none() && sel.database_url_env.is_none() {
        sel.read_url_env = Some(env_name.clone());
    }
    let catalog = inspect_database(&env_name, sel.engine, sel.schema.as_deref(), env).await?;
    let onboarding = if args.scripted() {
        plan(&sel, &catalog).map_err(usage)?
    } else {
        if !super::wizard::is_interactive() {
            return Err(CliError::usage(
                "ONBOARD_TTY_REQUIRED",
                "no terminal to prompt on: pass --table TABLE (and --patch ... for a proposal tool) with --yes, or --answers FILE. See --help",
            ));
        }
        match super::wizard::run(sel, &catalog)? {
            Some(o) => o,
            None => return Ok(None),
        }
    };
    let files = files_for(&onboarding, args)?;
    Ok(Some(Initialized { onboarding, files }))
}

fn summary_json(init: &Initialized, written: bool) -> Value {
    let o = &init.onboarding;
    json!({
        "ok": true,
        "written": written,
        "mode": o.mode.as_str(),
        "table": format!("{}.{}", o.schema, o.table),
        "tools": o.config.capabilities.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "visible_columns": o.visible_columns,
        "hidden_columns": o.hidden_columns,
        "inferred": o.inferred,
        "warnings": o.warnings,
        "env": o.env,
        "files": init.files.iter().map(|f| json!({"path": f.path.display().to_string(), "what": f.what})).collect::<Vec<_>>(),
        "config": o.config,
    })
}

/// `init`: with an id for a first read and the environment set, it also makes that read.
pub async fn init(global: &GlobalArgs, args: InitArgs) -> Result<i32, CliError> {
    let Some(init) = initialize(&args, &ProcessEnv).await? else {
        outln!("Nothing written.");
        return Ok(1);
    };
    let code = report(&init, &args)?;
    if code == 0 && !args.dry_run && !args.json && init.onboarding.smoke_id.is_some() {
        let checked = GlobalArgs {
            config: args.out.clone(),
            store: global.store.clone(),
        };
        if let Some(c) = first_read(&checked, &init.onboarding, &ProcessEnv).await {
            outln!("\nFirst read: {}", c["detail"].as_str().unwrap_or_default());
        }
    }
    Ok(code)
}

/// Prints the preview, writes (unless --dry-run) and prints what was written and what next.
fn report(init: &Initialized, args: &InitArgs) -> Result<i32, CliError> {
    let o = &init.onboarding;
    if args.dry_run {
        if args.json {
            print_json(&summary_json(init, false));
        } else {
            out!("{}", preview_text(o));
            outln!("\n--dry-run: nothing written. The config would be:\n");
            outln!("{}", serde_json::to_string_pretty(&o.config).unwrap_or_default());
        }
        return Ok(0);
    }
    write_files(&init.files, args.force)?;
    if args.json {
        print_json(&summary_json(init, true));
        return Ok(0);
    }
    out!("{}", preview_text(o));
    outln!("\nWrote");
    for f in &init.files {
        outln!("  {:<40} {}", f.path.display(), f.what);
    }
    outln!("\nNext");
    for s in next_steps(o, &args.out.display().to_string()) {
        outln!("  {s}");
    }
    Ok(0)
}

/// `onboard db`: init, then the checks of a first run.
pub async fn onboard(global: &GlobalArgs, cmd: OnboardCommand) -> Result<i32, CliError> {
    let OnboardCommand::Db(args) = cmd;
    let args = *args;
    let Some(init) = initialize(&args, &ProcessEnv).await? else {
        outln!("Nothing written.");
        return Ok(1);
    };
    let code = report(&init, &args)?;
    if args.dry_run || code != 0 {
        return Ok(code);
    }
    // The checks run on the written files, the way the user will run them.
    let checked = GlobalArgs {
        config: args.out.clone(),
        store: global.store.clone(),
    };
    let checks = first_run_checks(&checked, &init.onboarding, &ProcessEnv).await;
    let failed = checks
        .iter()
        .any(|c| c["ok"] == false && matches!(c["check"].as_str(), Some("config" | "tool boundary")));
    if args.json {
        print_json(&json!({"checks": checks}));
    } else {
        outln!("\nChecks");
        for c in &checks {
            let ok = c["ok"].as_bool().unwrap_or(false);
            outln!(
                "  [{}] {:<16} {}",
                if ok { "ok" } else { "!!" },
                c["check"].as_str().unwrap_or_default(),
                c["detail"].as_str().unwrap_or_default()
            );
        }
    }
    // The files are written either way. A config or boundary failure is onboarding's own
    // (exit 1); doctor's and the smoke call's findings (an unset writer URL, a role without
    // SELECT) are the user's next steps, shown above.
    Ok(if failed { 1 } else { 0 })
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Value {
    json!({"check": name, "ok": ok, "detail": detail.into()})
}

/// What `onboard db` checks on the written config: it validates, the tools keep the boundary,
/// doctor's findings, and a first read when an id and the trusted environment are there.
async fn first_run_checks(global: &GlobalArgs, o: &Onboarding, env: &dyn Env) -> Vec<Value> {
    let mut out = Vec::new();
    match load_config(&global.config) {
        Ok((cfg, warnings)) => {
            out.push(check(
                "config",
                true,
                format!("{} is valid ({} warning(s))", global.config.display(), warnings.len()),
            ));
            match super::mcp::exposed(&cfg) {
                Ok(caps) => {
                    let refs: Vec<&synapsor_core::capability::Capability> = caps.iter().collect();
                    let defs = tool_defs(&refs, AliasMode::Canonical);
                    let findings = boundary_findings(&defs);
                    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                    out.push(if findings.is_empty() {
                        check(
                            "tool boundary",
                            true,
                            format!(
                                "{}; no SQL, approval or apply tool, no URL in tool metadata",
                                names.join(", ")
                            ),
                        )
                    } else {
                        check("tool boundary", false, findings.join("; "))
                    });
                }
                Err(e) => out.push(check("tool boundary", false, format!("{}: {e}", e.code()))),
            }
        }
        Err(e) => out.push(check("config", false, format!("{}: {e}", e.code()))),
    }
    let findings = super::doctor::findings(global).await;
    let failures: Vec<String> = findings
        .iter()
        .filter(|f| f["status"] == "fail")
        .map(|f| {
            format!(
                "{}: {}",
                f["check"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let warnings = findings.iter().filter(|f| f["status"] == "warn").count();
    out.push(if failures.is_empty() {
        check(
            "doctor",
            true,
            format!(
                "{} check(s), {warnings} warning(s): synapsor-runner doctor for details",
                findings.len()
            ),
        )
    } else {
        check("doctor", false, failures.join("; "))
    });
    out.extend(first_read(global, o, env).await);
    out
}

/// A first read, when it can be made: an id, and the read URL, tenant and principal set.
async fn first_read(global: &GlobalArgs, o: &Onboarding, env: &dyn Env) -> Option<Value> {
    let read_env = o.config.sources.first().map(|(_, s)| s.read_url_env.clone());
    let ctx = o
        .config
        .trusted_context
        .as_ref()
        .map(|c| c.values.clone())
        .unwrap_or_default();
    let needs: Vec<String> = [read_env, ctx.tenant_id_env, ctx.principal_env]
        .into_iter()
        .flatten()
        .filter(|n| env.var(n).is_none())
        .collect();
    Some(match (&o.smoke_id, needs.is_empty()) {
        (Some(id), true) => smoke_read(global, o, id).await,
        (Some(_), false) => check(
            "smoke call",
            true,
            format!("skipped: set {} to make a first read", needs.join(", ")),
        ),
        (None, _) => check("smoke call", true, "skipped: pass --smoke-id ID for a first read"),
    })
}

impl From<OnboardError> for CliError {
    fn from(e: OnboardError) -> Self {
        usage(e)
    }
}

/// One read through the real server path, as `smoke call` makes it (recorded in the ledger).
async fn smoke_read(global: &GlobalArgs, o: &Onboarding, id: &str) -> Value {
    let serve = ServeArgs {
        result_format: None,
        alias_mode: AliasArg::Canonical,
        proposal_store: ProposalStoreArg::Local,
        kube_namespace: None,
        proposal_ttl: "24h".into(),
    };
    let runtime = match build_runtime(global, &serve, LedgerCalls::Pooled).await {
        Ok((runtime, _)) => runtime,
        Err(e) => return check("smoke call", false, format!("{}: {e}", e.code())),
    };
    let server = McpServer::new(runtime, AliasMode::Canonical);
    let mut args = serde_json::Map::new();
    args.insert(o.id_arg.clone(), Value::String(id.to_owned()));
    let result = server.call(&o.read_tool, Some(args), &Caller::Process).await;
    let body = result.structured_content.unwrap_or(Value::Null);
    if result.is_error.unwrap_or(false) {
        let code = body["error"]["code"].as_str().unwrap_or("ERROR");
        check("smoke call", false, format!("{} {id}: {code}", o.read_tool))
    } else {
        check(
            "smoke call",
            true,
            format!("{} {id}: one row read and recorded", o.read_tool),
        )
    }
}
