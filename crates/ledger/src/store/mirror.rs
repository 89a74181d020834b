//! Mirrors of proposals managed elsewhere (a Kubernetes `Proposal` the controller owns): marking a
//! local proposal as published, and recording the proposals, decisions and states that the store
//! of record reports.

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use synapsor_core::{ChangeSet, ProposalState};

use super::lifecycle::insert_evidence;
use super::{
    LedgerStore, check_ts, insert_decision, insert_event, insert_proposal_row, load_verified, non_empty,
    payload_object, reject_secrets, set_state, to_json, validate_change_set,
};
use crate::error::{LedgerError, Result};
use crate::records::Decider;
use crate::records::EvidenceRecord;

impl LedgerStore {
    /// Marks a recorded proposal as published to another store of record (`by`, e.g.
    /// `kubernetes:<ns>/Proposal/<name>`), with a `proposal_published` event the first time.
    /// From then on local approve, reject and apply refuse it (`PROPOSAL_MANAGED_EXTERNALLY`)
    /// and its state follows [`mirror_state`](Self::mirror_state). Publishing again to the same
    /// place is a no-op (false); to another place is `INVALID_INPUT`.
    pub fn set_managed_by(&mut self, id: &str, by: &str, now: &str) -> Result<bool> {
        check_ts("now", now)?;
        let by = non_empty("managed_by", by)?;
        let tx = self.immediate()?;
        let rec = load_verified(&tx, id)?;
        match rec.managed_by.as_deref() {
            Some(current) if current == by => return Ok(false),
            Some(current) => {
                return Err(LedgerError::InvalidInput(format!(
                    "{id} is already managed by {current}"
                )));
            }
            None => {}
        }
        tx.execute(
            "UPDATE proposals SET managed_by = ?2, updated_at = ?3 WHERE proposal_id = ?1 AND managed_by IS NULL",
            params![id, by, now],
        )?;
        insert_event(&tx, id, "proposal_published", "runner", &json!({"managed_by": by}), now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Records the mirror of a change set managed by `by` (a ledger that did not create it: the
    /// controller's, or a sidecar's after its pod was replaced), with the evidence bundle it was
    /// built from when the store of record kept it: inserted in `pending_review` with a
    /// `proposal_created` event, or nothing when that id is already recorded (false). A recorded
    /// id with another digest is `DIGEST_MISMATCH`; a change set whose digest does not match its
    /// content, or evidence of another proposal, tenant or capability, is `INVALID_INPUT`.
    pub fn mirror_proposal(
        &mut self,
        cs: &ChangeSet,
        by: &str,
        evidence: Option<&EvidenceRecord>,
        now: &str,
    ) -> Result<bool> {
        check_ts("now", now)?;
        let by = non_empty("managed_by", by)?;
        validate_change_set(cs)?;
        reject_secrets("change set", &to_json(cs)?)?;
        let evidence = match evidence {
            None => None,
            Some(e) => {
                if e.evidence_bundle_id != cs.evidence.bundle_id
                    || e.proposal_id.as_deref().is_some_and(|p| p != cs.proposal_id)
                    || e.tenant_id != cs.scope.tenant_id
                    || e.capability != cs.action
                {
                    return Err(LedgerError::InvalidInput(
                        "the evidence bundle does not belong to this change set".into(),
                    ));
                }
                check_ts("evidence created_at", &e.created_at)?;
                reject_secrets("evidence", &to_json(e)?)?;
                Some(EvidenceRecord {
                    proposal_id: Some(cs.proposal_id.clone()),
                    ..e.clone()
                })
            }
        };
        let tx = self.immediate()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT digest FROM proposals WHERE proposal_id = ?1",
                [&cs.proposal_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(digest) = existing {
            if digest != cs.digest {
                return Err(LedgerError::DigestMismatch {
                    id: cs.proposal_id.clone(),
                    expected: cs.digest.clone(),
                    actual: digest,
                });
            }
            return Ok(false);
        }
        let cs_json = serde_json::to_string(cs)
            .map_err(|_| LedgerError::InvalidInput("the change set could not be encoded".into()))?;
        insert_proposal_row(&tx, cs, &cs_json, ProposalState::PendingReview, now, Some(by))?;
        if let Some(e) = &evidence {
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM evidence_bundles WHERE evidence_bundle_id = ?1",
                    [&e.evidence_bundle_id],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                insert_evidence(&tx, e)?;
            }
        }
        insert_event(
            &tx,
            &cs.proposal_id,
            "proposal_created",
            &cs.principal.id,
            &json!({"digest": cs.digest, "mode": cs.mode, "managed_by": by}),
            now,
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Moves a mirrored proposal to the state its store of record reports, with a
    /// `proposal_state_changed` event (`payload` plus `from`, `to`, `managed_by`). Mirrors may
    /// skip states they never saw (a watch can miss an intermediate one), so any move is taken
    /// except out of a terminal state; the same state again is a no-op (false).
    pub fn mirror_state(
        &mut self,
        id: &str,
        to: ProposalState,
        actor: &str,
        payload: Value,
        now: &str,
    ) -> Result<bool> {
        check_ts("now", now)?;
        let actor = non_empty("actor", actor)?;
        let mut payload = payload_object(payload)?;
        let tx = self.immediate()?;
        let rec = load_verified(&tx, id)?;
        let Some(by) = rec.managed_by.clone() else {
            return Err(LedgerError::InvalidInput(format!(
                "{id} is a local proposal; only mirrors of published proposals follow another store"
            )));
        };
        if rec.state == to || rec.state.is_terminal() {
            return Ok(false);
        }
        payload.insert("from".into(), Value::String(rec.state.as_str().into()));
        payload.insert("to".into(), Value::String(to.as_str().into()));
        payload.insert("managed_by".into(), Value::String(by));
        let payload = Value::Object(payload);
        reject_secrets("event payload", &payload)?;
        set_state(&tx, id, rec.state, to, now)?;
        insert_event(&tx, id, "proposal_state_changed", actor, &payload, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Records a decision made in the store of record of a mirrored proposal: an approval
    /// (`reason` None) or a rejection, by a verified `who` at `at`, bound to the stored digest.
    /// Recording the same decision by the same person again is a no-op (false).
    pub fn mirror_decision(&mut self, id: &str, who: &str, rejection: Option<&str>, at: &str) -> Result<bool> {
        self.mirror_decision_as(id, Decider::unverified(who), rejection, at)
    }

    /// [`LedgerStore::mirror_decision`] with the identity the store of record verified (for a
    /// Kubernetes `Proposal`: the user the API server authenticated).
    pub fn mirror_decision_as(&mut self, id: &str, by: Decider<'_>, rejection: Option<&str>, at: &str) -> Result<bool> {
        check_ts("at", at)?;
        let who = non_empty("approver", by.name)?;
        let tx = self.immediate()?;
        let rec = load_verified(&tx, id)?;
        if rec.managed_by.is_none() {
            return Err(LedgerError::InvalidInput(format!(
                "{id} is a local proposal; approve or reject it with the local commands"
            )));
        }
        let decision = if rejection.is_some() { "rejected" } else { "approved" };
        if rec
            .approvals
            .iter()
            .any(|a| a.approver == who && a.decision == decision)
        {
            return Ok(false);
        }
        if let Some(r) = rejection {
            reject_secrets("rejection reason", &Value::String(r.to_owned()))?;
        }
        let digest = rec.change_set.digest.clone();
        insert_decision(&tx, id, Decider { name: who, ..by }, decision, &digest, rejection, at)?;
        let kind = if rejection.is_some() {
            "proposal_rejected"
        } else {
            "proposal_approved"
        };
        insert_event(
            &tx,
            id,
            kind,
            who,
            &json!({"digest": digest, "reason": rejection, "managed_by": rec.managed_by, "verified": by.verified.is_some()}),
            at,
        )?;
        tx.commit()?;
        Ok(true)
    }
}
