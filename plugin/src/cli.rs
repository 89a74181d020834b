//! The command line of `kubectl synapsor` and the process around it: parse, run one command on
//! a small runtime, print `error[CODE]: message` on stderr and return the exit status.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::PluginError;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-synapsor",
    bin_name = "kubectl synapsor",
    version,
    about = "Review, approve and reject Synapsor proposals, as yourself, from kubectl.",
    long_about = "Review, approve and reject Synapsor proposals, as yourself, from kubectl.\n\n\
                  A Synapsor proposal is the exact change an AI agent asked for (a before/after diff of \
                  one row, with the guards the controller re-checks). Approving records your decision \
                  exactly as `kubectl annotate proposal/<name> runner.synapsor.ai/approve=true` would: \
                  the admission webhook checks that RBAC allows you the verb `approve` and that you did \
                  not propose it, and records a signed approval; synapsor-controller applies the change \
                  once enough approvals are verified. Uses your kubeconfig, never a service account.",
    after_help = "Examples:\n  \
                  kubectl synapsor list -A\n  \
                  kubectl synapsor review wrp-4f1c9a27d0b3e8a61c55 -n apps\n  \
                  kubectl synapsor approve wrp-4f1c9a27d0b3e8a61c55 -n apps\n  \
                  kubectl synapsor reject wrp-4f1c9a27d0b3e8a61c55 -n apps --reason \"already refunded\"\n  \
                  kubectl synapsor wait wrp-4f1c9a27d0b3e8a61c55 -n apps --for applied --timeout 5m"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The connection flags, as kubectl has them.
#[derive(Debug, Clone, Args, Default)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Act as another user (impersonation; your credentials need `impersonate`).
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// A group to act as, with --as (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List proposals: name, capability, tenant, phase, approvals, age and the change.
    List(ListArgs),
    /// Show one proposal: the diff, the guards re-checked at apply, evidence, decisions,
    /// receipt and timeline.
    Review(ReviewArgs),
    /// Approve a proposal as yourself (after showing it and asking, unless --yes).
    Approve(ApproveArgs),
    /// Reject a proposal as yourself, with a reason (after showing it and asking, unless --yes).
    Reject(RejectArgs),
    /// Wait until a proposal is applied (or ends otherwise); exit 0 only when it reached what
    /// was asked for.
    Wait(WaitArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewOutput {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// All namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only proposals in this phase: Pending, Approved, Applying, Applied, Conflict, Failed,
    /// Rejected or Expired (any case).
    #[arg(long, value_name = "PHASE")]
    pub phase: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = ListOutput::Table)]
    pub output: ListOutput,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The proposal's name (`wrp-...`).
    pub name: String,
    #[arg(short = 'o', long, value_enum, default_value_t = ReviewOutput::Text)]
    pub output: ReviewOutput,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The proposal's name (`wrp-...`).
    pub name: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The proposal's name (`wrp-...`).
    pub name: String,
    /// Why: recorded with the rejection and shown to everyone who looks at the proposal.
    #[arg(long, value_name = "REASON")]
    pub reason: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The proposal's name (`wrp-...`).
    pub name: String,
    /// `applied` (default), `terminal` (any final phase), or another phase name.
    #[arg(long = "for", value_name = "CONDITION", default_value = "applied")]
    pub for_: String,
    /// How long to wait: `30s`, `5m`, `1h`.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
}

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return report(&PluginError::Runtime { detail: e.to_string() });
        }
    };
    match rt.block_on(crate::commands::run(cli)) {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

fn report(e: &PluginError) -> i32 {
    eprintln!("error[{}]: {e}", e.code());
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere_and_reject_needs_a_reason() {
        let cli = Cli::try_parse_from(["kubectl-synapsor", "review", "wrp-1", "-n", "apps", "--context", "dev"]);
        let Ok(cli) = cli else { panic!("{cli:?}") };
        assert_eq!(cli.global.namespace.as_deref(), Some("apps"));
        assert_eq!(cli.global.context.as_deref(), Some("dev"));
        assert!(Cli::try_parse_from(["kubectl-synapsor", "reject", "wrp-1"]).is_err());
        let w = Cli::try_parse_from(["kubectl-synapsor", "wait", "wrp-1"]);
        let Ok(Cli {
            command: Command::Wait(w),
            ..
        }) = w
        else {
            panic!("{w:?}")
        };
        assert_eq!((w.for_.as_str(), w.timeout.as_str()), ("applied", "5m"));
    }
}
