//! The lifecycle of a local proposal, write side: recording reads (evidence and query audit) and
//! proposals, approvals and rejections, and compare-and-set state transitions.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use synapsor_core::approval::{distinct_approvers, required_approvals, same_person};
use synapsor_core::{ChangeSet, ProposalState};

use super::{
    LedgerStore, check_ts, insert_decision, insert_event, insert_proposal_row, load, load_verified, non_empty,
    payload_object, proposal_exists, reject_secrets, require_proposal, set_state, to_json, validate_change_set,
};
use crate::error::{LedgerError, Result};
use crate::records::{Decider, EvidenceRecord, ProposalInsert, ProposalRecord, QueryAuditRecord};

impl LedgerStore {
    // ---------------------------------------------------------------- reads and proposals

    /// Records the evidence and query audit of one read, in one transaction. The audit row is
    /// linked to the evidence bundle; when the evidence names a proposal it must exist.
    pub fn record_read(&mut self, evidence: &EvidenceRecord, audit: &QueryAuditRecord) -> Result<()> {
        let read = ReadRecord::prepare(evidence.clone(), audit)?;
        let tx = self.immediate()?;
        write_read(&tx, read)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a query audit row on its own, for queries that found no row or failed. A named
    /// evidence bundle or proposal must exist.
    pub fn record_query_audit(&mut self, audit: &QueryAuditRecord) -> Result<()> {
        let audit = AuditRecord::prepare(audit.clone())?;
        let tx = self.immediate()?;
        write_query_audit(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a proposal with the evidence and query audit of the read behind it, in one
    /// transaction.
    ///
    /// - A change set whose digest does not match its content is refused (`INVALID_INPUT`).
    /// - When a proposal with the same digest is open (`pending_review` or `shadow`), nothing new
    ///   is created: the evidence and audit are linked to that proposal, a
    ///   `proposal_requested_again` event is appended and `Existing` is returned.
    /// - Otherwise the proposal is stored as `pending_review` (`shadow` for shadow mode) with
    ///   `proposal_created` and `evidence_recorded` events. If its id is taken (deterministic ids
    ///   repeat once the earlier proposal is closed) `-2`, `-3`, ... is appended; the final id is
    ///   written into the stored change set (ids are not part of the digest).
    ///
    /// The evidence and audit rows are always linked to the final proposal id, whatever
    /// `proposal_id` they carried.
    pub fn record_proposal(
        &mut self,
        evidence: &EvidenceRecord,
        audit: &QueryAuditRecord,
        cs: &ChangeSet,
    ) -> Result<ProposalInsert> {
        let proposal = ProposalJob::prepare(evidence.clone(), audit, cs.clone())?;
        let tx = self.immediate()?;
        let out = write_proposal(&tx, proposal)?;
        tx.commit()?;
        Ok(out)
    }

    // ---------------------------------------------------------------- decisions and state

    /// Approves a pending proposal, bound to the digest the approver reviewed.
    ///
    /// Refuses: a proposal not in `pending_review` (`INVALID_TRANSITION`), a digest other than
    /// the stored one (`DIGEST_MISMATCH`), the proposing principal (`SELF_APPROVAL_FORBIDDEN`,
    /// compared trimmed and case-insensitively) and a second approval by the same approver
    /// (`ALREADY_DECIDED`). The proposal becomes `approved` once it has
    /// `approval.required_approvals` distinct approvers, else it stays pending. `id` is an exact
    /// id: resolve `latest` with [`get_proposal`](Self::get_proposal) and pass its digest.
    pub fn approve(
        &mut self,
        id: &str,
        expected_digest: &str,
        approver: &str,
        reason: Option<&str>,
        now: &str,
    ) -> Result<ProposalRecord> {
        self.approve_as(id, expected_digest, Decider::unverified(approver), reason, now)
    }

    /// [`LedgerStore::approve`] by a decider whose identity may have been verified; a verified
    /// decider whose token names the proposer (same issuer and subject) is refused too.
    pub fn approve_as(
        &mut self,
        id: &str,
        expected_digest: &str,
        by: Decider<'_>,
        reason: Option<&str>,
        now: &str,
    ) -> Result<ProposalRecord> {
        check_ts("now", now)?;
        let approver = non_empty("approver", by.name)?;
        if let Some(r) = reason {
            reject_secrets("approval reason", &Value::String(r.to_owned()))?;
        }
        let tx = self.immediate()?;
        let rec = load_verified(&tx, id)?;
        let id = rec.change_set.proposal_id.clone();
        refuse_managed(&rec)?;
        if rec.state != ProposalState::PendingReview {
            return Err(LedgerError::InvalidTransition {
                id,
                current: rec.state,
                requested: ProposalState::Approved,
                expected: None,
            });
        }
        let digest = rec.change_set.digest.clone();
        if expected_digest != digest {
            return Err(LedgerError::DigestMismatch {
                id,
                expected: expected_digest.to_owned(),
                actual: digest,
            });
        }
        let same_token_subject = match (by.verified, &rec.change_set.identity) {
            (Some(v), Some(p)) => v.issuer == p.issuer && same_person(&v.subject, &p.subject),
            _ => false,
        };
        if same_person(approver, &rec.change_set.principal.id) || same_token_subject {
            return Err(LedgerError::SelfApprovalForbidden {
                id,
                approver: approver.to_owned(),
            });
        }
        let approvers = distinct_approvers(
            rec.approvals
                .iter()
                .filter(|a| a.decision == "approved" && a.digest == digest)
                .map(|a| a.approver.as_str()),
            &rec.change_set.principal.id,
            |a| a,
        );
        if approvers.iter().any(|p| same_person(p, approver)) {
            return Err(LedgerError::AlreadyDecided {
                id,
                approver: approver.to_owned(),
            });
        }
        insert_decision(
            &tx,
            &id,
            Decider { name: approver, ..by },
            "approved",
            &digest,
            reason,
            now,
        )?;
        let approvals = approvers.len() + 1;
        // The change set's own requirement: the apply plan raises it to the current config's.
        let required = required_approvals(rec.change_set.approval.required_approvals, None);
        insert_event(
            &tx,
            &id,
            "proposal_approved",
            approver,
            &json!({"digest": digest, "approvals": approvals, "required": required, "reason": reason, "verified": by.verified.is_some()}),
            now,
        )?;
        if approvals >= required {
            set_state(&tx, &id, ProposalState::PendingReview, ProposalState::Approved, now)?;
            insert_event(
                &tx,
                &id,
                "proposal_state_changed",
                approver,
                &json!({"from": "pending_review", "to": "approved", "approvals": approvals, "required": required}),
                now,
            )?;
        } else {
            tx.execute(
                "UPDATE proposals SET updated_at = ?2 WHERE proposal_id = ?1",
                params![id, now],
            )?;
        }
        let out = load_verified(&tx, &id)?;
        tx.commit()?;
        Ok(out)
    }

    /// Rejects a proposal (from `pending_review`, `approved`, `shadow` or `failed`); a reason is
    /// required. A proposal whose digest check fails can still be rejected. `id` is exact.
    pub fn reject(&mut self, id: &str, approver: &str, reason: &str, now: &str) -> Result<ProposalRecord> {
        self.reject_as(id, Decider::unverified(approver), reason, now)
    }

    /// [`LedgerStore::reject`] by a decider whose identity may have been verified.
    pub fn reject_as(&mut self, id: &str, by: Decider<'_>, reason: &str, now: &str) -> Result<ProposalRecord> {
        check_ts("now", now)?;
        let approver = non_empty("approver", by.name)?;
        let reason = non_empty("reason", reason)?;
        reject_secrets("rejection reason", &Value::String(reason.to_owned()))?;
        let tx = self.immediate()?;
        let (rec, _) = load(&tx, id)?;
        let id = rec.change_set.proposal_id.clone();
        refuse_managed(&rec)?;
        let from = rec.state;
        if !from.can_move_to(ProposalState::Rejected) {
            return Err(LedgerError::InvalidTransition {
                id,
                current: from,
                requested: ProposalState::Rejected,
                expected: None,
            });
        }
        let digest: String = tx.query_row("SELECT digest FROM proposals WHERE proposal_id = ?1", [&id], |r| {
            r.get(0)
        })?;
        insert_decision(
            &tx,
            &id,
            Decider { name: approver, ..by },
            "rejected",
            &digest,
            Some(reason),
            now,
        )?;
        set_state(&tx, &id, from, ProposalState::Rejected, now)?;
        insert_event(
            &tx,
            &id,
            "proposal_rejected",
            approver,
            &json!({"digest": digest, "reason": reason, "from": from.as_str(), "to": "rejected", "verified": by.verified.is_some()}),
            now,
        )?;
        let (out, _) = load(&tx, &id)?;
        tx.commit()?;
        Ok(out)
    }

    /// Compare-and-set state change `from -> to`, with a `proposal_state_changed` event whose
    /// payload is `payload` (an object or null) plus `from` and `to`.
    ///
    /// `INVALID_TRANSITION` when the state machine forbids `from -> to` or the proposal is not in
    /// `from` (someone else moved it). Moving to `approved` is only possible through
    /// [`approve`](Self::approve) (`INVALID_INPUT`). Moving to `applying` re-checks the digest.
    pub fn transition(
        &mut self,
        id: &str,
        from: ProposalState,
        to: ProposalState,
        actor: &str,
        payload: Value,
        now: &str,
    ) -> Result<()> {
        check_ts("now", now)?;
        let actor = non_empty("actor", actor)?;
        if to == ProposalState::Approved {
            return Err(LedgerError::InvalidInput(
                "a proposal becomes approved only through an approval".into(),
            ));
        }
        let mut payload = payload_object(payload)?;
        payload.insert("from".into(), Value::String(from.as_str().into()));
        payload.insert("to".into(), Value::String(to.as_str().into()));
        let payload = Value::Object(payload);
        reject_secrets("event payload", &payload)?;

        let tx = self.immediate()?;
        let (rec, intact) = load(&tx, id)?;
        let id = rec.change_set.proposal_id.clone();
        refuse_managed(&rec)?;
        if rec.state != from {
            return Err(LedgerError::InvalidTransition {
                id,
                current: rec.state,
                requested: to,
                expected: Some(from),
            });
        }
        if !from.can_move_to(to) {
            return Err(LedgerError::InvalidTransition {
                id,
                current: rec.state,
                requested: to,
                expected: None,
            });
        }
        if to == ProposalState::Applying && !intact {
            return Err(LedgerError::ProposalDigestMismatch { id });
        }
        set_state(&tx, &id, from, to, now)?;
        insert_event(&tx, &id, "proposal_state_changed", actor, &payload, now)?;
        tx.commit()?;
        Ok(())
    }
}

// -------------------------------------------------------------------- records, prepared

/// One write of `record_read`, `record_query_audit` or `record_proposal`, validated, scanned for
/// secrets and encoded before any transaction: [`LedgerStore::record_batch`] runs several in one
/// transaction, and the async handle prepares them on the caller's task, so that the one writer
/// thread spends its time in SQLite.
// Reads, the common job, stay unboxed: an allocation per tool call to save a few hundred bytes
// of a queue slot is a poor trade.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum RecordJob {
    Read(ReadRecord),
    QueryAudit(AuditRecord),
    /// Boxed: a change set is several times the size of a read.
    Proposal(Box<ProposalJob>),
}

/// What a [`RecordJob`] did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Recorded {
    Read,
    QueryAudit,
    Proposal(ProposalInsert),
}

impl RecordJob {
    pub(crate) fn read(evidence: EvidenceRecord, audit: &QueryAuditRecord) -> Result<Self> {
        ReadRecord::prepare(evidence, audit).map(RecordJob::Read)
    }

