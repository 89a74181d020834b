//! PostgreSQL column types from the catalog, and the bind parameter each type needs.
//!
//! Reads and writebacks bind every value as text and let PostgreSQL convert it, so a parameter
//! of a non-text column is written `CAST($n AS <type>)` with the column's catalog type. Shared by
//! this crate's reads and the SQL executor's guarded UPDATE.

use std::collections::HashMap;

use sqlx::PgConnection;

/// Column name to catalog type name (`format_type`, e.g. `timestamp with time zone`) of the
/// visible columns of `schema.table`; empty when the table does not exist or is not visible.
pub async fn column_types(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Parameter `$n` for a column of catalog type `ty`: bare for text types, else cast to `ty`.
/// `None` when `ty` does not look like a type name. Type names come from the catalog, not from a
/// model; refusing odd ones is a second line of defence before one is written into SQL.
pub fn param(n: usize, ty: &str) -> Option<String> {
    if is_text_type(ty) {
        Some(format!("${n}"))
    } else if is_safe_type_name(ty) {
        Some(format!("CAST(${n} AS {ty})"))
    } else {
        None
    }
}

fn is_text_type(ty: &str) -> bool {
    ty == "text" || ty.starts_with("character varying") || ty.starts_with("character(") || ty == "character"
}

fn is_safe_type_name(ty: &str) -> bool {
    !ty.is_empty()
        && ty.len() <= 128
        && ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '(' | ')' | ',' | '.' | '[' | ']' | '"'))
        && !ty.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_by_type() {
        assert_eq!(param(1, "text").as_deref(), Some("$1"));
        assert_eq!(param(2, "character varying(64)").as_deref(), Some("$2"));
        assert_eq!(param(1, "bigint").as_deref(), Some("CAST($1 AS bigint)"));
        assert_eq!(
            param(3, "timestamp with time zone").as_deref(),
            Some("CAST($3 AS timestamp with time zone)")
        );
        assert_eq!(param(1, "numeric(12,2)").as_deref(), Some("CAST($1 AS numeric(12,2))"));
        assert_eq!(param(1, "int); DROP TABLE x; --"), None);
        assert_eq!(param(1, "int -- x"), None);
        assert_eq!(param(1, ""), None);
        assert_eq!(param(1, &"a".repeat(129)), None);
    }
}
