"""Which suite runs the heavy NetBox tests (tests/netbox_heavy.py), and how that gate and the ``once``
marker's (tests/conftest.py, scripts/run-tests-pythons.py) agree: with ``OSA_TEST_NETBOX_HEAVY`` unset the
heavy tests run where the ``once`` tests run, so the multi-version runner never runs them four times.
"""

from __future__ import annotations

import sys

import pytest

from netbox_heavy import ONCE_ELSEWHERE, VARIABLE, heavy_here

HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"
OTHER = "3.10" if HERE != "3.10" else "3.13"


@pytest.mark.parametrize(("heavy", "once_elsewhere", "runs"), [
    ("", "", True),              # one version run by hand: everything
    ("", OTHER, False),          # the multi-version runner without .ci/run: the once suite runs them
    (HERE, "", True),
    (HERE, OTHER, True),         # .ci/run names this version: it runs them, whichever runs the once tests
    (OTHER, "", False),
    ("all", OTHER, True),
    ("none", "", False),
])
def test_the_heavy_tests_run_in_the_suite_the_variables_name(monkeypatch, heavy, once_elsewhere, runs):
    monkeypatch.setenv(VARIABLE, heavy)
    monkeypatch.setenv(ONCE_ELSEWHERE, once_elsewhere)
    run, why = heavy_here()
    assert run is runs
    assert (why == "") is runs
    if not runs:
        assert why.startswith("heavy NetBox test: ") and VARIABLE in why


def test_the_once_suite_and_the_conftest_name_the_same_variable():
    import conftest
    assert conftest.ONCE_ELSEWHERE == ONCE_ELSEWHERE
