"""What the listings show: host table rows, groups per host, hosts per group, the export."""

from __future__ import annotations

from typing import Any

from ..inventory.document import ALL, groups_of, hostvars_of, is_metal

HOST_COLUMNS = ("container_name", "is_metal", "component", "physical_host",
                "tunnel_address", "ansible_host", "container_types")
DEFAULT_SORT = "component"  # the column OSA's inventory-manage sorts by
UNDEFINED_COMPONENT = "-undefined-"  # how OSA shows (and so sorts) an entry without a component


def _tunnel_address(hv: dict) -> Any:
    entry = (hv.get("container_networks") or {}).get("tunnel_address")
    if isinstance(entry, dict) and entry.get("address"):
        return entry["address"]
    return hv.get("tunnel_address")


def host_row(name: str, hv: dict) -> dict[str, Any]:
    """One ``--list-host`` row; keys are HOST_COLUMNS."""
    return {
        "container_name": hv.get("container_name") or name,
        "is_metal": is_metal(hv),
        "component": hv.get("component"),
        "physical_host": hv.get("physical_host"),
        "tunnel_address": _tunnel_address(hv),
        "ansible_host": hv.get("ansible_host"),
        "container_types": hv.get("container_types"),
    }


def _sort_key(column: str, value: Any) -> tuple:
    # A missing component sorts as the "-undefined-" OSA shows for it; other empty cells sort last
    # (OSA crashes on them); everything else compares as text, so mixed types never clash.
    if value is None and column == "component":
        value = UNDEFINED_COMPONENT
    if value is None or value == "" or value == [] or value == {}:
        return (1, "")
    return (0, str(value))


def host_rows(inventory: dict, sort: str = DEFAULT_SORT) -> list[dict[str, Any]]:
    """Every hostvars entry as a row, ordered by column ``sort`` then by name."""
    if sort not in HOST_COLUMNS:
        raise ValueError(f"unknown column {sort!r}")
    rows = [host_row(name, hv if isinstance(hv, dict) else {}) for name, hv in hostvars_of(inventory).items()]
    rows.sort(key=lambda r: (_sort_key(sort, r[sort]), str(r["container_name"])))
    return rows


def host_table_cells(row: dict[str, Any]) -> list[Any]:
    """A ``host_rows`` row as the table shows it: OSA's ``-undefined-`` for a missing component."""
    return [UNDEFINED_COMPONENT if c == "component" and row[c] is None else row[c] for c in HOST_COLUMNS]


def groups_per_host(inventory: dict) -> dict[str, list[str]]:
    """Each host (hostvars entries and group members) with the groups that list it directly."""
    out: dict[str, list[str]] = {name: [] for name in hostvars_of(inventory)}
    for group, value in groups_of(inventory).items():
        for host in value.get("hosts") or ():
            out.setdefault(host, []).append(group)
    return {host: sorted(out[host]) for host in sorted(out)}


def hosts_per_group(inventory: dict) -> dict[str, list[str]]:
    """Each group with at least one host of its own, one-member groups included."""
    return {name: list(value.get("hosts") or ())
            for name, value in sorted(groups_of(inventory).items()) if value.get("hosts")}


def export(inventory: dict) -> dict:
    """OSA's export shape, ``{"hosts": {h: {"hostvars": ..., "groups": [...]}}, "all": all.vars}``,
    plus ``"groups"``: every group exactly as stored.

    Readers of OSA's shape find what they expect in ``hosts`` and ``all``;
    ``groups`` keeps what the per-host view cannot (nesting, the order of
    members, group variables, whether a group has ``children`` at all), so
    ``--import`` gives back the very inventory that was exported. Hosts that
    appear in groups but have no hostvars are left out of ``hosts``, as they
    are not hosts of the inventory.
    """
    per_host = groups_per_host(inventory)
    hosts = {name: {"hostvars": hv, "groups": per_host.get(name, [])}
             for name, hv in sorted(hostvars_of(inventory).items())}
    return {"hosts": hosts, "all": (inventory.get(ALL) or {}).get("vars") or {},
            "groups": dict(sorted(groups_of(inventory).items()))}
