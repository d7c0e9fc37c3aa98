"""A small client for etcd v3's JSON gateway (``/v3/...``), built on ``requests``.

Only what the etcd storage plugin needs: ranges, transactions, leases,
authentication and compaction. Keys and values are ``bytes`` on the Python
side and base64 on the wire; the gateway's int64 fields arrive as strings
and are turned into ints here.

Failover: requests go to one endpoint until it fails to answer (connection
refused or reset, TLS failure, timeout, or etcd saying it is unavailable),
then to the next, all within one ``timeout`` budget per call. A request may
therefore reach etcd twice when an answer is lost on the way back: callers
make their writes safe to repeat or check whether they landed.
"""

from __future__ import annotations

import base64
import itertools
import shlex
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ...bounded import parse_json
from ...errors import AccessDenied, InventoryError, StorageError, one_line
from ..http_answer import MAX_ANSWER_BYTES, read_answer
from ..tls import strict_ca_advice, tls_reason

# gRPC status codes the gateway puts in its error bodies.
GRPC_NOT_FOUND = 5
GRPC_OUT_OF_RANGE = 11
GRPC_UNAVAILABLE = 14
GRPC_DEADLINE_EXCEEDED = 4
GRPC_PERMISSION_DENIED = 7
GRPC_UNAUTHENTICATED = 16
GRPC_FAILED_PRECONDITION = 9

#: Where docs/etcd.md shows how to set up reader and writer roles; named in advice.
ACCESS_DOC = 'docs/etcd.md, section "Access control"'

# How often a whole round over the endpoints is tried when none of them accepts a
# connection: enough to ride over a member restart, short enough to fail fast when
# etcd is simply down.
CONNECT_ROUNDS = 2
ROUND_PAUSE = 0.2


class EtcdError(StorageError):
    """etcd could not be reached or refused a request; the message is one line."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered within the timeout."""


class EtcdAuthError(EtcdError, AccessDenied):
    """Authentication was refused, or a request was not permitted."""


class EtcdRequestError(EtcdError):
    """etcd answered a request with an error (``code`` is the gRPC status)."""

    def __init__(self, message: str, code: int, etcd_message: str):
        super().__init__(message)
        self.code = code
        self.etcd_message = etcd_message


class _NotJson(InventoryError):
    """An answer that is not JSON, or nests deeper than any answer of etcd's."""


class EtcdCompacted(EtcdRequestError):
    """The revision asked for has been compacted away."""


class EtcdFutureRevision(EtcdRequestError):
    """The revision asked for does not exist yet."""


def b64(data: bytes | str) -> str:
    """Base64 text of ``data`` (str is encoded as UTF-8), as the gateway wants it."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes:
    """The bytes behind a gateway base64 field (absent means empty)."""
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    data = bytearray(prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\0"  # every key: etcd's convention for "to the end"


def as_int(value: Any) -> int:
    """An int64 field of a gateway answer (sent as a string, omitted when zero)."""
    return int(value) if value not in (None, "") else 0


# -- request builders (keys are bytes) ----------------------------------------

def op_put(key: bytes, value: bytes, lease: int = 0) -> dict:
    """A put operation for a transaction."""
    req: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        req["lease"] = str(lease)
    return {"request_put": req}


def op_delete(key: bytes) -> dict:
    """A delete of one key for a transaction."""
    return {"request_delete_range": {"key": b64(key)}}


def op_range(key: bytes, range_end: bytes | None = None, limit: int = 0) -> dict:
    """A range read for a transaction."""
    req: dict[str, Any] = {"key": b64(key)}
    if range_end is not None:
        req["range_end"] = b64(range_end)
    if limit:
        req["limit"] = str(limit)
    return {"request_range": req}


def cmp_mod(key: bytes, revision: int) -> dict:
    """Compare: the key's mod_revision equals ``revision`` (0: the key does not exist)."""
    if revision == 0:
        return cmp_create(key, 0)
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def cmp_create(key: bytes, revision: int) -> dict:
    """Compare: the key's create_revision equals ``revision`` (0: the key does not exist)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": str(revision)}


def decode_kv(kv: dict) -> dict:
    """A gateway key-value record with bytes and ints instead of base64 and strings."""
    return {
        "key": unb64(kv.get("key")),
        "value": unb64(kv.get("value")),
        "create_revision": as_int(kv.get("create_revision")),
        "mod_revision": as_int(kv.get("mod_revision")),
        "version": as_int(kv.get("version")),
        "lease": as_int(kv.get("lease")),
    }


def check_endpoint(url: str) -> str:
    """``url`` without a trailing slash, or a ValueError saying what is wrong with it."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"{url!r} must be scheme://host:port only, without a path")
    if parts.username or parts.password:
        raise ValueError(f"{parts.scheme}://{parts.hostname}:... must not carry credentials; "
                         "use the username and password options")
    return url


