//! The catalog of a SQLite file's `main` schema, from `sqlite_schema` and the table-valued
//! pragmas (`pragma_table_xinfo`, `pragma_index_list`, `pragma_index_info`,
//! `pragma_foreign_key_list`), each given the table name as a bound parameter.
//!
//! The file is opened read-only and never created. A fresh connection has nothing attached, so
//! `main` is the only schema there is. Column types are the declared ones (SQLite keeps any
//! text there), lowercased. A rowid alias (`INTEGER PRIMARY KEY` of a rowid table) is reported
//! as NOT NULL with a default, which is how it behaves, although SQLite's pragma says neither.
//! Generated columns are listed (with a default); hidden columns of virtual tables are not.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, params};
use synapsor_core::config::Engine;

use super::{
    CATALOG_TIMEOUT, Catalog, CatalogError, ColumnInfo, ForeignKey, IndexInfo, TableKind, Tables, url_invalid,
};
use crate::redact;

const SCHEMA: &str = "main";

/// Tables and views; `sqlite_` names are SQLite's own (LIKE is case-insensitive, as is SQLite
/// about that prefix).
const TABLES: &str = "SELECT name, type FROM main.sqlite_schema \
     WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";

/// `hidden`: 0 a plain column, 1 hidden in a virtual table, 2 and 3 generated (virtual, stored).
const COLUMNS: &str = "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden \
     FROM pragma_table_xinfo(?1, ?2) ORDER BY cid";

const INDEX_LIST: &str = "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1, ?2)";

/// `name` is NULL for an expression (and for the rowid).
const INDEX_COLUMNS: &str = "SELECT name FROM pragma_index_info(?1, ?2) ORDER BY seqno";

/// `to` is NULL when the key names no columns and so references the parent's primary key.
const FOREIGN_KEYS: &str = "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1, ?2) \
     ORDER BY id, seq";

pub(super) async fn read(url: &str, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    let path = file_path(url).ok_or_else(|| url_invalid(Engine::Sqlite))?;
    // SQLITE_OPEN_READ_ONLY never creates a file; the check first gives the plain reason.
    if !Path::new(&path).is_file() {
        return Err(unavailable("the SQLite file does not exist"));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(&e))?;
    conn.busy_timeout(CATALOG_TIMEOUT).map_err(|e| open_error(&e))?;
    let interrupt = conn.get_interrupt_handle();
    let schema = schema.map(str::to_owned);
    let task = tokio::task::spawn_blocking(move || read_blocking(&conn, schema.as_deref()));
    // SQLite has no server-side statement timeout: the whole read gets the statement's budget
    // and is interrupted when it runs out (pragmas on a healthy file take microseconds).
    match tokio::time::timeout(CATALOG_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(CatalogError::Query {
            reason: "the catalog read stopped unexpectedly".to_owned(),
        }),
        Err(_) => {
            interrupt.interrupt();
            Err(CatalogError::Query {
                reason: "timed out".to_owned(),
            })
        }
    }
}

/// The file of `sqlite://PATH`, `sqlite:PATH` or a plain path, without a `?query`.
fn file_path(url: &str) -> Option<String> {
    let rest = ["sqlite://", "sqlite:"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|head| head.eq_ignore_ascii_case(scheme))
                .and_then(|_| url.get(scheme.len()..))
        })
        .unwrap_or(url);
    if rest.contains("://") {
        return None;
    }
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty()).then(|| path.to_owned())
}

fn unavailable(reason: &str) -> CatalogError {
    CatalogError::Unavailable {
        reason: reason.to_owned(),
    }
}

fn open_error(err: &rusqlite::Error) -> CatalogError {
    tracing::debug!(error = %err, "opening the SQLite catalog failed");
    unavailable(match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "not a SQLite database",
        Some(ErrorCode::PermissionDenied) => "permission denied",
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => "the database is locked",
        _ => "cannot open the file",
    })
}

