//! Why `synapsor-controller run` could not start (or stopped): one variant per cause, each with
//! a stable [`code`](StartError::code), printed as `error[CODE]: message` before exit status 1.
//! Reconcile errors are [`crate::reconcile::ReconcileError`]; they are retried, not fatal.

use std::net::SocketAddr;
use std::path::PathBuf;

use synapsor_core::ToolError;
use synapsor_ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read config {}: {source}", path.display())]
    ConfigNotFound { path: PathBuf, source: std::io::Error },
    #[error("{} has {count} error(s); first: {first}", path.display())]
    ConfigInvalid { path: PathBuf, count: usize, first: String },
    #[error("{}", .0.message)]
    Capabilities(ToolError),
    #[error("cannot read the approval key {}: {source}", path.display())]
    ApprovalKeyMissing { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    ApprovalKeyInvalid(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Ledger(LedgerError),
    #[error("cannot build a Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    KubeConfig(kube::Error),
    #[error("the Kubernetes API did not answer: {0}")]
    KubeUnreachable(kube::Error),
    #[error(
        "the proposals.runner.synapsor.ai CRD is not installed; install it with `synapsor-controller crd | kubectl apply -f -` (the Helm chart does)"
    )]
    CrdMissing,
    #[error("cannot list proposals: {0}")]
    KubeApi(kube::Error),
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
}

impl StartError {
    pub fn code(&self) -> &'static str {
        match self {
            StartError::ConfigNotFound { .. } => "CONFIG_NOT_FOUND",
            StartError::ConfigInvalid { .. } => "CONFIG_INVALID",
            StartError::Capabilities(e) => e.code.as_str(),
            StartError::ApprovalKeyMissing { .. } => "APPROVAL_KEY_MISSING",
            StartError::ApprovalKeyInvalid(_) => "APPROVAL_KEY_INVALID",
            StartError::Tls(_) => "TLS_INVALID",
            StartError::Ledger(e) => e.code(),
            StartError::KubeConfig(_) => "KUBE_CONFIG",
            StartError::KubeUnreachable(_) => "KUBE_API_UNREACHABLE",
            StartError::CrdMissing => "KUBE_CRD_MISSING",
            StartError::KubeApi(_) => "KUBE_API_ERROR",
            StartError::Bind { .. } => "LISTEN_FAILED",
        }
    }
}

/// An approval key file that cannot sign (shorter than [`crate::decisions::MIN_KEY_BYTES`]).
#[derive(Debug, thiserror::Error)]
#[error("the approval key has {len} bytes; at least {min} are required", min = crate::decisions::MIN_KEY_BYTES)]
pub struct KeyError {
    pub len: usize,
}

/// Why the webhook's certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {}: {detail}", path.display())]
    CertUnreadable { path: PathBuf, detail: String },
    #[error("no certificate in {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot read the TLS key {}: {detail}", path.display())]
    KeyUnreadable { path: PathBuf, detail: String },
    #[error("the TLS certificate and key do not fit together: {0}")]
    Mismatch(rustls::Error),
}

/// A decision annotation that does not parse (the webhook refuses the request that carries it;
/// the reconciler ignores it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionParseError {
    #[error("the approvals annotation is not a list of decisions")]
    Approvals,
    #[error("the rejection annotation is not a decision")]
    Rejection,
}
