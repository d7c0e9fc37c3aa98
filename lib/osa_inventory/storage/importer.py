"""Import the plugin a :class:`~.registry.Definition` names, and check its ``Storage`` class.

A plugin of a search folder is imported through one ``pluginbase`` source
per search path, made once and kept alive (a plugin may import helpers
beside it later, and the source's module must outlive the call).
:mod:`.plugin_import` imports every module of a deployer folder from checked
source, never from bytecode; the built-in folder is imported the ordinary
way. A plugin of an installed distribution is loaded through its entry
point. Either way the deployer folders pass the trust rules first, the
import runs under ``[inventory] timeout`` (:mod:`.watchdog`), and anything
it raises becomes one :class:`~osa_inventory.errors.PluginError` line
naming the plugin.
"""

from __future__ import annotations

import inspect
import itertools
import os
from typing import Any, Sequence

from pluginbase import PluginBase

from ..errors import InventoryError, PluginError, one_line
from . import plugin_import, trust, watchdog
from .registry import BUILTIN_DIR, Definition, Registry, check_deployer_folders
from .settings import Settings

REQUIRED_METHODS = ("register", "load", "write")

_BASE = PluginBase(package="osa_inventory_storage_plugins")
_SOURCES: dict[tuple[str, ...], Any] = {}
_COUNTER = itertools.count(1)


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


def import_module(found: Definition, folders: Sequence[str], settings: Settings,
                  on_timeout: str = watchdog.EXIT):
    """The module of plugin file ``found``, imported through the source of search path ``folders``.

    ``on_timeout``: what an import past ``[inventory] timeout`` does (:func:`.watchdog.limit`).
    """
    source = _source_for(tuple(folders))
    try:
        with watchdog.limit(settings.timeout, lambda: (
                f"storage plugin {found.where} did not finish importing within {settings.timeout:g} s; "
                f"check what it waits for at import, or raise [inventory] timeout in {settings.where_to_set()}"),
                on_timeout):
            return source.load_plugin(found.name)
    except (trust.UntrustedPlugin, watchdog.LimitReached):
        raise  # already one line naming the file and the fix
    except InventoryError as exc:  # e.g. a plugin refusing to import without its dependency
        raise PluginError(f"storage plugin {found.where} failed to import: {one_line(exc)}") from None
    except BaseException as exc:  # any error (even sys.exit) while importing third-party code
        raise PluginError(
            f"storage plugin {found.where} failed to import: {type(exc).__name__}: {one_line(exc)}") from None


def load_plugin_module(name: str, settings: Settings):
    """Import plugin ``name`` from the configured folders (not from distributions), after the trust checks."""
    registry = Registry.of(settings)
    found = registry.file_of(name)
    if found is None:
        raise registry.unknown(name, settings)
    return import_module(found, registry.folders, settings)


def import_class(found: Definition, registry: Registry, settings: Settings, on_timeout: str = watchdog.EXIT) -> type:
    """The checked ``Storage`` class that ``found`` defines: a file of ``registry``'s folders, or an entry point."""
    check_deployer_folders(settings)  # nothing is imported while a deployer folder may hold planted files
    entry = found.entry
    if entry is None:
        return storage_class(import_module(found, registry.folders, settings, on_timeout), found.name)
    with watchdog.limit(settings.timeout, lambda: (
            f"storage plugin {found.name} of {entry.origin} did not finish importing within {settings.timeout:g} s; "
            f"check what it waits for at import, or raise [inventory] timeout in {settings.where_to_set()}"),
            on_timeout):
        loaded = entry.load()
    return checked_class(loaded, f"{found.name} of {entry.origin}")


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
