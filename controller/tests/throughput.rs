//! Throughput of Kubernetes mode on the real API server with PostgreSQL, with real processes (the
//! controller serving the webhook and leading, the sidecar making the proposals):
//!
//! - single approvals: K proposals approved one at a time; for each, the time from the approval
//!   write (the annotation patch `kubectl annotate` sends, as the approver, through the admission
//!   webhook) to the moment a watch sees the proposal `Applied`; p50 and p99;
//! - a drain: N proposals made first and `Pending`, then all approved at once (as many approval
//!   writes in flight as the API server takes well); the time from the first approval write to
//!   the last `Applied` seen.
//!
//! What it asserts holds however fast the machine is: no duplicate write (the source's receipts
//! table has one row per proposal, and every target row was written exactly once, with its own
//! proposal's value), every proposal in exactly one terminal phase (`Applied`, with its receipt),
//! no apply run twice. It prints the timings and never asserts them: speed targets belong to the
//! benchmark (`synapsor-bench --controller-report`), which reads the JSON this test writes to the
//! file `SYNAPSOR_BENCH_CONTROLLER_OUT` names.
//!
//! Knobs (env): `SYNAPSOR_CONTROLLER_SINGLE_APPROVALS` (K, 20), `SYNAPSOR_CONTROLLER_DRAIN_APPROVALS`
//! (N, 100; the benchmark runs 1000), `SYNAPSOR_CONTROLLER_BIN` and `SYNAPSOR_RUNNER_BIN` (the
//! binaries run, e.g. release builds; by default the debug builds of this workspace). The
//! controller's `SYNAPSOR_MAX_CONCURRENT_APPLIES`, `SYNAPSOR_KUBE_API_QPS` and
//! `SYNAPSOR_KUBE_API_BURST`, when set, are passed to it as flags and reported; otherwise its
//! defaults are.
#![allow(clippy::unwrap_used)]

mod k8s_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_support::*;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use sqlx::Connection;
use synapsor_controller::cli::{DEFAULT_KUBE_API_BURST, DEFAULT_KUBE_API_QPS, DEFAULT_MAX_CONCURRENT_APPLIES};
use synapsor_kube::review::{effective_phase, is_terminal, recorded_approvals};
use synapsor_kube::{ANNOTATION_APPROVE, Phase, Proposal, object_name};
use synapsor_testdb::Server;

/// Approval writes in flight at once during the drain: enough to keep the API server, the
/// webhook and the controller busy on two cores without queueing the writes inside the API
/// server's own in-flight limit (200 mutating requests by default).
const APPROVALS_IN_FLIGHT: usize = 32;
/// Tool calls to the sidecar in flight while the proposals are made (setup, not measured).
const PROPOSALS_IN_FLIGHT: usize = 8;
/// Tries of one approval write that the API server refused (e.g. its webhook call timed out).
const APPROVAL_TRIES: u32 = 5;

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid number"))
    })
}

/// One proposal of this test and what it must leave in the source.
#[derive(Debug, Clone)]
struct Planned {
    id: String,
    row: String,
    fee: i64,
}

fn row(i: usize) -> String {
    format!("TP-{i:05}")
}

/// A different fee per row, inside the capability's bounds (0..=10000).
fn fee(i: usize) -> i64 {
    1000 + i64::try_from(i % 9000).unwrap()
}

/// What the test's own watch saw of one proposal.
#[derive(Debug, Default)]
struct Seen {
    phase: Option<Phase>,
    /// Each terminal phase seen, with when it was first seen.
    terminal: Vec<(Phase, Instant)>,
}

/// The proposals of the namespace as a watch of the test sees them, with the instant each event
/// arrived; `changed` ticks on every event.
#[derive(Debug, Clone)]
struct Observer {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    changed: tokio::sync::watch::Receiver<u64>,
}

