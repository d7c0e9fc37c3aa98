"""Filesystem storage: the ``openstack_inventory.json`` file OSA's tools read, kept safely.

Options (osa.ini section ``[filesystem]`` or ``OSA_INVENTORY_FILESYSTEM_<OPTION>``):

``path``
    Folder holding the inventory (default: the ``--config`` folder; a
    relative path is relative to it).
``backups``
    How many earlier versions ``backup_openstack_inventory.tar`` keeps (default 15).
``lock_timeout``
    Seconds to wait for another run's lock before giving up (default 300).
``group``
    Group given to the inventory, the backup archive and files set aside
    (default: unset, the inventory keeps the group it has).
``mode``
    Permission bits of those files, octal (e.g. ``0640``; default: unset,
    the inventory keeps its mode and the archive is never looser).

The engine (atomic replaces, the folder lock, the backup archive, the change
records, links followed only when safe) is
:class:`osa_inventory.backends.filesystem.store.FolderStore`; this adapter
checks the options and hands every call of the contract to it.
"""

from __future__ import annotations

import os
import shlex
from typing import ContextManager

from osa_inventory.accounting import ChangeRecord
from osa_inventory.backends.filesystem.store import FolderStore
from osa_inventory.errors import StorageError
from osa_inventory.storage.file_access import FileAccess
from osa_inventory.storage.options import Option, declare, read_options

OPTIONS = declare(
    Option("path", "path", default="", help="folder holding openstack_inventory.json"),
    Option("backups", "whole", default=15, minimum=0, help="earlier versions the backup archive keeps"),
    Option("lock_timeout", "number", default=300.0, minimum=0, help="seconds to wait for another run's lock"),
    Option("group", "text", default="", help="group of the inventory, its backups and files set aside"),
    Option("mode", "text", default="", help="octal mode of those files, e.g. 0640 (no execute, only the owner writes)"),
)


class Storage:
    """The default backend; see the module docstring."""

    def __init__(self) -> None:
        self.store: FolderStore | None = None

    def register(self, args: dict) -> None:
        values = read_options(OPTIONS, args)
        path = values["path"]
        config_dir = args.get("config_dir") or ""
        if not path and not config_dir:
            raise StorageError("option 'path' is not set and no config folder was given")
        # A relative path is relative to the config folder, never to wherever Ansible was started.
        folder = os.path.abspath(os.path.join(config_dir, os.path.expanduser(path)))
        if not os.path.isdir(folder):
            raise StorageError(f"folder {folder} does not exist; create it or set [filesystem] path")
        self.store = FolderStore(
            folder, keep=values["backups"], lock_timeout=values["lock_timeout"],
            access=FileAccess.from_options(values["group"], values["mode"]),
            manage_target=f"--config {shlex.quote(os.path.abspath(config_dir))}" if config_dir else "")

    @property
    def manage_target(self) -> str:
        """How inventory-manage names this store in advice; inventory-manage's ``-f FILE`` sets its own."""
        return self._store().manage_target

    @manage_target.setter
    def manage_target(self, value: str) -> None:
        self._store().manage_target = value

    def _store(self) -> FolderStore:
        if self.store is None:
            raise StorageError("the filesystem backend was used before register()")
        return self.store

    def load(self) -> dict | None:
        """The stored inventory, or None before the first write."""
        return self._store().load()

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Store ``inventory`` (nothing when it is unchanged), archiving the version it replaces.

        ``record`` (who, why) is kept with the new version for ``--history``."""
        self._store().write(inventory, record)

    def describe(self) -> str:
        """``filesystem <path of the inventory>``."""
        return self._store().describe()

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock`` on the folder), re-entrant within this object."""
        return self._store().lock()

    def history(self) -> list[dict]:
        """Earlier versions, oldest first, then the current file."""
        return self._store().history()

    def read_version(self, version: str) -> dict:
        """The inventory of ``version`` (a name ``history()`` lists, or ``current``)."""
        return self._store().read_version(version)
