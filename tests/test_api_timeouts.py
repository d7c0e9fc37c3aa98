"""``[inventory] timeout`` under the Python API: an exception for the caller, never the end of its process.

Each case runs a helper script in a real subprocess against a plugin that hangs
at one step (asleep, blocked in a socket read, blocked in flock) while a marker
file exists. The script must get ``api.StorageTimeout``, live on with its own
SIGALRM handler put back, and make the next call succeed: whatever the
timed-out plugin held (its flock) is released. Without a usable signal (another
thread, an alarm of the caller pending) the call raises once the plugin returns.
The inventory script keeps ending the run (tests/test_plugin_isolation.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import ENVIRONMENT, ROOT
from plugin_fixtures import config_dir, ini_for, plugin_dir  # noqa: F401

from osa_inventory.errors import StorageError, StorageTimeout
from osa_inventory.storage import watchdog

LIB = os.path.join(ROOT, "lib")

# A plugin storing into [section] target, with a real flock lock, logging its calls; HANG marks where a step
# waits (while MARKER exists), filled in per case.
PLUGIN = '''
import contextlib, fcntl, json, os, socket, time

MARKER = {marker!r}
HELD = {held!r}


def hang():
    if not os.path.exists(MARKER):
        return
{hang}


{at_import}


class Storage:
    def register(self, args):
        self.target = args["target"]
        {at_register}

    def _log(self, line):
        with open(self.target + ".calls", "a") as fh:
            fh.write(line + "\\n")

    def load(self):
        self._log("load")
        {at_load}
        if not os.path.exists(self.target):
            return None
        with open(self.target) as fh:
            return json.load(fh)

    def write(self, inventory):
        self._log("write")
        {at_write}
        with open(self.target, "w") as fh:
            json.dump(inventory, fh)

    @contextlib.contextmanager
    def lock(self):
        {at_lock}
        fd = os.open(self.target + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)   # blocking: a lock left held would hang the next call
            self._log("lock")
            try:
                yield
            finally:
                self._log("unlock")
        finally:
            os.close(fd)
'''

HANGS = {
    "sleep": "    time.sleep(3600)",
    "recv": "    quiet, _peer = socket.socketpair()\n    quiet.recv(1)",
    "flock": "    fd = os.open(HELD, os.O_RDONLY)\n    fcntl.flock(fd, fcntl.LOCK_EX)",
    # A plugin guarding its calls with `except Exception` does not swallow the interruption.
    "guarded": "    try:\n        time.sleep(3600)\n    except Exception:\n        pass",
    # One that turns the interruption into an error of its own still reports the time limit.
    "converted": "    try:\n        time.sleep(3600)\n    except BaseException:\n        raise RuntimeError('woken')",
    # A finite wait longer than the limit, for the cases without a signal.
    "slow": "    time.sleep(2.5)",
}

STEP_WORDS = {"import": "did not finish importing within 1 s", "register": "did not register its options within 1 s",
              "lock": "did not take its lock within 1 s", "load": "did not load the inventory within 1 s",
              "write": "did not store the inventory within 1 s"}

# The helper: one call that meets the hang, then the marker goes and the same call again. It reports
# what it caught, how long that took, and whether its own SIGALRM handler and alarm are as it left them.
HELPER = '''
import json, os, signal, sys, threading, time
from osa_inventory import api

ini, config, environment, marker, call, mode = sys.argv[1:7]
mine = lambda signum, frame: None
if mode in ("handler", "alarm"):
    signal.signal(signal.SIGALRM, mine)
if mode == "alarm":
    signal.setitimer(signal.ITIMER_REAL, 60)


def run():
    if call == "refresh":
        return api.refresh(osa_ini=ini, config_dir=config, environment=environment).changed
    if call == "check":
        return sorted(api.check_config(osa_ini=ini, config_dir=config, environment=environment).user_groups)
    with api.open_inventory(osa_ini=ini, config_dir=config) as inv:
        return len(inv.hosts("all"))


def attempt(report):
    started = time.monotonic()
    try:
        report["answer"] = run()
    except api.InventoryError as exc:
        report["error"] = [type(exc).__name__, isinstance(exc, api.StorageTimeout), str(exc)]
    report["took"] = time.monotonic() - started


first, second = {}, {}
if mode == "thread":
    worker = threading.Thread(target=attempt, args=(first,))
    worker.start()
    worker.join()
else:
    attempt(first)
if os.path.exists(marker):
    os.unlink(marker)
attempt(second)
print(json.dumps({"first": first, "second": second, "handler_kept": signal.getsignal(signal.SIGALRM) is mine,
                  "default_kept": signal.getsignal(signal.SIGALRM) is signal.SIG_DFL,
                  "alarm_left": signal.getitimer(signal.ITIMER_REAL)[0]}))
'''


class Case:
    """A plugin hanging at ``step`` as ``how`` while the marker exists, its osa.ini and the helper."""

    def __init__(self, tmp_path, config_dir: str, step: str, how: str, timeout: float = 1):
        self.tmp_path, self.config_dir = tmp_path, config_dir
        self.marker = str(tmp_path / "hang-now")
        self.held = str(tmp_path / "held-by-the-test")
        for path in (self.marker, self.held):
            open(path, "w").close()
        slots = {f"at_{name}": "" for name in STEP_WORDS}
        slots[f"at_{step}"] = "hang()"
        source = PLUGIN.format(marker=self.marker, held=self.held, hang=HANGS[how], **slots)
        folder = plugin_dir(tmp_path, {"hanging.py": source})
        self.target = str(tmp_path / "hanging.json")
        self.ini = ini_for(tmp_path, "hanging", folder, f"[hanging]\ntarget = {self.target}\n")
        with open(self.ini) as fh:
            text = fh.read()
        with open(self.ini, "w") as fh:
            fh.write(text.replace("[inventory]\n", f"[inventory]\ntimeout = {timeout:g}\n", 1))
        self.helper = str(tmp_path / "helper.py")
        with open(self.helper, "w") as fh:
            fh.write(HELPER)

    def run(self, call: str = "refresh", mode: str = "plain") -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTHON"))}
        env["PYTHONPATH"] = LIB
        # The test holds the flock the "flock" plugin blocks on, for the whole run.
        fd = os.open(self.held, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            result = subprocess.run([sys.executable, self.helper, self.ini, self.config_dir, ENVIRONMENT,
                                     self.marker, call, mode], env=env, capture_output=True, text=True, timeout=120)
        finally:
            os.close(fd)
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
        assert result.stderr == "", result.stderr
        return json.loads(result.stdout)

    def calls(self) -> list[str]:
        with open(self.target + ".calls") as fh:
            return fh.read().split()


def assert_timed_out(report: dict, step: str) -> str:
    name, is_timeout, line = report["error"]
    assert is_timeout and name == "LimitReached", report
    assert STEP_WORDS[step] in line and "\n" not in line, line
    assert "raise [inventory] timeout in" in line, line
    return line


@pytest.mark.parametrize("step", sorted(STEP_WORDS))
def test_a_sleeping_plugin_raises_at_the_limit_and_the_next_call_works(tmp_path, config_dir, step):
    case = Case(tmp_path, config_dir, step, "sleep")
    report = case.run()
    line = assert_timed_out(report["first"], step)
    assert ("hanging.py" if step == "import" else "storage backend hanging") in line
    assert 1 <= report["first"]["took"] < 30, report  # interrupted, not waited out (3600 s)
    assert report["second"] == {"answer": True, "took": report["second"]["took"]}, report
    assert report["default_kept"] and report["alarm_left"] == 0, report
    # The plugin's lock, taken before the step that hung, was given back when it failed.
    first_run = {"load": ["lock", "load", "unlock"], "write": ["lock", "load", "write", "unlock"]}.get(step, [])
    assert case.calls() == first_run + ["lock", "load", "write", "unlock"], case.calls()


@pytest.mark.parametrize("how", ["recv", "flock", "guarded", "converted"])
def test_a_plugin_blocked_in_a_system_call_is_interrupted(tmp_path, config_dir, how):
    case = Case(tmp_path, config_dir, "load", how)
    report = case.run()
    assert_timed_out(report["first"], "load")
    assert report["first"]["took"] < 30, report
    # The lock the plugin held across the step was released: the second call takes it (blocking) again.
    assert report["second"]["answer"] is True, report
    assert case.calls() == ["lock", "load", "unlock", "lock", "load", "write", "unlock"], case.calls()


def test_a_plugin_hanging_in_its_own_lock_is_interrupted_and_the_lock_is_free_after(tmp_path, config_dir):
    case = Case(tmp_path, config_dir, "lock", "flock")
    report = case.run()
    assert_timed_out(report["first"], "lock")
    assert report["second"]["answer"] is True, report


@pytest.mark.parametrize("call", ["open", "check"])
def test_reading_and_checking_raise_too(tmp_path, config_dir, call):
    case = Case(tmp_path, config_dir, "load", "sleep")
    os.unlink(case.marker)
    assert "error" not in case.run("refresh")["first"]  # an inventory stored first, without a hang
    open(case.marker, "w").close()
    report = case.run(call)
    assert_timed_out(report["first"], "load")
    assert "error" not in report["second"] and report["second"]["answer"] is not None, report


def test_the_callers_sigalrm_handler_is_put_back(tmp_path, config_dir):
    case = Case(tmp_path, config_dir, "load", "sleep")
    report = case.run(mode="handler")
    assert_timed_out(report["first"], "load")
    assert report["first"]["took"] < 30 and report["handler_kept"] and report["alarm_left"] == 0, report


def test_with_an_alarm_of_the_caller_pending_the_call_raises_once_the_plugin_returns(tmp_path, config_dir):
    case = Case(tmp_path, config_dir, "load", "slow")
    report = case.run(mode="alarm")
    assert_timed_out(report["first"], "load")
    # Not interrupted: the plugin's 2.5 s ran out, and the caller's alarm (60 s) is still pending, untouched.
    assert report["first"]["took"] >= 2.5 and report["second"]["answer"] is True, report
    assert report["handler_kept"] and 50 < report["alarm_left"] <= 60, report


def test_outside_the_main_thread_the_call_raises_once_the_plugin_returns(tmp_path, config_dir):
    case = Case(tmp_path, config_dir, "load", "slow")
    report = case.run(mode="thread")
    assert_timed_out(report["first"], "load")
    assert report["first"]["took"] >= 2.5 and report["second"]["answer"] is True, report
    assert report["default_kept"] and report["alarm_left"] == 0, report


# -- the raising step itself, in this (main) thread -------------------------------------------------------

def test_a_step_in_time_raises_nothing_and_leaves_no_alarm():
    before = signal.getsignal(signal.SIGALRM)
    with watchdog.raising_step(5, lambda: "never"):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        assert 0 < watchdog.remaining() <= 5
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert watchdog.remaining() is None


def test_a_plugins_own_error_in_time_stays_its_own():
    with pytest.raises(KeyError):
        with watchdog.raising_step(5, lambda: "never"):
            raise KeyError("plugin")


def test_nested_steps_raise_for_the_nearer_limit_and_the_outer_one_still_holds():
    started = time.monotonic()
    with pytest.raises(StorageTimeout, match="inner too slow"):
        with watchdog.raising_step(30, lambda: "outer too slow"):
            try:
                with watchdog.raising_step(0.3, lambda: "inner too slow"):
                    time.sleep(30)
            finally:
                assert watchdog.remaining() > 20  # back to the outer limit
            raise AssertionError("not reached")
    # An inner step whose own limit is further than the outer's is cut at the outer's, named by it.
    with pytest.raises(StorageTimeout, match="outer too slow"):
        with watchdog.raising_step(0.3, lambda: "outer too slow"):
            with watchdog.raising_step(30, lambda: "inner too slow"):
                time.sleep(30)
    assert time.monotonic() - started < 20
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_the_api_backend_raises_where_the_commands_end_the_process():
    from osa_inventory.storage.backend import Backend

    class Sleepy:
        def load(self):
            time.sleep(30)

    backend = Backend("sleepy", "sleepy", Sleepy(), timeout=0.3, on_timeout=watchdog.RAISE)
    with pytest.raises(StorageTimeout) as caught:
        backend.load()
    assert str(caught.value) == ("storage backend sleepy did not load the inventory within 0.3 s; check the "
                                 "backend, or raise [inventory] timeout in osa.ini")
    with pytest.raises(ValueError):
        Backend("sleepy", "sleepy", Sleepy(), on_timeout="ignore")


def test_a_storage_timeout_a_plugin_raises_itself_is_named_by_its_backend():
    from osa_inventory.storage.backend import Backend

    class Impatient:
        def load(self):
            raise StorageTimeout("server did not answer in 5 s")

    with pytest.raises(StorageTimeout) as caught:
        Backend("impatient", "impatient", Impatient(), on_timeout=watchdog.RAISE).load()
    assert str(caught.value) == "storage backend impatient: server did not answer in 5 s"
    assert not isinstance(caught.value, watchdog.LimitReached) and isinstance(caught.value, StorageError)


def test_from_another_thread_no_signal_is_used():
    outcome = []

    def work():
        try:
            with watchdog.raising_step(0.2, lambda: "late"):
                time.sleep(0.5)
        except StorageTimeout as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert outcome == ["late"] and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
