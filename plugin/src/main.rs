//! `kubectl-synapsor` binary (run as `kubectl synapsor`): see the library for what it is.

fn main() {
    // One crypto provider for the kube client's TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = <kubectl_synapsor::cli::Cli as clap::Parser>::parse();
    std::process::exit(kubectl_synapsor::cli::run(cli));
}
