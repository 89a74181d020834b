//! `synapsor-runner ui --kubernetes`, end to end, against a real kube-apiserver (scripts/k8s.sh,
//! or a kind cluster through `KUBECONFIG`) and a real PostgreSQL: the sidecar proposes over MCP,
//! a reviewer opens the review UI with their own kubeconfig in a real headless Chromium, approves,
//! and the real `synapsor-controller` applies; the page follows live (server-sent events from a
//! watch) until it shows `Applied` with the receipt. Also: a rejection with a reason, the
//! admission webhook's refusal shown verbatim to a user without the verb `approve`, and a page
//! that went stale while the person was deciding. And `kubectl synapsor approve` then `wait`,
//! which returns once the controller (not the test) has made the proposal `Applied`.
//!
//! Skips without `KUBECONFIG`, the databases or the browser unless the matching
//! `SYNAPSOR_REQUIRE_*` is set (scripts/test.sh sets them all).
#![allow(clippy::unwrap_used)]

mod k8s_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use k8s_support::*;
use synapsor_kube::{Phase, object_name};
use synapsor_testdb::browser::Browser;
use thirtyfour::prelude::*;

/// `synapsor-runner ui --kubernetes` as `kubeconfig`'s user, killed on drop.
struct Ui {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    start_url: String,
    /// The first lines it printed (what it reviews).
    banner: String,
    /// Kept open: the UI must never see its stdout closed.
    _stdout: BufReader<ChildStdout>,
}

