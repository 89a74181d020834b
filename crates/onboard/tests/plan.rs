//! Onboarding plans over hand-built catalogs: the defaults taken from suggestions, each bad input
//! with its code and the flag it names, and configs that the validator accepts.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use synapsor_core::catalog::{Catalog, ColumnInfo, TableInfo, TableKind};
use synapsor_core::config::{Mode, parse_config_value};
use synapsor_onboard::selection::{parse_bound_flags, parse_guard_flags, parse_patch_flags};
use synapsor_onboard::{Selection, Writeback, plan};

fn col(name: &str, ty: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.into(),
        data_type: ty.into(),
        nullable: false,
        has_default: false,
    }
}

fn table(name: &str, kind: TableKind, pk: &[&str], cols: &[(&str, &str)]) -> TableInfo {
    TableInfo {
        name: name.into(),
        kind,
        columns: cols.iter().map(|(n, t)| col(n, t)).collect(),
        primary_key: pk.iter().map(|s| (*s).to_owned()).collect(),
        unique_keys: vec![],
        foreign_keys: vec![],
        indexes: vec![],
    }
}

fn catalog() -> Catalog {
    Catalog {
        engine: synapsor_core::config::Engine::Postgres,
        schema: "public".into(),
        tables: vec![
            table(
                "invoices",
                TableKind::Table,
                &["id"],
                &[
                    ("id", "text"),
                    ("tenant_id", "text"),
                    ("amount_cents", "integer"),
                    ("late_fee_cents", "integer"),
                    ("status", "text"),
                    ("waiver_reason", "text"),
                    ("api_token", "text"),
                    ("attachment", "bytea"),
                    ("updated_at", "timestamp with time zone"),
                ],
            ),
            table(
                "order_lines",
                TableKind::Table,
                &["order_id", "line_no"],
                &[("order_id", "integer"), ("line_no", "integer"), ("tenant_id", "text")],
            ),
            table(
                "tenant_orders",
                TableKind::Table,
                &["tenant_id", "id"],
                &[("tenant_id", "text"), ("id", "integer"), ("total", "numeric(10,2)")],
            ),
            table(
                "audit_log",
                TableKind::Table,
                &[],
                &[("id", "integer"), ("tenant_id", "text")],
            ),
            table(
                "memberships",
                TableKind::Table,
                &["id"],
                &[
                    ("id", "text"),
                    ("account_id", "text"),
                    ("org_id", "text"),
                    ("role", "text"),
                ],
            ),
            table(
                "open_invoices",
                TableKind::View,
                &[],
                &[("id", "text"), ("tenant_id", "text"), ("amount_cents", "integer")],
            ),
        ],
    }
}

fn sel(table: &str) -> Selection {
    Selection {
        table: Some(table.into()),
        ..Default::default()
    }
}

fn err(s: &Selection) -> synapsor_onboard::OnboardError {
    plan(s, &catalog()).unwrap_err()
}

#[test]
fn read_only_defaults_from_suggestions() {
    let o = plan(&sel("invoices"), &catalog()).unwrap();
    assert_eq!(o.mode, Mode::ReadOnly);
    assert_eq!(o.read_tool, "invoice.inspect_invoice");
    assert_eq!(o.proposal_tool, None);
    assert_eq!(o.id_arg, "invoice_id");
    assert_eq!(o.tenant_column.as_deref(), Some("tenant_id"));
    // Neither the tenant, the token nor the binary column is shown.
    assert_eq!(
        o.visible_columns,
        [
            "id",
            "amount_cents",
            "late_fee_cents",
            "status",
            "waiver_reason",
            "updated_at"
        ]
    );
    let hidden: Vec<(&str, &str)> = o.hidden_columns.iter().map(|h| (h.name.as_str(), h.reason)).collect();
    assert_eq!(
        hidden,
        [
            ("tenant_id", "tenant column (trusted context)"),
            ("api_token", "sensitive"),
            ("attachment", "large or binary")
        ]
    );
    let doc = serde_json::to_value(&o.config).unwrap();
    assert_eq!(doc["capabilities"].as_array().unwrap().len(), 1);
    assert_eq!(
        doc["sources"]["local_postgres"]["read_url_env"],
        "SYNAPSOR_DATABASE_READ_URL"
    );
    assert!(doc["sources"]["local_postgres"].get("write_url_env").is_none());
    assert_eq!(doc["result_format"], 2);
    parse_config_value(doc).unwrap();
}

