"""Tests marked ``once`` spread over the versions of a multi-version run, each run by exactly one suite.

tests/conftest.py decides where each runs from the test's name alone, so every suite of one run (each its
own process, on its own Python) makes the same decision; tests run as another OS user stay on the --once-on
version, the only interpreter another user can run in CI.
"""

from __future__ import annotations

import importlib.util
import os
from types import SimpleNamespace

import conftest
from helpers import ROOT

_SPEC = importlib.util.spec_from_file_location("run_tests_pythons_spread", os.path.join(ROOT, "scripts",
                                                                                        "run-tests-pythons.py"))
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)
SPREAD = ["3.10", "3.11", "3.12", "3.13"]


def item(nodeid: str, module_globals: dict | None = None):
    return SimpleNamespace(nodeid=nodeid, module=SimpleNamespace(**(module_globals or {})))


def test_each_test_has_one_home_and_the_homes_are_spread():
    names = [f"tests/test_x.py::test_{i}" for i in range(400)]
    homes = [conftest.once_home(item(n), SPREAD, "3.11") for n in names]
    assert homes == [conftest.once_home(item(n), SPREAD, "3.11") for n in names]  # same answer every time
    counts = {v: homes.count(v) for v in SPREAD}
    assert all(60 <= c <= 140 for c in counts.values()), counts  # no suite carries them all


def test_tests_run_as_another_user_stay_on_the_once_version():
    def as_user():
        pass
    as_user.__module__ = "os_users"
    names = [f"tests/test_y.py::test_{i}" for i in range(50)]
    assert {conftest.once_home(item(n, {"as_user": as_user}), SPREAD, "3.11") for n in names} == {"3.11"}
    # Without a spread (--once-on, or one version), every test marked once stays on the once version.
    assert {conftest.once_home(item(n), [], "3.12") for n in names} == {"3.12"}


def test_the_closing_line_says_where_they_ran():
    assert runner.once_place("3.11", SPREAD, "none") == (
        "spread over 3.10, 3.11, 3.12, 3.13, those run as another user on 3.11")
    assert runner.once_place("3.11", SPREAD, "3.12") == (
        "spread over 3.10, 3.11, 3.13 (not 3.12, which runs the heavy NetBox tests), those run as another user "
        "on 3.11")
    assert runner.once_place("3.11", SPREAD, "") == runner.once_place("3.11", SPREAD, None) == (
        "spread over 3.10, 3.12, 3.13 (not 3.11, which runs the heavy NetBox tests), those run as another user "
        "on 3.11")
    assert runner.once_place("3.12", None) == "3.12" and runner.once_place(None, None) == "none"
