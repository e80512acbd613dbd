variable "environment" {
  description = "Environment this directory manages. It must be prod: the backend of this directory holds prod state only."
  type        = string

  validation {
    condition     = var.environment == "prod"
    error_message = "environment must be prod in terraform/envs/prod. Apply dev from terraform/envs/dev, which has its own state."
  }
}

variable "project_id" {
  description = "ID of the Google Cloud project of this environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "Default region of the google provider, for example us-central1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Compute Engine region name such as us-central1."
  }
}

variable "subnets" {
  description = "Subnets keyed by name: region and primary IPv4 range (CIDR). Every pool's zone must lie in a region that has a subnet."
  type = map(object({
    region        = string
    ip_cidr_range = string
  }))
}

variable "pools" {
  description = "GPU pools keyed by pool name: role (training or inference), machine_type, optional accelerator for n1 machine types, count of VMs and zone, plus placement options."
  type = map(object({
    role         = string
    machine_type = string
    accelerator = optional(object({
      type  = string
      count = number
    }))
    count               = number
    zone                = string
    instance_suffixes   = optional(list(string))
    spot                = optional(bool, false)
    compact_placement   = optional(bool, false)
    deletion_protection = optional(bool, false)
    boot_disk_type      = optional(string, "pd-balanced")
    boot_disk_size_gb   = optional(number, 200)
    reservation = optional(object({
      type  = string
      names = optional(list(string), [])
    }))
  }))

  validation {
    condition     = alltrue([for name in keys(var.pools) : can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", name))])
    error_message = "Each pool name must match [a-z][a-z0-9-]*, end with a letter or digit and be at most 40 characters long."
  }

  validation {
    condition     = alltrue([for pool in values(var.pools) : contains(["training", "inference"], pool.role)])
    error_message = "Each pool role must be one of: training, inference."
  }

  validation {
    condition     = alltrue([for pool in values(var.pools) : pool.count >= 1 && pool.count <= 64 && floor(pool.count) == pool.count])
    error_message = "Each pool count must be a whole number from 1 to 64. Remove a pool instead of setting count 0."
  }

  validation {
    condition     = alltrue([for pool in values(var.pools) : can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", pool.machine_type))])
    error_message = "Each pool machine_type must be a Compute Engine machine type name such as a2-highgpu-1g, g2-standard-8 or n1-standard-8."
  }

  validation {
    condition     = alltrue([for pool in values(var.pools) : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", pool.zone))])
    error_message = "Each pool zone must be a Compute Engine zone name such as us-central1-a."
  }

  validation {
    condition = alltrue([
      for pool in values(var.pools) : contains([for subnet in values(var.subnets) : subnet.region], join("-", slice(split("-", pool.zone), 0, 2)))
    ])
    error_message = "Each pool zone must lie in a region that has an entry in subnets."
  }

  validation {
    condition     = alltrue([for pool in values(var.pools) : pool.accelerator == null ? true : contains(["nvidia-tesla-t4", "nvidia-tesla-v100"], pool.accelerator.type) && pool.accelerator.count >= 1])
    error_message = "Each pool accelerator must have type nvidia-tesla-t4 or nvidia-tesla-v100 and a count of at least 1. Leave accelerator out for a2, a3 and g2 machine types, whose GPUs are built in."
  }
}

variable "secure_boot" {
  description = "Turn on Secure Boot on every GPU VM. With it on, the kernel refuses an NVIDIA driver that DKMS built and signed with a local key, so set true only with a driver signed by a trusted key."
  type        = bool
}

variable "boot_image" {
  description = "Boot image or image family of the GPU VMs."
  type        = string
  default     = "debian-cloud/debian-12"
}

variable "inventory_reader_impersonators" {
  description = "IAM members allowed to impersonate the inventory reader service account, for example group:ml-platform@example.com."
  type        = list(string)
  default     = []
}

variable "disable_service_account_key_creation" {
  description = "Enforce iam.disableServiceAccountKeyCreation on the project. Applying it needs roles/orgpolicy.policyAdmin."
  type        = bool
  default     = true
}
