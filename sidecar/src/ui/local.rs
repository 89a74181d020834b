//! The local ledger as a [`ReviewSource`]: proposals, evidence, decisions, receipts and events of
//! the SQLite ledger, decided through the same code as `proposals approve|reject` and applied
//! through the same code as `synapsor-runner apply`.
//!
//! What it is not: a second set of rules. The ledger binds approvals to the digest and refuses
//! what its state machine forbids; [`crate::cli::operator::resolve`] decides who acts (and refuses
//! a capability that needs an operator token without one); [`crate::local_apply`] applies. This
//! module only adds what a web page needs on top: the revision check (the page showed what is
//! decided) and the digest check for rejections, which the ledger does not bind.

use std::path::PathBuf;

use serde_json::{Value, json};
use synapsor_core::ProposalState;
use synapsor_core::config::Mode;
use synapsor_core::context::{Clock, ProcessEnv, SystemClock};
use synapsor_core::review::{Decision, Review, TimelineEntry};
use synapsor_ledger::{LedgerError, LedgerStore, ProposalFilter, ProposalRecord, Replay};

use super::{Actions, DecisionRequest, Done, ListFilter, ListItem, ReviewPage, ReviewSource, UiError};
use crate::cli::common::{CliError, GlobalArgs, load_config};
use crate::cli::operator::{self, OperatorArgs};
use crate::local_apply::{apply_proposal, refuse_managed};

/// The local ledger, and who decides from this UI.
#[derive(Debug)]
pub struct LocalLedger {
    global: GlobalArgs,
    store: PathBuf,
    /// `--actor` / `$SYNAPSOR_APPROVER`, as for `proposals approve`.
    actor: Option<String>,
    operator: OperatorArgs,
    /// The page offers apply (`ui --allow-apply`); otherwise it shows the command.
    allow_apply: bool,
}

impl LocalLedger {
    /// `config` is the runner config (for operator roles, identity and apply); `store` the ledger.
    pub fn new(
        config: PathBuf,
        store: PathBuf,
        actor: Option<String>,
        operator: OperatorArgs,
        allow_apply: bool,
    ) -> LocalLedger {
        LocalLedger {
            global: GlobalArgs {
                config,
                store: Some(store.clone()),
            },
            store,
            actor,
            operator,
            allow_apply,
        }
    }

    fn open(&self) -> Result<LedgerStore, UiError> {
        LedgerStore::open_existing(&self.store).map_err(ledger_error)
    }

    /// The proposal as stored now, after the checks every decision shares: not managed
    /// elsewhere, and still the revision and digest the page showed.
    async fn current(&self, req: &DecisionRequest) -> Result<ProposalRecord, UiError> {
        let store = self.open()?;
        let id = req.id.clone();
        let r = blocking(move || store.replay(&id).map_err(ledger_error)).await?;
        check_unchanged(&r, req)?;
        Ok(r.proposal)
    }

    /// Who acts on `rec`, through the CLI's path (`--actor`, `$SYNAPSOR_APPROVER`, `$USER`, or
    /// an operator token, which a capability with an approval role requires).
    async fn operator(&self, rec: &ProposalRecord, actor: Option<String>) -> Result<operator::Operator, UiError> {
        operator::resolve(&self.global, &self.operator, actor, &rec.change_set)
            .await
            .map_err(cli_error)
    }

    /// Decides in one blocking call: re-reads the proposal and re-checks revision and digest
    /// right before the ledger's own checks, so the window for a concurrent change is one
    /// transaction wide.
    async fn decide(
        &self,
        req: DecisionRequest,
        op: operator::Operator,
        approve: bool,
    ) -> Result<ProposalRecord, UiError> {
        let mut store = self.open()?;
        blocking(move || {
            let r = store.replay(&req.id).map_err(ledger_error)?;
            check_unchanged(&r, &req)?;
            let id = r.proposal.change_set.proposal_id.clone();
            let now = SystemClock.now_rfc3339();
            let out = if approve {
                store.approve_as(&id, &req.digest, op.decider(), req.reason.as_deref(), &now)
            } else {
                let reason = req.reason.as_deref().unwrap_or_default();
                store.reject_as(&id, op.decider(), reason, &now)
            };
            out.map_err(ledger_error)
        })
        .await
    }
}

impl ReviewSource for LocalLedger {
    fn describe(&self) -> String {
        format!("local ledger {}", self.store.display())
    }

