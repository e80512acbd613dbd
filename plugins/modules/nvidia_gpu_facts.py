#!/usr/bin/python
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu_facts
short_description: Gather NVIDIA GPU facts and the driver state from nvidia-smi
description:
  - Runs C(nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits) and returns one dict per GPU
    with its index, product name, UUID, PCI bus id, driver version, total memory, persistence mode,
    compute capability, MIG mode and ECC mode.
  - Reports the driver state instead of failing, so a play can decide what a state means for a host.
    The states are V(ok), V(not_installed) (no nvidia-smi binary), V(driver_not_loaded) (exit code 9),
    V(no_devices) (exit code 6), V(gpu_lost) (exit code 15, a GPU fell off the bus) and
    V(version_mismatch) (user-space libraries of another version than the loaded kernel module).
  - Values that nvidia-smi prints as C([N/A]) or C([Not Supported]) are returned as null.
  - Fails only when the output matches no known format; the message then contains the raw line.
  - Sets the fact C(nvidia_gpu) with the same data as the return values.
version_added: "0.1.0"
author:
  - mlinfra contributors
options:
  nvidia_smi_path:
    description:
      - Path of the nvidia-smi binary.
      - When not set, the module searches E(PATH), C(/usr/local/bin) and C(/usr/bin).
    type: path
  sysfs_path:
    description:
      - Root of the sysfs tree the module reads PCI devices, EFI variables and the loaded
        kernel module from.
      - V(/sys) on every real host; tests point it at a prepared directory.
    type: path
    default: /sys
  boot_path:
    description:
      - Directory with the installed kernels (C(vmlinuz-<release>)).
    type: path
    default: /boot
  expected_accelerator_type:
    description:
      - Compute Engine accelerator type that the inventory expects on this host, such as V(nvidia-l4).
      - When set, RV(expected_gpu) returns the product name, memory and compute capability of that
        type from the collection's GPU catalog, so a role can choose kernel modules before any
        driver is installed.
    type: str
  timeout:
    description:
      - Seconds to wait for nvidia-smi before the module fails. A GPU in a bad state can make
        nvidia-smi hang for minutes.
      - Needs the C(timeout) command from coreutils on the host; without it nvidia-smi runs with no limit.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode runs it in full.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - The module never loads kernel modules, restarts services or changes GPU settings.
  - Besides nvidia-smi, it reads the host facts a driver install depends on from sysfs and
    C(/boot) (NVIDIA PCI devices, Secure Boot, the loaded kernel module, installed kernels),
    which work before any driver is installed.
  - When the installed nvidia-smi is older than driver branch 510 and rejects the C(compute_cap) field,
    the module queries again without it and returns null for C(compute_capability).
seealso:
  - name: nvidia-smi documentation
    description: Query fields, output formats and exit codes of nvidia-smi.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
"""

EXAMPLES = r"""
- name: Gather GPU facts
  mlinfra.platform.nvidia_gpu_facts:
  register: gpu_facts

- name: Fail unless the driver is loaded and sees 8 GPUs
  ansible.builtin.assert:
    that:
      - gpu_facts.state == 'ok'
      - gpu_facts.count == 8
    fail_msg: "{{ inventory_hostname }}: {{ gpu_facts.msg }}"

- name: Gather GPU facts from a binary outside PATH
  mlinfra.platform.nvidia_gpu_facts:
    nvidia_smi_path: /opt/nvidia/bin/nvidia-smi
    timeout: 30

- name: Look up the expected GPU model and read Secure Boot before installing a driver
  mlinfra.platform.nvidia_gpu_facts:
    expected_accelerator_type: "{{ gce_gpu_type }}"
  register: gpu_host

- name: List GPUs with MIG enabled, using the fact the module sets
  ansible.builtin.debug:
    msg: "{{ ansible_facts.nvidia_gpu.gpus | selectattr('mig_mode') | map(attribute='uuid') | list }}"
"""

RETURN = r"""
state:
  description: Driver state as nvidia-smi showed it.
  returned: always
  type: str
  choices: [ok, not_installed, driver_not_loaded, no_devices, gpu_lost, version_mismatch]
  sample: ok
msg:
  description: What the module found, and for every state but V(ok) what to do next.
  returned: always
  type: str
  sample: "8 GPU(s) found (NVIDIA H100 80GB HBM3), driver 550.90.07."
count:
  description: Number of GPUs listed; 0 in every state but V(ok).
  returned: always
  type: int
  sample: 8
