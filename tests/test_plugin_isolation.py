"""What a plugin cannot do to the script's output, each shown with a hostile plugin.

Every case runs the real inventory script: stray writes to descriptor 1,
a write() that mutates its argument, BaseExceptions from any method, a
plugin that hangs at each step (``[inventory] timeout``), and a plugin
without a lock (warned about, never reported as locked).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time

import pytest
from helpers import run_script
from plugin_fixtures import RECORDER, assert_one_line_failure, calls, config_dir, ini_for, plugin_dir  # noqa: F401


def _setup(tmp_path, name: str, source: str, extra: str = "", inventory_opts: str = ""):
    folder = plugin_dir(tmp_path, {f"{name}.py": source})
    target = str(tmp_path / f"{name}.json")
    ini = ini_for(tmp_path, name, folder, f"[{name}]\ntarget = {target}\n{extra}")
    if inventory_opts:
        with open(ini) as fh:
            text = fh.read()
        with open(ini, "w") as fh:
            fh.write(text.replace("[inventory]\n", "[inventory]\n" + inventory_opts, 1))
    return folder, target, ini


def _stored(target: str) -> dict:
    with open(target) as fh:
        return json.load(fh)


# -- descriptor 1 ------------------------------------------------------------------------

NOISY = textwrap.dedent('''
    import atexit, os, subprocess, sys
    os.write(1, b"RAW-IMPORT ")
    sys.__stdout__.write("DUNDER-IMPORT ")          # buffered, never flushed by the plugin
    atexit.register(lambda: os.write(1, b"RAW-ATEXIT "))
''') + RECORDER.replace(
    '        self._log("load")',
    '        self._log("load")\n'
    '        subprocess.run(["echo", "CHILD-LOAD"], check=True)\n'
    '        print("PRINT-LOAD", end=" ")\n'
    '        sys.stdout.write("STDOUT-LOAD ")').replace(
    '        self._log("write")',
    '        self._log("write")\n'
    '        os.write(1, b"RAW-WRITE ")\n'
    '        sys.__stdout__.write("DUNDER-WRITE ")').replace(
    '        self._log("unlock")',
    '        self._log("unlock")\n'
    '            os.system("echo SHELL-UNLOCK")')

NOISE = ["RAW-IMPORT", "DUNDER-IMPORT", "RAW-ATEXIT", "CHILD-LOAD", "PRINT-LOAD", "STDOUT-LOAD",
         "RAW-WRITE", "DUNDER-WRITE", "SHELL-UNLOCK"]


@pytest.mark.parametrize("mode", ["--list", "--host"])
def test_writes_to_descriptor_1_never_reach_stdout(tmp_path, config_dir, mode):
    _, target, ini = _setup(tmp_path, "noisy", NOISY)
    args = ["--list"] if mode == "--list" else ["--host", "compute1"]
    result = run_script(config_dir, *args, ini=ini)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)  # pure JSON: any stray byte would break this
    stored = _stored(target)
    assert printed == (stored if mode == "--list" else stored["_meta"]["hostvars"]["compute1"])
    for word in NOISE:
        assert word in result.stderr, f"{word} was lost instead of going to stderr"
        assert word not in result.stdout


TIDY = "        os.closerange(3, 65536)   # the 'close every descriptor I did not open' idiom\n"
# Kept open in a module global, as a log file is: it gets the lowest free number.
REOPENS = "        globals()['LOG_FILE'] = open(self.target + '.log', 'w')\n"
CLOSES_FDS = {
    # where the plugin tidies descriptors, and whether it then opens a file of its own
    "load, then opens a file": ('        self._log("load")\n', TIDY + REOPENS),
    "close(), then opens a file": ('        self._log("close")\n', TIDY + REOPENS),
    "load, opening nothing": ('        self._log("load")\n', TIDY),
}


@pytest.mark.parametrize("case", sorted(CLOSES_FDS))
def test_a_plugin_closing_descriptors_never_gets_the_inventory_written_into_its_file(tmp_path, config_dir, case):
    at, tidy = CLOSES_FDS[case]
    _, target, ini = _setup(tmp_path, "tidy", RECORDER.replace(at, at + tidy))
    result = run_script(config_dir, ini=ini)
    expected = f"replaced (it now leads to {target}.log)" if "opens" in case else "closed descriptor"
    assert_one_line_failure(result, "plugin code", expected, "the script's private copy of standard output",
                            "close only the descriptors it opened itself")
    if "opens" in case:
        with open(target + ".log") as fh:
            assert fh.read() == "", "the inventory went into the plugin's own file"
    # The advice, followed: the same plugin without the tidying prints the inventory it stored.
    _setup(tmp_path, "tidy", RECORDER)
    fixed = run_script(config_dir, ini=ini)
    assert fixed.returncode == 0 and fixed.stderr == "", fixed.stderr
    assert json.loads(fixed.stdout) == _stored(target)


def test_inventory_manage_listings_stay_pure_with_a_noisy_plugin(tmp_path, config_dir):
    from test_manage_support import MANAGE
    import sys
    _, target, ini = _setup(tmp_path, "noisy", NOISY)
    assert run_script(config_dir, ini=ini).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "-g", "--format", "json"],
                            capture_output=True, text=True, timeout=120, env={**env, "OSA_INI": ini})
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # nothing but the listing
    assert "RAW-IMPORT" in result.stderr and "RAW-IMPORT" not in result.stdout


# -- write() gets its own copy -----------------------------------------------------------

MUTATOR = RECORDER.replace(
    '            json.dump(inventory, fh)',
    '            json.dump(inventory, fh)\n'
    '        inventory["_meta"]["hostvars"].clear()   # after storing: the printed copy must not change\n'
    '        inventory["injected"] = {"hosts": ["evil"]}\n'
    '        if self.loaded is not None:              # and the dict load() handed out earlier\n'
    '            self.loaded.clear()').replace(
    '            return json.load(fh)',
    '            self.loaded = json.load(fh)\n'
    '            return self.loaded').replace(
    '        self.target = args["target"]',
    '        self.target = args["target"]\n        self.loaded = None')


def test_write_mutating_its_argument_changes_neither_output_nor_store(tmp_path, config_dir):
    _, target, ini = _setup(tmp_path, "mutator", MUTATOR)
    first = run_script(config_dir, ini=ini)
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    assert printed == _stored(target), "what was printed is not what was stored"
    assert "injected" not in printed and "compute1" in printed["_meta"]["hostvars"]
    # A changed config makes the second run load, mutate its loaded dict in write(), and store.
    with open(os.path.join(config_dir, "openstack_user_config.yml"), "a") as fh:
        fh.write("\n")
    os.remove(target)
    second = run_script(config_dir, ini=ini)
    assert second.returncode == 0 and json.loads(second.stdout) == printed == _stored(target)


# -- BaseException from any method -------------------------------------------------------

EXITS = {
    "describe_exits": (RECORDER + "\n    def describe(self):\n        raise SystemExit(3)\n",
                       ["storage backend describe_exits failed to describe itself", "SystemExit: 3"]),
    "describe_str_exits": (RECORDER + "\n    def describe(self):\n        class Odd:\n"
                           "            def __str__(self):\n                raise SystemExit('str')\n"
                           "        return Odd()\n",
                           ["storage backend describe_str_exits failed to describe itself", "SystemExit: str"]),
    "load_generator_exit": (RECORDER.replace('        self._log("load")', '        raise GeneratorExit("bye")'),
                            ["failed to load the inventory", "GeneratorExit: bye"]),
    "write_base_exception": (
        "class Fatal(BaseException):\n    pass\n\n" + RECORDER.replace(
            '        self._log("write")', '        raise Fatal("disk gone")'),
        ["failed to store the inventory", "Fatal: disk gone"]),
    "lock_keyboard": (RECORDER.replace('        self._log("lock")', '        raise KeyboardInterrupt'),
                      ["failed to take its lock", "KeyboardInterrupt"]),
    "getattr_exits": (RECORDER.replace("class Storage:", "class Storage:\n"
                                       "    def __getattr__(self, name):\n        raise SystemExit(name)\n"),
                      ["storage backend getattr_exits failed to look up", "SystemExit"]),
    "close_exits": (RECORDER.replace('        self._log("close")', '        raise SystemExit("closing")'),
                    None),
}


@pytest.mark.parametrize("name", sorted(EXITS))
def test_base_exceptions_are_one_line_naming_backend_and_method(tmp_path, config_dir, name):
    source, fragments = EXITS[name]
    _, target, ini = _setup(tmp_path, name, source)
    result = run_script(config_dir, "--debug", ini=ini)
    if fragments is None:  # close() failing after a successful store does not undo the run
        assert result.returncode == 0 and json.loads(result.stdout) == _stored(target), result.stderr
        return
    assert_one_line_failure(result, *fragments)
    assert not os.path.exists(target), "a failed run stored an inventory"


def test_describe_is_not_called_unless_shown(tmp_path, config_dir):
    source = RECORDER + "\n    def describe(self):\n        self._log('describe')\n        raise SystemExit(3)\n"
    _, target, ini = _setup(tmp_path, "quiet", source)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "describe" not in calls(target)


# A plugin with versions whose describe() exits: inventory-manage shows describe() in what it prints
# after a change, so it must call it before anything is stored.
DESCRIBE_EXITS_VERSIONED = RECORDER + """
    def history(self):
        return [{"version": "1", "time": "2026-01-01T00:00:00Z"}] if os.path.exists(self.target) else []

    def read_version(self, version):
        return self.load()

    def describe(self):
        raise SystemExit(3)
