"""The strict config checks, in-process: every kind of refusal, its boundaries and the exact line.

tests/test_config_strict.py runs the same refusals through the real script; these call the
checks the script runs (``config_problems``, as ``--check`` does) on a config loaded from files,
so each line can be compared whole: the file that set the key, the key or value at fault and
the advice. Fixing what a line names makes the problem go away.
"""

from __future__ import annotations

import copy
import os

import pytest

from helpers import ENVIRONMENT, base_config, write_config
from osa_inventory.errors import ConfigError
from osa_inventory.generate.config import load_skeleton, load_user_config
from osa_inventory.generate.pipeline import generate
from osa_inventory.generate.strict import MAX_AFFINITY, all_problems
from osa_inventory.generate.validate import config_problems

USER_CONFIG = "openstack_user_config.yml"
GROUP_ADVICE = "(declare a custom group in env.d, or set [inventory] unknown_host_groups = warn)"
NAME_ADVICE = ("is not a valid inventory name; use letters, digits, dots, dashes and underscores, "
               "not starting with a dash")


@pytest.fixture(scope="module")
def skel(tmp_path_factory):
    return load_skeleton(ENVIRONMENT, str(tmp_path_factory.mktemp("noconfig")))


def loaded(tmp_path, config: dict, conf_d: dict | None = None) -> tuple[dict, str]:
    """The config as the script reads it (from files, remembering where each key came from)."""
    folder = str(tmp_path / "config")
    path = write_config(folder, config)
    if conf_d:
        write_config(os.path.join(folder, "conf.d"), conf_d, "extra.yml")
    return load_user_config(folder), path


def problems(tmp_path, skel, config: dict, conf_d: dict | None = None, mode: str = "error") -> list[str]:
    """Every error ``--check`` reports for the config."""
    errors, warnings = config_problems(loaded(tmp_path, config, conf_d)[0], skel, mode)
    assert mode == "warn" or warnings == []
    return errors


def conf_d_path(tmp_path) -> str:
    return str(tmp_path / "config" / "conf.d" / "extra.yml")


def user_config_path(tmp_path) -> str:
    return str(tmp_path / "config" / USER_CONFIG)


def mgmt(config: dict) -> dict:
    return config["global_overrides"]["provider_networks"][0]["network"]


def test_the_base_config_has_no_problem(tmp_path, skel):
    assert problems(tmp_path, skel, base_config()) == []


# -- unknown host groups -----------------------------------------------------------------------------

def test_misspelt_host_group_names_its_file_and_the_closest_group(tmp_path, skel):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: shared_infra_host names no group of env.d, so its hosts would get no "
        f"containers; did you mean shared_infra_hosts? {GROUP_ADVICE}"]
    config["shared_infra_hosts"] = config.pop("shared_infra_host")  # the advice
    assert problems(tmp_path, skel, config) == []


def test_unknown_hosts_key_from_conf_d_is_named_once_with_that_file(tmp_path, skel):
    extra = {"storge_hosts": {"storage9": {"ip": "172.29.236.39"}}}
    assert problems(tmp_path, skel, base_config(), extra) == [
        f"{conf_d_path(tmp_path)}: storge_hosts names no group of env.d, so its hosts would get no "
        f"containers; did you mean storage_hosts? {GROUP_ADVICE}"]


@pytest.mark.parametrize("key", ["db_host", "compute_hots"])
def test_keys_that_look_like_host_groups_are_refused(tmp_path, skel, key):
    # "db_host" ends in host; "compute_hots" is a near miss of compute_hosts: both hold hosts with an ip.
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    found = problems(tmp_path, skel, config)
    assert len(found) == 1 and found[0].startswith(f"{user_config_path(tmp_path)}: {key} names no group")