driver_version:
  description: Driver version that nvidia-smi reported; null in every state but V(ok).
  returned: always
  type: str
  sample: "550.90.07"
gpus:
  description: One dict per GPU, sorted by index; empty in every state but V(ok).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index as nvidia-smi numbers it.
      type: int
      sample: 0
    name:
      description: Product name.
      type: str
      sample: NVIDIA H100 80GB HBM3
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-9d6a1e3c-4b7f-5a21-8c0e-2f1d3b4a5c6d
    pci_bus_id:
      description: PCI bus id in nvidia-smi's form (domain:bus:device.function).
      type: str
      sample: "00000000:04:00.0"
    driver_version:
      description: Driver version for this GPU.
      type: str
      sample: "550.90.07"
    memory_total_mib:
      description: Total GPU memory in MiB.
      type: int
      sample: 81559
    persistence_mode:
      description: Whether persistence mode is on; null where not reported.
      type: bool
      sample: true
    compute_capability:
      description: CUDA compute capability as MAJOR.MINOR; null where the driver cannot report it.
      type: str
      sample: "9.0"
    mig_mode:
      description: Whether MIG mode is on; null for GPUs without MIG support.
      type: bool
      sample: false
    ecc_mode:
      description: Whether ECC is on; null for GPUs without ECC.
      type: bool
      sample: true
pci_gpus:
  description: NVIDIA GPUs on the PCI bus (vendor 0x10de, display class), whether or not a driver is loaded.
  returned: always
  type: list
  elements: dict
  sample: [{"pci_bus_id": "0000:00:04.0", "device_id": "0x27b8", "class": "0x030200"}]
pci_nvswitches:
  description: NVSwitch devices on the PCI bus (vendor 0x10de, class 0x0680xx).
  returned: always
  type: list
  elements: dict
  sample: []
secure_boot:
  description: Whether UEFI Secure Boot is on; false on hosts booted without UEFI, null when unreadable.
  returned: always
  type: bool
  sample: false
kernel_module_version:
  description: Version of the loaded C(nvidia) kernel module; null when it is not loaded.
  returned: always
  type: str
  sample: "550.90.07"
running_kernel:
  description: Release of the running kernel.
  returned: always
  type: str
  sample: 6.1.0-28-cloud-amd64
installed_kernels:
  description: Releases of the kernels in O(boot_path), oldest first.
  returned: always
  type: list
  elements: str
  sample: [6.1.0-28-cloud-amd64, 6.1.0-30-cloud-amd64]
newest_kernel:
  description: Newest installed kernel release; null when O(boot_path) has none.
  returned: always
  type: str
  sample: 6.1.0-30-cloud-amd64
expected_gpu:
  description:
    - Catalog facts of O(expected_accelerator_type); null when the option is not set or the type is not in the catalog.
  returned: always
  type: dict
  sample: {"accelerator_type": "nvidia-l4", "product_name": "NVIDIA L4", "memory_total_mib": 23034,
           "compute_capability": "8.9"}
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    nvidia_gpu:
      description: The same keys as the other return values.
      type: dict
