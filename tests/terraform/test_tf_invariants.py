"""Invariants of the Terraform configuration, checked offline on the parsed HCL.

Each environment is evaluated with its own tfvars the way ``terraform plan``
would evaluate it, so the checks see the values every VM would get, not just
the text of the modules. Expected GPUs come from the shared GPU catalog
(plugins/module_utils/gpu_catalog.py), never from the Terraform code under
test. Every failure message names the file to change and the fix.
"""

from __future__ import annotations

import re

import pytest
from tf_support.hcl_expr import UNKNOWN
from tf_support.model import ModuleInstance, TerraformRepo, literal_value
from tf_support.queries import (
    ALLOWED_ROLES,
    GPU_POOL_MODULE,
    IAP_TCP_FORWARDING_RANGE,
    block_contains,
    pool_modules,
    pool_vms,
    rendered_resources,
    resource_blocks,
)

from ansible_collections.mlinfra.platform.plugins.module_utils import gpu_catalog

DEFAULT_COMPUTE_SERVICE_ACCOUNT_RE = re.compile(r"^[0-9]+-compute@developer\.gserviceaccount\.com$")
BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
WORKLOAD_ROLES = {"roles/artifactregistry.reader", "roles/logging.logWriter", "roles/monitoring.metricWriter"}
INVENTORY_READER_ROLES = {"roles/compute.viewer"}
GPU_POOL_MAIN = "terraform/modules/gpu_pool/main.tf"


def report(problems: list[str]) -> str:
    return "\n".join(problems)


def gpu_pool_instance(tf_repo: TerraformRepo, **overrides) -> ModuleInstance:
    """Instantiate the gpu_pool module with valid inputs, changed by ``overrides``."""
    inputs = {
        "project_id": "mlinfra-test",
        "environment": "test",
        "pool_name": "pool",
        "role": "training",
        "machine_type": "a2-highgpu-1g",
        "instance_count": 1,
        "zone": "us-central1-a",
        "subnetwork": "projects/mlinfra-test/regions/us-central1/subnetworks/test",
        "service_account_email": "gpu-workload@mlinfra-test.iam.gserviceaccount.com",
        "secure_boot": False,
    }
    inputs.update(overrides)
    return ModuleInstance(tf_repo.modules[GPU_POOL_MODULE], inputs, "module.gpu_pool", "test inputs")


def gpu_machine_shapes() -> list[tuple[str, dict | None]]:
    """Return every machine shape with GPUs: each built-in type of the catalog, and N1 with each attachable GPU."""
    shapes: list[tuple[str, dict | None]] = [(name, None) for name in sorted(gpu_catalog.BUILTIN_GPU_MACHINE_TYPES)]
    shapes += [("n1-standard-8", {"type": "nvidia-tesla-t4", "count": count}) for count in (1, 2, 4)]
    shapes += [("n1-standard-16", {"type": "nvidia-tesla-v100", "count": count}) for count in (1, 2, 4, 8)]
    return shapes


def single_vm(module: ModuleInstance) -> dict:
    rendered = module.render_resource("google_compute_instance", "this")
    assert len(rendered) == 1, f"expected one VM, got {[vm.address for vm in rendered]}"
    return rendered[0].values


# --- GPU VMs ----------------------------------------------------------------------


def test_gpu_vms_terminate_on_maintenance(tf_repo: TerraformRepo):
    problems = []
    for pool_vm in pool_vms(tf_repo):
        _, gpu_count = pool_vm.expected_gpus
        policy = pool_vm.vm.values["scheduling"][0]["on_host_maintenance"]
        if gpu_count and policy != "TERMINATE":
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} has on_host_maintenance = {policy}. "
                "Fix: derive local.on_host_maintenance so that every VM with built-in (a2, a3, g2) or attached "
                "GPUs gets TERMINATE, because Compute Engine cannot live-migrate GPU VMs."
            )
    assert not problems, report(problems)


