//! Refusal of secret-looking material before anything is written to the ledger.
//!
//! The ledger is evidence that people read and export; a password or connection URL that slips
//! into a row (for example because a reviewed capability exposes a `password_hash` column) must
//! not be stored. A match fails the call with `SECRET_MATERIAL_REJECTED`.

use serde_json::Value;

const SECRET_KEY_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "private-key",
    "cookie",
    "credential",
    "connection_string",
    "connectionstring",
    "database_url",
    "databaseurl",
    "read_url",
    "write_url",
];

/// True when a JSON key names secret material (`db_password`, `apiKey`, `session-token`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_WORDS.iter().any(|w| {
        k.match_indices(w).any(|(i, _)| {
            let before_ok = i == 0 || matches!(k.as_bytes()[i - 1], b'_' | b'-');
            let end = i + w.len();
            let after_ok = end == k.len() || matches!(k.as_bytes()[end], b'_' | b'-' | b's');
            before_ok && after_ok
        })
    })
}

/// True when a string value looks like a credential: a database URL with credentials, a bearer
/// token or a PEM private key.
pub fn is_secret_value(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    ["postgres://", "postgresql://", "mysql://", "mariadb://"]
        .iter()
        .any(|p| lower.contains(p))
        || lower.contains("bearer ") && s.len() > 20
        || s.contains("-----BEGIN") && s.contains("PRIVATE KEY-----")
}

/// The JSON path of the first secret-looking key or value in `v`, if any.
pub fn find_secret(v: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> Option<String> {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    if is_secret_key(k) && !matches!(child, Value::Null | Value::Bool(_)) {
                        return Some(path.clone());
                    }
                    if let Some(p) = walk(child, path) {
                        return Some(p);
                    }
                    path.truncate(len);
                }
                None
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if let Some(p) = walk(child, path) {
                        return Some(p);
                    }
                    path.truncate(len);
                }
                None
            }
            Value::String(s) if is_secret_value(s) => Some(path.clone()),
            _ => None,
        }
    }
    walk(v, &mut "$".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        for k in [
            "password",
            "db_password",
            "apiKey",
            "session-token",
            "tokens",
            "private_key",
            "DATABASE_URL",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "late_fee_cents",
            "tokenizer",
            "passage",
            "secretary_name",
            "status",
            "id",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn values() {
        assert!(is_secret_value("postgres://u:p@h/db"));
        assert!(is_secret_value("Bearer abcdefghijklmnopqrstuvwxyz"));
        assert!(!is_secret_value("INV-3001"));
        assert_eq!(
            find_secret(&json!({"row": {"note": "mysql://root:x@db"}})).as_deref(),
            Some("$.row.note")
        );
        assert_eq!(
            find_secret(&json!({"row": {"password_hash": "x"}})).as_deref(),
            Some("$.row.password_hash")
        );
        assert_eq!(find_secret(&json!({"row": {"late_fee_cents": 5500}})), None);
    }
}