#[test]
fn review_with_patch_bounds_and_guards() {
    let mut s = sel("invoices");
    s.namespace = Some("billing".into());
    s.proposal_tool = Some("billing.propose_late_fee_waiver".into());
    s.patch = Some(
        parse_patch_flags(&[
            "late_fee_cents=arg:late_fee_cents,waiver_reason=arg:reason".into(),
            "status=arg:status".into(),
        ])
        .unwrap(),
    );
    s.patch_bounds = Some(parse_bound_flags(&["late_fee_cents=0:10000".into()]).unwrap());
    s.status_guards = Some(parse_guard_flags(&["status=open:paid|void;paid:refunded".into()]).unwrap());
    s.approval_role = Some("billing_reviewer".into());
    let o = plan(&s, &catalog()).unwrap();
    assert_eq!(o.mode, Mode::Review);
    assert_eq!(o.read_tool, "billing.inspect_invoice");
    assert_eq!(o.conflict_column.as_deref(), Some("updated_at"));
    let doc = serde_json::to_value(&o.config).unwrap();
    let p = &doc["capabilities"][1];
    assert_eq!(p["name"], "billing.propose_late_fee_waiver");
    assert_eq!(
        p["allowed_columns"],
        json!(["late_fee_cents", "waiver_reason", "status"])
    );
    assert_eq!(
        p["args"]["late_fee_cents"],
        json!({"type": "number", "description": "The new late_fee_cents, from 0 to 10000.", "required": true, "minimum": 0.0, "maximum": 10000.0})
    );
    assert_eq!(p["args"]["status"]["enum"], json!(["paid", "void", "refunded"]));
    assert_eq!(p["args"]["reason"]["max_length"], 500);
    assert_eq!(
        p["transition_guards"]["status"]["allowed"]["open"],
        json!(["paid", "void"])
    );
    assert_eq!(
        p["conflict_guard"],
        json!({"column": "updated_at", "weak_guard_ack": false})
    );
    assert_eq!(p["approval"]["required_role"], "billing_reviewer");
    assert_eq!(
        doc["sources"]["local_postgres"]["write_url_env"],
        "SYNAPSOR_DATABASE_WRITE_URL"
    );
    // The role needs operator identity locally: the validator's warning is passed on.
    assert!(
        o.warnings
            .iter()
            .any(|w| w.code == "APPROVAL_ROLE_NEEDS_OPERATOR_IDENTITY")
    );
    parse_config_value(doc).unwrap();
}

#[test]
fn handler_writeback_keeps_the_source_read_only() {
    let mut s = sel("invoices");
    s.patch = Some(parse_patch_flags(&["late_fee_cents=fixed:0".into()]).unwrap());
    s.writeback = Some(Writeback::HttpHandler);
    s.handler_signing_secret_env = Some("APP_SIGNING_SECRET".into());
    let o = plan(&s, &catalog()).unwrap();
    let doc = serde_json::to_value(&o.config).unwrap();
    assert_eq!(doc["sources"]["local_postgres"]["read_only"], true);
    assert!(doc["sources"]["local_postgres"].get("write_url_env").is_none());
    assert_eq!(doc["executors"]["app_handler"]["type"], "http_handler");
    assert_eq!(doc["executors"]["app_handler"]["url_env"], "SYNAPSOR_APP_WRITEBACK_URL");
    assert_eq!(doc["capabilities"][1]["executor"], "app_handler");
    assert!(
        !o.warnings.iter().any(|w| w.code == "WRITEBACK_DISABLED"),
        "{:?}",
        o.warnings
    );
    // With a writer env it is not read-only.
    s.write_url_env = Some("APP_DB_WRITER".into());
    let doc = serde_json::to_value(plan(&s, &catalog()).unwrap().config).unwrap();
    assert_eq!(doc["sources"]["local_postgres"]["read_only"], false);
}

