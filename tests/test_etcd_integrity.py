"""Deployments kept apart on etcd, and every fault the plugin reports repairable as it says.

Real etcd (tests/etcd_server.py), the real plugin through the loader, and the real
scripts as subprocesses running the advice exactly as printed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from etcd_server import EtcdCluster, build_inventory, etcd, skip_without_etcd  # noqa: F401  (etcd: the fixture)
from helpers import ROOT, base_config, run_script, write_config
from osa_inventory.backends.etcd import writer as etcd_writer
from osa_inventory.backends.etcd.parts import digest, dumps
from osa_inventory.errors import StorageError
from test_etcd_plugin import _spawn, data_keys, expected_key_count, open_etcd, prefix  # noqa: F401

# Once per CI run: etcd's integrity and repair paths, against a real etcd.
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
# The tool as advice spells it for a backend opened with the config folder open_etcd() gives.
MANAGE_HERE = [MANAGE, "--config", tempfile.gettempdir()]


# -- helpers ----------------------------------------------------------------------------

def ini_for(folder, endpoints: str, prefix: str, deployment: str | None = None, **sections: str) -> str:
    """An osa.ini for the etcd backend at ``prefix``; ``sections``: extra etcd sections by name -> prefix."""
    text = f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {endpoints}\nprefix = {prefix}\ntimeout = 5\n"
    if deployment is not None:
        text += f"deployment = {deployment}\n"
    for name, other in sections.items():
        text += f"[{name}]\nplugin = etcd\nendpoints = {endpoints}\nprefix = {other}\ntimeout = 5\n"
    path = os.path.join(str(folder), f"osa-{abs(hash(text))}.ini")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def manage(ini: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    full.update({"OSA_INI": ini, **(env or {})})
    return subprocess.run([sys.executable, MANAGE, "--config", os.path.dirname(ini), *args],
                          capture_output=True, text=True, env=full, timeout=120)


def quoted_commands(message: str) -> list[list[str]]:
    """The commands an error line tells the operator to run, split as a shell would."""
    return [shlex.split(cmd) for cmd in re.findall(r"'((?:\S*inventory-manage\S*|etcdctl) [^']+)'", message)]


def run_advice(command: list[str], ini: str, replacements: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one printed command as printed: our tool (in a deployer's environment: osa.ini and the
    config folder set, the venv's python3 first on PATH), or etcdctl."""
    command = [(replacements or {}).get(word, word) for word in command]
    if command[0] == "etcdctl":
        env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert command[0] == MANAGE, f"advice names {command[0]}, not the checkout's inventory-manage"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env.update(OSA_INI=ini, OSA_CONFIG_DIR=os.path.dirname(ini),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def import_as_printed(cluster, prefix: str, tmp_path, command: list[str], inventory: dict) -> None:
    """Run the printed '--import FILE --force' with ``inventory`` saved as FILE; check the store."""
    assert command == [*MANAGE_HERE, "--import", "FILE", "--force"], command
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(inventory))
    result = run_advice(command, ini_for(tmp_path, cluster.endpoints_text, prefix), {"FILE": str(saved)})
    assert result.returncode == 0, result.stderr
    assert open_etcd(cluster.endpoints_text, prefix).load() == inventory
    assert len(data_keys(cluster, prefix)) == expected_key_count(inventory), "keys were left behind"


def error_of(func) -> str:
    with pytest.raises(StorageError) as err:
        func()
    text = str(err.value)
    assert "\n" not in text
    return text


def put_raw(cluster, key: str | bytes, value: bytes) -> None:
    key = key.encode() if isinstance(key, str) else key
    cluster.post("/v3/kv/put", {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()})


def delete_raw(cluster, key: str | bytes) -> None:
    key = key.encode() if isinstance(key, str) else key
    cluster.post("/v3/kv/deleterange", {"key": base64.b64encode(key).decode()})


