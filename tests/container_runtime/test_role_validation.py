"""Bad input to the container_runtime role fails in validation, naming the variable.

One real ansible-playbook run covers every case: the role runs against
localhost in check mode with only its validation tasks selected (tag
container_runtime_validate), so no case can change this machine even if its
validation were missing. That validation comes before every task that changes
a host is checked on tasks/main.yml itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLE = REPO_ROOT / "roles" / "container_runtime"

# name: (variables, variable the message must name, or None when the case must pass)
CASES = {
    "defaults": ({}, None),
    "engine_podman": ({"container_runtime_engine": "podman"}, "container_runtime_engine"),
    "engine_unknown": ({"container_runtime_engine": "crio"}, "container_runtime_engine"),
    "docker_source_unknown": ({"container_runtime_docker_source": "snap"}, "container_runtime_docker_source"),
    "docker_version_with_space": ({"container_runtime_docker_version": "20.10 24"}, "container_runtime_docker_version"),
    "docker_version_number": ({"container_runtime_docker_version": 20.1}, "container_runtime_docker_version"),
    "docker_version_glob": ({"container_runtime_docker_version": "20.10.24*"}, None),
    "toolkit_version_latest": (
        {"container_runtime_nvidia_toolkit_version": "latest"},
        "container_runtime_nvidia_toolkit_version",
    ),
    "toolkit_version_two_parts": (
        {"container_runtime_nvidia_toolkit_version": "1.17"},
        "container_runtime_nvidia_toolkit_version",
    ),
    "toolkit_version_v_prefix": (
        {"container_runtime_nvidia_toolkit_version": "v1.17.8-1"},
        "container_runtime_nvidia_toolkit_version",
    ),
    "toolkit_version_without_revision": ({"container_runtime_nvidia_toolkit_version": "1.17.8"}, None),
    "toolkit_version_release_candidate": ({"container_runtime_nvidia_toolkit_version": "1.18.0~rc.2-1"}, None),
    "toolkit_version_ignored_when_disabled": (
        {"container_runtime_nvidia_toolkit_enabled": False, "container_runtime_nvidia_toolkit_version": "latest"},
        None,
    ),
    "toolkit_repo_without_scheme": (
        {"container_runtime_nvidia_toolkit_repo_url": "nvidia.github.io/libnvidia-container"},
        "container_runtime_nvidia_toolkit_repo_url",
    ),
    "toolkit_repo_ftp": (
        {"container_runtime_nvidia_toolkit_repo_url": "ftp://mirror.example.com/nvidia"},
        "container_runtime_nvidia_toolkit_repo_url",
    ),
    "toolkit_repo_no_host": (
        {"container_runtime_nvidia_toolkit_repo_url": "https://"},
        "container_runtime_nvidia_toolkit_repo_url",
    ),
    "toolkit_repo_with_space": (
        {"container_runtime_nvidia_toolkit_repo_url": "https://mirror example.com/nvidia"},
        "container_runtime_nvidia_toolkit_repo_url",
    ),
    "toolkit_key_not_a_url": (
        {"container_runtime_nvidia_toolkit_gpg_key_url": "/etc/apt/keyrings/nvidia.asc"},
        "container_runtime_nvidia_toolkit_gpg_key_url",
    ),
    "toolkit_repo_artifact_registry": (
        {"container_runtime_nvidia_toolkit_repo_url": "https://us-apt.pkg.dev/projects/mlinfra-prod/nvidia-remote"},
        None,
    ),
    "docker_repo_not_a_url": (
        {"container_runtime_docker_source": "docker", "container_runtime_docker_repo_url": "download.docker.com"},
        "container_runtime_docker_repo_url",
    ),
    "docker_repo_ignored_for_debian_source": ({"container_runtime_docker_repo_url": "not a url"}, None),
    "credential_host_with_scheme": (
        {"container_runtime_registry_credential_helper_hosts": ["https://us-docker.pkg.dev"]},
        "container_runtime_registry_credential_helper_hosts",
    ),
    "credential_host_valid": (
        {"container_runtime_registry_credential_helper_hosts": ["us-central1-docker.pkg.dev"]},
        None,
    ),
    "daemon_options_not_a_dict": (
        {"container_runtime_docker_daemon_options": ["insecure-registries"]},
        "container_runtime_docker_daemon_options",
    ),
}


def case_block(name: str, variables: dict) -> dict:
    """Return a block that runs the role with the case's variables and records how it ended."""
    record = "{{ validation_results | default({}) | combine({%r: %s}) }}"
    return {
        "name": f"Run case {name}",
        # Tags on a block reach the tasks of a role included in it, so only the
        # wrapper tasks carry `always`. The tags on an include_role apply to
        # the include alone, and the role's tasks keep their own.
        "block": [
            {
                "name": "Run the role",
                "ansible.builtin.include_role": {"name": "container_runtime"},
                "vars": variables,
                "tags": ["always"],
            },
            {
                "name": "Record that the case passed validation",
                "ansible.builtin.set_fact": {"validation_results": record % (name, "{'failed': false}")},
                "tags": ["always"],
            },
        ],
        "rescue": [
            {
                "tags": ["always"],
                "name": "Record the failure of the case",
                "ansible.builtin.set_fact": {
                    "validation_results": record
                    % (name, "{'failed': true, 'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg}")
                },
            }
        ],
    }


@pytest.fixture(scope="module")
def validation_results(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("validation")
    result_file = workdir / "results.json"
    playbook = [
        {
            "name": "Validate container_runtime inputs",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": True,
            "gather_subset": ["min", "platform"],
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": [
                *(case_block(name, variables) for name, (variables, _) in CASES.items()),
                {
                    "name": "Write the results",
                    "ansible.builtin.copy": {
                        "content": "{{ validation_results | to_json }}",
                        "dest": str(result_file),
                        "mode": "0600",
                    },
                    "check_mode": False,
                    "tags": ["always"],
                },
            ],
        }
    ]
    playbook_file = workdir / "validate.yml"
    playbook_file.write_text(yaml.safe_dump(playbook, sort_keys=False))
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "--check",
        "--tags",
        "container_runtime_validate",
        str(playbook_file),
    ]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"ansible-playbook failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    return json.loads(result_file.read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_validation(validation_results, case):
    _, variable = CASES[case]
    outcome = validation_results[case]
    if variable is None:
        assert outcome == {"failed": False}, f"{case} should pass validation: {outcome}"
        return
    assert outcome["failed"], f"{case} passed validation"
    assert variable in outcome["msg"], f"message does not name {variable}: {outcome['msg']}"
    is_validation_task = outcome["task"].startswith(("Check ", "Validating arguments against arg spec"))
    assert is_validation_task, f"{case} failed in {outcome['task']!r}, not in validation"


def test_validation_runs_first():
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    # Only fact gathering, which reads, may come before the validation.
    assert "ansible.builtin.setup" in tasks[0]
    assert tasks[1]["ansible.builtin.import_tasks"] == "validate.yml"
    validate = yaml.safe_load((ROLE / "tasks" / "validate.yml").read_text())
    modules = {key for task in validate for key in task if key.startswith("ansible.builtin.")}
    assert modules == {"ansible.builtin.assert"}, f"validate.yml must only assert, found {modules}"
