"""Bring the local lab up, converge it with site.yml, and take it down.

    python -m lab up      # start the fleet, run site.yml twice, check changed=0
    python -m lab down    # remove every container, volume, network and process
    python -m lab status  # list what the lab has running

The lab is the platform on one machine: hosts are systemd containers, a
Compute API emulator on 127.0.0.1 serves them to the project's own inventory
plugin, a local registry serves workload images, and site.yml converges the
hosts through the docker connection exactly as it would converge GCE VMs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from lab import docker
from lab.fakes.gpu_spec import build_gpu_spec
from lab.fleet import Fleet, FleetError, LabHost, load_fleet
from lab.images import workload

REPO_ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = REPO_ROOT / "inventories" / "lab"
FLEET_FILE = LAB_INVENTORY / "fleet.yml"
GENERATED_IMAGES = LAB_INVENTORY / "group_vars" / "all" / "generated_images.yml"
STATE_DIR = REPO_ROOT / ".lab"

NETWORK = "mlinfra-lab"
REGISTRY_CONTAINER = "mlinfra-lab-registry"
REGISTRY_ALIAS = "lab-registry"
LAB_LABEL = "dev.mlinfra.lab=1"
EMULATOR_PORT = int(os.environ.get("MLINFRA_LAB_EMULATOR_PORT", "9471"))
REGISTRY_PORT = int(os.environ.get("MLINFRA_LAB_REGISTRY_PORT", "15000"))
# The simulated driver version the lab's nvidia-smi reports.
LAB_DRIVER_VERSION = "535.261.03"
# Workload images the lab pushes: (name, tag, variant). Rollout tests and
# drills use the second good digest and the broken ones.
WORKLOAD_IMAGES = (
    ("echo_v1", "v1", "good"),
    ("echo_v2", "v2", "good"),
    ("echo_unhealthy", "unhealthy", "unhealthy"),
    ("echo_crashing", "crashing", "crashing"),
)


class LabError(RuntimeError):
    """Bringing the lab up failed. The message names the cause and the fix."""


def log(message: str) -> None:
    print(f"lab: {message}", flush=True)


def python_bin() -> str:
    return sys.executable


# Bring-up steps -------------------------------------------------------------


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise LabError("the docker client is missing; run `make deps` (installs docker.io and starts dockerd)")
    if not docker.engine_reachable():
        raise LabError("the docker engine is not reachable; run `make deps` (installs docker.io and starts dockerd)")


def build_host_image() -> str:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-host-image.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(f"building the host image failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip().splitlines()[-1]


def build_registry_image(host_image: str) -> str:
    """Return a registry image built from the host image plus Debian's docker-registry."""
    tag = f"mlinfra/lab-registry:{host_image.rsplit(':', 1)[-1]}-2"
    if docker.image_exists(tag):
        return tag
    log(f"building {tag} (Debian's docker-registry package)")
    # Debian's default configuration requires htpasswd authentication. The lab
    # registry is reachable only from this machine and the lab network, so it runs without.
    config = (
        "version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/docker-registry\\n"
        "http:\\n  addr: :5000\\n"
    )
    dockerfile = (
        f"FROM {host_image}\n"
        "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
        " docker-registry && rm -rf /var/lib/apt/lists/*\n"
        f"RUN printf '{config}' > /etc/docker/registry/lab.yml\n"
        'CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/lab.yml"]\n'
    )
    docker.build(tag, dockerfile)
    return tag


def start_registry(registry_image: str) -> str:
    if not docker.container_running(REGISTRY_CONTAINER):
        docker.remove_container(REGISTRY_CONTAINER)
        docker.run(
            [
                "--name", REGISTRY_CONTAINER,
                "--label", LAB_LABEL,
                "--network", NETWORK,
                "--network-alias", REGISTRY_ALIAS,
                "-p", f"127.0.0.1:{REGISTRY_PORT}:5000",
                registry_image,
            ]
        )
    url = f"http://127.0.0.1:{REGISTRY_PORT}"
    wait_for(lambda: requests.get(f"{url}/v2/", timeout=2).status_code == 200, "the lab registry", 60)
    return url


