"""Which run does the heavy NetBox tests (the contract suite, 3000-host round trips, a kill at every
request, migrations, two writers...): once per CI run, not once per Python version.

NetBox writes about 45 objects a second, so these take minutes; CI runs the suite on four Python
versions against one NetBox, and they must run once per CI run, not once per version.
``OSA_TEST_NETBOX_HEAVY`` names the Python version that runs them (``.ci/run`` sets it to 3.12, the
version NetBox itself runs on); ``all`` runs them on every version, ``none`` on none. Unset (a developer
running one version), they run.
"""

from __future__ import annotations

import os
import sys

import pytest

VARIABLE = "OSA_TEST_NETBOX_HEAVY"


def heavy_here() -> tuple[bool, str]:
    """Whether this Python runs the heavy NetBox tests, and why not."""
    chosen = os.environ.get(VARIABLE, "").strip()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not chosen or chosen == "all" or chosen == here:
        return True, ""
    return False, f"heavy NetBox test: {VARIABLE}={chosen} runs them once per CI run, this is Python {here}"


_RUN, _WHY = heavy_here()
heavy = pytest.mark.skipif(not _RUN, reason=_WHY or "heavy NetBox test")
