"""The emulator's state: projects, zones, instances and zonal operations.

Resources are stored in the JSON form of the Compute v1 REST API, so that the
server returns them without conversion. Every public method takes the store's
lock, because the HTTP server handles requests on several threads.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import itertools
import random
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

API_PATH = "/compute/v1"

# Resource names: lowercase letter first, then letters, digits and dashes, no
# trailing dash, at most 63 characters (RFC 1035), as the Compute API requires.
NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
ZONE_RE = re.compile(r"^(?P<region>[a-z]+-[a-z]+[0-9]+)-[a-z]$")
PROJECT_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")

_fleet_generations = itertools.count(1)

_CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _load_gpu_catalog():
    """Load the shared GPU table from the collection's module_utils by file path.

    The emulator runs without Ansible's collection loader on sys.path, so it
    imports the file directly instead of through ``ansible_collections``.
    """
    path = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "gpu_catalog.py"
    name = "mlinfra_gpu_catalog"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the file executes.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gpu_catalog = _load_gpu_catalog()


class ApiError(Exception):
    """An error that the server returns in the Compute API's error format."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def not_found(resource: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{resource}' was not found")


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def fingerprint(value: Any) -> str:
    """Return an opaque fingerprint of a value, in the base64-like style the API uses."""
    digest = hashlib.sha256(repr(value).encode()).hexdigest()
    return digest[:12]


def region_of(zone: str) -> str:
    match = ZONE_RE.match(zone)
    return match.group("region") if match else zone.rsplit("-", 1)[0]


@dataclass
class Project:
    name: str
    number: int
    zones: list[str] = field(default_factory=list)
    # zone -> instance name -> instance JSON, in insertion order
    instances: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # zone -> operation name -> operation JSON
    operations: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_zone(self, zone: str) -> None:
        if zone not in self.instances:
            self.zones.append(zone)
            self.instances[zone] = {}
            self.operations[zone] = {}


