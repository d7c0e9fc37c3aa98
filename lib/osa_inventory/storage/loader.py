"""Open the storage backend a section of osa.ini names: the storage layer's front door.

A storage plugin is one ``.py`` file (or a package folder), or a class an
installed distribution offers, that defines a class ``Storage`` with
``register(args)``, ``load()`` and ``write(inventory)``; see
``docs/writing-plugins.md`` for the whole contract. :func:`open_backend`
puts the parts together: :mod:`.registry` says which plugin the name means
(after the trust checks of the deployer folders), :mod:`.importer` imports
it and checks its class, the section's options are checked against the
plugin's declaration (:mod:`.options`), and :class:`~.backend.Backend`
wraps the registered instance. The names other code uses are importable
from here: ``open_backend``, ``Backend``, ``load_plugin_module``,
``storage_class`` and ``BUILTIN_DIR``.
"""

from __future__ import annotations

import inspect
import os

from .backend import Backend
from .importer import import_class, load_plugin_module, storage_class
from .options import Declaration, module_declaration
from .registry import BUILTIN, BUILTIN_DIR, Registry
from .settings import Settings
from .watchdog import EXIT

__all__ = ["BUILTIN_DIR", "Backend", "backend_args", "load_plugin_module", "open_backend", "storage_class"]


def open_backend(settings: Settings, config_dir: str, section: str | None = None,
                 on_timeout: str = EXIT) -> Backend:
    """Load, instantiate and register the backend of ``section`` (default: the configured one).

    ``on_timeout`` is what a plugin step past ``[inventory] timeout`` does, from the import on:
    ``"exit"`` ends the process (the commands), ``"raise"`` raises StorageTimeout (the API).
    """
    # A section osa.ini does not define runs the plugin of that name with its defaults
    # (e.g. "filesystem"); a name that is neither is reported as an unknown plugin.
    section = section or settings.backend
    registry = Registry.of(settings)  # the deployer folders are trusted before their listings are believed
    registry.check_sections(settings)
    plugin = settings.plugin_for(section)
    found = registry.require(plugin, settings)
    cls = import_class(found, registry, settings, on_timeout)
    # A class attribute OPTIONS (for plugins from distributions) or the module's.
    declared = module_declaration(cls if hasattr(cls, "OPTIONS") else inspect.getmodule(cls))
    advice = f"raise [inventory] timeout in {settings.where_to_set()}"
    # The built-in plugins parse through osa_inventory.bounded, which refuses deep nesting already.
    backend = Backend(section, plugin, None, settings.timeout, advice, os.path.abspath(config_dir),
                      bounded=found.source == BUILTIN, on_timeout=on_timeout)
    backend.storage = backend._call("create its Storage()", cls)
    backend.register(backend_args(settings, section, config_dir, declared))
    return backend


def backend_args(settings: Settings, section: str, config_dir: str,
                 declared: Declaration | None = None) -> dict[str, str]:
    """What ``Storage.register`` receives: the section's options (checked when declared) plus ``config_dir``."""
    options = settings.options(section) if declared is None else settings.checked_options(section, declared)
    args = {k: v for k, v in options.items() if k != "plugin"}
    # A section may set config_dir itself (the plugin contract allows it); otherwise the --config folder.
    args.setdefault("config_dir", os.path.abspath(config_dir))
    return args
