//! Command implementations. Each returns an exit code; errors print `error[CODE]: message`
//! (or a JSON error with `--json`) and exit 1.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use synapsor_core::ProposalState;
use synapsor_core::config::{self, ValidationReport};
use synapsor_core::time::{format_rfc3339_ms, parse_duration_ms};
use synapsor_ledger::{LedgerError, LedgerStore, ProposalFilter, StoreLease};

use super::mcp_cmds;
use super::output;
use super::writeback;
use super::{Cli, Command, ConfigCommand, EventsCommand, EvidenceCommand, GlobalArgs, ProposalsCommand, StoreCommand};
use synapsor_core::context::{Clock, SystemClock};

/// A command failure with a stable code.
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
}

impl CliError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CliError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<LedgerError> for CliError {
    fn from(e: LedgerError) -> Self {
        CliError::new(e.code(), e.to_string())
    }
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let json = wants_json(&cli.command);
    let result = match cli.command {
        Command::Config(c) => config_cmd(&cli.global, c),
        Command::Mcp(c) => mcp_cmds::mcp(&cli.global, c).await,
        Command::Up(a) => mcp_cmds::up(&cli.global, a).await,
        Command::Tools(c) => mcp_cmds::tools(&cli.global, c),
        Command::Smoke(c) => mcp_cmds::smoke(&cli.global, c).await,
        Command::Proposals(c) => proposals_cmd(&cli.global, c),
        Command::Evidence(EvidenceCommand::Show { id, json }) => evidence_show(&cli.global, &id, json),
        Command::Replay(a) => replay_cmd(&cli.global, &a.proposal, a.json),
        Command::Events(EventsCommand::Tail {
            follow,
            kind,
            since,
            limit,
            interval_ms,
            json,
        }) => events_tail(&cli.global, follow, kind.as_deref(), since, limit, interval_ms, json).await,
        Command::Events(EventsCommand::Webhook(a)) => writeback::events_webhook(&cli.global, a).await,
        Command::Store(c) => store_cmd(&cli.global, c),
        Command::Apply(a) => writeback::apply(&cli.global, a).await,
        Command::Doctor(a) => writeback::doctor(&cli.global, a).await,
        Command::Db(c) => writeback::db(&cli.global, c).await,
        Command::Handler(c) => writeback::handler(&cli.global, c).await,
        Command::Demo(a) => crate::demo::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    json!({"ok": false, "error": {"code": e.code, "message": e.message}})
                );
            } else {
                eprintln!("error[{}]: {}", e.code, e.message);
            }
            1
        }
    }
}

fn wants_json(c: &Command) -> bool {
    match c {
        Command::Config(ConfigCommand::Validate { json }) => *json,
        Command::Proposals(
            ProposalsCommand::List { json, .. }
            | ProposalsCommand::Show { json, .. }
            | ProposalsCommand::Approve { json, .. }
            | ProposalsCommand::Reject { json, .. },
        ) => *json,
        Command::Evidence(EvidenceCommand::Show { json, .. }) => *json,
        Command::Replay(a) => a.json,
        Command::Events(EventsCommand::Tail { json, .. }) => *json,
        Command::Store(StoreCommand::Stats { json } | StoreCommand::Prune { json, .. }) => *json,
        Command::Demo(a) => a.json,
        Command::Up(a) => a.json,
        Command::Tools(
            super::mcp_cmds::ToolsCommand::List { json, .. } | super::mcp_cmds::ToolsCommand::Preview { json, .. },
        ) => *json,
        Command::Apply(a) => a.json,
        Command::Doctor(a) => a.json,
        Command::Events(EventsCommand::Webhook(a)) => a.json,
        _ => false,
    }
}

fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// Reads and validates the config file.
pub fn load_config(path: &Path) -> Result<(config::RunnerConfig, Vec<config::ConfigIssue>), CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::new(
            "CONFIG_NOT_FOUND",
            format!("cannot read config {}: {e}", path.display()),
        )
    })?;
    config::parse_config(&text).map_err(|report| {
        let first = report
            .errors
            .first()
            .map(|i| format!("{} at {}: {}", i.code, i.path, i.message))
            .unwrap_or_default();
        CliError::new(
            "CONFIG_INVALID",
            format!(
                "{} has {} error(s); first: {first}. Run `synapsor-runner config validate` for all of them",
                path.display(),
                report.errors.len()
            ),
        )
    })
}

/// The ledger path: --store, else the config's storage.sqlite_path, else ./.synapsor/local.db.
pub fn store_path(global: &GlobalArgs) -> PathBuf {
    if let Some(p) = &global.store {
        return p.clone();
    }
    if let Ok(text) = std::fs::read_to_string(&global.config)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(p) = v.pointer("/storage/sqlite_path").and_then(Value::as_str)
    {
        return PathBuf::from(p);
    }
    PathBuf::from(".synapsor/local.db")
}

fn open_store(global: &GlobalArgs) -> Result<LedgerStore, CliError> {
    Ok(LedgerStore::open_existing(store_path(global))?)
}

fn config_cmd(global: &GlobalArgs, c: ConfigCommand) -> Result<i32, CliError> {
    match c {
        ConfigCommand::Schema => {
            print_json(&config::schema::runner_config_schema());
            Ok(0)
        }
        ConfigCommand::Validate { json } => {
            let path = &global.config;
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::new(
                    "CONFIG_NOT_FOUND",
                    format!("cannot read config {}: {e}", path.display()),
                )
            })?;
            let report = match config::parse_config(&text) {
                Ok((_, warnings)) => ValidationReport {
                    errors: vec![],
                    warnings,
                },
                Err(report) => report,
            };
            let valid = report.errors.is_empty();
            if json {
                print_json(&json!({
                    "ok": valid,
                    "config": path.display().to_string(),
                    "errors": report.errors,
                    "warnings": report.warnings,
                }));
            } else {
                for i in &report.errors {
                    outln!("error   {:<40} {}\n        {}", i.code, i.path, i.message);
                }
                for i in &report.warnings {
                    outln!("warning {:<40} {}\n        {}", i.code, i.path, i.message);
                }
                outln!(
                    "{}: {} ({} error(s), {} warning(s))",
                    path.display(),
                    if valid { "valid" } else { "invalid" },
                    report.errors.len(),
                    report.warnings.len()
                );
            }
            Ok(if valid { 0 } else { 1 })
        }
    }
}

fn default_actor(actor: Option<String>) -> String {
    actor
        .filter(|a| !a.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "local_operator".into())
}

/// Local approve, reject and apply refuse a proposal published to Kubernetes (the ledger row is a
/// mirror), before any prompt, saying how to decide it there.
pub fn refuse_managed(rec: &synapsor_ledger::ProposalRecord) -> Result<(), CliError> {
    let Some(by) = &rec.managed_by else { return Ok(()) };
    let id = &rec.change_set.proposal_id;
    let hint = match by.strip_prefix("kubernetes:").and_then(|r| r.split_once("/Proposal/")) {
        Some((ns, name)) => format!(
            "; decide it with `kubectl -n {ns} annotate proposal/{name} runner.synapsor.ai/approve=true` (or runner.synapsor.ai/reject=<reason>); synapsor-controller applies it"
        ),
        None => String::new(),
    };
    Err(CliError::new(
        "PROPOSAL_MANAGED_EXTERNALLY",
        format!("{id} is managed by {by}, not by this ledger{hint}"),
    ))
}

fn confirm(prompt: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            "CONFIRMATION_REQUIRED",
            "no terminal to confirm on: pass --yes",
        ));
    }
    eprint!("{prompt} Type yes to continue: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::new("CONFIRMATION_REQUIRED", e.to_string()))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new("ABORTED", "not confirmed; nothing changed"))
    }
}

