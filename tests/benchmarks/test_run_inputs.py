"""benchmarks/run.py rejects bad input with one line and exit 2, before it starts anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "2026-12-05.json"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read --from-json"),
        ('{"date": ', "is not valid JSON"),
        ("[]", "is not a benchmarks/run.py results file: missing date, machine"),
    ],
)
def test_bad_results_file(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)

    result = run_bench("--from-json", str(path), "--results-dir", str(tmp_path / "out"))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_timing_dir_needs_from_json(tmp_path):
    # Without the check this would start a full lab run.
    result = run_bench("--timing-dir", str(tmp_path))

    assert result.returncode == 2
    assert "--timing-dir works only with --from-json" in result.stderr


def test_results_dir_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")

    result = run_bench("--from-json", str(RESULTS), "--results-dir", str(blocker / "out"))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot write the report to --results-dir" in result.stderr
