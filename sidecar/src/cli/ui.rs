//! `ui [--host 127.0.0.1] [--port 0] [--allow-remote-bind] [--open] [--allow-apply]`: serves the
//! review web UI ([`crate::ui`]) over the local ledger, or with `--kubernetes` over the
//! `Proposal` resources of a namespace with the reviewer's own kubeconfig, and prints its address
//! with this run's token. See `docs/review.md`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use super::common::{CliError, GlobalArgs, load_config, open_store, store_path};
use super::operator::OperatorArgs;
use crate::ui::ReviewSource;
use crate::ui::kubernetes::ClusterProposals;
use crate::ui::local::LocalLedger;
use crate::ui::security::Secrets;

pub const AFTER_HELP: &str = "\
Examples:
  synapsor-runner ui                        review on http://127.0.0.1:<free port>/?token=...
  synapsor-runner ui --port 8765 --open     a fixed port, opened in your browser
  synapsor-runner ui --allow-apply          also offer Apply (needs the writer URL in this environment)
  synapsor-runner ui --kubernetes -n shop   Proposal resources of namespace shop, as your kubeconfig's user

The address carries a random token made for this run; the first visit moves it into an HttpOnly
cookie. Decisions need an explicit confirmation and bind to the digest the page showed.

Local ledger: who decides is --actor, $SYNAPSOR_APPROVER or $USER, or the operator token a
capability's approval role requires (--operator-token-file), exactly as for `proposals approve`.

--kubernetes: the pages read proposals with your kubeconfig (the kubectl flags above choose the
file, context and namespace) and a decision is the same request as `kubectl annotate`, so the
admission webhook sees you and decides (RBAC verb `approve`, not the proposer, not expired).
synapsor-controller applies; the pages update live as proposals change. No ledger is opened.";

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to listen on. Loopback by default; any other address needs --allow-remote-bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Allow listening on a non-loopback address. There is no TLS: the token then crosses the
    /// network in clear, so use it only on a network you trust.
    #[arg(long)]
    pub allow_remote_bind: bool,
    /// Open the address in the default browser.
    #[arg(long)]
    pub open: bool,
    /// Offer Apply for approved proposals: the same guarded path as `synapsor-runner apply`, with
    /// the writer credentials of this process's environment. Without it the page shows the
    /// command to run.
    #[arg(long)]
    pub allow_apply: bool,
    /// Who decides, when no operator token names them. Default: $SYNAPSOR_APPROVER, else $USER.
    /// Recorded as unverified.
    #[arg(long, env = "SYNAPSOR_APPROVER")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// `--kubernetes` and the kubectl flags that choose where and as whom.
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Review `Proposal` resources on the cluster of your kubeconfig instead of the local ledger.
    #[arg(long, conflicts_with_all = ["allow_apply", "actor", "operator_token_file"])]
    pub kubernetes: bool,
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, requires = "kubernetes")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, requires = "kubernetes")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, requires = "kubernetes")]
    pub user: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, requires = "kubernetes")]
    pub namespace: Option<String>,
    /// Act as another user (impersonation; your credentials need `impersonate`).
    #[arg(long = "as", value_name = "USER", requires = "kubernetes")]
    pub as_user: Option<String>,
    /// A group to act as, with --as (repeatable).
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_user")]
    pub as_group: Vec<String>,
}

impl From<KubeArgs> for synapsor_kube::reviewer::KubectlFlags {
    fn from(k: KubeArgs) -> Self {
        synapsor_kube::reviewer::KubectlFlags {
            kubeconfig: k.kubeconfig,
            context: k.context,
            cluster: k.cluster,
            user: k.user,
            namespace: k.namespace,
            as_user: k.as_user,
            as_group: k.as_group,
        }
    }
}

/// The listen address, refused when it is not loopback and remote binds were not allowed.
pub fn bind_address(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, CliError> {
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                CliError::usage(
                    "UI_HOST_INVALID",
                    format!("--host {host:?} is not an IP address (for example 127.0.0.1 or ::1)"),
                )
            })?
    };
    if !ip.is_loopback() && !allow_remote {
        return Err(CliError::usage(
            "UI_REMOTE_BIND_REFUSED",
            format!(
                "--host {ip} is not a loopback address: the review UI listens on loopback unless you pass --allow-remote-bind (there is no TLS; the token would cross the network in clear)"
            ),
        ));
    }
    Ok(SocketAddr::new(ip, port))
}

/// `ui`: serves until Ctrl-C or SIGTERM.
pub async fn run(global: &GlobalArgs, args: UiArgs) -> Result<i32, CliError> {
    let addr = bind_address(&args.host, args.port, args.allow_remote_bind)?;
    if args.kube.kubernetes {
        let source = ClusterProposals::connect(&args.kube.into())
            .await
            .map_err(|e| CliError::new(e.code(), e.to_string()))?;
        return serve_source(addr, source, args.open).await;
    }
    // The ledger must exist (the UI never creates an empty one), and apply needs a valid config.
    drop(open_store(global)?);
    if args.allow_apply {
        load_config(&global.config)?;
    }
    let source = LocalLedger::new(
        global.config.clone(),
        store_path(global),
        args.actor,
        args.operator,
        args.allow_apply,
    );
    serve_source(addr, source, args.open).await
}

/// Binds, prints the address with this run's token, and serves `source` until Ctrl-C or SIGTERM.
async fn serve_source<S: ReviewSource>(addr: SocketAddr, source: S, open: bool) -> Result<i32, CliError> {
    let secrets = Secrets::generate().map_err(|e| CliError::new("UI_RANDOM_UNAVAILABLE", e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::new("UI_BIND_FAILED", format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::new("UI_BIND_FAILED", format!("cannot listen on {addr}: {e}")))?;
    let url = crate::ui::start_url(bound, secrets.token());
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: listening on {bound}, not loopback: there is no TLS, so the token crosses the network in clear"
        );
    }
    outln!("Review UI for {}", source.describe());
    outln!("{url}");
    outln!("Open that address in a browser (it carries this run's token). Ctrl-C stops.");
    if open {
        open_browser(&url);
    }
    crate::ui::serve(listener, source, secrets, shutdown_signal())
        .await
        .map_err(|e| CliError::new(e.code(), e.to_string()))?;
    Ok(0)
}

/// Starts the platform's opener; a failure is only a warning (the address is printed).
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("warning: could not start {program} to open the page ({e}); open the address above yourself");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        assert!(bind_address("127.0.0.1", 0, false).is_ok());
        assert!(bind_address("::1", 0, false).is_ok());
        assert!(bind_address("[::1]", 0, false).is_ok());
        assert!(bind_address("localhost", 0, false).is_ok());
        let e = bind_address("0.0.0.0", 0, false).err();
        assert_eq!(
            e.as_ref().map(|e| (e.code(), e.exit_code())),
            Some(("UI_REMOTE_BIND_REFUSED", 2))
        );
        assert!(bind_address("0.0.0.0", 0, true).is_ok());
        let e = bind_address("example.com", 0, true).err();
        assert_eq!(e.map(|e| e.code()), Some("UI_HOST_INVALID"));
    }
}
