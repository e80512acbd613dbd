"""Run ansible-playbook against the lab with per-task timing, and summarize where the time went."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
LAB_INVENTORY = "inventories/lab"
LAB_LABEL = "dev.mlinfra.lab=1"
CPUACCT_ROOT = Path("/sys/fs/cgroup/cpuacct/docker")

# Actions that run on the controller only and send nothing to the host.
CONTROLLER_ACTIONS = frozenset(
    {
        "ansible.builtin.set_fact",
        "ansible.builtin.assert",
        "ansible.builtin.debug",
        "ansible.builtin.fail",
        "ansible.builtin.validate_argument_spec",
        "ansible.builtin.include_tasks",
        "ansible.builtin.include_role",
        "ansible.builtin.include_vars",
        "ansible.builtin.meta",
        "ansible.builtin.group_by",
        "ansible.builtin.add_host",
        "set_fact",
        "assert",
        "debug",
        "fail",
        "include_tasks",
        "include_role",
        "meta",
    }
)

# How a run's time is grouped: the action decides the category.
CATEGORIES = (
    ("package installs and downloads (apt)", ("ansible.builtin.apt", "ansible.builtin.package", "apt")),
    ("image pulls and admission (launch_config)", ("mlinfra.platform.launch_config",)),
    ("fact gathering", ("ansible.builtin.gather_facts", "gather_facts", "ansible.builtin.setup")),
    ("GPU facts (nvidia-smi)", ("mlinfra.platform.nvidia_gpu_facts",)),
    ("health waits", ("ansible.builtin.uri", "ansible.builtin.wait_for")),
    ("service starts and restarts (systemd)", ("ansible.builtin.systemd_service", "ansible.builtin.systemd")),
    (
        "file writes (template, copy, file)",
        ("ansible.builtin.template", "ansible.builtin.copy", "ansible.builtin.file", "ansible.builtin.lineinfile"),
    ),
    (
        "host reads and commands (stat, slurp, command)",
        ("ansible.builtin.stat", "ansible.builtin.slurp", "ansible.builtin.command", "ansible.builtin.ping"),
    ),
    ("controller-only tasks (set_fact, assert, include_tasks)", tuple(CONTROLLER_ACTIONS)),
)
SKIPPED_CATEGORY = "skipped tasks (condition evaluated, nothing sent)"
# Wall time covered by no task result: inventory loading, play and task setup, strategy overhead.
BETWEEN_TASKS_CATEGORY = "between tasks (inventory load, play setup, controller)"

_RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


class PlaybookError(RuntimeError):
    """An ansible-playbook run failed; the message names the playbook and the log file."""


@dataclass
class TaskRecord:
    play: str
    role: str
    task: str
    action: str
    host: str
    status: str
    changed: bool
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class RunSummary:
    """One playbook run: wall time, tasks per host and where the time went."""

    label: str
    hosts: int
    pipelining: bool
    wall_s: float
    # Tasks that ran on a host (ok, changed or failed), skipped ones excluded; mean over hosts.
    tasks_per_host: float
    module_tasks_per_host: float
    skipped_per_host: float
    changed: int
    recap: dict[str, dict[str, int]]
    # Wall-clock seconds per role, from the first host starting a task to the last host ending it.
    role_wall_s: dict[str, float] = field(default_factory=dict)
    category_wall_s: dict[str, float] = field(default_factory=dict)
    # The slowest tasks: name, action, wall seconds, summed host seconds.
    top_tasks: list[dict] = field(default_factory=list)
    # CPU seconds (user + system) of ansible-playbook and every process it started on the controller.
    controller_cpu_s: float | None = None
    # CPU seconds of the lab's containers (hosts and registry) during the run, from their cpuacct cgroups.
    hosts_cpu_s: float | None = None

    @property
    def cpu_s(self) -> float | None:
        if self.controller_cpu_s is None or self.hosts_cpu_s is None:
            return None
        return self.controller_cpu_s + self.hosts_cpu_s

    @property
    def wall_per_host_s(self) -> float:
        return self.wall_s / self.hosts

    def to_dict(self) -> dict:
        data = asdict(self)
        data["wall_per_host_s"] = self.wall_per_host_s
        data["cpu_s"] = self.cpu_s
        return data


def load_task_records(path: Path) -> list[TaskRecord]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(TaskRecord(**json.loads(line)))
    return records


def category_of(action: str) -> str:
    for name, actions in CATEGORIES:
        if action in actions:
            return name
    return "other tasks"


def _merged_wall(intervals: list[tuple[float, float]]) -> float:
    """Return the length of the union of the intervals, so parallel hosts count once."""
    total = 0.0
    current_start, current_end = None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def summarize_records(
    label: str, records: list[TaskRecord], *, wall_s: float, pipelining: bool, recap: dict, top: int = 12
) -> RunSummary:
    """Summarize a run's task records: tasks per host, time per role and per category, slowest tasks."""
    hosts = sorted({record.host for record in records})
    if not hosts:
        raise PlaybookError(f"{label}: the timing file has no task results; was the task_timing callback enabled?")
    ran = [record for record in records if record.status != "skipped"]
    module_tasks = [record for record in ran if record.action not in CONTROLLER_ACTIONS]
    skipped = [record for record in records if record.status == "skipped"]

    by_role: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_category: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_task: dict[tuple[str, str, str], list[TaskRecord]] = defaultdict(list)
    for record in ran:
        by_role[record.role or f"(play) {record.play}"].append((record.start, record.end))
        by_category[category_of(record.action)].append((record.start, record.end))
        by_task[(record.play, record.task, record.action)].append(record)
    for record in skipped:
        by_category[SKIPPED_CATEGORY].append((record.start, record.end))
    category_wall_s = {name: _merged_wall(spans) for name, spans in by_category.items()}
    category_wall_s[BETWEEN_TASKS_CATEGORY] = max(
        0.0, wall_s - _merged_wall([(record.start, record.end) for record in records])
    )

    slowest = []
    for (play, task, action), task_records in by_task.items():
        slowest.append(
            {
                "play": play,
                "task": task,
                "action": action,
                "wall_s": _merged_wall([(r.start, r.end) for r in task_records]),
                "host_s": sum(r.seconds for r in task_records),
            }
        )
    slowest.sort(key=lambda item: item["wall_s"], reverse=True)

    return RunSummary(
        label=label,
        hosts=len(hosts),
        pipelining=pipelining,
        wall_s=wall_s,
        tasks_per_host=len(ran) / len(hosts),
        module_tasks_per_host=len(module_tasks) / len(hosts),
        skipped_per_host=len(skipped) / len(hosts),
        changed=sum(counts["changed"] for counts in recap.values()),
        recap=recap,
        role_wall_s={role: _merged_wall(spans) for role, spans in by_role.items()},
        category_wall_s=category_wall_s,
        top_tasks=slowest[:top],
    )


