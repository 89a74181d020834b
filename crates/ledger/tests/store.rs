//! LedgerStore against real SQLite files in temp folders.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rusqlite::Connection;
use serde_json::json;
use synapsor_core::ProposalState;
use synapsor_ledger::{
    AUTOCHECKPOINT_BACKSTOP, CHECKPOINT_EVERY, Ledger, LedgerStore, ProposalFilter, ProposalInsert, ProposalRecord,
    ReceiptRecord, StoreStats, schema,
};

fn created(r: ProposalInsert) -> ProposalRecord {
    match r {
        ProposalInsert::Created(p) => *p,
        ProposalInsert::Existing(p) => panic!("expected Created, got Existing {}", p.change_set.proposal_id),
    }
}

fn existing(r: ProposalInsert) -> ProposalRecord {
    match r {
        ProposalInsert::Existing(p) => *p,
        ProposalInsert::Created(p) => panic!("expected Existing, got Created {}", p.change_set.proposal_id),
    }
}

/// Records `cs` with fresh evidence `ev_<n>` at `at`.
fn propose(store: &mut LedgerStore, cs: &synapsor_core::ChangeSet, bundle: &str, at: &str) -> ProposalInsert {
    store.record_proposal(&evidence(bundle, at), &audit(at), cs).unwrap()
}

fn counts(s: &StoreStats) -> [i64; 6] {
    [
        s.proposals,
        s.proposal_events,
        s.approvals,
        s.evidence_bundles,
        s.query_audit,
        s.receipts,
    ]
}

// ------------------------------------------------------------------ open, schema, durability

#[test]
fn open_creates_private_files_and_migrations_are_idempotent() {
    let (dir, path, store) = temp_store();
    assert_eq!(store.schema_version().unwrap(), schema::current_version());
    assert_eq!(store.path(), path.as_path());
    let objects = |p: &std::path::Path| -> i64 {
        let c = Connection::open(p).unwrap();
        c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap()
    };
    let before = objects(&path);
    drop(store);
    for _ in 0..3 {
        let s = LedgerStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::current_version());
    }
    assert_eq!(objects(&path), before, "reopening must not re-run migrations");
    let journal: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // SQLite gives the WAL the database file's permissions.
        let mut s = LedgerStore::open(&path).unwrap();
        s.record_read(&evidence("ev_perm", &ts(0)), &audit(&ts(0))).unwrap();
        assert_eq!(
            mode(&std::path::PathBuf::from(format!("{}-wal", path.display()))),
            0o600
        );
        assert_eq!(mode(&dir.path().join("ledger")), 0o700);
    }
}

#[test]
fn open_existing_and_schema_too_new() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("local.db");
    let err = LedgerStore::open_existing(&missing).unwrap_err();
    assert_eq!(err.code(), "STORE_NOT_FOUND");
    assert!(
        !missing.exists() && !missing.parent().unwrap().exists(),
        "open_existing must not create anything"
    );

    let path = dir.path().join("local.db");
    drop(LedgerStore::open(&path).unwrap());
    LedgerStore::open_existing(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = LedgerStore::open(&path).unwrap_err();
    assert_eq!(err.code(), "STORE_SCHEMA_TOO_NEW");
    assert!(err.to_string().contains("99"), "{err}");

    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not an sqlite file, just some text that is long enough").unwrap();
    assert_eq!(code(LedgerStore::open(&junk)), "STORE_UNAVAILABLE");
}

#[test]
fn data_survives_close_and_reopen() {
    let (_dir, path, mut store) = temp_store();
    store.record_read(&evidence("ev_read", &ts(1)), &audit(&ts(1))).unwrap();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_a", &ts(2)));
    drop(store);

    let store = LedgerStore::open_existing(&path).unwrap();
    let again = store.get_proposal("prop_a").unwrap();
    assert_eq!(again, p);
    let read = store.evidence("ev_read").unwrap();
    assert_eq!(read.evidence.proposal_id, None);
    assert_eq!(read.query_audit.len(), 1);
    assert_eq!(read.query_audit[0].evidence_bundle_id.as_deref(), Some("ev_read"));
    let replay = store.replay("latest").unwrap();
    assert_eq!(replay.replay_id, "replay_prop_a");
    assert!(replay.digest_verified);
    let kinds: Vec<_> = replay.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["proposal_created", "evidence_recorded"]);
    assert_eq!(replay.events[0].actor, PRINCIPAL);
    assert_eq!(
        replay.events[0].payload,
        json!({"digest": p.change_set.digest, "mode": "review_required"})
    );
    assert_eq!(replay.events[1].actor, "runner");
    assert_eq!(replay.evidence.len(), 1);
    assert_eq!(replay.evidence[0].evidence.proposal_id.as_deref(), Some("prop_a"));
    assert_eq!(replay.evidence[0].query_audit[0].proposal_id.as_deref(), Some("prop_a"));
    assert_eq!(replay.evidence[0].query_audit[0].row_count, 1);
}

// ------------------------------------------------------------------ proposals

#[test]
fn identical_proposals_dedupe_and_closed_ids_get_a_suffix() {
    let (_dir, _path, mut store) = temp_store();
    let cs = change_set("prop_a", 0);
    let first = created(propose(&mut store, &cs, "ev_1", &ts(1)));
    assert_eq!(first.state, ProposalState::PendingReview);
    assert_eq!(first.change_set.proposal_id, "prop_a");

    // Same digest: the pending proposal comes back; the new evidence is linked to it.
    let mut cs_again = cs.clone();
    cs_again.created_at = ts(5); // not part of the digest
    cs_again.proposal_id = "prop_other".into(); // nor is the id
    let again = existing(propose(&mut store, &seal(cs_again), "ev_2", &ts(5)));
    assert_eq!(again.change_set.proposal_id, "prop_a");
    assert_eq!(again.created_at, ts(0));
    let replay = store.replay("prop_a").unwrap();
    assert_eq!(replay.evidence.len(), 2);
    assert_eq!(replay.events.last().unwrap().kind, "proposal_requested_again");
    assert_eq!(replay.events.last().unwrap().payload["evidence_bundle_id"], "ev_2");
    assert_eq!(store.stats().unwrap().proposals, 1);

    // A different digest is a new proposal.
    let other = created(propose(&mut store, &change_set("prop_b", 100), "ev_3", &ts(6)));
    assert_ne!(other.change_set.digest, first.change_set.digest);

    // Once the first is closed, the same change (same digest, same deterministic id) is new,
    // with a suffixed id written into the stored change set too.
    store.reject("prop_a", "alice", "not now", &ts(7)).unwrap();
    let mut cs3 = cs.clone();
    cs3.created_at = ts(8);
    let third = created(propose(&mut store, &seal(cs3.clone()), "ev_4", &ts(8)));
    assert_eq!(third.change_set.proposal_id, "prop_a-2");
    assert_eq!(third.change_set.digest, first.change_set.digest);
    let stored = store.get_proposal("prop_a-2").unwrap();
    assert_eq!(stored.change_set.proposal_id, "prop_a-2");
    assert_eq!(
        store.evidence("ev_4").unwrap().evidence.proposal_id.as_deref(),
        Some("prop_a-2")
    );
    store.reject("prop_a-2", "alice", "still no", &ts(9)).unwrap();
    cs3.created_at = ts(10);
    let fourth = created(propose(&mut store, &seal(cs3), "ev_5", &ts(10)));
    assert_eq!(fourth.change_set.proposal_id, "prop_a-3");
    assert_eq!(store.get_proposal("latest").unwrap().change_set.proposal_id, "prop_a-3");
}

