//! `synapsor-bench`: one run that measures Synapsor Runner against PostgreSQL.
//!
//! Phases, in order, all on one fresh database with a SELECT-only role:
//!
//! 1. the direct parameterized SELECT (sqlx on one dedicated connection, the baseline of the
//!    targets; then one connection per client; and, for comparison, through sqlx's `Pool` with
//!    its default options, which pings the connection on every checkout and return);
//! 2. the read tool over stdio (an rmcp client spawning the release binary; the concurrent phase
//!    spawns one server per client, as stdio clients do, each with its own ledger because a
//!    ledger is leased to one server);
//! 3. the read tool over Streamable HTTP (one server, one session per client), with sessions and
//!    `--stateless`, at `--concurrency` and `--high-concurrency` clients;
//! 4. the proposal tool over stdio, on distinct rows (a new proposal per call) and on one row
//!    (every call deduplicates onto the open proposal);
//! 5. RSS from `/proc/<pid>/status`: `VmRSS` after startup and a few calls, `VmHWM` after the
//!    concurrent phase;
//! 6. cold start from spawn to the `initialize` response, with an empty ledger, a brand-new
//!    store, and a pre-filled ledger (see [`ledger_fill`]);
//! 7. with `--compare CMD`, the stdio phases again against another MCP server serving the same
//!    two tools, side by side;
//! 8. with `--controller-report FILE`, the controller's figures measured on the real API server
//!    (the `throughput` test of `synapsor-controller`, which `scripts/bench.sh` runs).
//!
//! It is a benchmark, not a test: targets are reported as PASS/MISS and never fail the run.
//! The client, the server and PostgreSQL share the machine, so absolute numbers include their
//! contention; ratios against the direct SELECT are what the targets compare.

pub mod cli;
mod db;
mod ledger_fill;
mod report;
mod runner;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgExecutor, Row, ValueRef};
use synapsor_core::context::{Clock, SystemClock};
use tokio::sync::{Barrier, Mutex};

use crate::cli::{Args, Settings};
use crate::db::{BenchDb, TENANT, VISIBLE_COLUMNS};
use crate::report::Check;
use crate::runner::{Client, Launcher, Outcome, Server, TOKEN_ENV, call};
use crate::stats::{Run, Summary, median_ms, run_calls};

const READ_TOOL: &str = "billing.inspect_invoice";
const PROPOSAL_TOOL: &str = "billing.propose_late_fee_waiver";
const ARG: &str = "invoice_id";
/// The direct baseline: the same row and columns the read tool returns.
const DIRECT_SQL: &str = "SELECT id, customer_name, amount_cents, late_fee_cents, status, updated_at \
                          FROM invoices WHERE id = $1 AND tenant_id = $2";
/// Calls made before the idle RSS reading.
const IDLE_CALLS: usize = 5;

/// Targets. A read's floor is what no MCP server can beat: the direct SELECT on an open
/// connection plus the MCP `ping` over the same transport, both measured in the same run.
const READ_OVER_FLOOR_MAX: f64 = 1.5;
const HTTP_PING_OVER_STDIO_PING_MAX: f64 = 2.0;
/// Calls/s of the concurrent HTTP sessions as a share of the concurrent direct SELECT's.
const HTTP_CONCURRENT_SHARE_MIN: f64 = 0.4;
/// "32 sessions no worse than 8": calls/s at `--high-concurrency` over calls/s at
/// `--concurrency`. 0.9, not 1.0: once the 2 cores are saturated both phases measure the same
/// ceiling, and single runs of the same phase differ by up to 10% (see docs/benchmarks.md).
const HIGH_CONCURRENCY_KEEP_MIN: f64 = 0.9;
/// A proposal's floor is the read's: both are one SELECT on a pooled connection plus the ping.
const PROPOSAL_OVER_FLOOR_MAX: f64 = 1.5;
/// The controller: 1,000 approvals at once drained within 30 s.
const DRAIN_APPROVALS: u64 = 1000;
const DRAIN_SECONDS_MAX: f64 = 30.0;
const IDLE_RSS_MAX_MIB: f64 = 15.0;
const COLD_START_MAX_MS: f64 = 30.0;
/// "Not growing with ledger size": the pre-filled median within 20% (or 2 ms) of the empty one.
const COLD_GROWTH_RATIO: f64 = 1.2;
const COLD_GROWTH_SLACK_MS: f64 = 2.0;

struct Ctx {
    s: Settings,
    db: BenchDb,
    ids: Arc<Vec<String>>,
    launcher: Launcher,
    token: String,
    work: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let s = Settings::resolve(args)?;
    let work = s.out_dir.join("run");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(work.join("logs"))?;
    let runner_version = command_output(&s.runner, &["--version"])?;
    eprintln!(
        "==> {} ({}), {} iterations, {} concurrent clients{}",
        s.runner.display(),
        runner_version.trim(),
        s.iterations,
        s.concurrency,
        if s.quick { ", quick" } else { "" }
    );
    eprintln!("==> creating the benchmark database ({} invoices, 4 tenants)", s.rows);
    let db = BenchDb::create(&s.pg_url, s.rows).await?;
    let result = measure(&s, &db, &work, runner_version.trim()).await;
    if s.keep_db {
        eprintln!("==> keeping database {} and role {}", db.name, db.role);
    } else if let Err(e) = db.drop_all().await {
        eprintln!("warning: could not drop database {}: {e:#}", db.name);
    }
    let (report, text) = result?;
    print!("{text}");
    let path = s.out_dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nJSON report: {}", path.display());
    Ok(())
}

