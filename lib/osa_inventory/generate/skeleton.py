"""Groups and group relations that the environment skeleton (env.d) declares."""

from __future__ import annotations

from .config import SKELETON_SECTIONS, Skeleton
from .model import Inventory


def _shape_for(name: str) -> bool:
    """Whether a new skeleton group has ``children``: ``*container`` groups hold hosts only."""
    return not name.endswith("container")


def apply_skeleton(inv: Inventory, skel: Skeleton) -> None:
    """Create every skeleton group (existing ones keep their shape) and its parent links."""
    for section in SKELETON_SECTIONS:
        entries = getattr(skel, section)
        for name, entry in entries.items():
            inv.group(name, _shape_for(name))
            for parent in belongs_to(entry):
                inv.group(parent)
    for section in ("physical_skel", "component_skel", "container_skel"):
        for name, entry in getattr(skel, section).items():
            for parent in belongs_to(entry):
                inv.groups[parent].add_child(name)


def belongs_to(entry: object) -> list[str]:
    """The ``belongs_to`` groups of a skeleton entry (none for an entry that is no mapping)."""
    if not isinstance(entry, dict):
        return []
    return [str(p) for p in entry.get("belongs_to") or ()]
