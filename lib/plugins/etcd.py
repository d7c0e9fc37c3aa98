"""etcd storage: the inventory kept in an etcd v3 cluster shared by several deploy hosts.

Options (osa.ini section ``[etcd]`` or ``OSA_INVENTORY_ETCD_<OPTION>``): ``endpoints``,
``prefix``, ``deployment``, ``username``, ``password``, ``ca_cert``, ``cert``, ``key``,
``timeout``, ``lock_ttl``, ``lock_timeout``, ``max_txn_ops``; see docs/etcd.md.

This adapter checks the options and hands the contract to the engine in
:mod:`osa_inventory.backends.etcd`: the keys under the prefix (``layout``), the read
protocol (``reader``: one revision per read, every part checked), the commit protocol
(``writer``: changed parts staged under a fresh tag, then one guarded switch of the
manifest), the lock (``lock``: a lease-bound key), over the JSON-gateway ``client``.
"""

from __future__ import annotations

import os
from typing import ContextManager

from osa_inventory.accounting import ChangeRecord
from osa_inventory.backends.etcd.client import EtcdClient, check_endpoint
from osa_inventory.backends.etcd.identity import check_name
from osa_inventory.backends.etcd.layout import Keys
from osa_inventory.backends.etcd.lock import EtcdLock
from osa_inventory.backends.etcd.reader import Reader, Snapshot
from osa_inventory.backends.etcd.writer import Writer
from osa_inventory.errors import StorageError
from osa_inventory.storage.options import Option, declare, read_options
from osa_inventory.storage.safe_files import Reentrant

DEFAULT_ENDPOINTS = "http://127.0.0.1:2379"
DEFAULT_PREFIX = "/openstack-ansible/inventory/default"

OPTIONS = declare(
    Option("endpoints", default=DEFAULT_ENDPOINTS, help="client URLs of the members, comma separated"),
    Option("prefix", default=DEFAULT_PREFIX, help="key prefix of this deployment"),
    Option("deployment", default="", help="name of this deployment, stored at the prefix"),
    Option("username", default="", help="etcd user"),
    Option("password", default="", secret=True, help="etcd password"),
    Option("ca_cert", "path", default="", help="CA bundle of the members' certificates"),
    Option("cert", "path", default="", help="client certificate"),
    Option("key", "path", default="", help="client certificate's key"),
    Option("timeout", "number", default=10.0, minimum=0.1, help="seconds per request"),
    Option("lock_ttl", "whole", default=60, minimum=2, help="seconds the lock outlives a dead run"),
    Option("lock_timeout", "number", default=300.0, minimum=0, help="seconds to wait for another run's lock"),
    Option("max_txn_ops", "whole", default=128, minimum=8, help="operations per transaction"),
)


