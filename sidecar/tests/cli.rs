//! The `synapsor-runner` binary, driven as a user would: exit codes, output, JSON.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    c.env_remove("SYNAPSOR_CONFIG")
        .env_remove("SYNAPSOR_MCP_CONFIG")
        .env_remove("SYNAPSOR_LOCAL_STORE")
        .env_remove("SYNAPSOR_APPROVER");
    c.stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the demo in `dir` and returns its JSON summary.
fn demo(dir: &Path) -> Value {
    let o = run(dir, &["demo", "--quick", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    json_out(&o)
}

const STORE: &str = ".synapsor/quick-demo/ledger.db";

#[test]
fn quick_demo_shows_the_whole_flow() {
    let dir = tempfile::tempdir().unwrap();
    let v = demo(dir.path());
    assert_eq!(v["ok"], true);
    assert_eq!(v["read"]["ok"], true);
    assert!(v["read"]["data"].get("internal_note").is_none());
    assert_eq!(v["cross_tenant_read"]["error"]["code"], "NOT_FOUND_IN_TENANT");
    assert_eq!(v["cross_tenant_read"]["error"], v["missing_read"]["error"]);
    assert_eq!(v["tenant_override_attempt"]["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(
        v["proposal"]["proposal"]["diff"],
        json!({"late_fee_cents": {"before": 5500, "after": 0}})
    );
    assert_eq!(v["repeated_proposal_existing"], true);
    assert_eq!(v["source_database_changed"], false);
    assert_eq!(v["approval"]["state"], "approved");
    assert_eq!(v["apply"]["status"], "applied");
    assert_eq!(v["apply"]["rows_affected"], 1);
    assert_eq!(v["apply"]["state"], "applied");
    assert_eq!(v["apply"]["source_row_after"]["late_fee_cents"], 0);
    assert_eq!(v["apply_again"]["status"], "already_applied");
    assert_eq!(v["apply_again"]["rows_affected"], 0);
    assert_eq!(v["replay"]["digest_verified"], true);
    let events: Vec<&str> = v["replay"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(events.contains(&"writeback_applied"), "{events:?}");

    // Human output, and a second run starts fresh.
    let o = run(dir.path(), &["demo", "--quick"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for needle in [
        "NOT_FOUND_IN_TENANT",
        "late_fee_cents",
        "source database is unchanged",
        "approve",
        "replay",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let list = json_out(&run(dir.path(), &["--store", STORE, "proposals", "list", "--json"]));
    assert_eq!(list["proposals"].as_array().unwrap().len(), 1);

    let o = run(dir.path(), &["demo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("DEMO_MODE_REQUIRED"));
}

#[test]
fn proposal_commands_on_the_demo_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let v = demo(dir.path());
    let id = v["proposal"]["proposal"]["id"].as_str().unwrap().to_owned();
    let d = dir.path();

    let show = json_out(&run(d, &["--store", STORE, "proposals", "show", "latest", "--json"]));
    assert_eq!(show["proposal"]["change_set"]["proposal_id"], json!(id));
    assert_eq!(show["diff"]["late_fee_cents"]["after"], 0);
    let o = run(d, &["--store", STORE, "proposals", "show", &id]);
    assert!(text(&o).contains("late_fee_cents: 5500 -> 0"), "{}", text(&o));

    // Already approved and applied in the demo: approving again is an invalid transition.
    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "approve",
            &id,
            "--yes",
            "--actor",
            "someone.else",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("INVALID_TRANSITION"), "{}", text(&o));

    let ev_id = show["proposal"]["change_set"]["evidence"]["bundle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ev = json_out(&run(d, &["--store", STORE, "evidence", "show", &ev_id, "--json"]));
    assert_eq!(
        ev["evidence"]["evidence"]["capability"],
        "billing.propose_late_fee_waiver"
    );
    let o = run(d, &["--store", STORE, "evidence", "show", "ev_nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("EVIDENCE_NOT_FOUND"));

    let replay = json_out(&run(d, &["--store", STORE, "replay", &id, "--json"]));
    let kinds: Vec<&str> = replay["replay"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"proposal_created") && kinds.contains(&"proposal_approved"),
        "{kinds:?}"
    );
    assert_eq!(replay["replay"]["digest_verified"], true);

    let o = run(d, &["--store", STORE, "events", "tail", "--json"]);
    assert!(o.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3);
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["event_id"].as_i64() < w[1]["event_id"].as_i64())
    );

    let o = run(d, &["--store", STORE, "proposals", "list", "--state", "bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("INVALID_STATE"));

    let o = run(d, &["--store", "does/not/exist.db", "proposals", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("STORE_NOT_FOUND"), "{}", text(&o));
}

#[test]
fn approval_needs_confirmation_and_the_reviewed_digest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    demo(d);
    // A fresh pending proposal, made through the runtime the way a tool call makes it.
    let store_path = d.join(STORE);
    let id = synapsor_runner_test_support::pending_proposal(&store_path);

    let o = run(d, &["--store", STORE, "proposals", "approve", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("CONFIRMATION_REQUIRED"), "{}", text(&o));

    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "approve",
            &id,
            "--digest",
            "sha256:0000",
            "--actor",
            "alice",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("DIGEST_MISMATCH"), "{}", text(&o));

    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "approve",
            &id,
            "--yes",
            "--actor",
            "support.agent",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("SELF_APPROVAL_FORBIDDEN"), "{}", text(&o));

    let show = json_out(&run(d, &["--store", STORE, "proposals", "show", &id, "--json"]));
    let digest = show["proposal"]["change_set"]["digest"].as_str().unwrap().to_owned();
    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "reject",
            &id,
            "--reason",
            "not today",
            "--actor",
            "alice",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "reject also needs --yes without a terminal");
    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "reject",
            &id,
            "--reason",
            "not today",
            "--actor",
            "alice",
            "--yes",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_out(&o)["state"], "rejected");
    let o = run(
        d,
        &[
            "--store",
            STORE,
            "proposals",
            "approve",
            &id,
            "--digest",
            &digest,
            "--actor",
            "bob",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_out(&o)["error"]["code"], "INVALID_TRANSITION");
}

#[test]
fn events_tail_follows_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    demo(d);
    let mut child = bin()
        .current_dir(d)
        .args([
            "--store",
            STORE,
            "events",
            "tail",
            "--follow",
            "--json",
            "--interval-ms",
            "50",
            "--kind",
            "proposal_created",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["kind"], "proposal_created");
    let id = synapsor_runner_test_support::pending_proposal(&d.join(STORE));
    let next: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["proposal_id"], json!(id));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn store_maintenance_respects_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    demo(d);
    let stats = json_out(&run(d, &["--store", STORE, "store", "stats", "--json"]));
    assert_eq!(stats["stats"]["proposals"], 1);

    let o = run(d, &["--store", STORE, "store", "prune", "--older-than", "0s", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_out(&o)["prune"]["dry_run"], true);
    // A pending proposal is kept by a real prune; the demo's applied one (terminal) goes.
    synapsor_runner_test_support::pending_proposal(&d.join(STORE));
    let o = run(
        d,
        &[
            "--store",
            STORE,
            "store",
            "prune",
            "--older-than",
            "0s",
            "--yes",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_out(&o)["prune"]["proposals"], 1);
    let left = json_out(&run(d, &["--store", STORE, "proposals", "list", "--json"]));
    assert_eq!(left["proposals"].as_array().unwrap().len(), 1);
    assert_eq!(left["proposals"][0]["state"], "pending_review");
    let o = run(d, &["--store", STORE, "store", "prune", "--older-than", "soon"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("INVALID_DURATION"));

    let o = run(d, &["--store", STORE, "store", "reset"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("CONFIRMATION_REQUIRED"));

    {
        let info = synapsor_ledger::LeaseInfo::for_current_process("mcp", "stdio", "2026-11-25T00:00:00.000Z");
        let _lease = synapsor_ledger::StoreLease::acquire(&d.join(STORE), &info).unwrap();
        let o = run(d, &["--store", STORE, "store", "reset", "--yes"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).contains("STORE_LEASED"), "{}", text(&o));
        let o = run(d, &["--store", STORE, "store", "prune", "--older-than", "1d", "--yes"]);
        assert!(text(&o).contains("STORE_LEASED"), "{}", text(&o));
    }
    let o = run(d, &["--store", STORE, "store", "reset", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.join(STORE).exists());
}

#[test]
fn config_validate_reports_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("CONFIG_NOT_FOUND"));

    std::fs::write(d.join("synapsor.runner.json"), synapsor_runner::demo::CONFIG).unwrap();
    let o = run(d, &["config", "validate", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_out(&o)["ok"], true);

    let mut bad: Value = serde_json::from_str(synapsor_runner::demo::CONFIG).unwrap();
    bad["capabilities"][0]["args"]["tenant_id"] = json!({"type": "string"});
    bad["capabilities"][1]["allowed_columns"] = json!(["late_fee_cents", "tenant_id"]);
    bad["sources"]["demo_billing"]["url"] = json!("postgres://u:p@h/db");
    std::fs::write(d.join("bad.json"), bad.to_string()).unwrap();
    let o = run(d, &["--config", "bad.json", "config", "validate", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let report = json_out(&o);
    let codes: Vec<(&str, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert!(
        codes
            .iter()
            .any(|(c, p)| *c == "MODEL_CONTROLLED_RESERVED_ARG" && p.contains("capabilities[0]")),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|(c, p)| *c == "INLINE_DATABASE_URL_FORBIDDEN" && p.contains("demo_billing")),
        "{codes:?}"
    );
    assert!(codes.len() >= 3, "{codes:?}");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("u:p@h"),
        "the URL must not be echoed"
    );

    std::fs::write(d.join("broken.json"), "{ \"version\": 1,").unwrap();
    let o = run(d, &["--config", "broken.json", "config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("INVALID_JSON"));

    let o = run(d, &["config", "schema"]);
    let schema = json_out(&o);
    assert!(schema["properties"]["capabilities"].is_object());
}

#[test]
fn every_example_config_validates_through_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let cfg = entry.unwrap().path().join("synapsor.runner.json");
        if cfg.exists() {
            seen += 1;
            let o = bin()
                .arg("--config")
                .arg(&cfg)
                .args(["config", "validate", "--json"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}: {}", cfg.display(), text(&o));
        }
    }
    assert!(seen >= 3, "expected the example configs, found {seen}");
}

#[test]
fn help_explains_the_commands() {
    let o = bin().arg("--help").output().unwrap();
    let out = text(&o);
    for cmd in ["demo", "config", "proposals", "evidence", "replay", "events", "store"] {
        assert!(out.contains(cmd), "--help lacks {cmd}");
    }
    let o = bin().arg("--version").output().unwrap();
    assert!(text(&o).starts_with("synapsor-runner "));
}

/// Helpers that use the library directly.
mod synapsor_runner_test_support {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;
    use synapsor_core::context::{OverlayEnv, ProcessEnv, SystemClock};
    use synapsor_runner::ids::RandomIds;
    use synapsor_runner::runtime::{Runtime, RuntimeDeps};

    /// Creates a pending proposal in the demo ledger at `store` (the demo's source is beside it).
    pub fn pending_proposal(store: &Path) -> String {
        let dir = store.parent().unwrap();
        let url = format!("sqlite://{}", dir.join("billing.db").display());
        let (cfg, _) = synapsor_core::config::parse_config(synapsor_runner::demo::CONFIG).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let runtime = Runtime::new(
                cfg,
                RuntimeDeps {
                    ledger: synapsor_ledger::Ledger::new(synapsor_ledger::LedgerStore::open(store).unwrap()),
                    env: Arc::new(OverlayEnv {
                        values: HashMap::from([
                            ("SYNAPSOR_DEMO_READ_URL".to_owned(), url),
                            ("SYNAPSOR_TENANT_ID".to_owned(), "acme".to_owned()),
                            ("SYNAPSOR_PRINCIPAL".to_owned(), "support.agent".to_owned()),
                        ]),
                        fallback: ProcessEnv,
                    }),
                    clock: Arc::new(SystemClock),
                    ids: Arc::new(RandomIds::default()),
                    result_format: None,
                    publisher: None,
                },
            )
            .unwrap();
            // INV-3002 has no pending proposal yet in the demo.
            let (v, is_error) = runtime
                .call_envelope(
                    "billing.propose_late_fee_waiver",
                    &json!({"invoice_id": "INV-3002"}),
                    &synapsor_core::capability::Caller::Process,
                )
                .await;
            assert!(!is_error, "{v}");
            v["proposal"]["id"].as_str().unwrap().to_owned()
        })
    }
}

#[test]
fn the_config_path_comes_from_synapsor_config_or_the_original_name() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.json");
    std::fs::write(&valid, synapsor_runner::demo::CONFIG).unwrap();
    let missing = dir.path().join("missing.json");
    let validate = |env: &[(&str, &Path)]| {
        let mut c = bin();
        c.current_dir(dir.path()).args(["config", "validate", "--json"]);
        for (k, v) in env {
            c.env(k, v);
        }
        json_out(&c.output().unwrap())
    };
    // The original's name alone is read.
    let v = validate(&[("SYNAPSOR_MCP_CONFIG", &valid)]);
    assert_eq!(
        (v["ok"].as_bool(), v["config"].as_str()),
        (Some(true), valid.to_str()),
        "{v}"
    );
    // SYNAPSOR_CONFIG wins over it.
    let v = validate(&[("SYNAPSOR_MCP_CONFIG", &valid), ("SYNAPSOR_CONFIG", &missing)]);
    assert_eq!(v["error"]["code"], "CONFIG_NOT_FOUND", "{v}");
    // --config wins over both.
    let mut c = bin();
    c.current_dir(dir.path())
        .args(["--config", valid.to_str().unwrap(), "config", "validate", "--json"])
        .env("SYNAPSOR_CONFIG", &missing)
        .env("SYNAPSOR_MCP_CONFIG", &missing);
    assert_eq!(json_out(&c.output().unwrap())["ok"], true);
}
