"""Layouts of OpenStack-Ansible's own example configs, through the real script with a default osa.ini.

Each config in tests/fixtures/osa_layouts/ is written for this project and reproduces what matters
in one kind of OSA example (its README says which). OSA's generator accepts each of them; so must
we, with OSA's groups, memberships and host variables: the values asserted here are those OSA's
generator settles on for the same config. Every config is also stable (a second run stores nothing)
and an inventory OSA stored for it is adopted unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil

import pytest
import yaml

from helpers import (INVENTORY, ROOT, adopts_unchanged, as_osa_stored, base_config, containers_of, run_ok,
                     run_script, write_config, write_ini)

LAYOUTS = os.path.join(ROOT, "tests", "fixtures", "osa_layouts")
USER_CONFIG = "openstack_user_config.yml"
USER_GROUPS = ("User-defined host groups (env.d does not know them; as in OSA, each is a group of its hosts "
               "and gives them no containers):")


def deploy(tmp_path, layout: str) -> tuple[str, str]:
    """A copy of the layout's config folder and a default osa.ini."""
    config_dir = str(tmp_path / "deploy")
    shutil.copytree(os.path.join(LAYOUTS, layout), config_dir)
    return config_dir, write_ini(str(tmp_path))


def check(config_dir: str, ini: str) -> list[str]:
    """What ``--check`` prints; it must succeed and store nothing (its warnings go to inventory.log)."""
    before = set(os.listdir(config_dir)) - {"inventory.log"}
    result = run_script(config_dir, "--check", ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert set(os.listdir(config_dir)) - {"inventory.log"} == before
    return result.stdout.splitlines()


def in_net(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def hostvars(inv: dict) -> dict:
    return inv["_meta"]["hostvars"]


def the_container(inv: dict, host: str, kind: str) -> dict:
    names = [n for n in containers_of(inv, host) if f"-{kind}-container-" in n]
    assert len(names) == 1, names
    return hostvars(inv)[names[0]]


def cidrs_of(config_dir: str) -> dict:
    with open(os.path.join(config_dir, USER_CONFIG)) as fh:
        return yaml.safe_load(fh)["cidr_networks"]


@pytest.mark.parametrize("layout", ["zones", "anchors", "pods", "twins", "release_2023", "dashed_env_d"])
def test_every_layout_is_stable_and_an_osa_stored_inventory_is_adopted(tmp_path, layout):
    config_dir, ini = deploy(tmp_path, layout)
    first = run_ok(config_dir, ini)
    path = os.path.join(config_dir, INVENTORY)
    before = os.stat(path).st_mtime_ns
    assert run_ok(config_dir, ini) == first and os.stat(path).st_mtime_ns == before
    adopts_unchanged(config_dir, ini, as_osa_stored(first, cidrs_of(config_dir)))


# -- availability zones ------------------------------------------------------------------------------

def test_zone_groups_as_osa_makes_them(tmp_path):
    inv = run_ok(*deploy(tmp_path, "zones"))
    # The config's own groups: hosts only, in config order, and none of them under "hosts".
    assert inv["az1_controller_hosts"] == {"hosts": ["ctl-a1"]}
    assert inv["az2_controller_hosts"] == {"hosts": ["ctl-b1"]}
    assert inv["az1_compute_hosts"] == {"hosts": ["cmp-a1", "cmp-a2"]}
    assert inv["az2_compute_hosts"] == {"hosts": ["cmp-b1"]}
    # env.d's zone groups: the zone's hosts (merged from the anchors) and its hosts' containers.
    assert inv["az1_hosts"] == {"hosts": ["ctl-a1", "cmp-a1", "cmp-a2"]}
    assert inv["az2_hosts"] == {"hosts": ["ctl-b1", "cmp-b1"]}
    assert sorted(inv["az1_all"]["children"]) == ["az1_containers", "az1_hosts"] and inv["az1_all"]["hosts"] == []
    assert inv["az1_containers"] == {"children": ["ctl-a1_host_containers"], "hosts": []}
    assert inv["az2_containers"] == {"children": ["ctl-b1_host_containers"], "hosts": []}
    assert not {g for g in inv["hosts"]["children"] if g.startswith("az")}
    assert inv["shared_infra_hosts"] == {"hosts": ["ctl-a1", "ctl-b1"]}
    assert sorted(inv["compute_hosts"]["hosts"]) == ["cmp-a1", "cmp-a2", "cmp-b1"]


def test_each_zone_takes_storage_addresses_from_its_own_pool(tmp_path):
    inv = run_ok(*deploy(tmp_path, "zones"))
    for host, pool in (("ctl-a1", "10.40.8.0/24"), ("ctl-b1", "10.40.9.0/24")):
        storage = the_container(inv, host, "glance")["container_networks"]["storage_address"]
        assert in_net(storage["address"], pool) and storage["interface"] == "eth2"
        assert "storage_address" not in hostvars(inv)[host]["container_networks"]
    for host in ("cmp-a1", "cmp-a2", "cmp-b1"):
        assert hostvars(inv)[host]["container_networks"]["storage_address"] == {
            "bridge": "br-storage", "netmask": "255.255.255.0", "type": "veth"}
        assert hostvars(inv)[host]["physical_host_group"] == "compute_hosts"


def test_check_lists_the_zones_user_defined_groups(tmp_path):
    assert check(*deploy(tmp_path, "zones")) == [
        "Configuration ok!", USER_GROUPS,
        "  az1_compute_hosts: cmp-a1, cmp-a2",
        "  az1_controller_hosts: ctl-a1",
        "  az2_compute_hosts: cmp-b1",
        "  az2_controller_hosts: ctl-b1"]


# -- anchor holders ----------------------------------------------------------------------------------

def test_an_anchor_holding_hosts_group_is_a_group_and_other_anchor_keys_are_none(tmp_path):
    config_dir, ini = deploy(tmp_path, "anchors")
    inv = run_ok(config_dir, ini)
    assert inv["_infrastructure_hosts"] == {"hosts": ["ctl1", "ctl2", "ctl3"]}
    assert "_infrastructure_hosts" not in inv["hosts"]["children"]
    assert "_storage" not in inv and inv["storage_hosts"] == {"hosts": ["blk1"]}
    hv = hostvars(inv)
    for host in ("ctl1", "ctl2", "ctl3"):
        # The last group listing the host names it; the anchor holder comes first.
        assert hv[host]["physical_host_group"] == "load_balancer_hosts"
        assert hv[host]["container_types"] == f"{host}_host_containers"
        assert the_container(inv, host, "galera")["physical_host_group"] == "shared_infra_hosts"
    assert hv["blk1"]["cinder_backends"] == {"lvm": {"volume_group": "cinder-volumes"}}
    assert (hv["blk1"]["physical_host_group"], hv["blk1"]["component"]) == ("storage_hosts", "cinder_backup")
    assert inv["cinder_volume"]["hosts"] == ["blk1"]
    assert check(config_dir, ini) == ["Configuration ok!", USER_GROUPS, "  _infrastructure_hosts: ctl1, ctl2, ctl3"]


# -- pods ----------------------------------------------------------------------------------------------

def test_pod_groups_without_env_d_scope_each_pods_networks(tmp_path):
    config_dir, ini = deploy(tmp_path, "pods")
    inv = run_ok(config_dir, ini)
    assert inv["pod1_hosts"] == {"hosts": ["ctl-p1", "hv-p1"]} and inv["pod2_hosts"] == {"hosts": ["ctl-p2"]}
    assert "pod1_hosts" not in inv["hosts"]["children"] and "pod1_all" not in inv
    # The declared "management" network is the site's container_cidr, though no address comes from it.
    assert inv["all"]["vars"]["container_cidr"] == "10.50.0.0/16"
    hv = hostvars(inv)
    for host, ip, pod in (("ctl-p1", "10.50.1.31", "1"), ("hv-p1", "10.50.1.41", "1"), ("ctl-p2", "10.50.2.31", "2")):
        assert hv[host]["container_networks"]["management_address"] == {
            "address": ip, "bridge": "br-mgmt", "netmask": "255.255.255.0", "type": "veth",
            "static_routes": [{"cidr": "10.50.0.0/16", "gateway": f"10.50.{pod}.1"}]}
    assert hv["hv-p1"]["container_networks"]["storage_address"] == {
        "bridge": "br-storage", "netmask": "255.255.255.0", "type": "veth"}
    for host, pod in (("ctl-p1", "1"), ("ctl-p2", "2")):
        glance = the_container(inv, host, "glance")
        networks = glance["container_networks"]
        assert in_net(networks["management_address"]["address"], f"10.50.{pod}.0/24")
        assert glance["ansible_host"] == networks["management_address"]["address"]
        assert in_net(networks["storage_address"]["address"], f"10.51.{pod}.0/24")
    assert check(config_dir, ini) == ["Configuration ok!", USER_GROUPS, "  pod1_hosts: ctl-p1, hv-p1",
                                      "  pod2_hosts: ctl-p2"]


def test_an_unused_network_overlapping_the_pods_is_harmless_a_used_one_is_refused(tmp_path):
    config_dir, ini = deploy(tmp_path, "pods")
    with open(os.path.join(config_dir, USER_CONFIG)) as fh:
        config = yaml.safe_load(fh)
    config["global_overrides"]["provider_networks"][2]["network"]["ip_from_q"] = "management"
    write_config(config_dir, config)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"ERROR: {os.path.join(config_dir, USER_CONFIG)}: cidr_networks.management (10.50.0.0/16) and "
        "cidr_networks.pod1_mgmt (10.50.1.0/24) overlap, so containers would share addresses; make them disjoint"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))


