//! MCP client configuration snippets (`mcp config <client>`, `mcp client-config --client <c>`).
//!
//! What it is: the JSON a user pastes into Claude Desktop, Cursor, VS Code or a generic MCP
//! client, or the start command, URL and Python snippet for the OpenAI Agents SDK, plus optional
//! propose-first guidance for the agent's system prompt.
//!
//! What it is not: it reads no files and no environment, and writes nothing. Its output names
//! environment variables and placeholders only: never a token, never a database URL. Values that
//! look like URLs are refused rather than echoed, so a credential passed by mistake in place of a
//! path or an environment variable name does not end up in a config file.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};
use synapsor_core::tools::{AliasMode, ToolNames};

pub const DEFAULT_COMMAND: &str = "synapsor-runner";
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8766;
pub const DEFAULT_AUTH_TOKEN_ENV: &str = "SYNAPSOR_RUNNER_HTTP_TOKEN";
/// The key the server is registered under in every client file.
pub const SERVER_KEY: &str = "synapsor";
/// What `start_server.env` holds instead of a token.
pub const TOKEN_PLACEHOLDER: &str = "<set-a-random-token>";

/// An environment variable the server process needs (MCP clients such as Claude Desktop start
/// it without the user's shell environment), and the placeholder the snippet holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEnv {
    pub name: String,
    pub placeholder: String,
}

/// The MCP client a snippet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    ClaudeDesktop,
    Cursor,
    Vscode,
    OpenaiAgents,
    Generic,
}

impl ClientKind {
    pub const ALL: [ClientKind; 5] = [
        ClientKind::ClaudeDesktop,
        ClientKind::Cursor,
        ClientKind::Vscode,
        ClientKind::OpenaiAgents,
        ClientKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::ClaudeDesktop => "claude-desktop",
            ClientKind::Cursor => "cursor",
            ClientKind::Vscode => "vscode",
            ClientKind::OpenaiAgents => "openai-agents",
            ClientKind::Generic => "generic",
        }
    }

    /// Streamable HTTP for the OpenAI Agents SDK, stdio for the rest.
    pub fn default_transport(self) -> Transport {
        match self {
            ClientKind::OpenaiAgents => Transport::StreamableHttp,
            _ => Transport::Stdio,
        }
    }

    /// OpenAI function names cannot contain dots, so the Agents SDK gets aliases by default.
    pub fn default_alias_mode(self) -> AliasMode {
        match self {
            ClientKind::OpenaiAgents => AliasMode::Openai,
            _ => AliasMode::Canonical,
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientKind {
    type Err = ClientConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "claude-desktop" | "claude" => Ok(ClientKind::ClaudeDesktop),
            "cursor" => Ok(ClientKind::Cursor),
            "vscode" => Ok(ClientKind::Vscode),
            "openai-agents" => Ok(ClientKind::OpenaiAgents),
            "generic" | "generic-stdio" => Ok(ClientKind::Generic),
            _ => Err(ClientConfigError::UnknownClient),
        }
    }
}

/// How the client reaches the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The client starts `synapsor-runner mcp serve` and talks over its stdin/stdout.
    Stdio,
    /// The runner listens on `http://<host>:<port>/mcp` with bearer auth.
    StreamableHttp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::StreamableHttp => "streamable-http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ClientConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stdio" => Ok(Transport::Stdio),
            "streamable-http" | "streamable_http" => Ok(Transport::StreamableHttp),
            _ => Err(ClientConfigError::UnknownTransport),
        }
    }
}

/// Why a snippet cannot be produced. Messages name the field, never the offending value (it may
/// be a secret passed by mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientConfigError {
    #[error("unknown client: expected claude-desktop, claude, cursor, vscode, openai-agents or generic")]
    UnknownClient,
    #[error("unknown transport: expected stdio or streamable-http")]
    UnknownTransport,
    #[error(
        "{client} starts local MCP servers from its config file over stdio only; use --transport stdio (or add http://<host>:<port>/mcp as a custom connector in the app)"
    )]
    TransportUnsupported { client: ClientKind },
    #[error("--auth-token-env must be the NAME of an environment variable (A-Z, 0-9, _), not a token")]
    InvalidTokenEnvName,
    #[error("the config names an environment variable for the server that is not a valid name (A-Z, 0-9, _)")]
    InvalidServerEnvName,
    #[error("--host must be a host name or an IP address")]
    InvalidHost,
    #[error("port must not be 0")]
    InvalidPort,
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} looks like a URL; it must be a path or command (credentials never belong in client configs)")]
    LooksLikeUrl { field: &'static str },
}

