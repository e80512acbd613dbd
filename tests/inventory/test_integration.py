"""gcp_fleet through the real ansible-inventory CLI against the Compute API emulator."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.emulator import ComputeEmulator

from .conftest import REPO_ROOT, assert_failed_with, cached_fleet_config, emulator_config, isolated_env, run_inventory

PROJECT = "mlinfra-lab"
ZONE_A = "us-central1-a"
ZONE_B = "europe-west4-b"


def nic(ip: str, nat: str | None = None) -> list[dict]:
    interface: dict = {"networkIP": ip}
    if nat:
        interface["accessConfigs"] = [{"natIP": nat}]
    return [interface]


def instance(name: str, instance_id: str, zone: str, machine_type: str, **fields) -> dict:
    body = {
        "name": name,
        "id": instance_id,
        "zone": zone,
        "machineType": f"zones/{zone}/machineTypes/{machine_type}",
        "labels": {"env": "lab", "pool": "train-a100", "role": "training", "managed-by": "terraform"},
        "networkInterfaces": nic("10.0.0.1"),
        "metadata": {"items": [{"key": "enable-oslogin", "value": "TRUE"}]},
    }
    body.update(fields)
    return body


# Ids are out of insertion order on purpose: the inventory must come out sorted by id.
SHAPES = [
    instance(
        "a100-builtin", "9000000000000000005", ZONE_A, "a2-highgpu-1g",
        networkInterfaces=nic("10.0.0.5", "34.1.2.3"),
        serviceAccounts=[{"email": "training@mlinfra-lab.iam.gserviceaccount.com", "scopes": []}],
        metadata={"items": [
            {"key": "startup-script", "value": "echo ready"},
            {"key": "api-token", "value": "s3cr3t"},
            {"key": "DB_PASSWORD", "value": "hunter2"},
        ]},
    ),
    instance(
        "t4-attached", "9000000000000000001", ZONE_B, "n1-standard-8",
        labels={"env": "lab", "pool": "infer-t4", "role": "inference"},
        networkInterfaces=nic("10.0.0.6"),
        guestAccelerators=[{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 2}],
    ),
    instance(
        "cpu-only", "9000000000000000003", ZONE_A, "n2-standard-4",
        labels={"env": "lab", "pool": "batch-cpu", "role": "batch"},
    ),
    instance(
        "no-nic", "9000000000000000002", ZONE_A, "g2-standard-8",
        labels={"env": "lab", "pool": "infer-l4", "role": "inference"},
    ),
    instance("no-metadata-items", "9000000000000000004", ZONE_A, "g2-standard-8", metadata={}),
    instance(
        "spot-l4", "9000000000000000006", ZONE_B, "g2-standard-24",
        labels={"env": "lab", "pool": "infer-l4", "role": "inference"},
        scheduling={"provisioningModel": "SPOT"},
    ),
    instance("stopping", "9000000000000000007", ZONE_A, "n2-standard-4", status="STOPPING"),
    instance("terminated", "9000000000000000008", ZONE_A, "n2-standard-4", status="TERMINATED"),
    instance("suspended", "9000000000000000009", ZONE_A, "n2-standard-4", status="SUSPENDED"),
    instance("dev-box", "9000000000000000010", ZONE_A, "g2-standard-8", labels={"env": "dev", "pool": "infer-l4"}),
]  # fmt: skip
# "no-nic" has no networkInterfaces at all.
del SHAPES[3]["networkInterfaces"]

LAB_COMPOSE = {"ansible_host": "gce_name", "ansible_connection": "'community.docker.docker'"}


@pytest.fixture(scope="module")
def shapes_emulator():
    with ComputeEmulator(port=0) as emulator:
        emulator.load_fleet({"projects": {PROJECT: {"zones": [ZONE_A, ZONE_B], "instances": SHAPES}}})
        yield emulator


@pytest.fixture(scope="module")
def shapes(shapes_emulator, tmp_path_factory):
    """One --list run over the shapes fleet with default options, shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("shapes")
    config = emulator_config(shapes_emulator, [PROJECT], compose=LAB_COMPOSE)
    run = run_inventory(tmp_path, config)
    assert run.returncode == 0, run.stderr
    return run


