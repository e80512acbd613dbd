"""galaxy.yml builds the collection, the tarball installs offline, and its content runs by full name.

The tarball is built with ansible-galaxy from the checkout and installed into
a temporary collections path, together with its dependencies from the
`ansible` bundle in the venv (Galaxy is not reachable). The last test runs
collection_playbook.yml from that path only, through the installed
gcp_fleet inventory plugin reading a local Compute API emulator, against one
throwaway systemd host container with the lab's simulated nvidia-smi.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.emulator import ComputeEmulator
from lab.fakes.gpu_spec import build_gpu_spec

from .conftest import COLLECTION, REPO_ROOT, ROLES, clean_env, read_yaml, run, tool

GALAXY = read_yaml(REPO_ROOT / "galaxy.yml")

# Top-level entries a built collection may contain; anything else is a path
# build_ignore should leave out, or content to add here on purpose.
ALLOWED_TOP_LEVEL = {
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "CHANGELOG.rst",
    "requirements.txt",
    "changelogs",
    "docs",
    "meta",
    "playbooks",
    "plugins",
    "roles",
}

# Paths that must never be in the tarball: links and local state of the
# checkout, and development content that only runs from the checkout.
FORBIDDEN_PREFIXES = (
    ".collections",
    ".venv",
    ".lab",
    ".git",
    ".cache",
    "terraform",
    "benchmarks",
    "diagnostics",
    "tests",
    "molecule",
    "lab",
    "inventories",
    "scripts",
    "changelogs/fragments",
)

PROJECT = "mlinfra-lab"
ZONE = "us-central1-a"
MACHINE_TYPE = "g2-standard-8"
LAB_DRIVER_VERSION = "535.261.03"
HOST_LABEL = "dev.mlinfra.ecosystem-test=1"
SYSTEMD_HOST_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
]  # fmt: skip


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("build")
    result = run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(output)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return output / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"


@pytest.fixture(scope="module")
def members(tarball) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball) as archive:
        return archive.getmembers()


@pytest.fixture(scope="module")
def collections_path(tarball, tmp_path_factory) -> Path:
    """Install the tarball offline into a fresh collections path, which is the only one configured."""
    path = tmp_path_factory.mktemp("installed") / "collections"
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=str(path))
    command = [tool("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path), "--offline"]
    result = run(command, cwd=path.parent, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def installed_env(collections_path: Path, **extra: str) -> dict[str, str]:
    # collections_scan_sys_path stays on, so the venv's `ansible` bundle provides community.docker.
    return clean_env(ANSIBLE_COLLECTIONS_PATH=str(collections_path), **extra)


def test_tarball_named_after_galaxy_version(tarball):
    assert tarball.is_file(), f"ansible-galaxy did not write {tarball.name}"


def test_manifest_matches_galaxy_yml(tarball):
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]

    assert manifest["namespace"] == "mlinfra"
    assert manifest["name"] == "platform"
    assert manifest["version"] == GALAXY["version"]
    assert manifest["dependencies"] == GALAXY["dependencies"]


def test_only_collection_content_in_tarball(members):
    top_level = {member.name.split("/", 1)[0] for member in members}

    assert top_level - ALLOWED_TOP_LEVEL == set(), (
        "the tarball has entries that are not collection content; add them to build_ignore in galaxy.yml, "
        "or to ALLOWED_TOP_LEVEL in this test when they are meant to ship"
    )


@pytest.mark.parametrize("prefix", FORBIDDEN_PREFIXES)
def test_excluded_path_not_in_tarball(members, prefix):
    leaked = [member.name for member in members if member.name == prefix or member.name.startswith(f"{prefix}/")]

    assert leaked == [], f"galaxy.yml build_ignore lets {prefix} into the tarball: {leaked[:5]}"


def test_no_links_caches_or_bytecode(members):
    links = [member.name for member in members if member.issym() or member.islnk()]
    caches = [member.name for member in members if "__pycache__" in member.name or member.name.endswith(".pyc")]

    assert links == []
    assert caches == []


def test_every_role_and_plugin_in_tarball(members):
    names = {member.name for member in members}
    plugin_files = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "plugins").rglob("*.py")
        if "__pycache__" not in path.parts
    )

    missing_roles = [role for role in ROLES if f"roles/{role}/meta/argument_specs.yml" not in names]
    missing_plugins = [path for path in plugin_files if path not in names]

    assert "meta/runtime.yml" in names
    assert missing_roles == []
    assert missing_plugins == []


def test_installed_collection_verifies(collections_path):
    env = installed_env(collections_path)

    listing = run([tool("ansible-galaxy"), "collection", "list", COLLECTION, "--format", "json"], env=env)
    verify = run([tool("ansible-galaxy"), "collection", "verify", "--offline", COLLECTION], env=env, timeout=120)

    assert listing.returncode == 0, listing.stderr
    locations = [path for path, found in json.loads(listing.stdout).items() if COLLECTION in found]
    assert locations == [str(collections_path / "ansible_collections")]
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_builder_introspects_installed_collection(collections_path):
    result = run([tool("ansible-builder"), "introspect", str(collections_path)], timeout=120)

    assert result.returncode == 0, result.stderr
    python = yaml.safe_load(result.stdout.split("# Dependency data for", 1)[-1].split("\n", 1)[-1]) or {}
    text = json.dumps(python)
    # ansible-builder reads requirements.txt at the collection's root and drops ansible-core itself.
    assert "google-cloud-compute==" in text, result.stdout
    assert "google-auth==" in text, result.stdout
    assert "ansible-core" not in text, result.stdout


# The playbook run against a lab host ---------------------------------------------


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def host_image() -> str:
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.fail("the docker engine is not reachable; run scripts/install-deps.sh first")
    # The script prints the cached image's tag, or first builds the image with debootstrap, which takes minutes.
    result = run([str(REPO_ROOT / "scripts" / "build-host-image.sh")], timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def wait_for_systemd(name: str, timeout_seconds: float = 120) -> None:
    deadline = time.monotonic() + timeout_seconds
    state = ""
    while time.monotonic() < deadline:
        state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    pytest.fail(f"systemd in {name} did not finish booting within {timeout_seconds} s; last state {state!r}")


@pytest.fixture(scope="module")
def lab_host(host_image) -> Iterator[str]:
    """Start one systemd host container with the simulated nvidia-smi of a g2-standard-8 (one L4)."""
    name = f"mlinfra-ecosystem-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--hostname", name, "--label", HOST_LABEL, *SYSTEMD_HOST_FLAGS, host_image)
    try:
        wait_for_systemd(name)

        spec = build_gpu_spec(name, MACHINE_TYPE, None, LAB_DRIVER_VERSION)
        docker("exec", name, "mkdir", "-p", "/etc/mlinfra-lab")
        subprocess.run(
            ["docker", "exec", "-i", name, "sh", "-c", "cat > /etc/mlinfra-lab/gpus.json"],
            input=json.dumps(spec),
            text=True,
            check=True,
            timeout=60,
        )
        docker("cp", str(REPO_ROOT / "lab" / "fakes" / "nvidia-smi"), f"{name}:/usr/local/bin/nvidia-smi")
        docker("exec", name, "chmod", "0755", "/usr/local/bin/nvidia-smi")
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


@pytest.fixture(scope="module")
def emulator(lab_host) -> Iterator[ComputeEmulator]:
    with ComputeEmulator(port=0) as running:
        running.insert_instance(
            PROJECT,
            ZONE,
            {
                "name": lab_host,
                "machineType": f"zones/{ZONE}/machineTypes/{MACHINE_TYPE}",
                "labels": {"env": "lab", "pool": "infer-l4", "role": "inference", "managed-by": "mlinfra-lab"},
                "networkInterfaces": [{"networkIP": "10.0.0.2"}],
            },
        )
        yield running


def write_inventory(directory: Path, emulator: ComputeEmulator) -> Path:
    inventory = directory / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    config = {
        "plugin": f"{COLLECTION}.gcp_fleet",
        "environment": "lab",
        "projects": [PROJECT],
        "api_endpoint": emulator.url,
        "auth_kind": "anonymous",
        "compose": {
            "ansible_host": "gce_name",
            "ansible_connection": "'community.docker.docker'",
            "ansible_python_interpreter": "'/usr/bin/python3'",
        },
    }
    (inventory / "lab.gcp_fleet.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump({"mlinfra_environment": "lab"}))
    return inventory


def write_config(directory: Path, collections_path: Path) -> Path:
    # Nothing from the checkout: no roles_path, and collections only from the installed tarball and the venv.
    config = directory / "ansible.cfg"
    config.write_text(
        "[defaults]\n"
        f"collections_path = {collections_path}\n"
        f"roles_path = {directory / 'no-roles'}\n"
        "interpreter_python = auto_silent\n"
        "retry_files_enabled = false\n"
        "[inventory]\n"
        f"enable_plugins = {COLLECTION}.gcp_fleet\n"
        "unparsed_is_failed = true\n"
        "[connection]\n"
        "pipelining = true\n"
    )
    return config


@pytest.mark.lab
@pytest.mark.slow
def test_playbook_runs_from_installed_collection(collections_path, emulator, lab_host, tmp_path):
    inventory = write_inventory(tmp_path, emulator)
    config = write_config(tmp_path, collections_path)
    # The emulator is on 127.0.0.1 and anonymous; nothing may find real Google credentials.
    env = installed_env(
        collections_path,
        ANSIBLE_CONFIG=str(config),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        NO_GCE_CHECK="true",
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
    )
    env = {key: value for key, value in env.items() if not key.startswith(("GOOGLE_", "GCP_"))}
    playbook = tmp_path / "collection_playbook.yml"
    playbook.write_text((Path(__file__).parent / "collection_playbook.yml").read_text())

    result = run([tool("ansible-playbook"), "-i", str(inventory), str(playbook)], cwd=tmp_path, env=env, timeout=600)

    # The same settings resolve the collection to the installed copy, not to the checkout.
    doc = run([tool("ansible-doc"), "--json", "-t", "module", f"{COLLECTION}.nvidia_gpu_facts"], cwd=tmp_path, env=env)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert re.search(rf"^{re.escape(lab_host)}\s+: ok=\d+ .*unreachable=0\s+failed=0", output, re.MULTILINE), output
    assert doc.returncode == 0, doc.stderr
    module_file = json.loads(doc.stdout)[f"{COLLECTION}.nvidia_gpu_facts"]["doc"]["filename"]
    assert module_file.startswith(str(collections_path)), module_file
