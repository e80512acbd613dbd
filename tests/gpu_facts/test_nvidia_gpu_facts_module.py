"""Tests of the nvidia_gpu_facts module, run as Ansible runs it, against stub nvidia-smi binaries."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gpu_facts import outputs

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = REPO_ROOT / "plugins" / "modules" / "nvidia_gpu_facts.py"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def write_stub(directory: Path, output: tuple[int, str, str], name: str = "nvidia-smi", delay: int = 0) -> Path:
    """Write an executable that prints ``output`` and records its arguments."""
    rc, stdout, stderr = output
    stub = directory / name
    stub.write_text(
        "#!/usr/bin/env python3\n"
        "import sys, time\n"
        f"open({str(directory / 'calls.log')!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"time.sleep({delay})\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({rc})\n"
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub


def run_module(tmp_path: Path, args: dict) -> dict:
    """Run the module file the way Ansible's module runner does, with an args file."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / ".collections")}
    completed = subprocess.run(
        [sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    return json.loads(completed.stdout)


def test_module_h100_sets_facts(tmp_path):
    stub = write_stub(tmp_path, outputs.H100_X8)

    result = run_module(tmp_path, {"nvidia_smi_path": str(stub)})

    assert result["changed"] is False
    assert result["state"] == "ok"
    assert result["count"] == 8
    assert result["ansible_facts"]["nvidia_gpu"]["gpus"] == result["gpus"]
    assert result["ansible_facts"]["nvidia_gpu"]["state"] == "ok"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == [
        "--query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,persistence_mode,compute_cap,"
        "mig.mode.current,ecc.mode.current --format=csv,noheader,nounits"
    ]


@pytest.mark.parametrize(
    ("output", "state"),
    [
        (outputs.DRIVER_NOT_LOADED, "driver_not_loaded"),
        (outputs.NO_DEVICES, "no_devices"),
        (outputs.GPU_LOST, "gpu_lost"),
        (outputs.VERSION_MISMATCH, "version_mismatch"),
    ],
)
def test_module_failure_state_not_failed(tmp_path, output, state):
    stub = write_stub(tmp_path, output)

    result = run_module(tmp_path, {"nvidia_smi_path": str(stub)})

    assert result.get("failed") is not True
    assert result["state"] == state
    assert result["ansible_facts"]["nvidia_gpu"]["state"] == state
    assert result["count"] == 0


def test_module_missing_binary_not_installed(tmp_path):
    result = run_module(tmp_path, {"nvidia_smi_path": str(tmp_path / "absent" / "nvidia-smi")})

    assert result.get("failed") is not True
    assert result["state"] == "not_installed"
    assert str(tmp_path / "absent" / "nvidia-smi") in result["msg"]


def test_module_compute_cap_fallback(tmp_path):
    # A stub that rejects compute_cap like drivers before branch 510 do.
    stub = tmp_path / "nvidia-smi"
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls.log\n'
        'case "$1" in *compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\'; exit 2;; esac\n'
        'echo "0, Tesla T4, GPU-1, 00000000:00:04.0, 470.256.02, 15360, Enabled, [N/A], Enabled"\n'
    )
    stub.chmod(0o755)

    result = run_module(tmp_path, {"nvidia_smi_path": str(stub)})

    assert result["state"] == "ok"
    assert result["gpus"][0]["compute_capability"] is None
    assert result["gpus"][0]["driver_version"] == "470.256.02"
    # ansible-core 2.19 returns warnings as structured summaries, not strings.
    assert "does not support the query field 'compute_cap'" in json.dumps(result["warnings"])
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 2


def test_module_unparsable_fails_with_line(tmp_path):
    stub = write_stub(tmp_path, (0, "0, NVIDIA L4, surprise\n", ""))

    result = run_module(tmp_path, {"nvidia_smi_path": str(stub)})

    assert result["failed"] is True
    assert result["raw_line"] == "0, NVIDIA L4, surprise"
    assert "'0, NVIDIA L4, surprise'" in result["msg"]


def test_module_hung_binary_times_out(tmp_path):
    stub = write_stub(tmp_path, outputs.L4_X1, delay=5)

    result = run_module(tmp_path, {"nvidia_smi_path": str(stub), "timeout": 1})

    assert result["failed"] is True
    assert "did not answer within 1 seconds" in result["msg"]


def test_module_in_check_mode_playbook(tmp_path):
    stub = write_stub(tmp_path, outputs.L4_X1)
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"""
- name: Gather GPU facts in check mode
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather GPU facts
      mlinfra.platform.nvidia_gpu_facts:
        nvidia_smi_path: {stub}
      register: gpu_facts

    - name: Check the result and the fact
      ansible.builtin.assert:
        that:
          - gpu_facts is not changed
          - gpu_facts.count == 1
          - ansible_facts.nvidia_gpu.gpus[0].name == 'NVIDIA L4'
          - ansible_facts.nvidia_gpu.gpus[0].mig_mode is none
"""
    )
    completed = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "--check",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter={{ ansible_playbook_python }}",
            str(playbook),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok=2" in completed.stdout


