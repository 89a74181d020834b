//! The ledger's disk full under a running MCP server: the real binary over stdio with a real
//! PostgreSQL source and its ledger on a small tmpfs, which the test fills to the last byte.
//!
//! Checks: while the disk is full, a call whose evidence cannot be committed is refused as
//! `TEMPORARILY_UNAVAILABLE`, retryable (never data without its evidence, never a crash or a hang); every
//! call that did return data has its evidence bundle in the ledger; once space is freed the same
//! server answers again with no restart; and the ledger passes SQLite's `integrity_check`
//! afterwards.
//!
//! And `apply` with the ledger's disk full: every attempt either applies or fails with a clear
//! store error (never a panic, never an unparseable answer); once space is freed, plain `apply`
//! brings every proposal to `applied` with one `applied` receipt, each row written once.
//!
//! Mounting a tmpfs needs root: as another user the test is skipped with a message. As root a
//! failed mount fails the test.
#![allow(clippy::unwrap_used)]

mod mcp_common;
mod writeback_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mcp_common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use writeback_support::{RUNNER, Setup, status};

/// A tmpfs of `size` mounted on a fresh folder; unmounted (lazily, so an open file cannot keep
/// it) when dropped.
struct SmallDisk {
    mountpoint: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        // Only root can mount; `id -u` tells without unsafe code.
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount a tmpfs as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(SmallDisk {
            mountpoint: at.to_owned(),
        })
    }

    /// Writes a file until the disk refuses the next byte (ENOSPC); returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.mountpoint.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0xA5u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Whatever a smaller write can still take, too.
        while f.write(&[0xA5]).is_ok_and(|n| n == 1) {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}

fn bundle_id(result: &Value) -> Option<String> {
    result["structuredContent"]["evidence"]["bundle_id"]
        .as_str()
        .map(str::to_owned)
}

