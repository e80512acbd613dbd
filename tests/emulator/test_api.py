"""The emulator's REST API: methods, paging, filters, field masks, faults and the admin API.

Every API response is parsed with google-cloud-compute's own message types with
unknown fields rejected, so a field the real Compute v1 schema lacks fails the test.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from google.cloud.compute_v1.types import compute
from google.protobuf import json_format

PROJECT = "mlinfra-test"
ZONE = "us-central1-a"


def api(emulator, path: str) -> str:
    return f"{emulator.url}/compute/v1/projects/{path}"


def conforms(body: dict, message_type) -> None:
    """Parse a response with the client's message type, rejecting unknown fields."""
    json_format.Parse(json.dumps(body), message_type.pb()(), ignore_unknown_fields=False)


def instance_body(name: str, **extra) -> dict:
    body = {
        "name": name,
        "machineType": f"zones/{ZONE}/machineTypes/g2-standard-8",
        "labels": {"env": "lab", "pool": "infer-l4", "role": "inference"},
        "networkInterfaces": [{"networkIP": "10.0.0.2"}],
    }
    body.update(extra)
    return body


def list_all(emulator, project: str, **params) -> tuple[list[dict], int]:
    """Follow an aggregatedList page chain; return the instances and the page count."""
    instances, pages, token = [], 0, None
    while True:
        query = dict(params, **({"pageToken": token} if token else {}))
        response = requests.get(api(emulator, f"{project}/aggregated/instances"), params=query, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        conforms(body, compute.InstanceAggregatedList)
        pages += 1
        for scoped in body["items"].values():
            instances.extend(scoped.get("instances", []))
        token = body.get("nextPageToken")
        if not token:
            return instances, pages


def test_aggregated_list_pages_cover_every_instance(emulator):
    emulator.generate(instances=1203, zones=3, projects=1, project_prefix="mlinfra-test")
    instances, pages = list_all(emulator, "mlinfra-test-01", maxResults=500)
    assert pages == 3
    assert len(instances) == 1203
    assert len({instance["id"] for instance in instances}) == 1203


def test_aggregated_list_zone_spans_pages(emulator):
    emulator.generate(instances=30, zones=1, projects=1, project_prefix="mlinfra-test")
    first = requests.get(
        api(emulator, "mlinfra-test-01/aggregated/instances"), params={"maxResults": 20}, timeout=10
    ).json()
    second = requests.get(
        api(emulator, "mlinfra-test-01/aggregated/instances"),
        params={"maxResults": 20, "pageToken": first["nextPageToken"]},
        timeout=10,
    ).json()
    assert len(first["items"]["zones/us-central1-a"]["instances"]) == 20
    assert len(second["items"]["zones/us-central1-a"]["instances"]) == 10
    assert "nextPageToken" not in second


def test_aggregated_list_warns_for_zones_without_results(emulator):
    emulator.add_project(PROJECT, [ZONE, "us-central1-b"])
    emulator.insert_instance(PROJECT, ZONE, instance_body("a"))
    body = requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10).json()
    conforms(body, compute.InstanceAggregatedList)
    assert body["items"]["zones/us-central1-b"]["warning"]["code"] == "NO_RESULTS_ON_PAGE"
    assert [instance["name"] for instance in body["items"][f"zones/{ZONE}"]["instances"]] == ["a"]


def test_aggregated_list_filter(emulator):
    emulator.insert_instance(PROJECT, ZONE, instance_body("run"))
    emulator.insert_instance(PROJECT, ZONE, instance_body("stopped", status="TERMINATED"))
    emulator.insert_instance(PROJECT, ZONE, instance_body("dev", labels={"env": "dev"}))
    instances, _pages = list_all(emulator, PROJECT, filter="(status = RUNNING) (labels.env = lab)")
    assert [instance["name"] for instance in instances] == ["run"]


def test_invalid_filter_is_400(emulator):
    emulator.add_project(PROJECT, [ZONE])
    response = requests.get(
        api(emulator, f"{PROJECT}/aggregated/instances"), params={"filter": "colour = red"}, timeout=10
    )
    assert response.status_code == 400
    assert "Invalid value for field 'filter'" in response.json()["error"]["message"]


def test_max_results_over_500_is_400(emulator):
    emulator.add_project(PROJECT, [ZONE])
    response = requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), params={"maxResults": 501}, timeout=10)
    assert response.status_code == 400
    assert "maxResults" in response.json()["error"]["message"]


def test_page_token_of_other_filter_is_400(emulator):
    emulator.generate(instances=3, zones=1, projects=1, project_prefix="mlinfra-test")
    first = requests.get(
        api(emulator, "mlinfra-test-01/aggregated/instances"), params={"maxResults": 1}, timeout=10
    ).json()
    response = requests.get(
        api(emulator, "mlinfra-test-01/aggregated/instances"),
        params={"maxResults": 1, "pageToken": first["nextPageToken"], "filter": "status = RUNNING"},
        timeout=10,
    )
    assert response.status_code == 400


