//! The JSON Schema of `synapsor.runner.json`, generated from the typed model.
//!
//! The committed copy lives in `schemas/synapsor.runner.schema.json`; a test fails when it is
//! stale. The schema describes a *strict* config (`additionalProperties: false` everywhere) and
//! the rules JSON Schema can express (types, enums, patterns, ranges, required fields, the
//! read/proposal split); cross-references and the safety scans are the validator's job
//! ([`super::validate`]), which is the authority.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use serde_json::Value;

use super::model::RunnerConfig;

/// `$id` of the published schema.
pub const RUNNER_CONFIG_SCHEMA_ID: &str = "https://synapsor.ai/schemas/synapsor.runner.schema.json";

/// Repository path of the committed schema file.
pub const RUNNER_CONFIG_SCHEMA_PATH: &str = "schemas/synapsor.runner.schema.json";

/// The JSON Schema (draft 2020-12) for `synapsor.runner.json`.
pub fn runner_config_schema() -> Value {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RunnerConfig>();
    RecursiveTransform(close_objects).transform(&mut schema);

    with_id(schema.to_value(), RUNNER_CONFIG_SCHEMA_ID)
}

/// A generated schema with `$schema` first, then `$id`, then the rest as generated (the order
/// of the committed files).
pub fn with_id(mut value: Value, id: &str) -> Value {
    if let Some(obj) = value.as_object_mut() {
        let mut out = serde_json::Map::new();
        out.insert(
            "$schema".into(),
            obj.remove("$schema")
                .unwrap_or_else(|| "https://json-schema.org/draft/2020-12/schema".into()),
        );
        out.insert("$id".into(), id.into());
        out.extend(std::mem::take(obj));
        *obj = out;
    }
    value
}

/// The schema as committed: pretty-printed with a trailing newline.
pub fn runner_config_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&runner_config_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Closes every object schema (`additionalProperties: false`) and makes optional properties
/// non-nullable: the validator refuses `null` for an optional field (omit it instead), and serde's
/// `deny_unknown_fields` is not used because `strict: false` must still parse.
fn close_objects(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else { return };
    let is_object_type = obj.get("type").and_then(Value::as_str) == Some("object");
    if is_object_type && obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for prop in props.values_mut() {
            strip_null(prop);
        }
    }
}

/// `{"type": ["string", "null"]}` → `{"type": "string"}`;
/// `{"anyOf": [{"$ref": ..}, {"type": "null"}], ..}` → `{"$ref": .., ..}`.
fn strip_null(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else { return };
    if let Some(Value::Array(types)) = obj.get("type")
        && types.len() == 2
        && types.iter().any(|t| t == "null")
    {
        let other = types.iter().find(|t| *t != "null").cloned().unwrap_or(Value::Null);
        obj.insert("type".into(), other);
    }
    let null_branch = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    if let Some(Value::Array(any)) = obj.get("anyOf")
        && any.len() == 2
        && any.iter().any(null_branch)
    {
        let other = any.iter().find(|v| !null_branch(v)).cloned();
        obj.remove("anyOf");
        if let Some(Value::Object(other)) = other {
            for (k, v) in other {
                obj.entry(k).or_insert(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_id_and_draft() {
        let s = runner_config_schema();
        assert_eq!(s["$id"], RUNNER_CONFIG_SCHEMA_ID);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["write_url_env"], Value::Null);
        // Optional fields are not nullable.
        assert_eq!(s["$defs"]["Source"]["properties"]["write_url_env"]["type"], "string");
    }
}
