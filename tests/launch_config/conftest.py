"""Fixtures for the launch_config tests: a sample host, valid configs and an in-process module runner."""

from __future__ import annotations

import copy
import io
import json
import stat
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.platform.plugins.modules import launch_config as launch_config_module

DIGEST = "sha256:" + "5" * 64
IMAGE = f"registry.example.com/ml/serve@{DIGEST}"

# Four GPUs as nvidia_gpu_facts reports them.
GPU_FACTS = {
    "state": "ok",
    "count": 4,
    "driver_version": "535.261.03",
    "gpus": [
        {
            "index": index,
            "name": "NVIDIA L4",
            "uuid": f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
            "pci_bus_id": f"00000000:0{index}:00.0",
            "memory_total_mib": 23034,
        }
        for index in range(4)
    ],
}
SLICE_LIMITS = {"training": {"memory": "40GiB", "cpus": 12}, "inference": {"memory": "24GiB", "cpus": 8}}


def inference_config(**overrides) -> dict:
    config = {
        "name": "serve",
        "role": "inference",
        "image": IMAGE,
        "command": ["python", "-m", "serve"],
        "args": ["--port", "8080"],
        "environment": {"MODEL_NAME": "llama"},
        "gpus": {"count": 1},
        "cpus": 2,
        "memory": "4GiB",
        "ports": [{"container_port": 8080, "host_port": 18080}],
        "health_check": {"type": "http", "port": 8080, "path": "/health"},
    }
    config.update(overrides)
    return config


def training_config(**overrides) -> dict:
    config = {
        "name": "pretrain",
        "role": "training",
        "image": IMAGE,
        "command": ["python", "train.py"],
        "gpus": {"count": 1},
        "cpus": 4,
        "memory": "8GiB",
        "stop_timeout_seconds": 120,
    }
    config.update(overrides)
    return config


class ModuleRunner:
    """Run the launch_config module in this process against directories under tmp_path."""

    def __init__(self, root: Path):
        self.root = root
        self.unit_dir = root / "etc/systemd/system"
        self.state_dir = root / "etc/mlinfra/workloads"
        self.unit_dir.mkdir(parents=True)
        self.state_dir.mkdir(parents=True)
        self.runtime_log = root / "runtime.log"
        self.runtime = root / "bin/docker"
        self.runtime.parent.mkdir()
        # A stand-in for the docker client: it logs its arguments and fails
        # `image inspect` or `pull` when the test sets the matching variable.
        self.runtime.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {self.runtime_log}\n'
            'if [ "$1 $2" = "image inspect" ]; then exit "${FAKE_INSPECT_RC:-0}"; fi\n'
            'if [ "$1" = pull ]; then echo "pull failed: manifest unknown" >&2; exit "${FAKE_PULL_RC:-0}"; fi\n'
            "exit 0\n"
        )
        self.runtime.chmod(0o755)

    def defaults(self) -> dict:
        return {
            "unit_dir": str(self.unit_dir),
            "state_dir": str(self.state_dir),
            "runtime_path": str(self.runtime),
            "gpu_facts": copy.deepcopy(GPU_FACTS),
            "host_memory_mib": 64 * 1024,
            "host_cpus": 16,
            "memory_reserve": "4GiB",
            "slice_limits": copy.deepcopy(SLICE_LIMITS),
        }

    def run(self, check_mode: bool = False, diff: bool = False, **args) -> dict:
        module_args = self.defaults()
        module_args.update(args)
        module_args["_ansible_check_mode"] = check_mode
        module_args["_ansible_diff"] = diff
        output = io.StringIO()
        warnings: list[str] = []
        # In a process that has loaded Ansible's controller code, module.warn prints
        # through Display instead of returning warnings, so collect them here.
        with (
            patch_module_args(module_args),
            mock.patch.object(
                launch_config_module.AnsibleModule, "warn", lambda _module, warning: warnings.append(warning)
            ),
            redirect_stdout(output),
            pytest.raises(SystemExit) as exit_info,
        ):
            launch_config_module.main()
        result = json.loads(output.getvalue())
        result["rc"] = exit_info.value.code
        result["warnings"] = warnings
        return result

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Return every file under the host root with its bytes and mode, the runtime log excluded."""
        files = {}
        for directory in (self.unit_dir, self.state_dir):
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    files[str(path)] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        return files


@pytest.fixture
def runner(tmp_path: Path) -> ModuleRunner:
    return ModuleRunner(tmp_path)
