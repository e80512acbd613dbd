"""Failure drills in the lab: break one thing, run the real playbook, check the hosts afterwards.

Each drill checks state on the hosts (units, the digest a container runs, files,
dpkg's database, the emulator's request log), not only exit codes. The drills
share the session's lab (fixture ``lab_run``) and leave it as they found it:
every workload active on echo_v1, nothing drained, no emulator fault. Each
drill restores that state in a ``finally`` block with ``restore_lab``
(tests/lab/hosts.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.lab.hosts import (
    EMULATOR,
    REPO_ROOT,
    VENV_BIN,
    WORKLOADS,
    drain_marker,
    emulator,
    host_run,
    inference_health,
    recap,
    restore_lab,
    run_playbook,
    workload_image,
    workload_record,
    workload_unit,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROLLOUT_ECHO_SERVE = (
    "playbooks/rollout.yml",
    "-i",
    "inventories/lab",
    "-e",
    "rollout_hosts=pool_infer_l4",
    "-e",
    "rollout_workload=echo-serve",
)


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
