output "network_id" {
  description = "ID of the VPC network."
  value       = google_compute_network.this.id
}

output "network_self_link" {
  description = "Self link of the VPC network."
  value       = google_compute_network.this.self_link
}

output "subnets" {
  description = "Subnets keyed by name: region, IPv4 range and self link."
  value = {
    for name, subnet in google_compute_subnetwork.this : name => {
      region        = subnet.region
      ip_cidr_range = subnet.ip_cidr_range
      self_link     = subnet.self_link
    }
  }
}

output "subnet_self_links_by_region" {
  description = "Self link of one subnet per region, for placing VMs by zone. With several subnets in one region, the one whose name sorts first is used."
  value = {
    for region in local.regions : region => [
      for name in sort(keys(var.subnets)) : google_compute_subnetwork.this[name].self_link if var.subnets[name].region == region
    ][0]
  }
}
