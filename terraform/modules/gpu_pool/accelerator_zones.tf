locals {
  # Zones that offer each GPU type, for the zone precondition in main.tf. Only
  # us-central1 is listed; a pool elsewhere fails at plan time until its zone
  # is added here. Compute Engine lists the offered types per zone with
  # `gcloud compute accelerator-types list --filter="zone:ZONE"`.
  # NOTE: these lists were not read back from the Compute API, which the build
  # machines cannot reach. Confirm a zone with the command above before use.
  accelerator_zones = {
    "nvidia-tesla-a100" = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    "nvidia-a100-80gb"  = ["us-central1-a", "us-central1-c"]
    "nvidia-l4"         = ["us-central1-a", "us-central1-b", "us-central1-c"]
    "nvidia-tesla-t4"   = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    "nvidia-tesla-v100" = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
  }
}
