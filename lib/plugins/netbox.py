"""NetBox storage: the inventory as NetBox devices, virtual machines, clusters and IP addresses.

Options (osa.ini section ``[netbox]`` or ``OSA_INVENTORY_NETBOX_<OPTION>``), declared in
``osa_inventory.backends.netbox.options``:

``url``
    NetBox's address, e.g. ``https://netbox.example.com`` (``/api`` is added).
``token``
    A v2 API token (``nbt_<key>.<secret>``); better ``OSA_INVENTORY_NETBOX_TOKEN``.
``verify``, ``ca_cert``
    TLS: check the certificate (default true), against this CA bundle.
``timeout`` (seconds, default 300)
    Per request; a bulk request of 250 objects takes seconds, minutes on a loaded NetBox.
``site``
    Slug of the site holding this deployment's devices and clusters.
``tag`` (default ``osa-inventory``)
    Slug of the tag on every object this deployment owns: one tag per deployment.
``vrf`` (default: the global table)
    Name of the VRF of the deployment's addresses.
``cluster_type``, ``device_role``, ``vm_role``, ``device_type``
    Slugs of what new objects are made with.
``create`` (default true)
    Create the site, tag, roles, types and the ``osa_inventory`` custom field when missing.
``cache_dir`` (default: the config folder), ``cache`` (default true)
    Local cache that makes an unchanged run cost one request.
``change_records`` (default 20, at most 100)
    Change records kept for ``--history`` (each write also goes into NetBox's changelog).

The mapping, the write protocol and the costs are described in ``docs/netbox.md``;
the engine is the package ``osa_inventory.backends.netbox``.
"""

from __future__ import annotations

import logging

from osa_inventory.accounting import ChangeRecord
from osa_inventory.backends import change_records as records
from osa_inventory.backends.netbox.client import NetBoxClient
from osa_inventory.backends.netbox.options import OPTIONS, Options, parse_options
from osa_inventory.backends.netbox.store import NetBoxCache, Store, WriteConflict
from osa_inventory.errors import AccessDenied

LOG = logging.getLogger(__name__)
__all__ = ["OPTIONS", "Options", "Storage", "WriteConflict"]


class Storage:
    """The NetBox backend; see the module docstring and docs/netbox.md."""

    def __init__(self) -> None:
        self.opts: Options | None = None
        self._store: Store | None = None

    def __repr__(self) -> str:
        return f"<netbox Storage {self.describe()}>"

    # -- contract -------------------------------------------------------------------

    def register(self, args: dict) -> None:
        self.opts = o = parse_options(args)
        client = NetBoxClient(o.url, o.token, verify=o.verify, timeout=o.timeout)
        cache = NetBoxCache(o.cache_dir, ("netbox", o.url, o.site, o.tag), o.cache)
        self._store = Store(o, client, cache)

    def load(self) -> dict | None:
        return self._store.load(self._roll_back)

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Store ``inventory`` with its change ``record``; refused, writing nothing, when another run stored or
        is storing meanwhile."""
        # Every commit is accounted for: without a record from the caller, one saying only who and when.
        self._store.write(inventory, record or ChangeRecord.now(records.UNRECORDED_COMMAND, "", reason=""))

    # -- optional extras ---------------------------------------------------------------

    def history(self) -> list[dict]:
        """The change records the state document keeps, oldest first (NetBox keeps no earlier inventories;
        its changelog has every object change, each with the write's message)."""
        return self._store.history()

    def reserved_addresses(self, networks: list[str]) -> list[dict]:
        """Addresses NetBox holds inside ``networks`` that are not this deployment's (other devices', VIPs,
        IP ranges): the generator keeps them out of what it hands out (docs/writing-plugins.md)."""
        return self._store.reserved(networks)

    def describe(self) -> str:
        return self._store.describe() if self._store else "netbox (unregistered)"

    def concurrency(self) -> str:
        """What runs that overlap get, for the warning the script gives a plugin without lock()."""
        return ("a run that meets another run's write, or that would replace an inventory stored since "
                "it read, is refused and stores nothing: run it again (docs/netbox.md, Writing)")

    def close(self) -> None:
        if self._store is not None:
            self._store.client.close()

    # -- roll-back ------------------------------------------------------------------------

    def _roll_back(self, inventory: dict, marks: list[dict]) -> None:
        """Finish abandoned writes by storing the committed inventory again, recorded as a roll-back."""
        try:
            self._store.write(inventory, records.roll_back_record(marks))
        except WriteConflict as exc:  # another run is finishing them now; the inventory read is right
            LOG.info("%s: not rolling back an unfinished write: %s", self.describe(), exc)
            return
        except AccessDenied as exc:  # a reader's token: readers see the committed inventory all the same
            LOG.info("%s: an interrupted write is left for a run that may write: %s", self.describe(), exc)
            return
        LOG.warning("%s: rolled back a write that was interrupted; the stored inventory is the last committed "
                    "version", self.describe())
