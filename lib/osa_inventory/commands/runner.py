"""What every command does around its work: one way to fail, whichever command it is.

Both front ends (the inventory script and inventory-manage) parse with
:class:`Parser` and run their work through :func:`run_command`, so they
agree on everything but the work itself:

* a usage error quotes what was typed escaped for the terminal;
* stdout carries only the result, whatever plugin code writes
  (:mod:`.stdout_guard`);
* an :class:`~osa_inventory.errors.InventoryError` is printed as its lines
  (one, or one per problem for :class:`~osa_inventory.errors.ConfigErrors`),
  with the repair the command adds to a storage refusal (:mod:`.advice`);
* a reader that goes away (``| head``) ends the run quietly with status 1;
* an interrupt is one line saying what it left behind;
* a bug is one line for the user, its traceback in the command's log where
  the command keeps one, never on the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Callable, NoReturn

from ..errors import InventoryError, one_line
from ..terminal import error_line, escape
from .advice import error_lines
from .stdout_guard import stdout_for_result_only

LOG = logging.getLogger("osa_inventory")

#: Where the deployment config is when neither --config nor $OSA_CONFIG_DIR says (OSA's place).
DEFAULT_CONFIG_DIR = "/etc/openstack_deploy"

#: A command's work: what to print on stdout (without the final newline) and the exit status.
Work = Callable[[], "tuple[str, int]"]


def chosen_config_dir(given: str | None) -> str:
    """The config folder a command works on, absolute: ``given`` (--config), else $OSA_CONFIG_DIR, else OSA's."""
    return os.path.abspath(given or os.environ.get("OSA_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


def _help_width() -> int:
    """The width argparse gives help text: the terminal's ($COLUMNS first, else 80), less two."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class Parser(argparse.ArgumentParser):
    """argparse, with the usage error's text (which may quote what was typed, or pasted) escaped."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every add_argument, and each asks shutil for the terminal's
        # width: importing shutil (and the compression modules it imports) cost every inventory run
        # more than its argument parsing.
        return self.formatter_class(prog=self.prog, width=_help_width())

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        super().error(escape(message))


def _report_bug(exc: Exception, log_hint: str | None) -> None:
    """One line for the user; the traceback goes to the command's log if it has one set up."""
    if log_hint and logging.getLogger().handlers:
        LOG.exception("unexpected failure")
        where = f"details in {log_hint}; please report it"
    else:
        # No log handler: logging's last resort would print the traceback on stderr.
        where = "please report it"
    print(error_line(f"unexpected {type(exc).__name__}: {one_line(exc)} ({where})"), file=sys.stderr)


def run_command(work: Work, *, interrupted: str, log_hint: str | None = None) -> int:
    """Run ``work`` as a command and return its exit status.

    ``interrupted`` says what an interrupt leaves behind (after "interrupted; ");
    ``log_hint`` names where the command logs a bug's traceback (None: it keeps no log).
    """
    try:
        # Plugin code must not reach the result a program reads, however it writes to stdout.
        with stdout_for_result_only() as emit:
            output, status = work()
            emit(output + "\n")
    except BrokenPipeError:
        # The reader went away (`| head`): nobody is left to tell, and a traceback would only confuse.
        # Stdout leads nowhere from now on, so the interpreter's final flush cannot fail either.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return 1
    except InventoryError as exc:
        for line in error_lines(exc):
            print(error_line(line), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ERROR: interrupted; {interrupted}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line for the user
        _report_bug(exc, log_hint)
        return 1
    return status