def make_sysfs(root: Path, devices: dict[str, tuple[str, str]], secure_boot: bytes | None, module_version: str | None):
    """Build a sysfs tree with PCI functions (bus id: vendor, class), an efivar and the nvidia module."""
    for bus_id, (vendor, pci_class) in devices.items():
        device = root / "bus" / "pci" / "devices" / bus_id
        device.mkdir(parents=True)
        (device / "vendor").write_text(vendor + "\n")
        (device / "class").write_text(pci_class + "\n")
        (device / "device").write_text("0x2330\n")
    if secure_boot is not None:
        efivars = root / "firmware" / "efi" / "efivars"
        efivars.mkdir(parents=True)
        (efivars / "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c").write_bytes(secure_boot)
    if module_version is not None:
        (root / "module" / "nvidia").mkdir(parents=True)
        (root / "module" / "nvidia" / "version").write_text(module_version + "\n")


def test_module_host_probes(tmp_path):
    sysfs = tmp_path / "sys"
    devices = {
        "0000:00:00.0": ("0x8086", "0x060000"),
        "0000:04:00.0": ("0x10de", "0x030200"),
        "0000:05:00.0": ("0x10de", "0x030200"),
        "0000:06:00.0": ("0x10de", "0x068000"),
    }
    make_sysfs(sysfs, devices, b"\x06\x00\x00\x00\x01", "550.90.07")
    boot = tmp_path / "boot"
    boot.mkdir()
    for name in ("vmlinuz-6.1.0-9-cloud-amd64", "vmlinuz-6.1.0-28-cloud-amd64", "config-6.1.0-28-cloud-amd64"):
        (boot / name).write_text("")

    result = run_module(
        tmp_path,
        {
            "nvidia_smi_path": str(tmp_path / "absent"),
            "sysfs_path": str(sysfs),
            "boot_path": str(boot),
            "expected_accelerator_type": "nvidia-tesla-v100",
        },
    )

    assert [device["pci_bus_id"] for device in result["pci_gpus"]] == ["0000:04:00.0", "0000:05:00.0"]
    assert [device["pci_bus_id"] for device in result["pci_nvswitches"]] == ["0000:06:00.0"]
    assert result["pci_gpus"][0]["class"] == "0x030200"
    assert result["secure_boot"] is True
    assert result["kernel_module_version"] == "550.90.07"
    assert result["installed_kernels"] == ["6.1.0-9-cloud-amd64", "6.1.0-28-cloud-amd64"]
    assert result["newest_kernel"] == "6.1.0-28-cloud-amd64"
    assert result["expected_gpu"]["compute_capability"] == "7.0"
    assert result["expected_gpu"]["product_name"] == "Tesla V100-SXM2-16GB"
    assert result["ansible_facts"]["nvidia_gpu"]["pci_nvswitches"] == result["pci_nvswitches"]


def test_module_probes_without_uefi(tmp_path):
    sysfs = tmp_path / "sys"
    make_sysfs(sysfs, {}, None, None)

    result = run_module(
        tmp_path,
        {
            "nvidia_smi_path": str(tmp_path / "absent"),
            "sysfs_path": str(sysfs),
            "boot_path": str(tmp_path / "no-boot"),
            "expected_accelerator_type": "nvidia-b999",
        },
    )

    assert result["pci_gpus"] == []
    assert result["secure_boot"] is False
    assert result["kernel_module_version"] is None
    assert result["installed_kernels"] == []
    assert result["newest_kernel"] is None
    assert result["expected_gpu"] is None


def test_module_unreadable_efivar_is_null(tmp_path):
    sysfs = tmp_path / "sys"
    (sysfs / "firmware" / "efi").mkdir(parents=True)

    result = run_module(tmp_path, {"nvidia_smi_path": str(tmp_path / "absent"), "sysfs_path": str(sysfs)})

    assert result["secure_boot"] is None