fn command_output(bin: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}{}",
            bin.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn config_doc() -> Value {
    let target = json!({"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "sources": {"main": {"engine": "postgres", "read_url_env": "BENCH_READ_URL", "statement_timeout_ms": 5000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": READ_TOOL, "kind": "read", "source": "main",
                "description": "Read one invoice of the current account.",
                "target": target,
                "args": {ARG: {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": ARG},
                "visible_columns": VISIBLE_COLUMNS
            },
            {
                "name": PROPOSAL_TOOL, "kind": "proposal", "source": "main",
                "description": "Propose waiving the late fee of one invoice.",
                "target": target,
                "args": {ARG: {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": ARG},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"fixed": 0}},
                "allowed_columns": ["late_fee_cents"],
                "conflict_guard": {"column": "updated_at"}
            }
        ]
    })
}

/// Writes the config and an env file (for reproducing a run by hand), checks the config with the
/// runner itself, and returns the launcher.
fn setup(s: &Settings, db: &BenchDb, work: &Path) -> anyhow::Result<(Launcher, String)> {
    let config = work.join("synapsor.runner.json");
    std::fs::write(&config, serde_json::to_string_pretty(&config_doc())? + "\n")?;
    let token = format!("bench-{:x}-{:x}", SystemClock.now_ms(), std::process::id());
    let env: Vec<(String, String)> = vec![
        ("BENCH_READ_URL".into(), db.read_url.clone()),
        ("SYNAPSOR_TENANT_ID".into(), TENANT.into()),
        ("SYNAPSOR_PRINCIPAL".into(), "agent.bench".into()),
        ("SYNAPSOR_LOG".into(), "warn".into()),
        (TOKEN_ENV.into(), token.clone()),
    ];
    let env_text: String = env.iter().map(|(k, v)| format!("export {k}='{v}'\n")).collect();
    write_private(&work.join("bench.env"), &env_text)?;
    command_output(
        &s.runner,
        &["--config", &config.display().to_string(), "config", "validate"],
    )
    .context("the benchmark config is not valid for this runner")?;
    Ok((
        Launcher {
            server: Server::Runner(s.runner.clone()),
            config,
            env,
            log_dir: work.join("logs"),
        },
        token,
    ))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

async fn measure(s: &Settings, db: &BenchDb, work: &Path, runner_version: &str) -> anyhow::Result<(Value, String)> {
    let (launcher, token) = setup(s, db, work)?;
    let load_start = report::loadavg();
    let ctx = Ctx {
        s: s.clone(),
        db: db.clone(),
        ids: Arc::new(db.tenant_ids.clone()),
        launcher,
        token,
        work: work.to_path_buf(),
    };
    let mut latency: Vec<Summary> = Vec::new();

    eprintln!("==> direct SELECT");
    let (direct_seq, direct_pooled, direct_conc) = direct(&ctx).await?;
    latency.extend([direct_seq.clone(), direct_pooled.clone(), direct_conc.clone()]);

    eprintln!("==> read tool over stdio");
    let stdio = stdio_reads(&ctx, &ctx.launcher, false).await?;
    latency.extend([stdio.seq.clone(), stdio.ping.clone()]);
    latency.extend(stdio.layers.iter().cloned());
    latency.push(stdio.conc.clone());
    // What the runner itself measured around its SELECT, and what a ledger write costs alone.
    let stdio_store = work.join("stdio.db");
    let (audited_p50, audited_mean) = ledger_fill::audited_sql_ms(&stdio_store, READ_TOOL)?;
    let probe_n = s.iterations;
    let probe = tokio::task::spawn_blocking(move || ledger_fill::time_read_writes(&stdio_store, probe_n)).await??;
    let started = std::time::Instant::now();
    let probe_run = Run {
        samples: probe,
        errors: 0,
        started: Some(started),
        finished: Some(started),
    };
    let mut ledger_probe = Summary::of("ledger write alone (evidence+audit)", vec![probe_run]);
    ledger_probe.throughput_per_s = 0.0;

    let mut http_modes = Vec::new();
    for mode in [HttpMode::SESSIONS, HttpMode::STATELESS] {
        eprintln!("==> read tool over Streamable HTTP ({})", mode.label);
        let http = http_reads(&ctx, &mode).await?;
        latency.extend([http.seq.clone(), http.ping.clone(), http.conc.clone()]);
        latency.extend(http.conc_high.iter().cloned());
        http_modes.push((mode, http));
    }
    latency.push(ledger_probe.clone());

    eprintln!("==> proposal tool over stdio");
    let (prop_new, prop_dedupe) = proposals(&ctx, &ctx.launcher, false).await?;
    latency.extend([prop_new.clone(), prop_dedupe.clone()]);

    eprintln!("==> cold start");
    let cold = cold_starts(&ctx).await?;

    let peer = match &s.compare {
        Some(command) => {
            eprintln!("==> the same stdio phases against --compare: {command}");
            let launcher = ctx.launcher.for_peer(command);
            let peer = peer_phases(&ctx, &launcher).await?;
            latency.extend([peer.stdio.seq.clone(), peer.stdio.ping.clone(), peer.stdio.conc.clone()]);
            latency.push(peer.proposal_new.clone());
            Some(peer)
        }
        None => None,
    };
    let controller = match &s.controller_report {
        Some(path) => Some(ControllerReport::read(path)?),
        None => None,
    };

    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            (a / b * 100.0).round() / 100.0
        } else {
            f64::NAN
        }
    };
    let mib = |kib: u64| (kib as f64 / 1024.0 * 100.0).round() / 100.0;
    let http = &http_modes[0].1;
    let stdio_ratio = ratio(stdio.seq.p50_ms, direct_seq.p50_ms);
    let http_ratio = ratio(http.seq.p50_ms, direct_seq.p50_ms);
    let stdio_floor = direct_seq.p50_ms + stdio.ping.p50_ms;
    let growth_limit = (cold.empty_ms * COLD_GROWTH_RATIO).max(cold.empty_ms + COLD_GROWTH_SLACK_MS);
    let ledger_label = format!("{}k-row ledger", ctx.s.ledger_rows / 1000);
    let (c, hc) = (s.concurrency, s.high_concurrency);
    let mut checks = vec![
        Check::info("floor, stdio: direct SELECT p50 + stdio ping p50", stdio_floor, "ms"),
        Check::at_most(
            "read p50 stdio / stdio floor",
            ratio(stdio.seq.p50_ms, stdio_floor),
            "x",
            READ_OVER_FLOOR_MAX,
        ),
        Check::at_most(
            "proposal p50 stdio (new rows) / stdio floor",
            ratio(prop_new.p50_ms, stdio_floor),
            "x",
            PROPOSAL_OVER_FLOOR_MAX,
        ),
    ];
    for (mode, h) in &http_modes {
        let floor = direct_seq.p50_ms + h.ping.p50_ms;
        let l = mode.label;
        checks.extend([
            Check::info(&format!("floor, {l}: direct SELECT p50 + ping p50"), floor, "ms"),
            Check::at_most(
                &format!("read p50 {l} / {l} floor"),
                ratio(h.seq.p50_ms, floor),
                "x",
                READ_OVER_FLOOR_MAX,
            ),
            Check::at_most(
                &format!("ping p50 {l} / stdio ping p50"),
                ratio(h.ping.p50_ms, stdio.ping.p50_ms),
                "x",
                HTTP_PING_OVER_STDIO_PING_MAX,
            ),
            Check::at_least(
                &format!("{l} x{c} calls/s / direct SELECT x{c} calls/s"),
                ratio(h.conc.throughput_per_s, direct_conc.throughput_per_s),
                "",
                HTTP_CONCURRENT_SHARE_MIN,
            ),
        ]);
        if let Some(high) = &h.conc_high {
            checks.extend([
                Check::at_least(
                    &format!("{l} x{hc} calls/s / {l} x{c} calls/s"),
                    ratio(high.throughput_per_s, h.conc.throughput_per_s),
                    "",
                    HIGH_CONCURRENCY_KEEP_MIN,
                ),
                Check::info(&format!("{l} x{c} read p99"), h.conc.p99_ms, "ms"),
                Check::info(&format!("{l} x{hc} read p99"), high.p99_ms, "ms"),
            ]);
        }
    }
    checks.extend([
        Check::info("read p50 stdio / direct SELECT p50", stdio_ratio, "x"),
        Check::info("read p50 HTTP / direct SELECT p50", http_ratio, "x"),
        // The baseline of runs before 2026-11-26: what an app on sqlx's default Pool pays.
        Check::info(
            "read p50 stdio / direct SELECT on sqlx Pool defaults",
            ratio(stdio.seq.p50_ms, direct_pooled.p50_ms),
            "x",
        ),
        Check::info(
            "read p50 HTTP / direct SELECT on sqlx Pool defaults",
            ratio(http.seq.p50_ms, direct_pooled.p50_ms),
            "x",
        ),
        Check::info(
            &format!("read p50 stdio x{} / direct x{}", s.concurrency, s.concurrency),
            ratio(stdio.conc.p50_ms, direct_conc.p50_ms),
            "x",
        ),
        Check::info(
            &format!("read p50 HTTP x{} / direct x{}", s.concurrency, s.concurrency),
            ratio(http.conc.p50_ms, direct_conc.p50_ms),
            "x",
        ),
        Check::at_most(
            "idle RSS, stdio server",
            mib(stdio.idle.rss_kib),
            "MiB",
            IDLE_RSS_MAX_MIB,
        ),
        Check::at_most("idle RSS, HTTP server", mib(http.idle.rss_kib), "MiB", IDLE_RSS_MAX_MIB),
        Check::at_most(
            "idle RSS, HTTP stateless server",
            mib(http_modes[1].1.idle.rss_kib),
            "MiB",
            IDLE_RSS_MAX_MIB,
        ),
        Check::info(
            "idle RSS, stdio server: anonymous (heap, stacks)",
            mib(stdio.idle.anon_kib),
            "MiB",
        ),
        Check::info(
            "idle RSS, stdio server: file-backed (code)",
            mib(stdio.idle.file_kib),
            "MiB",
        ),
        Check::info(
            &format!("peak RSS, HTTP server after x{}", s.concurrency),
            mib(http.peak_hwm_kib),
            "MiB",
        ),
        Check::info(
            &format!("peak RSS, largest stdio server of x{}", s.concurrency),
            mib(stdio.peak_hwm_kib),
            "MiB",
        ),
        Check::at_most(
            "cold start to initialize, empty ledger",
            cold.empty_ms,
            "ms",
            COLD_START_MAX_MS,
        ),
        Check::at_most(
            &format!("cold start to initialize, {ledger_label}"),
            cold.filled_ms,
            "ms",
            COLD_START_MAX_MS,
        ),
        Check {
            name: format!("cold start, {ledger_label} vs empty"),
            value: cold.filled_ms,
            unit: "ms",
            target: Some(format!("<= {:.2} ms (1.2x / +2 ms)", growth_limit)),
            pass: Some(cold.filled_ms <= growth_limit),
        },
        Check::info("cold start, empty ledger, fastest run", cold.empty_min_ms, "ms"),
        Check::info(
            &format!("cold start, {ledger_label}, fastest run"),
            cold.filled_min_ms,
            "ms",
        ),
        Check::info("cold start, brand-new store (creates schema)", cold.fresh_ms, "ms"),
        Check::info("read: runner-side SELECT p50 (query_audit)", audited_p50, "ms"),
        Check::info("read: ledger write alone p50 (probe)", ledger_probe.p50_ms, "ms"),
        Check::info("read: stdio ping round trip p50", stdio.ping.p50_ms, "ms"),
        Check::info("read: HTTP ping round trip p50", http.ping.p50_ms, "ms"),
    ]);
    checks.extend(controller_checks(controller.as_ref()));
    let comparison = peer.as_ref().map(|p| {
        compare_rows(&[
            ("read p50, stdio (ms)", stdio.seq.p50_ms, p.stdio.seq.p50_ms),
            ("read p99, stdio (ms)", stdio.seq.p99_ms, p.stdio.seq.p99_ms),
            ("ping p50, stdio (ms)", stdio.ping.p50_ms, p.stdio.ping.p50_ms),
            ("proposal p50, new rows (ms)", prop_new.p50_ms, p.proposal_new.p50_ms),
            (
                &format!("read x{c} processes (calls/s)"),
                stdio.conc.throughput_per_s,
                p.stdio.conc.throughput_per_s,
            ),
            ("idle RSS (MiB)", mib(stdio.idle.rss_kib), mib(p.stdio.idle.rss_kib)),
            (
                "cold start to initialize, both via sh (ms, median)",
                p.runner_cold_via_sh_ms,
                p.cold_ms,
            ),
        ])
    });
    let load_end = report::loadavg();
    let all_pass = checks.iter().all(|c| c.pass != Some(false));
    let errors: usize = latency.iter().map(|l| l.errors).sum();

    let mut text = String::new();
    text.push_str(&format!(
        "\nSynapsor Runner benchmark: {runner_version}, PostgreSQL {}, {} cores, {} iterations, {} clients{}\n\n",
        db.server_version,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        s.iterations,
        s.concurrency,
        if s.quick { " (quick)" } else { "" }
    ));
    text.push_str(&format!(
        "load average (1/5/15 min): {load_start} at start, {load_end} at end\n\n"
    ));
    text.push_str(&report::latency_table(&latency));
    text.push('\n');
    text.push_str(&report::checks_table(&checks));
    if let (Some(rows), Some(command)) = (&comparison, &s.compare) {
        text.push_str(&format!("\nSide by side over stdio with --compare: {command}\n\n"));
        text.push_str(&report::compare_table(rows));
    }
    if errors > 0 {
        text.push_str(&format!(
            "\nWARNING: {errors} call(s) did not return the expected result; see {}/logs\n",
            work.display()
        ));
    }

    let report = json!({
        "generated_at": SystemClock.now_rfc3339(),
        "runner": {"binary": s.runner, "version": runner_version},
        "machine": report::machine(),
        "load_average_1_5_15": {"start": load_start, "end": load_end},
        "postgres": {"version": db.server_version, "invoices": s.rows, "tenant_rows": db.tenant_ids.len()},
        "settings": {
            "iterations": s.iterations, "warmup": s.warmup, "concurrency": s.concurrency, "quick": s.quick,
            "ledger_rows": s.ledger_rows, "cold_runs": s.cold_runs, "high_concurrency": s.high_concurrency,
        },
        "direct_sql": DIRECT_SQL,
        "latency": latency,
        "rss_kib": {
            "stdio": {"after_initialize": stdio.startup, "idle_after_calls": stdio.idle, "after_sequential": stdio.after_seq,
                      "peak_hwm_max_of_clients": stdio.peak_hwm_kib},
            "http": {"after_start": http.startup, "idle_after_calls": http.idle, "after_sequential": http.after_seq,
                     "peak_hwm_after_concurrent": http.peak_hwm_kib},
            "idle_calls": IDLE_CALLS,
        },
        "cold_start_ms": {
            "runs": s.cold_runs,
            "empty_ledger_median": cold.empty_ms, "empty_ledger_samples": cold.empty_samples,
            "filled_ledger_median": cold.filled_ms, "filled_ledger_samples": cold.filled_samples,
            "fresh_store_median": cold.fresh_ms,
            "empty_ledger_min": cold.empty_min_ms, "filled_ledger_min": cold.filled_min_ms,
            "filled_ledger": cold.fill,
            "fill_method": "one stdio session of real reads and proposals, then those rows cloned with rusqlite in one transaction",
        },
        "breakdown_ms": {
            "direct_select_p50": direct_seq.p50_ms,
            "direct_select_sqlx_pool_p50": direct_pooled.p50_ms,
            "runner_select_p50_from_query_audit": audited_p50,
            "runner_select_mean_from_query_audit": audited_mean,
            "ledger_write_probe_p50": ledger_probe.p50_ms,
            "stdio_ping_p50": stdio.ping.p50_ms,
            "stdio_rejected_argument_p50": stdio.layers.first().map(|l| l.p50_ms),
            "stdio_other_tenant_row_p50": stdio.layers.get(1).map(|l| l.p50_ms),
            "http_ping_p50": http.ping.p50_ms,
            "http_stateless_ping_p50": http_modes[1].1.ping.p50_ms,
            "http_stateless_read_p50": http_modes[1].1.seq.p50_ms,
            "stdio_read_p50": stdio.seq.p50_ms,
            "http_read_p50": http.seq.p50_ms,
        },
        "checks": checks,
        "compare": comparison.as_ref().map(|rows| json!({"command": s.compare, "rows": rows})),
        "controller": controller,
        "all_targets_met": all_pass,
        "errors": errors,
    });
    Ok((report, text))
}

fn per_client(total: usize, clients: usize) -> usize {
    total.div_ceil(clients).max(1)
}

async fn direct_select<'c>(db: impl PgExecutor<'c>, id: &str) -> anyhow::Result<bool> {
    let Some(row) = sqlx::query(DIRECT_SQL).bind(id).bind(TENANT).fetch_optional(db).await? else {
        return Ok(false);
    };
    // Decode what the tool returns (the timestamp only as raw bytes: no date crate here).
    let _: String = row.try_get(0)?;
    let _: String = row.try_get(1)?;
    let _: i64 = row.try_get(2)?;
    let _: i64 = row.try_get(3)?;
    let _: String = row.try_get(4)?;
    Ok(!row.try_get_raw(5)?.is_null())
}

