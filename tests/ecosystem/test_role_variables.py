"""Each role's variables agree across meta/argument_specs.yml, defaults/main.yml and README.md.

The spec is the single source of truth. defaults/main.yml must declare
exactly the values the spec gives as defaults, and those values must be valid
for the spec's types and choices. The README's variable table must be what
scripts/role_docs.py generates from the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from .conftest import REPO_ROOT, ROLES, load_role_docs, read_yaml

role_docs = load_role_docs()

FIX_HINT = "Edit meta/argument_specs.yml and defaults/main.yml together, then run scripts/role_docs.py."


def role_dir(role: str) -> Path:
    return REPO_ROOT / "roles" / role


def spec_options(role: str) -> dict[str, Any]:
    _, specs = role_docs.load_argument_specs(role_dir(role))
    return specs.get("main", {}).get("options") or {}


def defaults(role: str) -> dict[str, Any]:
    path = role_dir(role) / "defaults" / "main.yml"
    return (read_yaml(path) or {}) if path.is_file() else {}


def same_value(left: Any, right: Any) -> bool:
    """Compare YAML values strictly: True and 1, or "1" and 1, are different defaults."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_value(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same_value(a, b) for a, b in zip(left, right, strict=True))
    return left == right


def trusted(value: Any) -> Any:
    """Mark the strings of a defaults file as templates, as Ansible does for role defaults."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs(role):
    path, specs = role_docs.load_argument_specs(role_dir(role))

    assert "main" in specs, f"{path} has no main entry point"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_declared_in_spec(role):
    undeclared = sorted(set(defaults(role)) - set(spec_options(role)))

    assert undeclared == [], f"roles/{role}/defaults/main.yml sets variables the spec lacks: {undeclared}. {FIX_HINT}"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_in_defaults_file(role):
    options = spec_options(role)
    missing = sorted(name for name, option in options.items() if "default" in option and name not in defaults(role))

    assert missing == [], (
        f"roles/{role}/meta/argument_specs.yml gives defaults that defaults/main.yml lacks: {missing}. {FIX_HINT}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_default_values_agree(role):
    options = spec_options(role)
    mismatches = []
    for name, value in defaults(role).items():
        option = options.get(name)
        # Undeclared and required variables have tests of their own.
        if option is None or option.get("required"):
            continue
        if "default" not in option:
            mismatches.append(f"{name}: the spec has no default, defaults/main.yml has {value!r}")
        elif not same_value(option["default"], value):
            mismatches.append(f"{name}: the spec has {option['default']!r}, defaults/main.yml has {value!r}")

    assert mismatches == [], f"roles/{role}: {'; '.join(mismatches)}. {FIX_HINT}"


@pytest.mark.parametrize("role", ROLES)
def test_required_options_have_no_default(role):
    # Ansible validates a role's arguments after its defaults are loaded, so a
    # required option that defaults/main.yml sets can never be reported missing.
    options = spec_options(role)
    role_defaults = defaults(role)
    contradictions = sorted(
        name
        for name, option in options.items()
        if option.get("required") and (name in role_defaults or "default" in option)
    )

    assert contradictions == [], (
        f"roles/{role}: options are required but have a default, so `required` is never enforced: "
        f"{contradictions}. Drop `required: true`, or drop the default and let the caller set it."
    )


@pytest.mark.parametrize("role", ROLES)
def test_defaults_valid_for_spec(role):
    # Templated defaults are rendered first, against the role's own defaults
    # only, as they would be on a host whose inventory sets none of them.
    values = trusted(defaults(role))
    templar = Templar(loader=DataLoader(), variables=values)
    rendered = {}
    unrendered = []
    for name, value in values.items():
        try:
            rendered[name] = templar.template(value)
        except AnsibleError as error:
            unrendered.append(f"{name}: {error.message}")

    options = {name: option for name, option in spec_options(role).items() if name in rendered}
    result = ArgumentSpecValidator(options).validate(rendered)

    assert unrendered == [], f"roles/{role}: defaults that cannot be rendered without inventory values: {unrendered}"
    assert result.error_messages == [], f"roles/{role}: defaults invalid for the spec: {result.error_messages}"


@pytest.mark.parametrize("role", ROLES)
def test_options_named_typed_and_described(role):
    problems = []
    for name, option in spec_options(role).items():
        if not name.startswith(f"{role}_"):
            problems.append(f"{name} lacks the prefix {role}_")
        if "type" not in option:
            problems.append(f"{name} has no type")
        if not option.get("description"):
            problems.append(f"{name} has no description")

    assert problems == [], f"roles/{role}/meta/argument_specs.yml: {problems}"


@pytest.mark.parametrize("role", ROLES)
def test_readme_generated_from_spec(role):
    readme = role_dir(role) / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.is_file() else None

    expected = role_docs.expected_readme(role_dir(role))

    assert current is not None, f"roles/{role}/README.md is missing; run scripts/role_docs.py to create it"
    assert current == expected, f"roles/{role}/README.md is out of date with its spec; run scripts/role_docs.py"


def markdown_tables(text: str) -> list[list[str]]:
    """Return the Markdown tables in text, each as its list of rows."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            current.append(line.strip())
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


@pytest.mark.parametrize("role", ROLES)
def test_readme_has_no_hand_kept_table(role):
    readme = role_dir(role) / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    begin = text.find(role_docs.BEGIN_MARKER)
    end = text.find(role_docs.END_MARKER)
    outside = text[:begin] + text[end:] if begin != -1 and end != -1 else text
    variables = set(spec_options(role))

    # A table whose first column lists several of the role's variables is a copy of the spec that will drift.
    # A table about one variable, such as the values of a policy, is not.
    copies = []
    for table in markdown_tables(outside):
        first_cells = {row.strip("|").split("|")[0].strip().strip("`") for row in table}
        listed = sorted(first_cells & variables)
        if len(listed) >= 3:
            copies.append(listed)

    assert copies == [], (
        f"roles/{role}/README.md has a hand-kept variable table outside the generated block, listing "
        f"{copies[0] if copies else ''}; remove it, because the generated table lists every variable"
    )


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_carry_prefix(role):
    # A role's variables share one namespace with every other role's, so the
    # prefix is what keeps two roles from overriding each other.
    vars_path = role_dir(role) / "vars" / "main.yml"
    internal = (read_yaml(vars_path) or {}) if vars_path.is_file() else {}
    wrong = sorted(name for name in defaults(role) if not name.startswith(f"{role}_"))
    wrong += sorted(name for name in internal if not name.startswith(f"__{role}_"))

    assert wrong == [], (
        f"roles/{role}: variables without the role's prefix: {wrong}. "
        f"Rename them to {role}_* in defaults/main.yml and __{role}_* in vars/main.yml."
    )
