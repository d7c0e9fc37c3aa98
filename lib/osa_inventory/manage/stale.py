"""Entries of the stored inventory that the current config no longer produces.

The generator never deletes (that is what keeps names and addresses
stable), so hosts removed from the config and containers beyond a lowered
``affinity`` stay in the stored inventory until an operator removes them.
This module finds them by asking, for each stored entry, whether the config
and skeleton would still place it, the way the generator places containers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..deployment_config import load_config  # noqa: F401 (the config as runs read it)
from ..generate.config import Skeleton
from ..generate.pipeline import generate
from ..generate.hosts import config_host_groups
from ..generate.placement import expected_counts
from ..inventory.document import groups_of, hostvars_of, is_metal


@dataclass
class StaleEntry:
    """One stored entry the config no longer produces, and why."""

    name: str
    physical_host: str
    reason: str


def _container_type(name: str, stored_groups: dict, skeleton: Skeleton) -> str | None:
    for key in skeleton.container_order:
        if name in ((stored_groups.get(key) or {}).get("hosts") or ()):
            return key
    return None


def find_stale(stored: dict, config: dict, skeleton: Skeleton, unknown_groups: str = "error",
               checked: bool = False) -> list[StaleEntry]:
    """Stored entries the config no longer produces, in stored order.

    ``unknown_groups`` is ``[inventory] unknown_host_groups``, so the check accepts what a run accepts.
    ``checked``: the caller has already generated from this config and stored inventory.
    """
    if not checked:
        # The same validation as an inventory run: a bad config fails here.
        generate(config, skeleton, stored, unknown_groups)
    config_hosts = {h for hosts in config_host_groups(config).values() for h in hosts}
    counts = expected_counts(config, skeleton)
    stored_groups = groups_of(stored)
    seen: dict[tuple[str, str], int] = {}
    stale = []
    # Containers are counted in the order their type group lists them, as the generator finds them.
    order = {}
    for key in skeleton.container_order:
        for i, name in enumerate((stored_groups.get(key) or {}).get("hosts") or ()):
            order.setdefault(name, i)
    hostvars = hostvars_of(stored)
    for name in sorted(hostvars, key=lambda n: (order.get(n, -1), n)):
        hv = hostvars[name] if isinstance(hostvars[name], dict) else {}
        parent = hv.get("physical_host")
        if name in config_hosts:
            continue
        if is_metal(hv) or not parent or parent == name:
            stale.append(StaleEntry(name, name, "host is no longer in the config"))
            continue
        if parent not in config_hosts:
            stale.append(StaleEntry(name, parent, f"its host {parent} is no longer in the config"))
            continue
        key = _container_type(name, stored_groups, skeleton)
        if key is None:
            stale.append(StaleEntry(name, parent, "it is in no container group of the skeleton"))
            continue
        entry = skeleton.container_skel.get(key) or {}
        if not entry.get("belongs_to") or not entry.get("contains"):
            stale.append(StaleEntry(name, parent, f"the skeleton no longer defines {key}"))
            continue
        if (parent, key) not in counts:
            stale.append(StaleEntry(name, parent, f"the config no longer places {key} on {parent}"))
            continue
        wanted, on_host = counts[(parent, key)]
        index = seen.get((parent, key), 0)
        seen[(parent, key)] = index + 1
        if wanted == 0 and on_host:
            stale.append(StaleEntry(name, parent, f"{key} now runs on {parent} itself (no_containers or is_metal)"))
        elif index >= wanted:
            stale.append(StaleEntry(name, parent, f"beyond affinity {key}: {wanted} on {parent}"))
    position = {name: i for i, name in enumerate(hostvars)}
    return sorted(stale, key=lambda s: position[s.name])


def missing_entries(stored: dict, config: dict, skeleton: Skeleton, unknown_groups: str = "error") -> list[str]:
    """Entries the next inventory run would add to ``stored``."""
    generated = generate(config, skeleton, stored, unknown_groups)
    return sorted(set(hostvars_of(generated)) - set(hostvars_of(stored)))