fn query_error(err: rusqlite::Error) -> CatalogError {
    match err.sqlite_error_code() {
        // The file is only read at the first statement: that is where a non-database shows.
        Some(ErrorCode::NotADatabase) => unavailable("not a SQLite database"),
        Some(ErrorCode::OperationInterrupted) => CatalogError::Query {
            reason: "timed out".to_owned(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => unavailable("the database is locked"),
        _ => {
            tracing::warn!(error = %redact(&err.to_string()), "sqlite catalog query failed");
            CatalogError::Query {
                reason: redact(&err.to_string()),
            }
        }
    }
}

fn read_blocking(conn: &Connection, schema: Option<&str>) -> Result<Catalog, CatalogError> {
    // Read the file first, so that a file that is not a database says so whatever the schema.
    let mut tables = Tables::default();
    let listed: Vec<(String, String)> = conn
        .prepare(TABLES)
        .and_then(|mut stmt| stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(query_error)?;
    if let Some(s) = schema
        && !s.eq_ignore_ascii_case(SCHEMA)
    {
        return Err(CatalogError::SchemaNotFound { schema: s.to_owned() });
    }
    for (name, kind) in listed {
        let kind = if kind == "view" {
            TableKind::View
        } else {
            TableKind::Table
        };
        tables.add(name, kind);
    }
    for name in tables.names() {
        read_table(conn, &mut tables, &name).map_err(query_error)?;
    }
    Ok(tables.finish(Engine::Sqlite, SCHEMA.to_owned()))
}

/// One column of `pragma_table_xinfo`: name, declared type, NOT NULL, has a default, position
/// in the primary key (0: not in it), hidden.
type ColumnRow = (String, Option<String>, bool, bool, i64, i64);

fn read_table(conn: &Connection, tables: &mut Tables, table: &str) -> Result<(), rusqlite::Error> {
    let columns: Vec<ColumnRow> = conn
        .prepare_cached(COLUMNS)?
        .query_map(params![table, SCHEMA], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<Result<_, _>>()?;

    let index_list: Vec<(String, bool, String, bool)> = conn
        .prepare_cached(INDEX_LIST)?
        .query_map(params![table, SCHEMA], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut indexes = Vec::new();
    for (name, unique, origin, partial) in index_list {
        let names: Vec<Option<String>> = conn
            .prepare_cached(INDEX_COLUMNS)?
            .query_map(params![name, SCHEMA], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // An expression or the rowid among the keys: not a list of columns.
        let Some(columns) = names.into_iter().collect::<Option<Vec<String>>>() else {
            continue;
        };
        indexes.push((IndexInfo { name, columns, unique }, origin == "pk", !partial));
    }

    let fk_rows: Vec<(i64, String, String, Option<String>)> = conn
        .prepare_cached(FOREIGN_KEYS)?
        .query_map(params![table, SCHEMA], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut foreign_keys: Vec<(i64, ForeignKey, bool)> = Vec::new();
    for (id, parent, from, to) in fk_rows {
        if foreign_keys.last().is_none_or(|(last, _, _)| *last != id) {
            let fk = ForeignKey {
                columns: Vec::new(),
                references_table: parent,
                references_columns: Vec::new(),
            };
            foreign_keys.push((id, fk, false));
        }
        if let Some((_, fk, implicit)) = foreign_keys.last_mut() {
            fk.columns.push(from);
            match to {
                Some(to) => fk.references_columns.push(to),
                None => *implicit = true,
            }
        }
    }
    let mut resolved = Vec::with_capacity(foreign_keys.len());
    for (_, mut fk, implicit) in foreign_keys {
        if implicit {
            fk.references_columns = primary_key_of(conn, &fk.references_table)?;
        }
        resolved.push(fk);
    }

    let has_pk_index = indexes.iter().any(|(_, is_pk, _)| *is_pk);
    let Some(t) = tables.get(table) else { return Ok(()) };
    let mut pk: Vec<(i64, String)> = Vec::new();
    for (name, declared, not_null, has_default, pk_pos, hidden) in columns {
        if hidden == 1 {
            continue;
        }
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone()));
        }
        t.columns.push(ColumnInfo {
            name,
            data_type: declared.unwrap_or_default().to_lowercase(),
            nullable: !not_null,
            has_default: has_default || hidden >= 2,
        });
    }
    pk.sort();
    if t.kind == TableKind::Table {
        t.primary_key = pk.into_iter().map(|(_, name)| name).collect();
    }
    // The rowid alias: a one-column INTEGER primary key with no index of its own (a WITHOUT
    // ROWID table's key, and `INTEGER PRIMARY KEY DESC`, have one). It is never NULL and is
    // assigned when an INSERT leaves it out.
    if let [only] = t.primary_key.as_slice()
        && !has_pk_index
        && let Some(col) = t.columns.iter_mut().find(|c| c.name == *only)
        && col.data_type == "integer"
    {
        col.nullable = false;
        col.has_default = true;
    }
    t.foreign_keys = resolved;
    for (index, primary, whole_table) in indexes {
        // The primary key comes from the columns' `pk` positions (an INTEGER PRIMARY KEY has no
        // index); its index only joins the list of indexes.
        tables.add_index(table, index, false, whole_table && !primary);
    }
    Ok(())
}

/// The primary key columns of `table` in key order (empty when it has none or does not exist).
fn primary_key_of(conn: &Connection, table: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut cols: Vec<(i64, String)> = conn
        .prepare_cached("SELECT pk, name FROM pragma_table_info(?1, ?2) WHERE pk > 0")?
        .query_map(params![table, SCHEMA], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    cols.sort();
    Ok(cols.into_iter().map(|(_, name)| name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths() {
        assert_eq!(file_path("sqlite:///tmp/a.db").as_deref(), Some("/tmp/a.db"));
        assert_eq!(file_path("sqlite://rel.db?mode=ro").as_deref(), Some("rel.db"));
        assert_eq!(file_path("SQLITE:x.sqlite").as_deref(), Some("x.sqlite"));
        assert_eq!(file_path("/var/lib/x.db").as_deref(), Some("/var/lib/x.db"));
        assert_eq!(file_path("sqlite:"), None);
        assert_eq!(file_path("sqlite://"), None);
        assert_eq!(file_path("http://h/x.db"), None);
    }
}