#[test]
fn shadow_proposals_are_recorded_as_shadow_and_dedupe() {
    let (_dir, _path, mut store) = temp_store();
    let mut cs = change_set("prop_s", 0);
    cs.mode = "shadow".into();
    let cs = seal(cs);
    let p = created(propose(&mut store, &cs, "ev_1", &ts(1)));
    assert_eq!(p.state, ProposalState::Shadow);
    existing(propose(&mut store, &cs, "ev_2", &ts(2)));
    let err = store.approve("prop_s", &cs.digest, "alice", None, &ts(3)).unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert!(err.to_string().contains("shadow"), "{err}");
    assert_eq!(
        store.reject("prop_s", "alice", "noise", &ts(4)).unwrap().state,
        ProposalState::Rejected
    );
}

#[test]
fn concurrent_identical_proposals_create_exactly_one() {
    let (_dir, path, store) = temp_store();
    drop(store);
    let cs = change_set("prop_race", 0);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (path, cs, barrier) = (path.clone(), cs.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = LedgerStore::open(&path).unwrap();
                barrier.wait();
                s.record_proposal(&evidence(&format!("ev_{i}"), &ts(i)), &audit(&ts(i)), &cs)
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let n_created = results
        .iter()
        .filter(|r| matches!(r, ProposalInsert::Created(_)))
        .count();
    assert_eq!(n_created, 1);
    let store = LedgerStore::open(&path).unwrap();
    assert_eq!(store.stats().unwrap().proposals, 1);
    assert_eq!(store.replay("prop_race").unwrap().evidence.len(), 4);
}

#[test]
fn record_proposal_refuses_bad_change_sets() {
    let (_dir, _path, mut store) = temp_store();
    let mut cs = change_set("prop_x", 0);
    cs.patch.insert("late_fee_cents".into(), json!(1)); // digest no longer matches
    assert_eq!(
        code(store.record_proposal(&evidence("e1", &ts(1)), &audit(&ts(1)), &cs)),
        "INVALID_INPUT"
    );

    let mut cs = change_set("prop_x", 0);
    cs.approval.required_approvals = 0;
    let cs = seal(cs);
    assert_eq!(
        code(store.record_proposal(&evidence("e1", &ts(1)), &audit(&ts(1)), &cs)),
        "INVALID_INPUT"
    );

    let mut cs = change_set("prop_x", 0);
    cs.created_at = "2026-06-23T09:00:00Z".into(); // not the fixed-width form
    let cs = seal(cs);
    assert_eq!(
        code(store.record_proposal(&evidence("e1", &ts(1)), &audit(&ts(1)), &cs)),
        "INVALID_INPUT"
    );

    let mut ev = evidence("e1", &ts(1));
    ev.tenant_id = "globex".into();
    assert_eq!(
        code(store.record_proposal(&ev, &audit(&ts(1)), &change_set("prop_x", 0))),
        "INVALID_INPUT"
    );

    assert_eq!(counts(&store.stats().unwrap()), [0; 6]);
}

#[test]
fn list_filters_and_orders_newest_first() {
    let (_dir, _path, mut store) = temp_store();
    for i in 0..60i64 {
        let mut cs = change_set(&format!("prop_{i:02}"), i);
        cs.created_at = ts(i);
        if i % 2 == 1 {
            cs.scope.tenant_id = "globex".into();
        }
        let cs = seal(cs);
        let mut ev = evidence(&format!("ev_{i}"), &ts(i));
        ev.tenant_id = cs.scope.tenant_id.clone();
        let mut au = audit(&ts(i));
        au.tenant_id = cs.scope.tenant_id.clone();
        store.record_proposal(&ev, &au, &cs).unwrap();
    }
    store.reject("prop_58", "alice", "no", &ts(100)).unwrap();

    let all = store.list_proposals(&ProposalFilter::default()).unwrap();
    assert_eq!(all.len(), 50, "default limit");
    assert_eq!(all[0].proposal_id, "prop_59");
    assert!(all.windows(2).all(|w| w[0].created_at > w[1].created_at));
    assert_eq!(all[0].object, "invoices:INV-3001");

    let f = ProposalFilter {
        tenant_id: Some("globex".into()),
        limit: Some(5),
        ..Default::default()
    };
    let g = store.list_proposals(&f).unwrap();
    assert_eq!(
        g.iter().map(|s| s.proposal_id.as_str()).collect::<Vec<_>>(),
        ["prop_59", "prop_57", "prop_55", "prop_53", "prop_51"]
    );
    let f = ProposalFilter {
        state: Some(ProposalState::Rejected),
        ..Default::default()
    };
    let r = store.list_proposals(&f).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].proposal_id, "prop_58");
    let f = ProposalFilter {
        capability: Some("other.cap".into()),
        ..Default::default()
    };
    assert!(store.list_proposals(&f).unwrap().is_empty());
    assert_eq!(code(store.get_proposal("prop_missing")), "PROPOSAL_NOT_FOUND");
}

