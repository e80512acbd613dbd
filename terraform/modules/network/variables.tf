variable "project_id" {
  description = "ID of the Google Cloud project that owns the network."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, used as the prefix of every resource name (for example `dev` or `prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1 to 10 lowercase letters or digits, starting with a letter (for example dev or prod)."
  }
}

variable "subnets" {
  description = "Subnets keyed by name: region and primary IPv4 range (CIDR). Each region with a subnet gets a Cloud Router and a Cloud NAT gateway."
  type = map(object({
    region        = string
    ip_cidr_range = string
  }))

  validation {
    condition     = length(var.subnets) > 0
    error_message = "subnets must declare at least one subnet."
  }

  validation {
    condition     = alltrue([for name, subnet in var.subnets : can(regex("^[a-z]([a-z0-9-]{0,48}[a-z0-9])?$", name))])
    error_message = "Each subnet name must match [a-z][a-z0-9-]*, end with a letter or digit and be at most 50 characters long."
  }

  validation {
    condition     = alltrue([for subnet in values(var.subnets) : can(regex("^[a-z]+-[a-z]+[0-9]+$", subnet.region))])
    error_message = "Each subnet region must be a Compute Engine region name such as us-central1."
  }

  validation {
    condition     = alltrue([for subnet in values(var.subnets) : can(cidrhost(subnet.ip_cidr_range, 0))])
    error_message = "Each subnet ip_cidr_range must be an IPv4 CIDR block such as 10.10.0.0/20."
  }
}

variable "gpu_host_service_accounts" {
  description = "Emails of the service accounts the GPU VMs run as. The firewall rules select GPU hosts by these accounts, which only IAM can change, rather than by network tags, which any instance admin can set."
  type        = list(string)

  validation {
    condition     = length(var.gpu_host_service_accounts) > 0
    error_message = "gpu_host_service_accounts must list at least one service account email."
  }
}

variable "allow_traffic_between_gpu_hosts" {
  description = "Allow TCP (except SSH), UDP and ICMP between GPU hosts, which multi-node training (NCCL) and health checks between hosts need."
  type        = bool
  default     = true
}

variable "flow_log_aggregation_interval" {
  description = "Aggregation interval of VPC flow logs. Allowed values: INTERVAL_5_SEC, INTERVAL_30_SEC, INTERVAL_1_MIN, INTERVAL_5_MIN, INTERVAL_10_MIN, INTERVAL_15_MIN."
  type        = string
  default     = "INTERVAL_5_SEC"

  validation {
    condition     = contains(["INTERVAL_5_SEC", "INTERVAL_30_SEC", "INTERVAL_1_MIN", "INTERVAL_5_MIN", "INTERVAL_10_MIN", "INTERVAL_15_MIN"], var.flow_log_aggregation_interval)
    error_message = "flow_log_aggregation_interval must be one of: INTERVAL_5_SEC, INTERVAL_30_SEC, INTERVAL_1_MIN, INTERVAL_5_MIN, INTERVAL_10_MIN, INTERVAL_15_MIN."
  }
}

variable "flow_log_sampling" {
  description = "Fraction of packets that VPC flow logs sample, greater than 0 and at most 1."
  type        = number
  default     = 0.5

  validation {
    condition     = var.flow_log_sampling > 0 && var.flow_log_sampling <= 1
    error_message = "flow_log_sampling must be greater than 0 and at most 1."
  }
}

variable "nat_log_filter" {
  description = "Which Cloud NAT events are logged. Allowed values: ERRORS_ONLY, TRANSLATIONS_ONLY, ALL."
  type        = string
  default     = "ERRORS_ONLY"

  validation {
    condition     = contains(["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"], var.nat_log_filter)
    error_message = "nat_log_filter must be one of: ERRORS_ONLY, TRANSLATIONS_ONLY, ALL."
  }
}
