"""The storage plugin contract, as a reusable pytest suite shipped with the package.

Any backend (ours or a deployer's, in a file or a pip-installed distribution)
proves it keeps the contract of ``docs/writing-plugins.md`` by subclassing
:class:`StorageContract` in a ``Test...`` class of its own tests and
providing one fixture, ``make_storage``::

    from osa_inventory.testing import StorageContract

    class TestMyStore(StorageContract):
        @pytest.fixture
        def make_storage(self, tmp_path):
            def make():
                storage = my_plugin.Storage()
                storage.register({"config_dir": str(tmp_path), "database": str(tmp_path / "inv.db")})
                return storage
            return make

``make_storage`` gives a factory: every call returns a new, registered
instance with the same options, so the first call of a test sees an empty
store and later calls see what earlier instances wrote (that is how
persistence, cross-instance locking and stale caches are checked). Each test
must start from an empty store (use ``tmp_path`` or a unique key prefix).
pytest shows the values behind a failed ``assert`` of this module when it is
registered for rewriting before it is imported: ``pytest.register_assert_rewrite
("osa_inventory.testing")`` in the suite's ``conftest.py``.

Optional hooks (class attributes or fixtures of the subclass):

* ``secrets``: strings that must never appear in ``describe()`` or errors;
* ``large_hosts``: size of the large inventory (default 3000 compute hosts);
* ``lock_hold``: seconds the first instance holds the lock while a second
  one tries to take it (default 0.3);
* fixture ``register_failures``: zero-argument callables, each registering a
  Storage with a missing or bad option; each must raise ``StorageError``.

The optional methods (``lock``, ``history``/``read_version``,
``describe``, ``close``) are tested only when the plugin has them.

From the command line, against any plugin file::

    python -m osa_inventory.testing path/to/myplugin.py --option database={tmp}/inv.db \
        --bad-option lock_timeout=soon [pytest args]

``{tmp}`` becomes a fresh folder per test and ``{unique}`` a unique token
per test (e.g. ``--option prefix=/contract/{unique}``); each ``--bad-option``
is one registration that must fail; the plugin is loaded
through the real loader, so its ownership and permission checks apply.
Importing this module needs pytest (the package itself does not).

:func:`make_inventory` builds OSA-shaped inventories for other tests too.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import ipaddress
import json
import os
import re
import sys
import threading
import uuid
from typing import Any, Callable

import pytest

from osa_inventory import accounting
from osa_inventory.accounting import ChangeRecord
from osa_inventory.errors import InventoryError
from osa_inventory.storage.protocol import accepts_record

__all__ = ["StorageContract", "assert_same", "awkward_values_inventory", "canonical", "edge_inventory",
           "first_difference", "main", "make_inventory", "run_with_timeout"]
ENV_PLUGIN = "OSA_CONTRACT_PLUGIN"
ENV_OPTIONS = "OSA_CONTRACT_OPTIONS"
ENV_BAD_OPTIONS = "OSA_CONTRACT_BAD_OPTIONS"
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# -- inventory builders ----------------------------------------------------

INFRA_SERVICES = (
    # (container group stem, component, service group)
    ("galera", "galera_server", "galera"),
    ("rabbit_mq", "rabbitmq", "rabbitmq"),
    ("memcached", "memcached", "memcached"),
    ("keystone", "keystone", "keystone"),
    ("glance", "glance_api", "glance"),
    ("utility", "utility", "utility"),
)
MANAGEMENT_NET = ipaddress.IPv4Network("10.64.0.0/12")


def _suffix(*parts: Any) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8]


def _address(index: int) -> str:
    return str(MANAGEMENT_NET.network_address + 10 + index)


def _hostvars(name: str, address: str, physical: str, physical_addr: str, group: str,
              component: str | None, metal: bool) -> dict:
    return {
        "ansible_host": address,
        "component": component,
        "container_name": name,
        "container_networks": {
            "management_address": {
                "address": address, "bridge": "br-mgmt", "interface": "eth1",
                "netmask": str(MANAGEMENT_NET.netmask), "type": "veth"},
        },
        "container_tech": "lxc",
        "container_types": name if not metal else None,
        "management_address": address,
        "physical_host": physical,
        "physical_host_addr": physical_addr,
        "physical_host_group": group,
        "properties": {"is_metal": metal},
    }


def all_vars(revision: int = 0) -> dict:
    """``all.vars`` as OSA writes it, with the templated and typed values plugins must keep."""
    return {
        "container_cidr": str(MANAGEMENT_NET),
        "internal_lb_vip_address": "10.64.0.5",
        "external_lb_vip_address": "{{ internal_lb_vip_address }}",
        "haproxy_keepalived_external_vip_cidr": "{{ external_lb_vip_address }}/32",
        "management_bridge": "br-mgmt",
        "inventory_revision": revision,
        "install_method": "source",
        "provider_networks": [
            {"network": {"container_bridge": "br-mgmt", "container_interface": "eth1",
                         "container_type": "veth", "group_binds": ["all_containers", "hosts"],
                         "ip_from_q": "management", "is_management_address": True, "type": "raw"}},
            {"network": {"container_bridge": "br-vlan", "container_interface": "eth11",
                         "container_type": "veth", "group_binds": ["neutron_ovn_controller"],
                         "net_name": "physnet1", "range": "101:200,301:400", "type": "vlan"}},
        ],
        "max_fail_percentage": 20,
        "serial_ratio": 0.25,
        "debug": False,
        "proxy_env_url": None,
    }


def make_inventory(n_compute: int, n_infra: int = 3, revision: int = 0) -> dict:
    """An inventory shaped like OSA's: infra hosts with containers, compute hosts on metal.

    Deterministic for given arguments; ``revision`` changes ``all.vars`` only,
    so two revisions are the same deployment before and after a config edit.
    The host count is ``n_infra * (1 + len(INFRA_SERVICES)) + n_compute``.
    """
    hostvars: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    index = 0

    def group(name: str) -> dict:
        return groups.setdefault(name, {"hosts": []})

    infra_names = [f"infra{i}" for i in range(1, n_infra + 1)]
    compute_names = [f"compute{i}" for i in range(1, n_compute + 1)]
    for host in infra_names:
        host_addr = _address(index)
        index += 1
        hostvars[host] = _hostvars(host, host_addr, host, host_addr, "shared-infra_hosts", None, True)
        group("shared-infra_hosts")["hosts"].append(host)
        group("lxc_hosts")["hosts"].append(host)
        for stem, component, service in INFRA_SERVICES:
            name = f"{host}_{stem}_container-{_suffix(host, stem)}"
            hostvars[name] = _hostvars(name, _address(index), host, host_addr, "shared-infra_hosts",
                                       component, False)
            index += 1
            group(f"{stem}_container")["hosts"].append(name)
            group(component)["hosts"].append(name)
            group(f"{host}-host_containers")["hosts"].append(name)
            groups.setdefault(f"{service}_all", {"children": [], "hosts": []})
            if component not in groups[f"{service}_all"]["children"]:
                groups[f"{service}_all"]["children"].append(component)
    for host in compute_names:
        addr = _address(index)
        index += 1
        hostvars[host] = _hostvars(host, addr, host, addr, "compute_hosts", "nova_compute", True)
        group("compute_hosts")["hosts"].append(host)
        group("nova_compute")["hosts"].append(host)
    groups["hosts"] = {"children": ["shared-infra_hosts", "compute_hosts"], "hosts": []}
    groups["nova_all"] = {"children": ["nova_compute"], "hosts": []}
    groups["compute_all"] = {"children": ["compute_hosts", "nova_compute"], "hosts": []}
    groups["all_containers"] = {"children": [f"{h}-host_containers" for h in infra_names], "hosts": []}
    # Skeleton groups no host belongs to (yet) stay in the inventory, empty.
    for empty in ("ceph-osd_hosts", "swift_hosts", "cinder_volume", "designate_all"):
        groups[empty] = {"hosts": []}
    groups["all"] = {"vars": all_vars(revision)}
    groups["_meta"] = {"hostvars": hostvars}
    return groups


def edge_inventory() -> dict:
    """A small inventory full of values that JSON round trips must keep exactly."""
    inv = make_inventory(2, n_infra=1)
    inv["all"]["vars"].update({
        "templated": "{{ hostvars[inventory_hostname]['ansible_host'] }}",
        "jinja_block": "{% if enabled | bool %}on{% else %}off{% endif %}",
        "unicode": "Zürich – 東京 – Ελλάδα – 🚀",
        "nested": {"a": {"b": {"c": [1, {"d": [None, True, False, "x"]}, [[], {}]]}}},
        "big_int": 2 ** 64 + 1,
        "negative_big_int": -(2 ** 70),
        "float": 0.1,
        "huge_float": 1.5e300,
        "tiny_float": 5e-324,
        "whole_float": 2.0,
        "zero": 0,
        "bools": [True, False],
        "null": None,
        "empty_string": "",
        "empty_list": [],
        "empty_dict": {},
        "order_kept": ["zeta", "alpha", "mid", "alpha", 3, 1, 2],
        "escapes": 'say "hi" \\ back\\slash\nnew line\ttab \u00a0nbsp',
        "look_alikes": ["1", "01", "1.0", "true", "null", "[]", "{}"],
        "key with spaces": "v",
        "dotted.key": "v",
        "$dollar": "v",
        "1": "numeric key",
    })
    inv["_meta"]["hostvars"]["höst-ünïcode-名前"] = {
        "ansible_host": "10.64.99.1", "physical_host": "höst-ünïcode-名前",
        "properties": {"is_metal": True, "note": "ünïcödé välüe"}, "component": None,
    }
    inv["grøup_ü"] = {"hosts": ["höst-ünïcode-名前"]}
    inv["empty_group"] = {"hosts": []}
    inv["children_only"] = {"children": ["compute_hosts", "empty_group", "grøup_ü"]}
    inv["children_and_hosts"] = {"children": ["grøup_ü"], "hosts": ["compute2", "compute1"]}
    return inv


def awkward_values_inventory() -> dict:
    """Values that stores which re-type numbers or mangle keys get wrong, at every level of the inventory.

    Whole-number floats, ``-0.0``, integers past 2**53 and 2**63, unicode and
    empty strings and keys, as host variables, whole hostvars entries, group
    vars and top-level entries.
    """
    awkward = {"whole_float": 16.0, "negative_zero": -0.0, "zero_float": 0.0, "past_2_53": 2 ** 53 + 1,
               "past_2_63": 2 ** 63, "past_2_64": -(2 ** 64) - 1, "int64_max": 2 ** 63 - 1, "int64_min": -(2 ** 63),
               "ten_pow_20": 10 ** 20, "big_float": 1e20, "float": 1.5, "tiny": 5e-324, "one": 1, "true": True,
               "unicode": "Zürich 東京 🚀", "empty_string": "", "": "empty key", "ключ": "unicode key",
               "numeric_text": "2.0", "null": None}
    inv = make_inventory(1, n_infra=1)
    inv["_meta"]["hostvars"]["compute1"].update(awkward)
    inv["_meta"]["hostvars"]["compute1"]["nested"] = dict(awkward)
    inv["_meta"]["hostvars"]["float-entry"] = 2.0
    inv["_meta"]["hostvars"]["big-entry"] = 2 ** 64
    inv["_meta"]["hostvars"]["zero-entry"] = -0.0
    inv["_meta"]["hostvars"]["empty-entry"] = {}
    inv["awkward_group"] = {"hosts": ["compute1", "float-entry"], "vars": dict(awkward)}
    inv["all"]["vars"].update(awkward)
    inv["number_entry"] = 16.0
    inv["big_number_entry"] = 2 ** 63
    inv["string_entry"] = ""
    inv[""] = {"hosts": []}
    return inv


# -- comparison helpers ----------------------------------------------------

def canonical(data: Any) -> str:
    """JSON text that tells apart what ``==`` does not (``True`` vs ``1``, ``2`` vs ``2.0``)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False)