# -- dashed and underscored twins ------------------------------------------------------------------

def test_dashed_names_are_read_as_underscores_and_twins_merge(tmp_path):
    config_dir, ini = deploy(tmp_path, "twins")
    inv = run_ok(config_dir, ini)
    assert inv["my_test_hosts"] == {"hosts": ["ctl1", "solo1", "hv1"]}
    assert not [g for g in inv if "-" in g and not g.endswith("_host_containers")]
    assert inv["storage_infra_hosts"] == {"hosts": ["ctl1"]}
    assert [n.split("-", 1)[1].rsplit("-", 1)[0] for n in inv["cinder_api"]["hosts"]] == ["cinder-api-container"]
    assert check(config_dir, ini) == ["Configuration ok!", USER_GROUPS, "  my_test_hosts: ctl1, solo1, hv1"]


def test_a_host_of_a_user_defined_group_only_is_in_the_inventory_as_osa_leaves_it(tmp_path):
    inv = run_ok(*deploy(tmp_path, "twins"))
    assert hostvars(inv)["solo1"] == {
        "ansible_host": "10.70.3.1", "component": None, "container_name": "solo1", "container_networks": {},
        "container_tech": "lxc", "is_metal": True, "management_address": "10.70.3.1", "physical_host": None,
        "physical_host_addr": None, "physical_host_group": "my_test_hosts", "properties": {"is_metal": True}}
    assert inv["lxc_hosts"] == {"hosts": ["ctl1"]}  # OSA adds a null for solo1


