# shellcheck shell=bash
#
# Helpers for scripts/cluster.sh: a real single-node Kubernetes v1.20.2 cluster
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy in iptables mode, containerd + runc, bridge CNI) that runs pods,
# entirely inside a network namespace of its own. Sourced, not executed.
#
# Set before sourcing: REPO_ROOT. cluster_init sets the rest.
#
# Nothing of a cluster may send a packet anywhere but loopback or its own
# namespace. The guards:
#   1. Every process runs in the network namespace /run/netns/<name>
#      (`nsenter --net`, never `ip netns exec`: that also gives each process a
#      mount namespace of its own, and the kubelet's mounts would vanish from
#      containerd's view). Pods and Services live in there too.
#   2. The namespace's only link besides loopback and the pods' bridge is a
#      veth pair with both ends inside it. The default route points through
#      it at an address nobody has (components that look for a default route
#      find one), but two `unreachable` halves (0/1, 128/1) override it, so a
#      connection to any other address fails at once, with no packet sent;
#      only the Service range keeps the route through the veth (a connection
#      from the node to a ClusterIP must route before kube-proxy's DNAT turns
#      it into a pod address). A DROP rule on that veth (mangle POSTROUTING,
#      a table neither kubelet nor kube-proxy touches) ends any packet that
#      still heads that way. Pods get `nameserver 127.0.0.1`, so not even a
#      DNS query heads for the host's resolver.
#   3. The host reaches the API server only through a forwarder from
#      127.0.0.1:<free port> into the namespace; and while the cluster runs,
#      the host routes its Service and pod ranges into a blackhole, so that a
#      ClusterIP handed to a host process never leaves the machine.
#
# Layout of $STATE_DIR (default <repo>/target/cluster):
#   pki/                 CA, serving/client certificates, service-account keys
#   admin.kubeconfig     cluster-admin for the host, via the forwarder
#   internal/            kubeconfigs of the components (https://127.0.0.1:6443
#                        inside the namespace), kubelet config, resolv.conf
#   containerd/          config.toml, root (images; kept across stop/start),
#                        state, runc state, the socket
#   cni/                 net.d/ (the bridge conflist), ipam/
#   kubelet/             the kubelet's root dir
#   images/              the pause image (built from scripts/lib/pause.c)
#   run/                 pid files, cmdline markers, ports, what `start`
#                        changed on the host (undone by `stop`)
#   logs/                one log per process
#   env                  the export lines of the running cluster

: "${REPO_ROOT:?set REPO_ROOT before sourcing cluster.sh}"

# shellcheck source=scripts/lib/k8s.sh
. "$(dirname "${BASH_SOURCE[0]}")/k8s.sh"

CLUSTER_SERVICE_CIDR=10.96.0.0/24
CLUSTER_SERVICE_IP=10.96.0.1
CLUSTER_POD_SUBNET=10.244.0.0/24
CLUSTER_POD_GATEWAY=10.244.0.1
CLUSTER_POD_SUPERNET=10.244.0.0/16
# Ports inside the namespace (each cluster has its own namespace).
CLUSTER_API_PORT=6443
CLUSTER_ETCD_PORT=2379
CLUSTER_ETCD_PEER_PORT=2380
# Names of the veth pair inside the namespace.
CLUSTER_VETH=synapsor0
CLUSTER_VETH_PEER=synapsor1
PAUSE_IMAGE=localhost/synapsor/pause:1
CLUSTER_WAIT_SECS=${SYNAPSOR_CLUSTER_WAIT_SECS:-120}
# klog verbosity of the Kubernetes components (their logs are in logs/).
CLUSTER_VERBOSITY=${SYNAPSOR_CLUSTER_VERBOSITY:-0}
# Started in this order; stopped in reverse, except that kube-controller-
# manager and kube-scheduler go first (so nothing new gets scheduled while the
# pods are deleted) and containerd last.
CLUSTER_PROCS=(containerd etcd kube-apiserver forward kube-controller-manager kube-scheduler kubelet kube-proxy)
# Kernel settings the kubelet changes globally (not per namespace) when they
# differ from what it wants; the last `stop` puts back the values from before
# the first start.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths that containerd, the kubelet, CNI and `ip netns` create when
# missing; the last `stop` removes those that were missing before the first
# start and are empty again.
HOST_DIRS=(/var/log/pods /var/log/containers /var/lib/cni/results /var/lib/cni
    /run/containerd/s /run/containerd /run/netns /var/lib/kubelet/device-plugins /var/lib/kubelet)
# The kubelet 1.20 puts its device-plugin socket in /var/lib/kubelet/
# device-plugins whatever its --root-dir (shared by all clusters; unused).
KUBELET_DEVICE_PLUGIN_FILES=(kubelet.sock DEPRECATION)
# What the clusters running on this machine share: one file per running
# cluster, the kernel settings and host dirs from before the first start.
# Exists only while a cluster runs.
HOST_REG=/run/synapsor-clusters

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

# The default name is per checkout ("synapsor-" and a hash of the repository's
# path): network namespaces, cgroups and host routes are machine-wide, so two
# clones on one machine (a developer's and a CI run's) must not share a name.
cluster_default_name() {
    printf 'synapsor-%06x' "$(($(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1) % 16777216))"
}

