# Identity of the pool. These values become the labels that the inventory
# plugin groups hosts by, so they follow the label value rules of Compute
# Engine: lowercase letters, digits and dashes, at most 63 characters.

variable "project_id" {
  description = "ID of the Google Cloud project that owns the VMs."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, written to the `env` label and used as the VM name prefix (for example `dev` or `prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1 to 10 lowercase letters or digits, starting with a letter (for example dev or prod)."
  }
}

variable "pool_name" {
  description = "Pool name, written to the `pool` label and used in VM names. The inventory turns it into the group `pool_<name>` with dashes replaced by underscores."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.pool_name))
    error_message = "pool_name must match [a-z][a-z0-9-]*, end with a letter or digit and be at most 40 characters long."
  }
}

variable "role" {
  description = "Workload role of the pool, written to the `role` label. Allowed values: training, inference."
  type        = string

  validation {
    condition     = contains(["training", "inference"], var.role)
    error_message = "role must be one of: training, inference."
  }
}

# Shape of each VM.

variable "machine_type" {
  description = "Compute Engine machine type. a2, a3 and g2 types carry built-in GPUs and take no accelerator; n1 types need an accelerator."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.machine_type))
    error_message = "machine_type must be a Compute Engine machine type name such as a2-highgpu-1g, g2-standard-8 or n1-standard-8."
  }
}

variable "accelerator" {
  description = "GPUs attached to an n1 machine type: type (nvidia-tesla-t4 or nvidia-tesla-v100) and count. Leave null for a2, a3 and g2 machine types, whose GPUs are built in."
  type = object({
    type  = string
    count = number
  })
  default = null

  validation {
    condition     = var.accelerator == null ? true : contains(["nvidia-tesla-t4", "nvidia-tesla-v100"], var.accelerator.type)
    error_message = "accelerator.type must be one of: nvidia-tesla-t4, nvidia-tesla-v100. Use an a2, a3 or g2 machine type for A100, H100 or L4 GPUs."
  }

  validation {
    condition = var.accelerator == null ? true : contains(
      var.accelerator.type == "nvidia-tesla-t4" ? [1, 2, 4] : [1, 2, 4, 8],
      var.accelerator.count,
    )
    error_message = "accelerator.count must be 1, 2 or 4 for nvidia-tesla-t4 and 1, 2, 4 or 8 for nvidia-tesla-v100. Omit the accelerator instead of setting count 0."
  }
}

variable "instance_count" {
  description = "Number of VMs in the pool."
  type        = number

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 64 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number from 1 to 64. Remove the pool instead of setting 0."
  }
}

variable "instance_suffixes" {
  description = "Name suffixes of the VMs, one per VM. The default is 0 to instance_count - 1. Set it to retire a VM in the middle without renaming the others (for example [\"0\", \"2\"])."
  type        = list(string)
  default     = null

  validation {
    condition     = var.instance_suffixes == null ? true : alltrue([for suffix in var.instance_suffixes : can(regex("^[a-z0-9]{1,8}$", suffix))])
    error_message = "Each instance suffix must be 1 to 8 lowercase letters or digits."
  }

  validation {
    condition     = var.instance_suffixes == null ? true : length(distinct(var.instance_suffixes)) == var.instance_count
    error_message = "instance_suffixes must hold exactly instance_count distinct suffixes."
  }
}

variable "zone" {
  description = "Zone of every VM in the pool, for example us-central1-a. GPU types are offered only in some zones, so the zone is always explicit."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must be a Compute Engine zone name such as us-central1-a."
  }
}

# Placement and capacity.

variable "spot" {
  description = "Run the VMs as Spot VMs. Compute Engine may stop them at any time, and they do not restart on their own."
  type        = bool
  default     = false
}

variable "spot_termination_action" {
  description = "What Compute Engine does to a Spot VM it reclaims. Allowed values: STOP (keeps the boot disk), DELETE. Used only when spot is true."
  type        = string
  default     = "STOP"

  validation {
    condition     = contains(["STOP", "DELETE"], var.spot_termination_action)
    error_message = "spot_termination_action must be one of: STOP, DELETE."
  }
}

variable "reservation" {
  description = "Reservation affinity: type (ANY_RESERVATION, SPECIFIC_RESERVATION or NO_RESERVATION) and, for SPECIFIC_RESERVATION, the reservation names. Null leaves the Compute Engine default, which consumes any matching reservation."
  type = object({
    type  = string
    names = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.reservation == null ? true : contains(["ANY_RESERVATION", "SPECIFIC_RESERVATION", "NO_RESERVATION"], var.reservation.type)
    error_message = "reservation.type must be one of: ANY_RESERVATION, SPECIFIC_RESERVATION, NO_RESERVATION."
  }

  validation {
    condition     = var.reservation == null ? true : (var.reservation.type == "SPECIFIC_RESERVATION") == (length(var.reservation.names) > 0)
    error_message = "reservation.names must list at least one reservation for SPECIFIC_RESERVATION and must be empty for the other types."
  }
}

variable "compact_placement" {
  description = "Place the pool's VMs close together with a compact placement policy, for lower latency between hosts of one multi-node job."
  type        = bool
  default     = false
}

# Boot disk and guest.

variable "boot_image" {
  description = "Boot image or image family, for example debian-cloud/debian-12. A later image in the family is used only for new VMs: existing VMs keep their disk."
  type        = string
  default     = "debian-cloud/debian-12"
}

variable "boot_disk_type" {
  description = "Boot disk type. Allowed values: pd-balanced, pd-ssd, hyperdisk-balanced."
  type        = string
  default     = "pd-balanced"

  validation {
    condition     = contains(["pd-balanced", "pd-ssd", "hyperdisk-balanced"], var.boot_disk_type)
    error_message = "boot_disk_type must be one of: pd-balanced, pd-ssd, hyperdisk-balanced."
  }
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB. It holds the OS, the NVIDIA driver, the container images and any local scratch data."
  type        = number
  default     = 200

  validation {
    condition     = var.boot_disk_size_gb >= 50 && var.boot_disk_size_gb <= 65536
    error_message = "boot_disk_size_gb must be from 50 to 65536."
  }
}

variable "boot_disk_kms_key" {
  description = "Self link of a Cloud KMS key that encrypts the boot disk (CMEK). Null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "secure_boot" {
  description = <<-EOT
    Turn on Secure Boot. It has no default because it is a real trade-off:
    with Secure Boot on, the kernel loads only modules signed by a key in the
    VM's UEFI database, and an NVIDIA driver that DKMS builds on the VM is
    signed with a local key that the database does not contain, so the GPU
    stays unusable. Set true only with a driver signed by a trusted key.
  EOT
  type        = bool
}

variable "deletion_protection" {
  description = "Let Compute Engine reject deletion of the VMs until this is set back to false."
  type        = bool
  default     = false
}

variable "nic_type" {
  description = "Network interface type. Allowed values: GVNIC, VIRTIO_NET. a3 machine types need GVNIC."
  type        = string
  default     = "GVNIC"

  validation {
    condition     = contains(["GVNIC", "VIRTIO_NET"], var.nic_type)
    error_message = "nic_type must be one of: GVNIC, VIRTIO_NET."
  }
}

# Wiring from the other modules.

variable "subnetwork" {
  description = "Self link of the subnetwork the VMs attach to. It must be in the zone's region."
  type        = string
}

variable "service_account_email" {
  description = "Email of the service account the VMs run as. The Compute Engine default service account is rejected."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]+@[a-z][a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a user-managed service account (NAME@PROJECT.iam.gserviceaccount.com), never the Compute Engine default service account PROJECT_NUMBER-compute@developer.gserviceaccount.com."
  }
}

variable "network_tags" {
  description = "Network tags on the VMs. The firewall rules of the network module select GPU hosts by service account, so no tag is needed for them."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Extra labels. They cannot replace the contract labels env, pool, role, managed-by and accelerator, which this module sets."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.labels), ["env", "pool", "role", "managed-by", "accelerator"])) == 0
    error_message = "labels must not set env, pool, role, managed-by or accelerator: the module sets them from its inputs."
  }
}

variable "metadata" {
  description = "Extra instance metadata. The keys enable-oslogin, block-project-ssh-keys and serial-port-enable are set by the module and cannot be overridden."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.metadata), ["enable-oslogin", "block-project-ssh-keys", "serial-port-enable", "ssh-keys"])) == 0
    error_message = "metadata must not set enable-oslogin, block-project-ssh-keys, serial-port-enable or ssh-keys: access goes through OS Login only."
  }
}
