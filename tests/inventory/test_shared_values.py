"""Shared, pre-tagged host variable values: the helper, and the inventory it builds inside ansible-core."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils import gce_inventory as helpers

from .conftest import REPO_ROOT, cached_fleet_config, emulator_config, isolated_env


class Tagged(str):
    """A str subclass standing in for ansible-core's tagged str in unit tests."""


class TaggedInt(int):
    pass


class TaggedDict(dict):
    pass


def fake_tag(calls: list):
    def tag(value):
        calls.append(value)
        return {str: Tagged, int: TaggedInt, dict: TaggedDict}[type(value)](value)

    return tag


def test_shared_values_deduplicate_without_tag():
    values = helpers.SharedValues()
    first = values.shared("".join(["us-", "central1-a"]))
    second = values.shared("".join(["us-central1", "-a"]))
    assert first == "us-central1-a"
    assert second is first
    assert values.shared(None) is None
    assert values.shared(True) is True
    assert values.tags_values is False
    assert values.final_types == {type(None), bool}


def test_shared_values_tag_each_value_once():
    calls: list = []
    values = helpers.SharedValues(fake_tag(calls))
    setup_calls = len(calls)
    zone = values.shared("us-central1-a")
    again = values.shared("us-central1-a")
    count = values.shared(8)
    assert type(zone) is Tagged
    assert again is zone
    assert type(count) is TaggedInt
    assert calls[setup_calls:] == ["us-central1-a", 8]
    # True == 1, but a bool is never stored in place of an int or tagged.
    assert values.shared(True) is True
    assert values.shared(1) is not True
    assert values.final_types == {type(None), bool, Tagged, TaggedInt, TaggedDict}


def test_unique_values_not_stored():
    calls: list = []
    values = helpers.SharedValues(fake_tag(calls))
    first = values.unique("10.0.0.1")
    second = values.unique("10.0.0.1")
    assert type(first) is Tagged
    assert second is not first
    assert values.unique(None) is None


def test_host_variables_share_and_tag():
    values = helpers.SharedValues(fake_tag([]))
    record = {
        "gce_name": "gpu-1",
        "gce_zone": "us-central1-a",
        "gce_public_ip": None,
        "gce_nvswitch": False,
        "gce_labels": {"env": "lab", "pool": "train-a100"},
        "gce_scheduling": {"spot": False, "provisioning_model": "STANDARD"},
    }
    first = values.host_variables(record)
    second = values.host_variables(dict(record, gce_name="gpu-2"))
    assert first == record
    assert type(first["gce_name"]) is Tagged
    assert second["gce_name"] is not first["gce_name"]
    assert second["gce_zone"] is first["gce_zone"]
    assert first["gce_public_ip"] is None
    assert type(first["gce_labels"]) is TaggedDict
    assert second["gce_labels"] is not first["gce_labels"]
    assert second["gce_labels"]["pool"] is first["gce_labels"]["pool"]
    assert type(first["gce_scheduling"]) is TaggedDict


def test_host_variables_leave_nested_containers_untagged():
    values = helpers.SharedValues(fake_tag([]))
    result = values.host_variables({"gce_extra": {"items": [1, 2]}, "gce_ratio": 0.5})
    # A list inside is not final, so the dict goes through ansible-core's own checks.
    assert type(result["gce_extra"]) is dict
    assert result["gce_ratio"] == 0.5


def test_packed_records_round_trip():
    packer = helpers.RecordPacker()
    records = [
        {"gce_name": "gpu-1", "gce_gpu_count": 1, "gce_nvswitch": True, "gce_ip": None, "gce_labels": {"a": "1"}},
        {"gce_name": "gpu-2", "gce_gpu_count": 8, "gce_nvswitch": False, "gce_ip": None, "gce_labels": {}},
        {"gce_name": "gpu-3", "gce_ratio": 1.0},
    ]
    rows = [packer.pack(record) for record in records]
    # Encode and decode through JSON, as the cache does.
    values, shapes, rows = json.loads(json.dumps([packer.values, packer.shapes, rows]))
    restored = helpers.unpack_records(values, shapes, rows)
    assert restored == records
    assert len(shapes) == 2
    # True, 1 and 1.0 are equal in Python but kept apart by type.
    assert restored[0]["gce_nvswitch"] is True
    assert type(restored[0]["gce_gpu_count"]) is int
    assert type(restored[2]["gce_ratio"]) is float


def test_packed_values_stored_once():
    packer = helpers.RecordPacker()
    script = "#!/bin/bash\necho ready\n"
    for index in range(3):
        packer.pack({"gce_name": f"host-{index}", "gce_metadata": {"startup-script": script}, "gce_zone": "z"})
    assert packer.values.count(script) == 1
    assert packer.values.count("z") == 1
    assert len(packer.values) == 5