class Storage:
    """The etcd backend; see the module docstring."""

    def __init__(self) -> None:
        self.endpoints: list[str] = []
        self.prefix = DEFAULT_PREFIX
        self.keys = Keys(DEFAULT_PREFIX)
        self.timeout = 10.0
        self.lock_ttl = 60
        self.client: EtcdClient | None = None
        self.reader: Reader | None = None
        self.writer: Writer | None = None
        self.etcd_lock: EtcdLock | None = None
        self._snapshot: Snapshot | None = None  # the version last read or stored: what a write builds on
        self._lock = Reentrant(lambda: self._engine()[2])

    def register(self, args: dict) -> None:
        """Check the options (see docs/etcd.md); nothing is sent to etcd yet."""
        values = read_options(OPTIONS, args)
        endpoints = []
        for item in values["endpoints"].replace("\n", ",").split(","):
            if item.strip():
                try:
                    endpoints.append(check_endpoint(item))
                except ValueError as exc:
                    raise StorageError(f"option endpoints: {exc}") from None
        if not endpoints:
            raise StorageError("option endpoints is empty; give the client URLs of the etcd members")
        prefix = values["prefix"].rstrip("/")
        if not prefix:
            raise StorageError(f"option prefix is empty; give a key prefix such as {DEFAULT_PREFIX}")
        username, password = values["username"] or None, values["password"]
        if username and not password:
            raise StorageError("option username is set but password is not; set password "
                               "(or OSA_INVENTORY_ETCD_PASSWORD)")
        if password and not username:
            raise StorageError("option password is set but username is not")
        config_dir = args.get("config_dir") or None  # named in advice, so the printed command reaches this store
        files_dir = config_dir or os.getcwd()
        ca_cert, cert, key = (_file_option(args, name, files_dir) for name in ("ca_cert", "cert", "key"))
        if key and not cert:
            raise StorageError("option key is set but cert is not; set both for TLS client authentication")
        deployment = check_name(values["deployment"])
        self.timeout, self.lock_ttl = values["timeout"], values["lock_ttl"]
        self.endpoints, self.prefix, self.keys = endpoints, prefix, Keys(prefix)
        self.client = EtcdClient(endpoints, self.timeout, username=username, password=password,
                                 ca_cert=ca_cert, cert=cert, key=key, scope=prefix + "/")
        self.reader = Reader(self.client, self.keys, deployment, config_dir)
        self.etcd_lock = EtcdLock(self.keys.lock, self.lock_ttl, client=self.client, timeout=values["lock_timeout"])
        self.writer = Writer(self.client, self.keys, self.reader, self.etcd_lock, values["max_txn_ops"])

    def _engine(self) -> tuple[Reader, Writer, EtcdLock]:
        if self.reader is None or self.writer is None or self.etcd_lock is None:
            raise StorageError("the etcd backend was used before register()")
        return self.reader, self.writer, self.etcd_lock

    def load(self) -> dict | None:
        """The current inventory, read at one revision, or None when none is stored.

        Refuses a prefix that holds another deployment, a damaged version and a
        manifest deleted while its parts remain."""
        self._snapshot = None
        inventory, self._snapshot = self._engine()[0].read(0)
        return inventory

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Store ``inventory`` over the version last loaded (or the current one) under the lock.

        Refuses, writing nothing, when another run stored a version since that load,
        when our lock was lost, and when the prefix holds or nests in another
        deployment. Writes over a damaged current version (what a restore or a
        forced import asks for); the damaged version stays in the history. ``record``
        (who, why) is kept in the new version's manifest."""
        if not isinstance(inventory, dict):
            raise StorageError(f"cannot store a {type(inventory).__name__}; the inventory must be a dict")
        with self.lock():
            self._snapshot = self._engine()[1].write(self._snapshot, inventory, record)

    def describe(self) -> str:
        """Where the inventory lives, for messages; once a version was read or stored, which one."""
        version = self._snapshot.manifest_rev if self._snapshot is not None else 0
        return f"etcd {','.join(self.endpoints)} prefix {self.prefix}" + (f" version {version}" if version else "")

    def lock(self) -> ContextManager[None]:
        """Exclusive across hosts via a lease-bound key; re-entrant within this object.

        With read-only credentials (etcd refuses the lock key) the block runs without
        the lock: reads are whole without it, and every write in it is refused."""
        return self._lock()

    def adopt(self) -> str:
        """Label the deployment stored at the prefix with this run's ``deployment`` name.

        The operator's override for a name mismatch (``inventory-manage.py --adopt``);
        returns what was done."""
        with self.lock():
            done, changed = self._engine()[1].adopt()
            if changed:
                self._snapshot = None
            return done

    def history(self) -> list[dict]:
        """Stored versions, oldest first, as far back as etcd still keeps them."""
        return self._engine()[0].history()

    def read_version(self, version: str) -> dict:
        """The inventory as it was at etcd revision ``version`` (as listed by history())."""
        return self._engine()[0].read_version(version)

    def close(self) -> None:
        """Release a lock still held and close connections."""
        if self._lock.depth and self.etcd_lock is not None:
            self._lock.depth = 0
            self.etcd_lock.release()
        if self.client is not None:
            self.client.close()


def _file_option(args: dict, name: str, config_dir: str) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    path = os.path.join(config_dir, os.path.expanduser(raw))
    if not os.path.isfile(path):
        raise StorageError(f"option {name}: file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise StorageError(f"option {name}: file {path} is not readable by this user")
    return path
