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

# Scenarios that boot a full VM. Where KVM cannot boot the guest (the build
# machines' kvm_pvm), QEMU emulates the CPU and one run takes over 40 minutes,
# so they run only when asked for (docs/testing-tiers.md).
VM_SCENARIOS = {"nvidia_driver_vm"}
VM_TIER_VARIABLE = "MLINFRA_VM_TIER"

pytestmark = [pytest.mark.molecule, pytest.mark.slow]


def scenario_param(scenario: str):
    if scenario not in VM_SCENARIOS or os.environ.get(VM_TIER_VARIABLE) == "1":
        return scenario
    reason = f"{scenario} boots a VM, over 40 minutes under QEMU's emulator; set {VM_TIER_VARIABLE}=1 to run it"
    return pytest.param(scenario, marks=pytest.mark.skip(reason=reason))


@pytest.mark.parametrize("scenario", [scenario_param(name) for name in SCENARIOS])
def test_molecule_scenario(scenario):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        # A VM scenario under QEMU's emulator needs far longer than a container one.
        timeout=5400 if scenario in VM_SCENARIOS else 1800,
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