fn call(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ledger_disk_refuses_calls_clearly_and_loses_nothing() {
    let Some(fx) = fixture().await else { return };
    let Some(disk) = SmallDisk::mount(&fx.dir.path().join("ledger-disk"), "768k") else {
        return;
    };
    let ledger = disk.mountpoint.join("ledger.db");
    let mut cmd = tokio::process::Command::new(bin_path());
    cmd.arg("--config")
        .arg(&fx.config)
        .arg("--store")
        .arg(&ledger)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(fx.env("acme"))
        .args(["mcp", "serve"])
        .current_dir(fx.dir.path())
        .kill_on_drop(true);
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let read = || call("billing.inspect_invoice", json!({"invoice_id": "INV-1"}));
    let answer = |r: rmcp::model::CallToolResult| serde_json::to_value(r).unwrap();

    // Room on the disk: reads and a proposal answer with their evidence.
    let mut answered: Vec<String> = Vec::new();
    for _ in 0..5 {
        let r = answer(client.call_tool(read()).await.unwrap());
        assert_read(&fx.db, &r, "before the disk filled").await;
        answered.push(bundle_id(&r).unwrap());
    }
    let r = answer(
        client
            .call_tool(call("billing.propose_late_fee_waiver", json!({"invoice_id": "INV-1"})))
            .await
            .unwrap(),
    );
    let proposal = assert_proposal(&fx.db, &r, "before the disk filled").await;
    answered.push(bundle_id(&r).unwrap());

    // The disk full: keep calling until the ledger cannot take the evidence any more (the WAL
    // can reuse its own pages for a while), then a while longer. Every answer is either data
    // with its evidence or the store's refusal; nothing else.
    let filler = disk.fill();
    let (mut served_full, mut refused) = (0usize, 0usize);
    for i in 0..400 {
        let r = tokio::time::timeout(Duration::from_secs(20), client.call_tool(read()))
            .await
            .unwrap_or_else(|_| panic!("call {i} on a full disk was never answered"))
            .unwrap();
        let r = answer(r);
        if is_error(&r) {
            // The model sees the safe code; the operator's log says which store and why.
            assert_eq!(err_code(&r), "TEMPORARILY_UNAVAILABLE", "call {i}: {r}");
            assert_eq!(r["structuredContent"]["error"]["retryable"], true, "call {i}: {r}");
            assert!(r["structuredContent"]["data"].is_null(), "data without evidence: {r}");
            let text = r.to_string();
            for leak in ["disk", "SQLITE", "ledger-disk", "full"] {
                assert!(
                    !text.contains(leak),
                    "call {i}: the store's own words reached the model: {r}"
                );
            }
            refused += 1;
        } else {
            assert_read(&fx.db, &r, "on a full disk").await;
            answered.push(bundle_id(&r).unwrap());
            served_full += 1;
        }
        if refused >= 50 {
            break;
        }
    }
    assert!(refused >= 50, "a full disk never refused a call ({served_full} served)");

    // Space again: the same server answers, no restart.
    std::fs::remove_file(&filler).unwrap();
    let r = answer(client.call_tool(read()).await.unwrap());
    assert_read(&fx.db, &r, "after space was freed").await;
    answered.push(bundle_id(&r).unwrap());
    let r = answer(
        client
            .call_tool(call("billing.propose_late_fee_waiver", json!({"invoice_id": "INV-2"})))
            .await
            .unwrap(),
    );
    assert!(!is_error(&r), "a proposal after space was freed: {r}");
    answered.push(bundle_id(&r).unwrap());
    client.cancel().await.unwrap();

    // The ledger is whole and holds every answered call's evidence, and the proposals.
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let mut missing = Vec::new();
    for id in &answered {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM evidence_bundles WHERE evidence_bundle_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        if n != 1 {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "answered without evidence in the ledger: {missing:?}"
    );
    let proposals: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM proposals WHERE proposal_id = ?1",
            [&proposal],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(proposals, 1);
    assert_eq!(
        db_late_fee(&fx.db, "INV-1").await,
        5500,
        "nothing written to the source"
    );
    println!(
        "ledger disk full: {} calls answered with their evidence ({served_full} while full), {refused} refused as TEMPORARILY_UNAVAILABLE (retryable), served again after space was freed with no restart, integrity_check ok",
        answered.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_a_full_ledger_disk_fails_clearly_and_is_recovered_by_the_next_apply() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&scratch.path().join("ledger-disk"), "8m") else {
        return;
    };
    let s = Setup::with_store_in(RUNNER.sqlite(true), json!({}), Some(&disk.mountpoint));
    let n = 12;
    let rows: Vec<String> = (0..n)
        .map(|i| format!("('D-{i}', 'acme', 100, 'open', NULL, '2026-06-23T09:00:00Z')"))
        .collect();
    s.db.exec(&format!(
        "INSERT INTO invoices (id, tenant_id, late_fee_cents, status, note, updated_at) VALUES {}",
        rows.join(", ")
    ))
    .await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = s
            .propose(
                "billing.propose_late_fee",
                json!({"invoice_id": format!("D-{i}"), "late_fee_cents": 300 + i}),
            )
            .await;
        s.approve(&id);
        ids.push(id);
    }

    let filler = disk.fill();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for id in &ids {
        let out = s
            .apply_command(id, &[], &[("TEST_WRITE_URL", &s.db.write_url)])
            .output()
            .unwrap();
        let rc = out.status.code().unwrap_or(-1);
        assert!(rc == 0 || rc == 1, "{id}: exit {rc}: {}", writeback_support::text(&out));
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{id}: no JSON: {}", writeback_support::text(&out)));
        let outcome = if rc == 0 {
            status(&v).to_owned()
        } else {
            let code = v["error"]["code"].as_str().or(v["receipt"]["safe_error_code"].as_str());
            let code = code.unwrap_or_else(|| panic!("{id}: a failure without a code: {v}"));
            code.to_owned()
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let refused: usize = outcomes
        .iter()
        .filter(|(k, _)| k.as_str() != "applied")
        .map(|(_, n)| n)
        .sum();
    assert!(refused > 0, "the full disk never refused an apply: {outcomes:?}");
    for code in outcomes.keys() {
        assert!(
            ["applied", "STORE_UNAVAILABLE"].contains(&code.as_str()),
            "unexpected outcome on a full disk: {outcomes:?}"
        );
    }

    std::fs::remove_file(&filler).unwrap();
    for id in &ids {
        if s.state(id) != "applied" {
            let (rc, v) = s.apply(id, &[], true);
            assert_eq!(rc, 0, "{id} after space was freed: {v}");
        }
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.state(id), "applied", "{id}");
        let receipts = s.store().receipts_for(id).unwrap();
        let applied = receipts.iter().filter(|r| r.status == "applied").count();
        assert_eq!(applied, 1, "{id}: {receipts:?}");
        let row = format!("D-{i}");
        assert_eq!(s.db.writes(&row).await, 1, "{row} written once");
        assert_eq!(s.db.fee(&row).await, 300 + i64::try_from(i).unwrap());
    }
    let conn = rusqlite::Connection::open(&s.store_path).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    println!(
        "ledger disk full under apply: {n} proposals, outcomes while full {outcomes:?}; after space was freed all {n} applied once, one applied receipt each, integrity_check ok"
    );
}

/// The worst instant: the disk fills while an apply is inside the source's transaction, so the
/// write commits and its receipt cannot be recorded. The apply says so and exits 1; the proposal
/// stays `applying`; once there is space, the next `apply` records the committed write as this
/// proposal's (a `recovered` check) without writing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_during_the_source_write_loses_no_authorship() {
    use sqlx::{AssertSqlSafe, Connection};
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&scratch.path().join("ledger-disk"), "8m") else {
        return;
    };
    let Some(db) = RUNNER.postgres(true).await else { return };
    let s = Setup::with_store_in(db, json!({}), Some(&disk.mountpoint));
    let p = s
        .propose(
            "billing.propose_late_fee",
            json!({"invoice_id": "INV-1", "late_fee_cents": 1234}),
        )
        .await;
    s.approve(&p);

    // An empty WAL, so that every later ledger write needs new blocks (SQLite otherwise
    // overwrites a WAL it has checkpointed, which a full disk does not stop).
    let conn = rusqlite::Connection::open(&s.store_path).unwrap();
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "the WAL could not be truncated");
    drop(conn);

    // Hold the row so the apply waits inside its transaction, after its claim in the ledger.
    let mut holder = sqlx::PgConnection::connect(&s.db.admin_url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT id FROM invoices WHERE id = 'INV-1' FOR UPDATE;")
        .execute(&mut holder)
        .await
        .unwrap();
    let apply = s
        .apply_command(&p, &[], &[("TEST_WRITE_URL", &s.db.write_url)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&s.db.admin_url).await.unwrap();
    let waiting = format!(
        "SELECT pid FROM pg_stat_activity WHERE usename = '{}' AND wait_event_type = 'Lock'",
        s.db.writer
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sqlx::query_scalar::<_, i32>(AssertSqlSafe(waiting.clone()))
        .fetch_optional(&mut admin)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never waited on the row lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.state(&p), "applying");
    let filler = disk.fill();
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    let out = apply.wait_with_output().unwrap();
    let text = writeback_support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no JSON: {text}"));
    let failed_with = v["error"]["code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(failed_with, "STORE_UNAVAILABLE", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("IS committed") && message.contains(&format!("apply {p}")),
        "{v}"
    );
    eprintln!("apply on the full disk: {text}");
    assert_eq!((s.db.fee("INV-1").await, s.db.writes("INV-1").await), (1234, 1));

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(s.state(&p), "applying", "nothing could be recorded on the full disk");
    let (rc, v) = s.apply(&p, &[], true);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(s.state(&p), "applied");
    let receipts = s.store().receipts_for(&p).unwrap();
    assert_eq!(
        receipts.iter().filter(|r| r.status == "applied").count(),
        1,
        "the committed write is recorded as this proposal's: {receipts:?}"
    );
    assert_eq!(s.db.writes("INV-1").await, 1, "not written twice");
    println!(
        "ledger disk full mid-apply: the source write committed, the apply exited 1 with {failed_with}, the next apply recorded the write as the proposal's; written once"
    );
}
