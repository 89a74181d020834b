//! Support for the Kubernetes tests: a real API server (from `KUBECONFIG`, started by
//! `scripts/k8s.sh` or a kind cluster), a namespace per test with its own webhook configuration
//! and RBAC, a PostgreSQL database with read and write roles, and the real `synapsor-controller`
//! and `synapsor-runner` binaries as child processes.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::CustomResourceExt;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use synapsor_core::config::Engine;
use synapsor_kube::{Phase, Proposal};
use synapsor_testdb::{Runner, Server, TestDb, unique};

pub const APPROVERS: [&str; 2] = ["alice", "carol"];
/// Can patch proposals but is not allowed the verb `approve`.
pub const EDITOR: &str = "bob";
pub const TOOL: &str = "billing.propose_late_fee";

pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The cluster of these tests: `KUBECONFIG`; without it the test is skipped, or fails under
/// `SYNAPSOR_REQUIRE_K8S=1` (scripts/test.sh).
pub fn kubeconfig() -> Option<PathBuf> {
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

pub fn kubectl_bin() -> String {
    std::env::var("SYNAPSOR_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The address the API server reaches the webhook on: loopback for the local API server; the
/// Docker host for kind (`scripts/kind-up.sh` exports it).
pub fn webhook_host() -> String {
    std::env::var("SYNAPSOR_K8S_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// The binary `name` the tests run: `SYNAPSOR_CONTROLLER_BIN` or `SYNAPSOR_RUNNER_BIN` when set
/// (the benchmark runs release builds), else this workspace's build next to the test.
pub fn bin(name: &str) -> PathBuf {
    let var = match name {
        "synapsor-controller" => Some("SYNAPSOR_CONTROLLER_BIN"),
        "synapsor-runner" => Some("SYNAPSOR_RUNNER_BIN"),
        _ => None,
    };
    if let Some(var) = var
        && let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty())
    {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return path;
    }
    let controller = PathBuf::from(env!("CARGO_BIN_EXE_synapsor-controller"));
    if name == "synapsor-controller" {
        return controller;
    }
    let p = controller.with_file_name(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` (scripts/test.sh does)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything one test needs.
pub struct Fixture {
    pub client: kube::Client,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub sidecar_kubeconfig: PathBuf,
    pub sidecar_user: String,
    pub db: Db,
    pub config_path: PathBuf,
    pub tls: Tls,
    pub key_path: PathBuf,
    pub webhook_port: u16,
    pub controllers: Vec<Controller>,
}

pub struct Tls {
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A PostgreSQL database seeded with invoices, a SELECT-only role, a writer role and the
/// receipts table (see `synapsor-testdb`).
pub type Db = TestDb<Engine>;

/// The executor's receipts table, for the test databases.
pub const RUNNER: Runner<Engine> = Runner {
    receipts_ddl: |e, schema| synapsor_executor::receipts_ddl(e, schema).unwrap(),
    receipts_grants: |e, schema, writer| synapsor_executor::receipts_grants(e, writer, schema, &[]).unwrap(),
};

/// The controller's own rows (its tests assert these fees); `TestDb`'s row helpers read them as
/// they read the shared seed.
pub const PG_SEED: &str = r#"
CREATE TABLE invoices (
  id text PRIMARY KEY, tenant_id text NOT NULL, late_fee_cents bigint NOT NULL,
  updated_at timestamptz NOT NULL, apply_count integer NOT NULL DEFAULT 0);
INSERT INTO invoices (id, tenant_id, late_fee_cents, updated_at) VALUES
  ('INV-1', 'acme', 5500, '2026-06-23T09:00:00Z'),
  ('INV-2', 'acme', 700, '2026-06-21T10:00:00Z'),
  ('INV-3', 'acme', 800, '2026-06-21T10:00:00Z'),
  ('INV-4', 'acme', 900, '2026-06-21T10:00:00Z');
CREATE FUNCTION bump_apply_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.apply_count := OLD.apply_count + 1; RETURN NEW; END $$;
CREATE TRIGGER invoices_apply_count BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION bump_apply_count();
"#;

/// A connection holding `SELECT ... FOR UPDATE` on a row until it is dropped or rolled back.
pub async fn lock_row(db: &Db, id: &str) -> sqlx::PgConnection {
    let mut c = sqlx::PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "BEGIN; SELECT id FROM invoices WHERE id = '{id}' FOR UPDATE;"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    c
}

pub fn config_doc(required_approvals: u32) -> Value {
    json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "sources": {"main": {"engine": "postgres", "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 4000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [{
            "name": TOOL, "kind": "proposal", "source": "main",
            "description": "Propose a late fee.",
            "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
            "args": {"invoice_id": {"type": "string", "max_length": 64}, "late_fee_cents": {"type": "number", "minimum": 0, "maximum": 100000}},
            "lookup": {"id_from_arg": "invoice_id"},
            "visible_columns": ["id", "late_fee_cents"],
            "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
            "allowed_columns": ["late_fee_cents"],
            "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
            "conflict_guard": {"column": "updated_at"},
            "approval": {"required_approvals": required_approvals}
        }]
    })
}

/// Self-signed CA and a serving certificate for `host` (an IP), made with openssl.
fn make_tls(dir: &Path, host: &str) -> Tls {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
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
        "/CN=synapsor-test-ca",
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
    Tls {
        ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    }
}

async fn create_or_replace<K>(api: &Api<K>, obj: K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create failed: {e}"),
    }
}

/// The CRD generated from the Rust types, marked with a digest of itself so a test can tell an
/// older installed version (whose schema would prune new fields) from the current one.
fn crd_to_install() -> (CustomResourceDefinition, String) {
    let mut crd = Proposal::crd();
    let digest = synapsor_core::digest::digest_value(&serde_json::to_value(&crd).unwrap());
    crd.metadata.annotations = Some([("runner.synapsor.ai/test-crd-digest".to_owned(), digest.clone())].into());
    (crd, digest)
}

/// Installs (or updates) the CRD once per cluster and waits until it is served.
pub async fn install_crd(client: &kube::Client) {
    const NAME: &str = "proposals.runner.synapsor.ai";
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let (crd, digest) = crd_to_install();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match crds.get_opt(NAME).await.unwrap() {
            None => {
                let _ = crds.create(&PostParams::default(), &crd).await;
            }
            Some(current) if current.annotations().get("runner.synapsor.ai/test-crd-digest") != Some(&digest) => {
                let mut want = crd.clone();
                want.metadata.resource_version = current.metadata.resource_version.clone();
                // Tests race to update it; the loser sees it current on the next round.
                let _ = crds.replace(NAME, &PostParams::default(), &want).await;
            }
            Some(current) => {
                let established = current
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                // The discovery cache of a fresh CRD lags a little behind Established.
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

/// A client of the API server in the kubeconfig file at `path` (its current context).
pub async fn client_for(path: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn yaml_obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A kubeconfig that acts as `user` (impersonation by the admin of the test kubeconfig).
fn impersonating_kubeconfig(admin: &Path, out: &Path, user: &str, groups: &[&str]) {
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
    std::fs::write(out, serde_yaml::to_string(&doc).unwrap()).unwrap();
}

impl Fixture {
    /// A fresh namespace with the webhook configuration, RBAC, certificates, a signing key, a
    /// database and a config. `None` when the cluster or the database is not available.
    pub async fn new(required_approvals: u32) -> Option<Fixture> {
        crypto();
        let kubeconfig = kubeconfig()?;
        let db = RUNNER.create(Server::Postgres, PG_SEED, &["invoices"], true).await?;
        let client = kube::Client::try_default().await.unwrap();
        Some(Self::assemble(required_approvals, kubeconfig, client, db).await)
    }

    /// [`Fixture::new`] on the API server of `kubeconfig` (one file) instead of `KUBECONFIG`'s,
    /// e.g. a private one a test may stop. `None` when the database is not available.
    pub async fn with_kubeconfig(required_approvals: u32, kubeconfig: &Path) -> Option<Fixture> {
        crypto();
        let db = RUNNER.create(Server::Postgres, PG_SEED, &["invoices"], true).await?;
        let client = client_for(kubeconfig).await;
        Some(Self::assemble(required_approvals, kubeconfig.to_owned(), client, db).await)
    }

    async fn assemble(required_approvals: u32, kubeconfig: PathBuf, client: kube::Client, db: Db) -> Fixture {
        install_crd(&client).await;
        let ns = unique("synapsor-k").replace('_', "-");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        create_or_replace(
            &namespaces,
            yaml_obj(json!({"metadata": {"name": ns, "labels": {"runner.synapsor.ai/test": ns}}})),
        )
        .await;

        let dir = tempfile::tempdir().unwrap();
        let tls = make_tls(dir.path(), &webhook_host());
        let key_path = dir.path().join("approval.key");
        std::fs::write(&key_path, unique("approval-key-0123456789abcdefghijklmnopqrstuvwxyz")).unwrap();
        let config_path = dir.path().join("synapsor.runner.json");
        std::fs::write(
            &config_path,
            serde_json::to_string_pretty(&config_doc(required_approvals)).unwrap(),
        )
        .unwrap();

        let sidecar_user = format!("system:serviceaccount:{ns}:runner");
        let sidecar_kubeconfig = dir.path().join("sidecar.kubeconfig");
        impersonating_kubeconfig(
            &kubeconfig,
            &sidecar_kubeconfig,
            &sidecar_user,
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{ns}"),
                "system:authenticated",
            ],
        );

        let fx = Fixture {
            client,
            ns,
            dir,
            kubeconfig,
            sidecar_kubeconfig,
            sidecar_user,
            db,
            config_path,
            tls,
            key_path,
            webhook_port: free_port(),
            controllers: Vec::new(),
        };
        fx.install_rbac().await;
        fx.install_webhook().await;
        fx
    }

    async fn install_rbac(&self) {
        let ns = &self.ns;
        let roles: Api<Role> = Api::namespaced(self.client.clone(), ns);
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), ns);
        let group = "runner.synapsor.ai";
        let role = |name: &str, verbs: &[&str]| -> Role {
            yaml_obj(
                json!({"metadata": {"name": name}, "rules": [{"apiGroups": [group], "resources": ["proposals"], "verbs": verbs}]}),
            )
        };
        create_or_replace(
            &roles,
            role("approver", &["get", "list", "watch", "patch", "update", "approve"]),
        )
        .await;
        create_or_replace(&roles, role("editor", &["get", "list", "watch", "patch", "update"])).await;
        // What the sidecar needs, and nothing more.
        create_or_replace(&roles, role("runner", &["create", "get", "list", "watch"])).await;
        let bind = |name: &str, role: &str, subjects: Value| -> RoleBinding {
            yaml_obj(json!({"metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": subjects}))
        };
        let users = |names: &[&str]| {
            Value::Array(
                names
                    .iter()
                    .map(|n| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": n}))
                    .collect(),
            )
        };
        create_or_replace(&bindings, bind("approvers", "approver", users(&APPROVERS))).await;
        create_or_replace(&bindings, bind("editors", "editor", users(&[EDITOR]))).await;
        create_or_replace(
            &bindings,
            bind("runner", "runner", users(&[self.sidecar_user.as_str()])),
        )
        .await;
    }

    /// Gives the sidecar's identity the approver role too: RBAC would then allow it, and only the
    /// webhook's proposer rule stands between it and its own proposals.
    pub async fn grant_sidecar_approve(&self) {
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &self.ns);
        create_or_replace(
            &bindings,
            yaml_obj(json!({"metadata": {"name": "runner-misconfigured-approver"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "approver"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": self.sidecar_user}]})),
        )
        .await;
    }

    fn webhook_name(&self) -> String {
        format!("synapsor-{}", self.ns)
    }

    async fn install_webhook(&self) {
        use base64_engine::encode;
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let cfg: MutatingWebhookConfiguration = yaml_obj(json!({
            "metadata": {"name": self.webhook_name()},
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
                    "url": format!("https://{}:{}/mutate-proposals", webhook_host(), self.webhook_port),
                    "caBundle": encode(self.tls.ca_pem.as_bytes()),
                },
            }]
        }));
        create_or_replace(&api, cfg).await;
    }

    /// Adds the sidecar injector's webhook for pods created in this namespace (failurePolicy
    /// Fail here, so a broken injector fails the test instead of passing pods through).
    pub async fn install_injector(&self) {
        use base64_engine::encode;
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let cfg: MutatingWebhookConfiguration = yaml_obj(json!({
            "metadata": {"name": format!("{}-inject", self.webhook_name())},
            "webhooks": [{
                "name": "inject.runner.synapsor.ai",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "reinvocationPolicy": "IfNeeded",
                "namespaceSelector": {"matchLabels": {"runner.synapsor.ai/test": self.ns}},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                           "operations": ["CREATE"], "scope": "Namespaced"}],
                "clientConfig": {
                    "url": format!("https://{}:{}/inject-pods", webhook_host(), self.webhook_port),
                    "caBundle": encode(self.tls.ca_pem.as_bytes()),
                },
            }]
        }));
        create_or_replace(&api, cfg).await;
    }

    /// Points the webhook at another replica's port (what a Service does when endpoints change).
    pub async fn point_webhook_to(&self, port: u16) {
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let patch = json!([{"op": "replace", "path": "/webhooks/0/clientConfig/url",
                            "value": format!("https://{}:{port}/mutate-proposals", webhook_host())}]);
        api.patch(
            &self.webhook_name(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
        )
        .await
        .unwrap();
    }

    pub fn proposals(&self) -> Api<Proposal> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Starts a controller replica named `identity` with its own ledger and HTTP port; waits until
    /// it is ready.
    pub async fn start_controller(&mut self, identity: &str) -> usize {
        self.start_controller_with(identity, &[]).await
    }

    /// [`start_controller`](Self::start_controller) with extra `run` arguments.
    pub async fn start_controller_with(&mut self, identity: &str, extra: &[&str]) -> usize {
        let i = self.spawn_controller(identity, extra);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.controllers[i].get("/readyz").await.map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "controller {identity} not ready in 30 s:\n{}",
                self.controllers[i].log_text()
            );
            if let Some(c) = self.controllers[i].child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "controller {identity} exited ({status}):\n{}",
                    self.controllers[i].log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        i
    }

    /// Starts a controller replica and returns at once, ready or not.
    pub fn spawn_controller(&mut self, identity: &str, extra: &[&str]) -> usize {
        let http_port = free_port();
        let ledger = self.dir.path().join(format!("controller-{identity}.db"));
        let log = self.dir.path().join(format!("controller-{identity}.log"));
        let bind_host = if webhook_host() == "127.0.0.1" {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let child = Command::new(bin("synapsor-controller"))
            .args([
                "run",
                "--namespace",
                &self.ns,
                "--lease-namespace",
                &self.ns,
                "--lease-name",
                "synapsor-controller",
                "--identity",
                identity,
            ])
            .arg("--config")
            .arg(&self.config_path)
            .arg("--ledger")
            .arg(&ledger)
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--webhook-addr")
            .arg(format!("{bind_host}:{}", self.webhook_port))
            .arg("--tls-cert")
            .arg(&self.tls.cert)
            .arg("--tls-key")
            .arg(&self.tls.key)
            .arg("--approval-key-file")
            .arg(&self.key_path)
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("TEST_WRITE_URL", &self.db.write_url)
            .env("SYNAPSOR_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.controllers.push(Controller {
            child: Some(child),
            identity: identity.to_owned(),
            http_port,
            ledger,
            log,
        });
        self.controllers.len() - 1
    }

    /// The sidecar as an MCP server over stdio, publishing proposals to this namespace as the
    /// sidecar's service account.
    pub async fn sidecar(&self) -> RunningService<RoleClient, ()> {
        self.sidecar_with_ttl("24h").await
    }

    /// [`Fixture::sidecar`] whose proposals expire after `ttl` (`--proposal-ttl`).
    pub async fn sidecar_with_ttl(&self, ttl: &str) -> RunningService<RoleClient, ()> {
        let mut cmd = self.runner(&[
            "mcp",
            "serve",
            "--proposal-store",
            "kubernetes",
            "--kube-namespace",
            &self.ns,
            "--proposal-ttl",
            ttl,
        ]);
        cmd.stderr(Stdio::inherit());
        ().serve(TokioChildProcess::new(tokio::process::Command::from(cmd)).unwrap())
            .await
            .unwrap()
    }

    /// `synapsor-runner <args>` as the sidecar runs: this fixture's config and ledger, the
    /// sidecar's kubeconfig, the read URL and the trusted context, and no writer URL.
    pub fn runner(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("synapsor-runner"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--store")
            .arg(self.sidecar_ledger())
            .env("KUBECONFIG", &self.sidecar_kubeconfig)
            .env("TEST_READ_URL", &self.db.read_url)
            .env("SYNAPSOR_TENANT_ID", "acme")
            .env("SYNAPSOR_PRINCIPAL", "agent.k8s")
            .env_remove("TEST_WRITE_URL");
        cmd
    }

    /// A kubeconfig of `user`'s own, as a person has (the admin's credentials, impersonating
    /// `user`), written into the fixture's folder.
    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{user}.kubeconfig"));
        impersonating_kubeconfig(&self.kubeconfig, &path, user, &["system:authenticated"]);
        path
    }

    pub fn sidecar_ledger(&self) -> PathBuf {
        self.dir.path().join("sidecar.db")
    }

    /// `kubectl <args>` in the namespace, acting as `user` (None: the admin).
    pub fn kubectl(&self, user: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(kubectl_bin());
        cmd.env("KUBECONFIG", &self.kubeconfig).args(["-n", &self.ns]);
        if let Some(u) = user {
            cmd.args(["--as", u]);
            if u.starts_with("system:serviceaccount:") {
                cmd.args([
                    "--as-group",
                    "system:serviceaccounts",
                    "--as-group",
                    "system:authenticated",
                ]);
            }
        }
        cmd.args(args).output().unwrap()
    }

    pub fn approve(&self, user: &str, name: &str) -> Output {
        self.annotate(user, name, "runner.synapsor.ai/approve=true")
    }

    /// `kubectl annotate proposal/<name> runner.synapsor.ai/reject=<reason>` as `user`.
    pub fn reject(&self, user: &str, name: &str, reason: &str) -> Output {
        self.annotate(user, name, &format!("runner.synapsor.ai/reject={reason}"))
    }

    fn annotate(&self, user: &str, name: &str, annotation: &str) -> Output {
        self.kubectl(Some(user), &["annotate", &format!("proposal/{name}"), annotation])
    }

    /// Waits until the proposal reaches `phase`.
    pub async fn wait_phase(&self, name: &str, phase: Phase, secs: u64) -> Proposal {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.proposals().get(name).await.unwrap();
            if p.status.as_ref().and_then(|s| s.phase) == Some(phase) {
                return p;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self.controllers.iter().map(Controller::log_text).collect();
                panic!(
                    "{name} did not reach {phase} in {secs} s; status: {}\ncontroller logs:\n{}",
                    serde_json::to_string_pretty(&p.status).unwrap(),
                    logs.join("\n----\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn cleanup(mut self) {
        for c in &mut self.controllers {
            c.kill();
        }
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let _ = api.delete(&self.webhook_name(), &DeleteParams::default()).await;
        let _ = api
            .delete(&format!("{}-inject", self.webhook_name()), &DeleteParams::default())
            .await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
    }
}

/// The tool call that proposes `fee` on `invoice`; returns the v2 envelope.
pub async fn propose(client: &RunningService<RoleClient, ()>, invoice: &str, fee: i64) -> Value {
    let Value::Object(args) = json!({"invoice_id": invoice, "late_fee_cents": fee}) else {
        unreachable!()
    };
    let result = client
        .call_tool(CallToolRequestParams::new(TOOL.to_owned()).with_arguments(args))
        .await
        .unwrap();
    let v = serde_json::to_value(result).unwrap();
    v.get("structuredContent").cloned().unwrap_or(v)
}

pub struct Controller {
    pub child: Option<Child>,
    pub identity: String,
    pub http_port: u16,
    pub ledger: PathBuf,
    pub log: PathBuf,
}

impl Controller {
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.ok()?;
        let status = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    }

    /// The value of a metric line (`name` including labels), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics").await.unwrap_or_default();
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (at most 30 s, then SIGKILL and fail): the graceful path.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let stacks = Command::new("gdb")
                    .args(["-batch", "-ex", "thread apply all bt", "-p", &c.id().to_string()])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                eprintln!("threads of the controller that did not stop:\n{stacks}");
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "controller {} did not stop within 30 s of SIGTERM:\n{}",
                    self.identity,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Standard base64 (for the webhook's caBundle), without another dependency.
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
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
}

/// The proposals that are not terminal yet, as `name (phase: message)`.
#[allow(dead_code)]
pub async fn unfinished(api: &Api<Proposal>) -> Vec<String> {
    let list = api.list(&kube::api::ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|p| !synapsor_kube::review::is_terminal(p))
        .map(|p| {
            let message = p.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
            format!(
                "{} ({}: {message})",
                p.name_any(),
                synapsor_kube::review::effective_phase(p)
            )
        })
        .collect()
}
