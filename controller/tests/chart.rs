//! The Helm chart (`charts/synapsor-runner`): it lints, renders a controller the binary accepts
//! (every environment variable it sets is one `synapsor-controller run` reads), renders its
//! options as documented (sidecar injection, webhook.url, the receipts hook Job, the
//! NetworkPolicy, the apps' ServiceAccounts), refuses bad values, and installs on a real API
//! server with least-privilege RBAC.
#![allow(clippy::unwrap_used)]

mod k8s_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use k8s_support::*;
use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    repo().join("charts/synapsor-runner")
}

/// The helm binary (scripts/k8s.sh exports it); `None` skips unless SYNAPSOR_REQUIRE_K8S=1.
fn helm() -> Option<String> {
    match std::env::var("SYNAPSOR_HELM") {
        Ok(h) if !h.is_empty() => Some(h),
        _ => {
            if std::env::var("SYNAPSOR_REQUIRE_K8S").as_deref() == Ok("1") {
                panic!("SYNAPSOR_HELM is not set but SYNAPSOR_REQUIRE_K8S=1: run through scripts/test.sh");
            }
            eprintln!("skipping: SYNAPSOR_HELM is not set (eval \"$(scripts/k8s.sh start)\")");
            None
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn config_file() -> String {
    repo()
        .join("examples/billing-postgres/synapsor.runner.json")
        .display()
        .to_string()
}

fn render(helm: &str, extra: &[&str]) -> Vec<Value> {
    let out = run(Command::new(helm)
        .args([
            "template",
            "synapsor",
            &chart().display().to_string(),
            "--namespace",
            "synapsor-system",
        ])
        .args(["--set-file", &format!("runnerConfig.json={}", config_file())])
        .args(extra));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The one controller container of the rendered Deployment.
fn controller_container(docs: &[Value]) -> &Value {
    let deployments = kind(docs, "Deployment");
    assert_eq!(deployments.len(), 1);
    &deployments[0]["spec"]["template"]["spec"]["containers"][0]
}

/// The value of the environment variable `name` of a container.
fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap_or_default())
}

/// The webhook entry `name` of the one MutatingWebhookConfiguration.
fn webhook<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    let configs = kind(docs, "MutatingWebhookConfiguration");
    assert_eq!(configs.len(), 1);
    configs[0]["webhooks"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
}

/// Every variable the chart sets on the controller is one `synapsor-controller run` reads.
fn assert_controller_reads_its_env(container: &Value) {
    let help = String::from_utf8(run(Command::new(bin("synapsor-controller")).args(["run", "--help"])).stdout).unwrap();
    let env = container["env"].as_sequence().unwrap();
    assert!(!env.is_empty());
    for e in env {
        let name = e["name"].as_str().unwrap();
        assert!(
            help.contains(&format!("[env: {name}")),
            "the chart sets {name}, which `synapsor-controller run` does not read:\n{help}"
        );
    }
}

const ALL_OPTIONS: &[&str] = &[
    "--set",
    "sidecar.namespaces={apps,apps2}",
    "--set",
    "sidecar.serviceAccounts={billing-app,reports-app}",
    "--set",
    "sidecar.injection.enabled=true",
    "--set",
    "sidecar.injection.envSecret=billing-agent-env",
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "receipts.init.enabled=true",
    "--set",
    "receipts.init.adminSecret=billing-admin",
    "--set",
    "receipts.init.adminUrlEnv=BILLING_ADMIN_URL",
    "--set",
    "receipts.init.source=billing",
    "--set",
    "controller.envFrom[0].secretRef.name=synapsor-writer-urls",
];

#[test]
fn chart_lints_and_renders_a_controller_the_binary_accepts() {
    let Some(helm) = helm() else { return };
    let lint = |extra: &[&str]| {
        run(Command::new(&helm)
            .args(["lint", "--strict", &chart().display().to_string()])
            .args(extra));
    };
    let config = format!("runnerConfig.json={}", config_file());
    lint(&[]);
    lint(&["--set-file", &config]);
    lint(&[&["--set-file", config.as_str()][..], ALL_OPTIONS].concat());
    lint(&[
        "--set-file",
        &config,
        "--set",
        "webhook.url=https://192.168.1.10:8443",
        "--set",
        "webhook.tls.mode=secret",
        "--set",
        "webhook.tls.secret.name=synapsor-dev-webhook",
        "--set",
        "webhook.tls.secret.caBundle=Q0EK",
        "--set",
        "controller.replicas=0",
        "--set",
        "sidecar.injection.enabled=true",
    ]);

    let docs = render(&helm, &[]);
    let container = controller_container(&docs);
    // The image's entrypoint is the controller binary: no command, args after it.
    assert_eq!(container["image"], "ghcr.io/synapsor/synapsor-controller:0.1.0");
    assert!(
        container["command"].is_null(),
        "the entrypoint runs synapsor-controller"
    );
    assert_eq!(container["args"][0], "run");
    assert_controller_reads_its_env(container);
    assert!(
        env_value(container, "SYNAPSOR_INJECT_IMAGE").is_none(),
        "injection is off by default"
    );
    // The chart's defaults of the apply concurrency and the API rate limit are the binary's.
    use synapsor_controller::cli::{DEFAULT_KUBE_API_BURST, DEFAULT_KUBE_API_QPS, DEFAULT_MAX_CONCURRENT_APPLIES};
    for (name, default) in [
        (
            "SYNAPSOR_MAX_CONCURRENT_APPLIES",
            DEFAULT_MAX_CONCURRENT_APPLIES.to_string(),
        ),
        ("SYNAPSOR_KUBE_API_QPS", DEFAULT_KUBE_API_QPS.to_string()),
        ("SYNAPSOR_KUBE_API_BURST", DEFAULT_KUBE_API_BURST.to_string()),
    ] {
        assert_eq!(env_value(container, name), Some(default.as_str()), "{name}");
    }
    // `--set` reads 12.5 as a string: a fraction comes from --set-json or a values file.
    for (how, qps) in [("--set", "50"), ("--set-json", "12.5")] {
        let tuned = render(
            &helm,
            &[
                how,
                &format!("controller.kubeApiQps={qps}"),
                "--set",
                "controller.kubeApiBurst=30",
            ],
        );
        let tuned = controller_container(&tuned);
        assert_eq!(env_value(tuned, "SYNAPSOR_KUBE_API_QPS"), Some(qps));
        assert_eq!(env_value(tuned, "SYNAPSOR_KUBE_API_BURST"), Some("30"));
    }
    // The probes and ports are the ones the binary serves.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");

    let hooks = kind(&docs, "MutatingWebhookConfiguration");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["webhooks"].as_sequence().unwrap().len(), 1);
    let hook = webhook(&docs, "proposals.runner.synapsor.ai").unwrap();
    assert_eq!(
        hook["failurePolicy"], "Fail",
        "no approval may pass while the webhook is down"
    );
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate-proposals");
    assert_eq!(hook["rules"][0]["resources"][0], "proposals");
    assert_eq!(strings(&hook["rules"][0]["operations"]), ["CREATE", "UPDATE"]);
    assert!(!hook["clientConfig"]["caBundle"].as_str().unwrap_or_default().is_empty());
    for absent in ["NetworkPolicy", "Job"] {
        assert!(kind(&docs, absent).is_empty(), "no {absent} by default");
    }

    // The sidecar's Role: create and read proposals, nothing else.
    let roles = kind(&docs, "Role");
    let sidecar = roles
        .iter()
        .find(|r| r["metadata"]["labels"]["app.kubernetes.io/component"] == "sidecar")
        .expect("a sidecar Role");
    assert_eq!(
        strings(&sidecar["rules"][0]["verbs"]),
        ["create", "get", "list", "watch"]
    );

    // The image tag or digest is per binary.
    let docs = render(
        &helm,
        &[
            "--set",
            "image.controller.tag=1.2.3",
            "--set",
            "image.runner.repository=registry.example.com/runner",
            "--set",
            &format!("image.runner.digest=sha256:{}", "a".repeat(64)),
            "--set",
            "sidecar.injection.enabled=true",
        ],
    );
    let container = controller_container(&docs);
    assert_eq!(container["image"], "ghcr.io/synapsor/synapsor-controller:1.2.3");
    assert_eq!(
        env_value(container, "SYNAPSOR_INJECT_IMAGE").unwrap(),
        format!("registry.example.com/runner@sha256:{}", "a".repeat(64))
    );
}

#[test]
fn chart_injection_adds_a_pod_webhook_and_the_injector_settings() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, ALL_OPTIONS);
    let container = controller_container(&docs);
    assert_controller_reads_its_env(container);
    for (name, value) in [
        ("SYNAPSOR_INJECT_IMAGE", "ghcr.io/synapsor/synapsor-runner:0.1.0"),
        ("SYNAPSOR_INJECT_PULL_POLICY", "IfNotPresent"),
        ("SYNAPSOR_INJECT_CONFIG_MAP", "synapsor-config"),
        ("SYNAPSOR_INJECT_ENV_SECRET", "billing-agent-env"),
        ("SYNAPSOR_INJECT_PORT", "8766"),
        ("SYNAPSOR_INJECT_CPU_REQUEST", "20m"),
        ("SYNAPSOR_INJECT_MEMORY_REQUEST", "32Mi"),
        ("SYNAPSOR_INJECT_MEMORY_LIMIT", "128Mi"),
    ] {
        assert_eq!(env_value(container, name), Some(value), "{name}");
    }

    let proposals = webhook(&docs, "proposals.runner.synapsor.ai").unwrap();
    let pods = webhook(&docs, "inject.runner.synapsor.ai").expect("the pod webhook");
    assert_eq!(
        pods["failurePolicy"], "Ignore",
        "an unavailable injector never blocks unrelated pods"
    );
    assert_eq!(pods["sideEffects"], "None");
    assert_eq!(pods["reinvocationPolicy"], "IfNeeded");
    assert_eq!(pods["clientConfig"]["service"]["path"], "/inject-pods");
    assert_eq!(
        pods["clientConfig"]["service"]["name"],
        proposals["clientConfig"]["service"]["name"]
    );
    let ca = pods["clientConfig"]["caBundle"].as_str().unwrap();
    assert!(!ca.is_empty());
    assert_eq!(ca, proposals["clientConfig"]["caBundle"].as_str().unwrap());
    assert_eq!(strings(&pods["rules"][0]["resources"]), ["pods"]);
    assert_eq!(strings(&pods["rules"][0]["operations"]), ["CREATE"]);
    let selector = &pods["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(selector["key"], "kubernetes.io/metadata.name");
    assert_eq!(selector["operator"], "In");
    assert_eq!(strings(&selector["values"]), ["apps", "apps2"]);
    let own = &pods["objectSelector"]["matchExpressions"][0];
    assert_eq!(
        (own["key"].as_str(), own["operator"].as_str()),
        (Some("app.kubernetes.io/part-of"), Some("NotIn")),
        "the chart's own pods never go to the injector"
    );
    // Injected pods mount the runner ConfigMap from their own namespace.
    let config_maps: Vec<&str> = kind(&docs, "ConfigMap")
        .iter()
        .filter(|c| c["metadata"]["name"] == "synapsor-config")
        .map(|c| c["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(config_maps, ["synapsor-system", "apps", "apps2"]);

    // Choices: failurePolicy, selectors, port and resources.
    let docs = render(
        &helm,
        &[
            "--set",
            "sidecar.injection.enabled=true",
            "--set",
            "sidecar.injection.failurePolicy=Fail",
            "--set",
            "sidecar.injection.namespaceSelector.matchLabels.synapsor-injection=enabled",
            "--set",
            "sidecar.injection.objectSelector.matchLabels.synapsor=sidecar",
            "--set",
            "sidecar.injection.port=9100",
            "--set",
            "sidecar.injection.resources.limits.memory=256Mi",
            "--set",
            "sidecar.injection.configMap=billing-config",
        ],
    );
    let pods = webhook(&docs, "inject.runner.synapsor.ai").unwrap();
    assert_eq!(pods["failurePolicy"], "Fail");
    assert_eq!(
        pods["namespaceSelector"]["matchLabels"]["synapsor-injection"],
        "enabled"
    );
    assert_eq!(pods["objectSelector"]["matchLabels"]["synapsor"], "sidecar");
    assert_eq!(
        pods["objectSelector"]["matchExpressions"][0]["key"],
        "app.kubernetes.io/part-of"
    );
    let container = controller_container(&docs);
    assert_eq!(env_value(container, "SYNAPSOR_INJECT_PORT"), Some("9100"));
    assert_eq!(env_value(container, "SYNAPSOR_INJECT_MEMORY_LIMIT"), Some("256Mi"));
    assert_eq!(
        env_value(container, "SYNAPSOR_INJECT_CONFIG_MAP"),
        Some("billing-config")
    );
    assert!(
        env_value(container, "SYNAPSOR_INJECT_ENV_SECRET").is_none(),
        "no default Secret: each pod names its own"
    );
}

#[test]
fn chart_webhook_url_points_both_webhooks_at_an_outside_controller() {
    let Some(helm) = helm() else { return };
    let docs = render(
        &helm,
        &[
            "--set",
            "webhook.url=https://192.168.1.10:8443/",
            "--set",
            "webhook.tls.mode=secret",
            "--set",
            "webhook.tls.secret.name=synapsor-dev-webhook",
            "--set",
            "webhook.tls.secret.caBundle=Q0EK",
            "--set",
            "controller.replicas=0",
            "--set",
            "sidecar.injection.enabled=true",
        ],
    );
    for (name, path) in [
        ("proposals.runner.synapsor.ai", "/mutate-proposals"),
        ("inject.runner.synapsor.ai", "/inject-pods"),
    ] {
        let hook = webhook(&docs, name).unwrap();
        assert_eq!(
            hook["clientConfig"]["url"].as_str(),
            Some(format!("https://192.168.1.10:8443{path}").as_str())
        );
        assert!(
            hook["clientConfig"]["service"].is_null(),
            "{name} calls the URL, not the Service"
        );
        assert_eq!(hook["clientConfig"]["caBundle"], "Q0EK");
    }
    let services: Vec<&str> = kind(&docs, "Service")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(services.contains(&"synapsor-webhook"), "the Service stays");
    assert_eq!(kind(&docs, "Deployment")[0]["spec"]["replicas"], 0);
}

#[test]
fn chart_receipts_init_runs_the_runner_as_a_hook_job() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, ALL_OPTIONS);
    let jobs = kind(&docs, "Job");
    assert_eq!(jobs.len(), 1);
    let job = jobs[0];
    let hook = |key: &str| job["metadata"]["annotations"][key].as_str().unwrap().to_owned();
    // Before the release's objects change: the controller reports not ready without the
    // table, and a post hook would wait for it (helm --wait, Argo CD).
    assert_eq!(hook("helm.sh/hook"), "pre-install,pre-upgrade");
    assert_eq!(
        hook("helm.sh/hook-delete-policy"),
        "before-hook-creation,hook-succeeded"
    );
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert!(job["spec"]["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "ghcr.io/synapsor/synapsor-runner:0.1.0");
    assert!(c["command"].is_null(), "the entrypoint runs synapsor-runner");
    let args = strings(&c["args"]);
    assert_eq!(
        args,
        [
            "db",
            "init-receipts",
            "--admin-url-env",
            "BILLING_ADMIN_URL",
            "--source",
            "billing"
        ]
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    let env_from: Vec<&str> = c["envFrom"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["secretRef"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env_from,
        ["synapsor-writer-urls", "billing-admin"],
        "the writer URLs (to grant the writer) and the admin URL"
    );
    assert_eq!(
        env_value(c, "SYNAPSOR_CONFIG"),
        Some("/etc/synapsor/synapsor.runner.json")
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/etc/synapsor/synapsor.runner.json", "/tmp"]);
    let volumes = pod["volumes"].as_sequence().unwrap();
    let tmp = volumes.iter().find(|v| v["name"] == "tmp").unwrap();
    assert!(tmp["emptyDir"].is_mapping());
    // Its config is a hook ConfigMap created just before it (the release's ConfigMap does not
    // exist yet at pre-install), with the same document.
    let config = volumes.iter().find(|v| v["name"] == "config").unwrap();
    let cm_name = config["configMap"]["name"].as_str().unwrap();
    let cm = kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == cm_name)
        .expect("the Job's ConfigMap");
    assert_eq!(cm["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade");
    let weight = |d: &Value| {
        d["metadata"]["annotations"]["helm.sh/hook-weight"]
            .as_str()
            .unwrap()
            .parse::<i32>()
            .unwrap()
    };
    assert!(weight(cm) < weight(job), "the ConfigMap is created before the Job");
    let release_cm = kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "synapsor-config")
        .unwrap();
    assert_eq!(
        cm["data"]["synapsor.runner.json"],
        release_cm["data"]["synapsor.runner.json"]
    );

    // The runner takes these arguments and reads SYNAPSOR_CONFIG.
    let help =
        String::from_utf8(run(Command::new(bin("synapsor-runner")).args(["db", "init-receipts", "--help"])).stdout)
            .unwrap();
    for needle in ["--admin-url-env", "--source", "[env: SYNAPSOR_CONFIG"] {
        assert!(
            help.contains(needle),
            "`synapsor-runner db init-receipts` lacks {needle}:\n{help}"
        );
    }
}

#[test]
fn chart_network_policy_admits_the_api_server_and_metrics_only() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, ALL_OPTIONS);
    let policies = kind(&docs, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let spec = &policies[0]["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "controller"
    );
    assert_eq!(
        strings(&spec["policyTypes"]),
        ["Ingress"],
        "egress is not restricted by default"
    );
    let ingress = spec["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 2);
    assert_eq!(ingress[0]["ports"][0]["port"], 8443);
    assert!(ingress[0]["from"].is_null(), "the API server's address is not known");
    assert_eq!(ingress[1]["ports"][0]["port"], 8080);
    let from = ingress[1]["from"].as_sequence().unwrap();
    assert_eq!(from.len(), 1);
    assert!(
        from[0]["podSelector"].as_mapping().unwrap().is_empty() && from[0]["namespaceSelector"].is_null(),
        "metrics from the release namespace by default: {from:?}"
    );

    let docs = render(
        &helm,
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
            "--set",
            "networkPolicy.egress[0].ports[0].port=5432",
        ],
    );
    let spec = &kind(&docs, "NetworkPolicy")[0]["spec"];
    assert_eq!(strings(&spec["policyTypes"]), ["Ingress", "Egress"]);
    assert_eq!(spec["egress"][0]["ports"][0]["port"], 5432);
    assert_eq!(
        spec["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["team"],
        "monitoring"
    );
}

#[test]
fn chart_binds_the_apps_service_accounts_to_the_sidecar_role() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, ALL_OPTIONS);
    let bindings: Vec<&Value> = kind(&docs, "RoleBinding")
        .into_iter()
        .filter(|b| b["metadata"]["labels"]["app.kubernetes.io/component"] == "sidecar")
        .collect();
    assert_eq!(bindings.len(), 2);
    for b in bindings {
        let ns = b["metadata"]["namespace"].as_str().unwrap();
        assert_eq!(b["roleRef"]["name"], "synapsor-sidecar");
        let subjects: Vec<(&str, &str, &str)> = b["subjects"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["kind"].as_str().unwrap(),
                    s["name"].as_str().unwrap(),
                    s["namespace"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            subjects,
            [
                ("ServiceAccount", "synapsor-sidecar", ns),
                ("ServiceAccount", "billing-app", ns),
                ("ServiceAccount", "reports-app", ns),
            ]
        );
    }
}

#[test]
fn bad_values_are_refused() {
    let Some(helm) = helm() else { return };
    for args in [
        vec!["--set", "controller.replicas=two"],
        vec!["--set", "controller.kubeApiQps=0"],
        vec!["--set", "controller.kubeApiQps=fast"],
        vec!["--set", "controller.kubeApiQps=20000"],
        vec!["--set", "controller.kubeApiBurst=0"],
        vec!["--set", "controller.kubeApiBurst=1.5"],
        vec!["--set", "webhook.tls.mode=none"],
        vec![
            "--set",
            "controller.ledger.persistence.enabled=true",
            "--set",
            "controller.replicas=2",
        ],
        // The single image of old: there is one per binary now.
        vec!["--set", "image.repository=ghcr.io/synapsor/synapsor-runner"],
        vec![
            "--set",
            "sidecar.injection.enabled=true",
            "--set",
            "sidecar.injection.failurePolicy=Sometimes",
        ],
        vec!["--set", "sidecar.injection.port=80"],
        vec!["--set", "sidecar.injection.resources.requests.cpu=lots"],
        vec!["--set", "sidecar.injection.resources.limits.cpu=1"],
        vec!["--set", "sidecar.serviceAccounts[0]=Not_A_Name"],
        vec!["--set", "receipts.init.enabled=true"],
        vec![
            "--set",
            "receipts.init.enabled=true",
            "--set",
            "receipts.init.adminSecret=billing-admin",
        ],
        vec!["--set", "receipts.init.adminUrlEnv=not-a-variable"],
        vec!["--set", "networkPolicy.metricsFrom[0].pods=all"],
        // A URL needs a certificate for its host: the chart's own are for the Service.
        vec!["--set", "webhook.url=https://192.168.1.10:8443"],
        vec![
            "--set",
            "webhook.url=http://192.168.1.10:8443",
            "--set",
            "webhook.tls.mode=secret",
            "--set",
            "webhook.tls.secret.name=dev",
            "--set",
            "webhook.tls.secret.caBundle=Q0EK",
        ],
        // No controller at all, and no outside one either.
        vec!["--set", "controller.replicas=0"],
    ] {
        let out = Command::new(&helm)
            .args(["template", "synapsor", &chart().display().to_string()])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("nil pointer") && !err.contains("can't evaluate"),
            "{args:?} should be refused with a reason, not a template error:\n{err}"
        );
    }
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the cluster-scoped objects of `release` that an earlier, interrupted run left behind
/// (they would block `helm install`): its webhook configuration and the controller's
/// SubjectAccessReview role.
fn delete_cluster_leftovers(kubectl: &dyn Fn(&[&str]) -> Output, release: &str) {
    kubectl(&[
        "delete",
        "mutatingwebhookconfiguration",
        &format!("{release}-webhook"),
        "--ignore-not-found",
    ]);
    for kind in ["clusterrole", "clusterrolebinding"] {
        kubectl(&[
            "delete",
            kind,
            &format!("{release}-controller-access-review"),
            "--ignore-not-found",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_installs_with_least_privilege_rbac() {
    let Some(helm) = helm() else { return };
    let Some(kubeconfig) = kubeconfig() else { return };
    crypto();
    let client = kube::Client::try_default().await.unwrap();
    install_crd(&client).await;
    let ns = synapsor_testdb::unique("synapsor-chart").replace('_', "-");
    let release = "synapsor";
    let kubectl = |args: &[&str]| -> Output {
        Command::new(kubectl_bin())
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    // Cluster-scoped roles of an earlier, interrupted run would block the install.
    kubectl(&[
        "delete",
        "clusterrole",
        "synapsor-proposal-approver",
        "synapsor-proposal-viewer",
        "--ignore-not-found",
    ]);
    delete_cluster_leftovers(&kubectl, release);
    run(Command::new(&helm)
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "install",
            release,
            &chart().display().to_string(),
            "--namespace",
            &ns,
            "--create-namespace",
        ])
        .args(["--set-file", &format!("runnerConfig.json={}", config_file())])
        .args([
            "--set",
            &format!("watchNamespace={ns}"),
            "--set",
            "approvers.users[0]=approver-user",
        ])
        .args(["--set", &format!("approvers.namespaces[0]={ns}")])
        // The API server validates the pod webhook and the NetworkPolicy. The injector's
        // failurePolicy is Ignore, so the controller pods that never run here block nothing.
        .args([
            "--set",
            "sidecar.serviceAccounts={billing-app}",
            "--set",
            "sidecar.injection.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
        ]));

    let can = |who: &str, verb: &str, resource: &str| -> bool {
        let out = kubectl(&["auth", "can-i", verb, resource, "-n", &ns, "--as", who]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    let sa_list = String::from_utf8(kubectl(&["get", "serviceaccounts", "-n", &ns, "-o", "name"]).stdout).unwrap();
    let sidecar_sa = sa_list
        .lines()
        .map(|l| l.trim_start_matches("serviceaccount/"))
        .find(|n| n.contains("sidecar"))
        .expect("a sidecar ServiceAccount")
        .to_owned();
    let controller_sa = sa_list
        .lines()
        .map(|l| l.trim_start_matches("serviceaccount/"))
        .find(|n| n.contains("controller"))
        .expect("a controller ServiceAccount")
        .to_owned();
    let sidecar = format!("system:serviceaccount:{ns}:{sidecar_sa}");
    let controller = format!("system:serviceaccount:{ns}:{controller_sa}");
    let proposals = "proposals.runner.synapsor.ai";
    assert!(can(&sidecar, "create", proposals));
    assert!(can(&sidecar, "watch", proposals));
    for verb in ["patch", "update", "delete", "approve"] {
        assert!(!can(&sidecar, verb, proposals), "the sidecar must not {verb} proposals");
    }
    assert!(!can(&sidecar, "update", "proposals.runner.synapsor.ai/status"));
    assert!(can(&controller, "update", "proposals.runner.synapsor.ai/status"));
    assert!(can(&controller, "create", "subjectaccessreviews.authorization.k8s.io"));
    assert!(
        !can(&controller, "get", "secrets"),
        "the controller reads no Secrets through the API"
    );
    assert!(!can(&controller, "approve", proposals), "the controller cannot approve");
    assert!(can("approver-user", "approve", proposals));
    assert!(!can("someone-else", "approve", proposals));
    // The app's own account (sidecar.serviceAccounts), as an injected sidecar runs.
    let app = format!("system:serviceaccount:{ns}:billing-app");
    assert!(can(&app, "create", proposals));
    for verb in ["patch", "update", "delete", "approve"] {
        assert!(
            !can(&app, verb, proposals),
            "the app's account must not {verb} proposals"
        );
    }

    let webhooks = String::from_utf8(
        kubectl(&[
            "get",
            "mutatingwebhookconfiguration",
            &format!("{release}-webhook"),
            "-o",
            "jsonpath={.webhooks[*].name}",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(
        webhooks.trim(),
        "proposals.runner.synapsor.ai inject.runner.synapsor.ai"
    );

    // The receipts hook Job cannot run here (no nodes, and Helm would wait for it), so the API
    // server checks its objects with a server-side dry run.
    let rendered = run(Command::new(&helm)
        .args(["template", release, &chart().display().to_string(), "--namespace", &ns])
        .args(["--set-file", &format!("runnerConfig.json={}", config_file())])
        .args(["--show-only", "templates/receipts-init-job.yaml"])
        .args(ALL_OPTIONS))
    .stdout;
    let manifest = std::env::temp_dir().join(format!("{ns}-receipts-init.yaml"));
    std::fs::write(&manifest, &rendered).unwrap();
    let out = kubectl(&[
        "apply",
        "--dry-run=server",
        "-n",
        &ns,
        "-f",
        &manifest.display().to_string(),
    ]);
    let _ = std::fs::remove_file(&manifest);
    assert!(
        out.status.success(),
        "the API server refuses the receipts Job:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    run(Command::new(&helm)
        .env("KUBECONFIG", &kubeconfig)
        .args(["uninstall", release, "--namespace", &ns]));
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

/// The developer loop of docs/kubernetes.md ("Running the controller outside the cluster"): a
/// certificate for an address made with the documented openssl commands, the chart installed
/// with webhook.url, webhook.tls.mode=secret, controller.replicas=0 and injection, and the
/// controller run outside the cluster with the injector settings of the chart's Deployment. The
/// API server calls it by URL: an annotated pod of an account in sidecar.serviceAccounts gets
/// the sidecar, one of another account is refused, an unannotated one passes unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_webhook_url_reaches_a_controller_outside_the_cluster() {
    let Some(helm) = helm() else { return };
    let Some(kubeconfig) = kubeconfig() else { return };
    crypto();
    let client = kube::Client::try_default().await.unwrap();
    install_crd(&client).await;
    let ns = synapsor_testdb::unique("synapsor-devloop").replace('_', "-");
    let release = "synapsor-dev";
    let addr = webhook_host();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let kubectl = |args: &[&str]| -> Output {
        Command::new(kubectl_bin())
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let kubectl_ok = |args: &[&str]| -> Output {
        let out = kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    // The documented commands: a CA, and a serving certificate with an IP SAN for the address.
    for cmd in [
        "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=synapsor-dev-ca -keyout ca.key -out ca.crt",
        &format!("openssl req -newkey rsa:2048 -nodes -subj /CN={addr} -keyout tls.key -out tls.csr"),
        "openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile san.ext -out tls.crt",
    ] {
        std::fs::write(
            dir.path().join("san.ext"),
            format!("subjectAltName=IP:{addr}\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        let args: Vec<&str> = cmd.split_whitespace().collect();
        run(Command::new(args[0]).args(&args[1..]).current_dir(dir.path()));
    }
    let ca_bundle = String::from_utf8(
        run(Command::new("openssl")
            .args(["base64", "-A", "-in", "ca.crt"])
            .current_dir(dir.path()))
        .stdout,
    )
    .unwrap();
    let file = |name: &str| dir.path().join(name).display().to_string();

    delete_cluster_leftovers(&kubectl, release);
    kubectl_ok(&["create", "namespace", &ns]);
    // Kubernetes 1.20 does not set this label, which the injector's namespaceSelector uses.
    kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        &format!("kubernetes.io/metadata.name={ns}"),
        "--overwrite",
    ]);
    kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "tls",
        "synapsor-dev-webhook",
        "--cert",
        &file("tls.crt"),
        "--key",
        &file("tls.key"),
    ]);
    run(Command::new(&helm)
        .env("KUBECONFIG", &kubeconfig)
        .args(["install", release, &chart().display().to_string(), "--namespace", &ns])
        .args(["--set-file", &format!("runnerConfig.json={}", config_file())])
        .args(["--set", &format!("watchNamespace={ns}")])
        .args(["--set", &format!("webhook.url=https://{addr}:{port}")])
        .args(["--set", "webhook.tls.mode=secret"])
        .args(["--set", "webhook.tls.secret.name=synapsor-dev-webhook"])
        .args(["--set", &format!("webhook.tls.secret.caBundle={ca_bundle}")])
        .args(["--set", "controller.replicas=0"])
        .args(["--set", "sidecar.injection.enabled=true"])
        .args(["--set", "sidecar.injection.envSecret=billing-agent-env"])
        .args(["--set", "sidecar.serviceAccounts={billing-app}"])
        // The shared ClusterRoles belong to the other install test.
        .args(["--set", "proposalRoles.create=false"]));

    // The approval key and the injector settings the chart gave its Deployment.
    let key = kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "secret",
        &format!("{release}-approval-key"),
        "-o",
        "jsonpath={.data.key}",
    ])
    .stdout;
    std::fs::write(dir.path().join("approval.key.b64"), key).unwrap();
    let decoded = run(Command::new("openssl")
        .args(["base64", "-d", "-A", "-in", "approval.key.b64"])
        .current_dir(dir.path()))
    .stdout;
    assert!(decoded.len() >= 32);
    std::fs::write(dir.path().join("approval.key"), decoded).unwrap();
    let deployment: Value = serde_yaml::from_slice(
        &kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "deployment",
            &format!("{release}-controller"),
            "-o",
            "yaml",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 0);
    let inject_env: Vec<(String, String)> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?;
            name.starts_with("SYNAPSOR_INJECT_")
                .then(|| (name.to_owned(), e["value"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert_eq!(inject_env.len(), 8, "{inject_env:?}");

    let bind = if addr == "127.0.0.1" { "127.0.0.1" } else { "0.0.0.0" };
    let log = dir.path().join("controller.log");
    let mut controller = KillOnDrop(
        Command::new(bin("synapsor-controller"))
            .args(["run", "--namespace", &ns, "--lease-namespace", &ns])
            .args(["--lease-name", &format!("{release}-controller")])
            .args(["--config", &config_file(), "--ledger", &file("controller.db")])
            .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--webhook-addr", &format!("{bind}:{port}")])
            .args(["--tls-cert", &file("tls.crt"), "--tls-key", &file("tls.key")])
            .args(["--approval-key-file", &file("approval.key")])
            .envs(inject_env)
            .env("KUBECONFIG", &kubeconfig)
            .env("SYNAPSOR_LOG", "info,kube=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the controller does not listen on {port}:\n{}",
            log_text()
        );
        if let Ok(Some(status)) = controller.0.try_wait() {
            panic!("the controller exited ({status}):\n{}", log_text());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    kubectl_ok(&["-n", &ns, "create", "serviceaccount", "billing-app"]);
    kubectl_ok(&["-n", &ns, "create", "serviceaccount", "other-app"]);
    let create_pod = |name: &str, account: &str, annotated: bool| -> Output {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n    runner.synapsor.ai/inject: \"{annotated}\"\nspec:\n  serviceAccountName: {account}\n  containers:\n    - name: app\n      image: registry.example.com/billing-agent:1.4.2\n"
        );
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, pod).unwrap();
        kubectl(&["-n", &ns, "create", "-f", &path.display().to_string()])
    };
    let containers = |name: &str| -> String {
        String::from_utf8(
            kubectl_ok(&[
                "-n",
                &ns,
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={range .spec.containers[*]}{.name}={.image} {end}",
            ])
            .stdout,
        )
        .unwrap()
    };

    let out = create_pod("billing-agent", "billing-app", true);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_text()
    );
    assert_eq!(
        containers("billing-agent").trim(),
        "app=registry.example.com/billing-agent:1.4.2 synapsor-runner=ghcr.io/synapsor/synapsor-runner:0.1.0"
    );
    let out = create_pod("other-agent", "other-app", true);
    assert!(!out.status.success(), "other-app may not create proposals");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("inject.runner.synapsor.ai") && err.contains("may not create proposals"),
        "{err}"
    );
    assert!(create_pod("plain-app", "other-app", false).status.success());
    assert_eq!(
        containers("plain-app").trim(),
        "app=registry.example.com/billing-agent:1.4.2"
    );

    drop(controller);
    run(Command::new(&helm)
        .env("KUBECONFIG", &kubeconfig)
        .args(["uninstall", release, "--namespace", &ns]));
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}