@pytest.mark.parametrize("spot", [False, True], ids=["standard", "spot"])
def test_gpu_shapes_terminate_on_maintenance(tf_repo: TerraformRepo, spot: bool):
    problems = []
    for machine_type, accelerator in gpu_machine_shapes():
        module = gpu_pool_instance(tf_repo, machine_type=machine_type, accelerator=accelerator, spot=spot)
        scheduling = single_vm(module)["scheduling"][0]
        shape = f"{machine_type} with accelerator {accelerator}" if accelerator else machine_type
        if scheduling["on_host_maintenance"] != "TERMINATE":
            problems.append(
                f"{GPU_POOL_MAIN}: a {shape} VM (spot={spot}) gets on_host_maintenance = "
                f"{scheduling['on_host_maintenance']}. Fix: local.on_host_maintenance must be TERMINATE for every "
                "machine type with GPUs, keyed on the machine family as well as on the accelerator."
            )
        if spot and scheduling["automatic_restart"] is not False:
            problems.append(
                f"{GPU_POOL_MAIN}: a spot {shape} VM has automatic_restart = "
                f"{scheduling['automatic_restart']}. Fix: set it to false for spot VMs."
            )
        if spot and scheduling["instance_termination_action"] not in ("STOP", "DELETE"):
            problems.append(
                f"{GPU_POOL_MAIN}: a spot {shape} VM has instance_termination_action = "
                f"{scheduling['instance_termination_action']}. Fix: set it explicitly to STOP or DELETE."
            )
        if spot and scheduling["provisioning_model"] != "SPOT":
            problems.append(
                f"{GPU_POOL_MAIN}: a spot {shape} VM has provisioning_model = "
                f"{scheduling['provisioning_model']}. Fix: use SPOT."
            )
    assert not problems, report(problems)


def test_no_zero_count_accelerator(tf_repo: TerraformRepo):
    problems = []
    for _, block in resource_blocks(tf_repo, "google_compute_instance"):
        if "guest_accelerator" in block.body:
            problems.append(
                f"{block.file.relative_path}: {block.address} has a static guest_accelerator block. Fix: use a dynamic "
                "guest_accelerator block whose for_each is empty when no GPU is attached, so that no block with "
                "count 0 is ever sent."
            )
    for pool_vm in pool_vms(tf_repo):
        accelerators = pool_vm.vm.values.get("guest_accelerator", [])
        attached = pool_vm.pool.get("accelerator")
        for accelerator in accelerators:
            if not accelerator["count"]:
                problems.append(
                    f"{pool_vm.file}: {pool_vm.description} has a guest_accelerator block with count "
                    f"{accelerator['count']}. Fix: emit the block only for attached GPUs."
                )
        if attached is None and accelerators:
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} has built-in GPUs but gets guest_accelerator {accelerators}. "
                "Fix: emit no accelerator block for a2, a3 and g2 machine types."
            )
        if attached is not None and accelerators != [{"type": attached["type"], "count": attached["count"]}]:
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} declares accelerator {attached} but gets {accelerators}. "
                "Fix: pass the pool's accelerator to the dynamic guest_accelerator block."
            )
    assert not problems, report(problems)


def test_gpu_vms_have_no_external_ip(tf_repo: TerraformRepo):
    problems = []
    for resource_type in (
        "google_compute_instance",
        "google_compute_instance_template",
        "google_compute_region_instance_template",
    ):
        for _, block in resource_blocks(tf_repo, resource_type):
            if block_contains(block.body, "access_config") or block_contains(block.body, "ipv6_access_config"):
                problems.append(
                    f"{block.file.relative_path}: {block.address} has an access_config block, which gives the VM an "
                    "external IP address. Fix: remove it; GPU VMs reach the internet through Cloud NAT and are "
                    "reached through IAP."
                )
    for pool_vm in pool_vms(tf_repo):
        for interface in pool_vm.vm.values["network_interface"]:
            if interface.get("access_config"):
                problems.append(f"{pool_vm.file}: {pool_vm.description} gets an access_config. Fix: remove it.")
    assert not problems, report(problems)