def push_workload_images(registry_url: str) -> dict[str, str]:
    busybox = workload.BUSYBOX
    if not busybox.is_file():
        raise LabError(f"{busybox} is missing; run `make deps` (installs busybox-static)")
    references = {}
    for name, tag, variant in WORKLOAD_IMAGES:
        blobs = workload.build_image(busybox.read_bytes(), variant, tag)
        digest = workload.push_image(registry_url, "mlinfra/echo", tag, blobs)
        references[name] = f"{REGISTRY_ALIAS}:5000/mlinfra/echo@{digest}"
    GENERATED_IMAGES.write_text(
        "---\n# Written by `python -m lab up`: digests of the images it pushed to the lab registry.\n"
        + "lab_images:\n"
        + "".join(f"  {name}: \"{ref}\"\n" for name, ref in references.items())
    )
    return references


def start_emulator() -> str:
    url = f"http://127.0.0.1:{EMULATOR_PORT}"
    pid_file = STATE_DIR / "emulator.pid"
    if pid_file.exists() and _pid_alive(int(pid_file.read_text())):
        return url
    log_file = (STATE_DIR / "emulator.log").open("w")
    process = subprocess.Popen(
        [python_bin(), "-m", "lab.emulator", "--host", "127.0.0.1", "--port", str(EMULATOR_PORT)],
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))

    def ready() -> bool:
        if process.poll() is not None:
            raise LabError(f"the Compute API emulator exited; see {STATE_DIR / 'emulator.log'}")
        return "listening on" in (STATE_DIR / "emulator.log").read_text()

    wait_for(ready, "the Compute API emulator", 30)
    return url


def start_host(host: LabHost, image: str) -> None:
    if docker.container_running(host.name):
        return
    docker.remove_container(host.name)
    docker.run(
        [
            "--name", host.name,
            "--hostname", host.name,
            "--label", LAB_LABEL,
            "--network", NETWORK,
            *docker.SYSTEMD_HOST_FLAGS,
            # Docker inside the host needs a real file system under it, not overlayfs.
            "-v", f"mlinfra-lab-{host.name}-docker:/var/lib/docker",
            image,
        ]
    )


def wait_for_systemd(host: LabHost) -> None:
    def booted() -> bool:
        state = docker.exec_(host.name, ["systemctl", "is-system-running"], check=False).stdout.strip()
        return state in ("running", "degraded")

    wait_for(booted, f"systemd in {host.name}", 120)


def install_gpu_simulation(host: LabHost) -> None:
    """Install the lab's simulated nvidia-smi, which reports the GPUs of the host's machine type."""
    spec = build_gpu_spec(host.name, host.machine_type, None, LAB_DRIVER_VERSION)
    docker.exec_(host.name, ["mkdir", "-p", "/etc/mlinfra-lab"])
    docker.write_file(host.name, "/etc/mlinfra-lab/gpus.json", json.dumps(spec, indent=2) + "\n")
    docker.copy_into(host.name, REPO_ROOT / "lab" / "fakes" / "nvidia-smi", "/usr/local/bin/nvidia-smi")
    docker.exec_(host.name, ["chmod", "0755", "/usr/local/bin/nvidia-smi"])


def register_instance(emulator_url: str, fleet: Fleet, host: LabHost) -> None:
    """Create the host's instance in the emulator with a real instances.insert call."""
    base = f"{emulator_url}/compute/v1/projects/{fleet.project}/zones/{host.zone}/instances"
    existing = requests.get(f"{base}/{host.name}", timeout=10)
    if existing.status_code == 200:
        return
    body = {
        "name": host.name,
        "machineType": f"zones/{host.zone}/machineTypes/{host.machine_type}",
        "labels": {"env": fleet.environment, "pool": host.pool, "role": host.role, "managed-by": "mlinfra-lab"},
        "networkInterfaces": [
            {"network": "global/networks/lab", "networkIP": docker.container_ip(host.name, NETWORK)}
        ],
        "scheduling": {"onHostMaintenance": "TERMINATE", "automaticRestart": True, "provisioningModel": "STANDARD"},
        "serviceAccounts": [{"email": f"workload@{fleet.project}.iam.gserviceaccount.com", "scopes": []}],
        "metadata": {"items": [{"key": "enable-oslogin", "value": "TRUE"}]},
    }
    response = requests.post(base, json=body, timeout=10)
    if response.status_code >= 300:
        raise LabError(f"registering {host.name} in the emulator failed: HTTP {response.status_code} {response.text}")


