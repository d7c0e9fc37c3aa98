"""A Craton API v1 look-alike for tests, written from the facts in /work/shared/docs/craton-api.md.

``CratonApp`` is a WSGI application that *enforces* those facts (auth headers,
400 on unknown fields and query parameters, limit 10..100, markers, 409 on
duplicate names, the known 500s, the invalid-address poison, resolved
variables, ``{"message", "status"}`` errors), so a client that passes against
it respects the real API. It also reproduces where the real service (on its
SQLite storage) departs from its own rules: a number at the top level of a
variable value comes back as SQLite stores it (``2.0`` as ``2``, ``-0.0`` as
``0``, integers past 64 bits as floats); ``DELETE`` of a missing host is 204;
deleting a region deletes its hosts; a POST without ``Content-Type:
application/json`` and an empty variable key are 400; admin listings are not
limited to the caller's project; answers are pretty-printed with sorted keys.
Only projects, users and project variables need an admin (401 otherwise);
clouds, regions, hosts, their variables and labels are open to every user of
the project, as on the real server.
It has test knobs: a request log, injected failures (status codes with
``Retry-After``), slow answers, a server that stops answering after K
requests, and a client killed when its K-th request arrives.

``CratonServer`` serves it with ``wsgiref`` on 127.0.0.1 (HTTP/1.0, one
request per connection, one request handled at a time, like the real server;
optional TLS) in a background thread; ``craton_server`` is the pytest fixture.
"""

from __future__ import annotations

import datetime as _dt
import io
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import pytest

from tls_certs import make_pki

UNAUTHENTICATED = {"message": "The request could not be authenticated.", "status": 401}
DROP = "craton_test.drop"
MODIFYING = ("POST", "PUT", "DELETE")
PAGING = {"limit", "marker", "sort_keys", "sort_dir"}
FALSE_WORDS = {"n", "no", "false", "", "0"}
UUID_RE = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I)
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


@dataclass(frozen=True)
class Kind:
    """One resource type: its fields, what POST/PUT accept, its list filters and name scope."""

    plural: str
    singular: str
    fields: tuple
    required: tuple
    optional: tuple
    updatable: tuple
    filters: tuple
    scope: str | None  # the parent field names are unique within (None: the project)


KINDS = {
    "clouds": Kind("clouds", "cloud", ("created_at", "id", "name", "note", "project_id", "updated_at"),
                   ("name",), ("note", "variables"), ("name", "note"),
                   ("name", "id", "vars", "details", "resolved-values"), None),
    "regions": Kind("regions", "region",
                    ("cloud_id", "created_at", "id", "name", "note", "project_id", "updated_at"),
                    ("name", "cloud_id"), ("note", "variables"), ("name", "note"),
                    ("name", "id", "cloud_id", "vars", "details", "resolved-values"), "cloud_id"),
    "cells": Kind("cells", "cell",
                  ("cloud_id", "created_at", "id", "name", "note", "project_id", "region_id", "updated_at"),
                  ("name", "region_id", "cloud_id"), ("note", "variables"), ("name", "note"),
                  ("name", "id", "region_id", "cloud_id", "vars", "details", "resolved-values"), "region_id"),
    "hosts": Kind("hosts", "device",
                  ("active", "cell_id", "cloud_id", "created_at", "device_type", "id", "ip_address", "name",
                   "note", "parent_id", "project_id", "region_id", "updated_at"),
                  ("name", "cloud_id", "region_id", "ip_address", "device_type"),
                  ("cell_id", "parent_id", "active", "note", "labels", "variables"),
                  ("active", "note", "ip_address", "name", "device_type", "parent_id"),
                  ("name", "id", "region_id", "cloud_id", "cell_id", "device_type", "label", "ip_address",
                   "vars", "details", "resolved-values"), "region_id"),
}
INT_FIELDS = {"id", "cloud_id", "region_id", "cell_id", "parent_id"}
DEVICE_FILTERS = ("parent_id", "descendants", "region_id", "cloud_id", "cell_id", "active", "details",
                  "resolved-values")


