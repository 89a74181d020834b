//! `apply <proposal|latest> [--dry-run] [--json]`: runs [`crate::local_apply::apply_proposal`]
//! and prints its checklist (or JSON). Before that, every other proposal an apply left in
//! `applying` (killed, crashed) is resumed ([`crate::local_apply::recover_interrupted`]), one
//! line each on stderr. See `docs/writeback.md`.

use clap::Args;
use serde_json::{Value, json};
use synapsor_core::ProposalState;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::context::ProcessEnv;
use synapsor_executor::{Receipt, ReceiptStatus};
use synapsor_ledger::LedgerStore;

use super::common::{CliError, GlobalArgs, load_config, print_json, store_path};
use super::operator::{self, OperatorArgs};
use crate::local_apply::{apply_proposal, recover_interrupted};

pub const AFTER_HELP: &str = "\
Examples:
  synapsor-runner apply wrp_4f1c9a27d0b3e8a61c55 --dry-run   every guard, nothing written
  synapsor-runner apply latest                               the newest proposal

Exit status 0 for applied, already_applied and a dry run that would apply; 1 otherwise.

One apply of a proposal runs at a time: another apply of it waits for the first and reports
already_applied. A proposal left in applying by an apply that died (killed, crashed) is resumed
by the next apply, of it or of any other proposal; if the dead run had committed, nothing is
written again and the ledger records that write as the proposal's. See docs/writeback.md.";

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Proposal id, or `latest`.
    pub proposal: String,
    /// Check everything and show what would be written, without writing or recording a receipt.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A capability with an approval role is applied only by an operator whose token carries it.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// `apply <proposal|latest> [--dry-run] [--json]`.
pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> Result<i32, CliError> {
    let (cfg, _) = load_config(&global.config)?;
    let store = store_path(global);
    let rec = LedgerStore::open_existing(&store)?.get_proposal(&args.proposal)?;
    // Who runs the apply (event actor): the verified operator, else $USER, else `local_operator`.
    let operator = operator::resolve(global, &args.operator, None, &rec.change_set).await?;
    if !args.dry_run {
        recover_others(&cfg, &store, &rec.change_set.proposal_id, &operator.name).await?;
    }
    let done = apply_proposal(
        &cfg,
        &store,
        &rec.change_set.proposal_id,
        args.dry_run,
        &ProcessEnv,
        &operator.name,
    )
    .await?;
    let view = ApplyView {
        cs: &done.change_set,
        approved_by: &done.approved_by,
        required: done.required,
    };
    Ok(report(&view, &done.receipt, done.state, args.json))
}

/// Resumes the other proposals an apply left in `applying`, so none waits for a person. A
/// capability with an approval role is left for an apply with that operator's token.
async fn recover_others(
    cfg: &synapsor_core::config::RunnerConfig,
    store: &std::path::Path,
    own: &str,
    actor: &str,
) -> Result<(), CliError> {
    let needs_no_role = |cs: &ChangeSet| operator::required_roles(cs, Some(cfg)).is_empty();
    for r in recover_interrupted(cfg, store, &ProcessEnv, actor, Some(own), needs_no_role).await? {
        match r.outcome {
            Some(Ok(done)) => eprintln!(
                "note: {} was left in applying by an apply that stopped; resumed: {} ({})",
                r.id, done.receipt.status, done.receipt.message
            ),
            Some(Err(e)) => eprintln!(
                "warning: {} was left in applying by an apply that stopped; resuming it failed: error[{}]: {e}",
                r.id,
                e.code()
            ),
            None => eprintln!(
                "note: {} was left in applying by an apply that stopped; its capability needs an operator role: run `synapsor-runner apply {}` with that token",
                r.id, r.id
            ),
        }
    }
    Ok(())
}

fn target_text(cs: &ChangeSet) -> String {
    let pk = match &cs.source.primary_key.value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "{}.{} where {} = {} (tenant {})",
        cs.source.schema, cs.source.table, cs.source.primary_key.column, pk, cs.scope.tenant_id
    )
}

