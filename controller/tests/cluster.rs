//! The product as users deploy it, on a real single-node cluster that runs pods
//! (`scripts/cluster.sh`): the chart's controller pods Ready through their probes and electing one
//! leader, the webhook reached through its Service, sidecar injection, the example's whole flow
//! (`examples/billing-on-kubernetes/run.sh`), pods deleted mid-flow with nothing lost or applied
//! twice, handler calls from the controller pod that fail and are retried, the handler refusing
//! forged and stale requests, and a clean `helm upgrade` and `uninstall`.
//!
//! Skipped without `SYNAPSOR_CLUSTER_KUBECONFIG` (`eval "$(scripts/cluster.sh start)"`), unless
//! `SYNAPSOR_REQUIRE_CLUSTER=1` (set by scripts/test.sh), where it fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const APP_NS: &str = "billing";
const SYS_NS: &str = "synapsor-system";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubeconfig() -> Option<String> {
    match std::env::var("SYNAPSOR_CLUSTER_KUBECONFIG") {
        Ok(k) if !k.is_empty() => Some(k),
        _ => {
            if std::env::var("SYNAPSOR_REQUIRE_CLUSTER").as_deref() == Ok("1") {
                panic!(
                    "SYNAPSOR_CLUSTER_KUBECONFIG is not set but SYNAPSOR_REQUIRE_CLUSTER=1: run through scripts/test.sh"
                );
            }
            eprintln!("skipping: SYNAPSOR_CLUSTER_KUBECONFIG is not set (eval \"$(scripts/cluster.sh start)\")");
            None
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Cluster {
    kubeconfig: String,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Output {
        let kubectl = std::env::var("SYNAPSOR_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        Command::new(kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `examples/billing-on-kubernetes/run.sh <args>` against this cluster.
    fn example(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("bash");
        c.arg(repo().join("examples/billing-on-kubernetes/run.sh"))
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn proposal(&self, name: &str) -> Value {
        self.json(&["-n", APP_NS, "get", &format!("proposal/{name}")])
    }

    fn wait_phase(&self, name: &str, phases: &[&str], secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.proposal(name);
            if let Some(phase) = p["status"]["phase"].as_str()
                && phases.contains(&phase)
            {
                return p;
            }
            assert!(Instant::now() < deadline, "{name} not in {phases:?} in {secs} s: {p}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until the proposal is `Failed` with its five attempts spent.
    fn wait_until_failed_for_good(&self, name: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.proposal(name);
            if p["status"]["attempts"].as_u64() == Some(5) && p["status"]["phase"] == "Failed" {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: not Failed after 5 attempts in {secs} s: {p}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn wait_until(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "{what}: not within {secs} s");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// One SQL query as the database admin in the example's PostgreSQL pod (one text value).
    fn sql(&self, query: &str) -> String {
        let secrets = std::fs::read_to_string(repo().join("target/example-billing/secrets.env")).unwrap();
        let pw = secrets.lines().find_map(|l| l.strip_prefix("PG_ADMIN_PW=")).unwrap();
        self.ok(&[
            "-n",
            APP_NS,
            "exec",
            "deploy/billing-db",
            "--",
            "psql",
            &format!("postgresql://postgres:{pw}@127.0.0.1/billing"),
            "-tAc",
            query,
        ])
        .trim()
        .to_owned()
    }

    fn ready_pods(&self, ns: &str, selector: &str) -> Vec<String> {
        let pods = self.json(&["-n", ns, "get", "pods", "-l", selector]);
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["ready"] == true))
            })
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// One MCP tool call as `user` of the billing app, with the token the app minted for them;
    /// the envelope.
    fn call_as(&self, user: &str, tool: &str, args: Value) -> Value {
        let out = self.example(&["propose", tool, &args.to_string(), user], &[]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }

    fn propose(&self, tool: &str, args: Value) -> String {
        let env = self.call_as("dana@acme", tool, args);
        assert_eq!(env["ok"], true, "{env}");
        env["proposal"]["id"].as_str().unwrap().replace('_', "-")
    }

    fn approve(&self, name: &str) {
        let out = self.example(&["approve", name], &[]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// Holds `kubectl port-forward` to a pod port while alive.
struct PortForward(Child, u16);

impl PortForward {
    fn new(c: &Cluster, pod: &str, port: u16) -> PortForward {
        let local = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let kubectl = std::env::var("SYNAPSOR_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let child = Command::new(kubectl)
            .args([
                "-n",
                APP_NS,
                "port-forward",
                &format!("pod/{pod}"),
                &format!("{local}:{port}"),
            ])
            .env("KUBECONFIG", &c.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        c.wait_until("port-forward", 20, || {
            std::net::TcpStream::connect(("127.0.0.1", local)).is_ok()
        });
        PortForward(child, local)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_product_runs_on_a_real_cluster_and_loses_nothing_when_pods_die() {
    let Some(kubeconfig) = kubeconfig() else { return };
    let c = Cluster { kubeconfig };
    let _ = rustls::crypto::ring::default_provider().install_default();

    // 1. The example's whole flow, from a clean start. The first retry pause is 1 s here, so
    //    that a failing handler spends its five attempts within the test.
    let _ = c.example(&["down"], &[]);
    let out = c.example(
        &[],
        &[(
            "SYNAPSOR_EXAMPLE_HELM_ARGS",
            "--set controller.extraArgs={--retry-pause-secs=1}",
        )],
    );
    assert!(out.status.success(), "run.sh failed:\n{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let fee = &summary["late_fee"];
    assert_eq!(fee["phase"], "Applied", "{summary}");
    assert_eq!(fee["receipt"]["status"], "applied");
    assert_eq!(fee["receipt"]["executor"], "sql_update");
    assert_eq!(fee["approvals"][0]["user"], "alice");
    assert!(
        fee["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "Applied"),
        "{fee}"
    );
    let ticket = &summary["ticket_priority"];
    assert_eq!(ticket["phase"], "Applied", "{summary}");
    assert_eq!(
        ticket["receipt"]["executor"], "support_app",
        "applied by the app's own handler"
    );
    assert_eq!(summary["invoice"]["late_fee_cents"], 0);

    // 2. Two controller pods, Ready through their probes, one leader through the Lease; the
    //    webhook Service has both as endpoints; the app pod got the sidecar.
    let controllers = c.ready_pods(SYS_NS, "app.kubernetes.io/component=controller");
    assert_eq!(controllers.len(), 2, "{controllers:?}");
    let leases = c.json(&["-n", SYS_NS, "get", "leases"]);
    let holder = leases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l["spec"]["holderIdentity"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        controllers.contains(&holder),
        "leader {holder} is one of {controllers:?}"
    );
    let endpoints = c.json(&["-n", SYS_NS, "get", "endpoints", "synapsor-webhook"]);
    let addresses = endpoints["subsets"][0]["addresses"].as_array().map_or(0, Vec::len);
    assert_eq!(addresses, 2, "{endpoints}");
    let app = c.ready_pods(APP_NS, "app=billing-app");
    let pod = c.json(&["-n", APP_NS, "get", &format!("pod/{}", app[0])]);
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "synapsor-runner"]);

    // 2b. One sidecar serves every tenant of the app: each session runs as the user whose token
    //     the app minted. The late fee proposal records dana's verified identity, not a token.
    let spec = &c.proposal(fee["proposal"].as_str().unwrap())["spec"];
    assert_eq!(spec["tenant"], "acme", "{spec}");
    assert_eq!(spec["principal"]["id"], "dana@acme");
    assert_eq!(spec["principal"]["source"], "jwt");
    assert_eq!(spec["principal"]["verified"]["issuer"], "billing-app");
    assert_eq!(spec["principal"]["verified"]["subject"], "dana@acme");
    assert!(
        !spec.to_string().contains("eyJ"),
        "a token reached the Proposal: {spec}"
    );
    let read = |user: &str, invoice: &str| c.call_as(user, "billing.inspect_invoice", json!({"invoice_id": invoice}));
    let own = read("li@globex", "inv_glbx_2001");
    assert_eq!(own["data"]["id"], "inv_glbx_2001", "{own}");
    for (user, other) in [("li@globex", "inv_acme_1001"), ("dana@acme", "inv_glbx_2001")] {
        let env = read(user, other);
        assert_eq!(
            env["error"]["code"], "NOT_FOUND_IN_TENANT",
            "{user} read {other}: {env}"
        );
    }
    // A token the app did not sign is refused at the sidecar, with its reason and nothing else.
    {
        let sidecar = PortForward::new(&c, &app[0], 8766);
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"iss": "billing-app", "aud": "synapsor-runner", "sub": "mallory", "tenant": "globex",
                    "iat": synapsor_core::context::Clock::now_secs(&synapsor_core::context::SystemClock),
                    "exp": synapsor_core::context::Clock::now_secs(&synapsor_core::context::SystemClock) + 300}),
            &jsonwebtoken::EncodingKey::from_secret(b"not-the-app-secret-0123456789abcdef"),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, challenge) = rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{}/mcp", sidecar.1))
                .bearer_auth(&forged)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#)
                .send()
                .await
                .unwrap();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (resp.status().as_u16(), challenge)
        });
        assert_eq!(status, 401, "{challenge}");
        assert!(challenge.contains("TOKEN_SIGNATURE_INVALID"), "{challenge}");
    }

    // 3. The app pod dies after proposing: the proposal stays reviewable and approvable.
    let name = c.propose(
        "billing.propose_late_fee_waiver",
        json!({"invoice_id": "inv_acme_1003", "reason": "late twice, first waiver"}),
    );
    c.wait_phase(&name, &["Pending"], 30);
    c.ok(&["-n", APP_NS, "delete", "pod", &app[0], "--wait=false"]);
    c.wait_until("a new billing-app pod", 120, || {
        let pods = c.ready_pods(APP_NS, "app=billing-app");
        pods.len() == 1 && pods[0] != app[0]
    });
    let new_pod = c.ready_pods(APP_NS, "app=billing-app").remove(0);

    // 4. The leader dies during the apply: the row is locked, so the apply waits inside its
    //    transaction after Applying was written; the other replica finishes it, once.
    let mut lock = Command::new(std::env::var("SYNAPSOR_KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .env("KUBECONFIG", &c.kubeconfig)
        .args(["-n", APP_NS, "exec", "-i", "deploy/billing-db", "--", "psql", "-q"])
        .arg({
            let secrets = std::fs::read_to_string(repo().join("target/example-billing/secrets.env")).unwrap();
            let pw = secrets
                .lines()
                .find_map(|l| l.strip_prefix("PG_ADMIN_PW="))
                .unwrap()
                .to_owned();
            format!("postgresql://postgres:{pw}@127.0.0.1/billing")
        })
        .arg("-c")
        .arg("BEGIN; SELECT id FROM invoices WHERE id = 'inv_acme_1003' FOR UPDATE; SELECT pg_sleep(8); COMMIT;")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    c.approve(&name);
    c.wait_phase(&name, &["Applying"], 30);
    let leases = c.json(&["-n", SYS_NS, "get", "leases"]);
    let leader = leases["items"][0]["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(&[
        "-n",
        SYS_NS,
        "delete",
        "pod",
        &leader,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let _ = lock.wait();
    let applied = c.wait_phase(&name, &["Applied", "Failed", "Conflict"], 120);
    assert_eq!(applied["status"]["phase"], "Applied", "{applied}");
    let id = name.replace('-', "_");
    assert_eq!(
        c.sql(&format!(
            "SELECT count(*) FROM synapsor_writeback_receipts WHERE proposal_id = '{id}' AND status = 'applied'"
        )),
        "1",
        "written exactly once"
    );
    assert_eq!(
        c.sql("SELECT late_fee_cents FROM invoices WHERE id = 'inv_acme_1003'"),
        "0"
    );

    // 5. The new app pod's sidecar replays it: the evidence it was built from, the approval, the
    //    receipt (its ledger took them from the Proposal).
    c.wait_until("the replaced sidecar's replay", 60, || {
        let out = c.kubectl(&[
            "-n",
            APP_NS,
            "exec",
            &new_pod,
            "-c",
            "synapsor-runner",
            "--",
            "/usr/local/bin/synapsor-runner",
            "replay",
            &id,
            "--json",
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let r = &v["replay"];
        r["proposal"]["state"] == "applied"
            && r["evidence"].as_array().is_some_and(|e| e.len() == 1)
            && r["proposal"]["approvals"][0]["approver"] == "alice"
            && r["receipts"].as_array().is_some_and(|x| !x.is_empty())
    });

    // 6. A handler that cannot be reached: retried with the same idempotency key, then Failed
    //    with a safe code; nothing written.
    // The app's Service selects the pods labelled app=<selector>.
    let select_app = |selector: &str| {
        let patch = json!({"spec": {"selector": {"app": selector}}}).to_string();
        c.ok(&["-n", APP_NS, "patch", "service", "billing-app", "-p", &patch]);
    };
    select_app("nowhere");
    let name = c.propose(
        "support.propose_ticket_priority",
        json!({"ticket_id": "tkt_acme_302", "priority": "urgent"}),
    );
    c.wait_phase(&name, &["Pending"], 30);
    c.approve(&name);
    let failed = c.wait_until_failed_for_good(&name, 120);
    assert_eq!(failed["status"]["phase"], "Failed", "{failed}");
    assert_eq!(
        failed["status"]["receipt"]["safe_error_code"], "HANDLER_UNAVAILABLE",
        "{failed}"
    );
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no more attempts"),
        "{failed}"
    );
    select_app("billing-app");

    // 6b. A handler that stops answering (its process frozen: the connection opens, no answer
    //     comes): HANDLER_TIMEOUT, retried with the same idempotency key; once it answers again
    //     the proposal is applied, and the handler applied it once.
    let pid = String::from_utf8(
        Command::new("pgrep")
            .args(["-f", "/usr/local/bin/synapsor-example-handler"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pid = pid
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no handler process"))
        .trim()
        .to_owned();
    let signal = |sig: &str| {
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    };
    // Proposed while the app runs (it mints the agent's token), frozen before the approval.
    let name = c.propose(
        "support.propose_ticket_priority",
        json!({"ticket_id": "tkt_acme_303", "priority": "high"}),
    );
    c.wait_phase(&name, &["Pending"], 30);
    signal("-STOP");
    c.approve(&name);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = c.proposal(&name);
        if p["status"]["receipt"]["safe_error_code"] == "HANDLER_TIMEOUT" {
            assert!(p["status"]["attempts"].as_u64().unwrap() >= 1, "{p}");
            break;
        }
        assert!(Instant::now() < deadline, "no HANDLER_TIMEOUT: {p}");
        std::thread::sleep(Duration::from_millis(500));
    }
    signal("-CONT");
    let applied = c.wait_phase(&name, &["Applied"], 120);
    let receipt = &applied["status"]["receipt"];
    assert!(
        ["applied", "already_applied"].contains(&receipt["status"].as_str().unwrap()),
        "{applied}"
    );
    let log = c.ok(&["-n", APP_NS, "logs", &new_pod, "-c", "app"]);
    let id = name.replace('-', "_");
    let applied_lines = log.lines().filter(|l| l.starts_with(&format!("{id} applied"))).count();
    assert_eq!(applied_lines, 1, "the handler applied it once:\n{log}");

    // 7. The app's handler refuses a request signed with another key and a stale one.
    let handler = PortForward::new(&c, &new_pod, 8080);
    let url = format!("http://127.0.0.1:{}/synapsor/apply", handler.1);
    let secrets = std::fs::read_to_string(repo().join("target/example-billing/secrets.env")).unwrap();
    let var = |k: &str| {
        secrets
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_owned()
    };
    let body = std::fs::read(repo().join("crates/handler/tests/fixtures/request.json")).unwrap();
    let now = synapsor_core::context::Clock::now_ms(&synapsor_core::context::SystemClock).div_euclid(1000);
    // (HTTP status, the receipt's error code) of one signed request.
    let post = |key: &synapsor_handler::SigningKey, t: i64| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(&url)
                .bearer_auth(var("HANDLER_TOKEN"))
                .header(synapsor_handler::SIGNATURE_HEADER, key.sign(t, &body))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let receipt: Value = resp.json().await.unwrap();
            (status, receipt["error_code"].as_str().unwrap_or("").to_owned())
        })
    };
    let right = synapsor_handler::SigningKey::new("support-2025-01", var("HANDLER_SECRET")).unwrap();
    let wrong =
        synapsor_handler::SigningKey::new("support-2025-01", "another-secret-0123456789abcdef01234567").unwrap();
    let (status, code) = post(&wrong, now);
    assert!(
        status >= 400 && code.contains("SIGNATURE"),
        "re-signed with another key: {status} {code}"
    );
    let (status, code) = post(&right, now - 3600);
    assert!(
        status >= 400 && !code.is_empty() && !code.contains("SIGNATURE_MISMATCH"),
        "stale: {status} {code}"
    );

    // 8. helm upgrade and uninstall are clean.
    let helm = std::env::var("SYNAPSOR_HELM").unwrap_or_else(|_| "helm".into());
    let up = Command::new(&helm)
        .args([
            "upgrade",
            "synapsor",
            &repo().join("charts/synapsor-runner").display().to_string(),
        ])
        .args([
            "-n",
            SYS_NS,
            "--reuse-values",
            "--set",
            "controller.replicas=2",
            "--wait",
            "--timeout",
            "180s",
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(c.ready_pods(SYS_NS, "app.kubernetes.io/component=controller").len(), 2);
    let down = c.example(&["down"], &[]);
    assert!(down.status.success(), "{}", text(&down));
    let hooks = c.ok(&["get", "mutatingwebhookconfigurations", "-o", "name"]);
    assert!(!hooks.contains("synapsor-webhook"), "{hooks}");
    let roles = c.ok(&["get", "clusterroles", "-o", "name"]);
    assert!(!roles.contains("synapsor-controller"), "{roles}");
}