def all_keys(cluster, prefix: str) -> dict[bytes, bytes]:
    """Every key under ``prefix/`` with its value, now."""
    key = (prefix + "/").encode()
    end = key[:-1] + bytes([key[-1] + 1])
    data = cluster.post("/v3/kv/range", {"key": base64.b64encode(key).decode(),
                                         "range_end": base64.b64encode(end).decode()})
    return {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", "")) for kv in data.get("kvs", [])}


def changed(inventory: dict, mark) -> dict:
    out = json.loads(json.dumps(inventory))
    out["all"]["vars"]["mark"] = mark
    return out


# -- prefixes owned by one deployment ------------------------------------------------------

def test_nested_deployment_is_never_deleted_and_both_are_refused(etcd, prefix, tmp_path, monkeypatch):
    outer, inner = prefix + "/nest", prefix + "/nest/data/b"
    a, b = build_inventory(5, seed=1), build_inventory(3, seed=2)
    open_etcd(etcd.endpoints_text, outer).write(a)
    # B as a release without the nesting check stored it (this one refuses to, see below).
    nested = open_etcd(etcd.endpoints_text, inner)
    with monkeypatch.context() as patch:
        patch.setattr(etcd_writer, "deployments_around", lambda client, prefix: [])
        nested.write(b)
    b_keys = all_keys(etcd, inner)

    writer = open_etcd(etcd.endpoints_text, outer)
    writer.load()
    message = error_of(lambda: writer.write(changed(a, 1)))
    assert f"etcd prefix {outer} " in message and f"contains the prefix {inner} of another deployment" in message
    inner_writer = open_etcd(etcd.endpoints_text, inner)
    assert inner_writer.load() == b          # reading is harmless and allowed (to move it out)
    inner_message = error_of(lambda: inner_writer.write(changed(b, 1)))
    assert f"etcd prefix {inner} " in inner_message and f"lies inside the prefix {outer}" in inner_message
    assert all_keys(etcd, inner) == b_keys, "the nested deployment's keys were touched"
    assert open_etcd(etcd.endpoints_text, outer).load() == a

    # The advice: move the nested deployment to a prefix of its own, then delete its old keys.
    ini = ini_for(tmp_path, etcd.endpoints_text, inner, moved=prefix + "/b")
    moved = manage(ini, "--migrate-to", "moved")
    assert moved.returncode == 0, moved.stderr
    commands = quoted_commands(message)
    assert [c[0] for c in commands] == ["etcdctl"]
    if shutil.which("etcdctl") is None:
        pytest.skip("etcdctl is absent (apt-get install etcd-client); the rest runs the printed etcdctl command")
    done = run_advice(commands[0], ini)
    assert done.returncode == 0, done.stderr
    assert all_keys(etcd, inner) == {}
    writer.load()
    writer.write(changed(a, 1))
    assert open_etcd(etcd.endpoints_text, outer).load() == changed(a, 1)
    assert open_etcd(etcd.endpoints_text, prefix + "/b").load() == b


def test_deployment_created_around_another_is_refused_before_writing(etcd, prefix):
    inner, outer = prefix + "/x/inner", prefix + "/x"
    open_etcd(etcd.endpoints_text, inner).write(build_inventory(2))
    before = all_keys(etcd, outer)
    message = error_of(lambda: open_etcd(etcd.endpoints_text, outer).write(build_inventory(4)))
    assert f"{outer} " in message and f"contains the prefix {inner}" in message
    assert all_keys(etcd, outer) == before


def test_keys_this_program_did_not_write_are_never_deleted(etcd, prefix):
    inventory = build_inventory(5)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    foreign = {prefix + "/data/operator-note": b"keep me",
               prefix + "/data/9-deadbeef/host/looks-like-ours": b"{}",
               prefix + "/notes": b"mine"}
    for key, value in foreign.items():
        put_raw(etcd, key, value)
    backend = open_etcd(etcd.endpoints_text, prefix)
    for mark in (1, 1, 2):                    # changing, unchanged, changing
        backend.load()
        backend.write(changed(inventory, mark))
    keys = all_keys(etcd, prefix)
    assert all(keys.get(k.encode()) == v for k, v in foreign.items())
    assert open_etcd(etcd.endpoints_text, prefix).load() == changed(inventory, 2)


# -- deployment identity -----------------------------------------------------------------------

def test_another_deployment_on_the_same_prefix_is_refused(etcd, prefix, tmp_path):
    prod = build_inventory(4, seed=1)
    open_etcd(etcd.endpoints_text, prefix, deployment="prod").write(prod)
    before = all_keys(etcd, prefix)
    staging = open_etcd(etcd.endpoints_text, prefix, deployment="staging")
    for attempt in (staging.load, lambda: staging.write(build_inventory(2, seed=9))):
        message = error_of(attempt)
        assert f"etcd prefix {prefix} " in message and "holds deployment 'prod'" in message
        assert "this run is deployment 'staging'" in message and "nothing was read or written" in message
    assert all_keys(etcd, prefix) == before

    # Through the inventory script: one line, nothing printed on stdout, nothing written.
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix, deployment="staging")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "holds deployment 'prod'" in result.stderr and "Traceback" not in result.stderr
    assert all_keys(etcd, prefix) == before


