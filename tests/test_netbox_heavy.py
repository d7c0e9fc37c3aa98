"""The heavy NetBox tests, run once per CI run (tests/netbox_heavy.py says which Python runs them):
a 3000-host round trip with the number of requests it takes, and an unchanged run of it.
"""

from __future__ import annotations

import copy

from netbox_heavy import heavy
from osa_inventory.testing import assert_same, make_inventory
from test_netbox_plugin import deployment, make  # noqa: F401 (deployment is a fixture)

LARGE = 3000


@heavy
def test_a_3000_host_inventory_round_trips_in_a_bounded_number_of_requests(deployment):  # noqa: F811
    inventory = make_inventory(LARGE)
    hosts = len(inventory["_meta"]["hostvars"])
    writer = make(deployment)
    writer.write(copy.deepcopy(inventory))
    sent = sum(writer._store.client.sent.values())
    # Reads, scaffold and document: a few dozen; then each kind of object in batches of 250.
    assert sent <= 60 + 6 * (hosts // 250 + 1), writer._store.client.sent
    reader = make(deployment, cache="false")
    assert_same(reader.load(), inventory, "load() of 3000 hosts without the cache")
    assert sum(reader._store.client.sent.values()) <= 2 + 2 * (hosts // 1000 + 1)
    unchanged = make(deployment)
    unchanged.write(copy.deepcopy(inventory))
    assert sum(unchanged._store.client.sent.values()) == 2, unchanged._store.client.sent
    cached = make(deployment)
    assert_same(cached.load(), inventory)
    assert sum(cached._store.client.sent.values()) == 1
    # A change of one host is a handful of requests, not thousands.
    changed = copy.deepcopy(inventory)
    changed["_meta"]["hostvars"]["compute7"]["note"] = "changed"
    one = make(deployment)
    one.load()
    one.write(copy.deepcopy(changed))
    assert sum(one._store.client.sent.values()) <= 40, one._store.client.sent
    assert_same(make(deployment, cache="false").load(), changed)
