"""inventory-manage --set-address and --rename: previews, stores, refusals that write nothing, the next run stable.

The real scripts run as subprocesses against the small deployment of
tests/fixtures/manage/ (two infra hosts with containers, one bare-metal
compute host); the per-backend test repeats the commands on etcd and Craton.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest
from craton_server import CratonServer
from etcd_server import etcd  # noqa: F401  (fixture)
from test_manage_support import BACKUPS, MANAGE, Deployment, assert_one_line_error, clean_env, snapshot

from osa_inventory import api


def hostvars(inv: dict) -> dict:
    return inv["_meta"]["hostvars"]


def container(inv: dict, host: str, kind: str) -> str:
    return next(n for n, hv in hostvars(inv).items() if hv.get("physical_host") == host and kind in n and n != host)


def history(dep: Deployment, *extra: str, env: dict | None = None) -> list[dict]:
    proc = dep.manage(*extra, "--history", "--format", "json", env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def small(tmp_path):
    dep = Deployment(str(tmp_path))
    dep.generate()
    return dep


def assert_next_run_keeps(dep: Deployment, env: dict | None = None) -> dict:
    """The inventory script's next run prints what is stored and stores nothing (the file is not replaced)."""
    stored = dep.stored() if env is None else None
    before = snapshot(dep.inventory_path) if env is None else None
    printed = dep.generate(env=env)
    if env is None:
        assert printed == stored
        assert snapshot(dep.inventory_path) == before, "the next run stored a changed inventory"
    plan = dep.manage("--plan", env=env)
    assert plan.returncode == 0 and plan.stdout.startswith("no changes:"), (plan.stdout, plan.stderr)
    return printed


# -- --set-address ---------------------------------------------------------------------------------------

def test_set_address_previews_then_stores_and_the_next_run_keeps_it(small):
    galera = container(small.stored(), "infra1", "galera")
    old = hostvars(small.stored())[galera]["container_networks"]
    was = {net: old[f"{net}_address"]["address"] for net in ("management", "tunnel")}
    before = snapshot(small.inventory_path)
    preview = small.manage("--set-address", galera, "management=172.29.236.250", "tunnel=172.29.240.250", "--plan")
    assert preview.returncode == 2, preview.stderr
    assert preview.stderr == ""
    assert f'    ~ ansible_host: "{was["management"]}" -> "172.29.236.250"' in preview.stdout.splitlines()
    assert (f'    ~ container_networks.tunnel_address.address: "{was["tunnel"]}" -> "172.29.240.250"'
            in preview.stdout.splitlines())
    assert snapshot(small.inventory_path) == before
    assert not os.path.exists(os.path.join(small.config_dir, BACKUPS))

    done = small.manage("--set-address", galera, "management=172.29.236.250", "tunnel=172.29.240.250",
                        "--reason", "galera moves to the new rack")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    hv = hostvars(small.stored())[galera]
    assert (hv["ansible_host"], hv["management_address"]) == ("172.29.236.250", "172.29.236.250")
    assert hv["container_networks"]["management_address"]["address"] == "172.29.236.250"
    assert hv["container_networks"]["tunnel_address"]["address"] == "172.29.240.250"
    printed = assert_next_run_keeps(small)
    assert hostvars(printed)[galera]["ansible_host"] == "172.29.236.250"
    last = history(small)[-1]
    assert last["command"] == (f"inventory-manage --set-address {galera} management=172.29.236.250 "
                               "tunnel=172.29.240.250")
    assert last["reason"] == "galera moves to the new rack"
    assert f"1 host(s) with changed addresses ({galera})" in last["summary"]
    diff = small.manage("--diff").stdout
    assert f'~ host {galera}' in diff and f'"{was["management"]}" -> "172.29.236.250"' in diff
    # The old address is free again: another container may take it, and the next run keeps that too.
    memcached = container(small.stored(), "infra1", "memcached")
    assert small.manage("--set-address", memcached, f"management={was['management']}").returncode == 0
    assert_next_run_keeps(small)


