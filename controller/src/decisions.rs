//! Verified decisions: the approvals and rejection the admission webhook records on a proposal.
//!
//! The webhook admits an `approve`/`reject` annotation only from a user RBAC allows the verb
//! `approve`, then replaces it with a record in a webhook-owned annotation, signed with a key
//! only the controller replicas hold. The signature binds the proposal's uid and digest, the
//! decision, the user and the time, so a record cannot be forged, moved to another proposal or
//! carried over to a changed spec, even by someone who can write annotations while the webhook
//! is misconfigured. The controller counts only records whose signature checks out.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{DecisionParseError, KeyError};

/// One verified decision, as stored (JSON) in the webhook-owned annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDecision {
    /// The Kubernetes user the API server authenticated.
    pub user: String,
    /// RFC 3339 UTC time the webhook admitted it.
    pub at: String,
    /// Present for a rejection: its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `v1=<hex HMAC-SHA256>` over [`signed_bytes`].
    pub sig: String,
}

/// The key the webhook signs with and the controller verifies with (shared by all replicas).
#[derive(Clone)]
pub struct DecisionKey(Vec<u8>);

impl std::fmt::Debug for DecisionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecisionKey(<redacted>)")
    }
}

/// Shorter keys are refused: the key is all that separates a verified approval from a forged one.
pub const MIN_KEY_BYTES: usize = 32;

impl DecisionKey {
    /// A key from the bytes of a key file (surrounding whitespace is ignored).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<DecisionKey, KeyError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_KEY_BYTES {
            return Err(KeyError { len: trimmed.len() });
        }
        Ok(DecisionKey(trimmed.to_vec()))
    }

    fn mac(&self, msg: &[u8]) -> String {
        // HMAC accepts keys of any length (long keys are hashed), so this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(msg);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Signs a decision by `user` at `at` on the proposal `uid` with spec digest `digest`.
    pub fn sign(&self, uid: &str, digest: &str, user: &str, at: &str, reason: Option<&str>) -> SignedDecision {
        let sig = self.mac(&signed_bytes(uid, digest, user, at, reason));
        SignedDecision {
            user: user.to_owned(),
            at: at.to_owned(),
            reason: reason.map(str::to_owned),
            sig,
        }
    }

    /// True when `d` was signed by this key for this proposal uid and digest.
    pub fn verify(&self, uid: &str, digest: &str, d: &SignedDecision) -> bool {
        let expected = self.mac(&signed_bytes(uid, digest, &d.user, &d.at, d.reason.as_deref()));
        constant_time_eq(expected.as_bytes(), d.sig.as_bytes())
    }
}

/// The signed message: length-prefixed fields, so no two field lists give the same bytes.
fn signed_bytes(uid: &str, digest: &str, user: &str, at: &str, reason: Option<&str>) -> Vec<u8> {
    let decision = if reason.is_some() { "reject" } else { "approve" };
    let mut out = Vec::new();
    for field in [
        "synapsor.decision.v1",
        uid,
        digest,
        decision,
        user,
        at,
        reason.unwrap_or(""),
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses the approvals annotation (a JSON list); an absent annotation is an empty list.
pub fn parse_approvals(value: Option<&String>) -> Result<Vec<SignedDecision>, DecisionParseError> {
    match value {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_str(v).map_err(|_| DecisionParseError::Approvals),
    }
}

/// Parses the rejection annotation.
pub fn parse_rejection(value: Option<&String>) -> Result<Option<SignedDecision>, DecisionParseError> {
    match value {
        None => Ok(None),
        Some(v) => serde_json::from_str(v)
            .map(Some)
            .map_err(|_| DecisionParseError::Rejection),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The default config, so PROPTEST_CASES sets the count (scripts/reliability.sh).
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// The annotations a user can write never panic the parser, and a decision parsed from
        /// them never verifies without the key.
        #[test]
        fn decision_annotations_never_panic(
            text in prop_oneof![
                ".{0,200}",
                r#"\[\{"user":"[a-z]{0,8}","at":"[0-9TZ:-]{0,24}","sig":"v1=[0-9a-f]{0,64}"\}\]"#,
                r#"\{"user":".{0,8}","reason":".{0,16}","at":".{0,8}","sig":".{0,70}"\}"#,
            ],
        ) {
            let text = text.to_owned();
            if let Ok(list) = parse_approvals(Some(&text)) {
                for d in &list {
                    prop_assert!(!key().verify("uid-1", "sha256:x", d));
                }
            }
            if let Ok(Some(d)) = parse_rejection(Some(&text)) {
                prop_assert!(!key().verify("uid-1", "sha256:x", &d));
            }
        }
    }

    fn key() -> DecisionKey {
        DecisionKey::from_file_bytes(b"0123456789abcdef0123456789abcdef\n").unwrap()
    }

    #[test]
    fn a_signature_binds_proposal_digest_user_time_and_decision() {
        let k = key();
        let d = k.sign("uid-1", "sha256:aa", "alice", "2026-11-25T10:00:00Z", None);
        assert!(k.verify("uid-1", "sha256:aa", &d));
        assert!(!k.verify("uid-2", "sha256:aa", &d), "another proposal");
        assert!(!k.verify("uid-1", "sha256:bb", &d), "another digest");
        for forged in [
            SignedDecision {
                user: "mallory".into(),
                ..d.clone()
            },
            SignedDecision {
                at: "2026-11-25T10:00:01Z".into(),
                ..d.clone()
            },
            SignedDecision {
                reason: Some("no".into()),
                ..d.clone()
            },
            SignedDecision {
                sig: "v1=00".into(),
                ..d.clone()
            },
        ] {
            assert!(!k.verify("uid-1", "sha256:aa", &forged), "{forged:?}");
        }
        let other = DecisionKey::from_file_bytes(&[b'x'; 40]).unwrap();
        assert!(!other.verify("uid-1", "sha256:aa", &d), "another key");
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(DecisionKey::from_file_bytes(b"short").is_err());
        assert!(DecisionKey::from_file_bytes(b"   \n").is_err());
        assert_eq!(format!("{:?}", key()), "DecisionKey(<redacted>)");
    }

    #[test]
    fn annotations_parse_or_fail_clearly() {
        assert!(parse_approvals(None).unwrap().is_empty());
        assert!(parse_approvals(Some(&"{".to_owned())).is_err());
        let d = key().sign("u", "d", "alice", "t", None);
        let list = serde_json::to_string(&vec![d.clone()]).unwrap();
        assert_eq!(parse_approvals(Some(&list)).unwrap(), vec![d]);
        assert!(parse_rejection(Some(&"[]".to_owned())).is_err());
    }
}
