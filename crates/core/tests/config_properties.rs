//! Property tests for the config validator.
//!
//! - Replacing any one identifier or name in a valid config with a string of the wrong shape is
//!   reported with an identifier code at exactly that path.
//! - Any reserved name, in any letter case, is refused as a model-facing argument.
//! - The validator never panics, whatever the JSON; a document it accepts always deserializes into
//!   the typed model and (when `strict` is on) satisfies the JSON Schema.
//! - Independent mistakes are all reported in one run.

#[path = "fixtures/support.rs"]
mod support;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use synapsor_core::config::validate::{IDENTIFIER_CODES, RESERVED_ARG_NAMES, is_signing_key_id};
use synapsor_core::config::{parse_config_value, validate_value};
use synapsor_core::ident::{is_capability_name, is_context_name, is_env_name, is_safe_identifier};

use support::{fixtures_dir, read_json, schema_validator};

fn base() -> Value {
    read_json(&fixtures_dir().join("valid/base.json"))
}

/// Renders one key of a JSON path the way the validator does.
fn render_key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let lower = k.to_ascii_lowercase();
    if plain {
        format!(".{k}")
    } else if ["postgres://", "postgresql://", "mysql://", "mariadb://"]
        .iter()
        .any(|s| lower.contains(s))
    {
        "[<redacted>]".to_owned()
    } else {
        format!("[{}]", Value::String(k.to_owned()))
    }
}

/// `/a/0/b` → the node, for JSON-pointer-like paths of the base document.
fn node<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the base config"))
}

fn rename_key(obj: &mut Value, old: &str, new: &str) {
    let map = obj.as_object_mut().expect("object");
    let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    *map = entries
        .into_iter()
        .map(|(k, v)| (if k == old { new.to_owned() } else { k }, v))
        .collect::<Map<String, Value>>();
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Ident,
    Env,
    CapabilityName,
    ContextName,
    KeyId,
}

impl Shape {
    fn accepts(self, s: &str) -> bool {
        match self {
            Shape::Ident => is_safe_identifier(s),
            Shape::Env => is_env_name(s),
            Shape::CapabilityName => is_capability_name(s),
            Shape::ContextName => is_context_name(s) && s != "sql_update",
            Shape::KeyId => is_signing_key_id(s),
        }
    }
}

#[derive(Debug, Clone)]
enum Site {
    /// Replace the string value at a pointer; the issue is reported at `path`.
    Value {
        pointer: &'static str,
        path: &'static str,
        shape: Shape,
    },
    /// Rename a map key under the object at `pointer`; the issue is reported at `path` + key.
    Key {
        pointer: &'static str,
        old: &'static str,
        path: &'static str,
        shape: Shape,
    },
}