impl ClientConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ClientConfigError::UnknownClient => "MCP_CLIENT_UNKNOWN",
            ClientConfigError::UnknownTransport => "MCP_TRANSPORT_UNKNOWN",
            ClientConfigError::TransportUnsupported { .. } => "MCP_CLIENT_TRANSPORT_UNSUPPORTED",
            ClientConfigError::InvalidTokenEnvName => "HTTP_AUTH_TOKEN_ENV_INVALID",
            ClientConfigError::InvalidServerEnvName => "MCP_CLIENT_CONFIG_ENV_INVALID",
            ClientConfigError::InvalidHost => "HTTP_HOST_INVALID",
            ClientConfigError::InvalidPort => "HTTP_PORT_INVALID",
            ClientConfigError::Empty { .. } => "MCP_CLIENT_CONFIG_VALUE_EMPTY",
            ClientConfigError::LooksLikeUrl { .. } => "MCP_CLIENT_CONFIG_VALUE_IS_URL",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfigOptions {
    pub client: ClientKind,
    /// Path of `synapsor.runner.json` as the client should pass it (make it absolute first for
    /// clients that start servers from another working directory).
    pub config_path: String,
    /// `--store <path>` for the ledger, when not the config's default.
    pub store_path: Option<String>,
    /// The runner executable. Default `synapsor-runner`.
    pub command: String,
    /// `None`: the client's default ([`ClientKind::default_transport`]).
    pub transport: Option<Transport>,
    pub host: String,
    pub port: u16,
    /// Name of the environment variable holding the HTTP bearer token.
    pub auth_token_env: String,
    /// `None`: the client's default ([`ClientKind::default_alias_mode`]).
    pub alias_mode: Option<AliasMode>,
    /// Adds `agent_instructions` (propose-first guidance for the system prompt).
    pub include_instructions: bool,
    /// Canonical names of the capabilities the runner lists (mapped to exposed names with the
    /// alias mode for `tool_names`).
    pub tool_names: Vec<String>,
    /// Environment the server needs (read URLs, trusted tenant and principal): an `env` block of
    /// placeholders in stdio snippets and in `start_server`.
    pub server_env: Vec<ServerEnv>,
}

impl ClientConfigOptions {
    pub fn new(client: ClientKind, config_path: impl Into<String>) -> ClientConfigOptions {
        ClientConfigOptions {
            client,
            config_path: config_path.into(),
            store_path: None,
            command: DEFAULT_COMMAND.to_owned(),
            transport: None,
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            auth_token_env: DEFAULT_AUTH_TOKEN_ENV.to_owned(),
            alias_mode: None,
            include_instructions: false,
            tool_names: Vec::new(),
            server_env: Vec::new(),
        }
    }

    pub fn transport(&self) -> Transport {
        self.transport.unwrap_or(self.client.default_transport())
    }

    pub fn alias_mode(&self) -> AliasMode {
        self.alias_mode.unwrap_or(self.client.default_alias_mode())
    }

    /// `http://<host>:<port>/mcp` (IPv6 hosts bracketed).
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}/mcp", self.port)
    }

    /// The exposed tool names for [`Self::tool_names`] under the alias mode.
    pub fn exposed_tool_names(&self) -> Vec<String> {
        let refs: Vec<&str> = self.tool_names.iter().map(String::as_str).collect();
        ToolNames::build(&refs, self.alias_mode())
            .exposed_names()
            .map(str::to_owned)
            .collect()
    }

    fn validate(&self) -> Result<(), ClientConfigError> {
        for (field, value) in [
            ("config path", Some(&self.config_path)),
            ("command", Some(&self.command)),
        ]
        .into_iter()
        .chain([("store path", self.store_path.as_ref())])
        {
            let Some(value) = value else { continue };
            if value.trim().is_empty() {
                return Err(ClientConfigError::Empty { field });
            }
            if value.contains("://") {
                return Err(ClientConfigError::LooksLikeUrl { field });
            }
        }
        if self.server_env.iter().any(|e| !is_env_name(&e.name)) {
            return Err(ClientConfigError::InvalidServerEnvName);
        }
        if self.transport() == Transport::StreamableHttp {
            if !is_env_name(&self.auth_token_env) {
                return Err(ClientConfigError::InvalidTokenEnvName);
            }
            if !is_host(&self.host) {
                return Err(ClientConfigError::InvalidHost);
            }
            if self.port == 0 {
                return Err(ClientConfigError::InvalidPort);
            }
            if self.client == ClientKind::ClaudeDesktop {
                return Err(ClientConfigError::TransportUnsupported { client: self.client });
            }
        }
        Ok(())
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 128
}

