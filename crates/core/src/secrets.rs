//! Refusal of secret-looking material before anything is written to the ledger.
//!
//! The ledger is evidence that people read and export; a password or connection URL that slips
//! into a row (for example because a reviewed capability exposes a `password_hash` column) must
//! not be stored. A match fails the call with `SECRET_MATERIAL_REJECTED`, the same code for a
//! connection URL, a key, a token or a private key.

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

/// True when a JSON key names secret material (`db_password`, `apiKey`, `session-token`, ...):
/// one of the words above, ASCII case-insensitive, starting the key or after `_`/`-`, and ending
/// it or followed by `_`, `-` or a plural `s`.
///
/// Runs on every key of every ledger record, so it compares bytes in place instead of building
/// a lowercase copy and a substring searcher per word.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.as_bytes();
    (0..k.len())
        .filter(|&i| i == 0 || matches!(k[i - 1], b'_' | b'-'))
        .any(|i| {
            SECRET_KEY_WORDS.iter().any(|w| {
                let end = i + w.len();
                end <= k.len()
                    && k[i..end].eq_ignore_ascii_case(w.as_bytes())
                    && (end == k.len() || matches!(k[end], b'_' | b'-' | b's' | b'S'))
            })
        })
}

/// Prefixes of API keys and access tokens that say what they are: the key's vendor marks it so
/// that scanners like this one find it. Followed by at least [`KEY_BODY_MIN`] key characters.
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "whsec_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AIza",
    "hf_",
    "npm_",
    "pypi-",
];

/// The shortest body after a [`KEY_PREFIXES`] entry that counts as a key (`sk-1` is not one).
const KEY_BODY_MIN: usize = 16;

/// True when a string value looks like a credential: a connection URL with credentials (any
/// scheme) or to a database, a bearer token, a JWT, a PEM private key, or an API key or access
/// token of a known shape (`sk-live-...`, `ghp_...`, `AKIA...`).
pub fn is_secret_value(s: &str) -> bool {
    s.contains("://")
        && (["postgres://", "postgresql://", "mysql://", "mariadb://"]
            .iter()
            .any(|p| contains_ignore_ascii_case(s, p))
            || has_url_password(s))
        || s.len() > 20 && contains_ignore_ascii_case(s, "bearer ")
        || s.contains("-----BEGIN") && s.contains("PRIVATE KEY-----")
        || looks_like_jwt(s)
        || words(s).any(looks_like_api_key)
}

/// The runs of key characters in `s` (letters, digits, `_`, `-`).
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
}

fn looks_like_api_key(w: &str) -> bool {
    let key_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let prefixed = KEY_PREFIXES.iter().any(|p| {
        w.len() >= p.len() + KEY_BODY_MIN
            && w.starts_with(p)
            && w.as_bytes()[p.len()..].iter().all(|&b| key_char(b))
            // A real key mixes letters and digits; `sk-the-quick-brown-fox` is prose.
            && w.bytes().any(|b| b.is_ascii_digit())
    });
    // AWS access key ids: AKIA (long-term) or ASIA (temporary), then 16 upper-case letters or
    // digits.
    let aws = w.len() == 20
        && (w.starts_with("AKIA") || w.starts_with("ASIA"))
        && w.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    prefixed || aws
}

/// `scheme://user:password@host`: a URL that carries a password, whatever its scheme.
fn has_url_password(s: &str) -> bool {
    s.match_indices("://").any(|(i, _)| {
        let rest = &s[i + 3..];
        let authority = rest
            .split(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .next()
            .unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, pw)| !pw.is_empty()))
    })
}

/// A compact JWS: a base64url JSON header (`eyJ`...), then a payload and a signature segment.
fn looks_like_jwt(s: &str) -> bool {
    let mut parts = s.trim().split('.');
    let (Some(h), Some(p), Some(_sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let b64 = |x: &str| x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    h.starts_with("eyJ") && h.len() >= 10 && p.len() >= 10 && b64(h) && b64(p)
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
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
            "Password",
            "user_PASSWORDS",
            "x-api-key",
            "old_token_",
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
            "",
            "s",
            "mytoken",
            "token2",
            "passwordless_login",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn values() {
        assert!(is_secret_value("postgres://u:p@h/db"));
        assert!(is_secret_value("Bearer abcdefghijklmnopqrstuvwxyz"));
        assert!(is_secret_value("see PostgreSQL://u:p@h/db for details"));
        assert!(is_secret_value("MariaDB://root@db"));
        assert!(is_secret_value("authorization: BEARER abcdefghijklmnop"));
        assert!(!is_secret_value("bearer abc"), "too short to be a token");
        assert!(!is_secret_value("https://example.com/invoices/1"));
        assert!(!is_secret_value("INV-3001"));
        assert!(!is_secret_value(""));
        // A JWT, wherever it is: the ledger records who a token named, never the token.
        assert!(is_secret_value(
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLWJ5dGVz"
        ));
        assert!(!is_secret_value("eyJhbGciOi.not a jwt.x"));
        assert!(!is_secret_value("v1.2.3"));
        // API keys and access tokens of a known shape, alone or inside text.
        for key in [
            "sk-live-4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk-proj-abcdefghijklmnop0123456789",
            "please use ghp_16C7e42F292c6912E7710c838347Ae178B4a for the fix",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "xoxb-123456789012-1234567890123-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "glpat-xxxxxxxxxx1234567890",
        ] {
            assert!(is_secret_value(key), "{key}");
        }
        // Connection URLs with a password, whatever the scheme.
        assert!(is_secret_value("amqp://app:s3cret@mq.internal:5672/vhost"));
        assert!(is_secret_value("redis://:hunter2@cache:6379/0"));
        assert!(is_secret_value("see https://user:pw@example.com/x"));
        // Not credentials: ids, prose, short prefixes, URLs without a password.
        for plain in [
            "sk-1",
            "sk-the-quick-brown-fox-jumps",
            "task-4521",
            "AKIA",
            "AKIAIOSFODNN7EXAMPLE1",
            "https://user@example.com/",
            "mailto:billing@example.com",
            "INV-2026-000123",
            "hf_",
        ] {
            assert!(!is_secret_value(plain), "{plain}");
        }
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
