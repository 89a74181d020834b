//! `doctor [--json]`: redacted checks of the config, the ledger, each source's read and write
//! roles, the receipts table and the handlers' environment. Probes never look like a writeback:
//! the receipts-table probe rolls back and a handler is only reached with a TCP connect.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use synapsor_core::capability::{self, Capability};
use synapsor_core::config::{self, Engine, Mode, RunnerConfig, Source};
use synapsor_core::context::{Env, ProcessEnv};
use synapsor_executor::url::{redact_url, url_user};
use synapsor_executor::{WriterSettings, check_receipts, write_targets};

use super::common::{CliError, GlobalArgs, load_config, print_json, store_path};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Level {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, serde::Serialize)]
struct Item {
    status: Level,
    check: String,
    message: String,
}

#[derive(Default)]
struct Items(Vec<Item>);

impl Items {
    fn push(&mut self, status: Level, check: impl Into<String>, message: impl Into<String>) {
        self.0.push(Item {
            status,
            check: check.into(),
            message: message.into(),
        });
    }
}

fn ledger_check(path: &Path, items: &mut Items) {
    let shown = path.display();
    if path.exists() {
        match std::fs::OpenOptions::new().append(true).open(path) {
            Ok(_) => items.push(Level::Ok, "ledger", format!("{shown} exists and is writable")),
            Err(e) => items.push(Level::Fail, "ledger", format!("{shown} is not writable ({})", e.kind())),
        }
        return;
    }
    let mut dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    while !dir.as_os_str().is_empty() && !dir.exists() {
        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let dir = if dir.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        dir
    };
    let probe = dir.join(format!(".synapsor-doctor-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            items.push(
                Level::Ok,
                "ledger",
                format!(
                    "{shown} does not exist yet; it will be created ({} is writable)",
                    dir.display()
                ),
            );
        }
        Err(e) => items.push(
            Level::Fail,
            "ledger",
            format!(
                "{shown} cannot be created: {} is not writable ({})",
                dir.display(),
                e.kind()
            ),
        ),
    }
}
async fn source_checks(cfg: &RunnerConfig, caps: &[Capability], name: &str, src: &Source, items: &mut Items) {
    let check = format!("source {name}");
    let read_url = ProcessEnv.var(&src.read_url_env);
    match &read_url {
        None => items.push(
            Level::Fail,
            &check,
            format!("read URL: environment variable {} is not set", src.read_url_env),
        ),
        Some(url) => {
            items.push(
                Level::Ok,
                &check,
                format!("read URL from {}: {}", src.read_url_env, redact_url(url)),
            );
            match synapsor_source::open_source(name, src, &ProcessEnv) {
                Err(e) => items.push(Level::Fail, &check, format!("read role: {}: {}", e.code, e.message)),
                Ok(db) => match tokio::time::timeout(Duration::from_secs(10), db.ping()).await {
                    Ok(Ok(())) => items.push(Level::Ok, &check, "reachable with the read URL"),
                    Ok(Err(e)) => items.push(Level::Fail, &check, format!("not reachable: {}: {}", e.code, e.message)),
                    Err(_) => items.push(Level::Fail, &check, "not reachable: timed out after 10 s"),
                },
            }
        }
    }

    let targets = write_targets(cfg, caps, name);
    if src.read_only {
        items.push(
            Level::Ok,
            &check,
            "marked read_only: never written by direct SQL writeback",
        );
        return;
    }
    let needs_writer = !targets.is_empty();
    let Some(write_env) = src.write_url_env.as_deref() else {
        if needs_writer {
            items.push(
                Level::Fail,
                &check,
                "sql_update capabilities use this source but it has no write_url_env",
            );
        } else {
            items.push(
                Level::Skip,
                &check,
                "no write_url_env (no sql_update capabilities use this source)",
            );
        }
        return;
    };
    let Some(write_url) = ProcessEnv.var(write_env) else {
        items.push(
            if needs_writer { Level::Fail } else { Level::Warn },
            &check,
            format!(
                "write URL: environment variable {write_env} is not set (apply fails with WRITER_CREDENTIAL_MISSING)"
            ),
        );
        return;
    };
    items.push(
        Level::Ok,
        &check,
        format!("write URL from {write_env}: {}", redact_url(&write_url)),
    );
    if src.engine != Engine::Sqlite
        && let (Some(r), Some(w)) = (read_url.as_deref().and_then(url_user), url_user(&write_url))
        && r == w
    {
        items.push(
            Level::Warn,
            &check,
            format!(
                "the read and write URLs use the same user {r:?}: give tool reads a SELECT-only role and the writer its own role"
            ),
        );
    }
    if !needs_writer {
        items.push(
            Level::Skip,
            &check,
            "receipts table: no sql_update capabilities use this source",
        );
        return;
    }
    let settings = WriterSettings::for_source(src);
    for schema in targets.keys() {
        match check_receipts(src.engine, &write_url, schema, &settings).await {
            Ok(c) if !c.present => items.push(
                Level::Fail,
                &check,
                format!(
                    "receipts table {} is missing (or invisible to the writer): run `synapsor-runner db init-receipts --source {name}` as an admin",
                    c.table
                ),
            ),
            Ok(c) if c.writable == Some(true) => items.push(
                Level::Ok,
                &check,
                format!("receipts table {} present; the writer can insert and update (probe rolled back)", c.table),
            ),
            Ok(c) => items.push(
                Level::Fail,
                &check,
                format!(
                    "receipts table {} present but the writer cannot insert and update it: grant SELECT, INSERT, UPDATE (see `synapsor-runner db init-receipts --source {name} --print`)",
                    c.table
                ),
            ),
            Err(e) => items.push(
                Level::Fail,
                &check,
                format!("receipts table in {schema}: {}: {e}", e.code()),
            ),
        }
    }
}

