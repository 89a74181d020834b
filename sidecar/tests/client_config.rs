//! MCP client config snippets: each client's shape, OpenAI-safe names for the Agents SDK, no
//! secrets in any output, and agent instructions only when asked.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use synapsor_core::tools::AliasMode;
use synapsor_runner::client_config::{
    ClientConfigOptions, ClientKind, ServerEnv, TOKEN_PLACEHOLDER, Transport, agent_instructions, client_config,
    server_args,
};

const CONFIG: &str = "/srv/app/synapsor.runner.json";

fn caps() -> Vec<String> {
    [
        "billing.inspect_invoice",
        "billing.propose_credit",
        "support.inspect_ticket",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn opts(client: ClientKind) -> ClientConfigOptions {
    let mut o = ClientConfigOptions::new(client, CONFIG);
    o.tool_names = caps();
    o
}

/// `^[a-zA-Z0-9_-]{1,64}$`
fn openai_safe(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[test]
fn claude_desktop_stdio() {
    let v = client_config(&opts(ClientKind::ClaudeDesktop)).unwrap();
    assert_eq!(
        v,
        json!({"mcpServers": {"synapsor": {
            "command": "synapsor-runner",
            "args": ["mcp", "serve", "--config", CONFIG]
        }}})
    );
}

#[test]
fn claude_alias_store_and_alias_mode() {
    let mut o = opts("claude".parse().unwrap());
    o.store_path = Some("/srv/app/.synapsor/local.db".into());
    o.alias_mode = Some(AliasMode::Both);
    o.command = "/usr/local/bin/synapsor-runner".into();
    let v = client_config(&o).unwrap();
    assert_eq!(
        v["mcpServers"]["synapsor"],
        json!({
            "command": "/usr/local/bin/synapsor-runner",
            "args": ["mcp", "serve", "--config", CONFIG, "--store", "/srv/app/.synapsor/local.db", "--alias-mode", "both"]
        })
    );
}

#[test]
fn claude_desktop_has_no_http_form() {
    let mut o = opts(ClientKind::ClaudeDesktop);
    o.transport = Some(Transport::StreamableHttp);
    let err = client_config(&o).unwrap_err();
    assert_eq!(err.code(), "MCP_CLIENT_TRANSPORT_UNSUPPORTED");
    assert!(err.to_string().contains("--transport stdio"));
}

#[test]
fn cursor_stdio_and_http() {
    let v = client_config(&opts(ClientKind::Cursor)).unwrap();
    assert_eq!(
        v["mcpServers"]["synapsor"]["args"],
        json!(["mcp", "serve", "--config", CONFIG])
    );
    let mut o = opts(ClientKind::Cursor);
    o.transport = Some("streamable-http".parse().unwrap());
    let v = client_config(&o).unwrap();
    assert_eq!(
        v,
        json!({"mcpServers": {"synapsor": {
            "url": "http://127.0.0.1:8766/mcp",
            "headers": {"Authorization": "Bearer ${env:SYNAPSOR_RUNNER_HTTP_TOKEN}"}
        }}})
    );
    // The server the URL points at is started with these arguments.
    assert_eq!(
        server_args(&o).unwrap(),
        [
            "mcp",
            "serve-streamable-http",
            "--config",
            CONFIG,
            "--host",
            "127.0.0.1",
            "--port",
            "8766",
            "--auth-token-env",
            "SYNAPSOR_RUNNER_HTTP_TOKEN"
        ]
    );
}

#[test]
fn vscode_stdio_and_http() {
    let v = client_config(&opts(ClientKind::Vscode)).unwrap();
    assert_eq!(
        v,
        json!({"servers": {"synapsor": {
            "type": "stdio",
            "command": "synapsor-runner",
            "args": ["mcp", "serve", "--config", CONFIG]
        }}})
    );
    let mut o = opts(ClientKind::Vscode);
    o.transport = Some(Transport::StreamableHttp);
    o.port = 9000;
    o.auth_token_env = "TEAM_MCP_TOKEN".into();
    let v = client_config(&o).unwrap();
    assert_eq!(
        v,
        json!({"servers": {"synapsor": {
            "type": "http",
            "url": "http://127.0.0.1:9000/mcp",
            "headers": {"Authorization": "Bearer ${env:TEAM_MCP_TOKEN}"}
        }}})
    );
}

#[test]
fn generic_stdio() {
    let v = client_config(&opts("generic".parse().unwrap())).unwrap();
    assert_eq!(
        v["mcpServers"]["synapsor"],
        json!({"command": "synapsor-runner", "args": ["mcp", "serve", "--config", CONFIG]})
    );
}

#[test]
fn openai_agents_defaults_to_http_with_aliases() {
    let v = client_config(&opts("openai-agents".parse().unwrap())).unwrap();
    assert_eq!(v["transport"], "streamable-http");
    assert_eq!(v["alias_mode"], "openai");
    assert_eq!(v["start_server"]["command"], "synapsor-runner");
    assert_eq!(
        v["start_server"]["args"],
        json!([
            "mcp",
            "serve-streamable-http",
            "--config",
            CONFIG,
            "--host",
            "127.0.0.1",
            "--port",
            "8766",
            "--auth-token-env",
            "SYNAPSOR_RUNNER_HTTP_TOKEN",
            "--alias-mode",
            "openai"
        ])
    );
    assert_eq!(
        v["start_server"]["env"],
        json!({"SYNAPSOR_RUNNER_HTTP_TOKEN": TOKEN_PLACEHOLDER})
    );
    let sdk = &v["openai_agents_sdk"];
    assert_eq!(sdk["package"], "openai-agents");
    assert_eq!(sdk["url"], "http://127.0.0.1:8766/mcp");
    assert_eq!(
        sdk["headers_from_env"],
        json!({"Authorization": {"scheme": "Bearer", "env": "SYNAPSOR_RUNNER_HTTP_TOKEN"}})
    );
    let py = sdk["python"].as_str().unwrap();
    for needle in [
        "from agents.mcp import MCPServerStreamableHttp",
        "\"url\": \"http://127.0.0.1:8766/mcp\"",
        "os.environ[\"SYNAPSOR_RUNNER_HTTP_TOKEN\"]",
        "mcp_servers=[synapsor]",
    ] {
        assert!(py.contains(needle), "missing {needle:?} in\n{py}");
    }
    let names: Vec<&str> = v["tool_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "billing__inspect_invoice",
            "billing__propose_credit",
            "support__inspect_ticket"
        ]
    );
    assert!(names.iter().all(|n| openai_safe(n)));
    assert!(v["notes"].as_array().unwrap().len() >= 3);
    assert!(v.get("agent_instructions").is_none());
}

#[test]
fn openai_agents_aliases_stay_safe_for_awkward_names() {
    let mut o = opts(ClientKind::OpenaiAgents);
    o.tool_names = vec![
        "a.b".into(),
        "a._b".into(),
        format!("ns.{}", "very_long_name_".repeat(8)),
        "weird name/with:chars".into(),
    ];
    let v = client_config(&o).unwrap();
    let names: Vec<&str> = v["tool_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| openai_safe(n)), "{names:?}");
    let unique: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), 4);
}

#[test]
fn openai_agents_stdio() {
    let mut o = opts(ClientKind::OpenaiAgents);
    o.transport = Some(Transport::Stdio);
    let v = client_config(&o).unwrap();
    assert_eq!(v["transport"], "stdio");
    assert!(v.get("start_server").is_none());
    assert_eq!(
        v["openai_agents_sdk"]["args"],
        json!(["mcp", "serve", "--config", CONFIG, "--alias-mode", "openai"])
    );
    let py = v["openai_agents_sdk"]["python"].as_str().unwrap();
    assert!(py.contains("from agents.mcp import MCPServerStdio"));
    assert!(
        py.contains(r#""args": ["mcp","serve","--config","/srv/app/synapsor.runner.json","--alias-mode","openai"]"#)
    );
}

fn with_server_env(client: ClientKind) -> ClientConfigOptions {
    let mut o = opts(client);
    o.server_env = [
        ("BILLING_READ_URL", "<read-only database URL of source main>"),
        ("SYNAPSOR_TENANT_ID", "<tenant the agent works for>"),
    ]
    .map(|(name, placeholder)| ServerEnv {
        name: name.into(),
        placeholder: placeholder.into(),
    })
    .to_vec();
    o
}

/// Clients start stdio servers without the user's shell environment: the snippet names what the
/// server reads, with placeholders.
#[test]
fn stdio_snippets_carry_the_server_env_as_placeholders() {
    let env = json!({
        "BILLING_READ_URL": "<read-only database URL of source main>",
        "SYNAPSOR_TENANT_ID": "<tenant the agent works for>"
    });
    for (client, key) in [
        (ClientKind::ClaudeDesktop, "mcpServers"),
        (ClientKind::Cursor, "mcpServers"),
        (ClientKind::Generic, "mcpServers"),
        (ClientKind::Vscode, "servers"),
    ] {
        let v = client_config(&with_server_env(client)).unwrap();
        assert_eq!(v[key]["synapsor"]["env"], env, "{client}");
    }
    // A client that connects over HTTP starts nothing: no env block.
    let mut o = with_server_env(ClientKind::Cursor);
    o.transport = Some(Transport::StreamableHttp);
    assert!(
        client_config(&o).unwrap()["mcpServers"]["synapsor"]
            .get("env")
            .is_none()
    );

    // OpenAI Agents over HTTP: the server the user starts needs them, and the token.
    let v = client_config(&with_server_env(ClientKind::OpenaiAgents)).unwrap();
    let mut with_token = env.clone();
    with_token["SYNAPSOR_RUNNER_HTTP_TOKEN"] = json!(TOKEN_PLACEHOLDER);
    assert_eq!(v["start_server"]["env"], with_token);
    // Over stdio the SDK starts the server with a minimal environment: the Python passes them on.
    let mut o = with_server_env(ClientKind::OpenaiAgents);
    o.transport = Some(Transport::Stdio);
    let v = client_config(&o).unwrap();
    assert_eq!(
        v["openai_agents_sdk"]["env_from_environment"],
        json!(["BILLING_READ_URL", "SYNAPSOR_TENANT_ID"])
    );
    let py = v["openai_agents_sdk"]["python"].as_str().unwrap();
    assert!(py.contains("import os\n"), "{py}");
    assert!(
        py.contains(r#""env": {name: os.environ[name] for name in ["BILLING_READ_URL","SYNAPSOR_TENANT_ID"]},"#),
        "{py}"
    );
}

#[test]
fn server_env_names_must_be_env_names() {
    let mut o = with_server_env(ClientKind::ClaudeDesktop);
    o.server_env[0].name = "postgres://app:hunter2@db/billing".into();
    let err = client_config(&o).unwrap_err();
    assert_eq!(err.code(), "MCP_CLIENT_CONFIG_ENV_INVALID");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn explicit_canonical_mode_for_openai_agents() {
    let mut o = opts(ClientKind::OpenaiAgents);
    o.alias_mode = Some(AliasMode::Canonical);
    let v = client_config(&o).unwrap();
    assert_eq!(v["tool_names"][0], "billing.inspect_invoice");
    assert!(
        !v["start_server"]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--alias-mode"))
    );
}

/// Every client × transport × alias mode × instructions combination that is accepted.
fn all_outputs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for client in ClientKind::ALL {
        for transport in [Transport::Stdio, Transport::StreamableHttp] {
            for mode in AliasMode::ALL {
                for instr in [false, true] {
                    let mut o = opts(client);
                    o.transport = Some(transport);
                    o.alias_mode = Some(mode);
                    o.include_instructions = instr;
                    o.store_path = Some("./.synapsor/local.db".into());
                    if let Ok(v) = client_config(&o) {
                        out.push((format!("{client}/{transport}/{mode}/{instr}"), v));
                    }
                }
            }
        }
    }
    out
}

fn strings(v: &Value, acc: &mut Vec<String>) {
    match v {
        Value::String(s) => acc.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, acc)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            acc.push(k.clone());
            strings(x, acc)
        }),
        _ => {}
    }
}