    fn phases(&self) -> Vec<String> {
        ProposalState::ALL.iter().map(|s| s.as_str().to_owned()).collect()
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<ListItem>, UiError> {
        let state = match filter.phase.as_deref() {
            None => None,
            Some(p) => Some(ProposalState::parse(p).ok_or_else(|| UiError::Input {
                code: "INVALID_STATE",
                message: format!("unknown phase {p:?}"),
            })?),
        };
        let store = self.open()?;
        blocking(move || {
            let rows = store
                .list_proposals(&ProposalFilter {
                    state,
                    tenant_id: filter.tenant,
                    capability: filter.capability,
                    limit: Some(filter.limit),
                })
                .map_err(ledger_error)?;
            Ok(rows
                .into_iter()
                .map(|s| {
                    // The digest is re-verified on this read; a row that fails it lists with no
                    // change summary, and its page says why.
                    let change = store
                        .get_proposal(&s.proposal_id)
                        .map(|p| Review::from_change_set(&p.change_set).change_summary())
                        .unwrap_or_default();
                    ListItem {
                        needs_attention: matches!(
                            s.state,
                            ProposalState::PendingReview | ProposalState::Approved | ProposalState::Failed
                        ),
                        id: s.proposal_id,
                        phase: s.state.as_str().to_owned(),
                        capability: s.capability,
                        tenant: s.tenant_id,
                        proposer: s.principal,
                        object: s.object,
                        change,
                        created_at: s.created_at,
                    }
                })
                .collect())
        })
        .await
    }

    async fn get(&self, id: String) -> Result<ReviewPage, UiError> {
        let store = self.open()?;
        let r = blocking(move || store.replay(&id).map_err(ledger_error)).await?;
        let rec = &r.proposal;
        let state = rec.state;
        let managed_elsewhere = refuse_managed(rec).err().map(|e| e.to_string());
        let review_mode = load_config(&self.global.config)
            .map(|(c, _)| c.mode == Mode::Review)
            .unwrap_or(false);
        let applicable = matches!(state, ProposalState::Approved | ProposalState::Failed) && review_mode;
        let actions = if managed_elsewhere.is_some() {
            Actions::default()
        } else {
            Actions {
                approve: state == ProposalState::PendingReview && r.digest_verified,
                approve_note: true,
                reject: state.can_move_to(ProposalState::Rejected),
                apply: applicable && self.allow_apply && r.digest_verified,
            }
        };
        let acting_as = if actions.approve || actions.reject || actions.apply {
            self.operator(rec, self.actor.clone()).await.map(|op| op.describe())
        } else {
            Err(UiError::Unsupported {
                what: "a decision".into(),
            })
        };
        let apply_command = (applicable && !actions.apply && managed_elsewhere.is_none())
            .then(|| format!("synapsor-runner apply {}", rec.change_set.proposal_id));
        Ok(ReviewPage {
            review: review_of(&r),
            revision: revision(&r),
            digest_verified: r.digest_verified,
            managed_elsewhere,
            actions,
            acting_as,
            apply_command,
            apply_note: None,
        })
    }

    async fn approve(&self, req: DecisionRequest) -> Result<Done, UiError> {
        let rec = self.current(&req).await?;
        refuse_managed(&rec).map_err(|e| refused("PROPOSAL_MANAGED_EXTERNALLY", e.to_string()))?;
        let op = self.operator(&rec, self.actor.clone()).await?;
        let updated = self.decide(req, op, true).await?;
        Ok(if updated.state == ProposalState::Approved {
            Done::Approved
        } else {
            Done::ApprovalRecorded
        })
    }

    async fn reject(&self, req: DecisionRequest) -> Result<Done, UiError> {
        if req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(UiError::Input {
                code: "UI_REASON_REQUIRED",
                message: "a rejection needs a reason".into(),
            });
        }
        let rec = self.current(&req).await?;
        refuse_managed(&rec).map_err(|e| refused("PROPOSAL_MANAGED_EXTERNALLY", e.to_string()))?;
        let op = self.operator(&rec, self.actor.clone()).await?;
        self.decide(req, op, false).await?;
        Ok(Done::Rejected)
    }

    async fn apply(&self, req: DecisionRequest) -> Result<Done, UiError> {
        if !self.allow_apply {
            return Err(UiError::Unsupported {
                what: format!(
                    "applying from this page (start `synapsor-runner ui --allow-apply`, or run `synapsor-runner apply {}`)",
                    req.id
                ),
            });
        }
        let (cfg, _) = load_config(&self.global.config).map_err(cli_error)?;
        let rec = self.current(&req).await?;
        // As `synapsor-runner apply`: the operator is resolved without --actor.
        let op = self.operator(&rec, None).await?;
        apply_proposal(
            &cfg,
            &self.store,
            &rec.change_set.proposal_id,
            false,
            &ProcessEnv,
            &op.name,
        )
        .await
        .map_err(|e| refused(e.code(), e.to_string()))?;
        Ok(Done::ApplyRan)
    }
}

/// Runs a blocking ledger call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, UiError> + Send + 'static) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| UiError::Unavailable {
        code: "STORE_UNAVAILABLE",
        message: "the ledger call did not finish".into(),
    })?
}

fn refused(code: &'static str, message: String) -> UiError {
    UiError::Refused { code, message }
}

