"""Crash-safe file replacement and locks, shared by the file-based stores.

``atomic_write`` leaves either the old or the new content after a crash;
``set_aside`` moves a damaged file to a name no other set-aside file has;
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


def atomic_write(path: str, data: bytes, mode: int, owner: tuple[int, int] | None = None,
                 mtime: float | None = None) -> None:
    """Write a temp file in the same folder, fsync it, rename it over ``path``, fsync the folder.

    ``mtime``, when given, is the new file's modification time from the moment it appears.

    ``owner`` (uid, gid) is given to the new file when this user may; when the
    group cannot be kept, the group permission bits are dropped so that the
    new file never opens to a group the old one did not.
    """
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if owner is not None:
                mode = _give(fh.fileno(), owner, mode)
            os.fchmod(fh.fileno(), mode)
            if mtime is not None:
                os.utime(fh.fileno(), (mtime, mtime))
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


def _give(fd: int, owner: tuple[int, int], mode: int) -> int:
    """chown ``fd`` to ``owner`` as far as allowed; the mode to use given what was kept."""
    uid, gid = owner
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == (uid, gid):
        return mode
    for want in ((uid, gid), (-1, gid)):
        try:
            os.fchown(fd, *want)
            return mode
        except PermissionError:
            continue
    return mode & ~0o070


def owner_of(path: str) -> tuple[int, int] | None:
    """(uid, gid) of ``path`` (following links), or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid


def set_aside(path: str, label: str, stamp: str) -> str:
    """Move ``path`` to ``<path>.<label>-<stamp>`` (``-2``, ``-3``... if taken); the new name.

    A hard link claims the new name only if nobody has it, so two files set
    aside in the same second never overwrite one another.
    """
    base = f"{path}.{label}-{stamp}"
    for n in range(1, 10_000):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            os.link(path, candidate)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here (some network or FAT file systems): claim the name by
            # checking; the callers hold the store's lock, so nobody races them.
            if os.path.lexists(candidate):
                continue
            os.rename(path, candidate)
            return candidate
        os.unlink(path)
        return candidate
    raise StorageError(f"cannot set {path} aside: {base} and 9999 numbered names exist; remove old ones")


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