def test_force_and_restore_do_not_override_the_deployment_name(etcd, prefix, tmp_path):
    prod = build_inventory(3, seed=1)
    backend = open_etcd(etcd.endpoints_text, prefix, deployment="prod")
    backend.write(prod)
    backend.load()
    backend.write(changed(prod, 1))
    before = all_keys(etcd, prefix)
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix, deployment="staging")
    saved = tmp_path / "staging.json"
    saved.write_text(json.dumps(build_inventory(2, seed=5)))
    version = backend.history()[0]["version"]
    for args in (("--import", str(saved), "--force"), ("--restore", version)):
        result = manage(ini, *args)
        assert result.returncode == 1 and "holds deployment 'prod'" in result.stderr, result.stderr
    assert all_keys(etcd, prefix) == before


def test_unnamed_run_is_told_the_stored_name_and_the_advice_works(etcd, prefix, tmp_path):
    inventory = build_inventory(3)
    open_etcd(etcd.endpoints_text, prefix, deployment="prod").write(inventory)
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    assert "this run is an unnamed deployment" in message
    assert "set [etcd] deployment = prod (or OSA_INVENTORY_ETCD_DEPLOYMENT=prod)" in message
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    listing = manage(ini, "--list-host", env={"OSA_INVENTORY_ETCD_DEPLOYMENT": "prod"})
    assert listing.returncode == 0 and "compute0001" in listing.stdout, listing.stderr


def test_renamed_deployment_is_adopted_with_the_printed_command(etcd, prefix, tmp_path):
    inventory = build_inventory(3)
    open_etcd(etcd.endpoints_text, prefix, deployment="old-name").write(inventory)
    message = error_of(open_etcd(etcd.endpoints_text, prefix, deployment="new-name").load)
    commands = quoted_commands(message)
    assert commands == [[*MANAGE_HERE, "--adopt"]]
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix, deployment="new-name")
    adopted = run_advice(commands[0], ini)
    assert adopted.returncode == 0, adopted.stderr
    assert "held deployment 'old-name'; it is now deployment 'new-name'" in adopted.stdout
    assert open_etcd(etcd.endpoints_text, prefix, deployment="new-name").load() == inventory
    assert "holds deployment 'new-name'" in error_of(open_etcd(etcd.endpoints_text, prefix, deployment="old-name").load)
    again = run_advice(commands[0], ini)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_store_from_before_deployment_names_is_taken_over_by_an_unnamed_run(etcd, prefix):
    inventory = build_inventory(3)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    delete_raw(etcd, prefix + "/deployment")          # as stored by the previous release
    backend = open_etcd(etcd.endpoints_text, prefix)
    assert backend.load() == inventory
    backend.write(inventory)                           # unchanged: only the marker is added
    marker = json.loads(all_keys(etcd, prefix)[(prefix + "/deployment").encode()])
    assert marker["deployment"] == "" and marker["prefix"] == prefix
    # A named run must claim it explicitly.
    assert "holds an unnamed deployment" in error_of(open_etcd(etcd.endpoints_text, prefix, deployment="prod").load)


@pytest.mark.parametrize("name", ["it's", "tab\there", "x" * 201])
def test_deployment_option_is_checked(name):
    with pytest.raises(StorageError, match="option deployment"):
        open_etcd("http://127.0.0.1:1", "/p", deployment=name)


def test_relabel_between_load_and_write_refuses_the_write(etcd, prefix):
    inventory = build_inventory(3)
    open_etcd(etcd.endpoints_text, prefix, deployment="a").write(inventory)
    run = open_etcd(etcd.endpoints_text, prefix, deployment="a")
    run.load()
    assert "it is now deployment 'b'" in open_etcd(etcd.endpoints_text, prefix, deployment="b").storage.adopt()
    message = error_of(lambda: run.write(changed(inventory, 1)))
    assert "deployment marker" in message and "nothing was written" in message
    assert open_etcd(etcd.endpoints_text, prefix, deployment="b").load() == inventory
    # Run again, as the line says: the run's own name is now refused, before anything is read.
    assert "holds deployment 'b'" in error_of(run.load)