@pytest.mark.parametrize("key, value", [
    ("_infra", {"infra1": {"ip": "172.29.236.11"}}),          # holds an anchor for later groups
    ("backup_host", "172.29.236.5"),                          # a setting, not hosts
    ("compute_hots", {"note": "text"}),                       # no host with an ip in it
    ("db_host", {"db1": {"address": "172.29.236.40"}}),
])
def test_keys_that_hold_no_hosts_are_left_alone(tmp_path, skel, key, value):
    config = base_config()
    config[key] = value
    assert problems(tmp_path, skel, config) == []


def test_warn_mode_turns_unknown_groups_into_warnings_only(tmp_path, skel):
    config = base_config()
    config["custom_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    config["compute_hosts"]["compute1"]["ip"] = "not-an-ip"
    loaded_config = loaded(tmp_path, config)[0]
    errors, warnings = config_problems(loaded_config, skel, "warn")
    assert [w.split(": ", 1)[1].split(",")[0] for w in warnings] == ["custom_hosts names no group of env.d"]
    assert len(errors) == 1 and "compute1: ip 'not-an-ip'" in errors[0]
    errors, warnings = all_problems(loaded_config, skel, "error")
    assert warnings == [] and len(errors) == 2 and "custom_hosts names no group" in errors[0]


def test_warn_mode_reaches_generate(tmp_path, skel):
    config = base_config()
    config["custom_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    with pytest.raises(ConfigError, match="custom_hosts names no group"):
        generate(config, skel)
    inv = generate(config, skel, unknown_groups="warn")
    # OSA's leniency: the host is in the inventory, in its own group, with no containers.
    assert inv["custom_hosts"]["hosts"] == ["extra1"]
    assert inv["_meta"]["hostvars"]["extra1"]["ansible_host"] == "172.29.236.40"


def test_a_plain_dict_config_is_named_the_user_config(skel):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    errors, _ = all_problems(config, skel, "error")
    assert errors[0].startswith("the user config: shared_infra_host names no group")


# -- group_binds -------------------------------------------------------------------------------------

def test_misspelt_group_binds_entry(tmp_path, skel):
    config = base_config()
    config["global_overrides"]["provider_networks"][2]["network"]["group_binds"].append("nova_compte")
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: global_overrides.provider_networks[2] group_binds entry 'nova_compte' "
        "names no group; did you mean nova_compute?; fix the name or declare the group in env.d"]


def test_group_binds_problem_names_the_file_that_set_global_overrides(tmp_path, skel):
    config = base_config()
    overrides = config.pop("global_overrides")
    overrides["provider_networks"][0]["network"]["group_binds"] = ["hosts", 5, "zzzzzz"]
    found = problems(tmp_path, skel, config, {"global_overrides": overrides})
    where = f"{conf_d_path(tmp_path)}: global_overrides.provider_networks[0] group_binds entry"
    assert found == [f"{where} 5 names no group; fix the name or declare the group in env.d",
                     f"{where} 'zzzzzz' names no group; fix the name or declare the group in env.d"]


@pytest.mark.parametrize("bind", [
    "all", "hosts", "all_containers", "lxc_hosts",   # made by the generator itself
    "nova_all",                                     # only a belongs_to target in env.d
    "glance-api",                                   # dashes read as underscores
    "compute_hosts",
])
def test_group_binds_accept_every_group_the_inventory_has(tmp_path, skel, bind):
    config = base_config()
    mgmt(config)["group_binds"] = [bind]
    assert problems(tmp_path, skel, config) == []


def test_group_binds_may_name_a_custom_host_group_in_warn_mode(tmp_path, skel):
    config = base_config()
    config["custom_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    mgmt(config)["group_binds"] = ["custom_hosts"]
    assert problems(tmp_path, skel, config, mode="warn") == []


def test_group_binds_that_is_not_a_list_is_left_to_validate(tmp_path, skel):
    config = base_config()
    mgmt(config)["group_binds"] = "hosts"
    assert problems(tmp_path, skel, config) == [
        "global_overrides.provider_networks[0]: group_binds must be a list of group names"]


# -- host names and addresses ------------------------------------------------------------------------

def test_every_bad_host_name_is_reported(tmp_path, skel):
    config = base_config()
    config["compute_hosts"] = {True: {"ip": "172.29.236.21"}, 7: {"ip": "172.29.236.22"},
                               "": {"ip": "172.29.236.23"}, "compute 1": {"ip": "172.29.236.24"},
                               "a/b": {"ip": "172.29.236.25"}, "-compute": {"ip": "172.29.236.26"},
                               "tab\tbed": {"ip": "172.29.236.27"}, "compute-1.example_2": {"ip": "172.29.236.28"}}
    where = f"{user_config_path(tmp_path)}: compute_hosts: host name"
    assert problems(tmp_path, skel, config) == [
        f"{where} True is a YAML bool, not a name; quote it or rename the host",
        f"{where} 7 is a YAML int, not a name; quote it or rename the host",
        f"{where} '' {NAME_ADVICE}",
        f"{where} 'compute 1' {NAME_ADVICE}",
        f"{where} 'a/b' {NAME_ADVICE}",
        f"{where} '-compute' {NAME_ADVICE}",
        f"{where} 'tab\\tbed' {NAME_ADVICE}",
    ]


def test_every_host_group_is_checked_past_one_that_is_not_a_mapping(tmp_path, skel):
    config = base_config()
    config["compute_hosts"] = ["compute1"]
    config["storage_hosts"]["storage1"]["ip"] = "10.0.0.300"
    config["network_hosts"] = {"net1": None, "net2": {"ip": "10.0.0.301"}}
    found = problems(tmp_path, skel, config)
    assert found[0] == "host group compute_hosts must map host names to their settings (ip: ...)"
    assert found[1:] == [
        f"{user_config_path(tmp_path)}: storage_hosts: host storage1: ip '10.0.0.300' is not an IP address; "
        "write it like 172.29.236.11",
        f"{user_config_path(tmp_path)}: network_hosts: host net2: ip '10.0.0.301' is not an IP address; "
        "write it like 172.29.236.11"]


@pytest.mark.parametrize("settings, shown", [
    ({"ip": "10.20.0.1311"}, "ip '10.20.0.1311'"),
    ({"ip": [1, 2]}, "ip [1, 2]"),
    ({"ip": 1234}, "ip 1234"),
    ({"ip": "172.29.236.0/24"}, "ip '172.29.236.0/24'"),
    ({"ip": "172.29.236.21", "management_ip": "10.0.0.300"}, "management_ip '10.0.0.300'"),
    ({"ip": "172.29.236.21", "management_ip": ""}, "management_ip ''"),
])
def test_addresses_that_are_not_addresses(tmp_path, skel, settings, shown):
    config = base_config()
    config["compute_hosts"]["compute1"] = settings
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: compute_hosts: host compute1: {shown} is not an IP address; "
        "write it like 172.29.236.11"]


@pytest.mark.parametrize("ip", [" 172.29.236.21 ", "fd00::21"])
def test_addresses_in_either_version_with_blanks_around_are_addresses(tmp_path, skel, ip):
    config = base_config()
    config["compute_hosts"]["compute1"]["management_ip"] = ip
    assert problems(tmp_path, skel, config) == []


def test_a_missing_ip_is_left_to_its_own_advice_and_management_ip_still_checked(tmp_path, skel):
    config = base_config()
    config["compute_hosts"]["compute1"] = {"ip": "", "management_ip": "bad"}
    assert problems(tmp_path, skel, config) == [
        "host compute1 in compute_hosts has no 'ip'; add its address as ip: A.B.C.D",
        f"{user_config_path(tmp_path)}: compute_hosts: host compute1: management_ip 'bad' is not an IP address; "
        "write it like 172.29.236.11"]


def test_affinity_up_to_the_limit_is_accepted_beyond_it_refused(tmp_path, skel):
    config = base_config()
    affinity = config["shared_infra_hosts"]["infra1"]["affinity"] = {
        "galera_container": MAX_AFFINITY, "rabbit_mq_container": True, "memcached_container": "3"}
    assert problems(tmp_path, skel, config) == []
    affinity["galera_container"] = MAX_AFFINITY + 1
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: shared_infra_hosts: host infra1: affinity galera_container: "
        f"{MAX_AFFINITY + 1} is not a whole number from 0 to {MAX_AFFINITY}; no deployment runs that many "
        "containers of a kind on one host"]


