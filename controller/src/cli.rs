//! Command line and process lifecycle of `synapsor-controller`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use synapsor_core::capability;
use synapsor_core::config::{self, RunnerConfig};
use synapsor_core::context::{Clock, Env, ProcessEnv, SystemClock};
use synapsor_kube::{DEFAULT_LEASE_NAME, Proposal};
use synapsor_ledger::Ledger;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::decisions::DecisionKey;
use crate::error::StartError;
use crate::inject::InjectConfig;
use crate::leader::{self, LeaseSettings};
use crate::metrics::Metrics;
use crate::rate_limit;
use crate::reconcile::{Ctx, error_policy, reconcile};
use crate::server::{self, Readiness, ServerState};

#[derive(Debug, Parser)]
#[command(
    name = "synapsor-controller",
    version,
    about = "Applies approved Synapsor Proposal resources with guarded writeback, and verifies approvers.",
    long_about = "Applies approved Synapsor Proposal resources with guarded writeback, and verifies approvers.\n\n\
                  The sidecar (`synapsor-runner ... --proposal-store kubernetes`) creates Proposals; people \
                  approve them with `kubectl annotate proposal/<name> runner.synapsor.ai/approve=true`; this \
                  controller's admission webhook admits that only from users RBAC allows the verb `approve` \
                  (never the proposer), and the elected replica applies a proposal once it has its quorum.\n\n\
                  Start here:\n  \
                  synapsor-controller crd        print the CustomResourceDefinition to install\n  \
                  synapsor-controller run --help how to run it (the Helm chart sets all of this)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: reconcile proposals, serve the webhook, metrics and health.
    Run(Box<RunArgs>),
    /// Print the `proposals.runner.synapsor.ai` CustomResourceDefinition (YAML).
    Crd,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The reviewed runner config (the same synapsor.runner.json as the sidecar's). Also read
    /// from SYNAPSOR_MCP_CONFIG when SYNAPSOR_CONFIG is not set.
    #[arg(long, env = "SYNAPSOR_CONFIG", default_value = "/etc/synapsor/synapsor.runner.json")]
    pub config: PathBuf,
    /// Watch proposals only in this namespace (default: all namespaces).
    #[arg(long, env = "SYNAPSOR_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// The controller's ledger (SQLite): mirrors of proposals, decisions, receipts.
    #[arg(long, env = "SYNAPSOR_LEDGER", default_value = "/var/lib/synapsor/controller.db")]
    pub ledger: PathBuf,
    /// Plain HTTP listener for /metrics, /healthz and /readyz.
    #[arg(long, env = "SYNAPSOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// TLS listener of the admission webhook (POST /mutate-proposals).
    #[arg(long, env = "SYNAPSOR_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,
    /// PEM certificate chain of the webhook.
    #[arg(long, env = "SYNAPSOR_TLS_CERT", default_value = "/etc/synapsor/tls/tls.crt")]
    pub tls_cert: PathBuf,
    /// PEM private key of the webhook.
    #[arg(long, env = "SYNAPSOR_TLS_KEY", default_value = "/etc/synapsor/tls/tls.key")]
    pub tls_key: PathBuf,
    /// File holding the key (>= 32 bytes) that signs verified decisions; the same for all replicas.
    #[arg(
        long,
        env = "SYNAPSOR_APPROVAL_KEY_FILE",
        default_value = "/etc/synapsor/approval-key/key"
    )]
    pub approval_key_file: PathBuf,
    /// Name of the Lease the replicas elect a leader with.
    #[arg(long, env = "SYNAPSOR_LEASE_NAME", default_value = DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// Namespace of the Lease (default: the client's namespace, in a pod its own).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How often the writeback setup (writer URLs, receipts tables) is checked again; the
    /// replica is not ready while something is missing.
    #[arg(long, env = "SYNAPSOR_SETUP_RECHECK_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub setup_recheck_secs: u64,
    /// The pause before retrying an apply that failed without writing; it doubles each time
    /// (10 s, 20 s, 40 s, 80 s by default) until the 5th attempt.
    #[arg(long, env = "SYNAPSOR_RETRY_PAUSE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub retry_pause_secs: u64,
    /// Proposals reconciled (and so applied) at once. Each apply holds a connection of its own
    /// to the source database: unbounded, a burst of approvals, or the backlog a new leader
    /// finds, would exhaust the database's connections (the application's too) and turn
    /// approved proposals into failed attempts that all retry at the same moments.
    #[arg(long, env = "SYNAPSOR_MAX_CONCURRENT_APPLIES", default_value_t = DEFAULT_MAX_CONCURRENT_APPLIES, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrent_applies: u16,
    /// Requests per second this replica sends to the Kubernetes API at most, on average: a
    /// client-side token bucket, as client-go's QPS (a number from 1 to 10000; fractions are
    /// allowed). A burst of approvals, or the backlog a new leader finds, then cannot flood the
    /// API server that every other controller of the cluster shares.
    ///
    /// Why the default is 200: an approval costs the controller about four requests (the
    /// webhook's SubjectAccessReview, the `Applying` compare-and-set, the final status and an
    /// Event), so 200 requests a second let about 50 approvals a second through: the limit alone
    /// would hold 1,000 approvals at once to about 18 s (after the burst), less than the API
    /// server and the database take for them anyway, and a single approval never waits for a
    /// token. client-go's default of 5 (burst 10) would hold those 1,000 approvals to over 13
    /// minutes.
    ///
    /// The Lease renewals have a client and a bucket of their own: a flood of applies never
    /// delays them. Watches take a token but never wait for one longer than a second.
    #[arg(long, env = "SYNAPSOR_KUBE_API_QPS", default_value_t = DEFAULT_KUBE_API_QPS, value_parser = parse_kube_api_qps)]
    pub kube_api_qps: f64,
    /// Requests to the Kubernetes API this replica may send at once above the --kube-api-qps
    /// rate, after a quiet period: the size of the token bucket (1 to 10000).
    ///
    /// Why the default is 400: two seconds at the default rate, enough for a batch of about 100
    /// approvals (or a new leader's first backlog) to start at once, small enough that the API
    /// server never sees more than that above the rate.
    #[arg(long, env = "SYNAPSOR_KUBE_API_BURST", default_value_t = DEFAULT_KUBE_API_BURST, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub kube_api_burst: u32,
    #[command(flatten)]
    pub inject: InjectArgs,
}

