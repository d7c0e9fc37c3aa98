"""A progress line for long storage operations, shown only to a person at a terminal.

A backend that writes slowly (NetBox: about 45 objects a second) calls
:func:`report` as it goes; nothing is shown unless a caller asked for it with
:func:`on_terminal` (``inventory-manage --migrate-to``) and stderr is a
terminal, so Ansible, pipes and logs never see it (the inventory script's
stderr must stay empty on success).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from typing import Callable, Iterator, TextIO

from .terminal import escape

_REPORTER: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("osa_progress",
                                                                                       default=None)
MIN_INTERVAL = 0.2  # seconds between two redraws


def report(text: str) -> None:
    """Say where a long operation is (one short line, ``step: count``); a no-op unless :func:`on_terminal`
    is active. Say it before the work it names: the line stays up until the next report."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter(text)


@contextlib.contextmanager
def on_terminal(stream: TextIO | None = None) -> Iterator[None]:
    """Show :func:`report`'s lines on ``stream`` (default stderr), redrawn in place, when it is a terminal."""
    out = sys.stderr if stream is None else stream
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield
        return
    shown = {"any": False, "at": 0.0, "step": None}

    def draw(text: str) -> None:
        now = time.monotonic()
        # A report says what runs from now on: a new step is drawn at once, or a slow request would go on
        # under the line of the quick one before it; only counts of the step shown are thinned out.
        step = text.rpartition(":")[0] or text
        if step == shown["step"] and now - shown["at"] < MIN_INTERVAL:
            return
        shown["any"], shown["at"], shown["step"] = True, now, step
        out.write("\r\x1b[K" + escape(" ".join(text.split()))[:200])
        out.flush()

    token = _REPORTER.set(draw)
    try:
        yield
    finally:
        _REPORTER.reset(token)
        if shown["any"]:
            out.write("\r\x1b[K")
            out.flush()
