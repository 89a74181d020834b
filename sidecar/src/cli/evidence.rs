//! `evidence show` and `replay`: what the ledger recorded about a read or a proposal.

use clap::{Args, Subcommand};
use serde_json::json;

use super::common::{CliError, GlobalArgs, open_store, print_json};
use super::output;

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Show one evidence bundle by id (`ev_…`).
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Proposal id, or `latest`.
    pub proposal: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `evidence show <id>`.
pub fn show(global: &GlobalArgs, cmd: EvidenceCommand) -> Result<i32, CliError> {
    let EvidenceCommand::Show { id, json } = cmd;
    let store = open_store(global)?;
    let b = store.evidence(&id)?;
    if json {
        print_json(&json!({"ok": true, "evidence": b}));
    } else {
        out!("{}", output::evidence_detail(&b));
    }
    Ok(0)
}

/// `replay <proposal|latest>`.
pub fn replay(global: &GlobalArgs, args: ReplayArgs) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let r = store.replay(&args.proposal)?;
    if args.json {
        print_json(&json!({"ok": true, "replay": r}));
    } else {
        out!("{}", output::replay_detail(&r));
    }
    Ok(0)
}
