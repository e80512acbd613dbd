"""The runbooks in docs/runbooks, run word for word against the lab.

Every ``sh`` block of a runbook is run with bash from the repository root,
with the placeholders in angle brackets filled in for the lab. The blocks run
section by section: check first, the command, what success looks like, how
to undo.
Blocks marked ``console`` need Google Cloud or Terraform state and are only
checked for their placeholders. After the blocks ran, each test checks the
hosts' state, and the lab is put back to its resting state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.lab.hosts import (
    EMULATOR,
    REPO_ROOT,
    VENV_BIN,
    drain_marker,
    host_run,
    inference_health,
    recap,
    run_lab,
    set_gpu_fault,
    workload_image,
    workload_record,
    workload_unit,
)

RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
SECTIONS = ["When to use", "Check first", "The command", "What success looks like", "How to undo"]
# Sections whose sh blocks run, in this order.
RUN_ORDER = ["Check first", "The command", "What success looks like", "How to undo"]
PLACEHOLDER = re.compile(r"<([a-z][a-z ]*)>")
KNOWN_PLACEHOLDERS = {
    "env",
    "host",
    "pool group",
    "pool",
    "suffix",
    "reason",
    "workload",
    "image",
    "previous image",
}
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>\S*)\s*$")


@dataclass
class Block:
    section: str
    info: str
    text: str


@dataclass
class Runbook:
    path: Path
    title: str
    summary: str
    sections: list[str]
    blocks: list[Block]


def parse_runbook(path: Path) -> Runbook:
    """Split a runbook into its title, summary paragraph, section headings and fenced blocks."""
    title = ""
    summary_lines: list[str] = []
    sections: list[str] = []
    blocks: list[Block] = []
    fence: re.Match | None = None
    fenced: list[str] = []
    for line in path.read_text().splitlines():
        if fence is not None:
            if line.strip() == "```":
                blocks.append(Block(sections[-1] if sections else "", fence["info"], "\n".join(fenced)))
                fence = None
            else:
                fenced.append(line[len(fence["indent"]) :])
            continue
        opening = FENCE.match(line)
        if opening:
            fence, fenced = opening, []
        elif line.startswith("# "):
            title = line[2:].strip()
        elif line.startswith("## "):
            sections.append(line[3:].strip())
        elif not sections and line.strip():
            summary_lines.append(line.strip())
    return Runbook(path, title, " ".join(summary_lines), sections, blocks)


def runbook(name: str) -> Runbook:
    return parse_runbook(RUNBOOKS / name)


def fill(command: str, values: dict[str, str]) -> str:
    """Replace each <placeholder> with its lab value; fail on a placeholder the test does not know."""
    missing = sorted({name for name in PLACEHOLDER.findall(command) if name not in values})
    assert missing == [], f"no lab value for placeholders {missing} in: {command}"
    return PLACEHOLDER.sub(lambda match: values[match[1]], command)


def run_section(book: Runbook, section: str, values: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """Run the section's sh blocks as an operator would, and fail on the first non-zero exit."""
    results = []
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    for block in book.blocks:
        if block.section != section or block.info != "sh":
            continue
        script = fill(block.text, values)
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert result.returncode == 0, (
            f"{book.path.name} / {section}: `{script}` exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
        )
        results.append(result)
    return results


def run_runbook(book: Runbook, values: dict[str, str]) -> dict[str, str]:
    """Run every sh block in RUN_ORDER and return the output of each section, stdout and stderr joined."""
    return {
        section: "".join(result.stdout + result.stderr for result in run_section(book, section, values))
        for section in RUN_ORDER
    }


# Structure, without the lab ----------------------------------------------------------

ALL_RUNBOOKS = sorted(path.name for path in RUNBOOKS.glob("*.md") if path.name != "README.md")


def test_index_lists_every_runbook():
    index = (RUNBOOKS / "README.md").read_text()

    for name in ALL_RUNBOOKS:
        assert f"]({name})" in index, f"docs/runbooks/README.md does not link {name}"


@pytest.mark.parametrize("name", ALL_RUNBOOKS)
def test_runbook_has_summary_and_sections(name):
    book = runbook(name)

    assert book.title
    assert len(book.summary.split()) >= 40, f"{name}: the opening summary paragraph is missing or too short"
    assert book.sections == SECTIONS


