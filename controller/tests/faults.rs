//! Faults injected into Kubernetes mode, with real processes only: the leading controller
//! SIGKILLed at seeded pseudo-random instants while approvals stream in, and a private API server
//! that hangs, is killed with its etcd and is started again under a running controller. What
//! must hold: every approved proposal ends `Applied` with its receipt, each row is written exactly
//! once, a leader cut off from the API server stops leading before its Lease runs out, and the
//! controller takes up new work again on its own.
//!
//! `SYNAPSOR_CONTROLLER_KILL_APPROVALS` sets how many proposals the kill test approves (40 by
//! default, 500 in the long profile); `SYNAPSOR_CONTROLLER_KILL_SEED` replays a kill schedule.
#![allow(clippy::unwrap_used)]

mod k8s_support;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_support::*;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::Value;
use sqlx::Connection;
use synapsor_controller::leader::LeaseSettings;
use synapsor_core::context::{Clock, SystemClock};
use synapsor_kube::review::{effective_phase, recorded_approvals};
use synapsor_kube::{ANNOTATION_APPROVE, Phase, Proposal, object_name};

/// The leading replica's identity. A restart keeps it, as a container restarted in its pod
/// does, so the new process renews the Lease at once instead of waiting out 15 s.
const LEADER: &str = "leader";
/// A second replica that serves the admission webhook and stays standby: approvals go on
/// while the leader is down, so a restarted leader meets a backlog.
const WEBHOOK_REPLICA: &str = "webhook";
/// How long a leader runs before the next SIGKILL, in milliseconds (drawn uniformly).
const LEADER_UPTIME_MS: (u64, u64) = (250, 2500);
/// SIGKILLs at the least, also when the approvals are all in before that (the rest then hit
/// the backlog being applied).
const MIN_KILLS: u32 = 4;
/// Proposals one `kubectl annotate` approves at most (drawn uniformly from 1), for small runs;
/// larger runs take larger batches so that approving stays within a minute or so.
const MAX_BATCH: u64 = 8;
/// The log line of a replica that found a proposal in `Applying`, left by a killed one.
const RESUMED: &str = "resuming an apply that was interrupted";

/// SplitMix64: a small seeded generator, so a failing kill schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.between(0, u64::try_from(i).unwrap())).unwrap();
            items.swap(i, j);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a whole number"))
    })
}

/// The seeded rows of the kill test, one per proposal.
fn kill_row(i: usize) -> String {
    format!("KILL-{i:05}")
}

/// The fee proposed on row `i`: a different value per row, inside the capability's bounds.
fn kill_fee(i: usize) -> i64 {
    1000 + i64::try_from(i % 9000).unwrap()
}

/// One proposal of the kill test and what it must leave in the source.
struct Planned {
    id: String,
    row: String,
    fee: i64,
}

/// Starts the leader on a webhook port of its own (the API server calls the webhook replica's),
/// and waits until it is ready and holds the Lease.
async fn start_leader(fx: &mut Fixture) -> usize {
    let webhook_port = fx.webhook_port;
    fx.webhook_port = free_port();
    let i = fx.start_controller(LEADER).await;
    fx.webhook_port = webhook_port;
    let deadline = Instant::now() + Duration::from_secs(30);
    while fx.controllers[i].metric("synapsor_controller_leader").await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the restarted leader did not take its Lease back in 30 s:\n{}",
            fx.controllers[i].log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    i
}