# -- damaged versions are repairable as the error says ----------------------------------------

def _two_versions(etcd, prefix) -> tuple[dict, dict]:
    first, second = build_inventory(6, seed=1), build_inventory(6, seed=1)
    second["all"]["vars"]["second"] = True
    backend = open_etcd(etcd.endpoints_text, prefix)
    backend.write(first)
    backend.load()
    backend.write(second)
    return first, second


def _damage(etcd, prefix, what: str) -> None:
    keys = data_keys(etcd, prefix)
    if what == "host":
        victim = next(k for k in keys if b"/host/compute0002" in k)
        put_raw(etcd, victim, b'{"edited": "by hand"}')
    elif what == "index":
        victim = next(k for k in keys if b"/index/parts" in k)
        put_raw(etcd, victim, b"{}")
    elif what == "missing-part":
        delete_raw(etcd, next(k for k in keys if b"/group/" in k))
    elif what == "deep-manifest":      # 200 KB of brackets: past the JSON decoder's own recursion limit
        put_raw(etcd, prefix + "/manifest", DEEP_BRACKETS)
    elif what == "nested-manifest":    # JSON the decoder takes, but deeper than any manifest
        put_raw(etcd, prefix + "/manifest", NESTED_JSON)
    else:
        put_raw(etcd, prefix + "/manifest", b"not json")


DEEP_BRACKETS = b"[" * 100_000 + b"]" * 100_000
NESTED_JSON = b'{"a":' * 150 + b"1" + b"}" * 150
HAND_WRITTEN = ("manifest", "deep-manifest", "nested-manifest")


