"""Which groups a config and its env.d make, which of them only the config makes, and typos.

OSA turns every top-level ``*_hosts`` key of the user config into a group of
its hosts (``az1_controller_hosts``, ``pod1_hosts``, ``_infrastructure_hosts``),
whether env.d knows it or not; env.d decides which groups feed containers.
The one kind of name taken for a mistake is a near miss of a name env.d
knows (:func:`near_miss`).
"""

from __future__ import annotations

from typing import Iterable

from .config import Skeleton
from .containers import all_group_for, host_group_for
from .hosts import config_host_groups
from .skeleton import belongs_to
from .validate import normalise_group

# Groups the generator makes itself, whatever env.d says.
GENERATED_GROUPS = ("all", "hosts", "all_containers", "lxc_hosts")


def env_groups(skeleton: Skeleton) -> set[str]:
    """Every group env.d defines (keys and ``belongs_to`` targets), dashes read as underscores."""
    groups = set()
    for section in (skeleton.physical_skel, skeleton.component_skel, skeleton.container_skel):
        for name, entry in section.items():
            groups.add(normalise_group(str(name)))
            groups.update(normalise_group(p) for p in belongs_to(entry))
    return groups


def fed_container_groups(skeleton: Skeleton) -> set[str]:
    """The ``<X>_containers`` groups container_skel entries belong to: each is fed by ``<X>_hosts``."""
    groups = {normalise_group(g) for entry in skeleton.container_skel.values() for g in belongs_to(entry)}
    return {g for g in groups if host_group_for(g)}


def env_host_groups(skeleton: Skeleton) -> set[str]:
    """The host groups env.d knows: its groups ending in ``hosts`` and every group it feeds containers from.

    ``az1_ceph_mon_hosts`` is one of them when env.d places containers in
    ``az1_ceph_mon_containers``, though no env.d key names it.
    """
    fed = {host_group_for(g) for g in fed_container_groups(skeleton)}
    return {g for g in env_groups(skeleton) if g.endswith("hosts")} | {g for g in fed if g}


def inventory_groups(config: dict, skeleton: Skeleton) -> set[str]:
    """Every group a run makes from ``config`` and ``skeleton`` (a stored inventory may hold more)."""
    host_groups = config_host_groups(config)
    fed = fed_container_groups(skeleton)
    return (env_groups(skeleton) | env_host_groups(skeleton) | {all_group_for(g) for g in fed}
            | set(host_groups) | {f"{host}_host_containers" for hosts in host_groups.values() for host in hosts}
            | set(GENERATED_GROUPS))


def user_defined_groups(config: dict, skeleton: Skeleton) -> dict[str, list[str]]:
    """The config's host groups env.d does not know, each with its hosts (dashed twins merged), by name.

    OSA makes each a group of its hosts (not a child of ``hosts``) and gives
    them no containers through it; ``--check`` lists them.
    """
    known = env_host_groups(skeleton)
    return {name: list(hosts) for name, hosts in sorted(config_host_groups(config).items()) if name not in known}


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The first name of ``known`` (in sorted order) that ``name`` is one typo away from, else None.

    One typo is one character added, dropped or changed, or two neighbours
    swapped (``compute_host``, ``compute_hostss``, ``compte_hosts``,
    ``comptue_hosts`` for ``compute_hosts``). Env.d's own host groups are
    never that close to each other (``ceph_mds_hosts`` and ``ceph_mon_hosts``
    are two apart), so a name one typo from one of them is taken for a
    mistake, not for a group of its own. An edit of digits only is no typo:
    ``az4_hosts`` beside ``az3_hosts``, or ``pod12_hosts`` beside
    ``pod1_hosts``, is the next of a numbered series.
    """
    return next((k for k in sorted(known) if _one_typo_apart(name, k)), None)


def _one_typo_apart(a: str, b: str) -> bool:
    a, b = sorted((a, b), key=len)
    if a == b:
        return False
    # Everything before the first difference matches; what follows it decides (two characters
    # more or fewer can never leave the rest equal).
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
    if len(a) < len(b):  # b has one character more, at i
        return a[i:] == b[i + 1:] and not b[i].isdigit()
    if a[i + 1:] == b[i + 1:]:  # one character changed
        return not (a[i].isdigit() and b[i].isdigit())
    swapped = a[i + 2:] == b[i + 2:] and a[i:i + 2] == b[i + 1] + b[i]
    return swapped and not (a[i].isdigit() and a[i + 1].isdigit())

