"""A small, careful HTTP client for NetBox's REST API (v2 tokens).

One ``requests.Session`` (keep-alive), an explicit (connect, read) timeout on
every request, TLS verification on unless told otherwise, and every answer
read as a stream and refused past a size bound, so a confused or hostile
server cannot make a run hold gigabytes. Only idempotent requests (GET, PUT,
DELETE) are sent again, and only once, when a kept-alive connection turned
out to be closed by the server (a reset before any answer): NetBox's writes
are not idempotent otherwise (a POST creates twice, a PATCH with If-Match
gets 412 the second time).

The one exception, for any method: a request PostgreSQL chose as a deadlock's
victim. NetBox runs each write in one transaction (``transaction.atomic``) and
answers an unhandled database error with a 500 whose JSON names it
(``utilities/error_handlers.py``: ``{"error": str(exc), "exception": "OperationalError"}``);
PostgreSQL's deadlock error aborts the victim's transaction, so nothing of the
request was written and sending it again cannot write anything twice. Only
that answer proves it: a 500 of another shape (an HTML page, another
exception, the words quoted in another message) is reported, never resent; and
a deadlock is resent at most :data:`DEADLOCK_RETRIES` times, after a short
random pause.

Every failure becomes a :class:`NetBoxError`: one line naming the URL and what
to do, never the token (it lives only in the session headers).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import warnings
from collections import Counter
from typing import Any, Iterator

import requests
import urllib3

from ... import progress
from ...bounded import parse_json
from ...errors import AccessDenied, StorageError, one_line
from ..tls import strict_ca_advice, tls_reason

LOG = logging.getLogger(__name__)

IDEMPOTENT = frozenset(["GET", "HEAD", "PUT", "DELETE"])
PAGE = 1000                         # NetBox's MAX_PAGE_SIZE: larger limits are cut to it silently
DEFAULT_MAX_ANSWER = 256 * 1024 * 1024
MAX_BATCH = 250                     # objects per bulk request: one takes seconds (about 45 objects/s)
MAX_BATCH_BYTES = 1024 * 1024       # well under DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB, answered with 500)
DEADLOCK_RETRIES = 3                # concurrent bulk writes of two deployments can deadlock in PostgreSQL
#: The class names NetBox's 500 answer gives a deadlock: Django wraps psycopg's DeadlockDetected in its
#: OperationalError; the bare psycopg name too, should a NetBox report it unwrapped.
DEADLOCK_EXCEPTIONS = frozenset(["OperationalError", "DeadlockDetected"])


class NetBoxError(StorageError):
    """A request to NetBox failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class NetBoxAccessDenied(NetBoxError, AccessDenied):
    """NetBox refused the token (403: unknown token, or no permission for the request)."""


class Answer:
    """A decoded answer: its JSON body (None when empty) and its ETag header."""

    def __init__(self, data: Any, etag: str | None, status: int):
        self.data = data
        self.etag = etag
        self.status = status


