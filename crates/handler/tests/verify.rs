//! Signing and verification of handler requests: what passes and every way it must fail.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use synapsor_handler::*;

const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";
const OTHER_SECRET: &[u8] = b"another-secret-0123456789abcdef-01234567";
const KID: &str = "k2025";
const T: i64 = 1_782_205_200;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/request.json")).unwrap()
}

fn body_at(t: i64) -> Vec<u8> {
    let mut v = fixture();
    v["issued_at"] = json!(t);
    serde_json::to_vec(&v).unwrap()
}

fn keys() -> KeyRing {
    KeyRing::single(KID, SECRET).unwrap()
}

fn code(r: Result<HandlerRequest, VerifyError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn good_signature_verifies_and_parses() {
    let body = body_at(T);
    let header = sign(SECRET, KID, T, &body);
    let req = verify(Some(&header), &body, &keys(), T + 10, DEFAULT_SKEW_SECS).unwrap();
    assert_eq!(req.issued_at, T);
    assert_eq!(req.target.primary_key.value, "tkt_glbx_402");
    // Both edges of the window pass.
    assert!(verify(Some(&header), &body, &keys(), T + 300, 300).is_ok());
    assert!(verify(Some(&header), &body, &keys(), T - 300, 300).is_ok());
}

#[test]
fn tampered_body_is_rejected() {
    let body = body_at(T);
    let header = sign(SECRET, KID, T, &body);
    let tampered = String::from_utf8(body).unwrap().replace("\"high\"", "\"urgent\"");
    assert_eq!(
        code(verify(Some(&header), tampered.as_bytes(), &keys(), T, 300)),
        "SIGNATURE_MISMATCH"
    );
}

#[test]
fn changed_timestamp_is_rejected() {
    // A fresh t on an old signature: the MAC covers t, so it no longer matches.
    let body = body_at(T);
    let header = sign(SECRET, KID, T, &body);
    let moved = header.replacen(&format!("t={T}"), &format!("t={}", T + 60), 1);
    assert_eq!(
        code(verify(Some(&moved), &body, &keys(), T + 60, 300)),
        "SIGNATURE_MISMATCH"
    );
}

#[test]
fn wrong_key_is_rejected() {
    let body = body_at(T);
    let header = sign(OTHER_SECRET, KID, T, &body);
    assert_eq!(
        code(verify(Some(&header), &body, &keys(), T, 300)),
        "SIGNATURE_MISMATCH"
    );
}

#[test]
fn unknown_kid_is_rejected() {
    let body = body_at(T);
    let header = sign(SECRET, "k2024", T, &body);
    assert_eq!(code(verify(Some(&header), &body, &keys(), T, 300)), "UNKNOWN_KEY_ID");
    assert_eq!(
        code(verify(Some(&header), &body, &KeyRing::new(), T, 300)),
        "UNKNOWN_KEY_ID"
    );
}

#[test]
fn rotation_accepts_both_key_ids() {
    let mut ring = keys();
    ring.insert("k2026", OTHER_SECRET).unwrap();
    let body = body_at(T);
    for (kid, secret) in [(KID, SECRET), ("k2026", OTHER_SECRET)] {
        let header = sign(secret, kid, T, &body);
        assert!(verify(Some(&header), &body, &ring, T, 300).is_ok(), "{kid}");
    }
    // The key id selects the secret: the new secret under the old id fails.
    let crossed = sign(OTHER_SECRET, KID, T, &body);
    assert_eq!(code(verify(Some(&crossed), &body, &ring, T, 300)), "SIGNATURE_MISMATCH");
    ring.remove(KID);
    let old = sign(SECRET, KID, T, &body);
    assert_eq!(code(verify(Some(&old), &body, &ring, T, 300)), "UNKNOWN_KEY_ID");
}

#[test]
fn stale_and_future_timestamps_are_rejected() {
    let body = body_at(T);
    let header = sign(SECRET, KID, T, &body);
    let stale = verify(Some(&header), &body, &keys(), T + 301, 300).unwrap_err();
    assert_eq!(stale.code(), "TIMESTAMP_OUT_OF_WINDOW");
    assert_eq!(stale.http_status(), 401);
    assert_eq!(
        code(verify(Some(&header), &body, &keys(), T - 301, 300)),
        "TIMESTAMP_OUT_OF_WINDOW"
    );
}

#[test]
fn missing_and_malformed_headers_are_rejected() {
    let body = body_at(T);
    assert_eq!(code(verify(None, &body, &keys(), T, 300)), "SIGNATURE_MISSING");
    assert_eq!(code(verify(Some(""), &body, &keys(), T, 300)), "SIGNATURE_MISSING");
    // The upstream format (`sha256=<hex>` over the body only) is not accepted.
    assert_eq!(
        code(verify(
            Some(&format!("sha256={}", "0".repeat(64))),
            &body,
            &keys(),
            T,
            300
        )),
        "SIGNATURE_MALFORMED"
    );
}

#[test]
fn issued_at_must_equal_t() {
    // Correctly signed, but the body's issued_at says another time.
    let body = body_at(T - 3600);
    let header = sign(SECRET, KID, T, &body);
    let e = verify(Some(&header), &body, &keys(), T, 300).unwrap_err();
    assert_eq!(e.code(), "REQUEST_INVALID");
    assert!(e.to_string().contains("issued_at"), "{e}");
    assert_eq!(e.http_status(), 400);
}

#[test]
fn unknown_fields_and_wrong_schema_are_rejected() {
    let mut v = fixture();
    v["change_set"] = json!({});
    let body = serde_json::to_vec(&v).unwrap();
    let header = sign(SECRET, KID, T, &body);
    let e = verify(Some(&header), &body, &keys(), T, 300).unwrap_err();
    assert_eq!(e.code(), "REQUEST_INVALID");
    assert!(e.to_string().contains("change_set"), "{e}");

    let mut v = fixture();
    v["tenant"]["extra"] = json!(1);
    let body = serde_json::to_vec(&v).unwrap();
    let header = sign(SECRET, KID, T, &body);
    assert_eq!(code(verify(Some(&header), &body, &keys(), T, 300)), "REQUEST_INVALID");

    let mut v = fixture();
    v["schema_version"] = json!("synapsor.handler-writeback.v1");
    let body = serde_json::to_vec(&v).unwrap();
    let header = sign(SECRET, KID, T, &body);
    assert_eq!(code(verify(Some(&header), &body, &keys(), T, 300)), "REQUEST_INVALID");

    let body = b"not json".to_vec();
    let header = sign(SECRET, KID, T, &body);
    assert_eq!(code(verify(Some(&header), &body, &keys(), T, 300)), "REQUEST_INVALID");
}

#[test]
fn oversized_body_is_rejected_before_the_mac() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(
        code(verify(Some("t=1,kid=k,v1=00"), &body, &keys(), T, 300)),
        "REQUEST_INVALID"
    );
}

