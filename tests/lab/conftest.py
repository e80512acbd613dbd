"""One lab for the whole test session: started once, removed at the end.

Bringing the lab up costs minutes, so every test module under tests/lab that
needs it shares these fixtures. Set MLINFRA_KEEP_LAB=1 to leave it running.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.lab.hosts import REPO_ROOT, docker_available, lab_containers, lab_images, restore_lab, run_lab


@pytest.fixture(scope="session")
def lab_run():
    """Bring the lab up with `python -m lab up` and return that run's output."""
    if not docker_available():
        pytest.fail("the docker engine is not reachable; run scripts/install-deps.sh first")
    run_lab("down")
    result = run_lab("up")
    sys.stdout.write(result.stdout[-20000:])
    sys.stderr.write(result.stderr[-5000:])
    if result.returncode != 0:
        pytest.fail(f"python -m lab up failed with exit {result.returncode}: {result.stderr[-2000:]}")
    yield result

    if os.environ.get("MLINFRA_KEEP_LAB") == "1":
        return
    down = run_lab("down")
    assert down.returncode == 0, down.stderr
    assert lab_containers() == [], "lab down left containers behind"
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", "name=mlinfra-lab-"], capture_output=True, text=True, check=True
    )
    assert volumes.stdout.split() == [], "lab down left volumes behind"
    assert not (REPO_ROOT / ".lab" / "emulator.pid").exists(), "lab down left the emulator running"


@pytest.fixture
def lab(lab_run):
    """The shared lab in its resting state, restored again after the test."""
    assert lab_run.returncode == 0
    restore_lab()
    yield lab_images()
    restore_lab()
