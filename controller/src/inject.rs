//! Sidecar injection: the mutating webhook on pod CREATE that adds the `synapsor-runner`
//! container to pods annotated `runner.synapsor.ai/inject: "true"`, the way the Linkerd proxy
//! and the Vault agent are injected.
//!
//! What is added: the runner container serving MCP on the pod's loopback only (the app's
//! containers reach it at `http://127.0.0.1:<port>/mcp`; nothing outside the pod can), the
//! reviewed config from a ConfigMap, the environment (read URL, MCP token, trusted context) from
//! a Secret, an emptyDir for its ledger, resource requests and a non-root, read-only security
//! context, with exec probes (the kubelet cannot reach a loopback listener). Proposals go to the
//! Kubernetes proposal store, so the pod's ServiceAccount must be allowed to create `Proposal`s:
//! a pod whose account is not is refused, with a message that says so, instead of starting a
//! sidecar that could never publish. Injection is idempotent: a pod that already has the
//! container is admitted unchanged.
//!
//! What it is not: it changes no other container, never adds credentials of its own, and a pod
//! without the annotation passes untouched.

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::{Value, json};
use synapsor_kube::GROUP;

/// `"true"` asks for the sidecar.
pub const ANNOTATION_INJECT: &str = "runner.synapsor.ai/inject";
/// The ConfigMap holding `synapsor.runner.json` (default: the injector's).
pub const ANNOTATION_CONFIG_MAP: &str = "runner.synapsor.ai/config-map";
/// The Secret whose keys become the sidecar's environment (default: the injector's).
pub const ANNOTATION_ENV_SECRET: &str = "runner.synapsor.ai/env-secret";
/// The loopback port MCP listens on (default 8766).
pub const ANNOTATION_PORT: &str = "runner.synapsor.ai/port";
/// The injected container's name; its presence makes injection a no-op.
pub const CONTAINER: &str = "synapsor-runner";
/// Where the ConfigMap's `synapsor.runner.json` is mounted.
pub const CONFIG_PATH: &str = "/etc/synapsor/synapsor.runner.json";
/// The sidecar's ledger (on an emptyDir: the `Proposal` resources are the record that outlives
/// the pod; see docs/kubernetes.md).
pub const LEDGER_PATH: &str = "/var/lib/synapsor/sidecar.db";
const CONFIG_VOLUME: &str = "synapsor-runner-config";
const LEDGER_VOLUME: &str = "synapsor-runner-ledger";

/// What the injector adds; from `synapsor-controller run --inject-*` (the chart sets them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectConfig {
    pub image: String,
    pub pull_policy: String,
    /// ConfigMap used when the pod names none.
    pub config_map: String,
    /// Secret used when the pod names none; without either, the pod is refused.
    pub env_secret: Option<String>,
    pub port: u16,
    pub cpu_request: String,
    pub memory_request: String,
    pub memory_limit: String,
}

/// The injector's decision for one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// No `runner.synapsor.ai/inject: "true"`: admitted unchanged.
    NotRequested,
    /// The container is already there (a re-admitted pod): admitted unchanged.
    AlreadyInjected,
    /// Admit with this JSON patch, once the ServiceAccount check passes.
    Inject { patch: Value, service_account: String },
    /// Refused, with the reason shown to whoever created the pod.
    Refused(String),
}