impl Observer {
    fn start(api: Api<Proposal>) -> (Observer, tokio::task::JoinHandle<()>) {
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
        let (tx, changed) = tokio::sync::watch::channel(0u64);
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut stream = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
                    .boxed();
                loop {
                    match stream.try_next().await {
                        Ok(Some(p)) => {
                            let at = Instant::now();
                            let phase = p.status.as_ref().and_then(|s| s.phase);
                            {
                                let mut seen = seen.lock().unwrap();
                                let s = seen.entry(p.name_any()).or_default();
                                s.phase = phase;
                                if is_terminal(&p) {
                                    let phase = effective_phase(&p);
                                    if !s.terminal.iter().any(|(t, _)| *t == phase) {
                                        s.terminal.push((phase, at));
                                    }
                                }
                            }
                            tx.send_modify(|n| *n += 1);
                        }
                        Ok(None) => return,
                        Err(e) => eprintln!("the test's watch of proposals failed, retrying: {e}"),
                    }
                }
            })
        };
        (Observer { seen, changed }, task)
    }

    /// Waits until `done` holds of what was seen; false when it did not within `limit`.
    async fn wait_until(&mut self, limit: Duration, done: impl Fn(&HashMap<String, Seen>) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.seen.lock().unwrap()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.changed.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// When `name` was first seen `Applied`.
    fn applied_at(&self, name: &str) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.get(name)?
            .terminal
            .iter()
            .find(|(phase, _)| *phase == Phase::Applied)
            .map(|(_, at)| *at)
    }
}

fn terminal_in(seen: &HashMap<String, Seen>, names: &[String]) -> usize {
    names
        .iter()
        .filter(|n| seen.get(*n).is_some_and(|s| !s.terminal.is_empty()))
        .count()
}

