#!/usr/bin/env bash
#
# The whole test suite in one command, on a fresh machine or in CI:
#
#   scripts/test.sh                     lint + all tests
#   scripts/test.sh -E 'test(pg)'       extra args go to `cargo nextest run`
#   SYNAPSOR_SKIP_LINT=1 scripts/test.sh   skip fmt/clippy (quick local loop)
#   SYNAPSOR_SKIP_DENY=1 scripts/test.sh   skip the dependency check (deny.toml)
#   SYNAPSOR_KEEP_DBS=1 scripts/test.sh    leave the databases running after
#   SYNAPSOR_KEEP_K8S=1 scripts/test.sh    leave the Kubernetes API server running after
#   SYNAPSOR_KEEP_CLUSTER=1 scripts/test.sh   leave the single-node cluster running after
#   SYNAPSOR_SKIP_CLUSTER=1 scripts/test.sh   no single-node cluster (its test is skipped)
#   SYNAPSOR_K8S_USE_KUBECONFIG=1 scripts/test.sh
#                                       use the cluster in $KUBECONFIG (e.g. kind, see
#                                       scripts/kind-up.sh) instead of starting one
#
# Starts throwaway PostgreSQL and MariaDB servers (scripts/dev-db.sh) and a
# Kubernetes API server (etcd + kube-apiserver on loopback, scripts/k8s.sh;
# docs/kubernetes-testing.md), runs with SYNAPSOR_REQUIRE_DBS=1 and
# SYNAPSOR_REQUIRE_K8S=1 so DB and Kubernetes tests fail instead of skipping
# when a URL or KUBECONFIG is missing (SYNAPSOR_REQUIRE_BROWSER=1 likewise for
# the review UI's tests in headless Chromium, installed with apt-get when
# missing), and stops the servers again on exit, failure or Ctrl-C.
set -Eeuo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

log() { printf '==> %s\n' "$*" >&2; }

# Runs one named step; on failure names it, so the end of a long CI log says
# what broke without scrolling.
step() {
    local name=$1
    shift
    log "$name"
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "FAILED: $name (exit $rc)"
        exit "$rc"
    fi
}

DBS_STARTED=0
K8S_STARTED=0
CLUSTER_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$CLUSTER_STARTED" -eq 1 ]; then
        if [ "${SYNAPSOR_KEEP_CLUSTER:-0}" = 1 ]; then
            log "leaving the cluster running (SYNAPSOR_KEEP_CLUSTER=1); stop with: scripts/cluster.sh stop"
        else
            bash scripts/cluster.sh stop </dev/null || log "warning: stopping the cluster failed"
        fi
    fi
    if [ "$K8S_STARTED" -eq 1 ]; then
        if [ "${SYNAPSOR_KEEP_K8S:-0}" = 1 ]; then
            log "leaving the Kubernetes API server running (SYNAPSOR_KEEP_K8S=1); stop with: scripts/k8s.sh stop"
        else
            bash scripts/k8s.sh stop </dev/null || log "warning: stopping the Kubernetes API server failed"
        fi
    fi
    if [ "$DBS_STARTED" -eq 1 ]; then
        if [ "${SYNAPSOR_KEEP_DBS:-0}" = 1 ]; then
            log "leaving databases running (SYNAPSOR_KEEP_DBS=1); stop with: scripts/dev-db.sh stop"
        else
            bash scripts/dev-db.sh stop </dev/null || log "warning: stopping the databases failed"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
# Ctrl-C / kill: exit with the usual 128+signal code, which runs cleanup.
trap 'exit 130' INT
trap 'exit 143' TERM

# Tools. cargo-nextest is preinstalled on CI images; install it otherwise.
command -v cargo >/dev/null 2>&1 || {
    log "cargo not found on PATH (install Rust via rustup)"
    exit 1
}
if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest" cargo install cargo-nextest --locked
fi

# Lint first: it is the cheapest failure and needs no databases.
if [ "${SYNAPSOR_SKIP_LINT:-0}" = 1 ]; then
    log "skipping cargo fmt / clippy (SYNAPSOR_SKIP_LINT=1)"
else
    step "cargo fmt --check" cargo fmt --all -- --check
    step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
fi

# Dependencies (deny.toml): licenses, duplicate versions and sources, and advisories against the
# advisory database already on this machine. Nothing but crates is fetched: `cargo fetch` brings
# the crates of every target deny.toml names, then cargo-deny runs --offline. Without a local
# advisory database (`cargo deny fetch db` makes one) the advisories check is skipped, loudly.
if [ "${SYNAPSOR_SKIP_DENY:-0}" = 1 ]; then
    log "skipping cargo deny (SYNAPSOR_SKIP_DENY=1)"