@pytest.mark.parametrize("name", ALL_RUNBOOKS)
def test_runbook_command_is_runnable(name):
    book = runbook(name)
    commands = [block for block in book.blocks if block.section == "The command"]

    assert [block for block in commands if block.info == "sh"], f"{name}: 'The command' has no sh block to run"
    for block in book.blocks:
        assert block.info in ("sh", "console", "json"), f"{name}: fence info {block.info!r} is neither sh nor console"
        unknown = set(PLACEHOLDER.findall(block.text)) - KNOWN_PLACEHOLDERS
        assert unknown == set(), f"{name}: unknown placeholders {sorted(unknown)}"


@pytest.mark.parametrize("name", ALL_RUNBOOKS)
def test_runbook_playbooks_exist(name):
    text = (RUNBOOKS / name).read_text()

    for playbook in re.findall(r"playbooks/[a-z_]+\.yml", text):
        assert (REPO_ROOT / playbook).is_file(), f"{name} names {playbook}, which does not exist"


# Each runbook against the lab ----------------------------------------------------------


@pytest.mark.lab
@pytest.mark.slow
def test_drain_and_undrain_runbook(lab):
    values = {"env": "lab", "host": "lab-infer-l4-1", "pool group": "pool_infer_l4", "reason": "runbook test"}

    output = run_runbook(runbook("drain-and-undrain.md"), values)

    assert "Pool infer-l4 (inference, g2-standard-8): 2 of 2 hosts" in output["Check first"]
    assert "DRAINED since" in output["The command"]
    assert "lab-infer-l4-1: drained since" in output["The command"]
    assert '"reason": "runbook test"' in output["What success looks like"]
    assert "UNDRAINED: the host was drained since" in output["How to undo"]
    assert drain_marker("lab-infer-l4-1") is None
    assert workload_unit("lab-infer-l4-1")["ActiveState"] == "active"
    assert inference_health("lab-infer-l4-1") == 200


@pytest.mark.lab
@pytest.mark.slow
def test_rollout_runbook(lab):
    echo_v1, echo_v2 = lab["echo_v1"], lab["echo_v2"]
    values = {
        "env": "lab",
        "pool group": "pool_infer_l4",
        "workload": "echo-serve",
        "image": echo_v2,
        "previous image": echo_v1,
    }
    book = runbook("rollout.md")

    run_section(book, "Check first", values)
    command = run_section(book, "The command", values)[0].stdout

    for host in ("lab-infer-l4-0", "lab-infer-l4-1"):
        assert f"{host}: echo-serve runs {echo_v2} and is healthy" in command
        assert workload_image(host) == echo_v2
        assert workload_record(host)["previous_image"] == echo_v1

    run_section(book, "How to undo", values)

    for host in ("lab-infer-l4-0", "lab-infer-l4-1"):
        assert workload_image(host) == echo_v1
        assert inference_health(host) == 200


@pytest.mark.lab
@pytest.mark.slow
def test_gpu_fault_runbook(lab):
    host = "lab-infer-l4-1"
    # The fault: the GPU fell off the bus, as the kernel and nvidia-smi report it.
    set_gpu_fault(host, "gpu_lost")
    host_run(host, "logger", "-t", "kernel", "NVRM: Xid (PCI:0000:00:04): 79, pid=0, GPU has fallen off the bus.")
    book = runbook("gpu-fault.md")
    diagnostics = REPO_ROOT / "diagnostics"
    diagnostics_existed = diagnostics.exists()
    bundles_before = set(diagnostics.glob(f"{host}-*"))
    bundles: set[Path] = set()
    try:
        check = "".join(result.stdout for result in run_section(book, "Check first", {"env": "lab", "host": host}))
        assert '"state": "gpu_lost"' in check
        assert "NVRM: Xid (PCI:0000:00:04): 79" in check

        command = run_section(book, "The command", {"env": "lab", "host": host})[0].stdout
        bundles = set(diagnostics.glob(f"{host}-*")) - bundles_before

        assert f"{host}: GPU FAULT: nvidia-smi state gpu_lost" in command
        assert "Xid 79 in the kernel log of this boot" in command
        marker = drain_marker(host)
        assert marker is not None
        assert marker["reason"].startswith("GPU fault: nvidia-smi state gpu_lost")
        assert workload_unit(host)["ActiveState"] == "inactive"
        archives = sorted(path for path in bundles if path.name.endswith(".tar.gz"))
        directories = sorted(path for path in bundles if path.is_dir())
        assert len(archives) == 1
        assert len(directories) == 1
        collected = directories[0]
        assert "GPU is lost" in (collected / "nvidia-smi.txt").read_text()
        assert "NVRM: Xid (PCI:0000:00:04): 79" in (collected / "kernel-log.txt").read_text()
        summary = json.loads((collected / "summary.json").read_text())
        assert summary["xids"] == [79]
        assert summary["gpu_facts"]["state"] == "gpu_lost"
        assert summary["inventory"]["gce_name"] == host

        run_section(book, "What success looks like", {"env": "lab", "host": host})
        # The GPU is back, as after a reboot; the undo puts the host back.
        set_gpu_fault(host, None)
        run_section(book, "How to undo", {"env": "lab", "host": host})

        assert drain_marker(host) is None
        assert workload_unit(host)["ActiveState"] == "active"
        assert inference_health(host) == 200
    finally:
        for path in bundles:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        if not diagnostics_existed and diagnostics.exists() and not any(diagnostics.iterdir()):
            diagnostics.rmdir()


