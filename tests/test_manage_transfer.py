"""--migrate-to and --import: exact copies, the switched backend not rewritten, bad files refused."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from test_manage_support import BACKUPS, INVENTORY, Deployment, assert_one_line_error, snapshot

from osa_inventory.accounting import current_user
from osa_inventory.errors import InventoryError
from osa_inventory.manage import inventory_file

TWO_STORES = """[inventory]
backend = {backend}
[filesystem]
lock_timeout = 5
[filesystem2]
plugin = filesystem
path = {path}
"""


@pytest.fixture
def dep(tmp_path):
    d = Deployment(str(tmp_path))
    d.second = str(tmp_path / "second")
    os.mkdir(d.second)
    d.write_ini(TWO_STORES.format(backend="filesystem", path=d.second))
    d.generate()
    return d


@pytest.mark.once
def test_migrate_to_a_second_filesystem_and_back_is_exact(dep):
    source_before = snapshot(dep.inventory_path)
    original = dep.stored()
    proc = dep.manage("--migrate-to", "filesystem2", "--reason", "to the shared disk (OPS-7)")
    assert proc.returncode == 0, proc.stderr
    hosts = len(original["_meta"]["hostvars"])
    groups = len(original) - 2
    size = len(json.dumps(original, sort_keys=True, separators=(",", ":")).encode())
    assert f"copied {hosts} hosts, {groups} groups, {size} bytes of JSON" in proc.stdout
    assert "read back: identical" in proc.stdout
    assert dep.stored(dep.second) == original
    assert snapshot(dep.inventory_path) == source_before  # the source is only read

    # Switch, and the real inventory script finds nothing to rewrite in the new store.
    dep.write_ini(TWO_STORES.format(backend="filesystem2", path=dep.second))
    target_before = snapshot(os.path.join(dep.second, INVENTORY))
    assert dep.generate() == original
    assert snapshot(os.path.join(dep.second, INVENTORY)) == target_before
    assert not os.path.exists(os.path.join(dep.second, BACKUPS))
    # The copy's record is kept on the target and names the source.
    [copied] = json.loads(dep.manage("--history", "--format", "json").stdout)
    assert copied["command"] == f"inventory-manage --migrate-to filesystem2 (from filesystem {dep.inventory_path})"
    assert copied["reason"] == "to the shared disk (OPS-7)"
    assert copied["summary"].startswith(f"{hosts} host(s) added (")

    # Changes land in the new store; migrating back needs --force over the old, different copy.
    name = next(n for n in original["_meta"]["hostvars"] if "utility" in n)
    assert dep.manage("-r", name).returncode == 0
    changed = dep.stored(dep.second)
    assert_one_line_error(dep.manage("--migrate-to", "filesystem"), "already holds a different inventory", "--force")
    assert snapshot(dep.inventory_path) == source_before
    back = dep.manage("--migrate-to", "filesystem", "--force")
    assert back.returncode == 0, back.stderr
    assert dep.stored() == changed
    dep.write_ini(TWO_STORES.format(backend="filesystem", path=dep.second))
    newest = json.loads(dep.manage("--history", "--format", "json").stdout)[-1]
    assert newest["command"] == ("inventory-manage --migrate-to filesystem --force "
                                 f"(from filesystem {os.path.join(dep.second, INVENTORY)})")
    assert newest["summary"].startswith(f"1 host(s) removed ({name})")  # what the forced copy replaced
    dep.write_ini(TWO_STORES.format(backend="filesystem2", path=dep.second))
    again = dep.manage("--migrate-to", "filesystem")
    assert again.returncode == 0 and "nothing was written" in again.stdout


def test_migrate_errors(dep, tmp_path):
    assert_one_line_error(dep.manage("--migrate-to", "nosuch"), "unknown storage backend plugin 'nosuch'")
    dep.write_ini(TWO_STORES.format(backend="filesystem", path=dep.config_dir))
    assert_one_line_error(dep.manage("--migrate-to", "filesystem2"), "same place as the source")
    empty = Deployment(str(tmp_path / "empty"))
    empty.write_ini(TWO_STORES.format(backend="filesystem", path=dep.second))
    assert_one_line_error(empty.manage("--migrate-to", "filesystem2"), "holds no inventory yet")


def test_import_an_osa_file_into_an_empty_backend_takes_it_over_unchanged(tmp_path):
    dep = Deployment(str(tmp_path), "legacy")
    outside = tmp_path / "from-osa.json"
    os.replace(dep.inventory_path, outside)
    original = json.loads(outside.read_text())
    proc = dep.manage("--import", str(outside), env={"OSA_INVENTORY_REASON": "taking over from OSA"})
    assert proc.returncode == 0, proc.stderr
    assert "imported 5 hosts" in proc.stdout and "read back: identical" in proc.stdout
    assert dep.stored() == original
    [imported] = json.loads(dep.manage("--history", "--format", "json").stdout)
    assert (imported["command"], imported["reason"]) == (f"inventory-manage --import {outside}", "taking over from OSA")
    assert imported["summary"].startswith("5 host(s) added (")
    generated = dep.generate()
    for name, hv in original["_meta"]["hostvars"].items():
        assert generated["_meta"]["hostvars"][name]["ansible_host"] == hv["ansible_host"]
    # Importing the same file again writes nothing; a different inventory needs --force.
    again = dep.manage("--import", str(outside))
    assert again.returncode == 1 and "already holds a different inventory" in again.stderr
    forced = dep.manage("--import", str(outside), "--force")
    assert forced.returncode == 0 and dep.stored() == original
    same = dep.manage("--import", str(outside))
    assert same.returncode == 0 and "nothing was written" in same.stdout


def test_export_then_import_then_a_run_gives_back_the_same_inventory(tmp_path):
    dep = Deployment(str(tmp_path / "a"))
    original = dep.generate()
    export = tmp_path / "export.json"
    export.write_text(dep.manage("-e").stdout)
    assert set(json.loads(export.read_text())) == {"hosts", "all", "groups"}

    other = Deployment(str(tmp_path / "b"))
    proc = other.manage("--import", str(export))
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stdout
    assert other.stored() == original  # exactly: no "children": [] added, members in their order
    before = snapshot(other.inventory_path)
    assert other.generate() == original
    assert snapshot(other.inventory_path) == before, "the run after the import rewrote the inventory"


def test_an_export_without_its_group_table_is_still_imported(tmp_path):
    """OSA's exports have only hosts and all: the nesting comes back with the next run."""
    dep = Deployment(str(tmp_path / "a"))
    original = dep.generate()
    data = json.loads(dep.manage("-e").stdout)
    del data["groups"]
    export = tmp_path / "osa-export.json"
    export.write_text(json.dumps(data))
    other = Deployment(str(tmp_path / "b"))
    proc = other.manage("--import", str(export))
    assert proc.returncode == 0, proc.stderr
    assert "without its group table" in proc.stdout and "group nesting comes back with the next" in proc.stdout
    assert other.stored()["_meta"] == original["_meta"]
    regenerated = other.generate()
    assert regenerated["_meta"] == original["_meta"] and set(regenerated) == set(original)
    for group, value in original.items():
        if group not in ("_meta", "all"):
            assert set(regenerated[group].get("hosts", [])) == set(value["hosts"]), group
            assert set(regenerated[group].get("children", [])) == set(value.get("children", [])), group


