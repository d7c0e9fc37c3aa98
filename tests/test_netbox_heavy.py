"""The heavy NetBox tests, run once per CI run (tests/netbox_heavy.py says which Python runs them):
a large round trip with the number of requests it takes, and an unchanged run of it.

Its size is ``OSA_TEST_NETBOX_LARGE`` compute hosts (default 260: past one 250-object batch of each
kind, so the request bound is tested as it grows). 3000 does not fit CI's budget: on the shared 2-core
machine NetBox spent about 0.11 s of CPU per device created (176 s for about 1600), and each host is a
device, an interface, an address and a primary-address update, so a 3000-host first write alone comes
to some 20 minutes of CPU, its removal more; run it by hand with ``OSA_TEST_NETBOX_LARGE=3000``.
"""

from __future__ import annotations

import copy
import os

from netbox_heavy import heavy
from osa_inventory.testing import assert_same, make_inventory
from test_netbox_plugin import deployment, make  # noqa: F401 (deployment is a fixture)

LARGE = int(os.environ.get("OSA_TEST_NETBOX_LARGE") or 260)


@heavy
def test_a_large_inventory_round_trips_in_a_bounded_number_of_requests(deployment):  # noqa: F811
    inventory = make_inventory(LARGE)
    hosts = len(inventory["_meta"]["hostvars"])
    writer = make(deployment)
    writer.write(copy.deepcopy(inventory))
    sent = sum(writer._store.client.sent.values())
    # Reads, scaffold and document: a few dozen; then each kind of object in batches of 250.
    assert sent <= 60 + 6 * (hosts // 250 + 1), writer._store.client.sent
    reader = make(deployment, cache="false")
    assert_same(reader.load(), inventory, f"load() of {hosts} hosts without the cache")
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
