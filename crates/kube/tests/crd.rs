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
    let path = format!("{dir}/{CRD_FILE}");
    let file = repo_root().join(&path);
    let generated = crd_yaml();
    if std::env::var("SYNAPSOR_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(&file, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale or missing; regenerate it with\n  \
         SYNAPSOR_UPDATE_SCHEMAS=1 cargo test -p synapsor-kube --test crd\n\
         and commit the result"
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
