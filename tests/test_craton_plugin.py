"""The Craton storage plugin against the Craton look-alike (tests/craton_server.py): real HTTP on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import stat
import sys
import time
import warnings

import pytest
import requests

from craton_inventories import build_inventory, variant
from craton_server import CratonServer, make_tls_files, tls_context
from helpers import SCRIPT, base_config, run_script, write_config, write_ini
from osa_inventory.accounting import ChangeRecord
from osa_inventory.backends import change_records as records
from osa_inventory.backends.craton import mapping
from osa_inventory.errors import AccessDenied, InventoryError, StorageError
from osa_inventory.storage.loader import load_plugin_module, open_backend
from osa_inventory.storage.settings import Settings, read_settings
from osa_inventory.testing import StorageContract, assert_same, awkward_values_inventory
from tls_certs import legacy_ca, make_pki, reissue_ca_as_advised
from osa_inventory.backends.tls import CA_EXTENSIONS

PLUGIN = load_plugin_module("craton", Settings(path=None))
SECRET = "s3cret-API-key-never-shown"
TOKEN = "k3ystone-TOKEN-never-shown"
MODIFYING = ("POST", "PUT", "DELETE")


# -- helpers -------------------------------------------------------------------------

@pytest.fixture
def server():
    """A look-alike whose user has a recognisable API key (to check it never leaks)."""
    srv = CratonServer(api_key=SECRET, token=TOKEN).start()
    try:
        yield srv
    finally:
        srv.stop()


def make(server: CratonServer, folder, **extra: str):
    """A registered Storage for ``server`` with its cache in ``folder``."""
    storage = PLUGIN.Storage()
    storage.register({**server.options(**extra), "config_dir": str(folder)})
    return storage


def fresh_dir(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return str(path)


def mods(server: CratonServer) -> int:
    return sum(n for m, n in server.app.counts().items() if m in MODIFYING)


def requests_to(server: CratonServer, method: str, pattern: str) -> list:
    return [e for e in server.app.log if e.method == method and re.search(pattern, e.path)]


def assert_craton_matches(server: CratonServer, inventory: dict) -> None:
    """Craton holds exactly the inventory's hosts, with its hostvars and memberships as labels."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    hosts = server.hosts()
    assert set(hosts) == set(hostvars)
    groups = {k: v for k, v in inventory.items() if k != "_meta"}
    expected_labels = mapping.memberships(groups, hostvars)
    for name, host in hosts.items():
        assert mapping.decode_hostvars(name, host["variables"]) == hostvars[name], name
        assert set(host["labels"]) == expected_labels[name], name
        assert mapping.valid_address(host["ip_address"]), name


def marks(server: CratonServer, region: str = "osa-region") -> list[str]:
    """Marks of unfinished writes (on the committed revision) in the region variables."""
    variables = (server.region(region) or {"variables": {}})["variables"]
    revision = (variables.get(mapping.STATE_KEY) or {}).get("revision")
    return sorted(k for k, v in variables.items() if k.startswith("osa-inventory:writer:") and v["base"] == revision)


def error_text(exc: BaseException) -> str:
    return f"{exc} {exc!r}"


def change_everything_a_little(inv: dict) -> dict:
    """A next version touching every kind of request: new, changed, moved and removed hosts and groups."""
    new = variant(inv)
    hv = new["_meta"]["hostvars"]
    for i in range(1, 4):
        hv[f"compute{i}"]["nova_reserved_host_memory_mb"] = 4096
    del hv["compute4"]["nova_reserved_host_memory_mb"]
    for name in ("compute5", "compute6"):
        del hv[name]
        for group in new.values():
            if isinstance(group, dict) and name in group.get("hosts", []):
                group["hosts"].remove(name)
    for i in range(100, 104):
        hv[f"compute{i}"] = dict(copy.deepcopy(hv["compute1"]), ansible_host=f"10.200.0.{i}",
                                 container_name=f"compute{i}", physical_host=f"compute{i}")
        new["compute_hosts"]["hosts"].append(f"compute{i}")
    moved = next(n for n in hv if n.startswith("infra1-galera"))
    hv[moved]["physical_host"] = "infra2"
    new["galera"]["hosts"].remove(moved)
    new["nova_compute"]["hosts"].append("compute7") if "compute7" not in new["nova_compute"]["hosts"] else None
    new["utility"]["hosts"].reverse()
    new["brand_new_group"] = {"children": [], "hosts": ["compute1", "compute2"]}
    del new["trove_all"]
    new["all"]["vars"]["motd"] = "changed ☂"
    return new


# -- the shared storage contract --------------------------------------------------------

class TestCratonContract(StorageContract):
    """The project-wide plugin contract (osa_inventory.testing), run against Craton."""

    secrets = (SECRET, TOKEN)

    @pytest.fixture
    def make_storage(self, server, tmp_path):
        return lambda: make(server, tmp_path)

    @pytest.mark.once  # thousands of requests to the test server; the contract's small tests run everywhere
    def test_large_inventory(self, make_storage):
        super().test_large_inventory(make_storage)

    @pytest.fixture
    def register_failures(self, server, tmp_path):
        def attempt(**options):
            return lambda: PLUGIN.Storage().register({**options, "config_dir": str(tmp_path)})
        good = server.options()
        return [
            attempt(**{k: v for k, v in good.items() if k != "url"}),
            attempt(**dict(good, url="ftp://example.org")),
            attempt(**dict(good, url=f"http://user:{SECRET}@127.0.0.1:1")),
            attempt(**dict(good, project_id="not-a-uuid")),
            attempt(**{k: v for k, v in good.items() if k != "api_key"}),
            attempt(**dict(good, token=TOKEN)),
            attempt(**dict(good, api_key=SECRET + " x\ny")),
            attempt(**dict(good, cloud="")),
            attempt(**dict(good, timeout="soon")),
            attempt(**dict(good, retries="-1")),
            attempt(**dict(good, verify=str(tmp_path / "no-such-ca.pem"))),
            attempt(**dict(good, cache="maybe")),
            attempt(**dict(good, colour="blue")),
        ]


# -- mapping and round trips -------------------------------------------------------------

