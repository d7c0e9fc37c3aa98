"""A stored inventory of the wrong shape is one line, never rewritten, never imported.

Through the real inventory script (filesystem backend, and a plugin that
returns what it finds in a file, standing for any backend) and the real
``inventory-manage.py --import``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from helpers import ROOT, run_script, write_ini
from plugin_fixtures import assert_one_line_failure, config_dir, plugin_dir  # noqa: F401 (fixture)
from test_advice_followups import run_printed
from test_manage_support import INVENTORY_SCRIPT, Deployment, clean_env

# Once per CI run: stored inventories of the wrong shape on every backend, and their advice.
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once

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
    ({"_meta": {"hostvars": {"h1-c": {"physical_host": ["h1"]}}}},
     "_meta.hostvars.h1-c.physical_host is a list, not a name (a string)"),
    ({"_meta": {"hostvars": {"h1": {"container_networks": {"m": {"address": 7}}}}}},
     "_meta.hostvars.h1.container_networks.m.address is a int, not an address (a string)"),
    ({"_meta": {"hostvars": {"h1": {"ansible_host": {"ip": "10.0.0.1"}}}}},
     "_meta.hostvars.h1.ansible_host is a dict, not an address (a string)"),
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


# -- a real inventory with a wrong type where the generator reads it back -----------------------------

@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A deployment and the inventory it stored (each test writes its own broken copy over it)."""
    d = Deployment(str(tmp_path_factory.mktemp("deployed")))
    return d, d.generate()


def a_container(inventory: dict) -> str:
    return next(n for n, hv in sorted(inventory["_meta"]["hostvars"].items()) if hv["physical_host"] != n)


def store_broken(d: Deployment, inventory: dict, name: str, key: str, value) -> bytes:
    broken = copy.deepcopy(inventory)
    broken["_meta"]["hostvars"][name][key] = value
    with open(d.inventory_path, "w") as fh:
        json.dump(broken, fh)
    return open(d.inventory_path, "rb").read()


