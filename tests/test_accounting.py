"""Change records: what a write says about itself, and how it reaches the plugin."""

from __future__ import annotations

import os
import pwd
import socket

import pytest

from osa_inventory import accounting
from osa_inventory.accounting import FIELDS, MAX_FIELD, ChangeRecord, pending_change
from osa_inventory.errors import InventoryError, StorageError
from osa_inventory.storage.loader import Backend


class Recording:
    """A plugin that keeps what pending_change() said during each write."""

    def __init__(self):
        self.seen = []

    def register(self, args):
        pass

    def load(self):
        return None

    def write(self, inventory):
        self.seen.append(pending_change())


def test_record_reaches_the_plugin_only_during_its_write():
    plugin = Recording()
    backend = Backend("rec", "rec", plugin)
    record = ChangeRecord.now("dynamic_inventory", "1 host(s) added (a)", reason="new rack")
    assert pending_change() is None
    backend.write({"_meta": {"hostvars": {}}}, record=record)
    backend.write({"_meta": {"hostvars": {}}})
    assert plugin.seen == [record, None]
    assert pending_change() is None


def test_record_is_cleared_when_the_write_fails():
    class Failing(Recording):
        def write(self, inventory):
            raise RuntimeError("disk full")

    with pytest.raises(StorageError, match="disk full"):
        Backend("f", "f", Failing()).write({}, record=ChangeRecord.now("x", "y"))
    assert pending_change() is None


def test_now_names_this_user_host_and_reason(monkeypatch):
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv(accounting.REASON_VARIABLE, "ticket\n  OPS-12")
    record = ChangeRecord.now("inventory-manage -r aio1", "1 host(s) removed (aio1)")
    assert record.user == pwd.getpwuid(os.geteuid()).pw_name
    assert record.reason == "ticket OPS-12"  # one line, whatever the variable held
    assert record.time.endswith("Z") and record.time[:4].isdigit()
    assert record.host == socket.gethostname()  # no resolver lookup: a broken DNS must not stall a run
    assert ChangeRecord.now("x", "y", reason="given").reason == "given"  # an explicit reason wins


def test_sudo_invoker_is_named_beside_the_effective_user(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice-not-a-real-user")
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert ChangeRecord.now("x", "y").user == f"{me} (sudo: alice-not-a-real-user)"


def test_round_trip_and_bounds():
    record = ChangeRecord.now("c" * 5000, "s")
    assert len(record.command) == MAX_FIELD and record.command.endswith("...")
    assert ChangeRecord.from_dict(record.to_dict()) == record
    assert list(record.to_dict()) == list(FIELDS)
    # Older records lack fields: they read back as empty text.
    assert ChangeRecord.from_dict({"time": "t"}).reason == ""


@pytest.mark.parametrize("bad, what", [([], "list"), ({"user": 5}, "user is a int"),
                                       ({"reason": {"x": 1}}, "reason is a dict")])
def test_wrong_shaped_stored_records_are_refused_in_one_line(bad, what):
    with pytest.raises(InventoryError, match=what) as info:
        ChangeRecord.from_dict(bad, where="record of version 7")
    assert "record of version 7" in str(info.value) and "\n" not in str(info.value)


def test_an_access_refusal_stays_one_across_the_plugin_boundary():
    from osa_inventory.errors import AccessDenied

    class Refusing(Recording):
        def load(self):
            raise AccessDenied("user 'ro' may not read /osa/x/")

        def write(self, inventory):
            raise StorageError("disk full")

    backend = Backend("store", "store", Refusing())
    with pytest.raises(AccessDenied, match=r"^storage backend store: user 'ro' may not read /osa/x/$"):
        backend.load()
    with pytest.raises(StorageError) as other:  # any other failure is a plain StorageError
        backend.write({})
    assert not isinstance(other.value, AccessDenied)
