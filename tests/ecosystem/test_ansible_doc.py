"""ansible-doc renders every plugin, module and role of the collection, without a warning.

Each plugin is found on disk, listed by ansible-doc and rendered as text,
where a documentation problem shows up as a warning or an error. Its JSON
documentation must have a description, typed options, YAML examples that use
the fully qualified name, and return values where its type returns any.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml

from .conftest import COLLECTION, REPO_ROOT, ROLES, run, tool

# Folders under plugins/ that hold no documented plugins of their own: shared
# code, documentation fragments, and action plugins, which share the
# documentation of the module with the same name.
NOT_DOCUMENTED = {"module_utils", "plugin_utils", "doc_fragments", "action", "__pycache__"}

# Folder under plugins/ to plugin type as ansible-doc -t spells it.
PLUGIN_TYPES = {"modules": "module"}

# Plugin types whose files may define several plugins each; their names come
# from ansible-doc's listing instead of the file names.
MULTI_PLUGIN_TYPES = {"filter", "test"}

# Plugin types whose documentation must describe what they return.
RETURNING_TYPES = {"module", "lookup", "filter", "test"}


def discover_plugins() -> list[tuple[str, str]]:
    """Return (plugin type, short name) for every plugin file of the collection."""
    found = []
    for folder in sorted((REPO_ROOT / "plugins").iterdir()):
        if not folder.is_dir() or folder.name in NOT_DOCUMENTED:
            continue
        plugin_type = PLUGIN_TYPES.get(folder.name, folder.name)
        names = sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")
        if plugin_type in MULTI_PLUGIN_TYPES:
            names = sorted(name.rsplit(".", 1)[-1] for name in listed_plugins(plugin_type))
        found.extend((plugin_type, name) for name in names)
    return found


@cache
def listed_plugins(plugin_type: str) -> dict[str, str]:
    """Return what ``ansible-doc -l`` lists for the collection: full name to short description."""
    result = run([tool("ansible-doc"), "-t", plugin_type, "-l", COLLECTION, "--json"])
    assert result.returncode == 0, f"ansible-doc -t {plugin_type} -l {COLLECTION} failed:\n{result.stderr}"
    return json.loads(result.stdout)


@cache
def plugin_json(plugin_type: str, name: str) -> dict[str, Any]:
    result = run([tool("ansible-doc"), "-t", plugin_type, "--json", f"{COLLECTION}.{name}"])
    assert result.returncode == 0, f"ansible-doc --json -t {plugin_type} {COLLECTION}.{name} failed:\n{result.stderr}"
    return json.loads(result.stdout)[f"{COLLECTION}.{name}"]


PLUGINS = discover_plugins()
PLUGIN_IDS = [f"{plugin_type}:{name}" for plugin_type, name in PLUGINS]


def test_collection_has_plugins():
    types = {plugin_type for plugin_type, _ in PLUGINS}

    assert "module" in types
    assert "inventory" in types


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS, ids=PLUGIN_IDS)
def test_plugin_listed_by_ansible_doc(plugin_type, name):
    assert f"{COLLECTION}.{name}" in listed_plugins(plugin_type), (
        f"ansible-doc does not list {COLLECTION}.{name}: its file fails to load or its DOCUMENTATION is missing"
    )


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS, ids=PLUGIN_IDS)
def test_plugin_renders_without_warnings(plugin_type, name):
    result = run([tool("ansible-doc"), "-t", plugin_type, f"{COLLECTION}.{name}"])

    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"ansible-doc -t {plugin_type} {COLLECTION}.{name} printed:\n{result.stderr}"
    assert "EXAMPLES" in result.stdout


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS, ids=PLUGIN_IDS)
def test_plugin_doc_complete(plugin_type, name):
    doc = plugin_json(plugin_type, name)["doc"]

    short_description = doc.get("short_description")
    description = doc.get("description")
    author = doc.get("author")
    version_added = doc.get("version_added")

    assert short_description, f"{name}: short_description is missing"
    assert description, f"{name}: description is missing"
    assert author, f"{name}: author is missing"
    assert version_added, (
        f"{name}: version_added is missing; set it to the galaxy.yml version that first ships the plugin, "
        "so that antsibull-changelog lists it as new"
    )
    untyped = sorted(option for option, spec in (doc.get("options") or {}).items() if "type" not in spec)
    assert untyped == [], f"{name}: options without a type: {untyped}"
    undescribed = sorted(option for option, spec in (doc.get("options") or {}).items() if not spec.get("description"))
    assert undescribed == [], f"{name}: options without a description: {undescribed}"


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS, ids=PLUGIN_IDS)
def test_plugin_examples_use_fqcn(plugin_type, name):
    examples = plugin_json(plugin_type, name).get("examples") or ""

    documents = [document for document in yaml.safe_load_all(examples) if document is not None]

    assert documents, f"{name}: EXAMPLES is empty"
    assert f"{COLLECTION}.{name}" in examples, f"{name}: no example uses the full name {COLLECTION}.{name}"


@pytest.mark.parametrize(
    ("plugin_type", "name"),
    [plugin for plugin in PLUGINS if plugin[0] in RETURNING_TYPES],
    ids=[plugin_id for plugin, plugin_id in zip(PLUGINS, PLUGIN_IDS, strict=True) if plugin[0] in RETURNING_TYPES],
)
def test_plugin_documents_return_values(plugin_type, name):
    returned = plugin_json(plugin_type, name).get("return") or {}

    assert returned, f"{name}: RETURN is empty"
    undescribed = sorted(key for key, spec in returned.items() if not spec.get("description"))
    assert undescribed == [], f"{name}: return values without a description: {undescribed}"
    untyped = sorted(key for key, spec in returned.items() if "type" not in spec)
    assert untyped == [], f"{name}: return values without a type: {untyped}"


@pytest.mark.parametrize("role", ROLES)
def test_role_renders_without_warnings(role):
    result = run([tool("ansible-doc"), "-t", "role", f"{COLLECTION}.{role}"])

    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"ansible-doc -t role {COLLECTION}.{role} printed:\n{result.stderr}"
    assert "ENTRY POINT:" in result.stdout, f"ansible-doc shows no entry point of {role}:\n{result.stdout[:2000]}"


@pytest.mark.parametrize("role", ROLES)
def test_role_entry_point_has_version_added(role):
    spec = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    version_added = spec["argument_specs"]["main"].get("version_added")

    assert version_added, (
        f"roles/{role}/meta/argument_specs.yml: the main entry point has no version_added; set it to the "
        "galaxy.yml version that first ships the role, so that antsibull-changelog lists it as new"
    )
