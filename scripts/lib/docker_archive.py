#!/usr/bin/env python3
"""Write a one-layer image in the docker-archive format (what `docker save` writes and
`ctr images import` / `kind load image-archive` read) from a root filesystem directory.

No Docker, no registry. The layer is reproducible: entries sorted, owned by root, with one fixed
modification time (SOURCE_DATE_EPOCH, default 0), so the same rootfs gives the same image id.

  docker_archive.py --rootfs DIR --ref NAME:TAG --out FILE.tar --entrypoint /path/to/bin \
      --user 65532:65532 [--label KEY=VALUE ...] [--env KEY=VALUE ...]

Prints one JSON line: the reference, the image id (sha256 of the config), the layer's size in
bytes and the archive's path.
"""

import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import tempfile


def layer_tar(rootfs: str, out, mtime: int) -> None:
    """The rootfs as an uncompressed tar: sorted, root-owned, fixed mtime, modes kept."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                entries.append(os.path.join(dirpath, name))
        for path in sorted(entries, key=lambda p: os.path.relpath(p, rootfs)):
            rel = os.path.relpath(path, rootfs)
            st = os.lstat(path)
            info = tarfile.TarInfo(rel)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = mtime
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                sys.exit(f"error: {rel}: only directories, files and symlinks go into an image")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rootfs", required=True)
    p.add_argument("--ref", required=True, help="image reference, e.g. ghcr.io/synapsor/synapsor-runner:0.1.0")
    p.add_argument("--out", required=True)
    p.add_argument("--entrypoint", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    a = p.parse_args()

    if not os.path.isdir(a.rootfs):
        sys.exit(f"error: --rootfs {a.rootfs} is not a directory")
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = "1970-01-01T00:00:00Z" if mtime == 0 else None
    if created is None:
        import datetime

        created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {}
    for kv in a.label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            sys.exit(f"error: --label {kv!r} is not KEY=VALUE")
        labels[k] = v

    with tempfile.TemporaryFile() as layer:
        layer_tar(a.rootfs, layer, mtime)
        layer.seek(0)
        h = hashlib.sha256()
        size = 0
        for chunk in iter(lambda: layer.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
        diff_id = "sha256:" + h.hexdigest()
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "User": a.user,
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + a.env,
                "Entrypoint": [a.entrypoint],
                "WorkingDir": "/",
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "scripts/lib/image-rootfs.sh"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        image_id = hashlib.sha256(config_bytes).hexdigest()
        manifest = json.dumps(
            [{"Config": f"{image_id}.json", "RepoTags": [a.ref], "Layers": [f"{h.hexdigest()}/layer.tar"]}]
        ).encode()
        tmp_out = a.out + ".tmp"
        with tarfile.open(tmp_out, "w") as out:
            for name, data in ((f"{image_id}.json", config_bytes), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = mtime
                out.addfile(info, io.BytesIO(data))
            layer.seek(0)
            info = tarfile.TarInfo(f"{h.hexdigest()}/layer.tar")
            info.size = size
            info.mtime = mtime
            out.addfile(info, layer)
        os.replace(tmp_out, a.out)
    print(json.dumps({"ref": a.ref, "id": "sha256:" + image_id, "layer_bytes": size, "archive": a.out}))


if __name__ == "__main__":
    main()