def timing_file_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".jsonl"


def resummarize(summary: dict, timing_dir: Path) -> dict:
    """Recompute a stored run summary from the timing file its run left in timing_dir."""
    records = load_task_records(timing_dir / timing_file_name(summary["label"]))
    recomputed = summarize_records(
        summary["label"], records, wall_s=summary["wall_s"], pipelining=summary["pipelining"], recap=summary["recap"]
    )
    recomputed.controller_cpu_s = summary.get("controller_cpu_s")
    recomputed.hosts_cpu_s = summary.get("hosts_cpu_s")
    return recomputed.to_dict()


def lab_cpu_seconds() -> dict[str, float] | None:
    """Return the CPU seconds each lab container has used so far, by container id.

    Reads cgroup v1 cpuacct.usage (nanoseconds), which counts the container's
    nested cgroups too, so workload containers inside a host are included.
    Returns None on a machine without cgroup v1 cpuacct.
    """
    result = subprocess.run(
        ["docker", "ps", "--quiet", "--no-trunc", "--filter", f"label={LAB_LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    usage = {}
    for container_id in result.stdout.split():
        path = CPUACCT_ROOT / container_id / "cpuacct.usage"
        if not path.is_file():
            # NOTE: only cgroup v1 with docker's default cgroup parent is read; elsewhere host CPU is not reported.
            return None
        usage[container_id] = int(path.read_text()) / 1e9
    return usage


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def playbook_env(timing_file: Path, pipelining: bool) -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
        ANSIBLE_CALLBACKS_ENABLED="task_timing",
        ANSIBLE_PIPELINING="True" if pipelining else "False",
        MLINFRA_TASK_TIMING_FILE=str(timing_file),
    )


def run_playbook(
    label: str, playbook: str, log_dir: Path, extra_args: list[str] | None = None, pipelining: bool = True
) -> RunSummary:
    """Run a playbook on the lab inventory with the timing callback and return its summary.

    The wall time covers the whole ansible-playbook process, inventory loading included.
    """
    timing_file = log_dir / timing_file_name(label)
    log_file = timing_file.with_suffix(".log")
    timing_file.unlink(missing_ok=True)
    command = [ANSIBLE_PLAYBOOK, playbook, "-i", LAB_INVENTORY, *(extra_args or [])]
    print(f"bench: {label}: {' '.join(command[1:])}", flush=True)

    hosts_before = lab_cpu_seconds()
    children_before = _children_cpu_seconds()
    started = time.monotonic()
    with log_file.open("w", encoding="utf-8") as log:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=playbook_env(timing_file, pipelining),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall_s = time.monotonic() - started
    controller_cpu_s = _children_cpu_seconds() - children_before
    hosts_after = lab_cpu_seconds()
    if result.returncode != 0:
        raise PlaybookError(f"{label}: ansible-playbook exited {result.returncode}; see {log_file}")

    recap = {}
    for line in log_file.read_text(encoding="utf-8").splitlines():
        match = _RECAP_LINE.match(line)
        if match:
            recap[match["host"]] = {key: int(value) for key, value in match.groupdict().items() if key != "host"}
    summary = summarize_records(
        label, load_task_records(timing_file), wall_s=wall_s, pipelining=pipelining, recap=recap
    )
    summary.controller_cpu_s = controller_cpu_s
    if hosts_before is not None and hosts_after is not None:
        summary.hosts_cpu_s = sum(after - hosts_before.get(key, 0.0) for key, after in hosts_after.items())
    print(
        f"bench: {label}: {wall_s:.1f} s, CPU {summary.cpu_s or 0:.1f} s, {summary.hosts} hosts, "
        f"{summary.tasks_per_host:.1f} tasks per host, "
        f"changed={summary.changed}",
        flush=True,
    )
    return summary


def write_floor_playbook(directory: Path, task_count: int) -> Path:
    """Write the floor playbook: task_count stat tasks of one file on every host, no fact gathering."""
    tasks = "".join(
        f"    - name: Read the state of /etc/hostname ({index})\n"
        "      ansible.builtin.stat:\n"
        "        path: /etc/hostname\n"
        for index in range(1, task_count + 1)
    )
    path = directory / f"floor-{task_count}-tasks.yml"
    header = f"---\n- name: Do nothing, {task_count} times\n  hosts: all\n  gather_facts: false\n  tasks:\n"
    path.write_text(header + tasks)
    return path
