"""Only trusted code runs as a plugin: each known way in, with real files, modes and owners.

The attacks: a helper found in an earlier, writable plugin folder; an
unchecked helper beside a trusted plugin; an unchecked submodule of a
package plugin; a writable or foreign-owned ancestor folder (and a symlink
into one); a plugin folder swapped between check and import (a bounded race
loop); bytecode planted in ``__pycache__``. Files are given to a second user
created with ``useradd`` (so the tests need root, as in CI; otherwise they
are skipped with that reason). Every refusal's advice is run as printed.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from helpers import run_script
from os_users import other_user_fixture
from plugin_fixtures import RECORDER, assert_one_line_failure, config_dir, ini_for, plugin_dir  # noqa: F401

from osa_inventory.errors import InventoryError
from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.settings import Settings

@pytest.fixture(scope="module")
def other_user():
    """A second, unprivileged user (name, uid), deleted afterwards."""
    yield from other_user_fixture("osatrust")


def _give(path, uid: int, mode: int | None = None) -> None:
    os.chown(path, uid, -1)
    if mode is not None:
        os.chmod(path, mode)


def run_advice(line: str) -> str:
    """Run the command an error line advises (``run chmod ...`` / ``run chown ...``), as printed."""
    match = re.search(r"\brun (ch(?:mod|own) .+?)(?: \(or remove it\))?$", line)
    assert match, f"no command to run in {line!r}"
    subprocess.run(match.group(1), shell=True, check=True)
    return match.group(1)


MARKED = "import os\nopen(os.environ['OSA_TEST_MARKS'] + '/{mark}', 'w').close()\n"


def _marks(tmp_path) -> tuple[dict, str]:
    folder = tmp_path / "marks"
    folder.mkdir(exist_ok=True)
    return {"OSA_TEST_MARKS": str(folder)}, str(folder)


def _ran(marks: str) -> set[str]:
    return set(os.listdir(marks))


HELPED = "from . import store_helper\n" + RECORDER.replace('args["target"]', "store_helper.path_of(args)")
HELPER = MARKED.format(mark="helper") + "def path_of(args):\n    return args['target']\n"
EVIL = MARKED.format(mark="evil") + "def path_of(args):\n    return args['target'] + '.evil'\n"


# -- helpers and submodules -------------------------------------------------------------

def test_helper_in_an_earlier_writable_folder_is_refused(tmp_path, config_dir, other_user):
    env, marks = _marks(tmp_path)
    early = plugin_dir(tmp_path, {"store_helper.py": EVIL}, "early")
    late = plugin_dir(tmp_path, {"helped.py": HELPED, "store_helper.py": HELPER}, "late")
    _give(os.path.join(early, "store_helper.py"), other_user[1])
    os.chmod(early, 0o777)
    target = str(tmp_path / "h.json")
    ini = ini_for(tmp_path, "helped", f"{early},{late}", f"[helped]\ntarget = {target}\n")

    line = assert_one_line_failure(run_script(config_dir, ini=ini, env=env), f"from {early}:",
                                   "writable by group or others (mode 0777)", f"chmod go-w {early}")
    run_advice(line)
    line = assert_one_line_failure(run_script(config_dir, ini=ini, env=env),
                                   os.path.join(early, "store_helper.py"), f"owned by {other_user[0]}")
    assert line.endswith("(or remove it)")
    os.remove(os.path.join(early, "store_helper.py"))  # the other half of the advice
    result = run_script(config_dir, ini=ini, env=env)
    assert result.returncode == 0, result.stderr
    assert _ran(marks) == {"helper"}, "foreign code ran"
    assert os.path.exists(target) and not os.path.exists(target + ".evil")


def test_unchecked_helper_beside_a_trusted_plugin_is_refused(tmp_path, config_dir, other_user):
    env, marks = _marks(tmp_path)
    folder = plugin_dir(tmp_path, {"helped.py": HELPED, "store_helper.py": HELPER})
    helper = os.path.join(folder, "store_helper.py")
    _give(helper, other_user[1], 0o666)
    target = str(tmp_path / "h.json")
    ini = ini_for(tmp_path, "helped", folder, f"[helped]\ntarget = {target}\n")
    for expected in (f"owned by {other_user[0]} (uid {other_user[1]})", "writable by group or others (mode 0666)"):
        line = assert_one_line_failure(run_script(config_dir, ini=ini, env=env),
                                       f"refusing to load storage plugin from {helper}: it is", expected)
        assert _ran(marks) == set(), "the unchecked helper ran"
        run_advice(line)
    result = run_script(config_dir, ini=ini, env=env)
    assert result.returncode == 0 and _ran(marks) == {"helper"}, result.stderr


@pytest.mark.parametrize("when", ["at import", "inside load()"])
def test_unchecked_submodule_of_a_package_plugin_is_refused(tmp_path, config_dir, other_user, when):
    env, marks = _marks(tmp_path)
    eager = "from . import sub\n" if when == "at import" else ""
    lazy = "        from . import sub\n" if when == "inside load()" else ""
    package = eager + RECORDER.replace('        self._log("load")\n', lazy + '        self._log("load")\n')
    folder = plugin_dir(tmp_path, {"pkg/__init__.py": package, "pkg/sub.py": MARKED.format(mark="sub")})
    sub = os.path.join(folder, "pkg", "sub.py")
    _give(sub, other_user[1])
    target = str(tmp_path / "p.json")
    ini = ini_for(tmp_path, "pkg", folder, f"[pkg]\ntarget = {target}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini, env=env), sub, f"owned by {other_user[0]}")
    if when == "inside load()":
        assert line.startswith("ERROR: storage backend pkg: refusing to load storage plugin from")
    assert _ran(marks) == set() and not os.path.exists(target)
    run_advice(line)
    result = run_script(config_dir, ini=ini, env=env)
    assert result.returncode == 0 and _ran(marks) == {"sub"}, result.stderr


# -- bytecode ---------------------------------------------------------------------------------

def test_bytecode_planted_in_pycache_is_never_read(tmp_path, config_dir):
    env, marks = _marks(tmp_path)
    good = MARKED.format(mark="good") + RECORDER
    folder = plugin_dir(tmp_path, {"planted.py": good})
    source = os.path.join(folder, "planted.py")
    # Same size as the real source, so the cache header (mtime, size) matches it exactly.
    evil = MARKED.format(mark="evil") + RECORDER
    assert len(evil) == len(good)
    st = os.stat(source)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + \
        (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    cached = importlib.util.cache_from_source(source)
    os.makedirs(os.path.dirname(cached))
    with open(cached, "wb") as fh:
        fh.write(header + marshal.dumps(compile(evil, source, "exec")))
    os.utime(source, (st.st_atime, st.st_mtime))
    # Python itself would run the planted code: proof that the cache is valid for this source.
    probe = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {folder!r}); import planted"],
                           env={**os.environ, **env}, capture_output=True, text=True)
    assert probe.returncode == 0 and _ran(marks) == {"evil"}, probe.stderr
    os.remove(os.path.join(marks, "evil"))

    target = str(tmp_path / "planted.json")
    ini = ini_for(tmp_path, "planted", folder, f"[planted]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini, env=env)
    assert result.returncode == 0, result.stderr
    assert _ran(marks) == {"good"}, "the planted bytecode ran"


def test_sourceless_bytecode_and_extension_files_are_never_imported(tmp_path, config_dir):
    env, marks = _marks(tmp_path)
    folder = plugin_dir(tmp_path, {"helped.py": HELPED})
    with open(os.path.join(folder, "store_helper.pyc"), "wb") as fh:
        fh.write(importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(compile(EVIL, "store_helper.py", "exec")))
    ini = ini_for(tmp_path, "helped", folder, f"[helped]\ntarget = {tmp_path / 'h.json'}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini, env=env), "helped.py failed to import",
                            "no store_helper.py or store_helper/__init__.py in", "only .py sources")
    assert _ran(marks) == set()


# -- folders and their ancestors --------------------------------------------------------------

@pytest.mark.parametrize("mode, owner, refused", [
    (0o777, "root", "without the sticky bit and a root owner"),
    (0o775, "root", "writable by group or others (mode 0775)"),
    (0o1777, "other", "is owned by"),
    (0o1777, "root", None),   # like /tmp
    (0o755, "other", "is owned by"),
])
def test_ancestor_folders_are_checked_up_to_the_root(tmp_path, config_dir, other_user, mode, owner, refused):
    ancestor = tmp_path / "shared"
    (ancestor / "deeper").mkdir(parents=True)
    folder = plugin_dir(ancestor / "deeper", {"recorder.py": RECORDER})
    if owner == "other":
        _give(ancestor, other_user[1])
    os.chmod(ancestor, mode)
    target = str(tmp_path / "a.json")
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    if refused:
        line = assert_one_line_failure(result, f"refusing to load storage plugins from {folder}: "
                                               f"its ancestor {ancestor}", refused)
        assert not os.path.exists(target)
        run_advice(line)
        result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(target)


def test_a_symlinked_plugin_folder_is_checked_where_it_leads(tmp_path, config_dir, other_user):
    home = tmp_path / "home"
    home.mkdir()
    folder = plugin_dir(home, {"recorder.py": RECORDER})  # root-owned, but in another user's folder
    _give(home, other_user[1], 0o755)
    link = tmp_path / "plugins-link"
    link.symlink_to(folder)
    ini = ini_for(tmp_path, "recorder", str(link), f"[recorder]\ntarget = {tmp_path / 's.json'}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), f"from {link}: its ancestor {home}",
                                   f"owned by {other_user[0]}")
    run_advice(line)
    assert run_script(config_dir, ini=ini).returncode == 0


@pytest.mark.parametrize("what", ["file", "package"])
def test_a_symlinked_plugin_file_or_package_is_checked_where_it_leads(tmp_path, config_dir, other_user, what):
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = plugin_dir(home, {"recorder.py": RECORDER, "pkg/__init__.py": RECORDER}, "kept")
    _give(home, other_user[1], 0o755)  # the files are root's, but another user may rename them
    folder = plugin_dir(tmp_path, {})
    name = "recorder.py" if what == "file" else "pkg"
    os.symlink(os.path.join(elsewhere, name), os.path.join(folder, name))
    backend = "recorder" if what == "file" else "pkg"
    ini = ini_for(tmp_path, backend, folder, f"[{backend}]\ntarget = {tmp_path / 's.json'}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), f"its ancestor {home}",
                                   f"owned by {other_user[0]}")
    run_advice(line)
    assert run_script(config_dir, ini=ini).returncode == 0


def test_a_missing_plugin_folder_is_refused_when_someone_else_could_create_it(tmp_path, config_dir):
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)
    trusted = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    missing = str(open_parent / "not-yet")
    ini = ini_for(tmp_path, "recorder", f"{missing},{trusted}", f"[recorder]\ntarget = {tmp_path / 'm.json'}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), f"from {missing}: its ancestor {open_parent}")
    run_advice(line)
    # A missing folder in a safe place is still an error (it may be a typo), one line with the remedy.
    line = assert_one_line_failure(run_script(config_dir, ini=ini), f"plugin folder {missing} does not exist",
                                   "create it")
    os.mkdir(missing, 0o755)
    assert run_script(config_dir, ini=ini).returncode == 0


def test_plugin_folders_are_checked_for_a_distributions_plugin_too(tmp_path, config_dir):
    from test_entry_points import SAMPLE, add_distribution
    env, marks = _marks(tmp_path)
    site = tmp_path / "site"
    add_distribution(site, "osa-sqlite", "2.3", {"sqlite_store": "osa_sqlite:Storage"},
                     {"osa_sqlite": open(SAMPLE).read()})
    open_folder = plugin_dir(tmp_path, {}, "open")
    os.chmod(open_folder, 0o777)  # anyone could drop a sqlite_store.py here, which would win the next search
    ini = ini_for(tmp_path, "sqlite_store", open_folder, "[sqlite_store]\ndatabase = inv.sqlite3\n")
    env["PYTHONPATH"] = str(site)
    line = assert_one_line_failure(run_script(config_dir, ini=ini, env=env), f"from {open_folder}:",
                                   "writable by group or others")
    assert not os.path.exists(os.path.join(os.path.dirname(ini), "inv.sqlite3"))
    run_advice(line)
    assert run_script(config_dir, ini=ini, env=env).returncode == 0
    # A relative path written in osa.ini is relative to osa.ini's folder.
    assert os.path.getsize(os.path.join(os.path.dirname(ini), "inv.sqlite3")) > 0


@pytest.mark.parametrize("kind, named", [("file", "a regular file"), ("fifo", "a FIFO (named pipe)")])
def test_a_plugin_folder_that_is_not_a_folder_is_named_as_what_it_is(tmp_path, config_dir, kind, named):
    not_a_folder = tmp_path / "plugins.d"
    if kind == "fifo":
        os.mkfifo(not_a_folder, 0o644)
    else:
        not_a_folder.write_text("")
    target = tmp_path / "n.json"
    ini = ini_for(tmp_path, "recorder", str(not_a_folder), f"[recorder]\ntarget = {target}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini, timeout=60),
                            f"plugin folder {not_a_folder} is {named}, not a folder",
                            "list folders holding plugin files in [inventory] plugin_paths")
    assert not target.exists()
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})  # the advice: a folder holding the plugin file
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {target}\n")
    assert run_script(config_dir, ini=ini).returncode == 0 and target.exists()


def test_a_fifo_named_like_a_plugin_is_never_opened(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"helped.py": HELPED})
    for name in ("fifo.py", "store_helper.py"):
        os.mkfifo(os.path.join(folder, name), 0o644)
    ini = ini_for(tmp_path, "fifo", folder)
    line = assert_one_line_failure(run_script(config_dir, ini=ini, timeout=60),
                                   "unknown storage backend plugin 'fifo'",
                                   f"{folder}/fifo.py is a FIFO (named pipe), not a plugin source file")
    assert line.endswith("replace it with the plugin's source file")
    ini = ini_for(tmp_path, "helped", folder, f"[helped]\ntarget = {tmp_path / 'h.json'}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini, timeout=60), "no store_helper.py")
    # The advice, followed: the source file in the FIFO's place.
    os.remove(os.path.join(folder, "fifo.py"))
    plugin_dir(tmp_path, {"fifo.py": RECORDER})
    ini = ini_for(tmp_path, "fifo", folder, f"[fifo]\ntarget = {tmp_path / 'f.json'}\n")
    assert run_script(config_dir, ini=ini).returncode == 0


def test_a_package_folder_without_init_is_named_as_such(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"cmdb/store.py": RECORDER})
    target = tmp_path / "c.json"
    ini = ini_for(tmp_path, "cmdb", folder, f"[cmdb]\ntarget = {target}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), "section [cmdb] names no storage plugin",
                                   f"{folder}/cmdb is a folder without __init__.py, so it is no package plugin")
    assert f"add {folder}/cmdb/__init__.py holding class Storage (or importing it from a module beside it)" in line
    plugin_dir(tmp_path, {"cmdb/__init__.py": "from .store import Storage  # noqa: F401\n"})
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and json.loads(result.stdout) == json.loads(target.read_text()), result.stderr


def test_a_plugin_folder_that_is_the_package_itself_names_its_parent(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"cmdb/__init__.py": RECORDER})
    package = os.path.join(folder, "cmdb")
    target = tmp_path / "c.json"
    ini = ini_for(tmp_path, "cmdb", package, f"[cmdb]\ntarget = {target}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini),
                            f"plugin folder {package} is the package of plugin 'cmdb' itself",
                            f"list the folder that holds it, {folder}, in plugin_paths instead")
    ini = ini_for(tmp_path, "cmdb", folder, f"[cmdb]\ntarget = {target}\n")
    assert run_script(config_dir, ini=ini).returncode == 0 and target.exists()


def test_reading_a_source_refuses_anything_but_a_regular_file(tmp_path):
    from osa_inventory.storage.trust import UntrustedPlugin, read_source
    folder = plugin_dir(tmp_path, {})
    os.mkfifo(os.path.join(folder, "swapped.py"), 0o644)  # what a check-then-open race could meet
    with pytest.raises(UntrustedPlugin, match="swapped.py: it is not a regular file"):
        read_source(folder, "swapped.py")


# -- check versus import: a bounded race ------------------------------------------------------

RACY_GOOD = RECORDER
RACY_EVIL = MARKED.format(mark="evil") + RECORDER

SWAPPER = """
import os, sys
base, deadline = sys.argv[1], float(sys.argv[2])
import time
plugins, evil, aside = (os.path.join(base, n) for n in ("plugins", "evil", "aside"))
while time.time() < deadline:
    for a, b in ((plugins, aside), (evil, plugins), (plugins, evil), (aside, plugins)):
        try:
            os.rename(a, b)
        except OSError:
            pass
