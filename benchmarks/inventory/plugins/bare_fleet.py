# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: bare_fleet
short_description: Benchmark floor for the gcp_fleet inventory plugin
description:
  - Fetches the same aggregatedList pages as mlinfra.platform.gcp_fleet (same filter, page size and field mask)
    with one requests session and json.loads, and adds the same host variables, default groups and the
    benchmark's two keyed groups (family_<machine family>, managed_<managed-by label>) in plain Python.
  - It has no authentication, retries, error handling, caching or templating. It exists only to measure
    what the cheapest possible plugin costs inside ansible-inventory, and is not for real use.
options:
  plugin:
    description: Marks the file as a config of this plugin.
    type: str
    required: true
    choices: [bare_fleet]
  api_endpoint:
    description: Base URL of a local Compute API emulator.
    type: str
    required: true
  projects:
    description: Project IDs to list.
    type: list
    elements: str
    required: true
  environment:
    description: Value of gce_inventory_environment; instances of other environments are left out.
    type: str
    required: true
"""

import json  # noqa: E402
import re  # noqa: E402

import requests  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin  # noqa: E402

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog  # noqa: E402
from ansible_collections.mlinfra.platform.plugins.module_utils.gce_inventory import (  # noqa: E402
    DEFAULT_REDACT_PATTERN,
    FIELD_MASK,
    REDACTED,
)

_INVALID = re.compile(r"[^A-Za-z0-9_]")


def _short(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _hostvars(instance: dict, project: str, redact: re.Pattern) -> dict:
    zone = _short(instance["zone"])
    machine_type = _short(instance["machineType"])
    labels = instance.get("labels", {})
    interfaces = instance.get("networkInterfaces") or [{}]
    nat = [config["natIP"] for config in interfaces[0].get("accessConfigs", []) if config.get("natIP")]
    accounts = [account["email"] for account in instance.get("serviceAccounts", []) if account.get("email")]
    scheduling = instance.get("scheduling", {})
    model_name = scheduling.get("provisioningModel", "STANDARD")
    gpu_type, gpu_count = gpu_catalog.expected_gpus(machine_type, instance.get("guestAccelerators"))
    model = gpu_catalog.gpu_model(gpu_type)
    metadata = {
        item["key"]: REDACTED if redact.search(item["key"]) else item.get("value", "")
        for item in instance.get("metadata", {}).get("items", [])
    }
    return {
        "gce_name": instance["name"],
        "gce_id": instance["id"],
        "gce_project": project,
        "gce_zone": zone,
        "gce_region": zone.rsplit("-", 1)[0],
        "gce_machine_type": machine_type,
        "gce_machine_family": gpu_catalog.machine_family(machine_type),
        "gce_status": instance["status"],
        "gce_labels": labels,
        "gce_metadata": metadata,
        "gce_private_ip": interfaces[0].get("networkIP"),
        "gce_public_ip": nat[0] if nat else None,
        "gce_service_account": accounts[0] if accounts else None,
        "gce_scheduling": {
            "spot": model_name == "SPOT" or scheduling.get("preemptible", False),
            "on_host_maintenance": scheduling.get("onHostMaintenance"),
            "automatic_restart": scheduling.get("automaticRestart", True),
            "provisioning_model": model_name,
        },
        "gce_gpu_type": gpu_type,
        "gce_gpu_count": gpu_count,
        "gce_gpu_model": model.product_name if model else None,
        "gce_nvswitch": gpu_catalog.has_nvswitch(machine_type),
        "gce_env": labels.get("env"),
        "gce_pool": labels.get("pool"),
        "gce_role": labels.get("role"),
    }


class InventoryModule(BaseInventoryPlugin):
    NAME = "bare_fleet"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("bare_fleet.yml", "bare_fleet.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        endpoint = self.get_option("api_endpoint").rstrip("/")
        environment = self.get_option("environment")
        redact = re.compile(DEFAULT_REDACT_PATTERN)
        session = requests.Session()
        records = []
        for project in self.get_option("projects"):
            url = f"{endpoint}/compute/v1/projects/{project}/aggregated/instances"
            params = {"maxResults": 500, "filter": "(status = RUNNING)", "returnPartialSuccess": "true"}
            while True:
                response = session.get(url, params=params, headers={"X-Goog-FieldMask": FIELD_MASK}, timeout=60)
                response.raise_for_status()
                page = json.loads(response.content)
                for scoped in page.get("items", {}).values():
                    records.extend(_hostvars(instance, project, redact) for instance in scoped.get("instances", []))
                if not page.get("nextPageToken"):
                    break
                params["pageToken"] = page["nextPageToken"]

        records.sort(key=lambda record: int(record["gce_id"]))
        for record in records:
            if record["gce_env"] != environment:
                continue
            host = record["gce_name"]
            self.inventory.add_host(host)
            record["gce_inventory_environment"] = environment
            if record["gce_private_ip"]:
                record["ansible_host"] = record["gce_private_ip"]
            for name, value in record.items():
                self.inventory.set_variable(host, name, value)
            groups = [
                f"{prefix}_{record[key]}"
                for prefix, key in (
                    ("env", "gce_env"),
                    ("pool", "gce_pool"),
                    ("role", "gce_role"),
                    ("zone", "gce_zone"),
                    ("gpu", "gce_gpu_type"),
                )
                if record[key]
            ]
            groups.append(f"family_{record['gce_machine_family']}")
            groups.append(f"managed_{record['gce_labels'].get('managed-by')}")
            for raw_name in groups:
                group = self.inventory.add_group(_INVALID.sub("_", raw_name))
                self.inventory.add_child(group, host)
