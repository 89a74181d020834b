//! A SQLite source whose writer died in the middle of a transaction (killed, crashed) leaves a
//! hot journal that read-only connections cannot roll back. Reads recover it once and go on,
//! with the dead writer's changes undone; they stay on read-only connections.
//!
//! The dying writer is this test binary run again as a child (`hot_journal_writer`), which
//! exits without committing: a real process death, not a simulation of one.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use synapsor_core::capability::ReadSpec;
use synapsor_core::ident::SafeIdent;
use synapsor_source::{LookupValue, PoolSettings, ScopedRead, SourceDb, SqliteSource};

const CHILD: &str = "SYNAPSOR_HOT_JOURNAL_WRITER";

/// Runs only as the child: starts a large write transaction and exits without committing.
#[test]
fn hot_journal_writer() {
    let Ok(path) = std::env::var(CHILD) else { return };
    let c = rusqlite::Connection::open(&path).unwrap();
    // A tiny cache makes SQLite spill changed pages into the file before the commit.
    c.execute_batch("PRAGMA cache_size = 1; BEGIN IMMEDIATE;").unwrap();
    for i in 0..2000 {
        c.execute(
            "INSERT INTO invoices (id, tenant_id, note) VALUES (?1, 'acme', 'uncommitted')",
            [format!("row-{i}")],
        )
        .unwrap();
    }
    c.execute("UPDATE invoices SET note = 'uncommitted'", []).unwrap();
    std::process::exit(0);
}

#[tokio::test]
async fn reads_recover_a_hot_journal_left_by_a_dead_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.db");
    let setup = rusqlite::Connection::open(&path).unwrap();
    setup
        .execute_batch(
            "CREATE TABLE invoices (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, note TEXT);
             INSERT INTO invoices VALUES ('INV-1', 'acme', 'committed');",
        )
        .unwrap();
    drop(setup);

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hot_journal_writer", "--nocapture"])
        .env(CHILD, &path)
        .status()
        .unwrap();
    assert!(status.success());
    let journal = dir.path().join("source.db-journal");
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "the dead writer left no hot journal"
    );

    let settings = PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(2),
        ssl: None,
    };
    let source = SqliteSource::open("main", &format!("sqlite://{}", path.display()), &settings).unwrap();
    let ident = |s: &str| SafeIdent::new(s).unwrap();
    let spec = ReadSpec {
        schema: ident("main"),
        table: ident("invoices"),
        primary_key: ident("id"),
        tenant_key: Some(ident("tenant_id")),
        principal_key: None,
        columns: vec![ident("id"), ident("tenant_id"), ident("note")],
    };
    let read = ScopedRead {
        spec: &spec,
        id: LookupValue::Text("INV-1".into()),
        tenant: Some("acme"),
        principal: None,
    };
    let row = source.read_scoped(&read).await.unwrap().unwrap();
    assert_eq!(row["note"], "committed", "the dead writer's change is undone");
    let again = source.read_scoped(&read).await.unwrap().unwrap();
    assert_eq!(again, row);
    let gone = ScopedRead {
        id: LookupValue::Text("row-1".into()),
        ..read
    };
    assert_eq!(source.read_scoped(&gone).await.unwrap(), None, "its inserts are gone");
}
