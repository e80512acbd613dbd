terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables, which the checks on instance_suffixes need.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0.0, < 8.0.0"
    }
  }
}
