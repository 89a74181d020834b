//! Local mode's apply: an approved proposal of the local ledger, through its reviewed executor.
//!
//! [`apply_proposal`] reads the proposal (the ledger re-verifies its digest), refuses what the
//! config disables, looks at the proposal's state, asks [`synapsor_executor::plan_apply`] (the
//! decision the controller makes too) for the capability, source, executor and quorum, moves the
//! proposal to `applying` with a compare-and-set, runs the executor and records the receipt and
//! the final state. Used by `synapsor-runner apply`, the review UI and the demo.
//!
//! Applies of one proposal are serialized across processes by an [`ApplyLock`]: a second
//! `apply` waits for the first and then reports `already_applied`. A proposal found in
//! `applying` with its lock free was left by an apply that died (killed, crashed, lost power);
//! it is resumed, and when the source's receipts table shows that the dead run committed, the
//! ledger records that write as this proposal's ([`Receipt::into_recovered_write`]).
//! [`recover_interrupted`] does that for every such proposal, at the start of each `apply`.
//!
//! What it is not: it prints nothing (the CLI renders [`Applied`]) and it never decides an
//! approval; proposals published to Kubernetes are refused here and decided by the controller.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapsor_core::capability;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::config::RunnerConfig;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_core::{ProposalState, ToolError};
use synapsor_executor::{ApplyRefusal, Approval, Env, Receipt, ReceiptStatus, check_writeback_enabled, plan_apply};
use synapsor_ledger::{LedgerError, LedgerStore, ProposalFilter, ProposalRecord, ReceiptRecord};

/// How long an apply waits for another apply of the same proposal to finish.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// The exclusive lock of one proposal's apply, held for as long as this value lives: a file
/// under `<ledger>.locks/` locked with the operating system's advisory lock, which the kernel
/// releases when the process ends, however it ends. So a proposal in `applying` whose lock is
/// free was left by an apply that is no longer running.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
}

impl ApplyLock {
    fn path(store_path: &Path, id: &str) -> PathBuf {
        let mut dir = store_path.as_os_str().to_owned();
        dir.push(".locks");
        // Ids are the runner's own (`wrp_<hex>`); anything else still maps to one file name.
        let name: String = id
            .chars()
            .take(120)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(dir).join(format!("{name}.lock"))
    }

    fn open(store_path: &Path, id: &str) -> std::io::Result<File> {
        let path = Self::path(store_path, id);
        if let Some(dir) = path.parent() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        OpenOptions::new().create(true).truncate(false).write(true).open(path)
    }

    /// Takes the lock, waiting up to [`LOCK_WAIT`] for another apply of `id` to finish.
    pub async fn acquire(store_path: &Path, id: &str) -> Result<ApplyLock, LocalApplyError> {
        let file = Self::open(store_path, id).map_err(|e| LocalApplyError::Lock {
            id: id.to_owned(),
            detail: e.to_string(),
        })?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ApplyLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(LocalApplyError::InProgress {
                        id: id.to_owned(),
                        current: ProposalState::Applying,
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(LocalApplyError::Lock {
                        id: id.to_owned(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }

    /// True when no apply of `id` is running now.
    fn is_free(store_path: &Path, id: &str) -> bool {
        Self::open(store_path, id).is_ok_and(|f| f.try_lock().is_ok())
    }
}

/// Why a local apply did not run (a refusal before any state change), or could not record what
/// it did. Each variant has a stable [`code`](LocalApplyError::code).
#[derive(Debug, thiserror::Error)]
pub enum LocalApplyError {
    #[error(transparent)]
    Refused(#[from] ApplyRefusal),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    ManagedElsewhere(#[from] ManagedElsewhere),
    /// The config's capabilities do not compile.
    #[error("{}", .0.message)]
    Capabilities(ToolError),
    #[error(
        "{id} is pending_review ({have} of {required} approvals); approve it first: synapsor-runner proposals approve {id}"
    )]
    PendingReview { id: String, have: usize, required: u32 },
    #[error("{id} is {state}; only approved proposals (or failed ones, to retry) can be applied")]
    NotApproved { id: String, state: ProposalState },
    #[error(
        "{id} is conflict: the row changed after it was proposed, so this proposal can never be applied; ask the agent to propose again on the current row"
    )]
    Conflict { id: String },
    #[error(
        "{id} is {current}: another apply of it is still running after {}s; nothing was changed. Run apply again once it has finished",
        LOCK_WAIT.as_secs()
    )]
    InProgress { id: String, current: ProposalState },
    /// The apply lock could not be taken (the ledger's folder is not writable).
    #[error("cannot take the apply lock of {id} next to the ledger: {detail}")]
    Lock { id: String, detail: String },
    /// The executor finished but the ledger could not record it.
    #[error(
        "{source}. Apply finished with {status} but the ledger could not record it: {}run `synapsor-runner apply {id}` again to record it (the source's receipts table keeps it from being written twice)",
        if *.source_changed { "the source change IS committed; " } else { "" }
    )]
    NotRecorded {
        source: LedgerError,
        id: String,
        status: ReceiptStatus,
        source_changed: bool,
    },
}

