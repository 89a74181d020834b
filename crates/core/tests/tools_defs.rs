//! Tool definitions and the `tools preview` document, built from a real compiled config.
//!
//! - Every input schema is a valid JSON Schema, one property per argument with the reviewed type
//!   and limits, `additionalProperties: false`.
//! - A JSON Schema validator and the runtime argument check agree on arbitrary arguments.
//! - Reads are annotated read-only and idempotent; proposals are neither read-only nor destructive.
//! - Descriptions, `_meta` and the preview say what they should, and the preview names what the
//!   model does not get (hidden columns, bindings, SQL, credentials, approval tools, executor).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use synapsor_core::Capability;
use synapsor_core::capability::compile;
use synapsor_core::config::{CapabilityKind, Mode, parse_config_value};
use synapsor_core::tools::{
    AliasMode, EVIDENCE_NOTE, ToolNames, is_openai_tool_name, preview, preview_text, previews, tool_defs,
};

fn config(mode: &str) -> Value {
    json!({
        "version": 1, "mode": mode, "result_format": 2,
        "sources": {"main": {"engine": "postgres", "read_url_env": "BILLING_READ_URL", "write_url_env": "BILLING_WRITE_URL"}},
        "trusted_context": {"provider": "environment", "values": {"tenant_id_env": "APP_TENANT"}},
        "executors": {"billing_handler": {"type": "http_handler", "url_env": "BILLING_HANDLER_URL", "signing_secret_env": "BILLING_HANDLER_SECRET"}},
        "capabilities": [
            {
                "name": "billing.inspect_invoice", "kind": "read", "source": "main",
                "returns_hint": "Returns the invoice status and amount.",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"invoice_id": {"type": "string", "max_length": 32, "description": "The invoice number, e.g. INV-1001."}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "status", "amount"]
            },
            {
                "name": "billing.propose_credit", "kind": "proposal", "source": "main",
                "description": "Propose a credit on an invoice.",
                "executor": "billing_handler",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {
                    "invoice_id": {"type": "string", "max_length": 16},
                    "credit": {"type": "number", "minimum": 0, "maximum": 500.5},
                    "reason": {"type": "string", "enum": ["goodwill", "billing_error"], "required": false},
                    "notify": {"type": "boolean", "required": false}
                },
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "credit", "status"],
                "patch": {"credit": {"from_arg": "credit"}, "status": {"fixed": "credited"}},
                "allowed_columns": ["credit", "status"],
                "conflict_guard": {"column": "updated_at"},
                "approval": {"required_approvals": 2}
            }
        ]
    })
}

fn caps_for(doc: Value) -> Vec<Capability> {
    let (cfg, _) = parse_config_value(doc).unwrap_or_else(|r| panic!("{:?}", r.errors));
    compile(&cfg).unwrap()
}

fn caps() -> Vec<Capability> {
    caps_for(config("review"))
}

fn refs(caps: &[Capability]) -> Vec<&Capability> {
    caps.iter().collect()
}

#[test]
fn canonical_listing_shape() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
    assert_eq!(defs.len(), 2);
    let read = serde_json::to_value(&defs[0]).unwrap();
    assert_eq!(read["name"], "billing.inspect_invoice");
    assert_eq!(read["title"], "billing.inspect_invoice");
    assert_eq!(
        read["description"],
        format!(
            "Read one invoices row of the current tenant through a reviewed capability.\nReturns the invoice status and amount.\n{EVIDENCE_NOTE}"
        )
    );
    assert_eq!(
        read["inputSchema"],
        json!({
            "type": "object",
            "properties": {"invoice_id": {"type": "string", "description": "The invoice number, e.g. INV-1001.", "maxLength": 32}},
            "required": ["invoice_id"],
            "additionalProperties": false
        })
    );
    assert_eq!(
        read["annotations"],
        json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
    );
    assert_eq!(
        read["_meta"],
        json!({
            "synapsor.kind": "read",
            "synapsor.source": "main",
            "synapsor.target": "public.invoices",
            "synapsor.canonical_tool_name": "billing.inspect_invoice",
            "synapsor.exposed_tool_name": "billing.inspect_invoice",
            "synapsor.tool_name_style": "canonical",
            "synapsor.raw_sql_exposed": false,
            "synapsor.approval_tool": false
        })
    );
}

#[test]
fn schema_per_argument_type() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
    let s = &defs[1].input_schema;
    assert_eq!(
        s["properties"],
        json!({
            "invoice_id": {"type": "string", "description": "invoice_id business argument", "maxLength": 16},
            "credit": {"type": "number", "description": "credit business argument", "minimum": 0, "maximum": 500.5},
            "reason": {"type": "string", "description": "reason business argument", "enum": ["goodwill", "billing_error"]},
            "notify": {"type": "boolean", "description": "notify business argument"}
        })
    );
    assert_eq!(s["required"], json!(["invoice_id", "credit"]));
    assert_eq!(s["additionalProperties"], json!(false));
    for d in &defs {
        assert!(jsonschema::meta::is_valid(&d.input_schema), "{}", d.input_schema);
    }
}