"""


def test_inventory_manage_changes_store_nothing_when_describe_exits(tmp_path, config_dir):
    from test_manage_support import MANAGE
    import sys
    _, target, ini = _setup(tmp_path, "describe_exits", DESCRIBE_EXITS_VERSIONED,
                            extra=f"[copy]\nplugin = filesystem\npath = {tmp_path / 'copy'}\n")
    os.mkdir(tmp_path / "copy")
    assert run_script(config_dir, ini=ini).returncode == 0
    stored = _stored(target)
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(stored))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env["OSA_INI"] = ini
    host = sorted(stored["_meta"]["hostvars"])[0]
    for args in (["-r", host], ["--import", str(exported), "--force"], ["--restore", "1"], ["--migrate-to", "copy"]):
        open(target + ".calls", "w").close()
        result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, *args], capture_output=True,
                                text=True, timeout=120, env=env)
        assert_one_line_failure(result, "storage backend describe_exits failed to describe itself", "SystemExit: 3")
        assert _stored(target) == stored and "write" not in calls(target), args
    assert os.listdir(tmp_path / "copy") == [], "--migrate-to stored into the target"


def test_a_lock_that_swallows_errors_cannot_hide_a_failed_write(tmp_path, config_dir):
    source = RECORDER.replace('        self._log("write")', '        raise OSError("no space")').replace(
        '''        try:
            yield
        finally:
            self._log("unlock")''', '''        try:
            yield
        except BaseException:
            self._log("swallowed")
        self._log("unlock")''')
    _, target, ini = _setup(tmp_path, "swallower", source)
    assert_one_line_failure(run_script(config_dir, ini=ini), "failed to store the inventory", "no space")
    assert "swallowed" in calls(target) and not os.path.exists(target)


# -- [inventory] timeout ---------------------------------------------------------------------

HANG = "import time\ntime.sleep(3600)\n"
STUBBORN = ("import time\nwhile True:\n    try:\n        time.sleep(3600)\n"
            "    except BaseException:\n        pass\n")
HANGS = {
    "import": (HANG + RECORDER, "did not finish importing within 1 s"),
    "register": (RECORDER.replace('        self.target = args["target"]',
                                  '        self.target = args["target"]\n' + textwrap.indent(HANG, " " * 8)),
                 "did not register its options within 1 s"),
    "lock": (RECORDER.replace('        self._log("lock")', textwrap.indent(STUBBORN, " " * 8)),
             "did not take its lock within 1 s"),
    "load": (RECORDER.replace('        self._log("load")', textwrap.indent(HANG, " " * 8)),
             "did not load the inventory within 1 s"),
    "write": (RECORDER.replace('        self._log("write")', textwrap.indent(STUBBORN, " " * 8)),
              "did not store the inventory within 1 s"),
}


@pytest.mark.parametrize("step", sorted(HANGS))
def test_a_hanging_plugin_ends_the_run_after_the_timeout(tmp_path, config_dir, step):
    source, fragment = HANGS[step]
    _, target, ini = _setup(tmp_path, "hanging", source, inventory_opts="timeout = 1\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini, timeout=60), fragment,
                                   f"raise [inventory] timeout in {ini}")
    assert ("hanging.py" if step == "import" else "storage backend hanging") in line
    assert not os.path.exists(target), "a timed-out run stored an inventory"


def test_remaining_tells_a_plugin_how_long_its_step_has_left():
    import threading
    from osa_inventory.storage import watchdog
    assert watchdog.remaining() is None  # outside any step
    fired = threading.Event()
    seen = []
    with watchdog.step(30, lambda: "outer", on_timeout=lambda line: seen.append(line)):
        assert 0 < watchdog.remaining() <= 30
        with watchdog.step(0.2, lambda: "inner step too slow", on_timeout=lambda line: (seen.append(line),
                                                                                          fired.set())):
            assert watchdog.remaining() <= 0.2  # the nearest limit counts
            assert fired.wait(10), "the inner limit never fired"
            assert watchdog.remaining() == 0
        assert watchdog.remaining() > 1  # back to the outer step's limit
    assert seen == ["inner step too slow"] and watchdog.remaining() is None
    # A step that finished in time never fires, even after its limit has passed.
    with watchdog.step(0.05, lambda: "late", on_timeout=lambda line: seen.append(line)):
        pass
    time.sleep(0.2)
    assert seen == ["inner step too slow"]


def test_raising_the_timeout_as_advised_lets_a_slow_plugin_finish(tmp_path, config_dir):
    slow = RECORDER.replace('        self._log("load")', '        import time; time.sleep(1.5)')
    _, target, ini = _setup(tmp_path, "slow", slow, inventory_opts="timeout = 0.5\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini, timeout=60), "did not load the inventory")
    assert "raise [inventory] timeout in" in line
    with open(ini) as fh:
        text = fh.read()
    with open(ini, "w") as fh:
        fh.write(text.replace("timeout = 0.5", "timeout = 30"))
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and json.loads(result.stdout) == _stored(target), result.stderr


def test_timeout_from_the_environment_wins(tmp_path, config_dir):
    slow = RECORDER.replace('        self._log("load")', '        import time; time.sleep(1.5)')
    _, _, ini = _setup(tmp_path, "slow", slow, inventory_opts="timeout = 30\n")
    assert_one_line_failure(run_script(config_dir, ini=ini, env={"OSA_INVENTORY_TIMEOUT": "0.5"}, timeout=60),
                            "did not load the inventory within 0.5 s")


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf", "1e9"])
def test_bad_timeouts_are_refused_naming_the_value(tmp_path, config_dir, value):
    ini = ini_for(tmp_path, "filesystem", None)
    with open(ini, "a") as fh:
        fh.write(f"timeout = {value}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), f"{ini}: [inventory] timeout = {value!r}",
                                   "set it to e.g. 600")
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
    fixed = line.split("set it to e.g. ")[1]
    with open(ini) as fh:
        text = fh.read()
    with open(ini, "w") as fh:
        fh.write(text.replace(f"timeout = {value}", f"timeout = {fixed}"))
    assert run_script(config_dir, ini=ini).returncode == 0


# -- no lock() ---------------------------------------------------------------------------------

def _lockless() -> str:
    start = RECORDER.index("    @contextlib.contextmanager")
    end = RECORDER.index("    def close(self):")
    return RECORDER[:start] + RECORDER[end:]


def test_a_plugin_without_lock_is_warned_about_once(tmp_path, config_dir):
    _, target, ini = _setup(tmp_path, "lockless", _lockless())
    result = run_script(config_dir, "--debug", ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(os.path.join(config_dir, "inventory.log")) as fh:
        log = fh.read()
    assert log.count("storage backend lockless has no lock(): concurrent runs are not serialised") == 1
    assert "lock held" not in log, "the log claims a lock the plugin does not have"
    check = run_script(config_dir, "--check", ini=ini)
    assert check.returncode == 0 and check.stderr == ""
    lines = check.stdout.splitlines()
    assert lines[0] == "Configuration ok!"
    assert lines[1].startswith("WARNING: storage backend lockless has no lock()"), lines


def test_a_lockless_plugin_that_says_what_overlapping_runs_get_is_a_note_not_a_warning(tmp_path, config_dir):
    """concurrency() means the plugin guards its writes another way: no warning on every run (Ansible shows
    each one to the operator), the note in the --debug log and in --check's report."""
    guarded = _lockless().replace("    def close(self):", "    def concurrency(self):\n"
                                  "        return 'the second writer is refused: run it again'\n\n"
                                  "    def close(self):")
    _, _, ini = _setup(tmp_path, "guarded", guarded)
    note = ("storage backend guarded has no lock(): concurrent runs are not serialised, and the second writer "
            "is refused: run it again")
    log_path = os.path.join(config_dir, "inventory.log")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert not os.path.exists(log_path) or "no lock()" not in open(log_path).read()
    result = run_script(config_dir, "--debug", ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(log_path) as fh:
        logged = [line for line in fh if "no lock()" in line]
    assert len(logged) == 1 and " INFO " in logged[0] and note in logged[0], logged
    check = run_script(config_dir, "--check", ini=ini)
    assert check.returncode == 0 and check.stdout.splitlines() == ["Configuration ok!", f"WARNING: {note}"]


def test_a_plugin_with_a_lock_gets_no_warning(tmp_path, config_dir):
    _, _, ini = _setup(tmp_path, "locked", RECORDER)
    check = run_script(config_dir, "--check", ini=ini)
    assert check.stdout == "Configuration ok!\n"
    with open(os.path.join(config_dir, "inventory.log")) if os.path.exists(
            os.path.join(config_dir, "inventory.log")) else open(os.devnull) as fh:
        assert "no lock()" not in fh.read()


def test_closed_stdout_is_one_line_and_stores_nothing(tmp_path, config_dir):
    from helpers import SCRIPT
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    result = subprocess.run(f"{sys.executable} {SCRIPT} --config {config_dir} >&-", shell=True,
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: standard output is closed"), result.stderr
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
