//! `config validate` and `config schema`.

use clap::Subcommand;
use serde_json::json;
use synapsor_core::config::{self, ValidationReport};

use super::common::{CliError, GlobalArgs, print_json, read_config_text};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config: every error and warning with its code and JSON path, and which MCP
    /// transports it can be served over. Exit 1 when invalid.
    Validate {
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of synapsor.runner.json.
    Schema,
}

/// `config validate [--json]` and `config schema`.
pub fn run(global: &GlobalArgs, c: ConfigCommand) -> Result<i32, CliError> {
    match c {
        ConfigCommand::Schema => {
            print_json(&config::schema::runner_config_schema());
            Ok(0)
        }
        ConfigCommand::Validate { json } => {
            let path = &global.config;
            let text = read_config_text(path)?;
            let (report, transports) = match config::parse_config(&text) {
                Ok((cfg, warnings)) => (
                    ValidationReport {
                        errors: vec![],
                        warnings,
                    },
                    Some(config::context_source(&cfg).transports()),
                ),
                Err(report) => (report, None),
            };
            let valid = report.errors.is_empty();
            if json {
                print_json(&json!({
                    "ok": valid,
                    "config": path.display().to_string(),
                    "errors": report.errors,
                    "warnings": report.warnings,
                    "transports": transports,
                }));
            } else {
                for i in &report.errors {
                    outln!("error   {:<40} {}\n        {}", i.code, i.path, i.message);
                }
                for i in &report.warnings {
                    outln!("warning {:<40} {}\n        {}", i.code, i.path, i.message);
                }
                outln!(
                    "{}: {} ({} error(s), {} warning(s))",
                    path.display(),
                    if valid { "valid" } else { "invalid" },
                    report.errors.len(),
                    report.warnings.len()
                );
                if let Some(t) = transports {
                    outln!("serves over: {t}");
                }
            }
            Ok(if valid { 0 } else { 1 })
        }
    }
}
