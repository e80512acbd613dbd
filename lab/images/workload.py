"""Build the lab's tiny workload image and push it to a registry.

The image is Debian's static busybox on an empty root file system: enough for
an inference stand-in (``busybox httpd`` serving ``/www/health``) and a
training stand-in (a shell loop that checkpoints on SIGTERM). No container
registry is reachable from the build machines, so the image is assembled here
and pushed over the registry HTTP API (v2) to a registry the lab started.

The build is deterministic: the same busybox binary and variant give the same
layer, config and manifest bytes, hence the same digest on every machine.

    python -m lab.images.workload --registry http://127.0.0.1:5000 \\
        --repository mlinfra/echo --tag v1 [--variant good|unhealthy|crashing]

prints ``sha256:<hex>``, the manifest digest to pin in a launch config.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import requests

BUSYBOX = Path("/bin/busybox")
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# What each variant lacks, so rollouts and drills have a bad image to try:
# "unhealthy" runs but its health path answers 404, "crashing" has no shell,
# so every command fails to start.
VARIANTS = ("good", "unhealthy", "crashing")


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def _add_entry(archive: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o777
    info.mtime = 0
    archive.addfile(info)


def build_layer(busybox: bytes, variant: str, version: str) -> bytes:
    """Return the uncompressed root file system tar for one variant."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for directory in ("bin", "etc", "tmp", "www", "checkpoints"):
            _add_entry(archive, directory, tarfile.DIRTYPE)
        if variant != "crashing":
            _add_file(archive, "bin/busybox", busybox, 0o755)
            for applet in ("sh", "httpd", "sleep", "echo", "date", "cat", "wget", "nc"):
                _add_entry(archive, f"bin/{applet}", tarfile.SYMTYPE, "busybox")
        _add_file(archive, "etc/workload-version", f"{version}\n".encode(), 0o644)
        if variant != "unhealthy":
            _add_file(archive, "www/health", b"ok\n", 0o644)
    return buffer.getvalue()


def build_image(busybox: bytes, variant: str, version: str) -> tuple[Blob, Blob, Blob]:
    """Return the (layer, config, manifest) blobs of the image."""
    layer_tar = build_layer(busybox, variant, version)
    # mtime=0 keeps the gzip header, and so the layer digest, reproducible.
    layer = Blob(LAYER_MEDIA_TYPE, gzip.compress(layer_tar, compresslevel=6, mtime=0))

    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.opencontainers.image.version": version, "dev.mlinfra.variant": variant},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": f"mlinfra lab workload image ({variant})"}],
    }
    config = Blob(CONFIG_MEDIA_TYPE, json.dumps(config_doc, sort_keys=True).encode())

    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": config.media_type, "size": len(config.data), "digest": config.digest},
        "layers": [{"mediaType": layer.media_type, "size": len(layer.data), "digest": layer.digest}],
    }
    manifest = Blob(MANIFEST_MEDIA_TYPE, json.dumps(manifest_doc, sort_keys=True).encode())
    return layer, config, manifest


def push_image(registry: str, repository: str, tag: str, blobs: tuple[Blob, Blob, Blob], timeout: float = 30) -> str:
    """Upload the blobs and the manifest; return the manifest digest."""
    layer, config, manifest = blobs
    session = requests.Session()
    base = registry.rstrip("/")

    for blob in (layer, config):
        exists = session.head(f"{base}/v2/{repository}/blobs/{blob.digest}", timeout=timeout)
        if exists.status_code == 200:
            continue
        start = session.post(f"{base}/v2/{repository}/blobs/uploads/", timeout=timeout)
        start.raise_for_status()
        location = start.headers["Location"]
        if location.startswith("/"):
            location = base + location
        separator = "&" if "?" in location else "?"
        upload = session.put(
            f"{location}{separator}digest={blob.digest}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=timeout,
        )
        upload.raise_for_status()

    response = session.put(
        f"{base}/v2/{repository}/manifests/{tag}",
        data=manifest.data,
        headers={"Content-Type": MANIFEST_MEDIA_TYPE},
        timeout=timeout,
    )
    response.raise_for_status()
    pushed = response.headers.get("Docker-Content-Digest", manifest.digest)
    if pushed != manifest.digest:
        raise RuntimeError(f"registry stored manifest {pushed}, expected {manifest.digest}")
    return manifest.digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True, help="registry base URL, for example http://127.0.0.1:5000")
    parser.add_argument("--repository", required=True, help="repository path, for example mlinfra/echo")
    parser.add_argument("--tag", required=True, help="tag to push the manifest under")
    parser.add_argument("--variant", choices=VARIANTS, default="good", help="which image to build (default: good)")
    parser.add_argument("--busybox", type=Path, default=BUSYBOX, help="static busybox binary (busybox-static package)")
    args = parser.parse_args(argv)

    if not args.busybox.is_file():
        print(f"error: {args.busybox} not found; install it with: apt-get install busybox-static", file=sys.stderr)
        return 1

    blobs = build_image(args.busybox.read_bytes(), args.variant, args.tag)
    try:
        digest = push_image(args.registry, args.repository, args.tag, blobs)
    except (requests.RequestException, RuntimeError) as exc:
        print(f"error: pushing {args.repository}:{args.tag} to {args.registry} failed: {exc}", file=sys.stderr)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
