//! Read-side queries: proposals by id or `latest` and filtered listings, evidence bundles with
//! their audit rows, the replay of one proposal, and the event log.

use rusqlite::{Connection, OptionalExtension};

use super::{
    DEFAULT_LIST_LIMIT, LedgerStore, MAX_LIST_LIMIT, load, load_receipts, load_verified, parse_state, query_rows,
    u32_col,
};
use crate::error::{LedgerError, Result};
use crate::records::{
    EventRecord, EvidenceBundle, EvidenceRecord, ProposalFilter, ProposalRecord, ProposalSummary, QueryAuditRecord,
    Replay,
};

impl LedgerStore {
    // ---------------------------------------------------------------- proposals

    /// One proposal by id, or the most recently created one for `latest`. Fails with
    /// `PROPOSAL_DIGEST_MISMATCH` when the stored change set no longer matches its digest.
    pub fn get_proposal(&self, id_or_latest: &str) -> Result<ProposalRecord> {
        let id = resolve_id(&self.conn, id_or_latest)?;
        load_verified(&self.conn, &id)
    }

    /// Proposals matching `filter`, newest first (default limit 50).
    pub fn list_proposals(&self, filter: &ProposalFilter) -> Result<Vec<ProposalSummary>> {
        use rusqlite::types::Value as Sql;
        let mut sql = String::from(
            "SELECT proposal_id, state, capability, tenant_id, principal, business_object, object_id,
                    digest, created_at
             FROM proposals WHERE 1 = 1",
        );
        let mut args: Vec<Sql> = Vec::new();
        if let Some(state) = filter.state {
            args.push(Sql::Text(state.as_str().into()));
            sql.push_str(&format!(" AND state = ?{}", args.len()));
        }
        if let Some(t) = &filter.tenant_id {
            args.push(Sql::Text(t.clone()));
            sql.push_str(&format!(" AND tenant_id = ?{}", args.len()));
        }
        if let Some(c) = &filter.capability {
            args.push(Sql::Text(c.clone()));
            sql.push_str(&format!(" AND capability = ?{}", args.len()));
        }
        let limit = filter.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
        args.push(Sql::Integer(i64::from(limit)));
        sql.push_str(&format!(" ORDER BY created_at DESC, rowid DESC LIMIT ?{}", args.len()));

        query_rows(&self.conn, &sql, rusqlite::params_from_iter(args), |r| {
            let id: String = r.get(0)?;
            let state: String = r.get(1)?;
            let bo: String = r.get(5)?;
            let oid: String = r.get(6)?;
            Ok(ProposalSummary {
                state: parse_state(&id, &state)?,
                proposal_id: id,
                capability: r.get(2)?,
                tenant_id: r.get(3)?,
                principal: r.get(4)?,
                object: format!("{bo}:{oid}"),
                digest: r.get(7)?,
                created_at: r.get(8)?,
            })
        })
    }

    // ---------------------------------------------------------------- evidence, replay, events

    /// One evidence bundle with its query audit rows.
    pub fn evidence(&self, evidence_bundle_id: &str) -> Result<EvidenceBundle> {
        let mut bundles = evidence_where(&self.conn, "evidence_bundle_id = ?1", evidence_bundle_id)?;
        match bundles.pop() {
            Some(b) => Ok(b),
            None => Err(LedgerError::EvidenceNotFound {
                id: evidence_bundle_id.to_owned(),
            }),
        }
    }

    /// Everything recorded about one proposal (`latest` accepted): the proposal, its events in
    /// order, its evidence bundles with their audit rows, and its receipts.
    ///
    /// Unlike [`get_proposal`](Self::get_proposal), a failed digest check does not fail the
    /// replay: it is reported as `digest_verified: false`, because a replay is how a person
    /// inspects exactly such a proposal.
    pub fn replay(&self, id_or_latest: &str) -> Result<Replay> {
        let id = resolve_id(&self.conn, id_or_latest)?;
        let (proposal, digest_verified) = load(&self.conn, &id)?;
        Ok(Replay {
            replay_id: format!("replay_{id}"),
            events: events_where(&self.conn, "proposal_id = ?1", &[&id as &dyn rusqlite::ToSql], u32::MAX)?,
            evidence: evidence_where(&self.conn, "proposal_id = ?1", &id)?,
            receipts: load_receipts(&self.conn, &id)?,
            proposal,
            digest_verified,
        })
    }

