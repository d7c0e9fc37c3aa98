"""The Python API for helper scripts: the stored inventory, whichever backend osa.ini selects.

::

    from osa_inventory import api

    with api.open_inventory() as inv:
        inv.hosts("galera_all")          # hosts and containers of the group and of its children
        inv.hostvars("aio1")             # one host's variables, as ``--host aio1`` prints them
    with api.open_inventory(write=True) as inv:
        inv.remove("aio1-galera-container-1a2b3c4d", reason="host retired")

Everything that goes wrong is raised as an :class:`~osa_inventory.errors.InventoryError`
(one line naming what is at fault); nothing is printed and nothing exits.
Reading writes nothing; :meth:`Inventory.remove` takes the backend's lock,
reads the stored inventory again, removes and writes with a change record,
as ``inventory-manage -r`` does (``--history`` shows who, from where and
why). docs/api.md is the reference.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
from typing import Iterator

from .errors import (AccessDenied, ConfigError, CorruptInventory, InventoryError, PluginError, SettingsError,
                     StorageError)
from .inventory.document import hostvars_of, is_metal
from .inventory.members import group_hosts, group_names
from .inventory.edits import containers_of, remove_hosts
from .storage.change import Account, change_stored
from .storage.backend import Backend
from .storage.loader import open_backend
from .storage.settings import read_settings

__all__ = [
    "API_VERSION", "AccessDenied", "ConfigError", "CorruptInventory", "Inventory", "InventoryClosed",
    "InventoryError", "NothingStored", "PluginError", "ReadOnlyInventory", "SettingsError", "StorageError",
    "UnknownGroup", "UnknownHost", "open_inventory",
]

#: Raised (major) when a change breaks callers; the minor part grows with additions.
API_VERSION = (1, 0)
DEFAULT_CONFIG_DIR = "/etc/openstack_deploy"
#: The command a change made through the API records (``--history``), before the method and its arguments.
COMMAND = "osa_inventory.api"

# A library does not print: warnings the storage layer logs go to the caller's logging set-up, if any.
logging.getLogger("osa_inventory").addHandler(logging.NullHandler())


class NothingStored(InventoryError):
    """The backend holds no inventory yet (the inventory script has not stored one)."""


class UnknownGroup(InventoryError, LookupError):
    """No group of that name in the inventory."""


class UnknownHost(InventoryError, LookupError):
    """No host or container of that name in the inventory."""


class ReadOnlyInventory(InventoryError):
    """A change asked of an inventory opened without ``write=True``."""


class InventoryClosed(InventoryError):
    """A change asked after the ``with`` block of :func:`open_inventory` ended."""


def _default_config_dir() -> str:
    return os.environ.get("OSA_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def _program() -> str:
    """The helper script that runs, for change records (nothing for an interactive interpreter)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "" if name in ("", "-c", "-") else name


