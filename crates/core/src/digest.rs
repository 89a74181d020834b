//! Canonical JSON and SHA-256 digests.
//!
//! Canonical form: object keys sorted by their UTF-8 bytes, no insignificant whitespace, numbers
//! and strings as serde_json writes them. Digests of change sets must not depend on key order
//! (the original hit `SET_DIGEST_MISMATCH` from reordered keys).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical serialization of `v`.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Rewrites every integral floating-point number in `v` (`5500.0`) as an integer (`5500`), in
/// place. A change set is built with this applied before its digest is taken, so the digest
/// survives systems that do not keep the difference: the Kubernetes API server stores `0.0` as
/// `0`, and a digest over `0.0` would then no longer match the stored spec.
pub fn canonical_numbers(v: &mut Value) {
    match v {
        Value::Object(map) => map.values_mut().for_each(canonical_numbers),
        Value::Array(items) => items.iter_mut().for_each(canonical_numbers),
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                *v = Value::from(f as i64);
            }
        }
        _ => {}
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` of the canonical JSON of `v`.
pub fn digest_value(v: &Value) -> String {
    format!("sha256:{}", sha256_hex(canonical_json(v).as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Found by the `envelope` fuzz target: serde_json's default parser reads `9.9e37` (the
    /// shortest text of that f64) one unit in the last place off, so a change set holding such
    /// a value would no longer match its digest once read back. The workspace declares
    /// serde_json's `float_roundtrip` itself, instead of getting it from the dependencies of some
    /// of its crates only (the fuzz crate, without them, parsed inexactly).
    #[test]
    fn a_digest_survives_its_value_written_and_read_back() {
        for f in [
            9.9e37_f64,
            9.900000000000001e37,
            0.1 + 0.2,
            f64::MAX,
            5e-324,
            f64::MIN_POSITIVE,
        ] {
            let v = serde_json::json!({"before": {"fee": f}, "after": {"fee": -f}});
            let back: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back, v, "{f:e}");
            assert_eq!(digest_value(&back), digest_value(&v), "{f:e}");
        }
        let text = r#"{"ee":99000000000000000012919594847110692112}"#;
        let parsed: Value = serde_json::from_str(text).unwrap();
        let again: Value = serde_json::from_str(&parsed.to_string()).unwrap();
        assert_eq!(again, parsed);
    }

    #[test]
    fn integral_floats_become_integers_and_fractions_stay() {
        let mut v = serde_json::json!({"a": 0.0, "b": [5500.0, 12.5, -3.0], "c": {"d": 1e300, "e": "1.0"}, "f": 7});
        canonical_numbers(&mut v);
        assert_eq!(
            canonical_json(&v),
            r#"{"a":0,"b":[5500,12.5,-3],"c":{"d":1e+300,"e":"1.0"},"f":7}"#
        );
    }
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_digest() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_eq!(digest_value(&a), digest_value(&b));
        assert_ne!(
            digest_value(&a),
            digest_value(&json!({"b": 2, "a": {"y": [1, 2], "x": "s"}}))
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(canonical_json(&json!({"k\"": "v\n"})), r#"{"k\"":"v\n"}"#);
    }
}