/// A DNS name, an IPv4 address or an IPv6 address (bare or bracketed). Only characters that are
/// safe inside a URL, a JSON string and a Python string literal.
fn is_host(s: &str) -> bool {
    let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    !inner.is_empty()
        && inner.len() <= 253
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':')
}

/// The arguments the client passes to the runner (stdio), or the arguments that start the
/// server (Streamable HTTP).
pub fn server_args(opts: &ClientConfigOptions) -> Result<Vec<String>, ClientConfigError> {
    opts.validate()?;
    Ok(server_args_unchecked(opts))
}

fn server_args_unchecked(opts: &ClientConfigOptions) -> Vec<String> {
    let mut args: Vec<String> = match opts.transport() {
        Transport::Stdio => vec![
            "mcp".into(),
            "serve".into(),
            "--config".into(),
            opts.config_path.clone(),
        ],
        Transport::StreamableHttp => vec![
            "mcp".into(),
            "serve-streamable-http".into(),
            "--config".into(),
            opts.config_path.clone(),
            "--host".into(),
            opts.host.clone(),
            "--port".into(),
            opts.port.to_string(),
            "--auth-token-env".into(),
            opts.auth_token_env.clone(),
        ],
    };
    if let Some(store) = &opts.store_path {
        args.push("--store".into());
        args.push(store.clone());
    }
    let mode = opts.alias_mode();
    if mode != AliasMode::Canonical {
        args.push("--alias-mode".into());
        args.push(mode.as_str().into());
    }
    args
}

/// The `env` block of placeholders for [`ClientConfigOptions::server_env`], plus `extra`.
fn env_block(opts: &ClientConfigOptions, extra: Option<(&str, &str)>) -> serde_json::Map<String, Value> {
    opts.server_env
        .iter()
        .map(|e| (e.name.as_str(), e.placeholder.as_str()))
        .chain(extra)
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect()
}

/// A stdio server entry, with `env` when the server needs any.
fn stdio_entry(opts: &ClientConfigOptions, mut entry: Value) -> Value {
    let env = env_block(opts, None);
    if !env.is_empty()
        && let Value::Object(map) = &mut entry
    {
        map.insert("env".into(), Value::Object(env));
    }
    entry
}

/// `Authorization` header value that the client expands from its environment.
fn env_bearer(env: &str) -> String {
    format!("Bearer ${{env:{env}}}")
}

/// The snippet for `opts.client`. With `include_instructions`, `agent_instructions` is added at
/// the top level (strip it before merging into a client's own file: see [`agent_instructions`]).
pub fn client_config(opts: &ClientConfigOptions) -> Result<Value, ClientConfigError> {
    opts.validate()?;
    let args = server_args_unchecked(opts);
    let transport = opts.transport();
    let mut out = match (opts.client, transport) {
        (ClientKind::OpenaiAgents, _) => openai_agents(opts, &args),
        (ClientKind::ClaudeDesktop | ClientKind::Cursor | ClientKind::Generic, Transport::Stdio) => json!({
            "mcpServers": {SERVER_KEY: stdio_entry(opts, json!({"command": opts.command, "args": args}))}
        }),
        (ClientKind::Cursor, Transport::StreamableHttp) => json!({
            "mcpServers": {SERVER_KEY: {
                "url": opts.url(),
                "headers": {"Authorization": env_bearer(&opts.auth_token_env)}
            }}
        }),
        (ClientKind::Generic, Transport::StreamableHttp) => json!({
            "mcpServers": {SERVER_KEY: {
                "type": "streamable-http",
                "url": opts.url(),
                "headers": {"Authorization": env_bearer(&opts.auth_token_env)}
            }}
        }),
        (ClientKind::Vscode, Transport::Stdio) => json!({
            "servers": {SERVER_KEY: stdio_entry(opts, json!({"type": "stdio", "command": opts.command, "args": args}))}
        }),
        (ClientKind::Vscode, Transport::StreamableHttp) => json!({
            "servers": {SERVER_KEY: {
                "type": "http",
                "url": opts.url(),
                "headers": {"Authorization": env_bearer(&opts.auth_token_env)}
            }}
        }),
        // Refused by `validate`.
        (ClientKind::ClaudeDesktop, Transport::StreamableHttp) => {
            return Err(ClientConfigError::TransportUnsupported { client: opts.client });
        }
    };
    if opts.include_instructions
        && let Value::Object(map) = &mut out
    {
        map.insert(
            "agent_instructions".into(),
            agent_instructions(opts.client, opts.alias_mode()),
        );
    }
    Ok(out)
}

