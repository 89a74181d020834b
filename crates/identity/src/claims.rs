//! Reading claims by name or dotted path.
//!
//! A name is looked up as a top-level claim first, so namespaced claims such as
//! `https://example.com/tenant` work as they are; otherwise it is split on `.` and followed
//! through nested objects (`org.id`).

use serde_json::{Map, Value};

use crate::AuthError;

/// Longest tenant, principal or subject accepted.
pub const MAX_CLAIM_CHARS: usize = 256;

/// The claim at `path`, if present.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// The claim at `path` as a non-empty string of at most [`MAX_CLAIM_CHARS`] characters without
/// control characters: `ClaimMissing` when absent (or null), `ClaimInvalid` otherwise.
pub fn claim_string(claims: &Map<String, Value>, path: &str) -> Result<String, AuthError> {
    match lookup(claims, path) {
        None | Some(Value::Null) => Err(AuthError::ClaimMissing(shown(path))),
        Some(Value::String(s))
            if !s.trim().is_empty() && s.chars().count() <= MAX_CLAIM_CHARS && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(AuthError::ClaimInvalid(shown(path))),
    }
}

/// The claim at `path` as a list of strings: an array's strings, or a string split on
/// whitespace (like OAuth's `scope`). Anything else is an empty list.
pub fn claim_strings(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    match lookup(claims, path) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A claim path as it may appear in a message: config-chosen, but kept short and printable.
fn shown(path: &str) -> String {
    path.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// Decodes unpadded base64url (the JWT segment encoding).
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_then_dotted_paths() {
        let c = claims(json!({
            "sub": "u-1",
            "https://example.com/tenant": "acme",
            "org": {"id": "globex", "n": 7},
            "empty": " ",
            "ctl": "a\nb",
            "long": "x".repeat(MAX_CLAIM_CHARS + 1),
        }));
        assert_eq!(claim_string(&c, "sub").unwrap(), "u-1");
        assert_eq!(claim_string(&c, "https://example.com/tenant").unwrap(), "acme");
        assert_eq!(claim_string(&c, "org.id").unwrap(), "globex");
        assert_eq!(claim_string(&c, "org.x"), Err(AuthError::ClaimMissing("org.x".into())));
        assert_eq!(claim_string(&c, "org.n"), Err(AuthError::ClaimInvalid("org.n".into())));
        assert_eq!(claim_string(&c, "org"), Err(AuthError::ClaimInvalid("org".into())));
        for bad in ["empty", "ctl", "long"] {
            assert!(
                matches!(claim_string(&c, bad), Err(AuthError::ClaimInvalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn role_lists() {
        let c = claims(json!({"roles": ["a", 1, "b"], "scope": "x y", "realm": {"roles": ["r"]}}));
        assert_eq!(claim_strings(&c, "roles"), ["a", "b"]);
        assert_eq!(claim_strings(&c, "scope"), ["x", "y"]);
        assert_eq!(claim_strings(&c, "realm.roles"), ["r"]);
        assert!(claim_strings(&c, "none").is_empty());
    }

    #[test]
    fn base64url() {
        assert_eq!(b64url_decode("eyJhbGciOiJub25lIn0").unwrap(), br#"{"alg":"none"}"#);
        assert_eq!(b64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(b64url_decode("a+b").is_none());
    }
}
