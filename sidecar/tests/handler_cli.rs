//! `synapsor-runner handler template`: prints or writes the embedded templates, byte for byte,
//! and never overwrites a file without --force.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    c.env_remove("SYNAPSOR_CONFIG")
        .env_remove("SYNAPSOR_MCP_CONFIG")
        .env_remove("SYNAPSOR_LOCAL_STORE")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const KINDS: [(&str, &str); 4] = [
    ("http", "templates/http-node/handler.mjs"),
    ("command", "templates/command/handler.py"),
    ("fastapi", "templates/fastapi/app.py"),
    ("axum", "templates/axum/main.rs"),
];

#[test]
fn prints_each_template_to_stdout() {
    for (kind, file) in KINDS {
        let o = bin().args(["handler", "template", kind]).output().unwrap();
        assert!(o.status.success(), "{kind}: {}", text(&o));
        let expected = std::fs::read(repo().join(file)).unwrap();
        assert!(o.stdout == expected, "{kind}: stdout differs from {file}");
        let body = String::from_utf8(o.stdout).unwrap();
        assert!(
            body.contains("YOUR HANDLER OWNS THE FINAL WRITE"),
            "{kind}: no ownership warning"
        );
        for needle in ["SYNAPSOR_HANDLER_SIGNING_SECRET", "SYNAPSOR_HANDLER_KEY_ID"] {
            assert!(body.contains(needle), "{kind}: no {needle}");
        }
    }
    // Aliases.
    let o = bin().args(["handler", "template", "node"]).output().unwrap();
    assert_eq!(o.stdout, std::fs::read(repo().join(KINDS[0].1)).unwrap());
}

#[test]
fn writes_output_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("handlers/handler.py");
    let run = |extra: &[&str]| {
        bin()
            .args(["handler", "template", "command", "--output"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Wrote"), "{}", text(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(repo().join("templates/command/handler.py")).unwrap()
    );

    std::fs::write(&out, "my edits").unwrap();
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("TEMPLATE_EXISTS"), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "my edits", "kept");

    let o = run(&["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_to_string(&out).unwrap().contains("OWNS THE FINAL WRITE"));

    // --force without --output is a usage error.
    let o = bin().args(["handler", "template", "http", "--force"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn unknown_kind_is_refused() {
    let o = bin().args(["handler", "template", "node-fastify"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("UNKNOWN_TEMPLATE") && t.contains("http, command, fastapi or axum"),
        "{t}"
    );
}

#[test]
fn docs_list_every_template() {
    let docs = std::fs::read_to_string(repo().join("docs/handlers.md")).unwrap();
    for (kind, file) in KINDS {
        assert!(
            docs.contains(&format!("`{kind}`")),
            "docs/handlers.md does not list {kind}"
        );
        assert!(docs.contains(file), "docs/handlers.md does not name {file}");
    }
}