fn proposals_cmd(global: &GlobalArgs, c: ProposalsCommand) -> Result<i32, CliError> {
    let now = SystemClock.now_rfc3339();
    match c {
        ProposalsCommand::List {
            state,
            tenant,
            capability,
            limit,
            json,
        } => {
            let state = state
                .map(|s| {
                    ProposalState::parse(&s).ok_or_else(|| {
                        let all: Vec<&str> = ProposalState::ALL.iter().map(|s| s.as_str()).collect();
                        CliError::new(
                            "INVALID_STATE",
                            format!("unknown state {s:?}; one of {}", all.join(", ")),
                        )
                    })
                })
                .transpose()?;
            let store = open_store(global)?;
            let rows = store.list_proposals(&ProposalFilter {
                state,
                tenant_id: tenant,
                capability,
                limit: Some(limit),
            })?;
            if json {
                print_json(&json!({"ok": true, "proposals": rows}));
            } else {
                out!("{}", output::proposal_table(&rows));
            }
            Ok(0)
        }
        ProposalsCommand::Show { id, json } => {
            let store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            if json {
                print_json(&json!({"ok": true, "proposal": p, "diff": p.change_set.diff()}));
            } else {
                out!("{}", output::proposal_detail(&p));
            }
            Ok(0)
        }
        ProposalsCommand::Approve {
            id,
            digest,
            actor,
            reason,
            yes,
            json,
        } => {
            let mut store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            refuse_managed(&p)?;
            let digest = match digest {
                Some(d) => d,
                None => {
                    if !json {
                        eprint!("{}", output::proposal_detail(&p));
                    }
                    confirm(
                        &format!(
                            "Approve {} with digest {}?",
                            p.change_set.proposal_id, p.change_set.digest
                        ),
                        yes,
                    )?;
                    p.change_set.digest.clone()
                }
            };
            let actor = default_actor(actor);
            let updated = store.approve(&p.change_set.proposal_id, &digest, &actor, reason.as_deref(), &now)?;
            let approvals = updated.approvals.iter().filter(|a| a.decision == "approved").count();
            if json {
                print_json(
                    &json!({"ok": true, "proposal_id": updated.change_set.proposal_id, "state": updated.state, "approved_by": actor, "digest": digest, "approvals": approvals, "required_approvals": updated.change_set.approval.required_approvals}),
                );
            } else {
                outln!(
                    "Approved {} as {actor} (digest {digest}); state {} ({approvals} of {} approvals).",
                    updated.change_set.proposal_id,
                    updated.state.as_str(),
                    updated.change_set.approval.required_approvals
                );
                if updated.state == ProposalState::Approved {
                    outln!(
                        "Nothing is written until `synapsor-runner apply {}` runs it through the reviewed executor.",
                        updated.change_set.proposal_id
                    );
                }
            }
            Ok(0)
        }
        ProposalsCommand::Reject {
            id,
            reason,
            actor,
            yes,
            json,
        } => {
            let mut store = open_store(global)?;
            let p = store.get_proposal(&id)?;
            refuse_managed(&p)?;
            confirm(&format!("Reject {}?", p.change_set.proposal_id), yes)?;
            let actor = default_actor(actor);
            let updated = store.reject(&p.change_set.proposal_id, &actor, &reason, &now)?;
            if json {
                print_json(
                    &json!({"ok": true, "proposal_id": updated.change_set.proposal_id, "state": updated.state, "rejected_by": actor}),
                );
            } else {
                outln!("Rejected {} as {actor}: {reason}", updated.change_set.proposal_id);
            }
            Ok(0)
        }
    }
}

fn evidence_show(global: &GlobalArgs, id: &str, json: bool) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let b = store.evidence(id)?;
    if json {
        print_json(&json!({"ok": true, "evidence": b}));
    } else {
        out!("{}", output::evidence_detail(&b));
    }
    Ok(0)
}

fn replay_cmd(global: &GlobalArgs, id: &str, json: bool) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let r = store.replay(id)?;
    if json {
        print_json(&json!({"ok": true, "replay": r}));
    } else {
        out!("{}", output::replay_detail(&r));
    }
    Ok(0)
}

