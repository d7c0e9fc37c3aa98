"""Re-runs on a stored inventory: what each kind of config change keeps and what it changes.

Every test takes a stored inventory (``before``, generated from one config) through one kind of
config change and checks the whole result (``after``) against the rules of docs/behaviour.md,
not against a snapshot. The rules, as :func:`expected_rerun` applies them:

* what the new config says wins: ``after`` agrees with a run of the new config from an empty store
  (``fresh``) on every group member and every host variable, except the addresses of containers;
* what the new config no longer says persists: every host, container, group, member and variable
  of ``before`` is still there, with its value, unless the new config gives it a new one;
* identities persist: a container keeps its name and every address it had; new addresses are free
  addresses of their pool;
* some things are rebuilt each run: ``all.vars``, ``lxc_hosts``, the network entries of bare-metal
  hosts, a container's ``physical_host_addr``, the top-level ``gateway``.

Each test then spells out what must have changed for a deployer, so a rule that is wrong in the
same way in both runs is still caught.
"""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest

from helpers import ENVIRONMENT, base_config, containers_of, last_pass, write_config
from osa_inventory.generate.addresses import parse_used_ips
from osa_inventory.generate.config import load_skeleton
from osa_inventory.generate.pipeline import generate

ADDRESS_KEYS = ("ansible_host", "management_address")
IDENTITY_KEYS = ("component", "physical_host", "physical_host_group")


@pytest.fixture(scope="module")
def skel(tmp_path_factory):
    return load_skeleton(ENVIRONMENT, str(tmp_path_factory.mktemp("noconfig")))


def hostvars(inv: dict) -> dict:
    return inv["_meta"]["hostvars"]


def groups(inv: dict) -> dict[str, dict]:
    return {k: v for k, v in inv.items() if k not in ("_meta", "all")}


def is_container(hv: dict) -> bool:
    return not (hv.get("properties") or {}).get("is_metal")


def member_sets(group: dict) -> dict:
    """A group with its member lists as sets (the order is checked by the idempotence rule)."""
    return {k: set(v) if k in ("hosts", "children") else v for k, v in group.items()}


def without_addresses(hv: dict) -> dict:
    """A container's variables with every address taken out (they are checked on their own)."""
    out = {k: v for k, v in hv.items() if k not in ADDRESS_KEYS}
    out["container_networks"] = {
        key: {k: v for k, v in entry.items() if k != "address"}
        for key, entry in (hv.get("container_networks") or {}).items()}
    return out


def addresses(hv: dict) -> dict:
    """Every address a container holds, by where it is held."""
    out = {k: hv.get(k) for k in ADDRESS_KEYS}
    for key, entry in (hv.get("container_networks") or {}).items():
        out[key] = entry.get("address")
    return out