    /// Events with `event_id > after_event_id`, oldest first, optionally of one kind. Event ids
    /// only grow (AUTOINCREMENT: never reused, even after prune), so a poller keeps the last id
    /// it saw as its cursor.
    pub fn events_after(&self, after_event_id: i64, kind: Option<&str>, limit: u32) -> Result<Vec<EventRecord>> {
        match kind {
            Some(k) => events_where(
                &self.conn,
                "event_id > ?1 AND kind = ?2",
                &[&after_event_id as &dyn rusqlite::ToSql, &k],
                limit,
            ),
            None => events_where(
                &self.conn,
                "event_id > ?1",
                &[&after_event_id as &dyn rusqlite::ToSql],
                limit,
            ),
        }
    }

    /// The newest event id, 0 when there is none.
    pub fn last_event_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(event_id), 0) FROM proposal_events", [], |r| {
                r.get(0)
            })?)
    }
}

// -------------------------------------------------------------------- row helpers

/// `latest` is the most recently created proposal; anything else is an exact id.
fn resolve_id(conn: &Connection, id_or_latest: &str) -> Result<String> {
    if id_or_latest != "latest" {
        return Ok(id_or_latest.to_owned());
    }
    conn.query_row(
        "SELECT proposal_id FROM proposals ORDER BY created_at DESC, rowid DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| LedgerError::ProposalNotFound { id: "latest".into() })
}

fn events_where(conn: &Connection, cond: &str, args: &[&dyn rusqlite::ToSql], limit: u32) -> Result<Vec<EventRecord>> {
    let sql = format!(
        "SELECT event_id, proposal_id, kind, actor, payload_json, created_at FROM proposal_events
         WHERE {cond} ORDER BY event_id LIMIT {limit}"
    );
    query_rows(conn, &sql, args, |r| {
        let event_id: i64 = r.get(0)?;
        let payload: String = r.get(4)?;
        Ok(EventRecord {
            event_id,
            proposal_id: r.get(1)?,
            kind: r.get(2)?,
            actor: r.get(3)?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| LedgerError::corrupt_json("proposal_events", event_id.to_string(), &e))?,
            created_at: r.get(5)?,
        })
    })
}

fn evidence_where(conn: &Connection, cond: &str, arg: &str) -> Result<Vec<EvidenceBundle>> {
    let sql = format!(
        "SELECT evidence_bundle_id, proposal_id, capability, tenant_id, principal, source_id, target, object_id,
                query_fingerprint, items_json, created_at
         FROM evidence_bundles WHERE {cond} ORDER BY created_at, rowid"
    );
    let raw = query_rows(conn, &sql, [arg], |r| {
        Ok((
            EvidenceRecord {
                evidence_bundle_id: r.get(0)?,
                proposal_id: r.get(1)?,
                capability: r.get(2)?,
                tenant_id: r.get(3)?,
                principal: r.get(4)?,
                source_id: r.get(5)?,
                target: r.get(6)?,
                object_id: r.get(7)?,
                query_fingerprint: r.get(8)?,
                items: Vec::new(),
                created_at: r.get(10)?,
            },
            r.get::<_, String>(9)?,
        ))
    })?;
    // Audit rows are looked up once the bundles' statement has finished, so that only one
    // statement is open at a time.
    raw.into_iter()
        .map(|(mut evidence, items)| {
            evidence.items = serde_json::from_str(&items)
                .map_err(|e| LedgerError::corrupt_json("evidence_bundles", evidence.evidence_bundle_id.clone(), &e))?;
            let query_audit = audit_for_bundle(conn, &evidence.evidence_bundle_id)?;
            Ok(EvidenceBundle { evidence, query_audit })
        })
        .collect()
}

fn audit_for_bundle(conn: &Connection, bundle_id: &str) -> Result<Vec<QueryAuditRecord>> {
    query_rows(
        conn,
        "SELECT audit_id, evidence_bundle_id, proposal_id, capability, tenant_id, principal, source_id,
                query_fingerprint, statement_template, row_count, duration_ms, outcome, created_at
         FROM query_audit WHERE evidence_bundle_id = ?1 ORDER BY audit_id",
        [bundle_id],
        |r| {
            let audit_id: i64 = r.get(0)?;
            Ok(QueryAuditRecord {
                evidence_bundle_id: r.get(1)?,
                proposal_id: r.get(2)?,
                capability: r.get(3)?,
                tenant_id: r.get(4)?,
                principal: r.get(5)?,
                source_id: r.get(6)?,
                query_fingerprint: r.get(7)?,
                statement_template: r.get(8)?,
                row_count: u32_col("query_audit", &audit_id.to_string(), r.get(9)?)?,
                duration_ms: r.get(10)?,
                outcome: r.get(11)?,
                created_at: r.get(12)?,
            })
        },
    )
}
