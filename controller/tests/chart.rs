//! The Helm chart (`charts/synapsor-runner`): it lints, renders a controller the binary accepts
//! (every environment variable it sets is one `synapsor-controller run` reads), and installs
//! on a real API server with least-privilege RBAC.
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

#[test]
fn chart_lints_and_renders_a_controller_the_binary_accepts() {
    let Some(helm) = helm() else { return };
    run(Command::new(&helm)
        .args(["lint", "--strict", &chart().display().to_string()])
        .args(["--set-file", &format!("runnerConfig.json={}", config_file())]));

    let docs = render(&helm, &[]);
    let deployments = kind(&docs, "Deployment");
    assert_eq!(deployments.len(), 1);
    let container = &deployments[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "synapsor-controller");
    assert_eq!(container["args"][0], "run");
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
    // The probes and ports are the ones the binary serves.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");

    let hooks = kind(&docs, "MutatingWebhookConfiguration");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0]["webhooks"][0];
    assert_eq!(
        hook["failurePolicy"], "Fail",
        "no approval may pass while the webhook is down"
    );
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate-proposals");
    assert_eq!(hook["rules"][0]["resources"][0], "proposals");
    let ops: Vec<&str> = hook["rules"][0]["operations"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ops, ["CREATE", "UPDATE"]);
    assert!(!hook["clientConfig"]["caBundle"].as_str().unwrap_or_default().is_empty());

    // The sidecar's Role: create and read proposals, nothing else.
    let roles = kind(&docs, "Role");
    let sidecar = roles
        .iter()
        .find(|r| r["metadata"]["labels"]["app.kubernetes.io/component"] == "sidecar")
        .expect("a sidecar Role");
    let verbs: Vec<&str> = sidecar["rules"][0]["verbs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["create", "get", "list", "watch"]);
}

#[test]
fn bad_values_are_refused() {
    let Some(helm) = helm() else { return };
    for args in [
        vec!["--set", "controller.replicas=two"],
        vec!["--set", "webhook.tls.mode=none"],
        vec![
            "--set",
            "controller.ledger.persistence.enabled=true",
            "--set",
            "controller.replicas=2",
        ],
    ] {
        let out = Command::new(&helm)
            .args(["template", "synapsor", &chart().display().to_string()])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should be refused");
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
        .args(["--set", &format!("approvers.namespaces[0]={ns}")]));

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

    run(Command::new(&helm)
        .env("KUBECONFIG", &kubeconfig)
        .args(["uninstall", release, "--namespace", &ns]));
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}
