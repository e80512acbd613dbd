"""The label contract between Terraform and the Ansible inventory.

Terraform writes the labels env, pool, role and managed-by on every VM; the
gcp_fleet inventory plugin turns them into the groups env_<env>, pool_<pool>
and role_<role>, and inventories/<env>/group_vars contains the variables of
those groups. These tests render each VM as Terraform would create it, pass
it through the plugin's own host variable and group code, and fail when
either side changes without the other.
"""

from __future__ import annotations

import re

import pytest
import yaml
from google.cloud import compute_v1
from tf_support.hcl_expr import UNKNOWN
from tf_support.model import TerraformRepo, sanitize_group_name
from tf_support.queries import (
    CONTRACT_LABEL_KEYS,
    PoolVm,
    group_vars_dir,
    group_vars_entries,
    inventory_configs,
    load_group_vars,
    pool_vms,
)

from ansible_collections.mlinfra.platform.plugins.module_utils import gce_inventory

LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
# Label references in inventory configs: filters (labels.pool = x), hostnames
# (labels.pool) and Jinja in compose, groups and keyed_groups (gce_labels['pool']).
LABEL_REFERENCE_RES = (
    re.compile(r"(?<![A-Za-z0-9])(?:gce_)?labels\.(?!get\()([A-Za-z0-9_-]+)"),
    re.compile(r"(?<![A-Za-z0-9])(?:gce_)?labels\[\s*['\"]([^'\"]+)['\"]\s*\]"),
    re.compile(r"(?<![A-Za-z0-9])(?:gce_)?labels\.get\(\s*['\"]([^'\"]+)['\"]"),
)
LABEL_FILTER_RE = re.compile(r"\blabels\.([A-Za-z0-9_-]+)\s*(?:=|:|eq)\s*\"?([A-Za-z0-9_-]+)\"?")


def report(problems: list[str]) -> str:
    return "\n".join(problems)


def plugin_hostvars(pool_vm: PoolVm) -> dict:
    """Build the inventory plugin's host variables for a VM as Terraform would create it."""
    values = pool_vm.vm.values
    zone = values["zone"]
    project = pool_vm.environment.tfvars["project_id"]
    scheduling = values["scheduling"][0]
    instance = compute_v1.Instance(
        name=values["name"],
        id=1,
        zone=f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}",
        machine_type=f"zones/{zone}/machineTypes/{values['machine_type']}",
        status="RUNNING",
        labels=values["labels"],
        metadata=compute_v1.Metadata(
            items=[compute_v1.Items(key=key, value=value) for key, value in values["metadata"].items()]
        ),
        network_interfaces=[compute_v1.NetworkInterface(network_i_p="10.0.0.2")],
        scheduling=compute_v1.Scheduling(
            on_host_maintenance=scheduling["on_host_maintenance"],
            automatic_restart=scheduling["automatic_restart"],
            preemptible=scheduling["preemptible"],
            provisioning_model=scheduling["provisioning_model"],
        ),
        guest_accelerators=[
            compute_v1.AcceleratorConfig(
                accelerator_type=f"zones/{zone}/acceleratorTypes/{item['type']}", accelerator_count=item["count"]
            )
            for item in values.get("guest_accelerator", [])
        ],
    )
    redact = re.compile(gce_inventory.DEFAULT_REDACT_PATTERN)
    return gce_inventory.instance_hostvars(compute_v1.Instance.pb(instance), project, redact)


