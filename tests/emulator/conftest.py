"""Fixtures for the Compute API emulator tests."""

from __future__ import annotations

import pytest

from lab.emulator import ComputeEmulator


@pytest.fixture
def emulator():
    """An empty emulator on a free loopback port, stopped after the test."""
    with ComputeEmulator(port=0) as running:
        yield running
