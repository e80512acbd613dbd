"""Fleet file checks: every mistake is one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.fleet import FleetError, group_name, load_fleet

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_FLEET = REPO_ROOT / "inventories" / "lab" / "fleet.yml"
LAB_GROUP_VARS = REPO_ROOT / "inventories" / "lab" / "group_vars"


def write_fleet(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def fleet_document() -> dict:
    return yaml.safe_load(LAB_FLEET.read_text())


def test_lab_fleet_meets_the_minimum_shape():
    fleet = load_fleet(LAB_FLEET, LAB_GROUP_VARS)
    zones = {host.zone for host in fleet.hosts}
    roles = {host.role for host in fleet.hosts}
    machine_types = {host.machine_type for host in fleet.hosts}

    assert len(fleet.hosts) >= 3
    assert len(zones) >= 2
    assert roles == {"training", "inference"}
    assert {"a2-highgpu-1g", "g2-standard-8"} <= machine_types
    assert fleet.environment == "lab"


def test_lab_fleet_gpu_expectations():
    fleet = load_fleet(LAB_FLEET, LAB_GROUP_VARS)
    by_type = {host.machine_type: (host.gpu_type, host.gpu_count) for host in fleet.hosts}

    assert by_type["a2-highgpu-1g"] == ("nvidia-tesla-a100", 1)
    assert by_type["g2-standard-8"] == ("nvidia-l4", 1)


def test_unknown_pool_rejected(tmp_path, fleet_document):
    fleet_document["hosts"][0]["pool"] = "train-h100"

    with pytest.raises(FleetError) as error:
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)

    message = str(error.value)
    assert "unknown pool 'train-h100'" in message
    assert "declare it under 'pools'" in message
    assert "\n" not in message


def test_unsupported_machine_type_rejected(tmp_path, fleet_document):
    fleet_document["hosts"][1]["machine_type"] = "n2-standard-4"

    with pytest.raises(FleetError) as error:
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)

    message = str(error.value)
    assert "host 'lab-infer-l4-0'" in message
    assert "unsupported machine type 'n2-standard-4'" in message
    assert "g2-standard-8" in message


def test_pool_without_group_vars_rejected(tmp_path, fleet_document):
    fleet_document["pools"]["train-h100"] = {"role": "training", "machine_type": "a3-highgpu-8g"}

    with pytest.raises(FleetError) as error:
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)

    assert "pool_train_h100.yml" in str(error.value)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("zone", "central", "invalid zone 'central'"),
        ("name", "Lab_Host", "invalid name"),
        ("pool", None, "missing field 'pool'"),
    ],
)
def test_bad_host_fields_rejected(tmp_path, fleet_document, field, value, expected):
    fleet_document["hosts"][0][field] = value

    with pytest.raises(FleetError) as error:
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)

    assert expected in str(error.value)


def test_duplicate_host_rejected(tmp_path, fleet_document):
    fleet_document["hosts"].append(dict(fleet_document["hosts"][0]))

    with pytest.raises(FleetError, match="declared twice"):
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)


def test_unknown_role_rejected(tmp_path, fleet_document):
    fleet_document["pools"]["infer-l4"]["role"] = "batch"

    with pytest.raises(FleetError, match="unknown role 'batch'; use one of: training, inference"):
        load_fleet(write_fleet(tmp_path, fleet_document), LAB_GROUP_VARS)


def test_group_name_replaces_dashes():
    assert group_name("pool", "train-a100") == "pool_train_a100"
    assert group_name("zone", "us-central1-a") == "zone_us_central1_a"