VARIED = {
    "osa-with-awkward-cases": lambda: build_inventory(48),
    "plain-osa": lambda: build_inventory(40, extras=False),
    "empty-dict": lambda: {},
    "no-meta": lambda: {"all": {"vars": {"x": 1}}, "g": {"hosts": []}},
    "meta-without-hostvars": lambda: {"_meta": {"other": [1, 2]}, "all": {"vars": {}}},
    "meta-extra-and-empty-hostvars": lambda: {"_meta": {"hostvars": {}, "extra": {"k": "v"}}, "e": {"hosts": []}},
    "non-dict-hostvars": lambda: {"_meta": {"hostvars": {"h1": [1, "two"], "h2": None, "h3": {}}},
                                  "g": {"hosts": ["h2", "h1"]}},
    "container-cycle": lambda: {"_meta": {"hostvars": {
        "a": {"physical_host": "b", "ansible_host": "10.0.0.1"},
        "b": {"physical_host": "a", "ansible_host": "10.0.0.2"},
        "c": {"physical_host": "c"}}}, "x": {"hosts": ["c", "b", "a"]}},
}


@pytest.mark.parametrize("case", sorted(VARIED))
def test_round_trip_is_exact_from_cache_and_from_a_full_load(server, tmp_path, case):
    inventory = VARIED[case]()
    writer = make(server, fresh_dir(tmp_path, "writer"))
    writer.write(variant(inventory))
    assert_same(writer.load(), inventory, "load() from the cache")
    reader = make(server, fresh_dir(tmp_path, "reader"))
    assert_same(reader.load(), inventory, "load() of an instance without cache")
    assert_craton_matches(server, inventory)


def test_how_the_inventory_looks_in_craton(server, tmp_path):
    inventory = build_inventory(48)
    make(server, tmp_path).write(variant(inventory))
    hosts = server.hosts()
    hv = inventory["_meta"]["hostvars"]
    ids = {name: h["id"] for name, h in hosts.items()}
    for name, host in hosts.items():
        physical = hv[name].get("physical_host")
        if physical in hv and physical != name:
            assert (host["device_type"], host["parent_id"]) == ("container", ids[physical]), name
        else:
            assert (host["device_type"], host["parent_id"]) == ("server", None), name
    assert hosts["orphan-container-1"]["parent_id"] is None  # its physical host is not in the inventory
    placeholders = {n for n, h in hosts.items() if h["ip_address"] == mapping.PLACEHOLDER_IP}
    assert placeholders == {"noaddr1", "lb1", "weird-ip"}  # no address, a DNS name, an invalid address
    assert hosts["v6host"]["ip_address"] == "fd00::10"
    assert hosts["compute1"]["ip_address"] == hv["compute1"]["ansible_host"]
    assert hosts["compute1"]["variables"] == hv["compute1"]  # own variables are the hostvars, verbatim
    assert hosts["oddkeys"]["variables"][mapping.ESCAPED_KEY] == {
        "": "empty key", "k" * 300: "long key", "osa-inventory:escaped": "looks like ours",
        "osa-inventory:value": [1, 2]}
    assert "g" * 300 not in hosts["oddkeys"]["labels"]  # too long for a label; the region variables keep it
    region = server.region("osa-region")
    state = region["variables"][mapping.STATE_KEY]
    assert state["pending"] is None and re.fullmatch(r"[0-9a-f]{32}", state["revision"])
    assert region["variables"]["osa-inventory:top:all"] == inventory["all"]


@pytest.mark.once
def test_3000_hosts_round_trip_differential_writes_and_cache(server, tmp_path):
    inventory = build_inventory(3000)
    writer = make(server, fresh_dir(tmp_path, "writer"))
    connections = server.connections
    writer.write(variant(inventory))
    assert server.app.counts()["POST"] == 3000 + 2  # the hosts, the cloud and the region
    # Like the real server: HTTP/1.0, one connection per request, and the client copes.
    assert server.connections - connections == sum(server.app.counts().values())

    server.app.reset_log()
    reader = make(server, fresh_dir(tmp_path, "reader"))
    assert_same(reader.load(), inventory, "full load of 3000 hosts")
    pages = requests_to(server, "GET", r"^/v1/hosts$")
    assert len(pages) == math.ceil(3000 / 100) + 1  # pages of 100 and the empty end page
    assert all("limit=100" in e.query and "details=true" in e.query and "resolved-values=false" in e.query
               for e in pages)
    assert not requests_to(server, "GET", r"/labels$")  # no N+1 reads

    server.app.reset_log()
    reader.write(variant(inventory))
    assert server.app.counts() == {"GET": 1}, "an unchanged write must cost one read and no change"

    changed = variant(inventory)
    changed["_meta"]["hostvars"]["compute77"]["nova_reserved_host_memory_mb"] = 1
    server.app.reset_log()
    reader.write(variant(changed))
    # the host's PUT, plus the write mark, the commit and the mark's removal
    assert mods(server) == 4 and len(requests_to(server, "PUT", r"^/v1/hosts/\d+/variables$")) == 1

    server.app.reset_log()
    assert_same(writer.load(), changed, "load() of the first writer after another wrote")
    server.app.reset_log()
    assert_same(writer.load(), changed, "cached load()")
    assert server.app.counts() == {"GET": 1}


# -- differential writes ---------------------------------------------------------------