def test_the_same_address_again_stores_nothing(small):
    galera = container(small.stored(), "infra1", "galera")
    address = hostvars(small.stored())[galera]["ansible_host"]
    before = snapshot(small.inventory_path)
    # Its own address is not "held by another entry".
    preview = small.manage("--set-address", galera, f"management={address}", "--plan")
    assert preview.returncode == 0 and "nothing would be written" in preview.stdout, preview.stderr
    proc = small.manage("--set-address", galera, f"management={address}")
    assert proc.returncode == 0 and "nothing was written" in proc.stdout
    assert snapshot(small.inventory_path) == before


REFUSED_ADDRESSES = [
    ("management=172.29.236.20", "172.29.236.20 is in used_ips"),
    ("management=172.29.236.0", "172.29.236.0 is the network address of cidr_networks.management"),
    ("management=172.29.239.255", "172.29.239.255 is the broadcast address of cidr_networks.management"),
    ("management=10.1.2.3", "10.1.2.3 is outside cidr_networks.management (172.29.236.0/22)"),
    ("management=fd00::5", "fd00::5 is outside cidr_networks.management"),
    ("management=172.29.236.21", "172.29.236.21 is in used_ips"),
    ("management=not-an-ip", "'not-an-ip' is not an IP address"),
    ("management=" + "9" * 100_000, "is not an IP address"),
    ("management=172.29.236.250\x1b[2J", "is not an IP address"),
    ("nosuchnet=172.29.236.250", "no network 'nosuchnet' in cidr_networks of the config; name one of management, "
                                 "tunnel"),
    ("management", "'management' is not NETWORK=ADDRESS"),
    ("management=1=2", "is not NETWORK=ADDRESS"),
]


@pytest.mark.parametrize("assignment, fragment", REFUSED_ADDRESSES, ids=[f[1][:40] for f in REFUSED_ADDRESSES])
def test_set_address_refusals_write_nothing(small, assignment, fragment):
    galera = container(small.stored(), "infra1", "galera")
    before = snapshot(small.inventory_path)
    for extra in ((), ("--plan",)):
        proc = small.manage("--set-address", galera, assignment, *extra)
        assert_one_line_error(proc, fragment, "nothing was changed")
        assert len(proc.stderr) < 1000 and "\x1b" not in proc.stderr
    assert snapshot(small.inventory_path) == before
    assert not os.path.exists(os.path.join(small.config_dir, BACKUPS))


def test_set_address_refuses_by_entry_and_names_what_to_do(small):
    stored = small.stored()
    galera1, galera2 = container(stored, "infra1", "galera"), container(stored, "infra2", "galera")
    memcached = container(stored, "infra1", "memcached")
    held = hostvars(stored)[galera2]["ansible_host"]
    before = snapshot(small.inventory_path)
    cases = [
        ((galera1, f"management={held}"), f"{held} is {galera2}'s address"),
        ((memcached, "tunnel=172.29.240.250"), f"{memcached} is not on network tunnel"),
        (("infra1", "management=172.29.236.250"), "infra1 is a bare-metal host whose addresses come from the config "
                                                  "(shared_infra_hosts.infra1); change its ip there"),
        (("no-such-host", "management=172.29.236.250"), "no host or container 'no-such-host'"),
        (("bad\x07name", "management=172.29.236.250"), "no host or container 'bad\\x07name'"),
        ((galera1, "management=172.29.236.250", "management=172.29.236.251"), "network 'management' is given twice"),
        ((galera1,), "needs NAME and at least one NETWORK=ADDRESS"),
    ]
    for args, fragment in cases:
        assert_one_line_error(small.manage("--set-address", *args), fragment)
    assert snapshot(small.inventory_path) == before


def test_a_bare_metal_address_is_changed_in_the_config_as_the_refusal_says(small):
    config = small.config()
    config["compute_hosts"]["compute1"]["ip"] = "172.29.236.240"
    small.save_config(config)
    printed = small.generate()
    assert hostvars(printed)["compute1"]["ansible_host"] == "172.29.236.240"
    assert_next_run_keeps(small)


# -- --rename --------------------------------------------------------------------------------------------