/// A JSON string literal, which is also a valid Python string literal for the values used here.
fn py(s: &str) -> String {
    Value::from(s).to_string()
}

fn openai_agents(opts: &ClientConfigOptions, args: &[String]) -> Value {
    let mode = opts.alias_mode();
    let tool_names = opts.exposed_tool_names();
    let mut notes = vec![
        "The agent gets only the reviewed read and proposal tools: no SQL, no credentials, no approval or apply tool."
            .to_owned(),
        "Proposal tools record a change for a person to approve (synapsor-runner proposals approve); they never write the database."
            .to_owned(),
        "Tenant and principal come from the runner's environment, never from the agent.".to_owned(),
    ];
    if mode != AliasMode::Canonical {
        notes.push(
            "Tool names are OpenAI-safe aliases; each tool's _meta[\"synapsor.canonical_tool_name\"] names its capability."
                .to_owned(),
        );
    }
    let instructions = "Use read tools before proposing a change. A proposal is not a write: a person approves it.";
    match opts.transport() {
        Transport::StreamableHttp => {
            let env = &opts.auth_token_env;
            notes.insert(
                0,
                format!(
                    "Start the server first (start_server) with {env} set to a long random value, e.g. `openssl rand -hex 32`, and export the same variable where the agent runs."
                ),
            );
            let python = format!(
                r#"import asyncio
import os

from agents import Agent, Runner
from agents.mcp import MCPServerStreamableHttp


async def main() -> None:
    async with MCPServerStreamableHttp(
        name="synapsor",
        params={{
            "url": {url},
            "headers": {{"Authorization": "Bearer " + os.environ[{env}]}},
        }},
        cache_tools_list=True,
    ) as synapsor:
        agent = Agent(
            name="assistant",
            instructions={instructions},
            mcp_servers=[synapsor],
        )
        result = await Runner.run(agent, "Look up invoice INV-1001 and propose the fix it needs.")
        print(result.final_output)


asyncio.run(main())
"#,
                url = py(&opts.url()),
                env = py(env),
                instructions = py(instructions),
            );
            json!({
                "transport": Transport::StreamableHttp.as_str(),
                "alias_mode": mode.as_str(),
                "start_server": {
                    "command": opts.command,
                    "args": args,
                    "env": env_block(opts, Some((env.as_str(), TOKEN_PLACEHOLDER))),
                },
                "openai_agents_sdk": {
                    "package": "openai-agents",
                    "url": opts.url(),
                    "headers_from_env": {"Authorization": {"scheme": "Bearer", "env": env}},
                    "python": python,
                },
                "tool_names": tool_names,
                "notes": notes,
            })
        }
        Transport::Stdio => {
            // The SDK starts the server with a minimal environment: pass on what it reads.
            let env_names: Vec<&str> = opts.server_env.iter().map(|e| e.name.as_str()).collect();
            let (import_os, env_param) = if env_names.is_empty() {
                ("", String::new())
            } else {
                (
                    "import os\n",
                    format!(
                        "\n            \"env\": {{name: os.environ[name] for name in {}}},",
                        Value::from(env_names.clone())
                    ),
                )
            };
            let python = format!(
                r#"import asyncio
{import_os}
from agents import Agent, Runner
from agents.mcp import MCPServerStdio


async def main() -> None:
    async with MCPServerStdio(
        name="synapsor",
        params={{
            "command": {command},
            "args": {args},{env_param}
        }},
        cache_tools_list=True,
    ) as synapsor:
        agent = Agent(
            name="assistant",
            instructions={instructions},
            mcp_servers=[synapsor],
        )
        result = await Runner.run(agent, "Look up invoice INV-1001 and propose the fix it needs.")
        print(result.final_output)


asyncio.run(main())
"#,
                command = py(&opts.command),
                args = Value::from(args.to_vec()),
                instructions = py(instructions),
            );
            json!({
                "transport": Transport::Stdio.as_str(),
                "alias_mode": mode.as_str(),
                "openai_agents_sdk": {
                    "package": "openai-agents",
                    "command": opts.command,
                    "args": args,
                    "env_from_environment": env_names,
                    "python": python,
                },
                "tool_names": tool_names,
                "notes": notes,
            })
        }
    }
}

