#!/usr/bin/env bash
#
# Benchmark Synapsor Runner against PostgreSQL in one run (see docs/benchmarks.md):
# the direct parameterized SELECT vs the read tool over stdio and Streamable HTTP
# (p50/p95/p99, sequential and concurrent), the proposal tool, idle and peak RSS,
# and cold start to `initialize` with an empty and a pre-filled ledger.
#
#   scripts/bench.sh                          full run (2000 iterations, 8 clients, 100k-row ledger)
#   scripts/bench.sh --quick                  smoke run (200 iterations, 10k-row ledger)
#   scripts/bench.sh --iterations 5000 --concurrency 16
#
# Extra arguments go to `synapsor-bench` (`synapsor-bench --help` lists them).
# Builds both binaries in release, uses the PostgreSQL in SYNAPSOR_TEST_PG_URL if
# set, else starts the test databases with scripts/dev-db.sh and stops them again
# afterwards unless PostgreSQL was already running. Prints the report and writes
# target/bench/report.json (plus the config, ledgers and server logs of the run
# under target/bench/run/).
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

# Two separate builds on purpose: cargo unifies features across the packages of one
# invocation, and the bench's rmcp client features must not change the measured server.
log "building synapsor-runner (release)"
cargo build --release -p synapsor-runner
log "building synapsor-bench (release)"
cargo build --release -p synapsor-bench

DBS_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
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

"$TARGET_DIR/release/synapsor-bench" \
    --runner "$TARGET_DIR/release/synapsor-runner" \
    --out-dir "$TARGET_DIR/bench" \
    "$@"
