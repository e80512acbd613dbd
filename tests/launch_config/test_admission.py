"""Admission control: GPU ownership, memory, CPUs, ports and sources."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (
    LaunchConfigRejected,
    validate_launch_config,
)
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_admission import (
    HostResources,
    admit,
)

from .conftest import GPU_FACTS, inference_config, training_config


def host(**overrides) -> HostResources:
    values = {
        "gpus": tuple(copy.deepcopy(GPU_FACTS["gpus"])),
        "gpu_state": "ok",
        "memory_mib": 64 * 1024,
        "cpu_count": 16,
        "memory_reserve_mib": 4096,
        "slice_limits": {
            "training": {"memory_mib": 40 * 1024, "cpus": 12.0},
            "inference": {"memory_mib": 24 * 1024, "cpus": 8.0},
        },
    }
    values.update(overrides)
    return HostResources(**values)


def record(
    name: str, role: str, indices: list[int], *, memory_mib: int = 4096, ports=(), with_uuid: bool = True
) -> dict:
    gpus = []
    for index in indices:
        entry = {"index": index, "name": "NVIDIA L4", "uuid": GPU_FACTS["gpus"][index]["uuid"] if with_uuid else ""}
        gpus.append(entry)
    return {
        "name": name,
        "role": role,
        "image": "r.io/x@sha256:" + "0" * 64,
        "gpus": gpus,
        "memory_mib": memory_mib,
        "ports": [{"host_port": port, "protocol": "tcp"} for port in ports],
    }


def normalized(config: dict) -> dict:
    return validate_launch_config(config)[0]


def rejected(config: dict, host_resources: HostResources, records: dict, **kwargs) -> str:
    with pytest.raises(LaunchConfigRejected) as info:
        admit(normalized(config), host_resources, records, **kwargs)
    return str(info.value)


def test_count_takes_lowest_free_gpus():
    records = {"chat": record("chat", "inference", [0])}

    allocation = admit(normalized(training_config(gpus={"count": 2})), host(), records)

    assert [gpu["index"] for gpu in allocation["gpus"]] == [1, 2]
    assert allocation["gpus"][0]["uuid"] == GPU_FACTS["gpus"][1]["uuid"]


def test_readmission_keeps_own_gpus():
    records = {"pretrain": record("pretrain", "training", [3]), "chat": record("chat", "inference", [0])}

    allocation = admit(normalized(training_config(gpus={"count": 1})), host(), records)

    assert [gpu["index"] for gpu in allocation["gpus"]] == [3]


def test_growing_count_keeps_owned_and_adds_free():
    records = {"pretrain": record("pretrain", "training", [2])}

    allocation = admit(normalized(training_config(gpus={"count": 2})), host(), records)

    assert [gpu["index"] for gpu in allocation["gpus"]] == [0, 2]


def test_owned_gpu_names_owner():
    records = {"chat": record("chat", "inference", [0])}

    message = rejected(inference_config(gpus={"indices": [0]}), host(), records)

    assert (
        "gpus.indices: GPU 0 (GPU-00000000-aaaa-bbbb-cccc-dddddddddddd) is already owned by workload 'chat'" in message
    )
    assert "Fix: choose a free GPU (free: 1, 2, 3), or remove 'chat' first." in message


def test_training_and_inference_never_share():
    records = {"pretrain": record("pretrain", "training", [1])}

    message = rejected(inference_config(gpus={"indices": [1]}), host(), records)

    assert "owned by training workload 'pretrain', and training and inference never share a GPU" in message


def test_missing_index_lists_present_gpus():
    message = rejected(training_config(gpus={"indices": [7]}), host(), {})

    assert "GPU index 7 not found on this host (GPUs present: 0, 1, 2, 3)" in message


def test_count_beyond_free_lists_owners():
    records = {"chat": record("chat", "inference", [0]), "other": record("other", "training", [1, 2])}

    message = rejected(training_config(gpus={"count": 2}), host(), records)

    assert "2 GPUs requested but only 1 of 4 are free (owned: 0 by 'chat', 1 by 'other', 2 by 'other')" in message


def test_gpu_state_not_ok_rejects_gpu_request():
    message = rejected(training_config(), host(gpu_state="driver-mismatch"), {})

    assert "GPU facts report state 'driver-mismatch'" in message


def test_gpu_state_ignored_without_gpu_request():
    allocation = admit(normalized(training_config(gpus=None)), host(gpu_state="no-driver", gpus=()), {})

    assert allocation == {"gpus": []}


def test_ownership_follows_uuid_after_reindex():
    # The host re-enumerated: the GPU that was index 0 is now index 2.
    gpus = copy.deepcopy(GPU_FACTS["gpus"])
    gpus[0]["index"], gpus[2]["index"] = 2, 0
    records = {"chat": record("chat", "inference", [0])}

    message = rejected(
        inference_config(name="other", gpus={"indices": [2]}, ports=[], health_check=None),
        host(gpus=tuple(gpus)),
        records,
        path_exists=None,
    )

    assert "GPU 2 (GPU-00000000-aaaa-bbbb-cccc-dddddddddddd) is already owned by workload 'chat'" in message


def test_record_without_uuid_owns_by_index():
    records = {"chat": record("chat", "inference", [1], with_uuid=False)}

    message = rejected(
        inference_config(name="other", gpus={"indices": [1]}, ports=[], health_check=None), host(), records
    )

    assert "already owned by workload 'chat'" in message


def test_vanished_gpu_uuid_owns_nothing():
    records = {"chat": {**record("chat", "inference", []), "gpus": [{"index": 0, "uuid": "GPU-gone"}]}}

    allocation = admit(normalized(training_config(gpus={"indices": [0]})), host(), records)

    assert [gpu["index"] for gpu in allocation["gpus"]] == [0]


def test_memory_sum_over_host_rejected():
    records = {"chat": record("chat", "inference", [0], memory_mib=24 * 1024)}

    message = rejected(training_config(memory="37GiB"), host(), records)

    assert (
        "memory: 37GiB requested, but the host has 64GiB minus a reserve of 4GiB, "
        "and other workloads hold 24GiB (free: 36GiB)" in message
    )


def test_memory_exactly_at_limit_accepted():
    records = {"chat": record("chat", "inference", [0], memory_mib=24 * 1024)}

    allocation = admit(normalized(training_config(memory="36GiB")), host(), records)

    assert len(allocation["gpus"]) == 1


def test_slice_memory_counts_same_role_only():
    records = {
        "chat": record("chat", "inference", [0], memory_mib=20 * 1024),
        "pretrain": record("pretrain", "training", [1], memory_mib=8192),
    }

    message = rejected(inference_config(name="serve2", memory="8GiB", ports=[], health_check=None), host(), records)

    assert "the inference slice allows 24GiB and other inference workloads hold 20GiB" in message


def test_cpus_beyond_host_and_slice():
    assert "32 CPUs requested, but the host has 16" in rejected(training_config(cpus=32), host(), {})
    assert "10 CPUs requested, but the inference slice is limited to 8" in rejected(
        inference_config(cpus=10), host(), {}
    )


def test_host_port_conflict_names_owner():
    records = {"chat": record("chat", "inference", [0], ports=[18080])}

    message = rejected(inference_config(), host(), records)

    assert "host port 18080/tcp is already published by workload 'chat'" in message


def test_missing_sources_reported():
    config = training_config(
        secrets=[{"name": "token", "source": "/etc/secret/token"}],
        mounts=[{"source": "/srv/data", "target": "/data"}],
    )

    message = rejected(config, host(), {}, path_exists=lambda path: False)

    assert "secrets[0].source: secret file /etc/secret/token not found on this host" in message
    assert "mounts[0].source: host path /srv/data not found" in message


def test_damaged_record_stops_admission():
    records = {"broken": None}

    message = rejected(training_config(), host(), records)

    assert "workload 'broken': admission record" in message
    assert "is damaged" in message


def test_own_record_ignored_for_ownership():
    records = {"pretrain": record("pretrain", "training", [0, 1], memory_mib=40 * 1024)}

    allocation = admit(normalized(training_config(gpus={"indices": [0, 1]}, memory="40GiB")), host(), records)

    assert [gpu["index"] for gpu in allocation["gpus"]] == [0, 1]
