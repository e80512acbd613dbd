"""Record when each task starts and ends on each host, as JSON lines."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_timing
type: aggregate
short_description: Write per-host task timings to a JSON lines file
description:
  - Writes one JSON object per task result with the play, role, task, action, host, status,
    start and end times (seconds since the epoch) to the file that C(MLINFRA_TASK_TIMING_FILE) names.
  - Writes nothing when that variable is unset. The platform benchmarks enable it with
    C(ANSIBLE_CALLBACKS_ENABLED=task_timing) and C(ANSIBLE_CALLBACK_PLUGINS) pointing at this folder.
requirements:
  - MLINFRA_TASK_TIMING_FILE set in the environment
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        path = os.environ.get("MLINFRA_TASK_TIMING_FILE")
        # Line buffered, so a run that fails halfway still leaves what it timed.
        self._output = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115
        self._play = ""
        self._task_started: dict[str, float] = {}
        self._host_started: dict[tuple[str, str], float] = {}

    def v2_playbook_on_play_start(self, play) -> None:
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._task_started[task._uuid] = time.time()

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._task_started[task._uuid] = time.time()

    def v2_runner_on_start(self, host, task) -> None:
        self._host_started[(task._uuid, host.get_name())] = time.time()

    def _write(self, result, status: str) -> None:
        if self._output is None:
            return
        task = result._task
        host = result._host.get_name()
        end = time.time()
        start = self._host_started.pop((task._uuid, host), None) or self._task_started.get(task._uuid, end)
        role = task._role.get_name() if task._role else ""
        record = {
            "play": self._play,
            "role": role,
            "task": task.get_name(),
            "action": task.action,
            "host": host,
            "status": status,
            "changed": bool(result._result.get("changed", False)),
            "start": start,
            "end": end,
        }
        self._output.write(json.dumps(record) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._write(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._write(result, "unreachable")
