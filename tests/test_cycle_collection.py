"""The cyclic collector is held off during a command's run and given back as it was."""

import gc

import pytest

from osa_inventory.commands import script
from osa_inventory.cycle_collection import collector_paused


@pytest.fixture
def collector():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_inside_and_as_it_was_after(collector, enabled):
    (gc.enable if enabled else gc.disable)()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled


def test_the_collector_comes_back_when_the_block_raises(collector):
    gc.enable()
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_the_script_runs_without_the_collector_and_gives_it_back(collector, tmp_path, monkeypatch):
    gc.enable()
    seen = []
    monkeypatch.setattr(script, "run", lambda args: seen.append(gc.isenabled()) or "{}")
    assert script.main(["--config", str(tmp_path)]) == 0
    assert seen == [False]
    assert gc.isenabled()