def expected_rerun(before: dict, fresh: dict) -> tuple[dict, dict]:
    """The groups and the address-free hostvars a re-run must produce (see the module doc)."""
    exp_groups: dict[str, dict] = {}
    for name in set(groups(before)) | set(groups(fresh)):
        old, new = groups(before).get(name), groups(fresh).get(name)
        shape = old if old is not None else new
        merged = {}
        for key in shape:
            if key in ("hosts", "children"):
                merged[key] = set((old or {}).get(key) or ()) | set((new or {}).get(key) or ())
            else:  # anything else a group holds (group vars) is kept as stored
                merged[key] = shape[key]
        exp_groups[name] = merged
    exp_hostvars: dict[str, dict] = {}
    for name in set(hostvars(before)) | set(hostvars(fresh)):
        old, new = hostvars(before).get(name), hostvars(fresh).get(name)
        merged = {**(old or {}), **(new or {})}
        if new is not None and "gateway" not in new:
            merged.pop("gateway", None)  # rebuilt from the networks that bind the host
        if is_container(merged) and old is not None and new is not None:
            # Network entries come from the config, but entries of networks it dropped stay.
            merged["container_networks"] = {**old["container_networks"], **new["container_networks"]}
            # What a container is was settled when it was made.
            for key in IDENTITY_KEYS:
                merged[key] = old.get(key)
            merged["container_name"] = old.get("container_name") or name
        elif old is not None and new is not None and new["component"] is None:
            merged["component"] = old["component"]  # runs no service itself now: nothing replaces it
        elif old is not None and new is not None and (old["component"], old["physical_host_group"]) != (
                new["component"], new["physical_host_group"]):
            # A bare-metal host's role, once stored, stays while it still is one of the host's roles.
            if name in groups(fresh).get(old["component"] or "", {}).get("hosts", ()) and \
                    name in groups(fresh).get(old["physical_host_group"] or "", {}).get("hosts", ()):
                merged["component"], merged["physical_host_group"] = old["component"], old["physical_host_group"]
        exp_hostvars[name] = without_addresses(merged) if is_container(merged) else merged
    for name, hv in exp_hostvars.items():
        if not is_container(hv):
            hv["container_networks"] = metal_networks(name, hv, exp_groups, fresh)
    lxc = {hv["physical_host"] for name, hv in exp_hostvars.items()
           if hv["physical_host"] != name and hv["container_tech"] == "lxc"}
    exp_groups["lxc_hosts"] = {"hosts": lxc}
    return exp_groups, exp_hostvars


def members(groups_: dict[str, dict], name: str) -> set[str]:
    """Hosts of a group and of all its descendants."""
    group = groups_.get(name) or {}
    out = set(group.get("hosts") or ())
    for child in group.get("children") or ():
        out |= members(groups_, child)
    return out


def metal_networks(host: str, hv: dict, exp_groups: dict, fresh: dict) -> dict:
    """A bare-metal host's network entries: rebuilt each run for every network bound to a group it is in.

    The entry of each network is the one every bare-metal host gets from the config (taken from the
    fresh run); on the management network its address is the host's own.
    """
    template: dict[str, dict] = {}
    for other in hostvars(fresh).values():
        if not is_container(other):
            for key, entry in other["container_networks"].items():
                template[key] = {k: v for k, v in entry.items() if k != "address"}
    out = {}
    for net in (e["network"] for e in fresh["all"]["vars"]["provider_networks"]):
        assert "reference_group" not in net  # not modelled here
        if any(host in members(exp_groups, g) for g in net["group_binds"]):
            key = f"{net.get('address_prefix') or net.get('ip_from_q') or net['container_interface']}_address"
            out[key] = dict(template[key])
            if net.get("is_management_address"):
                out[key]["address"] = hv["management_address"]
    return out


def check_rerun(before: dict, config: dict, skel, fresh: dict | None = None) -> dict:
    """Run ``config`` on the stored ``before`` and check every rule of the module doc; return ``after``."""
    frozen = json.dumps(before, sort_keys=True)
    after = generate(config, skel, before)
    assert json.dumps(before, sort_keys=True) == frozen, "the stored inventory was modified in place"
    fresh = fresh if fresh is not None else generate(config, skel)

    exp_groups, exp_hostvars = expected_rerun(before, fresh)
    assert {name: member_sets(g) for name, g in groups(after).items()} == exp_groups
    got = {name: without_addresses(hv) if is_container(hv) else hv for name, hv in hostvars(after).items()}
    assert got == exp_hostvars

    # all.vars is the new config's, rebuilt.
    assert after["all"] == fresh["all"]
    # Containers keep every address they had; a container's management address is its ansible_host.
    for name, hv in hostvars(after).items():
        if not is_container(hv):
            continue
        if name in hostvars(before):
            now = addresses(hv)
            for key, address in addresses(hostvars(before)[name]).items():
                if address is not None:
                    assert now[key] == address, (name, key)
        mgmt = (hv["container_networks"].get("management_address") or {}).get("address")
        if mgmt:
            assert hv["ansible_host"] == hv["management_address"] == mgmt, name
        # physical_host_addr follows the host's current address.
        assert hv["physical_host_addr"] == hostvars(after)[hv["physical_host"]]["ansible_host"], name
    check_addresses(after, config)
    # The result is the steady state: running again changes nothing, not even an order.
    assert json.dumps(generate(config, skel, after)) == json.dumps(after)
    return after


