"""inventory/printed.py: the inventory's printed text, and where JSON with sorted keys cannot print it."""

from __future__ import annotations

import datetime
import json

import pytest

from osa_inventory.errors import ConfigError
from osa_inventory.inventory.printed import printed_text, unprintable


def test_printable_inventories_print_as_json_dumps_with_sorted_keys():
    inventory = {"b": [1, 2.5, None, True, "x"], "a": {"10": 1, "2": 2}, "c": {3: "x", 1: "y"}, "d": {None: 1}}
    assert printed_text(inventory) == json.dumps(inventory, sort_keys=True)
    assert unprintable(inventory) is None


@pytest.mark.parametrize("inventory, problem", [
    ({"a": {"b": {1, 2}}}, "a.b is a set ({1, 2})"),
    ({"a": [0, b"hi"]}, "a.1 is binary data (b'hi')"),
    ({"a": [{"when": datetime.date(2024, 1, 2)}]}, "a.0.when is a date (2024-01-02)"),
    ({"a": datetime.datetime(2024, 1, 2, 3, 4)}, "a is a timestamp (2024-01-02 03:04:00)"),
    ({"a": {1: "x", "b": "y"}}, "a mixes keys that do not sort together (1, 'b')"),
    ({1: "x", "b": "y"}, "the top level mixes keys that do not sort together (1, 'b')"),
    ({"a": {datetime.date(2024, 1, 2): "x"}}, "a has a key that is a date (2024-01-02)"),
    ({"a": {"b": object}}, "a.b is a type ("),
])
def test_the_first_unprintable_part_is_named(inventory, problem):
    assert unprintable(inventory).startswith(problem)
    with pytest.raises(ConfigError) as err:
        printed_text(inventory)
    assert str(err.value).startswith(f"the inventory cannot be printed as JSON: {problem}")
    assert str(err.value).endswith("it comes from the config or env.d: quote it there to keep it as text")


def test_a_loop_is_jsons_own_error():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        printed_text({"a": loop})
