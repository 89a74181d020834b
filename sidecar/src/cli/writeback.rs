//! Writeback commands: `apply`, `doctor`, `db init-receipts`, `handler template`,
//! `events webhook`. [`guarded::apply_proposal`] is the one apply path (the CLI and the demo).

use clap::{Args, Subcommand};

use super::GlobalArgs;
use super::commands::CliError;

/// `apply <proposal> [--dry-run]`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Proposal id, or `latest`.
    pub proposal: String,
    /// Check everything and show what would be written, without writing or recording a receipt.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the writeback receipts table (run once, as a database admin).
    InitReceipts {
        /// Source name from the config.
        #[arg(long)]
        source: Option<String>,
        /// Print the DDL and GRANTs instead of running them.
        #[arg(long)]
        print: bool,
        /// Environment variable holding an admin URL to create the table with (and to grant the
        /// writer of `write_url_env` access to it). Default: the source's `write_url_env`.
        #[arg(long)]
        admin_url_env: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HandlerCommand {
    /// Print a starter app-owned handler, or write it to --output.
    ///
    /// Every template verifies the signature and its time window, refuses replayed idempotency
    /// keys, re-checks tenant and expected version against the app's own data, and changes only
    /// allowed columns. The handler owns the final write: keep those checks in the same database
    /// transaction as the write. See docs/handlers.md.
    Template {
        /// http (Node >= 20, no npm packages) | command (Python 3 stdlib, stdin/stdout) |
        /// fastapi (Python, FastAPI + uvicorn) | axum (Rust, synapsor-handler crate)
        kind: String,
        /// Write the template to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Overwrite --output if it already exists.
        #[arg(long, requires = "output")]
        force: bool,
    },
}

/// `events webhook --url U`: POST ledger events, one signed envelope per request.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Receiver URL (http:// or https://).
    #[arg(long)]
    pub url: String,
    /// Only this event kind (e.g. proposal_created, proposal_approved).
    #[arg(long)]
    pub kind: Option<String>,
    /// Start after this event id: the last one the receiver got (0 = from the beginning).
    #[arg(long, default_value_t = 0)]
    pub since: i64,
    /// Keep delivering new events until interrupted; retry failed deliveries with backoff.
    #[arg(long)]
    pub follow: bool,
    /// Poll interval for --follow (also the first retry delay).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    pub interval_ms: u64,
    /// Environment variable holding the signing secret (at least 32 bytes). Envelopes are signed
    /// like handler requests: X-Synapsor-Signature: t=..,kid=..,v1=HMAC-SHA256(secret, "t." + body).
    #[arg(long)]
    pub secret_env: Option<String>,
    /// Key id sent in the signature.
    #[arg(long, default_value = synapsor_handler::DEFAULT_KEY_ID)]
    pub key_id: String,
    /// Environment variable holding a bearer token for the receiver.
    #[arg(long)]
    pub auth_token_env: Option<String>,
    /// Timeout of one delivery.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(250..=600_000))]
    pub timeout_ms: u64,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `apply <proposal|latest> [--dry-run] [--json]`: see `docs/writeback.md`.
pub async fn apply(global: &GlobalArgs, args: ApplyArgs) -> Result<i32, CliError> {
    guarded::apply(global, args).await
}

/// `doctor [--json]`: redacted checks of config, ledger, sources, writer, receipts table and
/// handler environment.
pub async fn doctor(global: &GlobalArgs, args: DoctorArgs) -> Result<i32, CliError> {
    guarded::doctor(global, args).await
}

/// `db init-receipts [--source S] [--print] [--admin-url-env NAME]`.
pub async fn db(global: &GlobalArgs, cmd: DbCommand) -> Result<i32, CliError> {
    guarded::db(global, cmd).await
}

pub async fn handler(_global: &GlobalArgs, cmd: HandlerCommand) -> Result<i32, CliError> {
    let HandlerCommand::Template { kind, output, force } = cmd;
    // (file name, contents, how to run it); the sources are embedded so the binary is enough.
    let (file, text, next): (&str, &str, &str) = match kind.as_str() {
        "http" | "node" => (
            "handler.mjs",
            include_str!("../../../templates/http-node/handler.mjs"),
            "node FILE   (Node >= 20, no npm packages)",
        ),
        "command" | "script" => (
            "handler.py",
            include_str!("../../../templates/command/handler.py"),
            "set the executor's command_env to: python3 FILE",
        ),
        "fastapi" | "python" => (
            "app.py",
            include_str!("../../../templates/fastapi/app.py"),
            "pip install fastapi uvicorn && uvicorn app:app --app-dir DIR --port 8080",
        ),
        "axum" | "rust" => (
            "main.rs",
            include_str!("../../../templates/axum/main.rs"),
            "src/main.rs of a crate depending on synapsor-handler, axum, tokio and serde_json",
        ),
        other => {
            return Err(CliError::new(
                "UNKNOWN_TEMPLATE",
                format!("unknown handler template {other:?}; choose http, command, fastapi or axum"),
            ));
        }
    };
    let Some(path) = output else {
        print!("{text}");
        return Ok(0);
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            CliError::new(
                "TEMPLATE_WRITE_FAILED",
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new: the existence check and the creation are one step.
        options.create_new(true);
    }
    let written = options.open(&path).and_then(|mut f| {
        use std::io::Write as _;
        f.write_all(text.as_bytes())
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::new(
                "TEMPLATE_EXISTS",
                format!("{} already exists; pass --force to overwrite it", path.display()),
            ));
        }
        Err(e) => {
            return Err(CliError::new(
                "TEMPLATE_WRITE_FAILED",
                format!("cannot write {}: {e}", path.display()),
            ));
        }
    }
    #[cfg(unix)]
    if matches!(file, "handler.mjs" | "handler.py") {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    let shown = path.display().to_string();
    let dir = path
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    println!("Wrote {shown} ({kind} handler template, {file}).");
    println!("Run: {}", next.replace("FILE", &shown).replace("DIR", &dir));
    println!(
        "Set SYNAPSOR_HANDLER_SIGNING_SECRET (>= 32 bytes, the runner's signing_secret_env) and \
         SYNAPSOR_HANDLER_KEY_ID (its signing_key_id). The handler owns the final write: keep the \
         idempotency, tenant and version checks in the same transaction as the write \
         (docs/handlers.md)."
    );
    Ok(0)
}

pub async fn events_webhook(global: &GlobalArgs, args: WebhookArgs) -> Result<i32, CliError> {
    use std::io::Write as _;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use synapsor_handler::{
        EVENT_ID_HEADER, EVENT_WEBHOOK_SCHEMA, EventEnvelope, SIGNATURE_HEADER, SigningKey, WebhookEvent,
    };

    /// The URL without user info, query or fragment: safe to print.
    fn shown_url(url: &reqwest::Url) -> String {
        let mut u = url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }

    let url = reqwest::Url::parse(&args.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| CliError::new("WEBHOOK_URL_INVALID", "--url must be an http:// or https:// URL"))?;
    let target = shown_url(&url);
    let env_value = |flag: &str, name: &str| -> Result<String, CliError> {
        std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            CliError::new(
                "WEBHOOK_ENV_MISSING",
                format!("{flag}: environment variable {name} is not set"),
            )
        })
    };
    let key = match &args.secret_env {
        Some(name) => Some(
            SigningKey::new(args.key_id.clone(), env_value("--secret-env", name)?)
                .map_err(|e| CliError::new(e.code(), format!("--secret-env {name}: {e}")))?,
        ),
        None => {
            eprintln!("warning: --secret-env not set; envelopes are sent unsigned and receivers cannot verify them");
            None
        }
    };
    let token = match &args.auth_token_env {
        Some(name) => Some(env_value("--auth-token-env", name)?),
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .user_agent(concat!("synapsor-runner-events-webhook/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            CliError::new(
                "WEBHOOK_CLIENT_FAILED",
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })?;
    let store = synapsor_ledger::LedgerStore::open_existing(super::commands::store_path(global))?;

    // One delivery attempt: Ok(HTTP status) on 2xx, Err(reason) otherwise.
    let deliver = async |e: &synapsor_ledger::EventRecord| -> Result<u16, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let envelope = EventEnvelope {
            schema_version: EVENT_WEBHOOK_SCHEMA.to_owned(),
            delivered_at: synapsor_core::time::format_rfc3339_ms(now.as_millis() as i64),
            event: WebhookEvent {
                event_id: e.event_id,
                proposal_id: e.proposal_id.clone(),
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                payload: e.payload.clone(),
                created_at: e.created_at.clone(),
            },
        };
        // The signature covers exactly these bytes.
        let body = serde_json::to_vec(&envelope).map_err(|err| format!("cannot encode the envelope: {err}"))?;
        let mut req = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(EVENT_ID_HEADER, e.event_id.to_string());
        if let Some(key) = &key {
            req = req.header(SIGNATURE_HEADER, key.sign(now.as_secs() as i64, &body));
        }
        if let Some(token) = &token {
            req = req.bearer_auth(token);
        }
        match req.body(body).send().await {
            Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
            Ok(resp) => Err(format!("HTTP {}", resp.status())),
            Err(err) if err.is_timeout() => Err(format!("no answer within {} ms", args.timeout_ms)),
            Err(err) if err.is_connect() => Err("connection failed".to_owned()),
            Err(err) => Err(format!("request failed: {}", err.without_url())),
        }
    };

    let mut cursor = args.since;
    let mut delivered: u64 = 0;
    let mut out = std::io::stdout();
    loop {
        let batch = store.events_after(cursor, args.kind.as_deref(), 100)?;
        for e in &batch {
            let mut attempt: u32 = 0;
            let status = loop {
                match deliver(e).await {
                    Ok(status) => break status,
                    Err(reason) if !args.follow => {
                        return Err(CliError::new(
                            "WEBHOOK_DELIVERY_FAILED",
                            format!(
                                "event #{} ({}) to {target}: {reason}; {delivered} delivered before it. \
                                 Resume with --since {cursor}",
                                e.event_id, e.kind
                            ),
                        ));
                    }
                    Err(reason) => {
                        attempt += 1;
                        // Exponential backoff from --interval-ms, capped at 60 s. The cursor stays
                        // on the failed event: nothing is skipped.
                        let delay = args
                            .interval_ms
                            .saturating_mul(1u64 << (attempt - 1).min(16))
                            .min(60_000);
                        eprintln!(
                            "event #{} to {target}: {reason}; retry {attempt} in {delay} ms",
                            e.event_id
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                            _ = tokio::signal::ctrl_c() => return Ok(0),
                        }
                    }
                }
            };
            cursor = e.event_id;
            delivered += 1;
            let line = if args.json {
                serde_json::json!({"delivered": e.event_id, "kind": e.kind, "proposal_id": e.proposal_id, "status": status})
                    .to_string()
            } else {
                format!("delivered #{} {}", e.event_id, e.kind)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(0); // stdout closed
            }
        }
        let _ = out.flush();
        if batch.len() < 100 {
            if !args.follow {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "delivered": delivered, "cursor": cursor})
        );
    } else {
        println!("{delivered} event(s) delivered to {target}; last event id {cursor}");
    }
    Ok(0)
}

