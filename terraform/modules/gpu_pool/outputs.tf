output "pool_name" {
  description = "Name of the pool, as in the `pool` label."
  value       = var.pool_name
}

output "role" {
  description = "Workload role of the pool, as in the `role` label."
  value       = var.role
}

output "zone" {
  description = "Zone of every VM in the pool."
  value       = var.zone
}

output "labels" {
  description = "Labels on every VM and boot disk of the pool, including the contract labels env, pool, role and managed-by."
  value       = local.labels
}

output "accelerator_type" {
  description = "GPU type of the VMs (built in or attached), for example nvidia-tesla-a100."
  value       = local.gpu_accelerator_type
}

output "on_host_maintenance" {
  description = "Host maintenance policy of the VMs: TERMINATE for every VM with GPUs."
  value       = local.on_host_maintenance
}

output "instances" {
  description = "VMs of the pool, keyed by name suffix: name, zone, internal IP address and self link."
  value = {
    for suffix, instance in google_compute_instance.this : suffix => {
      name        = instance.name
      zone        = instance.zone
      internal_ip = instance.network_interface[0].network_ip
      self_link   = instance.self_link
    }
  }
}

output "instance_names" {
  description = "Names of the pool's VMs, sorted."
  value       = sort(values(local.instances))
}