def check_addresses(inv: dict, config: dict) -> None:
    """Container addresses are unique, inside their pool, outside used_ips and hosts' own addresses."""
    used = parse_used_ips(config.get("used_ips"))
    host_ips = {str(s.get(k)) for key, group in config.items() if key.endswith("hosts")
                for s in group.values() for k in ("ip", "management_ip") if s.get(k)}
    pools = {f"{q}_address": ipaddress.ip_network(c) for q, c in config["cidr_networks"].items()}
    seen: dict[str, str] = {}
    for name, hv in hostvars(inv).items():
        if not is_container(hv):
            continue
        for key, entry in hv["container_networks"].items():
            address = entry.get("address")
            if address is None:
                continue
            ip = ipaddress.ip_address(address)
            assert address not in seen, (name, key, address, seen.get(address))
            seen[address] = name
            assert address not in host_ips, (name, address)
            if key in pools:
                assert ip in pools[key] and ip not in (pools[key].network_address, pools[key].broadcast_address)
            assert not any(v == ip.version and lo <= int(ip) <= hi for v, lo, hi in used), (name, address)


def new_entries(before: dict, after: dict) -> set[str]:
    return set(hostvars(after)) - set(hostvars(before))


def types_on(inv: dict, host: str) -> dict[str, list[str]]:
    """``{container type: names}`` of a host's containers."""
    out: dict[str, list[str]] = {}
    for name in containers_of(inv, host):
        out.setdefault(name[len(host) + 1:].rsplit("-", 1)[0], []).append(name)
    return out


def infra(config: dict) -> list[str]:
    """The config groups the base config's infra hosts are listed in."""
    return [k for k, v in config.items() if k.endswith("_hosts") and "infra1" in v]


# -- hosts -----------------------------------------------------------------------------------------

def test_host_added_gets_containers_and_nothing_else_moves(skel):
    before = generate(base_config(), skel)
    config = base_config()
    for group in infra(config):
        config[group]["infra3"] = {"ip": "172.29.236.13"}
    after = check_rerun(before, config, skel)
    # Everything that existed is exactly as it was.
    assert {n: hostvars(after)[n] for n in hostvars(before)} == hostvars(before)
    # infra3 runs one container of each type infra1 runs, named like infra1's.
    assert {t: len(n) for t, n in types_on(after, "infra3").items()} == \
        {t: len(n) for t, n in types_on(before, "infra1").items()}
    assert new_entries(before, after) == {"infra3"} | set(containers_of(after, "infra3"))
    assert "infra3" in after["lxc_hosts"]["hosts"]


def test_host_removed_from_the_config_stays_in_the_inventory(skel):
    before = generate(base_config(), skel)
    config = base_config()
    for group in infra(config):
        config[group].pop("infra2", None)
    after = check_rerun(before, config, skel)
    assert after == before  # its containers keep their names, addresses and groups


def test_host_without_containers_any_more_leaves_lxc_hosts(skel):
    # infra2 stops running infrastructure services: it leaves the infra groups and the operator
    # removes its containers with inventory-manage; it stays as a compute host.
    from osa_inventory.inventory.edits import remove_hosts
    stored = generate(base_config(), skel)
    config = base_config()
    for group in infra(config):
        config[group].pop("infra2", None)
    config["compute_hosts"]["infra2"] = {"ip": "172.29.236.12"}
    remove_hosts(stored, containers_of(stored, "infra2"))
    assert "infra2" in stored["lxc_hosts"]["hosts"]  # inventory-manage leaves that to the next run
    after = check_rerun(stored, config, skel)
    assert after["lxc_hosts"] == {"hosts": ["infra1"]}
    assert containers_of(after, "infra2") == [] and "infra2" in after["nova_compute"]["hosts"]


