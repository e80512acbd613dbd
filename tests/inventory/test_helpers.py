"""Unit tests of the pure helpers in plugins/module_utils/gce_inventory.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from google.cloud.compute_v1.types import compute

from ansible_collections.mlinfra.platform.plugins.module_utils import gce_inventory as helpers

REDACT = re.compile(helpers.DEFAULT_REDACT_PATTERN)
ZONE_URL = "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a"


def raw_instance(**fields) -> object:
    """Build a raw protobuf Instance from API JSON, as the plugin receives it."""
    document = {
        "id": "42",
        "name": "gpu-1",
        "zone": ZONE_URL,
        "machineType": f"{ZONE_URL}/machineTypes/a2-highgpu-8g",
        "status": "RUNNING",
        **fields,
    }
    return compute.Instance.pb(compute.Instance.from_json(json.dumps(document)))


def test_hostvars_of_builtin_gpu_instance():
    hostvars = helpers.instance_hostvars(
        raw_instance(
            labels={"env": "prod", "pool": "train-a100", "role": "training"},
            networkInterfaces=[{"networkIP": "10.0.0.1", "accessConfigs": [{"name": "x"}, {"natIP": "34.0.0.1"}]}],
            serviceAccounts=[{"email": "sa@p.iam.gserviceaccount.com"}],
            scheduling={"onHostMaintenance": "TERMINATE", "automaticRestart": False},
        ),
        "p",
        REDACT,
    )
    assert hostvars["gce_id"] == "42"
    assert hostvars["gce_zone"] == "us-central1-a"
    assert hostvars["gce_region"] == "us-central1"
    assert hostvars["gce_machine_type"] == "a2-highgpu-8g"
    assert hostvars["gce_machine_family"] == "a2"
    assert hostvars["gce_private_ip"] == "10.0.0.1"
    assert hostvars["gce_public_ip"] == "34.0.0.1"
    assert hostvars["gce_service_account"] == "sa@p.iam.gserviceaccount.com"
    assert hostvars["gce_gpu_type"] == "nvidia-tesla-a100"
    assert hostvars["gce_gpu_count"] == 8
    assert hostvars["gce_gpu_model"] == "NVIDIA A100-SXM4-40GB"
    assert hostvars["gce_nvswitch"] is True
    assert hostvars["gce_scheduling"] == {
        "spot": False,
        "on_host_maintenance": "TERMINATE",
        "automatic_restart": False,
        "provisioning_model": "STANDARD",
    }
    assert (hostvars["gce_env"], hostvars["gce_pool"], hostvars["gce_role"]) == ("prod", "train-a100", "training")


def test_hostvars_of_bare_instance():
    hostvars = helpers.instance_hostvars(raw_instance(machineType=f"{ZONE_URL}/machineTypes/e2-small"), "p", REDACT)
    assert hostvars["gce_private_ip"] is None
    assert hostvars["gce_public_ip"] is None
    assert hostvars["gce_service_account"] is None
    assert hostvars["gce_metadata"] == {}
    assert hostvars["gce_labels"] == {}
    assert hostvars["gce_gpu_type"] is None
    assert hostvars["gce_gpu_count"] == 0
    assert hostvars["gce_gpu_model"] is None
    assert hostvars["gce_env"] is None
    # An unset automaticRestart means true in the Compute API.
    assert hostvars["gce_scheduling"]["automatic_restart"] is True
    assert hostvars["gce_scheduling"]["on_host_maintenance"] is None


def test_attached_gpus_win_over_table():
    instance = raw_instance(
        machineType=f"{ZONE_URL}/machineTypes/n1-standard-16",
        guestAccelerators=[
            {"acceleratorType": f"{ZONE_URL}/acceleratorTypes/nvidia-tesla-v100", "acceleratorCount": 4}
        ],
    )
    hostvars = helpers.instance_hostvars(instance, "p", REDACT)
    assert hostvars["gce_gpu_type"] == "nvidia-tesla-v100"
    assert hostvars["gce_gpu_count"] == 4
    assert hostvars["gce_gpu_model"] == "Tesla V100-SXM2-16GB"


@pytest.mark.parametrize(
    ("scheduling", "spot"),
    [({"provisioningModel": "SPOT"}, True), ({"preemptible": True}, True), ({"provisioningModel": "STANDARD"}, False)],
)
def test_spot_detection(scheduling, spot):
    hostvars = helpers.instance_hostvars(raw_instance(scheduling=scheduling), "p", REDACT)
    assert hostvars["gce_scheduling"]["spot"] is spot


@pytest.mark.parametrize(
    ("key", "redacted"),
    [
        ("startup-script", False),
        ("enable-oslogin", False),
        ("ssh-keys", False),
        ("db-password", True),
        ("DB_PASSWD", True),
        ("api-token", True),
        ("client_secret", True),
        ("gpg-passphrase", True),
        ("service-account-credentials", True),
        ("tls-private-key", True),
        ("vendor_api_key", True),
        ("aws-access-key", True),
    ],
)
def test_metadata_redaction(key, redacted):
    hostvars = helpers.instance_hostvars(raw_instance(metadata={"items": [{"key": key, "value": "v"}]}), "p", REDACT)
    assert hostvars["gce_metadata"] == {key: helpers.REDACTED if redacted else "v"}


def test_unknown_gpu_shape():
    unknown = helpers.instance_hostvars(
        raw_instance(machineType=f"{ZONE_URL}/machineTypes/a3-futuregpu-4g"), "p", REDACT
    )
    known = helpers.instance_hostvars(raw_instance(), "p", REDACT)
    cpu = helpers.instance_hostvars(raw_instance(machineType=f"{ZONE_URL}/machineTypes/n2-standard-8"), "p", REDACT)
    assert helpers.has_unknown_gpu_shape(unknown) is True
    assert helpers.has_unknown_gpu_shape(known) is False
    assert helpers.has_unknown_gpu_shape(cpu) is False


def test_default_groups_sanitized():
    hostvars = {
        "gce_env": "prod",
        "gce_pool": "train-a100",
        "gce_role": "training",
        "gce_zone": "us-central1-a",
        "gce_gpu_type": "nvidia-l4",
    }
    assert helpers.default_groups(hostvars) == [
        "env_prod",
        "pool_train_a100",
        "role_training",
        "zone_us_central1_a",
        "gpu_nvidia_l4",
    ]
    assert helpers.default_groups(dict(hostvars, gce_pool=None, gce_gpu_type=None)) == [
        "env_prod",
        "role_training",
        "zone_us_central1_a",
    ]


def test_sanitize_group_name():
    assert helpers.sanitize_group_name("pool_train-a100.v2 x") == "pool_train_a100_v2_x"


@pytest.mark.parametrize(
    ("hostnames", "expected"),
    [
        (["name"], "gpu-1"),
        (["public_ip", "private_ip"], "10.0.0.1"),
        (["labels.hostname", "name"], "gpu-1"),
        (["labels.pool"], "train-a100"),
        (["public_ip"], None),
    ],
)
def test_select_hostname(hostnames, expected):
    hostvars = {
        "gce_name": "gpu-1",
        "gce_private_ip": "10.0.0.1",
        "gce_public_ip": None,
        "gce_labels": {"pool": "train-a100"},
    }
    assert helpers.select_hostname(hostvars, hostnames) == expected


def test_validate_hostnames():
    assert helpers.validate_hostnames(["labels.team", "private_ip"]) == ["labels.team", "private_ip"]
    for bad in (["fqdn"], ["labels."], [3], []):
        with pytest.raises(helpers.InvalidOption):
            helpers.validate_hostnames(bad)


def test_validate_statuses():
    assert helpers.validate_statuses(["running", "TERMINATED"]) == ["RUNNING", "TERMINATED"]
    with pytest.raises(helpers.InvalidOption) as raised:
        helpers.validate_statuses(["STOPED"])
    assert "'STOPED'" in str(raised.value)


@pytest.mark.parametrize(
    ("statuses", "filters", "expected"),
    [
        (["RUNNING"], [], "(status = RUNNING)"),
        ([], [], ""),
        (["RUNNING", "STOPPING"], [], "((status = RUNNING) OR (status = STOPPING))"),
        (["RUNNING"], ["labels.pool = a", "(name = b*)"], "(status = RUNNING) (labels.pool = a) (name = b*)"),
        ([], ["(a = 1) OR (b = 2)"], "((a = 1) OR (b = 2))"),
    ],
)
def test_build_filter(statuses, filters, expected):
    assert helpers.build_filter(statuses, filters) == expected


def test_sort_key_orders_numerically():
    records = [
        {"gce_id": "100", "gce_project": "p", "gce_zone": "z", "gce_name": "b"},
        {"gce_id": "99", "gce_project": "p", "gce_zone": "z", "gce_name": "a"},
    ]
    assert [record["gce_id"] for record in sorted(records, key=helpers.sort_key)] == ["99", "100"]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:9471", True),
        ("http://127.8.0.1", True),
        ("http://[::1]:80", True),
        ("http://localhost:1", True),
        ("https://compute.googleapis.com", False),
        ("http://10.0.0.1", False),
        ("not a url", False),
    ],
)
def test_is_loopback_url(url, loopback):
    assert helpers.is_loopback_url(url) is loopback


def test_validate_endpoint():
    assert helpers.validate_endpoint("http://127.0.0.1:9471/") == "http://127.0.0.1:9471"
    assert helpers.validate_endpoint("https://compute.example.com") == "https://compute.example.com"
    with pytest.raises(helpers.InvalidOption, match="plain http is allowed only on a loopback"):
        helpers.validate_endpoint("http://compute.example.com")
    with pytest.raises(helpers.InvalidOption, match="expected an http"):
        helpers.validate_endpoint("ftp://127.0.0.1")


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert helpers.parse_retry_after("3", now) == 3.0
    assert helpers.parse_retry_after("0.5", now) == 0.5
    assert helpers.parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now) == 10.0
    assert helpers.parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert helpers.parse_retry_after(None, now) is None
    assert helpers.parse_retry_after("soon", now) is None


def test_retry_delay():
    assert helpers.retry_delay(0, 1.0, 60.0, retry_after=7.0) == 7.0
    assert helpers.retry_delay(0, 1.0, 5.0, retry_after=70.0) == 5.0
    assert helpers.retry_delay(0, 1.0, 60.0, jitter=lambda: 0.0) == 1.0
    assert helpers.retry_delay(3, 1.0, 60.0, jitter=lambda: 0.0) == 8.0
    assert helpers.retry_delay(3, 1.0, 60.0, jitter=lambda: 1.0) == 12.0
    assert helpers.retry_delay(10, 1.0, 30.0, jitter=lambda: 0.5) == 30.0


VARIABLES = {
    "gce_name": "gpu-1",
    "gce_labels": {"managed-by": "terraform", "items": "x"},
    "gce_list": ["a", "b"],
    "gce_none": None,
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("gce_name", "gpu-1"),
        (" gce_name ", "gpu-1"),
        ("gce_labels['managed-by']", "terraform"),
        ('gce_labels["managed-by"]', "terraform"),
        ("gce_list[1]", "b"),
        ("gce_list[-1]", "b"),
        ("gce_name[0]", "g"),
        ("gce_none", None),
        ("'community.docker.docker'", "community.docker.docker"),
        ('"literal"', "literal"),
    ],
)
def test_simple_expression_values(expression, expected):
    evaluate = helpers.compile_simple_expression(expression)
    assert evaluate is not None
    assert evaluate(VARIABLES) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "gce_name | upper",
        "gce_labels.items",
        "gce_name ~ 'x'",
        "true",
        "none",
        "gce_count >= 8",
        "'{{ gce_name }}'",
        "gce_labels[gce_name]",
    ],
)
def test_complex_expressions_left_to_jinja(expression):
    assert helpers.compile_simple_expression(expression) is None


@pytest.mark.parametrize("expression", ["missing", "gce_labels.team", "gce_list[5]", "gce_none.x"])
def test_undefined_reference_raises(expression):
    evaluate = helpers.compile_simple_expression(expression)
    with pytest.raises(helpers.UndefinedReference):
        evaluate(VARIABLES)
