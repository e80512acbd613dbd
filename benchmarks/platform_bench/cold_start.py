"""Cold start of an inference workload: its systemd unit against `docker run` by hand.

Each sample runs inside one lab host (see cold_start_probe.py). Samples of the
four cases alternate, so a busy moment of the shared CPU hits all of them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PROBE = Path(__file__).resolve().parent / "cold_start_probe.py"
PROBE_IN_HOST = "/root/cold_start_probe.py"
# What the lab's inference launch config runs (inventories/lab/group_vars/pool_infer_l4.yml).
WORKLOAD = "echo-serve"
UNIT = f"mlinfra-workload-{WORKLOAD}.service"
CONTAINER = f"mlinfra-{WORKLOAD}"
UNIT_URL = "http://127.0.0.1:18080/health"
FLOOR_CONTAINER = "bench-cold-start-floor"
FLOOR_PORT = 18081
FLOOR_URL = f"http://127.0.0.1:{FLOOR_PORT}/health"
WORKLOAD_COMMAND = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
CASES = ("unit_cached", "docker_cached", "unit_pulled", "docker_pulled")


class ColdStartError(RuntimeError):
    """A cold start sample failed; the message names the host and the case."""


@dataclass
class ColdStartResult:
    host: str
    image: str
    health_check_interval_s: float
    samples: dict[str, list[float]] = field(default_factory=dict)
    start_command_s: dict[str, list[float]] = field(default_factory=dict)


def _probe(host: str, case: str, image: str) -> dict:
    mode, image_state = case.split("_")
    command = ["docker", "exec", host, "python3", PROBE_IN_HOST, mode, "--image", image, "--unit", UNIT]
    if mode == "unit":
        command += ["--container", CONTAINER, "--url", UNIT_URL]
    else:
        command += ["--container", FLOOR_CONTAINER, "--port", str(FLOOR_PORT), "--url", FLOOR_URL]
    if image_state == "pulled":
        command.append("--pull")
    if mode == "docker":
        command += ["--command", json.dumps(WORKLOAD_COMMAND)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ColdStartError(f"cold start sample {case} on {host} failed: {result.stderr.strip() or result.stdout}")
    return json.loads(result.stdout)


def measure(host: str, image: str, health_check_interval_s: float, repetitions: int) -> ColdStartResult:
    """Measure every case `repetitions` times on `host` and leave the unit running."""
    subprocess.run(["docker", "cp", str(PROBE), f"{host}:{PROBE_IN_HOST}"], check=True, capture_output=True)
    result = ColdStartResult(host=host, image=image, health_check_interval_s=health_check_interval_s)
    for repetition in range(1, repetitions + 1):
        for case in CASES:
            sample = _probe(host, case, image)
            result.samples.setdefault(case, []).append(sample["first_200_s"])
            result.start_command_s.setdefault(case, []).append(sample["start_command_s"])
            print(f"bench: cold start {case} #{repetition} on {host}: {sample['first_200_s']:.3f} s", flush=True)
    # The last case ran the floor container; start the unit again so the host stays converged.
    subprocess.run(["docker", "exec", host, "systemctl", "start", UNIT], check=True, capture_output=True)
    return result
