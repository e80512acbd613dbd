"""Read and check the lab fleet file (inventories/lab/fleet.yml).

Every problem is reported before anything starts, as one line that names the
field, the value and the fix, so a bad fleet file never leaves a half-built lab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog

ROLES = ("training", "inference")
# GCE label values: lowercase letters, digits, dashes and underscores, at most
# 63 characters. Host names are also container and DNS names, so no underscores.
_LABEL_VALUE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")


class FleetError(ValueError):
    """The fleet file is invalid. The message names the field and the fix."""


@dataclass(frozen=True)
class LabHost:
    name: str
    pool: str
    role: str
    zone: str
    machine_type: str
    gpu_type: str | None
    gpu_count: int

    @property
    def region(self) -> str:
        return self.zone.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Fleet:
    project: str
    environment: str
    hosts: tuple[LabHost, ...]


def group_name(prefix: str, value: str) -> str:
    """Return the inventory group name for a label value (dashes to underscores)."""
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_]", "_", value)


def _require(mapping: dict, key: str, where: str) -> object:
    if key not in mapping or mapping[key] in (None, ""):
        raise FleetError(f"{where}: missing field '{key}'; add it to the fleet file")
    return mapping[key]


def _check_machine_type(machine_type: str, where: str) -> tuple[str | None, int]:
    if machine_type not in gpu_catalog.BUILTIN_GPU_MACHINE_TYPES:
        supported = ", ".join(sorted(gpu_catalog.BUILTIN_GPU_MACHINE_TYPES))
        raise FleetError(
            f"{where}: unsupported machine type '{machine_type}'; "
            f"lab hosts need a machine type with built-in GPUs, one of: {supported}"
        )
    return gpu_catalog.expected_gpus(machine_type)


def load_fleet(path: Path, group_vars_dir: Path) -> Fleet:
    """Parse the fleet file and check it against the lab's group_vars."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FleetError(f"{path}: fleet file not found; create it (see inventories/lab/fleet.yml in git)") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"{path}: not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(document, dict):
        raise FleetError(f"{path}: expected a mapping with project, environment, pools and hosts")

    project = str(_require(document, "project", str(path)))
    environment = str(_require(document, "environment", str(path)))
    pools = _require(document, "pools", str(path))
    hosts = _require(document, "hosts", str(path))
    if not isinstance(pools, dict):
        raise FleetError(f"{path}: 'pools' must be a mapping of pool name to role and machine_type")
    if not isinstance(hosts, list):
        raise FleetError(f"{path}: 'hosts' must be a list of hosts with name, pool and zone")

    for pool_name, pool in pools.items():
        where = f"{path}: pool '{pool_name}'"
        if not _LABEL_VALUE.match(str(pool_name)):
            raise FleetError(f"{where}: invalid name; use lowercase letters, digits and dashes, starting with a letter")
        if not isinstance(pool, dict):
            raise FleetError(f"{where}: expected a mapping with role and machine_type")
        role = _require(pool, "role", where)
        if role not in ROLES:
            raise FleetError(f"{where}: unknown role '{role}'; use one of: {', '.join(ROLES)}")
        _check_machine_type(str(_require(pool, "machine_type", where)), where)
        pool_vars = group_vars_dir / f"{group_name('pool', str(pool_name))}.yml"
        if not pool_vars.is_file():
            raise FleetError(f"{where}: no group vars at {pool_vars}; create that file to declare the pool")

    fleet_hosts: list[LabHost] = []
    seen: set[str] = set()
    for index, host in enumerate(hosts):
        where = f"{path}: hosts[{index}]"
        if not isinstance(host, dict):
            raise FleetError(f"{where}: expected a mapping with name, pool and zone")
        name = str(_require(host, "name", where))
        where = f"{path}: host '{name}'"
        if not _HOST_NAME.match(name):
            raise FleetError(f"{where}: invalid name; use lowercase letters, digits and dashes (2 to 63 characters)")
        if name in seen:
            raise FleetError(f"{where}: declared twice; host names must be unique")
        seen.add(name)

        pool_name = str(_require(host, "pool", where))
        if pool_name not in pools:
            known = ", ".join(sorted(pools))
            raise FleetError(f"{where}: unknown pool '{pool_name}'; declare it under 'pools' or use one of: {known}")
        zone = str(_require(host, "zone", where))
        if not _ZONE.match(zone):
            raise FleetError(f"{where}: invalid zone '{zone}'; use a zone name such as us-central1-a")

        machine_type = str(host.get("machine_type") or pools[pool_name]["machine_type"])
        gpu_type, gpu_count = _check_machine_type(machine_type, where)
        fleet_hosts.append(
            LabHost(
                name=name,
                pool=pool_name,
                role=str(pools[pool_name]["role"]),
                zone=zone,
                machine_type=machine_type,
                gpu_type=gpu_type,
                gpu_count=gpu_count,
            )
        )

    if not fleet_hosts:
        raise FleetError(f"{path}: 'hosts' is empty; declare at least one host")
    return Fleet(project=project, environment=environment, hosts=tuple(fleet_hosts))
