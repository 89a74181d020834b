use clap::Parser;

#[tokio::main]
async fn main() {
    // One TLS stack for sqlx and reqwest (both built without a provider of their own).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = synapsor_bench::cli::Args::parse();
    if let Err(e) = synapsor_bench::run(args).await {
        eprintln!("synapsor-bench: error: {e:#}");
        std::process::exit(1);
    }
}
