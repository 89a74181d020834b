#!/usr/bin/env bash
#
# The long reliability profile (see docs/reliability.md): the same checks as the short profile
# that scripts/test.sh runs, at scale.
#
#   scripts/reliability.sh                 the long profile
#   SYNAPSOR_ADVERSARIAL_CALLS=500 scripts/reliability.sh   fewer adversarial calls per run
#   SYNAPSOR_ADVERSARIAL_SEED=42 scripts/reliability.sh     another generator seed
#   SYNAPSOR_FUZZ_CASES=100000 scripts/reliability.sh       fewer cases per parser property
#   SYNAPSOR_FUZZ_SECONDS=60 scripts/reliability.sh         shorter coverage-guided fuzzing per target
#
# The coverage-guided fuzz targets (fuzz/) run when cargo-fuzz and a nightly toolchain are
# installed (`rustup toolchain install nightly && cargo install cargo-fuzz`); without them their
# rows say SKIP and why.
#
# Uses the databases in SYNAPSOR_TEST_PG_URL / SYNAPSOR_TEST_MYSQL_URL if set, else starts
# them with scripts/dev-db.sh and stops them again afterwards; likewise the API server of
# KUBECONFIG, else scripts/k8s.sh. The ledger's disk-full check mounts a tmpfs: run as root.
# Prints a table of every check with its figure and writes target/reliability/report.json (and
# each check's output under target/reliability/). Exits 1 when a check fails.
set -Eeuo pipefail
trap 'echo "error: reliability.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
OUT="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/reliability"
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }

export SYNAPSOR_ADVERSARIAL_CALLS=${SYNAPSOR_ADVERSARIAL_CALLS:-2500}
export SYNAPSOR_KILL_PROPOSALS=${SYNAPSOR_KILL_PROPOSALS:-200}
# Cases per property of the parsers (proptest reads PROPTEST_CASES); no other check has one.
# The coverage-guided fuzzers below do the long search; these add structure-aware inputs.
export PROPTEST_CASES=${SYNAPSOR_FUZZ_CASES:-100000}
export SYNAPSOR_FUZZ_SECONDS=${SYNAPSOR_FUZZ_SECONDS:-300}
export SYNAPSOR_CONTROLLER_KILL_APPROVALS=${SYNAPSOR_CONTROLLER_KILL_APPROVALS:-500}
export SYNAPSOR_LOAD_REQUESTS=${SYNAPSOR_LOAD_REQUESTS:-50000}
export SYNAPSOR_TIMING_SAMPLES=${SYNAPSOR_TIMING_SAMPLES:-1000}

DBS_STARTED=0
K8S_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$K8S_STARTED" -eq 1 ]; then
        bash scripts/k8s.sh stop </dev/null >/dev/null || log "warning: stopping the API server failed"
    fi
    if [ "$DBS_STARTED" -eq 1 ]; then
        bash scripts/dev-db.sh stop </dev/null || log "warning: stopping the databases failed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${SYNAPSOR_TEST_PG_URL:-}" ] || [ -z "${SYNAPSOR_TEST_MYSQL_URL:-}" ]; then
    DBS_STARTED=1
    eval "$(bash scripts/dev-db.sh start </dev/null)"
    export SYNAPSOR_TEST_PG_URL SYNAPSOR_TEST_MYSQL_URL
fi
export SYNAPSOR_REQUIRE_DBS=1
# The controller checks run against a real kube-apiserver and etcd.
if [ -z "${KUBECONFIG:-}" ]; then
    K8S_STARTED=1
    eval "$(bash scripts/k8s.sh start </dev/null)"
fi
export SYNAPSOR_REQUIRE_K8S=1

# The handler checks run the FastAPI template.
if ! python3 -c 'import fastapi, uvicorn' >/dev/null 2>&1; then
    log "pip install fastapi uvicorn (handler checks)"
    python3 -m pip install --quiet -r templates/fastapi/requirements.txt
fi

log "building the tests"
cargo nextest run --no-run --workspace >/dev/null

# name | what it protects against | nextest filter | the line of its output that holds the figure
CHECKS=(
    "adversarial calls, PostgreSQL|foreign rows, hidden columns, driver text, source writes, a dead server|binary(adversarial) & test(postgres)|calls (seed"
    "adversarial calls, MariaDB|the same on MariaDB|binary(adversarial) & test(mariadb)|calls (seed"
    "apply SIGKILLed at spread instants|proposals left in applying, lost authorship, rows written twice|binary(writeback_apply) & test(killed)|after the kills"
    "apply killed after the commit, all engines|a write the ledger never attributes|binary(writeback_apply) & test(interrupted)|"
    "8 concurrent applies, all engines|rows written twice, exit 1 for already_applied|binary(writeback_apply) & test(lifecycle)|"
    "reused JSON-RPC id, 50 at once|requests never answered|binary(mcp_rmcp_client) & test(reused)| answered, "
    "session caps and fair eviction|one client locking the others out, the cap exceeded|(binary(mcp_rmcp_client) & test(http_caps)) | (binary(mcp_identity) & test(one_identity))|"
    "secrets in arguments|credentials stored or echoed|binary(runtime_databases)|"
    "writer connection killed mid-transaction|half-done writes, a claim left behind, no retry|test(killed_mid_transaction) | binary(sqlite_recovery)|"
    "handler that hangs, answers 5xx or garbage|a row written twice, a proposal stuck after a handler's failure, a garbage answer taken for a receipt|binary(writeback_handlers)|handler faults"
    "ledger disk full|an answer without its evidence, a corrupt ledger, a committed write the ledger never attributes|binary(ledger_disk_full)|ledger disk full"
    "controller SIGKILLed across $SYNAPSOR_CONTROLLER_KILL_APPROVALS approvals|proposals stuck after a leader's death, rows written twice, a finished apply run again|binary(faults) & test(sigkilled)|controller kills:"
    "API server and etcd restarted under the controller|a leader that goes on leading past its Lease, watches that never resume, work lost across the outage|binary(faults) & test(api_server)|api restart:"
    "HTTP under load ($SYNAPSOR_LOAD_REQUESTS requests, 50 connections)|a 5xx, the session cap exceeded, memory that grows with the load, valid calls unanswered under hostile traffic|binary(http_load)|http load: [0-9]"
    "another tenant's row versus a missing row|a tenant's existence told apart by code, message or timing|binary(timing_classes)|timing classes:"
    "parsers under random input ($PROPTEST_CASES cases each)|a panic or a wrong accept in the config validator, argument checks, envelopes, handler signatures, the answers file, the webhook's decision|test(never_panic)|"
)

