module "iam" {
  source = "../../modules/iam"

  project_id                           = var.project_id
  environment                          = var.environment
  inventory_reader_impersonators       = var.inventory_reader_impersonators
  disable_service_account_key_creation = var.disable_service_account_key_creation
}

module "network" {
  source = "../../modules/network"

  project_id                = var.project_id
  environment               = var.environment
  subnets                   = var.subnets
  gpu_host_service_accounts = [module.iam.workload_service_account_email]
}

module "gpu_pool" {
  source   = "../../modules/gpu_pool"
  for_each = var.pools

  project_id            = var.project_id
  environment           = var.environment
  pool_name             = each.key
  role                  = each.value.role
  machine_type          = each.value.machine_type
  accelerator           = each.value.accelerator
  instance_count        = each.value.count
  instance_suffixes     = each.value.instance_suffixes
  zone                  = each.value.zone
  spot                  = each.value.spot
  compact_placement     = each.value.compact_placement
  reservation           = each.value.reservation
  deletion_protection   = each.value.deletion_protection
  boot_disk_type        = each.value.boot_disk_type
  boot_disk_size_gb     = each.value.boot_disk_size_gb
  boot_image            = var.boot_image
  secure_boot           = var.secure_boot
  subnetwork            = module.network.subnet_self_links_by_region[join("-", slice(split("-", each.value.zone), 0, 2))]
  service_account_email = module.iam.workload_service_account_email
}
