"""Tests of the lab's GPU spec builder and its simulated nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils import nvidia_smi
from lab.fakes.gpu_spec import build_gpu_spec, mig_device_uuid

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE = REPO_ROOT / "lab" / "fakes" / "nvidia-smi"


def run_fake(spec_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    # The fake runs under the system Python on lab hosts, so the test uses a plain interpreter too.
    env = {**os.environ, "MLINFRA_LAB_GPU_SPEC": str(spec_path)}
    return subprocess.run(
        [sys.executable, "-I", str(FAKE), *arguments], capture_output=True, text=True, env=env, check=False
    )


def write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "gpus.json"
    path.write_text(json.dumps(spec))
    return path


def module_query(spec_path: Path) -> subprocess.CompletedProcess:
    command = nvidia_smi.query_command(str(FAKE))
    return run_fake(spec_path, *command[1:])


def test_spec_a3_highgpu_8g():
    spec = build_gpu_spec("gpu-a3-0", "a3-highgpu-8g", None, "550.90.07")

    assert len(spec["gpus"]) == 8
    assert spec["nvswitch"] is True
    assert spec["accelerator_type"] == "nvidia-h100-80gb"
    assert spec["cuda_version"] == "12.4"
    assert spec["fault"] is None
    assert {gpu["name"] for gpu in spec["gpus"]} == {"NVIDIA H100 80GB HBM3"}
    assert [gpu["pci_bus_id"] for gpu in spec["gpus"]][:3] == [
        "00000000:04:00.0",
        "00000000:05:00.0",
        "00000000:0A:00.0",
    ]
    assert len({gpu["uuid"] for gpu in spec["gpus"]}) == 8
    assert all(gpu["mig_mode"] is False for gpu in spec["gpus"])


def test_spec_deterministic_per_host():
    first = build_gpu_spec("lab-infer-l4-0", "g2-standard-8", None, "535.261.03")
    again = build_gpu_spec("lab-infer-l4-0", "g2-standard-8", None, "535.261.03")
    other = build_gpu_spec("lab-infer-l4-1", "g2-standard-8", None, "535.261.03")

    assert first == again
    assert first["gpus"][0]["uuid"] != other["gpus"][0]["uuid"]
    assert first["gpus"][0]["serial"] != other["gpus"][0]["serial"]
    assert first["gpus"][0]["pci_bus_id"] == other["gpus"][0]["pci_bus_id"]


def test_spec_l4_has_no_mig():
    spec = build_gpu_spec("lab-infer-l4-0", "g2-standard-8", None, "535.261.03")

    assert len(spec["gpus"]) == 1
    assert spec["gpus"][0]["mig_mode"] is None
    assert spec["gpus"][0]["memory_total_mib"] == 23034
    assert spec["nvswitch"] is False


def test_spec_n1_attached_t4():
    accelerators = [
        {"acceleratorType": "projects/p/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 2}
    ]

    spec = build_gpu_spec("n1-t4-0", "n1-standard-8", accelerators, "535.261.03")

    assert [gpu["name"] for gpu in spec["gpus"]] == ["Tesla T4", "Tesla T4"]
    assert spec["gpus"][1]["compute_capability"] == "7.5"


def test_spec_cpu_only_machine():
    spec = build_gpu_spec("cpu-0", "e2-standard-4", None, "535.261.03")

    assert spec["gpus"] == []
    assert spec["accelerator_type"] is None


@pytest.mark.parametrize(
    ("machine_type", "accelerators", "driver_version", "message"),
    [
        ("g2-standard-8", None, "535", "invalid driver_version '535'"),
        ("a3-newshape-8g", None, "550.90.07", "unknown machine_type 'a3-newshape-8g'"),
        ("n1-standard-4", [{"acceleratorType": "nvidia-b200", "acceleratorCount": 1}], "550.90.07", "'nvidia-b200'"),
    ],
)
def test_spec_invalid_input(machine_type, accelerators, driver_version, message):
    with pytest.raises(ValueError, match=message):
        build_gpu_spec("host-0", machine_type, accelerators, driver_version)


def test_fake_round_trip_parses(tmp_path):
    spec = build_gpu_spec("gpu-a2-0", "a2-megagpu-16g", None, "535.261.03")
    path = write_spec(tmp_path, spec)

    completed = module_query(path)
    facts = nvidia_smi.interpret(completed.returncode, completed.stdout, completed.stderr)

    assert facts["state"] == "ok"
    assert facts["count"] == 16
    assert facts["driver_version"] == "535.261.03"
    for gpu, expected in zip(facts["gpus"], spec["gpus"], strict=True):
        assert gpu["uuid"] == expected["uuid"]
        assert gpu["pci_bus_id"] == expected["pci_bus_id"]
        assert gpu["name"] == "NVIDIA A100-SXM4-40GB"
        assert gpu["memory_total_mib"] == 40960
        assert gpu["compute_capability"] == "8.0"
        assert gpu["mig_mode"] is False
        assert gpu["ecc_mode"] is True
        assert gpu["persistence_mode"] is True


def test_fake_l4_prints_na(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03"))

    completed = run_fake(path, "--query-gpu=name,mig.mode.current,gom.current,fan.speed", "--format=csv,noheader")

    assert completed.returncode == 0
    assert completed.stdout == "NVIDIA L4, [N/A], [Not Supported], [N/A]\n"


def test_fake_header_and_units(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03"))

    completed = run_fake(path, "--query-gpu", "index,memory.total,utilization.gpu", "--format", "csv")

    assert completed.stdout.splitlines() == ["index, memory.total [MiB], utilization.gpu [%]", "0, 23034 MiB, 0 %"]


@pytest.mark.parametrize(
    ("fault", "exit_code", "state"),
    [
        ("driver_not_loaded", 9, "driver_not_loaded"),
        ("no_devices", 6, "no_devices"),
        ("gpu_lost", 15, "gpu_lost"),
        ("version_mismatch", 18, "version_mismatch"),
    ],
)
def test_fake_fault_states(tmp_path, fault, exit_code, state):
    spec = build_gpu_spec("gpu-a3-0", "a3-highgpu-8g", None, "550.90.07")
    spec["fault"] = fault
    spec["fault_gpu_index"] = 6
    path = write_spec(tmp_path, spec)

    completed = module_query(path)
    facts = nvidia_smi.interpret(completed.returncode, completed.stdout, completed.stderr)

    assert completed.returncode == exit_code
    assert facts["state"] == state
    for arguments in ([], ["-L"]):
        assert run_fake(path, *arguments).returncode == exit_code


def test_fake_gpu_lost_names_bus(tmp_path):
    spec = build_gpu_spec("gpu-a3-0", "a3-highgpu-8g", None, "550.90.07")
    spec["fault"] = "gpu_lost"
    spec["fault_gpu_index"] = 6
    path = write_spec(tmp_path, spec)

    facts = nvidia_smi.interpret(*_result(module_query(path)))

    assert "0000:8A:00.0" in facts["msg"]


def test_fake_version_mismatch_library(tmp_path):
    spec = build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03")
    spec["fault"] = "version_mismatch"
    spec["library_version"] = "550.163"
    path = write_spec(tmp_path, spec)

    completed = run_fake(path)

    assert "Failed to initialize NVML: Driver/library version mismatch" in completed.stdout
    assert "NVML library version: 550.163" in completed.stdout


def test_fake_cpu_host_no_devices(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("cpu-0", "e2-standard-4", None, "535.261.03"))

    completed = module_query(path)

    assert completed.returncode == 6
    assert completed.stdout == "No devices were found\n"


def test_fake_list_gpus_with_mig(tmp_path):
    spec = build_gpu_spec("a100-0", "a2-highgpu-2g", None, "550.90.07")
    spec["gpus"][0]["mig_mode"] = True
    spec["gpus"][0]["mig_devices"] = [
        {"profile": "3g.20gb", "uuid": mig_device_uuid("a100-0", 0, 0)},
        {"profile": "3g.20gb", "uuid": mig_device_uuid("a100-0", 0, 1)},
    ]
    path = write_spec(tmp_path, spec)

    lines = run_fake(path, "-L").stdout.splitlines()

    assert lines[0] == f"GPU 0: NVIDIA A100-SXM4-40GB (UUID: {spec['gpus'][0]['uuid']})"
    assert lines[1] == f"  MIG 3g.20gb         Device  0: (UUID: {mig_device_uuid('a100-0', 0, 0)})"
    assert lines[3].startswith("GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-")
    assert len(lines) == 4


def test_fake_select_by_id(tmp_path):
    spec = build_gpu_spec("gpu-a3-0", "a3-highgpu-8g", None, "550.90.07")
    path = write_spec(tmp_path, spec)

    by_index = run_fake(path, "--query-gpu=index", "--format=csv,noheader", "-i", "2,5")
    by_uuid = run_fake(path, "--query-gpu=index", "--format=csv,noheader", f"--id={spec['gpus'][7]['uuid']}")
    missing = run_fake(path, "--query-gpu=index", "--format=csv,noheader", "-i", "9")

    assert by_index.stdout == "2\n5\n"
    assert by_uuid.stdout == "7\n"
    assert missing.returncode == 6


def test_fake_table_layout(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-24", None, "535.261.03"))

    completed = run_fake(path)
    boxed = [line for line in completed.stdout.splitlines()[1:] if line.startswith(("|", "+"))]

    assert completed.returncode == 0
    assert "Driver Version: 535.261.03" in completed.stdout
    assert "CUDA Version: 12.2" in completed.stdout
    assert completed.stdout.count("NVIDIA L4") == 2
    assert {len(line) for line in boxed} == {91}


def test_fake_rejects_unknown_field(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03"))

    completed = run_fake(path, "--query-gpu=index,clocks.warp", "--format=csv")

    assert completed.returncode == 2
    assert completed.stdout.startswith('Field "clocks.warp" is not a valid field to query.')


def test_fake_missing_spec(tmp_path):
    completed = run_fake(tmp_path / "absent.json", "-L")

    assert completed.returncode == 255
    assert "absent.json is missing" in completed.stderr


def test_fake_invalid_fault(tmp_path):
    spec = build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03")
    spec["fault"] = "melted"

    completed = run_fake(write_spec(tmp_path, spec), "-L")

    assert completed.returncode == 255
    assert "invalid fault 'melted'" in completed.stderr


def test_fake_unsupported_option(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-4", None, "535.261.03"))

    completed = run_fake(path, "-pm", "1")

    assert completed.returncode == 2
    assert "does not support '-pm'" in completed.stderr


def test_fake_version_output(tmp_path):
    path = write_spec(tmp_path, build_gpu_spec("l4-0", "g2-standard-4", None, "550.163.01"))

    completed = run_fake(path, "--version")

    assert "DRIVER version      : 550.163.01" in completed.stdout
    assert "CUDA Version        : 12.4" in completed.stdout


def _result(completed: subprocess.CompletedProcess) -> tuple[int, str, str]:
    return completed.returncode, completed.stdout, completed.stderr


def test_module_reads_fake(tmp_path):
    spec = build_gpu_spec("lab-train-a100-0", "a2-highgpu-1g", None, "535.261.03")
    path = write_spec(tmp_path, spec)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"nvidia_smi_path": str(FAKE)}}))
    env = {**os.environ, "MLINFRA_LAB_GPU_SPEC": str(path), "PYTHONPATH": str(REPO_ROOT / ".collections")}

    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "plugins" / "modules" / "nvidia_gpu_facts.py"), str(args_file)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    result = json.loads(completed.stdout)

    assert result["state"] == "ok"
    assert result["count"] == 1
    assert result["gpus"][0]["uuid"] == spec["gpus"][0]["uuid"]
    assert result["gpus"][0]["name"] == "NVIDIA A100-SXM4-40GB"
