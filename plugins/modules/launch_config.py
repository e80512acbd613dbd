#!/usr/bin/python
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: launch_config
short_description: Validate, admit and render a workload launch config as a systemd unit
description:
  - Validates one launch config, the declaration of everything a workload container runs with.
    A rejected config fails the task with a message that names the workload, the field, the value and the fix.
  - Runs admission control against the host. It rejects a GPU index the host lacks, a GPU another workload
    owns (the message names the owner), more GPUs than are free, training and inference sharing a GPU,
    memory beyond the host's memory minus a reserve or beyond the role's slice, and a host port that
    another workload publishes.
  - On admission, renders a systemd service unit C(mlinfra-workload-<name>.service), an environment file
    (mode 0600) and an admission record C(<state_dir>/<name>.json), and writes each atomically, only when
    its content changed. The record states which GPUs the workload owns and keeps the previous image for
    rollbacks.
  - Pulls the image before writing anything, so a slow or failed pull never leaves a unit that points at
    a missing image, and the caller can restart the unit without waiting for the pull.
  - Writes nothing when a config is rejected.
  - Does not reload systemd or restart the unit after writing; the caller does that when
    RV(restart_required) is true. With O(state=absent) it stops and disables the unit, removes its files
    and reloads systemd.
  - The launch config schema is described under O(config) and in docs/launch-config.md.
version_added: "0.1.0"
author:
  - mlinfra contributors
