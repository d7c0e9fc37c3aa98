"""A stored inventory of the wrong shape is one line, never rewritten, never imported.

Through the real inventory script (filesystem backend, and a plugin that
returns what it finds in a file, standing for any backend) and the real
``inventory-manage.py --import``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, run_script, write_ini
from plugin_fixtures import assert_one_line_failure, config_dir, plugin_dir  # noqa: F401 (fixture)

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
INVENTORY = "openstack_inventory.json"

BROKEN = [
    ([1, 2], "a JSON"),
    ({"all": {"vars": {}}}, "no _meta.hostvars mapping"),
    ({"_meta": {"hostvars": []}}, "no _meta.hostvars mapping"),
    ({"_meta": {"hostvars": {"h1": "x"}}}, "_meta.hostvars.h1 is a str"),
    ({"_meta": {"hostvars": {"h1": {"container_networks": {"mgmt": "10.0.0.1"}}}}},
     "_meta.hostvars.h1.container_networks must map network names to mappings"),
    ({"_meta": {"hostvars": {"h1": {"container_networks": ["x"]}}}}, "container_networks"),
    ({"_meta": {"hostvars": {"h1": {"properties": 3}}}}, "_meta.hostvars.h1.properties is a int"),
    ({"_meta": {"hostvars": {}}, "compute_hosts": ["h1"]}, "group compute_hosts is a list"),
    ({"_meta": {"hostvars": {}}, "compute_hosts": {"hosts": "h1"}}, "compute_hosts.hosts must be a list"),
    ({"_meta": {"hostvars": {}}, "compute_hosts": {"hosts": [1]}}, "compute_hosts.hosts must be a list"),
    ({"_meta": {"hostvars": {}}, "g": {"children": [None]}}, "g.children must be a list"),
    ({"_meta": {"hostvars": {}}, "all": {"vars": []}}, "all.vars is a list"),
    ({"_meta": {"hostvars": {}}, "all": None}, "group all is a null"),
]


def one_line(result, *words: str) -> str:
    line = assert_one_line_failure(result, *words)
    assert "unexpected" not in line and "please report" not in line
    return line


@pytest.mark.parametrize("data, words", BROKEN)
def test_filesystem_store_of_wrong_shape_is_refused_and_kept(tmp_path, config_dir, data, words):
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "w") as fh:
        json.dump(data, fh)
    before = open(path, "rb").read()
    line = one_line(run_script(config_dir, ini=write_ini(str(tmp_path))), "storage backend filesystem", words)
    assert f" {path}" in line, "the refusal does not name the file"
    assert "nothing was written" in line or "left untouched" in line
    assert open(path, "rb").read() == before
    assert not os.path.exists(os.path.join(config_dir, "backup_openstack_inventory.tar"))


def test_any_backend_is_checked_the_same_way(tmp_path, config_dir):
    plugins = plugin_dir(tmp_path, {"echo.py": (
        "import json\n"
        "class Storage:\n"
        "    def register(self, args):\n        self.source = args['source']\n"
        "    def load(self):\n        return json.load(open(self.source))\n"
        "    def write(self, inventory):\n        open(self.source + '.written', 'w').write('x')\n")})
    source = tmp_path / "stored.json"
    source.write_text(json.dumps({"_meta": {"hostvars": {"h1": {"container_networks": {"a": 1}}}}}))
    ini = write_ini(str(tmp_path),
                    f"[inventory]\nbackend = echo\nplugin_paths = {plugins}\n[echo]\nsource = {source}\n")
    one_line(run_script(config_dir, ini=ini), "storage backend echo", "container_networks")
    assert not os.path.exists(f"{source}.written")


@pytest.mark.parametrize("data, words", BROKEN[1:])
def test_import_refuses_a_wrong_shape(tmp_path, config_dir, data, words):
    source = tmp_path / "import.json"
    source.write_text(json.dumps(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = write_ini(str(tmp_path))
    result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--import", str(source)],
                            capture_output=True, text=True, env=env, timeout=120)
    one_line(result, str(source), words)
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))


DEEP_PLUGIN = """
import copy, json
from osa_inventory.errors import StorageError

class Storage:
    def register(self, args):
        self.source = args['source']
        self.depth = int(args['depth'])
    def _deep(self):
        data = json.load(open(self.source))
        value = []
        for _ in range(self.depth):  # built in memory: no JSON parser limits it
            value = [value]
        data['all']['vars']['deep'] = value
        return data
    def load(self):
        return self._deep()
    def write(self, inventory):
        open(self.source + '.written', 'w').write('x')
    def history(self):
        return [{'version': '1', 'time': '2026-01-01T00:00:00Z'}, {'version': '2', 'time': '2026-01-02T00:00:00Z'}]
    def read_version(self, version):
        return self._deep()
"""


@pytest.mark.parametrize("depth", [150, 5000])
def test_a_plugin_giving_deeply_nested_data_is_refused_in_one_line_naming_it(tmp_path, config_dir, depth):
    """Data nested past what the project's recursive code can take, from a plugin's load() or read_version()."""
    plugins = plugin_dir(tmp_path, {"deep.py": DEEP_PLUGIN})
    source = tmp_path / "stored.json"
    source.write_text(json.dumps({"_meta": {"hostvars": {}}, "all": {"vars": {}}}))
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = deep\nplugin_paths = {plugins}\n"
                                   f"[deep]\nsource = {source}\ndepth = {depth}\n")
    one_line(run_script(config_dir, ini=ini), "storage backend deep: the inventory loaded: nests lists or objects "
             "more than 100 levels deep", "nothing was written")
    assert not os.path.exists(f"{source}.written")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = ini
    for args, words in ((["-l"], "the inventory loaded: nests"), (["--diff", "1", "2"], "version 1: nests")):
        result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, *args],
                                capture_output=True, text=True, env=env, timeout=120)
        one_line(result, "storage backend deep", words)