def test_rename_a_legacy_container_name_previews_stores_and_the_next_run_keeps_it(small):
    old = container(small.stored(), "infra1", "galera")
    legacy = old.replace("-", "_", 3)  # infra1_galera_container-XXXXXXXX, the name before OSA's 2024 change
    assert small.manage("--rename", old, legacy).returncode == 0
    assert_next_run_keeps(small)
    addresses = hostvars(small.stored())[legacy]["container_networks"]
    before = snapshot(small.inventory_path)
    preview = small.manage("--rename", legacy, old, "--plan")
    assert preview.returncode == 2 and f"+ host {old} (on infra1)" in preview.stdout, preview.stderr
    assert f"- host {legacy}" in preview.stdout
    assert snapshot(small.inventory_path) == before

    done = small.manage("--rename", legacy, old, "--reason", "names with dashes")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    stored = small.stored()
    assert legacy not in hostvars(stored) and hostvars(stored)[old]["container_name"] == old
    assert hostvars(stored)[old]["container_networks"] == addresses
    groups = [g for g, v in stored.items() if g != "_meta" and old in (v.get("hosts") or ())]
    assert {"galera", "galera_container", "infra1_host_containers"} <= set(groups)
    assert not any(legacy in (v.get("hosts") or ()) for g, v in stored.items() if g != "_meta")
    printed = assert_next_run_keeps(small)
    assert len([n for n in hostvars(printed) if "galera" in n]) == 2  # no third galera container appeared
    last = history(small)[-1]
    assert (last["command"], last["reason"]) == (f"inventory-manage --rename {legacy} {old}", "names with dashes")


def test_rename_a_physical_host_after_the_config_renamed_it(small):
    stored = small.stored()
    infra1_entries = {n: hv for n, hv in hostvars(stored).items() if hv.get("physical_host") == "infra1"}
    before = snapshot(small.inventory_path)
    # The config still names infra1: the next run would add it back.
    assert_one_line_error(small.manage("--rename", "infra1", "infra9"),
                          "the config still names infra1 (shared_infra_hosts.infra1)",
                          "rename it to infra9 there first, then run this again")
    assert snapshot(small.inventory_path) == before
    # The advice, as printed: rename it in the config, then run the command again.
    config = small.config()
    config["shared_infra_hosts"] = {("infra9" if k == "infra1" else k): v
                                    for k, v in config["shared_infra_hosts"].items()}
    small.save_config(config)
    done = small.manage("--rename", "infra1", "infra9")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    renamed = small.stored()
    for name, hv in infra1_entries.items():
        new = "infra9" + name[len("infra1"):]
        assert name not in hostvars(renamed)
        assert hostvars(renamed)[new]["physical_host"] == "infra9"
        assert hostvars(renamed)[new]["ansible_host"] == hv["ansible_host"]
        assert hostvars(renamed)[new]["container_name"] == new
    assert "infra1_host_containers" not in renamed
    assert set(renamed["infra9_host_containers"]["hosts"]) == {n for n in hostvars(renamed)
                                                               if n.startswith("infra9-")}
    assert hostvars(renamed)["infra9"]["container_types"] == "infra9_host_containers"
    printed = assert_next_run_keeps(small)
    assert len(hostvars(printed)) == len(hostvars(stored))  # no container was added for infra9


def test_rename_refusals_write_nothing(small):
    stored = small.stored()
    galera = container(stored, "infra1", "galera")
    prefix = galera.rsplit("-", 1)[0]
    before = snapshot(small.inventory_path)
    cases = [
        (("no-such", "x1"), "no host or container 'no-such'"),
        ((galera, "infra2"), "infra2 already exists in the inventory"),
        ((galera, container(stored, "infra2", "galera")), "already exists"),
        ((galera, "galera"), "galera is a group of the inventory"),
        ((galera, "bad\x1b]0;pwned\x07"), "'bad\\x1b]0;pwned\\x07' is not a valid inventory name"),
        ((galera, "x" * 64), "is not a valid inventory name"),
        ((galera, "a" * 100_000), "is not a valid inventory name"),
        ((galera, ".leading-dot"), "is not a valid inventory name"),
        ((galera, "has space"), "is not a valid inventory name"),
        ((galera, "infra1-galera-2"), f"does not keep the name prefix {prefix}-"),
        ((galera, "infra2-galera-container-0000aaaa"), f"does not keep the name prefix {prefix}-"),
    ]
    for args, fragment in cases:
        proc = small.manage("--rename", *args)
        assert_one_line_error(proc, fragment, "nothing was changed")
        assert len(proc.stderr) < 1000
    assert snapshot(small.inventory_path) == before
    assert not os.path.exists(os.path.join(small.config_dir, BACKUPS))


