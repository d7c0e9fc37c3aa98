"""generate(): the behaviour of an OSA-style inventory, one rule per test."""

import copy
import ipaddress
import json
import re

import pytest

from helpers import ENVIRONMENT, MGMT_NET, base_config, containers_of
from osa_inventory.generate.config import load_skeleton
from osa_inventory.errors import ConfigError
from osa_inventory.generate.pipeline import generate

NAME = re.compile(r"^(?P<host>.+)-(?P<type>[a-z0-9-]+-container)-(?P<suffix>[0-9a-f]{8})$")


@pytest.fixture(scope="module")
def skel(tmp_path_factory):
    return load_skeleton(ENVIRONMENT, str(tmp_path_factory.mktemp("noconfig")))


def hv(inv, name):
    return inv["_meta"]["hostvars"][name]


def only(names, fragment):
    found = [n for n in names if fragment in n]
    assert len(found) == 1, (fragment, names)
    return found[0]


# -- physical hosts --------------------------------------------------------------------------------

def test_physical_host_vars(skel):
    config = base_config()
    config["compute_hosts"]["compute1"].update(
        {"management_ip": "172.29.236.121", "host_vars": {"nova_virt_type": "qemu", "rack": {"row": 3}}})
    inv = generate(config, skel)
    c = hv(inv, "compute1")
    assert c["ansible_host"] == "172.29.236.21"
    assert c["management_address"] == "172.29.236.121"
    assert c["is_metal"] is True and c["properties"]["is_metal"] is True
    assert c["physical_host"] == "compute1" and c["physical_host_addr"] == "172.29.236.21"
    assert c["container_types"] == "compute1_host_containers"
    assert c["nova_virt_type"] == "qemu" and c["rack"] == {"row": 3}
    assert "compute1" in inv["compute_hosts"]["hosts"]
    # The management entry of a metal host carries its management_ip, no interface.
    mgmt = c["container_networks"]["management_address"]
    assert mgmt["address"] == "172.29.236.121" and "interface" not in mgmt


def test_dashed_group_names_merge_with_underscored_ones(skel):
    config = base_config()
    config["compute-hosts"] = {"compute2": {"ip": "172.29.236.22"}}
    inv = generate(config, skel)
    assert set(inv["compute_hosts"]["hosts"]) == {"compute1", "compute2"}
    assert "compute-hosts" not in inv
    assert hv(inv, "compute2")["component"] == "nova_compute"


# -- containers ------------------------------------------------------------------------------------

def test_container_names_groups_and_vars(skel):
    inv = generate(base_config(), skel)
    infra1 = containers_of(inv, "infra1")
    galera = only(infra1, "galera")
    m = NAME.match(galera)
    assert m and m["host"] == "infra1" and m["type"] == "galera-container"
    g = hv(inv, galera)
    assert g["physical_host"] == "infra1" and g["physical_host_addr"] == "172.29.236.11"
    assert g["physical_host_group"] == "shared_infra_hosts"
    assert g["component"] == "galera" and g["properties"] == {} and g["container_tech"] == "lxc"
    assert g["container_name"] == galera
    for group in ("galera_container", "galera", "infra1_host_containers", "shared_infra_all"):
        assert galera in inv[group]["hosts"], group
    assert "infra1" in inv["shared_infra_all"]["hosts"]
    assert inv["galera_container"] == {"hosts": inv["galera_container"]["hosts"]}  # hosts-only shape
    assert set(inv["galera_all"]["children"]) == {"galera"}


def test_component_is_the_first_of_contains_for_containers(skel):
    inv = generate(base_config(), skel)
    cinder_api = only(containers_of(inv, "infra1"), "cinder-api")
    assert hv(inv, cinder_api)["component"] == "cinder_api"
    assert cinder_api in inv["cinder_scheduler"]["hosts"]


def test_affinity_adds_containers_and_zero_means_none(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 3, "galera_container": 0}
    inv = generate(config, skel)
    names = containers_of(inv, "infra1")
    assert len([n for n in names if "rabbit-mq" in n]) == 3
    assert not [n for n in names if "galera" in n]
    assert len({n.rsplit("-", 1)[1] for n in names}) == len(names)