def test_hosts_sorted_by_id(shapes):
    # --list sorts hostvars by name; group member lists keep the order hosts were added in.
    order = shapes.group("env_lab")
    assert order == ["t4-attached", "no-nic", "cpu-only", "no-metadata-items", "a100-builtin", "spot-l4"]
    assert order == sorted(order, key=lambda host: int(shapes.hostvars[host]["gce_id"]))


def test_builtin_gpu_hostvars(shapes):
    host = shapes.hostvars["a100-builtin"]
    assert host["gce_gpu_type"] == "nvidia-tesla-a100"
    assert host["gce_gpu_count"] == 1
    assert host["gce_gpu_model"] == "NVIDIA A100-SXM4-40GB"
    assert host["gce_nvswitch"] is False
    assert host["gce_machine_type"] == "a2-highgpu-1g"
    assert host["gce_machine_family"] == "a2"


def test_attached_gpu_hostvars(shapes):
    host = shapes.hostvars["t4-attached"]
    assert host["gce_gpu_type"] == "nvidia-tesla-t4"
    assert host["gce_gpu_count"] == 2
    assert host["gce_gpu_model"] == "Tesla T4"
    assert host["gce_machine_family"] == "n1"


def test_no_guest_accelerators(shapes):
    host = shapes.hostvars["cpu-only"]
    assert host["gce_gpu_type"] is None
    assert host["gce_gpu_count"] == 0
    assert host["gce_gpu_model"] is None
    assert "cpu-only" not in {
        name for group, body in shapes.data.items() if group.startswith("gpu_") for name in body.get("hosts", [])
    }


def test_contract_hostvars(shapes):
    host = shapes.hostvars["a100-builtin"]
    assert host["gce_name"] == "a100-builtin"
    assert host["gce_id"] == "9000000000000000005"
    assert host["gce_project"] == PROJECT
    assert host["gce_zone"] == ZONE_A
    assert host["gce_region"] == "us-central1"
    assert host["gce_status"] == "RUNNING"
    assert host["gce_labels"] == {"env": "lab", "pool": "train-a100", "role": "training", "managed-by": "terraform"}
    assert host["gce_private_ip"] == "10.0.0.5"
    assert host["gce_public_ip"] == "34.1.2.3"
    assert host["gce_service_account"] == "training@mlinfra-lab.iam.gserviceaccount.com"
    assert host["gce_scheduling"] == {
        "spot": False,
        "on_host_maintenance": "TERMINATE",
        "automatic_restart": True,
        "provisioning_model": "STANDARD",
    }
    assert host["gce_env"] == "lab"
    assert host["gce_pool"] == "train-a100"
    assert host["gce_role"] == "training"
    assert host["gce_inventory_environment"] == "lab"
    assert host["ansible_host"] == "a100-builtin"
    assert host["ansible_connection"] == "community.docker.docker"


def test_metadata_redacted(shapes):
    metadata = shapes.hostvars["a100-builtin"]["gce_metadata"]
    assert metadata == {"startup-script": "echo ready", "api-token": "<redacted>", "DB_PASSWORD": "<redacted>"}
    assert "s3cr3t" not in shapes.stdout
    assert "hunter2" not in shapes.stdout


def test_no_external_ip(shapes):
    assert shapes.hostvars["t4-attached"]["gce_public_ip"] is None
    assert shapes.hostvars["t4-attached"]["gce_private_ip"] == "10.0.0.6"


def test_no_network_interfaces(shapes):
    host = shapes.hostvars["no-nic"]
    assert host["gce_private_ip"] is None
    assert host["gce_public_ip"] is None


def test_metadata_without_items(shapes):
    assert shapes.hostvars["no-metadata-items"]["gce_metadata"] == {}


def test_spot_scheduling(shapes):
    scheduling = shapes.hostvars["spot-l4"]["gce_scheduling"]
    assert scheduling["spot"] is True
    assert scheduling["provisioning_model"] == "SPOT"
    assert scheduling["automatic_restart"] is False
    assert shapes.hostvars["spot-l4"]["gce_gpu_count"] == 2


