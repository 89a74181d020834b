//! The async [`Ledger`] handle and its thread: group commit, replies after commit, panics and
//! shutdown, against real SQLite files in temp folders.
//!
//! Some tests need jobs to be queued together. They hold the ledger thread in a `with_store`
//! closure that waits for a signal, poll each record future once (a record job is queued on the
//! first poll), then release the thread: it finds all of them queued, deterministically.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::{Future, poll_fn};
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use serde_json::json;
use synapsor_ledger::{Ledger, LedgerStore, MAX_BATCH, ProposalInsert, RecordStats};

/// Polls `f` once, which queues its job, and checks that it is waiting for the ledger thread.
async fn queue<F: Future>(f: Pin<&mut F>) {
    let mut f = f;
    poll_fn(|cx| {
        assert!(
            f.as_mut().poll(cx).is_pending(),
            "the job should wait for the held thread"
        );
        Poll::Ready(())
    })
    .await;
}

/// Holds the ledger thread in a closure until the returned sender sends (or is dropped).
async fn hold(ledger: &Ledger) -> (mpsc::Sender<()>, impl Future<Output = ()> + use<>) {
    let (release, held) = mpsc::channel::<()>();
    let ledger = ledger.clone();
    let mut gate = Box::pin(async move {
        ledger
            .with_store(move |_| {
                let _ = held.recv();
                Ok(())
            })
            .await
            .unwrap();
    });
    queue(gate.as_mut()).await;
    (release, gate)
}

/// Fails the test instead of hanging it.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("a ledger call hung")
}

fn reader(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn count(conn: &Connection, sql: &str, param: &str) -> i64 {
    conn.query_row(sql, [param], |r| r.get(0)).unwrap()
}

fn delta(before: RecordStats, after: RecordStats) -> (u64, u64) {
    (after.transactions - before.transactions, after.records - before.records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_and_proposals_are_each_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    const TASKS: i64 = 16;
    const READS: i64 = 25;
    const CHANGES: i64 = 4;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for r in 0..READS {
                    ledger
                        .record_read(evidence(&format!("ev_{t}_{r}"), &ts(r)), audit(&ts(r)))
                        .await
                        .unwrap();
                }
                // Four tasks per change: one of them creates it, three find it open.
                let c = t % CHANGES;
                let insert = ledger
                    .record_proposal(
                        evidence(&format!("ev_p_{t}"), &ts(100)),
                        audit(&ts(100)),
                        change_set(&format!("prop_{c}"), c),
                    )
                    .await
                    .unwrap();
                (c, insert)
            })
        })
        .collect();
    let mut created = vec![0; CHANGES as usize];
    for task in tasks {
        let (c, insert) = within(task).await.unwrap();
        let record = match insert {
            ProposalInsert::Created(p) => {
                created[c as usize] += 1;
                p
            }
            ProposalInsert::Existing(p) => p,
        };
        assert_eq!(record.change_set.proposal_id, format!("prop_{c}"));
    }
    assert_eq!(created, [1; CHANGES as usize], "each change was created exactly once");

    let db = reader(&path);
    let rows = |table: &str| -> i64 {
        db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows("evidence_bundles"), TASKS * READS + TASKS);
    assert_eq!(rows("query_audit"), TASKS * READS + TASKS);
    assert_eq!(rows("proposals"), CHANGES);
    let duplicated: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT evidence_bundle_id FROM query_audit GROUP BY 1 HAVING COUNT(*) <> 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duplicated, 0, "one audit row per bundle");
    for c in 0..CHANGES {
        let replay = ledger.replay(format!("prop_{c}")).await.unwrap();
        assert_eq!(replay.evidence.len(), (TASKS / CHANGES) as usize);
    }
    let stats = ledger.record_stats();
    assert_eq!(stats.records, (TASKS * READS + TASKS) as u64);
    assert!(
        stats.transactions < stats.records,
        "concurrent records shared transactions: {stats:?}"
    );
}