def drain_events(output: str) -> list[tuple[str, str]]:
    """Return (host, DRAINED or UNDRAINED) in the order the playbook output shows them."""
    events = []
    host = ""
    for line in output.splitlines():
        result = re.match(r"^(?:ok|changed): \[([^\]]+)\] => \{", line)
        if result:
            host = result[1]
        message = re.match(r'^\s+"msg": "(UNDRAINED|DRAINED)[: ]', line)
        if message:
            events.append((host, message[1]))
    return events


@pytest.mark.lab
@pytest.mark.slow
def test_driver_upgrade_runbook(lab):
    values = {"env": "lab", "pool group": "pool_infer_l4"}

    output = run_runbook(runbook("driver-upgrade.md"), values)

    assert '"driver_version": "535.261.03"' in output["Check first"]
    command = output["The command"]
    # One host at a time: the second host is drained only after the first is back.
    assert drain_events(command) == [
        ("lab-infer-l4-0", "DRAINED"),
        ("lab-infer-l4-0", "UNDRAINED"),
        ("lab-infer-l4-1", "DRAINED"),
        ("lab-infer-l4-1", "UNDRAINED"),
    ]
    for host in ("lab-infer-l4-0", "lab-infer-l4-1"):
        assert f"{host}: driver 535.261.03 verified" in command
        assert drain_marker(host) is None
        assert inference_health(host) == 200


def inventory_host(host: str) -> dict:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "inventories/lab", "--host", host],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def recreate_lab_host(host: str, zone: str) -> None:
    """Replace a lab host the way Terraform replaces a VM: delete the instance and its disk, create a new one."""
    instance = f"{EMULATOR}/compute/v1/projects/mlinfra-lab/zones/{zone}/instances/{host}"
    requests.delete(instance, timeout=10).raise_for_status()
    subprocess.run(["docker", "rm", "--force", host], capture_output=True, check=True)
    subprocess.run(["docker", "volume", "rm", f"mlinfra-lab-{host}-docker"], capture_output=True, check=True)
    # Starts the missing host, gives it the simulated GPUs and registers a new instance.
    result = run_lab("up", "--no-converge")
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.lab
@pytest.mark.slow
def test_replace_host_runbook(lab):
    host = "lab-infer-l4-1"
    values = {"env": "lab", "host": host, "reason": "replaced by the runbook test"}
    book = runbook("replace-host.md")
    images_before = (REPO_ROOT / "inventories/lab/group_vars/all/generated_images.yml").read_text()

    old_id = inventory_host(host)["gce_id"]

    check = "".join(result.stdout for result in run_section(book, "Check first", values))

    assert f'"gce_id": "{old_id}"' in check
    assert drain_marker(host) is not None

    recreate_lab_host(host, "us-central1-b")
    assert (REPO_ROOT / "inventories/lab/group_vars/all/generated_images.yml").read_text() == images_before
    assert drain_marker(host) is None
    command = run_section(book, "The command", values)[0].stdout
    success = "".join(result.stdout for result in run_section(book, "What success looks like", values))

    assert recap(command)[host]["failed"] == 0
    assert recap(success)[host] == {"changed": 0, "failed": 0}
    assert inventory_host(host)["gce_id"] != old_id
    assert workload_image(host) == lab["echo_v1"]
    assert inference_health(host) == 200


@pytest.mark.lab
@pytest.mark.slow
def test_add_pool_runbook(lab):
    values = {"env": "lab", "pool group": "pool_train_a100"}

    output = run_runbook(runbook("add-pool-or-environment.md"), values)

    assert "lab-train-a100-0" in output["Check first"]
    assert recap(output["Check first"])["lab-train-a100-0"]["failed"] == 0
    assert recap(output["The command"])["lab-train-a100-0"] == {"changed": 0, "failed": 0}
    assert workload_image("lab-train-a100-0") == lab["echo_v1"]
