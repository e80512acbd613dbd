"""Run ansible-inventory with google.cloud.gcp_compute pointed at a local Compute API emulator.

Usage: python gcp_compute_redirect.py EMULATOR_URL [ansible-inventory arguments...]

gcp_compute (google.cloud 1.10.2, from the ``ansible`` 12.3.0 bundle) has no
endpoint option: it builds its listing URL from the class attribute
``InventoryModule._instances``, a format string on
https://www.googleapis.com/compute/v1/projects/%s/aggregated/instances. This
wrapper replaces that attribute on the loaded plugin class right after Ansible
loads the inventory plugins and before any source is parsed, so every request
goes to the emulator. Nothing else about the plugin changes. Only the
benchmark uses this wrapper.
"""

from __future__ import annotations

import sys

from ansible.inventory import manager

GCP_COMPUTE = "google.cloud.gcp_compute"


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].startswith("http://127."):
        sys.exit("usage: gcp_compute_redirect.py http://127.0.0.1:PORT [ansible-inventory arguments...]")
    endpoint = sys.argv.pop(1).rstrip("/")
    load_plugins = manager.InventoryManager._fetch_inventory_plugins

    def load_and_redirect(self: manager.InventoryManager) -> list:
        plugins = load_plugins(self)
        for plugin in plugins:
            if getattr(plugin, "NAME", "") == GCP_COMPUTE:
                type(plugin)._instances = endpoint + "/compute/v1/projects/%s/aggregated/instances"
        return plugins

    manager.InventoryManager._fetch_inventory_plugins = load_and_redirect

    from ansible.cli.inventory import main as inventory_main  # noqa: PLC0415 (after the patch above)

    sys.argv[0] = "ansible-inventory"
    inventory_main()


if __name__ == "__main__":
    main()
