"""Fault injection rules for the emulator.

A rule matches requests by API method (``instances.aggregatedList``), project,
zone, HTTP verb or a path regex, and then does one or more of: answer with an
error status (with a ``Retry-After`` header when set), return a malformed JSON
body, close the connection without an answer, add latency, or report zones as
unreachable in an aggregated list. ``count`` limits how many matching requests
the rule acts on; without it the rule stays until the faults are cleared.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, fields
from typing import Any

# Canonical status names of google.rpc.Code for the HTTP statuses the emulator returns.
RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# IAM permission that each API method checks, for realistic 403 messages.
PERMISSIONS = {
    "instances.aggregatedList": "compute.instances.list",
    "instances.list": "compute.instances.list",
    "instances.get": "compute.instances.get",
    "instances.insert": "compute.instances.create",
    "instances.delete": "compute.instances.delete",
    "instances.setLabels": "compute.instances.setLabels",
    "zones.list": "compute.zones.list",
    "zones.get": "compute.zones.get",
    "machineTypes.get": "compute.machineTypes.get",
    "acceleratorTypes.list": "compute.acceleratorTypes.list",
    "zoneOperations.get": "compute.zoneOperations.get",
}


@dataclass
class FaultRule:
    """One fault; see the module docstring for what each field does."""

    operation: str | None = None
    project: str | None = None
    zone: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    malformed: bool = False
    disconnect: bool = False
    unreachable_zones: list[str] = field(default_factory=list)
    count: int | None = None
    fired: int = 0

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> FaultRule:
        """Build a rule from its JSON form; raise ValueError on unknown keys or bad values."""
        known = {f.name for f in fields(cls)} - {"fired"}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"Unknown fault keys {unknown}; known keys are {sorted(known)}.")
        rule = cls(**document)
        if rule.status is not None and not 400 <= int(rule.status) <= 599:
            raise ValueError(f"Fault status {rule.status} is not an HTTP error status (400-599).")
        if rule.path is not None:
            re.compile(rule.path)
        if rule.count is not None and int(rule.count) < 1:
            raise ValueError(f"Fault count {rule.count} must be at least 1, or absent for a permanent fault.")
        if not (rule.status or rule.malformed or rule.disconnect or rule.latency_ms or rule.unreachable_zones):
            raise ValueError("A fault needs an effect: status, malformed, disconnect, latency_ms or unreachable_zones.")
        return rule

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def terminal(self) -> bool:
        """True when the rule answers the request itself instead of the API method."""
        return bool(self.status or self.malformed or self.disconnect)

    def matches(
        self, http_method: str, path: str, operation: str | None, project: str | None, zone: str | None
    ) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        if self.project is not None and self.project != project:
            return False
        if self.zone is not None and self.zone != zone:
            return False
        if self.method is not None and self.method.upper() != http_method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class FaultOutcome:
    """What the matching rules of one request add up to."""

    latency_s: float = 0.0
    answer: FaultRule | None = None
    unreachable_zones: list[str] = field(default_factory=list)


class FaultSet:
    """Ordered, thread-safe list of fault rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def evaluate(
        self, http_method: str, path: str, operation: str | None, project: str | None, zone: str | None
    ) -> FaultOutcome:
        """Apply the rules to one request and count each rule that acts.

        Latency and unreachable zones add up over all matching rules; the
        first matching rule with an answer (status, malformed, disconnect)
        answers the request.
        """
        outcome = FaultOutcome()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(http_method, path, operation, project, zone):
                    continue
                if rule.terminal and outcome.answer is not None:
                    continue
                rule.fired += 1
                outcome.latency_s += rule.latency_ms / 1000.0
                outcome.unreachable_zones.extend(rule.unreachable_zones)
                if rule.terminal:
                    outcome.answer = rule
        return outcome


def error_body(
    status: int, reason: str, message: str, domain: str = "global", details: list[dict] | None = None
) -> dict[str, Any]:
    """Build an error document in the Compute API's JSON error format."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": RPC_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def fault_error(
    rule: FaultRule, operation: str | None, project: str | None, project_number: int | None
) -> dict[str, Any]:
    """Build the error document that a fault rule answers with, with the API's usual wording."""
    status = int(rule.status or 500)
    consumer = f"projects/{project_number or 0}"
    if status == 403 and rule.reason == "accessNotConfigured":
        message = rule.message or (
            f"Compute Engine API has not been used in project {project_number or 0} before or it is disabled. "
            f"Enable it by visiting the API library of project {project}, then retry."
        )
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {"service": "compute.googleapis.com", "consumer": consumer},
            }
        ]
        return error_body(status, "accessNotConfigured", message, "usageLimits", details)
    if status == 403:
        permission = PERMISSIONS.get(operation or "", "compute.instances.list")
        message = rule.message or f"Required '{permission}' permission for 'projects/{project}'"
        return error_body(status, rule.reason or "forbidden", message)
    if status == 404:
        return error_body(
            status, rule.reason or "notFound", rule.message or f"The resource 'projects/{project}' was not found"
        )
    if status == 401:
        message = rule.message or "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return error_body(status, rule.reason or "authError", message)
    if status == 429:
        message = rule.message or (
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
            f"of service 'compute.googleapis.com' for consumer '{consumer}'."
        )
        return error_body(status, rule.reason or "rateLimitExceeded", message, "usageLimits")
    if status == 503:
        return error_body(
            status, rule.reason or "backendError", rule.message or "The service is currently unavailable."
        )
    message = rule.message or "Internal error. Please try again or contact Google Support."
    return error_body(status, rule.reason or "backendError", message)
