"""Copy the inventory between backends (``--migrate-to``) and bring one in from a file (``--import``).

The source of a migration is only read. The copy is read back through a
fresh instance of the target backend and must be exactly equal (as JSON
values: ``1`` is not ``1.0``, ``-0.0`` is not ``0.0``; key order is not part of a
JSON value), so a backend that silently loses or alters data is caught before
anyone switches to it. A long migration shows a progress line when stderr is a
terminal (backends that write slowly report it, see :mod:`osa_inventory.progress`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Callable

from .. import progress
from ..errors import AccessDenied, InventoryError
from ..storage.backend import Backend
from .inventory_file import check_inventory, load_inventory_file
from ..storage.change import Account, load_required
from ..inventory.document import groups_of, hostvars_of


@dataclass
class Transfer:
    """What a migration or import did."""

    written: bool
    hosts: int
    groups: int
    size: int
    note: str = ""


def measure(inventory: dict) -> tuple[int, int, int]:
    """Hosts, groups and bytes of compact JSON (the size a reader transfers)."""
    size = len(json.dumps(inventory, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return len(hostvars_of(inventory)), len(groups_of(inventory)), size


def canonical(value: object) -> str:
    """JSON text that tells apart what ``==`` does not (``True``/``1``, ``2``/``2.0``, ``-0.0``/``0.0``)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _verify(reopen: Callable[[], Backend], expected: dict, what: str) -> None:
    fresh = reopen()
    try:
        back = fresh.load()
    finally:
        with contextlib.suppress(InventoryError):
            fresh.close()
    if canonical(back) != canonical(expected):
        raise InventoryError(
            f"{fresh.describe()} did not give back what was written ({what}); "
            "do not switch to it, and check the backend")


def migrate(source: Backend, target: Backend, reopen_target: Callable[[], Backend],
            force: bool = False, account: Account | None = None) -> Transfer:
    """Copy the source's inventory to ``target``; the source is never changed.

    A target already holding a different inventory is refused unless
    ``force``; one holding the same inventory is left as it is. The write
    carries ``account``'s record.
    """
    if source.describe() == target.describe():
        raise InventoryError(
            f"the target section [{target.section}] stores to the same place as the source "
            f"({source.describe()}); point it somewhere else")
    with source.lock(), progress.on_terminal():
        inventory = load_required(source)
        with target.lock():
            written = _store(target, inventory, target.load(), force,
                             "nothing was copied. Check it is not in use, then repeat with --force to replace it",
                             account)
    _verify(reopen_target, inventory, "the read-back copy differs")
    return Transfer(written, *measure(inventory))


def _store(target: Backend, inventory: dict, existing: dict | None, force: bool, refusal: str,
           account: Account | None) -> bool:
    """Write ``inventory`` unless ``target`` holds it already; a different one needs ``force``."""
    if existing is not None and canonical(existing) == canonical(inventory):
        return False
    if existing is not None and not force:
        raise InventoryError(f"{target.describe()} already holds a different inventory; {refusal}")
    target.write(inventory, record=account.record(existing, inventory) if account else None)
    return True


def import_file(path: str, target: Backend, reopen_target: Callable[[], Backend],
                force: bool = False, account: Account | None = None) -> Transfer:
    """Validate ``path`` and store it as the inventory of ``target``, with ``account``'s record.

    A target that already holds a different inventory (or one it cannot
    read) is only replaced with ``force``.
    """
    inventory, lost_nesting = load_inventory_file(path)
    check_inventory(inventory, path)
    with target.lock():
        try:
            existing = target.load()
        except AccessDenied:
            raise  # --force cannot help: only credentials that may read and write the store
        except InventoryError as exc:
            if not force:
                raise InventoryError(
                    f"the stored inventory cannot be read ({exc}); repeat with --force to replace it") from None
            existing = None
        written = _store(target, inventory, existing, force,
                         "nothing was imported. Repeat with --force to replace it "
                         "(backends with history keep the old version)", account)
    _verify(reopen_target, inventory, "the read-back inventory differs from the file")
    note = ("converted from an --export file without its group table (as OpenStack-Ansible writes them); "
            "group nesting comes back with the next inventory run" if lost_nesting else "")
    return Transfer(written, *measure(inventory), note=note)
