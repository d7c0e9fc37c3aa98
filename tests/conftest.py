"""Shared pytest setup: the project's lib/ on sys.path, and common fixtures."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
# The plugin contract suite ships in the package; pytest shows its failed asserts' values when it rewrites them.
pytest.register_assert_rewrite("osa_inventory.testing")

# The shared NetBox's fixtures, registered here once for every module: a module importing them would get
# its own instance of the session fixture (and wait for, or start, the server again).
from netbox_server import netbox, netbox_objects  # noqa: E402,F401

try:  # Hypothesis profiles: bounded everywhere, derandomised in CI so a run there is reproducible
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.register_profile("dev", deadline=None)
    _hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
except ImportError:  # pragma: no cover - test-requirements.txt installs it
    pass


# Set by scripts/run-tests-pythons.py in every version's suite but one: the version that runs the tests
# marked ``once`` (see tox.ini's [pytest] markers).
ONCE_ELSEWHERE = "OSA_TEST_ONCE_ELSEWHERE"


def pytest_collection_modifyitems(session, config, items):
    """Tests of the real NetBox run last (a stable sort keeps every other order): CI starts NetBox in the
    background as the suites start, so its cold start (minutes) overlaps all other tests before any waits.

    Tests marked ``once`` are deselected (and counted as such in the summary) when the multi-version runner
    says another version's suite runs them."""
    elsewhere = os.environ.get(ONCE_ELSEWHERE, "")
    if elsewhere:
        kept = [item for item in items if item.get_closest_marker("once") is None]
        if len(kept) != len(items):
            config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("once")])
            items[:] = kept
    items.sort(key=lambda item: "netbox" in getattr(item, "fixturenames", ()))


def pytest_report_header(config):
    elsewhere = os.environ.get(ONCE_ELSEWHERE, "")
    if elsewhere:
        return f"tests marked 'once' run in the Python {elsewhere} suite of this run, not here"
    return None
