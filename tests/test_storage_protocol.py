"""osa_inventory.storage.protocol: the plugin contract as typing.Protocols, and the change record's public name."""

from __future__ import annotations

import os
import re

import pytest
from test_contract_filesystem import sqlite_store

from osa_inventory import accounting
from osa_inventory.accounting import ChangeRecord
from osa_inventory.storage import protocol
from osa_inventory.storage.backend import Backend
from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.protocol import Closable, Describable, Lockable, ReservesAddresses, Storage, Versioned
from osa_inventory.storage.settings import Settings
from osa_inventory.testing import make_inventory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "writing-plugins.md")


def builtin(name: str):
    return load_plugin_module(name, Settings(path=None)).Storage()


@pytest.mark.parametrize("name, kinds", [
    ("filesystem", {Storage, Lockable, Versioned, Describable}),
    ("etcd", {Storage, Lockable, Versioned, Describable, Closable}),
    # Craton keeps change records (history) but no earlier inventories, and has no lock.
    ("craton", {Storage, Describable, Closable}),
    # NetBox too (history without read_version), and it is an IPAM: it knows the addresses held elsewhere.
    ("netbox", {Storage, Describable, Closable, ReservesAddresses}),
])
def test_the_builtin_plugins_are_what_they_offer(name, kinds):
    storage = builtin(name)
    assert {k for k in (Storage, Lockable, Versioned, Describable, Closable, ReservesAddresses)
            if isinstance(storage, k)} == kinds


def test_the_sample_plugin_keeps_the_protocols_without_importing_them():
    storage = sqlite_store.Storage()
    assert all(isinstance(storage, k) for k in (Storage, Lockable, Versioned, Describable))
    assert not isinstance(storage, Closable)
    assert "protocol" not in open(sqlite_store.__file__, encoding="utf-8").read()


def test_a_class_missing_a_contract_method_is_no_storage():
    class NoWrite:
        def register(self, args):
            pass

        def load(self):
            return None

    class Plain(NoWrite):
        def write(self, inventory):
            pass

    assert not isinstance(NoWrite(), Storage)
    assert isinstance(Plain(), Storage) and not isinstance(Plain(), Lockable)


def test_write_gets_its_change_record_from_pending_change():
    seen = []

    class Recorder:
        def register(self, args):
            pass

        def load(self):
            return None

        def write(self, inventory):
            seen.append(protocol.pending_change())

    record = ChangeRecord.now("helper remove compute1", "1 host(s) removed", "retired")
    backend = Backend("recorder", "recorder", Recorder())
    backend.write(make_inventory(1, n_infra=1), record=record)
    backend.write(make_inventory(1, n_infra=1))
    assert seen == [record, None]
    assert protocol.pending_change() is None, "the record outlived the write"
    assert protocol.pending_change is accounting.pending_change and protocol.ChangeRecord is ChangeRecord


def test_the_doc_names_what_the_module_offers():
    text = open(DOC, encoding="utf-8").read()
    assert "`osa_inventory.storage.protocol`" in text
    named = set(re.findall(r"`(Storage|Lockable|Versioned|Describable|Closable|ReservesAddresses|pending_change\(\))`",
                           text))
    assert {"Storage", "Lockable", "Versioned", "Describable", "Closable", "ReservesAddresses",
            "pending_change()"} <= named
    assert set(protocol.__all__) == {"ChangeRecord", "Closable", "Describable", "Lockable", "Recording",
                                     "ReservesAddresses", "Storage", "Versioned", "accepts_record",
                                     "pending_change"}
    assert "`Recording`" in text and "`accepts_record(storage.write)`" in text
    assert all(hasattr(protocol, name) for name in protocol.__all__)


# -- write(inventory, record=None) ----------------------------------------------------------------------

class _Base:
    def register(self, args):
        pass

    def load(self):
        return None


def _written_with(storage) -> list:
    """What the plugin saw over two writes through the loader's Backend: with a record, then without one."""
    record = ChangeRecord.now("helper remove compute1", "1 host(s) removed", "retired")
    backend = Backend("recorder", "recorder", storage)
    backend.write(make_inventory(1, n_infra=1), record=record)
    backend.write(make_inventory(1, n_infra=1))
    assert accounting.pending_change() is None, "the record outlived the write"
    return [record, storage.seen]


@pytest.mark.parametrize("signature", ["positional", "keyword-only"])
def test_a_write_with_a_record_parameter_gets_the_record_as_its_argument(signature):
    class Explicit(_Base):
        def __init__(self):
            self.seen = []

        if signature == "positional":
            def write(self, inventory, record=None):
                self.seen.append(("argument", record, "pending", accounting.pending_change()))
        else:
            def write(self, inventory, *, record=None):
                self.seen.append(("argument", record, "pending", accounting.pending_change()))

    record, seen = _written_with(Explicit())
    # The argument, and the pending change too (helpers a plugin calls may still read it there).
    assert seen == [("argument", record, "pending", record), ("argument", None, "pending", None)]
    assert isinstance(Explicit(), protocol.Recording) and protocol.accepts_record(Explicit().write)


def test_a_write_without_it_keeps_getting_the_pending_change():
    class Keywords(_Base):
        def __init__(self):
            self.seen = []

        def write(self, inventory, **options):  # not named: options are not the record
            self.seen.append((options, accounting.pending_change()))

    record, seen = _written_with(Keywords())
    assert seen == [({}, record), ({}, None)]
    assert not protocol.accepts_record(Keywords().write)


def test_a_write_whose_signature_cannot_be_read_is_called_the_old_way():
    class Opaque:
        seen: list = []

        @property
        def __signature__(self):
            raise RuntimeError("no signature here")

        def __call__(self, inventory):
            Opaque.seen.append(accounting.pending_change())

    class Plugin(_Base):
        seen = Opaque.seen
        write = Opaque()

    record, seen = _written_with(Plugin())
    assert seen == [record, None] and not protocol.accepts_record(Plugin.write)
    assert not protocol.accepts_record(len)  # a builtin without a record parameter


def test_the_signature_is_read_once_per_plugin(monkeypatch):
    from osa_inventory.storage import backend as backend_module
    asked = []
    monkeypatch.setattr(backend_module, "accepts_record",
                        lambda write: asked.append(write) or protocol.accepts_record(write))

    class Explicit(_Base):
        def __init__(self):
            self.seen = []

        def write(self, inventory, record=None):
            self.seen.append(record)

    storage = Explicit()
    backend = Backend("recorder", "recorder", storage)
    for revision in range(3):
        backend.write(make_inventory(1, n_infra=1, revision=revision), record=None)
    assert len(asked) == 1 and storage.seen == [None, None, None]


def test_a_write_attribute_that_hangs_or_fails_is_one_line():
    class Hostile(_Base):
        def __getattr__(self, name):
            if name == "write":
                raise SystemExit("gone")
            raise AttributeError(name)

    from osa_inventory.errors import StorageError
    with pytest.raises(StorageError, match=r"^storage backend hostile failed to look up write\(\): SystemExit: gone$"):
        Backend("hostile", "hostile", Hostile()).write(make_inventory(1, n_infra=1))


def test_the_builtin_plugins_take_the_record_explicitly():
    for name in ("filesystem", "etcd", "craton", "netbox"):
        assert protocol.accepts_record(builtin(name).write), name
