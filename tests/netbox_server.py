"""The real NetBox the tests run against (scripts/netbox-server.py), and helpers to look at it.

The session fixture ``netbox`` gives its URL and tokens. It comes from, in order:

* ``$OSA_TEST_NETBOX``: the state file of a server started elsewhere (``.ci/run`` starts one in the
  background when CI begins, so its cold start overlaps the suites). The fixture waits, at most
  ``$OSA_TEST_NETBOX_WAIT`` seconds (default 1800), for the file to say ready or failed;
* ``OSA_TEST_NETBOX_START=1``: the fixture starts one with the script (minutes on a cold cache, seconds
  after) and stops it when the session ends, unless another session still uses it or it was started by hand;
* else every NetBox test is skipped, with the command that starts one.

A server that cannot start skips the NetBox tests with its reason. Several suites (one per Python
version) share one server, so every test names its objects with its own prefix (``unique_prefix``) and
deletes them afterwards (``NetBoxObjects``, the ``netbox_objects`` fixture).

Both fixtures are registered once, in conftest.py, for every test module; a module that imported them
would get a second instance of the session fixture.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests

from helpers import ROOT
from osa_inventory.bounded import parse_json, read_file
from osa_inventory.errors import InventoryError

SCRIPT = os.path.join(ROOT, "scripts", "netbox-server.py")
_SPEC = importlib.util.spec_from_file_location("netbox_server_script", SCRIPT)
script = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(script)

DEFAULT_WAIT = 1800.0  # a cold start on a busy CI machine, with four suites beside it
START_HINT = (f"start one with '{os.path.relpath(SCRIPT, os.getcwd())} start' and set OSA_TEST_NETBOX to the "
              "file its 'path' command prints, or set OSA_TEST_NETBOX_START=1 to let the tests start it")


class NetBoxUnavailable(Exception):
    """Why there is no NetBox to test against (the skip reason)."""


@dataclass
class NetBox:
    """A running NetBox: where it listens and the tokens of its two users."""

    url: str
    write_token: str
    read_token: str
    versions: dict[str, str] = field(default_factory=dict)
    state_file: str = ""
    admin_user: str = "admin"
    reader_user: str = "reader"
    lease_fd: int | None = None  # this session's shared lock on a server it started (see _started_for_session)

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def client(self, token: str | None = None) -> NetBoxClient:
        """A client with ``token`` (default: the write token)."""
        return NetBoxClient(self.api, self.write_token if token is None else token)

    def reader(self) -> NetBoxClient:
        return NetBoxClient(self.api, self.read_token)


class NetBoxClient:
    """requests with the token: ``get("dcim/sites/", params=...)`` and so on, paths below /api/."""

    def __init__(self, api: str, token: str | None, timeout: float = 60.0):
        self.api = api.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # loopback: no proxy or .netrc from the environment
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.api}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def count(self, path: str, **params: Any) -> int:
        """How many objects a list endpoint holds for ``params`` (one page of one)."""
        resp = self.get(path, params={**params, "limit": 1, "brief": 1})
        assert resp.status_code == 200, resp.text
        return resp.json()["count"]


def unique_prefix(stem: str = "osa") -> str:
    """A name prefix no other test, session or Python version uses: lower-case letters, digits and
    hyphens (valid in names and slugs), 18 characters, which leaves 46 of a VM name's 64."""
    return f"{stem[:4]}-{os.getpid() % 100000:05d}-{uuid.uuid4().hex[:8]}"


class NetBoxObjects:
    """Objects one test creates, deleted newest first when it ends (the ``netbox_objects`` fixture)."""

    def __init__(self, client: NetBoxClient):
        self.client = client
        self.prefix = unique_prefix()
        self._made: list[tuple[str, int]] = []

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def create(self, endpoint: str, data: dict) -> dict:
        """POST one object to ``endpoint`` (e.g. "dcim/sites/"), expecting 201; it is deleted at the end."""
        resp = self.client.post(endpoint, json=data)
        assert resp.status_code == 201, f"POST {endpoint}: {resp.status_code} {resp.text[:500]}"
        made = resp.json()
        self.adopt(endpoint, made["id"])
        return made

    def adopt(self, endpoint: str, object_id: int) -> None:
        """Delete this object at the end too (made by a bulk request the test sent itself)."""
        self._made.append((endpoint, object_id))

    def site(self, suffix: str = "site") -> dict:
        name = self.name(suffix)
        return self.create("dcim/sites/", {"name": name, "slug": name})

    def cluster(self, suffix: str = "cluster") -> dict:
        """A cluster of its own cluster type, so VM names never meet another test's."""
        name = self.name(suffix)
        kind = self.create("virtualization/cluster-types/", {"name": name, "slug": name})
        return self.create("virtualization/clusters/", {"name": name, "type": kind["id"]})

    def cleanup(self) -> list[str]:
        """Delete everything made, newest first; what could not be deleted (a missing one is fine)."""
        left = []
        for endpoint, object_id in reversed(self._made):
            resp = self.client.delete(f"{endpoint}{object_id}/")
            if resp.status_code not in (204, 404):
                left.append(f"{endpoint}{object_id}/: {resp.status_code} {resp.text[:200]}")
        self._made.clear()
        return left


