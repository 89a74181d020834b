//! Envelope serialization of any row: both versions serialize to JSON that reads back the same,
//! and never carry the trusted tenant or principal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use synapsor_core::capability::{Provenance, TrustedContext};
use synapsor_core::config::ResultFormat;
use synapsor_core::envelope::ToolOutcome;

const TENANT: &str = "tenant-\u{1F512}-acme";
const PRINCIPAL: &str = "principal-\u{1F511}";

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(row)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // A row the capability already cut to its visible columns never holds the trusted values,
    // not even once escaped as JSON (a tab before them reads `\tenant-...` in the text).
    let holds_trusted = |k: &String, v: &Value| {
        let text = serde_json::to_string(&(k, v)).unwrap_or_default();
        text.contains(TENANT) || text.contains(PRINCIPAL)
    };
    let row: Map<String, Value> = row.into_iter().filter(|(k, v)| !holds_trusted(k, v)).collect();
    let context = TrustedContext {
        tenant_id: TENANT.into(),
        principal: PRINCIPAL.into(),
        provenance: Provenance::Environment,
        identity: None,
    };
    let object_id = row.get("id").map(Value::to_string).unwrap_or_default();
    let read = ToolOutcome::Read {
        capability: "billing.inspect_invoice".into(),
        table: "invoices".into(),
        object_id,
        data: row,
        context,
        evidence_bundle_id: "ev_1".into(),
    };
    for format in [ResultFormat::V1, ResultFormat::V2] {
        let (v, is_error) = read.render(format);
        assert!(!is_error);
        let text = serde_json::to_string(&v).expect("an envelope serializes");
        let back: Value = serde_json::from_str(&text).expect("and reads back");
        assert_eq!(back, v);
        assert!(
            !text.contains(TENANT) && !text.contains(PRINCIPAL),
            "the trusted context leaked: {text}"
        );
    }
});
