//! Writeback commands: `apply`, `doctor`, `db init-receipts`, `handler template`,
//! `events webhook` (being written).

use clap::{Args, Subcommand};

use super::GlobalArgs;
use super::commands::CliError;

/// `apply <proposal> [--dry-run]`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Proposal id, or `latest`.
    pub proposal: String,
    /// Check everything and show what would be written, without writing or recording a receipt.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the writeback receipts table (run once, as a database admin).
    InitReceipts {
        /// Source name from the config.
        #[arg(long)]
        source: Option<String>,
        /// Print the DDL and GRANTs instead of running them.
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HandlerCommand {
    /// Write a starter app-owned handler.
    Template {
        /// http | command | fastapi | axum
        kind: String,
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// `events webhook --url U`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub json: bool,
}

fn not_yet() -> Result<i32, CliError> {
    Err(CliError::new(
        "NOT_IMPLEMENTED",
        "guarded writeback is not in this build yet",
    ))
}

pub async fn apply(_global: &GlobalArgs, _args: ApplyArgs) -> Result<i32, CliError> {
    not_yet()
}

pub async fn doctor(_global: &GlobalArgs, _args: DoctorArgs) -> Result<i32, CliError> {
    not_yet()
}

pub async fn db(_global: &GlobalArgs, _cmd: DbCommand) -> Result<i32, CliError> {
    not_yet()
}

pub async fn handler(_global: &GlobalArgs, _cmd: HandlerCommand) -> Result<i32, CliError> {
    not_yet()
}

pub async fn events_webhook(_global: &GlobalArgs, _args: WebhookArgs) -> Result<i32, CliError> {
    not_yet()
}
