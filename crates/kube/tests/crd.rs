//! The committed CRD (`crds/` and the Helm chart's `crds/`) equals the one generated from the
//! Rust types.
//!
//! Regenerate with `SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-kube --test crd`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use synapsor_kube::{CRD_FILE, crd_yaml};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_committed(dir: &str) {
    synapsor_testdb::check_generated(
        &repo_root(),
        &format!("{dir}/{CRD_FILE}"),
        &crd_yaml(),
        "cargo test -p synapsor-kube --test crd",
    );
}

#[test]
fn committed_crd_is_current() {
    check_committed("crds");
}

#[test]
fn chart_crd_is_current() {
    check_committed("charts/synapsor-runner/crds");
}
