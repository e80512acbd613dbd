"""Every config in bad_configs.yml is rejected with its message, and the host stays byte-for-byte unchanged."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from .conftest import training_config

CORPUS = yaml.safe_load((Path(__file__).parent / "bad_configs.yml").read_text())


def build_config(case: dict) -> dict:
    config = copy.deepcopy(CORPUS["base"])
    config.update(copy.deepcopy(case.get("set", {})))
    for field in case.get("remove", []):
        config.pop(field)
    return config


@pytest.fixture
def busy_host(runner):
    """A host that already runs chat (inference, GPU 0, port 8080) and pretrain (training, GPU 1)."""
    chat = copy.deepcopy(CORPUS["base"])
    chat.update(name="chat", gpus={"indices": [0]}, memory="8GiB", ports=[{"container_port": 8080, "host_port": 8080}])
    for config in (chat, training_config(gpus={"indices": [1]}, memory="16GiB")):
        result = runner.run(config=config)
        assert result["rc"] == 0, result.get("msg")
    return runner


def test_corpus_size_and_unique_ids():
    ids = [case["id"] for case in CORPUS["cases"]]

    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def test_base_config_accepted(busy_host):
    before = busy_host.snapshot()

    result = busy_host.run(check_mode=True, config=build_config({}))

    assert result["rc"] == 0, result.get("msg")
    assert busy_host.snapshot() == before


@pytest.mark.parametrize("case", CORPUS["cases"], ids=[case["id"] for case in CORPUS["cases"]])
def test_bad_config_rejected(busy_host, case):
    before = busy_host.snapshot()
    log_before = busy_host.runtime_log.read_text() if busy_host.runtime_log.exists() else ""

    result = busy_host.run(config=build_config(case), **case.get("module_args", {}))

    assert result.get("failed") is True
    assert case["expect"] in result["msg"]
    assert "Fix: " in result["msg"]
    assert busy_host.snapshot() == before
    # A rejected config never reaches the runtime, so nothing is pulled either.
    assert (busy_host.runtime_log.read_text() if busy_host.runtime_log.exists() else "") == log_before
