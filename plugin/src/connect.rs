//! The connection to the cluster, made the way kubectl makes it: the user's kubeconfig
//! (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`), its current context or
//! `--context`, optionally `--cluster`/`--user`, `--as` impersonation, and the context's
//! namespace unless `-n` names one.
//!
//! What it is not: it never falls back to an in-cluster service account. Decisions are
//! recorded under the name of the person whose credentials these are, so the plugin acts only
//! with the credentials a person gave it.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::GlobalArgs;
use crate::error::PluginError;

/// A client for the chosen context, and what to call it when asking for confirmation.
#[derive(Clone)]
pub struct Conn {
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The kubeconfig context in use.
    pub context: Option<String>,
    /// Who the request is made as, as far as the kubeconfig says (`--as`, else the context's
    /// user entry). The API server decides who that really is; the webhook records that.
    pub acting_as: Option<String>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("namespace", &self.namespace)
            .field("context", &self.context)
            .field("acting_as", &self.acting_as)
            .finish_non_exhaustive()
    }
}

/// Loads the kubeconfig and builds the client (no request is made yet).
pub async fn connect(g: &GlobalArgs) -> Result<Conn, PluginError> {
    let kubeconfig = match &g.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| PluginError::Kubeconfig { detail: e.to_string() })?;
    let context = g.context.clone().or_else(|| kubeconfig.current_context.clone());
    let context_user = context.as_deref().and_then(|name| {
        kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
    });
    let options = KubeConfigOptions {
        context: g.context.clone(),
        cluster: g.cluster.clone(),
        user: g.user.clone(),
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| PluginError::Kubeconfig { detail: e.to_string() })?;
    if let Some(user) = g.as_user.clone().filter(|u| !u.is_empty()) {
        config.auth_info.impersonate = Some(user);
        if !g.as_group.is_empty() {
            config.auth_info.impersonate_groups = Some(g.as_group.clone());
        }
    }
    let namespace = g
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone());
    let acting_as = config
        .auth_info
        .impersonate
        .clone()
        .or_else(|| g.user.clone())
        .or(context_user);
    let client = kube::Client::try_from(config).map_err(|e| PluginError::Kubeconfig { detail: e.to_string() })?;
    Ok(Conn {
        client,
        namespace,
        context,
        acting_as,
    })
}
