//! The `synapsor-runner` command line: the argument definitions ([`Cli`], [`Command`]) and one
//! module per command family, each with its arguments and its implementation. [`common`] holds
//! what they share; [`commands`] only dispatches.

pub mod apply;
pub mod commands;
pub mod common;
pub mod config;
pub mod db;
pub mod doctor;
pub mod events;
pub mod evidence;
pub mod handler;
pub mod mcp;
pub mod onboard;
pub mod operator;
mod output;
pub mod proposals;
pub mod recipes;
pub mod store;
pub mod tools;
pub mod ui;
pub mod up;
mod wizard;

use clap::{Parser, Subcommand};

pub use commands::run;

impl Cli {
    /// Parses the process's arguments (exits with clap's message on bad usage), taking the
    /// config path from SYNAPSOR_MCP_CONFIG when neither `--config` nor SYNAPSOR_CONFIG gave one.
    pub fn parse_with_env() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if matches.value_source("config") == Some(clap::parser::ValueSource::DefaultValue)
            && let Some(path) = synapsor_core::context::config_path_from_alias(&synapsor_core::context::ProcessEnv)
        {
            cli.global.config = path.into();
        }
        cli
    }
}
pub use common::GlobalArgs;

const ABOUT: &str = "Give AI agents reviewed business capabilities over your database, not SQL.";

const LONG_ABOUT: &str = "\
Synapsor Runner serves reviewed capabilities to AI agents over MCP: read tools that return fixed
columns of one row inside a trusted tenant, and proposal tools that record an exact change instead
of writing it. A human approves outside MCP; everything lands in a replayable local ledger.

Start here:
  synapsor-runner demo --quick            the whole flow on an embedded SQLite demo database
  synapsor-runner onboard db --from-env DATABASE_URL
                                          a reviewed config for one table of your database
  synapsor-runner config validate         check synapsor.runner.json
  synapsor-runner up --dry-run            check config, store, databases and tools
  synapsor-runner mcp serve               serve MCP over stdio
  synapsor-runner proposals list          what agents proposed
  synapsor-runner proposals approve ID    approve one, bound to its digest
  synapsor-runner ui                      review and decide proposals in a browser (loopback)";

#[derive(Debug, Parser)]
#[command(name = "synapsor-runner", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (stdio or Streamable HTTP), or print a client's MCP configuration.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Read a database's catalog (never its data): tables, columns, keys, and suggestions.
    Inspect(onboard::InspectArgs),
    /// Write a reviewed config for one table: flags, --answers FILE, or a wizard on a terminal.
    #[command(after_help = onboard::INIT_EXAMPLES)]
    Init(Box<onboard::InitArgs>),
    /// Onboard your database: `onboard db` is init, then validate, tool boundary, doctor, next steps.
    #[command(subcommand)]
    Onboard(onboard::OnboardCommand),
    /// Check everything (config, store, lease, databases, tools, writeback path), then optionally serve.
    Up(up::UpArgs),
    /// List the tools a model will see, or preview exactly what it sees and what it never sees.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Call one tool through the real server path (reads and proposals are recorded as usual).
    #[command(subcommand)]
    Smoke(tools::SmokeCommand),
    /// Validate the config, or print its JSON Schema.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// List, show, approve or reject proposals.
    #[command(subcommand)]
    Proposals(proposals::ProposalsCommand),
    /// Show an evidence bundle (what was read, for whom, and the query audit).
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Replay everything the ledger holds about one proposal, in order.
    Replay(evidence::ReplayArgs),
    /// Print lifecycle events, optionally following new ones.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Inspect and maintain the local ledger.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Apply an approved proposal through its reviewed executor, with guards.
    #[command(after_help = apply::AFTER_HELP)]
    Apply(apply::ApplyArgs),
    /// Check environment, databases, receipts table, grants and handlers (secrets redacted).
    Doctor(doctor::DoctorArgs),
    /// Database setup for writeback (receipts table).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Starter code for app-owned writeback handlers.
    #[command(subcommand)]
    Handler(handler::HandlerCommand),
    /// Built-in recipes: tested configs for common reviewed actions, with demo schemas.
    #[command(subcommand, long_about = recipes::LONG_ABOUT)]
    Recipes(recipes::RecipesCommand),
    /// Review proposals in a browser: a local web UI (loopback, per-run token) to approve, reject or apply.
    #[command(after_help = ui::AFTER_HELP)]
    Ui(ui::UiArgs),
    /// Run the demo: `demo --quick` needs no server and no setup.
    Demo(crate::demo::DemoArgs),
}
