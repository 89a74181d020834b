//! Onboarding from live databases with the real binary: `inspect`, scripted `init` and
//! `onboard db` (flags and an answers file) on PostgreSQL, MariaDB and SQLite tables with views,
//! composite and missing primary keys, two tenant candidates and a sensitive column; the
//! generated config answers a read and a proposal through the MCP server unchanged; every bad
//! input exits 2 with its code and writes nothing; the wizard in a real pseudo-terminal, with a
//! revision step, and its refusal without one.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use synapsor_testdb::Server;

const BIN: &str = env!("CARGO_BIN_EXE_synapsor-runner");
const URL_ENV: &str = "APP_DATABASE_URL";

/// Variables of the developer's shell the runner would read.
const SCRUBBED: [&str; 6] = [
    "SYNAPSOR_CONFIG",
    "SYNAPSOR_MCP_CONFIG",
    "SYNAPSOR_LOCAL_STORE",
    "SYNAPSOR_TENANT_ID",
    "SYNAPSOR_PRINCIPAL",
    "SYNAPSOR_DATABASE_READ_URL",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Eng {
    Postgres,
    Mysql,
    Sqlite,
}

fn schema_sql(e: Eng) -> String {
    let (text_key, ts, now) = match e {
        Eng::Postgres => ("text", "timestamptz", "now()"),
        Eng::Mysql => ("varchar(64)", "datetime(6)", "CURRENT_TIMESTAMP(6)"),
        Eng::Sqlite => ("text", "text", "'2026-01-01T00:00:00Z'"),
    };
    format!(
        "CREATE TABLE invoices (id {text_key} PRIMARY KEY, tenant_id varchar(64) NOT NULL, \
           amount_cents integer NOT NULL, late_fee_cents integer NOT NULL, status varchar(32) NOT NULL, \
           waiver_reason varchar(500), api_token varchar(200), updated_at {ts} NOT NULL);
         INSERT INTO invoices VALUES ('inv_1', 'acme', 1000, 500, 'open', NULL, 'tok-acme-secret', {now});
         INSERT INTO invoices VALUES ('inv_2', 'globex', 2000, 700, 'open', NULL, 'tok-globex-secret', {now});
         CREATE TABLE order_lines (order_id integer NOT NULL, line_no integer NOT NULL, tenant_id varchar(64) NOT NULL, \
           qty integer, PRIMARY KEY (order_id, line_no));
         CREATE TABLE audit_log (id integer, tenant_id varchar(64), note varchar(200));
         CREATE TABLE memberships (id {text_key} PRIMARY KEY, account_id varchar(64), org_id varchar(64), \
           role varchar(32), updated_at {ts});
         INSERT INTO memberships VALUES ('m_1', 'acme', 'org_9', 'admin', {now});
         CREATE VIEW open_invoices AS SELECT id, tenant_id, amount_cents FROM invoices WHERE status = 'open';"
    )
}

/// A database with the fixture schema: its URL (`None`: skipped, no server configured).
async fn database(e: Eng, dir: &Path) -> Option<String> {
    let sql = schema_sql(e);
    match e {
        Eng::Sqlite => {
            let path = dir.join("app.db");
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(&sql).unwrap();
            Some(format!("sqlite://{}", path.display()))
        }
        Eng::Postgres | Eng::Mysql => {
            let server = if e == Eng::Postgres {
                Server::Postgres
            } else {
                Server::Mysql
            };
            let (_, url) = server.create_database("onboard").await?;
            server.exec(&url, &sql).await;
            Some(url)
        }
    }
}

struct Run {
    dir: tempfile::TempDir,
    url: String,
}

impl Run {
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(BIN);
        for v in SCRUBBED {
            c.env_remove(v);
        }
        c.env(URL_ENV, &self.url)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Every file in the directory (recursively), for "nothing written" checks.
    fn files(&self) -> Vec<String> {
        fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn setup(e: Eng) -> Option<Run> {
    let dir = tempfile::tempdir().unwrap();
    let url = database(e, dir.path()).await?;
    Some(Run { dir, url })
}

/// Runs tools through `mcp serve` (stdio) as tenant acme, the way a client would.
async fn mcp_calls(run: &Run, calls: &[(&str, Value)]) -> Vec<Value> {
    mcp_calls_with(run, "synapsor.runner.json", calls).await
}

async fn mcp_calls_with(run: &Run, config: &str, calls: &[(&str, Value)]) -> Vec<Value> {
    let mut cmd = tokio::process::Command::new(BIN);
    for v in SCRUBBED {
        cmd.env_remove(v);
    }
    cmd.env(URL_ENV, &run.url)
        .env("SYNAPSOR_TENANT_ID", "acme")
        .env("SYNAPSOR_PRINCIPAL", "agent.one")
        .args(["--config", config, "mcp", "serve"])
        .current_dir(run.dir.path())
        .kill_on_drop(true);
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let mut out = Vec::new();
    for (name, args) in calls {
        let Value::Object(args) = args.clone() else { panic!() };
        let r = client
            .call_tool(CallToolRequestParams::new((*name).to_owned()).with_arguments(args))
            .await
            .unwrap();
        out.push(serde_json::to_value(r).unwrap());
    }
    let _ = client.cancel().await;
    out
}

fn assert_usage_error(o: &Output, code: &str, flag: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(2), "{code}: {t}");
    assert!(t.contains(&format!("error[{code}]")), "{code}: {t}");
    assert!(t.contains(flag), "{code} should name {flag}: {t}");
}

async fn scripted_onboarding(e: Eng) {
    let Some(run) = setup(e).await else { return };
    let label = format!("{e:?}");

    // inspect: the catalog with suggestions, never a row.
    let o = run.run(&["inspect", "--from-env", URL_ENV, "--json"]);
    assert!(o.status.success(), "{label}: {}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !text(&o).contains("tok-acme-secret"),
        "{label}: table data in the inspection"
    );
    let tables: Vec<&str> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["audit_log", "invoices", "memberships", "open_invoices", "order_lines"],
        "{label}"
    );
    let inv = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "invoices")
        .unwrap();
    assert_eq!(inv["suggested"]["tenant_column"], "tenant_id", "{label}");
    assert_eq!(inv["suggested"]["conflict_column"], "updated_at", "{label}");
    assert_eq!(
        inv["suggested"]["key"],
        json!({"status": "single", "column": "id"}),
        "{label}"
    );
    let token = inv["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api_token")
        .unwrap();
    assert_eq!(token["suggestions"], json!(["sensitive"]), "{label}");
    assert_eq!(token["visible_by_default"], false);
    assert!(v["note"].as_str().unwrap().contains("suggestions"));
    let view = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "open_invoices")
        .unwrap();
    assert_eq!(view["kind"], "view", "{label}");

    // Ambiguities are named as the flag to pass, and nothing is written.
    for (args, code, flag) in [
        (
            vec!["--table", "order_lines"],
            "ONBOARD_PRIMARY_KEY_AMBIGUOUS",
            "--primary-key",
        ),
        (
            vec!["--table", "audit_log"],
            "ONBOARD_PRIMARY_KEY_REQUIRED",
            "--primary-key",
        ),
        (
            vec!["--table", "open_invoices"],
            "ONBOARD_PRIMARY_KEY_REQUIRED",
            "--primary-key",
        ),
        (
            vec!["--table", "memberships"],
            "ONBOARD_TENANT_COLUMN_AMBIGUOUS",
            "--tenant-column",
        ),
        (vec!["--table", "nope"], "ONBOARD_UNKNOWN_TABLE", "--table"),
        (
            vec!["--table", "invoices", "--visible-columns", "id,api_token"],
            "ONBOARD_SENSITIVE_COLUMN",
            "--visible-columns",
        ),
        (
            vec!["--table", "invoices", "--visible-columns", "id,nope"],
            "ONBOARD_UNKNOWN_COLUMN",
            "--visible-columns",
        ),
        (
            vec![
                "--table",
                "invoices",
                "--patch",
                "status=fixed:void",
                "--allowed-columns",
                "late_fee_cents",
            ],
            "ONBOARD_PATCH_COLUMN_NOT_ALLOWED",
            "--patch",
        ),
        (
            vec![
                "--table",
                "invoices",
                "--patch",
                "status=fixed:void",
                "--allowed-columns",
                "status,tenant_id",
            ],
            "ONBOARD_KEY_COLUMN_ALLOWED",
            "--allowed-columns",
        ),
        (
            vec!["--table", "invoices", "--patch", "status"],
            "ONBOARD_PATCH_INVALID",
            "--patch",
        ),
        (
            vec![
                "--table",
                "invoices",
                "--patch",
                "late_fee_cents=arg:fee",
                "--patch-bounds",
                "late_fee_cents=9:1",
            ],
            "ONBOARD_BOUNDS_INVALID",
            "--patch-bounds",
        ),
        (
            vec!["--table", "invoices", "--mode", "review"],
            "ONBOARD_PATCH_REQUIRED",
            "--patch",
        ),
    ] {
        let mut all = vec!["init", "--from-env", URL_ENV, "--yes"];
        all.extend(args.iter().copied());
        let o = run.run(&all);
        assert_usage_error(&o, code, flag);
        assert_eq!(
            run.files(),
            if e == Eng::Sqlite {
                vec!["app.db"]
            } else {
                Vec::<&str>::new()
            },
            "{label}: {code}"
        );
    }

    // A key made unique by the tenant, and a chosen tenant among two candidates, are accepted.
    let o = run.run(&[
        "init",
        "--from-env",
        URL_ENV,
        "--yes",
        "--dry-run",
        "--table",
        "memberships",
        "--tenant-column",
        "org_id",
    ]);
    assert!(o.status.success(), "{label}: {}", text(&o));
    assert!(!run.path("synapsor.runner.json").exists(), "{label}: --dry-run wrote");

    // The real thing: onboard db with a review action.
    let o = run.run(&[
        "onboard",
        "db",
        "--from-env",
        URL_ENV,
        "--yes",
        "--table",
        "invoices",
        "--namespace",
        "billing",
        "--proposal-tool",
        "billing.propose_late_fee_waiver",
        "--patch",
        "late_fee_cents=fixed:0,waiver_reason=arg:reason",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{label}: {t}");
    for shown in [
        "What I am about to write",
        "billing.inspect_invoice",
        "billing.propose_late_fee_waiver",
        "Not exposed to the model",
        "api_token (sensitive)",
        "[ok] config",
        "[ok] tool boundary",
        "synapsor-runner mcp serve",
    ] {
        assert!(t.contains(shown), "{label}: {shown:?} missing from:\n{t}");
    }
    assert!(!t.contains(&run.url), "{label}: the URL was printed");
    let env_example = std::fs::read_to_string(run.path(".env.example")).unwrap();
    assert!(env_example.contains(&format!("{URL_ENV}=<")), "{env_example}");
    assert!(!env_example.contains("://"), "{env_example}");
    for client in ["claude-desktop", "cursor", "vscode"] {
        let s = std::fs::read_to_string(run.path(&format!(".synapsor/mcp/{client}.json"))).unwrap();
        assert!(
            s.contains("synapsor.runner.json") && s.contains(URL_ENV),
            "{client}: {s}"
        );
        assert!(!s.contains(&run.url));
    }
    // Never overwritten without --force.
    let before = std::fs::read_to_string(run.path("synapsor.runner.json")).unwrap();
    let o = run.run(&[
        "init",
        "--from-env",
        URL_ENV,
        "--yes",
        "--table",
        "memberships",
        "--tenant-column",
        "org_id",
    ]);
    assert_usage_error(&o, "ONBOARD_FILE_EXISTS", "--force");
    assert_eq!(
        std::fs::read_to_string(run.path("synapsor.runner.json")).unwrap(),
        before
    );

    // The generated config validates and serves a read and a proposal unchanged.
    let o = run.run(&["config", "validate"]);
    assert!(o.status.success(), "{label}: {}", text(&o));
    let results = mcp_calls(
        &run,
        &[
            ("billing.inspect_invoice", json!({"invoice_id": "inv_1"})),
            ("billing.inspect_invoice", json!({"invoice_id": "inv_2"})),
            (
                "billing.propose_late_fee_waiver",
                json!({"invoice_id": "inv_1", "reason": "first late payment"}),
            ),
        ],
    )
    .await;
    let read = &results[0]["structuredContent"];
    assert_eq!(read["ok"], true, "{label}: {read}");
    assert_eq!(read["data"]["late_fee_cents"], 500, "{label}: {read}");
    assert!(read["data"].get("tenant_id").is_none(), "{label}: tenant shown: {read}");
    assert!(
        read["data"].get("api_token").is_none(),
        "{label}: sensitive column shown: {read}"
    );
    assert!(!results[0].to_string().contains("acme"), "{label}: the tenant leaked");
    // Another tenant's row does not exist for acme.
    assert_eq!(results[1]["structuredContent"]["ok"], false, "{label}: {}", results[1]);
    let prop = &results[2]["structuredContent"];
    assert_eq!(prop["ok"], true, "{label}: {prop}");
    assert_eq!(
        prop["proposal"]["diff"]["late_fee_cents"],
        json!({"before": 500, "after": 0}),
        "{label}: {prop}"
    );
    let o = run.run(&["proposals", "list", "--json"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    assert_eq!(list["proposals"].as_array().map(Vec::len), Some(1), "{label}: {list}");

    // The view, keyed by hand, and the table with two tenant candidates, once chosen, serve too.
    for (dir, args, tool, id_arg, id) in [
        (
            "view",
            vec!["--table", "open_invoices", "--primary-key", "id"],
            "open.inspect_open_invoice",
            "open_invoice_id",
            "inv_1",
        ),
        (
            "members",
            vec!["--table", "memberships", "--tenant-column", "account_id"],
            "membership.inspect_membership",
            "membership_id",
            "m_1",
        ),
    ] {
        let out = format!("{dir}/synapsor.runner.json");
        let mut all = vec!["init", "--from-env", URL_ENV, "--yes", "--out", &out];
        all.extend(args.iter().copied());
        let o = run.run(&all);
        assert!(o.status.success(), "{label} {dir}: {}", text(&o));
        let r = mcp_calls_with(&run, &out, &[(tool, json!({ id_arg: id }))]).await;
        let env = &r[0]["structuredContent"];
        assert_eq!(env["ok"], true, "{label} {dir}: {env}");
        assert!(
            env["data"].get("tenant_id").is_none() && env["data"].get("account_id").is_none(),
            "{label}: {env}"
        );
    }
    // A column that is not a key is refused as one.
    let o = run.run(&[
        "init",
        "--from-env",
        URL_ENV,
        "--yes",
        "--table",
        "audit_log",
        "--primary-key",
        "id",
        "--out",
        "x.json",
    ]);
    assert_usage_error(&o, "ONBOARD_KEY_NOT_UNIQUE", "--primary-key");
}

#[tokio::test]
async fn scripted_onboarding_on_sqlite() {
    scripted_onboarding(Eng::Sqlite).await;
}

#[tokio::test]
async fn scripted_onboarding_on_postgres() {
    scripted_onboarding(Eng::Postgres).await;
}

#[tokio::test]
async fn scripted_onboarding_on_mariadb() {
    scripted_onboarding(Eng::Mysql).await;
}

#[tokio::test]
async fn answers_file_with_the_originals_keys() {
    let Some(run) = setup(Eng::Sqlite).await else { return };
    let answers = json!({
        "version": 1,
        "mode": "review",
        "table": "invoices",
        "tenant_key": "tenant_id",
        "conflict_column": "updated_at",
        "namespace": "billing",
        "object_name": "invoice",
        "inspect_tool_name": "billing.inspect_invoice",
        "proposal_tool_name": "billing.propose_late_fee_adjustment",
        "lookup_arg": "invoice_id",
        "visible_columns": ["id", "amount_cents", "late_fee_cents", "status"],
        "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}, "waiver_reason": "arg:reason"},
        "numeric_bounds": {"late_fee_cents": "0:1000"},
        "database_url_env": URL_ENV,
        "approval_role": "billing_reviewer",
        "result_format": 2
    });
    std::fs::write(run.path("answers.json"), answers.to_string()).unwrap();
    let o = run.run(&[
        "init",
        "--answers",
        "answers.json",
        "--out",
        "cfg/runner.json",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["tools"],
        json!(["billing.inspect_invoice", "billing.propose_late_fee_adjustment"])
    );
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(run.path("cfg/runner.json")).unwrap()).unwrap();
    let p = &cfg["capabilities"][1];
    assert_eq!(p["args"]["late_fee_cents"]["maximum"], 1000.0);
    assert_eq!(p["approval"]["required_role"], "billing_reviewer");
    // The key, the version and the patched columns are always visible.
    assert_eq!(
        p["visible_columns"],
        json!([
            "id",
            "amount_cents",
            "late_fee_cents",
            "status",
            "waiver_reason",
            "updated_at"
        ])
    );
    assert!(run.path("cfg/.env.example").exists());
    // The answers file is checked against the schema's keys, and flags override it.
    std::fs::write(
        run.path("bad.json"),
        r#"{"version": 1, "table": "invoices", "tenant_colum": "x"}"#,
    )
    .unwrap();
    let o = run.run(&["init", "--answers", "bad.json", "--out", "x.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("ONBOARD_ANSWERS_INVALID") && text(&o).contains("tenant_colum"),
        "{}",
        text(&o)
    );
    let o = run.run(&[
        "init",
        "--answers",
        "answers.json",
        "--table",
        "order_lines",
        "--out",
        "y.json",
    ]);
    assert_usage_error(&o, "ONBOARD_PRIMARY_KEY_AMBIGUOUS", "--primary-key");
    assert!(!run.path("x.json").exists() && !run.path("y.json").exists());
    // A URL where a variable name belongs is refused without being echoed.
    let secret_url = "postgres://app:hunter2@db.internal/prod";
    for args in [
        vec!["inspect", secret_url],
        vec!["inspect", "--from-env", secret_url],
        vec![
            "init",
            "--yes",
            "--table",
            "invoices",
            "--write-url-env",
            secret_url,
            "--out",
            "z.json",
        ],
    ] {
        let o = run.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("ONBOARD_URL_NOT_ENV"), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("hunter2"), "{args:?}: echoed the URL");
    }
    // An unset variable is named.
    let o = run.run(&["inspect", "--from-env", "NOT_SET_ANYWHERE"]);
    assert_usage_error(&o, "ONBOARD_DATABASE_ENV_MISSING", "NOT_SET_ANYWHERE");
}

#[tokio::test]
async fn the_wizard_refuses_to_prompt_without_a_terminal() {
    let Some(run) = setup(Eng::Sqlite).await else { return };
    let o = run.run(&["init", "--from-env", URL_ENV]);
    assert_usage_error(&o, "ONBOARD_TTY_REQUIRED", "--table");
    let o = run.run(&[
        "onboard",
        "db",
        "--from-env",
        URL_ENV,
        "--wizard",
        "--table",
        "invoices",
    ]);
    assert_usage_error(&o, "ONBOARD_TTY_REQUIRED", "--answers");
    assert_eq!(run.files(), ["app.db"]);
}

/// The wizard in a real pseudo-terminal: suggestions as defaults, a review action, the preview,
/// a revision of the visible fields, then the files.
#[tokio::test]
async fn the_wizard_walks_previews_revises_and_writes() {
    let Some(run) = setup(Eng::Sqlite).await else { return };
    let mut cmd = std::process::Command::new(BIN);
    for v in SCRUBBED {
        cmd.env_remove(v);
    }
    cmd.env(URL_ENV, &run.url)
        .env("TERM", "xterm")
        .env("SYNAPSOR_TENANT_ID", "acme")
        .env("SYNAPSOR_PRINCIPAL", "agent.one")
        .args(["init", "--from-env", URL_ENV])
        .current_dir(run.dir.path());
    let dir = run.dir.path().to_owned();
    // rexpect is blocking: drive it off the async runtime.
    let transcript = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
        const ENTER: &str = "\r";
        const DOWN: &str = "\x1b[B";
        let step = |p: &mut rexpect::session::PtySession, wait: &str, send: &str| {
            p.exp_string(wait)
                .unwrap_or_else(|e| panic!("waiting for {wait:?}: {e}"));
            std::thread::sleep(Duration::from_millis(50));
            p.send(send).unwrap();
            p.flush().unwrap();
        };
        // Table: type to filter, then choose.
        step(&mut p, "Table", "invoices");
        step(&mut p, "invoices", ENTER);
        // Key and tenant: the suggestions are the defaults.
        step(&mut p, "Column that identifies one row", ENTER);
        step(&mut p, "Tenant column", ENTER);
        // Mode: review is the second choice.
        step(&mut p, "Mode", DOWN);
        step(&mut p, "review:", ENTER);
        step(
            &mut p,
            "Patch mappings",
            "late_fee_cents=fixed:0,waiver_reason=arg:reason\r",
        );
        step(&mut p, "Numeric bounds", ENTER);
        step(&mut p, "Status guards", ENTER);
        step(&mut p, "Version column", ENTER);
        step(&mut p, "Writeback", ENTER);
        step(&mut p, "Visible fields", ENTER);
        step(&mut p, "Object name", ENTER);
        step(&mut p, "Namespace", "billing\r");
        step(&mut p, "Lookup argument", ENTER);
        step(&mut p, "Read tool name", ENTER);
        step(&mut p, "Proposal tool name", "billing.propose_late_fee_waiver\r");
        step(&mut p, "Read tool description", ENTER);
        step(&mut p, "An id for a first read", "inv_1\r");
        // The preview; revise the visible fields (drop status).
        let preview = p.exp_string("Ready?").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        p.send(DOWN).unwrap();
        p.send(ENTER).unwrap();
        p.flush().unwrap();
        step(&mut p, "Visible fields", "");
        // Replace the default with a shorter list.
        for _ in 0..120 {
            p.send("\x7f").unwrap();
        }
        p.send("id,amount_cents,late_fee_cents\r").unwrap();
        p.flush().unwrap();
        let revised = p.exp_string("Ready?").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        p.send(ENTER).unwrap();
        p.flush().unwrap();
        let rest = p.exp_eof().unwrap();
        let status = p.process.wait().unwrap();
        assert!(
            matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
            "{status:?}: {rest}"
        );
        (preview, revised, rest, dir)
    })
    .await
    .unwrap();
    let (preview, revised, rest, dir) = transcript;
    assert!(preview.contains("Tools the model will see"), "{preview}");
    assert!(preview.contains("billing.propose_late_fee_waiver"), "{preview}");
    assert!(preview.contains("Not exposed to the model"), "{preview}");
    assert!(preview.contains("api_token (sensitive)"), "{preview}");
    assert!(revised.contains("status (not selected)"), "{revised}");
    assert!(rest.contains("First read"), "{rest}");
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("synapsor.runner.json")).unwrap()).unwrap();
    assert_eq!(cfg["capabilities"][1]["name"], "billing.propose_late_fee_waiver");
    // The patched and version columns stay visible; status was revised away.
    assert_eq!(
        cfg["capabilities"][0]["visible_columns"],
        json!(["id", "amount_cents", "late_fee_cents", "waiver_reason", "updated_at"])
    );
    let o = run.run(&["config", "validate"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// App-owned writeback: the source stays read-only, the executor is named, and the handler
/// template is written beside the config.
#[tokio::test]
async fn handler_writeback_with_a_template() {
    let Some(run) = setup(Eng::Sqlite).await else { return };
    let o = run.run(&[
        "init",
        "--from-env",
        URL_ENV,
        "--yes",
        "--table",
        "invoices",
        "--patch",
        "late_fee_cents=fixed:0",
        "--writeback",
        "http_handler",
        "--handler-signing-secret-env",
        "APP_SIGNING_SECRET",
        "--emit-handler",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(run.path("synapsor.runner.json")).unwrap()).unwrap();
    assert_eq!(cfg["sources"]["local_sqlite"]["read_only"], true);
    assert_eq!(
        cfg["executors"]["app_handler"]["signing_secret_env"],
        "APP_SIGNING_SECRET"
    );
    assert!(
        std::fs::read_to_string(run.path("handler.mjs"))
            .unwrap()
            .contains("signature")
    );
    let env = std::fs::read_to_string(run.path(".env.example")).unwrap();
    assert!(
        env.contains("SYNAPSOR_APP_WRITEBACK_URL=") && env.contains("APP_SIGNING_SECRET=<"),
        "{env}"
    );
    // A handler template without a handler is refused.
    let o = run.run(&[
        "init",
        "--from-env",
        URL_ENV,
        "--yes",
        "--table",
        "invoices",
        "--emit-handler",
        "--out",
        "other.json",
    ]);
    assert_usage_error(&o, "ONBOARD_HANDLER_FLAG_UNUSED", "--emit-handler");
    assert!(!run.path("other.json").exists());
}
