"""osa_inventory.bounded: the one reader of files and JSON, refusing what would hang, exhaust or crash."""

from __future__ import annotations

import json
import os
import threading

import pytest

from osa_inventory.bounded import MAX_JSON_DEPTH, nesting_exceeds, parse_json, read_file
from osa_inventory.errors import InventoryError, StorageError


def refused(call, *words):
    with pytest.raises(InventoryError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)
    return info.value


def test_a_regular_file_is_read_whole_up_to_its_limit(tmp_path):
    path = tmp_path / "f.json"
    path.write_bytes(b"x" * 1000)
    assert read_file(str(path), limit=1000) == b"x" * 1000
    refused(lambda: read_file(str(path), limit=999), str(path), "larger than 999 bytes")


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = []
    worker = threading.Thread(target=lambda: done.append(refused(lambda: read_file(str(fifo), limit=10),
                                                                   str(fifo), "FIFO", "not a regular file")))
    worker.start()
    worker.join(10)
    assert done, "reading a FIFO blocked"


@pytest.mark.parametrize("path, kind", [("/dev/zero", "character device"), ("/dev/null", "character device")])
def test_devices_never_end_and_are_refused(path, kind):
    refused(lambda: read_file(path, limit=10), path, kind)


def test_a_folder_is_named_as_a_folder(tmp_path):
    refused(lambda: read_file(str(tmp_path), limit=10), str(tmp_path), "is a folder")


def test_a_sparse_giant_is_refused_before_reading(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as fh:
        fh.truncate(8 * 1024 ** 3)
    refused(lambda: read_file(str(path), limit=1024 ** 2, error=StorageError), "larger than 1 MiB")


def test_a_link_is_followed_only_when_allowed(tmp_path):
    target = tmp_path / "target"
    target.write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert read_file(str(link), limit=10) == b"{}"
    refused(lambda: read_file(str(link), limit=10, follow_links=False), str(link), "symbolic link")


def test_relative_to_an_open_folder_and_named_as_asked(tmp_path):
    (tmp_path / "inv.json").write_text("[]")
    dfd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert read_file("inv.json", limit=10, dir_fd=dfd) == b"[]"
        refused(lambda: read_file("inv.json", limit=1, dir_fd=dfd, shown="the inventory"), "the inventory:")
    finally:
        os.close(dfd)


def test_a_missing_file_is_for_the_caller_to_judge(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_file(str(tmp_path / "nothing"), limit=10)


def test_json_too_deep_for_the_decoder_is_one_line():
    deep = "[" * 200_000 + "]" * 200_000
    refused(lambda: parse_json(deep, shown="etcd key /p/manifest"), "etcd key /p/manifest", "levels deep")


def test_json_the_decoder_takes_but_deeper_than_the_bound_is_refused():
    nested = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    refused(lambda: parse_json(nested, shown="x.json"), "x.json", f"more than {MAX_JSON_DEPTH} levels")
    at_bound = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(at_bound, shown="x.json") is not None


def test_brackets_inside_strings_are_no_nesting():
    shallow = json.dumps({"note": "[" * 500 + "{" * 500, "list": [[1], {"a": []}]})
    assert parse_json(shallow, shown="x.json")["list"] == [[1], {"a": []}]


def test_depth_counts_objects_and_lists_alike():
    value: object = 1
    for i in range(10):
        value = {"k": value} if i % 2 else [value]
    assert not nesting_exceeds(value, 10)
    assert nesting_exceeds(value, 9)
    assert not nesting_exceeds("scalar", 0)


def test_bad_text_and_bad_json_name_the_source():
    refused(lambda: parse_json(b"\xff{}", shown="f"), "f: is not UTF-8", "byte 0")
    refused(lambda: parse_json("{", shown="f"), "f: is not valid JSON")
    assert parse_json(json.dumps({"a": [1, {"b": None}]}).encode(), shown="f") == {"a": [1, {"b": None}]}


def test_data_of_any_mapping_or_sequence_type_is_measured_by_check_nesting():
    from collections import OrderedDict

    from osa_inventory.bounded import check_nesting

    value: object = "leaf"
    for i in range(MAX_JSON_DEPTH):
        value = OrderedDict(k=value) if i % 2 else (value,)
    check_nesting(value, shown="plugin data")  # exactly the bound
    refused(lambda: check_nesting([value], shown="plugin data"), "plugin data:", "levels deep")