/// The recommended system prompt: propose-first guidance for an agent using the runner's tools.
pub const RECOMMENDED_SYSTEM_PROMPT: &str = "\
You work with business records only through the Synapsor tools. Read tools return fixed fields of one record \
of the current tenant. Proposal tools record an exact change for a person to review; they do not change anything.
- Call the matching read tool before proposing a change, and base the proposal on what it returned.
- A proposal is not a write. Nothing changes until a person approves it outside this conversation: tell the user \
the change is proposed and waiting for approval, never that it is done.
- The system sets the tenant and your identity. Never ask the user for a tenant id, credentials or database access, \
and never put tenant or user ids in tool arguments.
- NOT_FOUND_IN_TENANT: the record is not available here. Do not guess other ids or other tenants, and do not suggest \
it exists somewhere else.
- POLICY_VIOLATION: the reviewed policy refused the change. Explain that to the user; do not retry with other values \
to get around it.
- INVALID_ARGUMENT: fix the argument to match the tool's schema, or ask the user for the missing business detail.
- VERSION_CONFLICT: the record changed since it was read. Read it again before proposing anything.
- TEMPORARILY_UNAVAILABLE: try again later; do not look for another way to do the same thing.
- Evidence handles in results are for audit and replay. You do not need to act on them.";

const CHECKLIST: [&str; 8] = [
    "Read before proposing; propose only what the read supports.",
    "Report proposals as pending human approval, never as done.",
    "Never ask for or send tenant ids, user ids or credentials.",
    "NOT_FOUND_IN_TENANT: stop; do not try other ids or tenants.",
    "POLICY_VIOLATION: explain; do not retry with different values to get around it.",
    "VERSION_CONFLICT: read again before a new proposal.",
    "TEMPORARILY_UNAVAILABLE: retry later.",
    "Evidence handles need no action.",
];

/// `agent_instructions {target_client, alias_mode, recommended_system_prompt, checklist}`.
pub fn agent_instructions(client: ClientKind, alias_mode: AliasMode) -> Value {
    json!({
        "target_client": client.as_str(),
        "alias_mode": alias_mode.as_str(),
        "recommended_system_prompt": RECOMMENDED_SYSTEM_PROMPT,
        "checklist": CHECKLIST,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_clients_and_transports() {
        assert_eq!("claude".parse::<ClientKind>().unwrap(), ClientKind::ClaudeDesktop);
        assert_eq!("generic-stdio".parse::<ClientKind>().unwrap(), ClientKind::Generic);
        for c in ClientKind::ALL {
            assert_eq!(c.as_str().parse::<ClientKind>().unwrap(), c);
        }
        assert_eq!("zed".parse::<ClientKind>().unwrap_err().code(), "MCP_CLIENT_UNKNOWN");
        assert_eq!(
            "streamable-http".parse::<Transport>().unwrap(),
            Transport::StreamableHttp
        );
        assert!("sse".parse::<Transport>().is_err());
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut o = ClientConfigOptions::new(ClientKind::Cursor, "synapsor.runner.json");
        o.host = "::1".into();
        assert_eq!(o.url(), "http://[::1]:8766/mcp");
        assert!(is_host("[::1]") && is_host("localhost") && !is_host("a b") && !is_host("\"x"));
    }
}
