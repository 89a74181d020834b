//! Dispatch: runs the parsed command line through its command module and turns a [`CliError`]
//! into `error[CODE]: message` on stderr (or a JSON error with `--json`) and exit status 1.

use serde_json::json;

use super::common::CliError;
use super::{
    Cli, Command, apply, config, db, doctor, events, evidence, handler, mcp, onboard, proposals, store, tools, up,
};

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let json = wants_json(&cli.command);
    let global = &cli.global;
    let result: Result<i32, CliError> = match cli.command {
        Command::Config(c) => config::run(global, c),
        Command::Inspect(a) => onboard::inspect(global, a).await,
        Command::Init(a) => onboard::init(global, *a).await,
        Command::Onboard(c) => onboard::onboard(global, c).await,
        Command::Mcp(c) => mcp::run(global, c).await,
        Command::Up(a) => up::run(global, a).await,
        Command::Tools(c) => tools::tools(global, c),
        Command::Smoke(c) => tools::smoke(global, c).await,
        Command::Proposals(c) => proposals::run(global, c).await,
        Command::Evidence(c) => evidence::show(global, c),
        Command::Replay(a) => evidence::replay(global, a),
        Command::Events(c) => events::run(global, c).await,
        Command::Store(c) => store::run(global, c),
        Command::Apply(a) => apply::run(global, a).await,
        Command::Doctor(a) => doctor::run(global, a).await,
        Command::Db(c) => db::run(global, c).await,
        Command::Handler(c) => handler::run(global, c),
        Command::Recipes(c) => super::recipes::run(global, c),
        Command::Demo(a) => crate::demo::run(a).await,
        Command::Ui(a) => super::ui::run(global, a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    json!({"ok": false, "error": {"code": e.code(), "message": e.to_string()}})
                );
            } else {
                eprintln!("error[{}]: {e}", e.code());
            }
            e.exit_code()
        }
    }
}

/// Whether the command was asked for JSON output (its errors are then JSON too).
fn wants_json(c: &Command) -> bool {
    match c {
        Command::Config(config::ConfigCommand::Validate { json }) => *json,
        Command::Proposals(
            proposals::ProposalsCommand::List { json, .. }
            | proposals::ProposalsCommand::Show { json, .. }
            | proposals::ProposalsCommand::Approve { json, .. }
            | proposals::ProposalsCommand::Reject { json, .. },
        ) => *json,
        Command::Evidence(evidence::EvidenceCommand::Show { json, .. }) => *json,
        Command::Replay(a) => a.json,
        Command::Events(events::EventsCommand::Tail { json, .. }) => *json,
        Command::Events(events::EventsCommand::Webhook(a)) => a.json,
        Command::Store(store::StoreCommand::Stats { json } | store::StoreCommand::Prune { json, .. }) => *json,
        Command::Demo(a) => a.json,
        Command::Up(a) => a.json,
        Command::Tools(tools::ToolsCommand::List { json, .. } | tools::ToolsCommand::Preview { json, .. }) => *json,
        Command::Apply(a) => a.json,
        Command::Doctor(a) => a.json,
        Command::Inspect(a) => a.json,
        Command::Init(a) => a.json,
        Command::Onboard(onboard::OnboardCommand::Db(a)) => a.json,
        Command::Recipes(c) => c.json(),
        _ => false,
    }
}
