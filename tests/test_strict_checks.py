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
from osa_inventory.generate.group_names import near_miss, user_defined_groups
from osa_inventory.generate.pipeline import generate
from osa_inventory.generate.strict import MAX_AFFINITY, all_problems
from osa_inventory.generate.validate import config_problems

USER_CONFIG = "openstack_user_config.yml"
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


# -- user-defined host groups and near misses --------------------------------------------------------

def keep_advice(key: str) -> str:
    return f"(if {key} is meant, declare it as a group in env.d or set [inventory] unknown_host_groups = warn)"


def hosts_line(path: str, key: str, target: str) -> str:
    """The refusal of a ``*_hosts`` key that is a near miss of env.d's ``target``."""
    return (f"{path}: {key} is a near miss of env.d's group {target}, so its hosts would get no containers; "
            f"did you mean {target}? {keep_advice(key)}")


def no_group_line(path: str, key: str, target: str) -> str:
    """The refusal of a key that holds hosts but does not end in ``hosts``."""
    return (f"{path}: {key} holds hosts but is no host group (only keys ending in 'hosts' are), so its hosts "
            f"would be left out; did you mean {target}? {keep_advice(key)}")


@pytest.mark.parametrize("key", [
    "az1_controller_hosts",     # OSA's availability-zone example
    "_infrastructure_hosts",    # OSA's prod-ceph example: holds an anchor for the real groups
    "my-test_hosts",            # dashed: read as my_test_hosts
    "ceph_mgr_hosts",           # two typos from ceph_mds_hosts and ceph_mon_hosts: a name of its own
    "db_hosts",                 # two from mq_hosts
    "compute_hosts_old",        # does not end in hosts and is not one typo away: not a group, left alone
])
def test_user_defined_host_groups_are_accepted(tmp_path, skel, key):
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    assert problems(tmp_path, skel, config) == []


@pytest.mark.parametrize("key, target", [
    ("comptue_hosts", "compute_hosts"),          # two neighbours swapped
    ("storge_hosts", "storage_hosts"),           # one dropped
    ("storagge_hosts", "storage_hosts"),         # one added
    ("Compute_hosts", "compute_hosts"),          # one changed
    ("shared-infrs_hosts", "shared_infra_hosts"),  # dashes read as underscores first
])
def test_a_hosts_key_one_typo_from_an_env_d_group_is_refused(tmp_path, skel, key, target):
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    assert problems(tmp_path, skel, config) == [hosts_line(user_config_path(tmp_path), key, target)]


@pytest.mark.parametrize("key, target", [
    ("shared_infra_host", "shared_infra_hosts"),
    ("shared-infra_host", "shared_infra_hosts"),   # dashes read as underscores first
    ("compute_hots", "compute_hosts"),
    ("compute_hostss", "compute_hosts"),
    ("db_host", "db_hosts"),                       # ends in host: OSA drops it, whatever env.d says
])
def test_a_key_holding_hosts_that_is_no_group_is_refused(tmp_path, skel, key, target):
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    assert problems(tmp_path, skel, config) == [no_group_line(user_config_path(tmp_path), key, target)]


def test_the_suggested_name_makes_the_problem_go_away(tmp_path, skel):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    assert problems(tmp_path, skel, config) == [
        no_group_line(user_config_path(tmp_path), "shared_infra_host", "shared_infra_hosts")]
    config["shared_infra_hosts"] = config.pop("shared_infra_host")
    assert problems(tmp_path, skel, config) == []


def test_a_near_miss_in_conf_d_is_named_once_with_that_file(tmp_path, skel):
    extra = {"storge_hosts": {"storage9": {"ip": "172.29.236.39"}}}
    assert problems(tmp_path, skel, base_config(), extra) == [
        hosts_line(conf_d_path(tmp_path), "storge_hosts", "storage_hosts")]


@pytest.mark.parametrize("reference", ["storge_hosts", "storge-hosts"])
def test_a_name_a_reference_group_uses_is_meant(tmp_path, skel, reference):
    config = base_config()
    config["storge_hosts"] = {"storage1": {"ip": "172.29.236.31"}}
    config["storge-host"] = {"storage1": {"ip": "172.29.236.31"}}
    mgmt(config)["reference_group"] = reference
    assert problems(tmp_path, skel, config) == [
        no_group_line(user_config_path(tmp_path), "storge-host", "storge_hosts")]