results=()
failed=0
for check in "${CHECKS[@]}"; do
    IFS='|' read -r name protects filter figure_pattern <<<"$check"
    file="$OUT/$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_').log"
    log "$name"
    started=$(date +%s)
    if cargo nextest run --workspace --no-capture -E "$filter" >"$file" 2>&1; then
        status=PASS
    else
        status=FAIL
        failed=1
    fi
    seconds=$(($(date +%s) - started))
    figure=""
    if [ -n "$figure_pattern" ]; then
        figure=$(grep -h "$figure_pattern" "$file" | head -4 | sed 's/^[[:space:]]*//' | paste -sd ';' - || true)
    fi
    results+=("$status|$name|$seconds|$figure|$protects")
done

# Coverage-guided fuzzing (libFuzzer through cargo-fuzz, nightly only): each target for
# SYNAPSOR_FUZZ_SECONDS, from the committed seeds plus the corpus earlier runs grew
# (fuzz/corpus/, not committed). A crash leaves its input in fuzz/artifacts/<target>/.
FUZZ_TARGETS=(config tool_args envelope handler_signature answers webhook_decision)
fuzz_protects="a panic, unbounded memory or a wrong accept that random and structure-aware inputs missed"
if ! command -v cargo-fuzz >/dev/null 2>&1 || ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    for t in "${FUZZ_TARGETS[@]}"; do
        results+=("SKIP|fuzz $t|0|needs cargo-fuzz and a nightly toolchain|$fuzz_protects")
    done
else
    # The fuzz crate is its own workspace: start from the main lock so it builds what CI builds.
    [ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
    log "building the fuzz targets (nightly, AddressSanitizer)"
    (cd fuzz && cargo +nightly fuzz build --fuzz-dir . >"$OUT/fuzz_build.log" 2>&1) || {
        log "the fuzz build failed; see $OUT/fuzz_build.log"
        exit 1
    }
    for t in "${FUZZ_TARGETS[@]}"; do
        file="$OUT/fuzz_$t.log"
        log "fuzz $t (${SYNAPSOR_FUZZ_SECONDS} s)"
        mkdir -p "fuzz/corpus/$t"
        started=$(date +%s)
        if (cd fuzz && cargo +nightly fuzz run --fuzz-dir . "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time="$SYNAPSOR_FUZZ_SECONDS" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1) >"$file" 2>&1; then
            status=PASS
        else
            status=FAIL
            failed=1
        fi
        seconds=$(($(date +%s) - started))
        runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$file" | grep -o '[0-9]*$' | tail -1)
        peak=$(grep -ho 'stat::peak_rss_mb: *[0-9]*' "$file" | grep -o '[0-9]*$' | tail -1)
        cov=$(grep -ho 'cov: [0-9]*' "$file" | tail -1 | grep -o '[0-9]*')
        figure="${runs:-?} inputs, ${cov:-?} coverage points, peak RSS ${peak:-?} MB"
        [ "$status" = PASS ] || figure="$figure; crash input under fuzz/artifacts/$t/"
        results+=("$status|fuzz $t|$seconds|$figure|$fuzz_protects")
    done
fi

printf '\n%-6s %-46s %6s  %s\n' RESULT CHECK SECONDS FIGURE
for r in "${results[@]}"; do
    IFS='|' read -r status name seconds figure _ <<<"$r"
    printf '%-6s %-46s %6s  %s\n' "$status" "$name" "$seconds" "${figure:--}"
done

python3 - "$OUT/report.json" "${results[@]}" <<'PY'
import json, sys
out = sys.argv[1]
checks = []
for r in sys.argv[2:]:
    status, name, seconds, figure, protects = r.split("|", 4)
    checks.append({"check": name, "result": status, "seconds": int(seconds),
                   "figure": figure, "protects_against": protects})
json.dump({"profile": "long", "checks": checks}, open(out, "w"), indent=2)
print(f"\nreport: {out}")
PY

if [ "$failed" -ne 0 ]; then
    log "some checks failed; their output is under $OUT"
    exit 1
fi
