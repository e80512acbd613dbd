"""Property tests: admission never double-books a GPU, and rendering is deterministic."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (
    LaunchConfigRejected,
    validate_launch_config,
)
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_admission import (
    HostResources,
    admit,
)
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_render import (
    RenderOptions,
    render_env_file,
    render_record,
    render_unit,
)

IMAGE = "registry.example.com/ml/w@sha256:" + "7" * 64
NAMES = ("a", "b", "c", "d", "e", "f")


def make_host(gpu_count: int, with_uuids: bool) -> HostResources:
    gpus = tuple(
        {"index": index, "uuid": f"GPU-{index:04d}" if with_uuids else "", "name": "NVIDIA L4"}
        for index in range(gpu_count)
    )
    return HostResources(gpus=gpus, memory_mib=32 * 1024, cpu_count=8, memory_reserve_mib=2048)


gpu_requests = st.one_of(
    st.none(),
    st.builds(lambda count: {"count": count}, st.integers(min_value=0, max_value=5)),
    st.builds(
        lambda indices: {"indices": sorted(indices)},
        st.sets(st.integers(min_value=0, max_value=9), min_size=1, max_size=4),
    ),
)
admissions = st.tuples(
    st.just("admit"),
    st.sampled_from(NAMES),
    st.sampled_from(("training", "inference")),
    gpu_requests,
    st.sampled_from(("1GiB", "4GiB", "8GiB", "12GiB")),
)
removals = st.tuples(st.just("remove"), st.sampled_from(NAMES))


def owned_indices(records: dict, host: HostResources) -> list[int]:
    by_uuid = {gpu["uuid"]: gpu["index"] for gpu in host.gpus if gpu["uuid"]}
    indices = []
    for record in records.values():
        for gpu in record["gpus"]:
            indices.append(by_uuid[gpu["uuid"]] if gpu["uuid"] else gpu["index"])
    return indices


@settings(max_examples=300, deadline=None)
@given(
    gpu_count=st.integers(min_value=0, max_value=8),
    with_uuids=st.booleans(),
    operations=st.lists(st.one_of(admissions, removals), max_size=25),
)
def test_no_gpu_ever_owned_twice(gpu_count, with_uuids, operations):
    host = make_host(gpu_count, with_uuids)
    records: dict[str, dict] = {}

    for operation in operations:
        if operation[0] == "remove":
            records.pop(operation[1], None)
            continue
        _, name, role, gpus, memory = operation
        raw = {"name": name, "role": role, "image": IMAGE, "cpus": 1, "memory": memory, "gpus": gpus}
        config, _ = validate_launch_config(raw)
        try:
            allocation = admit(config, host, records)
        except LaunchConfigRejected:
            continue
        records[name] = json.loads(render_record(config, allocation, records.get(name)))

        owned = owned_indices(records, host)
        assert len(owned) == len(set(owned)), f"a GPU is owned twice: {records}"
        assert set(owned) <= {gpu["index"] for gpu in host.gpus}
        assert len(allocation["gpus"]) == config["gpus"]["count"]
        assert sum(record["memory_mib"] for record in records.values()) <= host.memory_mib - host.memory_reserve_mib


@settings(max_examples=100, deadline=None)
@given(
    gpu_count=st.integers(min_value=1, max_value=8),
    held=st.sets(st.integers(min_value=0, max_value=7), max_size=8),
    count=st.integers(min_value=1, max_value=8),
)
def test_count_allocation_picks_free_gpus_or_rejects(gpu_count, held, count):
    host = make_host(gpu_count, with_uuids=True)
    held = {index for index in held if index < gpu_count}
    records = {}
    if held:
        records["holder"] = {
            "name": "holder",
            "role": "training",
            "gpus": [{"index": index, "uuid": f"GPU-{index:04d}"} for index in sorted(held)],
            "memory_mib": 1024,
            "ports": [],
        }
    config, _ = validate_launch_config(
        {"name": "new", "role": "inference", "image": IMAGE, "cpus": 1, "memory": "1GiB", "gpus": {"count": count}}
    )

    try:
        allocation = admit(config, host, records)
    except LaunchConfigRejected as exc:
        assert count > gpu_count - len(held)
        assert "GPUs requested but only" in str(exc)
        return

    chosen = [gpu["index"] for gpu in allocation["gpus"]]
    free = [index for index in range(gpu_count) if index not in held]
    assert chosen == free[:count]


environments = st.dictionaries(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(
        lambda name: "KEY" not in name and "TOKEN" not in name and "SECRET" not in name
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    max_size=6,
)
arguments = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12), max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    environment=environments,
    args=arguments,
    stop=st.integers(min_value=1, max_value=600),
    cpus=st.sampled_from([0.5, 1, 2.25, 16]),
)
def test_rendering_is_deterministic(environment, args, stop, cpus):
    environment = {
        name: value
        for name, value in environment.items()
        if name not in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
    }
    raw = {
        "name": "w",
        "role": "training",
        "image": IMAGE,
        "cpus": cpus,
        "memory": "2GiB",
        "args": args,
        "environment": environment,
        "stop_timeout_seconds": stop,
    }
    reordered = dict(reversed(list(raw.items())))
    reordered["environment"] = dict(reversed(list(environment.items())))
    allocation = {"gpus": [{"index": 0, "uuid": "GPU-0000", "name": "L4"}]}

    first, _ = validate_launch_config(raw)
    second, _ = validate_launch_config(reordered)

    assert render_unit(first, allocation, RenderOptions()) == render_unit(second, allocation, RenderOptions())
    assert render_env_file(first, allocation) == render_env_file(second, allocation)
    assert render_record(first, allocation, None) == render_record(second, allocation, None)
    unit = render_unit(first, allocation, RenderOptions())
    # One ExecStart line, whatever the arguments contain.
    assert sum(line.startswith("ExecStart=") for line in unit.splitlines()) == 1
    for name, value in environment.items():
        assert f"{name}={value}" not in unit


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not Path("/usr/bin/docker").exists(),
    reason="needs systemd-analyze and /usr/bin/docker",
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=arguments, command=arguments.filter(lambda words: not words or words[0].strip()))
def test_any_arguments_pass_verify(tmp_path, args, command):
    """Whatever the command and arguments contain, the unit parses without a systemd warning."""
    raw = {
        "name": "w",
        "role": "training",
        "image": IMAGE,
        "cpus": 1,
        "memory": "1GiB",
        "command": command,
        "args": args,
    }
    config, _ = validate_launch_config(raw)
    unit_path = tmp_path / "mlinfra-workload-w.service"
    unit_path.write_text(render_unit(config, {"gpus": []}, RenderOptions()))
    (tmp_path / "mlinfra-training.slice").write_text("[Slice]\nMemoryMax=4G\n")

    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_path), str(tmp_path / "mlinfra-training.slice")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.stderr == ""
    assert result.returncode == 0