def test_default_status_filter_leaves_out_stopped(shapes):
    for name in ("stopping", "terminated", "suspended"):
        assert name not in shapes.hostvars


def test_default_group_names(shapes):
    assert shapes.group("pool_train_a100") == ["no-metadata-items", "a100-builtin"]
    assert shapes.group("pool_infer_l4") == ["no-nic", "spot-l4"]
    assert shapes.group("pool_infer_t4") == ["t4-attached"]
    assert shapes.group("zone_us_central1_a") == ["no-nic", "cpu-only", "no-metadata-items", "a100-builtin"]
    assert shapes.group("zone_europe_west4_b") == ["t4-attached", "spot-l4"]
    assert shapes.group("gpu_nvidia_l4") == ["no-nic", "no-metadata-items", "spot-l4"]
    assert shapes.group("gpu_nvidia_tesla_t4") == ["t4-attached"]
    assert shapes.group("gpu_nvidia_tesla_a100") == ["a100-builtin"]
    assert shapes.group("role_inference") == ["t4-attached", "no-nic", "spot-l4"]
    assert shapes.group("role_batch") == ["cpu-only"]
    assert len(shapes.group("env_lab")) == 6


def test_dev_instance_left_out_with_one_warning(shapes):
    assert "dev-box" not in shapes.hostvars
    assert "env_dev" not in shapes.data
    warnings = [line for line in shapes.warnings() if "env label" in line]
    assert len(warnings) == 1
    assert "Left out 1 instance(s) whose env label is not 'lab'" in warnings[0]
    assert "dev: 1" in warnings[0]


def test_dev_instance_in_prod_inventory(emulator, tmp_path):
    prod_labels = {"env": "prod", "pool": "train-a100", "role": "training"}
    emulator.load_fleet(
        {
            "projects": {
                "mlinfra-prod": {
                    "instances": [
                        instance("prod-1", "1", ZONE_A, "a2-highgpu-1g", labels=prod_labels),
                        instance("dev-1", "2", ZONE_A, "a2-highgpu-1g", labels=dict(prod_labels, env="dev")),
                    ]
                }
            }
        }
    )
    config = emulator_config(emulator, ["mlinfra-prod"], environment="prod")
    warned = run_inventory(tmp_path, config)
    assert warned.returncode == 0, warned.stderr
    assert list(warned.hostvars) == ["prod-1"]
    assert warned.hostvars["prod-1"]["gce_inventory_environment"] == "prod"
    guard = [line for line in warned.warnings() if "env label" in line]
    assert len(guard) == 1
    assert "Left out 1 instance(s) whose env label is not 'prod'" in guard[0]
    assert "first: dev-1 in mlinfra-prod/us-central1-a" in guard[0]

    failed = run_inventory(tmp_path, dict(config, environment_mismatch="error"))
    assert_failed_with(failed, "Found 1 instance(s) whose env label is not 'prod'", "dev: 1", "dev-1")


def test_statuses_option_lists_stopped(shapes_emulator, tmp_path):
    config = emulator_config(shapes_emulator, [PROJECT], statuses=["RUNNING", "STOPPING", "TERMINATED", "SUSPENDED"])
    run = run_inventory(tmp_path, config)
    assert run.returncode == 0, run.stderr
    assert run.hostvars["stopping"]["gce_status"] == "STOPPING"
    assert run.hostvars["terminated"]["gce_status"] == "TERMINATED"
    assert run.hostvars["suspended"]["gce_status"] == "SUSPENDED"
    # The status choice is sent to the server as a filter, not applied afterwards.
    sent = shapes_emulator.requests(operation="instances.aggregatedList")[-1]["query"]["filter"]
    assert sent == "((status = RUNNING) OR (status = STOPPING) OR (status = TERMINATED) OR (status = SUSPENDED))"