/// Approves every proposal in `queue` as the first approver with `kubectl annotate`, a random
/// batch of them per call with a random pause between calls, as people approving over time.
/// What a call did not confirm is looked up and, unless the approval is recorded, tried again.
async fn approve_in_batches(
    admin_kubeconfig: PathBuf,
    ns: String,
    proposals: Api<Proposal>,
    mut queue: VecDeque<String>,
    mut rng: Rng,
    deadline: Instant,
) -> usize {
    let max_batch = (u64::try_from(queue.len()).unwrap() / 25).clamp(MAX_BATCH, 4 * MAX_BATCH);
    let mut calls = 0;
    while !queue.is_empty() {
        assert!(
            Instant::now() < deadline,
            "approvals not done before the deadline; {} left: {:?}",
            queue.len(),
            queue
        );
        let size = usize::try_from(rng.between(1, max_batch)).unwrap().min(queue.len());
        let batch: Vec<String> = queue.drain(..size).collect();
        let out = tokio::process::Command::new(kubectl_bin())
            .env("KUBECONFIG", &admin_kubeconfig)
            .args(["-n", &ns, "--as", APPROVERS[0], "annotate"])
            .args(batch.iter().map(|name| format!("proposal/{name}")))
            .arg(format!("{ANNOTATION_APPROVE}=true"))
            .output()
            .await
            .unwrap();
        calls += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut refused = 0;
        for name in batch {
            if stdout.contains(&format!("/{name} annotated")) {
                continue;
            }
            let p = proposals.get(&name).await.unwrap();
            if !recorded_approvals(&p).iter().any(|a| a.user == APPROVERS[0]) {
                eprintln!(
                    "approval of {name} not admitted, trying again: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                queue.push_back(name);
                refused += 1;
            }
        }
        let pause = if refused > 0 { 300 } else { rng.between(0, 500) };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    calls
}

/// Many approvals, and the leading controller SIGKILLed at seeded random instants throughout:
/// between status writes, inside the source transaction, after its commit. Each time a new
/// process takes over with the same identity and ledger (a container restart) and the standby
/// replica keeps admitting approvals meanwhile. Afterwards every proposal is `Applied` with its
/// receipt in status, the source's receipts table has exactly one `applied` row per proposal,
/// and every row was written exactly once, with its own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_sigkilled_at_random_instants_applies_every_approval_exactly_once() {
    let n = usize::try_from(env_u64("SYNAPSOR_CONTROLLER_KILL_APPROVALS").unwrap_or(40)).unwrap();
    assert!(n > 0, "SYNAPSOR_CONTROLLER_KILL_APPROVALS must be at least 1");
    let seed = env_u64("SYNAPSOR_CONTROLLER_KILL_SEED")
        .unwrap_or_else(|| u64::try_from(SystemClock.now_ms()).unwrap() ^ u64::from(std::process::id()));
    let Some(mut fx) = Fixture::new(1).await else { return };
    // Printed only once the test really runs; timing varies, the schedule replays.
    eprintln!("controller kill schedule: seed {seed} (replay with SYNAPSOR_CONTROLLER_KILL_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90 + u64::try_from(n).unwrap() * 2 / 5);

    fx.db
        .exec(&format!(
            "INSERT INTO invoices (id, tenant_id, late_fee_cents, updated_at) \
             SELECT 'KILL-' || lpad(g::text, 5, '0'), 'acme', 100, '2026-06-21T10:00:00Z' \
             FROM generate_series(1, {n}) AS g"
        ))
        .await;

    // The leader first, so it holds the Lease; then the replica the webhook points at.
    let mut leader = start_leader(&mut fx).await;
    fx.start_controller(WEBHOOK_REPLICA).await;

    let mcp = fx.sidecar().await;
    let mut planned: BTreeMap<String, Planned> = BTreeMap::new();
    for i in 1..=n {
        let (row, fee) = (kill_row(i), kill_fee(i));
        let env = propose(&mcp, &row, fee).await;
        assert_eq!(env["ok"], true, "{env}");
        let id = env["proposal"]["id"].as_str().unwrap().to_owned();
        planned.insert(object_name(&id), Planned { id, row, fee });
    }
    mcp.cancel().await.unwrap();
    let proposals = fx.proposals();
    loop {
        let list = proposals.list(&ListParams::default()).await.unwrap();
        let pending = list
            .items
            .iter()
            .filter(|p| effective_phase(p) == Phase::Pending && p.status.is_some())
            .count();
        if pending == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {pending} of {n} proposals became Pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    eprintln!(
        "controller kill run: {n} proposals made through the sidecar and Pending after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut order: Vec<String> = planned.keys().cloned().collect();
    rng.shuffle(&mut order);
    let approving_since = Instant::now();
    let approver = tokio::spawn(approve_in_batches(
        fx.kubeconfig.clone(),
        fx.ns.clone(),
        proposals.clone(),
        order.into(),
        Rng(rng.next()),
        deadline,
    ));

    // The killer: while approvals are coming in (and at least MIN_KILLS times), the leader runs
    // for a random while, is SIGKILLed and replaced. Then the last one drains the rest.
    let mut kills = 0;
    let mut leader_logs = String::new();
    loop {
        tokio::time::sleep(Duration::from_millis(
            rng.between(LEADER_UPTIME_MS.0, LEADER_UPTIME_MS.1),
        ))
        .await;
        if approver.is_finished() && kills >= MIN_KILLS {
            break;
        }
        fx.controllers[leader].kill();
        kills += 1;
        // The same identity writes to the same log file: keep what this process wrote.
        leader_logs.push_str(&fx.controllers[leader].log_text());
        leader = start_leader(&mut fx).await;
    }
    let calls = approver.await.unwrap();
    eprintln!(
        "controller kill run: {n} approvals admitted in {:.1} s, {kills} SIGKILLs meanwhile",
        approving_since.elapsed().as_secs_f64()
    );

    // The last leader drains whatever is left.
    loop {
        let left = unfinished(&proposals).await;
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "{} of {n} proposals not finished by the deadline ({kills} kills): {left:#?}\nlast leader's log:\n{}",
                left.len(),
                fx.controllers[leader].log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = approving_since.elapsed();
    leader_logs.push_str(&fx.controllers[leader].log_text());

    // Status: Applied, with the receipt of the write: also when a killed leader committed it and
    // the next one found it in the receipts table (then with a `recovered` check), so that no
    // proposal loses the authorship of its write.
    let mut receipt_keys: BTreeMap<String, String> = BTreeMap::new();
    let (mut applied, mut recovered) = (0, 0);
    for p in proposals.list(&ListParams::default()).await.unwrap().items {
        let name = p.name_any();
        let plan = planned
            .get(&name)
            .unwrap_or_else(|| panic!("{name} was never proposed"));
        let st = p.status.clone().unwrap_or_default();
        assert_eq!(st.phase, Some(Phase::Applied), "{name}: {:?}", st.message);
        let receipt = st
            .receipt
            .unwrap_or_else(|| panic!("{name} is Applied without a receipt"));
        match receipt["status"].as_str() {
            Some("applied") => {
                applied += 1;
                assert_eq!(receipt["rows_affected"], 1, "{name}: {receipt}");
                let checks = receipt["checks"].as_array().cloned().unwrap_or_default();
                if checks.iter().any(|c| c["name"] == "recovered") {
                    recovered += 1;
                }
            }
            _ => panic!("{name}: Applied with the receipt {receipt} (its write not attributed)"),
        }
        assert_eq!(receipt["proposal_id"], plan.id.as_str(), "{name}: {receipt}");
        receipt_keys.insert(
            plan.id.clone(),
            receipt["idempotency_key"].as_str().unwrap_or_default().to_owned(),
        );
    }
    assert_eq!(receipt_keys.len(), n, "every proposal exists once");

    // The source: one claimed-and-completed receipt per proposal, under the key in status.
    let mut db = sqlx::PgConnection::connect(&fx.db.admin_url).await.unwrap();
    let source_receipts: Vec<(String, String, String)> =
        sqlx::query_as("SELECT proposal_id, idempotency_key, status FROM synapsor_writeback_receipts")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(
        source_receipts.len(),
        n,
        "one source receipt per proposal: {source_receipts:#?}"
    );
    for (proposal_id, key, status) in &source_receipts {
        assert_eq!(status, "applied", "{proposal_id}");
        assert_eq!(
            receipt_keys.get(proposal_id),
            Some(key),
            "the source receipt of {proposal_id} is the one in its status"
        );
    }

    // Every row written exactly once (the trigger counts), with its own proposal's value.
    let rows: BTreeMap<String, (i64, i32)> = sqlx::query_as::<_, (String, i64, i32)>(
        "SELECT id, late_fee_cents, apply_count FROM invoices WHERE id LIKE 'KILL-%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, fee, writes)| (id, (fee, writes)))
    .collect();
    let written_twice = rows.values().filter(|(_, writes)| *writes > 1).count();
    for plan in planned.values() {
        let (fee, writes) = rows[&plan.row];
        assert_eq!(writes, 1, "{} written {writes} times", plan.row);
        assert_eq!(fee, plan.fee, "{}", plan.row);
    }
    assert_eq!(
        fx.db
            .int("SELECT coalesce(sum(apply_count), 0) FROM invoices WHERE id NOT LIKE 'KILL-%'")
            .await,
        0,
        "no other row was touched"
    );

    let resumed = leader_logs.matches(RESUMED).count();
    eprintln!(
        "controller kills: {n} approvals ({calls} kubectl calls), {kills} SIGKILLs of the leader \
         ({resumed} interrupted applies resumed), all {n} Applied once ({applied} applied, \
         {recovered} of them recovered from the receipts table), {written_twice} written twice, drained in {:.1} s \
         (seed {seed})",
        drained.as_secs_f64()
    );
    fx.cleanup().await;
}

/// An etcd and a kube-apiserver of one test's own (`scripts/k8s.sh` in a temporary state dir,
/// on free loopback ports), so the test may kill them without disturbing the shared one.
struct PrivateApiServer {
    state: tempfile::TempDir,
}

impl PrivateApiServer {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/k8s.sh")
    }

    fn command(state: &Path, verb: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(Self::script())
            .arg(verb)
            .env("SYNAPSOR_K8S_STATE_DIR", state)
            // Never a minutes-long build inside a test: the shared instance has the binaries.
            .env("SYNAPSOR_K8S_BUILD", "0")
            .env_remove("KUBECONFIG")
            .env_remove("SYNAPSOR_K8S_USE_KUBECONFIG")
            .stdin(std::process::Stdio::null());
        cmd
    }

    async fn run(state: &Path, verb: &str) {
        let out = tokio::process::Command::from(Self::command(state, verb))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/k8s.sh {verb} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `None` (the test is skipped) when it cannot start, e.g. without a kube-apiserver binary
    /// on a machine whose tests use another cluster; under `SYNAPSOR_REQUIRE_K8S=1` that fails.
    async fn start() -> Option<PrivateApiServer> {
        let state = tempfile::tempdir().unwrap();
        let out = tokio::process::Command::from(Self::command(state.path(), "start"))
            .output()
            .await
            .unwrap();
        if out.status.success() {
            return Some(PrivateApiServer { state });
        }
        let why = String::from_utf8_lossy(&out.stderr);
        if std::env::var("SYNAPSOR_REQUIRE_K8S").as_deref() == Ok("1") {
            panic!("scripts/k8s.sh could not start a private API server (SYNAPSOR_REQUIRE_K8S=1):\n{why}");
        }
        eprintln!("skipping: scripts/k8s.sh could not start a private API server:\n{why}");
        None
    }

    fn kubeconfig(&self) -> PathBuf {
        self.state.path().join("admin.kubeconfig")
    }

    /// The pid the script recorded for `name`; empty when there is none.
    fn pid(&self, name: &str) -> String {
        let pid = std::fs::read_to_string(self.state.path().join(format!("{name}.pid"))).unwrap_or_default();
        pid.trim().to_owned()
    }

    /// Sends `signal` (`STOP`, `KILL`, ...) to the script's `name` (`kube-apiserver`, `etcd`).
    fn signal(&self, name: &str, signal: &str) {
        let pid = self.pid(name);
        assert!(!pid.is_empty(), "no pid recorded for {name}");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid} ({name})");
    }

    /// SIGKILLs kube-apiserver and etcd and waits until both are gone.
    async fn kill(&self) {
        for name in ["kube-apiserver", "etcd"] {
            let pid = self.pid(name);
            self.signal(name, "KILL");
            let deadline = Instant::now() + Duration::from_secs(10);
            while process_lives(&pid) {
                assert!(Instant::now() < deadline, "{name} (pid {pid}) survived SIGKILL");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Starts both again on the same ports with the same etcd data.
    async fn restart(&self) {
        Self::run(self.state.path(), "restart").await;
    }
}

impl Drop for PrivateApiServer {
    fn drop(&mut self) {
        // A stopped (SIGSTOP) server would only act on the script's SIGTERM once continued.
        let _ = std::process::Command::new("kill")
            .args(["-CONT", self.pid("kube-apiserver").as_str()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Self::command(self.state.path(), "stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// True while `pid` runs: not gone and not a zombie (the servers are daemons whose parent is
/// init, which may reap them late).
fn process_lives(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .unwrap_or_default();
        !(state.starts_with('Z') || state.starts_with('X'))
    })
}

fn receipt_status(p: &Proposal) -> Value {
    p.status.as_ref().and_then(|s| s.receipt.clone()).unwrap_or_default()["status"].clone()
}

/// Polls the controller's `synapsor_controller_leader` gauge until it is `want`; returns how
/// long that took, or `None` after `limit`. Only the controller's own HTTP port is asked, so
/// this works while the API server does not answer.
async fn leader_gauge_becomes(controller: &Controller, want: f64, limit: Duration) -> Option<Duration> {
    let since = Instant::now();
    while since.elapsed() < limit {
        if controller.metric("synapsor_controller_leader").await == want {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The API server under a running controller: first it hangs (SIGSTOP: connections are
/// accepted, nothing is answered), then it and etcd are SIGKILLed, stay down a few seconds and
/// start again with the same data. The controller is designed to live through this, not to
/// exit: its Lease loop steps down when it could not renew for the renew deadline (10 s), before
/// its 15 s Lease could pass to another replica, and campaigns again; its watch retries. So the
/// same process, never restarted, must step down during the hang, lead again once the API
/// server answers, and apply a proposal made afterwards exactly once, while the proposal applied
/// before the outage is not applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_an_api_server_and_etcd_restart_and_applies_what_comes_after() {
    /// How long the API server and etcd stay down before they are started again.
    const DOWN: Duration = Duration::from_secs(3);
    if kubeconfig().is_none() {
        return;
    }
    if std::env::var("SYNAPSOR_K8S_USE_KUBECONFIG").as_deref() == Ok("1") {
        eprintln!("skipping: the cluster in KUBECONFIG is not ours to restart (SYNAPSOR_K8S_USE_KUBECONFIG=1)");
        return;
    }
    // The controller's Lease timings: it renews every `retry_period`, steps down once it could
    // not renew for `renew_deadline`; another replica may take over a `lease_duration` old Lease.
    let lease = LeaseSettings::new(String::new(), String::new(), String::new());
    let (renew_deadline, lease_duration, retry) = (lease.renew_deadline, lease.lease_duration, lease.retry_period);
    let Some(api) = PrivateApiServer::start().await else {
        return;
    };
    let Some(mut fx) = Fixture::with_kubeconfig(1, &api.kubeconfig()).await else {
        return;
    };
    fx.start_controller("c1").await;
    let pid = fx.controllers[0].child.as_ref().unwrap().id();
    let mcp = fx.sidecar().await;

    let env = propose(&mcp, "INV-1", 2100).await;
    assert_eq!(env["ok"], true, "{env}");
    let before = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&before, Phase::Pending, 20).await;
    let out = fx.approve(APPROVERS[0], &before);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fx.wait_phase(&before, Phase::Applied, 30).await;
    assert_eq!(
        leader_gauge_becomes(&fx.controllers[0], 1.0, Duration::from_secs(5))
            .await
            .map(|_| ()),
        Some(()),
        "c1 leads"
    );

    // 1. The API server hangs. The last renewal was at most `retry` ago, so the leader must
    //    have stepped down before `lease_duration - retry`: later, another replica could
    //    already hold the Lease.
    let outage_began = Instant::now();
    api.signal("kube-apiserver", "STOP");
    let step_down_limit = lease_duration - retry;
    let Some(stepped_down) = leader_gauge_becomes(&fx.controllers[0], 0.0, step_down_limit).await else {
        api.signal("kube-apiserver", "CONT");
        panic!(
            "the controller still said it leads {} s into an API server hang, with its Lease \
             (renewed at most {} s before the hang, {} s long) run out or about to: another \
             replica could take over while it still applies. Its log:\n{}",
            step_down_limit.as_secs(),
            retry.as_secs(),
            lease_duration.as_secs(),
            fx.controllers[0].log_text()
        );
    };
    // Not too early either: renewals come every `retry` (and a little more), so the last one
    // was at most about that long before the hang.
    assert!(
        stepped_down + retry + Duration::from_secs(1) >= renew_deadline,
        "stepped down after {stepped_down:?}, before the renew deadline"
    );

    // 2. Killed outright, etcd with it; down a while; started again on the same data.
    api.kill().await;
    tokio::time::sleep(DOWN).await;
    let restarting = Instant::now();
    api.restart().await;
    let back = Instant::now();
    let restart_took = back - restarting;
    let outage = back - outage_began;
    assert!(
        fx.controllers[0].child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the controller exited while the API server was down:\n{}",
        fx.controllers[0].log_text()
    );
    let Some(leads_again) = leader_gauge_becomes(&fx.controllers[0], 1.0, Duration::from_secs(60)).await else {
        panic!(
            "the controller did not lead again within 60 s of the API server's return:\n{}",
            fx.controllers[0].log_text()
        );
    };

    // 3. A proposal made after the restart, through the same sidecar, applied once.
    let env = propose(&mcp, "INV-2", 2200).await;
    assert_eq!(
        env["ok"], true,
        "the sidecar could not publish after the restart: {env}"
    );
    let after = object_name(env["proposal"]["id"].as_str().unwrap());
    fx.wait_phase(&after, Phase::Pending, 60).await;
    let out = fx.approve(APPROVERS[0], &after);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let approved = Instant::now();
    let p = fx.wait_phase(&after, Phase::Applied, 60).await;
    let after_approval = approved.elapsed();
    let after_back = back.elapsed();
    assert_eq!(receipt_status(&p), "applied");

    // The same process did both, and nothing was written twice.
    let controller = &mut fx.controllers[0];
    assert!(
        controller.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the controller exited:\n{}",
        controller.log_text()
    );
    assert_eq!(controller.child.as_ref().unwrap().id(), pid);
    assert_eq!(
        controller
            .metric("synapsor_proposal_applies_total{outcome=\"applied\"}")
            .await,
        2.0
    );
    // Nothing was interrupted, so no apply may have run a second time (it would end
    // already_applied and replace the receipt of the write in status).
    assert_eq!(
        controller
            .metric("synapsor_proposal_applies_total{outcome=\"already_applied\"}")
            .await,
        0.0,
        "{}",
        controller.log_text()
    );
    let p = fx.proposals().get(&before).await.unwrap();
    assert_eq!(receipt_status(&p), "applied", "the earlier proposal is untouched");
    assert_eq!((fx.db.fee("INV-1").await, fx.db.writes("INV-1").await), (2100, 1));
    assert_eq!((fx.db.fee("INV-2").await, fx.db.writes("INV-2").await), (2200, 1));
    assert_eq!(fx.db.source_receipts().await, 2);

    eprintln!(
        "api restart: kube-apiserver hung (SIGSTOP), the leader stepped down {:.1} s in; then it \
         and etcd SIGKILLed, down {:.1} s in all (restart {:.1} s); the same controller process \
         led again {:.1} s after the API answered and applied a proposal made afterwards {:.1} s \
         after its approval ({:.1} s after the API answered); 2 proposals, each written once",
        stepped_down.as_secs_f64(),
        outage.as_secs_f64(),
        restart_took.as_secs_f64(),
        leads_again.as_secs_f64(),
        after_approval.as_secs_f64(),
        after_back.as_secs_f64()
    );
    mcp.cancel().await.unwrap();
    fx.cleanup().await;
}
