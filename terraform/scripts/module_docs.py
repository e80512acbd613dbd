#!/usr/bin/env python3
"""Write the input and output tables of each Terraform module README from its variables and outputs.

The tables sit between two marker lines in terraform/modules/<module>/README.md,
and everything outside the markers is kept as written. ``--check`` writes nothing
and exits 1 when a table is out of date. Needs python-hcl2 (in .venv).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

try:
    import hcl2
    from hcl2 import SerializationOptions
except ImportError:  # pragma: no cover - depends on the interpreter used
    sys.exit("python-hcl2 is missing: run this script with .venv/bin/python (pip install python-hcl2).")

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO_ROOT / "terraform" / "modules"
BEGIN_MARKER = "<!-- BEGIN module_docs.py: generated from variables.tf and outputs.tf -->"
END_MARKER = "<!-- END module_docs.py -->"
HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)


def load_blocks(module_dir: Path, kind: str) -> dict[str, dict]:
    """Return the variable or output blocks of a module directory, by name."""
    blocks: dict[str, dict] = {}
    for path in sorted(module_dir.glob("*.tf")):
        with path.open() as handle:
            data = hcl2.load(handle, serialization_options=HCL_OPTIONS)
        for entry in data.get(kind, []):
            blocks.update({name: body for name, body in entry.items() if not name.startswith("__")})
    return blocks


def plain_text(raw) -> str:
    """Turn a description (a string or a heredoc) into one line."""
    text = str(raw)
    if text.startswith("<<"):
        lines = text.split("\n")[1:-1]
        text = textwrap.dedent("\n".join(lines))
    return " ".join(text.split())


def expression_text(raw) -> str:
    """Render a default value for a table cell."""
    if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}"):
        return raw[2:-1]
    if isinstance(raw, str):
        return json.dumps(raw)
    return json.dumps(raw, separators=(", ", ": "))


def type_text(raw) -> str:
    """Render a type constraint: python-hcl2 returns string for a keyword type and ${...} otherwise."""
    text = str(raw)
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_tables(module_dir: Path) -> str:
    """Return the Markdown between the markers for one module."""
    lines = ["## Inputs", "", "| Name | Type | Default | Required | Description |", "|---|---|---|---|---|"]
    for name, body in sorted(load_blocks(module_dir, "variable").items()):
        required = "default" not in body
        default = "" if required else f"`{cell(expression_text(body['default']))}`"
        type_cell = f"`{cell(type_text(body.get('type', 'any')))}`"
        lines.append(
            f"| `{name}` | {type_cell} | {default} | {'yes' if required else 'no'} | "
            f"{cell(plain_text(body.get('description', '')))} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name, body in sorted(load_blocks(module_dir, "output").items()):
        lines.append(f"| `{name}` | {cell(plain_text(body.get('description', '')))} |")
    return "\n".join(lines)


def updated_readme(readme: Path, tables: str) -> str:
    """Return the README text with the generated section replaced (or appended when it has no markers)."""
    text = readme.read_text() if readme.exists() else f"# {readme.parent.name}\n"
    section = f"{BEGIN_MARKER}\n{tables}\n{END_MARKER}"
    pattern = re.compile(re.escape(BEGIN_MARKER) + r".*?" + re.escape(END_MARKER), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: section, text)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a README is out of date instead of writing it")
    args = parser.parse_args(argv)

    stale = []
    for module_dir in sorted(path for path in MODULES_DIR.iterdir() if path.is_dir()):
        readme = module_dir / "README.md"
        expected = updated_readme(readme, render_tables(module_dir))
        current = readme.read_text() if readme.exists() else None
        if current == expected:
            continue
        relative = readme.relative_to(REPO_ROOT)
        if args.check:
            stale.append(str(relative))
        else:
            readme.write_text(expected)
            print(f"wrote {relative}")

    if stale:
        print(
            f"{', '.join(stale)}: input or output tables out of date with the module variables and outputs. "
            "Fix: run .venv/bin/python terraform/scripts/module_docs.py"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
