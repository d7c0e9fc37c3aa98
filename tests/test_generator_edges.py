"""Edges of the generator: error paths, boundaries and less common features.

Each error test checks the one line a deployer gets, then follows its advice and checks that the
corrected config is accepted.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress

import pytest

from helpers import DASHED_ENV_D, ENVIRONMENT, base_config, containers_of, last_pass, write_config
from osa_inventory.errors import ConfigError
from osa_inventory.generate.addresses import AddressPool, build_pools, parse_used_ips
from osa_inventory.generate.config import load_skeleton, load_user_config, read_yaml
from osa_inventory.generate.pipeline import generate


@pytest.fixture(scope="module")
def skel(tmp_path_factory):
    return load_skeleton(ENVIRONMENT, str(tmp_path_factory.mktemp("noconfig")))


def hostvars(inv: dict) -> dict:
    return inv["_meta"]["hostvars"]


def refused(config: dict, skel) -> str:
    with pytest.raises(ConfigError) as err:
        generate(config, skel)
    message = str(err.value)
    assert "\n" not in message
    return message


# -- error paths -----------------------------------------------------------------------------------

def test_cidr_networks_that_is_not_a_mapping_is_refused(skel):
    config = base_config()
    config["cidr_networks"] = ["172.29.236.0/22"]
    message = refused(config, skel)
    assert "cidr_networks" in message and "management: 172.29.236.0/22" in message
    config["cidr_networks"] = {"management": "172.29.236.0/22", "tunnel": "172.29.240.0/22",
                               "storage": "172.29.244.0/22"}  # as the message shows
    assert generate(config, skel)["all"]["vars"]["container_cidr"] == "172.29.236.0/22"


def test_cidr_networks_without_any_management_network_is_refused(skel):
    config = base_config()
    _rename_queue(config, "management", "mgmt")
    _net(config, 0).pop("is_management_address")
    config["global_overrides"].pop("management_bridge")
    message = refused(config, skel)
    assert "neither a 'management' nor a 'container' network" in message
    # Following the advice: a provider network that takes management addresses from the queue.
    _net(config, 0)["is_management_address"] = True
    inv = generate(config, skel)
    assert inv["all"]["vars"]["container_cidr"] == ["172.29.236.0/22"]


def test_container_cidr_prefers_the_container_network(skel):
    config = base_config()
    config["cidr_networks"]["container"] = "172.30.0.0/16"
    inv = generate(config, skel)
    assert inv["all"]["vars"]["container_cidr"] == "172.30.0.0/16"


@pytest.mark.parametrize("remove, where", [
    (lambda c: c.pop("global_overrides"), "global_overrides is missing"),
    (lambda c: c["global_overrides"].pop("provider_networks"), "global_overrides.provider_networks is missing"),
    (lambda c: c["global_overrides"].update(provider_networks=[]), "global_overrides.provider_networks is missing"),
])
def test_containers_need_the_management_network(skel, remove, where):
    config = base_config()
    remove(config)
    message = refused(config, skel)
    assert message.startswith(where) and "management network" in message


def test_a_skeleton_without_containers_needs_no_network(skel, tmp_path):
    metal = copy.deepcopy(skel)
    for entry in metal.container_skel.values():
        entry.setdefault("properties", {})["is_metal"] = True
    config = base_config()
    del config["global_overrides"]
    inv = generate(config, metal)
    assert [n for n, hv in hostvars(inv).items() if n != hv["physical_host"]] == []
    assert inv["all"]["vars"] == {"container_cidr": "172.29.236.0/22"}
    assert "infra1" in inv["galera"]["hosts"]


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c.update(global_overrides=["a"]), "global_overrides must be a mapping"),
    (lambda c: c["global_overrides"].update(provider_networks={"network": {}}),
     "provider_networks must be a list"),
    (lambda c: c["global_overrides"]["provider_networks"].append({"network": "br-x"}),
     "provider_networks[3].network must be a mapping"),
    (lambda c: c["global_overrides"]["provider_networks"][1]["network"].update(group_binds="hosts"),
     "provider_networks[1]: group_binds must be a list"),
    (lambda c: c["global_overrides"]["provider_networks"][1]["network"].update(static_routes=["10.0.0.0/8"]),
     "(queue tunnel): static_routes[0] lacks cidr and gateway"),
    (lambda c: c["global_overrides"]["provider_networks"][1]["network"].update(
        static_routes=[{"cidr": "10.0.0.0/8", "gateway": "172.29.240.1"}, {"gateway": "172.29.240.1"}]),
     "(queue tunnel): static_routes[1] lacks cidr;"),
    (lambda c: c.update(compute_hosts=["compute1"]), "host group compute_hosts must map host names"),
    (lambda c: c["compute_hosts"].update(compute1="172.29.236.21"), "host compute1 in compute_hosts has no 'ip'"),
    (lambda c: c["compute_hosts"]["compute1"].update(affinity=2), "host compute1 in compute_hosts: affinity"),
    (lambda c: c["compute_hosts"]["compute1"].update(container_vars=["a"]), "compute_hosts: container_vars must"),
    (lambda c: c["compute_hosts"]["compute1"].update(host_vars="x"), "compute1 in compute_hosts: host_vars must"),
    (lambda c: c["shared_infra_hosts"]["infra1"].update(affinity={"galera_container": "two"}),
     "affinity.galera_container = 'two' is not a number"),
    # host_vars and container_vars become host variables, which the next run reads back.
    (lambda c: c["compute_hosts"]["compute1"].update(container_vars={"physical_host": ["x"]}),
     "host compute1 in compute_hosts: container_vars.physical_host is a list, not a name (a string); "
     "correct it, or remove it"),
    (lambda c: c["compute_hosts"]["compute1"].update(host_vars={"properties": [1]}),
     "host compute1 in compute_hosts: host_vars.properties is a list, not a mapping; correct it, or remove it"),
    (lambda c: c["compute_hosts"]["compute1"].update(host_vars={"container_networks": {"m": {"address": 5}}}),
     "host_vars.container_networks.m.address is a int, not an address (a string)"),
])
def test_malformed_config_is_named(skel, mutate, words):
    config = base_config()
    mutate(config)
    assert words in refused(config, skel)


def _net(config: dict, i: int) -> dict:
    return config["global_overrides"]["provider_networks"][i]["network"]


def _net_of(config: dict) -> dict:
    return config["global_overrides"]["provider_networks"]


def _rename_queue(config: dict, old: str, new: str) -> None:
    config["cidr_networks"][new] = config["cidr_networks"].pop(old)
    for entry in config["global_overrides"]["provider_networks"]:
        if entry["network"].get("ip_from_q") == old:
            entry["network"]["ip_from_q"] = new


def _all_hosts_groups(config: dict):
    return [g for k, g in config.items() if k.endswith("hosts") and isinstance(g, dict)]


# (what breaks the config, the whole line the deployer reads, what the line says to do)
ERRORS = [
    (lambda c: c.pop("cidr_networks"),
     "cidr_networks is missing from the user config; add it with at least a 'management' network, "
     "e.g. cidr_networks: {management: 172.29.236.0/22}",
     lambda c: c.update(cidr_networks=base_config()["cidr_networks"])),
    (lambda c: (_rename_queue(c, "management", "mgmt"), _net(c, 0).pop("is_management_address"),
                c["global_overrides"].pop("management_bridge")),
     "cidr_networks has neither a 'management' nor a 'container' network, and no provider network takes "
     "management addresses from it (ip_from_q with is_management_address: true or address_prefix: management); "
     "add one",
     lambda c: _net(c, 0).update(address_prefix="management")),
    (lambda c: c.update(lxc_hosts={"infra1": {"ip": "172.29.236.11"}}),
     "lxc_hosts is defined in the user config, but the inventory builds that group itself from the hosts "
     "that run LXC containers; remove lxc_hosts from the config",
     lambda c: c.pop("lxc_hosts")),
    (lambda c: c.update(global_overrides=list(c["global_overrides"].items())),
     "global_overrides must be a mapping of variables",
     lambda c: c.update(global_overrides=dict(c["global_overrides"]))),
    (lambda c: c["global_overrides"].update(provider_networks=_net(c, 0)),
     "global_overrides.provider_networks must be a list of '- network: {...}' entries",
     lambda c: c["global_overrides"].update(provider_networks=[{"network": _net_of(c)}])),
    (lambda c: _net(c, 2).update(ip_from_q="stor"),
     "global_overrides.provider_networks[2]: ip_from_q 'stor' names no network in cidr_networks "
     "(known: management, tunnel, storage); add it to cidr_networks or fix the name",
     lambda c: c["cidr_networks"].update(stor="172.29.248.0/22")),
    (lambda c: _net(c, 0).pop("is_management_address"),
     "global_overrides.provider_networks[0]: the management bridge 'br-mgmt' needs "
     "'is_management_address: true' on its provider network",
     lambda c: _net(c, 0).update(is_management_address=True)),
    (lambda c: (_net(c, 1).pop("ip_from_q"), _net(c, 1).update(static_routes={"cidr": "10.0.0.0/8"})),
     "global_overrides.provider_networks[1] (bridge br-vxlan): static_routes must be a list",
     lambda c: _net(c, 1).update(static_routes=[{"cidr": "10.0.0.0/8", "gateway": "172.29.240.1"}])),
    (lambda c: _net(c, 1).update(static_routes=[{"cidr": "10.0.0.0/8"}]),
     "global_overrides.provider_networks[1] (queue tunnel): static_routes[0] lacks gateway; "
     "each route needs both cidr and gateway",
     lambda c: _net(c, 1)["static_routes"][0].update(gateway="172.29.240.1")),
    (lambda c: c["compute_hosts"].update(compute2={"ip": "172.29.236.21"}),
     "hosts compute1 and compute2 both have ip 172.29.236.21; each host needs its own address",
     lambda c: c["compute_hosts"]["compute2"].update(ip="172.29.236.22")),
    (lambda c: c["storage_hosts"].update(compute1={"ip": "172.29.236.99"}),
     "host compute1 has ip 172.29.236.21 in compute_hosts but 172.29.236.99 in storage_hosts; "
     "give it one address everywhere",
     lambda c: c["storage_hosts"]["compute1"].update(ip="172.29.236.21")),
    (lambda c: c["compute_hosts"].update(compute2={"host_vars": {}}),
     "host compute2 in compute_hosts has no 'ip'; add its address as ip: A.B.C.D",
     lambda c: c["compute_hosts"]["compute2"].update(ip="172.29.236.22")),
    (lambda c: c.update(compute_hosts={}),
     "host group compute_hosts is empty; list its hosts with their ip, or remove the key",
     lambda c: c.pop("compute_hosts")),
    (lambda c: c.update(hosts={"x": {"ip": "172.29.236.99"}}),
     "hosts is defined with hosts in the user config, but the environment makes compute_infra_hosts a child "
     "group of it; hosts cannot be sibling with groups: rename hosts in the config",
     lambda c: c.update(network_hosts=c.pop("hosts"))),
    (lambda c: c["compute_hosts"].update({"c" * 64: {"ip": "172.29.236.99"}}),
     f"host name {'c' * 64} in compute_hosts is 64 characters long; host names may be at most 63 characters",
     lambda c: c["compute_hosts"].update({"c" * 63: c["compute_hosts"].pop("c" * 64)})),
]


@pytest.mark.parametrize("breaks, message, advice", ERRORS)
def test_each_error_is_one_line_and_its_advice_works(skel, breaks, message, advice):
    config = base_config()
    breaks(config)
    assert refused(config, skel) == message
    advice(config)
    assert generate(config, skel)["_meta"]["hostvars"]


def test_network_entries_that_are_not_networks_are_skipped(skel):
    config = base_config()
    config["global_overrides"]["provider_networks"].insert(0, {"comment": "no network key"})
    config["global_overrides"]["provider_networks"].insert(0, "not even a mapping")
    inv, plain = generate(config, skel), generate(base_config(), skel)
    assert {k: v for k, v in inv.items() if k != "all"} == {k: v for k, v in plain.items() if k != "all"}


def test_the_same_host_in_two_groups_with_one_ip_is_one_host(skel):
    config = base_config()
    config["compute_hosts"]["infra1"] = {"ip": " 172.29.236.11 "}
    inv = generate(config, skel)
    assert hostvars(inv)["infra1"]["ansible_host"] == "172.29.236.11"
    assert "infra1" in inv["nova_compute"]["hosts"]


# -- boundaries ------------------------------------------------------------------------------------

def test_host_names_up_to_63_characters(skel):
    config = base_config()
    name = "c" * 63
    config["compute_hosts"][name] = {"ip": "172.29.236.22"}
    assert hostvars(generate(config, skel))[name]["physical_host"] == name
    config["compute_hosts"]["c" * 64] = {"ip": "172.29.236.23"}
    assert f"host name {'c' * 64} in compute_hosts is 64 characters long" in refused(config, skel)


def test_container_names_up_to_52_characters_before_the_suffix(skel):
    # The longest container entry on shared infra hosts gives the longest names.
    config = base_config()
    longest = max((k for k, v in skel.container_skel.items()
                   if "shared_infra_containers" in (v.get("belongs_to") or ())
                   and not (v.get("properties") or {}).get("is_metal")), key=len)
    room = 52 - len("-" + longest.replace("_", "-"))
    config["shared_infra_hosts"] = {"h" * room: {"ip": "172.29.236.13"}}
    inv = generate(config, skel)
    names = [n for n in containers_of(inv, "h" * room) if longest.replace("_", "-") in n]
    assert len(names) == 1 and len(names[0]) == 52 + 9
    config["shared_infra_hosts"] = {"h" * (room + 1): {"ip": "172.29.236.13"}}
    host, part = "h" * (room + 1), longest.replace("_", "-")
    assert refused(config, skel) == (
        f"container name {host}-{part}-XXXXXXXX for host {host} in shared_infra_hosts is too long: "
        "the part before the suffix may be at most 52 characters; shorten the host name")


@pytest.mark.parametrize("cidr, expected", [
    ("192.0.2.8/31", ["192.0.2.8", "192.0.2.9"]),
    ("192.0.2.8/32", ["192.0.2.8"]),
    ("192.0.2.8/30", ["192.0.2.9", "192.0.2.10"]),
    ("fd00::/127", ["fd00::", "fd00::1"]),
])
def test_small_pools_hand_out_every_usable_address(cidr, expected):
    pool = AddressPool("tiny", ipaddress.ip_network(cidr))
    assert [pool.allocate() for _ in expected] == expected
    with pytest.raises(ConfigError) as err:
        pool.allocate()
    assert str(err.value) == (f"cidr_networks.tiny ({ipaddress.ip_network(cidr)}) has no free address left; "
                              "widen the network or release addresses listed in used_ips")


def test_pool_tells_its_netmask():
    pools = build_pools({"a": "10.0.0.0/22", "b": "fd00::/64"}, [])
    assert (pools["a"].netmask, pools["b"].netmask) == ("255.255.252.0", "ffff:ffff:ffff:ffff::")


def test_cidr_with_host_bits_set_means_its_network(skel):
    config = base_config()
    config["cidr_networks"]["storage"] = "172.29.244.5/22"
    config["used_ips"] = ["172.29.236.1,172.29.236.50", "172.29.244.5/24"]
    inv = generate(config, skel)
    glance = [n for n in containers_of(inv, "infra1") if "glance" in n][0]
    entry = hostvars(inv)[glance]["container_networks"]["storage_address"]
    assert entry["netmask"] == "255.255.252.0"
    # The whole /24 block of 172.29.244.5/24 is reserved: addresses start above it.
    assert ipaddress.ip_address(entry["address"]) in ipaddress.ip_network("172.29.245.0/24")


def test_used_ips_forms():
    assert parse_used_ips(["10.0.0.9", " 10.0.0.20 , 10.0.0.10 ", "10.0.1.5/30", "fd00::1,fd00::3"]) == [
        (4, 0x0A000009, 0x0A000009), (4, 0x0A00000A, 0x0A000014), (4, 0x0A000104, 0x0A000107), (6, 1 + (0xFD00 << 112),
                                                                                                 3 + (0xFD00 << 112))]
    assert parse_used_ips(None) == []


def test_used_ips_only_reserve_in_their_own_family():
    pools = build_pools({"v4": "10.0.0.0/29", "v6": "fd00::/125"}, ["10.0.0.1,10.0.0.5", "fd00::1,fd00::2"])
    assert pools["v4"].allocate() == "10.0.0.6"
    assert pools["v6"].allocate() == "fd00::3"


# -- features --------------------------------------------------------------------------------------

def test_new_names_follow_the_documented_recipe(skel):
    # <host>-<type with - for _>-<first 8 hex digits of sha256("host\0type\0ordinal")>: a lost
    # inventory regenerated by any release comes out with the same names.
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 3}
    inv = generate(config, skel)
    expected = {f"infra1-rabbit-mq-container-"
                f"{hashlib.sha256(f'infra1{chr(0)}rabbit_mq_container{chr(0)}{i}'.encode()).hexdigest()[:8]}"
                for i in range(3)}
    assert set(inv["rabbit_mq_container"]["hosts"]) - set(containers_of(inv, "infra2")) == expected


def test_a_derived_name_already_taken_is_skipped(skel):
    first = generate(base_config(), skel)
    rabbit = [n for n in containers_of(first, "infra1") if "rabbit-mq" in n][0]
    stored = copy.deepcopy(first)
    # An entry of that name exists but is not a rabbit container any more (an operator moved it).
    for group in stored.values():
        if isinstance(group, dict) and rabbit in (group.get("hosts") or ()):
            group["hosts"].remove(rabbit)
    hostvars(stored)[rabbit]["physical_host"] = "elsewhere"
    inv = generate(base_config(), skel, stored)
    new = [n for n in inv["rabbit_mq_container"]["hosts"] if n.startswith("infra1-")]
    assert len(new) == 1 and new[0] != rabbit and new[0].startswith("infra1-rabbit-mq-container-")
    assert hostvars(inv)[rabbit]["physical_host"] == "elsewhere"


def test_a_stored_container_name_and_container_tech_are_kept(skel):
    first = generate(base_config(), skel)
    infra2 = containers_of(first, "infra2")
    stored = copy.deepcopy(first)
    for name in infra2:
        hostvars(stored)[name]["container_tech"] = "nspawn"
    galera = [n for n in infra2 if "galera" in n][0]
    hostvars(stored)[galera]["container_name"] = "db-on-infra2"
    inv = generate(base_config(), skel, stored)
    assert hostvars(inv)[galera]["container_name"] == "db-on-infra2"
    assert {hostvars(inv)[n]["container_tech"] for n in infra2} == {"nspawn"}
    assert inv["lxc_hosts"] == {"hosts": ["infra1"]}  # infra2 runs no LXC container now


def test_containers_of_a_host_gone_from_everywhere_keep_their_last_address(skel):
    from osa_inventory.inventory.edits import remove_hosts
    stored = generate(base_config(), skel)
    remove_hosts(stored, ["infra2"])  # the host only, its containers stay
    config = base_config()
    for group in config.values():
        if isinstance(group, dict):
            group.pop("infra2", None)
    inv = generate(config, skel, stored)
    for name in containers_of(inv, "infra2"):
        assert hostvars(inv)[name]["physical_host_addr"] == "172.29.236.12"
    assert "infra2" not in hostvars(inv)


def test_a_container_no_network_binds_still_has_every_key(skel):
    config = base_config()
    config["global_overrides"]["provider_networks"][0]["network"]["group_binds"] = ["hosts", "galera_container"]
    inv = generate(config, skel)
    memcached = [n for n in containers_of(inv, "infra1") if "memcached" in n][0]
    m = hostvars(inv)[memcached]
    assert m["container_networks"] == {} and m["ansible_host"] is None and m["management_address"] is None


def test_the_result_shares_nothing_with_the_config(skel):
    config = base_config()
    config["global_overrides"]["nested"] = {"list": [1]}
    routes = [{"cidr": "10.176.0.0/12", "gateway": "172.29.240.1"}]
    config["global_overrides"]["provider_networks"][0]["network"]["static_routes"] = routes
    inv = generate(config, skel)
    mgmt = [hostvars(inv)[h]["container_networks"]["management_address"] for h in ("compute1", "infra1")]
    assert mgmt[0] == {"bridge": "br-mgmt", "type": "veth", "netmask": "255.255.252.0", "static_routes": routes,
                       "address": "172.29.236.21"}
    mgmt[0]["static_routes"].append("changed")
    mgmt[0]["static_routes"][0]["gateway"] = "changed"
    assert mgmt[1]["static_routes"] == routes == [{"cidr": "10.176.0.0/12", "gateway": "172.29.240.1"}]
    inv["all"]["vars"]["nested"]["list"].append(2)
    hostvars(inv)["compute1"]["container_networks"]["management_address"]["bridge"] = "changed"
    assert config["global_overrides"]["nested"] == {"list": [1]}
    assert config == base_config() | {"global_overrides": config["global_overrides"]}
    assert generate(config, skel)["all"]["vars"]["nested"] == {"list": [1]}


def test_group_shapes_mirror_osa(skel):
    config = base_config()
    inv = generate(config, skel)
    fed = {k[: -len("_hosts")] + "_all" for k in config if k.endswith("_hosts")}
    fed &= {g for g in inv if g.endswith("_all") and inv[g]["hosts"]}
    for name, group in inv.items():
        if name in ("_meta", "all"):
            continue
        hosts_only = (name in config or name in fed or name == "lxc_hosts"
                      or name.endswith(("container", "_host_containers")))
        assert ("children" not in group) == hosts_only, name
        assert set(group) <= {"children", "hosts"}, name


# -- reading YAML ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, where", [
    ("a: 1\n  b: 2\n", ":2:4:"),
    ("a:\n  - x\n  y: 1\n", ":3:3:"),
    ("a: 1\nb: *nope\n", ":2:4:"),
])
def test_yaml_errors_name_file_line_and_column(tmp_path, text, where):
    path = tmp_path / "openstack_user_config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_user_config(str(tmp_path))
    assert str(err.value).startswith(f"{path}{where} YAML syntax error: ")
    assert str(err.value).endswith("; fix the file")


def test_yaml_that_cannot_be_decoded_names_the_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_bytes(b"a: \x07\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(str(path))
    assert str(err.value).startswith(f"{path}: cannot be parsed as YAML (") and "\n" not in str(err.value)


def test_env_d_section_of_the_wrong_type_names_the_file(tmp_path):
    write_config(str(tmp_path / "env.d"), {"container_skel": ["galera_container"]}, "bad.yml")
    with pytest.raises(ConfigError, match=r"bad\.yml: container_skel must be a mapping, found a list"):
        load_skeleton(ENVIRONMENT, str(tmp_path))


def test_empty_files_are_empty_mappings(tmp_path):
    write_config(str(tmp_path), base_config())
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "empty.yml").write_text("")
    (tmp_path / "conf.d" / "folder.yml").mkdir()  # not a file: not read
    assert load_user_config(str(tmp_path)) == base_config()


# -- containers: several groups, container_vars, nests ----------------------------------------------

def test_a_host_in_two_groups_feeding_one_type_gets_one_container(skel):
    # galera_container belongs to database_containers and shared_infra_containers.
    config = base_config()
    config["database_hosts"] = {"infra1": {"ip": "172.29.236.11"}}
    inv = generate(config, skel)
    galeras = [n for n in containers_of(inv, "infra1") if "-galera-container-" in n]
    assert len(galeras) == 1 and None not in inv["galera_container"]["hosts"]
    assert galeras[0] in inv["database_all"]["hosts"] and galeras[0] in inv["shared_infra_all"]["hosts"]


def _last_group(skel, host: str, config: dict) -> str:
    """Of the config groups listing ``host``, the one whose container types are handled last."""
    return max((g for g in config if g.endswith("_hosts") and host in config[g]), key=lambda g: last_pass(skel, g))


@pytest.mark.parametrize("which", ["first", "last"])
def test_container_vars_of_any_one_of_a_hosts_groups_apply(skel, which):
    config = base_config()
    groups = [g for g in config if g.endswith("_hosts") and "infra1" in config[g]]
    last = _last_group(skel, "infra1", config)
    group = last if which == "last" else next(g for g in groups if g != last)
    config[group]["infra1"]["container_vars"] = {"from_group": group}
    inv = generate(config, skel)
    for name in ["infra1"] + containers_of(inv, "infra1"):
        assert hostvars(inv)[name]["from_group"] == group, name


def test_limited_container_vars_skip_only_themselves(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra2"]["container_vars"] = {
        "galera_vars": {"limit_container_types": "galera", "size": 1}, "plain": 2}
    inv = generate(config, skel)
    # infra2 runs no service on metal: the limited variable reaches only its galera container.
    assert "galera_vars" not in hostvars(inv)["infra2"] and hostvars(inv)["infra2"]["plain"] == 2
    for name in containers_of(inv, "infra2"):
        v = hostvars(inv)[name]
        assert v["plain"] == 2, name
        assert ("galera_vars" in v) == ("-galera-container-" in name), name


def test_container_vars_are_copies(skel):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["container_vars"] = {"nested": {"list": [1]}}
    inv = generate(config, skel)
    first, second = containers_of(inv, "infra1")[:2]
    hostvars(inv)[first]["nested"]["list"].append(2)
    assert hostvars(inv)[second]["nested"] == {"list": [1]}
    assert config["shared_infra_hosts"]["infra1"]["container_vars"] == {"nested": {"list": [1]}}


def _nest_skeleton(tmp_path, key: str, hosts_group: str):
    write_config(str(tmp_path / "env.d"), {
        "container_skel": {key: {"belongs_to": ["az_containers"], "properties": {"is_nest": True}}},
        "physical_skel": {"az_containers": {"belongs_to": ["all_containers"]},
                          hosts_group: {"belongs_to": ["hosts"]}}}, "az.yml")
    return load_skeleton(ENVIRONMENT, str(tmp_path))


def test_a_nest_of_another_shape_is_fed_by_its_first_word(tmp_path):
    nested = _nest_skeleton(tmp_path, "zone1_pod", "zone1_hosts")
    config = base_config()
    config["zone1_hosts"] = {"infra2": {"ip": "172.29.236.12"}}
    inv = generate(config, nested)
    assert inv["zone1_pod"]["children"] == ["infra2_host_containers"]


def test_a_nest_without_its_hosts_in_the_config_stays_empty(tmp_path):
    nested = _nest_skeleton(tmp_path, "az1_containers", "az1_hosts")
    inv = generate(base_config(), nested)
    assert inv["az1_containers"]["children"] == [] and inv["az1_containers"]["hosts"] == []


def test_a_dashed_nest_key_adopts_nothing_as_in_osa(tmp_path):
    # OSA derives a nest's host group keeping the key's dashes, and config groups have none.
    nested = _nest_skeleton(tmp_path, "az-1_containers", "az-1_hosts")
    config = base_config()
    config["az-1_hosts"] = {"infra2": {"ip": "172.29.236.12"}}
    inv = generate(config, nested)
    assert inv["az-1_containers"]["children"] == [] and inv["az_1_hosts"] == {"hosts": ["infra2"]}


@pytest.mark.parametrize("spelling", ["shared_infra_hosts", "shared-infra_hosts"])
def test_a_dashed_container_group_of_env_d_is_fed_by_the_underscored_host_group(tmp_path, spelling):
    write_config(str(tmp_path / "env.d"), DASHED_ENV_D, "legacy.yml")
    config = base_config()
    config[spelling] = config.pop("shared_infra_hosts")
    config["storage_infra_hosts"]["infra1"]["container_vars"] = {"legacy_flag": 1}
    inv = generate(config, load_skeleton(ENVIRONMENT, str(tmp_path)))
    placed = inv["legacy_container"]["hosts"]
    assert [n.rsplit("-", 1)[0] for n in placed] == ["infra1-legacy-container", "infra2-legacy-container"]
    for name in placed:
        hv = hostvars(inv)[name]
        assert (hv["physical_host_group"], hv["component"]) == ("shared_infra_hosts", "legacy_api")
        assert name in inv["shared_infra_all"]["hosts"]
        assert name in inv[f"{hv['physical_host']}_host_containers"]["hosts"]
    assert inv["legacy_api"]["hosts"] == placed
    # A bare-metal entry in a dashed group: the hosts of storage_infra_hosts run it, with their container_vars.
    assert inv["legacy_agent"]["hosts"] == ["infra1", "infra2"]
    assert {"infra1", "infra2"} <= set(inv["storage_infra_all"]["hosts"])
    assert hostvars(inv)["infra1"]["legacy_flag"] == 1
    # env.d's own groups keep their spelling, as in OSA; no dashed <X>_all is made.
    assert inv["shared-infra_containers"] == {"children": ["legacy_container"], "hosts": []}
    assert inv["shared-infra_hosts"] == {"children": [], "hosts": []}
    assert "shared-infra_all" not in inv and "storage-infra_all" not in inv


def test_an_entry_without_contains_places_nothing(skel, tmp_path):
    # An entry that contains no component (emptied in env.d, or a nest) makes no container and stops
    # nothing: every other entry is still placed.
    write_config(str(tmp_path / "env.d"), {"container_skel": {
        "galera_container": {"contains": []},
        "tinker_container": {"belongs_to": ["shared_infra_containers"]}}}, "override.yml")
    changed = load_skeleton(ENVIRONMENT, str(tmp_path))
    inv = generate(base_config(), changed)
    plain = generate(base_config(), skel)
    names = set(hostvars(inv))
    assert names == {n for n in hostvars(plain) if "-galera-container-" not in n}
    assert inv["galera_container"]["hosts"] == [] and inv["tinker_container"] == {"hosts": []}


# -- which hosts a network binds -------------------------------------------------------------------

def test_dashed_group_binds_mean_the_underscored_group(skel):
    config = base_config()
    _net(config, 2)["group_binds"] = ["glance-api"]
    inv = generate(config, skel)
    bound = {n for n, hv in hostvars(inv).items() if "storage_address" in hv["container_networks"]}
    assert bound == set(inv["glance_api"]["hosts"]) and all("-glance-container-" in n for n in bound)


def test_reference_group_keeps_containers_whose_host_is_in_it(skel):
    config = base_config()
    _net(config, 2)["reference_group"] = "image_hosts"
    config["image_hosts"] = {"infra1": {"ip": "172.29.236.11"}}
    inv = generate(config, skel)
    bound = {n for n, hv in hostvars(inv).items() if "storage_address" in hv["container_networks"]}
    candidates = set().union(*(inv[g]["hosts"] for g in _net(config, 2)["group_binds"]))
    assert bound == {n for n in candidates if hostvars(inv)[n]["physical_host"] == "infra1"}
    assert {n.split("-")[1] for n in bound} == {"glance", "cinder"}


def test_reference_group_naming_no_group_is_refused_and_the_advice_works(skel):
    config = base_config()
    _net(config, 2)["reference_group"] = "pod9_hosts"
    assert refused(config, skel) == (
        "global_overrides.provider_networks (queue storage): reference_group 'pod9_hosts' names no group; "
        "name a host group of the config (e.g. pod1_hosts) or of env.d")
    _net(config, 2)["reference_group"] = "compute_hosts"
    assert "storage_address" in hostvars(generate(config, skel))["compute1"]["container_networks"]



def test_the_result_shares_nothing_with_the_skeleton(tmp_path):
    # One skeleton serves several runs in one process (inventory-manage): a result edited by its
    # caller must not change the next run.
    write_config(str(tmp_path / "env.d"), {"container_skel": {"galera_container": {
        "properties": {"service_name": "galera", "nested": {"list": [1]}}}}}, "galera.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    first = generate(base_config(), skel)
    galeras = [n for n in hostvars(first) if "galera" in n]
    hostvars(first)[galeras[0]]["properties"]["nested"]["list"].append(2)
    assert hostvars(first)[galeras[1]]["properties"]["nested"] == {"list": [1]}
    again = generate(base_config(), skel, first)   # the stored containers get the skeleton's properties again
    assert {hostvars(again)[n]["properties"]["nested"]["list"][0] for n in galeras} == {1}
    hostvars(again)[galeras[0]]["properties"]["nested"]["list"].append(3)
    assert hostvars(again)[galeras[1]]["properties"]["nested"] == {"list": [1]}
    assert skel.container_skel["galera_container"]["properties"]["nested"] == {"list": [1]}


# -- addresses and networks ------------------------------------------------------------------------

def test_addresses_in_use_are_never_handed_out(skel):
    # Free addresses start at .51 (used_ips ends at .50); hosts, stored entries and stored
    # container networks hold some of them, and every new container must get another one.
    config = base_config()
    config["compute_hosts"]["compute1"]["ip"] = "172.29.236.51"
    config["storage_hosts"]["storage1"] = {"ip": "172.29.236.52", "management_ip": "172.29.236.53"}
    config["image_hosts"]["infra2"]["ip"] = config["shared_infra_hosts"]["infra2"]["ip"] = "172.29.236.54"
    for group in ("repo_infra_hosts", "identity_hosts", "storage_infra_hosts"):
        config[group]["infra2"]["ip"] = "172.29.236.54"
    stored = {"_meta": {"hostvars": {
        "ops1": {"ansible_host": "172.29.236.55", "management_address": "172.29.236.56"},
        "ops2": {"container_networks": {"management_address": {"address": "172.29.236.57"},
                                         "storage_address": {"address": "172.29.244.51"}, "odd": "x"}},
    }}}
    taken = {f"172.29.236.{i}" for i in range(51, 58)} | {"172.29.244.51"}
    inv = generate(config, skel, stored)
    given = [entry["address"] for name, hv in hostvars(inv).items() if name not in ("ops1", "ops2")
             and not hv["properties"].get("is_metal") for entry in hv["container_networks"].values()]
    assert given and not taken & set(given)
    assert "172.29.236.58" in given and "172.29.244.52" in given   # the first free ones are used


def test_used_ips_as_one_string_is_one_entry(skel):
    config = base_config()
    config["used_ips"] = "172.29.236.1,172.29.236.200"
    inv = generate(config, skel)
    mgmt = [hv["management_address"] for hv in hostvars(inv).values() if not hv["properties"].get("is_metal")]
    assert mgmt and all(int(a.rsplit(".", 1)[1]) > 200 for a in mgmt)


def test_a_range_whose_first_part_is_a_block_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_used_ips(["10.0.0.0/24,10.0.1.5"])
    assert str(err.value) == ("used_ips: '10.0.0.0/24,10.0.1.5' is not an address, a 'first,last' range or a "
                              "CIDR block; write e.g. '172.29.236.1,172.29.236.50'")


def test_a_two_address_pool_with_one_in_use_hands_out_the_other():
    assert build_pools({"p": "192.0.2.8/31"}, ["192.0.2.9"])["p"].allocate() == "192.0.2.8"
    pool = build_pools({"p": "192.0.2.0/29"}, ["192.0.2.2", "192.0.2.4,192.0.2.5"])["p"]
    assert [pool.allocate() for _ in range(3)] == ["192.0.2.1", "192.0.2.3", "192.0.2.6"]


def test_addresses_in_use_are_reserved_only_in_their_own_family_and_pool():
    v4 = build_pools({"p": "10.0.0.0/29"}, [])["p"]
    same_number_v6 = int(ipaddress.ip_address("::a00:1"))   # the integer of 10.0.0.1
    v4.reserve_values([(6, same_number_v6), (4, int(ipaddress.ip_address("10.0.0.2"))), (4, 5)])
    assert [v4.allocate() for _ in range(2)] == ["10.0.0.1", "10.0.0.3"]
    pair = build_pools({"p": "192.0.2.8/31"}, [])["p"]   # no network or broadcast address to skip
    pair.reserve_values([(4, int(ipaddress.ip_address("192.0.2.8")))])
    assert pair.allocate() == "192.0.2.9"
    pair = build_pools({"p": "192.0.2.8/31"}, [])["p"]
    pair.reserve_values([(4, int(ipaddress.ip_address("192.0.2.9")))])
    assert pair.allocate() == "192.0.2.8"
    with pytest.raises(ConfigError):
        pair.allocate()


def test_a_host_no_network_binds_has_no_network_entries(skel):
    config = base_config()
    _net(config, 0)["group_binds"] = ["all_containers"]
    before = generate(base_config(), skel)
    hostvars(before)["compute1"]["container_networks"]["stale_address"] = {"address": "10.9.9.9"}
    inv = generate(config, skel, before)
    assert sorted(hostvars(inv)["compute1"]["container_networks"]) == ["storage_address", "tunnel_address"]
    assert hostvars(inv)["infra1"]["container_networks"] == {}


def test_group_binds_may_name_a_group_env_d_spells_with_dashes(tmp_path):
    write_config(str(tmp_path / "env.d"), {
        "component_skel": {"galera-extra": {"belongs_to": ["galera_all"]}},
        "container_skel": {"galera_container": {"contains": ["galera", "galera-extra"]}}}, "x.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    config = base_config()
    _net(config, 2)["group_binds"] = ["galera-extra"]
    inv = generate(config, skel)
    bound = sorted(h for h, hv in hostvars(inv).items() if "storage_address" in hv["container_networks"])
    assert bound == sorted(inv["galera-extra"]["hosts"]) and len(bound) == 2


def test_group_binds_reach_hosts_through_loops_and_missing_groups_of_a_stored_inventory(skel):
    config = base_config()
    before = generate(config, skel)
    before["galera_all"]["children"].append("ops")
    before["ops"] = {"children": ["galera_all", "ops_ghost"], "hosts": ["compute1"]}   # a loop back up
    config["global_overrides"]["provider_networks"].append({"network": {
        "container_bridge": "br-ops", "container_interface": "eth12", "group_binds": ["galera_all"]}})
    inv = generate(config, skel, before)
    bound = sorted(h for h, hv in hostvars(inv).items() if "eth12_address" in hv["container_networks"])
    assert bound == sorted(["compute1"] + inv["galera"]["hosts"]) and len(bound) == 3


def test_a_host_gone_from_the_config_keeps_its_management_entry(skel):
    # An inventory stored by an older version may lack management_address: its ansible_host is used.
    before = generate(base_config(), skel)
    del hostvars(before)["storage1"]["management_address"]
    config = base_config()
    del config["storage_hosts"]
    inv = generate(config, skel, before)
    assert hostvars(inv)["storage1"]["container_networks"]["management_address"]["address"] == "172.29.236.31"


@pytest.mark.parametrize("net, label", [
    ({"net_name": "geneve"}, "net_name geneve"),
    ({"container_bridge": "br-x", "net_name": "geneve"}, "bridge br-x"),
    ({"type": "raw"}, "no ip_from_q, container_bridge or net_name"),
])
def test_a_network_is_named_by_what_it_has(skel, net, label):
    config = base_config()
    config["global_overrides"]["provider_networks"].append({"network": dict(net, static_routes="10.0.0.0/8")})
    assert refused(config, skel) == (
        f"global_overrides.provider_networks[3] ({label}): static_routes must be a list")


# -- groups and hosts ------------------------------------------------------------------------------

def test_a_component_env_d_names_only_in_contains_gets_a_group(tmp_path):
    write_config(str(tmp_path / "env.d"),
                 {"container_skel": {"galera_container": {"contains": ["galera", "galera_extra"]}}}, "x.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    inv = generate(base_config(), skel)
    assert inv["galera_extra"] == {"children": [], "hosts": inv["galera"]["hosts"]}
    assert len(inv["galera"]["hosts"]) == 2


def test_a_stored_host_keeps_its_own_properties_and_gets_its_name_back(skel):
    before = generate(base_config(), skel)
    hostvars(before)["compute1"]["properties"]["operator_note"] = "rack 4"
    hostvars(before)["compute1"]["container_name"] = "old-name"
    inv = generate(base_config(), skel, before)
    assert hostvars(inv)["compute1"]["properties"] == {"is_metal": True, "operator_note": "rack 4"}
    assert hostvars(inv)["compute1"]["container_name"] == "compute1"


# -- user-defined host groups (OSA's user_defined_setup) ---------------------------------------------

def test_a_user_defined_group_is_a_hosts_only_group_outside_hosts(skel):
    config = base_config()
    config["az1_controller_hosts"] = {"infra1": {"ip": "172.29.236.11"}}
    config["my-test_hosts"] = {"infra2": {"ip": "172.29.236.12"}}
    config["my_test_hosts"] = {"compute1": {"ip": "172.29.236.21"}}
    inv = generate(config, skel)
    assert inv["az1_controller_hosts"] == {"hosts": ["infra1"]}
    assert inv["my_test_hosts"] == {"hosts": ["infra2", "compute1"]} and "my-test_hosts" not in inv
    assert not {"az1_controller_hosts", "my_test_hosts"} & set(inv["hosts"]["children"])
    # Two spellings are one group: the same inventory as one underscored key holding both.
    assert inv == generate(base_config() | {"az1_controller_hosts": config["az1_controller_hosts"],
                                            "my_test_hosts": {"infra2": {"ip": "172.29.236.12"},
                                                              "compute1": {"ip": "172.29.236.21"}}}, skel)


def test_a_host_of_user_defined_groups_only_is_no_physical_host_of_anything(skel):
    # OSA names a host its own physical_host (and gives it container_types) only when a group of
    # it feeds a container entry; a host listed in groups of its own only has neither.
    config = base_config()
    config["log_hosts"] = {"log1": {"ip": "172.29.236.60"}}
    config["_spare_hosts"] = {"log1": {"ip": "172.29.236.60"}}
    hv = hostvars(generate(config, skel))
    assert {k: hv["log1"][k] for k in ("physical_host", "physical_host_addr", "container_name",
                                       "physical_host_group", "ansible_host", "is_metal")} == {
        "physical_host": None, "physical_host_addr": None, "container_name": "log1",
        "physical_host_group": "_spare_hosts", "ansible_host": "172.29.236.60", "is_metal": True}
    assert "container_types" not in hv["log1"] and hv["log1"]["container_networks"] == {}
    for host in ("infra1", "compute1"):
        assert (hv[host]["physical_host"], hv[host]["container_types"]) == (host, f"{host}_host_containers")
        assert hv[host]["physical_host_addr"] == hv[host]["ansible_host"]


def test_a_stored_physical_host_follows_its_own_address(skel):
    # A host a previous release made its own physical_host keeps it, with its address kept current.
    config = base_config()
    config["log_hosts"] = {"log1": {"ip": "172.29.236.60"}}
    stored = generate(config, skel)
    hostvars(stored)["log1"].update(physical_host="log1", physical_host_addr="172.29.236.60")
    config["log_hosts"]["log1"]["ip"] = "172.29.236.61"
    hv = hostvars(generate(config, skel, stored))["log1"]
    assert (hv["physical_host"], hv["physical_host_addr"]) == ("log1", "172.29.236.61")
    # A physical_host that names no entry leaves the address as stored.
    hostvars(stored)["log1"].update(physical_host="gone1", physical_host_addr="10.9.9.9")
    hv = hostvars(generate(config, skel, stored))["log1"]
    assert (hv["physical_host"], hv["physical_host_addr"]) == ("gone1", "10.9.9.9")


def test_a_host_fed_later_becomes_its_own_physical_host(skel):
    config = base_config()
    config["log_hosts"] = {"log1": {"ip": "172.29.236.60"}}
    stored = generate(config, skel)
    config["compute_hosts"]["log1"] = {"ip": "172.29.236.60"}
    hv = hostvars(generate(config, skel, stored))["log1"]
    assert (hv["physical_host"], hv["container_types"], hv["physical_host_addr"]) == (
        "log1", "log1_host_containers", "172.29.236.60")