def test_labels_written_on_every_vm(tf_repo: TerraformRepo):
    problems = []
    vms = list(pool_vms(tf_repo))
    assert vms, "no VM was rendered from the environments' pools"
    for pool_vm in vms:
        labels = pool_vm.vm.values.get("labels")
        where = f"{pool_vm.file}: {pool_vm.vm.address}"
        if labels is UNKNOWN or not isinstance(labels, dict):
            problems.append(f"{where} has labels {labels!r}. Fix: set labels = local.labels, known at plan time.")
            continue
        expected = {
            "env": pool_vm.environment.name,
            "pool": pool_vm.pool_name,
            "role": pool_vm.pool["role"],
            "managed-by": "terraform",
        }
        for key in CONTRACT_LABEL_KEYS:
            if labels.get(key) != expected[key]:
                problems.append(
                    f"{where} has label {key} = {labels.get(key)!r}, expected {expected[key]!r}. Fix: keep {key} in "
                    "local.contract_labels; the inventory groups hosts by it."
                )
        gpu_type, _ = pool_vm.expected_gpus
        if labels.get("accelerator") != gpu_type:
            problems.append(
                f"{where} has label accelerator = {labels.get('accelerator')!r}, expected {gpu_type!r}. Fix: "
                "derive it from the GPU catalog."
            )
        for key, value in labels.items():
            if not LABEL_KEY_RE.match(key) or not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
                problems.append(
                    f"{where} has label {key} = {value!r}, which Compute Engine rejects. Fix: use lowercase letters, "
                    "digits, _ and - only, at most 63 characters."
                )
    assert not problems, report(problems)


def test_inventory_groups_from_labels(tf_repo: TerraformRepo):
    problems = []
    for pool_vm in pool_vms(tf_repo):
        hostvars = plugin_hostvars(pool_vm)
        groups = gce_inventory.default_groups(hostvars)
        where = f"{pool_vm.file}: {pool_vm.vm.values['name']} of pool {pool_vm.pool_name} ({pool_vm.environment.name})"
        for prefix, value in (
            ("env", pool_vm.environment.name),
            ("pool", pool_vm.pool_name),
            ("role", pool_vm.pool["role"]),
        ):
            group = sanitize_group_name(f"{prefix}_{value}")
            if group not in groups:
                problems.append(
                    f"{where}: the inventory plugin puts the VM in {groups}, not in {group}. "
                    f"Fix: keep the {prefix} label in local.contract_labels."
                )
        gpu_type, gpu_count = pool_vm.expected_gpus
        if (hostvars["gce_gpu_type"], hostvars["gce_gpu_count"]) != (gpu_type, gpu_count):
            problems.append(
                f"{where}: the inventory expects {hostvars['gce_gpu_count']} x {hostvars['gce_gpu_type']}, the pool "
                f"declares {gpu_count} x {gpu_type}. Fix: attach the pool's accelerator to the VM."
            )
        if hostvars["gce_scheduling"]["on_host_maintenance"] != "TERMINATE":
            policy = hostvars["gce_scheduling"]["on_host_maintenance"]
            problems.append(f"{where}: the inventory sees on_host_maintenance {policy}. Fix: GPU VMs must TERMINATE.")
    assert not problems, report(problems)


