"""Keep Ansible's stdout for the inventory alone.

Plugin code may write to file descriptor 1 in ways no ``sys.stdout``
redirection catches: ``os.write(1, ...)``, ``sys.__stdout__``, a subprocess
it starts, an ``atexit`` handler. So while the script works, descriptor 1
itself leads to stderr, and the JSON goes out through a private duplicate of
the real stdout, made before any plugin ran and not inherited by children.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from typing import Callable, Iterator

from .errors import InventoryError


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
    _point_fd1_at_stderr()
    emitted = False

    def emit(text: str) -> None:
        nonlocal emitted
        # Buffered plugin output (print, sys.__stdout__) leaves now, for stderr, not after the result.
        for stream in (sys.stdout, sys.__stdout__):
            with contextlib.suppress(Exception):
                stream.flush()
        emitted = True
        with os.fdopen(real, "w", encoding="utf-8", closefd=True) as out:
            out.write(text)

    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield emit
    finally:
        if not emitted:
            os.close(real)
