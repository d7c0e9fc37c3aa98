"""Checks for config mistakes that OSA ignores or only warns about, and that we refuse.

Each function returns its one-line problems (empty when all is well), so
``--check`` can report every one of them and a normal run the first;
:func:`group_binds_problems` also returns the names it only warns about.
"""

from __future__ import annotations

import ipaddress
import re

from .config import Skeleton, origin_of
from .group_names import env_host_groups, inventory_groups, near_miss
from .validate import host_group_keys, normalise_group, provider_networks

# Far above any real deployment (OSA's own layouts use 1 to 3 containers of a kind per host),
# far below what exhausts memory: affinity: {galera_container: 100000000} is refused at once.
MAX_AFFINITY = 100
# A host name is an inventory name and the start of its containers' names: no blanks, no
# control characters, no slash (it becomes a file name), no leading dash (it becomes an option).
_BAD_NAME = re.compile(r"[\s/\x00-\x1f\x7f]")


def misspelt_host_groups(config: dict, skeleton: Skeleton) -> list[str]:
    """Keys holding hosts whose name is a near miss of a host group env.d knows (``comptue_hosts``).

    Any other ``*_hosts`` key is a group of its own, as in OSA (see
    :mod:`.group_names`). A key that holds hosts but does not end in ``hosts``
    is no group at all to OSA, which drops its hosts: it is refused when it
    ends in ``host`` (``compute_host``) or is a near miss (``compute_hots``);
    others (``_infra: &infra``, holding an anchor for later groups) are left
    alone. A name some ``reference_group`` uses is meant, whatever it looks like.
    """
    known = env_host_groups(skeleton)
    referenced = [normalise_group(str(net.get("reference_group"))) for net in provider_networks(config)]
    out = []
    for key, value in config.items():
        name = normalise_group(key) if isinstance(key, str) else None
        if name is None or name in known or name in referenced:
            continue
        keep = (f"(if {key} is meant, declare it as a group in env.d or set "
                "[inventory] unknown_host_groups = warn)")
        if key.endswith("hosts"):
            target = near_miss(name, known)
            if target:
                out.append(f"{origin_of(config, key)}: {key} is a near miss of env.d's group {target}, so its "
                           f"hosts would get no containers; did you mean {target}? {keep}")
        elif _holds_hosts(value):
            target = near_miss(name, known) or (f"{name}s" if name.endswith("host") else None)
            if target:
                out.append(f"{origin_of(config, key)}: {key} holds hosts but is no host group (only keys ending "
                           f"in 'hosts' are), so its hosts would be left out; did you mean {target}? {keep}")
    return out


def _holds_hosts(value: object) -> bool:
    """Whether a config value maps names to host settings with an ``ip``."""
    return isinstance(value, dict) and any(isinstance(h, dict) and "ip" in h for h in value.values())


def group_binds_problems(config: dict, skeleton: Skeleton) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of ``group_binds`` names that name no group of the config or env.d.

    A near miss of a group (``nova_compte``) is an error. Any other name
    (``neutron_linuxbridge_agent`` in a config older than env.d) binds only
    what a stored inventory still holds in that group, as in OSA: a warning,
    so that an upgrade does not stop on it.
    """
    known = inventory_groups(config, skeleton)
    errors, warnings = [], []
    for i, net in enumerate(provider_networks(config)):
        binds = net.get("group_binds")
        where = f"{origin_of(config, 'global_overrides')}: global_overrides.provider_networks[{i}] group_binds entry"
        for bind in binds if isinstance(binds, list) else ():
            name = normalise_group(bind) if isinstance(bind, str) else None
            if name in known:
                continue
            target = near_miss(name, known) if name else None
            if name is None or target:
                guess = f"; did you mean {target}?" if target else ""
                errors.append(f"{where} {bind!r} names no group{guess}; fix the name or declare the group in env.d")
            else:
                warnings.append(f"{where} {bind!r} names no group of env.d or the config (one an older release "
                                "had?), so it binds only what the stored inventory still holds in that group; "
                                "remove it if it is no longer needed")
    return errors, warnings


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
    """Whole-space ``cidr_networks``, overlapping pools, malformed ``static_routes``.

    Only pools addresses are handed out from (named by some provider network's
    ``ip_from_q``) can give two containers one address: a declared but unused
    ``management`` network around a pod layout's pools is accepted, as in OSA.
    """
    cidrs = config.get("cidr_networks")
    drawn = [net.get("ip_from_q") for net in provider_networks(config)]
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
        if queue in drawn:
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
    """``(errors, warnings)``: misspelt host groups are warnings when ``unknown_groups`` is ``warn``."""
    groups = misspelt_host_groups(config, skeleton)
    bind_errors, bind_warnings = group_binds_problems(config, skeleton)
    errors = host_problems(config) + network_problems(config) + bind_errors
    if unknown_groups == "warn":
        return errors, groups + bind_warnings
    return groups + errors, bind_warnings