/// Default of `--max-concurrent-applies`.
pub const DEFAULT_MAX_CONCURRENT_APPLIES: u16 = 8;
/// Default of `--kube-api-qps` (see its help for why).
pub const DEFAULT_KUBE_API_QPS: f64 = 200.0;
/// Default of `--kube-api-burst` (see its help for why).
pub const DEFAULT_KUBE_API_BURST: u32 = 400;
/// The range `--kube-api-qps` accepts.
pub const KUBE_API_QPS_RANGE: std::ops::RangeInclusive<f64> = 1.0..=10_000.0;

/// `--kube-api-qps`: requests per second within [`KUBE_API_QPS_RANGE`].
fn parse_kube_api_qps(text: &str) -> Result<f64, String> {
    let (lo, hi) = (KUBE_API_QPS_RANGE.start(), KUBE_API_QPS_RANGE.end());
    let why = || format!("expected requests per second, a number from {lo} to {hi} (e.g. 200 or 12.5)");
    let qps: f64 = text.trim().parse().map_err(|_| why())?;
    if !qps.is_finite() || !KUBE_API_QPS_RANGE.contains(&qps) {
        return Err(why());
    }
    Ok(qps)
}

/// The sidecar injector (`POST /inject-pods` on the webhook listener). Without --inject-image
/// every pod passes unchanged.
#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The synapsor-runner image injected into pods annotated runner.synapsor.ai/inject: "true".
    #[arg(long, env = "SYNAPSOR_INJECT_IMAGE")]
    pub inject_image: Option<String>,
    /// Pull policy of the injected container.
    #[arg(long, env = "SYNAPSOR_INJECT_PULL_POLICY", default_value = "IfNotPresent",
          value_parser = ["Always", "IfNotPresent", "Never"])]
    pub inject_pull_policy: String,
    /// ConfigMap with synapsor.runner.json, when the pod names none (runner.synapsor.ai/config-map).
    #[arg(long, env = "SYNAPSOR_INJECT_CONFIG_MAP", default_value = "synapsor-config")]
    pub inject_config_map: String,
    /// Secret whose keys become the sidecar's environment (read URL, MCP token, trusted
    /// context), when the pod names none (runner.synapsor.ai/env-secret).
    #[arg(long, env = "SYNAPSOR_INJECT_ENV_SECRET")]
    pub inject_env_secret: Option<String>,
    /// Loopback port of the injected MCP server, when the pod names none (runner.synapsor.ai/port).
    #[arg(long, env = "SYNAPSOR_INJECT_PORT", default_value_t = 8766, value_parser = clap::value_parser!(u16).range(1024..))]
    pub inject_port: u16,
    /// CPU request of the injected container.
    #[arg(long, env = "SYNAPSOR_INJECT_CPU_REQUEST", default_value = "20m")]
    pub inject_cpu_request: String,
    /// Memory request of the injected container.
    #[arg(long, env = "SYNAPSOR_INJECT_MEMORY_REQUEST", default_value = "32Mi")]
    pub inject_memory_request: String,
    /// Memory limit of the injected container.
    #[arg(long, env = "SYNAPSOR_INJECT_MEMORY_LIMIT", default_value = "128Mi")]
    pub inject_memory_limit: String,
}

