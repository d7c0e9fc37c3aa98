"""Checks for config mistakes that OSA ignores or only warns about, and that we refuse.

Each function returns a list of one-line problems (empty when all is well),
so ``--check`` can report every one of them and a normal run the first.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Iterable

from .config import Skeleton, origin_of
from .validate import host_group_keys, normalise_group, provider_networks

# Far above any real deployment (OSA's own layouts use 1 to 3 containers of a kind per host),
# far below what exhausts memory: affinity: {galera_container: 100000000} is refused at once.
MAX_AFFINITY = 100
# Groups the generator makes itself, whatever env.d says.
GENERATED_GROUPS = ("all", "hosts", "all_containers", "lxc_hosts")
# A host name is an inventory name and the start of its containers' names: no blanks, no
# control characters, no slash (it becomes a file name), no leading dash (it becomes an option).
_BAD_NAME = re.compile(r"[\s/\x00-\x1f\x7f]")


def env_groups(skeleton: Skeleton) -> set[str]:
    """Every group env.d defines (keys and ``belongs_to`` targets), dashes read as underscores."""
    groups = set()
    for section in (skeleton.physical_skel, skeleton.component_skel, skeleton.container_skel):
        for name, entry in section.items():
            groups.add(normalise_group(str(name)))
            if isinstance(entry, dict):
                groups.update(normalise_group(str(p)) for p in entry.get("belongs_to") or ())
    return groups


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {match[0]}?" if match else ""


def unknown_host_groups(config: dict, skeleton: Skeleton) -> list[str]:
    """``*_hosts`` keys that no env.d group defines (``shared_infra_host`` for ``shared_infra_hosts``)."""
    known = env_groups(skeleton)
    out = []
    # A key that holds hosts but does not end in "hosts" (shared_infra_host) is no group at all to OSA.
    # Keys such as "_infra: &infra" only hold an anchor for later groups: only near-misses count.
    host_groups = [g for g in known if g.endswith("hosts")]
    lookalikes = [k for k, v in config.items() if isinstance(k, str) and not k.endswith("hosts")
                  and isinstance(v, dict) and any(isinstance(h, dict) and "ip" in h for h in v.values())
                  and (k.endswith("host") or difflib.get_close_matches(normalise_group(k), host_groups, 1, 0.85))]
    for key in host_group_keys(config) + lookalikes:
        if normalise_group(key) not in known:
            out.append(
                f"{origin_of(config, key)}: {key} names no group of env.d, so its hosts would get no "
                f"containers{_did_you_mean(normalise_group(key), host_groups)} "
                "(declare a custom group in env.d, or set [inventory] unknown_host_groups = warn)")
    return out


def unknown_group_binds(config: dict, skeleton: Skeleton) -> list[str]:
    """``group_binds`` entries that name no group (``nova_compte``)."""
    known = env_groups(skeleton) | {normalise_group(k) for k in host_group_keys(config)} | set(GENERATED_GROUPS)
    out = []
    for i, net in enumerate(provider_networks(config)):
        binds = net.get("group_binds")
        for bind in binds if isinstance(binds, list) else ():
            if not isinstance(bind, str) or normalise_group(bind) not in known:
                out.append(
                    f"{origin_of(config, 'global_overrides')}: global_overrides.provider_networks[{i}] "
                    f"group_binds entry {bind!r} names no group{_did_you_mean(str(bind), known)}; "
                    "fix the name or declare the group in env.d")
    return out


def host_problems(config: dict) -> list[str]:
    """Host names that are not inventory names, and ``ip``/``management_ip`` that are not addresses."""
    out = []
    for key in host_group_keys(config):
        hosts = config[key]
        if not isinstance(hosts, dict):
            continue
        where = f"{origin_of(config, key)}: {key}"
        for name, settings in hosts.items():
            if not isinstance(name, str):
                out.append(f"{where}: host name {name!r} is a YAML {type(name).__name__}, not a name; "
                           "quote it or rename the host")
                continue
            if not name or _BAD_NAME.search(name) or name.startswith("-"):
                out.append(f"{where}: host name {name!r} is not a valid inventory name; use letters, digits, "
                           "dots, dashes and underscores, not starting with a dash")
                continue
            if not isinstance(settings, dict):
                continue
            for field in ("ip", "management_ip"):
                value = settings.get(field)
                if value is None or (field == "ip" and not value):
                    continue
                if not _is_address(value):
                    out.append(f"{where}: host {name}: {field} {value!r} is not an IP address; "
                               "write it like 172.29.236.11")
            affinity = settings.get("affinity")
            if isinstance(affinity, dict):
                for kind, count in affinity.items():
                    # Counts that are not whole numbers are refused by containers.py with its own advice.
                    if isinstance(count, int) and not isinstance(count, bool) and count > MAX_AFFINITY:
                        out.append(f"{where}: host {name}: affinity {kind}: {count!r} is not a whole number "
                                   f"from 0 to {MAX_AFFINITY}; no deployment runs that many containers "
                                   "of a kind on one host")
    return out


def _is_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def network_problems(config: dict) -> list[str]:
    """Overlapping or whole-space ``cidr_networks``, malformed ``static_routes``."""
    cidrs = config.get("cidr_networks")
    out = []
    nets = []
    for queue, cidr in (cidrs.items() if isinstance(cidrs, dict) else ()):
        try:
            net = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            continue  # reported by addresses.parse_network with its own advice
        # A /0 always takes in the 'this network' block, so it needs no test of its own.
        if net.is_loopback or net.is_multicast or net.overlaps(_special(net.version)):
            out.append(f"{origin_of(config, 'cidr_networks')}: cidr_networks.{queue} = {cidr} takes in loopback, "
                       "multicast or unspecified addresses; give the real network of that queue")
            continue
        nets.append((net.version, int(net.network_address), int(net.broadcast_address), queue, net))
    reach: dict[int, tuple] = {}  # per IP version, the network reaching furthest so far
    for entry in sorted(nets):
        widest = reach.setdefault(entry[0], entry)
        if widest is not entry and entry[1] <= widest[2]:
            out.append(f"{origin_of(config, 'cidr_networks')}: cidr_networks.{widest[3]} ({widest[4]}) and "
                       f"cidr_networks.{entry[3]} ({entry[4]}) overlap, so containers would share addresses; "
                       "make them disjoint")
        if entry[2] > widest[2]:
            reach[entry[0]] = entry
    for i, net in enumerate(provider_networks(config)):
        routes = net.get("static_routes")
        for j, route in enumerate(routes if isinstance(routes, list) else ()):
            if not isinstance(route, dict) or not route.get("cidr") or not route.get("gateway"):
                continue  # reported by validate with its own advice
            where = f"global_overrides.provider_networks[{i}].static_routes[{j}]"
            try:
                target = ipaddress.ip_network(str(route["cidr"]).strip(), strict=False)
            except ValueError:
                out.append(f"{where}: cidr {route['cidr']!r} is not a network; write it like 172.29.236.0/22")
                continue
            gateway = route["gateway"]
            if not _is_address(gateway) or ipaddress.ip_address(gateway.strip()).version != target.version:
                out.append(f"{where}: gateway {gateway!r} is not an IPv{target.version} address; "
                           "write the router's address")
    return out


def _special(version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The block of 'this network' addresses that no pool may hand out."""
    return ipaddress.ip_network("0.0.0.0/8" if version == 4 else "::/127")


def all_problems(config: dict, skeleton: Skeleton, unknown_groups: str) -> tuple[list[str], list[str]]:
    """``(errors, warnings)``: unknown host groups are warnings when ``unknown_groups`` is ``warn``."""
    groups = unknown_host_groups(config, skeleton)
    errors = host_problems(config) + network_problems(config) + unknown_group_binds(config, skeleton)
    if unknown_groups == "warn":
        return errors, groups
    return groups + errors, []
