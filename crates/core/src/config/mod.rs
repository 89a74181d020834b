//! `synapsor.runner.json` version 1: the typed model, its validator and its JSON Schema.

pub mod model;
pub mod schema;
pub mod transport;
pub mod validate;

pub use model::*;
pub use schema::runner_config_schema;
pub use transport::{ContextSource, context_source};
pub use validate::{ConfigIssue, Severity, ValidationReport, parse_config, parse_config_value, validate_value};
