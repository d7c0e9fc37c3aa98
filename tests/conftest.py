"""Shared pytest setup: the project's lib/ on sys.path, and common fixtures."""

import os
import sys
import zlib

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
from netbox_heavy import heavy_suite  # noqa: E402

try:  # Hypothesis profiles: bounded everywhere, derandomised in CI so a run there is reproducible
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.register_profile("dev", deadline=None)
    _hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
except ImportError:  # pragma: no cover - test-requirements.txt installs it
    pass


@pytest.fixture(scope="session", autouse=True)
def _own_cache_folder(tmp_path_factory):
    """Runs keep their reuse records (osa_inventory.reuse) in a cache folder of this session, not the user's."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


# Set by scripts/run-tests-pythons.py in every version's suite but one: the version that runs the tests
# marked ``once`` (see tox.ini's [pytest] markers) that it does not spread.
ONCE_ELSEWHERE = "OSA_TEST_ONCE_ELSEWHERE"
# Set by the same runner when it spreads the tests marked ``once`` over the versions of the run (comma-separated).
ONCE_SPREAD = "OSA_TEST_ONCE_SPREAD"
THIS_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _runs_as_another_user(item) -> bool:
    """Whether the test's module runs commands as another OS user (tests/os_users.py): that needs the
    system's interpreter, which only the --once-on version (3.11 in CI) is."""
    module = getattr(item, "module", None)
    return any(getattr(value, "__module__", None) == "os_users" for value in vars(module).values()) \
        if module is not None else False


def spread_without_heavy(spread: list[str], heavy: str) -> list[str]:
    """The versions the tests marked ``once`` spread over: ``spread`` less the suite running the heavy NetBox
    tests (tests/netbox_heavy.py), the longest suite of a run otherwise, unless that would leave none."""
    rest = [version for version in spread if version != heavy]
    return rest or spread


def once_home(item, spread: list[str], once_on: str) -> str:
    """The version whose suite runs this test marked ``once``: by a digest of its name over ``spread``
    (the same in every suite of the run), or ``once_on`` for a test run as another user."""
    if not spread or _runs_as_another_user(item):
        return once_on
    return spread[zlib.crc32(item.nodeid.encode()) % len(spread)]


def pytest_collection_modifyitems(session, config, items):
    """Tests of the real NetBox run last (a stable sort keeps every other order): CI starts NetBox in the
    background as the suites start, so its cold start (minutes) overlaps all other tests before any waits.

    Tests marked ``once`` are deselected (and counted as such in the summary) when the multi-version runner
    says another version's suite runs them."""
    elsewhere = os.environ.get(ONCE_ELSEWHERE, "")
    spread = spread_without_heavy([v for v in os.environ.get(ONCE_SPREAD, "").split(",") if v], heavy_suite())
    if elsewhere or spread:
        once_on = elsewhere or THIS_VERSION
        dropped = [item for item in items if item.get_closest_marker("once")
                   and once_home(item, spread, once_on) != THIS_VERSION]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            gone = set(map(id, dropped))
            items[:] = [item for item in items if id(item) not in gone]
    items.sort(key=lambda item: "netbox" in getattr(item, "fixturenames", ()))


def pytest_report_header(config):
    spread = os.environ.get(ONCE_SPREAD, "")
    if spread:
        over = ", ".join(spread_without_heavy(spread.split(","), heavy_suite()))
        return (f"tests marked 'once' are spread over the suites of Python {over} in this run; "
                f"heavy NetBox tests (OSA_TEST_NETBOX_HEAVY): {heavy_suite()}")
    elsewhere = os.environ.get(ONCE_ELSEWHERE, "")
    if elsewhere:
        return f"tests marked 'once' run in the Python {elsewhere} suite of this run, not here"
    return None
