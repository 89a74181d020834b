//! Tool-argument checks on any JSON: accepted arguments are only the reviewed ones; nothing
//! panics.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use synapsor_core::capability::{Capability, compile};
use synapsor_core::config::parse_config;

static CAPABILITIES: LazyLock<Vec<Capability>> = LazyLock::new(|| {
    let target = json!({"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    let doc = json!({
        "version": 1, "mode": "review", "result_format": 2,
        "sources": {"main": {"engine": "postgres", "read_url_env": "READ_URL", "write_url_env": "WRITE_URL"}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.inspect_invoice", "kind": "read", "source": "main",
                "description": "Read one invoice.", "target": target,
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "fee", "status"]
            },
            {
                "name": "billing.propose_fee", "kind": "proposal", "source": "main",
                "description": "Propose a fee.", "target": target,
                "args": {
                    "invoice_id": {"type": "string", "max_length": 16},
                    "fee": {"type": "number", "minimum": -100000, "maximum": 100000},
                    "status": {"type": "string", "enum": ["paid", "void"], "required": false}
                },
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "fee", "status"],
                "patch": {"fee": {"from_arg": "fee"}, "status": {"fixed": "paid"}},
                "allowed_columns": ["fee", "status"],
                "numeric_bounds": {"fee": {"minimum": 0, "maximum": 5000}},
                "conflict_guard": {"column": "updated_at"}
            }
        ]
    });
    let (cfg, _) = parse_config(&doc.to_string()).expect("the fuzz config is valid");
    compile(&cfg).expect("the fuzz config compiles")
});

fuzz_target!(|data: &[u8]| {
    let Ok(args) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for cap in CAPABILITIES.iter() {
        if let Ok(checked) = cap.check_args(&args) {
            let given = args.as_object().expect("only an object is accepted");
            assert!(
                given.keys().all(|k| cap.args.contains_key(k)),
                "an unreviewed argument was accepted"
            );
            assert!(checked.values.keys().all(|k| cap.args.contains_key(k)));
        }
    }
});
