//! `apply`, `doctor` and `db init-receipts` behaviour that needs no server: refusals before any
//! state change, the current config winning over what was approved, the human checklist,
//! redaction, and the printed DDL and grants. SQLite is the source where a database is needed.
#![allow(clippy::unwrap_used)]

mod writeback_support;

use serde_json::{Value, json};
use writeback_support::{RUNNER, Setup, WDb, config_doc, text};

fn fee_capability(db: &WDb) -> Value {
    config_doc(db, std::path::Path::new("unused.db"), json!({}))["capabilities"][0].clone()
}

async fn approved_fee_proposal(s: &Setup, id: &str, fee: i64) -> String {
    let p = s
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": id, "late_fee_cents": fee}),
        )
        .await;
    s.approve(&p);
    p
}

fn rewrite_config(s: &Setup, edit: impl FnOnce(&mut Value)) {
    let mut doc = s.doc.clone();
    edit(&mut doc);
    std::fs::write(&s.config_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

#[tokio::test]
async fn human_checklist_for_apply_and_conflict() {
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let p = approved_fee_proposal(&s, "INV-1", 2500).await;
    let out = s.run(&["apply", &p], &[("TEST_WRITE_URL", &s.db.write_url)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for want in [
        "approved by alice (1 of 1 required)",
        "digest verified sha256:",
        "allowed columns: patch columns late_fee_cents are allowed",
        "tenant guard: tenant_id = acme (exact)",
        "version guard: updated_at = 2026-06-23T09:00:00Z as proposed",
        "single-row update: the guarded UPDATE matched exactly 1 row",
        "rows affected 1",
        "Result  applied",
        "Receipt sha256:",
        "Source database changed by this run: yes",
        "State   applied",
        &format!("Replay  synapsor-runner replay {p}"),
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }

    let p4 = approved_fee_proposal(&s, "INV-4", 10).await;
    s.db.exec(&s.db.touch_sql("INV-4")).await;
    // A dry run reports the conflict and leaves the proposal approved.
    let out = s.run(&["apply", &p4, "--dry-run"], &[("TEST_WRITE_URL", &s.db.write_url)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("VERSION_CONFLICT"), "{}", text(&out));
    assert_eq!(s.state(&p4), "approved");
    let out = s.run(&["apply", &p4], &[("TEST_WRITE_URL", &s.db.write_url)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("!!  version guard"), "{t}");
    assert!(t.contains("Source database changed by this run: no"), "{t}");
    assert!(t.contains("ask the agent to propose again"), "{t}");
    assert_eq!(s.state(&p4), "conflict");
}

#[tokio::test]
async fn the_current_config_decides() {
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let w = [("TEST_WRITE_URL", s.db.write_url.as_str())];

    // The target moved (another tenant key): refused before any state change.
    let p = approved_fee_proposal(&s, "INV-1", 2500).await;
    rewrite_config(&s, |d| d["capabilities"][0]["target"]["tenant_key"] = json!("note"));
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("CAPABILITY_CHANGED")),
        "{v}"
    );
    assert_eq!(s.state(&p), "approved");

    // A tighter bound than the one approved: the executor refuses, nothing is written.
    rewrite_config(&s, |d| {
        d["capabilities"][0]["numeric_bounds"]["late_fee_cents"]["maximum"] = json!(1000)
    });
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, v["receipt"]["safe_error_code"].as_str()),
        (1, Some("PATCH_ABOVE_MAXIMUM")),
        "{v}"
    );
    assert_eq!(s.state(&p), "failed");
    assert_eq!(s.db.fee("INV-1").await, 5500);

    // More approvals required now than were given.
    rewrite_config(&s, |d| {
        d["capabilities"][0]["approval"] = json!({"required_approvals": 2})
    });
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("APPROVALS_INSUFFICIENT")),
        "{v}"
    );

    // Back to the reviewed config: the failed proposal is retried and applied.
    rewrite_config(&s, |_| {});
    let out = s.run(&["apply", &p, "--json"], &w);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.state(&p), "applied");
    assert_eq!(s.db.fee("INV-1").await, 2500);

    // Not in review mode: apply is disabled.
    rewrite_config(&s, |d| d["mode"] = json!("shadow"));
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("SHADOW_WRITEBACK_DISABLED")),
        "{v}"
    );
    rewrite_config(&s, |d| d["mode"] = json!("read_only"));
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("READ_ONLY_WRITEBACK_DISABLED")),
        "{v}"
    );
}

