use synapsor_runner::cli::mcp::McpCommand;
use synapsor_runner::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse_with_env();
    // The stdio server serves one client, one request at a time: one thread is enough, saves the
    // cross-thread wake-ups on every request and keeps the process small. Everything else
    // (Streamable HTTP with many sessions, the CLI) runs on the multi-threaded runtime.
    let stdio = matches!(cli.command, Command::Mcp(McpCommand::Serve(_)));
    let mut builder = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(cli));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    // One TLS stack (rustls with ring), chosen explicitly before any connection is made.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs go to stderr: stdout belongs to command output (and to MCP in stdio mode).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: MCP clients' log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SYNAPSOR_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    synapsor_runner::cli::run(cli).await
}
