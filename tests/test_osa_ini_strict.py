"""osa.ini and OSA_INVENTORY_* variables are checked against the plugins' option declarations.

Every case runs the real inventory script: a mistake is one ``ERROR:`` line
naming the file or variable, exit status 1, nothing on stdout and nothing
stored in the config folder.
"""

from __future__ import annotations

import json
import os

from helpers import run_script, write_ini
from plugin_fixtures import assert_one_line_failure as refused
from plugin_fixtures import config_dir, plugin_dir  # noqa: F401 (config_dir is a fixture)

INVENTORY = "openstack_inventory.json"
STORAGE_TAIL = ("    def load(self):\n        return None\n"
                "    def write(self, inventory):\n        pass\n")


def test_misspelt_inventory_section_is_refused_not_ignored(tmp_path, config_dir):
    # Before: [inventry] fell back to the local filesystem backend without a word.
    ini = write_ini(str(tmp_path), "[inventry]\nbackend = etcd\n")
    line = refused(run_script(config_dir, ini=ini), ini, "[inventry]", "did you mean inventory?")
    assert "rename the section" in line
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))


def test_misspelt_option_names_section_file_and_closest(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = etcd\n[etcd]\nendpoint = http://127.0.0.1:1\n")
    refused(run_script(config_dir, ini=ini), ini, "[etcd] endpoint", "did you mean endpoints?")


def test_unknown_inventory_option_is_refused(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\nbackends = etcd\n")
    refused(run_script(config_dir, ini=ini), ini, "[inventory] backends", "did you mean backend?")


def test_unknown_environment_option_names_the_variable(tmp_path, config_dir):
    ini = write_ini(str(tmp_path))
    env = {"OSA_INVENTORY_FILESYSTEM_BACKUP": "3"}
    refused(run_script(config_dir, ini=ini, env=env), "environment variable OSA_INVENTORY_FILESYSTEM_BACKUP",
            "did you mean backups?")


def test_bad_value_names_where_it_came_from(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[filesystem]\nbackups = many\n")
    refused(run_script(config_dir, ini=ini), f"{ini}: [filesystem] backups = 'many'", "whole number")
    env = {"OSA_INVENTORY_FILESYSTEM_BACKUPS": "-1"}
    refused(run_script(config_dir, ini=ini, env=env),
            "environment variable OSA_INVENTORY_FILESYSTEM_BACKUPS = '-1'", "whole number >= 0")
    env = {"OSA_INVENTORY_UNKNOWN_HOST_GROUPS": "ignore"}
    refused(run_script(config_dir, ini=ini, env=env), "OSA_INVENTORY_UNKNOWN_HOST_GROUPS", "error or warn")


def test_a_secret_value_is_never_printed(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = craton\n")
    # A declared secret with a malformed value would only be refused by the plugin; a wrong
    # kind on a secret-looking option must not echo it either.
    env = {"OSA_INVENTORY_CRATON_API_KEY": "s3cr3t value", "OSA_INVENTORY_CRATON_URL": "http://127.0.0.1:9",
           "OSA_INVENTORY_CRATON_CLOUD": "c", "OSA_INVENTORY_CRATON_REGION": "r",
           "OSA_INVENTORY_CRATON_USERNAME": "u",
           "OSA_INVENTORY_CRATON_PROJECT_ID": "717e9a216e2d44e0bc848398563bda06"}
    line = refused(run_script(config_dir, ini=ini, env=env), "api_key")
    assert "s3cr3t" not in line


def test_missing_plugin_folder_is_an_error(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory]\nplugin_paths = plugins\n")
    refused(run_script(config_dir, ini=ini), f"plugin folder {tmp_path}/plugins does not exist")
    env = {"OSA_INVENTORY_PLUGIN_PATHS": "/nonexistent/plugins"}
    refused(run_script(config_dir, ini=write_ini(str(tmp_path)), env=env),
            "environment variable OSA_INVENTORY_PLUGIN_PATHS", "/nonexistent/plugins does not exist")


def test_relative_paths_are_relative_to_osa_ini_whatever_the_cwd(tmp_path, config_dir):
    etc = tmp_path / "etc"
    (etc / "store").mkdir(parents=True)
    ini = write_ini(str(etc), "[inventory]\nbackend = filesystem\n[filesystem]\npath = store\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_script(config_dir, ini=ini, cwd=str(elsewhere))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(etc / "store" / INVENTORY) as fh:
        assert json.load(fh) == json.loads(result.stdout)
    assert not os.path.exists(elsewhere / "store") and not os.path.exists(os.path.join(config_dir, "store"))


def test_plugin_without_declaration_gets_its_section_passed_through(tmp_path, config_dir):
    plugins = plugin_dir(tmp_path, {"legacy.py": (
        "import json\nclass Storage:\n"
        "    def register(self, args):\n"
        "        open(args['target'] + '.args', 'w').write(json.dumps(args))\n" + STORAGE_TAIL)})
    target = tmp_path / "out"
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = legacy\nplugin_paths = {plugins}\n"
                                   f"[legacy]\ntarget = {target}\nanything_goes = yes\n")
    result = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_LEGACY_EXTRA": "1"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(f"{target}.args") as fh:
        args = json.load(fh)
    assert args["anything_goes"] == "yes" and args["extra"] == "1"


def test_dict_declaration_of_a_plugin_that_imports_nothing(tmp_path, config_dir):
    plugins = plugin_dir(tmp_path, {"plain.py": (
        "OPTIONS = {'folder': {'kind': 'path'}, 'depth': {'kind': 'whole', 'default': 1, 'minimum': 1}}\n"
        "class Storage:\n"
        "    def register(self, args):\n        self.folder = args['folder']\n"
        "    def load(self):\n        return None\n"
        "    def write(self, inventory):\n        open(self.folder + '/inv.json', 'w').write('x')\n")})
    (tmp_path / "data").mkdir()
    base = f"[inventory]\nbackend = plain\nplugin_paths = {plugins}\n[plain]\nfolder = data\n"
    ok = run_script(config_dir, ini=write_ini(str(tmp_path), base))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert os.path.exists(tmp_path / "data" / "inv.json")
    refused(run_script(config_dir, ini=write_ini(str(tmp_path), base + "depth = 0\n")),
            "[plain] depth = '0' is not a whole number >= 1")
    refused(run_script(config_dir, ini=write_ini(str(tmp_path), base + "dept = 2\n")),
            "[plain] dept", "did you mean depth?")


def test_malformed_declaration_is_one_line(tmp_path, config_dir):
    plugins = plugin_dir(tmp_path, {"odd.py": (
        "OPTIONS = {'x': {'kind': 'colour'}}\nclass Storage:\n"
        "    def register(self, args):\n        pass\n" + STORAGE_TAIL)})
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = odd\nplugin_paths = {plugins}\n")
    refused(run_script(config_dir, ini=ini), "odd.py: OPTIONS is malformed", "colour")


def test_section_of_another_name_is_served_by_its_plugin(tmp_path, config_dir):
    # [fs_copy] with plugin = filesystem is valid; its options are checked against filesystem's.
    (tmp_path / "copy").mkdir()
    text = "[inventory]\nbackend = fs_copy\n[fs_copy]\nplugin = filesystem\npath = copy\n"
    ok = run_script(config_dir, ini=write_ini(str(tmp_path), text))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert os.path.exists(tmp_path / "copy" / INVENTORY)
    refused(run_script(config_dir, ini=write_ini(str(tmp_path), text + "folder = x\n")),
            "[fs_copy] folder", "known: backups, group, lock_timeout, mode, path")


def test_unknown_backend_names_where_the_name_came_from_and_the_closest(tmp_path, config_dir):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\n")
    from_env = refused(run_script(config_dir, ini=ini, env={"OSA_INVENTORY_BACKEND": "etdc"}),
                       "environment variable OSA_INVENTORY_BACKEND", "'etdc'", "did you mean etcd?")
    assert ini not in from_env  # the file is not where the name came from
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = etdc\n")
    refused(run_script(config_dir, ini=ini), f"{ini}: [inventory] backend", "did you mean etcd?")
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = copy\n[copy]\nplugin = filesystme\n")
    refused(run_script(config_dir, ini=ini), "[copy]", "did you mean filesystem?")
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