options:
  state:
    description:
      - V(present) admits and renders the workload.
      - V(absent) stops it cleanly and removes its unit, environment file and record.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Workload name for O(state=absent). With O(state=present) the name comes from O(config).
    type: str
  config:
    description:
      - "The launch config. Required with O(state=present). Its fields:"
      - "C(name) (required): 1 to 40 lowercase letters, digits and hyphens."
      - "C(role) (required): V(training) or V(inference). Each role runs in its own slice."
      - "C(image) (required): C(registry/repository@sha256:<digest>). A tag is accepted only with
        O(allow_image_tags), and then with a warning."
      - "C(command): list of strings that replaces the image's entrypoint. C(args): list of strings that
        follows it, or the image's entrypoint when C(command) is empty."
      - "C(environment): mapping of names to string values. Names that look like credentials (PASSWORD,
        TOKEN, SECRET, API_KEY and the like) are rejected, and so are C(NVIDIA_VISIBLE_DEVICES) and
        C(CUDA_VISIBLE_DEVICES), which the module sets from the admitted GPUs."
      - "C(secrets): list of C({name, source, target}). C(source) is a file already on the host; it is
        mounted read-only at C(target) (default C(/run/secrets/<name>)). Secret values never pass through
        this module."
      - "C(gpus): C({count: N}) or C({indices: [0, 1]}). GPUs are handed to the container by UUID where
        the facts give one."
      - "C(cpus) (required, a number) and C(memory) (required, for example V(16GiB)): limits of the
        container itself."
      - "C(shm_size) (default V(64MiB)): size of /dev/shm, which counts against C(memory)."
      - "C(mounts): list of C({source, target, read_only}). C(read_only) defaults to true, and C(source)
        must exist."
      - "C(ports) (inference only): list of C({container_port, host_port, host_ip, protocol}).
        C(host_ip) defaults to V(127.0.0.1)."
      - "C(health_check): C({type, ...}) with type V(http) (C(port), C(path)), V(tcp) (C(port)),
        V(command) (C(command)) or V(none), plus C(interval_seconds), C(timeout_seconds), C(retries) and
        C(start_period_seconds). The port of an HTTP or TCP check must be published."
      - "C(stop_signal) (default V(SIGTERM)) and C(stop_timeout_seconds) (default 30): the grace a
        training job gets to checkpoint."
      - "C(restart): C({policy, delay_seconds, max_delay_seconds, max_restarts, window_seconds}). The
        delay doubles per restart up to C(max_delay_seconds), and after C(max_restarts) quick failures the
        unit stays failed."
      - "C(runtime): V(docker) (default) or V(podman). C(init): run a minimal init as PID 1.
        C(log_tag) (default the name): journal identifier of the workload's output."
    type: dict
  gpu_facts:
    description:
      - GPU facts of the host as M(mlinfra.platform.nvidia_gpu_facts) returns them, with C(state) and
        C(gpus) (each with C(index), C(uuid), C(name)).
      - Required only when the config requests GPUs. A state other than V(ok) rejects every GPU request.
    type: dict
    default: {}
  host_memory_mib:
    description:
      - Memory of the host in MiB. Defaults to MemTotal from /proc/meminfo.
    type: int
  host_cpus:
    description:
      - CPUs of the host. Defaults to the CPUs the module sees.
    type: int
  memory_reserve:
    description:
      - Memory kept back for the operating system, the container runtime and the GPU driver, with its
        unit (for example V(2GiB)).
      - Admission rejects a workload when the memory of all admitted workloads would exceed the host's
        memory minus this reserve.
    type: str
    default: 2GiB
  slice_limits:
    description:
      - "Limits of the role slices, keyed by role, each C({memory, cpus}), for example
        C({training: {memory: 8GiB, cpus: 4}})."
      - Admission rejects a workload whose memory, together with the other workloads of its role, exceeds
        its slice's memory, or whose CPUs exceed its slice's CPUs.
      - The slices themselves are written by the caller (the ml_workload role).
    type: dict
    default: {}
  allow_image_tags:
    description:
      - Accept images pinned by tag instead of digest, with a warning. Meant for development environments.
    type: bool
    default: false
  gpu_access:
    description:
      - How the container gets its GPUs. V(docker-gpus) passes C(--gpus device=<uuids>) (NVIDIA container
        toolkit), V(nvidia-runtime) selects C(--runtime=nvidia), V(cdi) passes C(--device nvidia.com/gpu=<uuid>).
      - V(environment) only sets C(NVIDIA_VISIBLE_DEVICES), for hosts without the toolkit such as the lab.
        The container then has no GPU device.
    type: str
    choices: [docker-gpus, nvidia-runtime, cdi, environment]
    default: docker-gpus
  cgroup_parent:
    description:
      - Docker's C(--cgroup-parent) for the container, which puts the container into the role's slice.
      - With docker's V(cgroupfs) cgroup driver, give the slice's cgroup path as
        C(systemctl show -P ControlGroup mlinfra-<role>.slice) prints it. With the V(systemd) driver,
        give the slice name C(mlinfra-<role>.slice).
      - Defaults to C(/mlinfra.slice/mlinfra-<role>.slice), which is right for the cgroupfs driver when
        systemd owns the whole cgroup tree. Podman ignores it, because C(--cgroups=split) keeps the
        container in the unit's own cgroup.
    type: str
    default: ""
  runtime_path:
    description:
      - Absolute path of the container runtime binary. Defaults to C(/usr/bin/docker) or C(/usr/bin/podman).
    type: path
  state_dir:
    description:
      - Directory of the environment files and admission records. Every record in it takes part in admission.
    type: path
    default: /etc/mlinfra/workloads
  unit_dir:
    description:
      - Directory the unit is written to.
    type: path
    default: /etc/systemd/system
  pull:
    description:
      - Pull the image when it is not present yet, before any file is written.
    type: bool
    default: true
  pull_timeout_seconds:
    description:
      - Seconds a pull inside the unit's ExecStartPre may take; part of the unit's TimeoutStartSec.
    type: int
    default: 900
  start_allowance_seconds:
    description:
      - Estimated seconds one failing start lives (container start plus run time until the crash).
        It pads the start limit window, so crash loops up to this run time stop after
        C(restart.max_restarts) restarts.
    type: int
    default: 30
notes:
  - One workload is admitted per call. When several configs change on a host, admit the ones that
    release GPUs first.
  - Check mode runs validation and admission and reports the diff, but pulls nothing and writes nothing.
  - The rendered unit targets systemd 252 (Debian 12) and later. Restart backoff is a sleep in
    ExecStartPre that reads the unit's NRestarts, because RestartSteps= arrived only in systemd 254.
  - The podman unit passes C(systemd-analyze verify) but has not run in a test.