def zone_skel(tmp_path):
    """The shipped skeleton plus a config env.d of three zones, each nesting its hosts' containers."""
    env = {"component_skel": {f"az{n}_hosts": {"belongs_to": [f"az{n}_all"]} for n in (1, 2, 3)},
           "container_skel": {f"az{n}_containers": {"properties": {"is_nest": True}} for n in (1, 2, 3)}}
    env["container_skel"]["mon_az1_container"] = {"belongs_to": ["az1_mon_containers"], "contains": ["mon_az1"]}
    write_config(str(tmp_path / "config" / "env.d"), env, "zones.yml")
    return load_skeleton(ENVIRONMENT, str(tmp_path / "config"))


@pytest.mark.parametrize("key", ["az4_hosts", "az12_hosts", "az_hosts", "az1_mon_hosts"])
def test_numbered_siblings_and_groups_env_d_feeds_are_no_typos(tmp_path, key):
    skel = zone_skel(tmp_path)
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    assert problems(tmp_path, skel, config) == []


@pytest.mark.parametrize("key, target", [("azl_hosts", "az1_hosts"), ("az1_mon_host", "az1_mon_hosts")])
def test_a_letter_for_a_digit_and_a_near_miss_of_a_fed_group_are_typos(tmp_path, key, target):
    skel = zone_skel(tmp_path)
    config = base_config()
    config[key] = {"extra1": {"ip": "172.29.236.40"}}
    line = (hosts_line if key.endswith("hosts") else no_group_line)(user_config_path(tmp_path), key, target)
    assert problems(tmp_path, skel, config) == [line]


@pytest.mark.parametrize("key, value", [
    ("_infra", {"infra1": {"ip": "172.29.236.11"}}),          # holds an anchor for later groups
    ("backup_host", "172.29.236.5"),                          # a setting, not hosts
    ("compute_hots", {"note": "text"}),                       # no host with an ip in it
    ("db_host", {"db1": {"address": "172.29.236.40"}}),
    (7, {"db1": {"ip": "172.29.236.40"}}),                    # no name at all
])
def test_keys_that_hold_no_hosts_are_left_alone(tmp_path, skel, key, value):
    config = base_config()
    config[key] = value
    assert problems(tmp_path, skel, config) == []