def test_an_export_whose_two_group_lists_disagree_is_refused_and_the_advice_works(tmp_path):
    dep = Deployment(str(tmp_path / "a"))
    dep.generate()
    data = json.loads(dep.manage("-e").stdout)
    data["hosts"]["compute1"]["groups"].remove("compute_hosts")  # edited in one place only
    export = tmp_path / "edited.json"
    export.write_text(json.dumps(data))
    other = Deployment(str(tmp_path / "b"))
    proc = other.manage("--import", str(export))
    assert_one_line_error(proc, str(export), "hosts.compute1.groups", "disagrees with the groups table",
                          "delete the 'groups' key")
    assert not os.path.exists(other.inventory_path)
    del data["groups"]  # the advice, followed
    export.write_text(json.dumps(data))
    proc = other.manage("--import", str(export))
    assert proc.returncode == 0, proc.stderr
    member_of = {g for g, v in other.stored().items() if g != "_meta" and "compute1" in (v.get("hosts") or ())}
    assert "compute_hosts" not in member_of and "compute_all" in member_of


BAD_FILES = [
    ("not-json.json", "{ this is not json", "is not valid JSON"),
    ("list.json", "[1, 2]", "holds a JSON list, not an object"),
    ("foreign.json", '{"name": "something else"}', "has no _meta.hostvars mapping"),
    ("hostvars-list.json", '{"_meta": {"hostvars": []}}', "has no _meta.hostvars mapping"),
    ("hostvar-str.json", '{"_meta": {"hostvars": {"h": "x"}}}', "_meta.hostvars.h is a str"),
    ("group-list.json", '{"_meta": {"hostvars": {}}, "web": ["h1"]}', "group web is a list"),
    ("group-hosts.json", '{"_meta": {"hostvars": {}}, "web": {"hosts": "h1"}}', "web.hosts must be a list"),
    ("all-vars.json", '{"_meta": {"hostvars": {}}, "all": {"vars": [1]}}', "all.vars is a list, not a mapping"),
    ("export-bad.json", '{"hosts": {"h": {"hostvars": {}, "groups": "g"}}, "all": {}}', "hosts.h.groups"),
    ("config.yml", None, "is not valid JSON"),
]


