//! Built-in recipes: small, tested configs for common reviewed business actions (a trial
//! extension, a late fee waiver, an account credit, a refund review, a ticket resolution), each
//! with the demo schema it runs on.
//!
//! What it is: the embedded recipe data (`sidecar/recipes/<id>/`: `recipe.json` with what the
//! recipe is for, `config.json` with its reviewed capabilities, and one demo schema per engine)
//! and the pure functions over it: list the recipes, find one, render its config for an engine
//! and mode, describe the tools a model sees, the environment it needs and the next steps.
//!
//! One source of truth per recipe: `config.json` is a complete, valid PostgreSQL config in review
//! mode. [`Recipe::render`] only changes what depends on the engine and the mode (the source's
//! engine, each target's schema, `mode`, the writer variable, and, in `read_only`, drops the
//! proposal capabilities) and validates the result with the same validator as `config validate`.
//!
//! What it is not: no IO (the `recipes` command writes files) and no database access (the demo
//! schemas are SQL text that a person, or a test, runs). Nothing here holds a connection URL or a
//! secret: configs name environment variables only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use synapsor_core::capability::{self, Capability};
use synapsor_core::config::{self, Engine, Mode};
use synapsor_core::tools::{self, AliasMode};

/// One recipe's files, embedded at build time so the binary works from any directory.
#[derive(Debug)]
struct Embedded {
    id: &'static str,
    meta: &'static str,
    config: &'static str,
    postgres: &'static str,
    mysql: &'static str,
    sqlite: &'static str,
}

macro_rules! embedded {
    ($id:literal) => {
        Embedded {
            id: $id,
            meta: include_str!(concat!("../recipes/", $id, "/recipe.json")),
            config: include_str!(concat!("../recipes/", $id, "/config.json")),
            postgres: include_str!(concat!("../recipes/", $id, "/schema.postgres.sql")),
            mysql: include_str!(concat!("../recipes/", $id, "/schema.mysql.sql")),
            sqlite: include_str!(concat!("../recipes/", $id, "/schema.sqlite.sql")),
        }
    };
}

/// The built-in recipes, in listing order (the original's five ids).
static EMBEDDED: [Embedded; 5] = [
    embedded!("accounts.trial_extension"),
    embedded!("billing.late_fee_waiver"),
    embedded!("credits.account_credit"),
    embedded!("orders.refund_review"),
    embedded!("support.ticket_resolution"),
];

/// The environment variables every generated config names (never their values).
pub const READ_URL_ENV: &str = "SYNAPSOR_DATABASE_READ_URL";
pub const WRITE_URL_ENV: &str = "SYNAPSOR_DATABASE_WRITE_URL";
pub const TENANT_ENV: &str = "SYNAPSOR_TENANT_ID";
pub const PRINCIPAL_ENV: &str = "SYNAPSOR_PRINCIPAL";

/// Why a recipe could not be found or rendered. [`RecipeError::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("unknown recipe {id:?}; the built-in recipes are {}", ids().join(", "))]
    Unknown { id: String },
    #[error(
        "schema {0:?} is not an SQL identifier (letters, digits and _, not starting with a digit, at most 63 characters)"
    )]
    InvalidSchema(String),
    /// The embedded data does not parse or validate: a bug in this build (unit tests check every
    /// recipe, engine and mode).
    #[error("built-in recipe {id} is broken ({detail}); please report this")]
    Broken { id: &'static str, detail: String },
}

impl RecipeError {
    pub fn code(&self) -> &'static str {
        match self {
            RecipeError::Unknown { .. } => "RECIPE_UNKNOWN",
            RecipeError::InvalidSchema(_) => "RECIPE_INVALID_SCHEMA",
            RecipeError::Broken { .. } => "RECIPE_BROKEN",
        }
    }
}

/// What `recipe.json` says about a recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeMeta {
    pub id: String,
    pub title: String,
    /// One line, for `recipes list`.
    pub summary: String,
    /// A paragraph: the business action, what the proposal changes, what stays with people.
    pub description: String,
    /// The demo tables the capabilities target (the writer needs SELECT and UPDATE on them).
    pub tables: Vec<String>,
    /// The capability names, read first; equal to the names in `config.json`.
    pub tools: Vec<String>,
    pub model_can: Vec<String>,
    pub model_cannot: Vec<String>,
    /// Example arguments that work on the demo rows.
    #[serde(rename = "try")]
    pub try_args: TryArgs,
}