seealso:
  - module: mlinfra.platform.nvidia_gpu_facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Admit an inference workload on its GPU 0
  mlinfra.platform.launch_config:
    gpu_facts: "{{ ansible_facts.nvidia_gpu }}"
    slice_limits:
      inference: {memory: 24GiB, cpus: 8}
    config:
      name: llm-serve
      role: inference
      image: registry.example.com/ml/llm-serve@sha256:4b3c1e0f4a0b1d6f3a2e5c7d9b8a6f4e2d0c1b3a5f7e9d8c6b4a2f0e1d3c5b7a
      command: [python, -m, serve]
      args: [--port, "8080"]
      environment:
        MODEL_NAME: llama-3-8b
      secrets:
        - name: hf-token
          source: /etc/mlinfra/secrets/llm-serve/hf-token
      gpus: {indices: [0]}
      cpus: 4
      memory: 16GiB
      shm_size: 2GiB
      mounts:
        - source: /srv/models
          target: /models
      ports:
        - container_port: 8080
          host_port: 8080
      health_check: {type: http, port: 8080, path: /health, interval_seconds: 5, retries: 6, start_period_seconds: 60}
  register: llm_serve

- name: Restart it only when its unit or environment changed
  ansible.builtin.systemd_service:
    name: "{{ llm_serve.unit }}"
    state: restarted
    daemon_reload: true
  when: llm_serve.restart_required

- name: Admit a training job on any two free GPUs with a long checkpoint grace
  mlinfra.platform.launch_config:
    gpu_facts: "{{ ansible_facts.nvidia_gpu }}"
    cgroup_parent: /mlinfra.slice/mlinfra-training.slice
    config:
      name: pretrain
      role: training
      image: registry.example.com/ml/trainer@sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0
      gpus: {count: 2}
      cpus: 8
      memory: 64GiB
      stop_timeout_seconds: 300
      restart: {policy: on-failure, delay_seconds: 10, max_delay_seconds: 300, max_restarts: 5}

- name: Remove a workload and free its GPUs
  mlinfra.platform.launch_config:
    name: pretrain
    state: absent
"""

RETURN = r"""
name:
  description: Workload name.
  returned: always
  type: str
  sample: llm-serve
unit:
  description: Name of the systemd service unit.
  returned: always
  type: str
  sample: mlinfra-workload-llm-serve.service
container:
  description: Name of the container.
  returned: always
  type: str
  sample: mlinfra-llm-serve
image:
  description: Image the unit runs.
  returned: when state is present
  type: str
  sample: registry.example.com/ml/llm-serve@sha256:4b3c1e0f4a0b1d6f3a2e5c7d9b8a6f4e2d0c1b3a5f7e9d8c6b4a2f0e1d3c5b7a
previous_image:
  description: Image the workload ran before its image last changed; empty before the first change.
  returned: when state is present
  type: str
  sample: registry.example.com/ml/llm-serve@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9
gpus:
  description: GPUs the workload owns, ordered by index.
  returned: when state is present
  type: list
  elements: dict
  sample: [{index: 0, uuid: GPU-5f0e3a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b, name: NVIDIA L4}]
role:
  description: Role of the workload.
  returned: when state is present
  type: str
  sample: inference
health_check:
  description: Normalized health check, with C(host_port) and C(host_ip) added for HTTP and TCP checks.
  returned: when state is present
  type: dict
  sample:
    type: http
    port: 8080
    host_port: 8080
    host_ip: 127.0.0.1
    path: /health
    interval_seconds: 5
    timeout_seconds: 5
    retries: 6
    start_period_seconds: 60
restart_required:
  description:
    - True when the unit or the environment file changed, so a running workload must be restarted to apply the config.
  returned: always
  type: bool
  sample: true
unit_state:
  description:
    - State of the unit before any restart, from C(systemctl show). Values are empty where systemd is not running.
    - C(n_restarts) counts the automatic restarts since the last start that an operator or Ansible requested.
  returned: when state is present
  type: dict
  sample: {load_state: loaded, active_state: failed, sub_state: failed, result: exit-code, n_restarts: 5}
pulled:
  description: True when the module pulled the image because it was missing.
  returned: when state is present
  type: bool
  sample: false
unit_path:
  description: Path of the unit file.
  returned: always
  type: str
  sample: /etc/systemd/system/mlinfra-workload-llm-serve.service
env_file:
  description: Path of the environment file.
  returned: always
  type: str
  sample: /etc/mlinfra/workloads/llm-serve.env