# -- pools ------------------------------------------------------------------------------------------

def overlap(path: str, first: tuple[str, str], second: tuple[str, str]) -> str:
    return (f"{path}: cidr_networks.{first[0]} ({first[1]}) and cidr_networks.{second[0]} ({second[1]}) "
            "overlap, so containers would share addresses; make them disjoint")


@pytest.mark.parametrize("storage, shown", [
    ("172.29.238.0/24", "172.29.238.0/24"),       # inside management
    ("172.29.236.0/24", "172.29.236.0/24"),       # the same start
    ("172.29.239.255/32", "172.29.239.255/32"),   # management's last address
    ("172.29.238.7/24", "172.29.238.0/24"),       # host bits set: its network
])
def test_overlapping_pools_name_both(tmp_path, skel, storage, shown):
    config = base_config()
    config["cidr_networks"]["storage"] = storage
    found = problems(tmp_path, skel, config)
    path = user_config_path(tmp_path)
    both = ("management", "172.29.236.0/22"), ("storage", shown)
    # Named in the order of their first address (the narrower first when both start together).
    assert found in ([overlap(path, *both)], [overlap(path, *reversed(both))]), found


def test_adjacent_pools_do_not_overlap(tmp_path, skel):
    config = base_config()
    config["cidr_networks"]["storage"] = "172.29.235.0/24"    # ends just below management
    config["cidr_networks"]["tunnel"] = "172.29.240.0/32"     # starts just above it
    config["used_ips"] = []
    assert problems(tmp_path, skel, config) == []


