//! Kubernetes mode end to end, against a real kube-apiserver (scripts/k8s.sh, or a kind cluster
//! through `KUBECONFIG`) and a real PostgreSQL: the sidecar answers an MCP proposal call with a
//! `Proposal`, approvers annotate it with kubectl, the webhook decides who may, and the
//! controller applies it once.
#![allow(clippy::unwrap_used)]

mod k8s_support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_support::*;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use synapsor_core::ProposalState;
use synapsor_kube::{ANNOTATION_APPROVALS, ANNOTATION_PROPOSER, Phase, object_name};
use synapsor_ledger::LedgerStore;

fn stderr(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_to_receipt_with_verified_approvers_and_a_quorum_of_two() {
    let Some(mut fx) = Fixture::new(2).await else { return };
    fx.start_controller("c1").await;
    fx.grant_sidecar_approve().await;
    let mcp = fx.sidecar().await;

    // 1. The MCP proposal call creates a Proposal, stamped with the sidecar as proposer.
    let env = propose(&mcp, "INV-1", 2500).await;
    assert_eq!(env["ok"], true, "{env}");
    assert_eq!(env["source_database_changed"], false);
    let id = env["proposal"]["id"].as_str().unwrap().to_owned();
    let name = object_name(&id);
    let p = fx.wait_phase(&name, Phase::Pending, 20).await;
    assert_eq!(p.annotations().get(ANNOTATION_PROPOSER), Some(&fx.sidecar_user));
    assert_eq!(p.spec.tenant, "acme");
    assert_eq!(p.spec.patch["late_fee_cents"], 2500);
    assert_eq!(p.status.as_ref().unwrap().approvals_summary.as_deref(), Some("0/2"));
    // The same call again returns the same proposal, not a second object.
    let again = propose(&mcp, "INV-1", 2500).await;
    assert_eq!(again["proposal"]["id"], env["proposal"]["id"]);
    assert_eq!(
        fx.proposals().list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // `kubectl get proposals` shows phase, capability, tenant and approvals.
    let out = fx.kubectl(None, &["get", "proposals"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "CAPABILITY", "TENANT", "APPROVALS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..5], [name.as_str(), "Pending", TOOL, "acme", "0/2"], "{table}");

    // 2. Denied by the webhook: a user without the verb `approve`; the proposer, even with RBAC
    //    allowing it; a forged approval record; a spec edit.
    let out = fx.approve(EDITOR, &name);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("RBAC does not allow the verb \"approve\""),
        "{}",
        stderr(&out)
    );
    let out = fx.approve(&fx.sidecar_user.clone(), &name);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot approve it"), "{}", stderr(&out));
    let forged =
        format!("{ANNOTATION_APPROVALS}=[{{\"user\":\"alice\",\"at\":\"2026-01-01T00:00:00Z\",\"sig\":\"v1=00\"}}]");
    let out = fx.kubectl(None, &["annotate", &format!("proposal/{name}"), &forged]);
    assert!(
        stderr(&out).contains("written only by the admission webhook"),
        "{}",
        stderr(&out)
    );
    let out = fx.kubectl(
        None,
        &[
            "patch",
            &format!("proposal/{name}"),
            "--type=merge",
            "-p",
            r#"{"spec":{"patch":{"late_fee_cents":9999}}}"#,
        ],
    );
    assert!(stderr(&out).contains("immutable"), "{}", stderr(&out));
    // A user without write access at all is stopped by RBAC before the webhook.
    let out = fx.approve("mallory", &name);
    assert!(!out.status.success());

    // 3. One verified approval is not a quorum of two; the same approver twice does not count.
    let out = fx.approve(APPROVERS[0], &name);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = fx.approve(APPROVERS[0], &name);
    assert!(stderr(&out).contains("already approved"), "{}", stderr(&out));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let p = fx.proposals().get(&name).await.unwrap();
    let st = p.status.clone().unwrap();
    assert_eq!(st.phase, Some(Phase::Pending));
    assert_eq!(st.approvals_summary.as_deref(), Some("1/2"));
    assert_eq!(fx.db.fee("INV-1").await, 5500, "nothing is written before the quorum");

    // 4. The second approver completes the quorum: applied once, receipt in status.
    let out = fx.approve(APPROVERS[1], &name);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = fx.wait_phase(&name, Phase::Applied, 30).await;
    let st = p.status.unwrap();
    let receipt = st.receipt.unwrap();
    assert_eq!(receipt["status"], "applied", "{receipt}");
    assert_eq!(receipt["rows_affected"], 1);
    let users: Vec<&str> = st.approvals.iter().map(|a| a.user.as_str()).collect();
    assert_eq!(users, APPROVERS);
    assert!(st.approvals.iter().all(|a| a.verified));
    assert_eq!(fx.db.fee("INV-1").await, 2500);
    assert_eq!(fx.db.writes("INV-1").await, 1);
    assert_eq!(fx.db.source_receipts().await, 1);

    // Decided proposals take no more decisions.
    let out = fx.approve(APPROVERS[0], &name);
    assert!(
        stderr(&out).contains("no longer be decided") || stderr(&out).contains("already approved"),
        "{}",
        stderr(&out)
    );

    // 5. A Kubernetes Event and the controller's metrics and ledger say so too.
    let events: Api<Event> = Api::namespaced(fx.client.clone(), &fx.ns);
    let mut found = false;
    for _ in 0..50 {
        let list = events.list(&ListParams::default()).await.unwrap();
        found = list.items.iter().any(|e| e.reason.as_deref() == Some("Applied"));
        if found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "an Applied event");
    assert_eq!(
        fx.controllers[0]
            .metric("synapsor_proposal_applies_total{outcome=\"applied\"}")
            .await,
        1.0
    );
    assert!(
        fx.controllers[0]
            .metric("synapsor_admission_reviews_total{verdict=\"denied\"}")
            .await
            >= 4.0
    );
    assert_eq!(fx.controllers[0].metric("synapsor_controller_leader").await, 1.0);
    let (code, _) = fx.controllers[0].get("/healthz").await.unwrap();
    assert_eq!(code, 200);
    {
        let store = LedgerStore::open_existing(&fx.controllers[0].ledger).unwrap();
        let rec = store.get_proposal(&id).unwrap();
        assert_eq!(rec.state, ProposalState::Applied);
        assert_eq!(rec.approvals.len(), 2);
        let receipts = store.receipts_for(&id).unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].status, "applied");
    }

    // 6. The sidecar mirrored the outcome into its own ledger; local approve/apply refuse it.
    let mut mirrored = false;
    for _ in 0..100 {
        let store = LedgerStore::open_existing(fx.sidecar_ledger()).unwrap();
        let rec = store.get_proposal(&id).unwrap();
        if rec.state == ProposalState::Applied && !store.receipts_for(&id).unwrap().is_empty() {
            assert_eq!(rec.approvals.len(), 2);
            assert_eq!(rec.managed_by, Some(format!("kubernetes:{}/Proposal/{name}", fx.ns)));
            mirrored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        mirrored,
        "the sidecar's ledger mirrors the applied proposal and its receipt"
    );
    mcp.cancel().await.unwrap();
    let out = fx
        .runner(&["proposals", "approve", &id])
        .env("USER", "local-admin")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("PROPOSAL_MANAGED_EXTERNALLY"), "{}", stderr(&out));

    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_ends_in_conflict_and_a_rejection_is_final() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;

    let env = propose(&mcp, "INV-2", 1200).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    // The row changes behind the proposal's back.
    fx.db
        .exec("UPDATE invoices SET updated_at = now(), late_fee_cents = 750 WHERE id = 'INV-2'")
        .await;
    let out = fx.approve(APPROVERS[0], &name);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = fx.wait_phase(&name, Phase::Conflict, 30).await;
    assert_eq!(p.status.unwrap().receipt.unwrap()["status"], "conflict");
    assert_eq!(fx.db.fee("INV-2").await, 750, "a conflict writes nothing");
    assert_eq!(fx.db.writes("INV-2").await, 1, "only the test's own update");

    // Rejection: by an approver, with a reason; final.
    let env = propose(&mcp, "INV-3", 100).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    let out = fx.reject(EDITOR, &name, "nope");
    assert!(!out.status.success(), "an editor cannot reject either");
    let out = fx.reject(APPROVERS[1], &name, "fee too low");
    assert!(out.status.success(), "{}", stderr(&out));
    let p = fx.wait_phase(&name, Phase::Rejected, 30).await;
    let rejection = p.status.unwrap().rejection.unwrap();
    assert_eq!(
        (rejection.user.as_str(), rejection.reason.as_str()),
        (APPROVERS[1], "fee too low")
    );
    let out = fx.approve(APPROVERS[0], &name);
    assert!(stderr(&out).contains("no longer be decided"), "{}", stderr(&out));
    assert_eq!(fx.db.fee("INV-3").await, 800);

    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_writes_nothing_is_retried_and_can_still_be_rejected() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;
    // The writer loses its UPDATE grant: the apply fails inside its transaction.
    fx.db
        .exec(&format!("REVOKE UPDATE ON invoices FROM {}", fx.db.writer))
        .await;

    let env = propose(&mcp, "INV-2", 1300).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    assert!(fx.approve(APPROVERS[0], &name).status.success());
    let p = fx.wait_phase(&name, Phase::Failed, 30).await;
    let st = p.status.unwrap();
    assert_eq!(st.attempts, 1);
    assert!(st.next_attempt_at.is_some());
    assert!(
        st.message.as_deref().unwrap_or_default().contains("attempt 1 of 5"),
        "{:?}",
        st.message
    );
    assert_eq!(st.receipt.unwrap()["status"], "failed");
    assert_eq!(fx.db.writes("INV-2").await, 0);

    // Fixed: the next attempt (same idempotency key) applies it, once.
    fx.db
        .exec(&format!("GRANT UPDATE ON invoices TO {}", fx.db.writer))
        .await;
    let p = fx.wait_phase(&name, Phase::Applied, 40).await;
    let st = p.status.unwrap();
    let receipt = st.receipt.unwrap();
    assert_eq!(receipt["status"], "applied");
    // Nothing of the failed attempt is left beside Applied.
    assert_eq!(receipt.get("safe_error_code"), None, "{receipt}");
    assert_eq!(st.next_attempt_at, None);
    assert_eq!(st.attempts, 1);
    assert_eq!((fx.db.fee("INV-2").await, fx.db.writes("INV-2").await), (1300, 1));

    // A failing proposal can be stopped with a rejection.
    fx.db
        .exec(&format!("REVOKE UPDATE ON invoices FROM {}", fx.db.writer))
        .await;
    let env = propose(&mcp, "INV-3", 1400).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    assert!(fx.approve(APPROVERS[0], &name).status.success());
    fx.wait_phase(&name, Phase::Failed, 30).await;
    let out = fx.reject(APPROVERS[1], &name, "stop retrying");
    assert!(out.status.success(), "{}", stderr(&out));
    fx.wait_phase(&name, Phase::Rejected, 30).await;
    fx.db
        .exec(&format!("GRANT UPDATE ON invoices TO {}", fx.db.writer))
        .await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        fx.proposals().get(&name).await.unwrap().status.unwrap().phase,
        Some(Phase::Rejected)
    );
    assert_eq!(fx.db.writes("INV-3").await, 0);

    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_during_apply_writes_exactly_once_after_restart() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;
    let env = propose(&mcp, "INV-4", 4200).await;
    let id = env["proposal"]["id"].as_str().unwrap().to_owned();
    let name = object_name(&id);
    fx.wait_phase(&name, Phase::Pending, 20).await;

    // Hold the row so the apply blocks inside its transaction, after status says Applying.
    let lock = lock_row(&fx.db, "INV-4").await;
    let out = fx.approve(APPROVERS[0], &name);
    assert!(out.status.success(), "{}", stderr(&out));
    fx.wait_phase(&name, Phase::Applying, 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    fx.controllers[0].kill(); // SIGKILL mid-apply
    drop(lock);
    assert_eq!(fx.db.writes("INV-4").await, 0, "the killed apply committed nothing");

    // A new replica finds the proposal in Applying and applies it with the same idempotency key.
    fx.start_controller("c2").await;
    let p = fx.wait_phase(&name, Phase::Applied, 60).await;
    assert_eq!(p.status.unwrap().receipt.unwrap()["status"], "applied");
    assert_eq!(fx.db.fee("INV-4").await, 4200);
    assert_eq!(fx.db.writes("INV-4").await, 1);
    assert_eq!(fx.db.source_receipts().await, 1);

    // A crash after the commit but before the status write: the write is in the source, the
    // status still says Applying. The next controller writes nothing and records the write as
    // this proposal's (applied, with a `recovered` check).
    let env = propose(&mcp, "INV-1", 3100).await;
    let id2 = env["proposal"]["id"].as_str().unwrap().to_owned();
    let name2 = object_name(&id2);
    fx.wait_phase(&name2, Phase::Pending, 20).await;
    let lock = lock_row(&fx.db, "INV-1").await;
    let out = fx.approve(APPROVERS[1], &name2);
    assert!(out.status.success(), "{}", stderr(&out));
    fx.wait_phase(&name2, Phase::Applying, 30).await;
    fx.controllers[1].kill();
    drop(lock);
    // Do exactly what the killed controller was doing, to completion, behind its back.
    let p2 = fx.proposals().get(&name2).await.unwrap();
    let cs = p2.spec.to_change_set();
    let (cfg, _) = synapsor_core::config::parse_config(&std::fs::read_to_string(&fx.config_path).unwrap()).unwrap();
    let caps = synapsor_core::capability::compile(&cfg).unwrap();
    let cap = caps.iter().find(|c| c.name == TOOL).unwrap();
    let env = std::collections::HashMap::from([("TEST_WRITE_URL".to_owned(), fx.db.write_url.clone())]);
    let receipt = synapsor_executor::select_executor(&cfg, cap)
        .unwrap()
        .apply(synapsor_executor::ApplyRequest {
            change_set: &cs,
            capability: cap,
            source_name: "main",
            source: &cfg.sources["main"],
            env: &env,
            executed_at: "2026-11-25T00:00:00Z".into(),
            dry_run: false,
            approvals: vec![],
        })
        .await;
    assert_eq!(receipt.status.as_str(), "applied");
    assert_eq!(fx.db.writes("INV-1").await, 1);
    fx.start_controller("c3").await;
    let p2 = fx.wait_phase(&name2, Phase::Applied, 60).await;
    let receipt = p2.status.unwrap().receipt.unwrap();
    assert_eq!(receipt["status"], "applied", "{receipt}");
    assert_eq!(receipt["rows_affected"], 1, "{receipt}");
    assert!(
        receipt["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "recovered"),
        "{receipt}"
    );
    assert_eq!(fx.db.writes("INV-1").await, 1, "not written twice");
    assert_eq!(fx.db.fee("INV-1").await, 3100);

    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_elect_one_leader_and_the_other_takes_over() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    let leases: Api<Lease> = Api::namespaced(fx.client.clone(), &fx.ns);
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("synapsor-controller")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    };
    fx.start_controller("a").await;
    for _ in 0..100 {
        if holder(leases.clone()).await.as_deref() == Some("a") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holder(leases.clone()).await.as_deref(), Some("a"));
    // The second replica serves its own webhook port (in a cluster both sit behind one Service).
    let port_a = fx.webhook_port;
    fx.webhook_port = free_port();
    fx.start_controller("b").await;
    let port_b = fx.webhook_port;
    fx.webhook_port = port_a;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        holder(leases.clone()).await.as_deref(),
        Some("a"),
        "a live leader keeps the lease"
    );
    assert_eq!(fx.controllers[0].metric("synapsor_controller_leader").await, 1.0);
    assert_eq!(fx.controllers[1].metric("synapsor_controller_leader").await, 0.0);
    // The standby is ready too: it serves the webhook.
    assert_eq!(fx.controllers[1].get("/readyz").await.unwrap().0, 200);

    let mcp = fx.sidecar().await;
    let env = propose(&mcp, "INV-2", 1500).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    assert!(fx.approve(APPROVERS[0], &name).status.success());
    fx.wait_phase(&name, Phase::Applied, 30).await;
    assert_eq!(fx.db.writes("INV-2").await, 1);
    let applied = "synapsor_proposal_applies_total{outcome=\"applied\"}";
    assert_eq!(fx.controllers[0].metric(applied).await, 1.0);
    assert_eq!(fx.controllers[1].metric(applied).await, 0.0, "only the leader applies");

    // The leader stops gracefully and gives the lease up; the standby takes over at once (well
    // before the 15 s lease would have run out) and the webhook Service now reaches it.
    let status = fx.controllers[0].terminate();
    assert!(
        status.success(),
        "graceful shutdown exits 0:\n{}",
        fx.controllers[0].log_text()
    );
    fx.point_webhook_to(port_b).await;
    let mut took_over = false;
    for _ in 0..100 {
        if fx.controllers[1].metric("synapsor_controller_leader").await == 1.0 {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        took_over,
        "the standby took the lease over:\n{}",
        fx.controllers[1].log_text()
    );
    assert_eq!(holder(leases.clone()).await.as_deref(), Some("b"));
    let env = propose(&mcp, "INV-3", 1600).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&name, Phase::Pending, 20).await;
    assert!(fx.approve(APPROVERS[1], &name).status.success());
    fx.wait_phase(&name, Phase::Applied, 30).await;
    assert_eq!(fx.db.writes("INV-3").await, 1);
    assert_eq!(fx.controllers[1].metric(applied).await, 1.0);

    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_checks_that_the_sidecar_identity_has_exactly_what_it_needs() {
    let Some(fx) = Fixture::new(1).await else { return };
    let up = || {
        let out = fx
            .runner(&[
                "up",
                "--dry-run",
                "--json",
                "--proposal-store",
                "kubernetes",
                "--kube-namespace",
                &fx.ns,
            ])
            .output()
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        // What it suggests next serves with the same proposal store.
        let serve = format!("--proposal-store kubernetes --kube-namespace {}", fx.ns);
        assert!(
            report["next"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().ends_with(&serve)),
            "{report}"
        );
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "kubernetes")
            .cloned()
            .unwrap_or_else(|| panic!("no kubernetes check: {report}"))
    };
    let c = up();
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["detail"].as_str().unwrap().contains("nothing more"), "{c}");
    // An identity that could also approve is reported: it could decide its own proposals.
    fx.grant_sidecar_approve().await;
    let c = up();
    assert_eq!(c["ok"], false, "{c}");
    assert!(c["detail"].as_str().unwrap().contains("may also"), "{c}");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_the_api_refuses_is_never_local_and_is_published_on_retry() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    let mcp = fx.sidecar().await;
    // No controller yet: the webhook (failurePolicy Fail) cannot be reached, so the create fails.
    let env = propose(&mcp, "INV-1", 2000).await;
    assert_eq!(env["ok"], false, "{env}");
    assert_eq!(env["error"]["code"], "TEMPORARILY_UNAVAILABLE", "{env}");
    assert_eq!(env["error"]["retryable"], true, "{env}");
    // The model is told which store failed: not the database, the proposal store.
    assert!(
        env["error"]["message"].as_str().unwrap().contains("proposal store"),
        "{env}"
    );
    assert!(
        fx.proposals()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The ledger row exists, marked as managed by the cluster: it can never be approved locally.
    let id = {
        let store = LedgerStore::open_existing(fx.sidecar_ledger()).unwrap();
        let rec = store.get_proposal("latest").unwrap();
        assert!(
            rec.managed_by.as_deref().unwrap().starts_with("kubernetes:"),
            "{:?}",
            rec.managed_by
        );
        rec.change_set.proposal_id
    };
    let out = fx.runner(&["proposals", "approve", &id, "--yes"]).output().unwrap();
    assert!(stderr(&out).contains("PROPOSAL_MANAGED_EXTERNALLY"), "{}", stderr(&out));

    // Once the controller (and its webhook) runs, the same call publishes the same proposal.
    fx.start_controller("c1").await;
    let env = propose(&mcp, "INV-1", 2000).await;
    assert_eq!(env["ok"], true, "{env}");
    assert_eq!(env["proposal"]["id"], id.as_str());
    fx.wait_phase(&object_name(&id), Phase::Pending, 20).await;

    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_proposal_expires_and_can_no_longer_be_approved() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar_with_ttl("3s").await;
    let env = propose(&mcp, "INV-3", 1700).await;
    let name = object_name(env["proposal"]["id"].as_str().unwrap());
    let p = fx.wait_phase(&name, Phase::Pending, 20).await;
    let created = synapsor_core::time::parse_rfc3339_ms(&p.spec.created_at).unwrap();
    let expires = synapsor_core::time::parse_rfc3339_ms(&p.spec.expires_at).unwrap();
    assert!(
        (2_500..=4_000).contains(&(expires - created)),
        "expiresAt is createdAt + 3 s"
    );
    // Nothing else happens to it: the controller wakes itself at expiresAt.
    let p = fx.wait_phase(&name, Phase::Expired, 30).await;
    assert!(
        p.status
            .unwrap()
            .message
            .unwrap_or_default()
            .contains("not applied before")
    );
    let out = fx.approve(APPROVERS[0], &name);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no longer be decided") || stderr(&out).contains("expired"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.db.writes("INV-3").await, 0);
    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_pods_get_the_sidecar_once_and_unbound_accounts_are_refused() {
    use k8s_openapi::api::core::v1::Pod;
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller_with(
        "c1",
        &[
            "--inject-image",
            "ghcr.io/synapsor/synapsor-runner:0.1.0",
            "--inject-env-secret",
            "billing-agent-env",
        ],
    )
    .await;
    fx.install_injector().await;
    let pods: Api<Pod> = Api::namespaced(fx.client.clone(), &fx.ns);
    let pod = |name: &str, sa: &str, annotated: bool| -> Pod {
        let ann = if annotated {
            json!({"runner.synapsor.ai/inject": "true"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": ann},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "billing:1"}]}
        }))
        .unwrap()
    };

    // The sidecar's account ("runner") may create proposals: the pod gets the sidecar.
    let created = pods
        .create(&PostParams::default(), &pod("app-1", "runner", true))
        .await
        .unwrap();
    let spec = created.spec.clone().unwrap();
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "synapsor-runner"]);
    let sidecar = &spec.containers[1];
    assert_eq!(sidecar.image.as_deref(), Some("ghcr.io/synapsor/synapsor-runner:0.1.0"));
    assert!(
        sidecar
            .args
            .as_ref()
            .unwrap()
            .windows(2)
            .any(|w| w == ["--host", "127.0.0.1"])
    );
    let sc = sidecar.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.run_as_non_root, sc.read_only_root_filesystem),
        (Some(true), Some(true))
    );

    // Re-admitting a pod that has it already adds nothing.
    let mut again = created.clone();
    again.metadata =
        serde_json::from_value(json!({"name": "app-2", "annotations": created.metadata.annotations})).unwrap();
    let again = pods.create(&PostParams::default(), &again).await.unwrap();
    assert_eq!(again.spec.unwrap().containers.len(), 2);

    // Without the annotation nothing changes.
    let plain = pods
        .create(&PostParams::default(), &pod("plain", "unbound", false))
        .await
        .unwrap();
    assert_eq!(plain.spec.unwrap().containers.len(), 1);

    // An account that may not create proposals is refused, with the reason.
    let err = pods
        .create(&PostParams::default(), &pod("app-3", "unbound", true))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("may not create proposals"), "{msg}");
    assert!(msg.contains("sidecar.serviceAccounts"), "{msg}");
    let metrics = fx.controllers[0].get("/metrics").await.unwrap().1;
    assert!(
        metrics.contains("synapsor_sidecar_injections_total{outcome=\"injected\"} 1"),
        "{metrics}"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_without_its_receipts_table_is_not_ready_and_says_why() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    // The setup an apply needs is missing: nothing may be approved into a Failed proposal.
    fx.db
        .exec("ALTER TABLE synapsor_writeback_receipts RENAME TO receipts_elsewhere")
        .await;
    let i = fx.spawn_controller("c1", &["--setup-recheck-secs", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        match fx.controllers[i].get("/readyz").await {
            Some((503, body)) if body.contains("RECEIPTS_TABLE_MISSING") => break body,
            _ if std::time::Instant::now() > deadline => panic!("{}", fx.controllers[i].log_text()),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(body.contains("db init-receipts --source main"), "{body}");
    assert!(fx.controllers[i].log_text().contains("RECEIPTS_TABLE_MISSING"));
    // Fixed: ready without a restart.
    fx.db
        .exec("ALTER TABLE receipts_elsewhere RENAME TO synapsor_writeback_receipts")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fx.controllers[i].get("/readyz").await.map(|(s, _)| s) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "{}", fx.controllers[i].log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_sidecar_keeps_the_record_of_what_its_predecessor_proposed() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;
    let env = propose(&mcp, "INV-2", 1300).await;
    let id = env["proposal"]["id"].as_str().unwrap().to_owned();
    let name = object_name(&id);
    fx.wait_phase(&name, Phase::Pending, 20).await;
    // The app pod dies, and its ledger (an emptyDir) with it.
    mcp.cancel().await.unwrap();
    for suffix in ["", "-wal", "-shm", ".lease"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", fx.sidecar_ledger().display()));
    }
    // Its replacement serves the same capabilities with a new ledger.
    let mcp = fx.sidecar().await;
    assert!(fx.approve(APPROVERS[0], &name).status.success());
    fx.wait_phase(&name, Phase::Applied, 30).await;
    assert_eq!(fx.db.writes("INV-2").await, 1, "applied exactly once");
    // The new sidecar's ledger has the whole record: change set, evidence, approval, receipt.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let replay = loop {
        let out = fx.runner(&["replay", &id, "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let r = &v["replay"];
        if r["proposal"]["state"] == "applied" && !r["receipts"].as_array().is_none_or(Vec::is_empty) {
            break r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not mirrored: {v}\n{}",
            stderr(&out)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(replay["digest_verified"], true, "{replay}");
    let evidence = replay["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{replay}");
    assert_eq!(evidence[0]["evidence"]["object_id"], "INV-2", "{replay}");
    assert_eq!(replay["proposal"]["approvals"][0]["approver"], APPROVERS[0], "{replay}");
    assert_eq!(replay["receipts"][0]["status"], "applied", "{replay}");
    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}
