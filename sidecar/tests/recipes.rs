//! `recipes list|show|init` with the real binary. For every recipe and engine (SQLite always,
//! PostgreSQL and MariaDB through the test servers of `scripts/dev-db.sh`): `recipes init` into
//! a temporary folder, the demo schema created from what `recipes show --json` prints, `config
//! validate` clean, the read tool returning tenant acme's row and never globex's, the proposal tool
//! recording a proposal that changes nothing, and then a person's approval and a guarded `apply`
//! changing exactly the patched columns. Also the refusals of `init` (unknown id, existing files)
//! and that nothing listed or shown carries a URL.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use synapsor_core::config::Engine;
use synapsor_testdb::{Runner, Server, TestDb};

/// The executor's receipts table, for the test databases.
const RUNNER: Runner<Engine> = Runner {
    receipts_ddl: |e, schema| synapsor_executor::receipts_ddl(e, schema).unwrap(),
    receipts_grants: |e, schema, writer| synapsor_executor::receipts_grants(e, writer, schema, &[]).unwrap(),
};

const IDS: [&str; 5] = [
    "accounts.trial_extension",
    "billing.late_fee_waiver",
    "credits.account_credit",
    "orders.refund_review",
    "support.ticket_resolution",
];

const AGENT: &str = "agent.recipes";
const REVIEWER: &str = "reviewer.recipes";

/// The binary in `dir` with a clean environment plus `env`.
fn runner(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "operator.recipes")
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// A SQL literal for a JSON scalar (the recipes' values have no quotes, but escape anyway).
fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// Where a recipe runs: a SQLite file that the test makes from the schema `init` wrote, or a
/// server database made from the schema `recipes show --json` printed.
enum Target {
    Sqlite,
    Server(TestDb<Engine>),
}

/// The database a test checks rows in, as its admin.
enum Check {
    Sqlite(std::path::PathBuf),
    Server(TestDb<Engine>),
}

impl Check {
    async fn int(&self, sql: &str) -> i64 {
        match self {
            Check::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(&format!("SELECT ({sql})"), [], |r| r.get::<_, i64>(0))
                    .unwrap()
            }
            Check::Server(db) => db.int(sql).await,
        }
    }

    /// Whether column `column` of row `id` of `table` holds `value` (NULL for JSON null).
    async fn holds(&self, table: &str, id: &str, column: &str, value: &Value) -> bool {
        let cond = match value {
            Value::Null => format!("{column} IS NULL"),
            v => format!("{column} = {}", literal(v)),
        };
        self.int(&format!(
            "SELECT count(*) FROM {table} WHERE id = {} AND {cond}",
            literal(&json!(id))
        ))
        .await
            == 1
    }
}