def test_twins_giving_one_host_two_addresses_are_refused(tmp_path):
    # OSA's own test of merged twins: one host, two ip values.
    config = base_config()
    config["conflict-test_hosts"] = {"conflict1": {"ip": "172.29.236.41"}}
    config["conflict_test_hosts"] = {"conflict1": {"ip": "172.29.236.42"}}
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, config)
    result = run_script(config_dir, ini=write_ini(str(tmp_path)))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "ERROR: host conflict1 has ip 172.29.236.41 in conflict-test_hosts but 172.29.236.42 in "
        "conflict_test_hosts; give it one address everywhere"]
    config["conflict_test_hosts"]["conflict1"]["ip"] = "172.29.236.41"   # the advice
    write_config(config_dir, config)
    assert run_ok(config_dir, write_ini(str(tmp_path)))["conflict_test_hosts"] == {"hosts": ["conflict1"]}


def test_an_env_d_spelt_with_dashes_feeds_its_containers_from_the_underscored_group(tmp_path):
    config_dir, ini = deploy(tmp_path, "dashed_env_d")
    inv = run_ok(config_dir, ini)
    placed = inv["legacy_container"]["hosts"]
    assert [n.rsplit("-", 1)[0] for n in placed] == ["ctl1-legacy-container", "ctl2-legacy-container"]
    assert inv["legacy_api"] == {"children": [], "hosts": placed}
    assert inv["legacy_all"] == {"children": ["legacy_api"], "hosts": []}
    assert set(placed) <= set(inv["shared_infra_all"]["hosts"]) and "shared-infra_all" not in inv
    for name in placed:
        hv = hostvars(inv)[name]
        assert (hv["physical_host_group"], hv["component"]) == ("shared_infra_hosts", "legacy_api")
        assert name in inv[f"{hv['physical_host']}_host_containers"]["hosts"]
        assert in_net(hv["container_networks"]["management_address"]["address"], cidrs_of(config_dir)["management"])
    # The env.d's dashed groups stay as spelt there, as OSA leaves them: the host group is empty.
    assert inv["shared-infra_containers"] == {"children": ["legacy_container"], "hosts": []}
    assert inv["shared-infra_hosts"] == {"children": [], "hosts": []}
    assert "shared-infra_hosts" in inv["hosts"]["children"]
    assert check(config_dir, ini) == ["Configuration ok!"]


