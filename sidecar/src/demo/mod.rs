//! `demo --quick`: the whole flow on an embedded SQLite database, with no server and no setup.
//!
//! It builds a small billing database with invoices of two tenants, then drives the real runtime
//! (the same code path an MCP tool call takes) as the agent of tenant `acme`: a scoped read,
//! refused reads, a proposal with its diff, a check that the source did not change, a human
//! approval bound to the digest, the guarded apply (the same code path as `synapsor-runner
//! apply`) with its receipt, a repeated apply that changes nothing, and the replay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use serde_json::{Value, json};
use synapsor_core::capability::Caller;
use synapsor_core::config::{self, ResultFormat};
use synapsor_ledger::{Ledger, LedgerStore};

use synapsor_core::context::{Clock, OverlayEnv, ProcessEnv, SystemClock};

use crate::cli::common::CliError;
use crate::ids::RandomIds;
use crate::local_apply::apply_proposal;
use crate::runtime::{Runtime, RuntimeDeps};

/// `demo --quick [--dir D] [--json]`.
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

pub const CONFIG: &str = include_str!("quick-demo.runner.json");
const SEED: &str = include_str!("seed.sql");
const TENANT: &str = "acme";
const AGENT: &str = "support.agent";
const REVIEWER: &str = "demo.reviewer";
const OPERATOR: &str = "demo.operator";

fn fail(code: &'static str) -> impl Fn(String) -> CliError {
    move |m| CliError::new(code, m)
}

fn source_row(db: &Path, id: &str) -> Result<Value, CliError> {
    let conn = rusqlite::Connection::open(db).map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;
    conn.query_row(
        "SELECT json_object('id', id, 'tenant_id', tenant_id, 'late_fee_cents', late_fee_cents, 'updated_at', updated_at) FROM invoices WHERE id = ?1",
        [id],
        |r| r.get::<_, String>(0),
    )
    .map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))
    .and_then(|s| serde_json::from_str(&s).map_err(|e| CliError::new("DEMO_FAILED", e.to_string())))
}

