# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the ``mlinfra.platform.gcp_fleet`` inventory plugin.

They turn Compute API instances into host variables, host names and group
names, build the list filter, and compute retry delays. None of them does I/O,
so unit tests call them directly.

Instances arrive as raw protobuf ``Instance`` messages of google-cloud-compute
(``compute_v1.Instance.pb(message)``) and are read field by field, once.
Converting them to proto-plus objects or dicts first would cost more than the
listing itself on fleets of thousands of hosts.
"""

from __future__ import annotations

import ipaddress
import random
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog

# Fields of an aggregated instance list that the plugin reads, in the partial
# response syntax of the ``fields`` parameter and the X-Goog-FieldMask header.
# Asking only for these cuts the response and the client's JSON-to-protobuf
# parsing, the largest cost of a listing. In the benchmark's generated fleet
# the response shrinks to 40 %; metadata, which the plugin needs, is most of
# the rest, so fleets with less metadata gain more.
INSTANCE_FIELDS = (
    "id",
    "name",
    "zone",
    "machineType",
    "status",
    "labels",
    "metadata/items",
    "networkInterfaces(networkIP,accessConfigs/natIP)",
    "serviceAccounts/email",
    "scheduling(automaticRestart,onHostMaintenance,preemptible,provisioningModel)",
    "guestAccelerators(acceleratorType,acceleratorCount)",
)
FIELD_MASK = "nextPageToken,unreachables,items/*/warning/code,items/*/instances({})".format(",".join(INSTANCE_FIELDS))
# The same fields for instances.list of one zone.
LIST_FIELD_MASK = "nextPageToken,items({})".format(",".join(INSTANCE_FIELDS))

# Instance states of the Compute v1 API (the ``status`` field).
INSTANCE_STATUSES = frozenset(
    {
        "DEPROVISIONING",
        "PENDING",
        "PROVISIONING",
        "REPAIRING",
        "RUNNING",
        "STAGING",
        "STOPPED",
        "STOPPING",
        "SUSPENDED",
        "SUSPENDING",
        "TERMINATED",
    }
)

# Metadata keys whose values are replaced by REDACTED: keys that name a
# password, secret, token, credential or private/API/access key.
DEFAULT_REDACT_PATTERN = (
    r"(?i)(passw(or)?d|passphrase|secret|token|credential|private[-_]?key|api[-_]?key|access[-_]?key)"
)
REDACTED = "<redacted>"

HOSTNAME_SOURCES = ("name", "private_ip", "public_ip")
_LABEL_PREFIX = "labels."
_GROUP_NAME_INVALID = re.compile(r"[^A-Za-z0-9_]")


class InvalidOption(ValueError):
    """An inventory option with a value the plugin cannot use."""


def validate_hostnames(entries: Iterable[Any]) -> list[str]:
    """Check the ``hostnames`` option and return its entries as strings.

    Valid entries are ``name``, ``private_ip``, ``public_ip`` and
    ``labels.<key>``; anything else raises InvalidOption naming the entry.
    """
    result = []
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidOption(
                f"Invalid hostnames entry {entry!r}: expected a string such as 'name' or 'labels.<key>'."
            )
        is_label = entry.startswith(_LABEL_PREFIX) and len(entry) > len(_LABEL_PREFIX)
        if entry not in HOSTNAME_SOURCES and not is_label:
            raise InvalidOption(
                f"Invalid hostnames entry {entry!r}: use one of {', '.join(HOSTNAME_SOURCES)} or labels.<key>."
            )
        result.append(entry)
    if not result:
        raise InvalidOption(
            "The hostnames option is empty: list at least one of name, private_ip, public_ip or labels.<key>."
        )
    return result


def validate_statuses(statuses: Iterable[Any]) -> list[str]:
    """Check the ``statuses`` option; an empty list means every status."""
    result = []
    for status in statuses:
        value = str(status).upper()
        if value not in INSTANCE_STATUSES:
            known = ", ".join(sorted(INSTANCE_STATUSES))
            raise InvalidOption(f"Invalid statuses entry {status!r}: use instance states such as {known}.")
        result.append(value)
    return result


def build_filter(statuses: Iterable[str], filters: Iterable[str]) -> str:
    """Build the server-side list filter: the status choice AND every user filter.

    Each part is parenthesized, because the Compute API joins parenthesized
    expressions with AND and needs the parentheses to combine them.
    """
    parts = []
    statuses = list(statuses)
    if len(statuses) == 1:
        parts.append(f"(status = {statuses[0]})")
    elif statuses:
        parts.append("(" + " OR ".join(f"(status = {status})" for status in statuses) + ")")
    for entry in filters:
        expression = str(entry).strip()
        if expression:
            parts.append(expression if _is_parenthesized(expression) else f"({expression})")
    return " ".join(parts)


def _is_parenthesized(expression: str) -> bool:
    """Tell whether one pair of parentheses encloses the whole expression."""
    if not (expression.startswith("(") and expression.endswith(")")):
        return False
    depth = 0
    for index, char in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and index < len(expression) - 1:
            return False
    return True


def sanitize_group_name(name: str) -> str:
    """Replace every character outside [A-Za-z0-9_] with an underscore."""
    return _GROUP_NAME_INVALID.sub("_", name)


def flatten_metadata(items: Iterable[Any], redact: re.Pattern[str]) -> dict[str, str]:
    """Turn metadata items (objects with ``key`` and ``value``) into a dict, redacting secrets.

    Keys and values are interned, because most of them repeat on every
    instance of a pool (startup scripts are often the largest field).
    """
    result = {}
    for item in items:
        key = sys.intern(item.key)
        result[key] = REDACTED if redact.search(key) else sys.intern(item.value)
    return result


def _intern_optional(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def short_name(url_or_name: str) -> str:
    return sys.intern(url_or_name.rsplit("/", 1)[-1])


def instance_hostvars(instance: Any, project: str, redact: re.Pattern[str]) -> dict[str, Any]:
    """Build the ``gce_*`` host variables of one raw protobuf Instance."""
    zone = short_name(instance.zone)
    machine_type = short_name(instance.machine_type)
    # Protobuf returns a new str on every field access. Interning the fields
    # that repeat across instances keeps one copy of each value per listing.
    # Sorted, because the iteration order of a protobuf map changes from process to process.
    labels = {sys.intern(key): sys.intern(instance.labels[key]) for key in sorted(instance.labels)}

    private_ip = None
    public_ip = None
    if instance.network_interfaces:
        primary = instance.network_interfaces[0]
        private_ip = primary.network_i_p or None
        for access_config in primary.access_configs:
            if access_config.nat_i_p:
                public_ip = access_config.nat_i_p
                break

    service_account = None
    for account in instance.service_accounts:
        if account.email:
            service_account = sys.intern(account.email)
            break

    scheduling = instance.scheduling
    provisioning_model = sys.intern(scheduling.provisioning_model or "STANDARD")
    accelerators = [
        {"acceleratorType": accelerator.accelerator_type, "acceleratorCount": accelerator.accelerator_count}
        for accelerator in instance.guest_accelerators
    ]
    gpu_type, gpu_count = gpu_catalog.expected_gpus(machine_type, accelerators)
    model = gpu_catalog.gpu_model(gpu_type)

    return {
        "gce_name": instance.name,
        "gce_id": str(instance.id),
        "gce_project": project,
        "gce_zone": zone,
        "gce_region": sys.intern(zone.rsplit("-", 1)[0]),
        "gce_machine_type": machine_type,
        "gce_machine_family": _intern_optional(gpu_catalog.machine_family(machine_type)),
        "gce_status": sys.intern(instance.status),
        "gce_labels": labels,
        "gce_metadata": flatten_metadata(instance.metadata.items, redact),
        "gce_private_ip": private_ip,
        "gce_public_ip": public_ip,
        "gce_service_account": service_account,
        "gce_scheduling": {
            # Spot and legacy preemptible VMs can both be reclaimed at any time.
            "spot": provisioning_model == "SPOT" or scheduling.preemptible,
            "on_host_maintenance": _intern_optional(scheduling.on_host_maintenance or None),
            # The API's default for an unset automaticRestart is true.
            "automatic_restart": scheduling.automatic_restart if scheduling.HasField("automatic_restart") else True,
            "provisioning_model": provisioning_model,
        },
        "gce_gpu_type": _intern_optional(gpu_type),
        "gce_gpu_count": gpu_count,
        "gce_gpu_model": model.product_name if model else None,
        "gce_nvswitch": gpu_catalog.has_nvswitch(machine_type),
        "gce_env": labels.get("env"),
        "gce_pool": labels.get("pool"),
        "gce_role": labels.get("role"),
    }


# Host variables whose value differs on every instance. The others repeat
# across the hosts of a zone, pool or project.
UNIQUE_HOSTVARS = frozenset({"gce_name", "gce_id", "gce_private_ip", "gce_public_ip"})


class SharedValues:
    """Store of host variable values that lets many hosts share one copy of each.

    ansible-core 2.19 copies every str, int and dict it receives through
    ``set_variable`` into a new object tagged with the inventory source's
    origin, unless the value already carries an origin tag. Given that same tag
    function (``tag``), the store tags each distinct str and int once and hands
    the same object to every host, so ansible-core keeps it as it is. It also
    tags each host's dicts of such values. Without ``tag`` the values are only
    deduplicated.
    """

    def __init__(self, tag: Callable[[Any], Any] | None = None) -> None:
        self._tag = tag
        self._strings: dict[str, Any] = {}
        self._integers: dict[int, Any] = {}
        # Types of the values that are final as returned: None, bools, and
        # what ``tag`` returns for a str, an int and a dict. ansible-core's
        # inventory would store such values unchanged.
        self.final_types: frozenset[type] = frozenset({type(None), bool})
        self.tags_values = tag is not None
        if tag is not None:
            self.final_types |= {type(tag("")), type(tag(0)), type(tag({}))}

    def shared(self, value: Any) -> Any:
        """Return the stored copy of a str or int, adding it on first use. Other values come back unchanged."""
        kind = type(value)
        if kind is str:
            store: dict[Any, Any] = self._strings
        elif kind is int:
            store = self._integers
        else:
            return value
        result = store.get(value)
        if result is None:
            result = value if self._tag is None else self._tag(value)
            store[value] = result
        return result

    def unique(self, value: Any) -> Any:
        """Tag a str or int that no other host has, without storing it. Other values come back unchanged."""
        if self._tag is None or type(value) not in (str, int):
            return value
        return self._tag(value)

    def host_variables(self, hostvars: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of one host's variables in which repeated values are shared.

        Values of nested dicts (labels, metadata, scheduling) are shared too,
        and their keys interned. A nested dict is tagged only when all of its
        values are final. Other containers are copied by reference.
        """
        result: dict[str, Any] = {}
        for name, value in hostvars.items():
            if name in UNIQUE_HOSTVARS:
                result[name] = self.unique(value)
            elif type(value) is dict:
                mapping = {
                    sys.intern(key) if type(key) is str else key: self.shared(item) for key, item in value.items()
                }
                if self._tag is not None and all(type(item) in self.final_types for item in mapping.values()):
                    mapping = self._tag(mapping)
                result[name] = mapping
            else:
                result[name] = self.shared(value)
        return result