class Fleet:
    """Projects with their zones, instances and operations."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        # Bumped on every change, so cached listings know when they are stale.
        # The generation tells fleets apart after a reset, where an object id
        # could be reused.
        self.version = 0
        self.generation = next(_fleet_generations)
        self._ids = itertools.count(1_000_000_000_000_000_001, 7919)
        self._operation_numbers = itertools.count(1)

    # URLs ---------------------------------------------------------------

    def url(self, *parts: str) -> str:
        return f"{self.base_url}{API_PATH}/" + "/".join(parts)

    def zone_url(self, project: str, zone: str) -> str:
        return self.url("projects", project, "zones", zone)

    # Projects and zones ---------------------------------------------------

    def project(self, name: str) -> Project:
        """Return a project, or raise the API's 404 for a missing project."""
        with self.lock:
            project = self.projects.get(name)
            if project is None:
                raise not_found(f"projects/{name}")
            return project

    def ensure_project(self, name: str, zones: list[str] | None = None) -> Project:
        """Return a project, creating it (and any listed zones) when missing."""
        if not PROJECT_RE.match(name):
            raise invalid(
                f"Invalid value for field 'project': '{name}'. Must be a match of regex '{PROJECT_RE.pattern}'"
            )
        with self.lock:
            project = self.projects.get(name)
            if project is None:
                number = 100_000_000_000 + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
                project = Project(name=name, number=number)
                self.projects[name] = project
                self.version += 1
            for zone in zones or []:
                self._check_zone_name(zone)
                project.add_zone(zone)
            return project

    def zone(self, project_name: str, zone: str) -> Project:
        project = self.project(project_name)
        if zone not in project.instances:
            raise not_found(f"projects/{project_name}/zones/{zone}")
        return project

    def zone_resource(self, project: str, zone: str) -> dict[str, Any]:
        return {
            "kind": "compute#zone",
            "id": str(2000 + int(hashlib.sha256(zone.encode()).hexdigest()[:4], 16)),
            "creationTimestamp": _CREATED.isoformat(timespec="milliseconds"),
            "name": zone,
            "description": zone,
            "status": "UP",
            "region": self.url("projects", project, "regions", region_of(zone)),
            "selfLink": self.zone_url(project, zone),
            "availableCpuPlatforms": ["Intel Cascade Lake", "Intel Ice Lake", "AMD Milan"],
            "supportsPzs": False,
        }

    @staticmethod
    def _check_zone_name(zone: str) -> None:
        if not ZONE_RE.match(zone):
            raise invalid(f"Invalid value for field 'zone': '{zone}'. Expected a zone name such as 'us-central1-a'.")

    # Instances ------------------------------------------------------------

    def insert_instance(
        self, project_name: str, zone: str, body: dict[str, Any], *, keep_status: bool = False
    ) -> dict[str, Any]:
        """Create an instance from an insert request body and return it.

        The project and zone are created on first use, as the lab registers
        hosts into projects that exist only in its own configuration. With
        ``keep_status`` (seeding), the body may set ``status`` and ``id``.
        """
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise invalid(
                f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '{NAME_RE.pattern}'"
            )
        if not body.get("machineType"):
            raise invalid("Invalid value for field 'resource.machineType': ''. Machine type must be specified.")
        self._check_zone_name(zone)
        with self.lock:
            project = self.ensure_project(project_name, [zone])
            if name in project.instances[zone]:
                raise ApiError(
                    409,
                    "alreadyExists",
                    f"The resource 'projects/{project_name}/zones/{zone}/instances/{name}' already exists",
                )
            instance = self._normalize_instance(project_name, zone, body, keep_status)
            project.instances[zone][name] = instance
            self.version += 1
            return instance

    def _normalize_instance(self, project: str, zone: str, body: dict[str, Any], keep_status: bool) -> dict[str, Any]:
        instance = copy.deepcopy(body)
        instance.pop("zone", None)
        instance_id = str(instance.get("id")) if keep_status and instance.get("id") else str(next(self._ids))
        if not keep_status:
            instance.pop("status", None)
        machine_type = gpu_catalog.short_name(str(instance["machineType"]))
        instance.update(
            {
                "kind": "compute#instance",
                "id": instance_id,
                "creationTimestamp": instance.get("creationTimestamp") or _CREATED.isoformat(timespec="milliseconds"),
                "zone": self.zone_url(project, zone),
                "machineType": self.url("projects", project, "zones", zone, "machineTypes", machine_type),
                "status": instance.get("status", "RUNNING"),
                "selfLink": self.url("projects", project, "zones", zone, "instances", instance["name"]),
            }
        )
        instance.setdefault("labels", {})
        instance["labelFingerprint"] = fingerprint(instance["labels"])
        instance["fingerprint"] = fingerprint(instance_id)

        for index, interface in enumerate(instance.get("networkInterfaces", [])):
            interface.setdefault("kind", "compute#networkInterface")
            interface.setdefault("name", f"nic{index}")
            interface.setdefault("network", f"projects/{project}/global/networks/default")
            for key in ("network", "subnetwork"):
                if key in interface:
                    interface[key] = self._absolute_url(project, interface[key])
            interface.setdefault("stackType", "IPV4_ONLY")
            for access_config in interface.get("accessConfigs", []):
                access_config.setdefault("kind", "compute#accessConfig")
                access_config.setdefault("type", "ONE_TO_ONE_NAT")
                access_config.setdefault("name", "External NAT")
                access_config.setdefault("networkTier", "PREMIUM")

        for disk in instance.get("disks", []):
            if "source" in disk:
                disk["source"] = self._absolute_url(project, disk["source"])
            disk["licenses"] = [self._absolute_url(project, license_url) for license_url in disk.get("licenses", [])]
            if not disk["licenses"]:
                del disk["licenses"]

        metadata = instance.setdefault("metadata", {})
        metadata["kind"] = "compute#metadata"
        metadata["fingerprint"] = fingerprint(metadata.get("items"))

        for accelerator in instance.get("guestAccelerators", []):
            accelerator_type = gpu_catalog.short_name(str(accelerator.get("acceleratorType", "")))
            accelerator["acceleratorType"] = self.url(
                "projects", project, "zones", zone, "acceleratorTypes", accelerator_type
            )

        scheduling = instance.setdefault("scheduling", {})
        spot = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible", False)
        has_gpu = bool(instance.get("guestAccelerators")) or machine_type in gpu_catalog.BUILTIN_GPU_MACHINE_TYPES
        # The API forces TERMINATE on maintenance for GPU and Spot VMs, and no
        # automatic restart for Spot VMs.
        scheduling.setdefault("onHostMaintenance", "TERMINATE" if spot or has_gpu else "MIGRATE")
        scheduling.setdefault("automaticRestart", not spot)
        scheduling.setdefault("preemptible", bool(scheduling.get("preemptible", False)))
        scheduling.setdefault("provisioningModel", "SPOT" if spot else "STANDARD")
        return instance

    def _absolute_url(self, project: str, url_or_path: str) -> str:
        """Expand a partial resource URL the way the API does.

        ``projects/p/global/networks/n`` gets this emulator's base URL, and
        ``global/networks/n`` also the instance's own project.
        """
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        path = url_or_path.lstrip("/")
        if path.startswith("projects/"):
            return self.url(path)
        return self.url("projects", project, path)

    def get_instance(self, project_name: str, zone: str, name: str) -> dict[str, Any]:
        with self.lock:
            project = self.zone(project_name, zone)
            instance = project.instances[zone].get(name)
            if instance is None:
                raise not_found(f"projects/{project_name}/zones/{zone}/instances/{name}")
            return instance

    def delete_instance(self, project_name: str, zone: str, name: str) -> dict[str, Any]:
        with self.lock:
            instance = self.get_instance(project_name, zone, name)
            del self.projects[project_name].instances[zone][name]
            self.version += 1
            return instance

    def set_labels(self, project_name: str, zone: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise invalid("Invalid value for field 'resource.labels': labels must map strings to strings.")
        with self.lock:
            instance = self.get_instance(project_name, zone, name)
            if body.get("labelFingerprint") != instance["labelFingerprint"]:
                raise ApiError(
                    412,
                    "conditionNotMet",
                    "Labels fingerprint either invalid or resource labels have changed",
                )
            instance["labels"] = dict(labels)
            instance["labelFingerprint"] = fingerprint(instance["labels"])
            self.version += 1
            return instance

    def instances_in_order(self, project_name: str) -> list[tuple[str, dict[str, Any]]]:
        """Return (zone, instance) pairs of a project, zone by zone in insertion order."""
        with self.lock:
            project = self.project(project_name)
            return [(zone, instance) for zone in project.zones for instance in project.instances[zone].values()]

    def count(self) -> int:
        with self.lock:
            return sum(len(by_name) for project in self.projects.values() for by_name in project.instances.values())

    # Operations -------------------------------------------------------------

    def record_operation(
        self, project_name: str, zone: str, operation_type: str, instance: dict[str, Any]
    ) -> dict[str, Any]:
        """Store and return a finished zonal operation for a change to an instance."""
        with self.lock:
            project = self.ensure_project(project_name, [zone])
            number = next(self._operation_numbers)
            name = f"operation-{number:013d}-emulator"
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            operation = {
                "kind": "compute#operation",
                "id": str(5_000_000_000 + number),
                "name": name,
                "zone": self.zone_url(project_name, zone),
                "operationType": operation_type,
                "targetLink": instance["selfLink"],
                "targetId": instance["id"],
                "status": "DONE",
                "user": "emulator@localhost",
                "progress": 100,
                "insertTime": now,
                "startTime": now,
                "endTime": now,
                "selfLink": self.url("projects", project_name, "zones", zone, "operations", name),
            }
            project.operations[zone][name] = operation
            return operation

    def get_operation(self, project_name: str, zone: str, name: str) -> dict[str, Any]:
        with self.lock:
            project = self.zone(project_name, zone)
            operation = project.operations[zone].get(name)
            if operation is None:
                raise not_found(f"projects/{project_name}/zones/{zone}/operations/{name}")
            return operation

    # Catalog: machine types and accelerator types ------------------------------

    def machine_type(self, project: str, zone: str, name: str) -> dict[str, Any]:
        self.zone(project, zone)
        cpus = _machine_type_cpus(name)
        if cpus is None:
            raise not_found(f"projects/{project}/zones/{zone}/machineTypes/{name}")
        resource: dict[str, Any] = {
            "kind": "compute#machineType",
            "id": str(3000 + cpus),
            "creationTimestamp": _CREATED.isoformat(timespec="milliseconds"),
            "name": name,
            "description": f"{cpus} vCPUs",
            "guestCpus": cpus,
            "memoryMb": cpus * 4096,
            "maximumPersistentDisks": 128,
            "maximumPersistentDisksSizeGb": "263168",
            "zone": zone,
            "selfLink": self.url("projects", project, "zones", zone, "machineTypes", name),
            "isSharedCpu": False,
            "architecture": "X86_64",
        }
        builtin = gpu_catalog.BUILTIN_GPU_MACHINE_TYPES.get(name)
        if builtin:
            resource["accelerators"] = [
                {"guestAcceleratorType": builtin.accelerator_type, "guestAcceleratorCount": builtin.count}
            ]
        return resource

    def accelerator_types(self, project: str, zone: str) -> list[dict[str, Any]]:
        self.zone(project, zone)
        return [
            {
                "kind": "compute#acceleratorType",
                "id": str(10_000 + index),
                "creationTimestamp": _CREATED.isoformat(timespec="milliseconds"),
                "name": model.accelerator_type,
                "description": model.product_name,
                "zone": self.zone_url(project, zone),
                "selfLink": self.url("projects", project, "zones", zone, "acceleratorTypes", model.accelerator_type),
                "maximumCardsPerInstance": 16 if model.accelerator_type == "nvidia-tesla-a100" else 8,
            }
            for index, model in enumerate(gpu_catalog.GPU_MODELS.values())
        ]

    # Seeding ------------------------------------------------------------------

    def load(self, document: dict[str, Any]) -> int:
        """Load a fleet document and return the number of instances added.

        The document maps project names to ``zones`` (a list of zone names)
        and ``instances`` (instance bodies, each with a ``zone`` key)::

            {"projects": {"mlinfra-lab": {"zones": ["us-central1-a"],
                                          "instances": [{"name": "gpu-1", "zone": "us-central1-a", ...}]}}}
        """
        projects = document.get("projects")
        if not isinstance(projects, dict):
            raise ValueError("A fleet document needs a 'projects' mapping of project name to {zones, instances}.")
        added = 0
        for project_name, project_spec in projects.items():
            spec = project_spec or {}
            self.ensure_project(project_name, list(spec.get("zones", [])))
            for body in spec.get("instances", []):
                zone = body.get("zone")
                if not zone:
                    raise ValueError(f"Instance {body.get('name')!r} of project {project_name!r} needs a 'zone'.")
                self.insert_instance(project_name, gpu_catalog.short_name(zone), body, keep_status=True)
                added += 1
        return added


def _machine_type_cpus(name: str) -> int | None:
    """Return the vCPU count that a predefined or custom machine type name implies."""
    builtin = gpu_catalog.BUILTIN_GPU_MACHINE_TYPES.get(name)
    if builtin:
        return 12 * builtin.count if name.startswith("a") else 4 * builtin.count
    match = re.match(
        r"^(?:[a-z][a-z0-9]*-)?(?:custom|standard|highmem|highcpu|highgpu|megagpu|ultragpu|micro|small|medium)-(\d+)",
        name,
    )
    if match:
        return int(match.group(1))
    if re.match(r"^(?:e2|f1|g1)-(?:micro|small|medium)$", name):
        return 2
    return None


# Generated fleets -------------------------------------------------------------

_REGIONS = (
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3", "us-west4",
    "northamerica-northeast1", "northamerica-northeast2", "southamerica-east1", "southamerica-west1",
    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9",
    "europe-west10", "europe-west12", "europe-north1", "europe-central2", "europe-southwest1",
    "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3", "asia-south1", "asia-south2",
    "asia-southeast1", "asia-southeast2", "australia-southeast1", "australia-southeast2",
    "me-west1", "me-central1", "africa-south1",
)  # fmt: skip


@dataclass(frozen=True)
class _PoolShape:
    pool: str
    role: str
    machine_type: str
    accelerator_type: str | None = None
    accelerator_count: int = 0
    spot: bool = False


_POOLS = (
    _PoolShape("train-a100", "training", "a2-highgpu-8g"),
    _PoolShape("train-h100", "training", "a3-highgpu-8g"),
    _PoolShape("infer-l4", "inference", "g2-standard-8"),
    _PoolShape("infer-t4", "inference", "n1-standard-8", "nvidia-tesla-t4", 1, spot=True),
    _PoolShape("batch-cpu", "batch", "n2-standard-16"),
)


def generated_zones(count: int) -> list[str]:
    """Return ``count`` distinct, realistic zone names (region order, suffixes a, b, c, then d, e, f)."""
    zones = [f"{region}-{suffix}" for suffixes in ("abc", "def") for region in _REGIONS for suffix in suffixes]
    if count > len(zones):
        raise ValueError(f"At most {len(zones)} generated zones are available, got {count}.")
    return zones[:count]


def generated_projects(count: int, prefix: str = "mlinfra-fleet") -> list[str]:
    return [f"{prefix}-{index:02d}" for index in range(1, count + 1)]


def generate_fleet(
    instances: int,
    zones: int,
    projects: int,
    *,
    environment: str = "lab",
    project_prefix: str = "mlinfra-fleet",
    seed: int = 1,
) -> dict[str, Any]:
    """Build a fleet document with ``instances`` VMs spread over zones and projects.

    Instances go round-robin over projects, then over zones, so every zone of
    every project gets a share. Each instance carries the fields a Terraform
    created GPU VM has (disks, tags, shielded VM settings, metadata), about
    4 KB of JSON, so that response sizes resemble the real API's.
    """
    if instances < 0 or zones < 1 or projects < 1:
        raise ValueError("Generate at least one zone and one project, and no negative instance count.")
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not a secret)
    zone_names = generated_zones(zones)
    project_names = generated_projects(projects, project_prefix)
    document: dict[str, Any] = {
        "projects": {name: {"zones": list(zone_names), "instances": []} for name in project_names}
    }
    for index in range(instances):
        project = project_names[index % projects]
        zone = zone_names[(index // projects) % zones]
        shape = _POOLS[index % len(_POOLS)]
        document["projects"][project]["instances"].append(
            _generated_instance(index, project, zone, shape=shape, environment=environment, rng=rng)
        )
    return document


# A startup script of the size Terraform-managed GPU VMs typically carry.
_STARTUP_SCRIPT = """#!/bin/bash
# Managed by Terraform; changes here are overwritten.
set -euo pipefail
mkdir -p /var/lib/mlinfra /etc/mlinfra
if ! mountpoint -q /mnt/data; then
  mkfs.ext4 -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/disk/by-id/google-data || true
  mkdir -p /mnt/data
  mount -o discard,defaults /dev/disk/by-id/google-data /mnt/data
  echo "/dev/disk/by-id/google-data /mnt/data ext4 discard,defaults,nofail 0 2" >> /etc/fstab
fi
sysctl -w net.core.rmem_max=268435456 net.core.wmem_max=268435456
echo "startup finished at $(date --iso-8601=seconds)" > /var/lib/mlinfra/startup.done
"""


def _generated_instance(
    index: int, project: str, zone: str, *, shape: _PoolShape, environment: str, rng: random.Random
) -> dict[str, Any]:
    name = f"{shape.pool}-{index:05d}"
    network_ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
    created = _CREATED + timedelta(minutes=index)
    region = region_of(zone)
    instance: dict[str, Any] = {
        "name": name,
        "zone": zone,
        "description": f"{shape.role} node of pool {shape.pool}",
        "machineType": f"zones/{zone}/machineTypes/{shape.machine_type}",
        "status": "RUNNING",
        "creationTimestamp": created.isoformat(timespec="milliseconds"),
        "lastStartTimestamp": (created + timedelta(minutes=2)).isoformat(timespec="milliseconds"),
        "cpuPlatform": "Intel Cascade Lake",
        "canIpForward": False,
        "deletionProtection": False,
        "startRestricted": False,
        "tags": {
            "items": ["mlinfra", shape.pool, f"{environment}-fleet"],
            "fingerprint": f"{rng.getrandbits(48):012x}",
        },
        "labels": {"env": environment, "pool": shape.pool, "role": shape.role, "managed-by": "terraform"},
        "networkInterfaces": [
            {
                "network": f"projects/{project}/global/networks/{environment}-vpc",
                "subnetwork": f"projects/{project}/regions/{region}/subnetworks/{environment}-{region}",
                "networkIP": network_ip,
                "fingerprint": f"{rng.getrandbits(48):012x}",
                "accessConfigs": [{"natIP": f"34.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"}]
                if index % 4 == 0
                else [],
            }
        ],
        "disks": [
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": f"projects/{project}/zones/{zone}/disks/{name}",
                "deviceName": "persistent-disk-0",
                "index": 0,
                "boot": True,
                "autoDelete": True,
                "licenses": ["projects/debian-cloud/global/licenses/debian-12-bookworm"],
                "interface": "SCSI",
                "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}, {"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "GVNIC"}],
                "diskSizeGb": "200",
                "architecture": "X86_64",
            },
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": f"projects/{project}/zones/{zone}/disks/{name}-data",
                "deviceName": "data",
                "index": 1,
                "boot": False,
                "autoDelete": False,
                "interface": "SCSI",
                "diskSizeGb": "2048",
                "architecture": "X86_64",
            },
        ],
        "metadata": {
            "items": [
                {"key": "enable-oslogin", "value": "TRUE"},
                {"key": "install-nvidia-driver", "value": "False"},
                {"key": "startup-script", "value": _STARTUP_SCRIPT},
                {"key": "google-logging-enabled", "value": "true"},
                {"key": "google-monitoring-enabled", "value": "true"},
                {"key": "mlinfra-registration-token", "value": f"{rng.getrandbits(128):032x}"},
            ]
        },
        "serviceAccounts": [
            {
                "email": f"{shape.role}-nodes@{project}.iam.gserviceaccount.com",
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
        ],
        "scheduling": {"provisioningModel": "SPOT", "preemptible": False} if shape.spot else {},
        "shieldedInstanceConfig": {"enableSecureBoot": False, "enableVtpm": True, "enableIntegrityMonitoring": True},
        "reservationAffinity": {"consumeReservationType": "ANY_RESERVATION"},
        "displayDevice": {"enableDisplay": False},
        "networkPerformanceConfig": {"totalEgressBandwidthTier": "DEFAULT"},
        "resourceStatus": {"physicalHost": f"/{rng.getrandbits(32):08x}/{rng.getrandbits(32):08x}"},
        "confidentialInstanceConfig": {"enableConfidentialCompute": False},
        "shieldedInstanceIntegrityPolicy": {"updateAutoLearnPolicy": True},
        "satisfiesPzi": True,
        "keyRevocationActionType": "NONE",
    }
    if shape.accelerator_type:
        instance["guestAccelerators"] = [
            {"acceleratorType": shape.accelerator_type, "acceleratorCount": shape.accelerator_count}
        ]
    return instance
