# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse ``nvidia-smi`` output into GPU facts and a driver state.

Pure functions with no Ansible imports, so the ``nvidia_gpu_facts`` module,
the lab's tests and anything else on the controller can share them.

Exit codes are NVML return codes, which ``nvidia-smi`` passes through
(``nvmlReturn_t`` in NVIDIA's NVML API reference): 6 ``NOT_FOUND``,
9 ``DRIVER_NOT_LOADED``, 15 ``GPU_IS_LOST`` and 18 ``LIB_RM_VERSION_MISMATCH``.
The messages are matched as well, because wrappers and older releases do not
always keep the exit code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

STATE_OK = "ok"
STATE_NOT_INSTALLED = "not_installed"
STATE_DRIVER_NOT_LOADED = "driver_not_loaded"
STATE_NO_DEVICES = "no_devices"
STATE_GPU_LOST = "gpu_lost"
STATE_VERSION_MISMATCH = "version_mismatch"

STATES = (
    STATE_OK,
    STATE_NOT_INSTALLED,
    STATE_DRIVER_NOT_LOADED,
    STATE_NO_DEVICES,
    STATE_GPU_LOST,
    STATE_VERSION_MISMATCH,
)

EXIT_NOT_FOUND = 6
EXIT_DRIVER_NOT_LOADED = 9
EXIT_GPU_IS_LOST = 15
EXIT_VERSION_MISMATCH = 18
EXIT_INVALID_ARGUMENT = 2

# Values nvidia-smi prints in brackets when it has no value for a field: the
# GPU lacks the feature, the driver does not report it, or access failed.
NULL_VALUES = frozenset(
    {"[N/A]", "[Not Supported]", "N/A", "Not Supported", "[Unknown Error]", "[Insufficient Permissions]"}
)
LOST_VALUES = frozenset({"[GPU is lost]", "[GPU requires reset]"})

_VERSION_MISMATCH_RE = re.compile(r"Driver/library version mismatch", re.IGNORECASE)
_LIBRARY_VERSION_RE = re.compile(r"NVML library version:\s*(?P<version>\S+)")
_DRIVER_NOT_LOADED_RE = re.compile(r"couldn't communicate with the NVIDIA driver|Driver Not Loaded", re.IGNORECASE)
_NO_DEVICES_RE = re.compile(r"No devices were found", re.IGNORECASE)
_GPU_LOST_RE = re.compile(r"GPU is lost|fallen off the bus", re.IGNORECASE)
_INVALID_FIELD_RE = re.compile(r'Field "(?P<field>[^"]+)" is not a valid field to query')
_BUS_ID_IN_MESSAGE_RE = re.compile(r"GPU\s*(?P<bus_id>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])")


class NvidiaSmiParseError(ValueError):
    """Output of nvidia-smi that matches no known format."""

    def __init__(self, message: str, line: str) -> None:
        super().__init__(f"{message}: {line!r}")
        self.line = line


class UnsupportedFieldError(ValueError):
    """A query field that this nvidia-smi release does not know."""

    def __init__(self, field: str) -> None:
        super().__init__(f"nvidia-smi does not support the query field {field!r}")
        self.field = field


def _parse_int(value: str) -> int:
    # With --format=csv but without nounits, sizes carry a unit suffix.
    return int(value.removesuffix(" MiB").strip())


def _parse_enabled(value: str) -> bool:
    if value == "Enabled":
        return True
    if value == "Disabled":
        return False
    raise ValueError(f"expected Enabled or Disabled, got {value!r}")


def _parse_compute_capability(value: str) -> str:
    if not re.fullmatch(r"\d+\.\d+", value):
        raise ValueError(f"expected MAJOR.MINOR, got {value!r}")
    return value


def _parse_text(value: str) -> str:
    return value


@dataclass(frozen=True)
class QueryField:
    """One ``--query-gpu`` field and the key it gets in the module's result."""

    name: str
    key: str
    parse: Any


QUERY_FIELDS: tuple[QueryField, ...] = (
    QueryField("index", "index", _parse_int),
    QueryField("name", "name", _parse_text),
    QueryField("uuid", "uuid", _parse_text),
    QueryField("pci.bus_id", "pci_bus_id", _parse_text),
    QueryField("driver_version", "driver_version", _parse_text),
    QueryField("memory.total", "memory_total_mib", _parse_int),
    QueryField("persistence_mode", "persistence_mode", _parse_enabled),
    QueryField("compute_cap", "compute_capability", _parse_compute_capability),
    QueryField("mig.mode.current", "mig_mode", _parse_enabled),
    QueryField("ecc.mode.current", "ecc_mode", _parse_enabled),
)

RESULT_KEYS = tuple(field.key for field in QUERY_FIELDS)


def query_command(binary: str, fields: tuple[QueryField, ...] = QUERY_FIELDS) -> list[str]:
    """Build the nvidia-smi command line that queries ``fields``."""
    names = ",".join(field.name for field in fields)
    return [binary, f"--query-gpu={names}", "--format=csv,noheader,nounits"]


def without_field(fields: tuple[QueryField, ...], name: str) -> tuple[QueryField, ...]:
    """Return ``fields`` less the one that nvidia-smi rejected."""
    return tuple(field for field in fields if field.name != name)


def parse_query_line(line: str, fields: tuple[QueryField, ...] = QUERY_FIELDS) -> dict[str, Any]:
    """Parse one CSV row of ``--query-gpu`` output into a GPU dict.

    Keys of ``RESULT_KEYS`` that are not in ``fields`` are set to None, so
    every GPU dict has the same keys. Raises NvidiaSmiParseError with the raw
    line when the column count or a value does not fit its field.
    """
    # nvidia-smi separates columns with ", " and quotes nothing. Product
    # names contain no commas, so a plain split is exact.
    values = [value.strip() for value in line.split(",")]
    if len(values) != len(fields):
        raise NvidiaSmiParseError(f"expected {len(fields)} comma-separated values, got {len(values)}", line)

    gpu: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    for field, value in zip(fields, values, strict=True):
        if value in NULL_VALUES or value in LOST_VALUES:
            gpu[field.key] = None
            continue
        try:
            gpu[field.key] = field.parse(value)
        except ValueError as error:
            raise NvidiaSmiParseError(f"invalid value for {field.name} ({error})", line) from error
    return gpu


def parse_query_output(stdout: str, fields: tuple[QueryField, ...] = QUERY_FIELDS) -> list[dict[str, Any]]:
    """Parse every non-empty line of ``--query-gpu`` output, in index order."""
    gpus = [parse_query_line(line, fields) for line in stdout.splitlines() if line.strip()]
    return sorted(gpus, key=lambda gpu: (gpu["index"] is None, gpu["index"]))


def _rows_with_lost_gpu(stdout: str) -> list[str]:
    rows = []
    for line in stdout.splitlines():
        if any(value.strip() in LOST_VALUES for value in line.split(",")):
            rows.append(line.strip())
    return rows


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def interpret(rc: int, stdout: str, stderr: str, fields: tuple[QueryField, ...] = QUERY_FIELDS) -> dict[str, Any]:
    """Turn the exit code and output of a ``--query-gpu`` call into facts.

    Returns a dict with ``state``, ``msg``, ``count``, ``driver_version`` and
    ``gpus``. Raises UnsupportedFieldError when nvidia-smi rejects a query
    field (the caller may retry without it) and NvidiaSmiParseError for
    output that matches no known state.
    """
    output = "\n".join(part for part in (stdout, stderr) if part)

    if _VERSION_MISMATCH_RE.search(output):
        library = _LIBRARY_VERSION_RE.search(output)
        library_text = f" (user-space NVML library {library.group('version')})" if library else ""
        return _failure(
            STATE_VERSION_MISMATCH,
            "The NVIDIA user-space libraries do not match the loaded kernel module"
            f"{library_text}: nvidia-smi printed {_first_line(output)!r}. "
            "Reboot to load the kernel module of the installed driver, or reinstall the driver that is loaded.",
        )
    if rc == EXIT_DRIVER_NOT_LOADED or _DRIVER_NOT_LOADED_RE.search(output):
        return _failure(
            STATE_DRIVER_NOT_LOADED,
            f"The NVIDIA kernel module is not loaded (nvidia-smi exit code {rc}). "
            "Check that the module was built for the running kernel (dkms status) and load it, or reboot.",
        )
    if rc == EXIT_NOT_FOUND or _NO_DEVICES_RE.search(output):
        return _failure(
            STATE_NO_DEVICES,
            f"The NVIDIA driver is loaded but sees no GPU (nvidia-smi exit code {rc}). "
            "Check that the VM has GPUs attached and that the driver supports them.",
        )
    if rc == EXIT_GPU_IS_LOST or _GPU_LOST_RE.search(output):
        bus = _BUS_ID_IN_MESSAGE_RE.search(output)
        where = f" at PCI bus id {bus.group('bus_id')}" if bus else ""
        lost_rows = _rows_with_lost_gpu(stdout)
        if lost_rows and not where:
            where = f" ({'; '.join(lost_rows)})"
        return _failure(
            STATE_GPU_LOST,
            f"A GPU{where} has fallen off the bus or is otherwise inaccessible (nvidia-smi exit code {rc}). "
            "Reboot the host; if it recurs, replace the VM.",
        )

    invalid_field = _INVALID_FIELD_RE.search(output)
    if rc == EXIT_INVALID_ARGUMENT and invalid_field:
        raise UnsupportedFieldError(invalid_field.group("field"))

    if rc != 0:
        raise NvidiaSmiParseError(f"nvidia-smi failed with exit code {rc} and output of no known state", output)

    gpus = parse_query_output(stdout, fields)
    if not gpus:
        return _failure(
            STATE_NO_DEVICES,
            "nvidia-smi exited with code 0 but listed no GPU. Check that the VM has GPUs attached.",
        )
    driver_version = gpus[0]["driver_version"]
    names = sorted({str(gpu["name"]) for gpu in gpus})
    return {
        "state": STATE_OK,
        "msg": f"{len(gpus)} GPU(s) found ({', '.join(names)}), driver {driver_version}.",
        "count": len(gpus),
        "driver_version": driver_version,
        "gpus": gpus,
    }


def _failure(state: str, msg: str) -> dict[str, Any]:
    return {"state": state, "msg": msg, "count": 0, "driver_version": None, "gpus": []}


def not_installed(searched: str) -> dict[str, Any]:
    """Return the facts of a host where the nvidia-smi binary is missing."""
    return _failure(
        STATE_NOT_INSTALLED,
        f"nvidia-smi was not found ({searched}), so the NVIDIA driver is not installed.",
    )


# Host probes that decide how the driver can be installed. They read sysfs and
# /boot, so the parsing lives here and the file reads live in the module.

NVIDIA_PCI_VENDOR = "0x10de"
# PCI class codes (PCI-SIG, "PCI Code and ID Assignment"): 0x03xxxx display
# controllers (GPUs), 0x0680xx "other bridge", which is how NVSwitch shows up.
PCI_CLASS_DISPLAY_PREFIX = "0x03"
PCI_CLASS_NVSWITCH_PREFIX = "0x0680"

# The UEFI global-variable GUID that SecureBoot lives under (UEFI spec, "Globally
# Defined Variables"). Linux efivarfs prefixes the value with 4 attribute bytes.
SECURE_BOOT_EFIVAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def pci_function_kind(vendor: str, pci_class: str) -> str | None:
    """Classify a PCI function by its sysfs vendor and class: ``gpu``, ``nvswitch`` or None."""
    if vendor.strip().lower() != NVIDIA_PCI_VENDOR:
        return None
    pci_class = pci_class.strip().lower()
    if pci_class.startswith(PCI_CLASS_DISPLAY_PREFIX):
        return "gpu"
    if pci_class.startswith(PCI_CLASS_NVSWITCH_PREFIX):
        return "nvswitch"
    return None


def parse_secure_boot(efivar: bytes) -> bool | None:
    """Parse the efivarfs SecureBoot variable: True when on, None when the content is too short."""
    if len(efivar) < 5:
        return None
    return efivar[4] == 1


def kernel_release_key(release: str) -> tuple:
    """Sort key for kernel release strings, comparing numbers as numbers (6.1.0-9 < 6.1.0-28)."""
    parts = re.split(r"(\d+)", release)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts if part)
