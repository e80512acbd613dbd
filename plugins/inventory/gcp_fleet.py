# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: gcp_fleet
short_description: Compute Engine instances of one environment as an inventory
version_added: "0.1.0"
description:
  - Lists the VMs of one or more Google Cloud projects through the Compute Engine API
    (one C(aggregatedList) page chain per project, or one C(instances.list) chain per zone of O(zones),
    in parallel) and adds them as hosts,
    with C(gce_*) host variables that include the expected GPUs of each VM.
  - Every inventory declares its O(environment). Instances whose C(env) label differs are left out
    and reported in one warning, or fail the inventory with O(environment_mismatch=error).
  - Hosts join the groups C(env_<env>), C(pool_<pool>), C(role_<role>), C(zone_<zone>) and C(gpu_<accelerator type>)
    from their labels, zone and GPUs. In these and in group names from O(keyed_groups) and O(groups),
    every character outside C([A-Za-z0-9_]) becomes C(_).
  - Hosts are added in order of instance id, so two runs over the same fleet give identical inventories.
  - Option names follow M(google.cloud.gcp_compute) where they overlap.
  - The config file name must end in C(gcp_fleet.yml) or C(gcp_fleet.yaml).
author:
  - mlinfra contributors
requirements:
  - google-cloud-compute >= 1.57
  - google-auth >= 2.63
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  # Declared again only to give it a type, which the inventory_cache fragment leaves out.
  cache_prefix:
    description: Prefix of the cache file names; several inventories may share one cache directory.
    type: str
    default: ansible_inventory_
    env:
      - name: ANSIBLE_CACHE_PLUGIN_PREFIX
      - name: ANSIBLE_INVENTORY_CACHE_PLUGIN_PREFIX
    ini:
      - section: defaults
        key: fact_caching_prefix
      - section: inventory
        key: cache_prefix
  plugin:
    description: Marks the file as a config of this plugin.
    type: str
    required: true
    choices: [mlinfra.platform.gcp_fleet]
  environment:
    description:
      - The environment this inventory describes, such as C(prod), C(dev) or C(lab).
      - Only instances whose C(env) label equals it become hosts. Every host gets it as C(gce_inventory_environment).
    type: str
    required: true
  environment_mismatch:
    description:
      - What to do with instances whose C(env) label is missing or differs from O(environment).
      - V(warn) leaves them out and prints one warning with their count; V(error) fails the inventory.
    type: str
    choices: [warn, error]
    default: warn
  projects:
    description: IDs of the Google Cloud projects to list instances from.
    type: list
    elements: str
    required: true
  zones:
    description:
      - Zones to list, such as C(us-central1-a). Empty lists every zone.
      - Without zones, each project is read with one C(aggregatedList) page chain. With zones, each zone
        is read with its own C(instances.list) page chain, in parallel with the others, so the API sends
        only those zones' instances.
    type: list
    elements: str
    default: []
  filters:
    description:
      - Compute API list filter expressions, sent to the server and joined with AND,
        for example C(labels.pool = train-a100) or C(scheduling.provisioningModel = SPOT).
      - See U(https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList) for the syntax.
    type: list
    elements: str
    default: []
  statuses:
    description:
      - Instance states to list, sent to the server as a filter. An empty list lists every state.
      - Stopped (C(TERMINATED)) or suspended VMs are not reachable over SSH, hence the default.
    type: list
    elements: str
    default: [RUNNING]
  hostnames:
    description:
      - Sources of the host name, tried in order; the first that gives a value wins.
      - V(name) is the instance name, V(private_ip) the first interface's internal address,
        V(public_ip) its external NAT address, and V(labels.<key>) the value of a label.
      - An instance for which no source gives a value is skipped with a warning.
    type: list
    elements: str
    default: [name]
  auth_kind:
    description:
      - How to authenticate. V(application) uses application default credentials,
        V(serviceaccount) a service account key from O(service_account_file) or O(service_account_contents),
        V(impersonation) impersonates O(impersonate_service_account) with the application default credentials,
        V(machineaccount) uses the credentials of the VM the controller runs on,
        and V(accesstoken) uses O(access_token).
      - V(anonymous) sends no credentials. It is allowed only with an O(api_endpoint) on a loopback address,
        for a local Compute API emulator.
    type: str
    choices: [application, serviceaccount, impersonation, machineaccount, accesstoken, anonymous]
    default: application
    env:
      - name: GCP_AUTH_KIND
  service_account_file:
    description: Path of a service account JSON key, for O(auth_kind=serviceaccount).
    type: path
    env:
      - name: GCP_SERVICE_ACCOUNT_FILE
  service_account_contents:
    description: Contents of a service account JSON key, for O(auth_kind=serviceaccount).
    type: str
    env:
      - name: GCP_SERVICE_ACCOUNT_CONTENTS
  impersonate_service_account:
    description: Email of the service account to impersonate, for O(auth_kind=impersonation).
    type: str
  iam_endpoint:
    description:
      - Base URL of the IAM credentials API that issues the impersonated token, for O(auth_kind=impersonation)
        through a private endpoint or against a local emulator. The default is Google's public endpoint.
      - Plain C(http) is allowed only on a loopback address.
    type: str
    env:
      - name: GCP_FLEET_IAM_ENDPOINT
  access_token:
    description: OAuth 2 access token, for O(auth_kind=accesstoken).
    type: str
    env:
      - name: GCP_ACCESS_TOKEN
  scopes:
    description: OAuth 2 scopes to request.
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/compute.readonly']
    env:
      - name: GCP_SCOPES
  api_endpoint:
    description:
      - Base URL of the Compute API, for a private endpoint or a local emulator such as C(http://127.0.0.1:9471).
        The default is Google's public endpoint.
      - The environment variable E(GCP_FLEET_API_ENDPOINT), when set and not empty, takes precedence over this option,
        so one config file can target an emulator on another port.
      - Plain C(http) is allowed only on a loopback address.
    type: str
  retries:
    description:
      - How many times to retry a request that failed with 429, 500, 502, 503 or 504, a connection error,
        a timeout or a malformed response.
      - The wait before a retry is the server's C(Retry-After) when present, otherwise an exponential backoff
        from O(retry_backoff); it never exceeds O(retry_max_delay).
    type: int
    default: 5
  retry_backoff:
    description: Wait before the first retry without C(Retry-After), in seconds; it doubles with each further retry.
    type: float
    default: 1.0
  retry_max_delay:
    description: Longest wait before any retry, in seconds, including waits asked for by C(Retry-After).
    type: float
    default: 60.0
  timeout:
    description: Timeout of each API request, in seconds.
    type: float
    default: 60.0
  max_workers:
    description: How many projects (or, with O(zones), zones) to list at the same time.
    type: int
    default: 4
  page_size:
    description: Instances per result page (C(maxResults)); the API allows at most 500.
    type: int
    default: 500
  strict_permissions:
    description:
      - When true, a project that the credentials may not list (HTTP 403) fails the inventory.
      - When false, such a project is skipped with a warning and the other projects are still listed.
    type: bool
    default: true
  allow_partial:
    description:
      - When false, a listing in which the API reports unreachable zones fails the inventory,
        because the inventory would be silently incomplete.
      - When true, the instances of the reachable zones are used and the unreachable zones are named in a warning.
      - With O(zones), a zone whose listing still fails with a server error or a timeout after the retries
        counts as unreachable.
    type: bool
    default: false
  redact_metadata_keys:
    description:
      - Regular expression (Python syntax, searched anywhere in the key) for metadata keys whose values are
        replaced with C(<redacted>) in C(gce_metadata).
      - The default matches keys that name a password, passphrase, secret, token, credential,
        or a private, API or access key.
    type: str
    default: (?i)(passw(or)?d|passphrase|secret|token|credential|private[-_]?key|api[-_]?key|access[-_]?key)
notes:
  - Each host gets C(gce_name), C(gce_id) (a string), C(gce_project), C(gce_zone), C(gce_region),
    C(gce_machine_type), C(gce_machine_family), C(gce_status), C(gce_labels), C(gce_metadata),
    C(gce_private_ip), C(gce_public_ip), C(gce_service_account), C(gce_scheduling), C(gce_gpu_type),
    C(gce_gpu_count), C(gce_gpu_model), C(gce_nvswitch), C(gce_env), C(gce_pool), C(gce_role) and
    C(gce_inventory_environment). C(ansible_host) defaults to the private IP; O(compose) can override it.
  - GPUs come from the instance's C(guestAccelerators), or for machine types with built-in GPUs
    (a2, a3 and g2 families) from the GPU table in C(plugins/module_utils/gpu_catalog.py).
  - The plugin asks the API only for the fields it uses (C(X-Goog-FieldMask)), so C(compose) and C(keyed_groups)
    can use only the C(gce_*) variables, not other fields of the Instance resource.
  - A failed listing fails the whole inventory with one message that names the project and the cause;
    the plugin never returns a partial inventory as success, except for projects skipped by
    O(strict_permissions=false) and zones accepted by O(allow_partial=true), both of which it reports in a warning.
"""

EXAMPLES = r"""
# inventories/prod/prod.gcp_fleet.yml: the production fleet, GPU hosts only
plugin: mlinfra.platform.gcp_fleet
environment: prod
projects: [mlinfra-prod]
filters:
  - labels.managed-by = terraform
keyed_groups:
  - key: gce_machine_family
    prefix: family
  - key: gce_labels['team'] | default('none')
    prefix: team
groups:
  nvswitch_hosts: gce_nvswitch
compose:
  ansible_user: "'ansible'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: .cache/inventory
cache_timeout: 300

---
# inventories/lab/lab.gcp_fleet.yml: the local lab, listing a Compute API emulator
plugin: mlinfra.platform.gcp_fleet
environment: lab
projects: [mlinfra-lab]
api_endpoint: http://127.0.0.1:9471
auth_kind: anonymous
compose:
  ansible_host: gce_name
  ansible_connection: "'community.docker.docker'"

---
# Hosts reached through IAP: name hosts by label, fall back to the private IP
plugin: mlinfra.platform.gcp_fleet
environment: dev
projects: [mlinfra-dev-a, mlinfra-dev-b]
auth_kind: serviceaccount
service_account_file: ~/.config/mlinfra/inventory-reader.json
hostnames: [labels.hostname, private_ip]
statuses: [RUNNING, STOPPING]
strict_permissions: false
compose:
  ansible_host: gce_name
  ansible_ssh_common_args: >-
    '-o ProxyCommand="gcloud compute start-iap-tunnel %h 22 --listen-on-stdin --zone=' ~ gce_zone ~ '"'
"""

import collections  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleParserError, AnsibleUndefinedVariable  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402
from ansible.utils.vars import combine_vars  # noqa: E402

from ansible_collections.mlinfra.platform.plugins.module_utils import gce_inventory  # noqa: E402

ENDPOINT_ENV_VAR = "GCP_FLEET_API_ENDPOINT"
PUBLIC_ENDPOINT = "https://compute.googleapis.com"
USER_AGENT = "mlinfra-gcp-fleet/1.0"
CACHE_FORMAT = 3

# A failed parse is kept this long. The `auto` inventory plugin hands the same
# source to this plugin a second time in the same run, and then gets the first
# error again instead of a second round of API requests and retries.
_FAILURE_MEMORY_S = 120.0
_recent_failures: dict[str, tuple[int, float, AnsibleParserError]] = {}
_recent_failures_lock = threading.Lock()

_google: types.SimpleNamespace | None = None
_google_lock = threading.Lock()


def _google_libraries() -> types.SimpleNamespace:
    """Import the Google client libraries on first use.

    The import costs about 1 s of CPU and 70 MB (measured on a 2-core x86_64
    machine), and Ansible loads every enabled inventory plugin for every
    command. So the import waits until a parse has to call the API, which a
    run from a warm cache never does.
    """
    global _google  # noqa: PLW0603 (a cache of modules, filled once)
    with _google_lock:
        if _google is not None:
            return _google
        try:
            import google.auth  # noqa: PLC0415
            import google.auth.exceptions  # noqa: PLC0415
            import google.auth.transport.requests  # noqa: PLC0415
            import requests  # noqa: PLC0415
            import requests.adapters  # noqa: PLC0415
            from google.api_core import exceptions as api_exceptions  # noqa: PLC0415
            from google.api_core.gapic_v1 import client_info  # noqa: PLC0415
            from google.auth import compute_engine, impersonated_credentials  # noqa: PLC0415
            from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

            InstancesClient, compute = _import_instances_client()
            from google.oauth2 import credentials as oauth2_credentials  # noqa: PLC0415
            from google.oauth2 import service_account  # noqa: PLC0415
            from google.protobuf import json_format  # noqa: PLC0415
        except ImportError as error:
            raise AnsibleParserError(
                "The gcp_fleet inventory plugin needs google-cloud-compute and google-auth on the controller: "
                f"{error}. Install them with: pip install -r requirements.txt"
            ) from None

        class PartialSuccessAdapter(requests.adapters.HTTPAdapter):
            """Transport adapter that adds ``returnPartialSuccess=true`` to aggregated instance lists.

            With the parameter, a zone that fails is reported in ``unreachables``
            instead of failing the whole listing, so that allow_partial can decide.
            """

            def send(self, request: Any, **kwargs: Any) -> Any:
                if "/aggregated/instances" in request.path_url and "returnPartialSuccess=" not in request.url:
                    request.url += ("&" if "?" in request.url else "?") + "returnPartialSuccess=true"
                return super().send(request, **kwargs)

        request_fields = compute.AggregatedListInstancesRequest.pb().DESCRIPTOR.fields_by_name
        _google = types.SimpleNamespace(
            auth=google.auth,
            auth_exceptions=google.auth.exceptions,
            auth_requests=google.auth.transport.requests,
            requests=requests,
            api_exceptions=api_exceptions,
            client_info=client_info,
            compute_engine=compute_engine,
            impersonated_credentials=impersonated_credentials,
            AnonymousCredentials=AnonymousCredentials,
            InstancesClient=InstancesClient,
            compute=compute,
            oauth2_credentials=oauth2_credentials,
            service_account=service_account,
            json_format=json_format,
            PartialSuccessAdapter=PartialSuccessAdapter,
            request_has_partial_success="return_partial_success" in request_fields,
        )
        return _google


def _import_instances_client() -> tuple[Any, Any]:
    """Import google-cloud-compute's InstancesClient and message types, and nothing else of the package.

    google/cloud/compute_v1/__init__.py imports all of its about 100 service
    clients, which costs about 45 MB and 0.8 s (measured with
    google-cloud-compute 1.57 on a 2-core x86_64 machine). When the package is
    not imported yet, a module object for it is registered without running
    that file, and the two submodules are imported. The registration is then
    removed, so a later ``import google.cloud.compute_v1`` elsewhere in the
    process still gets the complete package.
    """
    package_name = "google.cloud.compute_v1"
    registered = False
    if package_name not in sys.modules:
        spec = importlib.util.find_spec(package_name)
        if spec is not None and spec.submodule_search_locations:
            sys.modules[package_name] = importlib.util.module_from_spec(spec)
            registered = True
    try:
        from google.cloud.compute_v1.services.instances import InstancesClient  # noqa: PLC0415
        from google.cloud.compute_v1.types import compute  # noqa: PLC0415
    finally:
        if registered:
            del sys.modules[package_name]
    return InstancesClient, compute


class ProjectError(Exception):
    """A project that could not be listed; ``kind`` names the cause, for strict_permissions."""

    def __init__(self, project: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.project = project
        self.kind = kind
        self.message = message


@dataclass
class Settings:
    """The validated options of one parse."""

    environment: str
    mismatch: str
    projects: list[str]
    zones: list[str]
    filter_text: str
    hostnames: list[str]
    endpoint: str | None
    auth_kind: str
    scopes: list[str]
    retries: int
    retry_backoff: float
    retry_max_delay: float
    timeout: float
    max_workers: int
    page_size: int
    strict_permissions: bool
    allow_partial: bool
    redact: re.Pattern[str]

    def cache_identity(self) -> str:
        """Return a digest of every option that changes what the API returns."""
        identity = [
            CACHE_FORMAT,
            self.projects,
            sorted(self.zones),
            self.filter_text,
            self.endpoint,
            self.redact.pattern,
            gce_inventory.FIELD_MASK,
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]


@dataclass
class ProjectListing:
    """The instances of one project, as cached."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unreachable_zones: list[str] = field(default_factory=list)
    # Why the project was skipped (strict_permissions is false), kept so that
    # runs from the cache report it again.
    skipped: str | None = None


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "mlinfra.platform.gcp_fleet"

    def __init__(self) -> None:
        super().__init__()
        self._simple_expressions: dict[str, Callable[[dict[str, Any]], Any] | None] = {}

    def verify_file(self, path: str) -> bool:
        """Accept only files whose name ends in gcp_fleet.yml or gcp_fleet.yaml."""
        return super().verify_file(path) and path.endswith(("gcp_fleet.yml", "gcp_fleet.yaml"))

    @staticmethod
    def _sanitize_group_name(name: str) -> str:
        return gce_inventory.sanitize_group_name(name)

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        inventory_identity = id(getattr(inventory, "__wrapped__", inventory))
        with _recent_failures_lock:
            remembered = _recent_failures.get(path)
        if remembered and remembered[0] == inventory_identity and time.monotonic() - remembered[1] < _FAILURE_MEMORY_S:
            raise remembered[2]
        try:
            self._parse(path, cache)
        except AnsibleParserError as error:
            with _recent_failures_lock:
                _recent_failures[path] = (inventory_identity, time.monotonic(), error)
            raise

    def _parse(self, path: str, cache: bool) -> None:
        self._read_config_data(path)
        settings = self._settings()

        cache_key = f"{self.get_cache_key(path)}_{settings.cache_identity()}"
        use_cache = bool(self.get_option("cache"))
        listings = None
        cache_needs_update = use_cache and not cache
        if use_cache and cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
            else:
                listings = self._listings_from_cache(cached)
                cache_needs_update = listings is None
        if listings is None:
            listings = self._fetch(settings)
        if cache_needs_update:
            self._cache[cache_key] = self._cache_entry(listings)
        self._populate(listings, settings, path)

    # Options ---------------------------------------------------------------------

    def _settings(self) -> Settings:
        try:
            return self._validated_settings()
        except gce_inventory.InvalidOption as error:
            raise AnsibleParserError(str(error)) from None

    def _validated_settings(self) -> Settings:
        invalid = gce_inventory.InvalidOption
        environment = str(self.get_option("environment") or "").strip()
        if not environment:
            raise invalid(
                "The environment option is empty: set it to the env label of this inventory's hosts, "
                "for example 'prod'."
            )
        projects = [str(project).strip() for project in self.get_option("projects") or []]
        if not projects or not all(projects):
            raise invalid("The projects option is empty: list the IDs of the projects to read instances from.")
        if len(set(projects)) != len(projects):
            raise invalid(f"The projects option lists a project twice: {projects}.")

        endpoint = os.environ.get(ENDPOINT_ENV_VAR) or self.get_option("api_endpoint")
        if endpoint:
            source = ENDPOINT_ENV_VAR if os.environ.get(ENDPOINT_ENV_VAR) else "api_endpoint"
            try:
                endpoint = gce_inventory.validate_endpoint(str(endpoint))
            except invalid as error:
                raise invalid(f"{error} (from {source})") from None
        auth_kind = self.get_option("auth_kind")
        self._check_auth_options(auth_kind, endpoint)

        numbers = {
            "retries": (self.get_option("retries"), 0, 100),
            "retry_backoff": (self.get_option("retry_backoff"), 0, 3600),
            "retry_max_delay": (self.get_option("retry_max_delay"), 0, 3600),
            "timeout": (self.get_option("timeout"), 0.001, 3600),
            "max_workers": (self.get_option("max_workers"), 1, 64),
            "page_size": (self.get_option("page_size"), 1, 500),
        }
        for name, (value, low, high) in numbers.items():
            if not low <= value <= high:
                raise invalid(f"Invalid {name} {value}: use a value from {low} to {high}.")

        pattern = self.get_option("redact_metadata_keys")
        try:
            redact = re.compile(pattern)
        except re.error as error:
            raise invalid(f"Invalid redact_metadata_keys {pattern!r}: {error}.") from None

        statuses = gce_inventory.validate_statuses(self.get_option("statuses") or [])
        return Settings(
            environment=environment,
            mismatch=self.get_option("environment_mismatch"),
            projects=projects,
            zones=[str(zone) for zone in self.get_option("zones") or []],
            filter_text=gce_inventory.build_filter(statuses, self.get_option("filters") or []),
            hostnames=gce_inventory.validate_hostnames(self.get_option("hostnames") or []),
            endpoint=endpoint,
            auth_kind=auth_kind,
            scopes=list(self.get_option("scopes") or []),
            retries=numbers["retries"][0],
            retry_backoff=float(numbers["retry_backoff"][0]),
            retry_max_delay=float(numbers["retry_max_delay"][0]),
            timeout=float(numbers["timeout"][0]),
            max_workers=numbers["max_workers"][0],
            page_size=numbers["page_size"][0],
            strict_permissions=bool(self.get_option("strict_permissions")),
            allow_partial=bool(self.get_option("allow_partial")),
            redact=redact,
        )

    def _check_auth_options(self, auth_kind: str, endpoint: str | None) -> None:
        """Reject options of another auth_kind, so that a typo cannot select the wrong identity."""
        invalid = gce_inventory.InvalidOption
        owners = {
            "service_account_file": "serviceaccount",
            "service_account_contents": "serviceaccount",
            "impersonate_service_account": "impersonation",
            "iam_endpoint": "impersonation",
            "access_token": "accesstoken",
        }
        for option, owner in owners.items():
            if self.get_option(option) and auth_kind != owner:
                raise invalid(
                    f"Conflicting auth options: {option} is set but auth_kind is {auth_kind}; "
                    f"set auth_kind: {owner} or remove {option}."
                )
        if auth_kind == "serviceaccount":
            has_file = bool(self.get_option("service_account_file"))
            has_contents = bool(self.get_option("service_account_contents"))
            if has_file == has_contents:
                raise invalid(
                    "auth_kind serviceaccount needs exactly one of service_account_file and service_account_contents."
                )
        if auth_kind == "accesstoken" and not self.get_option("access_token"):
            raise invalid("auth_kind accesstoken needs access_token (or the GCP_ACCESS_TOKEN environment variable).")
        if auth_kind == "impersonation" and not self.get_option("impersonate_service_account"):
            raise invalid(
                "auth_kind impersonation needs impersonate_service_account, the email of the account to impersonate."
            )
        if auth_kind == "anonymous" and not (endpoint and gce_inventory.is_loopback_url(endpoint)):
            raise invalid(
                "auth_kind anonymous is allowed only with an api_endpoint on a loopback address (a local emulator), "
                f"got {endpoint or 'the public endpoint'}; use another auth_kind for real projects."
            )

    # Credentials ---------------------------------------------------------------------

    def _iam_token_url(self, target: str) -> str | None:
        """URL of generateAccessToken for the target account on O(iam_endpoint); None for Google's own."""
        endpoint = self.get_option("iam_endpoint")
        if not endpoint:
            return None
        try:
            base = gce_inventory.validate_endpoint(str(endpoint), field="iam_endpoint")
        except gce_inventory.InvalidOption as error:
            raise AnsibleParserError(str(error)) from None
        return f"{base}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"

    def _credentials(self, settings: Settings) -> Any:
        """Build and refresh the credentials once, so that credential errors surface before any listing."""
        google = _google_libraries()
        kind = settings.auth_kind
        if kind == "anonymous":
            return google.AnonymousCredentials()
        try:
            if kind == "accesstoken":
                return google.oauth2_credentials.Credentials(self.get_option("access_token"), scopes=settings.scopes)
            if kind == "serviceaccount":
                credentials = google.service_account.Credentials.from_service_account_info(
                    self._service_account_info(), scopes=settings.scopes
                )
            elif kind == "machineaccount":
                # google-auth finds the metadata server through GCE_METADATA_HOST, which tests point at the emulator.
                credentials = google.compute_engine.Credentials(scopes=settings.scopes)
            elif kind == "impersonation":
                target = self.get_option("impersonate_service_account")
                source, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
                credentials = google.impersonated_credentials.Credentials(
                    source_credentials=source,
                    target_principal=target,
                    target_scopes=settings.scopes,
                    iam_endpoint_override=self._iam_token_url(target),
                )
            else:
                credentials, _project = google.auth.default(scopes=settings.scopes)
            credentials.refresh(google.auth_requests.Request())
            return credentials
        except google.auth_exceptions.DefaultCredentialsError as error:
            raise AnsibleParserError(
                f"No usable credentials for auth_kind {kind}: {gce_inventory.one_line(to_native(error))} "
                "Run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS, "
                "or choose another auth_kind."
            ) from None
        except google.auth_exceptions.RefreshError as error:
            raise AnsibleParserError(
                f"The credentials of auth_kind {kind} were rejected when fetching an access token: "
                f"{gce_inventory.one_line(to_native(error))}. Check that the key or account is valid and enabled."
            ) from None
        except (google.auth_exceptions.TransportError, google.requests.exceptions.RequestException) as error:
            raise AnsibleParserError(
                f"Cannot reach the token endpoint for auth_kind {kind}: {gce_inventory.one_line(to_native(error))}. "
                "Check the network, or the token_uri of the key."
            ) from None

    def _service_account_info(self) -> dict[str, Any]:
        path = self.get_option("service_account_file")
        if path:
            try:
                with open(path, encoding="utf-8") as stream:
                    text = stream.read()
            except OSError as error:
                raise AnsibleParserError(
                    f"Cannot read service_account_file {path}: {error.strerror}. Check the path and its permissions."
                ) from None
            origin = f"service_account_file {path}"
        else:
            text = self.get_option("service_account_contents")
            origin = "service_account_contents"
        try:
            info = json.loads(text)
        except ValueError as error:
            raise AnsibleParserError(
                f"Invalid {origin}: not JSON ({error}). Use the JSON key file that IAM created for the account."
            ) from None
        required = ("type", "client_email", "private_key", "token_uri")
        missing = [key for key in required if not isinstance(info, dict) or key not in info]
        if missing or info.get("type") != "service_account":
            raise AnsibleParserError(
                f"Invalid {origin}: not a service account key "
                f"(type must be service_account; missing keys: {', '.join(missing) or 'none'})."
            )
        return info

    # Listing -------------------------------------------------------------------------

    def _fetch(self, settings: Settings) -> dict[str, ProjectListing]:
        """List every project (or every zone of the zones option) in parallel.

        Raises one error that names the first project that failed, unless the
        failure is a permission error and strict_permissions is false, which
        skips that project.
        """
        credentials = self._credentials(settings)
        # Without a zones option, one aggregatedList chain covers a project.
        # With one, each zone is its own instances.list chain, which sends
        # only those zones' instances and runs in parallel with the others.
        parts = [(project, zone) for project in settings.projects for zone in settings.zones or [None]]
        workers = min(settings.max_workers, len(parts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gcp-fleet") as pool:
            futures = {
                (project, zone): pool.submit(self._list_zone, project, zone, credentials, settings)
                if zone
                else pool.submit(self._list_project, project, credentials, settings)
                for project, zone in parts
            }
        listings = {project: ProjectListing() for project in settings.projects}
        failures: dict[str, ProjectError] = {}
        for (project, _zone), future in futures.items():
            try:
                part = future.result()
            except ProjectError as error:
                failures.setdefault(project, error)
                continue
            listings[project].records.extend(part.records)
            listings[project].unreachable_zones.extend(part.unreachable_zones)

        skipped = {
            project: error
            for project, error in failures.items()
            if error.kind == "permission" and not settings.strict_permissions
        }
        fatal = [error for project, error in failures.items() if project not in skipped]
        if fatal:
            message = fatal[0].message
            if len(fatal) > 1:
                others = ", ".join(f"{error.project} ({error.kind})" for error in fatal[1:])
                message += f" Other projects failed too: {others}."
            raise AnsibleParserError(message)
        for project, error in skipped.items():
            listings[project] = ProjectListing(skipped=error.message)
        return listings

    def _client(self, credentials: Any, settings: Settings) -> Any:
        google = _google_libraries()
        client_options = {"api_endpoint": settings.endpoint} if settings.endpoint else None
        return google.InstancesClient(
            credentials=credentials,
            transport="rest",
            client_options=client_options,
            client_info=google.client_info.ClientInfo(user_agent=USER_AGENT),
        )

    def _list_project(self, project: str, credentials: Any, settings: Settings) -> ProjectListing:
        """Follow one project's aggregatedList page chain and convert every instance once."""
        google = _google_libraries()
        client = self._client(credentials, settings)
        request = google.compute.AggregatedListInstancesRequest(
            project=project, filter=settings.filter_text, max_results=settings.page_size
        )
        if google.request_has_partial_success:
            request.return_partial_success = True
        else:
            _add_partial_success_parameter(client, google)
        metadata = [("x-goog-fieldmask", gce_inventory.FIELD_MASK)]

        def fetch_page() -> Any:
            pager = client.aggregated_list(request=request, retry=None, timeout=settings.timeout, metadata=metadata)
            return next(iter(pager.pages))

        listing = ProjectListing()
        unreachable: set[str] = set()
        while True:
            page = self._call(fetch_page, project, settings)
            raw_page = google.compute.InstanceAggregatedList.pb(page)
            for scope, scoped in raw_page.items.items():
                if scoped.HasField("warning") and scoped.warning.code == "UNREACHABLE":
                    unreachable.add(scope)
                for instance in scoped.instances:
                    listing.records.append(gce_inventory.instance_hostvars(instance, project, settings.redact))
            unreachable.update(raw_page.unreachables)
            if not raw_page.next_page_token:
                break
            request.page_token = raw_page.next_page_token
        listing.unreachable_zones = sorted(gce_inventory.short_name(scope) for scope in unreachable)
        return listing

    def _list_zone(self, project: str, zone: str, credentials: Any, settings: Settings) -> ProjectListing:
        """Follow one zone's instances.list page chain and convert every instance once.

        With allow_partial, a zone that stays unavailable or times out after
        the retries is reported as unreachable instead of failing the listing.
        """
        google = _google_libraries()
        client = self._client(credentials, settings)
        request = google.compute.ListInstancesRequest(
            project=project, zone=zone, filter=settings.filter_text, max_results=settings.page_size
        )
        metadata = [("x-goog-fieldmask", gce_inventory.LIST_FIELD_MASK)]

        def fetch_page() -> Any:
            pager = client.list(request=request, retry=None, timeout=settings.timeout, metadata=metadata)
            return next(iter(pager.pages))

        listing = ProjectListing()
        while True:
            try:
                page = self._call(fetch_page, project, settings, zone=zone)
            except ProjectError as error:
                if settings.allow_partial and error.kind in ("unavailable", "timeout"):
                    # As the API does for an unreachable zone, leave out all of its instances.
                    return ProjectListing(unreachable_zones=[zone])
                raise
            raw_page = google.compute.InstanceList.pb(page)
            for instance in raw_page.items:
                listing.records.append(gce_inventory.instance_hostvars(instance, project, settings.redact))
            if not raw_page.next_page_token:
                return listing
            request.page_token = raw_page.next_page_token

    def _call(self, call: Callable[[], Any], project: str, settings: Settings, zone: str | None = None) -> Any:
        """Run one API call, retrying throttling, server errors, transport errors and malformed responses."""
        google = _google_libraries()
        endpoint = settings.endpoint or PUBLIC_ENDPOINT
        attempt = 0
        while True:
            try:
                return call()
            except google.api_exceptions.GoogleAPICallError as error:
                if error.code not in (429, 500, 502, 503, 504) or attempt >= settings.retries:
                    raise _project_error(project, endpoint, error, attempt + 1, zone=zone) from None
                headers = getattr(getattr(error, "response", None), "headers", None) or {}
                retry_after = gce_inventory.parse_retry_after(headers.get("Retry-After"))
                cause = f"HTTP {error.code}"
            except (google.requests.exceptions.RequestException, google.auth_exceptions.TransportError) as error:
                if attempt >= settings.retries:
                    raise _transport_error(
                        project, endpoint, settings, error, attempts=attempt + 1, google=google, zone=zone
                    ) from None
                retry_after = None
                cause = type(error).__name__
            except google.json_format.ParseError as error:
                if attempt >= settings.retries:
                    detail = gce_inventory.one_line(str(error))[:200]
                    raise ProjectError(
                        project,
                        "malformed",
                        f"The Compute API at {endpoint} returned a malformed response for {_scope(project, zone)} "
                        f"after {attempt + 1} attempt(s): {detail}. Check the endpoint, or a proxy in between.",
                    ) from None
                retry_after = None
                cause = "malformed response"
            delay = gce_inventory.retry_delay(attempt, settings.retry_backoff, settings.retry_max_delay, retry_after)
            if attempt == 0:
                # With the defaults, retrying an endpoint that is down takes most of a minute, so warn first.
                self.display.warning(
                    f"gcp_fleet: {cause} listing {_scope(project, zone)} at {endpoint}; retrying up to "
                    f"{settings.retries} times (the retries and retry_backoff options set how long)."
                )
            self.display.vvv(
                f"gcp_fleet: {cause} listing {_scope(project, zone)}; "
                f"retry {attempt + 1} of {settings.retries} in {delay:.1f}s"
            )
            time.sleep(delay)
            attempt += 1

    # Cache -----------------------------------------------------------------------------

    @staticmethod
    def _cache_entry(listings: dict[str, ProjectListing]) -> str:
        """Encode listings as one JSON text, with each repeated value stored once (gce_inventory.RecordPacker).

        One JSON text per entry: the jsonfile cache then decodes a single
        string instead of running its decoder hooks on every host's dicts.
        """
        packer = gce_inventory.RecordPacker()
        projects = {
            project: {
                "records": [packer.pack(record) for record in listing.records],
                "unreachable_zones": listing.unreachable_zones,
                "skipped": listing.skipped,
            }
            for project, listing in listings.items()
        }
        entry = {"format": CACHE_FORMAT, "values": packer.values, "shapes": packer.shapes, "projects": projects}
        return json.dumps(entry, separators=(",", ":"))

    @staticmethod
    def _listings_from_cache(cached: Any) -> dict[str, ProjectListing] | None:
        """Rebuild listings from a cache entry, or return None for an entry of another format or a damaged one."""
        try:
            cached = json.loads(cached)
        except (TypeError, ValueError):
            return None
        if not isinstance(cached, dict) or cached.get("format") != CACHE_FORMAT:
            return None
        try:
            return {
                project: ProjectListing(
                    records=gce_inventory.unpack_records(cached["values"], cached["shapes"], entry["records"]),
                    unreachable_zones=entry["unreachable_zones"],
                    skipped=entry["skipped"],
                )
                for project, entry in cached["projects"].items()
            }
        except (AttributeError, IndexError, KeyError, TypeError):
            return None

    # Population ----------------------------------------------------------------------------

    def _populate(self, listings: dict[str, ProjectListing], settings: Settings, path: str) -> None:
        for project, listing in listings.items():
            if listing.skipped:
                self.display.warning(
                    f"Skipped project {project} because strict_permissions is false: {listing.skipped}"
                )
                continue
            # Zones that the zones option leaves out do not make the inventory partial.
            unreachable = [zone for zone in listing.unreachable_zones if not settings.zones or zone in settings.zones]
            if unreachable:
                zones = ", ".join(unreachable)
                if not settings.allow_partial:
                    raise AnsibleParserError(
                        f"The Compute API could not reach zones {zones} of project {project}, "
                        "so the inventory would be incomplete. Retry later, or set allow_partial: true "
                        "to accept the reachable zones."
                    )
                self.display.warning(
                    f"Project {project}: zones {zones} were unreachable; "
                    "their instances are missing (allow_partial is true)."
                )
            if not listing.records:
                self.display.warning(
                    f"Project {project} has no instances matching filter {settings.filter_text or '(none)'}."
                )

        # The records move out of the listings and are released one by one
        # while hosts are added, so that they and Ansible's copies of them do
        # not take memory at the same time.
        records = [record for listing in listings.values() for record in listing.records]
        for listing in listings.values():
            listing.records = []
        records.sort(key=gce_inventory.sort_key)
        if settings.zones:
            records = [record for record in records if record["gce_zone"] in settings.zones]
        records = self._guard_environment(records, settings)

        strict = self.get_option("strict")
        compose = self.get_option("compose") or {}
        groups = self.get_option("groups") or {}
        keyed_groups = self.get_option("keyed_groups") or []
        nameless: list[dict[str, Any]] = []
        duplicates: list[tuple[str, dict[str, Any]]] = []
        unknown_shapes: collections.Counter[str] = collections.Counter()
        seen: set[str] = set()
        known_groups: set[str] = set()
        values = gce_inventory.SharedValues(self._origin_tag())
        inventory_data = self._inventory_data(values)

        for index, record in enumerate(records):
            records[index] = None
            hostname = gce_inventory.select_hostname(record, settings.hostnames)
            if hostname is None:
                nameless.append(record)
                continue
            if hostname in seen:
                duplicates.append((hostname, record))
                continue
            seen.add(hostname)
            if gce_inventory.has_unknown_gpu_shape(record):
                unknown_shapes[record["gce_machine_type"]] += 1

            self.inventory.add_host(hostname)
            variables = values.host_variables(record)
            variables["gce_inventory_environment"] = values.shared(settings.environment)
            if variables["gce_private_ip"]:
                variables["ansible_host"] = variables["gce_private_ip"]
            for name, value in variables.items():
                if inventory_data is not None and type(value) in values.final_types:
                    inventory_data.set_variable(hostname, name, value)
                else:
                    self.inventory.set_variable(hostname, name, value)

            for group in gce_inventory.default_groups(variables):
                if group not in known_groups:
                    self.inventory.add_group(group)
                    known_groups.add(group)
                self.inventory.add_child(group, hostname)

            variables["inventory_hostname"] = hostname
            variables["inventory_hostname_short"] = hostname.split(".", 1)[0]
            self._compose_vars(compose, variables, hostname, strict)
            self._add_host_to_composed_groups(groups, variables, hostname, strict=strict, fetch_hostvars=False)
            self._add_host_to_keyed_groups(keyed_groups, variables, hostname, strict=strict, fetch_hostvars=False)

        self._warn_skipped(nameless, duplicates, unknown_shapes, settings)
        if not seen:
            self.display.warning(
                f"The inventory {path} has no hosts: "
                f"no instance of projects {', '.join(settings.projects)} passed the filters."
            )

    def _origin_tag(self) -> Callable[[Any], Any] | None:
        """Return the function that tags a value with this source's origin, as ansible-core would, or None.

        ansible-core 2.19 wraps the inventory passed to a plugin in a proxy that
        tags every variable value with one origin per source, copying each str,
        int and dict. Values that already carry that origin are kept as they
        are, so hosts can share them (see gce_inventory.SharedValues).
        """
        # NOTE: _default_origin is a private attribute of ansible-core 2.19's
        # inventory proxy. Where it is missing, values are only deduplicated,
        # and ansible-core tags a copy of each one per host as before.
        origin = getattr(self.inventory, "_default_origin", None)
        tag = getattr(origin, "tag", None)
        return tag if callable(tag) else None

    def _inventory_data(self, values: gce_inventory.SharedValues) -> Any:
        """Return the inventory behind ansible-core's proxy when final values may skip the proxy, else None.

        For a plugin that does not trust its values as templates, the proxy's
        only work on a value that is None, a bool, or tagged with the source's
        origin by ``values`` is to check it and pass it on unchanged. Skipping
        that check, with each host's dicts tagged by ``values``, cut the CPU
        time of adding 10,000 hosts from 1.9 s to 1.3 s (ansible-core 2.19.14,
        the fleet of benchmarks/inventory/run.py, a 2-core x86_64 machine).
        """
        if self.trusted_by_default or not values.tags_values:
            return None
        return getattr(self.inventory, "__wrapped__", None)

    def _guard_environment(self, records: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
        """Leave out instances of other environments; warn once, or fail with environment_mismatch: error."""
        kept = [record for record in records if record["gce_env"] == settings.environment]
        if len(kept) == len(records):
            return kept
        others = collections.Counter(
            record["gce_env"] or "(no env label)" for record in records if record["gce_env"] != settings.environment
        )
        first = next(record for record in records if record["gce_env"] != settings.environment)
        count = sum(others.values())
        summary = ", ".join(f"{env}: {number}" for env, number in sorted(others.items()))
        where = f"first: {first['gce_name']} in {first['gce_project']}/{first['gce_zone']}"
        if settings.mismatch == "error":
            raise AnsibleParserError(
                f"Found {count} instance(s) whose env label is not {settings.environment!r}, the environment this "
                f"inventory declares ({summary}; {where}). Fix the instances' env labels or the inventory's projects "
                "and filters (environment_mismatch is error)."
            )
        self.display.warning(
            f"Left out {count} instance(s) whose env label is not {settings.environment!r}, the environment this "
            f"inventory declares ({summary}; {where})."
        )
        return kept

    # Constructed features ---------------------------------------------------------------

    def _simple_expression(self, expression: Any) -> Callable[[dict[str, Any]], Any] | None:
        if not isinstance(expression, str):
            return None
        if expression not in self._simple_expressions:
            self._simple_expressions[expression] = gce_inventory.compile_simple_expression(expression)
        return self._simple_expressions[expression]

    def _compose(self, template: Any, variables: dict[str, Any], disable_lookups: Any = ...) -> Any:
        """Evaluate a compose or keyed_groups expression.

        A bare variable reference (``gce_labels['pool']``) or a string literal
        is looked up directly, and anything else goes through Ansible's
        templating. ansible-core 2.19 compiles every expression anew for every
        host: two keyed groups over 10,000 hosts cost about 11 s more that way
        (measured on a 2-core x86_64 machine, about 0.6 ms per evaluation).
        """
        evaluate = None if self.get_option("use_extra_vars") else self._simple_expression(template)
        if evaluate is None:
            return super()._compose(template, variables)
        try:
            return evaluate(variables)
        except gce_inventory.UndefinedReference as error:
            raise AnsibleUndefinedVariable(str(error)) from None

    def _compose_vars(self, compose: dict[str, Any], variables: dict[str, Any], hostname: str, strict: bool) -> None:
        """Set each compose variable; later entries, groups and keyed_groups see earlier results."""
        for name, expression in compose.items():
            try:
                value = self._compose(expression, variables)
            except Exception as error:  # any templating error; strict decides
                if strict:
                    raise AnsibleParserError(f"Could not set {name} for host {hostname}: {to_native(error)}") from None
                continue
            self.inventory.set_variable(hostname, name, value)
            variables[name] = value

    def _add_host_to_composed_groups(
        self, groups: Any, variables: dict[str, Any], host: str, strict: bool = False, fetch_hostvars: bool = True
    ) -> None:
        """Add the host to each group of ``groups`` whose conditional is true.

        A conditional that is a bare reference to a boolean is read directly;
        others go through Ansible's templating, for its exact semantics.
        """
        if not groups or not isinstance(groups, dict):
            return
        if fetch_hostvars:
            variables = combine_vars(variables, self.inventory.get_host(host).get_vars())
        for group_name, conditional in groups.items():
            result = None
            evaluate = self._simple_expression(conditional)
            if evaluate is not None:
                try:
                    value = evaluate(variables)
                except gce_inventory.UndefinedReference:
                    value = None
                if isinstance(value, bool):
                    result = value
            if result is None:
                self.templar.available_variables = variables
                try:
                    result = self.templar.evaluate_conditional(conditional)
                except Exception as error:  # any templating error; strict decides
                    if strict:
                        raise AnsibleParserError(
                            f"Could not add host {host} to group {group_name}: {to_native(error)}"
                        ) from None
                    continue
            if result:
                name = self.inventory.add_group(self._sanitize_group_name(group_name))
                self.inventory.add_child(name, host)

    def _warn_skipped(
        self,
        nameless: list[dict[str, Any]],
        duplicates: list[tuple[str, dict[str, Any]]],
        unknown_shapes: collections.Counter[str],
        settings: Settings,
    ) -> None:
        if nameless:
            names = ", ".join(
                f"{record['gce_name']} ({record['gce_project']}/{record['gce_zone']})" for record in nameless[:5]
            )
            more = f" and {len(nameless) - 5} more" if len(nameless) > 5 else ""
            self.display.warning(
                f"Skipped {len(nameless)} instance(s) with no usable host name from hostnames {settings.hostnames}: "
                f"{names}{more}. Add 'name' as the last hostnames entry to always get a name."
            )
        if duplicates:
            names = ", ".join(
                f"{hostname} (id {record['gce_id']} in {record['gce_project']}/{record['gce_zone']})"
                for hostname, record in duplicates[:5]
            )
            self.display.warning(
                f"Skipped {len(duplicates)} instance(s) whose host name is already taken by an instance with a lower "
                f"id: {names}. Use hostnames that are unique across projects, such as private_ip."
            )
        if unknown_shapes:
            shapes = ", ".join(f"{shape} ({number})" for shape, number in sorted(unknown_shapes.items()))
            self.display.warning(
                f"The GPU table in plugins/module_utils/gpu_catalog.py does not know machine types {shapes}; "
                "their gce_gpu_* variables say no GPU. Add the machine types to the table."
            )


def _add_partial_success_parameter(client: Any, google: types.SimpleNamespace) -> None:
    """Send returnPartialSuccess through the client's HTTP session.

    google-cloud-compute 1.57 lacks the field in AggregatedListInstancesRequest
    although the API accepts it, so an adapter adds it to the URL.
    """
    # NOTE: this reaches into the REST transport's private _session (an
    # AuthorizedSession). Where it is missing, the parameter is not sent, so
    # an unreachable zone fails the listing instead of being reported.
    session = getattr(client.transport, "_session", None)
    if isinstance(session, google.requests.Session):
        adapter = google.PartialSuccessAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)


def _api_message(error: Any) -> str:
    """Return the API's own error message, without the method and URL that google-api-core puts in front."""
    try:
        message = error.response.json()["error"]["message"]
    except (AttributeError, KeyError, TypeError, ValueError):
        message = getattr(error, "message", "") or str(error)
    return gce_inventory.one_line(str(message))


def _scope(project: str, zone: str | None) -> str:
    return f"project {project}" if zone is None else f"zone {zone} of project {project}"


def _project_error(project: str, endpoint: str, error: Any, attempts: int, zone: str | None = None) -> ProjectError:
    """Turn a Compute API error into one actionable line that names the project (and zone)."""
    message = _api_message(error)
    scope = _scope(project, zone)
    reasons = {str(item.get("reason")) for item in getattr(error, "errors", None) or [] if isinstance(item, dict)}
    reasons.add(str(getattr(error, "reason", None)))
    if error.code == 403 and reasons & {"accessNotConfigured", "SERVICE_DISABLED"}:
        return ProjectError(
            project,
            "api_disabled",
            f"The Compute Engine API is not enabled in project {project}: enable compute.googleapis.com there "
            f"(gcloud services enable compute.googleapis.com --project {project}) or remove the project from projects.",
        )
    if error.code == 403:
        return ProjectError(
            project,
            "permission",
            f"Permission denied listing instances in {scope}: {message}. Grant the credentials "
            "roles/compute.viewer on the project, or set strict_permissions: false to skip projects they cannot read.",
        )
    if error.code == 404 and zone is None:
        return ProjectError(
            project,
            "not_found",
            f"Project {project} was not found by the Compute API at {endpoint}: {message}. "
            "Check the project ID in projects.",
        )
    if error.code == 404:
        return ProjectError(
            project,
            "not_found",
            f"Zone {zone} of project {project} was not found by the Compute API at {endpoint}: {message}. "
            "Check the project ID in projects and the zone names in zones.",
        )
    if error.code == 401:
        return ProjectError(
            project,
            "unauthenticated",
            f"The Compute API at {endpoint} rejected the credentials for {scope}: {message}. "
            "Check auth_kind and its credentials.",
        )
    if error.code == 400:
        return ProjectError(
            project,
            "invalid",
            f"The Compute API rejected the listing request for {scope} as invalid: {message}. "
            "Check filters and statuses.",
        )
    return ProjectError(
        project,
        "unavailable",
        f"Listing instances in {scope} failed after {attempts} attempt(s) with HTTP {error.code}: {message}. "
        "The API is throttling or unavailable; retry later or raise retries.",
    )


def _transport_error(
    project: str,
    endpoint: str,
    settings: Settings,
    error: Exception,
    *,
    attempts: int,
    google: types.SimpleNamespace,
    zone: str | None = None,
) -> ProjectError:
    scope = _scope(project, zone)
    if isinstance(error, google.requests.exceptions.Timeout):
        return ProjectError(
            project,
            "timeout",
            f"Listing instances in {scope} at {endpoint} timed out after {settings.timeout:g}s, "
            f"{attempts} attempt(s). Raise timeout, or check the endpoint.",
        )
    cause = gce_inventory.one_line(to_native(error))
    # urllib3 wraps the socket error in a long text with the full URL; the errno part is what helps.
    socket_error = re.search(r"\[Errno -?\d+\] [^'\")\]]+", cause)
    if socket_error:
        cause = socket_error.group(0).strip()
    elif len(cause) > 200:
        cause = cause[:200] + "..."
    source = f" (from {ENDPOINT_ENV_VAR})" if os.environ.get(ENDPOINT_ENV_VAR) else ""
    return ProjectError(
        project,
        "unreachable",
        f"Cannot reach the Compute API at {endpoint}{source} for {scope} after {attempts} attempt(s): "
        f"{cause}. Check api_endpoint and that the endpoint is up.",
    )
