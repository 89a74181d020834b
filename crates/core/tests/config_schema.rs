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
    let path = repo_root().join(RUNNER_CONFIG_SCHEMA_PATH);
    let generated = runner_config_schema_pretty();
    if std::env::var("SYNAPSOR_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{RUNNER_CONFIG_SCHEMA_PATH} is stale or missing; regenerate it with\n  \
         SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-core --test config_schema\n\
         and commit the result"
    );
}
