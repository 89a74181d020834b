#!/usr/bin/env bash
#
# Benchmark Synapsor Runner against PostgreSQL in one run (see docs/benchmarks.md):
# the direct parameterized SELECT vs the read tool over stdio and Streamable HTTP
# (with sessions and --stateless; p50/p95/p99, sequential, 8 and 32 clients), the
# proposal tool, idle and peak RSS, cold start to `initialize` with an empty and a
# pre-filled ledger, and the controller on the real API server (annotate to Applied,
# and 1,000 approvals at once drained, with 0 duplicate writes).
#
#   scripts/bench.sh                          full run (2000 iterations, 8 and 32 clients, 100k-row ledger)
#   scripts/bench.sh --quick                  smoke run (200 iterations, 10k-row ledger)
#   scripts/bench.sh --no-controller          skip the controller phase (no API server needed)
#   scripts/bench.sh --compare 'CMD'          the stdio phases again against another MCP server
#   scripts/bench.sh --iterations 5000 --concurrency 16
#
# Other arguments go to `synapsor-bench` (`synapsor-bench --help` lists them).
# Builds the binaries in release, uses the PostgreSQL in SYNAPSOR_TEST_PG_URL if
# set, else starts the test databases with scripts/dev-db.sh and stops them again
# afterwards unless PostgreSQL was already running. The controller phase does the same
# with the API server (scripts/k8s.sh; KUBECONFIG from target/k8s/env) and runs
# synapsor-controller's `throughput` test with the release controller
# (SYNAPSOR_CONTROLLER_DRAIN_APPROVALS approvals, 1000 by default). Prints the report
# and writes target/bench/report.json (plus the config, ledgers and server logs of the
# run under target/bench/run/, and the controller's figures in target/bench/controller.json).
#
# Targets are reported as PASS/MISS; a missed target does not fail the script.
set -Eeuo pipefail
trap 'echo "error: bench.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}

log() { printf '==> %s\n' "$*" >&2; }

command -v cargo >/dev/null 2>&1 || {
    log "cargo not found on PATH (install Rust via rustup)"
    exit 1
}

CONTROLLER=1
BENCH_ARGS=()
for arg in "$@"; do
    case "$arg" in
    --no-controller) CONTROLLER=0 ;;
    *) BENCH_ARGS+=("$arg") ;;
    esac
done

# Separate builds on purpose: cargo unifies features across the packages of one
# invocation, and the bench's rmcp client features must not change the measured servers.
log "building synapsor-runner (release)"
cargo build --release -p synapsor-runner
log "building synapsor-bench (release)"
cargo build --release -p synapsor-bench
if [ "$CONTROLLER" -eq 1 ]; then
    log "building synapsor-controller (release)"
    cargo build --release -p synapsor-controller
fi

DBS_STARTED=0
K8S_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$K8S_STARTED" -eq 1 ]; then
        log "stopping the API server"
        bash scripts/k8s.sh stop </dev/null || log "warning: stopping the API server failed"
    fi
    if [ "$DBS_STARTED" -eq 1 ]; then
        log "stopping the test databases"
        bash scripts/dev-db.sh stop </dev/null || log "warning: stopping the databases failed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${SYNAPSOR_TEST_PG_URL:-}" ]; then
    log "using the PostgreSQL in SYNAPSOR_TEST_PG_URL"
else
    # Captured, not piped into `grep -q`: under pipefail, grep exiting early would make the
    # status look failed (SIGPIPE) and we would stop databases someone else started.
    db_status=$(bash scripts/dev-db.sh status 2>/dev/null || true)
    case "$db_status" in
    *"postgres: running"*) log "reusing the running test PostgreSQL (left running afterwards)" ;;
    *)
        DBS_STARTED=1
        log "starting the test databases (scripts/dev-db.sh start; stopped afterwards)"
        ;;
    esac
    eval "$(bash scripts/dev-db.sh start)"
fi

CONTROLLER_ARGS=()
if [ "$CONTROLLER" -eq 1 ]; then
    k8s_status=$(bash scripts/k8s.sh status 2>/dev/null || true)
    case "$k8s_status" in
    *"kube-apiserver: running"*) log "reusing the running API server (left running afterwards)" ;;
    *)
        K8S_STARTED=1
        log "starting etcd and kube-apiserver (scripts/k8s.sh start; stopped afterwards)"
        bash scripts/k8s.sh start >/dev/null
        ;;
    esac
    set -a
    # shellcheck disable=SC1091
    . target/k8s/env
    # shellcheck disable=SC1091
    [ -f target/test-dbs/env ] && . target/test-dbs/env
    set +a
    mkdir -p "$TARGET_DIR/bench"
    rm -f "$TARGET_DIR/bench/controller.json"
    approvals=${SYNAPSOR_CONTROLLER_DRAIN_APPROVALS:-1000}
    log "controller: single approvals, then $approvals approved at once (the release controller)"
    SYNAPSOR_CONTROLLER_DRAIN_APPROVALS=$approvals \
        SYNAPSOR_CONTROLLER_BIN="$TARGET_DIR/release/synapsor-controller" \
        SYNAPSOR_BENCH_CONTROLLER_OUT="$TARGET_DIR/bench/controller.json" \
        SYNAPSOR_REQUIRE_DBS=1 SYNAPSOR_REQUIRE_K8S=1 \
        cargo nextest run -p synapsor-controller --test throughput --no-capture --status-level fail >&2
    CONTROLLER_ARGS=(--controller-report "$TARGET_DIR/bench/controller.json")
fi

"$TARGET_DIR/release/synapsor-bench" \
    --runner "$TARGET_DIR/release/synapsor-runner" \
    --out-dir "$TARGET_DIR/bench" \
    "${CONTROLLER_ARGS[@]}" \
    "${BENCH_ARGS[@]}"
