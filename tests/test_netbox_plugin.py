"""The NetBox plugin against the real test NetBox (tests/netbox_server.py): the plugin contract, the
mapping a NetBox user sees, and the refusals of bad options.

Each test has a deployment of its own (tests/netbox_deployments.py), removed when it ends. The
inventories stay small (tens of hosts). NetBox writes about 45 objects a second and CI runs four
Python versions against one NetBox, so only the tests not marked ``heavy`` run on every version;
the contract suite and the rest run once per CI run (tests/netbox_heavy.py).
"""

from __future__ import annotations

import copy
import json

import pytest

from netbox_deployments import deployment_options, purge
from netbox_heavy import heavy
from netbox_server import unique_prefix
from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.settings import Settings
from osa_inventory.testing import StorageContract, assert_same, awkward_values_inventory, make_inventory

PLUGIN = load_plugin_module("netbox", Settings(path=None))


@pytest.fixture
def deployment(netbox, tmp_path):
    """register() arguments of a deployment of this test's own; everything of it is deleted afterwards."""
    prefix = unique_prefix("nbp")
    options = deployment_options(netbox, str(tmp_path), prefix)
    yield options
    left = purge(netbox.client(), prefix)
    assert not left, f"could not delete: {left}"


def make(options: dict, **extra: str):
    storage = PLUGIN.Storage()
    storage.register({**options, **extra})
    return storage


@heavy
class TestNetBoxContract(StorageContract):
    """The project-wide plugin contract (osa_inventory.testing), run against NetBox."""

    large_hosts = 30   # tens of hosts; test_netbox_heavy.py writes a larger one (OSA_TEST_NETBOX_LARGE)

    @pytest.fixture
    def make_storage(self, deployment):
        return lambda: make(deployment)

    @pytest.fixture
    def register_failures(self, deployment, tmp_path):
        def attempt(**changes):
            options = {k: v for k, v in {**deployment, **changes}.items() if v is not None}
            return lambda: PLUGIN.Storage().register(options)
        return [
            attempt(url=None),
            attempt(url="ftp://example.org"),
            attempt(url="http://user:pw@127.0.0.1:1"),
            attempt(url="http://127.0.0.1:1/?x=1"),
            attempt(token=None),
            attempt(token="0123456789abcdef0123456789abcdef01234567"),   # a v1 token
            attempt(site=None),
            attempt(site="two words"),
            attempt(tag="a/b"),
            attempt(timeout="soon"),
            attempt(verify="maybe"),
            attempt(ca_cert=str(tmp_path / "no-such-ca.pem")),
            attempt(change_records="0"),
            attempt(colour="blue"),
        ]

    @pytest.fixture(autouse=True)
    def _secrets(self, netbox):
        self.secrets = (netbox.write_token, netbox.write_token.split(".")[1])


@heavy
def test_the_token_never_shows(netbox, deployment):
    storage = make(deployment)
    assert netbox.write_token not in storage.describe()
    assert netbox.write_token not in repr(storage)
    assert netbox.write_token.split(".")[1] not in repr(storage.opts)
    with pytest.raises(Exception) as caught:
        PLUGIN.Storage().register({**deployment, "site": "bad site"})
    assert netbox.write_token not in str(caught.value)


def test_a_small_inventory_maps_round_trips_and_costs_one_request_unchanged(netbox, deployment):
    """What every Python version checks against NetBox, with ONE write into one deployment (each write
    and each deployment costs NetBox seconds of CPU, and four versions share 2 cores in CI): the
    contract's hardest round trip (awkward values), the mapping a NetBox user sees, and an unchanged
    run's one request with the cache."""
    inventory = awkward_values_inventory()
    make(deployment).write(copy.deepcopy(inventory))
    assert_same(make(deployment, cache="false").load(), inventory)
    _check_the_mapping(netbox.client(), deployment, inventory)

    reader = make(deployment)
    assert_same(reader.load(), inventory)
    assert sum(reader._store.client.sent.values()) == 1, reader._store.client.sent
    writer = make(deployment)
    writer.write(copy.deepcopy(inventory))
    assert sum(writer._store.client.sent.values()) == 2, writer._store.client.sent  # the document and its ETag