/// A JSON pointer token (`/` is `~1`, `~` is `~0`).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Decides what to do with `pod` (pure: the ServiceAccount check is [`review`]'s).
pub fn plan(pod: &Pod, cfg: &InjectConfig) -> Injection {
    let ann: BTreeMap<String, String> = pod.metadata.annotations.clone().unwrap_or_default();
    match ann.get(ANNOTATION_INJECT).map(|v| v.trim().to_ascii_lowercase()) {
        None => return Injection::NotRequested,
        Some(v) if v == "false" || v == "disabled" => return Injection::NotRequested,
        Some(v) if v == "true" || v == "enabled" => {}
        Some(v) => {
            return Injection::Refused(format!("{ANNOTATION_INJECT} must be \"true\" or \"false\", not {v:?}"));
        }
    }
    let Some(spec) = &pod.spec else {
        return Injection::Refused("the pod has no spec".into());
    };
    if spec.containers.iter().any(|c| c.name == CONTAINER)
        || spec.init_containers.iter().flatten().any(|c| c.name == CONTAINER)
    {
        return Injection::AlreadyInjected;
    }
    let port = match ann.get(ANNOTATION_PORT) {
        None => cfg.port,
        Some(p) => match p.trim().parse::<u16>() {
            Ok(p) if p >= 1024 => p,
            _ => {
                return Injection::Refused(format!(
                    "{ANNOTATION_PORT} must be a port number from 1024 to 65535 (the sidecar runs as a non-root user), not {p:?}"
                ));
            }
        },
    };
    if spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .any(|p| p.container_port == i32::from(port))
    {
        return Injection::Refused(format!(
            "a container of this pod already uses port {port}: set {ANNOTATION_PORT} to a free one"
        ));
    }
    let config_map = ann
        .get(ANNOTATION_CONFIG_MAP)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| cfg.config_map.clone());
    let Some(env_secret) = ann
        .get(ANNOTATION_ENV_SECRET)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.env_secret.clone())
    else {
        return Injection::Refused(format!(
            "{ANNOTATION_ENV_SECRET} is not set and the injector has no default: name the Secret that holds the sidecar's environment (the read URL the config names, SYNAPSOR_RUNNER_HTTP_TOKEN and the trusted context)"
        ));
    };
    for (what, name) in [("ConfigMap", &config_map), ("Secret", &env_secret)] {
        if !is_dns_subdomain(name) {
            return Injection::Refused(format!("{name:?} is not a valid {what} name"));
        }
    }
    let service_account = spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());

    let probe = |period: u32, failures: u32| {
        json!({
            "exec": {"command": ["/usr/local/bin/synapsor-runner", "mcp", "health", "--port", port.to_string()]},
            "periodSeconds": period, "timeoutSeconds": 3, "failureThreshold": failures
        })
    };
    let container = json!({
        "name": CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": cfg.pull_policy,
        "args": ["mcp", "serve-streamable-http", "--host", "127.0.0.1", "--port", port.to_string(),
                 "--proposal-store", "kubernetes"],
        "env": [
            {"name": "SYNAPSOR_CONFIG", "value": CONFIG_PATH},
            {"name": "SYNAPSOR_LOCAL_STORE", "value": LEDGER_PATH},
            {"name": "SYNAPSOR_KUBE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "envFrom": [{"secretRef": {"name": env_secret}}],
        "startupProbe": probe(1, 30),
        "readinessProbe": probe(10, 3),
        "livenessProbe": probe(20, 3),
        "resources": {
            "requests": {"cpu": cfg.cpu_request, "memory": cfg.memory_request},
            "limits": {"memory": cfg.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": "/etc/synapsor", "readOnly": true},
            {"name": LEDGER_VOLUME, "mountPath": "/var/lib/synapsor"},
        ],
    });
    let volumes = [
        json!({"name": CONFIG_VOLUME, "configMap": {"name": config_map,
               "items": [{"key": "synapsor.runner.json", "path": "synapsor.runner.json"}]}}),
        json!({"name": LEDGER_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}),
    ];
    let mut ops = vec![json!({"op": "add", "path": "/spec/containers/-", "value": container})];
    if spec.volumes.as_ref().is_none_or(Vec::is_empty) {
        ops.push(json!({"op": "add", "path": "/spec/volumes", "value": volumes}));
    } else {
        for v in volumes {
            ops.push(json!({"op": "add", "path": "/spec/volumes/-", "value": v}));
        }
    }
    // Which container `kubectl logs` and `exec` pick stays the app's.
    if !ann.contains_key("kubectl.kubernetes.io/default-container")
        && let Some(first) = spec.containers.first()
    {
        let path = format!(
            "/metadata/annotations/{}",
            token("kubectl.kubernetes.io/default-container")
        );
        ops.push(json!({"op": "add", "path": path, "value": first.name}));
    }
    Injection::Inject {
        patch: Value::Array(ops),
        service_account,
    }
}

/// RFC 1123 subdomain: what Kubernetes accepts as a ConfigMap or Secret name.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Whether the ServiceAccount `sa` in `ns` may create `Proposal`s there (what the sidecar does).
async fn may_create_proposals(client: &kube::Client, ns: &str, sa: &str) -> Result<bool, kube::Error> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{sa}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some("proposals".to_owned()),
                verb: Some("create".to_owned()),
                namespace: Some(ns.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let out = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await?;
    Ok(out.status.is_some_and(|s| s.allowed && !s.denied.unwrap_or(false)))
}

/// What a review did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Untouched,
    Injected,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Untouched => "untouched",
            Outcome::Injected => "injected",
            Outcome::Refused => "refused",
        }
    }
}