#[tokio::test]
async fn handler_executors_without_their_environment_fail_retryably() {
    let db = RUNNER.sqlite(true);
    let mut cap = fee_capability(&db);
    cap["executor"] = json!("billing_handler");
    let s = Setup::new(
        db,
        json!({
            "capabilities": [cap],
            "executors": {"billing_handler": {"type": "http_handler", "url_env": "HANDLER_URL", "signing_secret_env": "HANDLER_SECRET"}}
        }),
    );
    let p = approved_fee_proposal(&s, "INV-1", 2500).await;
    // Handlers run (sidecar/tests/writeback_handlers.rs); without the handler's URL nothing is
    // sent, nothing is written, and the proposal can be applied again once it is set.
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(
        (
            rc,
            v["receipt"]["status"].as_str(),
            v["receipt"]["safe_error_code"].as_str()
        ),
        (1, Some("failed"), Some("HANDLER_URL_MISSING")),
        "{v}"
    );
    assert_eq!(s.state(&p), "failed");
    assert_eq!(s.store().receipts_for(&p).unwrap().len(), 1);
    assert_eq!(s.db.total_writes().await, 0);

    // Doctor checks the handler's environment (presence only, values never printed).
    let out = s.run(&["doctor"], &[("TEST_WRITE_URL", &s.db.write_url)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("HANDLER_URL is not set"), "{t}");
    // Reachability is a TCP connect (no request is sent): a listening handler passes ...
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_url = format!(
        "http://127.0.0.1:{}/apply?sig=hidden",
        listener.local_addr().unwrap().port()
    );
    let out = s.run(
        &["doctor", "--json"],
        &[
            ("TEST_WRITE_URL", &s.db.write_url),
            ("HANDLER_URL", &up_url),
            ("HANDLER_SECRET", "0123456789abcdef0123456789abcdef"),
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v.to_string().contains("handler reachable at http://127.0.0.1:"), "{v}");
    assert!(!v.to_string().contains("0123456789abcdef"), "{v}");
    assert!(!v.to_string().contains("sig=hidden"), "{v}");
    // ... and a closed port fails the check.
    let closed = format!("http://127.0.0.1:{}/apply", listener.local_addr().unwrap().port());
    drop(listener);
    let out = s.run(
        &["doctor", "--json"],
        &[
            ("TEST_WRITE_URL", &s.db.write_url),
            ("HANDLER_URL", &closed),
            ("HANDLER_SECRET", "0123456789abcdef0123456789abcdef"),
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v.to_string().contains("handler not reachable"), "{v}");
}

#[tokio::test]
async fn doctor_redacts_urls_and_warns_on_a_shared_user() {
    // Nothing listens on port 1: every connection fails, and no password is ever printed.
    let db = RUNNER.fake(
        synapsor_core::config::Engine::Postgres,
        "public",
        "postgres://app:read-s3cret@127.0.0.1:1/app",
        "postgres://app:write-s3cret@127.0.0.1:1/app",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let doc = config_doc(&db, &dir.path().join("ledger.db"), json!({}));
    std::fs::write(&config, doc.to_string()).unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .env_clear()
            .current_dir(dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let env = [
        ("TEST_READ_URL", db.read_url.as_str()),
        ("TEST_WRITE_URL", db.write_url.as_str()),
    ];
    let out = run(&["doctor"], &env);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(!t.contains("s3cret"), "{t}");
    assert!(t.contains("postgres://***@127.0.0.1:1/app"), "{t}");
    assert!(t.contains("same user \"app\""), "{t}");
    assert!(t.contains("not reachable"), "{t}");
    assert!(t.contains("does not exist yet; it will be created"), "{t}");

    let out = run(&["doctor", "--json"], &env[..1]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v.to_string().contains("TEST_WRITE_URL is not set"), "{v}");

    // init-receipts --print: DDL and least-privilege grants for the writer of TEST_WRITE_URL.
    let out = run(&["db", "init-receipts", "--print"], &env);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("CREATE TABLE IF NOT EXISTS \"public\".synapsor_writeback_receipts"),
        "{t}"
    );
    assert!(
        t.contains("GRANT SELECT, INSERT, UPDATE ON \"public\".synapsor_writeback_receipts TO \"app\";"),
        "{t}"
    );
    assert!(
        t.contains("GRANT SELECT, UPDATE ON \"public\".\"invoices\" TO \"app\";"),
        "{t}"
    );
    assert!(!t.contains("DELETE") && !t.contains("s3cret"), "{t}");
    // Without the URL: a placeholder role and a note.
    let out = run(&["db", "init-receipts", "--print"], &[]);
    assert!(text(&out).contains("TO \"synapsor_writer\""), "{}", text(&out));
    // Without --print and without the URL: a clear error.
    let out = run(&["db", "init-receipts", "--source", "main"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("TEST_WRITE_URL is not set"), "{}", text(&out));
    let out = run(&["db", "init-receipts", "--source", "nope"], &env);
    assert!(text(&out).contains("SOURCE_NOT_FOUND"), "{}", text(&out));

    // MySQL accounts are user@host.
    let my = RUNNER.fake(synapsor_core::config::Engine::Mysql, "shop", "", "");
    std::fs::write(
        &config,
        config_doc(&my, &dir.path().join("ledger.db"), json!({})).to_string(),
    )
    .unwrap();
    let out = run(
        &["db", "init-receipts", "--print"],
        &[("TEST_WRITE_URL", "mysql://shop_writer:pw@db:3306/shop")],
    );
    let t = text(&out);
    assert!(
        t.contains("CREATE TABLE IF NOT EXISTS `shop`.synapsor_writeback_receipts"),
        "{t}"
    );
    assert!(
        t.contains("GRANT SELECT, INSERT, UPDATE ON `shop`.synapsor_writeback_receipts TO 'shop_writer'@'%';"),
        "{t}"
    );
}

#[tokio::test]
async fn unknown_and_unapplied_proposals() {
    let s = Setup::new(RUNNER.sqlite(true), json!({}));
    let (rc, v) = s.apply("wrp_nope", &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("PROPOSAL_NOT_FOUND")),
        "{v}"
    );
    let p = s
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1}),
        )
        .await;
    let now = "2030-01-01T00:00:00.000Z";
    s.store().reject(&p, "bob", "no", now).unwrap();
    let (rc, v) = s.apply("latest", &[], true);
    assert_eq!(
        (rc, v["error"]["code"].as_str()),
        (1, Some("PROPOSAL_NOT_APPROVED")),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("rejected"), "{v}");
}