impl LocalApplyError {
    pub fn code(&self) -> &'static str {
        match self {
            LocalApplyError::Refused(r) => r.code(),
            LocalApplyError::Ledger(e) | LocalApplyError::NotRecorded { source: e, .. } => e.code(),
            LocalApplyError::ManagedElsewhere(_) => "PROPOSAL_MANAGED_EXTERNALLY",
            LocalApplyError::Capabilities(e) => e.code.as_str(),
            LocalApplyError::PendingReview { .. } | LocalApplyError::NotApproved { .. } => "PROPOSAL_NOT_APPROVED",
            LocalApplyError::Conflict { .. } => "PROPOSAL_CONFLICT",
            LocalApplyError::InProgress { .. } => "APPLY_IN_PROGRESS",
            LocalApplyError::Lock { .. } => "APPLY_LOCK_FAILED",
        }
    }
}

/// A proposal published to Kubernetes: its ledger row is a mirror, decided and applied there.
#[derive(Debug, thiserror::Error)]
#[error("{id} is managed by {by}, not by this ledger{hint}")]
pub struct ManagedElsewhere {
    id: String,
    by: String,
    hint: String,
}

/// Local approve, reject and apply refuse a proposal published to Kubernetes, before any prompt,
/// saying how to decide it there.
pub fn refuse_managed(rec: &ProposalRecord) -> Result<(), ManagedElsewhere> {
    let Some(by) = &rec.managed_by else { return Ok(()) };
    let hint = match by.strip_prefix("kubernetes:").and_then(|r| r.split_once("/Proposal/")) {
        Some((ns, name)) => format!(
            "; decide it with `kubectl -n {ns} annotate proposal/{name} runner.synapsor.ai/approve=true` (or runner.synapsor.ai/reject=<reason>); synapsor-controller applies it"
        ),
        None => String::new(),
    };
    Err(ManagedElsewhere {
        id: rec.change_set.proposal_id.clone(),
        by: by.clone(),
        hint,
    })
}

/// The outcome of [`apply_proposal`].
#[derive(Debug)]
pub struct Applied {
    pub receipt: Receipt,
    /// The proposal's state afterwards (unchanged by a dry run).
    pub state: ProposalState,
    pub change_set: ChangeSet,
    /// The approvers that counted, in order.
    pub approved_by: Vec<String>,
    pub required: usize,
}

/// The approvals of `rec` that count: bound to its digest and, when the capability names an
/// approval role (`role_required`), made by a verified operator (who showed the role then).
fn ledger_approvals(rec: &ProposalRecord, role_required: bool) -> Vec<Approval> {
    rec.approvals
        .iter()
        .filter(|a| a.decision == "approved" && a.digest == rec.change_set.digest)
        .filter(|a| !role_required || a.verified_identity.is_some())
        .map(|a| Approval {
            approver: a.approver.clone(),
            approved_at: a.created_at.clone(),
        })
        .collect()
}