    pub(crate) fn query_audit(audit: QueryAuditRecord) -> Result<Self> {
        AuditRecord::prepare(audit).map(RecordJob::QueryAudit)
    }

    pub(crate) fn proposal(evidence: EvidenceRecord, audit: &QueryAuditRecord, cs: ChangeSet) -> Result<Self> {
        ProposalJob::prepare(evidence, audit, cs).map(|p| RecordJob::Proposal(Box::new(p)))
    }

    /// The job's rows, on `conn`: a transaction, or a savepoint inside one.
    pub(super) fn write(self, conn: &Connection) -> Result<Recorded> {
        match self {
            RecordJob::Read(r) => write_read(conn, r).map(|()| Recorded::Read),
            RecordJob::QueryAudit(a) => write_query_audit(conn, a).map(|()| Recorded::QueryAudit),
            RecordJob::Proposal(p) => write_proposal(conn, *p).map(Recorded::Proposal),
        }
    }
}

/// The evidence and query audit of one read, ready to insert.
#[derive(Debug)]
pub(crate) struct ReadRecord {
    /// Without its items: they were moved into `items_json`.
    evidence: EvidenceRecord,
    items_json: String,
    item_count: usize,
    /// Linked to the evidence bundle (and to the evidence's proposal, for a plain read).
    audit: QueryAuditRecord,
}

impl ReadRecord {
    /// The checks `record_read` makes before its transaction, in the order it always made them.
    fn prepare(evidence: EvidenceRecord, audit: &QueryAuditRecord) -> Result<Self> {
        validate_evidence(&evidence)?;
        validate_audit(audit)?;
        let audit = link_audit(audit, &evidence, evidence.proposal_id.as_deref())?;
        let (evidence, items_json, item_count) = encode_evidence(evidence)?;
        reject_secrets("query audit", &to_json(&audit)?)?;
        Ok(ReadRecord {
            evidence,
            items_json,
            item_count,
            audit,
        })
    }

