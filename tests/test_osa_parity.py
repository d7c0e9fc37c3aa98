"""Configs OpenStack-Ansible accepts give OSA's inventory, through the real script.

Each fixture config here is written for this project; each test asserts the
groups, memberships and hostvars OSA produces for that layout.
"""

import ipaddress
import json
import os

from helpers import (INVENTORY, adopts_unchanged, as_osa_stored, base_config, containers_of, load_json, run_ok,
                     run_script, write_config, write_ini)
from osa_inventory.generate.validate import container_cidr


# -- conf.d and env.d sub-folders -------------------------------------------------------------------


def test_hosts_in_a_conf_d_sub_folder_are_in_the_inventory(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    del config["compute_hosts"]
    write_config(config_dir, config)
    write_config(os.path.join(config_dir, "conf.d", "site"),
                 {"compute_hosts": {"compute7": {"ip": "172.29.236.27"}}}, "hosts.yml")
    write_config(os.path.join(config_dir, "conf.d", "site", "rack2"),
                 {"compute_hosts": {"compute8": {"ip": "172.29.236.28"}}}, "hosts.yaml")
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    assert set(inv["compute_hosts"]["hosts"]) == {"compute7", "compute8"}
    assert {"compute7", "compute8"} <= set(inv["nova_compute"]["hosts"])
    assert inv["_meta"]["hostvars"]["compute8"]["ansible_host"] == "172.29.236.28"
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, config["cidr_networks"]))


