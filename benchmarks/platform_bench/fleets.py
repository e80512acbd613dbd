"""Lab fleet files of a given size, each a superset of the smaller ones.

The lab starts only hosts that are not running yet, so growing from 3 to 6 to
12 hosts adds hosts to a converged fleet instead of starting over.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = "mlinfra-lab"
ENVIRONMENT = "lab"
ZONES = ("us-central1-a", "us-central1-b")
POOLS = {
    "train-a100": {"role": "training", "machine_type": "a2-highgpu-1g"},
    "infer-l4": {"role": "inference", "machine_type": "g2-standard-8"},
}


def fleet_hosts(size: int) -> list[dict[str, str]]:
    """Return the hosts of a fleet of `size`: one training host in three, the rest inference.

    The first three are the hosts of inventories/lab/fleet.yml.
    """
    if size < 1:
        raise ValueError(f"invalid fleet size {size}; use 1 or more hosts")
    counts = {"train-a100": 0, "infer-l4": 0}
    hosts = []
    for index in range(size):
        pool = "train-a100" if index % 3 == 0 else "infer-l4"
        number = counts[pool]
        counts[pool] += 1
        hosts.append({"name": f"lab-{pool}-{number}", "pool": pool, "zone": ZONES[number % 2]})
    return hosts


def write_fleet_file(directory: Path, size: int) -> Path:
    fleet = {"project": PROJECT, "environment": ENVIRONMENT, "pools": POOLS, "hosts": fleet_hosts(size)}
    path = directory / f"fleet-{size}.yml"
    path.write_text("---\n" + yaml.safe_dump(fleet, sort_keys=False))
    return path


def inference_hosts(size: int) -> list[str]:
    return [host["name"] for host in fleet_hosts(size) if host["pool"] == "infer-l4"]
