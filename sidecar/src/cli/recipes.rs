//! `recipes list|show|init`: the built-in recipes of [`crate::recipes`] on the command line.
//!
//! `init` is the only command here that writes: the config file and, when asked, the demo schema
//! next to it. It never overwrites a file without `--force` and never connects to a database.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use synapsor_core::config::{Engine, Mode};

use super::common::{CliError, GlobalArgs, print_json};
use crate::recipes::{self, Recipe, RecipeError, RenderOptions};

/// The long help of `recipes`.
pub const LONG_ABOUT: &str = "\
Built-in recipes are small, tested configs for common reviewed business actions: one read tool and
one proposal tool over a demo table, with the guards a reviewer wants (tenant scope, a version
guard, allowed columns, bounded or fixed values, status transitions, argument limits).

  synapsor-runner recipes list
  synapsor-runner recipes show billing.late_fee_waiver --engine sqlite
  synapsor-runner recipes init billing.late_fee_waiver --engine sqlite --with-schema

See docs/recipes.md.";

#[derive(Debug, Subcommand)]
pub enum RecipesCommand {
    /// List the built-in recipes: id, title and what each does.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one recipe: what it does, the tools a model sees (arguments and limits), what is
    /// never exposed, the environment it needs, and its demo schema for an engine.
    Show {
        /// Recipe id, e.g. billing.late_fee_waiver (see `recipes list`).
        id: String,
        /// The engine whose demo schema to show.
        #[arg(long, value_enum, default_value = "postgres")]
        engine: EngineArg,
        /// Print only the demo schema SQL (to pipe into psql, mysql or sqlite3).
        #[arg(long, conflicts_with = "json")]
        schema_only: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a recipe's config (and, with --with-schema, its demo schema), then print the next
    /// steps. Never overwrites a file without --force; never connects to a database.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Recipe id, e.g. billing.late_fee_waiver (see `recipes list`).
    pub id: String,
    /// The database engine of the source: postgres, mysql (MySQL and MariaDB) or sqlite.
    #[arg(long, value_enum, default_value = "postgres")]
    pub engine: EngineArg,
    /// review: proposals are applied after a person approves (needs SYNAPSOR_DATABASE_WRITE_URL
    /// at apply time); shadow: proposals are recorded, never applied; read_only: only the read
    /// tool, no proposal tool.
    #[arg(long, value_enum, default_value = "review")]
    pub mode: ModeArg,
    /// Where to write the config.
    #[arg(long, default_value = "synapsor.runner.json")]
    pub out: PathBuf,
    /// The schema the demo table lives in: the PostgreSQL schema (default public), the MySQL
    /// database (default synapsor_demo) or SQLite's main.
    #[arg(long)]
    pub schema: Option<String>,
    /// Also write the demo schema SQL: to FILE, or without FILE to <id>.<engine>.sql next to the
    /// config.
    #[arg(long, value_name = "FILE")]
    pub with_schema: Option<Option<PathBuf>>,
    /// Overwrite the config (and schema file) if they exist.
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Postgres,
    /// MySQL 8 or MariaDB.
    Mysql,
    Sqlite,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Engine {
        match e {
            EngineArg::Postgres => Engine::Postgres,
            EngineArg::Mysql => Engine::Mysql,
            EngineArg::Sqlite => Engine::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    #[value(name = "read_only")]
    ReadOnly,
    Shadow,
    Review,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::ReadOnly => Mode::ReadOnly,
            ModeArg::Shadow => Mode::Shadow,
            ModeArg::Review => Mode::Review,
        }
    }
}

impl From<RecipeError> for CliError {
    fn from(e: RecipeError) -> Self {
        match e {
            // A broken embedded recipe is this build's fault, not the user's input.
            RecipeError::Broken { .. } => CliError::new(e.code(), e.to_string()),
            _ => CliError::usage(e.code(), e.to_string()),
        }
    }
}

impl RecipesCommand {
    /// Whether `--json` was given (errors are then JSON too).
    pub fn json(&self) -> bool {
        match self {
            RecipesCommand::List { json } | RecipesCommand::Show { json, .. } => *json,
            RecipesCommand::Init(a) => a.json,
        }
    }
}

/// `recipes list|show|init`.
pub fn run(_global: &GlobalArgs, cmd: RecipesCommand) -> Result<i32, CliError> {
    match cmd {
        RecipesCommand::List { json } => list(json),
        RecipesCommand::Show {
            id,
            engine,
            schema_only,
            json,
        } => show(&id, engine.into(), schema_only, json),
        RecipesCommand::Init(args) => init(args),
    }
}

fn list(json: bool) -> Result<i32, CliError> {
    let all = recipes::all()?;
    if json {
        let items: Vec<Value> = all
            .iter()
            .map(|r| {
                json!({
                    "id": r.id(),
                    "title": r.meta.title,
                    "summary": r.meta.summary,
                    "tools": r.meta.tools,
                })
            })
            .collect();
        print_json(&json!({"ok": true, "recipes": items}));
        return Ok(0);
    }
    outln!("{} built-in recipes:", all.len());
    let width = all.iter().map(|r| r.id().len()).max().unwrap_or(0);
    for r in &all {
        outln!("  {:<width$}  {}", r.id(), r.meta.title);
        outln!("  {:<width$}  {}", "", r.meta.summary);
    }
    outln!("\nShow one:  synapsor-runner recipes show <id> [--engine postgres|mysql|sqlite]");
    outln!(
        "Use one:   synapsor-runner recipes init <id> [--engine ...] [--mode read_only|shadow|review] [--with-schema]"
    );
    Ok(0)
}

fn show(id: &str, engine: Engine, schema_only: bool, json: bool) -> Result<i32, CliError> {
    let recipe = recipes::get(id)?;
    if schema_only {
        out!("{}", recipe.schema_sql(engine));
        return Ok(0);
    }
    if json {
        print_json(&recipes::show_doc(&recipe, engine, None)?);
        return Ok(0);
    }
    let opts = RenderOptions {
        engine,
        mode: Mode::Review,
        schema: None,
    };
    let doc = recipe.render(&opts)?;
    let m = &recipe.meta;
    outln!("{}  ({})\n", m.title, recipe.id());
    outln!("{}\n", m.description);
    outln!("The model can:");
    for line in &m.model_can {
        outln!("  - {line}");
    }
    outln!("The model cannot:");
    for line in &m.model_cannot {
        outln!("  - {line}");
    }
    outln!();
    out!("{}", recipe.tool_preview_text(&opts)?);
    outln!();
    outln!("Environment (names only; the config never holds a value):");
    for v in recipes::env_vars(&doc, engine) {
        outln!("  {:<28} {}: {}", v.name, v.example, v.purpose);
    }
    outln!(
        "  ({} is needed in review mode only: `recipes init --mode shadow` or `read_only` leave it out.)",
        recipes::WRITE_URL_ENV
    );
    outln!();
    outln!(
        "Demo schema for {} (tables {}, rows of tenants acme and globex):\n",
        engine.as_str(),
        m.tables.join(", ")
    );
    out!("{}", recipe.schema_sql(engine));
    outln!();
    outln!(
        "Use it:  synapsor-runner recipes init {} --engine {} --with-schema",
        recipe.id(),
        engine.as_str()
    );
    Ok(0)
}

/// A file that `init` may not overwrite without --force (`ONBOARD_FILE_EXISTS`, exit 2).
fn refuse_existing(path: &Path) -> CliError {
    CliError::usage(
        "ONBOARD_FILE_EXISTS",
        format!(
            "{} already exists; nothing was written. Pass --force to overwrite it, or --out another file",
            path.display()
        ),
    )
}

/// Writes `text` to `path`: with `force` replacing it, else only if it does not exist (the
/// check and the creation are one step).
fn write_file(path: &Path, text: &str, force: bool) -> Result<(), CliError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            CliError::new(
                "ONBOARD_WRITE_FAILED",
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options.open(path).and_then(|mut f| {
        use std::io::Write as _;
        f.write_all(text.as_bytes())
    });
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(refuse_existing(path)),
        Err(e) => Err(CliError::new(
            "ONBOARD_WRITE_FAILED",
            format!("cannot write {}: {e}", path.display()),
        )),
    }
}

