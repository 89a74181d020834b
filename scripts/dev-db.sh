#!/usr/bin/env bash
#
# Throwaway PostgreSQL and MariaDB servers for the test suite, on free
# loopback ports, with all state under one directory.
#
#   scripts/dev-db.sh start    start (or reuse) both servers; prints export lines
#   scripts/dev-db.sh env      print export lines for the running servers
#   scripts/dev-db.sh status   show what is running (exit 0 only if both are)
#   scripts/dev-db.sh stop     stop both (idempotent)
#   scripts/dev-db.sh clean    stop both and delete all their data
#
# Typical use:  eval "$(scripts/dev-db.sh start)"
#
# Only the export lines go to stdout; progress goes to stderr so the eval
# above works. Exported:
#   SYNAPSOR_TEST_PG_URL     postgres://synapsor_admin:PW@127.0.0.1:PORT/postgres (superuser)
#   SYNAPSOR_TEST_MYSQL_URL  mysql://synapsor_admin:PW@127.0.0.1:PORT/mysql (ALL ... WITH GRANT OPTION)
#
# Environment:
#   SYNAPSOR_TEST_DB_DIR        state dir (default: <repo>/target/test-dbs)
#   SYNAPSOR_TEST_DB_WAIT_SECS  start/stop timeout per server (default 60)
#   SYNAPSOR_PG_BINDIR          PostgreSQL bin dir, if auto-detection picks wrong
#
# Missing servers are installed with apt-get (MariaDB is not preinstalled on
# our CI image), which needs root or password-less sudo.
set -Eeuo pipefail
# set -e exits silently; say where, so a CI log is enough to debug.
trap 'echo "error: dev-db.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

STATE_DIR=${SYNAPSOR_TEST_DB_DIR:-$REPO_ROOT/target/test-dbs}
# Absolute, because the servers and pg_ctl do not run in our cwd.
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
ENV_FILE="$STATE_DIR/env"

# shellcheck source=scripts/lib/db.sh
. "$SCRIPT_DIR/lib/db.sh"

print_env() {
    printf 'export SYNAPSOR_TEST_PG_URL=%q\n' "$PG_URL"
    printf 'export SYNAPSOR_TEST_MYSQL_URL=%q\n' "$MY_URL"
}

cmd_start() {
    # Serialize concurrent starts on the same state dir (e.g. two terminals)
    # so they do not both run initdb into the same directory.
    exec 9>"$STATE_DIR/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 300 9 || die "timed out waiting for another dev-db.sh on $STATE_DIR"
    fi
    pg_start
    mariadb_start
    (umask 077 && print_env >"$ENV_FILE")
    log "databases ready (state in $STATE_DIR; env also in $ENV_FILE)"
    print_env
}

cmd_stop() {
    local rc=0
    # Try both even if one fails, so a stuck PG never leaves MariaDB behind.
    pg_stop || rc=1
    mariadb_stop || rc=1
    rm -f "$ENV_FILE"
    return "$rc"
}

cmd_clean() {
    # SYNAPSOR_TEST_DB_DIR is user input: only rm -rf a dir that holds
    # nothing but our own files.
    local f
    for f in "$STATE_DIR"/* "$STATE_DIR"/.[!.]*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        case "${f##*/}" in
        .lock | env | pg | pg.* | mariadb | mariadb.*) ;;
        *) die "$STATE_DIR contains ${f##*/}, which dev-db.sh did not create; not deleting it" ;;
        esac
    done
    cmd_stop || true
    # The PG files may live in a temp dir behind a symlink (see
    # pg_prepare_home); delete that too, not just the link.
    local pg_real
    pg_real=$(readlink -f "$STATE_DIR/pg" 2>/dev/null || true)
    if [ -L "$STATE_DIR/pg" ] && [ -n "$pg_real" ] && [ -d "$pg_real" ]; then
        rm -rf "$pg_real"
    fi
    rm -rf "$STATE_DIR"
    log "removed $STATE_DIR"
}

cmd_status() {
    local rc=0
    pg_status || rc=3
    mariadb_status || rc=3
    return "$rc"
}

cmd_env() {
    if ! cmd_status >/dev/null || [ ! -f "$ENV_FILE" ]; then
        die "databases are not running; run: $0 start"
    fi
    cat "$ENV_FILE"
}

# `|| rc=$?`: a deliberate non-zero (status: "not running") is not an
# unexpected failure, so keep it away from the ERR trap.
rc=0
case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop || rc=$? ;;
clean) cmd_clean ;;
status) cmd_status || rc=$? ;;
env) cmd_env ;;
*)
    echo "usage: $0 start|stop|env|status|clean" >&2
    exit 2
    ;;
esac
exit "$rc"
