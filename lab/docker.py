"""Thin wrappers over the docker CLI for the lab and the tests.

The CLI is used rather than an SDK because it is what a reader would type to
inspect the lab by hand, and it is already on every machine that runs docker.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

# A systemd host in a container: PID 1 is systemd, which needs the cgroup tree
# and writable /run. --privileged is not possible on the build machines
# (CAP_SYS_RESOURCE is outside their bounding set), so every other capability
# is added instead; docker inside the host needs them.
SYSTEMD_HOST_FLAGS = (
    "--cap-add", "ALL",
    "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--cgroupns", "host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
)


class DockerError(RuntimeError):
    """A docker command failed; the message carries the command and its stderr."""


def _docker(args: list[str], check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, input=input_text, check=False)
    if check and result.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result


def engine_reachable() -> bool:
    return _docker(["info", "--format", "{{.ServerVersion}}"], check=False).returncode == 0


def image_exists(tag: str) -> bool:
    return _docker(["image", "inspect", tag], check=False).returncode == 0


def build(tag: str, dockerfile: str) -> None:
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(dockerfile)
        _docker(["build", "-q", "-t", tag, context])


def ensure_network(name: str, label: str) -> None:
    if _docker(["network", "inspect", name], check=False).returncode != 0:
        _docker(["network", "create", "--label", label, name])


def run(args: list[str]) -> str:
    return _docker(["run", "-d", *args]).stdout.strip()


def container_running(name: str) -> bool:
    result = _docker(["inspect", "--format", "{{.State.Running}}", name], check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def container_ip(name: str, network: str) -> str:
    template = "{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}"
    return _docker(["inspect", "--format", template, name]).stdout.strip()


def remove_container(name: str) -> None:
    _docker(["rm", "-f", "-v", name], check=False)


def exec_(name: str, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return _docker(["exec", name, *command], check=check)


def write_file(name: str, path: str, content: str) -> None:
    _docker(["exec", "-i", name, "sh", "-c", f"cat > {path}"], input_text=content)


def copy_into(name: str, source: Path, destination: str) -> None:
    _docker(["cp", str(source), f"{name}:{destination}"])


def list_labelled(label: str) -> list[str]:
    result = _docker(["ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}\t{{.Status}}"])
    return [line for line in result.stdout.splitlines() if line]


def remove_labelled(label: str) -> dict[str, int]:
    """Remove every container, volume and network that carries the label."""
    containers = _docker(["ps", "-aq", "--filter", f"label={label}"]).stdout.split()
    # Host volumes are named after their container; collect them before removal.
    volumes: set[str] = set()
    for container in containers:
        mounts = json.loads(_docker(["inspect", "--format", "{{json .Mounts}}", container]).stdout or "[]")
        volumes.update(mount["Name"] for mount in mounts if mount.get("Type") == "volume")
    if containers:
        _docker(["rm", "-f", "-v", *containers])
    for volume in volumes:
        _docker(["volume", "rm", "-f", volume], check=False)
    networks = _docker(["network", "ls", "-q", "--filter", f"label={label}"]).stdout.split()
    for network in networks:
        _docker(["network", "rm", network], check=False)
    return {"containers": len(containers), "volumes": len(volumes), "networks": len(networks)}