def test_host_readdressed_moves_its_containers_physical_host_addr_only(skel):
    before = generate(base_config(), skel)
    config = base_config()
    for group in infra(config):
        config[group]["infra1"]["ip"] = "172.29.236.111"
    after = check_rerun(before, config, skel)
    infra1 = hostvars(after)["infra1"]
    assert infra1["ansible_host"] == infra1["management_address"] == infra1["physical_host_addr"] == "172.29.236.111"
    assert infra1["container_networks"]["management_address"]["address"] == "172.29.236.111"
    for name in containers_of(after, "infra1"):
        assert hostvars(after)[name]["physical_host_addr"] == "172.29.236.111"
        assert addresses(hostvars(after)[name]) == addresses(hostvars(before)[name])


def test_readdressed_host_address_is_reserved_for_new_containers(skel):
    before = generate(base_config(), skel)
    config = base_config()
    taken = {a for hv in hostvars(before).values() if is_container(hv) for a in addresses(hv).values() if a}
    # The lowest free management address: the next container would get it if the host did not hold it.
    free = next(str(ip) for ip in ipaddress.ip_network("172.29.236.0/22").hosts()
                if int(ip) > int(ipaddress.ip_address("172.29.236.50")) and str(ip) not in taken)
    config["compute_hosts"]["compute1"]["ip"] = free
    config["compute_hosts"]["compute1"]["management_ip"] = "172.29.236.121"
    for group in infra(config):
        config[group]["infra3"] = {"ip": "172.29.236.13"}
    after = check_rerun(before, config, skel)
    assert hostvars(after)["compute1"]["ansible_host"] == free
    assert hostvars(after)["compute1"]["management_address"] == "172.29.236.121"
    assert hostvars(after)["compute1"]["container_networks"]["management_address"]["address"] == "172.29.236.121"


def test_host_moved_to_another_group_joins_it_and_keeps_its_past(skel):
    before = generate(base_config(), skel)
    config = base_config()
    config["storage_hosts"]["compute1"] = config["compute_hosts"].pop("compute1")
    config["compute_hosts"] = {"compute2": {"ip": "172.29.236.22"}}
    after = check_rerun(before, config, skel)
    c1 = hostvars(after)["compute1"]
    # Now a storage host: it runs the storage services and says so ...
    assert "compute1" in after["storage_hosts"]["hosts"] and "compute1" in after["cinder_volume"]["hosts"]
    assert (c1["component"], c1["physical_host_group"]) == ("cinder_backup", "storage_hosts")
    assert "storage_address" in c1["container_networks"]
    # ... and what it was is not taken away by a generate run.
    assert "compute1" in after["compute_hosts"]["hosts"] and "compute1" in after["nova_compute"]["hosts"]


