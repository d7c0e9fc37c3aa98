"""osa_inventory.api on the filesystem backend: the script's answers, Ansible's groups, recorded removals, typed errors.

The inventory is stored by the real inventory script; the API's answers are
compared with what the script prints (``--list``, ``--host``), with the groups
ansible-core resolves from that output, and with inventory-manage's listings;
removals are read back with ``inventory-manage --history``. docs/api.md's
examples run as printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest
from ansible_cli import ANSIBLE, our_stderr
from helpers import ROOT, run_ok, run_script, write_ini

from osa_inventory import api
from osa_inventory.errors import InventoryError
from osa_inventory.inventory.members import all_hosts, group_hosts, group_names
from osa_inventory.storage.loader import open_backend
from osa_inventory.storage.settings import read_settings

AIO = os.path.join(ROOT, "etc", "openstack_deploy", "aio")
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
DOC = os.path.join(ROOT, "docs", "api.md")
LIB = os.path.join(ROOT, "lib")


class Deployment:
    """The aio example stored by the real script, with its osa.ini (filesystem backend)."""

    def __init__(self, tmp_path):
        self.config_dir = str(tmp_path / "config")
        shutil.copytree(AIO, self.config_dir)
        self.ini = write_ini(str(tmp_path))
        self.printed = run_ok(self.config_dir, self.ini)

    def open(self, **kw):
        return api.open_inventory(osa_ini=self.ini, config_dir=self.config_dir, **kw)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_", "PYTHON"))}
        env.update(OSA_INI=self.ini, OSA_CONFIG_DIR=self.config_dir, PYTHONPATH=LIB)
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, MANAGE, "--config", self.config_dir, *args], env=self.env(),
                              capture_output=True, text=True, timeout=120)

    def history(self) -> list[dict]:
        result = self.manage("--history", "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file in the config folder with its size and modification time."""
        found = {}
        for folder, _dirs, names in os.walk(self.config_dir):
            for name in names:
                st = os.stat(os.path.join(folder, name))
                found[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
        return found


@pytest.fixture
def aio(tmp_path) -> Deployment:
    return Deployment(tmp_path)


def assert_one_line(exc: BaseException) -> str:
    assert isinstance(exc, InventoryError), type(exc)
    text = str(exc)
    assert text.strip() and "\n" not in text, text
    return text


# -- reading -------------------------------------------------------------------------------

def test_the_answers_are_what_the_script_prints(aio):
    with aio.open() as inv:
        assert inv.to_ansible() == aio.printed
        assert inv.groups() == sorted(k for k in aio.printed if k not in ("_meta", "all"))
        for host in ("aio1", inv.hosts("galera_all")[0]):
            shown = run_script(aio.config_dir, "--host", host, ini=aio.ini)
            assert shown.returncode == 0 and inv.hostvars(host) == json.loads(shown.stdout)
        assert inv.where == f"filesystem {aio.config_dir}/openstack_inventory.json"
    # An unchanged config: the script prints (and stores) the same again.
    assert run_ok(aio.config_dir, aio.ini) == aio.printed


def test_what_the_caller_gets_is_its_own(aio):
    with aio.open() as inv:
        mine = inv.to_ansible()
        mine["galera_all"]["children"].clear()
        inv.hostvars("aio1")["physical_host"] = "elsewhere"
        assert inv.to_ansible() == aio.printed
        assert inv.hostvars("aio1")["physical_host"] == "aio1"


@pytest.mark.skipif(ANSIBLE is None, reason="ansible-core is not installed")
def test_hosts_of_every_group_are_the_members_ansible_resolves(aio, tmp_path):
    # Ansible's `groups` variable: every group with its hosts, children included, as Ansible resolved them.
    script = tmp_path / "printed.sh"
    (tmp_path / "printed.json").write_text(json.dumps(aio.printed))
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'printed.json'}\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["ANSIBLE_HOME"] = str(tmp_path / "ansible-home")
    result = subprocess.run([ANSIBLE, "localhost", "-i", str(script), "-m", "debug", "-a", "var=groups"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and our_stderr(result.stderr, ANSIBLE) == "", result.stderr
    resolved = json.loads(result.stdout.split("=>", 1)[1])["groups"]
    with aio.open() as inv:
        # Ansible adds its implicit "all" and "ungrouped"; nothing of ours is ungrouped.
        assert set(resolved) == set(inv.groups()) | {"all", "ungrouped"} and resolved["ungrouped"] == []
        for group in inv.groups() + ["all"]:
            ours = inv.hosts(group)
            assert len(ours) == len(set(ours)), f"{group}: a host listed twice"
            assert set(ours) == set(resolved[group]), group
        assert len(inv.hosts("all")) == len(aio.printed["_meta"]["hostvars"])


def test_containers_on_and_is_metal_agree_with_inventory_manage(aio):
    rows = json.loads(aio.manage("--list-host", "--format", "json").stdout)
    with aio.open() as inv:
        for row in rows:
            name = row["container_name"]
            assert inv.is_metal(name) == row["is_metal"]
            expected = [r["container_name"] for r in rows
                        if r["physical_host"] == name and r["container_name"] != name]
            assert sorted(inv.containers_on(name)) == sorted(expected)
        assert len(inv.containers_on("aio1")) == 15 and inv.containers_on(inv.containers_on("aio1")[0]) == []


def test_reading_writes_nothing(aio):
    before = aio.files()
    with aio.open() as inv:
        inv.groups(), inv.hosts("all"), inv.containers_on("aio1"), inv.to_ansible()
        with pytest.raises(api.ReadOnlyInventory):
            inv.remove("aio1")
    assert aio.files() == before


def test_defaults_are_the_commands(aio, monkeypatch, tmp_path):
    monkeypatch.setenv("OSA_INI", aio.ini)
    monkeypatch.setenv("OSA_CONFIG_DIR", aio.config_dir)
    with api.open_inventory() as inv:
        assert inv.to_ansible() == aio.printed
    # osa_ini wins over $OSA_INI: this one selects a backend section that has nothing stored.
    other = tmp_path / "other"
    other.mkdir()
    ini = write_ini(str(other), f"[inventory]\nbackend = elsewhere\n[elsewhere]\nplugin = filesystem\n"
                                f"path = {other}\n")
    with pytest.raises(api.NothingStored) as caught:
        with api.open_inventory(osa_ini=ini):
            pass
    assert f"filesystem {other}/openstack_inventory.json holds no inventory yet" in assert_one_line(caught.value)


# -- members: Ansible's resolution, pure ----------------------------------------------------

def test_group_members_resolve_children_breadth_first_each_once():
    inventory = {
        "_meta": {"hostvars": {"h1": {}, "lonely": {}}},
        "all": {"vars": {}},
        "top": {"hosts": ["h9"], "children": ["left", "right"]},
        "left": {"hosts": ["h2", "h1"], "children": ["deep"]},
        "right": {"hosts": ["h1", "h3"], "children": ["left", "only_named"]},
        "deep": {"hosts": ["h4"], "children": ["top"]},  # a cycle: Ansible refuses it, we walk each group once
        "vars_only": {"vars": {"x": 1}},
    }
    assert group_hosts(inventory, "top") == ["h9", "h2", "h1", "h3", "h4"]
    assert group_hosts(inventory, "only_named") == []
    assert group_hosts(inventory, "vars_only") == []
    assert group_hosts(inventory, "nosuch") is None
    assert group_names(inventory) == ["deep", "left", "only_named", "right", "top", "vars_only"]
    # "all" is every member of a group: a hostvars entry in no group is no host to Ansible.
    assert all_hosts(inventory) == group_hosts(inventory, "all") == ["h9", "h2", "h1", "h3", "h4"]


# -- remove: inventory-manage's lock, write path and record -------------------------------------

def test_remove_is_recorded_with_who_and_why(aio):
    versions = len(aio.history())
    with aio.open(write=True) as inv:
        (utility,) = inv.hosts("utility_container")
        inv.remove(utility, reason="rebuilding the utility container")
        assert utility not in inv.hosts("all") and utility not in inv.containers_on("aio1")
    entries = aio.history()
    assert len(entries) == versions + 1
    last = entries[-1]
    assert last["reason"] == "rebuilding the utility container"
    assert last["command"].startswith(f"osa_inventory.api remove {utility}")
    assert last["user"] and last["host"] and f"1 host(s) removed ({utility})" in last["summary"]
    listed = aio.manage("--list-host", "--format", "json")
    assert utility not in {row["container_name"] for row in json.loads(listed.stdout)}
    with aio.open() as inv:
        assert utility not in inv.hosts("all")


def test_remove_with_containers_and_the_reason_from_the_environment(aio, monkeypatch):
    monkeypatch.setenv("OSA_INVENTORY_REASON", "aio1 retired")
    with aio.open(write=True) as inv:
        inv.remove("aio1", with_containers=True)
        assert inv.hosts("all") == [] and "aio1_host_containers" not in inv.groups()
    last = aio.history()[-1]
    assert last["reason"] == "aio1 retired" and "osa_inventory.api remove aio1 --with-containers" in last["command"]
    assert "16 host(s) removed" in last["summary"]


def test_remove_waits_for_the_lock_another_run_holds(aio):
    holder = open_backend(read_settings({"OSA_INI": aio.ini}), aio.config_dir)
    done = threading.Event()
    errors: list[BaseException] = []

    def remove() -> None:
        try:
            with aio.open(write=True) as inv:
                inv.remove("aio1", reason="after the lock")
        except BaseException as exc:  # reported by the test's own thread
            errors.append(exc)
        done.set()

    with holder.lock():
        thread = threading.Thread(target=remove, daemon=True)
        thread.start()
        assert not done.wait(1.0), "remove() did not wait for the lock"
        history_while_held = holder.history()
    assert done.wait(60) and not errors, errors
    holder.close()
    assert len(aio.history()) == len(history_while_held) + 1


def test_remove_reads_the_inventory_stored_now_not_the_snapshot(aio):
    with aio.open(write=True) as inv:
        (utility,) = inv.hosts("utility_container")
        with aio.open(write=True) as other:
            other.remove(utility, reason="first")
        # The snapshot still lists it, the store does not: nothing to remove, and nothing is written.
        with pytest.raises(api.UnknownHost):
            inv.remove(utility, reason="second")
        inv.remove("aio1", reason="third")
    reasons = [entry["reason"] for entry in aio.history()]
    assert reasons[-2:] == ["first", "third"]


# -- errors: typed, one line, nothing printed, nothing exits --------------------------------------

def test_every_error_is_a_typed_exception_and_nothing_is_printed(aio, tmp_path, capfd):
    versions = len(aio.history())
    before = aio.files()
    caught: dict[type, str] = {}

    def expect(kind: type, func) -> None:
        with pytest.raises(kind) as info:
            func()
        caught[kind] = assert_one_line(info.value)

    with aio.open() as inv:
        expect(api.UnknownGroup, lambda: inv.hosts("galera_al"))
        expect(api.UnknownHost, lambda: inv.hostvars("aio2"))
        expect(api.UnknownHost, lambda: inv.containers_on("aio2"))
        expect(api.UnknownHost, lambda: inv.is_metal("aio2"))
        expect(api.ReadOnlyInventory, lambda: inv.remove("aio1", reason="x"))
    with aio.open(write=True) as inv:
        expect(api.UnknownHost, lambda: inv.remove("aio2", reason="x"))
    expect(api.InventoryClosed, lambda: inv.remove("aio1", reason="x"))
    assert "'galera_al'" in caught[api.UnknownGroup] and "'aio2'" in caught[api.UnknownHost]
    empty = tmp_path / "empty"
    empty.mkdir()

    def opened(**kw):
        with api.open_inventory(**kw):
            pass

    expect(api.NothingStored, lambda: opened(osa_ini=aio.ini, config_dir=str(empty)))
    expect(api.ConfigError, lambda: opened(osa_ini=aio.ini, config_dir=str(tmp_path / "missing")))
    expect(api.SettingsError, lambda: opened(osa_ini=str(tmp_path / "no-osa.ini"), config_dir=aio.config_dir))
    (tmp_path / "unknown").mkdir()
    unknown = write_ini(str(tmp_path / "unknown"), "[inventory]\nbackend = nosuch\n")
    expect(api.PluginError, lambda: opened(osa_ini=unknown, config_dir=aio.config_dir))
    assert "no-osa.ini" in caught[api.SettingsError] and str(tmp_path / "missing") in caught[api.ConfigError]
    assert len(aio.history()) == versions and aio.files() == before
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_corrupt_inventory_is_refused_never_rewritten(aio, capfd):
    path = os.path.join(aio.config_dir, "openstack_inventory.json")
    with open(path, "w") as fh:
        json.dump({"_meta": {"hostvars": ["aio1"]}, "all": {}}, fh)
    before = aio.files()
    for write in (False, True):
        with pytest.raises(api.CorruptInventory) as caught:
            with aio.open(write=write):
                pass
        assert path in assert_one_line(caught.value)
    assert aio.files() == before
    assert capfd.readouterr() == ("", "")


def test_the_public_names():
    assert api.API_VERSION == (1, 4)  # 1.1: set_address, rename, move, EditRefused; 1.2: refresh, check_config;
    # 1.3: StorageTimeout; 1.4: environ=, inputs_digest()
    for name in api.__all__:
        assert hasattr(api, name), name
    errors = [getattr(api, n) for n in api.__all__ if isinstance(getattr(api, n), type)
              and issubclass(getattr(api, n), BaseException)]
    assert len(errors) == 14 and all(issubclass(e, InventoryError) for e in errors)
    assert issubclass(api.StorageTimeout, api.StorageError)
    assert issubclass(api.UnknownHost, LookupError) and issubclass(api.UnknownGroup, LookupError)


# -- docs/api.md's examples, run as printed ------------------------------------------------------------

def doc_examples() -> list[str]:
    blocks = re.findall(r"<!-- api-example -->\s*```python\n(.*?)```", open(DOC, encoding="utf-8").read(), re.S)
    assert len(blocks) == 5, "docs/api.md lost a marked example"
    return blocks


def test_the_documented_examples_run_as_printed(aio):
    outputs = []
    for block in doc_examples():
        result = subprocess.run([sys.executable, "-c", block], env=aio.env(), capture_output=True, text=True,
                                timeout=120, cwd=aio.config_dir)
        assert result.returncode == 0 and result.stderr == "", (block, result.stderr)
        outputs.append(result.stdout)
    galera = aio.printed["galera_container"]["hosts"][0]
    assert outputs[0] == f"{galera} on aio1 as lxc\n"
    assert outputs[1] == f"aio1 {aio.printed['keystone_container']['hosts']}\n"
    assert outputs[2].startswith(f"stored in filesystem {aio.config_dir}/openstack_inventory.json with 16 hosts")
    assert outputs[3].startswith("not found: no host 'aio2'")
    assert aio.history()[-1]["reason"] == "rebuilding the utility container"


# -- hostile input ---------------------------------------------------------------------------------------

def test_hostile_names_and_places_are_refused_in_one_line(aio, tmp_path, capfd):
    before = aio.files()
    with aio.open(write=True) as inv:
        for name in ("", "aio1\nERROR: forged", "aio1 ", "../aio1"):
            with pytest.raises(api.UnknownHost) as caught:
                inv.remove(name, reason="hostile")
            assert_one_line(caught.value)
        for group in ("", "_meta", "galera_all\n", "hosts "):
            with pytest.raises(api.UnknownGroup) as caught:
                inv.hosts(group)
            assert_one_line(caught.value)
    assert aio.files() == before
    # A config folder that is a file; an osa.ini others may write (it names the code that runs).
    with pytest.raises(api.ConfigError):
        with api.open_inventory(osa_ini=aio.ini, config_dir=os.path.join(aio.config_dir, "openstack_user_config.yml")):
            pass
    os.chmod(aio.ini, 0o666)
    with pytest.raises(api.SettingsError) as caught:
        with aio.open():
            pass
    assert f"chmod go-w {aio.ini}" in assert_one_line(caught.value)
    assert capfd.readouterr() == ("", "")


def test_an_error_in_the_block_is_the_callers_and_the_lock_is_free(aio):
    with pytest.raises(KeyboardInterrupt):
        with aio.open(write=True) as inv:
            inv.remove("aio1", reason="then interrupted")
            raise KeyboardInterrupt
    # A lock still held would time out in 2 s (a StorageError), not wait for the default 300.
    holder = open_backend(read_settings({"OSA_INI": aio.ini, "OSA_INVENTORY_FILESYSTEM_LOCK_TIMEOUT": "2"}),
                          aio.config_dir)
    try:
        with holder.lock():  # free at once: remove() released it, and leaving the block closed the backend
            assert "aio1" not in holder.load()["_meta"]["hostvars"]
    finally:
        holder.close()