def test_packer_rejects_nested_containers():
    packer = helpers.RecordPacker()
    with pytest.raises(TypeError, match="Cannot pack a value of type list"):
        packer.pack({"gce_tags": ["a", "b"]})
    with pytest.raises(TypeError, match="Cannot pack a value of type dict"):
        packer.pack({"gce_labels": {"nested": {"a": "b"}}})


def test_unpack_rejects_short_row():
    with pytest.raises(IndexError, match="has 1 values for 2 variables"):
        helpers.unpack_records(["a"], [["gce_name", "gce_zone"]], [[0, 0]])


# Loads one inventory source three times in one process: through the CLI,
# then with every value going through ansible-core's inventory proxy, then with
# the plugin's shared, pre-tagged values. Prints each load's host variables as
# (type, tags, value) trees.
COMPARE_SCRIPT = r"""
import io, json, sys
from ansible.cli.inventory import InventoryCLI
from ansible.inventory.manager import InventoryManager
from ansible.module_utils._internal._datatag import AnsibleTagHelper
from ansible.parsing.dataloader import DataLoader

def describe(value):
    tags = sorted(repr(tag) for tag in AnsibleTagHelper.tags(value))
    if isinstance(value, dict):
        return [type(value).__name__, tags, {key: describe(item) for key, item in value.items()}]
    return [type(value).__name__, tags, value]

def summary(hosts):
    zones = {}
    for host in hosts.values():
        zones.setdefault(str(host.vars["gce_zone"]), []).append(host.vars["gce_zone"])
    shared_zones = all(all(item is items[0] for item in items) for items in zones.values())
    return {"hosts": {name: describe(host.vars) for name, host in hosts.items()}, "shared_zones": shared_zones}

fetch_plugins = InventoryManager._fetch_inventory_plugins

def fetch_without_origin(manager):
    plugins = fetch_plugins(manager)
    for plugin in plugins:
        plugin._origin_tag = lambda: None
    return plugins

def load(source, shared):
    InventoryManager._fetch_inventory_plugins = fetch_plugins if shared else fetch_without_origin
    return summary(InventoryManager(loader=DataLoader(), sources=[source]).hosts)

source = sys.argv[1]
# The CLI sets up ansible-core's configuration and plugin loaders, and its run fills a configured cache.
cli = InventoryCLI(["ansible-inventory", "-i", source, "--graph"])
stdout, sys.stdout = sys.stdout, io.StringIO()
try:
    cli.run()
except SystemExit:
    pass
finally:
    sys.stdout = stdout
print(json.dumps({"first": summary(cli.inventory.hosts), "plain": load(source, False), "shared": load(source, True)}))
"""


def compare_paths(tmp_path, config: dict) -> dict:
    path = tmp_path / "compare.gcp_fleet.yml"
    path.write_text(json.dumps({"plugin": "mlinfra.platform.gcp_fleet", **config}))
    env = isolated_env(tmp_path, ANSIBLE_INVENTORY_ENABLED="mlinfra.platform.gcp_fleet")
    result = subprocess.run(
        [sys.executable, "-c", COMPARE_SCRIPT, str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_shared_values_match_proxy_tagging(emulator, tmp_path):
    emulator.generate(instances=40, zones=3, projects=1, environment="lab", project_prefix="mlinfra-share")
    config = emulator_config(emulator, ["mlinfra-share-01"])
    outcome = compare_paths(tmp_path, config)
    shared, plain = outcome["shared"], outcome["plain"]
    assert len(shared["hosts"]) == 40
    assert shared["hosts"] == plain["hosts"]
    assert shared["shared_zones"] is True
    assert plain["shared_zones"] is False
    some_host = next(iter(shared["hosts"].values()))
    assert some_host[0] == "dict"
    zone_type, zone_tags, _zone = some_host[2]["gce_zone"]
    assert zone_type == "_AnsibleTaggedStr"
    assert len(zone_tags) == 1
    assert zone_tags[0].startswith("Origin(")


def test_shared_values_match_proxy_tagging_from_cache(emulator, tmp_path):
    config = cached_fleet_config(emulator, tmp_path, "mlinfra-sharec")
    outcome = compare_paths(tmp_path, config)
    # The first load listed the API and filled the cache, and the other two read the cache.
    assert emulator.request_count(operation="instances.aggregatedList") == 1
    assert len(outcome["first"]["hosts"]) == 20
    assert outcome["shared"]["hosts"] == outcome["plain"]["hosts"]
    assert outcome["first"]["hosts"] == outcome["plain"]["hosts"]
    assert outcome["shared"]["shared_zones"] is True
