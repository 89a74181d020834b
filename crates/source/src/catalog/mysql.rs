//! The catalog of a MySQL or MariaDB database, from `information_schema` (which shows a user the
//! tables it holds any privilege on, SELECT or not).
//!
//! Every text column is cast to CHAR and every number to SIGNED: the two servers (and their
//! versions) declare `information_schema` columns with different types and collations, and the
//! driver decodes each type differently. Functional indexes (MySQL 8, no column name) are left
//! out.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use synapsor_core::config::Engine;

use super::{
    CATALOG_TIMEOUT, Catalog, CatalogError, ColumnInfo, ForeignKey, IndexInfo, TableKind, Tables, connect_error,
    query_error, url_invalid,
};

const SCHEMA_EXISTS: &str = "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?";

/// `SYSTEM VERSIONED` is MariaDB's type of a system-versioned table; sequences, system views and
/// temporary tables are skipped.
const TABLES: &str = "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR) \
     FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?";

/// MariaDB (10.2.7+) shows an explicit or implicit `DEFAULT NULL` as the text `NULL` (its string
/// defaults are quoted), MySQL as SQL NULL: both mean no default. AUTO_INCREMENT and generated
/// columns count as having one: an INSERT may leave them out.
const COLUMNS: &str = "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
       CAST(LOWER(COLUMN_TYPE) AS CHAR), CAST(IS_NULLABLE = 'YES' AS SIGNED), \
       CAST((COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT <> 'NULL') \
            OR EXTRA LIKE '%auto_increment%' \
            OR (GENERATION_EXPRESSION IS NOT NULL AND GENERATION_EXPRESSION <> '') AS SIGNED) \
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
     ORDER BY TABLE_NAME, ORDINAL_POSITION";

const INDEXES: &str = "SELECT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS SIGNED), \
       CAST(COLUMN_NAME AS CHAR) \
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
     ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";

const FOREIGN_KEYS: &str = "SELECT CAST(TABLE_NAME AS CHAR), CAST(CONSTRAINT_NAME AS CHAR), \
       CAST(COLUMN_NAME AS CHAR), CAST(REFERENCED_TABLE_SCHEMA AS CHAR), \
       CAST(REFERENCED_TABLE_NAME AS CHAR), CAST(REFERENCED_COLUMN_NAME AS CHAR) \
     FROM information_schema.KEY_COLUMN_USAGE \
     WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL \
     ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION";

type ColumnRow = (String, String, String, i64, i64);
type IndexRow = (String, String, i64, Option<String>);
type ForeignKeyRow = (String, String, String, String, String, String);
/// An index being read: its table, itself, and whether every key part was a column.
type PendingIndex = (String, IndexInfo, bool);

pub(super) async fn read(url: &str, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    // mariadb:// is an alias the driver does not know.
    let url = match url.get(..10) {
        Some(head) if head.eq_ignore_ascii_case("mariadb://") => format!("mysql://{}", &url[10..]),
        _ => url.to_owned(),
    };
    let opts = MySqlConnectOptions::from_str(&url).map_err(|_| url_invalid(Engine::Mysql))?;
    let opts = opts.disable_statement_logging();
    let connect = async {
        let mut conn = opts.connect().await?;
        setup_session(&mut conn).await?;
        Ok::<_, sqlx::Error>(conn)
    };
    let mut conn = match tokio::time::timeout(CATALOG_TIMEOUT, connect).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(connect_error(&e)),
        Err(_) => {
            return Err(CatalogError::Unavailable {
                reason: "timed out".to_owned(),
            });
        }
    };
    let result = read_schema(&mut conn, schema).await;
    // Closing politely only spares the server a log line; a failure here changes nothing.
    let _ = conn.close().await;
    result
}

/// Read-only, with a time limit per statement: MariaDB's `max_statement_time` (seconds), else
/// MySQL's `max_execution_time` (milliseconds, SELECTs only, which is all this sends).
async fn setup_session(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
    let ms = CATALOG_TIMEOUT.as_millis();
    let mariadb = format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0);
    if conn.execute(AssertSqlSafe(mariadb)).await.is_err() {
        conn.execute(AssertSqlSafe(format!("SET SESSION max_execution_time = {ms}")))
            .await?;
    }
    Ok(())
}

async fn read_schema(conn: &mut MySqlConnection, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    let schema = match schema {
        Some(s) => s.to_owned(),
        None => {
            let current: Option<String> = sqlx::query_scalar("SELECT CAST(DATABASE() AS CHAR)")
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| query_error(&e))?;
            current.ok_or_else(|| CatalogError::Query {
                reason: "the URL names no database and no schema was given".to_owned(),
            })?
        }
    };
    let exists: i64 = sqlx::query_scalar(SCHEMA_EXISTS)
        .bind(&schema)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    if exists == 0 {
        return Err(CatalogError::SchemaNotFound { schema });
    }

    let mut tables = Tables::default();
    let listed: Vec<(String, String)> = sqlx::query_as(TABLES)
        .bind(&schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (name, kind) in listed {
        match kind.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => tables.add(name, TableKind::Table),
            "VIEW" => tables.add(name, TableKind::View),
            _ => {}
        }
    }

    let columns: Vec<ColumnRow> = sqlx::query_as(COLUMNS)
        .bind(&schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    for (table, name, data_type, nullable, has_default) in columns {
        if let Some(t) = tables.get(&table) {
            t.columns.push(ColumnInfo {
                name,
                data_type,
                nullable: nullable != 0,
                has_default: has_default != 0,
            });
        }
    }

    let rows: Vec<IndexRow> = sqlx::query_as(INDEXES)
        .bind(&schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    // Rows come ordered by table, index and position: one run of rows per index.
    let mut current: Option<PendingIndex> = None;
    for (table, name, non_unique, column) in rows {
        let same = current.as_ref().is_some_and(|(t, i, _)| *t == table && i.name == name);
        if !same {
            flush_index(&mut tables, current.take());
            current = Some((
                table,
                IndexInfo {
                    name,
                    columns: Vec::new(),
                    unique: non_unique == 0,
                },
                true,
            ));
        }
        if let Some((_, index, complete)) = current.as_mut() {
            match column {
                Some(c) => index.columns.push(c),
                // A functional key part: the index is not a list of columns.
                None => *complete = false,
            }
        }
    }
    flush_index(&mut tables, current.take());

    let rows: Vec<ForeignKeyRow> = sqlx::query_as(FOREIGN_KEYS)
        .bind(&schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    let mut last: Option<(String, String)> = None;
    for (table, constraint, column, ref_schema, ref_table, ref_column) in rows {
        let Some(t) = tables.get(&table) else { continue };
        let key = (table, constraint);
        if last.as_ref() != Some(&key) {
            let references_table = if ref_schema == schema {
                ref_table
            } else {
                format!("{ref_schema}.{ref_table}")
            };
            t.foreign_keys.push(ForeignKey {
                columns: Vec::new(),
                references_table,
                references_columns: Vec::new(),
            });
            last = Some(key);
        }
        if let Some(fk) = t.foreign_keys.last_mut() {
            fk.columns.push(column);
            fk.references_columns.push(ref_column);
        }
    }

    Ok(tables.finish(Engine::Mysql, schema))
}

fn flush_index(tables: &mut Tables, done: Option<PendingIndex>) {
    if let Some((table, index, complete)) = done
        && complete
    {
        let primary = index.name == "PRIMARY";
        tables.add_index(&table, index, primary, true);
    }
}
