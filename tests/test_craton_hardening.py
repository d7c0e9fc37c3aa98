"""Craton: --plan writes nothing (issue 22.8), every JSON read is bounded (22.2), refusals say where (21.7).

Through the real scripts against the Craton look-alike (tests/craton_server.py), which
records every request it gets.
"""

from __future__ import annotations

import copy
import glob
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest

from craton_server import CratonServer
from helpers import base_config, write_config
from osa_inventory.testing import assert_same
from test_craton_faults import MANAGE, Deployment, changed_config, ok, one_line_error
from test_craton_plugin import marks

# Once per CI run: the Craton backend's hardening against the test server.
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once

DEEP_BRACKETS = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def server():
    srv = CratonServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def cache_files(deployment: Deployment) -> dict[str, tuple[bytes, int]]:
    """The plugin's cache files in the config folder: content and mtime."""
    out = {}
    for path in glob.glob(os.path.join(deployment.config_dir, ".craton-inventory-cache-*.json")):
        with open(path, "rb") as fh:
            out[path] = (fh.read(), os.stat(path).st_mtime_ns)
    return out


def region_variables(server: CratonServer, region: str) -> dict:
    return server.region(region)["variables"]


# -- --plan writes nothing -----------------------------------------------------------------------

def test_plan_after_a_full_load_writes_no_cache(server, tmp_path):
    deployment = Deployment(server, str(tmp_path), "plan-cache", base_config())
    ok(deployment.run())
    for path in cache_files(deployment):
        os.unlink(path)  # a new deploy host, or a cache deleted to pick up changes made by hand
    write_config(deployment.config_dir, changed_config())
    server.app.reset_log()
    plan = deployment.run("--plan", tool=MANAGE)
    assert plan.returncode == 2 and "compute2" in plan.stdout and plan.stderr == "", plan.stderr
    assert server.app.modifying() == 0
    assert cache_files(deployment) == {}, "--plan wrote the cache file"
    # The inventory run it predicted still refreshes the cache.
    ok(deployment.run())
    assert cache_files(deployment)


@pytest.mark.once
def test_plan_over_an_abandoned_write_commits_no_roll_back(server, tmp_path):
    deployment = Deployment(server, str(tmp_path), "plan-rollback", base_config())
    v1 = ok(deployment.run())
    write_config(deployment.config_dir, changed_config())
    server.app.reset_log()
    ok(deployment.run())                          # measure the changing run's requests...
    writes = len(server.app.log)
    deployment.storage().write(copy.deepcopy(v1))  # ...then put v1 back and cut the same change short
    server.app.reset_log()
    server.app.die_after(writes - 4, apply_last=True, every_request=True)
    one_line_error(deployment.run())
    server.app.revive()
    left = marks(server, "plan-rollback")
    assert left, "the interrupted write left no mark to roll back"
    before_vars, before_cache, before_hosts = region_variables(server, "plan-rollback"), cache_files(deployment), \
        server.hosts()
    server.app.reset_log()
    plan = deployment.run("--plan", tool=MANAGE)
    assert plan.returncode == 2 and "compute2" in plan.stdout and plan.stderr == "", plan.stderr
    assert server.app.modifying() == 0, "--plan committed a roll-back"
    assert marks(server, "plan-rollback") == left
    assert region_variables(server, "plan-rollback") == before_vars and server.hosts() == before_hosts
    assert cache_files(deployment) == before_cache
    # A plan of the reverted config says nothing would change: it read the committed inventory, v1.
    write_config(deployment.config_dir, base_config())
    assert deployment.run("--plan", tool=MANAGE).returncode == 0
    # The next inventory run finishes the abandoned write, as documented.
    assert_same(ok(deployment.run()), v1)
    assert marks(server, "plan-rollback") == []


# -- every JSON read is bounded -----------------------------------------------------------------

def test_a_region_variable_nested_too_deeply_is_one_line(server, tmp_path):
    deployment = Deployment(server, str(tmp_path), "deep-var", base_config(), cache=False)
    ok(deployment.run())
    value: list = []
    for _ in range(150):  # JSON any parser takes; deeper than any inventory nests
        value = [value]
    with server.app.lock:
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "deep-var")
        region["variables"]["osa-inventory:top:deep"] = value
    line = one_line_error(deployment.run())
    assert "/v1/regions/" in line and "/variables answered 200 with a body that is not JSON Craton could have " \
        "sent" in line and "nests lists or objects more than 100 levels deep" in line, line
    assert "unexpected" not in line


def test_a_server_answering_200_kb_of_brackets_is_one_line(tmp_path):
    class Deep(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(DEEP_BRACKETS)))
            self.end_headers()
            self.wfile.write(DEEP_BRACKETS)

        def log_message(self, *args):
            pass

    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        stand_in = CratonServer()  # only for its credentials; the URL is the fake's
        stand_in.port = fake.server_address[1]
        deployment = Deployment(stand_in, str(tmp_path), "r", base_config())
        line = one_line_error(deployment.run())
        assert f"GET http://127.0.0.1:{stand_in.port}/v1/clouds" in line and "nests lists or objects" in line, line
        assert "check that [craton] url points at the Craton API" in line
    finally:
        fake.shutdown()
        fake.server_close()


@pytest.mark.parametrize("planted", ["fifo", "deep", "link"])
def test_a_cache_file_that_is_not_ours_costs_a_full_load_never_a_hang(server, tmp_path, planted):
    deployment = Deployment(server, str(tmp_path), f"cache-{planted}", base_config())
    v1 = ok(deployment.run())
    (path,) = cache_files(deployment)
    os.unlink(path)
    if planted == "fifo":
        os.mkfifo(path)
    elif planted == "deep":
        with open(path, "wb") as fh:
            fh.write(DEEP_BRACKETS)
    else:
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps({"format": 1}))
        os.symlink(target, path)
    server.app.reset_log()
    started = time.monotonic()
    assert_same(ok(deployment.run()), v1)
    assert time.monotonic() - started < 60, "the run waited on the planted file"
    assert server.app.counts()["GET"] > 1, "the planted cache was used"
    # The full load replaced it with a real cache file (a link is replaced, its target untouched).
    assert os.path.isfile(path) and not os.path.islink(path)
    if planted == "link":
        assert json.loads((tmp_path / "elsewhere.json").read_text()) == {"format": 1}


# -- refusals say where --------------------------------------------------------------------------

def test_a_stored_inventory_of_the_wrong_shape_names_the_cloud_and_region(server, tmp_path):
    deployment = Deployment(server, str(tmp_path), "wrong-shape", base_config())
    good = ok(deployment.run())
    deployment.storage().write({"_meta": {"hostvars": {"h1": "not a mapping"}}})
    before = region_variables(server, "wrong-shape")
    line = one_line_error(deployment.run())
    assert f"storage backend craton: the inventory loaded from craton {server.url} cloud faults region wrong-shape: " \
        "_meta.hostvars.h1 is a str" in line, line
    assert region_variables(server, "wrong-shape") == before
    # Craton keeps no earlier inventories: the advice is a saved copy, and it works as printed.
    assert "--restore" not in line
    tool = re.search(r"\((\S+ --config \S+) --import FILE --force\)", line).group(1)
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(good))
    done = subprocess.run([sys.executable, *shlex.split(tool), "--import", str(saved), "--force"],
                          capture_output=True, text=True, env=deployment.env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_same(ok(deployment.run()), good)
