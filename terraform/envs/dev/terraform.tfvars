# The dev fleet. Each pool here needs inventories/dev/group_vars/pool_<name>.yml
# (dashes turned into underscores) with the same pool_name and pool_role; a
# test fails when the two sides differ.
environment = "dev"
project_id  = "mlinfra-dev"
region      = "us-central1"

subnets = {
  "dev-gpu-us-central1" = {
    region        = "us-central1"
    ip_cidr_range = "10.10.0.0/20"
  }
}

# Who may impersonate inventory-reader@mlinfra-dev.iam.gserviceaccount.com,
# which the inventory plugin uses. Add the operators' group, for example
# "group:ml-platform@example.com", once it exists.
inventory_reader_impersonators = []

# The Debian NVIDIA driver is built by DKMS on the VM and signed with a local
# key that Secure Boot does not trust, so Secure Boot stays off.
secure_boot = false

pools = {
  "train-a100" = {
    role         = "training"
    machine_type = "a2-highgpu-1g"
    zone         = "us-central1-a"
    count        = 1
  }
  "infer-l4" = {
    role         = "inference"
    machine_type = "g2-standard-8"
    zone         = "us-central1-b"
    count        = 1
  }
}
