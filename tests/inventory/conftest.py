"""Fixtures for the gcp_fleet inventory plugin: an emulator and a runner for ansible-inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.emulator import ComputeEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


@dataclass
class InventoryRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def data(self) -> dict[str, Any]:
        return plain(json.loads(self.stdout))

    @property
    def hostvars(self) -> dict[str, dict[str, Any]]:
        return self.data["_meta"]["hostvars"]

    def group(self, name: str) -> list[str]:
        return self.data.get(name, {}).get("hosts", [])

    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("[WARNING]")]


def plain(value: Any) -> Any:
    """Unwrap the {"__ansible_unsafe": value} marks that ansible-inventory puts on untrusted strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Return an environment that can reach no credentials and no metadata server.

    Application default credentials come from GOOGLE_APPLICATION_CREDENTIALS,
    gcloud's config directory or the GCE metadata server. All three point at
    nothing here, so a test can never reach 169.254.169.254.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GCP_", "GOOGLE_", "CLOUDSDK_"))}
    env.update(
        {
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "NO_GCE_CHECK": "true",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    env.update(extra)
    return env


def run_inventory(
    tmp_path: Path,
    config: dict[str, Any],
    *args: str,
    env: dict[str, str] | None = None,
    name: str = "test.gcp_fleet.yml",
) -> InventoryRun:
    """Write an inventory config and run ansible-inventory on it from the repository root."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": "mlinfra.platform.gcp_fleet", **config}, sort_keys=False))
    command = [str(ANSIBLE_INVENTORY), "-i", str(path), *(args or ("--list",))]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env if env is not None else isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return InventoryRun(result.returncode, result.stdout, result.stderr)


def emulator_config(emulator: ComputeEmulator, projects: list[str], **options: Any) -> dict[str, Any]:
    return {
        "environment": "lab",
        "projects": projects,
        "api_endpoint": emulator.url,
        "auth_kind": "anonymous",
        "retry_backoff": 0.05,
        **options,
    }


def cached_fleet_config(emulator: ComputeEmulator, tmp_path: Path, prefix: str) -> dict[str, Any]:
    """Generate 20 instances in project PREFIX-01 and return a config that caches them in tmp_path."""
    emulator.generate(instances=20, zones=2, projects=1, environment="lab", project_prefix=prefix)
    return emulator_config(
        emulator,
        [f"{prefix}-01"],
        cache=True,
        cache_plugin="ansible.builtin.jsonfile",
        cache_connection=str(tmp_path / "cache"),
        cache_timeout=600,
    )


def assert_failed_with(run: InventoryRun, *fragments: str) -> str:
    """Check an inventory failure: non-zero exit, no traceback, one line holding every fragment."""
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if all(fragment in line for fragment in fragments)]
    assert lines, f"no single line contains {fragments}:\n{output}"
    return lines[0]


@pytest.fixture
def emulator():
    with ComputeEmulator(port=0) as running:
        yield running