#[test]
fn evidence_and_query_audit_lookups() {
    let (_dir, _path, mut store) = temp_store();
    store.record_read(&evidence("ev_1", &ts(1)), &audit(&ts(1))).unwrap();
    let mut failed = audit(&ts(2));
    failed.row_count = 0;
    failed.outcome = "ROW_NOT_FOUND".into();
    store.record_query_audit(&failed).unwrap();
    failed.evidence_bundle_id = Some("ev_1".into());
    store.record_query_audit(&failed).unwrap();
    assert_eq!(store.evidence("ev_1").unwrap().query_audit.len(), 2);
    assert_eq!(code(store.evidence("ev_nope")), "EVIDENCE_NOT_FOUND");

    failed.evidence_bundle_id = Some("ev_nope".into());
    assert_eq!(code(store.record_query_audit(&failed)), "EVIDENCE_NOT_FOUND");
    let mut ev = evidence("ev_2", &ts(3));
    ev.proposal_id = Some("prop_nope".into());
    assert_eq!(code(store.record_read(&ev, &audit(&ts(3)))), "PROPOSAL_NOT_FOUND");
    // The same bundle id twice is a caller bug, refused without partial writes.
    assert_eq!(
        code(store.record_read(&evidence("ev_1", &ts(4)), &audit(&ts(4)))),
        "INVALID_INPUT"
    );
    let mut au = audit(&ts(4));
    au.evidence_bundle_id = Some("ev_other".into());
    assert_eq!(code(store.record_read(&evidence("ev_3", &ts(4)), &au)), "INVALID_INPUT");
    let mut au = audit(&ts(4));
    au.duration_ms = f64::NAN;
    assert_eq!(code(store.record_query_audit(&au)), "INVALID_INPUT");
    let s = store.stats().unwrap();
    assert_eq!((s.evidence_bundles, s.query_audit), (1, 3));
}

// ------------------------------------------------------------------ tamper detection

#[test]
fn triggers_block_updates_of_immutable_columns_and_events() {
    let (_dir, path, mut store) = temp_store();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    let p = store
        .approve("prop_a", &p.change_set.digest, "alice", None, &ts(2))
        .unwrap();
    let receipt = ReceiptRecord {
        proposal_id: "prop_a".into(),
        idempotency_key: "k".into(),
        status: "failed".into(),
        rows_affected: 0,
        safe_error_code: Some("SOURCE_TIMEOUT".into()),
        receipt: json!({}),
        created_at: ts(3),
    };
    assert!(store.record_receipt(&receipt).unwrap());
    let raw = Connection::open(&path).unwrap();
    for sql in [
        "UPDATE proposals SET change_set_json = '{}' WHERE proposal_id = 'prop_a'",
        "UPDATE proposals SET digest = 'sha256:00' WHERE proposal_id = 'prop_a'",
        "UPDATE proposals SET proposal_id = 'prop_z' WHERE proposal_id = 'prop_a'",
        "UPDATE proposals SET tenant_id = 'globex' WHERE proposal_id = 'prop_a'",
        "UPDATE proposal_events SET actor = 'mallory'",
        "UPDATE approvals SET approver = 'mallory'",
        "UPDATE receipts SET status = 'applied'",
    ] {
        let err = raw.execute(sql, []).unwrap_err();
        assert!(
            err.to_string().contains("immutable") || err.to_string().contains("append-only"),
            "{sql}: {err}"
        );
    }
    // State and updated_at remain writable (that is how the ledger moves proposals).
    raw.execute(
        "UPDATE proposals SET updated_at = updated_at WHERE proposal_id = 'prop_a'",
        [],
    )
    .unwrap();
    assert_eq!(store.get_proposal("prop_a").unwrap(), p);
}

#[test]
fn tampered_change_set_is_detected_on_read() {
    let (_dir, path, mut store) = temp_store();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    let digest = p.change_set.digest.clone();

    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP TRIGGER proposals_immutable").unwrap();
    let mut forged = p.change_set.clone();
    forged.patch.insert("late_fee_cents".into(), json!(-100_000));
    let forged_json = serde_json::to_string(&forged).unwrap();
    raw.execute(
        "UPDATE proposals SET change_set_json = ?1 WHERE proposal_id = 'prop_a'",
        [&forged_json],
    )
    .unwrap();

    let err = store.get_proposal("prop_a").unwrap_err();
    assert_eq!(err.code(), "PROPOSAL_DIGEST_MISMATCH");
    assert_eq!(code(store.get_proposal("latest")), "PROPOSAL_DIGEST_MISMATCH");
    assert_eq!(
        code(store.approve("prop_a", &digest, "alice", None, &ts(2))),
        "PROPOSAL_DIGEST_MISMATCH"
    );
    // A replay still shows it, flagged.
    let replay = store.replay("prop_a").unwrap();
    assert!(!replay.digest_verified);
    // Rejecting a tampered proposal is allowed.
    store.reject("prop_a", "alice", "tampered", &ts(3)).unwrap();

    // Digest recomputed inside the JSON but not in the column: still detected.
    let p2 = created(propose(&mut store, &change_set("prop_b", 7), "ev_2", &ts(4)));
    let mut forged = p2.change_set.clone();
    forged.patch.insert("late_fee_cents".into(), json!(0));
    let forged = seal(forged);
    raw.execute(
        "UPDATE proposals SET change_set_json = ?1 WHERE proposal_id = 'prop_b'",
        [serde_json::to_string(&forged).unwrap()],
    )
    .unwrap();
    assert_eq!(code(store.get_proposal("prop_b")), "PROPOSAL_DIGEST_MISMATCH");

    // Garbage JSON is a store error naming the row, not a panic.
    raw.execute(
        "UPDATE proposals SET change_set_json = '{not json' WHERE proposal_id = 'prop_b'",
        [],
    )
    .unwrap();
    let err = store.get_proposal("prop_b").unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE");
    assert!(err.to_string().contains("prop_b"), "{err}");
    raw.execute("UPDATE proposals SET state = 'bogus' WHERE proposal_id = 'prop_a'", [])
        .unwrap();
    assert_eq!(code(store.replay("prop_a")), "STORE_UNAVAILABLE");
}

// ------------------------------------------------------------------ approvals