# ---------------------------------------------------------------- where the server comes from

def read_state(path: str) -> dict | None:
    """The state file's content, None while it does not exist; unreadable ones say why."""
    try:
        data = read_file(path, limit=1024 * 1024, follow_links=False)
    except FileNotFoundError:
        return None
    except InventoryError as exc:
        raise NetBoxUnavailable(str(exc)) from None
    try:
        state = parse_json(data, shown=path)
    except InventoryError as exc:
        raise NetBoxUnavailable(str(exc)) from None
    if not isinstance(state, dict):
        raise NetBoxUnavailable(f"{path}: is not a JSON object; it is not a state file of scripts/netbox-server.py")
    return state


def wait_for_state(path: str, timeout: float, *, poll: float = 2.0, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> dict:
    """The state once it says ready; NetBoxUnavailable with the reason once it says failed or stopped,
    once the start that writes it has died, or after ``timeout`` seconds."""
    deadline = clock() + timeout
    while True:
        state = read_state(path)
        status = state.get("status") if state else None
        if status == "ready":
            return state
        if status == "failed":
            raise NetBoxUnavailable(f"NetBox failed to start: {state.get('reason')}")
        if status == "stopped":
            raise NetBoxUnavailable(f"NetBox was stopped ({path})")
        pids = state.get("pids") if state and isinstance(state.get("pids"), dict) else {}
        if status == "starting" and not script.alive(pids.get("starter")):
            raise NetBoxUnavailable(f"the NetBox start (pid {(pids.get('starter') or {}).get('pid')}) died "
                                    f"without saying why; see {os.path.join(os.path.dirname(path), 'logs')}")
        if clock() >= deadline:
            said = f"it says {status!r}" if state else "it does not exist"
            raise NetBoxUnavailable(f"NetBox is not ready after {timeout:.0f} s ({path}: {said}); "
                                    "set OSA_TEST_NETBOX_WAIT to wait longer")
        sleep(poll)


def netbox_from_state(state: dict) -> NetBox:
    """The server a ready state describes, once it answers its write token."""
    try:
        netbox = NetBox(url=state["url"], write_token=state["write_token"], read_token=state["read_token"],
                        versions=state.get("versions") or {}, state_file=state.get("state_file", ""),
                        admin_user=state.get("admin_user", "admin"), reader_user=state.get("reader_user", "reader"))
    except (KeyError, TypeError) as exc:
        raise NetBoxUnavailable(f"the NetBox state file lacks {exc}; "
                                "it is not from this scripts/netbox-server.py") from None
    try:
        resp = netbox.client().get("status/", timeout=30)
    except requests.RequestException as exc:
        raise NetBoxUnavailable(f"NetBox at {netbox.url} does not answer: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise NetBoxUnavailable(f"NetBox at {netbox.url} answered /api/status/ with HTTP {resp.status_code}")
    return netbox


def run_script(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def netbox(pytestconfig) -> NetBox:
    """The shared NetBox (see the module's docstring); skips every test that uses it when there is none."""
    wait = float(os.environ.get("OSA_TEST_NETBOX_WAIT") or DEFAULT_WAIT)
    state_file = os.environ.get("OSA_TEST_NETBOX")
    if state_file:
        try:
            server = netbox_from_state(wait_for_state(state_file, wait))
        except NetBoxUnavailable as exc:
            pytest.skip(str(exc))
        yield server
        return
    if os.environ.get("OSA_TEST_NETBOX_START") != "1":
        pytest.skip(f"no NetBox to test against: {START_HINT}")
    yield from _started_for_session(pytestconfig)


def _started_for_session(pytestconfig):
    """Start the server for this session (sharing it with any other), and stop it when no session is left."""
    paths = script.current_paths()
    os.makedirs(paths.base, mode=0o711, exist_ok=True)
    lease = os.open(paths.users_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lease, fcntl.LOCK_SH)  # "this session uses it": stop --if-unused leaves it running
    try:
        capture = pytestconfig.pluginmanager.getplugin("capturemanager")
        # Shown as it happens: a cold start takes minutes.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\nstarting NetBox for the tests ({paths.base}; minutes when the cache is cold) ...", flush=True)
            started = run_script("start", "--for-tests")
            print(started.stdout.strip() or started.stderr.strip(), flush=True)
        try:
            netbox = netbox_from_state(wait_for_state(paths.state, 0))
        except NetBoxUnavailable as exc:
            pytest.skip(f"{exc} ({started.stderr.strip()})" if started.returncode else str(exc))
        netbox.lease_fd = lease
        yield netbox
    finally:
        os.close(lease)
        run_script("stop", "--if-unused", timeout=300)


@pytest.fixture
def netbox_objects(netbox) -> NetBoxObjects:
    """A test's own name prefix and the objects it creates, deleted when it ends (a leftover fails it)."""
    objects = NetBoxObjects(netbox.client())
    yield objects
    left = objects.cleanup()
    assert not left, f"could not delete: {left}"
