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
    assert set(protocol.__all__) == {"ChangeRecord", "Closable", "Describable", "Lockable", "ReservesAddresses",
                                     "Storage", "Versioned", "pending_change"}
    assert all(hasattr(protocol, name) for name in protocol.__all__)
