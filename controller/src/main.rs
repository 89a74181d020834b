//! `synapsor-controller` binary: see the library for what it is.

fn main() {
    // One crypto provider for every TLS stack in the process (kube client, webhook server).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = synapsor_controller::cli::Cli::parse_with_env();
    std::process::exit(synapsor_controller::cli::main(cli));
}