/// Example calls on the demo rows, as tenant `acme`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryArgs {
    /// Arguments of the read tool for a row of `acme`.
    pub read: Map<String, Value>,
    /// The id of a row of tenant `globex`, which `acme` never sees.
    pub other_tenant_id: String,
    /// Arguments of the proposal tool that pass every guard on the demo rows.
    pub proposal: Map<String, Value>,
}

/// How to render a recipe's config.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub engine: Engine,
    pub mode: Mode,
    /// The PostgreSQL schema, MySQL database or SQLite schema of the demo table; default
    /// [`default_schema`].
    pub schema: Option<String>,
}

/// One environment variable a rendered config reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    /// A placeholder or demo value to export (never a real URL).
    pub example: String,
    /// What it must hold.
    pub purpose: String,
}

/// A built-in recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub meta: RecipeMeta,
    embedded: &'static Embedded,
}

/// The ids of the built-in recipes, in listing order.
pub fn ids() -> Vec<&'static str> {
    EMBEDDED.iter().map(|e| e.id).collect()
}

/// Every built-in recipe, in listing order.
pub fn all() -> Result<Vec<Recipe>, RecipeError> {
    EMBEDDED.iter().map(Recipe::load).collect()
}

/// The recipe `id` (`RECIPE_UNKNOWN` lists the ids otherwise).
pub fn get(id: &str) -> Result<Recipe, RecipeError> {
    let e = EMBEDDED
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| RecipeError::Unknown { id: id.to_owned() })?;
    Recipe::load(e)
}

