"""Tests of the GPU smoke script against the lab's simulated nvidia-smi.

The script is meant for machines with real GPUs. Here the simulated
nvidia-smi stands first on PATH, so the facts module, the role and
`nvidia-smi -L` all read the same simulated GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.fakes.gpu_spec import build_gpu_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "tests" / "gpu" / "gpu_smoke.py"
FAKE = REPO_ROOT / "lab" / "fakes" / "nvidia-smi"


@pytest.fixture
def fake_gpus(tmp_path):
    """Return a function that writes a GPU spec and puts the simulated nvidia-smi first on PATH."""

    def write(spec: dict) -> dict:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "nvidia-smi").symlink_to(FAKE)
        spec_path = tmp_path / "gpus.json"
        spec_path.write_text(json.dumps(spec))
        return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MLINFRA_LAB_GPU_SPEC": str(spec_path)}

    return write


def run_smoke(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def summary_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("gpu-smoke: ")]


def test_smoke_passes_on_two_l4(fake_gpus):
    env = fake_gpus(build_gpu_spec("smoke", "g2-standard-24", None, "535.261.03"))

    result = run_smoke(env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = summary_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith("gpu-smoke: PASS: 2 x NVIDIA L4, driver 535.261.03, facts match nvidia-smi -L")


def test_smoke_fails_on_wrong_count(fake_gpus):
    env = fake_gpus(build_gpu_spec("smoke", "g2-standard-24", None, "535.261.03"))

    result = run_smoke(env, "--expect-count", "4")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = summary_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith("gpu-smoke: FAIL: role verification failed")
    assert "expected 4 x NVIDIA L4" in lines[0]


def test_smoke_setup_error_without_driver(fake_gpus):
    spec = build_gpu_spec("smoke", "g2-standard-8", None, "535.261.03")
    env = fake_gpus({**spec, "fault": "driver_not_loaded"})

    result = run_smoke(env)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = summary_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith("gpu-smoke: ERROR: nvidia-smi -L failed with exit code 9")


def test_list_line_skips_mig_devices():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    gpu_smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_smoke)
    lines = [
        "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1)",
        "  MIG 3g.20gb     Device  0: (UUID: MIG-2)",
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-3)",
    ]
    matches = [gpu_smoke.LIST_LINE.match(line) for line in lines]

    assert [match["uuid"] for match in matches if match] == ["GPU-1", "GPU-3"]
