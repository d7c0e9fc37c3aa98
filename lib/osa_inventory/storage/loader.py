"""Find, check and load storage plugins, and wrap them in a :class:`Backend`.

A storage plugin is one ``.py`` file (or a package folder) that defines a
class ``Storage`` with ``register(args)``, ``load()`` and ``write(inventory)``.
See ``docs/writing-plugins.md`` for the whole contract.

Plugins are imported through one ``pluginbase`` source per search path,
made once and kept alive: the deployer's folders come first, the built-in
``lib/plugins/`` last, so a deployer's ``filesystem.py`` overrides ours.
Plugins of installed distributions (entry points, see :mod:`.discovery`)
come between the two, and may not share a name with either.
Every deployer folder must pass :mod:`.trust` (with its ancestors) before
anything is imported, and :mod:`.plugin_import` imports every module from
a deployer folder from checked source, never from bytecode.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import logging
import os
import stat
import sys
from typing import Any, Iterator

from pluginbase import PluginBase

from .. import accounting
from ..accounting import ChangeRecord
from ..bounded import check_nesting, describe_kind
from ..errors import AccessDenied, InventoryError, PluginError, SettingsError, StorageError, one_line
from ..generate.addresses import parse_used_ips
from ..resources import manage_command, plugins_dir
from . import discovery, plugin_import, trust, watchdog
from . import read_only as read_only_reads
from .options import Declaration, closest, module_declaration
from .shape import check_inventory
from .settings import MAIN_SECTION, Settings, inventory_source
from .watchdog import DEFAULT_TIMEOUT

LOG = logging.getLogger(__name__)

BUILTIN_DIR = plugins_dir()
REQUIRED_METHODS = ("register", "load", "write")
#: The version name every backend accepts for the inventory stored now (docs/operations.md).
CURRENT = "current"

_BASE = PluginBase(package="osa_inventory_storage_plugins")
_SOURCES: dict[tuple[str, ...], Any] = {}
_COUNTER = itertools.count(1)
_WARNED_NO_LOCK: set[str] = set()


def _source_for(folders: tuple[str, ...]):
    """The one live plugin source for this search path (made on first use)."""
    source = _SOURCES.get(folders)
    if source is None:
        source = _BASE.make_plugin_source(
            searchpath=list(folders),
            identifier=f"osa_inventory_source_{os.getpid()}_{next(_COUNTER)}",
            persist=True)
        plugin_import.install().register(source.mod.__name__, program_dirs=[BUILTIN_DIR])
        _SOURCES[folders] = source
    return source


def search_path(settings: Settings) -> list[str]:
    """Folders searched for plugins, in order: the deployer's, then the built-in one."""
    folders = [os.path.abspath(os.path.expanduser(p)) for p in settings.plugin_paths]
    return folders + [BUILTIN_DIR]


def _find_plugin_file(name: str, folders: list[str]) -> str | None:
    """The file of the plugin the import will pick, or None."""
    for folder in folders:
        # Same precedence as Python's import: a package folder wins over a module file beside it.
        for candidate in (os.path.join(folder, name, "__init__.py"), os.path.join(folder, name + ".py")):
            if os.path.isfile(candidate):
                return candidate
    return None


def near_miss(name: str, folders: list[str]) -> str | None:
    """Why a search folder holds something named like plugin ``name`` that is no plugin, with the fix; else None.

    Called only once nothing was found: a package folder without
    ``__init__.py``, a ``NAME.py`` (or ``__init__.py``) that is not a regular
    file, or a listed folder that is the plugin's package itself.
    """
    for folder in folders:
        package = os.path.join(folder, name)
        for source in (os.path.join(package, "__init__.py"), package + ".py"):
            with contextlib.suppress(OSError):
                mode = os.stat(source).st_mode
                if not stat.S_ISREG(mode):
                    return (f"{source} is {describe_kind(mode)}, not a plugin source file; "
                            "replace it with the plugin's source file")
        if os.path.isdir(package):
            return (f"{package} is a folder without __init__.py, so it is no package plugin; add "
                    f"{os.path.join(package, '__init__.py')} holding class Storage (or importing it from "
                    "a module beside it)")
        if os.path.basename(folder) == name and os.path.isfile(os.path.join(folder, "__init__.py")):
            return (f"plugin folder {folder} is the package of plugin {name!r} itself; list the folder "
                    f"that holds it, {os.path.dirname(folder)}, in plugin_paths instead")
    return None