// ------------------------------------------------------------------------------------------------
// `apply`, `doctor` and `db init-receipts`: guarded writeback through `synapsor-executor`.

pub mod guarded {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use serde_json::{Value, json};
    use synapsor_core::ProposalState;
    use synapsor_core::capability::{self, Capability};
    use synapsor_core::changeset::ChangeSet;
    use synapsor_core::config::{self, CapabilityKind, Engine, Mode, RunnerConfig, Source};
    use synapsor_executor::guards::check_capability_matches;
    use synapsor_executor::url::{redact_url, url_user};
    use synapsor_executor::{
        ApplyRequest, Approval, Executor, ExecutorError, Receipt, ReceiptStatus, WriterSettings, check_receipts,
        init_receipts, receipts_ddl, receipts_grants, select_executor,
    };
    use synapsor_ledger::{LedgerError, LedgerStore, ProposalRecord, ReceiptRecord};

    use super::{ApplyArgs, DbCommand, DoctorArgs};
    use crate::cli::GlobalArgs;
    use crate::cli::commands::{CliError, load_config, store_path};
    use synapsor_core::context::{Clock, Env, ProcessEnv, SystemClock};

    fn print_json(v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
    }

    fn env_lookup(name: &str) -> Option<String> {
        ProcessEnv.var(name)
    }

