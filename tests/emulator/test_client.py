"""google-cloud-compute's own clients against the emulator, as the lab and the plugin use them."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

PROJECT = "mlinfra-client"
ZONE = "us-central1-a"


def client(cls, emulator):
    return cls(credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": emulator.url})


def test_insert_list_set_labels_delete(emulator):
    instances = client(compute_v1.InstancesClient, emulator)
    body = compute_v1.Instance(
        name="gpu-1",
        machine_type=f"zones/{ZONE}/machineTypes/a2-highgpu-1g",
        labels={"env": "lab", "pool": "train-a100"},
        network_interfaces=[compute_v1.NetworkInterface(network_i_p="10.0.0.9")],
    )
    operation = instances.insert(project=PROJECT, zone=ZONE, instance_resource=body)
    operation.result(timeout=10)
    assert operation.done()

    fetched = instances.get(project=PROJECT, zone=ZONE, instance="gpu-1")
    assert fetched.labels["pool"] == "train-a100"
    assert fetched.network_interfaces[0].network_i_p == "10.0.0.9"

    pages = list(instances.aggregated_list(request={"project": PROJECT, "max_results": 500}))
    names = [instance.name for _scope, scoped in pages for instance in scoped.instances]
    assert names == ["gpu-1"]

    labels = compute_v1.InstancesSetLabelsRequest(labels={"env": "dev"}, label_fingerprint=fetched.label_fingerprint)
    instances.set_labels(
        project=PROJECT, zone=ZONE, instance="gpu-1", instances_set_labels_request_resource=labels
    ).result(timeout=10)
    assert instances.get(project=PROJECT, zone=ZONE, instance="gpu-1").labels == {"env": "dev"}

    instances.delete(project=PROJECT, zone=ZONE, instance="gpu-1").result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="gpu-1")


def test_catalog_clients(emulator):
    emulator.add_project(PROJECT, [ZONE])
    zones = [zone.name for zone in client(compute_v1.ZonesClient, emulator).list(project=PROJECT)]
    assert zones == [ZONE]
    machine_type = client(compute_v1.MachineTypesClient, emulator).get(
        project=PROJECT, zone=ZONE, machine_type="g2-standard-24"
    )
    assert machine_type.accelerators[0].guest_accelerator_type == "nvidia-l4"
    assert machine_type.accelerators[0].guest_accelerator_count == 2
    accelerators = client(compute_v1.AcceleratorTypesClient, emulator).list(project=PROJECT, zone=ZONE)
    assert "nvidia-h100-80gb" in {accelerator.name for accelerator in accelerators}


def test_client_sees_api_errors(emulator):
    emulator.add_project(PROJECT, [ZONE])
    emulator.add_fault(status=403, reason="accessNotConfigured")
    instances = client(compute_v1.InstancesClient, emulator)
    with pytest.raises(exceptions.Forbidden) as raised:
        instances.aggregated_list(request={"project": PROJECT}, retry=None)
    assert raised.value.reason == "SERVICE_DISABLED"
    assert raised.value.errors[0]["reason"] == "accessNotConfigured"