def _one_change(kind: str, inv: dict) -> dict:
    new = variant(inv)
    hv = new["_meta"]["hostvars"]
    if kind == "host variable value":
        hv["compute2"]["nova_reserved_host_memory_mb"] = 1
    elif kind == "host variable removed":
        del hv["compute2"]["nova_reserved_host_memory_mb"]
    elif kind == "type only (1 -> 1.0 -> true)":
        hv["compute2"]["nova_reserved_host_memory_mb"] = float(hv["compute2"]["nova_reserved_host_memory_mb"])
    elif kind == "membership added":
        new["nova_compute"]["hosts"].append("compute1") if "compute1" not in new["nova_compute"]["hosts"] else None
        new["haproxy"]["hosts"].append("compute2")
    elif kind == "membership removed":
        new["compute_hosts"]["hosts"].remove("compute2")
    elif kind == "host added":
        hv["compute999"] = dict(copy.deepcopy(hv["compute1"]), ansible_host="10.99.9.9")
        new["compute_hosts"]["hosts"].append("compute999")
    elif kind == "host removed":
        del hv["compute3"]
        for group in new.values():
            if isinstance(group, dict) and "compute3" in group.get("hosts", []):
                group["hosts"].remove("compute3")
    elif kind == "container moved":
        name = next(n for n in hv if n.startswith("infra1-galera"))
        hv[name]["physical_host"] = "infra3"
    elif kind == "all.vars only":
        new["all"]["vars"]["new_var"] = {"nested": ["x"]}
    elif kind == "group removed":
        del new["zun_all"]
    elif kind == "group order only":
        new["compute_hosts"]["hosts"].reverse()
    return new


# (expected (method, path pattern) -> count of host requests, expected total of modifying requests:
# the host requests plus the write mark, the commit and removing the mark)
DIFFS = {
    "host variable value": ({("PUT", r"^/v1/hosts/\d+/variables$"): 1}, 4),
    "host variable removed": ({("DELETE", r"^/v1/hosts/\d+/variables$"): 1}, 4),
    # a float is kept one level down (Craton would give 1.0 back as 1): the key moves, two requests
    "type only (1 -> 1.0 -> true)": ({("PUT", r"^/v1/hosts/\d+/variables$"): 1,
                                      ("DELETE", r"^/v1/hosts/\d+/variables$"): 1}, 5),
    "membership added": ({("PUT", r"^/v1/hosts/\d+/labels$"): 1}, 4),
    "membership removed": ({("DELETE", r"^/v1/hosts/\d+/labels$"): 1}, 4),
    "host added": ({("POST", r"^/v1/hosts$"): 1}, 4),
    "host removed": ({("DELETE", r"^/v1/hosts/\d+$"): 1}, 4),
    "container moved": ({("PUT", r"^/v1/hosts/\d+$"): 1, ("PUT", r"^/v1/hosts/\d+/variables$"): 1}, 5),
    "all.vars only": ({}, 3),
    "group removed": ({("DELETE", r"^/v1/regions/\d+/variables$"): 1}, 4),
    "group order only": ({}, 3),
}


@pytest.mark.parametrize("kind", sorted(DIFFS))
def test_write_sends_only_the_difference(server, tmp_path, kind):
    inventory = build_inventory(50)
    storage = make(server, tmp_path)
    storage.write(variant(inventory))
    new = _one_change(kind, inventory)
    server.app.reset_log()
    storage.write(variant(new))
    expected, total = DIFFS[kind]
    host_requests = [e for e in server.app.log if e.method in MODIFYING and "/regions/" not in e.path]
    for (method, pattern), count in expected.items():
        if "/regions/" not in pattern:
            assert len(requests_to(server, method, pattern)) == count, (method, pattern)
    assert len(host_requests) == sum(c for (m, p), c in expected.items() if "/regions/" not in p)
    assert mods(server) == total, [(e.method, e.path) for e in server.app.log]
    # the region variables: at the start, after the mark, and before each later phase and the commit
    phases = {re.sub(r"\d+", "N", f"{e.method} {e.path}").replace("PUT", "SET").replace("DELETE", "SET")
              for e in host_requests}
    assert server.app.counts()["GET"] == 2 + len(phases) + ("group removed" == kind)
    assert_same(make(server, fresh_dir(tmp_path, "other")).load(), new)
    assert_craton_matches(server, new)


def test_unchanged_write_sends_no_modifying_request(server, tmp_path):
    inventory = build_inventory(50)
    make(server, fresh_dir(tmp_path, "a")).write(variant(inventory))
    other = make(server, fresh_dir(tmp_path, "b"))  # no cache: compares against a full listing
    server.app.reset_log()
    other.write(variant(inventory))
    assert mods(server) == 0
    server.app.reset_log()
    other.write(variant(inventory))  # now cached
    assert server.app.counts() == {"GET": 1}


def test_numbers_craton_would_retype_are_kept_exactly_and_unchanged_writes_send_nothing(server, tmp_path):
    # The look-alike re-types top-level numbers as the real service on SQLite does...
    storage = make(server, fresh_dir(tmp_path, "a"))
    storage.write({"all": {"vars": {}}})
    with server.app.lock:
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "osa-region")
    answer = requests.put(f"{server.url}/v1/regions/{region['id']}/variables", headers=server.headers(),
                          json={"f": 2.0, "z": -0.0, "big": 2 ** 63, "nested": [2.0, -0.0, 2 ** 63]}, timeout=5)
    got = answer.json()["variables"]
    assert (got["f"], got["z"], got["big"]) == (2, 0, 9.223372036854776e+18)
    assert_same({"n": got["nested"]}, {"n": [2.0, -0.0, 2 ** 63]})
    # ...so such values are stored one level down, and read back exactly with or without the cache.
    inventory = awkward_values_inventory()
    storage.write(variant(inventory))
    craton_vars = server.hosts()["compute1"]["variables"]
    assert craton_vars["unicode"] == "Zürich 東京 🚀" and craton_vars["int64_max"] == 2 ** 63 - 1  # verbatim
    assert "whole_float" not in craton_vars and craton_vars[mapping.ESCAPED_KEY]["whole_float"] == 16.0
    for cache in ("true", "false"):
        other = make(server, fresh_dir(tmp_path, f"other-{cache}"), cache=cache)
        assert_same(other.load(), inventory, f"load() with cache = {cache}")
        server.app.reset_log()
        other.write(variant(inventory))
        assert mods(server) == 0, [(e.method, e.path) for e in server.app.log]
    changed = variant(inventory)
    changed["_meta"]["hostvars"]["compute1"]["negative_zero"] = 0.0  # -0.0 -> 0.0 is a change
    storage.write(variant(changed))
    assert_same(make(server, fresh_dir(tmp_path, "third"), cache="false").load(), changed)


# -- the cache ---------------------------------------------------------------------------

def cache_files(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".craton-inventory-cache-"))