#[test]
fn approval_is_bound_to_the_digest_and_not_to_the_proposer() {
    let (_dir, _path, mut store) = temp_store();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    let digest = p.change_set.digest.clone();

    let err = store
        .approve("prop_a", "sha256:deadbeef", "alice", None, &ts(2))
        .unwrap_err();
    assert_eq!(err.code(), "DIGEST_MISMATCH");
    assert_eq!(
        code(store.approve("prop_a", &digest, PRINCIPAL, None, &ts(2))),
        "SELF_APPROVAL_FORBIDDEN"
    );
    assert_eq!(
        code(store.approve("prop_a", &digest, " AGENT-7 ", None, &ts(2))),
        "SELF_APPROVAL_FORBIDDEN"
    );
    assert_eq!(
        code(store.approve("prop_a", &digest, "  ", None, &ts(2))),
        "INVALID_INPUT"
    );
    assert_eq!(
        code(store.approve("latest", &digest, "alice", None, &ts(2))),
        "PROPOSAL_NOT_FOUND"
    );
    assert_eq!(
        code(store.approve("prop_a", &digest, "alice", None, "yesterday")),
        "INVALID_INPUT"
    );
    assert!(store.get_proposal("prop_a").unwrap().approvals.is_empty());

    let approved = store
        .approve("prop_a", &digest, "alice", Some("looks right"), &ts(3))
        .unwrap();
    assert_eq!(approved.state, ProposalState::Approved);
    assert_eq!(approved.updated_at, ts(3));
    assert_eq!(approved.approvals.len(), 1);
    assert_eq!(approved.approvals[0].digest, digest);
    assert_eq!(approved.approvals[0].reason.as_deref(), Some("looks right"));

    let err = store.approve("prop_a", &digest, "bob", None, &ts(4)).unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert!(err.to_string().contains("approved"), "{err}");

    let events = store.replay("prop_a").unwrap().events;
    let tail: Vec<_> = events
        .iter()
        .skip(2)
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        tail,
        [("proposal_approved", "alice"), ("proposal_state_changed", "alice")]
    );
    assert_eq!(events[2].payload["approvals"], 1);
    assert_eq!(events[2].payload["required"], 1);
    assert_eq!(events[3].payload["to"], "approved");
}

#[test]
fn quorum_of_two_distinct_approvers() {
    let (_dir, _path, mut store) = temp_store();
    let mut cs = change_set("prop_q", 0);
    cs.approval.required_approvals = 2;
    let cs = seal(cs);
    created(propose(&mut store, &cs, "ev_1", &ts(1)));

    let one = store.approve("prop_q", &cs.digest, "alice", None, &ts(2)).unwrap();
    assert_eq!(one.state, ProposalState::PendingReview);
    assert_eq!(one.updated_at, ts(2));
    let err = store.approve("prop_q", &cs.digest, "Alice", None, &ts(3)).unwrap_err();
    assert_eq!(err.code(), "ALREADY_DECIDED");
    assert!(err.to_string().contains("Alice"), "{err}");
    let two = store.approve("prop_q", &cs.digest, "bob", None, &ts(4)).unwrap();
    assert_eq!(two.state, ProposalState::Approved);
    assert_eq!(
        two.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    let kinds: Vec<_> = store
        .replay("prop_q")
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "proposal_created",
            "evidence_recorded",
            "proposal_approved",
            "proposal_approved",
            "proposal_state_changed"
        ]
    );
}

#[test]
fn reject_needs_a_reason_and_a_rejectable_state() {
    let (_dir, _path, mut store) = temp_store();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    assert_eq!(code(store.reject("prop_a", "alice", "  ", &ts(2))), "INVALID_INPUT");
    let r = store.reject("prop_a", "alice", "wrong invoice", &ts(2)).unwrap();
    assert_eq!(r.state, ProposalState::Rejected);
    assert_eq!(r.approvals[0].decision, "rejected");
    assert_eq!(r.approvals[0].reason.as_deref(), Some("wrong invoice"));
    let err = store.reject("prop_a", "alice", "again", &ts(3)).unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert!(err.to_string().contains("rejected"), "{err}");
    assert_eq!(
        code(store.approve("prop_a", &p.change_set.digest, "bob", None, &ts(3))),
        "INVALID_TRANSITION"
    );
    let last = store.replay("prop_a").unwrap().events.pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.actor.as_str()),
        ("proposal_rejected", "alice")
    );
    assert_eq!(last.payload["from"], "pending_review");
    assert_eq!(last.payload["reason"], "wrong invoice");

    // approved -> rejected, and failed -> rejected.
    let q = created(propose(&mut store, &change_set("prop_b", 1), "ev_2", &ts(4)));
    store
        .approve("prop_b", &q.change_set.digest, "bob", None, &ts(5))
        .unwrap();
    assert_eq!(
        store.reject("prop_b", "bob", "changed my mind", &ts(6)).unwrap().state,
        ProposalState::Rejected
    );
    let f = created(propose(&mut store, &change_set("prop_c", 2), "ev_3", &ts(7)));
    store
        .approve("prop_c", &f.change_set.digest, "bob", None, &ts(8))
        .unwrap();
    store
        .transition(
            "prop_c",
            ProposalState::Approved,
            ProposalState::Applying,
            "runner",
            json!(null),
            &ts(9),
        )
        .unwrap();
    store
        .transition(
            "prop_c",
            ProposalState::Applying,
            ProposalState::Failed,
            "runner",
            json!(null),
            &ts(9),
        )
        .unwrap();
    assert_eq!(
        store.reject("prop_c", "bob", "give up", &ts(10)).unwrap().state,
        ProposalState::Rejected
    );
}

#[test]
fn transition_is_compare_and_set() {
    let (_dir, _path, mut store) = temp_store();
    let p = created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    use ProposalState::*;

    let err = store
        .transition("prop_a", PendingReview, Applying, "runner", json!({}), &ts(2))
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert_eq!(
        code(store.transition("prop_a", PendingReview, Approved, "runner", json!({}), &ts(2))),
        "INVALID_INPUT",
        "approval only through approve()"
    );
    store
        .approve("prop_a", &p.change_set.digest, "alice", None, &ts(2))
        .unwrap();
    store
        .transition(
            "prop_a",
            Approved,
            Applying,
            "runner-1",
            json!({"attempt": 1, "from": "ignored"}),
            &ts(3),
        )
        .unwrap();
    // A second applier that also saw `approved` loses.
    let err = store
        .transition("prop_a", Approved, Applying, "runner-2", json!({}), &ts(3))
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert!(
        err.to_string().contains("applying") && err.to_string().contains("expected approved"),
        "{err}"
    );
    assert_eq!(
        code(store.transition("prop_a", Applying, Applied, "r", json!([1]), &ts(4))),
        "INVALID_INPUT"
    );
    assert_eq!(
        code(store.transition("prop_missing", Applying, Applied, "r", json!({}), &ts(4))),
        "PROPOSAL_NOT_FOUND"
    );
    store
        .transition(
            "prop_a",
            Applying,
            Applied,
            "runner-1",
            json!({"rows_affected": 1}),
            &ts(4),
        )
        .unwrap();
    let rec = store.get_proposal("prop_a").unwrap();
    assert_eq!((rec.state, rec.updated_at.as_str()), (Applied, ts(4).as_str()));

    let events = store.replay("prop_a").unwrap().events;
    let changes: Vec<_> = events.iter().filter(|e| e.kind == "proposal_state_changed").collect();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[1].actor, "runner-1");
    assert_eq!(
        changes[1].payload,
        json!({"attempt": 1, "from": "approved", "to": "applying"})
    );
    assert_eq!(changes[2].payload["rows_affected"], 1);
    // Terminal: nothing moves out of applied.
    assert_eq!(
        code(store.transition("prop_a", Applied, Failed, "r", json!({}), &ts(5))),
        "INVALID_TRANSITION"
    );
}