@pytest.mark.parametrize("name,text,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_import_refuses_files_that_are_not_inventories(tmp_path, name, text, message):
    dep = Deployment(str(tmp_path / "dep"))
    dep.generate()
    before = snapshot(dep.inventory_path)
    path = tmp_path / name
    if text is None:
        path.write_text(yaml.safe_dump(dep.config()))
    else:
        path.write_text(text)
    assert_one_line_error(dep.manage("--import", str(path), "--force"), str(path), message)
    assert snapshot(dep.inventory_path) == before


def test_import_of_a_missing_file_and_binary_file(tmp_path):
    dep = Deployment(str(tmp_path / "dep"))
    assert_one_line_error(dep.manage("--import", str(tmp_path / "nope.json")), "cannot be read")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert_one_line_error(dep.manage("--import", str(binary)), "is not UTF-8 text")
    assert not os.path.exists(dep.inventory_path)


def test_import_over_a_corrupt_store_needs_force(tmp_path):
    dep = Deployment(str(tmp_path), "legacy")
    good = tmp_path / "good.json"
    good.write_text(open(dep.inventory_path).read())
    with open(dep.inventory_path, "w") as fh:
        fh.write('{"_meta": ')
    assert_one_line_error(dep.manage("--import", str(good)), "cannot be read", "--force")
    proc = dep.manage("--import", str(good), "--force")
    assert proc.returncode == 0, proc.stderr
    assert dep.stored() == json.loads(good.read_text())
    assert any(n.startswith(INVENTORY + ".corrupt-") for n in os.listdir(dep.config_dir))


def test_export_detection_and_conversion_in_process():
    export = {"hosts": {"h1": {"hostvars": {"a": 1}, "groups": ["web", "web_container"]},
                        "h2": {"hostvars": {}}}, "all": {"x": 1}}
    assert inventory_file.is_export(export)
    inv = inventory_file.from_export(export)
    assert inv == {"_meta": {"hostvars": {"h1": {"a": 1}, "h2": {}}}, "all": {"vars": {"x": 1}},
                   "web": {"children": [], "hosts": ["h1"]}, "web_container": {"hosts": ["h1"]}}
    inventory_file.check_inventory(inv, "x")
    # An inventory with a group called "hosts" is not an export: it has _meta.
    assert not inventory_file.is_export({"_meta": {"hostvars": {}}, "hosts": {"children": [], "hosts": []}})
    with pytest.raises(InventoryError):
        inventory_file.check_inventory({"_meta": {"hostvars": {}}, "g": {"children": [1]}}, "x")


ETCD_SECTION = """[inventory]
backend = {backend}
[filesystem]
[etcd]
endpoints = {endpoints}
prefix = /osa-test/manage
"""


@pytest.mark.once
def test_migrate_filesystem_to_etcd_and_switch(tmp_path):
    etcd_server = pytest.importorskip("etcd_server")
    if not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(__file__)), "lib", "plugins", "etcd.py")):
        pytest.skip("lib/plugins/etcd.py is not there")
    etcd_server.skip_without_etcd()
    cluster = etcd_server.EtcdCluster(1).start()
    try:
        dep = Deployment(str(tmp_path))
        dep.write_ini(ETCD_SECTION.format(backend="filesystem", endpoints=cluster.endpoints_text))
        original = dep.generate()
        file_before = snapshot(dep.inventory_path)
        proc = dep.manage("--migrate-to", "etcd")
        assert proc.returncode == 0, proc.stderr
        assert "read back: identical" in proc.stdout and "etcd http://127.0.0.1" in proc.stdout
        assert snapshot(dep.inventory_path) == file_before

        dep.write_ini(ETCD_SECTION.format(backend="etcd", endpoints=cluster.endpoints_text))
        history_before = dep.manage("--history", "--format", "json")
        assert history_before.returncode == 0, history_before.stderr
        assert dep.generate() == original
        # No rewrite: etcd holds exactly the versions it held before the run.
        assert dep.manage("--history", "--format", "json").stdout == history_before.stdout
        listed = json.loads(dep.manage("-l", "--format", "json").stdout)
        assert {r["container_name"] for r in listed} == set(original["_meta"]["hostvars"])

        os.unlink(dep.inventory_path)
        back = dep.manage("--migrate-to", "filesystem")
        assert back.returncode == 0, back.stderr
        assert dep.stored() == original
    finally:
        cluster.stop()


