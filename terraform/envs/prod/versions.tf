# NOTE: terraform validate has not run on this configuration, and no
# .terraform.lock.hcl is committed, because the machines that built it have no
# copy of the google provider. Commit the lock file of the first terraform init.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0.0, < 8.0.0"
    }
  }
}
