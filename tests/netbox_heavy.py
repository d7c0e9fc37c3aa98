"""Which suite runs the heavy NetBox tests (the contract suite, the large round trip, a kill at every
request, migrations, two writers...): at most once per run, never once per Python version.

NetBox writes about 45 objects a second, so these take minutes of NetBox's CPU, more than CI's
30 minutes on 2 cores leave: ``.ci/run`` sets ``none`` and they are run by hand (README, Development).
``OSA_TEST_NETBOX_HEAVY`` names the Python version that runs them (3.12, say, the version NetBox
itself runs on); ``all`` runs them on every version, ``none`` on none. Unset, they run
in the suite of the ``--once-on`` version of ``scripts/run-tests-pythons.py`` (the one not given
``OSA_TEST_ONCE_ELSEWHERE``), and a developer running one version gets them.

The tests marked ``once`` spread over the run's versions (tests/conftest.py) leave out the suite
:func:`heavy_suite` names, so the two loads never pile up on one suite. Never mark a heavy test ``once``
as well: it would have to be in two places at once and runs in at most one of them.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping

import pytest

VARIABLE = "OSA_TEST_NETBOX_HEAVY"
# Set by scripts/run-tests-pythons.py in every suite but the --once-on version's.
ONCE_ELSEWHERE = "OSA_TEST_ONCE_ELSEWHERE"
THIS_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def heavy_suite(environ: Mapping[str, str] | None = None, here: str = THIS_VERSION) -> str:
    """The Python version (``3.X``) whose suite runs the heavy NetBox tests in this run, or ``all``,
    or ``none``, as the suite of Python ``here`` sees it; every suite of a multi-version run gets the
    same answer."""
    env = os.environ if environ is None else environ
    chosen = env.get(VARIABLE, "").strip()
    if chosen:
        return chosen
    return env.get(ONCE_ELSEWHERE, "").strip() or here


def heavy_here(environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether this Python runs the heavy NetBox tests, and why not."""
    env = os.environ if environ is None else environ
    suite = heavy_suite(env)
    if suite in ("all", THIS_VERSION):
        return True, ""
    if suite == "none":
        return False, f"heavy NetBox test: {VARIABLE}=none runs them nowhere"
    if not env.get(VARIABLE, "").strip():
        return False, (f"heavy NetBox test: {VARIABLE} is unset, so the Python {suite} suite of this run "
                       "(the --once-on version's) runs them")
    return False, f"heavy NetBox test: {VARIABLE}={suite} runs them once per CI run, this is Python {THIS_VERSION}"


_RUN, _WHY = heavy_here()
heavy = pytest.mark.skipif(not _RUN, reason=_WHY or "heavy NetBox test")