def test_declaring_a_meant_name_in_env_d_keeps_it(tmp_path):
    # The advice of the refusal, followed: the group declared in env.d is a group of env.d.
    config = base_config()
    config["comptue_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    skel = load_skeleton(ENVIRONMENT, str(tmp_path / "config"))
    assert problems(tmp_path, skel, config) == [
        hosts_line(user_config_path(tmp_path), "comptue_hosts", "compute_hosts")]
    write_config(str(tmp_path / "config" / "env.d"), {"physical_skel": {"comptue_hosts": {"belongs_to": ["hosts"]}}},
                 "mine.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path / "config"))
    assert problems(tmp_path, skel, config) == []
    assert generate(config, skel)["comptue_hosts"]["hosts"] == ["extra1"]


def test_warn_mode_turns_near_misses_into_warnings_only(tmp_path, skel):
    config = base_config()
    config["comptue_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    config["compute_hosts"]["compute1"]["ip"] = "not-an-ip"
    loaded_config = loaded(tmp_path, config)[0]
    errors, warnings = config_problems(loaded_config, skel, "warn")
    assert warnings == [hosts_line(user_config_path(tmp_path), "comptue_hosts", "compute_hosts")]
    assert len(errors) == 1 and "compute1: ip 'not-an-ip'" in errors[0]
    errors, warnings = all_problems(loaded_config, skel, "error")
    assert warnings == [] and len(errors) == 2 and errors[0] == hosts_line(
        user_config_path(tmp_path), "comptue_hosts", "compute_hosts")


def test_warn_mode_reaches_generate(tmp_path, skel):
    config = base_config()
    config["comptue_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    with pytest.raises(ConfigError, match="comptue_hosts is a near miss"):
        generate(config, skel)
    inv = generate(config, skel, unknown_groups="warn")
    # OSA's way: the host is in the inventory, in its own group, with no containers.
    assert inv["comptue_hosts"] == {"hosts": ["extra1"]}
    assert inv["_meta"]["hostvars"]["extra1"]["ansible_host"] == "172.29.236.40"


def test_a_plain_dict_config_is_named_the_user_config(skel):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    errors, _ = all_problems(config, skel, "error")
    assert errors[0].startswith("the user config: shared_infra_host holds hosts but is no host group")


def test_user_defined_groups_are_the_config_groups_env_d_does_not_know(tmp_path):
    skel = zone_skel(tmp_path)
    config = base_config()
    config["az1_hosts"] = {"infra1": {"ip": "172.29.236.11"}}          # env.d's
    config["az1_mon_hosts"] = {"infra1": {"ip": "172.29.236.11"}}      # fed by env.d
    config["zone-b_hosts"] = {"infra2": {"ip": "172.29.236.12"}}
    config["zone_b_hosts"] = {"compute1": {"ip": "172.29.236.21"}, "infra2": {"ip": "172.29.236.12"}}
    config["_anchor_hosts"] = {"storage1": {"ip": "172.29.236.31"}}
    config["_infra"] = {"infra1": {"ip": "172.29.236.11"}}            # no group
    assert user_defined_groups(config, skel) == {
        "_anchor_hosts": ["storage1"], "zone_b_hosts": ["infra2", "compute1"]}
    assert user_defined_groups(base_config(), skel) == {}


@pytest.mark.parametrize("a, b, typo", [
    ("compute_hosts", "compute_host", True), ("compute_hosts", "compte_hosts", True),
    ("compute_hosts", "compute_hostx", True), ("compute_hosts", "xompute_hosts", True),
    ("compute_hosts", "ocmpute_hosts", True), ("compute_hosts", "compute_hotss", True),
    ("compute_hosts", "compute_hosts", False), ("compute_hosts", "compute", False),
    ("compute_hosts", "comptue_host", False), ("compute_hosts", "computehosts_", False),
    ("ceph_mds_hosts", "ceph_mon_hosts", False),
    ("az3_hosts", "az4_hosts", False), ("az1_hosts", "az11_hosts", False), ("az12", "az21", False),
    ("az1_hosts", "azl_hosts", True), ("az1_hosts", "az1x_hosts", True), ("a1", "1a", True),
    ("ab", "b", True), ("a", "", True), ("1", "", False), ("ab", "ba", True), ("abc", "acb", True),
    ("abcd", "acbd", True), ("abcd", "badc", False), ("abcd", "acdb", False),
])
def test_one_typo_apart(a, b, typo):
    assert (near_miss(a, [b]), near_miss(b, [a])) == ((b, a) if typo else (None, None))


def test_near_miss_names_the_first_close_name_in_sorted_order():
    assert near_miss("ab_hosts", ["ac_hosts", "zz", "aa_hosts", "ab_host"]) == "aa_hosts"
    assert near_miss("ab_hosts", []) is None


# -- group_binds -------------------------------------------------------------------------------------

def test_a_group_binds_near_miss_is_refused(tmp_path, skel):
    config = base_config()
    config["global_overrides"]["provider_networks"][2]["network"]["group_binds"].append("nova_compte")
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: global_overrides.provider_networks[2] group_binds entry 'nova_compte' "
        "names no group; did you mean nova_compute?; fix the name or declare the group in env.d"]


def binds_line(path: str, i: int, bind: str) -> str:
    return (f"{path}: global_overrides.provider_networks[{i}] group_binds entry {bind!r} names no group of env.d "
            "or the config (one an older release had?), so it binds only what the stored inventory still holds "
            "in that group; remove it if it is no longer needed")


@pytest.mark.parametrize("mode", ["error", "warn"])
def test_a_group_binds_name_no_group_is_close_to_is_a_warning(tmp_path, skel, mode):
    config = base_config()
    config["global_overrides"]["provider_networks"][1]["network"]["group_binds"].append("neutron_linuxbridge_agent")
    config["global_overrides"]["provider_networks"][2]["network"]["group_binds"].append("az4_all")
    errors, warnings = config_problems(loaded(tmp_path, config)[0], skel, mode)
    path = user_config_path(tmp_path)
    assert errors == [] and warnings == [binds_line(path, 1, "neutron_linuxbridge_agent"),
                                         binds_line(path, 2, "az4_all")]


def test_group_binds_problem_names_the_file_that_set_global_overrides(tmp_path, skel):
    config = base_config()
    overrides = config.pop("global_overrides")
    overrides["provider_networks"][0]["network"]["group_binds"] = ["hosts", 5, "zzzzzz", "host", None]
    folder = str(tmp_path / "config")
    write_config(folder, config)
    write_config(os.path.join(folder, "conf.d"), {"global_overrides": overrides}, "extra.yml")
    errors, warnings = config_problems(load_user_config(folder), skel, "error")
    where = f"{conf_d_path(tmp_path)}: global_overrides.provider_networks[0] group_binds entry"
    assert errors == [f"{where} 5 names no group; fix the name or declare the group in env.d",
                      f"{where} 'host' names no group; did you mean hosts?; fix the name or declare the group "
                      "in env.d",
                      f"{where} None names no group; fix the name or declare the group in env.d"]
    assert warnings == [binds_line(conf_d_path(tmp_path), 0, "zzzzzz")]


@pytest.mark.parametrize("bind", [
    "all", "hosts", "all_containers", "lxc_hosts",   # made by the generator itself
    "nova_all",                                     # only a belongs_to target in env.d
    "glance-api",                                   # dashes read as underscores
    "compute_hosts",
    "custom_hosts",                                 # a user-defined host group
    "infra1_host_containers",                       # a config host's containers
    "az1_mon_hosts", "az1_mon_all",                 # fed by env.d, named by no env.d key
])
def test_group_binds_accept_every_group_the_inventory_has(tmp_path, bind):
    skel = zone_skel(tmp_path)
    config = base_config()
    config["custom_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    mgmt(config)["group_binds"] = [bind]
    assert config_problems(loaded(tmp_path, config)[0], skel, "error") == ([], [])


def test_a_near_miss_of_a_user_defined_group_is_a_typo_too(tmp_path, skel):
    config = base_config()
    config["custom_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    mgmt(config)["group_binds"] = ["custom_host"]
    assert problems(tmp_path, skel, config) == [
        f"{user_config_path(tmp_path)}: global_overrides.provider_networks[0] group_binds entry 'custom_host' "
        "names no group; did you mean custom_hosts?; fix the name or declare the group in env.d"]


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


def draw_from(config: dict, *queues: str) -> None:
    """Provider networks that hand out addresses from ``queues``."""
    config["global_overrides"]["provider_networks"] += [{"network": {"ip_from_q": q, "group_binds": ["nova_compute"]}}
                                                        for q in queues]


def test_only_pools_addresses_are_handed_out_from_may_not_overlap(tmp_path, skel):
    # A pod layout keeps a 'management' network that no provider network draws from: OSA accepts it.
    config = base_config()
    config["cidr_networks"].update({"pod1_mgmt": "172.29.236.0/24", "pod2_mgmt": "172.29.237.0/24",
                                    "spare": "172.29.237.128/25"})
    for i, pod in ((0, "pod1_mgmt"), (1, "pod2_mgmt")):
        config["global_overrides"]["provider_networks"][i]["network"]["ip_from_q"] = pod
    assert problems(tmp_path, skel, config) == []
    draw_from(config, "management")
    path = user_config_path(tmp_path)
    assert problems(tmp_path, skel, config) == [
        overlap(path, ("pod1_mgmt", "172.29.236.0/24"), ("management", "172.29.236.0/22")),
        overlap(path, ("management", "172.29.236.0/22"), ("pod2_mgmt", "172.29.237.0/24"))]


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
    draw_from(config, "wide", "tail", "inner", "v6", "v6b")
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
    draw_from(config, "inside")
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
