//! Group commit: several record writes (reads, query audits, proposals) in one transaction.
//!
//! A commit costs a WAL append and, whatever its size, a trip through SQLite's locking; a tool
//! call's rows are a few hundred bytes. When calls arrive together, [`crate::Ledger`]'s thread
//! hands them here as one batch: one `BEGIN IMMEDIATE`, each job inside its own savepoint, one
//! `COMMIT`. A job that fails is rolled back to its savepoint alone and keeps its own error;
//! the others commit. Jobs run in order, so a later job sees an earlier one's rows (two
//! identical proposals in one batch: the first is `Created`, the second `Existing`).

use rusqlite::Transaction;

use super::LedgerStore;
use super::lifecycle::{RecordJob, Recorded};
use crate::error::{LedgerError, Result};

impl LedgerStore {
    /// Runs `jobs` in order in one `BEGIN IMMEDIATE` transaction, each in a savepoint of its own,
    /// and returns one result per job, in order, after COMMIT returned.
    ///
    /// A job's own failure (a missing proposal, a duplicate bundle id ...) rolls back that job
    /// only. Nothing of the batch is committed, and every job that had succeeded gets the error
    /// instead, when the transaction cannot begin (a busy store) or commit, or when SQLite ended
    /// it early (on some IO, disk-full and out-of-memory errors SQLite rolls the whole
    /// transaction back itself; going on would run the remaining jobs outside any transaction).
    pub(crate) fn record_batch(&mut self, jobs: Vec<RecordJob>) -> Vec<Result<Recorded>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let mut tx = match self.immediate() {
            Ok(tx) => tx,
            Err(e) => return vec![Err(e); jobs.len()],
        };
        let mut results: Vec<Result<Recorded>> = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            match in_savepoint(&mut tx, job) {
                Ok(result) => results.push(result),
                Err(broken) => {
                    let Broken { job, cause } = *broken;
                    // `tx` rolls back what is left of the transaction when it is dropped.
                    let mut out: Vec<_> = results.into_iter().map(|r| r.and(Err(cause.clone()))).collect();
                    out.push(Err(job));
                    out.extend(jobs.map(|_| Err(cause.clone())));
                    return out;
                }
            }
        }
        match tx.commit() {
            Ok(()) => results,
            // A failed COMMIT leaves the transaction open; `commit` consumed `tx`, whose drop
            // rolled it back, so the connection is clean for the next batch.
            Err(e) => {
                let e = LedgerError::from(e);
                results.into_iter().map(|r| r.and(Err(e.clone()))).collect()
            }
        }
    }
}

/// The batch's transaction can no longer be trusted: `job` is the error for the job that found
/// out, `cause` the one for every other job.
struct Broken {
    job: LedgerError,
    cause: LedgerError,
}

