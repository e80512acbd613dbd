"""Mutation checks: break one invariant in a copy of the configuration and expect a named test to fail.

Each case copies terraform/, inventories/ and the GPU catalog to a temporary
directory, makes one change, and runs the named test function against the
copy. The case passes only if that test fails with a message that names the
file to change and states the fix ("Fix:").
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_tf_invariants
import test_tf_label_contract
import test_tf_tools
from tf_support.model import load_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_POOL_MAIN = "terraform/modules/gpu_pool/main.tf"
DEV_TFVARS = "terraform/envs/dev/terraform.tfvars"
PROD_TFVARS = "terraform/envs/prod/terraform.tfvars"


@dataclass(frozen=True)
class Mutation:
    """One change to a copy of the checkout and the test that must catch it."""

    name: str
    path: str
    old: str | None  # None: write `new` as the whole file; with rename_to: move the file
    new: str
    test: object
    message_path: str
    rename_to: str | None = None


MUTATIONS = [
    Mutation(
        "a2 pool without TERMINATE",
        GPU_POOL_MAIN,
        'builtin_gpu_families = ["a2", "a3", "g2"]',
        'builtin_gpu_families = ["a3", "g2"]',
        test_tf_invariants.test_gpu_vms_terminate_on_maintenance,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "built-in GPU families differ from the catalog",
        GPU_POOL_MAIN,
        'builtin_gpu_families = ["a2", "a3", "g2"]',
        'builtin_gpu_families = ["a2", "g2"]',
        test_tf_invariants.test_builtin_gpu_families_match_catalog,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "MIGRATE written into the resource",
        GPU_POOL_MAIN,
        "on_host_maintenance         = local.on_host_maintenance",
        'on_host_maintenance         = "MIGRATE"',
        test_tf_invariants.test_gpu_vms_terminate_on_maintenance,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "access config added",
        GPU_POOL_MAIN,
        "    nic_type   = var.nic_type\n",
        "    nic_type   = var.nic_type\n    access_config {}\n",
        test_tf_invariants.test_gpu_vms_have_no_external_ip,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "static accelerator block with count 0",
        GPU_POOL_MAIN,
        "  scheduling {\n",
        '  guest_accelerator {\n    type  = "nvidia-tesla-t4"\n    count = 0\n  }\n\n  scheduling {\n',
        test_tf_invariants.test_no_zero_count_accelerator,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "default service account",
        GPU_POOL_MAIN,
        "email  = var.service_account_email",
        'email  = "123456789012-compute@developer.gserviceaccount.com"',
        test_tf_invariants.test_gpu_vms_not_default_service_account,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "OS Login off",
        GPU_POOL_MAIN,
        '"enable-oslogin"         = "TRUE"',
        '"enable-oslogin"         = "FALSE"',
        test_tf_invariants.test_gpu_vms_os_login_enforced,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "vTPM off",
        GPU_POOL_MAIN,
        "enable_vtpm                 = true",
        "enable_vtpm                 = false",
        test_tf_invariants.test_gpu_vms_shielded,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "VMs keyed by count",
        GPU_POOL_MAIN,
        "  for_each = local.instances\n",
        "  count = var.instance_count\n",
        test_tf_invariants.test_vms_keyed_by_for_each,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "pool without zone",
        DEV_TFVARS,
        '    zone         = "us-central1-a"\n',
        "",
        test_tf_invariants.test_pool_zones_pinned,
        DEV_TFVARS,
    ),
    Mutation(
        "pool in a zone without its GPU",
        DEV_TFVARS,
        '    zone         = "us-central1-b"\n',
        '    zone         = "us-central1-f"\n',
        test_tf_invariants.test_pool_zones_pinned,
        DEV_TFVARS,
    ),
    Mutation(
        "unknown machine type",
        DEV_TFVARS,
        '"a2-highgpu-1g"',
        '"a2-highgpu-3g"',
        test_tf_invariants.test_pools_have_role_and_known_machine_type,
        DEV_TFVARS,
    ),
    Mutation(
        "pool role outside the allowed values",
        DEV_TFVARS,
        'role         = "training"',
        'role         = "batch"',
        test_tf_invariants.test_pools_have_role_and_known_machine_type,
        DEV_TFVARS,
    ),
    Mutation(
        "misspelled pool option",
        DEV_TFVARS,
        '    zone         = "us-central1-b"\n    count        = 1\n',
        '    zone         = "us-central1-b"\n    count        = 1\n    compact_placment = true\n',
        test_tf_invariants.test_validations_and_preconditions_pass,
        DEV_TFVARS,
    ),
    Mutation(
        "accelerator on a built-in GPU machine type",
        PROD_TFVARS,
        '    machine_type = "g2-standard-8"\n',
        '    machine_type = "g2-standard-8"\n    accelerator = {\n      type  = "nvidia-tesla-t4"\n      count '
        "= 1\n    }\n",
        test_tf_invariants.test_validations_and_preconditions_pass,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "prod state in the dev bucket",
        "terraform/envs/prod/backend.tf",
        'bucket = "mlinfra-prod-tfstate"\n    prefix = "envs/prod"',
        'bucket = "mlinfra-dev-tfstate"\n    prefix = "envs/dev"',
        test_tf_invariants.test_backends_differ_per_environment,
        "terraform/envs/prod/backend.tf",
    ),
    Mutation(
        "dev accepts another environment",
        "terraform/envs/dev/variables.tf",
        'condition     = var.environment == "dev"',
        'condition     = var.environment != ""',
        test_tf_invariants.test_environment_variable_matches_directory,
        "terraform/envs/dev/variables.tf",
    ),
    Mutation(
        "provider without an upper bound",
        "terraform/modules/gpu_pool/versions.tf",
        'version = ">= 7.0.0, < 8.0.0"',
        'version = ">= 7.0.0"',
        test_tf_invariants.test_provider_versions_pinned,
        "terraform/modules/gpu_pool/versions.tf",
    ),
    Mutation(
        "prod destroy guard off",
        "terraform/envs/prod/main.tf",
        "prevent_destroy = true",
        "prevent_destroy = false",
        test_tf_invariants.test_prod_guards_against_destroy,
        "terraform/envs/prod/main.tf",
    ),
    Mutation(
        "SSH from anywhere",
        "terraform/modules/network/main.tf",
        "source_ranges           = [local.iap_tcp_forwarding_range]",
        'source_ranges           = ["0.0.0.0/0"]',
        test_tf_invariants.test_firewall_ssh_only_from_iap,
        "terraform/modules/network/main.tf",
    ),
    Mutation(
        "SSH between GPU hosts",
        "terraform/modules/network/main.tf",
        'ports    = ["1-21", "23-65535"]',
        'ports    = ["1-65535"]',
        test_tf_invariants.test_firewall_ssh_only_from_iap,
        "terraform/modules/network/main.tf",
    ),
    Mutation(
        "subnet without Private Google Access",
        "terraform/modules/network/main.tf",
        "private_ip_google_access = true",
        "private_ip_google_access = false",
        test_tf_invariants.test_subnets_private_access_flow_logs_nat,
        "terraform/modules/network/main.tf",
    ),
    Mutation(
        "basic role for workloads",
        "terraform/modules/iam/main.tf",
        '"roles/monitoring.metricWriter",',
        '"roles/editor",',
        test_tf_invariants.test_iam_least_privilege,
        "terraform/modules/iam/main.tf",
    ),
    Mutation(
        "user-managed service account key",
        "terraform/modules/iam/main.tf",
        'resource "google_service_account" "inventory_reader" {',
        'resource "google_service_account_key" "workload" {\n  service_account_id = '
        "google_service_account.workload.name\n}\n\n"
        'resource "google_service_account" "inventory_reader" {',
        test_tf_invariants.test_iam_least_privilege,
        "terraform/modules/iam/main.tf",
    ),
    Mutation(
        "role label removed",
        GPU_POOL_MAIN,
        '    "role"       = var.role\n',
        "",
        test_tf_label_contract.test_labels_written_on_every_vm,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "pool label no longer groups hosts",
        GPU_POOL_MAIN,
        '    "pool"       = var.pool_name\n',
        '    "pool-name"  = var.pool_name\n',
        test_tf_label_contract.test_inventory_groups_from_labels,
        GPU_POOL_MAIN,
    ),
    Mutation(
        "pool renamed in tfvars only: no group_vars",
        DEV_TFVARS,
        '"train-a100" = {',
        '"train-big" = {',
        test_tf_label_contract.test_declared_pools_have_group_vars,
        DEV_TFVARS,
    ),
    Mutation(
        "pool renamed in tfvars only: group_vars left over",
        DEV_TFVARS,
        '"train-a100" = {',
        '"train-big" = {',
        test_tf_label_contract.test_group_vars_pools_are_declared,
        "inventories/dev/group_vars/pool_train_a100.yml",
    ),
    Mutation(
        "pool renamed in group_vars only",
        "inventories/dev/group_vars/pool_infer_l4.yml",
        None,
        "",
        test_tf_label_contract.test_group_vars_pools_are_declared,
        "inventories/dev/group_vars/pool_infer_l40.yml",
        rename_to="inventories/dev/group_vars/pool_infer_l40.yml",
    ),
    Mutation(
        "group_vars role differs from tfvars",
        "inventories/prod/group_vars/pool_infer_t4.yml",
        "pool_role: inference",
        "pool_role: training",
        test_tf_label_contract.test_declared_pools_have_group_vars,
        "inventories/prod/group_vars/pool_infer_t4.yml",
    ),
    Mutation(
        "inventory config of another environment",
        "inventories/dev/mutation.gcp_fleet.yml",
        None,
        "---\nplugin: mlinfra.platform.gcp_fleet\nenvironment: prod\nprojects:\n  - mlinfra-dev\n",
        test_tf_label_contract.test_inventory_config_matches_tfvars,
        "inventories/dev/mutation.gcp_fleet.yml",
    ),
    Mutation(
        "inventory config drops a pool's zone",
        "inventories/dev/mutation.gcp_fleet.yml",
        None,
        "---\nplugin: mlinfra.platform.gcp_fleet\nenvironment: dev\nprojects:\n  - mlinfra-dev\nzones:\n  - "
        "us-central1-a\n",
        test_tf_label_contract.test_inventory_config_matches_tfvars,
        "inventories/dev/mutation.gcp_fleet.yml",
    ),
    Mutation(
        "inventory config filters on an unwritten label",
        "inventories/dev/mutation.gcp_fleet.yml",
        None,
        "---\nplugin: mlinfra.platform.gcp_fleet\nenvironment: dev\nprojects:\n  - mlinfra-dev\nfilters:\n  - "
        "labels.team = ml\n",
        test_tf_label_contract.test_inventory_config_matches_tfvars,
        "inventories/dev/mutation.gcp_fleet.yml",
    ),
    Mutation(
        "inventory config groups by an unwritten label",
        "inventories/prod/mutation.gcp_fleet.yml",
        None,
        "---\nplugin: mlinfra.platform.gcp_fleet\nenvironment: prod\nprojects:\n  - mlinfra-prod\n"
        "keyed_groups:\n  - key: gce_labels['team']\n    prefix: team\n"
        "groups:\n  big: gce_labels.get('size') == 'big'\n",
        test_tf_label_contract.test_inventory_config_matches_tfvars,
        "inventories/prod/mutation.gcp_fleet.yml",
    ),
    Mutation(
        "README table out of date",
        "terraform/modules/gpu_pool/variables.tf",
        'description = "Number of VMs in the pool."',
        'description = "How many VMs the pool has."',
        test_tf_tools.test_module_readme_tables_current,
        "terraform/modules/gpu_pool/README.md",
    ),
    Mutation(
        "GPU catalog changed without regenerating the Terraform table",
        "plugins/module_utils/gpu_catalog.py",
        '    "g2-standard-96": BuiltinGpus("nvidia-l4", 8, False),\n',
        '    "g2-standard-96": BuiltinGpus("nvidia-l4", 8, False),\n    "g2-standard-192": '
        'BuiltinGpus("nvidia-l4", 16, False),\n',
        test_tf_tools.test_gpu_catalog_tf_json_current,
        "terraform/modules/gpu_pool/gpu_catalog.tf.json",
    ),
    Mutation(
        "unformatted HCL",
        "terraform/modules/iam/main.tf",
        '  role               = "roles/iam.serviceAccountTokenCreator"',
        '  role = "roles/iam.serviceAccountTokenCreator"',
        test_tf_tools.test_terraform_fmt_clean,
        "terraform/modules/iam/main.tf",
    ),
    Mutation(
        "checkov: SSH open to the internet",
        "terraform/modules/network/main.tf",
        "source_ranges           = [local.iap_tcp_forwarding_range]",
        'source_ranges           = ["0.0.0.0/0"]',
        test_tf_tools.test_checkov_gcp_checks_clean,
        "modules/network/main.tf",
    ),
]


def copy_checkout(destination: Path) -> Path:
    """Copy what the Terraform tests read into ``destination``, with the collection link made relative to it."""
    shutil.copytree(
        REPO_ROOT / "terraform", destination / "terraform", ignore=shutil.ignore_patterns(".terraform", "__pycache__")
    )
    shutil.copytree(
        REPO_ROOT / "inventories", destination / "inventories", ignore=shutil.ignore_patterns("generated_*")
    )
    shutil.copytree(REPO_ROOT / "plugins", destination / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    # The link .collections/ansible_collections/mlinfra/platform -> ../../.. is relative, so the copy points at itself.
    shutil.copytree(REPO_ROOT / ".collections", destination / ".collections", symlinks=True)
    return destination


def apply(mutation: Mutation, root: Path) -> None:
    path = root / mutation.path
    if mutation.rename_to:
        path.rename(root / mutation.rename_to)
        return
    if mutation.old is None:
        path.write_text(mutation.new)
        return
    text = path.read_text()
    assert text.count(mutation.old) == 1, (
        f"{mutation.path}: the text to change must occur exactly once: {mutation.old!r}"
    )
    path.write_text(text.replace(mutation.old, mutation.new))


def test_unchanged_copy_passes(tmp_path: Path):
    """The copy itself passes, so a failure after a mutation comes from the mutation."""
    repo = load_repo(copy_checkout(tmp_path))
    for test in {
        mutation.test
        for mutation in MUTATIONS
        if "checkov" not in mutation.name and "fmt" not in mutation.test.__name__
    }:
        test(repo)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[mutation.name for mutation in MUTATIONS])
def test_mutation_fails_named_test(tmp_path: Path, mutation: Mutation):
    root = copy_checkout(tmp_path)
    apply(mutation, root)
    repo = load_repo(root)

    with pytest.raises(AssertionError) as failure:
        mutation.test(repo)

    message = str(failure.value)
    assert mutation.message_path in message, (
        f"{mutation.test.__name__} failed without naming {mutation.message_path}:\n{message}"
    )
    assert "Fix:" in message, f"{mutation.test.__name__} failed without saying how to fix it:\n{message}"