// ------------------------------------------------------------------ receipts and events

#[test]
fn receipts_are_recorded_once_per_idempotency_key() {
    let (_dir, _path, mut store) = temp_store();
    created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    let receipt = ReceiptRecord {
        proposal_id: "prop_a".into(),
        idempotency_key: "idem_prop_a".into(),
        status: "applied".into(),
        rows_affected: 1,
        safe_error_code: None,
        receipt: json!({"executor": "billing_sql", "version_after": 4}),
        created_at: ts(2),
    };
    assert!(store.record_receipt(&receipt).unwrap());
    assert!(
        !store
            .record_receipt(&ReceiptRecord {
                status: "failed".into(),
                ..receipt.clone()
            })
            .unwrap()
    );
    let all = store.receipts_for("prop_a").unwrap();
    assert_eq!(all, vec![receipt.clone()]);
    let ev = store.events_after(0, Some("writeback_applied"), 10).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload["idempotency_key"], "idem_prop_a");

    assert_eq!(
        code(store.record_receipt(&ReceiptRecord {
            status: "done".into(),
            ..receipt.clone()
        })),
        "INVALID_INPUT"
    );
    let orphan = ReceiptRecord {
        proposal_id: "prop_nope".into(),
        ..receipt.clone()
    };
    assert_eq!(code(store.record_receipt(&orphan)), "PROPOSAL_NOT_FOUND");
    assert_eq!(code(store.receipts_for("prop_nope")), "PROPOSAL_NOT_FOUND");
    assert_eq!(store.replay("prop_a").unwrap().receipts.len(), 1);
}

#[test]
fn failed_attempts_are_numbered_and_the_final_outcome_keeps_its_key() {
    let (_dir, _path, mut store) = temp_store();
    created(propose(&mut store, &change_set("prop_r", 0), "ev_1", &ts(1)));
    let attempt = |status: &str, at: i64| ReceiptRecord {
        proposal_id: "prop_r".into(),
        idempotency_key: "idem_prop_r".into(),
        status: status.into(),
        rows_affected: u32::from(status == "applied"),
        safe_error_code: (status == "failed").then(|| "SOURCE_UNAVAILABLE".to_owned()),
        receipt: json!({"status": status}),
        created_at: ts(at),
    };
    assert!(store.record_attempt_receipt(&attempt("failed", 2)).unwrap());
    assert!(store.record_attempt_receipt(&attempt("failed", 3)).unwrap());
    assert!(store.record_attempt_receipt(&attempt("applied", 4)).unwrap());
    // The same outcome reported again (a re-run of `apply` that finds it already done) is not new.
    assert!(!store.record_attempt_receipt(&attempt("applied", 5)).unwrap());
    let keys: Vec<String> = store
        .receipts_for("prop_r")
        .unwrap()
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys, ["idem_prop_r#failed-1", "idem_prop_r#failed-2", "idem_prop_r"]);
    let failed = store.events_after(0, Some("writeback_failed"), 10).unwrap();
    assert_eq!(failed[1].payload["idempotency_key"], "idem_prop_r#failed-2");
}

#[test]
fn events_after_is_ordered_filtered_and_limited() {
    let (_dir, _path, mut store) = temp_store();
    assert_eq!(store.last_event_id().unwrap(), 0);
    assert!(store.events_after(0, None, 100).unwrap().is_empty());
    for i in 0..5 {
        created(propose(
            &mut store,
            &change_set(&format!("prop_{i}"), i),
            &format!("ev_{i}"),
            &ts(i),
        ));
    }
    let all = store.events_after(0, None, 100).unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert_eq!(store.last_event_id().unwrap(), all.last().unwrap().event_id);

    // Poll in pages with the last id as cursor: every event exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.events_after(cursor, None, 3).unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().event_id;
        seen.extend(page.into_iter().map(|e| e.event_id));
    }
    assert_eq!(seen, all.iter().map(|e| e.event_id).collect::<Vec<_>>());

    let created_only = store
        .events_after(all[3].event_id, Some("proposal_created"), 100)
        .unwrap();
    assert_eq!(
        created_only.iter().map(|e| e.proposal_id.as_str()).collect::<Vec<_>>(),
        ["prop_2", "prop_3", "prop_4"]
    );
}

// ------------------------------------------------------------------ secrets

