//! `tools list|preview` (what a model will see, and what it never sees) and `smoke call` (one
//! real call through the server path).

use clap::Subcommand;
use serde_json::{Value, json};
use synapsor_core::capability::Capability;
use synapsor_core::tools::{AliasMode, preview, preview_text, tool_defs};

use super::common::{CliError, GlobalArgs, load_config};
use super::mcp::{AliasArg, LedgerCalls, ServeArgs, build_runtime, exposed};
use crate::mcp::McpServer;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// The tools a model will see.
    List {
        /// Show OpenAI-compatible aliases beside canonical names.
        #[arg(long)]
        aliases: bool,
        #[arg(long, value_enum, default_value = "canonical")]
        alias_mode: AliasArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What the model will see for each tool, and what is never exposed.
    Preview {
        #[arg(long, value_enum, default_value = "canonical")]
        alias_mode: AliasArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SmokeCommand {
    /// Call one tool through the real server code path and print the result.
    Call {
        /// Tool name (canonical or alias).
        tool: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// `tools list|preview`.
pub fn tools(global: &GlobalArgs, cmd: ToolsCommand) -> Result<i32, CliError> {
    let (cfg, _) = load_config(&global.config)?;
    let caps = exposed(&cfg)?;
    let refs: Vec<&Capability> = caps.iter().collect();
    match cmd {
        ToolsCommand::List {
            aliases,
            alias_mode,
            json,
        } => {
            let mode: AliasMode = if aliases { AliasMode::Both } else { alias_mode.into() };
            let defs = tool_defs(&refs, mode);
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"ok": true, "mode": cfg.mode.as_str(), "alias_mode": mode.as_str(), "tools": defs})
                    )
                    .unwrap_or_default()
                );
            } else {
                outln!(
                    "{} tool(s), mode {}, names {}:",
                    defs.len(),
                    cfg.mode.as_str(),
                    mode.as_str()
                );
                for d in &defs {
                    let kind = d.meta.get("synapsor.kind").and_then(Value::as_str).unwrap_or("");
                    let alias = if d.name != d.title {
                        format!("  (alias of {})", d.title)
                    } else {
                        String::new()
                    };
                    outln!("  {:<44} {:<9}{alias}", d.name, kind);
                }
            }
            Ok(0)
        }
        ToolsCommand::Preview { alias_mode, json } => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&preview(&refs, alias_mode.into())).unwrap_or_default()
                );
            } else {
                out!("{}", preview_text(&refs, alias_mode.into()));
            }
            Ok(0)
        }
    }
}

/// `smoke call <tool> --args JSON`: exit 1 when the call returns an error.
pub async fn smoke(global: &GlobalArgs, cmd: SmokeCommand) -> Result<i32, CliError> {
    let SmokeCommand::Call { tool, args, serve } = cmd;
    let args: Value = serde_json::from_str(&args)
        .map_err(|e| CliError::new("INVALID_ARGS_JSON", format!("--args is not valid JSON: {e}")))?;
    let Value::Object(args) = args else {
        return Err(CliError::new("INVALID_ARGS_JSON", "--args must be a JSON object"));
    };
    let (runtime, _) = build_runtime(global, &serve, LedgerCalls::Pooled).await?;
    let server = McpServer::new(runtime, serve.alias_mode.into());
    let result = server
        .call(&tool, Some(args), &synapsor_core::capability::Caller::Process)
        .await;
    let is_error = result.is_error.unwrap_or(false);
    let body = result.structured_content.unwrap_or(Value::Null);
    outln!(
        "{}",
        serde_json::to_string_pretty(&json!({"tool": tool, "is_error": is_error, "result": body})).unwrap_or_default()
    );
    Ok(if is_error { 1 } else { 0 })
}