/// The schema a target names by default: PostgreSQL's `public`, a MySQL database called
/// `synapsor_demo`, SQLite's `main`.
pub fn default_schema(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "public",
        Engine::Mysql => "synapsor_demo",
        Engine::Sqlite => "main",
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Recipe {
    fn load(e: &'static Embedded) -> Result<Recipe, RecipeError> {
        let meta: RecipeMeta = serde_json::from_str(e.meta).map_err(|err| RecipeError::Broken {
            id: e.id,
            detail: format!("recipe.json: {err}"),
        })?;
        if meta.id != e.id {
            return Err(RecipeError::Broken {
                id: e.id,
                detail: format!("recipe.json names id {:?}", meta.id),
            });
        }
        Ok(Recipe { meta, embedded: e })
    }

    pub fn id(&self) -> &'static str {
        self.embedded.id
    }

    fn broken(&self, detail: impl Into<String>) -> RecipeError {
        RecipeError::Broken {
            id: self.embedded.id,
            detail: detail.into(),
        }
    }

    /// The demo schema (tables, version triggers and seed rows of tenants `acme` and `globex`)
    /// for `engine`.
    pub fn schema_sql(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Postgres => self.embedded.postgres,
            Engine::Mysql => self.embedded.mysql,
            Engine::Sqlite => self.embedded.sqlite,
        }
    }

    /// The file name `--with-schema` uses when given no path: `<id>.<engine>.sql`.
    pub fn schema_file_name(&self, engine: Engine) -> String {
        format!("{}.{}.sql", self.id(), engine.as_str())
    }

    /// The config as embedded (PostgreSQL, review mode).
    fn template(&self) -> Result<Value, RecipeError> {
        serde_json::from_str(self.embedded.config).map_err(|e| self.broken(format!("config.json: {e}")))
    }

    /// The config for `opts`, validated: the same document `recipes init` writes.
    pub fn render(&self, opts: &RenderOptions) -> Result<Value, RecipeError> {
        let schema = match &opts.schema {
            Some(s) if !is_identifier(s) => return Err(RecipeError::InvalidSchema(s.clone())),
            Some(s) => s.as_str(),
            None => default_schema(opts.engine),
        };
        let mut doc = self.template()?;
        doc.as_object_mut()
            .ok_or_else(|| self.broken("config.json is not an object"))?
            .insert("mode".into(), json!(opts.mode.as_str()));
        let sources = doc
            .get_mut("sources")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| self.broken("config.json has no sources"))?;
        for source in sources.values_mut() {
            let source = source
                .as_object_mut()
                .ok_or_else(|| self.broken("a source is not an object"))?;
            source.insert("engine".into(), json!(opts.engine.as_str()));
            // Only review mode applies proposals; the other modes never need a writer.
            if opts.mode != Mode::Review {
                source.remove("write_url_env");
            }
        }
        let caps = doc
            .get_mut("capabilities")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| self.broken("config.json has no capabilities"))?;
        if opts.mode == Mode::ReadOnly {
            // A proposal capability is not exposed in read_only mode: leave it out of the file
            // rather than ship a warning.
            caps.retain(|c| c.get("kind").and_then(Value::as_str) == Some("read"));
        }
        for cap in caps.iter_mut() {
            let target = cap
                .get_mut("target")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| self.broken("a capability has no target"))?;
            target.insert("schema".into(), json!(schema));
        }
        config::parse_config_value(doc.clone()).map_err(|report| {
            let first = report.errors.first().map(ToString::to_string).unwrap_or_default();
            self.broken(format!("the rendered config is invalid: {first}"))
        })?;
        Ok(doc)
    }

    /// The capabilities a model sees with `opts` (compiled from the rendered config).
    pub fn capabilities(&self, opts: &RenderOptions) -> Result<Vec<Capability>, RecipeError> {
        let doc = self.render(opts)?;
        let (cfg, _) =
            config::parse_config_value(doc).map_err(|_| self.broken("the rendered config stopped validating"))?;
        capability::compile(&cfg).map_err(|e| self.broken(format!("capabilities do not compile: {}", e.message)))
    }

    /// The `tools preview` document of the tools a model sees with `opts`: names, descriptions,
    /// argument limits, and what each never exposes.
    pub fn tool_preview(&self, opts: &RenderOptions) -> Result<Value, RecipeError> {
        let caps = self.capabilities(opts)?;
        let refs: Vec<&Capability> = caps.iter().collect();
        Ok(tools::preview(&refs, AliasMode::Canonical))
    }

    /// The same for people.
    pub fn tool_preview_text(&self, opts: &RenderOptions) -> Result<String, RecipeError> {
        let caps = self.capabilities(opts)?;
        let refs: Vec<&Capability> = caps.iter().collect();
        Ok(tools::preview_text(&refs, AliasMode::Canonical))
    }

    /// The read tool's name (the first capability).
    pub fn read_tool(&self) -> &str {
        self.meta.tools.first().map(String::as_str).unwrap_or_default()
    }

    /// The proposal tool's name.
    pub fn proposal_tool(&self) -> &str {
        self.meta.tools.get(1).map(String::as_str).unwrap_or_default()
    }
}

