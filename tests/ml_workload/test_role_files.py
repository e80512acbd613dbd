"""Static checks of the ml_workload role: argument spec against defaults, and the slice template."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "ml_workload"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]


def test_spec_and_defaults_name_same_variables():
    assert sorted(SPEC) == sorted(DEFAULTS)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_spec_default_matches_defaults_file(name):
    assert SPEC[name].get("default") == DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_variable_has_role_prefix_and_description(name):
    assert name.startswith("ml_workload_")
    assert SPEC[name].get("description")


def render_slice(**item) -> str:
    # Ansible renders templates with trim_blocks on and without autoescaping; a unit file is not HTML.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    environment.filters["regex_replace"] = lambda value, pattern, replacement: re.sub(pattern, replacement, value)
    return environment.get_template("role.slice.j2").render(ansible_managed="managed by Ansible", item=item)


def test_slice_with_limits_renders_systemd_units():
    text = render_slice(role="training", memory="48GiB", cpus=12.5, cpu_weight=200)

    assert "MemoryMax=48G\n" in text
    assert "CPUQuota=1250%\n" in text
    assert "CPUWeight=200\n" in text


def test_slice_without_limits_sets_only_weight():
    text = render_slice(role="inference", memory="", cpus=0, cpu_weight=100)

    assert "MemoryMax" not in text
    assert "CPUQuota" not in text
    assert "CPUWeight=100\n" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_slices_pass_verify(tmp_path):
    (tmp_path / "mlinfra-training.slice").write_text(
        render_slice(role="training", memory="1536MiB", cpus=2, cpu_weight=100)
    )
    (tmp_path / "mlinfra.slice").write_text(
        (ROLE / "templates" / "mlinfra.slice.j2").read_text().replace("{{ ansible_managed }}", "managed")
    )

    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mlinfra.slice"), str(tmp_path / "mlinfra-training.slice")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.stderr == ""
    assert result.returncode == 0