@pytest.mark.parametrize("via", ["fields", "header"])
def test_field_mask_honoured(emulator, via):
    emulator.insert_instance(PROJECT, ZONE, instance_body("a"))
    mask = "items/*/instances(name,labels/pool)"
    params = {"fields": mask} if via == "fields" else {}
    headers = {"X-Goog-FieldMask": mask} if via == "header" else {}
    body = requests.get(
        api(emulator, f"{PROJECT}/aggregated/instances"), params=params, headers=headers, timeout=10
    ).json()
    conforms(body, compute.InstanceAggregatedList)
    assert body == {"items": {f"zones/{ZONE}": {"instances": [{"name": "a", "labels": {"pool": "infer-l4"}}]}}}


def test_unknown_field_in_mask_is_400(emulator):
    emulator.insert_instance(PROJECT, ZONE, instance_body("a"))
    response = requests.get(
        api(emulator, f"{PROJECT}/aggregated/instances"), params={"fields": "items/*/instances(colour)"}, timeout=10
    )
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["message"]


def test_unknown_project_is_404(emulator):
    response = requests.get(api(emulator, "mlinfra-missing/aggregated/instances"), timeout=10)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "The resource 'projects/mlinfra-missing' was not found"
    assert error["errors"][0]["reason"] == "notFound"


def test_insert_creates_project_and_returns_operation(emulator):
    response = requests.post(
        api(emulator, f"mlinfra-new/zones/{ZONE}/instances"), json=instance_body("gpu-1"), timeout=10
    )
    assert response.status_code == 200, response.text
    operation = response.json()
    conforms(operation, compute.Operation)
    assert operation["operationType"] == "insert"
    assert operation["status"] == "DONE"
    assert operation["zone"].endswith(f"/projects/mlinfra-new/zones/{ZONE}")

    fetched = requests.get(api(emulator, f"mlinfra-new/zones/{ZONE}/operations/{operation['name']}"), timeout=10)
    assert fetched.json() == operation

    instance = requests.get(api(emulator, f"mlinfra-new/zones/{ZONE}/instances/gpu-1"), timeout=10).json()
    conforms(instance, compute.Instance)
    assert instance["id"] == operation["targetId"]
    assert instance["machineType"].endswith(f"/zones/{ZONE}/machineTypes/g2-standard-8")
    assert instance["status"] == "RUNNING"
    # Built-in GPUs force TERMINATE on host maintenance, as the real API does.
    assert instance["scheduling"]["onHostMaintenance"] == "TERMINATE"


def test_insert_rejects_unknown_field(emulator):
    response = requests.post(
        api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), json=instance_body("a", colour="red"), timeout=10
    )
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["message"]


def test_insert_rejects_bad_name_and_duplicate(emulator):
    bad = requests.post(api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), json=instance_body("Bad_Name"), timeout=10)
    assert bad.status_code == 400
    assert requests.post(api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), json=instance_body("a"), timeout=10).ok
    duplicate = requests.post(api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), json=instance_body("a"), timeout=10)
    assert duplicate.status_code == 409


def test_list_get_delete(emulator):
    for name in ("a", "b", "c"):
        emulator.insert_instance(PROJECT, ZONE, instance_body(name))
    page = requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), params={"maxResults": 2}, timeout=10).json()
    conforms(page, compute.InstanceList)
    assert [instance["name"] for instance in page["items"]] == ["a", "b"]
    rest = requests.get(
        api(emulator, f"{PROJECT}/zones/{ZONE}/instances"),
        params={"maxResults": 2, "pageToken": page["nextPageToken"]},
        timeout=10,
    ).json()
    assert [instance["name"] for instance in rest["items"]] == ["c"]

    deleted = requests.delete(api(emulator, f"{PROJECT}/zones/{ZONE}/instances/b"), timeout=10)
    assert deleted.json()["operationType"] == "delete"
    assert requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/instances/b"), timeout=10).status_code == 404


def test_set_labels_checks_fingerprint(emulator):
    instance = emulator.insert_instance(PROJECT, ZONE, instance_body("a"))
    url = api(emulator, f"{PROJECT}/zones/{ZONE}/instances/a/setLabels")
    stale = requests.post(url, json={"labels": {"env": "dev"}, "labelFingerprint": "stale"}, timeout=10)
    assert stale.status_code == 412
    done = requests.post(
        url, json={"labels": {"env": "dev"}, "labelFingerprint": instance["labelFingerprint"]}, timeout=10
    )
    assert done.json()["operationType"] == "setLabels"
    assert requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/instances/a"), timeout=10).json()["labels"] == {
        "env": "dev"
    }


