# State of prod only. The bucket lives in the prod project, so only prod
# deployers can read or lock it. See docs/terraform.md for how the bucket is
# created and who may use it.
terraform {
  backend "gcs" {
    bucket = "mlinfra-prod-tfstate"
    prefix = "envs/prod"
  }
}