record_path:
  description: Path of the admission record.
  returned: always
  type: str
  sample: /etc/mlinfra/workloads/llm-serve.json
errors:
  description: Every reason the config was rejected, one sentence each.
  returned: on rejection
  type: list
  elements: str
  sample:
    - "workload 'llm-serve': gpus.indices: GPU 0 (GPU-5f0e3a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b) is already owned by
      workload 'chat'. Fix: choose a free GPU (free: 1), or remove 'chat' first."
"""

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (  # noqa: E402
    NAME_RE,
    LaunchConfigRejected,
    parse_size_mib,
    validate_launch_config,
)
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_admission import (  # noqa: E402
    HostResources,
    admit,
)
from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config_render import (  # noqa: E402
    RenderOptions,
    container_name,
    env_file_path,
    record_path,
    render_env_file,
    render_record,
    render_unit,
    unit_name,
)

RECORD_FILE_RE = re.compile(r"^(?P<name>[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)\.json$")


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path: str, content: str, mode: int) -> None:
    """Write a file through a temporary file in the same directory and a rename.

    The temporary file is created with mode 0600, so an environment file is
    never readable by others, not even for a moment.
    """
    directory = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_records(state_dir: str) -> tuple[dict[str, dict], dict[str, str]]:
    """Load every admission record; a record that does not parse is kept as None."""
    records: dict[str, dict] = {}
    paths: dict[str, str] = {}
    if not os.path.isdir(state_dir):
        return records, paths
    for entry in sorted(os.listdir(state_dir)):
        match = RECORD_FILE_RE.match(entry)
        if not match:
            continue
        path = os.path.join(state_dir, entry)
        try:
            with open(path, encoding="utf-8") as handle:
                records[match.group("name")] = json.load(handle)
        except (OSError, ValueError):
            records[match.group("name")] = None
        paths[match.group("name")] = path
    return records, paths


def host_memory_mib() -> int:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def parse_slice_limits(module: AnsibleModule) -> dict:
    limits = {}
    for role, values in (module.params["slice_limits"] or {}).items():
        if role not in ("training", "inference") or not isinstance(values, dict):
            module.fail_json(
                msg=f"slice_limits: invalid entry {role!r}. "
                "Fix: key the limits by role (training, inference), each a mapping {memory, cpus}."
            )
        entry = {"memory_mib": None, "cpus": None}
        if values.get("memory") is not None:
            entry["memory_mib"] = parse_size_mib(values["memory"])
            if entry["memory_mib"] is None:
                module.fail_json(
                    msg=f"slice_limits.{role}.memory: invalid size {values['memory']!r}. "
                    "Fix: write it with its unit, for example 8GiB."
                )
        cpus = values.get("cpus")
        if cpus is not None:
            if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
                module.fail_json(
                    msg=f"slice_limits.{role}.cpus: invalid value {cpus!r}. Fix: give a positive number of CPUs."
                )
            entry["cpus"] = float(cpus)
        limits[role] = entry
    return limits


def runtime_command(module: AnsibleModule, runtime: str, runtime_path: str | None) -> str:
    if runtime_path:
        return runtime_path
    return module.get_bin_path(runtime, required=True)


def ensure_image(module: AnsibleModule, runtime_binary: str, runtime: str, image: str) -> bool:
    """Pull the image unless it is present; return True when it was pulled."""
    if runtime == "docker":
        present_command = [runtime_binary, "image", "inspect", "--format=.", image]
    else:
        present_command = [runtime_binary, "image", "exists", image]
    rc, _, _ = module.run_command(present_command)
    if rc == 0:
        return False
    rc, stdout, stderr = module.run_command([runtime_binary, "pull", image])
    if rc != 0:
        module.fail_json(
            msg=f"pulling image {image} failed with exit code {rc}: {stderr.strip() or stdout.strip()}. "
            "Fix: check that the registry is reachable from this host and that the digest exists. Nothing was written.",
            image=image,
        )
    return True


UNIT_STATE_PROPERTIES = ("LoadState", "ActiveState", "SubState", "Result", "NRestarts")


def read_unit_state(module: AnsibleModule, unit: str) -> dict:
    """Read the unit's state from systemd; every value is empty where systemd is not running."""
    state = {"load_state": "", "active_state": "", "sub_state": "", "result": "", "n_restarts": 0}
    systemctl = module.get_bin_path("systemctl")
    if not systemctl or not os.path.isdir("/run/systemd/system"):
        return state
    rc, stdout, _ = module.run_command([systemctl, "show", "--property=" + ",".join(UNIT_STATE_PROPERTIES), unit])
    if rc != 0:
        return state
    values = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    state["load_state"] = values.get("LoadState", "")
    state["active_state"] = values.get("ActiveState", "")
    state["sub_state"] = values.get("SubState", "")
    state["result"] = values.get("Result", "")
    state["n_restarts"] = int(values["NRestarts"]) if values.get("NRestarts", "").isdigit() else 0
    return state


