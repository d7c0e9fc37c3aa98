"""Which storage plugin a backend name means, and which names exist: the precedence rules, once.

Every question about plugin names is answered here: the inventory script
opening its backend, the import of a plugin by name, ``inventory-manage
--list-backends``, the check of osa.ini's sections and the "did you mean"
hint. The rules:

* The search path is the deployer's folders (``OSA_INVENTORY_PLUGIN_PATHS``,
  then ``[inventory] plugin_paths``), then the built-in ``lib/plugins/``. The
  first folder that holds a name wins, so a deployer's ``filesystem.py``
  replaces the built-in one.
* In a folder, a plugin is a package folder ``NAME/__init__.py`` or a module
  file ``NAME.py``, both regular files (links followed); the package wins over a
  module beside it, as in Python's import. ``NAME`` is letters, digits and
  underscores, not starting with a digit (``__init__`` is no plugin).
* Installed distributions offer plugins by entry point (:mod:`.discovery`).
  A name may be offered by one distribution only, and never also by a
  deployer folder or a built-in plugin: such a clash is refused naming both,
  rather than one silently shadowing the other.
* Every deployer folder, and its ancestors, passes the trust rules
  (:mod:`.trust`) before its listing is believed or anything in it is
  imported (:func:`check_deployer_folders`); a folder searched in vain counts
  too, since a file dropped there would win the next search.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from dataclasses import dataclass
from typing import Sequence

from ..bounded import describe_kind
from ..errors import PluginError, SettingsError
from ..resources import plugins_dir
from . import discovery, trust
from .options import closest
from .settings import MAIN_SECTION, Settings, inventory_source

BUILTIN_DIR = plugins_dir()

#: Where a definition comes from (also the ``source`` column of ``--list-backends``).
FOLDER, BUILTIN, DISTRIBUTION = "folder", "built-in", "distribution"


@dataclass(frozen=True)
class Definition:
    """One place that defines backend ``name``: a file of a search folder, or a distribution's entry point."""

    name: str
    source: str                                # FOLDER, BUILTIN or DISTRIBUTION
    where: str                                 # the file, or the distribution's origin
    entry: discovery.Installed | None = None   # for DISTRIBUTION


def search_path(settings: Settings) -> list[str]:
    """Folders searched for plugins, in order: the deployer's, then the built-in one."""
    folders = [os.path.abspath(os.path.expanduser(p)) for p in settings.plugin_paths]
    return folders + [BUILTIN_DIR]


def check_deployer_folders(settings: Settings) -> None:
    """Refuse the run if any plugin_paths folder (or an ancestor) is not trusted (see :mod:`.trust`).

    The built-in folder is part of this program.
    """
    for folder in search_path(settings)[:-1]:
        if not trust.check_folder(folder):
            # Refused only now: a missing folder's ancestors must pass the trust rules first.
            where = settings.plugin_path_sources.get(folder, "[inventory] plugin_paths")
            raise SettingsError(f"{where}: plugin folder {folder} does not exist; "
                                "create it or remove it from plugin_paths")