/// The direct SELECT on one dedicated connection (the baseline), through sqlx's `Pool` with
/// default options, and on one dedicated connection per concurrent client.
async fn direct(ctx: &Ctx) -> anyhow::Result<(Summary, Summary, Summary)> {
    let s = &ctx.s;
    let ids = ctx.ids.clone();
    let conn = Arc::new(Mutex::new(PgConnection::connect(&ctx.db.read_url).await?));
    let run = run_calls(s.warmup, s.iterations, None, |i| {
        let (conn, ids) = (conn.clone(), ids.clone());
        async move { direct_select(&mut *conn.lock().await, &ids[i % ids.len()]).await }
    })
    .await?;
    let seq = Summary::of("direct SELECT", vec![run]);

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect(&ctx.db.read_url)
        .await?;
    let run = run_calls(s.warmup, s.iterations, None, |i| {
        let (pool, ids) = (pool.clone(), ids.clone());
        async move { direct_select(&pool, &ids[i % ids.len()]).await }
    })
    .await?;
    pool.close().await;
    let pooled = Summary::of("direct SELECT, sqlx Pool defaults", vec![run]);

    let c = s.concurrency;
    let barrier = Arc::new(Barrier::new(c));
    let mut tasks = Vec::new();
    for k in 0..c {
        let conn = Arc::new(Mutex::new(PgConnection::connect(&ctx.db.read_url).await?));
        let (ids, barrier) = (ctx.ids.clone(), barrier.clone());
        let (warmup, n) = (s.warmup, per_client(s.iterations, c));
        tasks.push(tokio::spawn(async move {
            run_calls(warmup, n, Some(barrier), |i| {
                let (conn, ids) = (conn.clone(), ids.clone());
                async move { direct_select(&mut *conn.lock().await, &ids[(i * 7 + k * 131) % ids.len()]).await }
            })
            .await
        }));
    }
    let runs = join_all(tasks).await?;
    Ok((seq, pooled, Summary::of(&format!("direct SELECT x{c}"), runs)))
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Run>>>) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::with_capacity(tasks.len());
    for t in tasks {
        runs.push(t.await??);
    }
    Ok(runs)
}

