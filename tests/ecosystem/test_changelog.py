"""Changelog fragments are valid, and a trial release turns them into CHANGELOG.rst.

The trial runs `antsibull-changelog release` on a copy of the collection's
metadata, plugins and roles, so the checkout's changelog and fragments stay
as they are.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import COLLECTION, REPO_ROOT, ROLES, read_yaml, run, tool

CHANGELOGS = REPO_ROOT / "changelogs"
FRAGMENTS = sorted(path for path in (CHANGELOGS / "fragments").glob("*") if path.suffix in (".yml", ".yaml"))
GALAXY_VERSION = str(read_yaml(REPO_ROOT / "galaxy.yml")["version"])


def trial_version() -> str:
    """Return the galaxy.yml version, or the next patch version once that one is released."""
    released = (read_yaml(CHANGELOGS / "changelog.yaml") or {}).get("releases") or {}
    if GALAXY_VERSION not in released:
        return GALAXY_VERSION
    major, minor, patch = GALAXY_VERSION.split(".")[:3]
    return f"{major}.{minor}.{int(patch) + 1}"


def words(text: str) -> str:
    """Return text without RST markup and line breaks, for comparing a fragment entry with the changelog."""
    return " ".join(re.sub(r"``|\\", "", text).split())


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trial-release")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".plugin-cache.yaml")
    for name in ("changelogs", "plugins", "roles", "meta", "playbooks"):
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, root / name, ignore=ignore)
    shutil.copy(REPO_ROOT / "galaxy.yml", root / "galaxy.yml")

    result = run([tool("antsibull-changelog"), "release", "--version", trial_version()], cwd=root, timeout=180)

    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_fragments_lint():
    result = run([tool("antsibull-changelog"), "lint"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "", result.stdout


def test_changelog_yaml_valid():
    result = run([tool("antsibull-changelog"), "lint-changelog-yaml", str(CHANGELOGS / "changelog.yaml")])

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "", result.stdout


def test_fragments_exist():
    assert FRAGMENTS, "changelogs/fragments/ has no fragment; every change that users notice adds one"


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=[path.name for path in FRAGMENTS])
def test_trial_release_lists_fragment(trial, fragment):
    changelog = words((trial / "CHANGELOG.rst").read_text())
    entries = yaml.safe_load(fragment.read_text())

    missing = [
        entry
        for section, value in entries.items()
        for entry in ([value] if isinstance(value, str) else value)
        if section != "trivial" and words(entry) not in changelog
    ]

    assert missing == [], f"{fragment.name}: entries missing from the trial CHANGELOG.rst: {missing}"


def test_trial_release_consumes_fragments(trial):
    left = sorted(path.name for path in (trial / "changelogs" / "fragments").glob("*.y*ml"))

    assert left == [], "keep_fragments is off, so a release removes the fragments it used"


def test_trial_release_lists_new_content(trial):
    changelog = (trial / "CHANGELOG.rst").read_text()
    if trial_version() != GALAXY_VERSION:
        pytest.skip(f"{GALAXY_VERSION} is released; new content is listed only in the release that adds it")

    dump = run([tool("ansible-doc"), "--metadata-dump", "--no-fail-on-errors", COLLECTION])
    assert dump.returncode == 0, dump.stderr
    plugins = json.loads(dump.stdout)["all"]
    new_plugins = sorted(
        name
        for plugin_type, found in plugins.items()
        if plugin_type != "role"
        for name, data in found.items()
        if name.startswith(f"{COLLECTION}.") and str((data.get("doc") or {}).get("version_added")) == GALAXY_VERSION
    )
    new_roles = [
        f"{COLLECTION}.{role}"
        for role in ROLES
        if str(
            read_yaml(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get(
                "version_added"
            )
        )
        == GALAXY_VERSION
    ]

    missing = [name for name in new_plugins + new_roles if name not in changelog]

    assert new_plugins, f"no plugin has version_added {GALAXY_VERSION}; the scan of plugins is broken"
    assert missing == [], f"the trial CHANGELOG.rst does not list these new plugins and roles: {missing}"


def test_trial_changelog_yaml_passes_yamllint(trial):
    # Only changelog.yaml is committed; the release's .plugin-cache.yaml is a cache to delete.
    changes = trial / "changelogs" / "changelog.yaml"

    result = run([tool("yamllint"), "-s", "-c", str(REPO_ROOT / ".yamllint"), str(changes)])

    assert result.returncode == 0, result.stdout + result.stderr
