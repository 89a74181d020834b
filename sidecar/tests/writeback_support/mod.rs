//! Support for the writeback CLI tests: the test databases of `synapsor-testdb` with the runner's
//! engine type and receipts table, a config file and ledger in a temp folder, proposals made
//! through the real runtime, and the `synapsor-runner` binary run as a child process.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use synapsor_core::capability::Caller;

use serde_json::{Value, json};
use synapsor_core::config::{self, Engine, ResultFormat};
use synapsor_core::context::{Clock, SystemClock};
use synapsor_ledger::{Ledger, LedgerStore, ProposalRecord};
use synapsor_runner::ids::SequentialIds;
use synapsor_runner::runtime::{Runtime, RuntimeDeps};
use synapsor_testdb::{Runner, TestDb};

/// A source database with a read role and a least-privilege writer (see `synapsor-testdb`).
pub type WDb = TestDb<Engine>;

/// The executor's receipts table, for the test databases.
pub const RUNNER: Runner<Engine> = Runner {
    receipts_ddl: |e, schema| synapsor_executor::receipts_ddl(e, schema).unwrap(),
    receipts_grants: |e, schema, writer| synapsor_executor::receipts_grants(e, writer, schema, &[]).unwrap(),
};

/// The reviewed config of these tests, with `extra` merged at the top level.
pub fn config_doc(db: &WDb, ledger: &std::path::Path, extra: Value) -> Value {
    let inv = json!({"schema": db.schema, "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"});
    let mut doc = json!({
        "version": 1,
        "mode": "review",
        "result_format": 2,
        "storage": {"sqlite_path": ledger.display().to_string()},
        "sources": {"main": {"engine": db.engine.as_str(), "read_url_env": "TEST_READ_URL", "write_url_env": "TEST_WRITE_URL", "statement_timeout_ms": 4000}},
        "trusted_context": {"provider": "environment"},
        "capabilities": [
            {
                "name": "billing.propose_late_fee", "kind": "proposal", "source": "main",
                "description": "Propose a late fee.", "target": inv,
                "args": {"invoice_id": {"type": "string", "max_length": 64}, "late_fee_cents": {"type": "number", "minimum": 0, "maximum": 100000}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents"],
                "patch": {"late_fee_cents": {"from_arg": "late_fee_cents"}},
                "allowed_columns": ["late_fee_cents"],
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                "conflict_guard": {"column": "updated_at"}
            }
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

/// A config file, a ledger and the env the CLI runs with.
pub struct Setup {
    pub db: WDb,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub store_path: PathBuf,
    pub doc: Value,
    pub runtime: Runtime,
}

impl Setup {
    pub fn new(db: WDb, extra: Value) -> Setup {
        Setup::with_store_in(db, extra, None)
    }

    /// The same with the ledger in `store_dir` (another filesystem, say) instead of the temp folder.
    pub fn with_store_in(db: WDb, extra: Value, store_dir: Option<&std::path::Path>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store_path = store_dir.unwrap_or(dir.path()).join("ledger.db");
        let config_path = dir.path().join("synapsor.runner.json");
        let doc = config_doc(&db, &store_path, extra);
        std::fs::write(&config_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let (cfg, _) =
            config::parse_config(&doc.to_string()).unwrap_or_else(|r| panic!("test config invalid: {:?}", r.errors));
        let ledger = Ledger::new(LedgerStore::open(&store_path).unwrap());
        let env = HashMap::from([
            ("TEST_READ_URL".to_owned(), db.read_url.clone()),
            ("SYNAPSOR_TENANT_ID".to_owned(), "acme".to_owned()),
            ("SYNAPSOR_PRINCIPAL".to_owned(), "agent.test".to_owned()),
        ]);
        let runtime = Runtime::new(
            cfg,
            RuntimeDeps {
                ledger,
                env: Arc::new(env),
                clock: Arc::new(SystemClock),
                ids: Arc::new(SequentialIds::default()),
                result_format: Some(ResultFormat::V2),
                publisher: None,
            },
        )
        .unwrap();
        Setup {
            db,
            dir,
            config_path,
            store_path,
            doc,
            runtime,
        }
    }

    /// Calls a proposal tool through the runtime; returns the proposal id.
    pub async fn propose(&self, tool: &str, args: Value) -> String {
        let (v, is_error) = self.runtime.call_envelope(tool, &args, &Caller::Process).await;
        assert!(!is_error, "{v}");
        v["proposal"]["id"].as_str().unwrap().to_owned()
    }

    pub fn store(&self) -> LedgerStore {
        LedgerStore::open_existing(&self.store_path).unwrap()
    }

    pub fn proposal(&self, id: &str) -> ProposalRecord {
        self.store().get_proposal(id).unwrap()
    }

    pub fn state(&self, id: &str) -> String {
        self.proposal(id).state.as_str().to_owned()
    }

    pub fn approve(&self, id: &str) {
        let p = self.proposal(id);
        let now = SystemClock.now_rfc3339();
        self.store()
            .approve(id, &p.change_set.digest, "alice", Some("reviewed"), &now)
            .unwrap();
    }

    /// The CLI command with the config, the store and a clean environment (plus `env`).
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
        cmd.arg("--config")
            .arg(&self.config_path)
            .arg("--store")
            .arg(&self.store_path)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "operator.test")
            .env("TEST_READ_URL", &self.db.read_url)
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// The command `apply <id> --json [extra]` with `env`.
    pub fn apply_command(&self, id: &str, extra: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut args = vec!["apply", id, "--json"];
        args.extend_from_slice(extra);
        self.command(&args, env)
    }

    /// `apply <id> --json [extra]` with the writer URL set (`writer: false` leaves it unset).
    pub fn apply(&self, id: &str, extra: &[&str], writer: bool) -> (i32, Value) {
        let env: Vec<(&str, &str)> = if writer {
            vec![("TEST_WRITE_URL", self.db.write_url.as_str())]
        } else {
            vec![]
        };
        apply_json(&self.apply_command(id, extra, &env).output().unwrap())
    }
}

/// The exit code and the JSON that `apply --json` printed.
pub fn apply_json(out: &Output) -> (i32, Value) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "apply printed no JSON: stdout={stdout} stderr={}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// The receipt's status in the output of `apply --json`.
pub fn status(v: &Value) -> &str {
    v["receipt"]["status"].as_str().unwrap_or("<none>")
}

/// The receipt's error code in the output of `apply --json`, or the refusal's; `-` for none.
pub fn code(v: &Value) -> &str {
    v["receipt"]["safe_error_code"]
        .as_str()
        .or_else(|| v["error"]["code"].as_str())
        .unwrap_or("-")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An rmcp client of the real binary.
pub type McpClient = rmcp::service::RunningService<rmcp::RoleClient, ()>;

/// The real binary serving `config` (already written) for tenant `acme` as `principal`, with a
/// clean environment, in `dir`: over stdio, or over Streamable HTTP on a free loopback port
/// with the bearer `http_token`. Returns a connected rmcp client, and the HTTP server's child.
pub async fn serve_mcp(
    db: &WDb,
    config: &std::path::Path,
    dir: &std::path::Path,
    principal: &str,
    http_token: Option<&str>,
) -> (McpClient, Option<tokio::process::Child>) {
    use rmcp::ServiceExt;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
    use std::time::{Duration, Instant};

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    cmd.arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TEST_READ_URL", &db.read_url)
        .env("SYNAPSOR_TENANT_ID", "acme")
        .env("SYNAPSOR_PRINCIPAL", principal)
        .current_dir(dir)
        .kill_on_drop(true);
    let Some(token) = http_token else {
        cmd.args(["mcp", "serve"]);
        let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
        return (client, None);
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cmd.args(["mcp", "serve-streamable-http", "--port", &port.to_string()])
        .env("SYNAPSOR_RUNNER_HTTP_TOKEN", token)
        .stdout(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the HTTP server did not listen");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = StreamableHttpClientTransportConfig::with_uri(format!("http://127.0.0.1:{port}/mcp"))
        .auth_header(token.to_owned());
    let client = ().serve(StreamableHttpClientTransport::from_config(transport)).await.unwrap();
    (client, Some(child))
}