fn executor_checks(cfg: &RunnerConfig, items: &mut Items) {
    let env_item = |items: &mut Items, check: &str, what: &str, var: &str, required: bool| {
        if ProcessEnv.var(var).is_some() {
            items.push(Level::Ok, check, format!("{what}: {var} is set"));
        } else {
            items.push(
                if required { Level::Fail } else { Level::Warn },
                check,
                format!("{what}: environment variable {var} is not set"),
            );
        }
    };
    for (name, ex) in &cfg.executors {
        let check = format!("executor {name}");
        match ex {
            config::Executor::SqlUpdate {} => items.push(Level::Ok, &check, "sql_update (uses the source's writer)"),
            config::Executor::HttpHandler {
                url_env,
                auth,
                signing_secret_env,
                ..
            } => {
                env_item(items, &check, "handler URL", url_env, true);
                if let Some(url) = ProcessEnv.var(url_env) {
                    handler_reachable(items, &check, &url);
                }
                match signing_secret_env {
                    Some(v) => env_item(items, &check, "signing secret", v, true),
                    None => items.push(
                        Level::Warn,
                        &check,
                        "no signing_secret_env: requests to the handler are not signed",
                    ),
                }
                if let Some(config::ExecutorAuth::BearerEnv { token_env }) = auth {
                    env_item(items, &check, "bearer token", token_env, true);
                }
            }
            config::Executor::CommandHandler { command_env, .. } => {
                env_item(items, &check, "handler command", command_env, true);
                if let Some(program) = ProcessEnv
                    .var(command_env)
                    .and_then(|c| c.split_whitespace().next().map(str::to_owned))
                {
                    if program_exists(&program) {
                        items.push(Level::Ok, &check, format!("handler program {program} found"));
                    } else {
                        items.push(Level::Fail, &check, format!("handler program {program} not found"));
                    }
                }
            }
        }
    }
}

/// Whether the handler's host accepts a TCP connection (no request is sent: a probe must
/// never look like a writeback). Only scheme, host and port are printed.
fn handler_reachable(items: &mut Items, check: &str, url: &str) {
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(parsed) = reqwest::Url::parse(url) else {
        items.push(Level::Fail, check, "handler URL is not a valid URL");
        return;
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        items.push(Level::Fail, check, "handler URL has no host");
        return;
    };
    let shown = format!("{}://{host}:{port}", parsed.scheme());
    let reachable = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if reachable {
        items.push(Level::Ok, check, format!("handler reachable at {shown}"));
    } else {
        items.push(Level::Fail, check, format!("handler not reachable at {shown}"));
    }
}

fn program_exists(program: &str) -> bool {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// One doctor finding: `status` is ok, warn, fail or skip.
pub type Finding = serde_json::Value;

/// Every doctor check of the config in `global`, as `{status, check, message}` objects
/// (`onboard db` runs them after writing a config).
pub async fn findings(global: &GlobalArgs) -> Vec<Finding> {
    collect(global)
        .await
        .0
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect()
}

async fn collect(global: &GlobalArgs) -> Items {
    let mut items = Items::default();
    let cfg = match load_config(&global.config) {
        Ok((cfg, warnings)) => {
            items.push(
                Level::Ok,
                "config",
                format!(
                    "{} is valid (mode {}, {} source(s), {} capability(ies), {} warning(s))",
                    global.config.display(),
                    cfg.mode.as_str(),
                    cfg.sources.len(),
                    cfg.capabilities.len(),
                    warnings.len()
                ),
            );
            Some(cfg)
        }
        Err(e) => {
            items.push(Level::Fail, "config", format!("{}: {e}", e.code()));
            None
        }
    };
    ledger_check(&store_path(global), &mut items);
    if let Some(cfg) = &cfg {
        if cfg.mode != Mode::Review {
            items.push(
                Level::Warn,
                "mode",
                format!(
                    "mode {}: apply is disabled (only review mode applies proposals)",
                    cfg.mode.as_str()
                ),
            );
        }
        match capability::compile(cfg) {
            Err(e) => items.push(Level::Fail, "capabilities", format!("{}: {}", e.code, e.message)),
            Ok(caps) => {
                for (name, src) in &cfg.sources {
                    source_checks(cfg, &caps, name, src, &mut items).await;
                }
            }
        }
        executor_checks(cfg, &mut items);
    }
    items
}

/// `doctor [--json]`: exit 1 when a check fails.
pub async fn run(global: &GlobalArgs, args: DoctorArgs) -> Result<i32, CliError> {
    let items = collect(global).await;
    let failures = items.0.iter().filter(|i| i.status == Level::Fail).count();
    let warnings = items.0.iter().filter(|i| i.status == Level::Warn).count();
    if args.json {
        print_json(&json!({
            "ok": failures == 0,
            "failures": failures,
            "warnings": warnings,
            "checks": items.0,
        }));
    } else {
        println!("Synapsor Runner doctor (URLs and secrets are redacted)");
        for i in &items.0 {
            let tag = match i.status {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
                Level::Skip => "skip",
            };
            println!("  {tag}  {:<22} {}", i.check, i.message);
        }
        println!("{failures} failure(s), {warnings} warning(s)");
    }
    Ok(if failures == 0 { 0 } else { 1 })
}