#[test]
fn keys_composite_missing_and_views() {
    // (tenant_id, id) reduces to id once the tenant is taken out.
    let o = plan(&sel("tenant_orders"), &catalog()).unwrap();
    assert_eq!(o.primary_key, "id");
    assert_eq!(o.read_tool, "tenant.inspect_tenant_order");
    let e = err(&sel("order_lines"));
    assert_eq!(e.code, "ONBOARD_PRIMARY_KEY_AMBIGUOUS");
    assert!(
        e.to_string().starts_with("--primary-key (answers key `primary_key`)"),
        "{e}"
    );
    let mut s = sel("order_lines");
    s.primary_key = Some("line_no".into());
    assert_eq!(err(&s).code, "ONBOARD_KEY_NOT_UNIQUE");
    assert_eq!(err(&sel("audit_log")).code, "ONBOARD_PRIMARY_KEY_REQUIRED");
    assert_eq!(err(&sel("open_invoices")).code, "ONBOARD_PRIMARY_KEY_REQUIRED");
    let mut s = sel("open_invoices");
    s.primary_key = Some("id".into());
    let o = plan(&s, &catalog()).unwrap();
    assert!(
        o.inferred.iter().any(|i| i.contains("MULTI_ROW_BLOCKED")),
        "{:?}",
        o.inferred
    );
}

#[test]
fn tenant_candidates() {
    let e = err(&sel("memberships"));
    assert_eq!(e.code, "ONBOARD_TENANT_COLUMN_AMBIGUOUS");
    assert!(e.message.contains("account_id, org_id"), "{e}");
    let mut s = sel("memberships");
    s.tenant_key = Some("org_id".into());
    let o = plan(&s, &catalog()).unwrap();
    assert_eq!(o.tenant_column.as_deref(), Some("org_id"));
    // account_id is then an ordinary column, and visible.
    assert!(o.visible_columns.contains(&"account_id".to_owned()));
    let mut s = sel("memberships");
    s.single_tenant_dev = Some(true);
    let o = plan(&s, &catalog()).unwrap();
    let doc = serde_json::to_value(&o.config).unwrap();
    assert_eq!(doc["capabilities"][0]["target"]["single_tenant_dev"], true);
    assert_eq!(doc["capabilities"][0]["single_tenant_dev_ack"], true);
    s.tenant_column = Some("org_id".into());
    assert_eq!(err(&s).code, "ONBOARD_TENANT_CONFLICT");
    s.tenant_column = Some("org_id".into());
    s.tenant_key = Some("account_id".into());
    s.single_tenant_dev = None;
    assert_eq!(err(&s).code, "ONBOARD_ALIAS_CONFLICT");
}

