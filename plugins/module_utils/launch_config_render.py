# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render an admitted launch config into a systemd unit, an environment file and a record.

All functions are pure and deterministic: the same normalized config,
allocation and options give byte-for-byte the same text, which is what lets
the module report "changed" only when content changed.

Choices every rendered unit makes, and why:

* The image is pulled in ExecStartPre only when it is missing, and
  TimeoutStartSec covers that pull, so a cold host does not time out the start.
  The module pulls before it writes the unit, so normally the image is there.
* The unit orders itself after the runtime and network-online.target.
* The unit stops the container with ``<runtime> stop --time N``, which sends the
  configured stop signal to the container's PID 1 and waits N seconds before
  SIGKILL. TimeoutStopSec is N plus a margin, so systemd never kills the
  client first and leaves the container running.
* With docker, limits set on the unit bind only the docker client, because the
  daemon creates the container's cgroup. The container is therefore placed in
  the role's slice with ``--cgroup-parent``, and carries its own memory and CPU
  limits. Podman's ``--cgroups=split`` keeps the container inside the unit's
  own cgroup, which is in the slice already.
* The workload's output reaches the journal once, through the attached
  client, under the unit and its log tag (``journalctl -t <log_tag>``).
  ``docker logs`` therefore shows nothing.
* Restarts back off exponentially, and the start limit is computed so that
  ``max_restarts`` quick failures always fall inside StartLimitIntervalSec,
  which is what really stops a crash loop (see start_limit()).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from ansible_collections.mlinfra.platform.plugins.module_utils.launch_config import (
    format_size_mib,
    minimum_start_limit_window,
)

GPU_ACCESS_MODES = ("docker-gpus", "nvidia-runtime", "cdi", "environment")
# The margin systemd waits beyond the runtime's own stop grace before it kills the client.
STOP_TIMEOUT_MARGIN_SECONDS = 30
HEADER = "# Managed by mlinfra.platform.launch_config; edit the launch config, not this file.\n"
SAFE_WORD_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


@dataclass(frozen=True)
class RenderOptions:
    """Host-specific settings that shape a unit but are not part of the launch config."""

    state_dir: str = "/etc/mlinfra/workloads"
    # Absolute path of the runtime binary; empty means /usr/bin/<runtime>.
    runtime_path: str = ""
    # Docker's --cgroup-parent. With docker's cgroupfs driver this is the slice's
    # cgroup path (systemctl show -P ControlGroup); with the systemd driver, the
    # slice name. Empty means "/mlinfra.slice/mlinfra-<role>.slice".
    cgroup_parent: str = ""
    gpu_access: str = "docker-gpus"
    # Time a cold pull of the image may take inside ExecStartPre.
    pull_timeout_seconds: int = 900
    # Estimate of how long one failing attempt lives (container start plus run
    # until the crash). It pads the start limit window; see start_limit().
    start_allowance_seconds: int = 30


def unit_name(name: str) -> str:
    return f"mlinfra-workload-{name}.service"


def slice_name(role: str) -> str:
    return f"mlinfra-{role}.slice"


def container_name(name: str) -> str:
    return f"mlinfra-{name}"


def env_file_path(name: str, options: RenderOptions) -> str:
    return f"{options.state_dir.rstrip('/')}/{name}.env"


