"""The NetBox backend's pure parts, without a NetBox: what jsonb would change is stored as JSON text,
the inventory splits into skeleton and hosts and joins back exactly, which hosts are VMs, the names
NetBox can hold, the addresses derived from the variables, and which value a reader takes.
"""

from __future__ import annotations

import json

import pytest

from osa_inventory.backends.netbox import codec, mapping, world
from osa_inventory.errors import StorageError
from osa_inventory.testing import assert_same, awkward_values_inventory, edge_inventory, make_inventory


@pytest.mark.parametrize("value", [1e20, 1.5e300, -0.0, [1, {"a": -0.0}], "nul\x00", {"k\x00": 1}, "\ud800",
                                   float("nan")])
def test_what_jsonb_would_change_is_not_safe(value):
    assert not codec.jsonb_safe(value)


@pytest.mark.parametrize("value", [16.0, 0.1, 5e-324, 1e-7, 2 ** 70, -(2 ** 64), "Zürich 🚀", {"": [None, True]}])
def test_what_jsonb_keeps_is_safe(value):
    assert codec.jsonb_safe(value)


@pytest.mark.parametrize("value", [{"a": 1e20, "b": -0.0}, ["x\x00", 2.0], {"k": "\ud800"}, {"plain": [1, 2.5]}])
def test_encode_decode_is_exact(value):
    stored = codec.encode(value, "a value")
    assert json.dumps(codec.decode(json.loads(json.dumps(stored)), "it")) == json.dumps(value)
    assert ("value" in stored) is codec.jsonb_safe(value)
    assert "\x00" not in json.dumps(stored, ensure_ascii=False)


def test_nan_and_a_damaged_value_are_refused_in_one_line():
    with pytest.raises(StorageError) as caught:
        codec.encode({"x": float("nan")}, "the variables of host 'h'")
    assert "host 'h'" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(StorageError) as caught:
        codec.decode({"something": "else"}, "custom field osa_inventory of dcim/devices/4/")
    assert "dcim/devices/4/" in str(caught.value) and "changelog" in str(caught.value)


@pytest.mark.parametrize("inventory", [make_inventory(3), edge_inventory(), awkward_values_inventory(),
                                       {"all": {"vars": {}}}])
def test_split_and_join_give_the_inventory_back(inventory):
    skeleton, hosts = mapping.split(json.loads(json.dumps(inventory)))
    assert_same(mapping.join(skeleton, hosts), inventory)


def test_containers_are_vms_of_their_physical_host_and_nothing_nests():
    hosts = [("infra1", {"physical_host": "infra1"}), ("c1", {"physical_host": "infra1"}),
             ("c2", {"physical_host": "c1"}), ("lost", {"physical_host": "gone"}), ("odd", 2.0)]
    assert mapping.kinds(hosts) == {"infra1": None, "c1": "infra1", "c2": None, "lost": None, "odd": None}


def test_names_netbox_cannot_hold_are_shortened_uniquely():
    names = ["infra1", "INFRA1", "x" * 80, "x" * 80 + "y", "ok", " padded"]
    out = mapping.nb_names(names)
    assert out["ok"] == "ok"
    assert all(len(n) <= mapping.MAX_NAME for n in out.values())
    assert len({n.casefold() for n in out.values()}) == len(names)
    assert out["infra1"] != "infra1" and out["INFRA1"] != "INFRA1"  # equal up to case: both get a hash


def test_addresses_come_from_the_networks_and_ansible_host_is_primary():
    variables = {"ansible_host": "10.0.0.5", "container_networks": {
        "management_address": {"address": "10.0.0.5", "netmask": "255.255.252.0"},
        "storage_address": {"address": "10.1.0.5", "netmask": "255.255.255.0"},
        "bad": {"address": "not-an-ip"}, "v6": {"address": "fd00::5", "netmask": "64"}}}
    found, primary = mapping.addresses(variables)
    assert [(a.interface, a.cidr) for a in found] == [("management_address", "10.0.0.5/22"),
                                                      ("storage_address", "10.1.0.5/24"), ("v6", "fd00::5/64")]
    assert primary == {"4": "10.0.0.5/22"}
    found, primary = mapping.addresses({"ansible_host": "10.9.9.9"})
    assert [(a.interface, a.cidr) for a in found] == [("management", "10.9.9.9/32")] and primary == {"4": "10.9.9.9/32"}


def test_a_shared_address_belongs_to_the_device():
    hosts = [("infra1", {"physical_host": "infra1", "ansible_host": "10.0.0.1"}),
             ("infra1_cinder_api", {"physical_host": "infra1", "ansible_host": "10.0.0.1"})]
    specs = mapping.specs(hosts)
    assert [a.ip for a in specs["infra1"].addresses] == ["10.0.0.1"] and specs["infra1"].primary
    assert specs["infra1_cinder_api"].addresses == [] and specs["infra1_cinder_api"].primary == {}


def _host(record: dict, name: str = "h1", object_id: int = 1) -> world.Host:
    return world.Host(kind="device", id=object_id, name=name, cluster=None, device=None, primary={},
                      record=record, host=name)


def test_a_reader_takes_the_value_of_the_committed_revision():
    old = codec.encode({"host": "h1", "vars": {"v": 1}}, "old")
    new = codec.encode({"host": "h1", "vars": {"v": 2}}, "new")
    unfinished = _host({"revision": "W", **new, "before": {"revision": "R0", **old}})
    assert world.committed([unfinished], [("h1", "R0")]) == ([("h1", {"v": 1})], [])
    assert world.committed([unfinished], [("h1", "W")]) == ([("h1", {"v": 2})], [])
    assert world.committed([unfinished], [("h1", "R9")]) == ([], ["h1"])  # changed since: read again
