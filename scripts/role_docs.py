#!/usr/bin/env python3
"""Generate the variable table in each role's README from its meta/argument_specs.yml.

    scripts/role_docs.py                      # rewrite the table in every roles/*/README.md
    scripts/role_docs.py --check              # exit 1 when a README is out of date
    scripts/role_docs.py roles/ml_workload    # only the roles given

The table sits between the BEGIN and END ROLE VARIABLES markers; text outside
them is never changed. A role without a README gets one with a title and the
markers, and a README without markers gets them appended at its end.

Descriptions may use Ansible's markup (C(), V(), O(), I(), B(), U(), L(),
M(), E()), parsed with antsibull-docs-parser as ansible-doc does, and are
written as plain Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from antsibull_docs_parser import dom
from antsibull_docs_parser.format import Formatter, format_paragraphs
from antsibull_docs_parser.parser import Context, parse

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "mlinfra.platform"

BEGIN_MARKER = "<!-- BEGIN ROLE VARIABLES -->"
END_MARKER = "<!-- END ROLE VARIABLES -->"
GENERATED_NOTE = (
    "<!-- Generated from meta/argument_specs.yml by scripts/role_docs.py. Edit the spec, then run the script. -->"
)
SPEC_FILES = ("meta/argument_specs.yml", "meta/argument_specs.yaml")


class RoleDocsError(Exception):
    """A role whose spec or README cannot be turned into a variable table."""


def escape_cell(text: str) -> str:
    """Escape what would end a table cell or open an HTML tag in GitHub Flavored Markdown."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


def code_span(text: str) -> str:
    """Return ``text`` as an inline code span that is safe inside a table cell."""
    # Inside a code span only the pipe needs escaping, because GFM splits cells before it parses spans.
    text = text.replace("\n", " ").replace("|", "\\|")
    fence = "`"
    while fence in text:
        fence += "`"
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


class MarkdownCellFormatter(Formatter):
    """Formatter from parsed Ansible markup to Markdown that fits in one table cell."""

    def format_error(self, part: dom.ErrorPart) -> str:
        raise RoleDocsError(part.message)

    def format_bold(self, part: dom.BoldPart) -> str:
        return f"**{escape_cell(part.text)}**"

    def format_code(self, part: dom.CodePart) -> str:
        return code_span(part.text)

    def format_horizontal_line(self, part: dom.HorizontalLinePart) -> str:
        return "<br>"

    def format_italic(self, part: dom.ItalicPart) -> str:
        return f"*{escape_cell(part.text)}*"

    def format_link(self, part: dom.LinkPart) -> str:
        return f"[{escape_cell(part.text)}]({part.url})"

    def format_module(self, part: dom.ModulePart, url: str | None) -> str:
        return code_span(part.fqcn)

    def format_rst_ref(self, part: dom.RSTRefPart) -> str:
        return escape_cell(part.text)

    def format_url(self, part: dom.URLPart) -> str:
        return f"<{part.url}>"

    def format_text(self, part: dom.TextPart) -> str:
        return escape_cell(part.text)

    def format_env_variable(self, part: dom.EnvVariablePart) -> str:
        return code_span(part.name)

    def format_option_name(self, part: dom.OptionNamePart, url: str | None) -> str:
        return code_span(part.name if part.value is None else f"{part.name}={part.value}")

    def format_option_value(self, part: dom.OptionValuePart) -> str:
        return code_span(part.value)

    def format_plugin(self, part: dom.PluginPart, url: str | None) -> str:
        return code_span(part.plugin.fqcn)

    def format_return_value(self, part: dom.ReturnValuePart, url: str | None) -> str:
        return code_span(part.name if part.value is None else f"{part.name}={part.value}")


def markup_to_markdown(text: str | list[str], context: Context) -> str:
    """Convert Ansible markup, one string or a list of paragraphs, to Markdown for one table cell."""
    paragraphs = [text] if isinstance(text, str) else list(text)
    # YAML folds long descriptions into single lines, but literal blocks keep their newlines.
    paragraphs = [" ".join(str(paragraph).split()) for paragraph in paragraphs]
    parsed = parse(paragraphs, context, errors="message")
    return format_paragraphs(parsed, MarkdownCellFormatter(), par_sep="<br>")


def format_default(value: Any) -> str:
    """Return a default value as a code span: strings as written, other values as JSON."""
    if isinstance(value, str):
        return code_span(value) if value else code_span('""')
    return code_span(json.dumps(value, ensure_ascii=False))


def format_type(option: dict[str, Any]) -> str:
    # Argument specs default to str when an option names no type.
    option_type = option.get("type", "str")
    elements = option.get("elements")
    return f"{option_type} of {elements}" if elements else str(option_type)


