variable "project_id" {
  description = "ID of the Google Cloud project that owns the service accounts and their role bindings."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, shown in the display names and descriptions of the service accounts (for example `dev` or `prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1 to 10 lowercase letters or digits, starting with a letter (for example dev or prod)."
  }
}

variable "inventory_reader_impersonators" {
  description = "IAM members (for example group:ml-platform@example.com) allowed to act as the inventory reader service account through short-lived tokens. No key is ever created for it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.inventory_reader_impersonators : can(regex("^(user|group|serviceAccount|principal|principalSet):.+", member))])
    error_message = "Each inventory_reader_impersonators entry must be an IAM member with a prefix: user:, group:, serviceAccount:, principal: or principalSet:. allUsers and allAuthenticatedUsers are rejected."
  }
}

variable "disable_service_account_key_creation" {
  description = "Enforce the organization policy constraint iam.disableServiceAccountKeyCreation on the project, so that nobody can create user-managed keys. Applying it needs roles/orgpolicy.policyAdmin."
  type        = bool
  default     = true
}
