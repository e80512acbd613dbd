"""Validation and normalization of launch configs."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (
    LaunchConfigRejected,
    backoff_delays,
    format_size_mib,
    minimum_start_limit_window,
    parse_size_mib,
    split_image_reference,
    validate_launch_config,
)

from .conftest import DIGEST, IMAGE, inference_config, training_config


def rejection(config: dict, **kwargs) -> str:
    with pytest.raises(LaunchConfigRejected) as info:
        validate_launch_config(config, **kwargs)
    return str(info.value)


def test_inference_config_normalized():
    config, warnings = validate_launch_config(inference_config())

    assert warnings == []
    assert config["name"] == "serve"
    assert config["memory_mib"] == 4096
    assert config["shm_size_mib"] == 64
    assert config["cpus"] == 2.0
    assert config["gpus"] == {"count": 1, "indices": []}
    assert config["ports"] == [{"container_port": 8080, "host_port": 18080, "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert config["health_check"]["host_port"] == 18080
    assert config["health_check"]["interval_seconds"] == 10
    assert config["stop_signal"] == "SIGTERM"
    assert config["stop_timeout_seconds"] == 30
    assert config["restart"] == {
        "policy": "on-failure",
        "delay_seconds": 5,
        "max_delay_seconds": 60,
        "max_restarts": 5,
        "window_seconds": None,
    }
    assert config["runtime"] == "docker"
    assert config["log_tag"] == "serve"


def test_training_defaults_and_explicit_indices():
    config, _ = validate_launch_config(training_config(gpus={"indices": [3, 1]}, stop_signal="USR1", shm_size="2GiB"))

    assert config["gpus"] == {"count": 2, "indices": [1, 3]}
    assert config["stop_signal"] == "SIGUSR1"
    assert config["shm_size_mib"] == 2048
    assert config["ports"] == []
    assert config["health_check"] == {"type": "none"}


def test_mount_read_only_by_default():
    config, _ = validate_launch_config(
        training_config(
            mounts=[
                {"source": "/srv/data/", "target": "/data"},
                {"source": "/ckpt", "target": "/ckpt", "read_only": False},
            ]
        )
    )

    assert config["mounts"][0] == {"source": "/srv/data", "target": "/data", "read_only": True}
    assert config["mounts"][1]["read_only"] is False


def test_secret_target_defaults_to_run_secrets():
    config, _ = validate_launch_config(
        training_config(secrets=[{"name": "hf-token", "source": "/etc/mlinfra/secrets/hf"}])
    )

    assert config["secrets"] == [
        {"name": "hf-token", "source": "/etc/mlinfra/secrets/hf", "target": "/run/secrets/hf-token"}
    ]


def test_environment_numbers_become_strings():
    config, _ = validate_launch_config(training_config(environment={"BATCH": 32, "LR": 0.5, "NAME": "x"}))

    assert config["environment"] == {"BATCH": "32", "LR": "0.5", "NAME": "x"}


def test_tag_rejected_without_permission():
    message = rejection(training_config(image="registry.example.com/ml/train:v3"))

    assert "workload 'pretrain': image:" in message
    assert "pinned by tag" in message
    assert "Fix: pin it by digest" in message


def test_tag_accepted_with_warning_when_allowed():
    config, warnings = validate_launch_config(
        training_config(image="registry.example.com/ml/train:v3"), allow_image_tags=True
    )

    assert config["image"] == "registry.example.com/ml/train:v3"
    assert len(warnings) == 1
    assert "pinned by tag" in warnings[0]


def test_every_error_reported_at_once():
    message = rejection(training_config(role="batch", cpus=-1, memory="8G"))

    assert "role: unknown role 'batch'" in message
    assert "cpus: invalid or missing value -1" in message
    assert "memory: invalid or missing size '8G'" in message


def test_error_names_workload_field_value_fix():
    message = rejection(inference_config(ports=[{"container_port": 70000}]))

    assert message.startswith("workload 'serve': ports[0].container_port: value 70000 is out of range.")
    assert "Fix: set a whole number from 1 to 65535." in message


def test_invalid_name_reported_as_placeholder():
    message = rejection(training_config(name="Pre_Train"))

    assert message.startswith("workload '<invalid name>': name: invalid or missing name 'Pre_Train'")


def test_environment_value_never_echoed():
    message = rejection(training_config(environment={"HF_HOME": "secret-looking\nvalue"}))

    assert "environment.HF_HOME" in message
    assert "secret-looking" not in message


def test_non_mapping_config_rejected():
    message = rejection(["not", "a", "mapping"])

    assert "expected a mapping" in message


@pytest.mark.parametrize(
    ("value", "mib"),
    [("512MiB", 512), ("16GiB", 16384), ("1.5GiB", 1536), ("1TiB", 1048576), (" 2GiB", 2048)],
)
def test_parse_size_valid(value, mib):
    assert parse_size_mib(value) == mib


@pytest.mark.parametrize("value", ["16G", "16gb", "0MiB", "0.5MiB", 16, "", None, "GiB", "-1GiB"])
def test_parse_size_invalid(value):
    assert parse_size_mib(value) is None


def test_format_size_round_trip():
    assert format_size_mib(16384) == "16GiB"
    assert format_size_mib(1536) == "1536MiB"
    assert format_size_mib(0) == "0MiB"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"registry.example.com/ml/serve@{DIGEST}", ("registry.example.com", "ml/serve", "", DIGEST)),
        (f"127.0.0.1:5000/mlinfra/echo@{DIGEST}", ("127.0.0.1:5000", "mlinfra/echo", "", DIGEST)),
        (f"localhost/echo:v1@{DIGEST}", ("localhost", "echo", "v1", DIGEST)),
        ("ml/serve:v1", ("", "ml/serve", "v1", "")),
        ("registry.example.com:443/a/b/c:1.2", ("registry.example.com:443", "a/b/c", "1.2", "")),
    ],
)
def test_split_image_reference(image, expected):
    parts = split_image_reference(image)

    assert (parts["registry"], parts["repository"], parts["tag"], parts["digest"]) == expected


@pytest.mark.parametrize(
    "image", ["", "Registry/UPPER@sha256:" + "a" * 64, "r.io/x@sha256:abc", "r.io/x:", " r.io/x:v1"]
)
def test_split_image_reference_invalid(image):
    assert split_image_reference(image) is None


def test_backoff_doubles_and_caps():
    restart = {"delay_seconds": 5, "max_delay_seconds": 30, "max_restarts": 5}

    assert backoff_delays(restart) == [5, 10, 20, 30, 30]
    assert minimum_start_limit_window(restart) == 95 + 5


def test_short_window_rejected_with_minimum():
    message = rejection(training_config(restart={"delay_seconds": 10, "max_restarts": 3, "window_seconds": 30}))

    assert "restart.window_seconds: window 30s is shorter than the 80s" in message
    assert "set window_seconds to at least 80" in message


def test_long_enough_window_accepted():
    config, _ = validate_launch_config(
        training_config(restart={"delay_seconds": 10, "max_restarts": 3, "window_seconds": 600})
    )

    assert config["restart"]["window_seconds"] == 600


def test_training_rejects_ports():
    message = rejection(training_config(ports=[{"container_port": 8080}]))

    assert "ports: training workloads publish no ports" in message


def test_http_check_port_must_be_published():
    message = rejection(inference_config(health_check={"type": "http", "port": 9090, "path": "/health"}))

    assert "health_check.port: container port 9090 is not published" in message


def test_command_health_check_kept():
    config, _ = validate_launch_config(
        training_config(health_check={"type": "command", "command": ["test", "-f", "/run/ready"], "retries": 5})
    )

    assert config["health_check"]["command"] == ["test", "-f", "/run/ready"]
    assert config["health_check"]["retries"] == 5


def test_validation_is_deterministic_across_key_order():
    config = inference_config(environment={"B": "2", "A": "1"})
    reordered = dict(reversed(list(config.items())))
    reordered["environment"] = {"A": "1", "B": "2"}

    assert validate_launch_config(config) == validate_launch_config(reordered)


def test_image_constant_is_valid():
    assert validate_launch_config(training_config(image=IMAGE))[0]["image"] == IMAGE