def test_every_overlap_is_named_with_the_network_that_takes_it_in(tmp_path, skel):
    config = base_config()
    # Sorted by start: a small pool first, then a wide one, then two pools inside the wide one,
    # the first of which ends where the wide one ends.
    config["cidr_networks"] = {"a": "10.0.0.0/26", "wide": "10.0.1.0/24", "tail": "10.0.1.128/25",
                               "inner": "10.0.1.192/26", "management": "172.29.236.0/22",
                               "v6": "fd00::/64", "v6b": "fd00::100/120"}
    config.pop("used_ips")
    for net in config["global_overrides"]["provider_networks"][1:]:
        net["network"]["ip_from_q"] = "a"
    path = user_config_path(tmp_path)
    assert problems(tmp_path, skel, config) == [
        overlap(path, ("wide", "10.0.1.0/24"), ("tail", "10.0.1.128/25")),
        overlap(path, ("wide", "10.0.1.0/24"), ("inner", "10.0.1.192/26")),
        overlap(path, ("v6", "fd00::/64"), ("v6b", "fd00::100/120")),
    ]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "127.0.0.0/8", "0.0.0.0/8", "0.1.0.0/16",
                                  "224.0.0.0/4", "ff00::/8", "::/64", "::1/128"])
def test_pools_of_special_addresses_are_refused(tmp_path, skel, cidr):
    config = base_config()
    config["cidr_networks"]["tunnel"] = cidr
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: cidr_networks.tunnel = {cidr} takes in loopback, multicast or "
        "unspecified addresses; give the real network of that queue"]


@pytest.mark.parametrize("cidr", ["fd00::/120", "::100/120", "1.0.0.0/24", "126.0.0.0/8"])
def test_ordinary_pools_of_either_version_are_accepted(tmp_path, skel, cidr):
    config = base_config()
    config["cidr_networks"]["tunnel"] = cidr
    config["used_ips"] = config["used_ips"][:1]
    assert problems(tmp_path, skel, config) == []


