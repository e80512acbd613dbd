"""Shared pytest setup: make the checkout importable as its own collection."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The repository is the collection mlinfra.platform; .collections links it in
# under ansible_collections/, so tests import plugins the way Ansible does.
for path in (REPO_ROOT / ".collections", REPO_ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
