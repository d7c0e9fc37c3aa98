"""How an Ansible inventory is laid out in Craton, and read back (pure functions, no I/O).

Layout (see docs/craton.md):

* every ``_meta.hostvars`` entry is a Craton host named after it; its own
  variables are the hostvars, verbatim, except keys Craton cannot hold (longer
  than 255 characters, empty, or starting with our reserved prefix) and
  values Craton does not give back exactly at the top level of a variable
  (see :func:`exact_at_top`), which go under one reserved key
  ``osa-inventory:escaped``;
* ``device_type`` is ``container`` for an entry whose ``physical_host`` is
  another host of the inventory (that host becomes its ``parent_id``), else
  ``server``; ``ip_address`` mirrors ``ansible_host`` (or ``management_address``)
  when it is a valid address, else the placeholder ``0.0.0.0``: the hostvars
  stay the truth;
* every other top-level entry (groups, ``all``...) and every other ``_meta``
  key is one region variable ``osa-inventory:top:<name>`` /
  ``osa-inventory:meta:<name>`` holding the value verbatim, so group host
  order, empty groups and group vars survive exactly;
* a host's direct group memberships are also its Craton labels (a mirror for
  people and for ``GET /v1/hosts?label=G``; the region variables stay the truth).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from ...errors import StorageError

PREFIX = "osa-inventory:"
STATE_KEY = PREFIX + "state"
ESCAPED_KEY = PREFIX + "escaped"
VALUE_KEY = PREFIX + "value"
BOXED_KEY = PREFIX + "boxed"
INT64 = (-2 ** 63, 2 ** 63)
MAX_KEY = 255
MAX_NAME = 255
PLACEHOLDER_IP = "0.0.0.0"
SERVER, CONTAINER = "server", "container"
ADDRESS_KEYS = ("ansible_host", "management_address")


@dataclass(frozen=True)
class HostSpec:
    """What one inventory host should look like in Craton."""

    name: str
    variables: dict
    device_type: str
    parent: str | None
    ip_address: str
    labels: frozenset


@dataclass
class CurrentHost:
    """What Craton holds for one host (``labels`` is what we may manage of its labels)."""

    id: int
    variables: dict
    device_type: str
    parent: str | None
    ip_address: str
    labels: set = field(default_factory=set)


@dataclass
class Plan:
    """The requests that turn the current state into the desired one, in a safe order."""

    creates: list = field(default_factory=list)        # HostSpec, parents first
    body_updates: list = field(default_factory=list)   # (name, {field: value}), parents first
    var_puts: list = field(default_factory=list)       # (name, {key: value})
    var_deletes: list = field(default_factory=list)    # (name, [keys])
    label_adds: list = field(default_factory=list)     # (name, [labels])
    label_removes: list = field(default_factory=list)  # (name, [labels])
    deletes: list = field(default_factory=list)        # names, children first
    region_put: dict = field(default_factory=dict)
    region_delete: list = field(default_factory=list)

    @property
    def host_requests(self) -> int:
        return sum(len(x) for x in (self.creates, self.body_updates, self.var_puts, self.var_deletes,
                                    self.label_adds, self.label_removes, self.deletes))

    @property
    def empty(self) -> bool:
        return not (self.host_requests or self.region_put or self.region_delete)

    def label_hosts(self) -> set:
        """Hosts whose labels this plan may change (created ones included)."""
        return ({s.name for s in self.creates} | {n for n, _ in self.label_adds}
                | {n for n, _ in self.label_removes})


def same(a: Any, b: Any) -> bool:
    """JSON equality that, unlike ``==``, tells ``1``, ``1.0``, ``true`` and ``0.0``, ``-0.0`` apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def exact_at_top(value: Any) -> bool:
    """Whether Craton gives ``value`` back unchanged as the whole value of a variable.

    Craton keeps variable values in a JSON column that SQLite converts when the
    text is a number: ``2.0`` comes back as ``2``, ``-0.0`` as ``0``, integers
    outside 64 bits as floats. Nested values come back exactly, so every float
    and every integer past 64 bits is stored one level down.
    """
    if isinstance(value, float):
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return INT64[0] <= value < INT64[1]
    return True


def valid_address(value: Any) -> bool:
    """True for an IPv4/IPv6 literal Craton stores safely (no zone index)."""
    if not isinstance(value, str) or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _storable_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY and not key.startswith(PREFIX)


def encode_hostvars(hostvars: Any) -> dict:
    """The Craton variables that stand for one host's hostvars (see the module doc)."""
    if not isinstance(hostvars, dict):
        return {VALUE_KEY: hostvars} if exact_at_top(hostvars) else {BOXED_KEY: [hostvars]}
    out: dict = {}
    escaped: dict = {}
    for key, value in hostvars.items():
        if _storable_key(key) and exact_at_top(value):
            out[key] = value
        else:
            escaped[key] = value
    if escaped:
        out[ESCAPED_KEY] = escaped
    return out