def test_cache_hit_costs_one_request_and_the_file_is_private(server, tmp_path):
    inventory = build_inventory(50)
    make(server, tmp_path).write(variant(inventory))
    later_run = make(server, tmp_path)  # a new process would start like this
    server.app.reset_log()
    assert_same(later_run.load(), inventory)
    assert server.app.counts() == {"GET": 1}
    (name,) = cache_files(tmp_path)
    path = os.path.join(tmp_path, name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as fh:
        assert SECRET not in fh.read()
    make(server, tmp_path, region="second-region").write({"all": {"vars": {}}})
    assert len(cache_files(tmp_path)) == 2  # one per url + project + cloud + region


def test_stale_cache_is_reloaded_and_a_write_built_on_an_older_version_refused(server, tmp_path):
    v1, v2, v3 = build_inventory(50), build_inventory(53, seed=8), build_inventory(47, seed=9)
    mine = make(server, fresh_dir(tmp_path, "mine"))
    theirs = make(server, fresh_dir(tmp_path, "theirs"))
    mine.write(variant(v1))
    assert_same(mine.load(), v1)
    theirs.write(variant(v2))
    assert_same(mine.load(), v2, "load() after another writer (stale cache)")
    theirs.write(variant(v1))
    server.app.reset_log()
    with pytest.raises(StorageError, match="stored a newer inventory since this run read it; nothing was "
                                           "written; run again"):
        mine.write(variant(v3))  # built on v2, but v1 was stored since: refused, never last-writer-wins
    assert mods(server) == 0
    assert_same(mine.load(), v1, "load() as the advice says")  # the next run reads v1 and builds on it
    mine.write(variant(v3))
    assert_same(theirs.load(), v3)
    assert_craton_matches(server, v3)


def test_damaged_or_disabled_cache_means_a_full_load(server, tmp_path):
    inventory = build_inventory(50)
    make(server, tmp_path).write(variant(inventory))
    (name,) = cache_files(tmp_path)
    with open(os.path.join(tmp_path, name), "w") as fh:
        fh.write('{"format": 1, "truncated')
    server.app.reset_log()
    assert_same(make(server, tmp_path).load(), inventory)
    assert len(requests_to(server, "GET", r"^/v1/hosts$")) == 1  # one short page
    uncached = make(server, fresh_dir(tmp_path, "nocache"), cache="false")
    for _ in range(2):
        server.app.reset_log()
        assert_same(uncached.load(), inventory)
        assert len(requests_to(server, "GET", r"^/v1/hosts$")) == 1  # one short page
    assert cache_files(tmp_path / "nocache") == []


# -- cloud and region ------------------------------------------------------------------------

def test_missing_region_loads_as_nothing_and_is_created_on_write(server, tmp_path):
    storage = make(server, tmp_path)
    assert storage.load() is None
    assert mods(server) == 0
    storage.write({"all": {"vars": {"a": 1}}})
    assert len(requests_to(server, "POST", r"^/v1/clouds$")) == 1
    assert len(requests_to(server, "POST", r"^/v1/regions$")) == 1
    assert server.region("osa-region") is not None


def test_same_region_name_in_another_cloud_is_not_ours(server, tmp_path):
    make(server, fresh_dir(tmp_path, "a"), cloud="someone-else").write({"theirs": {"hosts": []}})
    inventory = build_inventory(50)
    mine = make(server, fresh_dir(tmp_path, "b"))
    assert mine.load() is None
    mine.write(variant(inventory))
    assert_same(make(server, fresh_dir(tmp_path, "c")).load(), inventory)
    assert make(server, fresh_dir(tmp_path, "d"), cloud="someone-else").load() == {"theirs": {"hosts": []}}
    with server.app.lock:
        regions = sorted((r["name"], r["cloud_id"]) for r in server.app.tables["regions"].values())
    assert len(regions) == 2 and regions[0][0] == regions[1][0] == "osa-region"


def test_admin_listings_span_projects_and_the_plugin_keeps_to_its_own(server, tmp_path):
    other_project = server.app.add_project("other")
    other_key = server.app.add_user(other_project, "someone")
    other = {**server.options(), "project_id": other_project, "username": "someone", "api_key": other_key}
    theirs = PLUGIN.Storage()
    theirs.register({**other, "config_dir": fresh_dir(tmp_path, "theirs")})
    theirs.write({"theirs": {"hosts": []}})
    admin = make(server, fresh_dir(tmp_path, "admin"), username="admin", api_key=server.admin_key)
    listed = requests.get(f"{server.url}/v1/clouds", headers=server.headers(admin=True), timeout=5).json()
    assert [c["project_id"] for c in listed["clouds"]] == [other_project]  # not scoped to the admin's project
    assert admin.load() is None  # the other project's cloud and region of the same names are not ours
    admin.write({"ours": {"hosts": []}})
    assert make(server, fresh_dir(tmp_path, "user")).load() == {"ours": {"hosts": []}}
    assert theirs.load() == {"theirs": {"hosts": []}}


def documented_user_setup() -> tuple[list[str], str]:
    """docs/craton.md's two sh blocks for the plain user: the names it sets, and the command, as printed."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "craton.md")) as fh:
        section = fh.read().split("\n## Who may read and write", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, blocks
    names = re.findall(r"(?:^|\s)([A-Z_]+)=", blocks[0])
    return names, blocks[1]


def test_the_documented_command_creates_the_plain_user_the_plugin_runs_as(server, tmp_path):
    import subprocess
    names, command = documented_user_setup()
    values = {"CRATON_URL": server.url, "CRATON_PROJECT": server.project_id, "CRATON_ADMIN": "admin",
              "CRATON_ADMIN_KEY": server.admin_key}
    assert sorted(names) == sorted(values)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "CRATON_"))}
    env.update(values, PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    created = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60)
    assert created.returncode == 0 and created.stderr == "", created.stderr
    api_key = created.stdout.strip()
    assert api_key and "\n" not in api_key
    # The deploy hosts' settings, as the doc says: that user, the project, the key in the environment.
    config_dir = tmp_path / "deploy"
    write_config(str(config_dir), base_config())
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\n"
                                   f"project_id = {server.project_id}\nusername = osa-deploy\ncloud = c\n"
                                   "region = r\ntimeout = 5\n")
    run = run_script(str(config_dir), ini=ini, env={"OSA_INVENTORY_CRATON_API_KEY": api_key})
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "compute1" in server.hosts()
    # A plain user: what needs an admin is refused with its credentials (401, as Craton does).
    plain = {"X-Auth-Project": server.project_id, "X-Auth-User": "osa-deploy", "X-Auth-Token": api_key}
    assert requests.get(f"{server.url}/v1/users", headers=plain, timeout=5).status_code == 401
    again = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode != 0 and again.stdout == "", "a second user of the same name"
    assert "409" in again.stderr and len(again.stderr.splitlines()) == 1, again.stderr
    env["CRATON_ADMIN_KEY"] = "not-the-key"
    refused = subprocess.run(["bash", "-c", command.replace("osa-deploy", "osa-other")], capture_output=True,
                             text=True, env=env, timeout=60)
    assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr


def test_look_alike_departs_from_the_rules_like_the_real_server(server):
    url, headers = f"{server.url}/v1", server.headers()
    cloud = requests.post(f"{url}/clouds", headers=headers, json={"name": "c"}, timeout=5).json()
    no_type = requests.post(f"{url}/clouds", headers=headers, data=json.dumps({"name": "d"}), timeout=5)
    assert no_type.status_code == 400  # no Content-Type: application/json
    region = requests.post(f"{url}/regions", headers=headers, json={"name": "r", "cloud_id": cloud["id"]},
                           timeout=5).json()
    empty_key = requests.put(f"{url}/regions/{region['id']}/variables", headers=headers, json={"": 1}, timeout=5)
    assert empty_key.status_code == 400
    host = requests.post(f"{url}/hosts", headers=headers, timeout=5, json={
        "name": "h", "cloud_id": cloud["id"], "region_id": region["id"], "ip_address": "10.0.0.1",
        "device_type": "server"}).json()
    assert requests.delete(f"{url}/regions/{region['id']}", headers=headers, timeout=5).status_code == 204
    assert server.hosts() == {}  # the region took its host with it
    assert requests.delete(f"{url}/hosts/{host['id']}", headers=headers, timeout=5).status_code == 204
    answer = requests.get(f"{url}/clouds", headers=headers, timeout=5)
    assert answer.raw.version == 10 and answer.text.startswith("{\n  ")  # HTTP/1.0, pretty-printed


def test_missing_region_is_an_error_when_creation_is_off(server, tmp_path):
    storage = make(server, tmp_path, create="false", region="not-there")
    assert storage.load() is None
    with pytest.raises(StorageError) as caught:
        storage.write({"all": {"vars": {}}})
    message = str(caught.value)
    assert "not-there" in message and "create" in message and server.url in message
    assert mods(server) == 0


def test_region_deleted_behind_the_cache_is_found_again(server, tmp_path):
    inventory = build_inventory(50)
    storage = make(server, tmp_path)
    storage.write(variant(inventory))
    with server.app.lock:  # an operator wipes the region
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "osa-region")
        server.app.tables["hosts"].clear()
        del server.app.tables["regions"][region["id"]]
    again = make(server, tmp_path)
    assert again.load() is None
    again.write(variant(inventory))
    assert_same(make(server, fresh_dir(tmp_path, "x")).load(), inventory)


def test_region_holding_foreign_hosts_is_not_taken_over(server, tmp_path):
    storage = make(server, tmp_path)
    storage.write({"all": {"vars": {}}})  # creates cloud and region, then forget the state record
    with server.app.lock:
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "osa-region")
        region["variables"].clear()
        server.app.tables["hosts"][9999] = {
            "id": 9999, "name": "someone-elses", "project_id": server.project_id, "cloud_id": region["cloud_id"],
            "region_id": region["id"], "cell_id": None, "parent_id": None, "ip_address": "10.1.1.1",
            "device_type": "server", "active": True, "note": None, "created_at": "x", "updated_at": None,
            "variables": {}, "labels": []}
    server.app.reset_log()
    with pytest.raises(StorageError, match="refusing to take it over"):
        make(server, fresh_dir(tmp_path, "b")).write(build_inventory(50))
    assert mods(server) == 0


# -- failures ------------------------------------------------------------------------------------

def test_refused_credentials_name_user_and_project_not_the_key(server, tmp_path):
    storage = make(server, tmp_path, api_key="wrong-" + SECRET)
    with pytest.raises(StorageError) as caught:
        storage.load()
    text = error_text(caught.value)
    assert "refused the credentials" in text and server.username in text and server.project_id in text
    assert server.url in text and SECRET not in text
    assert isinstance(caught.value, AccessDenied)  # so no tool answers it with --force


def test_refused_keystone_token(tmp_path):
    srv = CratonServer(auth="keystone", token=TOKEN).start()
    try:
        inventory = build_inventory(50)
        good = make(srv, tmp_path)
        good.write(variant(inventory))
        assert_same(make(srv, fresh_dir(tmp_path, "b")).load(), inventory)
        with pytest.raises(StorageError) as caught:
            make(srv, tmp_path, token="bad-" + TOKEN).load()
        assert "Keystone token" in str(caught.value) and TOKEN not in error_text(caught.value)
    finally:
        srv.stop()


def test_lost_answer_to_a_create_is_recovered_through_the_409(server, tmp_path):
    inventory = build_inventory(50)
    server.app.inject(503, times=1, method="POST", path=r"^/v1/regions$", apply=True)
    server.app.inject(502, times=1, method="POST", path=r"^/v1/hosts$", apply=True)
    server.app.inject(504, times=1, method="DELETE", path=r"^/v1/hosts/\d+$", apply=True)
    storage = make(server, tmp_path)
    storage.write(variant(inventory))
    assert [e.status for e in requests_to(server, "POST", r"^/v1/hosts$")][:2] == [502, 409]
    smaller = variant(inventory)
    del smaller["_meta"]["hostvars"]["compute1"]
    smaller["compute_hosts"]["hosts"].remove("compute1")
    smaller["nova_compute"]["hosts"].remove("compute1")
    smaller["az1_hosts"]["hosts"].remove("compute1")
    storage.write(variant(smaller))
    assert [e.status for e in requests_to(server, "DELETE", r"^/v1/hosts/\d+$")] == [504, 204]  # a missing host: 204
    assert_same(make(server, fresh_dir(tmp_path, "b")).load(), smaller)
    assert_craton_matches(server, smaller)


def test_persistent_409_is_a_clear_error_and_the_next_write_repairs(server, tmp_path):
    inventory = build_inventory(50)
    server.app.inject(409, times=1000, method="POST", path=r"^/v1/hosts$",
                      message="A device with the given name already exists.")
    storage = make(server, tmp_path)
    with pytest.raises(StorageError) as caught:
        storage.write(variant(inventory))
    assert "409" in str(caught.value) and server.url in str(caught.value) and "infra" in str(caught.value)
    server.app.clear_knobs()
    storage.write(variant(inventory))
    assert_same(make(server, fresh_dir(tmp_path, "b")).load(), inventory)


def test_5xx_and_429_are_retried_then_succeed(server, tmp_path):
    inventory = build_inventory(50)
    storage = make(server, tmp_path)
    storage.write(variant(inventory))
    changed = _one_change("host variable value", inventory)
    server.app.inject(503, times=2, method="PUT", path=r"^/v1/hosts/\d+/variables$")
    server.app.inject(429, times=1, method="GET", retry_after=1)
    server.app.reset_log()
    started = time.monotonic()
    storage.write(variant(changed))
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    assert [e.status for e in requests_to(server, "PUT", r"^/v1/hosts/\d+/variables$")] == [503, 503, 200]
    assert [e.status for e in requests_to(server, "GET", r"/variables$")][:2] == [429, 200]
    assert_same(make(server, fresh_dir(tmp_path, "b")).load(), changed)


def test_5xx_forever_is_a_clear_error_after_the_retries(server, tmp_path):
    server.app.inject(500, times=1000, method="GET")
    with pytest.raises(StorageError) as caught:
        make(server, tmp_path, retries="2").load()
    message = str(caught.value)
    assert "server error 500" in message and "after 2 retries" in message and server.url in message
    assert server.app.counts() == {"GET": 3}


def test_connection_refused_is_a_clear_error(server, tmp_path):
    storage = make(server, tmp_path)
    server.stop()
    with pytest.raises(StorageError) as caught:
        storage.load()
    message = str(caught.value)
    assert "cannot connect" in message and "connection refused" in message and server.url in message


def test_slow_server_times_out_within_timeout_times_attempts(server, tmp_path):
    server.app.slow(3.0)
    storage = make(server, tmp_path, timeout="0.3", retries="1")
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        storage.load()
    elapsed = time.monotonic() - started
    assert "did not answer" in str(caught.value) and "0.3 s" in str(caught.value) and server.url in str(caught.value)
    assert 0.6 <= elapsed < 2.0, elapsed
    server.app.clear_knobs()


# -- interrupted writes -------------------------------------------------------------------------------

@pytest.mark.once
@pytest.mark.parametrize("apply_last", [False, True], ids=["lost-before-applying", "applied-then-lost"])
def test_write_interrupted_at_every_point_is_completed_by_the_next_write(tmp_path, apply_last):
    v1 = build_inventory(50)
    v2 = change_everything_a_little(v1)
    scratch = CratonServer(api_key=SECRET).start()
    try:
        make(scratch, fresh_dir(tmp_path, "scratch")).write(variant(v1))
        scratch.app.reset_log()
        make(scratch, fresh_dir(tmp_path, "scratch")).write(variant(v2))
        total = mods(scratch)
    finally:
        scratch.stop()
    assert total >= 15  # the change exercises every kind of request
    for survive in range(total):
        server = CratonServer(api_key=SECRET).start()
        try:
            folder = fresh_dir(tmp_path, f"mine{survive}")
            mine = make(server, folder)
            mine.write(variant(v1))
            server.app.die_after(survive, apply_last=apply_last)
            try:
                mine.write(variant(v2), record=ChangeRecord.now("write v2", "v2", reason="cut short"))
                finished = True  # only removing the write mark after the commit was lost: that is housekeeping
            except StorageError as exc:
                assert "dropped the connection" in str(exc)
                finished = False
            assert finished == (survive == total - 1)
            server.app.revive()
            # Never a half state: the whole previous version or the whole new one, on any machine, and
            # reading it finishes the interrupted write (rolls it back) when its writer is gone.
            other = make(server, fresh_dir(tmp_path, f"other{survive}"), cache="false")
            got = other.load()
            committed = survive >= total - 2 + (not apply_last)
            assert_same(got, v2 if committed else v1, f"load() after an interruption at request {survive}")
            assert marks(server) == [] and assert_craton_matches(server, got) is None
            # The record goes with the commit: v2's exists exactly when v2 landed; a write left half done
            # is rolled back by a recorded roll-back naming it.
            history = other.history()
            commands = [row["command"] for row in history]
            left_a_mark = survive > 0 or apply_last
            assert commands == [records.UNRECORDED_COMMAND] + (
                ["write v2"] if committed else [records.ROLL_BACK_COMMAND] if left_a_mark else []), survive
            assert [row["version"] for row in history] == [str(n) for n in range(1, len(history) + 1)]
            if commands[-1] == records.ROLL_BACK_COMMAND:
                assert "write v2" in history[-1]["reason"] and "cut short" in history[-1]["reason"]
            assert_same(mine.load(), got, "load() with the local cache")
            make(server, folder).write(variant(v2))
            assert_same(make(server, fresh_dir(tmp_path, f"third{survive}")).load(), v2)
            assert_craton_matches(server, v2)
        finally:
            server.stop()


def test_interrupted_write_then_a_different_target_leaves_exact_labels(server, tmp_path):
    v1 = build_inventory(50)
    v2 = change_everything_a_little(v1)
    v3 = variant(v1)
    v3["compute_hosts"]["hosts"].remove("compute3")
    v3["haproxy"]["hosts"] += ["compute1", "compute2"]
    mine = make(server, fresh_dir(tmp_path, "mine"))
    mine.write(variant(v1))
    for survive in (12, 4):  # two interrupted writes in a row
        server.app.die_after(survive)
        with pytest.raises(StorageError):
            mine.write(variant(v2 if survive == 12 else v3))
        server.app.revive()
    make(server, fresh_dir(tmp_path, "elsewhere")).write(variant(v3))  # repaired from another machine
    assert_same(mine.load(), v3)
    assert_craton_matches(server, v3)


def test_recovery_reads_labels_per_group_when_that_is_cheaper(server, tmp_path):
    hostvars = {f"n{i}": {"ansible_host": f"10.5.0.{i}"} for i in range(1, 81)}
    v1 = {"_meta": {"hostvars": hostvars}, "odd": {"hosts": [f"n{i}" for i in range(1, 81, 2)]},
          "even": {"hosts": [f"n{i}" for i in range(2, 81, 2)]}, "": {"hosts": ["n1"]}, "all": {"vars": {}}}
    v2 = variant(v1)
    v2["odd"], v2["even"] = v2["even"], v2["odd"]
    v2["low"] = {"hosts": [f"n{i}" for i in range(1, 21)]}
    storage = make(server, tmp_path)
    storage.write(variant(v1))
    server.app.die_after(50)  # 60 hosts change labels: the write dies half way through
    with pytest.raises(StorageError):
        storage.write(variant(v2))
    server.app.revive()
    server.app.reset_log()
    storage.write(variant(v2))
    by_label = [re.search(r"label=(\w+)", e.query).group(1) for e in requests_to(server, "GET", r"^/v1/hosts$")
                if "label=" in e.query]
    assert sorted(by_label) == ["even", "low", "odd"]  # one short page each
    assert not requests_to(server, "GET", r"/labels$")  # a few listings instead of 80 reads
    assert_same(make(server, fresh_dir(tmp_path, "b")).load(), v2)
    assert_craton_matches(server, v2)


def test_a_host_added_behind_the_loaded_revision_is_never_deleted(server, tmp_path):
    inventory = build_inventory(50)
    make(server, fresh_dir(tmp_path, "a")).write(variant(inventory))
    mine = make(server, fresh_dir(tmp_path, "mine"), cache="false")
    assert_same(mine.load(), inventory)
    with server.app.lock:  # someone adds a host in Craton by hand; the revision does not change
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "osa-region")
        server.app.tables["hosts"][9999] = {
            "id": 9999, "name": "added-by-hand", "project_id": server.project_id, "cloud_id": region["cloud_id"],
            "region_id": region["id"], "cell_id": None, "parent_id": None, "ip_address": "10.1.1.1",
            "device_type": "server", "active": True, "note": None, "created_at": "x", "updated_at": None,
            "variables": {"mine": "no"}, "labels": []}
    server.app.reset_log()
    changed = _one_change("host variable value", inventory)
    with pytest.raises(StorageError, match="host added-by-hand appeared in Craton after this run read the "
                                           "inventory .* nothing was written; run again"):
        mine.write(variant(changed))
    assert mods(server) == 0 and "added-by-hand" in server.hosts()
    loaded = mine.load()  # the advice: run again, so the host is part of what the run reads
    assert loaded["_meta"]["hostvars"]["added-by-hand"] == {"mine": "no"}
    loaded["_meta"]["hostvars"]["compute2"]["nova_reserved_host_memory_mb"] = 1
    mine.write(loaded)
    assert "added-by-hand" in server.hosts()


def test_interrupted_first_write_loads_as_nothing_then_completes(server, tmp_path):
    inventory = build_inventory(50)
    server.app.die_after(8)
    with pytest.raises(StorageError):
        make(server, tmp_path).write(variant(inventory))
    server.app.revive()
    other = make(server, fresh_dir(tmp_path, "b"))
    assert other.load() is None
    other.write(variant(inventory))
    assert_same(make(server, tmp_path).load(), inventory)
    assert_craton_matches(server, inventory)


# -- TLS -----------------------------------------------------------------------------------------------------

def test_tls_self_signed_needs_the_ca_bundle(tmp_path):
    ca, cert, key = make_tls_files(str(tmp_path))
    srv = CratonServer(ssl_context=tls_context(cert, key), api_key=SECRET).start()
    try:
        inventory = build_inventory(50)
        with pytest.raises(StorageError) as caught:
            make(srv, fresh_dir(tmp_path, "default")).load()  # verify defaults to true
        assert "TLS" in str(caught.value) and "verify" in str(caught.value) and srv.url in str(caught.value)
        trusted = make(srv, fresh_dir(tmp_path, "trusted"), verify=ca)
        trusted.write(variant(inventory))
        assert_same(make(srv, fresh_dir(tmp_path, "trusted2"), verify=ca).load(), inventory)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert_same(make(srv, fresh_dir(tmp_path, "insecure"), verify="false").load(), inventory)
        assert not [w for w in seen if "Insecure" in w.category.__name__]  # nothing printed on stderr
    finally:
        srv.stop()


def test_a_ca_without_key_usage_is_one_line_naming_the_fix(tmp_path):
    """Python 3.13 refuses a CA without keyUsage (VERIFY_X509_STRICT); older versions accept it.
    Through the real script: one line on stderr, exit 1; then the advice, followed as printed."""
    pki = make_pki(fresh_dir(tmp_path, "pki"))
    legacy = legacy_ca(pki, str(tmp_path / "legacy-ca.pem"))
    srv = CratonServer(ssl_context=tls_context(pki["server.pem"], pki["server.key"]), api_key=SECRET).start()
    try:
        config_dir = str(tmp_path / "deploy")
        write_config(config_dir, base_config())
        options = (f"[inventory]\nbackend = craton\n[craton]\nurl = {srv.url}\ncloud = e2e\nregion = e2e\n"
                   f"project_id = {srv.project_id}\nusername = {srv.username}\ntimeout = 10\nretries = 0\n")
        env = {"OSA_INVENTORY_CRATON_API_KEY": SECRET}
        result = run_script(config_dir, "--list", ini=write_ini(str(tmp_path), options + f"verify = {legacy}\n"),
                            env=env)
        if sys.version_info < (3, 13):
            assert result.returncode == 0 and result.stderr == "", result.stderr
            assert "compute1" in json.loads(result.stdout)["_meta"]["hostvars"]
            return
        assert result.returncode == 1 and result.stdout == "", result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and SECRET not in result.stderr
        assert (f"TLS connection to {srv.url} failed (certificate verify failed: CA cert does not include key "
                f"usage extension); Python 3.13 verifies certificates strictly and the CA in [craton] verify = "
                f"{legacy} lacks required extensions: re-issue the CA with {CA_EXTENSIONS}") in result.stderr
        # Nothing reached Craton, nothing was stored or cached (a warning may have gone to inventory.log).
        assert srv.app.counts() == {}
        assert set(os.listdir(config_dir)) - {"inventory.log"} == {"openstack_user_config.yml"}
        fixed = reissue_ca_as_advised(pki, result.stderr, str(tmp_path / "fixed-ca.pem"))
        repaired = run_script(config_dir, "--list", ini=write_ini(str(tmp_path), options + f"verify = {fixed}\n"),
                              env=env)
        assert repaired.returncode == 0 and repaired.stderr == "", repaired.stderr
        assert set(srv.hosts()) == set(json.loads(repaired.stdout)["_meta"]["hostvars"])
    finally:
        srv.stop()


# -- secrets -------------------------------------------------------------------------------------------------

def test_credentials_never_appear_in_errors_reprs_or_logs(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []

    def failure(storage, action="load", *args):
        with pytest.raises(InventoryError) as caught:
            getattr(storage, action)(*args)
        texts.append(error_text(caught.value))

    storage = make(server, tmp_path)
    storage.write(build_inventory(50))
    texts += [repr(storage), repr(storage.opts), storage.describe(), repr(storage._client)]
    failure(make(server, tmp_path, api_key="other" + SECRET))
    server.app.inject(503, times=100)
    failure(make(server, tmp_path))
    server.app.clear_knobs()
    server.app.inject(409, times=100, method="POST")
    failure(make(server, fresh_dir(tmp_path, "b"), region="r2"), "write", build_inventory(50))
    server.app.clear_knobs()
    server.app.slow(2.0)
    failure(make(server, tmp_path, timeout="0.2", retries="0"))
    server.app.clear_knobs()
    server.stop()
    failure(make(server, tmp_path))
    keystone = PLUGIN.Storage()
    keystone.register({**server.options(), "api_key": "", "token": TOKEN, "config_dir": str(tmp_path)})
    texts += [repr(keystone), keystone.describe()]
    failure(keystone)
    texts += [record.getMessage() for record in caplog.records]
    assert len(texts) > 10
    for text in texts:
        assert SECRET not in text and TOKEN not in text, text


# -- through the project's loader and settings ---------------------------------------------------------------

def test_backend_from_settings_and_environment(server, tmp_path):
    ini = tmp_path / "osa.ini"
    ini.write_text(f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\ncloud = c\nregion = r\n"
                   f"project_id = {server.project_id}\nusername = {server.username}\nbackoff = 0.01\n")
    environ = {"OSA_INI": str(ini), "OSA_INVENTORY_CRATON_API_KEY": SECRET}
    backend = open_backend(read_settings(environ), str(tmp_path))
    assert backend.describe() == f"craton {server.url} cloud c region r"
    inventory = build_inventory(50)
    backend.write(variant(inventory))
    assert_same(backend.load(), inventory)
    environ["OSA_INVENTORY_CRATON_API_KEY"] = "bad" + SECRET
    with pytest.raises(StorageError) as caught:
        open_backend(read_settings(environ), str(tmp_path)).load()
    assert str(caught.value).startswith("storage backend craton: Craton at ")
    assert SECRET not in str(caught.value)


def test_inventory_script_end_to_end(server, tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\n"
                                   f"cloud = e2e\nregion = e2e\nproject_id = {server.project_id}\n"
                                   f"username = {server.username}\ntimeout = 10\n")
    env = {"OSA_INVENTORY_CRATON_API_KEY": SECRET}
    first = run_script(config_dir, "--list", ini=ini, env=env)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    printed = json.loads(first.stdout)
    assert set(server.hosts()) == set(printed["_meta"]["hostvars"]) and "compute1" in printed["_meta"]["hostvars"]
    assert_same(make(server, fresh_dir(tmp_path, "reader"), cloud="e2e", region="e2e").load(), printed)
    server.app.reset_log()
    second = run_script(config_dir, "--list", ini=ini, env=env)
    assert second.returncode == 0 and second.stderr == ""
    assert json.loads(second.stdout) == printed
    assert mods(server) == 0 and sum(server.app.counts().values()) <= 2
    server.stop()
    failed = run_script(config_dir, "--list", ini=ini, env=env)
    assert failed.returncode == 1 and failed.stdout == "" and SECRET not in failed.stderr
    assert "cannot connect to Craton" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1


def test_a_stored_inventory_of_the_wrong_shape_is_one_line_and_never_rewritten(server, tmp_path):
    """Host variables edited in Craton into a shape Ansible cannot use: refused on load, nothing sent."""
    ini = tmp_path / "osa.ini"
    ini.write_text(f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\ncloud = c\nregion = r\n"
                   f"project_id = {server.project_id}\nusername = {server.username}\nbackoff = 0.01\n"
                   "cache = false\n")
    environ = {"OSA_INI": str(ini), "OSA_INVENTORY_CRATON_API_KEY": SECRET}
    damaged = {"all": {"vars": {}}, "_meta": {"hostvars": {"h1": {"container_networks": {"mgmt": "10.0.0.1"}}}}}
    open_backend(read_settings(environ), str(tmp_path)).write(damaged)
    server.app.reset_log()
    with pytest.raises(StorageError) as caught:
        open_backend(read_settings(environ), str(tmp_path)).load()
    text = str(caught.value)
    assert "\n" not in text and "container_networks" in text and "h1" in text
    assert "nothing was written" in text
    assert mods(server) == 0