/// A read through an MCP session, expecting `ok: true`.
async fn read(peer: &rmcp::service::Peer<rmcp::RoleClient>, id: &str) -> anyhow::Result<bool> {
    Ok(call(peer, READ_TOOL, ARG, id).await? == Outcome::Ok)
}

/// Sequential reads on one session.
async fn sequential_reads(ctx: &Ctx, client: &Client, phase: &str) -> anyhow::Result<Summary> {
    let peer = client.peer().clone();
    let ids = ctx.ids.clone();
    let run = run_calls(ctx.s.warmup, ctx.s.iterations, None, |i| {
        let (peer, ids) = (peer.clone(), ids.clone());
        async move { read(&peer, &ids[i % ids.len()]).await }
    })
    .await?;
    Ok(Summary::of(phase, vec![run]))
}

/// Sequential pings on one session: the transport's share of a call.
async fn sequential_pings(ctx: &Ctx, client: &Client, phase: &str) -> anyhow::Result<Summary> {
    let peer = client.peer().clone();
    let run = run_calls(ctx.s.warmup, ctx.s.iterations, None, |_| {
        let peer = peer.clone();
        async move { runner::ping(&peer).await }
    })
    .await?;
    Ok(Summary::of(phase, vec![run]))
}

/// Sequential read-tool calls that fail on purpose, with `code`: a rejected argument (stops at
/// validation: no SQL, no ledger) or a row of another tenant (SQL and a query-audit row, no
/// evidence). Together with `ping` they split a read into its layers.
async fn sequential_failing_reads(
    ctx: &Ctx,
    client: &Client,
    phase: &str,
    code: &'static str,
) -> anyhow::Result<Summary> {
    let peer = client.peer().clone();
    let ids = ctx.ids.clone();
    let other_tenant_rows = ctx.s.rows / 4;
    let run = run_calls(ctx.s.warmup, ctx.s.iterations, None, |i| {
        let (peer, ids) = (peer.clone(), ids.clone());
        async move {
            let mut args = serde_json::Map::new();
            if code == "INVALID_ARGUMENT" {
                args.insert(ARG.into(), json!(ids[i % ids.len()]));
                args.insert("extra".into(), json!(1));
            } else {
                // g % 4 == 1 is tenant "globex" in the seed.
                let g = 4 * (i % other_tenant_rows) + 1;
                args.insert(ARG.into(), json!(format!("INV-{g:06}")));
            }
            Ok(runner::call_code(&peer, READ_TOOL, args).await?.as_deref() == Some(code))
        }
    })
    .await?;
    Ok(Summary::of(phase, vec![run]))
}

