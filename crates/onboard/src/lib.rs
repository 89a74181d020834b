//! Onboarding a database: from what its catalog says to a reviewed `synapsor.runner.json`.
//!
//! What it is: pure functions over a [`Catalog`] (read by `synapsor_source::catalog`; the types
//! are `synapsor_core::catalog`'s):
//! [`classify`] suggests tenant, version, sensitive and large columns and the row key;
//! [`selection`] is the user's choice (the flags of `init` / `onboard db`, or an answers file);
//! [`plan`] checks the choice against the table and builds the config, which it runs through the
//! config validator; [`report`] renders the inspection and the final preview.
//!
//! What it is not: it does no IO (no database, no files, no prompts: the CLI does those), and it
//! never reads table data. Every classification is a suggestion: where the catalog leaves a choice
//! open, onboarding names the flag to pass instead of choosing.

pub mod classify;
pub mod error;
pub mod plan;
pub mod report;
pub mod selection;

pub use error::{Field, OnboardError};
pub use plan::{EnvVar, HiddenColumn, Onboarding, plan};
pub use selection::{Selection, Writeback};
pub use synapsor_core::catalog::Catalog;

/// `$id` of the answers-file schema.
pub const SELECTION_SCHEMA_ID: &str = "https://synapsor.ai/schemas/onboarding-selection.v1.schema.json";

/// Repository path of the committed answers-file schema.
pub const SELECTION_SCHEMA_PATH: &str = "schemas/onboarding-selection.v1.schema.json";

/// The JSON Schema (draft 2020-12) of the answers file, generated from [`Selection`].
pub fn selection_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Selection>();
    synapsor_core::config::schema::with_id(schema.to_value(), SELECTION_SCHEMA_ID)
}

/// [`selection_schema`] as committed: pretty, with a final newline.
pub fn selection_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&selection_schema()).unwrap_or_default();
    s.push('\n');
    s
}