def test_a_sub_folder_file_wins_over_the_folders_own_files(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    write_config(os.path.join(config_dir, "conf.d"), {"global_overrides": {"site_name": "top-z"}}, "z.yml")
    write_config(os.path.join(config_dir, "conf.d", "a-site"), {"global_overrides": {"site_name": "a-site"}},
                 "vars.yml")
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert inv["all"]["vars"]["site_name"] == "a-site"
    assert inv["all"]["vars"]["management_bridge"] == "br-mgmt"  # merged, not replaced


def test_env_d_sub_folder_of_the_config_overrides_the_skeleton(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    write_config(os.path.join(config_dir, "env.d", "site"),
                 {"container_skel": {"galera_container": {"properties": {"is_metal": True}}}}, "galera.yml")
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert {"infra1", "infra2"} <= set(inv["galera"]["hosts"])
    assert not inv["galera_container"]["hosts"]


def test_a_broken_link_in_conf_d_is_one_line_and_nothing_is_written(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    os.makedirs(os.path.join(config_dir, "conf.d", "site"))
    link = os.path.join(config_dir, "conf.d", "site", "hosts.yml")
    os.symlink(os.path.join(config_dir, "moved.yml"), link)
    ini = write_ini(str(tmp_path))
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"ERROR: {link} is a link to {config_dir}/moved.yml, which does not exist; fix or remove the link"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    os.remove(link)
    assert run_ok(config_dir, ini)["compute_hosts"]["hosts"] == ["compute1"]
    assert load_json(os.path.join(config_dir, INVENTORY))["compute_hosts"]["hosts"] == ["compute1"]


# -- dashed group_binds ---------------------------------------------------------------------------


def test_dashed_group_binds_bind_the_underscored_group(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    storage = config["global_overrides"]["provider_networks"][2]["network"]
    storage["group_binds"] = ["glance-api", "cinder-api", "cinder_volume", "nova-compute"]
    write_config(config_dir, config)
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    hostvars = inv["_meta"]["hostvars"]
    for name in inv["glance_api"]["hosts"] + inv["cinder_api"]["hosts"]:
        entry = hostvars[name]["container_networks"]["storage_address"]
        assert entry["interface"] == "eth2" and entry["bridge"] == "br-storage"
        assert ipaddress.ip_address(entry["address"]) in ipaddress.ip_network("172.29.244.0/22")
    assert hostvars["compute1"]["container_networks"]["storage_address"] == {
        "bridge": "br-storage", "type": "veth", "netmask": "255.255.252.0"}
    # Keystone is bound by none of them.
    keystone = [n for n in containers_of(inv, "infra1") if "keystone" in n]
    assert keystone and "storage_address" not in hostvars[keystone[0]]["container_networks"]
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, config["cidr_networks"]))


# -- L3 / pod layouts ------------------------------------------------------------------------------

RACK_ENV = {
    "physical_skel": {"rack1_hosts": {"belongs_to": ["rack1_all"]}, "rack2_hosts": {"belongs_to": ["rack2_all"]},
                      "rack1_containers": {"belongs_to": ["rack1_all"]},
                      "rack2_containers": {"belongs_to": ["rack2_all"]}},
    "container_skel": {"rack1_containers": {"properties": {"is_nest": True}},
                       "rack2_containers": {"properties": {"is_nest": True}}},
}
RACKS = {"1": "10.10.1", "2": "10.10.2"}  # rack -> management /24; its storage /24 is 10.20.<rack>


def rack_networks(rack):
    mgmt = {"address_prefix": "management", "container_bridge": "br-mgmt", "container_interface": "eth1",
            "container_type": "veth", "type": "raw", "ip_from_q": f"rack{rack}_mgmt",
            "is_management_address": True, "reference_group": f"rack{rack}_hosts",
            "group_binds": ["all_containers", "hosts"],
            "static_routes": [{"cidr": "10.10.0.0/16", "gateway": f"10.10.{rack}.1"}]}
    storage = {"address_prefix": "storage", "container_bridge": "br-storage", "container_interface": "eth2",
               "container_type": "veth", "type": "raw", "ip_from_q": f"rack{rack}_stor",
               "reference_group": f"rack{rack}_hosts", "group_binds": ["glance_api", "nova_compute"],
               "static_routes": [{"cidr": "10.20.0.0/16", "gateway": f"10.20.{rack}.1"}]}
    return [{"network": mgmt}, {"network": storage}]


def rack_config():
    """Two racks routed at layer 3: each has its own management and storage network, none is 'management'."""
    infra = {"infra-a1": {"ip": "10.10.1.11"}, "infra-b1": {"ip": "10.10.2.11"}}
    config = {
        "cidr_networks": {f"rack{r}_{kind}": f"10.{n}.{r}.0/24" for r in RACKS for kind, n in
                          (("mgmt", 10), ("stor", 20))},
        "used_ips": [f"10.{n}.{r}.1,10.{n}.{r}.30" for r in RACKS for n in (10, 20)],
        "global_overrides": {"internal_lb_vip_address": "10.10.1.9", "external_lb_vip_address": "cloud.example.org",
                             "management_bridge": "br-mgmt",
                             "provider_networks": rack_networks("1") + rack_networks("2")},
        "rack1_hosts": {"infra-a1": {"ip": "10.10.1.11"}},
        "rack2_hosts": {"infra-b1": {"ip": "10.10.2.11"}, "cmp-b1": {"ip": "10.10.2.21"}},
        "compute_hosts": {"cmp-b1": {"ip": "10.10.2.21"}},
    }
    for group in ("shared_infra_hosts", "repo_infra_hosts", "identity_hosts", "image_hosts"):
        config[group] = dict(infra)
    return config


def rack_deploy(tmp_path, config=None):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, config or rack_config())
    write_config(os.path.join(config_dir, "env.d"), RACK_ENV, "racks.yml")
    return config_dir, write_ini(str(tmp_path))


def rack_of(host):
    return "1" if host == "infra-a1" else "2"


def test_pod_layout_container_cidr_is_the_list_of_management_networks(tmp_path):
    inv = run_ok(*rack_deploy(tmp_path))
    assert inv["all"]["vars"]["container_cidr"] == ["10.10.1.0/24", "10.10.2.0/24"]
    assert inv["all"]["vars"]["management_bridge"] == "br-mgmt"


def test_pod_layout_addresses_and_routes_come_from_each_hosts_own_pod(tmp_path):
    inv = run_ok(*rack_deploy(tmp_path))
    hostvars = inv["_meta"]["hostvars"]
    used = set()
    containers = [n for n, v in hostvars.items() if v["physical_host"] != n]
    assert {hostvars[n]["physical_host"] for n in containers} == {"infra-a1", "infra-b1"}
    for name in containers:
        hv = hostvars[name]
        rack = rack_of(hv["physical_host"])
        mgmt = hv["container_networks"]["management_address"]
        assert ipaddress.ip_address(mgmt["address"]) in ipaddress.ip_network(f"10.10.{rack}.0/24")
        assert int(mgmt["address"].rsplit(".", 1)[1]) > 30  # outside used_ips
        assert {k: v for k, v in mgmt.items() if k != "address"} == {
            "bridge": "br-mgmt", "interface": "eth1", "netmask": "255.255.255.0", "type": "veth",
            "static_routes": [{"cidr": "10.10.0.0/16", "gateway": f"10.10.{rack}.1"}]}
        assert hv["ansible_host"] == hv["management_address"] == mgmt["address"]
        assert mgmt["address"] not in used
        used.add(mgmt["address"])
        if name in inv["glance_api"]["hosts"]:
            storage = hv["container_networks"]["storage_address"]
            assert ipaddress.ip_address(storage["address"]) in ipaddress.ip_network(f"10.20.{rack}.0/24")
            assert storage["static_routes"] == [{"cidr": "10.20.0.0/16", "gateway": f"10.20.{rack}.1"}]
        else:
            assert set(hv["container_networks"]) == {"management_address"}
    assert [n for n in inv["glance_api"]["hosts"] if n in containers]
    # Bare-metal hosts: their own address on their pod's management network, their pod's routes, no interface.
    for host, ip in (("infra-a1", "10.10.1.11"), ("infra-b1", "10.10.2.11"), ("cmp-b1", "10.10.2.21")):
        rack = rack_of(host)
        assert hostvars[host]["container_networks"]["management_address"] == {
            "address": ip, "bridge": "br-mgmt", "netmask": "255.255.255.0", "type": "veth",
            "static_routes": [{"cidr": "10.10.0.0/16", "gateway": f"10.10.{rack}.1"}]}
        assert hostvars[host]["ansible_host"] == ip
    assert hostvars["cmp-b1"]["container_networks"]["storage_address"] == {
        "bridge": "br-storage", "netmask": "255.255.255.0", "type": "veth",
        "static_routes": [{"cidr": "10.20.0.0/16", "gateway": "10.20.2.1"}]}
    assert "storage_address" not in hostvars["infra-a1"]["container_networks"]  # no metal glance here


def test_pod_layout_groups_nest_each_pods_containers(tmp_path):
    inv = run_ok(*rack_deploy(tmp_path))
    assert inv["rack1_containers"]["children"] == ["infra-a1_host_containers"]
    assert inv["rack2_containers"]["children"] == ["infra-b1_host_containers"]  # cmp-b1 runs no container
    assert sorted(inv["rack2_all"]["children"]) == ["rack2_containers", "rack2_hosts"]
    assert sorted(inv["rack2_hosts"]["hosts"]) == ["cmp-b1", "infra-b1"]


def test_pod_layout_is_stable_and_an_osa_stored_inventory_is_adopted(tmp_path):
    config_dir, ini = rack_deploy(tmp_path)
    first = run_ok(config_dir, ini)
    path = os.path.join(config_dir, INVENTORY)
    before = os.stat(path).st_mtime_ns
    assert run_ok(config_dir, ini) == first and os.stat(path).st_mtime_ns == before
    adopts_unchanged(config_dir, ini, as_osa_stored(first, rack_config()["cidr_networks"]))


def test_a_reference_group_naming_no_group_is_an_error_whose_advice_works(tmp_path):
    config = rack_config()
    config["global_overrides"]["provider_networks"][1]["network"]["reference_group"] = "rack-1-hosts"
    config_dir, ini = rack_deploy(tmp_path, config)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "ERROR: global_overrides.provider_networks (queue rack1_stor): reference_group 'rack-1-hosts' names no "
        "group; name a host group of the config (e.g. pod1_hosts) or of env.d"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    config["global_overrides"]["provider_networks"][1]["network"]["reference_group"] = "rack1-hosts"  # dashes read as _
    write_config(config_dir, config)
    assert run_ok(config_dir, ini)["all"]["vars"]["container_cidr"] == ["10.10.1.0/24", "10.10.2.0/24"]


def test_no_management_network_at_all_is_an_error_whose_advice_works(tmp_path):
    config = rack_config()
    for entry in config["global_overrides"]["provider_networks"]:
        entry["network"].pop("is_management_address", None)
        entry["network"]["address_prefix"] = entry["network"]["address_prefix"].replace("management", "mgmt")
    del config["global_overrides"]["management_bridge"]
    config_dir, ini = rack_deploy(tmp_path, config)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "ERROR: cidr_networks has neither a 'management' nor a 'container' network, and no provider network "
        "takes management addresses from it (ip_from_q with is_management_address: true or address_prefix: "
        "management); add one"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    for entry in config["global_overrides"]["provider_networks"]:
        if entry["network"]["address_prefix"] == "mgmt":
            entry["network"]["is_management_address"] = True
    write_config(config_dir, config)
    inv = run_ok(config_dir, ini)
    assert inv["all"]["vars"]["container_cidr"] == ["10.10.1.0/24", "10.10.2.0/24"]
    galera = [n for n in inv["galera_container"]["hosts"] if n.startswith("infra-b1")]
    assert inv["_meta"]["hostvars"][galera[0]]["ansible_host"].startswith("10.10.2.")


def test_container_cidr_follows_osa_rules():
    def cidr(cidrs, *nets):
        return container_cidr({"cidr_networks": cidrs,
                               "global_overrides": {"provider_networks": [{"network": n} for n in nets]}})
    both = {"container": "10.1.0.0/24", "management": "10.2.0.0/24", "p1": "10.3.0.0/24"}
    assert cidr(both) == "10.1.0.0/24"  # 'container' first, then 'management', as a string
    assert cidr({"management": "10.2.0.0/24"}) == "10.2.0.0/24"
    pods = {"p1": "10.3.0.0/24", "p2": "10.4.0.0/24", "p3": "10.5.0.0/24", "s": "10.6.0.0/24"}
    assert cidr(pods, {"ip_from_q": "p2", "address_prefix": "container"},
                {"ip_from_q": "p1", "is_container_address": True},
                {"ip_from_q": "p3", "is_management_address": True},
                {"ip_from_q": "s", "address_prefix": "storage"},
                {"ip_from_q": "gone", "is_management_address": True},
                {"address_prefix": "management"}) == ["10.4.0.0/24", "10.3.0.0/24", "10.5.0.0/24"]
    assert cidr(pods, {"ip_from_q": "s", "address_prefix": "storage"}) is None
    # The older is_container_address counts only where is_management_address is absent, as in OSA.
    assert cidr(pods, {"ip_from_q": "p1", "is_management_address": False, "is_container_address": True}) is None


# -- top-level gateway -----------------------------------------------------------------------------


def gateway_config():
    config = base_config()
    nets = config["global_overrides"]["provider_networks"]
    nets[0]["network"]["gateway"] = "172.29.236.1"  # management: every host and container
    nets[2]["network"]["gateway"] = "172.29.244.1"  # storage, bound after it: glance, cinder, nova_compute
    return config


def test_gateway_is_a_top_level_hostvar_of_every_host_its_network_binds(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, gateway_config())
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    hostvars = inv["_meta"]["hostvars"]
    storage_bound = {h for g in ("glance_api", "cinder_api", "cinder_volume", "nova_compute")
                     for h in inv[g]["hosts"]}
    assert {"compute1", "storage1"} <= storage_bound
    for name, hv in hostvars.items():
        expected = "172.29.244.1" if name in storage_bound else "172.29.236.1"
        assert hv["gateway"] == expected, name  # the network bound last wins, as in OSA
        networks = hv["container_networks"]
        assert networks["management_address"]["gateway"] == "172.29.236.1"
        if name in storage_bound:
            assert networks["storage_address"]["gateway"] == "172.29.244.1"
        assert "gateway" not in networks.get("tunnel_address", {})
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, base_config()["cidr_networks"]))


