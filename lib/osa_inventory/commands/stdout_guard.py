"""Keep Ansible's stdout for the inventory alone.

Plugin code may write to file descriptor 1 in ways no ``sys.stdout``
redirection catches: ``os.write(1, ...)``, ``sys.__stdout__``, a subprocess
it starts, an ``atexit`` handler. So while the script works, descriptor 1
itself leads to stderr, and the JSON goes out through a private duplicate of
the real stdout, made before any plugin ran and not inherited by children.

A plugin that closes every descriptor above 2 (a common "daemon" idiom) and
then opens a file gets that duplicate's number for its file, so the JSON
would go into the plugin's file and the run would still exit 0. So the
duplicate's identity (the open file's device, inode, type and access mode,
and the descriptor's close-on-exec flag) is recorded when it is made and
compared before anything is written to it; a descriptor that no longer leads
to the same open file is refused in one line. No other file can pass (a
device and inode name one file); only reopening the very same file can, and
then the JSON still goes where the caller reads it. This catches plugin code
that tidies descriptors it does not own; it cannot stop code that means harm,
which runs in this process and can write to any descriptor it finds (that is
what the trust rules on plugin files are for).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import stat
import sys
from typing import Callable, Iterator, NamedTuple

from ..bounded import describe_kind
from ..errors import InventoryError


class _Identity(NamedTuple):
    """What tells one open file from another: see the module doc."""

    device: int
    inode: int
    kind: int
    rdev: int
    access: int
    cloexec: bool


def _identity(fd: int) -> _Identity | None:
    """The identity of the open file behind ``fd``, None when ``fd`` is closed."""
    try:
        st = os.fstat(fd)
        return _Identity(st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode), st.st_rdev,
                         fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE,
                         bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
    except OSError:
        return None


def check_same_output(fd: int, expected: _Identity) -> None:
    """Refuse in one line unless descriptor ``fd`` still leads to the open file recorded as ``expected``."""
    found = _identity(fd)
    if found == expected:
        return
    if found is None:
        what = "closed"
    else:
        try:  # the file's name, from Linux's /proc ("/var/log/x.log", "pipe:[123]")
            leads_to = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            leads_to = describe_kind(found.kind)
        what = f"replaced (it now leads to {leads_to})"
    raise InventoryError(
        f"plugin code {what} descriptor {fd}, the script's private copy of standard output, so nothing "
        "was printed (anything this run stored stays stored); make the storage plugin close only the "
        "descriptors it opened itself, then run again")


def _point_fd1_at_stderr() -> None:
    try:
        os.dup2(2, 1)
    except OSError:  # stderr closed too: stray output is dropped rather than sent to Ansible
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


@contextlib.contextmanager
def stdout_for_result_only() -> Iterator[Callable[[str], None]]:
    """While the body runs, fd 1 and ``sys.stdout`` lead to stderr; yields ``emit(text)`` for the result.

    ``emit`` writes to the real stdout and closes it, so nothing can follow the
    result there. Descriptor 1 is not restored afterwards, so whatever a plugin
    still writes at exit (``atexit``, buffers flushed at shutdown) goes to stderr.
    Raises :class:`InventoryError` up front when stdout is closed.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        real = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        raise InventoryError(
            "standard output is closed, so the inventory cannot be printed; "
            "run the script with stdout open (as Ansible does)") from None
    expected = _identity(real)
    _point_fd1_at_stderr()
    emitted = False

    def emit(text: str) -> None:
        nonlocal emitted
        # Buffered plugin output (print, sys.__stdout__) leaves now, for stderr, not after the result.
        for stream in (sys.stdout, sys.__stdout__):
            with contextlib.suppress(Exception):
                stream.flush()
        check_same_output(real, expected)  # last, right before the write: nothing of the plugin runs after it
        emitted = True
        with os.fdopen(real, "w", encoding="utf-8", closefd=True) as out:
            out.write(text)

    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield emit
    finally:
        if not emitted and _identity(real) == expected:  # a descriptor a plugin took over is not ours to close
            os.close(real)


def _stdout_to_stderr_at_exit() -> None:
    """At exit, after the caller's output: what exit handlers registered before this one print goes to stderr."""
    for stream in (sys.stdout, sys.__stdout__):
        with contextlib.suppress(Exception):
            stream.flush()
    _point_fd1_at_stderr()
    sys.stdout = sys.stderr


@contextlib.contextmanager
def stdout_diverted() -> Iterator[None]:
    """While the body runs, fd 1 and ``sys.stdout`` lead to stderr; both are restored afterwards.

    For a caller that prints its own result later on the same stdout (Ansible, running the
    inventory plugin): storage plugin code run in the body cannot put text into that result.
    Nor can its exit handlers (``atexit``), which run after the caller printed: a handler
    registered after the body runs before them (last registered, first run) and diverts fd 1
    for good.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:  # stdout closed: nothing of the body's can reach a reader of it either
        saved = None
    _point_fd1_at_stderr()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for stream in (sys.stdout, sys.__stdout__):
            with contextlib.suppress(Exception):
                stream.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
        atexit.unregister(_stdout_to_stderr_at_exit)  # registered again: after any handler the body added
        atexit.register(_stdout_to_stderr_at_exit)