#[test]
fn no_output_carries_a_database_url_or_a_token() {
    let outputs = all_outputs();
    assert_eq!(outputs.len(), 4 * 2 * 3 * 2 + 3 * 2);
    for (label, v) in &outputs {
        let text = v.to_string();
        for bad in ["postgres://", "postgresql://", "mysql://", "mariadb://", "sqlite://"] {
            assert!(!text.contains(bad), "{label}: {bad}");
        }
        let mut all = Vec::new();
        strings(v, &mut all);
        for s in &all {
            // Any Authorization header is a reference to an environment variable, never a value.
            if let Some(rest) = s.strip_prefix("Bearer ") {
                assert!(rest.starts_with("${env:") && rest.ends_with('}'), "{label}: {s}");
            }
        }
        if let Some(env) = v.pointer("/start_server/env").and_then(Value::as_object) {
            assert!(env.values().all(|x| x == TOKEN_PLACEHOLDER), "{label}");
        }
    }
}

#[test]
fn secrets_passed_by_mistake_are_refused_not_echoed() {
    let token = "tok_4f9a2c7e1b8d6a3f";
    let mut o = opts(ClientKind::Cursor);
    o.transport = Some(Transport::StreamableHttp);
    o.auth_token_env = token.into();
    let err = client_config(&o).unwrap_err();
    assert_eq!(err.code(), "HTTP_AUTH_TOKEN_ENV_INVALID");
    assert!(!err.to_string().contains(token));

    let url = "postgres://app:hunter2@db.internal:5432/billing";
    let mut o = opts(ClientKind::Vscode);
    o.config_path = url.into();
    let err = client_config(&o).unwrap_err();
    assert_eq!(err.code(), "MCP_CLIENT_CONFIG_VALUE_IS_URL");
    assert!(!err.to_string().contains("hunter2"));

    let mut o = opts(ClientKind::ClaudeDesktop);
    o.store_path = Some(url.into());
    assert_eq!(client_config(&o).unwrap_err().code(), "MCP_CLIENT_CONFIG_VALUE_IS_URL");

    let mut o = opts(ClientKind::OpenaiAgents);
    o.host = "127.0.0.1\"; import os".into();
    assert_eq!(client_config(&o).unwrap_err().code(), "HTTP_HOST_INVALID");
}

#[test]
fn instructions_only_when_asked() {
    for (label, v) in all_outputs() {
        let asked = label.ends_with("/true");
        assert_eq!(v.get("agent_instructions").is_some(), asked, "{label}");
    }
    let mut o = opts(ClientKind::OpenaiAgents);
    o.include_instructions = true;
    let v = client_config(&o).unwrap();
    let ai = &v["agent_instructions"];
    assert_eq!(ai, &agent_instructions(ClientKind::OpenaiAgents, AliasMode::Openai));
    assert_eq!(ai["target_client"], "openai-agents");
    assert_eq!(ai["alias_mode"], "openai");
    let prompt = ai["recommended_system_prompt"].as_str().unwrap();
    for needle in [
        "read tool before proposing",
        "A proposal is not a write",
        "NOT_FOUND_IN_TENANT",
        "Do not guess other ids or other tenants",
        "POLICY_VIOLATION",
        "do not retry with other values",
        "TEMPORARILY_UNAVAILABLE: try again later",
        "Evidence handles",
        "Never ask the user for a tenant id, credentials",
    ] {
        assert!(prompt.contains(needle), "missing {needle:?}");
    }
    assert!(ai["checklist"].as_array().unwrap().len() >= 6);
}