def test_lowering_affinity_never_deletes_and_names_never_change(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 2}
    first = generate(config, skel)
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 1}
    second = generate(config, skel, first)
    assert containers_of(second, "infra1") == containers_of(first, "infra1")
    assert second == first


def test_existing_underscore_names_are_recognised(skel):
    first = generate(base_config(), skel)
    old = only(containers_of(first, "infra1"), "galera")
    legacy = "infra1_galera_container-1a2b3c4d"
    stored = json.loads(json.dumps(first).replace(old, legacy))
    again = generate(base_config(), skel, stored)
    assert legacy in again["galera_container"]["hosts"]
    assert not [n for n in containers_of(again, "infra1") if "galera" in n and n != legacy]


def test_metal_services_put_the_host_itself_in_their_groups(skel):
    inv = generate(base_config(), skel)
    assert "storage1" in inv["cinder_volume"]["hosts"] and "storage1" in inv["cinder_backup"]["hosts"]
    assert "storage1" in inv["storage_all"]["hosts"]
    assert inv["cinder_volumes_container"]["hosts"] == []
    s = hv(inv, "storage1")
    assert s["component"] == "cinder_backup" and s["physical_host_group"] == "storage_hosts"
    assert containers_of(inv, "storage1") == []


def test_no_containers_applies_to_that_host_only(skel):
    config = base_config()
    config["shared_infra_hosts"] = {"infra1": {"ip": "172.29.236.11", "no_containers": True},
                                    "infra2": {"ip": "172.29.236.12"}}
    inv = generate(config, skel)
    assert "infra1" in inv["galera"]["hosts"]
    assert not [n for n in containers_of(inv, "infra1") if "galera" in n]
    assert [n for n in containers_of(inv, "infra2") if "galera" in n]  # no leak to the next host


def test_name_too_long_is_a_clear_error(skel):
    config = base_config()
    long_host = "h" * 40
    config["shared_infra_hosts"] = {long_host: {"ip": "172.29.236.13"}}
    with pytest.raises(ConfigError, match="too long"):
        generate(config, skel)


# -- container_vars --------------------------------------------------------------------------------

def test_container_vars_reach_the_host_and_all_its_containers_on_the_first_run(skel):
    config = base_config()
    config["image_hosts"]["infra1"]["container_vars"] = {"glance_default_store": "file"}
    inv = generate(config, skel)
    for name in ["infra1"] + containers_of(inv, "infra1"):
        assert hv(inv, name)["glance_default_store"] == "file", name
    assert "glance_default_store" not in hv(inv, only(containers_of(inv, "infra2"), "galera"))
    assert generate(config, skel, inv) == inv  # the first run is already the steady state


def test_limit_container_types_filters_by_component(skel):
    config = base_config()
    config["storage_hosts"]["storage1"]["container_vars"] = {
        "cinder_backends": {"limit_container_types": "cinder_volume", "lvm": {"volume_group": "cv"}}}
    config["shared_infra_hosts"]["infra1"]["container_vars"] = {
        "galera_vars": {"limit_container_types": "galera", "size": 1},
        "limit_container_types": "just-a-variable"}
    inv = generate(config, skel)
    assert hv(inv, "storage1")["cinder_backends"] == {"lvm": {"volume_group": "cv"}}
    galera = only(containers_of(inv, "infra1"), "galera")
    assert hv(inv, galera)["galera_vars"] == {"size": 1}
    assert "galera_vars" not in hv(inv, only(containers_of(inv, "infra1"), "memcached"))
    assert "galera_vars" not in hv(inv, "infra1")
    assert hv(inv, galera)["limit_container_types"] == "just-a-variable"


