//! `up [--dry-run|--serve]`: check config, store, lease, Kubernetes access, databases, tools and
//! the writeback path, then optionally serve Streamable HTTP.

use clap::Args;
use serde_json::{Value, json};
use synapsor_core::capability::Capability;
use synapsor_core::config::{CapabilityKind, ContextSource, Executor, RunnerConfig};
use synapsor_core::context::ProcessEnv;
use synapsor_identity::Verifier;
use synapsor_ledger::StoreLease;

use super::common::{CliError, GlobalArgs, load_config, store_path};
use super::mcp::{HttpArgs, LedgerCalls, ProposalStoreArg, ServeArgs, build_runtime, http_options, serve_http};
use crate::kube_store::KubeProposals;
use crate::mcp::McpServer;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Check only; do not serve.
    #[arg(long, conflicts_with = "serve")]
    pub dry_run: bool,
    /// After the checks pass, serve Streamable HTTP.
    #[arg(long)]
    pub serve: bool,
    #[command(flatten)]
    pub serve_args: ServeArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn writeback_path(cfg: &RunnerConfig, cap: &Capability) -> Value {
    match cfg.executors.get(&cap.executor) {
        Some(Executor::HttpHandler {
            url_env,
            signing_secret_env,
            ..
        }) => json!({
            "executor": cap.executor,
            "path": "app_handler (HTTP)",
            "url_env": url_env,
            "signed": signing_secret_env.is_some(),
            "handler_must": ["verify the signature and timestamp window", "re-check tenant and expected version in its own transaction", "apply at most once per Idempotency-Key", "change only allowed columns"],
        }),
        Some(Executor::CommandHandler { command_env, .. }) => json!({
            "executor": cap.executor,
            "path": "app_handler (command)",
            "command_env": command_env,
            "handler_must": ["re-check tenant and expected version in its own transaction", "apply at most once per idempotency key", "change only allowed columns"],
        }),
        _ => {
            let write_env = cfg.sources.get(&cap.source).and_then(|s| s.write_url_env.clone());
            json!({
                "executor": "sql_update",
                "path": "direct SQL: one guarded UPDATE by primary key, tenant and version, with an idempotency receipt",
                "write_url_env": write_env,
                "needs": "the synapsor_writeback_receipts table (synapsor-runner db init-receipts; check with synapsor-runner doctor)",
            })
        }
    }
}

/// `up`: exit 1 when a check fails.
pub async fn run(global: &GlobalArgs, args: UpArgs) -> Result<i32, CliError> {
    let mut checks: Vec<Value> = Vec::new();
    let mut ok = true;
    let mut check = |name: &str, passed: bool, detail: String, checks: &mut Vec<Value>| {
        ok &= passed;
        checks.push(json!({"check": name, "ok": passed, "detail": detail}));
    };
    let (cfg, warnings) = load_config(&global.config)?;
    check(
        "config",
        true,
        format!("{} is valid ({} warning(s))", global.config.display(), warnings.len()),
        &mut checks,
    );
    let http = if args.serve {
        Some(http_options(&args.http, &cfg, &global.config)?)
    } else {
        None
    };
    let store = store_path(global);
    match StoreLease::check_free(&store) {
        Ok(()) => check(
            "lease",
            true,
            format!("no server holds {}", store.display()),
            &mut checks,
        ),
        Err(e) => check("lease", false, e.to_string(), &mut checks),
    }
    let (runtime, store) = build_runtime(global, &args.serve_args, LedgerCalls::Pooled).await?;
    check(
        "store",
        true,
        format!("ledger at {} is open", store.display()),
        &mut checks,
    );
    if args.serve_args.proposal_store == ProposalStoreArg::Kubernetes {
        let (passed, detail) = match KubeProposals::connect(args.serve_args.kube_namespace.clone(), 0).await {
            Ok(kube) => kube.check_access().await,
            Err(e) => (false, e.to_string()),
        };
        check("kubernetes", passed, detail, &mut checks);
    }
    let source = synapsor_core::config::context_source(&cfg);
    check(
        "transport",
        !matches!(source, ContextSource::Mixed { .. }),
        source.transports(),
        &mut checks,
    );
    if let Some(identity) = &cfg.identity {
        let base = global.config.parent().unwrap_or(std::path::Path::new("."));
        let (passed, detail) = match Verifier::new(identity, &ProcessEnv, base) {
            Ok(v) => match v.check_keys().await {
                Ok(d) => (
                    true,
                    format!("tokens from {} for {}: {d}", identity.issuer, identity.audience),
                ),
                Err(e) => (false, e),
            },
            Err(e) => (false, e.to_string()),
        };
        check("identity", passed, detail, &mut checks);
    }
    for name in cfg.sources.keys() {
        if let Some(src) = runtime.source(name) {
            match src.ping().await {
                Ok(()) => check(
                    &format!("source {name}"),
                    true,
                    "reachable with the read role".into(),
                    &mut checks,
                ),
                Err(e) => check(
                    &format!("source {name}"),
                    false,
                    format!("{}: {}", e.code, e.message),
                    &mut checks,
                ),
            }
        }
    }
    let server = McpServer::new(runtime.clone(), args.serve_args.alias_mode.into());
    let tools: Vec<String> = server.tools().iter().map(|t| t.name.to_string()).collect();
    check(
        "tools",
        !tools.is_empty(),
        format!("{} tool(s) exposed", tools.len()),
        &mut checks,
    );
    let writeback: Vec<Value> = runtime
        .exposed()
        .filter(|c| c.kind == CapabilityKind::Proposal)
        .map(|c| json!({"capability": c.name, "writeback": writeback_path(&cfg, c)}))
        .collect();
    let config_arg = global.config.display().to_string();
    // The serve command repeats the choices these checks were made with.
    let mut serve = format!("synapsor-runner --config {config_arg} mcp serve-streamable-http");
    let review = if args.serve_args.proposal_store == ProposalStoreArg::Kubernetes {
        serve.push_str(" --proposal-store kubernetes");
        if let Some(ns) = &args.serve_args.kube_namespace {
            serve.push_str(&format!(" --kube-namespace {ns}"));
        }
        "kubectl get proposals".to_owned()
    } else {
        "synapsor-runner proposals list".to_owned()
    };
    let next = vec![
        format!("synapsor-runner --config {config_arg} tools preview"),
        format!("synapsor-runner --config {config_arg} mcp client-config --client claude-desktop"),
        serve,
        review,
    ];
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json!({"ok": ok, "checks": checks, "tools": tools, "writeback": writeback, "warnings": warnings, "next": next})).unwrap_or_default());
    } else {
        for c in &checks {
            outln!(
                "[{}] {:<20} {}",
                if c["ok"] == true { " ok " } else { "FAIL" },
                c["check"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or("")
            );
        }
        for w in &warnings {
            outln!("[warn] {:<20} {} ({})", w.code, w.message, w.path);
        }
        outln!("\nTools: {}", tools.join(", "));
        for w in &writeback {
            outln!(
                "Writeback for {}: {}",
                w["capability"].as_str().unwrap_or(""),
                w["writeback"]["path"].as_str().unwrap_or("")
            );
            if let Some(must) = w["writeback"]["handler_must"].as_array() {
                for m in must {
                    outln!("  the handler must {}", m.as_str().unwrap_or(""));
                }
            }
        }
        outln!("\nNext:");
        for n in &next {
            outln!("  {n}");
        }
    }
    if !ok {
        return Ok(1);
    }
    match http {
        Some(opts) if !args.dry_run => {
            drop(server);
            serve_http(runtime, &args.serve_args, opts, &store).await
        }
        _ => Ok(0),
    }
}