def test_hostnames_label_then_private_ip(shapes_emulator, tmp_path):
    config = emulator_config(shapes_emulator, [PROJECT], hostnames=["labels.pool", "private_ip"], zones=[ZONE_B])
    run = run_inventory(tmp_path, config)
    assert run.returncode == 0, run.stderr
    # In zone B: t4-attached (pool infer-t4) and spot-l4 (pool infer-l4).
    assert sorted(run.hostvars) == ["infer-l4", "infer-t4"]


def test_hostname_missing_label_falls_back(emulator, tmp_path):
    emulator.load_fleet(
        {
            "projects": {
                PROJECT: {
                    "instances": [
                        instance(
                            "with-label", "1", ZONE_A, "n2-standard-4", labels={"env": "lab", "hostname": "gpu-a"}
                        ),
                        instance(
                            "without-label",
                            "2",
                            ZONE_A,
                            "n2-standard-4",
                            labels={"env": "lab"},
                            networkInterfaces=nic("10.9.0.2"),
                        ),
                        instance("nothing", "3", ZONE_A, "n2-standard-4", labels={"env": "lab"}, networkInterfaces=[]),
                    ]
                }
            }
        }
    )
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], hostnames=["labels.hostname", "private_ip"]))
    assert run.returncode == 0, run.stderr
    assert run.group("env_lab") == ["gpu-a", "10.9.0.2"]
    assert run.hostvars["10.9.0.2"]["gce_name"] == "without-label"
    skipped = [line for line in run.warnings() if "no usable host name" in line]
    assert len(skipped) == 1
    assert "nothing" in skipped[0]


def test_zones_listed_in_parallel_chains(emulator, tmp_path):
    emulator.generate(instances=30, zones=3, projects=1, environment="lab", project_prefix="mlinfra-zones")
    config = emulator_config(emulator, ["mlinfra-zones-01"], zones=["us-central1-a", "us-central1-c"], page_size=4)
    run = run_inventory(tmp_path, config)
    assert run.returncode == 0, run.stderr
    assert {host["gce_zone"] for host in run.hostvars.values()} == {"us-central1-a", "us-central1-c"}
    assert len(run.hostvars) == 20
    assert emulator.request_count(operation="instances.aggregatedList") == 0
    # 10 instances per zone in pages of 4: three pages per zone.
    listed = emulator.requests(operation="instances.list")
    assert sorted(entry["zone"] for entry in listed) == ["us-central1-a"] * 3 + ["us-central1-c"] * 3
    assert all(entry["field_mask"].startswith("nextPageToken,items(") for entry in listed)
    ids = [int(run.hostvars[host]["gce_id"]) for host in run.group("env_lab")]
    assert ids == sorted(ids)


def test_unknown_zone(emulator, tmp_path):
    emulator.add_project(PROJECT, [ZONE_A])
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], zones=[ZONE_A, "mars-north1-a"]))
    assert_failed_with(run, f"Zone mars-north1-a of project {PROJECT} was not found", "zone names in zones")


def test_unavailable_zone_with_allow_partial(emulator, tmp_path):
    emulator.generate(instances=6, zones=2, projects=1, environment="lab", project_prefix="mlinfra-zpart")
    emulator.add_fault(project="mlinfra-zpart-01", zone="us-central1-b", status=503, retry_after=0)
    config = emulator_config(emulator, ["mlinfra-zpart-01"], zones=["us-central1-a", "us-central1-b"], retries=1)
    failed = run_inventory(tmp_path, config)
    assert_failed_with(failed, "Listing instances in zone us-central1-b of project mlinfra-zpart-01 failed after 2")

    partial = run_inventory(tmp_path, dict(config, allow_partial=True))
    assert partial.returncode == 0, partial.stderr
    assert {host["gce_zone"] for host in partial.hostvars.values()} == {"us-central1-a"}
    assert [line for line in partial.warnings() if "us-central1-b were unreachable" in line]


def test_graph_and_lab_contract(shapes_emulator, tmp_path):
    run = run_inventory(tmp_path, emulator_config(shapes_emulator, [PROJECT], compose=LAB_COMPOSE), "--graph")
    assert run.returncode == 0, run.stderr
    assert "@pool_train_a100:" in run.stdout
    assert "|--a100-builtin" in run.stdout


