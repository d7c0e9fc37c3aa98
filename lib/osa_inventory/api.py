"""The Python API for helper scripts: the stored inventory, whichever backend osa.ini selects.

::

    from osa_inventory import api

    with api.open_inventory() as inv:
        inv.hosts("galera_all")          # hosts and containers of the group and of its children
        inv.hostvars("aio1")             # one host's variables, as ``--host aio1`` prints them
    with api.open_inventory(write=True) as inv:
        inv.remove("aio1-galera-container-1a2b3c4d", reason="host retired")

Everything that goes wrong is raised as an :class:`~osa_inventory.errors.InventoryError`
(one line naming what is at fault); nothing is printed and nothing exits, not even a
plugin step past ``[inventory] timeout`` (:class:`StorageTimeout`).
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
from typing import Iterator, Mapping

from . import fingerprint
from .errors import (AccessDenied, ConfigError, CorruptInventory, InventoryError, NothingStored, PluginError,
                     SettingsError, StorageError, StorageTimeout)
from .inventory.document import hostvars_of, is_metal
from .inventory.members import group_hosts, group_names
from .deployment_config import DeploymentConfig, read_config
from .inventory.edits import containers_of, remove_hosts
from .inventory.entry_edits import EditRefused, parse_assignment, rename, set_addresses
from .inventory.move import move
from .refresh import Checked, Refreshed, check, config_folder
from .refresh import refresh as _refresh
from .resources import environment_dir
from .storage.change import Account, change_checked, load_required
from .storage.backend import Backend
from .storage.loader import open_backend
from .storage.settings import Settings, read_settings
from .storage.watchdog import RAISE

__all__ = [
    "API_VERSION", "AccessDenied", "Checked", "ConfigError", "CorruptInventory", "EditRefused", "Inventory",
    "InventoryClosed", "InventoryError", "NothingStored", "PluginError", "ReadOnlyInventory", "Refreshed",
    "SettingsError", "StorageError", "StorageTimeout", "UnknownGroup", "UnknownHost", "check_config",
    "inputs_digest", "open_inventory", "refresh",
]

#: Raised (major) when a change breaks callers; the minor part grows with additions.
API_VERSION = (1, 4)  # 1.1: set_address(), rename(), move(), EditRefused; 1.2: refresh(), check_config();
# 1.3: StorageTimeout instead of the end of the process; 1.4: environ=, inputs_digest()
DEFAULT_CONFIG_DIR = "/etc/openstack_deploy"
NAME_ANOTHER = "pass config_dir= or set OSA_CONFIG_DIR"
#: The command a change made through the API records (``--history``), before the method and its arguments.
COMMAND = "osa_inventory.api"

# A library does not print: warnings the storage layer logs go to the caller's logging set-up, if any.
logging.getLogger("osa_inventory").addHandler(logging.NullHandler())


class UnknownGroup(InventoryError, LookupError):
    """No group of that name in the inventory."""


class UnknownHost(InventoryError, LookupError):
    """No host or container of that name in the inventory."""


class ReadOnlyInventory(InventoryError):
    """A change asked of an inventory opened without ``write=True``."""


class InventoryClosed(InventoryError):
    """A change asked after the ``with`` block of :func:`open_inventory` ended."""


def _config_dir(config_dir: str | None, environ: Mapping[str, str] | None) -> str:
    """``config_dir``, else ``$OSA_CONFIG_DIR`` (of ``environ`` when given), else the default; checked."""
    chosen = config_dir or (os.environ if environ is None else environ).get("OSA_CONFIG_DIR") or DEFAULT_CONFIG_DIR
    return config_folder(chosen, NAME_ANOTHER)


def _environ(osa_ini: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the storage settings are read from (``environ``, default ``os.environ``), ``osa_ini``
    (if given) in place of ``$OSA_INI``."""
    environ = dict(os.environ if environ is None else environ)
    if osa_ini is not None:
        environ["OSA_INI"] = os.path.abspath(osa_ini)
    return environ


