//! The reconciler: from verified approvals to a receipt.
//!
//! For each `Proposal` that is not final: the spec must still match its digest; a verified
//! rejection ends it; an unexpired proposal with a quorum of verified approvals (signed by the
//! webhook, none by the proposer) is checked against the *current* reviewed config, moved to
//! `Applying` with a compare-and-set on its `resourceVersion` before anything is written, and
//! applied through the same executor as local mode. The receipt goes to status, an Event, the
//! metrics and the ledger. A proposal found in `Applying` (a controller died mid-apply) is
//! applied again with the same idempotency key: the source's receipts table turns a write that
//! already committed into `already_applied`, so nothing is written twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use synapsor_core::ProposalState;
use synapsor_core::capability::Capability;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::config::{self, Mode, RunnerConfig};
use synapsor_executor::guards::check_capability_matches;
use synapsor_executor::{ApplyRequest, Approval, Receipt, ReceiptStatus, select_executor};
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_PROPOSER, ANNOTATION_REJECTION, ApprovalStatus, Condition, Phase, Proposal,
    ProposalStatus, RejectionStatus,
};
use synapsor_ledger::{Ledger, LedgerError, ReceiptRecord};
use tokio::sync::watch;

use crate::decisions::{DecisionKey, parse_approvals, parse_rejection, same_user};
use crate::metrics::Metrics;
use crate::server::now_ms;

/// Looks an environment variable up (writer URLs, handler secrets).
pub type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything a reconcile needs.
pub struct Ctx {
    pub client: kube::Client,
    pub config: RunnerConfig,
    pub capabilities: Vec<Capability>,
    pub ledger: Ledger,
    pub key: DecisionKey,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// True while this replica holds the leader Lease.
    pub leading: watch::Receiver<bool>,
    /// Writer URLs and handler secrets (the process environment).
    pub env: EnvFn,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("this replica does not hold the leader lease")]
    NotLeader,
}

impl ReconcileError {
    pub fn code(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KUBE_API_ERROR",
            ReconcileError::Ledger(e) => e.code(),
            ReconcileError::NotLeader => "NOT_LEADER",
        }
    }
}

/// Attempts at an apply that fails without writing, before the proposal stays `Failed`.
pub const MAX_ATTEMPTS: u32 = 5;

/// The pause before attempt `n + 1`: 10 s, 20 s, 40 s, 80 s.
pub fn retry_pause(failed_attempts: u32) -> Duration {
    Duration::from_secs(10u64 << failed_attempts.saturating_sub(1).min(6))
}

/// Requeue after an error, with the code in the metrics.
pub fn error_policy(_p: Arc<Proposal>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    ctx.metrics.reconcile_errors.with_label_values(&[e.code()]).inc();
    if !matches!(e, ReconcileError::NotLeader) {
        tracing::warn!(code = e.code(), error = %e, "reconcile failed; retrying");
    }
    Action::requeue(Duration::from_secs(2))
}

fn now() -> String {
    synapsor_core::time::format_rfc3339_ms(now_ms())
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now(),
    }
}

/// The ledger's name for a proposal managed by a Kubernetes object.
pub fn managed_by(p: &Proposal) -> String {
    synapsor_kube::managed_by(&p.namespace().unwrap_or_default(), &p.name_any())
}

/// The verified approvals of `p`: signed by our key for this uid and digest, not by the
/// proposer, one per user, in order.
pub fn verified_approvals(p: &Proposal, key: &DecisionKey) -> Vec<ApprovalStatus> {
    let ann: BTreeMap<String, String> = p.annotations().clone();
    let uid = p.uid().unwrap_or_default();
    let proposer = ann.get(ANNOTATION_PROPOSER).cloned().unwrap_or_default();
    let mut out: Vec<ApprovalStatus> = Vec::new();
    for d in parse_approvals(ann.get(ANNOTATION_APPROVALS)).unwrap_or_default() {
        let verified = key.verify(&uid, &p.spec.digest, &d);
        if !verified {
            tracing::warn!(proposal = %p.name_any(), user = %d.user, "ignoring an approval whose signature does not verify");
            continue;
        }
        if proposer.is_empty() || same_user(&d.user, &proposer) || out.iter().any(|a| same_user(&a.user, &d.user)) {
            continue;
        }
        out.push(ApprovalStatus {
            user: d.user,
            at: d.at,
            verified: true,
        });
    }
    out
}

