"""Property-based tests (Hypothesis): generated configs, osa.ini files and stored inventories.

Whatever the input, valid or broken: the generator either returns an
inventory whose addresses are unique and inside their networks, or raises
one ConfigError line (and a stored inventory with hostile values where it is
read back is refused by the shape check in one line, or used); the real script either exits 0 with JSON Ansible
accepts, or exits 1 with exactly one line on stderr and nothing written;
never a traceback. Example counts are bounded, and the ``ci`` profile
(CI=true, see conftest.py) is derandomised.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import ENVIRONMENT, base_config, run_script, write_config, write_ini

from osa_inventory.errors import ConfigError, InventoryError
from osa_inventory.generate.config import load_skeleton
from osa_inventory.generate.pipeline import generate
from osa_inventory.inventory.changes import compare
from osa_inventory.inventory.edits import clear_ips, remove_hosts
from osa_inventory.manage.stale import find_stale
from osa_inventory.manage.versions import diff_lines
from osa_inventory.manage.views import HOST_COLUMNS, export, groups_per_host, host_rows, hosts_per_group
from osa_inventory.inventory.shape import check_inventory

# Hypothesis explores the same inputs on every Python, and its script runs are the costliest examples
# of the suite: once per CI run.
pytestmark = pytest.mark.once
SKELETON = load_skeleton(ENVIRONMENT, "/nonexistent")
INVENTORY = "openstack_inventory.json"
SCRIPT_RUNS = settings(max_examples=12, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

host_names = st.one_of(
    st.sampled_from(["infra1", "compute1", "compute-2", "node.example", "", "a b", "-x", "a/b", "c\tx"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
addresses = st.one_of(
    st.builds(lambda a, b: f"172.29.{a}.{b}", st.integers(236, 239), st.integers(1, 254)),
    st.sampled_from(["10.20.0.1311", "not-an-ip", "172.29.236.0/24", "1.2.3.4; rm -rf /", "fd00::5", ""]),
    st.lists(st.integers(0, 9), max_size=2))
networks = st.one_of(
    st.builds(lambda a, p: f"172.{a}.0.0/{p}", st.integers(16, 31), st.integers(16, 28)),
    st.sampled_from(["172.29.236.0/22", "0.0.0.0/0", "::/0", "fd00::/120", "172.29.238.0/24", "bogus"]))
group_keys = st.sampled_from(["compute_hosts", "shared-infra_hosts", "storage_hosts", "shared_infra_host",
                              "comptue_hosts", "log_hosts"])


@st.composite
def configs(draw) -> dict:
    """The base config with a few random changes, most of them plausible, some broken."""
    config = base_config()
    for _ in range(draw(st.integers(0, 4))):
        key = draw(group_keys)
        hosts = config.setdefault(key, {}) if isinstance(config.get(key), dict) else {}
        config[key] = hosts
        settings_ = {"ip": draw(addresses)}
        if draw(st.booleans()):
            settings_["affinity"] = {"galera_container": draw(st.integers(0, 3) | st.just(10**8))}
        hosts[draw(host_names)] = settings_
    if draw(st.booleans()):
        config["cidr_networks"][draw(st.sampled_from(["tunnel", "storage", "extra"]))] = draw(networks)
    if draw(st.booleans()):
        config["used_ips"] = draw(st.one_of(st.just("172.29.236.1,172.29.236.100"),
                                            st.lists(st.sampled_from(["172.29.236.7", "bogus", "10.0.0.0/8"]))))
    if draw(st.booleans()):
        binds = config["global_overrides"]["provider_networks"][2]["network"]["group_binds"]
        binds.append(draw(st.sampled_from(["nova_compte", "glance-api", "hosts", "all_containers"])))
    return config


def assert_addresses_sound(inventory: dict, config: dict) -> None:
    """Every container address lies in a cidr_networks network and no two containers share one."""
    nets = [ipaddress.ip_network(c, strict=False) for c in config["cidr_networks"].values()]
    seen: dict[str, str] = {}
    for host, hv in inventory["_meta"]["hostvars"].items():
        if (hv.get("properties") or {}).get("is_metal"):
            continue
        for entry in (hv.get("container_networks") or {}).values():
            address = entry.get("address")
            if not address:
                continue
            parsed = ipaddress.ip_address(address)
            assert any(parsed in net for net in nets), (host, address)
            assert seen.setdefault(address, host) == host, (address, seen[address], host)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_generator_is_right_or_refuses_in_one_line(config):
    try:
        inventory = generate(copy.deepcopy(config), SKELETON)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    json.dumps(inventory)
    assert_addresses_sound(inventory, config)
    assert all(isinstance(h, str) and h for h in inventory["_meta"]["hostvars"])


def assert_run_contract(result, folder: str, stored_before: bool = False) -> dict | None:
    """Exit 0 with JSON (and silence on stderr), or exit 1 with one line and nothing written.

    ``stored_before``: an inventory file was there before the run (the caller checks it is unchanged).
    """
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert result.stderr == ""
        inventory = json.loads(result.stdout)
        assert isinstance(inventory["_meta"]["hostvars"], dict)
        return inventory
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    assert "unexpected" not in lines[0]
    assert stored_before or not os.path.exists(os.path.join(folder, INVENTORY))
    return None


@SCRIPT_RUNS
@given(configs())
def test_script_on_generated_configs(config):
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "config")
        write_config(folder, config)
        inventory = assert_run_contract(run_script(folder, ini=write_ini(tmp)), folder)
        if inventory is not None:
            assert_addresses_sound(inventory, config)


ini_sections = st.sampled_from(["inventory", "inventry", "filesystem", "etcd", "fs_copy", "Inventory"])
ini_options = st.sampled_from(["backend", "backends", "plugin_paths", "path", "backups", "lock_timeout",
                               "timeout", "unknown_host_groups", "plugin", "endpoint"])
ini_values = st.sampled_from(["filesystem", "etcd", "", "5", "-1", "soon", "warn", "error", "store",
                              "/nonexistent", "%(x)s", "ünï"])


@SCRIPT_RUNS
@given(st.lists(st.tuples(ini_sections, st.lists(st.tuples(ini_options, ini_values), max_size=3)), max_size=3))
def test_script_on_generated_osa_ini(sections):
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "store"))
        text = ""
        for name, options in sections:
            text += f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in dict(options).items())
        folder = os.path.join(tmp, "config")
        write_config(folder, base_config())
        ini = write_ini(tmp, text)
        result = run_script(folder, ini=ini, env={"OSA_INVENTORY_ETCD_ENDPOINTS": "http://127.0.0.1:9"}, timeout=120)
        assert_run_contract(result, folder)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
json_values = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)
stored_inventories = st.one_of(
    json_values,
    st.fixed_dictionaries({"_meta": st.fixed_dictionaries({"hostvars": st.dictionaries(
        st.sampled_from(["infra1", "compute1", "x"]),
        st.one_of(st.just({}), json_values,
                  st.fixed_dictionaries({"container_networks": json_values})), max_size=2)})},
        optional={"all": json_values, "compute_hosts": json_values,
                  "galera": st.fixed_dictionaries({"hosts": json_values})}))


@SCRIPT_RUNS
@given(stored_inventories)
def test_script_on_generated_stored_inventories(stored):
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "config")
        write_config(folder, base_config())
        path = os.path.join(folder, INVENTORY)
        with open(path, "w") as fh:
            json.dump(stored, fh)
        before = open(path, "rb").read()
        if assert_run_contract(run_script(folder, ini=write_ini(tmp)), folder, stored_before=True) is None:
            assert open(path, "rb").read() == before


# -- a real stored inventory with hostile values where the generator reads it back -------------------

GENERATED = generate(base_config(), SKELETON)
ENTRIES = sorted(GENERATED["_meta"]["hostvars"])
GROUPS = sorted(k for k in GENERATED if k != "_meta")
# What the generator, --check and inventory-manage read from a stored entry, and a key nothing reads.
READ_BACK = ["physical_host", "container_name", "component", "physical_host_group", "container_types",
             "container_tech", "ansible_host", "management_address", "properties", "container_networks",
             "is_metal", "gateway", "physical_host_addr", "unrelated"]
entry_edits = st.tuples(st.just("entry"), st.sampled_from(ENTRIES + ["new-entry"]), st.sampled_from(READ_BACK),
                        json_values)
network_edits = st.tuples(st.just("network"), st.sampled_from(ENTRIES), st.sampled_from(
    ["management_address", "tunnel_address", "storage_address", "x"]), json_values)
group_edits = st.tuples(st.just("group"), st.sampled_from(GROUPS + ["new_group"]),
                        st.sampled_from(["hosts", "children", "vars"]),
                        st.one_of(json_values, st.lists(st.sampled_from(ENTRIES + GROUPS + ["stranger"]), max_size=3)))
removals = st.tuples(st.just("remove"), st.sampled_from(ENTRIES + GROUPS), st.none(), st.none())


def hostile(edits: list) -> dict:
    """The generated inventory with ``edits`` applied: a value put at a key, or an entry or group removed."""
    stored = copy.deepcopy(GENERATED)
    hostvars = stored["_meta"]["hostvars"]
    for kind, name, key, value in edits:
        if kind == "entry":
            hostvars.setdefault(name, {})[key] = value
        elif kind == "network" and isinstance(hostvars.get(name), dict):
            networks = hostvars[name].get("container_networks")
            if isinstance(networks, dict):
                networks.setdefault(key, {})["address"] = value
        elif kind == "group":
            group = stored.setdefault(name, {})
            if isinstance(group, dict):
                group[key] = value
        elif kind == "remove":
            hostvars.pop(name, None) if name in ENTRIES else stored.pop(name, None)
    return stored


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(entry_edits, network_edits, group_edits, removals), min_size=1, max_size=4))
def test_generator_on_hostile_stored_inventories(edits):
    # What the Backend wrapper does before the generator sees a stored inventory: the shape check.
    stored = hostile(edits)
    try:
        check_inventory(stored, "here")
        inventory = generate(base_config(), SKELETON, stored)
    except InventoryError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    json.dumps(inventory)
    assert all(isinstance(hv.get("physical_host"), (str, type(None))) for hv in inventory["_meta"]["hostvars"].values())
    # What inventory-manage shows, compares (--diff, --history: versions are checked the same way) and
    # changes of an inventory that passed the check raises nothing either (any exception fails this test).
    for column in HOST_COLUMNS:
        assert len(host_rows(stored, column)) == len(stored["_meta"]["hostvars"])
    groups_per_host(stored), hosts_per_group(stored), json.dumps(export(stored))
    clear_ips(copy.deepcopy(stored)), remove_hosts(copy.deepcopy(stored), ENTRIES[:2], with_containers=True)
    compare(GENERATED, stored), diff_lines(GENERATED, stored), diff_lines(stored, GENERATED)
    find_stale(stored, base_config(), SKELETON, checked=True)


@SCRIPT_RUNS
@given(st.lists(st.one_of(entry_edits, network_edits, group_edits, removals), min_size=1, max_size=3))
def test_script_on_hostile_stored_inventories(edits):
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "config")
        write_config(folder, base_config())
        path = os.path.join(folder, INVENTORY)
        with open(path, "w") as fh:
            json.dump(hostile(edits), fh)
        before = open(path, "rb").read()
        if assert_run_contract(run_script(folder, ini=write_ini(tmp)), folder, stored_before=True) is None:
            assert open(path, "rb").read() == before
