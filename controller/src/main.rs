//! `synapsor-controller`: the privileged Kubernetes component that applies approved `Proposal`
//! resources with guarded writeback.
//!
//! This build only identifies itself: the reconciler, admission webhook and leader election are
//! not here yet, and the binary says so instead of pretending to run.

use clap::Parser;

/// Applies approved Synapsor proposals in Kubernetes (not functional in this build).
#[derive(Debug, Parser)]
#[command(
    name = "synapsor-controller",
    version,
    about = "Applies approved Synapsor Proposal resources with guarded writeback.",
    long_about = "Applies approved Synapsor Proposal resources with guarded writeback.\n\n\
                  Not functional in this build: the Kubernetes controller (reconciler, admission \n\
                  webhook, leader election) is not implemented yet. Use `synapsor-runner` for local \n\
                  mode. Running without arguments exits with status 2."
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "synapsor-controller {}: the Kubernetes controller is not implemented in this build; see --help",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
