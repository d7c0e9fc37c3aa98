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

try:  # Hypothesis profiles: bounded everywhere, derandomised in CI so a run there is reproducible
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.register_profile("dev", deadline=None)
    _hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
except ImportError:  # pragma: no cover - test-requirements.txt installs it
    pass
