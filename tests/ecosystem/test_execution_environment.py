"""execution-environment.yml names every dependency the code needs, and ansible-builder accepts it.

The imports are read from the code with ast, not from a list: controller-side
plugins (inventory, lookup, filter, callback, ...) and the module_utils they
import run inside the execution environment, so each third-party package they
import must be pinned there. Modules run on the managed hosts instead, whose
Python has only the standard library, so they may import nothing else.
Collections are found by their fully qualified names in roles and playbooks.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import REPO_ROOT, read_yaml, run, tool

EE_FILE = REPO_ROOT / "execution-environment.yml"
OWN_PREFIX = "ansible_collections.mlinfra.platform."
# Plugin folders whose code runs on the managed host, or is not code that runs.
NOT_CONTROLLER = {"modules", "module_utils", "doc_fragments", "__pycache__"}
# What the execution environment runs: the roles, the collection playbooks and
# the main playbook at the repository root.
CONTENT_GLOBS = ("roles/**/*.yml", "roles/**/*.j2", "playbooks/**/*.yml", "site.yml", "templates/**/*.j2")


def ee_document() -> dict:
    return read_yaml(EE_FILE)


def imported_names(path: Path) -> set[str]:
    """Return the absolute module names that a Python file imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            # `from package import submodule` imports package.submodule when that is a module.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def own_module_path(name: str) -> Path | None:
    """Return the file of a module of this collection, or None when the name is no module of it."""
    relative = name.removeprefix(OWN_PREFIX).replace(".", "/")
    for candidate in (REPO_ROOT / f"{relative}.py", REPO_ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(files: list[Path]) -> dict[str, set[Path]]:
    """Return every module name imported by the files and by the collection's modules they import, with importers."""
    importers: dict[str, set[Path]] = {}
    queue = list(files)
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            importers.setdefault(name, set()).add(path)
            if name.startswith(OWN_PREFIX):
                own = own_module_path(name)
                if own is not None:
                    queue.append(own)
    return importers


def is_standard_or_own(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return top in sys.stdlib_module_names or top in ("ansible", "__future__") or name.startswith(OWN_PREFIX)


def third_party(importers: dict[str, set[Path]]) -> dict[str, set[Path]]:
    """Return the imported names that are neither standard library, ansible-core nor this collection."""
    return {
        name: paths
        for name, paths in importers.items()
        if not is_standard_or_own(name) and not name.startswith("ansible_collections.")
    }


@cache
def distribution_of(module_name: str) -> str | None:
    """Return the installed distribution that ships a module, found from the distributions' file lists."""
    parts = module_name.split(".")
    candidates = importlib.metadata.packages_distributions().get(parts[0], [])
    # The deepest file wins, because namespace packages such as google/ are shared by several distributions.
    for depth in range(len(parts), 0, -1):
        stem = "/".join(parts[:depth])
        module_files = {f"{stem}.py", f"{stem}/__init__.py"}
        for distribution_name in candidates:
            files = importlib.metadata.distribution(distribution_name).files or []
            if any(str(file) in module_files for file in files):
                return canonicalize_name(distribution_name)
    return None


def controller_files() -> list[Path]:
    return sorted(
        path
        for folder in (REPO_ROOT / "plugins").iterdir()
        if folder.is_dir() and folder.name not in NOT_CONTROLLER
        for path in folder.rglob("*.py")
    )


def ee_python_requirements() -> dict[str, Requirement]:
    python = ee_document()["dependencies"].get("python") or []
    if isinstance(python, str):
        python = (EE_FILE.parent / python).read_text().splitlines()
    lines = [line.split("#")[0].strip() for line in python]
    requirements = [Requirement(line) for line in lines if line]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def ee_core_requirements() -> dict[str, Requirement]:
    dependencies = ee_document()["dependencies"]
    found = {}
    for key in ("ansible_core", "ansible_runner"):
        requirement = Requirement(dependencies[key]["package_pip"])
        found[canonicalize_name(requirement.name)] = requirement
    return found


def installed_collections() -> dict[str, str]:
    """Return the collections that ansible can load from this venv and the checkout, with their versions."""
    result = run([tool("ansible-galaxy"), "collection", "list", "--format", "json"])
    assert result.returncode == 0, result.stderr
    collections = {}
    for by_name in yaml.safe_load(result.stdout).values():
        for name, details in by_name.items():
            collections.setdefault(name, details.get("version"))
    return collections


def used_collections() -> dict[str, set[str]]:
    """Return the other collections that content refers to by full name, with the files that do."""
    known = [name for name in installed_collections() if name not in ("mlinfra.platform", "ansible.builtin")]
    patterns = {name: re.compile(rf"\b{re.escape(name)}\.[A-Za-z_]") for name in known}
    used: dict[str, set[str]] = {}
    files = {path for pattern in CONTENT_GLOBS for path in REPO_ROOT.glob(pattern)}
    for path in sorted(files):
        text = path.read_text(encoding="utf-8", errors="replace")
        for name, pattern in patterns.items():
            if pattern.search(text):
                used.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    for name in import_closure(controller_files()):
        if name.startswith("ansible_collections.") and not name.startswith(OWN_PREFIX):
            collection = ".".join(name.split(".")[1:3])
            used.setdefault(collection, set()).add("plugins/")
    return used


def galaxy_requirements(path: Path) -> dict[str, str]:
    document = read_yaml(path)
    return {entry["name"]: str(entry.get("version", "*")) for entry in document.get("collections", [])}


def test_controller_imports_found():
    names = set(third_party(import_closure(controller_files())))

    # The inventory plugin talks to the Compute API; if none of its imports is
    # found, the scan is broken rather than the plugin dependency-free.
    assert any(name.startswith("google.") for name in names), sorted(names)


def test_ee_pins_every_controller_import():
    problems = []
    requirements = ee_python_requirements()
    for name, importers in sorted(third_party(import_closure(controller_files())).items()):
        distribution = distribution_of(name)
        files = ", ".join(sorted(str(path.relative_to(REPO_ROOT)) for path in importers))
        if distribution is None:
            problems.append(f"{name} (imported by {files}) is not installed in this venv, so its package is unknown")
        elif distribution not in requirements:
            problems.append(f"{name} (imported by {files}) comes from {distribution}, which the EE does not name")

    assert problems == [], "execution-environment.yml: " + "; ".join(problems)


def test_ee_pins_match_installed_versions():
    mismatches = []
    for name, requirement in {**ee_python_requirements(), **ee_core_requirements()}.items():
        if name == "ansible-runner":
            continue  # Only the execution environment runs jobs through ansible-runner; it is not installed here.
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            mismatches.append(f"{requirement} is not installed in the venv the tests ran with")
            continue
        if not requirement.specifier or not requirement.specifier.contains(installed, prereleases=True):
            mismatches.append(f"{requirement} but the tests ran with {name}=={installed}")

    assert mismatches == [], f"execution-environment.yml pins differ from what was tested: {mismatches}"


def test_ee_includes_runtime_requirements():
    ee = {**ee_python_requirements(), **ee_core_requirements()}
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    runtime = [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]

    missing = [str(requirement) for requirement in runtime if canonicalize_name(requirement.name) not in ee]
    differing = [
        f"{requirement} in requirements.txt, {ee[canonicalize_name(requirement.name)]} in the EE"
        for requirement in runtime
        if canonicalize_name(requirement.name) in ee
        and ee[canonicalize_name(requirement.name)].specifier != requirement.specifier
    ]

    assert missing == [], f"execution-environment.yml lacks requirements.txt entries: {missing}"
    assert differing == [], f"execution-environment.yml pins differ from requirements.txt: {differing}"


def test_modules_import_only_standard_library():
    modules = sorted((REPO_ROOT / "plugins" / "modules").glob("*.py"))
    importers = import_closure(modules)

    foreign = {
        name: sorted(str(path.relative_to(REPO_ROOT)) for path in paths)
        for name, paths in importers.items()
        if not is_standard_or_own(name)
    }

    assert modules
    assert foreign == {}, (
        "modules run with the managed host's Python, which has only the standard library and ansible's "
        f"module_utils; these imports would fail there: {foreign}"
    )


def test_galaxy_dependencies_match_requirements_yml():
    galaxy = read_yaml(REPO_ROOT / "galaxy.yml").get("dependencies") or {}

    assert {name: str(version) for name, version in galaxy.items()} == galaxy_requirements(
        REPO_ROOT / "requirements.yml"
    )


def test_ee_collections_from_requirements_yml():
    galaxy = ee_document()["dependencies"]["galaxy"]

    assert galaxy == "requirements.yml", "the EE should install the collections that requirements.yml pins"


def test_pinned_collections_installed_at_pins():
    installed = installed_collections()
    pinned = galaxy_requirements(REPO_ROOT / "requirements.yml")

    differing = {
        name: (version, installed.get(name)) for name, version in pinned.items() if installed.get(name) != version
    }

    assert differing == {}, f"requirements.yml pin -> installed version: {differing}"


def test_used_collections_are_dependencies():
    dependencies = read_yaml(REPO_ROOT / "galaxy.yml").get("dependencies") or {}
    installed = installed_collections()

    undeclared = {name: sorted(files) for name, files in used_collections().items() if name not in dependencies}

    assert undeclared == {}, "; ".join(
        f"{name} is used in {', '.join(files)} but is not in galaxy.yml dependencies and requirements.yml; "
        f"add it at {installed.get(name)}, the version in the ansible bundle, or stop using it"
        for name, files in undeclared.items()
    )


def test_ansible_builder_creates_context(tmp_path):
    context = tmp_path / "context"

    command = [
        tool("ansible-builder"),
        "create",
        "-f",
        str(EE_FILE),
        "-c",
        str(context),
        "--output-filename",
        "Containerfile",
    ]
    result = run(command, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    python_lines = (context / "_build" / "requirements.txt").read_text().split()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    base_image = ee_document()["images"]["base_image"]["name"]
    core = ee_document()["dependencies"]["ansible_core"]["package_pip"]
    assert f'EE_BASE_IMAGE="{base_image}"' in containerfile
    assert core in containerfile
    assert sorted(python_lines) == sorted(str(requirement) for requirement in ee_python_requirements().values())
    assert galaxy == read_yaml(REPO_ROOT / "requirements.yml")


@pytest.mark.parametrize("key", ["python_interpreter", "ansible_core", "ansible_runner", "galaxy", "python"])
def test_ee_declares_dependency(key):
    assert ee_document()["dependencies"].get(key), f"execution-environment.yml: dependencies.{key} is missing"
