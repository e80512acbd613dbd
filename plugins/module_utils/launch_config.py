# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch config schema: validation and normalization.

A launch config declares everything a workload container runs with. This
file turns the declared mapping into a normalized one (every key present,
sizes in MiB, durations in seconds) or a list of errors. Each error names the
workload, the field, the offending value and the fix. Nothing here touches the
host, so the same code runs in unit tests, on the controller and inside the
``launch_config`` module.

The schema is documented in docs/launch-config.md and in the module's
DOCUMENTATION.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ROLES = ("training", "inference")
RUNTIMES = ("docker", "podman")
RESTART_POLICIES = ("on-failure", "always", "no")
HEALTH_CHECK_TYPES = ("http", "tcp", "command", "none")
PROTOCOLS = ("tcp", "udp")

TOP_LEVEL_FIELDS = (
    "name",
    "role",
    "image",
    "command",
    "args",
    "environment",
    "secrets",
    "gpus",
    "cpus",
    "memory",
    "shm_size",
    "mounts",
    "ports",
    "health_check",
    "stop_signal",
    "stop_timeout_seconds",
    "restart",
    "runtime",
    "init",
    "log_tag",
)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOG_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SIZE_RE = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>MiB|GiB|TiB)$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# A reference's path components and tag, as the OCI distribution spec defines them.
REPOSITORY_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REGISTRY_HOST_RE = re.compile(r"^(?:localhost|[A-Za-z0-9.-]*[.:][A-Za-z0-9.:-]*|\[[0-9a-fA-F:]+\](?::[0-9]+)?)$")
SECRET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
# Characters that break docker's --mount syntax (, and :) or systemd's unit parsing.
UNSAFE_PATH_CHARACTERS = (",", ":", '"', "'", "\\", "%", "$", "\n", "\t", "\0")

# Environment names that look like credentials. Their values would land in
# the environment file and in `docker inspect`, so they belong under secrets.
SENSITIVE_ENV_NAME_RE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE)
# Variables the platform sets from the admitted GPUs, so a config must not override them.
RESERVED_ENV_NAMES = frozenset({"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"})

SIGNALS = frozenset(
    {
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGKILL",
        "SIGUSR1",
        "SIGUSR2",
        "SIGTERM",
        "SIGWINCH",
        "SIGPWR",
        "SIGRTMIN+3",
    }
)

# Docker's own default for /dev/shm.
DEFAULT_SHM_SIZE_MIB = 64
DEFAULT_STOP_TIMEOUT_SECONDS = 30
# docker stop and systemd accept any value, but an hour is far beyond any checkpoint write we plan for.
MAX_STOP_TIMEOUT_SECONDS = 3600
DEFAULT_RESTART = {"policy": "on-failure", "delay_seconds": 5, "max_delay_seconds": 60, "max_restarts": 5}
DEFAULT_HEALTH_CHECK = {
    "interval_seconds": 10,
    "timeout_seconds": 5,
    "retries": 3,
    "start_period_seconds": 0,
}


@dataclass(frozen=True)
class ConfigError:
    """One reason a launch config is rejected."""

    workload: str
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"workload '{self.workload}': {self.field}: {self.problem}. Fix: {self.fix}."