def option_rows(name: str, option: dict[str, Any], context: Context, where: str) -> list[str]:
    """Return the table row of one option, then the rows of its suboptions."""
    if not isinstance(option, dict):
        raise RoleDocsError(f"{where}: option {name} is not a mapping; give it type, default and description")

    if option.get("required"):
        default = "required"
    elif "default" in option:
        default = format_default(option["default"])
    else:
        default = "not set"

    try:
        description = markup_to_markdown(option.get("description") or "", context)
    except RoleDocsError as error:
        raise RoleDocsError(f"{where}: invalid markup in the description of {name}: {error}") from error
    if option.get("choices"):
        choices = ", ".join(format_default(choice) for choice in option["choices"])
        description = f"{description}<br>Choices: {choices}." if description else f"Choices: {choices}."

    rows = [f"| {code_span(name)} | {format_type(option)} | {default} | {description} |"]

    suboptions = option.get("options") or {}
    separator = "[]." if option.get("type") == "list" else "."
    for child_name, child in suboptions.items():
        rows.extend(option_rows(f"{name}{separator}{child_name}", child, context, where))
    return rows


def load_argument_specs(role_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Return the spec file of a role and its ``argument_specs`` mapping."""
    for relative in SPEC_FILES:
        path = role_dir / relative
        if path.is_file():
            break
    else:
        raise RoleDocsError(f"{role_dir}: meta/argument_specs.yml is missing; every role declares its variables there")

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise RoleDocsError(f"{path}: invalid YAML: {error}") from error

    specs = document.get("argument_specs") if isinstance(document, dict) else None
    if not isinstance(specs, dict) or not specs:
        raise RoleDocsError(f"{path}: no argument_specs mapping with at least one entry point (such as main)")
    return path, specs


def render_block(role_dir: Path) -> str:
    """Return the generated README block of a role, markers included."""
    spec_path, specs = load_argument_specs(role_dir)
    lines = [BEGIN_MARKER, GENERATED_NOTE, "", "## Role variables", ""]

    for entry_point, entry in specs.items():
        where = f"{spec_path}: entry point {entry_point}"
        if not isinstance(entry, dict):
            raise RoleDocsError(f"{where} is not a mapping; give it short_description and options")
        context = Context(
            current_plugin=dom.PluginIdentifier(fqcn=f"{COLLECTION}.{role_dir.name}", type="role"),
            role_entrypoint=entry_point,
        )

        # A role with one entry point needs no heading per entry point.
        if len(specs) > 1:
            lines += [f"### Entry point `{entry_point}`", ""]
            if entry.get("short_description"):
                lines += [markup_to_markdown(entry["short_description"], context), ""]

        options = entry.get("options") or {}
        if not options:
            lines += ["This entry point takes no variables.", ""]
            continue
        lines += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        for name, option in options.items():
            lines += option_rows(name, option, context, where)
        lines.append("")

    lines.append(END_MARKER)
    return "\n".join(lines)


def replace_block(readme_text: str | None, block: str, role_name: str) -> str:
    """Return the README text with its generated block replaced, or with one added."""
    if readme_text is None:
        return f"# {role_name}\n\n{block}\n"

    begin = readme_text.find(BEGIN_MARKER)
    end = readme_text.find(END_MARKER)
    if begin == -1 and end == -1:
        return f"{readme_text.rstrip()}\n\n{block}\n"
    if begin == -1 or end == -1 or end < begin or readme_text.count(BEGIN_MARKER) + readme_text.count(END_MARKER) > 2:
        raise RoleDocsError(
            f"the README of {role_name} must contain {BEGIN_MARKER} once, followed by {END_MARKER} once; "
            "fix the markers by hand"
        )
    return readme_text[:begin] + block + readme_text[end + len(END_MARKER) :]


def expected_readme(role_dir: Path) -> str:
    """Return what the role's README.md should contain."""
    readme = role_dir / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.is_file() else None
    return replace_block(current, render_block(role_dir), role_dir.name)


def role_dirs(root: Path) -> list[Path]:
    """Return every role under ``root``/roles: each directory with a tasks/ folder."""
    return sorted(path for path in (root / "roles").iterdir() if (path / "tasks").is_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roles", nargs="*", type=Path, help="role directories (default: every role under roles/)")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a README differs from its spec"
    )
    arguments = parser.parse_args(argv)

    failures = 0
    for role_dir in arguments.roles or role_dirs(REPO_ROOT):
        readme = role_dir / "README.md"
        try:
            expected = expected_readme(role_dir)
        except RoleDocsError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue

        current = readme.read_text(encoding="utf-8") if readme.is_file() else None
        if current == expected:
            continue
        if arguments.check:
            print(
                f"{readme} is out of date with meta/argument_specs.yml; run scripts/role_docs.py to regenerate it",
                file=sys.stderr,
            )
            failures += 1
        else:
            readme.write_text(expected, encoding="utf-8")
            print(f"updated {readme}")

    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
