# The prod fleet. Each pool here needs inventories/prod/group_vars/pool_<name>.yml
# (dashes turned into underscores) with the same pool_name and pool_role; a
# test fails when the two sides differ.
environment = "prod"
project_id  = "mlinfra-prod"
region      = "us-central1"

subnets = {
  "prod-gpu-us-central1" = {
    region        = "us-central1"
    ip_cidr_range = "10.20.0.0/20"
  }
}

# Who may impersonate inventory-reader@mlinfra-prod.iam.gserviceaccount.com,
# which the inventory plugin uses. Add the operators' group, for example
# "group:ml-platform@example.com", once it exists.
inventory_reader_impersonators = []

# The Debian NVIDIA driver is built by DKMS on the VM and signed with a local
# key that Secure Boot does not trust, so Secure Boot stays off.
secure_boot = false

pools = {
  "train-a100" = {
    role         = "training"
    machine_type = "a2-highgpu-8g"
    zone         = "us-central1-a"
    count        = 2
    # Both hosts of a two-node job sit close together for NCCL traffic.
    compact_placement = true
    # A lost training VM loses the local checkpoints of a running job.
    deletion_protection = true
  }
  "infer-l4" = {
    role         = "inference"
    machine_type = "g2-standard-8"
    zone         = "us-central1-b"
    count        = 3
  }
  "infer-t4" = {
    role         = "inference"
    machine_type = "n1-standard-8"
    accelerator = {
      type  = "nvidia-tesla-t4"
      count = 1
    }
    zone  = "us-central1-b"
    count = 2
  }
}
