//! The errors of `kubectl synapsor`, each with a stable code and a message that says what to do.
//!
//! What it is: one enum, its codes (`PLUGIN_*`) and the exit status each maps to (2 for a
//! command that was refused before anything was sent, 3 for a `wait` that timed out, 1 for the
//! rest). What it is not: it does not hide what the API server or the admission webhook said;
//! their messages are kept verbatim.

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No kubeconfig could be read or it names no usable context.
    #[error(
        "cannot load the kubeconfig: {detail}. Pass --kubeconfig FILE or set KUBECONFIG, and --context NAME if it has no current context"
    )]
    Kubeconfig { detail: String },

    /// The API server could not be reached at all.
    #[error(
        "cannot reach the Kubernetes API server: {detail}. Check the cluster of your context (kubectl cluster-info)"
    )]
    Unreachable { detail: String },

    /// The `Proposal` CRD is not installed in the cluster.
    #[error(
        "the cluster does not serve proposals.runner.synapsor.ai: install the CRD (the synapsor-runner Helm chart, or kubectl apply -f crds/)"
    )]
    CrdMissing,

    /// No proposal of that name in that namespace.
    #[error(
        "proposal {name:?} not found in namespace {namespace:?}. List them with: kubectl synapsor list -n {namespace} (or -A for all namespaces)"
    )]
    NotFound { name: String, namespace: String },

    /// The API server refused a read (RBAC); its message, verbatim.
    #[error("{message}")]
    Forbidden { message: String },

    /// Any other answer of the API server; its message, verbatim.
    #[error("{message}")]
    Api { message: String },

    /// A decision asked for without a terminal and without `--yes`.
    #[error(
        "{action} needs a confirmation, and there is no terminal to ask on: review it first (kubectl synapsor review {name}), then run again with --yes"
    )]
    ConfirmationRequired { action: &'static str, name: String },

    /// The person at the terminal did not confirm.
    #[error("not {done}: the confirmation was not given (answer y to go ahead)")]
    Aborted { done: &'static str },

    /// `reject` with an empty reason.
    #[error("a rejection needs a reason: --reason \"what is wrong with the change\"")]
    ReasonRequired,

    /// The API server or the admission webhook refused the decision; its message, verbatim.
    #[error("{message}")]
    DecisionRefused { message: String },

    /// The proposal is not the one that was reviewed any more (recreated under the same name).
    #[error(
        "proposal {name:?} changed since it was shown (another object or another digest now has that name); nothing was recorded. Review it again"
    )]
    ChangedSinceReview { name: String },

    /// The spec no longer matches its digest: nobody may approve it.
    #[error(
        "proposal {name:?} does not match its own digest (spec.digest): it was altered and cannot be approved. Ask for it to be proposed again"
    )]
    DigestMismatch { name: String },

    /// The annotation was admitted but not consumed: no Synapsor webhook handled it.
    #[error(
        "the annotation {annotation} was stored as is instead of being recorded by the Synapsor admission webhook, so it approves nothing; the webhook is not installed for namespace {namespace:?}. {cleanup}"
    )]
    WebhookMissing {
        annotation: &'static str,
        namespace: String,
        cleanup: String,
    },

    /// `wait` saw the proposal end in a phase that was not asked for.
    #[error("proposal {name:?} ended {phase}{reason}")]
    WaitEnded {
        name: String,
        phase: String,
        reason: String,
    },

    /// `wait` saw the proposal deleted.
    #[error("proposal {name:?} was deleted while waiting")]
    Deleted { name: String },

    /// `wait` ran out of time.
    #[error(
        "proposal {name:?} is still {phase} after {timeout}; wait longer with --timeout, or look at it with: kubectl synapsor review {name}"
    )]
    WaitTimeout {
        name: String,
        phase: String,
        timeout: String,
    },

    /// A flag value that does not parse.
    #[error("{flag} {value:?} is not valid: {expected}")]
    InvalidArgument {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },

    /// Output could not be encoded or written.
    #[error("cannot write the output: {detail}")]
    Output { detail: String },

    /// The async runtime could not start.
    #[error("cannot start the async runtime: {detail}")]
    Runtime { detail: String },
}

impl PluginError {
    /// The stable code, printed as `error[CODE]`.
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::Kubeconfig { .. } => "PLUGIN_KUBECONFIG",
            PluginError::Unreachable { .. } => "PLUGIN_API_UNREACHABLE",
            PluginError::CrdMissing => "PLUGIN_CRD_MISSING",
            PluginError::NotFound { .. } => "PLUGIN_NOT_FOUND",
            PluginError::Forbidden { .. } => "PLUGIN_FORBIDDEN",
            PluginError::Api { .. } => "PLUGIN_API_ERROR",
            PluginError::ConfirmationRequired { .. } => "PLUGIN_CONFIRMATION_REQUIRED",
            PluginError::Aborted { .. } => "PLUGIN_ABORTED",
            PluginError::ReasonRequired => "PLUGIN_REASON_REQUIRED",
            PluginError::DecisionRefused { .. } => "PLUGIN_DECISION_REFUSED",
            PluginError::ChangedSinceReview { .. } => "PLUGIN_CHANGED_SINCE_REVIEW",
            PluginError::DigestMismatch { .. } => "PLUGIN_DIGEST_MISMATCH",
            PluginError::WebhookMissing { .. } => "PLUGIN_WEBHOOK_MISSING",
            PluginError::WaitEnded { .. } => "PLUGIN_WAIT_ENDED",
            PluginError::Deleted { .. } => "PLUGIN_PROPOSAL_DELETED",
            PluginError::WaitTimeout { .. } => "PLUGIN_WAIT_TIMEOUT",
            PluginError::InvalidArgument { .. } => "PLUGIN_INVALID_ARGUMENT",
            PluginError::Output { .. } => "PLUGIN_OUTPUT",
            PluginError::Runtime { .. } => "PLUGIN_RUNTIME",
        }
    }

    /// The process exit status: 2 when refused before anything was sent, 3 for a timeout.
    pub fn exit_code(&self) -> i32 {
        match self {
            PluginError::ConfirmationRequired { .. }
            | PluginError::ReasonRequired
            | PluginError::InvalidArgument { .. } => 2,
            PluginError::WaitTimeout { .. } => 3,
            _ => 1,
        }
    }

    /// An error of a read (get, list, watch), with a 403 kept verbatim as [`PluginError::Forbidden`].
    pub fn from_read(e: kube::Error) -> PluginError {
        match e {
            kube::Error::Api(s) if s.code == 403 => PluginError::Forbidden { message: s.message },
            kube::Error::Api(s) => PluginError::Api {
                message: synapsor_kube::reviewer::api_message(&s),
            },
            other => PluginError::Unreachable {
                detail: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_before_sending_exit_2_and_codes_are_stable() {
        let e = PluginError::ConfirmationRequired {
            action: "approve",
            name: "wrp-1".into(),
        };
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.code(), "PLUGIN_CONFIRMATION_REQUIRED");
        assert!(e.to_string().contains("--yes"));
        assert_eq!(PluginError::ReasonRequired.exit_code(), 2);
        let t = PluginError::WaitTimeout {
            name: "a".into(),
            phase: "Pending".into(),
            timeout: "5m".into(),
        };
        assert_eq!(t.exit_code(), 3);
        let refused = PluginError::DecisionRefused {
            message: "admission webhook \"x\" denied the request: no".into(),
        };
        assert_eq!(refused.to_string(), "admission webhook \"x\" denied the request: no");
        assert_eq!(refused.exit_code(), 1);
    }
}
