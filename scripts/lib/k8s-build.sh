#!/usr/bin/env bash
#
# Build Kubernetes v1.20.2 components from Debian 12 (bookworm)'s `kubernetes`
# source package with Debian's Go:
#
#   bash scripts/lib/k8s-build.sh [DEST]
#       kube-apiserver, installed at DEST (default: the cache path that
#       scripts/k8s.sh uses, ${XDG_CACHE_HOME:-~/.cache}/synapsor-runner/k8s/
#       v1.20.2/kube-apiserver)
#   bash scripts/lib/k8s-build.sh --dir DIR COMPONENT...
#       each COMPONENT (kube-apiserver, kubelet, kube-controller-manager,
#       kube-scheduler, kube-proxy) installed as DIR/COMPONENT; those already
#       there (and reporting v1.20.2) are skipped
#
# lib/k8s.sh runs this as the last resort, when no binary or .zst is found:
# the first form for scripts/k8s.sh, the second for the node components of
# scripts/cluster.sh. One source tree serves all components of a run.
#
# kube-apiserver: 4-10 minutes on 2 cores (nearly all of it `go build`; 3m46s
# measured with idle cores, apt included); the four node components together
# about 6 more (kubelet alone about 5); ~2 GB of disk while it runs. Needs
# root or password-less sudo only for apt-get: installing the build packages
# below when missing, and adding deb-src entries (copied from the machine's
# own Debian entries, removed again after the download) when `apt-get source`
# has none.
#
# What is needed, and why:
#   - the source package kubernetes 1.20.5+really1.20.2-1.1+deb12u1: the full
#     upstream tree with vendor/, plus Debian's patches (debian/patches/series);
#   - Debian's Go (golang-go, Go 1.19), in GOPATH mode (GO111MODULE=off, no
#     network: GOPROXY=off);
#   - the vendored github.com/modern-go/reflect2 v1.0.1 swapped for Debian's
#     1.0.2 (golang-github-modern-go-reflect2-dev): 1.0.1 panics on Go >= 1.18
#     when decoding maps;
#   - pkg/generated/openapi, which the tarball lacks, generated with the
#     vendored openapi-gen from the same inputs as upstream's
#     build/root/Makefile.generated_files;
#   - version ldflags, so that `<component> --version` prints
#     "Kubernetes v1.20.2" (clients and tests read it).
#
# Everything happens in a temp dir beside the destination (so the final rename
# is atomic); it is deleted on every exit path, Go's build cache included. A
# lock file there makes a concurrent build wait and reuse the result (a build
# of other components then follows, with the lock).
set -Eeuo pipefail
trap 'echo "error: k8s-build.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/k8s.sh
. "$REPO_ROOT/scripts/lib/k8s.sh"

