"""Unit tests of the nvidia-smi parsing helpers on realistic outputs."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils import nvidia_smi
from tests.gpu_facts import outputs


def test_h100_x8_all_fields():
    facts = nvidia_smi.interpret(*outputs.H100_X8)

    assert facts["state"] == "ok"
    assert facts["count"] == 8
    assert facts["driver_version"] == "550.90.07"
    assert [gpu["index"] for gpu in facts["gpus"]] == list(range(8))
    assert facts["gpus"][7] == {
        "index": 7,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-7c1f3e2a-5b4d-4e6f-9a8b-0c1d2e3f4a07",
        "pci_bus_id": "00000000:8B:00.0",
        "driver_version": "550.90.07",
        "memory_total_mib": 81559,
        "persistence_mode": True,
        "compute_capability": "9.0",
        "mig_mode": False,
        "ecc_mode": True,
    }
    assert "8 GPU(s) found (NVIDIA H100 80GB HBM3), driver 550.90.07" in facts["msg"]


def test_l4_mig_not_available_is_null():
    facts = nvidia_smi.interpret(*outputs.L4_X1)

    assert facts["state"] == "ok"
    assert facts["count"] == 1
    gpu = facts["gpus"][0]
    assert gpu["name"] == "NVIDIA L4"
    assert gpu["memory_total_mib"] == 23034
    assert gpu["compute_capability"] == "8.9"
    assert gpu["persistence_mode"] is False
    assert gpu["mig_mode"] is None
    assert gpu["ecc_mode"] is True


def test_a100_x16_indexes_and_bus_ids():
    facts = nvidia_smi.interpret(*outputs.A100_X16)

    assert facts["count"] == 16
    assert {gpu["name"] for gpu in facts["gpus"]} == {"NVIDIA A100-SXM4-40GB"}
    assert facts["gpus"][15]["pci_bus_id"] == "00000000:00:13.0"
    assert len({gpu["uuid"] for gpu in facts["gpus"]}) == 16
    assert all(gpu["memory_total_mib"] == 40960 for gpu in facts["gpus"])


def test_mig_enabled_per_gpu():
    facts = nvidia_smi.interpret(*outputs.A100_MIG)

    assert facts["count"] == 3
    assert [gpu["mig_mode"] for gpu in facts["gpus"]] == [True, True, False]


def test_not_supported_values_are_null():
    facts = nvidia_smi.interpret(*outputs.T4_NOT_SUPPORTED)

    gpu = facts["gpus"][0]
    assert facts["state"] == "ok"
    assert gpu["persistence_mode"] is None
    assert gpu["mig_mode"] is None
    assert gpu["ecc_mode"] is None
    assert gpu["compute_capability"] == "7.5"


@pytest.mark.parametrize(
    ("output", "state", "message_part"),
    [
        (outputs.DRIVER_NOT_LOADED, "driver_not_loaded", "kernel module is not loaded (nvidia-smi exit code 9)"),
        (outputs.NO_DEVICES, "no_devices", "sees no GPU (nvidia-smi exit code 6)"),
        (outputs.GPU_LOST, "gpu_lost", "GPU at PCI bus id 0000:8A:00.0 has fallen off the bus"),
        (outputs.GPU_LOST_UNKNOWN_ERROR, "gpu_lost", "GPU at PCI bus id 0000:00:05.0 has fallen off the bus"),
        (outputs.VERSION_MISMATCH, "version_mismatch", "user-space NVML library 550.127"),
    ],
)
def test_failure_states(output, state, message_part):
    facts = nvidia_smi.interpret(*output)

    assert facts["state"] == state
    assert message_part in facts["msg"]
    assert facts["count"] == 0
    assert facts["gpus"] == []
    assert facts["driver_version"] is None


def test_driver_not_loaded_by_message_only():
    # A wrapper script may lose the exit code, but the message still shows the state.
    facts = nvidia_smi.interpret(1, outputs.DRIVER_NOT_LOADED[1], "")

    assert facts["state"] == "driver_not_loaded"


def test_version_mismatch_on_stderr():
    facts = nvidia_smi.interpret(18, "", "Failed to initialize NVML: Driver/library version mismatch\n")

    assert facts["state"] == "version_mismatch"
    assert "Driver/library version mismatch" in facts["msg"]


def test_lost_gpu_value_in_row():
    stdout = outputs.H100_X8[1].replace("81559, Enabled", "[GPU is lost], [GPU is lost]", 1)

    facts = nvidia_smi.interpret(0, stdout, "")

    assert facts["state"] == "gpu_lost"


def test_empty_output_is_no_devices():
    facts = nvidia_smi.interpret(0, "\n", "")

    assert facts["state"] == "no_devices"


def test_not_installed_message():
    facts = nvidia_smi.not_installed("searched PATH")

    assert facts["state"] == "not_installed"
    assert "searched PATH" in facts["msg"]


def test_compute_cap_rejected_raises():
    with pytest.raises(nvidia_smi.UnsupportedFieldError) as error:
        nvidia_smi.interpret(*outputs.COMPUTE_CAP_REJECTED)

    assert error.value.field == "compute_cap"


def test_query_without_compute_cap():
    fields = nvidia_smi.without_field(nvidia_smi.QUERY_FIELDS, "compute_cap")
    line = "0, Tesla T4, GPU-1, 00000000:00:04.0, 470.256.02, 15360, Enabled, [N/A], Enabled"

    gpu = nvidia_smi.parse_query_line(line, fields)

    assert gpu["compute_capability"] is None
    assert gpu["ecc_mode"] is True
    assert set(gpu) == set(nvidia_smi.RESULT_KEYS)


def test_query_command_field_order():
    command = nvidia_smi.query_command("/usr/bin/nvidia-smi")

    assert command == [
        "/usr/bin/nvidia-smi",
        "--query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,persistence_mode,compute_cap,"
        "mig.mode.current,ecc.mode.current",
        "--format=csv,noheader,nounits",
    ]


def test_memory_with_units_suffix():
    line = "0, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, 23034 MiB, Enabled, 8.9, [N/A], Enabled"

    assert nvidia_smi.parse_query_line(line)["memory_total_mib"] == 23034


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("0, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, 23034, Enabled, 8.9, [N/A]", "expected 10"),
        ("0, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, lots, Enabled, 8.9, [N/A], Enabled", "memory.total"),
        ("0, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, 23034, Maybe, 8.9, [N/A], Enabled", "persistence_mode"),
        ("x, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, 23034, Enabled, 8.9, [N/A], Enabled", "index"),
        ("0, NVIDIA L4, GPU-1, 00000000:00:03.0, 535.183.01, 23034, Enabled, nine, [N/A], Enabled", "compute_cap"),
    ],
)
def test_unparsable_line_names_line(line, reason):
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as error:
        nvidia_smi.interpret(0, line + "\n", "")

    assert reason in str(error.value)
    assert error.value.line == line


def test_unknown_exit_code_raises():
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as error:
        nvidia_smi.interpret(4, "Insufficient Permissions\n", "")

    assert "exit code 4" in str(error.value)
    assert "Insufficient Permissions" in error.value.line


@pytest.mark.parametrize(
    ("vendor", "pci_class", "kind"),
    [
        ("0x10de\n", "0x030200\n", "gpu"),
        ("0x10de", "0x030000", "gpu"),
        ("0x10DE", "0x068000", "nvswitch"),
        ("0x10de", "0x040300", None),
        ("0x8086", "0x030000", None),
    ],
)
def test_pci_function_kind(vendor, pci_class, kind):
    assert nvidia_smi.pci_function_kind(vendor, pci_class) == kind


@pytest.mark.parametrize(
    ("content", "state"),
    [
        (b"\x06\x00\x00\x00\x01", True),
        (b"\x06\x00\x00\x00\x00", False),
        (b"\x06\x00", None),
    ],
)
def test_parse_secure_boot(content, state):
    assert nvidia_smi.parse_secure_boot(content) is state


def test_kernel_release_order():
    releases = ["6.1.0-28-cloud-amd64", "6.1.0-9-cloud-amd64", "6.10.0-1-cloud-amd64", "6.1.0-30-cloud-amd64"]

    ordered = sorted(releases, key=nvidia_smi.kernel_release_key)

    assert ordered == ["6.1.0-9-cloud-amd64", "6.1.0-28-cloud-amd64", "6.1.0-30-cloud-amd64", "6.10.0-1-cloud-amd64"]