class EtcdClient:
    """One etcd cluster seen through its JSON gateway; see the module doc.

    Not meant to be shared between threads: give each thread its own
    :meth:`clone`.
    """

    max_answer = MAX_ANSWER_BYTES  # bytes of one answer's body; more is refused (see http_answer)

    def __init__(self, endpoints: Iterable[str], timeout: float = 10.0, *,
                 username: str | None = None, password: str | None = None,
                 ca_cert: str | None = None, cert: str | None = None, key: str | None = None,
                 scope: str = ""):
        self.scope = scope  # the key prefix this client works on, named in permission errors
        self.endpoints = [check_endpoint(e) for e in endpoints]
        if not self.endpoints:
            raise ValueError("no endpoints given")
        self.timeout = float(timeout)
        self.username = username or None
        self._password = password
        self.ca_cert, self.cert, self.key = ca_cert, cert, key
        self._current = 0
        self._token: str | None = None
        self._auth_checked = False
        self._session = self._new_session()
        self.request_count = 0  # HTTP requests sent, for benchmarks and tests

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # a proxy from the environment must not see cluster traffic
        session.verify = self.ca_cert or True
        if self.cert:
            session.cert = (self.cert, self.key) if self.key else self.cert
        return session

    def clone(self, timeout: float | None = None) -> EtcdClient:
        """A new client with the same settings and its own connections."""
        twin = EtcdClient(self.endpoints, self.timeout if timeout is None else timeout,
                          username=self.username, password=self._password,
                          ca_cert=self.ca_cert, cert=self.cert, key=self.key, scope=self.scope)
        twin._current = self._current  # start at the endpoint known to answer
        return twin

    def close(self) -> None:
        self._session.close()

    @property
    def endpoints_text(self) -> str:
        return ",".join(self.endpoints)

    def etcdctl(self) -> str:
        """The ``etcdctl`` command line that reaches the cluster as this client does, for advice.

        It names the user (etcdctl then asks for the password) and the TLS files, never a secret."""
        words = ["etcdctl", "--endpoints", self.endpoints_text]
        if self.username:
            words += ["--user", self.username]
        for flag, path in (("--cacert", self.ca_cert), ("--cert", self.cert), ("--key", self.key)):
            if path:
                words += [flag, path]
        return shlex.join(words)

    # -- the one way requests go out ----------------------------------------

    def call(self, path: str, body: dict, *, timeout: float | None = None) -> dict:
        """POST ``body`` to ``path`` (e.g. ``/v3/kv/range``) and return the decoded answer."""
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        if self.username and not self._auth_checked and path != "/v3/auth/authenticate":
            self._authenticate(deadline)
        try:
            return self._call(path, body, deadline, budget)
        except EtcdRequestError as exc:
            if exc.code != GRPC_UNAUTHENTICATED or not self.username:
                raise
            # Tokens expire (--auth-token-ttl) and die with a restart: get a new one, once.
            self._token = None
            self._authenticate(deadline)
            return self._call(path, body, deadline, budget)

    def _call(self, path: str, body: dict, deadline: float, budget: float) -> dict:
        failures: dict[str, str] = {}
        tls_failures: dict[str, str] = {}
        n = len(self.endpoints)
        for attempt in itertools.count():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (attempt >= n * CONNECT_ROUNDS and not _any_busy(failures)):
                break
            if attempt and attempt % n == 0:
                time.sleep(min(ROUND_PAUSE * (attempt // n), max(0.0, remaining - 0.05)))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
            index = (self._current + attempt) % n
            endpoint = self.endpoints[index]
            # A member that accepts connections but never answers must not eat the whole
            # budget: each endpoint not yet tried in this call gets an equal share of it.
            untried = max(1, n - attempt)
            share = min(remaining, max(0.2, remaining / untried))
            try:
                answer = self._post(endpoint, path, body, (share, share))
            except _Unanswered as exc:
                failures[endpoint] = exc.reason
                if exc.tls:
                    tls_failures[endpoint] = exc.reason
                else:
                    tls_failures.pop(endpoint, None)
                continue
            self._current = index
            return answer
        if tls_failures and len(tls_failures) == len(failures):
            # etcd is there but the handshake fails: where it runs is not the question.
            raise EtcdUnavailable(f"no etcd endpoint completed TLS: {_grouped(tls_failures)}")
        detail = _grouped(failures) or "no time left"
        within = f" within {budget:g} s" if time.monotonic() >= deadline else ""
        raise EtcdUnavailable(
            f"no etcd endpoint answered{within} ({detail}); check that etcd runs "
            f"at {self.endpoints_text} and the endpoints option")

    def _post(self, endpoint: str, path: str, body: dict, timeout: tuple[float, float]) -> dict:
        headers = {"Authorization": self._token} if self._token else {}
        self.request_count += 1
        try:
            resp = self._session.post(endpoint + path, json=body, headers=headers, timeout=timeout, stream=True)
            content = read_answer(resp, limit=self.max_answer, shown=f"POST {endpoint}{path}", error=_too_big,
                                  advice="check that the endpoints option names etcd client URLs")
        except requests.exceptions.SSLError as exc:
            reason = tls_reason(exc)
            advice = strict_ca_advice(reason, "ca_cert", self.ca_cert) or "check the ca_cert, cert and key options"
            raise _Unanswered(f"TLS failure ({reason}); {advice}", tls=True) from None
        except requests.exceptions.ConnectTimeout:
            raise _Unanswered("connection timed out") from None
        except requests.exceptions.Timeout:
            raise _Unanswered("no answer in time") from None
        except requests.exceptions.ConnectionError as exc:
            raise _Unanswered(_connection_reason(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise _Unanswered(type(exc).__name__) from None
        try:
            data = parse_json(content, shown=f"{endpoint} answer to {path}", error=_NotJson)
        except _NotJson as exc:
            if resp.status_code >= 500:
                raise _Unanswered(f"HTTP {resp.status_code}") from None
            raise EtcdRequestError(
                f"{endpoint} answered HTTP {resp.status_code} without JSON etcd could have sent on {path} "
                f"({one_line(exc)}); is it an etcd v3 client URL?", 0, "") from None
        if not isinstance(data, dict):
            raise EtcdRequestError(f"{endpoint} answered {path} with something that is not a JSON object", 0, "")
        error = data.get("error")
        if error or resp.status_code != 200 and "code" in data:
            # Unary calls put code/message at the top; streaming ones (keepalive) nest them.
            detail = error if isinstance(error, dict) else data
            code = as_int(detail.get("grpc_code", detail.get("code")))
            message = str(detail.get("message") or error or "")
            if code in (GRPC_UNAVAILABLE, GRPC_DEADLINE_EXCEEDED):
                raise _Unanswered(f"busy: {message}", busy=True)
            raise _request_error(endpoint, path, code, message, self.username, self.scope)
        if resp.status_code != 200:
            raise EtcdRequestError(f"{endpoint} answered HTTP {resp.status_code} on {path}", 0, "")
        return data

    def _authenticate(self, deadline: float) -> None:
        """Get a token for ``username`` (or learn that auth is off)."""
        budget = max(0.1, deadline - time.monotonic())
        try:
            answer = self._call("/v3/auth/authenticate",
                                {"name": self.username, "password": self._password or ""},
                                deadline, budget)
        except EtcdRequestError as exc:
            if exc.code == GRPC_FAILED_PRECONDITION and "not enabled" in exc.etcd_message:
                self._token, self._auth_checked = None, True
                return
            if "authentication failed" in exc.etcd_message or "invalid user" in exc.etcd_message:
                raise EtcdAuthError(
                    f"etcd at {self.endpoints_text} refused user {self.username!r}: wrong user name or "
                    "password; check the username and password options") from None
            raise
        self._token = answer.get("token") or None
        self._auth_checked = True

    # -- KV ------------------------------------------------------------------

    def range(self, key: bytes, range_end: bytes | None = None, *, revision: int = 0,
              limit: int = 0, keys_only: bool = False) -> dict:
        """Read ``key`` (or ``[key, range_end)``); kvs are decoded with :func:`decode_kv`."""
        body: dict[str, Any] = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        if keys_only:
            body["keys_only"] = True
        answer = self.call("/v3/kv/range", body)
        return _decode_range(answer)

    def range_all(self, key: bytes, range_end: bytes, *, revision: int, page: int = 2000) -> list[dict]:
        """Every key in ``[key, range_end)`` at ``revision``, read ``page`` keys at a time."""
        kvs: list[dict] = []
        start = key
        while True:
            answer = self.range(start, range_end, revision=revision, limit=page)
            kvs.extend(answer["kvs"])
            if not answer["more"] or not answer["kvs"]:
                return kvs
            start = answer["kvs"][-1]["key"] + b"\0"

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] | None = None) -> dict:
        """Run a transaction; the answer's responses are decoded like :meth:`range`'s."""
        body: dict[str, Any] = {"compare": compare, "success": success}
        if failure:
            body["failure"] = failure
        answer = self.call("/v3/kv/txn", body)
        responses = []
        for item in answer.get("responses") or []:
            if "response_range" in item:
                responses.append(_decode_range(item["response_range"]))
            else:
                responses.append(item)
        return {"succeeded": bool(answer.get("succeeded")), "responses": responses,
                "revision": as_int((answer.get("header") or {}).get("revision"))}

    def compact(self, revision: int) -> None:
        """Drop history before ``revision``."""
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    # -- leases --------------------------------------------------------------

    def lease_grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (id, granted ttl)."""
        answer = self.call("/v3/lease/grant", {"TTL": str(int(ttl))})
        if answer.get("error"):
            raise EtcdError(f"etcd at {self.endpoints_text} granted no lease: {answer['error']}")
        return as_int(answer.get("ID")), as_int(answer.get("TTL"))

    def lease_keepalive(self, lease: int, timeout: float | None = None) -> int:
        """Refresh ``lease``; its remaining TTL, 0 when it has expired or was revoked."""
        answer = self.call("/v3/lease/keepalive", {"ID": str(lease)}, timeout=timeout)
        return as_int((answer.get("result") or answer).get("TTL"))

    def lease_revoke(self, lease: int, timeout: float | None = None) -> None:
        """Revoke ``lease`` (its keys are deleted); a lease already gone is fine."""
        try:
            self.call("/v3/lease/revoke", {"ID": str(lease)}, timeout=timeout)
        except EtcdRequestError as exc:
            if exc.code != GRPC_NOT_FOUND:
                raise


def _too_big(message: str) -> EtcdRequestError:
    return EtcdRequestError(message, 0, "")


class _Unanswered(Exception):
    """This endpoint gave no usable answer; try the next one."""

    def __init__(self, reason: str, busy: bool = False, tls: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.busy = busy
        self.tls = tls


def _grouped(failures: dict[str, str]) -> str:
    """"url1, url2: reason; url3: other reason": endpoints failing alike are named together."""
    by_reason: dict[str, list[str]] = {}
    for endpoint, why in failures.items():
        by_reason.setdefault(why, []).append(endpoint)
    return "; ".join(f"{', '.join(endpoints)}: {why}" for why, endpoints in by_reason.items())


def _any_busy(failures: dict[str, str]) -> bool:
    # etcd answering "unavailable" (an election, a slow disk) is worth waiting for
    # until the deadline; endpoints refusing connections are not.
    return any(why.startswith("busy:") for why in failures.values())


def _decode_range(answer: dict) -> dict:
    return {"kvs": [decode_kv(kv) for kv in answer.get("kvs") or []],
            "more": bool(answer.get("more")),
            "count": as_int(answer.get("count")),
            "revision": as_int((answer.get("header") or {}).get("revision"))}


def _connection_reason(exc: requests.exceptions.ConnectionError) -> str:
    reason = exc.args[0] if exc.args else exc
    inner = getattr(reason, "reason", reason)
    if isinstance(inner, NewConnectionError):
        text = str(inner).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service not known" in text or "resolution" in text:
            return "host name not found"
        return "cannot connect"
    if isinstance(inner, ConnectTimeoutError):
        return "connection timed out"
    return "connection lost"


def _request_error(endpoint: str, path: str, code: int, message: str, username: str | None,
                   scope: str) -> EtcdRequestError:
    clean = message.removeprefix("etcdserver: ")
    if code == GRPC_OUT_OF_RANGE and "compacted" in message:
        return EtcdCompacted(f"etcd at {endpoint}: {clean}", code, message)
    if code == GRPC_OUT_OF_RANGE and "future revision" in message:
        return EtcdFutureRevision(f"etcd at {endpoint}: {clean}", code, message)
    if code == GRPC_PERMISSION_DENIED:
        who = f"user {username!r}" if username else "an unauthenticated client"
        keys = f"keys under {scope}" if scope else "those keys"
        return _auth_error(f"etcd at {endpoint} denied {who} access to {keys} ({path}); check the prefix "
                           f"option (is it this user's deployment?), or grant the user a role with read (runs "
                           f"that change nothing) or readwrite permission on {keys} (see {ACCESS_DOC})",
                           code, message)
    if "user name is empty" in message or "user name not found" in message and not username:
        return _auth_error(f"etcd at {endpoint} requires authentication; set the username and "
                           "password options", code, message)
    if "too many operations" in message:
        hint = "; lower the max_txn_ops option to the cluster's --max-txn-ops"
    elif "request is too large" in message:
        hint = "; the cluster's --max-request-bytes is below 1.5 MiB, raise it"
    else:
        hint = ""
    return EtcdRequestError(f"etcd at {endpoint} refused {path}: {clean}{hint}", code, message)


class _AuthRequestError(EtcdRequestError, EtcdAuthError):
    """A request refused for lack of authentication or permission."""


def _auth_error(text: str, code: int, message: str) -> EtcdRequestError:
    return _AuthRequestError(text, code, message)
