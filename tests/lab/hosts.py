"""Reading and restoring the lab's hosts from tests.

The lab tests (drills, runbooks, end to end) share one lab, so they share how
they run it, read its hosts and put it back to its resting state: every
workload active on echo_v1, nothing drained, no emulator fault.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LAB_LABEL = "dev.mlinfra.lab=1"


def docker_available() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def run_lab(*args: str, env: dict | None = None, timeout: int = 2400) -> subprocess.CompletedProcess:
    """Run `python -m lab ARGS` from the checkout and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=timeout,
        check=False,
    )


def run_playbook(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run ansible-playbook from the checkout with plain, uncoloured output."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        timeout=timeout,
        check=False,
    )


def lab_containers() -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LAB_LABEL}"], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


EMULATOR = f"http://127.0.0.1:{os.environ.get('MLINFRA_LAB_EMULATOR_PORT', '9471')}"
WORKLOADS = {"lab-train-a100-0": "trainer", "lab-infer-l4-0": "echo-serve", "lab-infer-l4-1": "echo-serve"}
DRAIN_MARKER = "/etc/mlinfra/drained"
GPU_SPEC = "/etc/mlinfra-lab/gpus.json"
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)"
)


# Reading the hosts --------------------------------------------------------------


def host_run(host: str, *argv: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run a command inside a lab host with docker exec."""
    return subprocess.run(["docker", "exec", host, *argv], capture_output=True, text=True, check=check, timeout=timeout)


def container_exists(host: str) -> bool:
    return subprocess.run(["docker", "inspect", host], capture_output=True, check=False).returncode == 0


def container_running(host: str) -> bool:
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", host], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "true"


def lab_images() -> dict[str, str]:
    generated = REPO_ROOT / "inventories/lab/group_vars/all/generated_images.yml"
    return yaml.safe_load(generated.read_text())["lab_images"]


def workload_image(host: str) -> str:
    """Return the image reference the host's workload container runs, or "" when none runs."""
    result = host_run(
        host, "docker", "inspect", "--format", "{{.Config.Image}}", f"mlinfra-{WORKLOADS[host]}", check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def workload_unit(host: str) -> dict[str, str]:
    """Return the systemd properties of the host's workload unit that the drills compare."""
    unit = f"mlinfra-workload-{WORKLOADS[host]}.service"
    properties = "ActiveState,SubState,UnitFileState,ActiveEnterTimestampMonotonic,NRestarts"
    result = host_run(host, "systemctl", "show", f"--property={properties}", unit)
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def workload_record(host: str) -> dict:
    result = host_run(host, "cat", f"/etc/mlinfra/workloads/{WORKLOADS[host]}.json")
    return json.loads(result.stdout)


def drain_marker(host: str) -> dict | None:
    result = host_run(host, "cat", DRAIN_MARKER, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def inference_health(host: str) -> int:
    """Return the HTTP status of echo-serve's health path, asked from inside the host."""
    script = (
        "import urllib.request\n"
        "try:\n"
        "    print(urllib.request.urlopen('http://127.0.0.1:18080/health', timeout=5).status)\n"
        "except Exception:\n"
        "    print(0)\n"
    )
    return int(host_run(host, "python3", "-c", script).stdout.strip() or 0)


def gpu_fault(host: str) -> str | None:
    return json.loads(host_run(host, "cat", GPU_SPEC).stdout).get("fault")


def set_gpu_fault(host: str, fault: str | None) -> None:
    """Make the lab's simulated nvidia-smi on the host fail as the real one does for FAULT, or work again."""
    script = (
        "import json, sys\n"
        f"path = {GPU_SPEC!r}\n"
        "spec = json.load(open(path))\n"
        "spec['fault'] = None if sys.argv[1] == 'none' else sys.argv[1]\n"
        "json.dump(spec, open(path, 'w'), indent=2)\n"
    )
    host_run(host, "python3", "-c", script, fault or "none")


def xid_in_journal(host: str) -> bool:
    result = host_run(host, "journalctl", "--boot", "--identifier=kernel", "--grep=NVRM: Xid", "--quiet", check=False)
    return result.returncode == 0 and "Xid" in result.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    """Return changed and failed per host from a PLAY RECAP."""
    counts = {}
    for line in output.splitlines():
        match = RECAP_LINE.match(line)
        if match:
            counts[match["host"]] = {"changed": int(match["changed"]), "failed": int(match["failed"])}
    return counts


def emulator(method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(method, f"{EMULATOR}/_emulator/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


# Putting the lab back ---------------------------------------------------------------


def baseline_problems() -> dict[str, list[str]]:
    """List, per host, what differs from the lab's resting state."""
    echo_v1 = lab_images()["echo_v1"]
    problems: dict[str, list[str]] = {}
    for host in WORKLOADS:
        found = []
        if not container_running(host):
            problems[host] = ["host container is not running"]
            continue
        if drain_marker(host) is not None:
            found.append("drained")
        if gpu_fault(host) is not None:
            found.append(f"simulated GPU fault {gpu_fault(host)}")
        unit = workload_unit(host)
        if unit.get("ActiveState") != "active" or unit.get("UnitFileState") != "enabled":
            found.append(f"workload unit {unit.get('ActiveState')}/{unit.get('UnitFileState')}")
        if workload_image(host) != echo_v1:
            found.append(f"workload image {workload_image(host) or 'none'}")
        if found:
            problems[host] = found
    return problems


def restore_lab() -> None:
    """Put the lab back to its resting state: hosts up, no faults, no drain, every workload on echo_v1."""
    emulator("DELETE", "faults")
    if not all(container_exists(host) for host in WORKLOADS):
        # A host removed part way through a replacement: start a new one as `python -m lab up` does.
        result = run_lab("up", "--no-converge")
        assert result.returncode == 0, result.stderr[-2000:]
    for host in WORKLOADS:
        if not container_running(host):
            subprocess.run(["docker", "start", host], capture_output=True, check=True)
            host_run(host, "systemctl", "is-system-running", "--wait", check=False, timeout=180)
        if gpu_fault(host) is not None:
            set_gpu_fault(host, None)
        if xid_in_journal(host):
            # The Xid line a drill wrote would count as a fault for the rest of the boot.
            host_run(host, "journalctl", "--rotate")
            time.sleep(2)
            host_run(host, "journalctl", "--vacuum-time=1s")
        host_run(host, "rm", "-f", DRAIN_MARKER)

    broken = sorted(baseline_problems())
    if broken:
        result = run_playbook("site.yml", "-i", "inventories/lab", "--limit", ",".join(broken))
        assert result.returncode == 0, f"site.yml could not restore {broken}: {result.stdout[-3000:]}"
    assert baseline_problems() == {}
