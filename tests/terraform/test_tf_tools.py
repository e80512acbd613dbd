"""External tools on the Terraform tree: terraform fmt and validate, checkov, generated files.

Each tool test skips with its reason when the tool is not on the machine.
No test reaches the network: terraform runs with CHECKPOINT_DISABLE=1 and
installs providers only from a local filesystem mirror, and checkov runs
with --skip-download, inside an empty network namespace where unshare works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tf_support.model import TerraformRepo

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = shutil.which("terraform")
DEFAULT_CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"

# Checks that must run and pass, so that a checkov that stops seeing the VMs,
# firewall rules, subnets or role bindings (for example after a parser change)
# fails this test instead of passing with nothing checked.
EXPECTED_CHECKOV_PASSES = {
    "CKV_GCP_2": "no SSH from 0.0.0.0/0",
    "CKV_GCP_26": "VPC flow logs on every subnet",
    "CKV_GCP_30": "VMs do not use the default service account",
    "CKV_GCP_32": "project-wide SSH keys blocked",
    "CKV_GCP_35": "serial port disabled",
    "CKV_GCP_36": "IP forwarding off",
    "CKV_GCP_39": "Shielded VM",
    "CKV_GCP_40": "no public IP",
    "CKV_GCP_74": "Private Google Access on subnets",
    "CKV_GCP_117": "no basic roles",
}

# Places where a Terraform filesystem mirror may hold the google provider.
PROVIDER_MIRROR_CANDIDATES = (
    os.environ.get("MLINFRA_TF_PROVIDER_MIRROR"),
    os.environ.get("TF_PLUGIN_CACHE_DIR"),
    str(Path.home() / ".terraform.d" / "plugins"),
    str(Path.home() / ".local" / "share" / "terraform" / "plugins"),
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/opt/tf-plugins",
)


def terraform_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", **extra}


def test_terraform_fmt_clean(tf_repo: TerraformRepo):
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH, so terraform fmt -check -recursive did not run")
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color", "terraform"],
        cwd=tf_repo.root,
        env=terraform_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "terraform fmt -check found unformatted files under terraform/. Fix: run `terraform fmt -recursive "
        "terraform`.\n"
        f"{result.stdout}{result.stderr}"
    )


def checkov_executable() -> Path | None:
    override = os.environ.get("MLINFRA_CHECKOV")
    path = Path(override) if override else DEFAULT_CHECKOV
    if path.is_dir():
        path = path / "bin" / "checkov"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def offline_prefix() -> list[str]:
    """Return a command prefix that runs a program without network access, or [] where that is not possible."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "--net"]
    return []


def run_checkov(root: Path) -> dict:
    executable = checkov_executable()
    if executable is None:
        pytest.skip(
            f"checkov not found at {os.environ.get('MLINFRA_CHECKOV') or DEFAULT_CHECKOV}: create it with "
            "`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-checkov.txt`, "
            "or point MLINFRA_CHECKOV at a checkov executable or venv"
        )
    command = [
        *offline_prefix(),
        str(executable),
        "--directory",
        "terraform",
        "--framework",
        "terraform",
        "--skip-download",
        "--output",
        "json",
    ]
    result = subprocess.run(
        command,
        cwd=root,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), f"checkov failed to run (exit {result.returncode}):\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    terraform_reports = [report for report in reports if report.get("check_type") == "terraform"]
    assert len(terraform_reports) == 1, (
        f"expected one terraform report from checkov, got {[report.get('check_type') for report in reports]}"
    )
    return terraform_reports[0]


def test_checkov_gcp_checks_clean(tf_repo: TerraformRepo):
    report = run_checkov(tf_repo.root)
    summary = report["summary"]
    results = report["results"]

    failures = [
        f"{check['file_path'].lstrip('/')}: {check['resource']} fails {check['check_id']} ({check['check_name']}). "
        f"Fix: change the resource, or skip the check in place with `#checkov:skip={check['check_id']}:<reason>`."
        for check in results.get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0, f"checkov could not parse some files: {summary}"
    assert not failures, "\n".join(failures)

    unexplained_skips = [
        f"{check['file_path'].lstrip('/')}: {check['resource']} skips {check['check_id']} without a reason. "
        f"Fix: write `#checkov:skip={check['check_id']}:<why the check does not apply>`."
        for check in results.get("skipped_checks", [])
        if not (check.get("check_result", {}).get("suppress_comment") or "").strip()
    ]
    assert not unexplained_skips, "\n".join(unexplained_skips)

    passed = {check["check_id"] for check in results.get("passed_checks", [])}
    missing = {check_id: meaning for check_id, meaning in EXPECTED_CHECKOV_PASSES.items() if check_id not in passed}
    assert not missing, (
        f"checkov did not pass these checks on terraform/ (did it stop seeing the resources?): {missing}"
    )

    # The list of passed and skipped checks, for the record (pytest -rA or -s shows it).
    print(
        f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped"
    )
    for check_id in sorted(passed):
        print(f"passed {check_id}")
    for check in results.get("skipped_checks", []):
        print(f"skipped {check['check_id']} on {check['resource']}: {check['check_result']['suppress_comment']}")


def google_provider_mirror() -> Path | None:
    """Return a filesystem mirror that contains hashicorp/google, in Terraform's packed or unpacked layout."""
    for candidate in PROVIDER_MIRROR_CANDIDATES:
        if not candidate:
            continue
        provider_dir = Path(candidate) / "registry.terraform.io" / "hashicorp" / "google"
        if provider_dir.is_dir() and any(provider_dir.iterdir()):
            return Path(candidate)
    return None


def test_terraform_validate(tmp_path: Path):
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH, so terraform init -backend=false && terraform validate did not run")
    mirror = google_provider_mirror()
    if mirror is None:
        searched = ", ".join(candidate for candidate in PROVIDER_MIRROR_CANDIDATES if candidate)
        pytest.skip(
            "the google provider cannot be installed: this test installs providers only from a local filesystem "
            f"mirror, and none holds registry.terraform.io/hashicorp/google (searched {searched}). Build one with "
            "`terraform providers mirror DIR` on a machine that reaches the registry and set "
            "MLINFRA_TF_PROVIDER_MIRROR=DIR"
        )

    # Work on a copy, so that .terraform/ and lock files never land in the checkout.
    shutil.copytree(REPO_ROOT / "terraform", tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    cli_config = tmp_path / "terraformrc"
    # Only a filesystem mirror and no direct installation: terraform init cannot reach the registry.
    cli_config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path    = "{mirror}"\n    include = '
        '["registry.terraform.io/*/*"]\n  }\n}\n'
    )
    env = terraform_env(TF_CLI_CONFIG_FILE=str(cli_config))
    for environment_dir in sorted((tmp_path / "terraform" / "envs").iterdir()):
        for command in (["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color"]):
            result = subprocess.run(
                [TERRAFORM, *command],
                cwd=environment_dir,
                env=env,
                check=False,
                capture_output=True,
                text=True,
                timeout=300,
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, (
                f"terraform {command[0]} failed in terraform/envs/{environment_dir.name}:\n{output}"
            )


def test_module_readme_tables_current(tf_repo: TerraformRepo):
    result = subprocess.run(
        [sys.executable, "terraform/scripts/module_docs.py", "--check"],
        cwd=tf_repo.root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_catalog_tf_json_current(tf_repo: TerraformRepo):
    result = subprocess.run(
        [sys.executable, "terraform/scripts/gpu_catalog_tf.py", "--check"],
        cwd=tf_repo.root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