def test_container_vars_of_a_host_in_several_groups(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["container_vars"] = {"tier": "shared", "only_shared": 1}
    config["image_hosts"]["infra1"]["container_vars"] = {"tier": "image", "only_image": 2}
    before = generate(base_config(), skel)
    after = check_rerun(before, config, skel)
    # Each group's variables reach the host and all its containers; where two groups set one
    # variable, the group whose container types are handled last sets it last.
    winner = max(("shared", "image"), key=lambda t: last_pass(skel, f"{t}_infra_hosts" if t == "shared"
                                                                    else f"{t}_hosts"))
    for name in ["infra1"] + containers_of(after, "infra1"):
        v = hostvars(after)[name]
        assert (v["tier"], v["only_shared"], v["only_image"]) == (winner, 1, 2), name
    assert all("tier" not in hostvars(after)[n] for n in ["infra2"] + containers_of(after, "infra2"))


def test_gateways_follow_the_networks_that_bind_each_host(skel):
    config = base_config()
    nets = config["global_overrides"]["provider_networks"]
    nets[0]["network"]["gateway"] = "172.29.236.1"  # management: every host and container
    before = generate(base_config(), skel)
    after = check_rerun(before, config, skel)
    assert {hv.get("gateway") for hv in hostvars(after).values()} == {"172.29.236.1"}
    # A second network with a gateway, bound after the management one, wins where it binds.
    nets[2]["network"]["gateway"] = "172.29.244.1"
    again = check_rerun(after, config, skel)
    storage_bound = set().union(*(again[g]["hosts"] for g in nets[2]["network"]["group_binds"]))
    for name, hv in hostvars(again).items():
        assert hv["gateway"] == ("172.29.244.1" if name in storage_bound else "172.29.236.1"), name
    # Dropped from the config: the variable goes, except where the deployer sets it for a host.
    config = base_config()
    config["storage_hosts"]["storage1"]["host_vars"] = {"gateway": "172.29.236.254"}
    config["shared_infra_hosts"]["infra2"]["container_vars"] = {"gateway": "172.29.236.253"}
    last = check_rerun(again, config, skel)
    own = {n: hv["gateway"] for n, hv in hostvars(last).items() if "gateway" in hv}
    assert own == {"storage1": "172.29.236.254",
                   **{n: "172.29.236.253" for n in ["infra2"] + containers_of(last, "infra2")}}


# -- the environment (env.d) -----------------------------------------------------------------------

def skeleton_with(tmp_path, override: dict):
    """The shipped skeleton with one override file in the config's env.d."""
    write_config(str(tmp_path / "env.d"), override, "override.yml")
    return load_skeleton(ENVIRONMENT, str(tmp_path))


def test_service_added_in_env_d(skel, tmp_path):
    before = generate(base_config(), skel)
    more = skeleton_with(tmp_path, {
        "component_skel": {"tinker": {"belongs_to": ["tinker_all"]}},
        "container_skel": {"tinker_container": {"belongs_to": ["shared_infra_containers"],
                                                "contains": ["tinker"]}}})
    after = check_rerun(before, base_config(), more, fresh=generate(base_config(), more))
    assert {n: hostvars(after)[n] for n in hostvars(before)} == hostvars(before)
    new = sorted(new_entries(before, after))
    assert [n.rsplit("-", 1)[0] for n in new] == ["infra1-tinker-container", "infra2-tinker-container"]
    assert set(after["tinker"]["hosts"]) == set(after["tinker_container"]["hosts"]) == set(new)
    assert after["tinker_all"]["children"] == ["tinker"]
    assert set(new) <= set(after["shared_infra_all"]["hosts"])
    for name in new:
        assert name in after[f"{hostvars(after)[name]['physical_host']}_host_containers"]["hosts"]
        assert hostvars(after)[name]["component"] == "tinker"


def test_service_removed_from_env_d_keeps_what_exists(skel, tmp_path):
    before = generate(base_config(), skel)
    fewer = skeleton_with(tmp_path, {"container_skel": {"galera_container": {}}})
    after = check_rerun(before, base_config(), fewer, fresh=generate(base_config(), fewer))
    assert after == before


def test_skeleton_properties_reach_existing_containers(skel, tmp_path):
    before = generate(base_config(), skel)
    changed = skeleton_with(tmp_path, {"container_skel": {"galera_container": {
        "properties": {"service_name": "galera", "mariadb_server": True}}}})
    config = base_config()
    for group in infra(config):
        config[group]["infra3"] = {"ip": "172.29.236.13"}
    after = check_rerun(before, config, changed, fresh=generate(config, changed))
    galeras = after["galera_container"]["hosts"]
    assert len(galeras) == 3
    for name in galeras:
        assert hostvars(after)[name]["properties"] == {"service_name": "galera", "mariadb_server": True}
    for name in containers_of(after, "infra1"):
        if name not in galeras:
            assert hostvars(after)[name]["properties"] == hostvars(before)[name]["properties"] == {}


# -- affinity --------------------------------------------------------------------------------------

def test_affinity_raised_adds_containers_named_by_ordinal(skel):
    before = generate(base_config(), skel)
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 3}
    after = check_rerun(before, config, skel)
    rabbits = types_on(after, "infra1")["rabbit-mq-container"]
    assert len(rabbits) == 3
    assert new_entries(before, after) == set(rabbits) - set(hostvars(before))
    assert len(set(rabbits) & set(hostvars(before))) == 1
    # The same config from an empty store gives the same three names: lost, they come back.
    assert sorted(types_on(generate(config, skel), "infra1")["rabbit-mq-container"]) == sorted(rabbits)


