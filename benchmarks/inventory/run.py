"""Benchmark inventory loading: gcp_fleet against google.cloud.gcp_compute and a bare floor plugin.

Starts the Compute API emulator with a generated fleet, then runs
``ansible-inventory --graph`` once per plugin and regime and reports wall
time, CPU time (user + system) and peak resident memory of each run, with
ratios. See README.md in this folder for what each case measures.

Run from the repository root:

    .venv/bin/python benchmarks/inventory/run.py                 # 10,000 instances, 100 zones, 2 projects
    .venv/bin/python benchmarks/inventory/run.py --instances 600 --zones 4 --skip-gcp-compute
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.mlinfra.platform.plugins.module_utils.gce_inventory import FIELD_MASK

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
PROJECT_PREFIX = "mlinfra-bench"
ENVIRONMENT = "bench"

# The two keyed groups every plugin builds on top of the default groups.
KEYED_GROUPS_OURS = """\
keyed_groups:
  - key: gce_machine_family
    prefix: family
  - key: gce_labels['managed-by']
    prefix: managed
"""

# gcp_compute has no default groups, so keyed groups build the same ones:
# env, pool, role, zone and attached GPU type, plus the two above.
KEYED_GROUPS_GCP_COMPUTE = """\
keyed_groups:
  - key: labels['env']
    prefix: env
  - key: labels['pool']
    prefix: pool
  - key: labels['role']
    prefix: role
  - key: zone
    prefix: zone
  - key: guestAccelerators | default([]) | map(attribute='acceleratorType') | map('basename') | list
    prefix: gpu
  - key: machineType.split('-')[0]
    prefix: family
  - key: labels['managed-by']
    prefix: managed
"""


@dataclass
class Measurement:
    case: str
    regime: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    hosts: int
    api_requests: int


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000, help="instances in the fleet (default: %(default)s)")
    parser.add_argument("--zones", type=int, default=100, help="zones per project (default: %(default)s)")
    parser.add_argument("--projects", type=int, default=2, help="projects (default: %(default)s)")
    parser.add_argument(
        "--latency-ms",
        default="0,100",
        help="comma-separated emulator delays per request, in milliseconds; one regime each (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per case; the median is reported (default: %(default)s)"
    )
    parser.add_argument("--skip-gcp-compute", action="store_true", help="leave out google.cloud.gcp_compute (slow)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    return parser.parse_args()


class Emulator:
    """The emulator as a separate process, so that its CPU time is not counted in the measured runs."""

    def __init__(self, instances: int, zones: int, projects: int) -> None:
        command = [
            sys.executable, "-m", "lab.emulator", "--port", "0", "--log-level", "WARNING",
            "--generate-instances", str(instances), "--generate-zones", str(zones),
            "--generate-projects", str(projects), "--generate-env", ENVIRONMENT,
            "--generate-project-prefix", PROJECT_PREFIX,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def set_latency(self, latency_ms: float) -> None:
        requests.post(f"{self.url}/_emulator/latency", json={"latency_ms": latency_ms}, timeout=10).raise_for_status()

    def request_count(self) -> int:
        response = requests.get(f"{self.url}/_emulator/requests", params={"limit": "0"}, timeout=10)
        response.raise_for_status()
        return int(response.json()["total"])

    def warm_up(self, projects: list[str], field_mask: str) -> None:
        """Fetch every page once, so the emulator's listing and projection caches do not favour a later case."""
        for project in projects:
            params = {"maxResults": "500", "filter": "(status = RUNNING)", "returnPartialSuccess": "true"}
            while True:
                response = requests.get(
                    f"{self.url}/compute/v1/projects/{project}/aggregated/instances",
                    params=params,
                    headers={"X-Goog-FieldMask": field_mask},
                    timeout=120,
                )
                response.raise_for_status()
                token = response.json().get("nextPageToken")
                if not token:
                    break
                params["pageToken"] = token

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def write_configs(directory: Path, url: str, projects: list[str]) -> dict[str, Path]:
    project_list = "[" + ", ".join(projects) + "]"
    configs = {
        "gcp_fleet": (
            "bench.gcp_fleet.yml",
            f"plugin: mlinfra.platform.gcp_fleet\nenvironment: {ENVIRONMENT}\nprojects: {project_list}\n"
            f"api_endpoint: {url}\nauth_kind: anonymous\n{KEYED_GROUPS_OURS}",
        ),
        "gcp_fleet_cached": (
            "bench-cached.gcp_fleet.yml",
            f"plugin: mlinfra.platform.gcp_fleet\nenvironment: {ENVIRONMENT}\nprojects: {project_list}\n"
            f"api_endpoint: {url}\nauth_kind: anonymous\n{KEYED_GROUPS_OURS}"
            f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {directory / 'cache'}\n"
            "cache_timeout: 3600\n",
        ),
        "bare_fleet": (
            "bench.bare_fleet.yml",
            f"plugin: bare_fleet\nenvironment: {ENVIRONMENT}\nprojects: {project_list}\napi_endpoint: {url}\n",
        ),
        "gcp_compute": (
            "bench.gcp_compute.yml",
            f"plugin: google.cloud.gcp_compute\nprojects: {project_list}\nauth_kind: accesstoken\n"
            f"access_token: emulator-token\nhostnames: [name]\n{KEYED_GROUPS_GCP_COMPUTE}",
        ),
    }
    paths = {}
    for case, (name, text) in configs.items():
        paths[case] = directory / name
        paths[case].write_text(text)
    return paths


