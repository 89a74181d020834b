#!/usr/bin/env bash
#
# The root filesystem of one Synapsor image, as a directory: the binary, the shared libraries it
# links (as `ldd` names them), the CA certificates (the binaries' HTTPS clients read the system
# store) and a passwd/group naming the non-root user 65532. Nothing else: no shell, no package
# manager. Used by scripts/images.sh on this machine and by the Dockerfile's build stage, so both
# ways of building give the same image.
#
#   scripts/lib/image-rootfs.sh BINARY OUT_DIR
#
# CA certificates come from $SYNAPSOR_CA_BUNDLE, else /etc/ssl/certs/ca-certificates.crt (Debian's
# ca-certificates package).
set -Eeuo pipefail
trap 'echo "error: image-rootfs.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

[ $# -eq 2 ] || {
    echo "usage: $0 BINARY OUT_DIR" >&2
    exit 2
}
bin=$1
out=$2
ca=${SYNAPSOR_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -x "$bin" ] || {
    echo "error: $bin is not an executable file (build it first)" >&2
    exit 1
}
[ -f "$ca" ] || {
    echo "error: no CA bundle at $ca (install ca-certificates, or set SYNAPSOR_CA_BUNDLE)" >&2
    exit 1
}
command -v ldd >/dev/null 2>&1 || {
    echo "error: ldd not found (it comes with glibc's libc-bin)" >&2
    exit 1
}

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
chmod 1777 "$out/tmp"
install -m 0755 "$bin" "$out/usr/local/bin/$(basename "$bin")"
install -m 0644 "$ca" "$out/etc/ssl/certs/ca-certificates.crt"

# Every library ldd resolves, copied (links followed) to the path the dynamic loader looks in.
# `linux-vdso.so.1` has no file: the kernel maps it.
while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
    chmod 0755 "$out$lib"
done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)

cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
chmod 0644 "$out/etc/passwd" "$out/etc/group"
