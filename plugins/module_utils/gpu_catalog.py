# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU models on Compute Engine, by accelerator type and by machine type.

Machine types of the a2, a3 and g2 families carry their GPUs built in, so the
Compute API reports no ``guestAccelerators`` for them; the only source of the
GPU model and count is the machine type name. N1 machines get GPUs attached
through an accelerator type instead.

Facts come from Google's "GPU machine types" page (checked 2026-12) and from
the product names and memory sizes that ``nvidia-smi`` prints for each model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuModel:
    """One GPU product as the Compute API and ``nvidia-smi`` name it."""

    accelerator_type: str
    product_name: str
    memory_total_mib: int
    compute_capability: str


GPU_MODELS: dict[str, GpuModel] = {
    model.accelerator_type: model
    for model in (
        GpuModel("nvidia-tesla-p4", "Tesla P4", 7680, "6.1"),
        GpuModel("nvidia-tesla-p100", "Tesla P100-PCIE-16GB", 16384, "6.0"),
        GpuModel("nvidia-tesla-v100", "Tesla V100-SXM2-16GB", 16384, "7.0"),
        GpuModel("nvidia-tesla-t4", "Tesla T4", 15360, "7.5"),
        GpuModel("nvidia-l4", "NVIDIA L4", 23034, "8.9"),
        GpuModel("nvidia-tesla-a100", "NVIDIA A100-SXM4-40GB", 40960, "8.0"),
        GpuModel("nvidia-a100-80gb", "NVIDIA A100-SXM4-80GB", 81920, "8.0"),
        GpuModel("nvidia-h100-80gb", "NVIDIA H100 80GB HBM3", 81559, "9.0"),
        GpuModel("nvidia-h100-mega-80gb", "NVIDIA H100 80GB HBM3", 81559, "9.0"),
        GpuModel("nvidia-h200-141gb", "NVIDIA H200", 143771, "9.0"),
    )
}


@dataclass(frozen=True)
class BuiltinGpus:
    """GPUs that come with a machine type, with no accelerator block."""

    accelerator_type: str
    count: int
    # HGX boards with 8 or 16 GPUs connect them through NVSwitch, which needs
    # NVIDIA's fabric manager running at exactly the driver's version.
    nvswitch: bool


BUILTIN_GPU_MACHINE_TYPES: dict[str, BuiltinGpus] = {
    "a2-highgpu-1g": BuiltinGpus("nvidia-tesla-a100", 1, False),
    "a2-highgpu-2g": BuiltinGpus("nvidia-tesla-a100", 2, False),
    "a2-highgpu-4g": BuiltinGpus("nvidia-tesla-a100", 4, False),
    "a2-highgpu-8g": BuiltinGpus("nvidia-tesla-a100", 8, True),
    "a2-megagpu-16g": BuiltinGpus("nvidia-tesla-a100", 16, True),
    "a2-ultragpu-1g": BuiltinGpus("nvidia-a100-80gb", 1, False),
    "a2-ultragpu-2g": BuiltinGpus("nvidia-a100-80gb", 2, False),
    "a2-ultragpu-4g": BuiltinGpus("nvidia-a100-80gb", 4, False),
    "a2-ultragpu-8g": BuiltinGpus("nvidia-a100-80gb", 8, True),
    "a3-highgpu-1g": BuiltinGpus("nvidia-h100-80gb", 1, False),
    "a3-highgpu-2g": BuiltinGpus("nvidia-h100-80gb", 2, False),
    "a3-highgpu-4g": BuiltinGpus("nvidia-h100-80gb", 4, False),
    "a3-highgpu-8g": BuiltinGpus("nvidia-h100-80gb", 8, True),
    "a3-edgegpu-8g": BuiltinGpus("nvidia-h100-80gb", 8, True),
    "a3-megagpu-8g": BuiltinGpus("nvidia-h100-mega-80gb", 8, True),
    "a3-ultragpu-8g": BuiltinGpus("nvidia-h200-141gb", 8, True),
    "g2-standard-4": BuiltinGpus("nvidia-l4", 1, False),
    "g2-standard-8": BuiltinGpus("nvidia-l4", 1, False),
    "g2-standard-12": BuiltinGpus("nvidia-l4", 1, False),
    "g2-standard-16": BuiltinGpus("nvidia-l4", 1, False),
    "g2-standard-24": BuiltinGpus("nvidia-l4", 2, False),
    "g2-standard-32": BuiltinGpus("nvidia-l4", 1, False),
    "g2-standard-48": BuiltinGpus("nvidia-l4", 4, False),
    "g2-standard-96": BuiltinGpus("nvidia-l4", 8, False),
}

# Families whose machine types never have built-in GPUs. N1 takes attached
# GPUs through guestAccelerators; the others take none at all.
CPU_ONLY_FAMILIES = frozenset(
    {"n1", "n2", "n2d", "n4", "e2", "c2", "c2d", "c3", "c3d", "c4", "t2d", "t2a", "m1", "m2", "m3"}
)

# Families with built-in GPUs. A machine type of these families that is not in
# BUILTIN_GPU_MACHINE_TYPES is unknown to this table, not GPU-less.
BUILTIN_GPU_FAMILIES = frozenset({"a2", "a3", "g2"})

_MACHINE_TYPE_RE = re.compile(r"^(?:custom-|(?P<family>[a-z][a-z0-9]*)-)")


def short_name(url_or_name: str) -> str:
    """Return the last path segment of a Compute API URL, or the name itself."""
    return url_or_name.rstrip("/").rsplit("/", 1)[-1]


def machine_family(machine_type: str) -> str | None:
    """Return the family of a machine type (``a2`` for ``a2-highgpu-1g``).

    Custom machine types without a family prefix (``custom-4-16384``) are N1.
    """
    name = short_name(machine_type)
    if name.startswith("custom-"):
        return "n1"
    match = _MACHINE_TYPE_RE.match(name)
    return match.group("family") if match else None


def is_known_machine_type(machine_type: str) -> bool:
    """Return True when this table knows which GPUs a machine type has."""
    name = short_name(machine_type)
    if name in BUILTIN_GPU_MACHINE_TYPES:
        return True
    return machine_family(name) in CPU_ONLY_FAMILIES


def expected_gpus(machine_type: str, guest_accelerators: list[dict] | None = None) -> tuple[str | None, int]:
    """Return (accelerator type, count) that a VM of this shape should have.

    ``guest_accelerators`` is the instance's ``guestAccelerators`` list as the
    Compute API returns it (each entry with ``acceleratorType`` as a URL or a
    name and ``acceleratorCount``). Attached GPUs win over the table because
    the API reports them directly. A VM with no GPU gets ``(None, 0)``.
    """
    attached_type = None
    attached_count = 0
    for accelerator in guest_accelerators or []:
        attached_type = short_name(str(accelerator.get("acceleratorType", "")))
        attached_count += int(accelerator.get("acceleratorCount", 0))
    if attached_count:
        return attached_type, attached_count

    builtin = BUILTIN_GPU_MACHINE_TYPES.get(short_name(machine_type))
    if builtin:
        return builtin.accelerator_type, builtin.count
    return None, 0


def gpu_model(accelerator_type: str | None) -> GpuModel | None:
    """Return the product facts for an accelerator type, or None if unknown."""
    if not accelerator_type:
        return None
    return GPU_MODELS.get(short_name(accelerator_type))


def has_nvswitch(machine_type: str) -> bool:
    """Tell whether a machine type's GPUs sit on an NVSwitch fabric."""
    builtin = BUILTIN_GPU_MACHINE_TYPES.get(short_name(machine_type))
    return bool(builtin and builtin.nvswitch)
