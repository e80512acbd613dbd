# These outputs feed the inventory plugin configuration
# (inventories/<env>/*.gcp_fleet.yml): its environment and projects keys, and
# the zones and pools it should find.

output "environment" {
  description = "Environment name, the value of the `env` label on every VM."
  value       = var.environment
}

output "project_id" {
  description = "Project that holds the VMs; the inventory configuration lists it under projects."
  value       = var.project_id
}

output "zones" {
  description = "Zones that hold GPU VMs, sorted."
  value       = sort(distinct([for pool in values(var.pools) : pool.zone]))
}

output "pool_names" {
  description = "Pool names, sorted; each needs inventories/<env>/group_vars/pool_<name>.yml with dashes turned into underscores."
  value       = sort(keys(var.pools))
}

output "pools" {
  description = "Per pool: role, zone, machine type, GPU type and VM names."
  value = {
    for name, pool in module.gpu_pool : name => {
      role             = pool.role
      zone             = pool.zone
      machine_type     = var.pools[name].machine_type
      accelerator_type = pool.accelerator_type
      instance_names   = pool.instance_names
    }
  }
}

output "inventory_reader_service_account_email" {
  description = "Service account the inventory plugin impersonates."
  value       = module.iam.inventory_reader_service_account_email
}

output "workload_service_account_email" {
  description = "Service account the GPU VMs run as."
  value       = module.iam.workload_service_account_email
}
