locals {
  region         = join("-", slice(split("-", var.zone), 0, 2))
  machine_family = split("-", var.machine_type)[0]

  # Machine types of these families carry their GPUs built in: the VM has
  # GPUs although the configuration has no guest_accelerator block. The list
  # must equal BUILTIN_GPU_FAMILIES in plugins/module_utils/gpu_catalog.py,
  # which a test checks.
  builtin_gpu_families = ["a2", "a3", "g2"]

  has_builtin_gpu  = contains(local.builtin_gpu_families, local.machine_family)
  has_attached_gpu = var.accelerator != null

  # local.builtin_gpu_machine_types is generated from gpu_catalog.py into
  # gpu_catalog.tf.json. A machine type of a built-in GPU family that the
  # table lacks is rejected by a precondition below.
  builtin_gpu = lookup(local.builtin_gpu_machine_types, var.machine_type, null)

  gpu_accelerator_type = local.has_attached_gpu ? var.accelerator.type : (local.builtin_gpu == null ? null : local.builtin_gpu.accelerator_type)

  # Compute Engine does not live-migrate a VM with GPUs, because the GPUs are
  # passed through to the guest. Such a VM must stop for host maintenance, and
  # so must a Spot VM. The rule keys on the machine family as well as on the
  # accelerator block: a2, a3 and g2 VMs have GPUs but no accelerator block, so
  # a rule that looked only at the block would leave them on MIGRATE.
  on_host_maintenance = local.has_builtin_gpu || local.has_attached_gpu || var.spot ? "TERMINATE" : "MIGRATE"

  # A Spot VM that Compute Engine reclaimed must not come back on its own.
  automatic_restart = !var.spot

  instance_suffixes = var.instance_suffixes == null ? [for index in range(var.instance_count) : tostring(index)] : var.instance_suffixes

  # Keyed by suffix, so that removing one VM never renames or replaces another.
  instances = { for suffix in local.instance_suffixes : suffix => "${var.environment}-${var.pool_name}-${suffix}" }

  # The label contract with the inventory plugin: it builds the groups
  # env_<env>, pool_<pool> and role_<role> from these keys.
  contract_labels = {
    "env"        = var.environment
    "pool"       = var.pool_name
    "role"       = var.role
    "managed-by" = "terraform"
  }
  # The accelerator label is left out, not set to null, for a VM without GPUs.
  accelerator_label = { for key, value in { "accelerator" = local.gpu_accelerator_type } : key => value if value != null }
  labels            = merge(var.labels, local.contract_labels, local.accelerator_label)

  # Access goes through OS Login and IAP only: no project-wide or instance SSH
  # keys, and no interactive serial console.
  enforced_metadata = {
    "enable-oslogin"         = "TRUE"
    "block-project-ssh-keys" = "TRUE"
    "serial-port-enable"     = "FALSE"
  }
  metadata = merge(var.metadata, local.enforced_metadata)

  accelerator_zones_for_type = local.gpu_accelerator_type == null ? null : lookup(local.accelerator_zones, local.gpu_accelerator_type, null)
}

resource "google_compute_resource_policy" "compact_placement" {
  count = var.compact_placement ? 1 : 0

  project = var.project_id
  name    = "${var.environment}-${var.pool_name}-compact"
  region  = local.region

  group_placement_policy {
    collocation = "COLLOCATED"
  }
}

resource "google_compute_instance" "this" {
  for_each = local.instances

  project      = var.project_id
  name         = each.value
  zone         = var.zone
  machine_type = var.machine_type

  labels              = local.labels
  tags                = var.network_tags
  metadata            = local.metadata
  deletion_protection = var.deletion_protection
  can_ip_forward      = false
  enable_display      = false

  # Changing the machine type needs a stopped VM: let Terraform stop it
  # instead of failing the apply.
  allow_stopping_for_update = true

  resource_policies = var.compact_placement ? [google_compute_resource_policy.compact_placement[0].id] : []

  boot_disk {
    auto_delete       = true
    kms_key_self_link = var.boot_disk_kms_key

    initialize_params {
      image  = var.boot_image
      size   = var.boot_disk_size_gb
      type   = var.boot_disk_type
      labels = local.labels
    }
  }

  network_interface {
    subnetwork = var.subnetwork
    nic_type   = var.nic_type
    # No access_config block: the VM gets no external IP address. Egress
    # goes through Cloud NAT and SSH through IAP.
  }

  # Emitted only when GPUs are attached. A block with count 0 is not the same
  # as no block to recent google provider versions: they plan a replacement.
  dynamic "guest_accelerator" {
    for_each = local.has_attached_gpu ? [var.accelerator] : []
    content {
      type  = guest_accelerator.value.type
      count = guest_accelerator.value.count
    }
  }

  scheduling {
    on_host_maintenance         = local.on_host_maintenance
    automatic_restart           = local.automatic_restart
    preemptible                 = var.spot
    provisioning_model          = var.spot ? "SPOT" : "STANDARD"
    instance_termination_action = var.spot ? var.spot_termination_action : null
  }

  dynamic "reservation_affinity" {
    for_each = var.reservation == null ? [] : [var.reservation]
    content {
      type = reservation_affinity.value.type

      dynamic "specific_reservation" {
        for_each = reservation_affinity.value.type == "SPECIFIC_RESERVATION" ? [reservation_affinity.value.names] : []
        content {
          key    = "compute.googleapis.com/reservation-name"
          values = specific_reservation.value
        }
      }
    }
  }

  shielded_instance_config {
    enable_secure_boot          = var.secure_boot
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  service_account {
    email  = var.service_account_email
    scopes = ["cloud-platform"]
  }

  lifecycle {
    # A newer image in the family must not replace running VMs; new VMs pick
    # it up, and existing ones are upgraded in place by the OS.
    ignore_changes = [boot_disk[0].initialize_params[0].image]

    precondition {
      condition     = local.has_builtin_gpu || local.has_attached_gpu
      error_message = "Pool ${var.pool_name}: machine type ${var.machine_type} has no GPU. Use an a2, a3 or g2 machine type, or an n1 machine type with an accelerator."
    }

    precondition {
      condition     = !(local.has_builtin_gpu && local.has_attached_gpu)
      error_message = "Pool ${var.pool_name}: machine type ${var.machine_type} has built-in GPUs and takes no accelerator. Remove the accelerator."
    }

    precondition {
      condition     = !local.has_attached_gpu || local.machine_family == "n1"
      error_message = "Pool ${var.pool_name}: GPUs attach only to n1 machine types, not to ${var.machine_type}."
    }

    precondition {
      condition     = !local.has_builtin_gpu || local.builtin_gpu != null
      error_message = "Pool ${var.pool_name}: machine type ${var.machine_type} is not in the GPU catalog. Add it to plugins/module_utils/gpu_catalog.py and run terraform/scripts/gpu_catalog_tf.py."
    }

    precondition {
      condition     = local.gpu_accelerator_type == null || local.accelerator_zones_for_type != null
      error_message = "Pool ${var.pool_name}: no zone list for accelerator type ${coalesce(local.gpu_accelerator_type, "none")}. Add it to local.accelerator_zones in accelerator_zones.tf."
    }

    precondition {
      condition     = local.accelerator_zones_for_type == null ? true : contains(local.accelerator_zones_for_type, var.zone)
      error_message = "Pool ${var.pool_name}: accelerator type ${coalesce(local.gpu_accelerator_type, "none")} is not offered in zone ${var.zone}. Pick a zone from local.accelerator_zones in accelerator_zones.tf."
    }
  }
}