class ApiError(Exception):
    """An error answer: ``{"message": ..., "status": ...}``."""

    def __init__(self, status: int, message: str, headers: list | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def invalid(message: str) -> ApiError:
    return ApiError(400, "The request included the following errors:\n- " + message)


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def unknown_error() -> ApiError:
    return ApiError(500, "An unknown exception occurred")


def fault_error(fault: Fault) -> ApiError:
    return ApiError(fault.status, fault.message, [("Retry-After", fault.retry_after)] if fault.retry_after else [])


def truthy(value: str) -> bool:
    """Craton's query booleans: n, no, false, '', 0 (any case) are false."""
    return value.strip().lower() not in FALSE_WORDS


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def sqlite_value(value: Any) -> Any:
    """What the real server gives back for a variable value (its JSON column on SQLite).

    The column has numeric affinity: when the JSON text of the whole value is
    a number, SQLite stores it as an integer if it is a whole number within
    64 bits, else as a float. Anything else (strings, lists, objects) keeps
    its JSON text and comes back exactly.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int):
        return value if -2 ** 63 <= value < 2 ** 63 else float(value)
    if value.is_integer() and -2 ** 63 < value < 2 ** 63:
        return int(value)
    return value


def stored_variables(data: dict) -> dict:
    """A variables object as the real server stores it: a copy, top-level numbers as SQLite keeps them."""
    return {key: sqlite_value(value) for key, value in json.loads(json.dumps(data)).items()}


def _valid_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class Logged:
    """One request as the server saw it (status 0: dropped without an answer; size: answer body bytes)."""

    method: str
    path: str
    query: str
    status: int
    size: int = 0


@dataclass
class Fault:
    """An injected answer for the next ``times`` matching requests."""

    status: int
    times: int
    method: str | None
    path: re.Pattern | None
    retry_after: str | None
    message: str
    apply: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


class CratonApp:
    """The WSGI application; see the module docstring. Data lives in memory, guarded by one lock."""

    def __init__(self, auth: str = "local"):
        if auth not in ("local", "keystone"):
            raise ValueError(auth)
        self.auth = auth
        self.lock = threading.RLock()
        self.projects: dict[str, dict] = {}
        self.users: dict[tuple[str, str], dict] = {}
        self.tokens: dict[str, str] = {}
        self.tables: dict[str, dict[int, dict]] = {k: {} for k in KINDS}
        self._next_id = 1
        # test knobs
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.slowness: list[dict] = []
        self.dead = False
        self._die_budget: int | None = None
        self._apply_last = False
        self._die_all = False
        self._kill: dict | None = None
        self._lose_every = False
        self._lost: set = set()
        self.woken = threading.Event()  # set on stop: ends injected delays

    # -- set-up helpers ------------------------------------------------------

    def add_project(self, name: str = "osa") -> str:
        pid = str(uuid.uuid4())
        with self.lock:
            self.projects[pid] = {"id": pid, "name": name, "variables": {}, "created_at": _now()}
        return pid

    def add_user(self, project_id: str, name: str, admin: bool = False, api_key: str | None = None) -> str:
        key = api_key or "key-" + uuid.uuid4().hex
        with self.lock:
            self.users[(project_id, name)] = {"name": name, "api_key": key, "is_admin": admin,
                                              "project_id": project_id}
        return key

    def add_token(self, project_id: str, token: str | None = None) -> str:
        token = token or "tok-" + uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = project_id
        return token

    # -- knobs ---------------------------------------------------------------

    def inject(self, status: int, times: int = 1, method: str | None = None, path: str | None = None,
               retry_after: float | str | None = None, message: str | None = None, apply: bool = False) -> None:
        """Answer the next ``times`` matching requests with ``status`` (before auth, like a proxy).

        With ``apply`` the request is carried out first and only its answer is
        replaced (a proxy timing out on a request that did work).
        """
        with self.lock:
            self.faults.append(Fault(status, times, method, re.compile(path) if path else None,
                                     None if retry_after is None else str(retry_after),
                                     message or REASONS.get(status, "Error"), apply))

    def slow(self, seconds: float, times: int | None = None, method: str | None = None,
             path: str | None = None) -> None:
        """Delay matching answers by ``seconds`` (``times`` None: every one)."""
        with self.lock:
            self.slowness.append({"seconds": seconds, "times": times, "method": method,
                                  "path": re.compile(path) if path else None})

    def die_after(self, k: int, apply_last: bool = False, every_request: bool = False) -> None:
        """Serve ``k`` more modifying requests (any requests with ``every_request``), then drop
        every request without an answer.

        With ``apply_last`` the next such request is carried out before the
        answer is lost (a server that dies after committing).
        """
        with self.lock:
            self._die_budget, self._apply_last, self._die_all = k, apply_last, every_request

    def kill_client_at(self, k: int, pid: int, apply: bool = False, method: str | None = None,
                       path: str | None = None) -> None:
        """SIGKILL process ``pid`` when the request after the next ``k`` matching ones arrives (any
        request unless ``method``/``path`` narrow it) and drop that request; with ``apply`` it is
        carried out first (the client dies awaiting the answer)."""
        with self.lock:
            self._kill = {"budget": k, "pid": pid, "apply": apply, "method": method,
                          "path": re.compile(path) if path else None}

    def lose_every_answer_once(self) -> None:
        """Carry out every modifying request but drop its answer the first time it is seen
        (a retry of the same method and path then gets a real answer)."""
        with self.lock:
            self._lose_every, self._lost = True, set()

    def revive(self) -> None:
        with self.lock:
            self.dead, self._die_budget, self._kill = False, None, None

    def clear_knobs(self) -> None:
        with self.lock:
            self.faults.clear()
            self.slowness.clear()
            self.dead, self._die_budget, self._kill, self._lose_every = False, None, None, False

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    def counts(self) -> Counter:
        """Requests per method since the last reset (dropped ones included)."""
        with self.lock:
            return Counter(entry.method for entry in self.log)

    def modifying(self) -> int:
        return sum(n for m, n in self.counts().items() if m in MODIFYING)

    # -- WSGI ----------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        query = environ.get("QUERY_STRING", "")
        entry = Logged(method, path, query, 0)
        with self.lock:
            self.log.append(entry)
            delay = self._delay_for(method, path)
        if delay:
            self.woken.wait(delay)
        with self.lock:
            drop, apply_then_drop = self._dying(method, path)
            if drop and not apply_then_drop:
                environ[DROP] = True
                return []
            try:
                fault = self._fault_for(method, path)
                if fault is not None and not fault.apply:
                    raise fault_error(fault)
                status, body, headers = self._handle(environ, method, path, query)
                if fault is not None:
                    raise fault_error(fault)
            except ApiError as exc:
                status, body, headers = exc.status, {"message": exc.message, "status": exc.status}, exc.headers
            except Exception as exc:  # a bug in the look-alike must show up as a failing test, loudly
                status, body, headers = 500, {"message": f"test server bug: {exc!r}", "status": 500}, []
            entry.status = status
            if apply_then_drop:
                entry.status = 0
                environ[DROP] = True
                return []
        payload = b"" if body is None else json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
        entry.size = len(payload)
        out_headers = list(headers)
        if body is not None:
            out_headers.append(("Content-Type", "application/json"))
        start_response(f"{status} {REASONS.get(status, 'Status')}", out_headers)
        return [payload]

    def _delay_for(self, method: str, path: str) -> float:
        for rule in self.slowness:
            if (rule["method"] in (None, method)) and (rule["path"] is None or rule["path"].search(path)):
                if rule["times"] is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                return rule["seconds"]
        return 0.0

    def _dying(self, method: str, path: str) -> tuple[bool, bool]:
        """(drop this request, but carry it out first)."""
        if self.dead:
            return True, False
        kill = self._kill
        if kill is not None and kill["method"] in (None, method) and (kill["path"] is None
                                                                      or kill["path"].search(path)):
            if self._kill["budget"] == 0:
                kill, self._kill = self._kill, None
                os.kill(kill["pid"], signal.SIGKILL)
                return True, kill["apply"]
            self._kill["budget"] -= 1
        if (method in MODIFYING or self._die_all) and self._die_budget is not None:
            if self._die_budget == 0:
                self.dead = True
                return True, self._apply_last
            self._die_budget -= 1
        if self._lose_every and method in MODIFYING and (method, path) not in self._lost:
            self._lost.add((method, path))
            return True, True
        return False, False

    def _fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    # -- request handling ------------------------------------------------------

    def _handle(self, environ: dict, method: str, path: str, query: str) -> tuple[int, Any, list]:
        pid, admin = self._authenticate(environ)
        if method == "POST" and (environ.get("CONTENT_TYPE") or "").split(";")[0].strip() != "application/json":
            raise invalid("the request has no Content-Type: application/json header")
        params = dict(parse_qsl(query, keep_blank_values=True))
        base = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}"
        ctx = Ctx(self, pid, admin, params, base, environ)
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "v1":
            raise not_found()
        parts = parts[1:]
        route = _route(parts)
        if route is None:
            raise not_found()
        handler_name, args, methods = route
        if method not in methods:
            raise ApiError(405, "Method Not Allowed")
        return getattr(ctx, f"{handler_name}_{method.lower()}")(*args)

    def _authenticate(self, environ: dict) -> tuple[str, bool]:
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if self.auth == "keystone":
            pid = self.tokens.get(token or "")
            if pid is None:
                raise ApiError(401, UNAUTHENTICATED["message"])
            return pid, False
        project = (environ.get("HTTP_X_AUTH_PROJECT") or "").strip()
        user = environ.get("HTTP_X_AUTH_USER") or ""
        if not UUID_RE.match(project):
            raise ApiError(401, UNAUTHENTICATED["message"])
        pid = str(uuid.UUID(project))
        record = self.users.get((pid, user))
        if record is None or token is None or record["api_key"] != token or pid not in self.projects:
            raise ApiError(401, UNAUTHENTICATED["message"])
        return pid, record["is_admin"]

    # -- data helpers used by Ctx ------------------------------------------------

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def _route(parts: list[str]) -> tuple[str, tuple, tuple] | None:
    """(handler name, arguments, allowed methods) for a path under /v1."""
    if len(parts) == 1:
        if parts[0] in KINDS:
            return "collection", (parts[0],), ("GET", "POST")
        if parts[0] == "devices":
            return "devices", (), ("GET",)
        if parts[0] in ("projects", "users"):
            return "admin_list", (parts[0],), ("GET", "POST")
        return None
    kind = parts[0]
    if kind == "projects":
        if len(parts) == 3 and parts[2] == "variables":
            return "project_variables", (parts[1],), ("GET", "PUT", "DELETE")
        return None
    if kind not in KINDS or not parts[1].isdigit():
        return None
    ident = int(parts[1])
    if len(parts) == 2:
        return "item", (kind, ident), ("GET", "PUT", "DELETE")
    if len(parts) == 3 and parts[2] == "variables":
        return "variables", (kind, ident), ("GET", "PUT", "DELETE")
    if len(parts) == 3 and parts[2] == "labels" and kind == "hosts":
        return "labels", (ident,), ("GET", "PUT", "DELETE")
    return None


class Ctx:
    """One authenticated request against the app's data (the app's lock is held)."""

    def __init__(self, app: CratonApp, pid: str, admin: bool, params: dict, base: str, environ: dict):
        self.app, self.pid, self.admin, self.params, self.base, self.environ = app, pid, admin, params, base, environ

    # -- parsing -------------------------------------------------------------

    def body(self) -> Any:
        raw = self.environ["wsgi.input"].read(int(self.environ.get("CONTENT_LENGTH") or 0))
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            raise invalid("the body is not valid JSON") from None

    def only_params(self, allowed: set) -> None:
        extra = sorted(set(self.params) - allowed)
        if extra:
            raise invalid(f"Additional properties are not allowed ({', '.join(map(repr, extra))} "
                          f"{'was' if len(extra) == 1 else 'were'} unexpected)")

    def flag(self, name: str, default: bool) -> bool:
        return truthy(self.params[name]) if name in self.params else default

    def int_param(self, name: str) -> int | None:
        if name not in self.params:
            return None
        try:
            return int(self.params[name])
        except ValueError:
            raise invalid(f"{self.params[name]!r} is not of type 'integer' ({name})") from None

    # -- rows ------------------------------------------------------------------

    def table(self, kind: str) -> dict[int, dict]:
        return self.app.tables[kind]

    def row(self, kind: str, ident: Any, missing: Callable[[], ApiError] = not_found) -> dict:
        obj = self.table(kind).get(ident) if isinstance(ident, int) and not isinstance(ident, bool) else None
        if obj is None or obj["project_id"] != self.pid:
            raise missing()
        if kind == "hosts" and not _valid_ip(obj["ip_address"]):
            raise unknown_error()  # the real server cannot load a row with a bad address
        return obj

    def resolved(self, kind: str, obj: dict) -> dict:
        chain: list[dict] = [obj]
        if kind == "hosts":
            parent = obj.get("parent_id")
            while parent is not None:
                pobj = self.row("hosts", parent, unknown_error)
                chain.append(pobj)
                parent = pobj.get("parent_id")
        if kind in ("hosts",) and obj.get("cell_id") is not None:
            chain.append(self.row("cells", obj["cell_id"], unknown_error))
        if kind in ("hosts", "cells"):
            chain.append(self.row("regions", obj["region_id"], unknown_error))
        if kind in ("hosts", "cells", "regions"):
            chain.append(self.row("clouds", obj["cloud_id"], unknown_error))
        chain.append(self.app.projects[self.pid])
        merged: dict = {}
        for item in chain:
            for key, value in item["variables"].items():
                merged.setdefault(key, value)
        return merged

    def render(self, kind: str, obj: dict, variables: bool, resolved: bool = True) -> dict:
        out = {f: obj.get(f) for f in KINDS[kind].fields}
        out["links"] = [{"rel": "self", "href": f"{self.base}/v1/{kind}/{obj['id']}"}]
        if variables:
            out["variables"] = self.resolved(kind, obj) if resolved else dict(obj["variables"])
        return out

    # -- checks on bodies --------------------------------------------------------

    def check_fields(self, kind: Kind, data: Any, allowed: tuple, required: tuple) -> dict:
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        extra = sorted(set(data) - set(allowed))
        if extra:
            raise invalid(f"Additional properties are not allowed ({', '.join(map(repr, extra))} "
                          f"{'was' if len(extra) == 1 else 'were'} unexpected)")
        for name in required:
            if name not in data:
                raise invalid(f"'{name}' is a required property")
        for name, value in data.items():
            self.check_type(name, value)
        return data

    def check_type(self, name: str, value: Any) -> None:
        if name in INT_FIELDS:
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                value is None and name in ("cell_id", "parent_id"))
        elif name == "name":
            ok = isinstance(value, str) and 0 < len(value) <= 255
        elif name in ("ip_address", "device_type"):
            ok = isinstance(value, str) and 0 < len(value) <= 255
        elif name == "note":
            ok = value is None or isinstance(value, str)
        elif name == "active":
            ok = isinstance(value, bool)
        elif name == "labels":
            ok = isinstance(value, list) and all(isinstance(x, str) and 0 < len(x) <= 255 for x in value)
        elif name == "variables":
            ok = isinstance(value, dict) and all(0 < len(k) <= 255 for k in value)
        else:
            ok = True
        if not ok:
            raise invalid(f"{value!r} is not valid for '{name}'")

    def check_unique(self, kind: str, name: str, scope_value: Any, except_id: int | None = None) -> None:
        spec = KINDS[kind]
        for other in self.table(kind).values():
            if other["project_id"] != self.pid or other["id"] == except_id or other["name"] != name:
                continue
            if spec.scope is None or other[spec.scope] == scope_value:
                raise ApiError(409, f"A {spec.singular} with the given name already exists.")

    # -- collections -------------------------------------------------------------

    def collection_get(self, kind: str) -> tuple[int, Any, list]:
        spec = KINDS[kind]
        self.only_params(set(spec.filters) | PAGING)
        if "vars" in self.params:
            raise unknown_error()  # needs MySQL JSON functions; the reference server runs on SQLite
        if kind != "hosts" and ("name" in self.params or "id" in self.params):
            return self.get_one(kind)
        # Admin users see every project's objects in listings (the real server does not scope them).
        items = [o for o in self.table(kind).values() if self.visible(o) and self.matches(kind, o)]
        page, links = self.paginate(kind, items, f"/v1/{kind}")
        details = self.flag("details", False)
        resolved = self.flag("resolved-values", True)
        return 200, {kind: [self.render(kind, o, details, resolved) for o in page], "links": links}, []

    def visible(self, obj: dict) -> bool:
        return self.admin or obj["project_id"] == self.pid

    def get_one(self, kind: str) -> tuple[int, Any, list]:
        """Clouds, regions and cells by ``name`` or ``id``: one object looked up across the project
        (other filters ignored, no pagination), 404 when there is none, as the real server does."""
        ident = self.int_param("id")
        found = [o for o in self.table(kind).values() if o["project_id"] == self.pid
                 and ("name" not in self.params or o["name"] == self.params["name"])
                 and ("id" not in self.params or o["id"] == ident)]
        if not found:
            raise not_found()
        if len(found) > 1:
            raise unknown_error()  # the same name in two clouds: the lookup expects one row
        return 200, {kind: [self.render(kind, found[0], True)], "links": []}, []

    def matches(self, kind: str, obj: dict) -> bool:
        for name in KINDS[kind].filters:
            if name not in self.params or name in ("details", "resolved-values", "vars"):
                continue
            if name == "label":
                if self.params[name] not in obj.get("labels", []):
                    return False
            elif name in INT_FIELDS:
                if obj.get(name) != self.int_param(name):
                    return False
            elif obj.get(name) != self.params[name]:
                return False
        return True

    def paginate(self, kind: str, items: list[dict], path: str) -> tuple[list[dict], list[dict]]:
        limit = self.int_param("limit")
        if limit is None:
            limit = 30
        if not 10 <= limit <= 100:
            raise invalid(f"{limit} is not between 10 and 100 (limit)")
        keys = [k.strip() for k in self.params.get("sort_keys", "created_at,id").split(",")]
        allowed = set(KINDS[kind].fields) - {"links"}
        if not keys or any(k not in allowed for k in keys):
            raise invalid(f"sort_keys {self.params.get('sort_keys')!r} names an unknown field")
        direction = self.params.get("sort_dir", "asc")
        if direction not in ("asc", "desc"):
            raise invalid(f"{direction!r} is not one of ['asc', 'desc'] (sort_dir)")

        def key_of(obj: dict) -> tuple:
            return tuple((obj.get(k) is not None, obj.get(k) if obj.get(k) is not None else 0) for k in keys)

        ordered = sorted(items, key=key_of, reverse=direction == "desc")
        start = 0
        marker = self.int_param("marker")
        if "marker" in self.params:
            mobj = self.table(kind).get(marker)
            if mobj is None or not self.visible(mobj):
                raise invalid(f"Invalid marker {self.params['marker']!r}")
            mkey = key_of(mobj)
            after = (lambda k: k > mkey) if direction == "asc" else (lambda k: k < mkey)
            start = next((i for i, o in enumerate(ordered) if after(key_of(o))), len(ordered))
        page = ordered[start:start + limit]
        if kind == "hosts":
            for obj in page:
                if not _valid_ip(obj["ip_address"]):
                    raise unknown_error()
        return page, self.links(path, ordered, start, page, limit)

    def links(self, path: str, ordered: list, start: int, page: list, limit: int) -> list[dict]:
        base_query = {k: v for k, v in self.params.items() if k not in ("marker", "limit")}

        def href(marker: Any) -> str:
            query = dict(base_query, limit=limit)
            if marker is not None:
                query["marker"] = marker
            return f"{self.base}{path}?{urlencode(query)}"

        links = [{"rel": "first", "href": href(None)}]
        if start > 0:
            prev_start = max(0, start - limit)
            links.append({"rel": "prev", "href": href(ordered[prev_start - 1]["id"] if prev_start else None)})
        links.append({"rel": "self", "href": f"{self.base}{path}?{urlencode(self.params)}"})
        if page:
            links.append({"rel": "next", "href": href(page[-1]["id"])})
        return links

    def collection_post(self, kind: str) -> tuple[int, Any, list]:
        self.only_params(set())
        spec = KINDS[kind]
        data = self.check_fields(spec, self.body(), spec.required + spec.optional, spec.required)
        # References to missing rows fail deep in the database layer: a 500, as on the real server.
        for ref, table in (("cloud_id", "clouds"), ("region_id", "regions"), ("cell_id", "cells"),
                           ("parent_id", "hosts")):
            if data.get(ref) is not None:
                self.row(table, data[ref], unknown_error)
        self.check_unique(kind, data["name"], data.get(spec.scope) if spec.scope else None)
        now = _now()
        obj = {f: None for f in spec.fields}
        obj.update({"id": self.app.new_id(), "project_id": self.pid, "created_at": now, "updated_at": None,
                    "note": None, "variables": stored_variables(data.get("variables") or {})})
        if kind == "hosts":
            obj["active"] = True
            obj["labels"] = sorted(set(data.get("labels") or []))
        for name, value in data.items():
            if name not in ("variables", "labels"):
                obj[name] = value
        self.table(kind)[obj["id"]] = obj
        out = {f: obj.get(f) for f in spec.fields}
        out["links"] = [{"rel": "self", "href": f"{self.base}/v1/{kind}/{obj['id']}"}]
        out["variables"] = dict(obj["variables"])
        return 201, out, [("Location", f"{self.base}/v1/{kind}/{obj['id']}")]

    # -- items -------------------------------------------------------------------

    def item_get(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params({"resolved-values"})
        obj = self.row(kind, ident)
        return 200, self.render(kind, obj, True, self.flag("resolved-values", True)), []

    def item_put(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        obj = self.row(kind, ident)
        spec = KINDS[kind]
        data = self.body()
        if isinstance(data, dict) and kind == "hosts":
            for fixed in ("cell_id", "region_id"):
                if fixed in data:
                    raise invalid(f"'{fixed}' cannot be changed")
        data = self.check_fields(spec, data, spec.updatable, ())
        if "name" in data:
            self.check_unique(kind, data["name"], obj.get(spec.scope) if spec.scope else None, obj["id"])
        if kind == "hosts" and data.get("parent_id") is not None:
            parent = data["parent_id"]
            self.row("hosts", parent, unknown_error)
            node = parent
            while node is not None:
                if node == obj["id"]:
                    raise invalid("parent_id would make a cycle of devices")
                node = self.table("hosts")[node].get("parent_id")
        obj.update(data)
        obj["updated_at"] = _now()
        return 200, self.render(kind, obj, False), []

    def item_delete(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        if kind == "hosts" and self.table(kind).get(ident) is None:
            return 204, None, []  # the real server answers a missing host's DELETE with 204
        obj = self.row(kind, ident)
        if kind == "regions":  # the real server deletes the region's hosts (children first) and cells with it
            doomed = {o["id"] for o in self.table("hosts").values() if o.get("region_id") == obj["id"]}
            for table in ("hosts", "cells"):
                for oid in [o["id"] for o in self.table(table).values() if o.get("region_id") == obj["id"]]:
                    del self.table(table)[oid]
            assert not any(o.get("parent_id") in doomed for o in self.table("hosts").values())
        dependants = {"hosts": [("hosts", "parent_id")], "cells": [("hosts", "cell_id")],
                      "regions": [("hosts", "region_id"), ("cells", "region_id")],
                      "clouds": [("regions", "cloud_id"), ("hosts", "cloud_id"), ("cells", "cloud_id")]}[kind]
        for table, ref in dependants:
            if any(o.get(ref) == obj["id"] for o in self.table(table).values()):
                raise unknown_error()  # a foreign key still points at it
        del self.table(kind)[obj["id"]]
        return 204, None, []

    # -- variables and labels ------------------------------------------------------

    def variables_get(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params({"resolved-values"})
        obj = self.row(kind, ident)
        resolved = self.flag("resolved-values", kind == "hosts")
        return 200, {"variables": self.resolved(kind, obj) if resolved else dict(obj["variables"])}, []

    def variables_put(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        obj = self.row(kind, ident)
        return 200, {"variables": self._merge_variables(obj)}, []

    def variables_delete(self, kind: str, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        self._delete_variables(self.row(kind, ident))
        return 204, None, []

    def _merge_variables(self, obj: dict) -> dict:
        data = self.body()
        if not isinstance(data, dict):
            raise invalid("variables must be a JSON object")
        too_long = [k for k in data if len(k) > 255]
        if too_long:
            raise invalid(f"{too_long[0][:40]!r}... is too long (keys hold up to 255 characters)")
        if "" in data:
            raise invalid("'' is too short (variable keys hold 1 to 255 characters)")
        obj["variables"].update(stored_variables(data))
        return dict(obj["variables"])

    def _delete_variables(self, obj: dict) -> None:
        data = self.body()
        if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
            raise invalid("the body must be a JSON array of variable names")
        for key in data:
            obj["variables"].pop(key, None)

    def project_variables_get(self, project: str) -> tuple[int, Any, list]:
        self.only_params({"resolved-values"})
        return 200, {"variables": dict(self._project(project)["variables"])}, []

    def project_variables_put(self, project: str) -> tuple[int, Any, list]:
        self.only_params(set())
        return 200, {"variables": self._merge_variables(self._project(project))}, []

    def project_variables_delete(self, project: str) -> tuple[int, Any, list]:
        self.only_params(set())
        self._delete_variables(self._project(project))
        return 204, None, []

    def _project(self, project: str) -> dict:
        if not self.admin:
            raise ApiError(401, UNAUTHENTICATED["message"])  # project variables need an admin
        if not UUID_RE.match(project) or str(uuid.UUID(project)) != self.pid:
            raise not_found()
        return self.app.projects[self.pid]

    def labels_get(self, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        return 200, {"labels": list(self.row("hosts", ident)["labels"])}, []

    def _labels_body(self) -> list[str]:
        data = self.body()
        if not isinstance(data, dict) or set(data) != {"labels"}:
            raise invalid("the body must be {\"labels\": [...]}")
        self.check_type("labels", data["labels"])
        return data["labels"]

    def labels_put(self, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        obj = self.row("hosts", ident)
        obj["labels"] = sorted(set(obj["labels"]) | set(self._labels_body()))
        return 200, {"labels": list(obj["labels"])}, []

    def labels_delete(self, ident: int) -> tuple[int, Any, list]:
        self.only_params(set())
        obj = self.row("hosts", ident)
        gone = set(self._labels_body())
        obj["labels"] = [label for label in obj["labels"] if label not in gone]
        return 204, None, []

    # -- devices and admin lists -----------------------------------------------------

    def devices_get(self) -> tuple[int, Any, list]:
        self.only_params(set(DEVICE_FILTERS) | PAGING)
        hosts = [o for o in self.table("hosts").values() if self.visible(o)]
        parent = self.int_param("parent_id")
        if "parent_id" in self.params:
            if self.flag("descendants", False):
                wanted, frontier = set(), {parent}
                while frontier:
                    frontier = {o["id"] for o in hosts if o.get("parent_id") in frontier} - wanted
                    wanted |= frontier
                hosts = [o for o in hosts if o["id"] in wanted]
            else:
                hosts = [o for o in hosts if o.get("parent_id") == parent]
        for name in ("region_id", "cloud_id", "cell_id"):
            if name in self.params:
                hosts = [o for o in hosts if o.get(name) == self.int_param(name)]
        if "active" in self.params:
            hosts = [o for o in hosts if o.get("active") == self.flag("active", True)]
        page, links = self.paginate("hosts", hosts, "/v1/devices")
        details = self.flag("details", False)
        rendered = [self.render("hosts", o, details, self.flag("resolved-values", True)) for o in page]
        return 200, {"devices": {"hosts": rendered, "network-devices": []}, "links": links}, []

    def admin_list_get(self, what: str) -> tuple[int, Any, list]:
        if not self.admin:
            raise ApiError(401, UNAUTHENTICATED["message"])  # failed admin checks are 401, not 403
        self.only_params(PAGING | {"name"})
        if what == "projects":
            items = [{"id": p["id"], "name": p["name"]} for p in self.app.projects.values()]
        else:
            items = [{"name": u["name"], "project_id": u["project_id"], "is_admin": u["is_admin"]}
                     for u in self.app.users.values()]
        return 200, {what: items, "links": []}, []

    def admin_list_post(self, what: str) -> tuple[int, Any, list]:
        """An admin creates a project (``name``) or a user of the caller's project (``name``, ``is_admin``);
        the user's API key is generated and given back once, in this answer."""
        if not self.admin:
            raise ApiError(401, UNAUTHENTICATED["message"])
        self.only_params(set())
        data = self.body()
        allowed = ("name",) if what == "projects" else ("name", "is_admin")
        if not isinstance(data, dict) or set(data) - set(allowed) or not isinstance(data.get("name"), str) \
                or not 0 < len(data["name"]) <= 255 or not isinstance(data.get("is_admin", False), bool):
            raise invalid(f"a {what[:-1]} needs a name (1 to 255 characters)"
                          + ("" if what == "projects" else " and may say is_admin (true or false)"))
        if what == "projects":
            pid = self.app.add_project(data["name"])
            return 201, {"id": pid, "name": data["name"]}, [("Location", f"{self.base}/v1/projects/{pid}")]
        if (self.pid, data["name"]) in self.app.users:
            raise ApiError(409, "A user with the given name already exists.")
        key = self.app.add_user(self.pid, data["name"], admin=data.get("is_admin", False))
        user = self.app.users[(self.pid, data["name"])]
        return 201, {"name": user["name"], "project_id": self.pid, "is_admin": user["is_admin"], "api_key": key}, []


