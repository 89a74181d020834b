//! The reviewer's connection to the cluster, made the way kubectl makes it: the person's
//! kubeconfig (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`), its current context or
//! `--context`, optionally `--cluster`/`--user`, `--as` impersonation, and the context's
//! namespace unless `-n` names one.
//!
//! [`send_decision`] then records a decision the way `kubectl annotate` does, bound to the
//! proposal that was shown.
//!
//! What it is not: it never falls back to an in-cluster service account. Decisions are recorded
//! under the name of the person whose credentials these are, so `kubectl synapsor` and
//! `synapsor-runner ui --kubernetes` act only with credentials a person gave them.

use std::path::PathBuf;

use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::review::{annotation_pointer, decision_patch};
use crate::{ANNOTATION_APPROVE, ANNOTATION_REJECT, Proposal};

/// The connection flags, as kubectl names them (each CLI declares them with its own parser).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubectlFlags {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
    /// `--as`: impersonate this user.
    pub as_user: Option<String>,
    /// `--as-group`, with `--as`.
    pub as_group: Vec<String>,
}

/// A client for the chosen context, and who it acts as.
#[derive(Clone)]
pub struct Reviewer {
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The kubeconfig context in use.
    pub context: Option<String>,
    /// Who the requests are made as, as far as the kubeconfig says (`--as`, else the context's
    /// user entry). The API server decides who that really is; the webhook records that.
    pub acting_as: Option<String>,
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("namespace", &self.namespace)
            .field("context", &self.context)
            .field("acting_as", &self.acting_as)
            .finish_non_exhaustive()
    }
}

/// Why the kubeconfig gave no client: the loader's own words (they name the file or context,
/// never a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct KubeconfigError {
    pub detail: String,
}

/// Loads the kubeconfig and builds the client (no request is made yet).
pub async fn connect(flags: &KubectlFlags) -> Result<Reviewer, KubeconfigError> {
    let failed = |e: &dyn std::fmt::Display| KubeconfigError { detail: e.to_string() };
    let kubeconfig = match &flags.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| failed(&e))?;
    let context = flags.context.clone().or_else(|| kubeconfig.current_context.clone());
    let context_user = context.as_deref().and_then(|name| {
        kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
    });
    let options = KubeConfigOptions {
        context: flags.context.clone(),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| failed(&e))?;
    if let Some(user) = flags.as_user.clone().filter(|u| !u.is_empty()) {
        config.auth_info.impersonate = Some(user);
        if !flags.as_group.is_empty() {
            config.auth_info.impersonate_groups = Some(flags.as_group.clone());
        }
    }
    let namespace = flags
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone());
    let acting_as = config
        .auth_info
        .impersonate
        .clone()
        .or_else(|| flags.user.clone())
        .or(context_user);
    let client = kube::Client::try_from(config).map_err(|e| failed(&e))?;
    Ok(Reviewer {
        client,
        namespace,
        context,
        acting_as,
    })
}

/// A reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    /// With its reason.
    Reject(String),
}

impl Decision {
    /// The annotation and value a person sets with `kubectl annotate` for this decision.
    pub fn annotation(&self) -> (&'static str, String) {
        match self {
            Decision::Approve => (ANNOTATION_APPROVE, "true".to_owned()),
            Decision::Reject(reason) => (ANNOTATION_REJECT, reason.clone()),
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject(_) => "reject",
        }
    }

    pub fn done(&self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject(_) => "rejected",
        }
    }
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("the proposal no longer exists")]
    NotFound,
    /// Another object, or another digest, now has that name.
    #[error("the proposal changed since it was shown")]
    ChangedSinceReview,
    /// The API server or the admission webhook refused; its message, verbatim.
    #[error("{message}")]
    Refused { message: String },
    /// The annotation was stored as is: no Synapsor webhook handled it. `cleanup` says whether
    /// it was taken back.
    #[error("the annotation {annotation} was stored as is: no Synapsor admission webhook handled it. {cleanup}")]
    WebhookMissing { annotation: &'static str, cleanup: String },
    /// The request did not get an answer of the API server.
    #[error("{0}")]
    Unreachable(kube::Error),
}

/// The API server's message, or its reason and code when it sent none.
pub fn api_message(s: &kube::core::Status) -> String {
    if s.message.is_empty() {
        format!("the API server answered {} {}", s.code, s.reason)
    } else {
        s.message.clone()
    }
}

fn json_patch(v: serde_json::Value) -> Result<Patch<()>, DecisionError> {
    serde_json::from_value::<json_patch::Patch>(v)
        .map(Patch::Json)
        .map_err(|e| DecisionError::Refused {
            message: format!("the decision could not be encoded: {e}"),
        })
}

/// Records `decision` on `shown`, the proposal as the person saw it: the same request as
/// `kubectl annotate`, sent as a JSON patch that first tests the uid and digest that were shown
/// ([`decision_patch`]), so it lands only on the reviewed proposal. Returns the proposal as the
/// webhook left it. An annotation that comes back unconsumed (no webhook) is taken back.
pub async fn send_decision(
    api: &Api<Proposal>,
    shown: &Proposal,
    decision: &Decision,
) -> Result<Proposal, DecisionError> {
    let name = shown.metadata.name.clone().unwrap_or_default();
    let (key, value) = decision.annotation();
    let patch = json_patch(decision_patch(shown, key, &value))?;
    let after = match api.patch(&name, &PatchParams::default(), &patch).await {
        Ok(after) => after,
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(DecisionError::NotFound),
        // A failed `test` operation answers 422 with a generic message: look again to tell
        // "not the object that was shown" from any other invalid request.
        Err(kube::Error::Api(s)) if s.code == 422 => {
            return Err(match api.get_opt(&name).await {
                Ok(Some(now)) if now.metadata.uid == shown.metadata.uid && now.spec.digest == shown.spec.digest => {
                    DecisionError::Refused {
                        message: api_message(&s),
                    }
                }
                Ok(_) => DecisionError::ChangedSinceReview,
                Err(e) => DecisionError::Unreachable(e),
            });
        }
        Err(kube::Error::Api(s)) => {
            return Err(DecisionError::Refused {
                message: api_message(&s),
            });
        }
        Err(e) => return Err(DecisionError::Unreachable(e)),
    };
    if after.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(key)) {
        // Not consumed: no Synapsor webhook saw it. Take it back so it cannot be mistaken for
        // a request of whoever updates the object next.
        let undo = serde_json::json!([{"op": "test", "path": annotation_pointer(key), "value": value},
                                      {"op": "remove", "path": annotation_pointer(key)}]);
        let by_hand = format!("remove it with kubectl annotate proposal/{name} {key}-");
        let cleanup = match json_patch(undo) {
            Ok(undo) => match api.patch(&name, &PatchParams::default(), &undo).await {
                Ok(_) => "The annotation was removed again. Install the synapsor-runner chart (or its webhook) first."
                    .to_owned(),
                Err(e) => format!("Removing it again failed ({e}): {by_hand}"),
            },
            Err(e) => format!("Removing it again failed ({e}): {by_hand}"),
        };
        return Err(DecisionError::WebhookMissing {
            annotation: key,
            cleanup,
        });
    }
    Ok(after)
}