#[test]
fn secret_material_is_refused_and_nothing_is_written() {
    let (_dir, _path, mut store) = temp_store();
    let empty = counts(&store.stats().unwrap());

    let mut ev = evidence("ev_1", &ts(1));
    ev.items = vec![json!({"kind": "external_row", "row": {"id": "u1", "password": "hunter2"}})];
    let err = store.record_read(&ev, &audit(&ts(1))).unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");
    assert!(err.to_string().contains("$.items[0].row.password"), "{err}");
    assert!(!err.to_string().contains("hunter2"));
    assert_eq!(
        code(store.record_proposal(&ev, &audit(&ts(1)), &change_set("prop_a", 0))),
        "SECRET_MATERIAL_REJECTED"
    );

    let mut au = audit(&ts(1));
    au.statement_template = "postgres://app:pw@db/billing".into();
    let err = store.record_read(&evidence("ev_2", &ts(1)), &au).unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");
    assert!(!err.to_string().contains("app:pw"));
    assert_eq!(code(store.record_query_audit(&au)), "SECRET_MATERIAL_REJECTED");

    let mut cs = change_set("prop_b", 0);
    cs.after
        .insert("note".into(), json!("see postgresql://admin:x@prod/db"));
    let cs = seal(cs);
    let err = store
        .record_proposal(&evidence("ev_3", &ts(1)), &audit(&ts(1)), &cs)
        .unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");
    assert!(err.to_string().contains("$.after.note"), "{err}");
    assert_eq!(counts(&store.stats().unwrap()), empty, "a refusal writes nothing");

    // Free text that reaches event payloads is checked too.
    let p = created(propose(&mut store, &change_set("prop_c", 0), "ev_4", &ts(2)));
    let before = counts(&store.stats().unwrap());
    let bearer = "Bearer abcdefghijklmnopqrstuvwxyz0123456789";
    assert_eq!(
        code(store.approve("prop_c", &p.change_set.digest, "alice", Some(bearer), &ts(3))),
        "SECRET_MATERIAL_REJECTED"
    );
    assert_eq!(
        code(store.reject("prop_c", "alice", bearer, &ts(3))),
        "SECRET_MATERIAL_REJECTED"
    );
    assert_eq!(
        code(store.transition(
            "prop_c",
            ProposalState::PendingReview,
            ProposalState::Expired,
            "r",
            json!({"api_key": "k"}),
            &ts(3)
        )),
        "SECRET_MATERIAL_REJECTED"
    );
    assert_eq!(counts(&store.stats().unwrap()), before);
    assert_eq!(
        store.get_proposal("prop_c").unwrap().state,
        ProposalState::PendingReview
    );
}

// ------------------------------------------------------------------ retention

#[test]
fn prune_deletes_only_old_closed_proposals_and_orphans() {
    let (_dir, _path, mut store) = temp_store();
    use ProposalState::*;
    // Old (before the cutoff at ts(100)).
    let old_pending = created(propose(&mut store, &change_set("old_pending", 1), "ev_op", &ts(1)));
    created(propose(&mut store, &change_set("old_rejected", 2), "ev_or", &ts(2)));
    store.reject("old_rejected", "alice", "no", &ts(3)).unwrap();
    let applied = created(propose(&mut store, &change_set("old_applied", 3), "ev_oa", &ts(4)));
    store
        .approve("old_applied", &applied.change_set.digest, "alice", None, &ts(5))
        .unwrap();
    store
        .transition("old_applied", Approved, Applying, "runner", json!({}), &ts(6))
        .unwrap();
    store
        .transition("old_applied", Applying, Applied, "runner", json!({}), &ts(7))
        .unwrap();
    store
        .record_receipt(&ReceiptRecord {
            proposal_id: "old_applied".into(),
            idempotency_key: "k1".into(),
            status: "applied".into(),
            rows_affected: 1,
            safe_error_code: None,
            receipt: json!({}),
            created_at: ts(7),
        })
        .unwrap();
    let old_approved = created(propose(&mut store, &change_set("old_approved", 4), "ev_oap", &ts(8)));
    store
        .approve("old_approved", &old_approved.change_set.digest, "alice", None, &ts(9))
        .unwrap();
    store
        .record_read(&evidence("ev_old_read", &ts(10)), &audit(&ts(10)))
        .unwrap();
    let mut lonely = audit(&ts(11));
    lonely.outcome = "ROW_NOT_FOUND".into();
    store.record_query_audit(&lonely).unwrap();
    // New (after the cutoff).
    let mut cs = change_set("new_rejected", 5);
    cs.created_at = ts(200);
    created(propose(&mut store, &seal(cs), "ev_nr", &ts(200)));
    store.reject("new_rejected", "alice", "no", &ts(201)).unwrap();
    store
        .record_read(&evidence("ev_new_read", &ts(202)), &audit(&ts(202)))
        .unwrap();
    // An old pending proposal that gets new evidence later keeps everything.
    existing(propose(&mut store, &old_pending.change_set, "ev_op2", &ts(203)));

    let before = store.stats().unwrap();
    let last_event = store.last_event_id().unwrap();
    let dry = store.prune(&ts(100), true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        counts(&store.stats().unwrap()),
        counts(&before),
        "dry run deletes nothing"
    );
    assert_eq!(
        [
            dry.proposals,
            dry.proposal_events,
            dry.approvals,
            dry.evidence_bundles,
            dry.query_audit,
            dry.receipts
        ],
        // old_rejected: 3 events (created, evidence, rejected), 1 approval row;
        // old_applied: 2 + approved + state_changed x3 + writeback_applied = 7 events, 1 approval, 1 receipt;
        // evidence: ev_or, ev_oa, ev_old_read; audit: those three + the lonely row.
        [2, 10, 2, 3, 4, 1]
    );

    let real = store.prune(&ts(100), false).unwrap();
    assert_eq!(prune_counts(&real), prune_counts(&dry));
    let after = store.stats().unwrap();
    assert_eq!(after.proposals, before.proposals - 2);
    for kept in ["old_pending", "old_approved", "new_rejected"] {
        store.get_proposal(kept).unwrap();
    }
    for gone in ["old_rejected", "old_applied"] {
        assert_eq!(code(store.get_proposal(gone)), "PROPOSAL_NOT_FOUND");
    }
    assert_eq!(store.replay("old_pending").unwrap().evidence.len(), 2);
    store.evidence("ev_new_read").unwrap();
    assert_eq!(code(store.evidence("ev_old_read")), "EVIDENCE_NOT_FOUND");
    assert_eq!(
        store.prune(&ts(100), false).unwrap().proposals,
        0,
        "prune is idempotent"
    );

    // Event ids are never reused after deletes.
    created(propose(&mut store, &change_set("after_prune", 9), "ev_ap", &ts(300)));
    assert!(
        store
            .events_after(last_event, None, 10)
            .unwrap()
            .iter()
            .all(|e| e.event_id > last_event)
    );
    assert_eq!(code(store.prune("30d", true)), "INVALID_INPUT");
    store.vacuum().unwrap();
    assert_eq!(store.stats().unwrap().proposals, 4);
}

fn prune_counts(r: &synapsor_ledger::PruneReport) -> [i64; 6] {
    [
        r.proposals,
        r.proposal_events,
        r.approvals,
        r.evidence_bundles,
        r.query_audit,
        r.receipts,
    ]
}