/// Concurrent reads, one task per session, started together.
async fn concurrent_reads(ctx: &Ctx, clients: &[Client], phase: &str) -> anyhow::Result<Summary> {
    let c = clients.len();
    let barrier = Arc::new(Barrier::new(c));
    let mut tasks = Vec::new();
    for (k, client) in clients.iter().enumerate() {
        let (peer, ids, barrier) = (client.peer().clone(), ctx.ids.clone(), barrier.clone());
        let (warmup, n) = (ctx.s.warmup, per_client(ctx.s.iterations, c));
        tasks.push(tokio::spawn(async move {
            run_calls(warmup, n, Some(barrier), |i| {
                let (peer, ids) = (peer.clone(), ids.clone());
                async move { read(&peer, &ids[(i * 7 + k * 131) % ids.len()]).await }
            })
            .await
        }));
    }
    Ok(Summary::of(phase, join_all(tasks).await?))
}

async fn idle_calls(ctx: &Ctx, client: &Client) -> anyhow::Result<()> {
    for i in 0..IDLE_CALLS {
        if !read(client.peer(), &ctx.ids[i]).await? {
            bail!("the read tool did not return ok: see {}/logs", ctx.work.display());
        }
    }
    // Let the runtime settle (freed buffers, idle pool) before reading RSS.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

struct TransportResult {
    seq: Summary,
    ping: Summary,
    /// Only over stdio: the layers of a read.
    layers: Vec<Summary>,
    conc: Summary,
    /// Only over HTTP: `--high-concurrency` sessions.
    conc_high: Option<Summary>,
    startup: runner::Rss,
    idle: runner::Rss,
    after_seq: runner::Rss,
    peak_hwm_kib: u64,
}

/// Phase names and file names of the runner's phases, or of a `--compare` server's.
fn prefixes(peer: bool) -> (&'static str, &'static str) {
    if peer { ("peer: ", "peer-") } else { ("", "") }
}

/// The stdio phases of `launcher`'s server (`peer`: a `--compare` server).
async fn stdio_reads(ctx: &Ctx, launcher: &Launcher, peer: bool) -> anyhow::Result<TransportResult> {
    let (label, file) = prefixes(peer);
    let (client, pid) = launcher
        .stdio(&ctx.work.join(format!("{file}stdio.db")), &format!("{file}stdio"))
        .await?;
    let startup = runner::rss(pid)?;
    idle_calls(ctx, &client).await?;
    let idle = runner::rss(pid)?;
    let seq = sequential_reads(ctx, &client, &format!("{label}read tool, stdio")).await?;
    let after_seq = runner::rss(pid)?;
    let ping = sequential_pings(ctx, &client, &format!("{label}ping, stdio (transport only)")).await?;
    let layers = if !peer {
        vec![
            sequential_failing_reads(ctx, &client, "read, stdio: rejected argument", "INVALID_ARGUMENT").await?,
            sequential_failing_reads(ctx, &client, "read, stdio: other tenant's row", "NOT_FOUND_IN_TENANT").await?,
        ]
    } else {
        Vec::new()
    };
    runner::close_stdio(client, pid).await?;

    let c = ctx.s.concurrency;
    let mut clients = Vec::new();
    let mut pids = Vec::new();
    for k in 0..c {
        let (client, pid) = launcher
            .stdio(
                &ctx.work.join(format!("{file}stdio-{k}.db")),
                &format!("{file}stdio-{k}"),
            )
            .await?;
        clients.push(client);
        pids.push(pid);
    }
    let conc = concurrent_reads(ctx, &clients, &format!("{label}read tool, stdio x{c} (processes)")).await?;
    let mut peak_hwm_kib = 0;
    for &pid in &pids {
        peak_hwm_kib = peak_hwm_kib.max(runner::rss(pid)?.hwm_kib);
    }
    for (client, pid) in clients.into_iter().zip(pids) {
        runner::close_stdio(client, pid).await?;
    }
    Ok(TransportResult {
        seq,
        ping,
        layers,
        conc,
        conc_high: None,
        startup,
        idle,
        after_seq,
        peak_hwm_kib,
    })
}

/// How the HTTP server runs: with MCP sessions (the default) or `--stateless`.
struct HttpMode {
    label: &'static str,
    flags: &'static [&'static str],
    file: &'static str,
}

