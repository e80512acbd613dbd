"""Print resident memory and CPU time at each stage of one ansible-inventory run.

Runs ``ansible-inventory`` in this process and wraps the gcp_fleet plugin's
stage methods (``_fetch``, ``_listings_from_cache``, ``_populate``) to record
resident memory (VmRSS), its peak so far (VmHWM) and CPU time as each starts
and ends. With ``--tracemalloc N`` it also prints the N source lines holding
the most memory at the end (tracing slows the run about five times and adds
its own memory, so the stage figures of such a run are not comparable).

Run from the repository root, with a running emulator and a config file, for example the one
that run.py writes:

    ANSIBLE_INVENTORY_ENABLED=mlinfra.platform.gcp_fleet \\
        .venv/bin/python benchmarks/inventory/memory_stages.py -i bench.gcp_fleet.yml --graph
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

STAGE_METHODS = ("_fetch", "_listings_from_cache", "_populate")


def memory_mb(field: str) -> float:
    """Return a memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not found in /proc/self/status")


class StageLog:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, float]] = []

    def mark(self, stage: str) -> None:
        self.rows.append((stage, memory_mb("VmRSS"), memory_mb("VmHWM"), time.process_time()))

    def wrap(self, owner: type, name: str) -> None:
        """Replace a method of ``owner`` with one that marks its start and end."""
        raw = owner.__dict__.get(name)
        method = getattr(owner, name)

        def marked(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name} start")
            try:
                return method(*args, **kwargs)
            finally:
                self.mark(f"{name} end")

        setattr(owner, name, staticmethod(marked) if isinstance(raw, staticmethod) else marked)

    def report(self) -> str:
        lines = ["| stage | resident MB | peak MB | CPU s |", "|---|---:|---:|---:|"]
        lines += [f"| {stage} | {rss:.0f} | {peak:.0f} | {cpu:.2f} |" for stage, rss, peak, cpu in self.rows]
        return "\n".join(lines)


def instrument(log: StageLog) -> None:
    """Wrap the stage methods of every inventory plugin class as soon as ansible-core loads it."""
    from ansible.inventory.manager import InventoryManager  # noqa: PLC0415 (after tracemalloc starts)

    fetch_plugins: Callable[..., list[Any]] = InventoryManager._fetch_inventory_plugins

    def fetch_and_wrap(manager: Any) -> list[Any]:
        plugins = fetch_plugins(manager)
        log.mark("plugins loaded")
        for plugin in plugins:
            for name in STAGE_METHODS:
                if hasattr(type(plugin), name):
                    log.wrap(type(plugin), name)
        InventoryManager._fetch_inventory_plugins = fetch_plugins
        return plugins

    InventoryManager._fetch_inventory_plugins = fetch_and_wrap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="print the N largest source lines")
    options, inventory_args = parser.parse_known_args()
    if options.tracemalloc:
        tracemalloc.start()

    log = StageLog()
    log.mark("interpreter started")
    instrument(log)
    from ansible.cli.inventory import InventoryCLI  # noqa: PLC0415

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        try:
            InventoryCLI(["ansible-inventory", *inventory_args]).run()
        except SystemExit as error:
            if error.code:
                raise
    log.mark("inventory printed")

    print(log.report())
    print(f"\n{len(output.getvalue().splitlines())} lines of ansible-inventory output")
    if options.tracemalloc:
        print(f"\nLargest allocations still held at the end, by source line (top {options.tracemalloc}):")
        for statistic in tracemalloc.take_snapshot().statistics("lineno")[: options.tracemalloc]:
            print(f"  {statistic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
