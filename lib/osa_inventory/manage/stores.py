"""What the tool works on: the backend osa.ini names, another section, or a ``--file``.

Every change goes through ``storage.change`` (shared with the Python API):
under the backend's lock, load, change a copy, write only if it differs.
"""

from __future__ import annotations

import os
import shlex

from ..backends.filesystem import single_file
from ..errors import InventoryError
from ..storage.backend import Backend
from ..storage.loader import open_backend
from ..storage.settings import Settings, read_settings

INVENTORY_NAME = "openstack_inventory.json"


def open_file_backend(path: str) -> Backend:
    """A backend for ``--file PATH``, bypassing osa.ini.

    ``openstack_inventory.json`` goes through the built-in filesystem plugin
    on its folder (same lock, backups and history as the inventory script);
    any other name through
    :mod:`osa_inventory.backends.filesystem.single_file`, so saves go back to PATH.
    """
    path = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise InventoryError(f"--file {path} is a folder; name the inventory file itself")
    if os.path.basename(path) == INVENTORY_NAME:
        # No osa.ini and no OSA_INVENTORY_* variables: only the built-in plugin and this folder.
        settings = Settings(path=None, backend="filesystem", sections={"filesystem": {"path": folder}},
                            environ={})
        backend = open_backend(settings, folder)
        # Its advice (a corrupt file's --restore) must name this file again, not osa.ini's backend.
        backend.storage.manage_target = f"-f {shlex.quote(path)}"
        return backend
    storage = single_file.Storage()
    backend = Backend("file", "file", storage)
    backend.register({"file": path})
    return backend


def open_configured_backend(config_dir: str, section: str | None = None,
                            settings: Settings | None = None) -> Backend:
    """The backend of ``section`` (default: the one osa.ini selects)."""
    return open_backend(settings or read_settings(), config_dir, section)