def command_for(case: str, config: Path, url: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, ANSIBLE_INVENTORY_ENABLED="mlinfra.platform.gcp_fleet", PYTHONUNBUFFERED="1")
    env.pop("GCP_FLEET_API_ENDPOINT", None)
    inventory = str(VENV_BIN / "ansible-inventory")
    if case == "bare_fleet":
        env["ANSIBLE_INVENTORY_ENABLED"] = "bare_fleet"
        env["ANSIBLE_INVENTORY_PLUGINS"] = str(HERE / "plugins")
        return [inventory, "-i", str(config), "--graph"], env
    if case == "gcp_compute":
        env["ANSIBLE_INVENTORY_ENABLED"] = "google.cloud.gcp_compute"
        return [sys.executable, str(HERE / "gcp_compute_redirect.py"), url, "-i", str(config), "--graph"], env
    return [inventory, "-i", str(config), "--graph"], env


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run a command; return wall seconds, CPU seconds, peak RSS in MB and its stdout."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        errors.seek(0)
        stdout = output.read().decode()
        stderr = errors.read().decode()
    if process.returncode != 0 or "WARNING" in stderr:
        raise SystemExit(f"{' '.join(command)} failed (exit {process.returncode}):\n{stderr[-3000:]}")
    # ru_maxrss is in KiB on Linux.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, stdout


def count_hosts(graph: str) -> int:
    return len({line.rsplit("--", 1)[-1] for line in graph.splitlines() if "--" in line and "@" not in line})


def run_case(case: str, regime: str, config: Path, emulator: Emulator, runs: int) -> tuple[Measurement, str]:
    command, env = command_for(case, config, emulator.url)
    samples = []
    graph = ""
    for _ in range(runs):
        before = emulator.request_count()
        wall, cpu, rss, graph = measure(command, env)
        samples.append((wall, cpu, rss, emulator.request_count() - before))
    wall, cpu, rss, api_requests = (statistics.median(values) for values in zip(*samples, strict=True))
    result = Measurement(
        case, regime, round(wall, 2), round(cpu, 2), round(rss, 1), count_hosts(graph), int(api_requests)
    )
    print(f"  {case:<22} wall {result.wall_s:6.2f} s  cpu {result.cpu_s:6.2f} s  peak {result.peak_rss_mb:6.1f} MB  "
          f"hosts {result.hosts}  requests {result.api_requests}", flush=True)  # fmt: skip
    return result, graph


