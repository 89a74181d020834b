//! The reconciler: from verified approvals to a receipt.
//!
//! For each `Proposal` the elected replica observes its status, its verified (webhook-signed)
//! decisions and the verdict of [`plan_apply`] on the *current* reviewed config, lets the pure
//! [`decide`] choose the next [`Step`], and carries it out here: status writes (`Applying` as a
//! compare-and-set on the `resourceVersion` before anything is written), the executor (the same
//! as local mode's), the receipt in status, an Event, the metrics and the ledger. A proposal
//! found in `Applying` (a controller died mid-apply) is applied again with the same idempotency
//! key: the source's receipts table finds a write that already committed, so nothing is written
//! twice, and the receipt records that write as the proposal's own.
//!
//! The watch cache lags behind this replica's own status writes, and each write triggers another
//! reconcile of the same proposal. A version this replica has itself replaced is known to be
//! stale ([`Superseded`]): its reconcile waits for the newer one instead of spending a request
//! on a compare-and-set bound to fail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use synapsor_core::ProposalState;
use synapsor_core::approval::same_person;
use synapsor_core::capability::Capability;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::config::RunnerConfig;
use synapsor_core::context::{Clock, Env};
use synapsor_executor::{ApplyPlan, ApplyRefusal, Approval, Quorum, Receipt, ReceiptStatus, plan_apply};
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_PROPOSER, ANNOTATION_REJECTION, ApprovalStatus, Condition, Phase, Proposal,
    ProposalStatus, RejectionStatus,
};
use synapsor_ledger::{Decider, EvidenceRecord, Ledger, LedgerError, ReceiptRecord};
use tokio::sync::watch;

use crate::decide::{MAX_ATTEMPTS, Observed, Step, decide, retry_pause};
use crate::decisions::{DecisionKey, parse_approvals, parse_rejection};
use crate::metrics::Metrics;

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
    pub env: Arc<dyn Env>,
    pub clock: Arc<dyn Clock>,
    /// The first pause after a failed apply; it doubles up to the last attempt.
    pub retry_pause: Duration,
    /// Versions of proposals this replica's own status writes replaced.
    pub superseded: Superseded,
}

/// The versions (`resourceVersion`) of proposals that this replica's own successful status
/// writes replaced, by proposal uid. A reconcile of such a version reads a watch cache that has
/// not caught up yet: whatever it decided would be a write bound to fail its compare-and-set (or
/// worse, a write without one over a newer status). Only equality of versions is used, as the
/// API conventions require. An entry goes when a version that is not in it is seen.
#[derive(Debug, Default)]
pub struct Superseded {
    by_uid: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
}

impl Superseded {
    /// Past this many proposals with entries, all are forgotten: each entry is only a saving (the
    /// compare-and-sets are what keep the writes right), so memory stays bounded even for
    /// proposals deleted before their newer version was seen.
    const MAX_ENTRIES: usize = 100_000;

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<String>>> {
        self.by_uid.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a write of this replica replaced `versions` of the proposal `uid`.
    pub fn record(&self, uid: &str, versions: impl IntoIterator<Item = String>) {
        let mut map = self.map();
        if map.len() >= Self::MAX_ENTRIES && !map.contains_key(uid) {
            map.clear();
        }
        let known = map.entry(uid.to_owned()).or_default();
        for v in versions {
            if !known.contains(&v) {
                known.push(v);
            }
        }
    }

    /// True when `version` of `uid` was replaced by a write of this replica; otherwise the
    /// entry of `uid` is forgotten (a version it does not hold is the newer one).
    pub fn is_stale(&self, uid: &str, version: &str) -> bool {
        let mut map = self.map();
        match map.get(uid) {
            Some(known) if known.iter().any(|v| v == version) => true,
            Some(_) => {
                map.remove(uid);
                false
            }
            None => false,
        }
    }
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

/// Requeue after an error, with the code in the metrics.
pub fn error_policy(_p: Arc<Proposal>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    ctx.metrics.reconcile_errors.with_label_values(&[e.code()]).inc();
    if !matches!(e, ReconcileError::NotLeader) {
        tracing::warn!(code = e.code(), error = %e, "reconcile failed; retrying");
    }
    Action::requeue(Duration::from_secs(2))
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str, now: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now.into(),
    }
}

/// The ledger's name for a proposal managed by a Kubernetes object.
pub fn managed_by(p: &Proposal) -> String {
    synapsor_kube::managed_by(&p.namespace().unwrap_or_default(), &p.name_any())
}

/// The approvals of `p` whose webhook signature checks out for its uid and digest, not by the
/// Kubernetes user that created it. [`Quorum::of`] then counts one per person.
pub fn verified_approvals(p: &Proposal, key: &DecisionKey) -> Vec<Approval> {
    let ann: &BTreeMap<String, String> = p.annotations();
    let uid = p.uid().unwrap_or_default();
    let Some(proposer) = ann.get(ANNOTATION_PROPOSER).filter(|who| !who.trim().is_empty()) else {
        // The webhook stamps the proposer on create; without it no approval can be told apart
        // from the proposer's own.
        return Vec::new();
    };
    parse_approvals(ann.get(ANNOTATION_APPROVALS))
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            let verified = key.verify(&uid, &p.spec.digest, d);
            if !verified {
                tracing::warn!(proposal = %p.name_any(), user = %d.user, "ignoring an approval whose signature does not verify");
            }
            verified && !same_person(&d.user, proposer)
        })
        .map(|d| Approval {
            approver: d.user,
            approved_at: d.at,
        })
        .collect()
}

