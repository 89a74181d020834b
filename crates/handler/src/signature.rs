//! Signing and verifying: `X-Synapsor-Signature: t=<t>,kid=<kid>,v1=<hex>`.
//!
//! `v1 = hex(HMAC-SHA256(secret, "<t>." + body))`, where `<t>` is the decimal Unix time in
//! seconds and `body` the exact bytes sent. Covering `t` means an old body cannot be replayed
//! with a fresh timestamp, and a fresh timestamp cannot be attached to an old body.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{KeyError, VerifyError};
use crate::wire::{HandlerRequest, REQUEST_SCHEMA};

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted signing secret, in bytes (256 bits, the HMAC-SHA256 output size).
pub const MIN_SECRET_LEN: usize = 32;

/// The key id a runner signs with when its executor has no `signing_key_id`.
pub const DEFAULT_KEY_ID: &str = "default";

/// Largest request body [`verify`] accepts (1 MiB); a handler should refuse bigger bodies
/// before buffering them.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn mac_for(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed), so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Synapsor-Signature` value for `body` sent at Unix time `t` with key `key_id`.
///
/// `key_id` should be a valid key id (1-64 of `A-Z a-z 0-9 . _ -`; see [`SigningKey`], which
/// checks it once): a key id with `,` or `=` would make the header unparseable.
pub fn sign(secret: &[u8], key_id: &str, t: i64, body: &[u8]) -> String {
    let tag = mac_for(secret, t, body).finalize().into_bytes();
    format!("t={t},kid={key_id},v1={}", hex::encode(tag))
}

