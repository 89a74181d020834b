//! `store stats|vacuum|prune|reset`: ledger maintenance. The destructive ones refuse while a
//! server holds the store's lease.

use clap::Subcommand;
use serde_json::json;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_core::time::{format_rfc3339_ms, parse_duration_ms};
use synapsor_ledger::{LedgerStore, StoreLease};

use super::common::{CliError, GlobalArgs, print_json, store_path};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Row counts and size.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reclaim free pages.
    Vacuum,
    /// Delete decided proposals (and their evidence) older than a duration. Dry run by default.
    Prune {
        /// e.g. 30d, 12h, 90m.
        #[arg(long)]
        older_than: String,
        /// Only count what would be deleted (the default).
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Delete.
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete the whole ledger. Refused while a server holds the store.
    Reset {
        #[arg(long)]
        yes: bool,
    },
}

/// `store stats|vacuum|prune|reset`.
pub fn run(global: &GlobalArgs, c: StoreCommand) -> Result<i32, CliError> {
    let path = store_path(global);
    match c {
        StoreCommand::Stats { json } => {
            let s = LedgerStore::open_existing(&path)?.stats()?;
            if json {
                print_json(&json!({"ok": true, "stats": s}));
            } else {
                outln!("Store {}", s.path);
                outln!("  schema version     {}", s.schema_version);
                outln!("  proposals          {}", s.proposals);
                for (state, n) in &s.proposals_by_state {
                    outln!("    {state:<16} {n}");
                }
                outln!("  proposal events    {}", s.proposal_events);
                outln!("  approvals          {}", s.approvals);
                outln!("  evidence bundles   {}", s.evidence_bundles);
                outln!("  query audit rows   {}", s.query_audit);
                outln!("  receipts           {}", s.receipts);
                outln!(
                    "  size               {} bytes ({} pages of {})",
                    s.approx_bytes,
                    s.page_count,
                    s.page_size
                );
            }
            Ok(0)
        }
        StoreCommand::Vacuum => {
            StoreLease::check_free(&path)?;
            LedgerStore::open_existing(&path)?.vacuum()?;
            outln!("Vacuumed {}.", path.display());
            Ok(0)
        }
        StoreCommand::Prune {
            older_than,
            dry_run: _,
            yes,
            json,
        } => {
            let ms = parse_duration_ms(&older_than).ok_or_else(|| {
                CliError::new(
                    "INVALID_DURATION",
                    format!("--older-than {older_than:?}: use a number and a unit, e.g. 30d, 12h, 15m"),
                )
            })?;
            if yes {
                StoreLease::check_free(&path)?;
            }
            let cutoff = format_rfc3339_ms(SystemClock.now_ms() - ms);
            let report = LedgerStore::open_existing(&path)?.prune(&cutoff, !yes)?;
            if json {
                print_json(&json!({"ok": true, "prune": report}));
            } else {
                outln!(
                    "{} decided proposals created before {cutoff}: {} proposals, {} events, {} approvals, {} evidence bundles, {} query audit rows, {} receipts.",
                    if yes { "Deleted" } else { "Would delete" },
                    report.proposals,
                    report.proposal_events,
                    report.approvals,
                    report.evidence_bundles,
                    report.query_audit,
                    report.receipts
                );
                if !yes {
                    outln!("Dry run: nothing deleted. Pass --yes to delete.");
                }
            }
            Ok(0)
        }
        StoreCommand::Reset { yes } => {
            if !yes {
                return Err(CliError::new(
                    "CONFIRMATION_REQUIRED",
                    "store reset deletes the whole ledger: pass --yes",
                ));
            }
            synapsor_ledger::reset(&path)?;
            outln!(
                "Deleted the ledger at {}. The source database was not changed.",
                path.display()
            );
            Ok(0)
        }
    }
}
