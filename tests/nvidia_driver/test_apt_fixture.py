"""Tests of the signed apt repository that the nvidia_driver Molecule scenarios serve."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

# Both fixture folders have a build_repo module, so each is imported by its package.
from tests.fixtures.nvidia_apt import build_repo

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and shutil.which("gpg") and shutil.which("gpgv")),
    reason="needs dpkg-deb, gpg and gpgv",
)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    return build_repo.build_repository(
        tmp_path_factory.mktemp("apt"), "debian12", "x86_64", ["570.172.08", "580.95.05"]
    )


def parse_packages(repo: Path) -> list[dict[str, str]]:
    stanzas = []
    for block in (repo / "Packages").read_text().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        stanzas.append(fields)
    return stanzas


def test_repository_layout(repository):
    assert repository.parts[-2:] == ("debian12", "x86_64")
    for name in ("Packages", "Packages.gz", "Release", "InRelease", "Release.gpg", "3bf863cc.pub"):
        assert (repository / name).is_file(), name


def test_packages_index_matches_debs(repository):
    stanzas = parse_packages(repository)

    assert len(stanzas) == 23
    for stanza in stanzas:
        deb = repository / stanza["Filename"]
        assert deb.is_file(), stanza["Filename"]
        assert stanza["SHA256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
        assert int(stanza["Size"]) == deb.stat().st_size


def test_branches_have_nvidia_names(repository):
    names_by_version: dict[str, set[str]] = {}
    for stanza in parse_packages(repository):
        names_by_version.setdefault(stanza["Version"], set()).add(stanza["Package"])

    assert "nvidia-fabricmanager-570" in names_by_version["570.172.08-1"]
    assert "nvidia-fabricmanager-580" in names_by_version["580.95.05-1"]
    for version in ("570.172.08-1", "580.95.05-1"):
        assert {"nvidia-kernel-open-dkms", "nvidia-driver-cuda", "libcuda1", "nvidia-smi"} <= names_by_version[version]


def test_dependencies_pin_exact_version(repository):
    libcuda = [s for s in parse_packages(repository) if s["Package"] == "libcuda1" and s["Version"] == "580.95.05-1"]

    assert libcuda[0]["Depends"] == "libnvidia-ptxjitcompiler1 (= 580.95.05-1)"


def test_fabric_managers_conflict(repository):
    managers = {s["Package"]: s for s in parse_packages(repository) if s["Package"].startswith("nvidia-fabricmanager-")}

    assert managers["nvidia-fabricmanager-570"]["Conflicts"] == "nvidia-fabricmanager-580"
    assert managers["nvidia-fabricmanager-580"]["Conflicts"] == "nvidia-fabricmanager-570"


def test_placeholder_dkms_not_nvidia(repository):
    dkms = [s for s in parse_packages(repository) if s["Package"] == "dkms"]

    assert len(dkms) == 1
    assert "nvidia" not in dkms[0]["Maintainer"].lower()


def test_release_lists_index_hashes(repository):
    release = (repository / "Release").read_text()

    for name in ("Packages", "Packages.gz"):
        digest = hashlib.sha256((repository / name).read_bytes()).hexdigest()
        assert f" {digest} {(repository / name).stat().st_size} {name}" in release


def test_inrelease_signed_by_exported_key(repository, tmp_path):
    keyring = tmp_path / "key.gpg"
    subprocess.run(
        ["gpg", "--batch", "--yes", "--dearmor", "--output", str(keyring), str(repository / "3bf863cc.pub")],
        check=True,
        capture_output=True,
    )

    inline = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(repository / "InRelease")], capture_output=True, check=False
    )
    detached = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(repository / "Release.gpg"), str(repository / "Release")],
        capture_output=True,
        check=False,
    )

    assert inline.returncode == 0, inline.stderr
    assert detached.returncode == 0, detached.stderr


def test_placeholder_nvidia_smi_fails_like_real(repository, tmp_path):
    deb = next(repository.glob("nvidia-smi_570.172.08-1_amd64.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)

    completed = subprocess.run(
        [str(tmp_path / "usr" / "bin" / "nvidia-smi")], capture_output=True, text=True, check=False
    )

    assert completed.returncode == 9
    assert "couldn't communicate with the NVIDIA driver" in completed.stdout