fn valid_key_id(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether an `Authorization` header value is `Bearer <token>`, compared in constant time (over
/// SHA-256 digests, so neither the length nor the first differing byte shows in the timing).
pub fn bearer_matches(authorization: Option<&str>, token: &str) -> bool {
    use sha2::Digest;
    let given = Sha256::digest(authorization.unwrap_or("").as_bytes());
    let expected = Sha256::digest(format!("Bearer {token}").as_bytes());
    given.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A checked secret: at least [`MIN_SECRET_LEN`] bytes. `Debug` never shows it.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

fn check_secret(secret: &[u8]) -> Result<Secret, KeyError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(KeyError::SecretTooShort {
            got: secret.len(),
            min: MIN_SECRET_LEN,
        });
    }
    Ok(Secret(secret.to_vec()))
}

/// One key the runner signs with: a key id and its secret, both checked.
#[derive(Debug, Clone)]
pub struct SigningKey {
    key_id: String,
    secret: Secret,
}

impl SigningKey {
    pub fn new(key_id: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let key_id = key_id.into();
        if !valid_key_id(&key_id) {
            return Err(KeyError::InvalidKeyId(key_id));
        }
        Ok(SigningKey {
            secret: check_secret(secret.as_ref())?,
            key_id,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// [`sign`] with this key.
    pub fn sign(&self, t: i64, body: &[u8]) -> String {
        sign(&self.secret.0, &self.key_id, t, body)
    }
}

/// The keys a handler accepts, by key id. Hold two during a rotation: the runner signs with the
/// new key id while requests signed with the old one still verify, then drop the old one.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, Secret>,
}

impl KeyRing {
    pub fn new() -> Self {
        KeyRing::default()
    }

    /// A ring with one key.
    pub fn single(key_id: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let mut ring = KeyRing::new();
        ring.insert(key_id, secret)?;
        Ok(ring)
    }

    /// Adds (or replaces) a key. Refuses secrets shorter than [`MIN_SECRET_LEN`] bytes and key
    /// ids outside 1-64 of `A-Z a-z 0-9 . _ -`.
    pub fn insert(&mut self, key_id: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<(), KeyError> {
        let key = SigningKey::new(key_id, secret)?;
        self.keys.insert(key.key_id, key.secret);
        Ok(())
    }

    /// Stops accepting a key id; returns whether it was present.
    pub fn remove(&mut self, key_id: &str) -> bool {
        self.keys.remove(key_id).is_some()
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.keys.contains_key(key_id)
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn secret(&self, key_id: &str) -> Option<&[u8]> {
        self.keys.get(key_id).map(|s| s.0.as_slice())
    }
}

/// A parsed `X-Synapsor-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// Unix seconds.
    pub t: i64,
    pub key_id: String,
    /// The 32-byte MAC.
    pub v1: Vec<u8>,
}

impl SignatureHeader {
    /// Parses `t=<digits>,kid=<key id>,v1=<64 hex>`. Whitespace around parts is ignored, as are
    /// parts with other names (room for future schemes); `t`, `kid` and `v1` must each appear
    /// exactly once.
    pub fn parse(value: &str) -> Result<SignatureHeader, VerifyError> {
        if value.trim().is_empty() {
            return Err(VerifyError::SignatureMissing);
        }
        let (mut t, mut kid, mut v1) = (None, None, None);
        for part in value.split(',') {
            let Some((name, val)) = part.trim().split_once('=') else {
                return Err(VerifyError::SignatureMalformed("every part must be name=value"));
            };
            let slot = match name.trim() {
                "t" => &mut t,
                "kid" => &mut kid,
                "v1" => &mut v1,
                _ => continue,
            };
            if slot.replace(val.trim()).is_some() {
                return Err(VerifyError::SignatureMalformed("t, kid and v1 must appear once"));
            }
        }
        let t = t.ok_or(VerifyError::SignatureMalformed("t= is missing"))?;
        let kid = kid.ok_or(VerifyError::SignatureMalformed("kid= is missing"))?;
        let v1 = v1.ok_or(VerifyError::SignatureMalformed("v1= is missing"))?;
        if t.is_empty() || t.len() > 18 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::SignatureMalformed("t= must be Unix seconds"));
        }
        let t: i64 = t
            .parse()
            .map_err(|_| VerifyError::SignatureMalformed("t= must be Unix seconds"))?;
        if !valid_key_id(kid) {
            return Err(VerifyError::SignatureMalformed("kid= is not a valid key id"));
        }
        if v1.len() != 64 {
            return Err(VerifyError::SignatureMalformed("v1= must be 64 hex digits"));
        }
        let v1 = hex::decode(v1).map_err(|_| VerifyError::SignatureMalformed("v1= must be 64 hex digits"))?;
        Ok(SignatureHeader {
            t,
            key_id: kid.to_owned(),
            v1,
        })
    }
}

/// What a verified signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signature's Unix time.
    pub t: i64,
    /// The key that verified it.
    pub key_id: String,
}

/// Checks the signature and its time window only, without looking at what the body contains.
/// Use it for event webhook envelopes; use [`verify`] for handler requests.
///
/// Order: header present and well formed → key id known → MAC matches (constant time) →
/// `|now_unix - t| <= skew_secs`.
pub fn verify_signature(
    header_value: Option<&str>,
    body: &[u8],
    keys: &KeyRing,
    now_unix: i64,
    skew_secs: u64,
) -> Result<Verified, VerifyError> {
    let header = SignatureHeader::parse(header_value.ok_or(VerifyError::SignatureMissing)?)?;
    let secret = keys
        .secret(&header.key_id)
        .ok_or_else(|| VerifyError::UnknownKeyId(header.key_id.clone()))?;
    // `verify_slice` compares in constant time.
    mac_for(secret, header.t, body)
        .verify_slice(&header.v1)
        .map_err(|_| VerifyError::SignatureMismatch)?;
    if now_unix.abs_diff(header.t) > skew_secs {
        return Err(VerifyError::TimestampOutOfWindow {
            t: header.t,
            now: now_unix,
            skew_secs,
        });
    }
    Ok(Verified {
        t: header.t,
        key_id: header.key_id,
    })
}

/// Verifies a signed handler request and parses it.
///
/// On top of [`verify_signature`]: the body must be at most [`MAX_BODY_BYTES`], parse as a
/// [`HandlerRequest`] (unknown fields refused), carry `schema_version` [`REQUEST_SCHEMA`], and
/// have `issued_at` equal to the signature's `t`. Replays of the idempotency key are the next
/// check, with your [`crate::ReplayGuard`] (ideally: your own receipts table, in the write's
/// transaction).
pub fn verify(
    header_value: Option<&str>,
    body: &[u8],
    keys: &KeyRing,
    now_unix: i64,
    skew_secs: u64,
) -> Result<HandlerRequest, VerifyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(VerifyError::RequestInvalid(format!(
            "body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let verified = verify_signature(header_value, body, keys, now_unix, skew_secs)?;
    let req: HandlerRequest = serde_json::from_slice(body)
        .map_err(|e| VerifyError::RequestInvalid(format!("body is not a handler request: {e}")))?;
    if req.schema_version != REQUEST_SCHEMA {
        return Err(VerifyError::RequestInvalid(format!(
            "schema_version must be {REQUEST_SCHEMA}"
        )));
    }
    if req.issued_at != verified.t {
        return Err(VerifyError::RequestInvalid(
            "issued_at differs from the signature timestamp".into(),
        ));
    }
    Ok(req)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn header_shape() {
        let h = sign(SECRET, "k1", 1_700_000_000, b"{}");
        assert!(h.starts_with("t=1700000000,kid=k1,v1="));
        assert_eq!(h.len(), "t=1700000000,kid=k1,v1=".len() + 64);
        let p = SignatureHeader::parse(&h).unwrap();
        assert_eq!((p.t, p.key_id.as_str(), p.v1.len()), (1_700_000_000, "k1", 32));
    }

    #[test]
    fn parse_rejections() {
        let v1 = "a".repeat(64);
        for bad in [
            "garbage",
            "t=1,kid=k",
            &format!("t=-1,kid=k,v1={v1}"),
            &format!("t=1,t=2,kid=k,v1={v1}"),
            &format!("t=1,kid=a b,v1={v1}"),
            "t=1,kid=k,v1=abc",
            &format!("t=1,kid=k,v1={}", "z".repeat(64)),
        ] {
            assert_eq!(
                SignatureHeader::parse(bad).unwrap_err().code(),
                "SIGNATURE_MALFORMED",
                "{bad}"
            );
        }
        assert_eq!(SignatureHeader::parse("  ").unwrap_err().code(), "SIGNATURE_MISSING");
        // Unknown parts are ignored.
        assert!(SignatureHeader::parse(&format!("t=1, kid=k ,v1={v1},v9=x")).is_ok());
    }

    #[test]
    fn keys_are_checked_and_redacted() {
        assert_eq!(
            KeyRing::single("k", b"short").unwrap_err().code(),
            "SIGNING_SECRET_TOO_SHORT"
        );
        assert_eq!(
            KeyRing::single("a,b", SECRET).unwrap_err().code(),
            "SIGNING_KEY_ID_INVALID"
        );
        let ring = KeyRing::single("k", SECRET).unwrap();
        assert!(!format!("{ring:?}").contains("0123456789"));
        let key = SigningKey::new("k", SECRET).unwrap();
        assert!(!format!("{key:?}").contains("0123456789"));
        assert_eq!(key.sign(5, b"x"), sign(SECRET, "k", 5, b"x"));
    }

    #[test]
    fn bearer() {
        assert!(bearer_matches(Some("Bearer tok-123"), "tok-123"));
        assert!(!bearer_matches(Some("Bearer tok-124"), "tok-123"));
        assert!(!bearer_matches(Some("tok-123"), "tok-123"));
        assert!(!bearer_matches(None, "tok-123"));
    }
}