def _name_source(name: str, settings: Settings) -> str:
    """Where the plugin name came from: a section's ``plugin`` option, or ``[inventory] backend``."""
    for section in sorted(settings.known_sections()):
        if settings.options(section).get("plugin", "").strip() == name:
            return settings.source(section, "plugin")
    if settings.backend == name:
        return inventory_source(settings, "backend")
    return settings.describe()


def _plugin_names(folders: list[str]) -> set[str]:
    """The plugin names a folder search could find, for a 'did you mean' hint."""
    names = set()
    for folder in folders:
        with contextlib.suppress(OSError):
            for entry in os.listdir(folder):
                stem = entry[:-3] if entry.endswith(".py") else entry
                if stem.isidentifier() and not stem.startswith("_"):
                    names.add(stem)
    return names


def check_trusted(path: str) -> None:
    """Refuse a plugin file or folder others could have changed (as sshd treats key files)."""
    trust.check_path(path)


def check_deployer_folders(settings: Settings) -> None:
    """Refuse the run if any plugin_paths folder (or an ancestor) is not trusted (see :mod:`.trust`).

    Every deployer folder counts, even one searched in vain or when the plugin
    comes from a distribution: a file dropped there would win the next search.
    The built-in folder is part of this program.
    """
    for folder in search_path(settings)[:-1]:
        if not trust.check_folder(folder):
            # Refused only now: a missing folder's ancestors must pass the trust rules first.
            where = settings.plugin_path_sources.get(folder, "[inventory] plugin_paths")
            raise SettingsError(f"{where}: plugin folder {folder} does not exist; "
                                "create it or remove it from plugin_paths")


def load_plugin_module(name: str, settings: Settings):
    """Import plugin ``name`` from the configured folders, after the safety checks."""
    folders = search_path(settings)
    check_deployer_folders(settings)
    found = _find_plugin_file(name, folders)
    if found is None:
        miss = near_miss(name, folders)
        if miss:
            raise PluginError(f"{_name_source(name, settings)}: unknown storage backend plugin {name!r}: {miss}")
        raise PluginError(
            f"{_name_source(name, settings)}: unknown storage backend plugin {name!r}"
            f"{closest(name, _plugin_names(folders))}: no {name}.py in {', '.join(folders)} and no installed "
            f"distribution offers it (entry point group {discovery.GROUP}); correct the name there, add the "
            "plugin's folder to [inventory] plugin_paths or pip install the plugin")
    source = _source_for(tuple(folders))
    try:
        with watchdog.step(settings.timeout, lambda: (
                f"storage plugin {found} did not finish importing within {settings.timeout:g} s; "
                f"check what it waits for at import, or raise [inventory] timeout in {settings.where_to_set()}")):
            return source.load_plugin(name)
    except trust.UntrustedPlugin:
        raise  # already one line naming the file and the fix
    except InventoryError as exc:  # e.g. a plugin refusing to import without its dependency
        raise PluginError(f"storage plugin {found} failed to import: {one_line(exc)}") from None
    except BaseException as exc:  # any error (even sys.exit) while importing third-party code
        raise PluginError(
            f"storage plugin {found} failed to import: {type(exc).__name__}: {one_line(exc)}") from None


def plugin_class(name: str, settings: Settings):
    """The checked ``Storage`` class of plugin ``name``: from a plugin_paths folder, a distribution or built in."""
    check_deployer_folders(settings)
    deployer = _find_plugin_file(name, search_path(settings)[:-1])
    builtin = _find_plugin_file(name, [BUILTIN_DIR])
    entry = discovery.find(name, deployer, None if deployer else builtin)
    if entry is not None:
        with watchdog.step(settings.timeout, lambda: (
                f"storage plugin {name} of {entry.origin} did not finish importing within {settings.timeout:g} s; "
                f"check what it waits for at import, or raise [inventory] timeout in {settings.where_to_set()}")):
            loaded = entry.load()
        return checked_class(loaded, f"{name} of {entry.origin}")
    return storage_class(load_plugin_module(name, settings), name)


