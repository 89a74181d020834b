//! The connection to the cluster: the flags as kubectl has them, handed to
//! `synapsor_kube::reviewer`, which connects with the person's own kubeconfig and never with a
//! service account.

pub use synapsor_kube::reviewer::Reviewer as Conn;
use synapsor_kube::reviewer::{self, KubectlFlags};

use crate::cli::GlobalArgs;
use crate::error::PluginError;

impl From<&GlobalArgs> for KubectlFlags {
    fn from(g: &GlobalArgs) -> KubectlFlags {
        KubectlFlags {
            kubeconfig: g.kubeconfig.clone(),
            context: g.context.clone(),
            cluster: g.cluster.clone(),
            user: g.user.clone(),
            namespace: g.namespace.clone(),
            as_user: g.as_user.clone(),
            as_group: g.as_group.clone(),
        }
    }
}

/// Loads the kubeconfig and builds the client (no request is made yet).
pub async fn connect(g: &GlobalArgs) -> Result<Conn, PluginError> {
    reviewer::connect(&KubectlFlags::from(g))
        .await
        .map_err(|e| PluginError::Kubeconfig { detail: e.detail })
}