/// The capability names of a config document, in order.
pub fn capability_names(doc: &Value) -> Vec<String> {
    doc.get("capabilities")
        .and_then(Value::as_array)
        .map(|caps| {
            caps.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The environment variables a rendered config reads: what each must hold and a placeholder
/// (never a real URL).
pub fn env_vars(doc: &Value, engine: Engine) -> Vec<EnvVar> {
    let (read, write) = match engine {
        Engine::Postgres => (
            (
                "<PostgreSQL URL of a SELECT-only role>",
                "a role that may only SELECT the demo table",
            ),
            (
                "<PostgreSQL URL of the writer role>",
                "a role that may SELECT and UPDATE the demo table and use the receipts table; used only by `apply`, never by tool calls",
            ),
        ),
        Engine::Mysql => (
            (
                "<MySQL URL of a SELECT-only user>",
                "a user that may only SELECT the demo table",
            ),
            (
                "<MySQL URL of the writer user>",
                "a user that may SELECT and UPDATE the demo table and use the receipts table; used only by `apply`, never by tool calls",
            ),
        ),
        Engine::Sqlite => (
            ("sqlite:demo.db", "sqlite:<path of the demo database file>"),
            (
                "sqlite:demo.db",
                "sqlite:<the same file>; used only by `apply`, never by tool calls",
            ),
        ),
    };
    let mut out: Vec<EnvVar> = Vec::new();
    let mut add = |name: &str, (example, purpose): (&str, &str)| {
        if !out.iter().any(|e| e.name == name) {
            out.push(EnvVar {
                name: name.to_owned(),
                example: example.to_owned(),
                purpose: purpose.to_owned(),
            });
        }
    };
    if let Some(sources) = doc.get("sources").and_then(Value::as_object) {
        for source in sources.values() {
            if let Some(name) = source.get("read_url_env").and_then(Value::as_str) {
                add(name, read);
            }
            if let Some(name) = source.get("write_url_env").and_then(Value::as_str) {
                add(name, write);
            }
        }
    }
    let values = doc.pointer("/trusted_context/values");
    let tenant = values
        .and_then(|v| v.get("tenant_id_env"))
        .and_then(Value::as_str)
        .unwrap_or(TENANT_ENV);
    let principal = values
        .and_then(|v| v.get("principal_env"))
        .and_then(Value::as_str)
        .unwrap_or(PRINCIPAL_ENV);
    add(
        tenant,
        (
            "acme",
            "the tenant the agent works for (the demo rows belong to acme and globex)",
        ),
    );
    add(
        principal,
        (
            "support.agent",
            "who the agent acts as (recorded with every call; never an approver)",
        ),
    );
    out
}

/// A single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What to do after `recipes init`: create the demo table, set the environment, check the config,
/// try the tools, serve MCP, and (review mode) approve and apply. `config_arg` is the
/// `--config PATH` to add to each command (empty for the default file); `schema_file` is where
/// `--with-schema` wrote the demo schema, if it did.
pub fn next_steps(
    recipe: &Recipe,
    doc: &Value,
    opts: &RenderOptions,
    config_arg: &str,
    schema_file: Option<&str>,
) -> Vec<String> {
    let engine = opts.engine;
    let runner = if config_arg.is_empty() {
        "synapsor-runner".to_owned()
    } else {
        format!("synapsor-runner {config_arg}")
    };
    let schema_sql = match schema_file {
        Some(f) => f.to_owned(),
        None => recipe.schema_file_name(engine),
    };
    let mut steps = Vec::new();
    let print_first = if schema_file.is_none() {
        format!(
            "synapsor-runner recipes show {} --engine {} --schema-only > {schema_sql}   (or pass --with-schema to init)\n     ",
            recipe.id(),
            engine.as_str()
        )
    } else {
        String::new()
    };
    let schema_name = opts.schema.clone().unwrap_or_else(|| default_schema(engine).to_owned());
    steps.push(match engine {
        Engine::Postgres => format!(
            "Create the demo table (as an admin, in schema {schema_name}):\n     {print_first}psql \"$ADMIN_DATABASE_URL\" -f {schema_sql}"
        ),
        Engine::Mysql => format!(
            "Create the demo table (as an admin, in the database {schema_name}, which the config names as target.schema):\n     {print_first}mysql -u <admin> -p -e 'CREATE DATABASE IF NOT EXISTS {schema_name}'\n     mysql -u <admin> -p {schema_name} < {schema_sql}"
        ),
        Engine::Sqlite => {
            format!("Create the demo database file:\n     {print_first}sqlite3 demo.db < {schema_sql}")
        }
    });
    let mut env = String::from("Set the environment (names only are in the config; values stay in your shell):");
    for v in env_vars(doc, engine) {
        env.push_str(&format!(
            "\n     export {}={}   # {}",
            v.name,
            shell_quote(&v.example),
            v.purpose
        ));
    }
    steps.push(env);
    steps.push(format!("Check the config:  {runner} config validate"));
    if opts.mode == Mode::Review {
        steps.push(match engine {
            Engine::Sqlite => format!(
                "Create the writeback receipts table that apply needs (once):  {runner} db init-receipts"
            ),
            Engine::Postgres | Engine::Mysql => format!(
                "Create the writeback receipts table that apply needs (once, as an admin, granting the writer):\n     {runner} db init-receipts --admin-url-env ADMIN_DATABASE_URL   (or --print, for a DBA)"
            ),
        });
    }
    steps.push(format!(
        "Check config, store, database and tools:  {runner} up --dry-run"
    ));
    let read = Value::Object(recipe.meta.try_args.read.clone()).to_string();
    steps.push(format!(
        "Try the read tool as the agent:  {runner} smoke call {} --args {}",
        recipe.read_tool(),
        shell_quote(&read)
    ));
    if opts.mode != Mode::ReadOnly {
        let proposal = Value::Object(recipe.meta.try_args.proposal.clone()).to_string();
        steps.push(format!(
            "Try the proposal tool (records a proposal, changes nothing):  {runner} smoke call {} --args {}",
            recipe.proposal_tool(),
            shell_quote(&proposal)
        ));
    }
    steps.push(format!("Serve MCP to your agent over stdio:  {runner} mcp serve"));
    match opts.mode {
        Mode::Review => steps.push(format!(
            "Review outside MCP, as a person other than the agent:\n     {runner} proposals list\n     {runner} proposals approve <id> --actor <reviewer>\n     {runner} apply <id>   (needs {WRITE_URL_ENV})"
        )),
        Mode::Shadow => steps.push(format!(
            "Review what the agent proposed:  {runner} proposals list (shadow mode records proposals and never applies them)"
        )),
        Mode::ReadOnly => {}
    }
    steps
}

/// The `recipes show --json` document for `engine` (the tools as a model sees them in review
/// mode, the environment, and the demo schema).
pub fn show_doc(recipe: &Recipe, engine: Engine, schema: Option<String>) -> Result<Value, RecipeError> {
    let opts = RenderOptions {
        engine,
        mode: Mode::Review,
        schema,
    };
    let doc = recipe.render(&opts)?;
    let preview = recipe.tool_preview(&opts)?;
    Ok(json!({
        "ok": true,
        "id": recipe.id(),
        "title": recipe.meta.title,
        "summary": recipe.meta.summary,
        "description": recipe.meta.description,
        "engine": engine.as_str(),
        "tools": preview.get("tools").cloned().unwrap_or(Value::Null),
        "model_can": recipe.meta.model_can,
        "model_cannot": recipe.meta.model_cannot,
        "never_exposed": preview.get("never_exposed").cloned().unwrap_or(Value::Null),
        "env": env_vars(&doc, engine),
        "tables": recipe.meta.tables,
        "try": recipe.meta.try_args,
        "schema_sql": recipe.schema_sql(engine),
        "config": doc,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ENGINES: [Engine; 3] = [Engine::Postgres, Engine::Mysql, Engine::Sqlite];
    const MODES: [Mode; 3] = [Mode::ReadOnly, Mode::Shadow, Mode::Review];

    fn opts(engine: Engine, mode: Mode) -> RenderOptions {
        RenderOptions {
            engine,
            mode,
            schema: None,
        }
    }

    #[test]
    fn the_original_ids_in_order() {
        assert_eq!(
            ids(),
            [
                "accounts.trial_extension",
                "billing.late_fee_waiver",
                "credits.account_credit",
                "orders.refund_review",
                "support.ticket_resolution"
            ]
        );
        assert_eq!(all().unwrap().len(), ids().len());
    }

    #[test]
    fn every_recipe_renders_a_valid_config_without_warnings_for_every_engine_and_mode() {
        for r in all().unwrap() {
            for engine in ENGINES {
                for mode in MODES {
                    let doc = r.render(&opts(engine, mode)).unwrap();
                    let (cfg, warnings) = config::parse_config_value(doc.clone()).unwrap();
                    assert!(warnings.is_empty(), "{} {engine:?} {mode:?}: {warnings:?}", r.id());
                    assert_eq!(cfg.mode, mode);
                    assert_eq!(doc["version"], 1);
                    assert_eq!(doc["result_format"], 2);
                    assert_eq!(doc["storage"]["sqlite_path"], "./.synapsor/local.db");
                    assert_eq!(doc["trusted_context"]["provider"], "environment");
                    for src in cfg.sources.values() {
                        assert_eq!(src.engine, engine);
                        assert_eq!(src.read_url_env, READ_URL_ENV);
                        let want_writer = (mode == Mode::Review).then(|| WRITE_URL_ENV.to_owned());
                        assert_eq!(src.write_url_env, want_writer, "{} {mode:?}", r.id());
                    }
                    let names = capability_names(&doc);
                    let want: Vec<String> = match mode {
                        Mode::ReadOnly => r.meta.tools[..1].to_vec(),
                        _ => r.meta.tools.clone(),
                    };
                    assert_eq!(names, want, "{} {mode:?}", r.id());
                    for cap in doc["capabilities"].as_array().unwrap() {
                        assert_eq!(cap["target"]["schema"], default_schema(engine));
                    }
                }
            }
        }
    }

    #[test]
    fn each_recipe_is_one_read_and_one_guarded_proposal() {
        for r in all().unwrap() {
            let caps = r.capabilities(&opts(Engine::Postgres, Mode::Review)).unwrap();
            assert_eq!(caps.len(), 2, "{}", r.id());
            assert_eq!(caps[0].kind.as_str(), "read");
            assert_eq!(caps[1].kind.as_str(), "proposal");
            let doc = r.render(&opts(Engine::Postgres, Mode::Review)).unwrap();
            let p = &doc["capabilities"][1];
            assert_eq!(p["target"]["tenant_key"], "tenant_id", "{}", r.id());
            assert!(p["conflict_guard"]["column"].is_string(), "{}", r.id());
            assert!(p["description"].is_string() && p["returns_hint"].is_string());
            // Every number the model supplies to a patch is bounded, every string has a length
            // limit.
            for (column, binding) in p["patch"].as_object().unwrap() {
                let Some(arg) = binding["from_arg"].as_str() else {
                    continue;
                };
                let spec = &p["args"][arg];
                match spec["type"].as_str() {
                    Some("number") => assert!(
                        p["numeric_bounds"][column].is_object() && spec["minimum"].is_number(),
                        "{} {column}",
                        r.id()
                    ),
                    Some("string") => assert!(spec["max_length"].is_number(), "{} {arg}", r.id()),
                    other => panic!("{} {arg}: {other:?}", r.id()),
                }
            }
            // The read tool shows every column a proposal changes, so the agent can see the
            // outcome.
            for column in p["patch"].as_object().unwrap().keys() {
                let visible = doc["capabilities"][0]["visible_columns"].as_array().unwrap();
                assert!(visible.contains(&json!(column)), "{} {column}", r.id());
            }
            // A status-like column that changes is guarded.
            for (column, binding) in p["patch"].as_object().unwrap() {
                if column.ends_with("status") {
                    assert!(p["transition_guards"][column].is_object(), "{} {column}", r.id());
                    assert!(binding["fixed"].is_string(), "{} {column}", r.id());
                }
            }
        }
    }

    #[test]
    fn the_tools_in_recipe_json_are_the_configs() {
        for r in all().unwrap() {
            let doc = r.template().unwrap();
            assert_eq!(capability_names(&doc), r.meta.tools, "{}", r.id());
            assert_eq!(r.read_tool(), r.meta.tools[0]);
        }
    }

    #[test]
    fn a_schema_override_must_be_an_identifier() {
        let r = get("billing.late_fee_waiver").unwrap();
        let mut o = opts(Engine::Mysql, Mode::Review);
        o.schema = Some("shop_1".into());
        let doc = r.render(&o).unwrap();
        assert_eq!(doc["capabilities"][0]["target"]["schema"], "shop_1");
        for bad in ["", "1shop", "shop;drop", "a.b", &"x".repeat(64)] {
            o.schema = Some(bad.to_owned());
            let e = r.render(&o).unwrap_err();
            assert_eq!(e.code(), "RECIPE_INVALID_SCHEMA", "{bad:?}");
        }
    }

    #[test]
    fn unknown_ids_list_the_known_ones() {
        let e = get("billing.nope").unwrap_err();
        assert_eq!(e.code(), "RECIPE_UNKNOWN");
        for id in ids() {
            assert!(e.to_string().contains(id), "{e}");
        }
    }

    /// Runs the SQLite demo schema and checks that it has every column the config names, rows of
    /// both tenants, the example rows, and that the hidden columns exist but are not visible.
    #[test]
    fn the_sqlite_demo_schema_fits_the_config() {
        for r in all().unwrap() {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch(r.schema_sql(Engine::Sqlite)).unwrap();
            let doc = r.render(&opts(Engine::Sqlite, Mode::Review)).unwrap();
            for cap in doc["capabilities"].as_array().unwrap() {
                let table = cap["target"]["table"].as_str().unwrap();
                assert!(r.meta.tables.iter().any(|t| t == table), "{}", r.id());
                let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).unwrap();
                let columns: Vec<String> = stmt
                    .query_map([], |row| row.get::<_, String>(1))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let mut named: Vec<&str> = vec![
                    cap["target"]["primary_key"].as_str().unwrap(),
                    cap["target"]["tenant_key"].as_str().unwrap(),
                ];
                for key in ["visible_columns", "allowed_columns"] {
                    if let Some(cols) = cap[key].as_array() {
                        named.extend(cols.iter().map(|c| c.as_str().unwrap()));
                    }
                }
                if let Some(c) = cap["conflict_guard"]["column"].as_str() {
                    named.push(c);
                }
                for c in named {
                    assert!(columns.iter().any(|x| x == c), "{}: no column {c}", r.id());
                }
                // Columns the model never sees exist in the demo, to show that.
                let visible = cap["visible_columns"].as_array().unwrap();
                assert!(
                    columns.iter().any(|c| c != "tenant_id" && !visible.contains(&json!(c))),
                    "{}: every column is visible",
                    r.id()
                );
                for tenant in ["acme", "globex"] {
                    let n: i64 = conn
                        .query_row(
                            &format!("SELECT count(*) FROM {table} WHERE tenant_id = ?1"),
                            [tenant],
                            |row| row.get(0),
                        )
                        .unwrap();
                    assert!(n >= 1, "{}: no rows of {tenant}", r.id());
                }
            }
            let read_id = r
                .meta
                .try_args
                .read
                .values()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            let table = &r.meta.tables[0];
            let tenant_of = |id: &str| -> String {
                conn.query_row(&format!("SELECT tenant_id FROM {table} WHERE id = ?1"), [id], |row| {
                    row.get(0)
                })
                .unwrap()
            };
            assert_eq!(tenant_of(&read_id), "acme", "{}", r.id());
            assert_eq!(tenant_of(&r.meta.try_args.other_tenant_id), "globex", "{}", r.id());
        }
    }

    #[test]
    fn every_engine_schema_names_the_same_columns() {
        for r in all().unwrap() {
            let doc = r.template().unwrap();
            let cap = &doc["capabilities"][1];
            let mut cols: Vec<&str> = cap["visible_columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            cols.extend(
                cap["allowed_columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap()),
            );
            for engine in ENGINES {
                let sql = r.schema_sql(engine);
                for c in &cols {
                    assert!(sql.contains(&format!("  {c} ")), "{} {engine:?}: {c}", r.id());
                }
                for tenant in ["'acme'", "'globex'"] {
                    assert!(sql.contains(tenant), "{} {engine:?}", r.id());
                }
            }
        }
    }

    #[test]
    fn nothing_shown_holds_a_url() {
        for r in all().unwrap() {
            for engine in ENGINES {
                let shown = show_doc(&r, engine, None).unwrap().to_string();
                assert!(!shown.contains("://"), "{} {engine:?}", r.id());
                for mode in MODES {
                    let o = opts(engine, mode);
                    let doc = r.render(&o).unwrap();
                    let steps = next_steps(&r, &doc, &o, "", None).join("\n");
                    assert!(!steps.contains("://"), "{steps}");
                    assert!(
                        steps.contains("config validate") && steps.contains("mcp serve"),
                        "{steps}"
                    );
                    assert_eq!(steps.contains(WRITE_URL_ENV), mode == Mode::Review, "{steps}");
                }
            }
        }
    }

    #[test]
    fn env_vars_follow_the_mode() {
        let r = get("support.ticket_resolution").unwrap();
        let names = |mode| -> Vec<String> {
            let doc = r.render(&opts(Engine::Postgres, mode)).unwrap();
            env_vars(&doc, Engine::Postgres).into_iter().map(|e| e.name).collect()
        };
        assert_eq!(
            names(Mode::Review),
            [READ_URL_ENV, WRITE_URL_ENV, TENANT_ENV, PRINCIPAL_ENV]
        );
        assert_eq!(names(Mode::Shadow), [READ_URL_ENV, TENANT_ENV, PRINCIPAL_ENV]);
        assert_eq!(names(Mode::ReadOnly), [READ_URL_ENV, TENANT_ENV, PRINCIPAL_ENV]);
    }
}
