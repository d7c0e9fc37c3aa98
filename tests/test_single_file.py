"""inventory-manage's ``-f FILE`` store (a file not named openstack_inventory.json) against damaged files.

The contract suite runs on it in test_contract_filesystem.py; these tests
hold it to the guarantees docs/operations.md gives ``-f FILE``: a damaged
file is one line naming it and what to restore, the advice works as
printed, and nothing a repair may need is lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from test_manage_support import FIXTURES, INVENTORY, Deployment, assert_one_line_error, snapshot

from osa_inventory.backends.filesystem import single_file, store
from osa_inventory.errors import StorageError


def legacy_copy(path) -> dict:
    shutil.copy(os.path.join(FIXTURES, "legacy", INVENTORY), path)
    return json.loads(path.read_text())


def test_a_damaged_file_names_the_backup_and_the_advice_restores_it(tmp_path):
    path = tmp_path / "inv.json"
    original = legacy_copy(path)
    dep = Deployment(str(tmp_path / "dep"))
    assert dep.manage("-f", str(path), "-r", "compute1", config=False).returncode == 0
    cut = path.read_text()[:100]  # what a full disk leaves
    path.write_text(cut)
    before = snapshot(str(path))
    failed = dep.manage("-f", str(path), "-l", config=False)
    assert_one_line_error(failed, f"{path} is not valid JSON", "it was left untouched",
                          "restore a backup with --restore ")
    assert snapshot(str(path)) == before
    advice = re.search(r"(--restore \S+)", failed.stderr).group(1)
    restored = dep.manage("-f", str(path), *advice.split(), config=False)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(path.read_text()) == original
    # The damaged text is kept too, as a backup of its own: it may be all there is of a version.
    kept = [p.read_text() for p in tmp_path.glob("inv.json.*.bak")]
    assert cut in kept and len(kept) == 2


def test_a_damaged_file_without_backups_is_replaced_by_the_import_advised(tmp_path):
    saved = tmp_path / "saved.json"
    original = legacy_copy(saved)
    path = tmp_path / "inv.json"
    path.write_text(saved.read_text()[:100])
    dep = Deployment(str(tmp_path / "dep"))
    failed = dep.manage("-f", str(path), "-l", config=False)
    assert_one_line_error(failed, f"{path} is not valid JSON", "it was left untouched", "with --import FILE --force")
    advice = re.search(r"(--import FILE --force)", failed.stderr).group(1).replace("FILE", str(saved))
    imported = dep.manage("-f", str(path), *advice.split(), config=False)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(path.read_text()) == original


def test_a_file_too_large_to_copy_is_set_aside_whole_when_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_INVENTORY_BYTES", 64)
    path = tmp_path / "inv.json"
    huge = json.dumps({"all": {"vars": {"blob": "x" * 200}}})
    path.write_text(huge)
    storage = single_file.Storage()
    storage.register({"file": str(path)})
    with pytest.raises(StorageError) as refused:
        storage.load()
    message = str(refused.value)
    assert message.startswith(f"{path} is larger than 64 bytes") and "it was left untouched" in message
    assert "\n" not in message
    storage.write({"all": {"vars": {}}})
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("inv.json.corrupt-")]
    assert [p.read_text() for p in aside] == [huge]
    assert list(tmp_path.glob("*.bak")) == [], "a file too large to read was copied"
    assert json.loads(path.read_text()) == {"all": {"vars": {}}}


def test_the_file_holds_the_text_the_filesystem_backend_writes(tmp_path):
    inventory = {"b": {"hosts": ["z", "a"]}, "all": {"vars": {"x": 1.5, "y": None}}, "_meta": {"hostvars": {}}}
    storage = single_file.Storage()
    storage.register({"file": str(tmp_path / "inv.json")})
    storage.write(inventory)
    assert (tmp_path / "inv.json").read_text() == store.dumps(inventory) == json.dumps(inventory, indent=4,
                                                                                     sort_keys=True)
