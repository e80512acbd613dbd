"""The pre-commit configuration is valid and each hook rejects a bad file and accepts a good one.

Hooks run in a throwaway git repository that links to the checkout's virtual
environments, so pre-commit neither touches the checkout's working tree nor
fetches anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, clean_env, read_yaml, run, tool

CONFIG = REPO_ROOT / ".pre-commit-config.yaml"
REQUIRED_HOOKS = ["ansible-lint", "ruff", "yamllint", "terraform-fmt", "checkov"]

BAD_PLAYBOOK = "---\n- hosts: all\n  tasks:\n    - shell: echo hi\n"
GOOD_PLAYBOOK = """---
- name: Say hello
  hosts: all
  gather_facts: false
  tasks:
    - name: Print a greeting
      ansible.builtin.debug:
        msg: hello
"""
ROLE_SPEC = """---
argument_specs:
  main:
    short_description: Demo.
    options:
      demo_a:
        type: int
        default: 1
        description: A.
"""

# Hook id -> (bad file, its content, text the hook prints about it, good file, its content).
CASES = {
    "ruff": ("bad.py", "import os\n", "F401", "good.py", "import os\n\nprint(os.sep)\n"),
    "yamllint": ("bad.yml", "a:  [1,2]\n", "colons", "good.yml", "---\na: [1, 2]\n"),
    "terraform-fmt": (
        "terraform/bad.tf",
        'variable "x" {\n  type =   string\n}\n',
        "-  type =",
        "terraform/good.tf",
        'variable "y" {\n  type = string\n}\n',
    ),
    "checkov": (
        "terraform/bad.tf",
        'resource "google_storage_bucket" "b" {\n  name     = "b"\n  location = "US"\n}\n',
        "CKV_GCP_",
        "terraform/good.tf",
        'variable "y" {\n  type = string\n}\n',
    ),
    "ansible-lint": ("bad_play.yml", BAD_PLAYBOOK, "fqcn[action-core]", "good_play.yml", GOOD_PLAYBOOK),
    "changelog-fragments": (
        "changelogs/fragments/bad.yml",
        "---\nnot_a_section:\n  - x\n",
        "not_a_section",
        "changelogs/fragments/good.yml",
        "---\nbugfixes:\n  - Fix a thing.\n",
    ),
}
# Hooks that take a few seconds per run; they get one run with both files instead of a second, clean run.
SLOW_HOOKS = {"ansible-lint", "checkov"}


def hooks() -> dict[str, dict]:
    return {hook["id"]: hook for repo in read_yaml(CONFIG)["repos"] for hook in repo["hooks"]}


def test_config_valid():
    result = run([tool("pre-commit"), "validate-config", str(CONFIG)])

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("hook_id", REQUIRED_HOOKS)
def test_required_hook_configured(hook_id):
    assert hook_id in hooks(), f".pre-commit-config.yaml has no {hook_id} hook"


def test_hooks_local_only():
    remote = [repo["repo"] for repo in read_yaml(CONFIG)["repos"] if repo["repo"] != "local"]

    assert remote == [], "hook repositories live on GitHub, which the build machines cannot reach"


@pytest.fixture
def scratch_repo(tmp_path) -> Path:
    """Return a git repository with the checkout's hook configuration, lint settings and venv links."""
    root = tmp_path / "repo"
    (root / "terraform").mkdir(parents=True)
    for name in (".pre-commit-config.yaml", ".yamllint", ".ansible-lint", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "changelogs", root / "changelogs", ignore=shutil.ignore_patterns("*.yml"))
    (root / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "role_docs.py", root / "scripts" / "role_docs.py")
    (root / "roles" / "demo" / "tasks").mkdir(parents=True)
    (root / "roles" / "demo" / "meta").mkdir()
    (root / "roles" / "demo" / "tasks" / "main.yml").write_text("---\n[]\n")
    (root / "roles" / "demo" / "meta" / "argument_specs.yml").write_text(ROLE_SPEC)
    for venv in (".venv", ".venv-checkov"):
        if (REPO_ROOT / venv).is_dir():
            (root / venv).symlink_to(REPO_ROOT / venv)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def run_hook(root: Path, hook_id: str, *paths: str):
    if hook_id == "changelog-fragments":
        # antsibull-changelog reads the collection's name from galaxy.yml. ansible-lint would lint that
        # file too, so only this hook gets it.
        shutil.copy(REPO_ROOT / "galaxy.yml", root / "galaxy.yml")
    env = clean_env(PRE_COMMIT_HOME=str(root.parent / "pre-commit-home"))
    return run([tool("pre-commit"), "run", hook_id, "--files", *paths], cwd=root, env=env, timeout=300)


def skip_without_tool(hook_id: str) -> None:
    if hook_id == "terraform-fmt" and shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH; the hook needs it")
    if hook_id == "checkov" and not os.access(REPO_ROOT / ".venv-checkov" / "bin" / "checkov", os.X_OK):
        pytest.skip("checkov is missing; create .venv-checkov with scripts/install-deps.sh")


def write(root: Path, path: str, content: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(content)


@pytest.mark.parametrize("hook_id", sorted(CASES))
def test_hook_flags_only_bad_file(scratch_repo, hook_id):
    skip_without_tool(hook_id)
    bad_path, bad, expected, good_path, good = CASES[hook_id]
    write(scratch_repo, bad_path, bad)
    write(scratch_repo, good_path, good)

    result = run_hook(scratch_repo, hook_id, bad_path, good_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout
    assert Path(good_path).name not in result.stdout, result.stdout


@pytest.mark.parametrize("hook_id", sorted(set(CASES) - SLOW_HOOKS))
def test_hook_accepts_good_file(scratch_repo, hook_id):
    skip_without_tool(hook_id)
    _, _, _, good_path, good = CASES[hook_id]
    write(scratch_repo, good_path, good)

    result = run_hook(scratch_repo, hook_id, good_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_role_docs_hook_rejects_stale_readme(scratch_repo):
    write(scratch_repo, "roles/demo/README.md", "# demo\n")

    result = run_hook(scratch_repo, "role-docs", "roles/demo/README.md")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "out of date" in result.stdout


def test_role_docs_hook_accepts_generated_readme(scratch_repo):
    subprocess.run([tool("python"), "scripts/role_docs.py"], cwd=scratch_repo, check=True, capture_output=True)

    result = run_hook(scratch_repo, "role-docs", "roles/demo/README.md")

    assert result.returncode == 0, result.stdout + result.stderr
