"""Consistency checks for the project's environment skeleton (playbooks/inventory/env.d).

Every check is computed from the YAML itself, so adding a service only needs
new YAML, not test edits. Two things are spelled out by hand: the relative
order required between "metal" container entries (it decides which entry wins
on a host that runs several of them) and the two OSA group quirks we keep for
compatibility.
"""

from __future__ import annotations

import fnmatch
import os
import random
from typing import Any

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_D = os.path.join(ROOT, "playbooks", "inventory", "env.d")

SECTIONS = ("physical_skel", "container_skel", "component_skel")
ALLOWED_TOP_LEVEL = set(SECTIONS) | {"version"}
CONTAINER_KEYS = {"belongs_to", "contains", "properties"}

# (earlier, later): metal container entries matching `earlier` must be handled
# before those matching `later`, as OSA handles them.
METAL_ORDER_RULES: list[tuple[str, str]] = [
    ("neutron_agents_container", "haproxy_container"),
    ("neutron_ovn_gateway_container", "haproxy_container"),
    ("neutron_agents_container", "nova_compute_container"),
    ("neutron_ovn_gateway_container", "nova_compute_container"),
    ("ceilometer_compute_container", "nova_compute_container"),
] + [
    (earlier, "cinder_volumes_container")
    for earlier in (
        "haproxy_container",
        "zun_compute_container",
        "nova_compute_container",
        "ceph_osd_container",
        "swift_*_container",
        "manila_data_container",
        "masakari_monitors_container",
        "ceilometer_compute_container",
    )
]

# Container groups whose host group does not sit under `hosts`, kept exactly
# as OSA defines them: group -> parents of its *_hosts group. If OSA fixes one,
# the test below fails so this table gets updated rather than going stale.
HOST_GROUP_QUIRKS: dict[str, list[str]] = {
    "backup_runner_containers": ["all_containers"],
    "swift_remote_containers": ["remote"],
}
# Container groups that do not sit under all_containers: group -> parents.
CONTAINER_GROUP_QUIRKS: dict[str, list[str]] = {
    "swift_remote_containers": ["remote_containers"],
}


def skeleton_files() -> list[str]:
    """Names of the YAML files in our env.d, in os.listdir order."""
    return [n for n in os.listdir(ENV_D) if n.endswith((".yml", ".yaml"))]


def read_file(name: str) -> dict[str, Any]:
    """Parse one env.d file; an empty file counts as an empty mapping."""
    with open(os.path.join(ENV_D, name), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return {} if data is None else data


def merge_into(base: dict, update: dict) -> dict:
    """Recursive env.d merge: non-empty mappings merge, anything else replaces."""
    for key, value in update.items():
        if isinstance(value, dict) and value and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = value
    return base


def merged_skeleton() -> dict[str, dict]:
    """All files merged in sorted name order, with every section present."""
    result: dict[str, Any] = {}
    for name in sorted(skeleton_files()):
        data = dict(read_file(name))
        data.pop("version", None)
        merge_into(result, data)
    for section in SECTIONS:
        result.setdefault(section, {})
    return result


def first_definition_order(names: list[str]) -> list[str]:
    """container_skel keys in the order they first appear when reading `names` in turn."""
    seen: dict[str, None] = {}
    for name in names:
        for key in read_file(name).get("container_skel") or {}:
            seen.setdefault(key, None)
    return list(seen)


def is_metal(entry: dict) -> bool:
    """True when a container_skel entry runs on its host rather than in a container."""
    return bool((entry.get("properties") or {}).get("is_metal"))


def _is_list_of_names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, str) and item for item in value
    )


@pytest.fixture(scope="module")
def skeleton() -> dict[str, dict]:
    return merged_skeleton()


def test_folder_holds_skeleton_files() -> None:
    assert len(skeleton_files()) >= 2, f"expected our env.d files in {ENV_D}"


@pytest.mark.parametrize("name", sorted(skeleton_files()))
def test_file_parses_with_known_sections_in_house_order(name: str) -> None:
    data = read_file(name)
    assert isinstance(data, dict), f"{name}: top level must be a mapping"
    unknown = set(data) - ALLOWED_TOP_LEVEL
    assert not unknown, f"{name}: unknown top-level keys {sorted(unknown)}"
    present = [key for key in data if key in SECTIONS]
    assert present, f"{name}: defines none of {SECTIONS}"
    assert present == [s for s in SECTIONS if s in present], (
        f"{name}: sections must appear in the order {SECTIONS}, found {present}"
    )
    for section in present:
        entries = data[section]
        assert isinstance(entries, dict) and entries, (
            f"{name}: {section} must be a non-empty mapping"
        )
        for key, entry in entries.items():
            assert isinstance(entry, dict), f"{name}: {section}.{key} must be a mapping"


@pytest.mark.parametrize("name", sorted(skeleton_files()))
def test_file_starts_with_a_comment(name: str) -> None:
    with open(os.path.join(ENV_D, name), encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip() and line.strip() != "---"), "")
    assert first.startswith("#"), f"{name}: must open with a comment naming its services"


def test_no_entry_is_defined_in_two_files() -> None:
    owners: dict[tuple[str, str], str] = {}
    clashes = []
    for name in sorted(skeleton_files()):
        for section in SECTIONS:
            for key in read_file(name).get(section) or {}:
                if (section, key) in owners:
                    clashes.append(f"{section}.{key} in {owners[section, key]} and {name}")
                owners[section, key] = name
    assert not clashes, "entries defined twice: " + "; ".join(clashes)


