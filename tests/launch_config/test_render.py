"""Rendering of units, environment files and records, checked with systemd-analyze verify."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import validate_launch_config
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_render import (
    RenderOptions,
    exec_line,
    gpu_visible_devices,
    render_env_file,
    render_record,
    render_unit,
    start_limit,
    systemd_quote,
)

from .conftest import GPU_FACTS, IMAGE, inference_config, training_config

ONE_GPU = {"gpus": [{"index": 2, "uuid": GPU_FACTS["gpus"][2]["uuid"], "name": "NVIDIA L4"}]}
TWO_GPUS = {"gpus": [{"index": 0, "uuid": "GPU-a", "name": "L4"}, {"index": 1, "uuid": "GPU-b", "name": "L4"}]}


def unit_lines(unit: str) -> list[str]:
    return unit.splitlines()


def directive(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(key + "=")]


def systemd_analyze_verify(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in files)],
        capture_output=True,
        text=True,
        check=False,
    )


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
needs_docker_client = pytest.mark.skipif(
    not Path("/usr/bin/docker").exists(), reason="verify checks that /usr/bin/docker exists, and it does not here"
)


def test_docker_unit_core_directives():
    config, _ = validate_launch_config(training_config(stop_timeout_seconds=120))

    unit = render_unit(config, ONE_GPU, RenderOptions(cgroup_parent="/mlinfra.slice/mlinfra-training.slice"))

    assert directive(unit, "After") == ["docker.service network-online.target"]
    assert directive(unit, "Requires") == ["docker.service"]
    assert directive(unit, "Wants") == ["network-online.target"]
    assert directive(unit, "Slice") == ["mlinfra-training.slice"]
    assert directive(unit, "Type") == ["exec"]
    assert directive(unit, "ExecStop") == ["/usr/bin/docker stop --time=120 mlinfra-pretrain"]
    assert directive(unit, "TimeoutStopSec") == ["150"]
    assert directive(unit, "Restart") == ["on-failure"]
    assert directive(unit, "RestartSec") == ["5"]
    assert directive(unit, "WantedBy") == ["multi-user.target"]


def test_stop_timeout_below_unit_timeout():
    for seconds in (1, 30, 600, 3600):
        config, _ = validate_launch_config(training_config(stop_timeout_seconds=seconds))
        unit = render_unit(config, ONE_GPU, RenderOptions())

        assert int(directive(unit, "TimeoutStopSec")[0]) > seconds
        assert f"--stop-timeout={seconds}" in directive(unit, "ExecStart")[0]


def test_start_timeout_covers_pull_and_backoff():
    config, _ = validate_launch_config(training_config(restart={"max_delay_seconds": 300}))

    unit = render_unit(config, ONE_GPU, RenderOptions(pull_timeout_seconds=1200))

    assert int(directive(unit, "TimeoutStartSec")[0]) >= 1200 + 300


def test_container_placed_in_slice_with_limits():
    config, _ = validate_launch_config(training_config(cpus=3.5, memory="10GiB", shm_size="1GiB"))

    exec_start = directive(
        render_unit(config, ONE_GPU, RenderOptions(cgroup_parent="/docker/abc/mlinfra.slice/mlinfra-training.slice")),
        "ExecStart",
    )[0]

    assert "--cgroup-parent=/docker/abc/mlinfra.slice/mlinfra-training.slice" in exec_start
    assert "--cpus=3.5 --memory=10240m --memory-swap=10240m --shm-size=1024m" in exec_start


def test_default_cgroup_parent_is_slice_path():
    config, _ = validate_launch_config(inference_config())

    exec_start = directive(render_unit(config, ONE_GPU, RenderOptions()), "ExecStart")[0]

    assert "--cgroup-parent=/mlinfra.slice/mlinfra-inference.slice" in exec_start


def test_gpus_selected_by_uuid():
    config, _ = validate_launch_config(training_config(gpus={"count": 2}))

    exec_start = directive(render_unit(config, TWO_GPUS, RenderOptions(gpu_access="docker-gpus")), "ExecStart")[0]

    assert '"--gpus=\\"device=GPU-a,GPU-b\\""' in exec_start
    assert "--label=dev.mlinfra.gpus=GPU-a,GPU-b" in exec_start


@pytest.mark.parametrize(
    ("mode", "expected", "absent"),
    [
        ("nvidia-runtime", "--runtime=nvidia", "--gpus"),
        ("cdi", "--device=nvidia.com/gpu=GPU-a --device=nvidia.com/gpu=GPU-b", "--gpus"),
        ("environment", "--label=dev.mlinfra.gpus=GPU-a,GPU-b", "--gpus"),
    ],
)
def test_gpu_access_modes(mode, expected, absent):
    config, _ = validate_launch_config(training_config(gpus={"count": 2}))

    exec_start = directive(render_unit(config, TWO_GPUS, RenderOptions(gpu_access=mode)), "ExecStart")[0]

    assert expected in exec_start
    assert absent not in exec_start
    assert "--runtime=nvidia" not in exec_start or mode == "nvidia-runtime"


def test_gpu_falls_back_to_index_without_uuid():
    assert gpu_visible_devices({"gpus": [{"index": 3, "uuid": "", "name": ""}]}) == "3"
    assert gpu_visible_devices({"gpus": []}) == "void"


def test_env_file_holds_environment_and_gpus_only():
    config, _ = validate_launch_config(
        training_config(
            environment={"B": "two words", "A": "1"},
            secrets=[{"name": "token", "source": "/etc/mlinfra/secrets/token"}],
        )
    )

    env = render_env_file(config, TWO_GPUS)

    assert env.splitlines()[1:] == ["A=1", "B=two words", "NVIDIA_VISIBLE_DEVICES=GPU-a,GPU-b"]


def test_environment_values_stay_out_of_unit():
    config, _ = validate_launch_config(training_config(environment={"MODEL_PATH": "/models/very-distinctive-value"}))

    unit = render_unit(config, ONE_GPU, RenderOptions())

    assert "very-distinctive-value" not in unit
    assert "--env-file=/etc/mlinfra/workloads/pretrain.env" in unit


def test_secrets_mounted_read_only():
    config, _ = validate_launch_config(
        training_config(secrets=[{"name": "token", "source": "/etc/mlinfra/secrets/token"}])
    )

    exec_start = directive(render_unit(config, ONE_GPU, RenderOptions()), "ExecStart")[0]

    assert "--mount=type=bind,source=/etc/mlinfra/secrets/token,target=/run/secrets/token,readonly" in exec_start


def test_mounts_and_ports_rendered():
    config, _ = validate_launch_config(
        inference_config(
            mounts=[
                {"source": "/srv/models", "target": "/models"},
                {"source": "/var/cache/x", "target": "/cache", "read_only": False},
            ],
            ports=[{"container_port": 8080, "host_port": 18080, "host_ip": "0.0.0.0"}],  # noqa: S104 (a bind address in a rendered unit, never contacted),
        )
    )

    exec_start = directive(render_unit(config, ONE_GPU, RenderOptions()), "ExecStart")[0]

    assert "--mount=type=bind,source=/srv/models,target=/models,readonly" in exec_start
    assert "--mount=type=bind,source=/var/cache/x,target=/cache " in exec_start
    assert "--publish=0.0.0.0:18080:8080/tcp" in exec_start


def test_command_replaces_entrypoint_and_args_follow():
    config, _ = validate_launch_config(training_config(command=["/bin/sh", "-c", "echo $HOME; exit 0"], args=["50%"]))

    exec_start = directive(render_unit(config, ONE_GPU, RenderOptions()), "ExecStart")[0]

    assert exec_start.endswith(f'--entrypoint=/bin/sh {IMAGE} -c "echo $$HOME; exit 0" 50%%')


def test_command_health_check_passed_to_runtime():
    config, _ = validate_launch_config(
        training_config(
            health_check={"type": "command", "command": ["test", "-f", "/run/ready file"], "interval_seconds": 7}
        )
    )

    exec_start = directive(render_unit(config, ONE_GPU, RenderOptions()), "ExecStart")[0]

    assert "\"--health-cmd=test -f '/run/ready file'\"" in exec_start
    assert "--health-interval=7s" in exec_start


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain", "plain"),
        ("a b", '"a b"'),
        ("$HOME", '"$$HOME"'),
        ("50%", "50%%"),
        (";", '";"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("", '""'),
    ],
)
def test_systemd_quote(word, quoted):
    assert systemd_quote(word) == quoted


def test_exec_line_joins_words():
    assert exec_line(["/bin/echo", "a b", "c"]) == '/bin/echo "a b" c'


def test_start_limit_counts_restarts_and_window():
    restart = {
        "policy": "on-failure",
        "delay_seconds": 5,
        "max_delay_seconds": 60,
        "max_restarts": 5,
        "window_seconds": None,
    }

    burst, interval = start_limit(restart, allowance_seconds=30)

    # Gaps 5+10+20+40+60 = 135, plus RestartSec 5 once more, plus 6 attempts of 30 s.
    assert burst == 6
    assert interval == 135 + 5 + 6 * 30


def test_start_limit_uses_explicit_window():
    restart = {
        "policy": "on-failure",
        "delay_seconds": 1,
        "max_delay_seconds": 4,
        "max_restarts": 3,
        "window_seconds": 900,
    }

    assert start_limit(restart, allowance_seconds=30) == (4, 900)


def test_no_restart_policy_renders_no_limits():
    config, _ = validate_launch_config(training_config(restart={"policy": "no"}))

    unit = render_unit(config, ONE_GPU, RenderOptions())

    assert directive(unit, "Restart") == ["no"]
    assert directive(unit, "StartLimitBurst") == []
    assert "NRestarts" not in unit


def test_backoff_script_reads_own_restart_counter():
    config, _ = validate_launch_config(training_config(restart={"delay_seconds": 2, "max_delay_seconds": 16}))

    unit = render_unit(config, ONE_GPU, RenderOptions())

    backoff = [line for line in directive(unit, "ExecStartPre") if "NRestarts" in line]
    assert len(backoff) == 1
    assert "--value mlinfra-workload-pretrain.service" in backoff[0]
    assert "delay=2;" in backoff[0]
    assert "-lt 16 ]" in backoff[0]


def test_backoff_script_sleeps_expected_gaps(tmp_path):
    """Run the rendered backoff script with a fake systemctl and check the sleeps it asks for."""
    config, _ = validate_launch_config(
        training_config(restart={"delay_seconds": 3, "max_delay_seconds": 20, "max_restarts": 6})
    )
    unit = render_unit(config, ONE_GPU, RenderOptions())
    line = next(line for line in directive(unit, "ExecStartPre") if "NRestarts" in line)
    # Undo the unit-file quoting the way systemd does for this line: strip the outer quotes, unescape, and undo $$.
    script = line.split(" -c ", 1)[1][1:-1].replace('\\"', '"').replace("$$", "$")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text('#!/bin/sh\necho "$RESTARTS"\n')
    (bin_dir / "sleep").write_text('#!/bin/sh\necho "$1"\n')
    for path in bin_dir.iterdir():
        path.chmod(0o755)

    sleeps = []
    for restarts in range(7):
        result = subprocess.run(
            ["/bin/sh", "-c", script],
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RESTARTS": str(restarts)},
            capture_output=True,
            text=True,
            check=True,
        )
        sleeps.append(int(result.stdout.strip()))

    # Gap k = 3 * 2^(k-1) capped at 20, minus the RestartSec of 3 already waited.
    assert sleeps == [0, 0, 3, 9, 17, 17, 17]


def test_record_tracks_previous_image():
    config, _ = validate_launch_config(training_config())
    old = {"image": "registry.example.com/ml/serve@sha256:" + "1" * 64, "previous_image": "older"}

    changed = json.loads(render_record(config, ONE_GPU, old))
    unchanged = json.loads(render_record(config, ONE_GPU, {"image": IMAGE, "previous_image": "older"}))
    first = json.loads(render_record(config, ONE_GPU, None))

    assert changed["previous_image"] == old["image"]
    assert unchanged["previous_image"] == "older"
    assert first["previous_image"] == ""
    assert first["gpus"] == ONE_GPU["gpus"]
    assert first["memory_mib"] == 8192


def test_rendering_is_deterministic():
    config, _ = validate_launch_config(inference_config(environment={"Z": "1", "A": "2"}))
    again, _ = validate_launch_config(inference_config(environment={"A": "2", "Z": "1"}))

    assert render_unit(config, ONE_GPU, RenderOptions()) == render_unit(again, ONE_GPU, RenderOptions())
    assert render_env_file(config, ONE_GPU) == render_env_file(again, ONE_GPU)
    assert render_record(config, ONE_GPU, None) == render_record(again, ONE_GPU, None)


SLICE = "[Unit]\nDescription=test slice\n\n[Slice]\nMemoryMax=8G\nCPUQuota=400%\n"


@needs_systemd_analyze
@needs_docker_client
@pytest.mark.parametrize(
    "config",
    [
        training_config(),
        training_config(restart={"policy": "no"}, init=True, secrets=[{"name": "t", "source": "/etc/t"}]),
        inference_config(command=["/bin/sh", "-c", 'echo "$HOME 100%"; exit 0'], args=[";", "a\\b"]),
        inference_config(
            health_check={"type": "command", "command": ["wget", "-q", "-O-", "http://127.0.0.1:8080/health"]}
        ),
    ],
    ids=["training", "no-restart", "hard-quoting", "command-health"],
)
def test_docker_unit_passes_verify(tmp_path, config):
    normalized, _ = validate_launch_config(config)
    unit = render_unit(normalized, ONE_GPU, RenderOptions())
    slice_file = f"mlinfra-{normalized['role']}.slice"

    result = systemd_analyze_verify(
        tmp_path, {f"mlinfra-workload-{normalized['name']}.service": unit, slice_file: SLICE}
    )

    assert result.stderr == ""
    assert result.returncode == 0


@needs_systemd_analyze
def test_podman_unit_passes_verify(tmp_path):
    podman = tmp_path / "podman"
    podman.write_text("#!/bin/sh\nexit 0\n")
    podman.chmod(0o755)
    normalized, _ = validate_launch_config(inference_config(runtime="podman"))
    unit = render_unit(normalized, ONE_GPU, RenderOptions(runtime_path=str(podman)))

    result = systemd_analyze_verify(
        tmp_path, {"mlinfra-workload-serve.service": unit, "mlinfra-inference.slice": SLICE}
    )

    assert result.stderr == ""
    assert directive(unit, "Type") == ["notify"]
    assert "--cgroups=split" in directive(unit, "ExecStart")[0]
    assert "--cgroup-parent" not in unit


@needs_systemd_analyze
def test_verify_catches_a_broken_unit(tmp_path):
    """The verify helper must fail on a unit systemd warns about, or the tests above prove nothing."""
    result = systemd_analyze_verify(tmp_path, {"broken.service": "[Service]\nExecStart=/bin/true\nRestartSecc=5\n"})

    assert "Unknown key" in result.stderr
