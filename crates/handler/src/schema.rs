//! JSON Schemas (draft 2020-12) of the wire types, generated from them.
//!
//! The committed copies live in `schemas/`; a test fails when they are stale
//! (`SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-handler --test schemas` regenerates them).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::wire::{HandlerReceipt, HandlerRequest};

pub const REQUEST_SCHEMA_ID: &str = "https://synapsor.ai/schemas/handler-request.schema.json";
pub const RECEIPT_SCHEMA_ID: &str = "https://synapsor.ai/schemas/handler-receipt.schema.json";
/// Repository paths of the committed files.
pub const REQUEST_SCHEMA_PATH: &str = "schemas/handler-request.schema.json";
pub const RECEIPT_SCHEMA_PATH: &str = "schemas/handler-receipt.schema.json";

/// The schema of [`HandlerRequest`].
pub fn request_schema() -> Value {
    schema_of::<HandlerRequest>(REQUEST_SCHEMA_ID)
}

/// The schema of [`HandlerReceipt`].
pub fn receipt_schema() -> Value {
    schema_of::<HandlerReceipt>(RECEIPT_SCHEMA_ID)
}

/// A schema as committed: pretty-printed with a trailing newline.
pub fn pretty(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

fn schema_of<T: JsonSchema>(id: &str) -> Value {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        // `$schema`, then `$id`, then the rest as generated.
        let mut out = Map::new();
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