def test_plan_previews_only_these_edits_and_takes_no_reason(small):
    before = snapshot(small.inventory_path)
    galera = container(small.stored(), "infra1", "galera")
    assert_one_line_error(small.manage("--plan", "-r", "compute1"),
                          "--plan previews --set-address, --rename or --move only")
    assert_one_line_error(small.manage("--rename", galera, galera + "x", "--plan", "--reason", "why"),
                          "with --plan it stores none")
    assert snapshot(small.inventory_path) == before


# -- every backend ---------------------------------------------------------------------------------------

@pytest.fixture
def craton_site():
    server = CratonServer().start()
    try:
        yield server
    finally:
        server.stop()


def on_backend(kind: str, tmp_path, request):
    """A deployment stored on ``kind``; what tells that nothing at all was written, and that no inventory was."""
    dep = Deployment(str(tmp_path / "dep"))
    env: dict = {}
    stored = None
    if kind == "etcd":
        cluster = request.getfixturevalue("etcd")
        prefix = f"/edits/{request.node.name.replace('[', '_').replace(']', '')}"
        dep.write_ini(f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {cluster.endpoints_text}\n"
                      f"prefix = {prefix}\n")
        untouched = cluster.revision  # not even a lock key was written

        def stored():  # an inventory run takes the lock (a write) but may store nothing
            return cluster.keys(prefix)
    elif kind == "craton":
        server = request.getfixturevalue("craton_site")
        dep.write_ini("[inventory]\nbackend = craton\n[craton]\n"
                      + "".join(f"{k} = {v}\n" for k, v in server.options().items()))
        os.chmod(dep.ini, 0o600)
        untouched = server.app.modifying
    else:
        def untouched():
            return snapshot(dep.inventory_path)
    dep.generate(env=env)
    return dep, untouched, stored or untouched, env


# The edits are the same code on every backend; etcd's and Craton's runs are once per CI run.
@pytest.mark.parametrize("kind", ["filesystem", pytest.param("etcd", marks=pytest.mark.once),
                                  pytest.param("craton", marks=pytest.mark.once)])
def test_both_edits_on_every_backend(kind, tmp_path, request):
    dep, untouched, stored, env = on_backend(kind, tmp_path, request)
    inventory = json.loads(dep.manage("--export", env=env).stdout)
    galera = next(n for n in inventory["hosts"] if n.startswith("infra1-galera"))
    renamed = galera.replace("-", "_", 3)

    state = untouched()
    preview = dep.manage("--set-address", galera, "management=172.29.236.250", "--plan", env=env)
    assert preview.returncode == 2 and '-> "172.29.236.250"' in preview.stdout, preview.stderr
    assert_one_line_error(dep.manage("--set-address", galera, "management=172.29.236.20", env=env), "in used_ips")
    assert_one_line_error(dep.manage("--rename", galera, "infra2", env=env), "already exists")
    assert_one_line_error(dep.manage("--rename", "infra1", "infra9", env=env), "the config still names infra1")
    assert untouched() == state, "a preview or a refusal wrote to the store"

    for args in (("--set-address", galera, "management=172.29.236.250"), ("--rename", galera, renamed)):
        proc = dep.manage(*args, "--reason", f"{args[0]} on {kind}", env=env)
        # Craton has no lock, and every change says what that means (docs/craton.md).
        warnings = [w for w in proc.stderr.splitlines() if not w.startswith("storage backend craton has no lock()")]
        assert proc.returncode == 0 and warnings == [], proc.stderr
    printed = dep.generate(env=env)
    assert hostvars(printed)[renamed]["ansible_host"] == "172.29.236.250" and galera not in hostvars(printed)
    state = stored()
    assert dep.generate(env=env) == printed
    assert stored() == state, "the next run stored something"
    rows = history(dep, env=env)
    assert [(r["command"].split()[1], r["reason"]) for r in rows[-2:]] == [
        ("--set-address", f"--set-address on {kind}"), ("--rename", f"--rename on {kind}")]
    assert rows[-1]["command"] == f"inventory-manage --rename {galera} {renamed}"

    # --move: infra2 failed and infra3 replaces it.
    galera2 = next(n for n in hostvars(printed) if n.startswith("infra2-galera"))
    replace_failed_host(dep, "infra2", "infra3", "172.29.236.13")
    state = untouched()
    assert dep.manage("--move", galera2, "--to", "infra3", "--plan", env=env).returncode == 2
    assert_one_line_error(dep.manage("--move", galera2, "--to", "infra1", env=env), "infra1 already has")
    assert untouched() == state, "a preview or a refusal wrote to the store"
    proc = dep.manage("--move", galera2, "--to", "infra3", "--reason", f"move on {kind}", env=env)
    assert proc.returncode == 0, proc.stderr
    printed = dep.generate(env=env)
    (moved,) = [n for n in hostvars(printed) if n.startswith("infra3-galera")]
    assert hostvars(printed)[moved]["ansible_host"] == hostvars(printed)[moved]["management_address"]
    state = stored()
    assert dep.generate(env=env) == printed
    assert stored() == state, "the run after the move's first run stored something"
    assert history(dep, env=env)[-2]["reason"] == f"move on {kind}"


