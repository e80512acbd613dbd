"""HTTP server of the Compute API emulator and the ComputeEmulator controller.

The server implements the methods of the Compute v1 REST API that the
inventory plugin and the lab use, under ``/compute/v1``. Tests and lab drills
call its admin API under ``/_emulator/`` to load fleets, inject faults and
read the request log.
"""

from __future__ import annotations

import base64
import collections
import copy
import functools
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.cloud.compute_v1.types import compute
from google.protobuf import json_format

from .faults import FaultRule, FaultSet, error_body, fault_error
from .fieldmask import FieldMaskError, apply_field_mask, parse_field_mask, validate_field_mask
from .filters import FilterError, matches, parse_filter
from .fleet import API_PATH, ApiError, Fleet, generate_fleet, invalid
from .identity import TokenIssuer, TokenResponse, rpc_error

log = logging.getLogger("lab.emulator")

MAX_RESULTS = 500  # the API's maximum and default page size for list methods
REQUEST_LOG_SIZE = 20_000

_INSTANCE_FIELDS = frozenset(field.json_name for field in compute.Instance.pb().DESCRIPTOR.fields)

_SEGMENT = r"([^/]+)"


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    operation: str
    handler: str
    response_type: type | None


def _route(http_method: str, path: str, operation: str, handler: str, response_type: type | None) -> Route:
    regex = API_PATH + path.replace("{project}", _SEGMENT).replace("{zone}", _SEGMENT).replace("{name}", _SEGMENT)
    return Route(http_method, re.compile(f"^{regex}$"), operation, handler, response_type)


_PROJECT = "/projects/{project}"
_ZONE = _PROJECT + "/zones/{zone}"

ROUTES = (
    _route("GET", _PROJECT + "/aggregated/instances", "instances.aggregatedList", "_aggregated_list",
           compute.InstanceAggregatedList),
    _route("GET", _ZONE + "/instances", "instances.list", "_list_instances", compute.InstanceList),
    _route("POST", _ZONE + "/instances", "instances.insert", "_insert_instance", compute.Operation),
    _route("GET", _ZONE + "/instances/{name}", "instances.get", "_get_instance", compute.Instance),
    _route("DELETE", _ZONE + "/instances/{name}", "instances.delete", "_delete_instance", compute.Operation),
    _route("POST", _ZONE + "/instances/{name}/setLabels", "instances.setLabels", "_set_labels", compute.Operation),
    _route("GET", _PROJECT + "/zones", "zones.list", "_list_zones", compute.ZoneList),
    _route("GET", _ZONE, "zones.get", "_get_zone", compute.Zone),
    _route("GET", _ZONE + "/machineTypes/{name}", "machineTypes.get", "_get_machine_type", compute.MachineType),
    _route("GET", _ZONE + "/acceleratorTypes", "acceleratorTypes.list", "_list_accelerator_types",
           compute.AcceleratorTypeList),
    _route("GET", _ZONE + "/operations/{name}", "zoneOperations.get", "_get_operation", compute.Operation),
    _route("POST", _ZONE + "/operations/{name}/wait", "zoneOperations.wait", "_get_operation", compute.Operation),
)  # fmt: skip


