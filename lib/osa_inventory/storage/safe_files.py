"""Locks shared by the file-based stores.

``flock_wait`` takes an exclusive ``flock`` with a deadline, on a path or
(``hold_flock``) on a folder already open; ``Reentrant`` lets an object's
lock be taken again by the same object (``write()`` inside ``lock()``)
without deadlocking on itself. Writing files is :mod:`.store_files`' job.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from typing import Callable, ContextManager, Iterator

from ..errors import StorageError

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def hold_flock(fd: int, timeout: float, hint: str, shown: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the open descriptor ``fd`` (named ``shown`` in the refusal).

    Waits up to ``timeout`` seconds for another holder, then fails with one
    line that ends with ``hint`` (what the user can do about it).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"another run has held the lock on {shown} for over {timeout:.0f} s; {hint}") from None
            time.sleep(0.02)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def flock_wait(path: str, timeout: float, hint: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder or file ``path``; see :func:`hold_flock`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
        with hold_flock(fd, timeout, hint, path):
            yield
    finally:
        os.close(fd)


class Reentrant:
    """Wrap a lock factory so that nested use by the same owner takes it only once."""

    def __init__(self, acquire: Callable[[], ContextManager[None]]):
        self._acquire = acquire
        self.depth = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        with self._acquire():
            self.depth = 1
            try:
                yield
            finally:
                self.depth = 0