fn sites() -> Vec<Site> {
    use Shape::*;
    let v = |pointer, path, shape| Site::Value { pointer, path, shape };
    let k = |pointer, old, path, shape| Site::Key {
        pointer,
        old,
        path,
        shape,
    };
    vec![
        v("/sources/main/read_url_env", "$.sources.main.read_url_env", Env),
        v("/sources/main/write_url_env", "$.sources.main.write_url_env", Env),
        v(
            "/trusted_context/values/tenant_id_env",
            "$.trusted_context.values.tenant_id_env",
            Env,
        ),
        v(
            "/trusted_context/values/principal_env",
            "$.trusted_context.values.principal_env",
            Env,
        ),
        v("/executors/app/url_env", "$.executors.app.url_env", Env),
        v("/executors/app/auth/token_env", "$.executors.app.auth.token_env", Env),
        v(
            "/executors/app/signing_secret_env",
            "$.executors.app.signing_secret_env",
            Env,
        ),
        v("/executors/app/signing_key_id", "$.executors.app.signing_key_id", KeyId),
        v("/capabilities/0/name", "$.capabilities[0].name", CapabilityName),
        v("/capabilities/2/name", "$.capabilities[2].name", CapabilityName),
        v("/capabilities/0/source", "$.capabilities[0].source", Ident),
        v("/capabilities/2/executor", "$.capabilities[2].executor", ContextName),
        v(
            "/capabilities/0/target/schema",
            "$.capabilities[0].target.schema",
            Ident,
        ),
        v("/capabilities/0/target/table", "$.capabilities[0].target.table", Ident),
        v(
            "/capabilities/1/target/primary_key",
            "$.capabilities[1].target.primary_key",
            Ident,
        ),
        v(
            "/capabilities/2/target/tenant_key",
            "$.capabilities[2].target.tenant_key",
            Ident,
        ),
        v(
            "/capabilities/0/visible_columns/1",
            "$.capabilities[0].visible_columns[1]",
            Ident,
        ),
        v(
            "/capabilities/1/allowed_columns/0",
            "$.capabilities[1].allowed_columns[0]",
            Ident,
        ),
        v(
            "/capabilities/2/conflict_guard/column",
            "$.capabilities[2].conflict_guard.column",
            Ident,
        ),
        v(
            "/capabilities/0/lookup/id_from_arg",
            "$.capabilities[0].lookup.id_from_arg",
            Ident,
        ),
        v(
            "/capabilities/1/patch/status/from_arg",
            "$.capabilities[1].patch.status.from_arg",
            Ident,
        ),
        k("/sources", "main", "$.sources", Ident),
        k("/executors", "app", "$.executors", ContextName),
        k("/capabilities/0/args", "invoice_id", "$.capabilities[0].args", Ident),
        k(
            "/capabilities/2/patch",
            "late_fee_cents",
            "$.capabilities[2].patch",
            Ident,
        ),
        k(
            "/capabilities/1/numeric_bounds",
            "late_fee_cents",
            "$.capabilities[1].numeric_bounds",
            Ident,
        ),
        k(
            "/capabilities/1/transition_guards",
            "status",
            "$.capabilities[1].transition_guards",
            Ident,
        ),
    ]
}

