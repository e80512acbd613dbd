"""Questions the Terraform tests ask of a loaded repository, shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog

from .model import Block, Environment, ModuleInstance, ModuleSource, RenderedInstance, TerraformRepo

GPU_POOL_MODULE = "gpu_pool"
CONTRACT_LABEL_KEYS = ("env", "pool", "role", "managed-by")
ALLOWED_ROLES = ("training", "inference")
IAP_TCP_FORWARDING_RANGE = "35.235.240.0/20"


@dataclass
class PoolVm:
    """One VM that an environment declares: its pool declaration and its rendered instance."""

    environment: Environment
    pool_name: str
    pool: dict
    module: ModuleInstance
    vm: RenderedInstance

    @property
    def expected_gpus(self) -> tuple[str | None, int]:
        """Return (GPU type, count) from the shared GPU catalog, not from the Terraform code."""
        accelerator = self.pool.get("accelerator")
        attached = (
            [{"acceleratorType": accelerator["type"], "acceleratorCount": accelerator["count"]}] if accelerator else []
        )
        return gpu_catalog.expected_gpus(self.pool["machine_type"], attached)

    @property
    def description(self) -> str:
        gpu_type, gpu_count = self.expected_gpus
        return f"{self.vm.address} ({self.pool['machine_type']}, GPU {gpu_type} x{gpu_count})"

    @property
    def file(self) -> str:
        return self.vm.block.file.relative_path


def pool_modules(environment: Environment) -> dict[str, ModuleInstance]:
    """Return the gpu_pool module instances of an environment, by pool name.

    Raises AssertionError when the tfvars do not fit the variable types,
    because nothing below the root can be evaluated then.
    """
    errors = environment.root.input_errors
    assert not errors, (
        "\n".join(errors) + "\nFix: make terraform.tfvars match the types of the environment's variables."
    )
    return environment.root.children.get(GPU_POOL_MODULE, {})


def pool_vms(repo: TerraformRepo) -> Iterator[PoolVm]:
    """Yield every google_compute_instance that the environments' pools create."""
    for environment in repo.environments.values():
        pools = environment.root.variables.get("pools") or {}
        for pool_name, module in pool_modules(environment).items():
            for resource_type, resource_name in module.source.resources:
                if resource_type != "google_compute_instance":
                    continue
                for vm in module.render_resource(resource_type, resource_name):
                    yield PoolVm(environment, pool_name, pools[pool_name], module, vm)


def resource_blocks(repo: TerraformRepo, resource_type: str) -> Iterator[tuple[ModuleSource, Block]]:
    """Yield every resource block of a type in every module and environment directory."""
    for source in repo.all_sources():
        for (block_type, _), block in source.resources.items():
            if block_type == resource_type:
                yield source, block


def rendered_resources(repo: TerraformRepo, resource_type: str) -> Iterator[tuple[Environment, RenderedInstance]]:
    """Yield every instance of a resource type that any environment would plan."""
    for environment in repo.environments.values():
        for module in environment.root.walk():
            for block_type, name in module.source.resources:
                if block_type == resource_type:
                    for instance in module.render_resource(block_type, name):
                        yield environment, instance


def block_contains(body: Any, block_name: str) -> bool:
    """Tell whether a raw block body has a nested block of this name, static or dynamic, at any depth."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == block_name:
                return True
            if key == "dynamic" and any(block_name in entry for entry in value):
                return True
            if block_contains(value, block_name):
                return True
    if isinstance(body, list):
        return any(block_contains(item, block_name) for item in body)
    return False


def group_vars_dir(repo: TerraformRepo, environment_name: str) -> Path:
    return repo.root / "inventories" / environment_name / "group_vars"


def group_vars_entries(repo: TerraformRepo, environment_name: str, prefix: str) -> dict[str, Path]:
    """Return group_vars files or directories of groups starting with a prefix, by group name."""
    directory = group_vars_dir(repo, environment_name)
    entries: dict[str, Path] = {}
    if not directory.is_dir():
        return entries
    for path in sorted(directory.iterdir()):
        group = path.name
        if path.is_file():
            if path.suffix not in (".yml", ".yaml"):
                continue
            group = path.stem
        if group.startswith(prefix):
            entries[group] = path
    return entries


def load_group_vars(path: Path) -> dict:
    """Load the variables of a group_vars file, or of every YAML file in a group_vars directory."""
    files = [path] if path.is_file() else sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
    variables: dict = {}
    for file in files:
        variables.update(yaml.safe_load(file.read_text()) or {})
    return variables


def inventory_configs(repo: TerraformRepo, environment_name: str) -> list[Path]:
    """Return the gcp_fleet inventory plugin configs of an environment."""
    directory = repo.root / "inventories" / environment_name
    return sorted([*directory.glob("*gcp_fleet.yml"), *directory.glob("*gcp_fleet.yaml")])
