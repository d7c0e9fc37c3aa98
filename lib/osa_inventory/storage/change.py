"""One change to a stored inventory, made the same way by inventory-manage and the Python API.

Under the backend's lock the stored inventory is read again (never a copy read
before the lock), edited, and written only if the edit changed it, with the
record of who made the change and why. ``Account`` carries the command and the
reason every record of one invocation names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from ..accounting import ChangeRecord
from ..errors import InventoryError
from ..inventory.changes import compare
from ..resources import inventory_command
from .backend import Backend


@dataclass(frozen=True)
class Account:
    """What every record of one invocation says: the command, and the ``--reason`` (None: ``$OSA_INVENTORY_REASON``)."""

    command: str
    reason: str | None = None

    def record(self, old: dict | None, new: dict) -> ChangeRecord:
        """The record of storing ``new`` over ``old`` (None: nothing, or nothing readable, was stored)."""
        return ChangeRecord.now(self.command, compare(old or {}, new).summary(), self.reason)


def copy_of(inventory: dict) -> dict:
    """A deep copy (a JSON round trip is faster than deepcopy and proves it is plain JSON)."""
    return json.loads(json.dumps(inventory))


def load_required(backend: Backend) -> dict:
    """The stored inventory, or one line saying nothing is stored yet."""
    data = backend.load()
    if data is None:
        raise InventoryError(
            f"{backend.describe()} holds no inventory yet; run {inventory_command(backend.config_dir)} first "
            "or bring one in with --import FILE")
    return data


def change_stored(backend: Backend, change: Callable[[dict], list[str]],
                  account: Account | None = None) -> tuple[bool, list[str], dict]:
    """Apply ``change`` to the stored inventory under the lock; store it only if it changed.

    The write carries ``account``'s record of it. Returns whether it was
    written, the lines ``change`` reported and the resulting inventory.
    """
    with backend.lock():
        stored = load_required(backend)
        edited = copy_of(stored)
        notes = change(edited)
        if edited == stored:
            return False, notes, stored
        backend.write(edited, record=account.record(stored, edited) if account else None)
        return True, notes, edited