def record_path(name: str, state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{name}.json"


def default_cgroup_parent(role: str) -> str:
    """Return the slice's cgroup path when systemd manages the whole cgroup tree."""
    return f"/mlinfra.slice/{slice_name(role)}"


def systemd_quote(word: str) -> str:
    """Quote one command-line word for an Exec*= line of a systemd unit.

    systemd expands ``%`` specifiers and ``$VAR`` references and processes C
    escapes, so ``%`` and ``$`` are doubled and anything beyond plain
    characters is wrapped in double quotes with backslashes and quotes escaped.
    """
    escaped = word.replace("%", "%%").replace("$", "$$")
    if word and word != ";" and SAFE_WORD_RE.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(words: list[str]) -> str:
    return " ".join(systemd_quote(word) for word in words)


def start_limit(restart: dict, allowance_seconds: int) -> tuple[int, int]:
    """Return (StartLimitBurst, StartLimitIntervalSec) for a restart policy.

    Without an explicit window, each of the max_restarts + 1 attempts is
    granted ``allowance_seconds`` of run time on top of the backoff gaps. A
    workload that runs longer than that before each crash is not caught by the
    limit, but it keeps backing off up to max_delay_seconds between attempts.
    """
    burst = restart["max_restarts"] + 1
    if restart.get("window_seconds"):
        return burst, restart["window_seconds"]
    return burst, minimum_start_limit_window(restart) + burst * allowance_seconds


def _backoff_script(name: str, restart: dict) -> str:
    """Return the shell script that sleeps the extra backoff before a restart.

    systemd 252 (Debian 12) has only a fixed RestartSec; RestartSteps= came in
    systemd 254. The script reads the unit's NRestarts and sleeps the rest of
    gap k = delay * 2^(k-1) (capped) beyond the RestartSec already waited.
    systemd resets NRestarts on a start that an operator or Ansible requests.
    """
    base = restart["delay_seconds"]
    cap = restart["max_delay_seconds"]
    return (
        f"restarts=$(systemctl show --property=NRestarts --value {unit_name(name)}); "
        f"delay={base}; "
        f'while [ "$restarts" -gt 1 ] 2>/dev/null && [ "$delay" -lt {cap} ]; do '
        "delay=$((delay * 2)); restarts=$((restarts - 1)); done; "
        f'[ "$delay" -gt {cap} ] && delay={cap}; '
        f"exec sleep $((delay - {base}))"
    )


def gpu_visible_devices(allocation: dict) -> str:
    """Return NVIDIA_VISIBLE_DEVICES for an allocation: UUIDs, else indices, else "void".

    "void" makes the NVIDIA runtime hand out no GPU even when the image sets
    NVIDIA_VISIBLE_DEVICES=all, as CUDA base images do.
    """
    gpus = allocation.get("gpus", [])
    if not gpus:
        return "void"
    return ",".join(gpu["uuid"] or str(gpu["index"]) for gpu in gpus)


def render_env_file(config: dict, allocation: dict) -> str:
    """Render the --env-file content: one NAME=value per line, values verbatim.

    docker and podman read this format literally (no quoting, no expansion),
    which is why validation rejects line breaks in values.
    """
    lines = [HEADER.rstrip("\n")]
    environment = dict(config["environment"])
    environment["NVIDIA_VISIBLE_DEVICES"] = gpu_visible_devices(allocation)
    for key in sorted(environment):
        lines.append(f"{key}={environment[key]}")
    return "\n".join(lines) + "\n"


def _run_arguments(config: dict, allocation: dict, options: RenderOptions) -> list[str]:
    name = config["name"]
    runtime = config["runtime"]
    words = ["run", "--rm", f"--name={container_name(name)}"]
    if runtime == "docker":
        words.append(f"--cgroup-parent={options.cgroup_parent or default_cgroup_parent(config['role'])}")
    else:
        # NOTE: tests check the podman unit with systemd-analyze verify only; it has not run a container yet.
        words += ["--replace", "--cgroups=split", "--sdnotify=conmon"]

    memory = config["memory_mib"]
    words += [
        f"--cpus={config['cpus']:g}",
        f"--memory={memory}m",
        # Equal to --memory: no swap beyond the limit.
        f"--memory-swap={memory}m",
        f"--shm-size={config['shm_size_mib']}m",
        f"--env-file={env_file_path(name, options)}",
        f"--stop-signal={config['stop_signal']}",
        f"--stop-timeout={config['stop_timeout_seconds']}",
        f"--label=dev.mlinfra.workload={name}",
        f"--label=dev.mlinfra.role={config['role']}",
        f"--label=dev.mlinfra.gpus={gpu_visible_devices(allocation)}",
        # The attached client streams the container's output into the unit's journal
        # under SyslogIdentifier=<log_tag>. A log driver would store a second copy.
        "--log-driver=none",
    ]
    if config["init"]:
        words.append("--init")

    gpus = allocation.get("gpus", [])
    if gpus:
        if options.gpu_access == "docker-gpus":
            words.append(f'--gpus="device={gpu_visible_devices(allocation)}"')
        elif options.gpu_access == "nvidia-runtime":
            words.append("--runtime=nvidia")
        elif options.gpu_access == "cdi":
            words += [f"--device=nvidia.com/gpu={gpu['uuid'] or gpu['index']}" for gpu in gpus]

    for mount in config["mounts"]:
        suffix = ",readonly" if mount["read_only"] else ""
        words.append(f"--mount=type=bind,source={mount['source']},target={mount['target']}{suffix}")
    for secret in config["secrets"]:
        words.append(f"--mount=type=bind,source={secret['source']},target={secret['target']},readonly")
    for port in config["ports"]:
        words.append(f"--publish={port['host_ip']}:{port['host_port']}:{port['container_port']}/{port['protocol']}")

    check = config["health_check"]
    if check["type"] == "command":
        words += [
            f"--health-cmd={shlex.join(check['command'])}",
            f"--health-interval={check['interval_seconds']}s",
            f"--health-timeout={check['timeout_seconds']}s",
            f"--health-retries={check['retries']}",
            f"--health-start-period={check['start_period_seconds']}s",
        ]

    command = list(config["command"])
    if command:
        words.append(f"--entrypoint={command.pop(0)}")
    words.append(config["image"])
    words += command + list(config["args"])
    return words


def render_unit(config: dict, allocation: dict, options: RenderOptions) -> str:
    """Render the systemd service unit of an admitted workload."""
    name = config["name"]
    runtime = config["runtime"]
    runtime_path = options.runtime_path or f"/usr/bin/{runtime}"
    restart = config["restart"]
    container = container_name(name)
    image = config["image"]

    unit = [
        "[Unit]",
        f"Description=mlinfra {config['role']} workload {name}",
    ]
    if runtime == "docker":
        unit += ["After=docker.service network-online.target", "Requires=docker.service"]
    else:
        unit += ["After=network-online.target"]
    unit.append("Wants=network-online.target")
    if restart["policy"] != "no":
        burst, interval = start_limit(restart, options.start_allowance_seconds)
        unit += [f"StartLimitIntervalSec={interval}", f"StartLimitBurst={burst}"]

    if runtime == "docker":
        image_present = f"{runtime_path} image inspect --format=. {image} >/dev/null 2>&1"
    else:
        image_present = f"{runtime_path} image exists {image}"
    pull_script = f"{image_present} || exec {runtime_path} pull {image}"

    service = [
        "[Service]",
        "Type=notify" if runtime == "podman" else "Type=exec",
    ]
    if runtime == "podman":
        service.append("NotifyAccess=all")
    service += [
        f"Slice={slice_name(config['role'])}",
        f"SyslogIdentifier={config['log_tag']}",
        f"TimeoutStartSec={options.pull_timeout_seconds + restart['max_delay_seconds'] + 30}",
        "ExecStartPre=-" + exec_line([runtime_path, "rm", "--force", container]),
    ]
    if restart["policy"] != "no":
        service.append("ExecStartPre=" + exec_line(["/bin/sh", "-c", _backoff_script(name, restart)]))
    service += [
        "ExecStartPre=" + exec_line(["/bin/sh", "-c", pull_script]),
        "ExecStart=" + exec_line([runtime_path, *_run_arguments(config, allocation, options)]),
        "ExecStop=" + exec_line([runtime_path, "stop", f"--time={config['stop_timeout_seconds']}", container]),
        f"TimeoutStopSec={config['stop_timeout_seconds'] + STOP_TIMEOUT_MARGIN_SECONDS}",
        f"Restart={restart['policy']}",
    ]
    if restart["policy"] != "no":
        service.append(f"RestartSec={restart['delay_seconds']}")

    install = ["[Install]", "WantedBy=multi-user.target"]
    return HEADER + "\n".join(unit) + "\n\n" + "\n".join(service) + "\n\n" + "\n".join(install) + "\n"


def render_record(config: dict, allocation: dict, old_record: dict | None) -> str:
    """Render the admission record: who owns which GPUs, memory and ports, and the previous image.

    The previous image is the one this workload ran before its image last
    changed, so a rollback needs nothing but this file.
    """
    previous_image = ""
    if old_record:
        if old_record.get("image") and old_record["image"] != config["image"]:
            previous_image = old_record["image"]
        else:
            previous_image = old_record.get("previous_image", "")
    record = {
        "name": config["name"],
        "role": config["role"],
        "image": config["image"],
        "previous_image": previous_image,
        "gpus": allocation.get("gpus", []),
        "memory_mib": config["memory_mib"],
        "memory": format_size_mib(config["memory_mib"]),
        "cpus": config["cpus"],
        "ports": [{"host_port": port["host_port"], "protocol": port["protocol"]} for port in config["ports"]],
        "health_check": config["health_check"],
        "runtime": config["runtime"],
        "unit": unit_name(config["name"]),
        "container": container_name(config["name"]),
    }
    return json.dumps(record, indent=2, sort_keys=True) + "\n"