/// Applies one approved proposal of the ledger at `store_path` through its reviewed executor:
/// the refusals that need no database, the compare-and-set to `applying`, the executor, the
/// receipt and the final state. `env` supplies writer URLs and handler secrets; `actor` is who
/// runs the apply (event actor).
pub async fn apply_proposal(
    cfg: &RunnerConfig,
    store_path: &Path,
    proposal: &str,
    dry_run: bool,
    env: &dyn Env,
    actor: &str,
) -> Result<Applied, LocalApplyError> {
    let caps = capability::compile(cfg).map_err(LocalApplyError::Capabilities)?;
    // Held to the end: one apply of a proposal at a time, across processes. A dry run writes
    // nothing and needs none.
    let _lock = if dry_run {
        None
    } else {
        Some(ApplyLock::acquire(store_path, proposal).await?)
    };
    let mut store = LedgerStore::open_existing(store_path)?;
    // The ledger re-verifies the digest on every read (PROPOSAL_DIGEST_MISMATCH otherwise).
    let rec = store.get_proposal(proposal)?;
    refuse_managed(&rec)?;
    let cs = rec.change_set.clone();
    let id = cs.proposal_id.clone();
    // A config that disables writeback says so whatever the proposal's state.
    check_writeback_enabled(cfg, &cs)?;
    let now = SystemClock.now_rfc3339();
    let role_required = !crate::cli::operator::required_roles(&cs, Some(cfg)).is_empty();
    let verified = ledger_approvals(&rec, role_required);
    let resume = match rec.state {
        ProposalState::Approved | ProposalState::Failed => false,
        // An earlier apply moved it to applying and died (it would hold the lock otherwise).
        // The source's receipt row makes running it again safe: if that run committed, the
        // executor reports already_applied and touches nothing.
        ProposalState::Applying => true,
        ProposalState::Applied => return already_applied(&store, &rec, &now, dry_run),
        ProposalState::Conflict => return Err(LocalApplyError::Conflict { id }),
        ProposalState::PendingReview => {
            let have = synapsor_executor::Quorum::of(&caps, &cs, &verified).approvals.len();
            return Err(LocalApplyError::PendingReview {
                id,
                have,
                required: cs.approval.required_approvals,
            });
        }
        state => return Err(LocalApplyError::NotApproved { id, state }),
    };
    let plan = plan_apply(cfg, &caps, &cs, &verified)?;
    let approved_by: Vec<String> = plan.quorum.approvals.iter().map(|a| a.approver.clone()).collect();
    let required = plan.quorum.required;

    if dry_run {
        let receipt = plan.executor.apply(plan.request(&cs, env, now, true)).await;
        return Ok(Applied {
            receipt,
            state: rec.state,
            change_set: cs,
            approved_by,
            required,
        });
    }

    if !resume {
        // Compare-and-set before touching the source: of two applies that both read
        // `approved`, only one gets here.
        match store.transition(
            &id,
            rec.state,
            ProposalState::Applying,
            actor,
            json!({"executor": plan.executor.name(), "retry": rec.state == ProposalState::Failed}),
            &now,
        ) {
            Ok(()) => {}
            Err(LedgerError::InvalidTransition { current, .. }) => {
                return Err(LocalApplyError::InProgress { id, current });
            }
            Err(e) => return Err(e.into()),
        }
    }

    let mut receipt = plan.executor.apply(plan.request(&cs, env, now, false)).await;
    if !has_applied_receipt(&store, &id)? {
        // An earlier run committed and never recorded it (it died, or lost the database's
        // answer and recorded a failure): the write is this proposal's.
        receipt = receipt.into_recovered_write();
    }
    let state = record(&mut store, &cs, &receipt, actor)?;
    Ok(Applied {
        receipt,
        state,
        change_set: cs,
        approved_by,
        required,
    })
}

fn has_applied_receipt(store: &LedgerStore, id: &str) -> Result<bool, LocalApplyError> {
    Ok(store.receipts_for(id)?.iter().any(|r| r.status == "applied"))
}

/// Resumes every proposal of the ledger that an apply left in `applying` and that no apply is
/// running now: the ledger is reconciled with the source's receipts table, so nothing stays in
/// `applying` for a person to clean up and a write that committed is recorded as the proposal's.
/// `skip` names the proposal the caller applies itself; `may_apply` says whether this caller may
/// resume a proposal (a capability with an approval role needs its operator: those are left, and
/// listed, for an apply with the token). Returns what each resumed apply did.
pub async fn recover_interrupted(
    cfg: &RunnerConfig,
    store_path: &Path,
    env: &dyn Env,
    actor: &str,
    skip: Option<&str>,
    may_apply: impl Fn(&ChangeSet) -> bool,
) -> Result<Vec<Recovery>, LocalApplyError> {
    let store = LedgerStore::open_existing(store_path)?;
    let stuck = store.list_proposals(&ProposalFilter {
        state: Some(ProposalState::Applying),
        ..ProposalFilter::default()
    })?;
    let mut done = Vec::new();
    for p in stuck {
        let id = p.proposal_id;
        // Running right now (it records its own receipt), or the caller's own.
        if skip == Some(id.as_str()) || !ApplyLock::is_free(store_path, &id) {
            continue;
        }
        if !may_apply(&store.get_proposal(&id)?.change_set) {
            done.push(Recovery { id, outcome: None });
            continue;
        }
        let outcome = apply_proposal(cfg, store_path, &id, false, env, actor).await;
        done.push(Recovery {
            id,
            outcome: Some(outcome),
        });
    }
    Ok(done)
}

