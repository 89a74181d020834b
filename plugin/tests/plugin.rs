//! `kubectl synapsor` against a real kube-apiserver (scripts/k8s.sh, or a cluster through
//! `KUBECONFIG`): the built binary lists and reviews proposals, approves and rejects them as
//! different users through the real admission webhook of `synapsor-controller` (served in this
//! process; the API server calls it over TLS), prints its refusals verbatim, asks for a
//! confirmation on a terminal, and waits for a phase.
//!
//! Each test has its own namespace, RBAC and webhook configuration. Users are impersonated by
//! the admin of the test kubeconfig: each user gets a kubeconfig of their own, as a person has.
//! Without `KUBECONFIG` the tests skip, unless `SYNAPSOR_REQUIRE_K8S=1` (scripts/test.sh).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::CustomResourceExt;
use serde_json::{Value, json};
use synapsor_controller::decisions::DecisionKey;
use synapsor_controller::metrics::Metrics;
use synapsor_controller::server::{self, Readiness, ServerState};
use synapsor_core::changeset::ChangeSet;
use synapsor_core::context::SystemClock;
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_APPROVE, ANNOTATION_PROPOSER, ANNOTATION_REJECTION, Proposal, ProposalSpec,
    object_name,
};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-synapsor");
const TOOL: &str = "billing.propose_late_fee";
const APPROVERS: [&str; 2] = ["alice", "carol"];
/// May patch proposals, but RBAC does not allow it the verb `approve`.
const EDITOR: &str = "bob";
/// May do nothing at all with proposals.
const STRANGER: &str = "mallory";

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            if std::env::var("SYNAPSOR_REQUIRE_K8S").as_deref() == Ok("1") {
                panic!("KUBECONFIG is not set but SYNAPSOR_REQUIRE_K8S=1: run through scripts/test.sh");
            }
            eprintln!("skipping: KUBECONFIG is not set (run scripts/test.sh, or eval \"$(scripts/k8s.sh start)\")");
            None
        }
    }
}

