"""Run every benchmark and write benchmarks/results/<date>.json, <date>.md and its plots.

Run from the repository root, with the development venv and the docker engine:

    .venv/bin/python benchmarks/run.py                      # everything: about 50 minutes on 2 busy cores
    .venv/bin/python benchmarks/run.py --quick              # 3 hosts, fewer samples, small inventory
    .venv/bin/python benchmarks/run.py --skip-inventory
    .venv/bin/python benchmarks/run.py --from-json benchmarks/results/2026-12-05.json   # rebuild the report

The run takes the lab down first and at the end, because the first site.yml
run must start from fresh hosts. See docs/benchmarks.md for what each case measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR))
sys.path.insert(0, str(BENCHMARKS_DIR.parent))

from platform_bench import render, report  # noqa: E402 (needs the paths above)
from platform_bench.ansible_runs import resummarize  # noqa: E402
from platform_bench.suite import BenchmarkError, Suite  # noqa: E402

RESULTS_DIR = BENCHMARKS_DIR / "results"
QUICK_INVENTORY_ARGUMENTS = ["--instances", "600", "--zones", "4", "--skip-gcp-compute"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 hosts, one repetition, 2 cold start samples per case, a 600-instance inventory",
    )
    parser.add_argument("--skip-inventory", action="store_true", help="leave out the inventory benchmark")
    parser.add_argument(
        "--inventory-args",
        help="arguments for benchmarks/inventory/run.py, as one string, for example "
        "'--instances 2000 --skip-gcp-compute' (default: its own defaults, or a small fleet with --quick)",
    )
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where to write (default: %(default)s)")
    parser.add_argument("--from-json", type=Path, help="rebuild the report and plots from this results file only")
    parser.add_argument(
        "--timing-dir",
        type=Path,
        help="with --from-json: recompute every run summary from the timing files a run left in this folder",
    )
    args = parser.parse_args(argv)
    # Without --from-json the command starts a full lab run, which a stray --timing-dir must not trigger.
    if args.timing_dir and not args.from_json:
        parser.error("--timing-dir works only with --from-json FILE; add the results file to rebuild from")
    return args


_RESULTS_HINT = "Pass a file that benchmarks/run.py wrote, such as benchmarks/results/<date>.json."


def load_results(path: Path) -> dict:
    """Read a results file that benchmarks/run.py wrote; raise ValueError with the reason when it cannot."""
    try:
        results = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read --from-json {path}: {exc.strerror}. {_RESULTS_HINT}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--from-json {path} is not valid JSON: {exc}. {_RESULTS_HINT}") from None
    missing = [key for key in ("date", "machine") if not isinstance(results, dict) or key not in results]
    if missing:
        raise ValueError(
            f"--from-json {path} is not a benchmarks/run.py results file: missing {', '.join(missing)}. {_RESULTS_HINT}"
        )
    return results


def resummarize_runs(results: dict, timing_dir: Path) -> None:
    """Replace every stored run summary with one recomputed from its timing file."""
    convergence = results["convergence"]
    convergence["first_runs"] = [resummarize(run, timing_dir) for run in convergence["first_runs"]]
    for case in convergence["cases"]:
        for key in ("site", "floor", "floor_all_tasks"):
            if key in case:
                case[key] = resummarize(case[key], timing_dir)
    for entry in results.get("rollout") or []:
        entry["run"] = resummarize(entry["run"], timing_dir)


def print_ratios(results: dict) -> None:
    print("\nRatios:")
    for row in report.convergence_rows(results):
        print(
            f"  idempotent site.yml / host-task floor, {row['hosts']} hosts, "
            f"pipelining {'on' if row['pipelining'] else 'off'}: {row['ratio']:.2f}"
            + (f", CPU time {row['cpu_ratio']:.2f}" if row["cpu_ratio"] is not None else "")
            + (f" (all-task floor: {row['ratio_all_tasks']:.2f})" if row["ratio_all_tasks"] is not None else "")
        )
    if results.get("cold_start"):
        for image_state, values in report.cold_start_ratios(results["cold_start"]).items():
            print(f"  cold start, {image_state} image, unit / docker run: {values['ratio']:.2f}")
    for entry in results.get("rollout") or []:
        print(
            f"  rollout, {entry['pool_hosts']} hosts, {entry['image']} image / (N x cold start): "
            f"{report.rollout_ratio(entry, results['cold_start']):.2f}"
        )
    for line in report.inventory_ratio_lines(results.get("inventory") or {"measurements": []}):
        print(f"  inventory, {line}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        try:
            results = load_results(args.from_json)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.timing_dir:
            resummarize_runs(results, args.timing_dir)
    else:
        if args.skip_inventory:
            inventory_args = None
        elif args.inventory_args is not None:
            inventory_args = args.inventory_args.split()
        else:
            inventory_args = QUICK_INVENTORY_ARGUMENTS if args.quick else []
        work_dir = Path(tempfile.mkdtemp(prefix="mlinfra-bench-"))
        print(f"bench: logs and timing files in {work_dir}", flush=True)
        try:
            results = Suite(work_dir, args.quick, inventory_args).run(args.keep_lab)
        except BenchmarkError as exc:
            print(f"error: {exc}; partial results in {work_dir / 'partial-results.json'}", file=sys.stderr)
            return 1
    try:
        report_path = render.write_report(results, args.results_dir)
    except OSError as exc:
        print(
            f"error: cannot write the report to --results-dir {args.results_dir}: {exc.strerror}. "
            "Choose a directory that exists or can be created.",
            file=sys.stderr,
        )
        return 2
    print(f"bench: report written to {report_path}")
    print_ratios(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
