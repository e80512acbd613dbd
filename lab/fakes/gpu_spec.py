"""Build the GPU spec that the lab's simulated nvidia-smi reads on a host.

The lab writes the returned dict as JSON to ``/etc/mlinfra-lab/gpus.json`` in
each host container. ``lab/fakes/nvidia-smi`` prints it in nvidia-smi's own
formats. Drills edit the file to simulate faults:

``fault``
    null, or one of ``driver_not_loaded`` (exit code 9), ``no_devices``
    (exit code 6), ``gpu_lost`` (exit code 15, the GPU at ``fault_gpu_index``)
    and ``version_mismatch`` (exit code 18, user-space ``library_version``).
``gpus[*].mig_mode`` / ``gpus[*].mig_devices``
    MIG on or off, and the MIG devices that ``nvidia-smi -L`` lists.

UUIDs and serial numbers derive from the host name, so the same host always
gets the same values and no two hosts share one. PCI bus ids follow the
layout of the machine shape on Compute Engine.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog

SPEC_SCHEMA_VERSION = 1

FAULTS = ("driver_not_loaded", "no_devices", "gpu_lost", "version_mismatch")

# Newest CUDA version that each driver branch supports, which the bare
# nvidia-smi call prints in its header. A branch missing here prints N/A.
CUDA_VERSION_BY_BRANCH = {
    "470": "11.4",
    "510": "11.6",
    "515": "11.7",
    "520": "11.8",
    "525": "12.0",
    "530": "12.1",
    "535": "12.2",
    "545": "12.3",
    "550": "12.4",
    "555": "12.5",
    "560": "12.6",
    "565": "12.7",
    "570": "12.8",
    "575": "12.9",
    "580": "13.0",
}

# Board power limit in watts, for the table of the bare nvidia-smi call only.
POWER_LIMIT_WATTS = {
    "nvidia-tesla-p4": 75,
    "nvidia-tesla-p100": 250,
    "nvidia-tesla-v100": 300,
    "nvidia-tesla-t4": 70,
    "nvidia-l4": 72,
    "nvidia-tesla-a100": 400,
    "nvidia-a100-80gb": 400,
    "nvidia-h100-80gb": 700,
    "nvidia-h100-mega-80gb": 700,
    "nvidia-h200-141gb": 700,
}

# Multi-Instance GPU exists on A100, H100 and H200 only. Other models print
# [N/A] for the MIG mode.
MIG_CAPABLE = frozenset(
    {"nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb", "nvidia-h100-mega-80gb", "nvidia-h200-141gb"}
)

# PCI bus numbers of 8-GPU HGX boards as the guest OS lists them (a2 and a3 8g shapes).
HGX_8_BUSES = (0x04, 0x05, 0x0A, 0x0B, 0x84, 0x85, 0x8A, 0x8B)

_DRIVER_VERSION_RE = re.compile(r"^(?P<branch>\d{3})\.\d+(?:\.\d+)?$")
_UUID_NAMESPACE = uuid.UUID("6f1c7d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f")


def _pci_bus_ids(count: int) -> list[str]:
    if count == 8:
        return [f"00000000:{bus:02X}:00.0" for bus in HGX_8_BUSES]
    # Other counts sit on bus 0 from device slot 4 on. NOTE: a plausible layout
    # for a2 and g2 shapes, not checked against every real machine type.
    return [f"00000000:00:{slot:02X}.0" for slot in range(4, 4 + count)]


def _gpu_uuid(host_name: str, index: int) -> str:
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{host_name}/gpu/{index}')}"


def _serial(host_name: str, index: int) -> str:
    digest = hashlib.sha256(f"{host_name}/serial/{index}".encode()).hexdigest()
    return str(int(digest[:12], 16) % 10**13).zfill(13)


def cuda_version(driver_version: str) -> str | None:
    """Return the CUDA version of a driver's branch, or None for a branch this table lacks."""
    match = _DRIVER_VERSION_RE.match(driver_version)
    return CUDA_VERSION_BY_BRANCH.get(match.group("branch")) if match else None


def build_gpu_spec(
    host_name: str,
    machine_type: str,
    guest_accelerators: list[dict] | None,
    driver_version: str,
) -> dict:
    """Build the GPU spec of one lab host from its machine shape.

    ``guest_accelerators`` is the instance's ``guestAccelerators`` list as the
    Compute API returns it, or None for machine types with built-in GPUs.
    Raises ValueError for a driver version that is not BRANCH.MINOR[.PATCH],
    a machine type the GPU catalog does not know, or an unknown accelerator
    type.
    """
    if not _DRIVER_VERSION_RE.match(driver_version):
        raise ValueError(f"invalid driver_version {driver_version!r}: expected BRANCH.MINOR[.PATCH], e.g. 535.261.03")
    if not guest_accelerators and not gpu_catalog.is_known_machine_type(machine_type):
        raise ValueError(
            f"unknown machine_type {machine_type!r}: the GPU catalog (plugins/module_utils/gpu_catalog.py) "
            "does not say which GPUs it has; add it there"
        )

    accelerator_type, count = gpu_catalog.expected_gpus(machine_type, guest_accelerators)
    model = gpu_catalog.gpu_model(accelerator_type)
    if count and model is None:
        raise ValueError(
            f"unknown accelerator type {accelerator_type!r} on {host_name}: add it to GPU_MODELS in "
            "plugins/module_utils/gpu_catalog.py"
        )

    gpus = []
    for index, bus_id in enumerate(_pci_bus_ids(count)):
        gpus.append(
            {
                "index": index,
                "name": model.product_name,
                "uuid": _gpu_uuid(host_name, index),
                "serial": _serial(host_name, index),
                "pci_bus_id": bus_id,
                "memory_total_mib": model.memory_total_mib,
                "compute_capability": model.compute_capability,
                "power_limit_watts": POWER_LIMIT_WATTS.get(accelerator_type, 300),
                "persistence_mode": True,
                "mig_mode": False if accelerator_type in MIG_CAPABLE else None,
                "mig_devices": [],
                "ecc_mode": True,
            }
        )

    return {
        "schema_version": SPEC_SCHEMA_VERSION,
        "host_name": host_name,
        "machine_type": gpu_catalog.short_name(machine_type),
        "accelerator_type": accelerator_type,
        "nvswitch": gpu_catalog.has_nvswitch(machine_type),
        "driver_version": driver_version,
        "cuda_version": cuda_version(driver_version),
        "fault": None,
        "fault_gpu_index": 0,
        "library_version": None,
        "gpus": gpus,
    }


def mig_device_uuid(host_name: str, gpu_index: int, device_index: int) -> str:
    """Return the deterministic UUID of a MIG device, for drills that turn MIG on."""
    return f"MIG-{uuid.uuid5(_UUID_NAMESPACE, f'{host_name}/gpu/{gpu_index}/mig/{device_index}')}"
