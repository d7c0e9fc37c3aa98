"""Crash-safe file replacement and locks, shared by the file-based stores.

``atomic_write`` leaves either the old or the new content after a crash;
``flock_wait`` takes an exclusive ``flock`` with a deadline; ``Reentrant``
lets an object's lock be taken again by the same object (``write()`` inside
``lock()``) without deadlocking on itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from typing import Callable, ContextManager, Iterator

from ..errors import StorageError

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str, data: bytes, mode: int) -> None:
    """Write a temp file in the same folder, fsync it, rename it over ``path``, fsync the folder."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextlib.contextmanager
def flock_wait(path: str, timeout: float, hint: str, create: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a folder, or a file made if ``create``).

    Waits up to ``timeout`` seconds for another holder, then fails with one
    line that ends with ``hint`` (what the user can do about it).
    """
    if create:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    else:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
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
                        f"another run has held the lock on {path} for over {timeout:.0f} s; {hint}") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
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
