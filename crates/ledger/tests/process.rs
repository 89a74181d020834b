//! Tests that need a second process: a writer killed mid-transaction, and lease holders.
//!
//! The child is this test binary itself, re-executed with `--exact child_process_entry` and an
//! environment variable naming its role; it prints `READY` once it is in the state the parent
//! wants to interrupt, so the parent never sleeps to wait for it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use rusqlite::Connection;
use synapsor_ledger::{LeaseInfo, LedgerStore, ProposalInsert, StoreLease, lease_path, reset};

const ROLE_ENV: &str = "SYNAPSOR_LEDGER_TEST_CHILD";
const DB_ENV: &str = "SYNAPSOR_LEDGER_TEST_DB";
const COMMITTED: i64 = 12;

/// The child side. Without the environment variable (a normal test run) it does nothing.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else { return };
    let db = PathBuf::from(std::env::var(DB_ENV).unwrap());
    match role.as_str() {
        "writer_killed" | "writer_aborts" => {
            let mut store = LedgerStore::open(&db).unwrap();
            for i in 0..COMMITTED {
                let cs = change_set(&format!("prop_{i}"), i);
                store
                    .record_proposal(&evidence(&format!("ev_{i}"), &ts(i)), &audit(&ts(i)), &cs)
                    .unwrap();
            }
            // Now hold an open write transaction, large enough that SQLite spills uncommitted
            // pages into the WAL, and die inside it.
            let raw = Connection::open(&db).unwrap();
            raw.pragma_update(None, "cache_size", 5).unwrap();
            raw.execute_batch("BEGIN IMMEDIATE").unwrap();
            raw.execute(
                "INSERT INTO proposals VALUES ('uncommitted', 'sha256:x', 'pending_review', 'c', 't', 'p',
                 'o', 'b', 'review_required', '{}', ?1, ?1, NULL)",
                [ts(99)],
            )
            .unwrap();
            for i in 0..2000 {
                raw.execute(
                    "INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at)
                     VALUES ('uncommitted', 'padding', 'child', ?1, ?2)",
                    [format!("{{\"pad\":\"{}\"}}", "x".repeat(200 + i % 7)), ts(99)],
                )
                .unwrap();
            }
            if role == "writer_aborts" {
                std::process::abort();
            }
            ready_and_wait();
        }
        "lease_holder" => {
            let info = LeaseInfo::for_current_process("local", "stdio", ts(0));
            let _lease = StoreLease::acquire(&db, &info).unwrap();
            ready_and_wait();
        }
        other => panic!("unknown child role {other}"),
    }
}

fn ready_and_wait() -> ! {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    drop(out);
    // Wait to be killed. Reading stdin blocks without a timer; the parent keeps it open.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    std::process::abort();
}

fn spawn_child(role: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(DB_ENV, db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Blocks until the child prints READY.
fn wait_ready(child: &mut Child) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            // libtest writes "test child_process_entry ... " without a newline first.
            Some(Ok(l)) if l.trim_end().ends_with("READY") => return,
            Some(Ok(_)) => continue,
            other => panic!("child exited before READY: {other:?}, status {:?}", child.try_wait()),
        }
    }
}

fn assert_recovered(db: &Path) {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    assert!(
        std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false),
        "committed rows should still be in the WAL (not checkpointed) when the writer dies"
    );
    let mut store = LedgerStore::open_existing(db).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.proposals, COMMITTED,
        "every committed proposal survives, the open one does not"
    );
    assert_eq!(stats.proposal_events, COMMITTED * 2);
    for i in 0..COMMITTED {
        store.get_proposal(&format!("prop_{i}")).unwrap();
    }
    assert_eq!(code(store.get_proposal("uncommitted")), "PROPOSAL_NOT_FOUND");
    let raw = Connection::open(db).unwrap();
    let check: String = raw.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let fk: i64 = raw
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 0);
    // The dead writer's lock is gone: new writes go through at once.
    let cs = change_set("prop_after", 1000);
    let r = store
        .record_proposal(&evidence("ev_after", &ts(500)), &audit(&ts(500)), &cs)
        .unwrap();
    assert!(matches!(r, ProposalInsert::Created(_)));
    // And an identical change to a committed one still dedupes.
    let r = store
        .record_proposal(
            &evidence("ev_dup", &ts(501)),
            &audit(&ts(501)),
            &change_set("prop_3", 3),
        )
        .unwrap();
    assert!(matches!(r, ProposalInsert::Existing(_)));
}

