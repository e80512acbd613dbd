"""Failure drills in the lab: break one thing, run the real playbook, check the hosts afterwards.

Each drill checks state on the hosts (units, the digest a container runs, files,
dpkg's database, the emulator's request log), not only exit codes. The drills
share the session's lab (fixture ``lab_run``) and leave it as they found it:
every workload active on echo_v1, nothing drained, no emulator fault. Each
drill restores that state in a ``finally`` block with ``restore_lab``, which
test_runbooks.py uses too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.lab.conftest import REPO_ROOT, VENV_BIN, run_lab, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EMULATOR = f"http://127.0.0.1:{os.environ.get('MLINFRA_LAB_EMULATOR_PORT', '9471')}"
WORKLOADS = {"lab-train-a100-0": "trainer", "lab-infer-l4-0": "echo-serve", "lab-infer-l4-1": "echo-serve"}
DRAIN_MARKER = "/etc/mlinfra/drained"
GPU_SPEC = "/etc/mlinfra-lab/gpus.json"
ROLLOUT_ECHO_SERVE = (
    "playbooks/rollout.yml",
    "-i",
    "inventories/lab",
    "-e",
    "rollout_hosts=pool_infer_l4",
    "-e",
    "rollout_workload=echo-serve",
)
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


@pytest.fixture
def lab(lab_run):
    """The shared lab in its resting state, restored again after the test."""
    assert lab_run.returncode == 0
    restore_lab()
    yield lab_images()
    restore_lab()


def start_playbook(*args: str) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# The drills ---------------------------------------------------------------------------


def test_drill_host_lost_mid_rollout(lab):
    """A host lost in the middle of a rollout stops the rollout (max_fail_percentage 0), and the
    hosts after it keep serving the previous digest, untouched."""
    echo_v1, echo_v2 = lab["echo_v1"], lab["echo_v2"]
    other_before = workload_unit("lab-infer-l4-1")

    rollout = start_playbook(*ROLLOUT_ECHO_SERVE, "-e", f"rollout_image={echo_v2}")
    lines = []
    stopped_at = None
    assert rollout.stdout is not None
    for line in rollout.stdout:
        lines.append(line)
        # The first batch is lab-infer-l4-0; it is lost while its new image is admitted and pulled.
        if stopped_at is None and line.startswith("TASK [ml_workload : Admit and render each launch config]"):
            subprocess.run(["docker", "stop", "--timeout", "1", "lab-infer-l4-0"], capture_output=True, check=True)
            stopped_at = len(lines)
    returncode = rollout.wait(timeout=600)
    output = "".join(lines)

    assert stopped_at is not None, "the rollout never reached the admission task"
    assert returncode != 0
    assert "NO MORE HOSTS LEFT" in output
    counts = recap(output)
    assert counts["lab-infer-l4-0"]["failed"] == 1
    assert "lab-infer-l4-1" not in counts, "the rollout went on to the next batch"
    assert workload_image("lab-infer-l4-1") == echo_v1
    assert workload_unit("lab-infer-l4-1") == other_before
    assert inference_health("lab-infer-l4-1") == 200
    assert workload_image("lab-train-a100-0") == echo_v1

    restore_lab()
    assert workload_image("lab-infer-l4-0") == echo_v1
    assert inference_health("lab-infer-l4-0") == 200


def test_drill_crash_loop_rolls_back(lab):
    """A workload that crash-loops after a rollout is rolled back to the previous digest on its own,
    and the rollout stops before the next host."""
    echo_v1, crashing = lab["echo_v1"], lab["echo_crashing"]
    other_before = workload_unit("lab-infer-l4-1")

    result = run_playbook(*ROLLOUT_ECHO_SERVE, "-e", f"rollout_image={crashing}")
    output = result.stdout + result.stderr

    assert result.returncode != 0
    assert f"rolled back to {echo_v1}, which is healthy" in output
    assert "lab-infer-l4-0: echo-serve was not healthy with" in output
    assert workload_image("lab-infer-l4-0") == echo_v1
    assert workload_unit("lab-infer-l4-0")["ActiveState"] == "active"
    assert inference_health("lab-infer-l4-0") == 200
    record = workload_record("lab-infer-l4-0")
    assert record["image"] == echo_v1
    assert record["previous_image"] == crashing
    assert "lab-infer-l4-1" not in recap(output)
    assert workload_unit("lab-infer-l4-1") == other_before
    assert workload_image("lab-infer-l4-1") == echo_v1


INTERRUPT_APT = r"""
DEBIAN_FRONTEND=noninteractive apt-get install --reinstall --yes --no-download runc >/tmp/drill-apt.log 2>&1 &
apt_pid=$!
# Wait for dpkg's first journal entry, the first change it makes, then kill it there.
tries=0
while :; do
    set -- /var/lib/dpkg/updates/0*
    [ -e "$1" ] && break
    tries=$((tries + 1))
    [ "$tries" -gt 5000000 ] && break