#[test]
fn replayed_idempotency_key_is_rejected() {
    let body = body_at(T);
    let header = sign(SECRET, KID, T, &body);
    let seen = SeenKeys::new();
    let req = verify(Some(&header), &body, &keys(), T, 300).unwrap();
    seen.claim(&req.idempotency_key).unwrap();
    // The very same signed request again, inside the window.
    let again = verify(Some(&header), &body, &keys(), T + 5, 300).unwrap();
    let e = seen.claim(&again.idempotency_key).unwrap_err();
    assert_eq!(e.code(), "REPLAYED");
    assert_eq!(e.http_status(), 409);
}

#[test]
fn verify_signature_ignores_the_body_shape() {
    let body = br#"{"schema_version":"synapsor.event-webhook.v1"}"#;
    let header = sign(SECRET, KID, T, body);
    let v = verify_signature(Some(&header), body, &keys(), T, 300).unwrap();
    assert_eq!((v.t, v.key_id.as_str()), (T, KID));
    assert_eq!(
        verify_signature(Some(&header), b"{}", &keys(), T, 300)
            .unwrap_err()
            .code(),
        "SIGNATURE_MISMATCH"
    );
}

#[test]
fn guards_against_the_current_row() {
    let req: HandlerRequest = serde_json::from_value(fixture()).unwrap();
    check_tenant(&req, &json!("globex")).unwrap();
    assert_eq!(check_tenant(&req, &json!("acme")).unwrap_err().code(), "ROW_NOT_FOUND");
    assert_eq!(
        check_tenant(&req, &Value::Null).unwrap_err().receipt().status,
        ReceiptStatus::Conflict
    );

    // Same instant, other spellings (Postgres text, MySQL DATETIME, JS toISOString).
    for same in [
        "2025-03-07 10:05:00+00",
        "2025-03-07 10:05:00",
        "2025-03-07T10:05:00.000Z",
    ] {
        check_version(&req, &json!(same)).unwrap();
    }
    let e = check_version(&req, &json!("2025-03-07T10:05:00.000001Z")).unwrap_err();
    assert_eq!(e.code(), "VERSION_CONFLICT");
    assert_eq!(e.receipt(), HandlerReceipt::conflict("VERSION_CONFLICT"));

    check_patch_allowed(&req).unwrap();
    check_patch_within(&req, &["priority"]).unwrap();
    assert_eq!(
        check_patch_within(&req, &["status"]).unwrap_err().code(),
        "PATCH_COLUMN_NOT_ALLOWED"
    );
    let mut bad = req.clone();
    bad.patch.insert("tenant_id".into(), json!("acme"));
    bad.allowed_columns.push("tenant_id".into());
    let e = check_patch_allowed(&bad).unwrap_err();
    assert_eq!(e.code(), "PATCH_COLUMN_NOT_ALLOWED");
    assert_eq!(e.receipt().status, ReceiptStatus::Failed);
    let mut bad = req.clone();
    bad.patch.insert("assignee".into(), json!("eve"));
    assert_eq!(
        check_patch_allowed(&bad).unwrap_err().code(),
        "PATCH_COLUMN_NOT_ALLOWED"
    );
    bad.patch.clear();
    assert_eq!(check_patch_allowed(&bad).unwrap_err().code(), "PATCH_EMPTY");
    let mut weak = req;
    weak.expected_version.column = ROW_HASH_COLUMN.into();
    assert_eq!(
        check_version(&weak, &json!("x")).unwrap_err().code(),
        "VERSION_GUARD_UNSUPPORTED"
    );
}

