"""Unit tests of the gcp_fleet plugin class with a fake option source instead of a config file."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
import requests
import yaml
from ansible.errors import AnsibleParserError
from google.api_core import exceptions

from ansible_collections.mlinfra.platform.plugins.inventory import gcp_fleet

DEFAULTS = {
    name: spec.get("default")
    for name, spec in yaml.safe_load(gcp_fleet.DOCUMENTATION)["options"].items()
    if name != "plugin"
}


@pytest.fixture
def plugin(monkeypatch):
    """An InventoryModule whose get_option reads a plain dict, like the lab's config."""
    monkeypatch.delenv("GCP_FLEET_API_ENDPOINT", raising=False)
    module = gcp_fleet.InventoryModule()
    module._options = dict(
        DEFAULTS,
        environment="lab",
        projects=["mlinfra-lab"],
        api_endpoint="http://127.0.0.1:9471/",
        auth_kind="anonymous",
        use_extra_vars=False,
    )
    module.get_option = lambda name, hostvars=None: module._options[name]
    module.display = mock.Mock()
    return module


def test_lab_settings(plugin):
    settings = plugin._settings()
    assert settings.environment == "lab"
    assert settings.endpoint == "http://127.0.0.1:9471"
    assert settings.filter_text == "(status = RUNNING)"
    assert settings.hostnames == ["name"]
    assert settings.retries == 5
    assert settings.page_size == 500
    assert settings.strict_permissions is True
    assert settings.allow_partial is False


def test_endpoint_environment_variable_wins(plugin, monkeypatch):
    monkeypatch.setenv("GCP_FLEET_API_ENDPOINT", "http://127.0.0.1:9999")
    assert plugin._settings().endpoint == "http://127.0.0.1:9999"


def test_invalid_endpoint_from_environment_named(plugin, monkeypatch):
    monkeypatch.setenv("GCP_FLEET_API_ENDPOINT", "http://10.1.2.3:80")
    with pytest.raises(AnsibleParserError) as raised:
        plugin._settings()
    assert "plain http is allowed only on a loopback address" in str(raised.value)
    assert "(from GCP_FLEET_API_ENDPOINT)" in str(raised.value)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"environment": " "}, "The environment option is empty"),
        ({"projects": []}, "The projects option is empty"),
        ({"projects": ["a-project", "a-project"]}, "lists a project twice"),
        ({"hostnames": ["name", "hostname"]}, "Invalid hostnames entry 'hostname'"),
        ({"statuses": ["RUNNIG"]}, "Invalid statuses entry 'RUNNIG'"),
        ({"retries": -1}, "Invalid retries -1"),
        ({"page_size": 501}, "Invalid page_size 501"),
        ({"max_workers": 0}, "Invalid max_workers 0"),
        ({"redact_metadata_keys": "("}, "Invalid redact_metadata_keys"),
        ({"access_token": "t"}, "Conflicting auth options: access_token is set but auth_kind is anonymous"),
        ({"auth_kind": "application", "service_account_file": "/k.json"}, "service_account_file is set but auth_kind"),
        (
            {"auth_kind": "serviceaccount", "service_account_file": "/k.json", "service_account_contents": "{}"},
            "exactly one of service_account_file and service_account_contents",
        ),
        ({"auth_kind": "serviceaccount"}, "exactly one of service_account_file"),
        ({"auth_kind": "accesstoken"}, "auth_kind accesstoken needs access_token"),
        ({"auth_kind": "impersonation"}, "needs impersonate_service_account"),
        ({"api_endpoint": None}, "auth_kind anonymous is allowed only with an api_endpoint on a loopback address"),
        ({"api_endpoint": "https://compute.example.com"}, "got https://compute.example.com"),
    ],
)
def test_invalid_options(plugin, options, fragment):
    plugin._options.update(options)
    with pytest.raises(AnsibleParserError) as raised:
        plugin._settings()
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_verify_file_suffix(plugin, tmp_path):
    for name, expected in (
        ("lab.gcp_fleet.yml", True),
        ("gcp_fleet.yaml", True),
        ("lab.gcp_compute.yml", False),
        ("lab.yml", False),
    ):
        path = tmp_path / name
        path.write_text("plugin: mlinfra.platform.gcp_fleet\n")
        assert plugin.verify_file(str(path)) is expected, name