def storage_class(module, name: str):
    """The module's ``Storage`` class, checked against the contract."""
    return checked_class(getattr(module, "Storage", None), getattr(module, "__file__", name))


def checked_class(cls, where: str):
    """``cls`` if it is a class with the contract's methods, else one line naming ``where``."""
    if cls is None or not inspect.isclass(cls):
        raise PluginError(f"storage plugin {where} defines no class Storage; see docs/writing-plugins.md")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise PluginError(
            f"storage plugin {where}: class Storage lacks {', '.join(missing)}(); "
            "see docs/writing-plugins.md")
    return cls


class Backend:
    """A registered storage plugin instance, with every failure made one clear line.

    ``load``/``write`` are the contract; ``lock``, ``history``, ``read_version``
    and ``describe`` use the plugin's optional methods when it has them. Every
    call into the plugin is bounded by ``timeout`` seconds (see
    :mod:`.watchdog`), and anything it raises, even a ``BaseException`` such
    as ``SystemExit``, becomes one :class:`StorageError` line naming the
    backend and the method.
    """

    def __init__(self, section: str, plugin: str, storage: Any, timeout: float = DEFAULT_TIMEOUT,
                 timeout_advice: str = "raise [inventory] timeout in osa.ini", config_dir: str | None = None,
                 bounded: bool = False):
        self.section = section
        self.config_dir = config_dir
        self.plugin = plugin
        self.storage = storage
        self.timeout = timeout
        self.timeout_advice = timeout_advice
        # The built-in plugins parse through osa_inventory.bounded, which refuses deep nesting already;
        # what any other plugin gives back is checked here, before recursive code meets it.
        self.bounded = bounded

    @property
    def label(self) -> str:
        return self.section if self.section == self.plugin else f"{self.section} (plugin {self.plugin})"

    def _timed_out(self, what: str) -> str:
        return (f"storage backend {self.label} did not {what} within {self.timeout:g} s; "
                f"check the backend, or {self.timeout_advice}")

    def _call(self, what: str, func, *args):
        try:
            with watchdog.step(self.timeout, lambda: self._timed_out(what)):
                return func(*args)
        except InventoryError as exc:
            # An access refusal stays one, so callers never advise what only other credentials can fix.
            kind = AccessDenied if isinstance(exc, AccessDenied) else StorageError
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

    def load(self, read_only: bool = False) -> dict | None:
        """The stored inventory, checked.

        ``read_only``: the plugin must write nothing, not even on the side (see :mod:`.read_only`).
        """
        with read_only_reads.reading_only() if read_only else contextlib.nullcontext():
            data = self._call("load the inventory", self.storage.load)
        if data is None:
            return None
        try:
            self._check_loaded(data, "the inventory loaded")
        except InventoryError:
            try:  # the same refusal again, naming the place: describe() is called only when it is shown
                self._check_loaded(data, self._loaded_from())
            except InventoryError as exc:
                # Never rewritten: the next write would replace whatever the deployer could still recover.
                raise StorageError(f"{one_line(exc)}; nothing was written: {self._repair_advice()}") from None
        return data

    def _repair_advice(self) -> str:
        """How to put a good inventory back: a version, where the backend keeps them, else a saved copy."""
        tool = manage_command(self.config_dir or None)
        try:
            versions = self.has_versions
        except InventoryError:
            versions = False
        if versions:
            return f"restore a good version ({tool} --history, then --restore VERSION) or fix it"
        return (f"this backend keeps no earlier inventories, so replace it with a saved copy or export "
                f"({tool} --import FILE --force) or fix it")

    def write(self, inventory: dict, as_json: str | None = None, record: ChangeRecord | None = None) -> None:
        """Store ``inventory``; the plugin gets its own copy, so whatever it does to it stays its own.

        ``as_json``, the inventory already serialised by the caller, saves a second serialisation.
        ``record`` says who writes it and why; it is the :func:`~osa_inventory.accounting.pending_change`
        while the plugin's ``write()`` runs, for plugins that keep records.
        """
        private = json.loads(as_json if as_json is not None else json.dumps(inventory))
        with accounting.pending(record):
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
        ``concurrency()``; without it, they may overwrite each other's changes.
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
            LOG.warning("%s", text)
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
            tool = manage_command(self.config_dir)
            raise StorageError(f"storage backend {self.label} keeps change records (--history: who changed it, "
                               "when and why) but not earlier inventories, so versions cannot be compared or "
                               f"restored; to keep one, save it with {tool} --export > FILE before a change, "
                               f"and store it again with {tool} --import FILE --force")

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


