"""Safe writes on the NetBox plugin, against the real test NetBox: a write killed at any request is
rolled back by the next run (and never seen half done by a reader), a second writer is refused in
one line, and a writer whose inventory was replaced since it read is refused.

A kill is a fault injected at the HTTP layer: the n-th request of a write raises ``Killed`` (a
BaseException, as a SIGKILL would leave things: nothing of the plugin's own error handling runs
past it except ``finally`` blocks, which end this process's claim on its mark as death would).
Every position is tried, once per CI run (``OSA_TEST_NETBOX_HEAVY``, tests/netbox_heavy.py): the
positions of a write do not grow with the inventory (bulk requests), so a small one has them all.
"""

from __future__ import annotations

import copy
import os
import threading

import pytest

from netbox_heavy import heavy
from osa_inventory.backends.netbox.client import NetBoxClient
from osa_inventory.storage import read_only
from osa_inventory.testing import assert_same, make_inventory
from test_netbox_plugin import PLUGIN, deployment, make  # noqa: F401 (deployment is a fixture)


class Killed(BaseException):
    """The process died here."""


class FaultInjector:
    """Counts the requests every NetBox client sends; runs ``action`` once, before the request for which
    ``trigger(number, request)`` is true (``number`` 1-based, ``request`` "METHOD path")."""

    def __init__(self, monkeypatch):
        self.count = 0
        self.seen: list[str] = []
        self.trigger = None
        self.action = None
        original = NetBoxClient.request
        injector = self

        def request(client, method, path, **kwargs):
            injector.count += 1
            shown = f"{method} {path.split('/api/')[-1]}"
            injector.seen.append(shown)
            trigger, injector_action = injector.trigger, injector.action
            if trigger is not None and trigger(injector.count, shown):
                injector.trigger = None
                injector_action()
            return original(client, method, path, **kwargs)
        monkeypatch.setattr(NetBoxClient, "request", request)

    def reset(self) -> None:
        self.count, self.seen = 0, []

    def at(self, position: int, action) -> None:
        self.trigger, self.action = (lambda number, _: number == position), action


def kill() -> None:
    raise Killed()


BEFORE, AFTER = make_inventory(2, n_infra=1), make_inventory(3, n_infra=1, revision=1)
AFTER["_meta"]["hostvars"]["compute1"]["changed"] = True
del AFTER["_meta"]["hostvars"]["compute2"]
AFTER["compute_hosts"]["hosts"].remove("compute2")
AFTER["nova_compute"]["hosts"].remove("compute2")


def requests_of_a_write(deployment, monkeypatch) -> list[str]:  # noqa: F811
    make(deployment).write(copy.deepcopy(BEFORE))
    counter = FaultInjector(monkeypatch)
    writer = make(deployment)
    writer.load()
    counter.reset()
    writer.write(copy.deepcopy(AFTER))
    return counter.seen


def check_kill_at(deployment, monkeypatch, position: int, total: int) -> None:  # noqa: F811
    """Kill the write BEFORE -> AFTER at ``position``; readers see one whole inventory; the next run
    rolls back (or, after the commit, keeps AFTER) and the next write completes."""
    make(deployment).write(copy.deepcopy(BEFORE))
    injector = FaultInjector(monkeypatch)
    writer = make(deployment)
    writer.load()
    injector.reset()
    injector.at(position, kill)
    with pytest.raises(Killed):
        writer.write(copy.deepcopy(AFTER))
    with read_only.reading_only():  # a reader meanwhile (--plan): one whole inventory, nothing written
        seen = make(deployment, cache="false").load()
    expected = AFTER if seen == AFTER else BEFORE
    assert_same(seen, expected, f"a reader after a kill at request {position} of {total}")
    # The next run: rolls back what the killed one left (or keeps its commit) and reads it again.
    assert_same(make(deployment, cache="false").load(), expected, f"the run after a kill at {position}")
    assert_same(make(deployment, cache="false").load(), expected, f"a second run after a kill at {position}")
    again = make(deployment)
    again.load()
    again.write(copy.deepcopy(AFTER))
    assert_same(make(deployment, cache="false").load(), AFTER, f"a write after a kill at {position}")
    assert_same(make(deployment, cache="false").load(), AFTER)


