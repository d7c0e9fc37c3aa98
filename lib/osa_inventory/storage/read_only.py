"""Reads that must write nothing at all, not even what a backend's ``load()`` keeps on the side.

``inventory-manage --plan`` promises to write nothing anywhere. A plugin whose
``load()`` may write (the Craton plugin refreshes its local cache after a full
load, and finishes an abandoned write by rolling it back) asks :func:`active`
and leaves those writes for a later load while it is true. The loader sets it
around the plugin's ``load()`` when asked to (``Backend.load(read_only=True)``).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("osa_read_only", default=False)


def active() -> bool:
    """Whether the plugin code running now must write nothing (no cache, no repair, no record)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def reading_only() -> Iterator[None]:
    """Run the body as a read that writes nothing."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
