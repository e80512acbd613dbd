"""Ratios, the Markdown report and its plots, computed from a results dict alone.

Nothing here starts the lab, so the report can be rebuilt from a saved
results file (`benchmarks/run.py --from-json FILE`) and tested offline.
"""

from __future__ import annotations

import statistics

# Acceptance limits the report checks.
IDEMPOTENT_LIMIT = 1.5
COLD_START_FACTOR = 1.2


def case_ratio(case: dict, floor: str = "floor", measure: str = "wall_s") -> float | None:
    """Return the idempotent site.yml run's wall time (or CPU time) over the same measure of one of its floors.

    Returns None when the measure was not recorded (CPU time needs cgroup v1).
    """
    site, base = case["site"].get(measure), case[floor].get(measure)
    if site is None or base is None:
        return None
    return site / base


def _median_or_none(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _cases(results: dict, hosts: int, pipelining: bool) -> list[dict]:
    return [
        case for case in results["convergence"]["cases"] if case["hosts"] == hosts and case["pipelining"] == pipelining
    ]


def convergence_rows(results: dict) -> list[dict]:
    """Return one row per (hosts, pipelining): medians over repetitions and the ratios to the floors."""
    keys = sorted({(case["hosts"], not case["pipelining"]) for case in results["convergence"]["cases"]})
    rows = []
    for hosts, pipelining_off in keys:
        cases = _cases(results, hosts, not pipelining_off)
        row = {
            "hosts": hosts,
            "pipelining": not pipelining_off,
            "repetitions": len(cases),
            "tasks_per_host": cases[0]["site"]["tasks_per_host"],
            "module_tasks_per_host": cases[0]["site"]["module_tasks_per_host"],
            "skipped_per_host": cases[0]["site"]["skipped_per_host"],
            "site_wall_s": statistics.median(case["site"]["wall_s"] for case in cases),
            "floor_wall_s": statistics.median(case["floor"]["wall_s"] for case in cases),
            "ratio": statistics.median(case_ratio(case) for case in cases),
            "site_cpu_s": _median_or_none([case["site"].get("cpu_s") for case in cases]),
            "floor_cpu_s": _median_or_none([case["floor"].get("cpu_s") for case in cases]),
            "site_controller_cpu_s": _median_or_none([case["site"].get("controller_cpu_s") for case in cases]),
            "floor_controller_cpu_s": _median_or_none([case["floor"].get("controller_cpu_s") for case in cases]),
            "cpu_ratio": _median_or_none([case_ratio(case, measure="cpu_s") for case in cases]),
            "floor_all_tasks_wall_s": None,
            "ratio_all_tasks": None,
        }
        with_all = [case for case in cases if "floor_all_tasks" in case]
        if with_all:
            row["floor_all_tasks_wall_s"] = statistics.median(case["floor_all_tasks"]["wall_s"] for case in with_all)
            row["ratio_all_tasks"] = statistics.median(case_ratio(case, "floor_all_tasks") for case in with_all)
        row["site_wall_per_host_s"] = row["site_wall_s"] / hosts
        rows.append(row)
    return rows


def pipelining_gain(results: dict) -> dict | None:
    """Return how much longer the idempotent run and its floor take with pipelining off, or None."""
    rows = {(row["hosts"], row["pipelining"]): row for row in convergence_rows(results)}
    for hosts in sorted({hosts for hosts, _ in rows}):
        on, off = rows.get((hosts, True)), rows.get((hosts, False))
        if on and off:
            return {
                "hosts": hosts,
                "site_off_over_on": off["site_wall_s"] / on["site_wall_s"],
                "floor_off_over_on": off["floor_wall_s"] / on["floor_wall_s"],
            }
    return None


def cold_start_ratios(cold_start: dict) -> dict:
    """Return, for the cached and the pulled image, the unit's median over the docker run median.

    The acceptance limit for a cached image is 1.2 x the floor plus one health check interval,
    because the role checks health only once per interval.
    """
    interval = cold_start["health_check_interval_s"]
    ratios = {}
    for image_state in ("cached", "pulled"):
        unit = statistics.median(cold_start["samples"][f"unit_{image_state}"])
        floor = statistics.median(cold_start["samples"][f"docker_{image_state}"])
        limit = COLD_START_FACTOR * floor + interval
        ratios[image_state] = {
            "unit_s": unit,
            "floor_s": floor,
            "ratio": unit / floor,
            "limit_s": limit,
            "within_limit": unit <= limit,
        }
    return ratios


def rollout_ratio(entry: dict, cold_start: dict) -> float:
    """Return the rollout's wall time over N times the single-host cold start with the same image state."""
    single = statistics.median(cold_start["samples"][f"unit_{entry['image']}"])
    return entry["run"]["wall_s"] / (entry["pool_hosts"] * single)


def inventory_rows(inventory: dict) -> list[dict]:
    """Return each inventory case with its wall, CPU and memory ratios to bare_fleet in the same regime."""
    measurements = inventory["measurements"]
    floors = {item["regime"]: item for item in measurements if item["case"] == "bare_fleet"}
    rows = []
    for item in measurements:
        floor = floors.get(item["regime"])
        row = dict(item)
        if floor:
            row["wall_ratio"] = item["wall_s"] / floor["wall_s"]
            row["cpu_ratio"] = item["cpu_s"] / floor["cpu_s"]
            row["memory_ratio"] = item["peak_rss_mb"] / floor["peak_rss_mb"]
        rows.append(row)
    return rows


def inventory_ratio_lines(inventory: dict) -> list[str]:
    lines = []
    for row in inventory_rows(inventory):
        if row["case"] != "bare_fleet" and "wall_ratio" in row:
            lines.append(
                f"{row['case']} ({row['regime']}): wall {row['wall_ratio']:.2f}, CPU {row['cpu_ratio']:.2f}, "
                f"memory {row['memory_ratio']:.2f} of bare_fleet"
            )
    return lines
