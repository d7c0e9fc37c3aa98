"""osa.ini parsing and plugin loading, mostly through the real inventory script.

Plugins are dropped into temporary folders named in an osa.ini; every
failure must reach the user as one ``ERROR:`` line on stderr, exit status 1
and nothing on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap

import pytest
from helpers import run_script, write_ini
from plugin_fixtures import (RECORDER, assert_one_line_failure, calls, config_dir, ini_for,  # noqa: F401
                             plugin_dir, registered_args)

from osa_inventory.storage import loader
from osa_inventory.storage import settings as settings_mod
from osa_inventory.errors import PluginError, SettingsError
from osa_inventory.storage.loader import BUILTIN_DIR, backend_args
from osa_inventory.storage.trust import check_path
from osa_inventory.storage.settings import read_settings, split_paths

# -- osa.ini parsing (in process) --------------------------------------------------

def test_osa_ini_named_but_missing_is_an_error(tmp_path):
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(SettingsError, match="OSA_INI names .*nope.ini, which does not exist"):
        read_settings({"OSA_INI": missing})


def test_osa_ini_named_but_missing_stops_the_script(tmp_path, config_dir):
    result = run_script(config_dir, ini=str(tmp_path / "absent.ini"))
    assert_one_line_failure(result, "absent.ini", "does not exist")
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


def test_missing_default_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(settings_mod, "DEFAULT_INI", str(tmp_path / "absent" / "osa.ini"))
    settings = read_settings({})
    assert (settings.path, settings.backend, settings.plugin_paths) == (None, "filesystem", [])
    assert settings.plugin_for("filesystem") == "filesystem"
    assert settings.options("filesystem") == {}


def test_default_file_is_read_when_present(tmp_path, monkeypatch):
    path = tmp_path / "osa.ini"
    path.write_text("[inventory]\nbackend = other\n")
    monkeypatch.setattr(settings_mod, "DEFAULT_INI", str(path))
    assert read_settings({}).backend == "other"


def test_percent_signs_are_kept_literally(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = store\n[store]\n"
                                   "api_key = a%b%%c%(name)s\nurl = http://h/x%20y\n")
    opts = read_settings({"OSA_INI": ini}).options("store")
    assert opts == {"api_key": "a%b%%c%(name)s", "url": "http://h/x%20y"}


def test_plugin_paths_split_on_commas_and_new_lines(tmp_path):
    for name in "abcdexy":
        (tmp_path / name).mkdir()
    t = str(tmp_path)
    ini = write_ini(t, f"[inventory]\nplugin_paths = {t}/a, {t}/b,,\n    {t}/c\n\n    d ,e\n")
    # Relative folders are relative to osa.ini's folder, whatever the working directory.
    expected = [f"{t}/{name}" for name in "abcde"]
    assert read_settings({"OSA_INI": ini}).plugin_paths == expected
    env_first = read_settings({"OSA_INI": ini, "OSA_INVENTORY_PLUGIN_PATHS": f"{t}/x,{t}/y"})
    assert env_first.plugin_paths == [f"{t}/x", f"{t}/y"] + expected
    assert split_paths("") == [] and split_paths(" \n , ") == []


def test_environment_overrides_win(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\n"
                                   "[filesystem]\nbackups = 3\npath = /from/file\n"
                                   "[etcd_prod]\nplugin = etcd\nprefix = /file\n")
    env = {"OSA_INI": ini, "OSA_INVENTORY_BACKEND": "etcd_prod",
           "OSA_INVENTORY_FILESYSTEM_BACKUPS": "5", "OSA_INVENTORY_ETCD_PROD_PREFIX": "/env",
           "OSA_INVENTORY_ETCD_PROD_PASSWORD": "from-env"}
    settings = read_settings(env)
    assert settings.backend == "etcd_prod"
    assert settings.options("filesystem") == {"backups": "5", "path": "/from/file"}
    assert settings.options("etcd_prod") == {"plugin": "etcd", "prefix": "/env", "password": "from-env"}
    assert settings.plugin_for("etcd_prod") == "etcd"


def test_plugin_option_is_not_passed_and_config_dir_defaults_to_the_real_folder(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = copy\n[copy]\nplugin = filesystem\n"
                                   "path = /srv\n[other]\nconfig_dir = /srv/elsewhere\n")
    settings = read_settings({"OSA_INI": ini})
    assert backend_args(settings, "copy", "cfg") == {"path": "/srv", "config_dir": os.path.abspath("cfg")}
    # The contract lets a section set config_dir itself.
    assert backend_args(settings, "other", "cfg") == {"config_dir": "/srv/elsewhere"}


@pytest.mark.parametrize("name", ["../evil", "a.b", "x-y", "os/path", "1abc", "with space"])
def test_bad_backend_names_are_refused(tmp_path, name):
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = {name}\n")
    with pytest.raises(SettingsError, match="not a plain module name"):
        read_settings({"OSA_INI": ini})
    with pytest.raises(SettingsError, match="not a plain module name"):
        read_settings({"OSA_INI": ini, "OSA_INVENTORY_BACKEND": name})


@pytest.mark.parametrize("name", ["os.path", "../plugins/x", ""])
def test_bad_plugin_indirection_is_refused(tmp_path, name):
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = mine\n[mine]\nplugin = {name}\n")
    settings = read_settings({"OSA_INI": ini})
    with pytest.raises(SettingsError, match=r"\[mine\] plugin|backend name"):
        settings.plugin_for("mine")


def test_unparsable_ini_names_the_file(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory\nbackend = filesystem\n")
    with pytest.raises(SettingsError, match="osa.ini: cannot be parsed"):
        read_settings({"OSA_INI": ini})
    assert_one_line_failure(run_script(config_dir, ini=ini), ini, "cannot be parsed")


def test_bad_backend_name_stops_the_script(tmp_path, config_dir):
    ini = ini_for(tmp_path, "filesystem", None)
    result = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_BACKEND": "../../tmp/evil"})
    assert_one_line_failure(result, "'../../tmp/evil' is not a plain module name")


def test_check_path_refuses_group_and_other_writable(tmp_path):
    path = tmp_path / "p.py"
    path.write_text("")
    for mode in (0o664, 0o646, 0o666):
        os.chmod(path, mode)
        with pytest.raises(PluginError, match=f"writable by group or others .mode {mode:04o}.; run chmod go-w"):
            check_path(str(path))
    os.chmod(path, 0o644)
    check_path(str(path))


# -- the real script with deployer plugins ----------------------------------------

def test_deployer_plugin_is_used_under_its_lock(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    target = str(tmp_path / "stored.json")
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {target}\nnote = 50% off\n")
    first = run_script(config_dir, ini=ini)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    printed = json.loads(first.stdout)
    with open(target) as fh:
        assert json.load(fh) == printed
    assert "compute1" in printed["_meta"]["hostvars"]
    assert calls(target) == ["register", "lock", "load", "write", "unlock", "close"]
    assert registered_args(target) == {"target": target, "note": "50% off", "config_dir": config_dir}
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))

    second = run_script(config_dir, ini=ini)
    assert second.returncode == 0 and json.loads(second.stdout) == printed
    assert calls(target)[6:] == ["register", "lock", "load", "unlock", "close"], "unchanged run wrote"
    assert not os.path.exists(os.path.join(folder, "__pycache__"))


def test_environment_option_overrides_the_file_in_the_script(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    in_file, in_env = str(tmp_path / "file.json"), str(tmp_path / "env.json")
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {in_file}\n")
    result = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_RECORDER_TARGET": in_env})
    assert result.returncode == 0, result.stderr
    assert os.path.exists(in_env) and not os.path.exists(in_file)


def test_plugin_paths_from_environment_are_searched_first(tmp_path, config_dir):
    env_folder = plugin_dir(tmp_path, {"recorder.py": RECORDER}, "env_plugins")
    file_folder = plugin_dir(tmp_path, {"recorder.py": "raise RuntimeError('the file folder was used')\n"},
                             "file_plugins")
    target = str(tmp_path / "stored.json")
    ini = ini_for(tmp_path, "recorder", file_folder, f"[recorder]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_PLUGIN_PATHS": env_folder})
    assert result.returncode == 0, result.stderr
    assert os.path.exists(target)


def test_plugin_indirection_runs_the_named_plugin_with_the_sections_options(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    target = str(tmp_path / "staging.json")
    ini = ini_for(tmp_path, "staging", folder, f"[staging]\nplugin = recorder\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert registered_args(target) == {"target": target, "config_dir": config_dir}


def test_builtin_plugin_under_another_section_name(tmp_path, config_dir):
    store = tmp_path / "copy"
    store.mkdir()
    ini = ini_for(tmp_path, "fs_copy", None, f"[fs_copy]\nplugin = filesystem\npath = {store}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    with open(store / "openstack_inventory.json") as fh:
        assert json.load(fh) == json.loads(result.stdout)
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


def test_deployer_filesystem_plugin_overrides_the_builtin_one(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"filesystem.py": RECORDER})
    target = str(tmp_path / "mine.json")
    ini = ini_for(tmp_path, "filesystem", folder, f"[filesystem]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert calls(target)[:4] == ["register", "lock", "load", "write"]
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


def test_package_plugin_wins_over_module_beside_it(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder/__init__.py": RECORDER,
                                   "recorder.py": "raise RuntimeError('the module was imported')\n"})
    target = str(tmp_path / "pkg.json")
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(target)
    assert not os.path.exists(os.path.join(folder, "recorder", "__pycache__"))


def test_plugin_output_on_stdout_does_not_corrupt_the_json(tmp_path, config_dir):
    noisy = RECORDER.replace('        self._log("load")', '        print("hello from load")\n        self._log("load")')
    folder = plugin_dir(tmp_path, {"noisy.py": "print('hello from import')\n" + noisy})
    target = str(tmp_path / "n.json")
    ini = ini_for(tmp_path, "noisy", folder, f"[noisy]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0
    assert "_meta" in json.loads(result.stdout)
    assert "hello from import" in result.stderr and "hello from load" in result.stderr


def test_no_pycache_left_after_a_plugin_importing_a_helper(tmp_path, config_dir):
    helper = "def path_of(args):\n    return args['target']\n"
    plugin = "from . import store_helper\n" + RECORDER.replace('args["target"]', "store_helper.path_of(args)")
    folder = plugin_dir(tmp_path, {"helped.py": plugin, "store_helper.py": helper})
    target = str(tmp_path / "h.json")
    ini = ini_for(tmp_path, "helped", folder, f"[helped]\ntarget = {target}\n")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(target)
    assert sorted(os.listdir(folder)) == ["helped.py", "store_helper.py"]


# Each broken plugin: (source, fragments the one error line must contain).
BROKEN = {
    "no_storage": ("class Store:\n    pass\n", ["defines no class Storage", "no_storage.py"]),
    "not_a_class": ("Storage = 42\n", ["defines no class Storage"]),
    "missing_write": (
        "class Storage:\n    def register(self, a): pass\n    def load(self): return None\n",
        ["class Storage lacks write()", "missing_write.py"]),
    "import_raises": (
        "raise RuntimeError('cannot reach the CMDB at import')\n",
        ["storage plugin", "import_raises.py", "failed to import", "RuntimeError: cannot reach the CMDB"]),
    "import_storage_error": (
        "from osa_inventory.errors import StorageError\nraise StorageError('install python3-cmdb first')\n",
        ["import_storage_error.py", "failed to import", "install python3-cmdb first"]),
    "syntax_error": ("def broken(:\n", ["syntax_error.py", "failed to import", "SyntaxError"]),
    "import_exits": ("import sys\nsys.exit(0)\n", ["import_exits.py", "failed to import", "SystemExit"]),
    "init_raises": (
        "class Storage:\n    def __init__(self): raise ValueError('no init')\n"
        "    def register(self, a): pass\n    def load(self): pass\n    def write(self, i): pass\n",
        ["storage backend init_raises failed to create its Storage()", "ValueError: no init"]),
    "register_raises": (
        RECORDER.replace('        self.target = args["target"]',
                         '        from osa_inventory.errors import StorageError\n'
                         '        raise StorageError("option url is missing; set [register_raises] url")'),
        ["storage backend register_raises", "option url is missing; set [register_raises] url"]),
    "register_keyerror": (
        RECORDER.replace('args["target"]', 'args["url"]'),
        ["storage backend register_keyerror failed to register its options", "KeyError", "url"]),
    "load_raises": (
        RECORDER.replace('        self._log("load")', '        raise ValueError("bad row 7")'),
        ["storage backend load_raises failed to load the inventory", "ValueError: bad row 7"]),
    "load_returns_list": (
        RECORDER.replace('        self._log("load")', '        return []'),
        ["storage backend load_returns_list: the inventory loaded holds a JSON list, not an object",
         "nothing was written", "keeps no earlier inventories", "--import FILE --force"]),
    "write_raises": (
        RECORDER.replace('        self._log("write")', '        raise OSError(28, "No space left on device")'),
        ["storage backend write_raises failed to store the inventory", "No space left on device"]),
    "write_exits": (
        RECORDER.replace('        self._log("write")', '        import sys; sys.exit(0)'),
        ["storage backend write_exits failed to store the inventory", "SystemExit"]),
    "lock_raises": (
        RECORDER.replace('        self._log("lock")', '        raise TimeoutError("lock busy")'),
        ["storage backend lock_raises failed to take its lock", "lock busy"]),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_plugin_failures_are_one_line(tmp_path, config_dir, name):
    source, fragments = BROKEN[name]
    folder = plugin_dir(tmp_path, {f"{name}.py": source})
    target = str(tmp_path / "t.json")
    ini = ini_for(tmp_path, name, folder, f"[{name}]\ntarget = {target}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini), *fragments)
    assert not os.path.exists(os.path.join(folder, "__pycache__"))
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
    if name == "write_raises":
        assert calls(target)[-2:] == ["unlock", "close"], "lock and close must still be released"


def test_unknown_backend_names_every_folder_searched(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {})
    ini = ini_for(tmp_path, "nosuch", folder)
    line = assert_one_line_failure(run_script(config_dir, ini=ini), "unknown storage backend plugin 'nosuch'",
                                   folder, BUILTIN_DIR, ini)
    assert line.index(folder) < line.index(BUILTIN_DIR)


# -- permission refusals -------------------------------------------------------------

def _recorder_setup(tmp_path):
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    target = str(tmp_path / "p.json")
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {target}\n")
    return folder, os.path.join(folder, "recorder.py"), target, ini


def test_group_writable_plugin_folder_is_refused(tmp_path, config_dir):
    folder, _, target, ini = _recorder_setup(tmp_path)
    os.chmod(folder, 0o775)
    assert_one_line_failure(run_script(config_dir, ini=ini), f"refusing to load storage plugin from {folder}",
                            "writable by group or others (mode 0775)", f"chmod go-w {folder}")
    assert not os.path.exists(target + ".calls"), "the refused plugin ran"


def test_other_writable_plugin_file_is_refused(tmp_path, config_dir):
    _, path, target, ini = _recorder_setup(tmp_path)
    os.chmod(path, 0o646)
    assert_one_line_failure(run_script(config_dir, ini=ini), path, "writable by group or others (mode 0646)")
    assert not os.path.exists(target + ".calls")


def test_group_writable_package_folder_is_refused(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder/__init__.py": RECORDER})
    os.chmod(os.path.join(folder, "recorder"), 0o775)
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {tmp_path / 'x.json'}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini), os.path.join(folder, "recorder"),
                            "writable by group or others")


def test_group_writable_folder_holding_a_package_is_refused(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"recorder/__init__.py": RECORDER})
    os.chmod(folder, 0o770)
    ini = ini_for(tmp_path, "recorder", folder, f"[recorder]\ntarget = {tmp_path / 'x.json'}\n")
    assert_one_line_failure(run_script(config_dir, ini=ini), f"from {folder}:", "writable by group or others")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_plugin_owned_by_another_user_is_refused(tmp_path, config_dir, what):
    folder, path, target, ini = _recorder_setup(tmp_path)
    victim = path if what == "file" else folder
    os.chown(victim, 54321, -1)
    assert_one_line_failure(run_script(config_dir, ini=ini), victim, "owned by uid 54321", "chown")
    assert not os.path.exists(target + ".calls")


def test_builtin_folder_is_not_checked(tmp_path, config_dir):
    # The built-in plugins load even when a deployer folder (searched first) lacks the name.
    folder = plugin_dir(tmp_path, {})
    ini = ini_for(tmp_path, "filesystem", folder)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


# -- secrets in osa.ini ---------------------------------------------------------------

@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o600, False), (0o640, False)])
def test_world_readable_ini_with_a_password_is_logged(tmp_path, config_dir, mode, warned):
    ini = ini_for(tmp_path, "filesystem", None, "[etcd]\npassword = hunter2\n")
    os.chmod(ini, mode)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    log_path = os.path.join(config_dir, "inventory.log")
    log = open(log_path).read() if os.path.exists(log_path) else ""
    if warned:
        assert "WARNING" in log and ini in log and "[etcd] password" in log
        assert "OSA_INVENTORY_ETCD_PASSWORD" in log and "chmod o-r" in log
        assert "hunter2" not in log, "the secret itself was logged"
    else:
        assert "password" not in log


def test_no_warning_for_world_readable_ini_without_secrets(tmp_path, config_dir):
    ini = ini_for(tmp_path, "filesystem", None, "[etcd]\nprefix = /osa\n")
    os.chmod(ini, 0o644)
    assert run_script(config_dir, ini=ini).returncode == 0
    log_path = os.path.join(config_dir, "inventory.log")
    assert not os.path.exists(log_path) or "WARNING" not in open(log_path).read()


# -- in-process loading ------------------------------------------------------------------

def test_an_undefined_section_must_name_a_plugin(tmp_path):
    ini = ini_for(tmp_path, "filesystem", None)
    with pytest.raises(PluginError, match=r"unknown storage backend plugin 'elsewhere'"):
        loader.open_backend(read_settings({"OSA_INI": ini}), str(tmp_path), section="elsewhere")


def test_an_undefined_section_naming_a_plugin_runs_it_with_defaults(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = sqlite_elsewhere\n")
    backend = loader.open_backend(read_settings({"OSA_INI": ini}), str(tmp_path), section="filesystem")
    assert backend.describe() == f"filesystem {tmp_path}/openstack_inventory.json"


def test_plugin_module_stays_usable_after_many_loads(tmp_path):
    # pluginbase empties a module's globals when its source is garbage-collected.
    import gc
    folder = plugin_dir(tmp_path, {"recorder.py": RECORDER})
    settings = read_settings({"OSA_INI": ini_for(tmp_path, "recorder", folder,
                                                 f"[recorder]\ntarget = {tmp_path / 's.json'}\n")})
    backend = loader.open_backend(settings, str(tmp_path))
    for _ in range(3):
        loader.open_backend(settings, str(tmp_path))
        gc.collect()
    backend.write({"_meta": {"hostvars": {}}, "all": {"vars": {}}})
    assert backend.load() == {"_meta": {"hostvars": {}}, "all": {"vars": {}}}