/// Strings of many shapes: unicode, SQL-ish punctuation, near-miss identifiers, URLs.
fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[A-Za-z0-9_.\\- ;'\"`/:@]{0,24}",
        "[A-Za-z_][A-Za-z0-9_]{63,70}",
        "[0-9][A-Za-z0-9_]{0,10}",
        "[a-z]{1,8}\\.[a-z]{1,8}\\.[a-z]{1,8}",
        "(postgres|mysql)://[a-z]{1,5}:[a-z0-9]{1,8}@[a-z]{1,6}/[a-z]{1,6}",
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "read_only",
            "review",
            "proposal",
            "read",
            "postgres",
            "sqlite",
            "http_handler",
            "sql_update",
            "environment",
            "static_dev",
            "main",
            "app",
            "invoice_id",
            "status",
            "id",
            "tenant_id",
            "updated_at",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            "[a-z_]{1,10}",
            prop::sample::select(vec![
                "version",
                "mode",
                "sources",
                "capabilities",
                "name",
                "kind",
                "args",
                "patch",
                "fixed",
                "from_arg",
                "target",
                "lookup",
                "url",
                "sql",
                "type",
                "engine",
                "provider",
            ])
            .prop_map(str::to_owned),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every pointer into `doc` (pre-order), for targeted mutations.
fn pointers(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    walk(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    walk(c, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_bad_identifier_is_reported_at_its_path(
        site in prop::sample::select(sites()),
        bad in arb_name(),
    ) {
        let shape = match &site { Site::Value { shape, .. } | Site::Key { shape, .. } => *shape };
        prop_assume!(!shape.accepts(&bad));
        let mut doc = base();
        let path = match &site {
            Site::Value { pointer, path, .. } => {
                *node(&mut doc, pointer) = Value::String(bad.clone());
                (*path).to_owned()
            }
            Site::Key { pointer, old, path, .. } => {
                let obj = node(&mut doc, pointer);
                prop_assume!(obj.get(bad.as_str()).is_none());
                rename_key(obj, old, &bad);
                format!("{path}{}", render_key(&bad))
            }
        };
        let report = validate_value(&doc);
        prop_assert!(
            report.errors.iter().any(|e| e.path == path && IDENTIFIER_CODES.contains(&e.code)),
            "no identifier code at {path}; errors: {:?}", report.errors
        );
    }

    #[test]
    fn reserved_arg_names_are_refused_in_any_case(
        name in prop::sample::select(RESERVED_ARG_NAMES.to_vec()),
        flips in prop::collection::vec(any::<bool>(), 32),
        cap in 0usize..3,
    ) {
        let name: String = name
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        let mut doc = base();
        doc["capabilities"][cap]["args"][&name] = json!({"type": "string", "max_length": 10});
        let report = validate_value(&doc);
        let path = format!("$.capabilities[{cap}].args.{name}");
        prop_assert!(report.has("MODEL_CONTROLLED_RESERVED_ARG", &path), "{path}: {:?}", report.errors);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json()) {
        let report = validate_value(&doc);
        let again = validate_value(&doc);
        prop_assert_eq!(&report, &again);
        if report.errors.is_empty() {
            prop_assert!(parse_config_value(doc).is_ok());
        }
    }

    #[test]
    fn accepted_mutations_deserialize_and_satisfy_the_schema(
        pick in any::<prop::sample::Index>(),
        how in 0u8..5,
        word in arb_plausible_string(),
        number in prop_oneof![any::<i32>().prop_map(|n| json!(n)), (-1e6f64..1e6).prop_map(|f| json!(f))],
        replacement in arb_json(),
    ) {
        let mut doc = base();
        let all = pointers(&doc);
        let pointer = pick.get(&all).clone();
        mutate(&mut doc, &pointer, how, word, number, replacement);
        let report = validate_value(&doc);
        if report.errors.is_empty() {
            if doc.get("strict") != Some(&Value::Bool(false)) {
                let schema = schema_validator();
                let errors = support::schema_errors(&schema, &doc);
                prop_assert!(errors.is_empty(), "validator accepts but schema rejects ({pointer}): {errors:?}");
            }
            let parsed = parse_config_value(doc);
            prop_assert!(parsed.is_ok(), "validator accepts but parse fails ({pointer}): {:?}", parsed.err());
        }
    }

    #[test]
    fn independent_mistakes_are_all_reported(
        picks in prop::sample::subsequence((0..MISTAKES.len()).collect::<Vec<_>>(), 3..=6),
    ) {
        let mut doc = base();
        for &i in &picks {
            (MISTAKES[i].apply)(&mut doc);
        }
        let report = validate_value(&doc);
        prop_assert!(report.errors.len() >= picks.len());
        for &i in &picks {
            let m = &MISTAKES[i];
            prop_assert!(report.has(m.code, m.path), "{} at {} missing: {:?}", m.code, m.path, report.errors);
        }
    }
}

/// Strings that often fit somewhere in a config: names from the base config, enum values of
/// the format, env-like and identifier-like words.
fn arb_plausible_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "main",
            "app",
            "sql_update",
            "invoice_id",
            "status",
            "late_fee_cents",
            "id",
            "tenant_id",
            "updated_at",
            "public",
            "invoices",
            "paid",
            "void",
            "open",
            "required",
            "optional",
            "human",
            "policy",
            "read",
            "proposal",
            "review",
            "shadow",
            "read_only",
            "postgres",
            "mysql",
            "sqlite",
            "environment",
            "static_dev",
            "prefer",
            "verify-full",
            "POST",
            "PATCH",
            "bearer_env",
            "http_handler",
            "command_handler",
            "billing.other_tool",
        ])
        .prop_map(str::to_owned),
        "[A-Z_][A-Z0-9_]{0,10}",
        "[a-z_][a-z0-9_]{0,10}",
    ]
}