    /// Links both rows to proposal `id`, whatever proposal they named.
    fn link_to(&mut self, id: &str) {
        self.evidence.proposal_id = Some(id.to_owned());
        self.audit.proposal_id = Some(id.to_owned());
    }

    /// Inserts the evidence bundle, then the audit row linked to it.
    fn insert(&self, conn: &Connection) -> Result<()> {
        insert_evidence_row(conn, &self.evidence, &self.items_json)?;
        insert_audit(conn, &self.audit)
    }
}

/// A query audit row on its own, ready to insert.
#[derive(Debug)]
pub(crate) struct AuditRecord(QueryAuditRecord);

impl AuditRecord {
    fn prepare(audit: QueryAuditRecord) -> Result<Self> {
        validate_audit(&audit)?;
        reject_secrets("query audit", &to_json(&audit)?)?;
        Ok(AuditRecord(audit))
    }
}

/// A proposal with the read behind it, ready to insert.
#[derive(Debug)]
pub(crate) struct ProposalJob {
    read: ReadRecord,
    cs: ChangeSet,
    /// `change_set_json` for the change set's own id, encoded from the tree the secret scan
    /// walked.
    cs_json: String,
}

impl ProposalJob {
    /// The checks `record_proposal` makes before its transaction, in the order it always made
    /// them.
    fn prepare(evidence: EvidenceRecord, audit: &QueryAuditRecord, cs: ChangeSet) -> Result<Self> {
        validate_change_set(&cs)?;
        validate_evidence(&evidence)?;
        validate_audit(audit)?;
        if evidence.tenant_id != cs.scope.tenant_id || audit.tenant_id != cs.scope.tenant_id {
            return Err(LedgerError::InvalidInput(
                "the evidence and query audit must belong to the proposal's tenant".into(),
            ));
        }
        // Link to the base id for the secret scan; the final id is set in the transaction.
        let audit = link_audit(audit, &evidence, None)?;
        let tree = to_json(&cs)?;
        reject_secrets("change set", &tree)?;
        let cs_json = encode_change_set(&tree)?;
        let (evidence, items_json, item_count) = encode_evidence(evidence)?;
        reject_secrets("query audit", &to_json(&audit)?)?;
        Ok(ProposalJob {
            read: ReadRecord {
                evidence,
                items_json,
                item_count,
                audit,
            },
            cs,
            cs_json,
        })
    }
}

/// Scans an evidence record for secrets and encodes its `items_json` column from one JSON tree:
/// the items (JSON values already) are moved into the tree the scan needs instead of being
/// deep-copied into it, as `to_json(&record)` did, and the column is encoded from that same
/// tree. With serde_json's `preserve_order` (a workspace feature) the tree keeps the record's
/// field order, so the scan reports the same path and the column holds the same bytes as
/// encoding `items` directly.
fn encode_evidence(mut e: EvidenceRecord) -> Result<(EvidenceRecord, String, usize)> {
    let items = std::mem::take(&mut e.items);
    let item_count = items.len();
    let mut tree = to_json(&e)?;
    let Some(slot) = tree.get_mut("items") else {
        return Err(LedgerError::InvalidInput("evidence items could not be encoded".into()));
    };
    *slot = Value::Array(items);
    reject_secrets("evidence", &tree)?;
    let items_json = serde_json::to_string(&tree["items"])
        .map_err(|_| LedgerError::InvalidInput("evidence items could not be encoded".into()))?;
    Ok((e, items_json, item_count))
}

fn encode_change_set(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|_| LedgerError::InvalidInput("the change set could not be encoded".into()))
}

