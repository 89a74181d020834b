# shellcheck shell=bash
#
# Helpers for scripts/dev-db.sh: throwaway PostgreSQL and MariaDB servers for
# the test suite. Sourced, not executed. Everything (data, sockets, pid
# files, logs, passwords, ports) lives in $STATE_DIR, so `stop` always finds
# what `start` started and separate state dirs never collide. Stop the
# servers before deleting the state dir (`dev-db.sh clean` does both).
#
# Layout of $STATE_DIR:
#   pg/             owned by the PostgreSQL OS user (a symlink to a private
#                   temp dir if that user cannot reach $STATE_DIR, see below)
#     data/         PGDATA
#     run/          unix socket dir
#     postgres.log
#   pg.password     superuser password (root/caller-owned, 0600)
#   pg.port         last port used
#   mariadb/
#     data/ tmp/ mariadb.sock mariadb.pid mariadb.log
#   mariadb.password mariadb.port
#   env             the export lines last printed by `start`

: "${STATE_DIR:?set STATE_DIR before sourcing db.sh}"

# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DB_ADMIN_USER=synapsor_admin
# How long to wait for a server to come up or go down before giving up.
DB_WAIT_SECS=${SYNAPSOR_TEST_DB_WAIT_SECS:-60}

# Hex only, so it can go into a URL without percent-encoding.
gen_password() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# Read a secret from $1, creating it on first use. Stable across restarts
# because the account in the existing data dir already has this password.
password_file() {
    local file=$1
    if [ ! -s "$file" ]; then
        (umask 077 && gen_password >"$file")
    fi
    cat "$file"
}

