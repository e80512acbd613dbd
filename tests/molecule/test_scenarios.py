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

# Scenarios that boot a full VM. They run where QEMU can use KVM. Where it
# cannot (the build machines' kvm_pvm), QEMU emulates the CPU and one run
# takes over an hour, so they run there only when asked for
# (docs/testing-tiers.md). MLINFRA_VM_TIER=1 runs them anyway, 0 never.
VM_SCENARIOS = {"nvidia_driver_vm"}
VM_TIER_VARIABLE = "MLINFRA_VM_TIER"

pytestmark = [pytest.mark.molecule, pytest.mark.slow]


def vm_accelerator() -> str:
    """Return the QEMU accelerator that the VM image build and scenario would use."""
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-vm-image.sh"), "--print-qemu-options"],
        capture_output=True,
        text=True,
        check=True,
    )
    options = result.stdout.split()
    return options[options.index("-accel") + 1]


def vm_tier_skip_reason(scenario: str) -> str | None:
    choice = os.environ.get(VM_TIER_VARIABLE) or "auto"
    if choice not in ("auto", "0", "1"):
        raise pytest.UsageError(
            f"invalid {VM_TIER_VARIABLE}={choice!r}: set auto (the default), 1 to run {scenario} or 0 to skip it"
        )
    if choice == "1":
        return None
    if choice == "0":
        return f"{VM_TIER_VARIABLE}=0 turns the VM scenarios off"
    if os.geteuid() != 0:
        return f"{scenario} builds its VM image with loop devices and chroot, which needs root"
    accelerator = vm_accelerator()
    if accelerator == "kvm":
        return None
    return (
        f"{scenario} boots a VM and QEMU would emulate its CPU ({accelerator}: no KVM that boots the guest here), "
        f"which takes over an hour; set {VM_TIER_VARIABLE}=1 to run it anyway"
    )


def scenario_param(scenario: str):
    reason = vm_tier_skip_reason(scenario) if scenario in VM_SCENARIOS else None
    if reason is None:
        return scenario
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


@pytest.mark.parametrize(
    ("choice", "accelerator", "runs"),
    [("1", "tcg", True), ("0", "kvm", False), ("", "kvm", True), ("auto", "kvm", True), ("auto", "tcg", False)],
)
def test_vm_tier_choice(monkeypatch, choice, accelerator, runs):
    monkeypatch.setenv(VM_TIER_VARIABLE, choice)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sys.modules[__name__], "vm_accelerator", lambda: accelerator)
    reason = vm_tier_skip_reason("nvidia_driver_vm")
    assert (reason is None) is runs, reason
    if not runs:
        assert VM_TIER_VARIABLE in reason


def test_vm_tier_rejects_an_unknown_choice(monkeypatch):
    monkeypatch.setenv(VM_TIER_VARIABLE, "yes")
    with pytest.raises(pytest.UsageError, match="invalid MLINFRA_VM_TIER='yes': set auto"):
        vm_tier_skip_reason("nvidia_driver_vm")


def test_vm_accelerator_is_known():
    assert vm_accelerator() in ("kvm", "tcg")
