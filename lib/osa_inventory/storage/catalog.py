"""Every storage backend available here, where it comes from and what it offers.

This is what ``inventory-manage --list-backends`` shows: the drop-in files of
the ``plugin_paths`` folders, the plugins of installed distributions and the
built-in ones, one row per name, resolved exactly as a run would resolve it
(so a name defined twice shows the error a run would meet).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InventoryError, one_line
from . import discovery
from .importer import import_class
from .registry import BUILTIN, DISTRIBUTION, Registry, check_deployer_folders
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


def _history_of(cls) -> bool | str:
    if not callable(getattr(cls, "history", None)):
        return False
    return True if callable(getattr(cls, "read_version", None)) else RECORDS_ONLY


def available(settings: Settings) -> list[Available]:
    """One :class:`Available` per backend name, sorted by name.

    The folders are listed before their trust checks, so that a refused
    folder shows in each row it concerns; nothing is imported before them.
    """
    registry = Registry.of(settings, checked=False)
    rows = []
    for name, definitions in registry.listing().items():
        files = [d for d in definitions if d.source != DISTRIBUTION]
        entry = definitions[0].entry
        if not files and entry is not None:
            row = Available(name, DISTRIBUTION, f"{entry.distribution} {entry.version} ({entry.value})", None, None)
        else:
            row = Available(name, files[0].source, files[0].where, None, None)
            if files[1:]:
                row.note = "used instead of " + ", ".join(
                    "the built-in one" if d.source == BUILTIN else d.where for d in files[1:])
        if not discovery.valid_name(name):
            row.note = "not selectable: a backend name is letters, digits and underscores"
            rows.append(row)
            continue
        try:
            check_deployer_folders(settings)  # before a clash names a file there
            cls = import_class(registry.require(name, settings), registry, settings)
        except InventoryError as exc:
            row.note = "; ".join(filter(None, (row.note, f"ERROR: {one_line(exc)}")))
        else:
            row.lock = callable(getattr(cls, "lock", None))
            row.history = _history_of(cls)
        rows.append(row)
    return rows
