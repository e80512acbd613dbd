"""python -m lab.emulator: the ready line, generation, seeding and SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.emulator", "--port", "0", "--log-level", "WARNING", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    return process, line


def test_cli_generates_and_stops_on_sigterm(tmp_path):
    seed = tmp_path / "fleet.json"
    seed.write_text(json.dumps({"projects": {"mlinfra-seeded": {"zones": ["europe-west4-a"]}}}))
    process, line = start(
        "--generate-instances", "12", "--generate-zones", "3", "--generate-projects", "2", "--seed", str(seed)
    )
    try:
        assert line.startswith("compute emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        fleet = requests.get(f"{url}/_emulator/fleet", timeout=10).json()["projects"]
        assert fleet["mlinfra-fleet-01"]["instances"] == 6
        assert fleet["mlinfra-fleet-02"]["instances"] == 6
        assert fleet["mlinfra-fleet-01"]["zones"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
        assert fleet["mlinfra-seeded"] == {"zones": ["europe-west4-a"], "instances": 0}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_rejects_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "lab.emulator", "--host", "0.0.0.0", "--port", "0"],  # noqa: S104 (the value under test)
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_cli_help():
    result = subprocess.run(
        [sys.executable, "-m", "lab.emulator", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "--generate-instances" in result.stdout
    assert "--latency-ms" in result.stdout
