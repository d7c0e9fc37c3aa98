"""The cyclic garbage collector held off while a command runs.

A command such as the inventory script is one short process that builds one
large tree of dicts and lists (the config, the generated inventory, the copy a
plugin gets) and creates almost no reference cycles. The collector still walks the containers
made since its last pass every few hundred allocations, and all of them now and
then: timed with ``gc.callbacks``, 10 to 15 ms of a fresh 1000-host run and about
25 ms at 3000 hosts, some 5 % of the run, to find next to nothing. Everything
else is freed by reference counting as usual.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block; the collector is as it was after it.

    For a command's own process: a caller in another program (a library user, Ansible) keeps
    its collector, since the state it had is restored whether the block ends or raises.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
