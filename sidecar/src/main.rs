use clap::Parser;

#[tokio::main]
async fn main() {
    // One TLS stack (rustls with ring), chosen explicitly before any connection is made.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs go to stderr: stdout belongs to command output (and to MCP in stdio mode).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SYNAPSOR_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = synapsor_runner::cli::Cli::parse();
    let code = synapsor_runner::cli::run(cli).await;
    std::process::exit(code);
}
