//! Pre-fills a ledger for the cold-start comparison.
//!
//! Calling the read tool 100k times would take minutes, so the store is first populated by a
//! real stdio session (a few reads and proposals, written by the runner itself), then those real
//! rows are cloned with rusqlite inside one transaction: `n` evidence bundles, `n` query-audit
//! rows linked to them, and `n / 10` closed (`rejected`) proposals with one event each. Row
//! contents and sizes are the runner's own; only ids and timestamps differ. This writes the
//! ledger schema directly (version 3; migration 2 added the nullable `proposals.managed_by`,
//! migration 3 dropped indexes), so a schema change makes this step fail loudly rather than
//! measure a wrong store.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::Connection;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FillReport {
    pub evidence_bundles: i64,
    pub query_audit: i64,
    pub proposals: i64,
    pub proposal_events: i64,
    pub file_bytes: u64,
}

/// The ledger schema version these inserts are written for.
const FILLER_SCHEMA_VERSION: i64 = 4;

const SERIES: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)";

pub fn fill(store: &Path, n: usize) -> anyhow::Result<FillReport> {
    let mut conn = Connection::open(store).with_context(|| format!("opening {}", store.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != FILLER_SCHEMA_VERSION {
        bail!(
            "the ledger schema is version {version}; this filler writes version {FILLER_SCHEMA_VERSION}: update bench/src/ledger_fill.rs"
        );
    }
    let templates: i64 = conn.query_row(
        "SELECT count(*) FROM evidence_bundles WHERE proposal_id IS NULL",
        [],
        |r| r.get(0),
    )?;
    let proposals: i64 = conn.query_row("SELECT count(*) FROM proposals", [], |r| r.get(0))?;
    if templates == 0 || proposals == 0 {
        bail!("the seed session left no read evidence or no proposal to clone");
    }
    let n = i64::try_from(n)?;
    let created = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', i))";
    let tx = conn.transaction()?;
    tx.execute(
        &format!(
            "{SERIES} INSERT INTO evidence_bundles (evidence_bundle_id, proposal_id, capability, tenant_id, principal,
                 source_id, target, object_id, query_fingerprint, items_json, created_at)
             SELECT 'evb_fill_' || i, NULL, t.capability, t.tenant_id, t.principal, t.source_id, t.target,
                    t.object_id, t.query_fingerprint, t.items_json, {created}
             FROM n, (SELECT * FROM evidence_bundles WHERE proposal_id IS NULL ORDER BY rowid LIMIT 1) AS t"
        ),
        [n],
    )?;
    tx.execute(
        &format!(
            "{SERIES} INSERT INTO query_audit (evidence_bundle_id, proposal_id, capability, tenant_id, principal,
                 source_id, query_fingerprint, statement_template, row_count, duration_ms, outcome, created_at)
             SELECT 'evb_fill_' || i, NULL, t.capability, t.tenant_id, t.principal, t.source_id,
                    t.query_fingerprint, t.statement_template, t.row_count, t.duration_ms, t.outcome, {created}
             FROM n, (SELECT * FROM query_audit WHERE proposal_id IS NULL AND evidence_bundle_id IS NOT NULL
                      ORDER BY audit_id LIMIT 1) AS t"
        ),
        [n],
    )?;
    tx.execute(
        &format!(
            "{SERIES} INSERT INTO proposals (proposal_id, digest, state, capability, tenant_id, principal, object_id,
                 business_object, mode, change_set_json, created_at, updated_at)
             SELECT 'prop_fill_' || i, t.digest, 'rejected', t.capability, t.tenant_id, t.principal, t.object_id,
                    t.business_object, t.mode, t.change_set_json, {created}, {created}
             FROM n, (SELECT * FROM proposals ORDER BY rowid LIMIT 1) AS t"
        ),
        [(n / 10).max(1)],
    )?;
    tx.execute(
        "INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at)
         SELECT proposal_id, 'proposal_created', principal, '{}', created_at
         FROM proposals WHERE proposal_id LIKE 'prop_fill_%'",
        [],
    )?;
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let count = |table: &str| -> anyhow::Result<i64> {
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    };
    let report = FillReport {
        evidence_bundles: count("evidence_bundles")?,
        query_audit: count("query_audit")?,
        proposals: count("proposals")?,
        proposal_events: count("proposal_events")?,
        file_bytes: std::fs::metadata(store)?.len(),
    };
    drop(conn);
    Ok(report)
}

/// The runner's own timing of its source queries in a ledger: p50 and mean of
/// `query_audit.duration_ms` for successful reads of `capability`.
pub fn audited_sql_ms(store: &Path, capability: &str) -> anyhow::Result<(f64, f64)> {
    let conn = Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn
        .prepare("SELECT duration_ms FROM query_audit WHERE capability = ?1 AND outcome = 'ok' ORDER BY duration_ms")?;
    let v: Vec<f64> = stmt.query_map([capability], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if v.is_empty() {
        bail!("no audited reads of {capability} in {}", store.display());
    }
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok((round(v[v.len() / 2]), round(v.iter().sum::<f64>() / v.len() as f64)))
}

/// Times `n` transactions shaped like the runner's write per read (one evidence bundle and one
/// query-audit row with the values of the runner's own first read, bound as parameters), with
/// the runner's pragmas (WAL, `synchronous = NORMAL`, foreign keys on). An estimate of the
/// ledger's share of a read: the runner also serializes the rows and checks them for secrets,
/// and (over HTTP) hands the write to the ledger's thread, which this leaves out.
pub fn time_read_writes(store: &Path, n: usize) -> anyhow::Result<Vec<std::time::Duration>> {
    use rusqlite::types::Value as Sql;
    let mut conn = Connection::open(store)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let row = |sql: &str, cols: usize| -> anyhow::Result<Vec<Sql>> {
        Ok(conn.query_row(sql, [], |r| (0..cols).map(|i| r.get::<_, Sql>(i)).collect())?)
    };
    let evidence = row(
        "SELECT capability, tenant_id, principal, source_id, target, object_id, query_fingerprint, items_json,
                created_at
         FROM evidence_bundles WHERE rowid = (SELECT min(rowid) FROM evidence_bundles WHERE proposal_id IS NULL)",
        9,
    )?;
    let audit = row(
        "SELECT capability, tenant_id, principal, source_id, query_fingerprint, statement_template, row_count,
                duration_ms, outcome, created_at
         FROM query_audit WHERE audit_id =
             (SELECT min(audit_id) FROM query_audit WHERE proposal_id IS NULL AND evidence_bundle_id IS NOT NULL)",
        10,
    )?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let id = Sql::Text(format!("evb_probe_{i}"));
        let t = std::time::Instant::now();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO evidence_bundles (evidence_bundle_id, proposal_id, capability, tenant_id, principal,
                 source_id, target, object_id, query_fingerprint, items_json, created_at)
             VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params_from_iter(std::iter::once(&id).chain(&evidence)),
        )?;
        tx.execute(
            "INSERT INTO query_audit (evidence_bundle_id, proposal_id, capability, tenant_id, principal, source_id,
                 query_fingerprint, statement_template, row_count, duration_ms, outcome, created_at)
             VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params_from_iter(std::iter::once(&id).chain(&audit)),
        )?;
        tx.commit()?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    /// A new ledger migration must be looked at here: the filler writes the tables directly.
    #[test]
    fn the_filler_writes_the_current_ledger_schema() {
        assert_eq!(
            super::FILLER_SCHEMA_VERSION,
            synapsor_ledger::schema::current_version(),
            "a ledger migration was added: check the filler's INSERTs and bump FILLER_SCHEMA_VERSION"
        );
    }
}
