"""Who changed the inventory, when, from where, with what and why.

Every write goes to the plugin with a :class:`ChangeRecord`: the caller (the
inventory script, inventory-manage or the API) builds it, :meth:`Backend.write
<osa_inventory.storage.loader.Backend.write>` passes it as ``write(inventory,
record=...)`` to a plugin whose ``write()`` has that parameter, and makes it the
*pending change* while the plugin's ``write()`` runs (plugins written before the
parameter existed read it with :func:`pending_change`). A plugin that keeps
records stores it with the version it writes::

    def write(self, inventory, record=None):    # None: the caller gave no record
        ... store inventory, and record.to_dict() beside it ...

    def history(self):
        return [{"version": ..., "time": ..., **stored_record_fields}, ...]

The record is plain data with bounded text (a record is read back from
storage, so it is never trusted further than :meth:`ChangeRecord.from_dict`
checks it). Plugins that keep no records simply ignore it; ``--history``
then shows ``-`` in the who/why columns.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pwd
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Mapping

from .errors import InventoryError

REASON_VARIABLE = "OSA_INVENTORY_REASON"
#: The keys of one record, in the order ``--history --format json`` shows them (after ``version``).
FIELDS = ("time", "user", "host", "command", "reason", "summary")
#: Longest text kept per field: records live in manifests, variables and archives, never unbounded.
MAX_FIELD = 1024

_PENDING: contextvars.ContextVar[ChangeRecord | None] = contextvars.ContextVar("osa_pending_change",
                                                                                 default=None)


def _clip(value: str) -> str:
    value = " ".join(str(value).split())  # one line, whatever a reason or argv held
    return value if len(value) <= MAX_FIELD else value[:MAX_FIELD - 3] + "..."


def utc_now() -> str:
    """Now, UTC, to the second: ``2026-12-01T03:20:40Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def current_user() -> str:
    """The effective user's name; under sudo, also the user who ran sudo (``root (sudo: alice)``)."""
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    invoker = os.environ.get("SUDO_USER", "")
    if invoker and invoker != name:
        return f"{name} (sudo: {invoker})"
    return name


def current_host() -> str:
    """This machine's host name, as the kernel has it.

    Not the fully qualified name: finding that asks the resolver, which on a deploy host with
    a broken DNS can stall a run for many seconds, and the host name names the deploy host.
    """
    import socket  # only runs that store something ask; the import costs every run a few ms

    return socket.gethostname()


def reason_from_environment() -> str:
    """``$OSA_INVENTORY_REASON`` made one line, or ``""``."""
    return _clip(os.environ.get(REASON_VARIABLE, ""))


@dataclass(frozen=True)
class ChangeRecord:
    """One write's account: UTC ``time``, ``user``, ``host``, ``command``, ``reason``, ``summary``."""

    time: str
    user: str
    host: str
    command: str
    reason: str
    summary: str

    @classmethod
    def now(cls, command: str, summary: str, reason: str | None = None) -> ChangeRecord:
        """A record of a write made now, here, by this user; ``reason`` defaults to ``$OSA_INVENTORY_REASON``."""
        return cls(time=utc_now(), user=_clip(current_user()), host=_clip(current_host()),
                   command=_clip(command), reason=_clip(reason_from_environment() if reason is None else reason),
                   summary=_clip(summary))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "a stored change record") -> ChangeRecord:
        """A record read back from storage: every field a string (missing ones ``""``), clipped.

        Anything that is not a mapping of strings is refused in one line naming ``where``.
        """
        if not isinstance(data, Mapping):
            raise InventoryError(f"{where} is a {type(data).__name__}, not a mapping of {', '.join(FIELDS)}")
        values = {}
        for key in FIELDS:
            value = data.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InventoryError(f"{where}: {key} is a {type(value).__name__}, not text")
            values[key] = _clip(value)
        return cls(**values)


def pending_change() -> ChangeRecord | None:
    """The record of the write in progress (inside a plugin's ``write()``), else None."""
    return _PENDING.get()


@contextlib.contextmanager
def pending(record: ChangeRecord | None) -> Iterator[None]:
    """Make ``record`` the pending change for the body (``Backend.write`` does this)."""
    token = _PENDING.set(record)
    try:
        yield
    finally:
        _PENDING.reset(token)
