"""Run the platform benchmarks on the lab, stage by stage, and collect the results as one dict."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from platform_bench import cold_start, report, rollout
from platform_bench.ansible_runs import (
    REPO_ROOT,
    RunSummary,
    run_playbook,
    write_floor_playbook,
)
from platform_bench.fleets import inference_hosts, write_fleet_file

INVENTORY_BENCHMARK = REPO_ROOT / "benchmarks" / "inventory" / "run.py"
# The inference launch config's health check interval (inventories/lab/group_vars/pool_infer_l4.yml).
HEALTH_CHECK_INTERVAL_S = 1.0


class BenchmarkError(RuntimeError):
    """A benchmark stage failed; the message names the stage and what to look at."""


def lab(*args: str) -> None:
    """Run `python -m lab ARGS`, streaming its output."""
    print(f"bench: python -m lab {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO_ROOT, check=False)
    if result.returncode != 0:
        raise BenchmarkError(f"python -m lab {' '.join(args)} exited {result.returncode}")


def machine_info() -> dict:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    docker_version = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    ansible_version = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "ansible": ansible_version,
        "docker_engine": docker_version,
        "load_average_at_start": os.getloadavg(),
    }


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


class Suite:
    """The benchmark run: lab fleets, logs and the results collected so far."""

    def __init__(self, work_dir: Path, quick: bool, inventory_args: list[str] | None) -> None:
        self.work_dir = work_dir
        self.quick = quick
        self.inventory_args = inventory_args
        self.results: dict = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "machine": machine_info(),
            "convergence": {"first_runs": [], "cases": []},
            "cold_start": None,
            "rollout": [],
            "inventory": None,
        }

    def save_partial(self) -> None:
        (self.work_dir / "partial-results.json").write_text(json.dumps(self.results, indent=2) + "\n")

    # Convergence -----------------------------------------------------------

    def grow_fleet(self, size: int) -> None:
        lab("up", "--no-converge", "--fleet", str(write_fleet_file(self.work_dir, size)))
        first = run_playbook(f"site.yml first run, {size} hosts", "site.yml", self.work_dir)
        self.results["convergence"]["first_runs"].append(first.to_dict())
        self.save_partial()

    def idempotent_against_floor(self, size: int, pipelining: bool, repetition: int, all_tasks_floor: bool) -> None:
        """Run site.yml (expecting changed=0), then its floors, back to back.

        The host-task floor has one stat per task that reached a host. The all-task
        floor, run when all_tasks_floor is set, has one stat per task that ran,
        controller-only tasks (set_fact, assert, include_tasks) included.
        """
        mode = "pipelining on" if pipelining else "pipelining off"
        label = f"{size} hosts, {mode}, #{repetition}"
        site = run_playbook(f"site.yml idempotent, {label}", "site.yml", self.work_dir, pipelining=pipelining)
        if site.changed:
            raise BenchmarkError(f"site.yml changed {site.changed} things on its idempotent run ({label})")
        case = {"hosts": size, "pipelining": pipelining, "repetition": repetition, "site": site.to_dict()}

        playbook = write_floor_playbook(self.work_dir, round(site.module_tasks_per_host))
        case["floor"] = run_playbook(
            f"host-task floor, {label}", str(playbook), self.work_dir, pipelining=pipelining
        ).to_dict()
        if all_tasks_floor:
            playbook = write_floor_playbook(self.work_dir, round(site.tasks_per_host))
            case["floor_all_tasks"] = run_playbook(
                f"all-task floor, {label}", str(playbook), self.work_dir, pipelining=pipelining
            ).to_dict()
        self.results["convergence"]["cases"].append(case)
        self.save_partial()
        cpu_ratio = report.case_ratio(case, measure="cpu_s")
        print(
            f"bench: convergence ratio ({label}): wall {report.case_ratio(case):.2f}, "
            f"CPU {'n/a' if cpu_ratio is None else format(cpu_ratio, '.2f')} of the host-task floor",
            flush=True,
        )

    # Cold start and rollout ----------------------------------------------------

    def cold_start(self) -> None:
        host = inference_hosts(3)[0]
        image = rollout.lab_images()["echo_v1"]
        repetitions = 2 if self.quick else 5
        measured = cold_start.measure(host, image, HEALTH_CHECK_INTERVAL_S, repetitions)
        self.results["cold_start"] = measured.__dict__
        self.save_partial()
        ratios = report.cold_start_ratios(self.results["cold_start"])
        print(f"bench: cold start ratio (cached image): {ratios['cached']['ratio']:.2f}", flush=True)

    def rollout(self, size: int, batch_size: int) -> None:
        """Roll the pool to echo_v2 (pulled on every host), then back to echo_v1 (still cached)."""
        images = rollout.lab_images()
        pool = inference_hosts(size)
        rollout.remove_image(pool, images["echo_v2"])
        entries = []
        for name, image_state in (("echo_v2", "pulled"), ("echo_v1", "cached")):
            summary: RunSummary = rollout.roll_out(
                f"rollout to {name}, {len(pool)} hosts, batches of {batch_size}",
                images[name],
                batch_size,
                self.work_dir,
            )
            entries.append(
                {
                    "pool_hosts": len(pool),
                    "batch_size": batch_size,
                    "image": image_state,
                    "run": summary.to_dict(),
                }
            )
        self.results["rollout"].extend(entries)
        self.save_partial()
        ratio = report.rollout_ratio(entries[0], self.results["cold_start"])
        print(f"bench: rollout ratio ({len(pool)} hosts, new digest): {ratio:.2f}", flush=True)

    # Inventory -----------------------------------------------------------------

    def inventory(self) -> None:
        if self.inventory_args is None:
            self.results["inventory"] = {"skipped": True}
            return
        output = self.work_dir / "inventory.json"
        command = [sys.executable, str(INVENTORY_BENCHMARK), "--json", str(output), *self.inventory_args]
        print(f"bench: inventory benchmark: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, cwd=REPO_ROOT, check=False)
        if result.returncode != 0:
            raise BenchmarkError(f"the inventory benchmark exited {result.returncode}")
        self.results["inventory"] = {
            "arguments": self.inventory_args,
            "wall_s": time.monotonic() - started,
            "measurements": json.loads(output.read_text()),
        }
        self.save_partial()
        for line in report.inventory_ratio_lines(self.results["inventory"]):
            print(f"bench: inventory ratio: {line}", flush=True)

    # The whole run -------------------------------------------------------------

    def run(self, keep_lab: bool) -> dict:
        lab("down")
        try:
            self.grow_fleet(3)
            repetitions = 1 if self.quick else 3
            for repetition in range(1, repetitions + 1):
                self.idempotent_against_floor(3, True, repetition, all_tasks_floor=True)
            if not self.quick:
                self.idempotent_against_floor(3, False, 1, all_tasks_floor=False)
            self.cold_start()
            self.rollout(3, 1)
            if not self.quick:
                for size in (6, 12):
                    self.grow_fleet(size)
                    self.idempotent_against_floor(size, True, 1, all_tasks_floor=False)
                self.rollout(12, 1)
        finally:
            if not keep_lab:
                lab("down")
        self.inventory()
        self.results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["machine"]["load_average_at_end"] = os.getloadavg()
        return self.results