# site.yml runs --------------------------------------------------------------

_RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


def run_site(label: str, extra_args: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Run site.yml on the lab inventory, stream its output, return the recap per host."""
    playbook = str(Path(python_bin()).parent / "ansible-playbook")
    command = [playbook, "site.yml", "-i", "inventories/lab", *(extra_args or [])]
    log(f"{label}: {' '.join(command[1:])}")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")
    env.setdefault("ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.profile_tasks")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    recap: dict[str, dict[str, int]] = {}
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        match = _RECAP_LINE.match(line)
        if match:
            recap[match["host"]] = {key: int(value) for key, value in match.groupdict().items() if key != "host"}
    if process.wait() != 0:
        raise LabError(
            f"{label} failed (ansible-playbook exit {process.returncode}); "
            "the lab is left up for inspection, `make lab-down` removes it"
        )
    return recap


def check_idempotent(recap: dict[str, dict[str, int]], fleet: Fleet) -> None:
    print("\nSecond run of site.yml, per host:")
    print(f"  {'host':<22} {'ok':>4} {'changed':>8} {'failed':>7}")
    not_idempotent = []
    for host in fleet.hosts:
        counts = recap.get(host.name)
        if counts is None:
            raise LabError(f"{host.name} is missing from the second run's recap; was it in the inventory?")
        print(f"  {host.name:<22} {counts['ok']:>4} {counts['changed']:>8} {counts['failed']:>7}")
        if counts["changed"]:
            not_idempotent.append(host.name)
    if not_idempotent:
        raise LabError(f"the second run changed something on {', '.join(not_idempotent)}; site.yml is not idempotent")
    print("  changed=0 on every host: the lab is converged.\n")


# Helpers ----------------------------------------------------------------------


def wait_for(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Commands ---------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    # Everything that can be checked without starting anything is checked first.
    fleet = load_fleet(Path(args.fleet), LAB_INVENTORY / "group_vars")
    check_docker()

    STATE_DIR.mkdir(exist_ok=True)
    log(f"fleet: {len(fleet.hosts)} hosts in {len({h.zone for h in fleet.hosts})} zones, project {fleet.project}")
    try:
        host_image = build_host_image()
        log(f"host image {host_image}")
        docker.ensure_network(NETWORK, LAB_LABEL)
        registry_url = start_registry(build_registry_image(host_image))
        images = push_workload_images(registry_url)
        log(f"pushed {len(images)} workload images to {registry_url}")
        emulator_url = start_emulator()
        log(f"Compute API emulator at {emulator_url}")
        for host in fleet.hosts:
            start_host(host, host_image)
        for host in fleet.hosts:
            wait_for_systemd(host)
            install_gpu_simulation(host)
            register_instance(emulator_url, fleet, host)
            log(f"{host.name}: up in {host.zone}, pool {host.pool}, {host.gpu_count} x {host.gpu_type}")
    except (LabError, docker.DockerError, requests.RequestException) as exc:
        log(f"bring-up failed, removing what was started: {exc}")
        down(args)
        raise LabError(str(exc)) from None

    if args.no_converge:
        return 0
    run_site("first run of site.yml")
    check_idempotent(run_site("second run of site.yml"), fleet)
    return 0


def down(_args: argparse.Namespace) -> int:
    pid_file = STATE_DIR / "emulator.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGTERM)
        pid_file.unlink()
    removed = docker.remove_labelled(LAB_LABEL)
    GENERATED_IMAGES.unlink(missing_ok=True)
    log(f"removed {removed['containers']} containers, {removed['volumes']} volumes, {removed['networks']} networks")
    return 0


def status(_args: argparse.Namespace) -> int:
    for line in docker.list_labelled(LAB_LABEL):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="The mlinfra local lab.")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the fleet and converge it with site.yml, twice")
    up_parser.add_argument("--fleet", default=str(FLEET_FILE), help="fleet file (default: %(default)s)")
    up_parser.add_argument("--no-converge", action="store_true", help="start the fleet but do not run site.yml")
    up_parser.set_defaults(handler=up)
    commands.add_parser("down", help="remove everything the lab started").set_defaults(handler=down)
    commands.add_parser("status", help="list the lab's containers").set_defaults(handler=status)
    args = parser.parse_args(argv)

    try:
        return args.handler(args)
    except (FleetError, LabError, docker.DockerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
