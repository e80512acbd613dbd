"""The inventory benchmark script on a tiny fleet, so that it keeps working between real runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT


@pytest.mark.slow
def test_benchmark_runs_on_small_fleet(tmp_path):
    output = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable, "benchmarks/inventory/run.py",
            "--instances", "60", "--zones", "3", "--projects", "2", "--latency-ms", "0", "--json", str(output),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    measurements = {entry["case"]: entry for entry in json.loads(output.read_text())}
    assert set(measurements) == {
        "gcp_fleet",
        "bare_fleet",
        "gcp_compute",
        "gcp_fleet_cache_cold",
        "gcp_fleet_cache_warm",
    }
    for case, entry in measurements.items():
        assert entry["hosts"] == 60, case
    assert measurements["gcp_fleet"]["api_requests"] == 2
    # gcp_compute reached the emulator through the redirect, one page per project.
    assert measurements["gcp_compute"]["api_requests"] == 2
    assert measurements["gcp_fleet_cache_warm"]["api_requests"] == 0
    assert "| 0 ms | gcp_fleet |" in result.stdout
