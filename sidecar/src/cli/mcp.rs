//! `mcp serve` (stdio), `mcp serve-streamable-http` and `mcp client-config`, and what the other
//! serving commands (`up`, `smoke call`) share: the serve and HTTP options, building the runtime
//! over the config's sources and the ledger, the store lease and the shutdown signal.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use synapsor_core::capability::{self, Caller, Capability};
use synapsor_core::config::{self, CapabilityKind, ContextProvider, ContextSource, Mode, ResultFormat, RunnerConfig};
use synapsor_core::context::{Clock, Env, ProcessEnv, SystemClock};
use synapsor_core::tools::AliasMode;
use synapsor_identity::Verifier;
use synapsor_ledger::{LeaseInfo, Ledger, LedgerStore, StoreLease};
use tokio_util::sync::CancellationToken;

use super::common::{CliError, GlobalArgs, load_config, store_path};
use crate::client_config::{ClientConfigOptions, ClientKind, ServerEnv, Transport, client_config};
use crate::ids::RandomIds;
use crate::kube_store::{KubeProposals, ProposalPublisher};
use crate::mcp::McpServer;
use crate::mcp::http::{HttpAuth, HttpOptions, serve};
use crate::runtime::{Runtime, RuntimeDeps};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    #[value(name = "v1", alias = "1")]
    V1,
    #[value(name = "v2", alias = "2")]
    V2,
}

impl From<FormatArg> for ResultFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::V1 => ResultFormat::V1,
            FormatArg::V2 => ResultFormat::V2,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AliasArg {
    Canonical,
    Openai,
    Both,
}

impl From<AliasArg> for AliasMode {
    fn from(a: AliasArg) -> Self {
        match a {
            AliasArg::Canonical => AliasMode::Canonical,
            AliasArg::Openai => AliasMode::Openai,
            AliasArg::Both => AliasMode::Both,
        }
    }
}

/// Options shared by everything that serves tools.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Result envelope format; default from the config (`result_format`), else v1.
    #[arg(long, value_enum)]
    pub result_format: Option<FormatArg>,
    /// Tool names: canonical (`billing.inspect_invoice`), openai (`billing__inspect_invoice`) or both.
    #[arg(long, value_enum, default_value = "canonical")]
    pub alias_mode: AliasArg,
    /// Where review proposals go: `local` (the ledger; approve with `proposals approve`) or
    /// `kubernetes` (a `Proposal` resource in --kube-namespace, approved with `kubectl annotate` and
    /// applied by synapsor-controller; the ledger keeps a mirror). Kubernetes uses the pod's
    /// service account, else KUBECONFIG.
    #[arg(long, value_enum, env = "SYNAPSOR_PROPOSAL_STORE", default_value = "local")]
    pub proposal_store: ProposalStoreArg,
    /// Namespace for `Proposal`s (kubernetes store). Default: the pod's namespace, else the
    /// KUBECONFIG context's.
    #[arg(long, env = "SYNAPSOR_KUBE_NAMESPACE")]
    pub kube_namespace: Option<String>,
    /// How long a published proposal can be approved and applied (kubernetes store), e.g. `30m`,
    /// `24h`, `7d`.
    #[arg(long, env = "SYNAPSOR_PROPOSAL_TTL", default_value = "24h")]
    pub proposal_ttl: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProposalStoreArg {
    Local,
    Kubernetes,
}

/// Streamable HTTP options.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address to bind: an IP address, or `localhost` for 127.0.0.1. Anything but loopback also
    /// needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_bind_host)]
    pub host: IpAddr,
    #[arg(long, default_value_t = 8766)]
    pub port: u16,
    /// Environment variable holding the bearer token clients must send.
    #[arg(long, default_value = "SYNAPSOR_RUNNER_HTTP_TOKEN")]
    pub auth_token_env: String,
    /// Serve without a token (only on a loopback address; for local development).
    #[arg(long)]
    pub dev_no_auth: bool,
    /// Allow a non-loopback bind (e.g. the sidecar in a pod).
    #[arg(long)]
    pub allow_remote: bool,
    /// Extra Host header value to accept (service DNS name, pod IP). Repeatable.
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,
    /// Browser Origin to accept (e.g. http://localhost:6274). Repeatable.
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// Maximum open MCP sessions. When reached, a new session takes the place of the least
    /// recently used idle one (of the client holding the most), or gets 429 (with Retry-After)
    /// if none is idle.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Maximum open sessions of one verified identity (jwt contexts; a shared static token is
    /// one client, bounded by --max-sessions). At the limit, its own least recently used idle
    /// session gives way.
    #[arg(long, default_value_t = 16)]
    pub max_sessions_per_client: usize,
    /// Close a session after this many idle seconds.
    #[arg(long, default_value_t = 300)]
    pub session_idle_secs: u64,
    /// Serve without MCP sessions: every POST is answered on its own, with plain
    /// `application/json`, and `initialize` returns no `Mcp-Session-Id`. For clients that need no
    /// server-initiated messages (the runner sends none) and call tools request by request, such
    /// as an agent beside its sidecar. Cheaper per call; the session options above do not apply,
    /// and `GET`/`DELETE /mcp` answer 405. With `jwt` contexts every request runs as its own
    /// verified token.
    #[arg(long)]
    pub stateless: bool,
}