// -------------------------------------------------------------------- write bodies
//
// Each takes a `&Connection` that is inside a transaction (rusqlite's `Transaction` and
// `Savepoint` deref to one) and leaves committing to its caller.

fn write_read(conn: &Connection, r: ReadRecord) -> Result<()> {
    if let Some(pid) = &r.evidence.proposal_id {
        require_proposal(conn, pid)?;
    }
    r.insert(conn)
}

fn write_query_audit(conn: &Connection, AuditRecord(audit): AuditRecord) -> Result<()> {
    if let Some(eid) = &audit.evidence_bundle_id {
        let found: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM evidence_bundles WHERE evidence_bundle_id = ?1")?
            .query_row([eid], |r| r.get(0))
            .optional()?;
        if found.is_none() {
            return Err(LedgerError::EvidenceNotFound { id: eid.clone() });
        }
    }
    if let Some(pid) = &audit.proposal_id {
        require_proposal(conn, pid)?;
    }
    insert_audit(conn, &audit)
}

fn write_proposal(conn: &Connection, p: ProposalJob) -> Result<ProposalInsert> {
    let ProposalJob {
        mut read,
        mut cs,
        mut cs_json,
    } = p;
    let open: Option<String> = conn
        .prepare_cached(
            "SELECT proposal_id FROM proposals
             WHERE digest = ?1 AND state IN ('pending_review', 'shadow')
             ORDER BY created_at, rowid LIMIT 1",
        )?
        .query_row([&cs.digest], |r| r.get(0))
        .optional()?;

    if let Some(existing_id) = open {
        let record = load_verified(conn, &existing_id)?;
        read.link_to(&existing_id);
        read.insert(conn)?;
        insert_event(
            conn,
            &existing_id,
            "proposal_requested_again",
            &cs.principal.id,
            &json!({
                "digest": cs.digest,
                "evidence_bundle_id": read.evidence.evidence_bundle_id,
                "item_count": read.item_count,
            }),
            &read.evidence.created_at,
        )?;
        return Ok(ProposalInsert::Existing(Box::new(record)));
    }

    let final_id = free_proposal_id(conn, &cs.proposal_id)?;
    if final_id != cs.proposal_id {
        // Rare (the id of a closed proposal repeats): encode again with the final id.
        cs.proposal_id = final_id.clone();
        cs_json = encode_change_set(&cs)?;
    }
    let state = if cs.mode == "shadow" {
        ProposalState::Shadow
    } else {
        ProposalState::PendingReview
    };
    insert_proposal_row(conn, &cs, &cs_json, state, &cs.created_at, None)?;
    insert_event(
        conn,
        &final_id,
        "proposal_created",
        &cs.principal.id,
        &json!({"digest": cs.digest, "mode": cs.mode}),
        &cs.created_at,
    )?;
    read.link_to(&final_id);
    read.insert(conn)?;
    insert_event(
        conn,
        &final_id,
        "evidence_recorded",
        "runner",
        &json!({
            "evidence_bundle_id": read.evidence.evidence_bundle_id,
            "item_count": read.item_count,
        }),
        &read.evidence.created_at,
    )?;
    let created_at = cs.created_at.clone();
    Ok(ProposalInsert::Created(Box::new(ProposalRecord {
        change_set: cs,
        state,
        updated_at: created_at.clone(),
        created_at,
        approvals: Vec::new(),
        managed_by: None,
    })))
}