fn verified_rejection(p: &Proposal, key: &DecisionKey) -> Option<RejectionStatus> {
    let d = parse_rejection(p.annotations().get(ANNOTATION_REJECTION))
        .ok()
        .flatten()?;
    if !key.verify(&p.uid().unwrap_or_default(), &p.spec.digest, &d) {
        tracing::warn!(proposal = %p.name_any(), "ignoring a rejection whose signature does not verify");
        return None;
    }
    Some(RejectionStatus {
        user: d.user,
        at: d.at,
        reason: d.reason.unwrap_or_default(),
    })
}

/// The receipt status's phase.
fn phase_of(r: &Receipt) -> Phase {
    match r.status {
        ReceiptStatus::Applied | ReceiptStatus::AlreadyApplied => Phase::Applied,
        ReceiptStatus::Conflict => Phase::Conflict,
        ReceiptStatus::Failed | ReceiptStatus::WouldApply => Phase::Failed,
    }
}

struct Reconciler<'a> {
    p: &'a Proposal,
    ctx: &'a Ctx,
    api: Api<Proposal>,
    cs: ChangeSet,
    id: String,
}

pub async fn reconcile(p: Arc<Proposal>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    if !*ctx.leading.borrow() {
        return Err(ReconcileError::NotLeader);
    }
    let status = p.status.clone().unwrap_or_default();
    match status.phase {
        Some(Phase::Applied | Phase::Conflict | Phase::Rejected | Phase::Expired) => {
            return Ok(Action::await_change());
        }
        // A failed apply wrote nothing and is retried; once its attempts are spent only a
        // rejection still changes it.
        Some(Phase::Failed) if status.attempts >= MAX_ATTEMPTS && verified_rejection(&p, &ctx.key).is_none() => {
            return Ok(Action::await_change());
        }
        _ => {}
    }
    let ns = p.namespace().unwrap_or_default();
    let r = Reconciler {
        p: &p,
        ctx: &ctx,
        api: Api::namespaced(ctx.client.clone(), &ns),
        cs: p.spec.to_change_set(),
        id: p.spec.proposal_id.clone(),
    };
    r.run(status).await
}

