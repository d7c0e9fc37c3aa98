"""Every storage backend available here, where it comes from and what it offers.

This is what ``inventory-manage --list-backends`` shows: the drop-in files of
the ``plugin_paths`` folders, the plugins of installed distributions and the
built-in ones, one row per name, resolved exactly as a run would resolve it
(so a name defined twice shows the error a run would meet).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InventoryError, one_line
from . import discovery
from .loader import BUILTIN_DIR, plugin_class, search_path
from .settings import Settings

#: ``history`` of a plugin with ``history()`` but no ``read_version()``: it lists who changed what (Craton).
RECORDS_ONLY = "records only"


@dataclass
class Available:
    """One backend name and what a run selecting it would get."""

    name: str
    source: str          # "built-in", "folder" or "distribution"
    where: str           # the file, or "NAME VERSION (module:attr)" of a distribution
    lock: bool | None    # None: unknown, the plugin cannot be loaded
    history: bool | str | None  # True: versions (diff, restore); RECORDS_ONLY: change records, no versions
    note: str = ""


def _drop_ins(folder: str) -> list[tuple[str, str]]:
    """``(name, file)`` of each plugin in ``folder``: ``NAME.py`` or ``NAME/__init__.py``."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    found: dict[str, str] = {}
    for entry in entries:
        path = os.path.join(folder, entry)
        if entry.endswith(".py") and os.path.isfile(path):
            found.setdefault(entry[:-3], path)
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            found[entry] = os.path.join(path, "__init__.py")  # a package beats a module beside it, as in Python
    return [(name, path) for name, path in found.items() if discovery.valid_name(name)]


def _is_builtin(path: str) -> bool:
    return BUILTIN_DIR in (os.path.dirname(path), os.path.dirname(os.path.dirname(path)))


def _history_of(cls) -> bool | str:
    if not callable(getattr(cls, "history", None)):
        return False
    return True if callable(getattr(cls, "read_version", None)) else RECORDS_ONLY


def available(settings: Settings) -> list[Available]:
    """One :class:`Available` per backend name, sorted by name."""
    folders = search_path(settings)
    files: dict[str, list[str]] = {}
    for folder in folders:
        for name, path in _drop_ins(folder):
            files.setdefault(name, []).append(path)
    dists: dict[str, list[discovery.Installed]] = {}
    for entry in discovery.installed():
        dists.setdefault(entry.name, []).append(entry)
    rows = []
    for name in sorted(set(files) | set(dists)):
        paths = files.get(name, [])
        if name in dists and not paths:
            first = dists[name][0]
            row = Available(name, "distribution", f"{first.distribution} {first.version} ({first.value})", None, None)
        else:
            row = Available(name, "built-in" if _is_builtin(paths[0]) else "folder", paths[0], None, None)
            if paths[1:]:
                row.note = "used instead of " + ", ".join(
                    "the built-in one" if _is_builtin(p) else p for p in paths[1:])
        if not discovery.valid_name(name):
            row.note = "not selectable: a backend name is letters, digits and underscores"
            rows.append(row)
            continue
        try:
            cls = plugin_class(name, settings)
        except InventoryError as exc:
            row.note = "; ".join(filter(None, (row.note, f"ERROR: {one_line(exc)}")))
        else:
            row.lock = callable(getattr(cls, "lock", None))
            row.history = _history_of(cls)
        rows.append(row)
    return rows