# -- the Python API ----------------------------------------------------------------------------------------

def test_the_api_sets_addresses_and_renames_with_typed_refusals(small, monkeypatch):
    monkeypatch.setenv("OSA_INI", small.ini)
    galera = container(small.stored(), "infra1", "galera")
    with api.open_inventory(config_dir=small.config_dir) as inv:
        with pytest.raises(api.ReadOnlyInventory):
            inv.set_address(galera, {"management": "172.29.236.250"})
    before = snapshot(small.inventory_path)
    with api.open_inventory(config_dir=small.config_dir, write=True) as inv:
        for call, error, fragment in (
                (lambda: inv.set_address("nope", {"management": "172.29.236.250"}), api.UnknownHost, "'nope'"),
                (lambda: inv.set_address(galera, {"management": "172.29.236.5"}), api.EditRefused, "in used_ips"),
                (lambda: inv.set_address(galera, ["management=172.29.236.250"]), api.EditRefused, "takes a dict"),
                (lambda: inv.set_address(galera, {"management": 12}), api.EditRefused, "'12' is not an IP address"),
                (lambda: inv.rename(galera, "infra2"), api.EditRefused, "already exists"),
                (lambda: inv.rename(galera, None), api.EditRefused, "'None' is not a valid inventory name"),
                (lambda: inv.rename(["x"], "y"), api.UnknownHost, "no host")):
            with pytest.raises(error) as caught:
                call()
            assert fragment in str(caught.value) and "\n" not in str(caught.value)
        assert snapshot(small.inventory_path) == before
        inv.set_address(galera, {"management": "172.29.236.250"}, reason="api move")
        new = galera.replace("-", "_", 3)
        inv.rename(galera, new, reason="api rename")
        assert inv.hostvars(new)["ansible_host"] == "172.29.236.250"
        with pytest.raises(api.EditRefused) as caught:
            inv.move(container(small.stored(), "infra2", "galera"), "infra1")
        assert "infra1 already has" in str(caught.value)
    with pytest.raises(api.InventoryClosed):
        inv.rename(new, galera)
    replace_failed_host(small, "infra2", "infra3", "172.29.236.13")
    galera2 = container(small.stored(), "infra2", "galera")
    with api.open_inventory(config_dir=small.config_dir, write=True) as inv:
        inv.move(galera2, "infra3", reason="api rehome")
        assert [n for n in inv.hosts("galera") if n.startswith("infra3-galera-container-")]
    rows = history(small)
    assert [r["reason"] for r in rows[-3:]] == ["api move", "api rename", "api rehome"]
    rows = rows[:-1]
    assert rows[-2]["command"].startswith(f"osa_inventory.api set-address {galera} management=172.29.236.250")
    small.generate()  # adds infra3 and its other containers
    assert_next_run_keeps(small)