def test_field_mask_and_single_chain_sent(shapes_emulator, tmp_path):
    shapes_emulator.clear_requests()
    run = run_inventory(tmp_path, emulator_config(shapes_emulator, [PROJECT]))
    assert run.returncode == 0, run.stderr
    entries = shapes_emulator.requests()
    assert [entry["operation"] for entry in entries] == ["instances.aggregatedList"]
    assert entries[0]["query"]["maxResults"] == "500"
    assert entries[0]["query"]["returnPartialSuccess"] == "true"
    assert entries[0]["field_mask"].startswith("nextPageToken,unreachables,")


def test_more_than_500_instances(emulator, tmp_path):
    emulator.generate(instances=1234, zones=3, projects=1, environment="lab", project_prefix="mlinfra-big")
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-big-01"]))
    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 1234
    assert emulator.request_count(operation="instances.aggregatedList") == 3
    ids = [int(run.hostvars[host]["gce_id"]) for host in run.group("env_lab")]
    assert len(ids) == 1234
    assert ids == sorted(ids)


def test_two_projects_and_empty_project(emulator, tmp_path):
    emulator.generate(instances=10, zones=2, projects=2, environment="lab", project_prefix="mlinfra-two")
    emulator.add_project("mlinfra-empty", [ZONE_A])
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-two-01", "mlinfra-two-02", "mlinfra-empty"]))
    assert run.returncode == 0, run.stderr
    projects = [host["gce_project"] for host in run.hostvars.values()]
    assert projects.count("mlinfra-two-01") == 5
    assert projects.count("mlinfra-two-02") == 5
    empty = [line for line in run.warnings() if "mlinfra-empty" in line]
    assert len(empty) == 1
    assert "has no instances" in empty[0]


def test_identical_output_on_repeat(emulator, tmp_path):
    emulator.generate(instances=40, zones=3, projects=2, environment="lab", project_prefix="mlinfra-rep")
    config = emulator_config(emulator, ["mlinfra-rep-01", "mlinfra-rep-02"], max_workers=2)
    first = run_inventory(tmp_path, config)
    second = run_inventory(tmp_path, config)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_429_twice_then_success(emulator, tmp_path):
    emulator.generate(instances=5, zones=1, projects=1, environment="lab", project_prefix="mlinfra-rate")
    emulator.add_fault(operation="instances.aggregatedList", status=429, retry_after=0.5, count=2)
    start = time.monotonic()
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-rate-01"]))
    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 5
    statuses = [entry["status"] for entry in emulator.requests(operation="instances.aggregatedList")]
    assert statuses == [429, 429, 200]
    # Retry-After (0.5 s) wins over the configured 0.05 s backoff.
    assert time.monotonic() - start >= 1.0


def test_keyed_groups_groups_and_strict(emulator, tmp_path):
    emulator.generate(instances=10, zones=1, projects=1, environment="lab", project_prefix="mlinfra-kg")
    options = {
        "keyed_groups": [
            {"key": "gce_machine_family", "prefix": "family"},
            {"key": "gce_labels['managed-by']", "prefix": "managed"},
        ],
        "groups": {"nvswitch": "gce_nvswitch", "big": "gce_gpu_count >= 8"},
        "compose": {"gpu_summary": "gce_gpu_type ~ 'x' ~ gce_gpu_count"},
    }
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-kg-01"], **options))
    assert run.returncode == 0, run.stderr
    assert sorted(run.group("family_a2")) == ["train-a100-00000", "train-a100-00005"]
    assert len(run.group("managed_terraform")) == 10
    assert run.group("nvswitch") == run.group("big")
    assert sorted(run.group("nvswitch")) == [
        "train-a100-00000",
        "train-a100-00005",
        "train-h100-00001",
        "train-h100-00006",
    ]
    assert run.hostvars["train-a100-00000"]["gpu_summary"] == "nvidia-tesla-a100x8"

    missing_key = {"keyed_groups": [{"key": "gce_labels.team", "prefix": "team"}]}
    lenient = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-kg-01"], **missing_key))
    assert lenient.returncode == 0, lenient.stderr
    assert not [group for group in lenient.data if group.startswith("team")]
    strict = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-kg-01"], strict=True, **missing_key))
    assert_failed_with(strict, "Could not generate group for host", "gce_labels")