#[test]
fn stats_reports_counts_and_size() {
    let (_dir, path, mut store) = temp_store();
    created(propose(&mut store, &change_set("prop_a", 0), "ev_1", &ts(1)));
    let s = store.stats().unwrap();
    assert_eq!(s.path, path.display().to_string());
    assert_eq!(s.schema_version, schema::current_version());
    assert_eq!(counts(&s), [1, 2, 0, 1, 1, 0]);
    assert_eq!(s.proposals_by_state.get("pending_review"), Some(&1));
    assert!(s.page_count > 0 && s.approx_bytes == s.page_count * s.page_size);
}

// ------------------------------------------------------------------ async handle

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_handle_records_reads_and_dedupes_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("local.db")).unwrap();
    ledger
        .record_read(evidence("ev_r", &ts(0)), audit(&ts(0)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let l = ledger.clone();
            tokio::spawn(async move {
                l.record_proposal(
                    evidence(&format!("ev_{i}"), &ts(i)),
                    audit(&ts(i)),
                    change_set("prop_same", 0),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut created_n = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), ProposalInsert::Created(_)) {
            created_n += 1;
        }
    }
    assert_eq!(created_n, 1);
    assert_eq!(
        ledger.get_proposal("latest").await.unwrap().change_set.proposal_id,
        "prop_same"
    );
    assert_eq!(ledger.replay("prop_same").await.unwrap().evidence.len(), 8);
    assert_eq!(ledger.evidence("ev_r").await.unwrap().query_audit.len(), 1);
    assert_eq!(
        ledger.get_proposal("nope").await.unwrap_err().code(),
        "PROPOSAL_NOT_FOUND"
    );
    let mut failed = audit(&ts(9));
    failed.outcome = "SOURCE_TIMEOUT".into();
    ledger.record_query_audit(failed).await.unwrap();
    let n = ledger.with_store(|s| Ok(s.stats()?.query_audit)).await.unwrap();
    assert_eq!(n, 10);
}

// ------------------------------------------------------------------ mirrors (Kubernetes mode)

#[test]
fn a_published_proposal_refuses_local_decisions_and_follows_its_store_of_record() {
    let (_dir, _path, mut store) = temp_store();
    let cs = change_set("wrp_m1", 100);
    let id = created(propose(&mut store, &cs, "ev_m1", &ts(0)))
        .change_set
        .proposal_id;
    let by = "kubernetes:team-a/Proposal/wrp-1";
    assert!(store.set_managed_by(&id, by, &ts(1)).unwrap());
    assert!(
        !store.set_managed_by(&id, by, &ts(2)).unwrap(),
        "publishing twice is a no-op"
    );
    let err = store
        .set_managed_by(&id, "kubernetes:other/Proposal/x", &ts(2))
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_INPUT");

    let rec = store.get_proposal(&id).unwrap();
    assert_eq!(rec.managed_by.as_deref(), Some(by));
    let digest = rec.change_set.digest.clone();
    for err in [
        store.approve(&id, &digest, "alice", None, &ts(3)).unwrap_err(),
        store.reject(&id, "alice", "no", &ts(3)).unwrap_err(),
        store
            .transition(
                &id,
                ProposalState::PendingReview,
                ProposalState::Expired,
                "x",
                json!({}),
                &ts(3),
            )
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), "PROPOSAL_MANAGED_EXTERNALLY", "{err}");
    }

    assert!(store.mirror_decision(&id, "alice", None, &ts(4)).unwrap());
    assert!(
        !store.mirror_decision(&id, "alice", None, &ts(5)).unwrap(),
        "same approval twice"
    );
    // A watch can skip states: pending -> applied directly is taken.
    assert!(
        store
            .mirror_state(
                &id,
                ProposalState::Applied,
                "controller",
                json!({"phase": "Applied"}),
                &ts(6)
            )
            .unwrap()
    );
    assert!(
        !store
            .mirror_state(&id, ProposalState::Applied, "controller", json!({}), &ts(7))
            .unwrap()
    );
    // Nothing leaves a terminal state.
    assert!(
        !store
            .mirror_state(&id, ProposalState::Failed, "controller", json!({}), &ts(8))
            .unwrap()
    );
    let rec = store.get_proposal(&id).unwrap();
    assert_eq!(rec.state, ProposalState::Applied);
    assert_eq!(rec.approvals.len(), 1);
    let kinds: Vec<String> = store.replay(&id).unwrap().events.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"proposal_published".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"proposal_approved".to_owned()), "{kinds:?}");
}

