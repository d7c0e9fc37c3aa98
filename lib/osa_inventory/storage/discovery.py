"""Storage plugins registered by installed distributions (setuptools entry points).

A distribution offers a backend by declaring, in its ``pyproject.toml``::

    [project.entry-points."osa_inventory.storage"]
    sqlite_store = "osa_inventory_sqlite:Storage"

The entry point's name is the backend's name; its value names the
``Storage`` class. Installed distributions are trusted as the Python
environment itself is: whoever can install into it can change this program
too, so no file checks apply to them (drop-in files from ``plugin_paths``
are checked by the loader).

Names must be unique across sources: a distribution never silently takes a
name that a plugin folder, another distribution or the built-in plugins
already define (:mod:`.registry` holds that rule with the others).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import InventoryError, PluginError, one_line

GROUP = "osa_inventory.storage"
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Installed:
    """One entry point of group :data:`GROUP`: a backend offered by an installed distribution."""

    name: str
    value: str
    distribution: str
    version: str

    @property
    def origin(self) -> str:
        """Where the backend comes from, for messages and listings."""
        return f"distribution {self.distribution} {self.version} (entry point {self.name} = {self.value})"

    def load(self) -> Any:
        """The object the entry point names (normally the ``Storage`` class); failures are one line."""
        from importlib import metadata

        try:
            return metadata.EntryPoint(self.name, self.value, GROUP).load()
        except InventoryError as exc:
            raise PluginError(f"storage plugin {self.name} of {self.origin} failed to import: "
                              f"{one_line(exc)}") from None
        except BaseException as exc:  # third-party code: any failure (even sys.exit) is one line
            raise PluginError(f"storage plugin {self.name} of {self.origin} failed to import: "
                              f"{type(exc).__name__}: {one_line(exc)}") from None


def _may_declare_group() -> bool:
    """Whether any distribution on ``sys.path`` may declare :data:`GROUP`: a scan of a millisecond.

    ``importlib.metadata`` costs about 20 ms to import (a seventh of an inventory run), and
    Ansible runs the script on every playbook; nearly always no distribution offers a backend.
    So it is imported only when some ``entry_points.txt`` names the group, or when ``sys.path``
    holds something this scan cannot look into (a zip file).
    """
    header = f"[{GROUP}]"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except NotADirectoryError:
            return True
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry, name, "entry_points.txt"), encoding="utf-8",
                              errors="replace") as fh:
                        if header in fh.read():
                            return True
                except OSError:
                    continue
    return False


def installed() -> list[Installed]:
    """Every entry point of :data:`GROUP` in the running Python, sorted by name then distribution."""
    if not _may_declare_group():
        return []
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else "(unknown)"
        version = dist.version if dist is not None else "?"
        found.append(Installed(ep.name, ep.value, name, version))
    return sorted(found, key=lambda e: (e.name, e.distribution))


def valid_name(name: str) -> bool:
    """Whether an entry point's name can be selected as a backend (osa.ini section names are plain)."""
    return bool(_PLAIN_NAME.match(name))

