//! Maintenance: store statistics, `VACUUM`, and retention (`prune`). Deleting the whole store
//! is [`crate::reset`], next to the lease that guards it.

use synapsor_core::ProposalState;

use super::{LedgerStore, check_ts};
use crate::error::Result;
use crate::records::{PruneReport, StoreStats};

impl LedgerStore {
    pub fn stats(&self) -> Result<StoreStats> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        let mut by_state = std::collections::BTreeMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT state, COUNT(*) FROM proposals GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                by_state.insert(state, n);
            }
        }
        let page_count: i64 = self.conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let page_size: i64 = self.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(StoreStats {
            path: self.path.display().to_string(),
            schema_version: self.schema_version()?,
            proposals: count("proposals")?,
            proposals_by_state: by_state,
            proposal_events: count("proposal_events")?,
            approvals: count("approvals")?,
            evidence_bundles: count("evidence_bundles")?,
            query_audit: count("query_audit")?,
            receipts: count("receipts")?,
            page_count,
            page_size,
            approx_bytes: page_count.saturating_mul(page_size),
        })
    }

    /// Rebuilds the database file to return free pages to the OS, then truncates the WAL.
    pub fn vacuum(&mut self) -> Result<()> {
        self.conn.execute_batch("VACUUM")?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Deletes what is older than `cutoff` and finished: proposals in a terminal state
    /// (`rejected`, `applied`, `conflict`, `expired`) created before `cutoff`, with their events,
    /// approvals, receipts, evidence bundles and audit rows; and evidence bundles and audit rows
    /// not linked to any proposal created before `cutoff`. Open proposals (`pending_review`,
    /// `shadow`, `approved`, `applying`, `failed`) and everything linked to them are never
    /// touched. With `dry_run` the same deletes run and are rolled back, so the counts are exact.
    pub fn prune(&mut self, cutoff: &str, dry_run: bool) -> Result<PruneReport> {
        check_ts("cutoff", cutoff)?;
        let terminal = ProposalState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let doomed = format!("SELECT proposal_id FROM proposals WHERE state IN ({terminal}) AND created_at < ?1");
        let doomed_bundles = format!(
            "SELECT evidence_bundle_id FROM evidence_bundles
             WHERE proposal_id IN ({doomed}) OR (proposal_id IS NULL AND created_at < ?1)"
        );
        let tx = self.immediate()?;
        let del = |sql: String| -> Result<i64> { Ok(tx.execute(&sql, [cutoff])? as i64) };
        let receipts = del(format!("DELETE FROM receipts WHERE proposal_id IN ({doomed})"))?;
        let approvals = del(format!("DELETE FROM approvals WHERE proposal_id IN ({doomed})"))?;
        let proposal_events = del(format!("DELETE FROM proposal_events WHERE proposal_id IN ({doomed})"))?;
        let query_audit = del(format!(
            "DELETE FROM query_audit
             WHERE proposal_id IN ({doomed})
                OR evidence_bundle_id IN ({doomed_bundles})
                OR (proposal_id IS NULL AND evidence_bundle_id IS NULL AND created_at < ?1)"
        ))?;
        let evidence_bundles = del(format!(
            "DELETE FROM evidence_bundles WHERE evidence_bundle_id IN ({doomed_bundles})"
        ))?;
        let proposals = del(format!("DELETE FROM proposals WHERE proposal_id IN ({doomed})"))?;
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok(PruneReport {
            cutoff: cutoff.to_owned(),
            dry_run,
            proposals,
            proposal_events,
            approvals,
            evidence_bundles,
            query_audit,
            receipts,
        })
    }
}