def plugin_file(folder: str, name: str) -> str | None:
    """The file of plugin ``name`` in ``folder`` (see the module doc), or None."""
    if not discovery.valid_name(name) or name == "__init__":
        return None
    for candidate in (os.path.join(folder, name, "__init__.py"), os.path.join(folder, name + ".py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def folder_plugins(folder: str) -> dict[str, str]:
    """``{name: file}`` of every plugin in ``folder``, by name; an unreadable folder holds none."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return {}
    names = sorted({entry[:-3] if entry.endswith(".py") else entry for entry in entries})
    found = {name: plugin_file(folder, name) for name in names}
    return {name: path for name, path in found.items() if path}


def near_miss(name: str, folders: Sequence[str]) -> str | None:
    """Why a search folder holds something named like plugin ``name`` that is no plugin, with the fix; else None.

    Asked only once nothing was found: a package folder without
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


class Registry:
    """Every definition of every backend name on one search path, read once (folders now, distributions when asked)."""

    def __init__(self, folders: Sequence[str]):
        self.folders = list(folders)

    @functools.cached_property
    def _files(self) -> dict[str, list[Definition]]:
        files: dict[str, list[Definition]] = {}
        for folder in self.folders:
            for name, path in folder_plugins(folder).items():
                files.setdefault(name, []).append(Definition(name, _source_of(folder), path))
        return files

    @classmethod
    def of(cls, settings: Settings, checked: bool = True) -> Registry:
        """The registry of ``settings``' search path; ``checked``: its deployer folders passed the trust rules first."""
        if checked:
            check_deployer_folders(settings)
        return cls(search_path(settings))

    @functools.cached_property
    def _offers(self) -> dict[str, list[discovery.Installed]]:
        # Asked for only when needed: looking at installed distributions costs a directory scan.
        offers: dict[str, list[discovery.Installed]] = {}
        for entry in discovery.installed():
            offers.setdefault(entry.name, []).append(entry)
        return offers

    def names(self) -> set[str]:
        """Every name that can be selected as a backend."""
        return set(self._files) | {name for name in self._offers if discovery.valid_name(name)}

    def listing(self) -> dict[str, list[Definition]]:
        """Every name, sorted, with its definitions in search order (files first); distributions' odd names too."""
        return {name: self._files.get(name, []) + [_offered(e) for e in self._offers.get(name, [])]
                for name in sorted(set(self._files) | set(self._offers))}

    def file_of(self, name: str) -> Definition | None:
        """The file the search folders give for ``name`` (the first folder's), or None."""
        for folder in self.folders:
            path = plugin_file(folder, name)
            if path:
                return Definition(name, _source_of(folder), path)
        return None

    def resolve(self, name: str) -> Definition | None:
        """The definition a run selecting ``name`` uses, or None; a name defined twice is refused."""
        offers = self._offers.get(name, [])
        if not offers:
            return self.file_of(name)
        first = offers[0]
        if len(offers) > 1:
            other = offers[1]
            raise PluginError(
                f"storage backend {name!r} is defined twice: by {first.origin} and by {other.origin}; "
                f"pip uninstall one of {first.distribution} and {other.distribution}")
        file = self.file_of(name)
        if file is not None and file.source == FOLDER:
            raise PluginError(
                f"storage backend {name!r} is defined twice: by {file.where} (from plugin_paths) and by "
                f"{first.origin}; remove or rename {file.where}, or pip uninstall {first.distribution}")
        if file is not None:
            raise PluginError(
                f"storage backend {name!r} is defined twice: by the built-in {file.where} and by "
                f"{first.origin}, and a distribution may not replace a built-in backend; "
                f"pip uninstall {first.distribution}")
        return _offered(first)

    def require(self, name: str, settings: Settings) -> Definition:
        """:meth:`resolve`, with an unknown name refused in one line (:meth:`unknown`)."""
        found = self.resolve(name)
        if found is None:
            raise self.unknown(name, settings)
        return found

    def unknown(self, name: str, settings: Settings) -> PluginError:
        """The refusal of a name nothing defines: what is there instead, or the closest name and the fixes."""
        where = _name_source(name, settings)
        miss = near_miss(name, self.folders)
        if miss:
            return PluginError(f"{where}: unknown storage backend plugin {name!r}: {miss}")
        return PluginError(
            f"{where}: unknown storage backend plugin {name!r}{closest(name, self.names())}: no {name}.py in "
            f"{', '.join(self.folders)} and no installed distribution offers it (entry point group "
            f"{discovery.GROUP}); correct the name there, add the plugin's folder to [inventory] plugin_paths "
            "or pip install the plugin")

    def check_sections(self, settings: Settings) -> None:
        """Refuse sections that no plugin serves (``[inventry]``).

        Variables of the environment are checked per section, when the section is used
        (:meth:`Settings.checked_options`): OSA_INVENTORY_* names also serve shell wiring
        (``OSA_INVENTORY_PATH``, ``OSA_INVENTORY_STATIC`` in etc/ansible/osa-inventory.rc).
        """
        plugins = self.names()
        known = plugins | set(settings.sections) | {MAIN_SECTION}
        for section in settings.sections:
            if section == MAIN_SECTION:
                continue
            plugin = settings.plugin_for(section)
            if plugin not in plugins:
                miss = near_miss(plugin, self.folders)
                if miss:
                    raise SettingsError(f"{settings.describe()}: section [{section}] names no storage plugin: {miss}")
                hint = closest(section, known - {section}) or closest(plugin, plugins)
                raise SettingsError(
                    f"{settings.describe()}: section [{section}] names no storage plugin (no {plugin}.py in "
                    f"{', '.join(self.folders)}){hint}; rename the section, set its plugin option, "
                    "or add its folder to [inventory] plugin_paths")


def _source_of(folder: str) -> str:
    return BUILTIN if folder == BUILTIN_DIR else FOLDER


def _offered(entry: discovery.Installed) -> Definition:
    return Definition(entry.name, DISTRIBUTION, entry.origin, entry)


def _name_source(name: str, settings: Settings) -> str:
    """Where the plugin name came from: a section's ``plugin`` option, or ``[inventory] backend``."""
    for section in sorted(settings.known_sections()):
        if settings.options(section).get("plugin", "").strip() == name:
            return settings.source(section, "plugin")
    if settings.backend == name:
        return inventory_source(settings, "backend")
    return settings.describe()
