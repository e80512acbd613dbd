# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Admission control for launch configs: does this host have room for the workload?

Admission compares one validated launch config with the host's resources
(GPU facts, memory, CPUs, slice limits) and with the records of the workloads
already admitted on the host. It either returns the allocation (which GPUs the
workload owns) or raises LaunchConfigRejected. Every function here is pure: the
caller reads the host and the records and passes them in.

Invariant: a GPU is owned by at most one workload. Ownership is keyed by GPU
UUID where the facts report one, because device indices can change when a GPU
drops off the bus or the driver enumerates in another order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (
    ConfigError,
    LaunchConfigRejected,
    format_size_mib,
)


@dataclass(frozen=True)
class HostResources:
    """Resources a host offers to workloads, as the caller read them."""

    # GPU dicts in the shape nvidia_gpu_facts returns: index, uuid, name, memory_total_mib, ...
    gpus: tuple[dict, ...] = ()
    # nvidia_gpu_facts' state. Anything but "ok" means the GPU list cannot be trusted.
    gpu_state: str = "ok"
    memory_mib: int = 0
    cpu_count: int = 0
    memory_reserve_mib: int = 0
    # Per role ("training", "inference"): {"memory_mib": int | None, "cpus": float | None}.
    slice_limits: dict = field(default_factory=dict)


def _gpu_label(gpu: dict) -> str:
    return f"GPU {gpu['index']} ({gpu['uuid']})" if gpu.get("uuid") else f"GPU {gpu['index']}"


def _resolve_record_gpus(record: dict, host: HostResources) -> list[int]:
    """Map a record's GPUs to the host's current indices, by UUID where both sides have one."""
    by_uuid = {gpu["uuid"]: gpu["index"] for gpu in host.gpus if gpu.get("uuid")}
    indices = []
    for gpu in record.get("gpus", []):
        uuid = gpu.get("uuid")
        if uuid:
            # A recorded UUID that the host no longer reports owns nothing here.
            if uuid in by_uuid:
                indices.append(by_uuid[uuid])
        elif isinstance(gpu.get("index"), int):
            indices.append(gpu["index"])
    return indices


def check_records(records: dict[str, dict], record_paths: dict[str, str] | None = None) -> list[ConfigError]:
    """Return errors for records that cannot be trusted to say who owns what.

    A damaged record would hide which GPUs its workload owns, so admission
    stops rather than guessing.
    """
    errors = []
    for name, record in sorted(records.items()):
        path = (record_paths or {}).get(name, f"record of {name}")
        valid = (
            isinstance(record, dict)
            and record.get("name") == name
            and record.get("role") in ("training", "inference")
            and isinstance(record.get("gpus"), list)
            and all(isinstance(gpu, dict) for gpu in record["gpus"])
            and isinstance(record.get("memory_mib"), int)
            and isinstance(record.get("ports", []), list)
        )
        if not valid:
            errors.append(
                ConfigError(
                    name,
                    "admission record",
                    f"{path} is damaged or was not written by this module",
                    "restore it from the unit that runs, or remove the workload with state=absent",
                )
            )
    return errors


def admit(
    config: dict,
    host: HostResources,
    records: dict[str, dict],
    path_exists: Callable[[str], bool] | None = None,
) -> dict:
    """Admit a validated config on a host and return its allocation, or raise LaunchConfigRejected.

    ``records`` maps workload names to the records already admitted on the
    host, the config's own earlier record included (it is ignored for
    ownership, and used to keep the same GPUs on a re-admission). The
    allocation is ``{"gpus": [{"index", "uuid", "name"}, ...]}``, ordered by index.
    ``path_exists`` checks secret and mount sources on the host; None skips that check.
    """
    name = config["name"]
    errors = check_records({other: record for other, record in records.items() if other != name})
    if errors:
        raise LaunchConfigRejected(errors)
    others = {other: record for other, record in records.items() if other != name}

    gpus, gpu_errors = _allocate_gpus(config, host, others, records.get(name))
    errors.extend(gpu_errors)
    errors.extend(_check_memory(config, host, others))
    errors.extend(_check_cpus(config, host))
    errors.extend(_check_ports(config, others))
    if path_exists is not None:
        errors.extend(_check_sources(config, path_exists))
    if errors:
        raise LaunchConfigRejected(errors)
    return {"gpus": gpus}