# -- serving ------------------------------------------------------------------------


class _OneShotHandler(WSGIRequestHandler):
    """wsgiref's handler as the real server runs: HTTP/1.0, one request per connection, one request
    handled at a time; able to drop a request without answering."""

    protocol_version = "HTTP/1.0"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the app's log
        pass

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ValueError):
                return
        self._one_request()
        self.close_connection = True

    def _one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (OSError, ValueError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        except (OSError, ValueError):
            self.close_connection = True
            return
        environ = self.get_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.url_scheme"] = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        environ["wsgi.multithread"] = True
        started: list = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            started[:] = [status, headers]
            return lambda data: None

        with self.server.serial:
            chunks = self.server.get_app()(environ, start_response)
        if environ.get(DROP):
            self.close_connection = True  # the client sees the connection close with no answer
            return
        payload = b"".join(chunks)
        status, headers = started
        lines = [f"HTTP/1.0 {status}", f"Date: {self.date_time_string()}", "Server: craton-test"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(payload)}")
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError:
            self.close_connection = True


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple, ssl_context: ssl.SSLContext | None):
        self.ssl_context = ssl_context
        self.accepted = 0
        self.live: set = set()
        self.live_lock = threading.Lock()
        self.serial = threading.Lock()  # the real server is single-threaded
        super().__init__(address, _OneShotHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed on 127.0.0.1.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
        self.setup_environ()

    def get_request(self) -> tuple:
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.live_lock:
            self.live.add(sock)
            self.accepted += 1
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self.live_lock:
            self.live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer are part of the tests

    def close_live(self) -> None:
        with self.live_lock:
            live, self.live = list(self.live), set()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class CratonServer:
    """A running look-alike with one project, a user, an admin and (keystone mode) a token."""

    def __init__(self, auth: str = "local", ssl_context: ssl.SSLContext | None = None,
                 api_key: str | None = None, token: str | None = None):
        self.app = CratonApp(auth)
        self.project_id = self.app.add_project("osa")
        self.username = "deployer"
        self.api_key = self.app.add_user(self.project_id, self.username, api_key=api_key)
        self.admin_key = self.app.add_user(self.project_id, "admin", admin=True)
        self.token = self.app.add_token(self.project_id, token)
        self.ssl_context = ssl_context
        self._server: _ThreadedServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> CratonServer:
        self.app.woken.clear()
        self._server = _ThreadedServer(("127.0.0.1", self.port if port is None else port), self.ssl_context)
        self._server.set_app(self.app)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"craton-test-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener (connections are refused) and every open connection."""
        if self._server is None:
            return
        self.app.woken.set()
        self._server.shutdown()
        self._server.close_live()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (one per request)."""
        return self._server.accepted if self._server else 0

    def headers(self, admin: bool = False) -> dict[str, str]:
        if self.app.auth == "keystone":
            return {"X-Auth-Token": self.token}
        return {"X-Auth-Project": self.project_id, "X-Auth-User": "admin" if admin else self.username,
                "X-Auth-Token": self.admin_key if admin else self.api_key}

    def options(self, **extra: str) -> dict[str, str]:
        """``register()`` arguments for the Craton plugin against this server."""
        opts = {"url": self.url, "cloud": "osa-cloud", "region": "osa-region", "timeout": "5", "retries": "2",
                "backoff": "0.01"}
        if self.app.auth == "keystone":
            opts["token"] = self.token
        else:
            opts.update(project_id=self.project_id, username=self.username, api_key=self.api_key)
        opts.update(extra)
        return opts

    # -- direct reads for assertions ------------------------------------------------

    def hosts(self) -> dict[str, dict]:
        with self.app.lock:
            return {h["name"]: json.loads(json.dumps(h)) for h in self.app.tables["hosts"].values()}

    def region(self, name: str) -> dict | None:
        with self.app.lock:
            return next((json.loads(json.dumps(r)) for r in self.app.tables["regions"].values()
                         if r["name"] == name), None)


@pytest.fixture
def craton_server():
    """A fresh look-alike on a free port, stopped after the test."""
    server = CratonServer().start()
    try:
        yield server
    finally:
        server.stop()


def make_tls_files(folder: str) -> tuple[str, str, str]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, strict-verifier clean."""
    pki = make_pki(folder)
    return pki["ca.pem"], pki["server.pem"], pki["server.key"]


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
