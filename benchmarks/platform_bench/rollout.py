"""Rollout of a new image digest across the inference pool, in serial batches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from platform_bench.ansible_runs import REPO_ROOT, RunSummary, run_playbook

GENERATED_IMAGES = REPO_ROOT / "inventories" / "lab" / "group_vars" / "all" / "generated_images.yml"


def lab_images() -> dict[str, str]:
    """Return the image references `python -m lab up` pushed, by name (echo_v1, echo_v2, ...)."""
    return yaml.safe_load(GENERATED_IMAGES.read_text())["lab_images"]


def remove_image(hosts: list[str], image: str) -> None:
    """Remove the image from each host, so the rollout has to pull it."""
    for host in hosts:
        result = subprocess.run(
            ["docker", "exec", host, "docker", "image", "rm", image], capture_output=True, text=True, check=False
        )
        if result.returncode != 0 and "No such image" not in result.stderr:
            raise RuntimeError(f"removing {image} from {host} failed: {result.stderr.strip()}")


def roll_out(label: str, image: str, batch_size: int, log_dir: Path) -> RunSummary:
    return run_playbook(
        label,
        "playbooks/rollout.yml",
        log_dir,
        [
            "-e",
            "rollout_hosts=pool_infer_l4",
            "-e",
            "rollout_workload=echo-serve",
            "-e",
            f"rollout_image={image}",
            "-e",
            f"rollout_batch_size={batch_size}",
        ],
    )
