"""Craton storage: the inventory kept as hosts, labels and region variables of a Craton (API v1) region.

Options (osa.ini section ``[craton]`` or ``OSA_INVENTORY_CRATON_<OPTION>``):

``url``
    API root, e.g. ``https://craton.example.com:7780`` (``/v1`` is added).
``project_id``, ``username``, ``api_key``
    Craton local auth (``X-Auth-Project`` / ``X-Auth-User`` / ``X-Auth-Token``);
    or ``token``: a Keystone token instead (only ``X-Auth-Token`` is sent).
``cloud``, ``region``
    Names of the cloud and region that hold this deployment (created when missing
    unless ``create = false``).
``verify``
    ``true`` (default), ``false`` or the path of a CA bundle.
``timeout`` (seconds, default 30), ``retries`` (default 3), ``backoff`` (seconds, default 0.5)
    Per request; idempotent requests are retried on connection errors, 429 and 5xx.
``cache_dir`` (default: the config folder), ``cache`` (default true)
    Local cache that makes an unchanged run cost one request.
``create`` (default true)
    Create the cloud and region when they do not exist.
``change_records`` (default 20, at most 100)
    How many change records (who, when, from where, with what, why) the region
    keeps for ``--history``.

The options are declared in ``OPTIONS``; relative paths written in osa.ini
are relative to its folder (the loader resolves them), others to the config folder.

This adapter declares the options and hands the contract to the engine in
:mod:`osa_inventory.backends.craton`: the checked options (``options``), the
region and what its variables say (``region``), the full load and the write
protocol (``store``), over the HTTP ``client`` and the local ``cache``. The
mapping, the revision marker, the write protocol and what happens when a
write is interrupted are described in ``docs/craton.md``. Craton keeps no
earlier inventories: ``history()`` lists the change records the region keeps
(``backends/change_records.py``), and there is no ``read_version()``.
"""

from __future__ import annotations

from osa_inventory.accounting import ChangeRecord
from osa_inventory.backends import change_records as records
from osa_inventory.backends.craton.cache import Cache
from osa_inventory.backends.craton.client import CratonClient
from osa_inventory.backends.craton.options import Options, parse_options, uuid_key
from osa_inventory.backends.craton.store import CratonStore
from osa_inventory.errors import StorageError
from osa_inventory.storage.options import Option, declare

OPTIONS = declare(
    Option("url", default="", help="API root; /v1 is added"),
    Option("project_id", default="", help="project UUID (local auth)"),
    Option("username", default="", help="user name (local auth)"),
    Option("api_key", default="", secret=True, help="API key (local auth)"),
    Option("token", default="", secret=True, help="a Keystone token instead of local auth"),
    Option("cloud", default="", help="name of the cloud holding this deployment"),
    Option("region", default="", help="name of the region holding this deployment"),
    Option("verify", "flag_or_path", default=True, help="TLS: true, false or a CA bundle"),
    Option("timeout", "number", default=30.0, minimum=0.001, help="seconds per request"),
    Option("retries", "whole", default=3, minimum=0, help="extra attempts of idempotent requests"),
    Option("backoff", "number", default=0.5, minimum=0.0, help="first back-off delay in seconds"),
    Option("cache_dir", "path", default="", help="folder of the local cache"),
    Option("cache", "flag", default=True, help="keep the local cache"),
    Option("create", "flag", default=True, help="create the cloud and region when missing"),
    Option("change_records", "whole", default=records.DEFAULT_KEEP, minimum=1, maximum=records.MAX_KEEP,
           help="change records kept in the region for --history"),
)


class Storage:
    """The Craton backend; see the module docstring and docs/craton.md."""

    def __init__(self) -> None:
        self.opts: Options | None = None
        self._client: CratonClient | None = None
        self._store: CratonStore | None = None

    def __repr__(self) -> str:
        return f"<craton Storage {self.describe()}>" if self.opts else "<craton Storage (unregistered)>"

    def register(self, args: dict) -> None:
        """Check the options (see docs/craton.md); nothing is sent to Craton yet."""
        self.opts = o = parse_options(args, OPTIONS)
        self._client = CratonClient(o.url, o.headers(), o.who, verify=o.verify, timeout=o.timeout,
                                    retries=o.retries, backoff=o.backoff)
        scope = uuid_key(o.project_id) or "keystone"
        self._store = CratonStore(o, self._client, Cache(o.cache_dir, (o.url, scope, o.cloud, o.region), o.cache))

    def _engine(self) -> CratonStore:
        if self._store is None:
            raise StorageError("the craton backend was used before register()")
        return self._store

    def load(self) -> dict | None:
        """The committed inventory, or None when none is stored."""
        return self._engine().load()

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Store ``inventory`` with its change ``record``; refused, writing nothing, when another run stored or
        is storing meanwhile."""
        # Every commit is accounted for: without a record from the caller, one saying only who and when.
        self._engine().store(inventory, record or ChangeRecord.now(records.UNRECORDED_COMMAND, "", reason=""))

    def history(self) -> list[dict]:
        """The change records kept in the region, oldest first (Craton keeps no earlier inventories)."""
        return self._engine().history()

    def describe(self) -> str:
        """Where the inventory lives, for messages."""
        return self.opts.where if self.opts else "craton (unregistered)"

    def concurrency(self) -> str:
        """What runs that overlap get, for the warning the script gives a plugin without lock()."""
        return ("a run that meets another run's write, or that would replace an inventory stored since "
                "it read, is refused and stores nothing: run it again (docs/craton.md, Writing)")

    def close(self) -> None:
        """Close the connections."""
        if self._client is not None:
            self._client.close()
