"""``--plan``: what the next inventory run would store, worked out in memory.

The config is read and checked as the inventory script reads it
(:mod:`osa_inventory.deployment_config`), the stored inventory is loaded
through the configured backend, and the generator runs on both; nothing is
written anywhere. The stored inventory is loaded without the backend's
lock: the built-in backends' ``load()`` gives a whole stored version (files
are replaced by atomic renames, etcd reads at one revision, Craton has no
lock at all), listings load it the same way, and a plan must work for users who may only read (an etcd
read-only role cannot take the lock, which is a write). A plan is advice
about the inventory stored at that moment: a run or edit in between changes
what the next run starts from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..inventory.changes import Changes, assigned_addresses, compare
from ..deployment_config import DeploymentConfig
from ..storage.backend import Backend
from .stale import StaleEntry, find_stale
from .versions import diff_lines
from ..inventory.document import groups_of, hostvars_of

#: Exit status of ``--plan``: as ``terraform plan -detailed-exitcode`` (1 is any error).
NO_CHANGE, CHANGES = 0, 2


@dataclass
class Plan:
    """What storing the generated inventory would change in ``backend``."""

    backend: str
    config_dir: str
    first: bool                     # nothing is stored yet: the run stores the whole inventory
    changed: bool                   # the next run would store something (exactly the script's test)
    changes: Changes
    lines: list[str]
    assigned: dict[str, dict[str, Any]]
    stale: list[StaleEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hosts: int = 0
    groups: int = 0
    reserved: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return CHANGES if self.changed else NO_CHANGE

    def to_data(self) -> dict[str, Any]:
        """The documented ``--plan --format json`` object (docs/operations.md)."""
        return {"changed": self.changed, "first_inventory": self.first, "backend": self.backend,
                "config": self.config_dir, "summary": self.changes.summary(), "changes": asdict(self.changes),
                "assigned_addresses": self.assigned, "lines": self.lines,
                "stale": [asdict(s) for s in self.stale], "warnings": self.warnings,
                "hosts": self.hosts, "groups": self.groups, "reserved_addresses": self.reserved}


def make_plan(backend: Backend, deployment: DeploymentConfig) -> Plan:
    """Generate from ``deployment`` against what ``backend`` holds now; write nothing, not even a backend's cache."""
    stored = backend.load(read_only=True)
    generated, reserved = deployment.generate_reserving(stored, backend.reserved_addresses)
    old = stored or {}
    # Entries the config dropped are kept by every run (the generator never deletes): say so.
    stale = find_stale(stored, deployment.config, deployment.skeleton, deployment.unknown_groups,
                       checked=True) if stored else []
    return Plan(backend=backend.describe(), config_dir=deployment.config_dir, first=stored is None,
                changed=generated != stored, changes=compare(old, generated), lines=diff_lines(old, generated),
                assigned=assigned_addresses(old, generated), stale=stale, warnings=list(deployment.warnings),
                hosts=len(hostvars_of(generated)), groups=len(groups_of(generated)), reserved=reserved)


def plan_text(plan: Plan, manage: str) -> list[str]:
    """The plan for people, line by line: a verdict, one fact per line, then notes. ``manage`` names this tool."""
    if not plan.changed:
        out = [f"no changes: the config in {plan.config_dir} gives exactly the inventory stored in "
               f"{plan.backend}; the next inventory run stores nothing"]
    elif plan.first:
        out = [f"{plan.backend} holds no inventory yet; the next inventory run stores a first one of "
               f"{plan.hosts} hosts and {plan.groups} groups:"] + plan.lines
    else:
        out = [f"the next inventory run would change {plan.backend}: {plan.changes.summary()}"] + plan.lines
    if plan.stale:
        one = len(plan.stale) == 1
        names = ", ".join(f"{s.name} ({s.reason})" for s in plan.stale)
        out.append(f"note: {len(plan.stale)} stored entr{'y is' if one else 'ies are'} no longer produced by the "
                   f"config and stay{'s' if one else ''} (runs never remove entries): {names}; once "
                   f"{'its' if one else 'their'} services are gone, remove {'it' if one else 'each'} with "
                   f"'{manage} -r NAME' (see --check-stale)")
    if plan.reserved:
        held = "; ".join(f"{r['address']} ({r['held_by']})" if r.get("held_by") else r["address"]
                         for r in plan.reserved)
        out.append(f"note: {len(plan.reserved)} address{'es' if len(plan.reserved) != 1 else ''} held in "
                   f"{plan.backend} inside the pools {'are' if len(plan.reserved) != 1 else 'is'} kept out of "
                   f"what is handed out: {held}")
    out += [f"warning: {w}" for w in plan.warnings]
    if plan.changed:
        out.append("note: a plan is advice: it describes the inventory stored now, and a run or edit before the "
                   "next inventory run changes what that run starts from")
    return out
