"""What the tool works on: the backend osa.ini names, another section, or a ``--file``.

Also the one way every change is made: under the backend's lock, load,
change a copy, write only if it differs.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Callable

from ..errors import InventoryError
from ..resources import inventory_command
from ..storage.backend import Backend
from ..storage.loader import open_backend
from ..storage.settings import Settings, read_settings
from . import single_file
from .recording import Account

INVENTORY_NAME = "openstack_inventory.json"


def open_file_backend(path: str) -> Backend:
    """A backend for ``--file PATH``, bypassing osa.ini.

    ``openstack_inventory.json`` goes through the built-in filesystem plugin
    on its folder (same lock, backups and history as the inventory script);
    any other name through :mod:`single_file`, so saves go back to PATH.
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


def copy_of(inventory: dict) -> dict:
    """A deep copy (a JSON round trip is faster than deepcopy and proves it is plain JSON)."""
    return json.loads(json.dumps(inventory))


def load_required(backend: Backend) -> dict:
    """The stored inventory, or one line saying nothing is stored yet."""
    data = backend.load()
    if data is None:
        raise InventoryError(
            f"{backend.describe()} holds no inventory yet; run {inventory_command(backend.config_dir)} first "
            "or bring one in with --import FILE")
    return data


def change_stored(backend: Backend, change: Callable[[dict], list[str]],
                  account: Account | None = None) -> tuple[bool, list[str], dict]:
    """Apply ``change`` to the stored inventory under the lock; store it only if it changed.

    The write carries ``account``'s record of it. Returns whether it was
    written, the lines ``change`` reported and the resulting inventory.
    """
    with backend.lock():
        stored = load_required(backend)
        edited = copy_of(stored)
        notes = change(edited)
        if edited == stored:
            return False, notes, stored
        backend.write(edited, record=account.record(stored, edited) if account else None)
        return True, notes, edited