CRATON_SECTION = """[inventory]
backend = {backend}
[filesystem]
[craton]
url = {url}
project_id = {project}
username = {user}
cloud = manage-test
region = r1
cache_dir = {cache}
"""


@pytest.mark.once
def test_migrate_filesystem_to_craton_and_switch(tmp_path):
    craton_server = pytest.importorskip("craton_server")
    if not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(__file__)), "lib", "plugins", "craton.py")):
        pytest.skip("lib/plugins/craton.py is not there")
    server = craton_server.CratonServer().start()
    try:
        dep = Deployment(str(tmp_path / "dep"))
        cache = tmp_path / "cache"
        cache.mkdir()
        env = {"OSA_INVENTORY_CRATON_API_KEY": server.api_key}

        def ini(backend: str) -> None:
            dep.write_ini(CRATON_SECTION.format(backend=backend, url=server.url, project=server.project_id,
                                                user=server.username, cache=cache))
        ini("filesystem")
        original = dep.generate()
        file_before = snapshot(dep.inventory_path)
        proc = dep.manage("--migrate-to", "craton", env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"to craton {server.url}" in proc.stdout and "read back: identical" in proc.stdout
        assert server.api_key not in proc.stdout
        assert snapshot(dep.inventory_path) == file_before

        ini("craton")
        server.app.reset_log()
        assert dep.generate(env=env) == original
        assert server.app.modifying() == 0  # switching rewrote nothing
        # Craton keeps the migration's change record, not versions to compare.
        listed = dep.manage("--history", "--format", "json", env=env)
        assert listed.returncode == 0 and listed.stderr == "", listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["version"], row["user"]) == ("1", current_user())
        assert_one_line_error(dep.manage("--diff", env=env), "craton keeps change records", "not earlier inventories")

        os.unlink(dep.inventory_path)
        back = dep.manage("--migrate-to", "filesystem", env=env)
        assert back.returncode == 0, back.stderr
        assert dep.stored() == original
    finally:
        server.stop()