// -------------------------------------------------------------------- validation

fn validate_evidence(e: &EvidenceRecord) -> Result<()> {
    non_empty("evidence_bundle_id", &e.evidence_bundle_id)?;
    check_ts("evidence created_at", &e.created_at)
}

fn validate_audit(a: &QueryAuditRecord) -> Result<()> {
    check_ts("query audit created_at", &a.created_at)?;
    if !a.duration_ms.is_finite() || a.duration_ms < 0.0 {
        return Err(LedgerError::InvalidInput(
            "duration_ms must be a finite, non-negative number".into(),
        ));
    }
    Ok(())
}

/// The audit row of a read, linked to its evidence bundle (and proposal, when given).
fn link_audit(
    audit: &QueryAuditRecord,
    evidence: &EvidenceRecord,
    proposal_id: Option<&str>,
) -> Result<QueryAuditRecord> {
    if let Some(eid) = &audit.evidence_bundle_id
        && *eid != evidence.evidence_bundle_id
    {
        return Err(LedgerError::InvalidInput(
            "the query audit names another evidence bundle".into(),
        ));
    }
    let mut audit = audit.clone();
    audit.evidence_bundle_id = Some(evidence.evidence_bundle_id.clone());
    if let Some(pid) = proposal_id {
        audit.proposal_id = Some(pid.to_owned());
    }
    Ok(audit)
}

