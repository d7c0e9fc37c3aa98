"""Shared pytest setup: the project's lib/ on sys.path, and common fixtures."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

try:  # Hypothesis profiles: bounded everywhere, derandomised in CI so a run there is reproducible
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.register_profile("dev", deadline=None)
    _hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
except ImportError:  # pragma: no cover - test-requirements.txt installs it
    pass