impl HttpMode {
    const SESSIONS: HttpMode = HttpMode {
        label: "HTTP",
        flags: &[],
        file: "http",
    };
    const STATELESS: HttpMode = HttpMode {
        label: "HTTP stateless",
        flags: &["--stateless"],
        file: "http-stateless",
    };
}

/// Concurrent reads on `n` new clients of `server` (sessions, or stateless connections).
async fn http_concurrent(ctx: &Ctx, server: &runner::HttpServer, n: usize, label: &str) -> anyhow::Result<Summary> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(server.session(&ctx.token).await?);
    }
    let conc = concurrent_reads(ctx, &clients, &format!("read tool, {label} x{n}")).await?;
    for client in clients {
        let _ = client.cancel().await;
    }
    Ok(conc)
}

async fn http_reads(ctx: &Ctx, mode: &HttpMode) -> anyhow::Result<TransportResult> {
    let port = runner::free_port()?;
    let server = ctx
        .launcher
        .http_server(&ctx.work.join(format!("{}.db", mode.file)), port, mode.file, mode.flags)
        .await?;
    let startup = runner::rss(server.pid)?;
    let client = server.session(&ctx.token).await?;
    idle_calls(ctx, &client).await?;
    let idle = runner::rss(server.pid)?;
    let seq = sequential_reads(ctx, &client, &format!("read tool, {}", mode.label)).await?;
    let after_seq = runner::rss(server.pid)?;
    let ping = sequential_pings(ctx, &client, &format!("ping, {} (transport only)", mode.label)).await?;
    let _ = client.cancel().await;

    let conc = http_concurrent(ctx, &server, ctx.s.concurrency, mode.label).await?;
    let peak_hwm_kib = runner::rss(server.pid)?.hwm_kib;
    let conc_high = if ctx.s.high_concurrency > ctx.s.concurrency {
        Some(http_concurrent(ctx, &server, ctx.s.high_concurrency, mode.label).await?)
    } else {
        None
    };
    server.stop().await?;
    Ok(TransportResult {
        seq,
        ping,
        layers: Vec::new(),
        conc,
        conc_high,
        startup,
        idle,
        after_seq,
        peak_hwm_kib,
    })
}