def _check_the_mapping(client, deployment: dict, inventory: dict) -> None:
    """Hosts are devices, containers VMs in their host's cluster with their addresses, all in the deployment."""
    tag = deployment["tag"]
    devices = {d["name"]: d for d in client.get("dcim/devices/", params={"tag": tag, "limit": 100}).json()["results"]}
    vms = {v["name"]: v for v in client.get("virtualization/virtual-machines/",
                                            params={"tag": tag, "limit": 100}).json()["results"]}
    # Containers are VMs; every other entry is a device, those with no address too (the awkward ones).
    every = inventory["_meta"]["hostvars"]
    hostvars = {name: hv for name, hv in every.items() if isinstance(hv, dict) and "ansible_host" in hv}
    assert set(vms) == {name for name, hv in every.items()
                        if isinstance(hv, dict) and hv.get("physical_host") not in (None, name)}
    assert set(devices) == set(every) - set(vms) and {"infra1", "compute1"} <= set(devices)
    for name, vm in vms.items():
        assert vm["cluster"]["name"] == "infra1" and vm["device"]["name"] == "infra1"
        assert vm["primary_ip4"]["address"].split("/")[0] == hostvars[name]["ansible_host"]
        assert vm["role"]["slug"] == deployment["vm_role"]
        record = vm["custom_fields"]["osa_inventory"]
        assert record["value"]["host"] == name and record["value"]["vars"] == hostvars[name]
    for name, device in devices.items():
        assert device["site"]["slug"] == deployment["site"]
        if name in hostvars:
            assert device["primary_ip4"]["address"].split("/")[0] == hostvars[name]["ansible_host"]
        else:
            assert device["primary_ip4"] is None
    assert devices["infra1"]["cluster"]["name"] == "infra1"
    assert devices["compute1"]["cluster"] is None
    ips = client.get("ipam/ip-addresses/", params={"tag": tag, "limit": 100}).json()["results"]
    assert {ip["address"].split("/")[0] for ip in ips} == {v["ansible_host"] for v in hostvars.values()}
    assert all(ip["vrf"]["name"] == deployment["vrf"] for ip in ips)
    vm_ifaces = client.get("virtualization/interfaces/", params={"tag": tag, "limit": 100}).json()["results"]
    assert {i["name"] for i in vm_ifaces} == {"management_address"}


@heavy
def test_an_existing_device_is_used_not_duplicated(netbox, deployment, netbox_objects):
    inventory = make_inventory(1, n_infra=1)
    first = make(deployment)
    first.load()
    # The operator's own device "compute1" in the site, with a tag and a comment of its own.
    first.write(make_inventory(0, n_infra=1))   # makes the site, roles and types
    client = netbox.client()
    site = client.get("dcim/sites/", params={"slug": deployment["site"]}).json()["results"][0]
    dtype = client.get("dcim/device-types/", params={"slug": deployment["device_type"]}).json()["results"][0]
    role = client.get("dcim/device-roles/", params={"slug": deployment["device_role"]}).json()["results"][0]
    own_tag = netbox_objects.create("extras/tags/", {"name": netbox_objects.name("own"),
                                                     "slug": netbox_objects.name("own")})
    device = netbox_objects.create("dcim/devices/", {
        "name": "compute1", "site": site["id"], "device_type": dtype["id"], "role": role["id"],
        "comments": "racked by hand", "tags": [own_tag["id"]]})
    make(deployment).write(copy.deepcopy(inventory))
    found = client.get("dcim/devices/", params={"site_id": site["id"], "name": "compute1"}).json()["results"]
    assert [d["id"] for d in found] == [device["id"]]
    assert found[0]["comments"] == "racked by hand"
    assert {t["slug"] for t in found[0]["tags"]} == {own_tag["slug"], deployment["tag"]}
    assert_same(make(deployment).load(), inventory)
    # Dropped from the inventory, the operator's device stays, without our tag and field.
    make(deployment).write(make_inventory(0, n_infra=1, revision=1))
    kept = client.get(f"dcim/devices/{device['id']}/").json()
    assert kept["comments"] == "racked by hand"
    assert [t["slug"] for t in kept["tags"]] == [own_tag["slug"]]
    assert kept["custom_fields"]["osa_inventory"] is None


@heavy
def test_names_netbox_cannot_hold_are_shortened_and_kept_exactly(netbox, deployment):
    inventory = make_inventory(1, n_infra=1)
    long_name = "compute-" + "x" * 80
    inventory["_meta"]["hostvars"][long_name] = {"ansible_host": "10.64.1.1"}
    inventory["_meta"]["hostvars"]["COMPUTE1"] = {"ansible_host": "10.64.1.2"}  # compute1 up to case
    inventory["compute_hosts"]["hosts"] += [long_name, "COMPUTE1"]
    make(deployment).write(copy.deepcopy(inventory))
    assert_same(make(deployment, cache="false").load(), inventory)
    names = [d["name"] for d in netbox.client().get("dcim/devices/", params={"tag": deployment["tag"],
                                                                                "limit": 100}).json()["results"]]
    assert all(len(n) <= 64 for n in names)
    assert len({n.casefold() for n in names}) == len(names) == 4


@heavy
def test_values_jsonb_would_change_are_stored_as_json_text(netbox, deployment):
    inventory = make_inventory(1, n_infra=1)
    inventory["_meta"]["hostvars"]["compute1"]["big"] = 1e300
    make(deployment).write(copy.deepcopy(inventory))
    devices = netbox.client().get("dcim/devices/", params={"tag": deployment["tag"], "name": "compute1"}).json()
    record = devices["results"][0]["custom_fields"]["osa_inventory"]
    assert "json" in record and json.loads(record["json"])["vars"]["big"] == 1e300
    assert_same(make(deployment, cache="false").load(), inventory)