#[test]
fn proposal_annotations_and_description() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
    let p = &defs[1];
    assert!(!p.annotations.read_only_hint);
    assert!(!p.annotations.destructive_hint);
    assert!(p.annotations.idempotent_hint);
    assert!(!p.annotations.open_world_hint);
    assert_eq!(
        p.description,
        format!("Propose a credit on an invoice.\n{EVIDENCE_NOTE}")
    );
    assert_eq!(p.meta["synapsor.kind"], "proposal");
}

#[test]
fn default_proposal_description() {
    let mut doc = config("review");
    doc["capabilities"][1].as_object_mut().unwrap().remove("description");
    let caps = caps_for(doc);
    let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
    assert!(defs[1].description.starts_with(
        "Propose an exact change to one invoices row of the current tenant. Nothing is written: a human approves it outside this tool.\n"
    ));
}

#[test]
fn read_only_mode_lists_only_read_only_tools() {
    let mut doc = config("read_only");
    let obj = doc.as_object_mut().unwrap();
    obj.remove("executors");
    obj["capabilities"].as_array_mut().unwrap().truncate(1);
    let (cfg, _) = parse_config_value(doc).unwrap_or_else(|r| panic!("{:?}", r.errors));
    assert_eq!(cfg.mode, Mode::ReadOnly);
    let caps = compile(&cfg).unwrap();
    // The runtime's filter: reads only in read_only mode.
    let listed: Vec<&Capability> = caps.iter().filter(|c| c.kind == CapabilityKind::Read).collect();
    for mode in AliasMode::ALL {
        let defs = tool_defs(&listed, mode);
        assert!(!defs.is_empty());
        for d in defs {
            assert!(d.annotations.read_only_hint && d.annotations.idempotent_hint && !d.annotations.destructive_hint);
            assert_eq!(d.meta["synapsor.kind"], "read");
        }
    }
}

#[test]
fn openai_mode_uses_aliases_with_a_canonical_line() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Openai);
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["billing__inspect_invoice", "billing__propose_credit"]);
    assert!(names.iter().all(|n| is_openai_tool_name(n)));
    let d = &defs[0];
    assert!(
        d.description
            .starts_with("Canonical capability: billing.inspect_invoice.\nRead one invoices row")
    );
    assert_eq!(d.title, "billing.inspect_invoice");
    assert_eq!(d.meta["synapsor.canonical_tool_name"], "billing.inspect_invoice");
    assert_eq!(d.meta["synapsor.exposed_tool_name"], "billing__inspect_invoice");
    assert_eq!(d.meta["synapsor.tool_name_style"], "openai");
}

#[test]
fn both_mode_lists_canonical_then_alias() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Both);
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing.inspect_invoice",
            "billing__inspect_invoice",
            "billing.propose_credit",
            "billing__propose_credit"
        ]
    );
    assert!(!defs[0].description.starts_with("Canonical capability"));
    assert!(defs[1].description.starts_with("Canonical capability"));
    // The names listed are the names `ToolNames` resolves.
    let cap_names: Vec<&str> = caps.iter().map(|c| c.name.as_str()).collect();
    let tn = ToolNames::build(&cap_names, AliasMode::Both);
    for d in &defs {
        assert_eq!(tn.resolve(&d.name), Some(d.title.as_str()));
    }
}

#[test]
fn preview_says_what_is_hidden() {
    let caps = caps();
    let v = preview(&refs(&caps), AliasMode::Openai);
    assert_eq!(v["alias_mode"], "openai");
    assert_eq!(v["tool_count"], 2);
    let read = &v["tools"][0];
    assert_eq!(read["exposed_name"], "billing__inspect_invoice");
    assert_eq!(read["canonical_name"], "billing.inspect_invoice");
    assert_eq!(read["arguments"][0]["name"], "invoice_id");
    assert_eq!(read["arguments"][0]["max_length"], 32);
    let hidden = &read["not_exposed"];
    assert_eq!(hidden["hidden_columns"], json!(["tenant_id"]));
    assert_eq!(hidden["tenant"]["column"], "tenant_id");
    assert_eq!(hidden["tenant"]["provider"], "environment");
    assert!(hidden["tenant"]["from"].as_str().unwrap().contains("APP_TENANT"));
    assert!(
        hidden["principal"]["from"]
            .as_str()
            .unwrap()
            .contains("SYNAPSOR_PRINCIPAL")
    );
    assert!(
        hidden["sql"]
            .as_str()
            .unwrap()
            .starts_with("SELECT id, tenant_id, status, amount FROM public.invoices")
    );
    assert!(hidden.get("proposal").is_none());

    let prop = &v["tools"][1]["not_exposed"];
    assert_eq!(prop["hidden_columns"], json!(["tenant_id", "updated_at"]));
    assert_eq!(
        prop["proposal"],
        json!({"executor": "billing_handler", "required_approvals": 2, "source_database_changed_by_call": false})
    );
    let args = &v["tools"][1]["arguments"];
    assert_eq!(args[1]["minimum"], 0);
    assert_eq!(args[1]["maximum"], 500.5);
    assert_eq!(args[2]["enum"], json!(["goodwill", "billing_error"]));
    assert_eq!(args[3]["required"], false);

    // Never an env var's value, only names; never a credential.
    let text = v.to_string();
    assert!(!text.contains("postgres://"));
    assert!(text.contains("never_exposed"));
}

