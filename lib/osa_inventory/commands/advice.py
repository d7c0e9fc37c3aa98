"""What the operator can run about a refusal of the storage layer, named as this user runs the tool.

The storage layer says what is wrong and what the backend can give back
(:class:`~osa_inventory.errors.CorruptInventory`,
:class:`~osa_inventory.errors.NoVersions`); the command that meets the
refusal adds the repair, with inventory-manage's command line as the
operator runs it (:func:`osa_inventory.resources.manage_command`), so the
advice works as printed.
"""

from __future__ import annotations

from ..errors import CorruptInventory, InventoryError, NothingStored, NoVersions, one_line
from ..resources import inventory_command, manage_command


def repair(exc: CorruptInventory) -> str:
    """How to put a good inventory back: a version, where the backend keeps them, else a saved copy."""
    tool = manage_command(exc.config_dir)
    if exc.versions:
        return f"restore a good version ({tool} --history, then --restore VERSION) or fix it"
    return (f"this backend keeps no earlier inventories, so replace it with a saved copy or export "
            f"({tool} --import FILE --force) or fix it")


def keep_a_copy(exc: NoVersions) -> str:
    """How to keep an inventory where the backend keeps none: an export, imported again."""
    tool = manage_command(exc.config_dir)
    return f"to keep one, save it with {tool} --export > FILE before a change, and store it again with " \
           f"{tool} --import FILE --force"


def store_a_first(exc: NothingStored) -> str:
    """How to have an inventory stored: the inventory script's first run, or an import."""
    return f"run {inventory_command(exc.config_dir)} first or bring one in with {manage_command(exc.config_dir)} " \
           "--import FILE"


def error_lines(exc: InventoryError) -> list[str]:
    """What to print for ``exc``, one line each: its own lines, with the repair where storage refused."""
    if isinstance(exc, CorruptInventory):
        return [f"{one_line(exc)}: {repair(exc)}"]
    if isinstance(exc, NothingStored):
        return [f"{one_line(exc)}; {store_a_first(exc)}"]
    if isinstance(exc, NoVersions):
        return [f"{one_line(exc)}; {keep_a_copy(exc)}"]
    return list(getattr(exc, "lines", None) or [one_line(exc)])
