//! Identifier and name rules shared by the config validator and the SQL builders.
//!
//! SQL identifiers are only ever taken from the reviewed config, never from a model; still, every
//! builder re-checks them here before quoting, so a bad identifier can never reach a statement.

/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 63 bytes (PostgreSQL's limit, also below MySQL's 64).
pub fn is_safe_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Environment variable names: `^[A-Z_][A-Z0-9_]*$`.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_uppercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Context and executor names: `^[A-Za-z_][A-Za-z0-9_.-]*$`.
pub fn is_context_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Capability names are exactly `namespace.name`, both parts safe identifiers.
/// (The original's schema allowed several dots while its validator did not; here both say one.)
pub fn is_capability_name(s: &str) -> bool {
    match s.split_once('.') {
        Some((ns, name)) => is_safe_identifier(ns) && is_safe_identifier(name),
        None => false,
    }
}

/// Argument names exposed to the model: safe identifiers.
pub fn is_arg_name(s: &str) -> bool {
    is_safe_identifier(s)
}

/// SQL dialect used to quote identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL and SQLite: `"name"`.
    Ansi,
    /// MySQL and MariaDB: `` `name` ``.
    MySql,
}

/// An identifier that passed [`is_safe_identifier`]; only these can be quoted into SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafeIdent(String);

impl SafeIdent {
    /// Checks `s`; `None` when it is not a safe identifier.
    pub fn new(s: &str) -> Option<Self> {
        is_safe_identifier(s).then(|| SafeIdent(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted identifier for `dialect`. Safe identifiers contain no quote characters.
    pub fn quoted(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Ansi => format!("\"{}\"", self.0),
            Dialect::MySql => format!("`{}`", self.0),
        }
    }

    /// The identifier as an SQL string literal (used as a JSON key in `json_object(...)`).
    pub fn literal(&self) -> String {
        format!("'{}'", self.0)
    }
}

impl std::fmt::Display for SafeIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identifiers() {
        for ok in ["id", "_x", "Tenant_ID9", "a"] {
            assert!(is_safe_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "a-b",
            "a b",
            "a;",
            "a\"b",
            "a`b",
            "tenant_id--",
            "é",
            "a.b",
            "../private",
            "status; DROP TABLE tickets",
        ] {
            assert!(!is_safe_identifier(bad), "{bad}");
        }
        assert!(!is_safe_identifier(&"a".repeat(64)));
    }

    #[test]
    fn names() {
        assert!(is_capability_name("billing.inspect_invoice"));
        assert!(!is_capability_name("billing"));
        assert!(!is_capability_name("a.b.c"));
        assert!(!is_capability_name(".b"));
        assert!(is_env_name("SYNAPSOR_TENANT_ID"));
        assert!(!is_env_name("lower"));
        assert!(!is_env_name("1ABC"));
        assert!(is_context_name("local.operator-1"));
        assert!(!is_context_name("-x"));
    }

    #[test]
    fn quoting() {
        let id = SafeIdent::new("late_fee").unwrap();
        assert_eq!(id.quoted(Dialect::Ansi), "\"late_fee\"");
        assert_eq!(id.quoted(Dialect::MySql), "`late_fee`");
        assert!(SafeIdent::new("x\"; drop").is_none());
    }

    proptest! {
        #[test]
        fn quoted_safe_identifiers_never_contain_quotes_or_separators(s in "\\PC{0,40}") {
            if let Some(id) = SafeIdent::new(&s) {
                let inner = id.as_str();
                prop_assert!(!inner.contains(['"', '`', '\'', ';', ' ', '-', '/', '.', '\\']));
                prop_assert_eq!(id.quoted(Dialect::Ansi), format!("\"{}\"", inner));
            }
        }
    }
}