# -- a config of an earlier release ----------------------------------------------------------------

def test_an_earlier_releases_config_is_taken_with_warnings_in_check_and_the_log(tmp_path):
    config_dir, ini = deploy(tmp_path, "release_2023")
    where = f"{os.path.join(config_dir, USER_CONFIG)}: global_overrides.provider_networks"
    warning = ("group_binds entry 'neutron_linuxbridge_agent' names no group of env.d or the config (one an older "
               "release had?), so it binds only what the stored inventory still holds in that group; remove it "
               "if it is no longer needed")
    assert check(config_dir, ini) == ["Configuration ok!", USER_GROUPS, "  log_hosts: log01",
                                      f"WARNING: {where}[1] {warning}", f"WARNING: {where}[2] {warning}"]
    log = os.path.join(config_dir, "inventory.log")
    with open(log) as fh:
        assert fh.read().count(warning) == 2
    os.remove(log)
    # A normal run: nothing on stderr (Ansible would show it as an error), the warnings in the log.
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    inv = json.loads(result.stdout)
    with open(log) as fh:
        assert fh.read().count(warning) == 2
    assert inv["log_hosts"] == {"hosts": ["log01"]} and "neutron_linuxbridge_agent" not in inv
    assert inv["haproxy_hosts"] == {"hosts": ["infra01", "infra02"]}
    assert inv["haproxy"]["hosts"] == ["infra01", "infra02"]
    assert inv["all"]["vars"]["container_cidr"] == "10.80.0.0/22"
    hv = hostvars(inv)
    assert {h: sorted(hv[h]["container_networks"]) for h in ("infra01", "compute01", "storage01", "log01")} == {
        "infra01": ["container_address"], "compute01": ["container_address", "storage_address"],
        "storage01": ["container_address", "storage_address"], "log01": []}
    assert not [n for n, v in hv.items() if "tunnel_address" in v["container_networks"]]