/// `--host`: an IP address, or `localhost`. Other names are refused rather than resolved: what a
/// name resolves to can change, and the loopback check must hold for the address bound.
fn parse_bind_host(s: &str) -> Result<IpAddr, String> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("`{s}` is not an IP address or `localhost` (host names are not resolved)"))
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve MCP over stdio (logs on stderr).
    Serve(ServeArgs),
    /// Serve MCP over Streamable HTTP at /mcp, with GET /healthz.
    ServeStreamableHttp {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Exit 0 when the Streamable HTTP server on this machine answers GET /healthz: an exec
    /// probe for a server bound to the pod's loopback, which the kubelet cannot reach.
    Health {
        /// Address of the server.
        #[arg(long, default_value = "127.0.0.1", value_parser = parse_bind_host)]
        host: IpAddr,
        #[arg(long, default_value_t = 8766)]
        port: u16,
        /// Give up after this long.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
        timeout_ms: u64,
    },
    /// Print the MCP configuration snippet for a client.
    ClientConfig {
        /// claude-desktop | cursor | vscode | openai-agents | generic
        #[arg(long)]
        client: String,
        /// stdio | streamable-http. Default: stdio, except streamable-http for openai-agents and
        /// for configs whose contexts come from per-session tokens (jwt), which stdio cannot carry.
        #[arg(long)]
        transport: Option<String>,
        #[arg(long, value_enum)]
        alias_mode: Option<AliasArg>,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8766)]
        port: u16,
        #[arg(long, default_value = "SYNAPSOR_RUNNER_HTTP_TOKEN")]
        auth_token_env: String,
        /// Add a recommended system prompt and checklist for the agent.
        #[arg(long)]
        include_instructions: bool,
        /// Write absolute paths for the config and store.
        #[arg(long)]
        absolute_paths: bool,
    },
}

/// How the runtime's ledger handle runs store calls ([`Ledger::new_inline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerCalls {
    /// On the ledger's own thread, with group commit: servers with several sessions, the CLI.
    Pooled,
    /// On the calling thread: the single-client stdio server on its single-threaded runtime.
    Inline,
}

/// Builds the runtime over the configured sources and the ledger. With the kubernetes proposal
/// store it connects to the API and starts mirroring this namespace's proposals into the ledger.
pub async fn build_runtime(
    global: &GlobalArgs,
    serve: &ServeArgs,
    calls: LedgerCalls,
) -> Result<(Runtime, PathBuf), CliError> {
    let (cfg, warnings) = load_config(&global.config)?;
    for w in &warnings {
        tracing::warn!(code = w.code, path = %w.path, "{}", w.message);
    }
    let ttl_ms = synapsor_core::time::parse_duration_ms(&serve.proposal_ttl)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| {
            CliError::new(
                "PROPOSAL_TTL_INVALID",
                format!(
                    "--proposal-ttl {:?} is not a duration such as 30m, 24h or 7d",
                    serve.proposal_ttl
                ),
            )
        })?;
    let store = store_path(global);
    let ledger = match calls {
        LedgerCalls::Pooled => Ledger::new(LedgerStore::open(&store)?),
        LedgerCalls::Inline => Ledger::new_inline(LedgerStore::open(&store)?),
    };
    let kube = match serve.proposal_store {
        ProposalStoreArg::Local => None,
        ProposalStoreArg::Kubernetes => {
            let kube = KubeProposals::connect(serve.kube_namespace.clone(), ttl_ms)
                .await
                .map_err(|e| CliError::new("KUBE_CONFIG", e.to_string()))?;
            tracing::info!(
                namespace = kube.namespace(),
                "proposals are published as Kubernetes Proposals"
            );
            Some(kube)
        }
    };
    let runtime = Runtime::new(
        cfg,
        RuntimeDeps {
            ledger: ledger.clone(),
            env: Arc::new(ProcessEnv),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds::default()),
            result_format: serve.result_format.map(Into::into),
            publisher: kube.clone().map(|k| Arc::new(k) as Arc<dyn ProposalPublisher>),
        },
    )?;
    if let Some(kube) = kube {
        // Proposals of this namespace that this runner could have made (same capability, same
        // trusted tenant and principal; any tenant for a capability whose sessions bring their
        // own, `jwt`) are mirrored even when its ledger never held them: a replaced pod keeps
        // the record of what its predecessor proposed.
        let rt = runtime.clone();
        let adopt = move |spec: &synapsor_kube::ProposalSpec| {
            rt.capability(&spec.capability).is_some_and(|cap| {
                cap.context.provider == ContextProvider::Jwt
                    || rt
                        .resolve_context(cap, &Caller::Process)
                        .is_ok_and(|ctx| ctx.tenant_id == spec.tenant && ctx.principal == spec.principal.id)
            })
        };
        tokio::spawn(crate::kube_store::mirror(
            kube.api().clone(),
            ledger,
            Box::new(adopt),
            || SystemClock.now_rfc3339(),
            CancellationToken::new(),
        ));
    }
    Ok((runtime, store))
}

