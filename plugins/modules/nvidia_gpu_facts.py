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
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    nvidia_gpu:
      description: The same keys as the return values (state, msg, count, driver_version, gpus).
      type: dict
"""

# Ansible modules keep DOCUMENTATION, EXAMPLES and RETURN above the imports.
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.mlinfra.platform.plugins.module_utils.nvidia_smi import (  # noqa: E402
    QUERY_FIELDS,
    NvidiaSmiParseError,
    UnsupportedFieldError,
    interpret,
    not_installed,
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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi_path": {"type": "path"},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    if module.params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {module.params['timeout']}.")

    binary, searched = find_nvidia_smi(module)
    facts = not_installed(searched) if binary is None else query_gpus(module, binary)

    module.exit_json(changed=False, ansible_facts={"nvidia_gpu": facts}, **facts)


if __name__ == "__main__":
    main()