#[tokio::test]
async fn one_failing_job_in_a_batch_gets_its_error_and_the_others_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    let before = ledger.record_stats();

    let (release, gate) = hold(&ledger).await;
    let mut orphan = evidence("ev_orphan", &ts(1));
    orphan.proposal_id = Some("prop_missing".into());
    let mut unknown_bundle = audit(&ts(1));
    unknown_bundle.evidence_bundle_id = Some("ev_missing".into());
    let mut ok_read = pin!(ledger.record_read(evidence("ev_ok", &ts(1)), audit(&ts(1))));
    let mut bad_read = pin!(ledger.record_read(orphan, audit(&ts(1))));
    let mut proposal = pin!(ledger.record_proposal(evidence("ev_p", &ts(1)), audit(&ts(1)), change_set("prop_a", 0)));
    let mut bad_audit = pin!(ledger.record_query_audit(unknown_bundle));
    let mut ok_audit = pin!(ledger.record_query_audit(audit(&ts(2))));
    queue(ok_read.as_mut()).await;
    queue(bad_read.as_mut()).await;
    queue(proposal.as_mut()).await;
    queue(bad_audit.as_mut()).await;
    queue(ok_audit.as_mut()).await;

    // Secret material is refused on the caller's task: no wait for the held thread.
    let mut secret = evidence("ev_secret", &ts(1));
    secret.items = vec![json!({"kind": "external_row", "row": {"password": "hunter2"}})];
    let err = within(ledger.record_read(secret, audit(&ts(1)))).await.unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");

    release.send(()).unwrap();
    within(gate).await;
    within(ok_read).await.unwrap();
    assert_eq!(within(bad_read).await.unwrap_err().code(), "PROPOSAL_NOT_FOUND");
    assert!(matches!(within(proposal).await.unwrap(), ProposalInsert::Created(_)));
    assert_eq!(within(bad_audit).await.unwrap_err().code(), "EVIDENCE_NOT_FOUND");
    within(ok_audit).await.unwrap();
    assert_eq!(
        delta(before, ledger.record_stats()),
        (1, 5),
        "the five queued records shared one transaction"
    );

    let db = reader(&path);
    let bundle = "SELECT COUNT(*) FROM evidence_bundles WHERE evidence_bundle_id = ?1";
    assert_eq!(count(&db, bundle, "ev_ok"), 1);
    assert_eq!(count(&db, bundle, "ev_p"), 1);
    assert_eq!(count(&db, bundle, "ev_orphan"), 0);
    assert_eq!(count(&db, bundle, "ev_secret"), 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM proposals WHERE proposal_id = ?1", "prop_a"),
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM query_audit WHERE outcome = ?1", "ok"),
        3,
        "ev_ok's, ev_p's and the lone one"
    );
}

#[tokio::test]
async fn a_batch_holds_at_most_max_batch_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("local.db")).unwrap();
    let before = ledger.record_stats();
    let (release, gate) = hold(&ledger).await;
    let n = MAX_BATCH + 6;
    let mut reads: Vec<_> = (0..n)
        .map(|i| Box::pin(ledger.record_read(evidence(&format!("ev_{i}"), &ts(0)), audit(&ts(0)))))
        .collect();
    for read in &mut reads {
        queue(read.as_mut()).await;
    }
    release.send(()).unwrap();
    within(gate).await;
    for read in reads {
        within(read).await.unwrap();
    }
    assert_eq!(delta(before, ledger.record_stats()), (2, n as u64));
}