def available_plugins(settings: Settings) -> set[str]:
    """Names of the plugins found in the search path (module files and package folders) or installed."""
    names = {entry.name for entry in discovery.installed()}
    for folder in search_path(settings):
        with contextlib.suppress(OSError):
            for entry in os.listdir(folder):
                if entry.endswith(".py") and entry != "__init__.py":
                    names.add(entry[:-3])
                elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                    names.add(entry)
    return names


def check_sections(settings: Settings) -> None:
    """Refuse sections that no plugin serves (``[inventry]``).

    Variables of the environment are checked per section, when the section is used
    (:meth:`Settings.checked_options`): OSA_INVENTORY_* names also serve shell wiring
    (``OSA_INVENTORY_PATH``, ``OSA_INVENTORY_STATIC`` in etc/ansible/osa-inventory.rc).
    """
    plugins = available_plugins(settings)
    known = plugins | set(settings.sections) | {MAIN_SECTION}
    for section in settings.sections:
        if section == MAIN_SECTION:
            continue
        plugin = settings.plugin_for(section)
        if plugin not in plugins:
            miss = near_miss(plugin, search_path(settings))
            if miss:
                raise SettingsError(f"{settings.describe()}: section [{section}] names no storage plugin: {miss}")
            hint = closest(section, known - {section}) or closest(plugin, plugins)
            raise SettingsError(
                f"{settings.describe()}: section [{section}] names no storage plugin (no {plugin}.py in "
                f"{', '.join(search_path(settings))}){hint}; rename the section, set its plugin option, "
                "or add its folder to [inventory] plugin_paths")


def open_backend(settings: Settings, config_dir: str, section: str | None = None) -> Backend:
    """Load, instantiate and register the backend of ``section`` (default: the configured one)."""
    # A section osa.ini does not define runs the plugin of that name with its defaults
    # (e.g. "filesystem"); a name that is neither is reported as an unknown plugin.
    section = section or settings.backend
    check_deployer_folders(settings)  # before their listings are believed (sections, near misses)
    check_sections(settings)
    plugin = settings.plugin_for(section)
    cls = plugin_class(plugin, settings)
    # A class attribute OPTIONS (for plugins from distributions) or the module's.
    declared = module_declaration(cls if hasattr(cls, "OPTIONS") else inspect.getmodule(cls))
    advice = f"raise [inventory] timeout in {settings.where_to_set()}"
    backend = Backend(section, plugin, None, settings.timeout, advice, os.path.abspath(config_dir),
                      bounded=_is_builtin(cls))
    backend.storage = backend._call("create its Storage()", cls)
    backend.register(backend_args(settings, section, config_dir, declared))
    return backend


def _is_builtin(cls) -> bool:
    """Whether ``cls`` is the Storage class of one of the plugins shipped in the built-in folder."""
    path = getattr(inspect.getmodule(cls), "__file__", None)
    return bool(path) and os.path.dirname(os.path.abspath(path)) == BUILTIN_DIR


def backend_args(settings: Settings, section: str, config_dir: str,
                 declared: Declaration | None = None) -> dict[str, str]:
    """What ``Storage.register`` receives: the section's options (checked when declared) plus ``config_dir``."""
    options = settings.options(section) if declared is None else settings.checked_options(section, declared)
    args = {k: v for k, v in options.items() if k != "plugin"}
    # A section may set config_dir itself (the plugin contract allows it); otherwise the --config folder.
    args.setdefault("config_dir", os.path.abspath(config_dir))
    return args