fn lease(store: &std::path::Path, transport: &str) -> Result<StoreLease, CliError> {
    let info = LeaseInfo::for_current_process("mcp", transport, SystemClock.now_rfc3339());
    Ok(StoreLease::acquire(store, &info)?)
}

/// `mcp health`: GET /healthz of a local server; `ok` and exit 0, or `MCP_UNHEALTHY`.
async fn health(host: IpAddr, port: u16, timeout_ms: u64) -> Result<i32, CliError> {
    let url = format!("http://{}/healthz", SocketAddr::new(host, port));
    let unhealthy = |why: String| CliError::new("MCP_UNHEALTHY", format!("{url}: {why}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| unhealthy(format!("cannot build the HTTP client: {e}")))?;
    let resp = client.get(&url).send().await.map_err(|e| {
        unhealthy(if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            "no answer".to_owned()
        })
    })?;
    if !resp.status().is_success() {
        return Err(unhealthy(format!("HTTP {}", resp.status())));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|_| unhealthy("the answer is not JSON".into()))?;
    if body["ok"] != true {
        return Err(unhealthy("the server does not say ok".into()));
    }
    outln!("ok");
    Ok(0)
}

/// The capabilities a model sees: all of them, or only reads in read_only mode.
pub fn exposed(cfg: &RunnerConfig) -> Result<Vec<Capability>, CliError> {
    let caps = capability::compile(cfg)?;
    Ok(caps
        .into_iter()
        .filter(|c| cfg.mode != Mode::ReadOnly || c.kind == CapabilityKind::Read)
        .collect())
}

/// The environment an MCP server for `caps` reads: each source's read URL, then the trusted
/// tenant and principal. Names only, with placeholders: clients like Claude Desktop start the
/// server without the user's shell environment, so the snippet has to carry these.
pub(crate) fn server_env(cfg: &RunnerConfig, caps: &[Capability]) -> Vec<ServerEnv> {
    let mut out: Vec<ServerEnv> = Vec::new();
    let mut add = |name: &str, placeholder: String| {
        if !out.iter().any(|e| e.name == name) {
            out.push(ServerEnv {
                name: name.to_owned(),
                placeholder,
            });
        }
    };
    for cap in caps {
        if let Some(source) = cfg.sources.get(&cap.source) {
            add(
                &source.read_url_env,
                format!("<read-only database URL of source {}>", cap.source),
            );
        }
    }
    for cap in caps {
        let names = capability::context_env_names(&cap.context);
        if let [tenant, principal] = names.as_slice() {
            add(tenant, "<tenant the agent works for>".to_owned());
            add(principal, "<who the agent acts as, e.g. support.agent>".to_owned());
        }
    }
    out
}

fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    t.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

/// Refuses a config whose contexts do not fit the transport (see [`ContextSource`]).
pub fn check_transport(cfg: &RunnerConfig, http: bool) -> Result<ContextSource, CliError> {
    let source = config::context_source(cfg);
    match (&source, http) {
        (ContextSource::Mixed { .. }, _) => Err(CliError::new(
            "CONTEXT_PROVIDER_TRANSPORT",
            format!("this config cannot be served: {}", source.transports()),
        )),
        (ContextSource::Session, false) => Err(CliError::new(
            "CONTEXT_PROVIDER_TRANSPORT",
            "this config's capabilities take tenant and principal from verified session tokens (jwt contexts), which only Streamable HTTP carries: use `mcp serve-streamable-http`",
        )),
        _ => Ok(source),
    }
}

/// Checks the HTTP options and resolves how requests authenticate, before any port is bound:
/// verified per-session tokens for a config of `jwt` contexts, else the static token.
pub fn http_options(http: &HttpArgs, cfg: &RunnerConfig, config_path: &Path) -> Result<HttpOptions, CliError> {
    let loopback = http.host.is_loopback();
    let token = ProcessEnv.var(&http.auth_token_env);
    let token_set = token.is_some();
    if http.dev_no_auth && !loopback && !token_set {
        return Err(CliError::new(
            "HTTP_DEV_NO_AUTH_UNSAFE_HOST",
            "--dev-no-auth is allowed only on a loopback address",
        ));
    }
    if !loopback && !http.allow_remote {
        return Err(CliError::new(
            "HTTP_REMOTE_BIND_REFUSED",
            format!(
                "--host {} is not a loopback address: pass --allow-remote to serve beyond this machine",
                http.host
            ),
        ));
    }
    if check_transport(cfg, true)? == ContextSource::Session {
        if http.dev_no_auth {
            return Err(CliError::new(
                "HTTP_DEV_NO_AUTH_WITH_JWT",
                "--dev-no-auth cannot serve jwt contexts: each session's tenant comes from its verified token",
            ));
        }
        let identity = cfg.identity.as_ref().ok_or_else(|| {
            CliError::new(
                "IDENTITY_REQUIRED",
                "jwt contexts need an identity section in the config",
            )
        })?;
        let base = config_path.parent().unwrap_or(Path::new("."));
        let verifier =
            Verifier::new(identity, &ProcessEnv, base).map_err(|e| CliError::new(e.code(), e.to_string()))?;
        if token_set {
            tracing::info!(
                env = %http.auth_token_env,
                "bearer tokens are verified per session; the static token is not accepted"
            );
        }
        return Ok(HttpOptions {
            bind: SocketAddr::new(http.host, http.port),
            auth: HttpAuth::Verified(verifier),
            allowed_hosts: http.allowed_hosts.clone(),
            allowed_origins: http.allowed_origins.clone(),
            max_sessions: http.max_sessions.max(1),
            max_sessions_per_client: http.max_sessions_per_client.max(1),
            session_idle: Duration::from_secs(http.session_idle_secs.max(1)),
            stateless: http.stateless,
        });
    }
    let auth = match token {
        Some(t) if t.len() < 16 => {
            return Err(CliError::new(
                "HTTP_AUTH_TOKEN_WEAK",
                format!(
                    "the token in {} is shorter than 16 characters; use a long random value",
                    http.auth_token_env
                ),
            ));
        }
        Some(t) => HttpAuth::Static(t),
        None if http.dev_no_auth && loopback => HttpAuth::None,
        None if http.dev_no_auth => {
            return Err(CliError::new(
                "HTTP_DEV_NO_AUTH_UNSAFE_HOST",
                "--dev-no-auth is allowed only on a loopback address",
            ));
        }
        None => {
            return Err(CliError::new(
                "HTTP_AUTH_TOKEN_MISSING",
                format!(
                    "set a bearer token in {} (e.g. `export {}=$(openssl rand -hex 32)`), or pass --dev-no-auth on loopback",
                    http.auth_token_env, http.auth_token_env
                ),
            ));
        }
    };
    Ok(HttpOptions {
        bind: SocketAddr::new(http.host, http.port),
        auth,
        allowed_hosts: http.allowed_hosts.clone(),
        allowed_origins: http.allowed_origins.clone(),
        max_sessions: http.max_sessions.max(1),
        max_sessions_per_client: http.max_sessions_per_client.max(1),
        session_idle: Duration::from_secs(http.session_idle_secs.max(1)),
        stateless: http.stateless,
    })
}

pub async fn serve_http(
    runtime: Runtime,
    args: &ServeArgs,
    opts: HttpOptions,
    store: &std::path::Path,
) -> Result<i32, CliError> {
    let _lease = lease(store, "streamable-http")?;
    let server = McpServer::new(runtime, args.alias_mode.into());
    // `serve` prints the bound address once it listens.
    serve(server, opts, shutdown_token())
        .await
        .map_err(|e| CliError::new("HTTP_SERVE_FAILED", e.to_string()))?;
    Ok(0)
}

/// `mcp serve|serve-streamable-http|client-config`.
pub async fn run(global: &GlobalArgs, cmd: McpCommand) -> Result<i32, CliError> {
    match cmd {
        McpCommand::Serve(args) => {
            check_transport(&load_config(&global.config)?.0, false)?;
            let (runtime, store) = build_runtime(global, &args, LedgerCalls::Inline).await?;
            let _lease = lease(&store, "stdio")?;
            let server = McpServer::new(runtime, args.alias_mode.into());
            tracing::info!(tools = server.tools().len(), "serving MCP over stdio");
            server
                .serve_stdio()
                .await
                .map_err(|e| CliError::new("MCP_SERVE_FAILED", e.to_string()))?;
            Ok(0)
        }
        McpCommand::ServeStreamableHttp { serve, http } => {
            let opts = http_options(&http, &load_config(&global.config)?.0, &global.config)?;
            let (runtime, store) = build_runtime(global, &serve, LedgerCalls::Pooled).await?;
            serve_http(runtime, &serve, opts, &store).await
        }
        McpCommand::Health { host, port, timeout_ms } => health(host, port, timeout_ms).await,
        McpCommand::ClientConfig {
            client,
            transport,
            alias_mode,
            host,
            port,
            auth_token_env,
            include_instructions,
            absolute_paths,
        } => {
            let client: ClientKind = client.parse()?;
            let transport: Option<Transport> = transport.map(|t| t.parse()).transpose()?;
            let abs = |p: PathBuf| -> String {
                if absolute_paths {
                    std::path::absolute(&p).unwrap_or(p).display().to_string()
                } else {
                    p.display().to_string()
                }
            };
            // Canonical names of the exposed capabilities and the environment they need, when
            // the config is readable.
            let (tool_names, server_env, sessions) = match load_config(&global.config) {
                Ok((cfg, _)) => {
                    let caps = exposed(&cfg)?;
                    let env = server_env(&cfg, &caps);
                    let sessions = config::context_source(&cfg) == ContextSource::Session;
                    (caps.into_iter().map(|c| c.name).collect(), env, sessions)
                }
                Err(_) => (vec![], vec![], false),
            };
            // A config of jwt contexts is served over Streamable HTTP only: each user's client
            // sends the token issued for that user.
            if sessions && client == ClientKind::ClaudeDesktop {
                return Err(CliError::new(
                    "MCP_CLIENT_TRANSPORT_UNSUPPORTED",
                    "claude-desktop starts local MCP servers over stdio only, and this config takes each session's tenant from a per-user token (jwt contexts) over Streamable HTTP: add http://<host>:<port>/mcp as a custom connector that sends the user's token",
                ));
            }
            let transport = match transport {
                Some(Transport::Stdio) if sessions => {
                    return Err(CliError::new(
                        "CONTEXT_PROVIDER_TRANSPORT",
                        "this config takes tenant and principal from per-session tokens (jwt contexts), which stdio cannot carry: use --transport streamable-http",
                    ));
                }
                None if sessions => Some(Transport::StreamableHttp),
                other => other,
            };
            let mut opts = ClientConfigOptions::new(client, abs(global.config.clone()));
            opts.store_path = global.store.clone().map(abs);
            opts.transport = transport;
            opts.host = host;
            opts.port = port;
            opts.auth_token_env = auth_token_env;
            opts.alias_mode = alias_mode.map(Into::into);
            opts.include_instructions = include_instructions;
            opts.tool_names = tool_names;
            opts.server_env = server_env;
            let value = client_config(&opts)?;
            outln!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            Ok(0)
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_hosts() {
        let ok = |s: &str| parse_bind_host(s).map(|ip| ip.to_string());
        assert_eq!(ok("localhost").as_deref(), Ok("127.0.0.1"));
        assert_eq!(ok("LOCALHOST").as_deref(), Ok("127.0.0.1"));
        assert_eq!(ok("127.0.0.1").as_deref(), Ok("127.0.0.1"));
        assert_eq!(ok("0.0.0.0").as_deref(), Ok("0.0.0.0"));
        assert_eq!(ok("::1").as_deref(), Ok("::1"));
        assert_eq!(ok("[::1]").as_deref(), Ok("::1"));
        for bad in ["example.com", "", "127.0.0.1:8766", "local host"] {
            let err = parse_bind_host(bad).expect_err(bad);
            assert!(err.contains("not an IP address or `localhost`"), "{bad}: {err}");
        }
    }
}
