#!/usr/bin/env bash
#
# The long reliability profile (see docs/reliability.md): the same checks as the short profile
# that scripts/test.sh runs, at scale.
#
#   scripts/reliability.sh                 the long profile
#   SYNAPSOR_ADVERSARIAL_CALLS=500 scripts/reliability.sh   fewer adversarial calls per run
#   SYNAPSOR_ADVERSARIAL_SEED=42 scripts/reliability.sh     another generator seed
#   SYNAPSOR_FUZZ_CASES=100000 scripts/reliability.sh       fewer cases per parser property
#
# Uses the databases in SYNAPSOR_TEST_PG_URL / SYNAPSOR_TEST_MYSQL_URL if set, else starts
# them with scripts/dev-db.sh and stops them again afterwards. Prints a table of every check
# with its figure and writes target/reliability/report.json (and each check's output under
# target/reliability/). Exits 1 when a check fails.
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
export PROPTEST_CASES=${SYNAPSOR_FUZZ_CASES:-1000000}

DBS_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
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