def test_affinity_lowered_keeps_every_container(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 3, "galera_container": 2}
    before = generate(config, skel)
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 0}
    after = check_rerun(before, config, skel)
    assert after == before


# -- no_containers ---------------------------------------------------------------------------------

def test_no_containers_switched_on_for_a_host(skel):
    before = generate(base_config(), skel)
    config = base_config()
    for group in infra(config):
        config[group].get("infra2", {})["no_containers"] = True
    after = check_rerun(before, config, skel)
    # infra2 runs the services itself from now on; its containers are not taken away.
    for component in ("galera", "rabbitmq", "keystone", "glance_api"):
        assert "infra2" in after[component]["hosts"], component
    assert containers_of(after, "infra2") == containers_of(before, "infra2")
    assert "infra1" not in after["galera"]["hosts"]


def test_no_containers_switched_off_for_a_host(skel):
    config = base_config()
    for group in infra(config):
        config[group].get("infra2", {})["no_containers"] = True
    before = generate(config, skel)
    assert containers_of(before, "infra2") == []
    after = check_rerun(before, base_config(), skel)
    assert types_on(after, "infra2").keys() == types_on(after, "infra1").keys()
    assert "infra2" in after["lxc_hosts"]["hosts"]


def test_global_no_containers_puts_every_service_on_its_host(skel):
    config = base_config()
    config["global_overrides"]["no_containers"] = True
    inv = generate(config, skel)
    assert [n for n, hv in hostvars(inv).items() if is_container(hv)] == []
    assert inv["lxc_hosts"] == {"hosts": []}
    for host, component in (("infra1", "galera"), ("infra2", "keystone"), ("compute1", "nova_compute")):
        assert host in inv[component]["hosts"]
    # Switched on over a stored inventory: containers stay, hosts join their services' groups.
    before = generate(base_config(), skel)
    after = check_rerun(before, config, skel)
    assert containers_of(after, "infra1") == containers_of(before, "infra1")
    assert "infra1" in after["galera"]["hosts"]


def test_a_top_level_no_containers_is_not_a_setting(skel):
    # OSA reads no_containers from global_overrides only.
    config = base_config()
    config["no_containers"] = True
    assert hostvars(generate(config, skel)) == hostvars(generate(base_config(), skel))


# -- what others put in the stored inventory -------------------------------------------------------

def test_operator_groups_links_and_group_keys_are_kept(skel):
    before = generate(base_config(), skel)
    before["galera_all"]["children"].append("db_extras")
    before["db_extras"] = {"children": [], "hosts": ["compute1"], "vars": {"x": 1}}
    before["galera"]["hosts"].append("compute1")
    after = check_rerun(before, base_config(), skel)
    assert after["db_extras"] == {"children": [], "hosts": ["compute1"], "vars": {"x": 1}}
    assert after["galera_all"]["children"][-1] == "db_extras"
    assert "compute1" in after["galera"]["hosts"]


def test_an_older_inventory_gets_the_keys_playbooks_read(skel):
    before = generate(base_config(), skel)
    galera = types_on(before, "infra1")["galera-container"][0]
    for key in ("container_name", "container_tech", "component", "properties", "physical_host_group"):
        del hostvars(before)[galera][key]
    after = check_rerun(before, base_config(), skel)
    g = hostvars(after)[galera]
    assert (g["container_name"], g["container_tech"], g["component"], g["properties"]) == (galera, "lxc", None, {})


def test_ips_cleared_by_the_operator_are_handed_out_again(skel):
    from osa_inventory.inventory.edits import clear_ips
    before = generate(base_config(), skel)
    clear_ips(before)
    after = check_rerun(before, base_config(), skel)
    assert hostvars(after) == hostvars(generate(base_config(), skel))