class LaunchConfigRejected(Exception):
    """Rejection of a launch config by validation or admission, with every reason in ``errors``."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__(" ".join(str(error) for error in self.errors))


def parse_size_mib(value: Any) -> int | None:
    """Parse a size such as ``512MiB`` or ``16GiB`` into whole MiB, or return None when it is invalid."""
    if not isinstance(value, str):
        return None
    match = SIZE_RE.match(value.strip())
    if not match:
        return None
    scale = {"MiB": 1, "GiB": 1024, "TiB": 1024 * 1024}[match.group("unit")]
    mib = float(match.group("number")) * scale
    if mib != int(mib) or mib <= 0:
        return None
    return int(mib)


def format_size_mib(mib: int) -> str:
    """Format MiB the way configs write them: ``16GiB`` when exact, else ``1536MiB``."""
    if mib % 1024 == 0 and mib:
        return f"{mib // 1024}GiB"
    return f"{mib}MiB"


def split_image_reference(image: str) -> dict[str, str] | None:
    """Split ``registry/repo[:tag][@sha256:hex]`` into its parts, or return None when it is malformed.

    The first path component is a registry only when it contains a dot or a
    colon or is ``localhost``, which is the rule docker and podman apply too.
    """
    if not isinstance(image, str) or not image or image != image.strip():
        return None
    digest = ""
    remainder = image
    if "@" in image:
        remainder, digest = image.split("@", 1)
        if not DIGEST_RE.match(digest):
            return None
    tag = ""
    last_slash = remainder.rfind("/")
    last_colon = remainder.rfind(":")
    if last_colon > last_slash:
        remainder, tag = remainder[:last_colon], remainder[last_colon + 1 :]
        if not TAG_RE.match(tag):
            return None
    components = remainder.split("/")
    registry = ""
    if len(components) > 1 and REGISTRY_HOST_RE.match(components[0]):
        registry = components.pop(0)
    if not components or not all(REPOSITORY_COMPONENT_RE.match(part) for part in components):
        return None
    return {"registry": registry, "repository": "/".join(components), "tag": tag, "digest": digest}


def backoff_delays(restart: dict) -> list[int]:
    """Return the gap in seconds before each automatic restart, 1 to max_restarts.

    Gap k is delay_seconds * 2^(k-1), capped at max_delay_seconds.
    """
    delays = []
    for attempt in range(1, restart["max_restarts"] + 1):
        delays.append(min(restart["delay_seconds"] * 2 ** (attempt - 1), restart["max_delay_seconds"]))
    return delays


def minimum_start_limit_window(restart: dict) -> int:
    """Return the shortest StartLimitIntervalSec that can stop a crash loop at all.

    systemd checks the start limit when a start job runs, before ExecStartPre.
    With StartLimitBurst = max_restarts + 1, the start that must be refused is
    the (max_restarts + 2)-th. Even a workload that crashes instantly reaches
    it only after every backoff gap has passed, plus RestartSec once more. A
    shorter window forgets the first starts before the limit is reached, so
    the unit would restart forever.
    """
    return sum(backoff_delays(restart)) + restart["delay_seconds"]


class _Validator:
    """Collect the errors of one config while building its normalized form."""

    def __init__(self, config: dict, allow_image_tags: bool):
        self.raw = config
        self.allow_image_tags = allow_image_tags
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []
        self.ports_invalid = False
        name = config.get("name")
        self.workload = name if isinstance(name, str) and NAME_RE.match(name) else "<invalid name>"

    def error(self, field: str, problem: str, fix: str) -> None:
        self.errors.append(ConfigError(self.workload, field, problem, fix))

    # Scalars -------------------------------------------------------------

    def integer(self, field: str, value: Any, minimum: int, maximum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(
                field,
                f"invalid value {value!r}, expected an integer",
                f"set a whole number from {minimum} to {maximum}",
            )
            return None
        if not minimum <= value <= maximum:
            self.error(field, f"value {value} is out of range", f"set a whole number from {minimum} to {maximum}")
            return None
        return value

    def string_list(self, field: str, value: Any) -> list[str] | None:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.error(
                field,
                f"invalid value {value!r}, expected a list of strings",
                'write it as a YAML list, for example ["python", "-m", "serve"]',
            )
            return None
        for index, item in enumerate(value):
            if "\n" in item or "\0" in item:
                self.error(
                    f"{field}[{index}]",
                    "contains a line break or NUL character",
                    "remove it, because systemd unit lines cannot carry it",
                )
                return None
        return list(value)

    def absolute_path(self, field: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value.startswith("/"):
            self.error(field, f"invalid path {value!r}, expected an absolute path", "write a path that starts with /")
            return None
        forbidden = [char for char in UNSAFE_PATH_CHARACTERS if char in value]
        if forbidden:
            shown = ", ".join(repr(char) for char in forbidden)
            self.error(
                field,
                f"invalid path {value!r}: it contains {shown}",
                "choose a path without , : \" ' \\ % $ or control characters, "
                "which break the mount syntax or the unit file",
            )
            return None
        if ".." in value.split("/"):
            self.error(field, f"invalid path {value!r}: it contains '..'", "write the path without '..' components")
            return None
        return value.rstrip("/") or "/"

    # Fields --------------------------------------------------------------

    def validate(self) -> dict:
        config = self.raw
        unknown = sorted(set(config) - set(TOP_LEVEL_FIELDS))
        for field in unknown:
            self.error(
                field,
                "unknown field",
                f"remove it or correct the spelling; known fields are: {', '.join(TOP_LEVEL_FIELDS)}",
            )

        normalized: dict[str, Any] = {}
        normalized["name"] = self.name(config.get("name"))
        normalized["role"] = self.role(config.get("role"))
        normalized["image"] = self.image(config.get("image"))
        normalized["command"] = (
            self.string_list("command", config["command"]) if config.get("command") is not None else []
        )
        if normalized["command"] and not normalized["command"][0].strip():
            self.error(
                "command", "the first element (the executable) is empty", "start command with the program to run"
            )
        normalized["args"] = self.string_list("args", config["args"]) if config.get("args") is not None else []
        normalized["environment"] = self.environment(config.get("environment"))
        normalized["secrets"] = self.secrets(config.get("secrets"))
        normalized["gpus"] = self.gpus(config.get("gpus"))
        normalized["cpus"] = self.cpus(config.get("cpus"))
        normalized["memory_mib"] = self.size("memory", config.get("memory"), required=True)
        shm = config.get("shm_size")
        if shm is None:
            # Docker's default, shrunk for a workload whose whole memory limit is smaller.
            normalized["shm_size_mib"] = min(DEFAULT_SHM_SIZE_MIB, normalized["memory_mib"] or DEFAULT_SHM_SIZE_MIB)
        else:
            normalized["shm_size_mib"] = self.size("shm_size", shm, required=True)
        normalized["mounts"] = self.mounts(config.get("mounts"))
        normalized["ports"] = self.ports(config.get("ports"), normalized["role"])
        normalized["health_check"] = self.health_check(config.get("health_check"), normalized["ports"])
        normalized["stop_signal"] = self.stop_signal(config.get("stop_signal", "SIGTERM"))
        normalized["stop_timeout_seconds"] = self.integer(
            "stop_timeout_seconds",
            config.get("stop_timeout_seconds", DEFAULT_STOP_TIMEOUT_SECONDS),
            1,
            MAX_STOP_TIMEOUT_SECONDS,
        )
        normalized["restart"] = self.restart(config.get("restart"))
        normalized["runtime"] = self.choice("runtime", config.get("runtime", "docker"), RUNTIMES)
        normalized["init"] = self.boolean("init", config.get("init", False))
        normalized["log_tag"] = self.log_tag(config.get("log_tag"), normalized["name"])

        self.cross_checks(normalized)
        return normalized

    def name(self, value: Any) -> str | None:
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.error(
                "name",
                f"invalid or missing name {value!r}",
                "use 1 to 40 lowercase letters, digits and hyphens, starting and ending with a letter or digit",
            )
            return None
        return value

    def role(self, value: Any) -> str | None:
        if value not in ROLES:
            self.error("role", f"unknown role {value!r}", f"set role to one of: {', '.join(ROLES)}")
            return None
        return value

    def choice(self, field: str, value: Any, choices: tuple[str, ...]) -> str | None:
        if value not in choices:
            self.error(field, f"invalid value {value!r}", f"set {field} to one of: {', '.join(choices)}")
            return None
        return value

    def boolean(self, field: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.error(field, f"invalid value {value!r}, expected true or false", f"set {field} to true or false")
            return None
        return value

    def image(self, value: Any) -> str | None:
        example = "registry.example.com/team/model@sha256:<64 hex digits>"
        parts = split_image_reference(value) if isinstance(value, str) else None
        if parts is None:
            self.error("image", f"invalid image reference {value!r}", f"write it as {example}")
            return None
        if not parts["registry"]:
            self.error("image", f"image {value!r} names no registry", f"write the full reference, {example}")
            return None
        if not parts["digest"]:
            if not parts["tag"]:
                self.error("image", f"image {value!r} has neither a digest nor a tag", f"pin it by digest, {example}")
                return None
            if not self.allow_image_tags:
                self.error(
                    "image",
                    f"image {value!r} is pinned by tag, and this environment accepts digests only",
                    f"pin it by digest ({example}); `docker buildx imagetools inspect` prints the digest of a tag",
                )
                return None
            self.warnings.append(
                f"workload '{self.workload}': image {value!r} is pinned by tag, "
                "so a push to that tag changes what runs; pin it by digest before it leaves this environment"
            )
        return value

    def environment(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(
                "environment",
                f"invalid value of type {type(value).__name__}, expected a mapping",
                "write it as NAME: value pairs",
            )
            return {}
        environment = {}
        for key, item in value.items():
            field = f"environment.{key}"
            if not isinstance(key, str) or not ENV_NAME_RE.match(key):
                self.error(
                    "environment",
                    f"invalid variable name {key!r}",
                    "use letters, digits and underscores, not starting with a digit",
                )
                continue
            if key in RESERVED_ENV_NAMES:
                self.error(
                    field, "is set by the platform from the admitted GPUs", "remove it and declare the GPUs under gpus"
                )
                continue
            if SENSITIVE_ENV_NAME_RE.search(key):
                self.error(
                    field,
                    "looks like a credential, and environment values are visible "
                    "in the environment file and in `docker inspect`",
                    "declare it under secrets, which mounts it as a read-only file",
                )
                continue
            # Values are never echoed: a credential under an innocent name must not reach a log.
            if isinstance(item, bool):
                self.error(
                    field,
                    "is a YAML boolean, which docker would receive as True or False",
                    'quote the value, for example "true"',
                )
                continue
            if not isinstance(item, (str, int, float)):
                self.error(
                    field,
                    f"invalid value of type {type(item).__name__}, expected a string or a number",
                    "write a single string value",
                )
                continue
            text = str(item)
            if "\n" in text or "\0" in text:
                self.error(
                    field,
                    "value contains a line break or NUL character",
                    "remove it, because the environment file holds one variable per line",
                )
                continue
            environment[key] = text
        return dict(sorted(environment.items()))

    def secrets(self, value: Any) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                "secrets",
                f"invalid value of type {type(value).__name__}, expected a list",
                "write a list of {name, source} entries",
            )
            return []
        secrets = []
        names = set()
        for index, entry in enumerate(value):
            field = f"secrets[{index}]"
            if not isinstance(entry, dict):
                self.error(field, "invalid entry, expected a mapping", "write {name: ..., source: /path/on/host}")
                continue
            unknown = sorted(set(entry) - {"name", "source", "target"})
            if unknown:
                hint = " Secret values never go into a launch config" if "value" in unknown else ""
                self.error(f"{field}.{unknown[0]}", "unknown field", f"use only name, source and target.{hint}")
                continue
            name = entry.get("name")
            if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
                self.error(
                    f"{field}.name", f"invalid secret name {name!r}", "use lowercase letters, digits, '.', '_' and '-'"
                )
                continue
            if name in names:
                self.error(f"{field}.name", f"duplicate secret name {name!r}", "give each secret its own name")
                continue
            names.add(name)
            source = self.absolute_path(f"{field}.source", entry.get("source"))
            target = self.absolute_path(f"{field}.target", entry.get("target", f"/run/secrets/{name}"))
            if source and target:
                secrets.append({"name": name, "source": source, "target": target})
        return secrets

    def gpus(self, value: Any) -> dict:
        if value is None:
            return {"count": 0, "indices": []}
        if not isinstance(value, dict) or set(value) - {"count", "indices"} or len(value) != 1:
            self.error("gpus", f"invalid value {value!r}", "write exactly one of {count: N} or {indices: [0, 1]}")
            return {"count": 0, "indices": []}
        if "count" in value:
            count = self.integer("gpus.count", value["count"], 0, 64)
            return {"count": count or 0, "indices": []}
        indices = value["indices"]
        if (
            not isinstance(indices, list)
            or not indices
            or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices)
        ):
            self.error(
                "gpus.indices", f"invalid value {indices!r}", "write a non-empty list of GPU indices such as [0, 1]"
            )
            return {"count": 0, "indices": []}
        if len(set(indices)) != len(indices):
            self.error("gpus.indices", f"value {indices!r} lists a GPU twice", "list each GPU index once")
            return {"count": 0, "indices": []}
        return {"count": len(indices), "indices": sorted(indices)}

    def cpus(self, value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.error(
                "cpus",
                f"invalid or missing value {value!r}",
                "set the CPU limit as a positive number of CPUs, for example 4 or 0.5",
            )
            return None
        if round(value, 2) != value:
            self.error("cpus", f"value {value!r} has more than two decimals", "round it to a multiple of 0.01 CPU")
            return None
        return float(value)

    def size(self, field: str, value: Any, required: bool) -> int | None:
        if value is None and not required:
            return None
        mib = parse_size_mib(value)
        if mib is None:
            self.error(
                field,
                f"invalid or missing size {value!r}",
                "write a whole number of MiB with its unit, for example 512MiB or 16GiB",
            )
        return mib

    def mounts(self, value: Any) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                "mounts",
                f"invalid value of type {type(value).__name__}, expected a list",
                "write a list of {source, target, read_only} entries",
            )
            return []
        mounts = []
        for index, entry in enumerate(value):
            field = f"mounts[{index}]"
            if not isinstance(entry, dict):
                self.error(
                    field, "invalid entry, expected a mapping", "write {source: /host/path, target: /container/path}"
                )
                continue
            unknown = sorted(set(entry) - {"source", "target", "read_only"})
            if unknown:
                self.error(f"{field}.{unknown[0]}", "unknown field", "use only source, target and read_only")
                continue
            source = self.absolute_path(f"{field}.source", entry.get("source"))
            target = self.absolute_path(f"{field}.target", entry.get("target"))
            read_only = self.boolean(f"{field}.read_only", entry.get("read_only", True))
            if source and target and read_only is not None:
                if target == "/":
                    self.error(
                        f"{field}.target", "cannot mount over the container's root", "choose a directory below /"
                    )
                    continue
                mounts.append({"source": source, "target": target, "read_only": read_only})
        return mounts

    def ports(self, value: Any, role: str | None) -> list[dict]:
        if value is None or value == []:
            return []
        if role == "training":
            self.error("ports", "training workloads publish no ports", "remove ports, or set role: inference")
            return []
        if not isinstance(value, list):
            self.error(
                "ports",
                f"invalid value of type {type(value).__name__}, expected a list",
                "write a list of {container_port, host_port} entries",
            )
            return []
        ports = []
        errors_before = len(self.errors)
        for index, entry in enumerate(value):
            field = f"ports[{index}]"
            if not isinstance(entry, dict):
                self.error(field, "invalid entry, expected a mapping", "write {container_port: 8080, host_port: 8080}")
                continue
            unknown = sorted(set(entry) - {"container_port", "host_port", "host_ip", "protocol"})
            if unknown:
                self.error(
                    f"{field}.{unknown[0]}", "unknown field", "use only container_port, host_port, host_ip and protocol"
                )
                continue
            container_port = self.integer(f"{field}.container_port", entry.get("container_port"), 1, 65535)
            host_port = self.integer(f"{field}.host_port", entry.get("host_port", container_port), 1, 65535)
            host_ip = entry.get("host_ip", "127.0.0.1")
            if not isinstance(host_ip, str) or not re.match(r"^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$", host_ip):
                self.error(
                    f"{field}.host_ip",
                    f"invalid IPv4 address {host_ip!r}",
                    "use 127.0.0.1 (this host only) or 0.0.0.0 (every interface)",
                )
                continue
            protocol = self.choice(f"{field}.protocol", entry.get("protocol", "tcp"), PROTOCOLS)
            if container_port and host_port and protocol:
                ports.append(
                    {"container_port": container_port, "host_port": host_port, "host_ip": host_ip, "protocol": protocol}
                )
        self.ports_invalid = len(self.errors) > errors_before
        seen = set()
        for port in ports:
            key = (port["host_port"], port["protocol"])
            if key in seen:
                self.error(
                    "ports",
                    f"host port {port['host_port']}/{port['protocol']} is published twice",
                    "give each port its own host_port",
                )
            seen.add(key)
        return sorted(ports, key=lambda port: (port["host_port"], port["protocol"]))

    def health_check(self, value: Any, ports: list[dict]) -> dict:
        if value is None:
            return {"type": "none"}
        if not isinstance(value, dict):
            self.error(
                "health_check",
                f"invalid value of type {type(value).__name__}, expected a mapping",
                "write {type: http, port: 8080, path: /health}",
            )
            return {"type": "none"}
        check_type = self.choice("health_check.type", value.get("type"), HEALTH_CHECK_TYPES)
        if check_type is None or check_type == "none":
            return {"type": "none"}
        allowed = {
            "http": {"path", "port"},
            "tcp": {"port"},
            "command": {"command"},
        }[check_type] | {"type", "interval_seconds", "timeout_seconds", "retries", "start_period_seconds"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.error(
                f"health_check.{unknown[0]}",
                f"unknown field for a {check_type} check",
                f"use only: {', '.join(sorted(allowed))}",
            )
            return {"type": "none"}

        check: dict[str, Any] = {"type": check_type}
        for key, default in DEFAULT_HEALTH_CHECK.items():
            minimum = 0 if key == "start_period_seconds" else 1
            check[key] = self.integer(f"health_check.{key}", value.get(key, default), minimum, 3600)
        if "timeout_seconds" not in value and check["interval_seconds"]:
            # The default timeout shrinks with a short interval, so that a timeout never outlasts its interval.
            check["timeout_seconds"] = min(DEFAULT_HEALTH_CHECK["timeout_seconds"], check["interval_seconds"])
        if (
            check["timeout_seconds"]
            and check["interval_seconds"]
            and check["timeout_seconds"] > check["interval_seconds"]
        ):
            self.error(
                "health_check.timeout_seconds",
                f"timeout {check['timeout_seconds']}s is longer than the interval {check['interval_seconds']}s",
                "set timeout_seconds at most interval_seconds",
            )

        if check_type in ("http", "tcp"):
            port = self.integer("health_check.port", value.get("port"), 1, 65535)
            if port is not None and self.ports_invalid:
                # The ports list already has an error; a second one about it would only repeat it.
                check["port"] = port
            elif port is not None:
                published = [p for p in ports if p["container_port"] == port and p["protocol"] == "tcp"]
                if not published:
                    self.error(
                        "health_check.port",
                        f"container port {port} is not published under ports, so the host cannot reach it",
                        "publish it under ports, or use a command health check",
                    )
                else:
                    check["port"] = port
                    check["host_port"] = published[0]["host_port"]
                    check["host_ip"] = published[0]["host_ip"]
        if check_type == "http":
            path = value.get("path", "/")
            if not isinstance(path, str) or not re.match(r"^/[A-Za-z0-9._~/?=&%-]*$", path):
                self.error(
                    "health_check.path",
                    f"invalid HTTP path {path!r}",
                    "write a path that starts with /, for example /health",
                )
            else:
                check["path"] = path
        if check_type == "command":
            command = self.string_list("health_check.command", value.get("command"))
            if command is not None and not command:
                self.error(
                    "health_check.command",
                    "empty command",
                    "give the command that exits 0 when the workload is healthy",
                )
            elif command:
                check["command"] = command
        return check

    def stop_signal(self, value: Any) -> str | None:
        if isinstance(value, str) and not value.startswith("SIG"):
            value = "SIG" + value
        if value not in SIGNALS or value == "SIGKILL":
            self.error(
                "stop_signal",
                f"invalid stop signal {value!r}",
                f"use one of: {', '.join(sorted(SIGNALS - {'SIGKILL'}))}; "
                "SIGKILL gives the workload no chance to checkpoint",
            )
            return None
        return value

    def restart(self, value: Any) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.error(
                "restart",
                f"invalid value of type {type(value).__name__}, expected a mapping",
                "write {policy: on-failure, max_restarts: 5}",
            )
            return dict(DEFAULT_RESTART)
        allowed = set(DEFAULT_RESTART) | {"window_seconds"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.error(f"restart.{unknown[0]}", "unknown field", f"use only: {', '.join(sorted(allowed))}")
            return dict(DEFAULT_RESTART)
        restart: dict[str, Any] = {
            "policy": self.choice("restart.policy", value.get("policy", DEFAULT_RESTART["policy"]), RESTART_POLICIES)
        }
        restart["delay_seconds"] = self.integer(
            "restart.delay_seconds", value.get("delay_seconds", DEFAULT_RESTART["delay_seconds"]), 1, 3600
        )
        restart["max_delay_seconds"] = self.integer(
            "restart.max_delay_seconds",
            value.get("max_delay_seconds", max(DEFAULT_RESTART["max_delay_seconds"], restart["delay_seconds"] or 0)),
            1,
            3600,
        )
        restart["max_restarts"] = self.integer(
            "restart.max_restarts", value.get("max_restarts", DEFAULT_RESTART["max_restarts"]), 1, 100
        )
        if (
            restart["delay_seconds"]
            and restart["max_delay_seconds"]
            and restart["max_delay_seconds"] < restart["delay_seconds"]
        ):
            self.error(
                "restart.max_delay_seconds",
                f"value {restart['max_delay_seconds']} is below delay_seconds {restart['delay_seconds']}",
                "set max_delay_seconds at least delay_seconds",
            )
        window = value.get("window_seconds")
        restart["window_seconds"] = None if window is None else self.integer("restart.window_seconds", window, 1, 86400)
        if restart["window_seconds"] and all(
            restart[key] for key in ("delay_seconds", "max_delay_seconds", "max_restarts")
        ):
            minimum = minimum_start_limit_window(restart)
            if restart["window_seconds"] < minimum:
                self.error(
                    "restart.window_seconds",
                    f"window {restart['window_seconds']}s is shorter than the {minimum}s that "
                    f"{restart['max_restarts']} backed-off restarts take, "
                    "so the start limit could never stop a crash loop",
                    f"set window_seconds to at least {minimum}, or leave it out to have it computed",
                )
        return restart

    def log_tag(self, value: Any, name: str | None) -> str | None:
        if value is None:
            return name
        if not isinstance(value, str) or not LOG_TAG_RE.match(value):
            self.error("log_tag", f"invalid log tag {value!r}", "use up to 64 letters, digits, '.', '_' and '-'")
            return None
        return value

    def cross_checks(self, config: dict) -> None:
        if config["memory_mib"] and config["shm_size_mib"] and config["shm_size_mib"] > config["memory_mib"]:
            self.error(
                "shm_size",
                f"{format_size_mib(config['shm_size_mib'])} is more than "
                f"the memory limit {format_size_mib(config['memory_mib'])}",
                "lower shm_size, because /dev/shm pages count against the memory limit",
            )
        targets = [mount["target"] for mount in config["mounts"]] + [secret["target"] for secret in config["secrets"]]
        duplicates = sorted({target for target in targets if targets.count(target) > 1})
        for target in duplicates:
            self.error(
                "mounts", f"container path {target} is mounted twice", "give each mount and secret its own target"
            )
        if config["restart"]["policy"] == "no" and "window_seconds" in (self.raw.get("restart") or {}):
            self.error(
                "restart.window_seconds", "has no effect with policy no", "remove it, or choose policy on-failure"
            )


def validate_launch_config(config: Any, allow_image_tags: bool = False) -> tuple[dict, list[str]]:
    """Validate one launch config and return (normalized config, warnings).

    Raises LaunchConfigRejected listing every error found, so one run shows
    all of them. The normalized config has every field present, sizes in MiB
    (``memory_mib``, ``shm_size_mib``) and lists sorted, so equal configs
    render byte-for-byte equal files.
    """
    if not isinstance(config, dict):
        raise LaunchConfigRejected(
            [
                ConfigError(
                    "<invalid name>",
                    "config",
                    f"invalid value of type {type(config).__name__}, expected a mapping",
                    "declare each launch config as a mapping",
                )
            ]
        )
    validator = _Validator(config, allow_image_tags)
    normalized = validator.validate()
    if validator.errors:
        raise LaunchConfigRejected(validator.errors)
    return normalized, validator.warnings