def test_gpu_vms_not_default_service_account(tf_repo: TerraformRepo):
    problems = []
    for pool_vm in pool_vms(tf_repo):
        accounts = pool_vm.vm.values.get("service_account", [])
        if len(accounts) != 1:
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} has {len(accounts)} service_account blocks. "
                "Fix: give the VM exactly one service_account block with the workload account's email."
            )
            continue
        email = accounts[0].get("email")
        if email is None or (email is not UNKNOWN and DEFAULT_COMPUTE_SERVICE_ACCOUNT_RE.match(email)):
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} runs as {email or 'the default service account'}. "
                "Fix: set service_account.email = var.service_account_email."
            )
        instance_body = pool_vm.vm.block.body
        if instance_body["service_account"][0].get("email") != "${var.service_account_email}":
            problems.append(
                f"{pool_vm.file}: the VM's service account must come from var.service_account_email. Fix: set "
                "email = var.service_account_email."
            )

    # The email is known only after apply, so check the wiring and the guard.
    for environment in tf_repo.environments.values():
        arguments = environment.source.modules[GPU_POOL_MODULE].body
        if arguments.get("service_account_email") != "${module.iam.workload_service_account_email}":
            problems.append(
                f"{environment.source.modules[GPU_POOL_MODULE].file.relative_path}: module gpu_pool gets "
                f"service_account_email = {arguments.get('service_account_email')}. "
                "Fix: pass module.iam.workload_service_account_email."
            )
    iam_output = tf_repo.modules["iam"].outputs["workload_service_account_email"]
    if iam_output.body.get("value") != "${google_service_account.workload.email}":
        problems.append(
            f"{iam_output.file.relative_path}: output workload_service_account_email must be "
            "google_service_account.workload.email."
        )

    default_account = gpu_pool_instance(
        tf_repo, service_account_email="123456789012-compute@developer.gserviceaccount.com"
    )
    rejected = [
        check
        for check in default_account.check_validations()
        if "service_account_email" in check.address and check.passed is False
    ]
    if not rejected:
        problems.append(
            "terraform/modules/gpu_pool/variables.tf: variable service_account_email accepts the Compute Engine "
            "default service account. Fix: keep the validation that requires NAME@PROJECT.iam.gserviceaccount.com."
        )
    assert not problems, report(problems)


def test_gpu_vms_os_login_enforced(tf_repo: TerraformRepo):
    expected = {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "serial-port-enable": "FALSE"}
    problems = []
    for pool_vm in pool_vms(tf_repo):
        metadata = pool_vm.vm.values.get("metadata") or {}
        for key, value in expected.items():
            if metadata.get(key) != value:
                problems.append(
                    f"{pool_vm.file}: {pool_vm.description} has metadata {key} = {metadata.get(key)}. "
                    f'Fix: set {key} = "{value}" in local.enforced_metadata, merged last.'
                )
        if "ssh-keys" in metadata:
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} carries ssh-keys metadata. Fix: remove it; access goes "
                "through OS Login."
            )

    override = gpu_pool_instance(tf_repo, metadata={"enable-oslogin": "FALSE"})
    metadata = single_vm(override)["metadata"]
    rejected = [
        check for check in override.check_validations() if "var.metadata" in check.address and check.passed is False
    ]
    if metadata.get("enable-oslogin") != "TRUE" and not rejected:
        problems.append(
            f"{GPU_POOL_MAIN}: extra metadata can turn OS Login off. Fix: merge local.enforced_metadata after "
            "var.metadata and keep the validation on var.metadata."
        )
    assert not problems, report(problems)


def test_gpu_vms_shielded(tf_repo: TerraformRepo):
    problems = []
    for pool_vm in pool_vms(tf_repo):
        configs = pool_vm.vm.values.get("shielded_instance_config", [])
        if len(configs) != 1:
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} has no shielded_instance_config block. Fix: add one "
                "with vTPM and integrity monitoring on."
            )
            continue
        config = configs[0]
        for setting in ("enable_vtpm", "enable_integrity_monitoring"):
            if config.get(setting) is not True:
                problems.append(
                    f"{pool_vm.file}: {pool_vm.description} has {setting} = {config.get(setting)}. Fix: set it to true."
                )
        secure_boot = pool_vm.environment.tfvars.get("secure_boot")
        if not isinstance(secure_boot, bool) or config.get("enable_secure_boot") is not secure_boot:
            problems.append(
                f"{pool_vm.environment.tfvars_relative_path}: secure_boot must be set explicitly to true or false "
                f"and reach every VM; {pool_vm.description} gets {config.get('enable_secure_boot')}. Fix: set "
                "secure_boot in terraform.tfvars and pass var.secure_boot to the gpu_pool module."
            )
    variable = tf_repo.modules[GPU_POOL_MODULE].variables["secure_boot"]
    if "default" in variable.body:
        problems.append(
            f"{variable.file.relative_path}: variable secure_boot has a default. Fix: remove it, so that every "
            "environment chooses Secure Boot against the unsigned NVIDIA kernel modules explicitly."
        )
    assert not problems, report(problems)