"""

# Ansible modules keep DOCUMENTATION, EXAMPLES and RETURN above the imports.
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog  # noqa: E402
from ansible_collections.mlinfra.platform.plugins.module_utils.nvidia_smi import (  # noqa: E402
    QUERY_FIELDS,
    SECURE_BOOT_EFIVAR,
    NvidiaSmiParseError,
    UnsupportedFieldError,
    interpret,
    kernel_release_key,
    not_installed,
    parse_secure_boot,
    pci_function_kind,
    query_command,
    without_field,
)

SEARCH_DIRS = ["/usr/local/bin", "/usr/bin"]
EXIT_TIMED_OUT = 124


def find_nvidia_smi(module: AnsibleModule) -> tuple[str | None, str]:
    """Return the nvidia-smi path (or None) and a description of where it looked."""
    explicit = module.params["nvidia_smi_path"]
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit, f"looked at {explicit}"
        return None, f"{explicit} is missing or not executable"
    found = module.get_bin_path("nvidia-smi", required=False, opt_dirs=SEARCH_DIRS)
    return found, f"searched PATH and {', '.join(SEARCH_DIRS)}"


def query_gpus(module: AnsibleModule, binary: str) -> dict:
    """Run the GPU query, dropping fields that this nvidia-smi release rejects."""
    fields = QUERY_FIELDS
    timeout_binary = module.get_bin_path("timeout", required=False)
    while True:
        command = query_command(binary, fields)
        if timeout_binary:
            command = [timeout_binary, str(module.params["timeout"]), *command]
        rc, stdout, stderr = module.run_command(command, environ_update={"LC_ALL": "C"})
        if timeout_binary and rc == EXIT_TIMED_OUT:
            module.fail_json(
                msg=f"{binary} did not answer within {module.params['timeout']} seconds. "
                "A hung nvidia-smi usually means a GPU in a bad state: check the kernel log (dmesg) for Xid errors.",
                cmd=command,
            )
        try:
            return interpret(rc, stdout, stderr, fields)
        except UnsupportedFieldError as error:
            remaining = without_field(fields, error.field)
            if remaining == fields:
                module.fail_json(msg=f"nvidia-smi rejected the query field {error.field!r} twice.", cmd=command)
            module.warn(f"{binary} does not support the query field {error.field!r}; its value is returned as null.")
            fields = remaining
        except NvidiaSmiParseError as error:
            module.fail_json(
                msg=f"Failed to parse the output of {' '.join(command)}: {error}",
                rc=rc,
                stdout=stdout,
                stderr=stderr,
                raw_line=error.line,
            )


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def scan_pci(sysfs_path: str) -> tuple[list[dict], list[dict]]:
    """Return the NVIDIA GPUs and NVSwitches listed under ``<sysfs>/bus/pci/devices``."""
    devices_dir = os.path.join(sysfs_path, "bus", "pci", "devices")
    gpus, nvswitches = [], []
    try:
        names = sorted(os.listdir(devices_dir))
    except OSError:
        return gpus, nvswitches
    for name in names:
        vendor = _read_text(os.path.join(devices_dir, name, "vendor")) or ""
        pci_class = _read_text(os.path.join(devices_dir, name, "class")) or ""
        kind = pci_function_kind(vendor, pci_class)
        if kind is None:
            continue
        device = {
            "pci_bus_id": name,
            "device_id": _read_text(os.path.join(devices_dir, name, "device")),
            "class": pci_class,
        }
        (gpus if kind == "gpu" else nvswitches).append(device)
    return gpus, nvswitches


def read_secure_boot(sysfs_path: str) -> bool | None:
    """Read the Secure Boot state from efivarfs; False when the host did not boot through UEFI."""
    efi_dir = os.path.join(sysfs_path, "firmware", "efi")
    if not os.path.isdir(efi_dir):
        return False
    try:
        with open(os.path.join(efi_dir, "efivars", SECURE_BOOT_EFIVAR), "rb") as handle:
            return parse_secure_boot(handle.read())
    except OSError:
        return None


def list_kernels(boot_path: str) -> list[str]:
    """Return the releases of the kernels in ``boot_path``, oldest first."""
    try:
        names = os.listdir(boot_path)
    except OSError:
        return []
    releases = [name.removeprefix("vmlinuz-") for name in names if name.startswith("vmlinuz-")]
    return sorted(releases, key=kernel_release_key)


def expected_gpu(accelerator_type: str | None) -> dict | None:
    model = gpu_catalog.gpu_model(accelerator_type)
    if model is None:
        return None
    return {
        "accelerator_type": model.accelerator_type,
        "product_name": model.product_name,
        "memory_total_mib": model.memory_total_mib,
        "compute_capability": model.compute_capability,
    }


def probe_host(module: AnsibleModule) -> dict:
    """Read the host facts that decide how a driver can be installed."""
    sysfs_path = module.params["sysfs_path"]
    pci_gpus, pci_nvswitches = scan_pci(sysfs_path)
    kernels = list_kernels(module.params["boot_path"])
    return {
        "pci_gpus": pci_gpus,
        "pci_nvswitches": pci_nvswitches,
        "secure_boot": read_secure_boot(sysfs_path),
        "kernel_module_version": _read_text(os.path.join(sysfs_path, "module", "nvidia", "version")),
        "running_kernel": os.uname().release,
        "installed_kernels": kernels,
        "newest_kernel": kernels[-1] if kernels else None,
        "expected_gpu": expected_gpu(module.params["expected_accelerator_type"]),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi_path": {"type": "path"},
            "sysfs_path": {"type": "path", "default": "/sys"},
            "boot_path": {"type": "path", "default": "/boot"},
            "expected_accelerator_type": {"type": "str"},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    if module.params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {module.params['timeout']}.")

    binary, searched = find_nvidia_smi(module)
    facts = not_installed(searched) if binary is None else query_gpus(module, binary)
    facts.update(probe_host(module))

    module.exit_json(changed=False, ansible_facts={"nvidia_gpu": facts}, **facts)


if __name__ == "__main__":
    main()
