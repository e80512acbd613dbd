"""Shared helpers of the ecosystem tests: paths, the role_docs script, isolated Ansible runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COLLECTION = "mlinfra.platform"
ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks").is_dir())


def load_role_docs() -> ModuleType:
    """Import scripts/role_docs.py, which is a script and not a package module."""
    path = REPO_ROOT / "scripts" / "role_docs.py"
    spec = importlib.util.spec_from_file_location("role_docs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("role_docs", module)
    spec.loader.exec_module(module)
    return module


def read_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tool(name: str) -> str:
    """Return the path of a command-line tool installed in the virtual environment that runs the tests."""
    return str(VENV_BIN / name)


def clean_env(**extra: str) -> dict[str, str]:
    """Return an environment for Ansible subprocesses: no color, the venv's tools first, no stray settings.

    ANSIBLE_* and PYTHONPATH from the caller are dropped, so a run uses only the
    settings a test passes. The venv's bin folder comes first on PATH because
    ansible-builder and antsibull-changelog call ansible tools by name.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_") and key != "PYTHONPATH"}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "NO_COLOR": "1",
        }
    )
    env.update(extra)
    return env


def run(command: list[str], cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, timeout: int = 300):
    """Run a command and return the completed process; the caller asserts on it."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