def test_service_account_contents_checked(plugin):
    plugin._options.update(auth_kind="serviceaccount", service_account_contents="not json")
    with pytest.raises(AnsibleParserError, match="Invalid service_account_contents: not JSON"):
        plugin._service_account_info()
    plugin._options["service_account_contents"] = json.dumps({"type": "service_account", "client_email": "x"})
    with pytest.raises(AnsibleParserError, match="missing keys: private_key, token_uri"):
        plugin._service_account_info()


def api_error(cls, message, reason=None):
    errors = [{"reason": reason, "message": message}] if reason else []
    return cls(message, errors=errors)


@pytest.mark.parametrize(
    ("error", "kind", "fragment"),
    [
        (
            api_error(exceptions.Forbidden, "Compute Engine API has not been used", "accessNotConfigured"),
            "api_disabled",
            "The Compute Engine API is not enabled in project p-1",
        ),
        (
            api_error(exceptions.Forbidden, "Required 'compute.instances.list' permission", "forbidden"),
            "permission",
            "Permission denied listing instances in project p-1: Required 'compute.instances.list' permission",
        ),
        (
            api_error(exceptions.NotFound, "The resource 'projects/p-1' was not found"),
            "not_found",
            "Project p-1 was not found",
        ),
        (api_error(exceptions.Unauthorized, "Invalid credentials"), "unauthenticated", "rejected the credentials"),
        (api_error(exceptions.BadRequest, "Invalid value for field 'filter'"), "invalid", "Check filters and statuses"),
        (
            api_error(exceptions.ServiceUnavailable, "The service is currently unavailable."),
            "unavailable",
            "failed after 6 attempt(s) with HTTP 503",
        ),
    ],
)
def test_project_error_classification(error, kind, fragment):
    failure = gcp_fleet._project_error("p-1", "http://127.0.0.1:9471", error, 6)
    assert failure.kind == kind
    assert fragment in failure.message
    assert "p-1" in failure.message


def test_transport_errors():
    google = gcp_fleet._google_libraries()
    settings = SimpleNamespace(timeout=2.0)
    timeout = gcp_fleet._transport_error(
        "p-1", "http://127.0.0.1:9", settings, requests.exceptions.ReadTimeout("slow"), attempts=3, google=google
    )
    assert timeout.kind == "timeout"
    assert "timed out after 2s, 3 attempt(s)" in timeout.message
    connection_refused = gcp_fleet._transport_error(
        "p-1", "http://127.0.0.1:9", settings, requests.exceptions.ConnectionError("refused"), attempts=1, google=google
    )
    assert connection_refused.kind == "unreachable"
    assert (
        "Cannot reach the Compute API at http://127.0.0.1:9 for project p-1 after 1 attempt(s): refused"
        in connection_refused.message
    )


def test_call_retries_with_retry_after(plugin, monkeypatch):
    sleeps = []
    monkeypatch.setattr(gcp_fleet.time, "sleep", sleeps.append)
    response = mock.Mock(headers={"Retry-After": "3"})
    failures = [exceptions.TooManyRequests("slow down", response=response), exceptions.InternalServerError("oops")]

    def call():
        if failures:
            raise failures.pop(0)
        return "page"

    settings = plugin._settings()
    assert plugin._call(call, "mlinfra-lab", settings) == "page"
    assert sleeps[0] == 3.0
    assert 1.0 <= sleeps[1] <= 3.0  # backoff: 1 s doubled once, with up to 50 % jitter


