//! `synapsor-controller run` refuses a bad setup before it binds a port or calls the API, with a
//! stable code: `error[CODE]: message` on stderr and exit status 1.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const VALID_CONFIG: &str = include_str!("../../crates/core/tests/fixtures/valid/base.json");

/// Runs `synapsor-controller run` with the given files and returns (exit code, stderr).
fn run(dir: &Path, config: Option<&str>, key: Option<&[u8]>) -> (Option<i32>, String) {
    let config_path = dir.join("synapsor.runner.json");
    if let Some(c) = config {
        std::fs::write(&config_path, c).unwrap();
    }
    let key_path = dir.join("key");
    if let Some(k) = key {
        std::fs::write(&key_path, k).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_synapsor-controller"))
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .arg("--approval-key-file")
        .arg(&key_path)
        .arg("--tls-cert")
        .arg(dir.join("missing.crt"))
        .arg("--tls-key")
        .arg(dir.join("missing.key"))
        .arg("--ledger")
        .arg(dir.join("controller.db"))
        // Never reach a cluster from this test, even if the environment names one.
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_setup_is_refused_with_its_code_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a [u8]>, &'a str);
    let cases: [Case<'_>; 4] = [
        ("no config", None, None, "error[CONFIG_NOT_FOUND]: cannot read config"),
        (
            "invalid config",
            Some(r#"{"version": 1}"#),
            None,
            "error[CONFIG_INVALID]:",
        ),
        ("no key", Some(VALID_CONFIG), None, "error[APPROVAL_KEY_MISSING]:"),
        (
            "short key",
            Some(VALID_CONFIG),
            Some(b"too short\n"),
            "error[APPROVAL_KEY_INVALID]: the approval key has 9 bytes; at least 32 are required",
        ),
    ];
    for (case, config, key, want) in cases {
        let (code, err) = run(dir.path(), config, key);
        assert_eq!(code, Some(1), "{case}: {err}");
        assert!(err.contains(want), "{case}: want {want:?} in {err}");
    }
    // A good key, but no certificate: the webhook cannot serve.
    let (code, err) = run(dir.path(), Some(VALID_CONFIG), Some(&[b'k'; 32]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("error[TLS_INVALID]: cannot read the TLS certificate"),
        "{err}"
    );
    assert!(
        !dir.path().join("controller.db").exists(),
        "nothing is created before the checks pass"
    );
}

#[test]
fn the_config_path_comes_from_synapsor_config_or_the_original_name() {
    let dir = tempfile::tempdir().unwrap();
    let config_error = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-controller"));
        c.arg("run")
            .env_remove("SYNAPSOR_CONFIG")
            .env_remove("SYNAPSOR_MCP_CONFIG");
        for (k, v) in env {
            c.env(k, dir.path().join(v));
        }
        String::from_utf8_lossy(&c.output().unwrap().stderr).into_owned()
    };
    assert!(config_error(&[]).contains("cannot read config /etc/synapsor/synapsor.runner.json"));
    assert!(config_error(&[("SYNAPSOR_MCP_CONFIG", "old.json")]).contains("old.json"));
    let both = config_error(&[("SYNAPSOR_MCP_CONFIG", "old.json"), ("SYNAPSOR_CONFIG", "new.json")]);
    assert!(both.contains("new.json") && !both.contains("old.json"), "{both}");
}