class RecordPacker:
    """Encoder of host variable records into a compact form for the inventory cache.

    Each distinct scalar (str, int, float, bool or None) is stored once in
    ``values``, and each distinct list of variable names once in ``shapes``.
    A packed record is a list: its shape's index, then for each variable the
    index of its value, or for a dict of scalars a dict of value indexes.
    For the 10,000 instances of benchmarks/inventory/run.py this cuts the
    cache entry from about 16 MB to 4.3 MB, because labels, metadata and most
    other values repeat across hosts.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.shapes: list[list[str]] = []
        self._value_indexes: dict[tuple[type, Any], int] = {}
        self._shape_indexes: dict[tuple[str, ...], int] = {}

    def _value_index(self, value: Any) -> int:
        kind = type(value)
        if kind not in _PACKABLE_SCALARS:
            raise TypeError(f"Cannot pack a value of type {kind.__name__} into the inventory cache: {value!r}")
        # The type is part of the key, because True == 1 and 1 == 1.0 in a dict key.
        key = (kind, value)
        index = self._value_indexes.get(key)
        if index is None:
            index = len(self.values)
            self._value_indexes[key] = index
            self.values.append(value)
        return index

    def pack(self, record: dict[str, Any]) -> list[Any]:
        """Encode one record. Raises TypeError for a value that is neither a scalar nor a dict of scalars."""
        names = tuple(record)
        shape = self._shape_indexes.get(names)
        if shape is None:
            shape = len(self.shapes)
            self._shape_indexes[names] = shape
            self.shapes.append(list(names))
        row: list[Any] = [shape]
        for value in record.values():
            if type(value) is dict:
                row.append({key: self._value_index(item) for key, item in value.items()})
            else:
                row.append(self._value_index(value))
        return row


_PACKABLE_SCALARS = frozenset({str, int, float, bool, type(None)})


def unpack_records(values: list[Any], shapes: list[list[str]], rows: list[list[Any]]) -> list[dict[str, Any]]:
    """Decode records that RecordPacker encoded. The records share the objects of ``values``.

    Raises IndexError, KeyError or TypeError for rows that do not match
    ``values`` and ``shapes``.
    """
    records = []
    for row in rows:
        names = shapes[row[0]]
        if len(names) != len(row) - 1:
            raise IndexError(f"A cached record has {len(row) - 1} values for {len(names)} variables.")
        record = {}
        for position, name in enumerate(names, start=1):
            reference = row[position]
            if type(reference) is dict:
                record[name] = {key: values[index] for key, index in reference.items()}
            else:
                record[name] = values[reference]
        records.append(record)
    return records


def has_unknown_gpu_shape(hostvars: dict[str, Any]) -> bool:
    """Tell whether a host's machine type belongs to a GPU family that the GPU table lacks."""
    if hostvars["gce_gpu_count"]:
        return False
    return hostvars["gce_machine_family"] in gpu_catalog.BUILTIN_GPU_FAMILIES and not gpu_catalog.is_known_machine_type(
        hostvars["gce_machine_type"]
    )