def test_a_stored_group_env_d_dropped_is_still_bound(tmp_path):
    # An inventory stored before the upgrade still holds the dropped group: OSA binds its members.
    config_dir, ini = deploy(tmp_path, "release_2023")
    first = run_ok(config_dir, ini)
    first["neutron_linuxbridge_agent"] = {"children": [], "hosts": ["compute01"]}
    with open(os.path.join(config_dir, INVENTORY), "w") as fh:
        json.dump(first, fh)
    inv = run_ok(config_dir, ini)
    assert inv["neutron_linuxbridge_agent"] == {"children": [], "hosts": ["compute01"]}
    networks = hostvars(inv)["compute01"]["container_networks"]
    assert networks["tunnel_address"] == {"bridge": "br-vxlan", "netmask": "255.255.252.0", "type": "veth"}
    assert networks["eth12_address"] == {"bridge": "br-vlan", "netmask": None, "type": "veth"}
    assert "tunnel_address" not in hostvars(inv)["infra01"]["container_networks"]


def test_a_near_miss_of_a_group_that_exists_stays_refused_and_both_advices_work(tmp_path):
    config_dir, ini = deploy(tmp_path, "release_2023")
    with open(os.path.join(config_dir, USER_CONFIG)) as fh:
        config = yaml.safe_load(fh)
    config["comptue_hosts"] = {"compute02": {"ip": "10.80.2.2"}}
    write_config(config_dir, config)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"ERROR: {os.path.join(config_dir, USER_CONFIG)}: comptue_hosts is a near miss of env.d's group "
        "compute_hosts, so its hosts would get no containers; did you mean compute_hosts? (if comptue_hosts is "
        "meant, declare it as a group in env.d or set [inventory] unknown_host_groups = warn)"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    # Declared in env.d, as the line says: a group of env.d, under "hosts" as env.d puts it.
    write_config(os.path.join(config_dir, "env.d"), {"physical_skel": {"comptue_hosts": {"belongs_to": ["hosts"]}}},
                 "mine.yml")
    inv = run_ok(config_dir, ini)
    assert inv["comptue_hosts"]["hosts"] == ["compute02"] and "comptue_hosts" in inv["hosts"]["children"]
    # Or kept as OSA keeps it, with the warning.
    shutil.rmtree(os.path.join(config_dir, "env.d"))
    os.remove(os.path.join(config_dir, INVENTORY))
    warn_ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\nunknown_host_groups = warn\n")
    inv = run_ok(config_dir, warn_ini)
    assert inv["comptue_hosts"] == {"hosts": ["compute02"]}
    assert [line for line in check(config_dir, warn_ini) if line.startswith("WARNING: ")
            and "comptue_hosts is a near miss of env.d's group compute_hosts" in line]


# -- OSA's TestL3ProviderNetworkConfig, as a behaviour of ours ----------------------------------------

def test_an_l3_management_network_binds_only_its_reference_group(tmp_path):
    # No 'management' queue: the management network takes pod1_container's addresses, keyed
    # management_address by its address_prefix, for the hosts of the config group pod1_hosts only.
    config = base_config()
    cidrs = config["cidr_networks"]
    cidrs["pod1_container"] = cidrs.pop("management")
    mgmt = config["global_overrides"]["provider_networks"][0]["network"]
    mgmt.update(ip_from_q="pod1_container", address_prefix="management", reference_group="pod1_hosts")
    config["pod1_hosts"] = {"compute2": {"ip": "172.29.236.22"}}
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, config)
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    hv = hostvars(inv)
    assert hv["compute2"]["container_networks"]["management_address"] == {
        "address": "172.29.236.22", "bridge": "br-mgmt", "netmask": "255.255.252.0", "type": "veth"}
    assert "management_address" not in hv["compute1"]["container_networks"]
    assert inv["all"]["vars"]["container_cidr"] == ["172.29.236.0/22"]
    assert inv["pod1_hosts"] == {"hosts": ["compute2"]}
    assert check(config_dir, ini) == ["Configuration ok!", USER_GROUPS, "  pod1_hosts: compute2"]