def test_declared_pools_have_group_vars(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        group_vars = group_vars_entries(tf_repo, environment.name, "pool_")
        directory = tf_repo.relative(group_vars_dir(tf_repo, environment.name))
        for pool_name, pool in (environment.tfvars.get("pools") or {}).items():
            group = sanitize_group_name(f"pool_{pool_name}")
            path = group_vars.get(group)
            if path is None:
                problems.append(
                    f"{environment.tfvars_relative_path}: pool {pool_name} has no {directory}/{group}.yml. Fix: create "
                    f"it with pool_name: {pool_name}, pool_role: {pool.get('role')} and "
                    "ml_workload_launch_configs: [], "
                    "or remove the pool from terraform.tfvars."
                )
                continue
            variables = load_group_vars(path)
            where = tf_repo.relative(path)
            if variables.get("pool_name") != pool_name:
                problems.append(
                    f"{where}: pool_name is {variables.get('pool_name')!r}. Fix: set pool_name: {pool_name}."
                )
            if variables.get("pool_role") != pool.get("role"):
                problems.append(
                    f"{where}: pool_role is {variables.get('pool_role')!r} but {environment.tfvars_relative_path} "
                    f"declares role {pool.get('role')!r}. Fix: make them equal."
                )
            if not isinstance(variables.get("ml_workload_launch_configs"), list):
                problems.append(
                    f"{where}: ml_workload_launch_configs is missing or not a list. Fix: add "
                    "ml_workload_launch_configs: []."
                )
    assert not problems, report(problems)


def test_group_vars_pools_are_declared(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        pools = environment.tfvars.get("pools") or {}
        declared = {sanitize_group_name(f"pool_{name}") for name in pools}
        roles = {sanitize_group_name(f"role_{pool.get('role')}") for pool in pools.values()}
        for group, path in group_vars_entries(tf_repo, environment.name, "pool_").items():
            if group not in declared:
                problems.append(
                    f"{tf_repo.relative(path)}: no pool of {environment.tfvars_relative_path} becomes group {group}, "
                    "so these variables never apply. Fix: declare the pool in terraform.tfvars or remove the file."
                )
        for group, path in group_vars_entries(tf_repo, environment.name, "role_").items():
            if group not in roles:
                problems.append(
                    f"{tf_repo.relative(path)}: no pool of {environment.name} has this role. Fix: remove the "
                    "file or declare a pool with the role."
                )
        for group, path in group_vars_entries(tf_repo, environment.name, "env_").items():
            if group != sanitize_group_name(f"env_{environment.name}"):
                problems.append(
                    f"{tf_repo.relative(path)}: group {group} belongs to another environment. Fix: move it to "
                    "that environment's inventory."
                )
    assert not problems, report(problems)


def test_pool_group_names_unique(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        groups: dict[str, str] = {}
        for pool_name in environment.tfvars.get("pools") or {}:
            group = sanitize_group_name(f"pool_{pool_name}")
            if group in groups:
                problems.append(
                    f"{environment.tfvars_relative_path}: pools {groups[group]} and {pool_name} both become group "
                    f"{group}. Fix: rename one of them."
                )
            groups[group] = pool_name
    assert not problems, report(problems)


def test_inventory_config_matches_tfvars(tf_repo: TerraformRepo):
    problems = []
    missing = []
    for environment in tf_repo.environments.values():
        configs = inventory_configs(tf_repo, environment.name)
        if not configs:
            missing.append(environment.name)
            continue
        tfvars = environment.tfvars
        pools = tfvars.get("pools") or {}
        written_labels = set(CONTRACT_LABEL_KEYS) | {"accelerator"}
        for path in configs:
            where = tf_repo.relative(path)
            config = yaml.safe_load(path.read_text()) or {}
            if config.get("environment") != tfvars.get("environment"):
                problems.append(
                    f"{where}: environment is {config.get('environment')!r} but {environment.tfvars_relative_path} "
                    f"has environment = {tfvars.get('environment')!r}. Fix: make them equal."
                )
            if tfvars.get("project_id") not in (config.get("projects") or []):
                problems.append(
                    f"{where}: projects {config.get('projects')} do not include {tfvars.get('project_id')}, "
                    "the project "
                    f"of {environment.tfvars_relative_path}. Fix: list it under projects."
                )
            zones = config.get("zones") or []
            for pool_name, pool in pools.items():
                if zones and pool.get("zone") not in zones:
                    problems.append(
                        f"{where}: zones {zones} leave out {pool.get('zone')}, where pool {pool_name} runs, so its "
                        "hosts would be dropped. Fix: add the zone."
                    )
            text = yaml.safe_dump(config)
            referenced = {match for pattern in LABEL_REFERENCE_RES for match in pattern.findall(text)}
            for key in sorted(referenced - written_labels):
                problems.append(
                    f"{where}: refers to label {key!r}, which Terraform does not write (it writes "
                    f"{', '.join(sorted(written_labels))}). Fix: use one of those labels, or add {key} to the "
                    "gpu_pool module."
                )
            for key, value in LABEL_FILTER_RE.findall(" ".join(str(item) for item in config.get("filters") or [])):
                if key == "env" and value != environment.name:
                    problems.append(
                        f"{where}: filters select env {value} in the inventory of {environment.name}. Fix: "
                        f"filter on env {environment.name}."
                    )
                if key == "pool" and value not in pools:
                    problems.append(
                        f"{where}: filters select pool {value}, which {environment.tfvars_relative_path} does "
                        "not declare. Fix: filter on a declared pool."
                    )
                if key == "role" and value not in {pool.get("role") for pool in pools.values()}:
                    problems.append(f"{where}: filters select role {value}, which no pool of {environment.name} has.")
    assert not problems, report(problems)
    if missing:
        pytest.skip(
            f"no inventories/<env>/*.gcp_fleet.yml yet for {', '.join(missing)}: the environment check of the "
            "inventory config did not run for them"
        )