#[test]
fn preview_covers_each_exposed_name() {
    let caps = caps();
    let both = previews(&refs(&caps), AliasMode::Both);
    assert_eq!(both.len(), 4);
    assert_eq!(both[1].exposed_name, "billing__inspect_invoice");
    assert_eq!(both[1].canonical_name, "billing.inspect_invoice");
}

#[test]
fn preview_text_reads_well() {
    let caps = caps();
    let text = preview_text(&refs(&caps), AliasMode::Openai);
    for needle in [
        "Tools the model sees (alias mode openai): 2",
        "billing__inspect_invoice  [read]  canonical billing.inspect_invoice",
        "    Canonical capability: billing.inspect_invoice.",
        "    invoice_id: The invoice number, e.g. INV-1001. (string, required, max length 32)",
        "    credit: credit business argument (number, required, minimum 0, maximum 500.5)",
        "    reason: reason business argument (string, optional, one of goodwill, billing_error)",
        "    hidden columns: tenant_id, updated_at",
        "    tenant: column tenant_id, bound from environment variable APP_TENANT",
        "    SQL (built by the runner, values bound): SELECT",
        "after approval (2 approvals): executor billing_handler; this call does not change the source database",
        "approve, apply or commit tools",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

fn arg_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-1000.0f64..1000.0).prop_map(|f| json!(f)),
        (-10i64..600).prop_map(Value::from),
        "[a-zA-Z0-9_ -]{0,20}".prop_map(Value::from),
        prop_oneof![Just("goodwill"), Just("billing_error"), Just("other")].prop_map(Value::from),
    ]
}

fn arg_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("invoice_id".to_owned()),
        Just("credit".to_owned()),
        Just("reason".to_owned()),
        Just("notify".to_owned()),
        Just("tenant_id".to_owned()),
        "[a-z_]{1,8}",
    ]
}

proptest! {
    /// The published schema is exactly as strict as the runtime check (for arguments without
    /// nulls, which the runtime treats as absent for optional arguments).
    #[test]
    fn schema_and_runtime_check_agree(args in proptest::collection::btree_map(arg_name(), arg_value(), 0..6)) {
        let caps = caps();
        let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
        let obj: Map<String, Value> = args.into_iter().collect();
        let instance = Value::Object(obj);
        for (cap, def) in caps.iter().zip(&defs) {
            let validator = jsonschema::validator_for(&def.input_schema).unwrap();
            let by_schema = validator.is_valid(&instance);
            let by_runtime = cap.check_args(&instance).is_ok();
            prop_assert_eq!(by_schema, by_runtime, "{} {}", cap.name, instance);
        }
    }
}

#[test]
fn schema_and_runtime_agree_on_fixed_cases() {
    let caps = caps();
    let defs = tool_defs(&refs(&caps), AliasMode::Canonical);
    let (cap, def) = (&caps[1], &defs[1]);
    let validator = jsonschema::validator_for(&def.input_schema).unwrap();
    for (args, ok) in [
        (json!({"invoice_id": "INV-1", "credit": 10}), true),
        (
            json!({"invoice_id": "INV-1", "credit": 500.5, "reason": "goodwill", "notify": true}),
            true,
        ),
        (json!({"invoice_id": "INV-1"}), false),
        (json!({"invoice_id": "INV-1", "credit": 500.6}), false),
        (json!({"invoice_id": "INV-1", "credit": -1}), false),
        (json!({"invoice_id": "INV-1", "credit": "10"}), false),
        (json!({"invoice_id": "INV-1234567890123", "credit": 1}), false),
        (json!({"invoice_id": "INV-1", "credit": 1, "reason": "other"}), false),
        (json!({"invoice_id": "INV-1", "credit": 1, "notify": "yes"}), false),
        (
            json!({"invoice_id": "INV-1", "credit": 1, "tenant_id": "other-tenant"}),
            false,
        ),
        (json!({"invoice_id": "INV-1", "credit": 1, "extra": 1}), false),
    ] {
        assert_eq!(validator.is_valid(&args), ok, "schema on {args}");
        assert_eq!(cap.check_args(&args).is_ok(), ok, "runtime on {args}");
    }
}