impl InjectArgs {
    /// The injector's settings, or `None` when injection is off.
    pub fn config(&self) -> Option<InjectConfig> {
        let image = self.inject_image.clone().filter(|i| !i.trim().is_empty())?;
        Some(InjectConfig {
            image,
            pull_policy: self.inject_pull_policy.clone(),
            config_map: self.inject_config_map.clone(),
            env_secret: self.inject_env_secret.clone().filter(|s| !s.trim().is_empty()),
            port: self.inject_port,
            cpu_request: self.inject_cpu_request.clone(),
            memory_request: self.inject_memory_request.clone(),
            memory_limit: self.inject_memory_limit.clone(),
        })
    }
}

impl Cli {
    /// Parses the process's arguments (exits with clap's message on bad usage), taking the
    /// config path from SYNAPSOR_MCP_CONFIG when neither `--config` nor SYNAPSOR_CONFIG gave one.
    pub fn parse_with_env() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Run(args), Some(("run", run))) = (&mut cli.command, matches.subcommand())
            && run.value_source("config") == Some(clap::parser::ValueSource::DefaultValue)
            && let Some(path) = synapsor_core::context::config_path_from_alias(&ProcessEnv)
        {
            args.config = path.into();
        }
        cli
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Crd => {
            print!("{}", synapsor_kube::crd_yaml());
            0
        }
        Command::Run(args) => {
            init_tracing();
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return 1;
                }
            };
            match rt.block_on(run(*args)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error[{}]: {e}", e.code());
                    1
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYNAPSOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: pod logs and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// What [`load`] checked.
struct Loaded {
    config: RunnerConfig,
    capabilities: Vec<capability::Capability>,
    key: DecisionKey,
    tls: rustls::ServerConfig,
}

/// Everything checked before any port is bound or any API call is made.
fn load(args: &RunArgs) -> Result<Loaded, StartError> {
    let text = std::fs::read_to_string(&args.config).map_err(|source| StartError::ConfigNotFound {
        path: args.config.clone(),
        source,
    })?;
    let (config, _) = config::parse_config(&text).map_err(|report| StartError::ConfigInvalid {
        path: args.config.clone(),
        count: report.errors.len(),
        first: report.errors.first().map(ToString::to_string).unwrap_or_default(),
    })?;
    let capabilities = capability::compile(&config).map_err(StartError::Capabilities)?;
    let key_bytes = std::fs::read(&args.approval_key_file).map_err(|source| StartError::ApprovalKeyMissing {
        path: args.approval_key_file.clone(),
        source,
    })?;
    let key = DecisionKey::from_file_bytes(&key_bytes)?;
    let tls = server::tls_config(&args.tls_cert, &args.tls_key)?;
    Ok(Loaded {
        config,
        capabilities,
        key,
        tls,
    })
}

async fn run(args: RunArgs) -> Result<(), StartError> {
    let Loaded {
        config: cfg,
        capabilities: caps,
        key,
        tls,
    } = load(&args)?;
    let ledger = Ledger::open(&args.ledger).map_err(StartError::Ledger)?;
    let metrics = Metrics::new();
    let kube_config = kube::Config::infer()
        .await
        .map_err(|e| StartError::KubeConfig(kube::Error::InferConfig(e)))?;
    let (qps, burst) = (args.kube_api_qps, args.kube_api_burst);
    let client = rate_limit::client(kube_config.clone(), qps, burst, &metrics).map_err(StartError::KubeConfig)?;
    // The Lease has a client, and so a bucket, of its own (as client-go's leader election): a
    // backlog of applies waiting for tokens must never hold a renewal past the renew deadline.
    let lease_client = rate_limit::client(kube_config, qps, burst, &metrics).map_err(StartError::KubeConfig)?;
    let identity = args
        .identity
        .clone()
        .or_else(|| ProcessEnv.var("HOSTNAME"))
        .unwrap_or_else(|| format!("synapsor-controller-{}", std::process::id()));
    let lease_ns = args
        .lease_namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_owned());

    let shutdown = CancellationToken::new();
    let readiness = Arc::new(Readiness::default());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = ServerState {
        client: client.clone(),
        clock: clock.clone(),
        key: key.clone(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        inject: args.inject.config().map(Arc::new),
    };
    let http = server::bind(args.http_addr, "metrics and health endpoints").await?;
    let webhook = server::bind(args.webhook_addr, "admission webhook").await?;
    tracing::info!(
        http = %args.http_addr,
        webhook = %args.webhook_addr,
        %identity,
        namespace = args.namespace.as_deref().filter(|ns| !ns.is_empty()).unwrap_or("(all)"),
        max_concurrent_applies = args.max_concurrent_applies,
        kube_api_qps = qps,
        kube_api_burst = burst,
        "synapsor-controller starting"
    );
    let http_task = tokio::spawn(server::serve_http(
        http,
        server::http_router(state.clone()),
        shutdown.clone(),
    ));
    let webhook_task = tokio::spawn(server::serve_tls(
        webhook,
        tls,
        server::webhook_router(state.clone()),
        shutdown.clone(),
    ));

    // Signals: finish what is running, give the lease up, stop.
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }

    client.apiserver_version().await.map_err(StartError::KubeUnreachable)?;

    let proposals: Api<Proposal> = match args.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match proposals.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Err(StartError::CrdMissing),
        Err(e) => return Err(StartError::KubeApi(e)),
    }
    // The first setup check before the replica says it is ready: an approval must not reach
    // a controller that can only fail to apply it.
    readiness.set_setup_gap(Some("the writeback setup has not been checked yet".into()));
    let setup = tokio::spawn(watch_writer_setup(
        cfg.clone(),
        caps.clone(),
        readiness.clone(),
        Duration::from_secs(args.setup_recheck_secs),
        shutdown.clone(),
    ));
    readiness.set_api_ready();

    let (lead_tx, lead_rx) = watch::channel(false);
    let leases: Api<Lease> = Api::namespaced(lease_client, &lease_ns);
    let settings = LeaseSettings::new(args.lease_name.clone(), lease_ns.clone(), identity.clone());
    let election = tokio::spawn(leader::run(leases, settings, lead_tx, shutdown.clone()));

    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config: cfg,
        capabilities: caps,
        ledger,
        key,
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "synapsor-controller".into(),
                instance: Some(identity.clone()),
            },
        ),
        metrics: metrics.clone(),
        leading: lead_rx.clone(),
        env: Arc::new(ProcessEnv),
        clock: clock.clone(),
        retry_pause: Duration::from_secs(args.retry_pause_secs),
        superseded: Default::default(),
    });

    loop {
        let mut rx = lead_rx.clone();
        // Shutdown first: right after a SIGTERM the election task may not have published the
        // step-down yet, and a new controller must not start then.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = rx.wait_for(|leading| *leading) => if r.is_err() { break },
        }
        if shutdown.is_cancelled() {
            break;
        }
        metrics.leader.set(1);
        tracing::info!(%identity, "leading: reconciling proposals");
        let stop = {
            let shutdown = shutdown.clone();
            let mut rx = lead_rx.clone();
            let metrics = metrics.clone();
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    _ = rx.wait_for(|leading| !*leading) => {}
                }
                // The Lease is lost or given up now, even if a reconcile still running (say, on a
                // hung API call) keeps the controller below from finishing for a while.
                metrics.leader.set(0);
            }
        };
        Controller::new(proposals.clone(), watcher::Config::default())
            .with_config(controller::Config::default().concurrency(args.max_concurrent_applies))
            .graceful_shutdown_on(stop)
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|r| async move {
                match r {
                    // error_policy logged it, with its code.
                    Err(kube::runtime::controller::Error::ReconcilerFailed(..)) | Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "watching proposals failed; retrying"),
                }
            })
            .await;
        metrics.leader.set(0);
        tracing::info!(%identity, "stopped leading");
    }
    tracing::info!("releasing the lease and closing the listeners");
    let _ = setup.await;
    let _ = election.await;
    let _ = webhook_task.await;
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Checks the writeback setup now and every `every` until shutdown, and keeps the readiness
/// in step: not ready, with the reason, while a writer URL or a usable receipts table is missing.
/// A source that cannot be reached keeps the last verdict (an outage, not missing setup); before
/// the first complete check it keeps the replica not ready, saying which source it cannot reach.
async fn watch_writer_setup(
    cfg: RunnerConfig,
    caps: Vec<capability::Capability>,
    readiness: Arc<Readiness>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last: Option<String> = None;
    let mut checked = false;
    loop {
        let (gaps, unreachable) = synapsor_executor::writer_setup_gaps(&cfg, &caps, &ProcessEnv).await;
        for source in &unreachable {
            tracing::warn!(%source, "cannot reach the source to check its writeback setup; keeping the last verdict");
        }
        let verdict = (!gaps.is_empty()).then(|| {
            gaps.iter()
                .map(|g| format!("{}: {}", g.code, g.message))
                .collect::<Vec<_>>()
                .join("; ")
        });
        if !checked && verdict.is_none() && !unreachable.is_empty() {
            readiness.set_setup_gap(Some(format!(
                "cannot reach source(s) {} to check the writeback setup",
                unreachable.join(", ")
            )));
        } else if unreachable.is_empty() || verdict.is_some() {
            checked = true;
            if verdict != last {
                match &verdict {
                    Some(why) => tracing::warn!("not ready, writeback setup is missing: {why}"),
                    None if last.is_some() => tracing::info!("writeback setup complete: ready"),
                    None => {}
                }
            }
            readiness.set_setup_gap(verdict.clone());
            last = verdict;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn run_args(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = [&["synapsor-controller", "run"][..], extra].concat();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Run(args) => *args,
            Command::Crd => unreachable!(),
        })
    }

    #[test]
    fn the_api_rate_limit_has_sane_defaults_and_takes_fractions() {
        // Only when the environment does not set them (the test process's own environment).
        if std::env::var_os("SYNAPSOR_KUBE_API_QPS").is_none() && std::env::var_os("SYNAPSOR_KUBE_API_BURST").is_none()
        {
            let args = run_args(&[]).unwrap();
            assert_eq!((args.kube_api_qps, args.kube_api_burst), (200.0, 400));
        }
        let args = run_args(&["--kube-api-qps", "12.5", "--kube-api-burst", "1"]).unwrap();
        assert_eq!((args.kube_api_qps, args.kube_api_burst), (12.5, 1));
        let args = run_args(&["--kube-api-qps", "10000", "--kube-api-burst", "10000"]).unwrap();
        assert_eq!((args.kube_api_qps, args.kube_api_burst), (10_000.0, 10_000));
    }

    #[test]
    fn bad_api_rate_limit_values_are_refused_with_the_range() {
        for qps in ["0", "0.5", "-1", "10001", "NaN", "inf", "fast", ""] {
            let err = run_args(&[&format!("--kube-api-qps={qps}")]).unwrap_err().to_string();
            assert!(
                err.contains("--kube-api-qps") && err.contains("a number from 1 to 10000"),
                "{qps:?}: {err}"
            );
        }
        for burst in ["0", "-1", "10001", "1.5", "many"] {
            let err = run_args(&[&format!("--kube-api-burst={burst}")])
                .unwrap_err()
                .to_string();
            assert!(err.contains("--kube-api-burst"), "{burst:?}: {err}");
        }
    }
}