def default_groups(hostvars: dict[str, Any]) -> list[str]:
    """Return the groups every host joins: env, pool, role, zone and GPU type, where known."""
    groups = []
    for prefix, key in (
        ("env", "gce_env"),
        ("pool", "gce_pool"),
        ("role", "gce_role"),
        ("zone", "gce_zone"),
        ("gpu", "gce_gpu_type"),
    ):
        value = hostvars.get(key)
        if value:
            groups.append(sanitize_group_name(f"{prefix}_{value}"))
    return groups


def select_hostname(hostvars: dict[str, Any], hostnames: Iterable[str]) -> str | None:
    """Return the first usable host name from the ``hostnames`` preference list, or None."""
    for entry in hostnames:
        if entry == "name":
            value = hostvars["gce_name"]
        elif entry == "private_ip":
            value = hostvars["gce_private_ip"]
        elif entry == "public_ip":
            value = hostvars["gce_public_ip"]
        else:
            value = hostvars["gce_labels"].get(entry[len(_LABEL_PREFIX) :])
        if value:
            return value
    return None


def sort_key(hostvars: dict[str, Any]) -> tuple[int, str, str, str]:
    """Order hosts by instance id, so that repeated runs give identical inventories."""
    return int(hostvars["gce_id"] or 0), hostvars["gce_project"], hostvars["gce_zone"], hostvars["gce_name"]