/// One job in a savepoint of `tx`: `Ok` with the job's own result when the transaction is still
/// sound (a failed job was rolled back to its savepoint), `Err` when it is not.
fn in_savepoint(tx: &mut Transaction<'_>, job: RecordJob) -> std::result::Result<Result<Recorded>, Box<Broken>> {
    let broken = |e: rusqlite::Error| {
        let e = LedgerError::from(e);
        Box::new(Broken {
            job: e.clone(),
            cause: e,
        })
    };
    let sp = tx.savepoint().map_err(broken)?;
    match job.write(&sp) {
        Ok(recorded) => sp.commit().map(|()| Ok(recorded)).map_err(broken),
        Err(own) => {
            // ROLLBACK TO and RELEASE, checked: a failed job's partial rows must never reach the
            // COMMIT.
            if let Err(e) = sp.finish() {
                return Err(Box::new(Broken {
                    job: own,
                    cause: e.into(),
                }));
            }
            if tx.is_autocommit() {
                return Err(Box::new(Broken {
                    job: own,
                    cause: LedgerError::unavailable("SQLite rolled back the ledger transaction after an error"),
                }));
            }
            Ok(Err(own))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use synapsor_core::ChangeSet;

    use super::*;
    use crate::records::{EvidenceRecord, ProposalInsert, QueryAuditRecord};

    const AT: &str = "2026-06-23T09:00:00.000Z";

    fn store() -> (tempfile::TempDir, LedgerStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LedgerStore::open(dir.path().join("local.db")).unwrap();
        (dir, store)
    }

    fn evidence(id: &str) -> EvidenceRecord {
        EvidenceRecord {
            evidence_bundle_id: id.into(),
            proposal_id: None,
            capability: "billing.propose_late_fee_waiver".into(),
            tenant_id: "acme".into(),
            principal: "agent-7".into(),
            source_id: "billing".into(),
            target: "public.invoices".into(),
            object_id: "INV-3001".into(),
            query_fingerprint: "fp_invoice_by_id".into(),
            items: vec![json!({"kind": "external_row", "row": {"id": "INV-3001", "late_fee_cents": 5500}})],
            created_at: AT.into(),
        }
    }

    fn audit() -> QueryAuditRecord {
        QueryAuditRecord {
            evidence_bundle_id: None,
            proposal_id: None,
            capability: "billing.propose_late_fee_waiver".into(),
            tenant_id: "acme".into(),
            principal: "agent-7".into(),
            source_id: "billing".into(),
            query_fingerprint: "fp_invoice_by_id".into(),
            statement_template: "SELECT id FROM public.invoices WHERE id = $1".into(),
            row_count: 1,
            duration_ms: 0.5,
            outcome: "ok".into(),
            created_at: AT.into(),
        }
    }

    fn change_set(id: &str) -> ChangeSet {
        let mut cs: ChangeSet = serde_json::from_value(json!({
            "schema_version": synapsor_core::changeset::CHANGE_SET_SCHEMA,
            "proposal_id": id,
            "mode": "review_required",
            "action": "billing.propose_late_fee_waiver",
            "principal": {"id": "agent-7", "source": "environment"},
            "scope": {"tenant_id": "acme", "business_object": "invoices", "object_id": "INV-3001"},
            "source": {"source_id": "billing", "engine": "external_postgres", "schema": "public",
                       "table": "invoices", "primary_key": {"column": "id", "value": "INV-3001"}},
            "before": {"id": "INV-3001", "late_fee_cents": 5500},
            "patch": {"late_fee_cents": 0},
            "after": {"id": "INV-3001", "late_fee_cents": 0},
            "guards": {"principal": null, "tenant": null, "allowed_columns": ["late_fee_cents"],
                       "expected_version": {"column": "version", "value": 3},
                       "numeric_bounds": {}, "transition_guards": {}},
            "writeback": {"executor": "billing_sql"},
            "approval": {"required_approvals": 1, "required_role": null},
            "evidence": {"bundle_id": format!("ev_{id}"), "query_fingerprint": "fp_invoice_by_id"},
            "created_at": AT,
            "digest": "",
        }))
        .unwrap();
        cs.digest = cs.compute_digest();
        cs
    }

    /// A change set with another content, so another digest, than [`change_set`]'s.
    fn other_change_set(id: &str) -> ChangeSet {
        let mut cs = change_set(id);
        cs.patch.insert("late_fee_cents".into(), json!(1));
        cs.after.insert("late_fee_cents".into(), json!(1));
        cs.digest = cs.compute_digest();
        cs
    }

    fn read(id: &str) -> RecordJob {
        RecordJob::read(evidence(id), &audit()).unwrap()
    }

    fn proposal(bundle: &str, cs: &ChangeSet) -> RecordJob {
        RecordJob::proposal(evidence(bundle), &audit(), cs.clone()).unwrap()
    }

    fn count(store: &LedgerStore, table: &str) -> i64 {
        store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn codes(results: &[Result<Recorded>]) -> Vec<&'static str> {
        results
            .iter()
            .map(|r| match r {
                Ok(Recorded::Read) => "read",
                Ok(Recorded::QueryAudit) => "audit",
                Ok(Recorded::Proposal(ProposalInsert::Created(_))) => "created",
                Ok(Recorded::Proposal(ProposalInsert::Existing(_))) => "existing",
                Err(e) => e.code(),
            })
            .collect()
    }

    #[test]
    fn a_failing_job_is_rolled_back_alone_and_keeps_its_error() {
        let (_dir, mut store) = store();
        let mut orphan = evidence("ev_orphan");
        orphan.proposal_id = Some("prop_missing".into());
        let mut unknown_bundle = audit();
        unknown_bundle.evidence_bundle_id = Some("ev_missing".into());
        let cs = change_set("prop_a");
        let jobs = vec![
            read("ev_1"),
            RecordJob::read(orphan, &audit()).unwrap(),
            RecordJob::query_audit(audit()).unwrap(),
            RecordJob::query_audit(unknown_bundle).unwrap(),
            proposal("ev_p1", &cs),
            proposal("ev_p2", &cs),
            // Fails late: its proposal row and first event are written before the evidence
            // insert finds the bundle id taken, and all of it must go.
            proposal("ev_1", &other_change_set("prop_b")),
            read("ev_2"),
        ];
        let results = store.record_batch(jobs);
        assert_eq!(
            codes(&results),
            [
                "read",
                "PROPOSAL_NOT_FOUND",
                "audit",
                "EVIDENCE_NOT_FOUND",
                "created",
                "existing",
                "INVALID_INPUT",
                "read"
            ]
        );
        assert_eq!(count(&store, "proposals"), 1, "prop_b was rolled back");
        assert_eq!(count(&store, "evidence_bundles"), 4, "ev_1, ev_p1, ev_p2, ev_2");
        assert_eq!(count(&store, "query_audit"), 5);
        assert_eq!(
            count(&store, "proposal_events"),
            3,
            "created, evidence_recorded, requested_again"
        );
        assert_eq!(store.replay("prop_a").unwrap().evidence.len(), 2);
        assert!(store.conn.is_autocommit(), "the batch's transaction is closed");
    }

    #[test]
    fn a_busy_store_fails_every_job_and_writes_nothing() {
        let (dir, mut store) = store();
        store.conn.busy_timeout(std::time::Duration::from_millis(20)).unwrap();
        let other = rusqlite::Connection::open(dir.path().join("local.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let results = store.record_batch(vec![read("ev_1"), read("ev_2")]);
        assert_eq!(codes(&results), ["STORE_UNAVAILABLE", "STORE_UNAVAILABLE"]);
        assert!(results.iter().all(|r| r.as_ref().unwrap_err().retryable()));
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(codes(&store.record_batch(vec![read("ev_1")])), ["read"]);
    }

    #[test]
    fn a_failed_commit_fails_the_jobs_that_succeeded_and_leaves_the_connection_clean() {
        let (_dir, mut store) = store();
        // A deferred foreign key is checked at COMMIT: a temp trigger breaks one for every
        // audit row, so the batch's COMMIT fails after every statement in it succeeded.
        store
            .conn
            .execute_batch(
                "CREATE TEMP TABLE parent (id TEXT PRIMARY KEY);
                 CREATE TEMP TABLE child (pid TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                 CREATE TEMP TRIGGER break_commit AFTER INSERT ON main.query_audit
                 BEGIN INSERT INTO child VALUES ('nobody'); END;",
            )
            .unwrap();
        let mut orphan = evidence("ev_orphan");
        orphan.proposal_id = Some("prop_missing".into());
        let jobs = vec![read("ev_1"), RecordJob::read(orphan, &audit()).unwrap(), read("ev_2")];
        let results = store.record_batch(jobs);
        assert_eq!(
            codes(&results),
            ["STORE_UNAVAILABLE", "PROPOSAL_NOT_FOUND", "STORE_UNAVAILABLE"]
        );
        assert!(store.conn.is_autocommit(), "the failed transaction was rolled back");
        assert_eq!(count(&store, "evidence_bundles"), 0);
        store.conn.execute_batch("DROP TRIGGER temp.break_commit").unwrap();
        assert_eq!(codes(&store.record_batch(vec![read("ev_1")])), ["read"]);
        assert_eq!(count(&store, "evidence_bundles"), 1);
    }

    #[test]
    fn a_transaction_sqlite_rolled_back_fails_the_whole_batch() {
        let (_dir, mut store) = store();
        // RAISE(ROLLBACK) ends the whole transaction, as SQLite itself does on some IO errors.
        store
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER roll_back AFTER INSERT ON main.evidence_bundles
                 WHEN NEW.evidence_bundle_id = 'ev_boom'
                 BEGIN SELECT RAISE(ROLLBACK, 'boom'); END;",
            )
            .unwrap();
        let results = store.record_batch(vec![read("ev_1"), read("ev_boom"), read("ev_2")]);
        assert_eq!(
            codes(&results),
            ["STORE_UNAVAILABLE", "STORE_UNAVAILABLE", "STORE_UNAVAILABLE"]
        );
        assert_eq!(
            count(&store, "evidence_bundles"),
            0,
            "neither the earlier job nor the later one was written"
        );
        assert!(store.conn.is_autocommit());
    }

    #[test]
    fn an_empty_batch_opens_no_transaction() {
        let (_dir, mut store) = store();
        assert!(store.record_batch(Vec::new()).is_empty());
    }
}
