"""Address pools that never enumerate their network.

A pool is a CIDR minus reserved addresses (network and broadcast, the
deployer's ``used_ips`` ranges, every address already in the inventory or
given to a host). Reserved space is kept as sorted, merged integer
intervals, and new addresses are handed out in ascending order from a
cursor, so each allocation costs O(log reserved) however large the network
(a /8, or an IPv6 /64) and the result is reproducible: the same config and
the same stored inventory always yield the same addresses.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from typing import Iterable

from ..errors import ConfigError



def address_value(address: object) -> tuple[int, int] | None:
    """``(version, integer)`` of an address string, or None if it is not one.

    ``inet_pton`` does in C what ``ipaddress`` does in Python; a large
    inventory reserves tens of thousands of stored addresses every run.
    """
    text = str(address).strip()
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            return version, int.from_bytes(socket.inet_pton(family, text), "big")
        except (OSError, ValueError):
            continue
    return None


def parse_network(queue: str, cidr: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``cidr_networks.<queue>`` as a network; a bad value names the queue."""
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"cidr_networks.{queue}: {cidr!r} is not a valid CIDR; write it like 172.29.236.0/22") from None


def parse_used_ips(entries: Iterable[object]) -> list[tuple[int, int, int]]:
    """``used_ips`` entries (``"a,b"`` inclusive ranges, single addresses, CIDR blocks) as (version, lo, hi)."""
    out = []
    for entry in entries or ():
        parts = [p.strip() for p in str(entry).split(",")]
        try:
            if len(parts) == 1 and "/" in parts[0]:
                # Not in OSA's format, which ignores it silently; a block is what the deployer meant.
                block = ipaddress.ip_network(parts[0], strict=False)
                lo, hi = block.network_address, block.broadcast_address
            elif len(parts) == 1:
                lo = hi = ipaddress.ip_address(parts[0])
            elif len(parts) == 2:
                lo, hi = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
            else:
                raise ValueError
            if lo.version != hi.version:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"used_ips: {entry!r} is not an address, a 'first,last' range or a CIDR block; "
                "write e.g. '172.29.236.1,172.29.236.50'") from None
        lo_i, hi_i = sorted((int(lo), int(hi)))
        out.append((lo.version, lo_i, hi_i))
    return out


class AddressPool:
    """Free addresses of one ``cidr_networks`` queue."""

    def __init__(self, queue: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network):
        self.queue = queue
        self.network = network
        self.first = int(network.network_address)
        self.last = int(network.broadcast_address)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._cursor = self.first
        if network.num_addresses >= 4:  # a /31 or /32 (RFC 3021) has no network or broadcast address
            self.reserve_range(self.first, self.first)
            self.reserve_range(self.last, self.last)

    @property
    def netmask(self) -> str:
        return str(self.network.netmask)

    def reserve_range(self, lo: int, hi: int) -> None:
        """Mark ``lo..hi`` (inclusive integers) as taken; ranges outside the network are clipped."""
        lo, hi = max(lo, self.first), min(hi, self.last)
        if lo > hi:
            return
        # Ranges are kept sorted, disjoint and not adjacent: the ones this range touches are i..j-1.
        i = bisect.bisect_left(self._ends, lo - 1)
        j = bisect.bisect_right(self._starts, hi + 1)
        if i < j:
            lo, hi = min(lo, self._starts[i]), max(hi, self._ends[j - 1])
        self._starts[i:j] = [lo]
        self._ends[i:j] = [hi]

    def is_reserved(self, value: int) -> bool:
        """Whether the integer address ``value`` is taken (network, broadcast, ``used_ips``, reserved)."""
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and self._ends[i] >= value

    def reserve(self, address: object) -> None:
        """Mark one address as taken (anything that is not an address of this network is ignored)."""
        parsed = address_value(address)
        if parsed is not None and parsed[0] == self.network.version:
            self.reserve_range(parsed[1], parsed[1])

    def reserve_values(self, values: Iterable[tuple[int, int]]) -> None:
        """Mark already parsed ``(version, integer)`` addresses as taken."""
        version, first, last = self.network.version, self.first, self.last
        for v, value in values:
            if v == version and first <= value <= last:
                self.reserve_range(value, value)

    def allocate(self) -> str:
        """The lowest free address at or after the cursor; it becomes reserved."""
        value = self._cursor
        i = bisect.bisect_right(self._starts, value) - 1
        if i >= 0 and self._ends[i] >= value:
            value = self._ends[i] + 1  # ranges never touch, so the address after one is free
        if value > self.last:
            raise ConfigError(
                f"cidr_networks.{self.queue} ({self.network}) has no free address left; "
                "widen the network or release addresses listed in used_ips")
        self.reserve_range(value, value)
        self._cursor = value + 1
        # ip_address(2) would be 0.0.0.2 even in an IPv6 pool: build the pool's own version.
        kind = ipaddress.IPv4Address if self.network.version == 4 else ipaddress.IPv6Address
        return str(kind(value))


def build_pools(cidr_networks: dict, used_ips: Iterable[object]) -> dict[str, AddressPool]:
    """One pool per queue, with ``used_ips`` reserved in each."""
    pools = {q: AddressPool(q, parse_network(q, c)) for q, c in (cidr_networks or {}).items()}
    ranges = parse_used_ips(used_ips)
    for pool in pools.values():
        for version, lo, hi in ranges:
            if version == pool.network.version:
                pool.reserve_range(lo, hi)
    return pools