class NetBoxClient:
    """JSON requests against ``<url>/api``; ``option`` names the osa.ini section in advice."""

    def __init__(self, url: str, token: str, *, verify: bool | str = True, timeout: float = 30.0,
                 max_answer: int = DEFAULT_MAX_ANSWER, section: str = "[netbox]"):
        self.url = url.rstrip("/")
        self.api = f"{self.url}/api"
        self.timeout = timeout
        self.verify = verify
        self.max_answer = max_answer
        self.section = section
        self.sent: Counter = Counter()
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc surprises for a deployment tool
        self._session.verify = verify
        self._session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json",
                                      "User-Agent": "osa-inventory-netbox/1"})
        self._used = False  # whether the session may hold a kept-alive connection

    def __repr__(self) -> str:
        return f"<NetBoxClient {self.url}>"

    def close(self) -> None:
        self._session.close()

    # -- requests -------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                expect: tuple[int, ...] = (200,), headers: dict | None = None, deadlocks: int = 0) -> Answer:
        """Send one request; the answer's JSON and ETag. ``path`` is below /api/ or a full URL."""
        full = path if path.startswith(("http://", "https://")) else f"{self.api}/{path.lstrip('/')}"
        kwargs: dict = {"params": params, "timeout": (self.timeout, self.timeout), "stream": True,
                        "headers": headers or {}}
        if body is not None:
            kwargs["data"] = json.dumps(body, ensure_ascii=True, allow_nan=False).encode("ascii")
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        shown = full.split("?")[0]
        for attempt in (1, 2):
            reused = self._used
            self.sent[method] += 1
            LOG.debug("netbox %s %s", method, shown)
            try:
                with warnings.catch_warnings():
                    if self.verify is False:
                        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                    response = self._session.request(method, full, **kwargs)
                try:
                    content = self._read(response, method, shown)
                finally:
                    response.close()
            except requests.RequestException as exc:
                self._used = False
                if attempt == 1 and reused and method in IDEMPOTENT and _dropped(exc):
                    LOG.info("netbox %s %s: kept-alive connection closed by the server; sending again",
                             method, shown)
                    continue
                raise NetBoxError(self._explain(exc, method, shown)) from None
            self._used = True
            break
        data = self._decode(content, response.status_code, method, shown) if content else None
        if response.status_code == 500 and rolled_back_deadlock(data) and deadlocks < DEADLOCK_RETRIES:
            # PostgreSQL chose this request as a deadlock's victim and rolled its transaction back
            # (NetBox runs each write in one): nothing of it was written, so even a POST may be sent again.
            LOG.info("netbox %s %s: deadlock in NetBox's database; sending again", method, shown)
            time.sleep(random.uniform(0.1, 0.5) * (deadlocks + 1))
            return self.request(method, path, params=params, body=body, expect=expect, headers=headers,
                                deadlocks=deadlocks + 1)
        if response.status_code not in expect:
            kind = NetBoxAccessDenied if response.status_code in (401, 403) else NetBoxError
            raise kind(self._status_message(response.status_code, data, content, method, shown),
                       response.status_code, data)
        return Answer(data, response.headers.get("ETag"), response.status_code)

    def _read(self, response: requests.Response, method: str, shown: str) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_answer:
                raise NetBoxError(f"{method} {shown}: the answer is larger than {self.max_answer} bytes; refusing "
                                  f"it (check that {self.section} url points at NetBox)")
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, content: bytes, status: int, method: str, shown: str) -> Any:
        try:
            return parse_json(content, shown=f"the answer to {method} {shown}", error=NetBoxError)
        except NetBoxError as exc:
            if status >= 400:
                return None  # an HTML error page: the status says enough
            raise NetBoxError(f"{method} {shown} answered {status} with a body that is not JSON "
                              f"({one_line(exc)}); check that {self.section} url points at NetBox") from None

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.request("GET", path, params=params).data

    def list_all(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every object of a list endpoint, following ``next`` (pages of 1000) and checking ``count``."""
        query = {**(params or {}), "limit": PAGE, "offset": 0}
        url: str | None = path
        seen = 0
        count = None
        while url:
            page = self.request("GET", url, params=query).data
            query = None  # the next link carries the query
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise NetBoxError(f"GET {self.api}/{path}: the answer is not a NetBox list; check that "
                                  f"{self.section} url points at NetBox")
            count = page.get("count") if count is None else count
            for item in page["results"]:
                if isinstance(item, dict):
                    seen += 1
                    yield item
            url = page.get("next")
            if url and not page["results"]:
                raise NetBoxError(f"GET {self.api}/{path}: pagination does not advance")
        if isinstance(count, int) and seen < count:
            raise NetBoxError(f"GET {self.api}/{path}: listed {seen} of {count} objects (changed while "
                              "listing); run again")

    def bulk(self, method: str, path: str, items: list, message: str, expect: tuple[int, ...]) -> list:
        """``items`` sent in as few requests as the batch bounds allow; each carries the changelog message.

        Each request is one NetBox transaction (all or nothing); nothing spans requests.
        """
        out: list = []
        done = 0
        verb = {"POST": "creating", "PATCH": "updating", "DELETE": "deleting"}.get(method, method)
        for batch in batches([{**item, "changelog_message": message} for item in items]):
            progress.report(f"NetBox at {self.url}: {verb} {path.strip('/')}: {done} of {len(items)}")
            data = self.request(method, path, body=batch, expect=expect).data
            done += len(batch)
            if isinstance(data, list):
                out.extend(data)
        return out

    # -- messages ---------------------------------------------------------------

    def _status_message(self, status: int, data: Any, content: bytes, method: str, shown: str) -> str:
        text = server_message(data) or " ".join(content[:200].decode("utf-8", "replace").split()) or "no message"
        if status in (401, 403):
            return (f"NetBox at {self.url} refused {method} {shown} (403: {text}); check {self.section} token: "
                    "a v2 token (nbt_...) of a user with the permissions docs/netbox.md lists")
        if status >= 500:
            return f"{method} {shown}: NetBox server error {status} ({text}); check NetBox and its logs"
        return f"{method} {shown}: {status} {text}"

    def _explain(self, exc: Exception, method: str, shown: str) -> str:
        reason = _root_reason(exc)
        if isinstance(exc, requests.exceptions.SSLError) or isinstance(reason, urllib3.exceptions.SSLError):
            detail = tls_reason(exc)
            advice = strict_ca_advice(detail, f"{self.section} ca_cert",
                                      self.verify if isinstance(self.verify, str) else None) or (
                f"set {self.section} ca_cert to the CA bundle that signed NetBox's certificate "
                "(verify = false turns checking off, unsafe)")
            return f"TLS connection to {self.url} failed ({detail}); {advice}"
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            why = "connection refused" if "refused" in str(reason).lower() else _short(reason)
            return f"cannot connect to NetBox at {self.url} ({why}); check {self.section} url and that NetBox runs"
        if isinstance(reason, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)) \
                or isinstance(exc, requests.exceptions.Timeout):
            return (f"NetBox at {self.url} did not answer {method} {shown} within {self.timeout:g} s; check "
                    f"NetBox or raise {self.section} timeout")
        if _dropped(exc):
            return f"NetBox at {self.url} dropped the connection during {method} {shown}; check NetBox and its logs"
        return f"{method} {shown} failed: {type(exc).__name__}: {_short(reason or exc)}"


def batches(items: list, max_items: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES) -> Iterator[list]:
    """``items`` cut into lists of at most ``max_items`` whose JSON stays under ``max_bytes`` (one item may
    exceed it alone: NetBox then refuses it, and says so)."""
    batch: list = []
    size = 0
    for item in items:
        length = len(json.dumps(item, ensure_ascii=True, allow_nan=False)) + 1
        if batch and (len(batch) >= max_items or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += length
    if batch:
        yield batch


def server_message(data: Any) -> str:
    """NetBox's error body in one short line: ``detail``, bulk ``errors`` or field errors."""
    if isinstance(data, dict):
        parts = []
        if isinstance(data.get("detail"), str):
            parts.append(data["detail"])
        if isinstance(data.get("error"), str):
            parts.append(data["error"])
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts.append(json.dumps(errors[0], ensure_ascii=False)[:300])
        if not parts:
            parts.append(json.dumps(data, ensure_ascii=False)[:300])
        return " ".join(" ".join(parts).split())[:400]
    if isinstance(data, list) and data:
        return " ".join(json.dumps(data[0], ensure_ascii=False).split())[:400]
    return ""


def rolled_back_deadlock(data: Any) -> bool:
    """Whether a 500's decoded body is NetBox's report of PostgreSQL's deadlock error, which proves the
    request's transaction was rolled back: a database ``OperationalError`` whose message's first line is
    PostgreSQL's ``deadlock detected``. Anything else (another exception, the words elsewhere in a
    message, a body NetBox's error handler did not write) proves nothing."""
    if not isinstance(data, dict):
        return False
    error, exception = data.get("error"), data.get("exception")
    return (isinstance(error, str) and isinstance(exception, str) and exception in DEADLOCK_EXCEPTIONS
            and error.split("\n", 1)[0].strip() == "deadlock detected")


def _dropped(exc: Exception) -> bool:
    """Whether the server closed the connection before answering (not a refusal, TLS failure or timeout)."""
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.Timeout)):
        return False
    reason = _root_reason(exc)
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return False
    chain = [exc, reason, *getattr(reason, "args", ())]
    return any(isinstance(link, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                                 urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError))
               for link in chain)


def _root_reason(exc: Exception) -> Any:
    arg = exc.args[0] if exc.args else None
    reason = getattr(arg, "reason", None)
    return reason if reason is not None else arg


def _short(value: Any) -> str:
    text = " ".join(str(value or "").split())
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return text[:200]
