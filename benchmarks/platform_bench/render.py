"""Render a results dict as a Markdown report with PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from platform_bench import report


def _verdict(passed: bool) -> str:
    return "within" if passed else "**over**"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


# Plots -------------------------------------------------------------------------


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _paired_bars(axes, left: list[float], right: list[float], labels: list[str], names: tuple[str, str]) -> None:
    """Draw two bars per label, side by side."""
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], left, 0.4, label=names[0])
    axes.bar([p + 0.2 for p in positions], right, 0.4, label=names[1])
    axes.set_xticks(list(positions), labels)


def plot_convergence(results: dict, path: Path) -> None:
    rows = report.convergence_rows(results)
    labels = [f"{row['hosts']} hosts\npipelining {'on' if row['pipelining'] else 'off'}" for row in rows]
    positions = range(len(rows))
    width = 0.27
    figure, (time_axes, ratio_axes) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(3, 2))
    time_axes.bar(
        [p - width for p in positions], [row["site_wall_s"] for row in rows], width, label="site.yml, idempotent"
    )
    time_axes.bar(positions, [row["floor_wall_s"] for row in rows], width, label="floor: one stat per host task")
    time_axes.bar(
        [p + width for p in positions],
        [row["floor_all_tasks_wall_s"] or 0 for row in rows],
        width,
        label="floor: one stat per task (3 hosts only)",
    )
    time_axes.set_xticks(list(positions), labels)
    time_axes.set_ylabel("wall time (s)")
    time_axes.set_title("Idempotent site.yml against its floors")
    time_axes.legend(fontsize="small")

    ratios = [row["ratio"] for row in rows]
    cpu_ratios = [row["cpu_ratio"] or 0 for row in rows]
    _paired_bars(ratio_axes, ratios, cpu_ratios, labels, ("wall time", "CPU time"))
    ratio_axes.axhline(report.IDEMPOTENT_LIMIT, color="black", linestyle="--", label="limit")
    ratio_axes.set_ylabel("site.yml / host-task floor")
    ratio_axes.set_title("Ratio to the host-task floor")
    ratio_axes.legend(fontsize="small")
    _save(figure, path)


def plot_first_runs(results: dict, path: Path) -> None:
    first_runs = results["convergence"]["first_runs"]
    categories = sorted({name for run in first_runs for name in run["category_wall_s"]})
    figure, axes = plt.subplots(figsize=(8, 4.5))
    height = 0.8 / max(1, len(first_runs))
    for index, run in enumerate(first_runs):
        axes.barh(
            [position + index * height for position in range(len(categories))],
            [run["category_wall_s"].get(name, 0) for name in categories],
            height,
            label=f"{run['hosts']} hosts ({run['wall_s']:.0f} s in all)",
        )
    axes.set_yticks([position + 0.4 - height / 2 for position in range(len(categories))], categories)
    axes.set_xlabel("wall time (s), hosts in parallel counted once")
    axes.set_title("First site.yml run: where the time goes")
    axes.legend(fontsize="small")
    _save(figure, path)


def plot_cold_start(cold_start: dict, path: Path) -> None:
    cases = list(cold_start["samples"])
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.boxplot([cold_start["samples"][case] for case in cases], tick_labels=cases)
    for index, case in enumerate(cases, start=1):
        samples = cold_start["samples"][case]
        axes.scatter([index] * len(samples), samples, s=12, color="black", zorder=3)
    limit = report.cold_start_ratios(cold_start)["cached"]["limit_s"]
    axes.axhline(limit, color="black", linestyle="--", label="limit for unit_cached: 1.2 x docker_cached + interval")
    axes.legend(fontsize="small")
    axes.set_ylabel("start command to first HTTP 200 (s)")
    axes.set_title("Cold start: systemd unit against docker run by hand")
    _save(figure, path)


def plot_rollout(results: dict, path: Path) -> None:
    entries = results["rollout"]
    cold_start = results["cold_start"]
    labels = [f"{entry['pool_hosts']} hosts, {entry['image']}\nbatches of {entry['batch_size']}" for entry in entries]
    measured = [entry["run"]["wall_s"] for entry in entries]
    floors = [
        entry["pool_hosts"] * statistics.median(cold_start["samples"][f"unit_{entry['image']}"]) for entry in entries
    ]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _paired_bars(axes, measured, floors, labels, ("rollout.yml", "N x single-host cold start"))
    axes.set_ylabel("wall time (s)")
    axes.set_title("Rollout of a new digest across the inference pool")
    axes.legend(fontsize="small")
    _save(figure, path)


def plot_inventory(inventory: dict, path: Path) -> None:
    rows = report.inventory_rows(inventory)
    labels = [f"{row['case']}\n{row['regime']}" for row in rows]
    figure, (wall_axes, memory_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    wall_axes.barh(labels, [row["wall_s"] for row in rows])
    wall_axes.set_xlabel("wall time (s)")
    memory_axes.barh(labels, [row["peak_rss_mb"] for row in rows])
    memory_axes.set_xlabel("peak resident memory (MB)")
    memory_axes.set_yticks([])
    figure.suptitle(f"Inventory load, {rows[0]['hosts']} hosts" if rows else "Inventory load")
    _save(figure, path)


def write_plots(results: dict, directory: Path, prefix: str) -> dict[str, str]:
    """Write every plot the results allow and return their file names by topic."""
    plots = {}
    targets = {
        "convergence": (bool(results["convergence"]["cases"]), lambda p: plot_convergence(results, p)),
        "first-run": (bool(results["convergence"]["first_runs"]), lambda p: plot_first_runs(results, p)),
        "cold-start": (bool(results.get("cold_start")), lambda p: plot_cold_start(results["cold_start"], p)),
        "rollout": (
            bool(results.get("rollout")) and bool(results.get("cold_start")),
            lambda p: plot_rollout(results, p),
        ),
        "inventory": (
            bool((results.get("inventory") or {}).get("measurements")),
            lambda p: plot_inventory(results["inventory"], p),
        ),
    }
    for topic, (available, plot) in targets.items():
        if available:
            name = f"{prefix}-{topic}.png"
            plot(directory / name)
            plots[topic] = name
    return plots


# Markdown ----------------------------------------------------------------------


def _summary_lines(results: dict) -> list[str]:
    """Return the ratio table at the top of the report."""
    lines = ["| Measure | Ratio | Check |", "|---|---|---|"]
    rows = report.convergence_rows(results)
    for row in rows:
        if row["hosts"] == 3 and row["pipelining"]:
            lines.append(
                f"| Idempotent site.yml / host-task floor, 3 hosts | {row['ratio']:.2f} | "
                f"{_verdict(row['ratio'] <= report.IDEMPOTENT_LIMIT)} the {report.IDEMPOTENT_LIMIT}x limit |"
            )
            if row["cpu_ratio"] is not None:
                lines.append(
                    f"| Idempotent site.yml / host-task floor, 3 hosts, CPU time | {row['cpu_ratio']:.2f} | "
                    f"{_verdict(row['cpu_ratio'] <= report.IDEMPOTENT_LIMIT)} the {report.IDEMPOTENT_LIMIT}x limit |"
                )
            if row["ratio_all_tasks"] is not None:
                lines.append(
                    f"| Idempotent site.yml / all-task floor, 3 hosts | {row['ratio_all_tasks']:.2f} | "
                    f"{_verdict(row['ratio_all_tasks'] <= report.IDEMPOTENT_LIMIT)} "
                    f"the {report.IDEMPOTENT_LIMIT}x limit |"
                )
    for row in rows:
        if not (row["hosts"] == 3 and row["pipelining"]):
            mode = "on" if row["pipelining"] else "off"
            lines.append(
                f"| Idempotent site.yml / host-task floor, {row['hosts']} hosts, pipelining {mode} | "
                f"{row['ratio']:.2f}"
                + (f" (CPU time {row['cpu_ratio']:.2f})" if row["cpu_ratio"] is not None else "")
                + " | |"
            )
    gain = report.pipelining_gain(results)
    if gain:
        lines.append(
            f"| Idempotent site.yml, pipelining off / on, {gain['hosts']} hosts | {gain['site_off_over_on']:.2f} | |"
        )
    if results.get("cold_start"):
        ratios = report.cold_start_ratios(results["cold_start"])
        for image_state, values in ratios.items():
            check = ""
            if image_state == "cached":
                check = (
                    f"{_verdict(values['within_limit'])} {report.COLD_START_FACTOR} x floor + interval "
                    f"({_seconds(values['unit_s'])} against {_seconds(values['limit_s'])})"
                )
            lines.append(f"| Cold start, {image_state} image: unit / docker run | {values['ratio']:.2f} | {check} |")
    for entry in results.get("rollout") or []:
        lines.append(
            f"| Rollout, {entry['pool_hosts']} hosts, {entry['image']} image: rollout / (N x cold start) | "
            f"{report.rollout_ratio(entry, results['cold_start']):.2f} | |"
        )
    inventory = results.get("inventory") or {}
    if inventory.get("measurements"):
        for line in report.inventory_ratio_lines(inventory):
            case, ratios = line.split(": ", 1)
            lines.append(f"| Inventory, {case} | {ratios} | |")
    return lines


def _first_run_lines(results: dict) -> list[str]:
    lines = []
    for index, run in enumerate(results["convergence"]["first_runs"]):
        grown = ""
        if index > 0:
            grown = " The fleet grew from the previous size, so only the added hosts started fresh."
        lines += [
            f"**{run['hosts']} hosts:** {_seconds(run['wall_s'])} wall ({_seconds(run['wall_per_host_s'])} per host), "
            f"{run['tasks_per_host']:.0f} tasks per host ({run['module_tasks_per_host']:.0f} of them reach the host, "
            f"{run['skipped_per_host']:.0f} more skipped), {run['changed']} changes.{grown}",
            "",
            "| Where the time goes | Wall time | Share |",
            "|---|---|---|",
        ]
        for name, seconds in sorted(run["category_wall_s"].items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {_seconds(seconds)} | {seconds / run['wall_s']:.0%} |")
        lines += ["", "| Slowest tasks | Action | Wall time |", "|---|---|---|"]
        for task in run["top_tasks"][:6]:
            lines.append(f"| {task['task']} | `{task['action']}` | {_seconds(task['wall_s'])} |")
        lines.append("")
    return lines


def _cpu_cell(total: float | None, controller: float | None) -> str:
    if total is None:
        return "n/a"
    return f"{_seconds(total)} ({_seconds(controller)})"


def _convergence_lines(results: dict) -> list[str]:
    lines = [
        "| Hosts | Pipelining | Runs | Tasks per host: ran (reached host, skipped) | site.yml | per host "
        "| Host-task floor | Ratio "
        "| All-task floor | Ratio | CPU: site.yml (controller) | CPU: floor (controller) | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.convergence_rows(results):
        all_tasks = "n/a | n/a"
        if row["ratio_all_tasks"] is not None:
            all_tasks = f"{_seconds(row['floor_all_tasks_wall_s'])} | {row['ratio_all_tasks']:.2f}"
        lines.append(
            f"| {row['hosts']} | {'on' if row['pipelining'] else 'off'} | {row['repetitions']} | "
            f"{row['tasks_per_host']:.0f} ({row['module_tasks_per_host']:.0f}, {row['skipped_per_host']:.0f}) | "
            f"{_seconds(row['site_wall_s'])} | "
            f"{_seconds(row['site_wall_per_host_s'])} | {_seconds(row['floor_wall_s'])} | {row['ratio']:.2f} | "
            f"{all_tasks} | {_cpu_cell(row['site_cpu_s'], row['site_controller_cpu_s'])} | "
            f"{_cpu_cell(row['floor_cpu_s'], row['floor_controller_cpu_s'])} | "
            f"{'n/a' if row['cpu_ratio'] is None else format(row['cpu_ratio'], '.2f')} |"
        )
    cases = [case for case in results["convergence"]["cases"] if case["hosts"] == 3 and case["pipelining"]]
    if cases:
        # The run with the median wall time, so one slow outlier does not set the picture.
        median_case = sorted(cases, key=lambda case: case["site"]["wall_s"])[(len(cases) - 1) // 2]
        site = median_case["site"]
        lines += [
            "",
            f"Slowest tasks of the median idempotent run on 3 hosts, pipelining on ({_seconds(site['wall_s'])}):",
            "",
            "| Task | Action | Wall time | Summed over hosts |",
            "|---|---|---|---|",
        ]
        for task in site["top_tasks"][:10]:
            lines.append(
                f"| {task['task']} | `{task['action']}` | {_seconds(task['wall_s'])} | {_seconds(task['host_s'])} |"
            )
        lines += ["", "| Role or play | Wall time |", "|---|---|"]
        for role, seconds in sorted(site["role_wall_s"].items(), key=lambda item: -item[1]):
            lines.append(f"| {role} | {_seconds(seconds)} |")
    return lines


def _cold_start_lines(cold_start: dict) -> list[str]:
    lines = [
        f"Host `{cold_start['host']}`, image `{cold_start['image']}`, health check interval "
        f"{cold_start['health_check_interval_s']:.0f} s. The probe polls every 10 ms inside the host.",
        "",
        "| Case | Samples | Median | Min | Max | Start command returned (median) |",
        "|---|---|---|---|---|---|",
    ]
    for case, samples in cold_start["samples"].items():
        returned = statistics.median(cold_start["start_command_s"][case])
        lines.append(
            f"| {case} | {len(samples)} | {_seconds(statistics.median(samples))} | {_seconds(min(samples))} | "
            f"{_seconds(max(samples))} | {_seconds(returned)} |"
        )
    return lines


def _rollout_lines(results: dict) -> list[str]:
    lines = [
        "| Pool hosts | Batch size | Image | rollout.yml | N x cold start | Ratio |",
        "|---|---|---|---|---|---|",
    ]
    for entry in results["rollout"]:
        single = statistics.median(results["cold_start"]["samples"][f"unit_{entry['image']}"])
        lines.append(
            f"| {entry['pool_hosts']} | {entry['batch_size']} | {entry['image']} | "
            f"{_seconds(entry['run']['wall_s'])} | "
            f"{_seconds(entry['pool_hosts'] * single)} | {report.rollout_ratio(entry, results['cold_start']):.2f} |"
        )
    return lines


def _inventory_lines(inventory: dict) -> list[str]:
    lines = [
        f"Arguments: `{' '.join(inventory['arguments']) or '(defaults)'}`.",
        "",
        "| Case | Regime | Hosts | Wall | CPU | Peak RSS | Wall / bare | CPU / bare | Memory / bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.inventory_rows(inventory):
        ratios = "| | |"
        if "wall_ratio" in row:
            ratios = f"{row['wall_ratio']:.2f} | {row['cpu_ratio']:.2f} | {row['memory_ratio']:.2f} |"
        lines.append(
            f"| {row['case']} | {row['regime']} | {row['hosts']} | {_seconds(row['wall_s'])} | "
            f"{_seconds(row['cpu_s'])} | {row['peak_rss_mb']:.0f} MB | {ratios}"
        )
    return lines


def render_markdown(results: dict, plots: dict[str, str]) -> str:
    machine = results["machine"]
    lines = [
        f"# Platform benchmarks, {results['date']}",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB, {machine['os']}, "
        f"kernel {machine['kernel']}, Python {machine['python']}, {machine['ansible']}, "
        f"docker engine {machine['docker_engine']}. Load average at the start "
        f"{', '.join(f'{value:.1f}' for value in machine['load_average_at_start'])}"
        + (
            f", at the end {', '.join(f'{value:.1f}' for value in machine['load_average_at_end'])}."
            if machine.get("load_average_at_end")
            else "."
        ),
        "",
        f"Run from {results['started_at']} to {results.get('finished_at', '(unfinished)')}"
        f"{' in quick mode' if results['quick'] else ''}. The CPU is shared with other work, so compare the ratios,"
        " which come from runs done back to back, rather than the seconds.",
        "",
        "## Ratios",
        "",
        *_summary_lines(results),
        "",
    ]
    if results["convergence"]["first_runs"]:
        lines += ["## First site.yml run", "", *_first_run_lines(results)]
        if "first-run" in plots:
            lines += [f"![First run]({plots['first-run']})", ""]
    if results["convergence"]["cases"]:
        lines += ["## Idempotent site.yml against its floors", "", *_convergence_lines(results), ""]
        if "convergence" in plots:
            lines += [f"![Convergence]({plots['convergence']})", ""]
    if results.get("cold_start"):
        lines += ["## Cold start", "", *_cold_start_lines(results["cold_start"]), ""]
        if "cold-start" in plots:
            lines += [f"![Cold start]({plots['cold-start']})", ""]
    if results.get("rollout"):
        lines += ["## Rollout", "", *_rollout_lines(results), ""]
        if "rollout" in plots:
            lines += [f"![Rollout]({plots['rollout']})", ""]
    inventory = results.get("inventory") or {}
    if inventory.get("measurements"):
        lines += ["## Inventory load", "", *_inventory_lines(inventory), ""]
        if "inventory" in plots:
            lines += [f"![Inventory]({plots['inventory']})", ""]
    elif inventory.get("skipped"):
        lines += ["## Inventory load", "", "Skipped in this run (`--skip-inventory`).", ""]
    lines += ["What each case measures: [docs/benchmarks.md](../../docs/benchmarks.md).", ""]
    return "\n".join(lines)


def write_report(results: dict, results_dir: Path) -> Path:
    """Write <date>.json, <date>.md and the plots into results_dir; return the report's path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    date = results["date"]
    (results_dir / f"{date}.json").write_text(json.dumps(results, indent=2) + "\n")
    plots = write_plots(results, results_dir, date)
    report_path = results_dir / f"{date}.md"
    report_path.write_text(render_markdown(results, plots))
    return report_path