def _program() -> str:
    """The helper script that runs, for change records (nothing for an interactive interpreter)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "" if name in ("", "-c", "-") else name


class Inventory:
    """The stored inventory as read when it was opened; :meth:`remove` changes the store and this view."""

    def __init__(self, backend: Backend, data: dict, write: bool, settings: Settings | None = None):
        self._backend = backend
        self._settings = settings
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
        words = ["remove", name] + (["--with-containers"] if with_containers else [])

        def change(inventory: dict) -> list[str]:
            if name not in hostvars_of(inventory) and name not in group_hosts(inventory, "all"):
                raise UnknownHost(f"no host {name!r} in the inventory of {self.where}; nothing was changed")
            return remove_hosts(inventory, [name], with_containers)

        self._change(words, change, reason)

    def set_address(self, name: str, addresses: dict[str, str], *, reason: str | None = None) -> None:
        """Give ``name`` the address of each network of ``addresses`` (``{"management": "172.29.236.250"}``).

        As ``inventory-manage --set-address``: each network is a ``cidr_networks`` name of the config
        (read from ``config_dir``), each address a free one of its pool outside ``used_ips``; for the
        management network ``ansible_host`` and ``management_address`` follow. Raises :class:`UnknownHost`
        or :class:`EditRefused` (nothing changed). Needs ``write=True``; recorded like :meth:`remove`.
        """
        if not isinstance(addresses, dict):
            raise EditRefused(f"set_address({name!r}, ...) takes a dict of network name to address, "
                              f"not {type(addresses).__name__}; nothing was changed")
        pairs = [f"{network}={address}" for network, address in addresses.items()]
        for pair in pairs:
            parse_assignment(pair)  # a network or address holding '=' is refused before the config is read
        config = self._config()
        self._change(["set-address", name, *pairs],
                     lambda inventory: set_addresses(self._known(inventory, name), name, pairs, config), reason)

    def rename(self, old: str, new: str, *, reason: str | None = None) -> None:
        """Rename host or container ``old`` to ``new`` everywhere, as ``inventory-manage --rename``.

        Keeps its addresses; a physical host's containers, ``<old>_host_containers`` and every
        ``physical_host`` follow. Refused (:class:`EditRefused`, nothing changed) for a name that
        exists or is not a valid inventory name, a container name that leaves its ``<host>-<type>``
        prefix, and a physical host the config still names. Needs ``write=True``; recorded like :meth:`remove`.
        """
        config = self._config()
        self._change(["rename", old, new],
                     lambda inventory: rename(self._known(inventory, old), old, new, config), reason)

    def move(self, name: str, to: str, *, reason: str | None = None) -> None:
        """Re-home container ``name`` to physical host ``to``, as ``inventory-manage --move NAME --to HOST``.

        ``to`` must be a host the config places this type of container on, still short of its
        count; the container's old host must no longer be given one by the config. Named by
        OSA's pattern for ``to``, it keeps each address still valid on ``to``'s networks and
        gets new ones where not. Raises :class:`UnknownHost` or :class:`EditRefused` (nothing
        changed). Needs ``write=True``; recorded like :meth:`remove`.
        """
        deployment = self._deployment()
        self._change(["move", name, "--to", to],
                     lambda inventory: move(self._known(inventory, name), name, to, deployment), reason)

    def _known(self, inventory: dict, name: str) -> dict:
        if not isinstance(name, str) or not isinstance(hostvars_of(inventory).get(name), dict):
            raise UnknownHost(f"no host {name!r} in the inventory of {self.where}; nothing was changed")
        return inventory

    def _config(self) -> dict:
        return self._deployment().config

    def _deployment(self) -> DeploymentConfig:
        """The deployment config, read and checked as every inventory run reads it."""
        self._writable("a change")
        settings = self._settings or read_settings()
        return read_config(self._backend.config_dir, environment_dir(),
                           str(settings.inventory["unknown_host_groups"]))

    def _writable(self, what: str) -> None:
        if not self._write:
            raise ReadOnlyInventory(f"{what} changes the inventory; open it with write=True")
        if not self._open:
            raise InventoryClosed(f"{what} after the with block of open_inventory(); make changes inside it")

    def _change(self, words: list[str], change, reason: str | None) -> None:
        """Apply ``change`` under the lock and store it with a record of ``words`` and ``reason``."""
        self._writable(f"{words[0]}({', '.join(map(repr, words[1:2]))})")
        program = _program()
        command = f"{COMMAND} {shlex.join(map(str, words))}" + (f" (from {program})" if program else "")
        _written, _notes, self._data = change_checked(self._backend, change, Account(command, reason))

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
                   write: bool = False, *, environ: Mapping[str, str] | None = None) -> Iterator[Inventory]:
    """The stored inventory of the backend osa.ini selects, for the ``with`` block.

    ``osa_ini`` defaults as the commands do (``$OSA_INI``, else ``/etc/ansible/osa.ini``, whose
    absence means the filesystem backend), ``config_dir`` too (``$OSA_CONFIG_DIR``, else
    ``/etc/openstack_deploy``). Without ``write`` nothing is ever written, so a read-only
    account (an etcd reader role) is enough. Raises :class:`NothingStored` when the backend
    holds no inventory yet, and the storage layer's errors (:class:`SettingsError`,
    :class:`PluginError`, :class:`StorageError`, :class:`StorageTimeout`, :class:`AccessDenied`,
    :class:`CorruptInventory`). ``environ`` replaces ``os.environ`` as the source of ``$OSA_INI``,
    ``$OSA_CONFIG_DIR`` and the ``OSA_INVENTORY_*`` settings overrides (the Ansible plugin passes its
    options this way).
    """
    config_dir = _config_dir(config_dir, environ)
    settings = read_settings(_environ(osa_ini, environ))
    backend = open_backend(settings, config_dir, on_timeout=RAISE)
    inventory = None
    try:
        data = load_required(backend, read_only=not write, missing=lambda b: NothingStored(
            f"{b.describe()} holds no inventory yet; the inventory script stores one on its first run"))
        inventory = Inventory(backend, data, write, settings)
        yield inventory
    finally:
        if inventory is not None:
            inventory._open = False
        with contextlib.suppress(InventoryError):
            backend.close()


def refresh(osa_ini: str | None = None, config_dir: str | None = None, environment: str | None = None,
            *, command: str | None = None, environ: Mapping[str, str] | None = None) -> Refreshed:
    """Run the inventory as the inventory script does: generate, store if changed, return it.

    The same reading, checks, lock, write and change record as ``dynamic_inventory.py``
    (:mod:`osa_inventory.refresh`); the record names ``command`` (default: this API and the
    helper script that runs). ``environment`` is the folder holding the base ``env.d/``
    (default: the one shipped with this library). ``osa_ini`` and ``config_dir`` default as in
    :func:`open_inventory`. Returns a :class:`Refreshed`: ``inventory`` (the dict),
    ``text`` (the script's ``--list`` output) and ``changed``. Config problems raise
    :class:`ConfigError` before the backend is opened. ``environ`` as in :func:`open_inventory`.
    """
    config_dir = _config_dir(config_dir, environ)
    if command is None:
        program = _program()
        command = f"{COMMAND} refresh" + (f" (from {program})" if program else "")
    return _refresh(config_dir, environment or environment_dir(), command, _environ(osa_ini, environ),
                    on_timeout=RAISE)


def inputs_digest(osa_ini: str | None = None, config_dir: str | None = None, environment: str | None = None,
                  *, environ: Mapping[str, str] | None = None) -> str:
    """A digest of everything :func:`refresh` with the same arguments depends on, but the stored inventory.

    The bytes of every config, conf.d and env.d file, the settings osa.ini and the
    ``OSA_INVENTORY_*`` variables give, the folders and this library's code
    (:mod:`osa_inventory.fingerprint`: the key the script's own reuse of unchanged runs is
    kept under). A cached result of a refresh whose inputs had this digest is what a refresh
    now gives if the stored inventory still equals that result (see docs/ansible.md,
    "Caching"). Take the digest *before* that refresh: a config changed during it then shows
    as a changed digest. Raises the :class:`InventoryError` of a file that cannot be read.
    """
    environ = _environ(osa_ini, environ)
    return fingerprint.run_inputs(_config_dir(config_dir, environ), environment or environment_dir(), environ)


def check_config(osa_ini: str | None = None, config_dir: str | None = None,
                 environment: str | None = None, *, environ: Mapping[str, str] | None = None) -> Checked:
    """Check the config as ``dynamic_inventory.py --check`` does; nothing is written.

    Raises :class:`ConfigError` (every problem, one per line in its ``lines``) or a storage
    error; returns a :class:`Checked` with the user-defined host groups and the warnings.
    """
    config_dir = _config_dir(config_dir, environ)
    return check(config_dir, environment or environment_dir(), _environ(osa_ini, environ), on_timeout=RAISE)