def _allocate_gpus(
    config: dict, host: HostResources, others: dict, own_record: dict | None
) -> tuple[list[dict], list[ConfigError]]:
    name = config["name"]
    requested = config["gpus"]
    if not requested["count"]:
        return [], []

    def reject(field_name: str, problem: str, fix: str) -> tuple[list[dict], list[ConfigError]]:
        return [], [ConfigError(name, field_name, problem, fix)]

    if host.gpu_state != "ok":
        return reject(
            "gpus",
            f"the host's GPU facts report state {host.gpu_state!r}, so no GPU can be admitted",
            "fix the GPU driver on this host (nvidia_gpu_facts must report state ok), or remove gpus from the config",
        )
    by_index = {gpu["index"]: gpu for gpu in host.gpus}
    owner_of: dict[int, tuple[str, str]] = {}
    for other, record in sorted(others.items()):
        for index in _resolve_record_gpus(record, host):
            owner_of.setdefault(index, (other, record["role"]))
    free = [index for index in sorted(by_index) if index not in owner_of]

    if requested["indices"]:
        errors = []
        for index in requested["indices"]:
            if index not in by_index:
                present = ", ".join(str(i) for i in sorted(by_index)) or "none"
                errors.append(
                    ConfigError(
                        name,
                        "gpus.indices",
                        f"GPU index {index} not found on this host (GPUs present: {present})",
                        "request only GPUs the host has, or use gpus.count",
                    )
                )
            elif index in owner_of:
                owner, owner_role = owner_of[index]
                if owner_role != config["role"]:
                    problem = (
                        f"{_gpu_label(by_index[index])} is owned by {owner_role} workload '{owner}', "
                        "and training and inference never share a GPU"
                    )
                else:
                    problem = f"{_gpu_label(by_index[index])} is already owned by workload '{owner}'"
                free_text = ", ".join(str(i) for i in free) or "none"
                errors.append(
                    ConfigError(
                        name,
                        "gpus.indices",
                        problem,
                        f"choose a free GPU (free: {free_text}), or remove '{owner}' first",
                    )
                )
        if errors:
            return [], errors
        chosen = list(requested["indices"])
    else:
        count = requested["count"]
        if count > len(free):
            owned = ", ".join(f"{index} by '{owner_of[index][0]}'" for index in sorted(owner_of)) or "none"
            return reject(
                "gpus.count",
                f"{count} GPUs requested but only {len(free)} of {len(by_index)} are free (owned: {owned})",
                "lower gpus.count, or remove a workload that owns GPUs on this host",
            )
        # Keep the GPUs this workload already owns, so a re-run or an unrelated
        # change never moves a running workload to other devices.
        previous = [index for index in _resolve_record_gpus(own_record or {}, host) if index in free]
        chosen = sorted(previous)[:count]
        chosen += [index for index in free if index not in chosen][: count - len(chosen)]

    allocation = []
    for index in sorted(chosen):
        gpu = by_index[index]
        allocation.append({"index": index, "uuid": gpu.get("uuid") or "", "name": gpu.get("name") or ""})
    return allocation, []


def _check_memory(config: dict, host: HostResources, others: dict) -> list[ConfigError]:
    name = config["name"]
    errors = []
    memory = config["memory_mib"]
    available = host.memory_mib - host.memory_reserve_mib
    admitted = sum(record["memory_mib"] for record in others.values())
    if memory + admitted > available:
        errors.append(
            ConfigError(
                name,
                "memory",
                f"{format_size_mib(memory)} requested, but the host has {format_size_mib(host.memory_mib)} "
                f"minus a reserve of {format_size_mib(host.memory_reserve_mib)}, "
                f"and other workloads hold {format_size_mib(admitted)} "
                f"(free: {format_size_mib(max(available - admitted, 0))})",
                "lower memory, or move the workload to a host with more memory",
            )
        )

    limits = host.slice_limits.get(config["role"]) or {}
    slice_memory = limits.get("memory_mib")
    if slice_memory:
        same_role = sum(record["memory_mib"] for record in others.values() if record["role"] == config["role"])
        if memory + same_role > slice_memory:
            errors.append(
                ConfigError(
                    name,
                    "memory",
                    f"{format_size_mib(memory)} requested, but the {config['role']} slice allows "
                    f"{format_size_mib(slice_memory)} and other {config['role']} workloads "
                    f"hold {format_size_mib(same_role)}",
                    f"lower memory, or raise the {config['role']} slice's memory limit",
                )
            )
    return errors


def _check_cpus(config: dict, host: HostResources) -> list[ConfigError]:
    name = config["name"]
    cpus = config["cpus"]
    if host.cpu_count and cpus > host.cpu_count:
        return [
            ConfigError(
                name,
                "cpus",
                f"{cpus:g} CPUs requested, but the host has {host.cpu_count}",
                f"set cpus to at most {host.cpu_count}",
            )
        ]
    slice_cpus = (host.slice_limits.get(config["role"]) or {}).get("cpus")
    if slice_cpus and cpus > slice_cpus:
        return [
            ConfigError(
                name,
                "cpus",
                f"{cpus:g} CPUs requested, but the {config['role']} slice is limited to {slice_cpus:g}",
                f"set cpus to at most {slice_cpus:g}, or raise the slice's CPU limit",
            )
        ]
    return []


def _check_ports(config: dict, others: dict) -> list[ConfigError]:
    used = {}
    for other, record in sorted(others.items()):
        for port in record.get("ports", []):
            used[(port.get("host_port"), port.get("protocol", "tcp"))] = other
    errors = []
    for port in config["ports"]:
        owner = used.get((port["host_port"], port["protocol"]))
        if owner:
            errors.append(
                ConfigError(
                    config["name"],
                    "ports",
                    f"host port {port['host_port']}/{port['protocol']} is already published by workload '{owner}'",
                    "choose another host_port",
                )
            )
    return errors


def _check_sources(config: dict, path_exists: Callable[[str], bool]) -> list[ConfigError]:
    errors = []
    for index, secret in enumerate(config["secrets"]):
        if not path_exists(secret["source"]):
            errors.append(
                ConfigError(
                    config["name"],
                    f"secrets[{index}].source",
                    f"secret file {secret['source']} not found on this host",
                    "place the secret file on the host before admitting the workload",
                )
            )
    for index, mount in enumerate(config["mounts"]):
        if not path_exists(mount["source"]):
            errors.append(
                ConfigError(
                    config["name"],
                    f"mounts[{index}].source",
                    f"host path {mount['source']} not found",
                    "create it first; the module never creates mount sources, "
                    "so a typo cannot become an empty directory",
                )
            )
    return errors
