//! The krew manifest in `plugins/krew/synapsor.yaml` is a valid krew `Plugin` for this version:
//! the fields krew requires, release archives of this repository, and a binary named as the
//! plugin's entry point in each archive.
#![allow(clippy::unwrap_used)]

use serde_yaml::Value;

const REPO: &str = "https://github.com/synapsor/synapsor-runner-rs";

#[test]
fn the_krew_manifest_names_this_version_and_its_release_archives() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/krew/synapsor.yaml");
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        doc["apiVersion"].as_str(),
        Some("krew.googlecontainertools.github.com/v1alpha2")
    );
    assert_eq!(doc["kind"].as_str(), Some("Plugin"));
    // `kubectl krew install synapsor` gives `kubectl synapsor`, i.e. the binary kubectl-synapsor.
    assert_eq!(doc["metadata"]["name"].as_str(), Some("synapsor"));
    let spec = &doc["spec"];
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(spec["version"].as_str(), Some(version.as_str()));
    assert_eq!(spec["homepage"].as_str(), Some(REPO));
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(
        !short.is_empty() && short.len() <= 64,
        "krew wants a short description: {short}"
    );
    assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()));
    let platforms = spec["platforms"].as_sequence().unwrap();
    assert!(platforms.len() >= 2);
    let mut seen = Vec::new();
    for p in platforms {
        let labels = &p["selector"]["matchLabels"];
        let (os, arch) = (labels["os"].as_str().unwrap(), labels["arch"].as_str().unwrap());
        seen.push(format!("{os}/{arch}"));
        let uri = p["uri"].as_str().unwrap();
        assert_eq!(
            uri,
            format!("{REPO}/releases/download/{version}/kubectl-synapsor_{version}_{os}_{arch}.tar.gz"),
        );
        // A placeholder until the release fills it in; always 64 hex digits, as krew requires.
        let sha = p["sha256"].as_str().unwrap();
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
        let bin = p["bin"].as_str().unwrap();
        assert_eq!(bin, "kubectl-synapsor");
        let files = p["files"].as_sequence().unwrap();
        assert!(
            files.iter().any(|f| f["from"].as_str() == Some(bin)),
            "{os}/{arch}: {bin} is not unpacked"
        );
    }
    assert!(seen.contains(&"linux/amd64".to_owned()), "{seen:?}");
    // The binary krew installs is the one this package builds.
    assert!(env!("CARGO_BIN_EXE_kubectl-synapsor").ends_with("kubectl-synapsor"));
}
