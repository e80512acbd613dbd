"""Tests of scripts/role_docs.py: markup, table cells, markers, and the --check exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, load_role_docs, run

role_docs = load_role_docs()


def make_role(root: Path, name: str, options: dict, readme: str | None = None, **entry_points: dict) -> Path:
    role = root / "roles" / name
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    specs = {"main": {"short_description": f"Test role {name}.", "options": options}, **entry_points}
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": specs}, sort_keys=False))
    if readme is not None:
        (role / "README.md").write_text(readme)
    return role


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `")]


def test_markup_becomes_markdown():
    context = role_docs.Context()
    text = "Set O(demo_mode=fast) to V(fast), see C(/etc/x.conf), I(never) B(always), U(https://example.com)."

    markdown = role_docs.markup_to_markdown(text, context)

    assert markdown == "Set `demo_mode=fast` to `fast`, see `/etc/x.conf`, *never* **always**, <https://example.com>."


def test_paragraphs_join_with_line_break():
    markdown = role_docs.markup_to_markdown(["First  line\nfolded.", "Second."], role_docs.Context())

    assert markdown == "First line folded.<br>Second."


def test_pipes_and_tags_escaped_in_cells():
    # V() takes backslash escapes, C() ends at the first closing parenthesis.
    markdown = role_docs.markup_to_markdown("Match V(^lib(egl|gl1\\)-nvidia) or a|b <tag> x*y", role_docs.Context())

    assert markdown == "Match `^lib(egl\\|gl1)-nvidia` or a\\|b &lt;tag> x\\*y"


def test_code_span_with_backtick_uses_longer_fence():
    assert role_docs.code_span("a`b") == "``a`b``"
    assert role_docs.code_span("`x") == "`` `x ``"


def test_defaults_formatted_as_code():
    assert role_docs.format_default("") == '`""`'
    assert role_docs.format_default("580") == "`580`"
    assert role_docs.format_default(False) == "`false`"
    assert role_docs.format_default(None) == "`null`"
    assert role_docs.format_default(["^a", "b|c"]) == '`["^a", "b\\|c"]`'
    assert role_docs.format_default({"Max": "4G"}) == '`{"Max": "4G"}`'


def test_rows_types_choices_suboptions(tmp_path):
    role = make_role(
        tmp_path,
        "demo",
        {
            "demo_mode": {"type": "str", "choices": ["fast", "safe"], "default": "safe", "description": "Mode."},
            "demo_hosts": {"type": "list", "elements": "str", "default": [], "description": "Hosts."},
            "demo_name": {"type": "str", "required": True, "description": "Name."},
            "demo_key": {"type": "str", "description": "Key, derived when not set."},
            "demo_plain": {"description": "No type given."},
            "demo_mounts": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "description": "Mounts.",
                "options": {"target": {"type": "path", "required": True, "description": "Mount point."}},
            },
        },
    )

    rows = table_rows(role_docs.render_block(role))

    assert rows == [
        "| `demo_mode` | str | `safe` | Mode.<br>Choices: `fast`, `safe`. |",
        "| `demo_hosts` | list of str | `[]` | Hosts. |",
        "| `demo_name` | str | required | Name. |",
        "| `demo_key` | str | not set | Key, derived when not set. |",
        "| `demo_plain` | str | not set | No type given. |",
        "| `demo_mounts` | list of dict | `[]` | Mounts. |",
        "| `demo_mounts[].target` | path | required | Mount point. |",
    ]


def test_several_entry_points_get_headings(tmp_path):
    role = make_role(
        tmp_path,
        "demo",
        {"demo_a": {"type": "int", "default": 1, "description": "A."}},
        remove={"short_description": "Remove the demo.", "options": {}},
    )

    block = role_docs.render_block(role)

    assert "### Entry point `main`" in block
    assert "### Entry point `remove`" in block
    assert "Remove the demo." in block
    assert "This entry point takes no variables." in block


def test_missing_readme_created_with_title(tmp_path):
    role = make_role(tmp_path, "demo", {"demo_a": {"type": "int", "default": 1, "description": "A."}})

    text = role_docs.expected_readme(role)

    assert text.startswith("# demo\n\n<!-- BEGIN ROLE VARIABLES -->\n")
    assert text.endswith("<!-- END ROLE VARIABLES -->\n")


def test_markers_appended_after_existing_text(tmp_path):
    role = make_role(
        tmp_path, "demo", {"demo_a": {"type": "int", "default": 1, "description": "A."}}, readme="# demo\n\nIntro.\n"
    )

    text = role_docs.expected_readme(role)

    assert text.startswith("# demo\n\nIntro.\n\n<!-- BEGIN ROLE VARIABLES -->\n")


def test_only_region_between_markers_replaced(tmp_path):
    readme = "# demo\n\nBefore.\n\n<!-- BEGIN ROLE VARIABLES -->\nstale\n<!-- END ROLE VARIABLES -->\n\nAfter.\n"
    role = make_role(tmp_path, "demo", {"demo_a": {"type": "int", "default": 1, "description": "A."}}, readme=readme)

    text = role_docs.expected_readme(role)

    assert text.startswith("# demo\n\nBefore.\n\n<!-- BEGIN ROLE VARIABLES -->\n")
    assert text.endswith("<!-- END ROLE VARIABLES -->\n\nAfter.\n")
    assert "stale" not in text
    assert "| `demo_a` | int | `1` | A. |" in text


@pytest.mark.parametrize(
    "readme",
    [
        "<!-- END ROLE VARIABLES -->\n<!-- BEGIN ROLE VARIABLES -->\n",
        "<!-- BEGIN ROLE VARIABLES -->\nno end\n",
        "<!-- BEGIN ROLE VARIABLES -->\n<!-- END ROLE VARIABLES -->\n<!-- BEGIN ROLE VARIABLES -->\n",
    ],
    ids=["reversed", "no-end", "twice"],
)
def test_broken_markers_rejected(tmp_path, readme):
    role = make_role(tmp_path, "demo", {"demo_a": {"type": "int", "default": 1, "description": "A."}}, readme=readme)

    with pytest.raises(role_docs.RoleDocsError, match="must contain"):
        role_docs.expected_readme(role)


def test_missing_spec_names_file(tmp_path):
    role = tmp_path / "roles" / "bare"
    (role / "tasks").mkdir(parents=True)

    with pytest.raises(role_docs.RoleDocsError, match=r"meta/argument_specs\.yml is missing"):
        role_docs.render_block(role)


def test_check_fails_then_write_fixes(tmp_path):
    role = make_role(tmp_path, "demo", {"demo_a": {"type": "int", "default": 1, "description": "A."}}, readme="# d\n")
    script = [sys.executable, str(REPO_ROOT / "scripts" / "role_docs.py")]

    stale = run([*script, "--check", str(role)])
    written = run([*script, str(role)])
    clean = run([*script, "--check", str(role)])

    assert stale.returncode == 1
    assert "out of date" in stale.stderr
    assert "run scripts/role_docs.py" in stale.stderr
    assert (role / "README.md").read_text().startswith("# d\n\n<!-- BEGIN ROLE VARIABLES -->")
    assert written.returncode == 0
    assert f"updated {role / 'README.md'}" in written.stdout
    assert clean.returncode == 0
    assert clean.stderr == ""


def test_check_reports_missing_spec(tmp_path):
    role = tmp_path / "roles" / "bare"
    (role / "tasks").mkdir(parents=True)

    result = run([sys.executable, str(REPO_ROOT / "scripts" / "role_docs.py"), "--check", str(role)])

    assert result.returncode == 1
    assert "meta/argument_specs.yml is missing" in result.stderr
