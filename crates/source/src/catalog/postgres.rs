//! The catalog of a PostgreSQL schema, from `pg_catalog` (readable by every role, whatever its
//! table privileges): relations, attributes, indexes and foreign-key constraints.
//!
//! Partitions are left out (their partitioned table is listed, with kind `table`), and so are
//! expression indexes (no column list describes them). Partial and not-yet-valid unique indexes
//! are listed as indexes but not as unique keys: they do not make a row unique in the table.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use synapsor_core::config::Engine;

use super::{
    CATALOG_TIMEOUT, Catalog, CatalogError, ColumnInfo, ForeignKey, IndexInfo, TableKind, Tables, connect_error,
    query_error, url_invalid,
};

/// The relations listed: tables and partitioned tables, views and materialized views; not
/// partitions.
const RELATIONS: &str = "SELECT c.relname::text, c.relkind::text \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition";

/// Columns in attnum order. An identity or generated column counts as having a default: an
/// INSERT may leave it out.
const COLUMNS: &str = "SELECT c.relname::text, a.attname::text, \
       pg_catalog.lower(pg_catalog.format_type(a.atttypid, a.atttypmod)), a.attnotnull, \
       (a.atthasdef OR a.attidentity IN ('a', 'd') OR a.attgenerated IN ('s', 'v')) \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY c.relname, a.attnum";

/// Indexes without expressions, with their key columns in key order (INCLUDE columns are not
/// keys: only the first `indnkeyatts` count).
const INDEXES: &str = "SELECT c.relname::text, ic.relname::text, i.indisunique, i.indisprimary, \
       (i.indisvalid AND i.indpred IS NULL), \
       pg_catalog.array_agg(a.attname::text ORDER BY k.ord) \
     FROM pg_catalog.pg_index i \
     JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     WHERE n.nspname = $1 AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts \
     GROUP BY c.relname, ic.relname, i.indisunique, i.indisprimary, (i.indisvalid AND i.indpred IS NULL)";

/// Foreign keys, their columns paired with the referenced ones in constraint order (`ROWS FROM`
/// zips the two arrays; the multi-argument `unnest` is the same but cannot be schema-qualified).
const FOREIGN_KEYS: &str = "SELECT c.relname::text, con.conname::text, rn.nspname::text, rc.relname::text, \
       pg_catalog.array_agg(a.attname::text ORDER BY k.ord), \
       pg_catalog.array_agg(ra.attname::text ORDER BY k.ord) \
     FROM pg_catalog.pg_constraint con \
     JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid \
     JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace \
     CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(con.conkey), pg_catalog.unnest(con.confkey)) \
       WITH ORDINALITY AS k(attnum, refnum, ord) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
     JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refnum \
     WHERE n.nspname = $1 AND con.contype = 'f' \
     GROUP BY c.relname, con.conname, rn.nspname, rc.relname";

type IndexRow = (String, String, bool, bool, bool, Vec<String>);
type ForeignKeyRow = (String, String, String, String, Vec<String>, Vec<String>);

pub(super) async fn read(url: &str, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    let opts = PgConnectOptions::from_str(url).map_err(|_| url_invalid(Engine::Postgres))?;
    let opts = opts
        .application_name("synapsor-runner inspect")
        .options([
            ("statement_timeout", millis(CATALOG_TIMEOUT)),
            ("default_transaction_read_only", "on".to_owned()),
        ])
        .disable_statement_logging();
    let mut conn = match tokio::time::timeout(CATALOG_TIMEOUT, opts.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(connect_error(&e)),
        Err(_) => {
            return Err(CatalogError::Unavailable {
                reason: "timed out".to_owned(),
            });
        }
    };
    let result = read_schema(&mut conn, schema.unwrap_or("public")).await;
    // Closing politely only spares the server a log line; a failure here changes nothing.
    let _ = conn.close().await;
    result
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

async fn read_schema(conn: &mut PgConnection, schema: &str) -> Result<Catalog, CatalogError> {
    // A schema this role may not use is as good as absent: nothing in it could be read.
    let usable: Option<bool> = sqlx::query_scalar(
        "SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') FROM pg_catalog.pg_namespace n WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| query_error(&e))?;
    if usable != Some(true) {
        return Err(CatalogError::SchemaNotFound {
            schema: schema.to_owned(),
        });
    }

    let mut tables = Tables::default();
    let relations: Vec<(String, String)> = sqlx::query_as(RELATIONS)
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (name, kind) in relations {
        let kind = if matches!(kind.as_str(), "v" | "m") {
            TableKind::View
        } else {
            TableKind::Table
        };
        tables.add(name, kind);
    }

    let columns: Vec<(String, String, String, bool, bool)> = sqlx::query_as(COLUMNS)
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (table, name, data_type, not_null, has_default) in columns {
        if let Some(t) = tables.get(&table) {
            t.columns.push(ColumnInfo {
                name,
                data_type,
                nullable: !not_null,
                has_default,
            });
        }
    }

    let indexes: Vec<IndexRow> = sqlx::query_as(INDEXES)
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (table, name, unique, primary, whole_table, columns) in indexes {
        tables.add_index(&table, IndexInfo { name, columns, unique }, primary, whole_table);
    }

    let foreign_keys: Vec<ForeignKeyRow> = sqlx::query_as(FOREIGN_KEYS)
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (table, _name, ref_schema, ref_table, columns, references_columns) in foreign_keys {
        if let Some(t) = tables.get(&table) {
            let references_table = if ref_schema == schema {
                ref_table
            } else {
                format!("{ref_schema}.{ref_table}")
            };
            t.foreign_keys.push(ForeignKey {
                columns,
                references_table,
                references_columns,
            });
        }
    }

    Ok(tables.finish(Engine::Postgres, schema.to_owned()))
}