@pytest.mark.parametrize("what", ["host", "index", "missing-part", *HAND_WRITTEN])
def test_damaged_current_version_is_restored_as_the_error_says(etcd, prefix, tmp_path, what):
    first, second = _two_versions(etcd, prefix)
    _damage(etcd, prefix, what)
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    assert f"{shlex.join(MANAGE_HERE)} --restore VERSION" in message and "--history" in message
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    listed = manage(ini, "--history", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    versions = [row["version"] for row in json.loads(listed.stdout)]
    readable = [row["version"] for row in json.loads(listed.stdout) if not row["summary"].startswith("cannot")]
    # etcd keeps each version as it was written: a part changed by hand later does not
    # touch the listed versions; a hand-written manifest is a version of its own.
    assert versions[:-1] == readable[:len(versions) - 1]
    assert (versions[-1] in readable) is (what not in HAND_WRITTEN)
    restore = quoted_commands(message)[0]
    result = run_advice(restore, ini, {"VERSION": readable[-1]})
    assert result.returncode == 0, result.stderr
    assert open_etcd(etcd.endpoints_text, prefix).load() == second
    # Nothing damaged is left behind, and nothing unreferenced.
    assert len(data_keys(etcd, prefix)) == expected_key_count(first)


@pytest.mark.parametrize("what", ["host", "index", "deep-manifest"])
def test_damaged_current_version_is_replaced_by_a_forced_import(etcd, prefix, tmp_path, what):
    _, second = _two_versions(etcd, prefix)
    _damage(etcd, prefix, what)
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    import_as_printed(etcd, prefix, tmp_path, quoted_commands(message)[1], second)


def test_deep_manifest_is_one_line_for_every_command_and_the_repairs_work(etcd, prefix, tmp_path):
    """Issue 22.2: a manifest of 200 KB of brackets once failed every run, --history, --restore and --import."""
    _, second = _two_versions(etcd, prefix)
    _damage(etcd, prefix, "deep-manifest")
    before = all_keys(etcd, prefix)
    revision = etcd.keys(prefix + "/manifest")[(prefix + "/manifest").encode()]["mod_revision"]
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    run = run_script(config_dir, ini=ini)
    assert run.returncode == 1 and run.stdout == "" and len(run.stderr.splitlines()) == 1, run.stderr
    assert f"{prefix}/manifest on {etcd.endpoints_text} (revision {revision}): nests lists or objects more than " \
        "100 levels deep" in run.stderr and "--restore VERSION" in run.stderr and "unexpected" not in run.stderr
    assert all_keys(etcd, prefix) == before
    table = manage(ini, "--history")
    assert table.returncode == 0 and table.stderr == "", table.stderr
    assert f"| {revision} " in table.stdout and "cannot be read" in table.stdout
    listed = json.loads(manage(ini, "--history", "--format", "json").stdout)
    assert listed[-1]["version"] == str(revision) and "nests lists or objects" in listed[-1]["summary"]
    # The advice as printed, with the last readable version.
    restore = quoted_commands(run.stderr)[0]
    done = run_advice(restore, ini, {"VERSION": listed[-2]["version"]})
    assert done.returncode == 0, done.stderr
    assert open_etcd(etcd.endpoints_text, prefix).load() == second
    assert run_script(config_dir, ini=ini).returncode == 0


def test_deep_part_with_matching_digests_is_damage_and_restored(etcd, prefix, tmp_path):
    """A writer that recomputes every digest (anyone with write access can) gets no further than damage."""
    _, second = _two_versions(etcd, prefix)
    keys = all_keys(etcd, prefix)
    manifest = json.loads(keys[(prefix + "/manifest").encode()])
    tag, _, chunks = manifest["index"]
    index_key = (prefix + f"/data/{tag}/index/parts").encode()
    index = json.loads(keys[index_key])
    row = next(r for r in index["parts"] if r[0] == "host")
    host_key = (prefix + f"/data/{row[2]}/host/{row[1]}").encode()
    row[3] = digest(NESTED_JSON)
    put_raw(etcd, host_key, NESTED_JSON)
    new_index = dumps(index)
    put_raw(etcd, index_key, new_index)
    manifest["index"] = [tag, digest(new_index), chunks]
    put_raw(etcd, prefix + "/manifest", dumps(manifest))
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    assert f"host {row[1]!r}: nests lists or objects more than 100 levels deep" in message
    assert "--restore VERSION" in message
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    listed = json.loads(manage(ini, "--history", "--format", "json").stdout)
    assert "nests lists or objects" in listed[-1]["summary"]
    # Versions are etcd revisions: the one before the hand-made ones holds the second inventory.
    good = [r["version"] for r in listed if not r["summary"].startswith("cannot")]
    result = run_advice(quoted_commands(message)[0], ini, {"VERSION": good[-1]})
    assert result.returncode == 0, result.stderr
    assert open_etcd(etcd.endpoints_text, prefix).load() == second
    assert len(data_keys(etcd, prefix)) == expected_key_count(second)


def test_an_endpoint_answering_deep_json_is_one_line(prefix):
    """Not etcd (or a hostile man in the middle of http://): its answer goes through the bounded reader too."""
    import http.server
    import threading

    class Deep(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(len(DEEP_BRACKETS)))
            self.end_headers()
            self.wfile.write(DEEP_BRACKETS)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        message = error_of(open_etcd(endpoint, prefix).load)
        assert f"{endpoint} answered HTTP 200 without JSON etcd could have sent on /v3/kv/range" in message
        assert "nests lists or objects more than 100 levels deep" in message and "etcd v3 client URL" in message
    finally:
        server.shutdown()
        server.server_close()


def test_a_stored_inventory_of_the_wrong_shape_names_the_prefix_and_version(etcd, prefix, tmp_path):
    """Issue 21.7: the refusal says where the inventory came from: etcd endpoints, prefix and version."""
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    good = run_script(config_dir, ini=ini)
    assert good.returncode == 0, good.stderr
    open_etcd(etcd.endpoints_text, prefix).write({"_meta": {"hostvars": {"h1": "not a mapping"}}})
    revision = etcd.keys(prefix + "/manifest")[(prefix + "/manifest").encode()]["mod_revision"]
    before = all_keys(etcd, prefix)
    run = run_script(config_dir, ini=ini)
    assert run.returncode == 1 and run.stdout == "" and len(run.stderr.splitlines()) == 1, run.stderr
    assert (f"storage backend etcd: the inventory loaded from etcd {etcd.endpoints_text} prefix {prefix} version "
            f"{revision}: _meta.hostvars.h1 is a str") in run.stderr
    assert all_keys(etcd, prefix) == before
    # The advice as printed: the tool's --history, then --restore of the version before.
    tool = re.search(r"\((\S+ --config \S+) --history, then --restore VERSION\)", run.stderr).group(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = ini

    def printed(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *shlex.split(tool), *args], capture_output=True, text=True,
                              env=env, timeout=120)

    listed = json.loads(printed("--history", "--format", "json").stdout)
    assert listed[-1]["version"] == str(revision)
    restored = printed("--restore", listed[-2]["version"])
    assert restored.returncode == 0, restored.stderr
    again = run_script(config_dir, ini=ini)
    assert again.returncode == 0 and again.stderr == "" and again.stdout == good.stdout, again.stderr


def test_current_is_a_version_name_on_etcd(etcd, prefix, tmp_path):
    first, second = _two_versions(etcd, prefix)
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    oldest = json.loads(manage(ini, "--history", "--format", "json").stdout)[0]["version"]
    diff = manage(ini, "--diff", oldest, "current", "--format", "json")
    assert diff.returncode == 0, diff.stderr
    assert json.loads(diff.stdout)["changes"]["all_vars_changed"] is True
    same = manage(ini, "--restore", "current")
    assert same.returncode == 0 and "is the current inventory already" in same.stdout, same.stderr
    back = manage(ini, "--restore", oldest)
    assert back.returncode == 0, back.stderr
    assert json.loads(manage(ini, "--diff", "current", oldest, "--format", "json").stdout)["changes"] == \
        json.loads(manage(ini, "--diff", oldest, oldest, "--format", "json").stdout)["changes"]
    assert open_etcd(etcd.endpoints_text, prefix).load() == first


# -- a deleted manifest ------------------------------------------------------------------------

def _deleted_manifest(etcd, prefix, n_hosts: int = 40) -> tuple[dict, dict]:
    first = build_inventory(n_hosts, seed=3)
    second = json.loads(json.dumps(first))
    del second["_meta"]["hostvars"]["compute0001"]        # a host removed on purpose
    for group in second.values():
        if isinstance(group, dict) and "compute0001" in group.get("hosts", []):
            group["hosts"].remove("compute0001")
    backend = open_etcd(etcd.endpoints_text, prefix)
    backend.write(first)
    backend.load()
    backend.write(second)
    delete_raw(etcd, prefix + "/manifest")
    return first, second


def test_deleted_manifest_is_refused_not_regenerated(etcd, prefix, tmp_path):
    _, second = _deleted_manifest(etcd, prefix)
    before = all_keys(etcd, prefix)
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    result = run_script(config_dir, ini=ini_for(tmp_path, etcd.endpoints_text, prefix))
    assert result.returncode == 1 and result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "has no manifest" in result.stderr and f"{expected_key_count(second)} of its stored keys remain" \
        in result.stderr
    assert all_keys(etcd, prefix) == before, "the run wrote over the leftovers"


def test_deleted_manifest_restore_command_brings_back_the_last_version(etcd, prefix, tmp_path):
    _, second = _deleted_manifest(etcd, prefix)
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    restore = quoted_commands(message)[0]
    assert restore[:4] == [*MANAGE_HERE, "--restore"] and restore[4].isdigit()
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    history = manage(ini, "--history", "--format", "json")
    assert history.returncode == 0 and json.loads(history.stdout)[-1]["version"] == restore[4], history.stderr
    result = run_advice(restore, ini)
    assert result.returncode == 0, result.stderr
    back = open_etcd(etcd.endpoints_text, prefix).load()
    assert back == second and "compute0001" not in back["_meta"]["hostvars"]
    assert len(data_keys(etcd, prefix)) == expected_key_count(second)


def test_deleted_manifest_whose_last_value_was_damaged_points_to_the_history(etcd, prefix, tmp_path):
    _, second = _two_versions(etcd, prefix)
    put_raw(etcd, prefix + "/manifest", b"edited by hand")
    delete_raw(etcd, prefix + "/manifest")
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    assert "is damaged" in message
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix)
    listed = json.loads(manage(ini, "--history", "--format", "json").stdout)
    good = [row["version"] for row in listed if not row["summary"].startswith("cannot")]
    assert listed[-1]["version"] not in good
    result = run_advice(quoted_commands(message)[0], ini, {"VERSION": good[-1]})
    assert result.returncode == 0, result.stderr
    assert open_etcd(etcd.endpoints_text, prefix).load() == second
    assert len(data_keys(etcd, prefix)) == expected_key_count(second)