#[test]
fn committed_rows_survive_a_writer_killed_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let mut child = spawn_child("writer_killed", &db);
    wait_ready(&mut child);
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_recovered(&db);
}

#[test]
fn committed_rows_survive_a_writer_that_aborts_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let mut child = spawn_child("writer_aborts", &db);
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_recovered(&db);
}

// ------------------------------------------------------------------ lease

#[test]
fn a_second_acquire_fails_and_check_free_follows_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store").join("local.db");
    StoreLease::check_free(&db).unwrap(); // no lease file yet
    let info = LeaseInfo::for_current_process("local", "http", ts(0));
    let lease = StoreLease::acquire(&db, &info).unwrap();
    assert_eq!(lease.info(), &info);
    assert_eq!(lease.path(), lease_path(&db));

    let err = StoreLease::acquire(&db, &LeaseInfo::for_current_process("local", "stdio", ts(1))).unwrap_err();
    assert_eq!(err.code(), "STORE_LEASED");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())) && msg.contains("http") && msg.contains(&ts(0)),
        "{msg}"
    );
    assert!(err.retryable());
    assert_eq!(code(StoreLease::check_free(&db)), "STORE_LEASED");
    assert_eq!(code(reset(&db)), "STORE_LEASED");

    drop(lease);
    StoreLease::check_free(&db).unwrap();
    assert!(
        lease_path(&db).exists(),
        "the lease file stays (only emptied) after release"
    );
    let again = StoreLease::acquire(&db, &info).unwrap();
    again.release();
    StoreLease::check_free(&db).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(lease_path(&db)).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn reset_removes_the_store_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let mut store = LedgerStore::open(&db).unwrap();
    store.record_read(&evidence("ev_1", &ts(0)), &audit(&ts(0))).unwrap();
    drop(StoreLease::acquire(&db, &LeaseInfo::for_current_process("local", "stdio", ts(0))).unwrap());
    drop(store);
    reset(&db).unwrap();
    for suffix in ["", "-wal", "-shm", ".lease"] {
        assert!(!PathBuf::from(format!("{}{suffix}", db.display())).exists(), "{suffix}");
    }
    reset(&db).unwrap(); // nothing left: still fine
    assert_eq!(code(LedgerStore::open_existing(&db)), "STORE_NOT_FOUND");
}

#[test]
fn the_lease_is_free_after_its_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let mut child = spawn_child("lease_holder", &db);
    wait_ready(&mut child);

    let err = StoreLease::check_free(&db).unwrap_err();
    assert_eq!(err.code(), "STORE_LEASED");
    assert!(err.to_string().contains(&format!("pid {}", child.id())), "{err}");
    match StoreLease::acquire(&db, &LeaseInfo::for_current_process("local", "stdio", ts(1))) {
        Err(synapsor_ledger::LedgerError::StoreLeased { holder: Some(h) }) => {
            assert_eq!(
                (h.pid, h.mode.as_str(), h.transport.as_str()),
                (child.id(), "local", "stdio")
            );
        }
        other => panic!("expected STORE_LEASED with holder, got {other:?}"),
    }

    child.kill().unwrap();
    child.wait().unwrap();
    // No stale lease: the OS released the lock with the process.
    StoreLease::check_free(&db).unwrap();
    let lease = StoreLease::acquire(&db, &LeaseInfo::for_current_process("local", "stdio", ts(2))).unwrap();
    assert_eq!(lease.info().pid, std::process::id());
}