def is_loopback_url(url: str) -> bool:
    """Tell whether a URL's host is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(url: str, field: str = "api_endpoint") -> str:
    """Check an endpoint option's value and return it without a trailing slash.

    Plain HTTP is allowed only to loopback addresses, because the plugin sends
    an OAuth access token with every request.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidOption(
            f"Invalid {field} {url!r}: expected an http(s) URL such as https://compute.googleapis.com."
        )
    if parts.scheme == "http" and not is_loopback_url(url):
        raise InvalidOption(
            f"Invalid {field} {url!r}: plain http is allowed only on a loopback address; use https."
        )
    return url.rstrip("/")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay in seconds that a Retry-After header requests, or None.

    The header holds either a number of seconds or an HTTP date (RFC 9110).
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Return the wait before retry number ``attempt`` (0 for the first retry), in seconds.

    A Retry-After value from the server wins; otherwise the delay doubles per
    attempt from ``base`` with up to 50 % random jitter. Both stay below ``cap``.
    """
    if retry_after is not None:
        return min(retry_after, cap)
    delay = base * (2**attempt)
    return min(delay * (1.0 + 0.5 * jitter()), cap)


def one_line(text: str) -> str:
    """Collapse whitespace, so that an API message fits into a one-line error."""
    return " ".join(str(text).split())


class UndefinedReference(KeyError):
    """A variable reference whose variable, key or index does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