def file_diff(path: str, before: str | None, after: str | None) -> dict:
    return {
        "before_header": path if before is not None else "/dev/null",
        "after_header": path if after is not None else "/dev/null",
        "before": before or "",
        "after": after or "",
    }


def present(module: AnsibleModule) -> None:
    params = module.params
    state_dir = params["state_dir"]
    try:
        config, warnings = validate_launch_config(params["config"], allow_image_tags=params["allow_image_tags"])
    except LaunchConfigRejected as exc:
        module.fail_json(msg=str(exc), errors=[str(error) for error in exc.errors])
    for warning in warnings:
        module.warn(warning)

    reserve = parse_size_mib(params["memory_reserve"])
    if reserve is None:
        module.fail_json(
            msg=f"memory_reserve: invalid size {params['memory_reserve']!r}. "
            "Fix: write it with its unit, for example 2GiB."
        )
    facts = params["gpu_facts"] or {}
    host = HostResources(
        gpus=tuple(
            gpu for gpu in facts.get("gpus") or [] if isinstance(gpu, dict) and isinstance(gpu.get("index"), int)
        ),
        gpu_state=str(facts.get("state", "ok" if facts.get("gpus") else "missing (no gpu_facts given)")),
        memory_mib=params["host_memory_mib"] or host_memory_mib(),
        cpu_count=params["host_cpus"] or os.cpu_count() or 0,
        memory_reserve_mib=reserve,
        slice_limits=parse_slice_limits(module),
    )

    name = config["name"]
    records, paths = read_records(state_dir)
    own_record = records.get(name)
    if name in records and not isinstance(own_record, dict):
        module.warn(
            f"workload '{name}': its record {paths[name]} is damaged; it is rewritten and the previous image is lost"
        )
        records.pop(name)
        own_record = None
    try:
        allocation = admit(config, host, records, path_exists=os.path.exists)
    except LaunchConfigRejected as exc:
        module.fail_json(msg=str(exc), errors=[str(error) for error in exc.errors])

    options = RenderOptions(
        state_dir=state_dir,
        runtime_path=params["runtime_path"] or "",
        cgroup_parent=params["cgroup_parent"],
        gpu_access=params["gpu_access"],
        pull_timeout_seconds=params["pull_timeout_seconds"],
        start_allowance_seconds=params["start_allowance_seconds"],
    )
    unit_path = os.path.join(params["unit_dir"], unit_name(name))
    env_path = env_file_path(name, options)
    own_record_path = record_path(name, state_dir)
    files = [
        (env_path, render_env_file(config, allocation), 0o600),
        (unit_path, render_unit(config, allocation, options), 0o644),
        # The record goes last: it is what tells the next admission who owns what.
        (own_record_path, render_record(config, allocation, own_record), 0o644),
    ]
    changed_files = [(path, content, mode) for path, content, mode in files if read_text(path) != content]
    restart_required = any(path in (unit_path, env_path) for path, _, _ in changed_files)

    result = {
        "changed": bool(changed_files),
        "name": name,
        "role": config["role"],
        "unit": unit_name(name),
        "container": container_name(name),
        "image": config["image"],
        "previous_image": json.loads(files[2][1])["previous_image"],
        "gpus": allocation["gpus"],
        "health_check": config["health_check"],
        "restart_required": restart_required,
        "pulled": False,
        "unit_path": unit_path,
        "env_file": env_path,
        "record_path": own_record_path,
        "unit_state": read_unit_state(module, unit_name(name)),
    }
    if module._diff:
        # The environment file contains no secret values (secrets are mounted files), so its diff may be shown.
        result["diff"] = [file_diff(path, read_text(path), content) for path, content, _ in changed_files]
    if module.check_mode:
        module.exit_json(**result)

    if params["pull"]:
        runtime_binary = runtime_command(module, config["runtime"], params["runtime_path"])
        result["pulled"] = ensure_image(module, runtime_binary, config["runtime"], config["image"])
        result["changed"] = result["changed"] or result["pulled"]

    for directory in {os.path.dirname(path) for path, _, _ in changed_files}:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    for path, content, mode in changed_files:
        write_atomic(path, content, mode)
    module.exit_json(**result)