# Sets the cluster's names and paths from the environment. Returns 1 if the
# state dir does not exist and $1 is "existing" (then it creates nothing).
cluster_init() {
    CLUSTER_NAME=${SYNAPSOR_CLUSTER_NAME:-$(cluster_default_name)}
    [[ "$CLUSTER_NAME" =~ ^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$ ]] ||
        die "SYNAPSOR_CLUSTER_NAME=$CLUSTER_NAME: use 1-24 of a-z, 0-9 and '-' (not at either end)"
    local default_state=$REPO_ROOT/target/cluster
    [ -z "${SYNAPSOR_CLUSTER_NAME:-}" ] || default_state=$REPO_ROOT/target/cluster-$CLUSTER_NAME
    STATE_DIR=${SYNAPSOR_CLUSTER_STATE_DIR:-$default_state}
    if [ ! -d "$STATE_DIR" ]; then
        [ "${1:-}" != existing ] || return 1
        mkdir -p "$STATE_DIR"
    fi
    STATE_DIR=$(cd "$STATE_DIR" && pwd)
    [[ "$STATE_DIR" =~ ^[A-Za-z0-9/._+-]+$ ]] ||
        die "state dir $STATE_DIR: only letters, digits and / . _ + - please (it ends up in mount tables and configs)"
    NODE_NAME=$CLUSTER_NAME
    NODE_IP=${SYNAPSOR_CLUSTER_NODE_IP:-172.30.0.1}
    [[ "$NODE_IP" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
        die "SYNAPSOR_CLUSTER_NODE_IP=$NODE_IP is not an IPv4 address"
    [ "${BASH_REMATCH[4]}" != 254 ] || die "SYNAPSOR_CLUSTER_NODE_IP must not end in .254 (the dead-end gateway)"
    # The default route of the namespace: an address in the node's /24 that
    # nobody has.
    DEAD_GATEWAY="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}.254"
    NETNS=$CLUSTER_NAME
    NETNS_PATH=/run/netns/$NETNS
    CGROUP_ROOT=/k8s-$CLUSTER_NAME
    CTR_SOCKET=$STATE_DIR/containerd/containerd.sock
    [ "${#CTR_SOCKET}" -le 100 ] ||
        die "$CTR_SOCKET is too long for a unix socket; set SYNAPSOR_CLUSTER_STATE_DIR to a shorter path"
    PKI=$STATE_DIR/pki
    RUN=$STATE_DIR/run
    LOGS=$STATE_DIR/logs
    INTERNAL=$STATE_DIR/internal
    # A per-cluster metric, so that two clusters' blackhole routes for the
    # same ranges are two routes, each removed by its own `stop`.
    ROUTE_METRIC=$((3000 + $(printf '%s' "$CLUSTER_NAME" | cksum | cut -d' ' -f1) % 1000))
    # Every component inherits this; proxies would be unreachable in there.
    SPAWN_ENV=(env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY
        -u no_proxy -u NO_PROXY -u KUBECONFIG "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    IN_NS=(nsenter "--net=$NETNS_PATH")
}

# Serialize start/stop on one state dir.
cluster_lock() {
    exec 9>"$STATE_DIR/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 600 9 || die "timed out waiting for another cluster.sh on $STATE_DIR"
    fi
}

# Debian packages for the commands a cluster needs; one apt-get for all.
cluster_ensure_packages() {
    local missing=() libc_a
    command -v containerd >/dev/null 2>&1 || missing+=(containerd)
    command -v ctr >/dev/null 2>&1 || missing+=(containerd)
    [ -x /usr/sbin/runc ] || command -v runc >/dev/null 2>&1 || missing+=(runc)
    [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] ||
        missing+=(containernetworking-plugins)
    command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v socat >/dev/null 2>&1 || missing+=(socat)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v zstd >/dev/null 2>&1 || missing+=(zstd)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    libc_a=$(gcc -print-file-name=libc.a 2>/dev/null || true)
    [ -f "$libc_a" ] || missing+=(libc6-dev)
    if [ "${#missing[@]}" -gt 0 ]; then
        # shellcheck disable=SC2207 # package names have no spaces
        missing=($(printf '%s\n' "${missing[@]}" | sort -u))
        apt_install "${missing[@]}"
    fi
    RUNC_BIN=$(command -v runc 2>/dev/null || echo /usr/sbin/runc)
    ensure_etcd
}

# Check the machine before touching it.
cluster_preflight() {
    is_root || die "scripts/cluster.sh needs root (network namespace, mounts, cgroups, iptables)"
    [ "$(uname -s)" = Linux ] || die "scripts/cluster.sh runs on Linux only"
    grep -q '^cgroup /sys/fs/cgroup/memory ' /proc/mounts ||
        warn "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory: Kubernetes 1.20's kubelet is only known to work with cgroup v1 here"
    grep -qw overlay /proc/filesystems || die "the kernel lacks the overlay filesystem (containerd's snapshotter needs it)"
}

# The binaries: kube-apiserver as scripts/k8s.sh finds it, the four node
# components likewise (lib/k8s.sh: find_node_bins). A wrong version is only
# a warning, for people who point the variables at a newer build.
cluster_find_bins() {
    local name var v
    find_kube_apiserver
    find_node_bins
    for name in kube-apiserver "${K8S_NODE_COMPONENTS[@]}"; do
        if [ "$name" = kube-apiserver ]; then var=APISERVER_BIN; else var=$(k8s_bin_var_name "$name"); fi
        v=$("${!var}" --version 2>/dev/null) || die "${!var} --version failed (wrong architecture?)"
        [ "$v" = "Kubernetes $K8S_VERSION" ] || warn "$name is '$v' (${!var}); this setup is made for $K8S_VERSION"
    done
}

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

# Print the pid of our running $1 (one of CLUSTER_PROCS), or return 1. The
# pid file alone is not trusted: the process must have the marker that was
# recorded when it was started (a path in this state dir or namespace) on
# its command line.
cluster_pid() {
    local name=$1 pid marker
    pid=$(read_file_or_empty "$RUN/$name.pid" | tr -d '[:space:]')
    [ -n "$pid" ] || return 1
    marker=$(read_file_or_empty "$RUN/$name.marker")
    [ -n "$marker" ] || return 1
    pid_alive "$pid" || return 1
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker" || return 1
    echo "$pid"
}

# cluster_spawn NAME MARKER host|netns COMMAND...: start detached in its own
# session (lib/k8s.sh: spawn), in the namespace unless "host".
cluster_spawn() {
    local name=$1 marker=$2 where=$3
    shift 3
    printf '%s\n' "$marker" >"$RUN/$name.marker"
    if [ "$where" = netns ]; then
        set -- "${IN_NS[@]}" -- "$@"
    fi
    spawn "$RUN/$name.pid" "$LOGS/$name.log" "${SPAWN_ENV[@]}" "$@" ||
        die "could not start $name (log: $LOGS/$name.log)"
    # The marker is on the command line once nsenter has exec'd the program.
    local i
    for ((i = 0; i < 50; i++)); do
        cluster_pid "$name" >/dev/null && return 0
        pid_alive "$(cat "$RUN/$name.pid")" || break
        sleep 0.05
    done
    log_tail "$LOGS/$name.log"
    die "$name exited right after its start"
}

# Stop our $1 (SIGTERM, then SIGKILL after $2 seconds, default 10). The
# forwarder is stopped with its process group: socat forks a child per
# connection.
cluster_stop_proc() {
    local name=$1 secs=${2:-10} pid i target
    if pid=$(cluster_pid "$name"); then
        log "stopping $name (pid $pid)"
        target=$pid
        [ "$name" != forward ] || target=-$pid
        kill -TERM -- "$target" 2>/dev/null || true
        for ((i = 0; i < secs * 10; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            warn "$name (pid $pid) did not stop within ${secs}s, killing it"
            kill -KILL -- "$target" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                pid_alive "$pid" || break
                sleep 0.1
            done
            if pid_alive "$pid"; then
                warn "$name (pid $pid) survived SIGKILL"
                return 1
            fi
        fi
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.marker"
}

# Wait until "$@" succeeds, at most $1 seconds, polling every 0.25 s; fail
# early if the process $2 (a CLUSTER_PROCS name, or "-") stops running.
wait_for() {
    local secs=$1 proc=$2 i
    shift 2
    for ((i = 0; i < secs * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        if [ "$proc" != - ] && ! cluster_pid "$proc" >/dev/null; then
            return 1
        fi
        sleep 0.25
    done
    return 1
}

ns_curl() {
    "${IN_NS[@]}" curl -fsS --noproxy '*' --max-time 3 "$@"
}

# kubectl as admin from the host (through the forwarder) / inside the namespace.
kc() {
    "$KUBECTL" --kubeconfig "$STATE_DIR/admin.kubeconfig" --request-timeout=10s "$@"
}
kc_ns() {
    "${IN_NS[@]}" "${SPAWN_ENV[@]}" "$KUBECTL" --kubeconfig "$INTERNAL/admin.kubeconfig" --request-timeout=10s "$@"
}

# ---------------------------------------------------------------------------
# Host changes: recorded in $RUN, undone by stop
# ---------------------------------------------------------------------------

# Hold the machine-wide lock (a flock on /run itself, so that no lock file
# is left behind) while "$@" runs.
with_host_lock() {
    local rc=0
    exec 8</run
    flock -w 120 8 || die "timed out waiting for another cluster.sh (flock on /run)"
    "$@" || rc=$?
    flock -u 8
    exec 8<&-
    return "$rc"
}

# Register this cluster in $HOST_REG; the first one also notes the kernel
# settings and which HOST_DIRS do not exist yet.
host_register() {
    local d k
    mkdir -p "$HOST_REG/clusters"
    if [ ! -f "$HOST_REG/sysctl.orig" ]; then
        for k in "${KUBELET_SYSCTLS[@]}"; do
            printf '%s %s\n' "$k" "$(sysctl -n "$k" 2>/dev/null || echo '?')"
        done >"$HOST_REG/sysctl.orig"
    fi
    for d in "${HOST_DIRS[@]}"; do
        if [ ! -e "$d" ] && ! grep -qxF "$d" "$HOST_REG/host-dirs" 2>/dev/null; then
            echo "$d" >>"$HOST_REG/host-dirs"
        fi
    done
    echo "$STATE_DIR" >"$HOST_REG/clusters/$CLUSTER_NAME"
}

# Unregister; when no other cluster is left (one whose namespace is gone
# counts as gone), put back the kernel settings, remove the empty host dirs
# made since, and $HOST_REG itself.
host_unregister() {
    local f k v now d other
    [ -d "$HOST_REG" ] || return 0
    f=$HOST_REG/clusters/$CLUSTER_NAME
    [ "$(read_file_or_empty "$f")" != "$STATE_DIR" ] || rm -f "$f"
    for f in "$HOST_REG"/clusters/*; do
        [ -f "$f" ] || continue
        other=$(basename "$f")
        if [ -e "/run/netns/$other" ]; then
            log "cluster $other still runs: leaving the shared host settings to its stop"
            return 0
        fi
        rm -f "$f"
    done
    if [ -f "$HOST_REG/sysctl.orig" ]; then
        while read -r k v; do
            [ "$v" != '?' ] || continue
            now=$(sysctl -n "$k" 2>/dev/null || true)
            if [ "$now" != "$v" ]; then
                log "restoring $k=$v (the kubelet set $now)"
                sysctl -qw "$k=$v" || warn "could not restore $k=$v"
            fi
        done <"$HOST_REG/sysctl.orig"
    fi
    if [ -f "$HOST_REG/host-dirs" ]; then
        if grep -qxF /var/lib/kubelet/device-plugins "$HOST_REG/host-dirs"; then
            for f in "${KUBELET_DEVICE_PLUGIN_FILES[@]}"; do
                rm -f "/var/lib/kubelet/device-plugins/$f"
            done
        fi
        # Made for these clusters: only their pods' logs are in there.
        for d in /var/log/pods /var/log/containers; do
            if grep -qxF "$d" "$HOST_REG/host-dirs" && [ -d "$d" ]; then
                find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
            fi
        done
        while read -r d; do
            if [ ! -d "$d" ] || [ -n "$(ls -A "$d" 2>/dev/null)" ]; then
                continue
            fi
            if [ "$d" = /run/netns ]; then
                # `ip netns add` bind-mounted it onto itself.
                while grep -q ' /run/netns ' /proc/mounts; do umount /run/netns 2>/dev/null || break; done
            fi
            rmdir "$d" 2>/dev/null || true
        done <"$HOST_REG/host-dirs"
    fi
    rm -rf "$HOST_REG"
}

# Guard 3, host side: the Service and pod ranges lead nowhere on the host.
add_host_blackholes() {
    local cidr
    for cidr in "$CLUSTER_SERVICE_CIDR" "$CLUSTER_POD_SUPERNET"; do
        if ip route add blackhole "$cidr" metric "$ROUTE_METRIC" 2>/dev/null ||
            ip route show type blackhole "$cidr" | grep -q "metric $ROUTE_METRIC"; then
            grep -qxF "$cidr" "$RUN/routes" 2>/dev/null || echo "$cidr" >>"$RUN/routes"
        else
            die "could not add the host route: blackhole $cidr metric $ROUTE_METRIC"
        fi
    done
}

remove_host_blackholes() {
    local cidr
    [ -f "$RUN/routes" ] || return 0
    while read -r cidr; do
        [ -n "$cidr" ] || continue
        ip route del blackhole "$cidr" metric "$ROUTE_METRIC" 2>/dev/null || true
    done <"$RUN/routes"
    rm -f "$RUN/routes"
}

# ---------------------------------------------------------------------------
# Network namespace (guards 1 and 2)
# ---------------------------------------------------------------------------

netns_owned() {
    [ -e "$NETNS_PATH" ] && [ "$(read_file_or_empty "$RUN/netns.owner")" = "$NETNS_PATH" ]
}

# True if a cluster of the same name from another state dir runs: its
# namespace, cgroups and registration are not ours to touch.
name_taken() {
    [ -e "$NETNS_PATH" ] && ! netns_owned
}

name_taken_message() {
    echo "network namespace $NETNS exists but was not made by this state dir ($STATE_DIR);
  use another SYNAPSOR_CLUSTER_NAME, or stop the cluster that owns it (or: ip netns delete $NETNS)"
}

netns_up() {
    if [ -e "$NETNS_PATH" ]; then
        netns_owned || die "$(name_taken_message)"
    else
        ip netns add "$NETNS"
        echo "$NETNS_PATH" >"$RUN/netns.owner"
    fi
    local x=("${IN_NS[@]}")
    "${x[@]}" ip link set lo up
    if ! "${x[@]}" ip link show "$CLUSTER_VETH" >/dev/null 2>&1; then
        "${x[@]}" ip link add "$CLUSTER_VETH" type veth peer name "$CLUSTER_VETH_PEER"
        "${x[@]}" sysctl -qw "net.ipv6.conf.$CLUSTER_VETH.disable_ipv6=1" "net.ipv6.conf.$CLUSTER_VETH_PEER.disable_ipv6=1" 2>/dev/null || true
        "${x[@]}" ip addr add "$NODE_IP/24" dev "$CLUSTER_VETH"
        "${x[@]}" ip link set "$CLUSTER_VETH" up
        "${x[@]}" ip link set "$CLUSTER_VETH_PEER" up
    fi
    "${x[@]}" ip route replace default via "$DEAD_GATEWAY" dev "$CLUSTER_VETH"
    "${x[@]}" ip route replace unreachable 0.0.0.0/1
    "${x[@]}" ip route replace unreachable 128.0.0.0/1
    "${x[@]}" ip route replace "$CLUSTER_SERVICE_CIDR" via "$DEAD_GATEWAY" dev "$CLUSTER_VETH"
    "${x[@]}" sysctl -qw net.ipv4.ip_forward=1
    "${x[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 ||
        die "no bridge netfilter (net.bridge.bridge-nf-call-iptables) in the namespace: Services would not work from pods"
    local t
    for t in iptables ip6tables; do
        "${x[@]}" "$t" -w -t mangle -C POSTROUTING -o "$CLUSTER_VETH" -j DROP 2>/dev/null ||
            "${x[@]}" "$t" -w -t mangle -I POSTROUTING 1 -o "$CLUSTER_VETH" -j DROP ||
            die "could not add the $t guard rule in the namespace"
    done
}

# Show, for the record, that the namespace routes nothing off the machine.
netns_describe() {
    "${IN_NS[@]}" ip -4 -o addr show | awk '{print "    " $2 " " $4}' >&2
    "${IN_NS[@]}" ip route | sed 's/^/    route: /' >&2
}

netns_delete() {
    if netns_owned; then
        log "deleting network namespace $NETNS (and its veth pair, bridge and iptables rules)"
        ip netns delete "$NETNS" || warn "ip netns delete $NETNS failed"
    elif [ -e "$NETNS_PATH" ]; then
        warn "not deleting network namespace $NETNS: not made by $STATE_DIR"
    fi
    rm -f "$RUN/netns.owner"
}

# ---------------------------------------------------------------------------
# Certificates, kubeconfigs, configs
# ---------------------------------------------------------------------------

# Made once per state dir (and again when the name or node IP change).
cluster_certs() {
    local id="$NODE_NAME $NODE_IP" f complete=1
    for f in ca.crt ca.key apiserver.crt apiserver.key admin.crt admin.key kubelet-client.crt \
        kubelet-client.key node.crt node.key sa.key sa.pub; do
        [ -s "$PKI/$f" ] || complete=0
    done
    if [ "$complete" -eq 1 ] && [ "$(read_file_or_empty "$PKI/identity")" = "$id" ]; then
        return 0
    fi
    log "generating certificates in $PKI"
    rm -rf "$PKI"
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    (
        cd "$PKI" &&
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
                -subj "/CN=synapsor-cluster-$CLUSTER_NAME-ca" &&
            printf '%s\n' 'basicConstraints=CA:FALSE' \
                'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=serverAuth' \
                "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$CLUSTER_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
                >server.ext &&
            printf '%s\n' 'basicConstraints=CA:FALSE' \
                'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=clientAuth' >client.ext &&
            openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" &&
            openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -out apiserver.crt -days 3650 -extfile server.ext &&
            for c in "admin:/O=system:masters/CN=admin" \
                "kubelet-client:/O=system:masters/CN=kube-apiserver-kubelet-client" \
                "node:/O=system:nodes/CN=system:node:$NODE_NAME"; do
                openssl req -newkey rsa:2048 -nodes -keyout "${c%%:*}.key" -out "${c%%:*}.csr" -subj "${c#*:}" &&
                    openssl x509 -req -in "${c%%:*}.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
                        -out "${c%%:*}.crt" -days 3650 -extfile client.ext || exit 1
            done &&
            openssl genrsa -out sa.key 2048 &&
            openssl rsa -in sa.key -pubout -out sa.pub &&
            rm -f ./*.csr ./*.ext ./*.srl &&
            chmod 600 ./*.key &&
            echo "$id" >identity
    ) >"$LOGS/openssl.log" 2>&1 || {
        log_tail "$LOGS/openssl.log"
        rm -rf "$PKI"
        die "generating certificates failed"
    }
}

# write_kc FILE SERVER CERT_BASENAME: a kubeconfig with embedded certificates.
write_kc() {
    local out=$1 server=$2 who=$3
    (
        umask 077
        cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: synapsor-$CLUSTER_NAME
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $who
  user:
    client-certificate-data: $(b64 "$PKI/$who.crt")
    client-key-data: $(b64 "$PKI/$who.key")
contexts:
- name: synapsor-$CLUSTER_NAME
  context: {cluster: synapsor-$CLUSTER_NAME, user: $who, namespace: default}
current-context: synapsor-$CLUSTER_NAME
EOF
    )
    mv -f "$out.tmp" "$out"
}

cluster_configs() {
    local inside="https://127.0.0.1:$CLUSTER_API_PORT"
    mkdir -p "$INTERNAL" "$STATE_DIR/containerd" "$STATE_DIR/cni/net.d" "$STATE_DIR/cni/ipam" \
        "$STATE_DIR/kubelet/pki" "$STATE_DIR/kubelet/volume-plugins"
    write_kc "$INTERNAL/admin.kubeconfig" "$inside" admin
    write_kc "$INTERNAL/node.kubeconfig" "$inside" node

    # Pods resolve through 127.0.0.1 only: no cluster DNS, and no query
    # towards the host's resolver.
    echo 'nameserver 127.0.0.1' >"$INTERNAL/resolv.conf"

    cat >"$STATE_DIR/containerd/config.toml" <<EOF
# Written by scripts/cluster.sh for cluster "$CLUSTER_NAME"; rewritten at each start.
version = 2
root = "$STATE_DIR/containerd/root"
state = "$STATE_DIR/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTR_SOCKET"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE_DIR/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  # This machine's bounding set lacks CAP_SYS_RESOURCE: without this, runc
  # fails to give the pause container oom_score_adj -998 ("can't get final
  # child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$RUNC_BIN"
        Root = "$STATE_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
    max_conf_num = 1
EOF

    cat >"$STATE_DIR/cni/net.d/10-synapsor.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "synapsor-$CLUSTER_NAME", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE_DIR/cni/ipam",
            "ranges": [[{"subnet": "$CLUSTER_POD_SUBNET", "gateway": "$CLUSTER_POD_GATEWAY"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF

    cat >"$INTERNAL/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
oomScoreAdj: 0
clusterDomain: cluster.local
clusterDNS: []
resolvConf: $INTERNAL/resolv.conf
staticPodPath: ""
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
# Ready one status update after registering: 2 s instead of 10.
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
EOF
}

# ---------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------

# Mount points of every cgroup hierarchy (v1 and v2).
cgroup_mounts() {
    awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts
}

# The kubelet's cgroupRoot must exist; make it in every hierarchy (cpuset
# needs its cpus and mems filled in before anything can join).
cgroups_create() {
    local mp d f
    while read -r mp; do
        d=$mp$CGROUP_ROOT
        [ -d "$d" ] || mkdir "$d" 2>/dev/null || continue
        for f in cpuset.cpus cpuset.mems; do
            if [ -f "$d/$f" ] && [ -z "$(cat "$d/$f")" ]; then
                cat "$mp/$f" >"$d/$f"
            fi
        done
    done < <(cgroup_mounts)
}

# Remove the cgroup tree in every hierarchy. A process still in there can
# only be a container of this cluster: it gets SIGKILL, then we retry.
cgroups_remove() {
    local mp d pids attempt left=0
    for attempt in 1 2 3; do
        left=0
        while read -r mp; do
            d=$mp$CGROUP_ROOT
            [ -d "$d" ] || continue
            find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
            if [ -d "$d" ]; then
                left=1
                pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | tr '\n' ' ')
                if [ -n "${pids// /}" ] && [ "$attempt" -lt 3 ]; then
                    warn "processes left in $d: $pids; killing them"
                    # shellcheck disable=SC2086 # a list of pids
                    kill -KILL $pids 2>/dev/null || true
                fi
            fi
        done < <(cgroup_mounts)
        [ "$left" -eq 1 ] || return 0
        sleep 1
    done
    warn "could not remove every cgroup $CGROUP_ROOT (see: ls -d /sys/fs/cgroup/*$CGROUP_ROOT)"
    return 1
}

# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

# The pause image: scripts/lib/pause.c, static, the only file of the image.
pause_image_archive() {
    local src="$REPO_ROOT/scripts/lib/pause.c" dir="$STATE_DIR/images" out
    out=$dir/pause.tar
    if [ -f "$out" ] && [ "$out" -nt "$src" ]; then
        echo "$out"
        return 0
    fi
    log "building the pause image from scripts/lib/pause.c"
    rm -rf "$dir/pause-rootfs"
    mkdir -p "$dir/pause-rootfs"
    gcc -static -O2 -s -o "$dir/pause-rootfs/pause" "$src" >&2 || die "gcc -static failed on $src"
    python3 "$REPO_ROOT/scripts/lib/docker_archive.py" --rootfs "$dir/pause-rootfs" --ref "$PAUSE_IMAGE" \
        --out "$out.tmp" --entrypoint /pause --user 0:0 \
        --label "org.opencontainers.image.title=synapsor-pause" >/dev/null
    mv -f "$out.tmp" "$out"
    rm -rf "$dir/pause-rootfs"
    echo "$out"
}

ctr_k8s() {
    ctr -a "$CTR_SOCKET" -n k8s.io "$@"
}

# The pause image (when missing), then the project's images (each start:
# they may have been rebuilt). Runs in the background during start.
import_images() {
    local archive
    if ! ctr_k8s images ls -q 2>/dev/null | grep -qxF "$PAUSE_IMAGE"; then
        archive=$(pause_image_archive)
        ctr_k8s images import "$archive" >/dev/null
        log "imported $PAUSE_IMAGE"
    fi
    if [ -f "$REPO_ROOT/target/images/synapsor-runner.tar" ] &&
        [ -f "$REPO_ROOT/target/images/synapsor-controller.tar" ]; then
        bash "$REPO_ROOT/scripts/images.sh" import "$CTR_SOCKET"
    else
        warn "target/images/synapsor-{runner,controller}.tar not found: not importing the project's images (build them with scripts/images.sh build)"
    fi
}

# ---------------------------------------------------------------------------
# The components
# ---------------------------------------------------------------------------

start_containerd() {
    mkdir -p "$STATE_DIR/containerd/root" "$STATE_DIR/containerd/state" "$STATE_DIR/containerd/runc" \
        "$STATE_DIR/containerd/opt"
    cluster_spawn containerd "--config $STATE_DIR/containerd/config.toml" netns \
        containerd --config "$STATE_DIR/containerd/config.toml"
    wait_for 30 containerd ctr -a "$CTR_SOCKET" version || {
        log_tail "$LOGS/containerd.log"
        die "containerd did not answer on $CTR_SOCKET"
    }
}

start_etcd() {
    local data unset_etcd=() v
    data=$(mktemp -d /dev/shm/synapsor-cluster-etcd.XXXXXX 2>/dev/null) || {
        data=$STATE_DIR/etcd-data
        rm -rf "$data"
        mkdir -p "$data"
    }
    chmod 700 "$data"
    echo "$data" >"$RUN/etcd.data"
    while IFS= read -r v; do
        unset_etcd+=(-u "$v")
    done < <(compgen -e | grep '^ETCD_' || true)
    cluster_spawn etcd "--data-dir=$data" netns env "${unset_etcd[@]}" "$ETCD_BIN" \
        --name="$CLUSTER_NAME" --data-dir="$data" \
        --listen-client-urls="http://127.0.0.1:$CLUSTER_ETCD_PORT" \
        --advertise-client-urls="http://127.0.0.1:$CLUSTER_ETCD_PORT" \
        --listen-peer-urls="http://127.0.0.1:$CLUSTER_ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$CLUSTER_ETCD_PEER_PORT" \
        --initial-cluster="$CLUSTER_NAME=http://127.0.0.1:$CLUSTER_ETCD_PEER_PORT" \
        --initial-cluster-state=new --listen-metrics-urls=""
    wait_for 30 etcd ns_curl "http://127.0.0.1:$CLUSTER_ETCD_PORT/health" || {
        log_tail "$LOGS/etcd.log"
        die "etcd did not get healthy"
    }
}

remove_etcd_data_dir() {
    local dir
    dir=$(read_file_or_empty "$RUN/etcd.data")
    case "$dir" in
    /dev/shm/synapsor-cluster-etcd.* | "$STATE_DIR/etcd-data") rm -rf "$dir" ;;
    "") ;;
    *) warn "not deleting unexpected etcd data dir $dir" ;;
    esac
    rm -f "$RUN/etcd.data"
}

# Started without waiting: the kubelet can spend its first seconds (cAdvisor)
# while the API server comes up; cluster_apiserver_wait waits.
start_apiserver() {
    cluster_spawn kube-apiserver "--tls-cert-file=$PKI/apiserver.crt" netns "$APISERVER_BIN" \
        --etcd-servers="http://127.0.0.1:$CLUSTER_ETCD_PORT" \
        --bind-address=0.0.0.0 --secure-port="$CLUSTER_API_PORT" \
        --advertise-address="$NODE_IP" \
        --cert-dir="$PKI" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$CLUSTER_SERVICE_CIDR" \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction,ServiceAccount \
        --allow-privileged=true --enable-priority-and-fairness=false --profiling=false \
        --v="$CLUSTER_VERBOSITY"
}

cluster_apiserver_wait() {
    wait_for "$CLUSTER_WAIT_SECS" kube-apiserver ns_curl --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
        --key "$PKI/admin.key" "https://127.0.0.1:$CLUSTER_API_PORT/readyz" || {
        log_tail "$LOGS/kube-apiserver.log"
        die "kube-apiserver did not get ready"
    }
}

# The host's only way in: 127.0.0.1:<free port> -> the API server inside.
start_forwarder() {
    local attempt port
    for attempt in 1 2 3; do
        port=$(pick_ports 1)
        echo "$port" >"$RUN/forward.port"
        write_kc "$STATE_DIR/admin.kubeconfig" "https://127.0.0.1:$port" admin
        cluster_spawn forward "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork EXEC:nsenter --net=$NETNS_PATH " host \
            socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
            "EXEC:nsenter --net=$NETNS_PATH socat STDIO TCP\\:127.0.0.1\\:$CLUSTER_API_PORT"
        if wait_for 10 forward curl -fsS --noproxy '*' --max-time 3 --cacert "$PKI/ca.crt" \
            --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"; then
            return 0
        fi
        warn "the forwarder on 127.0.0.1:$port did not work; trying another port"
        log_tail "$LOGS/forward.log"
        cluster_stop_proc forward 2 || true
    done
    die "could not start the API server forwarder"
}

# After the API server is ready (kube-controller-manager gives up on one that
# is not healthy within 10 s).
start_control_loops() {
    cluster_spawn kube-controller-manager "--root-ca-file=$PKI/ca.crt" netns "$KUBE_CONTROLLER_MANAGER_BIN" \
        --kubeconfig="$INTERNAL/admin.kubeconfig" \
        --authentication-kubeconfig="$INTERNAL/admin.kubeconfig" \
        --authorization-kubeconfig="$INTERNAL/admin.kubeconfig" \
        --leader-elect=false --use-service-account-credentials=false \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --cluster-name="$CLUSTER_NAME" \
        --port=0 --bind-address=127.0.0.1 --secure-port=10257 --cert-dir="$STATE_DIR/internal/controller-manager-certs" \
        --v="$CLUSTER_VERBOSITY"
    cluster_spawn kube-scheduler "--cert-dir=$STATE_DIR/internal/scheduler-certs" netns "$KUBE_SCHEDULER_BIN" \
        --kubeconfig="$INTERNAL/admin.kubeconfig" \
        --authentication-kubeconfig="$INTERNAL/admin.kubeconfig" \
        --authorization-kubeconfig="$INTERNAL/admin.kubeconfig" \
        --leader-elect=false \
        --port=0 --bind-address=127.0.0.1 --secure-port=10259 --cert-dir="$STATE_DIR/internal/scheduler-certs" \
        --v="$CLUSTER_VERBOSITY"
    cluster_spawn kube-proxy "--hostname-override=$NODE_NAME --kubeconfig=$INTERNAL/admin.kubeconfig" netns \
        "$KUBE_PROXY_BIN" \
        --hostname-override="$NODE_NAME" --kubeconfig="$INTERNAL/admin.kubeconfig" \
        --proxy-mode=iptables --cluster-cidr="$CLUSTER_POD_SUPERNET" \
        --bind-address="$NODE_IP" --healthz-bind-address=127.0.0.1:10256 \
        --metrics-bind-address=127.0.0.1:10249 --oom-score-adj=0 \
        --conntrack-max-per-core=0 --conntrack-min=0 \
        --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
        --v="$CLUSTER_VERBOSITY"
}

# Started together with the API server: it retries until it can register.
start_kubelet() {
    cluster_spawn kubelet "--config=$INTERNAL/kubelet-config.yaml" netns "$KUBELET_BIN" \
        --config="$INTERNAL/kubelet-config.yaml" \
        --kubeconfig="$INTERNAL/node.kubeconfig" \
        --container-runtime=remote --container-runtime-endpoint="unix://$CTR_SOCKET" \
        --image-service-endpoint="unix://$CTR_SOCKET" \
        --root-dir="$STATE_DIR/kubelet" --cert-dir="$STATE_DIR/kubelet/pki" \
        --volume-plugin-dir="$STATE_DIR/kubelet/volume-plugins" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
        --pod-infra-container-image="$PAUSE_IMAGE" \
        --v="$CLUSTER_VERBOSITY"
}

node_ready() {
    [ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# True if every process runs and the API server answers through the forwarder.
cluster_running() {
    local p port
    for p in "${CLUSTER_PROCS[@]}"; do
        cluster_pid "$p" >/dev/null || return 1
    done
    netns_owned || return 1
    port=$(read_file_or_empty "$RUN/forward.port")
    [ -n "$port" ] && [ -f "$STATE_DIR/admin.kubeconfig" ] &&
        curl -fsS --noproxy '*' --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
            --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1
}

cluster_print_env() {
    printf 'export SYNAPSOR_CLUSTER_KUBECONFIG=%q\n' "$STATE_DIR/admin.kubeconfig"
    printf 'export SYNAPSOR_CLUSTER_NETNS=%q\n' "$NETNS_PATH"
    printf 'export SYNAPSOR_CLUSTER_CTR_SOCKET=%q\n' "$CTR_SOCKET"
    printf 'export SYNAPSOR_CLUSTER_NODE_IP=%q\n' "$NODE_IP"
    printf 'export SYNAPSOR_CLUSTER_STATE_DIR=%q\n' "$STATE_DIR"
    printf 'export SYNAPSOR_KUBECTL=%q\n' "$KUBECTL"
    printf 'export SYNAPSOR_HELM=%q\n' "$HELM"
}

# On a failed start: the tails of the logs of processes that died, then stop
# everything (SYNAPSOR_CLUSTER_KEEP_FAILED=1 leaves it for a look).
# shellcheck disable=SC2317 # invoked by the EXIT trap
cluster_start_failed() {
    local rc=$? p
    [ "$rc" -ne 0 ] || exit 0
    for p in "${CLUSTER_PROCS[@]}"; do
        if [ -f "$RUN/$p.pid" ] && ! cluster_pid "$p" >/dev/null; then
            warn "$p is not running"
            log_tail "$LOGS/$p.log"
        fi
    done
    if [ "${SYNAPSOR_CLUSTER_KEEP_FAILED:-0}" = 1 ]; then
        warn "SYNAPSOR_CLUSTER_KEEP_FAILED=1: leaving what started running; stop it with scripts/cluster.sh stop"
    else
        warn "start failed: stopping what did start (logs stay in $LOGS)"
        cluster_stop || true
    fi
    exit "$rc"
}

cluster_start() {
    local t0 t_api import_pid="" i p
    t0=$(now_ms)
    log "starting cluster $CLUSTER_NAME (state $STATE_DIR, namespace $NETNS_PATH, node IP $NODE_IP)"
    ! name_taken || die "$(name_taken_message)"
    # A half-dead earlier instance is of no use.
    cluster_stop || die "could not stop the rest of an earlier start in $STATE_DIR"
    mkdir -p "$RUN" "$LOGS"
    trap cluster_start_failed EXIT

    with_host_lock host_register
    netns_up
    netns_describe
    add_host_blackholes
    cluster_certs
    cluster_configs
    cgroups_create

    start_containerd
    (
        trap - EXIT
        import_images
    ) >"$LOGS/images.log" 2>&1 &
    import_pid=$!
    start_etcd
    start_apiserver
    start_kubelet
    cluster_apiserver_wait
    t_api=$(now_ms)
    log "kube-apiserver ready after $(elapsed "$t0")"
    start_forwarder
    start_control_loops
    if ! wait "$import_pid"; then
        log_tail "$LOGS/images.log"
        die "importing the images failed"
    fi
    sed 's/^/    /' "$LOGS/images.log" >&2

    log "waiting for node $NODE_NAME to be Ready"
    for ((i = 0; i < CLUSTER_WAIT_SECS * 2; i++)); do
        node_ready && break
        for p in containerd kubelet; do
            cluster_pid "$p" >/dev/null || die "$p exited while the node was starting"
        done
        sleep 0.5
    done
    node_ready || {
        log_tail "$LOGS/kubelet.log"
        die "node $NODE_NAME was not Ready within ${CLUSTER_WAIT_SECS}s"
    }
    log "node $NODE_NAME Ready after $(elapsed "$t0")"
    # Pods can be created once the default service account exists.
    wait_for 60 kube-controller-manager kc get serviceaccount default -n default ||
        die "the default service account did not appear (kube-controller-manager log: $LOGS/kube-controller-manager.log)"
    trap - EXIT
    log "cluster $CLUSTER_NAME ready after $(elapsed "$t0") (kube-apiserver was ready after $(((t_api - t0) / 1000)).$(((t_api - t0) % 1000 / 100))s)"
}

# ---------------------------------------------------------------------------
# Stop
# ---------------------------------------------------------------------------

# True while the kubelet / containerd still hold a pod's mounts: volumes,
# the pod network namespace, a container's root filesystem.
pod_mounts_left() {
    awk -v k="$STATE_DIR/kubelet/pods/" -v n="$STATE_DIR/containerd/state/io.containerd.grpc.v1.cri/netns/" \
        -v t="$STATE_DIR/containerd/state/io.containerd.runtime.v2.task/" \
        'index($2, k) == 1 || index($2, n) == 1 || index($2, t) == 1 { found = 1 } END { exit !found }' /proc/mounts
}

# Delete every pod while the kubelet still runs, so that it tears down CNI
# and volumes; the pods' UIDs are noted (their log dirs are removed later).
# Done when the API has no pod left, or when no pod mount is left (the
# kubelet deletes the objects only at its next status sync, up to 10 s
# later; the cluster's data goes anyway).
delete_pods() {
    local uids i
    [ -n "${KUBECTL:-}" ] || return 0
    cluster_pid kube-apiserver >/dev/null && cluster_pid kubelet >/dev/null || return 0
    uids=$(kc_ns get pods -A -o 'jsonpath={.items[*].metadata.uid}' 2>/dev/null) || return 0
    printf '%s\n' "$uids" | tr ' ' '\n' | sed '/^$/d' >>"$RUN/pod-uids"
    [ -n "$uids" ] || return 0
    log "deleting $(wc -w <<<"$uids") pods (the kubelet tears down their network and volumes)"
    kc_ns delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
    for ((i = 0; i < 120; i++)); do
        sleep 0.5
        pod_mounts_left || return 0
        [ -n "$(kc_ns get pods -A -o name 2>/dev/null)" ] || return 0
    done
    warn "some pods were still there after 60s; going on"
}

# After the kubelet: what containerd still has (stopped sandboxes, or
# everything if the kubelet was gone already).
ctr_cleanup() {
    local t c
    [ -S "$CTR_SOCKET" ] && cluster_pid containerd >/dev/null || return 0
    # Pods deleted earlier whose sandboxes the kubelet has not garbage-
    # collected yet still have log dirs: note their UIDs too.
    for c in $(ctr_k8s containers ls -q 2>/dev/null); do
        ctr_k8s containers info "$c" 2>/dev/null |
            sed -n 's/.*"io.kubernetes.pod.uid": *"\([0-9a-f-]*\)".*/\1/p' | head -n 1
    done | sort -u >>"$RUN/pod-uids"
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do
        ctr_k8s tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do
        ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true
    done
    for c in $(ctr_k8s containers ls -q 2>/dev/null); do
        ctr_k8s containers delete "$c" >/dev/null 2>&1 || true
    done
}

# containerd shims of this cluster that outlived containerd: they carry our
# socket path on their command line.
kill_leftover_shims() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qE "containerd-shim.* -address $CTR_SOCKET( |$)"; then
            warn "killing leftover containerd shim $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Lazily unmount everything at or below $1 (deepest first).
umount_below() {
    local base=$1 mp
    awk -v b="$base" '$2 == b || index($2, b "/") == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mp; do
            umount -l "$mp" 2>/dev/null || warn "could not unmount $mp"
        done
}

# Log dirs of this cluster's pods in /var/log/pods (and their links in
# /var/log/containers): the kubelet removes them only when it garbage-
# collects containers, which a stop does not wait for.
remove_pod_logs() {
    local uid d l
    [ -f "$RUN/pod-uids" ] || return 0
    while read -r uid; do
        [[ "$uid" =~ ^[0-9a-f-]{36}$ ]] || continue
        for d in /var/log/pods/*_"$uid"; do
            [ -d "$d" ] || continue
            for l in /var/log/containers/*.log; do
                [ -L "$l" ] || continue
                case "$(readlink "$l")" in "$d"/*) rm -f "$l" ;; esac
            done
            rm -rf "$d"
        done
    done <"$RUN/pod-uids"
    rm -f "$RUN/pod-uids"
}

cluster_stop() {
    local rc=0 p foreign=0
    mkdir -p "$RUN"
    if name_taken; then
        warn "$(name_taken_message)"
        warn "stopping only the processes recorded in $STATE_DIR"
        foreign=1
    fi
    # Nothing new scheduled or created while the pods go.
    cluster_stop_proc kube-controller-manager || rc=1
    cluster_stop_proc kube-scheduler || rc=1
    delete_pods
    cluster_stop_proc kube-proxy || rc=1
    cluster_stop_proc kubelet || rc=1
    ctr_cleanup
    for p in kube-apiserver forward etcd; do
        cluster_stop_proc "$p" || rc=1
    done
    cluster_stop_proc containerd 15 || rc=1
    kill_leftover_shims
    if ! cluster_pid containerd >/dev/null; then
        rm -f "$CTR_SOCKET" "$CTR_SOCKET.ttrpc"
    fi
    remove_etcd_data_dir
    umount_below "$STATE_DIR"
    # Runtime state only; images (containerd/root) stay for the next start.
    if ! awk -v b="$STATE_DIR/" 'index($2, b) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        rm -rf --one-file-system "$STATE_DIR/containerd/state" "$STATE_DIR/containerd/runc" \
            "$STATE_DIR/kubelet" "$STATE_DIR/cni/ipam"
    else
        warn "mounts remain below $STATE_DIR; not deleting runtime state"
        rc=1
    fi
    if [ "$foreign" -eq 0 ]; then
        cgroups_remove || rc=1
        netns_delete
        remove_host_blackholes
        remove_pod_logs
        # Per-network CNI result cache entries (normally deleted by CNI DEL).
        rm -f /var/lib/cni/results/"synapsor-$CLUSTER_NAME"-* 2>/dev/null || true
        with_host_lock host_unregister
    fi
    rm -f "$STATE_DIR/env" "$RUN/forward.port"
    return "$rc"
}

# ---------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------

cluster_status() {
    local rc=0 p pid extra
    for p in "${CLUSTER_PROCS[@]}"; do
        if pid=$(cluster_pid "$p"); then
            extra=""
            [ "$p" != forward ] || extra=", 127.0.0.1:$(read_file_or_empty "$RUN/forward.port") -> $NETNS_PATH 127.0.0.1:$CLUSTER_API_PORT"
            echo "$p: running (pid $pid, rss $(ps -o rss= -p "$pid" | tr -d ' ') KiB$extra)"
        else
            echo "$p: stopped"
            rc=3
        fi
    done
    if netns_owned; then
        echo "network namespace: $NETNS_PATH (node IP $NODE_IP)"
    else
        echo "network namespace: none"
        rc=3
    fi
    if [ "$rc" -eq 0 ] && [ -n "${KUBECTL:-}" ]; then
        echo "node: $(kc get node "$NODE_NAME" --no-headers 2>/dev/null || echo '?')"
        echo "pods: $(kc get pods -A --no-headers 2>/dev/null | wc -l)"
        echo "kubeconfig: $STATE_DIR/admin.kubeconfig"
    fi
    return "$rc"
}
