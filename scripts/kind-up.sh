#!/usr/bin/env bash
#
# A kind (Kubernetes IN Docker) cluster, to run the Kubernetes tests against a
# full cluster instead of the loopback API server of scripts/k8s.sh. Needs
# Docker (or another provider kind supports) and the kind CLI.
#
#   scripts/kind-up.sh          create (or reuse) the cluster, build the two images with
#                               `docker build` and `kind load` them; prints the export line
#   scripts/kind-up.sh install  the same, then `helm upgrade --install` the chart into
#                               synapsor-system with those images (pullPolicy Never)
#   scripts/kind-up.sh down     delete the cluster and its kubeconfig
#
# Typical use:
#   eval "$(scripts/kind-up.sh)"    sets KUBECONFIG, SYNAPSOR_K8S_USE_KUBECONFIG=1 and
#                                   SYNAPSOR_K8S_WEBHOOK_HOST (where kind reaches the tests' webhook)
#   scripts/test.sh                 the same tests, against the kind cluster
#   scripts/kind-up.sh down
#
# Only the export line goes to stdout; kind's progress goes to stderr. The
# cluster's credentials are written to <repo>/target/kind.kubeconfig only;
# ~/.kube/config is left alone.
#
# Environment:
#   SYNAPSOR_KIND_CLUSTER   cluster name (default: synapsor)
#   SYNAPSOR_KIND_IMAGE     node image, e.g. kindest/node:v1.31.0 (default: kind's default)
#   SYNAPSOR_KIND_WAIT      how long kind waits for the control plane (default: 120s)
#   SYNAPSOR_KIND_SKIP_IMAGES=1   do not build and load the images
#   SYNAPSOR_HELM_ARGS      extra arguments for `install` (e.g. --set-file runnerConfig.json=...)
#   KIND_EXPERIMENTAL_PROVIDER  read by kind itself (podman, nerdctl); Docker otherwise
set -Eeuo pipefail
trap 'echo "error: kind-up.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=${SYNAPSOR_KIND_CLUSTER:-synapsor}
KUBECONFIG_OUT="$REPO_ROOT/target/kind.kubeconfig"
WAIT=${SYNAPSOR_KIND_WAIT:-120s}

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

check_tools() {
    command -v kind >/dev/null 2>&1 ||
        die "kind not found on PATH. Install the kind CLI (e.g. \`go install sigs.k8s.io/kind@latest\`,
  or a release binary, see kind's quick start), or run the tests without Docker: scripts/test.sh
  starts a local kube-apiserver itself (scripts/k8s.sh)."
    local provider=${KIND_EXPERIMENTAL_PROVIDER:-docker}
    command -v "$provider" >/dev/null 2>&1 ||
        die "$provider not found on PATH: kind runs its nodes as $provider containers.
  Without it, run the tests against the local kube-apiserver instead: scripts/test.sh"
    "$provider" info >/dev/null 2>&1 ||
        die "\`$provider info\` failed: is the $provider daemon running, and may this user use it?"
}

cluster_exists() {
    kind get clusters 2>/dev/null | grep -qxF -- "$CLUSTER"
}

cmd_up() {
    check_tools
    mkdir -p "$(dirname "$KUBECONFIG_OUT")"
    if cluster_exists; then
        log "kind cluster '$CLUSTER' exists; reusing it"
        (umask 077 && kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_OUT.tmp") ||
            die "kind get kubeconfig --name $CLUSTER failed"
        mv -f "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
    else
        local args=(create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_OUT" --wait "$WAIT")
        if [ -n "${SYNAPSOR_KIND_IMAGE:-}" ]; then
            args+=(--image "$SYNAPSOR_KIND_IMAGE")
        fi
        log "kind ${args[*]}"
        rm -f "$KUBECONFIG_OUT"
        # kind writes the kubeconfig itself (mode 0600); stdout to stderr so
        # only our export line reaches the caller's eval.
        kind "${args[@]}" </dev/null >&2 || die "kind create cluster failed (see above)"
    fi
    [ -s "$KUBECONFIG_OUT" ] || die "no kubeconfig was written to $KUBECONFIG_OUT"
    if command -v kubectl >/dev/null 2>&1; then
        kubectl --kubeconfig "$KUBECONFIG_OUT" --request-timeout=15s version >&2 </dev/null ||
            die "the kind cluster '$CLUSTER' does not answer (kubectl version failed)"
    fi
    # The tests run synapsor-controller on this machine; kind's API server (in a container)
    # reaches its admission webhook through the gateway of kind's Docker network.
    local provider=${KIND_EXPERIMENTAL_PROVIDER:-docker} gateway=""
    gateway=$("$provider" network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null |
        tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | head -n1 || true)
    [ -n "$gateway" ] || die "cannot find the gateway of the '$provider' network 'kind' (the webhook address)"
    if [ "${SYNAPSOR_KIND_SKIP_IMAGES:-0}" != 1 ]; then
        load_images
    fi
    log "kind cluster '$CLUSTER' ready (webhook host $gateway); remove it with: scripts/kind-up.sh down"
    printf 'export KUBECONFIG=%q SYNAPSOR_K8S_USE_KUBECONFIG=1 SYNAPSOR_K8S_WEBHOOK_HOST=%q\n' "$KUBECONFIG_OUT" "$gateway"
}

# The two images, built from the Dockerfile (the same recipe as scripts/images.sh) and loaded
# into the kind node: pods use them with imagePullPolicy Never or IfNotPresent.
load_images() {
    local provider=${KIND_EXPERIMENTAL_PROVIDER:-docker} target ref
    for target in runner controller; do
        ref=$(bash "$REPO_ROOT/scripts/images.sh" refs | grep "synapsor-$target:")
        log "$provider build --target $target -t $ref ."
        "$provider" build --target "$target" -t "$ref" "$REPO_ROOT" </dev/null >&2 ||
            die "building the $target image failed (see above)"
        log "kind load docker-image $ref --name $CLUSTER"
        kind load docker-image "$ref" --name "$CLUSTER" </dev/null >&2 || die "kind load of $ref failed"
    done
}

# The chart beside the images: `helm upgrade --install synapsor` into synapsor-system.
cmd_install() {
    cmd_up >/dev/null
    command -v helm >/dev/null 2>&1 || die "helm not found on PATH"
    log "helm upgrade --install synapsor charts/synapsor-runner -n synapsor-system"
    # shellcheck disable=SC2086 # extra arguments are split on purpose
    KUBECONFIG=$KUBECONFIG_OUT helm upgrade --install synapsor "$REPO_ROOT/charts/synapsor-runner" \
        --namespace synapsor-system --create-namespace --set image.pullPolicy=Never \
        ${SYNAPSOR_HELM_ARGS:-} --wait --timeout 300s >&2 || die "helm install failed (see above)"
    printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_OUT"
}

cmd_down() {
    command -v kind >/dev/null 2>&1 || die "kind not found on PATH"
    if cluster_exists; then
        log "deleting kind cluster '$CLUSTER'"
        kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_OUT" </dev/null >&2
    else
        log "no kind cluster '$CLUSTER'"
    fi
    rm -f "$KUBECONFIG_OUT" "$KUBECONFIG_OUT.tmp"
}

case "${1:-up}" in
up) cmd_up ;;
install) cmd_install ;;
down) cmd_down ;;
*)
    echo "usage: $0 [up|install|down]" >&2
    exit 2
    ;;
esac
