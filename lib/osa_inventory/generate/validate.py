"""Checks on the deployment config that must fail before anything is generated.

Each check raises one :class:`ConfigError` line naming the key or value at
fault and what to do about it.
"""

from __future__ import annotations

from .config import Skeleton
from ..errors import ConfigError
from ..inventory.shape import hostvar_problem



def host_group_keys(config: dict) -> list[str]:
    """Top-level keys of the user config that name host groups (they end in ``hosts``)."""
    return [k for k in config if isinstance(k, str) and k.endswith("hosts")]


def normalise_group(name: str) -> str:
    """OSA reads dashes in group names as underscores."""
    return name.replace("-", "_")


def provider_networks(config: dict) -> list[dict]:
    """The ``network`` dicts of ``global_overrides.provider_networks``, in order."""
    overrides = config.get("global_overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("global_overrides must be a mapping of variables")
    nets = overrides.get("provider_networks") or []
    if not isinstance(nets, list):
        raise ConfigError("global_overrides.provider_networks must be a list of '- network: {...}' entries")
    out = []
    for i, entry in enumerate(nets):
        net = entry.get("network") if isinstance(entry, dict) else None
        if net is None:
            continue
        if not isinstance(net, dict):
            raise ConfigError(f"global_overrides.provider_networks[{i}].network must be a mapping")
        out.append(net)
    return out


def network_label(net: dict) -> str:
    """How an error names a provider network: its queue, else its bridge, else its net_name."""
    for key, label in (("ip_from_q", "queue"), ("container_bridge", "bridge"), ("net_name", "net_name")):
        if net.get(key):
            return f"{label} {net[key]}"
    return "no ip_from_q, container_bridge or net_name"


def global_no_containers(config: dict) -> bool:
    """``global_overrides.no_containers``: every service of every host runs on the host itself.

    OSA reads it there only; a top-level ``no_containers`` key is not a setting.
    """
    overrides = config.get("global_overrides")
    return isinstance(overrides, dict) and bool(overrides.get("no_containers"))


def is_management(net: dict) -> bool:
    """Whether a provider network carries management addresses.

    ``is_container_address`` is the older name, read only when
    ``is_management_address`` is absent (so an explicit ``false`` wins), as OSA reads them.
    """
    return bool(net.get("is_management_address", net.get("is_container_address")))


MANAGEMENT_PREFIXES = ("container", "management")


def container_cidr(config: dict) -> str | list[str] | None:
    """``all.vars.container_cidr``, as OSA derives it; None if the config names no management network.

    The ``container`` network, else the ``management`` one; in an L3 / pod
    layout that has neither, the list of the CIDRs of every provider network
    that takes its addresses from ``cidr_networks`` and carries management
    addresses (``is_management_address``/``is_container_address``, or
    ``address_prefix`` ``management``/``container``), in config order.
    """
    cidrs = config.get("cidr_networks") or {}
    for queue in MANAGEMENT_PREFIXES:
        if queue in cidrs:
            return str(cidrs[queue])
    pods = [str(cidrs[net["ip_from_q"]]) for net in provider_networks(config)
            if net.get("ip_from_q") in cidrs
            and (net.get("address_prefix") in MANAGEMENT_PREFIXES or is_management(net))]
    return pods or None


def check_config(config: dict, skeleton: Skeleton, unknown_groups: str) -> list[str]:
    """Raise the first problem of :func:`config_problems`; return the warnings."""
    errors, warnings = config_problems(config, skeleton, unknown_groups)
    if errors:
        raise ConfigError(errors[0])
    return warnings


def config_problems(config: dict, skeleton: Skeleton, unknown_groups: str) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of the config, every one a line (``--check`` shows them all)."""
    from .strict import all_problems  # strict builds on this module's helpers

    errors = []
    try:
        _first_problem(config, skeleton)
    except ConfigError as exc:
        errors.append(str(exc))
    more, warnings = all_problems(config, skeleton, unknown_groups)
    return errors + more, warnings


def _first_problem(config: dict, skeleton: Skeleton) -> None:
    """Every check of section 8 of the behaviour doc that needs only the config."""
    cidrs = config.get("cidr_networks")
    if not cidrs or not isinstance(cidrs, dict):
        raise ConfigError(
            "cidr_networks is missing from the user config; add it with at least a "
            "'management' network, e.g. cidr_networks: {management: 172.29.236.0/22}")
    if container_cidr(config) is None:
        raise ConfigError(
            "cidr_networks has neither a 'management' nor a 'container' network, and no provider network "
            "takes management addresses from it (ip_from_q with is_management_address: true or "
            "address_prefix: management); add one")
    if "lxc_hosts" in config:
        raise ConfigError(
            "lxc_hosts is defined in the user config, but the inventory builds that group itself "
            "from the hosts that run LXC containers; remove lxc_hosts from the config")
    _check_provider_networks(config, cidrs, skeleton)
    _check_host_groups(config)
    _check_group_branches(config, skeleton)


def _check_provider_networks(config: dict, cidrs: dict, skeleton: Skeleton) -> None:
    overrides = config.get("global_overrides")
    nets = provider_networks(config)
    # With a global no_containers every service runs on its host: no container needs a network.
    needs_networks = not global_no_containers(config) and any(
        not ((v or {}).get("properties") or {}).get("is_metal")
        for v in skeleton.container_skel.values() if isinstance(v, dict))
    if needs_networks and not nets:
        where = "global_overrides" if overrides is None else "global_overrides.provider_networks"
        raise ConfigError(
            f"{where} is missing from the user config; containers need at least the management network")
    mgmt_bridge = (overrides or {}).get("management_bridge")
    for i, net in enumerate(nets):
        where = f"global_overrides.provider_networks[{i}]"
        queue = net.get("ip_from_q")
        if queue is not None and queue not in cidrs:
            raise ConfigError(
                f"{where}: ip_from_q {queue!r} names no network in cidr_networks "
                f"(known: {', '.join(map(str, cidrs))}); add it to cidr_networks or fix the name")
        if mgmt_bridge and net.get("container_bridge") == mgmt_bridge and not is_management(net):
            raise ConfigError(
                f"{where}: the management bridge {mgmt_bridge!r} needs 'is_management_address: true' "
                "on its provider network")
        binds = net.get("group_binds") or []
        if not isinstance(binds, list):
            raise ConfigError(f"{where}: group_binds must be a list of group names")
        routes = net.get("static_routes")
        if routes is not None:
            if not isinstance(routes, list):
                raise ConfigError(f"{where} ({network_label(net)}): static_routes must be a list")
            for j, route in enumerate(routes):
                missing = [k for k in ("cidr", "gateway") if not isinstance(route, dict) or not route.get(k)]
                if missing:
                    raise ConfigError(
                        f"{where} ({network_label(net)}): static_routes[{j}] "
                        f"lacks {' and '.join(missing)}; each route needs both cidr and gateway")


def _check_host_groups(config: dict) -> None:
    ip_owner: dict[str, str] = {}
    host_ip: dict[str, tuple[str, str]] = {}
    for key in host_group_keys(config):
        hosts = config[key]
        if not hosts:
            raise ConfigError(
                f"host group {key} is empty; list its hosts with their ip, or remove the key")
        if not isinstance(hosts, dict):
            raise ConfigError(f"host group {key} must map host names to their settings (ip: ...)")
        for name, settings in hosts.items():
            if not isinstance(settings, dict) or not settings.get("ip"):
                raise ConfigError(f"host {name} in {key} has no 'ip'; add its address as ip: A.B.C.D")
            ip = str(settings["ip"]).strip()
            name = str(name)
            if len(name) > 63:
                raise ConfigError(
                    f"host name {name} in {key} is {len(name)} characters long; "
                    "host names may be at most 63 characters")
            previous = host_ip.get(name)
            if previous and previous[0] != ip:
                raise ConfigError(
                    f"host {name} has ip {previous[0]} in {previous[1]} but {ip} in {key}; "
                    "give it one address everywhere")
            host_ip[name] = (ip, key)
            owner = ip_owner.get(ip)
            if owner is not None and owner != name:
                raise ConfigError(
                    f"hosts {owner} and {name} both have ip {ip}; each host needs its own address")
            ip_owner[ip] = name
            for opt in ("affinity", "container_vars", "host_vars"):
                if settings.get(opt) is not None and not isinstance(settings[opt], dict):
                    raise ConfigError(f"host {name} in {key}: {opt} must be a mapping")
            for opt in ("host_vars", "container_vars"):
                # They become the host's (and its containers') variables, which the next run reads back.
                problem = hostvar_problem(settings.get(opt) or {})
                if problem:
                    raise ConfigError(f"host {name} in {key}: {opt}.{problem}; correct it, or remove it")


def _check_group_branches(config: dict, skeleton: Skeleton) -> None:
    config_groups = {normalise_group(k) for k in host_group_keys(config)}
    for child, relations in skeleton.physical_skel.items():
        for parent in (relations or {}).get("belongs_to") or ():
            if parent in config_groups:
                raise ConfigError(
                    f"{parent} is defined with hosts in the user config, but the environment makes "
                    f"{child} a child group of it; hosts cannot be sibling with groups: "
                    f"rename {parent} in the config")