def test_deleted_manifest_whose_versions_were_compacted_offers_the_import(prefix, tmp_path):
    skip_without_etcd()
    with EtcdCluster(1) as cluster:
        _deleted_manifest(cluster, prefix, n_hosts=5)
        open_etcd(cluster.endpoints_text, prefix).storage.client.compact(cluster.revision())
        message = error_of(open_etcd(cluster.endpoints_text, prefix).load)
        assert "etcd no longer has its versions" in message and "--restore" not in message
        # Without the last index, only keys under recorded tags are provably ours: all of them here.
        import_as_printed(cluster, prefix, tmp_path, quoted_commands(message)[0], build_inventory(2, seed=8))


def test_deleted_manifest_import_command_replaces_the_leftovers(etcd, prefix, tmp_path):
    _deleted_manifest(etcd, prefix)
    message = error_of(open_etcd(etcd.endpoints_text, prefix).load)
    import_as_printed(etcd, prefix, tmp_path, quoted_commands(message)[1], build_inventory(2, seed=8))


# -- staged parts of an interrupted write --------------------------------------------------------

def kill_a_writer_mid_write(etcd, prefix: str) -> None:
    """A real process that dies (SIGKILL) once it has staged parts of a large write."""
    proc = _spawn("worker_stall_mid_write", etcd.endpoints_text, prefix, 300, 7)
    try:
        assert proc.stdout.readline().strip() == "staged", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("next_write", ["unchanged", "changing"])