async fn proposals(ctx: &Ctx, launcher: &Launcher, peer: bool) -> anyhow::Result<(Summary, Summary)> {
    let s = &ctx.s;
    let (label, file) = prefixes(peer);
    let (client, pid) = launcher
        .stdio(
            &ctx.work.join(format!("{file}proposals.db")),
            &format!("{file}proposals"),
        )
        .await?;
    let peer = client.peer().clone();
    // Distinct rows: every call is a new pending proposal (read + diff + digest + ledger insert).
    let warmup = s.warmup.min(ctx.ids.len() / 4);
    let distinct = s.iterations.min(ctx.ids.len() - warmup);
    let ids = ctx.ids.clone();
    let new_run = run_calls(warmup, distinct, None, |i| {
        let (peer, ids) = (peer.clone(), ids.clone());
        async move { Ok(call(&peer, PROPOSAL_TOOL, ARG, &ids[i]).await? == Outcome::Ok) }
    })
    .await?;
    // One row again and again: every call finds the open proposal with the same digest.
    let first = ctx.ids[0].clone();
    let dedupe_run = run_calls(s.warmup.min(20), s.iterations, None, |_| {
        let (peer, first) = (peer.clone(), first.clone());
        async move { Ok(call(&peer, PROPOSAL_TOOL, ARG, &first).await? == Outcome::OkExisting) }
    })
    .await?;
    runner::close_stdio(client, pid).await?;
    Ok((
        Summary::of(&format!("{label}proposal tool, stdio, new rows"), vec![new_run]),
        Summary::of(&format!("{label}proposal tool, stdio, deduplicated"), vec![dedupe_run]),
    ))
}

/// What `--compare` measures of the peer: the stdio phases, proposals and cold start.
struct PeerResult {
    stdio: TransportResult,
    proposal_new: Summary,
    cold_ms: f64,
    /// The runner's cold start through the same `sh -c 'exec …'` the peer is started with, so
    /// the shell's own start is on both sides of the comparison.
    runner_cold_via_sh_ms: f64,
}

async fn peer_phases(ctx: &Ctx, launcher: &Launcher) -> anyhow::Result<PeerResult> {
    let stdio = stdio_reads(ctx, launcher, true).await?;
    let (proposal_new, _) = proposals(ctx, launcher, true).await?;
    let runner_via_sh = ctx.launcher.for_peer(&format!(
        "{} --config {{config}} --store {{store}} mcp serve",
        runner::shell_quote(&ctx.s.runner.display().to_string())
    ));
    let (peer_store, runner_store) = (ctx.work.join("peer-cold.db"), ctx.work.join("cold-via-sh.db"));
    runner::cold_start(launcher, &peer_store).await?;
    runner::cold_start(&runner_via_sh, &runner_store).await?;
    let (mut peer_samples, mut runner_samples) = (Vec::new(), Vec::new());
    for _ in 0..ctx.s.cold_runs {
        peer_samples.push(runner::cold_start(launcher, &peer_store).await?);
        runner_samples.push(runner::cold_start(&runner_via_sh, &runner_store).await?);
    }
    Ok(PeerResult {
        stdio,
        proposal_new,
        cold_ms: median_ms(peer_samples),
        runner_cold_via_sh_ms: median_ms(runner_samples),
    })
}

