"""One lab for the whole test session: started once, removed at the end.

Bringing the lab up costs minutes, so every test module under tests/lab that
needs it shares this fixture. Set MLINFRA_KEEP_LAB=1 to leave it running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