/// The status's record of the approvals that counted.
fn approval_statuses(quorum: &Quorum) -> Vec<ApprovalStatus> {
    quorum
        .approvals
        .iter()
        .map(|a| ApprovalStatus {
            user: a.approver.clone(),
            at: a.approved_at.clone(),
            verified: true,
        })
        .collect()
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
    /// The versions of the proposal this reconcile has seen: the one it read, then the one each
    /// of its writes returned. A successful write supersedes all of them.
    versions: std::sync::Mutex<Vec<String>>,
}

/// How long a reconcile of a stale version waits at most for the watch to bring the newer one
/// (it comes sooner: the write that replaced the version triggers a reconcile of its own).
const STALE_RECHECK: Duration = Duration::from_secs(5);

pub async fn reconcile(p: Arc<Proposal>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    if !*ctx.leading.borrow() {
        return Err(ReconcileError::NotLeader);
    }
    let version = p.resource_version().unwrap_or_default();
    if ctx.superseded.is_stale(&p.uid().unwrap_or_default(), &version) {
        return Ok(Action::requeue(STALE_RECHECK));
    }
    let status = p.status.clone().unwrap_or_default();
    let cs = p.spec.to_change_set();
    let verified = verified_approvals(&p, &ctx.key);
    let rejection = verified_rejection(&p, &ctx.key);
    let quorum = Quorum::of(&ctx.capabilities, &cs, &verified);
    let plan = plan_apply(&ctx.config, &ctx.capabilities, &cs, &verified);
    let step = decide(&Observed {
        status: &status,
        rejected: rejection.is_some(),
        quorum: &quorum,
        plan: plan.as_ref().map(|_| ()).map_err(Clone::clone),
        expires_at_ms: synapsor_core::time::parse_rfc3339_ms(&p.spec.expires_at),
        now_ms: ctx.clock.now_ms(),
    });
    if step == Step::Done {
        return Ok(Action::await_change());
    }
    let r = Reconciler {
        p: &p,
        ctx: &ctx,
        api: Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default()),
        id: cs.proposal_id.clone(),
        cs,
        versions: std::sync::Mutex::new(vec![version]),
    };
    r.carry_out(step, status, rejection, quorum, plan).await
}

