"""osa_inventory.indented_json writes exactly what json.dumps(indent=4, sort_keys=True) writes (OSA's tools read it)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from osa_inventory.indented_json import dumps


def reference(value):
    return json.dumps(value, indent=4, sort_keys=True)


# Awkward strings (escapes, non-ASCII, surrogates, separators and brackets inside), every float
# (NaN, infinities, -0.0, tiny and huge), ints beyond 64 bits, booleans (ints to Python) and null.
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**80, max_value=2**80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text()
           | st.sampled_from(['"', "\\", "\n", "\u2028", "\ud800", ", ", ": ", "{}", "[]", "\x00", "é"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=6)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=6), max_leaves=60)


@settings(max_examples=600)
@given(JSON)
def test_the_same_text_as_json_dumps_for_any_json_value(value):
    assert dumps(value) == reference(value)


# What only Python gives (the plugin's write() never sees them, but dumps must not differ on them):
# tuples, keys that are not strings (converted, or refused, by json.dumps), subclasses of the JSON types.
class Name(str):
    pass


class Count(int):
    def __repr__(self):
        return "not a number"


KEYS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
PYTHON = st.recursive(SCALARS | st.builds(Name, st.text(max_size=4)) | st.builds(Count, st.integers()),
                      lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=30)


@settings(max_examples=400)
@given(PYTHON)
def test_the_same_text_or_the_same_error_for_python_values(value):
    try:
        expected = reference(value)
    except (TypeError, ValueError) as exc:
        try:
            dumps(value)
        except type(exc) as mine:
            assert str(mine) == str(exc)
        else:
            raise AssertionError("dumps wrote what json.dumps refuses")
    else:
        assert dumps(value) == expected


def test_a_circular_value_is_refused_as_json_dumps_refuses_it():
    loop = {"a": []}
    loop["a"].append(loop)
    try:
        reference(loop)
    except ValueError as exc:
        expected = str(exc)
    try:
        dumps(loop)
    except ValueError as exc:
        assert str(exc) == expected
    else:
        raise AssertionError("a circular value was written")


def test_the_stored_inventory_text_of_a_real_run(tmp_path):
    """A generated inventory, written by the filesystem plugin, is byte for byte json.dumps's text."""
    from helpers import base_config, run_script, write_config, write_ini

    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    result = run_script(config_dir, ini=write_ini(str(tmp_path)))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "deploy" / "openstack_inventory.json") as fh:
        text = fh.read()
    assert text == reference(json.loads(text)) == dumps(json.loads(text))
