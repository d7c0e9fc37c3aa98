"""Which run does the heavy NetBox tests (the contract suite, 3000-host round trips, a kill at every
request, migrations, two writers...): once per CI run, not once per Python version.

NetBox writes about 45 objects a second, so these take minutes; CI runs the suite on four Python
versions against one NetBox, and they must run once per CI run, not once per version.
``OSA_TEST_NETBOX_HEAVY`` names the Python version that runs them (``.ci/run`` sets it to 3.12, the
version NetBox itself runs on); ``all`` runs them on every version, ``none`` on none. Unset, they
follow the ``once`` marker's rule (tests/conftest.py): ``scripts/run-tests-pythons.py`` alone runs them
in the one suite that runs the ``once`` tests, and a developer running one version gets them.

Never mark a heavy test ``once`` as well: with ``OSA_TEST_NETBOX_HEAVY`` naming another version than the
``once`` suite's (CI: 3.12 and 3.11), it would run in no suite at all.
"""

from __future__ import annotations

import os
import sys

import pytest

VARIABLE = "OSA_TEST_NETBOX_HEAVY"
# Set by scripts/run-tests-pythons.py in every suite but the one running the tests marked ``once``.
ONCE_ELSEWHERE = "OSA_TEST_ONCE_ELSEWHERE"


def heavy_here() -> tuple[bool, str]:
    """Whether this Python runs the heavy NetBox tests, and why not."""
    chosen = os.environ.get(VARIABLE, "").strip()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not chosen:
        elsewhere = os.environ.get(ONCE_ELSEWHERE, "").strip()
        if elsewhere:
            return False, (f"heavy NetBox test: {VARIABLE} is unset, so the Python {elsewhere} suite of this "
                           "run (the one running the tests marked once) runs them")
        return True, ""
    if chosen == "all" or chosen == here:
        return True, ""
    return False, f"heavy NetBox test: {VARIABLE}={chosen} runs them once per CI run, this is Python {here}"


_RUN, _WHY = heavy_here()
heavy = pytest.mark.skipif(not _RUN, reason=_WHY or "heavy NetBox test")