def test_parts_of_an_interrupted_write_go_with_the_next_write_of_any_kind(etcd, prefix, next_write):
    before = build_inventory(60, seed=1)
    open_etcd(etcd.endpoints_text, prefix).write(before)
    kill_a_writer_mid_write(etcd, prefix)
    assert len(data_keys(etcd, prefix)) > expected_key_count(before)
    backend = open_etcd(etcd.endpoints_text, prefix, lock_timeout=20)
    with backend.lock():
        current = backend.load()
        assert current == before
        backend.write(current if next_write == "unchanged" else changed(current, 1))
    stored = open_etcd(etcd.endpoints_text, prefix).load()
    assert len(data_keys(etcd, prefix)) == expected_key_count(stored)
    assert not [k for k in all_keys(etcd, prefix) if k.startswith((prefix + "/tags/").encode())
                and b"staging" in all_keys(etcd, prefix)[k]]


def test_interrupted_first_write_is_not_mistaken_for_a_deleted_manifest(etcd, prefix):
    kill_a_writer_mid_write(etcd, prefix)
    backend = open_etcd(etcd.endpoints_text, prefix, lock_timeout=20)
    with backend.lock():
        assert backend.load() is None
        backend.write(build_inventory(2))
    assert len(data_keys(etcd, prefix)) == expected_key_count(build_inventory(2))


@pytest.mark.once
def test_store_of_an_earlier_release_is_cleaned_as_it_is_replaced(etcd, prefix):
    """Without tag records or marker (as an earlier release stored it), the parts the index
    references are still known to be ours: replaced ones are deleted, nothing else."""
    old = build_inventory(150, seed=1)
    open_etcd(etcd.endpoints_text, prefix).write(old)
    for key in all_keys(etcd, prefix):
        if key.startswith((prefix + "/tags/").encode()) or key == (prefix + "/deployment").encode():
            delete_raw(etcd, key)
    put_raw(etcd, prefix + "/data/1-0badc0de/host/left-by-a-crash", b"{}")   # unprovable: stays
    new = build_inventory(150, seed=2)                  # most parts change: a staged write
    backend = open_etcd(etcd.endpoints_text, prefix)
    assert backend.load() == old
    backend.write(new)
    assert open_etcd(etcd.endpoints_text, prefix).load() == new
    assert len(data_keys(etcd, prefix)) == expected_key_count(new) + 1
    records = [k for k in all_keys(etcd, prefix) if k.startswith((prefix + "/tags/").encode())]
    used = {k.split(b"/data/")[1].split(b"/")[0] for k in data_keys(etcd, prefix)} - {b"1-0badc0de"}
    assert {k.rsplit(b"/", 1)[1] for k in records} <= used