impl Ui {
    fn start(kubeconfig: &Path, namespace: &str) -> Ui {
        let mut child = Command::new(bin("synapsor-runner"))
            .args(["ui", "--kubernetes", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["-n", namespace])
            // Neither a config, a ledger nor the environment's cluster is used.
            .env_remove("KUBECONFIG")
            .env("SYNAPSOR_CONFIG", "/nonexistent/synapsor.runner.json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("ui exited ({status}) without printing its address; it printed {banner:?}");
            }
            if line.starts_with("http://") {
                break;
            }
            banner.push_str(&line);
        }
        let start_url = line.trim().to_owned();
        let base = start_url.split_once("/?token=").unwrap().0.to_owned();
        Ui {
            child,
            base,
            start_url,
            banner,
            _stdout: stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `docs/review/` with SYNAPSOR_UPDATE_SCREENSHOTS=1, else the fixture's
/// temporary folder (they are taken either way, so the step cannot rot).
fn screenshot_dir(fx: &Fixture) -> std::path::PathBuf {
    if std::env::var("SYNAPSOR_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/review")
    } else {
        fx.dir.path().join("screenshots")
    }
}

async fn propose_named(mcp: &rmcp::service::RunningService<rmcp::RoleClient, ()>, invoice: &str, fee: i64) -> String {
    let env = propose(mcp, invoice, fee).await;
    assert_eq!(env["ok"], true, "{env}");
    object_name(env["proposal"]["id"].as_str().unwrap())
}

/// A namespace with the webhook and RBAC, a running controller, a browser and the sidecar's MCP
/// client; `None` (skip) when the cluster, the database or the browser is missing.
async fn start() -> Option<(Fixture, Browser, rmcp::service::RunningService<rmcp::RoleClient, ()>)> {
    let mut fx = Fixture::new(1).await?;
    let Some(b) = Browser::start().await else {
        fx.cleanup().await;
        return None;
    };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;
    Some((fx, b, mcp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_in_the_browser_and_sees_the_controller_apply_it() {
    let Some((fx, b, mcp)) = start().await else { return };
    let applied = propose_named(&mcp, "INV-1", 2500).await;
    let rejected = propose_named(&mcp, "INV-2", 100).await;
    fx.wait_phase(&applied, Phase::Pending, 20).await;
    fx.wait_phase(&rejected, Phase::Pending, 20).await;

    let ui = Ui::start(&fx.user_kubeconfig(APPROVERS[0]), &fx.ns);
    assert!(
        ui.banner.contains(&format!("proposals in namespace {}", fx.ns)),
        "{}",
        ui.banner
    );
    b.d().goto(&ui.start_url).await.unwrap();
    let waiting = b.text_of("#waiting").await;
    assert!(waiting.contains(&applied) && waiting.contains(&rejected), "{waiting}");
    assert!(waiting.contains("late_fee_cents: 5500 -> 2500"), "{waiting}");
    b.screenshot(&screenshot_dir(&fx).join("cluster-list.png")).await;

    // The proposal as the controller will apply it: diff, guards, evidence, who decides.
    b.submit(&format!("a[href='/proposals/{applied}']")).await;
    assert_eq!(b.text_of("#proposal-name").await, applied);
    assert_eq!(b.text_of("#phase").await, "Pending");
    let diff = b.text_of("#diff").await;
    assert!(diff.contains("late_fee_cents") && diff.contains("2500"), "{diff}");
    assert!(b.text_of("#guards").await.contains("tenant_id is still acme"));
    assert!(b.text_of("#evidence").await.contains("INV-1"));
    assert!(b.text_of("#acting-as").await.starts_with(APPROVERS[0]));
    assert!(
        b.text_of("#apply-note")
            .await
            .contains("synapsor-controller applies it")
    );
    // An approval annotation carries no note, so the form offers none.
    assert!(
        b.d()
            .find_all(By::Css("#approve-form textarea"))
            .await
            .unwrap()
            .is_empty()
    );
    b.screenshot(&screenshot_dir(&fx).join("cluster-proposal.png")).await;

    // Approve: the annotation goes to the API server as alice, the webhook records her, the
    // controller applies, and the open page follows on its own to Applied with the receipt.
    b.click("#approve-form input[name=confirm]").await;
    b.submit("#approve").await;
    assert!(b.text_of("#notice").await.starts_with("Approved"));
    b.wait_for_text("#phase", "Applied", Duration::from_secs(30)).await;
    let receipt = b.text_of("#receipt").await;
    assert!(receipt.contains("receipt hash"), "{receipt}");
    assert!(
        b.text_of("#decisions")
            .await
            .contains(&format!("approved by {}", APPROVERS[0]))
    );
    assert!(b.d().find_all(By::Css("#decide")).await.unwrap().is_empty());
    assert_eq!(fx.db.fee("INV-1").await, 2500);
    assert_eq!(fx.db.writes("INV-1").await, 1);

    // Reject with a reason: Rejected, with the reason and the reviewer recorded; nothing written.
    b.d().goto(ui.url(&format!("/proposals/{rejected}"))).await.unwrap();
    b.d()
        .find(By::Css("#reject-form textarea[name=reason]"))
        .await
        .unwrap()
        .send_keys("a first reminder carries no fee")
        .await
        .unwrap();
    b.click("#reject-form input[name=confirm]").await;
    b.submit("#reject").await;
    fx.wait_phase(&rejected, Phase::Rejected, 20).await;
    b.wait_for_text("#phase", "Rejected", Duration::from_secs(10)).await;
    let decisions = b.text_of("#decisions").await;
    assert!(decisions.contains("a first reminder carries no fee"), "{decisions}");
    assert_eq!(fx.db.fee("INV-2").await, 700, "a rejection writes nothing");
    b.quit().await;
    drop(ui);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refusal_is_shown_verbatim_and_a_stale_page_is_refused() {
    let Some((fx, b, mcp)) = start().await else { return };
    let name = propose_named(&mcp, "INV-3", 300).await;
    fx.wait_phase(&name, Phase::Pending, 20).await;

    // bob may patch proposals, but RBAC does not give him the verb `approve`: the page offers
    // the form (only the webhook knows), and shows the webhook's own words on submit.
    let as_editor = Ui::start(&fx.user_kubeconfig(EDITOR), &fx.ns);
    b.d().goto(&as_editor.start_url).await.unwrap();
    b.d().goto(as_editor.url(&format!("/proposals/{name}"))).await.unwrap();
    b.click("#approve-form input[name=confirm]").await;
    b.submit("#approve").await;
    let msg = b.text_of("#message").await;
    assert!(msg.contains("DECISION_REFUSED"), "{msg}");
    assert!(msg.contains("RBAC does not allow the verb \"approve\""), "{msg}");
    drop(as_editor);
    let p = fx.wait_phase(&name, Phase::Pending, 5).await;
    assert!(p.status.unwrap().approvals_summary.as_deref() == Some("0/1"));

    // alice is mid-decision (the confirmation ticked) when the proposal changes elsewhere: the
    // live page says so instead of reloading under her, and her approval is refused as stale.
    let ui = Ui::start(&fx.user_kubeconfig(APPROVERS[0]), &fx.ns);
    b.d().goto(&ui.start_url).await.unwrap();
    b.d().goto(ui.url(&format!("/proposals/{name}"))).await.unwrap();
    b.click("#approve-form input[name=confirm]").await;
    let out = fx.kubectl(None, &["label", &format!("proposal/{name}"), "team=billing"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b.wait_for_text("#live-notice", "changed since you loaded it", Duration::from_secs(15))
        .await;
    b.submit("#approve").await;
    assert_eq!(b.text_of("h1").await, "Changed since you loaded it");
    assert!(b.text_of("#message").await.contains("UI_PROPOSAL_CHANGED"));
    let p = fx.wait_phase(&name, Phase::Pending, 5).await;
    assert!(p.status.unwrap().approvals_summary.as_deref() == Some("0/1"));

    // Back on the reloaded page, the same approval goes through.
    b.submit("#message a").await;
    b.click("#approve-form input[name=confirm]").await;
    b.submit("#approve").await;
    b.wait_for_text("#phase", "Applied", Duration::from_secs(30)).await;
    assert_eq!(fx.db.fee("INV-3").await, 300);
    b.quit().await;
    drop(ui);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_synapsor_approves_and_wait_returns_once_the_controller_applied_it() {
    let Some(mut fx) = Fixture::new(1).await else { return };
    fx.start_controller("c1").await;
    let mcp = fx.sidecar().await;
    let name = propose_named(&mcp, "INV-4", 400).await;
    fx.wait_phase(&name, Phase::Pending, 20).await;
    let kubeconfig = fx.user_kubeconfig(APPROVERS[1]);
    let plugin = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(bin("kubectl-synapsor"));
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", &fx.ns])
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };

    // Waiting from before the approval to the controller's Applied, with nothing set by hand.
    let waiter = plugin(&["wait", &name, "--timeout", "60s"]).spawn().unwrap();
    let out = plugin(&["approve", &name, "--yes"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tokio::time::timeout(Duration::from_secs(70), waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, format!("proposal {name} is Applied (receipt: applied)\n"));
    assert_eq!((fx.db.fee("INV-4").await, fx.db.writes("INV-4").await), (400, 1));
    let p = fx.wait_phase(&name, Phase::Applied, 5).await;
    assert!(
        p.status.unwrap().message.unwrap_or_default().contains("applied"),
        "the controller's own status"
    );
    fx.cleanup().await;
}
