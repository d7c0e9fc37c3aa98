"""Which suite runs the heavy NetBox tests (tests/netbox_heavy.py), and how that gate and the ``once``
marker's (tests/conftest.py, scripts/run-tests-pythons.py) agree: every suite of a run names the same one
suite for the heavy tests, and the tests marked ``once`` spread over the others.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

import conftest
from netbox_heavy import ONCE_ELSEWHERE, VARIABLE, heavy_here, heavy_suite

HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"
OTHER = "3.10" if HERE != "3.10" else "3.13"
VERSIONS = ["3.10", "3.11", "3.12", "3.13"]


@pytest.mark.parametrize(("heavy", "once_elsewhere", "runs"), [
    ("", "", True),              # one version run by hand, or the --once-on suite of the runner: they run here
    ("", OTHER, False),          # the runner without .ci/run: the --once-on version's suite runs them
    (HERE, "", True),
    (HERE, OTHER, True),         # this version named: it runs them, whichever is the --once-on one
    (OTHER, "", False),
    ("all", OTHER, True),
    ("none", "", False),
])
def test_the_heavy_tests_run_in_the_suite_the_variables_name(heavy, once_elsewhere, runs):
    run, why = heavy_here({VARIABLE: heavy, ONCE_ELSEWHERE: once_elsewhere})
    assert run is runs
    assert (why == "") is runs
    if not runs:
        assert why.startswith("heavy NetBox test: ") and VARIABLE in why


@pytest.mark.parametrize("heavy", ["", "3.12", "all", "none"])
def test_every_suite_of_a_run_names_the_same_heavy_suite(heavy):
    # What the runner gives each suite with --once-on 3.11: OSA_TEST_ONCE_ELSEWHERE in all but 3.11's.
    # Each suite's answer as that suite computes it (whichever Python runs this test).
    named = {heavy_suite({VARIABLE: heavy, ONCE_ELSEWHERE: "" if version == "3.11" else "3.11"}, here=version)
             for version in VERSIONS}
    assert named == {heavy or "3.11"}


def test_the_once_tests_spread_over_every_suite_but_the_heavy_one():
    names = [f"tests/test_x.py::test_{i}" for i in range(400)]
    spread = conftest.spread_without_heavy(VERSIONS, "3.12")
    homes = {conftest.once_home(SimpleNamespace(nodeid=n, module=SimpleNamespace()), spread, "3.11")
             for n in names}
    assert homes == {"3.10", "3.11", "3.13"}
    # "all", "none" or a version outside the run leave the spread whole; a lone version is kept.
    for heavy in ("all", "none", "3.9"):
        assert conftest.spread_without_heavy(VERSIONS, heavy) == VERSIONS
    assert conftest.spread_without_heavy(["3.12"], "3.12") == ["3.12"]


def test_the_once_suite_and_the_conftest_name_the_same_variable():
    assert conftest.ONCE_ELSEWHERE == ONCE_ELSEWHERE