else
    if ! cargo deny --version >/dev/null 2>&1; then
        # A debug build: a third of the release build's time, and fast enough for one check.
        step "installing cargo-deny" cargo install --locked --debug cargo-deny
    fi
    step "cargo fetch (every target deny.toml checks)" cargo fetch --locked --quiet
    deny_checks=(bans licenses sources)
    if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/.git" >/dev/null; then
        deny_checks+=(advisories)
    else
        log "note: no local advisory database in ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs: advisories not checked (run \`cargo deny fetch db\` where GitHub is reachable)"
    fi
    step "cargo deny check ${deny_checks[*]}" cargo deny --offline --locked check "${deny_checks[@]}"
fi

# The official MCP TypeScript SDK client (tests/mcp-clients) that sidecar/tests/mcp_ts_client.rs
# drives; with SYNAPSOR_REQUIRE_DBS=1 below, those tests fail instead of skipping without it.
# `npm ci` installs exactly the committed package-lock.json; skipped when node_modules already
# matches it (npm writes node_modules/.package-lock.json on install).
ts_clients=tests/mcp-clients
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node/npm not found: install Node.js 20+ (the MCP TypeScript client tests need it)"
    exit 1
fi
if [ ! -f "$ts_clients/node_modules/.package-lock.json" ] ||
    [ "$ts_clients/package-lock.json" -nt "$ts_clients/node_modules/.package-lock.json" ]; then
    step "npm ci (MCP TypeScript SDK client)" npm ci --prefix "$ts_clients" --no-audit --no-fund
fi

# Handler template tests (sidecar/tests/handler_templates.rs) run templates/fastapi/app.py with
# uvicorn and templates/command/handler.py with python3; under SYNAPSOR_REQUIRE_DBS=1 below they
# fail instead of skipping, so install the two Python packages here when they are missing.
if ! command -v python3 >/dev/null 2>&1; then
    log "python3 not found: install Python 3 (the handler template tests need it)"
    exit 1
fi
if ! python3 -c 'import fastapi, uvicorn' >/dev/null 2>&1; then
    step "pip install fastapi uvicorn (handler template tests)" \
        python3 -m pip install --quiet -r templates/fastapi/requirements.txt
fi

# The review UI's browser tests (sidecar/tests/review_ui.rs) drive headless Chromium through
# chromedriver; Debian's packages, installed when missing (root or password-less sudo, like the
# databases). SYNAPSOR_REQUIRE_BROWSER=1 makes those tests fail instead of skipping without them.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    step "apt-get install chromium chromium-driver (review UI browser tests)" \
        bash -c '. scripts/lib/common.sh && apt_install chromium chromium-driver'
fi
export SYNAPSOR_REQUIRE_BROWSER=1

# The container images (release binaries; scripts/images.sh), built once per run: the image
# tests check them, and the cluster tests run them.
step "container images (scripts/images.sh build)" bash scripts/images.sh build
export SYNAPSOR_REQUIRE_IMAGES=1

# Databases. dev-db.sh prints only `export ...` lines on stdout.
DBS_STARTED=1 # set before starting so a half-started set is cleaned up too
db_env=$(bash scripts/dev-db.sh start </dev/null) || {
    log "FAILED: starting test databases"
    exit 1
}
eval "$db_env"
export SYNAPSOR_TEST_PG_URL SYNAPSOR_TEST_MYSQL_URL
export SYNAPSOR_REQUIRE_DBS=1

# Kubernetes: etcd + kube-apiserver on loopback, or with SYNAPSOR_K8S_USE_KUBECONFIG=1 the
# cluster in $KUBECONFIG (then nothing is started, so nothing is stopped). k8s.sh prints only
# `export ...` lines (KUBECONFIG, SYNAPSOR_KUBECTL, SYNAPSOR_HELM, ...) on stdout.
if [ "${SYNAPSOR_K8S_USE_KUBECONFIG:-0}" != 1 ]; then
    K8S_STARTED=1 # set before starting so a half-started control plane is cleaned up too
fi
k8s_env=$(bash scripts/k8s.sh start </dev/null) || {
    log "FAILED: starting the Kubernetes API server"
    exit 1
}
eval "$k8s_env"
export SYNAPSOR_REQUIRE_K8S=1

# A real single-node cluster that runs pods (scripts/cluster.sh: needs root), with the images
# built above imported; controller/tests/cluster.rs runs the example's whole flow on it.
if [ "${SYNAPSOR_SKIP_CLUSTER:-0}" = 1 ]; then
    log "skipping the single-node cluster (SYNAPSOR_SKIP_CLUSTER=1)"
else
    CLUSTER_STARTED=1 # set before starting so a half-started cluster is cleaned up too
    cluster_env=$(bash scripts/cluster.sh start </dev/null) || {
        log "FAILED: starting the single-node cluster"
        exit 1
    }
    eval "$cluster_env"
    export SYNAPSOR_REQUIRE_CLUSTER=1
fi

# nextest does not run doctests; they run first so that nextest's summary is the run's last word.
step "cargo test --doc" cargo test --workspace --doc

step "cargo nextest run (profile ${SYNAPSOR_NEXTEST_PROFILE:-ci})" \
    cargo nextest run --workspace --profile "${SYNAPSOR_NEXTEST_PROFILE:-ci}" "$@"

log "all checks passed"