class Inventory:
    """The stored inventory as read when it was opened; :meth:`remove` changes the store and this view."""

    def __init__(self, backend: Backend, data: dict, write: bool):
        self._backend = backend
        self._data = data
        self._write = write
        self._open = True
        self.where = backend.describe()
        """Where the inventory is stored, in one line (``filesystem /etc/openstack_deploy/...``)."""

    def groups(self) -> list[str]:
        """Every group name, sorted (``all`` and ``_meta`` are not groups here)."""
        return group_names(self._data)

    def hosts(self, group: str) -> list[str]:
        """The hosts and containers of ``group`` and of its children, each once; ``all`` is every host.

        Own hosts first, then the children's level by level (docs/api.md). Raises :class:`UnknownGroup`.
        """
        found = group_hosts(self._data, group)
        if found is None:
            raise UnknownGroup(f"no group {group!r} in the inventory of {self.where}; "
                               "see groups() for the names")
        return found

    def hostvars(self, host: str) -> dict:
        """A copy of one host's or container's variables, as the inventory script's ``--host`` prints them."""
        return _copy(self._entry(host))

    def containers_on(self, host: str) -> list[str]:
        """The containers whose ``physical_host`` is ``host``, in stored order."""
        self._entry(host)
        return containers_of(self._data, host)

    def is_metal(self, host: str) -> bool:
        """Whether ``host`` runs on the physical host itself (no container)."""
        return is_metal(self._entry(host))

    def to_ansible(self) -> dict:
        """A copy of the whole inventory: the dict the inventory script prints for an unchanged config."""
        return _copy(self._data)

    def remove(self, name: str, *, reason: str | None = None, with_containers: bool = False) -> None:
        """Remove host or container ``name`` from every group and from hostvars, as ``inventory-manage -r``.

        Under the backend's lock, on the inventory stored now; written with a change record
        naming this user, host, the command and ``reason`` (default: ``$OSA_INVENTORY_REASON``).
        ``with_containers`` also removes the containers of a physical host. Needs ``write=True``.
        The next inventory run adds the entry back if the config still produces it.
        """
        if not self._write:
            raise ReadOnlyInventory(f"remove({name!r}) changes the inventory; open it with write=True")
        if not self._open:
            raise InventoryClosed(f"remove({name!r}) after the with block of open_inventory(); "
                                  "make changes inside it")
        words = ["remove", name] + (["--with-containers"] if with_containers else [])
        program = _program()
        command = f"{COMMAND} {shlex.join(words)}" + (f" (from {program})" if program else "")

        def change(inventory: dict) -> list[str]:
            if name not in hostvars_of(inventory) and name not in group_hosts(inventory, "all"):
                raise UnknownHost(f"no host {name!r} in the inventory of {self.where}; nothing was changed")
            return remove_hosts(inventory, [name], with_containers)

        _written, _notes, self._data = change_stored(self._backend, change, Account(command, reason))

    def _entry(self, host: str) -> dict:
        entry = hostvars_of(self._data).get(host)
        if not isinstance(entry, dict):
            raise UnknownHost(f"no host {host!r} in the inventory of {self.where}; see hosts('all') for the names")
        return entry


def _copy(data: dict) -> dict:
    # A JSON round trip: callers may change what they get without changing the view (or the store).
    return json.loads(json.dumps(data))


@contextlib.contextmanager
def open_inventory(osa_ini: str | None = None, config_dir: str | None = None,
                   write: bool = False) -> Iterator[Inventory]:
    """The stored inventory of the backend osa.ini selects, for the ``with`` block.

    ``osa_ini`` defaults as the commands do (``$OSA_INI``, else ``/etc/ansible/osa.ini``, whose
    absence means the filesystem backend), ``config_dir`` too (``$OSA_CONFIG_DIR``, else
    ``/etc/openstack_deploy``). Without ``write`` nothing is ever written, so a read-only
    account (an etcd reader role) is enough. Raises :class:`NothingStored` when the backend
    holds no inventory yet, and the storage layer's errors (:class:`SettingsError`,
    :class:`PluginError`, :class:`StorageError`, :class:`AccessDenied`, :class:`CorruptInventory`).
    """
    config_dir = os.path.abspath(config_dir or _default_config_dir())
    if not os.path.isdir(config_dir):
        raise ConfigError(f"config folder {config_dir} does not exist; pass config_dir= or set OSA_CONFIG_DIR")
    environ = dict(os.environ)
    if osa_ini is not None:
        environ["OSA_INI"] = os.path.abspath(osa_ini)
    backend = open_backend(read_settings(environ), config_dir)
    inventory = None
    try:
        data = backend.load(read_only=not write)
        if data is None:
            raise NothingStored(f"{backend.describe()} holds no inventory yet; the inventory script stores "
                                "one on its first run")
        inventory = Inventory(backend, data, write)
        yield inventory
    finally:
        if inventory is not None:
            inventory._open = False
        with contextlib.suppress(InventoryError):
            backend.close()