def run_inventory(d: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", d.config_dir, *args],
                          capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": d.ini}))


@pytest.mark.parametrize("entry, key, value, what", [
    ("container", "physical_host", ["infra1"], "physical_host is a list, not a name (a string)"),
    ("container", "physical_host", {"name": "infra1"}, "physical_host is a dict, not a name (a string)"),
    ("container", "physical_host", 5, "physical_host is a int, not a name (a string)"),
    ("container", "container_name", 5, "container_name is a int, not a name (a string)"),
    ("container", "component", ["galera"], "component is a list, not a name (a string)"),
    ("container", "physical_host_group", {"a": 1}, "physical_host_group is a dict, not a name (a string)"),
    ("container", "container_types", True, "container_types is a bool, not a name (a string)"),
    ("container", "container_tech", ["lxc"], "container_tech is a list, not a name (a string)"),
    ("container", "ansible_host", 17, "ansible_host is a int, not an address (a string)"),
    ("host", "management_address", ["172.29.236.11"], "management_address is a list, not an address (a string)"),
    ("host", "physical_host", ["infra1"], "physical_host is a list, not a name (a string)"),
    ("host", "properties", ["is_metal"], "properties is a list, not a mapping"),
    ("host", "container_networks", ["management_address"], "container_networks must map network names to mappings"),
])
def test_a_wrong_type_read_back_is_one_line_naming_entry_key_and_store(deployed, entry, key, value, what):
    d, inventory = deployed
    name = a_container(inventory) if entry == "container" else "infra1"
    before = store_broken(d, inventory, name, key, value)
    one_line(run_inventory(d, "--list"), f"ERROR: storage backend filesystem: the inventory loaded from filesystem "
             f"{d.inventory_path}: _meta.hostvars.{name}.{what}; nothing was written: restore a good version (")
    assert open(d.inventory_path, "rb").read() == before


@pytest.mark.parametrize("args", [["--host", "infra1"], ["--check"], ["manage", "--list-host"],
                                  ["manage", "--export"]])
def test_every_command_refuses_a_wrong_physical_host_the_same_way(deployed, args):
    d, inventory = deployed
    name = a_container(inventory)
    before = store_broken(d, inventory, name, "physical_host", ["infra1"])
    result = d.manage(*args[1:]) if args[0] == "manage" else run_inventory(d, *args)
    one_line(result, f"storage backend filesystem: the inventory loaded from filesystem {d.inventory_path}: "
             f"_meta.hostvars.{name}.physical_host is a list, not a name (a string)")
    assert open(d.inventory_path, "rb").read() == before


def test_the_advice_for_a_wrong_physical_host_works_as_printed(tmp_path):
    d = Deployment(str(tmp_path))
    d.generate()
    config = d.config()
    config["compute_hosts"]["compute9"] = {"ip": "172.29.236.99"}
    d.save_config(config)
    good = d.generate()
    name = a_container(good)
    store_broken(d, good, name, "physical_host", [good["_meta"]["hostvars"][name]["physical_host"]])
    line = one_line(run_inventory(d, "--list"), f"_meta.hostvars.{name}.physical_host is a list")
    tool = re.search(r"restore a good version \((\S+ --config \S+) --history, then --restore VERSION\)", line).group(1)
    history = run_printed(f"{tool} --history --format json", d)
    assert history.returncode == 0, history.stderr
    newest = next(v for v in json.loads(history.stdout) if not v.get("current"))
    restored = run_printed(f"{tool} --restore {shlex.quote(str(newest['version']))}", d)
    assert restored.returncode == 0, restored.stderr
    assert d.generate() == good


def test_a_config_that_would_store_a_wrong_type_is_refused_and_its_advice_works(tmp_path):
    # host_vars and container_vars become host variables: the config is held to the same rules.
    d = Deployment(str(tmp_path))
    config = d.config()
    host_group = next(k for k, v in config.items() if k.endswith("_hosts") and isinstance(v, dict) and v)
    host = sorted(config[host_group])[0]
    config[host_group][host]["container_vars"] = {"physical_host": ["x"], "kept": 1}
    d.save_config(config)
    one_line(run_inventory(d, "--list"), f"ERROR: host {host} in {host_group}: container_vars.physical_host is a "
             "list, not a name (a string); correct it, or remove it")
    assert not os.path.exists(d.inventory_path)
    del config[host_group][host]["container_vars"]["physical_host"]  # the advice: remove it
    d.save_config(config)
    hostvars = d.generate()["_meta"]["hostvars"]
    containers = [hv for name, hv in hostvars.items() if hv["physical_host"] == host and name != host]
    assert containers and all(hv["kept"] == 1 and hv["physical_host"] == host for hv in containers)


def test_a_version_of_the_wrong_shape_is_one_line_in_diff_history_and_restore(tmp_path):
    # Versions are read back without the load path; a damaged one broke --diff with a TypeError.
    d = Deployment(str(tmp_path))
    first = d.generate()
    config = d.config()
    config["compute_hosts"]["compute9"] = {"ip": "172.29.236.99"}
    d.save_config(config)
    name = a_container(d.generate())
    store_broken(d, d.stored(), name, "physical_host", ["infra1"])
    older, damaged = (v["version"] for v in json.loads(d.manage("--history", "--format", "json").stdout))
    defect = (f"version {damaged} of filesystem {d.inventory_path}: _meta.hostvars.{name}.physical_host is a list, "
              "not a name (a string)")
    history = d.manage("--history", "--format", "json")
    assert history.returncode == 0 and history.stderr == ""
    summaries = {v["version"]: v["summary"] for v in json.loads(history.stdout)}
    assert summaries[damaged] == f"cannot be read: {defect}"
    one_line(d.manage("--diff"), f"ERROR: {defect}; compare other versions (--history lists them)")
    before = open(d.inventory_path, "rb").read()
    one_line(d.manage("--restore", damaged), f"ERROR: {defect}; restore another version (--history lists them)")
    assert open(d.inventory_path, "rb").read() == before
    # The advice, as printed: another version is restored, and then compared with the first.
    assert d.manage("--restore", older).returncode == 0 and d.stored() == first
    restored = json.loads(d.manage("--history", "--format", "json").stdout)[-1]["version"]
    diff = d.manage("--diff", older, restored)
    assert (diff.returncode, diff.stdout.splitlines()[-1]) == (0, "no differences")


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