@dataclass
class ApiRequest:
    """One API request as the handlers see it."""

    http_method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    project: str | None = None
    zone: str | None = None
    name: str | None = None

    def json_body(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise invalid(f"Invalid JSON payload received. {error}") from error
        if not isinstance(document, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        return document


class ComputeEmulator:
    """A local Compute Engine API for tests, the lab and benchmarks.

    Use it as a context manager; ``url`` is the endpoint to hand to clients::

        with ComputeEmulator(port=0) as emulator:
            emulator.insert_instance("mlinfra-lab", "us-central1-a", {"name": "gpu-1", "machineType": "g2-standard-8"})
            ...  # point the client at emulator.url

    ``fleet`` is a fleet document (see ``Fleet.load``) or a generation spec
    ``{"instances": N, "zones": M, "projects": P, "environment": "lab"}``.
    ``reset()`` brings back the fleets loaded so far and clears faults and
    the request log.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_ms / 1000.0
        self.faults = FaultSet()
        self.tokens = TokenIssuer()
        self._documents: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._request_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._request_total = 0
        self._listing_cache: dict[tuple, list[tuple[str, dict[str, Any]]]] = {}
        self._projection_memos: dict[tuple, dict[tuple[int, int], Any]] = {}
        self.fleet = Fleet("http://placeholder")

    # Lifecycle -----------------------------------------------------------------

    def start(self) -> ComputeEmulator:
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self.fleet = Fleet(self.url)
        for document in self._documents:
            self.fleet.load(document)
        self._thread = threading.Thread(target=self._server.serve_forever, name="compute-emulator", daemon=True)
        self._thread.start()
        log.info("compute emulator started on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            log.info("compute emulator on %s stopped after %d requests", self.url, self._request_total)
            self._server = None

    def __enter__(self) -> ComputeEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # Fleet -------------------------------------------------------------------------

    def load_fleet(self, document: dict[str, Any]) -> int:
        """Load a fleet document (kept for reset) and return the number of instances added."""
        added = self.fleet.load(copy.deepcopy(document))
        self._documents.append(copy.deepcopy(document))
        return added

    def generate(
        self, instances: int, zones: int, projects: int, environment: str = "lab", project_prefix: str = "mlinfra-fleet"
    ) -> int:
        """Add a generated fleet; return the number of instances added."""
        return self.load_fleet(
            generate_fleet(instances, zones, projects, environment=environment, project_prefix=project_prefix)
        )

    def add_project(self, name: str, zones: list[str] | None = None) -> None:
        self.load_fleet({"projects": {name: {"zones": list(zones or [])}}})

    def insert_instance(self, project: str, zone: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add one instance (kept for reset); ``body`` may set ``status`` and ``id``."""
        self.load_fleet({"projects": {project: {"instances": [dict(body, zone=zone)]}}})
        return self.fleet.get_instance(project, zone, body["name"])

    def reset(self) -> None:
        """Restore the loaded fleets and clear faults, latency overrides and the request log."""
        self.faults.clear()
        self.clear_requests()
        self.tokens.reset()
        self._listing_cache.clear()
        self._projection_memos = {}
        self.fleet = Fleet(self.url)
        for document in self._documents:
            self.fleet.load(document)

    # Faults and latency ------------------------------------------------------------

    def add_fault(self, **rule: Any) -> FaultRule:
        """Add a fault rule; see ``lab.emulator.faults`` for the keys."""
        return self.faults.add(FaultRule.from_dict(rule))

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_latency(self, latency_ms: float) -> None:
        self.latency_s = latency_ms / 1000.0

    # Request log ---------------------------------------------------------------------

    def requests(self, operation: str | None = None, project: str | None = None) -> list[dict[str, Any]]:
        """Return logged API requests, oldest first, optionally for one method or project."""
        with self._log_lock:
            entries = list(self._request_log)
        return [
            entry
            for entry in entries
            if (operation is None or entry["operation"] == operation)
            and (project is None or entry["project"] == project)
        ]

    def request_count(self, operation: str | None = None, project: str | None = None) -> int:
        if operation is None and project is None:
            return self._request_total
        return len(self.requests(operation, project))

    def clear_requests(self) -> None:
        with self._log_lock:
            self._request_log.clear()
            self._request_total = 0

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._request_total += 1
            entry["sequence"] = self._request_total
            self._request_log.append(entry)

    # API methods -----------------------------------------------------------------

    def _listing(
        self, project: str, filter_text: str, zones: list[str] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Return the filtered (zone, instance) pairs of a project, cached per fleet version."""
        key = (self.fleet.generation, self.fleet.version, project, filter_text, tuple(zones or ()))
        cached = self._listing_cache.get(key)
        if cached is not None:
            return cached
        try:
            node = parse_filter(filter_text, _INSTANCE_FIELDS)
        except FilterError as error:
            raise invalid(f"Invalid value for field 'filter': '{filter_text}'. {error}") from error
        listing = [
            (zone, instance)
            for zone, instance in self.fleet.instances_in_order(project)
            if (zones is None or zone in zones) and matches(node, instance)
        ]
        if len(self._listing_cache) > 32:
            self._listing_cache.clear()
        self._listing_cache[key] = listing
        return listing

    def _projection_memo(self, selection_text: str) -> dict[tuple[int, int], Any] | None:
        """Return the memo of projected resources for a field mask, valid while the fleet is unchanged."""
        if not selection_text:
            return None
        key = (self.fleet.generation, self.fleet.version, selection_text)
        memo = self._projection_memos.get(key)
        if memo is None:
            # Resources are stored by identity, so a changed fleet starts a new memo.
            self._projection_memos = {key: {}}
            memo = self._projection_memos[key]
        return memo

    def _aggregated_list(self, request: ApiRequest, unreachable_zones: list[str]) -> dict[str, Any]:
        project = self.fleet.project(request.project)
        filter_text = request.query.get("filter", "")
        max_results = _max_results(request.query)
        reachable = [zone for zone in project.zones if zone not in unreachable_zones]
        listing = self._listing(project.name, filter_text, reachable)
        offset = _page_offset(request.query.get("pageToken"), project.name, filter_text)
        page = listing[offset : offset + max_results]

        items: dict[str, Any] = {}
        for zone in project.zones:
            items[f"zones/{zone}"] = {
                "warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope 'zones/{zone}' on this page.",
                    "data": [{"key": "scope", "value": f"zones/{zone}"}],
                }
            }
        for zone in unreachable_zones:
            items[f"zones/{zone}"] = {
                "warning": {
                    "code": "UNREACHABLE",
                    "message": f"Scope 'zones/{zone}' is unreachable.",
                    "data": [{"key": "scope", "value": f"zones/{zone}"}],
                }
            }
        for zone, instance in page:
            scoped = items[f"zones/{zone}"]
            scoped.pop("warning", None)
            scoped.setdefault("instances", []).append(instance)

        body: dict[str, Any] = {
            "kind": "compute#instanceAggregatedList",
            "id": f"projects/{project.name}/aggregated/instances",
            "items": items,
            "selfLink": self.fleet.url("projects", project.name, "aggregated", "instances"),
        }
        if offset + max_results < len(listing):
            body["nextPageToken"] = _page_token(offset + max_results, project.name, filter_text)
        if unreachable_zones and request.query.get("returnPartialSuccess", "").lower() == "true":
            body["unreachables"] = [f"zones/{zone}" for zone in unreachable_zones]
        return body

    def _list_instances(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        self.fleet.zone(request.project, request.zone)
        filter_text = request.query.get("filter", "")
        listing = self._listing(request.project, filter_text, [request.zone])
        key = f"{request.project}/{request.zone}"
        body = self._page(listing, request, key, filter_text, "compute#instanceList")
        body["items"] = [instance for _zone, instance in body.get("items", [])]
        if not body["items"]:
            del body["items"]
        body["selfLink"] = self.fleet.url("projects", request.project, "zones", request.zone, "instances")
        return body

    def _page(self, listing: list, request: ApiRequest, key: str, filter_text: str, kind: str) -> dict[str, Any]:
        max_results = _max_results(request.query)
        offset = _page_offset(request.query.get("pageToken"), key, filter_text)
        body: dict[str, Any] = {"kind": kind, "id": key, "items": listing[offset : offset + max_results]}
        if offset + max_results < len(listing):
            body["nextPageToken"] = _page_token(offset + max_results, key, filter_text)
        return body

    def _get_instance(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        return self.fleet.get_instance(request.project, request.zone, request.name)

    def _insert_instance(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        try:
            json_format.Parse(request.body or b"{}", compute.Instance.pb()(), ignore_unknown_fields=False)
        except json_format.ParseError as error:
            raise invalid(f"Invalid JSON payload received. {error}") from error
        body = request.json_body()
        instance = self.fleet.insert_instance(request.project, request.zone, body)
        return self.fleet.record_operation(request.project, request.zone, "insert", instance)

    def _delete_instance(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        instance = self.fleet.delete_instance(request.project, request.zone, request.name)
        return self.fleet.record_operation(request.project, request.zone, "delete", instance)

    def _set_labels(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        instance = self.fleet.set_labels(request.project, request.zone, request.name, request.json_body())
        return self.fleet.record_operation(request.project, request.zone, "setLabels", instance)

    def _list_zones(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        project = self.fleet.project(request.project)
        zones = [self.fleet.zone_resource(project.name, zone) for zone in project.zones]
        filter_text = request.query.get("filter", "")
        try:
            node = parse_filter(filter_text)
        except FilterError as error:
            raise invalid(f"Invalid value for field 'filter': '{filter_text}'. {error}") from error
        zones = [zone for zone in zones if matches(node, zone)]
        body = self._page(zones, request, f"{project.name}/zones", filter_text, "compute#zoneList")
        body["selfLink"] = self.fleet.url("projects", project.name, "zones")
        return body

    def _get_zone(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        self.fleet.zone(request.project, request.zone)
        return self.fleet.zone_resource(request.project, request.zone)

    def _get_machine_type(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        return self.fleet.machine_type(request.project, request.zone, request.name)

    def _list_accelerator_types(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        types = self.fleet.accelerator_types(request.project, request.zone)
        key = f"{request.project}/{request.zone}/acceleratorTypes"
        body = self._page(types, request, key, "", "compute#acceleratorTypeList")
        body["selfLink"] = self.fleet.url("projects", request.project, "zones", request.zone, "acceleratorTypes")
        return body

    def _get_operation(self, request: ApiRequest, _unreachable: list[str]) -> dict[str, Any]:
        return self.fleet.get_operation(request.project, request.zone, request.name)

    # Admin API ---------------------------------------------------------------------

    def _admin(self, http_method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Handle a request under /_emulator/."""
        document: Any = json.loads(body) if body.strip() else {}
        action = (http_method, path.removeprefix("/_emulator/").rstrip("/"))
        if action == ("GET", "health"):
            return 200, {"status": "ok", "instances": self.fleet.count()}
        if action == ("GET", "requests"):
            entries = self.requests(query.get("operation"), query.get("project"))
            limit = int(query["limit"]) if query.get("limit") else len(entries)
            recent = entries[len(entries) - limit :] if limit else []
            return 200, {"count": len(entries), "total": self._request_total, "requests": recent}
        if action == ("DELETE", "requests"):
            self.clear_requests()
            return 200, {"count": 0}
        if action == ("GET", "faults"):
            return 200, {"faults": self.faults.list()}
        if action == ("POST", "faults"):
            rules = document.get("faults", [document]) if isinstance(document, dict) else document
            added = [self.add_fault(**rule).to_dict() for rule in rules]
            return 200, {"faults": added}
        if action == ("DELETE", "faults"):
            self.clear_faults()
            return 200, {"faults": []}
        if action == ("POST", "latency"):
            self.set_latency(float(document.get("latency_ms", 0)))
            return 200, {"latency_ms": self.latency_s * 1000.0}
        if action == ("POST", "reset"):
            self.reset()
            return 200, {"status": "reset", "instances": self.fleet.count()}
        if action == ("POST", "fleet"):
            if "instances" in document and "projects" not in document:
                added = self.generate(
                    int(document["instances"]),
                    int(document.get("zones", 1)),
                    int(document.get("projects", 1)),
                    str(document.get("environment", "lab")),
                    str(document.get("project_prefix", "mlinfra-fleet")),
                )
            else:
                added = self.load_fleet(document)
            return 200, {"added": added, "instances": self.fleet.count()}
        if action == ("GET", "fleet"):
            with self.fleet.lock:
                summary = {
                    name: {"zones": list(project.zones), "instances": sum(len(z) for z in project.instances.values())}
                    for name, project in self.fleet.projects.items()
                }
            return 200, {"projects": summary}
        return 404, error_body(404, "notFound", f"No emulator admin endpoint {http_method} {path}.")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, emulator: ComputeEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self, http_method: str) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""

        if split.path.startswith("/_emulator/"):
            try:
                status, document = emulator._admin(http_method, split.path, query, body)
            except (ValueError, TypeError, KeyError) as error:
                log.warning("rejected admin request %s %s: %s", http_method, split.path, error)
                status, document = 400, error_body(400, "invalid", f"Invalid admin request: {error}")
            else:
                log.info("admin request %s %s answered %d", http_method, split.path, status)
            self._send_json(status, document)
            return
        identity = emulator.tokens.respond(http_method, split.path, self.headers, body)
        if identity is not None:
            self._send_token_response(http_method, split.path, query, identity)
            return

        route, groups = _match_route(http_method, split.path)
        operation = route.operation if route else None
        project = groups[0] if groups else None
        zone = groups[1] if len(groups) > 1 else None
        outcome = emulator.faults.evaluate(http_method, split.path, operation, project, zone)

        delay = emulator.latency_s + outcome.latency_s
        if delay > 0:
            time.sleep(delay)

        status, document, headers = self._answer(
            route=route,
            groups=groups,
            http_method=http_method,
            path=split.path,
            query=query,
            body=body,
            outcome=outcome,
        )
        self._record_request(
            http_method=http_method,
            path=split.path,
            query=query,
            operation=operation,
            project=project,
            zone=zone,
            status=status,
        )

        if outcome.answer is not None and outcome.answer.disconnect:
            self.close_connection = True
            return
        if outcome.answer is not None and outcome.answer.malformed:
            payload = b'{"kind": "compute#instanceAggregatedList", "items": {"zones/'
            self._send_bytes(200, payload, {})
            return
        self._send_json(status, document, headers)

    def _send_token_response(self, http_method: str, path: str, query: dict[str, str], identity: TokenResponse) -> None:
        """Send a token endpoint's response, unless a fault rule for its operation replaces it."""
        emulator = self.server.emulator
        outcome = emulator.faults.evaluate(http_method, path, identity.operation, None, None)
        if outcome.latency_s > 0:
            time.sleep(outcome.latency_s)
        rule = outcome.answer
        if rule is not None and rule.status:
            message = rule.message or f"Fault injected into {identity.operation}."
            identity = TokenResponse(identity.operation, int(rule.status), rpc_error(int(rule.status), message), {})
        self._record_request(
            http_method=http_method,
            path=path,
            query=query,
            operation=identity.operation,
            project=None,
            zone=None,
            status=identity.status,
        )
        if isinstance(identity.document, str):
            payload = identity.document.encode()
        else:
            payload = json.dumps(identity.document, separators=(",", ":")).encode()
        self._send_bytes(identity.status, payload, identity.headers, identity.content_type)

    def _answer(
        self,
        *,
        route: Route | None,
        groups: tuple[str, ...],
        http_method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        outcome: Any,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        emulator = self.server.emulator
        if route is None:
            return (
                404,
                error_body(
                    404,
                    "notFound",
                    f"The URL {path} with method {http_method} is not part of the emulated Compute API.",
                ),
                {},
            )
        project = groups[0]
        rule = outcome.answer
        if rule is not None and rule.status:
            project_number = emulator.fleet.projects[project].number if project in emulator.fleet.projects else None
            headers = {"Retry-After": _format_seconds(rule.retry_after)} if rule.retry_after is not None else {}
            return int(rule.status), fault_error(rule, route.operation, project, project_number), headers
        if rule is not None:
            return 200, {}, {}

        request = ApiRequest(http_method, path, query, dict(self.headers.items()), body, *groups)
        try:
            selection_text = query.get("fields") or self.headers.get("X-Goog-FieldMask") or ""
            selection = _parse_field_mask_cached(selection_text)
            if route.response_type is not None:
                validate_field_mask(selection, route.response_type.pb().DESCRIPTOR, selection_text)
            handler: Callable[[ApiRequest, list[str]], dict[str, Any]] = getattr(emulator, route.handler)
            document = handler(request, outcome.unreachable_zones)
        except FieldMaskError as error:
            return 400, error_body(400, "invalidParameter", str(error)), {}
        except ApiError as error:
            return error.status, error_body(error.status, error.reason, error.message), error.headers
        return 200, apply_field_mask(document, selection, emulator._projection_memo(selection_text)), {}

    def _record_request(
        self,
        *,
        http_method: str,
        path: str,
        query: dict[str, str],
        operation: str | None,
        project: str | None,
        zone: str | None,
        status: int,
    ) -> None:
        """Add the request to the emulator's log."""
        self.server.emulator._record(
            {
                "time": time.time(),
                "method": http_method,
                "path": path,
                "query": query,
                "operation": operation,
                "project": project,
                "zone": zone,
                "status": status,
                "field_mask": query.get("fields") or self.headers.get("X-Goog-FieldMask"),
                "authorized": bool(self.headers.get("Authorization")),
                # The identity behind the token, for tokens this emulator issued. The token itself is never logged.
                "principal": self.server.emulator.tokens.principal_of(self.headers.get("Authorization")),
                "user_agent": self.headers.get("User-Agent", ""),
            }
        )

    def _send_json(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(document, separators=(",", ":")).encode(), headers or {})

    def _send_bytes(
        self, status: int, payload: bytes, headers: dict[str, str], content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


@functools.lru_cache(maxsize=64)
def _parse_field_mask_cached(text: str) -> Any:
    """Parse a field mask once per text; the projection memo relies on the parsed tree's identity."""
    return parse_field_mask(text)


def _match_route(http_method: str, path: str) -> tuple[Route | None, tuple[str, ...]]:
    for route in ROUTES:
        if route.http_method != http_method:
            continue
        match = route.pattern.match(path)
        if match:
            return route, match.groups()
    return None, ()


def _max_results(query: dict[str, str]) -> int:
    text = query.get("maxResults", "")
    if not text:
        return MAX_RESULTS
    try:
        value = int(text)
    except ValueError as error:
        raise invalid(f"Invalid value for field 'maxResults': '{text}'. Must be an integer.") from error
    if not 0 <= value <= MAX_RESULTS:
        raise invalid(f"Invalid value for field 'maxResults': '{text}'. Must be between 0 and {MAX_RESULTS}.")
    return value or MAX_RESULTS


def _listing_key(scope: str, filter_text: str) -> str:
    return hashlib.sha256(f"{scope}\n{filter_text}".encode()).hexdigest()[:12]


def _page_token(offset: int, scope: str, filter_text: str) -> str:
    raw = json.dumps({"offset": offset, "listing": _listing_key(scope, filter_text)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_offset(token: str | None, scope: str, filter_text: str) -> int:
    """Decode a page token; a token from another listing or filter is invalid, as in the API."""
    if not token:
        return 0
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(document["offset"])
        listing = document["listing"]
    except (ValueError, KeyError, TypeError) as error:
        raise invalid(f"Invalid value for field 'pageToken': '{token}'.") from error
    if listing != _listing_key(scope, filter_text) or offset < 0:
        raise invalid(
            f"Invalid value for field 'pageToken': '{token}'. The token belongs to another listing or filter."
        )
    return offset


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