def first_difference(actual: Any, expected: Any, path: str = "") -> str | None:
    """Where two JSON values first differ, as a readable path, or None when equal."""
    if type(actual) is not type(expected):
        return f"{path or '<top>'}: got {type(actual).__name__} {actual!r:.80}, expected " \
               f"{type(expected).__name__} {expected!r:.80}"
    if isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual:
                return f"{path}/{key}: missing"
            if key not in expected:
                return f"{path}/{key}: unexpected"
            diff = first_difference(actual[key], expected[key], f"{path}/{key}")
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            diff = first_difference(a, e, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if canonical(actual) != canonical(expected):
        return f"{path or '<top>'}: got {actual!r:.80}, expected {expected!r:.80}"
    return None


def assert_same(actual: Any, expected: dict, what: str = "load()") -> None:
    """``actual`` is exactly the JSON value ``expected`` (types, order of lists, everything)."""
    assert isinstance(actual, dict), f"{what} returned {type(actual).__name__}, not a dict"
    if canonical(actual) != canonical(expected):
        pytest.fail(f"{what} differs from what was written: {first_difference(actual, expected)}")


def run_with_timeout(func: Callable[[], Any], seconds: float, what: str) -> Any:
    """Run ``func`` in a thread so a deadlock fails the test instead of hanging the suite."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # re-raised in the test's own thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} did not finish within {seconds:.0f} s (deadlock?)")
    if "error" in box:
        raise box["error"]
    return box.get("result")


# -- the suite ---------------------------------------------------------------

class StorageContract:
    """Contract tests; subclass as ``Test<Backend>`` and provide the ``make_storage`` fixture."""

    secrets: tuple[str, ...] = ()
    large_hosts = 3000
    lock_hold = 0.3
    deadlock_timeout = 10.0

    @pytest.fixture
    def make_storage(self) -> Callable[[], Any]:
        raise NotImplementedError("a StorageContract subclass must provide the make_storage fixture")

    @pytest.fixture
    def register_failures(self) -> list[Callable[[], Any]]:
        return []

    @pytest.fixture(autouse=True)
    def _close_opened(self):
        self._opened: list[Any] = []
        yield
        for storage in self._opened:
            close = getattr(storage, "close", None)
            if callable(close):
                close()

    def open(self, make_storage: Callable[[], Any]) -> Any:
        """A new instance from the factory, closed after the test."""
        storage = make_storage()
        self._opened.append(storage)
        return storage

    @staticmethod
    def has(storage: Any, *methods: str) -> bool:
        return all(callable(getattr(storage, m, None)) for m in methods)

    # -- load / write ------------------------------------------------------

    def test_load_is_none_before_first_write(self, make_storage):
        assert self.open(make_storage).load() is None
        assert self.open(make_storage).load() is None, "a second instance found data in an empty store"

    def test_round_trip_is_exact(self, make_storage):
        storage = self.open(make_storage)
        inventory = edge_inventory()
        storage.write(copy.deepcopy(inventory))
        assert_same(storage.load(), inventory)

    def test_round_trip_of_osa_shaped_inventory(self, make_storage):
        storage = self.open(make_storage)
        inventory = make_inventory(20)
        storage.write(copy.deepcopy(inventory))
        assert_same(storage.load(), inventory)

    def test_awkward_values_round_trip_exactly(self, make_storage):
        inventory = awkward_values_inventory()
        writer = self.open(make_storage)
        writer.write(copy.deepcopy(inventory))
        assert_same(writer.load(), inventory, "load() of awkward values")
        assert_same(self.open(make_storage).load(), inventory, "load() of awkward values by a second instance")
        again = self.open(make_storage)
        again.write(copy.deepcopy(inventory))  # unchanged: must not alter anything
        assert_same(self.open(make_storage).load(), inventory, "load() after an unchanged write")

    def test_second_instance_sees_the_data(self, make_storage):
        inventory = edge_inventory()
        self.open(make_storage).write(copy.deepcopy(inventory))
        assert_same(self.open(make_storage).load(), inventory, "load() of a second instance")

    def test_load_sees_writes_of_another_instance(self, make_storage):
        reader, writer = self.open(make_storage), self.open(make_storage)
        first, second = make_inventory(3, revision=1), make_inventory(4, revision=2)
        writer.write(copy.deepcopy(first))
        assert_same(reader.load(), first, "reader.load() after another instance wrote")
        writer.write(copy.deepcopy(second))
        assert_same(reader.load(), second, "reader.load() after another instance rewrote (stale cache?)")

    def test_data_survives_close(self, make_storage):
        storage = self.open(make_storage)
        inventory = make_inventory(3)
        storage.write(copy.deepcopy(inventory))
        if self.has(storage, "close"):
            storage.close()
            self._opened.remove(storage)
        assert_same(self.open(make_storage).load(), inventory, "load() after the writer closed")

    def test_write_keeps_no_reference_to_the_callers_dict(self, make_storage):
        storage = self.open(make_storage)
        inventory = make_inventory(3)
        written = copy.deepcopy(inventory)
        storage.write(written)
        written["all"]["vars"]["changed_after_write"] = True
        written["_meta"]["hostvars"].clear()
        assert_same(storage.load(), inventory, "load() after the caller changed its dict")

    def test_load_returns_an_independent_copy(self, make_storage):
        storage = self.open(make_storage)
        inventory = make_inventory(3)
        storage.write(copy.deepcopy(inventory))
        loaded = storage.load()
        loaded["compute_hosts"]["hosts"].append("intruder")
        loaded["all"]["vars"].clear()
        assert_same(storage.load(), inventory, "load() after the caller changed an earlier result")

    def test_identical_write_is_idempotent(self, make_storage):
        storage = self.open(make_storage)
        inventory = make_inventory(5)
        storage.write(copy.deepcopy(inventory))
        storage.write(copy.deepcopy(inventory))
        assert_same(storage.load(), inventory)
        assert_same(self.open(make_storage).load(), inventory, "load() of a second instance")

    def test_overwrite_with_smaller_inventory_removes_the_rest(self, make_storage):
        storage = self.open(make_storage)
        big, small = make_inventory(40, n_infra=3), make_inventory(2, n_infra=1, revision=1)
        big["retired_group"] = {"hosts": ["compute40"]}
        storage.write(copy.deepcopy(big))
        storage.write(copy.deepcopy(small))
        for loaded in (storage.load(), self.open(make_storage).load()):
            assert_same(loaded, small)
            assert "compute40" not in loaded["_meta"]["hostvars"]
            assert "retired_group" not in loaded

    def test_large_inventory(self, make_storage):
        inventory = make_inventory(self.large_hosts)
        self.open(make_storage).write(copy.deepcopy(inventory))
        loaded = self.open(make_storage).load()
        assert len(loaded["_meta"]["hostvars"]) == len(inventory["_meta"]["hostvars"])
        assert_same(loaded, inventory, "load() of the large inventory")

    # -- register ------------------------------------------------------------

    def test_bad_options_are_refused_with_one_clear_line(self, register_failures):
        if not register_failures:
            pytest.skip("no bad options given: pass --bad-option KEY=VALUE on the command line, "
                        "or provide the register_failures fixture in a subclass")
        for attempt in register_failures:
            with pytest.raises(InventoryError) as caught:
                attempt()
            message = str(caught.value)
            assert message.strip() and "\n" not in message.strip(), f"not one line: {message!r}"
            for secret in self.secrets:
                assert secret not in message, "a secret leaked into an error message"

    # -- describe --------------------------------------------------------------

    def test_describe_is_one_line_without_secrets(self, make_storage):
        storage = self.open(make_storage)
        if not self.has(storage, "describe"):
            pytest.skip("plugin has no describe()")
        text = storage.describe()
        assert isinstance(text, str) and text.strip(), "describe() must return a non-empty str"
        assert "\n" not in text.strip(), "describe() must be one line"
        for secret in self.secrets:
            assert secret not in text, "describe() shows a secret"

    # -- lock ----------------------------------------------------------------

    def _needs_lock(self, storage: Any) -> None:
        if not self.has(storage, "lock"):
            pytest.skip("plugin has no lock()")

    def test_lock_is_exclusive_across_instances(self, make_storage):
        first, second = self.open(make_storage), self.open(make_storage)
        self._needs_lock(first)
        entered = threading.Event()
        failures: list[BaseException] = []

        def contender() -> None:
            try:
                with second.lock():
                    entered.set()
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=contender, daemon=True)
        with first.lock():
            thread.start()
            got_in_while_held = entered.wait(self.lock_hold)
        thread.join(self.deadlock_timeout)
        assert not got_in_while_held, "a second instance took the lock while the first held it"
        assert not failures, f"the waiting instance failed: {failures[0]!r}"
        assert entered.is_set(), "the second instance never got the lock after the first released it"

    def test_lock_is_reentrant_within_one_instance(self, make_storage):
        storage = self.open(make_storage)
        self._needs_lock(storage)

        def nested() -> str:
            with storage.lock():
                with storage.lock():
                    pass
                with storage.lock():
                    return "done"

        assert run_with_timeout(nested, self.deadlock_timeout, "nested lock()") == "done"

    def test_write_inside_lock(self, make_storage):
        storage = self.open(make_storage)
        self._needs_lock(storage)
        inventory = make_inventory(5)

        def locked_cycle() -> None:
            with storage.lock():
                assert storage.load() is None
                storage.write(copy.deepcopy(inventory))
                assert_same(storage.load(), inventory, "load() inside lock() after write()")

        run_with_timeout(locked_cycle, self.deadlock_timeout, "write() inside lock()")
        other = self.open(make_storage)
        assert_same(other.load(), inventory, "load() of another instance after the locked write")

        def take() -> bool:
            with other.lock():
                return True

        assert run_with_timeout(take, self.deadlock_timeout, "lock() of another instance afterwards")

    def test_lock_is_released_when_the_body_fails(self, make_storage):
        first, second = self.open(make_storage), self.open(make_storage)
        self._needs_lock(first)
        with pytest.raises(LookupError):
            with first.lock():
                raise LookupError("the body failed")

        def take() -> bool:
            with second.lock():
                return True

        assert run_with_timeout(take, self.deadlock_timeout, "lock() after a failed body")

    # -- history -------------------------------------------------------------

    def _needs_history(self, storage: Any, versions: bool = False) -> None:
        """Skip without history(); with ``versions``, also without read_version() (change records only)."""
        if not self.has(storage, "history"):
            pytest.skip("plugin has no history()")
        if versions and not self.has(storage, "read_version"):
            pytest.skip("plugin has history() but no read_version(): it keeps change records, not versions")

    def _check_entries(self, entries: Any) -> list[dict]:
        assert isinstance(entries, list), "history() must return a list"
        versions = []
        for entry in entries:
            assert isinstance(entry, dict), f"history entry {entry!r} is not a dict"
            assert isinstance(entry.get("version"), str) and entry["version"], f"bad version in {entry!r}"
            assert isinstance(entry.get("time"), str) and TIME_FORMAT.match(entry["time"]), \
                f"time of {entry!r} is not YYYY-mm-ddTHH:MM:SSZ"
            versions.append(entry["version"])
        assert len(set(versions)) == len(versions), f"duplicate versions in {versions}"
        return entries

    def test_each_changed_write_adds_a_version(self, make_storage):
        storage = self.open(make_storage)
        self._needs_history(storage)
        assert self._check_entries(storage.history()) == [], "history() of an empty store is not []"
        written = [make_inventory(3, revision=r) for r in range(3)]
        lengths = []
        for inventory in written:
            storage.write(copy.deepcopy(inventory))
            lengths.append(len(self._check_entries(storage.history())))
        assert lengths[1] == lengths[0] + 1 and lengths[2] == lengths[1] + 1, \
            f"each changed write must add exactly one version; history lengths were {lengths}"
        entries = self._check_entries(self.open(make_storage).history())
        if not self.has(storage, "read_version"):
            return  # change records only: nothing to read back
        for inventory, entry in zip(written, entries[-3:]):
            assert_same(storage.read_version(entry["version"]), inventory,
                        f"read_version({entry['version']!r})")

    def test_identical_rewrite_adds_no_version(self, make_storage):
        storage = self.open(make_storage)
        self._needs_history(storage)
        storage.write(make_inventory(3, revision=1))
        storage.write(make_inventory(3, revision=2))
        before = self._check_entries(storage.history())
        storage.write(make_inventory(3, revision=2))
        after = self._check_entries(storage.history())
        assert [e["version"] for e in after] == [e["version"] for e in before], \
            "writing an identical inventory changed the history"

    def test_a_record_given_to_write_is_the_one_stored(self, make_storage):
        """For plugins that keep change records: the record of a write comes back with its version.

        First handed as the loader hands it (``write(inventory, record=...)`` when ``write()`` has
        that parameter, and as :func:`~osa_inventory.accounting.pending_change` in any case); a
        plugin that keeps it is then held to the argument alone, without the pending change.
        """
        storage = self.open(make_storage)
        self._needs_history(storage)
        takes_record = accepts_record(storage.write)
        fields = ("user", "host", "command", "reason", "summary")

        def write_and_read_back(revision: int, pending: bool) -> tuple[ChangeRecord, dict]:
            token = uuid.uuid4().hex
            record = ChangeRecord(time="2026-01-02T03:04:05Z", user=f"user-{token}", host=f"host-{token}",
                                  command=f"contract write {token}", reason=f"reason {token}",
                                  summary=f"summary {token}")
            extra = {"record": record} if takes_record else {}
            with accounting.pending(record if pending else None):
                storage.write(make_inventory(2, revision=revision), **extra)
            newest = self._check_entries(self.open(make_storage).history())[-1]
            return record, {f: newest.get(f) for f in fields}

        storage.write(make_inventory(2, revision=1))
        record, stored = write_and_read_back(2, pending=True)
        if not any(stored.values()):
            pytest.skip("plugin keeps no change records in history()")
        assert stored == {f: getattr(record, f) for f in fields}, \
            f"the newest history() entry does not carry the record of its write: {stored!r}"
        if takes_record:
            record, stored = write_and_read_back(3, pending=False)
            assert stored == {f: getattr(record, f) for f in fields}, \
                f"write(inventory, record=...) did not keep that record (read pending_change() instead?): {stored!r}"

    def test_unknown_version_is_an_error(self, make_storage):
        storage = self.open(make_storage)
        self._needs_history(storage, versions=True)
        storage.write(make_inventory(2))
        with pytest.raises(InventoryError):
            storage.read_version("no-such-version-" + uuid.uuid4().hex)


# -- command line ------------------------------------------------------------

def _command_line_options(tmp: str, unique: str) -> dict[str, str]:
    raw = json.loads(os.environ.get(ENV_OPTIONS, "{}"))
    return {k: v.replace("{tmp}", tmp).replace("{unique}", unique) for k, v in raw.items()}


if os.environ.get(ENV_PLUGIN):
    from osa_inventory.storage.loader import load_plugin_module, storage_class
    from osa_inventory.storage.settings import SECRET_WORDS, Settings

    class TestCommandLinePlugin(StorageContract):
        """The plugin named on the command line (see the module docstring)."""

        secrets = tuple(v for k, v in json.loads(os.environ.get(ENV_OPTIONS, "{}")).items()
                        if v and any(word in k.lower() for word in SECRET_WORDS))

        @staticmethod
        def plugin_class():
            """The plugin's Storage class, loaded from its file through the real loader."""
            path = os.environ[ENV_PLUGIN]
            folder, name = os.path.split(path.rstrip(os.sep))
            name = name[:-3] if name.endswith(".py") else name
            module = load_plugin_module(name, Settings(path=None, plugin_paths=[folder]))
            return storage_class(module, name)

        @pytest.fixture
        def make_storage(self, tmp_path):
            cls = self.plugin_class()
            config_dir = tmp_path / "config"
            config_dir.mkdir()
            options = _command_line_options(str(tmp_path), uuid.uuid4().hex)

            def make():
                storage = cls()
                storage.register({"config_dir": str(config_dir), **options})
                return storage
            return make

        @pytest.fixture
        def register_failures(self, tmp_path):
            # Each --bad-option: the good options with that one replaced; register() must refuse it.
            cls = self.plugin_class()
            options = _command_line_options(str(tmp_path), uuid.uuid4().hex)
            bad = json.loads(os.environ.get(ENV_BAD_OPTIONS, "[]"))
            return [lambda key=key, value=value: cls().register(
                {"config_dir": str(tmp_path), **options, key: value}) for key, value in bad]


def main(argv: list[str] | None = None) -> int:
    """Run the contract suite against one plugin file; extra arguments go to pytest."""
    parser = argparse.ArgumentParser(
        description="Check a storage plugin against the OSA inventory storage contract.",
        epilog="Unknown arguments are passed to pytest (e.g. -k lock -x -v).")
    parser.add_argument("plugin", help="the plugin: a .py file, or a package folder")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option given to register(); {tmp} is a fresh folder per test, "
                             "{unique} a unique token per test (repeatable)")
    parser.add_argument("--bad-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option value register() must refuse with StorageError, given with the good "
                             "options (repeatable; without it that one test is skipped)")
    args, pytest_args = parser.parse_known_args(argv)
    path = os.path.abspath(args.plugin)
    if not (path.endswith(".py") and os.path.isfile(path)) and not os.path.isfile(
            os.path.join(path, "__init__.py")):
        parser.error(f"{args.plugin} is neither a .py file nor a package folder")
    pairs = {}
    for flag, items in (("--option", args.option), ("--bad-option", args.bad_option)):
        pairs[flag] = []
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                parser.error(f"{flag} {item!r} is not KEY=VALUE")
            pairs[flag].append((key.strip().lower(), value))
    os.environ[ENV_PLUGIN] = path
    os.environ[ENV_OPTIONS] = json.dumps(dict(pairs["--option"]))
    os.environ[ENV_BAD_OPTIONS] = json.dumps(pairs["--bad-option"])
    return pytest.main([os.path.abspath(__file__), "-p", "no:cacheprovider", *pytest_args])


if __name__ == "__main__":
    sys.exit(main())