/// Runs the demo; prints a walkthrough, or one JSON summary with `--json`.
pub async fn run(args: DemoArgs) -> Result<i32, CliError> {
    if !args.quick {
        return Err(CliError::new(
            "DEMO_MODE_REQUIRED",
            "only the self-contained demo exists: run `synapsor-runner demo --quick`",
        ));
    }
    let dir = &args.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| CliError::new("DEMO_FAILED", format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::new("DEMO_FAILED", format!("cannot create {}: {e}", dir.display())))?;
    let source_db = dir.join("billing.db");
    let ledger_path = dir.join("ledger.db");
    {
        let conn = rusqlite::Connection::open(&source_db).map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;
        conn.execute_batch(SEED)
            .map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;
        // What `synapsor-runner db init-receipts` does for an admin: apply never creates tables.
        let ddl = synapsor_executor::receipts_ddl(config::Engine::Sqlite, "main")
            .map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;
        conn.execute_batch(&ddl)
            .map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;
    }
    let (mut cfg, _warnings) = config::parse_config(CONFIG).map_err(|r| {
        CliError::new(
            "DEMO_FAILED",
            format!("embedded demo config is invalid: {:?}", r.errors),
        )
    })?;
    cfg.storage = Some(config::Storage {
        sqlite_path: ledger_path.display().to_string(),
    });
    let url = format!("sqlite://{}", source_db.display());
    let demo_env = HashMap::from([
        ("SYNAPSOR_DEMO_READ_URL".to_owned(), url.clone()),
        ("SYNAPSOR_DEMO_WRITE_URL".to_owned(), url),
        ("SYNAPSOR_TENANT_ID".to_owned(), TENANT.to_owned()),
        ("SYNAPSOR_PRINCIPAL".to_owned(), AGENT.to_owned()),
    ]);
    let env = OverlayEnv {
        values: demo_env.clone(),
        fallback: ProcessEnv,
    };
    let apply_cfg = cfg.clone();
    let ledger = Ledger::new(LedgerStore::open(&ledger_path)?);
    let runtime = Runtime::new(
        cfg,
        RuntimeDeps {
            ledger: ledger.clone(),
            env: Arc::new(env),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds::default()),
            result_format: Some(ResultFormat::V2),
            publisher: None,
        },
    )
    .map_err(|e| CliError::new("DEMO_FAILED", e.to_string()))?;

    let human = !args.json;
    let say = |s: &str| {
        if human {
            outln!("{s}");
        }
    };
    say("Synapsor Runner quick demo: an agent of tenant \"acme\" works on invoices through reviewed capabilities.");
    say(&format!(
        "Source: embedded SQLite demo database {}\n",
        source_db.display()
    ));

    // 1. A scoped read.
    let (read, _) = runtime
        .call_envelope(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-3001"}),
            &Caller::Process,
        )
        .await;
    say("1. Agent reads an invoice of its own tenant");
    say("   billing.inspect_invoice {\"invoice_id\": \"INV-3001\"}");
    say(&format!("   -> {}", read["data"]));
    say("   Only the reviewed columns come back: no tenant_id, no internal_note.\n");

    // 2. Another tenant's invoice and a nonexistent one look the same.
    let (other, _) = runtime
        .call_envelope(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-9001"}),
            &Caller::Process,
        )
        .await;
    let (missing, _) = runtime
        .call_envelope(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-0000"}),
            &Caller::Process,
        )
        .await;
    say("2. Agent asks for another tenant's invoice, then for one that does not exist");
    say(&format!("   INV-9001 (tenant globex) -> {}", other["error"]["code"]));
    say(&format!("   INV-0000 (no such row)   -> {}", missing["error"]["code"]));
    say("   Both answers are identical, so the agent cannot learn what other tenants have.\n");

    // 3. The model cannot choose the tenant.
    let (spoof, _) = runtime
        .call_envelope(
            "billing.inspect_invoice",
            &json!({"invoice_id": "INV-9001", "tenant_id": "globex"}),
            &Caller::Process,
        )
        .await;
    say("3. Agent tries to pass its own tenant_id");
    say(&format!(
        "   {{\"invoice_id\": \"INV-9001\", \"tenant_id\": \"globex\"}} -> {}",
        spoof["error"]["code"]
    ));
    say("   Tenant and principal come from the runner's trusted context, never from arguments.\n");

    // 4. A proposal instead of a write.
    let before = source_row(&source_db, "INV-3001")?;
    let (proposal, _) = runtime
        .call_envelope(
            "billing.propose_late_fee_waiver",
            &json!({"invoice_id": "INV-3001"}),
            &Caller::Process,
        )
        .await;
    let proposal_id = proposal["proposal"]["id"].as_str().unwrap_or_default().to_owned();
    say("4. Agent proposes waiving the late fee");
    say("   billing.propose_late_fee_waiver {\"invoice_id\": \"INV-3001\"}");
    say(&format!(
        "   -> proposal {proposal_id}: {}",
        proposal["proposal"]["diff"]
    ));
    say(&format!(
        "   digest {}\n",
        proposal["proposal"]["digest"].as_str().unwrap_or_default()
    ));
    let (again, _) = runtime
        .call_envelope(
            "billing.propose_late_fee_waiver",
            &json!({"invoice_id": "INV-3001"}),
            &Caller::Process,
        )
        .await;
    say("   The same call again returns the same pending proposal, not a duplicate:");
    say(&format!(
        "   -> {} (existing: {})\n",
        again["proposal"]["id"], again["proposal"]["existing"]
    ));

    // 5. The source is unchanged.
    let after = source_row(&source_db, "INV-3001")?;
    let unchanged = before == after;
    say("5. The source database is unchanged by the tool calls");
    say(&format!(
        "   invoices INV-3001 late_fee_cents = {} (was {})\n",
        after["late_fee_cents"], before["late_fee_cents"]
    ));
    if !unchanged {
        return Err(CliError::new("DEMO_FAILED", "the source row changed during the demo"));
    }

    // 6. A human approves outside MCP, bound to the digest.
    let digest = proposal["proposal"]["digest"].as_str().unwrap_or_default().to_owned();
    let now = SystemClock.now_rfc3339();
    let approved = {
        let mut store = LedgerStore::open(&ledger_path)?;
        store.approve(&proposal_id, &digest, REVIEWER, Some("demo approval"), &now)?
    };
    say("6. A human approves outside MCP (CLI), bound to the digest they reviewed");
    say(&format!(
        "   synapsor-runner proposals approve {proposal_id} --digest {digest} --actor {REVIEWER}"
    ));
    say(&format!("   -> state {}\n", approved.state.as_str()));

    // 7. The privileged apply, with guards, then once more.
    let writer_env = demo_env;
    let applied = apply_proposal(&apply_cfg, &ledger_path, &proposal_id, false, &writer_env, OPERATOR).await?;
    let after_apply = source_row(&source_db, "INV-3001")?;
    say("7. The privileged apply: one transaction with guards (same code path as `synapsor-runner apply`)");
    for c in &applied.receipt.checks {
        say(&format!(
            "   [{}] {:<22} {}",
            if c.passed { "ok" } else { "!!" },
            c.name,
            c.detail
        ));
    }
    say(&format!(
        "   -> {} ({} row), receipt {}",
        applied.receipt.status.as_str(),
        applied.receipt.rows_affected,
        applied.receipt.receipt_hash
    ));
    say(&format!(
        "   invoices INV-3001 late_fee_cents = {} (updated_at {})",
        after_apply["late_fee_cents"], after_apply["updated_at"]
    ));
    let again_apply = apply_proposal(&apply_cfg, &ledger_path, &proposal_id, false, &writer_env, OPERATOR).await?;
    let after_again = source_row(&source_db, "INV-3001")?;
    say(&format!(
        "   Applying again: {} and nothing changes (late_fee_cents = {}).\n",
        again_apply.receipt.status.as_str(),
        after_again["late_fee_cents"]
    ));

    // 8. Replay.
    let replay = LedgerStore::open(&ledger_path)?.replay(&proposal_id)?;
    say("8. Everything is in the ledger and can be replayed");
    for e in &replay.events {
        say(&format!("   #{} {} by {}", e.event_id, e.kind, e.actor));
    }
    say(&format!("   digest verified: {}\n", replay.digest_verified));
    let store_arg = ledger_path.display().to_string();
    say("Next:");
    say(&format!(
        "  synapsor-runner --store {store_arg} proposals show {proposal_id}"
    ));
    say(&format!("  synapsor-runner --store {store_arg} replay {proposal_id}"));
    say(&format!("  synapsor-runner --store {store_arg} events tail"));

    let ok = read["ok"] == json!(true)
        && other["error"]["code"] == json!("NOT_FOUND_IN_TENANT")
        && other["error"] == missing["error"]
        && spoof["error"]["code"] == json!("INVALID_ARGUMENT")
        && proposal["ok"] == json!(true)
        && again["proposal"]["id"] == proposal["proposal"]["id"]
        && unchanged
        && applied.receipt.status.as_str() == "applied"
        && applied.receipt.rows_affected == 1
        && after_apply["late_fee_cents"] == json!(0)
        && again_apply.receipt.status.as_str() == "already_applied"
        && after_again == after_apply
        && replay.digest_verified;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": ok,
                "mode": "embedded_sqlite",
                "source_database": source_db.display().to_string(),
                "store": store_arg,
                "tenant_id": TENANT,
                "principal": AGENT,
                "read": read,
                "cross_tenant_read": other,
                "missing_read": missing,
                "tenant_override_attempt": spoof,
                "proposal": proposal,
                "repeated_proposal_existing": again["proposal"]["existing"],
                "source_database_changed": !unchanged,
                "approval": {"state": approved.state, "approved_by": REVIEWER, "digest": digest},
                "apply": {
                    "status": applied.receipt.status,
                    "rows_affected": applied.receipt.rows_affected,
                    "state": applied.state,
                    "receipt": applied.receipt,
                    "source_row_after": after_apply,
                },
                "apply_again": {"status": again_apply.receipt.status, "rows_affected": again_apply.receipt.rows_affected},
                "replay": {"replay_id": replay.replay_id, "events": replay.events.iter().map(|e| &e.kind).collect::<Vec<_>>(), "digest_verified": replay.digest_verified},
            }))
            .unwrap_or_default()
        );
    }
    if !ok {
        return Err(fail("DEMO_FAILED")("a demo step did not behave as expected".into()));
    }
    Ok(0)
}
