//! The committed JSON Schemas equal the generated ones, and the documented examples agree with
//! them and with the Rust types.
//!
//! Regenerate with `SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-handler --test schemas`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value, json};
use synapsor_handler::schema::{RECEIPT_SCHEMA_PATH, REQUEST_SCHEMA_PATH, pretty, receipt_schema, request_schema};
use synapsor_handler::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_committed(path: &str, schema: &Value) {
    synapsor_testdb::check_generated(
        &repo_root(),
        path,
        &pretty(schema),
        "cargo test -p synapsor-handler --test schemas",
    );
}

#[test]
fn committed_request_schema_is_current() {
    check_committed(REQUEST_SCHEMA_PATH, &request_schema());
}

#[test]
fn committed_receipt_schema_is_current() {
    check_committed(RECEIPT_SCHEMA_PATH, &receipt_schema());
}

fn docs() -> String {
    std::fs::read_to_string(repo_root().join("docs/handlers.md")).unwrap()
}

/// The first fenced block after `<!-- marker -->` in docs/handlers.md.
fn block_after(marker: &str) -> String {
    let docs = docs();
    let start = docs
        .find(&format!("<!-- {marker} -->"))
        .unwrap_or_else(|| panic!("docs/handlers.md has no <!-- {marker} --> marker"));
    let rest = &docs[start..];
    let open = rest.find("```").unwrap();
    let body_start = open + rest[open..].find('\n').unwrap() + 1;
    let close = body_start + rest[body_start..].find("\n```").unwrap();
    rest[body_start..close].to_owned()
}

fn assert_valid(schema: &Value, instance: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{instance:#}");
}

fn assert_invalid(schema: &Value, instance: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    assert!(!validator.is_valid(instance), "should be invalid:\n{instance:#}");
}

#[test]
fn documented_request_validates_and_parses() {
    let doc: Value = serde_json::from_str(&block_after("request-example")).unwrap();
    let fixture: Value = serde_json::from_str(include_str!("fixtures/request.json")).unwrap();
    assert_eq!(
        doc, fixture,
        "the example in docs/handlers.md differs from tests/fixtures/request.json"
    );
    let schema = request_schema();
    assert_valid(&schema, &doc);
    let req: HandlerRequest = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(req.schema_version, REQUEST_SCHEMA);

    // The schema is as strict as the type.
    let mut extra = doc.clone();
    extra["change_set"] = json!({});
    assert_invalid(&schema, &extra);
    assert!(serde_json::from_value::<HandlerRequest>(extra).is_err());
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("expected_version");
    assert_invalid(&schema, &missing);
    assert!(serde_json::from_value::<HandlerRequest>(missing).is_err());
    let mut wrong = doc;
    wrong["schema_version"] = json!("1.0");
    assert_invalid(&schema, &wrong);
}

#[test]
fn documented_receipts_validate_and_parse() {
    let schema = receipt_schema();
    let docs_receipt: Value = serde_json::from_str(&block_after("receipt-example")).unwrap();
    assert_valid(&schema, &docs_receipt);
    serde_json::from_value::<HandlerReceipt>(docs_receipt).unwrap();
    for r in [
        HandlerReceipt::applied(1).with_new_version("2026-06-23T09:00:00.000000Z"),
        HandlerReceipt::already_applied(),
        HandlerReceipt::conflict("VERSION_CONFLICT").with_message("the ticket changed"),
        HandlerReceipt::failed("PATCH_COLUMN_NOT_ALLOWED"),
    ] {
        let v = serde_json::to_value(&r).unwrap();
        assert_valid(&schema, &v);
        assert_eq!(serde_json::from_value::<HandlerReceipt>(v).unwrap(), r);
    }
    assert_invalid(
        &schema,
        &json!({"schema_version": RECEIPT_SCHEMA, "status": "done", "rows_affected": 1}),
    );
    assert_invalid(
        &schema,
        &json!({"schema_version": RECEIPT_SCHEMA, "status": "failed", "rows_affected": 0, "error_code": "lower case"}),
    );
}

/// The worked signature example in the docs is what `sign` computes.
#[test]
fn documented_signature_example_is_correct() {
    let block = block_after("signature-example");
    let field = |name: &str| -> String {
        let line = block
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name}: line in the signature example"));
        line[name.len() + 1..].trim().to_owned()
    };
    let secret = field("secret");
    let kid = field("kid");
    let t: i64 = field("t").parse().unwrap();
    let body = field("body");
    assert_eq!(field("signed"), format!("{t}.{body}"));
    let header = field("header");
    assert_eq!(header, sign(secret.as_bytes(), &kid, t, body.as_bytes()));
    let keys = KeyRing::single(kid, secret).unwrap();
    verify_signature(Some(&header), body.as_bytes(), &keys, t, 0).unwrap();
}
