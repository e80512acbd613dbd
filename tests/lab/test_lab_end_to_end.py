"""The lab end to end: bring-up, two site.yml runs, the inventory graph, bad input.

These tests start real systemd host containers and run real ansible-playbook
against them through the project's inventory plugin and the Compute API
emulator, so they need the docker engine (scripts/install-deps.sh starts it).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.lab.hosts import REPO_ROOT, VENV_BIN, docker_available, lab_containers, run_lab, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_bad_fleet_starts_nothing(tmp_path):
    if not docker_available():
        pytest.fail("the docker engine is not reachable; run scripts/install-deps.sh first")
    # Other lab tests may have the shared lab up, so compare before and after.
    before = sorted(lab_containers())
    fleet = yaml.safe_load((REPO_ROOT / "inventories/lab/fleet.yml").read_text())
    fleet["hosts"][0]["pool"] = "no-such-pool"
    bad_fleet = tmp_path / "fleet.yml"
    bad_fleet.write_text(yaml.safe_dump(fleet))

    result = run_lab("up", "--fleet", str(bad_fleet))

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown pool 'no-such-pool'" in result.stderr
    assert sorted(lab_containers()) == before


def test_missing_docker_engine_is_one_line():
    before = sorted(lab_containers())
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")

    result = run_lab("up", env=env)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: the docker engine is not reachable; run `make deps` (installs docker.io and starts dockerd)"
    )
    assert sorted(lab_containers()) == before


def test_lab_up_exits_zero(lab_run):
    assert lab_run.returncode == 0, lab_run.stderr[-3000:]


def test_second_run_changes_nothing(lab_run):
    assert "changed=0 on every host: the lab is converged." in lab_run.stdout
    recaps = [line for line in lab_run.stdout.splitlines() if " : ok=" in line]
    second_run = recaps[len(recaps) // 2 :]
    assert len(second_run) == 3
    for line in second_run:
        assert "changed=0" in line, line
        assert "failed=0" in line, line


def test_summary_lists_every_host(lab_run):
    for host in ("lab-train-a100-0", "lab-infer-l4-0", "lab-infer-l4-1"):
        summary_lines = [line for line in lab_run.stdout.splitlines() if line.strip().strip('",').startswith(host)]
        assert summary_lines, f"{host} missing from the fleet summary"


def test_inventory_graph_from_emulator(lab_run):
    assert lab_run.returncode == 0
    result = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "inventories/lab", "--graph"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    graph = result.stdout

    for group in ("@env_lab:", "@pool_train_a100:", "@pool_infer_l4:", "@role_training:", "@role_inference:"):
        assert group in graph
    assert graph.count("lab-infer-l4-") >= 2


def test_inventory_hostvars_carry_gpu_facts(lab_run):
    assert lab_run.returncode == 0
    result = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "inventories/lab", "--host", "lab-train-a100-0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    hostvars = json.loads(result.stdout)

    assert hostvars["gce_gpu_count"] == 1
    assert hostvars["gce_gpu_type"] == "nvidia-tesla-a100"
    assert hostvars["gce_pool"] == "train-a100"
    assert hostvars["gce_role"] == "training"
    assert hostvars["ansible_connection"] == "community.docker.docker"


def test_wrong_environment_refused_before_any_change(lab_run):
    assert lab_run.returncode == 0
    result = run_playbook("site.yml", "-i", "inventories/lab", "-e", "mlinfra_environment=prod")

    assert result.returncode != 0
    assert "Refusing to run: lab-train-a100-0 has env label 'lab'" in result.stdout
    recaps = [line for line in result.stdout.splitlines() if " : ok=" in line]
    assert len(recaps) == 3
    for line in recaps:
        assert "changed=0" in line, line
    # Only the preflight play ran: no task of a later layer appears.
    assert "GPU host layer" not in result.stdout