K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_UPSTREAM=${K8S_VERSION#v}
K8S_MINOR=${K8S_UPSTREAM#*.}
K8S_MINOR=${K8S_MINOR%%.*}
BUILD_PKGS=(golang-go golang-github-modern-go-reflect2-dev patch xz-utils findutils)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
DEB_SRC_BASENAME=/etc/apt/sources.list.d/synapsor-k8s-deb-src
# Marks our temp dirs, so only those are ever deleted as leftovers.
WORK_MARKER=.synapsor-k8s-build
KNOWN_COMPONENTS=" kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy "

usage() {
    echo "usage: $0 [DEST]   |   $0 --dir DIR COMPONENT...  (COMPONENT:$KNOWN_COMPONENTS)" >&2
    exit 2
}

# COMPONENTS[i] is built into DESTS[i]; all DESTS are in DEST_DIR.
COMPONENTS=()
DESTS=()
if [ "${1:-}" = --dir ]; then
    [ "$#" -ge 3 ] || usage
    DEST_DIR=$2
    shift 2
    case "$DEST_DIR" in /*) ;; *) DEST_DIR="$(pwd)/$DEST_DIR" ;; esac
    for c in "$@"; do
        case "$KNOWN_COMPONENTS" in *" $c "*) ;; *) usage ;; esac
        COMPONENTS+=("$c")
        DESTS+=("$DEST_DIR/$c")
    done
else
    case "${1:-}" in -*) usage ;; esac
    DEST=${1:-$APISERVER_CACHE}
    case "$DEST" in /*) ;; *) DEST="$(pwd)/$DEST" ;; esac
    DEST_DIR=$(dirname "$DEST")
    COMPONENTS=(kube-apiserver)
    DESTS=("$DEST")
fi

WORK=""
DEB_SRC_FILE=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        # Go marks some files read-only; make sure rm can delete them.
        chmod -R u+w "$WORK" 2>/dev/null || true
        rm -rf "$WORK"
    fi
    remove_deb_src
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True if $1 is an executable that reports Kubernetes $K8S_VERSION.
bin_ok() {
    [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "Kubernetes $K8S_VERSION" ]
}

# Print the indices of the components still to build.
todo_indices() {
    local i
    for i in "${!COMPONENTS[@]}"; do
        bin_ok "${DESTS[$i]}" || echo "$i"
    done
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

have_kubernetes_source() {
    apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes$'
}

# Any deb-src entry at all (one-line or deb822 format)?
deb_src_configured() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && grep -qE '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qiE '^Types:.*deb-src' "$f" && return 0
    done
    return 1
}

# Add deb-src entries for the machine's own Debian entries (deb822
# debian.sources, the Debian 12 default, else the `deb` lines of
# sources.list). Sets DEB_SRC_FILE; remove_deb_src deletes it again.
add_deb_src() {
    local content file
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        content=$(grep -v '^[[:space:]]*#' /etc/apt/sources.list.d/debian.sources |
            sed -E 's/^Types:.*/Types: deb-src/')
        file=$DEB_SRC_BASENAME.sources
    elif [ -f /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        content=$(grep -E '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list |
            sed -E 's/^([[:space:]]*)deb([[:space:]])/\1deb-src\2/')
        file=$DEB_SRC_BASENAME.list
    else
        die "apt has no deb-src entries and no Debian entries to copy them from;
  add deb-src entries for Debian bookworm (for: apt-get source kubernetes)"
    fi
    can_be_root ||
        die "apt has no deb-src entries (needed for: apt-get source kubernetes) and adding them needs root or password-less sudo"
    log "adding deb-src entries ($file, copied from the machine's Debian entries; removed after the download)"
    printf '# temporary, added by synapsor scripts/lib/k8s-build.sh\n%s\n' "$content" |
        as_root tee "$file" >/dev/null
    DEB_SRC_FILE=$file
}

remove_deb_src() {
    if [ -n "$DEB_SRC_FILE" ]; then
        as_root rm -f "$DEB_SRC_FILE" || warn "could not remove $DEB_SRC_FILE"
        DEB_SRC_FILE=""
    fi
}

# Build packages and a source entry for kubernetes.
prepare_apt() {
    local p missing=() added=0
    for p in "${BUILD_PKGS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ! have_kubernetes_source && ! deb_src_configured; then
        add_deb_src
        added=1
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}" # runs apt-get update first
    elif [ "$added" -eq 1 ]; then
        can_be_root || die "apt-get update needs root or password-less sudo"
        apt_update || die "apt-get update failed"
    fi
    if ! have_kubernetes_source && [ "$APT_UPDATED" -eq 0 ] && can_be_root; then
        apt_update || die "apt-get update failed"
    fi
    have_kubernetes_source ||
        die "apt-get knows no source package 'kubernetes'; the build needs Debian 12 (bookworm) deb-src entries"
    [ -d "$REFLECT2_SRC" ] ||
        die "$REFLECT2_SRC missing (package golang-github-modern-go-reflect2-dev)"
}

# Debian's Go, even when another Go comes first on PATH.
find_debian_go() {
    local g
    for g in /usr/lib/go/bin/go /usr/bin/go; do
        if [ -x "$g" ]; then
            echo "$g"
            return 0
        fi
    done
    die "Debian's go binary not found (package golang-go)"
}

# Run "$@" in $TREE with its output in $WORK/<name>.log; on failure print the
# log's tail and die.
run_logged() {
    local name=$1
    shift
    (cd "$TREE" && "$@") >"$WORK/$name.log" 2>&1 || {
        log_tail "$WORK/$name.log"
        die "$name failed"
    }
}

# Into $WORK/dl: the kubernetes source package (.orig and .debian tarballs).
download_source() {
    mkdir -p "$WORK/dl"
    log "apt-get source --download-only kubernetes=$K8S_DEB_VERSION"
    if ! (cd "$WORK/dl" && apt-get source -q --download-only "kubernetes=$K8S_DEB_VERSION") \
        >"$WORK/apt-source.log" 2>&1 </dev/null; then
        warn "kubernetes=$K8S_DEB_VERSION not available; trying the current kubernetes source package"
        (cd "$WORK/dl" && apt-get source -q --download-only kubernetes) \
            >>"$WORK/apt-source.log" 2>&1 </dev/null || {
            log_tail "$WORK/apt-source.log"
            die "apt-get source kubernetes failed"
        }
    fi
    remove_deb_src
}

# Unpack into $TREE (= $GOPATH/src/k8s.io/kubernetes) and apply Debian's
# patches and the reflect2 swap.
prepare_tree() {
    local origs debs dirs n=0 name opts
    shopt -s nullglob
    origs=("$WORK"/dl/kubernetes_*.orig.tar.*)
    debs=("$WORK"/dl/kubernetes_*.debian.tar.*)
    shopt -u nullglob
    if [ "${#origs[@]}" -ne 1 ] || [ "${#debs[@]}" -ne 1 ]; then
        log_tail "$WORK/apt-source.log"
        die "apt-get source did not leave one kubernetes_*.orig.tar.* and one kubernetes_*.debian.tar.*"
    fi
    # The ldflags below claim $K8S_VERSION: refuse any other upstream version.
    case "$(basename "${origs[0]}")" in
    *[.+a-z]"$K8S_UPSTREAM".orig.tar.* | kubernetes_"$K8S_UPSTREAM".orig.tar.*) ;;
    *) die "$(basename "${origs[0]}") is not Kubernetes $K8S_UPSTREAM; provide the binaries instead (SYNAPSOR_KUBE_APISERVER, SYNAPSOR_KUBELET, ...; see docs/kubernetes-testing.md)" ;;
    esac
    log "unpacking $(basename "${origs[0]}") and $(basename "${debs[0]}")"
    mkdir -p "$WORK/x" "$GOPATH/src/k8s.io"
    tar -xf "${origs[0]}" -C "$WORK/x"
    shopt -s nullglob
    dirs=("$WORK"/x/*/)
    shopt -u nullglob
    [ "${#dirs[@]}" -eq 1 ] || die "$(basename "${origs[0]}") does not hold exactly one top-level directory"
    mv "${dirs[0]%/}" "$TREE"
    tar -xf "${debs[0]}" -C "$TREE"
    rm -rf "$WORK/x" "$WORK/dl"

    # quilt's series: one patch per line, optionally with patch options
    # (default -p1); # starts a comment.
    while read -r name opts; do
        case "$name" in "" | "#"*) continue ;; esac
        opts=${opts%%#*}
        # shellcheck disable=SC2086 # opts: zero or more patch options
        patch -d "$TREE" -s -f --no-backup-if-mismatch ${opts:--p1} <"$TREE/debian/patches/$name" ||
            die "Debian patch $name does not apply"
        n=$((n + 1))
    done <"$TREE/debian/patches/series"
    log "applied $n Debian patches; swapping vendored reflect2 for Debian's 1.0.2"
    rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
    cp -R "$REFLECT2_SRC" "$TREE/vendor/github.com/modern-go/reflect2"
    rm -f "$TREE/vendor/github.com/modern-go/reflect2/go.mod"
}

# pkg/generated/openapi (not in the tarball): upstream's KUBE_OPENAPI target of
# build/root/Makefile.generated_files, by hand.
generate_openapi() {
    local inputs
    if [ -f "$TREE/pkg/generated/openapi/zz_generated.openapi.go" ]; then
        return 0
    fi
    log "generating pkg/generated/openapi (vendored openapi-gen)"
    (cd "$TREE" && "$GO" build -o "$WORK/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen)
    run_logged cache_go_dirs bash hack/make-rules/helpers/cache_go_dirs.sh "$WORK/all_go_dirs.mk"
    # Files with a +k8s: tag, minus two generator-only trees; then the dirs
    # of those asking for openapi-gen, as import paths. (`|| true`: grep -l
    # fails for a batch without a match; an empty result is caught below.)
    inputs=$(
        cd "$TREE" &&
            tr '\n' '\0' <"$WORK/all_go_dirs.mk" |
            xargs -0 sh -c 'exec find "$@" -maxdepth 1 -type f -name "*.go" -print0' _ |
                { xargs -0 grep --color=never -l '^// *+k8s:' || true; } |
                grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
                tr '\n' '\0' |
                { xargs -0 grep --color=never -l '+k8s:openapi-gen=' || true; } |
                sed 's|/[^/]*$||' | LC_ALL=C sort -u |
                sed 's|^|k8s.io/kubernetes/|' | paste -sd, -
    )
    [ -n "$inputs" ] || die "found no packages tagged +k8s:openapi-gen"
    run_logged openapi-gen "$WORK/bin/openapi-gen" --logtostderr -i "$inputs" \
        -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
        -h hack/boilerplate/boilerplate.generatego.txt -r "$WORK/openapi-violations.report"
    [ -f "$TREE/pkg/generated/openapi/zz_generated.openapi.go" ] ||
        die "openapi-gen did not write pkg/generated/openapi/zz_generated.openapi.go"
}

# Build ./cmd/$1 into $WORK/$1.
compile() {
    local component=$1 vp=k8s.io/kubernetes/vendor/k8s.io ld
    ld="-s -w"
    ld+=" -X $vp/component-base/version.gitVersion=$K8S_VERSION"
    ld+=" -X $vp/component-base/version.gitMajor=1 -X $vp/component-base/version.gitMinor=$K8S_MINOR"
    ld+=" -X $vp/component-base/version.gitTreeState=clean"
    ld+=" -X $vp/component-base/version.buildDate=2021-01-13T00:00:00Z"
    ld+=" -X $vp/client-go/pkg/version.gitVersion=$K8S_VERSION"
    ld+=" -X $vp/client-go/pkg/version.gitMajor=1 -X $vp/client-go/pkg/version.gitMinor=$K8S_MINOR"
    log "compiling $component ($("$GO" version | cut -d' ' -f3); the long step)"
    (cd "$TREE" && "$GO" build -tags selinux,notest -ldflags "$ld" -o "$WORK/$component" "./cmd/$component")
}

main() {
    local t0 version todo=() i names
    t0=$(now_ms)
    mapfile -t todo < <(todo_indices)
    if [ "${#todo[@]}" -eq 0 ]; then
        log "${DESTS[*]}: already $K8S_VERSION"
        return 0
    fi
    mkdir -p "$DEST_DIR"
    # One build at a time per destination dir; a waiting one reuses the
    # result and builds only what is still missing.
    exec 8>"$DEST_DIR/.k8s-build.lock"
    if command -v flock >/dev/null 2>&1 && ! flock -n 8; then
        log "another Kubernetes build into $DEST_DIR is running; waiting for it"
        flock -w 3600 8 || die "timed out waiting for the other build ($DEST_DIR/.k8s-build.lock)"
        mapfile -t todo < <(todo_indices)
        if [ "${#todo[@]}" -eq 0 ]; then
            log "the other build installed ${DESTS[*]}"
            return 0
        fi
    fi
    # Leftovers of a killed build (we hold the lock, so none is running);
    # .kube-apiserver-build.* is the name older versions of this script used.
    local d
    for d in "$DEST_DIR"/.k8s-build.* "$DEST_DIR"/.kube-apiserver-build.*; do
        if [ -f "$d/$WORK_MARKER" ]; then
            chmod -R u+w "$d" 2>/dev/null || true
            rm -rf "$d"
        fi
    done
    local free_kb
    free_kb=$(df -Pk "$DEST_DIR" 2>/dev/null | awk 'NR == 2 { print $4 }') || free_kb=""
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((3 * 1024 * 1024)) ]; then
        warn "only $((free_kb / 1024)) MiB free in $DEST_DIR; the build needs about 2 GiB"
    fi

    names=""
    for i in "${todo[@]}"; do names+=" ${COMPONENTS[$i]}"; done
    log "building${names} $K8S_VERSION from Debian's source package (kube-apiserver 4-10 minutes on 2 cores, the node components about 6)"
    if [ -r /etc/os-release ] && ! grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release; then
        warn "this is not Debian 12 (bookworm), the only system this build is known to work on"
    fi
    command -v apt-get >/dev/null 2>&1 || die "building Kubernetes needs Debian's apt-get"
    prepare_apt
    GO=$(find_debian_go)

    WORK=$(mktemp -d "$DEST_DIR/.k8s-build.XXXXXX")
    touch "$WORK/$WORK_MARKER"
    GOPATH="$WORK/gopath"
    TREE="$GOPATH/src/k8s.io/kubernetes"
    # GOPATH mode, offline, static; nothing from the caller's Go setup.
    export GOPATH GO111MODULE=off GOPROXY=off GOFLAGS="" CGO_ENABLED=0 \
        GOCACHE="$WORK/gocache" GOENV=off GOTOOLCHAIN=local
    unset GOROOT GOOS GOARCH GOBIN
    PATH="$(dirname "$GO"):$PATH"

    download_source
    prepare_tree
    # kube-apiserver needs it; generated once for all (the others compile
    # fine with it).
    generate_openapi
    for i in "${todo[@]}"; do
        local c=${COMPONENTS[$i]} t1
        t1=$(now_ms)
        compile "$c"
        version=$("$WORK/$c" --version 2>&1) || die "the built $c does not run: $version"
        [ "$version" = "Kubernetes $K8S_VERSION" ] ||
            die "the built $c reports '$version', expected 'Kubernetes $K8S_VERSION'"
        chmod 0755 "$WORK/$c"
        mv -f "$WORK/$c" "${DESTS[$i]}"
        log "built ${DESTS[$i]} ($version) in $(elapsed "$t1")"
    done
    log "built${names} in $(elapsed "$t0")"
}

main