"""


def _python_for(uid: int | None) -> str:
    """A Python the (other) user may run: ours may live below root's private home."""
    if uid is None:
        return sys.executable
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            if subprocess.run([candidate, "-c", ""], user=uid, capture_output=True).returncode == 0:
                return candidate
        except OSError:
            continue
    pytest.skip("no Python the second user may run (the swapper runs as that user)")


@pytest.mark.parametrize("attacker", ["another user, in a world-writable parent", "a file not trusted, swapped in"])
def test_swapping_the_plugin_folder_during_the_import_never_runs_foreign_code(tmp_path, other_user, attacker):
    marks_env, marks = _marks(tmp_path)
    os.environ.update(marks_env)  # the evil plugin marks through it; restored below
    base = tempfile.mkdtemp(prefix="osa-trust-race-", dir="/tmp")  # the other user must reach it
    try:
        os.chmod(base, 0o755)
        parent = os.path.join(base, "parent")
        os.mkdir(parent)
        plugin_dir(pathlib.Path(parent), {"racy.py": RACY_GOOD}, "plugins")
        plugin_dir(pathlib.Path(parent), {"racy.py": RACY_EVIL}, "evil")
        if attacker.startswith("another user"):
            os.chmod(parent, 0o777)  # no sticky bit: anyone may rename root's plugin folder
            for path in ("evil", "evil/racy.py"):
                _give(os.path.join(parent, path), other_user[1])
            as_user = other_user[1]
        else:
            os.chmod(os.path.join(parent, "evil", "racy.py"), 0o666)  # what the old path check let through
            as_user = None
        swapper = subprocess.Popen([_python_for(as_user), "-c", SWAPPER, parent, str(time.time() + 120)],
                                   user=as_user)
        outcomes: dict[str, int] = {}
        try:
            for i in range(150):
                settings = Settings(path=None, plugin_paths=[os.path.join(parent, "plugins"),
                                                             os.path.join(base, f"fresh-source-{i}")])
                try:
                    load_plugin_module("racy", settings)
                    outcomes["loaded"] = outcomes.get("loaded", 0) + 1
                except InventoryError as exc:
                    key = "refused" if "refusing" in str(exc) else "not there"
                    outcomes[key] = outcomes.get(key, 0) + 1
                assert _ran(marks) == set(), f"the swapped-in code ran after {outcomes}"
        finally:
            swapper.kill()
            swapper.wait()
        if attacker.startswith("another user"):
            assert set(outcomes) <= {"refused"}, outcomes  # the writable parent is refused every time
    finally:
        os.environ.pop("OSA_TEST_MARKS", None)
        shutil.rmtree(base, ignore_errors=True)


def test_plugins_leave_no_bytecode_behind_even_when_imported_late(tmp_path, config_dir):
    lazy = RECORDER.replace('        self._log("load")\n',
                            '        from . import late_helper\n        self._log("load")\n')
    folder = plugin_dir(tmp_path, {"lazy.py": lazy, "late_helper.py": "VALUE = 1\n"})
    ini = ini_for(tmp_path, "lazy", folder, f"[lazy]\ntarget = {tmp_path / 'l.json'}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(folder)) == ["late_helper.py", "lazy.py"]
    assert json.loads(result.stdout)["_meta"]