# -- --move ----------------------------------------------------------------------------------------------

def replace_failed_host(dep: Deployment, failed: str, new: str, ip: str) -> None:
    """The config after a server failed: it is gone, a new one of the same group takes its place."""
    config = dep.config()
    hosts = config["shared_infra_hosts"]
    del hosts[failed]
    hosts[new] = {"ip": ip}
    dep.save_config(config)


def test_move_rehomes_a_failed_servers_container_keeping_its_addresses(small):
    stored = small.stored()
    galera = container(stored, "infra2", "galera")
    old = hostvars(stored)[galera]
    before = snapshot(small.inventory_path)
    # infra2 is still in the config: the next run would place a galera container there again.
    assert_one_line_error(small.manage("--move", galera, "--to", "infra1"),
                          "infra1 already has the 1 galera_container container(s)", "--set-address")
    assert_one_line_error(small.manage("--move", galera, "--to", "compute1"),
                          "the config places no galera_container container on 'compute1'")
    replace_failed_host(small, "infra2", "infra3", "172.29.236.13")
    assert_one_line_error(small.manage("--move", galera, "--to", "nohost"), "no galera_container container on 'nohost'")
    assert_one_line_error(small.manage("--move", "infra1", "--to", "infra3"), "infra1 is not a container")
    assert_one_line_error(small.manage("--move", "nope", "--to", "infra3"), "no host or container 'nope'")
    assert_one_line_error(small.manage("--move", galera, "--to", "infra2"), f"{galera} is already on infra2")
    usage = small.manage("--move", galera)  # argparse's usage error: exit 2, as for every other action
    assert usage.returncode == 2 and "error: --move NAME and --to HOST go together" in usage.stderr
    assert_one_line_error(small.manage("--to", "infra3", "--plan"), "--move NAME and --to HOST go together")
    assert snapshot(small.inventory_path) == before

    preview = small.manage("--move", galera, "--to", "infra3", "--plan")
    assert preview.returncode == 2 and f"- host {galera}" in preview.stdout, preview.stderr
    assert snapshot(small.inventory_path) == before
    done = small.manage("--move", galera, "--to", "infra3", "--reason", "infra2 failed")
    assert done.returncode == 0, done.stderr
    moved = small.stored()
    (new,) = [n for n in hostvars(moved) if n.startswith("infra3-galera-container-")]
    assert galera not in hostvars(moved) and all(galera not in (v.get("hosts") or ()) for v in moved.values())
    hv = hostvars(moved)[new]
    assert (hv["physical_host"], hv["container_name"], hv["ansible_host"]) == ("infra3", new, old["ansible_host"])
    assert {k: v["address"] for k, v in hv["container_networks"].items()} == {
        k: v["address"] for k, v in old["container_networks"].items()}
    assert moved["infra3_host_containers"]["hosts"] == [new]
    assert new in moved["galera"]["hosts"] and galera not in moved["infra2_host_containers"]["hosts"]
    # The next run adds infra3 and its other containers, and keeps the moved one as it is.
    printed = small.generate()
    assert hostvars(printed)[new] == dict(hv, physical_host_addr="172.29.236.13")
    assert len([n for n in hostvars(printed) if n.startswith("infra3-galera")]) == 1
    assert_next_run_keeps(small)
    last = history(small)[-2]
    assert (last["command"], last["reason"]) == (f"inventory-manage --move {galera} --to infra3", "infra2 failed")