#[tokio::test]
async fn a_closure_between_records_runs_alone_and_in_queue_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("local.db")).unwrap();
    let before = ledger.record_stats();
    let (release, gate) = hold(&ledger).await;
    let mut first = pin!(ledger.record_read(evidence("ev_1", &ts(0)), audit(&ts(0))));
    // Sees ev_1 committed and ev_2 not yet written.
    let mut between = pin!(ledger.with_store(|s| Ok((s.evidence("ev_1").is_ok(), s.evidence("ev_2").is_ok()))));
    let mut second = pin!(ledger.record_read(evidence("ev_2", &ts(0)), audit(&ts(0))));
    queue(first.as_mut()).await;
    queue(between.as_mut()).await;
    queue(second.as_mut()).await;
    release.send(()).unwrap();
    within(gate).await;
    within(first).await.unwrap();
    assert_eq!(within(between).await.unwrap(), (true, false));
    within(second).await.unwrap();
    assert_eq!(delta(before, ledger.record_stats()), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_comes_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (ledger, path) = (ledger.clone(), path.clone());
            tokio::spawn(async move {
                // A connection of its own, as a CLI process beside the server would have.
                let db = reader(&path);
                for r in 0..20 {
                    let id = format!("ev_{t}_{r}");
                    ledger.record_read(evidence(&id, &ts(r)), audit(&ts(r))).await.unwrap();
                    assert_eq!(
                        count(
                            &db,
                            "SELECT COUNT(*) FROM evidence_bundles WHERE evidence_bundle_id = ?1",
                            &id
                        ),
                        1,
                        "{id} is visible to another connection as soon as its call returned"
                    );
                    assert_eq!(
                        count(
                            &db,
                            "SELECT COUNT(*) FROM query_audit WHERE evidence_bundle_id = ?1",
                            &id
                        ),
                        1
                    );
                }
                let cs = change_set(&format!("prop_{t}"), t);
                ledger
                    .record_proposal(evidence(&format!("ev_p_{t}"), &ts(0)), audit(&ts(0)), cs)
                    .await
                    .unwrap();
                assert_eq!(
                    count(
                        &db,
                        "SELECT COUNT(*) FROM proposals WHERE proposal_id = ?1",
                        &format!("prop_{t}")
                    ),
                    1
                );
            })
        })
        .collect();
    for task in tasks {
        within(task).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_closure_answers_unavailable_and_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    ledger
        .record_read(evidence("ev_before", &ts(0)), audit(&ts(0)))
        .await
        .unwrap();

    let err = within(ledger.with_store(|_| -> synapsor_ledger::Result<()> { panic!("a bug in a ledger job") }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE");
    assert!(err.to_string().contains("a ledger operation panicked"), "{err}");

    // Later calls are refused, clearly and at once, rather than run on a connection in an
    // unknown state.
    let later = within(ledger.record_read(evidence("ev_after", &ts(1)), audit(&ts(1))))
        .await
        .unwrap_err();
    assert_eq!(later.code(), "STORE_UNAVAILABLE");
    assert!(later.to_string().contains("restart the runner"), "{later}");
    let read = within(ledger.get_proposal("latest")).await.unwrap_err();
    assert!(
        read.to_string().contains("an earlier ledger operation panicked"),
        "{read}"
    );

    // The poisoned thread closed its connection: another one writes without waiting on it.
    let mut other = LedgerStore::open(&path).unwrap();
    other
        .record_read(&evidence("ev_other", &ts(2)), &audit(&ts(2)))
        .unwrap();
    drop(ledger);
    assert_eq!(other.stats().unwrap().evidence_bundles, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_finishes_queued_jobs_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let wal = dir.path().join("local.db-wal");
    let ledger = Ledger::open(&path).unwrap();
    let clone = ledger.clone();
    clone
        .record_read(evidence("ev_clone", &ts(0)), audit(&ts(0)))
        .await
        .unwrap();
    drop(clone);
    // Not the last handle: the thread still serves.
    ledger
        .record_read(evidence("ev_1", &ts(0)), audit(&ts(0)))
        .await
        .unwrap();

    let (release, gate) = hold(&ledger).await;
    {
        // A caller that stops waiting: its job stays queued and is still committed.
        let mut gone = pin!(ledger.record_read(evidence("ev_queued", &ts(1)), audit(&ts(1))));
        queue(gone.as_mut()).await;
    }
    drop(gate);
    assert!(wal.exists());
    // The drop waits for the held closure, the queued job and the connection's close.
    let dropper = std::thread::spawn(move || drop(ledger));
    release.send(()).unwrap();
    dropper.join().unwrap();
    assert!(
        !wal.exists(),
        "the last connection to the store was closed (SQLite removes the WAL then)"
    );

    let mut store = LedgerStore::open(&path).unwrap();
    assert_eq!(store.evidence("ev_queued").unwrap().query_audit.len(), 1);
    store.record_read(&evidence("ev_2", &ts(2)), &audit(&ts(2))).unwrap();
    assert_eq!(store.stats().unwrap().evidence_bundles, 4);
}

#[tokio::test]
async fn the_last_handle_dropped_by_a_job_on_the_ledger_thread_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    let (release, gate) = hold(&ledger).await;
    let (done, finished) = mpsc::channel();
    {
        let keep = ledger.clone();
        let mut last = pin!(ledger.with_store(move |_| {
            // The last handle goes here, on the ledger thread, which cannot join itself.
            drop(keep);
            done.send(()).unwrap();
            Ok(())
        }));
        queue(last.as_mut()).await;
    }
    drop(gate);
    // Not the last handle (the queued closure owns one), so this returns while the thread is
    // still held.
    drop(ledger);
    release.send(()).unwrap();
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the closure dropped the last handle and returned");
    let mut store = LedgerStore::open(&path).unwrap();
    store
        .record_read(&evidence("ev_after", &ts(0)), &audit(&ts(0)))
        .unwrap();
}

#[test]
fn the_handle_is_clone_send_and_sync() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Ledger>();
}

#[tokio::test]
async fn records_are_stored_byte_for_byte_as_encoded_directly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let ledger = Ledger::open(&path).unwrap();
    // Keys out of alphabetical order, floats, big integers, escapes and non-ASCII text: what
    // the encoding could change if it went through a sorted or lossy form.
    let items = vec![
        json!({"kind": "external_row", "row": {"zeta": 1, "alpha": 0.1, "mid": 1e-7, "big": 9007199254740993_u64,
               "neg": -0.0, "text": "line\nbreak \"quoted\" é 漢字 \u{1F600}", "nested": {"b": [3, 2, 1], "a": null}}}),
        json!({"kind": "proposal_diff", "z": true, "a": 12345.678}),
    ];
    let mut read = evidence("ev_read", &ts(0));
    read.items = items.clone();
    ledger.record_read(read, audit(&ts(0))).await.unwrap();

    let mut cs = change_set("prop_a", 0);
    cs.before.insert("zz_note".into(), json!("ü ñ 0.30000000000000004"));
    cs.before.insert("aa_ratio".into(), json!(0.30000000000000004));
    let cs = seal(cs);
    let mut ev = evidence("ev_p", &ts(1));
    ev.items = items.clone();
    let created = ledger.record_proposal(ev, audit(&ts(1)), cs.clone()).await.unwrap();
    assert!(matches!(created, ProposalInsert::Created(_)));
    // The id taken by a closed proposal: the change set is stored under prop_a-2.
    ledger
        .with_store(|s| s.reject("prop_a", "alice", "not now", &ts(2)).map(drop))
        .await
        .unwrap();
    let second = match ledger
        .record_proposal(evidence("ev_p2", &ts(3)), audit(&ts(3)), cs.clone())
        .await
        .unwrap()
    {
        ProposalInsert::Created(p) => p,
        ProposalInsert::Existing(p) => panic!("expected a new proposal, got {}", p.change_set.proposal_id),
    };
    assert_eq!(second.change_set.proposal_id, "prop_a-2");
    drop(ledger);

    let db = reader(&path);
    let items_json = |id: &str| -> String {
        db.query_row(
            "SELECT items_json FROM evidence_bundles WHERE evidence_bundle_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    let cs_json = |id: &str| -> String {
        db.query_row(
            "SELECT change_set_json FROM proposals WHERE proposal_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    let expected_items = serde_json::to_string(&items).unwrap();
    assert_eq!(items_json("ev_read"), expected_items);
    assert_eq!(items_json("ev_p"), expected_items);
    assert_eq!(cs_json("prop_a"), serde_json::to_string(&cs).unwrap());
    let mut renamed = cs.clone();
    renamed.proposal_id = "prop_a-2".into();
    assert_eq!(cs_json("prop_a-2"), serde_json::to_string(&renamed).unwrap());
}

/// A timing loop, printed and not asserted: 8 tasks recording 2000 reads in all.
/// `cargo test --release -p synapsor-ledger --test ledger_thread -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing; run by hand in release"]
async fn timing_8_tasks_2000_reads() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join("local.db")).unwrap();
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    for r in 0..250 {
                        ledger
                            .record_read(evidence(&format!("ev_{t}_{r}"), &ts(r)), audit(&ts(r)))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        let stats = ledger.record_stats();
        println!(
            "round {round}: 2000 reads by 8 tasks in {:.1} ms ({:.0} reads/s), {} transactions",
            elapsed.as_secs_f64() * 1000.0,
            2000.0 / elapsed.as_secs_f64(),
            stats.transactions
        );
    }
}

/// Kubernetes mode: a proposal recorded through the thread is then marked as managed by its
/// `Proposal` resource in a closure of its own, which opens a transaction of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_then_a_closure_that_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("local.db")).unwrap();
    let inserted = within(ledger.record_proposal(evidence("ev_m", &ts(1)), audit(&ts(1)), change_set("prop_m", 0)))
        .await
        .unwrap();
    let ProposalInsert::Created(record) = inserted else {
        panic!("not created")
    };
    let id = record.change_set.proposal_id.clone();
    let marked = within(ledger.with_store(move |s| s.set_managed_by(&id, "kubernetes:billing/prop-m", &ts(2))))
        .await
        .unwrap();
    assert!(marked);
    // And a read after it.
    within(ledger.record_read(evidence("ev_n", &ts(3)), audit(&ts(3))))
        .await
        .unwrap();
}