def decode_hostvars(name: str, variables: dict) -> Any:
    """The hostvars a host's own Craton variables stand for; inverse of :func:`encode_hostvars`."""
    for key in (VALUE_KEY, BOXED_KEY):
        if key not in variables:
            continue
        value = variables[key]
        if len(variables) != 1 or (key == BOXED_KEY and not (isinstance(value, list) and len(value) == 1)):
            raise StorageError(f"host {name} holds {key} next to other variables or in another shape; "
                               "remove the stray variables in Craton or write the inventory again")
        return value if key == VALUE_KEY else value[0]
    if ESCAPED_KEY not in variables:
        return dict(variables)
    escaped = variables[ESCAPED_KEY]
    if not isinstance(escaped, dict):
        raise StorageError(f"host {name} variable {ESCAPED_KEY} is not a JSON object; "
                           "remove it in Craton or write the inventory again")
    out = {k: v for k, v in variables.items() if k != ESCAPED_KEY}
    out.update(escaped)
    return out


def region_key(kind: str, name: str) -> str:
    """Region variable name for a top-level (``top``) or ``_meta`` (``meta``) entry."""
    key = f"{PREFIX}{kind}:{name}"
    return key if len(key) <= MAX_KEY else _long_key(kind, name)


def _long_key(kind: str, name: str) -> str:
    # A digest names the entry and the value carries the real name.
    return f"{PREFIX}long:{hashlib.sha256(f'{kind}:{name}'.encode()).hexdigest()}"


def check_inventory(inventory: Any) -> dict:
    """The inventory's hostvars, after checking the shape Craton can hold."""
    if not isinstance(inventory, dict):
        raise StorageError(f"the inventory to store is a {type(inventory).__name__}, not a JSON object")
    meta = inventory.get("_meta", {})
    if not isinstance(meta, dict):
        raise StorageError("the inventory's _meta is not a JSON object")
    hostvars = meta.get("hostvars", {})
    if not isinstance(hostvars, dict):
        raise StorageError("the inventory's _meta.hostvars is not a JSON object")
    for name in hostvars:
        if not 0 < len(name) <= MAX_NAME:
            raise StorageError(f"host name {name[:40]!r}... is {len(name)} characters long; "
                               f"Craton host names hold 1 to {MAX_NAME}")
    return hostvars


def shape_of(inventory: dict) -> dict:
    """Whether ``_meta`` and ``_meta.hostvars`` are present (so an inventory without them round-trips)."""
    meta = inventory.get("_meta")
    return {"meta": "_meta" in inventory, "hostvars": isinstance(meta, dict) and "hostvars" in meta}


def region_entries(inventory: dict) -> dict:
    """Region variables (without the state record) that stand for every non-host part."""
    out: dict = {}
    for name, value in inventory.items():
        if name == "_meta":
            continue
        _put_entry(out, "top", name, value)
    meta = inventory.get("_meta")
    if isinstance(meta, dict):
        for name, value in meta.items():
            if name != "hostvars":
                _put_entry(out, "meta", name, value)
    return out


def _put_entry(out: dict, kind: str, name: str, value: Any) -> None:
    key = region_key(kind, name)
    if key.startswith(f"{PREFIX}{kind}:") and exact_at_top(value):
        out[key] = value
    else:  # a name too long for a key, or a value Craton would change at the top: one level down
        out[_long_key(kind, name)] = {"kind": kind, "name": name, "value": value}


def split_entries(region_vars: dict) -> tuple[dict, dict]:
    """Top-level and ``_meta`` entries found in a region's variables (other keys ignored)."""
    top: dict = {}
    meta: dict = {}
    for key, value in region_vars.items():
        if not key.startswith(PREFIX) or key == STATE_KEY:
            continue
        rest = key[len(PREFIX):]
        if rest.startswith("top:"):
            top[rest[4:]] = value
        elif rest.startswith("meta:"):
            meta[rest[5:]] = value
        elif rest.startswith("long:") and isinstance(value, dict) and value.get("kind") in ("top", "meta"):
            (top if value["kind"] == "top" else meta)[value.get("name")] = value.get("value")
    return top, meta


ENTRY_PREFIXES = tuple(f"{PREFIX}{kind}:" for kind in ("top", "meta", "long"))


def our_entries(region_vars: dict) -> dict:
    """The region variables that stand for inventory entries (not the state record or write marks)."""
    return {k: v for k, v in region_vars.items() if k.startswith(ENTRY_PREFIXES)}