def test_every_pool_is_checked_past_a_bad_one(tmp_path, skel):
    config = base_config()
    config["cidr_networks"] = {"bogus": "nonsense", "loop": "127.0.0.0/8", **config["cidr_networks"],
                               "inside": "172.29.237.0/24"}
    path = user_config_path(tmp_path)
    found = [p for p in problems(tmp_path, skel, config) if "cidr_networks." in p]
    assert found == [
        f"{path}: cidr_networks.loop = 127.0.0.0/8 takes in loopback, multicast or unspecified addresses; "
        "give the real network of that queue",
        overlap(path, ("management", "172.29.236.0/22"), ("inside", "172.29.237.0/24"))]


def test_pool_problems_name_the_file_that_set_cidr_networks(tmp_path, skel):
    config = base_config()
    cidrs = config.pop("cidr_networks")
    cidrs["storage"] = "172.29.238.0/24"
    found = problems(tmp_path, skel, config, {"cidr_networks": cidrs})
    assert found == [overlap(conf_d_path(tmp_path), ("management", "172.29.236.0/22"), ("storage", "172.29.238.0/24"))]


# -- static routes -----------------------------------------------------------------------------------

def test_every_bad_static_route_is_reported(tmp_path, skel):
    config = base_config()
    mgmt(config)["static_routes"] = [
        {"cidr": "10.0.0.0/33", "gateway": "172.29.236.1"},
        {"cidr": "10.1.0.0/16", "gateway": "gw"},
        {"cidr": "10.2.0.0/16", "gateway": "fd00::1"},
        {"cidr": "fd01::/64", "gateway": "172.29.236.1"},
        {"cidr": "nonsense", "gateway": "172.29.236.1"},
        {"cidr": "10.3.4.5/16", "gateway": " 172.29.236.1 "},   # host bits and blanks: fine
        {"cidr": "fd02::/64", "gateway": "fd00::1"},
    ]
    where = "global_overrides.provider_networks[0].static_routes"
    assert problems(tmp_path, skel, config) == [
        f"{where}[0]: cidr '10.0.0.0/33' is not a network; write it like 172.29.236.0/22",
        f"{where}[1]: gateway 'gw' is not an IPv4 address; write the router's address",
        f"{where}[2]: gateway 'fd00::1' is not an IPv4 address; write the router's address",
        f"{where}[3]: gateway '172.29.236.1' is not an IPv6 address; write the router's address",
        f"{where}[4]: cidr 'nonsense' is not a network; write it like 172.29.236.0/22",
    ]


def test_routes_checked_past_one_lacking_a_field(tmp_path, skel):
    config = base_config()
    mgmt(config)["static_routes"] = [{"cidr": "10.0.0.0/8"}, {"gateway": "172.29.236.1"}, "10.0.0.0/8",
                                     {"cidr": "10.1.0.0/16", "gateway": "gw"}]
    found = problems(tmp_path, skel, config)
    assert found == [
        "global_overrides.provider_networks[0] (queue management): static_routes[0] lacks gateway; "
        "each route needs both cidr and gateway",
        "global_overrides.provider_networks[0].static_routes[3]: gateway 'gw' is not an IPv4 address; "
        "write the router's address"]


def test_static_routes_of_a_later_network_are_checked(tmp_path, skel):
    config = base_config()
    routes = [{"cidr": "10.1.0.0/16", "gateway": "gw"}]
    config["global_overrides"]["provider_networks"][2]["network"]["static_routes"] = copy.deepcopy(routes)
    assert problems(tmp_path, skel, config) == [
        "global_overrides.provider_networks[2].static_routes[0]: gateway 'gw' is not an IPv4 address; "
        "write the router's address"]
