"""Where the config places containers: how many of each type each host is to hold.

Read by the checks that compare a stored inventory with the config (inventory-manage's stale entries,
moving a container to another host), with the rules the generator applies: ``affinity``, ``is_metal``
and ``no_containers``.
"""

from __future__ import annotations

from .config import Skeleton
from .containers import host_group_for
from .hosts import config_host_groups
from .validate import global_no_containers


def expected_counts(config: dict, skeleton: Skeleton) -> dict[tuple[str, str], tuple[int, bool]]:
    """``(host, container_skel key) -> (containers the config asks for, runs on the host itself)``."""
    groups = config_host_groups(config)
    global_no = global_no_containers(config)
    counts: dict[tuple[str, str], tuple[int, bool]] = {}
    for key in skeleton.container_order:
        entry = skeleton.container_skel.get(key) or {}
        if not entry.get("belongs_to") or not entry.get("contains"):
            continue
        metal = bool((entry.get("properties") or {}).get("is_metal"))
        for container_group in entry["belongs_to"]:
            for host, settings in (groups.get(host_group_for(str(container_group)) or "") or {}).items():
                on_host = bool(metal or global_no or settings.get("no_containers"))
                wanted = 0 if on_host else int((settings.get("affinity") or {}).get(key, 1))
                before = counts.get((host, key), (0, True))
                counts[(host, key)] = (max(before[0], wanted), before[1] and on_host)
    return counts
