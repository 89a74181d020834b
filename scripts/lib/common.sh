# shellcheck shell=bash
#
# Helpers shared by scripts/lib/db.sh and scripts/lib/k8s.sh: messages, process
# checks, and Debian package installation. Sourced, not executed.

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Print the last lines of a log so a failed start explains itself (in CI the
# state dir is usually gone by the time someone looks). Optional $2: byte
# offset where this attempt started, so old runs in an appended-to log don't
# bury the actual error.
log_tail() {
    local file=$1 from=${2:-0}
    if [ -f "$file" ]; then
        printf -- '---- last 40 lines of %s ----\n' "$file" >&2
        tail -c +"$((from + 1))" "$file" | tail -n 40 >&2 || true
        printf -- '---- end of %s ----\n' "$file" >&2
    else
        printf '(no log file at %s)\n' "$file" >&2
    fi
}

read_file_or_empty() {
    if [ -f "$1" ]; then cat "$1"; fi
}

# kill -0 alone is not enough: a killed process whose parent (often PID 1 in a
# container) has not reaped it yet is a zombie that still "exists".
pid_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || true)
        [ "$state" != Z ] || return 1
    fi
}

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------

APT_UPDATED=0

# True if this process can run commands as root: it is root, or sudo works
# without a password.
can_be_root() {
    is_root || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

# Run "$@" as root (directly, or through password-less sudo).
as_root() {
    if is_root; then
        "$@"
    else
        sudo -n "$@"
    fi
}

# apt-get update (again, even if this process already ran it: a new apt
# source needs it). Needs can_be_root.
apt_update() {
    log "apt-get update"
    APT_UPDATED=1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2
}

# Install Debian packages without prompting; needs root or password-less
# sudo. The system service must not be started: we run private instances, and
# a system mysqld on 3306 or etcd on 2379 would just be an unexpected extra
# process. A policy-rc.d returning 101 is Debian's documented way to say
# "don't start services"; Docker images usually ship one, so only add ours if
# none exists.
apt_install() {
    can_be_root ||
        die "need to install $* but not root and no password-less sudo; install them manually (apt-get install $*)"
    command -v apt-get >/dev/null 2>&1 ||
        die "need to install $* but apt-get is not available; install them manually"

    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, added by synapsor-runner scripts\nexit 101\n' |
            as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    if [ "$APT_UPDATED" -eq 0 ]; then
        apt_update || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        log "installing $*"
        # Use-Pty=0: no progress-bar redraws in CI logs.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            -o Dpkg::Use-Pty=0 --no-install-recommends "$@" </dev/null >&2 || rc=$?
    fi
    if [ "$added_policy" -eq 1 ]; then
        as_root rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || die "apt-get failed installing $*"
}
