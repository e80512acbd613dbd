#!/usr/bin/env python3
"""Smoke-check the NVIDIA GPUs of the machine this runs on.

Runs the collection's GPU facts module (mlinfra.platform.nvidia_gpu_facts) and
the nvidia_driver role's verification against localhost, compares the facts
with what `nvidia-smi -L` lists, and prints one summary line that starts with
"gpu-smoke: PASS" or "gpu-smoke: FAIL". It installs and changes nothing, and
needs the repository's virtual environment (.venv) and a loaded driver.

Usage (from anywhere, as a user that may run nvidia-smi):
    tests/gpu/gpu_smoke.py [--expect-count N] [--expect-model NAME] [--timeout SECONDS]

Without --expect-count and --expect-model, the role verifies the GPUs that
`nvidia-smi -L` lists. Exit status: 0 pass, 1 fail, 2 setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "smoke.yml"
# "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-9d6a1e3c-...)". MIG devices are
# listed indented under their GPU and are not counted.
LIST_LINE = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+) \(UUID: (?P<uuid>[^)]+)\)$")
EXIT_PASS, EXIT_FAIL, EXIT_SETUP = 0, 1, 2


class SetupError(Exception):
    """A problem with the machine or the checkout, not with the GPUs."""


def summary(passed: bool, text: str, started: float) -> int:
    print(f"gpu-smoke: {'PASS' if passed else 'FAIL'}: {text} ({time.monotonic() - started:.1f} s)")
    return EXIT_PASS if passed else EXIT_FAIL


def list_gpus(timeout: int) -> list[dict]:
    """Run `nvidia-smi -L` and return one dict (index, name, uuid) per GPU."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        raise SetupError("nvidia-smi is not on PATH; install the driver first")
    try:
        result = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise SetupError(f"nvidia-smi -L timed out after {timeout} s; check dmesg for Xid errors") from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise SetupError(f"nvidia-smi -L failed with exit code {result.returncode}: {output}")
    gpus = []
    for line in result.stdout.splitlines():
        match = LIST_LINE.match(line)
        if match:
            gpus.append({"index": int(match["index"]), "name": match["name"], "uuid": match["uuid"]})
    return gpus


def ansible_playbook() -> str:
    candidate = REPO_ROOT / ".venv" / "bin" / "ansible-playbook"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise SetupError(f"ansible-playbook not found in {candidate.parent} or on PATH; create the venv first")
    return found


def run_playbook(expected_count: int, expected_model: str, timeout: int) -> dict:
    """Play smoke.yml against localhost and return the results it wrote."""
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as workdir:
        result_path = Path(workdir) / "result.json"
        extra_vars = {
            "smoke_expected_count": expected_count,
            "smoke_expected_model": expected_model,
            "smoke_result_path": str(result_path),
        }
        command = [
            ansible_playbook(),
            "-i",
            "localhost,",
            str(PLAYBOOK),
            "-e",
            json.dumps(extra_vars),
        ]
        # Keep the module's PATH, so that it finds the same nvidia-smi as this script.
        env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_FORCE_COLOR="0")
        try:
            played = subprocess.run(
                command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise SetupError(f"ansible-playbook {PLAYBOOK.name} timed out after {timeout} s") from error
        if not result_path.exists():
            tail = "\n".join((played.stdout + played.stderr).splitlines()[-15:])
            raise SetupError(
                f"ansible-playbook {PLAYBOOK.name} wrote no result (exit code {played.returncode}):\n{tail}"
            )
        return json.loads(result_path.read_text())


def compare(listed: list[dict], facts: dict) -> list[str]:
    """Return the differences between `nvidia-smi -L` and the facts module."""
    problems = []
    if facts.get("state") != "ok":
        problems.append(f"facts state {facts.get('state')!r}: {facts.get('msg')}")
    if facts.get("count") != len(listed):
        problems.append(f"facts count {facts.get('count')} but nvidia-smi -L lists {len(listed)}")
    by_index = {gpu["index"]: gpu for gpu in facts.get("gpus", [])}
    for gpu in listed:
        seen = by_index.get(gpu["index"])
        if seen is None:
            problems.append(f"GPU {gpu['index']} is missing from the facts")
            continue
        for field in ("name", "uuid"):
            if seen.get(field) != gpu[field]:
                problems.append(f"GPU {gpu['index']} {field}: facts {seen.get(field)!r}, nvidia-smi -L {gpu[field]!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect-count", type=int, help="number of GPUs the machine should have")
    parser.add_argument("--expect-model", help="product name every GPU should have, such as 'NVIDIA L4'")
    parser.add_argument("--timeout", type=int, default=240, help="seconds the Ansible run may take (default 240)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    try:
        listed = list_gpus(timeout=60)
        if not listed:
            return summary(False, "nvidia-smi -L lists no GPU", started)
        expected_count = len(listed) if args.expect_count is None else args.expect_count
        expected_model = args.expect_model or listed[0]["name"]
        results = run_playbook(expected_count, expected_model, args.timeout)
    except SetupError as error:
        print(f"gpu-smoke: ERROR: {error}")
        return EXIT_SETUP

    facts = results.get("facts", {})
    problems = compare(listed, facts)
    if results.get("failure"):
        problems.insert(0, f"role verification failed: {results['failure']}")
    report = results.get("report", {})
    if not results.get("failure") and not report.get("verified"):
        problems.append(f"the role did not verify the GPUs: {report}")
    if problems:
        return summary(False, "; ".join(problems), started)
    return summary(
        True,
        f"{facts['count']} x {expected_model}, driver {facts.get('driver_version')}, "
        "facts match nvidia-smi -L, role verification passed",
        started,
    )


if __name__ == "__main__":
    sys.exit(main())
