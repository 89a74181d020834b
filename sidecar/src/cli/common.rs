//! What every command shares: the global arguments, the command error with its stable code,
//! loading the config, finding and opening the ledger, JSON output and confirmation prompts.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;
use synapsor_core::ToolError;
use synapsor_core::config;
use synapsor_core::context::{Env, ProcessEnv};
use synapsor_executor::ExecutorError;
use synapsor_ledger::{LedgerError, LedgerStore};

use crate::client_config::ClientConfigError;
use crate::local_apply::{LocalApplyError, ManagedElsewhere};

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file. Also read from SYNAPSOR_MCP_CONFIG (the original's name) when SYNAPSOR_CONFIG
    /// is not set.
    #[arg(long, global = true, env = "SYNAPSOR_CONFIG", default_value = "synapsor.runner.json")]
    pub config: PathBuf,
    /// Ledger file. Default: the config's storage.sqlite_path, else ./.synapsor/local.db.
    #[arg(long, global = true, env = "SYNAPSOR_LOCAL_STORE")]
    pub store: Option<PathBuf>,
}

/// A command failure with a stable [`code`](CliError::code): printed as `error[CODE]: message`,
/// or as `{"ok": false, "error": {...}}` with `--json`, and exit status 1 (2 for bad input).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Apply(#[from] LocalApplyError),
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error("{}", .0.message)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    ClientConfig(#[from] ClientConfigError),
    /// A refusal or failure of the command itself.
    #[error("{message}")]
    Command { code: &'static str, message: String },
    /// Bad input on the command line or in a file it names (the message names the flag or key):
    /// exit status 2, nothing done.
    #[error("{message}")]
    Usage { code: &'static str, message: String },
}

impl CliError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        CliError::Command {
            code,
            message: message.into(),
        }
    }

    /// Bad input: exit status 2 instead of 1.
    pub fn usage(code: &'static str, message: impl Into<String>) -> Self {
        CliError::Usage {
            code,
            message: message.into(),
        }
    }

    /// 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => 2,
            _ => 1,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CliError::Ledger(e) => e.code(),
            CliError::Apply(e) => e.code(),
            CliError::Executor(e) => e.code(),
            CliError::Tool(e) => e.code.as_str(),
            CliError::ClientConfig(e) => e.code(),
            CliError::Command { code, .. } | CliError::Usage { code, .. } => code,
        }
    }
}

impl From<ManagedElsewhere> for CliError {
    fn from(e: ManagedElsewhere) -> Self {
        CliError::Apply(e.into())
    }
}

/// Pretty JSON on stdout.
pub fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// The config file's text (`CONFIG_NOT_FOUND` when it cannot be read).
pub fn read_config_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::new(
            "CONFIG_NOT_FOUND",
            format!("cannot read config {}: {e}", path.display()),
        )
    })
}

/// Reads and validates the config file.
pub fn load_config(path: &Path) -> Result<(config::RunnerConfig, Vec<config::ConfigIssue>), CliError> {
    let text = read_config_text(path)?;
    config::parse_config(&text).map_err(|report| {
        let first = report
            .errors
            .first()
            .map(|i| format!("{} at {}: {}", i.code, i.path, i.message))
            .unwrap_or_default();
        CliError::new(
            "CONFIG_INVALID",
            format!(
                "{} has {} error(s); first: {first}. Run `synapsor-runner config validate` for all of them",
                path.display(),
                report.errors.len()
            ),
        )
    })
}

/// The ledger path: --store, else the config's storage.sqlite_path, else ./.synapsor/local.db.
pub fn store_path(global: &GlobalArgs) -> PathBuf {
    if let Some(p) = &global.store {
        return p.clone();
    }
    if let Ok(text) = std::fs::read_to_string(&global.config)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(p) = v.pointer("/storage/sqlite_path").and_then(Value::as_str)
    {
        return PathBuf::from(p);
    }
    PathBuf::from(".synapsor/local.db")
}

/// The ledger, which must exist (`STORE_NOT_FOUND` otherwise: commands that read it never
/// create an empty one).
pub fn open_store(global: &GlobalArgs) -> Result<LedgerStore, CliError> {
    Ok(LedgerStore::open_existing(store_path(global))?)
}

/// Who decides: `--actor` (or $SYNAPSOR_APPROVER), else $USER, else `local_operator`.
pub fn default_actor(actor: Option<String>) -> String {
    actor
        .filter(|a| !a.trim().is_empty())
        .or_else(|| ProcessEnv.var("USER"))
        .unwrap_or_else(|| "local_operator".into())
}

/// Asks for `yes` on the terminal unless `yes` was passed; refuses without a terminal.
pub fn confirm(prompt: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            "CONFIRMATION_REQUIRED",
            "no terminal to confirm on: pass --yes",
        ));
    }
    eprint!("{prompt} Type yes to continue: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::new("CONFIRMATION_REQUIRED", e.to_string()))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new("ABORTED", "not confirmed; nothing changed"))
    }
}
