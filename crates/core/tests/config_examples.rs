//! Every `examples/**/synapsor.runner.json` passes the validator (no errors, no warnings: the
//! examples show best practice) and the JSON Schema, and parses into the typed model. Each example
//! folder also carries its README and seed SQL.

#[path = "fixtures/support.rs"]
mod support;

use synapsor_core::config::{CapabilityKind, Engine, Mode, parse_config, validate_value};

use support::{example_configs, read_json, repo_root, schema_errors, schema_validator};

#[test]
fn examples_pass_validator_and_schema() {
    let configs = example_configs();
    assert!(configs.len() >= 3, "expected at least 3 examples, found {configs:?}");
    let schema = schema_validator();
    for path in &configs {
        let doc = read_json(path);
        let report = validate_value(&doc);
        assert!(report.errors.is_empty(), "{}: {:#?}", path.display(), report.errors);
        assert!(report.warnings.is_empty(), "{}: {:#?}", path.display(), report.warnings);
        let errors = schema_errors(&schema, &doc);
        assert!(errors.is_empty(), "{} fails the schema: {errors:#?}", path.display());
        let text = std::fs::read_to_string(path).expect("read");
        parse_config(&text).unwrap_or_else(|e| panic!("{}: {:?}", path.display(), e.errors));

        let dir = path.parent().expect("example folder");
        // Data: its own seed, or (the Kubernetes example) roles on top of other examples' seeds.
        let data = if dir.join("seed.sql").exists() {
            "seed.sql"
        } else {
            "roles.sql"
        };
        for file in ["README.md", data] {
            let f = dir.join(file);
            let body = std::fs::read_to_string(&f).unwrap_or_else(|_| panic!("{} is missing", f.display()));
            assert!(!body.trim().is_empty(), "{} is empty", f.display());
        }
    }
}

fn load(example: &str) -> synapsor_core::config::RunnerConfig {
    let path = repo_root().join("examples").join(example).join("synapsor.runner.json");
    let text = std::fs::read_to_string(&path).expect("read example");
    parse_config(&text).expect("valid example").0
}

#[test]
fn billing_example_has_the_documented_shape() {
    let cfg = load("billing-postgres");
    assert_eq!(cfg.mode, Mode::Review);
    assert_eq!(cfg.sources["billing"].engine, Engine::Postgres);
    let names: Vec<_> = cfg.capabilities.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing.inspect_invoice",
            "billing.propose_late_fee_waiver",
            "billing.propose_invoice_status",
            "billing.propose_late_fee_adjustment"
        ]
    );
    for cap in &cfg.capabilities {
        assert!(
            !cap.visible_columns
                .iter()
                .any(|c| c == "internal_note" || c == "tenant_id"),
            "{}",
            cap.name
        );
    }
    let waiver = &cfg.capabilities[1];
    assert!(waiver.args.contains_key("reason") && !waiver.patch.contains_key("reason"));
}

#[test]
fn orders_and_handler_examples_have_the_documented_shape() {
    let orders = load("orders-mysql");
    assert_eq!(orders.sources["shop"].engine, Engine::Mysql);
    let change = &orders.capabilities[1];
    assert_eq!(change.kind, CapabilityKind::Proposal);
    assert_eq!(
        change.conflict_guard.as_ref().and_then(|g| g.column.as_deref()),
        Some("version")
    );
    assert!(!change.visible_columns.iter().any(|c| c == "shipping_note"));

    let handler = load("app-handler");
    let source = &handler.sources["support"];
    assert!(source.read_only && source.write_url_env.is_none());
    assert!(matches!(
        handler.executors["support_app"],
        synapsor_core::config::Executor::HttpHandler { .. }
    ));
    for cap in handler
        .capabilities
        .iter()
        .filter(|c| c.kind == CapabilityKind::Proposal)
    {
        assert_eq!(cap.executor.as_deref(), Some("support_app"), "{}", cap.name);
    }
}

/// Splits SQL text into statements at `;` outside single-quoted literals, dropping `--` comments.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_str = !in_str;
                cur.push(c);
            }
            '-' if !in_str && chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                cur.push('\n');
            }
            ';' if !in_str => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Seed files hold only CREATE TABLE and INSERT statements (the integration tests create the
/// database and schema themselves). An example without one builds on other examples' seeds.
#[test]
fn seed_files_only_create_tables_and_insert() {
    for path in example_configs() {
        let seed = path.with_file_name("seed.sql");
        let Ok(text) = std::fs::read_to_string(&seed) else {
            continue;
        };
        let stmts = statements(&text);
        assert!(stmts.len() >= 2, "{}: expected CREATE TABLE and INSERT", seed.display());
        for stmt in stmts {
            let head = stmt
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_uppercase();
            assert!(
                head == "CREATE TABLE" || head == "INSERT INTO",
                "{}: unexpected statement {head}",
                seed.display()
            );
        }
    }
}