/// Mutates the node at `pointer`: 0 replaces it with arbitrary JSON, 1 with a plausible string,
/// 2 with a number, 3 removes it (or empties the document), 4 adds a plausible field to it.
fn mutate(doc: &mut Value, pointer: &str, how: u8, word: String, number: Value, replacement: Value) {
    if pointer.is_empty() {
        *doc = if how == 3 { json!({}) } else { replacement };
        return;
    }
    match how {
        0 => *node(doc, pointer) = replacement,
        1 => *node(doc, pointer) = Value::String(word),
        2 => *node(doc, pointer) = number,
        3 => {
            let (parent, last) = pointer.rsplit_once('/').expect("non-root pointer");
            match node(doc, parent) {
                Value::Object(m) => {
                    m.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Value::Array(a) => {
                    if let Ok(i) = last.parse::<usize>() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        _ => match node(doc, pointer) {
            Value::Object(m) => {
                m.insert(word.clone(), Value::String(word));
            }
            Value::Array(a) => a.push(Value::String(word)),
            other => *other = Value::String(word),
        },
    }
}

struct Mistake {
    code: &'static str,
    path: &'static str,
    apply: fn(&mut Value),
}

/// Mistakes in unrelated parts of the base config; none changes what another one reports.
const MISTAKES: &[Mistake] = &[
    Mistake {
        code: "UNSUPPORTED_CONFIG_VERSION",
        path: "$.version",
        apply: |d| d["version"] = json!(7),
    },
    Mistake {
        code: "INVALID_SOURCE_ENGINE",
        path: "$.sources.main.engine",
        apply: |d| d["sources"]["main"]["engine"] = json!("db2"),
    },
    Mistake {
        code: "INVALID_TIMEOUT",
        path: "$.sources.main.statement_timeout_ms",
        apply: |d| d["sources"]["main"]["statement_timeout_ms"] = json!(-1),
    },
    Mistake {
        code: "INVALID_CONTEXT_PROVIDER",
        path: "$.trusted_context.provider",
        apply: |d| d["trusted_context"]["provider"] = json!("magic"),
    },
    Mistake {
        code: "INVALID_HANDLER_METHOD",
        path: "$.executors.app.method",
        apply: |d| d["executors"]["app"]["method"] = json!("GET"),
    },
    Mistake {
        code: "INVALID_TARGET_IDENTIFIER",
        path: "$.capabilities[0].target.table",
        apply: |d| d["capabilities"][0]["target"]["table"] = json!("bad table"),
    },
    Mistake {
        code: "MODEL_CONTROLLED_RESERVED_ARG",
        path: "$.capabilities[0].args.tenant_id",
        apply: |d| d["capabilities"][0]["args"]["tenant_id"] = json!({"type": "string"}),
    },
    Mistake {
        code: "INVALID_VISIBLE_COLUMN",
        path: "$.capabilities[0].visible_columns[0]",
        apply: |d| d["capabilities"][0]["visible_columns"][0] = json!("a b"),
    },
    Mistake {
        code: "ALLOWED_COLUMN_IS_KEY",
        path: "$.capabilities[1].allowed_columns[2]",
        apply: |d| d["capabilities"][1]["allowed_columns"] = json!(["status", "late_fee_cents", "id"]),
    },
    Mistake {
        code: "MAX_ROWS_UNSUPPORTED",
        path: "$.capabilities[1].max_rows",
        apply: |d| d["capabilities"][1]["max_rows"] = json!(3),
    },
    Mistake {
        code: "INLINE_DATABASE_URL_FORBIDDEN",
        path: "$.capabilities[1].description",
        apply: |d| d["capabilities"][1]["description"] = json!("see postgres://u:p@h/db"),
    },
    Mistake {
        code: "CONFLICT_GUARD_COLUMN_REQUIRED",
        path: "$.capabilities[2].conflict_guard.column",
        apply: |d| d["capabilities"][2]["conflict_guard"] = json!({}),
    },
    Mistake {
        code: "INVALID_FIXED_VALUE",
        path: "$.capabilities[2].patch.late_fee_cents.fixed",
        apply: |d| d["capabilities"][2]["patch"]["late_fee_cents"] = json!({"fixed": [1]}),
    },
    Mistake {
        code: "ARBITRARY_SQL_FORBIDDEN",
        path: "$.sql",
        apply: |d| d["sql"] = json!("select 1"),
    },
];
