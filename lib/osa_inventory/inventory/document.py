"""The parts of an Ansible inventory as OpenStack-Ansible stores it, and reading them.

An inventory is a JSON object: ``_meta.hostvars`` maps each host and
container to its variables, ``all.vars`` holds the variables of every host,
and every other key is a group (``hosts``, ``children``, ``vars``). The
readers here accept whatever a stored inventory holds: a missing or
malformed part reads as empty (the shape check refuses those where an
inventory is loaded, :mod:`.shape`).
"""

from __future__ import annotations

META = "_meta"
ALL = "all"


def hostvars_of(inventory: dict) -> dict[str, dict]:
    """``_meta.hostvars``: each host's and container's variables (empty when missing)."""
    return (inventory.get(META) or {}).get("hostvars") or {}


def groups_of(inventory: dict) -> dict[str, dict]:
    """Every group (not ``_meta``, not ``all``), in stored order."""
    return {name: value for name, value in inventory.items()
            if name not in (META, ALL) and isinstance(value, dict)}


def is_metal(hv: dict) -> bool:
    """Bare metal per the entry itself or its properties (older inventories use either)."""
    return bool(hv.get("is_metal") or (hv.get("properties") or {}).get("is_metal"))
