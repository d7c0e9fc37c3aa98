"""A deployment's config, read and checked the way every inventory run reads it.

The inventory script and ``inventory-manage --plan`` both generate from a
:class:`DeploymentConfig`, so a plan shows exactly what the next run would
store: the same files, the same checks, the same ``[inventory]
unknown_host_groups`` handling and the same :func:`generate` call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .inventory.changes import assigned_addresses
from .errors import ConfigErrors
from .generate.config import Inputs, Skeleton, config_signature, load_skeleton, load_user_config
from .generate.group_names import user_defined_groups
from .generate.pipeline import generate_checked
from .generate.validate import config_problems


@dataclass
class DeploymentConfig:
    """The user config and skeleton of one config folder, checked, with what they were read from.

    Made by :func:`read_config`, which checks them: :meth:`generate` does not check them again.
    """

    config_dir: str
    environment: str
    unknown_groups: str
    config: dict
    skeleton: Skeleton
    warnings: list[str] = field(default_factory=list)
    signature: list = field(default_factory=list)
    inputs: Inputs = field(default_factory=list)
    """What was parsed, byte for byte (the digest that lets an unchanged run be reused)."""

    def generate(self, stored: dict | None, reserved: Iterable[str] = ()) -> dict:
        """The inventory this config gives, starting from ``stored`` (what a run would store).

        ``reserved``: addresses (``used_ips`` entries) held elsewhere, e.g. in the backend's IPAM,
        kept out of the pools as if the config listed them in ``used_ips``.
        """
        config = self.config
        reserved = list(reserved)
        if reserved:
            used = config.get("used_ips") or []
            config = {**config, "used_ips": ([used] if isinstance(used, str) else list(used)) + reserved}
        return generate_checked(config, self.skeleton, stored)

    def networks(self) -> list[str]:
        """The address pools (``cidr_networks``), as CIDR strings."""
        out: list[str] = []
        for value in (self.config.get("cidr_networks") or {}).values():
            out.extend(str(v) for v in (value if isinstance(value, list) else [value]) if v)
        return out

    def generate_reserving(self, stored: dict | None,
                           reserved_in: Callable[[list[str]], list[dict[str, Any]]] | None) -> tuple[dict, list]:
        """The inventory, with the addresses ``reserved_in(networks)`` says are held kept out of the pools,
        and those addresses (``{"address", "held_by"}``).

        They are asked for only when this run hands out new addresses: a run that hands out none
        costs the backend nothing more.
        """
        inventory = self.generate(stored)
        if reserved_in is None or not assigned_addresses(stored or {}, inventory):
            return inventory, []
        reserved = reserved_in(self.networks())
        if not reserved:
            return inventory, []
        return self.generate(stored, [entry["address"] for entry in reserved]), reserved

    def user_defined_groups(self) -> dict[str, list[str]]:
        """The config's host groups env.d does not know, with their hosts (see generate.group_names)."""
        return user_defined_groups(self.config, self.skeleton)

    def changed_on_disk(self) -> bool:
        """Whether any file the config was read from changed since (stat calls only)."""
        return config_signature(self.config_dir, self.environment) != self.signature


def load_config(config_dir: str, environment_dir: str, inputs: Inputs | None = None) -> tuple[dict, Skeleton]:
    """The user config (with conf.d) and the skeleton (base env.d plus the config's env.d), unchecked.

    ``inputs``, when given, gets what was read (see :data:`~osa_inventory.generate.config.Inputs`).
    """
    config_dir = os.path.abspath(config_dir)
    return (load_user_config(config_dir, inputs),
            load_skeleton(os.path.abspath(environment_dir), config_dir, inputs))


def read_config(config_dir: str, environment_dir: str, unknown_groups: str,
                every_problem: bool = False) -> DeploymentConfig:
    """The config as an inventory run reads it; a config with errors raises :class:`ConfigErrors`.

    ``every_problem`` lists every error (``--check``) instead of the first.
    The warnings are returned, not logged: each caller shows them its own way.
    """
    config_dir, environment_dir = os.path.abspath(config_dir), os.path.abspath(environment_dir)
    # Taken before reading: a file changed while it is read then shows as changed afterwards.
    signature = config_signature(config_dir, environment_dir)
    inputs: Inputs = []
    config, skeleton = load_config(config_dir, environment_dir, inputs)
    errors, warnings = config_problems(config, skeleton, unknown_groups)
    if errors:
        raise ConfigErrors(errors if every_problem else errors[:1])
    return DeploymentConfig(config_dir, environment_dir, unknown_groups, config, skeleton, warnings, signature,
                            inputs)