async fn events_tail(
    global: &GlobalArgs,
    follow: bool,
    kind: Option<&str>,
    since: i64,
    limit: u32,
    interval_ms: u64,
    json: bool,
) -> Result<i32, CliError> {
    let store = open_store(global)?;
    // Without --since, show the newest `limit` events, then follow from there.
    let mut cursor = if since == 0 {
        (store.last_event_id()? - i64::from(limit)).max(0)
    } else {
        since
    };
    let mut out = std::io::stdout();
    loop {
        let batch = store.events_after(cursor, kind, 500)?;
        for e in &batch {
            let line = if json {
                serde_json::to_string(e).unwrap_or_default()
            } else {
                output::event_line(e)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // stdout closed (e.g. piped into head)
            }
            cursor = cursor.max(e.event_id);
        }
        let _ = out.flush();
        if !follow {
            return Ok(0);
        }
        if batch.len() < 500 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    }
}

fn store_cmd(global: &GlobalArgs, c: StoreCommand) -> Result<i32, CliError> {
    let path = store_path(global);
    match c {
        StoreCommand::Stats { json } => {
            let s = LedgerStore::open_existing(&path)?.stats()?;
            if json {
                print_json(&json!({"ok": true, "stats": s}));
            } else {
                outln!("Store {}", s.path);
                outln!("  schema version     {}", s.schema_version);
                outln!("  proposals          {}", s.proposals);
                for (state, n) in &s.proposals_by_state {
                    outln!("    {state:<16} {n}");
                }
                outln!("  proposal events    {}", s.proposal_events);
                outln!("  approvals          {}", s.approvals);
                outln!("  evidence bundles   {}", s.evidence_bundles);
                outln!("  query audit rows   {}", s.query_audit);
                outln!("  receipts           {}", s.receipts);
                outln!(
                    "  size               {} bytes ({} pages of {})",
                    s.approx_bytes,
                    s.page_count,
                    s.page_size
                );
            }
            Ok(0)
        }
        StoreCommand::Vacuum => {
            StoreLease::check_free(&path)?;
            LedgerStore::open_existing(&path)?.vacuum()?;
            outln!("Vacuumed {}.", path.display());
            Ok(0)
        }
        StoreCommand::Prune {
            older_than,
            dry_run: _,
            yes,
            json,
        } => {
            let ms = parse_duration_ms(&older_than).ok_or_else(|| {
                CliError::new(
                    "INVALID_DURATION",
                    format!("--older-than {older_than:?}: use a number and a unit, e.g. 30d, 12h, 15m"),
                )
            })?;
            if yes {
                StoreLease::check_free(&path)?;
            }
            let cutoff = format_rfc3339_ms(SystemClock.now_ms() - ms);
            let report = LedgerStore::open_existing(&path)?.prune(&cutoff, !yes)?;
            if json {
                print_json(&json!({"ok": true, "prune": report}));
            } else {
                outln!(
                    "{} decided proposals created before {cutoff}: {} proposals, {} events, {} approvals, {} evidence bundles, {} query audit rows, {} receipts.",
                    if yes { "Deleted" } else { "Would delete" },
                    report.proposals,
                    report.proposal_events,
                    report.approvals,
                    report.evidence_bundles,
                    report.query_audit,
                    report.receipts
                );
                if !yes {
                    outln!("Dry run: nothing deleted. Pass --yes to delete.");
                }
            }
            Ok(0)
        }
        StoreCommand::Reset { yes } => {
            if !yes {
                return Err(CliError::new(
                    "CONFIRMATION_REQUIRED",
                    "store reset deletes the whole ledger: pass --yes",
                ));
            }
            synapsor_ledger::reset(&path)?;
            outln!(
                "Deleted the ledger at {}. The source database was not changed.",
                path.display()
            );
            Ok(0)
        }
    }
}