def test_pool_zones_pinned(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        for pool_name, pool in (environment.tfvars.get("pools") or {}).items():
            if not pool.get("zone"):
                problems.append(
                    f"{environment.tfvars_relative_path}: pool {pool_name} has no zone. Fix: set zone to a zone that "
                    'offers its GPU type, for example zone = "us-central1-a".'
                )
    # A pool without a zone cannot be evaluated further.
    assert not problems, report(problems)

    for environment in tf_repo.environments.values():
        for pool_name, module in pool_modules(environment).items():
            zone = module.variables.get("zone")
            gpu_type = module.local("gpu_accelerator_type")
            offered = module.local("accelerator_zones").get(gpu_type) if gpu_type else None
            if gpu_type and offered is not None and zone not in offered:
                problems.append(
                    f"{environment.tfvars_relative_path}: pool {pool_name} is in zone {zone}, which does not offer "
                    f"{gpu_type}. Fix: pick one of {', '.join(offered)}."
                )
            if gpu_type and offered is None:
                problems.append(
                    f"terraform/modules/gpu_pool/accelerator_zones.tf: no zone list for {gpu_type} (pool {pool_name}). "
                    "Fix: add the zones that offer it to local.accelerator_zones."
                )
    for pool_vm in pool_vms(tf_repo):
        if pool_vm.vm.values["zone"] != pool_vm.pool.get("zone"):
            problems.append(
                f"{pool_vm.file}: {pool_vm.description} is in zone {pool_vm.vm.values['zone']}, not the pool's "
                "zone. Fix: set zone = var.zone."
            )
    if "default" in tf_repo.modules[GPU_POOL_MODULE].variables["zone"].body:
        problems.append(
            "terraform/modules/gpu_pool/variables.tf: variable zone has a default. Fix: remove it; every pool "
            "names its zone."
        )
    assert not problems, report(problems)


def test_pools_have_role_and_known_machine_type(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        pools = environment.tfvars.get("pools") or {}
        if not pools:
            problems.append(
                f"{environment.tfvars_relative_path}: no pools declared. Fix: declare the environment's pools "
                "in terraform.tfvars."
            )
        for pool_name, pool in pools.items():
            where = f"{environment.tfvars_relative_path}: pool {pool_name}"
            if pool.get("role") not in ALLOWED_ROLES:
                problems.append(
                    f"{where} has role {pool.get('role')!r}. Fix: set role to one of: {', '.join(ALLOWED_ROLES)}."
                )
            machine_type = pool.get("machine_type", "")
            if not gpu_catalog.is_known_machine_type(machine_type):
                problems.append(
                    f"{where} has machine type {machine_type!r}, which the GPU catalog does not know. Fix: use a "
                    "machine type listed in plugins/module_utils/gpu_catalog.py, or add it there and run "
                    "terraform/scripts/gpu_catalog_tf.py."
                )
                continue
            accelerator = pool.get("accelerator")
            attached = (
                [{"acceleratorType": accelerator["type"], "acceleratorCount": accelerator["count"]}]
                if accelerator
                else []
            )
            gpu_type, gpu_count = gpu_catalog.expected_gpus(machine_type, attached)
            if not gpu_count:
                problems.append(
                    f"{where} ({machine_type}) has no GPU. Fix: use an a2, a3 or g2 machine type, or add an "
                    "accelerator to an n1 type."
                )
            elif gpu_catalog.gpu_model(gpu_type) is None:
                problems.append(
                    f"{where} uses GPU type {gpu_type}, which the GPU catalog does not know. Fix: add it to "
                    "GPU_MODELS in gpu_catalog.py."
                )
    assert not problems, report(problems)


def test_validations_and_preconditions_pass(tf_repo: TerraformRepo):
    problems = []
    checked = 0
    for environment in tf_repo.environments.values():
        for module in environment.root.walk():
            problems.extend(module.input_errors)
            problems.extend(
                f"{environment.tfvars_relative_path}: {module.address or 'the root module'} gets undeclared "
                f"attribute {name}, "
                "which Terraform would drop silently. Fix: correct its spelling or declare it in the variable's type."
                for name in module.undeclared_attributes
            )
            for check in [*module.check_validations(), *module.check_preconditions()]:
                checked += 1
                if check.passed is False:
                    problems.append(
                        f"{check.file}: {check.address} rejects the values of {environment.tfvars_relative_path}: "
                        f"{check.message} Fix: change {environment.tfvars_relative_path} as the message says."
                    )
    assert checked > 0, "no validation or precondition was evaluated"
    assert not problems, report(problems)


def test_builtin_gpu_families_match_catalog(tf_repo: TerraformRepo):
    families = literal_value(tf_repo.modules[GPU_POOL_MODULE].locals["builtin_gpu_families"][0])
    assert sorted(families) == sorted(gpu_catalog.BUILTIN_GPU_FAMILIES), (
        f"{GPU_POOL_MAIN}: local.builtin_gpu_families is {families}, but gpu_catalog.BUILTIN_GPU_FAMILIES is "
        f"{sorted(gpu_catalog.BUILTIN_GPU_FAMILIES)}. Fix: make the two lists equal."
    )


def test_vms_keyed_by_for_each(tf_repo: TerraformRepo):
    problems = []
    for _, block in resource_blocks(tf_repo, "google_compute_instance"):
        if "count" in block.body or "for_each" not in block.body:
            problems.append(
                f"{block.file.relative_path}: {block.address} is not keyed with for_each. Fix: use for_each over "
                "stable names, so that removing one VM does not renumber or replace the others."
            )
    for pool_vm in pool_vms(tf_repo):
        if (
            not isinstance(pool_vm.vm.key, str)
            or pool_vm.vm.values["name"] != f"{pool_vm.environment.name}-{pool_vm.pool_name}-{pool_vm.vm.key}"
        ):
            problems.append(
                f"{pool_vm.file}: {pool_vm.vm.address} is named {pool_vm.vm.values['name']}. Fix: name VMs "
                "<env>-<pool>-<suffix>."
            )
    assert not problems, report(problems)


def failed_validations(module: ModuleInstance, variable: str) -> list:
    return [
        check
        for check in module.check_validations()
        if check.address.endswith(f"var.{variable}") and check.passed is False
    ]


def test_gpu_pool_reservation_option(tf_repo: TerraformRepo):
    specific = gpu_pool_instance(tf_repo, reservation={"type": "SPECIFIC_RESERVATION", "names": ["a100-block"]})
    assert single_vm(specific)["reservation_affinity"] == [
        {
            "type": "SPECIFIC_RESERVATION",
            "specific_reservation": [{"key": "compute.googleapis.com/reservation-name", "values": ["a100-block"]}],
        }
    ]
    assert not failed_validations(specific, "reservation")

    assert single_vm(gpu_pool_instance(tf_repo, reservation={"type": "NO_RESERVATION"}))["reservation_affinity"] == [
        {"type": "NO_RESERVATION", "specific_reservation": []}
    ]
    assert single_vm(gpu_pool_instance(tf_repo))["reservation_affinity"] == []

    nameless = gpu_pool_instance(tf_repo, reservation={"type": "SPECIFIC_RESERVATION"})
    assert failed_validations(nameless, "reservation"), "a specific reservation without names must be rejected"
    unknown_type = gpu_pool_instance(tf_repo, reservation={"type": "SOME_RESERVATION"})
    assert failed_validations(unknown_type, "reservation"), "an unknown reservation type must be rejected"


def test_gpu_pool_compact_placement_option(tf_repo: TerraformRepo):
    placed = gpu_pool_instance(tf_repo, compact_placement=True, instance_count=2)
    policies = placed.render_resource("google_compute_resource_policy", "compact_placement")
    assert len(policies) == 1
    assert policies[0].values["group_placement_policy"] == [{"collocation": "COLLOCATED"}]
    assert policies[0].values["region"] == "us-central1"
    # The policy ID is known only after apply, but every VM must refer to it.
    for vm in placed.render_resource("google_compute_instance", "this"):
        assert len(vm.values["resource_policies"]) == 1, vm.address

    unplaced = gpu_pool_instance(tf_repo)
    assert unplaced.render_resource("google_compute_resource_policy", "compact_placement") == []
    assert single_vm(unplaced)["resource_policies"] == []


def test_gpu_pool_instance_suffixes(tf_repo: TerraformRepo):
    default = gpu_pool_instance(tf_repo, instance_count=3)
    names = [vm.values["name"] for vm in default.render_resource("google_compute_instance", "this")]
    assert names == ["test-pool-0", "test-pool-1", "test-pool-2"]

    # Retiring VM 1 keeps the names (and the state addresses) of 0 and 2.
    retired = gpu_pool_instance(tf_repo, instance_count=2, instance_suffixes=["0", "2"])
    vms = retired.render_resource("google_compute_instance", "this")
    assert [vm.key for vm in vms] == ["0", "2"]
    assert [vm.values["name"] for vm in vms] == ["test-pool-0", "test-pool-2"]
    assert not failed_validations(retired, "instance_suffixes")

    mismatched = gpu_pool_instance(tf_repo, instance_count=3, instance_suffixes=["0", "2"])
    assert failed_validations(mismatched, "instance_suffixes"), "suffixes must match instance_count"
    duplicated = gpu_pool_instance(tf_repo, instance_count=2, instance_suffixes=["0", "0"])
    assert failed_validations(duplicated, "instance_suffixes"), "duplicate suffixes must be rejected"


def test_gpu_pool_rejects_wrong_gpu_shapes(tf_repo: TerraformRepo):
    cases = {
        "no GPU": {"machine_type": "n1-standard-8"},
        "accelerator on a built-in GPU type": {
            "machine_type": "g2-standard-8",
            "zone": "us-central1-b",
            "accelerator": {"type": "nvidia-tesla-t4", "count": 1},
        },
        "accelerator on n2": {"machine_type": "n2-standard-8", "accelerator": {"type": "nvidia-tesla-t4", "count": 1}},
        "built-in GPU type missing from the catalog": {"machine_type": "a2-highgpu-3g"},
        "GPU not offered in the zone": {"machine_type": "g2-standard-8", "zone": "us-central1-f"},
    }
    for case, overrides in cases.items():
        module = gpu_pool_instance(tf_repo, **overrides)
        failed = [check for check in module.check_preconditions() if check.passed is False]
        assert failed, f"{GPU_POOL_MAIN}: no precondition rejects the case {case!r}"

    for accelerator in (
        {"type": "nvidia-tesla-t4", "count": 0},
        {"type": "nvidia-tesla-t4", "count": 8},
        {"type": "nvidia-l4", "count": 1},
    ):
        module = gpu_pool_instance(tf_repo, machine_type="n1-standard-8", accelerator=accelerator)
        assert failed_validations(module, "accelerator"), f"accelerator {accelerator} must be rejected"


# --- Environments and state ---------------------------------------------------------


def test_backends_differ_per_environment(tf_repo: TerraformRepo):
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for name, environment in tf_repo.environments.items():
        backend = environment.source.backend()
        if backend is None:
            problems.append(
                f'{environment.source.relative_directory}: no backend block. Fix: add backend "gcs" with its '
                "own bucket and prefix."
            )
            continue
        backend_type, settings, file = backend
        location = (literal_value(settings.get("bucket", "")), literal_value(settings.get("prefix", "")))
        if backend_type != "gcs":
            problems.append(f"{file.relative_path}: backend {backend_type}. Fix: use the gcs backend.")
        if not all(location):
            problems.append(f"{file.relative_path}: the gcs backend needs both bucket and prefix. Fix: set them.")
        if name not in location[1]:
            problems.append(
                f"{file.relative_path}: state prefix {location[1]!r} does not name the environment {name}. "
                f'Fix: use prefix = "envs/{name}".'
            )
        if location in seen:
            problems.append(
                f"{file.relative_path}: backend bucket {location[0]} prefix {location[1]} is also the state of "
                f"{seen[location]}. Fix: give each environment its own bucket or prefix."
            )
        seen[location] = name
    assert {"dev", "prod"} <= set(tf_repo.environments), f"environments found: {sorted(tf_repo.environments)}"
    assert not problems, report(problems)


def test_environment_variable_matches_directory(tf_repo: TerraformRepo):
    problems = []
    for name, environment in tf_repo.environments.items():
        if environment.tfvars.get("environment") != name:
            problems.append(
                f"{environment.tfvars_relative_path}: environment = {environment.tfvars.get('environment')!r} in the "
                f'directory of {name}. Fix: set environment = "{name}".'
            )
        other = {**environment.tfvars, "environment": "not-" + name}
        probe = ModuleInstance(environment.source, other, "", environment.tfvars_relative_path)
        if not any(
            check.passed is False for check in probe.check_validations() if check.address.endswith("var.environment")
        ):
            problems.append(
                f"{environment.source.relative_directory}/variables.tf: variable environment accepts other "
                f'environments than {name}. Fix: validate var.environment == "{name}".'
            )
    assert not problems, report(problems)


def test_provider_versions_pinned(tf_repo: TerraformRepo):
    problems = []
    for source in tf_repo.all_sources():
        blocks = [block for block in source.terraform_blocks if "required_providers" in block.body]
        if not blocks:
            problems.append(
                f"{source.relative_directory}: no required_providers. Fix: pin hashicorp/google in versions.tf."
            )
        for block in blocks:
            if not block.body.get("required_version"):
                problems.append(
                    f'{block.file.relative_path}: no required_version. Fix: set required_version = ">= 1.9.0, < 2.0.0".'
                )
            for providers in block.body["required_providers"]:
                for name, requirement in providers.items():
                    if name.startswith("__"):
                        continue
                    constraint = requirement.get("version", "")
                    if not re.search(r"<\s*\d+\.0\.0|~>\s*\d+\.\d+", constraint):
                        problems.append(
                            f"{block.file.relative_path}: provider {name} version {constraint!r} does not exclude the "
                            'next major version. Fix: use a range such as ">= 7.0.0, < 8.0.0".'
                        )
    assert not problems, report(problems)


def test_prod_guards_against_destroy(tf_repo: TerraformRepo):
    prod = tf_repo.environments["prod"]
    guarded = []
    for block in prod.source.resources.values():
        for lifecycle in block.body.get("lifecycle", []):
            if lifecycle.get("prevent_destroy") is True:
                guarded.append(block)
    assert guarded, (
        f"{prod.source.relative_directory}/main.tf: no resource has prevent_destroy = true. Fix: keep "
        "terraform_data.destroy_guard, whose triggers name the network and the service accounts."
    )
    triggers = " ".join(str(block.body.get("triggers_replace", "")) for block in guarded)
    for reference in ("module.network.network_id", "module.iam.workload_service_account_unique_id"):
        assert reference in triggers, (
            f"{guarded[0].file.relative_path}: the destroy guard does not watch {reference}. Fix: add it to "
            "triggers_replace."
        )


def test_variables_typed_and_described(tf_repo: TerraformRepo):
    problems = []
    for source in tf_repo.all_sources():
        for name, block in source.variables.items():
            for attribute in ("type", "description"):
                if not block.body.get(attribute):
                    problems.append(f"{block.file.relative_path}: variable {name} has no {attribute}. Fix: add one.")
            for validation in block.body.get("validation", []):
                if len(str(validation.get("error_message", ""))) < 20:
                    problems.append(
                        f"{block.file.relative_path}: variable {name} has a validation without a helpful "
                        "error_message. Fix: say what is allowed."
                    )
        for name, block in source.outputs.items():
            if not block.body.get("description"):
                problems.append(f"{block.file.relative_path}: output {name} has no description. Fix: add one.")
    assert not problems, report(problems)


def test_environment_outputs_feed_inventory(tf_repo: TerraformRepo):
    problems = []
    for environment in tf_repo.environments.values():
        for name in ("environment", "project_id", "zones", "pool_names"):
            if name not in environment.source.outputs:
                problems.append(
                    f"{environment.source.relative_directory}/outputs.tf: output {name} is missing. Fix: add "
                    "it; the inventory config is written from it."
                )
        if "zones" in environment.source.outputs:
            zones = environment.root.evaluate_raw(environment.source.outputs["zones"].body["value"])
            expected = sorted({pool["zone"] for pool in environment.tfvars["pools"].values()})
            if zones != expected:
                problems.append(
                    f"{environment.source.relative_directory}/outputs.tf: output zones is {zones}, expected {expected}."
                )
    assert not problems, report(problems)


# --- Network ------------------------------------------------------------------------


def port_ranges(allow: dict) -> list[tuple[int, int]]:
    ports = allow.get("ports") or ["0-65535"]
    ranges = []
    for entry in ports:
        low, _, high = str(entry).partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def allows_ssh(rule: dict) -> bool:
    for allow in rule.get("allow", []):
        if allow.get("protocol") in ("tcp", "all") and any(low <= 22 <= high for low, high in port_ranges(allow)):
            return True
    return False


def test_firewall_ssh_only_from_iap(tf_repo: TerraformRepo):
    problems = []
    rules = list(rendered_resources(tf_repo, "google_compute_firewall"))
    assert rules, "no google_compute_firewall was rendered"
    for environment, rule in rules:
        values = rule.values
        where = f"{rule.block.file.relative_path}: {rule.address} ({environment.name})"
        if values.get("direction", "INGRESS") != "INGRESS" or not values.get("allow"):
            continue
        sources = values.get("source_ranges") or []
        if {"0.0.0.0/0", "::/0"} & set(sources):
            problems.append(f"{where} allows ingress from {sources}. Fix: never allow ingress from the whole internet.")
        if not (values.get("target_service_accounts") or values.get("target_tags")):
            problems.append(f"{where} applies to every VM of the network. Fix: target the GPU hosts' service accounts.")
        if allows_ssh(values) and (
            sources != [IAP_TCP_FORWARDING_RANGE] or values.get("source_service_accounts") or values.get("source_tags")
        ):
            origin = sources or "the VMs of its source_service_accounts or source_tags"
            problems.append(
                f"{where} allows SSH from {origin}. "
                f"Fix: allow port 22 only from the IAP range {IAP_TCP_FORWARDING_RANGE}."
            )
    iap_rules = [rule for _, rule in rules if allows_ssh(rule.values)]
    assert iap_rules, (
        "terraform/modules/network/main.tf: no firewall rule lets IAP reach port 22. Fix: keep "
        "google_compute_firewall.ssh_from_iap."
    )
    assert not problems, report(problems)


def test_subnets_private_access_flow_logs_nat(tf_repo: TerraformRepo):
    problems = []
    subnets = list(rendered_resources(tf_repo, "google_compute_subnetwork"))
    assert subnets, "no google_compute_subnetwork was rendered"
    for environment, subnet in subnets:
        values = subnet.values
        where = f"{subnet.block.file.relative_path}: {subnet.address} ({environment.name})"
        if values.get("private_ip_google_access") is not True:
            problems.append(
                f"{where} has private_ip_google_access = {values.get('private_ip_google_access')}. Fix: set it to true."
            )
        if not values.get("log_config"):
            problems.append(f"{where} has no flow logs. Fix: add a log_config block.")
    for environment in tf_repo.environments.values():
        regions = {subnet["region"] for subnet in environment.tfvars["subnets"].values()}
        nats = {nat.key for env, nat in rendered_resources(tf_repo, "google_compute_router_nat") if env is environment}
        if regions - nats:
            problems.append(
                f"terraform/modules/network/main.tf: regions {sorted(regions - nats)} of {environment.name} "
                "have no Cloud NAT. Fix: create one per subnet region."
            )
    assert not problems, report(problems)


# --- IAM ----------------------------------------------------------------------------


def test_iam_least_privilege(tf_repo: TerraformRepo):
    problems = []
    for forbidden in ("google_service_account_key", "google_project_iam_policy", "google_project_iam_binding"):
        for _, block in resource_blocks(tf_repo, forbidden):
            problems.append(
                f"{block.file.relative_path}: {block.address}. Fix: remove it; service accounts get no user-managed "
                "keys, and project roles are granted with google_project_iam_member only."
            )
    for environment in tf_repo.environments.values():
        iam = environment.root.children["iam"][None]
        granted: dict[str, set[str]] = {}
        for resource_name in ("workload", "inventory_reader"):
            granted[resource_name] = {
                instance.values["role"] for instance in iam.render_resource("google_project_iam_member", resource_name)
            }
        if granted["workload"] != WORKLOAD_ROLES:
            problems.append(
                f"terraform/modules/iam/main.tf: the workload account of {environment.name} gets "
                f"{sorted(granted['workload'])}. Fix: grant exactly {sorted(WORKLOAD_ROLES)}."
            )
        if granted["inventory_reader"] != INVENTORY_READER_ROLES:
            problems.append(
                f"terraform/modules/iam/main.tf: the inventory reader of {environment.name} gets "
                f"{sorted(granted['inventory_reader'])}. Fix: grant only roles/compute.viewer."
            )
        key_policy = iam.render_resource("google_org_policy_policy", "disable_service_account_key_creation")
        if len(key_policy) != 1:
            problems.append(
                f"{environment.tfvars_relative_path}: {environment.name} does not enforce "
                "iam.disableServiceAccountKeyCreation. Fix: leave disable_service_account_key_creation = "
                "true."
            )
    for source in tf_repo.all_sources():
        for source_file in source.files:
            text = source_file.path.read_text()
            for role in BASIC_ROLES:
                if re.search(rf'"{re.escape(role)}"', text):
                    problems.append(
                        f"{source_file.relative_path}: grants the basic role {role}. Fix: use a predefined "
                        "role with only the needed permissions."
                    )
    assert not problems, report(problems)
