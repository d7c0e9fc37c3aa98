"""The shape every stored inventory must have, checked wherever one is read.

Used by the inventory script's load path (every backend, through
``Backend.load``), by ``inventory-manage --import`` and by the version
readers, so an inventory of the wrong shape is one line naming where it came
from, the place and the defect; it is never rewritten.
"""

from __future__ import annotations

from typing import Any

from ..errors import InventoryError
from .document import META
NOT_INVENTORY = "it is not an inventory written by OpenStack-Ansible, by this project or by --export"
# Host variables the generator and inventory-manage read back from a stored inventory that hold a name
# or an address: a string, or null where OSA leaves one unset.
NAME_VARS = ("physical_host", "container_name", "component", "physical_host_group", "container_types",
             "container_tech")
ADDRESS_VARS = ("ansible_host", "management_address")


def string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def hostvar_problem(hv: dict) -> str | None:
    """What makes the host variables ``hv`` unusable, from the variable's name on; None when nothing does.

    Checks the variables the generator and inventory-manage read back
    (``container_networks`` and each network's ``address``, ``properties``,
    :data:`NAME_VARS`, :data:`ADDRESS_VARS`), so that a wrong type is one
    line instead of a TypeError deep inside a run. The deployer's
    ``host_vars`` and ``container_vars`` become host variables, so the config
    is held to the same rules.
    """
    networks = hv.get("container_networks")
    if networks is not None:
        if not (isinstance(networks, dict) and all(isinstance(n, dict) for n in networks.values())):
            return "container_networks must map network names to mappings"
        for net, entry in networks.items():
            address = entry.get("address")
            if address is not None and not isinstance(address, str):
                return f"container_networks.{net}.address is a {_kind(address)}, not an address (a string)"
    properties = hv.get("properties")
    if properties is not None and not isinstance(properties, dict):
        return f"properties is a {_kind(properties)}, not a mapping"
    for key in NAME_VARS + ADDRESS_VARS:
        value = hv.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} is a {_kind(value)}, not {'an address' if key in ADDRESS_VARS else 'a name'} (a string)"
    return None


def check_inventory(data: Any, where: str) -> None:
    """Raise one line naming ``where`` unless ``data`` is a well-formed Ansible inventory.

    Groups map to ``hosts``/``children`` lists of names and a ``vars``
    mapping; ``all.vars`` and ``_meta.hostvars`` are mappings, each host's
    variables a mapping that passes :func:`hostvar_problem`.
    """
    if not isinstance(data, dict):
        raise InventoryError(f"{where} holds a JSON {_kind(data)}, not an object; {NOT_INVENTORY}")
    meta = data.get(META)
    if not isinstance(meta, dict) or not isinstance(meta.get("hostvars"), dict):
        raise InventoryError(f"{where} has no _meta.hostvars mapping; {NOT_INVENTORY}")
    for host, hv in meta["hostvars"].items():
        if not isinstance(hv, dict):
            raise InventoryError(f"{where}: _meta.hostvars.{host} is a {_kind(hv)}, not a mapping of variables")
        problem = hostvar_problem(hv)
        if problem:
            raise InventoryError(f"{where}: _meta.hostvars.{host}.{problem}")
    for name, value in data.items():
        if name == META:
            continue
        if not isinstance(value, dict):
            raise InventoryError(
                f"{where}: group {name} is a {_kind(value)}, not a mapping with 'hosts' "
                f"(and 'children'); {NOT_INVENTORY}")
        for key in ("hosts", "children"):
            if key in value and not string_list(value[key]):
                raise InventoryError(f"{where}: {name}.{key} must be a list of names")
        if not isinstance(value.get("vars", {}), dict):
            raise InventoryError(f"{where}: {name}.vars is a {_kind(value['vars'])}, not a mapping of variables")