def test_call_gives_up_after_retries(plugin, monkeypatch):
    monkeypatch.setattr(gcp_fleet.time, "sleep", lambda _seconds: None)
    plugin._options["retries"] = 2
    calls = []

    def call():
        calls.append(1)
        raise exceptions.ServiceUnavailable("down")

    with pytest.raises(gcp_fleet.ProjectError) as raised:
        plugin._call(call, "mlinfra-lab", plugin._settings())
    assert len(calls) == 3
    assert "failed after 3 attempt(s) with HTTP 503" in raised.value.message


def test_call_does_not_retry_permission_errors(plugin, monkeypatch):
    monkeypatch.setattr(gcp_fleet.time, "sleep", lambda _seconds: pytest.fail("no retry expected"))

    def call():
        raise exceptions.Forbidden("Required 'compute.instances.list' permission")

    with pytest.raises(gcp_fleet.ProjectError) as raised:
        plugin._call(call, "mlinfra-lab", plugin._settings())
    assert raised.value.kind == "permission"


def record(name, env, instance_id):
    return {"gce_name": name, "gce_env": env, "gce_id": instance_id, "gce_project": "p", "gce_zone": "z"}


def test_environment_guard_warns_once(plugin):
    records = [record("a", "lab", "1"), record("b", "dev", "2"), record("c", None, "3"), record("d", "dev", "4")]
    kept = plugin._guard_environment(records, plugin._settings())
    assert [entry["gce_name"] for entry in kept] == ["a"]
    plugin.display.warning.assert_called_once()
    message = plugin.display.warning.call_args.args[0]
    assert "Left out 3 instance(s)" in message
    assert "(no env label): 1, dev: 2" in message
    assert "first: b in p/z" in message


def test_environment_guard_error_mode(plugin):
    plugin._options["environment_mismatch"] = "error"
    with pytest.raises(AnsibleParserError, match="Found 1 instance"):
        plugin._guard_environment([record("a", "lab", "1"), record("b", "prod", "2")], plugin._settings())


def test_cache_entry_round_trip(plugin):
    listings = {
        "p": gcp_fleet.ProjectListing(
            records=[record("a", "lab", "1"), dict(record("b", "lab", "2"), gce_labels={"env": "lab"})],
            unreachable_zones=["z"],
        ),
        "q": gcp_fleet.ProjectListing(skipped="Permission denied listing instances in q"),
    }
    text = plugin._cache_entry(listings)
    restored = plugin._listings_from_cache(text)
    assert restored["p"].records == listings["p"].records
    assert restored["p"].unreachable_zones == ["z"]
    assert restored["q"].records == []
    assert restored["q"].skipped == "Permission denied listing instances in q"
    # Both records' project comes from one entry of the value table.
    assert restored["p"].records[0]["gce_project"] is restored["p"].records[1]["gce_project"]


def test_cache_entry_of_other_format_ignored(plugin):
    assert plugin._listings_from_cache(json.dumps({"format": 0})) is None
    assert plugin._listings_from_cache({"not": "text"}) is None
    assert plugin._listings_from_cache("not json") is None


def test_damaged_cache_entry_ignored(plugin):
    entry = json.loads(plugin._cache_entry({"p": gcp_fleet.ProjectListing(records=[record("a", "lab", "1")])}))
    entry["values"] = entry["values"][:2]
    assert plugin._listings_from_cache(json.dumps(entry)) is None
    del entry["shapes"]
    assert plugin._listings_from_cache(json.dumps(entry)) is None


def test_cache_identity_changes_with_query(plugin):
    first = plugin._settings().cache_identity()
    plugin._options["filters"] = ["labels.pool = a"]
    assert plugin._settings().cache_identity() != first
    plugin._options["filters"] = []
    plugin._options["hostnames"] = ["private_ip"]
    # Host naming is applied after the cache, so it shares the entry.
    assert plugin._settings().cache_identity() == first
