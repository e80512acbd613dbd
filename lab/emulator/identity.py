"""Token endpoints of the emulator, so every auth_kind can be tested offline.

Three issuers stand in for Google's: the OAuth 2 token endpoint that a
service account key's ``token_uri`` points to, the metadata server of a
Compute Engine VM (reached through ``GCE_METADATA_HOST``), and the IAM
credentials API's ``generateAccessToken`` for impersonation. Each token the
emulator issues is remembered with the principal it stands for, so tests can
check which identity a Compute API call was made as. Signatures are not
checked, because the emulator issues a token to any caller and only records the caller.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .faults import RPC_STATUS

# The service account of the emulated VM, which its metadata server issues tokens for.
DEFAULT_VM_ACCOUNT = "lab-vm@mlinfra-lab.iam.gserviceaccount.com"
TOKEN_LIFETIME_S = 3600

METADATA_PREFIX = "/computeMetadata/v1/"
_GENERATE_ACCESS_TOKEN = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$")
_METADATA_HEADERS = {"Metadata-Flavor": "Google"}


@dataclass(frozen=True)
class TokenResponse:
    """Response of a token endpoint, with the operation name that the request log shows."""

    operation: str
    status: int
    document: Any
    headers: dict[str, str]
    content_type: str = "application/json"


class TokenIssuer:
    """Issuer of access tokens that remembers the principal of each token."""

    def __init__(self, vm_account: str = DEFAULT_VM_ACCOUNT) -> None:
        self.vm_account = vm_account
        self._principals: dict[str, str] = {}
        self._lock = threading.Lock()

    def principal_of(self, authorization: str | None) -> str | None:
        """Return the principal of an ``Authorization: Bearer`` header, or None when absent or unknown."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            principal = self._principals.get(token)
        if principal is None:
            # google-cloud-compute makes google-auth sign a JWT with a service
            # account key instead of fetching a token. Google accepts such JWTs.
            issuer = _jwt_issuer(token)
            principal = f"serviceAccount:{issuer}" if issuer else None
        return principal

    def reset(self) -> None:
        with self._lock:
            self._principals.clear()

    def respond(self, http_method: str, path: str, headers: Any, body: bytes) -> TokenResponse | None:
        """Build the response to a token endpoint request, or return None for any other path."""
        if path == "/token" and http_method == "POST":
            return self._oauth2_token(body)
        if path.startswith(METADATA_PREFIX):
            return self._metadata(http_method, path.removeprefix(METADATA_PREFIX), headers)
        match = _GENERATE_ACCESS_TOKEN.match(path)
        if match and http_method == "POST":
            return self._generate_access_token(match.group(1), headers.get("Authorization"), body)
        return None

    def _issue(self, principal: str) -> str:
        token = f"emulator-{secrets.token_hex(12)}"
        with self._lock:
            self._principals[token] = principal
        return token

    def _oauth2_token(self, body: bytes) -> TokenResponse:
        # A service account key signs a JWT whose issuer is the account's email.
        form = {key: values[-1] for key, values in parse_qs(body.decode(errors="replace")).items()}
        email = _jwt_issuer(form.get("assertion", "")) or "unknown"
        token = self._issue(f"serviceAccount:{email}")
        document = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}
        return TokenResponse("oauth2.token", 200, document, {})

    def _metadata(self, http_method: str, key: str, headers: Any) -> TokenResponse:
        # The real server rejects requests without the header, so that a browser
        # or a proxy cannot fetch a VM's tokens.
        if headers.get("Metadata-Flavor") != "Google":
            message = "Missing Metadata-Flavor:Google header."
            return TokenResponse("metadata.get", 403, message, _METADATA_HEADERS, "text/html")
        if http_method != "GET":
            return TokenResponse("metadata.get", 405, "Method not allowed.", _METADATA_HEADERS, "text/html")
        account = key.removeprefix("instance/service-accounts/").split("/", 1)[0]
        if key.startswith("instance/service-accounts/") and account in ("default", self.vm_account):
            rest = key.removeprefix(f"instance/service-accounts/{account}").strip("/")
            if rest == "token":
                token = self._issue(f"vm:{self.vm_account}")
                document = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}
                return TokenResponse("metadata.token", 200, document, _METADATA_HEADERS)
            if rest == "":
                document = {
                    "aliases": ["default"],
                    "email": self.vm_account,
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                }
                return TokenResponse("metadata.get", 200, document, _METADATA_HEADERS)
            if rest == "email":
                return TokenResponse("metadata.get", 200, self.vm_account, _METADATA_HEADERS, "application/text")
        return TokenResponse("metadata.get", 404, "Not found.", _METADATA_HEADERS, "text/html")

    def _generate_access_token(self, target: str, authorization: str | None, body: bytes) -> TokenResponse:
        operation = "iamcredentials.generateAccessToken"
        caller = self.principal_of(authorization)
        if caller is None:
            return TokenResponse(operation, 401, rpc_error(401, "Request had invalid authentication credentials."), {})
        try:
            scopes = json.loads(body or b"{}").get("scope") or []
        except ValueError:
            return TokenResponse(operation, 400, rpc_error(400, "Invalid JSON payload received."), {})
        if not scopes:
            return TokenResponse(operation, 400, rpc_error(400, "Request contains an invalid argument: scope."), {})
        token = self._issue(f"impersonated:{target} by {caller}")
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + TOKEN_LIFETIME_S))
        return TokenResponse(operation, 200, {"accessToken": token, "expireTime": expiry}, {})


def _jwt_issuer(assertion: str) -> str | None:
    """Return the ``iss`` claim of a JWT, read without checking its signature."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


def rpc_error(status: int, message: str) -> dict[str, Any]:
    """Build an error document in the google.rpc.Status JSON form that the IAM credentials API uses."""
    return {"error": {"code": status, "message": message, "status": RPC_STATUS.get(status, "UNKNOWN")}}
