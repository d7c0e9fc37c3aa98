"""The storage plugin behind every caller: :class:`Backend`, with every failure made one clear line.

The contract's calls (``register``, ``load``, ``write``) and the optional
ones (``lock``, ``history``, ``read_version``, ``describe``, ``adopt``,
``close``) go through :class:`Backend`, which bounds each by ``[inventory]
timeout`` (:mod:`.watchdog`; the front end chooses whether a step past it
ends the process or raises :class:`~osa_inventory.errors.StorageTimeout`), turns whatever the plugin raises into one
:class:`~osa_inventory.errors.StorageError` naming the backend, hands
``write()`` a private copy and checks what ``load()`` gives back
(:mod:`osa_inventory.inventory.shape`). A refusal that the operator repairs
with inventory-manage is a typed error carrying what the advice needs
(:class:`~osa_inventory.errors.CorruptInventory`,
:class:`~osa_inventory.errors.NoVersions`): the commands build the advice,
naming the tool as the operator runs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import Any, Callable, Iterator

from .. import accounting
from ..accounting import ChangeRecord
from ..bounded import check_nesting, known_values
from ..errors import (AccessDenied, CorruptInventory, InventoryError, NoVersions, StorageError, StorageTimeout,
                      one_line)
from ..inventory.shape import check_inventory
from . import read_only as read_only_reads
from . import watchdog
from .protocol import accepts_record
from .watchdog import DEFAULT_TIMEOUT, EXIT, TIMEOUT_CHOICES

LOG = logging.getLogger(__name__)

#: The version name every backend accepts for the inventory stored now (docs/operations.md).
CURRENT = "current"

_WARNED_NO_LOCK: set[str] = set()


class Backend:
    """A registered storage plugin instance, with every failure made one clear line.

    ``load``/``write`` are the contract; ``lock``, ``history``, ``read_version``
    and ``describe`` use the plugin's optional methods when it has them. Every
    call into the plugin is bounded by ``timeout`` seconds (see
    :mod:`.watchdog`): past it, ``on_timeout="exit"`` ends the process with one
    line (the commands), ``"raise"`` raises :class:`StorageTimeout` (the API).
    Anything the plugin raises, even a ``BaseException`` such as ``SystemExit``,
    becomes one :class:`StorageError` line naming the backend and the method.
    """

    def __init__(self, section: str, plugin: str, storage: Any, timeout: float = DEFAULT_TIMEOUT,
                 timeout_advice: str = "raise [inventory] timeout in osa.ini", config_dir: str | None = None,
                 bounded: bool = False, on_timeout: str = EXIT):
        if on_timeout not in TIMEOUT_CHOICES:
            raise ValueError(f"on_timeout must be one of {TIMEOUT_CHOICES}, not {on_timeout!r}")
        self.section = section
        self.on_timeout = on_timeout
        self.config_dir = config_dir
        self.plugin = plugin
        self.storage = storage
        self.timeout = timeout
        self.timeout_advice = timeout_advice
        # The built-in plugins parse through osa_inventory.bounded, which refuses deep nesting already;
        # what any other plugin gives back is checked here, before recursive code meets it.
        self.bounded = bounded
        self._write_takes_record: bool | None = None  # asked once, at the first write

    @property
    def label(self) -> str:
        return self.section if self.section == self.plugin else f"{self.section} (plugin {self.plugin})"

    def _timed_out(self, what: str) -> str:
        return (f"storage backend {self.label} did not {what} within {self.timeout:g} s; "
                f"check the backend, or {self.timeout_advice}")

    def _call(self, what: str, func, *args):
        try:
            with watchdog.limit(self.timeout, lambda: self._timed_out(what), self.on_timeout):
                return func(*args)
        except watchdog.LimitReached:
            raise  # already names the backend, the step and the advice
        except InventoryError as exc:
            # An access refusal stays one, so callers never advise what only other credentials can fix;
            # a plugin's own time limit stays one too.
            kind = next((k for k in (AccessDenied, StorageTimeout) if isinstance(exc, k)), StorageError)
            raise kind(f"storage backend {self.label}: {self._own_section(one_line(exc))}") from None
        except BaseException as exc:  # even sys.exit() or GeneratorExit must not end the run silently
            raise StorageError(
                f"storage backend {self.label} failed to {what}: {type(exc).__name__}: {one_line(exc)}") from None

    def _own_section(self, message: str) -> str:
        """A plugin names its options as ``[plugin] option``; the deployer set them in this section."""
        if self.section == self.plugin:
            return message
        return message.replace(f"[{self.plugin}]", f"[{self.section}]")

    def _optional(self, name: str):
        """The plugin's optional method ``name``, or None (a hostile ``__getattr__`` is one line too)."""
        method = self._call(f"look up {name}()", getattr, self.storage, name, None)
        return method if callable(method) else None

    def register(self, args: dict) -> None:
        """Hand the plugin its options (``Storage.register``), failures made one line."""
        self._call("register its options", self.storage.register, args)

    def describe(self) -> str:
        """The plugin's one-line ``describe()``, else ``backend LABEL``; call it only to show it."""
        describe = self._optional("describe")
        if describe is None:
            return f"backend {self.label}"
        # str() inside the guard too: a returned object's __str__ is plugin code as well.
        return one_line(Exception(self._call("describe itself", lambda: str(describe()))))

    def _loaded_from(self) -> str:
        """Where a loaded inventory came from, for refusals: the backend and the plugin's ``describe()``."""
        try:
            where = f" from {self.describe()}" if self._optional("describe") is not None else ""
        except InventoryError:  # a failing describe() must not hide the refusal it was to explain
            where = ""
        return f"storage backend {self.label}: the inventory loaded{where}"

    def _check_loaded(self, data: Any, where: str) -> None:
        if not self.bounded:
            check_nesting(data, shown=where)
        check_inventory(data, where)

    def load(self, read_only: bool = False, known: Callable[[dict], bool] | None = None) -> dict | None:
        """The stored inventory, checked.

        ``read_only``: the plugin must write nothing, not even on the side (see :mod:`.read_only`).
        ``known``: says whether the loaded data is, to the byte, an inventory that passed these
        checks before (:mod:`osa_inventory.reuse`); such data is not checked again, nor walked
        for its depth when the plugin parses it (:func:`~osa_inventory.bounded.known_values`).
        Only a built-in plugin's data may skip them: it comes from ``json.loads``, so what it
        prints as is all it is (another plugin's tuple prints as a list, but is none).
        """
        if known is not None and not self.bounded:
            known = None
        with contextlib.ExitStack() as reading:
            if read_only:
                reading.enter_context(read_only_reads.reading_only())
            if known is not None:
                reading.enter_context(known_values(known))
            data = self._call("load the inventory", self.storage.load)
        if data is None:
            return None
        if known is not None and isinstance(data, dict) and known(data):
            return data
        try:
            self._check_loaded(data, "the inventory loaded")
        except InventoryError:
            try:  # the same refusal again, naming the place: describe() is called only when it is shown
                self._check_loaded(data, self._loaded_from())
            except InventoryError as exc:
                # Never rewritten: the next write would replace whatever the deployer could still recover.
                raise CorruptInventory(f"{one_line(exc)}; nothing was written", self._keeps_versions(),
                                       self.config_dir or None) from None
        return data

    def _keeps_versions(self) -> bool:
        """:attr:`has_versions`, False when even asking fails: for the repair advice of a refusal."""
        try:
            return self.has_versions
        except InventoryError:
            return False

    def write(self, inventory: dict, as_json: str | None = None, record: ChangeRecord | None = None) -> None:
        """Store ``inventory``; the plugin gets its own copy, so whatever it does to it stays its own.

        ``as_json``, the inventory already serialised by the caller, saves a second serialisation.
        ``record`` says who writes it and why: passed as ``write(inventory, record=record)`` to a
        plugin whose ``write()`` has that parameter, and in any case the
        :func:`~osa_inventory.accounting.pending_change` while the plugin's ``write()`` runs
        (plugins written before the parameter existed read it there).
        """
        private = json.loads(as_json if as_json is not None else json.dumps(inventory))
        if self._write_takes_record is None:
            # A hostile __signature__ or __getattr__ is plugin code too: bounded, and one line.
            self._write_takes_record = self._call("look up write()", lambda: accepts_record(self.storage.write))
        with accounting.pending(record):
            if self._write_takes_record:
                self._call("store the inventory", lambda: self.storage.write(private, record=record))
            else:
                self._call("store the inventory", self.storage.write, private)

    @property
    def reserved_addresses(self):
        """The plugin's optional ``reserved_addresses(networks)`` checked, or None when it has none.

        It answers the addresses the backend knows to be held inside ``networks`` by something
        other than this inventory, as ``{"address": a used_ips entry, "held_by": who}`` dicts
        (docs/writing-plugins.md); anything else is refused in one line.
        """
        method = self._optional("reserved_addresses")
        if method is None:
            return None

        def checked(networks: list[str]) -> list[dict]:
            from ..generate.addresses import parse_used_ips  # only a run that generates asks: a reused one stays light

            answer = self._call("list the addresses it holds", method, list(networks))
            if not isinstance(answer, list):
                raise StorageError(f"storage backend {self.label}: reserved_addresses() returned "
                                   f"{type(answer).__name__}, not a list; fix the plugin")
            out = []
            for entry in answer:
                if not isinstance(entry, dict) or not isinstance(entry.get("address"), str) \
                        or not isinstance(entry.get("held_by", ""), str):
                    raise StorageError(f"storage backend {self.label}: reserved_addresses() returned "
                                       f"{str(entry)[:80]!r}, not {{'address': str, 'held_by': str}}; fix the plugin")
                try:
                    parse_used_ips([entry["address"]])
                except InventoryError as exc:
                    raise StorageError(f"storage backend {self.label}: reserved_addresses(): {one_line(exc)}; "
                                       "fix the plugin") from None
                out.append({"address": entry["address"], "held_by": entry.get("held_by", "")[:300]})
            return out
        return checked

    @property
    def has_lock(self) -> bool:
        return self._optional("lock") is not None

    def no_lock_warning(self) -> str | None:
        """For a plugin without ``lock()``: what that means, logged once per process; else None.

        A plugin that guards its writes another way says what overlapping runs get with
        ``concurrency()``; without it, they may overwrite each other's changes. Only that
        hazard is a warning: a guarded plugin's note is logged at INFO, since a warning
        repeated on every run (every ``ansible-playbook`` through the Ansible plugin) asks
        for an action there is none to take. The text is returned either way, for ``--check``.
        """
        if self.has_lock:
            return None
        concurrency = self._optional("concurrency")
        if concurrency is None:
            outcome = "one may overwrite the other's changes; run one at a time or use a backend with a lock"
        else:
            outcome = one_line(Exception(self._call("say what concurrent runs get", lambda: str(concurrency()))))
        text = f"storage backend {self.label} has no lock(): concurrent runs are not serialised, and {outcome}"
        if self.label not in _WARNED_NO_LOCK:
            _WARNED_NO_LOCK.add(self.label)
            LOG.log(logging.WARNING if concurrency is None else logging.INFO, "%s", text)
        return text

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The plugin's lock held across load-generate-write; for plugins without one, a warning."""
        lock = self._optional("lock")
        if lock is None:
            self.no_lock_warning()
            yield
            return
        ctx = self._call("take its lock", lock)
        self._call("take its lock", ctx.__enter__)
        try:
            yield
        except BaseException:
            # The plugin's __exit__ sees the error but may not swallow it: a failed
            # write must never look like a stored inventory. The body's error is the
            # one to report, even if releasing fails too.
            with contextlib.suppress(StorageError):
                self._call("release its lock", ctx.__exit__, *sys.exc_info())
            raise
        self._call("release its lock", ctx.__exit__, None, None, None)

    def adopt(self) -> str:
        """Label the stored deployment with this configuration's name (plugins that name deployments)."""
        adopt = self._optional("adopt")
        if adopt is None:
            raise StorageError(f"storage backend {self.label} does not name deployments; there is nothing to adopt")
        return self._call("adopt the stored deployment", adopt)

    @property
    def has_history(self) -> bool:
        """The plugin lists what was written (``history()``): versions, or at least change records."""
        return self._optional("history") is not None

    @property
    def has_versions(self) -> bool:
        """The plugin also gives back earlier inventories (``read_version()``): diff and restore work."""
        return self.has_history and self._optional("read_version") is not None

    def history(self) -> list[dict]:
        """The plugin's ``history()``: dicts, oldest first, with ``version``, ``time`` and record fields."""
        if not self.has_history:
            raise StorageError(f"storage backend {self.label} keeps no history of earlier versions")
        entries = self._call("list its versions", lambda: list(self.storage.history()))
        for entry in entries:
            if not isinstance(entry, dict):
                raise StorageError(f"storage backend {self.label}: history() gave a {type(entry).__name__}, "
                                   "not a dict with version and time")
        return entries

    def require_versions(self) -> None:
        """Refuse in one line unless the plugin gives back earlier inventories (for --diff and --restore)."""
        if not self.has_history:
            raise StorageError(f"storage backend {self.label} keeps no history of earlier versions")
        if not self.has_versions:
            raise NoVersions(f"storage backend {self.label} keeps change records (--history: who changed it, "
                             "when and why) but not earlier inventories, so versions cannot be compared or "
                             "restored", self.config_dir)

    def read_version(self, version: str) -> dict:
        """The inventory as it was at ``version``; ``current`` is the stored one now, on every backend."""
        self.require_versions()
        if version == CURRENT:
            data = self.load()
            if data is None:
                raise StorageError(f"storage backend {self.label} holds no inventory yet, so there is no "
                                   f"version {CURRENT}; list the versions with --history")
            return data
        data = self._call(f"read version {version}", self.storage.read_version, version)
        if not self.bounded:
            check_nesting(data, shown=f"storage backend {self.label}: version {version}", error=StorageError)
        return data

    def close(self) -> None:
        close = self._optional("close")
        if close is not None:
            self._call("close", close)