def test_entries_have_the_expected_shape(skeleton: dict[str, dict]) -> None:
    problems = []
    for section in SECTIONS:
        for key, entry in skeleton[section].items():
            if not _is_list_of_names(entry.get("belongs_to")):
                problems.append(f"{section}.{key}: belongs_to must be a non-empty list of names")
    for key, entry in skeleton["container_skel"].items():
        extra = set(entry) - CONTAINER_KEYS
        if extra:
            problems.append(f"container_skel.{key}: unknown keys {sorted(extra)}")
        if not _is_list_of_names(entry.get("contains")):
            problems.append(f"container_skel.{key}: contains must be a non-empty list of names")
        metal = (entry.get("properties") or {}).get("is_metal", False)
        if not isinstance(metal, bool):
            problems.append(f"container_skel.{key}: is_metal must be true or false")
    for section in ("physical_skel", "component_skel"):
        for key, entry in skeleton[section].items():
            if set(entry) != {"belongs_to"}:
                problems.append(f"{section}.{key}: only belongs_to allowed, got {sorted(entry)}")
    assert not problems, "\n".join(problems)


def test_container_entries_join_declared_container_groups(skeleton: dict[str, dict]) -> None:
    physical = skeleton["physical_skel"]
    bad = [
        f"{key} -> {group}"
        for key, entry in skeleton["container_skel"].items()
        for group in entry["belongs_to"]
        if not group.endswith("_containers") or group not in physical
    ]
    assert not bad, "container entries joining undeclared/non-container groups: " + ", ".join(bad)


def test_every_container_group_is_used(skeleton: dict[str, dict]) -> None:
    used = {g for entry in skeleton["container_skel"].values() for g in entry["belongs_to"]}
    declared = {g for g in skeleton["physical_skel"] if g.endswith("_containers")}
    assert declared - used == set(), f"container groups no entry joins: {sorted(declared - used)}"


def test_contained_components_are_declared(skeleton: dict[str, dict]) -> None:
    components = skeleton["component_skel"]
    missing = [
        f"{key}: {name}"
        for key, entry in skeleton["container_skel"].items()
        for name in entry["contains"]
        if name not in components
    ]
    assert not missing, "components used but not declared: " + ", ".join(missing)


def test_every_component_lives_in_some_container(skeleton: dict[str, dict]) -> None:
    contained = {n for entry in skeleton["container_skel"].values() for n in entry["contains"]}
    orphans = sorted(set(skeleton["component_skel"]) - contained)
    assert not orphans, f"components no container entry holds: {orphans}"


def test_container_groups_pair_with_host_groups(skeleton: dict[str, dict]) -> None:
    physical = skeleton["physical_skel"]
    host_parents: dict[str, Any] = {}
    container_parents: dict[str, list[str]] = {}
    for group, entry in physical.items():
        if not group.endswith("_containers"):
            continue
        hosts = group[: -len("_containers")] + "_hosts"
        parents = physical.get(hosts, {}).get("belongs_to")
        if parents != ["hosts"]:
            host_parents[group] = parents
        if entry["belongs_to"] != ["all_containers"]:
            container_parents[group] = entry["belongs_to"]
    assert host_parents == HOST_GROUP_QUIRKS, "*_containers without a *_hosts group under hosts"
    assert container_parents == CONTAINER_GROUP_QUIRKS, "*_containers not under all_containers"


def test_host_groups_pair_with_container_groups(skeleton: dict[str, dict]) -> None:
    physical = skeleton["physical_skel"]
    lonely = [
        g for g in physical
        if g.endswith("_hosts") and g[: -len("_hosts")] + "_containers" not in physical
    ]
    assert not lonely, f"*_hosts groups without a *_containers group: {lonely}"


def test_order_rules_name_existing_metal_entries(skeleton: dict[str, dict]) -> None:
    metal = [k for k, e in skeleton["container_skel"].items() if is_metal(e)]
    for pattern in {p for rule in METAL_ORDER_RULES for p in rule}:
        assert fnmatch.filter(metal, pattern), f"no metal container entry matches {pattern}"


def _listings() -> list[tuple[str, list[str]]]:
    """File orders to check: the real listing plus orders another filesystem could give."""
    names = skeleton_files()
    orders = [("os.listdir", names), ("sorted", sorted(names)), ("reversed", sorted(names)[::-1])]
    rng = random.Random(20240611)
    for i in range(10):
        shuffled = list(names)
        rng.shuffle(shuffled)
        orders.append((f"shuffle{i}", shuffled))
    return orders


@pytest.mark.parametrize("label,names", _listings(), ids=[label for label, _ in _listings()])
def test_metal_entries_are_processed_in_osa_order(
    skeleton: dict[str, dict], label: str, names: list[str]
) -> None:
    containers = skeleton["container_skel"]
    order = [k for k in first_definition_order(names) if is_metal(containers[k])]
    position = {key: i for i, key in enumerate(order)}
    broken = []
    for earlier, later in METAL_ORDER_RULES:
        for a in fnmatch.filter(order, earlier):
            for b in fnmatch.filter(order, later):
                if a != b and position[a] > position[b]:
                    broken.append(f"{a} after {b}")
    assert not broken, f"metal order under {label} listing: " + "; ".join(broken)
