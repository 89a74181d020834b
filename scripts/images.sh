#!/usr/bin/env bash
#
# The two container images, built on this machine with no Docker engine and no registry:
#
#   scripts/images.sh build           release binaries, then target/images/synapsor-runner.tar and
#                                     target/images/synapsor-controller.tar (docker-archives)
#   scripts/images.sh import SOCKET   import both into the containerd at SOCKET (namespace k8s.io),
#                                     for pods with imagePullPolicy: Never or IfNotPresent
#   scripts/images.sh refs            print the two image references
#
# Each image holds one binary, the libraries it links, the CA certificates and a non-root user
# (65532): scripts/lib/image-rootfs.sh, the recipe the Dockerfile's build stage runs too (for
# users with Docker: `docker build --target runner .` and `--target controller`). The images are
# labelled with the OCI keys for title, version, source, revision and licenses.
#
# Environment:
#   SYNAPSOR_IMAGE_REPOSITORY   registry and path prefix (default: ghcr.io/synapsor)
#   SYNAPSOR_IMAGE_TAG          tag (default: the workspace version)
#   SYNAPSOR_IMAGE_SKIP_BUILD=1 use the release binaries already in target/release
set -Eeuo pipefail
trap 'echo "error: images.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

OUT=$REPO_ROOT/target/images
BINARIES=(synapsor-runner synapsor-controller)
# The size every image must stay under (a test checks the built archives too).
MAX_IMAGE_BYTES=$((25 * 1024 * 1024))

workspace_field() {
    sed -n '/^\[workspace.package\]/,/^\[/p' Cargo.toml | sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" | head -n1
}

VERSION=$(workspace_field version)
SOURCE=$(workspace_field repository)
LICENSE=$(workspace_field license)
REPOSITORY=${SYNAPSOR_IMAGE_REPOSITORY:-ghcr.io/synapsor}
TAG=${SYNAPSOR_IMAGE_TAG:-$VERSION}

ref_of() { echo "$REPOSITORY/$1:$TAG"; }

cmd_refs() {
    local b
    for b in "${BINARIES[@]}"; do ref_of "$b"; done
}

cmd_build() {
    command -v python3 >/dev/null 2>&1 || die "python3 not found (it writes the docker-archives)"
    [ -f /etc/ssl/certs/ca-certificates.crt ] || [ -n "${SYNAPSOR_CA_BUNDLE:-}" ] || apt_install ca-certificates
    if [ "${SYNAPSOR_IMAGE_SKIP_BUILD:-0}" != 1 ]; then
        log "building the release binaries (cargo build --release)"
        cargo build --release --locked -p synapsor-runner -p synapsor-controller
    fi
    local revision b rootfs archive line bytes
    revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    mkdir -p "$OUT"
    for b in "${BINARIES[@]}"; do
        rootfs="$OUT/$b.rootfs"
        archive="$OUT/$b.tar"
        bash scripts/lib/image-rootfs.sh "target/release/$b" "$rootfs"
        line=$(python3 scripts/lib/docker_archive.py --rootfs "$rootfs" --ref "$(ref_of "$b")" --out "$archive" \
            --entrypoint "/usr/local/bin/$b" --user 65532:65532 \
            --label "org.opencontainers.image.title=$b" \
            --label "org.opencontainers.image.version=$VERSION" \
            --label "org.opencontainers.image.source=$SOURCE" \
            --label "org.opencontainers.image.revision=$revision" \
            --label "org.opencontainers.image.licenses=$LICENSE")
        rm -rf "$rootfs"
        bytes=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layer_bytes"])' "$line")
        [ "$bytes" -le "$MAX_IMAGE_BYTES" ] ||
            die "$b image is $bytes bytes, over the limit of $MAX_IMAGE_BYTES"
        log "$(ref_of "$b"): $((bytes / 1024)) KiB in $archive"
    done
}

cmd_import() {
    local socket=${1:-}
    [ -n "$socket" ] || die "usage: scripts/images.sh import CONTAINERD_SOCKET"
    [ -S "$socket" ] || die "$socket is not a containerd socket"
    local b
    for b in "${BINARIES[@]}"; do
        [ -f "$OUT/$b.tar" ] || die "$OUT/$b.tar is missing: run scripts/images.sh build"
        ctr -a "$socket" -n k8s.io images import --no-unpack=false "$OUT/$b.tar" >/dev/null
        log "imported $(ref_of "$b")"
    done
}

case "${1:-}" in
build) cmd_build ;;
import)
    shift
    cmd_import "$@"
    ;;
refs) cmd_refs ;;
*)
    sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
