"""Both commands fail the same way: one runner (osa_inventory.commands.runner) around their work.

Where the inventory script and inventory-manage used to differ (issue 23.4),
each difference is checked through the real commands where a command line
can reach it, and on the runner itself where only a bug or a later caller
could: a reader that goes away, errors of several lines, a bug's report and
its traceback, usage errors quoting what was typed.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys

import pytest
from helpers import SCRIPT
from test_manage_support import MANAGE, Deployment, clean_env

from osa_inventory.commands.runner import run_command
from osa_inventory.errors import ConfigErrors, CorruptInventory


@pytest.fixture
def deployment(tmp_path) -> Deployment:
    dep = Deployment(str(tmp_path))
    dep.generate()
    return dep


@pytest.mark.parametrize("command, args", [(SCRIPT, ["--list"]), (MANAGE, ["--export"])])
def test_a_reader_that_goes_away_ends_either_command_quietly(deployment, command, args):
    # As `command | true`: stdout is closed before anything is written to it.
    proc = subprocess.Popen([sys.executable, command, "--config", deployment.config_dir, *args],
                            env=clean_env({"OSA_INI": deployment.ini}), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == "" and proc.returncode == 1, (proc.returncode, err)


@pytest.mark.parametrize("command, args", [(SCRIPT, ["--list"]), (MANAGE, ["-l"])])
def test_usage_errors_of_either_command_show_what_was_typed_escaped(deployment, command, args):
    result = subprocess.run([sys.executable, command, "--config", deployment.config_dir, *args, "--bogus\x1b[2J"],
                            env=clean_env({"OSA_INI": deployment.ini}), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert "--bogus\\x1b[2J" in result.stderr and "\x1b" not in result.stderr


def test_each_line_of_an_error_of_several_is_printed_escaped(capsys):
    def work():
        raise ConfigErrors(["first problem", "second \x1b[2J problem"])

    assert run_command(work, interrupted="nothing changed") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == ["ERROR: first problem", "ERROR: second \\x1b[2J problem"]


def test_a_storage_refusal_gets_the_commands_repair(capsys, tmp_path):
    def work():
        raise CorruptInventory("stored inventory is not an object", versions=True, config_dir=str(tmp_path))

    assert run_command(work, interrupted="nothing changed") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--history, then --restore VERSION" in err


def test_an_interrupt_says_what_it_left_behind(capsys):
    def work():
        raise KeyboardInterrupt

    assert run_command(work, interrupted="nothing was stored") == 1
    assert capsys.readouterr().err == "ERROR: interrupted; nothing was stored\n"


def test_the_result_and_status_of_the_work_are_what_the_command_gives(capfd):
    assert run_command(lambda: ("out", 3), interrupted="-") == 3
    assert capfd.readouterr() == ("out\n", "")


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def root_handlers(*handlers: logging.Handler):
    """Only ``handlers`` on the root logger (pytest adds its own for the test's call: put back after)."""
    root = logging.getLogger()
    saved = list(root.handlers)
    for handler in saved:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)


def _bug():
    raise ValueError("bad\nvalue")


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_commands_log(capsys):
    kept = _Kept()
    with root_handlers(kept):
        assert run_command(_bug, interrupted="-", log_hint="inventory.log in the config folder") == 1
    err = capsys.readouterr().err
    assert err == ("ERROR: unexpected ValueError: bad value (details in inventory.log in the config folder; "
                   "please report it)\n")
    assert [r.exc_info[0] for r in kept.records] == [ValueError]


@pytest.mark.parametrize("log_hint", [None, "inventory.log in the config folder"])
def test_a_bug_without_a_log_set_up_names_no_log_and_prints_no_traceback(capsys, log_hint):
    # No handler: logging's last resort would print the traceback on stderr.
    with root_handlers():
        assert run_command(_bug, interrupted="-", log_hint=log_hint) == 1
    err = capsys.readouterr().err
    assert err == "ERROR: unexpected ValueError: bad value (please report it)\n"