    /// Who runs the apply (event actor): $USER, else `local_operator`.
    fn operator() -> String {
        env_lookup("USER").unwrap_or_else(|| "local_operator".into())
    }

    fn compile(cfg: &RunnerConfig) -> Result<Vec<Capability>, CliError> {
        capability::compile(cfg).map_err(|e| CliError::new(e.code.as_str(), e.message))
    }

    fn require_review(cfg: &RunnerConfig) -> Result<(), CliError> {
        match cfg.mode {
            Mode::Review => Ok(()),
            Mode::Shadow => Err(CliError::new(
                "SHADOW_WRITEBACK_DISABLED",
                "the config is in shadow mode: proposals are recorded for review and never applied; set \"mode\": \"review\" to apply",
            )),
            Mode::ReadOnly => Err(CliError::new(
                "READ_ONLY_WRITEBACK_DISABLED",
                "the config is in read_only mode: there are no proposals to apply; set \"mode\": \"review\" to apply",
            )),
        }
    }

    /// True when `cap` is a proposal capability written by the built-in SQL executor.
    fn uses_sql_update(cfg: &RunnerConfig, cap: &Capability) -> bool {
        cap.kind == CapabilityKind::Proposal && select_executor(cfg, cap).is_ok_and(|e| e.name() == "sql_update")
    }