done
pkill -KILL -x dpkg
kill -KILL "$apt_pid" 2>/dev/null
wait "$apt_pid" 2>/dev/null
true
"""


def runc_status() -> str:
    return host_run("lab-train-a100-0", "dpkg-query", "--show", "--showformat=${Status}", "runc").stdout


def test_drill_interrupted_package_install_converges(lab):
    """A package installation killed part way leaves dpkg broken, and the next driver upgrade run repairs it.

    The lab installs no driver packages, so the drill interrupts runc, which the container runtime role
    installs. After the run dpkg's database is clean, runc is installed and works, and the host is undrained.
    """
    host = "lab-train-a100-0"
    for _attempt in range(3):
        host_run(host, "sh", "-c", INTERRUPT_APT, timeout=300)
        if runc_status() != "install ok installed":
            break
    assert runc_status() != "install ok installed", "could not interrupt the runc installation"
    assert host_run(host, "dpkg", "--audit", check=False).stdout.strip() != ""

    result = run_playbook("playbooks/driver_upgrade.yml", "-i", "inventories/lab", "-e", f"driver_upgrade_hosts={host}")

    assert result.returncode == 0, result.stdout[-3000:]
    assert "finished an interrupted dpkg run" in result.stdout
    assert host_run(host, "dpkg", "--audit").stdout.strip() == ""
    assert runc_status() == "install ok installed"
    assert host_run(host, "runc", "--version").stdout.startswith("runc version")
    assert drain_marker(host) is None
    assert workload_unit(host)["ActiveState"] == "active"
    assert workload_image(host) == lab["echo_v1"]


def test_drill_inventory_503_retried(lab):
    """The inventory API returns 503 three times in a row: the plugin retries and the run succeeds."""
    emulator("DELETE", "requests")
    emulator("POST", "faults", {"operation": "instances.aggregatedList", "status": 503, "count": 3, "retry_after": 0.2})

    result = run_playbook("site.yml", "-i", "inventories/lab", "--limit", "lab-infer-l4-1")

    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result.stdout)["lab-infer-l4-1"] == {"changed": 0, "failed": 0}
    listed = emulator("GET", "requests?operation=instances.aggregatedList")["requests"]
    assert [entry["status"] for entry in listed] == [503, 503, 503, 200]
    assert [rule["fired"] for rule in emulator("GET", "faults")["faults"]] == [3]
    assert workload_image("lab-infer-l4-1") == lab["echo_v1"]


def test_drill_inventory_403_stops_before_change(lab):
    """The inventory API returns 403: the run stops before any task, and the first line of its
    output names the project, the missing permission and the fix."""
    units_before = {host: workload_unit(host) for host in WORKLOADS}
    emulator("POST", "faults", {"operation": "instances.aggregatedList", "status": 403})

    result = run_playbook("site.yml", "-i", "inventories/lab")

    assert result.returncode != 0
    assert "PLAY [" not in result.stdout
    assert "TASK [" not in result.stdout
    first_line = result.stderr.strip().splitlines()[0]
    assert "Permission denied listing instances in project mlinfra-lab" in first_line
    assert "'compute.instances.list' permission" in first_line
    assert "Grant the credentials roles/compute.viewer" in first_line
    assert {host: workload_unit(host) for host in WORKLOADS} == units_before


def prod_inventory_for_lab(directory: Path, environment_mismatch: str) -> Path:
    """Copy the prod inventory (config and group_vars) and point it at the lab's emulator and hosts."""
    config = yaml.safe_load((REPO_ROOT / "inventories/prod/prod.gcp_fleet.yml").read_text())
    lab_config = yaml.safe_load((REPO_ROOT / "inventories/lab/lab.gcp_fleet.yml").read_text())
    config.update(
        projects=lab_config["projects"],
        api_endpoint=EMULATOR,
        auth_kind="anonymous",
        compose=lab_config["compose"],
        environment_mismatch=environment_mismatch,
    )
    (directory / "prod.gcp_fleet.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(REPO_ROOT / "inventories/prod/group_vars", directory / "group_vars")
    return directory


@pytest.mark.parametrize(
    ("environment_mismatch", "expected_message"),
    [
        # prod's own setting: a VM of another environment fails the inventory.
        ("error", "Found 3 instance(s) whose env label is not 'prod'"),
        # The other setting leaves the lab's VMs out, so the run has no host at all.
        ("warn", "Left out 3 instance(s) whose env label is not 'prod'"),
    ],
)
def test_drill_prod_run_on_dev_host_refused(lab, tmp_path, environment_mismatch, expected_message):
    """A prod run pointed at hosts labelled for another environment (the lab's, standing in for dev)
    is rejected before any change, with the reason."""
    inventory = prod_inventory_for_lab(tmp_path, environment_mismatch)
    units_before = {host: workload_unit(host) for host in WORKLOADS}

    result = run_playbook("site.yml", "-i", str(inventory))
    output = result.stdout + result.stderr

    assert expected_message in output
    assert "TASK [" not in result.stdout
    if environment_mismatch == "error":
        assert result.returncode != 0
    else:
        assert "No hosts matched" in output or "no hosts matched" in output
    assert {host: workload_unit(host) for host in WORKLOADS} == units_before


def test_drill_drained_host_stays_stopped(lab):
    """A drained host: a site run keeps its workloads stopped and disabled while it converges the
    pool's other host, and an undrain starts them again."""
    drain = run_playbook(
        "playbooks/drain.yml",
        "-i",
        "inventories/lab",
        "--limit",
        "lab-infer-l4-1",
        "-e",
        "drain_reason='drill: maintenance event'",
    )
    assert drain.returncode == 0, drain.stdout[-3000:]
    marker = drain_marker("lab-infer-l4-1")
    assert marker is not None
    assert marker["reason"] == "drill: maintenance event"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", marker["drained_at"])

    site = run_playbook("site.yml", "-i", "inventories/lab", "--limit", "pool_infer_l4")

    assert site.returncode == 0, site.stdout[-3000:]
    assert "DRAINED since " + marker["drained_at"] in site.stdout
    assert "Drained, workloads stay stopped: lab-infer-l4-1" in site.stdout
    assert recap(site.stdout)["lab-infer-l4-1"] == {"changed": 0, "failed": 0}
    unit = workload_unit("lab-infer-l4-1")
    assert unit["ActiveState"] == "inactive"
    assert unit["UnitFileState"] == "disabled"
    assert workload_image("lab-infer-l4-1") == ""
    assert drain_marker("lab-infer-l4-1") == marker
    assert workload_image("lab-infer-l4-0") == lab["echo_v1"]
    assert inference_health("lab-infer-l4-0") == 200

    undrain = run_playbook("playbooks/undrain.yml", "-i", "inventories/lab", "--limit", "lab-infer-l4-1")

    assert undrain.returncode == 0, undrain.stdout[-3000:]
    assert drain_marker("lab-infer-l4-1") is None
    assert workload_unit("lab-infer-l4-1")["ActiveState"] == "active"
    assert workload_image("lab-infer-l4-1") == lab["echo_v1"]
    assert inference_health("lab-infer-l4-1") == 200
