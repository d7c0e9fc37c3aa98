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
from ..errors import InventoryError, NothingStored
from ..inventory.changes import compare
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


def load_required(backend: Backend, read_only: bool = False,
                  missing: Callable[[Backend], InventoryError] | None = None) -> dict:
    """The stored inventory: what inventory-manage and the API read.

    ``read_only``: the plugin writes nothing, not even on the side (:meth:`Backend.load`).
    An empty store raises :class:`~osa_inventory.errors.NothingStored` (the commands add how to
    store a first inventory, :mod:`osa_inventory.commands.advice`); ``missing`` makes the error
    in the caller's own words instead.
    """
    data = backend.load(read_only=read_only)
    if data is None:
        if missing is not None:
            raise missing(backend)
        raise NothingStored(f"{backend.describe()} holds no inventory yet", backend.config_dir)
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


def preview_change(backend: Backend, change: Callable[[dict], list[str]]) -> tuple[dict, dict, list[str]]:
    """``change`` applied to a copy of the inventory stored now, without the lock: (stored, changed, lines).

    Writes nothing, not even a lock key (a refusal leaves etcd's revision and
    Craton's request log as they were); an edit is then made with
    :func:`change_checked`, which applies it again under the lock.
    """
    stored = backend.load(read_only=True)
    if stored is None:
        load_required(backend)  # its one line: nothing is stored yet
    edited = copy_of(stored)
    notes = change(edited)
    return stored, edited, notes


def change_checked(backend: Backend, change: Callable[[dict], list[str]],
                   account: Account | None = None) -> tuple[bool, list[str], dict]:
    """:func:`change_stored`, after a check run of ``change`` outside the lock refuses what it would refuse."""
    preview_change(backend, change)
    return change_stored(backend, change, account)