    /// Distinct approvers bound to the current digest.
    fn approvers(rec: &ProposalRecord) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in rec
            .approvals
            .iter()
            .filter(|a| a.decision == "approved" && a.digest == rec.change_set.digest)
        {
            if !out.iter().any(|p| p.trim().eq_ignore_ascii_case(a.approver.trim())) {
                out.push(a.approver.clone());
            }
        }
        out
    }

    fn target_text(cs: &ChangeSet) -> String {
        let pk = match &cs.source.primary_key.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!(
            "{}.{} where {} = {} (tenant {})",
            cs.source.schema, cs.source.table, cs.source.primary_key.column, pk, cs.scope.tenant_id
        )
    }

    // -------------------------------------------------------------------------------- apply

    pub(super) async fn apply(global: &GlobalArgs, args: ApplyArgs) -> Result<i32, CliError> {
        let (cfg, _) = load_config(&global.config)?;
        let done = apply_proposal(
            &cfg,
            &store_path(global),
            &args.proposal,
            args.dry_run,
            &env_lookup,
            &operator(),
        )
        .await?;
        let view = ApplyView {
            cs: &done.change_set,
            approved_by: &done.approved_by,
            required: done.required,
        };
        Ok(report(&view, &done.receipt, done.state, args.json))
    }

    /// The outcome of [`apply_proposal`].
    #[derive(Debug)]
    pub struct Applied {
        pub receipt: Receipt,
        /// The proposal's state afterwards (unchanged by a dry run).
        pub state: ProposalState,
        pub change_set: ChangeSet,
        pub approved_by: Vec<String>,
        pub required: usize,
    }

    /// Applies one approved proposal of the ledger at `store_path` through its reviewed executor:
    /// the checks that need no database, the compare-and-set to `applying`, the executor, the
    /// receipt and the final state. `env` supplies writer URLs and handler secrets.
    pub async fn apply_proposal(
        cfg: &RunnerConfig,
        store_path: &Path,
        proposal: &str,
        dry_run: bool,
        env: synapsor_executor::EnvLookup<'_>,
        actor: &str,
    ) -> Result<Applied, CliError> {
        require_review(cfg)?;
        let caps = compile(cfg)?;
        let mut store = LedgerStore::open_existing(store_path)?;
        // The ledger re-verifies the digest on every read (PROPOSAL_DIGEST_MISMATCH otherwise).
        let rec = store.get_proposal(proposal)?;
        crate::cli::commands::refuse_managed(&rec)?;
        let cs = rec.change_set.clone();
        let id = cs.proposal_id.clone();
        if cs.mode == "shadow" {
            return Err(CliError::new(
                "SHADOW_WRITEBACK_DISABLED",
                format!("{id} is a shadow proposal: it was recorded for review and is never applied"),
            ));
        }
        let now = SystemClock.now_rfc3339();
        let resume = match rec.state {
            ProposalState::Approved | ProposalState::Failed => false,
            // An earlier apply moved it to applying and did not finish (it crashed, or it is still
            // running). The source's receipt row makes running it again safe: an apply that
            // committed is reported as already_applied.
            ProposalState::Applying => true,
            ProposalState::Applied => return already_applied(&store, &rec, &now, dry_run),
            ProposalState::Conflict => {
                return Err(CliError::new(
                    "PROPOSAL_CONFLICT",
                    format!(
                        "{id} is conflict: the row changed after it was proposed, so this proposal can never be applied; ask the agent to propose again on the current row"
                    ),
                ));
            }
            ProposalState::PendingReview => {
                return Err(CliError::new(
                    "PROPOSAL_NOT_APPROVED",
                    format!(
                        "{id} is pending_review ({} of {} approvals); approve it first: synapsor-runner proposals approve {id}",
                        approvers(&rec).len(),
                        cs.approval.required_approvals
                    ),
                ));
            }
            other => {
                return Err(CliError::new(
                    "PROPOSAL_NOT_APPROVED",
                    format!("{id} is {other}; only approved proposals (or failed ones, to retry) can be applied"),
                ));
            }
        };
        let cap = caps.iter().find(|c| c.name == cs.action).ok_or_else(|| {
            CliError::new(
                "CAPABILITY_CHANGED",
                format!(
                    "{id} was proposed through {}, which is no longer in the reviewed config; it cannot be applied",
                    cs.action
                ),
            )
        })?;
        check_capability_matches(&cs, cap).map_err(|r| CliError::new(r.code.as_str(), r.message))?;

        let approved_by = approvers(&rec);
        let required = cs.approval.required_approvals.max(cap.required_approvals).max(1) as usize;
        if approved_by.len() < required {
            return Err(CliError::new(
                "APPROVALS_INSUFFICIENT",
                format!(
                    "{id} has {} of the {required} approvals the reviewed config requires now",
                    approved_by.len()
                ),
            ));
        }
        // Refusals that need no database are made before any state change.
        let executor: Box<dyn Executor> =
            select_executor(cfg, cap).map_err(|e| CliError::new(e.code(), e.to_string()))?;
        let source = cfg.sources.get(&cap.source).ok_or_else(|| {
            CliError::new(
                "CAPABILITY_CHANGED",
                format!("source {} is no longer in the config", cap.source),
            )
        })?;
        // `read_only` keeps the runner's own SQL away from a source; an app-owned handler does
        // the write itself, which is what such sources are for.
        if source.read_only && executor.name() == "sql_update" {
            return Err(CliError::new(
                "SOURCE_READ_ONLY",
                format!(
                    "source {} is marked read_only in the config; nothing was changed",
                    cap.source
                ),
            ));
        }
        // Sent to app-owned handlers: each distinct approver bound to this digest, with the time
        // of their (first) approval.
        let approvals: Vec<Approval> = approved_by
            .iter()
            .filter_map(|who| {
                rec.approvals
                    .iter()
                    .find(|a| a.decision == "approved" && a.digest == cs.digest && &a.approver == who)
                    .map(|a| Approval {
                        approver: a.approver.clone(),
                        approved_at: a.created_at.clone(),
                    })
            })
            .collect();

        if dry_run {
            let receipt = executor
                .apply(ApplyRequest {
                    change_set: &cs,
                    capability: cap,
                    source_name: &cap.source,
                    source,
                    env,
                    executed_at: now,
                    dry_run: true,
                    approvals,
                })
                .await;
            return Ok(Applied {
                receipt,
                state: rec.state,
                change_set: cs,
                approved_by,
                required,
            });
        }

        if !resume {
            // Compare-and-set before touching the source: of two applies that both read
            // `approved`, only one gets here.
            match store.transition(
                &id,
                rec.state,
                ProposalState::Applying,
                actor,
                json!({"executor": executor.name(), "retry": rec.state == ProposalState::Failed}),
                &now,
            ) {
                Ok(()) => {}
                Err(LedgerError::InvalidTransition { current, .. }) => {
                    return Err(CliError::new(
                        "APPLY_IN_PROGRESS",
                        format!(
                            "{id} moved to {current} while this apply was starting (another apply is running); nothing was changed"
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }

        let receipt = executor
            .apply(ApplyRequest {
                change_set: &cs,
                capability: cap,
                source_name: &cap.source,
                source,
                env,
                executed_at: now,
                dry_run: false,
                approvals,
            })
            .await;
        let state = record(&mut store, &cs, &receipt, actor)?;
        Ok(Applied {
            receipt,
            state,
            change_set: cs,
            approved_by,
            required,
        })
    }

    /// Records the receipt in the ledger and moves the proposal out of `applying`.
    fn record(
        store: &mut LedgerStore,
        cs: &ChangeSet,
        receipt: &Receipt,
        actor: &str,
    ) -> Result<ProposalState, CliError> {
        let id = &cs.proposal_id;
        let after_source = |e: LedgerError| {
            let committed = if receipt.source_database_mutated {
                "the source change IS committed; "
            } else {
                ""
            };
            CliError::new(
                e.code(),
                format!(
                    "{e}. Apply finished with {} but the ledger could not record it: {committed}run `synapsor-runner apply {id}` again to record it (the source's receipts table keeps it from being written twice)",
                    receipt.status
                ),
            )
        };
        let now = SystemClock.now_rfc3339();
        store
            .record_attempt_receipt(&ReceiptRecord {
                proposal_id: id.clone(),
                idempotency_key: receipt.idempotency_key.clone(),
                status: receipt.status.as_str().to_owned(),
                rows_affected: receipt.rows_affected,
                safe_error_code: receipt.safe_error_code.clone(),
                receipt: serde_json::to_value(receipt).unwrap_or(Value::Null),
                created_at: now.clone(),
            })
            .map_err(after_source)?;
        let target = match receipt.status {
            ReceiptStatus::Applied | ReceiptStatus::AlreadyApplied => ProposalState::Applied,
            ReceiptStatus::Conflict => ProposalState::Conflict,
            ReceiptStatus::Failed | ReceiptStatus::WouldApply => ProposalState::Failed,
        };
        let payload = json!({
            "receipt_status": receipt.status.as_str(),
            "receipt_hash": receipt.receipt_hash,
            "safe_error_code": receipt.safe_error_code,
            "idempotency_key": receipt.idempotency_key,
        });
        match store.transition(id, ProposalState::Applying, target, actor, payload.clone(), &now) {
            Ok(()) => Ok(target),
            // Another apply of the same proposal finished first.
            Err(LedgerError::InvalidTransition { current, .. }) => {
                if current == ProposalState::Failed && target == ProposalState::Applied {
                    store
                        .transition(
                            id,
                            ProposalState::Failed,
                            ProposalState::Applying,
                            actor,
                            payload.clone(),
                            &now,
                        )
                        .and_then(|()| {
                            store.transition(
                                id,
                                ProposalState::Applying,
                                ProposalState::Applied,
                                actor,
                                payload,
                                &now,
                            )
                        })
                        .map_err(after_source)?;
                    return Ok(ProposalState::Applied);
                }
                Ok(current)
            }
            Err(e) => Err(after_source(e)),
        }
    }

    /// `apply` on an applied proposal: the ledger holds its receipt; the source is not touched.
    fn already_applied(
        store: &LedgerStore,
        rec: &ProposalRecord,
        now: &str,
        dry_run: bool,
    ) -> Result<Applied, CliError> {
        let cs = &rec.change_set;
        let receipts = store.receipts_for(&cs.proposal_id)?;
        let applied = receipts
            .iter()
            .rev()
            .find(|r| r.status == "applied" || r.status == "already_applied");
        let mut r = Receipt::new(cs, &cs.writeback.executor, now, dry_run);
        r.status = ReceiptStatus::AlreadyApplied;
        r.message = "already applied: the ledger holds its receipt; the source was not touched again".into();
        r.applied_receipt_hash = applied.and_then(|a| a.receipt.get("receipt_hash")?.as_str().map(str::to_owned));
        r.check(
            "ledger",
            true,
            match applied {
                Some(a) => format!("applied receipt recorded at {}", a.created_at),
                None => "the proposal is applied".to_owned(),
            },
        );
        Ok(Applied {
            receipt: r.seal(),
            state: rec.state,
            change_set: cs.clone(),
            approved_by: approvers(rec),
            required: cs.approval.required_approvals as usize,
        })
    }

    struct ApplyView<'a> {
        cs: &'a ChangeSet,
        approved_by: &'a [String],
        required: usize,
    }

    /// Prints the checklist (or JSON) and returns the exit code.
    fn report(v: &ApplyView<'_>, r: &Receipt, state: ProposalState, json: bool) -> i32 {
        let cs = v.cs;
        let code = if r.status.is_success() { 0 } else { 1 };
        if json {
            print_json(&json!({
                "ok": code == 0,
                "proposal_id": cs.proposal_id,
                "state": state,
                "dry_run": r.dry_run,
                "receipt": r,
            }));
            return code;
        }
        let mark = |ok: bool| if ok { "  ok  " } else { "  !!  " };
        println!(
            "{} {} ({}) via {}",
            if r.dry_run { "Dry run of" } else { "Apply" },
            cs.proposal_id,
            cs.action,
            r.executor
        );
        println!("      target {}", target_text(cs));
        println!(
            "{}approved by {} ({} of {} required)",
            mark(true),
            if v.approved_by.is_empty() {
                "-".to_owned()
            } else {
                v.approved_by.join(", ")
            },
            v.approved_by.len(),
            v.required
        );
        println!("{}digest verified {}", mark(true), cs.digest);
        for c in &r.checks {
            let label = match c.name.as_str() {
                "policy" => "allowed columns",
                "tenant_guard" => "tenant guard",
                "version_guard" => "version guard",
                "row_lock" => "row lock",
                "receipt_claim" => "idempotency receipt",
                "single_row_update" => "single-row update",
                "receipt_marked" => "receipt committed",
                "transition_guards" => "transition guards",
                "handler_request" => "handler request",
                "handler_call" => "handler answer",
                other => other,
            };
            println!("{}{label}: {}", mark(c.passed), c.detail);
        }
        let handler = r.executor != "sql_update";
        let rows = if r.dry_run && r.status == ReceiptStatus::WouldApply && handler {
            "0 (dry run: the handler would apply it)".to_owned()
        } else if r.dry_run && r.status == ReceiptStatus::WouldApply {
            "0 (dry run: 1 row matched, rolled back)".to_owned()
        } else {
            r.rows_affected.to_string()
        };
        println!("      rows affected {rows}");
        match &r.safe_error_code {
            Some(code) => println!("Result  {} {code}: {}", r.status, r.message),
            None => println!("Result  {}: {}", r.status, r.message),
        }
        println!("Receipt {} (idempotency key {})", r.receipt_hash, r.idempotency_key);
        let yes_no = if r.source_database_mutated { "yes" } else { "no" };
        if handler {
            // The runner never writes the source itself here; the app-owned handler does.
            println!("The handler reported a write in this run: {yes_no}");
        } else {
            println!("Source database changed by this run: {yes_no}");
        }
        println!("State   {state}");
        match (r.status, r.dry_run) {
            (_, true) => println!("Dry run: nothing was written and nothing was recorded in the ledger."),
            (ReceiptStatus::Conflict, false) => println!(
                "The row changed after the agent saw it (or is not in this tenant). This proposal is closed: ask the agent to propose again."
            ),
            (ReceiptStatus::Failed, false)
                if handler
                    && matches!(
                        r.safe_error_code.as_deref(),
                        Some("HANDLER_TIMEOUT" | "HANDLER_UNAVAILABLE" | "HANDLER_RECEIPT_INVALID")
                    ) =>
            {
                println!(
                    "The runner cannot tell whether the handler wrote. Retry with: synapsor-runner apply {} (the same idempotency key keeps the handler from applying it twice)",
                    cs.proposal_id
                )
            }
            (ReceiptStatus::Failed, false) => println!(
                "Nothing was written. Fix the cause, then retry with: synapsor-runner apply {}",
                cs.proposal_id
            ),
            _ => {}
        }
        println!("Replay  synapsor-runner replay {}", cs.proposal_id);
        code
    }

    // -------------------------------------------------------------------------------- doctor

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

    /// `schema -> tables` written by sql_update.
    type Schemas = BTreeMap<String, Vec<String>>;

    /// `schema -> tables` of the sql_update proposal capabilities on `source`.
    fn write_targets(cfg: &RunnerConfig, caps: &[Capability], source: &str) -> Schemas {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in caps.iter().filter(|c| c.source == source && uses_sql_update(cfg, c)) {
            let schema = if c.engine == Engine::Sqlite {
                "main".to_owned()
            } else {
                c.read.schema.as_str().to_owned()
            };
            let tables = out.entry(schema).or_default();
            if !tables.iter().any(|t| t == c.read.table.as_str()) {
                tables.push(c.read.table.as_str().to_owned());
            }
        }
        out
    }

    async fn source_checks(cfg: &RunnerConfig, caps: &[Capability], name: &str, src: &Source, items: &mut Items) {
        let check = format!("source {name}");
        let read_url = env_lookup(&src.read_url_env);
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
                        Ok(Err(e)) => {
                            items.push(Level::Fail, &check, format!("not reachable: {}: {}", e.code, e.message))
                        }
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
        let Some(write_url) = env_lookup(write_env) else {
            items.push(
                if needs_writer { Level::Fail } else { Level::Warn },
                &check,
                format!("write URL: environment variable {write_env} is not set (apply fails with WRITER_CREDENTIAL_MISSING)"),
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
            if env_lookup(var).is_some() {
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
                config::Executor::SqlUpdate {} => {
                    items.push(Level::Ok, &check, "sql_update (uses the source's writer)")
                }
                config::Executor::HttpHandler {
                    url_env,
                    auth,
                    signing_secret_env,
                    ..
                } => {
                    env_item(items, &check, "handler URL", url_env, true);
                    if let Some(url) = env_lookup(url_env) {
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
                    if let Some(program) =
                        env_lookup(command_env).and_then(|c| c.split_whitespace().next().map(str::to_owned))
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
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
    }

    pub(super) async fn doctor(global: &GlobalArgs, args: DoctorArgs) -> Result<i32, CliError> {
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
                items.push(Level::Fail, "config", format!("{}: {}", e.code, e.message));
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
            match compile(cfg) {
                Err(e) => items.push(Level::Fail, "capabilities", format!("{}: {}", e.code, e.message)),
                Ok(caps) => {
                    for (name, src) in &cfg.sources {
                        source_checks(cfg, &caps, name, src, &mut items).await;
                    }
                }
            }
            executor_checks(cfg, &mut items);
        }
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

    // -------------------------------------------------------------------------------- db

    pub(super) async fn db(global: &GlobalArgs, cmd: DbCommand) -> Result<i32, CliError> {
        let DbCommand::InitReceipts {
            source,
            print,
            admin_url_env,
        } = cmd;
        let (cfg, _) = load_config(&global.config)?;
        let caps = compile(&cfg)?;
        let mut targets: Vec<(&String, &Source, Schemas)> = Vec::new();
        for (name, src) in &cfg.sources {
            if source.as_ref().is_some_and(|s| s != name) {
                continue;
            }
            let t = write_targets(&cfg, &caps, name);
            if t.is_empty() && source.is_none() {
                continue;
            }
            if t.is_empty() {
                return Err(CliError::new(
                    "NO_SQL_UPDATE_CAPABILITIES",
                    format!("no sql_update proposal capability uses source {name}, so it needs no receipts table"),
                ));
            }
            targets.push((name, src, t));
        }
        if let Some(s) = &source
            && !cfg.sources.contains_key(s)
        {
            return Err(CliError::new(
                "SOURCE_NOT_FOUND",
                format!("source {s:?} is not in the config"),
            ));
        }
        if targets.is_empty() {
            return Err(CliError::new(
                "NO_SQL_UPDATE_CAPABILITIES",
                "no sql_update proposal capability is configured, so no receipts table is needed",
            ));
        }
        let err = |e: ExecutorError| CliError::new(e.code(), e.to_string());

        if print {
            for (name, src, schemas) in &targets {
                let writer = src
                    .write_url_env
                    .as_deref()
                    .and_then(env_lookup)
                    .and_then(|u| url_user(&u));
                println!("-- source {name} ({})", src.engine.as_str());
                if src.engine != Engine::Sqlite && writer.is_none() {
                    println!(
                        "-- replace synapsor_writer with the writer role of {}",
                        src.write_url_env.as_deref().unwrap_or("the writer URL")
                    );
                }
                let role = writer.unwrap_or_else(|| "synapsor_writer".to_owned());
                for (schema, tables) in schemas {
                    println!("{}", receipts_ddl(src.engine, schema).map_err(err)?);
                    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
                    print!("{}", receipts_grants(src.engine, &role, schema, &tables).map_err(err)?);
                }
                println!();
            }
            return Ok(0);
        }

        for (name, src, schemas) in &targets {
            let url_env = admin_url_env
                .as_deref()
                .or(src.write_url_env.as_deref())
                .ok_or_else(|| {
                    CliError::new(
                        "WRITER_CREDENTIAL_MISSING",
                        format!("source {name} has no write_url_env; pass --admin-url-env NAME (an admin URL)"),
                    )
                })?;
            let url = env_lookup(url_env).ok_or_else(|| {
                CliError::new(
                    "WRITER_CREDENTIAL_MISSING",
                    format!("environment variable {url_env} is not set"),
                )
            })?;
            // When an admin creates the table, grant the writer (the user of the write URL).
            let writer = match &admin_url_env {
                Some(_) if src.engine != Engine::Sqlite => src
                    .write_url_env
                    .as_deref()
                    .and_then(env_lookup)
                    .and_then(|u| url_user(&u)),
                _ => None,
            };
            let settings = WriterSettings::for_source(src);
            for (schema, tables) in schemas {
                let report = init_receipts(src.engine, &url, schema, writer.as_deref(), &settings)
                    .await
                    .map_err(|e| match e {
                        ExecutorError::PermissionDenied { .. } => CliError::new(
                            e.code(),
                            format!(
                                "{e}. The user of {url_env} may not create tables or grant (a least-privilege writer should not): rerun with --admin-url-env NAME naming a variable with an admin URL, or use --print and hand the SQL to a DBA"
                            ),
                        ),
                        other => err(other),
                    })?;
                println!(
                    "{} {} (source {name}, connected as {})",
                    if report.created { "Created" } else { "Already present:" },
                    report.table,
                    redact_url(&url)
                );
                for g in &report.granted_to {
                    println!("  granted SELECT, INSERT, UPDATE on it to {g}");
                }
                if admin_url_env.is_some() && src.engine != Engine::Sqlite && report.granted_to.is_empty() {
                    println!(
                        "  no writer was granted (the write URL is not set, or it is the admin itself): run the GRANTs from --print"
                    );
                }
                if src.engine != Engine::Sqlite {
                    println!(
                        "  the writer also needs SELECT, UPDATE on {} (see --print); check with `synapsor-runner doctor`",
                        tables
                            .iter()
                            .map(|t| format!("{schema}.{t}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        Ok(0)
    }
}
