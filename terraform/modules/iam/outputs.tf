output "workload_service_account_email" {
  description = "Email of the service account the GPU VMs run as."
  value       = google_service_account.workload.email
}

output "workload_service_account_unique_id" {
  description = "Unique ID of the workload service account. It changes when the account is deleted and created again, even with the same email."
  value       = google_service_account.workload.unique_id
}

output "inventory_reader_service_account_email" {
  description = "Email of the service account the inventory plugin impersonates to list VMs."
  value       = google_service_account.inventory_reader.email
}

output "inventory_reader_service_account_unique_id" {
  description = "Unique ID of the inventory reader service account."
  value       = google_service_account.inventory_reader.unique_id
}
