//! Writeback receipts: recording the receipt of an apply (once per idempotency key, each failed
//! attempt kept under a key of its own) and listing a proposal's receipts.

use rusqlite::params;
use serde_json::json;

use super::{
    LedgerStore, RECEIPT_STATUSES, check_ts, insert_event, load_receipts, non_empty, reject_secrets, require_proposal,
    to_json,
};
use crate::error::{LedgerError, Result};
use crate::records::ReceiptRecord;

impl LedgerStore {
    /// Records a writeback receipt once per `(proposal_id, idempotency_key)`; returns whether it
    /// was new. A new receipt appends a `writeback_<status>` event. Does not change the state:
    /// the applier moves the state with [`transition`](Self::transition).
    pub fn record_receipt(&mut self, receipt: &ReceiptRecord) -> Result<bool> {
        self.insert_receipt(receipt, false)
    }

    /// Records the receipt of one apply attempt, as [`record_receipt`](Self::record_receipt), except
    /// that a `failed` attempt is stored under `<idempotency_key>#failed-<n>` (n = the proposal's
    /// failed receipts so far + 1, counted in the same transaction): every failure is kept, and a
    /// retry with the same key that applies still records its own receipt.
    pub fn record_attempt_receipt(&mut self, receipt: &ReceiptRecord) -> Result<bool> {
        self.insert_receipt(receipt, true)
    }

    fn insert_receipt(&mut self, receipt: &ReceiptRecord, number_failures: bool) -> Result<bool> {
        check_ts("created_at", &receipt.created_at)?;
        non_empty("idempotency_key", &receipt.idempotency_key)?;
        if !RECEIPT_STATUSES.contains(&receipt.status.as_str()) {
            return Err(LedgerError::InvalidInput(format!(
                "receipt status must be one of {}",
                RECEIPT_STATUSES.join(", ")
            )));
        }
        reject_secrets("receipt", &to_json(receipt)?)?;
        let receipt_json = serde_json::to_string(&receipt.receipt)
            .map_err(|_| LedgerError::InvalidInput("the receipt could not be encoded".into()))?;
        let tx = self.immediate()?;
        require_proposal(&tx, &receipt.proposal_id)?;
        let key = if number_failures && receipt.status == "failed" {
            let failed: i64 = tx.query_row(
                "SELECT count(*) FROM receipts WHERE proposal_id = ?1 AND status = 'failed'",
                [&receipt.proposal_id],
                |r| r.get(0),
            )?;
            format!("{}#failed-{}", receipt.idempotency_key, failed + 1)
        } else {
            receipt.idempotency_key.clone()
        };
        let inserted = tx.execute(
            "INSERT INTO receipts (proposal_id, idempotency_key, status, rows_affected, safe_error_code,
                 receipt_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (proposal_id, idempotency_key) DO NOTHING",
            params![
                receipt.proposal_id,
                key,
                receipt.status,
                receipt.rows_affected,
                receipt.safe_error_code,
                receipt_json,
                receipt.created_at,
            ],
        )? == 1;
        if inserted {
            insert_event(
                &tx,
                &receipt.proposal_id,
                &format!("writeback_{}", receipt.status),
                "runner",
                &json!({
                    "idempotency_key": key,
                    "status": receipt.status,
                    "rows_affected": receipt.rows_affected,
                    "safe_error_code": receipt.safe_error_code,
                }),
                &receipt.created_at,
            )?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// The receipts of a proposal, oldest first.
    pub fn receipts_for(&self, proposal_id: &str) -> Result<Vec<ReceiptRecord>> {
        require_proposal(&self.conn, proposal_id)?;
        load_receipts(&self.conn, proposal_id)
    }
}
