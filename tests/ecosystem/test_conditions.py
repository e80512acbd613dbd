"""Every condition in the project's playbooks and task files is a string, a boolean or a list of them.

A plain YAML scalar that contains ": " (such as "x86_64: installed" inside an
assert's search pattern) parses as a mapping. ansible-lint accepts the file,
and Ansible fails only when the task runs ("Conditional expressions must be
strings"), which for the VM scenario is an hour into the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
YAML_ROOTS = ["roles", "molecule", "playbooks", "site.yml", "benchmarks", "tests/gpu"]
CONDITION_KEYS = {"when", "changed_when", "failed_when", "until"}


def yaml_files() -> list[Path]:
    files = []
    for root in YAML_ROOTS:
        path = REPO_ROOT / root
        files.extend([path] if path.is_file() else sorted(path.rglob("*.yml")))
    return [path for path in files if ".venv" not in path.parts]


def conditions(node, where: str = ""):
    """Yield (location, condition) for every condition under NODE, asserts included."""
    if isinstance(node, dict):
        for key, value in node.items():
            # An assert's "that" takes a condition or a list of them, as "when" does.
            if key in CONDITION_KEYS or (key == "that" and isinstance(value, (list, str))):
                items = value if isinstance(value, list) else [value]
                yield from ((f"{where}/{key}", item) for item in items)
            else:
                yield from conditions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from conditions(item, f"{where}[{index}]")


@pytest.mark.parametrize("path", yaml_files(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_conditions_are_strings(path):
    documents = list(yaml.safe_load_all(path.read_text()))
    broken = [
        f"{where}: {condition!r}"
        for document in documents
        for where, condition in conditions(document)
        if not isinstance(condition, (str, bool))
    ]
    assert broken == [], "quote these conditions, which YAML did not read as strings:\n" + "\n".join(broken)


def test_conditions_find_a_plain_colon():
    task = yaml.safe_load("- ansible.builtin.assert:\n    that:\n      - out is search('x86_64: installed')\n")
    found = [condition for _, condition in conditions(task)]
    assert len(found) == 1
    assert isinstance(found[0], dict)