def assemble(region_vars: dict, shape: dict, hosts: Iterable[tuple[str, dict]]) -> dict:
    """Rebuild the inventory from region variables and ``(name, own variables)`` of every host."""
    top, meta = split_entries(region_vars)
    inventory = dict(top)
    if shape.get("meta", True):
        block = dict(meta)
        if shape.get("hostvars", True):
            block["hostvars"] = {name: decode_hostvars(name, variables) for name, variables in hosts}
        inventory["_meta"] = block
    return inventory


def memberships(entries: dict, hosts: Iterable[str]) -> dict:
    """Direct group memberships (label sets) of ``hosts``, from top-level inventory entries.

    Group names Craton cannot hold as a label (empty, over 255 characters)
    are left out: the region variables keep those memberships anyway.
    """
    labels: dict = {name: set() for name in hosts}
    for group, value in entries.items():
        if not 0 < len(group) <= MAX_KEY or not isinstance(value, dict):
            continue
        members = value.get("hosts")
        if not isinstance(members, list):
            continue
        for member in members:
            if isinstance(member, str) and member in labels:
                labels[member].add(group)
    return labels


def label_names(entries: dict) -> set:
    """Every group name that can be a label."""
    return {g for g, v in entries.items() if 0 < len(g) <= MAX_KEY and isinstance(v, dict)
            and isinstance(v.get("hosts"), list)}


def _parents(hostvars: dict) -> dict:
    """Physical-host parent of every container, cycles broken deterministically."""
    wanted = {}
    for name, hv in hostvars.items():
        if isinstance(hv, dict):
            parent = hv.get("physical_host")
            if isinstance(parent, str) and parent != name and parent in hostvars:
                wanted[name] = parent
    parents: dict = {}
    for name in sorted(wanted):
        node, seen = wanted[name], {name}
        while node is not None and node not in seen:
            seen.add(node)
            node = parents.get(node)
        if node is None:  # the chain ends at a root: no cycle
            parents[name] = wanted[name]
    return parents


def _depths(parents: dict, names: Iterable[str]) -> dict:
    depth: dict = {}
    for name in names:
        chain: list = []
        on_chain: set = set()
        node = name
        while node is not None and node not in depth and node not in on_chain:
            chain.append(node)
            on_chain.add(node)
            node = parents.get(node)
        base = depth[node] if node in depth else -1
        for n in reversed(chain):
            base += 1
            depth[n] = base
    return depth


def host_specs(inventory: dict) -> dict:
    """Desired Craton host for every hostvars entry, parents before children."""
    hostvars = check_inventory(inventory)
    parents = _parents(hostvars)
    labels = memberships({k: v for k, v in inventory.items() if k != "_meta"}, hostvars)
    depth = _depths(parents, hostvars)
    specs: dict = {}
    for name in sorted(hostvars, key=lambda n: depth[n]):  # stable: inventory order within a depth
        hv = hostvars[name]
        address = PLACEHOLDER_IP
        if isinstance(hv, dict):
            address = next((hv[k] for k in ADDRESS_KEYS if valid_address(hv.get(k))), PLACEHOLDER_IP)
        specs[name] = HostSpec(name=name, variables=encode_hostvars(hv),
                               device_type=CONTAINER if name in parents else SERVER,
                               parent=parents.get(name), ip_address=address,
                               labels=frozenset(labels[name]))
    return specs


def plan(current: dict, desired: dict, old_entries: dict, new_entries: dict) -> Plan:
    """Requests turning ``current`` (name -> CurrentHost) into ``desired`` (name -> HostSpec)."""
    result = Plan()
    for name, spec in desired.items():  # desired is parents-first
        have = current.get(name)
        if have is None:
            result.creates.append(spec)
            continue
        body = {}
        if have.device_type != spec.device_type:
            body["device_type"] = spec.device_type
        if have.ip_address != spec.ip_address:
            body["ip_address"] = spec.ip_address
        if have.parent != spec.parent:
            body["parent_id"] = spec.parent
        if body:
            result.body_updates.append((name, body))
        changed = {k: v for k, v in spec.variables.items()
                   if k not in have.variables or not same(have.variables[k], v)}
        if changed:
            result.var_puts.append((name, changed))
        gone = [k for k in have.variables if k not in spec.variables]
        if gone:
            result.var_deletes.append((name, gone))
        add = sorted(spec.labels - have.labels)
        if add:
            result.label_adds.append((name, add))
        remove = sorted(have.labels - spec.labels)
        if remove:
            result.label_removes.append((name, remove))
    doomed = [n for n in current if n not in desired]
    current_parents = {n: h.parent for n, h in current.items() if h.parent in current}
    depth = _depths(current_parents, doomed)
    result.deletes = sorted(doomed, key=lambda n: -depth[n])
    result.region_put = {k: v for k, v in new_entries.items()
                         if k not in old_entries or not same(old_entries[k], v)}
    result.region_delete = sorted(k for k in old_entries if k not in new_entries)
    return result
