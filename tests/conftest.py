"""Shared pytest setup: the project's lib/ on sys.path, and common fixtures."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

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


def pytest_collection_modifyitems(session, config, items):
    """Tests of the real NetBox run last (a stable sort keeps every other order): CI starts NetBox in the
    background as the suites start, so its cold start (minutes) overlaps all other tests before any waits."""
    items.sort(key=lambda item: "netbox" in getattr(item, "fixturenames", ()))
