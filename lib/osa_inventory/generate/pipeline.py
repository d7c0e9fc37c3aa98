"""The inventory generator: config, skeleton and stored state in, inventory out.

``generate`` is a pure function: it reads no file and writes none. Each step
is a small function in its own module; the order below is the order in which
OSA's behaviour builds on itself (groups before hosts, hosts before
containers, containers before networks).
"""

from __future__ import annotations

from .config import Skeleton
from .containers import (apply_container_vars, apply_nests, metal_roles_of, place_containers,
                         settle_metal_roles)
from .finalize import complete_hostvars, rebuild_lxc_hosts, set_all_vars
from .hosts import apply_physical_hosts, config_host_groups
from .model import Inventory
from .networks import assign_networks
from .skeleton import apply_skeleton
from .validate import check_config


def generate(config: dict, skeleton: Skeleton, stored: dict | None = None, unknown_groups: str = "error") -> dict:
    """The inventory for ``config`` and ``skeleton``, starting from ``stored``.

    Names, addresses and memberships in ``stored`` are kept; the result for an
    unchanged config and an inventory this function produced is that same
    inventory (so callers can skip the write). ``unknown_groups`` is
    ``[inventory] unknown_host_groups``: ``warn`` lets near misses of env.d's host groups through.
    """
    check_config(config, skeleton, unknown_groups)
    return generate_checked(config, skeleton, stored)


def generate_checked(config: dict, skeleton: Skeleton, stored: dict | None = None) -> dict:
    """:func:`generate` for a config that has passed :func:`~.validate.config_problems` already.

    Reading a config checks it (``deployment_config.read_config``): checking it
    again here would double the cost of the checks on every run.
    """
    inv = Inventory.from_json(stored)
    groups = config_host_groups(config)
    previous_roles = metal_roles_of(inv)

    set_all_vars(inv, config)
    apply_physical_hosts(inv, groups)
    apply_skeleton(inv, skeleton)
    placement = place_containers(inv, skeleton, config, groups)
    settle_metal_roles(inv, placement, previous_roles)
    apply_container_vars(inv, groups, placement)
    apply_nests(inv, skeleton, groups)
    assign_networks(inv, config)
    complete_hostvars(inv)
    rebuild_lxc_hosts(inv)
    return inv.to_json()