def test_warm_cache_makes_no_request(emulator, tmp_path):
    config = cached_fleet_config(emulator, tmp_path, "mlinfra-cache")
    cold = run_inventory(tmp_path, config)
    assert cold.returncode == 0, cold.stderr
    requests_after_cold = emulator.request_count()
    warm = run_inventory(tmp_path, config)
    assert warm.returncode == 0, warm.stderr
    assert emulator.request_count() == requests_after_cold
    assert warm.stdout == cold.stdout
    flushed = run_inventory(tmp_path, config, "--list", "--flush-cache")
    assert flushed.returncode == 0, flushed.stderr
    assert emulator.request_count() > requests_after_cold


def test_endpoint_from_environment(emulator, tmp_path):
    emulator.generate(instances=3, zones=1, projects=1, environment="lab", project_prefix="mlinfra-envvar")
    config = emulator_config(emulator, ["mlinfra-envvar-01"], api_endpoint="http://127.0.0.1:9")
    run = run_inventory(tmp_path, config, env=isolated_env(tmp_path, GCP_FLEET_API_ENDPOINT=emulator.url))
    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 3


# Errors -----------------------------------------------------------------------------


def test_unknown_hostnames_entry(emulator, tmp_path):
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], hostnames=["name", "fqdn"]))
    assert_failed_with(run, "Invalid hostnames entry 'fqdn'", "labels.<key>")
    assert emulator.request_count() == 0


def test_missing_credentials(emulator, tmp_path):
    config = emulator_config(emulator, [PROJECT], auth_kind="application")
    run = run_inventory(tmp_path, config)
    assert_failed_with(run, "No usable credentials for auth_kind application", "gcloud auth application-default login")
    assert emulator.request_count() == 0


def test_unreadable_credentials_file(emulator, tmp_path):
    config = emulator_config(
        emulator, [PROJECT], auth_kind="serviceaccount", service_account_file=str(tmp_path / "missing.json")
    )
    run = run_inventory(tmp_path, config)
    assert_failed_with(run, "Cannot read service_account_file", "missing.json", "No such file or directory")


def test_wrong_credentials_file(emulator, tmp_path):
    key_file = tmp_path / "user.json"
    key_file.write_text('{"type": "authorized_user", "client_id": "x"}')
    config = emulator_config(emulator, [PROJECT], auth_kind="serviceaccount", service_account_file=str(key_file))
    run = run_inventory(tmp_path, config)
    assert_failed_with(run, "Invalid service_account_file", "not a service account key", "client_email")


def test_conflicting_auth_options(emulator, tmp_path):
    config = emulator_config(emulator, [PROJECT], access_token="abc")  # noqa: S106 (a dummy token under test)
    run = run_inventory(tmp_path, config)
    assert_failed_with(run, "Conflicting auth options: access_token is set but auth_kind is anonymous")


def test_anonymous_needs_loopback(tmp_path):
    config = {
        "environment": "lab",
        "projects": [PROJECT],
        "auth_kind": "anonymous",
        "api_endpoint": "https://compute.example.com",
    }
    run = run_inventory(tmp_path, config)
    assert_failed_with(run, "auth_kind anonymous is allowed only with an api_endpoint on a loopback address")


