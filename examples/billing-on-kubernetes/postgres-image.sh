#!/usr/bin/env bash
#
# A PostgreSQL image for the example, built from this machine's Debian postgresql-15 package:
# the server, initdb and psql, the libraries they link, the share and extension files, the time
# zone data and dash (initdb runs the server through /bin/sh). It runs as user 999 and
# initializes $PGDATA on first start with the password in $POSTGRES_PASSWORD.
#
#   examples/billing-on-kubernetes/postgres-image.sh OUT.tar
#
# For the example only: use your platform's PostgreSQL in production.
set -Eeuo pipefail
trap 'echo "error: postgres-image.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/common.sh
. "$REPO_ROOT/scripts/lib/common.sh"

out=${1:?usage: postgres-image.sh OUT.tar}
PG=/usr/lib/postgresql/15
[ -x "$PG/bin/postgres" ] || apt_install postgresql-15
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT

copy() { # copy files (links followed) to the same path in the rootfs
    local f
    for f in "$@"; do
        mkdir -p "$ROOTFS$(dirname "$f")"
        cp -L "$f" "$ROOTFS$f"
    done
}
libs_of() {
    ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u
}

bins=("$PG/bin/postgres" "$PG/bin/initdb" "$PG/bin/psql" "$PG/bin/pg_isready" /bin/dash)
copy "${bins[@]}"
mkdir -p "$ROOTFS$PG/lib" "$ROOTFS/usr/share/postgresql"
# The extensions initdb and the server load; not the JIT (llvmjit and its bitcode pull in LLVM),
# which the example never uses.
cp -a "$PG/lib/." "$ROOTFS$PG/lib/"
rm -rf "$ROOTFS$PG/lib/bitcode" "$ROOTFS$PG/lib/llvmjit"* "$ROOTFS$PG/lib/pgxs"
cp -a /usr/share/postgresql/15 "$ROOTFS/usr/share/postgresql/"
mkdir -p "$ROOTFS/usr/share/zoneinfo"
cp -a /usr/share/zoneinfo/. "$ROOTFS/usr/share/zoneinfo/"
# shellcheck disable=SC2046
copy $(libs_of "${bins[@]}" "$ROOTFS$PG"/lib/*.so | sed "s|^$ROOTFS||")
ln -s dash "$ROOTFS/bin/sh"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/var/lib/postgresql/data"
# Image files are owned by root: mount a volume at /var/lib/postgresql/data (the data directory
# is a subdirectory of it, which initdb creates as this user); the socket goes to /tmp.
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/lib/postgresql/data"
printf 'root:x:0:0:root:/root:/sbin/nologin\npostgres:x:999:999:postgres:/var/lib/postgresql:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\npostgres:x:999:\n' >"$ROOTFS/etc/group"
cat >"$ROOTFS/usr/local/bin/docker-entrypoint" <<'SH'
#!/bin/sh
# First start: initdb with the password in $POSTGRES_PASSWORD, listen on every address with
# scram-sha-256. Then run the server in the foreground.
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data/pgdata}
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ]; then
        echo "POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    printf '%s' "$POSTGRES_PASSWORD" >/tmp/pwfile
    /usr/lib/postgresql/15/bin/initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile=/tmp/pwfile \
        --auth=scram-sha-256 --no-locale -E UTF8 >/dev/null
    : >/tmp/pwfile
    printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\n" >>"$PGDATA/postgresql.conf"
    printf 'host all all 0.0.0.0/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
fi
exec /usr/lib/postgresql/15/bin/postgres -D "$PGDATA"
SH
chmod 0755 "$ROOTFS/usr/local/bin/docker-entrypoint"
python3 "$REPO_ROOT/scripts/lib/docker_archive.py" --rootfs "$ROOTFS" --ref localhost/synapsor-example/postgres:15 \
    --out "$out" --entrypoint /usr/local/bin/docker-entrypoint --user 999:999 \
    --env PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin \
    --label org.opencontainers.image.title=synapsor-example-postgres