/// One row of the side-by-side table: the runner's value, the peer's, and peer / runner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareRow {
    pub measure: String,
    pub runner: f64,
    pub peer: f64,
    pub peer_over_runner: f64,
}

fn compare_rows(values: &[(&str, f64, f64)]) -> Vec<CompareRow> {
    values
        .iter()
        .map(|&(measure, runner, peer)| CompareRow {
            measure: measure.to_owned(),
            runner,
            peer,
            peer_over_runner: if runner > 0.0 {
                (peer / runner * 100.0).round() / 100.0
            } else {
                f64::NAN
            },
        })
        .collect()
}

/// The controller's figures, as `synapsor-controller`'s `throughput` test writes them
/// (`SYNAPSOR_BENCH_CONTROLLER_OUT`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ControllerReport {
    pub single: SingleApprovals,
    pub drain: Drain,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct SingleApprovals {
    pub approvals: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Drain {
    pub approvals: u64,
    pub seconds: f64,
    pub duplicate_writes: u64,
    pub receipts: u64,
    pub terminal_once: bool,
    pub max_concurrent_applies: u64,
    pub kube_api_qps: f64,
    pub kube_api_burst: u64,
}

impl ControllerReport {
    fn read(path: &Path) -> anyhow::Result<ControllerReport> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a controller report", path.display()))
    }
}

fn controller_checks(report: Option<&ControllerReport>) -> Vec<Check> {
    let Some(r) = report else {
        return vec![Check::not_measured(
            "controller: annotate to Applied, 1,000-approval drain",
            "needs the API server: scripts/bench.sh runs it unless --no-controller",
        )];
    };
    let (d, n) = (&r.drain, r.drain.approvals);
    let drain = format!("controller: {n} approvals at once, drained in");
    vec![
        Check::info(
            &format!("controller: annotate to Applied p50 ({} single)", r.single.approvals),
            r.single.p50_ms,
            "ms",
        ),
        Check::info("controller: annotate to Applied p99", r.single.p99_ms, "ms"),
        if n >= DRAIN_APPROVALS {
            Check::at_most(&drain, d.seconds, "s", DRAIN_SECONDS_MAX)
        } else {
            // A smaller drain says nothing about the 1,000-approval target.
            Check::info(&format!("{drain} (target needs {DRAIN_APPROVALS})"), d.seconds, "s")
        },
        Check::at_most("controller: duplicate writes", d.duplicate_writes as f64, "", 0.0),
        Check::at_least(
            "controller: proposals in exactly one terminal phase",
            if d.terminal_once && d.receipts == n { 1.0 } else { 0.0 },
            "",
            1.0,
        ),
        Check::info(
            &format!(
                "controller settings: max concurrent applies {}, API QPS {} burst {}",
                d.max_concurrent_applies, d.kube_api_qps, d.kube_api_burst
            ),
            d.max_concurrent_applies as f64,
            "",
        ),
    ]
}

struct ColdStarts {
    empty_ms: f64,
    empty_min_ms: f64,
    filled_min_ms: f64,
    empty_samples: Vec<f64>,
    filled_ms: f64,
    filled_samples: Vec<f64>,
    fresh_ms: f64,
    fill: ledger_fill::FillReport,
}

async fn cold_starts(ctx: &Ctx) -> anyhow::Result<ColdStarts> {
    let empty = ctx.work.join("cold-empty.db");
    let filled = ctx.work.join("cold-filled.db");

    // The pre-filled ledger: real rows from a real session, then cloned.
    let (client, pid) = ctx.launcher.stdio(&filled, "cold-seed").await?;
    for id in ctx.ids.iter().take(10) {
        read(client.peer(), id).await?;
    }
    for id in ctx.ids.iter().take(3) {
        call(client.peer(), PROPOSAL_TOOL, ARG, id).await?;
    }
    runner::close_stdio(client, pid).await?;
    eprintln!(
        "    filling the ledger with {} evidence + audit rows",
        ctx.s.ledger_rows
    );
    let fill_path = filled.clone();
    let rows = ctx.s.ledger_rows;
    let fill = tokio::task::spawn_blocking(move || ledger_fill::fill(&fill_path, rows)).await??;

    // Untimed first starts: create the empty store, warm the page cache for binary and files.
    runner::cold_start(&ctx.launcher, &empty).await?;
    runner::cold_start(&ctx.launcher, &filled).await?;
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let (mut e, mut f, mut n) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so drift on the machine affects all variants alike.
    for i in 0..ctx.s.cold_runs {
        e.push(runner::cold_start(&ctx.launcher, &empty).await?);
        f.push(runner::cold_start(&ctx.launcher, &filled).await?);
        n.push(runner::cold_start(&ctx.launcher, &ctx.work.join(format!("cold-fresh-{i}.db"))).await?);
    }
    // The pre-filled ledger is large (about 1.8 KiB per evidence + audit pair); keep the rest.
    for suffix in ["", "-wal", "-shm", ".lease"] {
        let mut p = filled.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let min = |v: &[Duration]| v.iter().min().copied().map_or(0.0, ms);
    Ok(ColdStarts {
        empty_min_ms: min(&e),
        filled_min_ms: min(&f),
        empty_samples: e.iter().copied().map(ms).collect(),
        filled_samples: f.iter().copied().map(ms).collect(),
        empty_ms: median_ms(e),
        filled_ms: median_ms(f),
        fresh_ms: median_ms(n),
        fill,
    })
}