fn kubectl_bin() -> String {
    std::env::var("SYNAPSOR_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The address the API server reaches the webhook on (kind: the Docker host).
fn webhook_host() -> String {
    std::env::var("SYNAPSOR_K8S_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{:x}{:x}{}",
        std::process::id(),
        now_ms() & 0xff_ffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> i64 {
    synapsor_core::context::Clock::now_ms(&SystemClock)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A self-signed CA and a serving certificate for `host`, made with openssl.
fn make_tls(dir: &Path, host: &str) -> (String, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = StdCommand::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=plugin-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        "/CN=synapsor-webhook",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName=IP:{host},IP:127.0.0.1,DNS:localhost\n"),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        dir.join("tls.crt"),
        dir.join("tls.key"),
    )
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn create_or_keep<K>(api: &Api<K>, o: K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), &o).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create failed: {e}"),
    }
}

/// Installs (or updates) the CRD and waits until it is served. Marked with a digest of itself
/// exactly as the controller's tests mark it, so the suites agree on which version is current.
async fn install_crd(client: &kube::Client) {
    const NAME: &str = "proposals.runner.synapsor.ai";
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = Proposal::crd();
    let digest = synapsor_core::digest::digest_value(&serde_json::to_value(&crd).unwrap());
    crd.metadata.annotations = Some([("runner.synapsor.ai/test-crd-digest".to_owned(), digest.clone())].into());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match crds.get_opt(NAME).await.unwrap() {
            None => {
                let _ = crds.create(&PostParams::default(), &crd).await;
            }
            Some(current) if current.annotations().get("runner.synapsor.ai/test-crd-digest") != Some(&digest) => {
                let mut want = crd.clone();
                want.metadata.resource_version = current.metadata.resource_version.clone();
                let _ = crds.replace(NAME, &PostParams::default(), &want).await;
            }
            Some(current) => {
                let established = current
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                let api: Api<Proposal> = Api::namespaced(client.clone(), "default");
                if established && api.list(&Default::default()).await.is_ok() {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the Proposal CRD was not established in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A copy of the admin kubeconfig that impersonates `user` (as a person's own kubeconfig
/// would authenticate them), optionally with a default namespace in its context.
fn user_kubeconfig(admin: &Path, out: &Path, user: &str, groups: &[&str], namespace: Option<&str>) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin).unwrap()).unwrap();
    if let Some(users) = doc.get_mut("users").and_then(|u| u.as_sequence_mut()) {
        for u in users {
            if let Some(m) = u.get_mut("user").and_then(|u| u.as_mapping_mut()) {
                m.insert("as".into(), user.into());
                m.insert(
                    "as-groups".into(),
                    serde_yaml::Value::Sequence(groups.iter().map(|g| (*g).into()).collect()),
                );
            }
        }
    }
    if let (Some(ns), Some(contexts)) = (namespace, doc.get_mut("contexts").and_then(|c| c.as_sequence_mut())) {
        for c in contexts {
            if let Some(m) = c.get_mut("context").and_then(|c| c.as_mapping_mut()) {
                m.insert("namespace".into(), ns.into());
            }
        }
    }
    std::fs::write(out, serde_yaml::to_string(&doc).unwrap()).unwrap();
}

/// A proposal of a late fee of `fee` on `invoice`, expiring in an hour, with a valid digest.
fn proposal(invoice: &str, fee: i64) -> Proposal {
    let id = unique("wrp").replace('-', "_");
    let mut cs: ChangeSet = serde_json::from_value(json!({
        "schema_version": "synapsor.change-set.v1",
        "proposal_id": id,
        "mode": "review_required",
        "action": TOOL,
        "principal": {"id": "agent.k8s", "source": "environment"},
        "scope": {"tenant_id": "acme", "business_object": "invoices", "object_id": invoice},
        "source": {"source_id": "main", "engine": "external_postgres", "schema": "public",
                   "table": "invoices", "primary_key": {"column": "id", "value": invoice}},
        "before": {"id": invoice, "late_fee_cents": 5500, "updated_at": "2026-06-23T09:00:00Z"},
        "patch": {"late_fee_cents": fee},
        "after": {"id": invoice, "late_fee_cents": fee, "updated_at": "2026-06-23T09:00:00Z"},
        "guards": {"tenant": {"column": "tenant_id", "value": "acme"},
                   "allowed_columns": ["late_fee_cents"],
                   "expected_version": {"column": "updated_at", "value": "2026-06-23T09:00:00Z"},
                   "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}}},
        "writeback": {"executor": "sql_update"},
        "approval": {"required_approvals": 1},
        "evidence": {"bundle_id": "ev_plugin_1", "query_fingerprint": "fp1"},
        "created_at": synapsor_core::time::format_rfc3339_ms(now_ms()),
        "digest": ""
    }))
    .unwrap();
    cs.canonicalize_numbers();
    cs.digest = cs.compute_digest();
    let mut spec = ProposalSpec::from_change_set(&cs, synapsor_core::time::format_rfc3339_ms(now_ms() + 3_600_000));
    spec.evidence_bundle =
        Some(json!({"bundle_id": "ev_plugin_1", "visible_row": {"id": invoice, "late_fee_cents": 5500}}));
    let name = object_name(&id);
    let mut p = Proposal::new(&name, spec);
    p.metadata.labels = Some([("runner.synapsor.ai/capability".to_owned(), TOOL.to_owned())].into());
    p
}

/// One test's namespace, RBAC, webhook (in this process) and users.
struct Fx {
    admin: kube::Client,
    admin_kubeconfig: PathBuf,
    ns: String,
    dir: tempfile::TempDir,
    webhook_name: String,
    proposer: String,
    shutdown: CancellationToken,
}

impl Fx {
    async fn new() -> Option<Fx> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let admin_kubeconfig = kubeconfig()?;
        let admin = kube::Client::try_default().await.unwrap();
        install_crd(&admin).await;
        let ns = unique("synapsor-plugin");
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        create_or_keep(
            &namespaces,
            obj(json!({"metadata": {"name": ns, "labels": {"runner.synapsor.ai/test": ns}}})),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let proposer = format!("system:serviceaccount:{ns}:runner");
        let fx = Fx {
            admin,
            admin_kubeconfig,
            webhook_name: format!("synapsor-{ns}"),
            ns,
            dir,
            proposer,
            shutdown: CancellationToken::new(),
        };
        fx.install_rbac().await;
        fx.start_webhook().await;
        Some(fx)
    }

    async fn install_rbac(&self) {
        let roles: Api<Role> = Api::namespaced(self.admin.clone(), &self.ns);
        let bindings: Api<RoleBinding> = Api::namespaced(self.admin.clone(), &self.ns);
        let role = |name: &str, verbs: &[&str]| -> Role {
            obj(json!({"metadata": {"name": name},
                "rules": [{"apiGroups": ["runner.synapsor.ai"], "resources": ["proposals"], "verbs": verbs}]}))
        };
        create_or_keep(
            &roles,
            role("approver", &["get", "list", "watch", "patch", "update", "approve"]),
        )
        .await;
        create_or_keep(&roles, role("editor", &["get", "list", "watch", "patch", "update"])).await;
        // The sidecar creates proposals; here it may also approve, so that only the webhook's
        // rule against self-approval stands between it and its own proposal.
        create_or_keep(
            &roles,
            role("runner", &["create", "get", "list", "watch", "patch", "approve"]),
        )
        .await;
        let bind = |name: &str, role: &str, users: &[&str]| -> RoleBinding {
            let subjects: Vec<Value> = users
                .iter()
                .map(|u| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}))
                .collect();
            obj(json!({"metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": subjects}))
        };
        create_or_keep(&bindings, bind("approvers", "approver", &APPROVERS)).await;
        create_or_keep(&bindings, bind("editors", "editor", &[EDITOR])).await;
        create_or_keep(&bindings, bind("runner", "runner", &[&self.proposer])).await;
    }

    /// The controller's admission webhook, in this process, and its configuration.
    async fn start_webhook(&self) {
        let (ca, cert, key) = make_tls(self.dir.path(), &webhook_host());
        let bind_host = if webhook_host() == "127.0.0.1" {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let listener = tokio::net::TcpListener::bind((bind_host, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let readiness = Arc::new(Readiness::default());
        readiness.set_api_ready();
        let state = ServerState {
            client: self.admin.clone(),
            clock: Arc::new(SystemClock),
            key: DecisionKey::from_file_bytes(unique("approval-key-0123456789abcdefghijklmnopqrstuvwxyz").as_bytes())
                .unwrap(),
            metrics: Metrics::new(),
            readiness,
            inject: None,
        };
        let tls = server::tls_config(&cert, &key).unwrap();
        tokio::spawn(server::serve_tls(
            listener,
            tls,
            server::webhook_router(state),
            self.shutdown.clone(),
        ));
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.admin.clone());
        let cfg: MutatingWebhookConfiguration = obj(json!({
            "metadata": {"name": self.webhook_name},
            "webhooks": [{
                "name": "proposals.runner.synapsor.ai",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "reinvocationPolicy": "Never",
                "namespaceSelector": {"matchLabels": {"runner.synapsor.ai/test": self.ns}},
                "rules": [{"apiGroups": ["runner.synapsor.ai"], "apiVersions": ["v1alpha1"],
                           "resources": ["proposals"], "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}],
                "clientConfig": {
                    "url": format!("https://{}:{port}/mutate-proposals", webhook_host()),
                    "caBundle": base64(ca.as_bytes()),
                },
            }]
        }));
        create_or_keep(&api, cfg).await;
        // The API server picks a new webhook configuration up a moment later: probe with a
        // proposal the webhook refuses (its spec does not match its digest) until it does.
        let proposals = self.proposals();
        let deadline = Instant::now() + Duration::from_secs(15);
        for i in 0.. {
            let mut probe = proposal("PROBE", 1);
            probe.metadata.name = Some(format!("probe-{i}"));
            probe.spec.patch.insert("late_fee_cents".into(), json!(2));
            match proposals.create(&PostParams::default(), &probe).await {
                Err(kube::Error::Api(e)) if e.message.contains("spec.digest does not match") => break,
                Ok(_) => {
                    let _ = proposals.delete(&format!("probe-{i}"), &Default::default()).await;
                }
                Err(e) => eprintln!("probing the webhook: {e}"),
            }
            assert!(Instant::now() < deadline, "the webhook was not called within 15 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn proposals(&self) -> Api<Proposal> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    /// The kubeconfig of `user` (written once), optionally with this namespace as its default.
    fn kubeconfig_of(&self, user: &str, default_ns: bool) -> PathBuf {
        let file = self.dir.path().join(format!(
            "{}{}.kubeconfig",
            user.replace(':', "_"),
            if default_ns { "-ns" } else { "" }
        ));
        if !file.exists() {
            let groups: Vec<String> = if user.starts_with("system:serviceaccount:") {
                vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{}", self.ns),
                    "system:authenticated".into(),
                ]
            } else {
                vec!["system:authenticated".into()]
            };
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            user_kubeconfig(
                &self.admin_kubeconfig,
                &file,
                user,
                &groups,
                default_ns.then_some(self.ns.as_str()),
            );
        }
        file
    }

    /// A proposal created as the sidecar's service account would create it (the webhook stamps
    /// that user as its proposer); returns its name.
    async fn propose(&self, invoice: &str, fee: i64) -> String {
        let p = proposal(invoice, fee);
        let name = p.name_any();
        let mut cfg = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&self.admin_kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        cfg.auth_info.impersonate = Some(self.proposer.clone());
        cfg.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", self.ns),
            "system:authenticated".into(),
        ]);
        let sidecar = kube::Client::try_from(cfg).unwrap();
        let api: Api<Proposal> = Api::namespaced(sidecar, &self.ns);
        let created = api.create(&PostParams::default(), &p).await.unwrap();
        assert_eq!(created.annotations().get(ANNOTATION_PROPOSER), Some(&self.proposer));
        name
    }
    /// Writes the status as the controller does (status subresource, as the admin).
    async fn set_status(&self, name: &str, status: Value) {
        self.proposals()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
            .unwrap();
    }

    /// The plugin as `user` (their own kubeconfig), in this namespace, with no terminal.
    async fn plugin(&self, user: &str, args: &[&str]) -> Output {
        self.plugin_cmd(user, args).output().await.unwrap()
    }

    fn plugin_cmd(&self, user: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig_of(user, false))
            .args(["-n", &self.ns])
            .args(args)
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// `kubectl annotate` as `user`, for comparing its output with the plugin's.
    fn kubectl_annotate(&self, user: &str, name: &str, annotation: &str) -> Output {
        StdCommand::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(self.kubeconfig_of(user, false))
            .args(["-n", &self.ns, "annotate", &format!("proposal/{name}"), annotation])
            .output()
            .unwrap()
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Synchronous, so it also runs when a test panics.
        let _ = StdCommand::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .args([
                "delete",
                "mutatingwebhookconfiguration",
                &self.webhook_name,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
        let _ = StdCommand::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .args(["delete", "namespace", &self.ns, "--ignore-not-found", "--wait=false"])
            .output();
    }
}

/// What the API server says after `Error from server (...): ` in kubectl's output.
fn server_message(kubectl_stderr: &str) -> String {
    let line = kubectl_stderr
        .lines()
        .find(|l| l.starts_with("Error from server"))
        .unwrap_or_else(|| panic!("no server error in: {kubectl_stderr}"));
    line.split_once("): ")
        .or_else(|| line.split_once(": "))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_proposals_with_phase_and_change() {
    let Some(fx) = Fx::new().await else { return };
    let first = fx.propose("INV-1", 2500).await;
    let second = fx.propose("INV-2", 0).await;
    fx.set_status(
        &second,
        json!({"phase": "Applied", "approvalsSummary": "1/1", "receipt": {"status": "applied"}}),
    )
    .await;

    let o = fx.plugin(APPROVERS[0], &["list"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CAPABILITY", "TENANT", "PHASE", "APPROVALS", "AGE", "CHANGE"],
        "{out}"
    );
    let row1 = out
        .lines()
        .find(|l| l.starts_with(&first))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row1.split_whitespace().collect();
    assert_eq!(&cells[..5], [first.as_str(), TOOL, "acme", "Pending", "0/1"], "{out}");
    assert!(row1.ends_with("late_fee_cents: 5500 -> 2500"), "{row1}");
    let row2 = out.lines().find(|l| l.starts_with(&second)).unwrap();
    assert!(
        row2.contains("Applied") && row2.ends_with("late_fee_cents: 5500 -> 0"),
        "{row2}"
    );

    // --phase filters (any case); JSON and YAML parse.
    let o = fx
        .plugin(APPROVERS[0], &["list", "--phase", "applied", "-o", "json"])
        .await;
    assert!(o.status.success(), "{}", text(&o).1);
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], second.as_str());
    assert_eq!(rows[0]["phase"], "Applied");
    assert_eq!(rows[0]["namespace"], fx.ns.as_str());
    let o = fx.plugin(APPROVERS[0], &["list", "-o", "yaml"]).await;
    let rows: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_sequence().unwrap().len(), 2);
    let o = fx.plugin(APPROVERS[0], &["list", "--phase", "sideways"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("PLUGIN_INVALID_ARGUMENT"), "{}", text(&o).1);

    // -A adds the namespace column (the admin may list everywhere).
    let o = StdCommand::new(BIN)
        .arg("--kubeconfig")
        .arg(&fx.admin_kubeconfig)
        .args(["list", "-A"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&fx.ns) && l.contains(&first)),
        "{out}"
    );

    // Without -n: the namespace of the kubeconfig's context.
    let o = StdCommand::new(BIN)
        .arg("--kubeconfig")
        .arg(fx.kubeconfig_of(APPROVERS[0], true))
        .arg("list")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains(&first) && out.contains(&second), "{out}");

    // A user without `list` gets the API server's refusal.
    let o = fx.plugin(STRANGER, &["list"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("PLUGIN_FORBIDDEN") && err.contains("cannot list resource \"proposals\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_prints_the_diff_guards_and_evidence_and_json_parses() {
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;
    let o = fx.plugin(EDITOR, &["review", &name]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(!out.contains('\x1b'), "no colour without a terminal:\n{out}");
    for needle in [
        name.as_str(),
        "[Pending]",
        "late_fee_cents  5500 -> 2500",
        "Checked again at apply",
        "the row's tenant_id is still acme",
        "updated_at is still 2026-06-23T09:00:00Z (else: conflict, nothing written)",
        "only late_fee_cents may change",
        "late_fee_cents stays between 0 and 10000",
        "exactly one row: public.invoices where id = INV-1",
        "Evidence ev_plugin_1",
        "none yet",
        "Timeline",
        &format!("proposed agent.k8s (created by {})", fx.proposer),
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }

    let o = fx.plugin(EDITOR, &["review", &name, "-o", "json"]).await;
    assert!(o.status.success(), "{}", text(&o).1);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["name"], name.as_str());
    assert_eq!(r["phase"], "Pending");
    assert_eq!(r["capability"], TOOL);
    assert_eq!(
        r["diff"][0],
        json!({"column": "late_fee_cents", "before": 5500, "after": 2500, "changed": true})
    );
    let kinds: Vec<&str> = r["guards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "tenant",
            "expected_version",
            "allowed_columns",
            "numeric_bound",
            "one_row",
            "idempotency"
        ]
    );
    assert_eq!(r["evidence"]["bundle_id"], "ev_plugin_1");
    assert!(r["digest"].as_str().unwrap().starts_with("sha256:"));
    let o = fx.plugin(EDITOR, &["review", &name, "-o", "yaml"]).await;
    let y: serde_yaml::Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(y["name"].as_str(), Some(name.as_str()));

    // The timeline takes the status conditions and the proposal's Events, oldest first.
    fx.set_status(
        &name,
        json!({"phase": "Applied", "receipt": {"status": "applied", "rows_affected": 1},
               "conditions": [{"type": "Applied", "status": "True", "reason": "Applied",
                               "message": "1 row written", "lastTransitionTime": "2099-01-01T00:00:02Z"}]}),
    )
    .await;
    let events: Api<Event> = Api::namespaced(fx.admin.clone(), &fx.ns);
    events
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": format!("{name}.applied")},
                "involvedObject": {"apiVersion": "runner.synapsor.ai/v1alpha1", "kind": "Proposal",
                                   "name": name, "namespace": fx.ns},
                "reason": "Applied", "message": "applied: 1 row", "type": "Normal",
                "firstTimestamp": "2099-01-01T00:00:03Z", "lastTimestamp": "2099-01-01T00:00:03Z",
                "source": {"component": "synapsor-controller"}
            })),
        )
        .await
        .unwrap();
    let o = StdCommand::new(BIN)
        .arg("--kubeconfig")
        .arg(&fx.admin_kubeconfig)
        .args(["-n", &fx.ns, "review", &name, "-o", "json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["phase"], "Applied");
    assert_eq!(r["receipt"]["rows_affected"], 1);
    let timeline: Vec<(String, String)> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            ("proposed".to_owned(), format!("created by {}", fx.proposer)),
            ("condition Applied=True".to_owned(), "Applied: 1 row written".to_owned()),
            ("event Applied".to_owned(), "applied: 1 row".to_owned()),
        ]
    );
    assert_eq!(r["timeline"][2]["actor"], "synapsor-controller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_as_an_approver_records_the_decision_through_the_webhook() {
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;
    let o = fx.plugin(APPROVERS[0], &["approve", &name, "--yes"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("late_fee_cents  5500 -> 2500"),
        "the review comes first:\n{out}"
    );
    assert!(
        out.contains(&format!(
            "approved: proposal {name} in namespace {}: approval recorded for alice (1 of 1 recorded)",
            fx.ns
        )),
        "{out}"
    );

    // The webhook consumed the request and recorded a signed approval for alice.
    let p = fx.proposals().get(&name).await.unwrap();
    let ann = p.annotations();
    assert!(!ann.contains_key(ANNOTATION_APPROVE), "{ann:?}");
    let records: Value = serde_json::from_str(&ann[ANNOTATION_APPROVALS]).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 1);
    assert_eq!(records[0]["user"], "alice");
    assert!(records[0]["sig"].as_str().unwrap().starts_with("v1="));

    // The review shows it, verified once the controller counted it in the status.
    let o = fx.plugin(APPROVERS[1], &["review", &name, "-o", "json"]).await;
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["decisions"][0]["decision"], "approved");
    assert_eq!(r["decisions"][0]["actor"], "alice");
    assert!(r["decisions"][0].get("verified_by").is_none(), "{r}");
    fx.set_status(
        &name,
        json!({"phase": "Applied", "approvals": [{"user": "alice", "at": records[0]["at"], "verified": true}],
               "approvalsSummary": "1/1", "receipt": {"status": "applied", "rows_affected": 1}}),
    )
    .await;
    let o = fx.plugin(APPROVERS[1], &["review", &name]).await;
    let (out, _) = text(&o);
    assert!(out.contains("approved by alice (verified by kubernetes)"), "{out}");
    assert!(out.contains("Receipt applied"), "{out}");

    // --as on an admin kubeconfig acts as that user, as kubectl's does.
    let other = fx.propose("INV-2", 100).await;
    let o = StdCommand::new(BIN)
        .arg("--kubeconfig")
        .arg(&fx.admin_kubeconfig)
        .args([
            "-n",
            &fx.ns,
            "approve",
            &other,
            "--yes",
            "--as",
            "carol",
            "--as-group",
            "system:authenticated",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let p = fx.proposals().get(&other).await.unwrap();
    let records: Value = serde_json::from_str(&p.annotations()[ANNOTATION_APPROVALS]).unwrap();
    assert_eq!(records[0]["user"], "carol");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_the_webhook_and_rbac_are_printed_verbatim() {
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;

    // The proposer (allowed `approve` by RBAC here) and a user without the verb `approve`:
    // the webhook's message, exactly as kubectl annotate shows it.
    // A user who may not even read it is stopped by RBAC before (kubectl annotate reads first too).
    for (user, needle, code) in [
        (
            fx.proposer.as_str(),
            "proposed this proposal and cannot approve it",
            "PLUGIN_DECISION_REFUSED",
        ),
        (
            EDITOR,
            "RBAC does not allow the verb \"approve\"",
            "PLUGIN_DECISION_REFUSED",
        ),
        (STRANGER, "cannot get resource \"proposals\"", "PLUGIN_FORBIDDEN"),
    ] {
        let k = fx.kubectl_annotate(user, &name, "runner.synapsor.ai/approve=true");
        assert!(!k.status.success());
        let message = server_message(&text(&k).1);
        assert!(message.contains(needle), "{message}");
        let o = fx.plugin(user, &["approve", &name, "--yes"]).await;
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{user}: {err}");
        assert!(
            err.contains(&message),
            "{user}: the plugin's stderr\n{err}\nlacks kubectl's\n{message}"
        );
        assert!(err.contains(&format!("error[{code}]")), "{err}");
    }
    let p = fx.proposals().get(&name).await.unwrap();
    assert!(
        !p.annotations().contains_key(ANNOTATION_APPROVALS),
        "nothing was recorded"
    );

    // A decided proposal takes no more decisions: the webhook says why.
    fx.set_status(&name, json!({"phase": "Applied"})).await;
    let o = fx.plugin(APPROVERS[0], &["approve", &name, "--yes"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("the proposal is Applied; it can no longer be decided"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_records_the_reason_and_needs_one() {
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;
    let o = fx.plugin(APPROVERS[1], &["reject", &name]).await;
    assert_eq!(o.status.code(), Some(2), "clap requires --reason");
    let o = fx
        .plugin(APPROVERS[1], &["reject", &name, "--reason", "  ", "--yes"])
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("PLUGIN_REASON_REQUIRED"), "{}", text(&o).1);

    let o = fx
        .plugin(
            APPROVERS[1],
            &[
                "reject",
                &name,
                "--reason",
                "the customer already paid the fee",
                "--yes",
            ],
        )
        .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("rejected: proposal")
            && out.contains("rejection recorded for carol: the customer already paid the fee"),
        "{out}"
    );
    let p = fx.proposals().get(&name).await.unwrap();
    let rejection: Value = serde_json::from_str(&p.annotations()[ANNOTATION_REJECTION]).unwrap();
    assert_eq!(rejection["user"], "carol");
    assert_eq!(rejection["reason"], "the customer already paid the fee");
    let o = fx.plugin(APPROVERS[0], &["review", &name, "-o", "json"]).await;
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let d = r["decisions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("rejected"), Some("the customer already paid the fee"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_without_a_terminal_needs_yes_and_a_terminal_asks() {
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;
    for args in [
        vec!["approve", name.as_str()],
        vec!["reject", name.as_str(), "--reason", "no"],
    ] {
        let o = fx.plugin(APPROVERS[0], &args).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("error[PLUGIN_CONFIRMATION_REQUIRED]") && err.contains("--yes"),
            "{err}"
        );
        assert!(out.contains("late_fee_cents"), "the review is still shown:\n{out}");
    }
    assert!(
        !fx.proposals()
            .get(&name)
            .await
            .unwrap()
            .annotations()
            .contains_key(ANNOTATION_APPROVALS)
    );

    // In a terminal: the review (in colour, unless NO_COLOR), the question; "n" records nothing,
    // "y" approves.
    let run = |answer: &'static str, no_color: bool| {
        let mut cmd = StdCommand::new(BIN);
        cmd.arg("--kubeconfig")
            .arg(fx.kubeconfig_of(APPROVERS[0], false))
            .args(["-n", &fx.ns, "approve", &name])
            .env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let question = format!("Approve proposal {name} in namespace {}", fx.ns);
        tokio::task::spawn_blocking(move || {
            let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
            let before = p.exp_string("[y/N]").unwrap();
            p.send_line(answer).unwrap();
            let rest = p.exp_eof().unwrap();
            let status = p.process.wait().unwrap();
            assert!(before.contains(&question), "{before}");
            (before, rest, status)
        })
    };
    let (before, rest, status) = run("n", true).await.unwrap();
    assert!(!before.contains('\x1b'), "NO_COLOR: {before:?}");
    assert!(rest.contains("PLUGIN_ABORTED"), "{rest}");
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 1)),
        "{status:?}"
    );
    assert!(
        !fx.proposals()
            .get(&name)
            .await
            .unwrap()
            .annotations()
            .contains_key(ANNOTATION_APPROVALS)
    );

    let (before, rest, status) = run("y", false).await.unwrap();
    assert!(
        before.contains("\x1b[31m5500\x1b[0m -> \x1b[32m2500\x1b[0m"),
        "colour on a terminal: {before:?}"
    );
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}: {rest}"
    );
    assert!(rest.contains("approval recorded for alice"), "{rest}");
    assert!(
        fx.proposals()
            .get(&name)
            .await
            .unwrap()
            .annotations()
            .contains_key(ANNOTATION_APPROVALS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_zero_once_applied_and_non_zero_otherwise() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let Some(fx) = Fx::new().await else { return };
    let name = fx.propose("INV-1", 2500).await;

    // Started while Pending; the status moves on as the controller moves it.
    let mut child = fx
        .plugin_cmd(APPROVERS[0], &["wait", &name, "--timeout", "30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).await.unwrap();
    assert!(
        line.contains(&format!("waiting for proposal {name} (Pending)")),
        "{line}"
    );
    let o = fx.plugin(APPROVERS[0], &["approve", &name, "--yes"]).await;
    assert!(o.status.success(), "{}", text(&o).1);
    for phase in ["Approved", "Applying"] {
        fx.set_status(&name, json!({"phase": phase})).await;
    }
    fx.set_status(
        &name,
        json!({"phase": "Applied", "message": "applied", "receipt": {"status": "applied"}}),
    )
    .await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert!(status.success(), "{out}\n{rest}");
    assert_eq!(out, format!("proposal {name} is Applied (receipt: applied)\n"));
    assert!(rest.contains(&format!("proposal {name}: Applied")), "{rest}");

    // Rejected: non-zero, with the phase and the reason; `--for terminal` is satisfied by it.
    let rejected = fx.propose("INV-2", 100).await;
    fx.set_status(
        &rejected,
        json!({"phase": "Rejected", "message": "rejected by carol: the customer already paid",
               "rejection": {"user": "carol", "at": "2026-11-25T10:00:00Z", "reason": "the customer already paid"}}),
    )
    .await;
    let o = fx.plugin(APPROVERS[0], &["wait", &rejected]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("error[PLUGIN_WAIT_ENDED]: proposal \"{rejected}\" ended Rejected: rejected by carol: the customer already paid")),
        "{err}"
    );
    let o = fx.plugin(APPROVERS[0], &["wait", &rejected, "--for", "terminal"]).await;
    assert!(o.status.success(), "{}", text(&o).1);

    // Still pending at the deadline: exit 3.
    let pending = fx.propose("INV-3", 200).await;
    let started = Instant::now();
    let o = fx.plugin(APPROVERS[0], &["wait", &pending, "--timeout", "1s"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("PLUGIN_WAIT_TIMEOUT") && err.contains("is still Pending after 1s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let o = fx.plugin(APPROVERS[0], &["wait", &pending, "--timeout", "soon"]).await;
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_name_gives_a_clear_error() {
    let Some(fx) = Fx::new().await else { return };
    for args in [
        vec!["review", "wrp-does-not-exist"],
        vec!["approve", "wrp-does-not-exist", "--yes"],
        vec!["reject", "wrp-does-not-exist", "--reason", "x", "--yes"],
        vec!["wait", "wrp-does-not-exist"],
    ] {
        let o = fx.plugin(APPROVERS[0], &args).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(
            err.trim_end(),
            format!(
                "error[PLUGIN_NOT_FOUND]: proposal \"wrp-does-not-exist\" not found in namespace \"{0}\". \
                 List them with: kubectl synapsor list -n {0} (or -A for all namespaces)",
                fx.ns
            ),
            "{args:?}"
        );
    }
    // A kubeconfig that does not exist.
    let o = StdCommand::new(BIN)
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("error[PLUGIN_KUBECONFIG]"), "{}", text(&o).1);
}

/// Where no Synapsor webhook handles proposals, an approval annotation would be stored as is
/// and approve nothing (the controller trusts only signed records): the plugin says so and
/// takes it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_webhook_an_approval_is_taken_back_and_reported() {
    let Some(fx) = Fx::new().await else { return };
    // A namespace the test's webhook configuration does not select.
    let bare = format!("{}-bare", fx.ns);
    let namespaces: Api<Namespace> = Api::all(fx.admin.clone());
    create_or_keep(&namespaces, obj(json!({"metadata": {"name": bare}}))).await;
    let api: Api<Proposal> = Api::namespaced(fx.admin.clone(), &bare);
    let name = api
        .create(&PostParams::default(), &proposal("INV-1", 2500))
        .await
        .unwrap()
        .name_any();
    let o = StdCommand::new(BIN)
        .arg("--kubeconfig")
        .arg(&fx.admin_kubeconfig)
        .args(["-n", &bare, "approve", &name, "--yes"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    let p = api.get(&name).await.unwrap();
    let _ = namespaces.delete(&bare, &Default::default()).await;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[PLUGIN_WEBHOOK_MISSING]") && err.contains("removed again"),
        "{err}"
    );
    assert!(
        !p.annotations().contains_key(ANNOTATION_APPROVE),
        "{:?}",
        p.annotations()
    );
}