struct ApplyView<'a> {
    cs: &'a ChangeSet,
    approved_by: &'a [String],
    required: usize,
}

/// Prints the checklist (or JSON) and returns the exit code.
fn report(v: &ApplyView<'_>, r: &Receipt, state: ProposalState, json: bool) -> i32 {
    let cs = v.cs;
    let code = if r.status.is_success() { 0 } else { 1 };
    if json {
        print_json(&json!({
            "ok": code == 0,
            "proposal_id": cs.proposal_id,
            "state": state,
            "dry_run": r.dry_run,
            "receipt": r,
        }));
        return code;
    }
    let mark = |ok: bool| if ok { "  ok  " } else { "  !!  " };
    println!(
        "{} {} ({}) via {}",
        if r.dry_run { "Dry run of" } else { "Apply" },
        cs.proposal_id,
        cs.action,
        r.executor
    );
    println!("      target {}", target_text(cs));
    println!(
        "{}approved by {} ({} of {} required)",
        mark(true),
        if v.approved_by.is_empty() {
            "-".to_owned()
        } else {
            v.approved_by.join(", ")
        },
        v.approved_by.len(),
        v.required
    );
    println!("{}digest verified {}", mark(true), cs.digest);
    for c in &r.checks {
        let label = match c.name.as_str() {
            "policy" => "allowed columns",
            "tenant_guard" => "tenant guard",
            "version_guard" => "version guard",
            "row_lock" => "row lock",
            "receipt_claim" => "idempotency receipt",
            "single_row_update" => "single-row update",
            "receipt_marked" => "receipt committed",
            "transition_guards" => "transition guards",
            "handler_request" => "handler request",
            "handler_call" => "handler answer",
            other => other,
        };
        println!("{}{label}: {}", mark(c.passed), c.detail);
    }
    let handler = r.executor != "sql_update";
    let rows = if r.dry_run && r.status == ReceiptStatus::WouldApply && handler {
        "0 (dry run: the handler would apply it)".to_owned()
    } else if r.dry_run && r.status == ReceiptStatus::WouldApply {
        "0 (dry run: 1 row matched, rolled back)".to_owned()
    } else {
        r.rows_affected.to_string()
    };
    println!("      rows affected {rows}");
    match &r.safe_error_code {
        Some(code) => println!("Result  {} {code}: {}", r.status, r.message),
        None => println!("Result  {}: {}", r.status, r.message),
    }
    println!("Receipt {} (idempotency key {})", r.receipt_hash, r.idempotency_key);
    let yes_no = if r.source_database_mutated { "yes" } else { "no" };
    if handler {
        // The runner never writes the source itself here; the app-owned handler does.
        println!("The handler reported a write in this run: {yes_no}");
    } else {
        println!("Source database changed by this run: {yes_no}");
    }
    println!("State   {state}");
    match (r.status, r.dry_run) {
        (_, true) => println!("Dry run: nothing was written and nothing was recorded in the ledger."),
        (ReceiptStatus::Conflict, false) => println!(
            "The row changed after the agent saw it (or is not in this tenant). This proposal is closed: ask the agent to propose again."
        ),
        (ReceiptStatus::Failed, false)
            if handler
                && matches!(
                    r.safe_error_code.as_deref(),
                    Some("HANDLER_TIMEOUT" | "HANDLER_UNAVAILABLE" | "HANDLER_RECEIPT_INVALID")
                ) =>
        {
            println!(
                "The runner cannot tell whether the handler wrote. Retry with: synapsor-runner apply {} (the same idempotency key keeps the handler from applying it twice)",
                cs.proposal_id
            )
        }
        (ReceiptStatus::Failed, false) => println!(
            "Nothing was written. Fix the cause, then retry with: synapsor-runner apply {}",
            cs.proposal_id
        ),
        _ => {}
    }
    println!("Replay  synapsor-runner replay {}", cs.proposal_id);
    code
}
