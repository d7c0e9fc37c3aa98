"""Write marks on a service without transactions: who holds one, and whether that writer may still run.

A backend on a service that has no lock and no multi-request transaction (Craton,
NetBox) announces every write with a *mark* stored in the service before it
changes anything (see docs/craton.md and docs/netbox.md for each one's marks and
undo records). A mark names its writer with :func:`identity`; whoever finds it
asks :func:`alive` whether that writer may still be writing, and otherwise rolls
its write back or forward. Only :func:`identity` and :func:`alive` look at this
machine's processes; :data:`ACTIVE` holds the tokens of the writes this process
is running, so a mark of this very process counts as alive only while its write runs.
"""

from __future__ import annotations

import os
import socket
import time

ACTIVE: set[str] = set()  # tokens of the writes running in this process


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' when unknown)."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def identity() -> dict:
    """This process as a writer: host name, boot id, process id and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id").strip(),
            "pid": pid, "start": _process_start(pid)}


def describe_writer(mark: dict) -> str:
    who = mark.get("writer") if isinstance(mark.get("writer"), dict) else {}
    return f"host {who.get('host') or '?'} (pid {who.get('pid') or '?'}, started {mark.get('started') or '?'})"


def alive(mark: dict, now: float | None = None) -> bool:
    """Whether the writer of ``mark`` may still be running.

    On this machine (same host name and boot) the process is checked; a
    writer elsewhere counts as alive until its mark expires.
    """
    who = mark.get("writer") if isinstance(mark.get("writer"), dict) else {}
    me = identity()
    if me["boot"] and who.get("host") == me["host"] and who.get("boot") == me["boot"]:
        pid = who.get("pid")
        if pid == me["pid"]:
            return mark.get("token") in ACTIVE
        if not isinstance(pid, int) or pid <= 0:
            return False
        return bool(who.get("start")) and _process_start(pid) == who.get("start")
    expires = mark.get("expires")
    return not isinstance(expires, (int, float)) or (time.time() if now is None else now) < expires
