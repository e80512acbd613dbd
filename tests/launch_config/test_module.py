"""The launch_config module end to end, run in this process against temporary host directories."""

from __future__ import annotations

import json
import stat

from .conftest import IMAGE, inference_config, training_config

OTHER_IMAGE = "registry.example.com/ml/serve@sha256:" + "6" * 64


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_writes_unit_env_and_record(runner):
    result = runner.run(config=training_config())

    unit = runner.unit_dir / "mlinfra-workload-pretrain.service"
    env = runner.state_dir / "pretrain.env"
    record = runner.state_dir / "pretrain.json"
    assert result["rc"] == 0
    assert result["changed"] is True
    assert result["restart_required"] is True
    assert result["unit"] == "mlinfra-workload-pretrain.service"
    assert result["gpus"][0]["index"] == 0
    assert mode(unit) == 0o644
    assert mode(env) == 0o600
    assert mode(record) == 0o644
    assert json.loads(record.read_text())["gpus"] == result["gpus"]
    assert sorted(path.name for path in runner.state_dir.iterdir()) == ["pretrain.env", "pretrain.json"]


def test_second_run_changes_nothing(runner):
    runner.run(config=training_config())
    before = runner.snapshot()

    result = runner.run(config=training_config())

    assert result["changed"] is False
    assert result["restart_required"] is False
    assert runner.snapshot() == before


def test_check_mode_writes_nothing(runner):
    result = runner.run(check_mode=True, diff=True, config=training_config())

    assert result["changed"] is True
    assert runner.snapshot() == {}
    assert [entry["after_header"] for entry in result["diff"]] == [
        str(runner.state_dir / "pretrain.env"),
        str(runner.unit_dir / "mlinfra-workload-pretrain.service"),
        str(runner.state_dir / "pretrain.json"),
    ]
    assert not runner.runtime_log.exists()


def test_diff_shows_only_changed_files(runner):
    runner.run(config=training_config())

    result = runner.run(diff=True, config=training_config(environment={"EPOCHS": "3"}))

    assert result["changed"] is True
    assert result["restart_required"] is True
    assert len(result["diff"]) == 1
    assert result["diff"][0]["after_header"].endswith("pretrain.env")
    assert "EPOCHS=3" in result["diff"][0]["after"]


def test_image_change_keeps_previous_image(runner):
    runner.run(config=training_config())

    result = runner.run(config=training_config(image=OTHER_IMAGE))

    record = json.loads((runner.state_dir / "pretrain.json").read_text())
    assert result["restart_required"] is True
    assert result["previous_image"] == IMAGE
    assert record["image"] == OTHER_IMAGE
    assert record["previous_image"] == IMAGE


def test_rollback_swaps_previous_image(runner):
    runner.run(config=training_config())
    runner.run(config=training_config(image=OTHER_IMAGE))

    result = runner.run(config=training_config(image=IMAGE))

    assert result["image"] == IMAGE
    assert result["previous_image"] == OTHER_IMAGE


def test_missing_image_pulled_before_writing(runner, monkeypatch):
    monkeypatch.setenv("FAKE_INSPECT_RC", "1")

    result = runner.run(config=training_config())

    calls = runner.runtime_log.read_text().splitlines()
    assert result["pulled"] is True
    assert calls == [f"image inspect --format=. {IMAGE}", f"pull {IMAGE}"]


def test_failed_pull_writes_nothing(runner, monkeypatch):
    monkeypatch.setenv("FAKE_INSPECT_RC", "1")
    monkeypatch.setenv("FAKE_PULL_RC", "1")

    result = runner.run(config=training_config())

    assert result["failed"] is True
    assert f"pulling image {IMAGE} failed with exit code 1: pull failed: manifest unknown" in result["msg"]
    assert "Nothing was written" in result["msg"]
    assert runner.snapshot() == {}


def test_second_workload_gets_next_free_gpu(runner):
    runner.run(config=training_config(gpus={"count": 2}))

    result = runner.run(config=inference_config())

    assert [gpu["index"] for gpu in result["gpus"]] == [2]


def test_owned_gpu_rejected_and_nothing_changed(runner):
    runner.run(config=training_config(gpus={"indices": [1]}))
    before = runner.snapshot()

    result = runner.run(config=inference_config(gpus={"indices": [1]}))

    assert result["failed"] is True
    assert "owned by training workload 'pretrain'" in result["msg"]
    assert result["errors"] == [result["msg"]]
    assert runner.snapshot() == before


def test_absent_removes_files_and_frees_gpus(runner):
    runner.run(config=training_config(gpus={"count": 4}))
    rejected = runner.run(config=inference_config())

    removed = runner.run(state="absent", name="pretrain", diff=True)
    admitted = runner.run(config=inference_config())

    assert rejected["failed"] is True
    assert removed["changed"] is True
    assert any("systemd is not running" in warning for warning in removed["warnings"])
    assert {entry["after_header"] for entry in removed["diff"]} == {"/dev/null"}
    assert sorted(path.name for path in runner.state_dir.iterdir()) == ["serve.env", "serve.json"]
    assert not (runner.unit_dir / "mlinfra-workload-pretrain.service").exists()
    assert admitted["gpus"][0]["index"] == 0
    assert "rm --force mlinfra-pretrain" in runner.runtime_log.read_text()


def test_absent_check_mode_keeps_files(runner):
    runner.run(config=training_config())
    before = runner.snapshot()

    result = runner.run(state="absent", name="pretrain", check_mode=True)

    assert result["changed"] is True
    assert runner.snapshot() == before


def test_absent_twice_is_unchanged(runner):
    result = runner.run(state="absent", name="never-admitted")

    assert result["changed"] is False


def test_tag_warning_reaches_ansible(runner):
    result = runner.run(config=training_config(image="registry.example.com/ml/train:dev"), allow_image_tags=True)

    assert result["rc"] == 0
    assert any("pinned by tag" in warning for warning in result["warnings"])


def test_damaged_own_record_rewritten_with_warning(runner):
    runner.run(config=training_config())
    (runner.state_dir / "pretrain.json").write_text("{not json")

    result = runner.run(config=training_config())

    assert result["changed"] is True
    assert any("is damaged" in warning for warning in result["warnings"])
    assert json.loads((runner.state_dir / "pretrain.json").read_text())["name"] == "pretrain"


def test_damaged_foreign_record_rejects(runner):
    (runner.state_dir / "other.json").write_text("[]")

    result = runner.run(config=training_config())

    assert result["failed"] is True
    assert "workload 'other': admission record:" in result["msg"]


def test_invalid_slice_limits_rejected(runner):
    result = runner.run(config=training_config(), slice_limits={"training": {"memory": "lots"}})

    assert result["failed"] is True
    assert "slice_limits.training.memory: invalid size 'lots'" in result["msg"]


def test_missing_gpu_facts_rejects_gpu_request(runner):
    result = runner.run(config=training_config(), gpu_facts={})

    assert result["failed"] is True
    assert "state 'missing (no gpu_facts given)'" in result["msg"]