def absent(module: AnsibleModule) -> None:
    params = module.params
    name = params["name"] or (params["config"] or {}).get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        module.fail_json(
            msg=f"name: invalid or missing workload name {name!r}. Fix: give the name of the workload to remove."
        )
    state_dir = params["state_dir"]
    unit = unit_name(name)
    unit_path = os.path.join(params["unit_dir"], unit)
    paths = [unit_path, env_file_path(name, RenderOptions(state_dir=state_dir)), record_path(name, state_dir)]
    existing = {path: read_text(path) for path in paths if os.path.exists(path)}
    record = {}
    if existing.get(paths[2]):
        try:
            record = json.loads(existing[paths[2]])
        except ValueError:
            record = {}

    result = {
        "changed": bool(existing),
        "name": name,
        "unit": unit,
        "container": container_name(name),
        "restart_required": False,
        "unit_path": paths[0],
        "env_file": paths[1],
        "record_path": paths[2],
    }
    if module._diff:
        result["diff"] = [file_diff(path, content, None) for path, content in existing.items()]
    if module.check_mode or not existing:
        module.exit_json(**result)

    systemd_running = os.path.isdir("/run/systemd/system")
    if systemd_running and unit_path in existing:
        systemctl = module.get_bin_path("systemctl", required=True)
        # Stopping runs the unit's ExecStop (<runtime> stop --time N), so the workload gets its stop grace.
        rc, _, stderr = module.run_command([systemctl, "disable", "--now", unit])
        if rc != 0:
            module.fail_json(
                msg=f"stopping {unit} failed with exit code {rc}: {stderr.strip()}. Nothing was removed.", **result
            )
    elif not systemd_running:
        module.warn(f"systemd is not running on this host, so {unit} was not stopped; only its files are removed")

    runtime = record.get("runtime", "docker") if record.get("runtime") in ("docker", "podman") else "docker"
    runtime_binary = params["runtime_path"] or module.get_bin_path(runtime)
    if runtime_binary:
        # The unit's container runs with --rm; this removes one left by a crashed runtime.
        module.run_command([runtime_binary, "rm", "--force", container_name(name)])

    for path in existing:
        os.unlink(path)
    if systemd_running and unit_path in existing:
        module.run_command([systemctl, "daemon-reload"], check_rc=True)
        module.run_command([systemctl, "reset-failed", unit])
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "name": {"type": "str"},
            "config": {"type": "dict"},
            "gpu_facts": {"type": "dict", "default": {}},
            "host_memory_mib": {"type": "int"},
            "host_cpus": {"type": "int"},
            "memory_reserve": {"type": "str", "default": "2GiB"},
            "slice_limits": {"type": "dict", "default": {}},
            "allow_image_tags": {"type": "bool", "default": False},
            "gpu_access": {
                "type": "str",
                "choices": ["docker-gpus", "nvidia-runtime", "cdi", "environment"],
                "default": "docker-gpus",
            },
            "cgroup_parent": {"type": "str", "default": ""},
            "runtime_path": {"type": "path"},
            "state_dir": {"type": "path", "default": "/etc/mlinfra/workloads"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "pull": {"type": "bool", "default": True},
            "pull_timeout_seconds": {"type": "int", "default": 900},
            "start_allowance_seconds": {"type": "int", "default": 30},
        },
        required_if=[("state", "present", ("config",))],
        supports_check_mode=True,
    )
    if module.params["state"] == "present":
        present(module)
    else:
        absent(module)


if __name__ == "__main__":
    main()
