//! The committed JSON Schema equals the one generated from the model.
//!
//! Regenerate with `SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-core --test config_schema`.

use std::path::PathBuf;

use synapsor_core::config::schema::{RUNNER_CONFIG_SCHEMA_PATH, runner_config_schema_pretty};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn committed_schema_is_current() {
    synapsor_testdb::check_generated(
        &repo_root(),
        RUNNER_CONFIG_SCHEMA_PATH,
        &runner_config_schema_pretty(),
        "cargo test -p synapsor-core --test config_schema",
    );
}