def test_container_vars_do_not_leak_to_hosts_with_a_longer_name(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["container_vars"] = {"only_infra1": True}
    config["shared_infra_hosts"]["infra10"] = {"ip": "172.29.236.14"}
    inv = generate(config, skel)
    assert all("only_infra1" not in hv(inv, n) for n in ["infra10"] + containers_of(inv, "infra10"))
    assert all(hv(inv, n)["only_infra1"] for n in containers_of(inv, "infra1"))


# -- networks and addresses ------------------------------------------------------------------------

def test_container_addresses_are_valid_unique_and_outside_used_ips(skel):
    config = base_config()
    config["compute_hosts"]["compute1"]["management_ip"] = "172.29.236.51"
    inv = generate(config, skel)
    seen = set()
    for v in inv["_meta"]["hostvars"].values():
        if v.get("is_metal"):
            continue
        mgmt = v["container_networks"]["management_address"]
        assert v["ansible_host"] == v["management_address"] == mgmt["address"]
        assert mgmt["interface"] == "eth1" and mgmt["bridge"] == "br-mgmt" and mgmt["netmask"] == "255.255.252.0"
        for entry in v["container_networks"].values():
            ip = ipaddress.ip_address(entry["address"])
            assert entry["address"] not in seen
            seen.add(entry["address"])
            assert not (ipaddress.ip_address("172.29.236.1") <= ip <= ipaddress.ip_address("172.29.236.50"))
    assert "172.29.236.51" not in seen  # a host's management_ip is reserved


def test_network_keys_and_entry_fields(skel):
    config = base_config()
    nets = config["global_overrides"]["provider_networks"]
    nets[2]["network"].update({"address_prefix": "stor", "container_mtu": "9000", "container_bridge_type": "ovs"})
    nets.append({"network": {"container_bridge": "br-vlan", "container_interface": "eth12",
                             "container_type": "veth", "type": "flat", "net_name": "physnet1",
                             "group_binds": ["glance_api"]}})
    inv = generate(config, skel)
    glance = hv(inv, only(containers_of(inv, "infra1"), "glance"))
    stor = glance["container_networks"]["stor_address"]
    assert stor["mtu"] == "9000" and stor["bridge_type"] == "ovs" and stor["interface"] == "eth2"
    assert ipaddress.ip_address(stor["address"]) in ipaddress.ip_network("172.29.244.0/22")
    vlan = glance["container_networks"]["eth12_address"]
    assert vlan == {"bridge": "br-vlan", "interface": "eth12", "type": "veth", "netmask": None}
    assert "gateway" not in stor and "static_routes" not in stor


def test_metal_entries_have_no_interface_and_no_pool_address(skel):
    inv = generate(base_config(), skel)
    storage = hv(inv, "compute1")["container_networks"]["storage_address"]
    assert storage == {"bridge": "br-storage", "type": "veth", "netmask": "255.255.252.0"}


def test_static_routes_and_gateway_are_copied(skel):
    config = base_config()
    config["global_overrides"]["provider_networks"][0]["network"].update(
        {"static_routes": [{"cidr": "10.176.0.0/12", "gateway": "172.29.236.1"}], "gateway": "172.29.236.1"})
    inv = generate(config, skel)
    for name in ("compute1", only(containers_of(inv, "infra1"), "galera")):
        entry = hv(inv, name)["container_networks"]["management_address"]
        assert entry["static_routes"] == [{"cidr": "10.176.0.0/12", "gateway": "172.29.236.1"}]
        assert entry["gateway"] == "172.29.236.1"


def test_a_container_network_without_a_pool_gets_no_address(skel):
    config = base_config()
    del config["global_overrides"]["provider_networks"][2]["network"]["ip_from_q"]
    inv = generate(config, skel)
    glance = hv(inv, only(containers_of(inv, "infra1"), "glance"))
    entry = glance["container_networks"]["eth2_address"]
    assert "address" not in entry and entry["netmask"] is None


def test_reference_group_limits_bound_hosts(skel):
    config = base_config()
    config["global_overrides"]["provider_networks"][2]["network"]["reference_group"] = "compute_hosts"
    inv = generate(config, skel)
    assert "storage_address" in hv(inv, "compute1")["container_networks"]
    glance = hv(inv, only(containers_of(inv, "infra1"), "glance"))
    assert "storage_address" not in glance["container_networks"]


def test_ipv6_and_huge_pools(skel):
    config = base_config()
    config["cidr_networks"].update({"management": "10.0.0.0/8", "storage": "fd00:1::/64"})
    config["used_ips"] = ["10.0.0.0,10.0.255.255"]
    for group in ("compute_hosts", "storage_hosts", "shared_infra_hosts", "repo_infra_hosts", "identity_hosts",
                  "image_hosts", "storage_infra_hosts", "load_balancer_hosts"):
        for settings in config[group].values():
            settings["ip"] = settings["ip"].replace("172.29.236.", "10.0.1.")
    inv = generate(config, skel)
    glance = hv(inv, only(containers_of(inv, "infra1"), "glance"))
    assert ipaddress.ip_address(glance["container_networks"]["storage_address"]["address"]).version == 6
    assert glance["container_networks"]["storage_address"]["netmask"] == "ffff:ffff:ffff:ffff::"
    assert ipaddress.ip_address(glance["ansible_host"]) >= ipaddress.ip_address("10.1.0.0")


def test_existing_addresses_are_kept_when_the_pool_moves(skel):
    first = generate(base_config(), skel)
    config = base_config()
    config["used_ips"].append("172.29.236.51,172.29.236.200")
    second = generate(config, skel, first)
    assert second["_meta"] == first["_meta"]


def test_exhausted_pool_names_the_queue(skel):
    config = base_config()
    config["cidr_networks"]["storage"] = "172.29.244.0/30"
    config["used_ips"] = []
    with pytest.raises(ConfigError, match=r"cidr_networks\.storage .*no free address"):
        generate(config, skel)


# -- groups ----------------------------------------------------------------------------------------

def test_lxc_hosts_lists_hosts_of_lxc_containers_only(skel):
    inv = generate(base_config(), skel)
    assert set(inv["lxc_hosts"]["hosts"]) == {"infra1", "infra2"}
    assert None not in inv["lxc_hosts"]["hosts"]


def test_is_nest_entries_adopt_host_container_groups(skel, tmp_path):
    # An availability-zone layout: az1_containers nests the container groups of the az1_hosts.
    from helpers import write_config
    write_config(str(tmp_path / "env.d"), {
        "container_skel": {"az1_containers": {"belongs_to": ["az_containers"], "properties": {"is_nest": True}}},
        "physical_skel": {"az_containers": {"belongs_to": ["all_containers"]},
                          "az1_containers": {"belongs_to": ["all_containers"]},
                          "az1_hosts": {"belongs_to": ["hosts"]}}}, "az.yml")
    nested = load_skeleton(ENVIRONMENT, str(tmp_path))
    config = base_config()
    config["az1_hosts"] = {"infra1": {"ip": "172.29.236.11"}, "compute1": {"ip": "172.29.236.21"}}
    inv = generate(config, nested)
    assert inv["az1_containers"]["children"] == ["infra1_host_containers"]  # compute1 has no containers
    assert "az1_containers" in inv["az_containers"]["children"]
    galera = only(containers_of(inv, "infra1"), "galera")
    az_members = set()
    stack = ["az_containers"]
    while stack:
        g = inv[stack.pop()]
        az_members.update(g["hosts"])
        stack.extend(g.get("children", []))
    assert galera in az_members and not [h for h in az_members if h.startswith("infra2")]
    assert generate(config, nested, inv) == inv


def test_skeleton_groups_exist_even_when_empty(skel):
    inv = generate(base_config(), skel)
    assert inv["trove_api_container"] == {"hosts": []}
    assert inv["trove_all"]["hosts"] == [] and "trove_api" in inv["trove_all"]["children"]
    assert "compute_hosts" in inv["hosts"]["children"]


def test_groups_are_never_removed(skel):
    first = generate(base_config(), skel)
    stored = copy.deepcopy(first)
    stored["custom_group"] = {"children": [], "hosts": ["compute1"]}
    config = base_config()
    del config["storage_hosts"]
    again = generate(config, skel, stored)
    assert again["custom_group"] == {"children": [], "hosts": ["compute1"]}
    assert "storage1" in again["_meta"]["hostvars"] and "storage1" in again["storage_hosts"]["hosts"]


def test_all_vars_follow_global_overrides(skel):
    config = base_config()
    config["global_overrides"]["extra"] = "{{ templated }}"
    first = generate(config, skel)
    assert first["all"]["vars"]["container_cidr"] == "172.29.236.0/22"
    assert first["all"]["vars"]["extra"] == "{{ templated }}"
    del config["global_overrides"]["extra"]
    assert "extra" not in generate(config, skel, first)["all"]["vars"]


def test_required_hostvars_are_always_present(skel):
    inv = generate(base_config(), skel)
    for v in inv["_meta"]["hostvars"].values():
        for key in ("properties", "ansible_host", "physical_host_group", "management_address", "container_name",
                    "container_networks", "physical_host", "physical_host_addr", "component", "container_tech"):
            assert key in v


# -- stability and reproducibility -----------------------------------------------------------------

def test_second_run_is_identical_and_lists_keep_their_order(skel):
    first = generate(base_config(), skel)
    assert json.dumps(generate(base_config(), skel, first)) == json.dumps(first)


def test_lost_inventory_regenerates_identically(skel):
    assert generate(base_config(), skel) == generate(base_config(), skel)


def test_adding_a_host_changes_nothing_that_existed(skel):
    first = generate(base_config(), skel)
    config = base_config()
    config["shared_infra_hosts"]["infra3"] = {"ip": "172.29.236.13"}
    second = generate(config, skel, first)
    for name, v in first["_meta"]["hostvars"].items():
        assert second["_meta"]["hostvars"][name]["container_networks"] == v["container_networks"]
    assert len(containers_of(second, "infra3")) > 0


def test_generate_does_not_modify_its_input(skel):
    first = generate(base_config(), skel)
    frozen = json.dumps(first, sort_keys=True)
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    generate(config, skel, first)
    assert json.dumps(first, sort_keys=True) == frozen


# -- config errors ---------------------------------------------------------------------------------

def _broken(mutate):
    config = base_config()
    mutate(config)
    return config


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c.pop("cidr_networks"), "cidr_networks is missing"),
    (lambda c: c["cidr_networks"].update(storage="10.0.0.0/99"), "cidr_networks.storage"),
    (lambda c: c["global_overrides"]["provider_networks"][2]["network"].update(ip_from_q="nope"), "'nope'"),
    (lambda c: c["global_overrides"]["provider_networks"][0]["network"].pop("is_management_address"),
     "is_management_address"),
    (lambda c: c["compute_hosts"].update(compute2={"ip": "172.29.236.21"}), "compute1 and compute2"),
    (lambda c: c["storage_hosts"].update(compute1={"ip": "172.29.236.99"}), "compute1 has ip"),
    (lambda c: c["compute_hosts"].update(compute2={"host_vars": {}}), "compute2 in compute_hosts has no 'ip'"),
    (lambda c: c.update(compute_hosts={}), "compute_hosts is empty"),
    (lambda c: c.update(lxc_hosts={"x": {"ip": "10.1.1.1"}}), "lxc_hosts"),
    (lambda c: c.update(hosts={"x": {"ip": "10.1.1.1"}}), "hosts cannot be sibling with groups"),
    (lambda c: c["global_overrides"]["provider_networks"][0]["network"].update(static_routes=[{"cidr": "1.0.0.0/8"}]),
     "lacks gateway"),
    (lambda c: c["compute_hosts"].update({"c" * 64: {"ip": "172.29.236.99"}}), "at most 63"),
])
def test_config_errors(skel, mutate, words):
    with pytest.raises(ConfigError) as err:
        generate(_broken(mutate), skel)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_management_network_flag_alias_is_accepted(skel):
    config = base_config()
    net = config["global_overrides"]["provider_networks"][0]["network"]
    net.pop("is_management_address")
    net["is_container_address"] = True
    inv = generate(config, skel)
    assert hv(inv, "compute1")["container_networks"]["management_address"]["address"] == "172.29.236.21"
    assert MGMT_NET["ip_from_q"] == "management"