#[test]
fn receipts() {
    let a = HandlerReceipt::applied(1).with_new_version("2026-06-23T09:00:00.000000Z");
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        json!({"schema_version": RECEIPT_SCHEMA, "status": "applied", "rows_affected": 1,
               "new_version": "2026-06-23T09:00:00.000000Z"})
    );
    assert_eq!(a.http_status(), 200);
    let d = HandlerReceipt::already_applied();
    assert_eq!(
        (d.status, d.rows_affected, d.is_success()),
        (ReceiptStatus::AlreadyApplied, 0, true)
    );
    let c = HandlerReceipt::conflict("VERSION_CONFLICT");
    assert_eq!(
        (c.http_status(), c.error_code.as_deref()),
        (200, Some("VERSION_CONFLICT"))
    );
    let f = HandlerReceipt::failed("PATCH_COLUMN_NOT_ALLOWED").with_message("assignee");
    assert_eq!((f.http_status(), f.is_success()), (422, false));
    assert_eq!(
        VerifyError::SignatureMismatch.receipt().error_code.as_deref(),
        Some("SIGNATURE_MISMATCH")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change of a single byte of the body breaks the signature.
    #[test]
    fn any_single_byte_change_fails(idx in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let mut body = body_at(T);
        let header = sign(SECRET, KID, T, &body);
        let i = idx.index(body.len());
        body[i] = body[i].wrapping_add(delta);
        let e = verify(Some(&header), &body, &keys(), T, 300).unwrap_err();
        prop_assert_eq!(e.code(), "SIGNATURE_MISMATCH");
    }

    /// Any timestamp other than the signed one breaks it too, whatever the window.
    #[test]
    fn any_other_t_fails(other in 0i64..4_000_000_000) {
        prop_assume!(other != T);
        let body = body_at(T);
        let header = sign(SECRET, KID, T, &body).replacen(&format!("t={T}"), &format!("t={other}"), 1);
        let e = verify_signature(Some(&header), &body, &keys(), other, u64::MAX).unwrap_err();
        prop_assert_eq!(e.code(), "SIGNATURE_MISMATCH");
    }
}

proptest! {
    // The default config, so PROPTEST_CASES sets the count (scripts/reliability.sh: a million).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Verification never panics, whatever the header, body, clock and window, and accepts
    /// nothing that was not signed with the key.
    #[test]
    fn verify_never_panics_on_any_header(
        header in prop_oneof![
            ".{0,200}",
            "t=[0-9-]{0,20},v1=[0-9a-f]{0,80}",
            "(t|v1|kid|v0)=[^,]{0,40}(,(t|v1|kid|v0)=[^,]{0,40}){0,4}",
        ],
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
        window in any::<u64>(),
    ) {
        let verified = verify_signature(Some(&header), &body, &keys(), now, window);
        prop_assert!(verified.is_err(), "an unsigned header verified: {header:?}");
        let _ = verify(Some(&header), &body, &keys(), now, window);
    }
}
