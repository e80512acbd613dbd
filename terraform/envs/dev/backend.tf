# State of dev only. The bucket lives in the dev project, so dev deployers
# can read and lock it without any access to prod state. See
# docs/terraform.md for how the bucket is created and who may use it.
terraform {
  backend "gcs" {
    bucket = "mlinfra-dev-tfstate"
    prefix = "envs/dev"
  }
}