def test_gateway_goes_when_its_network_drops_it_unless_the_host_sets_its_own(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, gateway_config())
    ini = write_ini(str(tmp_path))
    run_ok(config_dir, ini)
    config = base_config()
    config["storage_hosts"]["storage1"]["host_vars"] = {"gateway": "172.29.236.254"}
    config["compute_hosts"]["compute1"]["container_vars"] = {"gateway": "172.29.236.253"}
    write_config(config_dir, config)
    hostvars = run_ok(config_dir, ini)["_meta"]["hostvars"]
    assert hostvars["storage1"]["gateway"] == "172.29.236.254"
    assert hostvars["compute1"]["gateway"] == "172.29.236.253"
    # compute1's container_vars reach its containers too; it runs none, so only the two hosts keep one.
    assert sorted(n for n, hv in hostvars.items() if "gateway" in hv) == ["compute1", "storage1"]
    assert not [e for hv in hostvars.values() for e in hv["container_networks"].values() if "gateway" in e]


# -- optional keys ---------------------------------------------------------------------------------


def test_a_provider_network_without_container_bridge_is_accepted(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    config["global_overrides"]["provider_networks"].append({"network": {
        "net_name": "physnet2", "type": "vlan", "range": "101:200", "network_interface": "bond1",
        "group_binds": ["neutron_ovn_controller"]}})
    write_config(config_dir, config)
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    assert inv["all"]["vars"]["provider_networks"][-1]["network"]["net_name"] == "physnet2"
    # OSA keys an entry by address_prefix, ip_from_q or container_interface: with none of them, 'None'.
    assert inv["_meta"]["hostvars"]["compute1"]["container_networks"]["None_address"] == {"netmask": None}
    assert "None_address" not in inv["_meta"]["hostvars"]["infra1"]["container_networks"]
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, config["cidr_networks"]))