fn ledger_error(e: LedgerError) -> UiError {
    match e {
        LedgerError::ProposalNotFound { .. } => UiError::NotFound { message: e.to_string() },
        LedgerError::StoreNotFound { .. }
        | LedgerError::StoreUnavailable { .. }
        | LedgerError::CorruptRow { .. }
        | LedgerError::SchemaTooNew { .. }
        | LedgerError::StoreLeased { .. } => UiError::Unavailable {
            code: e.code(),
            message: e.to_string(),
        },
        other => refused(other.code(), other.to_string()),
    }
}

fn cli_error(e: CliError) -> UiError {
    match e {
        CliError::Ledger(l) => ledger_error(l),
        other => refused(other.code(), other.to_string()),
    }
}

/// Changes with every event of the proposal (decisions, state changes, new evidence, receipts)
/// and with its state.
fn revision(r: &Replay) -> String {
    let last = r.events.last().map(|e| e.event_id).unwrap_or(0);
    format!("{last}.{}", r.proposal.state.as_str())
}

/// The page's revision and digest are still the proposal's.
fn check_unchanged(r: &Replay, req: &DecisionRequest) -> Result<(), UiError> {
    let cs = &r.proposal.change_set;
    if revision(r) != req.revision {
        return Err(UiError::Stale {
            id: cs.proposal_id.clone(),
            phase: r.proposal.state.as_str().to_owned(),
        });
    }
    if req.digest != cs.digest {
        return Err(ledger_error(LedgerError::DigestMismatch {
            id: cs.proposal_id.clone(),
            expected: req.digest.clone(),
            actual: cs.digest.clone(),
        }));
    }
    Ok(())
}

/// The shared review model, filled from the replay.
fn review_of(r: &Replay) -> Review {
    let rec = &r.proposal;
    let cs = &rec.change_set;
    let mut review = Review::from_change_set(cs);
    review.phase = rec.state.as_str().to_owned();
    review.decisions = rec
        .approvals
        .iter()
        .map(|a| Decision {
            decision: a.decision.clone(),
            actor: a.approver.clone(),
            verified_by: a.verified_identity.as_ref().map(|v| v.issuer.clone()),
            at: a.created_at.clone(),
            reason: a.reason.clone(),
        })
        .collect();
    let bundle = r
        .evidence
        .iter()
        .find(|b| b.evidence.evidence_bundle_id == cs.evidence.bundle_id)
        .or_else(|| r.evidence.first());
    review.evidence = bundle.map(|b| {
        let e = &b.evidence;
        let row = e
            .items
            .iter()
            .find(|i| i.get("kind").and_then(Value::as_str) == Some("external_row"))
            .and_then(|i| i.get("visible_row"))
            .cloned()
            .unwrap_or(Value::Null);
        let binding = e
            .items
            .iter()
            .find_map(|i| i.get("binding_provenance"))
            .cloned()
            .unwrap_or(Value::Null);
        // The query audit's statement template is SQL: the page shows its outcome only.
        let queries: Vec<Value> = b
            .query_audit
            .iter()
            .map(|q| json!({"at": q.created_at, "outcome": q.outcome, "row_count": q.row_count, "duration_ms": q.duration_ms}))
            .collect();
        json!({
            "bundle_id": e.evidence_bundle_id,
            "captured_at": e.created_at,
            "capability": e.capability,
            "target": e.target,
            "object_id": e.object_id,
            "tenant": e.tenant_id,
            "principal": e.principal,
            "binding": binding,
            "row": row,
            "queries": queries,
        })
    });
    review.receipt = r.receipts.last().map(|rc| rc.receipt.clone());
    review.timeline = r
        .events
        .iter()
        .map(|e| TimelineEntry {
            at: e.created_at.clone(),
            kind: e.kind.clone(),
            actor: Some(e.actor.clone()),
            detail: event_detail(&e.kind, &e.payload),
        })
        .collect();
    review
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One line about an event's payload, from the fields the ledger documents for its kind.
fn event_detail(kind: &str, p: &Value) -> Option<String> {
    let f = |k: &str| text(p.get(k));
    match kind {
        "proposal_approved" => Some(format!(
            "{} of {} approvals{}",
            f("approvals")?,
            f("required")?,
            f("reason").map(|r| format!(": {r}")).unwrap_or_default()
        )),
        "proposal_state_changed" => Some(format!("{} -> {}", f("from")?, f("to")?)),
        "proposal_rejected" => Some(format!("{} -> rejected: {}", f("from")?, f("reason")?)),
        "evidence_recorded" | "proposal_requested_again" => f("evidence_bundle_id").map(|e| format!("evidence {e}")),
        k if k.starts_with("writeback_") => Some(format!(
            "{}, {} row(s){}",
            f("status")?,
            f("rows_affected").unwrap_or_else(|| "0".into()),
            f("safe_error_code").map(|c| format!(", {c}")).unwrap_or_default()
        )),
        _ => None,
    }
}