def test_permission_denied_on_one_of_two_projects(emulator, tmp_path):
    emulator.generate(instances=4, zones=1, projects=2, environment="lab", project_prefix="mlinfra-perm")
    emulator.add_fault(project="mlinfra-perm-02", status=403)
    projects = ["mlinfra-perm-01", "mlinfra-perm-02"]
    run = run_inventory(tmp_path, emulator_config(emulator, projects))
    assert_failed_with(run, "Permission denied listing instances in project mlinfra-perm-02", "compute.instances.list")

    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    config = emulator_config(emulator, projects, strict_permissions=False, **cache)
    for attempt in ("cold", "warm"):
        lenient = run_inventory(tmp_path, config)
        assert lenient.returncode == 0, lenient.stderr
        assert {host["gce_project"] for host in lenient.hostvars.values()} == {"mlinfra-perm-01"}, attempt
        # A run from the cache reports the skipped project again.
        assert [line for line in lenient.warnings() if "Skipped project mlinfra-perm-02" in line], attempt


def test_project_not_found(emulator, tmp_path):
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-nowhere"]))
    assert_failed_with(run, "Project mlinfra-nowhere was not found", "Check the project ID")


def test_compute_api_not_enabled(emulator, tmp_path):
    emulator.add_project("mlinfra-noapi", [ZONE_A])
    emulator.add_fault(project="mlinfra-noapi", status=403, reason="accessNotConfigured")
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-noapi"], strict_permissions=False))
    assert_failed_with(run, "The Compute Engine API is not enabled in project mlinfra-noapi", "gcloud services enable")


def test_endpoint_unreachable(tmp_path):
    config = {
        "environment": "lab",
        "projects": [PROJECT],
        "auth_kind": "anonymous",
        "api_endpoint": "http://127.0.0.1:9",
        "retries": 1,
        "retry_backoff": 0.05,
    }
    run = run_inventory(tmp_path, config)
    line = assert_failed_with(run, "Cannot reach the Compute API at http://127.0.0.1:9", PROJECT, "after 2 attempt(s)")
    # The socket error, not urllib3's wrapper text with the request URL.
    assert "[Errno 111] Connection refused. Check api_endpoint" in line
    assert "Max retries exceeded" not in line
    assert any("retrying up to 1 times" in warning for warning in run.warnings()), run.stderr


def test_retries_exhausted_on_503(emulator, tmp_path):
    emulator.add_project(PROJECT, [ZONE_A])
    emulator.add_fault(status=503, retry_after=0)
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], retries=2))
    assert_failed_with(run, f"Listing instances in project {PROJECT} failed after 3 attempt(s) with HTTP 503")
    assert emulator.request_count(operation="instances.aggregatedList") == 3


def test_malformed_response(emulator, tmp_path):
    emulator.add_project(PROJECT, [ZONE_A])
    emulator.add_fault(malformed=True)
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], retries=1))
    assert_failed_with(run, "returned a malformed response for project", PROJECT)


def test_unreachable_zone(emulator, tmp_path):
    emulator.generate(instances=4, zones=2, projects=1, environment="lab", project_prefix="mlinfra-part")
    emulator.add_fault(project="mlinfra-part-01", unreachable_zones=["us-central1-b"])
    run = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-part-01"]))
    assert_failed_with(run, "could not reach zones us-central1-b of project mlinfra-part-01", "allow_partial")

    partial = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-part-01"], allow_partial=True))
    assert partial.returncode == 0, partial.stderr
    assert {host["gce_zone"] for host in partial.hostvars.values()} == {"us-central1-a"}
    assert [line for line in partial.warnings() if "us-central1-b were unreachable" in line]

    # An unreachable zone that the zones option leaves out does not matter.
    other_zone = run_inventory(tmp_path, emulator_config(emulator, ["mlinfra-part-01"], zones=["us-central1-a"]))
    assert other_zone.returncode == 0, other_zone.stderr
    assert len(other_zone.hostvars) == 2


def test_invalid_filter(emulator, tmp_path):
    emulator.add_project(PROJECT, [ZONE_A])
    run = run_inventory(tmp_path, emulator_config(emulator, [PROJECT], filters=["colour = red"]))
    assert_failed_with(run, f"rejected the listing request for project {PROJECT} as invalid", "Check filters")


def test_ansible_doc_renders():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "inventory", "mlinfra.platform.gcp_fleet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "environment_mismatch" in result.stdout
    assert "GCP_FLEET_API_ENDPOINT" in result.stdout
