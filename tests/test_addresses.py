"""Address pools: reserved space, ordering, huge and IPv6 networks, exhaustion."""

import ipaddress

import pytest

from osa_inventory.generate.addresses import AddressPool, address_value, build_pools, parse_network, parse_used_ips
from osa_inventory.errors import ConfigError


def test_network_and_broadcast_are_never_handed_out():
    pool = AddressPool("q", ipaddress.ip_network("192.0.2.0/30"))
    assert [pool.allocate(), pool.allocate()] == ["192.0.2.1", "192.0.2.2"]
    with pytest.raises(ConfigError, match=r"cidr_networks\.q .*no free address"):
        pool.allocate()


def test_used_ranges_and_single_addresses_are_skipped():
    pools = build_pools({"mgmt": "10.0.0.0/24"}, ["10.0.0.1,10.0.0.10", "10.0.0.12", "10.0.0.20,10.0.0.13"])
    got = [pools["mgmt"].allocate() for _ in range(3)]
    assert got == ["10.0.0.11", "10.0.0.21", "10.0.0.22"]


def test_reserved_addresses_are_skipped_and_intervals_merge():
    pool = AddressPool("q", ipaddress.ip_network("10.1.0.0/24"))
    for a in ("10.1.0.1", "10.1.0.2", "10.1.0.4", "10.1.0.3"):
        pool.reserve(a)
    pool.reserve("not-an-address")
    pool.reserve("fd00::1")  # another family: ignored
    assert pool._starts == [0x0A010000, 0x0A0100FF] and pool._ends == [0x0A010004, 0x0A0100FF]
    assert pool.allocate() == "10.1.0.5"


def test_reservations_outside_the_network_are_clipped():
    pool = AddressPool("q", ipaddress.ip_network("10.2.0.0/29"))
    pool.reserve_range(int(ipaddress.ip_address("10.1.255.0")), int(ipaddress.ip_address("10.2.0.2")))
    assert pool.allocate() == "10.2.0.3"


def test_a_slash_eight_costs_only_what_is_handed_out():
    pools = build_pools({"big": "10.0.0.0/8"}, ["10.0.0.0,10.127.255.255"])
    first = [pools["big"].allocate() for _ in range(1000)]
    assert first[0] == "10.128.0.0"
    assert len(set(first)) == 1000
    # The whole reserved half is one interval plus the broadcast: nothing was enumerated.
    assert len(pools["big"]._starts) <= 3


def test_ipv6_pools_allocate_in_order():
    pools = build_pools({"v6": "fd00:1::/64"}, ["fd00:1::1,fd00:1::ff"])
    got = [pools["v6"].allocate() for _ in range(3)]
    assert got == ["fd00:1::100", "fd00:1::101", "fd00:1::102"]
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("fd00:1::/64") for a in got)


def test_bad_cidr_names_the_queue():
    with pytest.raises(ConfigError, match=r"cidr_networks\.storage: '10\.0\.0\.0/33'"):
        parse_network("storage", "10.0.0.0/33")


def test_used_ips_may_name_a_cidr_block():
    pools = build_pools({"mgmt": "10.0.0.0/24"}, ["10.0.0.0/26"])
    assert pools["mgmt"].allocate() == "10.0.0.64"


@pytest.mark.parametrize("entry", ["10.0.0.1,10.0.0.2,10.0.0.3", "nope", "10.0.0.1,fd00::1", "10.0.0.0/40"])
def test_bad_used_ips_entries_are_named(entry):
    with pytest.raises(ConfigError, match="used_ips"):
        parse_used_ips([entry])


def test_address_value_parses_both_families_and_rejects_junk():
    assert address_value("10.0.0.1") == (4, 0x0A000001)
    assert address_value(" fd00::2 ") == (6, (0xFD00 << 112) + 2)
    assert address_value("10.0.0.256") is None
    assert address_value(None) is None


def test_is_reserved_answers_for_every_address_at_and_around_each_reserved_range():
    pool = AddressPool("q", ipaddress.ip_network("10.3.0.0/28"))  # .0 and .15 reserved by the pool itself
    base = int(ipaddress.ip_address("10.3.0.0"))
    pool.reserve_range(base + 4, base + 6)
    pool.reserve("10.3.0.9")
    reserved = {0, 4, 5, 6, 9, 15}
    assert [n for n in range(16) if pool.is_reserved(base + n)] == sorted(reserved)
    assert not pool.is_reserved(base - 1)  # below the first range: nothing before it
    empty = AddressPool("q", ipaddress.ip_network("10.4.0.0/31"))  # a /31 reserves nothing
    assert not empty.is_reserved(int(ipaddress.ip_address("10.4.0.0")))
