//! The container images (scripts/images.sh): each at most 25 MiB, non-root, labelled with the OCI
//! keys, with only its binary as entrypoint; and the Dockerfile builds them from the same recipe.
//!
//! The archives are built by scripts/test.sh before the tests run (`scripts/images.sh build`);
//! without them the image checks are skipped, unless `SYNAPSOR_REQUIRE_IMAGES=1` (set by
//! scripts/test.sh), where they fail.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

const MAX_IMAGE_BYTES: u64 = 25 * 1024 * 1024;
const IMAGES: [&str; 2] = ["synapsor-runner", "synapsor-controller"];
const LABELS: [&str; 5] = [
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.licenses",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The members of a tar file: name and bytes (the archives hold three members).
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header = &bytes[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).into_owned();
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap() as usize;
        let data_start = at + 512;
        out.push((name, bytes[data_start..data_start + size].to_vec()));
        at = data_start + size.div_ceil(512) * 512;
    }
    out
}

fn archive(name: &str) -> Option<PathBuf> {
    let path = repo().join("target/images").join(format!("{name}.tar"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("SYNAPSOR_REQUIRE_IMAGES").as_deref() == Ok("1") {
        panic!(
            "{} is missing but SYNAPSOR_REQUIRE_IMAGES=1: run scripts/images.sh build",
            path.display()
        );
    }
    eprintln!("skipping: {} is missing (scripts/images.sh build)", path.display());
    None
}

#[test]
fn images_are_small_non_root_and_labelled() {
    for name in IMAGES {
        let Some(path) = archive(name) else { return };
        let members = members(&path);
        let manifest: Value =
            serde_json::from_slice(&members.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config: Value = serde_json::from_slice(&members.iter().find(|(n, _)| n == config_name).unwrap().1).unwrap();
        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{name}: one layer");
        let layer = &members
            .iter()
            .find(|(n, _)| n == layers[0].as_str().unwrap())
            .unwrap()
            .1;
        assert!(
            (layer.len() as u64) <= MAX_IMAGE_BYTES,
            "{name} is {} bytes, over {MAX_IMAGE_BYTES}",
            layer.len()
        );
        let c = &config["config"];
        let user = c["User"].as_str().unwrap_or("");
        let uid = user.split(':').next().unwrap_or("");
        assert!(
            !uid.is_empty() && uid != "0" && uid != "root",
            "{name} must not run as root: User {user:?}"
        );
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{name}")]),
            "{name}"
        );
        for label in LABELS {
            let v = c["Labels"][label].as_str().unwrap_or("");
            assert!(!v.is_empty(), "{name}: label {label} missing");
        }
        assert_eq!(c["Labels"]["org.opencontainers.image.title"], name);
        assert_eq!(
            c["Labels"]["org.opencontainers.image.version"],
            env!("CARGO_PKG_VERSION"),
            "{name}"
        );
        // Only the binary, the libraries it links, CA certificates and passwd/group: no shell.
        let files = tar_names(layer);
        assert!(files.contains(&format!("usr/local/bin/{name}")), "{name}: {files:?}");
        assert!(
            files.contains(&"etc/ssl/certs/ca-certificates.crt".to_owned()),
            "{name}"
        );
        for absent in ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt-get"] {
            assert!(!files.contains(&absent.to_owned()), "{name} holds {absent}");
        }
        let other: Vec<&String> = files
            .iter()
            .filter(|f| {
                !(f.starts_with("usr/local/bin")
                    || f.starts_with("lib")
                    || f.starts_with("etc")
                    || ["tmp", "usr", "usr/local"].contains(&f.as_str()))
            })
            .collect();
        assert!(other.is_empty(), "{name}: unexpected files {other:?}");
    }
}

/// The regular files and directories in a layer.
fn tar_names(layer: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while at + 512 <= layer.len() {
        let header = &layer[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap() as usize;
        let typeflag = header[156];
        at += 512 + size.div_ceil(512) * 512;
        match typeflag {
            // PAX headers carry long names; the entries here are short, so the ustar name is whole.
            b'x' | b'g' => continue,
            _ => {
                let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
                let mut name = String::from_utf8_lossy(&header[..name_end]).into_owned();
                let prefix_end = header[345..500].iter().position(|b| *b == 0).unwrap_or(155);
                if prefix_end > 0 {
                    name = format!("{}/{name}", String::from_utf8_lossy(&header[345..345 + prefix_end]));
                }
                names.push(name.trim_end_matches('/').to_owned());
            }
        }
    }
    names
}

#[test]
fn the_dockerfile_builds_the_same_images_from_the_same_recipe() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let script = std::fs::read_to_string(repo().join("scripts/images.sh")).unwrap();
    for name in IMAGES {
        let target = name.trim_start_matches("synapsor-");
        let stage = dockerfile
            .split("\nFROM ")
            .find(|s| s.starts_with(&format!("scratch AS {target}")))
            .unwrap_or_else(|| panic!("no `FROM scratch AS {target}` stage"));
        assert!(
            dockerfile.contains(&format!(
                "scripts/lib/image-rootfs.sh target/release/{name} /out/{name}"
            )),
            "the build stage assembles {name} with scripts/lib/image-rootfs.sh"
        );
        assert!(stage.contains(&format!("COPY --from=build /out/{name}/ /")), "{name}");
        assert!(stage.contains("USER 65532:65532"), "{name}");
        assert!(
            stage.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{name}\"]")),
            "{name}"
        );
        for label in LABELS.iter().filter(|l| !l.ends_with("revision")) {
            assert!(stage.contains(label), "{name}: the Dockerfile lacks {label}");
        }
    }
    assert!(script.contains("scripts/lib/image-rootfs.sh"));
    assert!(script.contains("--user 65532:65532"));
    for label in LABELS {
        assert!(script.contains(label), "scripts/images.sh lacks {label}");
    }
    let version = dockerfile.lines().find_map(|l| l.strip_prefix("ARG VERSION=")).unwrap();
    assert_eq!(
        version,
        env!("CARGO_PKG_VERSION"),
        "the Dockerfile's VERSION follows the workspace"
    );
}
