//! The MCP-facing CLI commands against a real PostgreSQL database: `tools list|preview`,
//! `smoke call`, `up --dry-run` and `mcp client-config`, whose generated client configurations
//! are started exactly as a client would start them and then driven with rmcp's client.
#![allow(clippy::unwrap_used)]

mod mcp_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};
use std::time::Duration;

use mcp_common::*;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn run(fx: &Fixture, args: &[&str]) -> Output {
    fx.std_command("acme", args).output().unwrap()
}

fn openai_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[tokio::test]
async fn tools_list_and_preview_show_exactly_the_reviewed_tools() {
    let Some(fx) = fixture().await else { return };

    let o = run(&fx, &["tools", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["mode"], "review");
    assert_eq!(v["alias_mode"], "canonical");
    // The same tool definitions a client gets from tools/list.
    assert_tools(&v["tools"], "tools list --json");

    let o = run(&fx, &["tools", "list", "--aliases", "--json"]);
    let v = json_out(&o);
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for canonical in TOOLS {
        assert!(names.contains(&canonical), "{names:?}");
        let alias = canonical.replace('.', "__");
        assert!(names.contains(&alias.as_str()), "{names:?}");
    }

    let o = run(&fx, &["tools", "list", "--alias-mode", "openai", "--json"]);
    let v = json_out(&o);
    for t in v["tools"].as_array().unwrap() {
        assert!(openai_name_ok(t["name"].as_str().unwrap()), "{t}");
    }

    let o = run(&fx, &["tools", "list"]);
    assert!(o.status.success());
    let out = text(&o);
    for name in TOOLS {
        assert!(out.contains(name), "{out}");
    }

    let o = run(&fx, &["tools", "preview", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["tool_count"], TOOLS.len(), "{v}");
    let read = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["canonical_name"] == "billing.inspect_invoice")
        .unwrap();
    assert_eq!(read["kind"], "read");
    assert_eq!(read["annotations"]["readOnlyHint"], true);
    let hidden = read["not_exposed"]["hidden_columns"].as_array().unwrap();
    assert!(hidden.contains(&json!("tenant_id")), "{read}");
    assert!(
        read["not_exposed"]["tenant"]["from"]
            .as_str()
            .unwrap()
            .contains("SYNAPSOR_TENANT_ID")
    );
    let args: Vec<&str> = read["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(args, ["invoice_id"]);
    // The preview never shows a credential, even though the environment holds one.
    let o = run(&fx, &["tools", "preview"]);
    let out = text(&o);
    assert!(o.status.success());
    assert!(out.contains("Never exposed"), "{out}");
    assert!(!out.contains("read_pw") && !out.contains(&fx.db.read_url), "{out}");
    assert!(!String::from_utf8_lossy(&run(&fx, &["tools", "preview", "--json"]).stdout).contains("read_pw"));
}

#[tokio::test]
async fn smoke_call_prints_the_envelope_and_its_exit_code() {
    let Some(fx) = fixture().await else { return };

    let o = run(
        &fx,
        &[
            "smoke",
            "call",
            "billing.inspect_invoice",
            "--args",
            r#"{"invoice_id":"INV-1"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["tool"], "billing.inspect_invoice");
    assert_eq!(v["is_error"], false);
    assert_eq!(v["result"]["ok"], true, "{v}");
    assert_invoice_matches_db(&fx.db, "INV-1", &v["result"]["data"], "smoke").await;

    // Through the alias the server would list in openai mode.
    let o = run(
        &fx,
        &[
            "smoke",
            "call",
            "billing__inspect_invoice",
            "--alias-mode",
            "openai",
            "--args",
            r#"{"invoice_id":"INV-2"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["result"]["_meta"]["canonical_capability"], "billing.inspect_invoice");
    assert_invoice_matches_db(&fx.db, "INV-2", &v["result"]["data"], "smoke alias").await;

    // A proposal: recorded, the database unchanged.
    let o = run(
        &fx,
        &[
            "smoke",
            "call",
            "billing.propose_late_fee_waiver",
            "--args",
            r#"{"invoice_id":"INV-1"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(
        v["result"]["proposal"]["diff"],
        json!({"late_fee_cents": {"before": 5500, "after": 0}})
    );
    assert_eq!(db_late_fee(&fx.db, "INV-1").await, 5500);
    let id = v["result"]["proposal"]["id"].as_str().unwrap();
    let list = json_out(&run(&fx, &["proposals", "list", "--json"]));
    assert_eq!(list["proposals"][0]["proposal_id"], json!(id), "{list}");
    assert_eq!(list["proposals"][0]["tenant_id"], "acme");
    assert_eq!(list["proposals"][0]["state"], "pending_review");

    // Failures print the envelope too, and exit 1.
    for (args, code) in [
        (r#"{"invoice_id":"INV-9"}"#, "NOT_FOUND_IN_TENANT"),
        (r#"{"invoice_id":"INV-404"}"#, "NOT_FOUND_IN_TENANT"),
        (r#"{"invoice_id":"INV-9","tenant_id":"globex"}"#, "INVALID_ARGUMENT"),
    ] {
        let o = run(&fx, &["smoke", "call", "billing.inspect_invoice", "--args", args]);
        assert_eq!(o.status.code(), Some(1), "{args}: {}", text(&o));
        let v = json_out(&o);
        assert_eq!(v["is_error"], true);
        assert_eq!(v["result"]["error"]["code"], code, "{args}: {v}");
        assert!(!text(&o).contains("Globex"), "{args}: leaked: {}", text(&o));
    }
    let o = run(
        &fx,
        &["smoke", "call", "execute_sql", "--args", r#"{"sql":"select 1"}"#],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_out(&o)["result"]["error"]["code"], "CAPABILITY_NOT_FOUND");
    let o = run(&fx, &["smoke", "call", "billing.inspect_invoice", "--args", "{nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("INVALID_ARGS_JSON"), "{}", text(&o));
}

#[tokio::test]
async fn up_dry_run_checks_the_database_and_names_the_writeback_path() {
    let Some(fx) = fixture().await else { return };

    let o = run(&fx, &["up", "--dry-run", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["ok"], true, "{v}");
    let checks = v["checks"].as_array().unwrap();
    let source = checks.iter().find(|c| c["check"] == "source main").unwrap();
    assert_eq!(source["ok"], true, "{source}");
    assert!(source["detail"].as_str().unwrap().contains("reachable"), "{source}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{v}");
    let mut tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tools.sort_unstable();
    assert_eq!(tools, TOOLS);
    let wb = v["writeback"].as_array().unwrap();
    assert_eq!(wb.len(), 1, "one proposal capability: {v}");
    assert_eq!(wb[0]["capability"], "billing.propose_late_fee_waiver");
    assert_eq!(wb[0]["writeback"]["executor"], "sql_update");
    assert!(
        wb[0]["writeback"]["path"].as_str().unwrap().contains("direct SQL"),
        "{wb:?}"
    );
    assert_eq!(wb[0]["writeback"]["write_url_env"], "TEST_WRITE_URL");
    assert!(!o.stdout.is_empty() && !text(&o).contains("read_pw"), "no credentials");

    // Human output names the same things.
    let o = run(&fx, &["up", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("source main") && out.contains("Writeback for billing.propose_late_fee_waiver"));

    // A wrong database URL: the failing check is reported (without the URL) and up exits 1.
    let port = free_port();
    let bad_url = format!("postgres://nobody:sekret@127.0.0.1:{port}/nowhere");
    let o = fx
        .std_command("acme", &["up", "--dry-run", "--json"])
        .env("TEST_READ_URL", &bad_url)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["ok"], false);
    let source = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "source main")
        .unwrap();
    assert_eq!(source["ok"], false, "{v}");
    assert!(
        source["detail"].as_str().unwrap().contains("SOURCE_UNAVAILABLE"),
        "{source}"
    );
    assert!(!text(&o).contains("sekret"), "the URL's password leaked: {}", text(&o));
    // A wrong password on the real server fails the same way.
    let wrong_pw = fx.db.read_url.replace("read_pw", "not_the_pw");
    let o = fx
        .std_command("acme", &["up", "--dry-run"])
        .env("TEST_READ_URL", &wrong_pw)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.lines().any(|l| l.contains("FAIL") && l.contains("source main")),
        "{out}"
    );
    assert!(!out.contains("not_the_pw"), "{out}");

    // While a server holds the store, up reports the lease.
    let mut server = fx
        .std_command("acme", &["mcp", "serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = server.stdin.take().unwrap();
    writeln!(stdin, "{}", initialize_body()).unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("synapsor-runner"), "initialize: {line}");
    let o = run(&fx, &["up", "--dry-run", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json_out(&o);
    let lease = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "lease")
        .unwrap();
    assert_eq!(lease["ok"], false, "{v}");
    assert!(lease["detail"].as_str().unwrap().contains("leas"), "{lease}");
    drop(stdin); // EOF ends a stdio server.
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// `mcp client-config` for each client: the generated command really serves the configured
/// tools when started the way the client starts it.
#[tokio::test]
async fn client_config_snippets_start_a_working_server() {
    let Some(fx) = fixture().await else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = fx.config.display().to_string();

    for (client, key) in [
        ("claude-desktop", "mcpServers"),
        ("cursor", "mcpServers"),
        ("vscode", "servers"),
    ] {
        let o = run(&fx, &["mcp", "client-config", "--client", client, "--absolute-paths"]);
        assert!(o.status.success(), "{client}: {}", text(&o));
        let v = json_out(&o);
        let server = &v[key]["synapsor"];
        assert_eq!(server["command"], "synapsor-runner", "{client}: {v}");
        let args: Vec<String> = server["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&args[..2], ["mcp", "serve"], "{client}: {args:?}");
        assert!(args.contains(&config), "{client}: {args:?}");
        assert!(args.contains(&fx.store.display().to_string()), "{client}: {args:?}");
        if client == "vscode" {
            assert_eq!(server["type"], "stdio");
        }
        // The env block names what the server reads, with placeholders, never values.
        let env_block = server["env"]
            .as_object()
            .unwrap_or_else(|| panic!("{client}: no env block: {v}"));
        let names: Vec<&str> = env_block.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["TEST_READ_URL", "SYNAPSOR_TENANT_ID", "SYNAPSOR_PRINCIPAL"],
            "{client}"
        );
        assert!(
            env_block
                .values()
                .all(|p| p.as_str().is_some_and(|p| p.starts_with('<'))),
            "{client}: {v}"
        );
        // Start it as the client would: the binary in place of the PATH name, and an
        // environment of only what the env block names (Claude Desktop does not pass the shell's).
        let values: std::collections::HashMap<String, String> = fx.env("acme").into_iter().collect();
        let mut cmd = tokio::process::Command::new(bin_path());
        cmd.args(&args).current_dir("/").env_clear();
        for name in names {
            cmd.env(name, &values[name]);
        }
        let mcp = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
        let tools = mcp.list_all_tools().await.unwrap();
        assert_tools(&serde_json::to_value(&tools).unwrap(), client);
        mcp.cancel().await.unwrap();
    }

    // OpenAI Agents: Streamable HTTP and OpenAI-safe aliases by default.
    let port = free_port().to_string();
    let o = run(
        &fx,
        &[
            "mcp",
            "client-config",
            "--client",
            "openai-agents",
            "--absolute-paths",
            "--port",
            &port,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v = json_out(&o);
    assert_eq!(v["transport"], "streamable-http", "{v}");
    assert_eq!(v["alias_mode"], "openai");
    let names: Vec<String> = v["tool_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), TOOLS.len(), "{v}");
    assert!(names.iter().all(|n| openai_name_ok(n)), "{names:?}");
    let url = v["openai_agents_sdk"]["url"].as_str().unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/mcp"));
    let start = &v["start_server"];
    let args: Vec<String> = start["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let token_env = args[args.iter().position(|a| a == "--auth-token-env").unwrap() + 1].clone();
    let start_env: Vec<&str> = start["env"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        start_env,
        [
            "TEST_READ_URL",
            "SYNAPSOR_TENANT_ID",
            "SYNAPSOR_PRINCIPAL",
            token_env.as_str()
        ],
        "{v}"
    );
    let python = v["openai_agents_sdk"]["python"].as_str().unwrap();
    assert!(
        python.contains("MCPServerStreamableHttp") && python.contains(url),
        "{python}"
    );

    // Only what start_server.env names.
    let mut values: std::collections::HashMap<String, String> = fx.env("acme").into_iter().collect();
    values.insert(token_env.clone(), TOKEN.to_owned());
    let mut cmd = tokio::process::Command::new(bin_path());
    cmd.args(&args).env_clear();
    for name in &start_env {
        cmd.env(name, &values[*name]);
    }
    cmd.current_dir("/").stdin(Stdio::null()).kill_on_drop(true);
    let mut server = HttpServer::spawn(cmd, port.parse().unwrap()).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(TOKEN),
    );
    let mcp = ().serve(transport).await.unwrap();
    let mut listed: Vec<String> = mcp
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    listed.sort_unstable();
    let mut want = names.clone();
    want.sort_unstable();
    assert_eq!(listed, want, "the snippet's tool_names are what the server lists");
    let read = mcp
        .call_tool(
            rmcp::model::CallToolRequestParams::new("billing__inspect_invoice")
                .with_arguments(json!({"invoice_id": "INV-1"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let read = serde_json::to_value(read).unwrap();
    assert_read(&fx.db, &read, "openai-agents").await;
    mcp.cancel().await.unwrap();
    let (status, _) = server.terminate(Duration::from_secs(5)).await;
    assert!(status.success());

    // Claude Desktop has no Streamable HTTP; an unknown client is an error with a code.
    let o = run(
        &fx,
        &[
            "mcp",
            "client-config",
            "--client",
            "claude-desktop",
            "--transport",
            "streamable-http",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = run(&fx, &["mcp", "client-config", "--client", "zed"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("MCP_CLIENT_UNKNOWN"), "{}", text(&o));
}
