# Each environment has its own project, so the account IDs need no
# environment prefix: inventory-reader@mlinfra-dev.iam.gserviceaccount.com
# and inventory-reader@mlinfra-prod.iam.gserviceaccount.com are different accounts.
locals {
  # What a workload on a GPU VM needs: pull images, write logs, write metrics.
  # No basic role (owner, editor, viewer) and nothing that can change IAM.
  workload_roles = toset([
    "roles/artifactregistry.reader",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])

  # The inventory plugin only lists instances.
  inventory_reader_roles = toset([
    "roles/compute.viewer",
  ])
}

resource "google_service_account" "workload" {
  project      = var.project_id
  account_id   = "gpu-workload"
  display_name = "GPU workloads (${var.environment})"
  description  = "Runs the GPU VMs of ${var.environment}: pulls images, writes logs and metrics. Managed by Terraform."
}

resource "google_project_iam_member" "workload" {
  for_each = local.workload_roles

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.workload.email}"
}

resource "google_service_account" "inventory_reader" {
  project      = var.project_id
  account_id   = "inventory-reader"
  display_name = "Ansible inventory reader (${var.environment})"
  description  = "Lists the GPU VMs of ${var.environment} for the Ansible inventory plugin. Managed by Terraform."
}

resource "google_project_iam_member" "inventory_reader" {
  for_each = local.inventory_reader_roles

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.inventory_reader.email}"
}

# The inventory plugin authenticates by impersonation, so the reader needs no
# key. The grant is on the one service account, not on the project.
resource "google_service_account_iam_member" "inventory_reader_token_creator" {
  for_each = toset(var.inventory_reader_impersonators)

  service_account_id = google_service_account.inventory_reader.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_org_policy_policy" "disable_service_account_key_creation" {
  count = var.disable_service_account_key_creation ? 1 : 0

  name   = "projects/${var.project_id}/policies/iam.disableServiceAccountKeyCreation"
  parent = "projects/${var.project_id}"

  spec {
    rules {
      enforce = "TRUE"
    }
  }
}