# Jinja literals and operators that look like variable names.
_JINJA_WORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if", "else"}
)
# Attribute names that Jinja resolves to dict methods instead of keys.
_DICT_ATTRIBUTES = frozenset(dir(dict))
_REFERENCE_ROOT = re.compile(r"\s*([A-Za-z_]\w*)")
_REFERENCE_STEP = re.compile(
    r"""\s*(?:\.\s*(?P<attribute>[A-Za-z_]\w*)|\[\s*(?:'(?P<single>[^'\\]*)'|"(?P<double>[^"\\]*)"|(?P<index>-?\d+))\s*\])"""
)
_STRING_LITERAL = re.compile(r"""\s*(?:'(?P<single>[^'\\]*)'|"(?P<double>[^"\\]*)")\s*""")


def compile_simple_expression(expression: str) -> Callable[[dict[str, Any]], Any] | None:
    """Compile a Jinja expression that is a plain variable reference or a string literal.

    Handles ``name``, ``name.key``, ``name['key']``, ``name[0]`` and chains of
    them, and ``'text'``. Returns None for every other expression, which the
    caller then evaluates with Ansible's templating. The returned function
    raises UndefinedReference where Jinja would see an undefined value.
    """
    literal = _STRING_LITERAL.fullmatch(expression)
    if literal:
        text = literal.group("single") if literal.group("single") is not None else literal.group("double")
        if "{{" in text or "{%" in text:
            return None
        return lambda _variables: text

    root = _REFERENCE_ROOT.match(expression)
    if not root or root.group(1) in _JINJA_WORDS:
        return None
    position = root.end()
    steps: list[str | int] = []
    while position < len(expression):
        step = _REFERENCE_STEP.match(expression, position)
        if not step:
            break
        if step.group("attribute") is not None:
            if step.group("attribute") in _DICT_ATTRIBUTES:
                return None
            steps.append(step.group("attribute"))
        elif step.group("index") is not None:
            steps.append(int(step.group("index")))
        else:
            steps.append(step.group("single") if step.group("single") is not None else step.group("double"))
        position = step.end()
    if expression[position:].strip():
        return None
    name = root.group(1)

    def evaluate(variables: dict[str, Any]) -> Any:
        if name not in variables:
            raise UndefinedReference(f"'{name}' is undefined")
        value = variables[name]
        path = name
        for key in steps:
            if not _has_step(value, key):
                raise UndefinedReference(f"'{path}' has no key or index {key!r}")
            value = value[key]
            path = f"{path}[{key!r}]"
        return value

    return evaluate


def _has_step(value: Any, key: str | int) -> bool:
    """Tell whether ``value[key]`` exists, as Jinja's subscript would find it."""
    if isinstance(value, dict):
        return key in value
    if isinstance(value, (list, str)) and isinstance(key, int):
        return -len(value) <= key < len(value)
    return False
