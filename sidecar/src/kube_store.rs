//! Kubernetes proposal store (`--proposal-store kubernetes`): proposals become `Proposal`
//! resources in the sidecar's namespace, and the ledger keeps a mirror of each.
//!
//! A proposal tool call records the evidence and the change set in the ledger as in local mode,
//! then creates the `Proposal` (named after the proposal id, so a repeated call finds the same
//! object) and marks the ledger row as managed by it: local `approve`/`apply` then refuse it.
//! [`mirror`] watches the namespace's proposals and appends their verified approvals, rejection,
//! phase changes and receipts to the ledger, so `replay` tells the whole story.
//!
//! The sidecar needs only `create`, `get`, `list` and `watch` on `proposals`: it never writes
//! status, never approves and holds no write credentials.

use std::fmt;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::json;
use synapsor_core::changeset::ChangeSet;
use synapsor_core::context::BoxFuture;
use synapsor_core::{ToolCode, ToolError};
use synapsor_executor::ReceiptStatus;
use synapsor_kube::{LABEL_CAPABILITY, LABEL_MANAGED_BY, Proposal, ProposalSpec, managed_by, object_name};
use synapsor_ledger::{Decider, EvidenceRecord, Ledger, LedgerError, ReceiptRecord};
use tokio_util::sync::CancellationToken;

/// Publishes a recorded proposal to its store of record.
pub trait ProposalPublisher: Send + Sync + fmt::Debug {
    /// The ledger's `managed_by` for `cs` (known before publishing, so the ledger row is marked
    /// first and never looks like a local proposal, even when publishing fails).
    fn reference(&self, cs: &ChangeSet) -> String;

    /// Creates the resource, carrying the evidence bundle the proposal was built from, or finds
    /// the same one created earlier.
    fn publish<'a>(
        &'a self,
        cs: &'a ChangeSet,
        evidence: &'a EvidenceRecord,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), ToolError>>;
}

/// Creates `Proposal`s in one namespace.
#[derive(Clone)]
pub struct KubeProposals {
    api: Api<Proposal>,
    namespace: String,
    ttl_ms: i64,
}

impl fmt::Debug for KubeProposals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeProposals")
            .field("namespace", &self.namespace)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

/// No Kubernetes client could be built (`KUBE_CONFIG`): neither in a pod nor a usable
/// `KUBECONFIG`.
#[derive(Debug, thiserror::Error)]
#[error("cannot build a Kubernetes client (in-cluster or KUBECONFIG): {0}")]
pub struct KubeConfigError(kube::Error);

