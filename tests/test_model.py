"""The inventory model: what a stored inventory becomes on the way in and out of the generator.

The generator reads the stored inventory into :class:`Inventory` and writes it back as JSON;
everything the generator does not rebuild must come out as it went in, in a stable key order
(``inventory-manage`` shows groups in the order they are built).
"""

from __future__ import annotations

import copy

from osa_inventory.generate.model import Inventory


def test_an_empty_store_gives_an_empty_inventory():
    assert Inventory.from_json(None).to_json() == {"_meta": {"hostvars": {}}, "all": {"vars": {}}}
    assert Inventory.from_json({}).to_json() == {"_meta": {"hostvars": {}}, "all": {"vars": {}}}


def test_a_stored_inventory_comes_out_as_it_went_in_with_a_stable_key_order():
    stored = {
        "_meta": {"hostvars": {"h1": {"ansible_host": "10.0.0.1", "nested": {"a": [1]}}}},
        "all": {"vars": {"x": [1, 2]}, "children": ["ops"]},
        "ops": {"children": ["c"], "vars": {"v": {"w": 1}}, "hosts": ["h1", "h0"]},
        "c": {"hosts": ["h1"]},
        "empty": {"children": None, "hosts": None},
        "not_a_group": "text",
    }
    before = copy.deepcopy(stored)
    out = Inventory.from_json(stored).to_json()
    assert stored == before  # the stored data is not touched
    assert out == {
        "_meta": {"hostvars": {"h1": {"ansible_host": "10.0.0.1", "nested": {"a": [1]}}}},
        "all": {"children": ["ops"], "vars": {"x": [1, 2]}},
        "ops": {"vars": {"v": {"w": 1}}, "children": ["c"], "hosts": ["h1", "h0"]},
        "c": {"hosts": ["h1"]},
        "empty": {"children": [], "hosts": []},
    }
    # A group's own keys come first, then children, then hosts; all.vars comes last.
    assert [list(out[g]) for g in ("all", "ops", "c")] == [["children", "vars"], ["vars", "children", "hosts"],
                                                           ["hosts"]]
    # Nothing in the result is shared with the stored data.
    out["ops"]["vars"]["v"]["w"] = 2
    out["_meta"]["hostvars"]["h1"]["nested"]["a"].append(2)
    out["all"]["vars"]["x"].append(3)
    assert stored == before


def test_a_hosts_only_group_that_gains_a_child_takes_the_children_key():
    inv = Inventory.from_json({"g": {"hosts": ["h1"]}})
    inv.groups["g"].add_child("sub")
    inv.groups["g"].add_child("sub2")
    assert inv.to_json()["g"] == {"children": ["sub", "sub2"], "hosts": ["h1"]}


def test_new_groups_have_the_shape_asked_for():
    inv = Inventory()
    inv.group("with_children").add_host("h1")
    inv.hosts_group("hosts_only").add_host("h1")
    inv.group("kept", True)
    inv.hosts_group("kept").add_host("h2")   # an existing group keeps its shape
    out = inv.to_json()
    assert out["with_children"] == {"children": [], "hosts": ["h1"]}
    assert out["hosts_only"] == {"hosts": ["h1"]}
    assert out["kept"] == {"children": [], "hosts": ["h2"]}


def test_members_are_every_host_below_a_group_even_through_loops_and_missing_groups():
    inv = Inventory.from_json({
        "top": {"children": ["left", "right", "ghost"], "hosts": ["h0"]},
        "left": {"children": ["shared"], "hosts": ["h1"]},
        "right": {"children": ["shared", "top"], "hosts": ["h2"]},   # a loop back to top
        "shared": {"hosts": ["h3", "h1"]},
        "alone": {"hosts": ["h9"]},
    })
    assert inv.members("top") == {"h0", "h1", "h2", "h3"}
    assert inv.members("right") == {"h0", "h1", "h2", "h3"}
    assert inv.members("shared") == {"h1", "h3"}
    assert inv.members("ghost") == set()