fn init(args: InitArgs) -> Result<i32, CliError> {
    let recipe: Recipe = recipes::get(&args.id)?;
    let engine: Engine = args.engine.into();
    let opts = RenderOptions {
        engine,
        mode: args.mode.into(),
        schema: args.schema.clone(),
    };
    let doc = recipe.render(&opts)?;
    let schema_path = args.with_schema.as_ref().map(|p| match p {
        Some(p) => p.clone(),
        None => args
            .out
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(recipe.schema_file_name(engine)),
    });
    if schema_path.as_deref() == Some(args.out.as_path()) {
        return Err(CliError::usage(
            "ONBOARD_FILE_CONFLICT",
            "--with-schema names the same file as --out",
        ));
    }
    // Both refusals come before anything is written.
    if !args.force {
        for p in std::iter::once(&args.out).chain(schema_path.as_ref()) {
            if p.exists() {
                return Err(refuse_existing(p));
            }
        }
    }
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| CliError::new("ONBOARD_WRITE_FAILED", format!("cannot serialize the config: {e}")))?;
    write_file(&args.out, &format!("{text}\n"), args.force)?;
    if let Some(p) = &schema_path
        && let Err(e) = write_file(p, recipe.schema_sql(engine), args.force)
    {
        // All or nothing: the config just written goes again.
        let _ = std::fs::remove_file(&args.out);
        return Err(e);
    }

    let config_arg = if args.out == Path::new("synapsor.runner.json") {
        String::new()
    } else {
        format!("--config {}", args.out.display())
    };
    let schema_shown = schema_path.as_ref().map(|p| p.display().to_string());
    let steps = recipes::next_steps(&recipe, &doc, &opts, &config_arg, schema_shown.as_deref());
    let tools = recipes::capability_names(&doc);
    if args.json {
        print_json(&json!({
            "ok": true,
            "recipe": recipe.id(),
            "engine": engine.as_str(),
            "mode": opts.mode.as_str(),
            "config": args.out.display().to_string(),
            "schema_file": schema_shown,
            "tools": tools,
            "env": recipes::env_vars(&doc, engine),
            "next_steps": steps,
        }));
        return Ok(0);
    }
    outln!(
        "Wrote {} (recipe {}, engine {}, mode {}).",
        args.out.display(),
        recipe.id(),
        engine.as_str(),
        opts.mode.as_str()
    );
    if let Some(p) = &schema_shown {
        outln!("Wrote {p} (demo schema for {}).", engine.as_str());
    }
    outln!("Tools the model will see: {}", tools.join(", "));
    if opts.mode == Mode::ReadOnly {
        outln!(
            "Not exposed in read_only mode: {} (use --mode shadow or review to add it).",
            recipe.proposal_tool()
        );
    }
    outln!("\nNext steps:");
    for (i, step) in steps.iter().enumerate() {
        outln!("  {}. {step}", i + 1);
    }
    Ok(0)
}