impl Reconciler<'_> {
    /// Carries out one [`Step`] of [`decide`].
    async fn carry_out(
        &self,
        step: Step,
        status: ProposalStatus,
        rejection: Option<RejectionStatus>,
        quorum: Quorum,
        plan: Result<ApplyPlan<'_>, ApplyRefusal>,
    ) -> Result<Action, ReconcileError> {
        let (p, ctx) = (self.p, self.ctx);
        if let Step::Close(refusal) = &step {
            // Before the mirror: the spec itself may be what is wrong.
            return self.close_for_good(refusal.code(), &refusal.to_string()).await;
        }
        if let Err(action) = self.mirror().await? {
            return Ok(action);
        }
        match step {
            Step::Done | Step::Close(_) => Ok(Action::await_change()),
            Step::Reject => {
                let Some(rej) = rejection else {
                    return Ok(Action::await_change());
                };
                let (id, who, reason, at) = (self.id.clone(), rej.user.clone(), rej.reason.clone(), rej.at.clone());
                ctx.ledger
                    .with_store(move |s| {
                        let verified = synapsor_kube::kubernetes_identity(&who);
                        s.mirror_decision_as(
                            &id,
                            Decider {
                                name: &who,
                                verified: Some(&verified),
                            },
                            Some(&reason),
                            &at,
                        )
                    })
                    .await?;
                let message = format!("rejected by {}: {}", rej.user, rej.reason);
                let mut st = status;
                st.rejection = Some(rej);
                self.finish(st, Phase::Rejected, "Rejected", &message, None).await
            }
            Step::BackOff(wait) => Ok(Action::requeue(wait)),
            Step::Expire => {
                self.close(
                    Phase::Expired,
                    "Expired",
                    &format!("not applied before {}", p.spec.expires_at),
                )
                .await
            }
            Step::AwaitApprovals(wake) => {
                self.mirror_approvals(&quorum).await?;
                let summary = quorum.summary();
                let mut st = status;
                st.phase = Some(Phase::Pending);
                st.approvals = approval_statuses(&quorum);
                st.approvals_summary = Some(summary.clone());
                st.message = Some(format!("waiting for approvals ({summary})"));
                st.observed_generation = p.metadata.generation;
                if Some(&st) != p.status.as_ref() {
                    self.write_status(&st).await?;
                }
                // Wake up at expiry even if nothing else changes.
                Ok(Action::requeue(wake))
            }
            Step::Refuse(refusal) => {
                if status.phase != Some(Phase::Applying) {
                    self.mirror_approvals(&quorum).await?;
                }
                self.fail(status, refusal.code(), &refusal.to_string(), None).await
            }
            Step::Apply { resume } => {
                let Ok(plan) = plan else {
                    // decide() answers Apply only for a plan.
                    return Ok(Action::await_change());
                };
                if resume {
                    if let Err(action) = self.claim_resume().await? {
                        return Ok(action);
                    }
                    tracing::info!(proposal = %p.name_any(), "resuming an apply that was interrupted (same idempotency key)");
                } else {
                    self.mirror_approvals(&quorum).await?;
                    if let Err(action) = self.move_to_applying(&status, &quorum).await? {
                        return Ok(action);
                    }
                }
                self.apply(status, plan).await
            }
        }
    }

    /// Mirrors the proposal into the ledger (evidence and decisions are recorded against it).
    /// `Err(action)` when the proposal was closed instead.
    async fn mirror(&self) -> Result<Result<(), Action>, ReconcileError> {
        let (cs, by, at) = (self.cs.clone(), managed_by(self.p), self.now());
        // The evidence the sidecar published with the proposal (the ledger checks that it
        // belongs to this change set).
        let evidence: Option<EvidenceRecord> = self
            .p
            .spec
            .evidence_bundle
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        let mirrored = self
            .ctx
            .ledger
            .with_store(move |s| match s.mirror_proposal(&cs, &by, evidence.as_ref(), &at) {
                // Evidence that does not fit is not a reason to lose the proposal's record.
                Err(LedgerError::InvalidInput(why)) if evidence.is_some() => {
                    tracing::warn!(%why, "the Proposal's evidence bundle was not recorded");
                    s.mirror_proposal(&cs, &by, None, &at)
                }
                other => other,
            })
            .await;
        match mirrored {
            Ok(_) => Ok(Ok(())),
            Err(LedgerError::DigestMismatch { .. }) => self
                .close_for_good(
                    "PROPOSAL_ID_REUSED",
                    "the ledger holds another change set under this proposal id; nothing was applied",
                )
                .await
                .map(Err),
            Err(e) => Err(e.into()),
        }
    }

    async fn mirror_approvals(&self, quorum: &Quorum) -> Result<(), ReconcileError> {
        for a in &quorum.approvals {
            let (id, who, at) = (self.id.clone(), a.approver.clone(), a.approved_at.clone());
            self.ctx
                .ledger
                .with_store(move |s| {
                    let verified = synapsor_kube::kubernetes_identity(&who);
                    s.mirror_decision_as(
                        &id,
                        Decider {
                            name: &who,
                            verified: Some(&verified),
                        },
                        None,
                        &at,
                    )
                })
                .await?;
        }
        Ok(())
    }

    /// `Applying` (from `Pending`, `Approved` or a `Failed` attempt), with the `Approved`
    /// condition and the approvals that counted: a compare-and-set on the resourceVersion this
    /// reconcile read, so of two writers (or an approval and a rejection) only one gets through;
    /// then the same in the ledger (`approved`, then `applying`). One status write, not an
    /// `Approved` phase first: it would say nothing the condition does not, and each write is a
    /// request to the API server that every other approval of a burst waits behind.
    /// `Err(action)` when another writer won.
    async fn move_to_applying(
        &self,
        status: &ProposalStatus,
        quorum: &Quorum,
    ) -> Result<Result<(), Action>, ReconcileError> {
        let p = self.p;
        let phase = status.phase.unwrap_or(Phase::Pending);
        let summary = quorum.summary();
        let approved = condition(
            "Approved",
            true,
            "QuorumReached",
            &format!("{summary} verified approvals"),
            &self.now(),
        );
        let mut current = p.clone();
        let mut st = status.clone();
        st.phase = Some(Phase::Applying);
        st.approvals = approval_statuses(quorum);
        st.approvals_summary = Some(summary);
        st.message = Some("applying: written before any side effect".into());
        st.conditions = vec![approved];
        st.observed_generation = p.metadata.generation;
        st.next_attempt_at = None;
        current.status = Some(st);
        if let Err(action) = self.replace_status(&current).await? {
            tracing::info!(proposal = %p.name_any(), "proposal changed while moving to Applying; re-reading");
            return Ok(Err(action));
        }
        let (id, at, retry) = (self.id.clone(), self.now(), phase == Phase::Failed);
        self.ctx
            .ledger
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
        Ok(Ok(()))
    }

    /// Before resuming an apply found in `Applying`: a compare-and-set on the resourceVersion
    /// this reconcile read. The watch cache can lag behind this replica's own status writes, so
    /// the `Applying` seen may be an apply that has just finished; run again, it would replace
    /// the receipt in status and count a second apply. `Err(action)`
    /// (look again shortly) when the object changed since it was read.
    async fn claim_resume(&self) -> Result<Result<(), Action>, ReconcileError> {
        let mut current = self.p.clone();
        if let Some(st) = current.status.as_mut() {
            st.message = Some("applying: resuming an interrupted apply (same idempotency key)".into());
        }
        Ok(self.replace_status(&current).await?.map(|_| ()))
    }

    /// Replaces the status as a compare-and-set on `current`'s resourceVersion. `Err(action)`
    /// (look again shortly) when the object changed since it was read.
    async fn replace_status(&self, current: &Proposal) -> Result<Result<Proposal, Action>, ReconcileError> {
        match self
            .api
            .replace_status(&self.p.name_any(), &PostParams::default(), current)
            .await
        {
            Ok(updated) => {
                self.wrote(&updated);
                Ok(Ok(updated))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Err(Action::requeue(Duration::from_millis(200)))),
            Err(e) => Err(e.into()),
        }
    }

    async fn apply(&self, status: ProposalStatus, plan: ApplyPlan<'_>) -> Result<Action, ReconcileError> {
        let ctx = self.ctx;
        let started = std::time::Instant::now();
        // A Proposal reaches here without an applied receipt (Applied is final), so a write the
        // source's receipts table already holds under this proposal's key is its own: an
        // earlier attempt committed it and died, or lost the answer, before the status said so.
        let receipt = plan
            .executor
            .apply(plan.request(&self.cs, &*ctx.env, self.now(), false))
            .await
            .into_recovered_write();
        ctx.metrics.apply_seconds.observe(started.elapsed().as_secs_f64());
        ctx.metrics.applies.with_label_values(&[receipt.status.as_str()]).inc();
        let phase = phase_of(&receipt);
        self.record_receipt(&receipt).await?;
        let mut st = status;
        st.approvals = approval_statuses(&plan.quorum);
        st.approvals_summary = Some(plan.quorum.summary());
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

    fn now(&self) -> String {
        self.ctx.clock.now_rfc3339()
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
            let pause = retry_pause(self.ctx.retry_pause, st.attempts);
            let at = synapsor_core::time::format_rfc3339_ms(
                self.ctx.clock.now_ms() + i64::try_from(pause.as_millis()).unwrap_or(0),
            );
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
            Action::requeue(retry_pause(self.ctx.retry_pause, attempts))
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
        let at = self.now();
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

    /// Replaces the whole status with `st` (a JSON patch `add /status`). Not a merge patch: that
    /// would keep fields `st` leaves out, such as the failed attempt's `safe_error_code` inside
    /// the receipt or its `nextAttemptAt`, next to an `Applied` phase. Only for writes that need
    /// no compare-and-set: the ones that do use `replace_status`.
    async fn write_status(&self, st: &ProposalStatus) -> Result<(), ReconcileError> {
        let patch = json_patch::Patch(vec![json_patch::PatchOperation::Add(json_patch::AddOperation {
            path: json_patch::jsonptr::PointerBuf::from_tokens(["status"]),
            value: serde_json::to_value(st).unwrap_or(Value::Null),
        })]);
        let updated = self
            .api
            .patch_status(&self.p.name_any(), &PatchParams::default(), &Patch::Json::<()>(patch))
            .await?;
        self.wrote(&updated);
        Ok(())
    }

    /// After a successful status write that returned `updated`: every version seen before is
    /// stale now.
    fn wrote(&self, updated: &Proposal) {
        let mut versions = self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.ctx
            .superseded
            .record(&self.p.uid().unwrap_or_default(), versions.iter().cloned());
        if let Some(v) = updated.resource_version() {
            versions.push(v);
        }
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
        if phase != Phase::Failed {
            // A retried apply that ended: no next attempt is scheduled any more.
            st.next_attempt_at = None;
        }
        if let Some(r) = receipt {
            st.receipt = serde_json::to_value(r).ok();
        }
        st.conditions.retain(|c| c.type_ != "Applied");
        st.conditions.push(condition(
            "Applied",
            phase == Phase::Applied,
            reason,
            message,
            &self.now(),
        ));
        self.write_status(&st).await?;
        // The mirror may not exist yet when the spec itself was refused.
        let (id, at) = (self.id.clone(), self.now());
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

#[cfg(test)]
mod tests {
    use super::Superseded;

    #[test]
    fn a_version_this_replica_replaced_is_stale_until_a_newer_one_is_seen() {
        let s = Superseded::default();
        assert!(!s.is_stale("uid-1", "10"), "nothing recorded: nothing is stale");
        s.record("uid-1", ["10".to_owned()]);
        s.record("uid-1", ["10".to_owned(), "11".to_owned()]);
        assert!(s.is_stale("uid-1", "10"));
        assert!(s.is_stale("uid-1", "11"));
        assert!(!s.is_stale("uid-2", "10"), "per proposal");
        // The newer version (the write's own) is not stale, and seeing it forgets the entry.
        assert!(!s.is_stale("uid-1", "12"));
        assert!(!s.is_stale("uid-1", "10"));
    }

    #[test]
    fn the_record_stays_bounded() {
        let s = Superseded::default();
        for i in 0..Superseded::MAX_ENTRIES + 10 {
            s.record(&format!("uid-{i}"), [String::from("1")]);
        }
        assert!(s.map().len() <= Superseded::MAX_ENTRIES);
        let last = format!("uid-{}", Superseded::MAX_ENTRIES + 9);
        assert!(s.is_stale(&last, "1"), "the latest entries are kept");
    }
}