/// Reviews one raw `AdmissionReview` of a pod. Without an injector config (no `--inject-image`)
/// every pod is admitted unchanged. A body that does not parse is refused; so is a pod whose
/// ServiceAccount cannot be checked (the API server retries or the pod's creator sees why).
pub async fn review(
    client: &kube::Client,
    cfg: Option<&InjectConfig>,
    body: Value,
) -> (AdmissionReview<DynamicObject>, Outcome) {
    let req: AdmissionRequest<Pod> = match crate::admission::read_request(body, "pod") {
        Ok(r) => r,
        Err(refused) => return (*refused, Outcome::Refused),
    };
    let allow = AdmissionResponse::from(&req);
    let (Some(cfg), Operation::Create, Some(pod)) = (cfg, &req.operation, &req.object) else {
        return (allow.into_review(), Outcome::Untouched);
    };
    let ns = req.namespace.clone().unwrap_or_default();
    let name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone().map(|g| format!("{g}*")))
        .unwrap_or_default();
    match plan(pod, cfg) {
        Injection::NotRequested | Injection::AlreadyInjected => (allow.into_review(), Outcome::Untouched),
        Injection::Refused(reason) => (
            allow.deny(format!("synapsor-runner injection: {reason}")).into_review(),
            Outcome::Refused,
        ),
        Injection::Inject { patch, service_account } => {
            match may_create_proposals(client, &ns, &service_account).await {
                Ok(true) => {}
                Ok(false) => {
                    return (
                        allow
                            .deny(format!(
                                "synapsor-runner injection: the pod's ServiceAccount {ns}/{service_account} may not create proposals.{GROUP}, so the sidecar could never submit a proposal for review; bind it to the sidecar Role (chart value sidecar.serviceAccounts) or remove {ANNOTATION_INJECT}"
                            ))
                            .into_review(),
                        Outcome::Refused,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SubjectAccessReview for an injected pod failed");
                    return (
                        allow
                            .deny("synapsor-runner injection: the pod's ServiceAccount could not be checked (SubjectAccessReview failed); try again")
                            .into_review(),
                        Outcome::Refused,
                    );
                }
            }
            match crate::admission::with_json_patch(allow, patch) {
                (review, true) => {
                    tracing::info!(namespace = %ns, pod = %name, %service_account, "injected the synapsor-runner sidecar");
                    (review, Outcome::Injected)
                }
                (refused, false) => (refused, Outcome::Refused),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> InjectConfig {
        InjectConfig {
            image: "ghcr.io/synapsor/synapsor-runner:0.1.0".into(),
            pull_policy: "IfNotPresent".into(),
            config_map: "synapsor-config".into(),
            env_secret: Some("billing-agent-env".into()),
            port: 8766,
            cpu_request: "20m".into(),
            memory_request: "32Mi".into(),
            memory_limit: "128Mi".into(),
        }
    }

    fn pod(ann: &[(&str, &str)], extra: Value) -> Pod {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "annotations": ann.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "spec": {"serviceAccountName": "billing-app", "containers": [{"name": "app", "image": "billing:1"}]}
        });
        for (k, val) in extra.as_object().unwrap() {
            v["spec"][k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    /// The pod after applying the patch of `plan`.
    fn injected(p: &Pod) -> (Value, String) {
        let Injection::Inject { patch, service_account } = plan(p, &cfg()) else {
            panic!("not injected: {:?}", plan(p, &cfg()))
        };
        let mut doc = serde_json::to_value(p).unwrap();
        json_patch::patch(&mut doc, &serde_json::from_value::<json_patch::Patch>(patch).unwrap()).unwrap();
        (doc, service_account)
    }

    #[test]
    fn only_annotated_pods_get_the_sidecar() {
        assert_eq!(plan(&pod(&[], json!({})), &cfg()), Injection::NotRequested);
        assert_eq!(
            plan(&pod(&[(ANNOTATION_INJECT, "false")], json!({})), &cfg()),
            Injection::NotRequested
        );
        assert!(matches!(
            plan(&pod(&[(ANNOTATION_INJECT, "yes please")], json!({})), &cfg()),
            Injection::Refused(m) if m.contains("\"true\" or \"false\"")
        ));
    }

    #[test]
    fn the_sidecar_serves_on_loopback_non_root_with_config_secret_and_ledger() {
        let (doc, sa) = injected(&pod(&[(ANNOTATION_INJECT, "true")], json!({})));
        assert_eq!(sa, "billing-app");
        let containers = doc["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(
            containers[0]["name"], "app",
            "the app's container is untouched and first"
        );
        let c = &containers[1];
        assert_eq!(c["name"], CONTAINER);
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "mcp",
                "serve-streamable-http",
                "--host",
                "127.0.0.1",
                "--port",
                "8766",
                "--proposal-store",
                "kubernetes"
            ]
        );
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "billing-agent-env");
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["resources"]["requests"]["memory"], "32Mi");
        assert_eq!(c["readinessProbe"]["exec"]["command"][2], "health");
        let volumes = doc["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes[0]["configMap"]["name"], "synapsor-config");
        assert!(volumes[1]["emptyDir"].is_object());
        assert_eq!(
            doc["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
            "app"
        );
    }

    #[test]
    fn annotations_choose_config_secret_and_port_and_existing_volumes_stay() {
        let p = pod(
            &[
                (ANNOTATION_INJECT, "true"),
                (ANNOTATION_CONFIG_MAP, "billing-config"),
                (ANNOTATION_ENV_SECRET, "other-env"),
                (ANNOTATION_PORT, "9000"),
            ],
            json!({"volumes": [{"name": "data", "emptyDir": {}}]}),
        );
        let (doc, _) = injected(&p);
        let volumes = doc["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 3);
        assert_eq!(volumes[0]["name"], "data");
        assert_eq!(volumes[1]["configMap"]["name"], "billing-config");
        let c = &doc["spec"]["containers"][1];
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "other-env");
        assert_eq!(c["args"][5], "9000");
    }

    #[test]
    fn injection_is_idempotent() {
        let (doc, _) = injected(&pod(&[(ANNOTATION_INJECT, "true")], json!({})));
        let again: Pod = serde_json::from_value(doc).unwrap();
        assert_eq!(plan(&again, &cfg()), Injection::AlreadyInjected);
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let refused = |p: Pod, c: &InjectConfig| match plan(&p, c) {
            Injection::Refused(m) => m,
            other => panic!("{other:?}"),
        };
        let mut no_secret = cfg();
        no_secret.env_secret = None;
        assert!(refused(pod(&[(ANNOTATION_INJECT, "true")], json!({})), &no_secret).contains(ANNOTATION_ENV_SECRET));
        assert!(
            refused(
                pod(&[(ANNOTATION_INJECT, "true"), (ANNOTATION_PORT, "80")], json!({})),
                &cfg()
            )
            .contains("1024")
        );
        assert!(
            refused(
                pod(
                    &[(ANNOTATION_INJECT, "true"), (ANNOTATION_ENV_SECRET, "Bad_Name")],
                    json!({})
                ),
                &cfg()
            )
            .contains("not a valid Secret name")
        );
        let busy = pod(
            &[(ANNOTATION_INJECT, "true")],
            json!({"containers": [{"name": "app", "image": "x", "ports": [{"containerPort": 8766}]}]}),
        );
        assert!(refused(busy, &cfg()).contains("already uses port 8766"));
    }
}