#[test]
fn a_mirror_keeps_the_evidence_the_store_of_record_carried() {
    let (_dir, _path, mut store) = temp_store();
    let cs = change_set("wrp_e1", 100);
    let by = "kubernetes:team-a/Proposal/wrp-e1";
    let ev = evidence(&cs.evidence.bundle_id, &ts(0));
    // Evidence of another proposal, tenant or capability is refused, and nothing is recorded.
    let mut foreign = ev.clone();
    foreign.tenant_id = "globex".into();
    assert_eq!(
        store
            .mirror_proposal(&cs, by, Some(&foreign), &ts(0))
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    assert_eq!(
        store.get_proposal(&cs.proposal_id).unwrap_err().code(),
        "PROPOSAL_NOT_FOUND"
    );
    let mut other_bundle = ev.clone();
    other_bundle.evidence_bundle_id = "ev_elsewhere".into();
    assert!(store.mirror_proposal(&cs, by, Some(&other_bundle), &ts(0)).is_err());

    assert!(store.mirror_proposal(&cs, by, Some(&ev), &ts(1)).unwrap());
    let replay = store.replay(&cs.proposal_id).unwrap();
    assert_eq!(replay.evidence.len(), 1);
    assert_eq!(replay.evidence[0].evidence.evidence_bundle_id, cs.evidence.bundle_id);
    assert_eq!(
        replay.evidence[0].evidence.proposal_id.as_deref(),
        Some(cs.proposal_id.as_str())
    );
    // Mirrored again (a re-list): nothing doubles.
    assert!(!store.mirror_proposal(&cs, by, Some(&ev), &ts(2)).unwrap());
    assert_eq!(store.replay(&cs.proposal_id).unwrap().evidence.len(), 1);
}

#[test]
fn mirror_proposal_inserts_once_and_refuses_tampered_or_local_rows() {
    let (_dir, _path, mut store) = temp_store();
    let cs = change_set("wrp_m1", 100);
    let by = "kubernetes:team-a/Proposal/wrp-1";
    assert!(store.mirror_proposal(&cs, by, None, &ts(0)).unwrap());
    assert!(!store.mirror_proposal(&cs, by, None, &ts(1)).unwrap());
    let rec = store.get_proposal(&cs.proposal_id).unwrap();
    assert_eq!(
        (rec.state, rec.managed_by.as_deref()),
        (ProposalState::PendingReview, Some(by))
    );

    // Same id, other content: refused.
    let other = change_set("wrp_m1", 200);
    assert_eq!(
        store.mirror_proposal(&other, by, None, &ts(2)).unwrap_err().code(),
        "DIGEST_MISMATCH"
    );
    // Content that does not match its digest: refused.
    let mut tampered = change_set("wrp_m3", 300);
    tampered.scope.object_id = "inv_other".into();
    assert_eq!(
        store.mirror_proposal(&tampered, by, None, &ts(2)).unwrap_err().code(),
        "INVALID_INPUT"
    );

    // Local proposals do not follow mirrors.
    let local = change_set("wrp_m4", 400);
    let local_id = created(propose(&mut store, &local, "ev_m2", &ts(3)))
        .change_set
        .proposal_id;
    assert_eq!(
        store
            .mirror_state(&local_id, ProposalState::Applied, "x", json!({}), &ts(4))
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    assert_eq!(
        store
            .mirror_decision(&local_id, "alice", None, &ts(4))
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
}

#[tokio::test]
async fn a_serving_ledger_checkpoints_the_wal_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let wal = dir.path().join("local.db-wal");
    let ledger = Ledger::open(&path).unwrap();
    // Migrations may have been checkpointed at open; measure from here.
    let db_before = std::fs::metadata(&path).unwrap().len();
    for i in 0..20 {
        ledger
            .record_read(evidence(&format!("ev_bg_{i}"), &ts(i)), audit(&ts(i)))
            .await
            .unwrap();
    }
    let frames = (std::fs::metadata(&wal).unwrap().len() / 4096) as u32;
    assert!(
        frames > 0 && frames < 1000,
        "20 reads stay below SQLite's default threshold (1000 pages) and the backstop ({AUTOCHECKPOINT_BACKSTOP}): {frames}"
    );
    // So only the background thread can copy the new pages into the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&path).unwrap().len() <= db_before && std::time::Instant::now() < deadline {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
    }
    assert!(
        std::fs::metadata(&path).unwrap().len() > db_before,
        "the database file grew: the WAL was checkpointed without a writer doing it"
    );
    let store = LedgerStore::open(&path).unwrap();
    assert_eq!(store.stats().unwrap().evidence_bundles, 20);
}

#[test]
fn a_version_2_store_loses_the_unused_evidence_and_audit_indexes() {
    let (_dir, path, mut store) = temp_store();
    store.record_read(&evidence("ev_v2", &ts(0)), &audit(&ts(0))).unwrap();
    drop(store);
    // What version 2 had on top of version 3.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE INDEX evidence_bundles_tenant_created ON evidence_bundles(tenant_id, created_at);
         CREATE INDEX evidence_bundles_capability_created ON evidence_bundles(capability, created_at);
         CREATE INDEX query_audit_tenant_created ON query_audit(tenant_id, created_at);
         CREATE INDEX query_audit_capability_created ON query_audit(capability, created_at);
         ALTER TABLE approvals DROP COLUMN verified_json;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);

    let store = LedgerStore::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        synapsor_ledger::schema::current_version()
    );
    let conn = Connection::open(&path).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND (name LIKE '%tenant_created' OR name LIKE '%capability_created')
               AND tbl_name IN ('evidence_bundles', 'query_audit')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    let bundle = store.evidence("ev_v2").unwrap();
    assert_eq!(
        (bundle.evidence.evidence_bundle_id.as_str(), bundle.query_audit.len()),
        ("ev_v2", 1)
    );
}

#[test]
fn decisions_record_whether_a_token_verified_the_decider() {
    let (_dir, path, mut store) = temp_store();
    let mut cs = change_set("prop_a", 0);
    cs.approval.required_approvals = 2;
    let p = created(propose(&mut store, &seal(cs), "ev_1", &ts(1)));
    // A decision made before migration 4 reads back as unverified.
    store
        .approve("prop_a", &p.change_set.digest, "alice", None, &ts(2))
        .unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE approvals DROP COLUMN verified_json; PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);
    let mut store = LedgerStore::open(&path).unwrap();
    let rec = store.get_proposal("prop_a").unwrap();
    assert_eq!(rec.approvals[0].approver, "alice");
    assert_eq!(rec.approvals[0].verified_identity, None);

    // A verified decider is recorded with issuer, subject and jti.
    let who = synapsor_core::capability::VerifiedIdentity {
        issuer: "https://idp.test/".into(),
        subject: "bob".into(),
        jti: Some("t-1".into()),
    };
    let by = synapsor_ledger::Decider {
        name: "bob",
        verified: Some(&who),
    };
    let rec = store
        .approve_as("prop_a", &rec.change_set.digest, by, Some("ok"), &ts(3))
        .unwrap();
    assert_eq!(rec.approvals[1].verified_identity.as_ref(), Some(&who));
    let replay = store.replay("prop_a").unwrap();
    let approved: Vec<bool> = replay
        .events
        .iter()
        .filter(|e| e.kind == "proposal_approved")
        .map(|e| e.payload["verified"] == json!(true))
        .collect();
    assert_eq!(approved, [false, true]);
}

#[test]
fn a_verified_decider_whose_token_names_the_proposer_is_refused() {
    let (_dir, _path, mut store) = temp_store();
    let mut cs = change_set("prop_t", 0);
    // The proposal came from a token of https://idp.test/ for subject u-7 (principal agent).
    cs.identity = Some(synapsor_core::capability::VerifiedIdentity {
        issuer: "https://idp.test/".into(),
        subject: "u-7".into(),
        jti: None,
    });
    let cs = seal(cs);
    let p = created(propose(&mut store, &cs, "ev_1", &ts(1)));
    let me = synapsor_core::capability::VerifiedIdentity {
        issuer: "https://idp.test/".into(),
        subject: "u-7".into(),
        jti: Some("op".into()),
    };
    let by = synapsor_ledger::Decider {
        name: "u-7-as-operator",
        verified: Some(&me),
    };
    assert_eq!(
        code(store.approve_as("prop_t", &p.change_set.digest, by, None, &ts(2))),
        "SELF_APPROVAL_FORBIDDEN"
    );
}
