"""Run every Molecule scenario under molecule/ as one pytest case each.

A scenario's own sequence (check mode, converge, idempotence, verify) is the
test; pytest only collects them so that `make test` reports them with the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(path.parent.name for path in (REPO_ROOT / "molecule").glob("*/molecule.yml"))

pytestmark = [pytest.mark.molecule, pytest.mark.slow]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-15000:])
        sys.stderr.write(result.stderr[-5000:])
    assert result.returncode == 0, f"molecule test -s {scenario} failed; its output is above"


def test_every_role_has_a_scenario():
    roles = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks").is_dir())
    covered = {role for role in roles for scenario in SCENARIOS if scenario.startswith(role)}
    # preflight only reads inventory facts; the lab end-to-end tests cover it.
    missing = [role for role in roles if role not in covered and role != "preflight"]
    assert missing == [], f"roles without a Molecule scenario: {missing}"
