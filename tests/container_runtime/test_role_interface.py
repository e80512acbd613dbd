"""The container_runtime role's defaults, argument spec and README list the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "container_runtime"


def load(relative: str):
    return yaml.safe_load((ROLE / relative).read_text())


def spec_options() -> dict:
    return load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_defaults_match_spec_names():
    assert set(load("defaults/main.yml")) == set(spec_options())


def test_defaults_match_spec_values():
    defaults = load("defaults/main.yml")
    for name, option in spec_options().items():
        if "default" in option:
            assert defaults[name] == option["default"], f"{name}: defaults/main.yml and the spec disagree"
        else:
            # Only derived defaults, written as templates in defaults/main.yml, may be missing in the spec.
            assert "{{" in str(defaults[name]), f"{name} has no default in meta/argument_specs.yml"


def test_readme_lists_every_variable():
    readme = (ROLE / "README.md").read_text()
    listed = set(re.findall(r"^\| `(container_runtime_[a-z_]+)` \|", readme, flags=re.MULTILINE))
    assert listed == set(spec_options())


def test_role_variables_carry_prefix():
    for name in load("defaults/main.yml"):
        assert name.startswith("container_runtime_")
    for name in load("vars/main.yml"):
        assert name.startswith("__container_runtime_")