def test_move_takes_new_addresses_where_the_old_ones_are_not_valid_on_the_new_host(small):
    """A pod: the new host's management network comes from another range, so the address changes."""
    galera = container(small.stored(), "infra2", "galera")
    old = hostvars(small.stored())[galera]
    config = small.config()
    config["cidr_networks"]["pod2_management"] = "172.29.244.0/22"
    networks = config["global_overrides"]["provider_networks"]
    pod1 = networks[0]["network"]
    pod1["reference_group"] = "pod1_hosts"
    pod2 = dict(pod1, ip_from_q="pod2_management", reference_group="pod2_hosts")
    networks.append({"network": pod2})
    del config["shared_infra_hosts"]["infra2"]
    config["shared_infra_hosts"]["infra3"] = {"ip": "172.29.244.13"}
    config["pod1_hosts"] = {h: {"ip": v["ip"]} for h, v in config["shared_infra_hosts"].items() if h != "infra3"}
    config["pod1_hosts"]["compute1"] = {"ip": "172.29.236.21"}
    config["pod2_hosts"] = {"infra3": {"ip": "172.29.244.13"}}
    small.save_config(config)
    done = small.manage("--move", galera, "--to", "infra3")
    assert done.returncode == 0, done.stderr
    (new,) = [n for n in hostvars(small.stored()) if n.startswith("infra3-galera")]
    hv = hostvars(small.stored())[new]
    assert ipaddress_in(hv["ansible_host"], "172.29.244.0/22")
    tunnel = old["container_networks"]["tunnel_address"]["address"]
    assert hv["container_networks"]["tunnel_address"]["address"] == tunnel  # that network binds infra3 too
    assert "new addresses on the new host's networks" in done.stdout
    printed = small.generate()
    assert hostvars(printed)[new]["ansible_host"] == hv["ansible_host"]
    assert_next_run_keeps(small)


def ipaddress_in(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


# -- attacks: concurrent edits, another file -------------------------------------------------------------

def test_two_concurrent_edits_for_one_address_give_it_to_one_entry(small):
    """However they interleave, the check is made again under the lock, so the second sees the first's write."""
    stored = small.stored()
    names = [container(stored, "infra1", "memcached"), container(stored, "infra2", "memcached")]
    cmd = [sys.executable, MANAGE, "--config", small.config_dir, "--set-address"]
    env = clean_env({"OSA_INI": small.ini})
    procs = [subprocess.Popen(cmd + [name, "management=172.29.236.240"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in names]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(r[0] for r in results) == [0, 1], results
    (winner,) = [n for n, r in zip(names, results) if r[0] == 0]
    (loser,) = [r for r in results if r[0] == 1]
    assert loser[2].count("\n") == 1 and f"172.29.236.240 is {winner}'s address" in loser[2]
    holders = [n for n, hv in hostvars(small.stored()).items() if hv.get("ansible_host") == "172.29.236.240"]
    assert holders == [winner]


def test_edits_on_a_file_named_with_f(small, tmp_path):
    copy = tmp_path / "saved-inventory.json"
    copy.write_text(json.dumps(small.stored()), encoding="utf-8")
    galera = container(small.stored(), "infra1", "galera")
    before = snapshot(small.inventory_path)
    proc = small.manage("-f", str(copy), "--set-address", galera, "management=172.29.236.250")
    assert proc.returncode == 0, proc.stderr
    proc = small.manage("-f", str(copy), "--rename", galera, galera.replace("-", "_", 3))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(copy.read_text(encoding="utf-8"))
    assert hostvars(saved)[galera.replace("-", "_", 3)]["ansible_host"] == "172.29.236.250"
    assert snapshot(small.inventory_path) == before  # the configured backend was not touched
    assert [r["command"].split()[1] for r in history(small, "-f", str(copy))[-2:]] == ["--set-address", "--rename"]


def test_move_to_a_host_the_run_already_filled_follows_the_refusals_advice(small):
    """The inventory ran after the config change: infra3 has a new, empty galera container; -r it, then move."""
    galera = container(small.stored(), "infra2", "galera")
    address = hostvars(small.stored())[galera]["ansible_host"]
    replace_failed_host(small, "infra2", "infra3", "172.29.236.13")
    small.generate()
    fresh = container(small.stored(), "infra3", "galera")
    assert_one_line_error(small.manage("--move", galera, "--to", "infra3"),
                          f"infra3 already has the 1 galera_container container(s) the config asks for ({fresh})",
                          "or remove it with -r first")
    assert small.manage("-r", fresh).returncode == 0
    done = small.manage("--move", galera, "--to", "infra3")
    assert done.returncode == 0, done.stderr
    (moved,) = [n for n in hostvars(small.stored()) if n.startswith("infra3-galera")]
    assert hostvars(small.stored())[moved]["ansible_host"] == address
    assert_next_run_keeps(small)
