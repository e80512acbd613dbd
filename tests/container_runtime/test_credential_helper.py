"""The metadata server credential helper, against a fake metadata server on 127.0.0.1.

The helper is the file the container_runtime role installs on GPU hosts.
GCE_METADATA_HOST points it at a local server, so no test contacts the real
metadata server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROLE_FILES = Path(__file__).resolve().parents[2] / "roles" / "container_runtime" / "files"
HELPER = ROLE_FILES / "docker-credential-gce-metadata"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105 - a URL path, not a secret


class FakeMetadataServer(ThreadingHTTPServer):
    """Serves a token, records each request's path and Metadata-Flavor header."""

    def __init__(self, status: int, body: dict | str):
        super().__init__(("127.0.0.1", 0), FakeMetadataHandler)
        self.status = status
        self.body = body
        self.requests: list[tuple[str, str | None]] = []


class FakeMetadataHandler(BaseHTTPRequestHandler):
    server: FakeMetadataServer

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Metadata-Flavor")))
        payload = self.server.body if isinstance(self.server.body, str) else json.dumps(self.server.body)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *_args):
        pass


@pytest.fixture
def metadata_server(request):
    status, body = request.param
    server = FakeMetadataServer(status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_helper(action: str, stdin: str, host: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GCE_METADATA_HOST=host)
    return subprocess.run(
        [sys.executable, str(HELPER), action],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "metadata_server",
    [(200, {"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"})],
    indirect=True,
)
def test_get_returns_token(metadata_server):
    host = f"127.0.0.1:{metadata_server.server_port}"
    result = run_helper("get", "us-central1-docker.pkg.dev\n", host)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ServerURL": "us-central1-docker.pkg.dev",
        "Username": "oauth2accesstoken",
        "Secret": "ya29.test-token",
    }
    assert metadata_server.requests == [(TOKEN_PATH, "Google")]


@pytest.mark.parametrize("metadata_server", [(500, {"error": "internal"}), (200, {"expires_in": 10})], indirect=True)
def test_get_fails_without_token(metadata_server):
    host = f"127.0.0.1:{metadata_server.server_port}"
    result = run_helper("get", "us-central1-docker.pkg.dev\n", host)
    assert result.returncode != 0
    assert host in result.stderr
    assert result.stdout == ""


def test_list_store_erase_need_no_server():
    # Port 9 (discard) on 127.0.0.1: any attempt to reach a server would fail the call.
    host = "127.0.0.1:9"
    assert json.loads(run_helper("list", "", host).stdout) == {}
    assert run_helper("store", '{"ServerURL": "x", "Username": "u", "Secret": "s"}', host).returncode == 0
    assert run_helper("erase", "x", host).returncode == 0


def test_unknown_action_fails():
    result = run_helper("rotate", "", "127.0.0.1:9")
    assert result.returncode == 2
    assert "usage" in result.stderr
