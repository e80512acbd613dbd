"""Fixtures of the Terraform checks: the configuration of this checkout, parsed once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]

# The test modules import tf_support and each other by plain name, which
# needs this directory on sys.path in every pytest import mode.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from tf_support.model import TerraformRepo, load_repo  # noqa: E402


@pytest.fixture(scope="session")
def tf_repo() -> TerraformRepo:
    """Return the Terraform configuration and inventories of this checkout."""
    return load_repo(REPO_ROOT)
