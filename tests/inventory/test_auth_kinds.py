"""Each auth_kind that fetches a token does so for real, through google-auth, against the emulator.

The emulator replaces Google's token issuers: the OAuth 2 token endpoint of a
service account key, a VM's metadata server and the IAM credentials API. It
records the principal behind each Compute API call, so these tests check the
identity the inventory was read with, not only that some token was sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from lab.emulator import ComputeEmulator

from .conftest import assert_failed_with, emulator_config, isolated_env, run_inventory

READER = "reader@mlinfra-auth.iam.gserviceaccount.com"
INVENTORY_ACCOUNT = "inventory@mlinfra-auth.iam.gserviceaccount.com"
PROJECT = "mlinfra-auth-01"


@pytest.fixture
def fleet(emulator: ComputeEmulator) -> ComputeEmulator:
    emulator.generate(instances=2, zones=1, projects=1, environment="lab", project_prefix="mlinfra-auth")
    return emulator


def service_account_key(tmp_path: Path, emulator: ComputeEmulator, email: str = READER) -> Path:
    """Write a service account key, with a fresh RSA key, whose token_uri is the emulator's."""
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = {
        "type": "service_account",
        "project_id": "mlinfra-auth",
        "private_key_id": "1",
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": "1",
        "token_uri": f"{emulator.url}/token",
    }
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    return path


def listing_principals(emulator: ComputeEmulator) -> set[str | None]:
    return {entry["principal"] for entry in emulator.requests(operation="instances.aggregatedList")}


def test_service_account_key(fleet, tmp_path):
    key_file = service_account_key(tmp_path, fleet)
    config = emulator_config(fleet, [PROJECT], auth_kind="serviceaccount", service_account_file=str(key_file))

    run = run_inventory(tmp_path, config)

    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 2
    assert fleet.request_count(operation="oauth2.token") == 1
    assert listing_principals(fleet) == {f"serviceAccount:{READER}"}


def test_machine_account_from_metadata(fleet, tmp_path):
    # google-auth reads GCE_METADATA_HOST at import, in the ansible-inventory process.
    env = isolated_env(tmp_path, GCE_METADATA_HOST=fleet.url.removeprefix("http://"))
    config = emulator_config(fleet, [PROJECT], auth_kind="machineaccount")

    run = run_inventory(tmp_path, config, env=env)

    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 2
    assert fleet.request_count(operation="metadata.token") == 1
    assert listing_principals(fleet) == {"vm:lab-vm@mlinfra-lab.iam.gserviceaccount.com"}


def run_impersonation(fleet: ComputeEmulator, tmp_path: Path, iam_endpoint: str):
    """List the fleet as INVENTORY_ACCOUNT, impersonated by READER's key as the application default credentials."""
    env = isolated_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(service_account_key(tmp_path, fleet)))
    config = emulator_config(
        fleet,
        [PROJECT],
        auth_kind="impersonation",
        impersonate_service_account=INVENTORY_ACCOUNT,
        iam_endpoint=iam_endpoint,
    )
    return run_inventory(tmp_path, config, env=env)


def test_impersonation_through_iam(fleet, tmp_path):
    run = run_impersonation(fleet, tmp_path, fleet.url)

    assert run.returncode == 0, run.stderr
    assert len(run.hostvars) == 2
    [exchange] = fleet.requests(operation="iamcredentials.generateAccessToken")
    assert exchange["principal"] == f"serviceAccount:{READER}"
    assert exchange["path"] == f"/v1/projects/-/serviceAccounts/{INVENTORY_ACCOUNT}:generateAccessToken"
    assert listing_principals(fleet) == {f"impersonated:{INVENTORY_ACCOUNT} by serviceAccount:{READER}"}


def test_impersonation_denied(fleet, tmp_path):
    denial = f"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist): {READER}"
    fleet.add_fault(operation="iamcredentials.generateAccessToken", status=403, message=denial)

    run = run_impersonation(fleet, tmp_path, fleet.url)

    assert_failed_with(run, "auth_kind impersonation were rejected", "iam.serviceAccounts.getAccessToken")
    assert fleet.request_count(operation="instances.aggregatedList") == 0


def test_iam_endpoint_http_off_loopback(fleet, tmp_path):
    run = run_impersonation(fleet, tmp_path, "http://iam.example.internal")

    assert_failed_with(run, "Invalid iam_endpoint 'http://iam.example.internal'", "use https")
    assert fleet.request_count() == 0


def test_iam_endpoint_without_impersonation(fleet, tmp_path):
    config = emulator_config(fleet, [PROJECT], iam_endpoint=fleet.url)

    run = run_inventory(tmp_path, config)

    assert_failed_with(run, "Conflicting auth options: iam_endpoint is set but auth_kind is anonymous")
    assert fleet.request_count() == 0


def test_metadata_token_needs_header(fleet):
    # The real server rejects a token request without the header, so the
    # emulator must reject it too for the metadata test to mean anything.
    url = f"{fleet.url}/computeMetadata/v1/instance/service-accounts/default/token"

    assert requests.get(url, timeout=10).status_code == 403
    answer = requests.get(url, headers={"Metadata-Flavor": "Google"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["expires_in"] > 0
