"""A time limit on every step of plugin code: ``[inventory] timeout``.

A plugin can hang anywhere (importing, taking its lock, loading, writing).
The front end chooses what a step past its limit does (:func:`limit`):

* :data:`EXIT`, the commands' choice (:func:`step`): a plugin can swallow any
  exception, so a timer thread writes one line on stderr and ends the process
  with status 1. Nothing has been printed on stdout by then (the inventory is
  printed after the last plugin step), locks held through the kernel (flock)
  are released by the exit, and a remote lock expires with its lease.
* :data:`RAISE`, the library's choice (:func:`raising_step`): a process that
  imported the API (a helper script, an Ansible controller) must not be ended
  by it. In the main thread, SIGALRM interrupts the blocked call (a sleep, a
  socket read, a flock: the handler raises, so PEP 475 does not retry them)
  with an exception ``except Exception`` does not catch, and the step raises
  :class:`~osa_inventory.errors.StorageTimeout`; the caller's SIGALRM handler
  is put back after the step. Outside the main thread, or while an alarm of
  the caller is pending, no signal is used: the step raises as soon as the
  plugin call returns.

A plugin that must tidy up before the limit can ask :func:`remaining` how
long the current step has left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

from ..errors import StorageTimeout, one_line
from ..terminal import error_line

DEFAULT_TIMEOUT = 600.0
MAX_TIMEOUT = 86400.0
#: What a step past its limit does: end the process (the commands) or raise StorageTimeout (the API).
EXIT = "exit"
RAISE = "raise"
TIMEOUT_CHOICES = (EXIT, RAISE)

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


def limit(timeout: float, message: Callable[[], str], on_timeout: str = EXIT) -> ContextManager[None]:
    """The step for the front end's choice ``on_timeout``: :data:`EXIT` (:func:`step`) or :data:`RAISE`."""
    if on_timeout == RAISE:
        return raising_step(timeout, message)
    if on_timeout != EXIT:
        raise ValueError(f"on_timeout must be one of {TIMEOUT_CHOICES}, not {on_timeout!r}")
    return step(timeout, message)


class LimitReached(StorageTimeout):
    """The StorageTimeout a raising step raises itself (a plugin may raise StorageTimeout of its own)."""


class _Overrun(BaseException):
    """Raised into plugin code at the limit: not an Exception, so ``except Exception`` lets it through."""


@dataclass
class _Limit:
    """One raising step of the main thread, with the limit it answers to (its own or an outer one's)."""

    deadline: float
    message: Callable[[], str]
    done: bool = False  # the body has ended: the alarm no longer raises into it
    fired: bool = False


# The main thread's raising steps, innermost last, and the SIGALRM handler they replaced.
_ACTIVE: list[_Limit] = []
_SAVED_HANDLER: list = []


def _signals_usable() -> bool:
    """Whether SIGALRM may interrupt this step: main thread, and no alarm of the caller pending."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    if _ACTIVE:
        return True  # ours already
    # A handler installed from C cannot be put back from Python; a pending alarm is the caller's to keep.
    return signal.getsignal(signal.SIGALRM) is not None and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def _arm(deadline: float) -> None:
    # setitimer(0) would disarm: a limit already reached fires at once instead.
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-6))


def _on_alarm(signum, frame) -> None:
    # Only the innermost step is interrupted: its limit is the nearest, and an outer step's body
    # is resumed (and interrupted in turn) only once the inner step has given back control.
    if not _ACTIVE:
        return
    entry = _ACTIVE[-1]
    if entry.done:
        _arm(time.monotonic() + 0.001)  # a step ending right now: the one outside it is next
        return
    if entry.fired:
        return  # interrupted once already; the step raises when its body gives back control
    if time.monotonic() < entry.deadline:
        _arm(entry.deadline)  # early by the clock's grain
        return
    entry.fired = True
    raise _Overrun()


def _push(entry: _Limit) -> None:
    if not _ACTIVE:
        _SAVED_HANDLER.append(signal.signal(signal.SIGALRM, _on_alarm))
    else:
        outer = _ACTIVE[-1]
        if outer.deadline < entry.deadline:  # the outer limit comes first and is the one to name
            entry.deadline, entry.message = outer.deadline, outer.message
    _ACTIVE.append(entry)
    _arm(entry.deadline)


def _pop(entry: _Limit) -> None:
    # The entry leaves the list last: until then the handler sees it done and never raises.
    if len(_ACTIVE) == 1:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, _SAVED_HANDLER.pop())
    else:
        _arm(_ACTIVE[-2].deadline)
    _ACTIVE.pop()


@contextlib.contextmanager
def raising_step(timeout: float, message: Callable[[], str]) -> Iterator[None]:
    """Run the body with a limit of ``timeout`` seconds; past it, raise ``StorageTimeout(message())``.

    In the main thread the body is interrupted at the limit (SIGALRM; the
    caller's handler is restored afterwards). Without a signal (another
    thread, or an alarm of the caller pending) the body runs to its end and
    the step raises then if it took too long. A body that fails after the
    limit (a plugin turning the interruption into its own error) raises
    ``StorageTimeout`` too; one that swallows the interruption and keeps
    waiting cannot be stopped from inside the process.
    """
    entry = _Limit(time.monotonic() + timeout, message)
    signals = _signals_usable()
    stack = _LOCAL.__dict__.setdefault("deadlines", [])
    stack.append(entry.deadline)
    if signals:
        _push(entry)
    late = False
    try:
        try:
            yield
        finally:
            entry.done = True
    except _Overrun:
        late = True
    except Exception:
        if time.monotonic() < entry.deadline:
            raise  # a failure of its own (or an inner step's limit), in time
        late = True
    finally:
        if signals:
            _pop(entry)
        stack.pop()
    if late or entry.fired or time.monotonic() >= entry.deadline:
        raise LimitReached(one_line(Exception(entry.message())))


def remaining() -> float | None:
    """Seconds left in the innermost step running in this thread, or None outside any step."""
    stack = getattr(_LOCAL, "deadlines", None)
    if not stack:
        return None
    return max(0.0, min(stack) - time.monotonic())