impl KubeProposals {
    /// A client from the pod's service account or `KUBECONFIG`; the namespace defaults to the
    /// client's (in a pod: its own).
    pub async fn connect(namespace: Option<String>, ttl_ms: i64) -> Result<KubeProposals, KubeConfigError> {
        let client = kube::Client::try_default().await.map_err(KubeConfigError)?;
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
        Ok(KubeProposals {
            api: Api::namespaced(client, &namespace),
            namespace,
            ttl_ms,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn api(&self) -> &Api<Proposal> {
        &self.api
    }

    /// What `up` reports: the CRD is served, and this identity may create, get, list and watch
    /// proposals in the namespace and nothing more (an identity that may also patch or approve
    /// them could approve its own). Returns `(ok, detail)`.
    pub async fn check_access(&self) -> (bool, String) {
        let ns = &self.namespace;
        if let Err(e) = self.api.list(&kube::api::ListParams::default().limit(1)).await {
            let hint = match &e {
                kube::Error::Api(s) if s.code == 404 => {
                    " (is the CRD installed? `synapsor-controller crd | kubectl apply -f -`)"
                }
                _ => "",
            };
            return (false, format!("cannot list proposals in {ns}: {e}{hint}"));
        }
        let mut missing = Vec::new();
        let mut excess = Vec::new();
        for verb in ["create", "get", "list", "watch", "patch", "update", "approve"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(synapsor_kube::GROUP.to_owned()),
                        resource: Some("proposals".to_owned()),
                        verb: Some(verb.to_owned()),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api: Api<SelfSubjectAccessReview> = Api::all(self.api.clone().into_client());
            let allowed = match api.create(&PostParams::default(), &review).await {
                Ok(r) => r.status.is_some_and(|s| s.allowed),
                Err(e) => {
                    return (
                        false,
                        format!("cannot ask the API server what this identity may do: {e}"),
                    );
                }
            };
            match (verb, allowed) {
                ("create" | "get" | "list" | "watch", false) => missing.push(verb),
                ("patch" | "update" | "approve", true) => excess.push(verb),
                _ => {}
            }
        }
        if !missing.is_empty() {
            return (
                false,
                format!("this identity may not {} proposals in {ns}", missing.join("/")),
            );
        }
        if !excess.is_empty() {
            return (
                false,
                format!(
                    "this identity may also {} proposals in {ns}: a sidecar needs only create/get/list/watch (it could otherwise decide its own proposals)",
                    excess.join("/")
                ),
            );
        }
        (
            true,
            format!("may create/get/list/watch proposals in {ns}, and nothing more"),
        )
    }
}

/// A label value from a capability name (`[A-Za-z0-9._-]`, at most 63, alphanumeric ends).
fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

fn unavailable(msg: String) -> ToolError {
    tracing::warn!("{msg}");
    ToolError::new(ToolCode::ProposalStoreUnavailable, msg)
}

impl ProposalPublisher for KubeProposals {
    fn reference(&self, cs: &ChangeSet) -> String {
        managed_by(&self.namespace, &object_name(&cs.proposal_id))
    }

    fn publish<'a>(
        &'a self,
        cs: &'a ChangeSet,
        evidence: &'a EvidenceRecord,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), ToolError>> {
        Box::pin(async move {
            let name = object_name(&cs.proposal_id);
            let expires = synapsor_core::time::format_rfc3339_ms(now_ms.saturating_add(self.ttl_ms));
            let mut spec = ProposalSpec::from_change_set(cs, expires);
            // The evidence outlives this pod's ledger in the resource (the reviewers who may read
            // the proposal may read what it was built from).
            spec.evidence_bundle = serde_json::to_value(EvidenceRecord {
                proposal_id: Some(cs.proposal_id.clone()),
                ..evidence.clone()
            })
            .ok();
            let object = Proposal {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.namespace.clone()),
                    labels: Some(
                        [
                            (LABEL_MANAGED_BY.0.to_owned(), LABEL_MANAGED_BY.1.to_owned()),
                            (LABEL_CAPABILITY.to_owned(), label_value(&cs.action)),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                },
                spec,
                status: None,
            };
            match self.api.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                // The same proposal id was published before (a repeated call): it must be the same
                // change set.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let existing = self.api.get(&name).await.map_err(|e| {
                        unavailable(format!(
                            "Proposal {}/{name} exists but cannot be read: {e}",
                            self.namespace
                        ))
                    })?;
                    if existing.spec.digest != cs.digest {
                        return Err(unavailable(format!(
                            "Proposal {}/{name} exists with another change set; it was not replaced",
                            self.namespace
                        )));
                    }
                }
                Err(kube::Error::Api(e)) => {
                    // Denials (RBAC, the admission webhook) carry the API server's reason.
                    return Err(unavailable(format!(
                        "the Kubernetes API refused to create Proposal {}/{name}: {} ({})",
                        self.namespace, e.message, e.code
                    )));
                }
                Err(e) => {
                    return Err(unavailable(format!(
                        "cannot reach the Kubernetes API to create Proposal {}/{name}: {e}",
                        self.namespace
                    )));
                }
            }
            Ok(())
        })
    }
}

