"""nvidia-smi outputs as real hosts print them, for the parser and module tests.

Each entry is (exit code, stdout, stderr) of
``nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,
persistence_mode,compute_cap,mig.mode.current,ecc.mode.current --format=csv,noheader,nounits``.
Bus ids follow the layouts of Compute Engine's a3-highgpu-8g, g2-standard-8 and
a2-megagpu-16g machine types.
"""

from __future__ import annotations

H100_BUS_IDS = ["04", "05", "0A", "0B", "84", "85", "8A", "8B"]

H100_X8 = (
    0,
    "".join(
        f"{index}, NVIDIA H100 80GB HBM3, GPU-7c1f3e2a-5b4d-4e6f-9a8b-0c1d2e3f4a{index:02d}, "
        f"00000000:{bus}:00.0, 550.90.07, 81559, Enabled, 9.0, Disabled, Enabled\n"
        for index, bus in enumerate(H100_BUS_IDS)
    ),
    "",
)

L4_X1 = (
    0,
    "0, NVIDIA L4, GPU-3e9b8c1d-2a4f-4b6e-8d0c-1f2e3d4c5b6a, 00000000:00:03.0, 535.183.01, 23034, Disabled, 8.9, "
    "[N/A], Enabled\n",
    "",
)

A100_X16 = (
    0,
    "".join(
        f"{index}, NVIDIA A100-SXM4-40GB, GPU-a100a100-0000-4000-8000-0000000000{index:02d}, "
        f"00000000:00:{index + 4:02X}.0, 535.183.01, 40960, Enabled, 8.0, Disabled, Enabled\n"
        for index in range(16)
    ),
    "",
)

# Two A100s with MIG on and one with MIG off. The GPU-level query lists the
# physical GPUs only, never their MIG instances.
A100_MIG = (
    0,
    "0, NVIDIA A100-SXM4-40GB, GPU-5d6e7f80-91a2-4b3c-8d4e-5f60718293a4, 00000000:00:04.0, 550.90.07, 40960, Enabled, "
    "8.0, Enabled, Enabled\n"
    "1, NVIDIA A100-SXM4-40GB, GPU-5d6e7f80-91a2-4b3c-8d4e-5f60718293a5, 00000000:00:05.0, 550.90.07, 40960, Enabled, "
    "8.0, Enabled, Enabled\n"
    "2, NVIDIA A100-SXM4-40GB, GPU-5d6e7f80-91a2-4b3c-8d4e-5f60718293a6, 00000000:00:06.0, 550.90.07, 40960, Enabled, "
    "8.0, Disabled, Enabled\n",
    "",
)

# A Tesla T4 in a VM where the hypervisor hides ECC and the persistence mode.
T4_NOT_SUPPORTED = (
    0,
    "0, Tesla T4, GPU-0f1e2d3c-4b5a-4968-8776-655443322110, 00000000:00:04.0, 535.183.01, 15360, [Not Supported], 7.5, "
    "[N/A], [Not Supported]\n",
    "",
)

DRIVER_NOT_LOADED = (
    9,
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA "
    "driver is installed and running.\n\n",
    "",
)

NO_DEVICES = (6, "No devices were found\n", "")

GPU_LOST = (
    15,
    "Unable to determine the device handle for GPU0000:8A:00.0: GPU is lost.  Reboot the system to recover this GPU\n",
    "",
)

# Older drivers print "Unknown Error" for a lost GPU, so only the exit code shows the state.
GPU_LOST_UNKNOWN_ERROR = (15, "Unable to determine the device handle for GPU 0000:00:05.0: Unknown Error\n", "")

VERSION_MISMATCH = (
    18,
    "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.127\n",
    "",
)

# Drivers before branch 510 do not know the compute_cap field.
COMPUTE_CAP_REJECTED = (
    2,
    'Field "compute_cap" is not a valid field to query.\n\n',
    "",
)