// -------------------------------------------------------------------- row helpers

/// The first id of `base`, `base-2`, `base-3`, ... that no proposal has.
fn free_proposal_id(conn: &Connection, base: &str) -> Result<String> {
    if !proposal_exists(conn, base)? {
        return Ok(base.to_owned());
    }
    for n in 2..10_000u32 {
        let candidate = format!("{base}-{n}");
        if !proposal_exists(conn, &candidate)? {
            return Ok(candidate);
        }
    }
    Err(LedgerError::InvalidInput(
        "too many proposals share this proposal id".into(),
    ))
}

/// Local decisions and applies are refused on a mirror of a proposal managed elsewhere.
fn refuse_managed(rec: &ProposalRecord) -> Result<()> {
    match &rec.managed_by {
        Some(by) => Err(LedgerError::ManagedExternally {
            id: rec.change_set.proposal_id.clone(),
            by: by.clone(),
        }),
        None => Ok(()),
    }
}

/// Inserts an evidence bundle whose items are not yet encoded (mirrors, off the hot path).
pub(super) fn insert_evidence(conn: &Connection, e: &EvidenceRecord) -> Result<()> {
    let items = serde_json::to_string(&e.items)
        .map_err(|_| LedgerError::InvalidInput("evidence items could not be encoded".into()))?;
    insert_evidence_row(conn, e, &items)
}

/// Inserts an evidence bundle with its `items_json` already encoded (`e.items` is not read).
fn insert_evidence_row(conn: &Connection, e: &EvidenceRecord, items_json: &str) -> Result<()> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM evidence_bundles WHERE evidence_bundle_id = ?1")?
        .query_row([&e.evidence_bundle_id], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(LedgerError::InvalidInput(format!(
            "evidence bundle {} is already recorded",
            e.evidence_bundle_id
        )));
    }
    conn.prepare_cached(
        "INSERT INTO evidence_bundles (evidence_bundle_id, proposal_id, capability, tenant_id, principal,
             source_id, target, object_id, query_fingerprint, items_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.evidence_bundle_id,
        e.proposal_id,
        e.capability,
        e.tenant_id,
        e.principal,
        e.source_id,
        e.target,
        e.object_id,
        e.query_fingerprint,
        items_json,
        e.created_at,
    ])?;
    Ok(())
}

fn insert_audit(conn: &Connection, a: &QueryAuditRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO query_audit (evidence_bundle_id, proposal_id, capability, tenant_id, principal, source_id,
             query_fingerprint, statement_template, row_count, duration_ms, outcome, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        a.evidence_bundle_id,
        a.proposal_id,
        a.capability,
        a.tenant_id,
        a.principal,
        a.source_id,
        a.query_fingerprint,
        a.statement_template,
        a.row_count,
        a.duration_ms,
        a.outcome,
        a.created_at,
    ])?;
    Ok(())
}
