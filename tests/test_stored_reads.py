"""storage.change.load_required: the one read of the stored inventory that inventory-manage and the API share."""

from __future__ import annotations

import pytest

from osa_inventory import api
from osa_inventory.errors import InventoryError
from osa_inventory.storage import read_only
from osa_inventory.storage.backend import Backend
from osa_inventory.commands.advice import error_lines
from osa_inventory.storage.change import load_required
from osa_inventory.testing import make_inventory


class Watched:
    """A plugin that notes whether each load() was asked to write nothing."""

    def __init__(self, stored):
        self.stored = stored
        self.read_only_loads: list[bool] = []

    def load(self):
        self.read_only_loads.append(read_only.active())
        return self.stored


def test_read_only_reaches_the_plugin_only_when_asked():
    plugin = Watched(make_inventory(1, n_infra=1))
    backend = Backend("watched", "watched", plugin, config_dir="/etc/openstack_deploy")
    assert load_required(backend) == make_inventory(1, n_infra=1)
    load_required(backend, read_only=True)
    assert plugin.read_only_loads == [False, True]


def test_an_empty_store_is_one_line_in_the_callers_words():
    backend = Backend("watched", "watched", Watched(None), config_dir="/etc/openstack_deploy")
    with pytest.raises(InventoryError) as caught:
        load_required(backend)
    # Typed, with no command's advice: the commands add theirs (commands/advice.py), the API raises it as it is.
    assert type(caught.value) is api.NothingStored and caught.value.config_dir == "/etc/openstack_deploy"
    assert str(caught.value) == "backend watched holds no inventory yet"
    (line,) = error_lines(caught.value)
    assert line.startswith("backend watched holds no inventory yet; run ")
    assert " --config /etc/openstack_deploy " in line
    assert line.endswith(" --import FILE")
    with pytest.raises(api.NothingStored, match=r"^backend watched: nothing$"):
        load_required(backend, missing=lambda b: api.NothingStored(f"{b.describe()}: nothing"))