def test_zones_machine_types_accelerator_types(emulator):
    emulator.add_project(PROJECT, [ZONE, "europe-west4-b"])
    zones = requests.get(api(emulator, f"{PROJECT}/zones"), timeout=10).json()
    conforms(zones, compute.ZoneList)
    assert [zone["name"] for zone in zones["items"]] == [ZONE, "europe-west4-b"]
    assert zones["items"][1]["region"].endswith("/regions/europe-west4")

    machine_type = requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/machineTypes/a2-highgpu-8g"), timeout=10).json()
    conforms(machine_type, compute.MachineType)
    assert machine_type["accelerators"] == [{"guestAcceleratorType": "nvidia-tesla-a100", "guestAcceleratorCount": 8}]
    assert requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/machineTypes/nonsense"), timeout=10).status_code == 404

    accelerators = requests.get(api(emulator, f"{PROJECT}/zones/{ZONE}/acceleratorTypes"), timeout=10).json()
    conforms(accelerators, compute.AcceleratorTypeList)
    assert "nvidia-l4" in {item["name"] for item in accelerators["items"]}


def test_fault_429_with_retry_after_then_success(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(operation="instances.aggregatedList", status=429, retry_after=2, count=2)
    url = api(emulator, f"{PROJECT}/aggregated/instances")
    for _ in range(2):
        throttled = requests.get(url, timeout=10)
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "2"
        assert throttled.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert requests.get(url, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        ({"status": 503, "retry_after": 1}, 503, "backendError"),
        ({"status": 500}, 500, "backendError"),
        ({"status": 403, "reason": "accessNotConfigured"}, 403, "accessNotConfigured"),
        ({"status": 403}, 403, "forbidden"),
        ({"status": 404}, 404, "notFound"),
    ],
)
def test_fault_statuses(emulator, fault, status, reason):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(project=PROJECT, **fault)
    response = requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["errors"][0]["reason"] == reason
    assert PROJECT in error["message"] or status >= 500


def test_fault_matches_only_its_project(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_project("mlinfra-other", [ZONE])
    emulator.add_fault(project="mlinfra-other", status=403)
    assert requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10).status_code == 200
    assert requests.get(api(emulator, "mlinfra-other/aggregated/instances"), timeout=10).status_code == 403


def test_fault_malformed_json(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(malformed=True, count=1)
    response = requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_disconnect(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(disconnect=True, count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10)


def test_fault_latency(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(latency_ms=300, count=1)
    start = time.monotonic()
    requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10)
    assert time.monotonic() - start >= 0.3


def test_global_latency(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.set_latency(200)
    start = time.monotonic()
    requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10)
    assert time.monotonic() - start >= 0.2


def test_unreachable_zone_with_partial_success(emulator):
    emulator.add_project(PROJECT, [ZONE, "us-central1-b"])
    emulator.insert_instance(PROJECT, ZONE, instance_body("a"))
    emulator.insert_instance(PROJECT, "us-central1-b", instance_body("b"))
    emulator.add_fault(project=PROJECT, unreachable_zones=["us-central1-b"])
    body = requests.get(
        api(emulator, f"{PROJECT}/aggregated/instances"), params={"returnPartialSuccess": "true"}, timeout=10
    ).json()
    conforms(body, compute.InstanceAggregatedList)
    assert body["unreachables"] == ["zones/us-central1-b"]
    assert body["items"]["zones/us-central1-b"]["warning"]["code"] == "UNREACHABLE"
    assert [instance["name"] for instance in body["items"][f"zones/{ZONE}"]["instances"]] == ["a"]


def test_admin_api_over_http(emulator):
    admin = f"{emulator.url}/_emulator"
    assert (
        requests.post(
            f"{admin}/fleet",
            json={"projects": {PROJECT: {"zones": [ZONE], "instances": [dict(instance_body("a"), zone=ZONE)]}}},
            timeout=10,
        ).json()["added"]
        == 1
    )
    assert requests.post(f"{admin}/faults", json={"status": 503, "count": 1}, timeout=10).ok
    assert len(requests.get(f"{admin}/faults", timeout=10).json()["faults"]) == 1
    assert requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10).status_code == 503
    assert requests.get(api(emulator, f"{PROJECT}/aggregated/instances"), timeout=10).status_code == 200

    log = requests.get(f"{admin}/requests", params={"operation": "instances.aggregatedList"}, timeout=10).json()
    assert log["count"] == 2
    assert [entry["status"] for entry in log["requests"]] == [503, 200]

    requests.post(api(emulator, f"{PROJECT}/zones/{ZONE}/instances"), json=instance_body("b"), timeout=10)
    assert requests.post(f"{admin}/reset", timeout=10).json()["instances"] == 1
    assert requests.get(f"{admin}/requests", timeout=10).json()["total"] == 0
    assert requests.get(f"{admin}/faults", timeout=10).json()["faults"] == []


def test_admin_rejects_unknown_fault_key(emulator):
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"stauts": 503}, timeout=10)
    assert response.status_code == 400
    assert "stauts" in response.json()["error"]["message"]
