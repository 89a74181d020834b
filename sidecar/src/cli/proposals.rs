//! `proposals list|show|approve|reject`: review and decide proposals of the local ledger.

use clap::Subcommand;
use serde_json::json;
use synapsor_core::ProposalState;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_ledger::ProposalFilter;

use super::common::{CliError, GlobalArgs, confirm, open_store, print_json};
use super::operator::{self, OperatorArgs};
use super::output;
use crate::local_apply::refuse_managed;

#[derive(Debug, Subcommand)]
pub enum ProposalsCommand {
    /// List proposals, newest first.
    List {
        /// Only this state (pending_review, approved, rejected, applied, conflict, failed, ...).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        capability: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one proposal (`latest` for the newest): diff, guards, approvals.
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposal. The approval is bound to the change-set digest shown by `show`.
    /// A capability with an approval role needs an operator token carrying that role.
    Approve {
        id: String,
        /// The digest you reviewed (`sha256:…`); the approval fails if the proposal differs.
        /// Without it, the current digest is shown and bound after confirmation.
        #[arg(long)]
        digest: Option<String>,
        /// Who approves, when no operator token names them. Default: $SYNAPSOR_APPROVER, else
        /// $USER. Recorded as unverified.
        #[arg(long, env = "SYNAPSOR_APPROVER")]
        actor: Option<String>,
        #[command(flatten)]
        operator: OperatorArgs,
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reject a proposal with a reason (the same operator rules as approve).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "SYNAPSOR_APPROVER")]
        actor: Option<String>,
        #[command(flatten)]
        operator: OperatorArgs,
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `proposals list|show|approve|reject`.
pub async fn run(global: &GlobalArgs, c: ProposalsCommand) -> Result<i32, CliError> {
    let now = SystemClock.now_rfc3339();
    match c {
        ProposalsCommand::List {
            state,
            tenant,
            capability,
            limit,
            json,
        } => {
            let state = state
                .map(|s| {
                    ProposalState::parse(&s).ok_or_else(|| {
                        let all: Vec<&str> = ProposalState::ALL.iter().map(|s| s.as_str()).collect();
                        CliError::new(
                            "INVALID_STATE",
                            format!("unknown state {s:?}; one of {}", all.join(", ")),
                        )
                    })
                })
                .transpose()?;
            let store = open_store(global)?;
            let rows = store.list_proposals(&ProposalFilter {
                state,
                tenant_id: tenant,
                capability,
                limit: Some(limit),
            })?;
            if json {
                print_json(&json!({"ok": true, "proposals": rows}));
            } else {
                out!("{}", output::proposal_table(&rows));
            }
            Ok(0)
        }
        ProposalsCommand::Show { id, json } => {
            let store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            if json {
                print_json(&json!({"ok": true, "proposal": p, "diff": p.change_set.diff()}));
            } else {
                out!("{}", output::proposal_detail(&p));
            }
            Ok(0)
        }
        ProposalsCommand::Approve {
            id,
            digest,
            actor,
            operator,
            reason,
            yes,
            json,
        } => {
            let mut store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            refuse_managed(&p)?;
            // Before anything is shown or asked: a refused operator decides nothing.
            let op = operator::resolve(global, &operator, actor, &p.change_set).await?;
            let digest = match digest {
                Some(d) => d,
                None => {
                    if !json {
                        eprint!("{}", output::proposal_detail(&p));
                    }
                    confirm(
                        &format!(
                            "Approve {} with digest {}?",
                            p.change_set.proposal_id, p.change_set.digest
                        ),
                        yes,
                    )?;
                    p.change_set.digest.clone()
                }
            };
            let updated = store.approve_as(
                &p.change_set.proposal_id,
                &digest,
                op.decider(),
                reason.as_deref(),
                &now,
            )?;
            let approvals = updated.approvals.iter().filter(|a| a.decision == "approved").count();
            if json {
                print_json(
                    &json!({"ok": true, "proposal_id": updated.change_set.proposal_id, "state": updated.state, "approved_by": op.name, "verified_identity": op.verified, "digest": digest, "approvals": approvals, "required_approvals": updated.change_set.approval.required_approvals}),
                );
            } else {
                outln!(
                    "Approved {} as {} (digest {digest}); state {} ({approvals} of {} approvals).",
                    updated.change_set.proposal_id,
                    op.describe(),
                    updated.state.as_str(),
                    updated.change_set.approval.required_approvals
                );
                if updated.state == ProposalState::Approved {
                    outln!(
                        "Nothing is written until `synapsor-runner apply {}` runs it through the reviewed executor.",
                        updated.change_set.proposal_id
                    );
                }
            }
            Ok(0)
        }
        ProposalsCommand::Reject {
            id,
            reason,
            actor,
            operator,
            yes,
            json,
        } => {
            let mut store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            refuse_managed(&p)?;
            let op = operator::resolve(global, &operator, actor, &p.change_set).await?;
            confirm(&format!("Reject {}?", p.change_set.proposal_id), yes)?;
            let updated = store.reject_as(&p.change_set.proposal_id, op.decider(), &reason, &now)?;
            if json {
                print_json(
                    &json!({"ok": true, "proposal_id": updated.change_set.proposal_id, "state": updated.state, "rejected_by": op.name, "verified_identity": op.verified}),
                );
            } else {
                outln!(
                    "Rejected {} as {}: {reason}",
                    updated.change_set.proposal_id,
                    op.describe()
                );
            }
            Ok(0)
        }
    }
}
