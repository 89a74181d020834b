#!/usr/bin/env bash
#
# A real single-node Kubernetes v1.20.2 cluster that runs pods, on this
# machine, with no Docker engine and no registry: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables),
# containerd + runc and bridge CNI, all inside a network namespace of its own.
# (scripts/k8s.sh is the lighter API-server-only instance most tests use.)
#
#   scripts/cluster.sh start    start (or reuse) the cluster; waits for the node to be Ready
#   scripts/cluster.sh env      print the export lines of the running cluster
#   scripts/cluster.sh status   show what runs (exit 0 only if everything does)
#   scripts/cluster.sh stop     stop it and undo everything start did on the host (idempotent)
#
# Typical use:  eval "$(scripts/cluster.sh start)"
#               kubectl --kubeconfig "$SYNAPSOR_CLUSTER_KUBECONFIG" get nodes
#
# Only export lines go to stdout; progress goes to stderr. Exported:
#   SYNAPSOR_CLUSTER_KUBECONFIG  <state>/admin.kubeconfig: cluster-admin (client certificate),
#                                server https://127.0.0.1:<port>, a forwarder into the namespace
#   SYNAPSOR_CLUSTER_NETNS       /run/netns/<name>: `nsenter --net=$SYNAPSOR_CLUSTER_NETNS ...`
#                                reaches ClusterIPs and pod IPs
#   SYNAPSOR_CLUSTER_CTR_SOCKET  containerd's socket: ctr -a ... -n k8s.io images import IMAGE.tar
#   SYNAPSOR_CLUSTER_NODE_IP     the node's address inside the namespace
#   SYNAPSOR_CLUSTER_STATE_DIR   <state> (default <repo>/target/cluster)
#   SYNAPSOR_KUBECTL, SYNAPSOR_HELM   kubectl and helm binaries
#
# `start` imports target/images/synapsor-runner.tar and synapsor-controller.tar
# when they exist (scripts/images.sh build makes them); pods use them with
# imagePullPolicy: Never or IfNotPresent. There is no cluster DNS: use the
# service environment variables or addresses.
#
# Environment:
#   SYNAPSOR_CLUSTER_NAME        cluster, namespace and node name (default synapsor-<hash of the
#                                repository's path>: one per checkout)
#   SYNAPSOR_CLUSTER_STATE_DIR   state dir (default <repo>/target/cluster, or target/cluster-<name>)
#   SYNAPSOR_CLUSTER_NODE_IP     node IP inside the namespace (default 172.30.0.1)
#   SYNAPSOR_CLUSTER_WAIT_SECS   how long to wait for the API server and the node (default 120)
#   SYNAPSOR_CLUSTER_KEEP_FAILED 1: leave a failed start running, to look at it
#   SYNAPSOR_KUBE_APISERVER, SYNAPSOR_KUBELET, SYNAPSOR_KUBE_CONTROLLER_MANAGER,
#   SYNAPSOR_KUBE_SCHEDULER, SYNAPSOR_KUBE_PROXY, SYNAPSOR_K8S_NODE_BIN_DIR,
#   SYNAPSOR_K8S_BUILD, SYNAPSOR_K8S_FORCE_BUILD   where the binaries come from
#                                (docs/kubernetes-testing.md)
#
# Needs root (a network namespace, mounts, cgroups, iptables). Installs what is
# missing of Debian's containerd, runc, containernetworking-plugins, conntrack,
# iptables, socat, etcd-server, gcc and libc6-dev.
set -Eeuo pipefail
# set -e exits silently; say where, so a CI log is enough to debug.
trap 'echo "error: cluster.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# shellcheck source=scripts/lib/cluster.sh
. "$SCRIPT_DIR/lib/cluster.sh"

# kubectl without downloading it (stop and status must work offline): the
# variable, PATH, the cache; else empty.
find_kubectl_offline() {
    if [ -n "${SYNAPSOR_KUBECTL:-}" ] && [ -x "$SYNAPSOR_KUBECTL" ]; then
        KUBECTL=$SYNAPSOR_KUBECTL
    elif KUBECTL=$(command -v kubectl 2>/dev/null); then
        :
    elif [ -x "$KUBECTL_CACHE" ]; then
        KUBECTL=$KUBECTL_CACHE
    else
        KUBECTL=""
    fi
}

cmd_start() {
    cluster_preflight
    cluster_init
    cluster_lock
    # Tools and binaries first: no point in touching the host when one is missing.
    find_kubectl
    find_helm
    cluster_ensure_packages
    cluster_find_bins
    if cluster_running; then
        log "cluster $CLUSTER_NAME already runs (reusing; 127.0.0.1:$(cat "$RUN/forward.port") -> $NETNS_PATH)"
        import_images
        node_ready || warn "node $NODE_NAME is not Ready"
    else
        cluster_start
    fi
    (umask 077 && cluster_print_env >"$STATE_DIR/env")
    log "stop with: scripts/cluster.sh stop   (env also in $STATE_DIR/env)"
    cluster_print_env
}

cmd_env() {
    if ! cluster_init existing || ! cluster_running || [ ! -f "$STATE_DIR/env" ]; then
        die "cluster ${CLUSTER_NAME:-$(cluster_default_name)} is not running; run: $0 start"
    fi
    cat "$STATE_DIR/env"
}

cmd_stop() {
    is_root || die "scripts/cluster.sh needs root"
    cluster_init existing || return 0
    cluster_lock
    find_kubectl_offline
    local t0 rc=0
    t0=$(now_ms)
    cluster_stop || rc=$?
    if [ "$rc" -eq 0 ]; then
        log "cluster $CLUSTER_NAME stopped in $(elapsed "$t0")"
    else
        warn "cluster $CLUSTER_NAME stopped in $(elapsed "$t0"), with the problems above"
    fi
    return "$rc"
}

cmd_status() {
    if ! cluster_init existing; then
        echo "cluster ${SYNAPSOR_CLUSTER_NAME:-$(cluster_default_name)}: no state dir"
        return 3
    fi
    find_kubectl_offline
    echo "cluster $CLUSTER_NAME (state $STATE_DIR)"
    cluster_status
}

# `|| rc=$?`: a deliberate non-zero (status: "not running") is not an
# unexpected failure, so keep it away from the ERR trap.
rc=0
case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop || rc=$? ;;
status) cmd_status || rc=$? ;;
env) cmd_env ;;
*)
    sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
exit "$rc"
