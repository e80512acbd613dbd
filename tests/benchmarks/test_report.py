"""The benchmark report's arithmetic, Markdown and plots, from recorded results (no lab).

fixtures/results-quick.json holds summaries of real 3-host lab runs and hand-written inventory rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from platform_bench import render, report
from platform_bench.ansible_runs import (
    BETWEEN_TASKS_CATEGORY,
    CALLBACK_DIR,
    SKIPPED_CATEGORY,
    TaskRecord,
    load_task_records,
    playbook_env,
    resummarize,
    summarize_records,
    timing_file_name,
    write_floor_playbook,
)
from platform_bench.fleets import fleet_hosts, inference_hosts

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "fixtures" / "results-quick.json"


@pytest.fixture
def results() -> dict:
    return json.loads(RECORDED.read_text())


def record(
    host: str, task: str, action: str, start: float, end: float, *, status: str = "ok", role: str = "r"
) -> TaskRecord:
    return TaskRecord(
        play="p", role=role, task=task, action=action, host=host, status=status, changed=False, start=start, end=end
    )


# Timing records ----------------------------------------------------------------


def test_summary_counts_tasks_per_host():
    records = [
        record("a", "stat", "ansible.builtin.stat", 0.0, 1.0),
        record("b", "stat", "ansible.builtin.stat", 0.5, 2.0),
        record("a", "fact", "ansible.builtin.set_fact", 2.0, 2.1),
        record("b", "fact", "ansible.builtin.set_fact", 2.0, 2.1),
        record("a", "skip", "ansible.builtin.apt", 2.1, 2.2, status="skipped"),
    ]
    summary = summarize_records("t", records, wall_s=3.0, pipelining=True, recap={})

    assert summary.hosts == 2
    assert summary.tasks_per_host == 2.0
    assert summary.module_tasks_per_host == 1.0
    assert summary.skipped_per_host == 0.5
    assert summary.wall_per_host_s == 1.5


def test_summary_counts_parallel_hosts_once():
    records = [
        record("a", "install", "ansible.builtin.apt", 0.0, 4.0, role="runtime"),
        record("b", "install", "ansible.builtin.apt", 1.0, 5.0, role="runtime"),
        record("a", "gather", "gather_facts", 6.0, 7.0, role=""),
    ]
    summary = summarize_records("t", records, wall_s=8.0, pipelining=True, recap={})

    assert summary.role_wall_s["runtime"] == pytest.approx(5.0)
    assert summary.role_wall_s["(play) p"] == pytest.approx(1.0)
    assert summary.category_wall_s["package installs and downloads (apt)"] == pytest.approx(5.0)
    assert summary.category_wall_s["fact gathering"] == pytest.approx(1.0)
    assert summary.top_tasks[0]["task"] == "install"
    assert summary.top_tasks[0]["host_s"] == pytest.approx(8.0)


def test_summary_reports_time_between_tasks():
    records = [
        record("a", "first", "ansible.builtin.stat", 1.0, 2.0),
        record("a", "second", "ansible.builtin.apt", 4.0, 5.0, status="skipped"),
    ]
    summary = summarize_records("t", records, wall_s=6.0, pipelining=True, recap={})

    assert summary.category_wall_s[BETWEEN_TASKS_CATEGORY] == pytest.approx(4.0)
    assert summary.category_wall_s[SKIPPED_CATEGORY] == pytest.approx(1.0)
    assert summary.category_wall_s["host reads and commands (stat, slurp, command)"] == pytest.approx(1.0)


def test_resummarize_reads_timing_file(tmp_path):
    stored = {"label": "Site run, #1", "wall_s": 10.0, "pipelining": False, "recap": {"a": {"changed": 0}}}
    line = json.dumps(record("a", "t", "ansible.builtin.stat", 1.0, 3.0).__dict__)
    (tmp_path / timing_file_name(stored["label"])).write_text(line + "\n")

    summary = resummarize(stored, tmp_path)
    assert timing_file_name(stored["label"]) == "site-run-1.jsonl"
    assert summary["hosts"] == 1
    assert summary["pipelining"] is False
    assert summary["category_wall_s"][BETWEEN_TASKS_CATEGORY] == pytest.approx(8.0)


def test_summary_without_records_raises():
    with pytest.raises(RuntimeError, match="no task results"):
        summarize_records("empty", [], wall_s=1.0, pipelining=True, recap={})


def test_callback_records_real_run(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Time two tasks\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Read a file's state\n      ansible.builtin.stat:\n        path: /etc/hostname\n"
        "    - name: Skip this one\n      ansible.builtin.debug:\n        msg: never\n      when: false\n"
    )
    timing = tmp_path / "timing.jsonl"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(playbook),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=REPO_ROOT,
        env=playbook_env(timing, pipelining=True),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert CALLBACK_DIR.is_dir()

    records = load_task_records(timing)
    assert [(r.task, r.action, r.status) for r in records] == [
        ("Read a file's state", "ansible.builtin.stat", "ok"),
        ("Skip this one", "ansible.builtin.debug", "skipped"),
    ]
    assert records[0].host == "localhost"
    assert 0 < records[0].seconds < 60


# Floors and fleets ---------------------------------------------------------------


def test_floor_playbook_has_n_stat_tasks(tmp_path):
    path = write_floor_playbook(tmp_path, 7)
    plays = yaml.safe_load(path.read_text())

    assert len(plays) == 1
    assert plays[0]["gather_facts"] is False
    assert len(plays[0]["tasks"]) == 7
    assert all(task["ansible.builtin.stat"] == {"path": "/etc/hostname"} for task in plays[0]["tasks"])


def test_fleets_grow_from_lab_fleet():
    lab_fleet = yaml.safe_load((REPO_ROOT / "inventories" / "lab" / "fleet.yml").read_text())

    assert fleet_hosts(3) == lab_fleet["hosts"]
    assert fleet_hosts(12)[:6] == fleet_hosts(6)
    assert len({host["name"] for host in fleet_hosts(12)}) == 12
    assert len(inference_hosts(12)) == 8


def test_fleet_size_zero_raises():
    with pytest.raises(ValueError, match="invalid fleet size 0"):
        fleet_hosts(0)


# Ratios --------------------------------------------------------------------------


def test_convergence_ratio_to_both_floors(results):
    rows = report.convergence_rows(results)

    assert len(rows) == 1
    row = rows[0]
    assert row["hosts"] == 3
    assert row["ratio"] == pytest.approx(36.97 / 31.97)
    assert row["ratio_all_tasks"] == pytest.approx(36.97 / 82.76)
    assert row["site_wall_per_host_s"] == pytest.approx(36.97 / 3)


def test_convergence_cpu_ratio_when_recorded(results):
    assert report.convergence_rows(results)[0]["cpu_ratio"] is None

    case = results["convergence"]["cases"][0]
    case["site"].update(cpu_s=48.0, controller_cpu_s=24.0)
    case["floor"].update(cpu_s=24.0, controller_cpu_s=6.0)
    row = report.convergence_rows(results)[0]
    assert row["cpu_ratio"] == pytest.approx(2.0)
    assert row["site_controller_cpu_s"] == pytest.approx(24.0)

    markdown = render.render_markdown(results, {})
    assert "| Idempotent site.yml / host-task floor, 3 hosts, CPU time | 2.00 | **over** the 1.5x limit |" in markdown
    assert "| 48.0 s (24.0 s) | 24.0 s (6.00 s) | 2.00 |" in markdown


def test_convergence_uses_median_of_repetitions(results):
    case = results["convergence"]["cases"][0]
    slower = json.loads(json.dumps(case))
    slower["site"]["wall_s"] = 100.0
    slower["repetition"] = 2
    faster = json.loads(json.dumps(case))
    faster["site"]["wall_s"] = 10.0
    faster["repetition"] = 3
    results["convergence"]["cases"] += [slower, faster]

    row = report.convergence_rows(results)[0]
    assert row["repetitions"] == 3
    assert row["site_wall_s"] == pytest.approx(36.97)


def test_pipelining_gain_needs_both_modes(results):
    assert report.pipelining_gain(results) is None

    off = json.loads(json.dumps(results["convergence"]["cases"][0]))
    off["pipelining"] = False
    off["site"]["wall_s"] *= 2
    del off["floor_all_tasks"]
    results["convergence"]["cases"].append(off)
    gain = report.pipelining_gain(results)
    assert gain["site_off_over_on"] == pytest.approx(2.0)
    assert gain["floor_off_over_on"] == pytest.approx(1.0)


def test_cold_start_limit_adds_interval():
    cold_start = {
        "health_check_interval_s": 1.0,
        "samples": {
            "unit_cached": [1.3, 1.2, 1.4],
            "docker_cached": [0.3, 0.2, 0.25],
            "unit_pulled": [3.0],
            "docker_pulled": [1.0],
        },
    }
    ratios = report.cold_start_ratios(cold_start)

    assert ratios["cached"]["ratio"] == pytest.approx(1.3 / 0.25)
    assert ratios["cached"]["limit_s"] == pytest.approx(1.2 * 0.25 + 1.0)
    assert ratios["cached"]["within_limit"] is True
    assert ratios["pulled"]["limit_s"] == pytest.approx(2.2)
    assert ratios["pulled"]["within_limit"] is False


def test_rollout_ratio_uses_same_image_state(results):
    entry = {"pool_hosts": 4, "image": "pulled", "run": {"wall_s": 20.0}}
    results["cold_start"]["samples"]["unit_pulled"] = [1.0, 2.0, 3.0]

    assert report.rollout_ratio(entry, results["cold_start"]) == pytest.approx(20.0 / (4 * 2.0))


def test_inventory_ratios_per_regime(results):
    rows = {(row["case"], row["regime"]): row for row in report.inventory_rows(results["inventory"])}

    assert rows[("gcp_fleet", "0 ms")]["wall_ratio"] == pytest.approx(1.5)
    assert rows[("gcp_fleet", "100 ms")]["wall_ratio"] == pytest.approx(1.25)
    assert rows[("gcp_fleet", "0 ms")]["memory_ratio"] == pytest.approx(1.2)
    assert rows[("bare_fleet", "0 ms")]["wall_ratio"] == pytest.approx(1.0)
    lines = report.inventory_ratio_lines(results["inventory"])
    assert lines[0] == "gcp_fleet (0 ms): wall 1.50, CPU 1.50, memory 1.20 of bare_fleet"
    assert len(lines) == 2


# Report ------------------------------------------------------------------------


def test_report_written_with_plots(results, tmp_path):
    report_path = render.write_report(results, tmp_path)
    markdown = report_path.read_text()

    assert report_path.name == "2026-12-05.md"
    assert (tmp_path / "2026-12-05.json").is_file()
    for topic in ("convergence", "first-run", "cold-start", "rollout", "inventory"):
        plot = tmp_path / f"2026-12-05-{topic}.png"
        assert plot.read_bytes().startswith(b"\x89PNG"), topic
        assert f"]({plot.name})" in markdown, topic
    assert "Recorded CPU, 2 CPUs" in markdown
    assert "# Platform benchmarks, 2026-12-05" in markdown
    assert (
        f"| Idempotent site.yml / host-task floor, 3 hosts | {36.97 / 31.97:.2f} | within the 1.5x limit |" in markdown
    )
    assert "| Cold start, cached image: unit / docker run |" in markdown
    assert "| Inventory, gcp_fleet (0 ms) | wall 1.50, CPU 1.50, memory 1.20 of bare_fleet | |" in markdown


def test_report_marks_ratio_over_limit(results):
    results["convergence"]["cases"][0]["site"]["wall_s"] = 2 * results["convergence"]["cases"][0]["floor"]["wall_s"]

    markdown = render.render_markdown(results, {})
    assert "| Idempotent site.yml / host-task floor, 3 hosts | 2.00 | **over** the 1.5x limit |" in markdown


def test_report_notes_skipped_inventory(results):
    results["inventory"] = {"skipped": True}

    markdown = render.render_markdown(results, {})
    assert "Skipped in this run (`--skip-inventory`)." in markdown
    assert "| Inventory," not in markdown