impl Reconciler<'_> {
    async fn run(&self, status: ProposalStatus) -> Result<Action, ReconcileError> {
        let (p, ctx) = (self.p, self.ctx);
        if !self.cs.digest_is_intact() {
            return self
                .close_for_good(
                    "SPEC_DIGEST_MISMATCH",
                    "the spec no longer matches its digest; nothing was applied",
                )
                .await;
        }
        if self.cs.mode == "shadow" {
            return self
                .close_for_good(
                    "SHADOW_WRITEBACK_DISABLED",
                    "shadow proposals are recorded for review and never applied",
                )
                .await;
        }
        let by = managed_by(p);
        {
            let cs = self.cs.clone();
            let (by, at) = (by.clone(), now());
            match ctx.ledger.with_store(move |s| s.mirror_proposal(&cs, &by, &at)).await {
                Ok(_) => {}
                Err(LedgerError::DigestMismatch { .. }) => {
                    return self
                        .close_for_good(
                            "PROPOSAL_ID_REUSED",
                            "the ledger holds another change set under this proposal id; nothing was applied",
                        )
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let phase = status.phase.unwrap_or(Phase::Pending);
        if phase != Phase::Applying
            && let Some(rej) = verified_rejection(p, &ctx.key)
        {
            let (id, who, reason, at) = (self.id.clone(), rej.user.clone(), rej.reason.clone(), rej.at.clone());
            ctx.ledger
                .with_store(move |s| s.mirror_decision(&id, &who, Some(&reason), &at))
                .await?;
            let message = format!("rejected by {}: {}", rej.user, rej.reason);
            let mut st = status.clone();
            st.rejection = Some(rej);
            return self.finish(st, Phase::Rejected, "Rejected", &message, None).await;
        }

        let approvals = verified_approvals(p, &ctx.key);
        let cap = ctx.capabilities.iter().find(|c| c.name == self.cs.action);
        let required = self
            .cs
            .approval
            .required_approvals
            .max(cap.map_or(0, |c| c.required_approvals))
            .max(1) as usize;
        let summary = format!("{}/{required}", approvals.len().min(required));

        if phase != Phase::Applying {
            let expires = synapsor_core::time::parse_rfc3339_ms(&p.spec.expires_at).unwrap_or(0);
            let now_ms = now_ms();
            if phase == Phase::Failed
                && let Some(at) = status
                    .next_attempt_at
                    .as_deref()
                    .and_then(synapsor_core::time::parse_rfc3339_ms)
                && at > now_ms
            {
                let wait = u64::try_from(at - now_ms).unwrap_or(0);
                return Ok(Action::requeue(Duration::from_millis(wait + 100)));
            }
            if now_ms >= expires {
                return self
                    .close(
                        Phase::Expired,
                        "Expired",
                        &format!("not applied before {}", p.spec.expires_at),
                    )
                    .await;
            }
            for a in &approvals {
                let (id, who, at) = (self.id.clone(), a.user.clone(), a.at.clone());
                ctx.ledger
                    .with_store(move |s| s.mirror_decision(&id, &who, None, &at))
                    .await?;
            }
            if approvals.len() < required {
                let mut st = status.clone();
                st.phase = Some(Phase::Pending);
                st.approvals = approvals;
                st.approvals_summary = Some(summary.clone());
                st.message = Some(format!("waiting for approvals ({summary})"));
                st.observed_generation = p.metadata.generation;
                if Some(&st) != p.status.as_ref() {
                    self.write_status(&st).await?;
                }
                // Wake up at expiry even if nothing else changes.
                let left = u64::try_from(expires - now_ms).unwrap_or(0);
                return Ok(Action::requeue(Duration::from_millis(left.min(3_600_000) + 500)));
            }
            // Quorum: the refusals that need no database come before any state change.
            if let Err((code, message)) = self.preflight(cap) {
                return self.fail(status, &code, &message, None).await;
            }
            let mut current = p.clone();
            if phase == Phase::Pending {
                // Approved first, then Applying: each a compare-and-set on the resourceVersion
                // this reconcile read, so of two writers only one gets through.
                let mut st = status.clone();
                st.phase = Some(Phase::Approved);
                st.approvals = approvals.clone();
                st.approvals_summary = Some(summary.clone());
                st.message = Some(format!("approved ({summary} verified approvals)"));
                st.conditions = vec![condition(
                    "Approved",
                    true,
                    "QuorumReached",
                    &format!("{summary} verified approvals"),
                )];
                current.status = Some(st);
                current = match self
                    .api
                    .replace_status(&p.name_any(), &PostParams::default(), &current)
                    .await
                {
                    Ok(updated) => updated,
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        return Ok(Action::requeue(Duration::from_millis(200)));
                    }
                    Err(e) => return Err(e.into()),
                };
            }
            let mut st = current.status.clone().unwrap_or_default();
            st.phase = Some(Phase::Applying);
            st.approvals = approvals.clone();
            st.approvals_summary = Some(summary.clone());
            st.message = Some("applying: written before any side effect".into());
            st.conditions = vec![condition(
                "Approved",
                true,
                "QuorumReached",
                &format!("{summary} verified approvals"),
            )];
            st.observed_generation = p.metadata.generation;
            st.next_attempt_at = None;
            current.status = Some(st);
            // Compare-and-set: `current` carries the resourceVersion read (or just written).
            match self
                .api
                .replace_status(&p.name_any(), &PostParams::default(), &current)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::info!(proposal = %p.name_any(), "proposal changed while moving to Applying; re-reading");
                    return Ok(Action::requeue(Duration::from_millis(200)));
                }
                Err(e) => return Err(e.into()),
            }
            let (id, at, retry) = (self.id.clone(), now(), phase == Phase::Failed);
            ctx.ledger
                .with_store(move |s| {
                    if !retry {
                        s.mirror_state(&id, ProposalState::Approved, "synapsor-controller", json!({}), &at)?;
                    }
                    s.mirror_state(
                        &id,
                        ProposalState::Applying,
                        "synapsor-controller",
                        json!({"retry": retry}),
                        &at,
                    )
                })
                .await?;
        } else {
            tracing::info!(proposal = %p.name_any(), "resuming an apply that was interrupted (same idempotency key)");
            if let Err((code, message)) = self.preflight(cap) {
                return self.fail(status, &code, &message, None).await;
            }
        }
        self.apply(status, approvals, summary).await
    }

    /// The checks of the current reviewed config that need no database.
    fn preflight(&self, cap: Option<&Capability>) -> Result<(), (String, String)> {
        let cfg = &self.ctx.config;
        if cfg.mode != Mode::Review {
            return Err((
                "WRITEBACK_DISABLED".into(),
                "the controller's config is not in review mode; nothing is applied".into(),
            ));
        }
        let Some(cap) = cap else {
            return Err((
                "CAPABILITY_CHANGED".into(),
                format!("{} is not in the controller's reviewed config", self.cs.action),
            ));
        };
        check_capability_matches(&self.cs, cap).map_err(|r| (r.code.as_str().to_owned(), r.message))?;
        let executor = select_executor(cfg, cap).map_err(|e| (e.code().to_owned(), e.to_string()))?;
        let Some(source) = cfg.sources.get(&cap.source) else {
            return Err((
                "CAPABILITY_CHANGED".into(),
                format!("source {} is not in the config", cap.source),
            ));
        };
        if source.read_only && executor.name() == "sql_update" {
            return Err((
                "SOURCE_READ_ONLY".into(),
                format!("source {} is read_only in the config", cap.source),
            ));
        }
        Ok(())
    }

    async fn apply(
        &self,
        status: ProposalStatus,
        approvals: Vec<ApprovalStatus>,
        summary: String,
    ) -> Result<Action, ReconcileError> {
        let ctx = self.ctx;
        // preflight() checked these; a config reload cannot happen in between.
        let Some(cap) = ctx.capabilities.iter().find(|c| c.name == self.cs.action) else {
            return self
                .fail(status, "CAPABILITY_CHANGED", "the capability left the config", None)
                .await;
        };
        let executor = match select_executor(&ctx.config, cap) {
            Ok(e) => e,
            Err(e) => return self.fail(status, e.code(), &e.to_string(), None).await,
        };
        let Some(source) = ctx.config.sources.get(&cap.source) else {
            return self
                .fail(status, "CAPABILITY_CHANGED", "the source left the config", None)
                .await;
        };
        let started = std::time::Instant::now();
        let env = |name: &str| (ctx.env)(name);
        let receipt = executor
            .apply(ApplyRequest {
                change_set: &self.cs,
                capability: cap,
                source_name: &cap.source,
                source: source as &config::Source,
                env: &env,
                executed_at: now(),
                dry_run: false,
                approvals: approvals
                    .iter()
                    .map(|a| Approval {
                        approver: a.user.clone(),
                        approved_at: a.at.clone(),
                    })
                    .collect(),
            })
            .await;
        ctx.metrics.apply_seconds.observe(started.elapsed().as_secs_f64());
        ctx.metrics.applies.with_label_values(&[receipt.status.as_str()]).inc();
        let phase = phase_of(&receipt);
        self.record_receipt(&receipt).await?;
        let mut st = status;
        st.approvals = approvals;
        st.approvals_summary = Some(summary);
        let message = receipt.message.clone();
        let reason = match receipt.status {
            ReceiptStatus::Applied => "Applied",
            ReceiptStatus::AlreadyApplied => "AlreadyApplied",
            ReceiptStatus::Conflict => "Conflict",
            _ => "ApplyFailed",
        };
        if phase == Phase::Failed {
            let code = receipt.safe_error_code.clone().unwrap_or_else(|| reason.to_owned());
            return self.fail(st, &code, &message, Some(&receipt)).await;
        }
        self.finish(st, phase, reason, &message, Some(&receipt)).await
    }

    /// Ends an attempt that wrote nothing in `Failed`, and schedules the next one (the same
    /// idempotency key, after a growing pause) until [`MAX_ATTEMPTS`] are spent.
    async fn fail(
        &self,
        mut st: ProposalStatus,
        code: &str,
        message: &str,
        receipt: Option<&Receipt>,
    ) -> Result<Action, ReconcileError> {
        st.attempts = st.attempts.saturating_add(1);
        let message = if st.attempts < MAX_ATTEMPTS {
            let pause = retry_pause(st.attempts);
            let at = synapsor_core::time::format_rfc3339_ms(now_ms() + i64::try_from(pause.as_millis()).unwrap_or(0));
            st.next_attempt_at = Some(at.clone());
            format!(
                "{code}: {message} (attempt {} of {MAX_ATTEMPTS}; nothing was written; next attempt at {at})",
                st.attempts
            )
        } else {
            st.next_attempt_at = None;
            format!(
                "{code}: {message} (attempt {0} of {0}; nothing was written; no more attempts)",
                st.attempts
            )
        };
        if receipt.is_none() {
            self.ctx
                .metrics
                .closed
                .with_label_values(&[Phase::Failed.as_str()])
                .inc();
        }
        let attempts = st.attempts;
        self.finish(st, Phase::Failed, code, &message, receipt).await?;
        Ok(if attempts < MAX_ATTEMPTS {
            Action::requeue(retry_pause(attempts))
        } else {
            Action::await_change()
        })
    }

    /// Ends a proposal in `Failed` with no retry: what failed is the proposal itself.
    async fn close_for_good(&self, code: &str, message: &str) -> Result<Action, ReconcileError> {
        let mut st = self.p.status.clone().unwrap_or_default();
        st.attempts = MAX_ATTEMPTS;
        st.next_attempt_at = None;
        self.ctx
            .metrics
            .closed
            .with_label_values(&[Phase::Failed.as_str()])
            .inc();
        self.finish(st, Phase::Failed, code, &format!("{code}: {message}"), None)
            .await
    }

    async fn record_receipt(&self, receipt: &Receipt) -> Result<(), ReconcileError> {
        let id = self.id.clone();
        let receipt = receipt.clone();
        let at = now();
        self.ctx
            .ledger
            .with_store(move |s| {
                s.record_attempt_receipt(&ReceiptRecord {
                    proposal_id: id,
                    idempotency_key: receipt.idempotency_key.clone(),
                    status: receipt.status.as_str().to_owned(),
                    rows_affected: receipt.rows_affected,
                    safe_error_code: receipt.safe_error_code.clone(),
                    receipt: serde_json::to_value(&receipt).unwrap_or(Value::Null),
                    created_at: at,
                })
                .map(|_| ())
            })
            .await?;
        Ok(())
    }

    /// Replaces the status fields `st` sets (a merge patch of the status subresource). Only for
    /// writes that need no compare-and-set: the ones that do use `replace_status`.
    async fn write_status(&self, st: &ProposalStatus) -> Result<(), ReconcileError> {
        self.api
            .patch_status(
                &self.p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": st })),
            )
            .await?;
        Ok(())
    }

    /// Ends a proposal without an apply.
    async fn close(&self, phase: Phase, code: &str, message: &str) -> Result<Action, ReconcileError> {
        self.ctx.metrics.closed.with_label_values(&[phase.as_str()]).inc();
        let mut st = self.p.status.clone().unwrap_or_default();
        st.receipt = None;
        self.finish(st, phase, code, message, None).await
    }

    /// Writes a final phase to status, the ledger and an Event.
    async fn finish(
        &self,
        mut st: ProposalStatus,
        phase: Phase,
        reason: &str,
        message: &str,
        receipt: Option<&Receipt>,
    ) -> Result<Action, ReconcileError> {
        let (p, ctx) = (self.p, self.ctx);
        st.phase = Some(phase);
        st.message = Some(message.to_owned());
        st.observed_generation = p.metadata.generation;
        if let Some(r) = receipt {
            st.receipt = serde_json::to_value(r).ok();
        }
        st.conditions.retain(|c| c.type_ != "Applied");
        st.conditions
            .push(condition("Applied", phase == Phase::Applied, reason, message));
        self.write_status(&st).await?;
        // The mirror may not exist yet when the spec itself was refused.
        let (id, at) = (self.id.clone(), now());
        let payload = json!({
            "phase": phase.as_str(),
            "reason": reason,
            "receipt_status": receipt.map(|r| r.status.as_str()),
            "idempotency_key": receipt.map(|r| r.idempotency_key.clone()),
        });
        match ctx
            .ledger
            .with_store(move |s| s.mirror_state(&id, phase.ledger_state(), "synapsor-controller", payload, &at))
            .await
        {
            Ok(_) | Err(LedgerError::ProposalNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let type_ = if matches!(phase, Phase::Applied | Phase::Rejected) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(message.chars().take(1000).collect()),
            action: if receipt.is_some() { "Apply" } else { "Close" }.to_owned(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &p.object_ref(&())).await {
            // The status and the ledger hold the outcome; a lost Event is logged, not retried.
            tracing::warn!(error = %e, "could not publish the event");
        }
        tracing::info!(proposal = %p.name_any(), phase = phase.as_str(), reason, "proposal finished");
        Ok(Action::await_change())
    }
}
