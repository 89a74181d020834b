//! Starting `synapsor-runner` the way MCP clients do: as a stdio child of an rmcp client, or as
//! a Streamable HTTP server; the same for a peer MCP server given as a shell command
//! (`--compare`); plus the raw cold-start probe and RSS readings from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rmcp::model::{CallToolRequestParams, ClientRequest, PingRequest};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Name of the environment variable holding the HTTP bearer token.
pub const TOKEN_ENV: &str = "SYNAPSOR_BENCH_HTTP_TOKEN";

pub type Client = RunningService<RoleClient, ()>;

/// Environment variables a `--compare` command gets besides the runner's own: the config file and
/// a store path of its own for this server (also substituted for `{config}` and `{store}`).
pub const PEER_CONFIG_ENV: &str = "SYNAPSOR_BENCH_CONFIG";
pub const PEER_STORE_ENV: &str = "SYNAPSOR_BENCH_STORE";

/// Which stdio MCP server a [`Launcher`] starts.
#[derive(Debug, Clone)]
pub enum Server {
    /// `synapsor-runner --config <config> --store <store> mcp serve`.
    Runner(PathBuf),
    /// A peer given as a shell command (`sh -c 'exec <command>'`), with `{config}` and `{store}`
    /// replaced by the (shell-quoted) paths.
    Peer(String),
}

/// How to start the server: which one, config, environment, where logs go.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub server: Server,
    pub config: PathBuf,
    /// The only environment the server gets (plus `PATH`, and `HOME` for a peer): read URL,
    /// tenant, principal, token.
    pub env: Vec<(String, String)>,
    pub log_dir: PathBuf,
}

/// `'…'` quoting for `sh`: the path as one word whatever it holds.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The peer's command line with its placeholders filled in.
pub fn peer_command_line(template: &str, config: &Path, store: &Path) -> String {
    template
        .replace("{config}", &shell_quote(&config.display().to_string()))
        .replace("{store}", &shell_quote(&store.display().to_string()))
}

impl Launcher {
    /// The same setup serving through another MCP server.
    pub fn for_peer(&self, command: &str) -> Launcher {
        Launcher {
            server: Server::Peer(command.to_owned()),
            ..self.clone()
        }
    }

    /// The stdio server's command (`mcp serve` for the runner; `http_args` replace it for HTTP).
    fn command(&self, store: &Path, args: &[&str], log: &str) -> anyhow::Result<Command> {
        let mut cmd = match &self.server {
            Server::Runner(bin) => {
                let mut cmd = Command::new(bin);
                cmd.arg("--config")
                    .arg(&self.config)
                    .arg("--store")
                    .arg(store)
                    .args(args);
                cmd
            }
            Server::Peer(template) => {
                let mut cmd = Command::new("sh");
                // `exec`, so the pid (RSS, exit) is the server's, not the shell's.
                cmd.arg("-c")
                    .arg(format!("exec {}", peer_command_line(template, &self.config, store)));
                cmd
            }
        };
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .stderr(self.log(log)?);
        if let Server::Peer(_) = &self.server {
            // Node and Python servers look for their caches and packages under HOME.
            if let Some(home) = std::env::var_os("HOME") {
                cmd.env("HOME", home);
            }
            cmd.env(PEER_CONFIG_ENV, &self.config).env(PEER_STORE_ENV, store);
        }
        Ok(cmd)
    }

    /// The server's stderr (its logs) goes to `<log_dir>/<name>.stderr.log`.
    fn log(&self, name: &str) -> anyhow::Result<Stdio> {
        let path = self.log_dir.join(format!("{name}.stderr.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Stdio::from(file))
    }

    /// Spawns the stdio server as the child of an rmcp client and completes `initialize`.
    pub async fn stdio(&self, store: &Path, log: &str) -> anyhow::Result<(Client, u32)> {
        let cmd = self.command(store, &["mcp", "serve"], log)?;
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(self.log(log)?)
            .spawn()
            .with_context(|| format!("spawning the stdio server ({log})"))?;
        let pid = transport.id().context("server pid")?;
        let client = ().serve(transport).await.with_context(|| {
            format!(
                "MCP initialize over stdio ({log}); see {}/{log}.stderr.log",
                self.log_dir.display()
            )
        })?;
        Ok((client, pid))
    }

    /// Starts `mcp serve-streamable-http` on `port` (with `extra` flags) and waits until
    /// `/healthz` answers. Only for the runner.
    pub async fn http_server(&self, store: &Path, port: u16, log: &str, extra: &[&str]) -> anyhow::Result<HttpServer> {
        if let Server::Peer(_) = &self.server {
            bail!("a --compare server is measured over stdio only");
        }
        let port_s = port.to_string();
        let mut args = vec![
            "mcp",
            "serve-streamable-http",
            "--port",
            &port_s,
            "--auth-token-env",
            TOKEN_ENV,
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(store, &args, log)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let mut child = cmd
            .spawn()
            .context("spawning synapsor-runner mcp serve-streamable-http")?;
        let pid = child.id().context("runner pid")?;
        let http = reqwest::Client::builder().build()?;
        let health = format!("http://127.0.0.1:{port}/healthz");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the HTTP server exited early ({status}); see {log}.stderr.log");
            }
            if let Ok(r) = http.get(&health).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("the HTTP server did not answer {health} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(HttpServer {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}/mcp"),
            http,
        })
    }
}

