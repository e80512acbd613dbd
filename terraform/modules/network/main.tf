locals {
  network_name = "${var.environment}-gpu"
  regions      = toset([for subnet in values(var.subnets) : subnet.region])

  # Source range of Identity-Aware Proxy TCP forwarding. SSH reaches the GPU
  # hosts only through IAP, which checks IAM before it opens a tunnel.
  iap_tcp_forwarding_range = "35.235.240.0/20"
}

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = local.network_name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "this" {
  for_each = var.subnets

  project       = var.project_id
  name          = each.key
  region        = each.value.region
  network       = google_compute_network.this.id
  ip_cidr_range = each.value.ip_cidr_range
  stack_type    = "IPV4_ONLY"

  # VMs without external IP addresses reach Google APIs (Artifact Registry,
  # Cloud Logging) over internal routes.
  private_ip_google_access = true

  log_config {
    aggregation_interval = var.flow_log_aggregation_interval
    flow_sampling        = var.flow_log_sampling
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  for_each = local.regions

  project = var.project_id
  name    = "${local.network_name}-${each.key}"
  region  = each.key
  network = google_compute_network.this.id
}

# Egress to the internet (package mirrors, container registries outside
# Google) for VMs that have no external IP address.
resource "google_compute_router_nat" "this" {
  for_each = local.regions

  project                            = var.project_id
  name                               = "${local.network_name}-${each.key}"
  region                             = each.key
  router                             = google_compute_router.this[each.key].name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  dynamic "subnetwork" {
    for_each = { for name, subnet in google_compute_subnetwork.this : name => subnet if subnet.region == each.key }
    content {
      name                    = subnetwork.value.self_link
      source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
    }
  }

  log_config {
    enable = true
    filter = var.nat_log_filter
  }
}

resource "google_compute_firewall" "ssh_from_iap" {
  project     = var.project_id
  name        = "${local.network_name}-allow-ssh-from-iap"
  network     = google_compute_network.this.id
  description = "SSH to GPU hosts only through Identity-Aware Proxy TCP forwarding."
  direction   = "INGRESS"
  priority    = 1000

  source_ranges           = [local.iap_tcp_forwarding_range]
  target_service_accounts = var.gpu_host_service_accounts

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "between_gpu_hosts" {
  count = var.allow_traffic_between_gpu_hosts ? 1 : 0

  project     = var.project_id
  name        = "${local.network_name}-allow-between-gpu-hosts"
  network     = google_compute_network.this.id
  description = "Traffic between GPU hosts, for multi-node training. SSH is left out: it comes only through IAP."
  direction   = "INGRESS"
  priority    = 1000

  source_service_accounts = var.gpu_host_service_accounts
  target_service_accounts = var.gpu_host_service_accounts

  allow {
    protocol = "tcp"
    ports    = ["1-21", "23-65535"]
  }

  allow {
    protocol = "udp"
  }

  allow {
    protocol = "icmp"
  }

  log_config {
    metadata = "EXCLUDE_ALL_METADATA"
  }
}
