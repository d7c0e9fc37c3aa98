"""inventory-manage.py changes: -r, -d, --clear-ips, -f saves, locking, followed by real generate runs."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil

import pytest
from test_manage_support import BACKUPS, FIXTURES, INVENTORY, Deployment, assert_one_line_error, in_cidr, snapshot

from osa_inventory.errors import InventoryError
from osa_inventory.inventory import edits


def hostvars(inv: dict) -> dict:
    return inv["_meta"]["hostvars"]


def members(inv: dict) -> set[str]:
    out = set()
    for name, value in inv.items():
        if name not in ("_meta", "all"):
            out.update(value.get("hosts") or ())
    return out


@pytest.fixture
def small(tmp_path):
    dep = Deployment(str(tmp_path))
    dep.generate()
    return dep


@pytest.fixture
def legacy(tmp_path):
    return Deployment(str(tmp_path), "legacy")


def container(inv: dict, host: str, kind: str) -> str:
    return next(n for n, hv in hostvars(inv).items() if hv.get("physical_host") == host and kind in n and n != host)


def test_remove_container_still_in_config_is_recreated_by_the_next_run(small):
    before = small.stored()
    name = container(before, "infra1", "memcached")
    proc = small.manage("-r", name)
    assert proc.returncode == 0, proc.stderr
    assert f"removed host {name} from 4 group(s)" in proc.stdout
    assert f"still produces 1 entry missing now, which the next inventory run will add: {name}" in proc.stdout
    after = small.stored()
    assert name not in hostvars(after) and name not in members(after)
    regenerated = small.generate()
    # Names are derived from host, type and ordinal, so it comes back under the same name.
    assert name in hostvars(regenerated)
    assert name in regenerated["memcached_container"]["hosts"]


def test_remove_host_gone_from_config_with_containers_does_not_come_back(small):
    before = small.stored()
    infra2_entries = {n for n, hv in hostvars(before).items() if hv.get("physical_host") == "infra2"}
    assert len(infra2_entries) == 5
    config = small.config()
    del config["shared_infra_hosts"]["infra2"]
    small.save_config(config)
    proc = small.manage("-r", "infra2", "--with-containers")
    assert proc.returncode == 0, proc.stderr
    assert "removed the empty group infra2_host_containers" in proc.stdout
    assert "note:" not in proc.stdout
    after = small.stored()
    assert not infra2_entries & set(hostvars(after))
    assert not infra2_entries & members(after)
    assert "infra2_host_containers" not in after
    regenerated = small.generate()
    assert not infra2_entries & set(hostvars(regenerated))
    assert "infra2" not in regenerated["lxc_hosts"]["hosts"]
    assert set(hostvars(regenerated)) == set(hostvars(after))


def test_remove_host_still_in_config_is_recreated_with_its_config_address(small):
    proc = small.manage("-r", "compute1")
    assert proc.returncode == 0, proc.stderr
    assert "compute1" not in hostvars(small.stored())
    assert "which the next inventory run will add: compute1" in proc.stdout
    regenerated = small.generate()
    assert hostvars(regenerated)["compute1"]["ansible_host"] == "172.29.236.21"
    assert "compute1" in regenerated["nova_compute"]["hosts"]


def test_remove_unknown_host_changes_nothing(small):
    before = snapshot(small.inventory_path)
    proc = small.manage("-r", "infra1", "-r", "no-such-host")
    assert_one_line_error(proc, "no host no-such-host", "nothing was changed")
    assert snapshot(small.inventory_path) == before
    assert not os.path.exists(os.path.join(small.config_dir, BACKUPS))


def test_remove_group_unlinks_it_from_parents(small):
    before = small.stored()
    parents = [g for g, v in before.items() if "galera" in (v.get("children") or ()) if g != "_meta"]
    assert parents
    proc = small.manage("-d", "galera", "-d", "utility_container")
    assert proc.returncode == 0, proc.stderr
    after = small.stored()
    assert "galera" not in after and "utility_container" not in after
    assert all("galera" not in (v.get("children") or ()) for k, v in after.items() if k != "_meta")
    assert set(hostvars(after)) == set(hostvars(before))  # hosts stay
    assert_one_line_error(small.manage("-d", "all"), "all is not a group")
    assert_one_line_error(small.manage("-d", "nope"), "no group nope")


def test_combined_changes_are_one_write(small):
    proc = small.manage("-r", "compute1", "-d", "galera", "--clear-ips")
    assert proc.returncode == 0, proc.stderr
    import tarfile
    with tarfile.open(os.path.join(small.config_dir, BACKUPS)) as tar:
        assert len(tar.getmembers()) == 1  # one backup: one replacement of the file


def test_clear_ips_then_generate_assigns_new_valid_unique_addresses(small):
    before = small.stored()
    old = {n: hv["ansible_host"] for n, hv in hostvars(before).items() if not hv["properties"].get("is_metal")}
    # The operator moves containers to a new management network: without --clear-ips they keep the old one.
    config = small.config()
    config["cidr_networks"]["management"] = "10.20.0.0/24"
    config["used_ips"].append("10.20.0.1,10.20.0.9")
    small.save_config(config)
    kept = small.generate()
    assert {n: hostvars(kept)[n]["ansible_host"] for n in old} == old

    proc = small.manage("--clear-ips")
    assert proc.returncode == 0, proc.stderr
    assert "cleared 10 network address(es) of 8 container(s)" in proc.stdout
    cleared = small.stored()
    for name in old:
        hv = hostvars(cleared)[name]
        assert "ansible_host" not in hv and "management_address" not in hv
        assert all("address" not in net for net in hv["container_networks"].values())
    assert hostvars(cleared)["infra1"]["ansible_host"] == "172.29.236.11"  # metal keeps its address

    fresh = small.generate()
    seen = set()
    for name in old:
        hv = hostvars(fresh)[name]
        address = hv["ansible_host"]
        assert in_cidr(address, "10.20.0.0/24")
        assert ipaddress.ip_address(address) > ipaddress.ip_address("10.20.0.9")  # used_ips respected
        assert hv["management_address"] == address == hv["container_networks"]["management_address"]["address"]
        assert address not in seen
        seen.add(address)
    tunnels = [hostvars(fresh)[n]["container_networks"]["tunnel_address"]["address"] for n in old if "galera" in n]
    assert len(tunnels) == len(set(tunnels)) == 2
    assert all(in_cidr(a, "172.29.240.0/22") for a in tunnels)


def test_clear_ips_twice_writes_nothing_the_second_time(small):
    assert small.manage("--clear-ips").returncode == 0
    before = snapshot(small.inventory_path)
    backups = snapshot(os.path.join(small.config_dir, BACKUPS))
    proc = small.manage("--clear-ips")
    assert proc.returncode == 0, proc.stderr
    assert "nothing changed; nothing was written" in proc.stdout
    assert snapshot(small.inventory_path) == before
    assert snapshot(os.path.join(small.config_dir, BACKUPS)) == backups


def test_underscore_inventory_keeps_its_names_and_a_removed_one_is_recreated_new_style(legacy):
    original = legacy.stored()
    first = legacy.generate()
    old_names = [n for n in hostvars(original) if "_container-" in n]
    assert all(n in hostvars(first) for n in old_names)
    assert hostvars(first)["infra1_galera_container-1a2b3c4d"]["ansible_host"] == "172.29.236.120"

    proc = legacy.manage("-r", "infra1_galera_container-1a2b3c4d")
    assert proc.returncode == 0, proc.stderr
    regenerated = legacy.generate()
    assert "infra1_galera_container-1a2b3c4d" not in hostvars(regenerated)
    new = [n for n in regenerated["galera_container"]["hosts"]]
    assert len(new) == 1 and new[0].startswith("infra1-galera-container-")
    addresses = [hv["ansible_host"] for hv in hostvars(regenerated).values()]
    assert in_cidr(hostvars(regenerated)[new[0]]["ansible_host"], "172.29.236.0/22")
    assert len(addresses) == len(set(addresses))
    assert "infra1_memcached_container-5e6f7a8b" in hostvars(regenerated)


def test_file_with_the_standard_name_saves_back_through_the_filesystem_plugin(tmp_path, small):
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(small.inventory_path, other / INVENTORY)
    # A broken osa.ini must not matter: -f bypasses it.
    small.write_ini("[inventory\nbroken")
    name = container(small.stored(), "infra1", "utility")
    # OSA_CONFIG_DIR names a config that still produces the container, but -f without --config
    # must not compare a loose file with it.
    proc = small.manage("-f", str(other / INVENTORY), "-r", name, config=False,
                        env={"OSA_CONFIG_DIR": small.config_dir})
    assert proc.returncode == 0, proc.stderr
    assert f"stored in filesystem {other / INVENTORY}" in proc.stdout
    assert "note:" not in proc.stdout
    assert name not in hostvars(json.loads((other / INVENTORY).read_text()))
    assert (other / BACKUPS).exists()
    assert name in hostvars(small.stored())  # the config folder's file is untouched


def test_file_with_another_name_saves_back_to_that_file_with_a_backup(tmp_path):
    path = tmp_path / "saved-inventory.json"
    shutil.copy(os.path.join(FIXTURES, "legacy", INVENTORY), path)
    original = path.read_text()
    dep = Deployment(str(tmp_path / "dep"), "legacy")
    os.unlink(dep.inventory_path)
    proc = dep.manage("-f", str(path), "-r", "compute1", config=False)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(path.read_text())
    assert "compute1" not in hostvars(saved)
    assert "compute1" not in members(saved)
    backups = [p for p in os.listdir(tmp_path) if p.startswith("saved-inventory.json.") and p.endswith(".bak")]
    assert len(backups) == 1
    assert (tmp_path / backups[0]).read_text() == original
    assert sorted(os.listdir(tmp_path)) == sorted(["saved-inventory.json", backups[0], "saved-inventory.changes.json",
                                                   "dep"])
    assert not os.path.exists(dep.inventory_path)


def test_changes_wait_for_the_backend_lock(small):
    small.write_ini("[inventory]\nbackend = filesystem\n[filesystem]\nlock_timeout = 1\n")
    before = snapshot(small.inventory_path)
    fd = os.open(small.config_dir, os.O_RDONLY | os.O_DIRECTORY)  # the filesystem backend locks its folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = small.manage("--clear-ips")
        assert_one_line_error(proc, "another run has held", "lock_timeout")
        assert snapshot(small.inventory_path) == before
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert small.manage("--clear-ips").returncode == 0
    assert snapshot(small.inventory_path) != before


def test_edits_in_process_reject_unknown_names_without_touching_the_inventory(tmp_path):
    with open(os.path.join(FIXTURES, "legacy", INVENTORY), encoding="utf-8") as fh:
        inv = json.load(fh)
    copy = json.loads(json.dumps(inv))
    with pytest.raises(InventoryError):
        edits.remove_hosts(copy, ["compute1", "ghost"])
    with pytest.raises(InventoryError):
        edits.remove_groups(copy, ["galera", "ghost"])
    assert copy == inv
    notes = edits.remove_hosts(copy, ["infra1"], with_containers=True)
    assert "removed the empty group infra1-host_containers" in notes
    assert set(hostvars(copy)) == {"compute1"}
    assert "infra1-host_containers" not in copy
    assert "infra1_galera_container-1a2b3c4d" not in members(copy)
