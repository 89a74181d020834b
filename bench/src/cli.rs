//! Command-line flags and the settings derived from them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;

/// Measures Synapsor Runner against PostgreSQL in one run: the direct parameterized SELECT, the
/// read tool over stdio and Streamable HTTP (sequential and concurrent), the proposal tool, idle
/// and peak RSS, and cold start to `initialize`. Prints a table against the targets and writes a
/// JSON report. Usually run through `scripts/bench.sh`.
#[derive(Debug, Parser)]
#[command(name = "synapsor-bench", version, args_override_self = true)]
pub struct Args {
    /// Superuser URL of the PostgreSQL server. A fresh database and a SELECT-only role are
    /// created on it and dropped afterwards.
    #[arg(long, env = "SYNAPSOR_TEST_PG_URL", hide_env_values = true)]
    pub pg_url: String,
    /// The release `synapsor-runner` binary. Default: next to this binary.
    #[arg(long, env = "SYNAPSOR_BENCH_RUNNER")]
    pub runner: Option<PathBuf>,
    /// Timed calls per phase, after warm-up. Concurrent phases split them over the clients.
    /// Default 2000 (200 with --quick).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Concurrent clients (sessions) in the concurrent phases.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Clients of the second, heavier concurrent HTTP phase ("no collapse under load"); not run
    /// when it is not above --concurrency.
    #[arg(long, default_value_t = 32)]
    pub high_concurrency: usize,
    /// Another MCP server to measure side by side, as a shell command that serves MCP over
    /// stdio with the same two tools (`billing.inspect_invoice`, `billing.propose_late_fee_waiver`)
    /// on the benchmark's config. `{config}` and `{store}` are replaced by the config file and a
    /// fresh store path (also in SYNAPSOR_BENCH_CONFIG and SYNAPSOR_BENCH_STORE); the server gets
    /// the runner's environment (BENCH_READ_URL, SYNAPSOR_TENANT_ID, SYNAPSOR_PRINCIPAL) plus
    /// PATH and HOME. Example: --compare 'npx synapsor-runner --config {config} mcp serve'.
    #[arg(long, value_name = "CMD")]
    pub compare: Option<String>,
    /// The controller's figures (JSON written by synapsor-controller's `throughput` test through
    /// SYNAPSOR_BENCH_CONTROLLER_OUT), added to the targets. scripts/bench.sh passes it.
    #[arg(long, value_name = "FILE")]
    pub controller_report: Option<PathBuf>,
    /// Small numbers for a smoke run (200 iterations, 10k ledger rows, 5 cold starts).
    #[arg(long)]
    pub quick: bool,
    /// Rows in the invoices table, spread over 4 tenants.
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Evidence bundles (and as many query-audit rows) pre-filled into the ledger for the cold
    /// start comparison; a tenth as many closed proposals are added. Default 100000 (10000 with
    /// --quick).
    #[arg(long)]
    pub ledger_rows: Option<usize>,
    /// Cold starts per variant; the median (and minimum) is reported. Default 21 (5 with --quick).
    #[arg(long)]
    pub cold_runs: Option<usize>,
    /// Where the report, config, ledgers and server logs go.
    #[arg(long, default_value = "target/bench")]
    pub out_dir: PathBuf,
    /// Keep the benchmark database (and its role) instead of dropping them.
    #[arg(long)]
    pub keep_db: bool,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pg_url: String,
    pub runner: PathBuf,
    pub iterations: usize,
    pub warmup: usize,
    pub concurrency: usize,
    pub high_concurrency: usize,
    pub compare: Option<String>,
    pub controller_report: Option<PathBuf>,
    pub quick: bool,
    pub rows: usize,
    pub ledger_rows: usize,
    pub cold_runs: usize,
    pub out_dir: PathBuf,
    pub keep_db: bool,
}

impl Settings {
    pub fn resolve(args: Args) -> anyhow::Result<Settings> {
        let runner = match args.runner {
            Some(p) => p,
            None => std::env::current_exe()
                .context("locating this binary")?
                .with_file_name("synapsor-runner"),
        };
        if !runner.is_file() {
            bail!(
                "runner binary {} not found: build it with `cargo build --release -p synapsor-runner` or pass --runner",
                runner.display()
            );
        }
        let iterations = args.iterations.unwrap_or(if args.quick { 200 } else { 2000 });
        if iterations == 0 {
            bail!("--iterations must be at least 1");
        }
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if args.compare.as_deref().is_some_and(|c| c.trim().is_empty()) {
            bail!("--compare needs the command that starts the other MCP server");
        }
        if args.rows < 400 {
            bail!("--rows must be at least 400");
        }
        let out_dir = std::path::absolute(&args.out_dir).unwrap_or(args.out_dir);
        Ok(Settings {
            pg_url: args.pg_url,
            runner: std::path::absolute(&runner).unwrap_or(runner),
            iterations,
            warmup: (iterations / 10).clamp(20, 200),
            concurrency: args.concurrency,
            high_concurrency: args.high_concurrency,
            compare: args.compare,
            controller_report: args.controller_report,
            quick: args.quick,
            rows: args.rows,
            ledger_rows: args.ledger_rows.unwrap_or(if args.quick { 10_000 } else { 100_000 }),
            cold_runs: args.cold_runs.unwrap_or(if args.quick { 5 } else { 21 }).max(1),
            out_dir,
            keep_db: args.keep_db,
        })
    }
}