/// One proposal [`recover_interrupted`] found left in `applying`.
#[derive(Debug)]
pub struct Recovery {
    pub id: String,
    /// What resuming it did; `None` when this caller may not resume it.
    pub outcome: Option<Result<Applied, LocalApplyError>>,
}

/// Records the receipt in the ledger and moves the proposal out of `applying`.
fn record(
    store: &mut LedgerStore,
    cs: &ChangeSet,
    receipt: &Receipt,
    actor: &str,
) -> Result<ProposalState, LocalApplyError> {
    let id = &cs.proposal_id;
    let not_recorded = |source: LedgerError| LocalApplyError::NotRecorded {
        source,
        id: id.clone(),
        status: receipt.status,
        source_changed: receipt.source_database_mutated,
    };
    let now = SystemClock.now_rfc3339();
    store
        .record_attempt_receipt(&ReceiptRecord {
            proposal_id: id.clone(),
            idempotency_key: receipt.idempotency_key.clone(),
            status: receipt.status.as_str().to_owned(),
            rows_affected: receipt.rows_affected,
            safe_error_code: receipt.safe_error_code.clone(),
            receipt: serde_json::to_value(receipt).unwrap_or(Value::Null),
            created_at: now.clone(),
        })
        .map_err(not_recorded)?;
    let target = match receipt.status {
        ReceiptStatus::Applied | ReceiptStatus::AlreadyApplied => ProposalState::Applied,
        ReceiptStatus::Conflict => ProposalState::Conflict,
        ReceiptStatus::Failed | ReceiptStatus::WouldApply => ProposalState::Failed,
    };
    let payload = json!({
        "receipt_status": receipt.status.as_str(),
        "receipt_hash": receipt.receipt_hash,
        "safe_error_code": receipt.safe_error_code,
        "idempotency_key": receipt.idempotency_key,
    });
    match store.transition(id, ProposalState::Applying, target, actor, payload.clone(), &now) {
        Ok(()) => Ok(target),
        // Another apply of the same proposal finished first.
        Err(LedgerError::InvalidTransition { current, .. }) => {
            if current == ProposalState::Failed && target == ProposalState::Applied {
                store
                    .transition(
                        id,
                        ProposalState::Failed,
                        ProposalState::Applying,
                        actor,
                        payload.clone(),
                        &now,
                    )
                    .and_then(|()| {
                        store.transition(
                            id,
                            ProposalState::Applying,
                            ProposalState::Applied,
                            actor,
                            payload,
                            &now,
                        )
                    })
                    .map_err(not_recorded)?;
                return Ok(ProposalState::Applied);
            }
            Ok(current)
        }
        Err(e) => Err(not_recorded(e)),
    }
}

/// `apply` on an applied proposal: the ledger holds its receipt; the source is not touched.
fn already_applied(
    store: &LedgerStore,
    rec: &ProposalRecord,
    now: &str,
    dry_run: bool,
) -> Result<Applied, LocalApplyError> {
    let cs = &rec.change_set;
    let receipts = store.receipts_for(&cs.proposal_id)?;
    let applied = receipts
        .iter()
        .rev()
        .find(|r| r.status == "applied" || r.status == "already_applied");
    let mut r = Receipt::new(cs, &cs.writeback.executor, now, dry_run);
    r.status = ReceiptStatus::AlreadyApplied;
    r.message = "already applied: the ledger holds its receipt; the source was not touched again".into();
    r.applied_receipt_hash = applied.and_then(|a| a.receipt.get("receipt_hash")?.as_str().map(str::to_owned));
    r.check(
        "ledger",
        true,
        match applied {
            Some(a) => format!("applied receipt recorded at {}", a.created_at),
            None => "the proposal is applied".to_owned(),
        },
    );
    let approved_by = synapsor_core::approval::distinct_approvers(
        ledger_approvals(rec, false).into_iter().map(|a| a.approver),
        &cs.principal.id,
        |a| a.as_str(),
    );
    Ok(Applied {
        receipt: r.seal(),
        state: rec.state,
        change_set: cs.clone(),
        approved_by,
        required: cs.approval.required_approvals as usize,
    })
}
