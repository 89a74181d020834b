//! Suggestions from a table's catalog entry: which column is the tenant, which one is a version,
//! which are immutable, sensitive or too large to show, and which key identifies one row.
//!
//! Every result here is a suggestion for a human to confirm: names are matched, data is never
//! read. Where the catalog leaves a choice open (two tenant candidates, a composite key, no
//! version column), the suggestion says so instead of choosing.

use serde::Serialize;
use synapsor_core::catalog::{ColumnInfo, TableInfo, TableKind};

/// Column names taken for the tenant, in order of preference.
pub const TENANT_COLUMNS: &[&str] = &[
    "tenant_id",
    "account_id",
    "organization_id",
    "org_id",
    "workspace_id",
    "customer_id",
];

/// Column names taken for the row version compared at apply time, in order of preference.
pub const CONFLICT_COLUMNS: &[&str] = &[
    "updated_at",
    "modified_at",
    "row_version",
    "version",
    "lock_version",
    "etag",
];

/// Column names that never change once a row exists (besides the keys).
const IMMUTABLE_COLUMNS: &[&str] = &["id", "uuid", "created_at", "created_by"];

/// Words that mark a column as holding a secret or personal data. Matched against the
/// column name's `_`-separated words (and a few joined forms), case-insensitively.
const SENSITIVE_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "session",
    "cookie",
    "ssn",
    "cvv",
    "cvc",
    "pin",
    "iban",
    "oauth",
    "credential",
    "credentials",
    "salt",
    "hash",
    "otp",
    "mfa",
    "totp",
];

/// Adjacent word pairs that mark a column as sensitive (`api_key`, `card_number`, ...).
const SENSITIVE_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("card", "number"),
    ("credit", "card"),
    ("social", "security"),
    ("refresh", "token"),
    ("account", "number"),
    ("routing", "number"),
];

/// Names that are sensitive as a whole.
const SENSITIVE_NAMES: &[&str] = &["apikey", "cardnumber", "creditcard", "pan"];

/// Declared types too large or too opaque to show a model by default.
fn is_large_type(ty: &str) -> bool {
    let base = ty.split(['(', ' ']).next().unwrap_or_default();
    matches!(
        base,
        "bytea"
            | "blob"
            | "tinyblob"
            | "mediumblob"
            | "longblob"
            | "binary"
            | "varbinary"
            | "vector"
            | "json"
            | "jsonb"
            | "xml"
            | "tsvector"
            | "longtext"
            | "mediumtext"
            | "geometry"
            | "geography"
    ) || ty.ends_with("[]")
}

/// Whether a declared type holds numbers (the argument that sets such a column is a number).
pub fn is_numeric_type(ty: &str) -> bool {
    let base = ty.split(['(', ' ']).next().unwrap_or_default();
    matches!(
        base,
        "integer"
            | "int"
            | "int2"
            | "int4"
            | "int8"
            | "smallint"
            | "bigint"
            | "mediumint"
            | "tinyint"
            | "numeric"
            | "decimal"
            | "real"
            | "double"
            | "float"
            | "float4"
            | "float8"
            | "money"
    )
}

/// Whether a column name looks like it holds a secret or personal data.
pub fn is_sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if SENSITIVE_NAMES.contains(&lower.as_str()) {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().any(|w| SENSITIVE_WORDS.contains(w))
        || words
            .windows(2)
            .any(|p| SENSITIVE_PAIRS.iter().any(|(a, b)| p[0] == *a && p[1] == *b))
}

/// What a column was suggested to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnTag {
    PrimaryKey,
    Tenant,
    Conflict,
    Immutable,
    Sensitive,
    Large,
}

/// The suggestions for one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSuggestion {
    pub name: String,
    pub tags: Vec<ColumnTag>,
    /// Neither sensitive nor large: shown to the model unless the user says otherwise.
    pub visible_by_default: bool,
}

/// Which key identifies one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KeySuggestion {
    /// One column, unique on its own or together with the tenant column.
    Single { column: String },
    /// A key of several columns that the tenant column does not reduce to one.
    Composite { columns: Vec<String> },
    /// No primary key (always for views).
    Missing,
}

/// Everything suggested for one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSuggestions {
    pub primary_key: KeySuggestion,
    /// Every tenant-named column; more than one is a choice for the user.
    pub tenant_candidates: Vec<String>,
    /// Every version-named column, in preference order.
    pub conflict_candidates: Vec<String>,
    pub columns: Vec<ColumnSuggestion>,
}