def main() -> int:
    args = parse_args()
    projects = [f"{PROJECT_PREFIX}-{index:02d}" for index in range(1, args.projects + 1)]
    print(f"Starting the emulator with {args.instances} instances over {args.zones} zones and {args.projects} projects")
    emulator = Emulator(args.instances, args.zones, args.projects)
    results: list[Measurement] = []
    try:
        with tempfile.TemporaryDirectory(prefix="inventory-bench-") as temporary:
            configs = write_configs(Path(temporary), emulator.url, projects)
            emulator.warm_up(projects, FIELD_MASK)
            for latency in [float(value) for value in args.latency_ms.split(",")]:
                regime = f"{latency:g} ms"
                emulator.set_latency(latency)
                print(f"Regime: {regime} per request")
                ours, ours_graph = run_case("gcp_fleet", regime, configs["gcp_fleet"], emulator, args.runs)
                floor, floor_graph = run_case("bare_fleet", regime, configs["bare_fleet"], emulator, args.runs)
                results += [ours, floor]
                if ours_graph != floor_graph:
                    raise SystemExit("gcp_fleet and bare_fleet built different inventories; the comparison is invalid")
                if not args.skip_gcp_compute:
                    results.append(run_case("gcp_compute", regime, configs["gcp_compute"], emulator, args.runs)[0])
                # A fresh cache directory per regime: the first run fills it, the second reads it.
                cache_dir = Path(temporary) / "cache"
                if cache_dir.exists():
                    for entry in cache_dir.iterdir():
                        entry.unlink()
                cold, _graph = run_case("gcp_fleet_cache_cold", regime, configs["gcp_fleet_cached"], emulator, 1)
                warm, warm_graph = run_case(
                    "gcp_fleet_cache_warm", regime, configs["gcp_fleet_cached"], emulator, args.runs
                )
                results += [cold, warm]
                if warm_graph != ours_graph:
                    raise SystemExit("the warm-cache run built a different inventory than the uncached run")
    finally:
        emulator.stop()

    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in results], indent=2) + "\n")
    return 0


def report(results: list[Measurement]) -> str:
    """Format the measurements and the ratios the plugin's targets are stated in, as Markdown tables."""
    lines = [
        "| regime | case | wall s | CPU s | peak MB | hosts | API requests |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.regime} | {result.case} | {result.wall_s:.2f} | {result.cpu_s:.2f} | "
            f"{result.peak_rss_mb:.0f} | {result.hosts} | {result.api_requests} |"
        )
    lines += [
        "",
        "| regime | gcp_compute / gcp_fleet, wall (CPU) | gcp_fleet / bare_fleet, wall (CPU) "
        "| gcp_fleet / gcp_compute, peak memory | warm / cold cache, wall (CPU) |",
        "|---|---:|---:|---:|---:|",
    ]
    by_key = {(result.regime, result.case): result for result in results}
    for regime in dict.fromkeys(result.regime for result in results):
        ours = by_key[(regime, "gcp_fleet")]
        floor = by_key[(regime, "bare_fleet")]
        other = by_key.get((regime, "gcp_compute"))
        warm = by_key[(regime, "gcp_fleet_cache_warm")]
        cold = by_key[(regime, "gcp_fleet_cache_cold")]
        speedup = f"{other.wall_s / ours.wall_s:.1f} ({other.cpu_s / ours.cpu_s:.1f})" if other else "-"
        memory = f"{ours.peak_rss_mb / other.peak_rss_mb:.2f}" if other else "-"
        lines.append(
            f"| {regime} | {speedup} | {ours.wall_s / floor.wall_s:.2f} ({ours.cpu_s / floor.cpu_s:.2f}) | {memory} "
            f"| {warm.wall_s / cold.wall_s:.2f} ({warm.cpu_s / cold.cpu_s:.2f}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
