"""A time limit on every step of plugin code: ``[inventory] timeout``.

A plugin can hang anywhere (importing, taking its lock, loading, writing),
and a plugin can swallow any exception, so the limit is not an exception
raised into its code: a timer thread writes one line on stderr and ends the
process with status 1. Nothing has been printed on stdout by then (the
inventory is printed after the last plugin step), locks held through the
kernel (flock) are released by the exit, and a remote lock expires with its
lease. A plugin that must tidy up before the limit can ask
:func:`remaining` how long the current step has left.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Callable, Iterator

from ..errors import one_line
from ..terminal import error_line

DEFAULT_TIMEOUT = 600.0
MAX_TIMEOUT = 86400.0

_LOCAL = threading.local()


def _exit_now(line: str) -> None:
    # os.write: the main thread may be stuck inside sys.stderr's own lock.
    with contextlib.suppress(OSError):
        os.write(2, f"{error_line(line)}\n".encode("utf-8", "replace"))
    os._exit(1)


@contextlib.contextmanager
def step(timeout: float, message: Callable[[], str],
         on_timeout: Callable[[str], None] = _exit_now) -> Iterator[None]:
    """Run the body with a limit of ``timeout`` seconds; past it, ``on_timeout(message())``.

    The default ``on_timeout`` prints ``ERROR: message`` on stderr and exits 1.
    ``message`` is called only when the limit is reached, so building it
    costs nothing on the normal path. Steps may nest; each has its own limit.
    """
    deadline = time.monotonic() + timeout
    guard = threading.Lock()
    state = {"active": True}

    def fire() -> None:
        with guard:
            if state["active"]:
                on_timeout(one_line(Exception(message())))

    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    stack = _LOCAL.__dict__.setdefault("deadlines", [])
    stack.append(deadline)
    timer.start()
    try:
        yield
    finally:
        with guard:
            state["active"] = False
        timer.cancel()
        stack.pop()


def remaining() -> float | None:
    """Seconds left in the innermost step running in this thread, or None outside any step."""
    stack = getattr(_LOCAL, "deadlines", None)
    if not stack:
        return None
    return max(0.0, min(stack) - time.monotonic())