impl TableSuggestions {
    /// The tenant column, when exactly one candidate exists.
    pub fn tenant(&self) -> Option<&str> {
        match self.tenant_candidates.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The preferred version column.
    pub fn conflict(&self) -> Option<&str> {
        self.conflict_candidates.first().map(String::as_str)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSuggestion> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn default_visible(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.visible_by_default)
            .map(|c| c.name.clone())
            .collect()
    }
}

fn has_column(table: &TableInfo, name: &str) -> bool {
    table.columns.iter().any(|c| c.name == name)
}

/// The suggestions for `table`.
pub fn suggest(table: &TableInfo) -> TableSuggestions {
    let tenant_candidates: Vec<String> = TENANT_COLUMNS
        .iter()
        .filter(|n| has_column(table, n))
        .map(|n| (*n).to_owned())
        .collect();
    let conflict_candidates: Vec<String> = CONFLICT_COLUMNS
        .iter()
        .filter(|n| has_column(table, n))
        .map(|n| (*n).to_owned())
        .collect();
    let primary_key = suggest_key(table, &tenant_candidates);
    let key_col = match &primary_key {
        KeySuggestion::Single { column } => Some(column.as_str()),
        _ => None,
    };
    let columns = table
        .columns
        .iter()
        .map(|c| column_suggestion(c, key_col, &tenant_candidates, &conflict_candidates))
        .collect();
    TableSuggestions {
        primary_key,
        tenant_candidates,
        conflict_candidates,
        columns,
    }
}

/// A key column is one that identifies a row: a single-column primary or unique key, or the one
/// column left of a two-column key once the tenant column is taken out (`(tenant_id, id)`, the
/// usual multi-tenant shape: reads always filter by tenant too).
pub fn identifies_one_row(table: &TableInfo, column: &str, tenant: Option<&str>) -> bool {
    let keys = std::iter::once(&table.primary_key).chain(table.unique_keys.iter());
    keys.filter(|k| !k.is_empty()).any(|k| match k.as_slice() {
        [one] => one == column,
        [a, b] => tenant.is_some_and(|t| (a == column && b == t) || (b == column && a == t)),
        _ => false,
    })
}

fn suggest_key(table: &TableInfo, tenants: &[String]) -> KeySuggestion {
    if table.kind == TableKind::View || table.primary_key.is_empty() {
        return KeySuggestion::Missing;
    }
    match table.primary_key.as_slice() {
        [one] => KeySuggestion::Single { column: one.clone() },
        cols => {
            let rest: Vec<&String> = cols.iter().filter(|c| !tenants.contains(c)).collect();
            match rest.as_slice() {
                [one] if cols.len() == 2 => KeySuggestion::Single { column: (*one).clone() },
                _ => KeySuggestion::Composite { columns: cols.to_vec() },
            }
        }
    }
}

fn column_suggestion(c: &ColumnInfo, key: Option<&str>, tenants: &[String], conflicts: &[String]) -> ColumnSuggestion {
    let mut tags = Vec::new();
    if key == Some(c.name.as_str()) {
        tags.push(ColumnTag::PrimaryKey);
    }
    if tenants.contains(&c.name) {
        tags.push(ColumnTag::Tenant);
    }
    if conflicts.contains(&c.name) {
        tags.push(ColumnTag::Conflict);
    }
    if key == Some(c.name.as_str())
        || tenants.contains(&c.name)
        || IMMUTABLE_COLUMNS.contains(&c.name.to_ascii_lowercase().as_str())
    {
        tags.push(ColumnTag::Immutable);
    }
    let sensitive = is_sensitive_name(&c.name);
    if sensitive {
        tags.push(ColumnTag::Sensitive);
    }
    let large = is_large_type(&c.data_type);
    if large {
        tags.push(ColumnTag::Large);
    }
    // The tenant is the caller's own trusted context: never shown to the model.
    let visible_by_default = !sensitive && !large && !tenants.contains(&c.name);
    ColumnSuggestion {
        name: c.name.clone(),
        tags,
        visible_by_default,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: ty.into(),
            nullable: false,
            has_default: false,
        }
    }

    fn table(pk: &[&str], cols: &[(&str, &str)]) -> TableInfo {
        TableInfo {
            name: "t".into(),
            kind: TableKind::Table,
            columns: cols.iter().map(|(n, t)| col(n, t)).collect(),
            primary_key: pk.iter().map(|s| (*s).to_owned()).collect(),
            unique_keys: vec![],
            foreign_keys: vec![],
            indexes: vec![],
        }
    }

    #[test]
    fn sensitive_names() {
        for n in [
            "password_hash",
            "api_key",
            "apiKey",
            "API_TOKEN",
            "session_id",
            "card_number",
            "ssn",
            "refresh_token",
            "cvv",
            "oauth_state",
            "social_security_no",
        ] {
            assert!(is_sensitive_name(n), "{n}");
        }
        for n in [
            "status",
            "amount_cents",
            "customer_name",
            "keyword",
            "monkey",
            "token_count_total_x",
        ] {
            // `token_count...` contains the word token: it is flagged (a false positive is the safe side).
            assert_eq!(is_sensitive_name(n), n.starts_with("token"), "{n}");
        }
    }

    #[test]
    fn keys_and_candidates() {
        let t = table(
            &["tenant_id", "id"],
            &[
                ("tenant_id", "text"),
                ("id", "text"),
                ("account_id", "text"),
                ("updated_at", "timestamp with time zone"),
                ("version", "integer"),
                ("api_token", "text"),
                ("payload", "jsonb"),
            ],
        );
        let s = suggest(&t);
        assert_eq!(s.primary_key, KeySuggestion::Single { column: "id".into() });
        assert_eq!(s.tenant_candidates, ["tenant_id", "account_id"]);
        assert_eq!(s.tenant(), None);
        assert_eq!(s.conflict(), Some("updated_at"));
        // Neither tenant candidate, the token nor the JSON is shown by default.
        assert_eq!(s.default_visible(), ["id", "updated_at", "version"]);
        assert!(identifies_one_row(&t, "id", Some("tenant_id")));
        assert!(!identifies_one_row(&t, "id", None));

        let t = table(&["order_id", "line_no"], &[("order_id", "int"), ("line_no", "int")]);
        assert_eq!(
            suggest(&t).primary_key,
            KeySuggestion::Composite {
                columns: vec!["order_id".into(), "line_no".into()]
            }
        );
        let t = table(&[], &[("id", "int")]);
        assert_eq!(suggest(&t).primary_key, KeySuggestion::Missing);
    }

    #[test]
    fn large_and_numeric_types() {
        assert!(is_large_type("bytea"));
        assert!(is_large_type("text[]"));
        assert!(is_large_type("longblob"));
        assert!(!is_large_type("varchar(64)"));
        assert!(is_numeric_type("bigint unsigned"));
        assert!(is_numeric_type("numeric(10,2)"));
        assert!(is_numeric_type("int(11)"));
        assert!(!is_numeric_type("text"));
    }
}