@heavy
def test_a_write_killed_at_every_request_is_rolled_back(deployment, monkeypatch):  # noqa: F811
    seen = requests_of_a_write(deployment, monkeypatch)
    marks = [i for i, r in enumerate(seen, 1) if r.startswith("PATCH extras/config-contexts/")]
    assert len(marks) == 2, seen  # the announcement and the commit: positions before, between and after
    for position in range(1, len(seen) + 1):
        check_kill_at(deployment, monkeypatch, position, len(seen))


def _in_thread(func) -> tuple[threading.Thread, list]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            func()
        except BaseException as exc:  # checked by the test
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@heavy
def test_a_second_writer_is_refused_in_one_line_while_the_first_writes(deployment, monkeypatch):  # noqa: F811
    make(deployment).write(copy.deepcopy(BEFORE))
    first, second = make(deployment), make(deployment)
    first.load()
    second.load()
    reached, release = threading.Event(), threading.Event()
    injector = FaultInjector(monkeypatch)
    marked = []

    def after_the_mark(number: int, request: str) -> bool:  # the request after the announcement
        if marked:
            return True
        marked.extend([1] if request.startswith("PATCH extras/config-contexts/") else [])
        return False
    injector.trigger, injector.action = after_the_mark, lambda: (reached.set(), release.wait(300))
    thread, errors = _in_thread(lambda: first.write(copy.deepcopy(AFTER)))
    try:
        assert reached.wait(300), "the first writer never announced its write"
        with pytest.raises(PLUGIN.WriteConflict) as caught:
            second.write(make_inventory(1, n_infra=1, revision=5))
        message = str(caught.value)
        assert "\n" not in message and "another run is writing" in message and "nothing was written" in message
        assert f"pid {os.getpid()}" in message  # who: the first writer's host and process
        with read_only.reading_only():  # a reader meanwhile sees the committed inventory
            assert_same(make(deployment, cache="false").load(), BEFORE, "a reader during the first write")
    finally:
        release.set()
        thread.join(300)
    assert not errors, errors
    assert_same(make(deployment, cache="false").load(), AFTER)


@heavy
def test_of_two_writers_that_read_together_one_commits_and_the_other_is_refused(deployment, monkeypatch):  # noqa: F811
    make(deployment).write(copy.deepcopy(BEFORE))
    first, second = make(deployment), make(deployment)
    first.load()
    second.load()
    reached, release = threading.Event(), threading.Event()
    injector = FaultInjector(monkeypatch)
    # Pause the first writer just before its announcement: it has read the state the second changes.
    injector.trigger = lambda number, request: request.startswith("PATCH extras/config-contexts/")
    injector.action = lambda: (reached.set(), release.wait(300))
    thread, errors = _in_thread(lambda: first.write(copy.deepcopy(AFTER)))
    try:
        assert reached.wait(300)
        other = make_inventory(1, n_infra=1, revision=5)
        second.write(copy.deepcopy(other))
    finally:
        release.set()
        thread.join(300)
    assert len(errors) == 1 and isinstance(errors[0], PLUGIN.WriteConflict), errors
    assert "\n" not in str(errors[0]) and "run again" in str(errors[0])
    assert_same(make(deployment, cache="false").load(), other)


@heavy
def test_a_writer_whose_inventory_was_replaced_since_it_read_is_refused(deployment):  # noqa: F811
    make(deployment).write(copy.deepcopy(BEFORE))
    slow, fast = make(deployment), make(deployment)
    slow.load()
    fast.load()
    fast.write(copy.deepcopy(AFTER))
    with pytest.raises(PLUGIN.WriteConflict) as caught:
        slow.write(make_inventory(1, n_infra=1, revision=7))
    message = str(caught.value)
    assert "\n" not in message and "another run" in message and "nothing was written" in message
    assert_same(make(deployment, cache="false").load(), AFTER)