/// The first value of an argument object: the id of the row the example reads.
fn first_str(args: &Value) -> String {
    args.as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Everything `recipes show --json` says about `id` for `engine`.
fn show(id: &str, engine: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let o = runner(dir.path(), &["recipes", "show", id, "--engine", engine, "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    json_of(&o)
}

/// One recipe end to end: init, validate, read, propose, approve, apply.
async fn exercise(id: &str, target: Target) {
    let (engine, schema) = match &target {
        Target::Sqlite => ("sqlite", "main".to_owned()),
        Target::Server(db) => (db.engine_name(), db.schema.clone()),
    };
    let shown = show(id, engine);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let o = runner(
        d,
        &[
            "recipes",
            "init",
            id,
            "--engine",
            engine,
            "--schema",
            &schema,
            "--with-schema",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let init = json_of(&o);
    assert_eq!(init["mode"], "review");
    let schema_file = d.join(init["schema_file"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&schema_file).unwrap(),
        shown["schema_sql"].as_str().unwrap(),
        "the schema file is the shown SQL"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(d.join("synapsor.runner.json")).unwrap()).unwrap();
    assert_eq!(
        doc["sources"].as_object().unwrap().values().next().unwrap()["engine"],
        engine
    );
    let read_cap = doc["capabilities"][0].clone();
    let prop_cap = doc["capabilities"][1].clone();
    let read_tool = read_cap["name"].as_str().unwrap();
    let prop_tool = prop_cap["name"].as_str().unwrap();
    let table = prop_cap["target"]["table"].as_str().unwrap();
    assert_eq!(prop_cap["target"]["schema"], schema.as_str());

    // SQLite: the file is made from the schema init wrote, and `db init-receipts` (a next step
    // init prints) adds the receipts table. The servers' databases were made by the caller.
    let (read_url, write_url, check) = match target {
        Target::Sqlite => {
            let file = d.join("demo.db");
            let conn = rusqlite::Connection::open(&file).unwrap();
            conn.execute_batch(&std::fs::read_to_string(&schema_file).unwrap())
                .unwrap();
            drop(conn);
            let url = format!("sqlite://{}", file.display());
            let o = runner(d, &["db", "init-receipts"], &[("SYNAPSOR_DATABASE_WRITE_URL", &url)]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            (url.clone(), url, Check::Sqlite(file))
        }
        Target::Server(db) => (db.read_url.clone(), db.write_url.clone(), Check::Server(db)),
    };

    let env = [
        ("SYNAPSOR_DATABASE_READ_URL", read_url.as_str()),
        ("SYNAPSOR_TENANT_ID", "acme"),
        ("SYNAPSOR_PRINCIPAL", AGENT),
    ];

    let o = runner(d, &["config", "validate", "--json"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_of(&o);
    assert_eq!(
        (v["ok"].clone(), v["errors"].clone(), v["warnings"].clone()),
        (json!(true), json!([]), json!([])),
        "{v}"
    );

    // The read tool: acme's row, visible columns only.
    let read_args = shown["try"]["read"].clone();
    let row_id = first_str(&read_args);
    let o = runner(d, &["smoke", "call", read_tool, "--args", &read_args.to_string()], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = json_of(&o)["result"]["data"].clone();
    assert_eq!(before["id"], row_id.as_str(), "{before}");
    let mut keys: Vec<&str> = before.as_object().unwrap().keys().map(String::as_str).collect();
    let mut visible: Vec<&str> = read_cap["visible_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    keys.sort_unstable();
    visible.sort_unstable();
    assert_eq!(keys, visible, "only the visible columns");

    // Globex's row does not exist for acme, through either tool.
    let other = shown["try"]["other_tenant_id"].as_str().unwrap();
    assert_eq!(
        check
            .int(&format!(
                "SELECT count(*) FROM {table} WHERE id = '{other}' AND tenant_id = 'globex'"
            ))
            .await,
        1
    );
    let lookup = read_cap["lookup"]["id_from_arg"].as_str().unwrap();
    for tool in [read_tool, prop_tool] {
        let mut args = if tool == read_tool {
            read_args.clone()
        } else {
            shown["try"]["proposal"].clone()
        };
        args[lookup] = json!(other);
        let o = runner(d, &["smoke", "call", tool, "--args", &args.to_string()], &env);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert_eq!(
            json_of(&o)["result"]["error"]["code"],
            "NOT_FOUND_IN_TENANT",
            "{}",
            text(&o)
        );
        assert!(!text(&o).contains("Globex"), "leaked: {}", text(&o));
    }

    // The proposal tool records a proposal and changes nothing.
    let prop_args = shown["try"]["proposal"].clone();
    assert_eq!(first_str(&prop_args), row_id);
    let o = runner(d, &["smoke", "call", prop_tool, "--args", &prop_args.to_string()], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let result = json_of(&o)["result"].clone();
    assert_eq!(result["source_database_changed"], false, "{result}");
    let proposal_id = result["proposal"]["id"].as_str().unwrap().to_owned();
    let diff = result["proposal"]["diff"].as_object().unwrap().clone();
    let patched: Vec<&String> = prop_cap["patch"].as_object().unwrap().keys().collect();
    assert_eq!(diff.keys().collect::<Vec<_>>(), patched, "{result}");
    for (column, change) in &diff {
        assert_eq!(change["before"], before[column.as_str()], "{column}");
        assert_ne!(change["before"], change["after"], "{column}: a no-op proposal");
        let bound = &prop_cap["patch"][column.as_str()];
        let want = match (bound["fixed"].clone(), bound["from_arg"].as_str()) {
            (Value::Null, Some(arg)) => prop_args[arg].clone(),
            (fixed, _) => fixed,
        };
        assert_eq!(change["after"], want, "{column}");
        assert!(
            check.holds(table, &row_id, column, &change["before"]).await,
            "{column} changed"
        );
    }
    let o = runner(d, &["proposals", "list", "--json"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let list = json_of(&o);
    let rows = list["proposals"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["proposal_id"], proposal_id.as_str());
    assert_eq!(rows[0]["tenant_id"], "acme");
    assert_eq!(rows[0]["capability"], prop_tool, "{list}");
    assert_eq!(rows[0]["state"], "pending_review");

    // A person approves outside MCP; apply writes exactly the patch, with the writer.
    let o = runner(
        d,
        &[
            "proposals",
            "approve",
            &proposal_id,
            "--actor",
            REVIEWER,
            "--yes",
            "--json",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut apply_env = env.to_vec();
    let o = runner(d, &["apply", &proposal_id, "--json"], &apply_env);
    assert_eq!(o.status.code(), Some(1), "apply without the writer: {}", text(&o));
    apply_env.push(("SYNAPSOR_DATABASE_WRITE_URL", write_url.as_str()));
    let o = runner(d, &["apply", &proposal_id, "--json"], &apply_env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_of(&o);
    assert_eq!(v["receipt"]["status"], "applied", "{v}");
    for (column, change) in &diff {
        assert!(
            check.holds(table, &row_id, column, &change["after"]).await,
            "{column} not applied"
        );
    }
    // The other tenant's row is untouched.
    for (column, change) in &diff {
        assert!(
            !check.holds(table, other, column, &change["after"]).await,
            "{column} of globex"
        );
    }
    let o = runner(d, &["smoke", "call", read_tool, "--args", &read_args.to_string()], &env);
    let after = json_of(&o)["result"]["data"].clone();
    let version = prop_cap["conflict_guard"]["column"].as_str().unwrap();
    assert_ne!(
        after[version], before[version],
        "the demo schema moves the version on update"
    );
    for (column, change) in &diff {
        assert_eq!(after[column.as_str()], change["after"], "{column}");
    }
    let o = runner(d, &["proposals", "show", &proposal_id, "--json"], &env);
    assert_eq!(json_of(&o)["proposal"]["state"], "applied");
}

/// The guards of each proposal tool refuse out-of-range input on the demo rows (SQLite): a number
/// above its maximum, a value outside its enum, and a second proposal for a row whose status
/// already moved.
async fn guards(id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = runner(
        d,
        &[
            "recipes",
            "init",
            id,
            "--engine",
            "sqlite",
            "--with-schema",
            "schema.sql",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let file = d.join("demo.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(&std::fs::read_to_string(d.join("schema.sql")).unwrap())
        .unwrap();
    let url = format!("sqlite://{}", file.display());
    let env = [
        ("SYNAPSOR_DATABASE_READ_URL", url.as_str()),
        ("SYNAPSOR_TENANT_ID", "acme"),
        ("SYNAPSOR_PRINCIPAL", AGENT),
    ];
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(d.join("synapsor.runner.json")).unwrap()).unwrap();
    let cap = &doc["capabilities"][1];
    let tool = cap["name"].as_str().unwrap();
    let shown = show(id, "sqlite");
    let good = shown["try"]["proposal"].clone();
    let call = |args: &Value| {
        let o = runner(d, &["smoke", "call", tool, "--args", &args.to_string()], &env);
        let v = json_of(&o);
        (
            o.status.code(),
            v["result"]["error"]["code"].as_str().unwrap_or("-").to_owned(),
        )
    };
    let mut refused = 0;
    for (name, spec) in cap["args"].as_object().unwrap() {
        let mut args = good.clone();
        if let Some(max) = spec["maximum"].as_f64() {
            args[name] = json!(max + 1.0);
            assert_eq!(call(&args), (Some(1), "INVALID_ARGUMENT".to_owned()), "{id} {name}");
            refused += 1;
        }
        if spec["enum"].is_array() && spec["type"] == "string" {
            args[name] = json!("not_in_the_list");
            assert_eq!(call(&args), (Some(1), "INVALID_ARGUMENT".to_owned()), "{id} {name}");
            refused += 1;
        }
        if let Some(n) = spec["max_length"].as_u64() {
            let mut args = good.clone();
            args[name] = json!("x".repeat(n as usize + 1));
            assert_eq!(call(&args).0, Some(1), "{id} {name} too long");
            refused += 1;
        }
    }
    assert!(refused >= 2, "{id}: every proposal tool has limited arguments");
    // A row whose status is not a from state of the transition guard is refused at proposal
    // time. The demo has one such row of acme for each guarded recipe.
    if let Some(guards) = cap["transition_guards"].as_object() {
        let (column, guard) = guards.iter().next().unwrap();
        let from: Vec<&String> = guard["allowed"].as_object().unwrap().keys().collect();
        let placeholders = vec!["?"; from.len()].join(", ");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT id FROM {} WHERE tenant_id = 'acme' AND {column} NOT IN ({placeholders})",
                cap["target"]["table"].as_str().unwrap()
            ))
            .unwrap();
        let stuck: String = stmt
            .query_row(rusqlite::params_from_iter(from.iter()), |r| r.get(0))
            .unwrap();
        let mut args = good.clone();
        args[cap["lookup"]["id_from_arg"].as_str().unwrap()] = json!(stuck);
        assert_eq!(call(&args), (Some(1), "POLICY_VIOLATION".to_owned()), "{id} {stuck}");
    }
    // The example itself passes every guard.
    assert_eq!(call(&good), (Some(0), "-".to_owned()), "{id}");
}

/// A fresh database on `server` holding the demo schema that `recipes show --json` prints, with
/// a read role, a writer of the recipe's tables and the receipts table; `None` without the
/// server's admin URL.
async fn server_db(id: &str, server: Server) -> Option<TestDb<Engine>> {
    let engine = match server {
        Server::Postgres => "postgres",
        Server::Mysql => "mysql",
    };
    let shown = show(id, engine);
    let tables: Vec<&str> = shown["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    RUNNER
        .create(server, shown["schema_sql"].as_str().unwrap(), &tables, true)
        .await
}

macro_rules! per_recipe {
    ($($name:ident => $id:literal),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite_init_validate_read_propose_approve_apply() {
                exercise($id, Target::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres_init_validate_read_propose_approve_apply() {
                let Some(db) = server_db($id, Server::Postgres).await else { return };
                exercise($id, Target::Server(db)).await;
            }

            #[tokio::test]
            async fn mariadb_init_validate_read_propose_approve_apply() {
                let Some(db) = server_db($id, Server::Mysql).await else { return };
                exercise($id, Target::Server(db)).await;
            }

            #[tokio::test]
            async fn proposal_guards_refuse_out_of_range_input() {
                guards($id).await;
            }
        }
    )*};
}

per_recipe! {
    accounts_trial_extension => "accounts.trial_extension",
    billing_late_fee_waiver => "billing.late_fee_waiver",
    credits_account_credit => "credits.account_credit",
    orders_refund_review => "orders.refund_review",
    support_ticket_resolution => "support.ticket_resolution",
}

#[test]
fn list_names_the_five_recipes() {
    let dir = tempfile::tempdir().unwrap();
    let o = runner(dir.path(), &["recipes", "list", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_of(&o);
    let ids: Vec<&str> = v["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, IDS);
    for r in v["recipes"].as_array().unwrap() {
        assert!(!r["title"].as_str().unwrap().is_empty() && !r["summary"].as_str().unwrap().is_empty());
        assert_eq!(r["tools"].as_array().unwrap().len(), 2, "{r}");
    }
    let o = runner(dir.path(), &["recipes", "list"], &[]);
    let t = text(&o);
    for id in IDS {
        assert!(t.contains(id), "{t}");
    }
}

#[test]
fn unknown_ids_exit_2_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        vec!["recipes", "init", "billing.nope"],
        vec!["recipes", "show", "billing.nope"],
    ] {
        let o = runner(d, &args, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("error[RECIPE_UNKNOWN]"), "{err}");
        for id in IDS {
            assert!(err.contains(id), "{err}");
        }
    }
    let o = runner(d, &["recipes", "init", "billing.nope", "--json"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json_of(&o)["error"]["code"], "RECIPE_UNKNOWN");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
    // A bad --schema is bad input too.
    let o = runner(d, &["recipes", "init", IDS[0], "--schema", "a;b", "--json"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json_of(&o)["error"]["code"], "RECIPE_INVALID_SCHEMA");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
}

#[test]
fn init_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("synapsor.runner.json");
    std::fs::write(&config, "keep me\n").unwrap();
    let o = runner(d, &["recipes", "init", "billing.late_fee_waiver", "--with-schema"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("error[ONBOARD_FILE_EXISTS]"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "keep me\n");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 1, "no schema file either");

    // An existing schema file blocks the config too.
    let o = runner(
        d,
        &[
            "recipes",
            "init",
            "billing.late_fee_waiver",
            "--out",
            "other.json",
            "--with-schema",
            "synapsor.runner.json",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(json_of(&o)["error"]["code"], "ONBOARD_FILE_EXISTS");
    assert!(!d.join("other.json").exists());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "keep me\n");

    // --force replaces it with a valid config.
    let o = runner(d, &["recipes", "init", "billing.late_fee_waiver", "--force"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = runner(d, &["config", "validate", "--json"], &[]);
    assert_eq!(json_of(&o)["ok"], true, "{}", text(&o));
}

#[test]
fn read_only_mode_has_no_proposal_tool_and_no_writer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for id in IDS {
        let out = format!("{id}.json");
        let o = runner(d, &["recipes", "init", id, "--mode", "read_only", "--out", &out], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let t = text(&o);
        assert!(!t.contains("SYNAPSOR_DATABASE_WRITE_URL"), "{t}");
        assert!(t.contains(&format!("--config {out}")), "next steps name the file: {t}");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(d.join(&out)).unwrap()).unwrap();
        assert_eq!(doc["mode"], "read_only");
        assert!(!doc.to_string().contains("write_url_env"), "{doc}");
        let o = runner(d, &["--config", &out, "tools", "list", "--json"], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let tools: Vec<Value> = json_of(&o)["tools"].as_array().unwrap().clone();
        assert_eq!(tools.len(), 1, "{tools:?}");
        assert_eq!(tools[0]["_meta"]["synapsor.kind"], "read", "{tools:?}");
        assert!(!tools[0]["name"].as_str().unwrap().contains("propose"));
    }
    // Shadow keeps the proposal tool but needs no writer.
    let o = runner(
        d,
        &["recipes", "init", IDS[1], "--mode", "shadow", "--out", "shadow.json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(d.join("shadow.json")).unwrap()).unwrap();
    assert_eq!(doc["capabilities"].as_array().unwrap().len(), 2);
    assert!(!doc.to_string().contains("write_url_env"));
}

#[test]
fn list_show_and_init_never_print_a_url_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Even with real-looking URLs in the environment.
    let secret_env = [
        (
            "SYNAPSOR_DATABASE_READ_URL",
            "postgres://reader:s3cret-read@db.internal:5432/app",
        ),
        (
            "SYNAPSOR_DATABASE_WRITE_URL",
            "mysql://writer:s3cret-write@db.internal:3306/app",
        ),
    ];
    let mut outputs = vec![
        runner(d, &["recipes", "list"], &secret_env),
        runner(d, &["recipes", "list", "--json"], &secret_env),
    ];
    for id in IDS {
        for engine in ["postgres", "mysql", "sqlite"] {
            outputs.push(runner(d, &["recipes", "show", id, "--engine", engine], &secret_env));
            outputs.push(runner(
                d,
                &["recipes", "show", id, "--engine", engine, "--json"],
                &secret_env,
            ));
            let out = format!("{id}.{engine}.json");
            outputs.push(runner(
                d,
                &["recipes", "init", id, "--engine", engine, "--out", &out],
                &secret_env,
            ));
            let written = std::fs::read_to_string(d.join(&out)).unwrap();
            assert!(!written.contains("://") && !written.contains("s3cret"), "{written}");
        }
    }
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
        let t = text(o);
        assert!(!t.contains("://"), "a URL in:\n{t}");
        assert!(!t.contains("s3cret"), "a secret in:\n{t}");
    }
}

#[test]
fn show_explains_tools_limits_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let o = runner(
        dir.path(),
        &["recipes", "show", "credits.account_credit", "--engine", "mysql"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    for want in [
        "credits.inspect_customer",
        "credits.propose_account_credit",
        "maximum 10000",
        "max length 500",
        "SYNAPSOR_DATABASE_READ_URL",
        "SYNAPSOR_DATABASE_WRITE_URL",
        "SYNAPSOR_TENANT_ID",
        "SYNAPSOR_PRINCIPAL",
        "CREATE TABLE customers",
        "CREATE TRIGGER customers_bump_version",
        "The model cannot:",
        "card_fingerprint",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    let v = json_of(&runner(
        dir.path(),
        &[
            "recipes",
            "show",
            "credits.account_credit",
            "--engine",
            "sqlite",
            "--json",
        ],
        &[],
    ));
    assert_eq!(v["engine"], "sqlite");
    assert_eq!(v["config"]["sources"]["credits"]["engine"], "sqlite");
    let env: Vec<&str> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "SYNAPSOR_DATABASE_READ_URL",
            "SYNAPSOR_DATABASE_WRITE_URL",
            "SYNAPSOR_TENANT_ID",
            "SYNAPSOR_PRINCIPAL"
        ]
    );
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["canonical_name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["credits.inspect_customer", "credits.propose_account_credit"]);
    let o = runner(
        dir.path(),
        &[
            "recipes",
            "show",
            "credits.account_credit",
            "--engine",
            "sqlite",
            "--schema-only",
        ],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), v["schema_sql"].as_str().unwrap());
    let o = runner(dir.path(), &["recipes", "--help"], &[]);
    assert!(text(&o).contains("docs/recipes.md"), "{}", text(&o));
    let o = runner(dir.path(), &["recipes", "init", "--help"], &[]);
    for want in ["--with-schema", "--mode", "read_only", "--force", "--engine"] {
        assert!(text(&o).contains(want), "{}", text(&o));
    }
}
