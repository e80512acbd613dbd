"""The local stand-in for NVIDIA's toolkit repository: layout, signature and packages.

The Molecule scenario installs from this repository, so a broken build would
show up there as an apt error far from its cause. These checks run the
builder for real (dpkg-deb, gpg) and read its output with dpkg-deb and gpgv.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

# Both fixture folders have a build_repo module, so each is imported by its package.
from tests.fixtures.nvidia_toolkit_apt import build_repo

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia_toolkit_apt"

pytestmark = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and shutil.which("gpg") and shutil.which("gpgv")),
    reason="dpkg-deb, gpg and gpgv are needed to build and check the repository",
)

PACKAGES = (
    "libnvidia-container1",
    "libnvidia-container-tools",
    "nvidia-container-toolkit-base",
    "nvidia-container-toolkit",
)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> dict:
    return build_repo.build_repository(tmp_path_factory.mktemp("apt"), ["1.17.8-1", "1.18.1-1"], "amd64")


def parse_index(text: str) -> list[dict[str, str]]:
    stanzas = []
    for block in text.strip().split("\n\n"):
        stanzas.append(dict(line.split(": ", 1) for line in block.splitlines()))
    return stanzas


def test_layout_matches_nvidia(repository):
    base = Path(repository["base"])
    assert base.name == "libnvidia-container"
    assert (base / "gpgkey").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    repo = base / "stable" / "deb" / "amd64"
    for name in ("Packages", "Packages.gz", "Release", "InRelease", "Release.gpg"):
        assert (repo / name).is_file(), f"{name} is missing"


def test_release_signature_verifies(repository, tmp_path):
    base = Path(repository["base"])
    repo = Path(repository["repository"])
    keyring = tmp_path / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--dearmor", "--output", str(keyring), str(base / "gpgkey")], check=True)
    for command in (
        ["gpgv", "--keyring", str(keyring), str(repo / "InRelease")],
        ["gpgv", "--keyring", str(keyring), str(repo / "Release.gpg"), str(repo / "Release")],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


def test_release_hashes_match_indexes(repository):
    repo = Path(repository["repository"])
    release = (repo / "Release").read_text()
    for name in ("Packages", "Packages.gz"):
        digest = hashlib.sha256((repo / name).read_bytes()).hexdigest()
        assert f" {digest} " in release, f"Release lacks the SHA256 of {name}"
    assert gzip.decompress((repo / "Packages.gz").read_bytes()).decode() == (repo / "Packages").read_text()


def test_index_lists_each_package_per_version(repository):
    stanzas = parse_index((Path(repository["repository"]) / "Packages").read_text())
    listed = sorted((stanza["Package"], stanza["Version"]) for stanza in stanzas)
    assert listed == sorted((name, version) for name in PACKAGES for version in ("1.17.8-1", "1.18.1-1"))
    toolkit = next(s for s in stanzas if s["Package"] == "nvidia-container-toolkit" and s["Version"] == "1.17.8-1")
    assert toolkit["Depends"] == "nvidia-container-toolkit-base (= 1.17.8-1), libnvidia-container-tools (= 1.17.8-1)"


def test_index_sizes_and_hashes_match_debs(repository):
    repo = Path(repository["repository"])
    for stanza in parse_index((repo / "Packages").read_text()):
        data = (repo / stanza["Filename"]).read_bytes()
        assert int(stanza["Size"]) == len(data)
        assert stanza["SHA256"] == hashlib.sha256(data).hexdigest()


def deb_files(deb: Path) -> set[str]:
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].lstrip(".") for line in listing.splitlines()}


def test_base_package_contents_per_version(repository):
    repo = Path(repository["repository"])
    old = deb_files(repo / "nvidia-container-toolkit-base_1.17.8-1_amd64.deb")
    new = deb_files(repo / "nvidia-container-toolkit-base_1.18.1-1_amd64.deb")
    common = ("/usr/bin/nvidia-ctk", "/usr/bin/nvidia-container-runtime", "/etc/nvidia-container-runtime/config.toml")
    for path in common:
        assert path in old
        assert path in new
    assert "/usr/lib/systemd/system/nvidia-cdi-refresh.service" not in old
    assert "/usr/lib/systemd/system/nvidia-cdi-refresh.service" in new
    assert "/usr/lib/systemd/system/nvidia-cdi-refresh.path" in new


def test_standin_runtime_runs_runc(repository, tmp_path):
    repo = Path(repository["repository"])
    deb = repo / "nvidia-container-toolkit-base_1.17.8-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(tmp_path)], check=True)
    runtime = (tmp_path / "usr" / "bin" / "nvidia-container-runtime").read_text()
    assert 'exec runc "$@"' in runtime
    ctk = tmp_path / "usr" / "bin" / "nvidia-ctk"
    version = subprocess.run([str(ctk), "--version"], capture_output=True, text=True, check=True).stdout
    assert "1.17.8" in version


def test_invalid_version_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"invalid toolkit version '1\.17'"):
        build_repo.build_repository(tmp_path, ["1.17"], "amd64")
