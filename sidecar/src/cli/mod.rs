//! The `synapsor-runner` command line: argument definitions and dispatch.

pub mod commands;
pub mod mcp_cmds;
mod output;
pub mod writeback;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::run;

const ABOUT: &str = "Give AI agents reviewed business capabilities over your database, not SQL.";

const LONG_ABOUT: &str = "\
Synapsor Runner serves reviewed capabilities to AI agents over MCP: read tools that return fixed
columns of one row inside a trusted tenant, and proposal tools that record an exact change instead
of writing it. A human approves outside MCP; everything lands in a replayable local ledger.

Start here:
  synapsor-runner demo --quick            the whole flow on an embedded SQLite demo database
  synapsor-runner config validate         check synapsor.runner.json
  synapsor-runner up --dry-run            check config, store, databases and tools
  synapsor-runner mcp serve               serve MCP over stdio
  synapsor-runner proposals list          what agents proposed
  synapsor-runner proposals approve ID    approve one, bound to its digest";

#[derive(Debug, Parser)]
#[command(name = "synapsor-runner", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "SYNAPSOR_MCP_CONFIG",
        default_value = "synapsor.runner.json"
    )]
    pub config: PathBuf,
    /// Ledger file. Default: the config's storage.sqlite_path, else ./.synapsor/local.db.
    #[arg(long, global = true, env = "SYNAPSOR_LOCAL_STORE")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (stdio or Streamable HTTP), or print a client's MCP configuration.
    #[command(subcommand)]
    Mcp(mcp_cmds::McpCommand),
    /// Check everything (config, store, lease, databases, tools, writeback path), then optionally serve.
    Up(mcp_cmds::UpArgs),
    /// List the tools a model will see, or preview exactly what it sees and what it never sees.
    #[command(subcommand)]
    Tools(mcp_cmds::ToolsCommand),
    /// Call one tool through the real server path (reads and proposals are recorded as usual).
    #[command(subcommand)]
    Smoke(mcp_cmds::SmokeCommand),
    /// Validate the config, or print its JSON Schema.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List, show, approve or reject proposals.
    #[command(subcommand)]
    Proposals(ProposalsCommand),
    /// Show an evidence bundle (what was read, for whom, and the query audit).
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Replay everything the ledger holds about one proposal, in order.
    Replay(ReplayArgs),
    /// Print lifecycle events, optionally following new ones.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Inspect and maintain the local ledger.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Apply an approved proposal through its reviewed executor, with guards.
    Apply(writeback::ApplyArgs),
    /// Check environment, databases, receipts table, grants and handlers (secrets redacted).
    Doctor(writeback::DoctorArgs),
    /// Database setup for writeback (receipts table).
    #[command(subcommand)]
    Db(writeback::DbCommand),
    /// Starter code for app-owned writeback handlers.
    #[command(subcommand)]
    Handler(writeback::HandlerCommand),
    /// Run the demo: `demo --quick` needs no server and no setup.
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config: every error and warning with its code and JSON path. Exit 1 when invalid.
    Validate {
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of synapsor.runner.json.
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum ProposalsCommand {
    /// List proposals, newest first.
    List {
        /// Only this state (pending_review, approved, rejected, applied, conflict, failed, ...).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        capability: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one proposal (`latest` for the newest): diff, guards, approvals.
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposal. The approval is bound to the change-set digest shown by `show`.
    Approve {
        id: String,
        /// The digest you reviewed (`sha256:…`); the approval fails if the proposal differs.
        /// Without it, the current digest is shown and bound after confirmation.
        #[arg(long)]
        digest: Option<String>,
        /// Who approves. Default: $SYNAPSOR_APPROVER, else $USER.
        #[arg(long, env = "SYNAPSOR_APPROVER")]
        actor: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reject a proposal with a reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "SYNAPSOR_APPROVER")]
        actor: Option<String>,
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Show one evidence bundle by id (`ev_…`).
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Proposal id, or `latest`.
    pub proposal: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print events in order; with --follow, keep printing new ones until interrupted.
    Tail {
        #[arg(long)]
        follow: bool,
        /// Only this event kind (e.g. proposal_created, proposal_approved).
        #[arg(long)]
        kind: Option<String>,
        /// Start after this event id.
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// At most this many past events (the newest ones).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Poll interval for --follow.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..))]
        interval_ms: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// POST lifecycle events to a URL, one signed envelope per request.
    Webhook(writeback::WebhookArgs),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Row counts and size.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reclaim free pages.
    Vacuum,
    /// Delete decided proposals (and their evidence) older than a duration. Dry run by default.
    Prune {
        /// e.g. 30d, 12h, 90m.
        #[arg(long)]
        older_than: String,
        /// Only count what would be deleted (the default).
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Delete.
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete the whole ledger. Refused while a server holds the store.
    Reset {
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run the self-contained demo on an embedded SQLite database.
    #[arg(long)]
    pub quick: bool,
    /// Where the demo writes its databases (recreated on each run).
    #[arg(long, default_value = ".synapsor/quick-demo")]
    pub dir: PathBuf,
    /// Print one JSON summary instead of the walkthrough.
    #[arg(long)]
    pub json: bool,
}