/// Appends what the cluster says about one of our proposals to the ledger. Objects the ledger
/// does not hold (another runner's) are ignored. Returns whether anything was recorded.
pub async fn mirror_one(ledger: &Ledger, p: Proposal, adopt: &Adopt, now: String) -> Result<bool, LedgerError> {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    let by = managed_by(&ns, &name);
    let adoptable = adopt(&p.spec);
    ledger
        .with_store(move |s| {
            let id = p.spec.proposal_id.clone();
            let rec = match s.get_proposal(&id) {
                Ok(r) => r,
                // A proposal this runner could have made (its capability, its tenant and
                // principal) that its ledger does not hold: made before this pod replaced the
                // one that proposed it. Record it again from the resource, evidence included,
                // so that it can be replayed here.
                Err(LedgerError::ProposalNotFound { .. }) if adoptable => {
                    let evidence: Option<EvidenceRecord> = p
                        .spec
                        .evidence_bundle
                        .clone()
                        .and_then(|v| serde_json::from_value(v).ok());
                    s.mirror_proposal(&p.spec.to_change_set(), &by, evidence.as_ref(), &now)?;
                    s.get_proposal(&id)?
                }
                Err(LedgerError::ProposalNotFound { .. }) => {
                    tracing::debug!(proposal = %id, "not mirrored: another runner's proposal");
                    return Ok(false);
                }
                Err(e) => return Err(e),
            };
            if rec.managed_by.as_deref() != Some(by.as_str()) {
                return Ok(false);
            }
            let Some(status) = p.status else { return Ok(false) };
            let mut changed = false;
            // Decisions on a Proposal were authenticated by the API server.
            for a in &status.approvals {
                let who = synapsor_kube::kubernetes_identity(&a.user);
                changed |= s.mirror_decision_as(
                    &id,
                    Decider {
                        name: &a.user,
                        verified: Some(&who),
                    },
                    None,
                    &a.at,
                )?;
            }
            if let Some(r) = &status.rejection {
                let who = synapsor_kube::kubernetes_identity(&r.user);
                changed |= s.mirror_decision_as(
                    &id,
                    Decider {
                        name: &r.user,
                        verified: Some(&who),
                    },
                    Some(&r.reason),
                    &r.at,
                )?;
            }
            if let Some(receipt) = &status.receipt {
                let key = receipt.get("idempotency_key").and_then(|v| v.as_str()).unwrap_or(&id);
                let st = receipt.get("status").and_then(|v| v.as_str()).unwrap_or("failed");
                // Not `record_attempt_receipt`: the watch shows the same status again on every
                // re-list, so the mirror's key must not depend on how often it was seen.
                let key = if st == ReceiptStatus::Failed.as_str() {
                    format!("{key}#failed-1")
                } else {
                    key.to_owned()
                };
                changed |= s.record_receipt(&ReceiptRecord {
                    proposal_id: id.clone(),
                    idempotency_key: key,
                    status: st.to_owned(),
                    rows_affected: receipt.get("rows_affected").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
                    safe_error_code: receipt
                        .get("safe_error_code")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    receipt: receipt.clone(),
                    created_at: now.clone(),
                })?;
            }
            if let Some(phase) = status.phase {
                changed |= s.mirror_state(
                    &id,
                    phase.ledger_state(),
                    "kubernetes",
                    json!({"phase": phase.as_str(), "message": status.message}),
                    &now,
                )?;
            }
            Ok(changed)
        })
        .await
}

/// Whether a `Proposal` the ledger does not hold is one this runner could have made, and so
/// takes into its ledger (see [`mirror_one`]).
pub type Adopt = dyn Fn(&ProposalSpec) -> bool + Send + Sync;

/// Watches the namespace's sidecar-created proposals until `shutdown`, mirroring each change
/// into the ledger. Watch errors back off and resume; ledger errors are logged.
pub async fn mirror(
    api: Api<Proposal>,
    ledger: Ledger,
    adopt: Box<Adopt>,
    now: impl Fn() -> String,
    shutdown: CancellationToken,
) {
    let cfg = watcher::Config::default().labels(&format!("{}={}", LABEL_MANAGED_BY.0, LABEL_MANAGED_BY.1));
    let mut stream = watcher(api, cfg).default_backoff().applied_objects().boxed();
    tracing::debug!("watching Proposals to mirror them");
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            n = stream.next() => n,
        };
        match next {
            None => break,
            Some(Ok(p)) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                tracing::debug!(proposal = %name, "a Proposal changed");
                match mirror_one(&ledger, p, &*adopt, now()).await {
                    Ok(true) => tracing::info!(proposal = %name, "mirrored a Proposal change into the ledger"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(proposal = %name, code = e.code(), error = %e, "could not mirror a Proposal")
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "watching proposals failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("billing.propose_fee"), "billing.propose_fee");
        assert_eq!(label_value("a b/c"), "a_b_c");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(label_value("-a-"), "a");
    }
}