/// Approves `name` as the first approver with the merge patch `kubectl annotate` sends. A write
/// the API server refused is tried again unless the approval was recorded anyway.
async fn approve(api: &Api<Proposal>, name: &str) {
    let patch = json!({"metadata": {"annotations": {ANNOTATION_APPROVE: "true"}}});
    for attempt in 1..=APPROVAL_TRIES {
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return,
            Err(e) => {
                let recorded = api
                    .get(name)
                    .await
                    .map(|p| recorded_approvals(&p).iter().any(|a| a.user == APPROVERS[0]))
                    .unwrap_or(false);
                if recorded {
                    return;
                }
                assert!(
                    attempt < APPROVAL_TRIES,
                    "the approval of {name} was refused {APPROVAL_TRIES} times; last: {e}"
                );
                eprintln!("the approval of {name} was refused, trying again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Every sample of the metric family `name` (`name{labels} value` lines), by labels.
async fn metric_family(c: &Controller, name: &str) -> BTreeMap<String, f64> {
    let (_, body) = c.get("/metrics").await.unwrap_or_default();
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The controller's requests to the API server by verb, since `before`.
fn requests_since(now: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> (f64, String) {
    let mut total = 0.0;
    let mut parts = Vec::new();
    for (labels, v) in now {
        let d = v - before.get(labels).copied().unwrap_or(0.0);
        if d > 0.0 {
            total += d;
            let verb = labels.trim_start_matches("{verb=\"").trim_end_matches("\"}");
            parts.push(format!("{verb} {d}"));
        }
    }
    (total, parts.join(", "))
}

/// Deletes what the test made in its namespace, then the namespace itself. The API server of
/// these tests runs no namespace controller, so a deleted namespace would stay `Terminating`
/// with its objects (1,000 proposals and their Events, in the benchmark) in etcd for good: this
/// does that controller's work for the kinds the fixture and the test create, and then releases
/// the namespace's finalizer. Best effort, as `Fixture::cleanup`.
async fn purge_namespace(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Event, Namespace};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::DeleteParams;
    async fn delete_all<K>(client: &kube::Client, ns: &str)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        if let Err(e) = api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
        {
            eprintln!(
                "cleanup: deleting the {} of {ns} failed: {e}",
                K::plural(&Default::default())
            );
        }
    }
    delete_all::<Proposal>(client, ns).await;
    delete_all::<Event>(client, ns).await;
    delete_all::<Lease>(client, ns).await;
    delete_all::<RoleBinding>(client, ns).await;
    delete_all::<Role>(client, ns).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    if let Ok(mut namespace) = namespaces.get(ns).await {
        if let Some(spec) = namespace.spec.as_mut() {
            spec.finalizers = Some(Vec::new());
        }
        if let Err(e) = namespaces
            .replace_subresource("finalize", ns, &kube::api::PostParams::default(), &namespace)
            .await
        {
            eprintln!("cleanup: finalizing the namespace {ns} failed: {e}");
        }
    }
}

/// Drops the test's database and its two roles, which the fixture leaves behind (here with a
/// row and a receipt per proposal). Best effort: a failure is printed, not a test failure.
async fn drop_database(db: &Db) {
    let Some(server_admin) = synapsor_testdb::admin_url(Server::Postgres.admin_var()) else {
        return;
    };
    let name = db
        .admin_url
        .rsplit_once('/')
        .map(|(_, tail)| tail.split('?').next().unwrap_or(tail).to_owned())
        .unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        eprintln!("not dropping a database named {name:?}");
        return;
    }
    let Ok(mut c) = sqlx::PgConnection::connect(&server_admin).await else {
        eprintln!("cannot connect to drop the test database {name}");
        return;
    };
    // One statement at a time: DROP DATABASE cannot run inside the implicit transaction of a
    // multi-statement query.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {name}_r"),
        format!("DROP ROLE IF EXISTS {name}_w"),
    ] {
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut c).await {
            eprintln!("cleanup `{sql}` failed: {e}");
        }
    }
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_one_at_a_time_and_a_drain_are_each_applied_exactly_once() {
    let k: usize = env_number("SYNAPSOR_CONTROLLER_SINGLE_APPROVALS").unwrap_or(20);
    let n: usize = env_number("SYNAPSOR_CONTROLLER_DRAIN_APPROVALS").unwrap_or(100);
    assert!(
        k > 0 && n > 0,
        "both SYNAPSOR_CONTROLLER_SINGLE_APPROVALS and _DRAIN_APPROVALS must be at least 1"
    );
    let max_concurrent_applies: u16 =
        env_number("SYNAPSOR_MAX_CONCURRENT_APPLIES").unwrap_or(DEFAULT_MAX_CONCURRENT_APPLIES);
    let qps: f64 = env_number("SYNAPSOR_KUBE_API_QPS").unwrap_or(DEFAULT_KUBE_API_QPS);
    let burst: u32 = env_number("SYNAPSOR_KUBE_API_BURST").unwrap_or(DEFAULT_KUBE_API_BURST);
    let Some(mut fx) = Fixture::new(1).await else { return };
    let total = k + n;
    // Generous: a slow debug build on a busy machine must fail only on what is wrong.
    let setup_limit = Duration::from_secs(60 + u64::try_from(total).unwrap() / 5);
    let drain_limit = Duration::from_secs(60 + u64::try_from(n).unwrap() / 5);

    fx.db
        .exec(&format!(
            "INSERT INTO invoices (id, tenant_id, late_fee_cents, updated_at) \
             SELECT 'TP-' || lpad(g::text, 5, '0'), 'acme', 100, '2026-06-21T10:00:00Z' \
             FROM generate_series(1, {total}) AS g"
        ))
        .await;
    let settings = [
        "--max-concurrent-applies".to_owned(),
        max_concurrent_applies.to_string(),
        "--kube-api-qps".to_owned(),
        qps.to_string(),
        "--kube-api-burst".to_owned(),
        burst.to_string(),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let c = fx.start_controller_with("c1", &settings).await;

    let proposals = fx.proposals();
    let (mut observer, watch_task) = Observer::start(proposals.clone());
    let approver: Api<Proposal> = Api::namespaced(client_for(&fx.user_kubeconfig(APPROVERS[0])).await, &fx.ns);

    // The proposals, through the sidecar as an agent makes them; all Pending before any approval.
    let made = Instant::now();
    let mcp = fx.sidecar().await;
    let planned: Vec<(String, Planned)> = futures::stream::iter(1..=total)
        .map(|i| {
            let mcp = &mcp;
            async move {
                let (row, fee) = (row(i), fee(i));
                let env = propose(mcp, &row, fee).await;
                assert_eq!(env["ok"], true, "{env}");
                let id = env["proposal"]["id"].as_str().unwrap().to_owned();
                (object_name(&id), Planned { id, row, fee })
            }
        })
        .buffered(PROPOSALS_IN_FLIGHT)
        .collect()
        .await;
    mcp.cancel().await.unwrap();
    let names: Vec<String> = planned.iter().map(|(name, _)| name.clone()).collect();
    let planned: BTreeMap<String, Planned> = planned.into_iter().collect();
    assert_eq!(planned.len(), total, "every tool call made a proposal of its own");
    let all_pending = {
        let names = names.clone();
        observer
            .wait_until(setup_limit, move |seen| {
                names
                    .iter()
                    .all(|n| seen.get(n).is_some_and(|s| s.phase == Some(Phase::Pending)))
            })
            .await
    };
    if !all_pending {
        panic!(
            "not all {total} proposals became Pending in {} s; not yet: {:#?}\ncontroller log:\n{}",
            setup_limit.as_secs(),
            unfinished(&proposals).await,
            fx.controllers[c].log_text()
        );
    }
    eprintln!(
        "throughput: {total} proposals made through the sidecar and Pending in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    let (single, drain) = names.split_at(k);

    // 1. One at a time: the next approval only once the last proposal was seen Applied.
    let mut latencies = Vec::with_capacity(k);
    for name in single {
        let asked = Instant::now();
        approve(&approver, name).await;
        let one = [name.clone()];
        if !observer
            .wait_until(Duration::from_secs(60), move |seen| terminal_in(seen, &one) == 1)
            .await
        {
            panic!(
                "{name} did not end within 60 s of its approval: {:#?}\ncontroller log:\n{}",
                unfinished(&proposals).await,
                fx.controllers[c].log_text()
            );
        }
        let applied = observer
            .applied_at(name)
            .unwrap_or_else(|| panic!("{name} ended but not Applied:\n{}", fx.controllers[c].log_text()));
        latencies.push(applied.duration_since(asked).as_secs_f64() * 1000.0);
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&sorted, 0.50), percentile(&sorted, 0.99));
    eprintln!(
        "throughput: {k} single approvals, approval write to Applied seen: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        sorted.last().copied().unwrap_or(f64::NAN)
    );

    // 2. The drain: every other proposal approved at once.
    let requests_before = metric_family(&fx.controllers[c], "synapsor_kube_api_requests_total").await;
    let started = Instant::now();
    let mut approving = {
        let approver = approver.clone();
        let drain = drain.to_vec();
        tokio::spawn(async move {
            futures::stream::iter(drain)
                .for_each_concurrent(APPROVALS_IN_FLIGHT, |name| {
                    let approver = approver.clone();
                    async move { approve(&approver, &name).await }
                })
                .await;
            Instant::now()
        })
    };
    // Until every drained proposal ended; an approval that could not be made fails the test at
    // once rather than at the deadline.
    let deadline = Instant::now() + drain_limit;
    let mut approvals_done = None;
    let drained = loop {
        let drain = drain.to_vec();
        let left = deadline.saturating_duration_since(Instant::now());
        let all_ended = observer.wait_until(left, move |seen| terminal_in(seen, &drain) == drain.len());
        tokio::select! {
            ended = all_ended => break ended,
            done = &mut approving, if approvals_done.is_none() => {
                approvals_done = Some(done.unwrap_or_else(|e| panic!("approving the drain failed: {e}")));
            }
        }
    };
    if !drained {
        let left = unfinished(&proposals).await;
        panic!(
            "{} of {n} drained proposals not finished in {} s: {left:#?}\ncontroller log:\n{}",
            left.len(),
            drain_limit.as_secs(),
            fx.controllers[c].log_text()
        );
    }
    let approvals_done = match approvals_done {
        Some(at) => at,
        None => approving.await.unwrap(),
    };
    let last_applied = drain
        .iter()
        .map(|name| {
            observer
                .applied_at(name)
                .unwrap_or_else(|| panic!("{name} ended but not Applied"))
        })
        .max()
        .unwrap();
    let seconds = last_applied.duration_since(started).as_secs_f64();
    let requests_after = metric_family(&fx.controllers[c], "synapsor_kube_api_requests_total").await;
    let (requests, by_verb) = requests_since(&requests_after, &requests_before);
    let waited = metric_family(&fx.controllers[c], "synapsor_kube_api_rate_limit_wait_seconds_sum").await;
    let apply_sum = metric_family(&fx.controllers[c], "synapsor_apply_duration_seconds_sum").await;
    let apply_count = metric_family(&fx.controllers[c], "synapsor_apply_duration_seconds_count").await;
    let errors = metric_family(&fx.controllers[c], "synapsor_reconcile_errors_total").await;
    eprintln!(
        "throughput: drain of {n} approvals ({APPROVALS_IN_FLIGHT} approval writes in flight, all admitted after \
         {:.1} s): first approval to last Applied {seconds:.2} s, {:.1} approvals/s; the controller made {requests} \
         API requests meanwhile ({:.1} per approval: {by_verb}), {:.1} s waited for the rate limit in all; \
         max concurrent applies {max_concurrent_applies}, API QPS {qps}, burst {burst}; the executor's applies \
         took {:.1} ms on average (all {} of them); reconcile errors: {errors:?}",
        approvals_done.duration_since(started).as_secs_f64(),
        n as f64 / seconds,
        requests / n as f64,
        waited.values().sum::<f64>(),
        apply_sum.values().sum::<f64>() * 1000.0 / apply_count.values().sum::<f64>().max(1.0),
        apply_count.values().sum::<f64>(),
    );

    // 3. What must hold. Status: Applied once, with the receipt of the proposal's own write.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let listed = proposals.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), total, "no proposal appeared or vanished");
    for p in &listed {
        let name = p.name_any();
        let plan = planned
            .get(&name)
            .unwrap_or_else(|| panic!("{name} was never proposed"));
        let st = p.status.clone().unwrap_or_default();
        assert_eq!(st.phase, Some(Phase::Applied), "{name}: {:?}", st.message);
        let receipt = st
            .receipt
            .unwrap_or_else(|| panic!("{name} is Applied without a receipt"));
        assert_eq!(receipt["status"], "applied", "{name}: {receipt}");
        assert_eq!(receipt["rows_affected"], 1, "{name}: {receipt}");
        assert_eq!(receipt["proposal_id"], plan.id.as_str(), "{name}: {receipt}");
        keys.insert(
            plan.id.clone(),
            receipt["idempotency_key"].as_str().unwrap_or_default().to_owned(),
        );
    }
    let terminal_once = {
        let seen = observer.seen.lock().unwrap();
        names.iter().all(|name| {
            seen.get(name)
                .is_some_and(|s| s.terminal.len() == 1 && s.terminal[0].0 == Phase::Applied)
        })
    };

    // The source: one applied receipt per proposal, under the key in its status...
    let mut db = sqlx::PgConnection::connect(&fx.db.admin_url).await.unwrap();
    let source_receipts: Vec<(String, String, String)> =
        sqlx::query_as("SELECT proposal_id, idempotency_key, status FROM synapsor_writeback_receipts")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let mut receipts_per_proposal: BTreeMap<&str, usize> = BTreeMap::new();
    for (proposal_id, _, _) in &source_receipts {
        *receipts_per_proposal.entry(proposal_id.as_str()).or_default() += 1;
    }
    // ... and every row written exactly once (the trigger counts), with its proposal's value.
    let rows: BTreeMap<String, (i64, i32)> = sqlx::query_as::<_, (String, i64, i32)>(
        "SELECT id, late_fee_cents, apply_count FROM invoices WHERE id LIKE 'TP-%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, fee, writes)| (id, (fee, writes)))
    .collect();
    let others_written = fx
        .db
        .int("SELECT coalesce(sum(apply_count), 0) FROM invoices WHERE id NOT LIKE 'TP-%'")
        .await;
    let _ = db.close().await;
    let extra_receipts: usize = receipts_per_proposal.values().map(|c| c.saturating_sub(1)).sum();
    let extra_row_writes: usize = rows
        .values()
        .map(|(_, writes)| usize::try_from(*writes).unwrap_or(0).saturating_sub(1))
        .sum();
    let duplicate_writes = extra_receipts + extra_row_writes;
    let drain_ids: Vec<&str> = drain.iter().map(|name| planned[name].id.as_str()).collect();
    let drain_receipts: usize = drain_ids
        .iter()
        .map(|id| receipts_per_proposal.get(id).copied().unwrap_or(0))
        .sum();

    let report = json!({
        "single": {"approvals": k, "p50_ms": p50, "p99_ms": p99},
        "drain": {
            "approvals": n,
            "seconds": seconds,
            "duplicate_writes": duplicate_writes,
            "receipts": drain_receipts,
            "terminal_once": terminal_once,
            "max_concurrent_applies": max_concurrent_applies,
            "kube_api_qps": qps,
            "kube_api_burst": burst,
        },
    });
    eprintln!("throughput report: {report}");
    if let Some(out) = std::env::var_os("SYNAPSOR_BENCH_CONTROLLER_OUT").filter(|v| !v.is_empty()) {
        std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
        eprintln!("throughput: wrote {}", std::path::Path::new(&out).display());
    }

    assert_eq!(
        duplicate_writes, 0,
        "duplicate writes: receipts {receipts_per_proposal:?}"
    );
    assert!(
        terminal_once,
        "a proposal was seen in more than one terminal phase, or not Applied"
    );
    assert_eq!(drain_receipts, n, "one source receipt per drained proposal");
    assert_eq!(
        source_receipts.len(),
        total,
        "one source receipt per proposal: {source_receipts:#?}"
    );
    for (proposal_id, key, status) in &source_receipts {
        assert_eq!(status, "applied", "{proposal_id}");
        assert_eq!(
            keys.get(proposal_id),
            Some(key),
            "the source receipt of {proposal_id} is the one in its status"
        );
    }
    for plan in planned.values() {
        let (fee, writes) = rows[&plan.row];
        assert_eq!(writes, 1, "{} written {writes} times", plan.row);
        assert_eq!(fee, plan.fee, "{} holds another proposal's value", plan.row);
    }
    assert_eq!(others_written, 0, "no other row was touched");
    // Nothing was interrupted, so no apply ran a second time (it would end already_applied).
    let controller = &fx.controllers[c];
    let applies = metric_family(controller, "synapsor_proposal_applies_total").await;
    assert_eq!(
        applies.get("{outcome=\"applied\"}").copied().unwrap_or(0.0),
        total as f64,
        "applies: {applies:?}"
    );
    assert_eq!(
        applies.values().sum::<f64>(),
        total as f64,
        "no other apply outcome: {applies:?}"
    );

    watch_task.abort();
    let (db, client, ns) = (fx.db.clone(), fx.client.clone(), fx.ns.clone());
    // The controller first (with the webhook configuration), so nothing writes while purging.
    fx.cleanup().await;
    purge_namespace(&client, &ns).await;
    drop_database(&db).await;
}
