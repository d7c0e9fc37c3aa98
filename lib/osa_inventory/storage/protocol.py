"""What a storage plugin is, as types: the contract of docs/writing-plugins.md, no base class needed.

A plugin's ``Storage`` class needs no import of this module: any class with
``register``, ``load`` and ``write`` is a :class:`Storage`. Type checkers
check a plugin against it (``storage: Storage = MyStorage()``), and the
protocols are runtime-checkable, so ``isinstance(obj, Lockable)`` says
whether an instance offers an optional part (it checks that the methods
exist, not their signatures; the contract suite, :mod:`osa_inventory.testing`,
checks what they do).

The change record of a write (:class:`ChangeRecord`) reaches a plugin whose
``write()`` has a parameter named ``record`` (:class:`Recording`) as that
argument: ``write(inventory, record=...)``, None when the caller gave none.
A plugin whose ``write()`` takes the inventory only keeps working: inside
its ``write()``, :func:`pending_change` (re-exported here from
:mod:`osa_inventory.accounting`) returns the same record. :func:`accepts_record`
is how the caller tells the two apart. A plugin that keeps no records ignores both.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, ContextManager, Mapping, Protocol, runtime_checkable

from ..accounting import ChangeRecord, pending_change

__all__ = ["ChangeRecord", "Closable", "Describable", "Lockable", "Recording", "ReservesAddresses", "Storage",
           "Versioned", "accepts_record", "pending_change"]


@runtime_checkable
class Storage(Protocol):
    """The three methods every plugin has."""

    def register(self, args: Mapping[str, str]) -> None:
        """Take the section's options (all text) and ``config_dir``; refuse a bad one with a StorageError."""

    def load(self) -> dict | None:
        """The stored inventory exactly as written, a fresh dict each time; None before the first write."""

    def write(self, inventory: dict) -> None:
        """Store ``inventory`` durably and atomically (see :class:`Recording` for its change record)."""


@runtime_checkable
class Recording(Protocol):
    """A plugin whose ``write()`` takes the write's change record as the argument ``record``.

    ``isinstance`` checks only that ``write`` exists; :func:`accepts_record` checks the parameter.
    """

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Store ``inventory`` and, when you keep records, ``record`` (None: the caller gave none) with it."""


def accepts_record(write: Callable[..., Any]) -> bool:
    """Whether ``write`` has a parameter ``record`` that can be passed by keyword.

    A callable whose signature cannot be read (a builtin, a hostile ``__signature__``)
    is taken not to: it gets the record through :func:`pending_change` only.
    """
    try:
        parameter = inspect.signature(write).parameters.get("record")
    except Exception:  # noqa: BLE001 - a plugin's broken signature must not stop the write
        return False
    return parameter is not None and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                        inspect.Parameter.KEYWORD_ONLY)


@runtime_checkable
class Lockable(Protocol):
    """A plugin whose runs serialise: exclusive across instances and processes, re-entrant in one."""

    def lock(self) -> ContextManager[Any]:
        """The lock, held across load, generate and write."""


@runtime_checkable
class Versioned(Protocol):
    """A plugin that keeps earlier inventories (``--history``, ``--diff``, ``--restore``).

    A plugin with ``history()`` only (no ``read_version()``) keeps change records but not
    inventories: ``--history`` works, ``--diff`` and ``--restore`` say they cannot.
    """

    def history(self) -> list[dict]:
        """Oldest first: ``{"version": str, "time": "YYYY-mm-ddTHH:MM:SSZ", **record fields}``."""

    def read_version(self, version: str) -> dict:
        """The inventory as stored at ``version``."""


@runtime_checkable
class Describable(Protocol):
    """A plugin that says where its inventory lives, in one line without secrets."""

    def describe(self) -> str:
        """e.g. ``etcd https://10.0.0.11:2379 /openstack-ansible/inventory/prod``."""


@runtime_checkable
class ReservesAddresses(Protocol):
    """A plugin that is an IPAM (NetBox): it knows addresses in the pools held by something else."""

    def reserved_addresses(self, networks: list[str]) -> list[dict]:
        """``{"address": a used_ips entry, "held_by": one line}`` for each held address inside ``networks``."""


@runtime_checkable
class Closable(Protocol):
    """A plugin that releases connections or files at the end of a run."""

    def close(self) -> None:
        """Called once, last."""