#[test]
fn bad_inputs_name_their_flag() {
    type Edit = Box<dyn Fn(&mut Selection)>;
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|s| s.table = Some("nope".into())),
            "ONBOARD_UNKNOWN_TABLE",
            "--table",
        ),
        (Box::new(|s| s.table = None), "ONBOARD_TABLE_REQUIRED", "--table"),
        (
            Box::new(|s| s.visible_columns = Some(vec!["id".into(), "nope".into()])),
            "ONBOARD_UNKNOWN_COLUMN",
            "--visible-columns",
        ),
        (
            Box::new(|s| s.visible_columns = Some(vec!["id".into(), "api_token".into()])),
            "ONBOARD_SENSITIVE_COLUMN",
            "--visible-columns",
        ),
        (
            Box::new(|s| s.visible_columns = Some(vec!["id".into(), "tenant_id".into()])),
            "ONBOARD_TENANT_COLUMN_VISIBLE",
            "--visible-columns",
        ),
        (
            Box::new(|s| {
                s.patch = Some(parse_patch_flags(&["status=fixed:closed".into()]).unwrap());
                s.allowed_columns = Some(vec!["late_fee_cents".into()]);
            }),
            "ONBOARD_PATCH_COLUMN_NOT_ALLOWED",
            "--patch",
        ),
        (
            Box::new(|s| {
                s.patch = Some(parse_patch_flags(&["status=fixed:closed".into()]).unwrap());
                s.allowed_columns = Some(vec!["status".into(), "tenant_id".into()]);
            }),
            "ONBOARD_KEY_COLUMN_ALLOWED",
            "--allowed-columns",
        ),
        (
            Box::new(|s| {
                s.patch = Some(parse_patch_flags(&["id=fixed:x".into()]).unwrap());
            }),
            "ONBOARD_KEY_COLUMN_PATCHED",
            "--patch",
        ),
        (
            Box::new(|s| s.mode = Some(Mode::Review)),
            "ONBOARD_PATCH_REQUIRED",
            "--patch",
        ),
        (
            Box::new(|s| s.read_url_env = Some("postgres://app:hunter2@db/prod".into())),
            "ONBOARD_URL_NOT_ENV",
            "--read-url-env",
        ),
        (
            Box::new(|s| s.write_url_env = Some("mysql://root@db".into())),
            "ONBOARD_URL_NOT_ENV",
            "--write-url-env",
        ),
        (
            Box::new(|s| s.tenant_env = Some("tenant".into())),
            "ONBOARD_ENV_NAME_INVALID",
            "--tenant-env",
        ),
        (
            Box::new(|s| s.id_arg = Some("tenant_id".into())),
            "ONBOARD_ARG_NAME_INVALID",
            "--id-arg",
        ),
        (
            Box::new(|s| s.read_tool = Some("inspect".into())),
            "ONBOARD_NAME_INVALID",
            "--read-tool",
        ),
        (
            Box::new(|s| {
                s.patch = Some(parse_patch_flags(&["late_fee_cents=arg:fee".into()]).unwrap());
                s.patch_bounds = Some(parse_bound_flags(&["amount_cents=0:5".into()]).unwrap());
            }),
            "ONBOARD_BOUNDS_INVALID",
            "--patch-bounds",
        ),
        (
            Box::new(|s| {
                s.patch = Some(parse_patch_flags(&["updated_at=fixed:now".into()]).unwrap());
            }),
            "ONBOARD_CONFLICT_COLUMN_PATCHED",
            "--conflict-column",
        ),
        (
            Box::new(|s| s.handler_url_env = Some("APP_URL".into())),
            "ONBOARD_HANDLER_FLAG_UNUSED",
            "--handler-url-env",
        ),
        (
            Box::new(|s| s.engine = Some(synapsor_core::config::Engine::Mysql)),
            "ONBOARD_ENGINE_MISMATCH",
            "--engine",
        ),
    ];
    for (edit, code, flag) in cases {
        let mut s = sel("invoices");
        edit(&mut s);
        let e = err(&s);
        assert_eq!(e.code, code, "{e}");
        assert!(e.to_string().starts_with(flag), "{code}: {e}");
        // Nothing secret is echoed.
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!e.to_string().contains("root@"), "{e}");
    }
}

#[test]
fn no_conflict_column_needs_a_choice() {
    let mut c = catalog();
    c.tables[0].columns.retain(|c| c.name != "updated_at");
    let mut s = sel("invoices");
    s.patch = Some(parse_patch_flags(&["status=fixed:void".into()]).unwrap());
    let e = plan(&s, &c).unwrap_err();
    assert_eq!(e.code, "ONBOARD_CONFLICT_COLUMN_REQUIRED");
    assert!(e.message.contains("--weak-conflict-guard"), "{e}");
    s.weak_conflict_guard = Some(true);
    let o = plan(&s, &c).unwrap();
    assert!(o.warnings.iter().any(|w| w.code == "WEAK_CONFLICT_GUARD"));
}

#[test]
fn object_and_namespace_names() {
    use synapsor_onboard::plan::{namespace_of, object_name_of};
    assert_eq!(object_name_of("invoices"), "invoice");
    assert_eq!(object_name_of("categories"), "category");
    assert_eq!(object_name_of("support_tickets"), "support_ticket");
    assert_eq!(object_name_of("address"), "address");
    assert_eq!(object_name_of("status"), "status");
    assert_eq!(object_name_of("2fa_codes"), "_2fa_code");
    assert_eq!(namespace_of("support_ticket"), "support");
}

#[test]
fn the_answers_schema_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    synapsor_testdb_check(&root);
}

fn synapsor_testdb_check(root: &std::path::Path) {
    synapsor_testdb::check_generated(
        root,
        synapsor_onboard::SELECTION_SCHEMA_PATH,
        &synapsor_onboard::selection_schema_pretty(),
        "cargo nextest run -p synapsor-onboard",
    );
}
