"""Ansible inventory plugin ``osa_ini``: the static INI sources of an OpenStack-Ansible deploy host.

It is ansible-core's ``ini`` plugin with two differences, and etc/ansible/osa-inventory.rc
enables it (with ``script``) instead of ``ini``:

* It takes only sources whose name ends in ``.ini``. Ansible offers a source that one
  plugin failed on to every other enabled plugin; the stock ``ini`` plugin accepts any
  readable file, so a failed run of the inventory command would be parsed again as INI
  text and reported a second time, as an error that has nothing to do with the failure.
* ``inventory.ini`` in ``$OSA_CONFIG_DIR`` (default /etc/openstack_deploy) may be missing:
  it then reads as empty, and the group_vars/ and host_vars/ beside it still apply.
  OpenStack-Ansible's ``openstack-ansible`` command creates that file only when those
  folders exist, and its own wiring lists it all the same; every other source must exist.
"""

from __future__ import annotations

import os

from ansible.plugins.inventory.ini import InventoryModule as IniInventory

DOCUMENTATION = """
    name: osa_ini
    short_description: INI inventory files (*.ini) only; the deployment config folder's inventory.ini is optional
    description:
        - The ini plugin, restricted to sources named *.ini, so that a failed inventory script is not
          parsed again as INI text.
        - A missing inventory.ini in $OSA_CONFIG_DIR (default /etc/openstack_deploy) reads as empty.
"""

DEFAULT_CONFIG_DIR = "/etc/openstack_deploy"


def _optional(path: str) -> bool:
    """Whether ``path`` is the deployment config folder's inventory.ini, which may be absent."""
    config_dir = os.environ.get("OSA_CONFIG_DIR") or DEFAULT_CONFIG_DIR
    return os.path.abspath(path) == os.path.join(os.path.abspath(config_dir), "inventory.ini")


class InventoryModule(IniInventory):
    """ansible-core's ini plugin for ``*.ini`` sources only."""

    NAME = "osa_ini"

    def verify_file(self, path):
        if not str(path).endswith(".ini"):
            return False
        if _optional(path) and not os.path.lexists(path) and os.path.isdir(os.path.dirname(path)):
            return True
        return super().verify_file(path)

    def parse(self, inventory, loader, path, cache=True):
        if _optional(path) and not os.path.lexists(path):
            return  # nothing to add: the folder's group_vars/ and host_vars/ come with the source itself
        super().parse(inventory, loader, path, cache=cache)