def test_global_no_containers_needs_no_provider_networks(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    config["global_overrides"] = {"no_containers": True, "internal_lb_vip_address": "172.29.236.9"}
    write_config(config_dir, config)
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    hostvars = inv["_meta"]["hostvars"]
    assert sorted(hostvars) == ["compute1", "infra1", "infra2", "storage1"]
    assert set(inv["galera"]["hosts"]) == {"infra1", "infra2"} and inv["galera_container"]["hosts"] == []
    assert inv["lxc_hosts"]["hosts"] == []
    assert inv["all"]["vars"] == {"container_cidr": "172.29.236.0/22", "no_containers": True,
                                  "internal_lb_vip_address": "172.29.236.9"}
    assert all(hv["container_networks"] == {} for hv in hostvars.values())
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, config["cidr_networks"]))


def test_a_top_level_no_containers_key_is_not_a_setting_as_in_osa(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    config["no_containers"] = True
    write_config(config_dir, config)
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert len(inv["galera_container"]["hosts"]) == 2 and "infra1" not in inv["galera"]["hosts"]


# -- deliberate differences: underscored host names in an availability-zone layout ------------------

ZONE_CONFIG = """\
cidr_networks:
  management: 10.0.0.0/22
  storage_zone1: 10.1.1.0/24
  storage_zone2: 10.1.2.0/24
used_ips:
  - "10.0.0.1,10.0.0.20"
global_overrides:
  management_bridge: br-mgmt
  provider_networks:
    - network: {container_bridge: br-mgmt, container_interface: eth1, container_type: veth, type: raw,
                ip_from_q: management, is_management_address: true, group_binds: [all_containers, hosts]}
    - network: {container_bridge: br-storage, container_interface: eth2, container_type: veth, type: raw,
                ip_from_q: storage_zone1, address_prefix: storage_zone1, group_binds: [ceph_all],
                reference_group: zone1_all}
    - network: {container_bridge: br-storage, container_interface: eth2, container_type: veth, type: raw,
                ip_from_q: storage_zone2, address_prefix: storage_zone2, group_binds: [ceph_all],
                reference_group: zone2_all}
zone1_storage: &zone1_storage
  zone1_ceph1: {ip: 10.0.1.21}
  zone1_ceph2: {ip: 10.0.1.22}
zone1_infra: &zone1_infra
  infra1: {ip: 10.0.1.11}
zone2_storage: &zone2_storage
  zone2_ceph1: {ip: 10.0.2.21}
shared_infra_hosts: *zone1_infra
zone1_hosts:
  <<: *zone1_storage
  <<: *zone1_infra
zone2_hosts:
  <<: *zone2_storage
zone1_ceph_mon_hosts: *zone1_storage
zone1_ceph_osd_hosts: *zone1_storage
zone2_ceph_mon_hosts: *zone2_storage
zone2_ceph_osd_hosts: *zone2_storage
"""


def zone_env():
    env = {"component_skel": {}, "container_skel": {}, "physical_skel": {}}
    for z in ("1", "2"):
        env["component_skel"][f"zone{z}_containers"] = {"belongs_to": [f"zone{z}_all"]}
        env["component_skel"][f"zone{z}_hosts"] = {"belongs_to": [f"zone{z}_all"]}
        env["container_skel"][f"zone{z}_containers"] = {"properties": {"is_nest": True}}
        for svc in ("mon", "osd"):
            env["component_skel"][f"ceph_{svc}_zone{z}"] = {"belongs_to": [f"ceph_{svc}", "ceph_all", f"zone{z}_all"]}
            env["container_skel"][f"ceph_{svc}_container_zone{z}"] = {
                "belongs_to": [f"zone{z}_ceph_{svc}_containers"], "contains": [f"ceph_{svc}_zone{z}"],
                **({"properties": {"is_metal": True}} if svc == "osd" else {})}
            env["physical_skel"][f"zone{z}_ceph_{svc}_containers"] = {"belongs_to": ["all_containers"]}
            env["physical_skel"][f"zone{z}_ceph_{svc}_hosts"] = {"belongs_to": ["hosts"]}
    return env


def test_underscored_hosts_of_a_zone_layout_keep_their_containers(tmp_path):
    config_dir = tmp_path / "deploy"
    config_dir.mkdir()
    (config_dir / "openstack_user_config.yml").write_text(ZONE_CONFIG)
    write_config(str(config_dir / "env.d"), zone_env(), "zones.yml")
    ini = write_ini(str(tmp_path))
    inv = run_ok(str(config_dir), ini)
    hostvars = inv["_meta"]["hostvars"]
    assert sorted(inv["zone1_hosts"]["hosts"]) == ["infra1", "zone1_ceph1", "zone1_ceph2"]  # both merges read
    for host, zone in (("zone1_ceph1", "1"), ("zone1_ceph2", "1"), ("zone2_ceph1", "2")):
        mons = containers_of(inv, host)
        assert len(mons) == 1 and mons[0].startswith(f"{host}-ceph-mon-container-zone{zone}-")
        mon = mons[0]
        assert mon in inv[f"ceph_mon_zone{zone}"]["hosts"]
        assert mon in inv[f"zone{zone}_ceph_mon_all"]["hosts"]
        assert inv[f"{host}_host_containers"]["hosts"] == [mon]
        assert f"{host}_host_containers" in inv[f"zone{zone}_containers"]["children"]
        assert host in inv[f"ceph_osd_zone{zone}"]["hosts"] and hostvars[host]["component"] == f"ceph_osd_zone{zone}"
        storage = hostvars[mon]["container_networks"][f"storage_zone{zone}_address"]
        assert ipaddress.ip_address(storage["address"]) in ipaddress.ip_network(f"10.1.{zone}.0/24")
        assert set(hostvars[mon]["container_networks"]) == {"management_address", f"storage_zone{zone}_address"}
    assert sorted(inv["lxc_hosts"]["hosts"]) == ["infra1", "zone1_ceph1", "zone1_ceph2", "zone2_ceph1"]
    adopts_unchanged(str(config_dir), ini, as_osa_stored(inv, {
        "m": "10.0.0.0/22", "s1": "10.1.1.0/24", "s2": "10.1.2.0/24"}))


def test_errors_name_a_network_without_queue_or_bridge_by_its_net_name(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    config["global_overrides"]["provider_networks"].append({"network": {
        "net_name": "physnet2", "type": "vlan", "group_binds": ["neutron_ovn_controller"],
        "static_routes": [{"cidr": "10.9.0.0/16"}]}})
    write_config(config_dir, config)
    result = run_script(config_dir, ini=write_ini(str(tmp_path)))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "ERROR: global_overrides.provider_networks[3] (net_name physnet2): static_routes[0] lacks gateway; "
        "each route needs both cidr and gateway"]