/// A running Streamable HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    child: Child,
    pub pid: u32,
    pub url: String,
    /// One keep-alive connection pool shared by all sessions (rmcp's default client disables
    /// keep-alive; MCP clients in practice keep connections open).
    http: reqwest::Client,
}

impl HttpServer {
    /// Opens one MCP session (initialize + initialized).
    pub async fn session(&self, token: &str) -> anyhow::Result<Client> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str()).auth_header(token);
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        ().serve(transport).await.context("MCP initialize over HTTP")
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// What a tool call gave back, as far as the benchmark checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A proposal that deduplicated onto an open one (`proposal.existing == true`).
    OkExisting,
    Error,
}

/// Calls `tool` with `{"<arg>": id}` and classifies the v2 envelope.
pub async fn call(peer: &Peer<RoleClient>, tool: &'static str, arg: &'static str, id: &str) -> anyhow::Result<Outcome> {
    let mut args = Map::new();
    args.insert(arg.to_owned(), Value::String(id.to_owned()));
    let result = peer
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .with_context(|| format!("calling {tool}"))?;
    let body = result.structured_content.unwrap_or(Value::Null);
    if result.is_error == Some(true) || body["ok"] != json!(true) {
        return Ok(Outcome::Error);
    }
    Ok(if body["proposal"]["existing"] == json!(true) {
        Outcome::OkExisting
    } else {
        Outcome::Ok
    })
}

/// Calls `tool` with `args` and returns the v2 envelope's error code, `None` when `ok`.
pub async fn call_code(
    peer: &Peer<RoleClient>,
    tool: &'static str,
    args: Map<String, Value>,
) -> anyhow::Result<Option<String>> {
    let result = peer
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .with_context(|| format!("calling {tool}"))?;
    let body = result.structured_content.unwrap_or(Value::Null);
    if result.is_error != Some(true) && body["ok"] == json!(true) {
        return Ok(None);
    }
    Ok(Some(body["error"]["code"].as_str().unwrap_or("<no code>").to_owned()))
}

/// A `ping` round trip: the transport and JSON-RPC framing alone, no tool and no database.
pub async fn ping(peer: &Peer<RoleClient>) -> anyhow::Result<bool> {
    peer.send_request(ClientRequest::PingRequest(PingRequest::default()))
        .await
        .context("ping")?;
    Ok(true)
}

/// Closes a stdio client (EOF to the server) and waits until the process is gone.
pub async fn close_stdio(client: Client, pid: u32) -> anyhow::Result<()> {
    let _ = client.cancel().await;
    wait_gone(pid).await
}

/// Waits up to 5 s for `pid` to exit (so its store lease is released).
pub async fn wait_gone(pid: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_alive(pid) {
        if Instant::now() > deadline {
            bail!("runner process {pid} did not exit within 5 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn proc_alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid> until reaped; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Resident set (`VmRSS`), its high-water mark (`VmHWM`), and the split of the resident set into
/// anonymous memory (heap, stacks) and file-backed pages (mostly the binary's own code), in KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Rss {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    pub threads: u64,
}

pub fn rss(pid: u32) -> anyhow::Result<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Ok(Rss {
        rss_kib: field("VmRSS:").context("VmRSS")?,
        hwm_kib: field("VmHWM:").context("VmHWM")?,
        anon_kib: field("RssAnon:").unwrap_or(0),
        file_kib: field("RssFile:").unwrap_or(0),
        threads: field("Threads:").unwrap_or(0),
    })
}

const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"synapsor-bench","version":"0"}}}"#,
    "\n"
);

/// One cold start: wall time from spawning the stdio server to the first byte-complete line of
/// the `initialize` response on stdout. The request is written right after spawn, as clients do.
pub async fn cold_start(launcher: &Launcher, store: &Path) -> anyhow::Result<Duration> {
    let mut cmd = launcher.command(store, &["mcp", "serve"], "cold-start")?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("spawning the stdio server")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let stdout = child.stdout.take().context("stdout")?;
    stdin.write_all(INITIALIZE.as_bytes()).await?;
    stdin.flush().await?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("no initialize response within 10 s")??
        .context("the server closed stdout before answering initialize")?;
    let elapsed = t0.elapsed();
    let v: Value = serde_json::from_str(&line).context("initialize response is not JSON")?;
    if v["id"] != json!(1) || v.get("result").is_none() {
        bail!("unexpected initialize response: {line}");
    }
    drop(stdin);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        child.start_kill()?;
        child.wait().await?;
    }
    Ok(elapsed)
}

/// A free loopback TCP port (bound and released; the runner binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peer_placeholders_are_one_shell_word_each() {
        let line = peer_command_line(
            "node server.js --config {config} --store {store}",
            Path::new("/tmp/a b/it's.json"),
            Path::new("/tmp/s.db"),
        );
        assert_eq!(
            line,
            r"node server.js --config '/tmp/a b/it'\''s.json' --store '/tmp/s.db'"
        );
        // What sh makes of it: the two paths come back whole.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {}",
                peer_command_line("{config} {store}", Path::new("/x y/it's"), Path::new("/z"))
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/x y/it's\n/z\n");
    }
}