port_is_free() {
    local port=$1
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$port" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Like the servers do, so TIME_WAIT leftovers of our own checks don't count
# as "taken"; a real listener still makes bind fail.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
    else
        # Nothing accepting a connection is a good enough "free" without python.
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# Pick a free loopback port, preferring $1 (the one used last time) so the
# URLs stay the same across restarts when possible. There is a small race
# between picking and the server binding; the readiness check catches it.
pick_port() {
    local preferred=${1:-} port
    if [ -n "$preferred" ] && port_is_free "$preferred"; then
        echo "$preferred"
        return
    fi
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if port_is_free "$port"; then
            echo "$port"
            return
        fi
    done
    die "could not find a free port on 127.0.0.1"
}

file_size() {
    if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# initdb and postgres refuse to run as root, so as root we run them as the
# `postgres` OS user (Debian's package creates it; we create it if missing).
# As a normal user we simply run them as ourselves.
PG_OS_USER=postgres

ensure_pg_os_user() {
    is_root || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating OS user $PG_OS_USER (initdb/postgres refuse to run as root)"
        useradd --system --user-group --no-create-home \
            --home-dir /var/lib/postgresql --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
}

# Run a command as the PostgreSQL OS user. cd / first: the caller's cwd may
# be unreadable for that user, which makes initdb/pg_ctl complain.
as_pg() {
    if is_root; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

# Find the directory with initdb/pg_ctl/postgres. Debian keeps them under
# /usr/lib/postgresql/<major>/bin (only wrappers/symlinks on PATH), other
# systems put them on PATH.
find_pg_bindir() {
    local d
    if [ -n "${SYNAPSOR_PG_BINDIR:-}" ]; then
        echo "$SYNAPSOR_PG_BINDIR"
        return 0
    fi
    if d=$(command -v postgres 2>/dev/null); then
        d=$(dirname "$(readlink -f "$d")")
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    fi
    # Newest installed major version.
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/postgres" ]; then
        echo "$d"
        return 0
    fi
    # e.g. /usr/local/bin/initdb as a symlink into the real bin dir.
    if d=$(command -v initdb 2>/dev/null); then
        d=$(dirname "$(readlink -f "$d")")
        if [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    fi
    return 1
}

ensure_pg_installed() {
    if PG_BIN=$(find_pg_bindir); then
        return 0
    fi
    apt_install postgresql postgresql-client
    PG_BIN=$(find_pg_bindir) || die "PostgreSQL installed but initdb/postgres not found"
}

# The PostgreSQL OS user must be able to reach its data dir. If the state dir
# sits somewhere it cannot traverse (e.g. a clone under /root, mode 0700), keep
# the PG files in a private temp dir instead and leave a symlink in the state
# dir so later runs find it again. Sets PG_HOME to the real path.
pg_prepare_home() {
    local link="$STATE_DIR/pg"
    mkdir -p "$STATE_DIR"
    if [ -L "$link" ]; then
        PG_HOME=$(readlink -f "$link" || true)
        if [ -z "$PG_HOME" ] || [ ! -d "$PG_HOME" ]; then
            # Temp dir vanished (reboot, tmp cleaner): start over.
            rm -f "$link"
            pg_prepare_home
            return
        fi
    else
        mkdir -p "$link"
        PG_HOME=$(cd "$link" && pwd -P)
        if is_root; then
            chown "$PG_OS_USER:" "$PG_HOME"
            chmod 700 "$PG_HOME"
            if ! as_pg test -w "$PG_HOME" -a -x "$PG_HOME"; then
                rmdir "$PG_HOME" 2>/dev/null || true
                PG_HOME=$(mktemp -d "${TMPDIR:-/tmp}/synapsor-test-pg.XXXXXX")
                chown "$PG_OS_USER:" "$PG_HOME"
                chmod 700 "$PG_HOME"
                rm -rf "$link"
                ln -s "$PG_HOME" "$link"
                log "user $PG_OS_USER cannot reach $STATE_DIR; keeping PostgreSQL files in $PG_HOME"
            fi
        fi
    fi
    PG_DATA="$PG_HOME/data"
    PG_SOCK_DIR="$PG_HOME/run"
    PG_LOG="$PG_HOME/postgres.log"
}

pg_running() {
    local pid
    pid=$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -d '[:space:]') || true
    [ -n "$pid" ] && pid_alive "$pid" &&
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# Port of the running postmaster (4th line of postmaster.pid).
pg_running_port() {
    sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -d '[:space:]' || true
}

# A postmaster killed hard (kill -9, OOM) whose parent has not reaped it yet
# is a zombie: its PID still "exists", so postgres refuses to start with
# "lock file postmaster.pid already exists". The zombie has exited for real;
# once no live process is still working in the data dir (backends chdir
# there), the lock file is stale and safe to remove.
pg_clear_stale_lock() {
    local lock="$PG_DATA/postmaster.pid" pid p
    pid=$(sed -n 1p "$lock" 2>/dev/null | tr -d '[:space:]') || true
    [ -n "$pid" ] || return 0
    pid_alive "$pid" && return 0
    kill -0 "$pid" 2>/dev/null || return 0 # gone entirely: postgres copes itself
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/cwd" 2>/dev/null)" = "$PG_DATA" ] && pid_alive "${p#/proc/}"; then
            return 0
        fi
    done
    log "removing stale postmaster.pid (postmaster $pid is a zombie)"
    rm -f "$lock"
    # The socket lock names the same dead PID; the socket dir is private to
    # this instance, so anything in it is stale now.
    as_pg rm -f "$PG_SOCK_DIR"/.s.PGSQL.*
}

pg_initdb() {
    local password=$1 pwfile
    log "initializing PostgreSQL data dir $PG_DATA"
    # A half-finished data dir (interrupted initdb, different major version)
    # is useless for tests: throw it away rather than try to repair it.
    as_pg rm -rf "$PG_DATA" "$PG_SOCK_DIR"
    rm -f "$STATE_DIR/pg.initialized"
    pwfile="$PG_HOME/.pwfile"
    (umask 077 && printf '%s\n' "$password" >"$pwfile")
    if is_root; then chown "$PG_OS_USER:" "$pwfile"; fi
    # scram for both TCP and socket: tests should exercise real password auth.
    # --no-sync: the data is disposable, don't pay for fsyncs.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$DB_ADMIN_USER" --pwfile="$pwfile" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >"$PG_HOME/initdb.log" 2>&1; then
        rm -f "$pwfile"
        log_tail "$PG_HOME/initdb.log"
        die "initdb failed"
    fi
    rm -f "$pwfile"
    # Durability off: these servers hold only test data, speed matters more.
    cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# --- added by synapsor scripts/dev-db.sh (throwaway test server) ---
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
EOF
    as_pg mkdir -p "$PG_SOCK_DIR"
    date >"$STATE_DIR/pg.initialized"
}

pg_start() {
    ensure_pg_installed
    ensure_pg_os_user
    pg_prepare_home

    local password port major log_from=0
    password=$(password_file "$STATE_DIR/pg.password")
    # "postgres (PostgreSQL) 15.18 (Debian ...)" -> 15, as in PG_VERSION.
    major=$("$PG_BIN/postgres" --version | awk '{print $3}' | sed 's/[^0-9].*//')

    if pg_running; then
        PG_PORT=$(pg_running_port)
        log "PostgreSQL already running on 127.0.0.1:$PG_PORT (reusing)"
    else
        if [ ! -f "$STATE_DIR/pg.initialized" ] || [ ! -f "$PG_DATA/PG_VERSION" ] ||
            [ "$(cat "$PG_DATA/PG_VERSION")" != "$major" ]; then
            pg_initdb "$password"
        fi
        as_pg mkdir -p "$PG_SOCK_DIR"
        pg_clear_stale_lock
        port=$(pick_port "$(read_file_or_empty "$STATE_DIR/pg.port")")
        log "starting PostgreSQL $major on 127.0.0.1:$port"
        log_from=$(file_size "$PG_LOG")
        # pg_ctl detaches the postmaster into its own session, so it outlives
        # this script and a Ctrl-C in the terminal. Port and socket dir are
        # passed each start (not in postgresql.conf) so a moved state dir or a
        # taken port does not break a restart.
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$DB_WAIT_SECS" \
            -o "-p $port -k $PG_SOCK_DIR -c listen_addresses=127.0.0.1" start </dev/null >/dev/null 2>&1 9>&-; then
            log_tail "$PG_LOG" "$log_from"
            die "PostgreSQL did not start within ${DB_WAIT_SECS}s"
        fi
        PG_PORT=$port
    fi
    echo "$PG_PORT" >"$STATE_DIR/pg.port"
    PG_URL="postgres://$DB_ADMIN_USER:$password@127.0.0.1:$PG_PORT/postgres"

    # pg_ctl -w only proves the socket is up; prove what tests will actually
    # do: password login over TCP.
    local i
    for ((i = 0; i < DB_WAIT_SECS; i++)); do
        if PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" "$PG_URL" -XAtqc 'select 1' >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" "$PG_URL" -XAtqc 'select 1' >&2 || true
    log_tail "$PG_LOG" "$log_from"
    die "PostgreSQL on 127.0.0.1:$PG_PORT does not accept password logins"
}

pg_stop() {
    PG_BIN=$(find_pg_bindir) || return 0
    [ -e "$STATE_DIR/pg" ] || return 0
    PG_HOME=$(readlink -f "$STATE_DIR/pg" || true)
    [ -n "$PG_HOME" ] && [ -d "$PG_HOME" ] || return 0
    PG_DATA="$PG_HOME/data"
    PG_LOG="$PG_HOME/postgres.log"
    if pg_running; then
        log "stopping PostgreSQL"
        # fast = disconnect clients and stop; "immediate" would need recovery
        # on the next start, which is slower.
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$DB_WAIT_SECS" stop >/dev/null 2>&1; then
            warn "PostgreSQL did not stop cleanly, sending SIGQUIT"
            as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t "$DB_WAIT_SECS" stop >/dev/null 2>&1 ||
                { log_tail "$PG_LOG"; return 1; }
        fi
    fi
}

pg_status() {
    PG_BIN=$(find_pg_bindir) || { echo "postgres: not installed"; return 1; }
    PG_HOME=$(readlink -f "$STATE_DIR/pg" 2>/dev/null || true)
    if [ -n "$PG_HOME" ] && [ -d "$PG_HOME" ]; then
        PG_DATA="$PG_HOME/data"
        if pg_running; then
            echo "postgres: running on 127.0.0.1:$(pg_running_port) (data $PG_DATA)"
            return 0
        fi
    fi
    echo "postgres: stopped"
    return 1
}

# ---------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------

find_mariadb_bin() {
    local name=$1 alt=$2 d
    for d in "$(command -v "$name" 2>/dev/null)" "/usr/sbin/$name" "/usr/bin/$name" \
        "$(command -v "$alt" 2>/dev/null)" "/usr/sbin/$alt" "/usr/bin/$alt"; do
        if [ -n "$d" ] && [ -x "$d" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

ensure_mariadb_installed() {
    if ! find_mariadb_bin mariadbd mysqld >/dev/null || ! find_mariadb_bin mariadb mysql >/dev/null ||
        ! find_mariadb_bin mariadb-install-db mysql_install_db >/dev/null; then
        apt_install mariadb-server mariadb-client
    fi
    MY_SERVER=$(find_mariadb_bin mariadbd mysqld) || die "mariadbd not found after install"
    MY_CLIENT=$(find_mariadb_bin mariadb mysql) || die "mariadb client not found after install"
    MY_INSTALL_DB=$(find_mariadb_bin mariadb-install-db mysql_install_db) ||
        die "mariadb-install-db not found after install"
}

my_paths() {
    MY_HOME="$STATE_DIR/mariadb"
    MY_DATA="$MY_HOME/data"
    MY_TMP="$MY_HOME/tmp"
    MY_SOCK="$MY_HOME/mariadb.sock"
    MY_PID="$MY_HOME/mariadb.pid"
    MY_LOG="$MY_HOME/mariadb.log"
    # mariadbd refuses to run as root unless told to; as root we tell it to,
    # which avoids needing the `mysql` user to reach the state dir (same
    # traversal problem as PostgreSQL) for a loopback-only test server.
    MY_OS_USER=$(id -un)
}

# PID of our mariadbd if it is running. Checks the command line, not just the
# pid, so a stale pid file whose number got reused never makes us kill (or
# trust) an unrelated process.
my_running_pid() {
    local pid
    pid=$(read_file_or_empty "$MY_PID" | tr -d '[:space:]')
    [ -n "$pid" ] || return 1
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--datadir=$MY_DATA" || return 1
    echo "$pid"
}

# Client as the bootstrap account over the private socket. That account is
# authenticated by unix_socket (the OS user), so no password is needed here.
my_admin_sql() {
    "$MY_CLIENT" --no-defaults --protocol=socket --socket="$MY_SOCK" -u "$MY_OS_USER" \
        --batch --skip-column-names "$@"
}

my_install_db() {
    log "initializing MariaDB data dir $MY_DATA"
    rm -rf "$MY_DATA" "$MY_TMP"
    rm -f "$STATE_DIR/mariadb.initialized"
    mkdir -p "$MY_DATA" "$MY_TMP"
    # --no-defaults: ignore /etc/mysql (system datadir, socket, port).
    # unix_socket auth for the bootstrap account = whoever runs this script;
    # the password-protected admin is created after the server is up.
    if ! "$MY_INSTALL_DB" --no-defaults --datadir="$MY_DATA" --user="$MY_OS_USER" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$MY_OS_USER" \
        --skip-test-db --skip-name-resolve >"$MY_HOME/install-db.log" 2>&1; then
        log_tail "$MY_HOME/install-db.log"
        die "mariadb-install-db failed"
    fi
    date >"$STATE_DIR/mariadb.initialized"
}

mariadb_start() {
    ensure_mariadb_installed
    my_paths
    mkdir -p "$MY_HOME"

    local password port pid i log_from=0
    password=$(password_file "$STATE_DIR/mariadb.password")

    if pid=$(my_running_pid); then
        port=$(read_file_or_empty "$STATE_DIR/mariadb.port")
        log "MariaDB already running on 127.0.0.1:$port (pid $pid, reusing)"
    else
        if [ ! -f "$STATE_DIR/mariadb.initialized" ] || [ ! -d "$MY_DATA/mysql" ]; then
            my_install_db
        fi
        mkdir -p "$MY_TMP"
        rm -f "$MY_SOCK" "$MY_SOCK.lock" "$MY_PID"
        port=$(pick_port "$(read_file_or_empty "$STATE_DIR/mariadb.port")")
        echo "$port" >"$STATE_DIR/mariadb.port"
        log "starting MariaDB on 127.0.0.1:$port"
        log_from=$(file_size "$MY_LOG")
        # setsid -f: own session, so the server survives this script and a
        # Ctrl-C in the terminal; `stop` (or test.sh's trap) ends it.
        # Durability/AIO settings: test data is disposable, and native AIO is
        # unavailable in some containers. 9>&- (also for pg_ctl): don't let
        # the daemon inherit dev-db.sh's lock fd, or it would hold the lock
        # forever and the next `start` would block.
        setsid -f "$MY_SERVER" --no-defaults \
            --user="$MY_OS_USER" \
            --datadir="$MY_DATA" --tmpdir="$MY_TMP" \
            --socket="$MY_SOCK" --pid-file="$MY_PID" --log-error="$MY_LOG" \
            --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
            --max-connections=300 \
            --innodb-buffer-pool-size=128M --innodb-log-file-size=64M \
            --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
            --innodb-use-native-aio=0 --skip-log-bin \
            </dev/null >>"$MY_LOG" 2>&1 9>&-
        for ((i = 0; i < DB_WAIT_SECS; i++)); do
            if my_admin_sql -e 'select 1' >/dev/null 2>&1; then
                break
            fi
            sleep 1
        done
        if ! my_admin_sql -e 'select 1' >/dev/null 2>&1; then
            log_tail "$MY_LOG" "$log_from"
            die "MariaDB did not start within ${DB_WAIT_SECS}s"
        fi
    fi

    # Idempotent, run on every start: repairs the account if a previous run
    # died half-way and keeps the password in sync with the state file.
    # '%' host (bound to 127.0.0.1 only): with skip-name-resolve a TCP login
    # from 127.0.0.1 does not match 'localhost'.
    if ! my_admin_sql >/dev/null <<EOF; then
CREATE USER IF NOT EXISTS '$DB_ADMIN_USER'@'%' IDENTIFIED BY '$password';
ALTER USER '$DB_ADMIN_USER'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO '$DB_ADMIN_USER'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
        log_tail "$MY_LOG" "$log_from"
        die "could not create MariaDB admin user"
    fi

    # Prove a password login over TCP works, as the tests will do it.
    if ! MYSQL_PWD=$password "$MY_CLIENT" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" \
        -u "$DB_ADMIN_USER" -e 'select 1' >/dev/null; then
        log_tail "$MY_LOG" "$log_from"
        die "MariaDB on 127.0.0.1:$port does not accept password logins"
    fi
    # shellcheck disable=SC2034 # read by dev-db.sh
    MY_URL="mysql://$DB_ADMIN_USER:$password@127.0.0.1:$port/mysql"
}

mariadb_stop() {
    my_paths
    local pid i
    pid=$(my_running_pid) || return 0
    log "stopping MariaDB"
    # SIGTERM is a clean shutdown for mariadbd and needs no credentials.
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < DB_WAIT_SECS; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 1
    done
    warn "MariaDB (pid $pid) did not stop within ${DB_WAIT_SECS}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

mariadb_status() {
    my_paths
    local pid
    if pid=$(my_running_pid); then
        echo "mariadb: running on 127.0.0.1:$(read_file_or_empty "$STATE_DIR/mariadb.port") (pid $pid, data $MY_DATA)"
        return 0
    fi
    echo "mariadb: stopped"
    return 1
}
